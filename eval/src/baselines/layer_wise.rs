//! The layer-wise partitioners (one cut: layers before it on the edge, the rest in the cloud):
//! Neurosurgeon, the static best split and the memory-proportional split of llama.cpp RPC / exo
//! (system-model §10). Every plan is a [`Plan::layer_split`] at [`layer_wise_precision`] that
//! respects the privacy floor and fits the decided slot's edge memory.
//!
//! - **Neurosurgeon** (Kang et al., ASPLOS 2017): every slot, among the cuts `floor..=L` that fit
//!   the slot's edge memory, the one minimising the estimated latency (or edge energy) of a
//!   typical request ([`typical_request`]: median prompt and output lengths) under the
//!   conditions estimated from the observation; the oracle variant uses the true conditions.
//!   Neurosurgeon profiles per-layer latency and picks the best single cut for the current
//!   bandwidth; our per-layer profile is the env's cost evaluator itself.
//! - **Static best split**: the cut minimising the same objective under the scenario's long-run
//!   mean conditions ([`mean_view`]) and the most edge memory any regime leaves, chosen once when
//!   the policy is built (mean conditions do not change between episodes, so the choice is the
//!   same at every reset) and kept all episode; in a slot where it does not fit, the largest cut
//!   below it that fits ([`largest_feasible_split`]).
//! - **Memory-proportional split** (llama.cpp RPC's `--tensor-split` default and exo's
//!   memory-weighted ring partitioning assign layers in proportion to each device's memory):
//!   `⌊L·M_edge/(M_edge + M_cloud)⌋` edge layers with the usable memories of the two device
//!   profiles, raised to the privacy floor and lowered to what fits the slot.

use super::common::{Candidate, ConditionSource, cost_key, layer_split_candidates, layer_wise_precision};
use splitwise_env::plan::Precision;
use splitwise_env::policy::{Decision, DecisionContext, Policy, largest_feasible_split};
use splitwise_env::public::{RequestEstimate, mean_view, typical_request};
use splitwise_env::scenario::Scenario;
use splitwise_env::service::SlotView;

/// What a layer-wise partitioner minimises for the typical request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Objective {
    /// End-to-end latency (s).
    #[default]
    Latency,
    /// Edge energy (J).
    Energy,
}

impl Objective {
    pub const ARGS: &'static str = "latency|energy";

    pub fn parse(arg: Option<&str>) -> Option<Self> {
        match arg {
            None | Some("latency") => Some(Self::Latency),
            Some("energy") => Some(Self::Energy),
            Some(_) => None,
        }
    }

    pub fn of(self, e: &RequestEstimate) -> f64 {
        match self {
            Self::Latency => e.latency_s,
            Self::Energy => e.edge_energy_j,
        }
    }

    /// The spec suffix (`""` for the default).
    fn suffix(self) -> &'static str {
        match self {
            Self::Latency => "",
            Self::Energy => ":energy",
        }
    }
}

/// Index of the cut in `cuts` minimising `objective` among those fitting `edge_memory_bytes`
/// (ties: the fewest edge layers); `None` when none fits.
fn best_cut(
    sc: &Scenario,
    cuts: &[Candidate],
    objective: Objective,
    n_out: u32,
    view: &SlotView,
    edge_memory_bytes: f64,
) -> Option<usize> {
    let mut best: Option<(usize, f64)> = None;
    for (i, c) in cuts.iter().enumerate() {
        if !c.fits(edge_memory_bytes) {
            continue;
        }
        let cost = cost_key(objective.of(&c.estimate(sc, n_out, view)));
        if best.is_none_or(|(_, b)| cost < b) {
            best = Some((i, cost));
        }
    }
    best.map(|(i, _)| i)
}

/// Neurosurgeon: the best single cut for the current (estimated or true) conditions.
pub struct Neurosurgeon {
    source: ConditionSource,
    objective: Objective,
    n_out: u32,
    cuts: Vec<Candidate>,
    precision: Precision,
}

impl Neurosurgeon {
    pub fn new(sc: &Scenario, objective: Objective, oracle: bool) -> Self {
        let (n_in, n_out) = typical_request(sc);
        let precision = layer_wise_precision(sc);
        let cuts = layer_split_candidates(sc, precision, n_in, n_out);
        Self { source: ConditionSource::from_oracle(oracle), objective, n_out, cuts, precision }
    }
}

impl Policy for Neurosurgeon {
    fn name(&self) -> String {
        let base = if self.source.is_oracle() { "oracle-neurosurgeon" } else { "neurosurgeon" };
        format!("{base}{}", self.objective.suffix())
    }

    fn is_oracle(&self) -> bool {
        self.source.is_oracle()
    }

    fn decide(&mut self, ctx: &DecisionContext<'_>) -> Decision {
        let sc = ctx.env.scenario();
        let view = self.source.view(sc, ctx);
        match best_cut(sc, &self.cuts, self.objective, self.n_out, &view, ctx.edge_memory_bytes) {
            Some(i) => Decision::Plan(self.cuts[i].plan.clone()),
            // Not even the privacy floor fits: the floor plan (the env reports the error).
            None => Decision::Plan(largest_feasible_split(ctx, 0, self.precision)),
        }
    }
}

/// The static best split: offline-optimal under mean conditions, kept all episode.
pub struct StaticBest {
    objective: Objective,
    split: u32,
    precision: Precision,
}

impl StaticBest {
    pub fn new(sc: &Scenario, objective: Objective) -> Self {
        let (n_in, n_out) = typical_request(sc);
        let precision = layer_wise_precision(sc);
        let cuts = layer_split_candidates(sc, precision, n_in, n_out);
        let most_memory = sc.config.edge_load.memory_available.iter().copied().fold(0.0, f64::max);
        let memory = sc.edge.usable_memory_bytes * most_memory;
        let floor = sc.config.serving.privacy_floor_layers.min(sc.n_layers());
        let split = best_cut(sc, &cuts, objective, n_out, &mean_view(sc), memory)
            .map_or(floor, |i| cuts[i].plan.leading_edge_layers(sc.n_heads()));
        Self { objective, split, precision }
    }

    /// The chosen cut (edge layers).
    pub fn split(&self) -> u32 {
        self.split
    }
}

impl Policy for StaticBest {
    fn name(&self) -> String {
        format!("static-best{}", self.objective.suffix())
    }

    fn decide(&mut self, ctx: &DecisionContext<'_>) -> Decision {
        Decision::Plan(largest_feasible_split(ctx, self.split, self.precision))
    }
}

/// The memory-proportional split of llama.cpp RPC and exo.
pub struct MemoryProportional {
    split: u32,
    precision: Precision,
}

impl MemoryProportional {
    pub fn new(sc: &Scenario) -> Self {
        Self { split: memory_proportional_layers(sc), precision: layer_wise_precision(sc) }
    }

    /// Edge layers before the per-slot clamp.
    pub fn split(&self) -> u32 {
        self.split
    }
}

/// `⌊L·M_edge/(M_edge + M_cloud)⌋` with the usable memories of the device profiles.
pub fn memory_proportional_layers(sc: &Scenario) -> u32 {
    let (edge, cloud) = (sc.edge.usable_memory_bytes, sc.cloud.usable_memory_bytes);
    let share = edge / (edge + cloud);
    ((f64::from(sc.n_layers()) * share).floor() as u32).min(sc.n_layers())
}

impl Policy for MemoryProportional {
    fn name(&self) -> String {
        "memory-proportional".into()
    }

    fn decide(&mut self, ctx: &DecisionContext<'_>) -> Decision {
        Decision::Plan(largest_feasible_split(ctx, self.split, self.precision))
    }
}
