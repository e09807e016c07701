//! Loading scenario files: the app reads the file and the traces it names (relative to the
//! scenario file), hands the text to the env crate, and puts the file name in front of every
//! error, so a user reads e.g.
//! `configs/x.toml: link.snr.nakagami_m = 0.3: must be >= 0.5 (Nakagami-m shape)`.

use anyhow::{Context, Result, anyhow};
use splitwise_env::scenario::{Scenario, ScenarioConfig, ScenarioError, TraceSource};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Reads traces from disk, relative to the directory of the file that names them.
pub struct FsTraces {
    pub base_dir: PathBuf,
}

impl TraceSource for FsTraces {
    fn read(&self, path: &str) -> Result<String, String> {
        let full = self.base_dir.join(path);
        std::fs::read_to_string(&full).map_err(|e| format!("cannot read {}: {e}", full.display()))
    }
}

/// Prefixes a scenario error with the file it came from.
pub fn describe(path: &Path, err: ScenarioError) -> anyhow::Error {
    match err {
        ScenarioError::Parse(msg) => anyhow!("{}: {}", path.display(), msg.trim_end()),
        other => anyhow!("{}: {other}", path.display()),
    }
}

/// Parses and validates a scenario config without resolving traces (for configs that embed it).
pub fn resolve(config: ScenarioConfig, origin: &Path) -> Result<Arc<Scenario>> {
    let traces = FsTraces { base_dir: origin.parent().map(Path::to_path_buf).unwrap_or_default() };
    Scenario::resolve(config, &traces).map(Arc::new).map_err(|e| describe(origin, e))
}

/// Loads a scenario file.
pub fn load(path: &Path) -> Result<Arc<Scenario>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read scenario {}", path.display()))?;
    let config = ScenarioConfig::from_toml(&text).map_err(|e| describe(path, e))?;
    resolve(config, path)
}
