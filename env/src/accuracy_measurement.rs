//! The partition environment's expensive reward component (issue 13): the accuracy loss of a
//! request's tensor crossings. In practice it is a measurement (a perplexity run of the model
//! split at that depth, its boundary quantised to that precision, the transfer erasing that
//! share of the hidden state; system-model §5), not a formula; here the formula of
//! [`crate::accuracy`] answers unless a model stands in for it
//! ([`PartitionEnv::with_accuracy_model`]). Every crossing of every started request is one
//! evaluation, counted in [`StepInfo::expensive_evaluations`]; a model-based agent learns the
//! function from the ones it saw and trains on the environment with its surrogate in place.
//!
//! Inputs of a measurement: (boundary precision in bits, relative depth of the crossing in
//! [0, 1], the request's mean erasure rate); value: that crossing's accuracy loss.

use crate::expensive::{ComponentModel, ExpensiveReward};
use crate::partition::{PartitionEnv, StepInfo};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// Measurements a step keeps (inputs and value) for a model-based agent; the step counts all
/// of them. Enough for the shipped scenarios' slots (a few requests of one or two crossings).
pub const MAX_KEPT_MEASUREMENTS: usize = 8;
/// Inputs per measurement.
pub const ACCURACY_INPUTS: usize = 3;

/// One evaluation of a crossing's accuracy loss.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct AccuracyMeasurement {
    /// Boundary precision in bits, relative depth of the crossing, mean erasure rate.
    pub inputs: [f32; ACCURACY_INPUTS],
    pub loss: f64,
}

impl AccuracyMeasurement {
    pub fn inputs(bits: u8, depth_fraction: f64, erasure_rate: f64) -> [f32; ACCURACY_INPUTS] {
        [f32::from(bits), depth_fraction as f32, erasure_rate as f32]
    }
}

impl ExpensiveReward for PartitionEnv {
    fn component_inputs(&self) -> usize {
        ACCURACY_INPUTS
    }

    fn measurements(info: &StepInfo, inputs: &mut Vec<f32>, values: &mut Vec<f64>) {
        let kept = (info.expensive_evaluations as usize).min(MAX_KEPT_MEASUREMENTS);
        for m in &info.accuracy_measurements[..kept] {
            inputs.extend_from_slice(&m.inputs);
            values.push(m.loss);
        }
    }

    fn evaluations(info: &StepInfo) -> u32 {
        info.expensive_evaluations
    }

    fn with_component_model(&self, model: Arc<dyn ComponentModel>) -> Self {
        self.with_accuracy_model(model)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::Env;
    use crate::scenario::{ActionMode, NoTraces, Scenario, ScenarioConfig};

    /// A model that answers a constant, to tell it from the formula.
    #[derive(Debug)]
    struct Constant(f64);
    impl ComponentModel for Constant {
        fn value(&self, _inputs: &[f32]) -> f64 {
            self.0
        }
    }

    /// The S23 scenario (lossy transport: its crossings see erasures) with one split per slot.
    fn s23() -> Arc<Scenario> {
        let text = include_str!("../../configs/s23-llama13b-5g-fading.toml");
        let mut cfg = ScenarioConfig::from_toml(text).unwrap();
        cfg.actions.mode = ActionMode::LayerSplit;
        Arc::new(Scenario::resolve(cfg, &NoTraces).unwrap())
    }

    #[test]
    fn every_crossing_of_every_started_request_is_one_evaluation_with_its_inputs_and_loss() {
        let sc = s23();
        let mut env = PartitionEnv::new(sc.clone());
        env.reset(Some(5));
        let (mut seen, mut erased) = (0, 0);
        for slot in 0..300 {
            // Splits 3 and 4 (the phone holds at most 5 layers).
            let t = env.step(&[3 + slot % 2]).unwrap();
            let info = t.info;
            let (mut inputs, mut values) = (Vec::new(), Vec::new());
            PartitionEnv::measurements(&info, &mut inputs, &mut values);
            let kept = (info.expensive_evaluations as usize).min(MAX_KEPT_MEASUREMENTS);
            assert_eq!(values.len(), kept);
            assert_eq!(inputs.len(), ACCURACY_INPUTS * kept);
            // The kept losses are what the step's accuracy sum is made of.
            if info.expensive_evaluations as usize <= MAX_KEPT_MEASUREMENTS {
                let sum: f64 = values.iter().sum();
                assert!((sum - info.accuracy_loss_sum).abs() < 1e-12, "{sum} vs {}", info.accuracy_loss_sum);
            }
            for (row, &v) in inputs.chunks(ACCURACY_INPUTS).zip(&values) {
                let (bits, depth, erasure) = (row[0] as u8, f64::from(row[1]), f64::from(row[2]));
                assert_eq!(bits, sc.layer_split_precision.bits());
                assert!((0.0..=1.0).contains(&depth) && (0.0..=1.0).contains(&erasure));
                let formula = sc.accuracy.crossing_loss(bits, depth, erasure);
                // The inputs are f32; the loss came from the f64 values.
                assert!((formula - v).abs() <= 1e-5 * formula.abs().max(1e-6), "{formula} vs {v}");
                erased += usize::from(erasure > 0.0);
            }
            assert!(info.started == 0 || info.expensive_evaluations >= info.started);
            seen += info.expensive_evaluations;
        }
        assert!(seen > 0, "no request started in 300 slots");
        assert!(erased > 0, "no crossing saw an erasure on the S23's lossy link");
    }

    #[test]
    fn a_model_stands_in_for_the_formula_and_nothing_else_changes() {
        let sc = s23();
        let real = PartitionEnv::new(sc.clone());
        let mut model = real.with_component_model(Arc::new(Constant(0.25)));
        let mut real = real;
        real.reset(Some(9));
        model.reset(Some(9));
        for _ in 0..100 {
            let (a, b) = (real.step(&[4]).unwrap(), model.step(&[4]).unwrap());
            assert_eq!(a.info.started, b.info.started);
            assert_eq!(a.info.latency_sum_s, b.info.latency_sum_s);
            assert_eq!(a.info.expensive_evaluations, b.info.expensive_evaluations);
            assert_eq!(b.info.accuracy_loss_sum, 0.25 * f64::from(b.info.expensive_evaluations));
        }
        assert_eq!(PartitionEnv::expensive().map(|ops| (ops.component_inputs)(&real)), Some(ACCURACY_INPUTS));
    }
}
