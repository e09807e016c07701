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
//! | `greedy[:SLA_S]` | SplitLLM's greedy placement under the SLA | [`placement`] |
//! | `splitllm-dp[:SLA_S]` | SplitLLM's DP: least cloud work under the SLA, several switches | [`placement`] |
//! | `dpp-one-slot[:starts\|queue]` | one-slot Lyapunov drift-plus-penalty minimiser | [`dpp`] |
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

pub mod common;
pub mod dpp;
pub mod layer_wise;
pub mod placement;

use layer_wise::{MemoryProportional, Neurosurgeon, Objective, StaticBest};
use placement::{Algorithm, PlacementPolicy};
use splitwise_env::policy::{CloudOnly, EdgeOnly, Policy, RandomPolicy};
use splitwise_env::scenario::Scenario;

/// Every baseline [`build`] makes, in report order.
pub const NAMES: &[&str] = &[
    "cloud-only",
    "edge-only",
    "random",
    "neurosurgeon",
    "oracle-neurosurgeon",
    "static-best",
    "memory-proportional",
    "greedy",
    "oracle-greedy",
    "splitllm-dp",
    "oracle-splitllm-dp",
    "dpp-one-slot",
    "oracle-dpp-one-slot",
];

/// The names of [`NAMES`] the env's spec grammar does not know itself (its `extra_names`).
pub const EXTRA_NAMES: &[&str] = &[
    "neurosurgeon",
    "oracle-neurosurgeon",
    "static-best",
    "memory-proportional",
    "greedy",
    "oracle-greedy",
    "splitllm-dp",
    "oracle-splitllm-dp",
    "dpp-one-slot",
    "oracle-dpp-one-slot",
];

const ORACLES: &[&str] = &["oracle-neurosurgeon", "oracle-greedy", "oracle-splitllm-dp", "oracle-dpp-one-slot"];
const LAYER_WISE: &[&str] = &["neurosurgeon", "oracle-neurosurgeon", "static-best", "memory-proportional"];

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

/// Whether the baseline reads the true state of the slot (label it as an oracle in reports).
pub fn is_oracle(name: &str) -> bool {
    ORACLES.contains(&base_name(name))
}

/// Whether the baseline is a layer-wise (single-cut) partitioner.
pub fn is_layer_wise(name: &str) -> bool {
    LAYER_WISE.contains(&base_name(name))
}

/// How a baseline is written with its argument, for error messages.
fn usage(name: &str) -> String {
    match name {
        "neurosurgeon" | "oracle-neurosurgeon" | "static-best" => format!("{name} or {name}:{}", Objective::ARGS),
        "greedy" | "oracle-greedy" | "splitllm-dp" | "oracle-splitllm-dp" => {
            format!("{name} (SLA = the scenario's deadline for the typical request) or {name}:SLA_S (seconds, > 0)")
        }
        "dpp-one-slot" | "oracle-dpp-one-slot" => format!("{name} or {name}:{}", dpp::Charging::ARGS),
        _ => format!("{name} (no argument)"),
    }
}

/// Builds baseline `name` (one of [`NAMES`]) for `scenario`; `arg` is the spec's argument,
/// `seed` seeds the random policy.
pub fn build(name: &str, arg: Option<&str>, seed: u64, scenario: &Scenario) -> Result<Box<dyn Policy>, BaselineError> {
    let name = name.trim();
    let arg = arg.map(str::trim);
    let bad = |a: &str| BaselineError::BadArgument { name: name.to_string(), arg: a.to_string(), usage: usage(name) };
    let no_arg = |p: Box<dyn Policy>| match arg {
        None => Ok(p),
        Some(a) => Err(bad(a)),
    };
    let objective = || Objective::parse(arg).ok_or_else(|| bad(arg.unwrap_or_default()));
    let charging = || dpp::Charging::parse(arg).ok_or_else(|| bad(arg.unwrap_or_default()));
    let placement = |algorithm, oracle| {
        let sla_s = match arg {
            None => None,
            Some(a) => Some(a.parse::<f64>().ok().filter(|s| s.is_finite() && *s > 0.0).ok_or_else(|| bad(a))?),
        };
        PlacementPolicy::new(scenario, algorithm, oracle, sla_s)
            .map(|p| Box::new(p) as Box<dyn Policy>)
            .map_err(|message| BaselineError::Scenario { name: name.to_string(), message, usage: usage(name) })
    };
    match name {
        "cloud-only" => no_arg(Box::new(CloudOnly)),
        "edge-only" => no_arg(Box::new(EdgeOnly)),
        "random" => no_arg(Box::new(RandomPolicy::new(seed))),
        "neurosurgeon" => Ok(Box::new(Neurosurgeon::new(scenario, objective()?, false))),
        "oracle-neurosurgeon" => Ok(Box::new(Neurosurgeon::new(scenario, objective()?, true))),
        "static-best" => Ok(Box::new(StaticBest::new(scenario, objective()?))),
        "memory-proportional" => no_arg(Box::new(MemoryProportional::new(scenario))),
        "greedy" => placement(Algorithm::Greedy, false),
        "oracle-greedy" => placement(Algorithm::Greedy, true),
        "splitllm-dp" => placement(Algorithm::Dp, false),
        "oracle-splitllm-dp" => placement(Algorithm::Dp, true),
        "dpp-one-slot" => Ok(Box::new(dpp::DppOneSlot::new(scenario, false, charging()?))),
        "oracle-dpp-one-slot" => Ok(Box::new(dpp::DppOneSlot::new(scenario, true, charging()?))),
        _ => {
            let allowed: Vec<String> = NAMES.iter().map(|n| usage_short(n)).collect();
            Err(BaselineError::Unknown { name: name.to_string(), allowed: allowed.join(", ") })
        }
    }
}

/// `name[:ARG]` as listed in error messages.
fn usage_short(name: &str) -> String {
    match name {
        "neurosurgeon" | "oracle-neurosurgeon" | "static-best" => format!("{name}[:{}]", Objective::ARGS),
        "greedy" | "oracle-greedy" | "splitllm-dp" | "oracle-splitllm-dp" => format!("{name}[:SLA_S]"),
        "dpp-one-slot" | "oracle-dpp-one-slot" => format!("{name}[:{}]", dpp::Charging::ARGS),
        _ => name.to_string(),
    }
}
