//! Serving one request under a plan while the slot conditions change under it (system-model.md
//! §1, §4, §6, §8): the prefill pass, then one decode pass per further output token, each timed
//! under the conditions of the slot it runs in; transfer failures, partition checkpoints,
//! exponential backoff with jitter, and the fallback to the safe (edge-only) plan.
//!
//! The walk advances slot by slot, not token by token: within a slot the conditions are fixed,
//! so the passes that fit are charged together and failures among their crossings are drawn
//! with one exponential clock ([`FailureClock`]), O(1) per slot spanned plus O(1) per failure.
//!
//! Admission (§3, §8): a request whose plan uses the cloud is first admitted by the cloud API,
//! which may reject it (HTTP 429/529; one round trip each) while overloaded; the client SDK
//! retries with its own backoff. Once admitted it waits in the server's admission queue (the
//! queueing part of its time to first token) and then runs.
//!
//! Checkpoints (§8): with checkpoints, a failure loses only the failed crossing's attempt; the
//! request resumes at that crossing after the transport's backoff, whose index counts the
//! crossing's consecutive failures. Without (the "no checkpoint" variant), it restarts from
//! scratch. The cloud path gives up after `max_retries` consecutive failures of one crossing,
//! after the API's retries, or at a failure past the request's `timeout_s`; the request then
//! fails and is counted, unless the scenario opted into the edge fallback, which re-runs the
//! prefill over the prompt and the tokens generated so far on the edge (the cloud side's KV cache
//! is unreachable). The fallback also triggers once one crossing has stalled for
//! `fallback.after_s`.

use crate::cost::{Conditions, PassCost, PassTiming, PlanProfile};
use crate::device::DeviceProfile;
use crate::failure::{FailureClock, RecoveryConfig};
use crate::model::{Pass, TOKEN_ID_BYTES};
use crate::rng::StreamRng;
use rand::RngExt;
use serde::{Deserialize, Serialize};

/// What the walk needs of one slot.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct SlotView {
    pub conditions: Conditions,
    /// Probability that one crossing fails (outage, Gilbert–Elliott), §8.
    pub crossing_failure_probability: f64,
    /// Fraction of a boundary tensor erased in lossy transport (0 when reliable), §4–§5.
    pub erasure_rate: f64,
    /// Mean admission wait of a new request in the shared cloud (queueing part of TTFT), §3.
    pub cloud_admission_wait_s: f64,
    /// Probability that the cloud API rejects an admission attempt (HTTP 429/529), §3.
    pub cloud_reject_probability: f64,
}

/// Exogenous per-slot conditions, indexed by absolute slot number (generated lazily ahead by
/// the environment, from streams that do not depend on actions).
pub trait SlotSource {
    fn slot_s(&self) -> f64;
    fn slot(&mut self, index: u64) -> SlotView;
}

/// A plan's pass costs for one request.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RequestCosts {
    pub prefill: PassCost,
    /// One decode step at the request's mean context `n_in + n_out/2` (decode is memory-bound, so
    /// its time is affine in the context and the mean gives the exact sum over tokens).
    pub decode: PassCost,
}

impl RequestCosts {
    pub fn fill(&mut self, profile: &PlanProfile, n_in: u32, n_out: u32, edge: &DeviceProfile, cloud: &DeviceProfile) {
        profile.pass_cost(Pass::prefill(f64::from(n_in)), edge, cloud, &mut self.prefill);
        let mean_context = f64::from(n_in) + f64::from(n_out) / 2.0;
        profile.pass_cost(Pass::decode(mean_context), edge, cloud, &mut self.decode);
    }
}

/// The safe plan a request falls back to after repeated failures.
pub struct Fallback<'a> {
    pub profile: &'a PlanProfile,
    /// Time to load the edge-only weights that are not resident yet.
    pub load_s: f64,
}

/// Everything the environment needs to know about one served request.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ServiceOutcome {
    /// Time the request leaves the system (completed, or failed for good).
    pub end_s: f64,
    pub edge_compute_s: f64,
    pub tx_s: f64,
    pub rx_s: f64,
    pub backoff_s: f64,
    pub energy_j: f64,
    pub cloud_gpu_s: f64,
    pub cloud_busy_s: f64,
    pub crossings: u64,
    pub failures: u32,
    /// Admission attempts the cloud API rejected.
    pub rejections: u32,
    /// Time spent in the cloud's admission queue.
    pub cloud_queue_s: f64,
    pub fell_back: bool,
    pub failed: bool,
    /// Token-weighted mean erasure rate over the passes (lossy transport).
    pub mean_erasure_rate: f64,
}

/// Device parameters the walk charges energy with.
#[derive(Clone, Copy, Debug)]
pub struct EnergyModel {
    pub active_w: f64,
    pub idle_w: f64,
    pub tx_w: f64,
    pub rx_w: f64,
}

impl EnergyModel {
    pub fn of(edge: &DeviceProfile) -> Self {
        Self { active_w: edge.active_power_w, idle_w: edge.idle_power_w, tx_w: edge.tx_power_w, rx_w: edge.rx_power_w }
    }

    /// Edge energy of `fraction` of a pass (§6): the edge idles while the cloud or the link work.
    #[inline]
    pub fn pass_energy_j(&self, t: &PassTiming, fraction: f64) -> f64 {
        let idle = (t.total_s - t.edge_compute_s - t.tx_s - t.rx_s).max(0.0);
        fraction * (self.active_w * t.edge_compute_s + self.tx_w * t.tx_s + self.rx_w * t.rx_s + self.idle_w * idle)
    }
}

/// Inputs of [`serve`] that stay fixed for the request.
pub struct ServeSpec<'a> {
    pub costs: &'a RequestCosts,
    pub streaming: bool,
    /// The plan runs work in the cloud (the request must be admitted there first).
    pub uses_cloud: bool,
    pub n_in: u32,
    pub n_out: u32,
    pub fallback: Option<Fallback<'a>>,
    pub recovery: &'a RecoveryConfig,
    pub edge: &'a DeviceProfile,
    pub cloud: &'a DeviceProfile,
}

struct Walk {
    out: ServiceOutcome,
    t: f64,
    erasure_tokens: f64,
    passes: f64,
}

impl Walk {
    /// The edge idles for `s` seconds (backoff, rejection round trip, admission queue).
    #[inline]
    fn idle(&mut self, s: f64, energy: &EnergyModel) {
        self.t += s;
        self.out.energy_j += energy.idle_w * s;
    }

    #[inline]
    fn charge(&mut self, timing: &PassTiming, fraction: f64, energy: &EnergyModel, erasure: f64) {
        self.t += fraction * timing.total_s;
        self.out.edge_compute_s += fraction * timing.edge_compute_s;
        self.out.tx_s += fraction * timing.tx_s;
        self.out.rx_s += fraction * timing.rx_s;
        self.out.cloud_gpu_s += fraction * timing.cloud_gpu_s;
        self.out.cloud_busy_s += fraction * timing.cloud_busy_s;
        self.out.energy_j += energy.pass_energy_j(timing, fraction);
        self.erasure_tokens += fraction * erasure;
        self.passes += fraction;
    }
}

/// Serves one request that starts at `start_s`: admission when the plan uses the cloud, a prefill
/// producing the first token, then one decode pass per further token; a streaming (cloud-only)
/// plan adds the final delivery of the stream as a last crossing.
pub fn serve(spec: &ServeSpec<'_>, start_s: f64, src: &mut impl SlotSource, rng: &mut StreamRng) -> ServiceOutcome {
    let energy = EnergyModel::of(spec.edge);
    let rec = spec.recovery;
    let slot_s = src.slot_s();
    let n_out = spec.n_out.max(1);
    let mut w = Walk { out: ServiceOutcome::default(), t: start_s, erasure_tokens: 0.0, passes: 0.0 };
    let mut clock = FailureClock::new(rng);
    let mut fallback_costs = RequestCosts::default();
    let mut on_fallback = false;
    let mut streaming = spec.streaming;
    let mut admitted = !spec.uses_cloud;
    let mut generated: u32 = 0;
    let mut in_prefill = true;
    // Fraction of the current pass already done (resumption at a partition checkpoint).
    let mut progress = 0.0;
    let mut delivered = false;
    // Consecutive failures of the crossing being retried, and its stall so far (s).
    let mut consecutive: u32 = 0;
    let mut stall = 0.0;
    loop {
        let costs = if on_fallback { &fallback_costs } else { spec.costs };
        let slot = (w.t / slot_s).floor() as u64;
        let view = src.slot(slot);
        let slot_end = (slot + 1) as f64 * slot_s;
        let mut give_up = false;
        if !admitted {
            // One admission attempt: a rejection costs a round trip, then the SDK's backoff.
            let u: f64 = rng.random();
            if u >= view.cloud_reject_probability {
                admitted = true;
                w.idle(view.cloud_admission_wait_s, &energy);
                w.out.cloud_queue_s += view.cloud_admission_wait_s;
                continue;
            }
            w.idle(2.0 * view.conditions.one_way_s, &energy);
            w.out.rejections += 1;
            if w.out.rejections > rec.api.max_retries || w.t - start_s >= rec.timeout_s {
                give_up = true;
            } else {
                let d = rec.api.backoff_delay_s(w.out.rejections - 1, rng.random());
                w.idle(d, &energy);
                w.out.backoff_s += d;
                continue;
            }
        }
        if !give_up {
            let (timing, count) = if generated < n_out {
                if in_prefill {
                    (costs.prefill.timing(&view.conditions), 1)
                } else if progress > 0.0 {
                    (costs.decode.timing(&view.conditions), 1)
                } else {
                    // As many decode passes as start within this slot, at its conditions.
                    let t = costs.decode.timing(&view.conditions);
                    let fit = ((slot_end - w.t) / t.total_s).ceil().max(1.0);
                    (t, fit.min(f64::from(n_out - generated)) as u32)
                }
            } else if streaming && !delivered {
                // The stream's last token reaches the edge one crossing after generation ends.
                let c = &view.conditions;
                let x = crate::link::lossy_transfer_time_s(TOKEN_ID_BYTES, c.down_rate_bps, c.one_way_s);
                let radio = TOKEN_ID_BYTES * 8.0 / c.down_rate_bps;
                (PassTiming { total_s: x, rx_s: radio, crossings: 1, ..PassTiming::default() }, 1)
            } else {
                break;
            };
            let k = u64::from(timing.crossings);
            // Crossings already done in a resumed pass are not run again.
            let done_crossings = (progress * k as f64).round() as u64;
            let to_run = u64::from(count) * k - done_crossings;
            let failure = clock.consume(to_run, view.crossing_failure_probability, rng);
            let Some(j) = failure else {
                w.charge(&timing, f64::from(count) - progress, &energy, view.erasure_rate);
                w.out.crossings += to_run;
                if to_run > 0 {
                    consecutive = 0;
                    stall = 0.0;
                }
                if generated < n_out {
                    generated += count;
                    in_prefill = false;
                } else {
                    delivered = true;
                }
                progress = 0.0;
                continue;
            };
            if j > 0 {
                // The crossing retried last went through before this one failed.
                consecutive = 0;
                stall = 0.0;
            }
            // Crossings are spread evenly over a pass: the passes completed, the useful part of
            // the failing pass up to the failed crossing, then the failed attempt itself.
            let j_abs = j + done_crossings;
            let passes_done = (j_abs / k) as u32;
            let within = (j_abs % k) as f64 / k as f64;
            w.charge(&timing, f64::from(passes_done) + within - progress, &energy, view.erasure_rate);
            w.charge(&timing, 1.0 / k as f64, &energy, 0.0);
            w.out.crossings += j + 1;
            w.out.failures += 1;
            consecutive += 1;
            stall += timing.total_s / k as f64;
            if generated < n_out && passes_done > 0 {
                generated += passes_done;
                in_prefill = false;
            }
            progress = within;
            give_up = consecutive >= rec.max_retries
                || w.t - start_s >= rec.timeout_s
                || (spec.fallback.is_some() && stall >= rec.fallback.after_s);
        }
        if give_up {
            let Some(fb) = spec.fallback.as_ref().filter(|_| !on_fallback) else {
                w.out.failed = true;
                break;
            };
            // Load the missing weights, then prefill on the edge over the prompt and the tokens
            // kept (none without checkpoints, or when the stream itself never arrived).
            let kept = if rec.checkpoints && !streaming { generated } else { 0 };
            w.t += fb.load_s;
            w.out.edge_compute_s += fb.load_s;
            w.out.energy_j += energy.active_w * fb.load_s;
            w.out.fell_back = true;
            on_fallback = true;
            admitted = true;
            streaming = false;
            fallback_costs.fill(fb.profile, spec.n_in + kept, spec.n_out, spec.edge, spec.cloud);
            generated = kept;
            in_prefill = true;
            progress = 0.0;
            consecutive = 0;
            stall = 0.0;
            continue;
        }
        let backoff = rec.backoff_delay_s(consecutive - 1, rng.random());
        w.idle(backoff, &energy);
        w.out.backoff_s += backoff;
        stall += backoff;
        if !rec.checkpoints {
            generated = 0;
            in_prefill = true;
            progress = 0.0;
            delivered = false;
        }
    }
    w.out.end_s = w.t;
    w.out.mean_erasure_rate = if w.passes > 0.0 { (w.erasure_tokens / w.passes).min(1.0) } else { 0.0 };
    w.out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cost::Conditions;
    use crate::device::DevicePreset;
    use crate::model::{ModelCosts, ModelPreset, Precisions};
    use crate::plan::{Plan, Precision};
    use rand::SeedableRng;

    /// Constant conditions; crossings fail with probability `down_p` in slots `down`.
    struct Source {
        slot_s: f64,
        view: SlotView,
        down: std::ops::Range<u64>,
        down_p: f64,
    }

    impl SlotSource for Source {
        fn slot_s(&self) -> f64 {
            self.slot_s
        }
        fn slot(&mut self, index: u64) -> SlotView {
            let mut v = self.view;
            if self.down.contains(&index) {
                v.crossing_failure_probability = self.down_p;
            }
            v
        }
    }

    fn conditions() -> Conditions {
        Conditions {
            up_rate_bps: 1e6,
            down_rate_bps: 1e6,
            one_way_s: 0.04,
            packet_loss_probability: 0.0,
            reliable: true,
            packet_bytes: 1500,
            cloud_load: 0.0,
            cloud_queue_quantum_s: 0.0,
            cloud_tpot_inflation: 2.5,
            edge_compute_available: 1.0,
        }
    }

    fn source(down: std::ops::Range<u64>, down_p: f64) -> Source {
        Source {
            slot_s: 1.0,
            view: SlotView {
                conditions: conditions(),
                crossing_failure_probability: 0.0,
                erasure_rate: 0.0,
                cloud_admission_wait_s: 0.0,
                cloud_reject_probability: 0.0,
            },
            down,
            down_p,
        }
    }

    /// A pass of 0.1 s edge compute plus one 1250 B crossing up (0.04 + 10 000 bit / 1 Mbit/s
    /// = 0.05 s): 0.15 s, one crossing.
    fn synthetic() -> RequestCosts {
        let pass = PassCost {
            edge_s: 0.1,
            crossings: [[1, 0, 0, 0], [0, 0, 0, 0]],
            payload_bytes: [1250.0, 0.0, 4.0, 0.0],
            ..PassCost::default()
        };
        RequestCosts { prefill: pass.clone(), decode: pass }
    }

    /// A short schedule for hand computations: d_k = min(0.1·2^k, 2), give up after 5
    /// consecutive failures.
    fn recovery(checkpoints: bool) -> RecoveryConfig {
        RecoveryConfig {
            checkpoints,
            initial_backoff_s: 0.1,
            max_backoff_s: 2.0,
            max_retries: 5,
            jitter_fraction: 0.0,
            ..RecoveryConfig::default()
        }
    }

    fn run(costs: &RequestCosts, rec: &RecoveryConfig, src: &mut Source, n_out: u32) -> ServiceOutcome {
        serve_with(costs, rec, src, n_out, false, None)
    }

    /// Serves a 16-token prompt from t = 0 on a Jetson next to an A100.
    fn serve_with(
        costs: &RequestCosts,
        rec: &RecoveryConfig,
        src: &mut Source,
        n_out: u32,
        uses_cloud: bool,
        fallback: Option<Fallback<'_>>,
    ) -> ServiceOutcome {
        let edge = DevicePreset::JetsonOrinNx16gb.profile();
        let cloud = DevicePreset::A100_80gbSxm.profile();
        let spec = ServeSpec {
            costs,
            streaming: false,
            uses_cloud,
            n_in: 16,
            n_out,
            fallback,
            recovery: rec,
            edge: &edge,
            cloud: &cloud,
        };
        serve(&spec, 0.0, src, &mut StreamRng::seed_from_u64(3))
    }

    #[test]
    fn passes_add_up_across_slots() {
        // 10 passes × 0.15 s, whatever the slot length.
        let costs = synthetic();
        for slot_s in [0.07, 0.5, 1.0, 100.0] {
            let mut src = source(0..0, 0.0);
            src.slot_s = slot_s;
            let out = run(&costs, &recovery(true), &mut src, 10);
            assert!((out.end_s - 1.5).abs() < 1e-12, "slot {slot_s}: {}", out.end_s);
            assert_eq!(out.crossings, 10);
            // Energy per pass: 20 W × 0.1 s + 2 W × 0.01 s (radio) + 5 W idle × 0.04 s.
            assert!((out.energy_j - 10.0 * (2.0 + 0.02 + 0.2)).abs() < 1e-9, "{}", out.energy_j);
        }
    }

    #[test]
    fn outage_with_checkpoints_resumes_at_the_failed_crossing() {
        // Slot 0: 7 passes (t = 1.05). Slot 1 is down: each attempt wastes 0.15 s, then backoffs
        // of 0.1, 0.2, 0.4 s: 1.05 → 1.2 → 1.3 → 1.45 → 1.65 → 1.8 → 2.2. Slot 2: the 3 remaining
        // passes: 2.65.
        let out = run(&synthetic(), &recovery(true), &mut source(1..2, 1.0), 10);
        assert!((out.end_s - 2.65).abs() < 1e-9, "{}", out.end_s);
        assert_eq!(out.failures, 3);
        assert!((out.backoff_s - 0.7).abs() < 1e-12);
        assert!(!out.failed && !out.fell_back);
    }

    #[test]
    fn outage_without_checkpoints_restarts_from_scratch() {
        // Same outage, but the 7 done passes are lost: from 2.2 all 10 passes run again → 3.7.
        let out = run(&synthetic(), &recovery(false), &mut source(1..2, 1.0), 10);
        assert!((out.end_s - 3.7).abs() < 1e-9, "{}", out.end_s);
        assert_eq!(out.failures, 3);
    }

    #[test]
    fn repeated_failures_give_up_without_a_fallback() {
        // Link down for good: 5 failed attempts of 0.15 s and backoffs 0.1 + 0.2 + 0.4 + 0.8.
        let out = run(&synthetic(), &recovery(true), &mut source(0..u64::MAX, 1.0), 10);
        assert!(out.failed);
        assert_eq!(out.failures, 5);
        assert!((out.end_s - (5.0 * 0.15 + 1.5)).abs() < 1e-9, "{}", out.end_s);
    }

    #[test]
    fn repeated_failures_fall_back_to_edge_only() {
        // GPT-2 Medium split at 12; the link is down for good. After 5 failures at the first
        // crossing (the prefill's hidden state), load the missing weights (1 s here) and run
        // everything on the edge: prefill + 9 decode passes of the edge-only plan.
        let c = ModelCosts::new(&ModelPreset::Gpt2Medium.arch(), Precisions { weight_bits: 16, kv_bits: 16 });
        let edge = DevicePreset::JetsonOrinNx16gb.profile();
        let cloud = DevicePreset::A100_80gbSxm.profile();
        let split = PlanProfile::new(&Plan::layer_split(24, 16, 12, Precision::Bits16), &c);
        let edge_only = PlanProfile::new(&Plan::edge_only(24, 16, Precision::Bits16), &c);
        let mut costs = RequestCosts::default();
        costs.fill(&split, 16, 10, &edge, &cloud);
        let rec = recovery(true);
        let spec = ServeSpec {
            costs: &costs,
            streaming: false,
            uses_cloud: true,
            n_in: 16,
            n_out: 10,
            fallback: Some(Fallback { profile: &edge_only, load_s: 1.0 }),
            recovery: &rec,
            edge: &edge,
            cloud: &cloud,
        };
        let mut src = source(0..u64::MAX, 1.0);
        let out = serve(&spec, 0.0, &mut src, &mut StreamRng::seed_from_u64(1));
        let cond = conditions();
        let t0 = costs.prefill.timing(&cond);
        let mut eo = RequestCosts::default();
        eo.fill(&edge_only, 16, 10, &edge, &cloud);
        let expected = 5.0 * t0.total_s / f64::from(t0.crossings)
            + 1.5
            + 1.0
            + eo.prefill.timing(&cond).total_s
            + 9.0 * eo.decode.timing(&cond).total_s;
        assert!(out.fell_back && !out.failed);
        assert!((out.end_s - expected).abs() < 1e-9, "{} vs {expected}", out.end_s);
    }

    #[test]
    fn streaming_adds_one_delivery_crossing() {
        // Cloud-only: prompt up in the prefill, decode in the cloud, then the last token down:
        // 0.04 s + 32 bit / 1 Mbit/s.
        let c = ModelCosts::new(&ModelPreset::Gpt2Medium.arch(), Precisions { weight_bits: 16, kv_bits: 16 });
        let edge = DevicePreset::JetsonOrinNx16gb.profile();
        let cloud = DevicePreset::A100_80gbSxm.profile();
        let prof = PlanProfile::new(&Plan::cloud_only(24, Precision::Bits16), &c);
        let mut costs = RequestCosts::default();
        costs.fill(&prof, 100, 20, &edge, &cloud);
        let rec = recovery(true);
        let spec = ServeSpec {
            costs: &costs,
            streaming: true,
            uses_cloud: true,
            n_in: 100,
            n_out: 20,
            fallback: None,
            recovery: &rec,
            edge: &edge,
            cloud: &cloud,
        };
        let out = serve(&spec, 0.0, &mut source(0..0, 0.0), &mut StreamRng::seed_from_u64(1));
        let cond = conditions();
        let expected = costs.prefill.timing(&cond).total_s + 19.0 * costs.decode.timing(&cond).total_s + 0.04 + 32e-6;
        assert!((out.end_s - expected).abs() < 1e-12);
        assert_eq!(out.crossings, 2);
    }

    #[test]
    fn checkpoints_cut_mean_latency_under_random_failures() {
        // 20 % of crossings fail: restarting from scratch must cost more on average.
        let costs = synthetic();
        let mean = |checkpoints: bool| {
            let rec = RecoveryConfig { max_retries: 1000, ..recovery(checkpoints) };
            let mut total = 0.0;
            for seed in 0..300 {
                let edge = DevicePreset::JetsonOrinNx16gb.profile();
                let spec = ServeSpec {
                    costs: &costs,
                    streaming: false,
                    uses_cloud: false,
                    n_in: 16,
                    n_out: 20,
                    fallback: None,
                    recovery: &rec,
                    edge: &edge,
                    cloud: &edge,
                };
                total += serve(&spec, 0.0, &mut source(0..u64::MAX, 0.2), &mut StreamRng::seed_from_u64(seed)).end_s;
            }
            total / 300.0
        };
        let (with, without) = (mean(true), mean(false));
        // With checkpoints: 20 passes + ~0.25 failures per pass × (0.15 s + backoff ≥ 0.1 s).
        assert!(with > 3.0 && with < 12.0, "{with}");
        assert!(without > 2.0 * with, "{without} vs {with}");
    }

    fn run_with(
        rec: &RecoveryConfig,
        src: &mut Source,
        uses_cloud: bool,
        fallback: Option<Fallback<'_>>,
    ) -> ServiceOutcome {
        serve_with(&synthetic(), rec, src, 10, uses_cloud, fallback)
    }

    #[test]
    fn default_recovery_stalls_through_an_outage_like_tcp_and_never_falls_back_on_its_own() {
        // Slots 1..21 down. Slot 0 runs 7 passes (t = 1.05). Then the TCP schedule: each attempt
        // 0.15 s and RTOs 0.2, 0.4, … 12.8 s: 1.05 → 1.2 → 1.4 → 1.55 → 1.95 → 2.1 → 2.9 → 3.05
        // → 4.65 → 4.8 → 8.0 → 8.15 → 14.55 → 14.7 → 27.5, past the outage; the 3 remaining
        // passes end at 27.95. The old default (5 failures, then edge-only) hid this stall.
        let rec = RecoveryConfig::default();
        let out = run_with(&rec, &mut source(1..21, 1.0), false, None);
        assert!((out.end_s - 27.95).abs() < 1e-9, "{}", out.end_s);
        assert_eq!(out.failures, 7);
        assert!(!out.failed && !out.fell_back);
    }

    #[test]
    fn rejections_are_retried_by_the_sdk_then_the_request_fails() {
        // The API rejects every attempt: 3 attempts (2 retries), each a round trip of 0.08 s,
        // with SDK backoffs 0.5 and 1.0 s (jitter off) between them, then an error.
        let mut rec = RecoveryConfig::default();
        rec.api.jitter_fraction = 0.0;
        let mut src = source(0..0, 0.0);
        src.view.cloud_reject_probability = 1.0;
        let out = run_with(&rec, &mut src, true, None);
        assert!(out.failed && !out.fell_back);
        assert_eq!((out.rejections, out.failures), (3, 0));
        assert!((out.end_s - (3.0 * 0.08 + 1.5)).abs() < 1e-12, "{}", out.end_s);
    }

    #[test]
    fn admission_wait_is_paid_once_per_request_not_per_token() {
        // A 2 s admission queue before 10 passes of 0.15 s: 3.5 s, the edge idle meanwhile.
        let rec = recovery(true);
        let mut src = source(0..0, 0.0);
        src.view.cloud_admission_wait_s = 2.0;
        let out = run_with(&rec, &mut src, true, None);
        assert!((out.end_s - 3.5).abs() < 1e-9, "{}", out.end_s);
        assert!((out.cloud_queue_s - 2.0).abs() < 1e-12);
        let local = run_with(&rec, &mut src, false, None);
        assert!((local.end_s - 1.5).abs() < 1e-9, "a plan without cloud work is not admitted");
    }

    #[test]
    fn edge_fallback_is_opt_in_and_triggers_at_its_stall_timeout() {
        // GPT-2 Medium split at 12, link down for good; attempts of w = prefill/k. Stall after
        // n failures: n·w + Σ backoffs between them (0.1, 0.2, …). With after_s = 3w + 0.3 the
        // third failure reaches it: fall back after 3 failures, not after max_retries = 5.
        let c = ModelCosts::new(&ModelPreset::Gpt2Medium.arch(), Precisions { weight_bits: 16, kv_bits: 16 });
        let edge = DevicePreset::JetsonOrinNx16gb.profile();
        let cloud = DevicePreset::A100_80gbSxm.profile();
        let split = PlanProfile::new(&Plan::layer_split(24, 16, 12, Precision::Bits16), &c);
        let edge_only = PlanProfile::new(&Plan::edge_only(24, 16, Precision::Bits16), &c);
        let mut costs = RequestCosts::default();
        costs.fill(&split, 16, 10, &edge, &cloud);
        let t0 = costs.prefill.timing(&conditions());
        let w = t0.total_s / f64::from(t0.crossings);
        let mut rec = recovery(true);
        rec.fallback = crate::failure::FallbackConfig {
            kind: crate::failure::FallbackKind::EdgeOnly,
            after_s: 3.0 * w + 0.3 - 1e-9,
        };
        let spec = |fallback| ServeSpec {
            costs: &costs,
            streaming: false,
            uses_cloud: true,
            n_in: 16,
            n_out: 10,
            fallback,
            recovery: &rec,
            edge: &edge,
            cloud: &cloud,
        };
        let out = serve(
            &spec(Some(Fallback { profile: &edge_only, load_s: 0.0 })),
            0.0,
            &mut source(0..u64::MAX, 1.0),
            &mut StreamRng::seed_from_u64(1),
        );
        assert!(out.fell_back && !out.failed);
        assert_eq!(out.failures, 3);
        // Without the fallback (the default) the same request fails after 5.
        let out = serve(&spec(None), 0.0, &mut source(0..u64::MAX, 1.0), &mut StreamRng::seed_from_u64(1));
        assert!(out.failed && !out.fell_back);
        assert_eq!(out.failures, 5);
    }
}
