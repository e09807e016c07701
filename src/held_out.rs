//! The held-out comparison of a policy while it trains (issue 11, item 3): at each periodic
//! evaluation, the policy's time-averaged drift-plus-penalty on held-out episodes next to the
//! scenario's best static plan, its best causal baseline and the clairvoyant bound, and the
//! policy's capture of the headroom between them. The references do not change during a run, so
//! they are simulated once, at the first evaluation; the policy is simulated at every one.

use crate::eval::{entries, with_headroom};
use crate::policies::CheckpointPolicy;
use anyhow::{Context, Result};
use splitwise_agents::{Learner, LearnerState};
use splitwise_env::scenario::Scenario;
use splitwise_eval::headroom::headroom;
use splitwise_eval::report;
use splitwise_eval::runner::{self, EvalConfig, PolicyEntry, PolicyRole, ScenarioInput, SourceKind};
use std::sync::Arc;

/// Seed of the held-out episodes (never a training or evaluation seed of a run).
pub const HELD_OUT_SEED: u64 = 7_919;
/// The causal baselines a trained policy is compared with (the headroom rows are added).
pub const BASELINES: &str = "static-best,neurosurgeon,failover,dpp-one-slot";
/// Added where the scenario's outages follow a schedule ([`Scenario::has_scheduled_outages`]):
/// the rule for them (scripts/experiment.py adds the same).
pub const SCHEDULE_BASELINES: &str = "service-window";

/// The causal baselines for `scenario`: [`BASELINES`], plus [`SCHEDULE_BASELINES`] where its
/// outages follow a schedule.
pub fn baselines_for(scenario: &Scenario) -> String {
    if scenario.has_scheduled_outages() { format!("{BASELINES},{SCHEDULE_BASELINES}") } else { BASELINES.to_string() }
}
const DPP: &str = "drift_plus_penalty";
/// Below this fraction of the objective between the best static plan and the bound, a capture is
/// noise (the end-of-training report uses the same threshold).
pub const MIN_HEADROOM: f64 = 0.05;

/// A reference row: its label and mean time-averaged drift-plus-penalty.
#[derive(Clone, Debug, PartialEq)]
pub struct Reference {
    pub label: String,
    pub dpp: f64,
}

/// The references of a scenario on the held-out episodes.
#[derive(Clone, Debug, PartialEq)]
pub struct References {
    pub best_static: Reference,
    pub best_causal: Option<Reference>,
    pub bound: Reference,
}

/// One comparison of the policy being trained.
#[derive(Clone, Debug, PartialEq)]
pub struct Comparison {
    pub trained: f64,
    pub references: References,
    /// (best static − trained)/(best static − bound); NaN when the bound is less than
    /// [`MIN_HEADROOM`] of the objective below the best static plan (nothing to capture).
    pub capture: f64,
}

impl Comparison {
    /// The scalars a run logs (`held_out/…`).
    pub fn scalars(&self) -> Vec<(&'static str, f64)> {
        let r = &self.references;
        let mut v = vec![
            ("held_out/dpp_trained", self.trained),
            ("held_out/dpp_best_static", r.best_static.dpp),
            ("held_out/dpp_bound", r.bound.dpp),
        ];
        if let Some(c) = &r.best_causal {
            v.push(("held_out/dpp_best_causal", c.dpp));
        }
        if self.capture.is_finite() {
            v.push(("held_out/capture", self.capture));
        }
        v
    }

    /// One line for the console.
    pub fn line(&self, step: u64) -> String {
        let r = &self.references;
        let verdict = if self.trained < r.best_static.dpp { "beats" } else { "does not beat" };
        format!(
            "step {step}: held-out Δ + V·p {:.4} ({verdict} the best static plan `{}` {:.4}; bound `{}` {:.4}{}){}",
            self.trained,
            r.best_static.label,
            r.best_static.dpp,
            r.bound.label,
            r.bound.dpp,
            r.best_causal.as_ref().map_or(String::new(), |c| format!("; best causal `{}` {:.4}", c.label, c.dpp)),
            if self.capture.is_finite() {
                format!(", capture {:.2}", self.capture)
            } else {
                format!(", no headroom to capture (< {:.0} % of the objective)", 100.0 * MIN_HEADROOM)
            }
        )
    }
}

/// The held-out episodes of one scenario.
pub struct HeldOut {
    input: ScenarioInput,
    episodes: u32,
    references: Option<References>,
}

impl HeldOut {
    pub fn new(scenario: Arc<Scenario>, source: String, episodes: u32) -> Self {
        Self {
            input: ScenarioInput { source, source_kind: SourceKind::TrainingConfig, scenario },
            episodes,
            references: None,
        }
    }

    fn config(&self) -> EvalConfig {
        EvalConfig { episodes: self.episodes, seed: HELD_OUT_SEED, slots: None, trace_episodes: 0 }
    }

    /// The references, simulated on the first call.
    pub fn references(&mut self) -> Result<&References> {
        if self.references.is_none() {
            let prepared = runner::prepare(
                vec![self.input.clone()],
                entries(
                    &with_headroom(&baselines_for(&self.input.scenario), false),
                    splitwise_agents::ComputeDevice::Cpu,
                )?,
                self.config(),
            )?;
            let evaluation = prepared.run(&mut |_| {})?;
            let s = evaluation.scenarios.first().context("the held-out evaluation ran no scenario")?;
            let (rows, _) = report::rows(s);
            let h = headroom(&rows).context("the held-out evaluation has no static plan or bound row")?;
            let reference = |label: &str| {
                rows.iter()
                    .find(|r| r.label == label)
                    .map(|r| Reference { label: label.to_string(), dpp: r.stat(DPP).mean })
            };
            self.references = Some(References {
                best_static: reference(&h.best_static).context("the best static row")?,
                best_causal: h.best_causal.as_deref().and_then(reference),
                bound: reference(&h.clairvoyant).context("the bound's row")?,
            });
        }
        Ok(self.references.as_ref().expect("set above"))
    }

    /// The policy `state` holds, on the held-out episodes, against the references.
    pub fn compare(&mut self, state: &LearnerState) -> Result<Comparison> {
        let references = self.references()?.clone();
        let state = state.clone();
        let entry = PolicyEntry {
            label: "trained".into(),
            spec: "the policy being trained".into(),
            role: PolicyRole::default(),
            factory: Box::new(move |_| {
                let learner = Learner::from_state(&state)?;
                Ok(Box::new(CheckpointPolicy::from_learner("trained", learner)) as Box<_>)
            }),
        };
        let evaluation = runner::prepare(vec![self.input.clone()], vec![entry], self.config())?.run(&mut |_| {})?;
        let s = evaluation.scenarios.first().context("the held-out evaluation ran no scenario")?;
        let (rows, _) = report::rows(s);
        let trained = rows.first().context("the trained row")?.stat(DPP).mean;
        let (sv, bv) = (references.best_static.dpp, references.bound.dpp);
        let capture = if sv - bv < MIN_HEADROOM * sv.abs() { f64::NAN } else { (sv - trained) / (sv - bv) };
        Ok(Comparison { trained, references, capture })
    }
}
