//! Loading scenario files: read the file and the traces it names (relative to the scenario
//! file), hand the text to the env crate (which opens no file), apply the size and rate bounds
//! of [`crate::scenario_limits`], and put the file name in front of every error, so a user reads
//! e.g. `configs/x.toml: link.snr.nakagami_m = 0.3: must be >= 0.5 (Nakagami-m shape)`.
//! Shared by every front end that loads scenarios: the CLI (`src/scenario_file.rs` re-exports
//! it) and the Python bindings (which also resolve the shipped scenarios from text compiled into
//! the module, through [`resolve_from`] with their own [`TraceSource`]).

use crate::scenario_limits as limits;
use anyhow::{Context, Result, anyhow, bail};
use splitwise_env::scenario::{Scenario, ScenarioConfig, ScenarioError, TraceSource};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Largest config, scenario or trace file read (Mahimahi traces of hours are a few MB).
pub const MAX_TEXT_FILE_BYTES: u64 = 256 << 20;

/// Reads a text input, refusing what is not a regular file (a folder, `/dev/zero`, a FIFO)
/// or is larger than [`MAX_TEXT_FILE_BYTES`], so a wrong path is an error, not a hang or an
/// allocation abort.
pub fn read_text(path: &Path) -> std::io::Result<String> {
    use std::io::{Error, ErrorKind};
    let meta = std::fs::metadata(path)?;
    if !meta.is_file() {
        return Err(Error::new(ErrorKind::InvalidInput, "not a regular file"));
    }
    if meta.len() > MAX_TEXT_FILE_BYTES {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            format!("{} bytes, more than the {MAX_TEXT_FILE_BYTES} a config, scenario or trace may have", meta.len()),
        ));
    }
    std::fs::read_to_string(path)
}

/// Reads traces from disk, relative to the directory of the file that names them.
pub struct FsTraces {
    pub base_dir: PathBuf,
}

impl TraceSource for FsTraces {
    fn read(&self, path: &str) -> Result<String, String> {
        let full = self.base_dir.join(path);
        read_text(&full).map_err(|e| format!("cannot read {}: {e}", full.display()))
    }
}

/// Prefixes a scenario error with the file it came from.
pub fn describe(path: &Path, err: ScenarioError) -> anyhow::Error {
    match err {
        ScenarioError::Parse(msg) => anyhow!("{}: {}", path.display(), msg.trim_end()),
        other => anyhow!("{}: {other}", path.display()),
    }
}

/// Validates a scenario config and resolves its traces (relative to `origin`'s folder), then
/// applies the size and rate bounds ([`crate::scenario_limits`]).
pub fn resolve(config: ScenarioConfig, origin: &Path) -> Result<Arc<Scenario>> {
    let traces = FsTraces { base_dir: origin.parent().map(Path::to_path_buf).unwrap_or_default() };
    resolve_from(config, origin, &traces)
}

/// [`resolve`] with traces from any source (named relative to `origin`'s folder in errors).
pub fn resolve_from(config: ScenarioConfig, origin: &Path, traces: &dyn TraceSource) -> Result<Arc<Scenario>> {
    limits::check_scenario_config(&config).map_err(|e| anyhow!("{}: {e}", origin.display()))?;
    check_link_trace(&config, traces, origin)?;
    let scenario = Scenario::resolve(config, traces).map(Arc::new).map_err(|e| describe(origin, e))?;
    limits::check_scenario(&scenario).map_err(|e| anyhow!("{}: {e}", origin.display()))?;
    Ok(scenario)
}

/// A link trace's rates must stay above [`limits::MIN_TRACE_RATE_BPS`]. Read and parsed here
/// too (the env parses it again; a file it cannot parse is left to its own error).
fn check_link_trace(config: &ScenarioConfig, traces: &dyn TraceSource, origin: &Path) -> Result<()> {
    let Some(t) = config.link.rate.trace() else { return Ok(()) };
    let Ok(text) = traces.read(&t.path) else { return Ok(()) };
    let Ok(series) = t.parse(&text) else { return Ok(()) };
    if let Some(i) = series.values.iter().position(|v| v.is_nan() || *v < limits::MIN_TRACE_RATE_BPS) {
        bail!(
            "{}: link.rate.process.path = {:?}: the trace's rate is {} bit/s at time_s = {} (after scale = {}): \
             every rate must be >= {} bit/s (a transfer at rate 0 never completes); model outages with \
             [link.failures] or a low-rate regime instead",
            origin.display(),
            origin.parent().unwrap_or(Path::new("")).join(&t.path).display().to_string(),
            series.values[i],
            series.times_s[i],
            t.scale,
            limits::MIN_TRACE_RATE_BPS
        );
    }
    Ok(())
}

/// Loads a scenario file.
pub fn load(path: &Path) -> Result<Arc<Scenario>> {
    let text = read_text(path).with_context(|| format!("cannot read scenario {}", path.display()))?;
    let config = ScenarioConfig::from_toml(&text).map_err(|e| describe(path, e))?;
    resolve(config, path)
}

/// Loads a scenario from its text, as if read from `origin`, with traces from `traces`.
pub fn load_text(text: &str, origin: &Path, traces: &dyn TraceSource) -> Result<Arc<Scenario>> {
    let config = ScenarioConfig::from_toml(text).map_err(|e| describe(origin, e))?;
    resolve_from(config, origin, traces)
}
