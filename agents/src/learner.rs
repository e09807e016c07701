//! Every learner the crate trains, behind one type: the training loop, evaluation and export
//! call these methods and never ask which kind they hold. A new agent is a new variant here and
//! one entry in the app's agent registry.

use crate::PpoConfig;
use crate::hppo::{Hppo, HppoConfig, HppoState};
use crate::ppo::UpdateStats;
use crate::ppo::{ActionChoice, ConditionalMask, PolicyShape, Ppo, PpoError, PpoState, Progress, RolloutStats};
use splitwise_env::api::Env;
use splitwise_env::vector::VecEnv;

/// A learner's hyperparameters.
#[derive(Clone, Debug, PartialEq)]
pub enum LearnerConfig {
    Flat(Box<PpoConfig>),
    Hierarchical(Box<HppoConfig>),
}

impl LearnerConfig {
    /// Vector-env members every rollout steps.
    pub fn n_envs(&self) -> usize {
        match self {
            LearnerConfig::Flat(c) => c.n_envs,
            LearnerConfig::Hierarchical(c) => c.high.n_envs,
        }
    }
}

/// A learner's complete state.
// One per checkpoint, built and consumed once: the size difference between variants is moot.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq)]
pub enum LearnerState {
    Flat(PpoState),
    Hierarchical(Box<HppoState>),
}

// One per run, never copied around: the size difference between variants is moot.
#[allow(clippy::large_enum_variant)]
pub enum Learner {
    Flat(Ppo),
    Hierarchical(Box<Hppo>),
}

/// Acting on rows of observations and masks (evaluation, policies).
pub trait Acts {
    /// Action components per row.
    fn n_components(&self) -> usize;
    /// Actions for raw observation rows and full mask rows, under the environment's
    /// conditional masks when given.
    fn act_into_with(
        &self,
        obs: &[f32],
        masks: &[bool],
        choice: ActionChoice<'_>,
        conditional: Option<ConditionalMask<'_>>,
        actions: &mut [usize],
    ) -> Result<(), PpoError>;
}

impl Acts for Ppo {
    fn n_components(&self) -> usize {
        self.shape().n_components()
    }
    fn act_into_with(
        &self,
        obs: &[f32],
        masks: &[bool],
        choice: ActionChoice<'_>,
        conditional: Option<ConditionalMask<'_>>,
        actions: &mut [usize],
    ) -> Result<(), PpoError> {
        Ppo::act_into_with(self, obs, masks, choice, conditional, actions)
    }
}

impl Acts for Hppo {
    fn n_components(&self) -> usize {
        self.env_shape().n_components()
    }
    fn act_into_with(
        &self,
        obs: &[f32],
        masks: &[bool],
        choice: ActionChoice<'_>,
        conditional: Option<ConditionalMask<'_>>,
        actions: &mut [usize],
    ) -> Result<(), PpoError> {
        Hppo::act_into_with(self, obs, masks, choice, conditional, actions)
    }
}

impl Acts for Learner {
    fn n_components(&self) -> usize {
        self.env_shape().n_components()
    }
    fn act_into_with(
        &self,
        obs: &[f32],
        masks: &[bool],
        choice: ActionChoice<'_>,
        conditional: Option<ConditionalMask<'_>>,
        actions: &mut [usize],
    ) -> Result<(), PpoError> {
        match self {
            Learner::Flat(p) => p.act_into_with(obs, masks, choice, conditional, actions),
            Learner::Hierarchical(h) => h.act_into_with(obs, masks, choice, conditional, actions),
        }
    }
}

impl Learner {
    /// A fresh learner for an environment of shape `env`.
    pub fn new(config: LearnerConfig, env: PolicyShape, seed: u64) -> Result<Self, PpoError> {
        Ok(match config {
            LearnerConfig::Flat(c) => Learner::Flat(Ppo::new(*c, env, seed)?),
            LearnerConfig::Hierarchical(c) => Learner::Hierarchical(Box::new(Hppo::new(*c, env, seed)?)),
        })
    }

    /// A fresh learner for `env`: its shape, and the start that depends on the environment
    /// itself, not only on its shape (a hierarchy's low-level prior, [`Hppo::init_low_prior`]).
    pub fn for_env<E: Env>(config: LearnerConfig, env: &E, seed: u64) -> Result<Self, PpoError> {
        let mut learner = Self::new(config, PolicyShape::of(env.spec()), seed)?;
        if let Learner::Hierarchical(h) = &mut learner {
            h.init_low_prior(env)?;
        }
        Ok(learner)
    }

    /// The environment's observation width and action space the learner acts in.
    pub fn env_shape(&self) -> PolicyShape {
        match self {
            Learner::Flat(p) => p.shape().clone(),
            Learner::Hierarchical(h) => h.env_shape().clone(),
        }
    }

    pub fn progress(&self) -> Progress {
        match self {
            Learner::Flat(p) => p.progress(),
            Learner::Hierarchical(h) => h.progress(),
        }
    }

    /// Every parameter, as host values (compares weights bit for bit; content checksums).
    pub fn parameter_values(&self) -> Vec<Vec<f32>> {
        match self {
            Learner::Flat(p) => p.parameter_values(),
            Learner::Hierarchical(h) => h.parameter_values(),
        }
    }

    /// One rollout on `venv`, calling `on_step` after every vector step.
    pub fn collect_rollout_observed<E: Env>(
        &mut self,
        venv: &mut VecEnv<E>,
        on_step: impl FnMut(&mut VecEnv<E>),
    ) -> Result<RolloutStats, PpoError> {
        match self {
            Learner::Flat(p) => p.collect_rollout_observed(venv, on_step),
            Learner::Hierarchical(h) => h.collect_rollout_observed(venv, on_step),
        }
    }

    /// Updates on the finished rollout: `(level, statistics)` per network; the level is empty
    /// for a flat learner, `high` / `low` in a hierarchy (the logging prefixes).
    pub fn update(&mut self) -> Vec<(&'static str, UpdateStats)> {
        match self {
            Learner::Flat(p) => vec![("", p.update())],
            Learner::Hierarchical(h) => {
                let [high, low] = h.update();
                vec![("high", high), ("low", low)]
            }
        }
    }

    pub fn export_state(&self) -> Result<LearnerState, PpoError> {
        Ok(match self {
            Learner::Flat(p) => LearnerState::Flat(p.export_state()?),
            Learner::Hierarchical(h) => LearnerState::Hierarchical(Box::new(h.export_state()?)),
        })
    }

    /// Replaces this learner's state with a saved one of the same kind and shapes (its own
    /// hyperparameters are kept: continuing with changed ones).
    pub fn restore_state(&mut self, state: &LearnerState) -> Result<(), PpoError> {
        match (self, state) {
            (Learner::Flat(p), LearnerState::Flat(s)) => p.restore_state(s),
            (Learner::Hierarchical(h), LearnerState::Hierarchical(s)) => h.restore_state(s),
            _ => Err(PpoError::StateMismatch("the saved agent is of another kind".into())),
        }
    }

    pub fn from_state(state: &LearnerState) -> Result<Self, PpoError> {
        Ok(match state {
            LearnerState::Flat(s) => Learner::Flat(Ppo::from_state(s)?),
            LearnerState::Hierarchical(s) => Learner::Hierarchical(Box::new(Hppo::from_state(s)?)),
        })
    }
}
