//! What every baseline shares: the conditions a baseline plans under (estimated from the
//! observation, or the true ones for an oracle), a candidate plan with its condition-independent
//! pass costs precomputed, the request estimate from those costs, and the boundary precision of
//! layer-wise plans.
//!
//! A plan's dataflow ([`PlanProfile`]) and its pass costs at full availability
//! ([`RequestCosts`]) do not depend on the slot's conditions, so a baseline that compares the same
//! plans every slot builds them once and only *times* them per slot with the env's
//! [`estimate_from_costs`] (`estimate_request` without its `fill` step; a test checks the two
//! agree bit for bit).

use splitwise_env::cost::PlanProfile;
use splitwise_env::plan::{Plan, Precision};
use splitwise_env::policy::DecisionContext;
use splitwise_env::public::{RequestEstimate, estimate_from_costs, estimated_view, slot_view};
use splitwise_env::scenario::{ActionMode, Scenario};
use splitwise_env::service::{RequestCosts, SlotView};

/// Where a baseline's per-slot conditions come from (system-model §10).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConditionSource {
    /// Estimated from the observation ([`estimated_view`]): moving-average rate, last latency and
    /// SNR, moving-average cloud load.
    Estimated,
    /// The true conditions of the decided slot ([`slot_view`] of `ctx.oracle`): an oracle.
    Oracle,
}

impl ConditionSource {
    pub fn from_oracle(oracle: bool) -> Self {
        if oracle { Self::Oracle } else { Self::Estimated }
    }

    pub fn is_oracle(self) -> bool {
        self == Self::Oracle
    }

    /// The view of the decided slot.
    pub fn view(self, sc: &Scenario, ctx: &DecisionContext<'_>) -> SlotView {
        match self {
            Self::Estimated => estimated_view(sc, ctx.obs),
            Self::Oracle => {
                // `act_and_step` passes the true conditions to every policy whose `is_oracle()`
                // holds; deciding without them is a wiring bug, not a runtime condition.
                let x =
                    ctx.oracle.as_ref().expect("an oracle baseline was asked to decide without the true conditions");
                slot_view(sc, x)
            }
        }
    }
}

/// The boundary precision of layer-wise plans (Neurosurgeon, static best split, memory-
/// proportional split, SplitLLM's placements): in the layer-split action space the scenario's
/// `actions.layer_split_precision` (the only precision that space has); in the hierarchical space
/// the highest allowed precision (the layer-wise partitioners we reproduce do not quantise
/// boundaries; 16 bit in every shipped scenario).
pub fn layer_wise_precision(sc: &Scenario) -> Precision {
    match sc.config.actions.mode {
        ActionMode::LayerSplit => sc.layer_split_precision,
        ActionMode::Hierarchical => {
            Precision::ALL.into_iter().find(|p| sc.allowed_precisions[p.index()]).unwrap_or(Precision::Bits16)
        }
    }
}

/// A plan with everything about it that does not depend on the slot's conditions, for one
/// request shape `(n_in, n_out)`.
#[derive(Clone, Debug)]
pub struct Candidate {
    pub plan: Plan,
    pub profile: PlanProfile,
    pub costs: RequestCosts,
    /// Edge memory the plan needs ([`splitwise_env::plan::MemoryModel::plan_bytes`]).
    pub edge_bytes: f64,
}

impl Candidate {
    pub fn new(sc: &Scenario, plan: Plan, n_in: u32, n_out: u32) -> Self {
        let profile = PlanProfile::new(&plan, &sc.costs);
        let mut costs = RequestCosts::default();
        costs.fill(&profile, n_in, n_out, &sc.edge, &sc.cloud);
        let edge_bytes = sc.memory.plan_bytes(&plan);
        Self { plan, profile, costs, edge_bytes }
    }

    /// Whether the plan fits `edge_memory_bytes` (the same comparison as the env's check).
    pub fn fits(&self, edge_memory_bytes: f64) -> bool {
        self.edge_bytes <= edge_memory_bytes
    }

    pub fn estimate(&self, sc: &Scenario, n_out: u32, view: &SlotView) -> RequestEstimate {
        estimate_from_costs(sc, &self.profile, &self.costs, n_out, view)
    }
}

/// Every layer split `floor..=L` at `precision` (the layer-wise plan space).
pub fn layer_split_candidates(sc: &Scenario, precision: Precision, n_in: u32, n_out: u32) -> Vec<Candidate> {
    let (l, h) = (sc.n_layers(), sc.n_heads());
    let floor = sc.config.serving.privacy_floor_layers.min(l);
    (floor..=l).map(|s| Candidate::new(sc, Plan::layer_split(l, h, s, precision), n_in, n_out)).collect()
}

/// Total order on costs with NaN treated as +∞ (an unusable estimate never wins).
#[inline]
pub fn cost_key(x: f64) -> f64 {
    if x.is_nan() { f64::INFINITY } else { x }
}

#[cfg(test)]
mod tests {
    use super::*;
    use splitwise_env::plan::{FfnMode, LayerPlacement};
    use splitwise_env::public::{estimate_request, mean_view, typical_request};
    use splitwise_env::scenario::NoTraces;

    #[test]
    fn estimate_from_costs_is_estimate_request_bit_for_bit() {
        // Reliable (Jetson, LTE) and lossy (S23, 5G) transport; cloud-only (streaming), layer
        // splits, a multi-switch placement, split heads and a split FFN.
        for text in [
            include_str!("../../../configs/jetson-llama7b-lte.toml"),
            include_str!("../../../configs/s23-llama13b-5g-fading.toml"),
        ] {
            let sc = Scenario::from_toml(text, &NoTraces).unwrap();
            let (l, h) = (sc.n_layers(), sc.n_heads());
            let (n_in, n_out) = typical_request(&sc);
            let mut mixed = Plan::layer_split(l, h, 3, Precision::Bits8);
            mixed.layers[3] = LayerPlacement { edge_heads: (h / 2) as u16, ffn: FfnMode::Split };
            mixed.layers[l as usize - 1] = LayerPlacement::edge(h);
            let plans = [
                Plan::cloud_only(l, Precision::Bits16),
                Plan::layer_split(l, h, 1, Precision::Bits16),
                Plan::layer_split(l, h, l / 2, Precision::Bits4),
                Plan::edge_only(l, h, Precision::Bits16),
                mixed,
            ];
            let mut view = mean_view(&sc);
            view.conditions.cloud_load = 0.6;
            view.conditions.edge_compute_available = 0.7;
            let mut scratch = RequestCosts::default();
            for plan in plans {
                let c = Candidate::new(&sc, plan, n_in, n_out);
                let a = c.estimate(&sc, n_out, &view);
                let b = estimate_request(&sc, &c.profile, n_in, n_out, &view, &mut scratch);
                assert_eq!(a, b, "{:?}", c.plan.layers.iter().map(|p| p.edge_heads).collect::<Vec<_>>());
            }
        }
    }

    #[test]
    fn layer_wise_precision_follows_the_action_space() {
        let text = include_str!("../../../configs/pi5-gpt2xl-wifi.toml");
        let mut cfg = splitwise_env::scenario::ScenarioConfig::from_toml(text).unwrap();
        cfg.actions.precisions = vec![8, 4];
        cfg.actions.layer_split_precision = 4;
        let sc = Scenario::resolve(cfg.clone(), &NoTraces).unwrap();
        // Hierarchical: the highest allowed precision (16 is not allowed here).
        assert_eq!(layer_wise_precision(&sc), Precision::Bits8);
        cfg.actions.mode = ActionMode::LayerSplit;
        let sc = Scenario::resolve(cfg, &NoTraces).unwrap();
        assert_eq!(layer_wise_precision(&sc), Precision::Bits4);
    }
}
