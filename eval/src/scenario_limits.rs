//! Upper bounds on a scenario's sizes and rates that no real experiment reaches, checked before
//! any work so that a typo (an arrival rate of 1e12/s, a zero-rate trace row, a queue of 10^12)
//! is an error naming the file, the field, the value and what is allowed instead of a memory
//! abort minutes later. Each bound states what it protects; raise one here (with its reason) if
//! a real experiment ever needs more. Every front end that loads scenario files (the CLI, the
//! Python bindings) applies them through [`crate::scenario_file`]; the learner's and the
//! training run's bounds are the app's (`src/limits.rs`).

use splitwise_env::scenario::{Scenario, ScenarioConfig};
use splitwise_env::validate::{InvalidField, Validation};
use splitwise_env::workload::ArrivalConfig;

/// Mean arrival rate (requests/s, any regime): an edge device serving an LLM sees a few per
/// second; 1,000/s would queue ~10^3 requests per slot in the simulator's per-request state.
pub const MAX_ARRIVAL_RATE_PER_S: f64 = 1000.0;
/// Lowest link rate a trace may replay (bit/s). Transfers are integrated over the trace, so a
/// rate of 0 never completes one (the exogenous look-ahead then grows without bound) and 1 bit/s
/// needs hours of look-ahead per transfer; GSM data is 9.6 kbit/s. Outages belong to
/// `link.failures` (Gilbert–Elliott) or the regimes.
pub const MIN_TRACE_RATE_BPS: f64 = 1e3;
/// Requests the admission queue may hold.
pub const MAX_QUEUE_CAPACITY: usize = 1_000_000;
/// Slots of history in the observation (3 features each).
pub const MAX_OBSERVATION_HISTORY: u32 = 1000;

/// `value <= max`, or an error naming `field` and why the bound exists.
pub fn at_most<T: PartialOrd + std::fmt::Display>(field: &str, value: T, max: T, why: &str) -> Validation {
    if value <= max { Ok(()) } else { Err(InvalidField::new(field, value, format!("must be <= {max} ({why})"))) }
}

/// Scenario bounds on the file's own fields (paths from the scenario's root).
pub fn check_scenario_config(c: &ScenarioConfig) -> Validation {
    let rate = |field: &str, v: f64| at_most(field, v, MAX_ARRIVAL_RATE_PER_S, "requests/s an edge device serves");
    match &c.workload.arrivals {
        ArrivalConfig::Constant { rate_per_s } => rate("workload.arrivals.rate_per_s", *rate_per_s)?,
        ArrivalConfig::Markov { rates_per_s, .. } => {
            for (i, r) in rates_per_s.iter().enumerate() {
                rate(&format!("workload.arrivals.rates_per_s[{i}]"), *r)?;
            }
        }
        ArrivalConfig::Diurnal { mean_rate_per_s, .. } => rate("workload.arrivals.mean_rate_per_s", *mean_rate_per_s)?,
        ArrivalConfig::Periodic { interval_s, .. } => {
            if interval_s.is_nan() || *interval_s < 1.0 / MAX_ARRIVAL_RATE_PER_S {
                return Err(InvalidField::new(
                    "workload.arrivals.interval_s",
                    interval_s,
                    format!(
                        "must be >= {} s (at most {MAX_ARRIVAL_RATE_PER_S} requests/s)",
                        1.0 / MAX_ARRIVAL_RATE_PER_S
                    ),
                ));
            }
        }
        ArrivalConfig::Trace { .. } => {} // checked on the resolved series
    }
    at_most("workload.queue_capacity", c.workload.queue_capacity, MAX_QUEUE_CAPACITY, "requests waiting")?;
    at_most("observation.history", c.observation.history, MAX_OBSERVATION_HISTORY, "slots of history")?;
    Ok(())
}

/// Bounds only the resolved scenario knows (trace contents).
pub fn check_scenario(s: &Scenario) -> Validation {
    let mean = s.arrivals.mean_rate_per_s();
    if matches!(s.config.workload.arrivals, ArrivalConfig::Trace { .. })
        && (mean.is_nan() || mean > MAX_ARRIVAL_RATE_PER_S)
    {
        return Err(InvalidField::new(
            "workload.arrivals.path",
            format!("a trace with mean rate {mean} requests/s"),
            format!("the mean rate must be <= {MAX_ARRIVAL_RATE_PER_S} requests/s"),
        ));
    }
    Ok(())
}
