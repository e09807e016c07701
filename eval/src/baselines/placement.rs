//! SplitLLM's placement problem (Mudvari et al., arXiv 2410.10759; system-model §10): place each
//! layer whole on the edge or in the cloud, several edge↔cloud switches allowed, to minimise the
//! cloud's work for a request subject to a latency SLA, the edge memory and the privacy floor.
//! This module owns the problem ([`PlacementInstance`]), its dynamic programme and the greedy
//! baseline SplitLLM compares against ([`PlacementSolver`], [`greedy`]), the derivation of an
//! instance from a scenario through the env's cost evaluator ([`PlacementModel`]), and the
//! policies `splitllm-dp` and `greedy` ([`PlacementPolicy`]).
//!
//! **Additive latency.** The dataflow rules of `splitwise_env::cost` make the latency of a
//! whole-layer placement additive: the residual stream starts on the edge (the embedding runs
//! there); layer `i` costs its compute on its side (edge time / edge availability; cloud time ×
//! the batching inflation 1 + tpot_inflation·load); entering the cloud costs the hidden state's way
//! up plus one iteration wait of the shared cloud, leaving it the hidden state's way down; the LM
//! head runs where the last layer is, and from the cloud the sampled token id comes down. Each
//! term is summed over the prefill pass and the `n_out − 1` decode passes at the mean context,
//! exactly as the env's request estimate does; cloud-only is the exception (the prompt goes up
//! once and tokens stream back), so its latency is the evaluator's own estimate of that plan.
//! Every placement that uses the cloud also waits once for admission (the queueing part of its
//! time to first token, `admission_s`): a constant, so the DP meets the SLA with that much less
//! slack and edge-only, the one placement without it, is checked first. The additive latency is
//! the failure-free one (failures and rejections are the estimate's, not the DP's).
//! Every per-term time is obtained from the evaluator itself (device rooflines of the same
//! segments, and `PassCost::timing` of one-term probe passes for transfers, waits, slowdown and
//! edge availability), and a test checks that the additive latency of random placements equals
//! `estimate_request` to 1e-9 relative.
//!
//! **Cloud work** is the GPU time the shared cloud bills for the typical request (`cloud_gpu_s`,
//! at full capacity: independent of the cloud's load, so the objective is exact).
//!
//! **The DP** runs over layers with state (side of the residual stream, edge layers so far,
//! latency on the grid) → least cloud work. Latency is discretised on an SLA grid of
//! `cells = ⌈(L + 1)/DP_SLA_SLACK⌉` cells of δ = SLA/cells; each layer's step (its compute plus
//! the switch into it) and the end (LM head, token down) are rounded *up* to whole cells, so a
//! plan the DP accepts always meets the SLA, and since at most L + 1 roundings each add < δ, every
//! plan whose true latency is at most (1 − DP_SLA_SLACK)·SLA is representable: the DP's cloud work
//! is at most the optimum under a 2 % tighter SLA. With integer latencies and δ = 1 it is exact
//! (the brute-force test). The edge-layer count is tracked only when memory binds (edge-only
//! does not fit); the count limit depends on whether the LM head is on the edge (its untied
//! weights then count). Cost: O(L·2·C·cells) with C = 1 when memory does not bind.
//!
//! **Greedy** (our reading of SplitLLM's greedy baseline): start from cloud-only (the privacy
//! floor on the edge), walk the layers in order and move a layer to the edge whenever that lowers
//! the cloud work and the plan still meets the SLA and fits the memory.
//!
//! When no placement meets the SLA (e.g. the link is down and edge-only does not fit), both
//! policies serve the fastest feasible placement ([`PlacementSolver::min_latency`], an exact
//! shortest path): an unattainable SLA is best missed by as little as possible.

use super::common::{Candidate, ConditionSource, layer_wise_precision};
use splitwise_env::cost::{Conditions, PassCost, Payload};
use splitwise_env::device::DeviceProfile;
use splitwise_env::model::{Pass, SegmentCost};
use splitwise_env::plan::{LayerPlacement, Plan, Precision};
use splitwise_env::policy::{Decision, DecisionContext, Policy, largest_feasible_split};
use splitwise_env::public::typical_request;
use splitwise_env::scenario::Scenario;
use splitwise_env::service::SlotView;

/// Fraction of the SLA the DP's conservative latency grid may leave unused (see the module doc):
/// 2 % keeps the grid at ≈ 50 cells per layer, under a millisecond per decision on the shipped
/// scenarios (assumption: a 2 % tighter SLA is within the noise of any latency estimate).
pub const DP_SLA_SLACK: f64 = 0.02;

/// Grid cells of the DP for `n_layers` layers: `⌈(L + 1)/DP_SLA_SLACK⌉`.
pub fn grid_cells(n_layers: usize) -> usize {
    ((n_layers as f64 + 1.0) / DP_SLA_SLACK).ceil() as usize
}

const EDGE: usize = 0;
const CLOUD: usize = 1;
const NO_PRED: u8 = u8::MAX;
const EMPTY: (usize, usize) = (usize::MAX, 0);

/// A whole-layer placement problem. Latencies in seconds (any unit in tests), cloud work in
/// GPU-seconds (any unit in tests).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PlacementInstance {
    /// Per layer: latency when it runs on the edge / in the cloud.
    pub edge_latency_s: Vec<f64>,
    pub cloud_latency_s: Vec<f64>,
    /// Per layer: cloud work when it runs in the cloud.
    pub cloud_work: Vec<f64>,
    /// Per layer: latency of moving the residual stream up (edge → cloud) / down before it.
    pub up_latency_s: Vec<f64>,
    pub down_latency_s: Vec<f64>,
    /// After the last layer: the LM head on the edge, or in the cloud plus the token's way down.
    pub end_edge_latency_s: f64,
    pub end_cloud_latency_s: f64,
    pub end_cloud_work: f64,
    /// The latency of the all-cloud plan when it is not the additive one (the env's cloud-only
    /// plan streams; it is never slower than the additive all-cloud path).
    pub cloud_only_latency_s: Option<f64>,
    /// Admission wait of a request that uses the cloud (once per request).
    pub admission_s: f64,
    /// The first layers that must be on the edge.
    pub privacy_floor: usize,
    /// Most edge layers that fit when the last layer is on the edge (LM head on the edge too) /
    /// in the cloud. Zero edge layers always fit.
    pub max_edge_layers_edge_end: usize,
    pub max_edge_layers_cloud_end: usize,
}

/// The additive part of a placement's latency (without the admission wait).
fn t_additive(inst: &PlacementInstance, edge: &[bool]) -> f64 {
    let mut prev = true;
    let mut t = 0.0;
    for (i, &e) in edge.iter().enumerate() {
        t += inst.step_latency_s(i, prev, e);
        prev = e;
    }
    t + inst.end_latency_s(prev)
}

impl PlacementInstance {
    pub fn n_layers(&self) -> usize {
        self.edge_latency_s.len()
    }

    /// Layer `i`'s latency on `edge` (else the cloud) when the stream was on `prev_edge`.
    #[inline]
    pub fn step_latency_s(&self, i: usize, prev_edge: bool, edge: bool) -> f64 {
        match (prev_edge, edge) {
            (true, true) => self.edge_latency_s[i],
            (false, false) => self.cloud_latency_s[i],
            (true, false) => self.up_latency_s[i] + self.cloud_latency_s[i],
            (false, true) => self.down_latency_s[i] + self.edge_latency_s[i],
        }
    }

    #[inline]
    pub fn end_latency_s(&self, last_edge: bool) -> f64 {
        if last_edge { self.end_edge_latency_s } else { self.end_cloud_latency_s }
    }

    /// Latency of a placement (`edge[i]`: layer i on the edge).
    pub fn latency_s(&self, edge: &[bool]) -> f64 {
        if let Some(t) = self.cloud_only_latency_s.filter(|_| !edge.iter().any(|&e| e)) {
            return t;
        }
        t_additive(self, edge) + if edge.iter().all(|&e| e) { 0.0 } else { self.admission_s }
    }

    pub fn cloud_work(&self, edge: &[bool]) -> f64 {
        let layers: f64 = edge.iter().zip(&self.cloud_work).filter(|(e, _)| !**e).map(|(_, w)| w).sum();
        layers + if edge.last().copied().unwrap_or(false) { 0.0 } else { self.end_cloud_work }
    }

    fn edge_limit(&self, last_edge: bool) -> usize {
        if last_edge { self.max_edge_layers_edge_end } else { self.max_edge_layers_cloud_end }
    }

    /// Shape, privacy floor and memory.
    pub fn fits(&self, edge: &[bool]) -> bool {
        let n = edge.iter().filter(|&&e| e).count();
        edge.len() == self.n_layers()
            && edge.iter().take(self.privacy_floor).all(|&e| e)
            && (n == 0 || n <= self.edge_limit(edge.last().copied().unwrap_or(false)))
    }
}

/// A placement's cloud work and latency.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Solution {
    pub cloud_work: f64,
    pub latency_s: f64,
}

impl Solution {
    fn of(inst: &PlacementInstance, edge: &[bool]) -> Self {
        Self { cloud_work: inst.cloud_work(edge), latency_s: inst.latency_s(edge) }
    }
}

/// The DP and the fastest-placement search, with buffers reused across decisions (no allocation
/// once they have grown to the instance's size).
#[derive(Clone, Debug, Default)]
pub struct PlacementSolver {
    cur: Vec<f64>,
    next: Vec<f64>,
    cur_range: Vec<(usize, usize)>,
    next_range: Vec<(usize, usize)>,
    pred: Vec<u8>,
}

/// The edge-count dimension: tracked only when memory binds.
fn count_dimension(inst: &PlacementInstance) -> (bool, usize) {
    let l = inst.n_layers();
    let track = inst.max_edge_layers_edge_end < l || inst.max_edge_layers_cloud_end + 1 < l;
    let n_counts = if track { inst.max_edge_layers_edge_end.max(inst.max_edge_layers_cloud_end).min(l) + 1 } else { 1 };
    (track, n_counts)
}

/// Whether a final state (last side, edge count) fits the memory.
fn final_fits(inst: &PlacementInstance, track: bool, side: usize, count: usize) -> bool {
    !track || count == 0 || count <= inst.edge_limit(side == EDGE)
}

impl PlacementSolver {
    /// The placement of least cloud work whose latency, rounded up on the grid of `cells` cells
    /// over `sla_s`, meets the SLA; writes it into `out`. `None` when no placement does.
    pub fn min_cloud_work(
        &mut self,
        inst: &PlacementInstance,
        sla_s: f64,
        cells: usize,
        out: &mut Vec<bool>,
    ) -> Option<Solution> {
        let l = inst.n_layers();
        out.clear();
        // NaN or non-positive SLA: nothing meets it.
        if l == 0 || cells == 0 || sla_s.is_nan() || sla_s <= 0.0 {
            return None;
        }
        // Edge-only does no cloud work: when it fits and meets the SLA it is the optimum. Every
        // other placement pays the admission wait once, so the DP runs with that much less SLA.
        out.resize(l, true);
        if inst.fits(out) && inst.latency_s(out) <= sla_s {
            return Some(Solution::of(inst, out));
        }
        out.clear();
        let full_sla_s = sla_s;
        // Same grid step as without the admission wait; it takes whole cells off the SLA
        // (rounded so that a plan the DP accepts still meets the full SLA).
        let delta = sla_s / cells as f64;
        let cells = ((sla_s - inst.admission_s) / delta + 1e-9).floor().max(0.0) as usize;
        if cells == 0 {
            // Only the streamed cloud-only plan might still meet the SLA.
            out.resize(l, false);
            let ok = inst.privacy_floor == 0 && inst.latency_s(out) <= full_sla_s;
            if !ok {
                out.clear();
            }
            return ok.then(|| Solution::of(inst, out));
        }
        let units = |latency_s: f64| -> Option<usize> {
            let u = (latency_s.max(0.0) / delta).ceil();
            (u <= cells as f64).then_some(u as usize)
        };
        let (track, n_counts) = count_dimension(inst);
        let width = cells + 1;
        let rows = 2 * n_counts;
        let row = |side: usize, count: usize| side * n_counts + count;
        self.cur.clear();
        self.cur.resize(rows * width, f64::INFINITY);
        self.next.clear();
        self.next.resize(rows * width, f64::INFINITY);
        self.cur_range.clear();
        self.cur_range.resize(rows, EMPTY);
        self.next_range.clear();
        self.next_range.resize(rows, EMPTY);
        self.pred.resize(l * rows * width, NO_PRED);
        // Before layer 0 the stream is on the edge (the embedding runs there), nothing placed.
        self.cur[row(EDGE, 0) * width] = 0.0;
        self.cur_range[row(EDGE, 0)] = (0, 0);
        for i in 0..l {
            for r in 0..rows {
                let (lo, hi) = std::mem::replace(&mut self.next_range[r], EMPTY);
                if lo <= hi {
                    self.next[r * width + lo..=r * width + hi].fill(f64::INFINITY);
                }
            }
            let pred = &mut self.pred[i * rows * width..(i + 1) * rows * width];
            for s_prev in [EDGE, CLOUD] {
                for s in [EDGE, CLOUD] {
                    if s == CLOUD && i < inst.privacy_floor {
                        continue;
                    }
                    let Some(u) = units(inst.step_latency_s(i, s_prev == EDGE, s == EDGE)) else { continue };
                    let dw = if s == CLOUD { inst.cloud_work[i] } else { 0.0 };
                    for c in 0..n_counts {
                        let c_next = if s == EDGE && track { c + 1 } else { c };
                        let (lo, hi) = self.cur_range[row(s_prev, c)];
                        if c_next >= n_counts || lo > hi || lo + u > cells {
                            continue;
                        }
                        let hi = hi.min(cells - u);
                        let src = &self.cur[row(s_prev, c) * width + lo..=row(s_prev, c) * width + hi];
                        let at = row(s, c_next) * width + lo + u;
                        let dst = &mut self.next[at..=at + hi - lo];
                        let from = &mut pred[at..=at + hi - lo];
                        // Branch-free so that it vectorises: this loop is the DP's whole cost.
                        for ((n, p), &x) in dst.iter_mut().zip(from.iter_mut()).zip(src) {
                            let v = x + dw;
                            let better = v < *n;
                            *n = if better { v } else { *n };
                            *p = if better { s_prev as u8 } else { *p };
                        }
                        let r = &mut self.next_range[row(s, c_next)];
                        *r = (r.0.min(lo + u), if r.0 > r.1 { hi + u } else { r.1.max(hi + u) });
                    }
                }
            }
            std::mem::swap(&mut self.cur, &mut self.next);
            std::mem::swap(&mut self.cur_range, &mut self.next_range);
        }
        // Least work, then least grid latency.
        let mut best: Option<(f64, usize, usize, usize, usize)> = None;
        for s in [EDGE, CLOUD] {
            let Some(ue) = units(inst.end_latency_s(s == EDGE)) else { continue };
            let end_work = if s == CLOUD { inst.end_cloud_work } else { 0.0 };
            for c in 0..n_counts {
                let (lo, hi) = self.cur_range[row(s, c)];
                if lo > hi || !final_fits(inst, track, s, c) {
                    continue;
                }
                for g in lo..=hi.min(cells.saturating_sub(ue)) {
                    let v = self.cur[row(s, c) * width + g];
                    if !v.is_finite() || g + ue > cells {
                        continue;
                    }
                    let total = v + end_work;
                    if best.is_none_or(|b| total < b.0 || (total == b.0 && g + ue < b.1)) {
                        best = Some((total, g + ue, s, c, g));
                    }
                }
            }
        }
        let Some((_, _, mut s, mut c, mut g)) = best else {
            // The streamed cloud-only plan can meet an SLA its additive path does not.
            out.resize(l, false);
            let cloud_only = inst.privacy_floor == 0 && inst.latency_s(out) <= full_sla_s;
            if !cloud_only {
                out.clear();
            }
            return cloud_only.then(|| Solution::of(inst, out));
        };
        out.resize(l, false);
        for i in (0..l).rev() {
            let sp = self.pred[i * rows * width + row(s, c) * width + g];
            assert!(sp != NO_PRED, "placement DP: broken predecessor chain at layer {i}");
            let sp = usize::from(sp);
            out[i] = s == EDGE;
            let u = units(inst.step_latency_s(i, sp == EDGE, s == EDGE))
                .expect("placement DP: a recorded step has a grid latency");
            g -= u;
            if s == EDGE && track {
                c -= 1;
            }
            s = sp;
        }
        Some(Solution::of(inst, out))
    }

    /// The fastest placement that fits (exact shortest path over (side, edge count)), the
    /// streamed cloud-only plan included; `None` when nothing fits.
    pub fn min_latency(&mut self, inst: &PlacementInstance, out: &mut Vec<bool>) -> Option<Solution> {
        let l = inst.n_layers();
        out.clear();
        if l == 0 {
            return None;
        }
        // Sides: EDGE, CLOUD and FRESH (on the edge, the cloud not visited yet): the first entry
        // into the cloud pays the admission wait once.
        const FRESH: usize = 2;
        let (track, n_counts) = count_dimension(inst);
        let rows = 3 * n_counts;
        let row = |side: usize, count: usize| side * n_counts + count;
        self.cur.clear();
        self.cur.resize(rows, f64::INFINITY);
        self.next.clear();
        self.next.resize(rows, f64::INFINITY);
        self.pred.resize(l * rows, NO_PRED);
        self.cur[row(FRESH, 0)] = 0.0;
        for i in 0..l {
            self.next.fill(f64::INFINITY);
            for s_prev in [EDGE, CLOUD, FRESH] {
                for s in [EDGE, CLOUD, FRESH] {
                    let allowed = match (s_prev, s) {
                        (FRESH, EDGE) | (EDGE, FRESH) | (CLOUD, FRESH) => false,
                        (_, CLOUD) => i >= inst.privacy_floor,
                        _ => true,
                    };
                    if !allowed {
                        continue;
                    }
                    let admission = if s_prev == FRESH && s == CLOUD { inst.admission_s } else { 0.0 };
                    let step = inst.step_latency_s(i, s_prev != CLOUD, s != CLOUD) + admission;
                    for c in 0..n_counts {
                        let c_next = if s != CLOUD && track { c + 1 } else { c };
                        if c_next >= n_counts {
                            continue;
                        }
                        let v = self.cur[row(s_prev, c)] + step;
                        if v < self.next[row(s, c_next)] {
                            self.next[row(s, c_next)] = v;
                            self.pred[i * rows + row(s, c_next)] = s_prev as u8;
                        }
                    }
                }
            }
            std::mem::swap(&mut self.cur, &mut self.next);
        }
        let mut best: Option<(f64, usize, usize)> = None;
        for s in [EDGE, CLOUD, FRESH] {
            let side = if s == CLOUD { CLOUD } else { EDGE };
            for c in 0..n_counts {
                let total = self.cur[row(s, c)] + inst.end_latency_s(side == EDGE);
                if total < f64::INFINITY && final_fits(inst, track, side, c) && best.is_none_or(|b| total < b.0) {
                    best = Some((total, s, c));
                }
            }
        }
        out.resize(l, false);
        let cloud_only = (inst.privacy_floor == 0).then(|| inst.latency_s(out));
        match best {
            Some((t, _, _)) if cloud_only.is_some_and(|c| c <= t) => {}
            Some((_, mut s, mut c)) => {
                for i in (0..l).rev() {
                    let sp = self.pred[i * rows + row(s, c)];
                    assert!(sp != NO_PRED, "fastest placement: broken predecessor chain at layer {i}");
                    out[i] = s != CLOUD;
                    if s != CLOUD && track {
                        c -= 1;
                    }
                    s = usize::from(sp);
                }
            }
            None if cloud_only.is_some() => {}
            None => {
                out.clear();
                return None;
            }
        }
        Some(Solution::of(inst, out))
    }
}

/// SplitLLM's greedy baseline (module doc); `None` when the plan it ends with misses the SLA or
/// does not fit.
pub fn greedy(inst: &PlacementInstance, sla_s: f64, out: &mut Vec<bool>) -> Option<Solution> {
    let l = inst.n_layers();
    out.clear();
    out.extend((0..l).map(|i| i < inst.privacy_floor));
    for i in inst.privacy_floor..l {
        let work = inst.cloud_work(out);
        out[i] = true;
        let keep = inst.cloud_work(out) < work && inst.fits(out) && inst.latency_s(out) <= sla_s;
        out[i] = keep;
    }
    let s = Solution::of(inst, out);
    (inst.fits(out) && s.latency_s <= sla_s).then_some(s)
}

/// Time of one probe pass (a single term) under `c`: the evaluator's own timing.
#[inline]
fn probe_s(c: &Conditions, pass: PassCost) -> f64 {
    pass.timing(c).total_s
}

/// A transfer of `payload` (bytes as in `payload_bytes`) up (`dir` 0) or down (1).
#[inline]
fn transfer_s(c: &Conditions, payload_bytes: [f64; 4], dir: usize, payload: Payload) -> f64 {
    let mut pass = PassCost { payload_bytes, ..PassCost::default() };
    pass.crossings[dir][payload as usize] = 1;
    probe_s(c, pass)
}

/// A scenario's placement problem for its typical request, derived from the cost evaluator.
#[derive(Clone, Debug)]
pub struct PlacementModel {
    n_layers: u32,
    n_heads: u32,
    precision: Precision,
    privacy_floor: u32,
    n_out: u32,
    decodes: f64,
    /// [prefill, decode] stage times at full availability of one layer / the LM head.
    layer_edge_s: [f64; 2],
    layer_cloud_s: [f64; 2],
    lm_edge_s: [f64; 2],
    lm_cloud_s: [f64; 2],
    /// [prefill, decode] bytes of each payload kind.
    payload_bytes: [[f64; 4]; 2],
    cloud_only: Candidate,
    full_layer_bytes: f64,
    fixed_edge_end_bytes: f64,
    fixed_cloud_end_bytes: f64,
}

impl PlacementModel {
    pub fn new(sc: &Scenario, precision: Precision, n_in: u32, n_out: u32) -> Self {
        let (l, h) = (sc.n_layers(), sc.n_heads());
        let costs = &sc.costs;
        // The stages of a whole layer and of the LM head, as `PlanProfile` builds them.
        let heads = costs.head.scaled(f64::from(h));
        let mut ffn = costs.ffn_first;
        ffn.add(&costs.ffn_down);
        let passes = [Pass::prefill(f64::from(n_in)), Pass::decode(f64::from(n_in) + f64::from(n_out) / 2.0)];
        let seg = |d: &DeviceProfile, s: &SegmentCost, p: Pass| {
            d.segment_time_s(s.flops(p.n, p.attended_pairs()), s.bytes(p.n, p.distinct_keys()))
        };
        let lm = |d: &DeviceProfile| d.segment_time_s(costs.lm_head.flops(1.0, 0.0), costs.lm_head.bytes(1.0, 0.0));
        let layer = |d: &DeviceProfile| passes.map(|p| seg(d, &heads, p) + seg(d, &ffn, p));
        let probe = Candidate::new(sc, Plan::edge_only(l, h, precision), n_in, n_out);
        let m = &sc.memory;
        Self {
            n_layers: l,
            n_heads: h,
            precision,
            privacy_floor: sc.config.serving.privacy_floor_layers.min(l),
            n_out,
            decodes: f64::from(n_out.max(1) - 1),
            layer_edge_s: layer(&sc.edge),
            layer_cloud_s: layer(&sc.cloud),
            lm_edge_s: [lm(&sc.edge); 2],
            lm_cloud_s: [lm(&sc.cloud); 2],
            payload_bytes: [probe.costs.prefill.payload_bytes, probe.costs.decode.payload_bytes],
            cloud_only: Candidate::new(sc, Plan::cloud_only(l, precision), n_in, n_out),
            full_layer_bytes: m.layer_bytes(LayerPlacement::edge(h)),
            fixed_edge_end_bytes: m.fixed_bytes(true, true),
            fixed_cloud_end_bytes: m.fixed_bytes(true, false),
        }
    }

    /// For the scenario's typical request at its layer-wise precision.
    pub fn typical(sc: &Scenario) -> Self {
        let (n_in, n_out) = typical_request(sc);
        Self::new(sc, layer_wise_precision(sc), n_in, n_out)
    }

    /// Writes the instance under `view` with `edge_memory_bytes` of edge memory into `inst`.
    pub fn fill(&self, sc: &Scenario, view: &SlotView, edge_memory_bytes: f64, inst: &mut PlacementInstance) {
        let c = &view.conditions;
        let d = self.decodes;
        let edge = |s: f64| probe_s(c, PassCost { edge_s: s, ..PassCost::default() });
        let cloud = |s: f64| probe_s(c, PassCost { cloud_s: s, ..PassCost::default() });
        let visit = probe_s(c, PassCost { cloud_visits: 1, ..PassCost::default() });
        let [pre, dec] = self.payload_bytes;
        let (up, down) = (0, 1);
        let edge_layer = edge(self.layer_edge_s[0]) + d * edge(self.layer_edge_s[1]);
        let cloud_layer = cloud(self.layer_cloud_s[0]) + d * cloud(self.layer_cloud_s[1]);
        let work_layer = self.layer_cloud_s[0] + d * self.layer_cloud_s[1];
        let up_s =
            transfer_s(c, pre, up, Payload::Hidden) + visit + d * (transfer_s(c, dec, up, Payload::Hidden) + visit);
        let down_s = transfer_s(c, pre, down, Payload::Hidden) + d * transfer_s(c, dec, down, Payload::Hidden);
        let l = self.n_layers as usize;
        for (v, x) in [
            (&mut inst.edge_latency_s, edge_layer),
            (&mut inst.cloud_latency_s, cloud_layer),
            (&mut inst.cloud_work, work_layer),
            (&mut inst.up_latency_s, up_s),
            (&mut inst.down_latency_s, down_s),
        ] {
            v.clear();
            v.resize(l, x);
        }
        inst.end_edge_latency_s = edge(self.lm_edge_s[0]) + d * edge(self.lm_edge_s[1]);
        inst.end_cloud_latency_s = cloud(self.lm_cloud_s[0])
            + transfer_s(c, pre, down, Payload::TokenId)
            + d * (cloud(self.lm_cloud_s[1]) + transfer_s(c, dec, down, Payload::TokenId));
        inst.end_cloud_work = self.lm_cloud_s[0] + d * self.lm_cloud_s[1];
        inst.cloud_only_latency_s = Some(self.cloud_only.estimate(sc, self.n_out, view).latency_s);
        inst.admission_s = view.cloud_admission_wait_s;
        inst.privacy_floor = self.privacy_floor as usize;
        // Accumulated like `MemoryModel::plan_bytes` (layer by layer, then the fixed bytes), so
        // the comparison is bit-identical to the env's check.
        let (mut bytes, mut max_e, mut max_c) = (0.0, 0, 0);
        for n in 1..=l {
            bytes += self.full_layer_bytes;
            if bytes + self.fixed_edge_end_bytes <= edge_memory_bytes {
                max_e = n;
            }
            if bytes + self.fixed_cloud_end_bytes <= edge_memory_bytes {
                max_c = n;
            }
        }
        inst.max_edge_layers_edge_end = max_e;
        inst.max_edge_layers_cloud_end = max_c;
    }

    /// The plan of a placement.
    pub fn plan(&self, edge: &[bool]) -> Plan {
        Plan::from_edge_layers(edge, self.n_heads, self.precision)
    }

    pub fn precision(&self) -> Precision {
        self.precision
    }
}

/// Which placement search a [`PlacementPolicy`] runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Algorithm {
    /// SplitLLM's dynamic programme.
    Dp,
    /// SplitLLM's greedy baseline.
    Greedy,
}

/// `splitllm-dp` and `greedy` (and their oracle variants): every slot, the placement problem of
/// the typical request under the slot's conditions and edge memory, solved by the algorithm.
pub struct PlacementPolicy {
    algorithm: Algorithm,
    source: ConditionSource,
    sla_s: f64,
    sla_given: bool,
    model: PlacementModel,
    inst: PlacementInstance,
    solver: PlacementSolver,
    edge: Vec<bool>,
    cells: usize,
}

impl PlacementPolicy {
    /// `sla_s`: the latency SLA of the typical request; `None` takes the scenario's
    /// `workload.deadline` for it (an error message when the scenario has none).
    pub fn new(sc: &Scenario, algorithm: Algorithm, oracle: bool, sla_s: Option<f64>) -> Result<Self, String> {
        let (n_in, n_out) = typical_request(sc);
        let sla_given = sla_s.is_some();
        let sla_s = match sla_s.or_else(|| sc.config.workload.deadline.deadline_s(n_in, n_out)) {
            Some(s) => s,
            None => return Err("the scenario sets no `workload.deadline`; give the SLA in seconds".into()),
        };
        let model = PlacementModel::new(sc, layer_wise_precision(sc), n_in, n_out);
        Ok(Self {
            algorithm,
            source: ConditionSource::from_oracle(oracle),
            sla_s,
            sla_given,
            model,
            inst: PlacementInstance::default(),
            solver: PlacementSolver::default(),
            edge: Vec::with_capacity(sc.n_layers() as usize),
            cells: grid_cells(sc.n_layers() as usize),
        })
    }

    /// The SLA (s) it plans for.
    pub fn sla_s(&self) -> f64 {
        self.sla_s
    }
}

impl Policy for PlacementPolicy {
    fn name(&self) -> String {
        let base = match (self.algorithm, self.source.is_oracle()) {
            (Algorithm::Dp, false) => "splitllm-dp",
            (Algorithm::Dp, true) => "oracle-splitllm-dp",
            (Algorithm::Greedy, false) => "greedy",
            (Algorithm::Greedy, true) => "oracle-greedy",
        };
        if self.sla_given { format!("{base}:{}", self.sla_s) } else { base.to_string() }
    }

    fn is_oracle(&self) -> bool {
        self.source.is_oracle()
    }

    fn decide(&mut self, ctx: &DecisionContext<'_>) -> Decision {
        let sc = ctx.env.scenario();
        let view = self.source.view(sc, ctx);
        self.model.fill(sc, &view, ctx.edge_memory_bytes, &mut self.inst);
        let found = match self.algorithm {
            Algorithm::Dp => self.solver.min_cloud_work(&self.inst, self.sla_s, self.cells, &mut self.edge),
            Algorithm::Greedy => greedy(&self.inst, self.sla_s, &mut self.edge),
        };
        if found.is_none() && self.solver.min_latency(&self.inst, &mut self.edge).is_none() {
            // Not even the privacy floor fits: the floor plan (the env reports the error).
            return Decision::Plan(largest_feasible_split(ctx, 0, self.model.precision()));
        }
        Decision::Plan(self.model.plan(&self.edge))
    }
}
