//! The headroom of a scenario: how far the best static plan is from the clairvoyant bound, and
//! how much of that gap each policy captures. Every `splitwise eval` report carries it (the app
//! adds `best-fixed` and `clairvoyant` rows unless `--no-headroom`).
//!
//! - **Best static plan**: the row holding one plan throughout (`best-fixed`, `static-best`,
//!   `cloud-only`, `edge-only`, `fixed-split:…`, `memory-proportional`) with the lowest mean
//!   time-averaged drift-plus-penalty Δ + V·p (the objective; lower is better).
//! - **Best causal baseline**: the row with the lowest mean Δ + V·p among those that read only the
//!   observation (not oracles, not the bound, not trained checkpoints).
//! - **Clairvoyant bound**: the `clairvoyant` row (the lowest Δ + V·p of the bound rows when
//!   several are listed).
//! - **Capture** of a policy P on a metric (all lower-is-better): (S − P)/(S − C) with S the best
//!   static plan's mean and C the bound's. 1 = all of the headroom, 0 = no better than the best
//!   static plan, negative = worse. Its 95 % interval is a percentile bootstrap over episodes
//!   (the episodes are paired: every row saw the same episode seeds), 2,000 resamples from a
//!   fixed seed. Undefined (NaN) where |S − C| is below 1e-9 of |S|.

use crate::report::{Row, metric_index};
use serde::Serialize;
use splitwise_env::rng::splitmix64;

/// The metrics capture is reported on (all lower is better).
pub const CAPTURE_METRICS: &[&str] = &["drift_plus_penalty", "latency_mean_s", "latency_p95_s", "energy_per_request_j"];
const RESAMPLES: usize = 2000;
const BOOTSTRAP_SEED: u64 = 0x4EAD_200A;

/// A capture with its bootstrap interval.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Capture {
    pub metric: &'static str,
    pub mean: f64,
    pub lo: f64,
    pub hi: f64,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RowCapture {
    pub label: String,
    pub captures: Vec<Capture>,
}

/// A scenario's headroom (module doc).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Headroom {
    pub best_static: String,
    pub best_causal: Option<String>,
    pub clairvoyant: String,
    /// (S − C)/|S| of the mean Δ + V·p: the fraction of the objective the bound removes.
    pub objective_headroom: f64,
    /// S/C of the mean latency (× lower).
    pub latency_ratio: f64,
    pub rows: Vec<RowCapture>,
}

fn mean(x: &[f64]) -> f64 {
    let v: Vec<f64> = x.iter().copied().filter(|v| v.is_finite()).collect();
    if v.is_empty() { f64::NAN } else { v.iter().sum::<f64>() / v.len() as f64 }
}

fn capture_of(s: f64, c: f64, p: f64) -> f64 {
    if (s - c).abs() <= 1e-9 * s.abs().max(1e-12) { f64::NAN } else { (s - p) / (s - c) }
}

/// Capture of `p` on per-episode values (paired with `s` and `c`), with a bootstrap interval.
pub fn capture(metric: &'static str, s: &[f64], c: &[f64], p: &[f64]) -> Capture {
    let n = s.len().min(c.len()).min(p.len());
    let point = capture_of(mean(&s[..n]), mean(&c[..n]), mean(&p[..n]));
    if n < 2 || !point.is_finite() {
        return Capture { metric, mean: point, lo: f64::NAN, hi: f64::NAN };
    }
    let mut state = BOOTSTRAP_SEED;
    let mut draws = Vec::with_capacity(RESAMPLES);
    let (mut bs, mut bc, mut bp) = (vec![0.0; n], vec![0.0; n], vec![0.0; n]);
    for _ in 0..RESAMPLES {
        for i in 0..n {
            state = splitmix64(state);
            let k = (state % n as u64) as usize;
            (bs[i], bc[i], bp[i]) = (s[k], c[k], p[k]);
        }
        let x = capture_of(mean(&bs), mean(&bc), mean(&bp));
        if x.is_finite() {
            draws.push(x);
        }
    }
    if draws.len() < RESAMPLES / 2 {
        return Capture { metric, mean: point, lo: f64::NAN, hi: f64::NAN };
    }
    draws.sort_by(f64::total_cmp);
    let q = |f: f64| draws[((draws.len() - 1) as f64 * f).round() as usize];
    Capture { metric, mean: point, lo: q(0.025), hi: q(0.975) }
}

/// The headroom of a scenario's rows, `None` without a static row or a clairvoyant row.
pub fn headroom(rows: &[Row<'_>]) -> Option<Headroom> {
    let dpp = metric_index("drift_plus_penalty");
    let best = |keep: &dyn Fn(&Row<'_>) -> bool| {
        rows.iter()
            .filter(|r| keep(r) && r.stats[dpp].mean.is_finite())
            .min_by(|a, b| a.stats[dpp].mean.total_cmp(&b.stats[dpp].mean))
    };
    let s = best(&|r| r.role.static_plan && !r.role.oracle)?;
    // The tightest bound when several are listed (e.g. `clairvoyant` and `clairvoyant-layers`).
    let c = best(&|r| r.role.clairvoyant)?;
    let causal = best(&|r| !r.role.oracle && !r.role.clairvoyant && !r.role.learned);
    let lat = metric_index("latency_mean_s");
    let captures = rows
        .iter()
        .map(|r| RowCapture {
            label: r.label.clone(),
            captures: CAPTURE_METRICS
                .iter()
                .map(|&key| {
                    let m = metric_index(key);
                    capture(key, &s.values[m], &c.values[m], &r.values[m])
                })
                .collect(),
        })
        .collect();
    let (sd, cd) = (s.stats[dpp].mean, c.stats[dpp].mean);
    Some(Headroom {
        best_static: s.label.clone(),
        best_causal: causal.map(|r| r.label.clone()),
        clairvoyant: c.label.clone(),
        objective_headroom: if sd.abs() > 0.0 { (sd - cd) / sd.abs() } else { f64::NAN },
        latency_ratio: s.stats[lat].mean / c.stats[lat].mean,
        rows: captures,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capture_by_hand() {
        // Static 10, bound 6: a policy at 7 captures (10 − 7)/(10 − 6) = 0.75 in every
        // resample (the episodes are identical), so the interval collapses onto it.
        let s = [10.0, 10.0, 10.0];
        let c = [6.0, 6.0, 6.0];
        let p = [7.0, 7.0, 7.0];
        let x = capture("drift_plus_penalty", &s, &c, &p);
        assert!((x.mean - 0.75).abs() < 1e-12 && (x.lo - 0.75).abs() < 1e-12 && (x.hi - 0.75).abs() < 1e-12);
        // The bound itself captures 1, the static plan 0, something worse is negative.
        assert_eq!(capture("x", &s, &c, &c).mean, 1.0);
        assert_eq!(capture("x", &s, &c, &s).mean, 0.0);
        assert!(capture("x", &s, &c, &[12.0; 3]).mean < 0.0);
        // No headroom: undefined.
        assert!(capture("x", &s, &s, &p).mean.is_nan());
    }

    #[test]
    fn bootstrap_interval_brackets_the_estimate() {
        let s = [10.0, 12.0, 9.0, 11.0, 10.5];
        let c = [6.0, 7.0, 5.5, 6.5, 6.0];
        let p = [8.0, 9.5, 7.0, 8.0, 9.0];
        let x = capture("drift_plus_penalty", &s, &c, &p);
        assert!(x.lo <= x.mean && x.mean <= x.hi && x.lo < x.hi, "{x:?}");
        assert_eq!(x, capture("drift_plus_penalty", &s, &c, &p), "deterministic");
    }
}
