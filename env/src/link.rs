//! The wireless link of system-model.md §4: link rate (a stochastic rate process, a replayed
//! trace, or Shannon capacity over a faded channel), average SNR (AR(1) in dB), Nakagami-m
//! small-scale fading, one-way latency with jitter, per-packet outage loss, and the transfer
//! time of a tensor under the reliable (retransmit) and lossy (erase) transport modes.
//!
//! Everything here is a pure function or a small state machine stepped once per slot with an
//! explicit RNG; each random process draws from its own stream ([`LinkRngs`]) so the channel an
//! episode sees does not depend on the actions taken (§1, common random numbers). The hot path
//! ([`Link::advance`], the transfer-time functions) does not allocate. No file IO: a trace-driven
//! rate takes an already parsed [`TimeSeries`] of bit/s (see [`TraceRateConfig::parse`]).

use crate::regime::{RegimeChain, RegimeState};
use crate::rng::{Stream, StreamRng, stream_rng};
use crate::trace::{MAHIMAHI_PACKET_BYTES, TimeSeries, TraceCursor, TraceError, parse_mahimahi, parse_time_series_csv};
use crate::validate::{InvalidField, Validation, non_negative, positive};
use rand::{Rng, RngExt};
use rand_distr::{Distribution, Gamma, StandardNormal};
use serde::{Deserialize, Serialize};
use std::f64::consts::LN_2;

/// Nakagami's shape parameter is defined for m >= 1/2 (Nakagami 1960, "The m-distribution");
/// m = 1/2 is one-sided Gaussian fading, m = 1 Rayleigh, m → ∞ no fading.
pub const NAKAGAMI_M_MIN: f64 = 0.5;
/// Ethernet MTU, the usual packet size of the traces and of Mahimahi.
pub const DEFAULT_PACKET_BYTES: u32 = MAHIMAHI_PACKET_BYTES;
/// A trace is replayed at its recorded rates unless scaled.
pub const DEFAULT_TRACE_SCALE: f64 = 1.0;
/// Traces repeat by default (Mahimahi's own semantics), so an episode never runs off the end.
pub const DEFAULT_LOOP_TRACE: bool = true;
/// Mahimahi traces are binned to the default slot length (1 s, system-model.md §1), so one
/// slot reads one bin.
pub const DEFAULT_TRACE_BIN_S: f64 = 1.0;
/// The column a CSV link-rate trace must have (besides `time_s`).
pub const TRACE_RATE_COLUMN: &str = "bandwidth_bps";

const BITS_PER_BYTE: f64 = 8.0;

/// ln(2⁻⁵³): below this log-probability a factor is 0 to double precision, so the
/// retransmission-round terms 1 − (1 − pᵏ)ⁿ it makes are exactly 1.
const LN_DOUBLE_EPSILON: f64 = -36.736_800_569_677_1;
/// Exact retransmission-round terms summed beyond the saturated ones (see
/// [`expected_retransmission_rounds`]): 17.4/λ terms reach the tail switch, <= 87 for λ >= 0.2.
const RETRANSMISSION_EXACT_TERMS: u32 = 128;
/// Below this λ = −ln p (p > 0.82) the round sum is evaluated as an integral.
const RETRANSMISSION_INTEGRAL_LAMBDA: f64 = 0.2;
/// Once n·pᵏ is below this the remaining terms are summed in closed form.
const RETRANSMISSION_TAIL_SWITCH: f64 = 1e-6;

// ---------------------------------------------------------------------------------------------
// Pure channel functions
// ---------------------------------------------------------------------------------------------

#[inline]
pub fn db_to_linear(db: f64) -> f64 {
    10f64.powf(db / 10.0)
}

#[inline]
pub fn linear_to_db(x: f64) -> f64 {
    10.0 * x.log10()
}

/// P_out = P(γ̄·g < γ_th) with g ~ Gamma(m, 1/m) (unit-mean Nakagami-m power gain), i.e. the
/// regularised lower incomplete gamma P(m, m·γ_th/γ̄) (system-model.md §4; Simon & Alouini,
/// "Digital Communication over Fading Channels", eq. 2.21). For m = 1 this is
/// 1 − exp(−γ_th/γ̄). Limits are handled without calling the special function: γ_th <= 0 → 0,
/// γ̄ <= 0 → 1, γ̄ = ∞ → 0, m = ∞ (no fading) → 1 if γ̄ < γ_th else 0. NaN in, NaN out.
pub fn outage_probability(mean_snr_linear: f64, threshold_linear: f64, nakagami_m: f64) -> f64 {
    if mean_snr_linear.is_nan() || threshold_linear.is_nan() || nakagami_m.is_nan() || nakagami_m <= 0.0 {
        return f64::NAN;
    }
    if threshold_linear <= 0.0 {
        return 0.0;
    }
    if mean_snr_linear <= 0.0 || threshold_linear == f64::INFINITY {
        return 1.0;
    }
    if mean_snr_linear == f64::INFINITY {
        return 0.0;
    }
    if nakagami_m == f64::INFINITY {
        return if mean_snr_linear < threshold_linear { 1.0 } else { 0.0 };
    }
    let x = nakagami_m * threshold_linear / mean_snr_linear;
    if x == 0.0 {
        return 0.0;
    }
    if x == f64::INFINITY {
        return 1.0;
    }
    statrs::function::gamma::checked_gamma_lr(nakagami_m, x).unwrap_or(f64::NAN)
}

/// R = W·log2(1 + SNR) (Shannon capacity, system-model.md §4 "shannon" rate model).
#[inline]
pub fn shannon_rate_bps(bandwidth_hz: f64, snr_linear: f64) -> f64 {
    bandwidth_hz * snr_linear.ln_1p() / LN_2
}

/// A Nakagami-m power-gain sampler built once: g ~ Gamma(shape m, scale 1/m), E[g] = 1,
/// Var[g] = 1/m (§4 with Ω = 1).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FadingSampler {
    pub nakagami_m: f64,
    gamma: Gamma<f64>,
}

impl FadingSampler {
    /// Fails unless m is finite and >= 1/2.
    pub fn new(nakagami_m: f64) -> Result<Self, InvalidField> {
        validate_nakagami_m("nakagami_m", nakagami_m)?;
        let gamma = Gamma::new(nakagami_m, 1.0 / nakagami_m)
            .map_err(|e| InvalidField::new("nakagami_m", nakagami_m, e.to_string()))?;
        Ok(Self { nakagami_m, gamma })
    }

    #[inline]
    pub fn sample<R: Rng + ?Sized>(&self, rng: &mut R) -> f64 {
        self.gamma.sample(rng)
    }
}

/// One Nakagami-m power-gain draw (builds the sampler each call; prefer [`FadingSampler`] in
/// loops). Returns NaN when m is not a positive finite number.
pub fn sample_power_gain<R: Rng + ?Sized>(rng: &mut R, nakagami_m: f64) -> f64 {
    match Gamma::new(nakagami_m, 1.0 / nakagami_m) {
        Ok(gamma) if nakagami_m.is_finite() => gamma.sample(rng),
        _ => f64::NAN,
    }
}

fn validate_nakagami_m(field: &str, m: f64) -> Validation {
    if m.is_finite() && m >= NAKAGAMI_M_MIN {
        Ok(())
    } else {
        Err(InvalidField::new(
            field,
            m,
            format!(
                "must be a finite number >= {NAKAGAMI_M_MIN} (Nakagami-m shape: 0.5 is the \
                 most severe fading the model defines, 1 is Rayleigh, larger is milder)"
            ),
        ))
    }
}

/// An AR(1) coefficient in [0, 1): 1 would be a random walk with no stationary law.
fn ar_coefficient(field: &str, value: f64) -> Validation {
    if value.is_finite() && (0.0..1.0).contains(&value) {
        Ok(())
    } else {
        Err(InvalidField::new(field, value, "must be in [0, 1) (AR(1) coefficient; 1 has no stationary law)"))
    }
}

fn finite(field: &str, value: f64, what: &str) -> Validation {
    if value.is_finite() {
        Ok(())
    } else {
        Err(InvalidField::new(field, value, format!("must be a finite number ({what})")))
    }
}

/// One step of a stationary AR(1) with stationary std `sigma`: x' = φx + σ·√(1−φ²)·ε.
#[inline]
fn ar1_step<R: Rng + ?Sized>(x: f64, phi: f64, sigma: f64, rng: &mut R) -> f64 {
    let eps: f64 = StandardNormal.sample(rng);
    phi * x + sigma * (1.0 - phi * phi).sqrt() * eps
}

// ---------------------------------------------------------------------------------------------
// Rate model configs
// ---------------------------------------------------------------------------------------------

/// How the link rate is produced (system-model.md §4): a rate process (fading then only drives
/// loss) or Shannon capacity of the slot's faded SNR.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq)]
#[serde(tag = "model", rename_all = "kebab-case", deny_unknown_fields)]
pub enum RateModelConfig {
    Rate {
        process: RateProcessConfig,
    },
    /// R = W·log2(1 + γ̄·g) with the slot's mean SNR γ̄ and fading draw g.
    Shannon {
        bandwidth_hz: f64,
    },
}

impl RateModelConfig {
    pub fn validate(&self) -> Validation {
        match self {
            Self::Rate { process } => process.validate().map_err(|e| e.under("process")),
            Self::Shannon { bandwidth_hz } => positive("bandwidth_hz", *bandwidth_hz, "channel bandwidth in Hz"),
        }
    }

    /// The trace file this config needs, if any (the binary reads it and calls
    /// [`TraceRateConfig::parse`]).
    pub fn trace(&self) -> Option<&TraceRateConfig> {
        match self {
            Self::Rate { process: RateProcessConfig::Trace(t) } => Some(t),
            _ => None,
        }
    }
}

/// The throughput process of the "rate" model.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum RateProcessConfig {
    Constant { bandwidth_bps: f64 },
    Regimes(RegimesConfig),
    Trace(TraceRateConfig),
}

impl RateProcessConfig {
    pub fn validate(&self) -> Validation {
        match self {
            Self::Constant { bandwidth_bps } => positive("bandwidth_bps", *bandwidth_bps, "constant link rate"),
            Self::Regimes(r) => r.validate(),
            Self::Trace(t) => t.validate(),
        }
    }
}

/// One regime of the Markov-modulated rate process.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RegimeConfig {
    pub name: String,
    /// Mean of the unclamped rate in this regime (the log-deviation is mean-corrected).
    pub mean_bps: f64,
    pub min_bps: f64,
    pub max_bps: f64,
    /// Mean time spent in this regime before switching (exponential holding time, see
    /// [`RegimeChain`]).
    pub mean_dwell_s: f64,
}

/// Markov-modulated log-AR(1) rate (system-model.md §4).
///
/// Regime switching is the project's continuous-time Markov chain ([`RegimeChain`]): regime i
/// lasts an exponential time of mean `mean_dwell_s`, then one of the other regimes is chosen
/// uniformly. It is simulated exactly (several switches may fall in one slot), so its law does
/// not depend on the slot length; its stationary law, which the initial regime is drawn from,
/// is π_i ∝ mean_dwell_s,i.
///
/// Inside a regime, x = ln(R / mean) + σ²/2 follows a stationary AR(1) whose coefficient over
/// one second is `log_ar_coefficient_per_s` (φ); over a slot of `slot_s` it is φ^slot_s, so the
/// same config gives the same dynamics at any slot length. The stationary std of x is
/// `log_sigma`, and R = mean·exp(x − σ²/2) has the regime's mean before clamping to
/// [min_bps, max_bps]. The log-deviation carries over a regime switch (the new regime starts at
/// the same relative level).
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RegimesConfig {
    pub regimes: Vec<RegimeConfig>,
    pub log_ar_coefficient_per_s: f64,
    pub log_sigma: f64,
}

impl RegimesConfig {
    /// The three regimes of system-model.md §4: 3G ≈ 1–5 Mbit/s, LTE/Wi-Fi ≈ 5–50, 5G ≈ 50–300.
    /// Means (2.5, 20, 150 Mbit/s), dwell times (60 s each), φ = 0.9 per second and σ = 0.3 are
    /// assumptions of this preset, not published values.
    pub fn cellular_3g_lte_5g() -> Self {
        let regime = |name: &str, mean_bps: f64, min_bps: f64, max_bps: f64| RegimeConfig {
            name: name.to_string(),
            mean_bps,
            min_bps,
            max_bps,
            mean_dwell_s: 60.0,
        };
        Self {
            regimes: vec![
                regime("3g", 2.5e6, 1e6, 5e6),
                regime("lte", 20e6, 5e6, 50e6),
                regime("5g", 150e6, 50e6, 300e6),
            ],
            log_ar_coefficient_per_s: 0.9,
            log_sigma: 0.3,
        }
    }

    pub fn validate(&self) -> Validation {
        if self.regimes.is_empty() {
            return Err(InvalidField::new("regimes", "[]", "must list at least one regime"));
        }
        for (i, r) in self.regimes.iter().enumerate() {
            let at = |e: InvalidField| e.under(&format!("regimes[{i}]"));
            if r.name.trim().is_empty() {
                return Err(at(InvalidField::new("name", "\"\"", "must be a non-empty name")));
            }
            positive("min_bps", r.min_bps, "regime minimum rate").map_err(at)?;
            positive("max_bps", r.max_bps, "regime maximum rate").map_err(at)?;
            if r.min_bps > r.max_bps {
                return Err(at(InvalidField::new("min_bps", r.min_bps, format!("must be <= max_bps ({})", r.max_bps))));
            }
            if !(r.mean_bps.is_finite() && r.mean_bps >= r.min_bps && r.mean_bps <= r.max_bps) {
                return Err(at(InvalidField::new(
                    "mean_bps",
                    r.mean_bps,
                    format!("must be in [min_bps, max_bps] = [{}, {}]", r.min_bps, r.max_bps),
                )));
            }
            positive("mean_dwell_s", r.mean_dwell_s, "mean time in the regime").map_err(at)?;
        }
        ar_coefficient("log_ar_coefficient_per_s", self.log_ar_coefficient_per_s)?;
        non_negative("log_sigma", self.log_sigma, "stationary std of the log-rate deviation")
    }
}

#[derive(Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum TraceFormat {
    /// `time_s,bandwidth_bps` CSV (see `trace::parse_time_series_csv`).
    Csv,
    /// Mahimahi packet-delivery timestamps (see `trace::parse_mahimahi`).
    Mahimahi,
}

fn default_loop_trace() -> bool {
    DEFAULT_LOOP_TRACE
}
fn default_trace_scale() -> f64 {
    DEFAULT_TRACE_SCALE
}
fn default_trace_bin_s() -> f64 {
    DEFAULT_TRACE_BIN_S
}
fn default_packet_bytes() -> u32 {
    DEFAULT_PACKET_BYTES
}

/// A replayed rate trace. `path` is only a name here (env does no file IO).
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TraceRateConfig {
    pub path: String,
    pub format: TraceFormat,
    /// Repeat the trace past its end (otherwise the last rate holds).
    #[serde(default = "default_loop_trace")]
    pub loop_trace: bool,
    /// Multiplies every rate of the trace.
    #[serde(default = "default_trace_scale")]
    pub scale: f64,
    /// Mahimahi only: the bin over which delivery opportunities are counted into bit/s.
    #[serde(default = "default_trace_bin_s")]
    pub bin_s: f64,
    /// Mahimahi only: bytes per delivery opportunity.
    #[serde(default = "default_packet_bytes")]
    pub packet_bytes: u32,
    /// Start each episode at a uniformly drawn point of the trace (bandwidth stream) instead of
    /// its beginning, so training episodes do not all see the same stretch.
    #[serde(default)]
    pub random_start: bool,
}

impl TraceRateConfig {
    pub fn validate(&self) -> Validation {
        if self.path.trim().is_empty() {
            return Err(InvalidField::new("path", "\"\"", "must name the trace file"));
        }
        positive("scale", self.scale, "multiplier of the trace rates")?;
        positive("bin_s", self.bin_s, "Mahimahi bin length")?;
        if self.packet_bytes == 0 {
            return Err(InvalidField::new("packet_bytes", 0, "must be > 0 (bytes per delivery)"));
        }
        Ok(())
    }

    /// Parses the trace text read from `self.path` (the binary does the reading) and applies
    /// `scale`; the path is the origin of every parse error. The series is in bit/s.
    pub fn parse(&self, text: &str) -> Result<TimeSeries, TraceError> {
        let trace = match self.format {
            TraceFormat::Csv => parse_time_series_csv(text, &self.path, TRACE_RATE_COLUMN)?,
            TraceFormat::Mahimahi => parse_mahimahi(text, &self.path, self.packet_bytes, self.bin_s)?,
        };
        Ok(trace.scaled(self.scale))
    }
}

// ---------------------------------------------------------------------------------------------
// Rate processes
// ---------------------------------------------------------------------------------------------

/// The state of a rate process: the current slot's regime and log-deviation, or the current
/// slot's position in a trace.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum RateState {
    /// Constant rate, or a Shannon rate (which has no state of its own).
    Stateless,
    Regimes {
        regime: RegimeState,
        log_deviation: f64,
    },
    Trace {
        time_s: f64,
        cursor: TraceCursor,
    },
}

/// A resolved trace replay.
#[derive(Clone, Debug, PartialEq)]
pub struct TraceProcess {
    /// The rate in bit/s, already scaled.
    pub trace: TimeSeries,
    pub loop_trace: bool,
    pub random_start: bool,
}

/// A validated rate process ready to step.
#[derive(Clone, Debug, PartialEq)]
pub enum RateProcess {
    Constant {
        bandwidth_bps: f64,
    },
    /// The regime chain is built once from the regimes' `mean_dwell_s`.
    Regimes {
        config: RegimesConfig,
        chain: RegimeChain,
    },
    Trace(TraceProcess),
}

impl RateProcess {
    /// Long-run mean rate (bit/s): the stationary regime mixture of the regimes' means (before
    /// clamping), the trace's time-average over one pass, or the constant.
    pub fn mean_rate_bps(&self) -> f64 {
        match self {
            Self::Constant { bandwidth_bps } => *bandwidth_bps,
            Self::Regimes { config, chain } => {
                let means: Vec<f64> = config.regimes.iter().map(|r| r.mean_bps).collect();
                chain.stationary_mean(&means)
            }
            Self::Trace(p) => p.trace.mean_value(),
        }
    }

    /// Builds the process from its config; a `trace` config needs the parsed (and scaled, see
    /// [`TraceRateConfig::parse`]) trace.
    pub fn new(config: &RateProcessConfig, trace: Option<TimeSeries>) -> Result<Self, InvalidField> {
        config.validate()?;
        Ok(match config {
            RateProcessConfig::Constant { bandwidth_bps } => Self::Constant { bandwidth_bps: *bandwidth_bps },
            RateProcessConfig::Regimes(r) => {
                let dwell_s: Vec<f64> = r.regimes.iter().map(|g| g.mean_dwell_s).collect();
                // Validated above, so this cannot fail; an error would name the regime's dwell.
                let chain = RegimeChain::new(&dwell_s).map_err(|e| {
                    let field = e.field.replacen("mean_dwell_s[", "regimes[", 1).replacen(']', "].mean_dwell_s", 1);
                    InvalidField { field, ..e }
                })?;
                Self::Regimes { config: r.clone(), chain }
            }
            RateProcessConfig::Trace(t) => {
                let Some(trace) = trace else {
                    return Err(InvalidField::new(
                        "path",
                        &t.path,
                        "the trace was not loaded: parse its text with TraceRateConfig::parse \
                         and pass it in",
                    ));
                };
                if let Err(e) = trace.validate() {
                    return Err(InvalidField::new("path", &t.path, format!("the parsed trace is malformed: {e}")));
                }
                Self::Trace(TraceProcess { trace, loop_trace: t.loop_trace, random_start: t.random_start })
            }
        })
    }

    /// The state of the first slot, drawn from the stationary law (regime from π ∝ mean dwell
    /// with an exponential residual dwell, log-deviation from N(0, σ²)); a trace starts at its
    /// beginning or, with `random_start`, at a uniform point of one pass.
    pub fn initial_state<R: Rng + ?Sized>(&self, rng: &mut R) -> RateState {
        match self {
            Self::Constant { .. } => RateState::Stateless,
            Self::Regimes { config, chain } => {
                // `&mut R` is itself an Rng, which lets an unsized R reach the chain's `impl Rng`.
                let regime = chain.initial_state(&mut &mut *rng);
                let eps: f64 = StandardNormal.sample(rng);
                RateState::Regimes { regime, log_deviation: config.log_sigma * eps }
            }
            Self::Trace(p) => {
                let start = p.trace.start_s();
                let time_s = if p.random_start && p.trace.period_s.is_finite() {
                    start + rng.random::<f64>() * p.trace.period_s
                } else {
                    start
                };
                let mut cursor = TraceCursor::default();
                p.trace.value_at_cursor(&mut cursor, time_s, p.loop_trace);
                RateState::Trace { time_s, cursor }
            }
        }
    }

    /// A fresh residual dwell of the current rate regime ([`RegimeChain::redraw_residual`]);
    /// constant and trace rates have none (a trace's future is the trace).
    pub fn redraw_residual<R: Rng + ?Sized>(&self, state: &mut RateState, rng: &mut R) {
        if let (Self::Regimes { chain, .. }, RateState::Regimes { regime, .. }) = (self, state) {
            chain.redraw_residual(regime, &mut &mut *rng);
        }
    }

    /// The rate of the slot `state` describes.
    pub fn rate_bps(&self, state: &RateState) -> f64 {
        match (self, state) {
            (Self::Constant { bandwidth_bps }, _) => *bandwidth_bps,
            (Self::Regimes { config: c, .. }, RateState::Regimes { regime, log_deviation }) => {
                let r = &c.regimes[regime.regime.min(c.regimes.len() - 1)];
                let half_var = 0.5 * c.log_sigma * c.log_sigma;
                (r.mean_bps * (log_deviation - half_var).exp()).clamp(r.min_bps, r.max_bps)
            }
            (Self::Trace(p), RateState::Trace { time_s, cursor }) => {
                let mut cursor = *cursor;
                p.trace.value_at_cursor(&mut cursor, *time_s, p.loop_trace)
            }
            // A state of another process kind (a programmer error: a state restored into the
            // wrong link): report the process's start-of-trace / mean-regime value.
            (Self::Regimes { config: c, .. }, _) => c.regimes[0].mean_bps,
            (Self::Trace(p), _) => p.trace.value_at(p.trace.start_s(), p.loop_trace),
        }
    }

    /// Moves `state` to the next slot and returns that slot's rate in bit/s. Allocation-free.
    /// Draws: regimes — an exponential and a uniform per regime switch plus one normal per slot;
    /// trace and constant — none.
    pub fn advance<R: Rng + ?Sized>(&self, state: &mut RateState, slot_s: f64, rng: &mut R) -> f64 {
        match (self, &mut *state) {
            (Self::Constant { bandwidth_bps }, _) => return *bandwidth_bps,
            (Self::Regimes { config: c, chain }, RateState::Regimes { regime, log_deviation }) => {
                chain.advance(regime, slot_s, &mut &mut *rng);
                let phi = c.log_ar_coefficient_per_s.powf(slot_s);
                *log_deviation = ar1_step(*log_deviation, phi, c.log_sigma, rng);
            }
            (Self::Trace(p), RateState::Trace { time_s, cursor }) => {
                let mut t = *time_s + slot_s;
                if p.loop_trace && t >= p.trace.end_s() && p.trace.period_s.is_finite() {
                    t = p.trace.start_s() + (t - p.trace.start_s()).rem_euclid(p.trace.period_s);
                }
                *time_s = t;
                return p.trace.value_at_cursor(cursor, t, p.loop_trace);
            }
            _ => {
                debug_assert!(false, "rate state {state:?} does not belong to this process");
                *state = self.initial_state(rng);
            }
        }
        self.rate_bps(state)
    }
}

// ---------------------------------------------------------------------------------------------
// SNR, latency, transport
// ---------------------------------------------------------------------------------------------

/// Average SNR γ̄ (dB) as a stationary AR(1) around `mean_db` with stationary std `sigma_db`,
/// plus the Nakagami-m shape of the small-scale fading (system-model.md §4).
/// `ar_coefficient_per_s` is the lag-1 s autocorrelation φ; a slot of `slot_s` uses φ^slot_s
/// (the sampling of a continuous-time Ornstein–Uhlenbeck process), so the same config gives
/// the same dynamics at any slot length.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SnrConfig {
    pub mean_db: f64,
    pub ar_coefficient_per_s: f64,
    pub sigma_db: f64,
    pub nakagami_m: f64,
}

impl SnrConfig {
    pub fn validate(&self) -> Validation {
        finite("mean_db", self.mean_db, "mean SNR in dB")?;
        ar_coefficient("ar_coefficient_per_s", self.ar_coefficient_per_s)?;
        non_negative("sigma_db", self.sigma_db, "stationary std of the SNR in dB")?;
        validate_nakagami_m("nakagami_m", self.nakagami_m)
    }
}

/// The current slot's deviation of the mean SNR from `mean_db`.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq)]
pub struct SnrState {
    pub deviation_db: f64,
}

#[derive(Clone, Debug, PartialEq)]
pub struct SnrProcess {
    pub config: SnrConfig,
}

impl SnrProcess {
    pub fn new(config: &SnrConfig) -> Result<Self, InvalidField> {
        config.validate()?;
        Ok(Self { config: config.clone() })
    }

    /// Stationary start: deviation ~ N(0, sigma_db²).
    pub fn initial_state<R: Rng + ?Sized>(&self, rng: &mut R) -> SnrState {
        let eps: f64 = StandardNormal.sample(rng);
        SnrState { deviation_db: self.config.sigma_db * eps }
    }

    pub fn snr_db(&self, state: &SnrState) -> f64 {
        self.config.mean_db + state.deviation_db
    }

    /// Moves to the next slot, `slot_s` later (one normal draw), and returns its mean SNR in dB.
    pub fn advance<R: Rng + ?Sized>(&self, state: &mut SnrState, slot_s: f64, rng: &mut R) -> f64 {
        let phi = self.config.ar_coefficient_per_s.powf(slot_s);
        state.deviation_db = ar1_step(state.deviation_db, phi, self.config.sigma_db, rng);
        self.snr_db(state)
    }
}

/// Network one-way latency of a slot: `one_way_s + U[0, jitter_s)` (system-model.md §4,
/// "e.g. 10–50 ms").
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct LatencyConfig {
    pub one_way_s: f64,
    pub jitter_s: f64,
}

impl LatencyConfig {
    pub fn validate(&self) -> Validation {
        non_negative("one_way_s", self.one_way_s, "one-way network latency")?;
        non_negative("jitter_s", self.jitter_s, "width of the uniform latency jitter")
    }

    /// One draw (always one uniform, even with no jitter, so the stream stays aligned).
    #[inline]
    pub fn sample_one_way_s<R: Rng + ?Sized>(&self, rng: &mut R) -> f64 {
        let u: f64 = rng.random();
        self.one_way_s + self.jitter_s * u
    }
}

/// What happens to lost packets (system-model.md §4).
#[derive(Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum TransportMode {
    /// Lost packets are retransmitted: a latency cost.
    Reliable,
    /// Lost packets erase part of the boundary tensor: an accuracy cost (ALS).
    Lossy,
}

/// Transport of boundary tensors. A packet is lost when the instantaneous SNR γ̄·g falls below
/// `packet_loss_threshold_db`, so the per-packet loss probability of a slot is the outage
/// probability P_out(γ̄, γ_th, m) (§4), each packet seeing an independent fade (coherence time
/// ≪ slot).
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TransportConfig {
    pub mode: TransportMode,
    #[serde(default = "default_packet_bytes")]
    pub packet_bytes: u32,
    pub packet_loss_threshold_db: f64,
}

impl TransportConfig {
    pub fn validate(&self) -> Validation {
        if self.packet_bytes == 0 {
            return Err(InvalidField::new("packet_bytes", 0, "must be > 0 (bytes per packet)"));
        }
        finite("packet_loss_threshold_db", self.packet_loss_threshold_db, "SNR threshold in dB")
    }

    /// Expected time to move `bytes` across the link in this mode.
    #[inline]
    pub fn transfer_time_s(&self, bytes: f64, rate_bps: f64, one_way_s: f64, packet_loss_prob: f64) -> f64 {
        match self.mode {
            TransportMode::Reliable => {
                reliable_transfer_time_s(bytes, rate_bps, one_way_s, packet_loss_prob, self.packet_bytes)
            }
            TransportMode::Lossy => lossy_transfer_time_s(bytes, rate_bps, one_way_s),
        }
    }

    /// Fraction of the transferred tensor erased: the packet loss probability in lossy mode
    /// (the accuracy module maps it to accuracy loss, §5), 0 in reliable mode.
    #[inline]
    pub fn erasure_rate(&self, packet_loss_prob: f64) -> f64 {
        match self.mode {
            TransportMode::Reliable => 0.0,
            TransportMode::Lossy => packet_loss_prob.clamp(0.0, 1.0),
        }
    }
}

/// Lossy transfer: serialisation plus one-way propagation, lost packets are not resent.
/// Zero bytes cost nothing; a zero rate never finishes (∞).
#[inline]
pub fn lossy_transfer_time_s(bytes: f64, rate_bps: f64, one_way_s: f64) -> f64 {
    if bytes <= 0.0 {
        return 0.0;
    }
    if rate_bps.is_nan() || rate_bps <= 0.0 {
        return f64::INFINITY;
    }
    one_way_s + bytes * BITS_PER_BYTE / rate_bps
}

/// Expected reliable transfer time under a round-based selective-repeat ARQ.
///
/// Model: the `n = ⌈bytes / packet_bytes⌉` packets are sent back to back; each is lost
/// independently with probability p; the receiver reports the losses, which reach the sender one
/// round trip (2·one_way_s) after the round's last packet, and only the lost packets are resent
/// in the next round. The transfer ends one-way after the last round. Hence
///
///   T = one_way_s + (bits sent)/rate + R·2·one_way_s,
///
/// where R is the number of retransmission rounds = max over packets of (transmissions − 1).
/// Each byte is sent a Geometric(1 − p) number of times, so E[bits sent] = 8·bytes/(1 − p), and
/// E[R] = Σ_{k≥1} P(R ≥ k) = Σ_{k≥1} 1 − (1 − pᵏ)ⁿ ([`expected_retransmission_rounds`]).
/// So E[T] = one_way_s + 8·bytes/(rate·(1 − p)) + 2·one_way_s·E[R]. Waiting a full round trip
/// per round slightly overestimates a pipelined ARQ (which resends while later packets are still
/// in flight); it is the conservative reading. p >= 1 or rate <= 0 never finishes (∞).
#[inline]
pub fn reliable_transfer_time_s(
    bytes: f64,
    rate_bps: f64,
    one_way_s: f64,
    packet_loss_prob: f64,
    packet_bytes: u32,
) -> f64 {
    if bytes <= 0.0 {
        return 0.0;
    }
    if rate_bps.is_nan() || rate_bps <= 0.0 || packet_loss_prob.is_nan() || packet_loss_prob >= 1.0 || packet_bytes == 0
    {
        return f64::INFINITY;
    }
    let p = packet_loss_prob.max(0.0);
    let n_packets = (bytes / f64::from(packet_bytes)).ceil();
    let serialisation_s = bytes * BITS_PER_BYTE / rate_bps;
    one_way_s + serialisation_s / (1.0 - p) + 2.0 * one_way_s * expected_retransmission_rounds(n_packets, p)
}

/// E[max_i G_i − 1] for n i.i.d. Geometric(1 − p) transmission counts, i.e.
/// Σ_{k≥1} f(k) with f(k) = 1 − (1 − pᵏ)ⁿ (`n_packets` is a count; a fraction is rounded up),
/// without allocation and in bounded time (at most ~130 cheap iterations):
/// - for p <= e^{−0.2} ≈ 0.82 the series itself: the leading terms that equal 1 to double
///   precision ((1 − pᵏ)ⁿ < 2⁻⁵³) are counted in closed form, the next ones summed exactly until
///   n·pᵏ < 1e-6, and the rest is the geometric tail Σ_{j>k} n·pʲ = n·p^{k+1}/(1 − p)
///   (relative error < 1e-6 on a tail < 1e-5): exact to ~1e-11;
/// - for p closer to 1 the summand varies on a scale 1/λ >= 5 slots (λ = −ln p), and the
///   midpoint Euler–Maclaurin formula Σ_{k≥1} f(k) = ∫_{1/2}^∞ f(x)dx + f'(1/2)/24 + O(λ³) is
///   exact to ~1e-5 relative at the switch and better closer to p = 1 (the next term is
///   −7·f'''(1/2)/5760, of order λ³/800): substituting y = pˣ, ∫_{1/2}^∞ f = (1/λ)·Σ_{i=1}^{n} (1 − qⁱ)/i with
///   q = 1 − √p, i.e. (H_n − Σ_{i=1}^{n} qⁱ/i)/λ, and f'(1/2) = −λ·n·√p·q^{n−1}.
pub fn expected_retransmission_rounds(n_packets: f64, p: f64) -> f64 {
    if p.is_nan() || p <= 0.0 || n_packets.is_nan() || n_packets <= 0.0 {
        return 0.0;
    }
    if p >= 1.0 {
        return f64::INFINITY;
    }
    let n = n_packets.ceil();
    let lambda = -p.ln();
    if lambda < RETRANSMISSION_INTEGRAL_LAMBDA {
        return retransmission_rounds_integral(n, p, lambda);
    }
    // pᵏ > y_unit ⇔ (1 − pᵏ)ⁿ < 2⁻⁵³ ⇔ the term is 1.0 in double precision.
    let y_unit = -(LN_DOUBLE_EPSILON / n).exp_m1();
    let saturated = if p > y_unit { ((y_unit.ln() / -lambda).ceil() - 1.0).max(0.0) } else { 0.0 };
    let mut sum = saturated;
    let mut p_k = p.powf(saturated);
    for _ in 0..RETRANSMISSION_EXACT_TERMS {
        p_k *= p;
        sum += -(n * (-p_k).ln_1p()).exp_m1();
        if n * p_k < RETRANSMISSION_TAIL_SWITCH {
            return sum + n * p_k * p / (1.0 - p);
        }
    }
    // Not reached for λ >= 0.2 (17.4/λ <= 87 terms suffice); kept as a safe fallback.
    retransmission_rounds_integral(n, p, lambda)
}

/// The Euler–Maclaurin evaluation of [`expected_retransmission_rounds`] (see there).
fn retransmission_rounds_integral(n: f64, p: f64, lambda: f64) -> f64 {
    let sqrt_p = p.sqrt();
    let q = 1.0 - sqrt_p;
    // Σ_{i=1}^{n} qⁱ/i: q <= 0.1 here, so it converges within ~17 terms.
    let mut q_i = 1.0;
    let mut partial = 0.0;
    let mut i = 1.0;
    while i <= n {
        q_i *= q;
        let term = q_i / i;
        partial += term;
        if term < 1e-18 * partial {
            break;
        }
        i += 1.0;
    }
    let harmonic = harmonic_number(n);
    let derivative_half = -lambda * n * sqrt_p * q.powf(n - 1.0);
    (harmonic - partial) / lambda + derivative_half / 24.0
}

/// H_n = Σ_{i=1}^{n} 1/i: summed for small n, else ln n + γ + 1/(2n) − 1/(12n²) + 1/(120n⁴)
/// (error < 1/(252·n⁶) < 1e-13 for n > 32).
fn harmonic_number(n: f64) -> f64 {
    const EULER_GAMMA: f64 = 0.577_215_664_901_532_9;
    if n <= 32.0 {
        let mut h = 0.0;
        let mut i = 1.0;
        while i <= n {
            h += 1.0 / i;
            i += 1.0;
        }
        h
    } else {
        let n2 = n * n;
        n.ln() + EULER_GAMMA + 0.5 / n - 1.0 / (12.0 * n2) + 1.0 / (120.0 * n2 * n2)
    }
}

// ---------------------------------------------------------------------------------------------
// The whole link
// ---------------------------------------------------------------------------------------------

/// The `[link]` section of a scenario.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct LinkConfig {
    pub rate: RateModelConfig,
    pub snr: SnrConfig,
    pub latency: LatencyConfig,
    pub transport: TransportConfig,
}

impl LinkConfig {
    pub fn validate(&self) -> Validation {
        self.rate.validate().map_err(|e| e.under("rate"))?;
        self.snr.validate().map_err(|e| e.under("snr"))?;
        self.latency.validate().map_err(|e| e.under("latency"))?;
        self.transport.validate().map_err(|e| e.under("transport"))
    }
}

/// What the link offers during one slot.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq)]
pub struct LinkSlot {
    pub rate_bps: f64,
    /// Mean SNR γ̄ of the slot.
    pub snr_db: f64,
    /// The slot's Nakagami-m power-gain draw g (drives the Shannon rate; the loss probability
    /// averages over per-packet fades).
    pub fading_gain: f64,
    pub one_way_s: f64,
    /// Per-packet loss (= outage) probability P_out(γ̄, γ_th, m).
    pub packet_loss_probability: f64,
}

/// The link's state: its processes plus the current slot's realisation.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq)]
pub struct LinkState {
    pub rate: RateState,
    pub snr: SnrState,
    pub slot: LinkSlot,
}

/// The four link streams, borrowed for one call (system-model.md §1: one stream per process).
pub struct LinkRngs<'a> {
    pub bandwidth: &'a mut StreamRng,
    pub snr: &'a mut StreamRng,
    pub fading: &'a mut StreamRng,
    pub latency: &'a mut StreamRng,
}

/// Owned link streams for callers that keep them together (serialisable with the env state).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct LinkStreams {
    pub bandwidth: StreamRng,
    pub snr: StreamRng,
    pub fading: StreamRng,
    pub latency: StreamRng,
}

impl LinkStreams {
    /// The link's streams of episode `seed` (`Stream::Bandwidth`, `Snr`, `Fading`, `Latency`).
    pub fn new(seed: u64) -> Self {
        Self {
            bandwidth: stream_rng(seed, Stream::Bandwidth),
            snr: stream_rng(seed, Stream::Snr),
            fading: stream_rng(seed, Stream::Fading),
            latency: stream_rng(seed, Stream::Latency),
        }
    }

    pub fn rngs(&mut self) -> LinkRngs<'_> {
        LinkRngs {
            bandwidth: &mut self.bandwidth,
            snr: &mut self.snr,
            fading: &mut self.fading,
            latency: &mut self.latency,
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
enum RateModel {
    Process(RateProcess),
    Shannon { bandwidth_hz: f64 },
}

/// A validated link ready to step.
#[derive(Clone, Debug, PartialEq)]
pub struct Link {
    config: LinkConfig,
    rate: RateModel,
    snr: SnrProcess,
    fading: FadingSampler,
    threshold_linear: f64,
}

impl Link {
    /// Validates `config` and resolves it; a trace-driven rate needs its parsed trace
    /// ([`TraceRateConfig::parse`]). Errors are relative to the link section.
    pub fn new(config: &LinkConfig, trace: Option<TimeSeries>) -> Result<Self, InvalidField> {
        config.validate()?;
        let rate = match &config.rate {
            RateModelConfig::Rate { process } => {
                RateModel::Process(RateProcess::new(process, trace).map_err(|e| e.under("rate.process"))?)
            }
            RateModelConfig::Shannon { bandwidth_hz } => RateModel::Shannon { bandwidth_hz: *bandwidth_hz },
        };
        Ok(Self {
            config: config.clone(),
            rate,
            snr: SnrProcess::new(&config.snr).map_err(|e| e.under("snr"))?,
            fading: FadingSampler::new(config.snr.nakagami_m).map_err(|e| e.under("snr"))?,
            threshold_linear: db_to_linear(config.transport.packet_loss_threshold_db),
        })
    }

    pub fn config(&self) -> &LinkConfig {
        &self.config
    }

    pub fn nakagami_m(&self) -> f64 {
        self.config.snr.nakagami_m
    }

    pub fn transport(&self) -> &TransportConfig {
        &self.config.transport
    }

    /// Long-run mean link rate (bit/s); for the Shannon model, the rate at the mean SNR without
    /// fading (what a static, offline policy plans with).
    pub fn mean_rate_bps(&self) -> f64 {
        match &self.rate {
            RateModel::Process(p) => p.mean_rate_bps(),
            RateModel::Shannon { bandwidth_hz } => {
                shannon_rate_bps(*bandwidth_hz, db_to_linear(self.config.snr.mean_db))
            }
        }
    }

    /// Per-packet loss probability at mean SNR `snr_db` (outage below the transport threshold).
    #[inline]
    pub fn packet_loss_probability(&self, snr_db: f64) -> f64 {
        outage_probability(db_to_linear(snr_db), self.threshold_linear, self.config.snr.nakagami_m)
    }

    /// The first slot: every process drawn from its stationary law, plus the slot's fading and
    /// latency draws. The stationary laws are those of continuous-time processes, so they do not
    /// depend on the slot length (`_slot_s` is kept for callers that pass it).
    pub fn initial_state(&self, _slot_s: f64, rngs: &mut LinkRngs<'_>) -> LinkState {
        let rate = match &self.rate {
            RateModel::Process(p) => p.initial_state(&mut *rngs.bandwidth),
            RateModel::Shannon { .. } => RateState::Stateless,
        };
        let snr = self.snr.initial_state(&mut *rngs.snr);
        let snr_db = self.snr.snr_db(&snr);
        let process_rate = match &self.rate {
            RateModel::Process(p) => p.rate_bps(&rate),
            RateModel::Shannon { .. } => 0.0,
        };
        let slot = self.realise(process_rate, snr_db, rngs);
        LinkState { rate, snr, slot }
    }

    /// A fresh residual dwell of the rate regime, if the rate has one.
    pub fn redraw_residual(&self, state: &mut LinkState, rngs: &mut LinkRngs<'_>) {
        if let RateModel::Process(p) = &self.rate {
            p.redraw_residual(&mut state.rate, &mut *rngs.bandwidth);
        }
    }

    /// Moves every process to the next slot and returns (and stores in `state.slot`) what the
    /// link offers in it. Draws: bandwidth (rate process only), one SNR normal, one fading gamma,
    /// one latency uniform. Allocation-free.
    pub fn advance(&self, state: &mut LinkState, slot_s: f64, rngs: &mut LinkRngs<'_>) -> LinkSlot {
        let process_rate = match &self.rate {
            RateModel::Process(p) => p.advance(&mut state.rate, slot_s, &mut *rngs.bandwidth),
            RateModel::Shannon { .. } => 0.0,
        };
        let snr_db = self.snr.advance(&mut state.snr, slot_s, &mut *rngs.snr);
        state.slot = self.realise(process_rate, snr_db, rngs);
        state.slot
    }

    #[inline]
    fn realise(&self, process_rate_bps: f64, snr_db: f64, rngs: &mut LinkRngs<'_>) -> LinkSlot {
        let fading_gain = self.fading.sample(&mut *rngs.fading);
        let one_way_s = self.config.latency.sample_one_way_s(&mut *rngs.latency);
        let snr_linear = db_to_linear(snr_db);
        let rate_bps = match &self.rate {
            RateModel::Process(_) => process_rate_bps,
            RateModel::Shannon { bandwidth_hz } => shannon_rate_bps(*bandwidth_hz, snr_linear * fading_gain),
        };
        let packet_loss_probability = outage_probability(snr_linear, self.threshold_linear, self.config.snr.nakagami_m);
        LinkSlot { rate_bps, snr_db, fading_gain, one_way_s, packet_loss_probability }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn rng(seed: u64) -> StreamRng {
        StreamRng::seed_from_u64(seed)
    }

    #[test]
    fn db_conversions_round_trip() {
        assert!((db_to_linear(10.0) - 10.0).abs() < 1e-12);
        assert!((db_to_linear(-3.0) - 0.501_187_233_627_272_3).abs() < 1e-12);
        assert!((linear_to_db(100.0) - 20.0).abs() < 1e-12);
        for db in [-20.0, -3.3, 0.0, 7.5, 42.0] {
            assert!((linear_to_db(db_to_linear(db)) - db).abs() < 1e-12);
        }
    }

    #[test]
    fn rayleigh_outage_matches_closed_form() {
        // m = 1: P_out = 1 − exp(−γ_th/γ̄), computed as −expm1 for accuracy at small ratios.
        for (mean, th) in [(10.0f64, 1.0f64), (1.0, 1.0), (100.0, 3.16), (0.5, 2.0), (1e4, 1.0)] {
            let want = -(-th / mean).exp_m1();
            let got = outage_probability(mean, th, 1.0);
            assert!((got - want).abs() <= 1e-12 * want.max(1e-300) + 1e-15, "{mean},{th}");
        }
        // Hand value: γ̄ = 10 dB, γ_th = 0 dB → 1 − e^{−0.1} = 0.095162581964040...
        let got = outage_probability(db_to_linear(10.0), db_to_linear(0.0), 1.0);
        assert!((got - 0.095_162_581_964_040_43).abs() < 1e-13);
    }

    #[test]
    fn nakagami_outage_matches_sampled_frequency() {
        // Each estimate is a binomial proportion over N = 400 000 draws, whose standard deviation
        // is sqrt(P(1 − P)/N) <= 0.5/sqrt(N) ≈ 7.9e-4. We allow 5 standard deviations of the
        // true P (plus 1e-12 for P ≈ 0): a correct implementation fails this with probability
        // ≈ 6e-7 per comparison.
        const N: usize = 400_000;
        for (seed, m) in [(1u64, 0.5), (2, 2.0), (3, 5.0)] {
            let sampler = FadingSampler::new(m).unwrap();
            let mut r = rng(seed);
            let gains: Vec<f64> = (0..N).map(|_| sampler.sample(&mut r)).collect();
            for ratio in [0.05, 0.3, 1.0, 2.0] {
                // γ_th/γ̄ = ratio; outage when g < ratio.
                let freq = gains.iter().filter(|&&g| g < ratio).count() as f64 / N as f64;
                let p = outage_probability(1.0, ratio, m);
                let sd = (p * (1.0 - p) / N as f64).sqrt();
                assert!((freq - p).abs() <= 5.0 * sd + 1e-12, "m={m} ratio={ratio}: {freq} vs {p}");
            }
        }
    }

    #[test]
    fn outage_limits_and_monotonicity() {
        for m in [0.5, 1.0, 3.0] {
            let mut prev = 0.0;
            for i in 1..60 {
                let th = 0.05 * i as f64;
                let p = outage_probability(4.0, th, m);
                assert!(p >= prev && (0.0..=1.0).contains(&p), "monotone in γ_th");
                prev = p;
            }
            let far = outage_probability(db_to_linear(80.0), 1.0, m);
            assert!((0.0..1e-3).contains(&far), "γ̄ → ∞ drives outage to 0: {far}");
            assert!(outage_probability(db_to_linear(200.0), 1.0, m) < 1e-10);
            assert_eq!(outage_probability(f64::INFINITY, 1.0, m), 0.0);
            assert_eq!(outage_probability(0.0, 1.0, m), 1.0);
            assert_eq!(outage_probability(2.0, 0.0, m), 0.0);
        }
        // m → ∞ is no fading: a step at γ̄ = γ_th.
        assert_eq!(outage_probability(2.0, 1.0, f64::INFINITY), 0.0);
        assert_eq!(outage_probability(0.5, 1.0, f64::INFINITY), 1.0);
        assert!(outage_probability(2.0, 1.0, 0.0).is_nan());
        // Milder fading (larger m) means fewer outages above the threshold: γ̄ = 10·γ_th.
        assert!(outage_probability(10.0, 1.0, 4.0) < outage_probability(10.0, 1.0, 1.0));
    }

    #[test]
    fn power_gain_has_unit_mean_and_variance_one_over_m() {
        // Gamma(m, 1/m): mean 1, variance 1/m, 4th central moment μ4 = 3(m+2)/m³ (Gamma shape
        // k, scale θ: μ4 = 3k(k+2)θ⁴). Over N draws the sample mean has sd sqrt(1/(mN)) and the
        // sample variance sd ≈ sqrt((μ4 − σ⁴)/N); we allow 5 of each.
        const N: usize = 200_000;
        for (seed, m) in [(10u64, 0.5), (11, 1.0), (12, 3.0)] {
            let mut r = rng(seed);
            let xs: Vec<f64> = (0..N).map(|_| sample_power_gain(&mut r, m)).collect();
            let mean = xs.iter().sum::<f64>() / N as f64;
            let var = xs.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / (N - 1) as f64;
            let sd_mean = (1.0 / (m * N as f64)).sqrt();
            let mu4 = 3.0 * (m + 2.0) / (m * m * m);
            let sd_var = ((mu4 - 1.0 / (m * m)) / N as f64).sqrt();
            assert!((mean - 1.0).abs() < 5.0 * sd_mean, "m={m}: mean {mean}");
            assert!((var - 1.0 / m).abs() < 5.0 * sd_var, "m={m}: var {var}");
        }
        assert!(sample_power_gain(&mut rng(0), 0.0).is_nan());
        assert!(FadingSampler::new(0.3).is_err());
    }

    #[test]
    fn shannon_rate_by_hand() {
        // W = 1 MHz, SNR = 3 → 1e6·log2(4) = 2e6; SNR = 15 → 4e6; SNR = 0 → 0.
        assert!((shannon_rate_bps(1e6, 3.0) - 2e6).abs() < 1e-6);
        assert!((shannon_rate_bps(1e6, 15.0) - 4e6).abs() < 1e-6);
        assert_eq!(shannon_rate_bps(20e6, 0.0), 0.0);
        // 20 MHz at 20 dB: 20e6·log2(101) = 133.16 Mbit/s.
        assert!((shannon_rate_bps(20e6, 100.0) - 20e6 * 101f64.log2()).abs() < 1e-3);
    }

    fn regimes_config() -> RegimesConfig {
        RegimesConfig::cellular_3g_lte_5g()
    }

    fn link_config(rate: RateModelConfig) -> LinkConfig {
        LinkConfig {
            rate,
            snr: SnrConfig { mean_db: 15.0, ar_coefficient_per_s: 0.9, sigma_db: 3.0, nakagami_m: 1.0 },
            latency: LatencyConfig { one_way_s: 0.02, jitter_s: 0.01 },
            transport: TransportConfig {
                mode: TransportMode::Reliable,
                packet_bytes: 1500,
                packet_loss_threshold_db: 5.0,
            },
        }
    }

    fn regime_of(state: &RateState) -> usize {
        match state {
            RateState::Regimes { regime, .. } => regime.regime,
            other => panic!("not a regimes state: {other:?}"),
        }
    }

    fn log_deviation_of(state: &RateState) -> f64 {
        match state {
            RateState::Regimes { log_deviation, .. } => *log_deviation,
            other => panic!("not a regimes state: {other:?}"),
        }
    }

    #[test]
    fn regime_process_is_stationary_and_clamped() {
        // Stationary regime law π_i ∝ mean_dwell_s,i: the preset's equal dwell times (60 s) give
        // π = 1/3 each. Over N independent stationary starts the count in each regime is
        // binomial (sd sqrt(π(1−π)/N)); checked at slot 0 and after 50 slots, 5 sd.
        let process = RateProcess::new(&RateProcessConfig::Regimes(regimes_config()), None).unwrap();
        let c = regimes_config();
        const N: usize = 30_000;
        let mut counts0 = [0usize; 3];
        let mut counts50 = [0usize; 3];
        let mut log_devs = Vec::with_capacity(N);
        let mut r = rng(5);
        for _ in 0..N {
            let mut s = process.initial_state(&mut r);
            counts0[regime_of(&s)] += 1;
            for _ in 0..50 {
                let bps = process.advance(&mut s, 1.0, &mut r);
                let reg = &c.regimes[regime_of(&s)];
                assert!(bps >= reg.min_bps && bps <= reg.max_bps);
            }
            counts50[regime_of(&s)] += 1;
            log_devs.push(log_deviation_of(&s));
        }
        let sd = (1.0 / 3.0 * (2.0 / 3.0) / N as f64).sqrt();
        for i in 0..3 {
            assert!((counts0[i] as f64 / N as f64 - 1.0 / 3.0).abs() < 5.0 * sd, "{counts0:?}");
            assert!((counts50[i] as f64 / N as f64 - 1.0 / 3.0).abs() < 5.0 * sd, "{counts50:?}");
        }
        // The log-deviation stays N(0, σ²): sample variance within 5 sd (sd of s² for a normal
        // is σ²·sqrt(2/(N−1))).
        let var = log_devs.iter().map(|x| x * x).sum::<f64>() / N as f64;
        let s2 = c.log_sigma * c.log_sigma;
        assert!((var - s2).abs() < 5.0 * s2 * (2.0 / (N as f64 - 1.0)).sqrt(), "var {var}");
    }

    #[test]
    fn regime_transition_law_is_exact_at_any_slot_length() {
        // Three regimes of equal dwell d = 60 s with uniform jumps: the generator is
        // Q = (J/2 − 3I/2)/d (J the all-ones matrix), with eigenvalues 0 and −3/(2d) (twice), so
        // P_00(t) = 1/3 + (2/3)·e^{−3t/(2d)} and P_01(t) = 1/3 − (1/3)·e^{−3t/(2d)}; at t = 30 s
        // that is 0.648244 and 0.175878. A stationary start conditioned on regime 0 has an
        // Exp(60 s) residual dwell (memorylessness), so N independent 30 s runs give binomial
        // counts (sd sqrt(P(1−P)/N) <= 3.4e-3 for N = 20 000); 5 sd. The 30 s slot crosses
        // several switches in one step (a per-slot leave probability would give
        // P_00 = 1/3 + (2/3)(1 − 1.5·(1 − e^{−0.5})) = 0.607, 12 sd off).
        let process = RateProcess::new(&RateProcessConfig::Regimes(regimes_config()), None).unwrap();
        let decay = (-0.75f64).exp();
        let (p00, p01) = (1.0 / 3.0 + 2.0 / 3.0 * decay, 1.0 / 3.0 - decay / 3.0);
        assert!((p00 - 0.648_244).abs() < 1e-6 && (p01 - 0.175_878).abs() < 1e-6);
        const N: usize = 20_000;
        for (seed, slot_s, steps) in [(13u64, 0.25, 120), (14, 1.0, 30), (15, 30.0, 1)] {
            let mut r = rng(seed);
            let mut counts = [0usize; 3];
            for _ in 0..N {
                let mut s = process.initial_state(&mut r);
                while regime_of(&s) != 0 {
                    s = process.initial_state(&mut r);
                }
                for _ in 0..steps {
                    process.advance(&mut s, slot_s, &mut r);
                }
                counts[regime_of(&s)] += 1;
            }
            for (count, p) in [(counts[0], p00), (counts[1], p01), (counts[2], p01)] {
                let sd = (p * (1.0 - p) / N as f64).sqrt();
                assert!((count as f64 / N as f64 - p).abs() < 5.0 * sd, "slot {slot_s}: {counts:?}");
            }
        }
    }

    #[test]
    fn stationary_regime_law_is_proportional_to_the_dwell_times() {
        // Dwells 10, 30 and 60 s: π = (0.1, 0.3, 0.6). N independent stationary starts give
        // binomial counts (sd sqrt(π(1−π)/N)), at the start and after 20 s in 0.25 s slots (the
        // chain preserves its stationary law); 5 sd. (The long-run statistics of one run, at
        // slot lengths 1 and 0.25 s, are checked against the Gilbert–Elliott chain in
        // failure.rs.)
        let mut c = regimes_config();
        for (regime, dwell_s) in c.regimes.iter_mut().zip([10.0, 30.0, 60.0]) {
            regime.mean_dwell_s = dwell_s;
        }
        let process = RateProcess::new(&RateProcessConfig::Regimes(c), None).unwrap();
        let pi = [0.1, 0.3, 0.6];
        const N: usize = 20_000;
        let mut r = rng(6);
        let mut counts0 = [0usize; 3];
        let mut counts20 = [0usize; 3];
        for _ in 0..N {
            let mut s = process.initial_state(&mut r);
            counts0[regime_of(&s)] += 1;
            for _ in 0..80 {
                process.advance(&mut s, 0.25, &mut r);
            }
            counts20[regime_of(&s)] += 1;
        }
        for i in 0..3 {
            let sd = (pi[i] * (1.0 - pi[i]) / N as f64).sqrt();
            assert!((counts0[i] as f64 / N as f64 - pi[i]).abs() < 5.0 * sd, "{counts0:?}");
            assert!((counts20[i] as f64 / N as f64 - pi[i]).abs() < 5.0 * sd, "{counts20:?}");
        }
    }

    #[test]
    fn regime_mean_is_the_unclamped_mean() {
        // One regime with wide clamps: E[R] = mean·E[exp(x − σ²/2)] = mean. Log-normal with
        // σ = 0.3: sd of R = mean·sqrt(e^{σ²} − 1) = 0.307·mean; with φ = 0 per second samples
        // are i.i.d., so the sample mean over N has sd 0.307·mean/sqrt(N).
        let c = RegimesConfig {
            regimes: vec![RegimeConfig {
                name: "wide".into(),
                mean_bps: 10e6,
                min_bps: 1.0,
                max_bps: 1e12,
                mean_dwell_s: 1.0,
            }],
            log_ar_coefficient_per_s: 0.0,
            log_sigma: 0.3,
        };
        let process = RateProcess::new(&RateProcessConfig::Regimes(c), None).unwrap();
        let mut r = rng(7);
        let mut s = process.initial_state(&mut r);
        const N: usize = 100_000;
        let mean = (0..N).map(|_| process.advance(&mut s, 0.5, &mut r)).sum::<f64>() / N as f64;
        let sd = 10e6 * (0.09f64.exp() - 1.0).sqrt() / (N as f64).sqrt();
        assert!((mean - 10e6).abs() < 5.0 * sd, "{mean}");
    }

    /// Sample correlation r = Σxy / sqrt(Σx²·Σy²) of `n` independent zero-mean pairs. For
    /// bivariate normal pairs with correlation ρ its asymptotic sd is (1 − ρ²)/sqrt(n) (Fisher;
    /// knowing the means does not change the first order).
    fn zero_mean_correlation(n: usize, mut pair: impl FnMut() -> (f64, f64)) -> f64 {
        let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
        for _ in 0..n {
            let (x, y) = pair();
            sxy += x * y;
            sxx += x * x;
            syy += y * y;
        }
        sxy / (sxx * syy).sqrt()
    }

    #[test]
    fn ar_coefficient_is_slot_length_independent() {
        // Lag-1 s autocorrelation of the log-deviation equals φ = 0.9 whether we step 1 s or
        // 0.25 s (four steps of φ^0.25), over N independent stationary starts:
        // sd (1 − 0.81)/sqrt(N) = 9.5e-4 for N = 40 000; 5 sd.
        let mut c = regimes_config();
        c.regimes.truncate(1);
        let process = RateProcess::new(&RateProcessConfig::Regimes(c), None).unwrap();
        const N: usize = 40_000;
        for (seed, slot_s, steps) in [(8u64, 1.0, 1), (9, 0.25, 4)] {
            let mut r = rng(seed);
            let rho = zero_mean_correlation(N, || {
                let mut s = process.initial_state(&mut r);
                let x0 = log_deviation_of(&s);
                for _ in 0..steps {
                    process.advance(&mut s, slot_s, &mut r);
                }
                (x0, log_deviation_of(&s))
            });
            assert!((rho - 0.9).abs() < 5.0 * 0.19 / (N as f64).sqrt(), "slot {slot_s}: {rho}");
        }
    }

    #[test]
    fn snr_lag_one_second_autocorrelation_is_the_per_second_coefficient() {
        // ar_coefficient_per_s = 0.7: the lag-1 s autocorrelation of the mean SNR is 0.7 at
        // slot 1 s and at slot 0.25 s (four steps of 0.7^0.25 = 0.9147; a per-slot reading of
        // the coefficient would give 0.7^4 = 0.24). Over N independent stationary starts the
        // sd is (1 − 0.49)/sqrt(N) = 2.55e-3 for N = 40 000; 5 sd.
        let config = SnrConfig { mean_db: 10.0, ar_coefficient_per_s: 0.7, sigma_db: 4.0, nakagami_m: 1.0 };
        let process = SnrProcess::new(&config).unwrap();
        const N: usize = 40_000;
        for (seed, slot_s, steps) in [(16u64, 1.0, 1), (17, 0.25, 4)] {
            let mut r = rng(seed);
            let rho = zero_mean_correlation(N, || {
                let mut s = process.initial_state(&mut r);
                let x0 = process.snr_db(&s) - 10.0;
                let mut x1 = x0;
                for _ in 0..steps {
                    x1 = process.advance(&mut s, slot_s, &mut r) - 10.0;
                }
                (x0, x1)
            });
            assert!((rho - 0.7).abs() < 5.0 * 0.51 / (N as f64).sqrt(), "slot {slot_s}: {rho}");
        }
    }

    fn csv_trace() -> (TraceRateConfig, TimeSeries) {
        let cfg = TraceRateConfig {
            path: "traces/lte.csv".into(),
            format: TraceFormat::Csv,
            loop_trace: true,
            scale: 2.0,
            bin_s: DEFAULT_TRACE_BIN_S,
            packet_bytes: DEFAULT_PACKET_BYTES,
            random_start: false,
        };
        let trace = cfg.parse("time_s,bandwidth_bps\n0,1e6\n1,2e6\n2,3e6\n").unwrap();
        (cfg, trace)
    }

    #[test]
    fn trace_process_replays_scaled_and_loops() {
        let (cfg, trace) = csv_trace();
        let process = RateProcess::new(&RateProcessConfig::Trace(cfg), Some(trace)).unwrap();
        let mut r = rng(9);
        let mut s = process.initial_state(&mut r);
        assert_eq!(process.rate_bps(&s), 2e6);
        let got: Vec<f64> = (0..7).map(|_| process.advance(&mut s, 1.0, &mut r)).collect();
        // Period 3 s (last row lasts 1 s); scale 2: 4, 6, 2, 4, 6, 2, 4 Mbit/s.
        assert_eq!(got, vec![4e6, 6e6, 2e6, 4e6, 6e6, 2e6, 4e6]);
        let RateState::Trace { time_s, .. } = s else { panic!() };
        assert!(time_s < 3.0, "time stays inside one pass: {time_s}");
    }

    #[test]
    fn trace_random_start_spreads_over_the_period() {
        let (mut cfg, trace) = csv_trace();
        cfg.random_start = true;
        let process = RateProcess::new(&RateProcessConfig::Trace(cfg), Some(trace)).unwrap();
        let mut r = rng(10);
        let mut seen = [0usize; 3];
        for _ in 0..3000 {
            let s = process.initial_state(&mut r);
            seen[(process.rate_bps(&s) / 2e6) as usize - 1] += 1;
        }
        // Each third of the period is hit with probability 1/3: binomial sd ≈ 25.8 of 1000.
        for n in seen {
            assert!((n as f64 - 1000.0).abs() < 5.0 * 25.8, "{seen:?}");
        }
    }

    #[test]
    fn trace_config_without_trace_is_an_error_naming_the_path() {
        let (cfg, _) = csv_trace();
        let link = link_config(RateModelConfig::Rate { process: RateProcessConfig::Trace(cfg) });
        let e = Link::new(&link, None).unwrap_err();
        assert_eq!(e.field, "rate.process.path");
        assert!(e.value.contains("traces/lte.csv"));
    }

    #[test]
    fn malformed_trace_is_an_error_naming_the_path_and_the_entry() {
        let (cfg, _) = csv_trace();
        let link = link_config(RateModelConfig::Rate { process: RateProcessConfig::Trace(cfg) });
        let bad = TimeSeries { times_s: vec![0.0, 1.0, 0.5], values: vec![1e6; 3], period_s: 3.0 };
        let e = Link::new(&link, Some(bad)).unwrap_err();
        assert_eq!(e.field, "rate.process.path");
        assert!(e.allowed.contains("times_s[2] = 0.5"), "{e}");
    }

    #[test]
    fn trace_parse_errors_carry_the_config_path() {
        let (cfg, _) = csv_trace();
        let e = cfg.parse("time_s,bandwidth_bps\n0,x\n").unwrap_err();
        assert!(e.to_string().starts_with("traces/lte.csv:2:"), "{e}");
        let mm = TraceRateConfig { format: TraceFormat::Mahimahi, scale: 1.0, ..cfg };
        let t = mm.parse("1\n").unwrap();
        assert!((t.values[0] - 12e6).abs() < 1e-6);
    }

    #[test]
    fn snr_process_is_stationary_ar1() {
        // Stationary mean 15 dB, std 3 dB, lag-1 correlation 0.9. Over one run of T steps the
        // sample mean has sd σ·sqrt((1+φ)/((1−φ)T)) = 3·sqrt(19/T); 5 sd.
        let p = SnrProcess::new(&link_config(RateModelConfig::Shannon { bandwidth_hz: 1e6 }).snr).unwrap();
        let mut r = rng(11);
        let mut s = p.initial_state(&mut r);
        const T: usize = 200_000;
        let xs: Vec<f64> = (0..T).map(|_| p.advance(&mut s, 1.0, &mut r)).collect();
        let mean = xs.iter().sum::<f64>() / T as f64;
        assert!((mean - 15.0).abs() < 5.0 * 3.0 * (19.0 / T as f64).sqrt(), "{mean}");
        let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / T as f64;
        // Loose (20%) check of the stationary variance 9 dB².
        assert!((var - 9.0).abs() < 0.2 * 9.0, "{var}");
    }

    #[test]
    fn latency_is_uniform_above_the_base() {
        let c = LatencyConfig { one_way_s: 0.02, jitter_s: 0.01 };
        let mut r = rng(12);
        const N: usize = 100_000;
        let xs: Vec<f64> = (0..N).map(|_| c.sample_one_way_s(&mut r)).collect();
        assert!(xs.iter().all(|&x| (0.02..0.03).contains(&x)));
        // Mean 0.025, sd of U[0, 0.01) is 0.01/sqrt(12); 5 sd of the sample mean.
        let mean = xs.iter().sum::<f64>() / N as f64;
        assert!((mean - 0.025).abs() < 5.0 * 0.01 / (12.0 * N as f64).sqrt());
    }

    #[test]
    fn reliable_transfer_by_hand() {
        // One packet (1000 B ≤ 1500 B): E[R] = Σ_k p^k = p/(1−p) = 0.25 for p = 0.2.
        // Serialisation 8000 bit / 1 Mbit/s = 8 ms, / (1 − p) = 10 ms.
        // E[T] = 10 ms one-way + 10 ms + 2·10 ms·0.25 = 25 ms.
        let t = reliable_transfer_time_s(1000.0, 1e6, 0.01, 0.2, 1500);
        assert!((t - 0.025).abs() < 1e-12, "{t}");
        // Two packets, p = 0.5: E[R] = Σ_k 1 − (1 − 2^{−k})² = Σ_k (2·2^{−k} − 4^{−k}) = 2 − 1/3.
        assert!((expected_retransmission_rounds(2.0, 0.5) - 5.0 / 3.0).abs() < 1e-12);
        // No loss: one-way plus serialisation.
        let t = reliable_transfer_time_s(3000.0, 1e6, 0.01, 0.0, 1500);
        assert!((t - (0.01 + 0.024)).abs() < 1e-15);
        assert_eq!(reliable_transfer_time_s(3000.0, 1e6, 0.01, 0.0, 1500), lossy_transfer_time_s(3000.0, 1e6, 0.01));
        assert_eq!(reliable_transfer_time_s(0.0, 1e6, 0.01, 0.5, 1500), 0.0);
        assert!(reliable_transfer_time_s(10.0, 1e6, 0.01, 1.0, 1500).is_infinite());
        assert!(reliable_transfer_time_s(10.0, 0.0, 0.01, 0.1, 1500).is_infinite());
        assert!(lossy_transfer_time_s(10.0, 0.0, 0.01).is_infinite());
    }

    /// Simulates the round-based ARQ of `reliable_transfer_time_s` packet by packet.
    fn simulate_reliable(bytes: f64, rate: f64, one_way: f64, p: f64, pkt: u32, r: &mut StreamRng) -> f64 {
        let n = (bytes / pkt as f64).ceil() as usize;
        let sizes: Vec<f64> = (0..n).map(|i| (bytes - (i as f64) * pkt as f64).min(pkt as f64)).collect();
        let mut pending: Vec<f64> = sizes;
        let mut t = one_way;
        let mut first = true;
        loop {
            if !first {
                t += 2.0 * one_way;
            }
            first = false;
            t += pending.iter().sum::<f64>() * 8.0 / rate;
            pending.retain(|_| r.random::<f64>() < p);
            if pending.is_empty() {
                return t;
            }
        }
    }

    #[test]
    fn reliable_transfer_matches_monte_carlo() {
        // N independent transfers; the sample mean's sd is s/sqrt(N) with s the sample sd;
        // tolerance 5 sd.
        const N: usize = 100_000;
        for (seed, bytes, p) in [(20u64, 15_000.0, 0.1), (21, 8_192.0, 0.3), (22, 40_000.0, 0.6)] {
            let mut r = rng(seed);
            let xs: Vec<f64> = (0..N).map(|_| simulate_reliable(bytes, 5e6, 0.02, p, 1500, &mut r)).collect();
            let mean = xs.iter().sum::<f64>() / N as f64;
            let s = (xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (N - 1) as f64).sqrt();
            let want = reliable_transfer_time_s(bytes, 5e6, 0.02, p, 1500);
            assert!((mean - want).abs() < 5.0 * s / (N as f64).sqrt(), "p={p}: {mean} vs {want}");
        }
    }

    #[test]
    fn retransmission_rounds_match_the_brute_force_sum() {
        // Brute-force sum of 1 − (1 − p^k)^n to convergence vs the bounded-time evaluation,
        // on both sides of the series/integral switch (p = e^{−0.2} ≈ 0.8187). For n = 1 the
        // exact value is p/(1 − p) (99 at p = 0.99).
        assert!((expected_retransmission_rounds(1.0, 0.99) - 99.0).abs() < 1e-6 * 99.0);
        let cases = [
            (1.0f64, 0.9f64),
            (6.0, 0.95),
            (700.0, 0.97),
            (20.0, 0.99),
            (1900.0, 0.999),
            (2.0, 0.82),
            (50.0, 0.85),
            (3.0, 0.6),
        ];
        for (n, p) in cases {
            let mut exact = 0.0;
            let mut p_k = 1.0f64;
            for _ in 0..10_000_000 {
                p_k *= p;
                let term = -(n * (-p_k).ln_1p()).exp_m1();
                exact += term;
                if term < 1e-15 {
                    break;
                }
            }
            let got = expected_retransmission_rounds(n, p);
            // Documented accuracy: ~1e-5 relative just past the switch (λ = 0.2, the O(λ³)
            // Euler–Maclaurin remainder), exact elsewhere.
            assert!((got - exact).abs() < 2e-5 * exact, "n={n} p={p}: {got} vs {exact}");
        }
        // For moderate p it is exact.
        for (n, p) in [(1.0f64, 0.3f64), (10.0, 0.5), (1000.0, 0.2), (3.0, 0.8)] {
            let mut exact = 0.0;
            let mut p_k = 1.0f64;
            for _ in 0..100_000 {
                p_k *= p;
                exact += -(n * (-p_k).ln_1p()).exp_m1();
            }
            let got = expected_retransmission_rounds(n, p);
            assert!((got - exact).abs() < 1e-10 * exact, "n={n} p={p}: {got} vs {exact}");
        }
    }

    #[test]
    fn transport_mode_dispatch_and_erasure() {
        let mut t = link_config(RateModelConfig::Shannon { bandwidth_hz: 1e6 }).transport;
        assert_eq!(t.erasure_rate(0.2), 0.0);
        assert!((t.transfer_time_s(1000.0, 1e6, 0.01, 0.2) - 0.025).abs() < 1e-12);
        t.mode = TransportMode::Lossy;
        assert_eq!(t.erasure_rate(0.2), 0.2);
        assert!((t.transfer_time_s(1000.0, 1e6, 0.01, 0.2) - 0.018).abs() < 1e-12);
    }

    #[test]
    fn link_streams_are_independent_and_reproducible() {
        let cfg = link_config(RateModelConfig::Rate { process: RateProcessConfig::Regimes(regimes_config()) });
        let link = Link::new(&cfg, None).unwrap();
        let run = |seed: u64, burn_latency: bool| {
            let mut streams = LinkStreams::new(seed);
            if burn_latency {
                // Extra draws on the latency stream must not change bandwidth/SNR/fading.
                for _ in 0..17 {
                    streams.latency.random::<u64>();
                }
            }
            let mut s = link.initial_state(1.0, &mut streams.rngs());
            let mut out = vec![s.slot];
            for _ in 0..50 {
                out.push(link.advance(&mut s, 1.0, &mut streams.rngs()));
            }
            out
        };
        let a = run(3, false);
        assert_eq!(a, run(3, false));
        let b = run(3, true);
        for (x, y) in a.iter().zip(&b) {
            assert_eq!((x.rate_bps, x.snr_db, x.fading_gain), (y.rate_bps, y.snr_db, y.fading_gain));
        }
        assert!(a.iter().zip(&b).any(|(x, y)| x.one_way_s != y.one_way_s));
        let slot = a[10];
        let p = outage_probability(db_to_linear(slot.snr_db), db_to_linear(5.0), 1.0);
        assert_eq!(slot.packet_loss_probability, p);
    }

    #[test]
    fn shannon_link_uses_the_slot_fading() {
        let cfg = link_config(RateModelConfig::Shannon { bandwidth_hz: 10e6 });
        let link = Link::new(&cfg, None).unwrap();
        let mut streams = LinkStreams::new(4);
        let mut s = link.initial_state(1.0, &mut streams.rngs());
        for _ in 0..20 {
            let slot = link.advance(&mut s, 1.0, &mut streams.rngs());
            let want = shannon_rate_bps(10e6, db_to_linear(slot.snr_db) * slot.fading_gain);
            assert_eq!(slot.rate_bps, want);
            assert_eq!(s.slot, slot);
        }
        assert_eq!(s.rate, RateState::Stateless);
    }

    #[test]
    fn link_config_parses_from_toml() {
        let text = r#"
            [rate]
            model = "rate"
            [rate.process]
            kind = "regimes"
            log_ar_coefficient_per_s = 0.9
            log_sigma = 0.3
            [[rate.process.regimes]]
            name = "lte"
            mean_bps = 20e6
            min_bps = 5e6
            max_bps = 50e6
            mean_dwell_s = 60.0
            [snr]
            mean_db = 15.0
            ar_coefficient_per_s = 0.9
            sigma_db = 3.0
            nakagami_m = 1.0
            [latency]
            one_way_s = 0.02
            jitter_s = 0.01
            [transport]
            mode = "reliable"
            packet_loss_threshold_db = 5.0
        "#;
        let cfg: LinkConfig = toml::from_str(text).unwrap();
        assert_eq!(cfg.transport.packet_bytes, DEFAULT_PACKET_BYTES);
        assert!(cfg.validate().is_ok());
        let trace = r#"
            model = "rate"
            [process]
            kind = "trace"
            path = "traces/x.up"
            format = "mahimahi"
        "#;
        let rate: RateModelConfig = toml::from_str(trace).unwrap();
        let t = rate.trace().unwrap();
        assert_eq!((t.loop_trace, t.scale, t.random_start), (true, 1.0, false));
        let shannon: RateModelConfig = toml::from_str("model = \"shannon\"\nbandwidth_hz = 2e7\n").unwrap();
        assert_eq!(shannon, RateModelConfig::Shannon { bandwidth_hz: 2e7 });
        // Unknown fields are rejected at every level.
        assert!(toml::from_str::<RateModelConfig>("model = \"shannon\"\nbandwidth_hz = 1\nx = 1\n").is_err());
        assert!(
            toml::from_str::<RateModelConfig>(
                "model = \"rate\"\n[process]\nkind = \"constant\"\nbandwidth_bps = 1\nbogus = 2\n"
            )
            .is_err()
        );
        assert!(toml::from_str::<RateModelConfig>(&format!("{trace}\nbogus = 1\n")).is_err());
        let state = RateState::Trace { time_s: 1.5, cursor: TraceCursor { index: 2 } };
        let json = serde_json::to_string(&state).unwrap();
        assert_eq!(serde_json::from_str::<RateState>(&json).unwrap(), state);
        let state = RateState::Regimes {
            regime: RegimeState { regime: 2, dwell_left_s: 12.5, elapsed_s: 0.0 },
            log_deviation: -0.1,
        };
        let json = serde_json::to_string(&state).unwrap();
        assert_eq!(serde_json::from_str::<RateState>(&json).unwrap(), state);
    }

    #[test]
    fn invalid_link_fields_name_their_path() {
        let base = link_config(RateModelConfig::Rate { process: RateProcessConfig::Regimes(regimes_config()) });
        let field = |c: &LinkConfig| c.validate().unwrap_err().field;

        let mut c = base.clone();
        c.rate = RateModelConfig::Rate { process: RateProcessConfig::Constant { bandwidth_bps: -1.0 } };
        assert_eq!(field(&c), "rate.process.bandwidth_bps");

        c.rate = RateModelConfig::Shannon { bandwidth_hz: 0.0 };
        assert_eq!(field(&c), "rate.bandwidth_hz");

        let with_regimes = |f: &dyn Fn(&mut RegimesConfig)| {
            let mut r = regimes_config();
            f(&mut r);
            let mut c = base.clone();
            c.rate = RateModelConfig::Rate { process: RateProcessConfig::Regimes(r) };
            c
        };
        assert_eq!(field(&with_regimes(&|r| r.regimes.clear())), "rate.process.regimes");
        assert_eq!(field(&with_regimes(&|r| r.regimes[1].min_bps = 60e6)), "rate.process.regimes[1].min_bps");
        assert_eq!(field(&with_regimes(&|r| r.regimes[2].mean_bps = 10e6)), "rate.process.regimes[2].mean_bps");
        assert_eq!(field(&with_regimes(&|r| r.regimes[0].mean_dwell_s = 0.0)), "rate.process.regimes[0].mean_dwell_s");
        assert_eq!(field(&with_regimes(&|r| r.regimes[0].name.clear())), "rate.process.regimes[0].name");
        assert_eq!(
            field(&with_regimes(&|r| r.log_ar_coefficient_per_s = 1.0)),
            "rate.process.log_ar_coefficient_per_s"
        );
        assert_eq!(field(&with_regimes(&|r| r.log_sigma = -0.1)), "rate.process.log_sigma");

        let (trace, _) = csv_trace();
        let mut c = base.clone();
        c.rate = RateModelConfig::Rate {
            process: RateProcessConfig::Trace(TraceRateConfig { scale: 0.0, ..trace.clone() }),
        };
        assert_eq!(field(&c), "rate.process.scale");
        c.rate =
            RateModelConfig::Rate { process: RateProcessConfig::Trace(TraceRateConfig { path: " ".into(), ..trace }) };
        assert_eq!(field(&c), "rate.process.path");

        let mut c = base.clone();
        c.snr.nakagami_m = 0.3;
        let e = c.validate().unwrap_err();
        assert_eq!(e.field, "snr.nakagami_m");
        assert!(e.to_string().starts_with("snr.nakagami_m = 0.3: must be a finite number >= 0.5"));
        let mut c = base.clone();
        c.snr.ar_coefficient_per_s = -0.1;
        assert_eq!(field(&c), "snr.ar_coefficient_per_s");
        let mut c = base.clone();
        c.snr.sigma_db = f64::NAN;
        assert_eq!(field(&c), "snr.sigma_db");
        let mut c = base.clone();
        c.snr.mean_db = f64::INFINITY;
        assert_eq!(field(&c), "snr.mean_db");
        let mut c = base.clone();
        c.latency.jitter_s = -0.001;
        assert_eq!(field(&c), "latency.jitter_s");
        let mut c = base.clone();
        c.latency.one_way_s = -1.0;
        assert_eq!(field(&c), "latency.one_way_s");
        let mut c = base.clone();
        c.transport.packet_bytes = 0;
        assert_eq!(field(&c), "transport.packet_bytes");
        let mut c = base.clone();
        c.transport.packet_loss_threshold_db = f64::NAN;
        assert_eq!(field(&c), "transport.packet_loss_threshold_db");
        // Link::new reports the same paths.
        let mut c = base;
        c.snr.nakagami_m = 0.2;
        assert_eq!(Link::new(&c, None).unwrap_err().field, "snr.nakagami_m");
    }
}
