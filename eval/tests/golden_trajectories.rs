//! The cross-language golden trajectories (`tests/fixtures/trajectories.json`): fixed action
//! sequences on seeded episodes of a shipped scenario (both action modes), CartPole and ALS's
//! environment, recorded from the Rust environments. The Python bindings' test
//! (`python/tests/test_trajectories.py`) replays the same actions through `splitwise_gym` and
//! must reproduce every observation, mask, reward and flag bit for bit: the same seed gives the
//! same trajectory in Python and in Rust.
//!
//! A change to the simulator that moves these trajectories fails here first; rerun with
//! `SPLITWISE_BLESS=1 cargo test --release -p splitwise-eval --test golden_trajectories` to
//! rewrite the fixture, and say why in the commit.

use serde_json::{Value, json};
use splitwise_env::als::{AlsConfig, AlsEnv};
use splitwise_env::api::Env;
use splitwise_env::cartpole::CartPole;
use splitwise_env::partition::PartitionEnv;
use splitwise_env::scenario::{ActionMode, InfeasibleAction, ScenarioConfig, ScenarioOverrides};
use splitwise_eval::scenario_file;
use std::path::{Path, PathBuf};

const STEPS: usize = 40;
const SEED: u64 = 7;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Component `c`'s value at step `t`: a fixed pattern covering the range.
fn action(t: usize, nvec: &[usize]) -> Vec<usize> {
    nvec.iter().enumerate().map(|(c, &n)| (t * 7 + 3 + c * 5) % n).collect()
}

fn record(env: &mut impl Env, name: &str, options: Value) -> Value {
    let nvec = env.spec().action.nvec.clone();
    let (first, _) = env.reset(Some(SEED));
    let mut steps = Vec::new();
    for t in 0..STEPS {
        let a = action(t, &nvec);
        let s = env.step(&a).expect("the fixed actions are valid (repaired where infeasible)");
        steps.push(json!({
            "action": a,
            "obs": s.obs.features,
            "mask": s.obs.mask.iter().map(|&b| if b { '1' } else { '0' }).collect::<String>(),
            "reward": s.reward,
            "terminated": s.terminated,
            "truncated": s.truncated,
        }));
        if s.terminated || s.truncated {
            break;
        }
    }
    json!({ "name": name, "options": options, "seed": SEED, "reset_obs": first.features, "steps": steps })
}

fn partition(mode: ActionMode, mode_name: &str) -> Value {
    let path = repo().join("configs/jetson-llama7b-lte.toml");
    let text = scenario_file::read_text(&path).unwrap();
    let mut config = ScenarioConfig::from_toml(&text).unwrap();
    let overrides =
        ScenarioOverrides { mode: Some(mode), infeasible: Some(InfeasibleAction::Repair), ..Default::default() };
    overrides.apply(&mut config);
    let scenario = scenario_file::resolve(config, &path).unwrap();
    let mut env = PartitionEnv::new(scenario);
    record(&mut env, "jetson-llama7b-lte", json!({ "kind": "partition", "mode": mode_name, "infeasible": "repair" }))
}

fn trajectories() -> Value {
    let mut cartpole = CartPole::new();
    let mut als = AlsEnv::new(AlsConfig::default()).unwrap();
    json!([
        partition(ActionMode::LayerSplit, "layer-split"),
        partition(ActionMode::Hierarchical, "hierarchical"),
        record(&mut cartpole, "cartpole", json!({ "kind": "cartpole" })),
        record(&mut als, "als", json!({ "kind": "als" })),
    ])
}

#[test]
fn rust_trajectories_match_the_shared_fixture() {
    let path = repo().join("tests/fixtures/trajectories.json");
    // Through text, as the fixture is read: an f32 observation compares by its shortest decimal.
    let now: Value = serde_json::from_str(&serde_json::to_string(&trajectories()).unwrap()).unwrap();
    if std::env::var_os("SPLITWISE_BLESS").is_some() {
        std::fs::write(&path, serde_json::to_string(&now).unwrap() + "\n").unwrap();
        return;
    }
    let text = std::fs::read_to_string(&path).expect("tests/fixtures/trajectories.json (SPLITWISE_BLESS=1 writes it)");
    let fixture: Value = serde_json::from_str(&text).unwrap();
    for (got, want) in now.as_array().unwrap().iter().zip(fixture.as_array().unwrap()) {
        assert_eq!(
            got, want,
            "trajectory {} moved: the simulator changed (rewrite with SPLITWISE_BLESS=1, see the module doc)",
            want["name"]
        );
    }
    assert_eq!(now.as_array().unwrap().len(), fixture.as_array().unwrap().len());
}
