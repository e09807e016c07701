//! Every learner the crate trains, behind one type: the training loop, evaluation and export
//! call these methods and never ask which kind they hold. A new agent is a new variant here and
//! one entry in the app's agent registry.

use crate::PpoConfig;
use crate::hppo::{HighHold, Hppo, HppoConfig, HppoState};
use crate::mbrl::{Mbrl, MbrlConfig, MbrlError, MbrlState};
use crate::ppo::UpdateStats;
use crate::ppo::{ActionChoice, ConditionalMask, PolicyShape, Ppo, PpoError, PpoState, Progress, RolloutStats};
use crate::teacher::Teacher;
use splitwise_env::api::Env;
use splitwise_env::expensive::ExpensiveOps;
use splitwise_env::validate::InvalidField;
use splitwise_env::vector::VecEnv;

/// A learner's hyperparameters.
#[derive(Clone, Debug, PartialEq)]
pub enum LearnerConfig {
    Flat(Box<PpoConfig>),
    Hierarchical(Box<HppoConfig>),
    ModelBased(Box<MbrlConfig>),
}

impl LearnerConfig {
    /// Imitation ([`crate::config::Imitation`]) is implemented for the flat learner only: a
    /// hierarchy's or a model-based learner's levels refuse it (their rollouts act for each level
    /// themselves), naming the field.
    pub fn check_imitation(&self) -> Result<(), PpoError> {
        let levels: Vec<(&str, &PpoConfig)> = match self {
            LearnerConfig::Flat(_) => return Ok(()),
            LearnerConfig::Hierarchical(c) => vec![("high.imitation", &c.high), ("low.imitation", &c.low)],
            LearnerConfig::ModelBased(c) => vec![("ppo.imitation", &c.ppo)],
        };
        match levels.into_iter().find_map(|(field, c)| c.imitation.as_ref().map(|i| (field, i))) {
            Some((field, i)) => Err(PpoError::Config(InvalidField::new(
                field,
                &i.teacher,
                "imitation is implemented for the flat learner (kind ppo) only",
            ))),
            None => Ok(()),
        }
    }

    /// Vector-env members every rollout steps.
    pub fn n_envs(&self) -> usize {
        match self {
            LearnerConfig::Flat(c) => c.n_envs,
            LearnerConfig::Hierarchical(c) => c.high.n_envs,
            LearnerConfig::ModelBased(c) => c.ppo.n_envs,
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
    ModelBased(Box<MbrlState>),
}

// One per run, never copied around: the size difference between variants is moot.
#[allow(clippy::large_enum_variant)]
pub enum Learner {
    Flat(Ppo),
    Hierarchical(Box<Hppo>),
    ModelBased(Box<Mbrl>),
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
    /// [`Acts::act_into_with`] for a caller acting over episodes, which keeps `hold` between
    /// steps (one row per member) and ends a member's row with [`HighHold::end_episode`] when its
    /// episode ends: a hierarchy with `k_high > 1` holds its high choices there; every other
    /// learner ignores it.
    fn act_holding_into_with(
        &self,
        obs: &[f32],
        masks: &[bool],
        choice: ActionChoice<'_>,
        conditional: Option<ConditionalMask<'_>>,
        hold: &mut HighHold,
        actions: &mut [usize],
    ) -> Result<(), PpoError> {
        let _ = hold;
        self.act_into_with(obs, masks, choice, conditional, actions)
    }
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
    fn act_holding_into_with(
        &self,
        obs: &[f32],
        masks: &[bool],
        choice: ActionChoice<'_>,
        conditional: Option<ConditionalMask<'_>>,
        hold: &mut HighHold,
        actions: &mut [usize],
    ) -> Result<(), PpoError> {
        Hppo::act_holding_into_with(self, obs, masks, choice, conditional, hold, actions)
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
            Learner::ModelBased(m) => m.ppo().act_into_with(obs, masks, choice, conditional, actions),
        }
    }
    fn act_holding_into_with(
        &self,
        obs: &[f32],
        masks: &[bool],
        choice: ActionChoice<'_>,
        conditional: Option<ConditionalMask<'_>>,
        hold: &mut HighHold,
        actions: &mut [usize],
    ) -> Result<(), PpoError> {
        match self {
            Learner::Hierarchical(h) => h.act_holding_into_with(obs, masks, choice, conditional, hold, actions),
            other => other.act_into_with(obs, masks, choice, conditional, actions),
        }
    }
}

/// An MBRL error as the learner interface's error (the PPO ones as they are).
fn from_mbrl(e: MbrlError) -> PpoError {
    match e {
        MbrlError::Ppo(e) => e,
        MbrlError::Config(e) => PpoError::Config(e),
        other => PpoError::ModelBased(other.to_string()),
    }
}

/// What a model-based learner needs of `E`, or the error naming the environment that lacks it.
fn expensive_ops<E: Env>(env: &E) -> Result<ExpensiveOps<E>, PpoError> {
    E::expensive().ok_or_else(|| {
        PpoError::ModelBased(format!(
            "environment {} has no expensive reward component for a model-based learner to model \
             (model-based RL runs on environments that have one: als, partition)",
            env.spec().id
        ))
    })
}

impl Learner {
    /// A fresh learner for an environment of shape `env`. A model-based learner also needs the
    /// environment itself (its expensive component's inputs): [`Self::for_env`].
    pub fn new(config: LearnerConfig, env: PolicyShape, seed: u64) -> Result<Self, PpoError> {
        config.check_imitation()?;
        Ok(match config {
            LearnerConfig::Flat(c) => Learner::Flat(Ppo::new(*c, env, seed)?),
            LearnerConfig::Hierarchical(c) => Learner::Hierarchical(Box::new(Hppo::new(*c, env, seed)?)),
            LearnerConfig::ModelBased(_) => {
                return Err(PpoError::ModelBased(
                    "a model-based learner is built for its environment (Learner::for_env)".into(),
                ));
            }
        })
    }

    /// A fresh learner for `env`: its shape, and the start that depends on the environment
    /// itself, not only on its shape (a hierarchy's low-level prior, [`Hppo::init_low_prior`]).
    pub fn for_env<E: Env>(config: LearnerConfig, env: &E, seed: u64) -> Result<Self, PpoError> {
        config.check_imitation()?;
        if let LearnerConfig::ModelBased(c) = config {
            let inputs = (expensive_ops(env)?.component_inputs)(env);
            let mbrl = Mbrl::new(*c, PolicyShape::of(env.spec()), inputs, seed).map_err(from_mbrl)?;
            return Ok(Learner::ModelBased(Box::new(mbrl)));
        }
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
            Learner::ModelBased(m) => m.ppo().shape().clone(),
        }
    }

    /// A model-based learner's x-axis is its real environment steps (what costs); its policy's
    /// updates place it on the schedules.
    pub fn progress(&self) -> Progress {
        match self {
            Learner::Flat(p) => p.progress(),
            Learner::Hierarchical(h) => h.progress(),
            Learner::ModelBased(m) => {
                Progress { n_updates: m.ppo().progress().n_updates, global_step: m.spent().real_steps }
            }
        }
    }

    /// Moves the networks: updates on `learn`, acting on `act` (`crate::compute_device`).
    pub fn place(&mut self, learn: &burn::tensor::Device, act: &burn::tensor::Device) {
        match self {
            Learner::Flat(p) => p.place(learn, act),
            Learner::Hierarchical(h) => h.place(learn, act),
            Learner::ModelBased(m) => m.place(learn, act),
        }
    }

    /// Every parameter, as host values (compares weights bit for bit; content checksums).
    pub fn parameter_values(&self) -> Vec<Vec<f32>> {
        match self {
            Learner::Flat(p) => p.parameter_values(),
            Learner::Hierarchical(h) => h.parameter_values(),
            Learner::ModelBased(m) => m.parameter_values(),
        }
    }

    /// Whether the next rollout and update imitate a teacher ([`crate::config::Imitation`]).
    pub fn imitating(&self) -> bool {
        matches!(self, Learner::Flat(p) if p.imitating())
    }

    /// One rollout on `venv`, calling `on_step` after every vector step. A model-based learner
    /// takes its real steps here (its measurements are kept).
    pub fn collect_rollout_observed<E: Env>(
        &mut self,
        venv: &mut VecEnv<E>,
        on_step: impl FnMut(&mut VecEnv<E>),
    ) -> Result<RolloutStats, PpoError> {
        self.collect_rollout_taught(venv, None, on_step)
    }

    /// [`Self::collect_rollout_observed`] with the imitation teacher of a flat learner whose
    /// config has one ([`crate::config::Imitation`]; the other kinds refuse imitation when
    /// built, so they never need it).
    pub fn collect_rollout_taught<E: Env>(
        &mut self,
        venv: &mut VecEnv<E>,
        teacher: Option<&mut dyn Teacher<E>>,
        on_step: impl FnMut(&mut VecEnv<E>),
    ) -> Result<RolloutStats, PpoError> {
        match self {
            Learner::Flat(p) => p.collect_rollout_taught(venv, teacher, on_step),
            Learner::Hierarchical(h) => h.collect_rollout_observed(venv, on_step),
            Learner::ModelBased(m) => {
                let ops = expensive_ops(&venv.members()[0])?;
                m.real_phase(venv, &ops, on_step).map_err(from_mbrl)
            }
        }
    }

    /// Updates on the finished rollout: `(level, statistics)` per network; the level is empty
    /// for a flat learner, `high` / `low` in a hierarchy (the logging prefixes). A model-based
    /// learner refits its surrogate and trains its policy on a model environment built from
    /// `venv`'s members, and reports its last policy update.
    pub fn update<E: Env>(&mut self, venv: &VecEnv<E>) -> Result<Vec<(&'static str, UpdateStats)>, PpoError> {
        Ok(match self {
            Learner::Flat(p) => vec![("", p.update())],
            Learner::Hierarchical(h) => {
                let [high, low] = h.update();
                vec![("high", high), ("low", low)]
            }
            Learner::ModelBased(m) => {
                let ops = expensive_ops(&venv.members()[0])?;
                let stats = m.model_phase(venv, &ops).map_err(from_mbrl)?;
                stats.updates.into_iter().last().map(|u| ("", u)).into_iter().collect()
            }
        })
    }

    /// Scalars beyond the policy updates' (logged next to them): a model-based learner's surrogate
    /// fit (`surrogate/…`, in the component's units) and its spending (`mbrl/…`).
    pub fn visit_learner_scalars(&self, visit: &mut dyn FnMut(&'static str, f64)) {
        if let Learner::ModelBased(m) = self {
            let spent = m.spent();
            visit("mbrl/expensive_evaluations", spent.expensive_evaluations as f64);
            visit("mbrl/real_steps", spent.real_steps as f64);
            visit("mbrl/model_steps", spent.model_steps as f64);
            visit("surrogate/samples", m.samples() as f64);
            if let Some(fit) = m.last_fit() {
                visit("surrogate/train_rmse", fit.train_rmse);
                for (k, v) in [
                    ("surrogate/holdout_rmse", fit.holdout_rmse),
                    ("surrogate/holdout_rmse_of_mean", fit.holdout_rmse_of_mean),
                    ("surrogate/holdout_disagreement", fit.holdout_disagreement),
                ] {
                    // NaN when the fit held nothing out (fewer than 5 samples).
                    if v.is_finite() {
                        visit(k, v);
                    }
                }
            }
        }
    }

    pub fn export_state(&self) -> Result<LearnerState, PpoError> {
        Ok(match self {
            Learner::Flat(p) => LearnerState::Flat(p.export_state()?),
            Learner::Hierarchical(h) => LearnerState::Hierarchical(Box::new(h.export_state()?)),
            Learner::ModelBased(m) => LearnerState::ModelBased(Box::new(m.export_state().map_err(from_mbrl)?)),
        })
    }

    /// Replaces this learner's state with a saved one of the same kind and shapes (its own
    /// hyperparameters are kept: continuing with changed ones).
    pub fn restore_state(&mut self, state: &LearnerState) -> Result<(), PpoError> {
        match (self, state) {
            (Learner::Flat(p), LearnerState::Flat(s)) => p.restore_state(s),
            (Learner::Hierarchical(h), LearnerState::Hierarchical(s)) => h.restore_state(s),
            (Learner::ModelBased(m), LearnerState::ModelBased(s)) => {
                **m = Mbrl::from_state(s, Some(m.config())).map_err(from_mbrl)?;
                Ok(())
            }
            _ => Err(PpoError::StateMismatch("the saved agent is of another kind".into())),
        }
    }

    pub fn from_state(state: &LearnerState) -> Result<Self, PpoError> {
        Ok(match state {
            LearnerState::Flat(s) => Learner::Flat(Ppo::from_state(s)?),
            LearnerState::Hierarchical(s) => Learner::Hierarchical(Box::new(Hppo::from_state(s)?)),
            LearnerState::ModelBased(s) => Learner::ModelBased(Box::new(Mbrl::from_state(s, None).map_err(from_mbrl)?)),
        })
    }

    /// A learner rebuilt from a saved state with other hyperparameters (`--allow-config-change`;
    /// the shapes must match).
    pub fn from_state_with(state: &LearnerState, config: LearnerConfig) -> Result<Self, PpoError> {
        match (state, config) {
            (LearnerState::ModelBased(s), LearnerConfig::ModelBased(c)) => {
                Ok(Learner::ModelBased(Box::new(Mbrl::from_state(s, Some(&c)).map_err(from_mbrl)?)))
            }
            (LearnerState::ModelBased(_), _) | (_, LearnerConfig::ModelBased(_)) => {
                Err(PpoError::StateMismatch("the saved agent is of another kind".into()))
            }
            (state, config) => {
                let shape = Self::from_state(state)?.env_shape();
                let mut learner = Self::new(config, shape, 0)?;
                learner.restore_state(state)?;
                Ok(learner)
            }
        }
    }
}
