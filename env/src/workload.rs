//! The request workload of system-model.md §1: the arrival process λ(t) (constant,
//! Markov-modulated, diurnal, or replayed from a rate trace), Poisson arrivals within a slot,
//! a deterministic periodic process (one arrival every interval: hand-computable test and
//! evaluation scenarios), truncated log-normal prompt and output lengths, and optional
//! per-request deadlines.
//!
//! Everything here is pure: configs validate themselves, resolved processes take an explicit
//! `&mut impl Rng`, and no file is read — a trace arrives as an already-parsed [`TimeSeries`]
//! (the caller reads and parses the CSV named by `ArrivalConfig::Trace::path`).

use crate::regime::{RegimeChain, RegimeState};
use crate::trace::TimeSeries;
use crate::validate::{InvalidField, Validation, in_range, non_negative, positive};
use rand::{Rng, RngExt};
use rand_distr::{Distribution, Exp1};
use serde::{Deserialize, Serialize};
use statrs::function::erf::{erfc, erfc_inv};
use std::f64::consts::{PI, SQRT_2};

/// Default prompt-length median (tokens): "defaults around 128 in" (system-model.md §1).
pub const DEFAULT_PROMPT_MEDIAN_TOKENS: f64 = 128.0;
/// Default output-length median (tokens): "defaults around ... 64 out" (system-model.md §1).
pub const DEFAULT_OUTPUT_MEDIAN_TOKENS: f64 = 64.0;
/// Log-space standard deviation of prompt lengths. Assumption (no cited paper gives a number):
/// σ = 1 spreads prompts over ≈ 25–660 tokens (5th–95th percentile, 128·e^(±1.645)), a broad
/// right-skewed spread.
pub const DEFAULT_PROMPT_SIGMA: f64 = 1.0;
/// Log-space standard deviation of output lengths. Assumption: σ = 0.7 (≈ 20–200 tokens,
/// 5th–95th percentile, 64·e^(±1.15)).
pub const DEFAULT_OUTPUT_SIGMA: f64 = 0.7;
/// Shortest prompt / output (tokens): a request has at least one token.
pub const DEFAULT_MIN_TOKENS: u32 = 1;
/// Longest prompt (tokens). Assumption: 2048, the LLaMA context length (LLaMA 2: 4096; Touvron
/// et al. 2023a/b). GPT-2 presets have 1024 positions, so a GPT-2 scenario must lower it.
pub const DEFAULT_PROMPT_MAX_TOKENS: u32 = 2048;
/// Longest output (tokens). Assumption: 512.
pub const DEFAULT_OUTPUT_MAX_TOKENS: u32 = 512;
/// Queue capacity (requests). Assumption: 256 waiting requests before overflow drops.
pub const DEFAULT_QUEUE_CAPACITY: usize = 256;
/// Upper bound accepted for a log-normal σ: beyond it the law is too heavy to be a length model.
pub const MAX_LENGTH_SIGMA: f64 = 5.0;

// ---------------------------------------------------------------------------------------------
// Arrival process
// ---------------------------------------------------------------------------------------------

/// How the arrival rate λ(t) (requests/s) evolves (system-model.md §1).
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum ArrivalConfig {
    /// λ(t) = `rate_per_s`.
    Constant { rate_per_s: f64 },
    /// Markov-modulated Poisson process: regime k has rate `rates_per_s[k]` and an exponential
    /// dwell time with mean `mean_dwell_s[k]` seconds; on leaving a regime the next one is drawn
    /// uniformly among the others (with two regimes: the other one). The parametrisation is in
    /// continuous time, so the regime process does not depend on `slot_s`; its stationary
    /// distribution is π_k ∝ `mean_dwell_s[k]` (the embedded jump chain is uniform).
    Markov { rates_per_s: Vec<f64>, mean_dwell_s: Vec<f64> },
    /// λ(t) = mean·(1 + amplitude·cos(2π(t − phase_s)/period_s)): `phase_s` is the time of the
    /// peak, amplitude ∈ [0, 1] keeps λ ≥ 0.
    Diurnal { mean_rate_per_s: f64, amplitude: f64, period_s: f64, phase_s: f64 },
    /// Replays a CSV of (time, requests/s). `path` is only a name here: the caller reads and
    /// parses the file and hands the series to [`ArrivalProcess::from_config`].
    Trace { path: String, loop_trace: bool },
    /// Exactly one arrival at every `offset_s + k·interval_s`, k = 0, 1, … (no randomness): a
    /// D/G/c workload whose latencies can be computed by hand. λ = 1/`interval_s`.
    Periodic { interval_s: f64, offset_s: f64 },
}

impl ArrivalConfig {
    pub fn validate(&self) -> Validation {
        match self {
            Self::Constant { rate_per_s } => non_negative("rate_per_s", *rate_per_s, "requests/s"),
            Self::Markov { rates_per_s, mean_dwell_s } => {
                if rates_per_s.is_empty() {
                    return Err(InvalidField::new("rates_per_s", "[]", "must list at least one regime rate"));
                }
                if mean_dwell_s.len() != rates_per_s.len() {
                    return Err(InvalidField::new(
                        "mean_dwell_s",
                        format!("{} entries", mean_dwell_s.len()),
                        format!("must have one entry per regime ({})", rates_per_s.len()),
                    ));
                }
                for (k, (&rate, &dwell)) in rates_per_s.iter().zip(mean_dwell_s).enumerate() {
                    non_negative(&format!("rates_per_s[{k}]"), rate, "requests/s")?;
                    positive(&format!("mean_dwell_s[{k}]"), dwell, "mean regime dwell time, s")?;
                }
                Ok(())
            }
            Self::Diurnal { mean_rate_per_s, amplitude, period_s, phase_s } => {
                non_negative("mean_rate_per_s", *mean_rate_per_s, "requests/s")?;
                in_range("amplitude", *amplitude, 0.0, 1.0, "relative swing; keeps λ >= 0")?;
                positive("period_s", *period_s, "period of the daily cycle, s")?;
                if !phase_s.is_finite() {
                    return Err(InvalidField::new("phase_s", phase_s, "must be finite (s)"));
                }
                Ok(())
            }
            Self::Trace { path, .. } => {
                if path.trim().is_empty() {
                    return Err(InvalidField::new("path", "\"\"", "must name the arrival-rate CSV"));
                }
                Ok(())
            }
            Self::Periodic { interval_s, offset_s } => {
                positive("interval_s", *interval_s, "time between arrivals, s")?;
                non_negative("offset_s", *offset_s, "time of the first arrival, s")
            }
        }
    }
}

/// The dynamic part of an arrival process: the Markov regime (the other kinds are functions of
/// time alone and leave it at its default).
pub type ArrivalState = RegimeState;

/// A validated arrival process, ready to run. `Trace` replays a series of requests/s (see
/// [`TimeSeries`] for its conventions).
#[derive(Clone, Debug, PartialEq)]
pub enum ArrivalProcess {
    Constant { rate_per_s: f64 },
    Markov { rates_per_s: Vec<f64>, chain: RegimeChain },
    Diurnal { mean_rate_per_s: f64, amplitude: f64, period_s: f64, phase_s: f64 },
    Trace { series: TimeSeries, loop_trace: bool },
    Periodic { interval_s: f64, offset_s: f64 },
}

impl ArrivalProcess {
    /// Validates `config` and builds the process. A `trace` config needs the parsed series
    /// (it loops as the config's `loop_trace` says); other kinds ignore it.
    pub fn from_config(config: &ArrivalConfig, trace: Option<TimeSeries>) -> Result<Self, InvalidField> {
        config.validate()?;
        Ok(match config {
            ArrivalConfig::Constant { rate_per_s } => Self::Constant { rate_per_s: *rate_per_s },
            ArrivalConfig::Markov { rates_per_s, mean_dwell_s } => {
                Self::Markov { rates_per_s: rates_per_s.clone(), chain: RegimeChain::new(mean_dwell_s)? }
            }
            &ArrivalConfig::Diurnal { mean_rate_per_s, amplitude, period_s, phase_s } => {
                Self::Diurnal { mean_rate_per_s, amplitude, period_s, phase_s }
            }
            ArrivalConfig::Trace { path, loop_trace } => {
                let Some(series) = trace else {
                    return Err(InvalidField::new(
                        "path",
                        path,
                        "a trace arrival process needs the parsed rate series (caller reads it)",
                    ));
                };
                series.validate().map_err(|e| e.under("trace"))?;
                Self::Trace { series, loop_trace: *loop_trace }
            }
            &ArrivalConfig::Periodic { interval_s, offset_s } => Self::Periodic { interval_s, offset_s },
        })
    }

    /// The state at the start of an episode: a stationary Markov regime.
    pub fn initial_state(&self, rng: &mut impl Rng) -> ArrivalState {
        match self {
            Self::Markov { chain, .. } => chain.initial_state(rng),
            _ => ArrivalState::default(),
        }
    }

    /// A fresh residual dwell of a Markov regime ([`RegimeChain::redraw_residual`]); the other
    /// kinds are functions of time and have none.
    pub fn redraw_residual(&self, state: &mut ArrivalState, rng: &mut impl Rng) {
        if let Self::Markov { chain, .. } = self {
            chain.redraw_residual(state, rng);
        }
    }

    /// λ at time `t_s` (s since episode start) in `state`.
    pub fn rate_per_s(&self, state: &ArrivalState, t_s: f64) -> f64 {
        match self {
            Self::Constant { rate_per_s } => *rate_per_s,
            Self::Markov { rates_per_s, .. } => rates_per_s[state.regime],
            &Self::Diurnal { mean_rate_per_s, amplitude, period_s, phase_s } => {
                let angle = 2.0 * PI * (t_s - phase_s) / period_s;
                (mean_rate_per_s * (1.0 + amplitude * angle.cos())).max(0.0)
            }
            // Episode time before the series' first row reads the first value, looping or not
            // (a looped lookup alone would wrap it to the end of the pass).
            Self::Trace { series, loop_trace } => series.value_at(t_s.max(series.start_s()), *loop_trace),
            Self::Periodic { interval_s, .. } => 1.0 / interval_s,
        }
    }

    /// Advances the regime process by `slot_s` (exactly, see [`RegimeChain`]). The env uses
    /// the rate at the start of each slot for that slot's arrivals, so a switch inside a slot
    /// takes effect at the next slot boundary: an error of at most one slot per dwell, small
    /// when dwells are much longer than `slot_s`.
    pub fn advance(&self, state: &mut ArrivalState, slot_s: f64, rng: &mut impl Rng) {
        if let Self::Markov { chain, .. } = self {
            chain.advance(state, slot_s, rng);
        }
    }

    /// Long-run mean rate: Σ π_k r_k (Markov), the mean (diurnal), one pass of the trace.
    pub fn mean_rate_per_s(&self) -> f64 {
        match self {
            Self::Constant { rate_per_s } => *rate_per_s,
            Self::Markov { rates_per_s, chain } => chain.stationary_mean(rates_per_s),
            Self::Diurnal { mean_rate_per_s, .. } => *mean_rate_per_s,
            Self::Trace { series, .. } => series.mean_value(),
            Self::Periodic { interval_s, .. } => 1.0 / interval_s,
        }
    }

    /// The largest rate the process can take (for bounding observation features).
    pub fn max_rate_per_s(&self) -> f64 {
        match self {
            Self::Constant { rate_per_s } => *rate_per_s,
            Self::Markov { rates_per_s, .. } => rates_per_s.iter().copied().fold(0.0, f64::max),
            Self::Diurnal { mean_rate_per_s, amplitude, .. } => mean_rate_per_s * (1.0 + amplitude),
            Self::Trace { series, .. } => series.max_value(),
            Self::Periodic { interval_s, .. } => 1.0 / interval_s,
        }
    }

    /// Appends the arrival offsets (s from the slot start, sorted) of slot `slot` (covering
    /// `[slot·slot_s, (slot + 1)·slot_s)`) at rate `rate_per_s`: Poisson arrivals drawn from
    /// `rng` ([`sample_arrivals`]), or the periodic process's deterministic instants (no draw).
    pub fn sample_slot_arrivals(
        &self,
        rate_per_s: f64,
        slot: u64,
        slot_s: f64,
        rng: &mut impl Rng,
        out: &mut Vec<f64>,
    ) {
        match *self {
            Self::Periodic { interval_s, offset_s } => periodic_arrivals(interval_s, offset_s, slot, slot_s, out),
            _ => sample_arrivals(rate_per_s, slot_s, rng, out),
        }
    }
}

/// Appends the offsets from the slot start of the instants `offset_s + k·interval_s` (k ≥ 0) in
/// `[slot·slot_s, (slot + 1)·slot_s)`. Both slot bounds and every instant are computed by the
/// same products whatever the slot, so each instant falls in exactly one slot (no arrival is
/// lost or duplicated by rounding at a boundary).
pub fn periodic_arrivals(interval_s: f64, offset_s: f64, slot: u64, slot_s: f64, out: &mut Vec<f64>) {
    if !(interval_s > 0.0 && interval_s.is_finite() && slot_s > 0.0) {
        return;
    }
    let t0 = slot as f64 * slot_s;
    let t1 = (slot + 1) as f64 * slot_s;
    let instant = |k: u64| offset_s + k as f64 * interval_s;
    // First candidate from the division, stepped back one to absorb its rounding.
    let mut k = (((t0 - offset_s) / interval_s).floor().max(0.0) as u64).saturating_sub(1);
    while instant(k) < t0 {
        k += 1;
    }
    while instant(k) < t1 {
        out.push(instant(k) - t0);
        k += 1;
    }
}

/// Appends the arrival offsets (s from the slot start, sorted) of a homogeneous Poisson process
/// of rate `rate_per_s` over `[0, slot_s)`. Generated by exponential inter-arrival gaps, so the
/// count is exactly Poisson(rate·slot_s), the offsets come out sorted without a sort, and the
/// only memory touched is `out`. A non-positive or non-finite rate yields no arrivals.
pub fn sample_arrivals(rate_per_s: f64, slot_s: f64, rng: &mut impl Rng, out: &mut Vec<f64>) {
    if !(rate_per_s > 0.0 && rate_per_s.is_finite() && slot_s > 0.0) {
        return;
    }
    let mean_gap_s = 1.0 / rate_per_s;
    let mut t_s = 0.0;
    loop {
        let e: f64 = Exp1.sample(rng);
        t_s += e * mean_gap_s;
        if t_s >= slot_s {
            return;
        }
        out.push(t_s);
    }
}

// ---------------------------------------------------------------------------------------------
// Lengths
// ---------------------------------------------------------------------------------------------

/// A log-normal token count (median `median_tokens`, log-space σ `sigma`) truncated to
/// `[min_tokens, max_tokens]`.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct LengthConfig {
    pub median_tokens: f64,
    /// σ = 0 gives the median (clamped) every time.
    pub sigma: f64,
    pub min_tokens: u32,
    pub max_tokens: u32,
}

impl LengthConfig {
    /// Prompt lengths: median 128 (system-model.md §1), σ and bounds are stated assumptions.
    pub fn default_prompt() -> Self {
        Self {
            median_tokens: DEFAULT_PROMPT_MEDIAN_TOKENS,
            sigma: DEFAULT_PROMPT_SIGMA,
            min_tokens: DEFAULT_MIN_TOKENS,
            max_tokens: DEFAULT_PROMPT_MAX_TOKENS,
        }
    }

    /// Output lengths: median 64 (system-model.md §1), σ and bounds are stated assumptions.
    pub fn default_output() -> Self {
        Self {
            median_tokens: DEFAULT_OUTPUT_MEDIAN_TOKENS,
            sigma: DEFAULT_OUTPUT_SIGMA,
            min_tokens: DEFAULT_MIN_TOKENS,
            max_tokens: DEFAULT_OUTPUT_MAX_TOKENS,
        }
    }

    pub fn validate(&self) -> Validation {
        positive("median_tokens", self.median_tokens, "tokens")?;
        in_range("sigma", self.sigma, 0.0, MAX_LENGTH_SIGMA, "log-space standard deviation")?;
        if self.min_tokens < 1 {
            return Err(InvalidField::new("min_tokens", self.min_tokens, "must be >= 1"));
        }
        if self.max_tokens < self.min_tokens {
            return Err(InvalidField::new(
                "max_tokens",
                self.max_tokens,
                format!("must be >= min_tokens ({})", self.min_tokens),
            ));
        }
        Ok(())
    }

    /// Precomputes the truncation window (two `erfc` calls) so each draw costs one `erfc_inv`.
    pub fn sampler(&self) -> LengthSampler {
        LengthSampler::new(self)
    }

    /// One draw (computes the window on the fly; use [`LengthConfig::sampler`] in loops).
    pub fn sample(&self, rng: &mut impl Rng) -> u32 {
        self.sampler().sample(rng)
    }
}

/// A truncated log-normal ready to sample.
///
/// Exact truncation in one draw: with z = (ln x − ln median)/σ, the truncated law is the normal
/// restricted to [z_min, z_max], so U uniform on [Φ(z_min), Φ(z_max)] and z = Φ⁻¹(U) is an exact
/// draw (inverse-CDF sampling restricted to the window), with no rejection loop whose cost
/// explodes when the window holds little mass. Φ and Φ⁻¹ are written with statrs' `erfc` /
/// `erfc_inv` (Φ(z) = ½erfc(−z/√2), Φ⁻¹(u) = −√2·erfc_inv(2u)), which stay accurate in the lower
/// tail; when the window lies above the median the draw is done in the mirrored upper tail
/// (survival function), so a window far in either tail keeps full precision.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LengthSampler {
    ln_median: f64,
    sigma: f64,
    min_tokens: u32,
    max_tokens: u32,
    /// Window bounds in tail-probability space (lower tail, or upper tail when `upper`).
    p_lo: f64,
    p_hi: f64,
    upper: bool,
}

impl LengthSampler {
    pub fn new(config: &LengthConfig) -> Self {
        let ln_median = config.median_tokens.ln();
        let z = |tokens: u32| (f64::from(tokens).ln() - ln_median) / config.sigma;
        let (z_min, z_max) = (z(config.min_tokens), z(config.max_tokens));
        let upper = z_min > 0.0;
        let (p_lo, p_hi) =
            if upper { (upper_tail(z_max), upper_tail(z_min)) } else { (lower_tail(z_min), lower_tail(z_max)) };
        Self {
            ln_median,
            sigma: config.sigma,
            min_tokens: config.min_tokens,
            max_tokens: config.max_tokens,
            p_lo,
            p_hi,
            upper,
        }
    }

    /// A continuous draw from the truncated log-normal (before rounding).
    pub fn sample_continuous(&self, rng: &mut impl Rng) -> f64 {
        let (lo, hi) = (f64::from(self.min_tokens), f64::from(self.max_tokens));
        // σ = 0, a one-point window, or a window so far in a tail that its probability mass
        // underflows: the law collapses onto the point of the window nearest the median.
        if self.sigma == 0.0 || lo == hi || self.p_hi <= self.p_lo {
            return self.ln_median.exp().clamp(lo, hi);
        }
        let u = self.p_lo + rng.random::<f64>() * (self.p_hi - self.p_lo);
        // −√2·erfc_inv(2u) = Φ⁻¹(u); in the upper tail u is a survival probability, z = −Φ⁻¹(u).
        let z_lower = -SQRT_2 * erfc_inv(2.0 * u);
        let z = if self.upper { -z_lower } else { z_lower };
        // Rounding in erfc/erfc_inv may step a hair outside the window: clamp.
        (self.ln_median + self.sigma * z).exp().clamp(lo, hi)
    }

    /// A token count: the continuous draw rounded, then clamped to [min, max].
    pub fn sample(&self, rng: &mut impl Rng) -> u32 {
        let x = self.sample_continuous(rng).round();
        if x.is_nan() {
            return self.min_tokens;
        }
        // Clamped to a u32 range first, so the cast is exact.
        x.clamp(f64::from(self.min_tokens), f64::from(self.max_tokens)) as u32
    }
}

/// Φ(z), accurate for z ≪ 0.
fn lower_tail(z: f64) -> f64 {
    0.5 * erfc(-z / SQRT_2)
}

/// 1 − Φ(z), accurate for z ≫ 0.
fn upper_tail(z: f64) -> f64 {
    0.5 * erfc(z / SQRT_2)
}

// ---------------------------------------------------------------------------------------------
// Deadlines
// ---------------------------------------------------------------------------------------------

/// The per-request deadline (SLA) whose violations are counted (system-model.md §1).
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Default)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum DeadlineConfig {
    #[default]
    None,
    Fixed {
        deadline_s: f64,
    },
    /// base + per_output_token·n_out: longer answers are allowed proportionally more time, the
    /// usual time-to-first-token + time-per-output-token form of an LLM SLA.
    PerToken {
        base_s: f64,
        per_output_token_s: f64,
    },
}

impl DeadlineConfig {
    pub fn validate(&self) -> Validation {
        match *self {
            Self::None => Ok(()),
            Self::Fixed { deadline_s } => positive("deadline_s", deadline_s, "SLA, s"),
            Self::PerToken { base_s, per_output_token_s } => {
                non_negative("base_s", base_s, "s")?;
                non_negative("per_output_token_s", per_output_token_s, "s per output token")?;
                if base_s + per_output_token_s <= 0.0 {
                    return Err(InvalidField::new(
                        "base_s",
                        base_s,
                        "base_s and per_output_token_s cannot both be 0 (use kind = \"none\")",
                    ));
                }
                Ok(())
            }
        }
    }

    /// The deadline of a request with `n_in` prompt and `n_out` output tokens (`n_in` is taken
    /// for future forms; the current ones depend on `n_out` only).
    pub fn deadline_s(&self, _n_in: u32, n_out: u32) -> Option<f64> {
        match *self {
            Self::None => None,
            Self::Fixed { deadline_s } => Some(deadline_s),
            Self::PerToken { base_s, per_output_token_s } => Some(base_s + per_output_token_s * f64::from(n_out)),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The workload section
// ---------------------------------------------------------------------------------------------

fn default_queue_capacity() -> usize {
    DEFAULT_QUEUE_CAPACITY
}

/// The `workload` section of a scenario.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct WorkloadConfig {
    pub arrivals: ArrivalConfig,
    #[serde(default = "LengthConfig::default_prompt")]
    pub prompt_tokens: LengthConfig,
    #[serde(default = "LengthConfig::default_output")]
    pub output_tokens: LengthConfig,
    #[serde(default)]
    pub deadline: DeadlineConfig,
    /// Waiting requests beyond this are dropped (and counted).
    #[serde(default = "default_queue_capacity")]
    pub queue_capacity: usize,
}

impl WorkloadConfig {
    pub fn validate(&self) -> Validation {
        self.arrivals.validate().map_err(|e| e.under("arrivals"))?;
        self.prompt_tokens.validate().map_err(|e| e.under("prompt_tokens"))?;
        self.output_tokens.validate().map_err(|e| e.under("output_tokens"))?;
        self.deadline.validate().map_err(|e| e.under("deadline"))?;
        if self.queue_capacity == 0 {
            return Err(InvalidField::new("queue_capacity", 0, "must be >= 1 request"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::StreamRng;
    use rand::SeedableRng;

    fn rng(seed: u64) -> StreamRng {
        StreamRng::seed_from_u64(seed)
    }

    #[test]
    fn poisson_counts_have_poisson_mean_and_variance() {
        // λ = rate·slot = 3.7; N = 20 000 slots. SE(mean) = √(λ/N) = 0.0136, tolerance 5·SE.
        // Var of the sample variance ≈ (μ4 − σ⁴)/N with μ4 = λ(1 + 3λ) for Poisson, so
        // SE(s²) = √((λ + 2λ²)/N) = √(31.08/20000) = 0.0394, tolerance 5·SE ≈ 0.2.
        let (rate, slot_s, n) = (1.85, 2.0, 20_000);
        let lambda = rate * slot_s;
        let mut r = rng(1);
        let mut out = Vec::with_capacity(64);
        let counts: Vec<f64> = (0..n)
            .map(|_| {
                out.clear();
                sample_arrivals(rate, slot_s, &mut r, &mut out);
                assert!(out.windows(2).all(|w| w[0] <= w[1]), "offsets must be sorted");
                assert!(out.iter().all(|&t| (0.0..slot_s).contains(&t)));
                out.len() as f64
            })
            .collect();
        let mean = counts.iter().sum::<f64>() / n as f64;
        let var = counts.iter().map(|c| (c - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
        let se_mean = (lambda / n as f64).sqrt();
        let se_var = ((lambda + 2.0 * lambda * lambda) / n as f64).sqrt();
        assert!((mean - lambda).abs() < 5.0 * se_mean, "mean {mean} vs {lambda}");
        assert!((var - lambda).abs() < 5.0 * se_var, "variance {var} vs {lambda}");
    }

    #[test]
    fn arrival_offsets_are_uniform_within_the_slot() {
        // Given the count, Poisson arrival times are i.i.d. uniform on the slot, so the pooled
        // offsets/slot_s are U(0, 1). Kolmogorov–Smirnov: reject at α = 0.001 when
        // D > 1.95/√n (asymptotic critical value).
        let (rate, slot_s) = (5.0, 0.5);
        let mut r = rng(2);
        let mut out = Vec::new();
        for _ in 0..4000 {
            sample_arrivals(rate, slot_s, &mut r, &mut out);
        }
        let mut u: Vec<f64> = out.iter().map(|t| t / slot_s).collect();
        u.sort_by(f64::total_cmp);
        let n = u.len() as f64;
        let d = u
            .iter()
            .enumerate()
            .map(|(i, &x)| (x - i as f64 / n).abs().max(((i + 1) as f64 / n - x).abs()))
            .fold(0.0, f64::max);
        assert!(d < 1.95 / n.sqrt(), "KS D = {d} with n = {n}");
    }

    #[test]
    fn sample_arrivals_appends_and_ignores_bad_rates() {
        let mut r = rng(3);
        let mut out = vec![42.0];
        sample_arrivals(0.0, 1.0, &mut r, &mut out);
        sample_arrivals(f64::NAN, 1.0, &mut r, &mut out);
        sample_arrivals(f64::INFINITY, 1.0, &mut r, &mut out);
        assert_eq!(out, vec![42.0]);
        sample_arrivals(100.0, 1.0, &mut r, &mut out);
        assert_eq!(out[0], 42.0, "existing entries are kept");
        assert!(out.len() > 50);
    }

    #[test]
    fn periodic_arrivals_land_at_hand_computed_instants() {
        // interval 0.25 s, offset 0.125 s, 1 s slots: 0.125, 0.375, 0.625, 0.875 s in every slot
        // (all exact in binary, so the offsets compare exactly).
        let p =
            ArrivalProcess::from_config(&ArrivalConfig::Periodic { interval_s: 0.25, offset_s: 0.125 }, None).unwrap();
        let mut r = rng(12);
        let untouched = r.clone();
        for slot in [0, 1, 7] {
            let mut out = Vec::new();
            p.sample_slot_arrivals(4.0, slot, 1.0, &mut r, &mut out);
            assert_eq!(out, vec![0.125, 0.375, 0.625, 0.875], "slot {slot}");
        }
        assert_eq!(r, untouched, "periodic arrivals draw nothing");
        // An interval longer than the slot: 2.5 s from 1 s gives arrivals in slots 1, 3, 6, 8, …
        // at offsets 0.0, 0.5, 0.0, 0.5 (1.0, 3.5, 6.0, 8.5 s).
        let mut seen = Vec::new();
        for slot in 0..10 {
            let mut out = Vec::new();
            periodic_arrivals(2.5, 1.0, slot, 1.0, &mut out);
            seen.extend(out.iter().map(|o| (slot, *o)));
        }
        assert_eq!(seen, vec![(1, 0.0), (3, 0.5), (6, 0.0), (8, 0.5)]);
        let s = ArrivalState::default();
        assert_eq!((p.rate_per_s(&s, 3.0), p.mean_rate_per_s(), p.max_rate_per_s()), (4.0, 4.0, 4.0));
    }

    #[test]
    fn periodic_instants_fall_in_exactly_one_slot_despite_rounding() {
        // 0.1 s and 0.3 s are not exact in binary: the instants 0.1·k still land once each.
        // Over 1000 slots of 0.3 s the instants below 1000·0.3 are counted by the same formula.
        let (interval_s, slot_s, n_slots) = (0.1, 0.3, 1000u64);
        let mut times = Vec::new();
        for slot in 0..n_slots {
            let mut out = Vec::new();
            periodic_arrivals(interval_s, 0.0, slot, slot_s, &mut out);
            assert!(out.iter().all(|&o| (0.0..slot_s).contains(&o)), "slot {slot}: {out:?}");
            times.extend(out.iter().map(|o| slot as f64 * slot_s + o));
        }
        let expected = (0u64..).take_while(|&k| k as f64 * interval_s < n_slots as f64 * slot_s).count();
        assert_eq!(times.len(), expected);
        assert!((2999..=3001).contains(&expected));
        assert!(times.windows(2).all(|w| (w[1] - w[0] - interval_s).abs() < 1e-9), "one arrival per interval");
    }

    #[test]
    fn poisson_kinds_sample_through_the_process_exactly_as_before() {
        let p = ArrivalProcess::from_config(&ArrivalConfig::Constant { rate_per_s: 3.0 }, None).unwrap();
        let (mut a, mut b) = (rng(13), rng(13));
        let (mut x, mut y) = (Vec::new(), Vec::new());
        for slot in 0..50 {
            p.sample_slot_arrivals(3.0, slot, 1.0, &mut a, &mut x);
            sample_arrivals(3.0, 1.0, &mut b, &mut y);
        }
        assert_eq!(x, y);
    }

    #[test]
    fn periodic_config_parses_and_validates() {
        let w: WorkloadConfig =
            toml::from_str("[arrivals]\nkind = \"periodic\"\ninterval_s = 2.0\noffset_s = 0.5\n").unwrap();
        assert_eq!(w.arrivals, ArrivalConfig::Periodic { interval_s: 2.0, offset_s: 0.5 });
        w.validate().unwrap();
        let e = ArrivalConfig::Periodic { interval_s: 0.0, offset_s: 0.0 }.validate().unwrap_err();
        assert_eq!(e.field, "interval_s");
        let e = ArrivalConfig::Periodic { interval_s: 1.0, offset_s: -1.0 }.validate().unwrap_err();
        assert_eq!(e.field, "offset_s");
        let e = toml::from_str::<WorkloadConfig>("[arrivals]\nkind = \"periodic\"\ninterval_s = 1.0\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("offset_s"), "{e}");
    }

    #[test]
    fn diurnal_rate_at_hand_picked_times() {
        // λ(t) = 10·(1 + 0.5·cos(2π(t − 43200)/86400)), peak at noon.
        let p = ArrivalProcess::from_config(
            &ArrivalConfig::Diurnal { mean_rate_per_s: 10.0, amplitude: 0.5, period_s: 86_400.0, phase_s: 43_200.0 },
            None,
        )
        .unwrap();
        let s = ArrivalState::default();
        assert!((p.rate_per_s(&s, 43_200.0) - 15.0).abs() < 1e-12); // cos 0 = 1
        assert!((p.rate_per_s(&s, 0.0) - 5.0).abs() < 1e-12); // cos(−π) = −1
        assert!((p.rate_per_s(&s, 21_600.0) - 10.0).abs() < 1e-9); // cos(−π/2) = 0
        assert!((p.rate_per_s(&s, 86_400.0 + 43_200.0) - 15.0).abs() < 1e-9); // next day
        assert_eq!(p.max_rate_per_s(), 15.0);
        assert_eq!(p.mean_rate_per_s(), 10.0);
    }

    fn two_regime() -> ArrivalProcess {
        ArrivalProcess::from_config(
            &ArrivalConfig::Markov { rates_per_s: vec![1.0, 10.0], mean_dwell_s: vec![30.0, 10.0] },
            None,
        )
        .unwrap()
    }

    /// Fraction of slots spent in regime 0 over `t_total_s` seconds.
    fn low_regime_fraction(p: &ArrivalProcess, slot_s: f64, t_total_s: f64, seed: u64) -> f64 {
        let mut r = rng(seed);
        let mut s = p.initial_state(&mut r);
        let n = (t_total_s / slot_s) as usize;
        let mut low = 0usize;
        for _ in 0..n {
            low += usize::from(s.regime == 0);
            p.advance(&mut s, slot_s, &mut r);
        }
        low as f64 / n as f64
    }

    #[test]
    fn markov_regime_long_run_frequencies_do_not_depend_on_slot_length() {
        // π = (30, 10)/40 = (0.75, 0.25). For a two-state chain the indicator's autocorrelation
        // is exp(−t/τ) with τ = 1/(1/30 + 1/10) = 7.5 s, so Var(time average over T) ≈
        // 2·π0·π1·τ/T = 2.8125/T. T = 400 000 s: SE = 0.00265, tolerance 5·SE = 0.013.
        // Slot length only changes the sampling grid, not the law: check 1 s and 0.25 s.
        let p = two_regime();
        let t_total_s: f64 = 400_000.0;
        let tol = 5.0 * (2.8125 / t_total_s).sqrt();
        for (slot_s, seed) in [(1.0, 4), (0.25, 5)] {
            let f = low_regime_fraction(&p, slot_s, t_total_s, seed);
            assert!((f - 0.75).abs() < tol, "slot {slot_s}: fraction {f}");
        }
        assert!((p.mean_rate_per_s() - (0.75 * 1.0 + 0.25 * 10.0)).abs() < 1e-12);
        assert_eq!(p.max_rate_per_s(), 10.0);
    }

    #[test]
    fn markov_initial_state_is_stationary() {
        // Binomial: SE = √(0.75·0.25/20000) = 0.0031, tolerance 5·SE.
        let p = two_regime();
        let mut r = rng(6);
        let n = 20_000;
        let low = (0..n).filter(|_| p.initial_state(&mut r).regime == 0).count();
        let f = low as f64 / n as f64;
        assert!((f - 0.75).abs() < 5.0 * (0.75 * 0.25 / n as f64).sqrt(), "{f}");
        let s = p.initial_state(&mut r);
        assert_eq!(p.rate_per_s(&s, 0.0), [1.0, 10.0][s.regime]);
    }

    #[test]
    fn three_regimes_visit_in_proportion_to_dwell() {
        // π ∝ (20, 10, 5) = (4/7, 2/7, 1/7). The chain is reversible (π_i q_ij = 1/(2·35) for
        // all i ≠ j); its generator has eigenvalues 0, −0.109, −0.241 /s (roots of
        // x² + 0.35x + 0.02625, the sum of its principal 2×2 minors), so the relaxation time is
        // 9.2 s and Var(average) ≤ 2·π(1−π)·τ/T per indicator. We use τ = 20 s (conservative):
        // T = 400 000 s gives SE ≤ 0.0050 for π = 4/7; tolerance 5·SE.
        let p = ArrivalProcess::from_config(
            &ArrivalConfig::Markov { rates_per_s: vec![1.0, 2.0, 3.0], mean_dwell_s: vec![20.0, 10.0, 5.0] },
            None,
        )
        .unwrap();
        let mut r = rng(7);
        let mut s = p.initial_state(&mut r);
        let mut visits = [0usize; 3];
        let n = 400_000;
        for _ in 0..n {
            visits[s.regime] += 1;
            p.advance(&mut s, 1.0, &mut r);
        }
        for (k, expect) in [4.0 / 7.0, 2.0 / 7.0, 1.0 / 7.0].into_iter().enumerate() {
            let f = visits[k] as f64 / n as f64;
            let se = (2.0 * expect * (1.0 - expect) * 20.0 / n as f64).sqrt();
            assert!((f - expect).abs() < 5.0 * se, "regime {k}: {f} vs {expect}");
        }
    }

    #[test]
    fn rate_series_lookup_holds_and_loops() {
        // Rows at 0, 10, 20 s: period = 20 + 10 = 30 s when looping.
        let times = vec![0.0, 10.0, 20.0];
        let values = vec![1.0, 2.0, 4.0];
        let cfg = ArrivalConfig::Trace { path: "arrivals.csv".into(), loop_trace: true };
        let p =
            ArrivalProcess::from_config(&cfg, Some(TimeSeries::new(times.clone(), values.clone()).unwrap())).unwrap();
        let s = ArrivalState::default();
        assert_eq!(p.rate_per_s(&s, 0.0), 1.0);
        assert_eq!(p.rate_per_s(&s, 9.99), 1.0);
        assert_eq!(p.rate_per_s(&s, 10.0), 2.0);
        assert_eq!(p.rate_per_s(&s, 25.0), 4.0);
        assert_eq!(p.rate_per_s(&s, 31.0), 1.0); // 31 mod 30 = 1
        assert_eq!(p.rate_per_s(&s, 45.0), 2.0); // 45 mod 30 = 15 ∈ [10, 20)
        assert_eq!(p.rate_per_s(&s, 58.0), 4.0); // 58 mod 30 = 28 ∈ [20, 30)
        // (1·10 + 2·10 + 4·10)/30
        assert!((p.mean_rate_per_s() - 70.0 / 30.0).abs() < 1e-12);
        let hold = TimeSeries::new(times, values).unwrap();
        assert_eq!(hold.value_at(1e6, false), 4.0, "without looping the last value holds");
        assert_eq!(hold.value_at(-5.0, false), 1.0, "before the first row the first value holds");
    }

    #[test]
    fn arrival_trace_before_its_first_row_reads_the_first_value_even_when_looping() {
        // Rows at 5 and 10 s (period 10 s, pass [5, 15)). Episode time 0 precedes the first
        // row: the first rate holds, although a looped lookup alone would wrap 0 s to 10 s (8/s).
        let series = TimeSeries::new(vec![5.0, 10.0], vec![2.0, 8.0]).unwrap();
        assert_eq!(series.value_at(0.0, true), 8.0);
        let cfg = ArrivalConfig::Trace { path: "late.csv".into(), loop_trace: true };
        let p = ArrivalProcess::from_config(&cfg, Some(series)).unwrap();
        let s = ArrivalState::default();
        assert_eq!(p.rate_per_s(&s, 0.0), 2.0);
        assert_eq!(p.rate_per_s(&s, 4.9), 2.0);
        assert_eq!(p.rate_per_s(&s, 12.0), 8.0);
        assert_eq!(p.rate_per_s(&s, 16.0), 2.0); // 16 → 5 + 11 mod 10 = 6 ∈ [5, 10)
        assert_eq!(p.max_rate_per_s(), 8.0);
    }

    #[test]
    fn trace_without_series_or_with_bad_series_is_an_error() {
        let cfg = ArrivalConfig::Trace { path: "a.csv".into(), loop_trace: false };
        let e = ArrivalProcess::from_config(&cfg, None).unwrap_err();
        assert_eq!(e.field, "path");
        let bad = TimeSeries { times_s: vec![0.0, 0.0], values: vec![1.0, 1.0], period_s: 1.0 };
        let e = ArrivalProcess::from_config(&cfg, Some(bad)).unwrap_err();
        assert_eq!(e.field, "trace.times_s[1]");
        let e = TimeSeries::new(vec![0.0], vec![-1.0]).unwrap_err();
        assert_eq!(e.field, "values[0]");
    }

    /// CDF of the continuous truncated log-normal at x (lower-tail form).
    fn truncated_cdf(c: &LengthConfig, x: f64) -> f64 {
        let z = |v: f64| (v.ln() - c.median_tokens.ln()) / c.sigma;
        let lo = lower_tail(z(f64::from(c.min_tokens)));
        let hi = lower_tail(z(f64::from(c.max_tokens)));
        ((lower_tail(z(x)) - lo) / (hi - lo)).clamp(0.0, 1.0)
    }

    #[test]
    fn lengths_follow_the_truncated_log_normal() {
        // The integer output n = round(X) (X truncated to [16, 1024]) has
        // P(n ≤ k) = P(X < k + 0.5) = F_trunc(k + 0.5). Empirical CDF over N = 50 000 draws has
        // SE ≤ 0.5/√N = 0.00224; tolerance 5·SE = 0.0112.
        let c = LengthConfig { median_tokens: 128.0, sigma: 1.0, min_tokens: 16, max_tokens: 1024 };
        c.validate().unwrap();
        let sampler = c.sampler();
        let mut r = rng(8);
        let n = 50_000;
        let draws: Vec<u32> = (0..n).map(|_| sampler.sample(&mut r)).collect();
        assert!(draws.iter().all(|&d| (16..=1024).contains(&d)));
        let tol = 5.0 * 0.5 / (n as f64).sqrt();
        for k in [16u32, 20, 64, 128, 300, 800] {
            let emp = draws.iter().filter(|&&d| d <= k).count() as f64 / n as f64;
            let law = truncated_cdf(&c, f64::from(k) + 0.5);
            assert!((emp - law).abs() < tol, "k = {k}: empirical {emp}, law {law}");
        }
        // Hand check of the law itself, z = ln(x/128) with σ = 1: F_trunc(128) =
        // (Φ(0) − Φ(ln(1/8)))/(Φ(ln 8) − Φ(ln(1/8))) = (0.5 − 0.0188)/(0.9812 − 0.0188).
        assert!((truncated_cdf(&c, 128.0) - 0.4812 / 0.9624).abs() < 1e-3);
    }

    #[test]
    fn lengths_deep_in_the_upper_tail_are_still_exact() {
        // Median 10, σ 0.3, window [200, 400]: z_min = ln 20/0.3 = 9.99, so Φ(z_min) rounds to 1
        // in f64 and a naive inverse CDF would return max every time. The survival-space draw
        // must follow P(X ≤ x | window) = (S(z_min) − S(z(x)))/(S(z_min) − S(z_max)).
        let c = LengthConfig { median_tokens: 10.0, sigma: 0.3, min_tokens: 200, max_tokens: 400 };
        let sampler = c.sampler();
        let mut r = rng(9);
        let n = 20_000;
        let xs: Vec<f64> = (0..n).map(|_| sampler.sample_continuous(&mut r)).collect();
        assert!(xs.iter().all(|&x| (200.0..=400.0).contains(&x)));
        let z = |v: f64| (v / 10.0_f64).ln() / 0.3;
        let (s_min, s_max) = (upper_tail(z(200.0)), upper_tail(z(400.0)));
        let tol = 5.0 * 0.5 / (n as f64).sqrt();
        for x in [201.0, 205.0, 210.0, 220.0] {
            let law = (s_min - upper_tail(z(x))) / (s_min - s_max);
            let emp = xs.iter().filter(|&&v| v <= x).count() as f64 / n as f64;
            assert!((emp - law).abs() < tol, "x = {x}: empirical {emp}, law {law}");
        }
    }

    #[test]
    fn a_window_with_underflowing_mass_collapses_onto_its_nearest_end() {
        // Median 10, σ 0.05, window [1000, 2000]: z_min = ln 100/0.05 = 92, so both tail
        // probabilities underflow to 0; the conditional law sits at the window's lower end.
        let c = LengthConfig { median_tokens: 10.0, sigma: 0.05, min_tokens: 1000, max_tokens: 2000 };
        let mut r = rng(11);
        assert!((0..100).all(|_| c.sample(&mut r) == 1000));
        let c = LengthConfig { median_tokens: 1e6, sigma: 0.05, min_tokens: 1, max_tokens: 20 };
        assert!((0..100).all(|_| c.sample(&mut r) == 20));
    }

    #[test]
    fn degenerate_lengths_are_deterministic() {
        let mut r = rng(10);
        let c = LengthConfig { median_tokens: 100.4, sigma: 0.0, min_tokens: 1, max_tokens: 512 };
        assert_eq!(c.sample(&mut r), 100);
        let c = LengthConfig { median_tokens: 100.0, sigma: 1.0, min_tokens: 7, max_tokens: 7 };
        assert_eq!(c.sample(&mut r), 7);
        let c = LengthConfig { median_tokens: 900.0, sigma: 0.0, min_tokens: 1, max_tokens: 512 };
        assert_eq!(c.sample(&mut r), 512);
    }

    #[test]
    fn deadlines_by_kind() {
        assert_eq!(DeadlineConfig::None.deadline_s(128, 64), None);
        assert_eq!(DeadlineConfig::Fixed { deadline_s: 2.0 }.deadline_s(128, 64), Some(2.0));
        // 0.5 + 0.05·64 = 3.7
        let d = DeadlineConfig::PerToken { base_s: 0.5, per_output_token_s: 0.05 };
        assert!((d.deadline_s(128, 64).unwrap() - 3.7).abs() < 1e-12);
        let e = DeadlineConfig::Fixed { deadline_s: 0.0 }.validate().unwrap_err();
        assert_eq!(e.field, "deadline_s");
    }

    #[test]
    fn workload_toml_parses_with_defaults_and_rejects_unknown_fields() {
        let text = r#"
            queue_capacity = 64
            [arrivals]
            kind = "markov"
            rates_per_s = [0.5, 4.0]
            mean_dwell_s = [60.0, 20.0]
            [deadline]
            kind = "per-token"
            base_s = 1.0
            per_output_token_s = 0.1
        "#;
        let w: WorkloadConfig = toml::from_str(text).unwrap();
        w.validate().unwrap();
        assert_eq!(w.prompt_tokens, LengthConfig::default_prompt());
        assert_eq!(w.output_tokens.median_tokens, DEFAULT_OUTPUT_MEDIAN_TOKENS);
        assert_eq!(w.queue_capacity, 64);
        let back: WorkloadConfig = toml::from_str(&toml::to_string(&w).unwrap()).unwrap();
        assert_eq!(back, w);

        let unknown = "[arrivals]\nkind = \"constant\"\nrate_per_s = 1.0\nburst = 2\n";
        let e = toml::from_str::<WorkloadConfig>(unknown).unwrap_err().to_string();
        assert!(e.contains("burst"), "{e}");
        let trace = "[arrivals]\nkind = \"trace\"\npath = \"x.csv\"\nloop_trace = true\n";
        assert!(toml::from_str::<WorkloadConfig>(trace).is_ok());
    }

    #[test]
    fn validation_names_the_dotted_field() {
        let mut w = WorkloadConfig {
            arrivals: ArrivalConfig::Markov { rates_per_s: vec![1.0, 2.0], mean_dwell_s: vec![5.0, 0.0] },
            prompt_tokens: LengthConfig::default_prompt(),
            output_tokens: LengthConfig::default_output(),
            deadline: DeadlineConfig::None,
            queue_capacity: 8,
        };
        let e = w.validate().unwrap_err();
        assert_eq!(e.field, "arrivals.mean_dwell_s[1]");
        assert!(e.to_string().starts_with("arrivals.mean_dwell_s[1] = 0: must be"), "{e}");
        w.arrivals = ArrivalConfig::Diurnal { mean_rate_per_s: 1.0, amplitude: 1.5, period_s: 10.0, phase_s: 0.0 };
        assert_eq!(w.validate().unwrap_err().field, "arrivals.amplitude");
        w.arrivals = ArrivalConfig::Constant { rate_per_s: 1.0 };
        w.output_tokens.max_tokens = 0;
        assert_eq!(w.validate().unwrap_err().field, "output_tokens.max_tokens");
        w.output_tokens = LengthConfig::default_output();
        w.queue_capacity = 0;
        assert_eq!(w.validate().unwrap_err().field, "queue_capacity");
        let e = ArrivalConfig::Markov { rates_per_s: vec![1.0], mean_dwell_s: vec![] }.validate().unwrap_err();
        assert_eq!(e.field, "mean_dwell_s");
    }
}
