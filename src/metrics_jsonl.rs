//! `splitwise train --metrics-jsonl PATH`: every scalar the run logs to TensorBoard, also as
//! JSON lines, one object per training round (update), so external tools (a Ray Tune trial, a
//! dashboard, `tail -f | jq`) can follow a run without a TensorBoard reader:
//!
//! ```json
//! {"step":2048,"wall_time":1764729600.1,"charts/sps":3512.0,"losses/value_loss":0.42,...}
//! ```
//!
//! `step` is the run's global step (TensorBoard's x-axis), `wall_time` seconds since the Unix
//! epoch; every other key is a TensorBoard tag with its value (`null` where the value is not
//! finite). Each line is flushed when written and synced with the checkpoint that covers it. A
//! resumed run first drops the lines after its checkpoint's step (they are logged again), like
//! the TensorBoard events; a fresh run refuses a file that already holds lines. `-` writes the
//! lines to stdout instead (the run's human-readable lines and progress bar then go to stderr).
//!
//! Written by hand over serde_json (keys in sorted order): a line per round needs nothing more.

use anyhow::{Context, Result, bail};
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};

/// The `--metrics-jsonl` value that means stdout.
pub const STDOUT: &str = "-";

/// Whether `--metrics-jsonl` sends the lines to stdout.
pub fn is_stdout(path: Option<&Path>) -> bool {
    path.is_some_and(|p| p.as_os_str() == STDOUT)
}

pub struct MetricsJsonl {
    path: PathBuf,
    out: BufWriter<Sink>,
    pending: Option<(u64, serde_json::Map<String, serde_json::Value>)>,
}

/// Where the lines go.
enum Sink {
    File(File),
    Stdout(std::io::Stdout),
}

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Sink::File(f) => f.write(buf),
            Sink::Stdout(s) => s.write(buf),
        }
    }
    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Sink::File(f) => f.flush(),
            Sink::Stdout(s) => s.flush(),
        }
    }
}

/// Refuses, before a fresh run does any work, a metrics file that already holds lines (a fresh
/// run never appends to or overwrites another run's metrics).
pub fn check_fresh(path: &Path) -> Result<()> {
    if is_stdout(Some(path)) {
        return Ok(());
    }
    match std::fs::metadata(path) {
        Ok(m) if m.is_dir() => bail!("--metrics-jsonl {}: is a folder; give a file path", path.display()),
        Ok(m) if m.len() > 0 => bail!(
            "--metrics-jsonl {}: the file already holds metrics (of another run?); choose a new path or remove it. \
             A resumed run (--resume) continues its own file",
            path.display()
        ),
        _ => Ok(()),
    }
}

impl MetricsJsonl {
    /// Opens `path` for a run continuing after `step`: lines of later steps (logged by a run that
    /// stopped before its next checkpoint) are dropped first, through a rewrite renamed into
    /// place, so the file never loses the lines it keeps.
    pub fn open(path: &Path, step: u64) -> Result<Self> {
        if is_stdout(Some(path)) {
            return Ok(Self {
                path: path.to_path_buf(),
                out: BufWriter::new(Sink::Stdout(std::io::stdout())),
                pending: None,
            });
        }
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("--metrics-jsonl {}: cannot create {}", path.display(), parent.display()))?;
        }
        if path.exists() {
            let kept = lines_up_to(path, step)?;
            let tmp = path.with_extension("jsonl.partial");
            {
                let mut w =
                    BufWriter::new(File::create(&tmp).with_context(|| format!("cannot write {}", tmp.display()))?);
                for line in &kept {
                    writeln!(w, "{line}").with_context(|| format!("writing {}", tmp.display()))?;
                }
                w.flush().with_context(|| format!("writing {}", tmp.display()))?;
                w.get_ref().sync_all().with_context(|| format!("syncing {}", tmp.display()))?;
            }
            std::fs::rename(&tmp, path).with_context(|| format!("cannot replace {}", path.display()))?;
        }
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .with_context(|| format!("--metrics-jsonl {}: cannot open for writing", path.display()))?;
        Ok(Self { path: path.to_path_buf(), out: BufWriter::new(Sink::File(file)), pending: None })
    }

    /// Adds scalars of `step` to the line being built (written by [`Self::end_round`]).
    pub fn record<'a>(&mut self, step: u64, scalars: impl IntoIterator<Item = (&'a str, f64)>) -> Result<()> {
        if self.pending.as_ref().is_some_and(|(s, _)| *s != step) {
            self.end_round()?;
        }
        let (_, map) = self.pending.get_or_insert_with(|| (step, serde_json::Map::new()));
        for (tag, value) in scalars {
            // serde_json writes a non-finite number as null.
            map.insert(tag.to_string(), serde_json::json!(value));
        }
        Ok(())
    }

    /// Writes and flushes the round's line, if any.
    pub fn end_round(&mut self) -> Result<()> {
        if let Some((step, scalars)) = self.pending.take() {
            let wall_time =
                std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64());
            let mut line = serde_json::Map::new();
            line.insert("step".into(), step.into());
            line.insert("wall_time".into(), serde_json::json!(wall_time));
            line.extend(scalars);
            let text = serde_json::to_string(&line).context("serialising a metrics line")?;
            writeln!(self.out, "{text}").with_context(|| format!("writing {}", self.path.display()))?;
            self.out.flush().with_context(|| format!("writing {}", self.path.display()))?;
        }
        Ok(())
    }

    /// Everything written so far is on disk (called before a checkpoint says its step is done).
    pub fn sync(&mut self) -> Result<()> {
        self.end_round()?;
        match self.out.get_ref() {
            Sink::File(f) => f.sync_all().with_context(|| format!("syncing {}", self.path.display())),
            Sink::Stdout(_) => Ok(()),
        }
    }
}

/// The lines of `path` whose `step` is at most `step`; a line that is not a JSON object with a
/// whole-number `step` (the torn last line of a killed run) is dropped.
fn lines_up_to(path: &Path, step: u64) -> Result<Vec<String>> {
    let file = File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut kept = Vec::new();
    for line in BufReader::new(file).lines() {
        let line = line.with_context(|| format!("reading {}", path.display()))?;
        let s = serde_json::from_str::<serde_json::Value>(&line).ok().and_then(|v| v.get("step")?.as_u64());
        if s.is_some_and(|s| s <= step) {
            kept.push(line);
        }
    }
    Ok(kept)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_per_round_and_a_resume_drops_the_lines_after_its_checkpoint() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("new/m.jsonl");
        check_fresh(&path).unwrap();
        let mut m = MetricsJsonl::open(&path, 0).unwrap();
        m.record(10, [("a/x", 1.0), ("b", f64::NAN)]).unwrap();
        m.record(10, [("c", 2.5)]).unwrap();
        m.record(20, [("a/x", 3.0)]).unwrap();
        m.record(30, [("a/x", 4.0)]).unwrap();
        m.sync().unwrap();
        let lines: Vec<serde_json::Value> =
            std::fs::read_to_string(&path).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(lines.len(), 3);
        assert_eq!((lines[0]["step"].as_u64(), lines[0]["a/x"].as_f64()), (Some(10), Some(1.0)));
        assert!(lines[0]["b"].is_null() && lines[0]["c"] == 2.5 && lines[0]["wall_time"].as_f64().unwrap() > 0.0);
        // A torn line of a killed run, then a resume from step 20.
        std::fs::write(&path, std::fs::read_to_string(&path).unwrap() + "{\"step\":4").unwrap();
        let e = check_fresh(&path).unwrap_err().to_string();
        assert!(e.contains("already holds metrics"), "{e}");
        let mut m = MetricsJsonl::open(&path, 20).unwrap();
        m.record(30, [("a/x", 5.0)]).unwrap();
        m.sync().unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<serde_json::Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        let steps: Vec<u64> = lines.iter().map(|l| l["step"].as_u64().unwrap()).collect();
        assert_eq!(steps, [10, 20, 30]);
        // Parsed, not searched for in the text: a wall time such as 1796291774.06 contains "4.0".
        let values: Vec<f64> = lines.iter().map(|l| l["a/x"].as_f64().unwrap()).collect();
        assert_eq!(values, [1.0, 3.0, 5.0], "{text}");
        assert!(check_fresh(dir.path()).unwrap_err().to_string().contains("is a folder"));
    }
}
