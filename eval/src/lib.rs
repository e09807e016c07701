//! Evaluation: baselines, runner, reports and plots.
