//! `splitwise_gym._native`: the env crate's environments, vector env and the eval crate's
//! evaluator, for Python. The Gymnasium classes (spaces, seeding, wrappers, registration) are
//! Python code in `splitwise_gym/`; this module moves arrays across the boundary.
//!
//! Arrays: every array returned is a fresh NumPy array (a copy of the Rust buffers), so no
//! caller ever sees an array change under it (Gymnasium's `check_env` checks that reset and step
//! do not reuse their arrays). A copy of a few hundred floats costs far less than one simulated
//! slot (BENCHMARKS.md, "Python bindings").
//!
//! The GIL is released while Rust steps a vector env or runs an evaluation, so Python threads
//! (and Ray's actors in one process) keep running.

mod bench;
mod erased;
mod evaluate;
mod make;
mod vector;

use erased::{DynEnv, Scalars};
use numpy::{PyArray1, PyArrayMethods, PyUntypedArrayMethods};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};
use splitwise_env::api::{EnvError, EnvSpec};
use std::sync::Mutex;

pyo3::create_exception!(
    _native,
    SplitwiseError,
    PyValueError,
    "Base of every error the splitwise environments raise (a ValueError)."
);
pyo3::create_exception!(
    _native,
    ConfigError,
    SplitwiseError,
    "A scenario, override or option is invalid; the message names the file or field, the value and what is allowed."
);
pyo3::create_exception!(
    _native,
    ActionError,
    SplitwiseError,
    "An action is outside the action space or masked out in this state."
);
pyo3::create_exception!(_native, ResetNeeded, SplitwiseError, "step() before reset(), or after the episode ended.");
pyo3::create_exception!(_native, StateError, SplitwiseError, "A saved state does not fit this environment.");

/// An anyhow error (config, scenario) as `ConfigError` with its whole context chain.
pub(crate) fn config_error(e: anyhow::Error) -> PyErr {
    ConfigError::new_err(format!("{e:#}"))
}

pub(crate) fn env_error(e: &EnvError) -> PyErr {
    env_error_with(e, e.to_string())
}

/// The exception class of an env error, with `message`.
pub(crate) fn env_error_with(e: &EnvError, message: String) -> PyErr {
    match e {
        EnvError::NeedsReset => ResetNeeded::new_err(message),
        EnvError::StateMismatch(_) => StateError::new_err(message),
        EnvError::ActionLength { .. }
        | EnvError::ActionOutOfRange { .. }
        | EnvError::ActionMasked { .. }
        | EnvError::InfeasiblePlan(_) => ActionError::new_err(message),
    }
}

/// `i64` action values (NumPy's default integer) as indices; a negative value is an
/// `ActionError` naming the component.
pub(crate) fn indices(values: &[i64], spec: &EnvSpec, offset: usize, out: &mut Vec<usize>) -> PyResult<()> {
    out.clear();
    let k = spec.action.n_components();
    for (j, &v) in values.iter().enumerate() {
        let c = (offset + j) % k;
        let index = usize::try_from(v).map_err(|_| {
            ActionError::new_err(format!(
                "action component {c} ({}) = {v} is outside 0..{}",
                spec.action.names[c], spec.action.nvec[c]
            ))
        })?;
        out.push(index);
    }
    Ok(())
}

/// The `i64` action values of an array of any layout (a single env's action, a vector env's
/// members × components) as indices, in logical row-major order.
pub(crate) fn action_indices<D: numpy::ndarray::Dimension>(
    actions: &Bound<'_, numpy::PyArray<i64, D>>,
    spec: &EnvSpec,
    out: &mut Vec<usize>,
) -> PyResult<()> {
    // SAFETY: read with the GIL held (the module needs it: `gil_used = true`), so no Python
    // thread writes the array meanwhile, and the slice is dropped when `indices` returns, before
    // an env writes any of its own buffers (a caller may pass a view of one of them). Unchecked
    // for the cost of numpy's borrow tracking (BENCHMARKS.md, "Python bindings").
    let contiguous = if actions.is_c_contiguous() { unsafe { actions.as_slice() }.ok() } else { None };
    match contiguous {
        Some(values) => indices(values, spec, 0, out),
        // Any other layout (Fortran order, strided or misaligned views): a Fortran-ordered array
        // is contiguous too, so `as_slice` alone would read it by columns.
        None => indices(&actions.try_readonly()?.as_array().iter().copied().collect::<Vec<_>>(), spec, 0, out),
    }
}

/// The static description of an environment as a dict (the Python side builds spaces from it).
pub(crate) fn spec_dict<'py>(py: Python<'py>, spec: &EnvSpec) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("id", &spec.id)?;
    d.set_item("layout", &spec.observation.layout)?;
    d.set_item("fingerprint", spec.observation.fingerprint())?;
    let features = PyList::empty(py);
    for f in &spec.observation.features {
        let fd = PyDict::new(py);
        fd.set_item("name", &f.name)?;
        fd.set_item("low", f.low)?;
        fd.set_item("high", f.high)?;
        fd.set_item("unit", &f.unit)?;
        fd.set_item("description", &f.description)?;
        features.append(fd)?;
    }
    d.set_item("features", features)?;
    d.set_item("nvec", spec.action.nvec.clone())?;
    d.set_item("action_names", spec.action.names.clone())?;
    d.set_item("max_episode_steps", spec.max_episode_steps)?;
    Ok(d)
}

pub(crate) fn info_dict<'py>(py: Python<'py>, info: &Scalars) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    for (name, value) in info {
        d.set_item(*name, *value)?;
    }
    Ok(d)
}

struct Single {
    env: Box<dyn DynEnv>,
    obs: Vec<f32>,
    mask: Vec<bool>,
    action: Vec<usize>,
}

/// One environment (the Python `SplitwiseEnv` wraps it).
#[pyclass(module = "splitwise_gym._native")]
struct NativeEnv {
    inner: Mutex<Single>,
}

impl NativeEnv {
    fn lock(&self) -> std::sync::MutexGuard<'_, Single> {
        // A panic inside the env would poison the lock; the state is still consistent enough to
        // report on (and every env error is a Result, not a panic).
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

type ResetOut<'py> = (Bound<'py, PyArray1<f32>>, Bound<'py, PyArray1<bool>>, Bound<'py, PyDict>);
type StepOut<'py> = (Bound<'py, PyArray1<f32>>, Bound<'py, PyArray1<bool>>, f64, bool, bool, Bound<'py, PyDict>);

#[pymethods]
impl NativeEnv {
    /// `kind`: partition | cartpole | als; `scenario`: a TOML path or a shipped name;
    /// `options`: JSON of the scenario overrides (partition) or ALS's parameters.
    #[new]
    #[pyo3(signature = (kind, scenario=None, options=None))]
    fn new(kind: &str, scenario: Option<&str>, options: Option<&str>) -> PyResult<Self> {
        let desc = make::describe(kind, scenario, options).map_err(config_error)?;
        let env = make::single(&desc);
        let (d, m) = (env.spec().observation.dim(), env.spec().action.mask_len());
        Ok(Self { inner: Mutex::new(Single { env, obs: vec![0.0; d], mask: vec![false; m], action: Vec::new() }) })
    }

    fn spec<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        spec_dict(py, self.lock().env.spec())
    }

    /// `(obs, mask, info)`; `seed=None` continues from the env's own episode stream.
    #[pyo3(signature = (seed=None))]
    fn reset<'py>(&self, py: Python<'py>, seed: Option<u64>) -> PyResult<ResetOut<'py>> {
        let mut s = self.lock();
        let Single { env, obs, mask, .. } = &mut *s;
        let info = env.reset_into(seed, obs, mask);
        Ok((PyArray1::from_slice(py, obs), PyArray1::from_slice(py, mask), info_dict(py, &info)?))
    }

    /// `(obs, mask, reward, terminated, truncated, info)` for one action (one value per
    /// component).
    fn step<'py>(&self, py: Python<'py>, action: &Bound<'py, PyArray1<i64>>) -> PyResult<StepOut<'py>> {
        let mut s = self.lock();
        let Single { env, obs, mask, action: buf } = &mut *s;
        action_indices(action, env.spec(), buf)?;
        let t = env.step_into(buf, obs, mask).map_err(|e| env_error(&e))?;
        Ok((
            PyArray1::from_slice(py, obs),
            PyArray1::from_slice(py, mask),
            t.reward,
            t.terminated,
            t.truncated,
            info_dict(py, &t.info)?,
        ))
    }

    /// The mask of component `len(prefix)` given the earlier components' values (the env's
    /// autoregressive masks), or `None` where masks do not depend on earlier choices.
    fn conditional_mask<'py>(
        &self,
        py: Python<'py>,
        prefix: Vec<usize>,
    ) -> PyResult<Option<Bound<'py, PyArray1<bool>>>> {
        let s = self.lock();
        let spec = s.env.spec();
        let k = prefix.len();
        if k >= spec.action.n_components() {
            return Err(ActionError::new_err(format!(
                "prefix has {k} values; the action space has {} components",
                spec.action.n_components()
            )));
        }
        if let Some((j, (&v, &n))) = prefix.iter().zip(&spec.action.nvec).enumerate().find(|(_, (v, n))| **v >= **n) {
            return Err(ActionError::new_err(format!("prefix[{j}] = {v} is outside 0..{n}")));
        }
        let mut out = vec![false; spec.action.nvec[k]];
        Ok(s.env.conditional_mask(&prefix, &mut out).then(|| PyArray1::from_vec(py, out)))
    }

    /// Everything needed to continue the episode exactly (JSON text).
    fn get_state(&self) -> PyResult<String> {
        self.lock().env.save_json().map_err(StateError::new_err)
    }

    /// Restores a `get_state()` of an environment of the same kind and scenario. The caller's
    /// observation is not part of the state: the Python wrapper keeps it beside.
    fn set_state(&self, state: &str) -> PyResult<()> {
        self.lock().env.restore_json(state).map_err(StateError::new_err)
    }
}

/// The seed of vector member `index` when the vector env is reset with `seed` (and of episode
/// `index` of an evaluation seeded with `seed`).
#[pyfunction]
fn derive_seed(seed: u64, index: u64) -> u64 {
    splitwise_env::rng::derive_seed(seed, index)
}

// The vector env reads and writes NumPy buffers without numpy's borrow tracking, relying on the
// GIL (python/src/vector.rs): on a free-threaded build the interpreter keeps the GIL enabled for
// this module.
#[pymodule(gil_used = true)]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add_class::<NativeEnv>()?;
    m.add_class::<vector::NativeVecEnv>()?;
    m.add_function(wrap_pyfunction!(derive_seed, m)?)?;
    m.add_function(wrap_pyfunction!(evaluate::evaluate, m)?)?;
    m.add_function(wrap_pyfunction!(bench::bench_rust_vector, m)?)?;
    m.add("SplitwiseError", py.get_type::<SplitwiseError>())?;
    m.add("ConfigError", py.get_type::<ConfigError>())?;
    m.add("ActionError", py.get_type::<ActionError>())?;
    m.add("ResetNeeded", py.get_type::<ResetNeeded>())?;
    m.add("StateError", py.get_type::<StateError>())?;
    m.add("SCENARIOS", make::shipped_names())?;
    // (name, what it takes) of each keyword option of a partition scenario.
    m.add("PARTITION_OPTIONS", splitwise_env::scenario::ScenarioOverrides::FIELDS.to_vec())?;
    m.add("KINDS", make::KINDS.iter().map(|(k, h)| (*k, *h)).collect::<Vec<_>>())?;
    let notices = PyDict::new(py);
    for (path, text) in make::shipped::NOTICES {
        notices.set_item(format!("configs/{path}"), *text)?;
    }
    m.add("NOTICES", notices)?;
    m.add("BASELINES", splitwise_eval::baselines::extra_names())?;
    m.add("VERSION", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
