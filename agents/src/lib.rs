//! splitwise-agents: learning agents on burn 0.22 (flex CPU backend). This crate owns the PPO
//! learner — networks, masked multi-discrete policy head, rollout buffer, GAE, the clipped
//! surrogate update with global gradient clipping, observation/reward normalisation — and its
//! in-memory state for exact resume. No files, no TOML, no TensorBoard: callers get typed
//! statistics and byte/serde state and decide what to write where.
//!
//! Reading order: [`config`] → [`ppo`] (the loop, top to bottom) → [`ppo_step`] (one gradient step
//! over any [`policy_model::PolicyModel`]) → the pure maths it calls ([`gae`], [`loss`], [`distribution`], [`grad_clip`], [`normalize`]) → [`network`].

pub mod buffer;
pub mod compute_device;
pub mod config;
pub mod distribution;
pub mod evaluate;
pub mod export;
pub mod gae;
pub mod grad_clip;
pub mod hppo;
pub mod learner;
pub mod loss;
pub mod mbrl;
pub mod network;
pub mod normalize;
pub mod policy_model;
pub mod ppo;
pub mod ppo_step;
pub mod surrogate;
pub mod teacher;

pub use compute_device::{ComputeDevice, DeviceError};
pub use config::{AdvantageBaseline, Annealing, GradClip, Imitation, PpoConfig, Temperature};
pub use evaluate::evaluate;
pub use hppo::{HighHold, Hppo, HppoConfig, HppoState};
pub use learner::{Acts, Learner, LearnerConfig, LearnerState};
pub use mbrl::{Mbrl, MbrlConfig, MbrlError, MbrlMeta, MbrlState, Spent};
pub use ppo::{
    ActionChoice, ConditionalMask, PolicyShape, Ppo, PpoError, PpoMeta, PpoState, Progress, RolloutStats, StepOutcome,
    UpdateStats,
};
pub use surrogate::{
    FitReport, Prediction, RewardSurrogate, SurrogateConfig, SurrogateError, SurrogateMeta, SurrogateState,
};
pub use teacher::Teacher;
