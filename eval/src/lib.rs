//! splitwise-eval: non-learned baselines (system-model §10), the evaluation runner that compares
//! policies on identical seeded episodes, and the report (tables, JSON, CSV, plots).

pub mod baselines;
pub mod headroom;
pub mod plots;
pub mod policy_specs;
pub mod report;
pub mod runner;
pub mod scenario_file;
pub mod scenario_limits;
