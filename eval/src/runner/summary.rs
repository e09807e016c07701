//! Aggregating slots and requests into the numbers users compare: latency quantiles from a
//! bounded HdrHistogram (no ever-growing list, system-model §1), per-request edge energy and
//! accuracy loss, backlog, drops, recoveries, SLA violations, and the time averages of every
//! drift-plus-penalty term (§7). One accumulator serves `simulate` (a run of N slots) and
//! `eval` (one per episode, merged per policy), so the two commands cannot disagree.

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};
use splitwise_env::partition::StepInfo;

/// Latencies are recorded in microseconds, 3 significant digits, up to ~11 days.
const LATENCY_MAX_US: u64 = 1_000_000_000_000;
/// Significant decimal digits the latency histogram keeps (relative error ≤ 10⁻³).
const LATENCY_SIGNIFICANT_DIGITS: u8 = 3;

/// Sums over slots of the reward terms of [`splitwise_env::lyapunov::RewardTerms`].
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct TermSums {
    pub latency_term: f64,
    pub energy_term: f64,
    pub accuracy_term: f64,
    pub cloud_cost_term: f64,
    pub drop_term: f64,
    pub penalty: f64,
    pub v: f64,
    pub energy_queue_j: f64,
    pub accuracy_queue: f64,
    pub drift: f64,
    pub drift_plus_penalty: f64,
    pub reward: f64,
}

#[derive(Clone)]
pub struct RunSummary {
    latency_us: Histogram<u64>,
    pub steps: u64,
    pub arrivals: u64,
    pub requests: u64,
    pub dropped: u64,
    pub failed: u64,
    pub fallbacks: u64,
    pub retries: u64,
    pub rejections: u64,
    pub sla_violations: u64,
    /// Completed requests whose latency was recorded, and the sum of their latencies.
    pub completed: u64,
    pub completed_latency_sum_s: f64,
    pub latency_max_s: f64,
    pub energy_sum_j: f64,
    pub accuracy_sum: f64,
    pub cloud_cost_usd: f64,
    pub cloud_gpu_s: f64,
    pub backlog_sum: f64,
    pub backlog_max: u32,
    pub terms: TermSums,
    pub repaired: u64,
    pub plan_changes: u64,
}

impl Default for RunSummary {
    fn default() -> Self {
        Self::new()
    }
}

/// The per-episode (or per-run) numbers of a [`RunSummary`]. NaN where undefined (no request
/// completed); JSON writes NaN as `null`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct EpisodeMetrics {
    pub slots: u64,
    pub arrivals: u64,
    pub served: u64,
    pub completed: u64,
    pub dropped: u64,
    pub failed: u64,
    pub fallbacks: u64,
    /// Failed crossing attempts retried after the transport's backoff (§8).
    pub recoveries: u64,
    /// Admission attempts the cloud API rejected (HTTP 429/529), §8.
    #[serde(default)]
    pub rejections: u64,
    pub sla_violations: u64,
    pub repaired: u64,
    pub plan_changes: u64,
    pub latency_mean_s: f64,
    pub latency_p50_s: f64,
    pub latency_p95_s: f64,
    pub latency_p99_s: f64,
    pub latency_max_s: f64,
    pub energy_per_request_j: f64,
    pub accuracy_loss_mean: f64,
    pub cloud_cost_usd: f64,
    pub drop_fraction: f64,
    pub sla_violation_fraction: f64,
    /// Time averages per slot.
    pub backlog_mean: f64,
    pub backlog_max: f64,
    pub latency_term: f64,
    pub energy_term: f64,
    pub accuracy_term: f64,
    pub cloud_cost_term: f64,
    pub drop_term: f64,
    pub penalty: f64,
    pub lyapunov_v: f64,
    pub energy_queue_j: f64,
    pub accuracy_queue: f64,
    pub drift: f64,
    pub drift_plus_penalty: f64,
    pub reward: f64,
}

fn ratio(n: f64, d: u64) -> f64 {
    if d == 0 { f64::NAN } else { n / d as f64 }
}

impl RunSummary {
    pub fn new() -> Self {
        Self {
            latency_us: Histogram::new_with_bounds(1, LATENCY_MAX_US, LATENCY_SIGNIFICANT_DIGITS)
                .expect("static histogram bounds are valid"),
            steps: 0,
            arrivals: 0,
            requests: 0,
            dropped: 0,
            failed: 0,
            fallbacks: 0,
            retries: 0,
            rejections: 0,
            sla_violations: 0,
            completed: 0,
            completed_latency_sum_s: 0.0,
            latency_max_s: 0.0,
            energy_sum_j: 0.0,
            accuracy_sum: 0.0,
            cloud_cost_usd: 0.0,
            cloud_gpu_s: 0.0,
            backlog_sum: 0.0,
            backlog_max: 0,
            terms: TermSums::default(),
            repaired: 0,
            plan_changes: 0,
        }
    }

    /// Records the latency of a completed request (failed requests are counted, not timed).
    pub fn record_latency(&mut self, latency_s: f64) {
        self.completed += 1;
        self.completed_latency_sum_s += latency_s;
        self.latency_max_s = self.latency_max_s.max(latency_s);
        let us = (latency_s * 1e6).round().clamp(1.0, LATENCY_MAX_US as f64) as u64;
        self.latency_us.saturating_record(us);
    }

    pub fn add_step(&mut self, info: &StepInfo) {
        self.steps += 1;
        self.arrivals += u64::from(info.arrivals);
        self.requests += u64::from(info.started);
        self.dropped += u64::from(info.dropped);
        self.failed += u64::from(info.failed_requests);
        self.fallbacks += u64::from(info.fallbacks);
        self.retries += u64::from(info.retries);
        self.rejections += u64::from(info.rejections);
        self.sla_violations += u64::from(info.sla_violations);
        self.energy_sum_j += info.energy_j;
        self.accuracy_sum += info.accuracy_loss_sum;
        self.cloud_cost_usd += info.cloud_cost_usd;
        self.cloud_gpu_s += info.cloud_gpu_s;
        self.backlog_sum += f64::from(info.backlog);
        self.backlog_max = self.backlog_max.max(info.backlog);
        self.repaired += u64::from(info.repaired);
        self.plan_changes += u64::from(info.plan_changed);
        let r = &info.reward;
        let t = &mut self.terms;
        t.latency_term += r.latency_term;
        t.energy_term += r.energy_term;
        t.accuracy_term += r.accuracy_term;
        t.cloud_cost_term += r.cloud_cost_term;
        t.drop_term += r.drop_term;
        t.penalty += r.penalty;
        t.v += r.v;
        t.energy_queue_j += r.energy_queue_after_j;
        t.accuracy_queue += r.accuracy_queue_after;
        t.drift += r.drift;
        t.drift_plus_penalty += r.drift_plus_penalty;
        t.reward += r.reward;
    }

    /// Adds another summary's counts, sums and latencies (pooling episodes).
    pub fn merge(&mut self, other: &RunSummary) {
        self.latency_us.add(&other.latency_us).expect("histograms share their bounds");
        self.steps += other.steps;
        self.arrivals += other.arrivals;
        self.requests += other.requests;
        self.dropped += other.dropped;
        self.failed += other.failed;
        self.fallbacks += other.fallbacks;
        self.retries += other.retries;
        self.rejections += other.rejections;
        self.sla_violations += other.sla_violations;
        self.completed += other.completed;
        self.completed_latency_sum_s += other.completed_latency_sum_s;
        self.latency_max_s = self.latency_max_s.max(other.latency_max_s);
        self.energy_sum_j += other.energy_sum_j;
        self.accuracy_sum += other.accuracy_sum;
        self.cloud_cost_usd += other.cloud_cost_usd;
        self.cloud_gpu_s += other.cloud_gpu_s;
        self.backlog_sum += other.backlog_sum;
        self.backlog_max = self.backlog_max.max(other.backlog_max);
        self.repaired += other.repaired;
        self.plan_changes += other.plan_changes;
        let (t, o) = (&mut self.terms, &other.terms);
        t.latency_term += o.latency_term;
        t.energy_term += o.energy_term;
        t.accuracy_term += o.accuracy_term;
        t.cloud_cost_term += o.cloud_cost_term;
        t.drop_term += o.drop_term;
        t.penalty += o.penalty;
        t.v += o.v;
        t.energy_queue_j += o.energy_queue_j;
        t.accuracy_queue += o.accuracy_queue;
        t.drift += o.drift;
        t.drift_plus_penalty += o.drift_plus_penalty;
        t.reward += o.reward;
    }

    /// The `q` quantile of completed latencies (HdrHistogram: within 0.1 %), NaN when none.
    pub fn latency_quantile_s(&self, q: f64) -> f64 {
        if self.latency_us.is_empty() { f64::NAN } else { self.latency_us.value_at_quantile(q) as f64 / 1e6 }
    }

    fn per_request(&self, sum: f64) -> f64 {
        ratio(sum, self.requests)
    }

    fn per_step(&self, sum: f64) -> f64 {
        ratio(sum, self.steps)
    }

    /// Mean latency of completed requests.
    pub fn mean_latency_s(&self) -> f64 {
        ratio(self.completed_latency_sum_s, self.completed)
    }

    pub fn energy_per_request_j(&self) -> f64 {
        self.per_request(self.energy_sum_j)
    }

    pub fn mean_accuracy_loss(&self) -> f64 {
        self.per_request(self.accuracy_sum)
    }

    pub fn mean_backlog(&self) -> f64 {
        self.per_step(self.backlog_sum)
    }

    pub fn metrics(&self) -> EpisodeMetrics {
        let t = &self.terms;
        EpisodeMetrics {
            slots: self.steps,
            arrivals: self.arrivals,
            served: self.requests,
            completed: self.completed,
            dropped: self.dropped,
            failed: self.failed,
            fallbacks: self.fallbacks,
            recoveries: self.retries,
            rejections: self.rejections,
            sla_violations: self.sla_violations,
            repaired: self.repaired,
            plan_changes: self.plan_changes,
            latency_mean_s: self.mean_latency_s(),
            latency_p50_s: self.latency_quantile_s(0.50),
            latency_p95_s: self.latency_quantile_s(0.95),
            latency_p99_s: self.latency_quantile_s(0.99),
            latency_max_s: if self.completed == 0 { f64::NAN } else { self.latency_max_s },
            energy_per_request_j: self.energy_per_request_j(),
            accuracy_loss_mean: self.mean_accuracy_loss(),
            cloud_cost_usd: self.cloud_cost_usd,
            drop_fraction: ratio(self.dropped as f64, self.arrivals),
            sla_violation_fraction: ratio(self.sla_violations as f64, self.requests),
            backlog_mean: self.mean_backlog(),
            backlog_max: f64::from(self.backlog_max),
            latency_term: self.per_step(t.latency_term),
            energy_term: self.per_step(t.energy_term),
            accuracy_term: self.per_step(t.accuracy_term),
            cloud_cost_term: self.per_step(t.cloud_cost_term),
            drop_term: self.per_step(t.drop_term),
            penalty: self.per_step(t.penalty),
            lyapunov_v: self.per_step(t.v),
            energy_queue_j: self.per_step(t.energy_queue_j),
            accuracy_queue: self.per_step(t.accuracy_queue),
            drift: self.per_step(t.drift),
            drift_plus_penalty: self.per_step(t.drift_plus_penalty),
            reward: self.per_step(t.reward),
        }
    }

    /// Rows of (metric, value) for the `simulate` table.
    pub fn rows(&self) -> Vec<(&'static str, String)> {
        let pct =
            |n: u64, d: u64| if d == 0 { "-".to_string() } else { format!("{:.1}%", 100.0 * n as f64 / d as f64) };
        let m = self.metrics();
        vec![
            ("slots", self.steps.to_string()),
            ("arrivals", self.arrivals.to_string()),
            ("requests served", self.requests.to_string()),
            ("requests completed", self.completed.to_string()),
            ("latency mean (s)", format!("{:.3}", m.latency_mean_s)),
            ("latency P50 (s)", format!("{:.3}", m.latency_p50_s)),
            ("latency P95 (s)", format!("{:.3}", m.latency_p95_s)),
            ("latency P99 (s)", format!("{:.3}", m.latency_p99_s)),
            ("edge energy / request (J)", format!("{:.2}", m.energy_per_request_j)),
            ("accuracy loss / request (%)", format!("{:.3}", 100.0 * m.accuracy_loss_mean)),
            ("mean backlog (requests)", format!("{:.2}", m.backlog_mean)),
            ("max backlog (requests)", self.backlog_max.to_string()),
            ("dropped", format!("{} ({})", self.dropped, pct(self.dropped, self.arrivals))),
            ("retries (failed crossings)", self.retries.to_string()),
            ("cloud rejections (429/529)", self.rejections.to_string()),
            ("fallbacks to edge-only", self.fallbacks.to_string()),
            ("failed requests (gave up)", self.failed.to_string()),
            ("SLA violations", format!("{} ({})", self.sla_violations, pct(self.sla_violations, self.requests))),
            ("cloud cost (USD)", format!("{:.4}", self.cloud_cost_usd)),
            ("time-avg penalty", format!("{:.4}", m.penalty)),
            ("time-avg drift", format!("{:.4}", m.drift)),
            ("time-avg drift-plus-penalty", format!("{:.4}", m.drift_plus_penalty)),
            ("mean reward", format!("{:.4}", m.reward)),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use splitwise_env::lyapunov::RewardTerms;

    #[test]
    fn quantiles_and_means_by_hand() {
        let mut s = RunSummary::new();
        for ms in 1..=100 {
            s.record_latency(f64::from(ms) / 1000.0);
        }
        // Nearest-rank quantiles of 1..100 ms, within HdrHistogram's 3 significant digits.
        assert!((s.latency_quantile_s(0.5) - 0.050).abs() < 1e-4);
        assert!((s.latency_quantile_s(0.95) - 0.095).abs() < 1e-4);
        assert!((s.latency_quantile_s(0.99) - 0.099).abs() < 1e-4);
        // 1..100 ms sum to 5.05 s over 100 requests.
        assert!((s.mean_latency_s() - 0.0505).abs() < 1e-12);
        let info = StepInfo { started: 4, latency_sum_s: 2.0, energy_j: 8.0, backlog: 3, ..StepInfo::default() };
        s.add_step(&info);
        s.add_step(&StepInfo { backlog: 1, ..StepInfo::default() });
        assert_eq!(s.energy_per_request_j(), 2.0);
        assert_eq!(s.mean_backlog(), 2.0);
        assert_eq!(s.backlog_max, 3);
    }

    #[test]
    fn time_averages_of_every_term_and_merging_by_hand() {
        // Two slots with penalty terms (0.2, 0.1, 0.0, 0.0) and (0.4, 0.3, 0.2, 0.1) and a drop
        // term of 0 and 0.6 in the second, drift 1.0 and −0.5, DPP = drift + V·p with V = 2:
        // 1.0 + 2·0.3 = 1.6 and −0.5 + 2·1.6 = 2.7.
        let terms = |l: f64, e: f64, a: f64, c: f64, d: f64, drift: f64| RewardTerms {
            latency_term: l,
            energy_term: e,
            accuracy_term: a,
            cloud_cost_term: c,
            drop_term: d,
            penalty: l + e + a + c + d,
            v: 2.0,
            drift,
            drift_plus_penalty: drift + 2.0 * (l + e + a + c + d),
            ..RewardTerms::default()
        };
        let mut a = RunSummary::new();
        a.add_step(&StepInfo { backlog: 2, reward: terms(0.2, 0.1, 0.0, 0.0, 0.0, 1.0), ..StepInfo::default() });
        let mut b = RunSummary::new();
        b.add_step(&StepInfo { backlog: 6, reward: terms(0.4, 0.3, 0.2, 0.1, 0.6, -0.5), ..StepInfo::default() });
        b.record_latency(3.0);
        a.merge(&b);
        let m = a.metrics();
        assert_eq!(m.slots, 2);
        assert!((m.latency_term - 0.3).abs() < 1e-12);
        assert!((m.energy_term - 0.2).abs() < 1e-12);
        assert!((m.accuracy_term - 0.1).abs() < 1e-12);
        assert!((m.cloud_cost_term - 0.05).abs() < 1e-12);
        assert!((m.drop_term - 0.3).abs() < 1e-12);
        assert!((m.penalty - 0.95).abs() < 1e-12);
        assert!((m.drift - 0.25).abs() < 1e-12);
        assert!((m.drift_plus_penalty - 2.15).abs() < 1e-12);
        assert_eq!((m.backlog_mean, m.backlog_max), (4.0, 6.0));
        assert_eq!(m.completed, 1);
        assert!((m.latency_p50_s - 3.0).abs() < 3.0e-3, "{}", m.latency_p50_s);
        // Nothing served: per-request numbers are undefined, not zero.
        assert!(RunSummary::new().metrics().latency_mean_s.is_nan());
        assert!(RunSummary::new().metrics().energy_per_request_j.is_nan());
    }
}
