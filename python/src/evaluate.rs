//! A Python policy (any callable `(obs, mask) -> action`) evaluated by the eval crate's runner
//! beside our baselines, on the same seeded episodes: the same report folder and `metrics.json`
//! as `splitwise eval` (headroom, capture, 95 % intervals).

use crate::{SplitwiseError, config_error, make};
use numpy::PyArray1;
use pyo3::prelude::*;
use pyo3::types::PyAnyMethods;
use splitwise_env::policy::{Decision, DecisionContext, Policy};
use splitwise_eval::policy_specs;
use splitwise_eval::report::{self, Header};
use splitwise_eval::runner::{self, EvalConfig, PolicyEntry, PolicyRole, ScenarioInput, SourceKind};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

/// The first Python exception a policy raised (the runner's `Policy::decide` cannot fail, so the
/// adapter stores it, returns an out-of-range action that ends the evaluation with an env
/// error, and `evaluate` raises the stored exception instead).
type Failure = Arc<Mutex<Option<PyErr>>>;

struct PyPolicy {
    label: String,
    callable: Arc<Py<PyAny>>,
    components: usize,
    failure: Failure,
}

impl PyPolicy {
    fn fail(&self, err: PyErr) -> Decision {
        let mut slot = self.failure.lock().unwrap_or_else(|p| p.into_inner());
        slot.get_or_insert(err);
        Decision::Action(vec![usize::MAX; self.components])
    }
}

fn action_of(result: &Bound<'_, PyAny>, components: usize) -> PyResult<Vec<usize>> {
    let values: Vec<i64> = match result.extract::<i64>() {
        Ok(v) => vec![v],
        Err(_) => result.extract::<Vec<i64>>().map_err(|_| {
            pyo3::exceptions::PyTypeError::new_err(format!(
                "a policy must return an int or a sequence of {components} ints, got {}",
                result.get_type().name().map(|n| n.to_string()).unwrap_or_else(|_| "?".into())
            ))
        })?,
    };
    if values.len() != components {
        return Err(pyo3::exceptions::PyValueError::new_err(format!(
            "the policy returned {} values; the action space has {components} components",
            values.len()
        )));
    }
    values
        .into_iter()
        .map(|v| {
            usize::try_from(v).map_err(|_| {
                pyo3::exceptions::PyValueError::new_err(format!("the policy returned a negative action {v}"))
            })
        })
        .collect()
}

impl Policy for PyPolicy {
    fn name(&self) -> String {
        self.label.clone()
    }

    fn reset(&mut self, seed: u64) {
        Python::attach(|py| {
            let callable = self.callable.bind(py);
            if let Ok(reset) = callable.getattr("reset")
                && reset.is_callable()
                && let Err(e) = reset.call1((seed,))
            {
                self.fail(e);
            }
        })
    }

    fn decide(&mut self, ctx: &DecisionContext<'_>) -> Decision {
        if self.failure.lock().map(|f| f.is_some()).unwrap_or(true) {
            return Decision::Action(vec![usize::MAX; self.components]);
        }
        Python::attach(|py| {
            let obs = PyArray1::from_slice(py, ctx.obs);
            let mask = PyArray1::from_slice(py, ctx.mask);
            match self.callable.bind(py).call1((obs, mask)).and_then(|r| action_of(&r, self.components)) {
                Ok(a) => Decision::Action(a),
                Err(e) => self.fail(e),
            }
        })
    }
}

/// Evaluates `policies` (label → callable) beside the `baselines` specs on `episodes` seeded
/// episodes of `scenario`; writes the report folder to `out` when given; returns metrics.json.
#[pyfunction]
#[pyo3(signature = (scenario, policies, baselines, episodes, seed, overrides=None, slots=None, no_headroom=false, out=None, command=String::new()))]
#[allow(clippy::too_many_arguments)]
pub fn evaluate(
    py: Python<'_>,
    scenario: &str,
    policies: Vec<(String, Py<PyAny>)>,
    baselines: &str,
    episodes: u32,
    seed: u64,
    overrides: Option<&str>,
    slots: Option<u64>,
    no_headroom: bool,
    out: Option<PathBuf>,
    command: String,
) -> PyResult<String> {
    let sc = make::scenario(scenario, overrides).map_err(config_error)?;
    if let Some(out) = &out {
        report::check_output_dir(out).map_err(config_error)?;
    }
    let mut entries: Vec<PolicyEntry> =
        policy_specs::entries(&policy_specs::with_headroom(baselines, no_headroom), None).map_err(config_error)?;
    let failure: Failure = Arc::new(Mutex::new(None));
    for (label, callable) in policies {
        if !callable.bind(py).is_callable() {
            return Err(pyo3::exceptions::PyTypeError::new_err(format!("policy {label:?} is not callable")));
        }
        let callable = Arc::new(callable);
        let failure = failure.clone();
        let spec = format!("python:{label}");
        let name = label.clone();
        entries.insert(
            0,
            PolicyEntry {
                label,
                spec,
                role: PolicyRole { learned: true, ..PolicyRole::default() },
                factory: Box::new(move |ctx| {
                    Ok(Box::new(PyPolicy {
                        label: name.clone(),
                        callable: callable.clone(),
                        components: ctx.env_spec.action.n_components(),
                        failure: failure.clone(),
                    }) as Box<dyn Policy>)
                }),
            },
        );
    }
    let input = ScenarioInput { source: scenario.to_string(), source_kind: SourceKind::ScenarioFile, scenario: sc };
    let config = EvalConfig { slots, ..EvalConfig::new(episodes, seed) };
    let prepared = runner::prepare(vec![input], entries, config).map_err(config_error)?;
    let result = py.detach(|| prepared.run(&mut |_| {}));
    if let Some(err) = failure.lock().unwrap_or_else(|p| p.into_inner()).take() {
        return Err(err);
    }
    let evaluation = result.map_err(|e| SplitwiseError::new_err(format!("{e:#}")))?;
    let header = Header { command, version: format!("splitwise-gym {}", env!("CARGO_PKG_VERSION")) };
    if let Some(out) = &out {
        py.detach(|| report::write_outputs(&evaluation, &header, out))
            .map_err(|e| SplitwiseError::new_err(format!("{e:#}")))?;
    }
    report::metrics_json(&evaluation, &header).map_err(|e| SplitwiseError::new_err(format!("{e:#}")))
}
