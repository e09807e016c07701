//! A learned reward surrogate: Adaptive Layer Splitting's reward surrogate model (Chen et al.,
//! arXiv 2406.02616; its released predictor is a 2 → 128 → 128 → 1 ReLU MLP from (noise level,
//! split) to the inference-quality term), generalised to any (observation, action) features →
//! one reward component, with an optional ensemble whose disagreement measures uncertainty (deep
//! ensembles: Lakshminarayanan et al., NeurIPS 2017: independently initialised members trained on
//! shuffled minibatches of the same data).
//!
//! Inputs and targets are standardised with the training split's statistics (recomputed at each
//! [`RewardSurrogate::fit`], which continues from the current weights: a model-based loop refits
//! as data arrives). Each fit holds out a fraction of the samples and reports the error on them,
//! next to the error of predicting their mean, so a user can tell whether the surrogate is worth
//! training on. Written here rather than taken from a crate because it is a few lines over burn's
//! `Linear` and Adam, which the rest of the agents already use.

use crate::network::{HIDDEN_GAIN, orthogonal_linear};
use burn::module::Module;
use burn::nn::Linear;
use burn::optim::{AdamConfig, GradientsParams, ModuleOptimizer};
use burn::store::ModuleRecord;
use burn::tensor::{Bytes, Device, Tensor, TensorData, activation::relu};
use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};
use splitwise_env::rng::{Stream, StreamRng, item_rng};
use splitwise_env::validate::{InvalidField, Validation, in_range, positive};

/// How the surrogate is shaped and trained; the defaults are ALS's network (two hidden layers of
/// 128, ReLU) with Adam.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct SurrogateConfig {
    pub hidden: Vec<usize>,
    pub learning_rate: f64,
    /// Passes over the training split per fit.
    pub epochs: usize,
    pub batch_size: usize,
    /// Share of each fit's samples held out to report the error (at least one sample when there
    /// are 5 or more).
    pub holdout_fraction: f64,
    /// Members of the ensemble (1: a single network, no uncertainty).
    pub ensemble: usize,
}

impl Default for SurrogateConfig {
    fn default() -> Self {
        Self {
            hidden: vec![128, 128],
            learning_rate: 1e-3,
            epochs: 100,
            batch_size: 64,
            holdout_fraction: 0.2,
            ensemble: 1,
        }
    }
}

impl SurrogateConfig {
    pub fn validate(&self) -> Validation {
        if let Some(i) = self.hidden.iter().position(|&h| h == 0 || h > 4096) {
            return Err(InvalidField::new(format!("hidden[{i}]"), self.hidden[i], "layer sizes must be in [1, 4096]"));
        }
        positive("learning_rate", self.learning_rate, "Adam step size")?;
        if !(1..=100_000).contains(&self.epochs) {
            return Err(InvalidField::new("epochs", self.epochs, "must be in [1, 100000]"));
        }
        if self.batch_size == 0 {
            return Err(InvalidField::new("batch_size", 0, "must be >= 1"));
        }
        in_range("holdout_fraction", self.holdout_fraction, 0.0, 0.9, "share of samples held out")?;
        if !(1..=32).contains(&self.ensemble) {
            return Err(InvalidField::new("ensemble", self.ensemble, "must be in [1, 32] members"));
        }
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SurrogateError {
    #[error("invalid surrogate config: {0}")]
    Config(#[from] InvalidField),
    #[error("surrogate data: {0}")]
    Data(String),
}

/// A ReLU MLP (ALS's predictor): `hidden` layers with ReLU, then a linear head to one output.
#[derive(Module, Debug)]
pub struct ReluMlp {
    pub hidden: Vec<Linear>,
    pub head: Linear,
}

impl ReluMlp {
    fn new(d_in: usize, hidden: &[usize], rng: &mut StreamRng, device: &Device) -> Self {
        let mut layers = Vec::with_capacity(hidden.len());
        let mut width = d_in;
        for &h in hidden {
            layers.push(orthogonal_linear(width, h, HIDDEN_GAIN, rng, device));
            width = h;
        }
        Self { hidden: layers, head: orthogonal_linear(width, 1, 1.0, rng, device) }
    }

    pub fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        let x = self.hidden.iter().fold(x, |x, layer| relu(layer.forward(x)));
        self.head.forward(x)
    }
}

/// What one fit measured, in the target's own units. JSON has no NaN: serde_json writes a NaN
/// (a fit that held nothing out) as `null`, which reads back as NaN here, so a checkpoint taken
/// after a fit on fewer than 5 samples resumes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct FitReport {
    pub n_train: usize,
    pub n_holdout: usize,
    /// Root-mean-square error of the ensemble mean on the training split after the fit.
    #[serde(deserialize_with = "nan_from_null")]
    pub train_rmse: f64,
    /// On the held-out samples (NaN when none were held out).
    #[serde(deserialize_with = "nan_from_null")]
    pub holdout_rmse: f64,
    #[serde(deserialize_with = "nan_from_null")]
    pub holdout_mae: f64,
    /// The held-out RMSE of always predicting the training split's mean: what "no model" scores.
    #[serde(deserialize_with = "nan_from_null")]
    pub holdout_rmse_of_mean: f64,
    /// Mean ensemble standard deviation on the held-out samples (0 with one member).
    #[serde(deserialize_with = "nan_from_null")]
    pub holdout_disagreement: f64,
}

/// A number, or `null` (how serde_json writes a non-finite one) as NaN.
fn nan_from_null<'de, D: serde::Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NAN))
}

/// Predictions: the ensemble's mean and its members' standard deviation, per row.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Prediction {
    pub mean: Vec<f32>,
    pub std: Vec<f32>,
}

/// Per-column standardisation (`(x − mean)/std`, std floored so a constant column maps to 0).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Standardizer {
    mean: Vec<f64>,
    std: Vec<f64>,
}

impl Standardizer {
    fn identity(dim: usize) -> Self {
        Self { mean: vec![0.0; dim], std: vec![1.0; dim] }
    }

    fn of(rows: &[f32], dim: usize, indices: &[usize]) -> Self {
        let n = indices.len().max(1) as f64;
        let mut mean = vec![0.0; dim];
        for &i in indices {
            for (m, &x) in mean.iter_mut().zip(&rows[i * dim..(i + 1) * dim]) {
                *m += f64::from(x) / n;
            }
        }
        let mut var = vec![0.0; dim];
        for &i in indices {
            for ((v, &x), m) in var.iter_mut().zip(&rows[i * dim..(i + 1) * dim]).zip(&mean) {
                *v += (f64::from(x) - m).powi(2) / n;
            }
        }
        Self { mean, std: var.into_iter().map(|v| v.sqrt().max(1e-8)).collect() }
    }

    fn apply(&self, row: &[f32], out: &mut Vec<f32>) {
        out.extend(row.iter().zip(self.mean.iter().zip(&self.std)).map(|(&x, (m, s))| ((f64::from(x) - m) / s) as f32));
    }
}

/// A surrogate's state without its networks: with [`SurrogateState`]'s member and optimizer
/// records, enough to continue fitting bit for bit.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SurrogateMeta {
    pub config: SurrogateConfig,
    pub input_dim: usize,
    inputs: Standardizer,
    target: Standardizer,
    rng: StreamRng,
}

/// A surrogate's complete state: burnpack records of each member and of its Adam moments.
#[derive(Clone, Debug, PartialEq)]
pub struct SurrogateState {
    pub meta: SurrogateMeta,
    pub members: Vec<Vec<u8>>,
    pub optimizers: Vec<Vec<u8>>,
}

/// The surrogate: an ensemble of [`ReluMlp`]s from `input_dim` features to one reward component.
pub struct RewardSurrogate {
    config: SurrogateConfig,
    input_dim: usize,
    members: Vec<ReluMlp>,
    /// The members without autodiff, refreshed after each fit: what `predict` runs (a model
    /// environment predicts once per step).
    inference: Vec<ReluMlp>,
    optimizers: Vec<ModuleOptimizer>,
    inputs: Standardizer,
    target: Standardizer,
    rng: StreamRng,
    train_device: Device,
    infer_device: Device,
}

impl RewardSurrogate {
    /// A fresh surrogate; member k's weights come from item k of the seed's surrogate stream.
    pub fn new(config: SurrogateConfig, input_dim: usize, seed: u64) -> Result<Self, SurrogateError> {
        config.validate()?;
        if input_dim == 0 {
            return Err(SurrogateError::Data("input_dim must be >= 1".into()));
        }
        let infer_device = Device::flex();
        let train_device = infer_device.clone().autodiff();
        let members: Vec<ReluMlp> = (0..config.ensemble)
            .map(|k| {
                let mut rng = item_rng(seed, Stream::Surrogate, 1 + k as u64);
                ReluMlp::new(input_dim, &config.hidden, &mut rng, &train_device)
            })
            .collect();
        let optimizers = (0..config.ensemble).map(|_| AdamConfig::new().init()).collect();
        let inference = members.iter().map(|m| m.valid()).collect();
        Ok(Self {
            inference,
            rng: item_rng(seed, Stream::Surrogate, 0),
            inputs: Standardizer::identity(input_dim),
            target: Standardizer::identity(1),
            members,
            optimizers,
            input_dim,
            config,
            train_device,
            infer_device,
        })
    }

    pub fn config(&self) -> &SurrogateConfig {
        &self.config
    }

    /// Continues with other training hyperparameters (the networks' shapes must stay).
    pub fn set_config(&mut self, config: SurrogateConfig) -> Result<(), SurrogateError> {
        config.validate()?;
        if config.hidden != self.config.hidden || config.ensemble != self.config.ensemble {
            return Err(SurrogateError::Data("the surrogate's hidden layers and ensemble size cannot change".into()));
        }
        self.config = config;
        Ok(())
    }

    pub fn input_dim(&self) -> usize {
        self.input_dim
    }

    /// Fits the ensemble to `inputs` (rows of `input_dim`) → `targets`, continuing from the
    /// current weights: a shuffled `holdout_fraction` is held out, the standardisation is
    /// recomputed on the rest, and each member runs `epochs` passes of shuffled minibatches.
    pub fn fit(&mut self, inputs: &[f32], targets: &[f32]) -> Result<FitReport, SurrogateError> {
        let (d, n) = (self.input_dim, targets.len());
        if inputs.len() != n * d {
            return Err(SurrogateError::Data(format!("{} inputs for {n} targets of {d} features", inputs.len())));
        }
        if n < 2 {
            return Err(SurrogateError::Data(format!("{n} samples; a fit needs at least 2")));
        }
        if let Some(i) = inputs.iter().chain(targets).position(|v| !v.is_finite()) {
            return Err(SurrogateError::Data(format!("value {i} of the data is not finite")));
        }
        let mut order: Vec<usize> = (0..n).collect();
        order.shuffle(&mut self.rng);
        let f = self.config.holdout_fraction;
        let n_holdout = if n >= 5 && f > 0.0 { ((n as f64 * f).round() as usize).clamp(1, n - 1) } else { 0 };
        let (holdout, train) = order.split_at(n_holdout);
        let train = train.to_vec();
        self.inputs = Standardizer::of(inputs, d, &train);
        self.target = Standardizer::of(targets, 1, &train);

        let (x, y) = self.standardised(inputs, targets);
        let lr = self.config.learning_rate;
        for k in 0..self.members.len() {
            let mut indices = train.clone();
            for _ in 0..self.config.epochs {
                indices.shuffle(&mut self.rng);
                for chunk in indices.chunks(self.config.batch_size) {
                    let b = chunk.len();
                    let xb: Vec<f32> = chunk.iter().flat_map(|&i| x[i * d..(i + 1) * d].iter().copied()).collect();
                    let yb: Vec<f32> = chunk.iter().map(|&i| y[i]).collect();
                    let xt = Tensor::<2>::from_data(TensorData::new(xb, [b, d]), &self.train_device);
                    let yt = Tensor::<2>::from_data(TensorData::new(yb, [b, 1]), &self.train_device);
                    let member = self.members[k].clone();
                    let loss = (member.forward(xt) - yt).powi_scalar(2).mean();
                    let grads = GradientsParams::from_grads(loss.backward(), &member);
                    self.members[k] = self.optimizers[k].step(lr, member, grads);
                }
            }
        }
        self.inference = self.members.iter().map(|m| m.valid()).collect();

        let rows = |idx: &[usize]| -> (Vec<f32>, Vec<f32>) {
            (
                idx.iter().flat_map(|&i| inputs[i * d..(i + 1) * d].iter().copied()).collect(),
                idx.iter().map(|&i| targets[i]).collect(),
            )
        };
        let (train_x, train_y) = rows(&train);
        let train_pred = self.predict(&train_x)?;
        let mut report = FitReport {
            n_train: train.len(),
            n_holdout,
            train_rmse: rmse(&train_pred.mean, &train_y),
            holdout_rmse: f64::NAN,
            holdout_mae: f64::NAN,
            holdout_rmse_of_mean: f64::NAN,
            holdout_disagreement: f64::NAN,
        };
        if n_holdout > 0 {
            let (hx, hy) = rows(holdout);
            let pred = self.predict(&hx)?;
            report.holdout_rmse = rmse(&pred.mean, &hy);
            report.holdout_mae =
                pred.mean.iter().zip(&hy).map(|(p, t)| f64::from((p - t).abs())).sum::<f64>() / hy.len() as f64;
            let mean = vec![self.target.mean[0] as f32; hy.len()];
            report.holdout_rmse_of_mean = rmse(&mean, &hy);
            report.holdout_disagreement = pred.std.iter().map(|&s| f64::from(s)).sum::<f64>() / hy.len() as f64;
        }
        Ok(report)
    }

    /// Predictions for rows of `input_dim` features, in the target's units.
    pub fn predict(&self, inputs: &[f32]) -> Result<Prediction, SurrogateError> {
        let d = self.input_dim;
        if !inputs.len().is_multiple_of(d) {
            return Err(SurrogateError::Data(format!("{} inputs are not rows of {d} features", inputs.len())));
        }
        let rows = inputs.len() / d;
        let mut x = Vec::with_capacity(inputs.len());
        for row in inputs.chunks_exact(d) {
            self.inputs.apply(row, &mut x);
        }
        let xt = Tensor::<2>::from_data(TensorData::new(x, [rows, d]), &self.infer_device);
        let outs: Vec<Vec<f32>> = self
            .inference
            .iter()
            .map(|m| m.forward(xt.clone()).into_data().try_into_vec::<f32>().expect("f32 outputs"))
            .collect();
        let (m, s) = (self.target.mean[0], self.target.std[0]);
        let k = outs.len() as f64;
        let mut prediction = Prediction { mean: Vec::with_capacity(rows), std: Vec::with_capacity(rows) };
        for r in 0..rows {
            let values: Vec<f64> = outs.iter().map(|o| f64::from(o[r]) * s + m).collect();
            let mean = values.iter().sum::<f64>() / k;
            let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / k;
            prediction.mean.push(mean as f32);
            prediction.std.push(var.sqrt() as f32);
        }
        Ok(prediction)
    }

    /// Every member's parameters as host values (content checksums, bit-for-bit comparisons).
    pub fn parameter_values(&self) -> Vec<Vec<f32>> {
        self.inference.iter().flat_map(crate::network::parameter_values).collect()
    }

    pub fn export_state(&self) -> Result<SurrogateState, SurrogateError> {
        let record = |e: String| SurrogateError::Data(format!("record: {e}"));
        let members = self
            .members
            .iter()
            .map(|m| m.clone().into_record().into_bytes().map(|b| b.to_vec()).map_err(|e| record(e.to_string())))
            .collect::<Result<_, _>>()?;
        let optimizers = self
            .optimizers
            .iter()
            .map(|o| o.into_bytes().map(|b| b.to_vec()).map_err(|e| record(e.to_string())))
            .collect::<Result<_, _>>()?;
        Ok(SurrogateState {
            meta: SurrogateMeta {
                config: self.config.clone(),
                input_dim: self.input_dim,
                inputs: self.inputs.clone(),
                target: self.target.clone(),
                rng: self.rng.clone(),
            },
            members,
            optimizers,
        })
    }

    /// A surrogate rebuilt from a saved state (the networks' shapes come from its config).
    pub fn from_state(state: &SurrogateState) -> Result<Self, SurrogateError> {
        let meta = &state.meta;
        let mut s = Self::new(meta.config.clone(), meta.input_dim, 0)?;
        let k = meta.config.ensemble;
        if state.members.len() != k || state.optimizers.len() != k {
            return Err(SurrogateError::Data(format!(
                "{} member and {} optimizer records for an ensemble of {k}",
                state.members.len(),
                state.optimizers.len()
            )));
        }
        let fits = |what: &str, dim: usize, std: &Standardizer| {
            if std.mean.len() == dim && std.std.len() == dim {
                Ok(())
            } else {
                Err(SurrogateError::Data(format!(
                    "{what} standardisation has {} columns, expected {dim}",
                    std.mean.len()
                )))
            }
        };
        fits("input", meta.input_dim, &meta.inputs)?;
        fits("target", 1, &meta.target)?;
        for (i, (bytes, opt)) in state.members.iter().zip(&state.optimizers).enumerate() {
            let record = ModuleRecord::from_bytes(Bytes::from_bytes_vec(bytes.clone()))
                .map_err(|e| SurrogateError::Data(format!("member {i} record: {e}")))?;
            s.members[i] = s.members[i]
                .clone()
                .try_load_record(record)
                .map_err(|e| SurrogateError::Data(format!("member {i} record: {e}")))?;
            s.optimizers[i] = AdamConfig::new()
                .init()
                .from_bytes(Bytes::from_bytes_vec(opt.clone()))
                .map_err(|e| SurrogateError::Data(format!("member {i} optimizer record: {e}")))?;
        }
        s.inference = s.members.iter().map(|m| m.valid()).collect();
        s.inputs = meta.inputs.clone();
        s.target = meta.target.clone();
        s.rng = meta.rng.clone();
        Ok(s)
    }

    fn standardised(&self, inputs: &[f32], targets: &[f32]) -> (Vec<f32>, Vec<f32>) {
        let mut x = Vec::with_capacity(inputs.len());
        for row in inputs.chunks_exact(self.input_dim) {
            self.inputs.apply(row, &mut x);
        }
        let mut y = Vec::with_capacity(targets.len());
        for t in targets {
            self.target.apply(std::slice::from_ref(t), &mut y);
        }
        (x, y)
    }
}

impl std::fmt::Debug for RewardSurrogate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RewardSurrogate").field("config", self.config()).field("input_dim", &self.input_dim()).finish()
    }
}

fn rmse(pred: &[f32], target: &[f32]) -> f64 {
    let n = pred.len().max(1) as f64;
    (pred.iter().zip(target).map(|(p, t)| f64::from(p - t).powi(2)).sum::<f64>() / n).sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fit_that_held_nothing_out_round_trips_through_json() {
        let r = FitReport { n_train: 3, train_rmse: 0.5, holdout_rmse: f64::NAN, ..FitReport::default() };
        let text = serde_json::to_string(&r).unwrap();
        assert!(text.contains("\"holdout_rmse\":null"), "{text}");
        let back: FitReport = serde_json::from_str(&text).unwrap();
        assert!(back.holdout_rmse.is_nan());
        assert_eq!((back.n_train, back.train_rmse), (3, 0.5));
    }

    #[test]
    fn bad_configs_and_data_are_refused() {
        let bad = |c: SurrogateConfig| RewardSurrogate::new(c, 2, 0).err().unwrap().to_string();
        assert!(bad(SurrogateConfig { hidden: vec![128, 0], ..Default::default() }).contains("hidden[1]"));
        assert!(bad(SurrogateConfig { ensemble: 0, ..Default::default() }).contains("ensemble"));
        assert!(bad(SurrogateConfig { holdout_fraction: 0.95, ..Default::default() }).contains("holdout_fraction"));
        let mut s = RewardSurrogate::new(SurrogateConfig { epochs: 1, ..Default::default() }, 2, 0).unwrap();
        assert!(s.fit(&[0.0; 3], &[1.0, 2.0]).unwrap_err().to_string().contains("3 inputs for 2 targets"));
        assert!(s.fit(&[0.0, f32::NAN, 1.0, 1.0], &[1.0, 2.0]).unwrap_err().to_string().contains("not finite"));
        assert!(s.predict(&[0.0; 3]).is_err());
    }
}
