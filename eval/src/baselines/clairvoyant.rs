//! The clairvoyant bound `clairvoyant[:H]`: how well a policy that sees the future conditions
//! could do, so that every evaluation can state its headroom over the best static plan.
//!
//! The exogenous streams (link, cloud load, arrivals, edge load, request lengths) do not depend
//! on actions, so a copy of the environment restored from the current state *is* the future.
//! At the first slot of an episode the bound plans the whole episode on such copies:
//!
//! 1. **Every static candidate** (each layer split × allowed precision) runs the whole episode;
//!    the best by total reward is the episode's best static plan (ex post, on the same future).
//! 2. **Look-ahead**: slot by slot, every candidate is tried on a restored copy: the candidate held
//!    for the first 1, 2, 4, … or H slots of the window t … t + H − 1 ([`hold_lengths`]; a plan
//!    whose weights take longer than a slot to load pays off only if it is kept), then the best
//!    static plan until every request that arrived before t + H has started. A candidate is scored by that *fixed set of requests*
//!    (their full latency, energy, accuracy, cloud cost and failure, weighted as the scenario's
//!    reward weights them, times V(Q)), plus the drops and plan switches in the window and the
//!    energy and accuracy virtual queues' drift-plus-penalty terms Z·(spent − budget)/scale²;
//!    not by summed per-slot rewards over a truncated window (requests are charged when they
//!    start, so a truncated sum rewards deferral and is not monotone in H). The best candidate is
//!    executed and the look-ahead moves on. In the hierarchical action space each slot also
//!    screens fine-grained variants (the first cloud layer of a split with half its heads on the
//!    edge, with a split FFN, or both; every precision) at splits within
//!    [`FINE_SPLIT_RADIUS`] of the slot's best whole-layer split, with H = 1, and rolls out the
//!    best [`FINE_TOP_K`] like the others.
//! 3. The episode's schedule is the look-ahead's plans if their total reward beats the best
//!    static plan's, else the best static plan: the bound is never below the best static plan
//!    on its own planning run.
//!
//! The look-ahead re-seeds every request's failure and rejection draws
//! (`PartitionEnv::set_request_salt`): it knows the future conditions (bad link periods, busy
//! cloud) but not each request's coin flips. The evaluated run then executes the schedule
//! open-loop with the real coin flips, so on scenarios with per-request randomness the bound is
//! below the best static plan only by that noise.
//!
//! Cost: (candidates × episode) steps for the statics plus, per slot, candidates × (H + the tail
//! until the window's requests start) steps: about 100 candidates × ~20 steps per slot for the
//! 33-split LLaMA-7B space at H = 10, i.e. a few seconds per 1,000-slot episode in release.

use splitwise_env::api::Env;
use splitwise_env::partition::{PartitionEnv, PartitionState, RequestRecord, StepInfo};
use splitwise_env::plan::{FfnMode, LayerPlacement, Plan, Precision};
use splitwise_env::policy::{Decision, DecisionContext, Policy};
use splitwise_env::scenario::{ActionMode, Scenario};
use std::sync::Arc;

/// Default look-ahead horizon (slots).
pub const DEFAULT_HORIZON: u32 = 4;
/// Fine-grained variants rolled out per slot after the H = 1 screen.
pub const FINE_TOP_K: usize = 4;
/// Fine-grained variants are screened at splits within this many layers of the slot's best
/// whole-layer split.
pub const FINE_SPLIT_RADIUS: u32 = 2;
/// Salt of the look-ahead's request streams (any non-zero constant).
const LOOKAHEAD_SALT: u64 = 0x5EED_C1A1_2B07_0001;

/// The bound's per-episode plan.
pub struct Clairvoyant {
    scenario: Arc<Scenario>,
    horizon: u32,
    /// Whole-layer candidates (every split × allowed precision).
    static_candidates: Vec<Plan>,
    /// Fine-grained variants (hierarchical space only).
    fine_candidates: Vec<Plan>,
    look: PartitionEnv,
    probe: PartitionEnv,
    schedule: Vec<Plan>,
    /// Whether this episode's schedule is the look-ahead's (else the best static plan).
    adaptive: bool,
    layers_only: bool,
    buf_obs: Vec<f32>,
    buf_mask: Vec<bool>,
}

/// The precisions a scenario's plans may use (the layer-split mode's one, or every allowed one).
pub fn precisions(sc: &Scenario) -> Vec<Precision> {
    match sc.config.actions.mode {
        ActionMode::LayerSplit => vec![sc.layer_split_precision],
        ActionMode::Hierarchical => {
            Precision::ALL.iter().zip(sc.allowed_precisions).filter(|(_, a)| *a).map(|(p, _)| *p).collect()
        }
    }
}

/// Every whole-layer plan: each split from the privacy floor to edge-only × each precision.
pub fn static_candidates(sc: &Scenario) -> Vec<Plan> {
    let (l, h) = (sc.n_layers(), sc.n_heads());
    let floor = sc.config.serving.privacy_floor_layers.min(l);
    precisions(sc).into_iter().flat_map(|p| (floor..=l).map(move |s| Plan::layer_split(l, h, s, p))).collect()
}

impl Clairvoyant {
    /// The bound over whole-layer plans only (no head/FFN variants), to measure what fine
    /// granularity adds.
    pub fn layers_only(scenario: Arc<Scenario>, horizon: u32) -> Self {
        let mut c = Self::new(scenario, horizon);
        c.fine_candidates.clear();
        c.layers_only = true;
        c
    }

    pub fn new(scenario: Arc<Scenario>, horizon: u32) -> Self {
        let sc = &*scenario;
        let (l, h) = (sc.n_layers(), sc.n_heads());
        let floor = sc.config.serving.privacy_floor_layers.min(l);
        let static_candidates = static_candidates(sc);
        let mut fine_candidates = Vec::new();
        let step = sc.config.actions.head_step.max(1);
        for p in precisions(sc) {
            for s in floor..=l {
                if sc.config.actions.mode == ActionMode::Hierarchical && s < l {
                    let half = ((h / 2) / step * step) as u16;
                    for (heads, ffn) in [(half, FfnMode::Cloud), (h as u16, FfnMode::Split), (half, FfnMode::Split)] {
                        let mut plan = Plan::layer_split(l, h, s, p);
                        plan.layers[s as usize] = LayerPlacement { edge_heads: heads, ffn };
                        if heads > 0 || ffn != FfnMode::Cloud {
                            fine_candidates.push(plan);
                        }
                    }
                }
            }
        }
        let look = PartitionEnv::new(scenario.clone());
        let probe = PartitionEnv::new(scenario.clone());
        let (buf_obs, buf_mask) = look.buffers();
        Self {
            scenario,
            horizon: horizon.max(1),
            static_candidates,
            fine_candidates,
            look,
            probe,
            schedule: Vec::new(),
            adaptive: false,
            layers_only: false,
            buf_obs,
            buf_mask,
        }
    }

    /// Whether the last planned episode followed the look-ahead (else its best static plan).
    pub fn adaptive(&self) -> bool {
        self.adaptive
    }

    /// Steps `env` with `plan`, or, when it does not fit the slot, the deepest layer split
    /// below it at its precision that does (memory varies by slot).
    pub fn step_feasible(env: &mut PartitionEnv, plan: &Plan, obs: &mut [f32], mask: &mut [bool]) -> Option<StepInfo> {
        if env.check_plan(plan).is_ok() {
            return env.step_plan_into(plan, obs, mask).ok().map(|t| t.info);
        }
        let sc = env.scenario().clone();
        let (l, h) = (sc.n_layers(), sc.n_heads());
        let floor = sc.config.serving.privacy_floor_layers.min(l);
        let mut s = plan.leading_edge_layers(h).min(l);
        loop {
            let p = Plan::layer_split(l, h, s, plan.precision);
            if env.check_plan(&p).is_ok() {
                return env.step_plan_into(&p, obs, mask).ok().map(|t| t.info);
            }
            if s <= floor {
                return None;
            }
            s -= 1;
        }
    }

    /// Total reward of `plan` held from `state` to the episode's end.
    fn static_total(&mut self, state: &PartitionState, plan: &Plan) -> f64 {
        let env = &mut self.probe;
        if env.restore_state(state).is_err() {
            return f64::NEG_INFINITY;
        }
        env.set_request_salt(LOOKAHEAD_SALT);
        hold_to_episode_end(env, plan, &mut self.buf_obs, &mut self.buf_mask)
    }

    /// The window score of `candidate` from `state` (lower is better; module doc).
    fn window_score(&mut self, state: &PartitionState, candidate: &Plan, base: &Plan, horizon: u32, hold: u32) -> f64 {
        let w = Window { candidate, base, horizon, hold };
        window_score(&mut self.probe, state, LOOKAHEAD_SALT, &w, &mut self.buf_obs, &mut self.buf_mask)
    }

    /// Plans the episode that `state` starts (module doc).
    fn plan_episode(&mut self, state: &PartitionState) {
        let sc = self.scenario.clone();
        let end = sc.config.serving.episode_slots;
        // 1. The best static plan on this future.
        let statics = self.static_candidates.clone();
        let (mut best_static, mut best_total) = (statics[0].clone(), f64::NEG_INFINITY);
        for plan in &statics {
            let total = self.static_total(state, plan);
            if total > best_total {
                (best_static, best_total) = (plan.clone(), total);
            }
        }
        // 2. The look-ahead.
        let mut schedule = Vec::with_capacity(end as usize);
        let mut total = 0.0;
        let ok = self.look.restore_state(state).is_ok();
        self.look.set_request_salt(LOOKAHEAD_SALT);
        let fine = self.fine_candidates.clone();
        let holds = hold_lengths(self.horizon);
        let mut screened: Vec<(f64, usize)> = Vec::with_capacity(fine.len());
        while ok && self.look.slot() < end {
            let now = self.look.save_state();
            let mut best = (f64::INFINITY, best_static.clone());
            for plan in &statics {
                for &hold in &holds {
                    let score = self.window_score(&now, plan, &best_static, self.horizon, hold);
                    if score < best.0 {
                        best = (score, plan.clone());
                    }
                }
            }
            if !fine.is_empty() {
                // Screen the variants around the best whole-layer split of this slot.
                let h = sc.n_heads();
                let around = best.1.leading_edge_layers(h);
                screened.clear();
                for (i, plan) in fine.iter().enumerate() {
                    if plan.leading_edge_layers(h).abs_diff(around) > FINE_SPLIT_RADIUS {
                        continue;
                    }
                    screened.push((self.window_score(&now, plan, &best_static, 1, 1), i));
                }
                screened.sort_by(|a, b| a.0.total_cmp(&b.0));
                for &(_, i) in screened.iter().take(FINE_TOP_K) {
                    for &hold in &holds {
                        let score = self.window_score(&now, &fine[i], &best_static, self.horizon, hold);
                        if score < best.0 {
                            best = (score, fine[i].clone());
                        }
                    }
                }
            }
            let Some(info) = Self::step_feasible(&mut self.look, &best.1, &mut self.buf_obs, &mut self.buf_mask) else {
                break;
            };
            total += info.reward.reward;
            schedule.push(self.look.current_plan().clone());
        }
        self.adaptive = ok && schedule.len() as u64 == end && total > best_total;
        self.schedule = if self.adaptive { schedule } else { vec![best_static; end as usize] };
    }
}

/// One look-ahead window: `candidate` for the first `hold` of `horizon` slots, then `base`.
pub struct Window<'a> {
    pub candidate: &'a Plan,
    pub base: &'a Plan,
    pub horizon: u32,
    pub hold: u32,
}

/// The window score of `win.candidate` from `state` with the requests' draws of `salt` (lower is
/// better; module doc): the requests that arrive in the window's `win.horizon` slots, served by the
/// candidate for its first `win.hold` slots and by `win.base` after, plus the window's drops, switch
/// energy and virtual-queue terms. `env` is a scratch copy; ∞ when no plan fits.
pub fn window_score(
    env: &mut PartitionEnv,
    state: &PartitionState,
    salt: u64,
    win: &Window<'_>,
    obs: &mut [f32],
    mask: &mut [bool],
) -> f64 {
    let (candidate, base, horizon, hold) = (win.candidate, win.base, win.horizon, win.hold);
    let sc = env.scenario().clone();
    let cfg = &sc.config.reward;
    let (w, s) = (&cfg.weights, &cfg.scales);
    let slot_s = sc.config.serving.slot_s;
    if env.restore_state(state).is_err() {
        return f64::INFINITY;
    }
    env.set_request_salt(salt);
    env.set_recording(true);
    let _ = env.take_records();
    let t0 = env.slot();
    let end_slot = sc.config.serving.episode_slots;
    let window_end_s = (t0 + u64::from(horizon)) as f64 * slot_s;
    let backlog = env.queued() as f64;
    let queues = env.virtual_queues();
    let v = cfg.v.v(backlog);
    let mut slot_terms = 0.0;
    let mut energy = 0.0;
    let mut accuracy = 0.0;
    let mut started = 0.0;
    let mut k = 0u32;
    loop {
        let slot = env.slot();
        if slot >= end_slot {
            break;
        }
        let in_window = k < horizon;
        if !in_window && env.oldest_queued_arrival_s().is_none_or(|a| a >= window_end_s) {
            break;
        }
        // The candidate holds through the window (a plan whose weights take longer than a
        // slot to load pays off only if it is kept), then the best static plan serves the
        // window's remaining requests.
        let plan = if k < hold { candidate } else { base };
        let Some(info) = Clairvoyant::step_feasible(env, plan, obs, mask) else {
            return f64::INFINITY;
        };
        if in_window {
            slot_terms += w.energy * info.switch_energy_j / s.energy_j + w.drop * f64::from(info.dropped);
            energy += info.switch_energy_j;
        }
        k += 1;
    }
    let mut requests = 0.0;
    for r in env.take_records() {
        if r.arrival_s >= window_end_s {
            continue;
        }
        requests += request_penalty(&sc, &r);
        energy += r.energy_j;
        accuracy += r.accuracy_loss;
        started += 1.0;
    }
    env.set_recording(false);
    let energy_budget = cfg.energy_budget_w.map_or(0.0, |b| b * slot_s * f64::from(horizon));
    let accuracy_budget = cfg.accuracy_budget.map_or(0.0, |a| a * started);
    let z_e = if cfg.energy_budget_w.is_some() { queues.energy_j / (s.energy_j * s.energy_j) } else { 0.0 };
    let z_a = if cfg.accuracy_budget.is_some() { queues.accuracy / (s.accuracy * s.accuracy) } else { 0.0 };
    v * (requests + slot_terms) + z_e * (energy - energy_budget) + z_a * (accuracy - accuracy_budget)
}

/// Total reward of holding `plan` (lowered when memory is short) from `env`'s current slot to
/// the episode's end; −∞ when no split at its precision fits some slot.
pub fn hold_to_episode_end(env: &mut PartitionEnv, plan: &Plan, obs: &mut [f32], mask: &mut [bool]) -> f64 {
    play_to_episode_end(env, obs, mask, |_| plan)
}

/// Total reward of playing `plan_for(env)` in every slot (lowered when memory is short) from
/// `env`'s current slot to the episode's end; −∞ when no split at a plan's precision fits.
pub fn play_to_episode_end<'p>(
    env: &mut PartitionEnv,
    obs: &mut [f32],
    mask: &mut [bool],
    mut plan_for: impl FnMut(&mut PartitionEnv) -> &'p Plan,
) -> f64 {
    let end = env.scenario().config.serving.episode_slots;
    let mut total = 0.0;
    while env.slot() < end {
        let plan = plan_for(env);
        match Clairvoyant::step_feasible(env, plan, obs, mask) {
            Some(info) => total += info.reward.reward,
            None => return f64::NEG_INFINITY,
        }
    }
    total
}

/// How long a candidate holds within the window: 1, 2, 4, … slots and the whole window (so a
/// longer window only adds options).
pub fn hold_lengths(horizon: u32) -> Vec<u32> {
    let mut h: Vec<u32> =
        std::iter::successors(Some(1u32), |&x| x.checked_mul(2)).take_while(|&x| x < horizon).collect();
    h.push(horizon.max(1));
    h
}

/// A served request's penalty, weighted and normalised as the scenario's reward does (a request
/// that failed for good is charged like a drop).
pub fn request_penalty(sc: &Scenario, r: &RequestRecord) -> f64 {
    let cfg = &sc.config.reward;
    let (w, s) = (&cfg.weights, &cfg.scales);
    let cost = r.cloud_gpu_s * sc.config.cloud_load.cost_per_gpu_s_usd();
    w.latency * r.latency_s / s.latency_s
        + w.energy * r.energy_j / s.energy_j
        + w.accuracy * r.accuracy_loss / s.accuracy
        + w.cloud_cost * cost / s.cloud_cost
        + w.drop * f64::from(u8::from(r.failed))
}

impl Policy for Clairvoyant {
    fn name(&self) -> String {
        let base = if self.layers_only { "clairvoyant-layers" } else { "clairvoyant" };
        if self.horizon == DEFAULT_HORIZON { base.into() } else { format!("{base}:{}", self.horizon) }
    }

    /// It reads the future: reports mark it like the oracles.
    fn is_oracle(&self) -> bool {
        true
    }

    fn reset(&mut self, _seed: u64) {
        self.schedule.clear();
    }

    fn decide(&mut self, ctx: &DecisionContext<'_>) -> Decision {
        let slot = ctx.env.slot();
        if slot == 0 || self.schedule.is_empty() {
            let state = ctx.env.save_state();
            self.plan_episode(&state);
        }
        let plan = self.schedule.get(slot as usize).or(self.schedule.last()).cloned();
        let plan = plan.unwrap_or_else(|| Plan::cloud_only(self.scenario.n_layers(), Precision::Bits16));
        // The memory of the slot is exogenous, so the schedule fits; check anyway.
        if plan_fits(ctx, &plan) {
            Decision::Plan(plan)
        } else {
            Decision::Plan(splitwise_env::policy::largest_feasible_split(
                ctx,
                plan.leading_edge_layers(self.scenario.n_heads()),
                plan.precision,
            ))
        }
    }
}

fn plan_fits(ctx: &DecisionContext<'_>, plan: &Plan) -> bool {
    ctx.env.scenario().memory.plan_bytes(plan) <= ctx.edge_memory_bytes
}
