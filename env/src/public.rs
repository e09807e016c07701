//! The environment's public model: what a policy may compute with besides the observation and
//! the mask (system-model §10). Baselines plan with the same cost evaluator the environment
//! executes with, under conditions they *estimate* from the observation; an oracle baseline
//! instead reads the true conditions of the slot ([`slot_view`] of the env's
//! `oracle_conditions`) and is labelled as such.

pub use crate::conditions::{mean_view, slot_view};
use crate::cost::{PassTiming, PlanProfile};
use crate::failure::GeState;
use crate::model::TOKEN_ID_BYTES;
use crate::observation::{decode, index};
use crate::scenario::Scenario;
use crate::service::{EnergyModel, RequestCosts, SlotView};
use serde::{Deserialize, Serialize};

/// Conditions estimated from a `partition-v2` observation through the observation table's
/// decoders: the moving-average link rate, the last slot's SNR (→ packet loss through the link
/// model) and round-trip time, the moving-average cloud load, the edge's known compute
/// availability; the crossing failure probability of the link state the modem and the last probe
/// report (the scenario's Bad-state probability while disconnected or after a failed probe, the
/// Good-state one otherwise, at the last SNR); the admission wait the last probe's time to first
/// token shows; and the rejection probability of the overloaded regime after a rejected probe
/// (the least one otherwise). Before the first measurement the features hold the scenario's
/// means.
pub fn estimated_view(sc: &Scenario, obs: &[f32]) -> SlotView {
    let mean = mean_view(sc);
    let rate_bps = decode(obs, index::BANDWIDTH_EWMA);
    let snr_db = decode(obs, index::SNR_LAST);
    let loss = sc.link.packet_loss_probability(snr_db);
    let transport = sc.link.transport();
    let reliable = transport.mode == crate::link::TransportMode::Reliable;
    let rtt = decode(obs, index::RTT_LAST);
    let disconnected = decode(obs, index::LINK_CONNECTED) < 0.5 || decode(obs, index::PROBE_FAILED_LAST) > 0.5;
    let state = if disconnected && sc.ge.is_some() { GeState::Bad } else { GeState::Good };
    let mut p_fail = sc.config.failures.crossing_failure_probability(snr_db, sc.link.nakagami_m(), state);
    if disconnected && sc.ge.is_none() {
        // A failed probe without a link-state process: an outage at the last SNR, at least.
        p_fail = p_fail.max(mean.crossing_failure_probability);
    }
    let cl = &sc.config.cloud_load;
    let reject = if decode(obs, index::CLOUD_REJECTED_LAST) > 0.5 {
        cl.max_reject_probability()
    } else {
        cl.reject_probability.iter().copied().reduce(f64::min).unwrap_or(0.0)
    };
    SlotView {
        conditions: crate::cost::Conditions {
            up_rate_bps: rate_bps,
            down_rate_bps: rate_bps,
            one_way_s: rtt / 2.0,
            packet_loss_probability: if reliable { loss } else { 0.0 },
            cloud_load: decode(obs, index::CLOUD_LOAD_EWMA).min(cl.max_load),
            edge_compute_available: decode(obs, index::EDGE_COMPUTE_AVAILABLE).max(0.01),
            ..mean.conditions
        },
        crossing_failure_probability: p_fail,
        erasure_rate: transport.erasure_rate(loss),
        cloud_admission_wait_s: (decode(obs, index::CLOUD_TTFT_LAST) - rtt).max(0.0),
        cloud_reject_probability: reject,
    }
}

/// The median prompt and output lengths of the scenario's workload (a typical request).
pub fn typical_request(sc: &Scenario) -> (u32, u32) {
    let w = &sc.config.workload;
    let median = |l: &crate::workload::LengthConfig| (l.median_tokens.round() as u32).clamp(l.min_tokens, l.max_tokens);
    (median(&w.prompt_tokens), median(&w.output_tokens))
}

/// Expected cost of serving one request with a plan under fixed conditions, failures,
/// rejections and recovery included ([`estimate_from_costs`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RequestEstimate {
    /// Expected time from start to leaving the system (completed, fallen back or given up).
    pub latency_s: f64,
    pub edge_energy_j: f64,
    /// GPU time the shared cloud bills (without failures).
    pub cloud_gpu_s: f64,
    pub edge_compute_s: f64,
    pub cloud_busy_s: f64,
    /// Blocking crossings over the request (prefill + decode passes, + the streamed delivery),
    /// without retransmissions.
    pub crossings: f64,
    /// Accuracy loss (fraction) of the plan's boundary crossings at the view's erasure rate.
    pub accuracy_loss: f64,
    /// Probability that the request fails for good (the cloud path gave up, no fallback).
    pub failure_probability: f64,
    /// Probability that the request falls back to edge-only (scenario's opt-in fallback).
    pub fallback_probability: f64,
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
    let mut e = estimate_from_costs(sc, profile, scratch, n_out, view);
    if e.fallback_probability > 0.0 {
        // The fallback's own cost: the edge-only request, without kept tokens (an upper bound
        // when the cloud path gave up late).
        let edge_only = crate::plan::Plan::edge_only(sc.n_layers(), sc.n_heads(), crate::plan::Precision::Bits16);
        let eo = PlanProfile::new(&edge_only, &sc.costs);
        let mut c = RequestCosts::default();
        c.fill(&eo, n_in, n_out, &sc.edge, &sc.cloud);
        let fb = estimate_from_costs(sc, &eo, &c, n_out, view);
        e.latency_s += e.fallback_probability * fb.latency_s;
        e.edge_energy_j += e.fallback_probability * fb.edge_energy_j;
        e.edge_compute_s += e.fallback_probability * fb.edge_compute_s;
    }
    e
}

/// Time and edge energy, carried together through the expectation algebra below.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
struct Cost {
    t: f64,
    e: f64,
}

impl Cost {
    fn new(t: f64, e: f64) -> Self {
        Self { t, e }
    }
    fn add(self, o: Cost) -> Cost {
        Cost::new(self.t + o.t, self.e + o.e)
    }
    fn scale(self, k: f64) -> Cost {
        Cost::new(self.t * k, self.e * k)
    }
}

/// The law of one crossing under failure probability `p`: it succeeds after k < F failures
/// with probability p^k·(1 − p), costing the success attempt plus k failed attempts and the
/// backoffs d_0..d_{k−1}; after F consecutive failures the cloud path gives up, having spent F
/// failed attempts and F − 1 backoffs.
struct CrossingLaw {
    /// P(no give-up) = 1 − p^F.
    s: f64,
    /// E[cost · 1{no give-up}].
    ok: Cost,
    /// Cost of the give-up path.
    give_up: Cost,
}

fn crossing_law(
    p: f64,
    success: Cost,
    failure: Cost,
    give_up_after: u32,
    backoff: &dyn Fn(u32) -> Cost,
) -> CrossingLaw {
    let mut ok = Cost::default();
    let mut spent = Cost::default(); // k failed attempts and k backoffs
    let mut pk = 1.0;
    let f = give_up_after.max(1);
    for k in 0..f {
        ok = ok.add(success.add(spent).scale(pk * (1.0 - p)));
        spent = spent.add(failure);
        pk *= p;
        if k + 1 < f {
            spent = spent.add(backoff(k));
        }
        if pk == 0.0 {
            break;
        }
    }
    let give_up = spent;
    CrossingLaw { s: 1.0 - pk, ok, give_up }
}

/// Σ_{i<n} s^i and Σ_{i<n} i·s^{i−1}, stable when s is close to 1.
fn geometric_sums(s: f64, n: f64) -> (f64, f64) {
    let q = 1.0 - s;
    if q * n < 1e-6 {
        (n - q * n * (n - 1.0) / 2.0, n * (n - 1.0) / 2.0)
    } else {
        let sn = s.powf(n);
        let a = (1.0 - sn) / q;
        let b = (a - n * s.powf(n - 1.0)) / q;
        (a, b)
    }
}

/// Running expectation over the request's crossings in order: the mass and cost of the paths
/// still going, and the mass and cost of those that gave up.
#[derive(Default)]
struct Paths {
    alive: f64,
    alive_cost: Cost,
    gave_up: f64,
    gave_up_cost: Cost,
}

impl Paths {
    /// `n` i.i.d. crossings of law `law`.
    fn crossings(&mut self, n: f64, law: &CrossingLaw) {
        if n <= 0.0 {
            return;
        }
        let q = 1.0 - law.s;
        let (a, b) = geometric_sums(law.s, n);
        let sn = if q == 0.0 { 1.0 } else { law.s.powf(n) };
        let survive_cost = law.ok.scale(n * if q == 0.0 { 1.0 } else { law.s.powf(n - 1.0) });
        // Give up at crossing i (1-based): the i − 1 before went through, then the give-up path.
        let give_up_mass = self.alive * q * a;
        let give_up_cost = self
            .alive_cost
            .scale(q * a)
            .add(law.ok.scale(self.alive * q * b))
            .add(law.give_up.scale(self.alive * q * a));
        self.gave_up += give_up_mass;
        self.gave_up_cost = self.gave_up_cost.add(give_up_cost);
        self.alive_cost = self.alive_cost.scale(sn).add(survive_cost.scale(self.alive));
        self.alive *= sn;
    }

    /// A deterministic cost on every path still going.
    fn fixed(&mut self, c: Cost) {
        self.alive_cost = self.alive_cost.add(c.scale(self.alive));
    }
}

/// Smallest number of consecutive failures after which the cloud path gives up: the transport's
/// `max_retries`, or, with the edge fallback, the first failure at which the stall (failed
/// attempts of `attempt_s` plus the backoffs between them) reaches `fallback.after_s`.
fn give_up_after(sc: &Scenario, attempt_s: f64, fallback: bool) -> u32 {
    let r = &sc.config.recovery;
    let mut f = r.max_retries.max(1);
    if fallback {
        let mut stall = 0.0;
        for n in 1..=f {
            stall += attempt_s;
            if stall >= r.fallback.after_s {
                f = n;
                break;
            }
            stall += r.mean_backoff_delay_s(n - 1);
        }
    }
    f
}

/// [`estimate_request`] from pass costs already filled for the request (`RequestCosts::fill`),
/// so a policy that re-times the same plans every slot fills them once; the fallback's own cost
/// is left to `estimate_request` (this returns its probability).
///
/// Under the view's constant conditions the expectation is exact for the environment's walk
/// ([`crate::service::serve`]) with partition checkpoints: admission attempts (each rejected
/// with the view's probability, a round trip each, the SDK's mean backoffs), the admission
/// wait, then every crossing of the prefill, the decode passes and the streamed delivery as a
/// [`CrossingLaw`] (a failed attempt costs its share 1/k of the pass, the transport's mean
/// backoff follows, consecutive failures give up at `max_retries` or at the fallback's stall
/// timeout). Approximations: backoff jitter enters through its mean (exact without jitter, the
/// TCP default), the request's total `timeout_s` is not applied (it binds only after minutes of
/// failures), the slot boundaries at which the env re-reads conditions do not matter under
/// constant conditions; without checkpoints (restart from scratch) failures are charged as if
/// checkpoints existed, a lower bound.
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
        ..RequestEstimate::default()
    };
    let delivery = profile.streaming.then(|| {
        let x = crate::link::lossy_transfer_time_s(TOKEN_ID_BYTES, c.down_rate_bps, c.one_way_s);
        PassTiming { total_s: x, rx_s: TOKEN_ID_BYTES * 8.0 / c.down_rate_bps, crossings: 1, ..PassTiming::default() }
    });
    if let Some(d) = &delivery {
        e.latency_s += d.total_s;
        e.edge_energy_j += energy.pass_energy_j(d, 1.0);
        e.crossings += 1.0;
    }
    let uses_cloud = profile.uses_cloud();
    let p = view.crossing_failure_probability.clamp(0.0, 1.0);
    let r = if uses_cloud { view.cloud_reject_probability.clamp(0.0, 1.0) } else { 0.0 };
    let admission = if uses_cloud { view.cloud_admission_wait_s } else { 0.0 };
    if p <= 0.0 && r <= 0.0 {
        e.latency_s += admission;
        e.edge_energy_j += energy.idle_w * admission;
        return e;
    }
    let rec = &sc.config.recovery;
    let fallback = rec.edge_fallback() && uses_cloud && {
        let edge_only = crate::plan::Plan::edge_only(sc.n_layers(), sc.n_heads(), crate::plan::Precision::Bits16);
        sc.memory.plan_bytes(&edge_only) <= sc.edge.usable_memory_bytes
    };
    let mut paths = Paths { alive: 1.0, ..Paths::default() };
    if uses_cloud {
        // Admission attempts: a rejection costs a round trip; the SDK retries api.max_retries
        // times; an accepted attempt costs nothing more here.
        let rtt = 2.0 * c.one_way_s;
        let law =
            crossing_law(r, Cost::default(), Cost::new(rtt, energy.idle_w * rtt), rec.api.max_retries + 1, &|k| {
                let d = rec.api.mean_backoff_delay_s(k);
                Cost::new(d, energy.idle_w * d)
            });
        paths.crossings(1.0, &law);
        paths.fixed(Cost::new(admission, energy.idle_w * admission));
    }
    let backoff = |k: u32| {
        let d = rec.mean_backoff_delay_s(k);
        Cost::new(d, energy.idle_w * d)
    };
    let mut passes = vec![(pre, 1.0), (dec, decodes)];
    if let Some(d) = delivery {
        passes.push((d, 1.0));
    }
    for (t, n_passes) in passes {
        if t.crossings == 0 {
            paths.fixed(Cost::new(t.total_s, energy.pass_energy_j(&t, 1.0)).scale(n_passes));
            continue;
        }
        let k = f64::from(t.crossings);
        let share = Cost::new(t.total_s / k, energy.pass_energy_j(&t, 1.0 / k));
        let law = crossing_law(p, share, share, give_up_after(sc, share.t, fallback), &backoff);
        paths.crossings(n_passes * k, &law);
    }
    let total = paths.alive_cost.add(paths.gave_up_cost);
    e.latency_s = total.t;
    e.edge_energy_j = total.e;
    if fallback {
        e.fallback_probability = paths.gave_up;
    } else {
        e.failure_probability = paths.gave_up;
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
