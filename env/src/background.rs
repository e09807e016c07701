//! Background load on the two compute sides (system-model.md §3).
//!
//! The cloud is shared: a Markov-modulated utilisation ρ(t) of other tenants' work (e.g. a quiet
//! and a busy regime) on a continuous-batching LLM server (vLLM, TensorRT-LLM, NIM). Such a server
//! charges load where the measurements put it:
//! - **time to first token** grows steeply with load: a new request queues for admission to the
//!   running batch. We use the M/M/1 waiting time `W = ttft_queue_scale_s·ρ/(1 − ρ)` once per
//!   request. NVIDIA's NIM benchmarks (docs.nvidia.com/nim/benchmarking/llm, NIM 1.8.0) show the
//!   shape: Llama-3.1-8B TTFT 10 ms at concurrency 1, 120 ms at 100, 606 ms at 250; Llama-3.3-70B
//!   on 2×H100 407 ms at 1, 835 ms at 50, 8.0 s at 100 and 88.6 s at 250 once throughput saturates;
//! - **time per output token** grows mildly: every token of a request already in the batch waits
//!   one batched iteration, which lengthens with the batch: `1 + tpot_inflation·ρ`. The same
//!   tables: ITL 4.6 → 16.1 ms (3.5×) for the 8B model from concurrency 1 to 250, 18.6 → 93 ms
//!   (5×) for the 70B model at saturation; `tpot_inflation = 2.5` puts the 8B ratio at ρ → 1;
//! - a visit of a split plan (the cloud part of one token) waits, with probability ρ, the residual
//!   of the current iteration (half a `queue_quantum_s` on average) before joining it;
//! - when overloaded, an API rejects new requests (HTTP 429 rate limit, Anthropic's 529
//!   `overloaded_error`): each regime has a rejection probability per admission attempt.
//!
//! Our own requests join the batch like every other tenant's: they do not queue behind each other
//! in the cloud. Cloud GPU time is billed.
//!
//! The edge may also be loaded by other apps: Markov-modulated fractions of its compute and
//! memory stay available to the model (part of the state, observed, and it changes the masks).

use crate::regime::{RegimeChain, RegimeState, check_regime_list};
use crate::validate::{InvalidField, Validation, in_range, non_negative};
use rand::Rng;
use rand_distr::{Distribution, StandardNormal};
use serde::{Deserialize, Serialize};

/// Utilisation is capped below 1 so the cloud never stops serving us entirely.
pub const DEFAULT_MAX_CLOUD_LOAD: f64 = 0.95;
/// One iteration of a continuous-batching LLM server on an A100 (≈ 20 ms, assumption).
pub const DEFAULT_QUEUE_QUANTUM_S: f64 = 0.02;
/// M/M/1 admission-wait scale (a mean service time of the replica, s): W = scale·ρ/(1 − ρ), so
/// 0.5 s at ρ = 0.5 and 4.5 s at ρ = 0.9 (assumption between the NIM 8B and 70B tables above).
pub const DEFAULT_TTFT_QUEUE_SCALE_S: f64 = 0.5;
/// Per-token slowdown at full load (NIM 1.8.0 Llama-3.1-8B: ITL 16.14 / 4.63 ms = 3.5× at
/// concurrency 250, i.e. 1 + 2.5).
pub const DEFAULT_TPOT_INFLATION: f64 = 2.5;
/// On-demand A100 80GB price ≈ 2 USD per GPU-hour (2024–2025 public cloud list prices range
/// about 1.3–4 USD; assumption).
pub const DEFAULT_COST_PER_GPU_HOUR_USD: f64 = 2.0;

fn default_levels() -> Vec<f64> {
    vec![0.0]
}
fn default_dwell() -> Vec<f64> {
    vec![3600.0]
}
fn default_max_load() -> f64 {
    DEFAULT_MAX_CLOUD_LOAD
}
fn default_quantum() -> f64 {
    DEFAULT_QUEUE_QUANTUM_S
}
fn default_cost() -> f64 {
    DEFAULT_COST_PER_GPU_HOUR_USD
}
fn default_ttft_scale() -> f64 {
    DEFAULT_TTFT_QUEUE_SCALE_S
}
fn default_tpot_inflation() -> f64 {
    DEFAULT_TPOT_INFLATION
}
fn default_ones() -> Vec<f64> {
    vec![1.0]
}

/// The shared cloud's background load and pricing.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CloudLoadConfig {
    /// Background utilisation of each regime, in [0, max_load].
    #[serde(default = "default_levels")]
    pub levels: Vec<f64>,
    #[serde(default = "default_dwell")]
    pub mean_dwell_s: Vec<f64>,
    /// Slot-to-slot fluctuation: ρ = level + N(0, jitter_sd²), clamped to [0, max_load].
    #[serde(default)]
    pub jitter_sd: f64,
    #[serde(default = "default_max_load")]
    pub max_load: f64,
    #[serde(default = "default_quantum")]
    pub queue_quantum_s: f64,
    #[serde(default = "default_cost")]
    pub cost_per_gpu_hour_usd: f64,
    /// Admission wait W = ttft_queue_scale_s·ρ/(1 − ρ) once per request (s).
    #[serde(default = "default_ttft_scale")]
    pub ttft_queue_scale_s: f64,
    /// Per-token time factor 1 + tpot_inflation·ρ of cloud compute.
    #[serde(default = "default_tpot_inflation")]
    pub tpot_inflation: f64,
    /// Probability that the API rejects an admission attempt (HTTP 429/529), per regime; empty:
    /// never.
    #[serde(default)]
    pub reject_probability: Vec<f64>,
}

impl Default for CloudLoadConfig {
    fn default() -> Self {
        Self {
            levels: default_levels(),
            mean_dwell_s: default_dwell(),
            jitter_sd: 0.0,
            max_load: DEFAULT_MAX_CLOUD_LOAD,
            queue_quantum_s: DEFAULT_QUEUE_QUANTUM_S,
            cost_per_gpu_hour_usd: DEFAULT_COST_PER_GPU_HOUR_USD,
            ttft_queue_scale_s: DEFAULT_TTFT_QUEUE_SCALE_S,
            tpot_inflation: DEFAULT_TPOT_INFLATION,
            reject_probability: Vec::new(),
        }
    }
}

impl CloudLoadConfig {
    pub fn validate(&self) -> Validation {
        in_range("max_load", self.max_load, 0.0, 0.99, "utilisation cap below 1")?;
        if self.levels.is_empty() {
            return Err(InvalidField::new("levels", "[]", "must list at least one utilisation level"));
        }
        for (k, &l) in self.levels.iter().enumerate() {
            in_range(&format!("levels[{k}]"), l, 0.0, self.max_load, "background utilisation, up to max_load")?;
        }
        check_regime_list("mean_dwell_s", &self.mean_dwell_s, self.levels.len())?;
        RegimeChain::new(&self.mean_dwell_s)?;
        non_negative("jitter_sd", self.jitter_sd, "utilisation standard deviation")?;
        non_negative("queue_quantum_s", self.queue_quantum_s, "seconds")?;
        non_negative("cost_per_gpu_hour_usd", self.cost_per_gpu_hour_usd, "USD per GPU-hour")?;
        in_range("ttft_queue_scale_s", self.ttft_queue_scale_s, 0.0, 3600.0, "seconds (M/M/1 admission-wait scale)")?;
        in_range("tpot_inflation", self.tpot_inflation, 0.0, 100.0, "per-token slowdown at full load")?;
        if !self.reject_probability.is_empty() {
            check_regime_list("reject_probability", &self.reject_probability, self.levels.len())?;
            for (k, &p) in self.reject_probability.iter().enumerate() {
                in_range(&format!("reject_probability[{k}]"), p, 0.0, 1.0, "probability per admission attempt")?;
            }
        }
        Ok(())
    }

    /// Rejection probability of regime `regime`.
    pub fn reject_probability(&self, regime: usize) -> f64 {
        self.reject_probability.get(regime).copied().unwrap_or(0.0)
    }

    /// The largest rejection probability of any regime.
    pub fn max_reject_probability(&self) -> f64 {
        self.reject_probability.iter().copied().fold(0.0, f64::max)
    }

    /// Mean admission wait at load ρ.
    pub fn admission_wait_s(&self, load: f64) -> f64 {
        admission_wait_s(load, self.ttft_queue_scale_s)
    }

    pub fn cost_per_gpu_s_usd(&self) -> f64 {
        self.cost_per_gpu_hour_usd / 3600.0
    }
}

/// Edge background load: the fractions of compute and memory left to the model.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EdgeLoadConfig {
    #[serde(default = "default_ones")]
    pub compute_available: Vec<f64>,
    #[serde(default = "default_ones")]
    pub memory_available: Vec<f64>,
    #[serde(default = "default_dwell")]
    pub mean_dwell_s: Vec<f64>,
}

impl Default for EdgeLoadConfig {
    fn default() -> Self {
        Self { compute_available: default_ones(), memory_available: default_ones(), mean_dwell_s: default_dwell() }
    }
}

impl EdgeLoadConfig {
    pub fn validate(&self) -> Validation {
        let n = self.compute_available.len();
        if n == 0 {
            return Err(InvalidField::new("compute_available", "[]", "must list at least one regime"));
        }
        for (k, &c) in self.compute_available.iter().enumerate() {
            in_range(&format!("compute_available[{k}]"), c, 0.01, 1.0, "fraction of edge compute left to us")?;
        }
        check_regime_list("memory_available", &self.memory_available, n)?;
        for (k, &m) in self.memory_available.iter().enumerate() {
            in_range(&format!("memory_available[{k}]"), m, 0.01, 1.0, "fraction of edge memory left to us")?;
        }
        check_regime_list("mean_dwell_s", &self.mean_dwell_s, n)?;
        RegimeChain::new(&self.mean_dwell_s).map(|_| ())
    }
}

/// Cloud utilisation process.
#[derive(Clone, Debug, PartialEq)]
pub struct CloudLoad {
    config: CloudLoadConfig,
    chain: RegimeChain,
}

impl CloudLoad {
    pub fn new(config: &CloudLoadConfig) -> Result<Self, InvalidField> {
        config.validate()?;
        let chain =
            if config.levels.len() == 1 { RegimeChain::single() } else { RegimeChain::new(&config.mean_dwell_s)? };
        Ok(Self { config: config.clone(), chain })
    }

    pub fn config(&self) -> &CloudLoadConfig {
        &self.config
    }

    pub fn initial_state(&self, rng: &mut impl Rng) -> RegimeState {
        self.chain.initial_state(rng)
    }

    /// A fresh residual dwell ([`RegimeChain::redraw_residual`]).
    pub fn redraw_residual(&self, state: &mut RegimeState, rng: &mut impl Rng) {
        self.chain.redraw_residual(state, rng);
    }

    /// Advances by one slot and returns the slot's utilisation.
    pub fn advance(&self, state: &mut RegimeState, slot_s: f64, rng: &mut impl Rng) -> f64 {
        self.chain.advance(state, slot_s, rng);
        let noise: f64 = if self.config.jitter_sd > 0.0 {
            let z: f64 = StandardNormal.sample(rng);
            z * self.config.jitter_sd
        } else {
            0.0
        };
        (self.config.levels[state.regime] + noise).clamp(0.0, self.config.max_load)
    }

    /// Long-run mean utilisation (before jitter clamping).
    pub fn mean_load(&self) -> f64 {
        self.chain.stationary_mean(&self.config.levels)
    }

    /// Long-run mean rejection probability.
    pub fn mean_reject_probability(&self) -> f64 {
        let p: Vec<f64> = (0..self.config.levels.len()).map(|k| self.config.reject_probability(k)).collect();
        self.chain.stationary_mean(&p)
    }

    /// Rejection probability in the regime `state` is in.
    pub fn reject_probability(&self, state: &RegimeState) -> f64 {
        self.config.reject_probability(state.regime)
    }
}

/// Edge availability process.
#[derive(Clone, Debug, PartialEq)]
pub struct EdgeLoad {
    config: EdgeLoadConfig,
    chain: RegimeChain,
}

/// One slot's edge availability.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct EdgeAvailability {
    pub compute: f64,
    pub memory: f64,
}

impl EdgeLoad {
    pub fn new(config: &EdgeLoadConfig) -> Result<Self, InvalidField> {
        config.validate()?;
        let chain = if config.compute_available.len() == 1 {
            RegimeChain::single()
        } else {
            RegimeChain::new(&config.mean_dwell_s)?
        };
        Ok(Self { config: config.clone(), chain })
    }

    pub fn initial_state(&self, rng: &mut impl Rng) -> RegimeState {
        self.chain.initial_state(rng)
    }

    /// A fresh residual dwell ([`RegimeChain::redraw_residual`]).
    pub fn redraw_residual(&self, state: &mut RegimeState, rng: &mut impl Rng) {
        self.chain.redraw_residual(state, rng);
    }

    pub fn advance(&self, state: &mut RegimeState, slot_s: f64, rng: &mut impl Rng) -> EdgeAvailability {
        self.chain.advance(state, slot_s, rng);
        EdgeAvailability {
            compute: self.config.compute_available[state.regime],
            memory: self.config.memory_available[state.regime],
        }
    }

    /// Long-run mean fraction of edge compute left to us.
    pub fn mean_compute_available(&self) -> f64 {
        self.chain.stationary_mean(&self.config.compute_available)
    }

    /// The smallest memory fraction any regime leaves (for masks that must hold in every slot).
    pub fn min_memory_fraction(&self) -> f64 {
        self.config.memory_available.iter().copied().fold(1.0, f64::min)
    }
}

/// Mean wait of one cloud visit of a split plan: with probability `load` an iteration of the batch
/// is running and the visit waits its residual, half a quantum on average.
#[inline]
pub fn cloud_wait_s(load: f64, quantum_s: f64) -> f64 {
    load * quantum_s / 2.0
}

/// M/M/1 waiting time in queue, `scale·ρ/(1 − ρ)`: a request's admission wait (the queueing part
/// of its time to first token). ρ is capped at `max_load` < 1 by validation.
#[inline]
pub fn admission_wait_s(load: f64, scale_s: f64) -> f64 {
    let rho = load.clamp(0.0, 0.999);
    scale_s * rho / (1.0 - rho)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::StreamRng;
    use rand::SeedableRng;

    #[test]
    fn busy_and_quiet_regimes_average_by_dwell() {
        // Quiet 0.2 for 90 s, busy 0.9 for 30 s: mean 0.2·0.75 + 0.9·0.25 = 0.375.
        let cfg =
            CloudLoadConfig { levels: vec![0.2, 0.9], mean_dwell_s: vec![90.0, 30.0], ..CloudLoadConfig::default() };
        let load = CloudLoad::new(&cfg).unwrap();
        assert!((load.mean_load() - 0.375).abs() < 1e-12);
        let mut rng = StreamRng::seed_from_u64(4);
        let mut s = load.initial_state(&mut rng);
        let n = 200_000;
        let mean = (0..n).map(|_| load.advance(&mut s, 1.0, &mut rng)).sum::<f64>() / n as f64;
        // Occupancy sd ≈ 0.7 × sqrt(2·22.5·0.1875/2e5) ≈ 4.5e-3; allow 5 sd.
        assert!((mean - 0.375).abs() < 0.023, "{mean}");
    }

    #[test]
    fn jitter_is_clamped_to_the_cap() {
        let cfg = CloudLoadConfig { levels: vec![0.9], jitter_sd: 0.5, ..CloudLoadConfig::default() };
        let load = CloudLoad::new(&cfg).unwrap();
        let mut rng = StreamRng::seed_from_u64(5);
        let mut s = load.initial_state(&mut rng);
        for _ in 0..10_000 {
            let rho = load.advance(&mut s, 1.0, &mut rng);
            assert!((0.0..=DEFAULT_MAX_CLOUD_LOAD).contains(&rho));
        }
    }

    #[test]
    fn admission_wait_is_half_an_iteration_when_busy() {
        // ρ = 0.8, 20 ms iterations: 0.8 × 10 ms.
        assert!((cloud_wait_s(0.8, 0.02) - 0.008).abs() < 1e-15);
        assert_eq!(cloud_wait_s(0.0, 0.02), 0.0);
    }

    #[test]
    fn invalid_configs_name_the_field() {
        let bad =
            CloudLoadConfig { levels: vec![0.2, 0.99], mean_dwell_s: vec![1.0, 1.0], ..CloudLoadConfig::default() };
        assert_eq!(bad.validate().unwrap_err().field, "levels[1]");
        let bad = CloudLoadConfig { levels: vec![0.2, 0.5], ..CloudLoadConfig::default() };
        assert_eq!(bad.validate().unwrap_err().field, "mean_dwell_s");
        let edge = EdgeLoadConfig { compute_available: vec![1.0, 0.0], ..EdgeLoadConfig::default() };
        assert_eq!(edge.validate().unwrap_err().field, "compute_available[1]");
        assert!(toml::from_str::<CloudLoadConfig>("levels = [0.1]\nbogus = 1").is_err());
    }
}
