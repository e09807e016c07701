//! Command-line interface: clap subcommands, each delegating to its module.

use anyhow::Result;
use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "splitwise",
    version,
    about = "Train, evaluate and export RL policies that split an LLM between an edge device and the cloud"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a policy on a scenario and print a summary table.
    Simulate(crate::simulate::SimulateArgs),
    /// Train a policy from a training config (TensorBoard logs, checkpoints, exact resume).
    Train(crate::train::TrainArgs),
    /// Compare policies on identical seeded episodes and write a report with plots.
    Eval(crate::eval::EvalArgs),
    /// Export a checkpoint's policy to ONNX with a JSON sidecar describing inputs and outputs.
    Export(crate::export::ExportArgs),
}

pub fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Simulate(args) => crate::simulate::run(&args),
        Command::Train(args) => crate::train::run(&args),
        Command::Eval(args) => crate::eval::run(&args),
        Command::Export(args) => crate::export::run(&args),
    }
}
