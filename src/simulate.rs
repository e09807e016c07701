//! `splitwise simulate`: runs one policy on a scenario for N slots and prints the summary table
//! (the first "main job" of the README).

use crate::policies;
use crate::scenario_file;
use anyhow::{Context, Result};
use splitwise_env::api::Env;
use splitwise_env::partition::PartitionEnv;
use splitwise_env::policy::act_and_step;
use splitwise_eval::runner::summary::RunSummary;
use std::path::PathBuf;

#[derive(Debug, clap::Args)]
pub struct SimulateArgs {
    /// Scenario file (configs/*.toml).
    #[arg(long)]
    pub config: PathBuf,
    /// Policy spec, e.g. cloud-only, edge-only, random, fixed-split:12, fixed-split:12/8,
    /// neurosurgeon, splitllm-dp, dpp-one-slot, ckpt:checkpoints/<run>/best.
    #[arg(long, default_value = "cloud-only")]
    pub policy: String,
    /// Slots to simulate (episodes restart at the scenario's time limit).
    #[arg(long, default_value_t = 1000,
          value_parser = clap::value_parser!(u64).range(1..=crate::limits::MAX_SIMULATE_STEPS))]
    pub steps: u64,
    /// Seed of everything random in the run.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

/// Runs the simulation and returns its summary.
pub fn simulate(args: &SimulateArgs) -> Result<RunSummary> {
    let scenario = scenario_file::load(&args.config)?;
    let mut env = PartitionEnv::new(scenario);
    let mut policy = policies::build(&args.policy, args.seed, env.scenario(), env.spec())?;
    env.set_recording(true);
    let (mut obs, _) = env.reset(Some(args.seed));
    policy.reset(args.seed);
    let mut summary = RunSummary::new();
    for _ in 0..args.steps {
        let t = act_and_step(&mut env, policy.as_mut(), &mut obs)
            .with_context(|| format!("policy {} at slot {}", policy.name(), env.slot()))?;
        summary.add_step(&t.info);
        for r in env.take_records().iter().filter(|r| !r.failed) {
            summary.record_latency(r.latency_s);
        }
        if t.truncated || t.terminated {
            let (next, _) = env.reset(None);
            obs = next;
            policy.end_episode();
        }
    }
    Ok(summary)
}

pub fn run(args: &SimulateArgs) -> Result<()> {
    let summary = simulate(args)?;
    println!("scenario {} | policy {} | seed {} | {} slots", args.config.display(), args.policy, args.seed, args.steps);
    let rows = summary.rows();
    let width = rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    for (k, v) in rows {
        println!("{k:<width$}  {v:>14}");
    }
    Ok(())
}
