//! `best-fixed[:EPISODES]`: the best static plan a practitioner can pick offline. Every
//! whole-layer plan (each split × allowed precision, [`super::clairvoyant::static_candidates`])
//! runs `EPISODES` tuning episodes of the simulator (default 3) whose seeds are disjoint from any
//! evaluation's (they derive from a fixed tuning salt, not from `--seed`); the plan with the best
//! total reward (the scenario's objective) is then held in every slot, lowered to the deepest
//! split that fits when the slot's edge memory is short. It is causal (chosen before the
//! evaluated episodes, on other seeds) and it is the "best static plan" of the headroom section.
//!
//! Cost: candidates × EPISODES × episode slots environment steps at construction (about 100 ×
//! 3 × 1,000 for the LLaMA-7B hierarchical space: a few seconds in release).

use super::clairvoyant::{hold_to_episode_end, static_candidates};
use splitwise_env::api::Env;
use splitwise_env::partition::PartitionEnv;
use splitwise_env::plan::Plan;
use splitwise_env::policy::{Decision, DecisionContext, Policy, largest_feasible_split};
use splitwise_env::rng::derive_seed;
use splitwise_env::scenario::Scenario;
use std::sync::Arc;

/// Default tuning episodes.
pub const DEFAULT_EPISODES: u32 = 3;
/// Salt of the tuning seeds (disjoint from `derive_seed(eval_seed, k)`).
const TUNING_SALT: u64 = 0xB357_F1ED_0000_0001;

pub struct BestFixed {
    plan: Plan,
    episodes: u32,
    n_heads: u32,
}

impl BestFixed {
    pub fn new(scenario: &Arc<Scenario>, episodes: u32) -> Self {
        let sc = &**scenario;
        let mut env = PartitionEnv::new(scenario.clone());
        let (mut obs, mut mask) = env.buffers();
        let mut best: Option<(f64, Plan)> = None;
        for plan in static_candidates(sc) {
            let mut total = 0.0;
            for k in 0..u64::from(episodes) {
                env.reset_into(Some(derive_seed(TUNING_SALT, k)), &mut obs, &mut mask);
                total += hold_to_episode_end(&mut env, &plan, &mut obs, &mut mask);
            }
            if best.as_ref().is_none_or(|b| total > b.0) {
                best = Some((total, plan));
            }
        }
        let plan = best.map_or_else(|| Plan::cloud_only(sc.n_layers(), sc.layer_split_precision), |b| b.1);
        Self { plan, episodes, n_heads: sc.n_heads() }
    }

    /// The chosen plan.
    pub fn plan(&self) -> &Plan {
        &self.plan
    }
}

impl Policy for BestFixed {
    fn name(&self) -> String {
        if self.episodes == DEFAULT_EPISODES { "best-fixed".into() } else { format!("best-fixed:{}", self.episodes) }
    }

    fn decide(&mut self, ctx: &DecisionContext<'_>) -> Decision {
        let split = self.plan.leading_edge_layers(self.n_heads);
        Decision::Plan(largest_feasible_split(ctx, split, self.plan.precision))
    }
}
