//! The native vector env: all members stepped by one call into Rust (the env crate's `VecEnv`,
//! same-step autoreset keeping the final observation), batched NumPy arrays out. The Python
//! `SplitwiseVectorEnv` turns them into Gymnasium's `VectorEnv` step tuple and info dict.

use crate::erased::DynVecEnv;
use crate::{ActionError, StateError, action_indices, config_error, env_error_with, make, spec_dict};
use numpy::{PyArray, PyArray1, PyArray2, PyArrayMethods, PyUntypedArrayMethods, ToPyArray};
use pyo3::prelude::*;
use pyo3::sync::MutexExt;
use pyo3::types::PyDict;
use splitwise_env::vector::Autoreset;
use std::sync::Mutex;

struct Members {
    venv: Box<dyn DynVecEnv>,
    actions: Vec<usize>,
    /// Info values, names × members (one contiguous row per name: Python zips names with rows).
    infos: Vec<f64>,
}

/// The arrays a `copy=False` vector env writes every step into and returns (zero-copy for the
/// caller: valid until the next step, as Gymnasium's `SyncVectorEnv(copy=False)`).
struct Buffers {
    obs: Py<PyArray2<f32>>,
    masks: Py<PyArray2<bool>>,
    rewards: Py<PyArray1<f64>>,
    terminated: Py<PyArray1<bool>>,
    truncated: Py<PyArray1<bool>>,
    infos: Py<PyArray2<f64>>,
}

#[pyclass(module = "splitwise_gym._native")]
pub struct NativeVecEnv {
    inner: Mutex<Members>,
    info_names: Vec<&'static str>,
    /// `None`: fresh arrays every call (the default, `copy=True`).
    buffers: Option<Buffers>,
}

impl NativeVecEnv {
    fn current<'py>(&self, py: Python<'py>, m: &Members) -> PyResult<VecResetOut<'py>> {
        let spec = m.venv.spec();
        let (d, k) = (spec.observation.dim(), spec.action.mask_len());
        Ok(match &self.buffers {
            Some(b) => (fill(py, &b.obs, m.venv.obs())?.into_any(), fill(py, &b.masks, m.venv.masks())?.into_any()),
            None => (matrix(py, m.venv.obs(), d)?.into_any(), matrix(py, m.venv.masks(), k)?.into_any()),
        })
    }

    /// The members, waiting detached from the interpreter if another thread holds them: that
    /// thread released the GIL inside `step` or `reset` and needs it back to finish, so waiting
    /// attached would deadlock.
    fn lock(&self, py: Python<'_>) -> std::sync::MutexGuard<'_, Members> {
        self.inner.lock_py_attached(py).unwrap_or_else(|p| p.into_inner())
    }
}

fn matrix<'py, T: numpy::Element + Copy>(
    py: Python<'py>,
    data: &[T],
    cols: usize,
) -> PyResult<Bound<'py, PyArray2<T>>> {
    let rows = data.len().checked_div(cols).unwrap_or(0);
    // One array object made at its shape and filled by one copy (from_slice then reshape makes
    // two objects).
    let view = numpy::ndarray::ArrayView2::from_shape((rows, cols), data).map_err(|e| {
        pyo3::exceptions::PyValueError::new_err(format!("{} values do not form rows of {cols}: {e}", data.len()))
    })?;
    Ok(view.to_pyarray(py))
}

/// `data` into `array` (same length), or a fresh array shaped like it when there is no buffer.
fn fill<'py, T: numpy::Element + Copy, D: numpy::ndarray::Dimension>(
    py: Python<'py>,
    array: &Py<PyArray<T, D>>,
    data: &[T],
) -> PyResult<Bound<'py, PyArray<T, D>>> {
    let a = array.bind(py).clone();
    // SAFETY: the array is this env's own buffer. No Rust reference to it lives outside this
    // copy (the action slice `action_indices` reads is dropped before any `fill`, even when a caller
    // passes a view of this buffer as actions), and the module declares that it needs the GIL
    // (`gil_used = true` in lib.rs), which is held here, so no Python thread touches the buffer
    // during the copy. What the unchecked write gives up: numpy's cross-extension borrow
    // tracking (another Rust extension holding a borrow of this buffer while calling into this
    // env would not be refused) and the `writeable` flag (a caller who clears it on a returned
    // buffer still sees it rewritten by the next step, as documented for `copy=False`).
    // Unchecked because the tracking (a shared hash map per access) measured ~0.1 µs per array
    // (BENCHMARKS.md, "Python bindings").
    unsafe { a.as_slice_mut() }?.copy_from_slice(data);
    Ok(a)
}

/// What `reset` returns: observations and masks (members × …).
type VecResetOut<'py> = (Bound<'py, PyAny>, Bound<'py, PyAny>);

/// What `step` returns: obs, masks, rewards, terminated, truncated, infos (names × members),
/// and, when a member finished, final observations (members × obs dim, rows valid where
/// `has_final`) and has_final (else `None`, `None`).
type VecStepOut<'py> = (
    Bound<'py, PyAny>,
    Bound<'py, PyAny>,
    Bound<'py, PyAny>,
    Bound<'py, PyAny>,
    Bound<'py, PyAny>,
    Bound<'py, PyAny>,
    Option<Bound<'py, PyArray2<f32>>>,
    Option<Bound<'py, PyArray1<bool>>>,
);

#[pymethods]
impl NativeVecEnv {
    /// `copy=False`: every call writes into the same arrays and returns them (valid until the
    /// next call); `copy=True`: fresh arrays every call. `next_step`: a finished member is reset
    /// by the following step (its action ignored) instead of in the step that ends it.
    #[new]
    #[pyo3(signature = (kind, num_envs, scenario=None, options=None, copy=true, next_step=false))]
    fn new(
        py: Python<'_>,
        kind: &str,
        num_envs: usize,
        scenario: Option<&str>,
        options: Option<&str>,
        copy: bool,
        next_step: bool,
    ) -> PyResult<Self> {
        let desc = make::describe(kind, scenario, options).map_err(config_error)?;
        let mode = if next_step { Autoreset::NextStep } else { Autoreset::SameStep };
        let venv = make::vector(&desc, num_envs, mode).map_err(config_error)?;
        let info_names = venv.info_names();
        let spec = venv.spec();
        let (n, d, m, k) = (num_envs, spec.observation.dim(), spec.action.mask_len(), info_names.len());
        let buffers = (!copy).then(|| Buffers {
            obs: PyArray2::zeros(py, [n, d], false).unbind(),
            masks: PyArray2::zeros(py, [n, m], false).unbind(),
            rewards: PyArray1::zeros(py, n, false).unbind(),
            terminated: PyArray1::zeros(py, n, false).unbind(),
            truncated: PyArray1::zeros(py, n, false).unbind(),
            infos: PyArray2::zeros(py, [k, n], false).unbind(),
        });
        let members = Members { venv, actions: Vec::new(), infos: vec![0.0; k * n] };
        Ok(Self { inner: Mutex::new(members), info_names, buffers })
    }

    fn spec<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        spec_dict(py, self.lock(py).venv.spec())
    }

    #[getter]
    fn num_envs(&self, py: Python<'_>) -> usize {
        self.lock(py).venv.n_envs()
    }

    /// The names of the info rows `step` returns, in order.
    #[getter]
    fn info_names(&self) -> Vec<&'static str> {
        self.info_names.clone()
    }

    /// `(obs, masks)`; member `i` is seeded with `derive_seed(seed, i)`; `seed=None` continues
    /// every member's own episode stream.
    #[pyo3(signature = (seed=None))]
    fn reset<'py>(&self, py: Python<'py>, seed: Option<u64>) -> PyResult<VecResetOut<'py>> {
        let mut m = self.lock(py);
        let venv = &mut m.venv;
        py.detach(|| venv.reset(seed));
        self.current(py, &m)
    }

    /// The current observations and masks (after `set_state`, say).
    fn observations<'py>(&self, py: Python<'py>) -> PyResult<VecResetOut<'py>> {
        let m = self.lock(py);
        self.current(py, &m)
    }

    /// Steps every member with its row of `actions` (members × components).
    fn step<'py>(&self, py: Python<'py>, actions: &Bound<'py, PyArray2<i64>>) -> PyResult<VecStepOut<'py>> {
        let mut guard = self.lock(py);
        let m = &mut *guard;
        let (n, k) = (m.venv.n_envs(), m.venv.spec().action.n_components());
        let shape = actions.shape();
        if shape != [n, k] {
            return Err(ActionError::new_err(format!(
                "actions have shape {shape:?}; this vector env needs ({n}, {k}) (members × action components)"
            )));
        }
        action_indices(actions, m.venv.spec(), &mut m.actions)?;
        let (venv, acts) = (&mut m.venv, &m.actions);
        py.detach(|| venv.step(acts))
            .map_err(|e| env_error_with(&e.error, format!("vector env member {}: {}", e.env_index, e.error)))?;
        let spec = m.venv.spec();
        let (d, mk) = (spec.observation.dim(), spec.action.mask_len());
        m.venv.info_columns(&mut m.infos);
        let finished = (0..n).any(|i| m.venv.final_obs(i).is_some());
        let (final_obs, has_final) = if finished {
            let mut final_obs = vec![0.0f32; n * d];
            let mut has_final = vec![false; n];
            for i in 0..n {
                if let Some(f) = m.venv.final_obs(i) {
                    final_obs[i * d..(i + 1) * d].copy_from_slice(f);
                    has_final[i] = true;
                }
            }
            (Some(matrix(py, &final_obs, d)?), Some(PyArray1::from_vec(py, has_final)))
        } else {
            (None, None)
        };
        let v = &m.venv;
        Ok(match &self.buffers {
            Some(b) => (
                fill(py, &b.obs, v.obs())?.into_any(),
                fill(py, &b.masks, v.masks())?.into_any(),
                fill(py, &b.rewards, v.rewards())?.into_any(),
                fill(py, &b.terminated, v.terminated())?.into_any(),
                fill(py, &b.truncated, v.truncated())?.into_any(),
                fill(py, &b.infos, &m.infos)?.into_any(),
                final_obs,
                has_final,
            ),
            None => (
                matrix(py, v.obs(), d)?.into_any(),
                matrix(py, v.masks(), mk)?.into_any(),
                PyArray1::from_slice(py, v.rewards()).into_any(),
                PyArray1::from_slice(py, v.terminated()).into_any(),
                PyArray1::from_slice(py, v.truncated()).into_any(),
                matrix(py, &m.infos, n)?.into_any(),
                final_obs,
                has_final,
            ),
        })
    }

    fn get_state(&self, py: Python<'_>) -> PyResult<String> {
        self.lock(py).venv.save_json().map_err(StateError::new_err)
    }

    fn set_state(&self, py: Python<'_>, state: &str) -> PyResult<()> {
        self.lock(py).venv.restore_json(state).map_err(StateError::new_err)
    }
}
