//! Background load on the two compute sides (system-model.md §3).
//!
//! The cloud is shared: a Markov-modulated utilisation ρ(t) of other tenants' work (e.g. a quiet
//! and a busy regime). The server shares its GPU (processor sharing: our work runs at `1 − ρ` of
//! its speed, which is the M/M/1-PS response time and already includes queueing behind the
//! background), and a continuous-batching server admits new work only at iteration boundaries,
//! so each visit also waits, with probability ρ, the residual of the current iteration (half a
//! `queue_quantum_s` on average). Cloud GPU time is billed. Without this an A100 next to a fast link makes
//! cloud-only trivially best, which is neither realistic for a busy service nor what SplitLLM
//! (whose objective is to cut server work) studies.
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
        non_negative("cost_per_gpu_hour_usd", self.cost_per_gpu_hour_usd, "USD per GPU-hour")
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

/// Mean admission wait of one cloud visit: with probability `load` an iteration of the batch is
/// running and the visit waits its residual, half a quantum on average.
#[inline]
pub fn cloud_wait_s(load: f64, quantum_s: f64) -> f64 {
    load * quantum_s / 2.0
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
