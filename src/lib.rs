//! The splitwise application: CLI, config loading, training loop, checkpoints, export, logging.
//! `main.rs` only dispatches; everything testable lives here.

pub mod agents;
pub mod checkpoint;
pub mod cli;
pub mod config;
pub mod config_set;
pub mod device;
pub mod eval;
pub mod eval_episodic;
pub mod export;
pub mod held_out;
pub mod limits;
pub mod logging;
pub mod metrics_jsonl;
pub mod policies;
pub mod scenario_file;
pub mod simulate;
pub mod teacher;
pub mod tensorboard;
pub mod train;
