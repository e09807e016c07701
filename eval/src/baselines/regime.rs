//! `oracle-regime[:EPISODES]` and `oracle-regime-late[:EPISODES]`: the best *regime table*, a
//! reference for what knowing the hidden regimes of the present (not the future) is worth. Each
//! slot it reduces true conditions to a regime key (Gilbert–Elliott state × cloud-load level ×
//! link-rate regime, the indices the env records in each slot's conditions) and plays the
//! whole-layer plan its table holds for that key. `oracle-regime` keys on
//! the decided slot's conditions; `oracle-regime-late` on the previous slot's (the first slot of
//! an episode on its own), which is the most a device's observation can tell about the regimes:
//! its probe and its requests report on the slot that has just ended.
//!
//! The table is tuned offline by coordinate descent on `EPISODES` tuning episodes (default 100;
//! seeds disjoint from any evaluation's, like `best-fixed`): start from the best static plan in
//! every key, then for each key in turn try every whole-layer plan
//! ([`super::clairvoyant::static_candidates`]) with the other keys fixed and keep it if the total
//! reward on the tuning episodes rises; at most two sweeps. The same tuning episodes score every
//! table (common random numbers), so the comparisons are paired.
//!
//! Both are oracles (reports mark them †): a device sees its link failing and the cloud's
//! queueing only through the observation, and not exactly. Neither is an upper bound on causal
//! policies: a table ignores the queues, the energy backlog and how long a regime has lasted.
//! They answer one question: how much of the clairvoyant headroom does a per-regime plan take
//! when the regimes are known? If a learner comes close to `oracle-regime-late`, what it can
//! observe about the present is not what holds it back; the rest of the headroom is foresight.
//!
//! Cost: (1 + 2 × keys) × candidates × EPISODES episodes at construction; on the Jetson scenario
//! (8 keys, 33 candidates in the layer-split space, 100 episodes of 500 slots) 27 s in release
//! on one core (about 110 s with the hierarchical space's 99), on the subway (2 keys) 8 s.

use super::clairvoyant::{play_to_episode_end, static_candidates};
use splitwise_env::api::Env;
use splitwise_env::exogenous::ExoSlot;
use splitwise_env::failure::GeState;
use splitwise_env::link::{RateModelConfig, RateProcessConfig};
use splitwise_env::partition::PartitionEnv;
use splitwise_env::plan::Plan;
use splitwise_env::policy::{Decision, DecisionContext, Policy, largest_feasible_split};
use splitwise_env::rng::derive_seed;
use splitwise_env::scenario::Scenario;
use std::sync::Arc;

/// Default tuning episodes.
pub const DEFAULT_EPISODES: u32 = 100;
/// Most tuning episodes an argument may ask for (the cost grows linearly).
pub const MAX_EPISODES: u32 = 1000;
/// Coordinate-descent sweeps over the keys.
const SWEEPS: usize = 2;
/// Salt of the tuning seeds (disjoint from `derive_seed(eval_seed, k)` and from `best-fixed`'s).
const TUNING_SALT: u64 = 0x0E61_3E00_0000_0001;

/// How a slot's true conditions map to a regime key.
#[derive(Clone, Debug)]
struct Keying {
    /// Cloud-load levels (at least 1).
    cloud_levels: usize,
    /// Link-rate regimes (1 for a rate without regimes).
    rate_regimes: usize,
}

impl Keying {
    fn new(sc: &Scenario) -> Self {
        let rate_regimes = match &sc.config.link.rate {
            RateModelConfig::Rate { process: RateProcessConfig::Regimes(r) } => r.regimes.len(),
            _ => 1,
        };
        Self { cloud_levels: sc.config.cloud_load.levels.len().max(1), rate_regimes: rate_regimes.max(1) }
    }

    fn n_keys(&self) -> usize {
        2 * self.cloud_levels * self.rate_regimes
    }

    /// The slot's regimes as recorded by the env (`ExoSlot::cloud_level`, `rate_regime`), not
    /// inferred from the jittered load and rate.
    fn key(&self, x: &ExoSlot) -> usize {
        let ge = usize::from(x.ge == GeState::Bad);
        let cloud = x.cloud_level.min(self.cloud_levels - 1);
        let rate = x.rate_regime.min(self.rate_regimes - 1);
        (ge * self.cloud_levels + cloud) * self.rate_regimes + rate
    }
}

pub struct OracleRegime {
    keying: Keying,
    /// Key on the previous slot's conditions (`oracle-regime-late`).
    late: bool,
    /// The conditions of the slot decided last (for `late`).
    previous: Option<ExoSlot>,
    /// The tuned plan per key.
    table: Vec<Plan>,
    episodes: u32,
    n_heads: u32,
}

/// The conditions a table is keyed on: the decided slot's, or with `late` the previous slot's
/// (the first slot's own when there is none).
fn keyed(late: bool, previous: Option<ExoSlot>, now: ExoSlot) -> ExoSlot {
    if late { previous.unwrap_or(now) } else { now }
}

/// Total reward of `table` over the tuning episodes.
fn score(
    env: &mut PartitionEnv,
    keying: &Keying,
    late: bool,
    table: &[&Plan],
    episodes: u32,
    obs: &mut [f32],
    mask: &mut [bool],
) -> f64 {
    let mut total = 0.0;
    for k in 0..u64::from(episodes) {
        env.reset_into(Some(derive_seed(TUNING_SALT, k)), obs, mask);
        let mut previous = None;
        total += play_to_episode_end(env, obs, mask, |env| {
            let now = env.oracle_conditions();
            let key = keying.key(&keyed(late, previous, now));
            previous = Some(now);
            table[key]
        });
        if total == f64::NEG_INFINITY {
            break;
        }
    }
    total
}

impl OracleRegime {
    /// `late`: key on the previous slot's conditions (`oracle-regime-late`).
    pub fn new(scenario: &Arc<Scenario>, episodes: u32, late: bool) -> Self {
        let sc = &**scenario;
        let keying = Keying::new(sc);
        let candidates = static_candidates(sc);
        let mut env = PartitionEnv::new(scenario.clone());
        let (mut obs, mut mask) = env.buffers();
        let n = keying.n_keys();
        let mut choice = vec![0usize; n];
        let mut eval = |choice: &[usize], env: &mut PartitionEnv| {
            let table: Vec<&Plan> = choice.iter().map(|&c| &candidates[c]).collect();
            score(env, &keying, late, &table, episodes, &mut obs, &mut mask)
        };
        // Start from the best static plan (the same plan in every key).
        let mut best = f64::NEG_INFINITY;
        for c in 0..candidates.len() {
            let s = eval(&vec![c; n], &mut env);
            if s > best {
                best = s;
                choice = vec![c; n];
            }
        }
        for _ in 0..SWEEPS {
            let mut improved = false;
            for key in 0..n {
                for c in 0..candidates.len() {
                    if c == choice[key] {
                        continue;
                    }
                    let mut trial = choice.clone();
                    trial[key] = c;
                    let s = eval(&trial, &mut env);
                    if s > best {
                        best = s;
                        choice = trial;
                        improved = true;
                    }
                }
            }
            if !improved {
                break;
            }
        }
        let table = choice.iter().map(|&c| candidates[c].clone()).collect();
        Self { keying, late, previous: None, table, episodes, n_heads: sc.n_heads() }
    }

    /// The tuned plan per regime key (key = (GE bad × cloud levels + cloud level) × rate
    /// regimes + rate regime).
    pub fn table(&self) -> &[Plan] {
        &self.table
    }
}

impl Policy for OracleRegime {
    fn name(&self) -> String {
        let base = if self.late { "oracle-regime-late" } else { "oracle-regime" };
        if self.episodes == DEFAULT_EPISODES { base.into() } else { format!("{base}:{}", self.episodes) }
    }

    fn reset(&mut self, _seed: u64) {
        self.previous = None;
    }

    fn end_episode(&mut self) {
        self.previous = None;
    }

    fn is_oracle(&self) -> bool {
        true
    }

    fn decide(&mut self, ctx: &DecisionContext<'_>) -> Decision {
        let plan = match ctx.oracle {
            Some(now) => {
                let x = keyed(self.late, self.previous, now);
                self.previous = Some(now);
                &self.table[self.keying.key(&x)]
            }
            // Without the true conditions (a caller that does not honour `is_oracle`): the
            // table's healthy entry.
            None => &self.table[0],
        };
        let split = plan.leading_edge_layers(self.n_heads);
        Decision::Plan(largest_feasible_split(ctx, split, plan.precision))
    }
}
