//! The one-slot Lyapunov drift-plus-penalty minimiser (Neely 2010, ch. 4; system-model §7 and
//! §10): every slot, among the feasible plans of its candidate set, the one minimising the
//! predicted one-slot bound Δ̂ + V·p̂, computed with the scenario's own reward configuration
//! through [`reward_terms`] (its `drift_plus_penalty` term, whatever the reward kind, as the env's
//! reward module specifies) on a predicted [`SlotOutcome`].
//!
//! **Prediction** (what the minimiser knows at decision time):
//! - backlog Q and virtual queues Z_E, Z_A from the observation (the queue features are capped at
//!   [`OBS_QUEUE_FEATURE_CAP`] scale units; at the cap the minimiser uses the larger of the cap
//!   and its own prediction of the queue from the previous slot);
//! - expected arrivals â = λ̂·slot_s, λ̂ from the arrival-rate feature (its moving average; the
//!   process's long-run mean before the first slot is measured); the oracle variant uses the
//!   true rate of the slot and its true conditions;
//! - per request of the typical shape ([`typical_request`]): latency ℓ, edge energy e, accuracy
//!   loss a and cloud GPU time from the env's request estimate under the slot's (estimated)
//!   conditions, without failures;
//! - switching: loading the edge weights the plan needs and that are not resident costs
//!   `load_s = bytes/storage bandwidth` at active edge power, and no request starts before the
//!   weights are loaded (as in the env). Residency is estimated as every plan executed since the
//!   episode began (the env keeps weights while they fit; its evictions under memory pressure
//!   and its fallback loads are not observable);
//! - starts: the slot's service capacity μ = slot_s/b with b = max(ℓ/concurrency, edge compute
//!   time, cloud busy time) per request (concurrent requests pipeline, each resource serves them
//!   in order), and n̄ = min(Q + â, μ); the backlog after is Q + â − n (within [0, queue
//!   capacity]). A load shorter than the slot does not change the count (the servers' starts
//!   that fall in `[0, load_s)` move to `load_s`), but those starts, a fraction load_s/slot_s,
//!   wait load_s/2 longer on average: each start is charged load_s²/(2·slot_s) more latency; a
//!   load of a slot or more starts nothing. Because a slot outcome counts whole requests, the
//!   bound is the expectation over n ∈ {⌊n̄⌋, ⌈n̄⌉} with mean n̄;
//! - the penalty ([`Charging`]): by default (`dpp-one-slot`, [`Charging::Starts`]) exactly the
//!   env's per-slot accounting: the n started requests (n·ℓ, n·e + switch energy, n·a,
//!   n·GPU time·price), so the minimiser is greedy in the env's own one-slot objective (what a
//!   learned agent with γ → 0 would converge to). That accounting makes deferral look free in one
//!   slot (a deferred request's latency is charged later, and the drift of a short queue is tiny
//!   next to V·p), so when ℓ exceeds the slot and requests queue it prefers plans that start
//!   fewer requests, e.g. ones whose weight loading fills the slot. `dpp-one-slot:queue`
//!   ([`Charging::Queue`]) instead charges every request present (Q + â) the plan's per-request
//!   cost, as if served under it, plus one slot of waiting (slot_s) for each one left queued: a
//!   cost-to-go proxy under which deferral costs what it costs later (Little's law: summed
//!   latency is the area under the number of requests in the system). Its edge energy for the
//!   energy queue and its starts for the accuracy budget stay those of the n started requests.
//!
//! **Enumeration** (the candidate set is fixed when the policy is built; each slot it keeps the
//! plans that fit the slot's edge memory):
//! - layer-split action space: every split `floor..=L` at the layer-split precision;
//! - hierarchical action space: window layers take values in the alphabet {cloud, full edge, FFN
//!   split (all heads on the edge), heads only (all heads on the edge, FFN in the cloud), half the
//!   heads (rounded down to `head_step`, FFN in the cloud)}, with every precision allowed.
//!   [`Enumeration::Exhaustive`]: every window position × alphabet^W × precision, deduplicated,
//!   when that is at most [`DPP_MAX_EXHAUSTIVE_PLANS`]; otherwise (every shipped scenario: e.g.
//!   29·5⁴·3 = 54 375 for LLaMA-7B) [`Enumeration::OneFineLayer`]: every layer split × precision,
//!   plus every split `s` with layer `s` replaced by each fine-grained member of the alphabet
//!   (3·(33 + 32·3) = 387 plans for LLaMA-7B), i.e. at most one fine-grained layer, placed at the
//!   boundary. Every candidate is expressible in the action space.

use super::common::{Candidate, ConditionSource, cost_key, layer_wise_precision};
use splitwise_env::lyapunov::{SlotOutcome, VirtualQueues, reward_terms};
use splitwise_env::partition::obs_index;
use splitwise_env::plan::{FfnMode, LayerPlacement, MemoryModel, Plan, Precision};
use splitwise_env::policy::{Decision, DecisionContext, Policy, largest_feasible_split};
use splitwise_env::public::{RequestEstimate, typical_request};
use splitwise_env::scenario::{ActionMode, Scenario};
use std::collections::HashSet;

/// Largest candidate set enumerated exhaustively in the hierarchical space (assumption: keeps a
/// decision near a millisecond; per candidate and slot one request estimate, ≈ 1 µs).
pub const DPP_MAX_EXHAUSTIVE_PLANS: usize = 4096;

/// The cap of the `energy_queue` and `accuracy_queue` observation features, in units of their
/// reward scales (`partition::observation_space`).
pub const OBS_QUEUE_FEATURE_CAP: f64 = 10.0;

/// How the candidate set was built (module doc).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Enumeration {
    LayerSplits,
    Exhaustive,
    OneFineLayer,
    /// A caller-given set ([`DppOneSlot::with_plans`]).
    Given,
}

/// Which edge weights are believed resident (the env's residency rule: what a plan loads stays
/// until memory runs short).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ResidencyEstimate {
    heads: Vec<u16>,
    ffn_first: Vec<bool>,
    ffn_down: Vec<bool>,
    embedding: bool,
    lm_head: bool,
}

impl ResidencyEstimate {
    pub fn clear(&mut self) {
        self.heads.fill(0);
        self.ffn_first.fill(false);
        self.ffn_down.fill(false);
        self.embedding = false;
        self.lm_head = false;
    }

    pub fn add(&mut self, plan: &Plan) {
        let l = plan.layers.len();
        self.heads.resize(l, 0);
        self.ffn_first.resize(l, false);
        self.ffn_down.resize(l, false);
        for (i, p) in plan.layers.iter().enumerate() {
            self.heads[i] = self.heads[i].max(p.edge_heads);
            self.ffn_first[i] |= p.ffn != FfnMode::Cloud;
            self.ffn_down[i] |= p.ffn == FfnMode::Edge;
        }
        self.embedding |= !plan.is_cloud_only();
        self.lm_head |= plan.layers.last().is_some_and(|p| p.ffn == FfnMode::Edge);
    }

    /// Weight bytes `plan` needs that are not resident.
    pub fn missing_weight_bytes(&self, m: &MemoryModel, plan: &Plan) -> f64 {
        let mut bytes = 0.0;
        for (i, p) in plan.layers.iter().enumerate() {
            let heads = self.heads.get(i).copied().unwrap_or(0);
            bytes += f64::from(p.edge_heads.saturating_sub(heads)) * m.head_weight_bytes;
            if p.ffn != FfnMode::Cloud && !self.ffn_first.get(i).copied().unwrap_or(false) {
                bytes += m.ffn_first_weight_bytes;
            }
            if p.ffn == FfnMode::Edge && !self.ffn_down.get(i).copied().unwrap_or(false) {
                bytes += m.ffn_down_weight_bytes;
            }
        }
        if !plan.is_cloud_only() && !self.embedding {
            bytes += m.embedding_weight_bytes;
        }
        if plan.layers.last().is_some_and(|p| p.ffn == FfnMode::Edge) && !self.lm_head {
            bytes += m.lm_head_extra_weight_bytes;
        }
        bytes
    }
}

/// What the minimiser knows of the system at decision time.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct SlotState {
    /// Q (requests).
    pub backlog: f64,
    pub queues: VirtualQueues,
    /// â (requests in the slot).
    pub expected_arrivals: f64,
}

impl SlotState {
    /// The state seen in `ctx` (module doc); `predicted` is the minimiser's own prediction of
    /// the virtual queues, used when their features are at the cap.
    pub fn observe(
        sc: &Scenario,
        ctx: &DecisionContext<'_>,
        source: ConditionSource,
        predicted: &VirtualQueues,
    ) -> Self {
        let f = |i: usize| f64::from(ctx.obs[i]);
        let scales = &sc.config.reward.scales;
        let at_cap = |feature: f64| feature >= OBS_QUEUE_FEATURE_CAP - 1e-4;
        let queue = |feature: f64, scale: f64, own: f64| {
            let z = feature * scale;
            if at_cap(feature) { z.max(own) } else { z }
        };
        let queues = VirtualQueues {
            energy_j: queue(f(obs_index::ENERGY_QUEUE), scales.energy_j, predicted.energy_j),
            accuracy: queue(f(obs_index::ACCURACY_QUEUE), scales.accuracy, predicted.accuracy),
        };
        let rate_per_s = match (source, ctx.oracle.as_ref()) {
            (ConditionSource::Oracle, Some(x)) => x.arrival_rate_per_s,
            _ if ctx.env.slot() == 0 => sc.arrivals.mean_rate_per_s(),
            // The feature is the moving average over the process's peak rate (observation table).
            _ => f(obs_index::ARRIVAL_RATE_EWMA) * sc.arrivals.max_rate_per_s().max(1e-9),
        };
        let capacity = sc.config.workload.queue_capacity as f64;
        Self {
            backlog: (f(obs_index::BACKLOG_FRACTION) * capacity).round(),
            queues,
            expected_arrivals: rate_per_s * sc.config.serving.slot_s,
        }
    }
}

/// The predicted bound of one plan and the virtual queues it predicts after the slot.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Bound {
    /// E[Δ + V·p] over the two-point distribution of starts.
    pub value: f64,
    /// n̄, the expected starts.
    pub expected_starts: f64,
    pub queues_after: VirtualQueues,
}

/// Which requests a slot's predicted penalty charges (module doc).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Charging {
    /// Only the requests started in the slot, as the env's per-slot accounting does.
    #[default]
    Starts,
    /// Every request present (queued or arriving) at the plan's per-request cost, and one slot
    /// of waiting for each one left in the queue.
    Queue,
}

impl Charging {
    pub const ARGS: &'static str = "starts|queue";

    pub fn parse(arg: Option<&str>) -> Option<Self> {
        match arg {
            None | Some("starts") => Some(Self::Starts),
            Some("queue") => Some(Self::Queue),
            Some(_) => None,
        }
    }
}

/// The predicted outcome of a slot in which `n` (whole) requests of estimate `est` start.
pub fn predicted_outcome(
    sc: &Scenario,
    state: &SlotState,
    est: &RequestEstimate,
    edge_share: f64,
    switch_load_s: f64,
    n: usize,
    charging: Charging,
) -> SlotOutcome {
    let nf = n as f64;
    let present = state.backlog + state.expected_arrivals;
    let capacity = sc.config.workload.queue_capacity as f64;
    let backlog_after = (present - nf).clamp(0.0, capacity);
    // What the finite queue cannot hold is dropped (and charged by the reward's drop term).
    let dropped = (present - nf - capacity).max(0.0);
    let (charged, waiting) = match charging {
        Charging::Queue => (present.max(nf), backlog_after),
        Charging::Starts => (nf, 0.0),
    };
    // 0 × ∞ would be NaN: an unusable plan charged for no request charges nothing.
    let times = |k: f64, x: f64| if k == 0.0 { 0.0 } else { k * x };
    let switch_energy_j = sc.edge.active_power_w * switch_load_s;
    let slot_s = sc.config.serving.slot_s;
    let load_delay_s = if switch_load_s < slot_s { switch_load_s * switch_load_s / (2.0 * slot_s) } else { 0.0 };
    SlotOutcome {
        slot_s,
        backlog_before: state.backlog,
        backlog_after,
        n_started: n,
        latency_s: times(charged, est.latency_s) + times(nf, load_delay_s) + waiting * slot_s,
        energy_j: times(charged, est.edge_energy_j) + switch_energy_j,
        edge_energy_spent_j: times(nf, est.edge_energy_j) + switch_energy_j,
        accuracy_loss: times(charged, est.accuracy_loss),
        cloud_cost: times(charged, est.cloud_gpu_s) * sc.config.cloud_load.cost_per_gpu_s_usd(),
        edge_load_fraction: times(charged, edge_share),
        dropped,
        // Requests expected to fail for good are charged like drops, as the env charges them.
        failed: times(charged, est.failure_probability),
    }
}

/// Expected starts n̄ = min(Q + â, μ) (module doc).
pub fn expected_starts(sc: &Scenario, state: &SlotState, est: &RequestEstimate, switch_load_s: f64) -> f64 {
    let s = &sc.config.serving;
    if switch_load_s >= s.slot_s {
        return 0.0;
    }
    // The edge serialises our requests' edge work; the batched cloud does not serialise them.
    let per_request_s = (est.latency_s / f64::from(s.concurrency)).max(est.edge_compute_s);
    let service = if per_request_s.is_nan() {
        0.0
    } else if per_request_s > 0.0 {
        s.slot_s / per_request_s
    } else {
        f64::INFINITY
    };
    (state.backlog + state.expected_arrivals).min(service).max(0.0)
}

/// The one-slot bound of a plan (module doc).
pub fn one_slot_bound(
    sc: &Scenario,
    state: &SlotState,
    est: &RequestEstimate,
    edge_share: f64,
    switch_load_s: f64,
    charging: Charging,
) -> Bound {
    let n_bar = expected_starts(sc, state, est, switch_load_s);
    let at = |n: usize| {
        let o = predicted_outcome(sc, state, est, edge_share, switch_load_s, n, charging);
        let (terms, after) = reward_terms(&sc.config.reward, &o, &state.queues);
        (terms.drift_plus_penalty, after)
    };
    let lo = n_bar.floor();
    let p_hi = n_bar - lo;
    let (v_lo, q_lo) = at(lo as usize);
    if p_hi == 0.0 {
        return Bound { value: v_lo, expected_starts: n_bar, queues_after: q_lo };
    }
    let (v_hi, q_hi) = at(lo as usize + 1);
    let mix = |a: f64, b: f64| (1.0 - p_hi) * a + p_hi * b;
    Bound {
        value: mix(v_lo, v_hi),
        expected_starts: n_bar,
        queues_after: VirtualQueues {
            energy_j: mix(q_lo.energy_j, q_hi.energy_j),
            accuracy: mix(q_lo.accuracy, q_hi.accuracy),
        },
    }
}

/// The candidate plans of a scenario's action space (module doc).
pub fn candidate_plans(sc: &Scenario) -> (Enumeration, Vec<Plan>) {
    let (l, h) = (sc.n_layers(), sc.n_heads());
    let floor = sc.config.serving.privacy_floor_layers.min(l);
    if sc.config.actions.mode == ActionMode::LayerSplit {
        let p = sc.layer_split_precision;
        return (Enumeration::LayerSplits, (floor..=l).map(|s| Plan::layer_split(l, h, s, p)).collect());
    }
    let a = &sc.config.actions;
    let w = a.window_layers.clamp(1, l);
    let half = h / 2 / a.head_step * a.head_step;
    let mut alphabet = vec![
        LayerPlacement::CLOUD,
        LayerPlacement::edge(h),
        LayerPlacement { edge_heads: h as u16, ffn: FfnMode::Split },
        LayerPlacement { edge_heads: h as u16, ffn: FfnMode::Cloud },
    ];
    if half > 0 && half < h {
        alphabet.push(LayerPlacement { edge_heads: half as u16, ffn: FfnMode::Cloud });
    }
    let precisions: Vec<Precision> = Precision::ALL.into_iter().filter(|p| sc.allowed_precisions[p.index()]).collect();
    let windows = (l - w + 1) as usize;
    let exhaustive = alphabet
        .len()
        .checked_pow(w)
        .and_then(|n| n.checked_mul(windows * precisions.len()))
        .filter(|&n| n <= DPP_MAX_EXHAUSTIVE_PLANS);
    let mut seen = HashSet::new();
    let mut plans = Vec::new();
    let mut push = |plan: Plan| {
        if plan.respects_privacy_floor(floor, h) && seen.insert(plan.clone()) {
            plans.push(plan);
        }
    };
    let kind = if let Some(n) = exhaustive {
        let per_window = n / (windows * precisions.len());
        for &p in &precisions {
            for ws in 0..=(l - w) {
                for code in 0..per_window {
                    let mut plan = Plan::layer_split(l, h, ws, p);
                    let mut rest = code;
                    for i in 0..w {
                        plan.layers[(ws + i) as usize] = alphabet[rest % alphabet.len()];
                        rest /= alphabet.len();
                    }
                    push(plan);
                }
            }
        }
        Enumeration::Exhaustive
    } else {
        for &p in &precisions {
            for s in floor..=l {
                push(Plan::layer_split(l, h, s, p));
            }
            for s in floor..l {
                for &fine in &alphabet[2..] {
                    let mut plan = Plan::layer_split(l, h, s, p);
                    plan.layers[s as usize] = fine;
                    push(plan);
                }
            }
        }
        Enumeration::OneFineLayer
    };
    (kind, plans)
}

/// `dpp-one-slot` / `oracle-dpp-one-slot`.
pub struct DppOneSlot {
    source: ConditionSource,
    charging: Charging,
    enumeration: Enumeration,
    n_out: u32,
    candidates: Vec<Candidate>,
    fallback_precision: Precision,
    residency: ResidencyEstimate,
    predicted: VirtualQueues,
}

impl DppOneSlot {
    pub fn new(sc: &Scenario, oracle: bool, charging: Charging) -> Self {
        let (kind, plans) = candidate_plans(sc);
        let mut p = Self::with_plans(sc, oracle, charging, plans);
        p.enumeration = kind;
        p
    }

    /// A minimiser over a caller-given plan set (each must have the model's shape).
    pub fn with_plans(sc: &Scenario, oracle: bool, charging: Charging, plans: Vec<Plan>) -> Self {
        let (n_in, n_out) = typical_request(sc);
        Self {
            source: ConditionSource::from_oracle(oracle),
            charging,
            enumeration: Enumeration::Given,
            n_out,
            candidates: plans.into_iter().map(|p| Candidate::new(sc, p, n_in, n_out)).collect(),
            fallback_precision: layer_wise_precision(sc),
            residency: ResidencyEstimate::default(),
            predicted: VirtualQueues::default(),
        }
    }

    pub fn enumeration(&self) -> Enumeration {
        self.enumeration
    }

    /// The candidate plans, in enumeration order (ties go to the first).
    pub fn plans(&self) -> impl Iterator<Item = &Plan> {
        self.candidates.iter().map(|c| &c.plan)
    }

    /// Index of the chosen candidate and its bound; `None` when no candidate fits. This is
    /// `decide` without building the decision: it updates the residency estimate and the queue
    /// prediction the same way.
    pub fn choose(&mut self, ctx: &DecisionContext<'_>) -> Option<(usize, Bound)> {
        let sc = ctx.env.scenario();
        let view = self.source.view(sc, ctx);
        let state = SlotState::observe(sc, ctx, self.source, &self.predicted);
        let current = ctx.env.current_plan();
        self.residency.add(current);
        let mut best: Option<(usize, Bound)> = None;
        for (i, c) in self.candidates.iter().enumerate() {
            if !c.fits(ctx.edge_memory_bytes) {
                continue;
            }
            let est = c.estimate(sc, self.n_out, &view);
            let load_s = if c.plan == *current {
                0.0
            } else {
                sc.edge.load_time_s(self.residency.missing_weight_bytes(&sc.memory, &c.plan))
            };
            let mut b = one_slot_bound(sc, &state, &est, c.profile.edge_share, load_s, self.charging);
            b.value = cost_key(b.value);
            if best.is_none_or(|(_, x)| b.value < x.value) {
                best = Some((i, b));
            }
        }
        if let Some((_, b)) = best {
            self.predicted = b.queues_after;
        }
        best
    }
}

impl Policy for DppOneSlot {
    fn name(&self) -> String {
        let base = if self.source.is_oracle() { "oracle-dpp-one-slot" } else { "dpp-one-slot" };
        match self.charging {
            Charging::Starts => base.into(),
            Charging::Queue => format!("{base}:queue"),
        }
    }

    fn is_oracle(&self) -> bool {
        self.source.is_oracle()
    }

    fn reset(&mut self, _seed: u64) {
        self.residency.clear();
        self.predicted = VirtualQueues::default();
    }

    fn decide(&mut self, ctx: &DecisionContext<'_>) -> Decision {
        match self.choose(ctx) {
            Some((i, _)) => Decision::Plan(self.candidates[i].plan.clone()),
            // Not even the privacy floor fits: the floor plan (the env reports the error).
            None => Decision::Plan(largest_feasible_split(ctx, 0, self.fallback_precision)),
        }
    }
}
