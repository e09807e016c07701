//! PPO hyperparameters: one serde struct with SB3/CleanRL defaults (each a named constant with its
//! source), the RL Zoo CartPole preset, and validation that names the offending field.
//!
//! Names follow SB3 (`n_steps`, `batch_size` = minibatch size, `gae_lambda`, `clip_range`, ...).
//! Where SB3 and CleanRL disagree the choice is stated at the constant.

use serde::{Deserialize, Serialize};
use splitwise_env::validate::{InvalidField, Validation, in_range, non_negative, positive};

/// SB3 `PPO(learning_rate=3e-4)`, CleanRL `--learning-rate 2.5e-4` (Atari) / `3e-4` (continuous).
pub const DEFAULT_LEARNING_RATE: f64 = 3e-4;
/// SB3 `n_steps=2048` (per environment).
pub const DEFAULT_N_STEPS: usize = 2048;
/// SB3 `batch_size=64` (the minibatch size).
pub const DEFAULT_BATCH_SIZE: usize = 64;
/// SB3 `n_epochs=10`.
pub const DEFAULT_N_EPOCHS: usize = 10;
/// SB3 / CleanRL `gamma=0.99`.
pub const DEFAULT_GAMMA: f64 = 0.99;
/// SB3 / CleanRL `gae_lambda=0.95`.
pub const DEFAULT_GAE_LAMBDA: f64 = 0.95;
/// SB3 `clip_range=0.2`, CleanRL `clip_coef=0.2`.
pub const DEFAULT_CLIP_RANGE: f64 = 0.2;
/// SB3 `ent_coef=0.0`.
pub const DEFAULT_ENT_COEF: f64 = 0.0;
/// SB3 / CleanRL `vf_coef=0.5`.
pub const DEFAULT_VF_COEF: f64 = 0.5;
/// SB3 / CleanRL `max_grad_norm=0.5` (global norm, PyTorch `clip_grad_norm_`).
pub const DEFAULT_MAX_GRAD_NORM: f64 = 0.5;
/// SB3 `ActorCriticPolicy` and CleanRL both pass `eps=1e-5` to Adam (PyTorch's default is 1e-8).
pub const DEFAULT_ADAM_EPSILON: f64 = 1e-5;
/// SB3 default `net_arch=dict(pi=[64, 64], vf=[64, 64])`, CleanRL `Agent`.
pub const DEFAULT_HIDDEN: [usize; 2] = [64, 64];
/// SB3 VecNormalize `clip_obs=10.0`.
pub const DEFAULT_CLIP_OBS: f64 = 10.0;
/// SB3 VecNormalize `clip_reward=10.0`.
pub const DEFAULT_CLIP_REWARD: f64 = 10.0;
/// SB3 `n_envs=1` for `PPO("MlpPolicy", "CartPole-v1")`; the app sets its own.
pub const DEFAULT_N_ENVS: usize = 1;
/// SB3 `learn(total_timesteps)` has no default; CleanRL `--total-timesteps 500000`. Only the
/// linear schedules read it (their horizon).
pub const DEFAULT_TOTAL_TIMESTEPS: u64 = 500_000;

/// How a coefficient changes over training.
#[derive(Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum Annealing {
    /// SB3's default: a float hyperparameter is a constant schedule.
    #[default]
    Constant,
    /// Linear decay to 0 over `total_timesteps` (CleanRL `--anneal-lr`, RL Zoo `lin_<x>`).
    Linear,
}

impl Annealing {
    /// The value at update `update_index` (0-based) of `n_updates`. CleanRL:
    /// `frac = 1 - (iteration - 1) / num_iterations` with 1-based iterations, so the first update
    /// uses the initial value and the last one `initial / n_updates`.
    pub fn value(self, initial: f64, update_index: u64, n_updates: u64) -> f64 {
        match self {
            Annealing::Constant => initial,
            Annealing::Linear => {
                let n = n_updates.max(1) as f64;
                let frac = (1.0 - update_index as f64 / n).max(0.0);
                initial * frac
            }
        }
    }
}

#[derive(Deserialize, Serialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct PpoConfig {
    /// Members of the vector env the learner acts for (the rollout is `n_steps × n_envs`).
    pub n_envs: usize,
    /// Steps per member per rollout.
    pub n_steps: usize,
    /// Minibatch size (SB3 naming). A last, smaller minibatch takes the remainder, as in SB3.
    pub batch_size: usize,
    pub n_epochs: usize,
    /// Horizon of the linear schedules, in env steps (all members together).
    pub total_timesteps: u64,
    pub learning_rate: f64,
    pub lr_annealing: Annealing,
    pub gamma: f64,
    pub gae_lambda: f64,
    pub clip_range: f64,
    pub clip_annealing: Annealing,
    /// `Some(c)`: the PPO2/CleanRL clipped value loss `max((V−R)², (V_old + clip(V−V_old, ±c) − R)²)`.
    pub clip_range_vf: Option<f64>,
    pub normalize_advantage: bool,
    pub ent_coef: f64,
    pub vf_coef: f64,
    /// Global gradient-norm clip over actor and critic together.
    pub max_grad_norm: f64,
    /// CleanRL's early stop: after an epoch whose last minibatch has `approx_kl > target_kl`,
    /// the remaining epochs are skipped.
    pub target_kl: Option<f64>,
    pub adam_epsilon: f64,
    pub actor_hidden: Vec<usize>,
    pub critic_hidden: Vec<usize>,
    /// Running mean/variance observation normalisation (SB3 VecNormalize `norm_obs`).
    pub normalize_obs: bool,
    pub clip_obs: f64,
    /// Divide rewards by the running std of the discounted return (SB3 VecNormalize `norm_reward`).
    pub normalize_reward: bool,
    pub clip_reward: f64,
    /// A softmax temperature schedule over updates (Splitwise's agent; `None`: τ = 1). Sampling
    /// and the update's ratio both use the tempered distribution; the greedy action (evaluation,
    /// export) does not depend on τ.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub temperature: Option<Temperature>,
    /// What the policy gradient's advantage subtracts from the reward: the critic's value
    /// (GAE, the default) or, with γ = 0, the reward the greedy action would have earned in the
    /// same state under the same randomness (self-critical; see [`AdvantageBaseline`]).
    #[serde(skip_serializing_if = "AdvantageBaseline::is_critic")]
    pub advantage: AdvantageBaseline,
    /// What `max_grad_norm` bounds: the norm of all gradients together (SB3, CleanRL: the
    /// default) or the actor's and the critic's separately (see [`GradClip`]).
    #[serde(skip_serializing_if = "GradClip::is_global")]
    pub grad_clip: GradClip,
    /// With the all-action advantage: a floor p on the probability of every legal (joint) value
    /// in every state, kept by a hinged log-barrier in the loss
    /// ([`crate::loss::probability_floor_penalty`]) so that a value the policy has dropped can
    /// still come back when its advantage turns positive (0: off, the default).
    #[serde(skip_serializing_if = "is_zero")]
    pub prob_floor: f64,
    /// A warm start by imitation: the first `imitation.updates` updates train the actor to the
    /// teacher's choices instead of by PPO (see [`Imitation`]; `None`: from scratch, the default).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub imitation: Option<Imitation>,
}

/// Behaviour cloning from a teacher before reinforcement (Ross & Bagnell's "imitation then
/// improvement"; in deep RL e.g. Rajeswaran et al., "Learning Complex Dexterous Manipulation with
/// Deep RL and Demonstrations", RSS 2018, which pre-trains the actor by behaviour cloning, then runs
/// the policy gradient).
///
/// During the first `updates` updates the teacher acts in every rollout (its choices are
/// executed and stored), and each minibatch's policy loss is the cross-entropy −log π(a_teacher|s)
/// in place of the clipped surrogate; the critic learns the teacher's returns with the usual
/// value loss, so PPO then starts with an actor that imitates the teacher and a critic that knows
/// its values. From update `updates` on the learner acts and learns by PPO as usual. The teacher is
/// a policy spec the caller resolves (the app: any baseline or a checkpoint); this crate only
/// receives its actions ([`crate::teacher::Teacher`]).
///
/// A result of a warm-started learner must be reported as such (it started from the teacher's
/// policy, not from scratch).
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Imitation {
    /// The teacher's policy spec, e.g. `service-window` or `ckpt:checkpoints/run/step_4096`.
    pub teacher: String,
    /// Updates, from the first, that imitate the teacher (≥ 1).
    pub updates: u64,
}

impl Imitation {
    pub fn validate(&self) -> Validation {
        if self.teacher.trim().is_empty() {
            return Err(InvalidField::new("imitation.teacher", "\"\"", "must name a policy spec (e.g. a baseline)"));
        }
        if self.updates == 0 {
            return Err(InvalidField::new(
                "imitation.updates",
                0,
                "must be >= 1 (leave [imitation] out to learn from scratch)",
            ));
        }
        Ok(())
    }
}

fn is_zero(x: &f64) -> bool {
    *x == 0.0
}

/// How the gradient norm is clipped.
///
/// `Global` is PyTorch's `clip_grad_norm_` over actor and critic together, as SB3 and CleanRL do
/// it. With one-step rewards that are rare and large (a request that starts while the link is
/// down: the one-slot reward of the wrong plan is hundreds of times the typical one), the samples
/// that carry the policy's signal are exactly those where the critic is most wrong, so the
/// critic's gradient dominates the global norm in those minibatches and the clip scales the
/// actor's gradient down with it: the actor learns from the ordinary minibatches only. Measured on
/// the subway scenario (docs/agents.md): with the critic's loss weight set to 0 the flat policy
/// learns the phone in tunnels; with the global clip it converges to cloud-only. `PerNetwork`
/// clips the actor's and the critic's gradients each to `max_grad_norm` (they share no
/// parameters), so a critic error no longer silences the actor.
#[derive(Deserialize, Serialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum GradClip {
    #[default]
    Global,
    PerNetwork,
}

impl GradClip {
    pub fn is_global(&self) -> bool {
        *self == GradClip::Global
    }
}

/// The baseline of the policy-gradient advantage.
///
/// `SelfCritical` is self-critical training (Rennie et al., "Self-critical sequence training for
/// image captioning", CVPR 2017: the greedy decode's reward is the baseline) with common random
/// numbers from the simulator: before each step the environment is probed with the current
/// policy's greedy action and restored (`VecEnv::counterfactual_rewards`), so the advantage
/// `r(a) − r(greedy)` is the sampled action's effect alone. The baseline depends on the state and
/// on the slot's exogenous randomness but not on the sampled action, so the gradient stays
/// unbiased (an input-driven baseline: Mao et al., "Variance reduction for reinforcement learning
/// in input-driven environments", ICLR 2019). It removes the variance of what the action does not
/// control (whether a request arrives in the slot, its length, the link's and cloud's state),
/// which in the partition scenarios dwarfs the differences between plans. It needs γ = 0 (the
/// advantage is one step's reward); the critic is still trained and logged. Costs one extra
/// environment step per sample (two per sample for a hierarchy).
///
/// `AllActions` goes one step further for a one-component (discrete) action space, or a
/// hierarchy's high level of one or two components (its joint choices, each completed by the low
/// level's greedy plan; at most 256): before each step the environment is probed with *every*
/// legal value under the same randomness (`VecEnv::counterfactual_action_rewards`,
/// `VecEnv::counterfactual_member_rewards`), so the one-step reward r(s, b) of each value b is
/// known exactly, and the update maximises the clipped surrogate in expectation over the old
/// policy, Σ_b π_old(b|s)·min(ρ_b·Â_b, clip(ρ_b, 1 ± ε)·Â_b) with Â_b = r(s, b) − Σ_c π_old(c|s)·r(s, c),
/// instead of its one-sample estimate at the sampled action. This is the expected policy gradient
/// (Ciosek & Whiteson, "Expected Policy Gradients", AAAI 2018; Allen et al., "Mean Actor-Critic",
/// 2017) with exact one-step action values from the simulator in place of a learned Q. It exists
/// for scenarios where the plan matters only in rare slots with large effects (a request that
/// starts while the link is down): a sampled estimate sees the right plan in such a slot about once
/// per rollout, and PPO's clip caps what that one sample moves, while the exact expectation sees it
/// in every such slot. Needs γ = 0; costs one environment step per legal value per sample.
#[derive(Deserialize, Serialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum AdvantageBaseline {
    #[default]
    Critic,
    SelfCritical,
    AllActions,
}

impl AdvantageBaseline {
    pub fn is_critic(&self) -> bool {
        *self == AdvantageBaseline::Critic
    }

    /// The config spelling (`advantage = "…"`).
    pub fn name(&self) -> &'static str {
        match self {
            AdvantageBaseline::Critic => "critic",
            AdvantageBaseline::SelfCritical => "self-critical",
            AdvantageBaseline::AllActions => "all-actions",
        }
    }
}

/// τ(n) = max(`floor`, `start` · `decay`ⁿ) at update n; the defaults are Splitwise's (τ 1.0,
/// × 0.995 per update, floor 0.1).
#[derive(Deserialize, Serialize, Clone, Copy, Debug, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Temperature {
    pub start: f64,
    pub decay: f64,
    pub floor: f64,
}

impl Default for Temperature {
    fn default() -> Self {
        Self { start: 1.0, decay: 0.995, floor: 0.1 }
    }
}

impl Temperature {
    /// τ at update `n_updates` (0-based).
    pub fn value(&self, n_updates: u64) -> f64 {
        let n = i32::try_from(n_updates).unwrap_or(i32::MAX);
        (self.start * self.decay.powi(n)).max(self.floor)
    }

    pub fn validate(&self) -> Validation {
        positive("temperature.start", self.start, "initial softmax temperature")?;
        in_range("temperature.decay", self.decay, 0.0, 1.0, "per-update factor")?;
        positive("temperature.floor", self.floor, "lowest temperature")?;
        Ok(())
    }
}

impl Default for PpoConfig {
    fn default() -> Self {
        Self {
            n_envs: DEFAULT_N_ENVS,
            n_steps: DEFAULT_N_STEPS,
            batch_size: DEFAULT_BATCH_SIZE,
            n_epochs: DEFAULT_N_EPOCHS,
            total_timesteps: DEFAULT_TOTAL_TIMESTEPS,
            learning_rate: DEFAULT_LEARNING_RATE,
            lr_annealing: Annealing::Constant,
            gamma: DEFAULT_GAMMA,
            gae_lambda: DEFAULT_GAE_LAMBDA,
            clip_range: DEFAULT_CLIP_RANGE,
            clip_annealing: Annealing::Constant,
            // SB3 `clip_range_vf=None`; CleanRL clips by default (`--clip-vloss True`).
            clip_range_vf: None,
            normalize_advantage: true,
            ent_coef: DEFAULT_ENT_COEF,
            vf_coef: DEFAULT_VF_COEF,
            max_grad_norm: DEFAULT_MAX_GRAD_NORM,
            target_kl: None,
            adam_epsilon: DEFAULT_ADAM_EPSILON,
            actor_hidden: DEFAULT_HIDDEN.to_vec(),
            critic_hidden: DEFAULT_HIDDEN.to_vec(),
            // SB3's PPO does not normalise unless wrapped in VecNormalize.
            normalize_obs: false,
            clip_obs: DEFAULT_CLIP_OBS,
            normalize_reward: false,
            clip_reward: DEFAULT_CLIP_REWARD,
            temperature: None,
            advantage: AdvantageBaseline::Critic,
            grad_clip: GradClip::Global,
            prob_floor: 0.0,
            imitation: None,
        }
    }
}

impl PpoConfig {
    /// RL Baselines3 Zoo `hyperparams/ppo.yml`, `CartPole-v1`: n_envs 8, n_steps 32,
    /// batch_size 256, gae_lambda 0.8, gamma 0.98, n_epochs 20, ent_coef 0, lr lin_0.001,
    /// clip_range lin_0.2, n_timesteps 1e5.
    pub fn cartpole_zoo() -> Self {
        Self {
            n_envs: 8,
            n_steps: 32,
            batch_size: 256,
            n_epochs: 20,
            total_timesteps: 100_000,
            learning_rate: 1e-3,
            lr_annealing: Annealing::Linear,
            gamma: 0.98,
            gae_lambda: 0.8,
            clip_range: 0.2,
            clip_annealing: Annealing::Linear,
            ent_coef: 0.0,
            ..Self::default()
        }
    }

    /// Env steps per rollout (all members).
    pub fn rollout_size(&self) -> usize {
        self.n_steps.saturating_mul(self.n_envs)
    }

    /// Number of updates `total_timesteps` allows (the horizon of the linear schedules).
    pub fn n_updates_planned(&self) -> u64 {
        (self.total_timesteps / self.rollout_size().max(1) as u64).max(1)
    }

    pub fn validate(&self) -> Validation {
        at_least("n_envs", self.n_envs, 1)?;
        at_least("n_steps", self.n_steps, 1)?;
        // Per-minibatch advantage normalisation divides by a sample std: it needs two samples.
        at_least("batch_size", self.batch_size, 2)?;
        at_least("n_epochs", self.n_epochs, 1)?;
        if self.rollout_size() < self.batch_size {
            return Err(InvalidField::new(
                "batch_size",
                self.batch_size,
                format!("must be <= n_steps × n_envs = {} (one rollout)", self.rollout_size()),
            ));
        }
        if self.total_timesteps == 0 {
            return Err(InvalidField::new("total_timesteps", 0, "must be >= 1"));
        }
        positive("learning_rate", self.learning_rate, "Adam step size")?;
        in_range("gamma", self.gamma, 0.0, 1.0, "discount factor")?;
        if !self.advantage.is_critic() && self.gamma != 0.0 {
            return Err(InvalidField::new(
                "gamma",
                self.gamma,
                format!(
                    "must be 0 with advantage = \"{}\" (its advantage is one step's reward)",
                    self.advantage.name()
                ),
            ));
        }
        in_range("gae_lambda", self.gae_lambda, 0.0, 1.0, "GAE λ")?;
        positive("clip_range", self.clip_range, "PPO ratio clip ε")?;
        if let Some(c) = self.clip_range_vf {
            positive("clip_range_vf", c, "value clip")?;
        }
        non_negative("ent_coef", self.ent_coef, "entropy bonus coefficient")?;
        in_range("prob_floor", self.prob_floor, 0.0, 1.0, "probability floor of every legal value")?;
        if self.prob_floor > 0.0 && self.advantage != AdvantageBaseline::AllActions {
            return Err(InvalidField::new(
                "prob_floor",
                self.prob_floor,
                "needs advantage = \"all-actions\" (the update computes every value's probability only there)",
            ));
        }
        non_negative("vf_coef", self.vf_coef, "value loss coefficient")?;
        positive("max_grad_norm", self.max_grad_norm, "global gradient-norm clip")?;
        if let Some(kl) = self.target_kl {
            positive("target_kl", kl, "early-stop KL threshold")?;
        }
        positive("adam_epsilon", self.adam_epsilon, "Adam ε")?;
        hidden("actor_hidden", &self.actor_hidden)?;
        hidden("critic_hidden", &self.critic_hidden)?;
        positive("clip_obs", self.clip_obs, "normalised observation clip")?;
        positive("clip_reward", self.clip_reward, "scaled reward clip")?;
        if let Some(t) = &self.temperature {
            t.validate()?;
        }
        if let Some(i) = &self.imitation {
            i.validate()?;
        }
        Ok(())
    }
}

fn at_least(field: &str, value: usize, min: usize) -> Validation {
    if value >= min { Ok(()) } else { Err(InvalidField::new(field, value, format!("must be >= {min}"))) }
}

fn hidden(field: &str, sizes: &[usize]) -> Validation {
    match sizes.iter().position(|&n| n == 0) {
        Some(i) => Err(InvalidField::new(format!("{field}[{i}]"), 0, "hidden layer sizes must be >= 1")),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_zoo_preset_validate() {
        assert_eq!(PpoConfig::default().validate(), Ok(()));
        assert_eq!(PpoConfig::cartpole_zoo().validate(), Ok(()));
        // 100_000 / (32 × 8) = 390.6 → 390 updates.
        assert_eq!(PpoConfig::cartpole_zoo().n_updates_planned(), 390);
    }

    #[test]
    fn errors_name_the_field() {
        let c = PpoConfig { gamma: 1.5, ..PpoConfig::default() };
        assert_eq!(c.validate().unwrap_err().field, "gamma");
        let c = PpoConfig { n_steps: 4, n_envs: 2, batch_size: 16, ..PpoConfig::default() };
        let e = c.validate().unwrap_err();
        assert_eq!(e.field, "batch_size");
        assert!(e.allowed.contains("= 8"), "{e}");
        let c = PpoConfig { critic_hidden: vec![64, 0], ..PpoConfig::default() };
        assert_eq!(c.validate().unwrap_err().field, "critic_hidden[1]");
        let c = PpoConfig { target_kl: Some(-0.1), ..PpoConfig::default() };
        assert_eq!(c.validate().unwrap_err().field, "target_kl");
        // The self-critical baseline is one step's reward: it refuses a discounted return.
        let c = PpoConfig { advantage: AdvantageBaseline::SelfCritical, gamma: 0.99, ..PpoConfig::default() };
        let e = c.validate().unwrap_err();
        assert_eq!(e.field, "gamma");
        assert!(e.allowed.contains("self-critical"), "{e}");
        let c = PpoConfig { advantage: AdvantageBaseline::SelfCritical, gamma: 0.0, ..PpoConfig::default() };
        assert_eq!(c.validate(), Ok(()));
        // The probability floor needs every value's probability: the all-action advantage.
        let c = PpoConfig {
            advantage: AdvantageBaseline::SelfCritical,
            gamma: 0.0,
            prob_floor: 1e-3,
            ..PpoConfig::default()
        };
        let e = c.validate().unwrap_err();
        assert_eq!(e.field, "prob_floor");
        assert!(e.allowed.contains("all-actions"), "{e}");
        let c =
            PpoConfig { advantage: AdvantageBaseline::AllActions, gamma: 0.0, prob_floor: 1.5, ..PpoConfig::default() };
        assert_eq!(c.validate().unwrap_err().field, "prob_floor");
        let c = PpoConfig {
            advantage: AdvantageBaseline::AllActions,
            gamma: 0.0,
            prob_floor: 1e-3,
            ..PpoConfig::default()
        };
        assert_eq!(c.validate(), Ok(()));
        // Imitation needs a teacher and at least one update.
        let imitate = |teacher: &str, updates| PpoConfig {
            imitation: Some(Imitation { teacher: teacher.into(), updates }),
            ..PpoConfig::default()
        };
        assert_eq!(imitate("service-window", 0).validate().unwrap_err().field, "imitation.updates");
        assert_eq!(imitate(" ", 4).validate().unwrap_err().field, "imitation.teacher");
        assert_eq!(imitate("service-window", 4).validate(), Ok(()));
    }

    #[test]
    fn unknown_fields_are_rejected() {
        let e = serde_json::from_str::<PpoConfig>(r#"{"n_step": 5}"#).unwrap_err();
        assert!(e.to_string().contains("n_step"), "{e}");
        let c: PpoConfig = serde_json::from_str(r#"{"lr_annealing": "linear"}"#).unwrap();
        assert_eq!(c.lr_annealing, Annealing::Linear);
        let c: PpoConfig = serde_json::from_str(r#"{"advantage": "self-critical", "gamma": 0}"#).unwrap();
        assert_eq!(c.advantage, AdvantageBaseline::SelfCritical);
        let e = serde_json::from_str::<PpoConfig>(r#"{"advantage": "greedy"}"#).unwrap_err();
        assert!(e.to_string().contains("self-critical"), "{e}");
        // The default is not written, so configs and checkpoints from before the option read
        // and write as they did.
        assert!(!serde_json::to_string(&PpoConfig::default()).unwrap().contains("\"advantage\""));
        assert!(!serde_json::to_string(&PpoConfig::default()).unwrap().contains("prob_floor"));
        assert!(!serde_json::to_string(&PpoConfig::default()).unwrap().contains("imitation"));
    }

    #[test]
    fn linear_annealing_follows_cleanrl() {
        // CleanRL: frac = 1 − (iteration − 1)/num_iterations. 4 updates of lr 1.0:
        // 1, 0.75, 0.5, 0.25.
        let lrs: Vec<f64> = (0..4).map(|i| Annealing::Linear.value(1.0, i, 4)).collect();
        assert_eq!(lrs, vec![1.0, 0.75, 0.5, 0.25]);
        assert_eq!(Annealing::Constant.value(0.3, 3, 4), 0.3);
        // Past the horizon the value stays at 0 rather than turning negative.
        assert_eq!(Annealing::Linear.value(1.0, 9, 4), 0.0);
    }
}
