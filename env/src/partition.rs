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

use crate::accuracy_measurement::{AccuracyMeasurement, MAX_KEPT_MEASUREMENTS};
use crate::api::{Env, EnvError, EnvSpec, StepMetrics, Transition, check_action};
use crate::conditions::{mean_view, slot_view};
use crate::cost::PlanProfile;
use crate::exogenous::{ExoSlot, ExoState};
use crate::expensive::{ComponentModel, ExpensiveOps};
use crate::failure::GeState;
use crate::lyapunov::{RewardTerms, SlotOutcome, VirtualQueues, reward};
use crate::observation::{self, FEATURES, log_mbps};
use crate::plan::{FfnMode, LayerPlacement, Plan, Precision};
use crate::rng::{Stream, StreamRng, derive_seed, item_rng, stream_rng};
use crate::scenario::{ActionMode, InfeasibleAction, Scenario};
use crate::service::{Fallback, RequestCosts, ServeSpec, SlotSource, SlotView, serve};
use crate::spaces::{ActionSpace, ObservationSpace};
use rand::RngExt;
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;
use std::sync::Arc;

/// Observation layout name (recorded with its fingerprint in checkpoints).
pub use crate::observation::LAYOUT_NAME;
/// Indices of the observation features (the table in [`crate::observation`]).
pub use crate::observation::index as obs_index;

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
    /// Admission attempts the cloud API rejected.
    pub rejections: u32,
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
    /// Failed crossing attempts (summed over started requests).
    pub retries: u32,
    /// Admission attempts the cloud API rejected (HTTP 429/529; summed over started requests).
    pub rejections: u32,
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
    /// Evaluations of the expensive component, the accuracy loss: one per crossing of every
    /// request started in the slot ([`crate::accuracy_measurement`]).
    pub expensive_evaluations: u32,
    /// The first [`MAX_KEPT_MEASUREMENTS`] of those evaluations, inputs and value (the rest are
    /// counted, not kept: a bounded, copyable step info).
    pub accuracy_measurements: [AccuracyMeasurement; MAX_KEPT_MEASUREMENTS],
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
        visit("rejections", f64::from(self.rejections));
        visit("sla_violations", f64::from(self.sla_violations));
        visit("latency_sum_s", self.latency_sum_s);
        visit("energy_j", self.energy_j);
        visit("accuracy_loss_sum", self.accuracy_loss_sum);
        visit("cloud_cost_usd", self.cloud_cost_usd);
        visit("split_layer", f64::from(self.plan.split_layer));
        visit("edge_share", self.plan.edge_share);
        visit("repaired", f64::from(u8::from(self.repaired)));
        visit("rate_bps", self.rate_bps);
        visit("expensive_evaluations", f64::from(self.expensive_evaluations));
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

/// "Time since the last failure" before any failure (the top of the feature's range).
const NEVER_FAILED_S: f64 = 9999.0;

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
    link_connected: bool,
    probe_failed: bool,
    time_since_failure_s: f64,
    rtt_last_s: f64,
    cloud_ttft_last_s: f64,
    cloud_rejected_last: bool,
    latency_mean_last_s: f64,
    /// Ring of (backlog fraction, log10 rate, arrival-rate ratio), oldest first.
    history: Vec<f32>,
}

impl Estimators {
    /// Before any measurement the estimates hold the scenario's long-run means (a device knows
    /// its deployment's typical link, load and workload), so every feature is a real estimate
    /// from the first decision on and nothing needs a "not measured yet" special case.
    fn prior(sc: &Scenario, history: usize) -> Self {
        let view = mean_view(sc);
        let mean = view.conditions;
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
            link_connected: true,
            probe_failed: false,
            time_since_failure_s: NEVER_FAILED_S,
            rtt_last_s: 2.0 * mean.one_way_s,
            cloud_ttft_last_s: 2.0 * mean.one_way_s + view.cloud_admission_wait_s,
            cloud_rejected_last: false,
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
    /// Edge compute (and weight loads), uplink, downlink: when each has finished its committed work.
    resources_free_s: [f64; 3],
    plan: Plan,
    plan_ready_s: f64,
    /// When the weight loads issued so far finish (storage reads are serial).
    loads_done_s: f64,
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
    /// Per split: whether the privacy floor allows it, and the edge bytes of the least plan with
    /// it (the window at its minimum in the hierarchical space). Constant for the scenario, so
    /// the split mask written after every slot (and checked in every probe) is a comparison
    /// with the slot's available memory; computed once by the expression the mask used to
    /// evaluate per call, so masks are unchanged to the bit.
    split_floor_ok: Vec<bool>,
    split_bytes: Vec<f64>,
    state: PartitionState,
    scratch: Scratch,
    /// Re-seeds every request's failure draws when non-zero (a look-ahead that knows the future
    /// conditions but not the coin flips: [`Self::set_request_salt`]).
    request_salt: u64,
    /// The episode's exogenous process replayed to the current slot ([`Self::resample_future`]);
    /// a cache, not state.
    exo_replay: Option<ExoState>,
    /// Stands in for the accuracy-loss formula when set (a model-based agent's surrogate;
    /// [`crate::accuracy_measurement`]). Configuration, not state.
    accuracy_model: Option<Arc<dyn ComponentModel>>,
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
        slot_view(self.scenario, &x)
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
            observation: observation::observation_space(
                sc.config.observation.history,
                sc.config.observation.service_age,
            ),
            action,
            max_episode_steps: Some(sc.config.serving.episode_slots),
        };
        let edge_only = Plan::edge_only(l, h, Precision::Bits16);
        let edge_only_profile = PlanProfile::new(&edge_only, &sc.costs);
        let edge_only_bytes = sc.memory.plan_bytes(&edge_only);
        let initial = Self::initial_plan(sc);
        let mut state = Self::fresh_state(sc, 0, &initial);
        // The API contract: step before the first reset is an error (`EnvError::NeedsReset`).
        state.needs_reset = true;
        let scratch = Scratch {
            profile: PlanProfile::new(&initial, &sc.costs),
            costs: RequestCosts::default(),
            arrivals: Vec::with_capacity(64),
            mask: Vec::new(),
            action: Vec::new(),
            records: None,
        };
        let mut env = Self {
            scenario,
            spec,
            mode,
            window,
            head_step,
            edge_only_profile,
            edge_only_bytes,
            split_floor_ok: Vec::new(),
            split_bytes: Vec::new(),
            state,
            scratch,
            request_salt: 0,
            exo_replay: None,
            accuracy_model: None,
        };
        (env.split_floor_ok, env.split_bytes) = (0..=l).map(|s| env.split_least_bytes(s)).unzip();
        env
    }

    /// The same environment (same scenario and action mode, fresh state) with `model` in place
    /// of the accuracy-loss formula: its inputs are (boundary precision bits, relative depth of
    /// the crossing, the request's mean erasure rate), its value the crossing's accuracy loss.
    pub fn with_accuracy_model(&self, model: Arc<dyn ComponentModel>) -> Self {
        let mut env = Self::new(self.scenario.clone());
        env.accuracy_model = Some(model);
        env
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
            resources_free_s: [0.0; 3],
            plan: initial.clone(),
            plan_ready_s: 0.0,
            loads_done_s: 0.0,
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

    /// Draws every request's failures and rejections from another stream (`salt` ≠ 0) than the
    /// episode's own (`salt` = 0, the default). A clairvoyant look-ahead on a restored copy uses
    /// it so that it knows the future conditions (action-independent streams) but not the coin
    /// flips of each request. Not part of the saved state.
    pub fn set_request_salt(&mut self, salt: u64) {
        self.request_salt = salt;
    }

    /// Replaces the future with a sample of it given the present: the exogenous conditions from
    /// the decided slot on ([`ExoState::resampled`]; the slots before it and every process's
    /// state at the end of the previous slot are kept), the arrival times and request lengths from
    /// now on, and every request's failure and rejection draws ([`Self::set_request_salt`]) come
    /// from streams of `salt`. The queue and the requests in flight are kept; a request already
    /// started keeps the service walk it was given on the true future (the state holds when it
    /// finishes, not how). The decided slot's own conditions are resampled too, because a device
    /// decides before it sees them (its observation ends with the previous slot; the first slot of
    /// an episode is kept: it has no previous one). What a model-predictive look-ahead plans on
    /// (`salt` is non-zero: 0 names the episode's own streams).
    pub fn resample_future(&mut self, salt: std::num::NonZeroU64) {
        let salt = salt.get();
        let sc = self.scenario.clone();
        let st = &mut self.state;
        let replay = ExoState::replayed(&sc, st.seed, st.slot.saturating_sub(1), self.exo_replay.take());
        st.exo = st.exo.resampled(&sc, st.seed, &replay, salt);
        self.exo_replay = Some(replay);
        let rs = derive_seed(st.seed, salt);
        st.arrivals_rng = stream_rng(rs, Stream::Arrivals);
        st.lengths_rng = stream_rng(rs, Stream::Lengths);
        // The buffer holds the decided slot, as after a step.
        st.exo.get(&sc, st.slot);
        self.request_salt = salt;
    }

    /// Generates the exogenous conditions of the next `slots` slots now. They do not depend on
    /// actions and are drawn in slot order from their own streams, so this changes nothing but
    /// when they are drawn: a look-ahead that restores one state many times draws them once.
    pub fn prepare_conditions(&mut self, slots: u64) {
        let sc = self.scenario.clone();
        let last = (self.state.slot + slots).min(sc.config.serving.episode_slots);
        self.state.exo.get(&sc, last);
    }

    /// Arrival time of the oldest request still waiting, if any.
    pub fn oldest_queued_arrival_s(&self) -> Option<f64> {
        self.state.queue.front().map(|r| r.arrival_s)
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

    /// The action that describes `plan` ([`Self::plan_of_action`]'s inverse), or `None` when the
    /// action space cannot express it: a layer split at another precision than the scenario's
    /// `layer_split_precision` in the layer-split space, or a plan that places heads or FFN parts
    /// outside the window in the hierarchical one. (Baselines that place heads or FFN parts outside the window have no
    /// action; a learner imitating one must be told so, not given a near plan.) In the
    /// hierarchical space the split is the plan's leading edge layers and the window follows it.
    pub fn action_of_plan(&self, plan: &Plan) -> Option<Vec<usize>> {
        let sc = &*self.scenario;
        let split = plan.leading_edge_layers(sc.n_heads());
        let action = match self.mode {
            ActionMode::LayerSplit => vec![split as usize],
            ActionMode::Hierarchical => {
                let mut action = vec![split as usize, Precision::ALL.iter().position(|&p| p == plan.precision)?];
                let ws = self.window_start(split) as usize;
                for p in plan.layers.get(ws..ws + self.window as usize)? {
                    action.push((u32::from(p.edge_heads) / self.head_step) as usize);
                    action.push(FfnMode::ALL.iter().position(|&f| f == p.ffn)?);
                }
                action
            }
        };
        (self.plan_of_action(&action) == *plan).then_some(action)
    }

    /// The hierarchical action of the whole-layer plan with split `split` at precision index
    /// `precision`: window layers below the split on the edge (all heads, FFN on the edge), the
    /// rest on the cloud.
    pub fn whole_layer_action(&self, split: u32, precision: usize) -> Vec<usize> {
        let ws = self.window_start(split);
        let full_heads = (self.scenario.n_heads() / self.head_step) as usize;
        let mut action = vec![split as usize, precision];
        for i in 0..self.window {
            let edge = ws + i < split;
            action.push(if edge { full_heads } else { 0 });
            action.push(if edge { FfnMode::Edge } else { FfnMode::Cloud }.index());
        }
        action
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

    /// Whether the privacy floor allows `split`, and the edge bytes of the least plan with it
    /// (the tables behind [`Self::split_allowed`]).
    fn split_least_bytes(&self, split: u32) -> (bool, f64) {
        let sc = &*self.scenario;
        let k = sc.config.serving.privacy_floor_layers;
        match self.mode {
            ActionMode::LayerSplit => {
                let l = sc.n_layers();
                let full = sc.memory.layer_bytes(LayerPlacement::edge(sc.n_heads()));
                (split >= k, f64::from(split) * full + sc.memory.fixed_bytes(split > 0, split == l))
            }
            ActionMode::Hierarchical => {
                let ws = self.window_start(split);
                (ws + self.window >= k, self.window_bytes(ws, &[], None))
            }
        }
    }

    fn split_allowed(&self, split: u32, avail: f64) -> bool {
        self.split_floor_ok[split as usize] && self.split_bytes[split as usize] <= avail
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

    /// Whether value `o` of component `prefix.len()` is allowed given the earlier choices, in
    /// either mode: one entry of [`Self::exact_mask`], computed alone so that a step can check
    /// the action it is given without the masks of the values not chosen.
    fn option_allowed(&self, prefix: &[usize], o: usize, avail: f64) -> bool {
        let sc = &*self.scenario;
        match (self.mode, prefix.len()) {
            (ActionMode::LayerSplit, _) | (ActionMode::Hierarchical, 0) => self.split_allowed(o as u32, avail),
            (ActionMode::Hierarchical, 1) => sc.allowed_precisions[o],
            (ActionMode::Hierarchical, n) => {
                let ws = self.window_start(prefix[0] as u32);
                let k = sc.config.serving.privacy_floor_layers;
                let i = (n - 2) / 2;
                let forced = ws + (i as u32) < k;
                let chosen = &prefix[2..2 + 2 * i];
                if (n - 2) % 2 == 0 {
                    // Heads of window layer i, its FFN at the minimum for now.
                    let ffn = if forced { FfnMode::Edge } else { FfnMode::Cloud };
                    let p = LayerPlacement { edge_heads: (o as u32 * self.head_step) as u16, ffn };
                    (!forced || u32::from(p.edge_heads) == sc.n_heads())
                        && self.window_bytes(ws, chosen, Some(p)) <= avail
                } else {
                    let p = self.low_placement(prefix[2 + 2 * i], o);
                    (!forced || p.ffn == FfnMode::Edge) && self.window_bytes(ws, chosen, Some(p)) <= avail
                }
            }
        }
    }

    /// Whether the action's value of every component is allowed given its earlier values (what
    /// [`check_action`] over [`Self::exact_masks`] decides, without the values not chosen).
    fn action_allowed(&self, action: &[usize], avail: f64) -> bool {
        (0..action.len()).all(|c| self.option_allowed(&action[..c], action[c], avail))
    }

    /// Exact mask of component `prefix.len()` given the earlier choices, for either mode.
    fn exact_mask(&self, prefix: &[usize], out: &mut [bool], avail: f64) {
        for (o, slot) in out.iter_mut().enumerate() {
            *slot = self.option_allowed(prefix, o, avail);
        }
    }

    /// Every component's exact mask given the action's earlier values, stacked as
    /// [`check_action`] reads them (`out`: the action space's mask length).
    fn exact_masks(&self, action: &[usize], out: &mut [bool], avail: f64) {
        let mut offset = 0;
        for (c, &n) in self.spec.action.nvec.iter().enumerate() {
            self.exact_mask(&action[..c], &mut out[offset..offset + n], avail);
            offset += n;
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
        // Plan switch: load the weights that are not resident yet. A load occupies the edge (it
        // queues behind the edge's committed work and earlier loads), is charged when issued and
        // runs to completion even if the plan is abandoned in the next slot; the weights count as
        // resident from then on. Requests under a plan with edge work start once every load in
        // flight has finished; cloud-only requests need no edge weights and do not wait.
        if *plan != self.state.plan {
            let missing = self.state.residency.missing_weight_bytes(plan, &sc);
            let load_s = sc.edge.load_time_s(missing);
            let avail = sc.edge.usable_memory_bytes * exo.edge.memory;
            if load_s > 0.0 {
                let st = &mut self.state;
                let load_start = t0.max(st.resources_free_s[0]).max(st.loads_done_s);
                st.loads_done_s = load_start + load_s;
                st.resources_free_s[0] = st.loads_done_s;
            }
            self.state.residency.add(plan);
            self.state.residency.evict_to_fit(plan, &sc, avail);
            self.state.plan = plan.clone();
            self.state.plan_ready_s = if plan.is_cloud_only() { t0 } else { t0.max(self.state.loads_done_s) };
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
            self.start_services(arrival_s, t0, &sc, &exo, &mut info, &mut outcome);
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
        self.start_services(t1, t0, &sc, &exo, &mut info, &mut outcome);
        info.backlog = self.state.queue.len() as u32;
        outcome.backlog_after = self.state.queue.len() as f64;
        outcome.n_started = info.started as usize;
        outcome.dropped = f64::from(info.dropped);
        outcome.failed = f64::from(info.failed_requests);
        info.reward = reward(&sc.config.reward, &outcome, &mut self.state.queues);
        info.energy_j = outcome.energy_j;
        info.plan = PlanSummary {
            split_layer: self.state.plan.leading_edge_layers(sc.n_heads()),
            edge_share: self.scratch.profile.edge_share,
            precision_bits: self.state.plan.precision.bits(),
            crossings_per_token: self.scratch.profile.crossings_per_token(),
            edge_memory_bytes: sc.memory.plan_bytes(&self.state.plan),
        };
        self.update_estimators(&sc, &exo, &info);
        self.state.slot += 1;
        self.state.exo.discard_before(self.state.slot);
        let truncated = self.state.slot >= sc.config.serving.episode_slots;
        self.state.needs_reset = truncated;
        self.write_obs(obs);
        self.write_mask(mask);
        Transition { reward: info.reward.reward, terminated: false, truncated, info }
    }

    /// Starts every queued request that can start before `limit`.
    fn start_services(
        &mut self,
        limit: f64,
        t0: f64,
        sc: &Scenario,
        exo: &ExoSlot,
        info: &mut StepInfo,
        outcome: &mut SlotOutcome,
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
            let fallback = (sc.config.recovery.edge_fallback()
                && self.edge_only_bytes <= avail
                && !st.plan.is_edge_only(sc.n_heads()))
            .then(|| Fallback {
                profile: &self.edge_only_profile,
                load_s: sc.edge.load_time_s(st.residency.missing_weight_bytes_edge_only(sc)),
            });
            let spec = ServeSpec {
                costs: &scratch.costs,
                streaming: scratch.profile.streaming,
                uses_cloud: scratch.profile.uses_cloud(),
                n_in: req.n_in,
                n_out: req.n_out,
                fallback,
                recovery: &sc.config.recovery,
                edge: &sc.edge,
                cloud: &sc.cloud,
            };
            let seed = if self.request_salt == 0 { st.seed } else { derive_seed(st.seed, self.request_salt) };
            let mut rng = item_rng(seed, Stream::Requests, req.id);
            let out = serve(&spec, start, &mut ExoSource { exo: &mut st.exo, scenario: sc }, &mut rng);
            if out.fell_back {
                // The fallback loaded the edge-only weights: they stay resident while they fit.
                let edge_only = Plan::edge_only(sc.n_layers(), sc.n_heads(), Precision::Bits16);
                st.residency.add(&edge_only);
                st.residency.evict_to_fit(&st.plan, sc, avail);
            }
            // Pipelining across concurrent requests: the edge and the radio work through their
            // committed work in order; a request ends no earlier than its own critical path and
            // than each of them finishing its share of the work. The cloud is a batched server:
            // our requests join its batch like every other tenant's (their slowdown is in the
            // load), so they do not queue behind each other there.
            let busy = [out.edge_compute_s, out.tx_s, out.rx_s];
            let mut end = out.end_s;
            for (free_s, b) in st.resources_free_s.iter_mut().zip(busy) {
                if b > 0.0 {
                    *free_s = free_s.max(start) + b;
                    end = end.max(*free_s);
                }
            }
            st.servers_free_s[server] = end;
            let latency_s = end - req.arrival_s;
            let bits = st.plan.precision.bits();
            // The expensive component (a measured perplexity in practice): each crossing's
            // accuracy loss is one evaluation, of the formula or of the model standing in for it.
            let mut accuracy_loss = 0.0;
            for &d in &scratch.profile.tensor_crossing_depths {
                let inputs = AccuracyMeasurement::inputs(bits, d, out.mean_erasure_rate);
                let loss = match &self.accuracy_model {
                    Some(model) => model.value(&inputs),
                    None => sc.accuracy.crossing_loss(bits, d, out.mean_erasure_rate),
                };
                if let Some(kept) = info.accuracy_measurements.get_mut(info.expensive_evaluations as usize) {
                    *kept = AccuracyMeasurement { inputs, loss };
                }
                info.expensive_evaluations += 1;
                accuracy_loss += loss;
            }
            let cloud_cost = out.cloud_gpu_s * sc.config.cloud_load.cost_per_gpu_s_usd();
            let sla_violated = req.deadline_s.is_some_and(|d| latency_s > d);
            info.started += 1;
            st.totals.started += 1;
            info.latency_sum_s += latency_s;
            info.latency_max_s = info.latency_max_s.max(latency_s);
            info.retries += out.failures;
            info.rejections += out.rejections;
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
                    rejections: out.rejections,
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

    fn update_estimators(&mut self, sc: &Scenario, exo: &ExoSlot, info: &StepInfo) {
        let a = sc.config.observation.ewma_alpha;
        let slot_s = sc.config.serving.slot_s;
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
        e.arrival_rate_ewma = mix(e.arrival_rate_ewma, f64::from(info.arrivals) / slot_s);
        e.cloud_load_ewma = mix(e.cloud_load_ewma, exo.cloud_load);
        // The modem's service indicator and the end-of-slot probe (observation module doc).
        e.link_connected = exo.ge == GeState::Good;
        e.probe_failed = exo.probe_failed;
        e.time_since_failure_s =
            if exo.probe_failed { 0.0 } else { (e.time_since_failure_s + slot_s).min(NEVER_FAILED_S) };
        e.rtt_last_s = 2.0 * exo.link.one_way_s;
        if !exo.probe_failed {
            e.cloud_rejected_last = exo.probe_rejected;
            if !exo.probe_rejected {
                e.cloud_ttft_last_s = e.rtt_last_s + sc.config.cloud_load.admission_wait_s(exo.cloud_load);
            }
        }
        e.latency_mean_last_s = if info.started > 0 { info.latency_sum_s / f64::from(info.started) } else { 0.0 };
        let lambda_ref = sc.arrivals.max_rate_per_s().max(1e-9);
        let h = &mut e.history;
        h.copy_within(3.., 0);
        let n = h.len();
        h[n - 3] = backlog_frac as f32;
        h[n - 2] = log_mbps(rate) as f32;
        h[n - 1] = (f64::from(info.arrivals) / slot_s / lambda_ref).min(5.0) as f32;
    }

    fn write_obs(&mut self, obs: &mut [f32]) {
        use observation::index as i;
        let sc = self.scenario.clone();
        let next = self.oracle_conditions_for_obs();
        let st = &self.state;
        let e = &st.est;
        let lambda_ref = sc.arrivals.max_rate_per_s().max(1e-9);
        let gain_var = (e.gain_sq_ewma - e.gain_mean_ewma * e.gain_mean_ewma).max(1e-12);
        let m_hat = e.gain_mean_ewma * e.gain_mean_ewma / gain_var;
        let cv = if e.rate_ewma_bps > 0.0 { e.rate_var_ewma.sqrt() / e.rate_ewma_bps } else { 0.0 };
        let mut raw = [0.0; FEATURES.len()];
        raw[i::BACKLOG_FRACTION] = st.queue.len() as f64 / sc.config.workload.queue_capacity as f64;
        raw[i::BACKLOG_EWMA] = e.backlog_ewma;
        raw[i::ENERGY_QUEUE] = st.queues.energy_j / sc.config.reward.scales.energy_j;
        raw[i::ACCURACY_QUEUE] = st.queues.accuracy / sc.config.reward.scales.accuracy;
        raw[i::BANDWIDTH_LAST] = e.rate_last_bps;
        raw[i::BANDWIDTH_EWMA] = e.rate_ewma_bps;
        raw[i::BANDWIDTH_CV] = cv;
        raw[i::SNR_LAST] = e.snr_last_db;
        raw[i::NAKAGAMI_M] = m_hat;
        raw[i::ARRIVAL_RATE_EWMA] = e.arrival_rate_ewma / lambda_ref;
        raw[i::EDGE_COMPUTE_AVAILABLE] = next.0;
        raw[i::EDGE_MEMORY_AVAILABLE] = next.1;
        raw[i::CLOUD_LOAD_EWMA] = e.cloud_load_ewma;
        raw[i::LINK_CONNECTED] = f64::from(u8::from(e.link_connected));
        raw[i::PROBE_FAILED_LAST] = f64::from(u8::from(e.probe_failed));
        raw[i::TIME_SINCE_FAILURE] = e.time_since_failure_s;
        raw[i::RTT_LAST] = e.rtt_last_s;
        raw[i::CLOUD_TTFT_LAST] = e.cloud_ttft_last_s;
        raw[i::CLOUD_REJECTED_LAST] = f64::from(u8::from(e.cloud_rejected_last));
        raw[i::LAST_SPLIT_FRACTION] = f64::from(st.plan.leading_edge_layers(sc.n_heads())) / f64::from(sc.n_layers());
        raw[i::LAST_EDGE_SHARE] = self.scratch.profile.edge_share;
        raw[i::LAST_PRECISION] = f64::from(st.plan.precision.bits());
        raw[i::LATENCY_MEAN_LAST] = e.latency_mean_last_s / sc.config.reward.scales.latency_s;
        observation::encode_into(&raw, obs);
        let history_end = FEATURES.len() + e.history.len();
        obs[FEATURES.len()..history_end].copy_from_slice(&e.history);
        if sc.config.observation.service_age {
            obs[history_end] = (observation::SERVICE_AGE.encode)(e.time_since_failure_s) as f32;
        }
    }

    /// Edge compute and memory availability of the next slot: the device knows its own load.
    fn oracle_conditions_for_obs(&mut self) -> (f64, f64) {
        let x = self.oracle_conditions();
        (x.edge.compute, x.edge.memory)
    }
}

/// The observation layout with `history` slots of history, then `service_age` if asked
/// ([`crate::observation`]).
pub fn observation_space(history: u32, service_age: bool) -> ObservationSpace {
    observation::observation_space(history, service_age)
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

    /// The accuracy loss is the expensive component ([`crate::accuracy_measurement`]).
    fn expensive() -> Option<ExpensiveOps<Self>> {
        Some(ExpensiveOps::of())
    }

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
        if let Some((c, (&value, &n))) = action.iter().zip(&space.nvec).enumerate().find(|(_, (a, n))| a >= n) {
            return Err(EnvError::ActionOutOfRange { component: c, name: space.names[c].clone(), value, n });
        }
        let mut action_buf = std::mem::take(&mut self.scratch.action);
        action_buf.clear();
        action_buf.extend_from_slice(action);
        // The chosen value of each component checked alone (a learner's probes step here ~100
        // times per real step); only an action that fails is checked against the whole exact
        // (conditional) masks, for the error that names the component, or the repair.
        let verdict = if self.action_allowed(&action_buf, avail) {
            Ok(())
        } else {
            let mut exact = std::mem::take(&mut self.scratch.mask);
            exact.resize(space.mask_len(), false);
            self.exact_masks(action, &mut exact, avail);
            let verdict = check_action(&self.spec.action, &action_buf, &exact);
            self.scratch.mask = exact;
            verdict
        };
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

    fn default_completion(&self, prefix: &[usize], out: &mut [usize]) -> bool {
        let n = self.spec.action.nvec.len();
        if self.mode != ActionMode::Hierarchical || prefix.is_empty() || prefix.len() + out.len() != n {
            return false;
        }
        let full = self.whole_layer_action(prefix[0] as u32, prefix.get(1).copied().unwrap_or(0));
        out.copy_from_slice(&full[prefix.len()..]);
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

    /// The default completion of every split and precision is the whole-layer plan of that
    /// split (GPT-2 Medium: 24 layers, 16 heads; window 4, head step 4 → head indices 0..=4).
    #[test]
    fn default_completion_of_a_split_is_its_whole_layer_plan() {
        let text = CALM.replace("mode = \"layer-split\"", "mode = \"hierarchical\"\nwindow_layers = 4\nhead_step = 4");
        let env = PartitionEnv::new(Arc::new(Scenario::from_toml(&text, &NoTraces).unwrap()));
        let n = env.spec().action.nvec.len();
        assert_eq!(n, 2 + 2 * 4);
        for split in 0..=24u32 {
            for (p, precision) in Precision::ALL.into_iter().enumerate() {
                let mut rest = vec![0; n - 2];
                assert!(env.default_completion(&[split as usize, p], &mut rest));
                let mut action = vec![split as usize, p];
                action.extend_from_slice(&rest);
                let plan = Plan::layer_split(24, 16, split, precision);
                assert_eq!(env.plan_of_action(&action), plan, "split {split} precision {p}");
                assert_eq!(env.whole_layer_action(split, p), action);
            }
        }
        // action_of_plan inverts plan_of_action on whole-layer plans, and refuses the rest.
        for split in 0..=24u32 {
            let plan = Plan::layer_split(24, 16, split, Precision::Bits8);
            assert_eq!(env.action_of_plan(&plan), Some(env.whole_layer_action(split, 1)), "split {split}");
        }
        let mut partial = Plan::layer_split(24, 16, 12, Precision::Bits16);
        partial.layers[12].edge_heads = 4; // a window layer's heads: expressible
        assert_eq!(env.plan_of_action(&env.action_of_plan(&partial).unwrap()), partial);
        partial.layers[20].edge_heads = 4; // outside the window [10, 14): not expressible
        assert_eq!(env.action_of_plan(&partial), None);
        // Given the split only, the precision is completed too (16-bit, index 0).
        let mut rest = vec![0; n - 1];
        assert!(env.default_completion(&[12], &mut rest));
        assert_eq!(rest[..3], [0, 4, 2]);
        assert_eq!(rest[7..], [0, 0]);
        // Wrong lengths and the layer-split space have no default.
        assert!(!env.default_completion(&[12], &mut [0; 3]));
        let flat = PartitionEnv::new(calm());
        assert!(!flat.default_completion(&[3], &mut []));
        // The layer-split space: the split at the scenario's precision (16-bit here), nothing else.
        assert_eq!(flat.action_of_plan(&Plan::layer_split(24, 16, 5, Precision::Bits16)), Some(vec![5]));
        assert_eq!(flat.action_of_plan(&Plan::layer_split(24, 16, 5, Precision::Bits8)), None);
        assert_eq!(flat.action_of_plan(&Plan::cloud_only(23, Precision::Bits16)), None, "a plan of the wrong shape");
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

    proptest::proptest! {
        /// A step checks only the chosen value of each component (`action_allowed`); it must
        /// decide what `check_action` over the whole exact masks decides, for any action (legal
        /// or not) and any memory left, in both spaces, with and without a privacy floor (8
        /// layers), on the memory-tight S23 and the Jetson.
        #[test]
        fn the_steps_check_of_the_chosen_values_agrees_with_the_exact_masks(
            which in 0usize..4,
            values in proptest::collection::vec(0usize..64, 10),
            fraction in 0.0f64..1.2,
        ) {
            let s23 = include_str!("../../configs/s23-llama13b-5g-fading.toml");
            let jetson = include_str!("../../configs/jetson-llama7b-lte.toml");
            let (text, mode, floor) = [
                (s23, ActionMode::Hierarchical, 0),
                (s23, ActionMode::Hierarchical, 8),
                (jetson, ActionMode::Hierarchical, 0),
                (jetson, ActionMode::LayerSplit, 8),
            ][which];
            let mut cfg = ScenarioConfig::from_toml(text).unwrap();
            cfg.actions.mode = mode;
            cfg.serving.privacy_floor_layers = floor;
            let env = PartitionEnv::new(Arc::new(Scenario::resolve(cfg, &NoTraces).unwrap()));
            let nvec = env.spec().action.nvec.clone();
            let action: Vec<usize> = nvec.iter().zip(&values).map(|(&n, &v)| v % n).collect();
            let avail = env.scenario.edge.usable_memory_bytes * fraction;
            let mut masks = vec![false; env.spec().action.mask_len()];
            env.exact_masks(&action, &mut masks, avail);
            proptest::prop_assert_eq!(
                env.action_allowed(&action, avail),
                check_action(&env.spec().action, &action, &masks).is_ok()
            );
        }
    }

    fn calm_with(extra: &str, replace: &[(&str, &str)]) -> Arc<Scenario> {
        let mut text = CALM.to_string();
        for (a, b) in replace {
            assert!(text.contains(a), "{a}");
            text = text.replace(a, b);
        }
        text.push_str(extra);
        Arc::new(Scenario::from_toml(&text, &NoTraces).unwrap())
    }

    #[test]
    fn weight_loads_run_to_completion_when_the_plan_is_abandoned() {
        // 0.1 s slots; cloud-only → edge-only loads 0.355 s of weights at t = 0. Switching back to
        // cloud-only at 0.1 s used to cancel the load (edge-only at 0.2 s then started at once
        // with the weights marked resident for free). The load now runs to 0.355 s: it occupies
        // the edge, is charged once, and edge-only at 0.2 s waits for it.
        let sc = calm_with("", &[("episode_slots = 400", "episode_slots = 400\n        slot_s = 0.1")]);
        let mut env = PartitionEnv::new(sc.clone());
        let (mut f, mut m) = env.buffers();
        env.reset_into(Some(1), &mut f, &mut m);
        let (l, h) = (sc.n_layers(), sc.n_heads());
        let edge = Plan::edge_only(l, h, Precision::Bits16);
        let cloud = Plan::cloud_only(l, Precision::Bits16);
        let load = sc.costs.total_weight_bytes() / 2e9;
        let t = env.step_plan_into(&edge, &mut f, &mut m).unwrap();
        assert!((t.info.switch_load_s - load).abs() < 1e-9);
        assert!((env.state.resources_free_s[0] - load).abs() < 1e-9, "the load occupies the edge");
        let t = env.step_plan_into(&cloud, &mut f, &mut m).unwrap();
        assert_eq!(t.info.switch_energy_j, 0.0);
        assert!((env.state.plan_ready_s - 0.1).abs() < 1e-12, "cloud-only needs no edge weights");
        let t = env.step_plan_into(&edge, &mut f, &mut m).unwrap();
        assert_eq!((t.info.switch_load_s, t.info.switch_energy_j), (0.0, 0.0), "charged once");
        assert!((env.state.plan_ready_s - load).abs() < 1e-9, "{} vs {load}", env.state.plan_ready_s);
    }

    #[test]
    fn own_concurrent_requests_share_the_batched_cloud() {
        // Jetson + LLaMA-7B, cloud at ρ = 0.9, one request every 2 s, cloud-only, no failures.
        // Each request waits ~4.5 s for admission and decodes ~3× slower per token, but our
        // requests join the batch together instead of queueing behind each other in the cloud:
        // the old model gave ~110 s latency and 14 % drops here.
        let text = include_str!("../../configs/jetson-llama7b-lte.toml");
        let mut cfg = ScenarioConfig::from_toml(text).unwrap();
        cfg.cloud_load.levels = vec![0.9];
        cfg.cloud_load.mean_dwell_s = vec![3600.0];
        cfg.cloud_load.jitter_sd = 0.0;
        cfg.failures = crate::failure::FailureConfig::default();
        cfg.workload.arrivals = toml::from_str("kind = \"constant\"\nrate_per_s = 0.5").unwrap();
        cfg.serving.concurrency = 8;
        let sc = Arc::new(Scenario::resolve(cfg, &NoTraces).unwrap());
        let mut env = PartitionEnv::new(sc.clone());
        env.set_recording(true);
        let (mut f, mut m) = env.buffers();
        env.reset_into(Some(3), &mut f, &mut m);
        let cloud = Plan::cloud_only(sc.n_layers(), Precision::Bits16);
        let mut dropped = 0;
        for _ in 0..600 {
            dropped += env.step_plan_into(&cloud, &mut f, &mut m).unwrap().info.dropped;
        }
        let recs = env.take_records();
        let mean = recs.iter().map(|r| r.latency_s).sum::<f64>() / recs.len() as f64;
        let service = recs.iter().map(|r| r.end_s - r.start_s).sum::<f64>() / recs.len() as f64;
        assert_eq!(dropped, 0);
        assert!(mean > 4.5 && mean < 1.2 * service + 0.5, "mean latency {mean} s, mean service {service} s");
        assert!(mean < 15.0, "{mean}");
    }

    #[test]
    fn observation_reports_link_state_probe_failures_and_cloud_rejections() {
        use crate::observation::{decode, index as i};
        // Calm: connected, no failed probe, RTT 40 ms, TTFT = RTT at an idle cloud.
        let sc = calm();
        let mut env = PartitionEnv::new(sc.clone());
        let (mut obs, _) = env.reset(Some(4));
        let t = act_and_step(&mut env, &mut CloudOnly, &mut obs).unwrap();
        let _ = t;
        let o = &obs.features;
        assert_eq!(decode(o, i::LINK_CONNECTED), 1.0);
        assert_eq!(decode(o, i::PROBE_FAILED_LAST), 0.0);
        assert!((decode(o, i::RTT_LAST) - 0.04).abs() < 1e-6);
        assert!((decode(o, i::CLOUD_TTFT_LAST) - 0.04).abs() < 1e-5);
        assert_eq!(decode(o, i::CLOUD_REJECTED_LAST), 0.0);
        assert!(decode(o, i::TIME_SINCE_FAILURE) > 9000.0, "never failed");
        // A link stuck in the Bad state (every crossing fails) and an API rejecting every
        // request: the modem reports no service, the probe fails at once, and, the probe's
        // crossing having failed, the rejection feature keeps its last value.
        let ge = "\n[failures.gilbert_elliott]\nmean_good_s = 1e-6\nmean_bad_s = 1e9\n\
                  failure_probability_good = 0.0\nfailure_probability_bad = 1.0\n";
        let sc = calm_with(ge, &[]);
        let mut env = PartitionEnv::new(sc.clone());
        let (mut obs, _) = env.reset(Some(4));
        act_and_step(&mut env, &mut EdgeOnly, &mut obs).unwrap();
        let o = &obs.features;
        assert_eq!(decode(o, i::LINK_CONNECTED), 0.0);
        assert_eq!(decode(o, i::PROBE_FAILED_LAST), 1.0);
        assert_eq!(decode(o, i::TIME_SINCE_FAILURE), 0.0);
        // A healthy link to an API that rejects everything: the probe reaches it and is rejected.
        let reject = "\n[cloud_load]\nlevels = [0.0]\nreject_probability = [1.0]\n";
        let sc = calm_with(reject, &[]);
        let mut env = PartitionEnv::new(sc.clone());
        let (mut obs, _) = env.reset(Some(4));
        let t = act_and_step(&mut env, &mut CloudOnly, &mut obs).unwrap();
        assert_eq!(decode(&obs.features, i::CLOUD_REJECTED_LAST), 1.0);
        // No request gets through: each one fails after the SDK's 3 attempts.
        assert_eq!(t.info.failed_requests, t.info.started);
    }

    /// `[observation] service_age` appends the time since the last failed probe, linear (s / 30,
    /// clamped to 4), and changes nothing else: side by side with the default layout, on a link
    /// that fails and recovers (Gilbert–Elliott, 1 s slots), every other entry is equal and the new
    /// one is `time_since_failure` decoded, over 30, up to 2 minutes.
    #[test]
    fn the_optional_service_age_is_the_time_since_failure_on_a_linear_scale() {
        use crate::observation::{FEATURES, decode, index as i};
        let ge = "\n[failures.gilbert_elliott]\nmean_good_s = 40.0\nmean_bad_s = 20.0\n\
                  failure_probability_good = 0.0\nfailure_probability_bad = 1.0\n";
        let plain = calm_with(ge, &[]);
        let aged = calm_with(&format!("{ge}\n[observation]\nservice_age = true\n"), &[]);
        assert_eq!(aged.config.observation.history, plain.config.observation.history);
        let (mut a, mut b) = (PartitionEnv::new(plain), PartitionEnv::new(aged));
        let n = a.spec().observation.dim();
        assert_eq!(b.spec().observation.dim(), n + 1);
        assert_eq!(b.spec().observation.features[n].name, "service_age");
        let ((mut fa, mut ma), (mut fb, mut mb)) = (a.buffers(), b.buffers());
        a.reset_into(Some(7), &mut fa, &mut ma);
        b.reset_into(Some(7), &mut fb, &mut mb);
        assert_eq!(fb[n], 4.0, "never failed: the clamp");
        let (l, h) = (a.scenario.n_layers(), a.scenario.n_heads());
        let plans = [Plan::cloud_only(l, Precision::Bits16), Plan::edge_only(l, h, Precision::Bits16)];
        let (mut ages, mut failed) = (std::collections::BTreeSet::new(), 0);
        for t in 0..400 {
            let plan = &plans[t % 7 / 4];
            let (ta, tb) =
                (a.step_plan_into(plan, &mut fa, &mut ma).unwrap(), b.step_plan_into(plan, &mut fb, &mut mb).unwrap());
            assert_eq!(ta.reward, tb.reward, "slot {t}");
            assert_eq!(fa[..], fb[..n], "slot {t}");
            assert_eq!(ma, mb, "slot {t}");
            let since = decode(&fa, i::TIME_SINCE_FAILURE);
            let want = (since / 30.0).min(4.0);
            assert!((f64::from(fb[n]) - want).abs() < 1e-4 * want.max(1.0), "slot {t}: {} against {want}", fb[n]);
            assert_eq!(fb.len(), FEATURES.len() + 3 * 10 + 1);
            failed += usize::from(since == 0.0);
            ages.insert(fb[n].to_bits());
        }
        assert!(failed > 10 && ages.len() > 30, "the link failed {failed} times and showed {} ages", ages.len());
    }
}
