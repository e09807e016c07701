//! Hierarchical PPO (Splitwise's agent): two PPO learners on one environment step.
//!
//! - The **high** level picks the first `n_high` action components (on the partition
//!   environment's hierarchical space: split layer and boundary precision) from the observation.
//! - The **low** level picks the remaining components (head counts and FFN modes of the window
//!   layers, layer by layer) from the observation plus a context: the high level's choice,
//!   one-hot per component, passed through unnormalised ([`PolicyShape::context_dim`]). Every
//!   low component is masked given the high choice and the low components before it (the
//!   environment's conditional mask: edge memory couples the layers), so no infeasible plan is
//!   ever sampled.
//!
//! Both levels act every slot and learn from the same reward with their own critic, optimiser,
//! normaliser and RNG stream (learners 0 and 1 of the seed); each update runs the shared
//! [`crate::ppo_step`] over its own rollout. The high level may use the all-action advantage
//! (`AdvantageBaseline::AllActions`): each of its legal joint choices, completed by the low level's
//! greedy plan, is probed every step ([`Candidates`]), and its surrogate is maximised in
//! expectation over them; the low level uses the critic or the self-critical advantage. The network
//! is an MLP per level with autoregressive masking rather than Splitwise's LSTM over layers: the
//! window is a handful of layers, the masks already carry the coupling between them, and an MLP
//! exports as a fixed op sequence. A fresh low level starts at the environment's default completion
//! of the high choice (the whole-layer plan of the split, [`completion_prior`]), through a context
//! skip that trains with the rest of its network.
//!
//! With `k_high > 1` the high level decides every k slots and holds its choice in between (an
//! option; Sutton, Precup & Singh 1999): a decision's transition is the option's, its reward the
//! γ-discounted sum over the slots it was held and its bootstrap γ^k·V(s after them)
//! ([`crate::gae::gae`] with the buffer's decision column); the held slots are not trained on.
//! The low level still acts every slot, conditioned on the held choice. An option ends early at
//! an episode end, at the rollout's end (so no option spans two updates), and when the held choice
//! is no longer legal (edge memory changed: the environment's masks forbid it or leave it no
//! legal completion); the high level then decides afresh. Acting outside training holds the
//! choice the same way through [`HighHold`]. Only the critic's advantage is allowed with
//! k > 1 (the self-critical and all-action advantages probe one slot), and γ > 0 (with γ = 0
//! an option would be judged by its first slot alone).

use crate::buffer::joint_action;
use crate::ppo::{
    ActionChoice, ConditionalMask, ConditionalMaskFn, PolicyShape, Ppo, PpoError, PpoState, Progress, RolloutStats,
};
use crate::ppo::{StepOutcome, UpdateStats};
use crate::{AdvantageBaseline, PpoConfig};
use splitwise_env::api::Env;
use splitwise_env::validate::InvalidField;
use splitwise_env::vector::VecEnv;
use std::time::Instant;

/// The two levels' hyperparameters; their `n_envs` and `n_steps` must agree (one rollout).
#[derive(Clone, Debug, PartialEq)]
pub struct HppoConfig {
    pub high: PpoConfig,
    pub low: PpoConfig,
    /// How many leading action components the high level picks.
    pub n_high: usize,
    /// The logit bonus the low level starts with on the values the environment's default
    /// completion of the high choice implies ([`completion_prior`]); 0: a uniform start.
    pub low_prior: f32,
    /// Slots the high level holds a choice for (1: it decides every slot).
    pub k_high: usize,
}

impl HppoConfig {
    /// The holding of high choices (`k_high`): at least 1 and at most the rollout's `n_steps`,
    /// and more than 1 only with the critic's advantage at the high level and γ > 0. Fields are named relative to the agent
    /// (`k_high`, `high.advantage`, `high.gamma`).
    pub fn validate_options(&self) -> Result<(), InvalidField> {
        if self.k_high == 0 {
            return Err(InvalidField::new("k_high", 0, "must be >= 1 (slots per high-level decision)"));
        }
        if self.k_high > self.high.n_steps {
            return Err(InvalidField::new(
                "k_high",
                self.k_high,
                format!(
                    "must be <= high.n_steps = {} (an option ends with its rollout, so a longer one is never held)",
                    self.high.n_steps
                ),
            ));
        }
        if self.k_high > 1 && !self.high.advantage.is_critic() {
            return Err(InvalidField::new(
                "high.advantage",
                self.high.advantage.name(),
                format!(
                    "must be \"critic\" with k_high = {} (the self-critical and all-action advantages probe one slot, \
                     an option runs k)",
                    self.k_high
                ),
            ));
        }
        if self.k_high > 1 && self.high.gamma == 0.0 {
            return Err(InvalidField::new(
                "high.gamma",
                0.0,
                format!(
                    "must be > 0 with k_high = {} (with γ = 0 an option's return is its first slot's reward)",
                    self.k_high
                ),
            ));
        }
        Ok(())
    }
}

/// The default [`HppoConfig::low_prior`]: e^6 ≈ 400 times the weight of any other value, so a
/// fresh low level keeps a 5-valued component at the whole-layer plan of the high choice in 99 %
/// of its draws and a 3-valued one in 99.5 %: all 4 layers of a window stay whole in ~94 % of
/// draws (see [`completion_prior`]). Measured on the Jetson scenario (300k steps): with 3 (~27 %
/// whole windows) the low level drifted back to near-uniform placements and H-PPO ended at
/// Δ + V·p 64; with 6 it reached 8.5, next to the best static plan's 8.35.
pub const DEFAULT_LOW_PRIOR: f32 = 6.0;

/// Both levels' complete state.
#[derive(Clone, Debug, PartialEq)]
pub struct HppoState {
    pub high: PpoState,
    pub low: PpoState,
    pub n_high: usize,
    pub k_high: usize,
}

pub struct Hppo {
    high: Ppo,
    low: Ppo,
    n_high: usize,
    low_prior: f32,
    k_high: usize,
    /// The environment's action space (both levels' components).
    env: PolicyShape,
}

/// High choices held across slots (`k_high > 1`), one entry per row (vector-env member) that a
/// caller acting over episodes keeps between steps: [`Hppo::act_holding_into_with`]. A row with
/// no slots left, or ended by [`HighHold::end_episode`], decides at its next step. One hold
/// belongs to one hierarchy (its rows hold that hierarchy's high choices).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct HighHold {
    /// Per row: the held high choice and how many more slots it is held for.
    rows: Vec<(Vec<usize>, usize)>,
}

impl HighHold {
    /// The next step of `row` decides afresh (call at its episode's end).
    pub fn end_episode(&mut self, row: usize) {
        if let Some(r) = self.rows.get_mut(row) {
            r.1 = 0;
        }
    }

    /// Every row decides afresh at its next step.
    pub fn clear(&mut self) {
        self.rows.clear();
    }
}

impl Hppo {
    /// Two fresh learners for an environment of shape `env`.
    pub fn new(config: HppoConfig, env: PolicyShape, seed: u64) -> Result<Self, PpoError> {
        let (high, low) = level_shapes(&env, config.n_high)?;
        if config.high.n_envs != config.low.n_envs || config.high.n_steps != config.low.n_steps {
            return Err(PpoError::Shape(format!(
                "the levels must share one rollout: high n_envs {} n_steps {}, low n_envs {} n_steps {}",
                config.high.n_envs, config.high.n_steps, config.low.n_envs, config.low.n_steps
            )));
        }
        config.validate_options().map_err(PpoError::Config)?;
        if config.low.advantage == AdvantageBaseline::AllActions {
            return Err(PpoError::Config(InvalidField::new(
                "low.advantage",
                "all-actions",
                "is for the high level (its joint choices are enumerated and completed by the low level's greedy \
                 plan); the low level allows \"critic\" or \"self-critical\"",
            )));
        }
        Ok(Self {
            high: Ppo::new_learner(config.high, high, seed, 0)?,
            low: Ppo::new_learner(config.low, low, seed, 1)?,
            n_high: config.n_high,
            low_prior: config.low_prior,
            k_high: config.k_high,
            env,
        })
    }

    /// Starts the low level at the environment's default completion of each high choice
    /// ([`completion_prior`] with [`HppoConfig::low_prior`]); a no-op for a zero prior or an
    /// environment without a default. Only before the first update.
    pub fn init_low_prior<E: Env>(&mut self, env: &E) -> Result<(), PpoError> {
        if self.low_prior == 0.0 {
            return Ok(());
        }
        match completion_prior(env, &self.env, self.n_high, self.low_prior) {
            Some(w) => self.low.set_context_skip(&w),
            None => Ok(()),
        }
    }

    pub fn high(&self) -> &Ppo {
        &self.high
    }

    pub fn low(&self) -> &Ppo {
        &self.low
    }

    pub fn n_high(&self) -> usize {
        self.n_high
    }

    /// Slots the high level holds a choice for.
    pub fn k_high(&self) -> usize {
        self.k_high
    }

    /// The environment's action space.
    pub fn env_shape(&self) -> &PolicyShape {
        &self.env
    }

    pub fn progress(&self) -> Progress {
        self.high.progress()
    }

    /// Both levels on the same devices ([`Ppo::place`]).
    pub fn place(&mut self, learn: &burn::tensor::Device, act: &burn::tensor::Device) {
        self.high.place(learn, act);
        self.low.place(learn, act);
    }

    /// Every parameter of both levels (high first), as host values.
    pub fn parameter_values(&self) -> Vec<Vec<f32>> {
        let mut v = self.high.parameter_values();
        v.extend(self.low.parameter_values());
        v
    }

    /// Width of the high choice's one-hot (the low level's context).
    fn context_dim(&self) -> usize {
        self.env.nvec[..self.n_high].iter().sum()
    }

    /// Low-level input rows: each member's observation, then its high choice one-hot.
    fn low_rows(&self, obs: &[f32], high_actions: &[usize]) -> Vec<f32> {
        let (d, c, nh) = (self.env.obs_dim, self.context_dim(), self.n_high);
        let rows = obs.len() / d;
        let mut out = vec![0.0f32; rows * (d + c)];
        for (r, row) in out.chunks_exact_mut(d + c).enumerate() {
            row[..d].copy_from_slice(&obs[r * d..(r + 1) * d]);
            let mut offset = d;
            for (j, &a) in high_actions[r * nh..(r + 1) * nh].iter().enumerate() {
                row[offset + a] = 1.0;
                offset += self.env.nvec[j];
            }
        }
        out
    }

    /// Splits rows of full masks into the high part and the low part.
    fn split_masks(&self, masks: &[bool]) -> (Vec<bool>, Vec<bool>) {
        let m = self.env.mask_len();
        let mh: usize = self.context_dim();
        let (mut high, mut low) = (Vec::new(), Vec::new());
        for row in masks.chunks_exact(m) {
            high.extend_from_slice(&row[..mh]);
            low.extend_from_slice(&row[mh..]);
        }
        (high, low)
    }

    /// Joins rows of high and low actions into rows of environment actions.
    fn join_actions(&self, high: &[usize], low: &[usize], out: &mut [usize]) {
        let (nh, nl) = (self.n_high, self.env.n_components() - self.n_high);
        for (r, row) in out.chunks_exact_mut(nh + nl).enumerate() {
            row[..nh].copy_from_slice(&high[r * nh..(r + 1) * nh]);
            row[nh..].copy_from_slice(&low[r * nl..(r + 1) * nl]);
        }
    }

    /// Actions for raw observations and full masks (rows), both levels in turn; `conditional`
    /// is the environment's conditional mask over all components (member, prefix, out). The high
    /// level decides at every call: acting over episodes with `k_high > 1` goes through
    /// [`Hppo::act_holding_into_with`].
    pub fn act_into_with(
        &self,
        obs: &[f32],
        masks: &[bool],
        choice: ActionChoice<'_>,
        conditional: Option<ConditionalMask<'_>>,
        actions: &mut [usize],
    ) -> Result<(), PpoError> {
        self.act_rows(obs, masks, choice, conditional, None, actions)
    }

    /// [`Hppo::act_into_with`] for a caller acting over episodes: each row's high choice is held
    /// for `k_high` slots in `hold` (kept by the caller between steps, one row per member; call
    /// [`HighHold::end_episode`] when a member's episode ends), unless it stops being legal. With
    /// `k_high = 1` the same as [`Hppo::act_into_with`].
    pub fn act_holding_into_with(
        &self,
        obs: &[f32],
        masks: &[bool],
        choice: ActionChoice<'_>,
        conditional: Option<ConditionalMask<'_>>,
        hold: &mut HighHold,
        actions: &mut [usize],
    ) -> Result<(), PpoError> {
        let hold = (self.k_high > 1).then_some(hold);
        self.act_rows(obs, masks, choice, conditional, hold, actions)
    }

    /// Replaces each row's high choice in `high` by its held one where that is still held and
    /// legal, and holds the others' new choices for `k_high − 1` more slots; returns which rows
    /// held.
    fn apply_hold(
        &self,
        hold: &mut HighHold,
        high: &mut [usize],
        masks: &[bool],
        mut conditional: Option<&mut ConditionalMaskFn<'_>>,
    ) -> Vec<bool> {
        let (nh, m) = (self.n_high, self.env.mask_len());
        let rows = high.len() / nh;
        hold.rows.resize(rows, (Vec::new(), 0));
        let mut held_rows = vec![false; rows];
        for (i, held_row) in held_rows.iter_mut().enumerate() {
            let (held, left) = &mut hold.rows[i];
            let row = &mut high[i * nh..(i + 1) * nh];
            let mask = &masks[i * m..(i + 1) * m];
            if *left > 0 && self.held_is_legal(i, held, mask, conditional.as_deref_mut()) {
                row.copy_from_slice(held);
                *left -= 1;
                *held_row = true;
            } else {
                held.clear();
                held.extend_from_slice(row);
                *left = self.k_high - 1;
            }
        }
        held_rows
    }

    /// Whether member `i` may still take the high choice `held`: its first component is allowed
    /// by the mask row, each later high component by the environment's conditional mask given
    /// the ones before it, and the first low component has a legal value given all of them.
    fn held_is_legal(
        &self,
        i: usize,
        held: &[usize],
        mask: &[bool],
        mut conditional: Option<&mut ConditionalMaskFn<'_>>,
    ) -> bool {
        let nvec = &self.env.nvec;
        if !mask[held[0]] {
            return false;
        }
        let (mut offset, mut out) = (nvec[0], Vec::new());
        for (j, &n) in nvec.iter().enumerate().take(self.n_high + 1).skip(1) {
            out.clear();
            out.resize(n, false);
            let exact = conditional.as_deref_mut().is_some_and(|f| f(i, &held[..j], &mut out));
            let allowed: &[bool] = if exact { &out } else { &mask[offset..offset + n] };
            let legal = if j < self.n_high { allowed[held[j]] } else { allowed.iter().any(|&a| a) };
            if !legal {
                return false;
            }
            offset += n;
        }
        true
    }

    fn act_rows(
        &self,
        obs: &[f32],
        masks: &[bool],
        choice: ActionChoice<'_>,
        mut conditional: Option<ConditionalMask<'_>>,
        hold: Option<&mut HighHold>,
        actions: &mut [usize],
    ) -> Result<(), PpoError> {
        let rows = obs.len() / self.env.obs_dim.max(1);
        let (nh, nl) = (self.n_high, self.env.n_components() - self.n_high);
        let (high_masks, low_masks) = self.split_masks(masks);
        let mut high = vec![0; rows * nh];
        let mut low = vec![0; rows * nl];
        let mut rng = match choice {
            ActionChoice::Deterministic => None,
            ActionChoice::Sample(rng) => Some(rng),
        };
        let high_choice = rng.as_deref_mut().map_or(ActionChoice::Deterministic, ActionChoice::Sample);
        match conditional.as_deref_mut() {
            Some(f) => self.high.act_into_with(obs, &high_masks, high_choice, Some(f), &mut high)?,
            None => self.high.act_into_with(obs, &high_masks, high_choice, None, &mut high)?,
        }
        if let Some(hold) = hold {
            self.apply_hold(hold, &mut high, masks, conditional.as_deref_mut());
        }
        let low_obs = self.low_rows(obs, &high);
        let low_choice = rng.map_or(ActionChoice::Deterministic, ActionChoice::Sample);
        match conditional {
            Some(f) => {
                let mut prefixed = prefixed_mask(f, &high, nh);
                self.low.act_into_with(&low_obs, &low_masks, low_choice, Some(&mut prefixed), &mut low)?
            }
            None => self.low.act_into_with(&low_obs, &low_masks, low_choice, None, &mut low)?,
        }
        self.join_actions(&high, &low, actions);
        Ok(())
    }

    /// One rollout of `n_steps` on `venv` for both levels (the caller resets it once), calling
    /// `on_step` after every vector step. Returns the episodes that ended.
    pub fn collect_rollout_observed<E: Env>(
        &mut self,
        venv: &mut VecEnv<E>,
        mut on_step: impl FnMut(&mut VecEnv<E>),
    ) -> Result<RolloutStats, PpoError> {
        let n_envs = self.high.config().n_envs;
        if venv.n_envs() != n_envs {
            return Err(PpoError::EnvCount { expected: n_envs, got: venv.n_envs() });
        }
        let (nh, nl) = (self.n_high, self.env.n_components() - self.n_high);
        self.high.begin_rollout();
        self.low.begin_rollout();
        let mut episodes = Vec::new();
        let (mut env_time_s, mut policy_time_s) = (0.0, 0.0);
        let mut actions = vec![0; n_envs * (nh + nl)];
        // Self-critical advantages (`AdvantageBaseline::SelfCritical`), probed under the step's
        // own randomness. With h, l the sampled choices and l*(·) the low level's greedy
        // completion: the high level's advantage is r(h, l) − r(h*, l*(h*)) (h* the greedy high
        // choice: the executed plan against the greedy plan), the low level's r(h, l) − r(h, l*(h))
        // (the executed plan against the greedy completion of the same high choice). Judging the
        // high level by r(h, l*(h)) instead (what its choice earns with the deployed completion)
        // was measured worse on a test scenario (docs/agents.md).
        let high_critical = self.high.config().advantage == AdvantageBaseline::SelfCritical;
        // All-action advantage at the high level: every legal high choice b of each member,
        // completed by the low level's greedy plan l*(b), is probed under the step's randomness,
        // and the high level maximises its clipped surrogate in expectation over its joint
        // choices with Â_b = r(b, l*(b)) − Σ_c π_old(c)·r(c, l*(c)) (docs/agents.md).
        let high_all = self.high.config().advantage == AdvantageBaseline::AllActions;
        let n_joint: usize = self.env.nvec[..nh].iter().product();
        let mut joint_rewards = vec![0.0; if high_all { n_envs * n_joint } else { 0 }];
        let mut candidates = Candidates::default();
        let low_critical = self.low.config().advantage == AdvantageBaseline::SelfCritical;
        let (mut greedy_high, mut greedy_low) = (vec![0; n_envs * nh], vec![0; n_envs * nl]);
        let mut greedy_completion = vec![0; n_envs * nl];
        let (mut greedy_plan, mut completed) = (vec![0; n_envs * (nh + nl)], vec![0; n_envs * (nh + nl)]);
        let (mut greedy_plan_rewards, mut completed_rewards) = (vec![0.0; n_envs], vec![0.0; n_envs]);
        // k_high > 1: the held high choices (every member decides at the rollout's first step).
        let mut hold = HighHold::default();
        for _ in 0..self.high.config().n_steps {
            let start = Instant::now();
            let (high_masks, low_masks) = self.split_masks(venv.masks());
            let high = {
                let members = venv.members();
                let mut conditional =
                    |i: usize, prefix: &[usize], out: &mut [bool]| members[i].conditional_mask(prefix, out);
                // The greedy choices come from the rollout's own forward passes; only the greedy
                // completion of the greedy high choice needs one more low-level pass.
                let greedy_out = high_critical.then_some(greedy_high.as_mut_slice());
                let mut high = self
                    .high
                    .act_rollout_greedy_with(venv.obs(), &high_masks, Some(&mut conditional), greedy_out)?
                    .to_vec();
                if self.k_high > 1 {
                    let held = self.apply_hold(&mut hold, &mut high, venv.masks(), Some(&mut conditional));
                    for (i, _) in held.iter().enumerate().filter(|(_, h)| **h) {
                        self.high.hold_rollout_action(i, &high[i * nh..(i + 1) * nh]);
                    }
                }
                let low_obs = self.low_rows(venv.obs(), &high);
                let mut prefixed = prefixed_mask(&mut conditional, &high, nh);
                let greedy_out = low_critical.then_some(greedy_low.as_mut_slice());
                let low =
                    self.low.act_rollout_greedy_with(&low_obs, &low_masks, Some(&mut prefixed), greedy_out)?.to_vec();
                drop(prefixed);
                if high_critical {
                    let greedy_obs = self.low_rows(venv.obs(), &greedy_high);
                    let mut prefixed = prefixed_mask(&mut conditional, &greedy_high, nh);
                    let choice = ActionChoice::Deterministic;
                    self.low.act_into_with(
                        &greedy_obs,
                        &low_masks,
                        choice,
                        Some(&mut prefixed),
                        &mut greedy_completion,
                    )?;
                    drop(prefixed);
                    self.join_actions(&greedy_high, &greedy_completion, &mut greedy_plan);
                }
                if high_all {
                    candidates.build(self, venv.obs(), &low_masks, self.high.acted_joint_legal(), &mut conditional)?;
                }
                self.join_actions(&high, &low, &mut actions);
                high
            };
            let acted = Instant::now();
            if high_all {
                candidates.probe(venv, n_joint, &mut joint_rewards)?;
            }
            if high_critical {
                venv.counterfactual_rewards(&greedy_plan, &mut greedy_plan_rewards)?;
            }
            if low_critical {
                self.join_actions(&high, &greedy_low, &mut completed);
                venv.counterfactual_rewards(&completed, &mut completed_rewards)?;
            }
            venv.step(&actions)?;
            let stepped = Instant::now();
            // Truncated members bootstrap from V(final obs); the low critic reads it with the
            // context of the choice just made.
            let ended: Vec<usize> = venv.finished().iter().map(|e| e.env_index).collect();
            for &i in &ended {
                hold.end_episode(i);
            }
            let final_high: Vec<(usize, Vec<f32>)> =
                ended.iter().filter_map(|&i| venv.final_obs(i).map(|o| (i, o.to_vec()))).collect();
            let final_low: Vec<(usize, Vec<f32>)> =
                final_high.iter().map(|(i, o)| (*i, self.low_rows(o, &high[i * nh..(i + 1) * nh]))).collect();
            let levels = [
                (&mut self.high, &final_high, high_critical.then_some(greedy_plan_rewards.as_slice())),
                (&mut self.low, &final_low, low_critical.then_some(completed_rewards.as_slice())),
            ];
            for (level, finals, baseline_rewards) in levels {
                let refs: Vec<(usize, &[f32])> = finals.iter().map(|(i, o)| (*i, o.as_slice())).collect();
                level.record_step(&StepOutcome {
                    rewards: venv.rewards(),
                    terminated: venv.terminated(),
                    truncated: venv.truncated(),
                    final_obs: &refs,
                    discounts: None,
                    baseline_rewards,
                });
            }
            if high_all {
                self.high.record_action_rewards(&joint_rewards);
            }
            episodes.extend_from_slice(venv.finished());
            env_time_s += (stepped - acted).as_secs_f64();
            policy_time_s += (acted - start).as_secs_f64() + stepped.elapsed().as_secs_f64();
            on_step(venv);
        }
        let start = Instant::now();
        // The low level's bootstrap value reads the high level's greedy choice at the next state.
        let mut next_high = vec![0; n_envs * nh];
        let (high_masks, _) = self.split_masks(venv.masks());
        let members = venv.members();
        let mut conditional = |i: usize, prefix: &[usize], out: &mut [bool]| members[i].conditional_mask(prefix, out);
        self.high.act_into_with(
            venv.obs(),
            &high_masks,
            ActionChoice::Deterministic,
            Some(&mut conditional),
            &mut next_high,
        )?;
        let next_low = self.low_rows(venv.obs(), &next_high);
        self.high.finish_rollout(venv.obs());
        self.low.finish_rollout(&next_low);
        policy_time_s += start.elapsed().as_secs_f64();
        Ok(RolloutStats {
            steps: self.high.config().rollout_size() as u64,
            global_step: self.high.progress().global_step,
            episodes,
            env_time_s,
            policy_time_s,
        })
    }

    /// Updates both levels on their rollouts: (high, low) statistics.
    pub fn update(&mut self) -> [UpdateStats; 2] {
        [self.high.update(), self.low.update()]
    }

    /// Both levels' state, between rollouts.
    pub fn export_state(&self) -> Result<HppoState, PpoError> {
        Ok(HppoState {
            high: self.high.export_state()?,
            low: self.low.export_state()?,
            n_high: self.n_high,
            k_high: self.k_high,
        })
    }

    /// Replaces both levels' state with saved ones (same shapes; this learner's hyperparameters
    /// are kept).
    pub fn restore_state(&mut self, state: &HppoState) -> Result<(), PpoError> {
        if state.n_high != self.n_high {
            return Err(PpoError::StateMismatch(format!(
                "the saved hierarchy's high level picks {} components, this one {}",
                state.n_high, self.n_high
            )));
        }
        if state.k_high != self.k_high {
            return Err(PpoError::StateMismatch(format!(
                "the saved hierarchy's high level holds its choice {} slots, this one {}",
                state.k_high, self.k_high
            )));
        }
        self.high.restore_state(&state.high)?;
        self.low.restore_state(&state.low)
    }

    /// A learner from saved state (the environment's shape is rebuilt from the levels').
    pub fn from_state(state: &HppoState) -> Result<Self, PpoError> {
        let (hs, ls) = (&state.high.meta.shape, &state.low.meta.shape);
        let mut nvec = hs.nvec.clone();
        nvec.extend_from_slice(&ls.nvec);
        let env = PolicyShape { obs_dim: hs.obs_dim, context_dim: 0, nvec };
        let (high, low) = level_shapes(&env, state.n_high)?;
        if state.k_high == 0 {
            return Err(PpoError::StateMismatch(
                "the saved hierarchy holds its high choice 0 slots (must be >= 1)".into(),
            ));
        }
        if *hs != high || *ls != low {
            return Err(PpoError::StateMismatch(format!(
                "saved levels {hs:?} / {ls:?} do not form a hierarchy over {env:?}"
            )));
        }
        Ok(Self {
            high: Ppo::from_state(&state.high)?,
            low: Ppo::from_state(&state.low)?,
            n_high: state.n_high,
            low_prior: 0.0,
            k_high: state.k_high,
            env,
        })
    }
}

/// A step's high-level candidates for the all-action advantage: every legal joint high choice
/// of every member, completed by the low level's greedy plan, in member order.
#[derive(Default)]
struct Candidates {
    /// Member, joint index of the high choice, and the full action (`n_components`) per candidate.
    members: Vec<usize>,
    joint: Vec<usize>,
    actions: Vec<usize>,
    rewards: Vec<f64>,
    /// Per-candidate scratch, kept across steps: its member's observation and low-level mask,
    /// and its high choice.
    obs: Vec<f32>,
    low_masks: Vec<bool>,
    high: Vec<usize>,
}

impl Candidates {
    /// Enumerates the legal joint high choices (`legal`: `n_envs × n_joint`) and completes each
    /// with the low level's greedy plan under the environment's conditional masks.
    fn build(
        &mut self,
        hppo: &Hppo,
        obs: &[f32],
        low_masks: &[bool],
        legal: &[bool],
        conditional: &mut ConditionalMaskFn<'_>,
    ) -> Result<(), PpoError> {
        let (d, nh) = (hppo.env.obs_dim, hppo.n_high);
        let nl = hppo.env.n_components() - nh;
        let high_nvec = &hppo.env.nvec[..nh];
        let n_joint: usize = high_nvec.iter().product();
        let ml = low_masks.len() / (obs.len() / d).max(1);
        self.members.clear();
        self.joint.clear();
        self.obs.clear();
        self.low_masks.clear();
        self.high.clear();
        for (i, row) in legal.chunks_exact(n_joint).enumerate() {
            for (b, _) in row.iter().enumerate().filter(|(_, l)| **l) {
                self.members.push(i);
                self.joint.push(b);
                self.obs.extend_from_slice(&obs[i * d..(i + 1) * d]);
                self.low_masks.extend_from_slice(&low_masks[i * ml..(i + 1) * ml]);
                let start = self.high.len();
                self.high.resize(start + nh, 0);
                joint_action(high_nvec, b, &mut self.high[start..]);
            }
        }
        let count = self.members.len();
        let low_obs = hppo.low_rows(&self.obs, &self.high);
        let mut low = vec![0; count * nl];
        let (members, high) = (&self.members, &self.high);
        let mut prefix = Vec::new();
        let mut prefixed = |r: usize, low_prefix: &[usize], out: &mut [bool]| {
            prefix.clear();
            prefix.extend_from_slice(&high[r * nh..(r + 1) * nh]);
            prefix.extend_from_slice(low_prefix);
            conditional(members[r], &prefix, out)
        };
        hppo.low.act_into_with(
            &low_obs,
            &self.low_masks,
            ActionChoice::Deterministic,
            Some(&mut prefixed),
            &mut low,
        )?;
        self.actions.resize(count * (nh + nl), 0);
        hppo.join_actions(&self.high, &low, &mut self.actions);
        Ok(())
    }

    /// Probes every candidate on its member's saved state and writes the rewards into
    /// `joint_rewards` (`n_envs × n_joint`; 0 for illegal choices).
    fn probe<E: Env>(
        &mut self,
        venv: &mut VecEnv<E>,
        n_joint: usize,
        joint_rewards: &mut [f64],
    ) -> Result<(), PpoError> {
        joint_rewards.fill(0.0);
        self.rewards.resize(self.members.len(), 0.0);
        let k = venv.spec().action.n_components();
        let mut start = 0;
        while start < self.members.len() {
            let member = self.members[start];
            let end = start + self.members[start..].iter().take_while(|&&m| m == member).count();
            venv.counterfactual_member_rewards(
                member,
                &self.actions[start * k..end * k],
                &mut self.rewards[start..end],
            )?;
            for (&b, &r) in self.joint[start..end].iter().zip(&self.rewards[start..end]) {
                joint_rewards[member * n_joint + b] = r;
            }
            start = end;
        }
        Ok(())
    }
}

/// The low level's starting context skip (`context_dim × Σ low nvec`, row-major): the row of the
/// first high component's value `v` holds `bonus` on each low value of the environment's default
/// completion of `[v]` ([`Env::default_completion`]), every other entry 0; `None` when the
/// environment has no default.
///
/// Why: on the partition environment a uniformly random window placement puts parts of most
/// window layers on each side, so nearly every early plan crosses the link several times per
/// token; the low level then learns mostly that its samples are bad, and the high level's split
/// has almost no effect on the reward (measured: 300k steps on the Jetson scenario left H-PPO at
/// Δ + V·p 52, worse than edge-only). Starting the low level at the whole-layer plan of the split
/// makes a fresh hierarchy a layer-split policy that explores head and FFN placements around it:
/// Splitwise's structure (the high level splits, the low level refines). The skip is linear in
/// the one-hot, so it follows the first high component only (the split; the partition
/// environment's default completion depends on nothing else) and it trains with the rest.
pub fn completion_prior<E: Env>(env: &E, shape: &PolicyShape, n_high: usize, bonus: f32) -> Option<Vec<f32>> {
    let n = shape.n_components();
    let low_nvec = &shape.nvec[n_high..];
    let (c, m): (usize, usize) = (shape.nvec[..n_high].iter().sum(), low_nvec.iter().sum());
    let mut w = vec![0.0f32; c * m];
    let mut rest = vec![0; n - 1];
    for v in 0..shape.nvec[0] {
        if !env.default_completion(&[v], &mut rest) {
            return None;
        }
        let mut offset = 0;
        for (&value, &size) in rest[n_high - 1..].iter().zip(low_nvec) {
            w[v * m + offset + value.min(size - 1)] = bonus;
            offset += size;
        }
    }
    Some(w)
}

/// The two levels' shapes over an environment of shape `env`.
fn level_shapes(env: &PolicyShape, n_high: usize) -> Result<(PolicyShape, PolicyShape), PpoError> {
    if env.context_dim != 0 || n_high == 0 || n_high >= env.n_components() {
        return Err(PpoError::Shape(format!(
            "a hierarchy needs 1 ≤ n_high < {} components and an environment without context; got n_high {n_high} over {env:?}",
            env.n_components()
        )));
    }
    let high = PolicyShape { obs_dim: env.obs_dim, context_dim: 0, nvec: env.nvec[..n_high].to_vec() };
    let low = PolicyShape {
        obs_dim: env.obs_dim,
        context_dim: env.nvec[..n_high].iter().sum(),
        nvec: env.nvec[n_high..].to_vec(),
    };
    Ok((high, low))
}

/// The low level's conditional mask: the environment's, with each member's high choice
/// prepended to the low prefix.
fn prefixed_mask<'a>(
    env_mask: ConditionalMask<'a>,
    high: &'a [usize],
    nh: usize,
) -> impl FnMut(usize, &[usize], &mut [bool]) -> bool + 'a {
    let mut prefix = Vec::new();
    move |i: usize, low_prefix: &[usize], out: &mut [bool]| {
        prefix.clear();
        prefix.extend_from_slice(&high[i * nh..(i + 1) * nh]);
        prefix.extend_from_slice(low_prefix);
        env_mask(i, &prefix, out)
    }
}
