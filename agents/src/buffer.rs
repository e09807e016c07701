//! The on-policy rollout buffer: `n_steps × n_envs` transitions stored time-major (index
//! `t * n_envs + i`) in flat host vectors allocated once, the GAE results beside them, and the
//! gathering of shuffled minibatches (with per-minibatch advantage normalisation, as SB3 and
//! CleanRL do it).

use crate::gae::{GaeInput, gae};

/// SB3 / CleanRL: `(adv − mean) / (std + 1e-8)`.
pub const ADVANTAGE_EPSILON: f64 = 1e-8;

#[derive(Clone, Debug)]
pub struct RolloutBuffer {
    pub n_steps: usize,
    pub n_envs: usize,
    pub obs_dim: usize,
    pub mask_len: usize,
    pub n_components: usize,
    /// Normalised observations the policy acted on.
    pub obs: Vec<f32>,
    pub masks: Vec<bool>,
    pub actions: Vec<usize>,
    pub log_probs: Vec<f32>,
    pub values: Vec<f32>,
    /// Rewards after scaling (what the learner optimises).
    pub rewards: Vec<f32>,
    pub terminated: Vec<bool>,
    pub truncated: Vec<bool>,
    pub final_values: Vec<f32>,
    /// Γ_t of each transition: γ for one slot, γ^k for a k-slot option (semi-MDP); NaN (not
    /// recorded) reads as γ.
    pub discounts: Vec<f64>,
    /// Whether the learner decided at each transition (`false`: a hierarchy's high level held an
    /// earlier choice, `k_high > 1`); only decisions are trained on ([`Self::decision_indices`]).
    pub decisions: Vec<bool>,
    /// The reward (scaled like `rewards`) a reference action would have earned in the same state
    /// under the same randomness (the self-critical baseline); NaN where none was recorded.
    pub baseline_rewards: Vec<f32>,
    /// All-action advantages (`AdvantageBaseline::AllActions`) over the `n_joint` joint values
    /// of the action space (every combination of its components, row-major: `mask_len` for one
    /// component), `len × n_joint` each, empty unless [`Self::enable_all_actions`]: whether each
    /// joint value was legal when acting, its π_old(b|s), the reward it would have earned (scaled
    /// like `rewards`), and Â(s, b) = r(s, b) − Σ_c π_old(c|s)·r(s, c). `joint_nvec`: the
    /// component sizes the joint values enumerate (empty unless enabled; [`Self::n_joint`]).
    pub joint_nvec: Vec<usize>,
    pub action_legal: Vec<bool>,
    pub action_probs: Vec<f32>,
    pub action_rewards: Vec<f32>,
    pub action_advantages: Vec<f32>,
    pub last_values: Vec<f32>,
    pub advantages: Vec<f32>,
    pub returns: Vec<f32>,
    /// Steps acted on (`act`) and recorded (`record`) so far in this rollout.
    pub acted: usize,
    pub recorded: usize,
    /// GAE has been computed: the buffer is ready for an update.
    pub finished: bool,
}

/// One minibatch in host memory, ready to become tensors.
#[derive(Clone, Debug, Default)]
pub struct Minibatch {
    pub len: usize,
    pub obs: Vec<f32>,
    /// `true` where the mask forbids the value (what `mask_fill` needs).
    pub illegal: Vec<bool>,
    pub actions: Vec<i64>,
    pub old_log_probs: Vec<f32>,
    pub old_values: Vec<f32>,
    pub advantages: Vec<f32>,
    pub returns: Vec<f32>,
    /// All-action rows (`len × n_joint`), empty otherwise: `true` where a joint value was
    /// illegal, π_old(b|s) and Â(s, b).
    pub joint_illegal: Vec<bool>,
    pub old_probs: Vec<f32>,
    pub action_advantages: Vec<f32>,
}

/// The row-major index of `action` among the joint values of components of sizes `nvec`: for
/// two components, `a₀ · nvec[1] + a₁`.
pub fn joint_index(nvec: &[usize], action: &[usize]) -> usize {
    nvec.iter().zip(action).fold(0, |index, (&n, &a)| index * n + a)
}

/// The inverse of [`joint_index`]: writes the components of joint value `index` into `action`.
pub fn joint_action(nvec: &[usize], mut index: usize, action: &mut [usize]) {
    for (a, &n) in action.iter_mut().zip(nvec).rev() {
        *a = index % n;
        index /= n;
    }
}

impl RolloutBuffer {
    pub fn new(n_steps: usize, n_envs: usize, obs_dim: usize, mask_len: usize, n_components: usize) -> Self {
        let n = n_steps * n_envs;
        Self {
            n_steps,
            n_envs,
            obs_dim,
            mask_len,
            n_components,
            obs: vec![0.0; n * obs_dim],
            masks: vec![false; n * mask_len],
            actions: vec![0; n * n_components],
            log_probs: vec![0.0; n],
            values: vec![0.0; n],
            rewards: vec![0.0; n],
            terminated: vec![false; n],
            truncated: vec![false; n],
            final_values: vec![0.0; n],
            discounts: vec![f64::NAN; n],
            decisions: vec![true; n],
            baseline_rewards: vec![f32::NAN; n],
            joint_nvec: Vec::new(),
            action_legal: Vec::new(),
            action_probs: Vec::new(),
            action_rewards: Vec::new(),
            action_advantages: Vec::new(),
            last_values: vec![0.0; n_envs],
            advantages: vec![0.0; n],
            returns: vec![0.0; n],
            acted: 0,
            recorded: 0,
            finished: false,
        }
    }

    pub fn len(&self) -> usize {
        self.n_steps * self.n_envs
    }

    /// Allocates the all-action columns for the joint values of components of sizes `nvec`
    /// (`mask_len` values for one component; the product of the sizes otherwise).
    pub fn enable_all_actions(&mut self, nvec: &[usize]) {
        assert_eq!(nvec.len(), self.n_components, "enable_all_actions: one size per component");
        assert_eq!(nvec.iter().sum::<usize>(), self.mask_len, "enable_all_actions: the sizes must add up to mask_len");
        self.joint_nvec = nvec.to_vec();
        let n = self.len() * self.n_joint();
        self.action_legal = vec![false; n];
        self.action_probs = vec![0.0; n];
        self.action_rewards = vec![0.0; n];
        self.action_advantages = vec![0.0; n];
    }

    pub fn all_actions(&self) -> bool {
        !self.action_probs.is_empty()
    }

    /// How many joint values the all-action columns hold per transition (0 unless enabled).
    pub fn n_joint(&self) -> usize {
        if self.joint_nvec.is_empty() { 0 } else { self.joint_nvec.iter().product() }
    }

    /// The row-major index of an action among the joint values.
    pub fn joint_index(&self, action: &[usize]) -> usize {
        joint_index(&self.joint_nvec, action)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn is_full(&self) -> bool {
        self.recorded == self.n_steps
    }

    /// Starts a new rollout (the storage is reused).
    pub fn clear(&mut self) {
        self.acted = 0;
        self.recorded = 0;
        self.finished = false;
        self.final_values.fill(0.0);
        self.discounts.fill(f64::NAN);
        self.decisions.fill(true);
        self.baseline_rewards.fill(f32::NAN);
    }

    /// The transitions an update trains on: the decisions, in buffer order.
    pub fn decision_indices(&self) -> Vec<usize> {
        (0..self.len()).filter(|&j| self.decisions[j]).collect()
    }

    /// Fills `advantages` and `returns` from the stored transitions and `last_values`.
    pub fn compute_gae(&mut self, gamma: f64, gae_lambda: f64) {
        assert!(self.is_full(), "compute_gae: rollout has {} of {} steps", self.recorded, self.n_steps);
        for d in self.discounts.iter_mut().filter(|d| d.is_nan()) {
            *d = gamma;
        }
        let input = GaeInput {
            n_envs: self.n_envs,
            rewards: &self.rewards,
            values: &self.values,
            terminated: &self.terminated,
            truncated: &self.truncated,
            final_values: &self.final_values,
            last_values: &self.last_values,
            discounts: Some(&self.discounts),
            decisions: if self.decisions.iter().all(|&d| d) { None } else { Some(&self.decisions) },
        };
        gae(&input, gamma, gae_lambda, &mut self.advantages, &mut self.returns);
        self.finished = true;
    }

    /// Replaces each advantage by `reward − baseline reward` where a baseline reward was recorded
    /// (self-critical advantages, valid for one-step returns: γ = 0); rows without one keep their
    /// GAE advantage. The returns (the critic's targets) are left as GAE computed them.
    pub fn apply_baseline_rewards(&mut self) {
        assert!(self.finished, "apply_baseline_rewards: compute_gae first");
        for ((a, &r), &b) in self.advantages.iter_mut().zip(&self.rewards).zip(&self.baseline_rewards) {
            if !b.is_nan() {
                *a = r - b;
            }
        }
    }

    /// Fills the all-action advantages Â(s, b) = r(s, b) − Σ_c π_old(c|s)·r(s, c) (zero where
    /// π_old(b|s) = 0, i.e. forbidden values) and sets each row's sampled advantage to Â at the
    /// action taken (what the diagnostics read; the update uses all of them). The returns (the
    /// critic's targets) are left as GAE computed them.
    pub fn apply_all_action_advantages(&mut self) {
        assert!(self.finished, "apply_all_action_advantages: compute_gae first");
        assert!(self.all_actions(), "apply_all_action_advantages: enable_all_actions first");
        let m = self.n_joint();
        for j in 0..self.len() {
            let rows = j * m..(j + 1) * m;
            let (p, r) = (&self.action_probs[rows.clone()], &self.action_rewards[rows.clone()]);
            let expected: f64 = p.iter().zip(r).map(|(&p, &r)| f64::from(p) * f64::from(r)).sum();
            for ((a, &p), &r) in self.action_advantages[rows].iter_mut().zip(p).zip(r) {
                *a = if p > 0.0 { (f64::from(r) - expected) as f32 } else { 0.0 };
            }
            let k = self.n_components;
            self.advantages[j] = self.action_advantages[j * m + self.joint_index(&self.actions[j * k..(j + 1) * k])];
        }
    }

    /// Copies the transitions at `indices` into `out`, normalising the advantages over this
    /// minibatch when asked (the sample std, as `torch.Tensor.std`).
    pub fn gather(&self, indices: &[usize], normalize_advantage: bool, out: &mut Minibatch) {
        let (d, m, k) = (self.obs_dim, self.mask_len, self.n_components);
        out.len = indices.len();
        for v in [&mut out.old_log_probs, &mut out.old_values, &mut out.advantages, &mut out.returns] {
            v.clear();
        }
        out.obs.clear();
        out.illegal.clear();
        out.actions.clear();
        out.joint_illegal.clear();
        out.old_probs.clear();
        out.action_advantages.clear();
        for &j in indices {
            out.obs.extend_from_slice(&self.obs[j * d..(j + 1) * d]);
            out.illegal.extend(self.masks[j * m..(j + 1) * m].iter().map(|&legal| !legal));
            out.actions.extend(self.actions[j * k..(j + 1) * k].iter().map(|&a| a as i64));
            out.old_log_probs.push(self.log_probs[j]);
            out.old_values.push(self.values[j]);
            out.advantages.push(self.advantages[j]);
            out.returns.push(self.returns[j]);
            if self.all_actions() {
                let q = self.n_joint();
                out.joint_illegal.extend(self.action_legal[j * q..(j + 1) * q].iter().map(|&legal| !legal));
                out.old_probs.extend_from_slice(&self.action_probs[j * q..(j + 1) * q]);
                out.action_advantages.extend_from_slice(&self.action_advantages[j * q..(j + 1) * q]);
            }
        }
        if self.all_actions() {
            if normalize_advantage {
                // Σ_b π_old(b|s)·Â(s, b) = 0 in every state, so only the scale is normalised: by
                // the root of the policy-weighted mean square, the all-action counterpart of the
                // sampled advantages' std.
                let n = indices.len() as f64;
                let mean_square = out
                    .old_probs
                    .iter()
                    .zip(&out.action_advantages)
                    .map(|(&p, &a)| f64::from(p) * f64::from(a).powi(2))
                    .sum::<f64>()
                    / n;
                let scale = 1.0 / (mean_square.sqrt() + ADVANTAGE_EPSILON);
                for a in &mut out.action_advantages {
                    *a = (f64::from(*a) * scale) as f32;
                }
            }
            return;
        }
        if normalize_advantage && indices.len() > 1 {
            let n = indices.len() as f64;
            let mean = out.advantages.iter().map(|&a| f64::from(a)).sum::<f64>() / n;
            let var = out.advantages.iter().map(|&a| (f64::from(a) - mean).powi(2)).sum::<f64>() / (n - 1.0);
            let scale = 1.0 / (var.sqrt() + ADVANTAGE_EPSILON);
            for a in &mut out.advantages {
                *a = ((f64::from(*a) - mean) * scale) as f32;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gather_copies_rows_and_normalises_advantages_with_sample_std() {
        // 2 steps × 2 envs, obs_dim 1, one component with 2 values.
        let mut b = RolloutBuffer::new(2, 2, 1, 2, 1);
        b.obs.copy_from_slice(&[10.0, 11.0, 12.0, 13.0]);
        b.masks.copy_from_slice(&[true, true, true, false, false, true, true, true]);
        b.actions.copy_from_slice(&[0, 0, 1, 1]);
        b.advantages.copy_from_slice(&[1.0, 2.0, 3.0, 5.0]);
        let mut mb = Minibatch::default();
        b.gather(&[3, 1], true, &mut mb);
        assert_eq!(mb.obs, vec![13.0, 11.0]);
        assert_eq!(mb.illegal, vec![false, false, false, true]);
        assert_eq!(mb.actions, vec![1, 0]);
        // Advantages (5, 2): mean 3.5, sample std √((1.5² + 1.5²)/1) = 2.1213 →
        // (±1.5/2.1213) = ±0.7071.
        assert!((mb.advantages[0] - std::f32::consts::FRAC_1_SQRT_2).abs() < 1e-6);
        assert!((mb.advantages[1] + std::f32::consts::FRAC_1_SQRT_2).abs() < 1e-6);
        b.gather(&[0, 3], false, &mut mb);
        assert_eq!(mb.advantages, vec![1.0, 5.0]);
    }

    #[test]
    fn all_action_advantages_subtract_the_policy_weighted_mean_reward_and_normalise_by_its_scale() {
        // 1 step × 2 envs, one component with 3 values; env 1 forbids value 2.
        let mut b = RolloutBuffer::new(1, 2, 1, 3, 1);
        b.enable_all_actions(&[3]);
        b.actions.copy_from_slice(&[2, 0]);
        b.action_probs.copy_from_slice(&[0.5, 0.25, 0.25, 0.5, 0.5, 0.0]);
        b.action_rewards.copy_from_slice(&[1.0, 2.0, 5.0, -1.0, 3.0, 0.0]);
        b.recorded = 1;
        b.compute_gae(0.0, 0.95);
        b.apply_all_action_advantages();
        // Env 0: Σ π·r = 0.5 + 0.5 + 1.25 = 2.25 → Â = (−1.25, −0.25, 2.75).
        // Env 1: Σ π·r = −0.5 + 1.5 = 1 → Â = (−2, 2, 0) (the forbidden value stays 0).
        let want = [-1.25, -0.25, 2.75, -2.0, 2.0, 0.0];
        for (g, w) in b.action_advantages.iter().zip(want) {
            assert!((g - w).abs() < 1e-6, "{:?}", b.action_advantages);
        }
        // The sampled rows' advantages are Â at the action taken (value 2, value 0).
        assert_eq!(b.advantages, vec![2.75, -2.0]);
        // Normalised: Σ π·Â² = 0.5·1.5625 + 0.25·0.0625 + 0.25·7.5625 = 2.6875 (env 0) and
        // 0.5·4 + 0.5·4 = 4 (env 1); mean 3.34375, root 1.828592 → Â / 1.828592.
        let mut mb = Minibatch::default();
        b.gather(&[0, 1], true, &mut mb);
        assert_eq!(mb.old_probs, b.action_probs);
        for (g, w) in mb.action_advantages.iter().zip(want) {
            assert!((f64::from(*g) - f64::from(w) / 3.34375f64.sqrt()).abs() < 1e-6, "{:?}", mb.action_advantages);
        }
        b.gather(&[1], false, &mut mb);
        assert_eq!(mb.action_advantages, vec![-2.0, 2.0, 0.0]);
    }

    #[test]
    fn joint_all_action_advantages_read_the_sampled_pair_row_major_and_gather_its_legality() {
        // 1 step × 1 env, two components of sizes 2 and 3: 6 joint values, (a₀, a₁) at 3·a₀ + a₁.
        assert_eq!(joint_index(&[2, 3], &[1, 2]), 5);
        assert_eq!(joint_index(&[2, 3], &[0, 1]), 1);
        let mut action = [0; 2];
        joint_action(&[2, 3], 5, &mut action);
        assert_eq!(action, [1, 2]);
        let mut b = RolloutBuffer::new(1, 1, 1, 5, 2);
        b.enable_all_actions(&[2, 3]);
        assert_eq!(b.n_joint(), 6);
        b.actions.copy_from_slice(&[1, 0]);
        // (0, 2) is illegal.
        b.action_legal.copy_from_slice(&[true, true, false, true, true, true]);
        b.action_probs.copy_from_slice(&[0.1, 0.3, 0.0, 0.2, 0.2, 0.2]);
        b.action_rewards.copy_from_slice(&[1.0, 2.0, 0.0, 4.0, 0.0, -1.0]);
        b.recorded = 1;
        b.compute_gae(0.0, 0.95);
        b.apply_all_action_advantages();
        // Σ π·r = 0.1 + 0.6 + 0.8 − 0.2 = 1.3; the sampled pair (1, 0) is joint value 3: Â = 2.7.
        let want = [-0.3, 0.7, 0.0, 2.7, -1.3, -2.3];
        for (g, w) in b.action_advantages.iter().zip(want) {
            assert!((g - w).abs() < 1e-6, "{:?}", b.action_advantages);
        }
        assert!((b.advantages[0] - 2.7).abs() < 1e-6);
        let mut mb = Minibatch::default();
        b.gather(&[0], false, &mut mb);
        assert_eq!(mb.joint_illegal, vec![false, false, true, false, false, false]);
        assert_eq!(mb.old_probs, b.action_probs);
    }

    #[test]
    fn self_critical_advantages_are_reward_minus_baseline_reward_where_one_was_recorded() {
        // 2 steps × 2 envs, γ = 0: GAE's advantage is r − V; a recorded baseline reward replaces
        // it by r − r_baseline, and the returns (critic targets) stay r.
        let mut b = RolloutBuffer::new(2, 2, 1, 2, 1);
        b.rewards.copy_from_slice(&[-1.0, -4.0, -0.5, -2.0]);
        b.values.copy_from_slice(&[-2.0, -2.0, -2.0, -2.0]);
        b.baseline_rewards.copy_from_slice(&[-1.5, f32::NAN, -0.5, -3.0]);
        b.recorded = 2;
        b.compute_gae(0.0, 0.95);
        assert_eq!(b.advantages, vec![1.0, -2.0, 1.5, 0.0]);
        b.apply_baseline_rewards();
        assert_eq!(b.advantages, vec![0.5, -2.0, 0.0, 1.0]);
        assert_eq!(b.returns, vec![-1.0, -4.0, -0.5, -2.0]);
        b.clear();
        assert!(b.baseline_rewards.iter().all(|r| r.is_nan()));
    }
}
