//! The partition environment (system-model.md §1–§9): one step is one decision slot. The agent
//! chooses a plan; requests whose service starts in the slot are served under it while the link,
//! the shared cloud and the edge change under them; the reward is the Lyapunov
//! drift-plus-penalty (or another configured reward) of the slot.
//!
//! Action spaces (both reduce to [`Plan`]):
//! - **hierarchical** (`Partition-hierarchical-v1`): `[split_layer ∈ 0..=L, precision ∈ {16, 8,
//!   4}, (heads_i, ffn_i) for i in 0..W]`. Layers before the window are on the edge, layers after
//!   it on the cloud, and the low level places the `W` window layers, which start at
//!   `clamp(split − W/2, 0, L − W)`: `heads_i` counts edge heads in steps of `head_step`,
//!   `ffn_i` indexes [`FfnMode::ALL`] (cloud, split, edge).
//! - **layer split** (`Partition-layer-split-v1`, ALS): one split layer at a fixed precision.
//!
//! Masks: edge memory couples layers. The observation's mask is exact for the high level (a
//! split/precision is allowed iff some window completion fits) and for the layer-split space;
//! for the low level it is permissive, and [`Env::conditional_mask`] gives the exact mask of
//! each low-level component given the choices before it (autoregressive masking). A plan that
//! does not fit is never executed: it is an error, or, with `actions.infeasible = "repair"`,
//! repaired deterministically ([`PartitionEnv::repair`]) and flagged in the step info.

use crate::api::{Env, EnvError, EnvSpec, StepMetrics, Transition, check_action};
use crate::cost::PlanProfile;
use crate::exogenous::{ExoSlot, ExoState};
use crate::lyapunov::{RewardTerms, SlotOutcome, VirtualQueues, reward};
use crate::plan::{FfnMode, LayerPlacement, Plan, Precision};
use crate::rng::{Stream, StreamRng, derive_seed, item_rng, stream_rng};
use crate::scenario::{ActionMode, InfeasibleAction, Scenario};
use crate::service::{Fallback, RequestCosts, ServeSpec, SlotSource, SlotView, serve};
use crate::spaces::{ActionSpace, Feature, ObservationSpace};
use rand::RngExt;
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;
use std::sync::Arc;

/// Observation layout name (recorded with its fingerprint in checkpoints).
pub const LAYOUT_NAME: &str = "partition-v1";

/// Indices of the `partition-v1` features that policies decode (see [`observation_space`]).
pub mod obs_index {
    pub const BACKLOG_FRACTION: usize = 0;
    pub const ENERGY_QUEUE: usize = 2;
    pub const ACCURACY_QUEUE: usize = 3;
    pub const BANDWIDTH_LAST: usize = 4;
    pub const BANDWIDTH_EWMA: usize = 5;
    pub const SNR_LAST: usize = 7;
    pub const ARRIVAL_RATE_EWMA: usize = 9;
    pub const EDGE_COMPUTE_AVAILABLE: usize = 10;
    pub const EDGE_MEMORY_AVAILABLE: usize = 11;
    pub const CLOUD_LOAD_EWMA: usize = 12;
    pub const CROSSING_FAILURE_RATE_LAST: usize = 13;
    pub const ONE_WAY_LATENCY_LAST: usize = 14;
}

/// A request waiting in the FIFO queue.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Request {
    pub id: u64,
    pub arrival_s: f64,
    pub n_in: u32,
    pub n_out: u32,
    pub deadline_s: Option<f64>,
}

/// One served request, for evaluation reports (recorded when recording is on).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RequestRecord {
    pub id: u64,
    /// Slot in which its service started.
    pub slot: u64,
    pub arrival_s: f64,
    pub start_s: f64,
    pub end_s: f64,
    pub latency_s: f64,
    pub n_in: u32,
    pub n_out: u32,
    pub deadline_s: Option<f64>,
    pub sla_violated: bool,
    pub energy_j: f64,
    pub accuracy_loss: f64,
    pub cloud_gpu_s: f64,
    pub failures: u32,
    pub fell_back: bool,
    pub failed: bool,
    pub split_layer: u32,
    pub edge_share: f64,
    pub precision_bits: u8,
    pub crossings: u64,
}

/// What the executed plan looked like.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PlanSummary {
    /// Leading layers entirely on the edge.
    pub split_layer: u32,
    pub edge_share: f64,
    pub precision_bits: u8,
    pub crossings_per_token: u32,
    pub edge_memory_bytes: f64,
}

/// Typed step info: every reward term and what happened in the slot.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct StepInfo {
    pub slot: u64,
    pub arrivals: u32,
    pub started: u32,
    pub dropped: u32,
    pub backlog: u32,
    pub failed_requests: u32,
    pub fallbacks: u32,
    /// Failed crossings that were retried after a backoff (summed over started requests).
    pub retries: u32,
    pub sla_violations: u32,
    pub latency_sum_s: f64,
    pub latency_max_s: f64,
    /// Edge energy of the started requests plus the plan switch.
    pub energy_j: f64,
    pub switch_energy_j: f64,
    pub switch_load_s: f64,
    pub accuracy_loss_sum: f64,
    pub cloud_gpu_s: f64,
    pub cloud_cost_usd: f64,
    pub plan: PlanSummary,
    pub plan_changed: bool,
    /// The submitted action was infeasible and was repaired (`actions.infeasible = "repair"`).
    pub repaired: bool,
    /// The true conditions of the slot (for analysis; policies do not see them).
    pub rate_bps: f64,
    pub snr_db: f64,
    pub cloud_load: f64,
    pub crossing_failure_probability: f64,
    /// Edge memory available to the model in the slot (the executed plan fits in it).
    pub edge_memory_available_bytes: f64,
    pub reward: RewardTerms,
}

impl StepMetrics for StepInfo {
    fn visit_scalars(&self, visit: &mut dyn FnMut(&'static str, f64)) {
        visit("arrivals", f64::from(self.arrivals));
        visit("started", f64::from(self.started));
        visit("dropped", f64::from(self.dropped));
        visit("failed_requests", f64::from(self.failed_requests));
        visit("fallbacks", f64::from(self.fallbacks));
        visit("retries", f64::from(self.retries));
        visit("sla_violations", f64::from(self.sla_violations));
        visit("latency_sum_s", self.latency_sum_s);
        visit("energy_j", self.energy_j);
        visit("accuracy_loss_sum", self.accuracy_loss_sum);
        visit("cloud_cost_usd", self.cloud_cost_usd);
        visit("split_layer", f64::from(self.plan.split_layer));
        visit("edge_share", self.plan.edge_share);
        visit("repaired", f64::from(u8::from(self.repaired)));
        visit("rate_bps", self.rate_bps);
        self.reward.visit_scalars(visit);
    }
}

/// Running counts since reset (request conservation: arrivals = started + dropped + queued).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Totals {
    pub arrivals: u64,
    pub started: u64,
    pub dropped: u64,
    pub failed: u64,
}

/// Which parts of the model are resident on the edge (loaded weights), so a policy that changes
/// plans pays for loading what is not there yet (system-model §3).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Residency {
    heads: Vec<u16>,
    ffn_first: Vec<bool>,
    ffn_down: Vec<bool>,
    embedding: bool,
    lm_head: bool,
}

/// Moving averages and the last slot's measurements behind the observation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Estimators {
    backlog_ewma: f64,
    rate_last_bps: f64,
    rate_ewma_bps: f64,
    rate_var_ewma: f64,
    snr_last_db: f64,
    gain_mean_ewma: f64,
    gain_sq_ewma: f64,
    arrival_rate_ewma: f64,
    cloud_load_ewma: f64,
    one_way_last_s: f64,
    failure_rate_last: f64,
    latency_mean_last_s: f64,
    /// Ring of (backlog fraction, log10 rate, arrival-rate ratio), oldest first.
    history: Vec<f32>,
}

impl Estimators {
    /// Before any measurement the estimates hold the scenario's long-run means (a device knows
    /// its deployment's typical link, load and workload), so every feature is a real estimate
    /// from the first decision on and nothing needs a "not measured yet" special case.
    fn prior(sc: &Scenario, history: usize) -> Self {
        let mean = crate::public::mean_view(sc).conditions;
        let m = sc.link.nakagami_m();
        let lambda = sc.arrivals.mean_rate_per_s();
        let lambda_ref = sc.arrivals.max_rate_per_s().max(1e-9);
        let mut ring = Vec::with_capacity(3 * history);
        for _ in 0..history {
            ring.extend([0.0, log_mbps(mean.up_rate_bps) as f32, (lambda / lambda_ref).min(5.0) as f32]);
        }
        Self {
            backlog_ewma: 0.0,
            rate_last_bps: mean.up_rate_bps,
            rate_ewma_bps: mean.up_rate_bps,
            rate_var_ewma: 0.0,
            snr_last_db: sc.config.link.snr.mean_db,
            // Gamma(m, 1/m) power gains: E[g] = 1, E[g²] = 1 + 1/m, so the estimate starts at m.
            gain_mean_ewma: 1.0,
            gain_sq_ewma: 1.0 + 1.0 / m,
            arrival_rate_ewma: lambda,
            cloud_load_ewma: mean.cloud_load,
            one_way_last_s: mean.one_way_s,
            failure_rate_last: 0.0,
            latency_mean_last_s: 0.0,
            history: ring,
        }
    }
}

/// Everything that changes during an episode (saved and restored exactly).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PartitionState {
    seed: u64,
    episode_rng: StreamRng,
    arrivals_rng: StreamRng,
    lengths_rng: StreamRng,
    slot: u64,
    needs_reset: bool,
    exo: ExoState,
    queue: VecDeque<Request>,
    next_request_id: u64,
    servers_free_s: Vec<f64>,
    /// Edge compute, uplink, downlink, cloud: when each has finished its committed work.
    resources_free_s: [f64; 4],
    plan: Plan,
    plan_ready_s: f64,
    residency: Residency,
    queues: VirtualQueues,
    est: Estimators,
    totals: Totals,
}

/// Scratch buffers and values derived from the state (rebuilt on restore).
struct Scratch {
    profile: PlanProfile,
    costs: RequestCosts,
    arrivals: Vec<f64>,
    mask: Vec<bool>,
    action: Vec<usize>,
    records: Option<Vec<RequestRecord>>,
}

pub struct PartitionEnv {
    scenario: Arc<Scenario>,
    spec: EnvSpec,
    mode: ActionMode,
    window: u32,
    head_step: u32,
    edge_only_profile: PlanProfile,
    edge_only_bytes: f64,
    state: PartitionState,
    scratch: Scratch,
}

/// `log10(bit/s) − 6`: bandwidth features in log10(Mbit/s), clamped to [−3, 4] (1 kbit/s to
/// 10 Gbit/s).
fn log_mbps(rate_bps: f64) -> f64 {
    (rate_bps.max(1e-30).log10() - 6.0).clamp(-3.0, 4.0)
}

/// Slot conditions of the scenario for the service walk.
struct ExoSource<'a> {
    exo: &'a mut ExoState,
    scenario: &'a Scenario,
}

impl SlotSource for ExoSource<'_> {
    fn slot_s(&self) -> f64 {
        self.scenario.config.serving.slot_s
    }

    fn slot(&mut self, index: u64) -> SlotView {
        let x = self.exo.get(self.scenario, index);
        crate::public::slot_view(self.scenario, &x)
    }
}

impl PartitionEnv {
    pub fn new(scenario: Arc<Scenario>) -> Self {
        let sc = &*scenario;
        let (l, h) = (sc.n_layers(), sc.n_heads());
        let a = &sc.config.actions;
        let mode = a.mode;
        let window = a.window_layers.min(l);
        let head_step = a.head_step;
        let action = match mode {
            ActionMode::Hierarchical => {
                let mut comps = vec![("split_layer".to_string(), l as usize + 1), ("precision".to_string(), 3)];
                for i in 0..window {
                    comps.push((format!("window_{i}_edge_heads"), (h / head_step) as usize + 1));
                    comps.push((format!("window_{i}_ffn"), 3));
                }
                ActionSpace::multi_discrete(comps)
            }
            ActionMode::LayerSplit => ActionSpace::discrete(l as usize + 1, "split_layer"),
        };
        let id = match mode {
            ActionMode::Hierarchical => "Partition-hierarchical-v1",
            ActionMode::LayerSplit => "Partition-layer-split-v1",
        };
        let spec = EnvSpec {
            id: id.to_string(),
            observation: observation_space(sc.config.observation.history),
            action,
            max_episode_steps: Some(sc.config.serving.episode_slots),
        };
        let edge_only = Plan::edge_only(l, h, Precision::Bits16);
        let edge_only_profile = PlanProfile::new(&edge_only, &sc.costs);
        let edge_only_bytes = sc.memory.plan_bytes(&edge_only);
        let initial = Self::initial_plan(sc);
        let state = Self::fresh_state(sc, 0, &initial);
        let scratch = Scratch {
            profile: PlanProfile::new(&initial, &sc.costs),
            costs: RequestCosts::default(),
            arrivals: Vec::with_capacity(64),
            mask: Vec::new(),
            action: Vec::new(),
            records: None,
        };
        Self { scenario, spec, mode, window, head_step, edge_only_profile, edge_only_bytes, state, scratch }
    }

    /// The plan an episode starts from (and whose weights are resident): the smallest plan the
    /// privacy floor allows (cloud-only without a floor).
    fn initial_plan(sc: &Scenario) -> Plan {
        Plan::layer_split(
            sc.n_layers(),
            sc.n_heads(),
            sc.config.serving.privacy_floor_layers,
            match sc.config.actions.mode {
                ActionMode::Hierarchical => Precision::Bits16,
                ActionMode::LayerSplit => sc.layer_split_precision,
            },
        )
    }

    fn fresh_state(sc: &Scenario, seed: u64, initial: &Plan) -> PartitionState {
        let l = sc.n_layers() as usize;
        let mut residency = Residency {
            heads: vec![0; l],
            ffn_first: vec![false; l],
            ffn_down: vec![false; l],
            embedding: false,
            lm_head: false,
        };
        residency.add(initial);
        let history = sc.config.observation.history as usize;
        PartitionState {
            seed,
            episode_rng: stream_rng(seed, Stream::Episode),
            arrivals_rng: stream_rng(seed, Stream::Arrivals),
            lengths_rng: stream_rng(seed, Stream::Lengths),
            slot: 0,
            needs_reset: false,
            exo: ExoState::new(sc, seed),
            queue: VecDeque::with_capacity(sc.config.workload.queue_capacity.min(4096)),
            next_request_id: 0,
            servers_free_s: vec![0.0; sc.config.serving.concurrency as usize],
            resources_free_s: [0.0; 4],
            plan: initial.clone(),
            plan_ready_s: 0.0,
            residency,
            queues: VirtualQueues::default(),
            est: Estimators::prior(sc, history),
            totals: Totals::default(),
        }
    }

    pub fn scenario(&self) -> &Arc<Scenario> {
        &self.scenario
    }

    /// Totals since the last reset.
    pub fn totals(&self) -> Totals {
        self.state.totals
    }

    /// Requests waiting (not yet started).
    pub fn queued(&self) -> usize {
        self.state.queue.len()
    }

    /// The Lyapunov virtual queues (the controller's own bookkeeping, uncapped; the observation
    /// caps them at 10 scale units).
    pub fn virtual_queues(&self) -> VirtualQueues {
        self.state.queues
    }

    /// Weight bytes `plan` would have to load from storage now (not resident on the edge).
    pub fn missing_weight_bytes(&self, plan: &Plan) -> f64 {
        self.state.residency.missing_weight_bytes(plan, &self.scenario)
    }

    /// The plan executed in the last step (the initial plan after a reset).
    pub fn current_plan(&self) -> &Plan {
        &self.state.plan
    }

    /// Current slot index (the slot the next action decides).
    pub fn slot(&self) -> u64 {
        self.state.slot
    }

    /// The true conditions of the slot the next action will run in. Policies that read this are
    /// oracles and must be labelled so.
    pub fn oracle_conditions(&mut self) -> ExoSlot {
        let slot = self.state.slot;
        self.state.exo.get(&self.scenario, slot)
    }

    /// Turns recording of per-request records on or off (off by default: training needs none).
    pub fn set_recording(&mut self, on: bool) {
        self.scratch.records = if on { Some(Vec::new()) } else { None };
    }

    /// Takes the records collected since the last call.
    pub fn take_records(&mut self) -> Vec<RequestRecord> {
        self.scratch.records.as_mut().map(std::mem::take).unwrap_or_default()
    }

    /// Edge memory available in the slot the next action runs in.
    pub fn available_edge_memory_bytes(&mut self) -> f64 {
        let x = self.oracle_conditions();
        self.scenario.edge.usable_memory_bytes * x.edge.memory
    }

    /// Whether `plan` may be executed in the next slot: shape, privacy floor and edge memory.
    pub fn check_plan(&mut self, plan: &Plan) -> Result<(), EnvError> {
        let sc = self.scenario.clone();
        plan.check_shape(sc.n_layers(), sc.n_heads()).map_err(EnvError::InfeasiblePlan)?;
        let k = sc.config.serving.privacy_floor_layers;
        if !plan.respects_privacy_floor(k, sc.n_heads()) {
            return Err(EnvError::InfeasiblePlan(format!("the privacy floor keeps the first {k} layers on the edge")));
        }
        if plan.layers.iter().any(|p| u32::from(p.edge_heads) % self.head_step != 0 && !self.is_layer_split()) {
            return Err(EnvError::InfeasiblePlan(format!("edge head counts must be multiples of {}", self.head_step)));
        }
        let need = sc.memory.plan_bytes(plan);
        let avail = self.available_edge_memory_bytes();
        if need > avail {
            return Err(EnvError::InfeasiblePlan(format!(
                "needs {:.3} GB of edge memory, {:.3} GB available",
                need / 1e9,
                avail / 1e9
            )));
        }
        Ok(())
    }

    fn is_layer_split(&self) -> bool {
        self.mode == ActionMode::LayerSplit
    }

    // ----- action decoding, masks and repair --------------------------------------------------

    /// First layer of the low level's window for split `s`.
    pub fn window_start(&self, split: u32) -> u32 {
        let l = self.scenario.n_layers();
        split.saturating_sub(self.window / 2).min(l - self.window)
    }

    /// The plan an action describes (no feasibility check).
    pub fn plan_of_action(&self, action: &[usize]) -> Plan {
        let sc = &*self.scenario;
        let (l, h) = (sc.n_layers(), sc.n_heads());
        match self.mode {
            ActionMode::LayerSplit => Plan::layer_split(l, h, action[0] as u32, sc.layer_split_precision),
            ActionMode::Hierarchical => {
                let split = action[0] as u32;
                let ws = self.window_start(split);
                let mut plan = Plan::layer_split(l, h, ws, Precision::ALL[action[1]]);
                for i in 0..self.window as usize {
                    plan.layers[ws as usize + i] = LayerPlacement {
                        edge_heads: (action[2 + 2 * i] as u32 * self.head_step) as u16,
                        ffn: FfnMode::ALL[action[3 + 2 * i]],
                    };
                }
                plan
            }
        }
    }

    /// The placement window layer `i` gets from low-level action values.
    fn low_placement(&self, heads_index: usize, ffn_index: usize) -> LayerPlacement {
        LayerPlacement { edge_heads: (heads_index as u32 * self.head_step) as u16, ffn: FfnMode::ALL[ffn_index] }
    }

    /// Edge bytes of the layers before the window, the window layers already chosen in `low`
    /// (pairs of head and FFN indices), then `current` for the next layer if given, and the rest
    /// of the window at its minimum (cloud, unless the privacy floor forces the edge).
    fn window_bytes(&self, ws: u32, low: &[usize], current: Option<LayerPlacement>) -> f64 {
        let sc = &*self.scenario;
        let (l, h) = (sc.n_layers(), sc.n_heads());
        let k = sc.config.serving.privacy_floor_layers;
        let full = sc.memory.layer_bytes(LayerPlacement::edge(h));
        let n_chosen = low.len() / 2;
        let mut bytes = f64::from(ws) * full;
        let mut any_edge = ws > 0;
        let mut last_on_edge = false;
        for i in 0..self.window as usize {
            let layer = ws + i as u32;
            let p = if i < n_chosen {
                self.low_placement(low[2 * i], low[2 * i + 1])
            } else if i == n_chosen && current.is_some() {
                current.unwrap_or(LayerPlacement::CLOUD)
            } else if layer < k {
                LayerPlacement::edge(h)
            } else {
                LayerPlacement::CLOUD
            };
            bytes += sc.memory.layer_bytes(p);
            any_edge |= !p.is_cloud();
            if layer == l - 1 {
                last_on_edge = p.ffn == FfnMode::Edge;
            }
        }
        bytes + sc.memory.fixed_bytes(any_edge, last_on_edge)
    }

    fn split_allowed(&self, split: u32, avail: f64) -> bool {
        let sc = &*self.scenario;
        let k = sc.config.serving.privacy_floor_layers;
        match self.mode {
            ActionMode::LayerSplit => {
                let l = sc.n_layers();
                let full = sc.memory.layer_bytes(LayerPlacement::edge(sc.n_heads()));
                split >= k && f64::from(split) * full + sc.memory.fixed_bytes(split > 0, split == l) <= avail
            }
            ActionMode::Hierarchical => {
                let ws = self.window_start(split);
                ws + self.window >= k && self.window_bytes(ws, &[], None) <= avail
            }
        }
    }

    /// Writes the observation's mask for the next decision.
    fn write_mask(&mut self, mask: &mut [bool]) {
        let avail = self.available_edge_memory_bytes();
        let l = self.scenario.n_layers();
        for s in 0..=l {
            mask[s as usize] = self.split_allowed(s, avail);
        }
        if self.mode == ActionMode::Hierarchical {
            let off = l as usize + 1;
            mask[off..off + 3].copy_from_slice(&self.scenario.allowed_precisions);
            // Low level: permissive here; exact through `conditional_mask`.
            mask[off + 3..].fill(true);
        }
    }

    /// Exact mask of hierarchical component `prefix.len()` given the earlier choices.
    fn hierarchical_conditional_mask(&self, prefix: &[usize], out: &mut [bool], avail: f64) {
        let sc = &*self.scenario;
        let (l, h) = (sc.n_layers(), sc.n_heads());
        match prefix.len() {
            0 => {
                for s in 0..=l {
                    out[s as usize] = self.split_allowed(s, avail);
                }
            }
            1 => out.copy_from_slice(&sc.allowed_precisions),
            n => {
                let ws = self.window_start(prefix[0] as u32);
                let k = sc.config.serving.privacy_floor_layers;
                let i = (n - 2) / 2;
                let forced = ws + (i as u32) < k;
                let chosen = &prefix[2..2 + 2 * i];
                if (n - 2) % 2 == 0 {
                    // Heads of window layer i, its FFN at the minimum for now.
                    let ffn = if forced { FfnMode::Edge } else { FfnMode::Cloud };
                    for (o, slot) in out.iter_mut().enumerate() {
                        let p = LayerPlacement { edge_heads: (o as u32 * self.head_step) as u16, ffn };
                        *slot = (!forced || u32::from(p.edge_heads) == h)
                            && self.window_bytes(ws, chosen, Some(p)) <= avail;
                    }
                } else {
                    for (o, slot) in out.iter_mut().enumerate() {
                        let p = self.low_placement(prefix[2 + 2 * i], o);
                        *slot = (!forced || p.ffn == FfnMode::Edge) && self.window_bytes(ws, chosen, Some(p)) <= avail;
                    }
                }
            }
        }
    }

    /// Exact mask of component `prefix.len()` given the earlier choices, for either mode.
    fn exact_mask(&self, prefix: &[usize], out: &mut [bool], avail: f64) {
        match self.mode {
            ActionMode::LayerSplit => {
                for (s, o) in out.iter_mut().enumerate() {
                    *o = self.split_allowed(s as u32, avail);
                }
            }
            ActionMode::Hierarchical => self.hierarchical_conditional_mask(prefix, out, avail),
        }
    }

    /// The documented deterministic repair of an infeasible action: the split moves to the
    /// nearest allowed split below it (else above); a disallowed precision becomes the first
    /// allowed one; then each window layer in order keeps the largest allowed head count not
    /// above the requested one (else the smallest allowed) and the FFN mode nearest the requested
    /// one towards the cloud (else towards the edge). Returns whether anything changed.
    pub fn repair(&self, action: &mut [usize], avail: f64) -> bool {
        let mut changed = false;
        let mut buf = vec![false; 0];
        for c in 0..action.len() {
            let n = self.spec.action.nvec[c];
            buf.resize(n, false);
            self.exact_mask(&action[..c], &mut buf, avail);
            if buf[action[c]] {
                continue;
            }
            let requested = action[c];
            let down = (0..requested).rev().find(|&v| buf[v]);
            let up = (requested + 1..n).find(|&v| buf[v]);
            // Precision: the first allowed; everything else: nearest below, then above.
            let pick =
                if self.mode == ActionMode::Hierarchical && c == 1 { buf.iter().position(|&b| b) } else { down.or(up) };
            if let Some(v) = pick {
                action[c] = v;
                changed = true;
            }
        }
        changed
    }

    // ----- simulation --------------------------------------------------------------------------

    /// Executes `plan` for one slot (the plan must be feasible: see [`Self::check_plan`]) and
    /// writes the next observation and mask.
    pub fn step_plan_into(
        &mut self,
        plan: &Plan,
        obs: &mut [f32],
        mask: &mut [bool],
    ) -> Result<Transition<StepInfo>, EnvError> {
        if self.state.needs_reset {
            return Err(EnvError::NeedsReset);
        }
        self.check_plan(plan)?;
        Ok(self.run_slot(plan, false, obs, mask))
    }

    fn run_slot(&mut self, plan: &Plan, repaired: bool, obs: &mut [f32], mask: &mut [bool]) -> Transition<StepInfo> {
        let sc = self.scenario.clone();
        let slot_s = sc.config.serving.slot_s;
        let t0 = self.state.slot as f64 * slot_s;
        let t1 = t0 + slot_s;
        let exo = self.state.exo.get(&sc, self.state.slot);
        let mut info = StepInfo {
            slot: self.state.slot,
            repaired,
            rate_bps: exo.link.rate_bps,
            snr_db: exo.link.snr_db,
            cloud_load: exo.cloud_load,
            crossing_failure_probability: exo.crossing_failure_probability,
            edge_memory_available_bytes: sc.edge.usable_memory_bytes * exo.edge.memory,
            ..StepInfo::default()
        };
        // Plan switch: load the weights that are not resident yet; requests under the new plan
        // start once they are loaded.
        if *plan != self.state.plan {
            let missing = self.state.residency.missing_weight_bytes(plan, &sc);
            let load_s = sc.edge.load_time_s(missing);
            let avail = sc.edge.usable_memory_bytes * exo.edge.memory;
            self.state.residency.add(plan);
            self.state.residency.evict_to_fit(plan, &sc, avail);
            self.state.plan = plan.clone();
            self.state.plan_ready_s = t0 + load_s;
            self.scratch.profile = PlanProfile::new(plan, &sc.costs);
            info.plan_changed = true;
            info.switch_load_s = load_s;
            info.switch_energy_j = sc.edge.active_power_w * load_s;
        }
        let backlog_before = self.state.queue.len();
        let mut outcome = SlotOutcome {
            slot_s,
            backlog_before: backlog_before as f64,
            energy_j: info.switch_energy_j,
            edge_energy_spent_j: info.switch_energy_j,
            ..SlotOutcome::default()
        };
        let mut crossings = 0u64;
        let mut failed_crossings = 0u64;
        // Arrivals, interleaved in time with service starts.
        self.scratch.arrivals.clear();
        sc.arrivals.sample_slot_arrivals(
            exo.arrival_rate_per_s,
            self.state.slot,
            slot_s,
            &mut self.state.arrivals_rng,
            &mut self.scratch.arrivals,
        );
        for k in 0..self.scratch.arrivals.len() {
            let arrival_s = t0 + self.scratch.arrivals[k];
            self.start_services(
                arrival_s,
                t0,
                &sc,
                &exo,
                &mut info,
                &mut outcome,
                &mut crossings,
                &mut failed_crossings,
            );
            let n_in = sc.prompt_lengths.sample(&mut self.state.lengths_rng);
            let n_out = sc.output_lengths.sample(&mut self.state.lengths_rng);
            info.arrivals += 1;
            self.state.totals.arrivals += 1;
            let id = self.state.next_request_id;
            self.state.next_request_id += 1;
            if self.state.queue.len() >= sc.config.workload.queue_capacity {
                info.dropped += 1;
                self.state.totals.dropped += 1;
            } else {
                let deadline_s = sc.config.workload.deadline.deadline_s(n_in, n_out);
                self.state.queue.push_back(Request { id, arrival_s, n_in, n_out, deadline_s });
            }
        }
        self.start_services(t1, t0, &sc, &exo, &mut info, &mut outcome, &mut crossings, &mut failed_crossings);
        info.backlog = self.state.queue.len() as u32;
        outcome.backlog_after = self.state.queue.len() as f64;
        outcome.n_started = info.started as usize;
        outcome.dropped = f64::from(info.dropped);
        info.reward = reward(&sc.config.reward, &outcome, &mut self.state.queues);
        info.energy_j = outcome.energy_j;
        info.plan = PlanSummary {
            split_layer: self.state.plan.leading_edge_layers(sc.n_heads()),
            edge_share: self.scratch.profile.edge_share,
            precision_bits: self.state.plan.precision.bits(),
            crossings_per_token: self.scratch.profile.crossings_per_token(),
            edge_memory_bytes: sc.memory.plan_bytes(&self.state.plan),
        };
        self.update_estimators(&sc, &exo, &info, crossings, failed_crossings);
        self.state.slot += 1;
        self.state.exo.discard_before(self.state.slot);
        let truncated = self.state.slot >= sc.config.serving.episode_slots;
        self.state.needs_reset = truncated;
        self.write_obs(obs);
        self.write_mask(mask);
        Transition { reward: info.reward.reward, terminated: false, truncated, info }
    }

    /// Starts every queued request that can start before `limit`.
    #[allow(clippy::too_many_arguments)]
    fn start_services(
        &mut self,
        limit: f64,
        t0: f64,
        sc: &Scenario,
        exo: &ExoSlot,
        info: &mut StepInfo,
        outcome: &mut SlotOutcome,
        crossings: &mut u64,
        failed_crossings: &mut u64,
    ) {
        let avail = sc.edge.usable_memory_bytes * exo.edge.memory;
        while let Some(&req) = self.state.queue.front() {
            let (server, free) = self
                .state
                .servers_free_s
                .iter()
                .copied()
                .enumerate()
                .fold((0, f64::INFINITY), |best, (i, f)| if f < best.1 { (i, f) } else { best });
            let start = req.arrival_s.max(free).max(self.state.plan_ready_s).max(t0);
            if start >= limit {
                break;
            }
            self.state.queue.pop_front();
            let st = &mut self.state;
            let scratch = &mut self.scratch;
            scratch.costs.fill(&scratch.profile, req.n_in, req.n_out, &sc.edge, &sc.cloud);
            let fallback = (self.edge_only_bytes <= avail && !st.plan.is_edge_only(sc.n_heads())).then(|| Fallback {
                profile: &self.edge_only_profile,
                load_s: sc.edge.load_time_s(st.residency.missing_weight_bytes_edge_only(sc)),
            });
            let spec = ServeSpec {
                costs: &scratch.costs,
                streaming: scratch.profile.streaming,
                n_in: req.n_in,
                n_out: req.n_out,
                fallback,
                recovery: &sc.config.recovery,
                edge: &sc.edge,
                cloud: &sc.cloud,
            };
            let mut rng = item_rng(st.seed, Stream::Requests, req.id);
            let out = serve(&spec, start, &mut ExoSource { exo: &mut st.exo, scenario: sc }, &mut rng);
            if out.fell_back {
                // The fallback loaded the edge-only weights: they stay resident while they fit.
                let edge_only = Plan::edge_only(sc.n_layers(), sc.n_heads(), Precision::Bits16);
                st.residency.add(&edge_only);
                st.residency.evict_to_fit(&st.plan, sc, avail);
            }
            // Pipelining across concurrent requests: each resource works through its committed
            // work in order; a request ends no earlier than its own critical path and than each
            // resource finishing its share of the work.
            let busy = [out.edge_compute_s, out.tx_s, out.rx_s, out.cloud_busy_s];
            let mut end = out.end_s;
            for (free_s, b) in st.resources_free_s.iter_mut().zip(busy) {
                *free_s = free_s.max(start) + b;
                end = end.max(*free_s);
            }
            st.servers_free_s[server] = end;
            let latency_s = end - req.arrival_s;
            let bits = st.plan.precision.bits();
            let accuracy_loss: f64 = scratch
                .profile
                .tensor_crossing_depths
                .iter()
                .map(|&d| sc.accuracy.crossing_loss(bits, d, out.mean_erasure_rate))
                .sum();
            let cloud_cost = out.cloud_gpu_s * sc.config.cloud_load.cost_per_gpu_s_usd();
            let sla_violated = req.deadline_s.is_some_and(|d| latency_s > d);
            info.started += 1;
            st.totals.started += 1;
            info.latency_sum_s += latency_s;
            info.latency_max_s = info.latency_max_s.max(latency_s);
            info.retries += out.failures;
            info.fallbacks += u32::from(out.fell_back);
            info.failed_requests += u32::from(out.failed);
            st.totals.failed += u64::from(out.failed);
            info.sla_violations += u32::from(sla_violated);
            info.accuracy_loss_sum += accuracy_loss;
            info.cloud_gpu_s += out.cloud_gpu_s;
            info.cloud_cost_usd += cloud_cost;
            outcome.latency_s += latency_s;
            outcome.energy_j += out.energy_j;
            outcome.edge_energy_spent_j += out.energy_j;
            outcome.accuracy_loss += accuracy_loss;
            outcome.cloud_cost += cloud_cost;
            outcome.edge_load_fraction += scratch.profile.edge_share;
            *crossings += out.crossings;
            *failed_crossings += u64::from(out.failures);
            if let Some(records) = scratch.records.as_mut() {
                records.push(RequestRecord {
                    id: req.id,
                    slot: st.slot,
                    arrival_s: req.arrival_s,
                    start_s: start,
                    end_s: end,
                    latency_s,
                    n_in: req.n_in,
                    n_out: req.n_out,
                    deadline_s: req.deadline_s,
                    sla_violated,
                    energy_j: out.energy_j,
                    accuracy_loss,
                    cloud_gpu_s: out.cloud_gpu_s,
                    failures: out.failures,
                    fell_back: out.fell_back,
                    failed: out.failed,
                    split_layer: st.plan.leading_edge_layers(sc.n_heads()),
                    edge_share: scratch.profile.edge_share,
                    precision_bits: bits,
                    crossings: out.crossings,
                });
            }
        }
    }

    // ----- observation -------------------------------------------------------------------------

    fn update_estimators(&mut self, sc: &Scenario, exo: &ExoSlot, info: &StepInfo, crossings: u64, failed: u64) {
        let a = sc.config.observation.ewma_alpha;
        let e = &mut self.state.est;
        let mix = |old: f64, new: f64| (1.0 - a) * old + a * new;
        let rate = exo.link.rate_bps;
        let backlog_frac = info.backlog as f64 / sc.config.workload.queue_capacity as f64;
        e.backlog_ewma = mix(e.backlog_ewma, backlog_frac);
        e.rate_last_bps = rate;
        let dev = rate - e.rate_ewma_bps;
        e.rate_ewma_bps = mix(e.rate_ewma_bps, rate);
        e.rate_var_ewma = (1.0 - a) * (e.rate_var_ewma + a * dev * dev);
        e.snr_last_db = exo.link.snr_db;
        let g = exo.link.fading_gain;
        e.gain_mean_ewma = mix(e.gain_mean_ewma, g);
        e.gain_sq_ewma = mix(e.gain_sq_ewma, g * g);
        e.arrival_rate_ewma = mix(e.arrival_rate_ewma, f64::from(info.arrivals) / sc.config.serving.slot_s);
        e.cloud_load_ewma = mix(e.cloud_load_ewma, exo.cloud_load);
        e.one_way_last_s = exo.link.one_way_s;
        e.failure_rate_last = if crossings > 0 { failed as f64 / crossings as f64 } else { 0.0 };
        e.latency_mean_last_s = if info.started > 0 { info.latency_sum_s / f64::from(info.started) } else { 0.0 };
        let lambda_ref = sc.arrivals.max_rate_per_s().max(1e-9);
        let h = &mut e.history;
        h.copy_within(3.., 0);
        let n = h.len();
        h[n - 3] = backlog_frac as f32;
        h[n - 2] = log_mbps(rate) as f32;
        h[n - 1] = (f64::from(info.arrivals) / sc.config.serving.slot_s / lambda_ref).min(5.0) as f32;
    }

    fn write_obs(&mut self, obs: &mut [f32]) {
        let sc = self.scenario.clone();
        let next = self.oracle_conditions_for_obs();
        let st = &self.state;
        let e = &st.est;
        let latency_scale = sc.config.reward.scales.latency_s;
        let lambda_ref = sc.arrivals.max_rate_per_s().max(1e-9);
        let gain_var = (e.gain_sq_ewma - e.gain_mean_ewma * e.gain_mean_ewma).max(1e-12);
        let m_hat = (e.gain_mean_ewma * e.gain_mean_ewma / gain_var).min(20.0);
        let cv = if e.rate_ewma_bps > 0.0 { e.rate_var_ewma.sqrt() / e.rate_ewma_bps } else { 0.0 };
        let profile = &self.scratch.profile;
        let l = sc.n_layers();
        let values = [
            st.queue.len() as f64 / sc.config.workload.queue_capacity as f64,
            e.backlog_ewma,
            (st.queues.energy_j / sc.config.reward.scales.energy_j).min(10.0),
            (st.queues.accuracy / sc.config.reward.scales.accuracy).min(10.0),
            log_mbps(e.rate_last_bps),
            log_mbps(e.rate_ewma_bps),
            cv.min(5.0),
            (e.snr_last_db / 10.0).clamp(-5.0, 6.0),
            m_hat / 10.0,
            (e.arrival_rate_ewma / lambda_ref).min(5.0),
            next.0,
            next.1,
            e.cloud_load_ewma,
            e.failure_rate_last,
            (e.one_way_last_s * 10.0).min(5.0),
            f64::from(st.plan.leading_edge_layers(sc.n_heads())) / f64::from(l),
            profile.edge_share.clamp(0.0, 1.0),
            f64::from(st.plan.precision.bits()) / 16.0,
            (e.latency_mean_last_s / latency_scale).min(10.0),
        ];
        for (o, v) in obs.iter_mut().zip(values) {
            *o = v as f32;
        }
        obs[values.len()..].copy_from_slice(&e.history);
    }

    /// Edge compute and memory availability of the next slot: the device knows its own load.
    fn oracle_conditions_for_obs(&mut self) -> (f64, f64) {
        let x = self.oracle_conditions();
        (x.edge.compute, x.edge.memory)
    }
}

/// The observation layout `partition-v1` with `history` slots of history.
pub fn observation_space(history: u32) -> ObservationSpace {
    // Descriptions say how a device computes each feature from raw measurements (they go into an
    // exported policy's sidecar); `write_obs`, `update_estimators` and `Estimators::prior` are the
    // reference. "ewma": m ← (1 − ewma_alpha)·m + ewma_alpha·x once per slot, starting from the
    // prior (the scenario's long-run mean) at an episode's start; "prior": that starting value.
    let f = Feature::new;
    let mut features = vec![
        f(
            "backlog_fraction",
            0.0,
            1.0,
            "1",
            "requests waiting in the FIFO queue at the decision / workload.queue_capacity",
        ),
        f(
            "backlog_ewma_fraction",
            0.0,
            1.0,
            "1",
            "ewma of the backlog fraction at the end of each slot (queued requests / queue_capacity); starts at 0",
        ),
        f(
            "energy_queue",
            0.0,
            10.0,
            "1",
            "min(Z_E / reward.scales.energy_j, 10); energy virtual queue Z_E ← max(Z_E + edge energy of the slot (J) − reward.energy_budget_w·slot_s, 0), 0 without a budget",
        ),
        f(
            "accuracy_queue",
            0.0,
            10.0,
            "1",
            "min(Z_A / reward.scales.accuracy, 10); accuracy virtual queue Z_A ← max(Z_A + Σ over requests started in the slot of (accuracy loss − reward.accuracy_budget), 0), 0 without a budget",
        ),
        f(
            "bandwidth_last",
            -3.0,
            4.0,
            "log10(Mbit/s)",
            "clamp(log10(r) − 6, −3, 4) of the link rate r (bit/s) measured in the last slot; before the first slot r is the prior (the scenario's mean rate)",
        ),
        f(
            "bandwidth_ewma",
            -3.0,
            4.0,
            "log10(Mbit/s)",
            "clamp(log10(m) − 6, −3, 4) of m = ewma of the measured link rate in bit/s (prior: the scenario's mean rate)",
        ),
        f(
            "bandwidth_cv",
            0.0,
            5.0,
            "1",
            "min(√v / m, 5) with m the rate ewma and v its moving variance: v ← (1 − ewma_alpha)·(v + ewma_alpha·(r − m_prev)²) each slot from v = 0, m_prev the ewma before the slot's update; 0 when m = 0",
        ),
        f(
            "snr_last",
            -5.0,
            6.0,
            "10 dB",
            "clamp(mean SNR of the last slot in dB / 10, −5, 6); before the first slot the prior (the scenario's mean SNR)",
        ),
        f(
            "nakagami_m_estimate",
            0.0,
            2.0,
            "10",
            "min(a² / max(b − a², 1e-12), 20) / 10: moment estimate of Nakagami m from a = ewma of the slot's fading power gain g (prior 1) and b = ewma of g² (prior 1 + 1/m, m the scenario's Nakagami m)",
        ),
        f(
            "arrival_rate_ewma",
            0.0,
            5.0,
            "1",
            "min(ewma of (arrivals in the slot / slot_s) / the arrival process's peak rate per second, 5); prior: the mean arrival rate",
        ),
        f(
            "edge_compute_available",
            0.0,
            1.0,
            "1",
            "fraction of the edge device's compute left by other apps in the coming slot (known locally)",
        ),
        f(
            "edge_memory_available",
            0.0,
            1.0,
            "1",
            "fraction of the edge device's usable memory left by other apps in the coming slot (known locally)",
        ),
        f(
            "cloud_load_ewma",
            0.0,
            1.0,
            "1",
            "ewma of the shared cloud GPU's utilisation measured each slot, in [0, 1]; prior: its long-run mean",
        ),
        f(
            "crossing_failure_rate_last",
            0.0,
            1.0,
            "1",
            "failed / attempted link crossings of the last slot; 0 when there was none",
        ),
        f(
            "one_way_latency_last",
            0.0,
            5.0,
            "100 ms",
            "min(one-way network latency of the last slot in s × 10, 5); before the first slot the prior (latency one_way_s + jitter_s / 2)",
        ),
        f(
            "last_split_fraction",
            0.0,
            1.0,
            "1",
            "leading layers fully on the edge in the plan executed last (the initial plan before the first slot) / n_layers",
        ),
        f(
            "last_edge_share",
            0.0,
            1.0,
            "1",
            "edge share of the per-token weight traffic of the plan executed last, clamped to [0, 1]",
        ),
        f("last_precision", 0.0, 1.0, "16 bit", "boundary bits of the plan executed last / 16"),
        f(
            "latency_mean_last",
            0.0,
            10.0,
            "1",
            "min(mean latency of the requests whose service started in the last slot / reward.scales.latency_s, 10); 0 if none started",
        ),
    ];
    for k in (1..=history).rev() {
        let g = |name: String, low, high, unit, desc| Feature::new(name, low, high, unit, desc);
        features.push(g(
            format!("history_backlog_t-{k}"),
            0.0,
            1.0,
            "1",
            "backlog fraction at the end of the slot k slots ago (queued / queue_capacity); 0 for slots before the episode began",
        ));
        features.push(g(
            format!("history_bandwidth_t-{k}"),
            -3.0,
            4.0,
            "log10(Mbit/s)",
            "clamp(log10(r) − 6, −3, 4) of the link rate r (bit/s) measured k slots ago; for slots before the episode began, the prior (the scenario's mean rate)",
        ));
        features.push(g(
            format!("history_arrival_rate_t-{k}"),
            0.0,
            5.0,
            "1",
            "min(arrivals k slots ago / slot_s / peak arrival rate per second, 5); for slots before the episode began, min(mean arrival rate / peak rate, 5)",
        ));
    }
    debug_assert_eq!(features[obs_index::BANDWIDTH_EWMA].name, "bandwidth_ewma");
    debug_assert_eq!(features[obs_index::ONE_WAY_LATENCY_LAST].name, "one_way_latency_last");
    debug_assert_eq!(features[obs_index::CLOUD_LOAD_EWMA].name, "cloud_load_ewma");
    ObservationSpace { layout: LAYOUT_NAME.to_string(), features }
}

impl Residency {
    fn add(&mut self, plan: &Plan) {
        for (l, p) in plan.layers.iter().enumerate() {
            self.heads[l] = self.heads[l].max(p.edge_heads);
            self.ffn_first[l] |= p.ffn != FfnMode::Cloud;
            self.ffn_down[l] |= p.ffn == FfnMode::Edge;
        }
        self.embedding |= !plan.is_cloud_only();
        self.lm_head |= plan.layers.last().is_some_and(|p| p.ffn == FfnMode::Edge);
    }

    fn missing_weight_bytes(&self, plan: &Plan, sc: &Scenario) -> f64 {
        let m = &sc.memory;
        let mut bytes = 0.0;
        for (l, p) in plan.layers.iter().enumerate() {
            bytes += f64::from(p.edge_heads.saturating_sub(self.heads[l])) * m.head_weight_bytes;
            if p.ffn != FfnMode::Cloud && !self.ffn_first[l] {
                bytes += m.ffn_first_weight_bytes;
            }
            if p.ffn == FfnMode::Edge && !self.ffn_down[l] {
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

    /// Missing bytes of the edge-only plan (the fallback), without building it.
    fn missing_weight_bytes_edge_only(&self, sc: &Scenario) -> f64 {
        let m = &sc.memory;
        let h = sc.n_heads() as u16;
        let mut bytes = 0.0;
        for l in 0..self.heads.len() {
            bytes += f64::from(h.saturating_sub(self.heads[l])) * m.head_weight_bytes;
            bytes += if self.ffn_first[l] { 0.0 } else { m.ffn_first_weight_bytes };
            bytes += if self.ffn_down[l] { 0.0 } else { m.ffn_down_weight_bytes };
        }
        bytes += if self.embedding { 0.0 } else { m.embedding_weight_bytes };
        bytes + if self.lm_head { 0.0 } else { m.lm_head_extra_weight_bytes }
    }

    fn resident_weight_bytes(&self, sc: &Scenario) -> f64 {
        let m = &sc.memory;
        let mut bytes = 0.0;
        for l in 0..self.heads.len() {
            bytes += f64::from(self.heads[l]) * m.head_weight_bytes;
            bytes += if self.ffn_first[l] { m.ffn_first_weight_bytes } else { 0.0 };
            bytes += if self.ffn_down[l] { m.ffn_down_weight_bytes } else { 0.0 };
        }
        bytes += if self.embedding { m.embedding_weight_bytes } else { 0.0 };
        bytes + if self.lm_head { m.lm_head_extra_weight_bytes } else { 0.0 }
    }

    /// Evicts weights the plan does not use, from the last layer backwards, until the resident
    /// weights plus the plan's KV cache and workspace fit in `avail` bytes.
    fn evict_to_fit(&mut self, plan: &Plan, sc: &Scenario, avail: f64) {
        let m = &sc.memory;
        let plan_weights: f64 = plan.layers.iter().map(|&p| m.layer_weight_bytes(p)).sum();
        let overhead = sc.memory.plan_bytes(plan)
            - plan_weights
            - if plan.is_cloud_only() { 0.0 } else { m.embedding_weight_bytes }
            - if plan.layers.last().is_some_and(|p| p.ffn == FfnMode::Edge) {
                m.lm_head_extra_weight_bytes
            } else {
                0.0
            };
        let mut excess = self.resident_weight_bytes(sc) + overhead - avail;
        for (l, p) in plan.layers.iter().enumerate().rev() {
            if excess <= 0.0 {
                return;
            }
            let extra_heads = self.heads[l] - p.edge_heads.min(self.heads[l]);
            excess -= f64::from(extra_heads) * m.head_weight_bytes;
            self.heads[l] -= extra_heads;
            if self.ffn_down[l] && p.ffn != FfnMode::Edge {
                self.ffn_down[l] = false;
                excess -= m.ffn_down_weight_bytes;
            }
            if self.ffn_first[l] && p.ffn == FfnMode::Cloud {
                self.ffn_first[l] = false;
                excess -= m.ffn_first_weight_bytes;
            }
        }
        if excess > 0.0 && self.lm_head && plan.layers.last().is_none_or(|p| p.ffn != FfnMode::Edge) {
            self.lm_head = false;
            excess -= m.lm_head_extra_weight_bytes;
        }
        if excess > 0.0 && self.embedding && plan.is_cloud_only() {
            self.embedding = false;
        }
    }
}

impl Env for PartitionEnv {
    type Info = StepInfo;
    type State = PartitionState;

    fn spec(&self) -> &EnvSpec {
        &self.spec
    }

    fn reset_into(&mut self, seed: Option<u64>, obs: &mut [f32], mask: &mut [bool]) -> StepInfo {
        let seed = seed.unwrap_or_else(|| {
            let s: u64 = self.state.episode_rng.random();
            derive_seed(s, self.state.seed)
        });
        let sc = self.scenario.clone();
        let initial = Self::initial_plan(&sc);
        self.state = Self::fresh_state(&sc, seed, &initial);
        self.scratch.profile = PlanProfile::new(&initial, &sc.costs);
        if let Some(r) = self.scratch.records.as_mut() {
            r.clear();
        }
        self.write_obs(obs);
        self.write_mask(mask);
        StepInfo::default()
    }

    fn step_into(
        &mut self,
        action: &[usize],
        obs: &mut [f32],
        mask: &mut [bool],
    ) -> Result<Transition<StepInfo>, EnvError> {
        if self.state.needs_reset {
            return Err(EnvError::NeedsReset);
        }
        let avail = self.available_edge_memory_bytes();
        let space = &self.spec.action;
        if action.len() != space.nvec.len() {
            return Err(EnvError::ActionLength { expected: space.nvec.len(), got: action.len() });
        }
        // The exact (conditional) mask of every component given the action's earlier choices.
        let mut exact = std::mem::take(&mut self.scratch.mask);
        exact.resize(space.mask_len(), false);
        let mut offset = 0;
        for (c, &n) in space.nvec.iter().enumerate() {
            if action[c] >= n {
                let name = space.names[c].clone();
                self.scratch.mask = exact;
                return Err(EnvError::ActionOutOfRange { component: c, name, value: action[c], n });
            }
            self.exact_mask(&action[..c], &mut exact[offset..offset + n], avail);
            offset += n;
        }
        let mut action_buf = std::mem::take(&mut self.scratch.action);
        action_buf.clear();
        action_buf.extend_from_slice(action);
        let verdict = check_action(&self.spec.action, &action_buf, &exact);
        self.scratch.mask = exact;
        let mut repaired = false;
        if let Err(e) = verdict {
            if self.scenario.config.actions.infeasible != InfeasibleAction::Repair {
                self.scratch.action = action_buf;
                return Err(e);
            }
            repaired = self.repair(&mut action_buf, avail);
        }
        let plan = self.plan_of_action(&action_buf);
        self.scratch.action = action_buf;
        // Masks guarantee feasibility; check anyway: no infeasible plan is ever executed.
        self.check_plan(&plan)?;
        Ok(self.run_slot(&plan, repaired, obs, mask))
    }

    fn conditional_mask(&self, prefix: &[usize], out: &mut [bool]) -> bool {
        let avail = self.scenario.edge.usable_memory_bytes * self.next_memory_fraction();
        self.exact_mask(prefix, out, avail);
        true
    }

    fn save_state(&self) -> PartitionState {
        self.state.clone()
    }

    fn restore_state(&mut self, state: &PartitionState) -> Result<(), EnvError> {
        let sc = &*self.scenario;
        if state.residency.heads.len() != sc.n_layers() as usize
            || state.servers_free_s.len() != sc.config.serving.concurrency as usize
            || state.est.history.len() != 3 * sc.config.observation.history as usize
        {
            return Err(EnvError::StateMismatch(format!(
                "the saved state is for another scenario (layers, concurrency or history differ from {})",
                sc.config.name
            )));
        }
        self.state = state.clone();
        self.scratch.profile = PlanProfile::new(&self.state.plan, &sc.costs);
        Ok(())
    }
}

impl PartitionEnv {
    /// Memory fraction of the next slot without generating it mutably (the buffer always holds
    /// the current slot: it is generated when the previous step ends).
    fn next_memory_fraction(&self) -> f64 {
        self.state.exo.peek(self.state.slot).map_or(1.0, |x| x.edge.memory)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::{CloudOnly, EdgeOnly, Policy, act_and_step};
    use crate::scenario::{NoTraces, ScenarioConfig};

    /// A deterministic scenario: GPT-2 Medium on a Jetson next to an idle A100, a constant
    /// 10 Mbit/s link with 20 ms one-way latency and no loss or failures, fixed 64/64-token
    /// requests.
    const CALM: &str = r#"
        version = 1
        name = "calm"
        [model]
        preset = "gpt2-medium"
        [edge]
        preset = "jetson-orin-nx-16gb"
        [cloud]
        preset = "a100-80gb-sxm"
        [link.rate]
        model = "rate"
        [link.rate.process]
        kind = "constant"
        bandwidth_bps = 10e6
        [link.snr]
        mean_db = 60.0
        ar_coefficient_per_s = 0.5
        sigma_db = 0.0
        nakagami_m = 100.0
        [link.latency]
        one_way_s = 0.02
        jitter_s = 0.0
        [link.transport]
        mode = "reliable"
        packet_loss_threshold_db = -40.0
        [workload]
        [workload.arrivals]
        kind = "constant"
        rate_per_s = 0.05
        [workload.prompt_tokens]
        median_tokens = 64
        sigma = 0.0
        min_tokens = 64
        max_tokens = 64
        [workload.output_tokens]
        median_tokens = 64
        sigma = 0.0
        min_tokens = 64
        max_tokens = 64
        [serving]
        episode_slots = 400
        [actions]
        mode = "layer-split"
    "#;

    fn calm() -> Arc<Scenario> {
        Arc::new(Scenario::from_toml(CALM, &NoTraces).unwrap())
    }

    fn first_record(sc: &Arc<Scenario>, policy: &mut dyn Policy) -> RequestRecord {
        let mut env = PartitionEnv::new(sc.clone());
        env.set_recording(true);
        let (mut obs, _) = env.reset(Some(5));
        for _ in 0..400 {
            act_and_step(&mut env, policy, &mut obs).unwrap();
            if let Some(r) = env.take_records().first() {
                return *r;
            }
        }
        panic!("no request in 400 slots");
    }

    /// Roofline of a segment on a device, written out from the datasheet numbers.
    fn roofline(flops: f64, bytes: f64, peak: f64, eta_c: f64, bw: f64, eta_m: f64, launch: f64) -> f64 {
        (flops / (eta_c * peak)).max(bytes / (eta_m * bw)) + launch
    }

    #[test]
    fn cloud_only_latency_matches_a_hand_computation() {
        // GPT-2 Medium: d = 1024, 16 heads of 64, d_ff = 4096, vocab 50257, FP16.
        // Per layer: attention 4d² + 4d (biases) + 2d (LN) params, FFN 8d² + 5d + 2d.
        let d: f64 = 1024.0;
        let attn_params = 4.0 * d * d + 4.0 * d + 2.0 * d;
        let ffn_params = 8.0 * d * d + 5.0 * d + 2.0 * d;
        let lm_params = 50257.0 * d + 2.0 * d;
        // A100: 312 TFLOP/s × 0.5, 2039 GB/s × 0.8, 10 µs per launch.
        let a100 = |flops: f64, bytes: f64| roofline(flops, bytes, 312e12, 0.5, 2039e9, 0.8, 10e-6);
        // One pass over n tokens with `ctx` cached: attention attends (query, key) pairs
        // n·ctx + n(n+1)/2 at 4·64 FLOPs per pair per head and reads (ctx + n) cached tokens of
        // K and V (2·1024 values × 2 B); activations: heads 2·(64 + 1024) B per head per token,
        // FFN 4·(1024 + 4096) B per token (up reads x and writes the intermediate, down reads it
        // and writes the output), LM head 2·(1024 + 50257) B.
        let pass = |n: f64, ctx: f64| {
            let pairs = n * ctx + n * (n + 1.0) / 2.0;
            let keys = ctx + n;
            let heads = a100(
                2.0 * attn_params * n + 4.0 * 64.0 * 16.0 * pairs,
                2.0 * attn_params + 2.0 * 2.0 * d * keys + 16.0 * 2.0 * (64.0 + d) * n,
            );
            let ffn = a100(2.0 * ffn_params * n, 2.0 * ffn_params + 4.0 * (d + 4096.0) * n);
            24.0 * (heads + ffn) + a100(2.0 * lm_params, 2.0 * lm_params + 2.0 * (d + 50257.0))
        };
        // Prompt ids up (64 × 4 B), prefill, 63 decode steps at the mean context 64 + 32, and
        // the stream's last token down (4 B).
        let link = |bytes: f64| 0.02 + bytes * 8.0 / 10e6;
        let expected = link(256.0) + pass(64.0, 0.0) + 63.0 * pass(1.0, 96.0) + link(4.0);
        let r = first_record(&calm(), &mut CloudOnly);
        assert_eq!((r.n_in, r.n_out, r.failures), (64, 64, 0));
        assert!((r.latency_s - expected).abs() < 1e-9, "{} vs hand {expected}", r.latency_s);
        // ≈ 0.04 s of link and ≈ 0.9 ms per decode step (49 launches + 0.7 GB of weights).
        assert!(r.latency_s > 0.04 && r.latency_s < 0.11, "{}", r.latency_s);
        // Edge energy: the radio sends the prompt (2 W) and receives the last token (1 W); the
        // Jetson idles at 5 W the rest of the time.
        let (tx, rx) = (256.0 * 8.0 / 10e6, 32.0 / 10e6);
        let energy = 2.0 * tx + 1.0 * rx + 5.0 * (r.latency_s - tx - rx);
        assert!((r.energy_j - energy).abs() < 1e-9, "{} vs {energy}", r.energy_j);
    }

    #[test]
    fn switching_plans_loads_only_missing_weights() {
        // Cloud-only → edge-only loads every weight (GPT-2 Medium: 354.8M params × 2 B at
        // 2 GB/s ≈ 0.355 s); back to cloud-only and edge-only again loads nothing (resident).
        let sc = calm();
        let mut env = PartitionEnv::new(sc.clone());
        let (mut f, mut m) = env.buffers();
        env.reset_into(Some(1), &mut f, &mut m);
        let (l, h) = (sc.n_layers(), sc.n_heads());
        let edge = Plan::edge_only(l, h, Precision::Bits16);
        let cloud = Plan::cloud_only(l, Precision::Bits16);
        let t = env.step_plan_into(&edge, &mut f, &mut m).unwrap();
        let expected = sc.costs.total_weight_bytes() / 2e9;
        assert!((t.info.switch_load_s - expected).abs() < 1e-9, "{}", t.info.switch_load_s);
        assert!((t.info.switch_energy_j - 20.0 * expected).abs() < 1e-9);
        let t = env.step_plan_into(&cloud, &mut f, &mut m).unwrap();
        assert_eq!(t.info.switch_load_s, 0.0);
        let t = env.step_plan_into(&edge, &mut f, &mut m).unwrap();
        assert!(t.info.plan_changed && t.info.switch_load_s == 0.0);
    }

    #[test]
    fn edge_only_is_slower_than_cloud_only_on_a_calm_link() {
        // system-model §0: on a healthy link with an idle cloud, cloud-only wins on latency.
        let sc = calm();
        let c = first_record(&sc, &mut CloudOnly);
        let e = first_record(&sc, &mut EdgeOnly);
        assert!(e.latency_s > 5.0 * c.latency_s, "edge {} vs cloud {}", e.latency_s, c.latency_s);
        assert!(e.energy_j > c.energy_j);
    }

    #[test]
    fn phone_memory_masks_deep_splits() {
        // S23: 4 GB for LLaMA-13B FP16 (40 layers of 634.5 MB with 2 × 768-token KV caches of
        // 2·5120·2 B per token = 31.5 MB) plus 327.7 MB of embedding and the workspace of 2 × 512
        // × (13824 + 10240) × 2 B = 49.3 MB: 5 layers fit (3.87 GB), 6 do not (4.54 GB).
        let text = include_str!("../../configs/s23-llama13b-5g-fading.toml");
        let mut cfg = ScenarioConfig::from_toml(text).unwrap();
        cfg.actions.mode = ActionMode::LayerSplit;
        let sc = Arc::new(Scenario::resolve(cfg, &NoTraces).unwrap());
        let per_layer = 4.0 * 5120.0 * 5120.0 * 2.0 + 3.0 * 5120.0 * 13824.0 * 2.0 + 2.0 * 5120.0 * 2.0;
        let kv = 2.0 * (2.0 * 5120.0 * 2.0 * 768.0);
        let fixed = 32000.0 * 5120.0 * 2.0 + 2.0 * 512.0 * (13824.0 + 2.0 * 5120.0) * 2.0;
        assert!(fixed + 5.0 * (per_layer + kv) < 4e9 && fixed + 6.0 * (per_layer + kv) > 4e9);
        let mut env = PartitionEnv::new(sc);
        let (obs, _) = env.reset(Some(2));
        let allowed: Vec<usize> = (0..obs.mask.len()).filter(|&s| obs.mask[s]).collect();
        // The privacy floor (1 layer) removes split 0; memory removes splits above 5.
        assert_eq!(allowed, vec![1, 2, 3, 4, 5]);
    }

    #[test]
    fn repair_moves_the_split_down_and_clamps_window_choices() {
        let text = include_str!("../../configs/s23-llama13b-5g-fading.toml");
        let sc = Arc::new(Scenario::from_toml(text, &NoTraces).unwrap());
        let env = PartitionEnv::new(sc.clone());
        let avail = sc.edge.usable_memory_bytes;
        // Split 40 (edge-only), 4-bit, every window layer full edge: the split falls to the
        // largest allowed value, and the window keeps only what fits.
        let mut action = vec![40, 2];
        action.extend([4, 2, 4, 2, 4, 2, 4, 2]);
        assert!(env.repair(&mut action, avail));
        assert!(action[0] < 40);
        let plan = env.plan_of_action(&action);
        assert!(sc.memory.plan_bytes(&plan) <= avail);
        assert_eq!(action[1], 2, "4-bit is allowed and kept");
        // Repair is deterministic and idempotent.
        let mut again = action.clone();
        assert!(!env.repair(&mut again, avail));
        assert_eq!(again, action);
    }
}
