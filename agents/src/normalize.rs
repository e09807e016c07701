//! Running observation normalisation and reward scaling in the manner of SB3's `VecNormalize`:
//! per-feature running mean/variance merged batch by batch with Chan et al.'s parallel update
//! (the batch form of Welford's algorithm), observations mapped to `(x − μ)/√(σ² + ε)` clipped to
//! ±`clip_obs`, and rewards divided by the running std of the discounted return. Their statistics
//! are plain serde data: they are part of the agent's state and of any exported policy's input.

use serde::{Deserialize, Serialize};

/// SB3 VecNormalize `epsilon=1e-8`, added to the variance before the square root.
pub const NORMALIZE_EPSILON: f64 = 1e-8;

/// Per-feature running mean and (population) variance over every sample seen.
///
/// Unlike SB3's `RunningMeanStd` (which starts at `count = 1e-4` to avoid a division by zero),
/// the count starts at exactly 0, so the statistics equal a two-pass mean/variance over all
/// samples; the variance starts at 1 so normalising before any update is the identity.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunningMeanStd {
    pub mean: Vec<f64>,
    pub var: Vec<f64>,
    pub count: f64,
}

impl RunningMeanStd {
    pub fn new(dim: usize) -> Self {
        Self { mean: vec![0.0; dim], var: vec![1.0; dim], count: 0.0 }
    }

    pub fn dim(&self) -> usize {
        self.mean.len()
    }

    /// Merges a batch of `rows.len() / dim` samples (row-major).
    pub fn update(&mut self, rows: &[f32]) {
        let dim = self.dim();
        assert!(dim > 0 && rows.len().is_multiple_of(dim), "batch of {} values is not rows of {dim}", rows.len());
        let n_b = rows.len() / dim;
        if n_b == 0 {
            return;
        }
        for j in 0..dim {
            let column = rows.iter().skip(j).step_by(dim).map(|&x| f64::from(x));
            let (mean_b, m2_b) = mean_and_m2(column, n_b);
            self.merge(j, mean_b, m2_b, n_b as f64);
        }
        self.count += n_b as f64;
    }

    /// Merges a batch of scalar samples into a one-feature statistic.
    pub fn update_scalars(&mut self, values: &[f64]) {
        assert_eq!(self.dim(), 1, "update_scalars needs a one-feature statistic");
        if values.is_empty() {
            return;
        }
        let (mean_b, m2_b) = mean_and_m2(values.iter().copied(), values.len());
        self.merge(0, mean_b, m2_b, values.len() as f64);
        self.count += values.len() as f64;
    }

    /// Chan, Golub & LeVeque (1979): with δ = μ_b − μ_a and n = n_a + n_b,
    /// μ = μ_a + δ·n_b/n and M2 = M2_a + M2_b + δ²·n_a·n_b/n, σ² = M2/n.
    fn merge(&mut self, j: usize, mean_b: f64, m2_b: f64, n_b: f64) {
        let n_a = self.count;
        let n = n_a + n_b;
        let delta = mean_b - self.mean[j];
        let m2_a = self.var[j] * n_a;
        self.mean[j] += delta * n_b / n;
        self.var[j] = (m2_a + m2_b + delta * delta * n_a * n_b / n) / n;
    }
}

/// Two-pass mean and sum of squared deviations of one batch.
fn mean_and_m2(values: impl Iterator<Item = f64> + Clone, n: usize) -> (f64, f64) {
    let mean = values.clone().sum::<f64>() / n as f64;
    let m2 = values.map(|x| (x - mean) * (x - mean)).sum();
    (mean, m2)
}

/// Observation normaliser: running statistics plus the clip.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ObsNormalizer {
    pub stats: RunningMeanStd,
    pub clip: f64,
}

impl ObsNormalizer {
    pub fn new(dim: usize, clip: f64) -> Self {
        Self { stats: RunningMeanStd::new(dim), clip }
    }

    /// Writes `clip((x − μ)/√(σ² + ε), ±clip)` of every row of `raw` into `out`.
    pub fn normalize_into(&self, raw: &[f32], out: &mut [f32]) {
        assert_eq!(raw.len(), out.len(), "normalize_into: input and output lengths differ");
        let dim = self.stats.dim();
        for (row_in, row_out) in raw.chunks_exact(dim).zip(out.chunks_exact_mut(dim)) {
            for j in 0..dim {
                let z = (f64::from(row_in[j]) - self.stats.mean[j]) / (self.stats.var[j] + NORMALIZE_EPSILON).sqrt();
                row_out[j] = z.clamp(-self.clip, self.clip) as f32;
            }
        }
    }
}

/// SB3 VecNormalize reward scaling: per member, the discounted return `G ← γ·G + r` feeds a
/// running variance, and the reward is divided by its std (not centred) and clipped; `G` restarts
/// when the member's episode ends.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RewardScaler {
    pub return_stats: RunningMeanStd,
    /// Running discounted return of each vector-env member.
    pub returns: Vec<f64>,
    pub gamma: f64,
    pub clip: f64,
}

impl RewardScaler {
    pub fn new(n_envs: usize, gamma: f64, clip: f64) -> Self {
        Self { return_stats: RunningMeanStd::new(1), returns: vec![0.0; n_envs], gamma, clip }
    }

    /// Scales one vector step of rewards into `out`, updating the statistics first (as SB3 does).
    pub fn scale_into(&mut self, rewards: &[f64], episode_ended: &[bool], out: &mut [f32]) {
        assert!(rewards.len() == self.returns.len() && out.len() == rewards.len());
        for (g, &r) in self.returns.iter_mut().zip(rewards) {
            *g = *g * self.gamma + r;
        }
        self.return_stats.update_scalars(&self.returns);
        let std = self.std();
        for ((o, &r), (g, &ended)) in out.iter_mut().zip(rewards).zip(self.returns.iter_mut().zip(episode_ended)) {
            *o = (r / std).clamp(-self.clip, self.clip) as f32;
            if ended {
                *g = 0.0;
            }
        }
    }

    /// Scales one reward with the current statistics, without updating them (a counterfactual
    /// reward scaled exactly like the real one of the same step).
    pub fn scale(&self, reward: f64) -> f32 {
        (reward / self.std()).clamp(-self.clip, self.clip) as f32
    }

    fn std(&self) -> f64 {
        (self.return_stats.var[0] + NORMALIZE_EPSILON).sqrt()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn two_pass(rows: &[f32], dim: usize) -> (Vec<f64>, Vec<f64>) {
        let n = (rows.len() / dim) as f64;
        let mut mean = vec![0.0; dim];
        for row in rows.chunks_exact(dim) {
            for j in 0..dim {
                mean[j] += f64::from(row[j]) / n;
            }
        }
        let mut var = vec![0.0; dim];
        for row in rows.chunks_exact(dim) {
            for j in 0..dim {
                var[j] += (f64::from(row[j]) - mean[j]).powi(2) / n;
            }
        }
        (mean, var)
    }

    #[test]
    fn running_stats_match_two_pass_over_batches() {
        // Three batches of different sizes and offsets (2 features): the merged statistics must
        // equal one two-pass computation over all 9 rows.
        let batches: [&[f32]; 3] =
            [&[1.0, 10.0, 2.0, 20.0, 3.0, 30.0], &[-4.0, 100.0], &[0.5, -1.0, 7.0, 3.0, 2.5, 2.5, 9.0, 0.0, -1.5, 8.0]];
        let mut stats = RunningMeanStd::new(2);
        for b in batches {
            stats.update(b);
        }
        let all: Vec<f32> = batches.concat();
        let (mean, var) = two_pass(&all, 2);
        assert_eq!(stats.count, 9.0);
        for j in 0..2 {
            // Both are f64 sums of ≤ 9 terms of magnitude ≤ 1e4: agreement to 1e-12 relative.
            assert!((stats.mean[j] - mean[j]).abs() <= 1e-12 * mean[j].abs().max(1.0));
            assert!((stats.var[j] - var[j]).abs() <= 1e-12 * var[j].max(1.0));
        }
        // Hand check of feature 0: values 1,2,3,−4,0.5,7,2.5,9,−1.5 sum to 19.5, mean 2.1666…
        assert!((stats.mean[0] - 19.5 / 9.0).abs() < 1e-12);
    }

    #[test]
    fn normalizer_centres_scales_and_clips() {
        let mut n = ObsNormalizer::new(1, 10.0);
        // Before any update the map is the identity (mean 0, var 1) up to ε.
        let mut out = [0.0f32; 2];
        n.normalize_into(&[3.0, -2.0], &mut out);
        assert!((out[0] - 3.0).abs() < 1e-6 && (out[1] + 2.0).abs() < 1e-6);
        // Samples 1 and 3: mean 2, population variance 1. x = 4 → (4 − 2)/1 = 2;
        // x = 1000 → 998, clipped to 10.
        n.stats.update(&[1.0, 3.0]);
        n.normalize_into(&[4.0, 1000.0], &mut out);
        assert!((out[0] - 2.0).abs() < 1e-6, "{out:?}");
        assert_eq!(out[1], 10.0);
    }

    #[test]
    fn reward_scaler_divides_by_return_std_and_resets_on_episode_end() {
        // One member, γ = 0.5, rewards 2 then 2 (episode ends after the second).
        // Step 1: G = 2, stats over {2}: var 0 → std √1e-8 = 1e-4, reward 2/1e-4 = 2e4 → clip 10.
        // Step 2: G = 0.5·2 + 2 = 3, stats over {2, 3}: var 0.25, std √(0.25+1e-8) ≈ 0.5,
        // reward 2/0.5 = 4; G then resets to 0.
        let mut s = RewardScaler::new(1, 0.5, 10.0);
        let mut out = [0.0f32];
        s.scale_into(&[2.0], &[false], &mut out);
        assert_eq!(out[0], 10.0);
        s.scale_into(&[2.0], &[true], &mut out);
        assert!((out[0] - 4.0).abs() < 1e-5, "{out:?}");
        assert_eq!(s.returns, vec![0.0]);
        // Step 3 after the reset: G = 1, stats over {2, 3, 1}: mean 2, var 2/3.
        s.scale_into(&[1.0], &[false], &mut out);
        let expected = 1.0 / (2.0f64 / 3.0 + 1e-8).sqrt();
        assert!((f64::from(out[0]) - expected).abs() < 1e-5, "{out:?}");
    }
}
