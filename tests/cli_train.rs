//! End-to-end tests of `splitwise train`: a smoke run that stops, resumes and leaves a complete
//! run folder with TensorBoard scalars; exact resume (bit-identical weights, states and logged
//! values against an uninterrupted run); divergence stops with the last checkpoint intact; and
//! bad input is refused before any work.

mod common;

use common::tfevents::read_events;
use splitwise::checkpoint;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

/// Runs `splitwise train` in `dir` (run folders go to `dir/checkpoints/`).
fn train(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_splitwise")).current_dir(dir).arg("train").args(args).output().expect("runs")
}

fn ok(out: Output) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(out.status.success(), "train failed: {stderr}");
    String::from_utf8_lossy(&out.stdout).to_string()
}

fn err(out: Output) -> String {
    assert!(!out.status.success(), "train must fail; stdout: {}", String::from_utf8_lossy(&out.stdout));
    String::from_utf8_lossy(&out.stderr).to_string()
}

/// Every scalar a run logged, as (step, tag, value bits), sorted; wall-clock tags (`charts/sps`,
/// `time/*`, a level's `<level>/time/*`) left out.
/// `splitwise export --checkpoint ckpt --out out` in `dir`, which must succeed.
fn export(dir: &Path, ckpt: &Path, out: &str) {
    let export = Command::new(env!("CARGO_BIN_EXE_splitwise"))
        .current_dir(dir)
        .args(["export", "--checkpoint", ckpt.to_str().unwrap(), "--out", out])
        .output()
        .unwrap();
    assert!(export.status.success(), "{}", String::from_utf8_lossy(&export.stderr));
}

fn logged(run: &Path) -> Vec<(i64, String, u32)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(run.join("tensorboard")).expect("a tensorboard folder") {
        for event in read_events(&entry.expect("entry").path()) {
            for (tag, value) in event.scalars {
                if tag != "charts/sps" && !tag.starts_with("time/") && !tag.contains("/time/") {
                    out.push((event.step, tag, value.to_bits()));
                }
            }
        }
    }
    out.sort();
    out
}

fn weights(ckpt: &Path) -> Vec<Vec<f32>> {
    let files = checkpoint::load(ckpt).expect("checkpoint loads");
    splitwise::train::load_agent(&files, ckpt, None).expect("agent loads").parameter_values()
}

fn trainer_state_without_wall_time(ckpt: &Path) -> serde_json::Value {
    let mut v: serde_json::Value =
        serde_json::from_slice(&std::fs::read(ckpt.join("trainer_state.json")).unwrap()).unwrap();
    v.as_object_mut().unwrap().remove("wall_time_s");
    v
}

#[test]
fn smoke_trains_stops_resumes_and_logs() {
    let dir = tempfile::tempdir().unwrap();
    let config = repo("configs/smoke.toml");
    let config = config.to_str().unwrap();
    let out = ok(train(dir.path(), &["--config", config, "--stop-at-step", "128"]));
    assert!(out.contains("trained to step 128"), "{out}");
    // Each periodic evaluation compares the policy on held-out episodes with the references.
    assert!(out.contains("step 128: held-out Δ + V·p") && out.contains("the best static plan `"), "{out}");
    let run = dir.path().join("checkpoints/smoke-seed0");
    let out = ok(train(dir.path(), &["--config", config, "--resume", run.join("step_128").to_str().unwrap()]));
    // A finished run compares its policy on held-out episodes with the best static plan, the best
    // causal baseline and the clairvoyant bound, and says where the full report comes from.
    assert!(out.contains("held-out comparison") && out.contains("trained policy"), "{out}");
    assert!(out.contains("best static plan") && out.contains("clairvoyant bound"), "{out}");
    assert!(out.contains("of the objective") && out.contains("the trained policy "), "{out}");
    assert!(out.contains("full report: splitwise eval --config") && out.contains("trained=ckpt:"), "{out}");
    // The run folder: resolved config, events, checkpoints and best.
    for f in [
        "config.toml",
        "step_128/metadata.json",
        "step_256/agent/weights.bpk",
        "step_256/env_state.json",
        "best/metadata.json",
    ] {
        assert!(run.join(f).is_file(), "missing {f}");
    }
    let meta: checkpoint::Metadata =
        serde_json::from_slice(&std::fs::read(run.join("step_256/metadata.json")).unwrap()).unwrap();
    assert_eq!((meta.step, meta.seed, meta.agent_kind.as_str()), (256, 0, "ppo"));
    assert_eq!(meta.observation_layout, "partition-v2");
    let config_text = std::fs::read_to_string(run.join("config.toml")).unwrap();
    assert!(config_text.contains("[env.scenario") && !config_text.contains("scenario_file"), "scenario is inlined");
    // TensorBoard: both processes' scalars, at the global env step.
    let scalars = logged(&run);
    let steps_of = |tag: &str| scalars.iter().filter(|(_, t, _)| t == tag).map(|(s, _, _)| *s).collect::<Vec<_>>();
    assert_eq!(steps_of("losses/value_loss"), (1..=4).map(|k| k * 64).collect::<Vec<_>>());
    assert_eq!(steps_of("charts/eval_return"), vec![128, 256]);
    for tag in ["held_out/dpp_trained", "held_out/dpp_best_static", "held_out/dpp_bound"] {
        assert_eq!(steps_of(tag), vec![128, 256], "{tag}");
    }
    let latency = scalars.iter().filter(|(_, t, _)| t == "env/latency_mean_s").map(|(_, _, v)| f32::from_bits(*v));
    assert!(latency.clone().count() > 0 && latency.into_iter().all(|v| v.is_finite() && v > 0.0));
}

/// Trains `config` straight to the end and, in a second folder, to `half` then resumed; every
/// checkpointed state and every logged value must match bit for bit.
fn assert_exact_resume(config: &Path, half: u64, total: u64) {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let config = config.to_str().unwrap();
    ok(train(a.path(), &["--config", config, "--run-name", "r"]));
    ok(train(b.path(), &["--config", config, "--run-name", "r", "--stop-at-step", &half.to_string()]));
    ok(train(b.path(), &["--config", config, "--resume", b.path().join("checkpoints/r").to_str().unwrap()]));
    let (ra, rb) = (a.path().join("checkpoints/r"), b.path().join("checkpoints/r"));
    let (ca, cb) = (ra.join(format!("step_{total}")), rb.join(format!("step_{total}")));
    assert!(weights(&ca) == weights(&cb), "weights differ after resume");
    let mut files: Vec<String> = std::fs::read_dir(ca.join("agent"))
        .unwrap()
        .map(|e| format!("agent/{}", e.unwrap().file_name().to_string_lossy()))
        .filter(|f| f.ends_with(".json"))
        .collect();
    files.push("env_state.json".into());
    for f in files {
        assert!(std::fs::read(ca.join(&f)).unwrap() == std::fs::read(cb.join(&f)).unwrap(), "{f} differs after resume");
    }
    assert_eq!(trainer_state_without_wall_time(&ca), trainer_state_without_wall_time(&cb));
    let (la, lb) = (logged(&ra), logged(&rb));
    assert!(la.len() > 20);
    assert_eq!(la, lb, "logged values differ after resume");
}

/// The `--metrics-jsonl` lines as (step, tag, f32 bits), sorted, wall-clock keys left out like
/// [`logged`]'s.
fn jsonl_scalars(path: &Path) -> Vec<(i64, String, u32)> {
    let mut out = Vec::new();
    for line in std::fs::read_to_string(path).unwrap().lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        let step = v["step"].as_i64().unwrap();
        for (tag, value) in v.as_object().unwrap() {
            if tag == "step"
                || tag == "wall_time"
                || tag == "charts/sps"
                || tag.starts_with("time/")
                || tag.contains("/time/")
            {
                continue;
            }
            out.push((step, tag.clone(), (value.as_f64().unwrap_or(f64::NAN) as f32).to_bits()));
        }
    }
    out.sort();
    out
}

/// `--metrics-jsonl` carries every TensorBoard scalar (same steps, tags and values), one line per
/// round; a run stopped and resumed writes the same lines as one straight run; a fresh run
/// refuses a file that already holds lines.
#[test]
fn metrics_json_lines_mirror_tensorboard_and_survive_a_resume() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let config = repo("configs/smoke.toml");
    let config = config.to_str().unwrap();
    let quiet = ["--final-report-episodes", "0"];
    let (ma, mb) = (a.path().join("m.jsonl"), b.path().join("m.jsonl"));
    ok(train(
        a.path(),
        &[&["--config", config, "--run-name", "r", "--metrics-jsonl", ma.to_str().unwrap()][..], &quiet].concat(),
    ));
    let straight = jsonl_scalars(&ma);
    assert_eq!(straight, logged(&a.path().join("checkpoints/r")), "the JSON lines differ from TensorBoard's scalars");
    let rounds = std::fs::read_to_string(&ma).unwrap().lines().count();
    assert_eq!(rounds, 256 / 64, "one line per round of 2 envs × 32 steps");
    let e = err(train(a.path(), &["--config", config, "--run-name", "r2", "--metrics-jsonl", ma.to_str().unwrap()]));
    assert!(e.contains("already holds metrics"), "{e}");
    assert!(!a.path().join("checkpoints/r2").exists(), "a run folder was left behind");
    let mb_arg = mb.to_str().unwrap();
    ok(train(
        b.path(),
        &[&["--config", config, "--run-name", "r", "--stop-at-step", "128", "--metrics-jsonl", mb_arg][..], &quiet]
            .concat(),
    ));
    // Lines a killed run wrote after its checkpoint are dropped on resume (a torn one too).
    let mut text = std::fs::read_to_string(&mb).unwrap();
    text.push_str("{\"step\":192,\"charts/episodic_return\":-1.0}\n{\"step\":2");
    std::fs::write(&mb, text).unwrap();
    let run = b.path().join("checkpoints/r");
    ok(train(
        b.path(),
        &[&["--config", config, "--resume", run.to_str().unwrap(), "--metrics-jsonl", mb_arg][..], &quiet].concat(),
    ));
    assert_eq!(jsonl_scalars(&mb), straight, "a resumed run's JSON lines differ from a straight run's");
    // `-`: the lines on stdout, nothing else there; the run's own lines go to stderr.
    let c = tempfile::tempdir().unwrap();
    let out = train(c.path(), &["--config", config, "--metrics-jsonl", "-"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "train failed: {stderr}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<serde_json::Value> = stdout.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 4, "{stdout}");
    assert!(lines.iter().all(|l| l["step"].is_u64()));
    assert!(stderr.contains("trained to step 256") && stderr.contains("held-out comparison"), "{stderr}");
}

#[test]
fn resume_is_bit_identical_on_the_partition_env() {
    assert_exact_resume(&repo("configs/smoke.toml"), 128, 256);
}

#[test]
fn resume_is_bit_identical_for_hierarchical_ppo() {
    assert_exact_resume(&repo("configs/hppo-smoke.toml"), 128, 256);
}

/// `configs/hppo-smoke.toml` with γ = 0 and the given advantages at each level, written into
/// `dir` (the scenario path made absolute); returns the config's path and its text.
fn hppo_smoke_with_advantages(dir: &Path, high: &str, low: &str) -> (PathBuf, String) {
    let text = std::fs::read_to_string(repo("configs/hppo-smoke.toml")).unwrap();
    let scenario = repo("configs/jetson-llama7b-lte.toml");
    let text = text
        .replace("\"jetson-llama7b-lte.toml\"", &format!("{:?}", scenario.to_str().unwrap()))
        .replace("[agent.high]\n", &format!("[agent.high]\ngamma = 0.0\nadvantage = \"{high}\"\n"))
        .replace("[agent.low]\n", &format!("[agent.low]\ngamma = 0.0\nadvantage = \"{low}\"\n"));
    let config = dir.join(format!("{high}-{low}.toml"));
    std::fs::write(&config, &text).unwrap();
    (config, text)
}

/// The self-critical advantage probes the env on saved copies every step (both levels of a
/// hierarchy); a run with it still resumes bit for bit.
#[test]
fn resume_is_bit_identical_with_self_critical_hierarchical_ppo() {
    let dir = tempfile::tempdir().unwrap();
    let (config, text) = hppo_smoke_with_advantages(dir.path(), "self-critical", "self-critical");
    assert_eq!(text.matches("self-critical").count(), 2, "{text}");
    assert_exact_resume(&config, 128, 256);
}

/// A hierarchy whose high level holds each choice for 3 slots (`agent.k_high`): it resumes bit
/// for bit (options end with each rollout, so a checkpoint cuts none), its checkpoint records
/// the holding, and the export's sidecar tells the caller to hold the high choice.
#[test]
fn a_hierarchy_holding_its_high_choice_resumes_exactly_and_exports_the_holding() {
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(repo("configs/hppo-smoke.toml")).unwrap();
    let scenario = repo("configs/jetson-llama7b-lte.toml");
    let text = text
        .replace("\"jetson-llama7b-lte.toml\"", &format!("{:?}", scenario.to_str().unwrap()))
        .replace("kind = \"hppo\"\n", "kind = \"hppo\"\nk_high = 3\n");
    let config = dir.path().join("hold.toml");
    std::fs::write(&config, &text).unwrap();
    assert_exact_resume(&config, 128, 256);
    ok(train(dir.path(), &["--config", config.to_str().unwrap(), "--run-name", "h", "--final-report-episodes", "0"]));
    let ckpt = dir.path().join("checkpoints/h/step_256");
    let hierarchy: serde_json::Value =
        serde_json::from_slice(&std::fs::read(ckpt.join("agent/hierarchy.json")).unwrap()).unwrap();
    assert_eq!(hierarchy["k_high"], 3);
    export(dir.path(), &ckpt, "p.onnx");
    let sidecar: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("p.onnx.json")).unwrap()).unwrap();
    assert_eq!(sidecar["high_hold_slots"], 3);
    let chain: Vec<&str> = sidecar["chain"].as_array().unwrap().iter().map(|s| s.as_str().unwrap()).collect();
    let hold = chain.iter().position(|s| s.starts_with("Hold the `high` level's choice for 3 slots")).unwrap();
    assert!(chain[hold + 1].contains("(`high` level"), "{chain:?}");
    // The all-action advantage probes one slot: refused with k_high > 1, naming the field.
    let (all, _) = hppo_smoke_with_advantages(dir.path(), "all-actions", "self-critical");
    let all_text = std::fs::read_to_string(&all).unwrap().replace("kind = \"hppo\"\n", "kind = \"hppo\"\nk_high = 3\n");
    std::fs::write(&all, all_text).unwrap();
    let e = err(train(dir.path(), &["--config", all.to_str().unwrap()]));
    assert!(e.contains("agent.high.advantage = all-actions") && e.contains("k_high = 3"), "{e}");
}

/// Hierarchical PPO goes through the same commands as PPO: its run logs both levels, its
/// checkpoint holds both levels and says so, `eval` loads it next to baselines and `export`
/// writes a graph per level.
#[test]
fn hierarchical_ppo_trains_evaluates_and_exports_through_the_registry() {
    let dir = tempfile::tempdir().unwrap();
    let config = repo("configs/hppo-smoke.toml");
    let out = ok(train(dir.path(), &["--config", config.to_str().unwrap(), "--run-name", "h"]));
    assert!(out.contains("held-out comparison") && out.contains("trained policy"), "{out}");
    let run = dir.path().join("checkpoints/h");
    let tags: std::collections::BTreeSet<String> = logged(&run).into_iter().map(|(_, t, _)| t).collect();
    for t in ["high/losses/policy_loss", "low/losses/policy_loss", "high/losses/value_loss", "low/losses/entropy"] {
        assert!(tags.contains(t), "{t} not logged: {tags:?}");
    }
    let ckpt = run.join("step_256");
    let files = checkpoint::load(&ckpt).unwrap();
    assert_eq!(files.metadata.agent_kind, "hppo");
    let names: Vec<&str> = files.agent.iter().map(|(n, _)| n.as_str()).collect();
    for f in ["high.weights.bpk", "low.weights.bpk", "high.ppo_meta.json", "low.ppo_meta.json", "hierarchy.json"] {
        assert!(names.contains(&f), "{f} missing from {names:?}");
    }
    let eval = Command::new(env!("CARGO_BIN_EXE_splitwise"))
        .current_dir(dir.path())
        .args(["eval", "--config", config.to_str().unwrap(), "--episodes", "1", "--slots", "32", "--no-headroom"])
        .args(["--policies", &format!("h=ckpt:{},cloud-only", ckpt.display()), "--out", "ev"])
        .output()
        .unwrap();
    assert!(eval.status.success(), "{}", String::from_utf8_lossy(&eval.stderr));
    let report = std::fs::read_to_string(dir.path().join("ev/report.md")).unwrap();
    assert!(report.contains("| h "), "{report}");
    export(dir.path(), &ckpt, "p.onnx");
    for f in ["p.high.onnx", "p.low.onnx", "p.onnx.json"] {
        assert!(dir.path().join(f).is_file(), "{f} not written");
    }
}

#[test]
fn resume_is_bit_identical_on_cartpole() {
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(repo("configs/cartpole-ppo.toml"))
        .unwrap()
        .replace("total_steps = 100_000", "total_steps = 2_048")
        .replace("checkpoint_every_steps = 10_240", "checkpoint_every_steps = 512")
        .replace("eval_every_steps = 2_048", "eval_every_steps = 512")
        .replace("eval_episodes = 20", "eval_episodes = 3");
    let path = dir.path().join("cartpole-short.toml");
    std::fs::write(&path, text).unwrap();
    assert_exact_resume(&path, 1_024, 2_048);
}

#[test]
fn divergence_stops_with_a_clear_error_and_keeps_the_last_checkpoint() {
    // A learning rate of 1e30 sends the weights to ~1e30 within the first update; the losses then
    // overflow f32. The run's initial checkpoint (step 0) is the last good one.
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(repo("configs/cartpole-ppo.toml"))
        .unwrap()
        .replace("learning_rate = 1e-3", "learning_rate = 1e30")
        .replace("lr_annealing = \"linear\"", "lr_annealing = \"constant\"")
        .replace("checkpoint_every_steps = 10_240", "checkpoint_every_steps = 256");
    let path = dir.path().join("diverge.toml");
    std::fs::write(&path, text).unwrap();
    let e = err(train(dir.path(), &["--config", path.to_str().unwrap(), "--run-name", "d"]));
    assert!(e.contains("diverged") && e.contains("losses/"), "{e}");
    let run = dir.path().join("checkpoints/d");
    let last = checkpoint::resolve(&run).expect("a checkpoint was written before the divergence");
    assert_eq!(last, run.join("step_0"));
    assert!(e.contains("checkpoints/d/step_0"), "the error names the last good checkpoint: {e}");
    // The last good checkpoint loads and has finite weights.
    assert!(weights(&last).iter().flatten().all(|w| w.is_finite()));
}

#[test]
fn bad_input_is_refused_before_any_work() {
    let dir = tempfile::tempdir().unwrap();
    let smoke = repo("configs/smoke.toml");
    let smoke = smoke.to_str().unwrap();
    let bad = dir.path().join("bad.toml");
    let scenario = repo("configs/jetson-llama7b-lte.toml");
    let text = std::fs::read_to_string(repo("configs/smoke.toml"))
        .unwrap()
        .replace("\"jetson-llama7b-lte.toml\"", &format!("{:?}", scenario.to_str().unwrap()));
    std::fs::write(&bad, text.replace("n_epochs = 2", "n_epochs = 0")).unwrap();
    let e = err(train(dir.path(), &["--config", bad.to_str().unwrap()]));
    assert!(e.contains("bad.toml") && e.contains("agent.n_epochs = 0"), "{e}");
    std::fs::write(&bad, text.replace("n_epochs = 2", "n_epoch = 2")).unwrap();
    let e = err(train(dir.path(), &["--config", bad.to_str().unwrap()]));
    assert!(e.contains("bad.toml") && e.contains("n_epoch"), "{e}");
    // A run folder is never overwritten, and resuming demands the same config.
    ok(train(dir.path(), &["--config", smoke, "--stop-at-step", "64"]));
    let e = err(train(dir.path(), &["--config", smoke]));
    assert!(e.contains("already exists") && e.contains("--resume"), "{e}");
    std::fs::write(&bad, text.replace("n_epochs = 2", "n_epochs = 3")).unwrap();
    let run = dir.path().join("checkpoints/smoke-seed0");
    let e = err(train(dir.path(), &["--config", bad.to_str().unwrap(), "--resume", run.to_str().unwrap()]));
    assert!(e.contains("different config"), "{e}");
    let e = err(train(dir.path(), &["--config", smoke, "--resume", dir.path().join("nope").to_str().unwrap()]));
    assert!(e.contains("does not exist"), "{e}");
    std::fs::write(run.join("step_64/agent/ppo_meta.json"), b"{ not json").unwrap();
    let e = err(train(dir.path(), &["--config", smoke, "--resume", run.to_str().unwrap()]));
    assert!(e.contains("ppo_meta.json") && e.contains("corrupt"), "{e}");
}

#[test]
fn shipped_cartpole_config_is_the_rl_zoo_preset() {
    let r = splitwise::config::load(&repo("configs/cartpole-ppo.toml")).unwrap();
    let mut zoo = splitwise_agents::PpoConfig::cartpole_zoo();
    zoo.total_timesteps = r.config.training.total_steps;
    assert_eq!(
        r.learner_config(),
        splitwise_agents::LearnerConfig::Flat(Box::new(zoo)),
        "configs/cartpole-ppo.toml must stay the preset the benchmarks use"
    );
}

#[test]
fn resuming_a_finished_run_says_so_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let smoke = repo("configs/smoke.toml");
    let smoke = smoke.to_str().unwrap();
    ok(train(dir.path(), &["--config", smoke]));
    let run = dir.path().join("checkpoints/smoke-seed0");
    let events_before = std::fs::read_dir(run.join("tensorboard")).unwrap().count();
    let out = ok(train(dir.path(), &["--config", smoke, "--resume", run.to_str().unwrap()]));
    assert!(out.contains("is finished") && out.contains("training.total_steps is 256"), "{out}");
    assert!(out.contains("--allow-config-change"), "says how to train further: {out}");
    assert_eq!(std::fs::read_dir(run.join("tensorboard")).unwrap().count(), events_before, "no empty event file");
}

#[test]
fn allow_config_change_continues_with_new_hyperparameters_and_records_them() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = repo("configs/jetson-llama7b-lte.toml");
    let text = std::fs::read_to_string(repo("configs/smoke.toml"))
        .unwrap()
        .replace("\"jetson-llama7b-lte.toml\"", &format!("{:?}", scenario.to_str().unwrap()));
    let base = dir.path().join("base.toml");
    std::fs::write(&base, &text).unwrap();
    ok(train(dir.path(), &["--config", base.to_str().unwrap(), "--run-name", "r"]));
    let run = dir.path().join("checkpoints/r");
    // Train further with a lower learning rate: refused without the flag, accepted with it.
    let more = dir.path().join("more.toml");
    std::fs::write(
        &more,
        text.replace("total_steps = 256", "total_steps = 384")
            .replace("n_epochs = 2", "n_epochs = 2\nlearning_rate = 1e-4"),
    )
    .unwrap();
    let e = err(train(dir.path(), &["--config", more.to_str().unwrap(), "--resume", run.to_str().unwrap()]));
    assert!(
        e.contains("different config") && e.contains("agent.learning_rate") && e.contains("--allow-config-change"),
        "{e}"
    );
    let out = ok(train(
        dir.path(),
        &["--config", more.to_str().unwrap(), "--resume", run.to_str().unwrap(), "--allow-config-change"],
    ));
    assert!(out.contains("agent.learning_rate: 0.0003 -> 0.0001") && out.contains("trained to step 384"), "{out}");
    let trainer: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run.join("step_384/trainer_state.json")).unwrap()).unwrap();
    let changes = trainer["config_changes"].to_string();
    assert!(changes.contains("\"step\":256") && changes.contains("training.total_steps: 256 -> 384"), "{changes}");
    let saved = std::fs::read_to_string(run.join("step_384/config.toml")).unwrap();
    assert!(saved.contains("learning_rate = 0.0001"), "the checkpoint holds the config it was trained with");
    // What shapes the networks or the environment cannot change.
    std::fs::write(&more, text.replace("n_envs = 2", "n_envs = 4").replace("total_steps = 256", "total_steps = 512"))
        .unwrap();
    let e = err(train(
        dir.path(),
        &["--config", more.to_str().unwrap(), "--resume", run.to_str().unwrap(), "--allow-config-change"],
    ));
    assert!(e.contains("agent.n_envs cannot change"), "{e}");
}

#[test]
fn divergence_advice_can_be_followed() {
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(repo("configs/cartpole-ppo.toml"))
        .unwrap()
        .replace("total_steps = 100_000", "total_steps = 1_024")
        .replace("checkpoint_every_steps = 10_240", "checkpoint_every_steps = 256")
        .replace("eval_every_steps = 2_048", "eval_every_steps = 0");
    let good = dir.path().join("good.toml");
    std::fs::write(&good, &text).unwrap();
    ok(train(dir.path(), &["--config", good.to_str().unwrap(), "--run-name", "d", "--stop-at-step", "256"]));
    let bad = dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        text.replace("learning_rate = 1e-3", "learning_rate = 1e30")
            .replace("lr_annealing = \"linear\"", "lr_annealing = \"constant\""),
    )
    .unwrap();
    let run = dir.path().join("checkpoints/d");
    let e = err(train(
        dir.path(),
        &["--config", bad.to_str().unwrap(), "--resume", run.to_str().unwrap(), "--allow-config-change"],
    ));
    assert!(
        e.contains("diverged") && e.contains("--allow-config-change") && e.contains("checkpoints/d/step_256"),
        "{e}"
    );
    // Following the advice: back to a sane learning rate from the named checkpoint.
    let out = ok(train(
        dir.path(),
        &[
            "--config",
            good.to_str().unwrap(),
            "--resume",
            run.join("step_256").to_str().unwrap(),
            "--allow-config-change",
        ],
    ));
    assert!(out.contains("trained to step 1024"), "{out}");
}

#[test]
fn an_overflowing_reward_names_the_reward_not_the_learning_rate() {
    let dir = tempfile::tempdir().unwrap();
    let scenario_text = std::fs::read_to_string(repo("configs/jetson-llama7b-lte.toml"))
        .unwrap()
        .replace("[reward]\n", "[reward]\nv = { kind = \"fixed\", v = 1e308 }\n");
    let scenario = dir.path().join("huge-v.toml");
    std::fs::write(&scenario, scenario_text).unwrap();
    let text = std::fs::read_to_string(repo("configs/smoke.toml"))
        .unwrap()
        .replace("\"jetson-llama7b-lte.toml\"", &format!("{:?}", scenario.to_str().unwrap()));
    let config = dir.path().join("c.toml");
    std::fs::write(&config, text).unwrap();
    let e = err(train(dir.path(), &["--config", config.to_str().unwrap()]));
    assert!(
        e.contains("non-finite reward") && e.contains("reward.v") && !e.contains("Lower agent.learning_rate"),
        "{e}"
    );
}

#[test]
fn a_flipped_bit_in_the_weights_is_refused_by_resume_eval_and_export() {
    let dir = tempfile::tempdir().unwrap();
    let smoke = repo("configs/smoke.toml");
    let smoke = smoke.to_str().unwrap();
    ok(train(dir.path(), &["--config", smoke, "--stop-at-step", "64"]));
    let run = dir.path().join("checkpoints/smoke-seed0");
    let ckpt = run.join("step_64");
    let weights = ckpt.join("agent/weights.bpk");
    let mut bytes = std::fs::read(&weights).unwrap();
    let last = bytes.len() - 1; // inside the last tensor's data
    bytes[last] ^= 0x01;
    std::fs::write(&weights, &bytes).unwrap();
    let e = err(train(dir.path(), &["--config", smoke, "--resume", run.to_str().unwrap()]));
    assert!(e.contains("weights.bpk is corrupt"), "{e}");
    let bin = env!("CARGO_BIN_EXE_splitwise");
    let out = Command::new(bin)
        .current_dir(dir.path())
        .args(["export", "--checkpoint", ckpt.to_str().unwrap(), "--out", "p.onnx"])
        .output()
        .unwrap();
    let e = err(out);
    assert!(e.contains("weights.bpk is corrupt"), "{e}");
    let scenario = repo("configs/jetson-llama7b-lte.toml");
    let out = Command::new(bin)
        .current_dir(dir.path())
        .args(["eval", "--config", scenario.to_str().unwrap(), "--episodes", "1", "--slots", "8", "--out", "ev"])
        .arg("--policies")
        .arg(format!("ckpt:{}", ckpt.display()))
        .output()
        .unwrap();
    let e = err(out);
    assert!(e.contains("weights.bpk is corrupt"), "{e}");
}

#[test]
fn identical_weights_have_identical_content_checksums_across_runs() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let smoke = repo("configs/smoke.toml");
    let smoke = smoke.to_str().unwrap();
    ok(train(a.path(), &["--config", smoke, "--stop-at-step", "64"]));
    ok(train(b.path(), &["--config", smoke, "--stop-at-step", "64"]));
    let meta = |d: &Path| -> checkpoint::Metadata {
        serde_json::from_slice(&std::fs::read(d.join("checkpoints/smoke-seed0/step_64/metadata.json")).unwrap())
            .unwrap()
    };
    let (ma, mb) = (meta(a.path()), meta(b.path()));
    assert!(ma.weights_content_crc32c.is_some());
    assert_eq!(ma.weights_content_crc32c, mb.weights_content_crc32c);
    // The burnpack bytes themselves differ (random parameter ids): why the content checksum exists.
    assert_ne!(ma.files_crc32c["agent/weights.bpk"], mb.files_crc32c["agent/weights.bpk"]);
}

#[test]
fn run_name_must_be_one_folder_name() {
    let dir = tempfile::tempdir().unwrap();
    let smoke = repo("configs/smoke.toml");
    let smoke = smoke.to_str().unwrap();
    for name in ["../../escape", "/tmp/abs", "a/b", "", " ", ".hidden", ".."] {
        let e = err(train(dir.path(), &["--config", smoke, "--run-name", name]));
        assert!(e.contains("--run-name") && e.contains("folder name"), "{name:?}: {e}");
    }
    assert!(!dir.path().join("checkpoints").exists(), "nothing written");
}

/// A measured quality table plugs into the ALS environment from a CSV named by the config
/// (`examples/als-measured-quality`): the run trains, and the run folder's resolved config holds
/// the table itself, not the file name, so the checkpoint does not depend on the CSV.
#[test]
fn a_measured_quality_csv_is_read_and_inlined_into_the_run() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = repo("examples/als-measured-quality/ppo.toml");
    ok(train(dir.path(), &["--config", config.to_str().unwrap(), "--stop-at-step", "2048"]));
    let resolved = std::fs::read_to_string(dir.path().join("checkpoints/ppo-als-measured-seed0/config.toml")).unwrap();
    assert!(resolved.contains("[env.quality_table]") && !resolved.contains("quality_csv"), "{resolved}");
    // A bad cell is named by file, line, column and value.
    std::fs::copy(&config, dir.path().join("ppo.toml")).unwrap();
    let csv = std::fs::read_to_string(repo("examples/als-measured-quality/quality.csv")).unwrap();
    std::fs::write(dir.path().join("quality.csv"), csv.replacen("0.0097", "n/a", 1)).unwrap();
    let e = err(train(dir.path(), &["--config", "ppo.toml"]));
    assert!(e.contains("quality.csv") && e.contains("line 2") && e.contains("split_7") && e.contains("n/a"), "{e}");
}

/// `configs/mbrl-als.toml` with a shorter run (20 iterations of 8 real steps).
fn short_mbrl_config(dir: &Path) -> PathBuf {
    shipped_config_with(
        dir,
        "mbrl-als.toml",
        "mbrl.toml",
        &[("total_steps = 400", "total_steps = 160"), ("eval_every_steps = 40", "eval_every_steps = 80")],
    )
}

/// The shipped `configs/<shipped>` with each `(from, to)` replaced (each `from` must be in it),
/// written to `dir/<name>`.
fn shipped_config_with(dir: &Path, shipped: &str, name: &str, replacements: &[(&str, &str)]) -> PathBuf {
    let mut text = std::fs::read_to_string(repo(&format!("configs/{shipped}"))).unwrap();
    for (from, to) in replacements {
        assert!(text.contains(from), "{from} not in configs/{shipped}");
        text = text.replace(from, to);
    }
    let config = dir.join(name);
    std::fs::write(&config, text).unwrap();
    config
}

/// The last logged value of `tag` in `scalars` (as [`logged`] returns them).
fn last_of(scalars: &[(i64, String, u32)], tag: &str) -> f32 {
    scalars
        .iter()
        .rev()
        .find(|(_, t, _)| t == tag)
        .map(|(_, _, v)| f32::from_bits(*v))
        .unwrap_or_else(|| panic!("{tag} not logged"))
}

/// Model-based RL goes through the same commands as PPO: its run logs the surrogate's fit and
/// the expensive evaluations it spent, its checkpoint holds the policy, the surrogate and every
/// measurement, a resumed run is bit-identical (the surrogate, its data and the model phase
/// included), and `export` writes the policy.
#[test]
fn model_based_rl_trains_resumes_exactly_and_exports_through_the_registry() {
    let dir = tempfile::tempdir().unwrap();
    let config = short_mbrl_config(dir.path());
    assert_exact_resume(&config, 80, 160);
    ok(train(dir.path(), &["--config", config.to_str().unwrap(), "--run-name", "m"]));
    let run = dir.path().join("checkpoints/m");
    let scalars = logged(&run);
    let last = |tag: &str| last_of(&scalars, tag);
    // 160 real steps: the first step of each episode and every split change is an evaluation.
    let spent = last("mbrl/expensive_evaluations");
    assert!((16.0..=160.0).contains(&spent), "{spent}");
    assert_eq!(last("mbrl/real_steps"), 160.0);
    assert_eq!(last("mbrl/model_steps"), 20.0 * 2.0 * 2048.0);
    // The surrogate beats predicting the mean on held-out measurements.
    assert!(last("surrogate/holdout_rmse") < last("surrogate/holdout_rmse_of_mean"));
    assert!(last("surrogate/samples") >= 16.0);
    let ckpt = run.join("step_160");
    let files = checkpoint::load(&ckpt).unwrap();
    assert_eq!(files.metadata.agent_kind, "mbrl");
    let names: Vec<&str> = files.agent.iter().map(|(n, _)| n.as_str()).collect();
    for f in ["weights.bpk", "ppo_meta.json", "mbrl.json", "surrogate.json", "surrogate.0.weights.bpk"] {
        assert!(names.contains(&f), "{f} missing from {names:?}");
    }
    export(dir.path(), &ckpt, "p.onnx");
    assert!(dir.path().join("p.onnx").is_file());
    // `splitwise eval` evaluates the checkpoint on whole real episodes next to the references.
    let eval = |policies: &str, extra: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_splitwise"))
            .current_dir(dir.path())
            .args(["eval", "--config", config.to_str().unwrap(), "--policies", policies, "--episodes", "8"])
            .args(["--out", "ev"])
            .args(extra)
            .output()
            .unwrap()
    };
    let spec = format!("mbrl=ckpt:{},fixed-split:1", ckpt.display());
    let out = eval(&spec, &[]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let metrics: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("ev/metrics.json")).unwrap()).unwrap();
    let rows = metrics["rows"].as_array().unwrap();
    let labels: Vec<&str> = rows.iter().map(|r| r["label"].as_str().unwrap()).collect();
    assert_eq!(labels, ["mbrl", "fixed-split:1", "random", "best-fixed"]);
    assert_eq!(rows[0]["episode_return"]["n"], 8);
    assert_eq!(rows[0]["episode_length"]["mean"], 5.0);
    // Layer 1 from a start in 3–6: the start's evaluation and the change's, then none.
    assert_eq!(rows[1]["expensive_evaluations"]["mean"], 2.0);
    assert_eq!(rows[2]["normalised_score"], 0.0);
    assert_eq!(rows[3]["normalised_score"], 1.0);
    assert!(rows[3]["chosen"].as_str().unwrap().starts_with("fixed-split:"), "{rows:?}");
    assert!(std::fs::read_to_string(dir.path().join("ev/report.md")).unwrap().contains("| mbrl |"));
    let refused = |policies: &str, extra: &[&str]| {
        let out = eval(policies, extra);
        assert!(!out.status.success());
        String::from_utf8_lossy(&out.stderr).to_string()
    };
    let e = refused("neurosurgeon", &[]);
    assert!(e.contains("neurosurgeon") && e.contains("partition scenario"), "{e}");
    let e = refused("random", &["--slots", "10"]);
    assert!(e.contains("--slots"), "{e}");
}

/// The shipped partition MBRL config, shrunk to seconds: 2 envs, 64-slot episodes, 4 iterations
/// of 8 real vector steps and one 32-step model rollout.
fn short_partition_mbrl_config(dir: &Path) -> PathBuf {
    let scenario = format!("scenario_file = {:?}", repo("configs/jetson-llama7b-lte.toml"));
    shipped_config_with(
        dir,
        "mbrl-jetson-layer-split.toml",
        "mbrl-partition.toml",
        &[
            ("episode_slots = 500", "episode_slots = 64"),
            ("real_steps = 32", "real_steps = 8"),
            ("model_updates = 2", "model_updates = 1"),
            ("n_envs = 8", "n_envs = 2"),
            ("n_steps = 256", "n_steps = 32"),
            ("batch_size = 256", "batch_size = 32"),
            ("n_epochs = 10", "n_epochs = 2"),
            ("total_steps = 18_688", "total_steps = 64"),
            ("checkpoint_every_steps = 3_072", "checkpoint_every_steps = 32"),
            ("eval_every_steps = 3_072", "eval_every_steps = 32"),
            ("eval_episodes = 16", "eval_episodes = 2"),
            ("scenario_file = \"jetson-llama7b-lte.toml\"", &scenario),
        ],
    )
}

/// MBRL on a partition scenario: the accuracy loss is the expensive component, counted on the
/// real steps only; the run resumes bit for bit, and `eval` takes its checkpoint next to the
/// baselines.
#[test]
fn model_based_rl_trains_on_a_partition_scenario_with_the_accuracy_loss_as_its_expensive_component() {
    let dir = tempfile::tempdir().unwrap();
    let config = short_partition_mbrl_config(dir.path());
    assert_exact_resume(&config, 32, 64);
    let args = ["--config", config.to_str().unwrap(), "--run-name", "m", "--final-report-episodes", "0"];
    ok(train(dir.path(), &args));
    let run = dir.path().join("checkpoints/m");
    let scalars = logged(&run);
    let last = |tag: &str| last_of(&scalars, tag);
    assert_eq!(last("mbrl/real_steps"), 64.0);
    // One 2 × 32-step model rollout per iteration, except in iterations before the real scenario
    // made two measurements (real steps only): here the first request starts late.
    let model_steps = last("mbrl/model_steps");
    assert!(model_steps % 64.0 == 0.0 && (64.0..=4.0 * 64.0).contains(&model_steps), "{model_steps}");
    // A random layer-split policy on the Jetson crosses the link in most slots that start a request.
    assert!(last("mbrl/expensive_evaluations") > 0.0);
    assert!(last("surrogate/samples") > 0.0);
    let ckpt = run.join("step_64");
    assert_eq!(checkpoint::load(&ckpt).unwrap().metadata.agent_kind, "mbrl");
    let out = Command::new(env!("CARGO_BIN_EXE_splitwise"))
        .current_dir(dir.path())
        .args(["eval", "--config", config.to_str().unwrap(), "--episodes", "1", "--slots", "32", "--no-headroom"])
        .args(["--policies", &format!("mbrl=ckpt:{},cloud-only", ckpt.display()), "--out", "ev"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report = std::fs::read_to_string(dir.path().join("ev/report.md")).unwrap();
    assert!(report.contains("mbrl"), "{report}");
}

#[test]
fn model_based_rl_on_an_environment_without_an_expensive_component_is_refused_before_any_work() {
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(short_mbrl_config(dir.path())).unwrap();
    let start = text.find("[env]").unwrap();
    let end = text.find("[agent]").unwrap();
    let text = format!("{}[env]\nkind = \"cartpole\"\n\n{}", &text[..start], &text[end..]);
    let config = dir.path().join("cartpole-mbrl.toml");
    std::fs::write(&config, text).unwrap();
    let e = err(train(dir.path(), &["--config", config.to_str().unwrap(), "--run-name", "c"]));
    assert!(e.contains("no expensive reward component") && e.contains("als, partition"), "{e}");
    assert!(!dir.path().join("checkpoints/c").exists(), "a run folder was left behind");
}

#[test]
fn a_model_based_run_continues_with_changed_hyperparameters_but_not_a_changed_surrogate_shape() {
    let dir = tempfile::tempdir().unwrap();
    let config = short_mbrl_config(dir.path());
    let text = std::fs::read_to_string(&config).unwrap();
    ok(train(dir.path(), &["--config", config.to_str().unwrap(), "--run-name", "m"]));
    let run = dir.path().join("checkpoints/m");
    let more = dir.path().join("more.toml");
    std::fs::write(&more, text.replace("total_steps = 160", "total_steps = 240").replace("epochs = 50", "epochs = 20"))
        .unwrap();
    let resume = |config: &Path| {
        train(
            dir.path(),
            &["--config", config.to_str().unwrap(), "--resume", run.to_str().unwrap(), "--allow-config-change"],
        )
    };
    let out = ok(resume(&more));
    assert!(out.contains("agent.surrogate.epochs: 50 -> 20") && out.contains("trained to step 240"), "{out}");
    let saved = std::fs::read_to_string(run.join("step_240/config.toml")).unwrap();
    assert!(saved.contains("epochs = 20"), "{saved}");
    // The surrogate's networks cannot change shape in a resumed run.
    std::fs::write(
        &more,
        text.replace("total_steps = 160", "total_steps = 320").replace("hidden = [128, 128]", "hidden = [64]"),
    )
    .unwrap();
    let e = err(resume(&more));
    assert!(e.contains("agent.surrogate.hidden cannot change"), "{e}");
}

#[test]
fn set_changes_config_fields_from_the_command_line_and_the_run_records_them() {
    let dir = tempfile::tempdir().unwrap();
    let smoke = repo("configs/smoke.toml");
    let smoke = smoke.to_str().unwrap();
    let sets = ["--set", "agent.n_epochs=3", "--set", "training.total_steps=128", "--set", "name=\"swept\""];
    let out = ok(train(dir.path(), &[&["--config", smoke, "--final-report-episodes", "0"][..], &sets[..]].concat()));
    assert!(out.contains("trained to step 128"), "{out}");
    let saved = std::fs::read_to_string(dir.path().join("checkpoints/swept-seed0/config.toml")).unwrap();
    assert!(saved.contains("n_epochs = 3") && saved.contains("total_steps = 128"), "{saved}");
    // Validated like the file: an unknown field and an invalid value name the field and the flag.
    let e = err(train(dir.path(), &["--config", smoke, "--set", "agent.n_epoch=3"]));
    assert!(e.contains("n_epoch") && e.contains("with --set agent.n_epoch=3"), "{e}");
    let e = err(train(dir.path(), &["--config", smoke, "--set", "agent.n_epochs=0"]));
    assert!(e.contains("agent.n_epochs = 0"), "{e}");
    let e = err(train(dir.path(), &["--config", smoke, "--set", "agent"]));
    assert!(e.contains("expected KEY=VALUE"), "{e}");
}

/// The all-action high level (the shipped H-PPO shape) probes every legal high choice, completed
/// by the low level's greedy plan, on saved copies every step; a run with it still resumes bit
/// for bit.
#[test]
fn resume_is_bit_identical_with_an_all_action_high_level() {
    let dir = tempfile::tempdir().unwrap();
    let (config, text) = hppo_smoke_with_advantages(dir.path(), "all-actions", "self-critical");
    assert_eq!(text.matches("all-actions").count(), 1, "{text}");
    assert_exact_resume(&config, 128, 256);
}

/// `[agent.imitation]`: the first `updates` rounds execute the teacher's plans (cloud-only here:
/// no layer on the edge) and log `charts/imitating` 1, then the learner acts (0). A teacher the
/// run cannot have is refused before any work, naming the field.
#[test]
fn imitation_runs_the_teacher_first_then_ppo_and_bad_teachers_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let smoke = repo("configs/smoke.toml");
    let smoke = smoke.to_str().unwrap();
    let teach = |teacher: &str, updates: &str| {
        vec![
            "--set".to_string(),
            format!("agent.imitation.teacher={teacher}"),
            "--set".to_string(),
            format!("agent.imitation.updates={updates}"),
        ]
    };
    let m = dir.path().join("m.jsonl");
    let args = ["--config", smoke, "--final-report-episodes", "0", "--metrics-jsonl", m.to_str().unwrap()];
    let with = |sets: Vec<String>| [args.iter().map(|s| s.to_string()).collect::<Vec<_>>(), sets].concat();
    let run = |args: Vec<String>| train(dir.path(), &args.iter().map(String::as_str).collect::<Vec<_>>());
    ok(run(with(teach("cloud-only", "2"))));
    let rounds: Vec<(f64, f64)> = std::fs::read_to_string(&m)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .map(|v| (v["charts/imitating"].as_f64().unwrap(), v["env/edge_share"].as_f64().unwrap()))
        .collect();
    assert_eq!(rounds.iter().map(|r| r.0).collect::<Vec<_>>(), [1.0, 1.0, 0.0, 0.0], "{rounds:?}");
    assert!(rounds[..2].iter().all(|r| r.1 == 0.0), "the teacher's plans ran: {rounds:?}");
    assert!(rounds[2..].iter().all(|r| r.1 > 0.0), "then the learner's (a fresh policy is not cloud-only): {rounds:?}");

    let refused = |sets: Vec<String>, config: &str, expect: &[&str]| {
        let out = train(
            dir.path(),
            &[&["--config", config, "--run-name", "refused"][..], &sets.iter().map(String::as_str).collect::<Vec<_>>()]
                .concat(),
        );
        let e = err(out);
        assert!(expect.iter().all(|x| e.contains(x)), "{e}");
        assert!(!dir.path().join("checkpoints/refused").exists(), "a run folder was left behind");
    };
    refused(teach("nonsense", "2"), smoke, &["agent.imitation.teacher", "unknown policy `nonsense`"]);
    refused(teach("cloud-only", "0"), smoke, &["agent.imitation.updates = 0"]);
    let cartpole = repo("configs/cartpole-ppo.toml");
    refused(teach("cloud-only", "2"), cartpole.to_str().unwrap(), &["agent.imitation.teacher", "partition scenario"]);
    let hppo = repo("configs/hppo-smoke.toml");
    let high = vec!["--set".to_string(), "agent.high.imitation={teacher = \"cloud-only\", updates = 2}".to_string()];
    refused(high, hppo.to_str().unwrap(), &["agent.high.imitation.teacher", "kind = \"ppo\" only"]);
}
