//! Lyapunov drift-plus-penalty reward (system-model.md §7): virtual queues for the time-average
//! energy and accuracy constraints, the normalised quadratic Lyapunov function and its one-slot
//! drift, the (adaptive) trade-off weight V, the penalty, and the pluggable rewards built from
//! them. Pure functions: the env calls [`reward`] once per slot with the slot's [`SlotOutcome`];
//! the one-slot drift-plus-penalty baseline calls [`reward_terms`] on candidate outcomes without
//! touching the real queues.
//!
//! Definitions (Neely, "Stochastic Network Optimization with Application to Communication and
//! Queueing Systems", 2010, ch. 3–4; Splitwise, arXiv 2512.23310):
//! - energy queue Z_E(t+1) = max(Z_E(t) + e(t) − P_budget·slot_s, 0), e(t) the edge energy spent
//!   in the slot: keeps the time-average edge power at or below P_budget;
//! - accuracy queue Z_A(t+1) = max(Z_A(t) + Σ_j (a_j − a_max), 0) over the requests j whose
//!   service started in the slot: keeps the **per-request** average accuracy loss at or below
//!   a_max (a per-slot form would let idle slots bank budget for bad requests). An absent budget
//!   keeps its queue at 0;
//! - Θ = (Q/q_scale, Z_E/energy_scale_j, Z_A/accuracy_scale): normalised so the three queues are
//!   dimensionless and comparable, L(Θ) = ½ΣΘ², drift Δ = L(Θ(t+1)) − L(Θ(t));
//! - penalty p = w_L·latency/latency_scale_s + w_E·energy/energy_scale_j +
//!   w_A·accuracy/accuracy_scale + w_C·cloud_cost/cloud_cost_scale, each a **sum over the
//!   requests whose service started in the slot** (system-model.md §1), energy including
//!   plan-switch energy. Summed latency per slot is, by Little's law (L = λW), the time-average
//!   number of requests in the system times the slot length, so the latency term also prices
//!   congestion;
//! - V(Q) = V_min + (V_max − V_min)·exp(−Q/Q_0) (Splitwise's code): favour the penalty when the
//!   queue is short, stability when it grows. V is evaluated at the backlog seen at decision time
//!   (`backlog_before`).

use crate::api::StepMetrics;
use crate::validate::{InvalidField, Validation, in_range, non_negative, positive};
use serde::{Deserialize, Serialize};

/// V_min of Splitwise's released code (adaptive V).
pub const SPLITWISE_V_MIN: f64 = 0.1;
/// V_max of Splitwise's released code.
pub const SPLITWISE_V_MAX: f64 = 10.0;
/// Q_0 (requests) of Splitwise's released code.
pub const SPLITWISE_Q0: f64 = 50.0;
/// Latency weight w_L of Splitwise's released code.
pub const SPLITWISE_W_LATENCY: f64 = 1.0;
/// Energy weight w_E of Splitwise's released code.
pub const SPLITWISE_W_ENERGY: f64 = 0.5;
/// Accuracy weight w_A of Splitwise's released code.
pub const SPLITWISE_W_ACCURACY: f64 = 2.0;
/// Cloud-cost weight w_C. Assumption: 0 (Splitwise prices no cloud time); scenarios with a busy,
/// billed cloud (SplitLLM's premise) set it.
pub const DEFAULT_W_CLOUD_COST: f64 = 0.0;
/// Load weight of the ALS reward. Assumption: 1 (ALS publishes no weight we can reuse).
pub const DEFAULT_W_LOAD: f64 = 1.0;
/// Penalty per dropped request (queue overflow), in the same normalised units as the other
/// terms: a drop costs as much as `DEFAULT_W_DROP` latency-scale units (10 s at the default
/// 1 s scale), more than any request the shipped scenarios serve within its deadline. Without
/// it a policy could let the finite queue overflow at no cost but bounded drift (assumption;
/// the papers assume infinite queues).
pub const DEFAULT_W_DROP: f64 = 10.0;
/// Backlog normaliser (requests). Assumption: Splitwise's Q_0, the backlog at which V has
/// fallen to 1/e of its range.
pub const DEFAULT_BACKLOG_SCALE_REQUESTS: f64 = SPLITWISE_Q0;
/// Latency normaliser (s). Assumption: one default slot (system-model.md §1).
pub const DEFAULT_LATENCY_SCALE_S: f64 = 1.0;
/// Energy normaliser (J). Assumption: a Jetson Orin NX in its 10 W mode for one 1 s slot.
pub const DEFAULT_ENERGY_SCALE_J: f64 = 10.0;
/// Accuracy normaliser (fraction). Assumption: Splitwise's reported bound of < 4 % loss.
pub const DEFAULT_ACCURACY_SCALE: f64 = 0.04;
/// Cloud-cost normaliser (cost units of the cloud model). Assumption: 1.
pub const DEFAULT_CLOUD_COST_SCALE: f64 = 1.0;
/// Reward divisor. Assumption: V_max, so that V·p at an empty queue is O(p).
pub const DEFAULT_REWARD_SCALE: f64 = SPLITWISE_V_MAX;

// ---------------------------------------------------------------------------------------------
// Configuration
// ---------------------------------------------------------------------------------------------

/// Which reward the env returns (every term is reported whatever the choice).
#[derive(Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "kebab-case")]
pub enum RewardKind {
    /// r = −(Δ + V·p)/reward_scale: the standard drift-plus-penalty form (Neely 2010).
    #[default]
    DriftPlusPenalty,
    /// r = −(V·Δ + p)/reward_scale: V multiplies the drift, as in Splitwise's released code.
    DriftPlusPenaltyVOnDrift,
    /// r = −p/reward_scale.
    Penalty,
    /// ALS-style (Chen et al., arXiv 2406.02616): an inference-quality term plus a load term,
    /// r = −(w_A·accuracy/accuracy_scale + w_load·edge_load_fraction)/reward_scale, where
    /// accuracy is the summed loss fraction and edge_load_fraction the summed edge share of each
    /// request's compute (requests started in the slot). ALS rewards the perplexity kept at the
    /// split and charges the user equipment's computational load; we express both as costs on
    /// the same per-request sums as the other rewards.
    Als,
}

/// The trade-off weight V.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum VConfig {
    Fixed {
        v: f64,
    },
    /// V(Q) = v_min + (v_max − v_min)·exp(−Q/q0).
    Adaptive {
        v_min: f64,
        v_max: f64,
        q0: f64,
    },
}

impl Default for VConfig {
    fn default() -> Self {
        Self::Adaptive { v_min: SPLITWISE_V_MIN, v_max: SPLITWISE_V_MAX, q0: SPLITWISE_Q0 }
    }
}

impl VConfig {
    pub fn validate(&self) -> Validation {
        match *self {
            Self::Fixed { v } => non_negative("v", v, "penalty weight V"),
            Self::Adaptive { v_min, v_max, q0 } => {
                non_negative("v_min", v_min, "V at a long queue")?;
                non_negative("v_max", v_max, "V at an empty queue")?;
                if v_max < v_min {
                    return Err(InvalidField::new("v_max", v_max, format!("must be >= v_min ({v_min})")));
                }
                positive("q0", q0, "backlog scale of the decay, requests")
            }
        }
    }

    pub fn v(&self, backlog: f64) -> f64 {
        match *self {
            Self::Fixed { v } => v,
            Self::Adaptive { v_min, v_max, q0 } => adaptive_v(backlog, v_min, v_max, q0),
        }
    }
}

/// V(q) = v_min + (v_max − v_min)·exp(−q/q0) (Splitwise's code).
pub fn adaptive_v(q: f64, v_min: f64, v_max: f64, q0: f64) -> f64 {
    v_min + (v_max - v_min) * (-q / q0).exp()
}

/// Penalty and reward weights (dimensionless).
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct RewardWeights {
    pub latency: f64,
    pub energy: f64,
    pub accuracy: f64,
    pub cloud_cost: f64,
    /// Only the ALS reward uses it.
    pub load: f64,
    /// Per dropped request ([`DEFAULT_W_DROP`]).
    pub drop: f64,
}

impl Default for RewardWeights {
    fn default() -> Self {
        Self {
            latency: SPLITWISE_W_LATENCY,
            energy: SPLITWISE_W_ENERGY,
            accuracy: SPLITWISE_W_ACCURACY,
            cloud_cost: DEFAULT_W_CLOUD_COST,
            load: DEFAULT_W_LOAD,
            drop: DEFAULT_W_DROP,
        }
    }
}

impl RewardWeights {
    pub fn validate(&self) -> Validation {
        non_negative("latency", self.latency, "weight")?;
        non_negative("energy", self.energy, "weight")?;
        non_negative("accuracy", self.accuracy, "weight")?;
        non_negative("cloud_cost", self.cloud_cost, "weight")?;
        non_negative("load", self.load, "weight")?;
        non_negative("drop", self.drop, "weight per dropped request")
    }
}

/// Normalisers that make the terms dimensionless and comparable.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct RewardScales {
    pub backlog_requests: f64,
    pub latency_s: f64,
    pub energy_j: f64,
    pub accuracy: f64,
    pub cloud_cost: f64,
    pub reward: f64,
}

impl Default for RewardScales {
    fn default() -> Self {
        Self {
            backlog_requests: DEFAULT_BACKLOG_SCALE_REQUESTS,
            latency_s: DEFAULT_LATENCY_SCALE_S,
            energy_j: DEFAULT_ENERGY_SCALE_J,
            accuracy: DEFAULT_ACCURACY_SCALE,
            cloud_cost: DEFAULT_CLOUD_COST_SCALE,
            reward: DEFAULT_REWARD_SCALE,
        }
    }
}

impl RewardScales {
    pub fn validate(&self) -> Validation {
        positive("backlog_requests", self.backlog_requests, "requests")?;
        positive("latency_s", self.latency_s, "s")?;
        positive("energy_j", self.energy_j, "J")?;
        positive("accuracy", self.accuracy, "loss fraction")?;
        positive("cloud_cost", self.cloud_cost, "cost units")?;
        positive("reward", self.reward, "reward divisor")
    }
}

/// The `reward` section of a scenario.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Default)]
#[serde(deny_unknown_fields, default)]
pub struct RewardConfig {
    pub kind: RewardKind,
    pub v: VConfig,
    pub weights: RewardWeights,
    pub scales: RewardScales,
    /// P_budget (W): bound on the time-average edge power; none ⇒ no energy queue.
    pub energy_budget_w: Option<f64>,
    /// a_max: bound on the per-request average accuracy loss fraction; none ⇒ no accuracy queue.
    pub accuracy_budget: Option<f64>,
}

impl RewardConfig {
    pub fn validate(&self) -> Validation {
        self.v.validate().map_err(|e| e.under("v"))?;
        self.weights.validate().map_err(|e| e.under("weights"))?;
        self.scales.validate().map_err(|e| e.under("scales"))?;
        if let Some(p) = self.energy_budget_w {
            positive("energy_budget_w", p, "time-average edge power budget, W")?;
        }
        if let Some(a) = self.accuracy_budget {
            in_range("accuracy_budget", a, 0.0, 1.0, "per-request average loss fraction")?;
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// Queues, Lyapunov function, reward
// ---------------------------------------------------------------------------------------------

/// The virtual queues Z_E (J) and Z_A (loss fraction).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct VirtualQueues {
    pub energy_j: f64,
    pub accuracy: f64,
}

impl VirtualQueues {
    /// The queues after a slot (pure).
    pub fn next(&self, config: &RewardConfig, outcome: &SlotOutcome) -> Self {
        Self {
            energy_j: energy_queue_next(
                self.energy_j,
                outcome.edge_energy_spent_j,
                config.energy_budget_w.map(|p| p * outcome.slot_s),
            ),
            accuracy: accuracy_queue_next(
                self.accuracy,
                outcome.accuracy_loss,
                outcome.n_started,
                config.accuracy_budget,
            ),
        }
    }
}

/// Z_E(t+1) = max(Z_E + e − e_budget, 0); 0 without a budget.
pub fn energy_queue_next(z_j: f64, spent_j: f64, budget_j: Option<f64>) -> f64 {
    match budget_j {
        Some(b) => (z_j + spent_j - b).max(0.0),
        None => 0.0,
    }
}

/// Z_A(t+1) = max(Z_A + Σ_j a_j − n·a_max, 0) over the n requests started; 0 without a budget.
pub fn accuracy_queue_next(z: f64, accuracy_sum: f64, n_started: usize, a_max: Option<f64>) -> f64 {
    match a_max {
        Some(a) => (z + accuracy_sum - n_started as f64 * a).max(0.0),
        None => 0.0,
    }
}

/// L(Θ) = ½ΣΘ².
pub fn lyapunov_function(theta: &[f64]) -> f64 {
    0.5 * theta.iter().map(|x| x * x).sum::<f64>()
}

/// Θ = (Q/q_scale, Z_E/energy_scale_j, Z_A/accuracy_scale).
pub fn normalised_state(scales: &RewardScales, backlog: f64, queues: &VirtualQueues) -> [f64; 3] {
    [backlog / scales.backlog_requests, queues.energy_j / scales.energy_j, queues.accuracy / scales.accuracy]
}

/// What happened in one slot. Latency, energy, accuracy, cloud cost and edge load are sums over
/// the requests whose service started in the slot (their full values, known when the plan is
/// fixed); `edge_energy_spent_j` is the edge energy actually spent during the slot (for Z_E).
/// An env that books a request's whole energy at its start may pass the same number for both.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SlotOutcome {
    pub slot_s: f64,
    /// Q(t) (requests), at decision time.
    pub backlog_before: f64,
    /// Q(t+1) (requests).
    pub backlog_after: f64,
    pub n_started: usize,
    pub latency_s: f64,
    /// Edge energy of the started requests plus plan-switch energy (penalty).
    pub energy_j: f64,
    pub edge_energy_spent_j: f64,
    /// Summed accuracy loss fraction.
    pub accuracy_loss: f64,
    pub cloud_cost: f64,
    /// Summed edge share of each started request's compute (ALS load term).
    pub edge_load_fraction: f64,
    /// Requests dropped on arrival because the queue was full.
    pub dropped: f64,
    /// Requests that failed for good (the cloud path gave up without a fallback): not served,
    /// so charged like a drop, on top of their time to give up in the latency term.
    pub failed: f64,
}

/// Every term of a slot's reward, for the step info and the evaluation report.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RewardTerms {
    pub backlog_before: f64,
    pub backlog_after: f64,
    pub energy_queue_before_j: f64,
    pub energy_queue_after_j: f64,
    pub accuracy_queue_before: f64,
    pub accuracy_queue_after: f64,
    pub lyapunov_before: f64,
    pub lyapunov_after: f64,
    pub drift: f64,
    pub v: f64,
    /// w_L·latency/latency_scale_s (and so on for the others).
    pub latency_term: f64,
    pub energy_term: f64,
    pub accuracy_term: f64,
    pub cloud_cost_term: f64,
    /// w_load·edge_load_fraction (ALS reward only; reported always).
    pub load_term: f64,
    /// w_drop·(dropped + failed): requests not served.
    pub drop_term: f64,
    /// Sum of the latency, energy, accuracy, cloud-cost and drop terms (not the load term).
    pub penalty: f64,
    /// Δ + V·p, the quantity the one-slot minimiser minimises, whatever the reward kind.
    pub drift_plus_penalty: f64,
    pub reward: f64,
}

impl StepMetrics for RewardTerms {
    fn visit_scalars(&self, visit: &mut dyn FnMut(&'static str, f64)) {
        visit("reward", self.reward);
        visit("backlog", self.backlog_after);
        visit("virtual_queue_energy_j", self.energy_queue_after_j);
        visit("virtual_queue_accuracy", self.accuracy_queue_after);
        visit("lyapunov", self.lyapunov_after);
        visit("drift", self.drift);
        visit("lyapunov_v", self.v);
        visit("penalty", self.penalty);
        visit("penalty_latency", self.latency_term);
        visit("penalty_energy", self.energy_term);
        visit("penalty_accuracy", self.accuracy_term);
        visit("penalty_cloud_cost", self.cloud_cost_term);
        visit("load_term", self.load_term);
        visit("penalty_drop", self.drop_term);
        visit("drift_plus_penalty", self.drift_plus_penalty);
    }
}

/// The terms of a slot given the queues before it, and the queues after it (pure: candidate
/// evaluation for the one-slot minimiser).
pub fn reward_terms(
    config: &RewardConfig,
    outcome: &SlotOutcome,
    queues: &VirtualQueues,
) -> (RewardTerms, VirtualQueues) {
    let after = queues.next(config, outcome);
    let (w, s) = (&config.weights, &config.scales);
    let lyapunov_before = lyapunov_function(&normalised_state(s, outcome.backlog_before, queues));
    let lyapunov_after = lyapunov_function(&normalised_state(s, outcome.backlog_after, &after));
    let drift = lyapunov_after - lyapunov_before;
    let v = config.v.v(outcome.backlog_before);

    let latency_term = w.latency * outcome.latency_s / s.latency_s;
    let energy_term = w.energy * outcome.energy_j / s.energy_j;
    let accuracy_term = w.accuracy * outcome.accuracy_loss / s.accuracy;
    let cloud_cost_term = w.cloud_cost * outcome.cloud_cost / s.cloud_cost;
    let load_term = w.load * outcome.edge_load_fraction;
    let drop_term = w.drop * (outcome.dropped + outcome.failed);
    let penalty = latency_term + energy_term + accuracy_term + cloud_cost_term + drop_term;
    let drift_plus_penalty = drift + v * penalty;

    let cost = match config.kind {
        RewardKind::DriftPlusPenalty => drift_plus_penalty,
        RewardKind::DriftPlusPenaltyVOnDrift => v * drift + penalty,
        RewardKind::Penalty => penalty,
        RewardKind::Als => accuracy_term + load_term,
    };
    let terms = RewardTerms {
        backlog_before: outcome.backlog_before,
        backlog_after: outcome.backlog_after,
        energy_queue_before_j: queues.energy_j,
        energy_queue_after_j: after.energy_j,
        accuracy_queue_before: queues.accuracy,
        accuracy_queue_after: after.accuracy,
        lyapunov_before,
        lyapunov_after,
        drift,
        v,
        latency_term,
        energy_term,
        accuracy_term,
        cloud_cost_term,
        load_term,
        drop_term,
        penalty,
        drift_plus_penalty,
        reward: -cost / s.reward,
    };
    (terms, after)
}

/// The slot's reward terms; advances `queues` to Z(t+1).
pub fn reward(config: &RewardConfig, outcome: &SlotOutcome, queues: &mut VirtualQueues) -> RewardTerms {
    let (terms, after) = reward_terms(config, outcome, queues);
    *queues = after;
    terms
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    /// Fixed V = 2, scales (Q 10, latency 2 s, energy 4 J, accuracy 0.05, cloud 0.5, reward 10),
    /// weights (1, 0.5, 2, cloud 0.2, load 1), P_budget 3 W, a_max 0.02.
    fn config(kind: RewardKind) -> RewardConfig {
        RewardConfig {
            kind,
            v: VConfig::Fixed { v: 2.0 },
            weights: RewardWeights {
                latency: 1.0,
                energy: 0.5,
                accuracy: 2.0,
                cloud_cost: 0.2,
                load: 1.0,
                drop: DEFAULT_W_DROP,
            },
            scales: RewardScales {
                backlog_requests: 10.0,
                latency_s: 2.0,
                energy_j: 4.0,
                accuracy: 0.05,
                cloud_cost: 0.5,
                reward: 10.0,
            },
            energy_budget_w: Some(3.0),
            accuracy_budget: Some(0.02),
        }
    }

    fn outcome() -> SlotOutcome {
        SlotOutcome {
            slot_s: 1.0,
            backlog_before: 10.0,
            backlog_after: 20.0,
            n_started: 2,
            latency_s: 3.0,
            energy_j: 6.0,
            edge_energy_spent_j: 5.0,
            accuracy_loss: 0.07,
            cloud_cost: 1.0,
            edge_load_fraction: 0.8,
            dropped: 0.0,
            failed: 0.0,
        }
    }

    const QUEUES: VirtualQueues = VirtualQueues { energy_j: 2.0, accuracy: 0.01 };

    #[test]
    fn hand_computed_terms_shared_by_every_kind() {
        // Z_E' = max(2 + 5 − 3·1, 0) = 4;  Z_A' = max(0.01 + 0.07 − 2·0.02, 0) = 0.04.
        // Θ  = (10/10, 2/4, 0.01/0.05) = (1, 0.5, 0.2): L = ½(1 + 0.25 + 0.04) = 0.645.
        // Θ' = (20/10, 4/4, 0.04/0.05) = (2, 1, 0.8):   L = ½(4 + 1 + 0.64)   = 2.82.
        // Δ = 2.175. Penalty: 1·3/2 + 0.5·6/4 + 2·0.07/0.05 + 0.2·1/0.5
        //                   = 1.5 + 0.75 + 2.8 + 0.4 = 5.45; load term 1·0.8 = 0.8.
        let mut q = QUEUES;
        let t = reward(&config(RewardKind::DriftPlusPenalty), &outcome(), &mut q);
        assert!(close(q.energy_j, 4.0) && close(q.accuracy, 0.04), "{q:?}");
        assert_eq!((t.energy_queue_before_j, t.accuracy_queue_before), (2.0, 0.01));
        assert!(close(t.energy_queue_after_j, 4.0) && close(t.accuracy_queue_after, 0.04));
        assert!(close(t.lyapunov_before, 0.645) && close(t.lyapunov_after, 2.82));
        assert!(close(t.drift, 2.175));
        assert_eq!(t.v, 2.0);
        assert!(close(t.latency_term, 1.5) && close(t.energy_term, 0.75));
        assert!(close(t.accuracy_term, 2.8) && close(t.cloud_cost_term, 0.4));
        assert!(close(t.penalty, 5.45) && close(t.load_term, 0.8));
        // Δ + V·p = 2.175 + 10.9 = 13.075.
        assert!(close(t.drift_plus_penalty, 13.075));
        assert_eq!((t.backlog_before, t.backlog_after), (10.0, 20.0));
    }

    #[test]
    fn hand_computed_reward_of_each_kind() {
        let r = |kind| reward(&config(kind), &outcome(), &mut QUEUES.clone()).reward;
        // −(Δ + V·p)/10 = −(2.175 + 2·5.45)/10 = −1.3075
        assert!(close(r(RewardKind::DriftPlusPenalty), -1.3075));
        // −(V·Δ + p)/10 = −(2·2.175 + 5.45)/10 = −0.98
        assert!(close(r(RewardKind::DriftPlusPenaltyVOnDrift), -0.98));
        // −p/10 = −0.545
        assert!(close(r(RewardKind::Penalty), -0.545));
        // −(w_A·a/a_scale + w_load·load)/10 = −(2.8 + 0.8)/10 = −0.36
        assert!(close(r(RewardKind::Als), -0.36));
    }

    #[test]
    fn adaptive_v_endpoints() {
        let v = VConfig::default();
        assert_eq!(v.v(0.0), SPLITWISE_V_MAX); // exp(0) = 1
        assert_eq!(v.v(1e6), SPLITWISE_V_MIN); // exp(−20000) underflows to 0
        // Q = Q_0: 0.1 + 9.9·e⁻¹ = 0.1 + 9.9·0.3678794412 = 3.7420064679.
        assert!((v.v(50.0) - 3.742_006_467_9).abs() < 1e-9);
        assert!((adaptive_v(25.0, 1.0, 3.0, 25.0) - (1.0 + 2.0 / std::f64::consts::E)).abs() < 1e-15);
        // The reward uses V at the backlog seen at decision time.
        let mut c = config(RewardKind::DriftPlusPenalty);
        c.v = VConfig::default();
        let t = reward(&c, &outcome(), &mut QUEUES.clone());
        assert_eq!(t.v, adaptive_v(10.0, SPLITWISE_V_MIN, SPLITWISE_V_MAX, SPLITWISE_Q0));
    }

    #[test]
    fn virtual_queues_clamp_at_zero_and_stay_zero_without_budgets() {
        // Z_E: max(1 + 0.5 − 3, 0) = 0;  Z_A: max(0.01 + 0 − 1·0.02, 0) = 0.
        assert_eq!(energy_queue_next(1.0, 0.5, Some(3.0)), 0.0);
        assert_eq!(accuracy_queue_next(0.01, 0.0, 1, Some(0.02)), 0.0);
        assert!(close(energy_queue_next(1.0, 5.0, Some(3.0)), 3.0));
        let mut c = config(RewardKind::DriftPlusPenalty);
        c.energy_budget_w = None;
        c.accuracy_budget = None;
        let mut q = QUEUES;
        let t = reward(&c, &outcome(), &mut q);
        assert_eq!(q, VirtualQueues::default());
        // Θ' = (2, 0, 0): L' = 2, L = 0.645 (the before-queues are as given), Δ = 1.355.
        assert!(close(t.drift, 1.355));
        // The energy budget is per slot: P·slot_s. Slot 2 s: max(2 + 5 − 6, 0) = 1.
        let mut c = config(RewardKind::Penalty);
        c.accuracy_budget = None;
        let o = SlotOutcome { slot_s: 2.0, ..outcome() };
        assert!(close(QUEUES.next(&c, &o).energy_j, 1.0));
    }

    #[test]
    fn reward_terms_is_pure() {
        let c = config(RewardKind::DriftPlusPenalty);
        let q = QUEUES;
        let (a, qa) = reward_terms(&c, &outcome(), &q);
        let (b, qb) = reward_terms(&c, &outcome(), &q);
        assert_eq!((a, qa), (b, qb));
        assert_eq!(q, QUEUES);
        assert_eq!(lyapunov_function(&[3.0, 4.0]), 12.5);
    }

    #[test]
    fn metrics_report_every_term() {
        let t = reward(&config(RewardKind::Als), &outcome(), &mut QUEUES.clone());
        let mut seen = Vec::new();
        t.visit_scalars(&mut |name, value| seen.push((name, value)));
        assert!(seen.contains(&("reward", t.reward)));
        assert!(seen.contains(&("drift", t.drift)));
        assert!(seen.contains(&("virtual_queue_energy_j", 4.0)));
        assert_eq!(seen.len(), 15);
    }

    #[test]
    fn drops_are_charged_per_request() {
        // Two drops at the default weight add 2 × 10 to the penalty, and V × 20 to Δ + V·p.
        let cfg = config(RewardKind::DriftPlusPenalty);
        let (base, _) = reward_terms(&cfg, &outcome(), &QUEUES);
        let (dropped, _) = reward_terms(&cfg, &SlotOutcome { dropped: 2.0, ..outcome() }, &QUEUES);
        assert!(close(dropped.drop_term, 2.0 * DEFAULT_W_DROP) && base.drop_term == 0.0);
        assert!(close(dropped.penalty - base.penalty, 20.0));
        assert!(close(dropped.drift_plus_penalty - base.drift_plus_penalty, base.v * 20.0));
    }

    #[test]
    fn failed_requests_are_charged_like_drops() {
        // A request that gave up is not served: without this, failing fast would be cheap.
        let cfg = config(RewardKind::DriftPlusPenalty);
        let (base, _) = reward_terms(&cfg, &outcome(), &QUEUES);
        let (failed, _) = reward_terms(&cfg, &SlotOutcome { failed: 1.0, ..outcome() }, &QUEUES);
        assert!(close(failed.drop_term, DEFAULT_W_DROP));
        assert!(close(failed.penalty - base.penalty, DEFAULT_W_DROP));
    }

    #[test]
    fn config_parses_validates_and_names_fields() {
        let text = r#"
            kind = "drift-plus-penalty-v-on-drift"
            energy_budget_w = 8.0
            [v]
            kind = "fixed"
            v = 3.0
            [weights]
            cloud_cost = 0.5
        "#;
        let c: RewardConfig = toml::from_str(text).unwrap();
        c.validate().unwrap();
        assert_eq!(c.kind, RewardKind::DriftPlusPenaltyVOnDrift);
        assert_eq!(c.weights.energy, SPLITWISE_W_ENERGY);
        assert_eq!(c.scales, RewardScales::default());
        assert_eq!(toml::from_str::<RewardConfig>("").unwrap(), RewardConfig::default());
        let e = toml::from_str::<RewardConfig>("[scales]\nlatency = 1.0\n").unwrap_err().to_string();
        assert!(e.contains("latency"), "{e}");

        let d = RewardConfig::default;
        let c = RewardConfig { scales: RewardScales { energy_j: 0.0, ..Default::default() }, ..d() };
        assert_eq!(c.validate().unwrap_err().field, "scales.energy_j");
        let c = RewardConfig { v: VConfig::Adaptive { v_min: 5.0, v_max: 1.0, q0: 50.0 }, ..d() };
        assert_eq!(c.validate().unwrap_err().field, "v.v_max");
        let c = RewardConfig { weights: RewardWeights { accuracy: -1.0, ..Default::default() }, ..d() };
        assert_eq!(c.validate().unwrap_err().field, "weights.accuracy");
        let c = RewardConfig { accuracy_budget: Some(1.5), ..d() };
        assert_eq!(c.validate().unwrap_err().field, "accuracy_budget");
        let c = RewardConfig { energy_budget_w: Some(0.0), ..d() };
        assert_eq!(c.validate().unwrap_err().field, "energy_budget_w");
    }
}
