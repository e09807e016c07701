//! Markov regime switching in continuous time, shared by every regime-modulated process (arrival
//! rates, link-rate regimes, shared-cloud load, edge background load).
//!
//! Regime k lasts an exponential time with mean `mean_dwell_s[k]`; on leaving it the next regime
//! is drawn uniformly among the others. The parametrisation is in seconds, so a process behaves
//! the same whatever the slot length, and the chain is simulated exactly (several switches may
//! happen in one slot). The stationary law is π_k ∝ mean_dwell_s[k] (the embedded jump chain is
//! uniform over regimes).
//!
//! A chain may instead give a regime Gamma-distributed dwells (shape k ≥ 1, mean unchanged, so a
//! coefficient of variation 1/√k): a semi-Markov chain, for sojourns more regular than
//! exponential (a train's station dwell). Then the time already spent in the regime predicts
//! when it ends, so the state records it (`elapsed_s`). Shape 1 is the exponential dwell, drawn
//! exactly as before (same random numbers), so a chain without shapes is unchanged.

use crate::validate::{InvalidField, Validation, in_range, positive};
use rand::{Rng, RngExt};
use rand_distr::{Distribution, Exp1, Gamma};
use serde::{Deserialize, Serialize};

/// The current regime, the time left in it and the time spent in it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RegimeState {
    pub regime: usize,
    pub dwell_left_s: f64,
    /// Time spent in the regime so far. Counted from the regime's start, except for an
    /// exponential dwell at a stationary start, where it counts from the start of the chain
    /// (memorylessness makes the time before irrelevant, and drawing it would change the random
    /// numbers of every existing chain). Saved states without it load as 0.
    #[serde(default)]
    pub elapsed_s: f64,
}

/// Largest Gamma dwell shape: a coefficient of variation of 1 % (a dwell that regular is a
/// schedule, not a random process).
pub const MAX_DWELL_SHAPE: f64 = 10_000.0;

/// Draws of the dwell law tried when redrawing a residual conditioned on the time already spent
/// (rejection sampling). Past them (the regime has lasted far beyond its mean) the residual is
/// exponential with mean θ = mean/k, the limit of a Gamma(k, θ) residual as the elapsed time
/// grows: its hazard rises to 1/θ.
const RESIDUAL_REJECTION_TRIES: usize = 1_000;

/// A validated regime chain.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RegimeChain {
    mean_dwell_s: Vec<f64>,
    /// Gamma shape of each regime's dwell; empty = every dwell exponential (shape 1).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    dwell_shape: Vec<f64>,
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
        Ok(Self { mean_dwell_s: mean_dwell_s.to_vec(), dwell_shape: Vec::new() })
    }

    /// A chain whose regime k dwells a Gamma time of mean `mean_dwell_s[k]` and shape
    /// `dwell_shape[k]` (1 = exponential). Errors name `dwell_shape[k]` (one entry per regime,
    /// each in [1, [`MAX_DWELL_SHAPE`]]).
    pub fn with_dwell_shapes(mean_dwell_s: &[f64], dwell_shape: &[f64]) -> Result<Self, InvalidField> {
        let mut chain = Self::new(mean_dwell_s)?;
        check_regime_list("dwell_shape", dwell_shape, mean_dwell_s.len())?;
        for (k, &shape) in dwell_shape.iter().enumerate() {
            in_range(
                &format!("dwell_shape[{k}]"),
                shape,
                1.0,
                MAX_DWELL_SHAPE,
                "Gamma shape of the dwell: 1 = exponential, k = coefficient of variation 1/√k",
            )?;
        }
        if dwell_shape.iter().any(|&k| k != 1.0) {
            chain.dwell_shape = dwell_shape.to_vec();
        }
        Ok(chain)
    }

    /// Whether some regime's dwell is not exponential (a semi-Markov chain: the time spent in a
    /// regime tells when it ends).
    pub fn is_semi_markov(&self) -> bool {
        !self.dwell_shape.is_empty()
    }

    /// Gamma shape of regime `k`'s dwell (1 = exponential).
    pub fn dwell_shape(&self, k: usize) -> f64 {
        self.dwell_shape.get(k).copied().unwrap_or(1.0)
    }

    /// One regime that never switches. Its dwell is `f64::MAX`, not infinity, so states stay
    /// finite and round-trip through JSON checkpoints.
    pub fn single() -> Self {
        Self { mean_dwell_s: vec![f64::MAX], dwell_shape: Vec::new() }
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
    /// makes the residual of a stationary exponential dwell exponential with the same mean). A
    /// Gamma(k, θ) dwell met at a random time is length-biased, Gamma(k + 1, θ), and the moment
    /// falls uniformly inside it: elapsed = (1 − u)·L, residual = u·L (the equilibrium law of a
    /// renewal process).
    pub fn initial_state(&self, rng: &mut impl Rng) -> RegimeState {
        if self.n_regimes() == 1 {
            return RegimeState { regime: 0, dwell_left_s: f64::MAX, elapsed_s: 0.0 };
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
        let shape = self.dwell_shape(regime);
        if shape == 1.0 {
            return RegimeState { regime, dwell_left_s: self.draw_dwell_s(regime, rng), elapsed_s: 0.0 };
        }
        let length = gamma_sample(shape + 1.0, self.mean_dwell_s[regime] / shape, rng);
        let u = rng.random::<f64>();
        RegimeState { regime, dwell_left_s: u * length, elapsed_s: (1.0 - u) * length }
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
            state.elapsed_s = 0.0;
        }
        state.dwell_left_s -= left_s;
        state.elapsed_s += left_s;
    }

    /// Draws a fresh residual dwell for the current regime from its law given the regime and the
    /// time already spent in it, so the future it starts is a sample of the chain's future given
    /// what a device could know (a look-ahead that must not know when the regime ends). For an
    /// exponential dwell that law is the dwell's own (memorylessness); for a Gamma dwell it is
    /// T − a given T > a, a = `elapsed_s`, drawn by rejection ([`RESIDUAL_REJECTION_TRIES`]).
    pub fn redraw_residual(&self, state: &mut RegimeState, rng: &mut impl Rng) {
        if self.n_regimes() < 2 {
            return;
        }
        let shape = self.dwell_shape(state.regime);
        if shape == 1.0 {
            state.dwell_left_s = self.draw_dwell_s(state.regime, rng);
            return;
        }
        let scale = self.mean_dwell_s[state.regime] / shape;
        for _ in 0..RESIDUAL_REJECTION_TRIES {
            let t = gamma_sample(shape, scale, rng);
            if t > state.elapsed_s {
                state.dwell_left_s = t - state.elapsed_s;
                return;
            }
        }
        let e: f64 = Exp1.sample(rng);
        state.dwell_left_s = e * scale;
    }

    fn draw_dwell_s(&self, regime: usize, rng: &mut impl Rng) -> f64 {
        let shape = self.dwell_shape(regime);
        if shape == 1.0 {
            let e: f64 = Exp1.sample(rng);
            return e * self.mean_dwell_s[regime];
        }
        gamma_sample(shape, self.mean_dwell_s[regime] / shape, rng)
    }
}

/// One Gamma(shape, scale) draw; shape ≥ 1 and scale > 0 are checked by the constructor, so
/// the distribution always builds.
fn gamma_sample(shape: f64, scale: f64, rng: &mut impl Rng) -> f64 {
    match Gamma::new(shape, scale) {
        Ok(g) => g.sample(rng),
        // Unreachable for validated chains; the mean keeps a caller going rather than panicking.
        Err(_) => shape * scale,
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
    fn gamma_dwells_start_length_biased_and_redraw_given_the_time_spent() {
        // Regime 0: Gamma(k = 4, mean 20 s), θ = 5 s; regime 1 exponential, mean 20 s.
        let chain = RegimeChain::with_dwell_shapes(&[20.0, 20.0], &[4.0, 1.0]).unwrap();
        assert_eq!((chain.dwell_shape(0), chain.dwell_shape(1)), (4.0, 1.0));
        let mut rng = StreamRng::seed_from_u64(3);
        // A stationary start inside a Gamma(k, θ) dwell: the dwell is length-biased,
        // Gamma(k + 1, θ), mean (k + 1)θ = 25 s, and the residual is a uniform share of it, mean
        // 12.5 s (= E[T²]/(2E[T]) = kθ²(k + 1)/(2kθ)); the elapsed part has the same law. The
        // residual's sd is √(E[(uL)²] − 12.5²) = √((1/3)·(k+1)(k+2)θ² − 156.25) = √(93.75);
        // N = 40 000 starts in regime 0 (half of them), 5 sd of the mean: 5·9.68/√20 000 = 0.34.
        let (mut n, mut left, mut spent) = (0usize, 0.0, 0.0);
        for _ in 0..40_000 {
            let s = chain.initial_state(&mut rng);
            if s.regime == 0 {
                (n, left, spent) = (n + 1, left + s.dwell_left_s, spent + s.elapsed_s);
            } else {
                assert_eq!(s.elapsed_s, 0.0, "an exponential dwell draws no elapsed time");
            }
        }
        assert!((n as f64 / 40_000.0 - 0.5).abs() < 5.0 * (0.25f64 / 40_000.0).sqrt(), "{n}");
        assert!((left / n as f64 - 12.5).abs() < 0.34, "{}", left / n as f64);
        assert!((spent / n as f64 - 12.5).abs() < 0.34, "{}", spent / n as f64);
        // Given 30 s already spent in regime 0, T − 30 given T > 30 for T ~ Gamma(4, 5):
        // E = ∫_30^∞ P(T > t) dt / P(T > 30). With x = t/5, P(T > t) = e^{−x}(1 + x + x²/2 + x³/6):
        // at x = 6, P = e^{−6}·61 = 0.151204; ∫_6^∞ e^{−x}Σ_{j<4}(4 − j)x^j/j! dx·5 gives
        // 5·e^{−6}·(4 + 3·6 + 2·18 + 36) = 5·e^{−6}·94, so E = 5·94/61 = 7.7049 s (shorter than
        // the 20 s mean: the dwell is nearly over). Exponential regime 1: still 20 s.
        let (mut sum, n) = (0.0, 20_000);
        for _ in 0..n {
            let mut s = RegimeState { regime: 0, dwell_left_s: 1.0, elapsed_s: 30.0 };
            chain.redraw_residual(&mut s, &mut rng);
            assert_eq!((s.regime, s.elapsed_s), (0, 30.0));
            sum += s.dwell_left_s;
        }
        // The residual's sd is below its mean's 2× bound here (hazard ≥ 1/θ·(1 − …)); 5·7.7/√n.
        assert!((sum / n as f64 - 5.0 * 94.0 / 61.0).abs() < 5.0 * 7.7 / (n as f64).sqrt(), "{}", sum / n as f64);
        let mut s = RegimeState { regime: 1, dwell_left_s: 1.0, elapsed_s: 30.0 };
        let mut sum = 0.0;
        for _ in 0..n {
            chain.redraw_residual(&mut s, &mut rng);
            sum += s.dwell_left_s;
        }
        assert!((sum / n as f64 - 20.0).abs() < 5.0 * 20.0 / (n as f64).sqrt(), "{}", sum / n as f64);
        // Advancing counts the time spent and restarts it at every switch.
        let mut s = RegimeState { regime: 0, dwell_left_s: 3.0, elapsed_s: 1.0 };
        chain.advance(&mut s, 2.0, &mut rng);
        assert_eq!((s.regime, s.dwell_left_s, s.elapsed_s), (0, 1.0, 3.0));
        chain.advance(&mut s, 1.5, &mut rng);
        assert_eq!((s.regime, s.elapsed_s), (1, 0.5));
        // Shapes: one per regime, each in [1, MAX_DWELL_SHAPE]; all-ones is the plain chain.
        assert_eq!(RegimeChain::with_dwell_shapes(&[1.0, 2.0], &[1.0]).unwrap_err().field, "dwell_shape");
        assert_eq!(RegimeChain::with_dwell_shapes(&[1.0, 2.0], &[1.0, 0.9]).unwrap_err().field, "dwell_shape[1]");
        assert_eq!(
            RegimeChain::with_dwell_shapes(&[1.0, 2.0], &[1.0, 1.0]).unwrap(),
            RegimeChain::new(&[1.0, 2.0]).unwrap()
        );
        // A saved state from before elapsed_s loads with 0.
        let old: RegimeState = serde_json::from_str(r#"{"regime":1,"dwell_left_s":2.5}"#).unwrap();
        assert_eq!(old, RegimeState { regime: 1, dwell_left_s: 2.5, elapsed_s: 0.0 });
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
