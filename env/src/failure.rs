//! Transfer failures and recovery (system-model.md §8): a transfer across the link fails on an
//! outage (the slot's mean SNR against a threshold under Nakagami-m fading, §4) or through a
//! Gilbert–Elliott good/bad link process; a failed request resumes from its last partition
//! checkpoint after an exponential backoff d_k = min(d_0·2^k, d_max)·(1 + jitter·u), and falls
//! back to a safe plan after K_max failures. This module owns the failure probabilities, the
//! Gilbert–Elliott chain, the backoff schedule and the [`FailureClock`] that draws the first
//! failure among many crossings with one random number per failure. What the environment does on
//! a failure (checkpoint resume, fallback plan, counting) lives with the environment.

use crate::link::{db_to_linear, outage_probability};
use crate::regime::{MAX_DWELL_SHAPE, RegimeChain, RegimeState};
use crate::validate::{InvalidField, Validation, in_range, non_negative, positive, probability};
use rand::Rng;
use rand_distr::{Distribution, Exp1};
use serde::{Deserialize, Serialize};

/// Transport-level recovery defaults (a failed crossing is a lost segment that the transport
/// retransmits): Linux TCP, the stack under every HTTP/gRPC client on a Jetson, a Pi or an
/// Android phone. RFC 6298 §2.5 doubles the retransmission timeout (RTO) on every expiry and
/// allows a cap of at least 60 s; Linux uses `TCP_RTO_MIN` = 200 ms, `TCP_RTO_MAX` = 120 s and
/// gives up after `tcp_retries2` = 15 consecutive retransmissions (include/net/tcp.h,
/// Documentation/networking/ip-sysctl.rst). TCP's RTO carries no random jitter.
pub const DEFAULT_CHECKPOINTS: bool = true;
pub const DEFAULT_INITIAL_BACKOFF_S: f64 = 0.2;
pub const DEFAULT_MAX_BACKOFF_S: f64 = 120.0;
pub const DEFAULT_MAX_RETRIES: u32 = 15;
pub const DEFAULT_JITTER_FRACTION: f64 = 0.0;
/// Total time a request may take before the client gives up: the OpenAI and Anthropic Python
/// SDKs' `DEFAULT_TIMEOUT` (600 s; openai-python and anthropic-sdk-python `_constants.py`).
pub const DEFAULT_TIMEOUT_S: f64 = 600.0;
/// Request-level retries of a rejected request (HTTP 429 rate limit, 529/503 overloaded): the
/// OpenAI and Anthropic Python SDKs' `DEFAULT_MAX_RETRIES = 2`, `INITIAL_RETRY_DELAY = 0.5`,
/// `MAX_RETRY_DELAY = 8.0`, delay `min(0.5·2^k, 8)·(1 − 0.25·u)` (`_calculate_retry_timeout` in
/// `_base_client.py`; both SDKs retry 408, 409, 429 and every status ≥ 500).
pub const DEFAULT_API_MAX_RETRIES: u32 = 2;
pub const DEFAULT_API_INITIAL_BACKOFF_S: f64 = 0.5;
pub const DEFAULT_API_MAX_BACKOFF_S: f64 = 8.0;
pub const DEFAULT_API_JITTER_FRACTION: f64 = 0.25;
/// Stall after which an opt-in edge fallback abandons the cloud (our assumption: the scenario
/// states its own when it enables the fallback).
pub const DEFAULT_FALLBACK_AFTER_S: f64 = 10.0;

/// Doubling beyond 2^1023 overflows; the cap d_max is reached long before.
const MAX_BACKOFF_EXPONENT: u32 = 1023;

/// Gilbert–Elliott link state (Gilbert 1960, Elliott 1963).
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum GeState {
    #[default]
    Good,
    Bad,
}

/// The Gilbert–Elliott channel in continuous time: Good and Bad alternate with exponential
/// sojourns of mean `mean_good_s` and `mean_bad_s` (seconds, so the chain behaves the same at any
/// slot length; the classic per-slot form p_GB, p_BG is its sampling at one slot with
/// p_GB ≈ slot_s / mean_good_s for short slots). In each state a crossing fails with that state's
/// failure probability.
///
/// `sojourn_shape_good` / `sojourn_shape_bad` (default 1 = exponential) make a state's sojourns
/// Gamma-distributed with the same mean and a coefficient of variation 1/√shape: a semi-Markov
/// channel for outages that follow a schedule (a train's station dwell), where the time already
/// spent in a state predicts its end. Shape 1 leaves the chain exactly as the exponential one.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct GilbertElliottConfig {
    pub mean_good_s: f64,
    pub mean_bad_s: f64,
    pub failure_probability_good: f64,
    pub failure_probability_bad: f64,
    #[serde(default = "exponential_shape", skip_serializing_if = "is_exponential_shape")]
    pub sojourn_shape_good: f64,
    #[serde(default = "exponential_shape", skip_serializing_if = "is_exponential_shape")]
    pub sojourn_shape_bad: f64,
}

fn exponential_shape() -> f64 {
    1.0
}

// Serde's skip_serializing_if passes a reference.
#[allow(clippy::trivially_copy_pass_by_ref)]
fn is_exponential_shape(shape: &f64) -> bool {
    *shape == 1.0
}

impl GilbertElliottConfig {
    pub fn validate(&self) -> Validation {
        positive("mean_good_s", self.mean_good_s, "mean sojourn time in the Good state, s")?;
        positive("mean_bad_s", self.mean_bad_s, "mean sojourn time in the Bad state, s")?;
        probability("failure_probability_good", self.failure_probability_good)?;
        probability("failure_probability_bad", self.failure_probability_bad)?;
        let what = "Gamma shape of the sojourns: 1 = exponential, k = coefficient of variation 1/√k";
        in_range("sojourn_shape_good", self.sojourn_shape_good, 1.0, MAX_DWELL_SHAPE, what)?;
        in_range("sojourn_shape_bad", self.sojourn_shape_bad, 1.0, MAX_DWELL_SHAPE, what)
    }

    /// Long-run fraction of time in Bad: mean_bad_s / (mean_good_s + mean_bad_s) (an alternating
    /// renewal process spends in each state its share of the mean cycle).
    pub fn stationary_bad_probability(&self) -> f64 {
        self.mean_bad_s / (self.mean_good_s + self.mean_bad_s)
    }

    #[inline]
    pub fn failure_probability(&self, state: GeState) -> f64 {
        match state {
            GeState::Good => self.failure_probability_good,
            GeState::Bad => self.failure_probability_bad,
        }
    }
}

/// The Bad state's regime index in the chain (Good is regime 0).
const BAD_REGIME: usize = 1;

/// A validated Gilbert–Elliott chain: the project's continuous-time [`RegimeChain`] with two
/// regimes (0 = Good, 1 = Bad), so it is simulated exactly whatever the slot length.
#[derive(Clone, Debug, PartialEq)]
pub struct GilbertElliott {
    config: GilbertElliottConfig,
    chain: RegimeChain,
}

impl GilbertElliott {
    /// Errors name the config field (`mean_good_s`, ...).
    pub fn new(config: &GilbertElliottConfig) -> Result<Self, InvalidField> {
        config.validate()?;
        let chain = RegimeChain::with_dwell_shapes(
            &[config.mean_good_s, config.mean_bad_s],
            &[config.sojourn_shape_good, config.sojourn_shape_bad],
        )
        .map_err(|e| {
            let field = if e.field.ends_with(&format!("[{BAD_REGIME}]")) { "mean_bad_s" } else { "mean_good_s" };
            InvalidField { field: field.to_string(), ..e }
        })?;
        Ok(Self { config: config.clone(), chain })
    }

    pub fn config(&self) -> &GilbertElliottConfig {
        &self.config
    }

    /// Whether a state's sojourns are Gamma, not exponential: outages on a schedule.
    pub fn is_scheduled(&self) -> bool {
        self.chain.is_semi_markov()
    }

    /// Stationary start: Bad with probability [`Self::stationary_bad_probability`], and an
    /// exponential residual sojourn.
    pub fn initial_state(&self, rng: &mut impl Rng) -> RegimeState {
        self.chain.initial_state(rng)
    }

    /// A fresh residual sojourn ([`RegimeChain::redraw_residual`]).
    pub fn redraw_residual(&self, state: &mut RegimeState, rng: &mut impl Rng) {
        self.chain.redraw_residual(state, rng);
    }

    /// Advances the chain by one slot of `slot_s` (any number of switches inside it) and returns
    /// the state the slot ends in.
    #[inline]
    pub fn advance(&self, state: &mut RegimeState, slot_s: f64, rng: &mut impl Rng) -> GeState {
        self.chain.advance(state, slot_s, rng);
        self.state(state)
    }

    #[inline]
    pub fn state(&self, state: &RegimeState) -> GeState {
        if state.regime == BAD_REGIME { GeState::Bad } else { GeState::Good }
    }

    #[inline]
    pub fn failure_probability(&self, state: GeState) -> f64 {
        self.config.failure_probability(state)
    }

    /// mean_bad_s / (mean_good_s + mean_bad_s), the chain's stationary law.
    pub fn stationary_bad_probability(&self) -> f64 {
        self.chain.stationary_probability(BAD_REGIME)
    }
}

/// What makes a crossing fail. Both causes are optional and independent; with neither, transfers
/// never fail.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FailureConfig {
    /// A crossing fails in an outage: instantaneous SNR γ̄·g below this threshold.
    #[serde(default)]
    pub outage_threshold_db: Option<f64>,
    #[serde(default)]
    pub gilbert_elliott: Option<GilbertElliottConfig>,
}

impl FailureConfig {
    pub fn validate(&self) -> Validation {
        if let Some(th) = self.outage_threshold_db
            && !th.is_finite()
        {
            return Err(InvalidField::new(
                "outage_threshold_db",
                th,
                "must be a finite SNR threshold in dB (or omitted for no outage failures)",
            ));
        }
        if let Some(ge) = &self.gilbert_elliott {
            ge.validate().map_err(|e| e.under("gilbert_elliott"))?;
        }
        Ok(())
    }

    /// Probability that one crossing fails in a slot with mean SNR `snr_db`:
    /// 1 − (1 − P_out(γ̄, γ_th, m))·(1 − p_GE(state)), the two causes independent. A missing
    /// cause contributes 0 (and `ge_state` is then ignored).
    #[inline]
    pub fn crossing_failure_probability(&self, snr_db: f64, nakagami_m: f64, ge_state: GeState) -> f64 {
        let outage = match self.outage_threshold_db {
            Some(th_db) => outage_probability(db_to_linear(snr_db), db_to_linear(th_db), nakagami_m),
            None => 0.0,
        };
        let ge = self.gilbert_elliott.as_ref().map_or(0.0, |g| g.failure_probability(ge_state));
        // = 1 − (1 − a)(1 − b), written so a single cause comes back exactly.
        outage + ge - outage * ge
    }
}

/// Recovery after a failed crossing or a rejected request (system-model.md §8).
///
/// A failed crossing is retransmitted after the transport's backoff; the backoff index counts
/// the *consecutive* failures of that crossing (TCP resets its RTO backoff when an
/// acknowledgement arrives), and after `max_retries` consecutive failures the transport gives
/// up. `checkpoints = false` is the "no checkpoint" variant: the request restarts from scratch,
/// so the checkpoint benefit is measurable. Rejections at admission (`api`) are retried by the
/// client SDK. A request that gives up (transport, API retries or the total `timeout_s`) fails,
/// unless the scenario opts into the edge fallback (`fallback`), which also triggers when one
/// crossing has stalled for `fallback.after_s`. Clients do not run the model locally on their own:
/// the fallback is off by default, and a policy can always choose edge-only itself.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct RecoveryConfig {
    pub checkpoints: bool,
    /// First retransmission delay d_0 (s).
    pub initial_backoff_s: f64,
    /// Retransmission delay cap d_max (s).
    pub max_backoff_s: f64,
    /// Consecutive failures of one crossing after which the transport gives up.
    pub max_retries: u32,
    /// The delay is shortened by a factor 1 − jitter_fraction·u, u ~ U[0, 1) (the SDKs' form).
    pub jitter_fraction: f64,
    /// A request still unfinished this long after its start gives up at its next failure.
    pub timeout_s: f64,
    pub api: ApiRetryConfig,
    pub fallback: FallbackConfig,
}

impl Default for RecoveryConfig {
    fn default() -> Self {
        Self {
            checkpoints: DEFAULT_CHECKPOINTS,
            initial_backoff_s: DEFAULT_INITIAL_BACKOFF_S,
            max_backoff_s: DEFAULT_MAX_BACKOFF_S,
            max_retries: DEFAULT_MAX_RETRIES,
            jitter_fraction: DEFAULT_JITTER_FRACTION,
            timeout_s: DEFAULT_TIMEOUT_S,
            api: ApiRetryConfig::default(),
            fallback: FallbackConfig::default(),
        }
    }
}

/// How the client SDK retries a request the cloud rejected (HTTP 429/529).
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ApiRetryConfig {
    pub max_retries: u32,
    pub initial_backoff_s: f64,
    pub max_backoff_s: f64,
    pub jitter_fraction: f64,
}

impl Default for ApiRetryConfig {
    fn default() -> Self {
        Self {
            max_retries: DEFAULT_API_MAX_RETRIES,
            initial_backoff_s: DEFAULT_API_INITIAL_BACKOFF_S,
            max_backoff_s: DEFAULT_API_MAX_BACKOFF_S,
            jitter_fraction: DEFAULT_API_JITTER_FRACTION,
        }
    }
}

impl ApiRetryConfig {
    pub fn validate(&self) -> Validation {
        check_backoff(self.initial_backoff_s, self.max_backoff_s, self.jitter_fraction)?;
        in_range("max_retries", f64::from(self.max_retries), 0.0, 100.0, "retries of a rejected request")
    }

    /// The SDKs' delay before retry `k` (k = 0 after the first rejection).
    #[inline]
    pub fn backoff_delay_s(&self, attempt_k: u32, uniform_u: f64) -> f64 {
        backoff(self.initial_backoff_s, self.max_backoff_s, self.jitter_fraction, attempt_k, uniform_u)
    }

    /// Mean delay of retry `k` over the jitter.
    pub fn mean_backoff_delay_s(&self, attempt_k: u32) -> f64 {
        backoff(self.initial_backoff_s, self.max_backoff_s, self.jitter_fraction, attempt_k, 0.5)
    }
}

/// What a request does when the cloud path gives up.
#[derive(Deserialize, Serialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum FallbackKind {
    /// The request fails (what an app on an LLM API SDK sees: an error).
    #[default]
    None,
    /// The request re-runs on the edge with the edge-only plan, when it fits.
    EdgeOnly,
}

/// The opt-in client-side fallback to the edge.
#[derive(Deserialize, Serialize, Clone, Copy, Debug, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct FallbackConfig {
    pub kind: FallbackKind,
    /// Fall back once a crossing has stalled (failed attempts plus backoffs since its last
    /// success) for at least this long, or when the cloud path gives up, whichever comes first.
    pub after_s: f64,
}

impl Default for FallbackConfig {
    fn default() -> Self {
        Self { kind: FallbackKind::None, after_s: DEFAULT_FALLBACK_AFTER_S }
    }
}

fn check_backoff(initial: f64, max: f64, jitter: f64) -> Validation {
    positive("initial_backoff_s", initial, "first backoff delay d_0")?;
    non_negative("max_backoff_s", max, "backoff cap d_max")?;
    if max < initial {
        return Err(InvalidField::new("max_backoff_s", max, format!("must be >= initial_backoff_s ({initial})")));
    }
    in_range("max_backoff_s", max, 0.0, 86_400.0, "seconds, at most a day")?;
    in_range("jitter_fraction", jitter, 0.0, 1.0, "relative backoff jitter")
}

#[inline]
fn backoff(initial: f64, max: f64, jitter: f64, attempt_k: u32, uniform_u: f64) -> f64 {
    let doubling = 2f64.powi(attempt_k.min(MAX_BACKOFF_EXPONENT) as i32);
    (initial * doubling).min(max) * (1.0 - jitter * uniform_u)
}

impl RecoveryConfig {
    pub fn validate(&self) -> Validation {
        check_backoff(self.initial_backoff_s, self.max_backoff_s, self.jitter_fraction)?;
        in_range("max_retries", f64::from(self.max_retries), 1.0, 1000.0, "consecutive failures before giving up")?;
        in_range("timeout_s", self.timeout_s, 0.001, 86_400.0, "seconds per request, at most a day")?;
        self.api.validate().map_err(|e| e.under("api"))?;
        in_range("after_s", self.fallback.after_s, 0.0, 86_400.0, "seconds of stall before falling back")
            .map_err(|e| e.under("fallback"))
    }

    /// d_k = min(d_0·2^k, d_max)·(1 − jitter·u) for the k-th consecutive retry of a crossing
    /// (k = 0 after its first failure), `uniform_u` in [0, 1) drawn by the caller from the
    /// request's stream.
    #[inline]
    pub fn backoff_delay_s(&self, attempt_k: u32, uniform_u: f64) -> f64 {
        backoff(self.initial_backoff_s, self.max_backoff_s, self.jitter_fraction, attempt_k, uniform_u)
    }

    /// Mean delay of retry `k` over the jitter.
    pub fn mean_backoff_delay_s(&self, attempt_k: u32) -> f64 {
        backoff(self.initial_backoff_s, self.max_backoff_s, self.jitter_fraction, attempt_k, 0.5)
    }

    pub fn edge_fallback(&self) -> bool {
        self.fallback.kind == FallbackKind::EdgeOnly
    }
}

/// Draws the first failure among many crossings with one Exp(1) number per failure.
///
/// A crossing that fails with probability p has hazard h = −ln(1 − p): surviving n crossings
/// has probability e^{−n·h} = (1 − p)ⁿ. The clock holds a remaining budget E ~ Exp(1); the
/// first failing crossing is the first whose cumulative hazard reaches E, so
/// P(first failure at index i) = P(i·h < E <= (i+1)·h) = (1 − p)^i·p, the geometric law.
/// When all n crossings survive, E − n·h is again Exp(1) (memorylessness), so the budget carries
/// over to the next call, possibly with another p; after a failure a fresh budget is drawn.
/// Cost: O(1) per call, whatever n.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq)]
pub struct FailureClock {
    budget: f64,
}

impl FailureClock {
    pub fn new<R: Rng + ?Sized>(rng: &mut R) -> Self {
        Self { budget: Exp1.sample(rng) }
    }

    /// Remaining Exp(1) hazard budget.
    pub fn budget(&self) -> f64 {
        self.budget
    }

    /// Runs `n_crossings` crossings that each fail with probability `p_fail`; returns the
    /// 0-based index of the first failure (and draws a fresh budget from `rng`), or `None` when
    /// all succeed. p <= 0 (or NaN) never fails; p >= 1 fails at once.
    #[inline]
    pub fn consume<R: Rng + ?Sized>(&mut self, n_crossings: u64, p_fail: f64, rng: &mut R) -> Option<u64> {
        if n_crossings == 0 || p_fail.is_nan() || p_fail <= 0.0 {
            return None;
        }
        let hazard = -(-p_fail).ln_1p(); // +∞ for p >= 1
        let total = n_crossings as f64 * hazard;
        if self.budget > total {
            self.budget -= total;
            return None;
        }
        // First i with (i + 1)·h >= E.
        let index = ((self.budget / hazard).ceil() - 1.0).max(0.0);
        let index = if index.is_finite() { (index as u64).min(n_crossings - 1) } else { 0 };
        *self = Self::new(rng);
        Some(index)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::StreamRng;
    use rand::SeedableRng;
    use statrs::distribution::{ChiSquared, ContinuousCDF};

    fn rng(seed: u64) -> StreamRng {
        StreamRng::seed_from_u64(seed)
    }

    fn ge() -> GilbertElliottConfig {
        GilbertElliottConfig {
            mean_good_s: 30.0,
            mean_bad_s: 10.0,
            failure_probability_good: 0.01,
            failure_probability_bad: 0.5,
            sojourn_shape_good: 1.0,
            sojourn_shape_bad: 1.0,
        }
    }

    /// Long-run statistics of a two-state process sampled every `slot_s` for `horizon_s`:
    /// (fraction of samples in Bad, observed state changes per second). `initial_bad` is the
    /// state before the first sample; `next_is_bad` advances one slot and reports the state.
    fn two_state_statistics(
        slot_s: f64,
        horizon_s: f64,
        initial_bad: bool,
        mut next_is_bad: impl FnMut() -> bool,
    ) -> (f64, f64) {
        let n = (horizon_s / slot_s).round() as usize;
        let (mut bad, mut changes, mut prev) = (0usize, 0usize, initial_bad);
        for _ in 0..n {
            let is_bad = next_is_bad();
            bad += usize::from(is_bad);
            changes += usize::from(is_bad != prev);
            prev = is_bad;
        }
        (bad as f64 / n as f64, changes as f64 / horizon_s)
    }

    /// Checks `two_state_statistics` against a continuous-time two-state chain with exponential
    /// sojourns of mean g (Good) and b (Bad), at 5 sd. Derivation:
    /// - Sampled every Δ the chain is a discrete two-state chain with transition matrix
    ///   P(Δ)_ij = π_j + (δ_ij − π_j)·ρ, ρ = e^{−Δ/τ}, τ = 1/(1/g + 1/b), π_B = b/(g + b). The
    ///   Bad indicator thus has autocovariance π_B(1 − π_B)·ρ^|k|, and the mean of n = T/Δ
    ///   samples has variance π_B(1 − π_B)(1 + ρ)/((1 − ρ)·n) (≈ 2τ·π_B(1 − π_B)/T for Δ ≪ τ).
    /// - Consecutive samples differ with probability π_G·P_GB(Δ) + π_B·P_BG(Δ) = 2π_Gπ_B(1 − ρ),
    ///   i.e. 2π_Gπ_B(1 − ρ)/Δ changes per second (it undercounts the 2/(g + b) switches per
    ///   second by the even numbers of switches inside one slot, and so depends on Δ). Its sd is
    ///   taken from the switch count of the alternating renewal process: a cycle (Good + Bad
    ///   sojourn) has mean μ = g + b and variance σ² = g² + b², the number of cycles in T has
    ///   variance ≈ T·σ²/μ³ (renewal CLT), and there are 2 switches per cycle, so the rate has
    ///   sd 2·sqrt(σ²/(μ³·T)).
    fn assert_two_state(
        what: &str,
        g: f64,
        b: f64,
        slot_s: f64,
        horizon_s: f64,
        (bad_fraction, change_rate): (f64, f64),
    ) {
        let pi_b = b / (g + b);
        let tau = 1.0 / (1.0 / g + 1.0 / b);
        let rho = (-slot_s / tau).exp();
        let n = horizon_s / slot_s;
        let sd_fraction = (pi_b * (1.0 - pi_b) * (1.0 + rho) / ((1.0 - rho) * n)).sqrt();
        assert!(
            (bad_fraction - pi_b).abs() < 5.0 * sd_fraction,
            "{what}, slot {slot_s} s: Bad fraction {bad_fraction} vs {pi_b} (sd {sd_fraction})"
        );
        let want_rate = 2.0 * pi_b * (1.0 - pi_b) * (1.0 - rho) / slot_s;
        let (mu, var) = (g + b, g * g + b * b);
        let sd_rate = 2.0 * (var / (mu * mu * mu * horizon_s)).sqrt();
        assert!(
            (change_rate - want_rate).abs() < 5.0 * sd_rate,
            "{what}, slot {slot_s} s: {change_rate} changes/s vs {want_rate} (sd {sd_rate})"
        );
    }

    #[test]
    fn gilbert_elliott_and_rate_regimes_share_long_run_statistics_at_any_slot_length() {
        // Mean sojourns g = 30 s (Good) and b = 10 s (Bad): π_B = 0.25, τ = 7.5 s. Over
        // T = 400 000 s the Bad fraction has sd 2.65e-3 at either slot length (Δ = 1: ρ = 0.8752,
        // n = 4e5; Δ = 0.25: ρ = 0.9672, n = 1.6e6), and the change rate sd 2·sqrt(1000/(40³·T))
        // = 3.95e-4 per second around 0.04681 (Δ = 1) and 0.04918 (Δ = 0.25). The two processes
        // run the same regime chain, so both must match at both slot lengths.
        let config = ge();
        let chain = GilbertElliott::new(&config).unwrap();
        assert_eq!(chain.stationary_bad_probability(), 0.25);
        assert_eq!(config.stationary_bad_probability(), 0.25);
        let mut regimes = crate::link::RegimesConfig::cellular_3g_lte_5g();
        regimes.regimes.truncate(2);
        regimes.regimes[0].mean_dwell_s = config.mean_good_s;
        regimes.regimes[1].mean_dwell_s = config.mean_bad_s;
        let rate = crate::link::RateProcess::new(&crate::link::RateProcessConfig::Regimes(regimes), None).unwrap();
        let in_second_regime = |s: &crate::link::RateState| match s {
            crate::link::RateState::Regimes { regime, .. } => regime.regime == 1,
            other => panic!("not a regimes state: {other:?}"),
        };
        const HORIZON_S: f64 = 400_000.0;
        for (seed, slot_s) in [(40u64, 1.0), (41, 0.25)] {
            let mut r = rng(seed);
            let mut s = chain.initial_state(&mut r);
            let initial_bad = chain.state(&s) == GeState::Bad;
            let stats = two_state_statistics(slot_s, HORIZON_S, initial_bad, || {
                chain.advance(&mut s, slot_s, &mut r) == GeState::Bad
            });
            assert_two_state("Gilbert–Elliott", 30.0, 10.0, slot_s, HORIZON_S, stats);

            let mut r = rng(seed + 100);
            let mut s = rate.initial_state(&mut r);
            let initial_bad = in_second_regime(&s);
            let stats = two_state_statistics(slot_s, HORIZON_S, initial_bad, || {
                rate.advance(&mut s, slot_s, &mut r);
                in_second_regime(&s)
            });
            assert_two_state("rate regimes", 30.0, 10.0, slot_s, HORIZON_S, stats);
        }
    }

    #[test]
    fn gilbert_elliott_starts_stationary_and_moves_as_the_continuous_time_chain() {
        let g = GilbertElliott::new(&ge()).unwrap();
        let mut r = rng(1);
        // Stationary start: Bad with π_B = 0.25; binomial sd sqrt(0.1875/N), 5 sd.
        const N: usize = 100_000;
        let bad0 = (0..N).filter(|_| g.state(&g.initial_state(&mut r)) == GeState::Bad).count();
        assert!((bad0 as f64 / N as f64 - 0.25).abs() < 5.0 * (0.1875 / N as f64).sqrt(), "{bad0}");
        // From Good, one slot of Δ ends in Bad with P_GB(Δ) = π_B·(1 − e^{−Δ/τ}), τ = 7.5 s,
        // counting every switch inside the slot: Δ = 0.25 → 0.25·(1 − e^{−1/30}) = 0.008196,
        // Δ = 1 → 0.25·(1 − e^{−2/15}) = 0.031207, Δ = 20 → 0.25·(1 − e^{−8/3}) = 0.232629.
        // A stationary start conditioned on Good has an Exp(30 s) residual (memorylessness), so
        // N independent such starts give a binomial count; 5 sd.
        for (slot_s, want) in [(0.25, 0.008_196), (1.0, 0.031_207), (20.0, 0.232_629)] {
            let exact = 0.25 * -(-slot_s / 7.5f64).exp_m1();
            assert!((exact - want).abs() < 1e-6, "hand value {want} vs {exact}");
            let mut bad = 0usize;
            for _ in 0..N {
                let mut s = g.initial_state(&mut r);
                while g.state(&s) == GeState::Bad {
                    s = g.initial_state(&mut r);
                }
                let state = g.advance(&mut s, slot_s, &mut r);
                assert_eq!(state, g.state(&s));
                bad += usize::from(state == GeState::Bad);
            }
            let sd = (exact * (1.0 - exact) / N as f64).sqrt();
            assert!((bad as f64 / N as f64 - exact).abs() < 5.0 * sd, "slot {slot_s}: {bad}");
        }
        assert_eq!(g.failure_probability(GeState::Good), 0.01);
        assert_eq!(g.failure_probability(GeState::Bad), 0.5);
        assert_eq!(g.config(), &ge());
    }

    #[test]
    fn gamma_sojourns_keep_the_means_and_shrink_the_spread() {
        // Good sojourns Gamma(k = 16, mean 30 s): sd 30/√16 = 7.5 s, so every sojourn seen over
        // 400 000 s (~10 000 of them) averages 30 s within 5·7.5/√10 000 = 0.375 s and has a
        // coefficient of variation near 0.25; Bad stays exponential (CV 1). The stationary share
        // of Bad is still 10/40 = 0.25 (a renewal process spends its share of the mean cycle).
        let config = GilbertElliottConfig { sojourn_shape_good: 16.0, ..ge() };
        let g = GilbertElliott::new(&config).unwrap();
        assert!(g.is_scheduled() && !GilbertElliott::new(&ge()).unwrap().is_scheduled());
        assert_eq!(g.stationary_bad_probability(), 0.25);
        let mut r = rng(5);
        let mut s = g.initial_state(&mut r);
        let (mut good, mut bad) = (Vec::new(), Vec::new());
        let (mut run, mut first) = (0.0, true);
        let mut state = g.state(&s);
        let slot_s = 0.05;
        for _ in 0..(400_000.0 / slot_s) as usize {
            let next = g.advance(&mut s, slot_s, &mut r);
            run += slot_s;
            if next != state {
                // The first run is cut by the start; every later one is a whole sojourn (±1 slot).
                if !first {
                    if state == GeState::Good { good.push(run) } else { bad.push(run) }
                }
                (run, first, state) = (0.0, false, next);
            }
        }
        let stats = |v: &[f64]| {
            let m = v.iter().sum::<f64>() / v.len() as f64;
            let sd = (v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / v.len() as f64).sqrt();
            (m, sd / m, v.len())
        };
        let (m_good, cv_good, n_good) = stats(&good);
        let (m_bad, cv_bad, _) = stats(&bad);
        assert!(n_good > 9_000, "{n_good}");
        assert!((m_good - 30.0).abs() < 0.375 + slot_s, "{m_good}");
        assert!((cv_good - 0.25).abs() < 0.02, "{cv_good}");
        assert!((m_bad - 10.0).abs() < 5.0 * 10.0 / (n_good as f64).sqrt() + slot_s, "{m_bad}");
        assert!((cv_bad - 1.0).abs() < 0.06, "{cv_bad}");
        // Round trip: the shapes serialise only when they differ from 1.
        let toml = toml::to_string(&config).unwrap();
        assert!(toml.contains("sojourn_shape_good = 16.0") && !toml.contains("sojourn_shape_bad"), "{toml}");
        assert!(!toml::to_string(&ge()).unwrap().contains("sojourn_shape"));
        assert_eq!(toml::from_str::<GilbertElliottConfig>(&toml).unwrap(), config);
    }

    #[test]
    fn crossing_failure_combines_independent_causes() {
        // Outage only, m = 1: γ̄ = 10 dB, γ_th = 0 dB → 1 − e^{−0.1} = 0.0951626.
        let outage_only = FailureConfig { outage_threshold_db: Some(0.0), gilbert_elliott: None };
        let p_out = outage_only.crossing_failure_probability(10.0, 1.0, GeState::Bad);
        assert!((p_out - 0.095_162_581_964_040_43).abs() < 1e-13);
        // GE only: the state's probability.
        let ge_only = FailureConfig { outage_threshold_db: None, gilbert_elliott: Some(ge()) };
        assert_eq!(ge_only.crossing_failure_probability(10.0, 1.0, GeState::Good), 0.01);
        assert_eq!(ge_only.crossing_failure_probability(10.0, 1.0, GeState::Bad), 0.5);
        // Both: 1 − (1 − 0.0951626)(1 − 0.5) = 0.5475813.
        let both = FailureConfig { outage_threshold_db: Some(0.0), gilbert_elliott: Some(ge()) };
        let p = both.crossing_failure_probability(10.0, 1.0, GeState::Bad);
        assert!((p - (1.0 - (1.0 - 0.095_162_581_964_040_43) * 0.5)).abs() < 1e-13);
        // Neither cause: never fails.
        assert_eq!(FailureConfig::default().crossing_failure_probability(-30.0, 0.5, GeState::Bad), 0.0);
    }

    #[test]
    fn backoff_schedule_by_hand() {
        let c = RecoveryConfig::default();
        // TCP: d_k = min(0.2·2^k, 120) without jitter.
        assert!((c.backoff_delay_s(0, 0.7) - 0.2).abs() < 1e-15);
        assert!((c.backoff_delay_s(3, 0.0) - 1.6).abs() < 1e-15);
        assert!((c.backoff_delay_s(9, 0.0) - 102.4).abs() < 1e-12);
        assert!((c.backoff_delay_s(10, 0.0) - 120.0).abs() < 1e-12);
        assert!((c.backoff_delay_s(u32::MAX, 0.25) - 120.0).abs() < 1e-12);
        // The SDKs: min(0.5·2^k, 8)·(1 − 0.25·u).
        let a = ApiRetryConfig::default();
        assert!((a.backoff_delay_s(0, 0.0) - 0.5).abs() < 1e-15);
        assert!((a.backoff_delay_s(1, 0.5) - 0.875).abs() < 1e-15);
        assert!((a.backoff_delay_s(5, 1.0) - 6.0).abs() < 1e-15);
        assert!((a.mean_backoff_delay_s(0) - 0.4375).abs() < 1e-15);
    }

    #[test]
    fn default_recovery_follows_tcp_and_the_llm_sdks_without_a_hidden_fallback() {
        let c: RecoveryConfig = toml::from_str("").unwrap();
        assert_eq!(c, RecoveryConfig::default());
        assert_eq!((c.checkpoints, c.initial_backoff_s, c.max_backoff_s, c.max_retries), (true, 0.2, 120.0, 15));
        assert_eq!(c.timeout_s, 600.0);
        assert_eq!((c.api.max_retries, c.api.initial_backoff_s, c.api.max_backoff_s), (2, 0.5, 8.0));
        assert_eq!(c.fallback.kind, FallbackKind::None);
        assert!(!c.edge_fallback());
        let c: RecoveryConfig =
            toml::from_str("checkpoints = false\nmax_retries = 2\n[fallback]\nkind = \"edge-only\"\nafter_s = 3.0")
                .unwrap();
        assert!(!c.checkpoints && c.max_retries == 2 && c.initial_backoff_s == 0.2);
        assert!(c.edge_fallback() && c.fallback.after_s == 3.0);
        assert!(toml::from_str::<RecoveryConfig>("retries = 2").is_err());
        let f: FailureConfig = toml::from_str(
            "outage_threshold_db = 0.0\n[gilbert_elliott]\nmean_good_s = 30.0\n\
             mean_bad_s = 10.0\nfailure_probability_good = 0.01\nfailure_probability_bad = 0.5\n",
        )
        .unwrap();
        assert_eq!(f.gilbert_elliott, Some(ge()));
        assert!(f.validate().is_ok());
        let state = serde_json::to_string(&GeState::Bad).unwrap();
        assert_eq!(state, "\"bad\"");
    }

    #[test]
    fn invalid_failure_fields_name_their_path() {
        let field = |c: &FailureConfig| c.validate().unwrap_err().field;
        let mut c = FailureConfig { outage_threshold_db: Some(f64::NAN), gilbert_elliott: None };
        assert_eq!(field(&c), "outage_threshold_db");
        c.outage_threshold_db = None;
        let cases = [
            ("mean_good_s", GilbertElliottConfig { mean_good_s: 0.0, ..ge() }),
            ("mean_good_s", GilbertElliottConfig { mean_good_s: f64::INFINITY, ..ge() }),
            ("mean_bad_s", GilbertElliottConfig { mean_bad_s: -1.0, ..ge() }),
            ("mean_bad_s", GilbertElliottConfig { mean_bad_s: f64::NAN, ..ge() }),
            ("failure_probability_good", GilbertElliottConfig { failure_probability_good: 1.5, ..ge() }),
            ("failure_probability_bad", GilbertElliottConfig { failure_probability_bad: -0.1, ..ge() }),
            ("sojourn_shape_good", GilbertElliottConfig { sojourn_shape_good: 0.5, ..ge() }),
            ("sojourn_shape_bad", GilbertElliottConfig { sojourn_shape_bad: f64::NAN, ..ge() }),
            ("sojourn_shape_bad", GilbertElliottConfig { sojourn_shape_bad: 2e4, ..ge() }),
        ];
        for (name, g) in cases {
            c.gilbert_elliott = Some(g.clone());
            assert_eq!(field(&c), format!("gilbert_elliott.{name}"));
            assert_eq!(GilbertElliott::new(&g).unwrap_err().field, name);
        }

        let field = |c: &RecoveryConfig| c.validate().unwrap_err().field;
        let d = RecoveryConfig::default();
        assert_eq!(field(&RecoveryConfig { initial_backoff_s: 0.0, ..d.clone() }), "initial_backoff_s");
        let e = RecoveryConfig { max_backoff_s: 0.05, ..d.clone() }.validate().unwrap_err();
        assert_eq!(field(&RecoveryConfig { timeout_s: 0.0, ..d.clone() }), "timeout_s");
        let api = ApiRetryConfig { initial_backoff_s: -1.0, ..ApiRetryConfig::default() };
        assert_eq!(field(&RecoveryConfig { api, ..d.clone() }), "api.initial_backoff_s");
        assert_eq!(e.field, "max_backoff_s");
        assert!(e.allowed.contains("initial_backoff_s"));
        assert_eq!(field(&RecoveryConfig { jitter_fraction: 1.5, ..d.clone() }), "jitter_fraction");
        assert_eq!(field(&RecoveryConfig { jitter_fraction: -0.1, ..d }), "jitter_fraction");
    }

    /// Chi-square goodness of fit of first-failure indices to the geometric law
    /// P(i) = (1 − p)^i·p, bins 0..k−1 plus a tail bin (expected count >= 50 in each bin).
    /// Rejects at significance 1e-6, so a correct clock fails with probability 1e-6.
    fn assert_geometric(indices: &[u64], p: f64) {
        let n = indices.len() as f64;
        let mut k = 0;
        while n * (1.0 - p).powi(k + 1) * p >= 50.0 && n * (1.0 - p).powi(k + 1) >= 50.0 {
            k += 1;
        }
        let k = k as usize;
        let mut counts = vec![0usize; k + 1];
        for &i in indices {
            counts[(i as usize).min(k)] += 1;
        }
        let mut chi2 = 0.0;
        for (i, &c) in counts.iter().enumerate() {
            let prob = if i < k { (1.0 - p).powi(i as i32) * p } else { (1.0 - p).powi(k as i32) };
            let e = n * prob;
            chi2 += (c as f64 - e).powi(2) / e;
        }
        let critical = ChiSquared::new(k as f64).unwrap().inverse_cdf(1.0 - 1e-6);
        assert!(chi2 < critical, "p={p}: chi² = {chi2} >= {critical} with {k} dof, {counts:?}");
        // Mean check too: E[i] = (1 − p)/p, Var = (1 − p)/p², 5 sd of the sample mean.
        let mean = indices.iter().sum::<u64>() as f64 / n;
        let sd = ((1.0 - p) / (p * p) / n).sqrt();
        assert!((mean - (1.0 - p) / p).abs() < 5.0 * sd, "p={p}: mean {mean}");
    }

    #[test]
    fn failure_clock_first_failure_is_geometric() {
        const N: usize = 100_000;
        for (seed, p) in [(30u64, 0.2), (31, 0.02), (32, 0.7)] {
            let mut r = rng(seed);
            let mut clock = FailureClock::new(&mut r);
            // After each failure the budget is fresh, so successive calls are i.i.d. draws.
            let one_call: Vec<u64> = (0..N).map(|_| clock.consume(u64::MAX, p, &mut r).unwrap()).collect();
            assert_geometric(&one_call, p);

            // Chunked: crossings handed over 3 at a time must give the same law.
            let mut chunked = Vec::with_capacity(N);
            let mut offset = 0u64;
            while chunked.len() < N {
                match clock.consume(3, p, &mut r) {
                    Some(i) => {
                        chunked.push(offset + i);
                        offset = 0;
                    }
                    None => offset += 3,
                }
            }
            assert_geometric(&chunked, p);
        }
    }

    #[test]
    fn failure_clock_varying_probability_survival() {
        // Surviving 10 crossings at p = 0.05 then 4 at p = 0.3 has probability
        // 0.95^10·0.7^4 = 0.14412; binomial sd over N fresh clocks, 5 sd.
        const N: usize = 100_000;
        let mut r = rng(33);
        let survived = (0..N)
            .filter(|_| {
                let mut c = FailureClock::new(&mut r);
                c.consume(10, 0.05, &mut r).is_none() && c.consume(4, 0.3, &mut r).is_none()
            })
            .count();
        let want = 0.95f64.powi(10) * 0.7f64.powi(4);
        let sd = (want * (1.0 - want) / N as f64).sqrt();
        assert!((survived as f64 / N as f64 - want).abs() < 5.0 * sd);
    }

    #[test]
    fn failure_clock_edge_probabilities() {
        let mut r = rng(34);
        let mut c = FailureClock::new(&mut r);
        let budget = c.budget();
        assert_eq!(c.consume(1_000_000, 0.0, &mut r), None);
        assert_eq!(c.consume(5, f64::NAN, &mut r), None);
        assert_eq!(c.consume(0, 0.5, &mut r), None);
        assert_eq!(c.budget(), budget, "p = 0 consumes no budget");
        for _ in 0..100 {
            assert_eq!(c.consume(7, 1.0, &mut r), Some(0));
        }
        // Survival consumes exactly n·h of the budget.
        let mut c = FailureClock { budget: 10.0 };
        assert_eq!(c.consume(4, 0.5, &mut r), None);
        assert!((c.budget() - (10.0 - 4.0 * 2f64.ln())).abs() < 1e-12);
        // Budget 1.0 with h = ln 2: (i+1)·0.693 >= 1 first at i = 1.
        let mut c = FailureClock { budget: 1.0 };
        assert_eq!(c.consume(10, 0.5, &mut r), Some(1));
    }
}
