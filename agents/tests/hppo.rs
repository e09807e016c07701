//! Hierarchical PPO on the partition environment's hierarchical space: the masks of both levels
//! never let an infeasible plan through, the low level sees the high choice as an unnormalised
//! context, and a saved state restores both levels exactly.

use proptest::prelude::*;
use splitwise_agents::{ActionChoice, HighHold, Hppo, HppoConfig, PolicyShape, PpoConfig};
use splitwise_env::api::Env;
use splitwise_env::partition::PartitionEnv;
use splitwise_env::rng::{Stream, item_rng};
use splitwise_env::scenario::{ActionMode, InfeasibleAction, Scenario, ScenarioConfig, TraceSource};
use splitwise_env::vector::VecEnv;
use std::sync::Arc;

const JETSON: &str = include_str!("../../configs/jetson-llama7b-lte.toml");
const PRIVACY: &str = include_str!("../../configs/privacy-floor-heads.toml");

/// Traces named by the shipped scenarios, read from `configs/`.
struct ConfigTraces;

impl TraceSource for ConfigTraces {
    fn read(&self, path: &str) -> Result<String, String> {
        let full = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs").join(path);
        std::fs::read_to_string(&full).map_err(|e| format!("{}: {e}", full.display()))
    }
}

/// A scenario in the hierarchical space whose env refuses (errors on) any infeasible plan.
fn strict(text: &str, slots: u64) -> Arc<Scenario> {
    let mut cfg = ScenarioConfig::from_toml(text).unwrap();
    cfg.actions.mode = ActionMode::Hierarchical;
    cfg.actions.infeasible = InfeasibleAction::Error;
    cfg.serving.episode_slots = slots;
    Arc::new(Scenario::resolve(cfg, &ConfigTraces).unwrap())
}

fn small(n_envs: usize) -> PpoConfig {
    PpoConfig { n_envs, n_steps: 16, batch_size: 16, n_epochs: 1, ..PpoConfig::default() }
}

fn hppo(env: &PartitionEnv, seed: u64, n_envs: usize) -> Hppo {
    hppo_holding(env, seed, n_envs, 1)
}

/// A hierarchy whose high level holds each choice for `k_high` slots.
fn hppo_holding(env: &PartitionEnv, seed: u64, n_envs: usize, k_high: usize) -> Hppo {
    let config = HppoConfig { high: small(n_envs), low: small(n_envs), n_high: 2, low_prior: 0.0, k_high };
    Hppo::new(config, PolicyShape::of(env.spec()), seed).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, failure_persistence: None, ..ProptestConfig::default() })]

    /// Random states (seeds, a random prefix of slots) and random high-level choices (an
    /// untrained, sampled high level, near-uniform over its legal values): every joint action
    /// sampled under the two levels' masks is a feasible plan (the strict env would error).
    /// With `held`, the high level holds each choice for 4 slots (`k_high`) while edge memory
    /// changes under it: a held choice the masks no longer allow ends its option instead.
    #[test]
    fn masks_never_let_an_infeasible_plan_through(seed in 0u64..1_000_000, privacy in any::<bool>(), held in any::<bool>()) {
        let sc = strict(if privacy { PRIVACY } else { JETSON }, 48);
        let mut env = PartitionEnv::new(sc);
        let agent = hppo_holding(&env, seed, 1, if held { 4 } else { 1 });
        let mut hold = HighHold::default();
        let mut rng = item_rng(seed, Stream::Policy, 99);
        let (mut obs, mut mask) = (vec![0.0f32; env.spec().observation.dim()], vec![false; env.spec().action.nvec.iter().sum()]);
        env.reset_into(Some(seed), &mut obs, &mut mask);
        let mut action = vec![0usize; env.spec().action.nvec.len()];
        for _ in 0..48 {
            {
                let mut conditional = |_i: usize, prefix: &[usize], out: &mut [bool]| env.conditional_mask(prefix, out);
                agent
                    .act_holding_into_with(&obs, &mask, ActionChoice::Sample(&mut rng), Some(&mut conditional), &mut hold, &mut action)
                    .unwrap();
            }
            let step = env.step_into(&action, &mut obs, &mut mask);
            prop_assert!(step.is_ok(), "seed {seed}: action {action:?} refused: {:?}", step.err());
            let t = step.unwrap();
            if t.terminated || t.truncated {
                break;
            }
        }
    }
}

#[test]
fn the_low_level_reads_the_high_choice_one_hot_and_unnormalised() {
    let env = PartitionEnv::new(strict(JETSON, 32));
    let agent = hppo(&env, 5, 2);
    let (obs_dim, nvec) = (env.spec().observation.dim(), env.spec().action.nvec.clone());
    assert_eq!(agent.high().shape().nvec, nvec[..2]);
    assert_eq!(agent.low().shape().nvec, nvec[2..]);
    assert_eq!(agent.low().shape().obs_dim, obs_dim);
    assert_eq!(agent.low().shape().context_dim, nvec[0] + nvec[1]);
    // A normaliser with a large mean: the observation columns move, the context stays 0/1.
    let row: Vec<f32> = (0..obs_dim).map(|_| 3.0).chain((0..nvec[0] + nvec[1]).map(|j| f32::from(j == 1))).collect();
    let mut out = vec![0.0; row.len()];
    agent.low().normalize_obs(&row, &mut out);
    assert_eq!(&out[obs_dim..], &row[obs_dim..], "the context is passed through");
}

#[test]
fn a_saved_hierarchy_restores_both_levels_exactly() {
    let sc = strict(JETSON, 32);
    let mut venv = VecEnv::new((0..2).map(|_| PartitionEnv::new(sc.clone())).collect());
    venv.reset(11);
    let mut agent = hppo(&venv.members()[0], 11, 2);
    agent.collect_rollout_observed(&mut venv, |_| {}).unwrap();
    let [high, low] = agent.update();
    assert!(high.policy_loss.is_finite() && low.policy_loss.is_finite());
    let state = agent.export_state().unwrap();
    let restored = Hppo::from_state(&state).unwrap();
    assert_eq!(restored.parameter_values(), agent.parameter_values());
    assert_eq!(restored.progress(), agent.progress());
    assert_eq!(restored.export_state().unwrap().high.meta, state.high.meta);
    assert_eq!(restored.export_state().unwrap().low.meta, state.low.meta);
}

/// With the low-level prior, a fresh hierarchy is a layer-split policy: its most probable low
/// choice is the whole-layer plan of whatever split the high level picks (the skip's bonus
/// outweighs a fresh network's near-zero logits), so its greedy plans never mix edge and cloud
/// inside a layer; without the prior it starts from the network's own (mixed) preferences.
#[test]
fn the_low_level_prior_starts_a_fresh_hierarchy_at_the_whole_layer_plan_of_its_split() {
    let mut env = PartitionEnv::new(strict(JETSON, 64));
    let mut with_prior = {
        let config = HppoConfig {
            high: small(1),
            low: small(1),
            n_high: 2,
            low_prior: splitwise_agents::hppo::DEFAULT_LOW_PRIOR,
            k_high: 1,
        };
        Hppo::new(config, PolicyShape::of(env.spec()), 3).unwrap()
    };
    with_prior.init_low_prior(&env).unwrap();
    let without = hppo(&env, 3, 1);
    let (mut obs, mut mask) =
        (vec![0.0f32; env.spec().observation.dim()], vec![false; env.spec().action.nvec.iter().sum()]);
    env.reset_into(Some(11), &mut obs, &mut mask);
    let mut action = vec![0usize; env.spec().action.nvec.len()];
    let (mut whole, mut whole_without) = (0, 0);
    for _ in 0..64 {
        for (agent, count) in [(&with_prior, &mut whole), (&without, &mut whole_without)] {
            let mut conditional = |_i: usize, prefix: &[usize], out: &mut [bool]| env.conditional_mask(prefix, out);
            agent.act_into_with(&obs, &mask, ActionChoice::Deterministic, Some(&mut conditional), &mut action).unwrap();
            *count += usize::from(action == env.whole_layer_action(action[0] as u32, action[1]));
        }
        env.step_into(&action, &mut obs, &mut mask).unwrap();
    }
    assert_eq!(whole, 64, "every greedy plan of the prior-started hierarchy is a whole-layer plan");
    assert!(whole_without < 64, "without the prior a fresh low level does not follow the split ({whole_without}/64)");
    // The prior is the context skip's start: a saved state carries it, a zero prior leaves it at 0.
    let restored = Hppo::from_state(&with_prior.export_state().unwrap()).unwrap();
    assert_eq!(restored.parameter_values(), with_prior.parameter_values());
    let skip = |h: &Hppo| {
        h.low().actor().context_skip.as_ref().map(|l| l.weight.val().into_data().try_to_vec::<f32>().unwrap())
    };
    assert!(skip(&with_prior).unwrap().contains(&splitwise_agents::hppo::DEFAULT_LOW_PRIOR));
    assert!(skip(&without).unwrap().iter().all(|&w| w == 0.0));
}
