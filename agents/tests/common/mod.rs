//! A tiny masked multi-discrete environment for the learner's integration tests ("guess the
//! sign"): the observation is (x, step fraction) with x uniform in [−1, 1]; component 0 must
//! guess the sign of x (reward +1 when right); component 1 (3 values) is masked so that only value
//! 0 is legal on odd steps and values 0–1 on even steps, and pays +0.5 for value 1. Three wrong
//! guesses terminate the episode; the time limit of 8 steps truncates it. It exercises both kinds
//! of episode end, masks with a single legal value, and save/restore.

#![allow(dead_code)]

use rand::{RngExt, SeedableRng};
use serde::{Deserialize, Serialize};
use splitwise_env::api::{Env, EnvError, EnvSpec, StepMetrics, Transition};
use splitwise_env::rng::StreamRng;
use splitwise_env::spaces::{ActionSpace, Feature, ObservationSpace};
use splitwise_env::vector::VecEnv;

pub const TIME_LIMIT: u64 = 8;

#[derive(Clone, Debug, Default)]
pub struct GuessInfo {
    pub correct: bool,
}

impl StepMetrics for GuessInfo {
    fn visit_scalars(&self, visit: &mut dyn FnMut(&'static str, f64)) {
        visit("correct", f64::from(u8::from(self.correct)));
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GuessState {
    pub rng: StreamRng,
    pub x: f32,
    pub step: u64,
    pub wrong: u32,
}

pub struct GuessEnv {
    spec: EnvSpec,
    state: GuessState,
    /// With conditional masks: guessing "positive" (value 1) forbids the bonus value 1, a
    /// dependence the observation's mask cannot express (autoregressive masking).
    conditional: bool,
}

impl GuessEnv {
    pub fn new() -> Self {
        let spec = EnvSpec {
            id: "Guess-v0".into(),
            observation: ObservationSpace {
                layout: "guess-v0".into(),
                features: vec![
                    Feature::new("x", -1.0, 1.0, "1", "the number whose sign to guess"),
                    Feature::new("t", 0.0, 1.0, "1", "step / time limit"),
                ],
            },
            action: ActionSpace::multi_discrete(vec![("sign".into(), 2), ("bonus".into(), 3)]),
            max_episode_steps: Some(TIME_LIMIT),
        };
        Self {
            spec,
            state: GuessState { rng: StreamRng::seed_from_u64(0), x: 0.0, step: 0, wrong: 0 },
            conditional: false,
        }
    }

    pub fn with_conditional_masks() -> Self {
        Self { conditional: true, ..Self::new() }
    }

    fn bonus_mask(&self, sign: usize, out: &mut [bool]) {
        let odd = self.state.step % 2 == 1;
        let forbidden_by_sign = self.conditional && sign == 1;
        out.copy_from_slice(&[true, !(odd || forbidden_by_sign), false]);
    }

    fn write(&self, obs: &mut [f32], mask: &mut [bool]) {
        obs[0] = self.state.x;
        obs[1] = self.state.step as f32 / TIME_LIMIT as f32;
        let odd = self.state.step % 2 == 1;
        mask.copy_from_slice(&[true, true, true, !odd, false]);
    }
}

impl Env for GuessEnv {
    type Info = GuessInfo;
    type State = GuessState;

    fn spec(&self) -> &EnvSpec {
        &self.spec
    }

    fn reset_into(&mut self, seed: Option<u64>, obs: &mut [f32], mask: &mut [bool]) -> GuessInfo {
        if let Some(s) = seed {
            self.state.rng = StreamRng::seed_from_u64(s);
        }
        self.state.step = 0;
        self.state.wrong = 0;
        self.state.x = self.state.rng.random_range(-1.0..1.0);
        self.write(obs, mask);
        GuessInfo::default()
    }

    fn step_into(
        &mut self,
        action: &[usize],
        obs: &mut [f32],
        mask: &mut [bool],
    ) -> Result<Transition<GuessInfo>, EnvError> {
        let mut current = vec![false; 5];
        let mut scratch = [0.0f32; 2];
        self.write(&mut scratch, &mut current);
        if let Some(&sign) = action.first() {
            self.bonus_mask(sign.min(1), &mut current[2..]);
        }
        splitwise_env::api::check_action(&self.spec.action, action, &current)?;
        let correct = (action[0] == 1) == (self.state.x > 0.0);
        let reward = if correct { 1.0 } else { 0.0 } + if action[1] == 1 { 0.5 } else { 0.0 };
        if !correct {
            self.state.wrong += 1;
        }
        self.state.step += 1;
        self.state.x = self.state.rng.random_range(-1.0..1.0);
        let terminated = self.state.wrong >= 3;
        let truncated = !terminated && self.state.step >= TIME_LIMIT;
        self.write(obs, mask);
        Ok(Transition { reward, terminated, truncated, info: GuessInfo { correct } })
    }

    fn conditional_mask(&self, prefix: &[usize], out: &mut [bool]) -> bool {
        if !self.conditional || prefix.len() != 1 {
            return false;
        }
        self.bonus_mask(prefix[0], out);
        true
    }

    fn save_state(&self) -> GuessState {
        self.state.clone()
    }

    fn restore_state(&mut self, state: &GuessState) -> Result<(), EnvError> {
        self.state = state.clone();
        Ok(())
    }
}

pub fn guess_venv(n_envs: usize, seed: u64) -> VecEnv<GuessEnv> {
    let mut venv = VecEnv::new((0..n_envs).map(|_| GuessEnv::new()).collect());
    venv.reset(seed);
    venv
}

pub fn conditional_guess_venv(n_envs: usize, seed: u64) -> VecEnv<GuessEnv> {
    let mut venv = VecEnv::new((0..n_envs).map(|_| GuessEnv::with_conditional_masks()).collect());
    venv.reset(seed);
    venv
}
