//! splitwise-env: the edge–cloud LLM partitioning simulator of `docs/system-model.md`
//! (system model, Gymnasium-style environments, vector env, non-learned policy interface).
//!
//! This crate has no burn dependency and does no file IO: traces and configs arrive as text.

pub mod accuracy;
pub mod accuracy_measurement;
pub mod als;
pub mod api;
pub mod background;
pub mod cartpole;
pub mod conditions;
pub mod cost;
pub mod device;
pub mod exogenous;
pub mod expensive;
pub mod failure;
pub mod link;
pub mod lyapunov;
pub mod model;
pub mod observation;
pub mod partition;
pub mod plan;
pub mod policy;
pub mod public;
pub mod regime;
pub mod rng;
pub mod scenario;
pub mod service;
pub mod spaces;
pub mod trace;
pub mod validate;
pub mod vector;
pub mod workload;

pub use api::{Env, EnvError, EnvSpec, Observation, Step, StepMetrics, Transition};
pub use spaces::{ActionSpace, Feature, ObservationSpace};
pub use vector::{Autoreset, EpisodeRecord, VecEnv, VecEnvState};
