//! Crash safety of `splitwise train`: a run killed at any moment (a real `kill -9` of the
//! child process at random times, or an abort at a chosen point through the test-only
//! `SPLITWISE_TEST_CRASH_AT` hook: before the run folder appears, between the two renames of
//! `save_best`, right after a checkpoint or a batch of scalars) resumes with `--resume <run>`
//! (or, when no run folder was created yet, by running the same command again), and the
//! finished run equals an uninterrupted one: the same final weights by content checksum, the
//! same `best/`, and TensorBoard scalars with no duplicate (tag, step) and the same values.
//!
//! `SPLITWISE_CRASH_KILLS` (default 12) sets how many random kills the random test makes;
//! `SPLITWISE_CRASH_SEED` varies their times.

mod common;

use common::tfevents::read_events;
use splitwise::checkpoint;
use splitwise::train::load_agent;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

/// The smoke preset, longer: 1024 steps, checkpoints and evaluations every 128 (so `best/`
/// changes several times), keep-last 2.
fn config(dir: &Path) -> PathBuf {
    let scenario = repo("configs/jetson-llama7b-lte.toml");
    let text = std::fs::read_to_string(repo("configs/smoke.toml"))
        .unwrap()
        .replace("\"jetson-llama7b-lte.toml\"", &format!("{:?}", scenario.to_str().unwrap()))
        .replace("total_steps = 256", "total_steps = 1024");
    let path = dir.join("crash.toml");
    std::fs::write(&path, text).unwrap();
    path
}

fn command(dir: &Path, config: &Path, crash_at: Option<&str>) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_splitwise"));
    c.current_dir(dir).arg("train").arg("--config").arg(config).arg("--run-name").arg("r");
    if dir.join("checkpoints/r").exists() {
        c.arg("--resume").arg(dir.join("checkpoints/r"));
    }
    match crash_at {
        Some(point) => c.env("SPLITWISE_TEST_CRASH_AT", point),
        None => c.env_remove("SPLITWISE_TEST_CRASH_AT"),
    };
    c
}

fn finished(out: &Output) -> bool {
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    if out.status.success() {
        assert!(stdout.contains("trained to step 1024") || stdout.contains("is finished"), "{stdout}");
        return true;
    }
    // Only a crash may stop it: the abort hook (SIGABRT) or a kill, never an error.
    assert!(out.status.code().is_none(), "train failed instead of crashing: {stderr}");
    false
}

/// Resumes the run in `dir` until it finishes (at most a few tries).
fn resume_to_end(dir: &Path, config: &Path) {
    for _ in 0..3 {
        if finished(&command(dir, config, None).output().unwrap()) {
            return;
        }
    }
    panic!("the run did not finish after resuming");
}

/// What must equal an uninterrupted run's.
#[derive(PartialEq)]
struct Final {
    weights_crc: String,
    best_crc: String,
    best_step: u64,
    /// (tag, step) → value bits, wall-clock tags left out.
    scalars: BTreeMap<(String, i64), u32>,
}

impl std::fmt::Debug for Final {
    // The scalar map is long: a mismatch shows its size and first differing points.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "weights {} best {} (step {}), {} scalars, first {:?}",
            self.weights_crc,
            self.best_crc,
            self.best_step,
            self.scalars.len(),
            self.scalars.iter().take(3).collect::<Vec<_>>()
        )
    }
}

fn assert_same(got: &Final, want: &Final, context: &str) {
    if got != want {
        let diff: Vec<_> = want
            .scalars
            .iter()
            .filter(|(k, v)| got.scalars.get(*k) != Some(*v))
            .take(5)
            .chain(got.scalars.iter().filter(|(k, _)| !want.scalars.contains_key(*k)).take(5))
            .collect();
        panic!("{context}: got {got:?}, want {want:?}; differing scalars {diff:?}");
    }
}

fn final_state(run: &Path) -> Final {
    let content_crc = |ckpt: &Path| {
        let files = checkpoint::load(ckpt).expect("checkpoint loads with its checksums");
        // Recomputed from the loaded tensors (load_agent checks it against the recorded one).
        let agent = load_agent(&files, ckpt, None).expect("agent loads");
        let crc = checkpoint::content_crc32c(&agent.parameter_values());
        assert_eq!(files.metadata.weights_content_crc32c.as_deref(), Some(crc.as_str()));
        (crc, files.metadata.step)
    };
    let (weights_crc, _) = content_crc(&run.join("step_1024"));
    let (best_crc, best_step) = content_crc(&run.join("best"));
    let mut scalars = BTreeMap::new();
    for entry in std::fs::read_dir(run.join("tensorboard")).unwrap() {
        let path = entry.unwrap().path();
        assert!(path.file_name().unwrap().to_string_lossy().starts_with("events.out.tfevents."), "{path:?}");
        for event in read_events(&path) {
            for (tag, value) in event.scalars {
                if tag == "charts/sps" || tag.starts_with("time/") {
                    continue;
                }
                let key = (tag, event.step);
                assert!(scalars.insert(key.clone(), value.to_bits()).is_none(), "duplicate TensorBoard point {key:?}");
            }
        }
    }
    // No leftovers of interrupted writes.
    for entry in std::fs::read_dir(run).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().to_string();
        assert!(!name.starts_with('.') && !name.ends_with(".new") && !name.ends_with(".old"), "leftover {name}");
    }
    Final { weights_crc, best_crc, best_step, scalars }
}

fn uninterrupted() -> &'static Final {
    static REF: std::sync::OnceLock<Final> = std::sync::OnceLock::new();
    REF.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let config = config(dir.path());
        assert!(finished(&command(dir.path(), &config, None).output().unwrap()));
        final_state(&dir.path().join("checkpoints/r"))
    })
}

#[test]
fn a_crash_at_each_write_point_resumes_to_the_uninterrupted_result() {
    let reference = uninterrupted();
    assert!(reference.scalars.len() > 100);
    for point in [
        "run-staged",             // the run folder not yet in place: a fresh `train` starts it
        "checkpoint-written:1",   // step_0 written (inside the staged run): same as above
        "scalars-logged:1",       // before the first scheduled checkpoint
        "update-done:1",          // ditto, after a flush
        "best-between-renames:1", // best/ staged, not yet in place (replacing one: unit-tested)
        "checkpoint-written:3",   // a checkpoint written, keep-last not yet applied
        "scalars-logged:5",       // between checkpoints, events logged after the last one
    ] {
        let dir = tempfile::tempdir().unwrap();
        let config = config(dir.path());
        let out = command(dir.path(), &config, Some(point)).output().unwrap();
        assert!(!finished(&out), "{point}: the hook must stop the run");
        assert!(String::from_utf8_lossy(&out.stderr).contains(point.split(':').next().unwrap()));
        resume_to_end(dir.path(), &config);
        assert_same(&final_state(&dir.path().join("checkpoints/r")), reference, &format!("after a crash at {point}"));
    }
}

#[test]
fn random_kill_9s_during_training_resume_to_the_uninterrupted_result() {
    let reference = uninterrupted();
    let kills: u32 = std::env::var("SPLITWISE_CRASH_KILLS").ok().and_then(|v| v.parse().ok()).unwrap_or(12);
    let mut rng: u64 = std::env::var("SPLITWISE_CRASH_SEED").ok().and_then(|v| v.parse().ok()).unwrap_or(11);
    let mut next = || {
        // SplitMix64: reproducible kill times for a given seed.
        rng = rng.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        (z ^ (z >> 31)) as f64 / u64::MAX as f64
    };
    // How long an uninterrupted run takes here, to spread the kills over it.
    let probe = tempfile::tempdir().unwrap();
    let probe_config = config(probe.path());
    let t0 = Instant::now();
    assert!(finished(&command(probe.path(), &probe_config, None).output().unwrap()));
    let full = t0.elapsed();

    let (mut done_kills, mut chains) = (0, 0);
    while done_kills < kills {
        // One chain: a run killed repeatedly (1-4 times) at random moments, then finished.
        let dir = tempfile::tempdir().unwrap();
        let config = config(dir.path());
        let per_chain = 1 + (next() * 4.0) as u32;
        for _ in 0..per_chain.min(kills - done_kills) {
            let mut child =
                command(dir.path(), &config, None).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap();
            std::thread::sleep(full.mul_f64(next() * 0.9).max(Duration::from_millis(1)));
            child.kill().unwrap(); // SIGKILL
            let out = child.wait_with_output().unwrap();
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(!stderr.contains("panicked") && !stderr.contains("error"), "{stderr}");
            done_kills += 1;
        }
        resume_to_end(dir.path(), &config);
        assert_same(&final_state(&dir.path().join("checkpoints/r")), reference, &format!("chain {chains}"));
        chains += 1;
    }
    eprintln!("{done_kills} kill -9s in {chains} chains, each resumed to the uninterrupted result");
}
