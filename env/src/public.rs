//! The environment's public model: what a policy may compute with besides the observation and
//! the mask (system-model §10). Baselines plan with the same cost evaluator the environment
//! executes with, under conditions they *estimate* from the observation; an oracle baseline
//! instead reads the true conditions of the slot ([`slot_view`] of the env's
//! `oracle_conditions`) and is labelled as such.

use crate::cost::{Conditions, PlanProfile};
use crate::exogenous::ExoSlot;
use crate::link::TransportMode;
use crate::model::TOKEN_ID_BYTES;
use crate::partition::obs_index;
use crate::scenario::Scenario;
use crate::service::{EnergyModel, RequestCosts, SlotView};
use serde::{Deserialize, Serialize};

/// What the request walk sees of a slot, from that slot's true exogenous conditions.
pub fn slot_view(sc: &Scenario, x: &ExoSlot) -> SlotView {
    let transport = sc.link.transport();
    let reliable = transport.mode == TransportMode::Reliable;
    SlotView {
        conditions: Conditions {
            up_rate_bps: x.link.rate_bps,
            down_rate_bps: x.link.rate_bps,
            one_way_s: x.link.one_way_s,
            packet_loss_probability: if reliable { x.link.packet_loss_probability } else { 0.0 },
            reliable,
            packet_bytes: transport.packet_bytes,
            cloud_load: x.cloud_load,
            cloud_queue_quantum_s: sc.config.cloud_load.queue_quantum_s,
            edge_compute_available: x.edge.compute,
        },
        crossing_failure_probability: x.crossing_failure_probability,
        erasure_rate: transport.erasure_rate(x.link.packet_loss_probability),
    }
}

/// Conditions estimated from a `partition-v1` observation: the moving-average link rate, the
/// last slot's one-way latency and SNR (→ packet loss through the link model), the moving
/// average cloud load and the edge's known compute availability (before the first measurement
/// the env's estimates hold the scenario's long-run means).
pub fn estimated_view(sc: &Scenario, obs: &[f32]) -> SlotView {
    let mean = mean_view(sc);
    let f = |i: usize| f64::from(obs[i]);
    let rate_bps = 10f64.powf(f(obs_index::BANDWIDTH_EWMA) + 6.0);
    let snr_db = f(obs_index::SNR_LAST) * 10.0;
    let loss = sc.link.packet_loss_probability(snr_db);
    let transport = sc.link.transport();
    let reliable = transport.mode == TransportMode::Reliable;
    let one_way = f(obs_index::ONE_WAY_LATENCY_LAST) / 10.0;
    SlotView {
        conditions: Conditions {
            up_rate_bps: rate_bps,
            down_rate_bps: rate_bps,
            one_way_s: one_way,
            packet_loss_probability: if reliable { loss } else { 0.0 },
            cloud_load: f(obs_index::CLOUD_LOAD_EWMA).min(sc.config.cloud_load.max_load),
            edge_compute_available: f(obs_index::EDGE_COMPUTE_AVAILABLE).max(0.01),
            ..mean.conditions
        },
        crossing_failure_probability: f(obs_index::CROSSING_FAILURE_RATE_LAST),
        erasure_rate: transport.erasure_rate(loss),
    }
}

/// Long-run mean conditions of a scenario (what a static, offline policy plans with): the
/// stationary mean rate, mean latency (base + half the jitter), loss at the mean SNR, mean
/// cloud load and edge availability.
pub fn mean_view(sc: &Scenario) -> SlotView {
    let transport = sc.link.transport();
    let reliable = transport.mode == TransportMode::Reliable;
    let snr_db = sc.config.link.snr.mean_db;
    let loss = sc.link.packet_loss_probability(snr_db);
    let rate = sc.link.mean_rate_bps();
    let latency = &sc.config.link.latency;
    SlotView {
        conditions: Conditions {
            up_rate_bps: rate,
            down_rate_bps: rate,
            one_way_s: latency.one_way_s + latency.jitter_s / 2.0,
            packet_loss_probability: if reliable { loss } else { 0.0 },
            reliable,
            packet_bytes: transport.packet_bytes,
            cloud_load: sc.cloud_load.mean_load(),
            cloud_queue_quantum_s: sc.config.cloud_load.queue_quantum_s,
            edge_compute_available: sc.edge_load.mean_compute_available(),
        },
        crossing_failure_probability: sc.config.failures.crossing_failure_probability(
            snr_db,
            sc.link.nakagami_m(),
            crate::failure::GeState::Good,
        ),
        erasure_rate: transport.erasure_rate(loss),
    }
}

/// The median prompt and output lengths of the scenario's workload (a typical request).
pub fn typical_request(sc: &Scenario) -> (u32, u32) {
    let w = &sc.config.workload;
    let median = |l: &crate::workload::LengthConfig| (l.median_tokens.round() as u32).clamp(l.min_tokens, l.max_tokens);
    (median(&w.prompt_tokens), median(&w.output_tokens))
}

/// Expected cost of serving one request with a plan under fixed conditions, without failures.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RequestEstimate {
    pub latency_s: f64,
    pub edge_energy_j: f64,
    /// GPU time the shared cloud bills.
    pub cloud_gpu_s: f64,
    pub edge_compute_s: f64,
    pub cloud_busy_s: f64,
    /// Blocking crossings over the request (prefill + decode passes, + the streamed delivery).
    pub crossings: f64,
    /// Accuracy loss (fraction) of the plan's boundary crossings at the view's erasure rate.
    pub accuracy_loss: f64,
}

/// [`RequestEstimate`] of a plan (given as its profile) for an `(n_in, n_out)` request,
/// through the same pass costs and timing the environment executes requests with.
pub fn estimate_request(
    sc: &Scenario,
    profile: &PlanProfile,
    n_in: u32,
    n_out: u32,
    view: &SlotView,
    scratch: &mut RequestCosts,
) -> RequestEstimate {
    scratch.fill(profile, n_in, n_out, &sc.edge, &sc.cloud);
    estimate_from_costs(sc, profile, scratch, n_out, view)
}

/// [`estimate_request`] from pass costs already filled for the request (`RequestCosts::fill`),
/// so a policy that re-times the same plans every slot fills them once.
pub fn estimate_from_costs(
    sc: &Scenario,
    profile: &PlanProfile,
    costs: &RequestCosts,
    n_out: u32,
    view: &SlotView,
) -> RequestEstimate {
    let c = &view.conditions;
    let pre = costs.prefill.timing(c);
    let dec = costs.decode.timing(c);
    let decodes = f64::from(n_out.max(1) - 1);
    let energy = EnergyModel::of(&sc.edge);
    let mut e = RequestEstimate {
        latency_s: pre.total_s + decodes * dec.total_s,
        edge_energy_j: energy.pass_energy_j(&pre, 1.0) + energy.pass_energy_j(&dec, decodes),
        cloud_gpu_s: pre.cloud_gpu_s + decodes * dec.cloud_gpu_s,
        edge_compute_s: pre.edge_compute_s + decodes * dec.edge_compute_s,
        cloud_busy_s: pre.cloud_busy_s + decodes * dec.cloud_busy_s,
        crossings: f64::from(pre.crossings) + decodes * f64::from(dec.crossings),
        accuracy_loss: profile
            .tensor_crossing_depths
            .iter()
            .map(|&d| sc.accuracy.crossing_loss(profile.bits, d, view.erasure_rate))
            .sum(),
    };
    if profile.streaming {
        let x = crate::link::lossy_transfer_time_s(TOKEN_ID_BYTES, c.down_rate_bps, c.one_way_s);
        e.latency_s += x;
        e.edge_energy_j += energy.idle_w * x;
        e.crossings += 1.0;
    }
    e
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::Env;
    use crate::partition::PartitionEnv;
    use crate::plan::{Plan, Precision};
    use crate::policy::{CloudOnly, act_and_step};
    use crate::scenario::NoTraces;
    use std::sync::Arc;

    #[test]
    fn estimate_matches_the_env_on_a_calm_link() {
        // The env's hand-checked calm scenario (partition tests): with no failures and fixed
        // conditions, the estimate of the executed plan is the executed latency.
        let text = include_str!("../../configs/jetson-llama7b-lte.toml");
        let sc = Arc::new(Scenario::from_toml(text, &NoTraces).unwrap());
        let (n_in, n_out) = typical_request(&sc);
        assert_eq!((n_in, n_out), (128, 64));
        let mean = mean_view(&sc);
        // Stationary rate: (20 Mbit/s × 90 + 3 Mbit/s × 30) / 120.
        assert!((mean.conditions.up_rate_bps - 15.75e6).abs() < 1.0);
        // Cloud load (0.3 × 120 + 0.9 × 45) / 165.
        assert!((mean.conditions.cloud_load - (0.3 * 120.0 + 0.9 * 45.0) / 165.0).abs() < 1e-12);
        let mut scratch = RequestCosts::default();
        let cloud = PlanProfile::new(&Plan::cloud_only(32, Precision::Bits16), &sc.costs);
        let edge = PlanProfile::new(&Plan::edge_only(32, 32, Precision::Bits16), &sc.costs);
        let ec = estimate_request(&sc, &cloud, n_in, n_out, &mean, &mut scratch);
        let ee = estimate_request(&sc, &edge, n_in, n_out, &mean, &mut scratch);
        // INT8 LLaMA-7B: ≈ 82 ms/token on the Jetson, far slower than the mean cloud.
        assert!(ee.latency_s > 2.0 * ec.latency_s, "{} vs {}", ee.latency_s, ec.latency_s);
        assert_eq!(ee.cloud_gpu_s, 0.0);
        assert!(ee.edge_energy_j > ec.edge_energy_j);
        assert_eq!(ec.crossings, 2.0, "prompt up and the stream's last token down");
    }

    #[test]
    fn observation_estimates_follow_the_features() {
        let text = include_str!("../../configs/jetson-llama7b-lte.toml");
        let sc = Arc::new(Scenario::from_toml(text, &NoTraces).unwrap());
        let mut env = PartitionEnv::new(sc.clone());
        let (mut obs, _) = env.reset(Some(3));
        // At reset nothing is measured yet: the estimates hold the scenario's means (to f32).
        let v0 = estimated_view(&sc, &obs.features);
        assert!((v0.conditions.up_rate_bps / mean_view(&sc).conditions.up_rate_bps - 1.0).abs() < 1e-5);
        assert!((v0.conditions.one_way_s - mean_view(&sc).conditions.one_way_s).abs() < 1e-6);
        let t = act_and_step(&mut env, &mut CloudOnly, &mut obs).unwrap();
        let v1 = estimated_view(&sc, &obs.features);
        // After one slot the moving average has moved ewma_alpha = 0.2 of the way (in bit/s)
        // from the prior mean to the measured rate.
        let expected = 0.8 * mean_view(&sc).conditions.up_rate_bps + 0.2 * t.info.rate_bps;
        assert!((v1.conditions.up_rate_bps / expected - 1.0).abs() < 1e-5);
        let load = 0.8 * mean_view(&sc).conditions.cloud_load + 0.2 * t.info.cloud_load;
        assert!((v1.conditions.cloud_load - load).abs() < 1e-6);
    }
}
