//! `oracle-regime[:EPISODES]`, `oracle-regime-late[:EPISODES]` and `oracle-regime-aged[:EPISODES]`:
//! the best *regime table*, a
//! reference for what knowing the hidden regimes of the present (not the future) is worth. Each
//! slot it reduces true conditions to a regime key (Gilbert–Elliott state × cloud-load level ×
//! link-rate regime, the indices the env records in each slot's conditions) and plays the
//! whole-layer plan its table holds for that key. `oracle-regime` keys on
//! the decided slot's conditions; `oracle-regime-late` on the previous slot's (the first slot of
//! an episode on its own), which is the most a device's observation can tell about the regimes:
//! its probe and its requests report on the slot that has just ended. `oracle-regime-aged` is
//! `oracle-regime-late` keyed also on how long the link's Gilbert–Elliott state had lasted at the
//! end of the previous slot, in [`AGE_BUCKET_S`]-second buckets up to [`AGE_BUCKETS`] of them
//! (the last holds every longer age). Where the link's periods are regular (a subway's station
//! dwells, Gamma sojourns) that age tells how soon the state is likely to change, which the late
//! table cannot use; a device observes it as the time since its last failed probe (the service
//! age `service-window` reads), so the aged table is the reference for what the present,
//! including its age, is worth there. Where sojourns are memoryless the age tells nothing and
//! the aged table can only match the late one: its tuning starts from the late table (each
//! regime's plan in all its age buckets) and changes a bucket only where that scores better on
//! the tuning episodes (with 13× the keys it can still overfit them: on the Jetson's fresh
//! episodes it loses to the late table, docs/system-model.md).
//!
//! The table is tuned offline by coordinate descent on `EPISODES` tuning episodes (default 100;
//! seeds disjoint from any evaluation's, like `best-fixed`): start from the best static plan in
//! every key, then for each key in turn try every whole-layer plan
//! ([`super::clairvoyant::static_candidates`]) with the other keys fixed and keep it if the total
//! reward on the tuning episodes rises; at most two sweeps. The same tuning episodes score every
//! table (common random numbers), so the comparisons are paired.
//!
//! All three are oracles (reports mark them †): a device sees its link failing and the cloud's
//! queueing only through the observation, and not exactly. Neither is an upper bound on causal
//! policies: a table ignores the queues, the energy backlog and (but for the aged one) how long
//! a regime has lasted.
//! They answer one question: how much of the clairvoyant headroom does a per-regime plan take
//! when the regimes are known? If a learner comes close to `oracle-regime-late`, what it can
//! observe about the present is not what holds it back; the rest of the headroom is foresight.
//!
//! Cost: (1 + 2 × keys) × candidates × EPISODES episodes at construction; on the Jetson scenario
//! (8 keys, 33 candidates in the layer-split space, 100 episodes of 500 slots) 27 s in release
//! on one core (about 110 s with the hierarchical space's 99), on the subway (2 keys) 8 s; the
//! aged table tunes the late one, then [`AGE_BUCKETS`] times its keys.

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
/// Width of an age bucket of `oracle-regime-aged` (s): about a sixth of the subway's 29 s mean
/// station dwell; `service-window`'s tuned 20-s edge falls on a bucket boundary.
pub const AGE_BUCKET_S: f64 = 5.0;
/// Age buckets of `oracle-regime-aged`: 0–5 s, …, 55–60 s, and 60 s or more in the last.
pub const AGE_BUCKETS: usize = 13;
/// Salt of the tuning seeds (disjoint from `derive_seed(eval_seed, k)` and from `best-fixed`'s).
const TUNING_SALT: u64 = 0x0E61_3E00_0000_0001;

/// How a slot's true conditions map to a regime key.
#[derive(Clone, Debug)]
struct Keying {
    /// Cloud-load levels (at least 1).
    cloud_levels: usize,
    /// Link-rate regimes (1 for a rate without regimes).
    rate_regimes: usize,
    /// Age buckets of the link's state (1: the age is not keyed on).
    age_buckets: usize,
    /// Slot length (s), to turn an age in slots into seconds.
    slot_s: f64,
}

impl Keying {
    fn new(sc: &Scenario, aged: bool) -> Self {
        let rate_regimes = match &sc.config.link.rate {
            RateModelConfig::Rate { process: RateProcessConfig::Regimes(r) } => r.regimes.len(),
            _ => 1,
        };
        Self {
            cloud_levels: sc.config.cloud_load.levels.len().max(1),
            rate_regimes: rate_regimes.max(1),
            age_buckets: if aged { AGE_BUCKETS } else { 1 },
            slot_s: sc.config.serving.slot_s,
        }
    }

    fn n_keys(&self) -> usize {
        2 * self.cloud_levels * self.rate_regimes * self.age_buckets
    }

    /// The slot's regimes as recorded by the env (`ExoSlot::cloud_level`, `rate_regime`), not
    /// inferred from the jittered load and rate.
    ///
    /// `age_slots`: how many slots the link's state of `x` had lasted, `x`'s own included (0 where
    /// unknown: an episode's first slot); read only by an aged keying.
    fn key(&self, x: &ExoSlot, age_slots: u32) -> usize {
        let ge = usize::from(x.ge == GeState::Bad);
        let cloud = x.cloud_level.min(self.cloud_levels - 1);
        let rate = x.rate_regime.min(self.rate_regimes - 1);
        let age = age_bucket(f64::from(age_slots) * self.slot_s).min(self.age_buckets - 1);
        ((ge * self.cloud_levels + cloud) * self.rate_regimes + rate) * self.age_buckets + age
    }
}

/// The bucket of an age in seconds: [0, 5) s → 0, [5, 10) s → 1, …, 60 s or more → 12.
fn age_bucket(age_s: f64) -> usize {
    ((age_s / AGE_BUCKET_S).floor().max(0.0) as usize).min(AGE_BUCKETS - 1)
}

/// The slots seen so far in an episode, as a table keys on them: the previous slot's conditions
/// and how many slots its link state had lasted.
#[derive(Clone, Copy, Debug, Default)]
struct History {
    previous: Option<ExoSlot>,
    /// Consecutive slots up to and including `previous` with its link state.
    age_slots: u32,
}

impl History {
    /// The conditions and age a table keys on for the slot with conditions `now` (`late`: the
    /// previous slot's, or `now` with age 0 in an episode's first slot; otherwise `now`, whose
    /// own age counts it), then `now` recorded.
    fn key_then_record(&mut self, late: bool, now: ExoSlot) -> (ExoSlot, u32) {
        let age_now = match self.previous {
            Some(p) if p.ge == now.ge => self.age_slots + 1,
            _ => 1,
        };
        let keyed = if late {
            match self.previous {
                Some(p) => (p, self.age_slots),
                None => (now, 0),
            }
        } else {
            (now, age_now)
        };
        self.previous = Some(now);
        self.age_slots = age_now;
        keyed
    }
}

/// What a regime table keys on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reading {
    /// The decided slot's regimes (`oracle-regime`).
    Now,
    /// The previous slot's (`oracle-regime-late`).
    Late,
    /// The previous slot's and how long its link state had lasted (`oracle-regime-aged`).
    Aged,
}

impl Reading {
    /// The baseline's name.
    pub fn name(self) -> &'static str {
        match self {
            Reading::Now => "oracle-regime",
            Reading::Late => "oracle-regime-late",
            Reading::Aged => "oracle-regime-aged",
        }
    }

    fn late(self) -> bool {
        self != Reading::Now
    }
}

pub struct OracleRegime {
    keying: Keying,
    reading: Reading,
    /// The slots decided so far in the episode.
    history: History,
    /// The tuned plan per key.
    table: Vec<Plan>,
    episodes: u32,
    n_heads: u32,
}

/// Tunes a table of plans (an index into `candidates` per key) by coordinate descent on the
/// tuning episodes: the total of the per-slot rewards, higher is better.
struct Tuner<'a> {
    candidates: &'a [Plan],
    env: PartitionEnv,
    obs: Vec<f32>,
    mask: Vec<bool>,
    late: bool,
    episodes: u32,
}

impl Tuner<'_> {
    /// The table's total reward over the tuning episodes (−∞ as soon as an episode is).
    fn score(&mut self, keying: &Keying, choice: &[usize]) -> f64 {
        let table: Vec<&Plan> = choice.iter().map(|&c| &self.candidates[c]).collect();
        let (env, obs, mask, late) = (&mut self.env, &mut self.obs[..], &mut self.mask[..], self.late);
        let mut total = 0.0;
        for k in 0..u64::from(self.episodes) {
            env.reset_into(Some(derive_seed(TUNING_SALT, k)), obs, mask);
            let mut history = History::default();
            total += play_to_episode_end(env, obs, mask, |env| {
                let (x, age) = history.key_then_record(late, env.oracle_conditions());
                table[keying.key(&x, age)]
            });
            if total == f64::NEG_INFINITY {
                break;
            }
        }
        total
    }

    /// The best static plan, the same in every key, and its score.
    fn best_static(&mut self, keying: &Keying) -> (Vec<usize>, f64) {
        let n = keying.n_keys();
        let (mut choice, mut best) = (vec![0usize; n], f64::NEG_INFINITY);
        for c in 0..self.candidates.len() {
            let s = self.score(keying, &vec![c; n]);
            if s > best {
                best = s;
                choice = vec![c; n];
            }
        }
        (choice, best)
    }

    /// `choice` (scoring `best`) improved one key at a time, in sweeps over every key and
    /// candidate, until a sweep changes nothing (at most [`SWEEPS`]).
    fn descend(&mut self, keying: &Keying, mut choice: Vec<usize>, mut best: f64) -> Vec<usize> {
        for _ in 0..SWEEPS {
            let mut improved = false;
            for key in 0..choice.len() {
                for c in 0..self.candidates.len() {
                    if c == choice[key] {
                        continue;
                    }
                    let mut trial = choice.clone();
                    trial[key] = c;
                    let s = self.score(keying, &trial);
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
        choice
    }
}

impl OracleRegime {
    /// The table of `reading`, tuned on `episodes` tuning episodes.
    pub fn new(scenario: &Arc<Scenario>, episodes: u32, reading: Reading) -> Self {
        let sc = &**scenario;
        let late = reading.late();
        let candidates = static_candidates(sc);
        let env = PartitionEnv::new(scenario.clone());
        let (obs, mask) = env.buffers();
        let mut tuner = Tuner { candidates: &candidates, env, obs, mask, late, episodes };
        let unaged = Keying::new(sc, false);
        let (start, best) = tuner.best_static(&unaged);
        let mut choice = tuner.descend(&unaged, start, best);
        let keying = if reading == Reading::Aged {
            // The aged table refines the late one: it starts from the late table's plan in every
            // age bucket of its regime, so on its tuning episodes it never scores below it. It
            // still overfits where the age tells nothing (the Jetson's 104 keys on 100 episodes:
            // 8.82 on 1,000 others where the late table scores 8.56; 8.91 when it started from
            // the best static plan: docs/agents.md).
            let keying = Keying::new(sc, true);
            let start: Vec<usize> = choice.iter().flat_map(|&c| std::iter::repeat_n(c, AGE_BUCKETS)).collect();
            let best = tuner.score(&keying, &start);
            choice = tuner.descend(&keying, start, best);
            keying
        } else {
            unaged
        };
        let table = choice.iter().map(|&c| candidates[c].clone()).collect();
        Self { keying, reading, history: History::default(), table, episodes, n_heads: sc.n_heads() }
    }

    /// The tuned plan per regime key (key = ((GE bad × cloud levels + cloud level) × rate
    /// regimes + rate regime) × age buckets + age bucket; one age bucket unless aged).
    pub fn table(&self) -> &[Plan] {
        &self.table
    }
}

impl Policy for OracleRegime {
    fn name(&self) -> String {
        let base = self.reading.name();
        if self.episodes == DEFAULT_EPISODES { base.into() } else { format!("{base}:{}", self.episodes) }
    }

    fn reset(&mut self, _seed: u64) {
        self.history = History::default();
    }

    fn end_episode(&mut self) {
        self.history = History::default();
    }

    fn is_oracle(&self) -> bool {
        true
    }

    fn decide(&mut self, ctx: &DecisionContext<'_>) -> Decision {
        let plan = match ctx.oracle {
            Some(now) => {
                let (x, age) = self.history.key_then_record(self.reading.late(), now);
                &self.table[self.keying.key(&x, age)]
            }
            // Without the true conditions (a caller that does not honour `is_oracle`): the
            // table's healthy entry.
            None => &self.table[0],
        };
        let split = plan.leading_edge_layers(self.n_heads);
        Decision::Plan(largest_feasible_split(ctx, split, plan.precision))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::baselines::test_support::jetson;

    #[test]
    fn ages_fall_in_five_second_buckets_up_to_sixty_seconds() {
        assert_eq!(age_bucket(0.0), 0);
        assert_eq!(age_bucket(4.999), 0);
        assert_eq!(age_bucket(5.0), 1);
        assert_eq!(age_bucket(59.9), 11);
        assert_eq!(age_bucket(60.0), 12);
        assert_eq!(age_bucket(1e9), AGE_BUCKETS - 1);
    }

    #[test]
    fn the_history_keys_on_the_previous_slot_and_how_long_its_link_state_had_lasted() {
        let (sc, mut env) = jetson();
        let (mut obs, mut mask) = env.buffers();
        env.reset_into(Some(1), &mut obs, &mut mask);
        let base = ExoSlot { cloud_level: 0, rate_regime: 0, ..env.oracle_conditions() };
        let with = |ge| ExoSlot { ge, ..base };
        let (g, b) = (GeState::Good, GeState::Bad);
        // Link states of six slots: good, good, good, bad, bad, good.
        let states = [g, g, g, b, b, g];
        // Late: the first slot keys on itself with age 0; then on the previous slot's state and
        // the slots that state had lasted up to it (1, 2, 3 good; 1 bad; 2 bad).
        let mut h = History::default();
        let late: Vec<(GeState, u32)> =
            states.iter().map(|&s| h.key_then_record(true, with(s))).map(|(x, age)| (x.ge, age)).collect();
        assert_eq!(late, [(g, 0), (g, 1), (g, 2), (g, 3), (b, 1), (b, 2)]);
        // Now: the slot's own state and its age counting it.
        let mut h = History::default();
        let now: Vec<(GeState, u32)> =
            states.iter().map(|&s| h.key_then_record(false, with(s))).map(|(x, age)| (x.ge, age)).collect();
        assert_eq!(now, [(g, 1), (g, 2), (g, 3), (b, 1), (b, 2), (g, 1)]);
        // Keys: one bucket per 5 s of age, after the regime's own index.
        let aged = Keying::new(&sc, true);
        let per_second = (1.0 / sc.config.serving.slot_s).round() as u32;
        assert_eq!(aged.key(&with(g), 0), 0);
        assert_eq!(aged.key(&with(g), 5 * per_second), 1);
        assert_eq!(aged.key(&with(g), 1000 * per_second), AGE_BUCKETS - 1);
        let bad_healthy_cloud = aged.cloud_levels * aged.rate_regimes * AGE_BUCKETS;
        assert_eq!(aged.key(&with(b), 0), bad_healthy_cloud);
        assert_eq!(Keying::new(&sc, false).key(&with(g), 1000), 0, "unaged: the age is not read");
    }
}
