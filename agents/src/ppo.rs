//! The PPO learner (Schulman et al. 2017) on burn's flex CPU backend: batched acting over a vector
//! env, rollout collection with GAE, the clipped-surrogate update, and the agent's complete state
//! for exact resume.
//!
//! Control flow per iteration (CleanRL `ppo.py`, SB3 `OnPolicyAlgorithm`):
//! `collect_rollout` = `n_steps` × (`act_rollout` → env step → `record_step`) → `finish_rollout`
//! (bootstrap value, GAE); then `update` = epochs × shuffled minibatches of
//! ratio → clipped surrogate → value loss → entropy → backward → global clip → Adam step.
//! The step-level calls are public so that other drivers (a hierarchical agent composing two
//! learners, a model-based agent acting on a surrogate) reuse the learner without a copy.
//!
//! All randomness after construction (action sampling, minibatch shuffling) comes from one host
//! `StreamRng` that is part of the state; burn's global RNG is never used.

use crate::buffer::{Minibatch, RolloutBuffer};
use crate::config::{AdvantageBaseline, PpoConfig};
use crate::distribution::{EmptyMask, Pick, masked_joint_probs_host, pick_component, value_log_prob};
use crate::loss::explained_variance;
use crate::network::{Actor, ActorCritic};
use crate::normalize::{ObsNormalizer, RewardScaler};
use crate::policy_model::{AllActionBatch, PolicyBatch};
use crate::ppo_step::{MinibatchStats, StepParams, ppo_gradient_step};
use crate::teacher::Teacher;
use burn::module::Module;
use burn::optim::{AdamConfig, ModuleOptimizer};
use burn::store::ModuleRecord;
use burn::tensor::{Bool, Bytes, Device, Int, Tensor, TensorData};
use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};
use splitwise_env::api::{Env, EnvSpec};
use splitwise_env::rng::{Stream, StreamRng, item_rng};
use splitwise_env::validate::InvalidField;
use splitwise_env::vector::{EpisodeRecord, VecEnv, VecStepError};
use std::time::Instant;

/// Version of [`PpoState`]'s layout; bump when it changes.
pub const PPO_STATE_VERSION: u32 = 1;

/// What the networks are sized by: the observation width, an optional context input and the
/// multi-discrete action space. The networks read `obs_dim + context_dim` columns: the
/// observation (normalised when `normalize_obs`) and then the context (e.g. a higher level's
/// choice, one-hot), which is passed through unnormalised, as export's `PolicyLevel` builds it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyShape {
    pub obs_dim: usize,
    /// Width of the context after the observation (0: none; omitted from saved state then).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub context_dim: usize,
    pub nvec: Vec<usize>,
}

fn is_zero(v: &usize) -> bool {
    *v == 0
}

impl PolicyShape {
    pub fn of(spec: &EnvSpec) -> Self {
        Self { obs_dim: spec.observation.dim(), context_dim: 0, nvec: spec.action.nvec.clone() }
    }

    /// Columns of each row the learner is given and its networks read: observation, context.
    pub fn input_dim(&self) -> usize {
        self.obs_dim + self.context_dim
    }

    /// The first component masked through the environment's conditional mask: 1 for a flat
    /// learner (its component 0's observation mask is exact), 0 for a learner conditioned on a
    /// context (a low level, whose first component already follows earlier choices).
    pub fn first_conditional(&self) -> usize {
        usize::from(self.context_dim == 0)
    }

    pub fn mask_len(&self) -> usize {
        self.nvec.iter().sum()
    }

    pub fn n_components(&self) -> usize {
        self.nvec.len()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PpoError {
    #[error("invalid PPO config: {0}")]
    Config(#[from] InvalidField),
    #[error("{0}")]
    Env(#[from] VecStepError),
    #[error("vector env member {env_index}: {source}")]
    Mask {
        env_index: usize,
        #[source]
        source: EmptyMask,
    },
    #[error("unusable policy shape: {0}")]
    Shape(String),
    #[error("the vector env has {got} members, the learner was configured for n_envs = {expected}")]
    EnvCount { expected: usize, got: usize },
    #[error("saved agent state does not fit this agent: {0}")]
    StateMismatch(String),
    #[error("agent state record: {0}")]
    Record(String),
    #[error("agent state can only be exported between rollouts (after update), not mid-rollout")]
    MidRollout,
    #[error("model-based learner: {0}")]
    ModelBased(String),
    /// The imitation teacher (`imitation.teacher`) could not act, or chose an illegal action.
    #[error("imitation teacher `{teacher}`: {message}")]
    Teacher { teacher: String, message: String },
}

/// Counters that place the learner on its schedules.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Progress {
    /// Updates completed (the linear schedules' position).
    pub n_updates: u64,
    /// Env steps recorded, all members together (the x-axis of every curve).
    pub global_step: u64,
}

/// How [`Ppo::act`] picks actions.
pub enum ActionChoice<'a> {
    /// The most probable legal value of each component (evaluation).
    Deterministic,
    /// A sample from the masked policy, from the caller's RNG (the learner's own stream is left
    /// alone so evaluation never perturbs training).
    Sample(&'a mut StreamRng),
}

/// The outcome of one vector step, as [`Ppo::record_step`] needs it.
#[derive(Clone, Copy, Debug)]
pub struct StepOutcome<'a> {
    pub rewards: &'a [f64],
    pub terminated: &'a [bool],
    pub truncated: &'a [bool],
    /// `(member, last observation)` of every member whose episode ended in this step (the
    /// vector env already reset it). Only truncated members' entries are read.
    pub final_obs: &'a [(usize, &'a [f32])],
    /// Per-member discount of this transition (γ^k where the action was held k slots and the
    /// reward is the option's discounted sum, [`crate::gae::option_return`]); `None`: γ.
    pub discounts: Option<&'a [f64]>,
    /// Per-member raw reward a reference action would have earned in the same state under the
    /// same randomness (`VecEnv::counterfactual_rewards`): the self-critical baseline. Scaled like
    /// the rewards; used when the config's `advantage` is `self-critical`.
    pub baseline_rewards: Option<&'a [f64]>,
}

/// What one rollout produced.
#[derive(Clone, Debug, PartialEq)]
pub struct RolloutStats {
    /// Env steps in this rollout (`n_steps × n_envs`).
    pub steps: u64,
    /// Env steps so far, after this rollout.
    pub global_step: u64,
    /// Episodes that ended during the rollout (raw, unscaled returns).
    pub episodes: Vec<EpisodeRecord>,
    /// Wall time inside `VecEnv::step`.
    pub env_time_s: f64,
    /// Wall time acting, recording and bootstrapping (forward passes, sampling, normalisation).
    pub policy_time_s: f64,
}

impl RolloutStats {
    pub fn mean_episode_return(&self) -> Option<f64> {
        mean(self.episodes.iter().map(|e| e.episode_return))
    }

    pub fn mean_episode_length(&self) -> Option<f64> {
        mean(self.episodes.iter().map(|e| e.length as f64))
    }

    /// The stable CleanRL logging keys of a rollout (episode means only when episodes ended).
    pub fn visit_scalars(&self, visit: &mut dyn FnMut(&'static str, f64)) {
        if let Some(r) = self.mean_episode_return() {
            visit("charts/episodic_return", r);
        }
        if let Some(l) = self.mean_episode_length() {
            visit("charts/episodic_length", l);
        }
        visit("time/env_s", self.env_time_s);
        visit("time/policy_s", self.policy_time_s);
    }
}

/// What one update did. Loss statistics are means over the minibatches run (SB3's logging).
#[derive(Clone, Debug, PartialEq)]
pub struct UpdateStats {
    /// −L^CLIP.
    pub policy_loss: f64,
    pub value_loss: f64,
    /// Entropy of the masked policy (positive; SB3 logs its negative as `entropy_loss`).
    pub entropy: f64,
    pub approx_kl: f64,
    pub clip_frac: f64,
    /// The probability floor's hinge penalty (`PpoConfig::prob_floor`; `None`: no floor).
    pub prob_floor_penalty: Option<f64>,
    /// Of the rollout's values against its returns, before the update (SB3).
    pub explained_variance: f64,
    /// Global gradient norm before clipping.
    pub grad_norm: f64,
    pub learning_rate: f64,
    pub clip_range: f64,
    /// The softmax temperature of the rollout and the update (1 without a schedule).
    pub temperature: f64,
    pub epochs_run: usize,
    /// Adam steps taken.
    pub n_minibatches: usize,
    /// Whether `target_kl` cut the epochs short.
    pub early_stopped: bool,
    /// Updates completed, this one included.
    pub n_updates: u64,
    pub update_time_s: f64,
    /// Whether this update imitated the teacher (`None`: the learner has no teacher).
    pub imitation: Option<bool>,
}

impl UpdateStats {
    /// The stable CleanRL/SB3 logging keys (`losses/...`, `charts/...`) and their values.
    pub fn visit_scalars(&self, visit: &mut dyn FnMut(&'static str, f64)) {
        visit("losses/policy_loss", self.policy_loss);
        visit("losses/value_loss", self.value_loss);
        visit("losses/entropy", self.entropy);
        visit("losses/approx_kl", self.approx_kl);
        visit("losses/clip_frac", self.clip_frac);
        if let Some(x) = self.prob_floor_penalty {
            visit("losses/prob_floor_penalty", x);
        }
        visit("losses/explained_variance", self.explained_variance);
        visit("losses/grad_norm", self.grad_norm);
        visit("charts/learning_rate", self.learning_rate);
        visit("charts/clip_range", self.clip_range);
        if self.temperature != 1.0 {
            visit("charts/temperature", self.temperature);
        }
        visit("charts/epochs_run", self.epochs_run as f64);
        if let Some(imitating) = self.imitation {
            visit("charts/imitating", f64::from(u8::from(imitating)));
        }
        visit("time/update_s", self.update_time_s);
    }
}

/// The agent's complete state: enough to continue training bit-identically (same backend and
/// thread count). The two burnpack byte blobs are burn records; everything else is serde data.
#[derive(Clone, Debug, PartialEq)]
pub struct PpoState {
    /// Actor and critic weights: burn `ModuleRecord` in burnpack format.
    pub weights: Vec<u8>,
    /// Adam moments and step counts: burn `OptimizerRecord` in burnpack format.
    pub optimizer: Vec<u8>,
    pub meta: PpoMeta,
}

/// The serde part of [`PpoState`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PpoMeta {
    pub format_version: u32,
    pub config: PpoConfig,
    pub shape: PolicyShape,
    pub obs_normalizer: ObsNormalizer,
    pub reward_scaler: RewardScaler,
    pub rng: StreamRng,
    pub progress: Progress,
}

pub struct Ppo {
    config: PpoConfig,
    shape: PolicyShape,
    /// The learning device with autodiff: where the model trains (flex until [`Ppo::place`]).
    train_device: Device,
    /// Where acting runs (flex until [`Ppo::place`]).
    infer_device: Device,
    model: ActorCritic,
    /// `model.valid()`, refreshed after every update: acting pays no autodiff bookkeeping.
    policy: ActorCritic,
    optimizer: ModuleOptimizer,
    obs_normalizer: ObsNormalizer,
    reward_scaler: RewardScaler,
    rng: StreamRng,
    progress: Progress,
    buffer: RolloutBuffer,
    minibatch: Minibatch,
    episode_ended: Vec<bool>,
    mask_scratch: Vec<bool>,
}

impl Ppo {
    /// A fresh learner. `seed` drives the weight initialisation and the learner's RNG stream
    /// (action sampling, minibatch shuffling), both derived from `Stream::Policy`. The same as
    /// [`Ppo::new_learner`] with learner 0.
    /// A flat learner's all-action advantage probes the environment's own action values, so it
    /// needs a one-component space ([`Ppo::collect_rollout`]); a hierarchy's high level probes
    /// its joint values itself (`crate::hppo`).
    pub fn new(config: PpoConfig, shape: PolicyShape, seed: u64) -> Result<Self, PpoError> {
        if config.advantage == AdvantageBaseline::AllActions && shape.n_components() != 1 {
            return Err(PpoError::Config(InvalidField::new(
                "advantage",
                "all-actions",
                format!(
                    "needs a one-component (discrete) action space for a flat policy; this one has {} components \
                     (use \"self-critical\", the layer-split action mode, or `kind = \"hppo\"`, whose high level allows it)",
                    shape.n_components()
                ),
            )));
        }
        Self::new_learner(config, shape, seed, 0)
    }

    /// Learner `learner` of an agent that composes several (a hierarchical agent's levels): its
    /// weights and its RNG stream are items 2·learner and 2·learner + 1 of `Stream::Policy`, so
    /// learners built from one seed never share a stream, and learner 0 is [`Ppo::new`].
    pub fn new_learner(config: PpoConfig, shape: PolicyShape, seed: u64, learner: u64) -> Result<Self, PpoError> {
        config.validate()?;
        if shape.obs_dim == 0 || shape.nvec.is_empty() || shape.nvec.contains(&0) {
            return Err(PpoError::Shape(format!("{shape:?} (needs obs_dim ≥ 1 and components with ≥ 1 value)")));
        }
        let infer_device = Device::flex();
        let train_device = infer_device.clone().autodiff();
        let mut init_rng = item_rng(seed, Stream::Policy, 2 * learner);
        let model = ActorCritic::new(
            shape.input_dim(),
            shape.context_dim,
            shape.mask_len(),
            &config.actor_hidden,
            &config.critic_hidden,
            &mut init_rng,
            &train_device,
        );
        let policy = model.valid();
        let mut buffer = RolloutBuffer::new(
            config.n_steps,
            config.n_envs,
            shape.input_dim(),
            shape.mask_len(),
            shape.n_components(),
        );
        if config.advantage == AdvantageBaseline::AllActions {
            check_all_actions(&shape)?;
            buffer.enable_all_actions(&shape.nvec);
            let n_joint: usize = shape.nvec.iter().product();
            if config.prob_floor * n_joint as f64 >= 1.0 {
                return Err(PpoError::Config(InvalidField::new(
                    "prob_floor",
                    config.prob_floor,
                    format!("must be below 1 / {n_joint} (this level has {n_joint} joint values)"),
                )));
            }
        }
        Ok(Self {
            optimizer: adam(&config),
            obs_normalizer: ObsNormalizer::new(shape.obs_dim, config.clip_obs),
            reward_scaler: RewardScaler::new(config.n_envs, config.gamma, config.clip_reward),
            rng: item_rng(seed, Stream::Policy, 2 * learner + 1),
            progress: Progress::default(),
            minibatch: Minibatch::default(),
            episode_ended: vec![false; config.n_envs],
            mask_scratch: Vec::new(),
            buffer,
            model,
            policy,
            train_device,
            infer_device,
            shape,
            config,
        })
    }

    pub fn config(&self) -> &PpoConfig {
        &self.config
    }

    pub fn shape(&self) -> &PolicyShape {
        &self.shape
    }

    pub fn progress(&self) -> Progress {
        self.progress
    }

    /// The policy network alone (inference copy), e.g. for export together with
    /// [`Ppo::obs_normalizer`].
    pub fn actor(&self) -> &Actor {
        &self.policy.actor
    }

    /// The softmax temperature of this update's rollout ([`PpoConfig::temperature`]; 1 without a
    /// schedule).
    pub fn temperature(&self) -> f32 {
        self.config.temperature.map_or(1.0, |t| t.value(self.progress.n_updates) as f32)
    }

    /// Sets the context skip ([`Actor::context_skip`]) of a fresh conditioned learner to
    /// `weights` (`context_dim × Σ nvec`, row-major): the logit shift each context column gives.
    /// Only before the first update, while the optimizer holds no moments for it.
    pub fn set_context_skip(&mut self, weights: &[f32]) -> Result<(), PpoError> {
        let (c, m) = (self.shape.context_dim, self.shape.mask_len());
        if self.progress.n_updates != 0 || self.model.actor.context_skip.is_none() || weights.len() != c * m {
            return Err(PpoError::Shape(format!(
                "a context skip of {} values on a learner with context {c} × {m} logits after {} updates \
                 (needs a context, {} values, no update yet)",
                weights.len(),
                self.progress.n_updates,
                c * m
            )));
        }
        let weight = burn::module::Param::from_data(TensorData::new(weights.to_vec(), [c, m]), &self.train_device);
        if let Some(skip) = self.model.actor.context_skip.as_mut() {
            skip.weight = weight;
        }
        self.refresh_policy();
        Ok(())
    }

    /// Every parameter of the actor and the critic, in visiting order, as host values: compares
    /// weights across runs bit for bit (the burnpack bytes of a record also carry random
    /// parameter ids, so they differ between two identical models).
    pub fn parameter_values(&self) -> Vec<Vec<f32>> {
        crate::network::parameter_values(self.networks())
    }

    pub fn networks(&self) -> &ActorCritic {
        &self.policy
    }

    /// The observation normaliser the policy's input goes through, when `normalize_obs` is on
    /// (`None`: the policy reads raw observations). An exported policy needs it.
    pub fn obs_normalizer(&self) -> Option<&ObsNormalizer> {
        self.config.normalize_obs.then_some(&self.obs_normalizer)
    }

    pub fn reward_scaler(&self) -> &RewardScaler {
        &self.reward_scaler
    }

    /// The policy's input for raw rows (observation then context, `input_dim` wide), without
    /// updating statistics: the observation columns normalised when `normalize_obs`, the
    /// context columns as given.
    pub fn normalize_obs(&self, raw: &[f32], out: &mut [f32]) {
        normalize_rows(&self.obs_normalizer, &self.shape, self.config.normalize_obs, raw, out);
    }

    /// Adds the observation columns of raw rows to the normaliser's statistics.
    fn update_obs_statistics(&mut self, raw: &[f32]) {
        if self.shape.context_dim == 0 {
            self.obs_normalizer.stats.update(raw);
        } else {
            let (d, w) = (self.shape.obs_dim, self.shape.input_dim());
            let obs: Vec<f32> = raw.chunks_exact(w).flat_map(|row| row[..d].iter().copied()).collect();
            self.obs_normalizer.stats.update(&obs);
        }
    }

    // ----- acting -------------------------------------------------------------------------------

    /// Actions for a batch of raw observations (rows of `obs_dim`) and masks (rows of `mask_len`),
    /// written row-major into `actions` (rows of `n_components`). One forward pass of the actor.
    pub fn act_into(
        &self,
        obs: &[f32],
        masks: &[bool],
        choice: ActionChoice<'_>,
        actions: &mut [usize],
    ) -> Result<(), PpoError> {
        self.act_into_with(obs, masks, choice, None, actions)
    }

    /// [`Ppo::act_into`] with the environment's conditional masks (autoregressive masking).
    pub fn act_into_with(
        &self,
        obs: &[f32],
        masks: &[bool],
        choice: ActionChoice<'_>,
        mut conditional: Option<ConditionalMask<'_>>,
        actions: &mut [usize],
    ) -> Result<(), PpoError> {
        let (d, m, k) = (self.shape.input_dim(), self.shape.mask_len(), self.shape.n_components());
        let rows = obs.len() / d;
        assert!(
            obs.len() == rows * d && masks.len() == rows * m && actions.len() == rows * k,
            "act: {rows} rows need {} masks and {} action slots",
            rows * m,
            rows * k
        );
        let mut input = vec![0.0f32; obs.len()];
        self.normalize_obs(obs, &mut input);
        let x = Tensor::<2>::from_data(TensorData::new(input, [rows, d]), &self.infer_device);
        let mut logits = host_vec(self.policy.actor.forward(x));
        let mut pick = match choice {
            ActionChoice::Deterministic => Pick::Greedy,
            ActionChoice::Sample(rng) => {
                temper(&mut logits, self.temperature());
                Pick::Sample(rng)
            }
        };
        let (mut mask, mut scratch) = (vec![false; m], Vec::new());
        for i in 0..rows {
            mask.copy_from_slice(&masks[i * m..(i + 1) * m]);
            choose_actions(
                &logits[i * m..(i + 1) * m],
                &mut mask,
                &self.shape.nvec,
                MaskSource {
                    member: i,
                    first: self.shape.first_conditional(),
                    conditional: conditional.as_deref_mut(),
                    scratch: &mut scratch,
                },
                &mut pick,
                None,
                &mut actions[i * k..(i + 1) * k],
            )?;
        }
        Ok(())
    }

    /// [`Ppo::act_into`] returning a new vector.
    pub fn act(&self, obs: &[f32], masks: &[bool], choice: ActionChoice<'_>) -> Result<Vec<usize>, PpoError> {
        let rows = obs.len() / self.shape.input_dim().max(1);
        let mut actions = vec![0; rows * self.shape.n_components()];
        self.act_into(obs, masks, choice, &mut actions)?;
        Ok(actions)
    }

    /// V(s) for a batch of raw observations.
    pub fn predict_values(&self, obs: &[f32]) -> Vec<f32> {
        let mut input = vec![0.0f32; obs.len()];
        self.normalize_obs(obs, &mut input);
        critic_values(&self.policy, &self.infer_device, input, self.shape.input_dim())
    }

    // ----- rollout ------------------------------------------------------------------------------

    /// The joint values' legality of the step just acted on, `n_envs × n_joint` (all-action
    /// learners; empty otherwise): which of its choices a hierarchy's high level must probe.
    pub fn acted_joint_legal(&self) -> &[bool] {
        let b = &self.buffer;
        if !b.all_actions() || b.acted == 0 {
            return &[];
        }
        let w = self.config.n_envs * b.n_joint();
        &b.action_legal[(b.acted - 1) * w..b.acted * w]
    }

    /// Starts a new rollout, discarding any unused one.
    pub fn begin_rollout(&mut self) {
        self.buffer.clear();
    }

    /// Acts for every member on this step's raw observations and masks: updates the observation
    /// statistics, then one forward pass of actor and critic and one host transfer of logits and
    /// values, then samples from the learner's RNG. Returns the actions (`n_envs × n_components`).
    pub fn act_rollout(&mut self, obs: &[f32], masks: &[bool]) -> Result<&[usize], PpoError> {
        self.act_rollout_with(obs, masks, None)
    }

    /// [`Ppo::act_rollout`] with the environment's conditional masks: the mask each component was
    /// actually sampled under is what the rollout stores, so the update scores the same
    /// distribution.
    pub fn act_rollout_with(
        &mut self,
        obs: &[f32],
        masks: &[bool],
        conditional: Option<ConditionalMask<'_>>,
    ) -> Result<&[usize], PpoError> {
        self.act_rollout_greedy_with(obs, masks, conditional, None)
    }

    /// [`Ppo::act_rollout_with`] that also writes each member's greedy action (what
    /// `ActionChoice::Deterministic` would pick: the most probable legal value of each component
    /// under the conditional masks of the greedy prefix) into `greedy`, from the same forward
    /// pass: the self-critical baseline's reference action.
    pub fn act_rollout_greedy_with(
        &mut self,
        obs: &[f32],
        masks: &[bool],
        conditional: Option<ConditionalMask<'_>>,
        greedy: Option<&mut [usize]>,
    ) -> Result<&[usize], PpoError> {
        self.act_rollout_inner(obs, masks, conditional, greedy, None)
    }

    /// [`Ppo::act_rollout_greedy_with`] that takes the teacher's actions `taught`
    /// (`n_envs × n_components`) instead of sampling (imitation, [`crate::config::Imitation`]):
    /// the rollout stores them, each component's mask as the environment gives it after the
    /// teacher's earlier components, and their log-probability under the current policy. An
    /// action the masks forbid is an error ([`PpoError::Teacher`]). The learner's RNG is not
    /// drawn from.
    pub fn act_rollout_taught_with(
        &mut self,
        obs: &[f32],
        masks: &[bool],
        conditional: Option<ConditionalMask<'_>>,
        greedy: Option<&mut [usize]>,
        taught: &[usize],
    ) -> Result<&[usize], PpoError> {
        let expected = self.config.n_envs * self.shape.n_components();
        assert_eq!(taught.len(), expected, "act_rollout_taught_with: expects n_envs × n_components actions");
        let teacher = self.config.imitation.as_ref().map(|i| i.teacher.clone()).unwrap_or_default();
        // `choose_actions` does not know the teacher's name; it is added here.
        self.act_rollout_inner(obs, masks, conditional, greedy, Some(taught)).map_err(|e| match e {
            PpoError::Teacher { message, .. } => PpoError::Teacher { teacher, message },
            e => e,
        })
    }

    fn act_rollout_inner(
        &mut self,
        obs: &[f32],
        masks: &[bool],
        mut conditional: Option<ConditionalMask<'_>>,
        mut greedy: Option<&mut [usize]>,
        taught: Option<&[usize]>,
    ) -> Result<&[usize], PpoError> {
        let (n, d, m, k) =
            (self.config.n_envs, self.shape.input_dim(), self.shape.mask_len(), self.shape.n_components());
        assert!(obs.len() == n * d && masks.len() == n * m, "act_rollout: expects n_envs = {n} rows");
        if self.config.normalize_obs {
            self.update_obs_statistics(obs);
        }
        let first_conditional = self.shape.first_conditional();
        let temperature = self.temperature();
        let b = &mut self.buffer;
        assert!(
            !b.finished && b.acted == b.recorded && b.acted < b.n_steps,
            "act_rollout: call begin_rollout first, and record_step after every act_rollout"
        );
        let t = b.acted;
        let rows = t * n..(t + 1) * n;
        let obs_rows = &mut b.obs[rows.start * d..rows.end * d];
        normalize_rows(&self.obs_normalizer, &self.shape, self.config.normalize_obs, obs, obs_rows);
        b.masks[rows.start * m..rows.end * m].copy_from_slice(masks);

        let x = Tensor::<2>::from_data(TensorData::new(obs_rows.to_vec(), [n, d]), &self.infer_device);
        let logits = self.policy.actor.forward(x.clone());
        let values = self.policy.critic.forward(x);
        let mut out = host_vec(Tensor::cat(vec![logits, values], 1));
        for row in out.chunks_exact_mut(m + 1) {
            temper(&mut row[..m], temperature);
        }

        let mut pick = Pick::Sample(&mut self.rng);
        let mut greedy_pick: Pick<'_, StreamRng> = Pick::Greedy;
        let mut greedy_mask = if greedy.is_some() { vec![false; m] } else { Vec::new() };
        for i in 0..n {
            let row = &out[i * (m + 1)..(i + 1) * (m + 1)];
            let j = rows.start + i;
            if let Some(g) = greedy.as_deref_mut() {
                // Tempering divides the logits by τ > 0: the argmax is τ = 1's.
                greedy_mask.copy_from_slice(&masks[i * m..(i + 1) * m]);
                choose_actions(
                    &row[..m],
                    &mut greedy_mask,
                    &self.shape.nvec,
                    MaskSource {
                        member: i,
                        first: first_conditional,
                        conditional: conditional.as_deref_mut(),
                        scratch: &mut self.mask_scratch,
                    },
                    &mut greedy_pick,
                    None,
                    &mut g[i * k..(i + 1) * k],
                )?;
            }
            let log_prob = choose_actions(
                &row[..m],
                &mut b.masks[j * m..(j + 1) * m],
                &self.shape.nvec,
                MaskSource {
                    member: i,
                    first: first_conditional,
                    conditional: conditional.as_deref_mut(),
                    scratch: &mut self.mask_scratch,
                },
                &mut pick,
                taught.map(|t| &t[i * k..(i + 1) * k]),
                &mut b.actions[j * k..(j + 1) * k],
            )?;
            b.log_probs[j] = log_prob as f32;
            b.values[j] = row[m];
            if b.all_actions() {
                // The joint values' legality and π_old: the first component's mask as sampled,
                // the second's given each first value (the environment's conditional mask).
                let q = b.n_joint();
                let n0 = self.shape.nvec[0];
                let second = self.shape.nvec.get(1).map(|&n1| (n0, n1));
                let stored = &b.masks[j * m..(j + 1) * m];
                let mut continuation = |a0: usize, out: &mut [bool]| {
                    let Some((n0, n1)) = second else { return };
                    out.copy_from_slice(&stored[n0..n0 + n1]);
                    if let Some(f) = conditional.as_deref_mut() {
                        self.mask_scratch.clear();
                        self.mask_scratch.resize(n1, false);
                        if f(i, &[a0], &mut self.mask_scratch) {
                            out.copy_from_slice(&self.mask_scratch);
                        }
                    }
                };
                masked_joint_probs_host(
                    &row[..m],
                    &stored[..n0],
                    &self.shape.nvec,
                    &mut continuation,
                    &mut b.action_legal[j * q..(j + 1) * q],
                    &mut b.action_probs[j * q..(j + 1) * q],
                );
            }
        }
        b.acted += 1;
        Ok(&b.actions[rows.start * k..rows.end * k])
    }

    /// Replaces member `member`'s action in the step just acted on by `action`, a choice held from
    /// an earlier step (a hierarchy's high level with `k_high > 1`), and marks the row as no
    /// decision: the update does not train on it, and GAE counts its reward in the option of the
    /// decision that chose `action` ([`crate::gae::gae`]). The rollout's RNG draws are unchanged.
    pub fn hold_rollout_action(&mut self, member: usize, action: &[usize]) {
        let b = &mut self.buffer;
        assert!(b.acted == b.recorded + 1, "hold_rollout_action: call act_rollout first");
        let (n, k) = (self.config.n_envs, self.shape.n_components());
        assert!(member < n && action.len() == k, "hold_rollout_action: member {member} of {n}, {k} components");
        let j = (b.acted - 1) * n + member;
        b.actions[j * k..(j + 1) * k].copy_from_slice(action);
        b.decisions[j] = false;
    }

    /// Stores the rewards (scaled) and episode ends of the step just acted on, and the value of
    /// the final observation of each truncated member (one batched critic pass).
    pub fn record_step(&mut self, outcome: &StepOutcome<'_>) {
        let n = self.config.n_envs;
        let b = &mut self.buffer;
        assert!(b.acted == b.recorded + 1, "record_step: call act_rollout first");
        assert!(
            outcome.rewards.len() == n && outcome.terminated.len() == n && outcome.truncated.len() == n,
            "record_step: expects n_envs = {n} entries"
        );
        let rows = b.recorded * n..(b.recorded + 1) * n;
        for (e, (&term, &trunc)) in self.episode_ended.iter_mut().zip(outcome.terminated.iter().zip(outcome.truncated))
        {
            *e = term || trunc;
        }
        if self.config.normalize_reward {
            self.reward_scaler.scale_into(outcome.rewards, &self.episode_ended, &mut b.rewards[rows.clone()]);
        } else {
            for (r, &raw) in b.rewards[rows.clone()].iter_mut().zip(outcome.rewards) {
                *r = raw as f32;
            }
        }
        match outcome.discounts {
            Some(d) => {
                assert_eq!(d.len(), n, "record_step: expects n_envs = {n} discounts");
                b.discounts[rows.clone()].copy_from_slice(d);
            }
            None => b.discounts[rows.clone()].fill(self.config.gamma),
        }
        if let Some(baseline) = outcome.baseline_rewards {
            assert_eq!(baseline.len(), n, "record_step: expects n_envs = {n} baseline rewards");
            for (out, &raw) in b.baseline_rewards[rows.clone()].iter_mut().zip(baseline) {
                *out = if self.config.normalize_reward { self.reward_scaler.scale(raw) } else { raw as f32 };
            }
        }
        b.terminated[rows.clone()].copy_from_slice(outcome.terminated);
        b.truncated[rows.clone()].copy_from_slice(outcome.truncated);

        // Truncated (and not terminated) members bootstrap from V(final obs), normalised with the
        // current statistics but not counted in them (SB3 VecNormalize's terminal_observation).
        let bootstrap: Vec<(usize, &[f32])> = outcome
            .final_obs
            .iter()
            .copied()
            .filter(|(i, _)| outcome.truncated[*i] && !outcome.terminated[*i])
            .collect();
        let truncated_count = (0..n).filter(|&i| outcome.truncated[i] && !outcome.terminated[i]).count();
        assert_eq!(bootstrap.len(), truncated_count, "record_step: every truncated member needs its final observation");
        if !bootstrap.is_empty() {
            let d = self.shape.input_dim();
            let mut input = vec![0.0f32; bootstrap.len() * d];
            for (row, (_, raw)) in input.chunks_exact_mut(d).zip(&bootstrap) {
                self.normalize_obs(raw, row);
            }
            let values = critic_values(&self.policy, &self.infer_device, input, d);
            for ((i, _), v) in bootstrap.iter().zip(values) {
                self.buffer.final_values[rows.start + i] = v;
            }
        }
        self.buffer.recorded += 1;
        self.progress.global_step += n as u64;
    }

    /// Stores every joint action value's reward for the step just recorded (`n_envs × n_joint`,
    /// raw; a hierarchy's high level records its own),
    /// scaled like the rewards (after the step's own rewards updated the scaler, as the
    /// self-critical baseline is).
    pub fn record_action_rewards(&mut self, raw: &[f64]) {
        let m = self.buffer.n_joint();
        let b = &mut self.buffer;
        let rows = (b.recorded - 1) * self.config.n_envs * m..b.recorded * self.config.n_envs * m;
        for (out, &r) in b.action_rewards[rows].iter_mut().zip(raw) {
            *out = if self.config.normalize_reward { self.reward_scaler.scale(r) } else { r as f32 };
        }
    }

    /// Closes a full rollout: V(next raw observations) of every member, then GAE.
    pub fn finish_rollout(&mut self, next_obs: &[f32]) {
        let mut input = vec![0.0f32; next_obs.len()];
        self.normalize_obs(next_obs, &mut input);
        let values = critic_values(&self.policy, &self.infer_device, input, self.shape.input_dim());
        self.buffer.last_values.copy_from_slice(&values);
        self.buffer.compute_gae(self.config.gamma, self.config.gae_lambda);
        match self.config.advantage {
            AdvantageBaseline::SelfCritical => self.buffer.apply_baseline_rewards(),
            AdvantageBaseline::AllActions => self.buffer.apply_all_action_advantages(),
            AdvantageBaseline::Critic => {}
        }
    }

    /// Collects one rollout of `n_steps` from `venv`, continuing from its current observations
    /// (the caller resets it once, with its seed, before the first rollout).
    pub fn collect_rollout<E: Env>(&mut self, venv: &mut VecEnv<E>) -> Result<RolloutStats, PpoError> {
        self.collect_rollout_observed(venv, |_| {})
    }

    /// [`Self::collect_rollout`], calling `on_step` after every vector step (the caller reads the
    /// step's infos, e.g. for environment metrics). Time spent in `on_step` is in neither
    /// `env_time_s` nor `policy_time_s`.
    pub fn collect_rollout_observed<E: Env>(
        &mut self,
        venv: &mut VecEnv<E>,
        on_step: impl FnMut(&mut VecEnv<E>),
    ) -> Result<RolloutStats, PpoError> {
        self.collect_rollout_taught(venv, None, on_step)
    }

    /// Whether the next update imitates ([`crate::config::Imitation`]): the first
    /// `imitation.updates` updates do.
    pub fn imitating(&self) -> bool {
        self.config.imitation.as_ref().is_some_and(|i| self.progress.n_updates < i.updates)
    }

    /// [`Self::collect_rollout_observed`] with the imitation teacher: while [`Self::imitating`],
    /// the teacher's actions are the ones taken and stored ([`Self::act_rollout_taught_with`]);
    /// afterwards `teacher` is not asked. Imitating without a teacher is an error.
    pub fn collect_rollout_taught<E: Env>(
        &mut self,
        venv: &mut VecEnv<E>,
        mut teacher: Option<&mut dyn Teacher<E>>,
        mut on_step: impl FnMut(&mut VecEnv<E>),
    ) -> Result<RolloutStats, PpoError> {
        if venv.n_envs() != self.config.n_envs {
            return Err(PpoError::EnvCount { expected: self.config.n_envs, got: venv.n_envs() });
        }
        let teacher_name = self.config.imitation.as_ref().map(|i| i.teacher.clone()).unwrap_or_default();
        let teacher_error = |message: String| PpoError::Teacher { teacher: teacher_name.clone(), message };
        if self.imitating() {
            if teacher.is_none() {
                return Err(teacher_error("imitation needs the teacher's actions, and none were given".into()));
            }
        } else {
            teacher = None;
        }
        let mut taught = vec![0; if teacher.is_some() { self.config.n_envs * self.shape.n_components() } else { 0 }];
        self.begin_rollout();
        let mut episodes = Vec::new();
        let (mut env_time_s, mut policy_time_s) = (0.0, 0.0);
        let self_critical = self.config.advantage == AdvantageBaseline::SelfCritical;
        let all_actions = self.config.advantage == AdvantageBaseline::AllActions;
        let n = self.config.n_envs;
        let (mut greedy, mut baseline) = (vec![0; n * self.shape.n_components()], vec![0.0; n]);
        let mut action_rewards = vec![0.0; if all_actions { n * self.buffer.n_joint() } else { 0 }];
        for _ in 0..self.config.n_steps {
            let start = Instant::now();
            if let Some(t) = teacher.as_deref_mut() {
                t.act(venv, &mut taught).map_err(teacher_error)?;
            }
            let members = venv.members();
            let mut conditional =
                |i: usize, prefix: &[usize], out: &mut [bool]| members[i].conditional_mask(prefix, out);
            let greedy_out = self_critical.then_some(greedy.as_mut_slice());
            let actions = if teacher.is_some() {
                self.act_rollout_taught_with(venv.obs(), venv.masks(), Some(&mut conditional), greedy_out, &taught)?
            } else {
                self.act_rollout_greedy_with(venv.obs(), venv.masks(), Some(&mut conditional), greedy_out)?
            };
            let acted = Instant::now();
            if self_critical {
                venv.counterfactual_rewards(&greedy, &mut baseline)?;
            }
            // While imitating, the loss is the cross-entropy to the teacher's action and the
            // probes' rewards are not used: they stay 0 and the 33-fold probing is skipped.
            if all_actions && teacher.is_none() {
                venv.counterfactual_action_rewards(&mut action_rewards)?;
            }
            venv.step(actions)?;
            let stepped = Instant::now();
            let final_obs: Vec<(usize, &[f32])> =
                venv.finished().iter().filter_map(|e| venv.final_obs(e.env_index).map(|o| (e.env_index, o))).collect();
            self.record_step(&StepOutcome {
                discounts: None,
                baseline_rewards: self_critical.then_some(baseline.as_slice()),
                rewards: venv.rewards(),
                terminated: venv.terminated(),
                truncated: venv.truncated(),
                final_obs: &final_obs,
            });
            if all_actions {
                self.record_action_rewards(&action_rewards);
            }
            if let Some(t) = teacher.as_deref_mut() {
                t.episodes_ended(venv.finished());
            }
            episodes.extend_from_slice(venv.finished());
            env_time_s += (stepped - acted).as_secs_f64();
            policy_time_s += (acted - start).as_secs_f64() + stepped.elapsed().as_secs_f64();
            on_step(venv);
        }
        let start = Instant::now();
        self.finish_rollout(venv.obs());
        policy_time_s += start.elapsed().as_secs_f64();
        Ok(RolloutStats {
            steps: self.config.rollout_size() as u64,
            global_step: self.progress.global_step,
            episodes,
            env_time_s,
            policy_time_s,
        })
    }

    // ----- update -------------------------------------------------------------------------------

    /// `n_epochs` passes of shuffled minibatches over the finished rollout.
    pub fn update(&mut self) -> UpdateStats {
        assert!(self.buffer.finished, "update: needs a finished rollout (collect_rollout or finish_rollout)");
        let start = Instant::now();
        let c = &self.config;
        let n_planned = c.n_updates_planned();
        let learning_rate = c.lr_annealing.value(c.learning_rate, self.progress.n_updates, n_planned);
        let clip_range = c.clip_annealing.value(c.clip_range, self.progress.n_updates, n_planned);
        let (n_epochs, batch_size, target_kl) = (c.n_epochs, c.batch_size, c.target_kl);
        let temperature = f64::from(self.temperature());
        let imitation = self.imitating();
        // Only the decisions are trained on (every row unless a hierarchy held its high choice).
        let mut indices = self.buffer.decision_indices();
        let explained_variance = if indices.len() == self.buffer.len() {
            explained_variance(&self.buffer.values, &self.buffer.returns)
        } else {
            let pick = |v: &[f32]| indices.iter().map(|&j| v[j]).collect::<Vec<f32>>();
            explained_variance(&pick(&self.buffer.values), &pick(&self.buffer.returns))
        };

        let mut sums = MinibatchStats::default();
        // Every row a decision: SB3's minibatches (a last, smaller one takes the remainder). With
        // held rows (a hierarchy's k_high > 1) the number of decisions changes from rollout to
        // rollout, so they are split into ⌈n / batch_size⌉ minibatches of near-equal size rather
        // than leaving a stray one of a row or two (which would skip advantage normalisation and
        // decide the `target_kl` stop).
        let n = indices.len();
        let chunk_size =
            if n == self.buffer.len() { batch_size } else { n.div_ceil(n.div_ceil(batch_size).max(1)).max(1) };
        let (mut n_minibatches, mut epochs_run, mut early_stopped) = (0, 0, false);
        for _epoch in 0..n_epochs {
            indices.shuffle(&mut self.rng);
            let mut last_kl = 0.0;
            for chunk in indices.chunks(chunk_size) {
                let s = self.train_minibatch(chunk, learning_rate, clip_range, temperature as f32, imitation);
                last_kl = s.approx_kl;
                sums.add(&s);
                n_minibatches += 1;
            }
            epochs_run += 1;
            if target_kl.is_some_and(|target| last_kl > target) {
                early_stopped = true;
                break;
            }
        }
        self.refresh_policy();
        self.progress.n_updates += 1;
        self.buffer.clear();
        let k = n_minibatches.max(1) as f64;
        UpdateStats {
            policy_loss: sums.policy_loss / k,
            value_loss: sums.value_loss / k,
            entropy: sums.entropy / k,
            approx_kl: sums.approx_kl / k,
            clip_frac: sums.clip_frac / k,
            prob_floor_penalty: sums.prob_floor_penalty.map(|x| x / k),
            explained_variance,
            grad_norm: sums.grad_norm / k,
            learning_rate,
            clip_range,
            temperature,
            epochs_run,
            n_minibatches,
            early_stopped,
            n_updates: self.progress.n_updates,
            update_time_s: start.elapsed().as_secs_f64(),
            imitation: self.config.imitation.is_some().then_some(imitation),
        }
    }

    /// One shared PPO gradient step ([`ppo_gradient_step`]) on the minibatch at `indices`.
    fn train_minibatch(
        &mut self,
        indices: &[usize],
        learning_rate: f64,
        clip_range: f64,
        temperature: f32,
        imitation: bool,
    ) -> MinibatchStats {
        let c = &self.config;
        self.buffer.gather(indices, c.normalize_advantage, &mut self.minibatch);
        let mb = &self.minibatch;
        let (b, d, m, k) = (mb.len, self.shape.input_dim(), self.shape.mask_len(), self.shape.n_components());
        let dev = &self.train_device;
        let vector = |v: &Vec<f32>| Tensor::<1>::from_data(TensorData::new(v.clone(), [b]), dev);
        let batch = PolicyBatch {
            obs: Tensor::<2>::from_data(TensorData::new(mb.obs.clone(), [b, d]), dev),
            illegal: Tensor::<2, Bool>::from_data(TensorData::new(mb.illegal.clone(), [b, m]), dev),
            actions: Tensor::<2, Int>::from_data(TensorData::new(mb.actions.clone(), [b, k]), dev),
            old_log_probs: vector(&mb.old_log_probs),
            old_values: vector(&mb.old_values),
            advantages: vector(&mb.advantages),
            returns: vector(&mb.returns),
            len: b,
            temperature,
            // Not while imitating: the cross-entropy loss uses neither every action's
            // probability nor its advantage, so they are not computed in the minibatch loop.
            all_actions: (!imitation && !mb.old_probs.is_empty()).then(|| {
                let q = self.buffer.n_joint();
                AllActionBatch {
                    illegal: Tensor::<2, Bool>::from_data(TensorData::new(mb.joint_illegal.clone(), [b, q]), dev),
                    old_probs: Tensor::<2>::from_data(TensorData::new(mb.old_probs.clone(), [b, q]), dev),
                    advantages: Tensor::<2>::from_data(TensorData::new(mb.action_advantages.clone(), [b, q]), dev),
                    prob_floor: (c.prob_floor > 0.0).then_some(c.prob_floor),
                }
            }),
        };
        let params = StepParams {
            learning_rate,
            clip_range,
            clip_range_vf: c.clip_range_vf,
            vf_coef: c.vf_coef,
            ent_coef: c.ent_coef,
            max_grad_norm: c.max_grad_norm,
            grad_clip: c.grad_clip,
            imitation,
        };
        let (model, stats) =
            ppo_gradient_step(self.model.clone(), &mut self.optimizer, batch, &self.shape.nvec, &params);
        self.model = model;
        stats
    }

    // ----- devices ------------------------------------------------------------------------------

    /// Moves the networks: updates run on `learn`, acting on `act` (crate::compute_device says
    /// why training acts on the CPU). The Adam moments follow the parameters at the next update
    /// (burn moves an optimizer's state to its parameter's device), so a learner restored from a
    /// checkpoint written on another device continues where it stopped.
    pub fn place(&mut self, learn: &Device, act: &Device) {
        self.train_device = learn.clone().autodiff();
        self.infer_device = act.clone();
        // `fork`, not `to_device`: the moved parameters stay trainable leaves on the new device.
        self.model = self.model.clone().fork(&self.train_device);
        self.refresh_policy();
    }

    /// The acting copy of the model, after every change of its weights.
    fn refresh_policy(&mut self) {
        let policy = self.model.valid();
        // Same hardware: no copy (the flex-only path stays what it was, bit for bit).
        self.policy =
            if self.infer_device == self.train_device { policy } else { policy.to_device(&self.infer_device) };
    }

    // ----- state --------------------------------------------------------------------------------

    /// The complete learner state. Only between rollouts: the rollout buffer is not part of it.
    pub fn export_state(&self) -> Result<PpoState, PpoError> {
        if self.buffer.acted != 0 {
            return Err(PpoError::MidRollout);
        }
        let weights = self.model.clone().into_record().into_bytes().map_err(|e| PpoError::Record(e.to_string()))?;
        let optimizer = self.optimizer.into_bytes().map_err(|e| PpoError::Record(e.to_string()))?;
        Ok(PpoState {
            weights: weights.to_vec(),
            optimizer: optimizer.to_vec(),
            meta: PpoMeta {
                format_version: PPO_STATE_VERSION,
                config: self.config.clone(),
                shape: self.shape.clone(),
                obs_normalizer: self.obs_normalizer.clone(),
                reward_scaler: self.reward_scaler.clone(),
                rng: self.rng.clone(),
                progress: self.progress,
            },
        })
    }

    /// A learner rebuilt from a saved state, with the saved config (a flat learner's or a
    /// hierarchy's level's: [`Ppo::new_learner`], whose checks hold for both).
    pub fn from_state(state: &PpoState) -> Result<Self, PpoError> {
        let mut ppo = Self::new_learner(state.meta.config.clone(), state.meta.shape.clone(), 0, 0)?;
        ppo.restore_state(state)?;
        Ok(ppo)
    }

    /// Replaces this learner's state with a saved one. The networks, action space and `n_envs`
    /// must match; other hyperparameters stay this learner's (continuing is bit-identical when
    /// they equal the saved ones).
    pub fn restore_state(&mut self, state: &PpoState) -> Result<(), PpoError> {
        let meta = &state.meta;
        if meta.format_version != PPO_STATE_VERSION {
            return Err(PpoError::StateMismatch(format!(
                "format version {}, this build reads {PPO_STATE_VERSION}",
                meta.format_version
            )));
        }
        // (what, consistent, the saved state's value, what this learner expects)
        let checks = [
            ("shape", meta.shape == self.shape, format!("{:?}", meta.shape), format!("{:?}", self.shape)),
            (
                "config.n_envs",
                meta.config.n_envs == self.config.n_envs,
                meta.config.n_envs.to_string(),
                self.config.n_envs.to_string(),
            ),
            (
                "config.actor_hidden",
                meta.config.actor_hidden == self.config.actor_hidden,
                format!("{:?}", meta.config.actor_hidden),
                format!("{:?}", self.config.actor_hidden),
            ),
            (
                "config.critic_hidden",
                meta.config.critic_hidden == self.config.critic_hidden,
                format!("{:?}", meta.config.critic_hidden),
                format!("{:?}", self.config.critic_hidden),
            ),
            (
                "obs_normalizer",
                meta.obs_normalizer.stats.dim() == self.shape.obs_dim,
                format!("{} features", meta.obs_normalizer.stats.dim()),
                format!("{} (shape.obs_dim)", self.shape.obs_dim),
            ),
            (
                "reward_scaler",
                meta.reward_scaler.returns.len() == self.config.n_envs,
                format!("{} members", meta.reward_scaler.returns.len()),
                format!("{} (n_envs)", self.config.n_envs),
            ),
        ];
        if let Some((what, _, saved, expected)) = checks.into_iter().find(|(_, ok, _, _)| !ok) {
            return Err(PpoError::StateMismatch(format!("{what} is {saved} in the saved state, expected {expected}")));
        }
        let record = ModuleRecord::from_bytes(Bytes::from_bytes_vec(state.weights.clone()))
            .map_err(|e| PpoError::Record(format!("weights: {e}")))?;
        let model =
            self.model.clone().try_load_record(record).map_err(|e| PpoError::Record(format!("weights: {e}")))?;
        let optimizer = adam(&self.config)
            .from_bytes(Bytes::from_bytes_vec(state.optimizer.clone()))
            .map_err(|e| PpoError::Record(format!("optimizer: {e}")))?;
        self.model = model;
        self.refresh_policy();
        self.optimizer = optimizer;
        self.obs_normalizer = meta.obs_normalizer.clone();
        self.reward_scaler = meta.reward_scaler.clone();
        self.rng = meta.rng.clone();
        self.progress = meta.progress;
        self.buffer.clear();
        Ok(())
    }
}

/// Divides logits by the temperature `t` (no-op at 1, so an untempered learner is unchanged bit
/// for bit).
fn temper(logits: &mut [f32], t: f32) {
    if t != 1.0 {
        for l in logits {
            *l /= t;
        }
    }
}

/// The environment's conditional mask for `(member, values chosen so far)`, written into the
/// output slice when it returns `true` ([`Env::conditional_mask`], system-model §9).
pub type ConditionalMask<'a> = &'a mut ConditionalMaskFn<'a>;
pub type ConditionalMaskFn<'f> = dyn FnMut(usize, &[usize], &mut [bool]) -> bool + 'f;

/// Where one member's masks come from while its components are picked.
struct MaskSource<'a, 'f> {
    member: usize,
    /// The first component whose mask comes from `conditional` (earlier ones use the
    /// observation's mask).
    first: usize,
    conditional: Option<&'a mut ConditionalMaskFn<'f>>,
    scratch: &'a mut Vec<bool>,
}

/// Picks one member's action vector component by component. Components before `source.first`
/// use the observation's mask (a flat learner's component 0, whose observation mask is exact);
/// each later component uses the environment's conditional mask given the values already
/// picked when it supplies one (autoregressive masking), and that mask replaces the observation's
/// in `mask`, so `mask` ends up holding exactly what each component was picked under. The logits
/// do not depend on earlier picks: the policy stays a product of per-component categoricals,
/// whose log-probability the update recomputes from the stored masks.
fn choose_actions<R: rand::Rng>(
    logits: &[f32],
    mask: &mut [bool],
    nvec: &[usize],
    mut source: MaskSource<'_, '_>,
    pick: &mut Pick<'_, R>,
    given: Option<&[usize]>,
    action: &mut [usize],
) -> Result<f64, PpoError> {
    let mut offset = 0;
    let mut log_prob = 0.0;
    for (c, &n) in nvec.iter().enumerate() {
        let block = offset..offset + n;
        if c >= source.first
            && let Some(f) = source.conditional.as_deref_mut()
        {
            source.scratch.clear();
            source.scratch.resize(n, false);
            if f(source.member, &action[..c], source.scratch) {
                mask[block.clone()].copy_from_slice(source.scratch);
            }
        }
        let (a, lp) = match given {
            // A teacher's value (imitation), scored under the mask it is taken under.
            Some(g) => (
                g[c],
                value_log_prob(&logits[block.clone()], &mask[block], g[c]).ok_or_else(|| PpoError::Teacher {
                    teacher: String::new(),
                    message: format!(
                        "member {}: value {} of action component {c} is not legal in its state",
                        source.member, g[c]
                    ),
                })?,
            ),
            None => pick_component(&logits[block.clone()], &mask[block], pick)
                .ok_or(PpoError::Mask { env_index: source.member, source: EmptyMask { component: c } })?,
        };
        action[c] = a;
        log_prob += lp;
        offset += n;
    }
    Ok(log_prob)
}

/// Per-minibatch statistics (summed across minibatches, then averaged).
/// The policy's input for raw rows (observation then context): the observation columns
/// normalised when `enabled`, the context columns as given. A free function so the rollout
/// writes straight into its buffer while the normaliser is borrowed.
fn normalize_rows(normalizer: &ObsNormalizer, shape: &PolicyShape, enabled: bool, raw: &[f32], out: &mut [f32]) {
    if !enabled {
        out.copy_from_slice(raw);
    } else if shape.context_dim == 0 {
        normalizer.normalize_into(raw, out);
    } else {
        let (d, w) = (shape.obs_dim, shape.input_dim());
        for (row_in, row_out) in raw.chunks_exact(w).zip(out.chunks_exact_mut(w)) {
            normalizer.normalize_into(&row_in[..d], &mut row_out[..d]);
            row_out[d..].copy_from_slice(&row_in[d..]);
        }
    }
}

/// The largest joint space the all-action advantage enumerates: one environment probe per legal
/// joint value per sample (the hierarchical space's high level has 33 splits × 3 precisions = 99).
pub const MAX_JOINT_VALUES: usize = 256;

/// The all-action advantage enumerates a learner's joint values: one or two components, at most
/// [`MAX_JOINT_VALUES`] combinations.
fn check_all_actions(shape: &PolicyShape) -> Result<(), PpoError> {
    let joint: usize = shape.nvec.iter().product();
    if shape.n_components() > 2 || joint > MAX_JOINT_VALUES {
        return Err(PpoError::Config(InvalidField::new(
            "advantage",
            "all-actions",
            format!(
                "enumerates every joint value of one or two components, at most {MAX_JOINT_VALUES}; this policy has {} \
                 components of sizes {:?} ({joint} joint values; use \"self-critical\")",
                shape.n_components(),
                shape.nvec
            ),
        )));
    }
    Ok(())
}

fn adam(config: &PpoConfig) -> ModuleOptimizer {
    AdamConfig::new().with_epsilon(config.adam_epsilon as f32).init()
}

/// One host transfer of a float tensor's values.
fn host_vec<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().try_into_vec::<f32>().expect("network outputs are f32")
}

/// V(s) for rows of already-normalised observations.
fn critic_values(model: &ActorCritic, device: &Device, input: Vec<f32>, obs_dim: usize) -> Vec<f32> {
    let rows = input.len() / obs_dim;
    let x = Tensor::<2>::from_data(TensorData::new(input, [rows, obs_dim]), device);
    host_vec(model.critic.forward(x))
}

fn mean(xs: impl Iterator<Item = f64>) -> Option<f64> {
    let (sum, n) = xs.fold((0.0, 0usize), |(s, n), x| (s + x, n + 1));
    (n > 0).then(|| sum / n as f64)
}
