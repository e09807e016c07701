//! Training logs: environment metrics aggregated over a rollout, the stable TensorBoard keys
//! (CleanRL/SB3 names: `charts/*`, `losses/*`, `env/*`; the x-axis is always the global env
//! step) and the progress bar, which stays quiet when stdout is not a terminal.

use crate::config::ProgressMode;
use crate::tensorboard::EventWriter;
use anyhow::Result;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use splitwise_env::api::StepMetrics;
use std::io::IsTerminal;

/// Per-step environment scalars summed over a rollout (all members), in the order the info
/// type visits them, plus per-request latencies for quantiles.
#[derive(Default)]
pub struct EnvMetrics {
    keys: Vec<&'static str>,
    sums: Vec<f64>,
    steps: u64,
    pub latencies_s: Vec<f64>,
}

impl EnvMetrics {
    pub fn add(&mut self, info: &impl StepMetrics) {
        let mut i = 0;
        info.visit_scalars(&mut |key, value| {
            if i == self.keys.len() {
                self.keys.push(key);
                self.sums.push(0.0);
            }
            debug_assert_eq!(self.keys[i], key, "an info type visits its scalars in one fixed order");
            self.sums[i] += value;
            i += 1;
        });
        self.steps += 1;
    }

    fn sum(&self, key: &str) -> Option<f64> {
        self.keys.iter().position(|k| *k == key).map(|i| self.sums[i])
    }

    /// `env/<key>` = per-step mean of every scalar, plus per-request means where the info has
    /// request counts (`env/latency_mean_s`, `env/energy_per_request_j`, `env/accuracy_loss_mean`)
    /// and `env/latency_p95_s` from the drained request latencies.
    pub fn scalars(&mut self) -> Vec<(String, f64)> {
        let mut out = Vec::new();
        if self.steps == 0 {
            return out;
        }
        let n = self.steps as f64;
        for (k, s) in self.keys.iter().zip(&self.sums) {
            out.push((format!("env/{k}"), s / n));
        }
        if let Some(started) = self.sum("started").filter(|&s| s > 0.0) {
            for (sum_key, name) in [
                ("latency_sum_s", "env/latency_mean_s"),
                ("energy_j", "env/energy_per_request_j"),
                ("accuracy_loss_sum", "env/accuracy_loss_mean"),
            ] {
                if let Some(v) = self.sum(sum_key) {
                    out.push((name.to_string(), v / started));
                }
            }
        }
        if !self.latencies_s.is_empty() {
            self.latencies_s.sort_by(f64::total_cmp);
            // Nearest-rank P95.
            let idx = ((0.95 * self.latencies_s.len() as f64).ceil() as usize).clamp(1, self.latencies_s.len()) - 1;
            out.push(("env/latency_p95_s".to_string(), self.latencies_s[idx]));
        }
        out
    }

    pub fn clear(&mut self) {
        self.sums.fill(0.0);
        self.steps = 0;
        self.latencies_s.clear();
    }
}

/// Writes a batch of scalars at one step to TensorBoard, and to the metrics JSON lines when the
/// run writes them (`--metrics-jsonl`).
pub fn log_scalars<'a>(
    tb: &mut EventWriter,
    mut jsonl: Option<&mut crate::metrics_jsonl::MetricsJsonl>,
    step: u64,
    scalars: impl IntoIterator<Item = (&'a str, f64)>,
) -> Result<()> {
    for (tag, value) in scalars {
        tb.add_scalar(tag, value, step)?;
        if let Some(j) = jsonl.as_deref_mut() {
            j.record(step, [(tag, value)])?;
        }
    }
    Ok(())
}

/// A human-readable line: on stdout, or on stderr when stdout carries metrics lines.
pub fn say(to_stderr: bool, line: &str) {
    if to_stderr {
        eprintln!("{line}");
    } else {
        println!("{line}");
    }
}

/// The progress bar: steps, SPS and the recent mean return.
pub struct Progress {
    bar: ProgressBar,
    to_stderr: bool,
}

impl Progress {
    /// `to_stderr`: the bar and its lines go to stderr (stdout carries metrics lines).
    pub fn new(total_steps: u64, start_step: u64, mode: ProgressMode, to_stderr: bool) -> Self {
        let visible = match mode {
            ProgressMode::Always => true,
            ProgressMode::Never => false,
            ProgressMode::Auto if to_stderr => std::io::stderr().is_terminal(),
            ProgressMode::Auto => std::io::stdout().is_terminal(),
        };
        let target = match (visible, to_stderr) {
            (false, _) => ProgressDrawTarget::hidden(),
            (true, true) => ProgressDrawTarget::stderr(),
            (true, false) => ProgressDrawTarget::stdout(),
        };
        let bar = ProgressBar::with_draw_target(Some(total_steps), target);
        let style = ProgressStyle::with_template("{bar:30} {pos}/{len} steps ({elapsed} < {eta}) {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar());
        bar.set_style(style);
        bar.set_position(start_step);
        Self { bar, to_stderr }
    }

    pub fn update(&self, step: u64, sps: f64, recent_return: Option<f64>) {
        self.bar.set_position(step);
        let ret = recent_return.map_or_else(|| "-".to_string(), |r| format!("{r:.2}"));
        self.bar.set_message(format!("| {sps:.0} sps | return {ret}"));
    }

    pub fn finish(&self) {
        self.bar.finish();
    }

    /// A line above the bar (or plain, when the bar is hidden), on stdout or stderr with it.
    pub fn println(&self, line: &str) {
        if self.bar.is_hidden() {
            say(self.to_stderr, line);
        } else {
            self.bar.println(line);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Info(f64, f64, f64);

    impl StepMetrics for Info {
        fn visit_scalars(&self, visit: &mut dyn FnMut(&'static str, f64)) {
            visit("started", self.0);
            visit("latency_sum_s", self.1);
            visit("backlog", self.2);
        }
    }

    #[test]
    fn per_step_and_per_request_means() {
        let mut m = EnvMetrics::default();
        m.add(&Info(2.0, 3.0, 4.0));
        m.add(&Info(0.0, 0.0, 2.0));
        m.latencies_s.extend([0.5, 2.5, 1.0, 9.0]);
        let s: std::collections::HashMap<String, f64> = m.scalars().into_iter().collect();
        assert_eq!(s["env/backlog"], 3.0);
        assert_eq!(s["env/started"], 1.0);
        assert_eq!(s["env/latency_mean_s"], 1.5);
        // Nearest rank of 4 samples at 95 %: the 4th.
        assert_eq!(s["env/latency_p95_s"], 9.0);
        m.clear();
        assert!(m.scalars().is_empty());
    }
}
