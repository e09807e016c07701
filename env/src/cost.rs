//! The one cost evaluator every policy and baseline goes through (system-model.md §2–§6).
//!
//! A plan is turned once into a [`PlanProfile`]: the dataflow of one forward pass as a sequence
//! of compute stages on the edge or the cloud, link crossings between them, and "parallel"
//! layers whose heads run on both sides at once. A profile is then evaluated for a pass (prefill
//! of `n_in` tokens, or one decode step at a context) into a [`PassCost`] at full availability,
//! and a pass cost is timed under one slot's [`Conditions`] (link rate, latency, loss, cloud load,
//! edge availability) in O(crossing kinds + parallel layers).
//!
//! Dataflow rules (the residual stream lives on one side at a time):
//! - the embedding runs on the edge (tokens are produced and consumed there), except in the
//!   cloud-only plan, which sends the prompt's token ids once, runs everything in the cloud and
//!   streams tokens back without blocking generation (§2);
//! - a layer's heads need the layer input on their side: it crosses if it is elsewhere;
//! - head outputs (each head carries its W_O slice, so each side produces a partial sum) are
//!   gathered, with the residual, on the side where the FFN starts (edge for an edge or split
//!   FFN, cloud for a cloud FFN); a side that holds a partial sum or the residual sends one
//!   hidden-sized tensor;
//! - a split FFN computes its first projection(s) on the edge and sends the intermediate
//!   activation plus the residual stream (d_ff + d_model values) to the cloud, which runs the
//!   down projection and the residual add;
//! - the LM head runs where the last layer's output is; if that is the cloud, the sampled token
//!   id crosses down, and the next token's embedding (on the edge) must wait for it: every
//!   boundary costs a crossing per generated token.
//!
//! When a layer's heads are split between the sides, both branches run concurrently and the
//! layer's attention phase takes the longer branch (crossings included).

use crate::device::DeviceProfile;
use crate::model::{ModelCosts, Pass, SegmentCost, TOKEN_ID_BYTES, boundary_bytes};
use crate::plan::{FfnMode, Plan};
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Side {
    Edge,
    Cloud,
}

/// What a crossing carries. Hidden and FFN tensors are quantised to the plan's precision and
/// may be erased in lossy mode; token ids and prompts are control data, always sent reliably
/// at full precision (an erased token id would be meaningless).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Payload {
    Hidden,
    FfnIntermediate,
    TokenId,
    Prompt,
}

impl Payload {
    const COUNT: usize = 4;

    fn index(self) -> usize {
        self as usize
    }

    /// Whether this payload is a boundary tensor (quantised, subject to erasure).
    pub fn is_tensor(self) -> bool {
        matches!(self, Payload::Hidden | Payload::FfnIntermediate)
    }
}

/// A compute stage on one side: one roofline plus one launch.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
struct Stage {
    side: Side,
    cost: SegmentCost,
    /// LM head: only the sampled position's logits are computed (n = 1 per pass).
    single_position: bool,
}

/// A layer whose heads run on both sides at once.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
struct ParallelLayer {
    edge: SegmentCost,
    cloud: SegmentCost,
    /// The layer input crosses down to the edge heads first.
    edge_in: bool,
    /// The edge partial sum crosses up to the gather side.
    edge_out: bool,
    /// The layer input crosses up to the cloud heads first.
    cloud_in: bool,
    /// The cloud partial sum crosses down to the gather side.
    cloud_out: bool,
}

/// The dataflow of one forward pass of a plan, independent of request length and conditions.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PlanProfile {
    stages: Vec<Stage>,
    /// Cloud stages entered from the edge (each one waits in the shared cloud's queue).
    cloud_visits: u32,
    /// Sequential crossings per pass, counted by payload: [up, down].
    crossings: [[u32; Payload::COUNT]; 2],
    parallel: Vec<ParallelLayer>,
    /// Cloud-only: prompt ids cross once, tokens stream back without blocking.
    pub streaming: bool,
    /// Relative depth (layer / L) of every boundary-tensor crossing point per pass, for the
    /// accuracy model (quantisation and erasure losses add per crossing point).
    pub tensor_crossing_depths: Vec<f64>,
    /// Fraction of the per-token weight traffic that runs on the edge.
    pub edge_share: f64,
    /// Precision of boundary tensors.
    pub bits: u8,
    hidden_values: f64,
    ffn_values: f64,
    /// Builder state: the residual stream is in a cloud run already counted as a visit.
    #[serde(skip)]
    in_cloud_run: bool,
}

impl PlanProfile {
    /// Builds the dataflow of `plan` (whose shape must match the model: callers validate).
    pub fn new(plan: &Plan, costs: &ModelCosts) -> Self {
        let a = &costs.arch;
        let n_layers = a.n_layers as f64;
        let mut p = PlanProfile {
            stages: Vec::with_capacity(3 * a.n_layers as usize + 1),
            cloud_visits: 0,
            crossings: [[0; Payload::COUNT]; 2],
            parallel: Vec::new(),
            streaming: plan.is_cloud_only(),
            tensor_crossing_depths: Vec::new(),
            edge_share: 0.0,
            bits: plan.precision.bits(),
            hidden_values: costs.hidden_values(),
            ffn_values: costs.ffn_split_values(),
            in_cloud_run: false,
        };
        let all_heads = costs.head.scaled(a.n_heads as f64);
        let mut ffn = costs.ffn_first;
        ffn.add(&costs.ffn_down);
        let total_weights = (all_heads.weight_bytes + ffn.weight_bytes) * n_layers + costs.lm_head.weight_bytes;
        if p.streaming {
            // Prompt ids up once (counted per prefill by the evaluator), everything in the cloud,
            // with the same stages (one launch for a layer's heads, one for its FFN) as the cloud
            // part of any other plan.
            for _ in 0..a.n_layers {
                p.compute(Side::Cloud, all_heads, false);
                p.compute(Side::Cloud, ffn, false);
            }
            p.compute(Side::Cloud, costs.lm_head, true);
            return p;
        }
        let mut edge_weights = 0.0;
        let mut side = Side::Edge;
        for (l, placement) in plan.layers.iter().enumerate() {
            let depth = l as f64 / n_layers;
            let h_edge = f64::from(placement.edge_heads);
            let h_cloud = a.n_heads as f64 - h_edge;
            let gather = if placement.ffn == FfnMode::Cloud { Side::Cloud } else { Side::Edge };
            edge_weights += costs.head.weight_bytes * h_edge;
            if h_edge > 0.0 && h_cloud > 0.0 {
                let par = ParallelLayer {
                    edge: costs.head.scaled(h_edge),
                    cloud: costs.head.scaled(h_cloud),
                    edge_in: side == Side::Cloud,
                    edge_out: gather == Side::Cloud,
                    cloud_in: side == Side::Edge,
                    cloud_out: gather == Side::Edge,
                };
                let n_cross = [par.edge_in, par.edge_out, par.cloud_in, par.cloud_out].iter().filter(|&&b| b).count();
                p.tensor_crossing_depths.extend(std::iter::repeat_n(depth, n_cross));
                p.parallel.push(par);
                // The cloud branch's queue wait is timed inside the branch; a cloud FFN that
                // follows continues that visit.
                p.in_cloud_run = gather == Side::Cloud;
                side = gather;
            } else {
                let heads_side = if h_edge > 0.0 { Side::Edge } else { Side::Cloud };
                p.cross(&mut side, heads_side, Payload::Hidden, depth);
                p.compute(side, all_heads, false);
                p.cross(&mut side, gather, Payload::Hidden, depth);
            }
            match placement.ffn {
                FfnMode::Edge => {
                    edge_weights += ffn.weight_bytes;
                    p.compute(Side::Edge, ffn, false);
                }
                FfnMode::Cloud => p.compute(Side::Cloud, ffn, false),
                FfnMode::Split => {
                    edge_weights += costs.ffn_first.weight_bytes;
                    p.compute(Side::Edge, costs.ffn_first, false);
                    p.cross(&mut side, Side::Cloud, Payload::FfnIntermediate, depth);
                    p.compute(Side::Cloud, costs.ffn_down, false);
                }
            }
        }
        p.compute(side, costs.lm_head, true);
        if side == Side::Edge {
            edge_weights += costs.lm_head.weight_bytes;
        } else {
            let mut s = side;
            p.cross(&mut s, Side::Edge, Payload::TokenId, 1.0);
        }
        p.edge_share = edge_weights / total_weights;
        p
    }

    /// Appends a compute stage; a cloud stage that starts a new cloud run is a visit (it queues
    /// behind the shared cloud's background work).
    fn compute(&mut self, side: Side, cost: SegmentCost, single_position: bool) {
        match side {
            Side::Cloud if !self.in_cloud_run => {
                self.cloud_visits += 1;
                self.in_cloud_run = true;
            }
            Side::Cloud => {}
            Side::Edge => self.in_cloud_run = false,
        }
        self.stages.push(Stage { side, cost, single_position });
    }

    /// Moves the residual stream to `to`, recording a crossing if it is elsewhere.
    fn cross(&mut self, side: &mut Side, to: Side, payload: Payload, depth: f64) {
        if *side == to {
            return;
        }
        let dir = if to == Side::Cloud { 0 } else { 1 };
        self.crossings[dir][payload.index()] += 1;
        if payload.is_tensor() {
            self.tensor_crossing_depths.push(depth);
        }
        // Arriving in the cloud starts a new run: the next cloud stage queues again.
        self.in_cloud_run = false;
        *side = to;
    }

    /// Whether any of the plan's work runs in the cloud (its requests are admitted there).
    pub fn uses_cloud(&self) -> bool {
        self.streaming || self.cloud_visits > 0 || !self.parallel.is_empty()
    }

    /// Blocking crossings per decode step (what failures and round trips are counted on).
    pub fn crossings_per_token(&self) -> u32 {
        let seq: u32 = self.crossings.iter().flatten().sum();
        let par: u32 = self
            .parallel
            .iter()
            .map(|p| [p.edge_in, p.edge_out, p.cloud_in, p.cloud_out].iter().filter(|&&b| b).count() as u32)
            .sum();
        seq + par
    }

    /// Evaluates the profile for one pass at full availability.
    pub fn pass_cost(&self, pass: Pass, edge: &DeviceProfile, cloud: &DeviceProfile, out: &mut PassCost) {
        out.edge_s = 0.0;
        out.cloud_s = 0.0;
        out.parallel.clear();
        let pairs = pass.attended_pairs();
        let keys = pass.distinct_keys();
        for st in &self.stages {
            // The LM head computes one position's logits and attends nothing.
            let (n, pairs, keys) = if st.single_position { (1.0, 0.0, 0.0) } else { (pass.n, pairs, keys) };
            let flops = st.cost.flops(n, pairs);
            let bytes = st.cost.bytes(n, keys);
            match st.side {
                Side::Edge => out.edge_s += edge.segment_time_s(flops, bytes),
                Side::Cloud => out.cloud_s += cloud.segment_time_s(flops, bytes),
            }
        }
        out.cloud_visits = self.cloud_visits;
        for par in &self.parallel {
            out.parallel.push(ParallelCost {
                edge_s: edge.segment_time_s(par.edge.flops(pass.n, pairs), par.edge.bytes(pass.n, keys)),
                cloud_s: cloud.segment_time_s(par.cloud.flops(pass.n, pairs), par.cloud.bytes(pass.n, keys)),
                edge_in: par.edge_in,
                edge_out: par.edge_out,
                cloud_in: par.cloud_in,
                cloud_out: par.cloud_out,
            });
        }
        let bits = self.bits;
        out.payload_bytes = [
            boundary_bytes(self.hidden_values * pass.n, bits),
            boundary_bytes(self.ffn_values * pass.n, bits),
            TOKEN_ID_BYTES,
            TOKEN_ID_BYTES * pass.n,
        ];
        out.crossings = self.crossings;
        if self.streaming {
            // Only the prefill sends the prompt; decode steps send nothing (tokens stream back
            // without blocking; the evaluator adds the final delivery once per request).
            out.crossings = [[0; Payload::COUNT]; 2];
            if pass.context == 0.0 {
                out.crossings[0][Payload::Prompt.index()] = 1;
            }
        }
    }
}

/// One parallel layer of a pass at full availability.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ParallelCost {
    pub edge_s: f64,
    pub cloud_s: f64,
    pub edge_in: bool,
    pub edge_out: bool,
    pub cloud_in: bool,
    pub cloud_out: bool,
}

/// A pass of a plan at full availability: compute times and what crosses the link.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PassCost {
    /// Sequential compute (roofline + launch) on each side.
    pub edge_s: f64,
    pub cloud_s: f64,
    pub cloud_visits: u32,
    /// Sequential crossings by direction ([up, down]) and payload.
    pub crossings: [[u32; Payload::COUNT]; 2],
    /// Bytes of one crossing of each payload in this pass.
    pub payload_bytes: [f64; Payload::COUNT],
    pub parallel: Vec<ParallelCost>,
}

/// The conditions of one slot that a pass is timed under.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Conditions {
    pub up_rate_bps: f64,
    pub down_rate_bps: f64,
    pub one_way_s: f64,
    pub packet_loss_probability: f64,
    pub reliable: bool,
    pub packet_bytes: u32,
    /// Background utilisation of the shared cloud, in [0, 1).
    pub cloud_load: f64,
    /// Per-token slowdown of cloud compute: `1 + cloud_tpot_inflation·cloud_load` (continuous
    /// batching: a busier batch makes each iteration longer, [`crate::background`]).
    pub cloud_tpot_inflation: f64,
    /// Iteration length of the shared cloud's batch server: a visit waits
    /// `cloud_load·quantum/2` on average ([`crate::background::cloud_wait_s`]).
    pub cloud_queue_quantum_s: f64,
    /// Fraction of the edge's compute available to us, in (0, 1].
    pub edge_compute_available: f64,
}

/// A pass timed under conditions.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PassTiming {
    pub total_s: f64,
    /// Edge busy computing for this pass.
    pub edge_compute_s: f64,
    /// Edge radio transmitting / receiving (serialisation, retransmissions included).
    pub tx_s: f64,
    pub rx_s: f64,
    /// Cloud GPU time at full capacity (what the shared cloud bills).
    pub cloud_gpu_s: f64,
    /// Cloud wall time of our work (slowed by the background load).
    pub cloud_busy_s: f64,
    /// Blocking crossings in this pass.
    pub crossings: u32,
}

impl Conditions {
    #[inline]
    fn transfer_s(&self, bytes: f64, rate_bps: f64) -> f64 {
        if self.reliable {
            crate::link::reliable_transfer_time_s(
                bytes,
                rate_bps,
                self.one_way_s,
                self.packet_loss_probability,
                self.packet_bytes,
            )
        } else {
            crate::link::lossy_transfer_time_s(bytes, rate_bps, self.one_way_s)
        }
    }

    /// Radio-on time of a transfer (serialisation, including expected retransmissions).
    #[inline]
    fn radio_s(&self, bytes: f64, rate_bps: f64) -> f64 {
        let ser = bytes * 8.0 / rate_bps;
        if self.reliable { ser / (1.0 - self.packet_loss_probability).max(1e-9) } else { ser }
    }

    #[inline]
    fn cloud_slowdown(&self) -> f64 {
        1.0 + self.cloud_tpot_inflation * self.cloud_load
    }

    #[inline]
    fn cloud_wait_s(&self) -> f64 {
        crate::background::cloud_wait_s(self.cloud_load, self.cloud_queue_quantum_s)
    }
}

impl PassCost {
    /// Times the pass under `c`.
    pub fn timing(&self, c: &Conditions) -> PassTiming {
        let slow = c.cloud_slowdown();
        let wait = c.cloud_wait_s();
        let avail = c.edge_compute_available;
        let mut t = PassTiming {
            edge_compute_s: self.edge_s / avail,
            cloud_gpu_s: self.cloud_s,
            cloud_busy_s: self.cloud_s * slow,
            ..PassTiming::default()
        };
        t.total_s = t.edge_compute_s + t.cloud_busy_s + f64::from(self.cloud_visits) * wait;
        for (k, &bytes) in self.payload_bytes.iter().enumerate() {
            let (up, down) = (self.crossings[0][k], self.crossings[1][k]);
            if up > 0 {
                let n = f64::from(up);
                t.total_s += n * c.transfer_s(bytes, c.up_rate_bps);
                t.tx_s += n * c.radio_s(bytes, c.up_rate_bps);
            }
            if down > 0 {
                let n = f64::from(down);
                t.total_s += n * c.transfer_s(bytes, c.down_rate_bps);
                t.rx_s += n * c.radio_s(bytes, c.down_rate_bps);
            }
            t.crossings += up + down;
        }
        if !self.parallel.is_empty() {
            let hidden = self.payload_bytes[Payload::Hidden.index()];
            let (x_up, x_down) = (c.transfer_s(hidden, c.up_rate_bps), c.transfer_s(hidden, c.down_rate_bps));
            let (r_up, r_down) = (c.radio_s(hidden, c.up_rate_bps), c.radio_s(hidden, c.down_rate_bps));
            for p in &self.parallel {
                let edge_s = p.edge_s / avail;
                let edge_branch =
                    f64::from(u8::from(p.edge_in)) * x_down + edge_s + f64::from(u8::from(p.edge_out)) * x_up;
                let cloud_branch = f64::from(u8::from(p.cloud_in)) * (x_up + wait)
                    + p.cloud_s * slow
                    + f64::from(u8::from(p.cloud_out)) * x_down;
                t.total_s += edge_branch.max(cloud_branch);
                t.edge_compute_s += edge_s;
                t.cloud_gpu_s += p.cloud_s;
                t.cloud_busy_s += p.cloud_s * slow;
                let ups = u32::from(p.edge_out) + u32::from(p.cloud_in);
                let downs = u32::from(p.edge_in) + u32::from(p.cloud_out);
                t.tx_s += f64::from(ups) * r_up;
                t.rx_s += f64::from(downs) * r_down;
                t.crossings += ups + downs;
            }
        }
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::device::DevicePreset;
    use crate::model::{ModelPreset, Precisions};
    use crate::plan::{LayerPlacement, Precision};

    fn gpt2m() -> ModelCosts {
        ModelCosts::new(&ModelPreset::Gpt2Medium.arch(), Precisions { weight_bits: 16, kv_bits: 16 })
    }

    fn ideal(rate_bps: f64, one_way_s: f64) -> Conditions {
        Conditions {
            up_rate_bps: rate_bps,
            down_rate_bps: rate_bps,
            one_way_s,
            packet_loss_probability: 0.0,
            reliable: true,
            packet_bytes: 1500,
            cloud_load: 0.0,
            cloud_queue_quantum_s: 0.01,
            cloud_tpot_inflation: 2.5,
            edge_compute_available: 1.0,
        }
    }

    fn devices() -> (DeviceProfile, DeviceProfile) {
        (DevicePreset::JetsonOrinNx16gb.profile(), DevicePreset::A100_80gbSxm.profile())
    }

    #[test]
    fn crossings_per_token_of_plan_shapes() {
        let c = gpt2m();
        let (l, h) = (24, 16);
        // Edge-only and cloud-only decode steps block on no crossing.
        assert_eq!(PlanProfile::new(&Plan::edge_only(l, h, Precision::Bits16), &c).crossings_per_token(), 0);
        let cloud = PlanProfile::new(&Plan::cloud_only(l, Precision::Bits16), &c);
        assert_eq!(cloud.crossings_per_token(), 0);
        assert!(cloud.streaming);
        // A layer split: hidden state up, sampled token down.
        let split = PlanProfile::new(&Plan::layer_split(l, h, 12, Precision::Bits16), &c);
        assert_eq!(split.crossings_per_token(), 2);
        assert_eq!(split.tensor_crossing_depths, vec![0.5]);
        // SplitLLM placement edge, cloud, edge: up at layer 1, down at layer 2, LM head on edge.
        let mut bits = vec![false; 24];
        bits[0] = true;
        bits[2..].iter_mut().for_each(|b| *b = true);
        let sw = PlanProfile::new(&Plan::from_edge_layers(&bits, h, Precision::Bits16), &c);
        assert_eq!(sw.crossings_per_token(), 2);
        // Split heads inside the edge region: the layer input goes up to the cloud heads and
        // their partial sum comes back (2), then the split at layer 3 (up) and the token (down).
        let mut p = Plan::layer_split(l, h, 3, Precision::Bits16);
        p.layers[2] = LayerPlacement { edge_heads: 8, ffn: FfnMode::Edge };
        assert_eq!(PlanProfile::new(&p, &c).crossings_per_token(), 4);
        // A split FFN at the boundary: the intermediate goes up instead of the hidden state.
        let mut q = Plan::layer_split(l, h, 3, Precision::Bits16);
        q.layers[3] = LayerPlacement { edge_heads: 16, ffn: FfnMode::Split };
        let qp = PlanProfile::new(&q, &c);
        assert_eq!(qp.crossings_per_token(), 2);
        assert_eq!(qp.crossings[0][Payload::FfnIntermediate.index()], 1);
        assert_eq!(qp.crossings[0][Payload::Hidden.index()], 0);
    }

    #[test]
    fn layer_split_decode_time_by_hand() {
        // GPT-2 Medium split at 12, decode at context 100. Edge: 12 layers × (heads stage + FFN
        // stage) rooflines + launches; cloud: 12 layers + LM head. Link: hidden 1024 values ×
        // 2 B = 2048 B up and a 4 B token down, each one-way 20 ms + bytes·8/10 Mbit/s.
        let c = gpt2m();
        let (edge, cloud) = devices();
        let prof = PlanProfile::new(&Plan::layer_split(24, 16, 12, Precision::Bits16), &c);
        let mut pc = PassCost::default();
        let pass = Pass::decode(100.0);
        prof.pass_cost(pass, &edge, &cloud, &mut pc);
        let stage = |d: &DeviceProfile, s: &SegmentCost| {
            d.roofline_s(s.flops(1.0, 101.0), s.bytes(1.0, 101.0)) + d.launch_overhead_s
        };
        let heads = c.head.scaled(16.0);
        let mut ffn = c.ffn_first;
        ffn.add(&c.ffn_down);
        let layer = |d: &DeviceProfile| stage(d, &heads) + stage(d, &ffn);
        let lm = cloud.roofline_s(c.lm_head.flops(1.0, 0.0), c.lm_head.bytes(1.0, 0.0)) + cloud.launch_overhead_s;
        assert!((pc.edge_s - 12.0 * layer(&edge)).abs() < 1e-12);
        assert!((pc.cloud_s - (12.0 * layer(&cloud) + lm)).abs() < 1e-12);
        let t = pc.timing(&ideal(10e6, 0.02));
        let link = (0.02 + 2048.0 * 8.0 / 10e6) + (0.02 + 4.0 * 8.0 / 10e6);
        assert!((t.total_s - (pc.edge_s + pc.cloud_s + link)).abs() < 1e-12);
        assert_eq!(t.crossings, 2);
        assert!((t.tx_s - 2048.0 * 8.0 / 10e6).abs() < 1e-15);
        assert!((t.rx_s - 4.0 * 8.0 / 10e6).abs() < 1e-15);
    }

    #[test]
    fn cloud_only_sends_the_prompt_once_and_streams() {
        let c = gpt2m();
        let (edge, cloud) = devices();
        let prof = PlanProfile::new(&Plan::cloud_only(24, Precision::Bits16), &c);
        let mut pc = PassCost::default();
        prof.pass_cost(Pass::prefill(128.0), &edge, &cloud, &mut pc);
        let t = pc.timing(&ideal(10e6, 0.02));
        // 128 token ids × 4 B up: 0.02 s + 4096 bit / 10 Mbit/s.
        assert!((t.total_s - (pc.cloud_s + 0.02 + 4096.0 / 10e6)).abs() < 1e-12);
        assert_eq!(pc.edge_s, 0.0);
        prof.pass_cost(Pass::decode(128.0), &edge, &cloud, &mut pc);
        let t = pc.timing(&ideal(10e6, 0.02));
        assert_eq!(t.crossings, 0);
        assert_eq!(t.total_s, pc.cloud_s);
    }

    #[test]
    fn parallel_heads_take_the_longer_branch() {
        // Layer 0 splits its heads in an otherwise edge-only plan: the cloud branch is
        // up + wait + cloud heads + down; the edge branch is the edge heads alone.
        let c = gpt2m();
        let (edge, cloud) = devices();
        let mut plan = Plan::edge_only(24, 16, Precision::Bits16);
        plan.layers[0].edge_heads = 4;
        let prof = PlanProfile::new(&plan, &c);
        let mut pc = PassCost::default();
        prof.pass_cost(Pass::decode(10.0), &edge, &cloud, &mut pc);
        assert_eq!(pc.parallel.len(), 1);
        let par = pc.parallel[0];
        let x = 0.02 + 2048.0 * 8.0 / 10e6;
        let slow_link = pc.timing(&ideal(10e6, 0.02));
        assert!((slow_link.total_s - (pc.edge_s + (2.0 * x + par.cloud_s).max(par.edge_s))).abs() < 1e-12);
        assert!(2.0 * x + par.cloud_s > par.edge_s, "the link branch dominates here");
        // With a very slow edge, the edge branch dominates.
        let mut c2 = ideal(10e6, 0.02);
        c2.edge_compute_available = 1e-4;
        let t = pc.timing(&c2);
        let e = par.edge_s / 1e-4;
        assert!((t.total_s - (pc.edge_s / 1e-4 + e.max(2.0 * x + par.cloud_s))).abs() < 1e-9);
        assert!(e > 2.0 * x + par.cloud_s);
    }

    #[test]
    fn busy_cloud_inflates_tokens_mildly() {
        // ρ = 0.5: cloud compute ×(1 + 2.5 × 0.5) = 2.25 (continuous batching, not processor
        // sharing's 1/(1 − ρ)) and one visit waits 0.5 × 10 ms / 2. At ρ = 0.9 the token is
        // 3.25× slower, not 10×: the steep part of a busy cloud is the admission wait
        // (`background::admission_wait_s`), paid once per request.
        let c = gpt2m();
        let (edge, cloud) = devices();
        let prof = PlanProfile::new(&Plan::cloud_only(24, Precision::Bits16), &c);
        let mut pc = PassCost::default();
        prof.pass_cost(Pass::decode(50.0), &edge, &cloud, &mut pc);
        let mut cond = ideal(10e6, 0.02);
        cond.cloud_load = 0.5;
        let t = pc.timing(&cond);
        assert!((t.total_s - (2.25 * pc.cloud_s + 0.0025)).abs() < 1e-12);
        assert_eq!(t.cloud_gpu_s, pc.cloud_s);
        assert!((t.cloud_busy_s - 2.25 * pc.cloud_s).abs() < 1e-15);
        cond.cloud_load = 0.9;
        let busy = pc.timing(&cond);
        assert!((busy.cloud_busy_s / pc.cloud_s - 3.25).abs() < 1e-12);
    }

    #[test]
    fn edge_share_of_a_layer_split() {
        // Split at 6 of 24: 6 layers of weights over 24 layers + the LM head's weights.
        let c = gpt2m();
        let prof = PlanProfile::new(&Plan::layer_split(24, 16, 6, Precision::Bits16), &c);
        let layer = c.layer_weight_bytes();
        let expected = 6.0 * layer / (24.0 * layer + c.lm_head.weight_bytes);
        assert!((prof.edge_share - expected).abs() < 1e-12);
        let all = PlanProfile::new(&Plan::edge_only(24, 16, Precision::Bits16), &c);
        assert!((all.edge_share - 1.0).abs() < 1e-12);
    }

    #[test]
    fn quantisation_shrinks_boundary_bytes() {
        let c = gpt2m();
        let (edge, cloud) = devices();
        let mut pc = PassCost::default();
        PlanProfile::new(&Plan::layer_split(24, 16, 6, Precision::Bits4), &c).pass_cost(
            Pass::decode(10.0),
            &edge,
            &cloud,
            &mut pc,
        );
        // 1024 values at 4 bit = 512 B + 16 group scales × 2 B.
        assert_eq!(pc.payload_bytes[Payload::Hidden.index()], 544.0);
        assert_eq!(pc.payload_bytes[Payload::TokenId.index()], 4.0);
    }
}
