//! Slot conditions as the request walk sees them ([`SlotView`]), built from a slot's true
//! exogenous state ([`slot_view`]) or from the scenario's long-run means ([`mean_view`]). Both the
//! environment (which executes requests under true conditions) and the public model (which plans
//! with estimated or mean conditions) build views here, so neither imports the other.

use crate::cost::Conditions;
use crate::exogenous::ExoSlot;
use crate::link::TransportMode;
use crate::scenario::Scenario;
use crate::service::SlotView;

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
            cloud_tpot_inflation: sc.config.cloud_load.tpot_inflation,
            cloud_queue_quantum_s: sc.config.cloud_load.queue_quantum_s,
            edge_compute_available: x.edge.compute,
        },
        crossing_failure_probability: x.crossing_failure_probability,
        erasure_rate: transport.erasure_rate(x.link.packet_loss_probability),
        cloud_admission_wait_s: sc.config.cloud_load.admission_wait_s(x.cloud_load),
        cloud_reject_probability: x.cloud_reject_probability,
    }
}

/// Long-run mean conditions of a scenario (what a static, offline policy plans with): the
/// stationary mean rate, mean latency (base + half the jitter), loss at the mean SNR, mean
/// cloud load (its admission wait at that load) and rejection probability, mean edge
/// availability, and the crossing failure probability of the Good link state at the mean SNR.
pub fn mean_view(sc: &Scenario) -> SlotView {
    let transport = sc.link.transport();
    let reliable = transport.mode == TransportMode::Reliable;
    let snr_db = sc.config.link.snr.mean_db;
    let loss = sc.link.packet_loss_probability(snr_db);
    let rate = sc.link.mean_rate_bps();
    let latency = &sc.config.link.latency;
    let load = sc.cloud_load.mean_load();
    SlotView {
        conditions: Conditions {
            up_rate_bps: rate,
            down_rate_bps: rate,
            one_way_s: latency.one_way_s + latency.jitter_s / 2.0,
            packet_loss_probability: if reliable { loss } else { 0.0 },
            reliable,
            packet_bytes: transport.packet_bytes,
            cloud_load: load,
            cloud_tpot_inflation: sc.config.cloud_load.tpot_inflation,
            cloud_queue_quantum_s: sc.config.cloud_load.queue_quantum_s,
            edge_compute_available: sc.edge_load.mean_compute_available(),
        },
        crossing_failure_probability: sc.config.failures.crossing_failure_probability(
            snr_db,
            sc.link.nakagami_m(),
            crate::failure::GeState::Good,
        ),
        erasure_rate: transport.erasure_rate(loss),
        cloud_admission_wait_s: sc.config.cloud_load.admission_wait_s(load),
        cloud_reject_probability: sc.cloud_load.mean_reject_probability(),
    }
}
