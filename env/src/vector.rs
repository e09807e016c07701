//! In-process vector environment: steps `n_envs` members in order into contiguous row-major
//! buffers (`n_envs × obs_dim` observations, `n_envs × mask_len` masks), resets finished members
//! automatically in the same step (SB3's convention) and keeps their final observation, so a
//! truncated episode can still be bootstrapped from it. Member `i` is seeded with
//! `derive_seed(seed, i)`: one seed drives the whole batch.

use crate::api::{Env, EnvError, EnvSpec};
use crate::rng::derive_seed;
use serde::{Deserialize, Serialize};

/// The most members a vector env built from user input may have (a config's `n_envs`, the
/// Python bindings' `num_envs`). Each is a full simulator; RL Zoo presets use ≤ 64.
pub const MAX_MEMBERS: usize = 1024;

/// When a member whose episode ended starts its next one (Gymnasium's `AutoresetMode`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Autoreset {
    /// In the step that ends it: the member's row then holds the next episode's first
    /// observation and [`VecEnv::final_obs`] the last one (SB3's convention; what the learners
    /// use).
    #[default]
    SameStep,
    /// In the next step, which resets the member instead of stepping it (its action is ignored;
    /// reward 0, not terminated, not truncated): the row holds the final observation until then
    /// (Gymnasium 1.x's default, RLlib's expectation).
    NextStep,
}

/// An episode that ended during the last `step`.
#[derive(Clone, Debug, PartialEq)]
pub struct EpisodeRecord {
    pub env_index: usize,
    pub episode_return: f64,
    pub length: u64,
    pub truncated: bool,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("vector env member {env_index}: {error}")]
pub struct VecStepError {
    pub env_index: usize,
    #[source]
    pub error: EnvError,
}

/// Everything a vector env needs to continue exactly (members, current observations, episode
/// accumulators).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct VecEnvState<S> {
    pub members: Vec<S>,
    pub obs: Vec<f32>,
    pub masks: Vec<bool>,
    pub episode_returns: Vec<f64>,
    pub episode_lengths: Vec<u64>,
    /// Members whose reset is due in the next step ([`Autoreset::NextStep`]); empty = none
    /// (states saved before this field existed).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pending_reset: Vec<bool>,
}

pub struct VecEnv<E: Env> {
    envs: Vec<E>,
    spec: EnvSpec,
    obs: Vec<f32>,
    masks: Vec<bool>,
    rewards: Vec<f64>,
    terminated: Vec<bool>,
    truncated: Vec<bool>,
    final_obs: Vec<f32>,
    has_final_obs: Vec<bool>,
    /// Where a counterfactual step writes the observation and mask it does not keep.
    probe_obs: Vec<f32>,
    probe_mask: Vec<bool>,
    infos: Vec<E::Info>,
    episode_returns: Vec<f64>,
    episode_lengths: Vec<u64>,
    finished: Vec<EpisodeRecord>,
    autoreset: Autoreset,
    pending_reset: Vec<bool>,
}

impl<E: Env> VecEnv<E> {
    /// All members must share one spec.
    pub fn new(envs: Vec<E>) -> Self {
        assert!(!envs.is_empty(), "a vector env needs at least one member");
        let spec = envs[0].spec().clone();
        assert!(envs.iter().all(|e| *e.spec() == spec), "vector env members must share one spec");
        let n = envs.len();
        let (d, m) = (spec.observation.dim(), spec.action.mask_len());
        Self {
            obs: vec![0.0; n * d],
            masks: vec![false; n * m],
            rewards: vec![0.0; n],
            terminated: vec![false; n],
            truncated: vec![false; n],
            final_obs: vec![0.0; n * d],
            has_final_obs: vec![false; n],
            probe_obs: vec![0.0; d],
            probe_mask: vec![false; m],
            infos: vec![E::Info::default(); n],
            episode_returns: vec![0.0; n],
            episode_lengths: vec![0; n],
            finished: Vec::new(),
            autoreset: Autoreset::SameStep,
            pending_reset: vec![false; n],
            envs,
            spec,
        }
    }

    /// The same vector env resetting finished members as `mode` says.
    pub fn with_autoreset(mut self, mode: Autoreset) -> Self {
        self.autoreset = mode;
        self
    }

    pub fn autoreset(&self) -> Autoreset {
        self.autoreset
    }

    pub fn spec(&self) -> &EnvSpec {
        &self.spec
    }

    pub fn n_envs(&self) -> usize {
        self.envs.len()
    }

    pub fn members(&self) -> &[E] {
        &self.envs
    }

    pub fn members_mut(&mut self) -> &mut [E] {
        &mut self.envs
    }

    /// Resets every member; member `i` gets seed `derive_seed(seed, i)`.
    pub fn reset(&mut self, seed: u64) {
        self.reset_with(Some(seed));
    }

    /// [`Self::reset`], or with `None` every member continues from its own episode stream (as a
    /// lone env's `reset(None)`; the Python bindings' `reset(seed=None)`).
    pub fn reset_with(&mut self, seed: Option<u64>) {
        let (d, m) = (self.spec.observation.dim(), self.spec.action.mask_len());
        for (i, env) in self.envs.iter_mut().enumerate() {
            self.infos[i] = env.reset_into(
                seed.map(|s| derive_seed(s, i as u64)),
                &mut self.obs[i * d..(i + 1) * d],
                &mut self.masks[i * m..(i + 1) * m],
            );
        }
        self.episode_returns.fill(0.0);
        self.episode_lengths.fill(0);
        self.has_final_obs.fill(false);
        self.terminated.fill(false);
        self.truncated.fill(false);
        self.pending_reset.fill(false);
        self.finished.clear();
    }

    /// Steps every member with its row of `actions` (`n_envs × n_components`, row-major).
    /// A member whose episode ends is reset at once: its row of `obs()` then holds the new
    /// episode's first observation and `final_obs(i)` the last one of the finished episode.
    pub fn step(&mut self, actions: &[usize]) -> Result<(), VecStepError> {
        let k = self.spec.action.n_components();
        assert_eq!(actions.len(), self.envs.len() * k, "actions must be n_envs × n_components");
        let (d, m) = (self.spec.observation.dim(), self.spec.action.mask_len());
        self.finished.clear();
        for (i, env) in self.envs.iter_mut().enumerate() {
            let obs = &mut self.obs[i * d..(i + 1) * d];
            let mask = &mut self.masks[i * m..(i + 1) * m];
            if self.pending_reset[i] {
                // Autoreset::NextStep: this step starts the member's next episode.
                self.pending_reset[i] = false;
                self.infos[i] = env.reset_into(None, obs, mask);
                self.rewards[i] = 0.0;
                self.terminated[i] = false;
                self.truncated[i] = false;
                self.has_final_obs[i] = false;
                continue;
            }
            let t = env
                .step_into(&actions[i * k..(i + 1) * k], obs, mask)
                .map_err(|error| VecStepError { env_index: i, error })?;
            self.rewards[i] = t.reward;
            self.terminated[i] = t.terminated;
            self.truncated[i] = t.truncated;
            self.infos[i] = t.info;
            self.episode_returns[i] += t.reward;
            self.episode_lengths[i] += 1;
            self.has_final_obs[i] = t.terminated || t.truncated;
            if self.has_final_obs[i] {
                self.final_obs[i * d..(i + 1) * d].copy_from_slice(obs);
                self.finished.push(EpisodeRecord {
                    env_index: i,
                    episode_return: self.episode_returns[i],
                    length: self.episode_lengths[i],
                    truncated: t.truncated && !t.terminated,
                });
                self.episode_returns[i] = 0.0;
                self.episode_lengths[i] = 0;
                match self.autoreset {
                    // The reset's info is dropped: the step's info (of the final transition) is
                    // what callers log. The final mask is not kept (nothing acts on a final state).
                    Autoreset::SameStep => {
                        env.reset_into(None, obs, mask);
                    }
                    Autoreset::NextStep => self.pending_reset[i] = true,
                }
            }
        }
        Ok(())
    }

    /// The reward each member would get for its row of `actions` in its next step, written into
    /// `out`, leaving every member exactly as it was: each member's state is saved, the action
    /// stepped on it, and the state restored. Everything random lives in the state, so the
    /// counterfactual step sees the same exogenous draws as the real one that follows (common
    /// random numbers): for the action the real step then takes, the two rewards are identical.
    /// Agents use it as a self-critical baseline (the greedy action's reward under the same
    /// randomness as the sampled action's, `splitwise_agents::AdvantageBaseline::SelfCritical`).
    /// The counterfactual step does not count in episode returns and lengths.
    pub fn counterfactual_rewards(&mut self, actions: &[usize], out: &mut [f64]) -> Result<(), VecStepError> {
        assert_eq!(self.autoreset, Autoreset::SameStep, "counterfactual rewards need same-step autoreset");
        let k = self.spec.action.n_components();
        assert_eq!(actions.len(), self.envs.len() * k, "actions must be n_envs × n_components");
        assert_eq!(out.len(), self.envs.len(), "one reward per member");
        for (i, env) in self.envs.iter_mut().enumerate() {
            let saved = env.save_state();
            let stepped = env.step_into(&actions[i * k..(i + 1) * k], &mut self.probe_obs, &mut self.probe_mask);
            let restored = env.restore_state(&saved);
            let t = stepped.map_err(|error| VecStepError { env_index: i, error })?;
            restored.map_err(|error| VecStepError { env_index: i, error })?;
            out[i] = t.reward;
        }
        Ok(())
    }

    /// The rewards member `member` would get in its next step for each of several actions
    /// (`actions`: rows of `n_components`; `out`: one reward per row), each probed on the
    /// member's saved state and restored, so all of them see the same exogenous draws. A
    /// hierarchy's high level uses it to score every one of its choices completed by its low
    /// level (`splitwise_agents::hppo`).
    pub fn counterfactual_member_rewards(
        &mut self,
        member: usize,
        actions: &[usize],
        out: &mut [f64],
    ) -> Result<(), VecStepError> {
        assert_eq!(self.autoreset, Autoreset::SameStep, "counterfactual rewards need same-step autoreset");
        let k = self.spec.action.n_components();
        assert_eq!(actions.len(), out.len() * k, "one row of n_components per reward");
        let env = &mut self.envs[member];
        let saved = env.save_state();
        for (action, reward) in actions.chunks_exact(k).zip(out.iter_mut()) {
            let stepped = env.step_into(action, &mut self.probe_obs, &mut self.probe_mask);
            let restored = env.restore_state(&saved);
            let t = stepped.map_err(|error| VecStepError { env_index: member, error })?;
            restored.map_err(|error| VecStepError { env_index: member, error })?;
            *reward = t.reward;
        }
        Ok(())
    }

    /// [`Self::counterfactual_rewards`] for every value of a one-component action space at once:
    /// `out[i * n + b]` is the reward member `i` would get for value `b` in its next step (`n` the
    /// component's size), each probed on the member's saved state and restored, so all values see
    /// the same exogenous draws. Values the member's mask forbids are not stepped; their entry is
    /// 0. Used for the all-action advantage (`splitwise_agents::AdvantageBaseline::AllActions`).
    pub fn counterfactual_action_rewards(&mut self, out: &mut [f64]) -> Result<(), VecStepError> {
        assert_eq!(self.spec.action.n_components(), 1, "all-action rewards need a one-component action space");
        assert_eq!(self.autoreset, Autoreset::SameStep, "counterfactual rewards need same-step autoreset");
        let n = self.spec.action.mask_len();
        assert_eq!(out.len(), self.envs.len() * n, "one reward per member and action value");
        for (i, env) in self.envs.iter_mut().enumerate() {
            let saved = env.save_state();
            for b in 0..n {
                out[i * n + b] = 0.0;
                if !self.masks[i * n + b] {
                    continue;
                }
                let stepped = env.step_into(&[b], &mut self.probe_obs, &mut self.probe_mask);
                let restored = env.restore_state(&saved);
                let t = stepped.map_err(|error| VecStepError { env_index: i, error })?;
                restored.map_err(|error| VecStepError { env_index: i, error })?;
                out[i * n + b] = t.reward;
            }
        }
        Ok(())
    }

    pub fn obs(&self) -> &[f32] {
        &self.obs
    }

    pub fn masks(&self) -> &[bool] {
        &self.masks
    }

    pub fn rewards(&self) -> &[f64] {
        &self.rewards
    }

    pub fn terminated(&self) -> &[bool] {
        &self.terminated
    }

    pub fn truncated(&self) -> &[bool] {
        &self.truncated
    }

    pub fn infos(&self) -> &[E::Info] {
        &self.infos
    }

    /// The last observation of the episode member `i` finished in the last step, if it did.
    pub fn final_obs(&self, i: usize) -> Option<&[f32]> {
        let d = self.spec.observation.dim();
        self.has_final_obs[i].then(|| &self.final_obs[i * d..(i + 1) * d])
    }

    /// Episodes that ended during the last step.
    pub fn finished(&self) -> &[EpisodeRecord] {
        &self.finished
    }

    pub fn save_state(&self) -> VecEnvState<E::State> {
        VecEnvState {
            members: self.envs.iter().map(|e| e.save_state()).collect(),
            obs: self.obs.clone(),
            masks: self.masks.clone(),
            episode_returns: self.episode_returns.clone(),
            episode_lengths: self.episode_lengths.clone(),
            pending_reset: if self.pending_reset.iter().any(|&p| p) { self.pending_reset.clone() } else { Vec::new() },
        }
    }

    pub fn restore_state(&mut self, state: &VecEnvState<E::State>) -> Result<(), EnvError> {
        if state.members.len() != self.envs.len()
            || state.obs.len() != self.obs.len()
            || state.masks.len() != self.masks.len()
            || state.episode_returns.len() != self.envs.len()
            || state.episode_lengths.len() != self.envs.len()
            || !(state.pending_reset.is_empty() || state.pending_reset.len() == self.envs.len())
        {
            return Err(EnvError::StateMismatch(format!(
                "saved vector env has {} members, this one has {}",
                state.members.len(),
                self.envs.len()
            )));
        }
        for (env, s) in self.envs.iter_mut().zip(&state.members) {
            env.restore_state(s)?;
        }
        self.obs.copy_from_slice(&state.obs);
        self.masks.copy_from_slice(&state.masks);
        self.episode_returns.copy_from_slice(&state.episode_returns);
        self.episode_lengths.copy_from_slice(&state.episode_lengths);
        self.pending_reset.fill(false);
        if !state.pending_reset.is_empty() {
            self.pending_reset.copy_from_slice(&state.pending_reset);
        }
        self.has_final_obs.fill(false);
        self.finished.clear();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::Env;
    use crate::cartpole::{CartPole, is_terminal};

    fn physics_terminal_for_test(obs: &[f32]) -> bool {
        is_terminal(&[f64::from(obs[0]), f64::from(obs[1]), f64::from(obs[2]), f64::from(obs[3])])
    }

    fn venv(n: usize) -> VecEnv<CartPole> {
        VecEnv::new((0..n).map(|_| CartPole::new()).collect())
    }

    #[test]
    fn members_are_seeded_from_one_seed() {
        let mut v = venv(3);
        v.reset(42);
        for i in 0..3 {
            let (obs, _) = CartPole::new().reset(Some(derive_seed(42, i as u64)));
            assert_eq!(&v.obs()[i * 4..(i + 1) * 4], obs.features.as_slice());
        }
        assert_ne!(v.obs()[0..4], v.obs()[4..8]);
    }

    #[test]
    fn autoreset_keeps_the_final_observation() {
        // Always pushing right ends every episode within ~10-60 steps.
        let mut v = venv(2);
        v.reset(7);
        let mut reference = CartPole::new();
        reference.reset(Some(derive_seed(7, 0)));
        let mut finished = 0;
        for t in 1..=200u64 {
            v.step(&[1, 1]).unwrap();
            let r = reference.step(&[1]).unwrap();
            if r.terminated || r.truncated {
                // Member 0 ended this step: its final observation is the terminal one, its row
                // holds the next episode's first observation, and the record has the return.
                assert_eq!(v.final_obs(0), Some(r.obs.features.as_slice()));
                assert!(physics_terminal_for_test(v.final_obs(0).unwrap()));
                assert!(!physics_terminal_for_test(&v.obs()[0..4]));
                let rec = v.finished().iter().find(|e| e.env_index == 0).expect("a record for member 0");
                assert_eq!(rec.length, t - finished);
                assert_eq!(rec.episode_return, rec.length as f64);
                assert!(!rec.truncated);
                finished = t;
                // Member 0 continues from its own episode stream, as a lone env would.
                let (next, _) = reference.reset(None);
                assert_eq!(&v.obs()[0..4], next.features.as_slice());
            } else {
                assert_eq!(v.final_obs(0), None);
                assert_eq!(&v.obs()[0..4], r.obs.features.as_slice());
            }
        }
        assert!(finished > 0);
    }

    #[test]
    fn next_step_autoreset_resets_in_the_following_step_and_ignores_its_action() {
        let mut same = venv(1);
        let mut next = venv(1).with_autoreset(Autoreset::NextStep);
        same.reset(5);
        next.reset(5);
        let mut ended = 0;
        for _ in 0..300 {
            same.step(&[1]).unwrap();
            next.step(&[1]).unwrap();
            assert_eq!(same.rewards(), next.rewards());
            if same.terminated()[0] {
                ended += 1;
                // The row holds the final observation; the next step resets (action ignored).
                assert_eq!(next.obs(), same.final_obs(0).unwrap());
                assert!(next.terminated()[0]);
                let saved = next.save_state();
                next.step(&[0]).unwrap();
                assert_eq!(next.obs(), same.obs(), "the next step's observation is the reset's");
                assert_eq!((next.rewards()[0], next.terminated()[0], next.truncated()[0]), (0.0, false, false));
                assert!(next.finished().is_empty());
                // The pending reset survives a save and restore.
                let mut again = venv(1).with_autoreset(Autoreset::NextStep);
                again.reset(0);
                again.restore_state(&saved).unwrap();
                again.step(&[1]).unwrap();
                assert_eq!(again.obs(), same.obs());
            }
        }
        assert!(ended > 2);
    }

    #[test]
    fn save_and_restore_continue_identically() {
        let mut a = venv(4);
        a.reset(3);
        let actions = |t: usize| -> Vec<usize> { (0..4).map(|i| (t * 7 + i * 3) % 2).collect() };
        for t in 0..50 {
            a.step(&actions(t)).unwrap();
        }
        let saved = a.save_state();
        let mut b = venv(4);
        b.reset(99);
        b.restore_state(&saved).unwrap();
        for t in 50..150 {
            a.step(&actions(t)).unwrap();
            b.step(&actions(t)).unwrap();
            assert_eq!(a.obs(), b.obs());
            assert_eq!(a.rewards(), b.rewards());
            assert_eq!(a.finished(), b.finished());
        }
        let mut wrong = venv(3);
        assert!(wrong.restore_state(&saved).is_err());
    }
}
