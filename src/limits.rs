//! Upper bounds on sizes and rates that no real experiment reaches, checked before any work so
//! that a typo (`n_envs = 1e8`, an arrival rate of 1e12/s, a zero-rate trace row) is an error
//! naming the file, the field, the value and what is allowed instead of a memory abort minutes
//! later. Each bound states what it protects; raise one here (with its reason) if a real
//! experiment ever needs more.

use splitwise_agents::PpoConfig;
use splitwise_env::validate::{InvalidField, Validation};
// The scenario bounds live beside the scenario-file loader in the eval crate (the Python
// bindings load scenario files too); re-exported so the app names every bound in one place.
pub use splitwise_eval::scenario_limits::{
    MAX_ARRIVAL_RATE_PER_S, MAX_OBSERVATION_HISTORY, MAX_QUEUE_CAPACITY, MIN_TRACE_RATE_BPS, at_most, check_scenario,
    check_scenario_config,
};

/// Parallel environments of one learner (the vector env's bound, shared with the Python
/// bindings).
pub use splitwise_env::vector::MAX_MEMBERS as MAX_N_ENVS;
/// Samples in one rollout (`n_steps × n_envs`). The buffer holds observations, masks, actions,
/// log-probs, values and advantages per sample (≈ 0.5 kB at our observation sizes): 2^20
/// samples ≈ 0.5 GB. SB3 defaults use 2,048.
pub const MAX_ROLLOUT_SAMPLES: usize = 1 << 20;
/// Width of one hidden layer (a 4096² layer is 16.8 M parameters, ×4 with Adam's moments).
pub const MAX_HIDDEN_WIDTH: usize = 4096;
/// Hidden layers per network.
pub const MAX_HIDDEN_LAYERS: usize = 8;
/// Evaluation episodes during training: the evaluation runs one environment per episode.
pub const MAX_EVAL_EPISODES: usize = 1000;
/// Env steps of one training run (≈ 300 years of 1 s slots).
pub const MAX_TOTAL_STEPS: u64 = 10_000_000_000;

/// Command-line bounds (clap ranges) shared by the commands.
pub const MAX_EVAL_EPISODES_CLI: u32 = 100_000;
pub const MAX_SLOTS_CLI: u64 = 100_000_000;
pub const MAX_SIMULATE_STEPS: u64 = 1_000_000_000;

/// The learner's sizes (field paths relative to `[agent]`).
pub fn check_agent(p: &PpoConfig) -> Validation {
    at_most("n_envs", p.n_envs, MAX_N_ENVS, "parallel simulators of one learner")?;
    at_most("n_steps", p.n_steps, MAX_ROLLOUT_SAMPLES, "steps per env in one rollout")?;
    let samples = p.n_steps.saturating_mul(p.n_envs);
    if samples > MAX_ROLLOUT_SAMPLES {
        return Err(InvalidField::new(
            "n_steps",
            p.n_steps,
            format!(
                "n_steps × n_envs = {samples} must be <= {MAX_ROLLOUT_SAMPLES} (the rollout buffer would need \
                 about {:.1} GB)",
                samples as f64 * 512.0 / 1e9
            ),
        ));
    }
    at_most("batch_size", p.batch_size, MAX_ROLLOUT_SAMPLES, "samples per minibatch")?;
    for (name, sizes) in [("actor_hidden", &p.actor_hidden), ("critic_hidden", &p.critic_hidden)] {
        at_most(name, sizes.len(), MAX_HIDDEN_LAYERS, "hidden layers")
            .map_err(|e| InvalidField::new(name, format!("{sizes:?}"), e.allowed))?;
        for (i, &w) in sizes.iter().enumerate() {
            at_most(&format!("{name}[{i}]"), w, MAX_HIDDEN_WIDTH, "units per hidden layer")?;
        }
    }
    Ok(())
}

/// The training schedule's sizes (field paths relative to `[training]`).
pub fn check_training(total_steps: u64, eval_episodes: usize) -> Validation {
    at_most("total_steps", total_steps, MAX_TOTAL_STEPS, "env steps of one run")?;
    at_most("eval_episodes", eval_episodes, MAX_EVAL_EPISODES, "one environment per evaluation episode")
}
