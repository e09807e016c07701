//! Markov regime switching in continuous time, shared by every regime-modulated process (arrival
//! rates, link-rate regimes, shared-cloud load, edge background load).
//!
//! Regime k lasts an exponential time with mean `mean_dwell_s[k]`; on leaving it the next regime
//! is drawn uniformly among the others. The parametrisation is in seconds, so a process behaves
//! the same whatever the slot length, and the chain is simulated exactly (several switches may
//! happen in one slot). The stationary law is π_k ∝ mean_dwell_s[k] (the embedded jump chain is
//! uniform over regimes).

use crate::validate::{InvalidField, Validation, positive};
use rand::{Rng, RngExt};
use rand_distr::{Distribution, Exp1};
use serde::{Deserialize, Serialize};

/// The current regime and the time left in it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RegimeState {
    pub regime: usize,
    pub dwell_left_s: f64,
}

/// A validated regime chain.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RegimeChain {
    mean_dwell_s: Vec<f64>,
}

/// Validates a per-regime list against the number of regimes (`field` is its name).
pub fn check_regime_list(field: &str, values: &[f64], n_regimes: usize) -> Validation {
    if values.len() != n_regimes {
        return Err(InvalidField::new(
            field,
            format!("{} entries", values.len()),
            format!("must have one entry per regime ({n_regimes})"),
        ));
    }
    Ok(())
}

impl RegimeChain {
    /// `mean_dwell_s` must be non-empty with every entry > 0; errors name `mean_dwell_s[k]`.
    pub fn new(mean_dwell_s: &[f64]) -> Result<Self, InvalidField> {
        if mean_dwell_s.is_empty() {
            return Err(InvalidField::new("mean_dwell_s", "[]", "must list at least one regime"));
        }
        for (k, &d) in mean_dwell_s.iter().enumerate() {
            positive(&format!("mean_dwell_s[{k}]"), d, "mean regime dwell time, s")?;
        }
        Ok(Self { mean_dwell_s: mean_dwell_s.to_vec() })
    }

    /// One regime that never switches. Its dwell is `f64::MAX`, not infinity, so states stay
    /// finite and round-trip through JSON checkpoints.
    pub fn single() -> Self {
        Self { mean_dwell_s: vec![f64::MAX] }
    }

    pub fn n_regimes(&self) -> usize {
        self.mean_dwell_s.len()
    }

    /// Stationary probability of regime `k`: mean_dwell_s[k] / Σ mean_dwell_s.
    pub fn stationary_probability(&self, k: usize) -> f64 {
        if self.n_regimes() == 1 {
            return 1.0;
        }
        self.mean_dwell_s[k] / self.mean_dwell_s.iter().sum::<f64>()
    }

    /// Σ_k π_k · values[k].
    pub fn stationary_mean(&self, values: &[f64]) -> f64 {
        values.iter().enumerate().map(|(k, v)| v * self.stationary_probability(k)).sum()
    }

    /// A stationary start: the regime from π and an Exp(mean dwell) residual (memorylessness
    /// makes the residual of a stationary exponential dwell exponential with the same mean).
    pub fn initial_state(&self, rng: &mut impl Rng) -> RegimeState {
        if self.n_regimes() == 1 {
            return RegimeState { regime: 0, dwell_left_s: f64::MAX };
        }
        let total: f64 = self.mean_dwell_s.iter().sum();
        let mut u = rng.random::<f64>() * total;
        let mut regime = self.n_regimes() - 1;
        for (k, &d) in self.mean_dwell_s.iter().enumerate() {
            if u < d {
                regime = k;
                break;
            }
            u -= d;
        }
        RegimeState { regime, dwell_left_s: self.draw_dwell_s(regime, rng) }
    }

    /// Advances the chain by `dt_s`.
    pub fn advance(&self, state: &mut RegimeState, dt_s: f64, rng: &mut impl Rng) {
        let n = self.n_regimes();
        if n < 2 {
            return;
        }
        let mut left_s = dt_s;
        while state.dwell_left_s <= left_s {
            left_s -= state.dwell_left_s;
            // Uniform over the n − 1 other regimes.
            let j = rng.random_range(0..n - 1);
            state.regime = if j >= state.regime { j + 1 } else { j };
            state.dwell_left_s = self.draw_dwell_s(state.regime, rng);
        }
        state.dwell_left_s -= left_s;
    }

    /// Draws a fresh residual dwell for the current regime: by memorylessness it has the law of
    /// the one it replaces, so the future it starts is a sample of the chain's future given the
    /// regime alone (a look-ahead that must not know when the regime ends).
    pub fn redraw_residual(&self, state: &mut RegimeState, rng: &mut impl Rng) {
        if self.n_regimes() >= 2 {
            state.dwell_left_s = self.draw_dwell_s(state.regime, rng);
        }
    }

    fn draw_dwell_s(&self, regime: usize, rng: &mut impl Rng) -> f64 {
        let e: f64 = Exp1.sample(rng);
        e * self.mean_dwell_s[regime]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::StreamRng;
    use rand::SeedableRng;

    #[test]
    fn long_run_occupancy_matches_dwell_times() {
        // Dwells 30 s and 10 s: π = (0.75, 0.25). Over T = 200 000 s sampled each second, the
        // occupation frequency has a correlation time of τ = 1/(1/30 + 1/10) = 7.5 s, so its
        // sd ≈ sqrt(2τ·π(1−π)/T) = sqrt(15·0.1875/2e5) = 3.75e-3; allow 5 sd.
        let chain = RegimeChain::new(&[30.0, 10.0]).unwrap();
        let mut rng = StreamRng::seed_from_u64(9);
        let mut s = chain.initial_state(&mut rng);
        let t = 200_000;
        let mut in0 = 0;
        for _ in 0..t {
            chain.advance(&mut s, 1.0, &mut rng);
            in0 += usize::from(s.regime == 0);
        }
        let f = in0 as f64 / t as f64;
        assert!((f - 0.75).abs() < 5.0 * 3.75e-3, "{f}");
        assert_eq!(chain.stationary_mean(&[1.0, 5.0]), 0.75 + 1.25);
    }

    #[test]
    fn single_regime_never_switches_and_errors_name_the_entry() {
        let chain = RegimeChain::single();
        let mut rng = StreamRng::seed_from_u64(1);
        let mut s = chain.initial_state(&mut rng);
        chain.advance(&mut s, 1e9, &mut rng);
        assert_eq!(s.regime, 0);
        let json = serde_json::to_string(&s).unwrap();
        assert_eq!(serde_json::from_str::<RegimeState>(&json).unwrap(), s, "finite, so JSON round-trips");
        assert_eq!(RegimeChain::new(&[5.0, -1.0]).unwrap_err().field, "mean_dwell_s[1]");
        assert_eq!(check_regime_list("levels", &[1.0], 2).unwrap_err().field, "levels");
    }
}
