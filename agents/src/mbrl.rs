//! Model-based RL with a learned reward surrogate: Adaptive Layer Splitting's agent (Chen et al.,
//! arXiv 2406.02616), Dyna-style (Sutton 1991). Each iteration
//!
//! 1. acts with the current policy (sampled) for `real_steps` vector steps on the **real**
//!    environment, whose expensive reward component is measured: every measurement (inputs,
//!    value) becomes a surrogate training sample, and every evaluation is counted;
//! 2. refits the [`RewardSurrogate`] on all samples so far;
//! 3. runs `model_updates` PPO rollouts and updates (the shared PPO step) on a **model**
//!    environment: the same environment with the surrogate standing in for the measurement
//!    ([`ExpensiveReward::with_component_model`]). Its states are real (the environment's cheap
//!    dynamics are stepped); only the expensive component is modelled, so a model step costs no
//!    evaluation.
//!
//! What is expensive in practice is the reward evaluation (a perplexity run, a hardware run), not
//! the cheap exogenous dynamics, so the agent saves evaluations, not env steps (documented choice;
//! a world model that also saves real steps is not built).

use crate::PpoConfig;
use crate::ppo::{ActionChoice, PolicyShape, Ppo, PpoError, UpdateStats};
use crate::surrogate::{FitReport, RewardSurrogate, SurrogateConfig, SurrogateError};
use serde::{Deserialize, Serialize};
use splitwise_env::expensive::{ComponentModel, ExpensiveReward};
use splitwise_env::rng::{Stream, StreamRng, item_rng};
use splitwise_env::validate::InvalidField;
use splitwise_env::vector::VecEnv;
use std::sync::{Arc, Mutex};

#[derive(Deserialize, Serialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct MbrlConfig {
    /// The policy's learner (its `n_envs` is the model environment's and the real one's).
    pub ppo: PpoConfig,
    #[serde(default)]
    pub surrogate: SurrogateConfig,
    /// Real vector steps per iteration (each steps every member once).
    pub real_steps: usize,
    /// PPO rollouts and updates on the model environment per iteration.
    pub model_updates: usize,
}

impl MbrlConfig {
    pub fn validate(&self) -> Result<(), InvalidField> {
        self.ppo.validate().map_err(|e| e.under("ppo"))?;
        self.surrogate.validate().map_err(|e| e.under("surrogate"))?;
        if !(1..=1_000_000).contains(&self.real_steps) {
            return Err(InvalidField::new("real_steps", self.real_steps, "must be in [1, 1000000]"));
        }
        if !(1..=10_000).contains(&self.model_updates) {
            return Err(InvalidField::new("model_updates", self.model_updates, "must be in [1, 10000]"));
        }
        Ok(())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum MbrlError {
    #[error("invalid MBRL config: {0}")]
    Config(#[from] InvalidField),
    #[error(transparent)]
    Ppo(#[from] PpoError),
    #[error(transparent)]
    Surrogate(#[from] SurrogateError),
    #[error("the real environment made no measurement yet: nothing to fit the surrogate on")]
    NoData,
}

/// What the agent has spent so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Spent {
    /// Steps on the real environment (all members together).
    pub real_steps: u64,
    /// Evaluations of the expensive component (all on the real environment).
    pub expensive_evaluations: u64,
    /// Steps on the model environment (free of evaluations).
    pub model_steps: u64,
}

/// One iteration's statistics.
#[derive(Clone, Debug)]
pub struct IterationStats {
    pub spent: Spent,
    pub samples: usize,
    pub fit: FitReport,
    pub updates: Vec<UpdateStats>,
}

/// The surrogate as the model environment's expensive component (a single-row prediction per
/// call; the lock is uncontended: one environment steps at a time).
#[derive(Debug)]
pub struct SurrogateComponent(Mutex<RewardSurrogate>);

impl ComponentModel for SurrogateComponent {
    fn value(&self, inputs: &[f32]) -> f64 {
        let surrogate = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        surrogate.predict(inputs).map_or(f64::NAN, |p| f64::from(p.mean[0]))
    }
}

pub struct Mbrl {
    config: MbrlConfig,
    ppo: Ppo,
    surrogate: Arc<SurrogateComponent>,
    inputs: Vec<f32>,
    targets: Vec<f32>,
    spent: Spent,
    /// Draws the real environment's actions (the learner's own stream is for its rollouts).
    rng: StreamRng,
}

impl Mbrl {
    /// `component_inputs`: the expensive component's input count (the environment's
    /// [`ExpensiveReward::component_inputs`]).
    pub fn new(config: MbrlConfig, shape: PolicyShape, component_inputs: usize, seed: u64) -> Result<Self, MbrlError> {
        config.validate()?;
        let ppo = Ppo::new_learner(config.ppo.clone(), shape, seed, 0)?;
        let surrogate = RewardSurrogate::new(config.surrogate.clone(), component_inputs, seed)?;
        Ok(Self {
            ppo,
            surrogate: Arc::new(SurrogateComponent(Mutex::new(surrogate))),
            inputs: Vec::new(),
            targets: Vec::new(),
            spent: Spent::default(),
            rng: item_rng(seed, Stream::Surrogate, 1_000),
            config,
        })
    }

    /// The model to build the model environment with (`env.with_component_model(mbrl.model())`).
    pub fn model(&self) -> Arc<dyn ComponentModel> {
        self.surrogate.clone()
    }

    pub fn ppo(&self) -> &Ppo {
        &self.ppo
    }

    pub fn spent(&self) -> Spent {
        self.spent
    }

    /// One iteration (module docs). `real` and `model` are vector envs of the same environment,
    /// `model`'s built with [`Self::model`]; both are reset by the caller once.
    pub fn iterate<E: ExpensiveReward>(
        &mut self,
        real: &mut VecEnv<E>,
        model: &mut VecEnv<E>,
    ) -> Result<IterationStats, MbrlError> {
        let n = real.n_envs();
        let mut actions = vec![0; n * self.ppo.shape().n_components()];
        for _ in 0..self.config.real_steps {
            let members = real.members();
            let mut conditional =
                |i: usize, prefix: &[usize], out: &mut [bool]| members[i].conditional_mask(prefix, out);
            self.ppo.act_into_with(
                real.obs(),
                real.masks(),
                ActionChoice::Sample(&mut self.rng),
                Some(&mut conditional),
                &mut actions,
            )?;
            real.step(&actions).map_err(PpoError::from)?;
            for info in real.infos() {
                self.spent.expensive_evaluations += u64::from(E::evaluations(info));
                if let Some(value) = E::measurement(info, &mut self.inputs) {
                    self.targets.push(value as f32);
                }
            }
            self.spent.real_steps += n as u64;
        }
        if self.targets.len() < 2 {
            return Err(MbrlError::NoData);
        }
        let fit = {
            let mut surrogate = self.surrogate.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            surrogate.fit(&self.inputs, &self.targets)?
        };
        let mut updates = Vec::with_capacity(self.config.model_updates);
        for _ in 0..self.config.model_updates {
            let rollout = self.ppo.collect_rollout(model)?;
            self.spent.model_steps += rollout.steps;
            updates.push(self.ppo.update());
        }
        Ok(IterationStats { spent: self.spent, samples: self.targets.len(), fit, updates })
    }
}
