//! `oracle-mpc[:N]`: model-predictive control with the simulator as its model: the clairvoyant
//! bound's look-ahead ([`super::clairvoyant`]) scored on *sampled* futures instead of the true
//! one. It answers a question the bound cannot: how much of a scenario's headroom a policy could
//! capture without foresight. The gap between it and the bound is what knowing the future is
//! worth; the gap between it and a causal policy is what that policy leaves on the table.
//!
//! Every slot, from the true current state (`PartitionEnv::save_state`), it draws futures with
//! `PartitionEnv::resample_future`: everything up to the end of the previous slot is kept (the
//! queue, the requests in flight, every process's state), everything from the decided slot on
//! is drawn afresh (exogenous conditions from new streams with every regime's residual dwell
//! redrawn, exact for the simulator's exponential dwells; arrivals, lengths, coin flips). Each
//! whole-layer candidate (every split × allowed precision) is held for 1, 2, 4 … H = 4 slots and
//! then replaced by the base plan, and scored as the bound's window score does, by its expected
//! score over the futures. The best candidate is executed for this slot only; the next slot plans
//! again (closed loop). The base plan is chosen at the episode's first decision: the whole-layer
//! plan with the best mean return over the futures sampled there.
//!
//! **Stratified futures.** Only the requests of the window differ between candidates, and when
//! requests are rare most futures have none (0.02 req/s: 1 window in 13 of 4 one-second slots
//! has one). So the futures are drawn in strata by when the first request to serve arrives: N
//! futures with one in the decided slot or already queued (the requests this decision serves
//! for sure), ⌈N/2⌉ with the first later in the window (they matter to candidates held longer),
//! and one with none (every such future scores the same up to the switch and virtual-queue
//! terms). A candidate's expected score is Σ over strata of the stratum's share of the draws
//! times its mean score; at most 32 N draws per slot. The futures are the same for every
//! candidate (common random numbers), and their conditions are drawn once
//! (`PartitionEnv::prepare_conditions`).
//!
//! It is an oracle, labelled like the others, and more than a device could run: it knows the
//! simulator's model exactly and the hidden state of every process at the end of the previous
//! slot (the link's regime and log-deviation, the Gilbert–Elliott state, the cloud's load
//! regime); a request in flight keeps the completion time it was given on the true future (a
//! stalled transfer tells it when the stall ends: a small leak); trace-driven rates (link and
//! arrival-rate traces) are replayed, not sampled. Unlike the other oracles it does not know the
//! decided slot's conditions: those are the state at the slot's *end*, a one-slot look into the
//! future that is worth much where conditions switch abruptly (a tunnel starts, the cloud turns
//! busy).
//!
//! What it lacks against the optimal causal policy: it plans over H slots with a fixed base plan
//! after them, over whole-layer plans only, and from a finite sample. So it is neither a bound
//! nor the optimum, but a clearly defined reference.
//!
//! Cost: per slot, up to 32 N draws (a state copy and up to H steps each) and
//! candidates × holds × (1.5 N + 1) windows; about 15 s per 500-slot episode of the phone
//! scenarios in the layer-split space on one core.

use super::clairvoyant::{self, Clairvoyant, Window, hold_lengths, hold_to_episode_end, window_score};
use splitwise_env::api::Env;
use splitwise_env::partition::{PartitionEnv, PartitionState};
use splitwise_env::plan::Plan;
use splitwise_env::policy::{Decision, DecisionContext, Policy, largest_feasible_split};
use splitwise_env::rng::derive_seed;
use splitwise_env::scenario::Scenario;
use std::num::NonZeroU64;
use std::sync::Arc;

/// Futures sampled per decision when the spec gives none.
pub const DEFAULT_SAMPLES: u32 = 8;
/// The largest sample count a spec may ask for.
pub const MAX_SAMPLES: u32 = 256;
/// Draws per wanted future with a request before the sampler gives up (a window with a request
/// is rare when requests are: 0.02 req/s over 4 one-second slots is 1 in 13).
const DRAWS_PER_SAMPLE: u32 = 32;
/// Slots of conditions drawn ahead in each future, in windows of H (the window plus the slots
/// its requests may wait to start).
const PREPARED_WINDOWS: u64 = 4;
/// Salt family of the sampled futures (any constant; see [`future_salt`]).
const MPC_SALT: u64 = 0x3C7A_9D11_0B5E_0002;

/// The salt of sampled future `i` at slot `slot`: fresh futures at every slot, the same for
/// every candidate of that slot.
pub fn future_salt(slot: u64, i: u32) -> NonZeroU64 {
    NonZeroU64::new(derive_seed(MPC_SALT ^ u64::from(i), slot) | 1).unwrap_or(NonZeroU64::MIN)
}

/// Strata of the sampled futures: the first request to serve is in the decided slot (or already
/// queued), in a later slot of the window, or there is none in the window.
const NOW: usize = 0;
const LATER: usize = 1;
const IDLE: usize = 2;

/// The futures kept of one stratum, with their salts, and how many draws fell in it.
#[derive(Default)]
struct Stratum {
    futures: Vec<(PartitionState, u64)>,
    draws: u32,
}

/// Futures wanted of stratum `k` when `n` are sampled: `n` with a request in the decided slot
/// (the one this decision serves for sure), half as many with the first request later in the
/// window (they matter only to candidates held longer), and one idle future for all of them
/// (without a request in the window every future scores the same up to the switch and queue
/// terms, which do not depend on the draw).
fn wanted(k: usize, n: usize) -> usize {
    match k {
        NOW => n,
        LATER => n.div_ceil(2),
        _ => 1,
    }
}

pub struct OracleMpc {
    scenario: Arc<Scenario>,
    samples: u32,
    horizon: u32,
    candidates: Vec<Plan>,
    holds: Vec<u32>,
    probe: PartitionEnv,
    /// The episode's base plan (chosen at its first decision).
    base: Option<Plan>,
    /// This slot's sampled futures by stratum ([`NOW`], [`LATER`], [`IDLE`]).
    strata: [Stratum; 3],
    buf_obs: Vec<f32>,
    buf_mask: Vec<bool>,
}

impl OracleMpc {
    /// `samples` ≥ 1 futures per decision, look-ahead of `horizon` ≥ 1 slots.
    pub fn new(scenario: Arc<Scenario>, samples: u32, horizon: u32) -> Self {
        let probe = PartitionEnv::new(scenario.clone());
        let (buf_obs, buf_mask) = probe.buffers();
        let horizon = horizon.max(1);
        Self {
            candidates: clairvoyant::static_candidates(&scenario),
            holds: hold_lengths(horizon),
            scenario,
            samples: samples.max(1),
            horizon,
            probe,
            base: None,
            strata: Default::default(),
            buf_obs,
            buf_mask,
        }
    }

    /// Draws the futures of slot `slot` from `state`, stratified by when the first request is
    /// there to serve (module doc): up to `samples` futures with one in the decided slot (or
    /// queued), up to `samples` with the first in a later slot of the window, one with none in
    /// the window, and the share of draws in each stratum.
    fn sample_futures(&mut self, state: &PartitionState, slot: u64, current: &Plan) {
        for s in &mut self.strata {
            s.futures.clear();
            s.draws = 0;
        }
        let n = self.samples as usize;
        let max_draws = self.samples.saturating_mul(DRAWS_PER_SAMPLE);
        let mut draws = 0u32;
        while draws < max_draws && self.strata.iter().enumerate().any(|(k, s)| s.futures.len() < wanted(k, n)) {
            if self.probe.restore_state(state).is_err() {
                break;
            }
            let salt = future_salt(slot, draws);
            draws += 1;
            self.probe.resample_future(salt);
            let future = self.probe.save_state();
            let k = if self.probe.queued() > 0 { NOW } else { self.first_arrival(current) };
            self.strata[k].draws += 1;
            if self.strata[k].futures.len() < wanted(k, n) {
                // Every candidate steps this future's window: draw its conditions once.
                if self.probe.restore_state(&future).is_err() {
                    break;
                }
                self.probe.prepare_conditions(u64::from(self.horizon) * PREPARED_WINDOWS);
                self.strata[k].futures.push((self.probe.save_state(), salt.get()));
            }
        }
    }

    /// The stratum of the future `probe` holds: a request arrives in its first slot, in a later
    /// slot of the window, or in none (arrivals do not depend on the plan; `plan` only steps it).
    fn first_arrival(&mut self, plan: &Plan) -> usize {
        let end = self.scenario.config.serving.episode_slots;
        for k in 0..self.horizon {
            if self.probe.slot() >= end {
                break;
            }
            match Clairvoyant::step_feasible(&mut self.probe, plan, &mut self.buf_obs, &mut self.buf_mask) {
                Some(info) if info.arrivals == 0 => {}
                _ => return if k == 0 { NOW } else { LATER },
            }
        }
        IDLE
    }

    /// The whole-layer plan with the best mean return from now to the episode's end over the
    /// sampled futures.
    fn choose_base(&mut self) -> Plan {
        let mut best = (f64::NEG_INFINITY, self.candidates[0].clone());
        for plan in &self.candidates {
            let mut total = 0.0;
            for (future, salt) in self.strata.iter().flat_map(|s| &s.futures) {
                if self.probe.restore_state(future).is_err() {
                    total = f64::NEG_INFINITY;
                    break;
                }
                self.probe.set_request_salt(*salt);
                total += hold_to_episode_end(&mut self.probe, plan, &mut self.buf_obs, &mut self.buf_mask);
            }
            if total > best.0 {
                best = (total, plan.clone());
            }
        }
        best.1
    }

    /// Expected window score of `candidate` (lower is better): Σ over strata of the share of
    /// draws in the stratum times the mean score of its futures.
    fn mean_score(&mut self, candidate: &Plan, base: &Plan, hold: u32) -> f64 {
        let win = Window { candidate, base, horizon: self.horizon, hold };
        let total: u32 = self.strata.iter().map(|s| s.draws).sum();
        let mut score = 0.0;
        for s in &self.strata {
            if s.futures.is_empty() {
                continue;
            }
            let mut sum = 0.0;
            for (future, salt) in &s.futures {
                sum += window_score(&mut self.probe, future, *salt, &win, &mut self.buf_obs, &mut self.buf_mask);
            }
            score += f64::from(s.draws) / f64::from(total.max(1)) * sum / s.futures.len() as f64;
        }
        score
    }

    /// The plan to execute from `state` (the current plan wins ties, so an idle look-ahead does
    /// not switch for nothing).
    fn plan_slot(&mut self, state: &PartitionState, slot: u64, current: &Plan) -> Plan {
        self.sample_futures(state, slot, current);
        if self.strata.iter().all(|s| s.futures.is_empty()) {
            return current.clone();
        }
        let base = match &self.base {
            Some(b) => b.clone(),
            None => {
                let b = self.choose_base();
                self.base = Some(b.clone());
                b
            }
        };
        let mut order: Vec<Plan> = Vec::with_capacity(self.candidates.len() + 1);
        if self.candidates.contains(current) {
            order.push(current.clone());
        }
        order.extend(self.candidates.iter().filter(|p| *p != current).cloned());
        let holds = self.holds.clone();
        let mut best = (f64::INFINITY, base.clone());
        for plan in &order {
            for &hold in &holds {
                let score = self.mean_score(plan, &base, hold);
                if score < best.0 {
                    best = (score, plan.clone());
                }
            }
        }
        best.1
    }
}

impl Policy for OracleMpc {
    fn name(&self) -> String {
        if self.samples == DEFAULT_SAMPLES { "oracle-mpc".into() } else { format!("oracle-mpc:{}", self.samples) }
    }

    /// It knows the model and the hidden state: reports mark it like the oracles.
    fn is_oracle(&self) -> bool {
        true
    }

    fn reset(&mut self, _seed: u64) {
        self.base = None;
    }

    fn decide(&mut self, ctx: &DecisionContext<'_>) -> Decision {
        let slot = ctx.env.slot();
        if slot == 0 {
            self.base = None;
        }
        let state = ctx.env.save_state();
        let plan = self.plan_slot(&state, slot, ctx.env.current_plan());
        // The candidates were stepped on this slot's memory, so the plan fits; check anyway.
        if ctx.env.scenario().memory.plan_bytes(&plan) <= ctx.edge_memory_bytes {
            Decision::Plan(plan)
        } else {
            Decision::Plan(largest_feasible_split(
                ctx,
                plan.leading_edge_layers(self.scenario.n_heads()),
                plan.precision,
            ))
        }
    }
}
