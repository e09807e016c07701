//! The Rust reference of the bindings' overhead benchmark (`scripts/bench_python_bindings.py`):
//! the env crate's vector env stepped through an action sequence in a plain Rust loop, timed in
//! Rust, in the same process and build as the Python loops it is compared with.

use crate::{ActionError, config_error, env_error_with, make};
use numpy::{PyReadonlyArray3, PyUntypedArrayMethods};
use pyo3::prelude::*;
use splitwise_env::vector::Autoreset;
use std::time::Instant;

/// Seconds to reset a `num_envs` vector env with `seed` and step it through `actions`
/// (steps × members × components); the reset is not timed.
#[pyfunction]
#[pyo3(signature = (kind, num_envs, seed, actions, scenario=None, options=None))]
pub fn bench_rust_vector(
    py: Python<'_>,
    kind: &str,
    num_envs: usize,
    seed: u64,
    actions: PyReadonlyArray3<'_, i64>,
    scenario: Option<&str>,
    options: Option<&str>,
) -> PyResult<f64> {
    let desc = make::describe(kind, scenario, options).map_err(config_error)?;
    let mut venv = make::vector(&desc, num_envs, Autoreset::SameStep).map_err(config_error)?;
    let shape = actions.shape().to_vec();
    let k = venv.spec().action.n_components();
    if shape.len() != 3 || shape[1] != num_envs || shape[2] != k {
        return Err(ActionError::new_err(format!("actions have shape {shape:?}; need (steps, {num_envs}, {k})")));
    }
    let flat: Vec<usize> = actions.as_array().iter().map(|&v| usize::try_from(v).unwrap_or(usize::MAX)).collect();
    let per_step = num_envs * k;
    py.detach(|| {
        venv.reset(Some(seed));
        let start = Instant::now();
        for step in flat.chunks(per_step) {
            venv.step(step)
                .map_err(|e| (e.error.clone(), format!("vector env member {}: {}", e.env_index, e.error)))?;
        }
        Ok(start.elapsed().as_secs_f64())
    })
    .map_err(|(e, msg)| env_error_with(&e, msg))
}
