//! Object-safe views of the env crate's generic `Env` and `VecEnv<E>`, so one Python class serves
//! every environment kind: step info becomes named scalars (the `StepMetrics` names, the same
//! keys as TensorBoard's `env/…`), saved states become JSON text.

use splitwise_env::api::{Env, EnvError, EnvSpec, StepMetrics};
use splitwise_env::vector::{VecEnv, VecStepError};

/// A step info as `(name, value)` pairs, in the env's visiting order.
pub type Scalars = Vec<(&'static str, f64)>;

pub fn scalars(info: &impl StepMetrics) -> Scalars {
    let mut out = Vec::with_capacity(40);
    info.visit_scalars(&mut |name, value| out.push((name, value)));
    out
}

/// The result of a single step besides the observation and mask written in place.
pub struct Stepped {
    pub reward: f64,
    pub terminated: bool,
    pub truncated: bool,
    pub info: Scalars,
}

pub trait DynEnv: Send {
    fn spec(&self) -> &EnvSpec;
    fn reset_into(&mut self, seed: Option<u64>, obs: &mut [f32], mask: &mut [bool]) -> Scalars;
    fn step_into(&mut self, action: &[usize], obs: &mut [f32], mask: &mut [bool]) -> Result<Stepped, EnvError>;
    fn conditional_mask(&self, prefix: &[usize], out: &mut [bool]) -> bool;
    fn save_json(&self) -> Result<String, String>;
    fn restore_json(&mut self, text: &str) -> Result<(), String>;
}

impl<E: Env> DynEnv for E {
    fn spec(&self) -> &EnvSpec {
        Env::spec(self)
    }

    fn reset_into(&mut self, seed: Option<u64>, obs: &mut [f32], mask: &mut [bool]) -> Scalars {
        scalars(&Env::reset_into(self, seed, obs, mask))
    }

    fn step_into(&mut self, action: &[usize], obs: &mut [f32], mask: &mut [bool]) -> Result<Stepped, EnvError> {
        let t = Env::step_into(self, action, obs, mask)?;
        Ok(Stepped { reward: t.reward, terminated: t.terminated, truncated: t.truncated, info: scalars(&t.info) })
    }

    fn conditional_mask(&self, prefix: &[usize], out: &mut [bool]) -> bool {
        Env::conditional_mask(self, prefix, out)
    }

    fn save_json(&self) -> Result<String, String> {
        serde_json::to_string(&self.save_state()).map_err(|e| e.to_string())
    }

    fn restore_json(&mut self, text: &str) -> Result<(), String> {
        let state: E::State =
            serde_json::from_str(text).map_err(|e| format!("not a saved state of {}: {e}", self.spec().id))?;
        self.restore_state(&state).map_err(|e| e.to_string())
    }
}

pub trait DynVecEnv: Send {
    fn spec(&self) -> &EnvSpec;
    fn n_envs(&self) -> usize;
    fn reset(&mut self, seed: Option<u64>);
    fn step(&mut self, actions: &[usize]) -> Result<(), VecStepError>;
    fn obs(&self) -> &[f32];
    fn masks(&self) -> &[bool];
    fn rewards(&self) -> &[f64];
    fn terminated(&self) -> &[bool];
    fn truncated(&self) -> &[bool];
    fn final_obs(&self, i: usize) -> Option<&[f32]>;
    /// The info scalar names (the same for every step of this env kind).
    fn info_names(&self) -> Vec<&'static str>;
    /// Every member's last info values into `out` (names × members, one contiguous row per
    /// name, in [`Self::info_names`] order; `out.len()` = names × members).
    fn info_columns(&self, out: &mut [f64]);
    fn save_json(&self) -> Result<String, String>;
    fn restore_json(&mut self, text: &str) -> Result<(), String>;
}

impl<E: Env> DynVecEnv for VecEnv<E> {
    fn spec(&self) -> &EnvSpec {
        VecEnv::spec(self)
    }
    fn n_envs(&self) -> usize {
        VecEnv::n_envs(self)
    }
    fn reset(&mut self, seed: Option<u64>) {
        self.reset_with(seed);
    }
    fn step(&mut self, actions: &[usize]) -> Result<(), VecStepError> {
        VecEnv::step(self, actions)
    }
    fn obs(&self) -> &[f32] {
        VecEnv::obs(self)
    }
    fn masks(&self) -> &[bool] {
        VecEnv::masks(self)
    }
    fn rewards(&self) -> &[f64] {
        VecEnv::rewards(self)
    }
    fn terminated(&self) -> &[bool] {
        VecEnv::terminated(self)
    }
    fn truncated(&self) -> &[bool] {
        VecEnv::truncated(self)
    }
    fn final_obs(&self, i: usize) -> Option<&[f32]> {
        VecEnv::final_obs(self, i)
    }
    fn info_names(&self) -> Vec<&'static str> {
        scalars(&E::Info::default()).into_iter().map(|(n, _)| n).collect()
    }
    fn info_columns(&self, out: &mut [f64]) {
        let n = self.n_envs();
        debug_assert_eq!(out.len(), n * self.info_names().len(), "info buffer: names × members");
        for (i, info) in self.infos().iter().enumerate() {
            let mut at = i;
            info.visit_scalars(&mut |_, v| {
                if let Some(slot) = out.get_mut(at) {
                    *slot = v;
                }
                at += n;
            });
        }
    }
    fn save_json(&self) -> Result<String, String> {
        serde_json::to_string(&self.save_state()).map_err(|e| e.to_string())
    }
    fn restore_json(&mut self, text: &str) -> Result<(), String> {
        let state = serde_json::from_str(text).map_err(|e| {
            format!("not a saved state of a {}-member {} vector env: {e}", self.n_envs(), self.spec().id)
        })?;
        self.restore_state(&state).map_err(|e| e.to_string())
    }
}
