//! Expensive reward components (issue 13): a part of the reward that in practice is a costly
//! measurement (a perplexity run, a hardware-in-the-loop latency) rather than a formula. An
//! environment that has one says which step measured it, with what inputs, and can be rebuilt with
//! a model standing in for the measurement (a learned surrogate, a table, an external command), so
//! a model-based agent can train on the model and count the real measurements it spends.

use crate::api::Env;
use std::fmt::Debug;
use std::sync::Arc;

/// A model of the expensive component: its value for a row of inputs (the same features the
/// environment reports with each measurement). Deterministic for the same inputs.
pub trait ComponentModel: Send + Sync + Debug {
    fn value(&self, inputs: &[f32]) -> f64;
}

pub trait ExpensiveReward: Env + Sized {
    /// Number of the component model's inputs.
    fn component_inputs(&self) -> usize;
    /// The measurements the step with `info` made (none, one or several): each one's inputs
    /// appended to `inputs` ([`Self::component_inputs`] values per measurement) and its measured
    /// value to `values`. A step may keep fewer than it counts in [`Self::evaluations`] (a
    /// bounded record); those were still spent.
    fn measurements(info: &Self::Info, inputs: &mut Vec<f32>, values: &mut Vec<f64>);
    /// How many evaluations of the expensive component the step with `info` made.
    fn evaluations(info: &Self::Info) -> u32;
    /// The same environment (same configuration, fresh state) with `model` in place of the
    /// measurement.
    fn with_component_model(&self, model: Arc<dyn ComponentModel>) -> Self;
}

/// [`ExpensiveReward`] as plain functions: the capability an environment advertises through
/// [`Env::expensive`], so code generic over any [`Env`] (the app's training loop, the agent
/// registry) can ask at run time whether an environment has an expensive component, instead of
/// being written once per environment type.
pub struct ExpensiveOps<E: Env> {
    pub component_inputs: fn(&E) -> usize,
    pub measurements: fn(&E::Info, &mut Vec<f32>, &mut Vec<f64>),
    pub evaluations: fn(&E::Info) -> u32,
    pub with_component_model: fn(&E, Arc<dyn ComponentModel>) -> E,
}

impl<E: ExpensiveReward> ExpensiveOps<E> {
    /// The operations of an environment that implements [`ExpensiveReward`].
    pub fn of() -> Self {
        Self {
            component_inputs: E::component_inputs,
            measurements: E::measurements,
            evaluations: E::evaluations,
            with_component_model: E::with_component_model,
        }
    }
}
