//! Accuracy degradation of a partition plan (system-model.md §5), as a **fraction** of relative
//! perplexity increase (0.04 = 4 %): boundary quantisation loss per crossing point by bit width,
//! plus erasure loss from lossy transport by erasure rate and relative split depth.
//!
//! # Erasure model (calibrated on ALS)
//!
//! Chen et al., "Adaptive Layer Splitting for Wireless LLM Inference in Edge Computing: A
//! Model-Based Reinforcement Learning Approach" (arXiv 2406.02616; FITEE 26(2):278–292, 2025)
//! train a reward surrogate for LLaMA2-7B. Its table ([`ALS_SURROGATE`]) gives, for erasure
//! probability p ∈ [0.01, 0.30] and a split after decoder layer s ∈ 1..=10, the prediction
//! v(s, p) = (PPL_initial − PPL_split)/PPL_initial, **relative to an initial split drawn from
//! layers 3–6**, not an absolute loss: its shape across layers (deeper splits suffer less) is the
//! information, its level across p is not absolute.
//!
//! Modelling choice (ours, stated as an assumption): the absolute loss of one crossing at split
//! layer s under erasure rate p is
//!
//! ```text
//! ℓ(s, p) = κ · p · (1 − v(s, p))
//! ```
//!
//! - anchored at zero: no erasure, no loss, and linear in p (the erasures corrupt a fraction p
//!   of the hidden state);
//! - 1 − v(s, p) = PPL_split/PPL_initial is the surrogate's perplexity ratio, used as the depth
//!   sensitivity shape around the reference split (ratio ≈ 1 for layers 3–6);
//! - κ = [`ALS_KAPPA`] = 0.5 sets the level: 5 % relative perplexity increase at 10 % erasure for
//!   the reference split (assumption, configurable).
//!
//! v is interpolated bilinearly: in p on the table's grid (clamped to [0.01, 0.30]; below 0.01
//! the 0.01 row is used and ℓ still → 0 through the factor p, above 0.30 ℓ grows linearly with
//! the 0.30 shape) and in depth, where a crossing at relative depth x = layer/L maps to
//! s = 32·x (LLaMA2-7B has 32 layers) clamped to [1, 10]. Beyond layer 10 the loss is held at
//! the layer-10 value: an extrapolation (ALS only evaluates layers 1–10), likely pessimistic
//! for deep splits. The first two layers are not monotone in the table (layer 1 is slightly
//! better than layer 2); we keep the data as published.
//!
//! Everything model-based is swappable: [`ErasureLossConfig::Measured`] takes an absolute table
//! (erasure rates × relative depths → loss fraction) measured on the deployed model.

use crate::validate::{InvalidField, Validation, in_range, non_negative, probability};
use serde::{Deserialize, Serialize};

/// Loss per crossing point of a 16-bit boundary tensor. Assumption: FP16/BF16 activations are
/// lossless for perplexity purposes.
pub const QUANT_LOSS_16_BIT: f64 = 0.0;
/// Loss per crossing point of an 8-bit boundary tensor. Assumption (0.2 %), in the spirit of
/// Splitwise's reported total accuracy loss below 4 % (arXiv 2512.23310) and the small
/// perplexity cost of 8-bit activation quantisation.
pub const QUANT_LOSS_8_BIT: f64 = 0.002;
/// Loss per crossing point of a 4-bit boundary tensor. Assumption (1.5 %): a few 4-bit
/// crossings stay under Splitwise's < 4 % total.
pub const QUANT_LOSS_4_BIT: f64 = 0.015;

/// κ: absolute loss per unit erasure rate for the reference split (ratio 1). Assumption: 5 %
/// relative perplexity increase at 10 % erasure (0.5·0.10·1 = 0.05).
pub const ALS_KAPPA: f64 = 0.5;
/// Decoder layers of LLaMA2-7B, the model ALS's surrogate was fitted on (Touvron et al. 2023).
pub const ALS_MODEL_LAYERS: f64 = 32.0;
/// Erasure probabilities of the surrogate table's rows.
pub const ALS_ERASURE_RATES: [f64; 13] = [0.01, 0.03, 0.05, 0.08, 0.10, 0.12, 0.15, 0.18, 0.20, 0.22, 0.25, 0.28, 0.30];
/// Split layers (split after decoder layer s) of the surrogate table's columns.
pub const ALS_SPLIT_LAYERS: [f64; 10] = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0];

/// ALS reward surrogate for LLaMA2-7B: v(s, p) = (PPL_initial − PPL_split)/PPL_initial, rows
/// [`ALS_ERASURE_RATES`], columns [`ALS_SPLIT_LAYERS`]. Source: Chen et al., Adaptive Layer
/// Splitting (arXiv 2406.02616 / FITEE 2025), as transcribed in the project's
/// `data/als-reward-surrogate-llama2-7b.csv`; embedded so the simulator reads no file.
#[rustfmt::skip]
pub const ALS_SURROGATE: [[f64; 10]; 13] = [
    [-0.0299, -0.0335, -0.0321, -0.0215, -0.0109, -0.0006, 0.0097, 0.0200, 0.0296, 0.0393],
    [-0.0295, -0.0331, -0.0314, -0.0203, -0.0085,  0.0019, 0.0122, 0.0225, 0.0321, 0.0417],
    [-0.0290, -0.0327, -0.0308, -0.0191, -0.0060,  0.0044, 0.0147, 0.0249, 0.0345, 0.0441],
    [-0.0284, -0.0320, -0.0298, -0.0172, -0.0024,  0.0081, 0.0184, 0.0286, 0.0382, 0.0478],
    [-0.0278, -0.0314, -0.0289, -0.0163, -0.0001,  0.0106, 0.0209, 0.0310, 0.0406, 0.0503],
    [-0.0273, -0.0309, -0.0280, -0.0154,  0.0013,  0.0131, 0.0234, 0.0335, 0.0431, 0.0526],
    [-0.0266, -0.0301, -0.0267, -0.0142,  0.0034,  0.0168, 0.0271, 0.0371, 0.0467, 0.0560],
    [-0.0260, -0.0293, -0.0253, -0.0129,  0.0056,  0.0205, 0.0308, 0.0408, 0.0502, 0.0594],
    [-0.0253, -0.0287, -0.0243, -0.0119,  0.0067,  0.0230, 0.0333, 0.0432, 0.0525, 0.0617],
    [-0.0247, -0.0282, -0.0234, -0.0109,  0.0078,  0.0253, 0.0358, 0.0455, 0.0547, 0.0640],
    [-0.0239, -0.0273, -0.0219, -0.0093,  0.0094,  0.0275, 0.0394, 0.0489, 0.0582, 0.0674],
    [-0.0231, -0.0265, -0.0205, -0.0077,  0.0110,  0.0297, 0.0429, 0.0523, 0.0616, 0.0709],
    [-0.0226, -0.0259, -0.0193, -0.0067,  0.0121,  0.0306, 0.0452, 0.0546, 0.0639, 0.0731],
];

// ---------------------------------------------------------------------------------------------
// Configuration
// ---------------------------------------------------------------------------------------------

/// Loss fraction per boundary crossing point, by boundary precision.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct QuantisationLossConfig {
    pub bits16: f64,
    pub bits8: f64,
    pub bits4: f64,
}

impl Default for QuantisationLossConfig {
    fn default() -> Self {
        Self { bits16: QUANT_LOSS_16_BIT, bits8: QUANT_LOSS_8_BIT, bits4: QUANT_LOSS_4_BIT }
    }
}

impl QuantisationLossConfig {
    /// Each in [0, 1], and fewer bits never lose less (bits16 <= bits8 <= bits4).
    pub fn validate(&self) -> Validation {
        probability("bits16", self.bits16)?;
        probability("bits8", self.bits8)?;
        probability("bits4", self.bits4)?;
        if self.bits8 < self.bits16 {
            return Err(InvalidField::new("bits8", self.bits8, "must be >= bits16 (fewer bits lose more)"));
        }
        if self.bits4 < self.bits8 {
            return Err(InvalidField::new("bits4", self.bits4, "must be >= bits8 (fewer bits lose more)"));
        }
        Ok(())
    }

    /// Loss of one crossing at `bits`. The action space offers 16/8/4; any other width maps to
    /// the nearest supported width not above it (32 → 16, 12 → 8, 2 → 4 counts as 4-bit).
    pub fn loss_per_crossing(&self, bits: u8) -> f64 {
        debug_assert!(matches!(bits, 4 | 8 | 16), "boundary precision {bits} is not 16/8/4");
        match bits {
            16.. => self.bits16,
            8..=15 => self.bits8,
            _ => self.bits4,
        }
    }

    /// Additive over crossing points: each quantise/dequantise round adds its own error.
    pub fn quantisation_loss(&self, bits: u8, crossing_points: u32) -> f64 {
        self.loss_per_crossing(bits) * f64::from(crossing_points)
    }
}

fn default_kappa() -> f64 {
    ALS_KAPPA
}

/// Erasure loss model for lossy transport.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum ErasureLossConfig {
    /// ℓ = κ·p·(1 − v(s, p)) on ALS's LLaMA2-7B surrogate (module docs).
    AlsSurrogate {
        #[serde(default = "default_kappa")]
        kappa: f64,
    },
    /// An absolute table `loss[i][j]` at `erasure_rates[i]` × `depth_fractions[j]`, interpolated
    /// bilinearly and held constant beyond the grid, except below the first erasure rate, where
    /// it falls linearly to zero at p = 0 (no erasure, no loss).
    Measured { erasure_rates: Vec<f64>, depth_fractions: Vec<f64>, loss: Vec<Vec<f64>> },
}

impl Default for ErasureLossConfig {
    fn default() -> Self {
        Self::AlsSurrogate { kappa: ALS_KAPPA }
    }
}

impl ErasureLossConfig {
    pub fn validate(&self) -> Validation {
        match self {
            Self::AlsSurrogate { kappa } => {
                non_negative("kappa", *kappa, "loss per unit erasure rate at the reference split")
            }
            Self::Measured { erasure_rates, depth_fractions, loss } => {
                increasing_grid("erasure_rates", erasure_rates)?;
                increasing_grid("depth_fractions", depth_fractions)?;
                if loss.len() != erasure_rates.len() {
                    return Err(InvalidField::new(
                        "loss",
                        format!("{} rows", loss.len()),
                        format!("must have one row per erasure rate ({})", erasure_rates.len()),
                    ));
                }
                for (i, row) in loss.iter().enumerate() {
                    if row.len() != depth_fractions.len() {
                        return Err(InvalidField::new(
                            format!("loss[{i}]"),
                            format!("{} values", row.len()),
                            format!("must have one value per depth fraction ({})", depth_fractions.len()),
                        ));
                    }
                    for (j, &l) in row.iter().enumerate() {
                        non_negative(&format!("loss[{i}][{j}]"), l, "loss fraction")?;
                    }
                }
                Ok(())
            }
        }
    }
}

/// A non-empty, strictly increasing grid inside [0, 1].
fn increasing_grid(field: &str, grid: &[f64]) -> Validation {
    if grid.is_empty() {
        return Err(InvalidField::new(field, "[]", "must list at least one grid point"));
    }
    for (i, &g) in grid.iter().enumerate() {
        let name = format!("{field}[{i}]");
        in_range(&name, g, 0.0, 1.0, "a fraction")?;
        if i > 0 && g <= grid[i - 1] {
            return Err(InvalidField::new(name, g, "grid must be strictly increasing"));
        }
    }
    Ok(())
}

/// The `accuracy` section of a scenario.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Default)]
#[serde(deny_unknown_fields, default)]
pub struct AccuracyConfig {
    pub quantisation: QuantisationLossConfig,
    pub erasure: ErasureLossConfig,
}

impl AccuracyConfig {
    pub fn validate(&self) -> Validation {
        self.quantisation.validate().map_err(|e| e.under("quantisation"))?;
        self.erasure.validate().map_err(|e| e.under("erasure"))
    }
}

// ---------------------------------------------------------------------------------------------
// Resolved model
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Debug, PartialEq)]
enum ErasureModel {
    AlsSurrogate {
        kappa: f64,
    },
    /// `loss` row-major: `loss[i * depths.len() + j]`.
    Measured {
        rates: Vec<f64>,
        depths: Vec<f64>,
        loss: Vec<f64>,
    },
}

/// A validated accuracy model; lookups are allocation-free.
#[derive(Clone, Debug, PartialEq)]
pub struct AccuracyModel {
    quantisation: QuantisationLossConfig,
    erasure: ErasureModel,
}

impl AccuracyModel {
    pub fn new(config: &AccuracyConfig) -> Result<Self, InvalidField> {
        config.validate()?;
        let erasure = match &config.erasure {
            ErasureLossConfig::AlsSurrogate { kappa } => ErasureModel::AlsSurrogate { kappa: *kappa },
            ErasureLossConfig::Measured { erasure_rates, depth_fractions, loss } => ErasureModel::Measured {
                rates: erasure_rates.clone(),
                depths: depth_fractions.clone(),
                loss: loss.iter().flatten().copied().collect(),
            },
        };
        Ok(Self { quantisation: config.quantisation.clone(), erasure })
    }

    pub fn quantisation_loss(&self, bits: u8, crossing_points: u32) -> f64 {
        self.quantisation.quantisation_loss(bits, crossing_points)
    }

    /// Erasure loss of one crossing at relative depth `depth_fraction` (layers before the
    /// crossing / L) under erasure rate `erasure_rate` (0 for reliable transport).
    pub fn erasure_loss(&self, depth_fraction: f64, erasure_rate: f64) -> f64 {
        debug_assert!(erasure_rate.is_finite() && depth_fraction.is_finite());
        if erasure_rate <= 0.0 {
            return 0.0;
        }
        let p = erasure_rate.min(1.0);
        match &self.erasure {
            ErasureModel::AlsSurrogate { kappa } => als_erasure_loss(*kappa, depth_fraction, p),
            ErasureModel::Measured { rates, depths, loss } => {
                let (d0, d1, wd) = bracket(depths, depth_fraction);
                let at_row = |i: usize| {
                    let row = &loss[i * depths.len()..(i + 1) * depths.len()];
                    (1.0 - wd) * row[d0] + wd * row[d1]
                };
                if p < rates[0] {
                    // Linear from zero loss at p = 0 to the first measured row.
                    return p / rates[0] * at_row(0);
                }
                let (r0, r1, wr) = bracket(rates, p);
                (1.0 - wr) * at_row(r0) + wr * at_row(r1)
            }
        }
    }

    /// Loss of one crossing point: quantisation + erasure. The env sums it over a plan's
    /// crossing points.
    pub fn crossing_loss(&self, bits: u8, depth_fraction: f64, erasure_rate: f64) -> f64 {
        self.quantisation.loss_per_crossing(bits) + self.erasure_loss(depth_fraction, erasure_rate)
    }
}

/// v(s, p) of the ALS surrogate, bilinear on the table grid, clamped to s ∈ [1, 10] and
/// p ∈ [0.01, 0.30].
pub fn als_surrogate_value(split_layer: f64, erasure_rate: f64) -> f64 {
    let (p0, p1, wp) = bracket(&ALS_ERASURE_RATES, erasure_rate);
    let (s0, s1, ws) = bracket(&ALS_SPLIT_LAYERS, split_layer);
    let row = |i: usize| (1.0 - ws) * ALS_SURROGATE[i][s0] + ws * ALS_SURROGATE[i][s1];
    (1.0 - wp) * row(p0) + wp * row(p1)
}

/// ℓ = κ·p·(1 − v(32·x, p)) for a crossing at relative depth x (module docs).
pub fn als_erasure_loss(kappa: f64, depth_fraction: f64, erasure_rate: f64) -> f64 {
    if erasure_rate <= 0.0 {
        return 0.0;
    }
    let split_layer = depth_fraction * ALS_MODEL_LAYERS;
    kappa * erasure_rate * (1.0 - als_surrogate_value(split_layer, erasure_rate))
}

/// Indices `(lo, hi)` and weight `w` with x ≈ (1 − w)·grid[lo] + w·grid[hi], clamped to the
/// grid's ends (NaN clamps to the first point). `grid` is non-empty and strictly increasing.
pub(crate) fn bracket(grid: &[f64], x: f64) -> (usize, usize, f64) {
    let n = grid.len();
    if n == 1 || x.is_nan() || x <= grid[0] {
        return (0, 0, 0.0);
    }
    if x >= grid[n - 1] {
        return (n - 1, n - 1, 0.0);
    }
    // grid[0] < x < grid[n − 1], so 1 <= hi <= n − 1.
    let hi = grid.partition_point(|&g| g <= x);
    let lo = hi - 1;
    (lo, hi, (x - grid[lo]) / (grid[hi] - grid[lo]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn als() -> AccuracyModel {
        AccuracyModel::new(&AccuracyConfig::default()).unwrap()
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    #[test]
    fn table_values_are_reproduced_at_grid_points() {
        let m = als();
        // Split 5 (x = 5/32), p = 0.10: v = −0.0001, ℓ = 0.5·0.10·1.0001 = 0.050005.
        assert!(close(m.erasure_loss(5.0 / 32.0, 0.10), 0.050005));
        // Split 10, p = 0.30: v = 0.0731, ℓ = 0.5·0.30·0.9269 = 0.139035.
        assert!(close(m.erasure_loss(10.0 / 32.0, 0.30), 0.139035));
        // Split 1, p = 0.01: v = −0.0299, ℓ = 0.5·0.01·1.0299 = 0.0051495.
        assert!(close(m.erasure_loss(1.0 / 32.0, 0.01), 0.0051495));
        // Every grid point: v is the table entry exactly.
        for (i, &p) in ALS_ERASURE_RATES.iter().enumerate() {
            for (j, &s) in ALS_SPLIT_LAYERS.iter().enumerate() {
                assert_eq!(als_surrogate_value(s, p), ALS_SURROGATE[i][j]);
            }
        }
    }

    #[test]
    fn interpolation_midpoints_by_hand() {
        // Depth midpoint, split 2.5 at p = 0.01: v = (−0.0335 − 0.0321)/2 = −0.0328,
        // ℓ = 0.5·0.01·1.0328 = 0.005164.
        assert!(close(als_erasure_loss(0.5, 2.5 / 32.0, 0.01), 0.005164));
        // Rate midpoint, p = 0.11 at split 6: v = (0.0106 + 0.0131)/2 = 0.01185,
        // ℓ = 0.5·0.11·0.98815 = 0.05434825.
        assert!(close(als_erasure_loss(0.5, 6.0 / 32.0, 0.11), 0.05434825));
        // Both, split 6.5 and p = 0.11: v = (0.0106 + 0.0209 + 0.0131 + 0.0234)/4 = 0.017,
        // ℓ = 0.5·0.11·0.983 = 0.054065.
        assert!(close(als_erasure_loss(0.5, 6.5 / 32.0, 0.11), 0.054065));
    }

    #[test]
    fn erasure_loss_is_zero_without_erasure_and_linear_below_the_table() {
        let m = als();
        for x in [0.0, 0.1, 0.5, 1.0] {
            assert_eq!(m.erasure_loss(x, 0.0), 0.0);
        }
        // p = 0.005 < 0.01 uses the 0.01 row: split 5 → v = −0.0109,
        // ℓ = 0.5·0.005·1.0109 = 0.00252725.
        assert!(close(m.erasure_loss(5.0 / 32.0, 0.005), 0.00252725));
        // Above 0.30 the 0.30 shape is used and ℓ stays linear in p: split 10, p = 0.6 gives
        // 0.5·0.6·0.9269 = 0.27807.
        assert!(close(m.erasure_loss(10.0 / 32.0, 0.6), 0.27807));
    }

    #[test]
    fn deeper_splits_lose_less_between_layers_2_and_10() {
        // At p = 0.3, 1 − v falls from 1.0259 (split 2) to 0.9269 (split 10); bilinear
        // interpolation is piecewise linear in depth, so a fine sweep must be non-increasing.
        let m = als();
        let mut prev = f64::INFINITY;
        for k in 0..=800 {
            let split_layer = 2.0 + 8.0 * f64::from(k) / 800.0;
            let l = m.erasure_loss(split_layer / 32.0, 0.3);
            assert!(l <= prev + 1e-15, "split {split_layer}: {l} > {prev}");
            prev = l;
        }
        assert!(m.erasure_loss(10.0 / 32.0, 0.3) < m.erasure_loss(2.0 / 32.0, 0.3));
        // Beyond layer 10 the layer-10 value is held (extrapolation); below layer 1, layer 1.
        assert_eq!(m.erasure_loss(0.9, 0.3), m.erasure_loss(10.0 / 32.0, 0.3));
        assert_eq!(m.erasure_loss(0.0, 0.3), m.erasure_loss(1.0 / 32.0, 0.3));
    }

    #[test]
    fn quantisation_is_additive_per_crossing() {
        let q = QuantisationLossConfig::default();
        assert_eq!(q.quantisation_loss(16, 5), 0.0);
        assert!(close(q.quantisation_loss(8, 3), 0.006)); // 3·0.002
        assert!(close(q.quantisation_loss(4, 2), 0.03)); // 2·0.015
        // One crossing: 4-bit at split 5 with 10 % erasure: 0.015 + 0.050005 = 0.065005.
        assert!(close(als().crossing_loss(4, 5.0 / 32.0, 0.10), 0.065005));
        // Reliable transport: quantisation only.
        assert!(close(als().crossing_loss(8, 0.5, 0.0), 0.002));
    }

    fn measured() -> AccuracyConfig {
        AccuracyConfig {
            quantisation: QuantisationLossConfig::default(),
            erasure: ErasureLossConfig::Measured {
                erasure_rates: vec![0.1, 0.2],
                depth_fractions: vec![0.0, 0.5, 1.0],
                loss: vec![vec![0.04, 0.02, 0.01], vec![0.08, 0.05, 0.02]],
            },
        }
    }

    #[test]
    fn measured_table_lookup() {
        let m = AccuracyModel::new(&measured()).unwrap();
        assert!(close(m.erasure_loss(0.5, 0.2), 0.05)); // grid point
        // p = 0.15, x = 0.25: rows at x = 0.25 are (0.04 + 0.02)/2 = 0.03 and
        // (0.08 + 0.05)/2 = 0.065; midway 0.0475.
        assert!(close(m.erasure_loss(0.25, 0.15), 0.0475));
        // Below the first rate: linear to zero, p = 0.05 → half of row 0 at x = 1: 0.005.
        assert!(close(m.erasure_loss(1.0, 0.05), 0.005));
        // Above the last rate: held.
        assert!(close(m.erasure_loss(0.0, 0.9), 0.08));
        assert_eq!(m.erasure_loss(0.3, 0.0), 0.0);
    }

    #[test]
    fn validation_names_the_field() {
        let mut c = measured();
        if let ErasureLossConfig::Measured { erasure_rates, .. } = &mut c.erasure {
            erasure_rates[1] = 0.1;
        }
        assert_eq!(c.validate().unwrap_err().field, "erasure.erasure_rates[1]");
        let mut c = measured();
        if let ErasureLossConfig::Measured { loss, .. } = &mut c.erasure {
            loss[1][2] = -0.1;
        }
        let e = AccuracyModel::new(&c).unwrap_err();
        assert_eq!(e.field, "erasure.loss[1][2]");
        let mut c = measured();
        if let ErasureLossConfig::Measured { loss, .. } = &mut c.erasure {
            loss[0].pop();
        }
        assert_eq!(c.validate().unwrap_err().field, "erasure.loss[0]");
        let c = AccuracyConfig {
            quantisation: QuantisationLossConfig { bits16: 0.0, bits8: 0.01, bits4: 0.005 },
            erasure: ErasureLossConfig::default(),
        };
        assert_eq!(c.validate().unwrap_err().field, "quantisation.bits4");
        let e = ErasureLossConfig::AlsSurrogate { kappa: f64::NAN }.validate().unwrap_err();
        assert_eq!(e.field, "kappa");
    }

    #[test]
    fn toml_round_trip_and_defaults() {
        let c: AccuracyConfig = toml::from_str("[erasure]\nkind = \"als-surrogate\"\n").unwrap();
        assert_eq!(c, AccuracyConfig::default());
        let text = r#"
            [quantisation]
            bits4 = 0.02
            [erasure]
            kind = "measured"
            erasure_rates = [0.1, 0.2]
            depth_fractions = [0.0, 0.5, 1.0]
            loss = [[0.04, 0.02, 0.01], [0.08, 0.05, 0.02]]
        "#;
        let c: AccuracyConfig = toml::from_str(text).unwrap();
        c.validate().unwrap();
        assert_eq!(c.quantisation.bits8, QUANT_LOSS_8_BIT);
        assert_eq!(c.erasure, measured().erasure);
        let e = toml::from_str::<AccuracyConfig>("[erasure]\nkind = \"als-surrogate\"\nkapa = 1.0\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("kapa"), "{e}");
    }
}
