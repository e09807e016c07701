//! The Gymnasium-style environment contract (Gymnasium `core.py`): `reset(seed) -> (obs, info)`
//! and `step(action) -> Step { obs, reward, terminated, truncated, info }`, with typed info and
//! action masks returned beside the observation.
//!
//! Contract every environment keeps (the conformance suite checks it):
//! - observations stay inside the declared finite bounds;
//! - an action outside the mask is an error (or, where an env documents it, a flagged repair):
//!   no infeasible plan is ever executed;
//! - same seed ⇒ bit-identical trajectory; `save_state` / `restore_state` mid-episode ⇒ identical
//!   continuation;
//! - `truncated` comes only from the time limit; `terminated` only from the MDP itself.

use crate::spaces::{ActionSpace, ObservationSpace};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::fmt::Debug;

/// The static description of an environment.
#[derive(Clone, Debug, PartialEq)]
pub struct EnvSpec {
    /// Gymnasium-style id, e.g. `CartPole-v1`, `Partition-hierarchical-v1`.
    pub id: String,
    pub observation: ObservationSpace,
    pub action: ActionSpace,
    /// Time limit in steps; reaching it sets `truncated`.
    pub max_episode_steps: Option<u64>,
}

/// An observation with the action mask of the state it describes.
#[derive(Clone, Debug, PartialEq)]
pub struct Observation {
    pub features: Vec<f32>,
    pub mask: Vec<bool>,
}

/// What `step` returns besides the observation (which `step_into` writes into caller buffers).
#[derive(Clone, Debug, PartialEq)]
pub struct Transition<I> {
    pub reward: f64,
    pub terminated: bool,
    pub truncated: bool,
    pub info: I,
}

/// The full result of [`Env::step`].
#[derive(Clone, Debug, PartialEq)]
pub struct Step<I> {
    pub obs: Observation,
    pub reward: f64,
    pub terminated: bool,
    pub truncated: bool,
    pub info: I,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EnvError {
    #[error("action has {got} components, the action space has {expected}")]
    ActionLength { expected: usize, got: usize },
    #[error("action component {component} ({name}) = {value} is outside 0..{n}")]
    ActionOutOfRange { component: usize, name: String, value: usize, n: usize },
    #[error("action component {component} ({name}) = {value} is masked out in this state")]
    ActionMasked { component: usize, name: String, value: usize },
    #[error("infeasible plan: {0}")]
    InfeasiblePlan(String),
    #[error("step called before reset, or after the episode ended without a reset")]
    NeedsReset,
    #[error("saved state does not fit this environment: {0}")]
    StateMismatch(String),
}

/// Scalar metrics of a step's info, visited by name for logging (`env/<name>` in TensorBoard).
/// Names are static and stable: they are the logging keys.
pub trait StepMetrics {
    fn visit_scalars(&self, visit: &mut dyn FnMut(&'static str, f64));
}

pub trait Env: Send {
    type Info: Clone + Debug + Default + Send + StepMetrics + 'static;
    /// Everything needed to continue an episode exactly: dynamic state and RNG streams.
    type State: Clone + Debug + PartialEq + Serialize + DeserializeOwned + Send + 'static;

    fn spec(&self) -> &EnvSpec;

    /// Starts an episode. `Some(seed)` reseeds every stream; `None` continues from the env's own
    /// episode stream (deterministic given the first seed). Writes the first observation and mask.
    fn reset_into(&mut self, seed: Option<u64>, obs: &mut [f32], mask: &mut [bool]) -> Self::Info;

    /// Advances one step and writes the next observation and mask.
    fn step_into(
        &mut self,
        action: &[usize],
        obs: &mut [f32],
        mask: &mut [bool],
    ) -> Result<Transition<Self::Info>, EnvError>;

    fn save_state(&self) -> Self::State;

    /// The mask of component `prefix.len()` given the values already chosen for the components
    /// before it (autoregressive masking, system-model §9: memory couples layers, so a joint
    /// plan is only guaranteed feasible when each choice is masked given the earlier ones).
    /// Writes `nvec[prefix.len()]` booleans and returns `true`; returns `false` when this
    /// environment's masks do not depend on earlier choices (use the observation's mask).
    fn conditional_mask(&self, _prefix: &[usize], _out: &mut [bool]) -> bool {
        false
    }

    /// The values the components after `prefix` take by default given it, written into `out`
    /// (one per remaining component); `false` when this environment has no such default. A
    /// hierarchical space's default completion of a split is its whole-layer plan: a hierarchy's
    /// low level starts out refining that plan instead of sampling window placements uniformly
    /// (see `splitwise_agents::hppo`). A default, not a mask: it may be infeasible.
    fn default_completion(&self, _prefix: &[usize], _out: &mut [usize]) -> bool {
        false
    }

    fn restore_state(&mut self, state: &Self::State) -> Result<(), EnvError>;

    /// The environment's expensive reward component, when it has one (a model-based agent's
    /// capability query; [`crate::expensive`]). `None` by default.
    fn expensive() -> Option<crate::expensive::ExpensiveOps<Self>>
    where
        Self: Sized,
    {
        None
    }

    fn reset(&mut self, seed: Option<u64>) -> (Observation, Self::Info) {
        let (mut features, mut mask) = self.buffers();
        let info = self.reset_into(seed, &mut features, &mut mask);
        (Observation { features, mask }, info)
    }

    fn step(&mut self, action: &[usize]) -> Result<Step<Self::Info>, EnvError> {
        let (mut features, mut mask) = self.buffers();
        let t = self.step_into(action, &mut features, &mut mask)?;
        Ok(Step {
            obs: Observation { features, mask },
            reward: t.reward,
            terminated: t.terminated,
            truncated: t.truncated,
            info: t.info,
        })
    }

    /// Zeroed observation and mask buffers of the right sizes.
    fn buffers(&self) -> (Vec<f32>, Vec<bool>) {
        let spec = self.spec();
        (vec![0.0; spec.observation.dim()], vec![false; spec.action.mask_len()])
    }
}

/// Checks `action` against the space and mask, naming the offending component.
pub fn check_action(space: &ActionSpace, action: &[usize], mask: &[bool]) -> Result<(), EnvError> {
    if action.len() != space.nvec.len() {
        return Err(EnvError::ActionLength { expected: space.nvec.len(), got: action.len() });
    }
    let mut offset = 0;
    for (k, (&a, &n)) in action.iter().zip(&space.nvec).enumerate() {
        if a >= n {
            return Err(EnvError::ActionOutOfRange { component: k, name: space.names[k].clone(), value: a, n });
        }
        if !mask[offset + a] {
            return Err(EnvError::ActionMasked { component: k, name: space.names[k].clone(), value: a });
        }
        offset += n;
    }
    Ok(())
}
