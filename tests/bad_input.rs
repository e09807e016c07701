//! Bad input, end to end through the binary: malformed scenario files, training configs,
//! traces, checkpoints and flags. Every case must end with exit code 1 (our error) or 2
//! (clap's usage error), never a panic or an allocation abort, and its message must name the
//! file, the field and the value and say what is allowed (each case lists the fragments).

use std::path::{Path, PathBuf};
use std::process::Command;

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

/// A checkpoint file and how to change its text.
type FileEdit = (&'static str, fn(&str) -> String);

/// What a case writes before running: a scenario (`sc.toml`, from the Jetson one), a training
/// config (`cfg.toml`, from smoke.toml pointing at `sc.toml`), a trace, a checkpoint to break.
#[derive(Default)]
struct Setup {
    scenario: Vec<(&'static str, &'static str)>,
    config: Vec<(&'static str, &'static str)>,
    trace: Option<&'static str>,
    /// Edits (file inside the smoke run's step_64, new text from old) after a short training run.
    checkpoint: &'static [FileEdit],
}

struct Case {
    name: &'static str,
    setup: Setup,
    args: &'static [&'static str],
    /// Fragments the error must contain (file, field, value, what is allowed).
    expect: &'static [&'static str],
}

fn replace_all(mut text: String, repl: &[(&str, &str)], what: &str) -> String {
    for (from, to) in repl {
        assert!(text.contains(from), "{what}: `{from}` not found");
        text = text.replacen(from, to, 1);
    }
    text
}

fn prepare(dir: &Path, setup: &Setup) {
    let mut scenario = std::fs::read_to_string(repo("configs/jetson-llama7b-lte.toml")).unwrap();
    if setup.trace.is_some() {
        // Drop the regimes: the trace replaces the whole rate process.
        let start = scenario.find("[link.rate.process]").unwrap();
        let end = scenario.find("[link.snr]").unwrap();
        scenario.replace_range(
            start..end,
            "[link.rate.process]\nkind = \"trace\"\npath = \"traces/t.csv\"\nformat = \"csv\"\n\n",
        );
    }
    std::fs::write(dir.join("sc.toml"), replace_all(scenario, &setup.scenario, "scenario")).unwrap();
    let config = std::fs::read_to_string(repo("configs/smoke.toml"))
        .unwrap()
        .replace("\"jetson-llama7b-lte.toml\"", "\"sc.toml\"");
    std::fs::write(dir.join("cfg.toml"), replace_all(config, &setup.config, "config")).unwrap();
    if let Some(trace) = setup.trace {
        std::fs::create_dir_all(dir.join("traces")).unwrap();
        std::fs::write(dir.join("traces/t.csv"), trace).unwrap();
    }
    if !setup.checkpoint.is_empty() {
        let smoke = repo("configs/smoke.toml");
        let out = run(dir, &["train", "--config", smoke.to_str().unwrap(), "--stop-at-step", "64"]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        for (file, edit) in setup.checkpoint {
            let path = dir.join("checkpoints/smoke-seed0/step_64").join(file);
            let text = std::fs::read_to_string(&path).unwrap();
            std::fs::write(&path, edit(&text)).unwrap();
        }
    }
}

fn run(dir: &Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_splitwise")).current_dir(dir).args(args).output().expect("runs")
}

const SIM: &[&str] = &["simulate", "--config", "sc.toml", "--steps", "3"];
const TRAIN: &[&str] = &["train", "--config", "cfg.toml"];
const RESUME: &[&str] =
    &["train", "--config", "SMOKE", "--resume", "checkpoints/smoke-seed0/step_64", "--allow-config-change"];

fn s(scenario: &[(&'static str, &'static str)]) -> Setup {
    Setup { scenario: scenario.to_vec(), ..Setup::default() }
}

fn c(config: &[(&'static str, &'static str)]) -> Setup {
    Setup { config: config.to_vec(), ..Setup::default() }
}

fn cases() -> Vec<Case> {
    let agent = "kind = \"ppo\"\n";
    vec![
        // ----- scenario files -----
        Case {
            name: "scenario version",
            setup: s(&[("version = 1", "version = 2")]),
            args: SIM,
            expect: &["sc.toml", "version = 2", "version 1"],
        },
        Case {
            name: "scenario unknown field",
            setup: s(&[("[edge]\n", "[edge]\nspeed = 3\n")]),
            args: SIM,
            expect: &["sc.toml", "speed", "expected"],
        },
        Case {
            name: "scenario wrong type",
            setup: s(&[("concurrency = 2", "concurrency = \"two\"")]),
            args: SIM,
            expect: &["sc.toml", "concurrency", "\"two\"", "expected"],
        },
        Case {
            name: "scenario syntax",
            setup: s(&[("slot_s = 1.0", "slot_s = = 1.0")]),
            args: SIM,
            expect: &["sc.toml", "slot_s", "line"],
        },
        Case {
            name: "arrival rate 1e12",
            setup: s(&[("rates_per_s = [0.1, 0.3]", "rates_per_s = [0.1, 1e12]")]),
            args: SIM,
            expect: &["sc.toml", "workload.arrivals.rates_per_s[1]", "1000000000000", "must be <= 1000"],
        },
        Case {
            name: "diurnal mean rate 1e12",
            setup: s(&[(
                "kind = \"markov\"\nrates_per_s = [0.1, 0.3]\nmean_dwell_s = [240.0, 60.0]",
                "kind = \"diurnal\"\nmean_rate_per_s = 1e12\namplitude = 0.5\nperiod_s = 3600.0\nphase_s = 0.0",
            )]),
            args: SIM,
            expect: &["sc.toml", "workload.arrivals.mean_rate_per_s", "1000000000000", "must be <= 1000"],
        },
        Case {
            name: "constant rate negative",
            setup: s(&[(
                "kind = \"markov\"\nrates_per_s = [0.1, 0.3]\nmean_dwell_s = [240.0, 60.0]",
                "kind = \"constant\"\nrate_per_s = -1.0",
            )]),
            args: SIM,
            expect: &["sc.toml", "rate_per_s", "-1", "must be"],
        },
        Case {
            name: "periodic interval 0",
            setup: s(&[(
                "kind = \"markov\"\nrates_per_s = [0.1, 0.3]\nmean_dwell_s = [240.0, 60.0]",
                "kind = \"periodic\"\ninterval_s = 0.0\noffset_s = 0.0",
            )]),
            args: SIM,
            expect: &["sc.toml", "interval_s", "0", "must be"],
        },
        Case {
            name: "queue capacity huge",
            setup: s(&[("queue_capacity = 64", "queue_capacity = 100000000000")]),
            args: SIM,
            expect: &["sc.toml", "workload.queue_capacity", "100000000000", "must be <= 1000000"],
        },
        Case {
            name: "queue capacity 0",
            setup: s(&[("queue_capacity = 64", "queue_capacity = 0")]),
            args: SIM,
            expect: &["sc.toml", "queue_capacity", "0", "must be >= 1"],
        },
        Case {
            name: "observation history huge",
            setup: s(&[("[serving]", "[observation]\nhistory = 100000000\n\n[serving]")]),
            args: SIM,
            expect: &["sc.toml", "observation.history", "100000000", "must be <= 1000"],
        },
        Case {
            name: "nakagami m",
            setup: s(&[("nakagami_m = 1.5", "nakagami_m = 0.3")]),
            args: SIM,
            expect: &["sc.toml", "link.snr.nakagami_m", "0.3", "must be"],
        },
        Case {
            name: "slot length 0",
            setup: s(&[("slot_s = 1.0", "slot_s = 0.0")]),
            args: SIM,
            expect: &["sc.toml", "serving.slot_s", "0", "must be"],
        },
        Case {
            name: "slot length nan",
            setup: s(&[("slot_s = 1.0", "slot_s = nan")]),
            args: SIM,
            expect: &["sc.toml", "serving.slot_s", "NaN", "must be"],
        },
        Case {
            name: "episode slots 0",
            setup: s(&[("episode_slots = 1000", "episode_slots = 0")]),
            args: SIM,
            expect: &["sc.toml", "serving.episode_slots", "0", "must be"],
        },
        Case {
            name: "cloud load level 1.5",
            setup: s(&[("levels = [0.3, 0.9]", "levels = [0.3, 1.5]")]),
            args: SIM,
            expect: &["sc.toml", "cloud_load.levels[1]", "1.5", "must be"],
        },
        Case {
            name: "unknown model preset",
            setup: s(&[("preset = \"llama-7b\"", "preset = \"llama-700b\"")]),
            args: SIM,
            expect: &["sc.toml", "llama-700b", "expected one of"],
        },
        Case {
            name: "unknown device preset",
            setup: s(&[("preset = \"jetson-orin-nx-16gb\"", "preset = \"toaster\"")]),
            args: SIM,
            expect: &["sc.toml", "toaster", "expected one of"],
        },
        Case {
            name: "weight bits 3",
            setup: s(&[("weight_bits = 8", "weight_bits = 3")]),
            args: SIM,
            expect: &["sc.toml", "model.weight_bits", "3", "must be"],
        },
        Case {
            name: "weight bits 1e9",
            setup: s(&[("weight_bits = 8", "weight_bits = 1000000000")]),
            args: SIM,
            expect: &["sc.toml", "weight_bits", "1000000000", "expected"],
        },
        Case {
            name: "regime min above max",
            setup: s(&[("min_bps = 5e6", "min_bps = 90e6")]),
            args: SIM,
            expect: &["sc.toml", "link.rate.process.regimes[0]", "must be"],
        },
        Case {
            name: "gilbert-elliott probability 2",
            setup: s(&[("failure_probability_bad = 0.9", "failure_probability_bad = 2.0")]),
            args: SIM,
            expect: &["sc.toml", "failure_probability_bad", "2", "must be in [0, 1]"],
        },
        Case {
            name: "prompt sigma 50",
            setup: s(&[("sigma = 0.8", "sigma = 50.0")]),
            args: SIM,
            expect: &["sc.toml", "workload.prompt_tokens.sigma", "50", "must be"],
        },
        Case {
            name: "prompt min above max",
            setup: s(&[("min_tokens = 8", "min_tokens = 800")]),
            args: SIM,
            expect: &["sc.toml", "workload.prompt_tokens", "800", "must be"],
        },
        Case {
            name: "energy budget negative",
            setup: s(&[("energy_budget_w = 12.0", "energy_budget_w = -12.0")]),
            args: SIM,
            expect: &["sc.toml", "reward.energy_budget_w", "-12", "must be"],
        },
        Case {
            name: "reward kind",
            setup: s(&[("kind = \"drift-plus-penalty\"", "kind = \"joy\"")]),
            args: SIM,
            expect: &["sc.toml", "joy", "expected one of"],
        },
        Case {
            name: "precision 7",
            setup: s(&[("precisions = [16, 8, 4]", "precisions = [16, 7]")]),
            args: SIM,
            expect: &["sc.toml", "actions.precisions", "7", "must be"],
        },
        Case {
            name: "action mode",
            setup: s(&[("mode = \"hierarchical\"", "mode = \"sideways\"")]),
            args: SIM,
            expect: &["sc.toml", "sideways", "expected `hierarchical`"],
        },
        Case {
            name: "negative latency",
            setup: s(&[("one_way_s = 0.025", "one_way_s = -0.025")]),
            args: SIM,
            expect: &["sc.toml", "link.latency.one_way_s", "-0.025", "must be"],
        },
        // ----- traces -----
        Case {
            name: "trace zero rate",
            setup: Setup { trace: Some("time_s,bandwidth_bps\n0,2e7\n30,0\n60,1e7\n"), ..Setup::default() },
            args: SIM,
            expect: &["sc.toml", "link.rate.process.path", "traces/t.csv", "0 bit/s at time_s = 30", "must be >= 1000"],
        },
        Case {
            name: "trace 1 bit/s",
            setup: Setup { trace: Some("time_s,bandwidth_bps\n0,2e7\n30,1\n"), ..Setup::default() },
            args: SIM,
            expect: &["sc.toml", "t.csv", "1 bit/s", "must be >= 1000"],
        },
        Case {
            name: "trace not a number",
            setup: Setup { trace: Some("time_s,bandwidth_bps\n0,fast\n"), ..Setup::default() },
            args: SIM,
            expect: &["t.csv:2", "fast", "bandwidth_bps", "expected a finite number"],
        },
        Case {
            name: "trace missing column",
            setup: Setup { trace: Some("time_s,rate\n0,1e6\n"), ..Setup::default() },
            args: SIM,
            expect: &["t.csv", "missing column `bandwidth_bps`"],
        },
        Case {
            name: "trace unsorted",
            setup: Setup { trace: Some("time_s,bandwidth_bps\n0,1e6\n2,1e6\n1,1e6\n"), ..Setup::default() },
            args: SIM,
            expect: &["t.csv:4", "time_s"],
        },
        Case {
            name: "trace empty",
            setup: Setup { trace: Some(""), ..Setup::default() },
            args: SIM,
            expect: &["t.csv", "empty"],
        },
        // ----- training configs -----
        Case {
            name: "config version",
            setup: c(&[("version = 1", "version = 7")]),
            args: TRAIN,
            expect: &["cfg.toml", "version = 7", "version 1"],
        },
        Case {
            name: "als split out of range",
            setup: c(&[(
                "kind = \"partition\"\nscenario_file = \"sc.toml\"\n[env.overrides]\nmode = \"hierarchical\"\ninfeasible = \"repair\"\nepisode_slots = 64",
                "kind = \"als\"\ninitial_split = [5, 11]",
            )]),
            args: TRAIN,
            expect: &["cfg.toml", "env.initial_split[1]", "11", "[5, 10]"],
        },
        Case {
            name: "als unknown field",
            setup: c(&[(
                "kind = \"partition\"\nscenario_file = \"sc.toml\"\n[env.overrides]\nmode = \"hierarchical\"\ninfeasible = \"repair\"\nepisode_slots = 64",
                "kind = \"als\"\ninference_wieght = 10.0",
            )]),
            args: TRAIN,
            expect: &["cfg.toml", "inference_wieght", "inference_weight"],
        },
        Case {
            name: "config name with separator",
            setup: c(&[("name = \"smoke\"", "name = \"../x\"")]),
            args: TRAIN,
            expect: &["cfg.toml", "name = ../x", "without path separators"],
        },
        Case {
            name: "agent wrong type",
            setup: c(&[("n_steps = 32", "n_steps = \"many\"")]),
            args: TRAIN,
            expect: &["cfg.toml", "agent.n_steps = \"many\"", "expected usize"],
        },
        Case {
            name: "agent float for int",
            setup: c(&[("n_epochs = 2", "n_epochs = 2.5")]),
            args: TRAIN,
            expect: &["cfg.toml", "agent.n_epochs = 2.5", "expected usize"],
        },
        Case {
            name: "agent unknown field",
            setup: c(&[("n_epochs = 2", "n_epoch = 2")]),
            args: TRAIN,
            expect: &["cfg.toml", "n_epoch", "expected one of"],
        },
        Case {
            name: "agent kind",
            setup: c(&[(agent, "kind = \"dqn\"\n")]),
            args: TRAIN,
            expect: &["cfg.toml", "dqn", "ppo"],
        },
        Case {
            name: "overrides wrong type",
            setup: c(&[("episode_slots = 64", "episode_slots = \"long\"")]),
            args: TRAIN,
            expect: &["cfg.toml", "env.overrides.episode_slots = \"long\"", "expected u64"],
        },
        Case {
            name: "overrides unknown field",
            setup: c(&[("episode_slots = 64", "episode_slot = 64")]),
            args: TRAIN,
            expect: &["cfg.toml", "episode_slot", "expected one of"],
        },
        Case {
            name: "invalid override",
            setup: c(&[("episode_slots = 64", "episode_slots = 0")]),
            args: TRAIN,
            expect: &["cfg.toml", "env.overrides.episode_slots = 0", "must be", "serving.episode_slots"],
        },
        Case {
            name: "missing scenario file",
            setup: c(&[("\"sc.toml\"", "\"nope.toml\"")]),
            args: TRAIN,
            expect: &["cfg.toml", "env.scenario_file", "nope.toml"],
        },
        Case {
            name: "n_steps 1e9",
            setup: c(&[("n_steps = 32", "n_steps = 1_000_000_000")]),
            args: TRAIN,
            expect: &["cfg.toml", "agent.n_steps = 1000000000", "must be <= 1048576"],
        },
        Case {
            name: "n_envs 1e8",
            setup: c(&[("n_envs = 2", "n_envs = 100_000_000")]),
            args: TRAIN,
            expect: &["cfg.toml", "agent.n_envs = 100000000", "must be <= 1024"],
        },
        Case {
            name: "rollout too large",
            setup: c(&[("n_envs = 2", "n_envs = 1000"), ("n_steps = 32", "n_steps = 100000")]),
            args: TRAIN,
            expect: &["cfg.toml", "agent.n_steps = 100000", "n_steps × n_envs", "must be <= 1048576"],
        },
        Case {
            name: "actor_hidden 1e8",
            setup: c(&[(agent, "kind = \"ppo\"\nactor_hidden = [100_000_000]\n")]),
            args: TRAIN,
            expect: &["cfg.toml", "agent.actor_hidden[0] = 100000000", "must be <= 4096"],
        },
        Case {
            name: "critic too deep",
            setup: c(&[(agent, "kind = \"ppo\"\ncritic_hidden = [8, 8, 8, 8, 8, 8, 8, 8, 8]\n")]),
            args: TRAIN,
            expect: &["cfg.toml", "agent.critic_hidden", "must be <= 8"],
        },
        Case {
            name: "hidden width 0",
            setup: c(&[(agent, "kind = \"ppo\"\nactor_hidden = [64, 0]\n")]),
            args: TRAIN,
            expect: &["cfg.toml", "agent.actor_hidden[1] = 0", "must be >= 1"],
        },
        Case {
            name: "eval_episodes 1e8",
            setup: c(&[("eval_episodes = 2", "eval_episodes = 100_000_000")]),
            args: TRAIN,
            expect: &["cfg.toml", "training.eval_episodes = 100000000", "must be <= 1000"],
        },
        Case {
            name: "total steps 0",
            setup: c(&[("total_steps = 256", "total_steps = 0")]),
            args: TRAIN,
            expect: &["cfg.toml", "training.total_steps = 0", "must be >= 1"],
        },
        Case {
            name: "total steps huge",
            setup: c(&[("total_steps = 256", "total_steps = 9_000_000_000_000_000_000")]),
            args: TRAIN,
            expect: &["cfg.toml", "total_steps", "must be <= 10000000000"],
        },
        Case {
            name: "negative steps",
            setup: c(&[("total_steps = 256", "total_steps = -5")]),
            args: TRAIN,
            expect: &["cfg.toml", "total_steps", "-5", "expected"],
        },
        Case {
            name: "learning rate negative",
            setup: c(&[("n_epochs = 2", "n_epochs = 2\nlearning_rate = -1")]),
            args: TRAIN,
            expect: &["cfg.toml", "agent.learning_rate = -1", "must be"],
        },
        Case {
            name: "gamma 1.5",
            setup: c(&[("n_epochs = 2", "n_epochs = 2\ngamma = 1.5")]),
            args: TRAIN,
            expect: &["cfg.toml", "agent.gamma = 1.5", "must be in [0, 1]"],
        },
        Case {
            name: "batch larger than rollout",
            setup: c(&[("batch_size = 32", "batch_size = 1000")]),
            args: TRAIN,
            expect: &["cfg.toml", "agent.batch_size = 1000", "must be <="],
        },
        Case {
            name: "checkpoint every 0",
            setup: c(&[("checkpoint_every_steps = 128", "checkpoint_every_steps = 0")]),
            args: TRAIN,
            expect: &["cfg.toml", "training.checkpoint_every_steps = 0", "must be >= 1"],
        },
        Case {
            name: "progress mode",
            setup: c(&[("eval_episodes = 2", "eval_episodes = 2\n[logging]\nprogress = \"sometimes\"")]),
            args: TRAIN,
            expect: &["cfg.toml", "sometimes", "expected one of"],
        },
        Case {
            name: "config missing",
            setup: Setup::default(),
            args: &["train", "--config", "absent.toml"],
            expect: &["absent.toml", "cannot read config"],
        },
        // ----- flags -----
        Case {
            name: "simulate steps 0",
            setup: Setup::default(),
            args: &["simulate", "--config", "sc.toml", "--steps", "0"],
            expect: &["--steps", "0", "1.."],
        },
        Case {
            name: "simulate fixed split beyond the model",
            setup: Setup::default(),
            args: &["simulate", "--config", "sc.toml", "--steps", "3", "--policy", "fixed-split:99999"],
            expect: &["fixed-split", "99999", "outside 0..=32"],
        },
        Case {
            name: "simulate unknown policy",
            setup: Setup::default(),
            args: &["simulate", "--config", "sc.toml", "--policy", "oracle-magic"],
            expect: &["oracle-magic"],
        },
        Case {
            name: "simulate missing scenario",
            setup: Setup::default(),
            args: &["simulate", "--config", "none.toml"],
            expect: &["none.toml", "cannot read"],
        },
        Case {
            name: "eval episodes 1e8",
            setup: Setup::default(),
            args: &["eval", "--config", "sc.toml", "--policies", "cloud-only", "--episodes", "100000000", "--out", "o"],
            expect: &["--episodes", "100000000", "1..=100000"],
        },
        Case {
            name: "eval slots 0",
            setup: Setup::default(),
            args: &["eval", "--config", "sc.toml", "--policies", "cloud-only", "--slots", "0", "--out", "o"],
            expect: &["--slots", "0", "1.."],
        },
        Case {
            name: "run name escapes",
            setup: Setup::default(),
            args: &["train", "--config", "cfg.toml", "--run-name", "../../escape"],
            expect: &["--run-name", "../../escape", "folder name"],
        },
        Case {
            name: "run name absolute",
            setup: Setup::default(),
            args: &["train", "--config", "cfg.toml", "--run-name", "/tmp/abs"],
            expect: &["--run-name", "/tmp/abs", "folder name"],
        },
        Case {
            name: "run name empty",
            setup: Setup::default(),
            args: &["train", "--config", "cfg.toml", "--run-name", ""],
            expect: &["--run-name", "\"\"", "non-empty"],
        },
        Case {
            name: "resume missing",
            setup: Setup::default(),
            args: &["train", "--config", "cfg.toml", "--resume", "nowhere"],
            expect: &["nowhere", "does not exist"],
        },
        Case {
            name: "export missing checkpoint",
            setup: Setup::default(),
            args: &["export", "--checkpoint", "nowhere", "--out", "p.onnx"],
            expect: &["nowhere", "does not exist"],
        },
        // ----- checkpoints -----
        Case {
            name: "ppo_meta obs_dim changed",
            // As an older checkpoint without file checksums would be edited.
            setup: Setup {
                checkpoint: &[
                    ("agent/ppo_meta.json", |t| t.replacen("\"obs_dim\": 53", "\"obs_dim\": 49", 1)),
                    ("metadata.json", |t| {
                        let mut v: serde_json::Value = serde_json::from_str(t).unwrap();
                        v.as_object_mut().unwrap().remove("files_crc32c");
                        v.to_string()
                    }),
                ],
                ..Setup::default()
            },
            args: RESUME,
            expect: &[
                "step_64",
                "agent/ppo_meta.json",
                "obs_normalizer is 53 features in the saved state, expected 49",
            ],
        },
        Case {
            name: "metadata corrupt",
            setup: Setup { checkpoint: &[("metadata.json", |t| t[..t.len() / 2].to_string())], ..Setup::default() },
            args: RESUME,
            expect: &["step_64", "metadata.json", "corrupt"],
        },
        Case {
            name: "env state edited",
            setup: Setup { checkpoint: &[("env_state.json", |t| t.replacen('1', "2", 1))], ..Setup::default() },
            args: RESUME,
            expect: &["step_64", "env_state.json is corrupt", "CRC-32C"],
        },
    ]
}

#[test]
fn every_bad_input_is_a_clear_error_never_a_crash() {
    let cases = cases();
    assert!(cases.len() >= 50, "{} cases", cases.len());
    let smoke = repo("configs/smoke.toml");
    let mut failures = Vec::new();
    for case in &cases {
        let dir = tempfile::tempdir().unwrap();
        prepare(dir.path(), &case.setup);
        let args: Vec<&str> =
            case.args.iter().map(|a| if *a == "SMOKE" { smoke.to_str().unwrap() } else { a }).collect();
        let out = run(dir.path(), &args);
        let stderr = String::from_utf8_lossy(&out.stderr).to_string();
        let code = out.status.code();
        let crashed =
            ["panicked", "memory allocation", "RUST_BACKTRACE", "stack backtrace"].iter().any(|p| stderr.contains(p));
        let missing: Vec<&&str> = case.expect.iter().filter(|f| !stderr.contains(**f)).collect();
        if !matches!(code, Some(1 | 2)) || crashed || !missing.is_empty() {
            failures.push(format!("{}: exit {code:?}, missing {missing:?}\n{stderr}", case.name));
        }
    }
    assert!(failures.is_empty(), "{} of {} cases failed:\n\n{}", failures.len(), cases.len(), failures.join("\n"));
}
