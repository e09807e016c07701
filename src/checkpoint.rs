//! Checkpoints: self-describing folders `checkpoints/<run>/step_<N>/` written atomically.
//!
//! A checkpoint is assembled in a temporary sibling folder (`.step_<N>.tmp-<pid>`), every file
//! is flushed and synced, and the folder is renamed into place, so a crash at any point leaves
//! either the complete new checkpoint or none: the last good one is never touched. `best/`
//! (best by evaluation) is replaced the same way through a rename of the old one aside first.
//! Keep-last-K deletes only completed `step_<N>` folders older than the newest K (renamed
//! aside to a hidden `.step_<N>.del-<pid>` first, so a kill mid-delete never leaves a partial
//! `step_<N>`). [`recover`] clears what a killed writer can leave (temporary folders, a `best/`
//! caught between its two renames) before a run is resumed.
//!
//! Integrity: `metadata.json` records the CRC-32C of every other file (`files_crc32c`) and of
//! the weights' tensor contents (`weights_content_crc32c`, [`content_crc32c`]); [`load`] checks
//! the files and the agent loader checks the contents, so a flipped bit is an error, never a
//! silently different policy. The content checksum is reproducible (the burnpack bytes are
//! not: burn writes random parameter ids), so two runs with identical weights have the same one.
//!
//! Contents (see [`CheckpointFiles`]): `config.toml` (the resolved training config, scenario
//! inlined), `metadata.json` (format version, splitwise version, seed, step, wall time,
//! observation layout and fingerprint, agent kind, evaluation score), the agent's files
//! (`agent/…`: weights, optimizer state, normaliser statistics, RNG), `env_state.json` (the
//! vector env, RNG streams included) and `trainer_state.json`.

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
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
    /// CRC-32C (hex) of the weights' tensor contents ([`content_crc32c`]): equal for equal
    /// weights, whatever ids burn wrote into `weights.bpk`. Absent in older checkpoints.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weights_content_crc32c: Option<String>,
    /// CRC-32C (hex) of every other file of the checkpoint, by relative path; filled when the
    /// folder is written and checked by [`load`]. Empty in older checkpoints.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub files_crc32c: BTreeMap<String, String>,
}

/// CRC-32C of tensor contents: per tensor, its length (u64 LE) then its values (f32 LE), in
/// the order given. Depends only on the values, so it verifies exact resume across runs.
pub fn content_crc32c(tensors: &[Vec<f32>]) -> String {
    let mut crc = 0u32;
    for t in tensors {
        crc = crc32c::crc32c_append(crc, &(t.len() as u64).to_le_bytes());
        let bytes: Vec<u8> = t.iter().flat_map(|v| v.to_le_bytes()).collect();
        crc = crc32c::crc32c_append(crc, &bytes);
    }
    crc_hex(crc)
}

fn crc_hex(crc: u32) -> String {
    format!("{crc:08x}")
}

/// Test-only crash points: when `SPLITWISE_TEST_CRASH_AT=<point>[:<n>]` names this point, the
/// process aborts at its n-th visit (default 1st) without unwinding or flushing, as a `kill -9`
/// would. Crash tests use it to stop at moments a timer cannot hit reliably (e.g. between the
/// two renames of [`save_best`]). Unset, it costs one environment lookup per call.
pub fn crash_point(point: &str) {
    use std::sync::Mutex;
    static VISITS: Mutex<Vec<(String, u32)>> = Mutex::new(Vec::new());
    let Ok(spec) = std::env::var("SPLITWISE_TEST_CRASH_AT") else { return };
    let (name, nth) = match spec.split_once(':') {
        Some((n, k)) => (n, k.parse().unwrap_or(1)),
        None => (spec.as_str(), 1),
    };
    if name != point {
        return;
    }
    let mut visits = VISITS.lock().unwrap_or_else(|e| e.into_inner());
    let count = match visits.iter_mut().find(|(p, _)| p == point) {
        Some((_, c)) => {
            *c += 1;
            *c
        }
        None => {
            visits.push((point.to_string(), 1));
            1
        }
    };
    if count == nth {
        eprintln!("SPLITWISE_TEST_CRASH_AT: aborting at {point} (visit {count})");
        std::process::abort();
    }
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
    let mut metadata = files.metadata.clone();
    metadata.files_crc32c = files.crc32c_by_path();
    write_synced(&tmp.join(CONFIG_FILE), files.config_toml.as_bytes())?;
    write_synced(&tmp.join(ENV_STATE_FILE), &files.env_state_json)?;
    write_synced(&tmp.join(TRAINER_STATE_FILE), &files.trainer_state_json)?;
    for (rel, bytes) in &files.agent {
        if rel.contains("..") || Path::new(rel).is_absolute() {
            bail!("agent file name {rel} must stay inside the checkpoint");
        }
        write_synced(&tmp.join(AGENT_DIR).join(rel), bytes)?;
    }
    // Metadata last: it describes (and checksums) files already on disk.
    let metadata = serde_json::to_vec_pretty(&metadata).context("serialising checkpoint metadata")?;
    write_synced(&tmp.join(METADATA_FILE), &metadata)?;
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
    crash_point("checkpoint-written");
    if keep_last > 0 {
        let steps = list_steps(run_dir)?;
        for &old in steps.iter().rev().skip(keep_last) {
            // Renamed aside first: a kill mid-delete leaves a hidden folder `recover` clears,
            // never a partial `step_<N>` that would be listed.
            let dir = run_dir.join(step_dir_name(old));
            let aside = run_dir.join(format!(".{}.del-{}", step_dir_name(old), std::process::id()));
            fs::rename(&dir, &aside).with_context(|| format!("cannot move old checkpoint {} aside", dir.display()))?;
            fs::remove_dir_all(&aside).with_context(|| format!("cannot delete old checkpoint {}", aside.display()))?;
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
    crash_point("best-between-renames");
    fs::rename(&staged, &best).with_context(|| format!("cannot install {}", best.display()))?;
    sync_dir(run_dir)?;
    if old.exists() {
        fs::remove_dir_all(&old).with_context(|| format!("cannot delete {}", old.display()))?;
    }
    Ok(best)
}

/// Is the process that owns a `…tmp-<pid>` / `…del-<pid>` folder still running? Linux answers
/// through procfs; elsewhere a leftover is assumed dead (no other writer is supported).
fn pid_alive(pid: u32) -> bool {
    pid != std::process::id() && Path::new("/proc").is_dir() && Path::new(&format!("/proc/{pid}")).exists()
}

/// The owner pid of a hidden temporary folder name (`.x.tmp-<pid>`, `.x.del-<pid>`).
fn leftover_pid(name: &str) -> Option<u32> {
    if !name.starts_with('.') {
        return None;
    }
    let (_, pid) = name.rsplit_once(".tmp-").or_else(|| name.rsplit_once(".del-"))?;
    pid.parse().ok()
}

/// Puts a run folder back into a state a resume can continue from, after a writer was killed:
/// deletes temporary folders of dead writers (`.step_<N>.tmp-<pid>`, `.best.new.tmp-<pid>`,
/// `.step_<N>.del-<pid>`) and finishes an interrupted [`save_best`]: a complete `best.new`
/// (it exists only after its own atomic write) is installed, else a `best.old` left without a
/// `best` is moved back. Returns one line per repair, for the user.
pub fn recover(run_dir: &Path) -> Result<Vec<String>> {
    let mut repairs = Vec::new();
    if !run_dir.is_dir() {
        return Ok(repairs);
    }
    for entry in fs::read_dir(run_dir).with_context(|| format!("cannot list {}", run_dir.display()))? {
        let entry = entry.with_context(|| format!("cannot list {}", run_dir.display()))?;
        let name = entry.file_name().to_string_lossy().to_string();
        if leftover_pid(&name).is_some_and(|p| !pid_alive(p)) {
            fs::remove_dir_all(entry.path())
                .with_context(|| format!("cannot delete the leftover {}", entry.path().display()))?;
            repairs.push(format!("deleted {name} (a write interrupted by a crash)"));
        }
    }
    let best = run_dir.join(BEST_DIR);
    let staged = run_dir.join(format!("{BEST_DIR}.new"));
    let old = run_dir.join(format!("{BEST_DIR}.old"));
    if staged.join(METADATA_FILE).is_file() {
        if best.exists() {
            if old.exists() {
                fs::remove_dir_all(&old).with_context(|| format!("cannot clear {}", old.display()))?;
            }
            fs::rename(&best, &old).with_context(|| format!("cannot move {} aside", best.display()))?;
        }
        fs::rename(&staged, &best).with_context(|| format!("cannot install {}", best.display()))?;
        repairs.push(format!("installed {} (its replacement was interrupted)", best.display()));
    } else if staged.exists() {
        fs::remove_dir_all(&staged).with_context(|| format!("cannot clear {}", staged.display()))?;
    }
    if old.exists() {
        if best.exists() {
            fs::remove_dir_all(&old).with_context(|| format!("cannot delete {}", old.display()))?;
        } else {
            fs::rename(&old, &best).with_context(|| format!("cannot restore {}", best.display()))?;
            repairs.push(format!("restored {} from best.old", best.display()));
        }
    }
    sync_dir(run_dir)?;
    Ok(repairs)
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
    let files = CheckpointFiles {
        metadata,
        config_toml,
        agent,
        env_state_json: read(ENV_STATE_FILE)?,
        trainer_state_json: read(TRAINER_STATE_FILE)?,
    };
    let actual = files.crc32c_by_path();
    for (path, recorded) in &files.metadata.files_crc32c {
        match actual.get(path) {
            Some(crc) if crc == recorded => {}
            Some(crc) => bail!(
                "checkpoint {}: {path} is corrupt: its CRC-32C is {crc}, {METADATA_FILE} records {recorded} \
                 (the file changed after it was written); use another checkpoint",
                dir.display()
            ),
            None => bail!("checkpoint {}: {path} is missing ({METADATA_FILE} lists it)", dir.display()),
        }
    }
    Ok(files)
}

impl CheckpointFiles {
    /// CRC-32C (hex) of every file but `metadata.json`, by path relative to the checkpoint.
    pub fn crc32c_by_path(&self) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        out.insert(CONFIG_FILE.to_string(), crc_hex(crc32c::crc32c(self.config_toml.as_bytes())));
        out.insert(ENV_STATE_FILE.to_string(), crc_hex(crc32c::crc32c(&self.env_state_json)));
        out.insert(TRAINER_STATE_FILE.to_string(), crc_hex(crc32c::crc32c(&self.trainer_state_json)));
        for (name, bytes) in &self.agent {
            out.insert(format!("{AGENT_DIR}/{name}"), crc_hex(crc32c::crc32c(bytes)));
        }
        out
    }

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
                weights_content_crc32c: None,
                files_crc32c: BTreeMap::new(),
            },
            config_toml: "version = 1\n".into(),
            agent: vec![("meta.json".into(), b"{}".to_vec()), ("weights.bpk".into(), vec![1, 2, 3])],
            env_state_json: b"{\"a\":1}".to_vec(),
            trainer_state_json: b"{}".to_vec(),
        }
    }

    /// `files(step)` as [`load`] returns it: with the file checksums the writer recorded.
    fn written(step: u64) -> CheckpointFiles {
        let mut f = files(step);
        f.metadata.files_crc32c = f.crc32c_by_path();
        f
    }

    #[test]
    fn save_load_round_trip_and_keep_last() {
        let dir = tempfile::tempdir().unwrap();
        for step in [10, 20, 30, 40] {
            save(dir.path(), &files(step), 2).unwrap();
        }
        assert_eq!(list_steps(dir.path()).unwrap(), vec![30, 40]);
        let back = load(&dir.path().join("step_40")).unwrap();
        assert_eq!(back, written(40));
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
        assert_eq!(load(&dir.path().join("step_10")).unwrap(), written(10));
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

    #[test]
    fn a_flipped_bit_in_any_file_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let ck = save(dir.path(), &files(7), 0).unwrap();
        for rel in ["agent/weights.bpk", "agent/meta.json", "env_state.json", "trainer_state.json", "config.toml"] {
            let path = ck.join(rel);
            let good = fs::read(&path).unwrap();
            let mut bad = good.clone();
            bad[0] ^= 0x01;
            fs::write(&path, &bad).unwrap();
            let e = format!("{:#}", load(&ck).unwrap_err());
            assert!(e.contains(rel) && e.contains("corrupt") && e.contains("CRC-32C"), "{rel}: {e}");
            fs::write(&path, &good).unwrap();
        }
        assert!(load(&ck).is_ok());
    }

    #[test]
    fn content_checksum_depends_on_values_and_shapes_only() {
        let a = vec![vec![1.0f32, 2.0], vec![3.0]];
        assert_eq!(content_crc32c(&a), content_crc32c(&a.clone()));
        assert_ne!(content_crc32c(&a), content_crc32c(&[vec![1.0, 2.0, 3.0]]), "tensor boundaries count");
        let mut b = a.clone();
        b[1][0] = f32::from_bits(3.0f32.to_bits() ^ 1);
        assert_ne!(content_crc32c(&a), content_crc32c(&b), "one flipped mantissa bit");
        assert_eq!(content_crc32c(&a).len(), 8);
    }

    #[test]
    fn recover_clears_dead_writers_leftovers() {
        let dir = tempfile::tempdir().unwrap();
        save(dir.path(), &files(10), 0).unwrap();
        // A pid that cannot be alive (above the kernel's pid_max) owns these leftovers.
        for name in [".step_20.tmp-4194999", ".best.new.tmp-4194999", ".step_5.del-4194999"] {
            fs::create_dir_all(dir.path().join(name).join(AGENT_DIR)).unwrap();
        }
        let repairs = recover(dir.path()).unwrap();
        assert_eq!(repairs.len(), 3, "{repairs:?}");
        let names: Vec<String> =
            fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into()).collect();
        assert_eq!(names, vec!["step_10".to_string()]);
        assert!(recover(dir.path()).unwrap().is_empty(), "idempotent");
    }

    #[test]
    fn recover_finishes_a_save_best_killed_between_its_renames() {
        // The state the kill leaves: the old best moved aside, the new one staged, no `best/`.
        let dir = tempfile::tempdir().unwrap();
        save_best(dir.path(), &files(10)).unwrap();
        fs::rename(dir.path().join(BEST_DIR), dir.path().join("best.old")).unwrap();
        write_folder_atomically(&dir.path().join("best.new"), &files(20)).unwrap();
        assert!(!dir.path().join(BEST_DIR).exists());
        recover(dir.path()).unwrap();
        assert_eq!(load(&dir.path().join(BEST_DIR)).unwrap().metadata.step, 20, "the newer best is installed");
        assert!(!dir.path().join("best.old").exists() && !dir.path().join("best.new").exists());
        // Killed after moving the old one aside but before the new one was staged: restored.
        fs::rename(dir.path().join(BEST_DIR), dir.path().join("best.old")).unwrap();
        recover(dir.path()).unwrap();
        assert_eq!(load(&dir.path().join(BEST_DIR)).unwrap().metadata.step, 20);
        // Killed after staging but before moving the old one aside: the staged one wins.
        write_folder_atomically(&dir.path().join("best.new"), &files(30)).unwrap();
        recover(dir.path()).unwrap();
        assert_eq!(load(&dir.path().join(BEST_DIR)).unwrap().metadata.step, 30);
        assert!(!dir.path().join("best.old").exists() && !dir.path().join("best.new").exists());
    }
}
