//! The non-learned baselines of system-model §10, all planning through the env's public model
//! (`splitwise_env::public`: the same cost evaluator the env executes with) and acting through
//! the same [`Policy`] interface as learned agents.
//!
//! | name | what it does | module |
//! |---|---|---|
//! | `cloud-only`, `edge-only`, `random` | the env's trivial policies (edge-only falls back to the largest split that fits) | `splitwise_env::policy` |
//! | `neurosurgeon[:latency\|energy]` | best single cut for the estimated conditions, every slot | [`layer_wise`] |
//! | `static-best[:latency\|energy]` | best single cut under long-run mean conditions, fixed | [`layer_wise`] |
//! | `memory-proportional` | `⌊L·M_edge/(M_edge + M_cloud)⌋` edge layers (llama.cpp RPC, exo) | [`layer_wise`] |
//! | `best-fixed[:EPISODES]` | the whole-layer plan with the best objective on tuning episodes, held | [`best_fixed`] |
//! | `greedy[:SLA_S]` | SplitLLM's greedy placement under the SLA | [`placement`] |
//! | `splitllm-dp[:SLA_S]` | SplitLLM's DP: least cloud work under the SLA, several switches | [`placement`] |
//! | `dpp-one-slot[:starts\|queue]` | one-slot Lyapunov drift-plus-penalty minimiser | [`dpp`] |
//! | `failover[:HOLD_S]` | static-best while healthy, edge-only while the link or cloud is in trouble | [`failover`] |
//! | `service-window[:WINDOW_S]` | failover that also leaves the cloud once service has lasted WINDOW_S s (scheduled outages) | [`service_window`] |
//! | `clairvoyant[:H]` | the clairvoyant bound (sees the future; H-slot look-ahead) | [`clairvoyant`] |
//! | `clairvoyant-layers[:H]` | the bound over whole-layer plans only | [`clairvoyant`] |
//! | `oracle-regime[:EPISODES]` | the best per-regime table of whole-layer plans, read from the true regimes of the decided slot | [`regime`] |
//! | `oracle-regime-late[:EPISODES]` | the same, read from the previous slot's regimes (what a device can know at best) | [`regime`] |
//! | `oracle-regime-aged[:EPISODES]` | `oracle-regime-late` keyed also on how long the link's state had lasted (5-s buckets) | [`regime`] |
//! | `oracle-mpc[:N]` | the bound's look-ahead over N sampled futures: a planner with the model and the hidden state, no foresight | [`mpc`] |
//!
//! `oracle-neurosurgeon`, `oracle-greedy`, `oracle-splitllm-dp` and `oracle-dpp-one-slot` are
//! the same algorithms fed the true conditions of the decided slot (exact rate, latency, loss,
//! cloud load, edge availability; the DPP also the true arrival rate) instead of the estimates
//! from the observation: they are oracles ([`is_oracle`]) and reports must label them so. The
//! other baselines read no per-slot conditions at all.
//!
//! Every baseline plans for a *typical request* (the workload's median prompt and output
//! lengths) and returns a [`splitwise_env::policy::Decision::Plan`] that is feasible in the
//! decided slot: it fits `ctx.edge_memory_bytes`, keeps the privacy floor, and uses head counts
//! that are multiples of `actions.head_step`. Layer-wise plans use
//! [`common::layer_wise_precision`] (16 bit in every shipped scenario).
//!
//! The env's public model provides what they share: estimates from filled pass costs
//! ([`splitwise_env::public::estimate_from_costs`]), the missing weight bytes of a plan
//! (`PartitionEnv::missing_weight_bytes`; the one-slot DPP still keeps its own
//! [`dpp::ResidencyEstimate`] of the executed plans) and uncapped virtual queues
//! (`PartitionEnv::virtual_queues`; the observation caps them at 10 scale units).

pub mod best_fixed;
pub mod clairvoyant;
pub mod common;
pub mod dpp;
pub mod failover;
pub mod layer_wise;
pub mod mpc;
pub mod placement;
pub mod regime;
pub mod service_window;
#[cfg(test)]
pub(crate) mod test_support;

use layer_wise::{MemoryProportional, Neurosurgeon, Objective, StaticBest};
use placement::{Algorithm, PlacementPolicy};
use splitwise_env::policy::{CloudOnly, EdgeOnly, Policy, RandomPolicy};
use splitwise_env::scenario::Scenario;
use std::sync::Arc;

/// How a baseline reads the world (reports mark everything but `Causal`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Knowledge {
    /// Only the observation, the mask and the public model.
    Causal,
    /// The true conditions of the decided slot.
    Oracle,
    /// The future (a bound, not a policy a device can run).
    Clairvoyant,
}

/// One entry of the baseline registry: names, help text, the argument's grammar and the report
/// role all derive from here.
pub struct BaselineInfo {
    pub name: &'static str,
    /// The argument's grammar after `name:` (empty: no argument).
    pub args: &'static str,
    pub help: &'static str,
    pub knowledge: Knowledge,
    /// A layer-wise (single-cut) partitioner (the reference of the report's ratios).
    pub layer_wise: bool,
    /// Built by the env crate's spec grammar itself (no entry in [`extra_names`]).
    pub trivial: bool,
    /// Holds one plan throughout (a candidate for the report's best static plan).
    pub static_plan: bool,
    /// Simulates whole episodes to tune or plan (minutes per scenario and 100 episodes, where
    /// the others take seconds): `splitwise eval --help` says so, and quick checks skip it.
    pub simulates: bool,
}

const SLA_ARGS: &str = "SLA_S";

/// Every baseline, in report order.
pub const REGISTRY: &[BaselineInfo] = &[
    BaselineInfo {
        name: "cloud-only",
        args: "",
        help: "everything in the cloud (the privacy floor on the edge)",
        knowledge: Knowledge::Causal,
        layer_wise: false,
        trivial: true,
        static_plan: true,
        simulates: false,
    },
    BaselineInfo {
        name: "edge-only",
        args: "",
        help: "everything on the edge (the deepest cut that fits)",
        knowledge: Knowledge::Causal,
        layer_wise: false,
        trivial: true,
        static_plan: true,
        simulates: false,
    },
    BaselineInfo {
        name: "random",
        args: "",
        help: "a uniformly random legal action each slot",
        knowledge: Knowledge::Causal,
        layer_wise: false,
        trivial: true,
        static_plan: false,
        simulates: false,
    },
    BaselineInfo {
        name: "neurosurgeon",
        args: Objective::ARGS,
        help: "best single cut for the estimated conditions, every slot",
        knowledge: Knowledge::Causal,
        layer_wise: true,
        trivial: false,
        static_plan: false,
        simulates: false,
    },
    BaselineInfo {
        name: "oracle-neurosurgeon",
        args: Objective::ARGS,
        help: "neurosurgeon on the true slot conditions",
        knowledge: Knowledge::Oracle,
        layer_wise: true,
        trivial: false,
        static_plan: false,
        simulates: false,
    },
    BaselineInfo {
        name: "static-best",
        args: Objective::ARGS,
        help: "best single cut under long-run mean conditions, fixed",
        knowledge: Knowledge::Causal,
        layer_wise: true,
        trivial: false,
        static_plan: true,
        simulates: false,
    },
    BaselineInfo {
        name: "best-fixed",
        args: "EPISODES",
        help: "the whole-layer plan with the best objective over EPISODES tuning episodes (default 3; seeds disjoint from the evaluation's), held fixed",
        knowledge: Knowledge::Causal,
        layer_wise: true,
        trivial: false,
        static_plan: true,
        simulates: true,
    },
    BaselineInfo {
        name: "memory-proportional",
        args: "",
        help: "edge layers in proportion to edge memory (llama.cpp RPC, exo)",
        knowledge: Knowledge::Causal,
        layer_wise: true,
        trivial: false,
        static_plan: true,
        simulates: false,
    },
    BaselineInfo {
        name: "failover",
        args: "HOLD_S",
        help: "static-best while link and cloud look healthy; edge-only while the modem reports no service, the last probe failed or the cloud rejected it, and HOLD_S seconds after (default 1)",
        knowledge: Knowledge::Causal,
        layer_wise: false,
        trivial: false,
        static_plan: false,
        simulates: false,
    },
    BaselineInfo {
        name: "service-window",
        args: "WINDOW_S",
        help: "failover that also stays on the edge once service has lasted WINDOW_S seconds (default 20): for outages on a schedule, where a request sent late in a service period meets the next outage",
        knowledge: Knowledge::Causal,
        layer_wise: false,
        trivial: false,
        static_plan: false,
        simulates: false,
    },
    BaselineInfo {
        name: "greedy",
        args: SLA_ARGS,
        help: "SplitLLM's greedy placement under the SLA",
        knowledge: Knowledge::Causal,
        layer_wise: false,
        trivial: false,
        static_plan: false,
        simulates: false,
    },
    BaselineInfo {
        name: "oracle-greedy",
        args: SLA_ARGS,
        help: "greedy on the true slot conditions",
        knowledge: Knowledge::Oracle,
        layer_wise: false,
        trivial: false,
        static_plan: false,
        simulates: false,
    },
    BaselineInfo {
        name: "splitllm-dp",
        args: SLA_ARGS,
        help: "SplitLLM's DP: least cloud work under the SLA, several switches",
        knowledge: Knowledge::Causal,
        layer_wise: false,
        trivial: false,
        static_plan: false,
        simulates: false,
    },
    BaselineInfo {
        name: "oracle-splitllm-dp",
        args: SLA_ARGS,
        help: "the DP on the true slot conditions",
        knowledge: Knowledge::Oracle,
        layer_wise: false,
        trivial: false,
        static_plan: false,
        simulates: false,
    },
    BaselineInfo {
        name: "dpp-one-slot",
        args: dpp::Charging::ARGS,
        help: "one-slot Lyapunov drift-plus-penalty minimiser",
        knowledge: Knowledge::Causal,
        layer_wise: false,
        trivial: false,
        static_plan: false,
        simulates: false,
    },
    BaselineInfo {
        name: "oracle-dpp-one-slot",
        args: dpp::Charging::ARGS,
        help: "the one-slot minimiser on the true slot conditions",
        knowledge: Knowledge::Oracle,
        layer_wise: false,
        trivial: false,
        static_plan: false,
        simulates: false,
    },
    BaselineInfo {
        name: "clairvoyant",
        args: "H",
        help: "the clairvoyant bound: look-ahead of H slots (default 4) over the true future conditions",
        knowledge: Knowledge::Clairvoyant,
        layer_wise: false,
        trivial: false,
        static_plan: false,
        simulates: true,
    },
    BaselineInfo {
        name: "clairvoyant-layers",
        args: "H",
        help: "the clairvoyant bound over whole-layer plans only (what head/FFN granularity adds is the gap to `clairvoyant`)",
        knowledge: Knowledge::Clairvoyant,
        layer_wise: false,
        trivial: false,
        static_plan: false,
        simulates: true,
    },
    BaselineInfo {
        name: "oracle-regime",
        args: "EPISODES",
        help: "a whole-layer plan per regime (Gilbert–Elliott state × cloud-load level × link-rate regime, read from the true slot conditions), the table tuned by coordinate descent on EPISODES tuning episodes (default 100); what knowing the present's regimes, not the future, is worth",
        knowledge: Knowledge::Oracle,
        layer_wise: false,
        trivial: false,
        static_plan: false,
        simulates: true,
    },
    BaselineInfo {
        name: "oracle-regime-late",
        args: "EPISODES",
        help: "oracle-regime keyed on the previous slot's true regimes: what a device's probe and requests can tell about the present at best",
        knowledge: Knowledge::Oracle,
        layer_wise: false,
        trivial: false,
        static_plan: false,
        simulates: true,
    },
    BaselineInfo {
        name: "oracle-regime-aged",
        args: "EPISODES",
        help: "oracle-regime-late keyed also on how long the link's Gilbert–Elliott state had lasted (5-s buckets to 60 s): what the present and its age are worth where the link's periods are regular (a subway's station dwells)",
        knowledge: Knowledge::Oracle,
        layer_wise: false,
        trivial: false,
        static_plan: false,
        simulates: true,
    },
    BaselineInfo {
        name: "oracle-mpc",
        args: "N",
        help: "model-predictive control on the simulator: the clairvoyant look-ahead (H = 4, whole-layer plans) scored on futures sampled from the true state at the end of the previous slot (N per stratum, default 8) instead of the true future; what a planner that knows the model and the hidden state, but not the future, reaches",
        knowledge: Knowledge::Oracle,
        layer_wise: false,
        trivial: false,
        static_plan: false,
        simulates: true,
    },
];

/// Every baseline name, in report order.
pub fn names() -> Vec<&'static str> {
    REGISTRY.iter().map(|b| b.name).collect()
}

/// The names the env's spec grammar does not know itself (its `extra_names`).
pub fn extra_names() -> Vec<&'static str> {
    REGISTRY.iter().filter(|b| !b.trivial).map(|b| b.name).collect()
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum BaselineError {
    #[error("unknown baseline `{name}`; allowed: {allowed}")]
    Unknown { name: String, allowed: String },
    #[error("baseline `{name}`: argument `{arg}` is not allowed; use {usage}")]
    BadArgument { name: String, arg: String, usage: String },
    #[error("baseline `{name}`: {message}; use {usage}")]
    Scenario { name: String, message: String, usage: String },
}

/// The spec name without its argument (`neurosurgeon:energy` → `neurosurgeon`).
fn base_name(name: &str) -> &str {
    name.split_once(':').map_or(name, |(n, _)| n).trim()
}

fn info(name: &str) -> Option<&'static BaselineInfo> {
    let name = base_name(name);
    REGISTRY.iter().find(|b| b.name == name)
}

/// What the baseline knows (`Causal` for names that are not baselines).
pub fn knowledge(name: &str) -> Knowledge {
    info(name).map_or(Knowledge::Causal, |b| b.knowledge)
}

/// Whether the baseline reads more than a device can (the true slot state or the future):
/// reports label it.
pub fn is_oracle(name: &str) -> bool {
    knowledge(name) != Knowledge::Causal
}

/// Whether the baseline is the clairvoyant bound.
pub fn is_clairvoyant(name: &str) -> bool {
    knowledge(name) == Knowledge::Clairvoyant
}

/// Whether the baseline holds one plan throughout.
pub fn is_static(name: &str) -> bool {
    info(name).is_some_and(|b| b.static_plan)
}

/// Whether the baseline is a layer-wise (single-cut) partitioner.
pub fn is_layer_wise(name: &str) -> bool {
    info(name).is_some_and(|b| b.layer_wise)
}

/// Whether the baseline simulates whole episodes to tune or plan (slow: see
/// [`BaselineInfo::simulates`]).
pub fn simulates(name: &str) -> bool {
    info(name).is_some_and(|b| b.simulates)
}

/// Every baseline, a line each (`name[:ARG]`, what it knows when more than a device, whether it
/// simulates episodes, its help), for `splitwise eval --help`.
pub fn catalog() -> String {
    REGISTRY
        .iter()
        .map(|b| {
            let mut marks = Vec::new();
            match b.knowledge {
                Knowledge::Causal => {}
                Knowledge::Oracle => marks.push("oracle: the true slot state"),
                Knowledge::Clairvoyant => marks.push("clairvoyant: the future"),
            }
            if b.simulates {
                marks.push("slow: simulates episodes");
            }
            let marks = if marks.is_empty() { String::new() } else { format!(" [{}]", marks.join("; ")) };
            format!("  {}{marks}: {}", usage_short(b), b.help)
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// How a baseline is written with its argument, for error messages.
fn usage(name: &str) -> String {
    match info(name) {
        Some(b) if b.args == SLA_ARGS => {
            format!("{name} (SLA = the scenario's deadline for the typical request) or {name}:SLA_S (seconds, > 0)")
        }
        Some(b) if !b.args.is_empty() => format!("{name} or {name}:{}", b.args),
        _ => format!("{name} (no argument)"),
    }
}

/// `name[:ARG]` as listed in error messages and help.
pub fn usage_short(b: &BaselineInfo) -> String {
    if b.args.is_empty() { b.name.to_string() } else { format!("{}[:{}]", b.name, b.args) }
}

/// Builds baseline `name` (one of [`names`]) for `scenario`; `arg` is the spec's argument,
/// `seed` seeds the random policy.
pub fn build(
    name: &str,
    arg: Option<&str>,
    seed: u64,
    scenario: &Arc<Scenario>,
) -> Result<Box<dyn Policy>, BaselineError> {
    let name = name.trim();
    let arg = arg.map(str::trim);
    let bad = |a: &str| BaselineError::BadArgument { name: name.to_string(), arg: a.to_string(), usage: usage(name) };
    let no_arg = |p: Box<dyn Policy>| match arg {
        None => Ok(p),
        Some(a) => Err(bad(a)),
    };
    let objective = || Objective::parse(arg).ok_or_else(|| bad(arg.unwrap_or_default()));
    let charging = || dpp::Charging::parse(arg).ok_or_else(|| bad(arg.unwrap_or_default()));
    // The optional argument as a finite positive number, or a whole number in `range`.
    let seconds =
        || arg.map(|a| a.parse::<f64>().ok().filter(|s| s.is_finite() && *s > 0.0).ok_or_else(|| bad(a))).transpose();
    let count = |default: u32, range: std::ops::RangeInclusive<u32>| match arg {
        None => Ok(default),
        Some(a) => a.parse::<u32>().ok().filter(|n| range.contains(n)).ok_or_else(|| bad(a)),
    };
    let placement = |algorithm, oracle| {
        let sla_s = seconds()?;
        PlacementPolicy::new(scenario, algorithm, oracle, sla_s)
            .map(|p| Box::new(p) as Box<dyn Policy>)
            .map_err(|message| BaselineError::Scenario { name: name.to_string(), message, usage: usage(name) })
    };
    let regime_table = |reading| {
        let episodes = count(regime::DEFAULT_EPISODES, 1..=regime::MAX_EPISODES)?;
        Ok(Box::new(regime::OracleRegime::new(scenario, episodes, reading)) as Box<dyn Policy>)
    };
    match name {
        "cloud-only" => no_arg(Box::new(CloudOnly)),
        "edge-only" => no_arg(Box::new(EdgeOnly)),
        "random" => no_arg(Box::new(RandomPolicy::new(seed))),
        "neurosurgeon" => Ok(Box::new(Neurosurgeon::new(scenario, objective()?, false))),
        "oracle-neurosurgeon" => Ok(Box::new(Neurosurgeon::new(scenario, objective()?, true))),
        "static-best" => Ok(Box::new(StaticBest::new(scenario, objective()?))),
        "memory-proportional" => no_arg(Box::new(MemoryProportional::new(scenario))),
        "best-fixed" => {
            Ok(Box::new(best_fixed::BestFixed::new(scenario, count(best_fixed::DEFAULT_EPISODES, 1..=100)?)))
        }
        "failover" => Ok(Box::new(failover::Failover::new(scenario, seconds()?.unwrap_or(failover::DEFAULT_HOLD_S)))),
        "service-window" => Ok(Box::new(service_window::ServiceWindow::new(
            scenario,
            seconds()?.unwrap_or(service_window::DEFAULT_WINDOW_S),
        ))),
        "greedy" => placement(Algorithm::Greedy, false),
        "oracle-greedy" => placement(Algorithm::Greedy, true),
        "splitllm-dp" => placement(Algorithm::Dp, false),
        "oracle-splitllm-dp" => placement(Algorithm::Dp, true),
        "dpp-one-slot" => Ok(Box::new(dpp::DppOneSlot::new(scenario, false, charging()?))),
        "oracle-dpp-one-slot" => Ok(Box::new(dpp::DppOneSlot::new(scenario, true, charging()?))),
        "clairvoyant" => Ok(Box::new(clairvoyant::Clairvoyant::new(
            scenario.clone(),
            count(clairvoyant::DEFAULT_HORIZON, 1..=1000)?,
        ))),
        "clairvoyant-layers" => Ok(Box::new(clairvoyant::Clairvoyant::layers_only(
            scenario.clone(),
            count(clairvoyant::DEFAULT_HORIZON, 1..=1000)?,
        ))),
        "oracle-regime" => regime_table(regime::Reading::Now),
        "oracle-regime-late" => regime_table(regime::Reading::Late),
        "oracle-regime-aged" => regime_table(regime::Reading::Aged),
        "oracle-mpc" => Ok(Box::new(mpc::OracleMpc::new(
            scenario.clone(),
            count(mpc::DEFAULT_SAMPLES, 1..=mpc::MAX_SAMPLES)?,
            clairvoyant::DEFAULT_HORIZON,
        ))),
        _ => {
            let allowed: Vec<String> = REGISTRY.iter().map(usage_short).collect();
            Err(BaselineError::Unknown { name: name.to_string(), allowed: allowed.join(", ") })
        }
    }
}
