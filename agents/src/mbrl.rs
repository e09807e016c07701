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
use crate::ppo::{ActionChoice, PolicyShape, Ppo, PpoError, PpoState, RolloutStats, UpdateStats};
use crate::surrogate::{FitReport, RewardSurrogate, SurrogateConfig, SurrogateError, SurrogateState};
use serde::{Deserialize, Serialize};
use splitwise_env::api::Env;
use splitwise_env::expensive::{ComponentModel, ExpensiveOps, ExpensiveReward};
use splitwise_env::rng::{Stream, StreamRng, derive_seed, item_rng};
use splitwise_env::validate::InvalidField;
use splitwise_env::vector::VecEnv;
use std::sync::{Arc, Mutex};
use std::time::Instant;

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
    /// The refit, or `None` for an iteration before the real environment made two measurements
    /// (it took real steps only: nothing to fit, no policy update).
    pub fit: Option<FitReport>,
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
    seed: u64,
    /// Iterations completed: each one's model environment is reset with a seed derived from it.
    iterations: u64,
    last_fit: Option<FitReport>,
}

/// An MBRL learner's complete state: its policy learner, its surrogate, every measurement so
/// far and its counters. Between iterations only (after the model phase).
#[derive(Clone, Debug, PartialEq)]
pub struct MbrlState {
    pub ppo: PpoState,
    pub surrogate: SurrogateState,
    pub meta: MbrlMeta,
}

/// The part of [`MbrlState`] that is not a network record.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MbrlMeta {
    pub format_version: u32,
    pub config: MbrlConfig,
    pub component_inputs: usize,
    /// The measurements: `component_inputs` features per sample, row-major, and each value.
    pub inputs: Vec<f32>,
    pub targets: Vec<f32>,
    pub spent: Spent,
    pub rng: StreamRng,
    pub seed: u64,
    pub iterations: u64,
    pub last_fit: Option<FitReport>,
}

pub const MBRL_STATE_VERSION: u32 = 1;

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
            seed,
            iterations: 0,
            last_fit: None,
            config,
        })
    }

    /// The policy's learner on these devices ([`Ppo::place`]). The surrogate stays on the CPU:
    /// it fits a few hundred rows at a time, and the model environment queries it one step at a
    /// time, where a GPU's launch cost exceeds the whole forward pass.
    pub fn place(&mut self, learn: &burn::tensor::Device, act: &burn::tensor::Device) {
        self.ppo.place(learn, act);
    }

    /// The model to build the model environment with (`env.with_component_model(mbrl.model())`).
    pub fn model(&self) -> Arc<dyn ComponentModel> {
        self.surrogate.clone()
    }

    pub fn ppo(&self) -> &Ppo {
        &self.ppo
    }

    pub fn config(&self) -> &MbrlConfig {
        &self.config
    }

    pub fn spent(&self) -> Spent {
        self.spent
    }

    /// Measurements so far.
    pub fn samples(&self) -> usize {
        self.targets.len()
    }

    /// The last surrogate fit's report (none before the first iteration).
    pub fn last_fit(&self) -> Option<FitReport> {
        self.last_fit
    }

    fn surrogate(&self) -> std::sync::MutexGuard<'_, RewardSurrogate> {
        self.surrogate.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The policy's and the surrogate's parameters as host values.
    pub fn parameter_values(&self) -> Vec<Vec<f32>> {
        let mut values = self.ppo.parameter_values();
        values.extend(self.surrogate().parameter_values());
        values
    }

    /// One iteration (module docs) on `real`, an environment with an expensive component.
    pub fn iterate<E: ExpensiveReward>(&mut self, real: &mut VecEnv<E>) -> Result<IterationStats, MbrlError> {
        let ops = ExpensiveOps::of();
        self.real_phase(real, &ops, |_| {})?;
        self.model_phase(real, &ops)
    }

    /// Step 1: `real_steps` sampled vector steps on the real environment, every measurement kept
    /// and every evaluation counted; `on_step` runs after each step (the caller's metrics).
    pub fn real_phase<E: Env>(
        &mut self,
        real: &mut VecEnv<E>,
        ops: &ExpensiveOps<E>,
        mut on_step: impl FnMut(&mut VecEnv<E>),
    ) -> Result<RolloutStats, MbrlError> {
        let n = real.n_envs();
        let mut actions = vec![0; n * self.ppo.shape().n_components()];
        let mut episodes = Vec::new();
        let (mut env_time_s, mut policy_time_s) = (0.0, 0.0);
        let mut values = Vec::new();
        for _ in 0..self.config.real_steps {
            let start = Instant::now();
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
            let acted = Instant::now();
            real.step(&actions).map_err(PpoError::from)?;
            env_time_s += acted.elapsed().as_secs_f64();
            policy_time_s += (acted - start).as_secs_f64();
            for info in real.infos() {
                self.spent.expensive_evaluations += u64::from((ops.evaluations)(info));
                values.clear();
                (ops.measurements)(info, &mut self.inputs, &mut values);
                self.targets.extend(values.iter().map(|&v| v as f32));
            }
            self.spent.real_steps += n as u64;
            episodes.extend_from_slice(real.finished());
            on_step(real);
        }
        Ok(RolloutStats {
            steps: (self.config.real_steps * n) as u64,
            global_step: self.spent.real_steps,
            episodes,
            env_time_s,
            policy_time_s,
        })
    }

    /// Steps 2 and 3: refit the surrogate on every measurement so far, then `model_updates` PPO
    /// rollouts and updates on a model environment built from `real`'s members with the
    /// surrogate in place of the measurement, reset with a seed derived from the run's seed and
    /// the iteration (so an iteration needs no model-environment state from the one before: a
    /// checkpoint between iterations resumes exactly). Until the real environment has made two
    /// measurements there is nothing to fit, and the iteration ends after its real steps (a
    /// partition scenario whose first requests wait for weight loads, or take plans that cross
    /// nothing, measures nothing in its first steps).
    pub fn model_phase<E: Env>(
        &mut self,
        real: &VecEnv<E>,
        ops: &ExpensiveOps<E>,
    ) -> Result<IterationStats, MbrlError> {
        if self.targets.len() < 2 {
            return Ok(IterationStats {
                spent: self.spent,
                samples: self.targets.len(),
                fit: None,
                updates: Vec::new(),
            });
        }
        let fit = self.surrogate().fit(&self.inputs, &self.targets)?;
        self.last_fit = Some(fit);
        let model = self.model();
        let mut venv =
            VecEnv::new(real.members().iter().map(|m| (ops.with_component_model)(m, model.clone())).collect());
        venv.reset(derive_seed(derive_seed(self.seed, Stream::Surrogate as u64), 1 + self.iterations));
        let mut updates = Vec::with_capacity(self.config.model_updates);
        for _ in 0..self.config.model_updates {
            let rollout = self.ppo.collect_rollout(&mut venv)?;
            self.spent.model_steps += rollout.steps;
            updates.push(self.ppo.update());
        }
        self.iterations += 1;
        Ok(IterationStats { spent: self.spent, samples: self.targets.len(), fit: Some(fit), updates })
    }

    pub fn export_state(&self) -> Result<MbrlState, MbrlError> {
        // One lock for both reads: a second `self.surrogate()` in this expression would wait on
        // the first guard, which lives to the end of the statement.
        let (surrogate, component_inputs) = {
            let s = self.surrogate();
            (s.export_state()?, s.input_dim())
        };
        Ok(MbrlState {
            ppo: self.ppo.export_state()?,
            surrogate,
            meta: MbrlMeta {
                format_version: MBRL_STATE_VERSION,
                config: self.config.clone(),
                component_inputs,
                inputs: self.inputs.clone(),
                targets: self.targets.clone(),
                spent: self.spent,
                rng: self.rng.clone(),
                seed: self.seed,
                iterations: self.iterations,
                last_fit: self.last_fit,
            },
        })
    }

    /// A learner rebuilt from a saved state; `config` replaces the saved hyperparameters when
    /// given (the policy's and the surrogate's shapes must match).
    pub fn from_state(state: &MbrlState, config: Option<&MbrlConfig>) -> Result<Self, MbrlError> {
        let meta = &state.meta;
        if meta.format_version != MBRL_STATE_VERSION {
            return Err(PpoError::StateMismatch(format!(
                "MBRL format version {}, this build reads {MBRL_STATE_VERSION}",
                meta.format_version
            ))
            .into());
        }
        let d = meta.component_inputs;
        if d == 0 || meta.inputs.len() != meta.targets.len() * d {
            return Err(PpoError::StateMismatch(format!(
                "{} measurement inputs for {} values of {d} features",
                meta.inputs.len(),
                meta.targets.len()
            ))
            .into());
        }
        let config = config.unwrap_or(&meta.config).clone();
        config.validate()?;
        if config.surrogate.hidden != meta.config.surrogate.hidden
            || config.surrogate.ensemble != meta.config.surrogate.ensemble
        {
            return Err(PpoError::StateMismatch(format!(
                "surrogate hidden {:?} × {} in the saved state, {:?} × {} configured",
                meta.config.surrogate.hidden,
                meta.config.surrogate.ensemble,
                config.surrogate.hidden,
                config.surrogate.ensemble
            ))
            .into());
        }
        let mut ppo = Ppo::new(config.ppo.clone(), state.ppo.meta.shape.clone(), 0)?;
        ppo.restore_state(&state.ppo)?;
        let mut surrogate = RewardSurrogate::from_state(&state.surrogate)?;
        surrogate.set_config(config.surrogate.clone())?;
        Ok(Self {
            ppo,
            surrogate: Arc::new(SurrogateComponent(Mutex::new(surrogate))),
            inputs: meta.inputs.clone(),
            targets: meta.targets.clone(),
            spent: meta.spent,
            rng: meta.rng.clone(),
            seed: meta.seed,
            iterations: meta.iterations,
            last_fit: meta.last_fit,
            config,
        })
    }
}
