//! The partition environment's observation layout (`partition-v2`) as one table: every feature's
//! name, unit, bounds, how a device computes it (the export sidecar prints this), and how its
//! value is encoded from a physical measurement and decoded back. The environment encodes with
//! the table ([`encode_into`]), the public model decodes with it ([`decode`]), and the feature
//! indices ([`index`]) and the declared [`ObservationSpace`] derive from it, so the three cannot
//! drift apart.
//!
//! Conventions: "ewma": m ← (1 − ewma_alpha)·m + ewma_alpha·x once per slot, starting from the
//! prior (the scenario's long-run mean) at an episode's start. "Probe": at the end of every slot
//! the device sends a keep-alive probe (one small crossing and a 1-token request to the cloud API,
//! e.g. a health check); a device measures its link and the cloud this way even when it sends no
//! work there. Measurements are of the slot that just ended: nothing in the observation comes from
//! the future.

use crate::spaces::{Feature, ObservationSpace};

/// Observation layout name (recorded with its fingerprint in checkpoints). v2 added the link and
/// cloud state (connected, probe outcome, time since failure, RTT, TTFT, rejection) and dropped
/// v1's `crossing_failure_rate_last` (it counted failures of requests in the future).
pub const LAYOUT_NAME: &str = "partition-v2";

/// One feature of the table.
#[derive(Clone, Copy, Debug)]
pub struct FeatureDef {
    pub name: &'static str,
    pub unit: &'static str,
    pub low: f64,
    pub high: f64,
    /// Physical measurement → observed value (within `low..=high`).
    pub encode: fn(f64) -> f64,
    /// Observed value → physical measurement (the inverse of `encode` inside the bounds).
    pub decode: fn(f64) -> f64,
    pub description: &'static str,
}

fn identity(x: f64) -> f64 {
    x
}
fn unit_interval(x: f64) -> f64 {
    x.clamp(0.0, 1.0)
}
fn cap10(x: f64) -> f64 {
    x.clamp(0.0, 10.0)
}
fn cap5(x: f64) -> f64 {
    x.clamp(0.0, 5.0)
}
/// `log10(bit/s) − 6`: bandwidth in log10(Mbit/s), clamped to [−3, 4] (1 kbit/s to 10 Gbit/s).
pub fn log_mbps(rate_bps: f64) -> f64 {
    (rate_bps.max(1e-30).log10() - 6.0).clamp(-3.0, 4.0)
}
fn from_log_mbps(x: f64) -> f64 {
    10f64.powf(x + 6.0)
}
fn snr_encode(db: f64) -> f64 {
    (db / 10.0).clamp(-5.0, 6.0)
}
fn times10(x: f64) -> f64 {
    x * 10.0
}
fn m_encode(m: f64) -> f64 {
    m.clamp(0.0, 20.0) / 10.0
}
fn log_seconds(s: f64) -> f64 {
    (1.0 + s.max(0.0)).log10().clamp(0.0, 4.0)
}
fn from_log_seconds(x: f64) -> f64 {
    10f64.powf(x) - 1.0
}
fn per_30_seconds(s: f64) -> f64 {
    (s.max(0.0) / 30.0).clamp(0.0, 4.0)
}
fn from_per_30_seconds(x: f64) -> f64 {
    x * 30.0
}
fn rtt_encode(s: f64) -> f64 {
    (s * 10.0).clamp(0.0, 10.0)
}
fn rtt_decode(x: f64) -> f64 {
    x / 10.0
}
fn log_10ms(s: f64) -> f64 {
    (1.0 + s.max(0.0) / 0.01).log10().clamp(0.0, 5.0)
}
fn from_log_10ms(x: f64) -> f64 {
    0.01 * (10f64.powf(x) - 1.0)
}
fn bits_encode(bits: f64) -> f64 {
    bits / 16.0
}
fn bits_decode(x: f64) -> f64 {
    x * 16.0
}

macro_rules! feature_table {
    ($( $idx:ident = $name:literal, $unit:literal, [$low:expr, $high:expr], $enc:expr, $dec:expr, $desc:expr; )*) => {
        #[allow(non_camel_case_types, clippy::upper_case_acronyms)]
        #[repr(usize)]
        enum Idx { $($idx),* }
        /// Index of every feature in the observation vector.
        pub mod index {
            $( pub const $idx: usize = super::Idx::$idx as usize; )*
        }
        /// The slot features, in observation order (the history window follows them).
        pub const FEATURES: &[FeatureDef] = &[
            $( FeatureDef { name: $name, unit: $unit, low: $low, high: $high, encode: $enc, decode: $dec, description: $desc } ),*
        ];
    };
}

feature_table! {
    BACKLOG_FRACTION = "backlog_fraction", "1", [0.0, 1.0], unit_interval, identity,
        "requests waiting in the FIFO queue at the decision / workload.queue_capacity";
    BACKLOG_EWMA = "backlog_ewma_fraction", "1", [0.0, 1.0], unit_interval, identity,
        "ewma of the backlog fraction at the end of each slot (queued requests / queue_capacity); starts at 0";
    ENERGY_QUEUE = "energy_queue", "1", [0.0, 10.0], cap10, identity,
        "min(Z_E / reward.scales.energy_j, 10); energy virtual queue Z_E ← max(Z_E + edge energy of the slot (J) − reward.energy_budget_w·slot_s, 0), 0 without a budget";
    ACCURACY_QUEUE = "accuracy_queue", "1", [0.0, 10.0], cap10, identity,
        "min(Z_A / reward.scales.accuracy, 10); accuracy virtual queue Z_A ← max(Z_A + Σ over requests started in the slot of (accuracy loss − reward.accuracy_budget), 0), 0 without a budget";
    BANDWIDTH_LAST = "bandwidth_last", "log10(Mbit/s)", [-3.0, 4.0], log_mbps, from_log_mbps,
        "clamp(log10(r) − 6, −3, 4) of the link rate r (bit/s) measured in the last slot; before the first slot r is the prior (the scenario's mean rate)";
    BANDWIDTH_EWMA = "bandwidth_ewma", "log10(Mbit/s)", [-3.0, 4.0], log_mbps, from_log_mbps,
        "clamp(log10(m) − 6, −3, 4) of m = ewma of the measured link rate in bit/s (prior: the scenario's mean rate)";
    BANDWIDTH_CV = "bandwidth_cv", "1", [0.0, 5.0], cap5, identity,
        "min(√v / m, 5) with m the rate ewma and v its moving variance: v ← (1 − ewma_alpha)·(v + ewma_alpha·(r − m_prev)²) each slot from v = 0, m_prev the ewma before the slot's update; 0 when m = 0";
    SNR_LAST = "snr_last", "10 dB", [-5.0, 6.0], snr_encode, times10,
        "clamp(mean SNR of the last slot in dB / 10, −5, 6) as the modem reports it; before the first slot the prior (the scenario's mean SNR)";
    NAKAGAMI_M = "nakagami_m_estimate", "10", [0.0, 2.0], m_encode, times10,
        "min(a² / max(b − a², 1e-12), 20) / 10: moment estimate of Nakagami m from a = ewma of the slot's fading power gain g (prior 1) and b = ewma of g² (prior 1 + 1/m, m the scenario's Nakagami m)";
    ARRIVAL_RATE_EWMA = "arrival_rate_ewma", "1", [0.0, 5.0], cap5, identity,
        "min(ewma of (arrivals in the slot / slot_s) / the arrival process's peak rate per second, 5); prior: the mean arrival rate";
    EDGE_COMPUTE_AVAILABLE = "edge_compute_available", "1", [0.0, 1.0], unit_interval, identity,
        "fraction of the edge device's compute left by other apps in the coming slot (known locally)";
    EDGE_MEMORY_AVAILABLE = "edge_memory_available", "1", [0.0, 1.0], unit_interval, identity,
        "fraction of the edge device's usable memory left by other apps in the coming slot (known locally)";
    CLOUD_LOAD_EWMA = "cloud_load_ewma", "1", [0.0, 1.0], unit_interval, identity,
        "ewma of the shared cloud's utilisation as its serving metrics report it each slot (e.g. vLLM's /metrics: running vs capacity), in [0, 1]; prior: its long-run mean";
    LINK_CONNECTED = "link_connected", "1", [0.0, 1.0], unit_interval, identity,
        "1 while the modem reports service at the end of the last slot, 0 while it reports none (the Gilbert–Elliott Bad state: radio link failure, coverage hole); 1 before the first slot and without a Gilbert–Elliott process";
    PROBE_FAILED_LAST = "probe_failed_last", "1", [0.0, 1.0], unit_interval, identity,
        "1 if the last keep-alive probe's crossing failed (no acknowledgement), else 0; 0 before the first slot";
    TIME_SINCE_FAILURE = "time_since_failure", "log10(1 + s)", [0.0, 4.0], log_seconds, from_log_seconds,
        "clamp(log10(1 + s), 0, 4), s = seconds since the last failed probe crossing (0 when the last probe failed); before any failure s = 9999";
    RTT_LAST = "rtt_last", "100 ms", [0.0, 10.0], rtt_encode, rtt_decode,
        "min(round-trip time of the last slot's probe in s × 10, 10); before the first slot the prior 2·(one_way_s + jitter_s / 2)";
    CLOUD_TTFT_LAST = "cloud_ttft_last", "log10(1 + s/10 ms)", [0.0, 5.0], log_10ms, from_log_10ms,
        "clamp(log10(1 + t / 0.01 s), 0, 5), t = time to first token of the last probe answered by the cloud (round trip + admission queue; held while probes fail or are rejected); prior: the mean RTT plus the admission wait at the mean load";
    CLOUD_REJECTED_LAST = "cloud_rejected_last", "1", [0.0, 1.0], unit_interval, identity,
        "1 if the cloud API rejected the last probe that reached it (HTTP 429/529 overloaded), else 0; held while probes fail; 0 before the first slot";
    LAST_SPLIT_FRACTION = "last_split_fraction", "1", [0.0, 1.0], unit_interval, identity,
        "leading layers fully on the edge in the plan executed last (the initial plan before the first slot) / n_layers";
    LAST_EDGE_SHARE = "last_edge_share", "1", [0.0, 1.0], unit_interval, identity,
        "edge share of the per-token weight traffic of the plan executed last, clamped to [0, 1]";
    LAST_PRECISION = "last_precision", "16 bit", [0.0, 1.0], bits_encode, bits_decode,
        "boundary bits of the plan executed last / 16";
    LATENCY_MEAN_LAST = "latency_mean_last", "1", [0.0, 10.0], cap10, identity,
        "min(mean latency of the requests whose service started in the last slot / reward.scales.latency_s, 10); 0 if none started";
}

/// The three features of each history slot, oldest first after the slot features.
pub const HISTORY: [FeatureDef; 3] = [
    FeatureDef {
        name: "history_backlog",
        unit: "1",
        low: 0.0,
        high: 1.0,
        encode: unit_interval,
        decode: identity,
        description: "backlog fraction at the end of the slot k slots ago (queued / queue_capacity); 0 for slots before the episode began",
    },
    FeatureDef {
        name: "history_bandwidth",
        unit: "log10(Mbit/s)",
        low: -3.0,
        high: 4.0,
        encode: log_mbps,
        decode: from_log_mbps,
        description: "clamp(log10(r) − 6, −3, 4) of the link rate r (bit/s) measured k slots ago; for slots before the episode began, the prior (the scenario's mean rate)",
    },
    FeatureDef {
        name: "history_arrival_rate",
        unit: "1",
        low: 0.0,
        high: 5.0,
        encode: cap5,
        decode: identity,
        description: "min(arrivals k slots ago / slot_s / peak arrival rate per second, 5); for slots before the episode began, min(mean arrival rate / peak rate, 5)",
    },
];

/// The optional last feature (`[observation] service_age = true`, after the history window): the
/// time since the last failed probe on a linear scale. `time_since_failure` spans seconds to hours
/// on a log scale, where a station's whole service on the subway (10–40 s) is 1.04–1.61 and the
/// learners' choice of when to leave the cloud was measured blurred over 30 s
/// (docs/agents.md, "Where the learners fall short of the rule on the subway").
pub const SERVICE_AGE: FeatureDef = FeatureDef {
    name: "service_age",
    unit: "30 s",
    low: 0.0,
    high: 4.0,
    encode: per_30_seconds,
    decode: from_per_30_seconds,
    description: "clamp(s / 30, 0, 4), s = seconds since the last failed probe crossing as in time_since_failure (0 when the last probe failed): linear up to 2 minutes; before any failure 4",
};

/// Number of slot features (before the history window).
pub fn n_slot_features() -> usize {
    FEATURES.len()
}

/// Encodes physical measurements `raw` (in [`FEATURES`] order) into `obs`.
pub fn encode_into(raw: &[f64], obs: &mut [f32]) {
    debug_assert_eq!(raw.len(), FEATURES.len());
    for ((o, f), &x) in obs.iter_mut().zip(FEATURES).zip(raw) {
        *o = (f.encode)(x) as f32;
    }
}

/// The physical value of feature `i` of an observation.
#[inline]
pub fn decode(obs: &[f32], i: usize) -> f64 {
    (FEATURES[i].decode)(f64::from(obs[i]))
}

/// The observation space with `history` slots of history, then [`SERVICE_AGE`] if asked.
pub fn observation_space(history: u32, service_age: bool) -> ObservationSpace {
    let declared = |f: &FeatureDef| Feature::new(f.name, f.low as f32, f.high as f32, f.unit, f.description);
    let mut features: Vec<Feature> = FEATURES.iter().map(declared).collect();
    for k in (1..=history).rev() {
        for h in &HISTORY {
            features.push(Feature::new(
                format!("{}_t-{k}", h.name),
                h.low as f32,
                h.high as f32,
                h.unit,
                h.description,
            ));
        }
    }
    if service_age {
        features.push(declared(&SERVICE_AGE));
    }
    ObservationSpace { layout: LAYOUT_NAME.to_string(), features }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decode_inverts_encode_inside_the_bounds() {
        let samples: [f64; 5] = [0.0, 0.3, 0.9, 2.0, 7.5];
        for f in FEATURES.iter().chain(&HISTORY).chain([&SERVICE_AGE]) {
            for &x in &samples {
                let y = x.clamp(f.low, f.high);
                let back = (f.encode)((f.decode)(y));
                assert!((back - y).abs() < 1e-9, "{}: {y} → {back}", f.name);
            }
            assert!(f.low < f.high, "{}", f.name);
        }
    }

    #[test]
    fn indices_follow_the_table() {
        assert_eq!(FEATURES[index::BANDWIDTH_EWMA].name, "bandwidth_ewma");
        assert_eq!(FEATURES[index::CLOUD_TTFT_LAST].name, "cloud_ttft_last");
        assert_eq!(FEATURES[index::LATENCY_MEAN_LAST].name, "latency_mean_last");
        assert_eq!(index::LATENCY_MEAN_LAST + 1, FEATURES.len());
        let space = observation_space(2, false);
        assert_eq!(space.features.len(), FEATURES.len() + 6);
        assert_eq!(space.layout, "partition-v2");
        assert_eq!(space.features[FEATURES.len()].name, "history_backlog_t-2");
        let with_age = observation_space(2, true);
        assert_eq!(with_age.features.len(), FEATURES.len() + 7);
        assert_eq!(with_age.features[FEATURES.len() + 6].name, "service_age");
        assert_eq!(with_age.features[..FEATURES.len() + 6], space.features[..]);
    }
}
