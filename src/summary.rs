//! Aggregating a run into the numbers users compare: latency quantiles from a bounded
//! HdrHistogram (no ever-growing list), per-request energy and accuracy, backlog, drops,
//! retries, SLA violations, and the time-average drift-plus-penalty terms.

use hdrhistogram::Histogram;
use splitwise_env::partition::StepInfo;

/// Latencies are recorded in microseconds, 3 significant digits, up to ~11 days.
const LATENCY_MAX_US: u64 = 1_000_000_000_000;

pub struct RunSummary {
    latency_us: Histogram<u64>,
    pub steps: u64,
    pub arrivals: u64,
    pub requests: u64,
    pub dropped: u64,
    pub failed: u64,
    pub fallbacks: u64,
    pub retries: u64,
    pub sla_violations: u64,
    /// Completed requests whose latency was recorded, and the sum of their latencies.
    pub completed: u64,
    pub completed_latency_sum_s: f64,
    pub energy_sum_j: f64,
    pub accuracy_sum: f64,
    pub cloud_cost_usd: f64,
    pub backlog_sum: f64,
    pub backlog_max: u32,
    pub drift_plus_penalty_sum: f64,
    pub penalty_sum: f64,
    pub reward_sum: f64,
    pub repaired: u64,
}

impl Default for RunSummary {
    fn default() -> Self {
        Self::new()
    }
}

impl RunSummary {
    pub fn new() -> Self {
        Self {
            latency_us: Histogram::new_with_bounds(1, LATENCY_MAX_US, 3).expect("static histogram bounds are valid"),
            steps: 0,
            arrivals: 0,
            requests: 0,
            dropped: 0,
            failed: 0,
            fallbacks: 0,
            retries: 0,
            sla_violations: 0,
            completed: 0,
            completed_latency_sum_s: 0.0,
            energy_sum_j: 0.0,
            accuracy_sum: 0.0,
            cloud_cost_usd: 0.0,
            backlog_sum: 0.0,
            backlog_max: 0,
            drift_plus_penalty_sum: 0.0,
            penalty_sum: 0.0,
            reward_sum: 0.0,
            repaired: 0,
        }
    }

    /// Records the latency of a completed request (failed requests are counted, not timed).
    pub fn record_latency(&mut self, latency_s: f64) {
        self.completed += 1;
        self.completed_latency_sum_s += latency_s;
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
        self.sla_violations += u64::from(info.sla_violations);
        self.energy_sum_j += info.energy_j;
        self.accuracy_sum += info.accuracy_loss_sum;
        self.cloud_cost_usd += info.cloud_cost_usd;
        self.backlog_sum += f64::from(info.backlog);
        self.backlog_max = self.backlog_max.max(info.backlog);
        self.drift_plus_penalty_sum += info.reward.drift_plus_penalty;
        self.penalty_sum += info.reward.penalty;
        self.reward_sum += info.reward.reward;
        self.repaired += u64::from(info.repaired);
    }

    pub fn latency_quantile_s(&self, q: f64) -> f64 {
        if self.latency_us.is_empty() { f64::NAN } else { self.latency_us.value_at_quantile(q) as f64 / 1e6 }
    }

    fn per_request(&self, sum: f64) -> f64 {
        if self.requests == 0 { f64::NAN } else { sum / self.requests as f64 }
    }

    fn per_step(&self, sum: f64) -> f64 {
        if self.steps == 0 { f64::NAN } else { sum / self.steps as f64 }
    }

    /// Mean latency of completed requests.
    pub fn mean_latency_s(&self) -> f64 {
        if self.completed == 0 { f64::NAN } else { self.completed_latency_sum_s / self.completed as f64 }
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

    /// Rows of (metric, value) for the summary table.
    pub fn rows(&self) -> Vec<(&'static str, String)> {
        let pct =
            |n: u64, d: u64| if d == 0 { "-".to_string() } else { format!("{:.1}%", 100.0 * n as f64 / d as f64) };
        vec![
            ("slots", self.steps.to_string()),
            ("arrivals", self.arrivals.to_string()),
            ("requests served", self.requests.to_string()),
            ("requests completed", self.completed.to_string()),
            ("latency mean (s)", format!("{:.3}", self.mean_latency_s())),
            ("latency P50 (s)", format!("{:.3}", self.latency_quantile_s(0.50))),
            ("latency P95 (s)", format!("{:.3}", self.latency_quantile_s(0.95))),
            ("latency P99 (s)", format!("{:.3}", self.latency_quantile_s(0.99))),
            ("edge energy / request (J)", format!("{:.2}", self.energy_per_request_j())),
            ("accuracy loss / request (%)", format!("{:.3}", 100.0 * self.mean_accuracy_loss())),
            ("mean backlog (requests)", format!("{:.2}", self.mean_backlog())),
            ("max backlog (requests)", self.backlog_max.to_string()),
            ("dropped", format!("{} ({})", self.dropped, pct(self.dropped, self.arrivals))),
            ("retries (failed crossings)", self.retries.to_string()),
            ("fallbacks to edge-only", self.fallbacks.to_string()),
            ("failed requests", self.failed.to_string()),
            ("SLA violations", format!("{} ({})", self.sla_violations, pct(self.sla_violations, self.requests))),
            ("cloud cost (USD)", format!("{:.4}", self.cloud_cost_usd)),
            ("time-avg penalty", format!("{:.4}", self.per_step(self.penalty_sum))),
            ("time-avg drift-plus-penalty", format!("{:.4}", self.per_step(self.drift_plus_penalty_sum))),
            ("mean reward", format!("{:.4}", self.per_step(self.reward_sum))),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
