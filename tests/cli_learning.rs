//! The learner learns what there is to learn, end to end through `splitwise train`: on the tiny
//! cloud-load test scenario (`tests/fixtures/tiny-cloud-load.toml`: adapting to the cloud's load
//! pays, and the load is in the observation), a short flat PPO run (100k steps, fixed seed, the
//! shipped agent's hyperparameters) beats the scenario's best fixed plan on the held-out
//! episodes `train` compares it on at the end. Measured: 11.26 against 13.05 (bound 8.04; causal
//! rule `neurosurgeon` 8.51). H-PPO does not yet on the same budget (13.46; docs/agents.md), so
//! it is not asserted here.

use std::path::Path;
use std::process::Command;

/// The number after the last `label` line's colon, e.g. `  trained policy (…): 11.2559`.
fn value(stdout: &str, label: &str) -> f64 {
    let line = stdout.lines().rev().find(|l| l.trim_start().starts_with(label)).unwrap_or_else(|| {
        panic!("no line starting with {label:?} in:\n{stdout}");
    });
    line.rsplit(':').next().and_then(|v| v.trim().parse().ok()).unwrap_or_else(|| panic!("no value in {line:?}"))
}

#[test]
fn a_short_flat_ppo_run_beats_the_best_fixed_plan_of_a_tiny_adaptation_scenario() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/ppo-tiny-cloud-load.toml");
    let out = Command::new(env!("CARGO_BIN_EXE_splitwise"))
        .current_dir(dir.path())
        .args(["train", "--config", config.to_str().expect("utf-8 path")])
        .output()
        .expect("runs");
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success(), "train failed: {}", String::from_utf8_lossy(&out.stderr));
    let trained = value(&stdout, "trained policy");
    let best_static = value(&stdout, "best static plan");
    let bound = value(&stdout, "clairvoyant bound");
    assert!(bound < best_static, "the scenario must have headroom: bound {bound}, best static {best_static}");
    assert!(trained < best_static, "trained {trained} must beat the best fixed plan {best_static}:\n{stdout}");
    assert!(stdout.contains("the trained policy beats the best static plan"), "{stdout}");
}
