//! The splitwise application: CLI, config loading, training loop, checkpoints, export, logging.
//! `main.rs` only dispatches; everything testable lives here.

pub mod tensorboard;
