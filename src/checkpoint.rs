//! Checkpoints: self-describing folders `checkpoints/<run>/step_<N>/` written atomically.
//!
//! A checkpoint is assembled in a temporary sibling folder (`.step_<N>.tmp-<pid>`), every file
//! is flushed and synced, and the folder is renamed into place, so a crash at any point leaves
//! either the complete new checkpoint or none: the last good one is never touched. `best/`
//! (best by evaluation) is replaced the same way through a rename of the old one aside first.
//! Keep-last-K deletes only completed `step_<N>` folders older than the newest K.
//!
//! Contents (see [`CheckpointFiles`]): `config.toml` (the resolved training config, scenario
//! inlined), `metadata.json` (format version, splitwise version, seed, step, wall time,
//! observation layout and fingerprint, agent kind, evaluation score), the agent's files
//! (`agent/…`: weights, optimizer state, normaliser statistics, RNG), `env_state.json` (the
//! vector env, RNG streams included) and `trainer_state.json`.

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Version of the checkpoint folder layout.
pub const CHECKPOINT_FORMAT_VERSION: u32 = 1;

pub const METADATA_FILE: &str = "metadata.json";
pub const CONFIG_FILE: &str = "config.toml";
pub const ENV_STATE_FILE: &str = "env_state.json";
pub const TRAINER_STATE_FILE: &str = "trainer_state.json";
pub const AGENT_DIR: &str = "agent";
pub const BEST_DIR: &str = "best";

/// What a checkpoint says about itself.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Metadata {
    pub format_version: u32,
    pub splitwise_version: String,
    pub run_name: String,
    pub seed: u64,
    /// Env steps (all vector-env members together) when the checkpoint was taken.
    pub step: u64,
    pub updates: u64,
    pub wall_time_s: f64,
    /// Unix time of writing, seconds.
    pub written_unix_s: u64,
    pub env_id: String,
    pub observation_layout: String,
    pub observation_fingerprint: String,
    pub agent_kind: String,
    /// Mean deterministic evaluation return at this step, if one ran.
    pub eval_return: Option<f64>,
}

/// The files of one checkpoint, as bytes: the caller serialises, this module writes and reads.
#[derive(Clone, Debug, PartialEq)]
pub struct CheckpointFiles {
    pub metadata: Metadata,
    pub config_toml: String,
    /// Relative path (inside `agent/`) → contents.
    pub agent: Vec<(String, Vec<u8>)>,
    pub env_state_json: Vec<u8>,
    pub trainer_state_json: Vec<u8>,
}

fn step_dir_name(step: u64) -> String {
    format!("step_{step}")
}

/// Steps of the completed `step_<N>` folders of a run, ascending.
pub fn list_steps(run_dir: &Path) -> Result<Vec<u64>> {
    let mut steps = Vec::new();
    if !run_dir.exists() {
        return Ok(steps);
    }
    for entry in fs::read_dir(run_dir).with_context(|| format!("cannot list {}", run_dir.display()))? {
        let entry = entry.with_context(|| format!("cannot list {}", run_dir.display()))?;
        let name = entry.file_name();
        if let Some(n) = name.to_str().and_then(|n| n.strip_prefix("step_")).and_then(|n| n.parse().ok()) {
            steps.push(n);
        }
    }
    steps.sort_unstable();
    Ok(steps)
}

fn write_synced(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut f = fs::File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
    f.write_all(bytes).with_context(|| format!("cannot write {}", path.display()))?;
    f.sync_all().with_context(|| format!("cannot sync {}", path.display()))
}

fn sync_dir(path: &Path) -> Result<()> {
    // A directory fsync makes the renames inside it durable (POSIX); best effort elsewhere.
    match fs::File::open(path) {
        Ok(d) => d.sync_all().or(Ok(())),
        Err(e) => Err(e).with_context(|| format!("cannot open {}", path.display())),
    }
}

/// Writes `files` into a temporary folder next to `target`, then renames it to `target`.
fn write_folder_atomically(target: &Path, files: &CheckpointFiles) -> Result<()> {
    let parent = target.parent().context("a checkpoint folder needs a parent")?;
    fs::create_dir_all(parent).with_context(|| format!("cannot create {}", parent.display()))?;
    let name = target.file_name().and_then(|n| n.to_str()).context("checkpoint folder name")?;
    let tmp = parent.join(format!(".{name}.tmp-{}", std::process::id()));
    if tmp.exists() {
        fs::remove_dir_all(&tmp).with_context(|| format!("cannot clear {}", tmp.display()))?;
    }
    fs::create_dir_all(tmp.join(AGENT_DIR)).with_context(|| format!("cannot create {}", tmp.display()))?;
    let metadata = serde_json::to_vec_pretty(&files.metadata).context("serialising checkpoint metadata")?;
    write_synced(&tmp.join(METADATA_FILE), &metadata)?;
    write_synced(&tmp.join(CONFIG_FILE), files.config_toml.as_bytes())?;
    write_synced(&tmp.join(ENV_STATE_FILE), &files.env_state_json)?;
    write_synced(&tmp.join(TRAINER_STATE_FILE), &files.trainer_state_json)?;
    for (rel, bytes) in &files.agent {
        if rel.contains("..") || Path::new(rel).is_absolute() {
            bail!("agent file name {rel} must stay inside the checkpoint");
        }
        write_synced(&tmp.join(AGENT_DIR).join(rel), bytes)?;
    }
    sync_dir(&tmp.join(AGENT_DIR))?;
    sync_dir(&tmp)?;
    fs::rename(&tmp, target).with_context(|| format!("cannot move {} to {}", tmp.display(), target.display()))?;
    sync_dir(parent)
}

/// Writes checkpoint `step_<N>` of a run and deletes completed ones beyond the newest
/// `keep_last` (0 keeps all). Returns the new folder.
pub fn save(run_dir: &Path, files: &CheckpointFiles, keep_last: usize) -> Result<PathBuf> {
    let target = run_dir.join(step_dir_name(files.metadata.step));
    if target.exists() {
        bail!("checkpoint {} already exists; refusing to overwrite it", target.display());
    }
    write_folder_atomically(&target, files)?;
    if keep_last > 0 {
        let steps = list_steps(run_dir)?;
        for &old in steps.iter().rev().skip(keep_last) {
            let dir = run_dir.join(step_dir_name(old));
            fs::remove_dir_all(&dir).with_context(|| format!("cannot delete old checkpoint {}", dir.display()))?;
        }
    }
    Ok(target)
}

/// Replaces `best/` with `files`: the new folder is complete before the old one is removed.
pub fn save_best(run_dir: &Path, files: &CheckpointFiles) -> Result<PathBuf> {
    let best = run_dir.join(BEST_DIR);
    let staged = run_dir.join(format!("{BEST_DIR}.new"));
    let old = run_dir.join(format!("{BEST_DIR}.old"));
    if staged.exists() {
        fs::remove_dir_all(&staged).with_context(|| format!("cannot clear {}", staged.display()))?;
    }
    write_folder_atomically(&staged, files)?;
    if old.exists() {
        fs::remove_dir_all(&old).with_context(|| format!("cannot clear {}", old.display()))?;
    }
    if best.exists() {
        fs::rename(&best, &old).with_context(|| format!("cannot move {} aside", best.display()))?;
    }
    fs::rename(&staged, &best).with_context(|| format!("cannot install {}", best.display()))?;
    sync_dir(run_dir)?;
    if old.exists() {
        fs::remove_dir_all(&old).with_context(|| format!("cannot delete {}", old.display()))?;
    }
    Ok(best)
}

/// Resolves what `--resume PATH` or `ckpt:PATH` names: a checkpoint folder (has
/// `metadata.json`), or a run folder (its newest `step_<N>`; a `best.old` left by a crash
/// during [`save_best`] is ignored).
pub fn resolve(path: &Path) -> Result<PathBuf> {
    if path.join(METADATA_FILE).is_file() {
        return Ok(path.to_path_buf());
    }
    if !path.exists() {
        bail!("checkpoint {} does not exist", path.display());
    }
    match list_steps(path)?.last() {
        Some(&step) => Ok(path.join(step_dir_name(step))),
        None => bail!(
            "{} is neither a checkpoint (no {METADATA_FILE}) nor a run folder with step_<N> checkpoints",
            path.display()
        ),
    }
}

/// Reads every file of a checkpoint folder; errors name the file and what is wrong with it.
pub fn load(dir: &Path) -> Result<CheckpointFiles> {
    let read = |name: &str| -> Result<Vec<u8>> {
        let p = dir.join(name);
        fs::read(&p).with_context(|| format!("checkpoint {}: cannot read {name}", dir.display()))
    };
    let metadata: Metadata = serde_json::from_slice(&read(METADATA_FILE)?)
        .with_context(|| format!("checkpoint {}: {METADATA_FILE} is corrupt or from another format", dir.display()))?;
    if metadata.format_version != CHECKPOINT_FORMAT_VERSION {
        bail!(
            "checkpoint {}: format version {} (this splitwise reads version {CHECKPOINT_FORMAT_VERSION})",
            dir.display(),
            metadata.format_version
        );
    }
    let config_toml = String::from_utf8(read(CONFIG_FILE)?)
        .with_context(|| format!("checkpoint {}: {CONFIG_FILE} is not UTF-8", dir.display()))?;
    let agent_dir = dir.join(AGENT_DIR);
    let mut agent = Vec::new();
    let entries =
        fs::read_dir(&agent_dir).with_context(|| format!("checkpoint {}: no {AGENT_DIR}/ folder", dir.display()))?;
    for entry in entries {
        let entry = entry.with_context(|| format!("cannot list {}", agent_dir.display()))?;
        let name = entry.file_name().to_string_lossy().to_string();
        let bytes = fs::read(entry.path()).with_context(|| format!("cannot read {}", entry.path().display()))?;
        agent.push((name, bytes));
    }
    agent.sort();
    Ok(CheckpointFiles {
        metadata,
        config_toml,
        agent,
        env_state_json: read(ENV_STATE_FILE)?,
        trainer_state_json: read(TRAINER_STATE_FILE)?,
    })
}

impl CheckpointFiles {
    /// The contents of `agent/<name>`, or an error naming the checkpoint and the file.
    pub fn agent_file(&self, name: &str, dir: &Path) -> Result<&[u8]> {
        self.agent
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, b)| b.as_slice())
            .with_context(|| format!("checkpoint {}: {AGENT_DIR}/{name} is missing", dir.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(step: u64) -> CheckpointFiles {
        CheckpointFiles {
            metadata: Metadata {
                format_version: CHECKPOINT_FORMAT_VERSION,
                splitwise_version: "test".into(),
                run_name: "r".into(),
                seed: 1,
                step,
                updates: step / 10,
                wall_time_s: 1.5,
                written_unix_s: 0,
                env_id: "CartPole-v1".into(),
                observation_layout: "cartpole-v1".into(),
                observation_fingerprint: "abc".into(),
                agent_kind: "ppo".into(),
                eval_return: Some(3.0),
            },
            config_toml: "version = 1\n".into(),
            agent: vec![("meta.json".into(), b"{}".to_vec()), ("weights.bpk".into(), vec![1, 2, 3])],
            env_state_json: b"{\"a\":1}".to_vec(),
            trainer_state_json: b"{}".to_vec(),
        }
    }

    #[test]
    fn save_load_round_trip_and_keep_last() {
        let dir = tempfile::tempdir().unwrap();
        for step in [10, 20, 30, 40] {
            save(dir.path(), &files(step), 2).unwrap();
        }
        assert_eq!(list_steps(dir.path()).unwrap(), vec![30, 40]);
        let back = load(&dir.path().join("step_40")).unwrap();
        assert_eq!(back, files(40));
        assert_eq!(resolve(dir.path()).unwrap(), dir.path().join("step_40"));
        // No temporary folder is left behind.
        let names: Vec<String> =
            fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into()).collect();
        assert!(names.iter().all(|n| !n.contains("tmp")), "{names:?}");
        assert!(save(dir.path(), &files(40), 2).is_err(), "never overwrites a checkpoint");
    }

    #[test]
    fn an_interrupted_write_leaves_the_last_good_checkpoint() {
        let dir = tempfile::tempdir().unwrap();
        save(dir.path(), &files(10), 0).unwrap();
        // A crash mid-write leaves a temporary folder that is neither listed nor resolved.
        let tmp = dir.path().join(".step_20.tmp-999");
        fs::create_dir_all(tmp.join(AGENT_DIR)).unwrap();
        fs::write(tmp.join(METADATA_FILE), b"{ truncated").unwrap();
        assert_eq!(list_steps(dir.path()).unwrap(), vec![10]);
        assert_eq!(resolve(dir.path()).unwrap(), dir.path().join("step_10"));
        assert_eq!(load(&dir.path().join("step_10")).unwrap(), files(10));
    }

    #[test]
    fn best_is_replaced_whole() {
        let dir = tempfile::tempdir().unwrap();
        save_best(dir.path(), &files(10)).unwrap();
        save_best(dir.path(), &files(20)).unwrap();
        assert_eq!(load(&dir.path().join(BEST_DIR)).unwrap().metadata.step, 20);
        assert!(!dir.path().join("best.old").exists() && !dir.path().join("best.new").exists());
    }

    #[test]
    fn corrupt_or_missing_files_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let ck = save(dir.path(), &files(5), 0).unwrap();
        fs::write(ck.join(METADATA_FILE), b"not json").unwrap();
        let e = format!("{:#}", load(&ck).unwrap_err());
        assert!(e.contains("metadata.json") && e.contains("corrupt"), "{e}");
        let ck = save(dir.path(), &files(6), 0).unwrap();
        fs::remove_file(ck.join(ENV_STATE_FILE)).unwrap();
        let e = format!("{:#}", load(&ck).unwrap_err());
        assert!(e.contains("env_state.json"), "{e}");
        let e = format!("{:#}", resolve(&dir.path().join("nope")).unwrap_err());
        assert!(e.contains("does not exist"), "{e}");
    }
}
