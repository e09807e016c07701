//! What the observation-driven baselines' unit tests share: the Jetson scenario, an env to
//! decide in, and a policy's plan for a hand-set observation.

use splitwise_env::api::Env;
use splitwise_env::partition::PartitionEnv;
use splitwise_env::plan::Plan;
use splitwise_env::policy::{Decision, DecisionContext, Policy};
use splitwise_env::scenario::{NoTraces, Scenario};
use std::sync::Arc;

/// The shipped Jetson scenario (no trace files) and a fresh env of it.
pub fn jetson() -> (Arc<Scenario>, PartitionEnv) {
    let text = include_str!("../../../configs/jetson-llama7b-lte.toml");
    let sc = Arc::new(Scenario::from_toml(text, &NoTraces).unwrap());
    let env = PartitionEnv::new(sc.clone());
    (sc, env)
}

/// The plan `policy` decides for `obs` in `env`'s current slot (every action legal).
pub fn plan_of(policy: &mut dyn Policy, env: &PartitionEnv, obs: &[f32]) -> Plan {
    let (_, mask) = env.buffers();
    let sc = env.scenario();
    let ctx = DecisionContext { obs, mask: &mask, env, oracle: None, edge_memory_bytes: sc.edge.usable_memory_bytes };
    match policy.decide(&ctx) {
        Decision::Plan(plan) => plan,
        Decision::Action(_) => panic!("an observation-driven baseline decides plans"),
    }
}
