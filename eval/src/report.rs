//! The evaluation report: rows (specs sharing a label aggregate into one row, e.g. several
//! training seeds of one agent), 95 % Student-t confidence intervals over episodes, ratios
//! against cloud-only and the best layer-wise partitioner (paired over the common-random-number
//! episodes), and the output folder: `report.md`, `metrics.json`, `per_request.csv`,
//! `per_slot.csv` and `plots/`.
//!
//! The report states the time-average penalty terms, the time-average backlog and the
//! time-average drift-plus-penalty value separately (system-model §7, note on discounting: a
//! policy trained with γ < 1 optimises a somewhat different trade-off than the one-slot
//! minimiser, so policies are compared on these, never on training return alone), and marks
//! oracle policies (§10).
//!
//! The folder is written next to its final place and renamed into it, so a crash never leaves
//! a half-written report that looks complete.

use crate::plots;
use crate::runner::summary::EpisodeMetrics;
use crate::runner::{Evaluation, PolicyRole, PolicyRun, ScenarioResult};
use anyhow::{Context, Result, bail};
use serde::Serialize;
use statrs::distribution::{ContinuousCDF, StudentsT};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// Format tag of `metrics.json`.
pub const METRICS_FORMAT: &str = "splitwise-eval-metrics-v1";
/// Two-sided confidence level of every interval in the report.
pub const CONFIDENCE: f64 = 0.95;
/// Marks oracle rows (they read the true current state, §10).
pub const ORACLE_MARK: &str = "†";

/// One reported metric: a per-episode value, how to show it.
pub struct MetricDef {
    pub key: &'static str,
    pub title: &'static str,
    /// Multiplier for display (fractions shown in %).
    pub display_scale: f64,
    pub get: fn(&EpisodeMetrics) -> f64,
}

macro_rules! metric {
    ($key:ident, $title:expr) => {
        metric!($key, $title, 1.0)
    };
    ($key:ident, $title:expr, $scale:expr) => {
        MetricDef { key: stringify!($key), title: $title, display_scale: $scale, get: |m| m.$key as f64 }
    };
}

/// Every metric of a row, in report order (keys are the `metrics.json` keys).
pub const METRICS: &[MetricDef] = &[
    metric!(arrivals, "arrivals"),
    metric!(served, "served"),
    metric!(completed, "completed"),
    metric!(latency_mean_s, "mean latency (s)"),
    metric!(latency_p50_s, "P50 (s)"),
    metric!(latency_p95_s, "P95 (s)"),
    metric!(latency_p99_s, "P99 (s)"),
    metric!(latency_max_s, "max latency (s)"),
    metric!(energy_per_request_j, "edge energy / request (J)"),
    metric!(accuracy_loss_mean, "accuracy loss (%)", 100.0),
    metric!(cloud_cost_usd, "cloud cost (USD)"),
    metric!(backlog_mean, "mean backlog"),
    metric!(backlog_max, "max backlog"),
    metric!(dropped, "drops"),
    metric!(drop_fraction, "drops (%)", 100.0),
    metric!(recoveries, "retries"),
    metric!(rejections, "rejections"),
    metric!(fallbacks, "fallbacks"),
    metric!(failed, "gave up"),
    metric!(sla_violations, "SLA violations"),
    metric!(sla_violation_fraction, "SLA violations (%)", 100.0),
    metric!(plan_changes, "plan changes"),
    metric!(repaired, "repaired actions"),
    metric!(latency_term, "latency term"),
    metric!(energy_term, "energy term"),
    metric!(accuracy_term, "accuracy term"),
    metric!(cloud_cost_term, "cloud-cost term"),
    metric!(drop_term, "drop term"),
    metric!(penalty, "penalty p"),
    metric!(lyapunov_v, "V"),
    metric!(energy_queue_j, "Z_E (J)"),
    metric!(accuracy_queue, "Z_A"),
    metric!(drift, "drift Δ"),
    metric!(drift_plus_penalty, "Δ + V·p"),
    metric!(reward, "reward"),
];

pub fn metric_index(key: &str) -> usize {
    METRICS.iter().position(|m| m.key == key).unwrap_or_else(|| panic!("metric `{key}` is in METRICS"))
}

/// Metrics the ratio columns compare.
pub const RATIO_METRICS: &[&str] = &["latency_mean_s", "latency_p95_s", "energy_per_request_j"];

/// Mean and 95 % confidence half-width of a sample.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Stat {
    pub mean: f64,
    /// Half-width of the 95 % Student-t interval; NaN with fewer than two values.
    pub ci95: f64,
    pub n: usize,
}

impl Stat {
    /// Over the finite values of `xs` (NaN marks "undefined in this episode").
    pub fn of(xs: &[f64]) -> Self {
        let v: Vec<f64> = xs.iter().copied().filter(|x| x.is_finite()).collect();
        let n = v.len();
        if n == 0 {
            return Self { mean: f64::NAN, ci95: f64::NAN, n };
        }
        let mean = v.iter().sum::<f64>() / n as f64;
        if n < 2 {
            return Self { mean, ci95: f64::NAN, n };
        }
        let var = v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
        Self { mean, ci95: t_quantile(n - 1) * (var / n as f64).sqrt(), n }
    }
}

/// The two-sided `CONFIDENCE` quantile of Student's t with `dof` degrees of freedom.
pub fn t_quantile(dof: usize) -> f64 {
    StudentsT::new(0.0, 1.0, dof as f64)
        .map(|t| t.inverse_cdf(0.5 + CONFIDENCE / 2.0))
        .expect("dof >= 1 gives a valid Student-t")
}

/// Spread of a metric across the members of a row (e.g. training seeds).
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Spread {
    pub n: usize,
    /// Sample standard deviation of the members' means.
    pub sd: f64,
    pub min: f64,
    pub max: f64,
}

impl Spread {
    fn of(xs: &[f64]) -> Self {
        let v: Vec<f64> = xs.iter().copied().filter(|x| x.is_finite()).collect();
        let n = v.len();
        let mean = v.iter().sum::<f64>() / n.max(1) as f64;
        let sd = if n > 1 { (v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1) as f64).sqrt() } else { 0.0 };
        Self {
            n,
            sd,
            min: v.iter().copied().fold(f64::INFINITY, f64::min),
            max: v.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        }
    }
}

/// A ratio against a reference row, paired over episodes: the mean of the per-episode ratios.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Ratio {
    pub reference: String,
    pub metric: &'static str,
    pub stat: Stat,
}

/// One report row: the specs sharing a label.
pub struct Row<'a> {
    pub label: String,
    pub role: PolicyRole,
    pub members: Vec<&'a PolicyRun>,
    /// `values[m][k]`: metric `m` in episode `k`, averaged over the members.
    pub values: Vec<Vec<f64>>,
    pub stats: Vec<Stat>,
    /// Per metric, across members (only with several members).
    pub spread: Option<Vec<Spread>>,
    pub ratios: Vec<Ratio>,
}

impl Row<'_> {
    pub fn stat(&self, key: &str) -> Stat {
        self.stats[metric_index(key)]
    }

    /// The row's label with the oracle mark.
    pub fn display_label(&self) -> String {
        if self.role.oracle { format!("{}{ORACLE_MARK}", self.label) } else { self.label.clone() }
    }
}

/// The references the ratio columns divide by.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct References {
    pub cloud_only: Option<String>,
    pub best_layer_wise: Option<String>,
}

/// Groups a scenario's runs into rows and computes their statistics and ratios.
pub fn rows(s: &ScenarioResult) -> (Vec<Row<'_>>, References) {
    let mut order: Vec<String> = Vec::new();
    let mut groups: BTreeMap<String, Vec<&PolicyRun>> = BTreeMap::new();
    for run in &s.runs {
        if !groups.contains_key(&run.label) {
            order.push(run.label.clone());
        }
        groups.entry(run.label.clone()).or_default().push(run);
    }
    let mut rows: Vec<Row<'_>> = order
        .into_iter()
        .map(|label| {
            let members = groups.remove(&label).unwrap_or_default();
            let role = PolicyRole {
                oracle: members.iter().any(|m| m.role.oracle),
                layer_wise: members.iter().all(|m| m.role.layer_wise),
                cloud_only: members.iter().all(|m| m.role.cloud_only),
                static_plan: members.iter().all(|m| m.role.static_plan),
                clairvoyant: members.iter().any(|m| m.role.clairvoyant),
                learned: members.iter().any(|m| m.role.learned),
            };
            let n_episodes = members.iter().map(|m| m.episodes.len()).min().unwrap_or(0);
            let values: Vec<Vec<f64>> = METRICS
                .iter()
                .map(|def| {
                    (0..n_episodes)
                        .map(|k| {
                            let xs: Vec<f64> = members
                                .iter()
                                .map(|m| (def.get)(&m.episodes[k].metrics))
                                .filter(|x| x.is_finite())
                                .collect();
                            if xs.is_empty() { f64::NAN } else { xs.iter().sum::<f64>() / xs.len() as f64 }
                        })
                        .collect()
                })
                .collect();
            let stats = values.iter().map(|v| Stat::of(v)).collect();
            let spread = (members.len() > 1).then(|| {
                METRICS
                    .iter()
                    .map(|def| {
                        let means: Vec<f64> = members
                            .iter()
                            .map(|m| {
                                let xs: Vec<f64> = m.episodes.iter().map(|e| (def.get)(&e.metrics)).collect();
                                Stat::of(&xs).mean
                            })
                            .collect();
                        Spread::of(&means)
                    })
                    .collect()
            });
            Row { label, role, members, values, stats, spread, ratios: Vec::new() }
        })
        .collect();
    let latency = metric_index("latency_mean_s");
    let cloud_only = rows.iter().position(|r| r.role.cloud_only);
    // The best layer-wise partitioner: the lowest mean latency among layer-wise baselines,
    // non-oracle ones first (an oracle reference only when no other is present).
    let best_layer_wise = [false, true].into_iter().find_map(|oracle_allowed| {
        rows.iter()
            .enumerate()
            .filter(|(_, r)| r.role.layer_wise && (oracle_allowed || !r.role.oracle))
            .filter(|(_, r)| r.stats[latency].mean.is_finite())
            .min_by(|a, b| a.1.stats[latency].mean.total_cmp(&b.1.stats[latency].mean))
            .map(|(i, _)| i)
    });
    let refs = References {
        cloud_only: cloud_only.map(|i| rows[i].label.clone()),
        best_layer_wise: best_layer_wise.map(|i| rows[i].label.clone()),
    };
    let mut all_ratios = Vec::with_capacity(rows.len());
    for row in &rows {
        let mut ratios = Vec::new();
        for reference in [cloud_only, best_layer_wise].into_iter().flatten() {
            let r = &rows[reference];
            for &key in RATIO_METRICS {
                let m = metric_index(key);
                let per_episode: Vec<f64> = row.values[m]
                    .iter()
                    .zip(&r.values[m])
                    .map(|(x, y)| if *y > 0.0 { x / y } else { f64::NAN })
                    .collect();
                ratios.push(Ratio { reference: r.label.clone(), metric: key, stat: Stat::of(&per_episode) });
            }
        }
        all_ratios.push(ratios);
    }
    for (row, ratios) in rows.iter_mut().zip(all_ratios) {
        row.ratios = ratios;
    }
    (rows, refs)
}

/// Whether every policy saw the same exogenous conditions in every episode (common random
/// numbers); `None` when they did, otherwise the first mismatch.
pub fn crn_mismatch(s: &ScenarioResult) -> Option<String> {
    let first = s.runs.first()?;
    for run in &s.runs[1..] {
        for (a, b) in first.episodes.iter().zip(&run.episodes) {
            if a.exogenous_digest != b.exogenous_digest {
                return Some(format!(
                    "episode {}: `{}` saw {} but `{}` saw {}",
                    a.episode, first.spec, a.exogenous_digest, run.spec, b.exogenous_digest
                ));
            }
        }
    }
    None
}

// ---------------------------------------------------------------------------------------------
// Formatting
// ---------------------------------------------------------------------------------------------

/// About four significant digits, fixed point.
pub fn fmt_num(x: f64) -> String {
    fmt_with(x, decimals_for(x))
}

/// Magnitudes below this print as 0 (e.g. a time-average drift that telescoped to rounding
/// noise).
const ZERO_BELOW: f64 = 1e-9;

fn decimals_for(x: f64) -> usize {
    if !x.is_finite() || x.abs() < ZERO_BELOW {
        return 0;
    }
    (3 - x.abs().log10().floor() as i64).clamp(0, 6) as usize
}

fn fmt_with(x: f64, decimals: usize) -> String {
    if x.is_nan() {
        return "–".to_string();
    }
    let x = if x.abs() < ZERO_BELOW { 0.0 } else { x };
    let s = format!("{x:.decimals$}");
    // "-0.000" reads as a sign error.
    if s.trim_start_matches('-').chars().all(|c| c == '0' || c == '.') {
        s.trim_start_matches('-').to_string()
    } else {
        s
    }
}

/// `mean ± half-width` (the half-width at the mean's precision).
pub fn fmt_stat(s: &Stat, scale: f64) -> String {
    let mean = s.mean * scale;
    let d = decimals_for(mean);
    if s.ci95.is_finite() {
        format!("{} ± {}", fmt_with(mean, d), fmt_with(s.ci95 * scale, d))
    } else {
        fmt_with(mean, d)
    }
}

fn table(out: &mut String, header: &[String], rows: &[Vec<String>]) {
    let _ = writeln!(out, "| {} |", header.join(" | "));
    let _ = writeln!(
        out,
        "|{}",
        header.iter().enumerate().map(|(i, _)| if i == 0 { "---|" } else { "---:|" }).collect::<String>()
    );
    for r in rows {
        let _ = writeln!(out, "| {} |", r.join(" | "));
    }
    out.push('\n');
}

fn metric_table(out: &mut String, rows: &[Row<'_>], keys: &[&str]) {
    let mut header = vec!["policy".to_string()];
    header.extend(keys.iter().map(|k| METRICS[metric_index(k)].title.to_string()));
    let body: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            let mut cells = vec![r.display_label()];
            cells.extend(keys.iter().map(|k| {
                let def = &METRICS[metric_index(k)];
                fmt_stat(&r.stat(k), def.display_scale)
            }));
            cells
        })
        .collect();
    table(out, &header, &body);
}

/// What the report says about how it was made.
pub struct Header {
    /// The command line, for reproduction.
    pub command: String,
    pub version: String,
}

/// `report.md` of an evaluation; `plots[s]` lists the plot files of scenario `s` (relative).
pub fn markdown(eval: &Evaluation, header: &Header, plots: &[Vec<String>]) -> String {
    let c = &eval.config;
    let mut out = String::new();
    let _ = writeln!(out, "# Evaluation report\n");
    let _ = writeln!(out, "- command: `{}`", header.command);
    let _ = writeln!(out, "- splitwise {}", header.version);
    let _ = writeln!(
        out,
        "- {} episode(s) per policy; episode k of every policy uses seed `derive_seed({}, k)` \
         (common random numbers: the same arrivals, lengths and channel for every policy)",
        c.episodes, c.seed
    );
    out.push_str(
        "- ± is the half-width of the 95 % Student-t confidence interval over episodes; \
         per-episode values are averaged first (latency quantiles per episode, HdrHistogram, 0.1 % \
         resolution), and a row that aggregates several specs (one label, e.g. training seeds) \
         averages them per episode and lists their spread below\n",
    );
    let _ = writeln!(
        out,
        "- {ORACLE_MARK} oracle: reads the true current state (exact bandwidth, exact cloud load) \
         instead of estimating it from the observation (system-model §10); not a deployable policy\n"
    );
    for (si, s) in eval.scenarios.iter().enumerate() {
        scenario_markdown(&mut out, s, plots.get(si).map_or(&[][..], |p| &p[..]));
    }
    out.push_str(
        "## Note on discounting\n\n\
         Under a discount γ < 1 the summed drift terms of the drift-plus-penalty reward largely \
         telescope, so a learned policy optimises a somewhat different trade-off than the one-slot \
         drift-plus-penalty minimiser (system-model §7). The tables therefore state the time-average \
         penalty terms, the time-average backlog and the time-average drift-plus-penalty value \
         separately; compare policies on these, never on training return alone.\n",
    );
    out
}

fn scenario_markdown(out: &mut String, s: &ScenarioResult, plots: &[String]) {
    let (rows, refs) = rows(s);
    let _ = writeln!(out, "## Scenario `{}`\n", s.name);
    let _ = writeln!(out, "- from the {} `{}`", s.source_kind.describe(), s.source);
    let _ = writeln!(out, "- environment {}, {} slots per episode", s.env_id, s.slots_per_episode);
    // The scenario's stated motivation (its first paragraph, system-model §0).
    let motivation: Vec<&str> = s.description.trim().lines().map(str::trim).take_while(|l| !l.is_empty()).collect();
    if !motivation.is_empty() {
        let _ = writeln!(out, "- {}", motivation.join(" "));
    }
    for note in &s.notes {
        let _ = writeln!(out, "- note: {note}");
    }
    match crn_mismatch(s) {
        None => {
            let _ = writeln!(
                out,
                "- common random numbers verified: every policy saw identical exogenous conditions \
                 in every episode (equal digests of arrivals, link rate, SNR, cloud load, failures, \
                 edge memory)"
            );
        }
        Some(m) => {
            let _ = writeln!(out, "- **WARNING: policies saw different exogenous conditions** ({m})");
        }
    }
    out.push('\n');
    let _ = writeln!(out, "### Latency, energy and accuracy (per request)\n");
    metric_table(
        out,
        &rows,
        &[
            "served",
            "latency_mean_s",
            "latency_p50_s",
            "latency_p95_s",
            "latency_p99_s",
            "energy_per_request_j",
            "accuracy_loss_mean",
            "cloud_cost_usd",
        ],
    );
    let _ = writeln!(out, "### Queue and reliability (per episode)\n");
    metric_table(
        out,
        &rows,
        &[
            "backlog_mean",
            "backlog_max",
            "dropped",
            "recoveries",
            "rejections",
            "fallbacks",
            "failed",
            "sla_violations",
            "sla_violation_fraction",
        ],
    );
    let _ = writeln!(
        out,
        "### Drift-plus-penalty, time averages per slot (system-model §7)\n\n\
         Penalty terms (each weighted and normalised as the scenario's `reward` section says), \
         their sum p, the time-average backlog Q and virtual queues, the drift Δ and the \
         drift-plus-penalty value Δ + V·p, stated separately.\n"
    );
    metric_table(
        out,
        &rows,
        &[
            "latency_term",
            "energy_term",
            "accuracy_term",
            "cloud_cost_term",
            "drop_term",
            "penalty",
            "backlog_mean",
            "energy_queue_j",
            "accuracy_queue",
            "drift",
            "drift_plus_penalty",
            "reward",
        ],
    );
    headroom_markdown(out, &rows);
    ratio_markdown(out, &rows, &refs);
    spread_markdown(out, &rows);
    let _ = writeln!(out, "### Throughput\n");
    let body: Vec<Vec<String>> = s
        .runs
        .iter()
        .map(|r| {
            vec![
                format!("`{}`", r.spec),
                fmt_num(r.episodes_per_s()),
                fmt_num(r.episodes_per_s() * s.slots_per_episode as f64),
            ]
        })
        .collect();
    table(out, &["spec".into(), "episodes/s".into(), "slots/s".into()], &body);
    if !plots.is_empty() {
        let _ = writeln!(out, "### Plots\n");
        for p in plots.iter().filter(|p| p.ends_with(".png")) {
            let _ = writeln!(out, "![{p}]({p})\n");
        }
    }
}

fn headroom_markdown(out: &mut String, rows: &[Row<'_>]) {
    let _ = writeln!(out, "### Headroom: best static plan, best causal baseline, clairvoyant bound\n");
    let Some(h) = crate::headroom::headroom(rows) else {
        let _ = writeln!(
            out,
            "No headroom: it needs a static-plan row (`best-fixed`, `static-best`, `cloud-only`, …) and a \
             `clairvoyant` row (both are added unless `--no-headroom`).\n"
        );
        return;
    };
    let dpp = |label: &str| {
        rows.iter()
            .find(|r| r.label == label)
            .map_or_else(|| "–".into(), |r| fmt_stat(&r.stat("drift_plus_penalty"), 1.0))
    };
    let _ = writeln!(
        out,
        "Best static plan: `{}` (Δ + V·p {}); best causal baseline: {}; clairvoyant bound{ORACLE_MARK}: `{}` \
         (Δ + V·p {}). **Headroom over the best static plan: {} of Δ + V·p, {}× lower mean latency.**\n\n\
         Capture = (S − P)/(S − C) per metric (S: best static plan, C: the bound; 1 = all of the \
         headroom, 0 = no better than the best static plan), with a 95 % bootstrap interval over the \
         paired episodes. All four metrics are lower-is-better.\n",
        h.best_static,
        dpp(&h.best_static),
        h.best_causal.as_ref().map_or_else(|| "–".into(), |b| format!("`{b}` (Δ + V·p {})", dpp(b))),
        h.clairvoyant,
        dpp(&h.clairvoyant),
        if h.objective_headroom.is_finite() { format!("{:.1} %", 100.0 * h.objective_headroom) } else { "–".into() },
        fmt_num(h.latency_ratio),
    );
    let mut header = vec!["policy".to_string()];
    header
        .extend(["capture Δ + V·p", "capture mean latency", "capture P95", "capture energy/request"].map(String::from));
    let body: Vec<Vec<String>> = rows
        .iter()
        .zip(&h.rows)
        .map(|(r, c)| {
            let mut cells = vec![r.display_label()];
            cells.extend(c.captures.iter().map(|x| {
                if !x.mean.is_finite() {
                    "–".to_string()
                } else if x.lo.is_finite() {
                    format!("{:.2} [{:.2}, {:.2}]", x.mean, x.lo, x.hi)
                } else {
                    format!("{:.2}", x.mean)
                }
            }));
            cells
        })
        .collect();
    table(out, &header, &body);
}

fn ratio_markdown(out: &mut String, rows: &[Row<'_>], refs: &References) {
    let _ = writeln!(out, "### Ratios (paired over episodes: mean of per-episode ratios)\n");
    let names = [("cloud-only", &refs.cloud_only), ("best layer-wise", &refs.best_layer_wise)];
    let present: Vec<(&str, &String)> = names.iter().filter_map(|(n, r)| r.as_ref().map(|r| (*n, r))).collect();
    if present.is_empty() {
        let _ = writeln!(
            out,
            "No reference in this run: add `cloud-only` and a layer-wise baseline (e.g. \
             `neurosurgeon`) to `--policies` for ratio columns.\n"
        );
        return;
    }
    for (name, label) in &present {
        let oracle = rows.iter().any(|r| &r.label == *label && r.role.oracle);
        let _ = writeln!(out, "- {name} reference: `{label}`{}", if oracle { " (an oracle)" } else { "" });
    }
    if refs.cloud_only.is_none() {
        let _ = writeln!(out, "- no cloud-only row: add `cloud-only` to `--policies` for its ratios");
    }
    if refs.best_layer_wise.is_none() {
        let _ = writeln!(out, "- no layer-wise baseline in this run (e.g. `neurosurgeon`)");
    }
    out.push('\n');
    let mut header = vec!["policy".to_string()];
    for (name, _) in &present {
        header.push(format!("mean latency ÷ {name}"));
        header.push(format!("P95 ÷ {name}"));
        header.push(format!("energy ÷ {name}"));
    }
    let body: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            let mut cells = vec![r.display_label()];
            cells.extend(r.ratios.iter().map(|x| fmt_stat(&x.stat, 1.0)));
            cells
        })
        .collect();
    table(out, &header, &body);
}

fn spread_markdown(out: &mut String, rows: &[Row<'_>]) {
    let multi: Vec<&Row<'_>> = rows.iter().filter(|r| r.spread.is_some()).collect();
    if multi.is_empty() {
        return;
    }
    let _ = writeln!(
        out,
        "### Spread across the specs of one row (e.g. training seeds)\n\n\
         sd of the members' means [min, max].\n"
    );
    let keys = ["latency_mean_s", "latency_p95_s", "energy_per_request_j", "backlog_mean", "drift_plus_penalty"];
    let mut header = vec!["policy".to_string(), "specs".to_string()];
    header.extend(keys.iter().map(|k| METRICS[metric_index(k)].title.to_string()));
    let body: Vec<Vec<String>> = multi
        .iter()
        .map(|r| {
            let spread = r.spread.as_deref().unwrap_or_default();
            let mut cells = vec![r.display_label(), r.members.len().to_string()];
            cells.extend(keys.iter().map(|k| {
                let i = metric_index(k);
                let s = spread[i];
                let scale = METRICS[i].display_scale;
                format!("{} [{}, {}]", fmt_num(s.sd * scale), fmt_num(s.min * scale), fmt_num(s.max * scale))
            }));
            cells
        })
        .collect();
    table(out, &header, &body);
}

// ---------------------------------------------------------------------------------------------
// metrics.json
// ---------------------------------------------------------------------------------------------

#[derive(Serialize)]
struct JsonMetric {
    #[serde(flatten)]
    stat: Stat,
    #[serde(skip_serializing_if = "Option::is_none")]
    across_specs: Option<Spread>,
}

#[derive(Serialize)]
struct JsonMember<'a> {
    spec: &'a str,
    oracle: bool,
    wall_s: f64,
    episodes_per_s: f64,
    /// Pooled over every episode: quantiles of all requests together.
    pooled: EpisodeMetrics,
    episodes: &'a [crate::runner::EpisodeResult],
}

#[derive(Serialize)]
struct JsonRow<'a> {
    label: String,
    oracle: bool,
    layer_wise: bool,
    cloud_only: bool,
    static_plan: bool,
    clairvoyant: bool,
    learned: bool,
    metrics: BTreeMap<&'static str, JsonMetric>,
    ratios: Vec<Ratio>,
    members: Vec<JsonMember<'a>>,
}

#[derive(Serialize)]
struct JsonScenario<'a> {
    name: &'a str,
    source: &'a str,
    source_kind: crate::runner::SourceKind,
    env_id: &'a str,
    slots_per_episode: u64,
    common_random_numbers_verified: bool,
    references: References,
    headroom: Option<crate::headroom::Headroom>,
    rows: Vec<JsonRow<'a>>,
}

#[derive(Serialize)]
struct JsonReport<'a> {
    format: &'static str,
    command: &'a str,
    version: &'a str,
    episodes: u32,
    seed: u64,
    episode_seeds: Vec<u64>,
    confidence: f64,
    scenarios: Vec<JsonScenario<'a>>,
}

pub fn metrics_json(eval: &Evaluation, header: &Header) -> Result<String> {
    let c = &eval.config;
    let scenarios = eval
        .scenarios
        .iter()
        .map(|s| {
            let (rows, references) = rows(s);
            let json_rows = rows
                .iter()
                .map(|r| JsonRow {
                    label: r.label.clone(),
                    oracle: r.role.oracle,
                    layer_wise: r.role.layer_wise,
                    cloud_only: r.role.cloud_only,
                    static_plan: r.role.static_plan,
                    clairvoyant: r.role.clairvoyant,
                    learned: r.role.learned,
                    metrics: METRICS
                        .iter()
                        .enumerate()
                        .map(|(i, d)| {
                            (d.key, JsonMetric { stat: r.stats[i], across_specs: r.spread.as_ref().map(|s| s[i]) })
                        })
                        .collect(),
                    ratios: r.ratios.clone(),
                    members: r
                        .members
                        .iter()
                        .map(|m| JsonMember {
                            spec: &m.spec,
                            oracle: m.role.oracle,
                            wall_s: m.wall_s,
                            episodes_per_s: m.episodes_per_s(),
                            pooled: m.pooled.metrics(),
                            episodes: &m.episodes,
                        })
                        .collect(),
                })
                .collect();
            JsonScenario {
                name: &s.name,
                source: &s.source,
                source_kind: s.source_kind,
                env_id: &s.env_id,
                slots_per_episode: s.slots_per_episode,
                common_random_numbers_verified: crn_mismatch(s).is_none(),
                headroom: crate::headroom::headroom(&rows),
                references,
                rows: json_rows,
            }
        })
        .collect();
    let report = JsonReport {
        format: METRICS_FORMAT,
        command: &header.command,
        version: &header.version,
        episodes: c.episodes,
        seed: c.seed,
        episode_seeds: (0..c.episodes).map(|k| crate::runner::episode_seed(c.seed, k)).collect(),
        confidence: CONFIDENCE,
        scenarios,
    };
    serde_json::to_string_pretty(&report).context("serialising metrics.json")
}

// ---------------------------------------------------------------------------------------------
// CSV files and the output folder
// ---------------------------------------------------------------------------------------------

#[derive(Serialize)]
struct RequestCsvRow<'a> {
    scenario: &'a str,
    policy: &'a str,
    spec: &'a str,
    episode: u32,
    id: u64,
    slot: u64,
    arrival_s: f64,
    start_s: f64,
    end_s: f64,
    latency_s: f64,
    n_in: u32,
    n_out: u32,
    deadline_s: Option<f64>,
    sla_violated: bool,
    energy_j: f64,
    accuracy_loss: f64,
    cloud_gpu_s: f64,
    failures: u32,
    rejections: u32,
    fell_back: bool,
    failed: bool,
    split_layer: u32,
    edge_share: f64,
    precision_bits: u8,
    crossings: u64,
}

#[derive(Serialize)]
struct SlotCsvRow<'a> {
    scenario: &'a str,
    policy: &'a str,
    spec: &'a str,
    episode: u32,
    slot: u64,
    arrivals: u32,
    started: u32,
    backlog: u32,
    split_layer: u32,
    edge_share: f64,
    precision_bits: u8,
    plan_changed: bool,
    rate_bps: f64,
    cloud_load: f64,
    crossing_failure_probability: f64,
    penalty: f64,
    drift_plus_penalty: f64,
}

/// `per_request.csv`: one row per served request of every episode (failed ones flagged).
pub fn write_requests_csv(eval: &Evaluation, path: &Path) -> Result<()> {
    let mut w = csv::Writer::from_path(path).with_context(|| format!("cannot create {}", path.display()))?;
    for s in &eval.scenarios {
        for run in &s.runs {
            for row in &run.requests {
                let r = &row.record;
                w.serialize(RequestCsvRow {
                    scenario: &s.name,
                    policy: &run.label,
                    spec: &run.spec,
                    episode: row.episode,
                    id: r.id,
                    slot: r.slot,
                    arrival_s: r.arrival_s,
                    start_s: r.start_s,
                    end_s: r.end_s,
                    latency_s: r.latency_s,
                    n_in: r.n_in,
                    n_out: r.n_out,
                    deadline_s: r.deadline_s,
                    sla_violated: r.sla_violated,
                    energy_j: r.energy_j,
                    accuracy_loss: r.accuracy_loss,
                    cloud_gpu_s: r.cloud_gpu_s,
                    failures: r.failures,
                    rejections: r.rejections,
                    fell_back: r.fell_back,
                    failed: r.failed,
                    split_layer: r.split_layer,
                    edge_share: r.edge_share,
                    precision_bits: r.precision_bits,
                    crossings: r.crossings,
                })
                .with_context(|| format!("writing {}", path.display()))?;
            }
        }
    }
    w.flush().with_context(|| format!("writing {}", path.display()))
}

/// `per_slot.csv`: the traced episodes slot by slot (what the time-series plots draw).
pub fn write_slots_csv(eval: &Evaluation, path: &Path) -> Result<()> {
    let mut w = csv::Writer::from_path(path).with_context(|| format!("cannot create {}", path.display()))?;
    for s in &eval.scenarios {
        for run in &s.runs {
            for t in &run.traces {
                w.serialize(SlotCsvRow {
                    scenario: &s.name,
                    policy: &run.label,
                    spec: &run.spec,
                    episode: t.episode,
                    slot: t.slot,
                    arrivals: t.arrivals,
                    started: t.started,
                    backlog: t.backlog,
                    split_layer: t.split_layer,
                    edge_share: t.edge_share,
                    precision_bits: t.precision_bits,
                    plan_changed: t.plan_changed,
                    rate_bps: t.rate_bps,
                    cloud_load: t.cloud_load,
                    crossing_failure_probability: t.crossing_failure_probability,
                    penalty: t.penalty,
                    drift_plus_penalty: t.drift_plus_penalty,
                })
                .with_context(|| format!("writing {}", path.display()))?;
            }
        }
    }
    w.flush().with_context(|| format!("writing {}", path.display()))
}

/// Files that mark a folder as an earlier evaluation output (which a new run may replace).
const OUTPUT_MARKERS: &[&str] = &["report.md", "metrics.json"];

/// Refuses an output path that exists and is not an empty folder or an earlier evaluation
/// output (called before any work, and again before the final rename).
pub fn check_output_dir(out: &Path) -> Result<()> {
    if !out.exists() {
        return Ok(());
    }
    if !out.is_dir() {
        bail!("--out {} exists and is not a folder", out.display());
    }
    let mut entries = std::fs::read_dir(out).with_context(|| format!("cannot read {}", out.display()))?;
    let empty = entries.next().is_none();
    if empty || OUTPUT_MARKERS.iter().any(|m| out.join(m).is_file()) {
        return Ok(());
    }
    bail!(
        "--out {} exists and is not an evaluation output (no report.md or metrics.json in it); \
         choose a new or empty folder",
        out.display()
    )
}

/// Folder-safe name of a scenario.
fn folder_name(name: &str) -> String {
    let s: String =
        name.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '_' }).collect();
    if s.is_empty() { "scenario".into() } else { s }
}

/// What [`write_outputs`] wrote (paths inside the output folder).
#[derive(Clone, Debug, PartialEq)]
pub struct Written {
    pub dir: PathBuf,
    pub plots: Vec<String>,
}

/// Writes the whole output folder (see [`write_folder_atomically`]), `report.md` last.
pub fn write_outputs(eval: &Evaluation, header: &Header, out: &Path) -> Result<Written> {
    let mut all_plots = Vec::new();
    write_folder_atomically(out, |tmp| {
        write_requests_csv(eval, &tmp.join("per_request.csv"))?;
        write_slots_csv(eval, &tmp.join("per_slot.csv"))?;
        std::fs::write(tmp.join("metrics.json"), metrics_json(eval, header)?)
            .with_context(|| format!("writing {}", tmp.join("metrics.json").display()))?;
        let mut used = Vec::new();
        let mut per_scenario = Vec::new();
        for s in &eval.scenarios {
            let mut folder = folder_name(&s.name);
            let base = folder.clone();
            let mut k = 2;
            while used.contains(&folder) {
                folder = format!("{base}-{k}");
                k += 1;
            }
            used.push(folder.clone());
            let rel = PathBuf::from("plots").join(&folder);
            let (rows, _) = rows(s);
            let files = plots::write_scenario_plots(s, &rows, &tmp.join(&rel))?;
            let files: Vec<String> = files.iter().map(|f| format!("plots/{folder}/{f}")).collect();
            all_plots.extend(files.iter().cloned());
            per_scenario.push(files);
        }
        std::fs::write(tmp.join("report.md"), markdown(eval, header, &per_scenario))
            .with_context(|| format!("writing {}", tmp.join("report.md").display()))
    })?;
    Ok(Written { dir: out.to_path_buf(), plots: all_plots })
}

/// Fills a hidden sibling folder of `out` with `fill` and renames it into place at the end (an
/// earlier evaluation output there is replaced), so an interrupted run never leaves a
/// complete-looking report. `out` is checked with [`check_output_dir`] before and after.
pub fn write_folder_atomically(out: &Path, fill: impl FnOnce(&Path) -> Result<()>) -> Result<()> {
    check_output_dir(out)?;
    let parent = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = out.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_else(|| "eval".into());
    std::fs::create_dir_all(&parent).with_context(|| format!("cannot create {}", parent.display()))?;
    let tmp = parent.join(format!(".{name}.partial-{}", std::process::id()));
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp).with_context(|| format!("cannot remove {}", tmp.display()))?;
    }
    std::fs::create_dir_all(&tmp).with_context(|| format!("cannot create {}", tmp.display()))?;
    fill(&tmp)?;
    check_output_dir(out)?;
    if out.exists() {
        let old = parent.join(format!(".{name}.old-{}", std::process::id()));
        std::fs::rename(out, &old).with_context(|| format!("cannot move the earlier {} aside", out.display()))?;
        std::fs::rename(&tmp, out).with_context(|| format!("cannot move the report into {}", out.display()))?;
        std::fs::remove_dir_all(&old).with_context(|| format!("cannot remove {}", old.display()))?;
    } else {
        std::fs::rename(&tmp, out).with_context(|| format!("cannot move the report into {}", out.display()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn student_t_intervals_by_hand() {
        // t(0.975) from tables: 12.706 (1 dof), 4.303 (2), 2.262 (9).
        assert!((t_quantile(1) - 12.7062).abs() < 1e-3);
        assert!((t_quantile(2) - 4.3027).abs() < 1e-3);
        assert!((t_quantile(9) - 2.2622).abs() < 1e-3);
        // 1, 2, 3: mean 2, s = 1, half-width 4.3027·1/√3 = 2.4842.
        let s = Stat::of(&[1.0, 2.0, 3.0]);
        assert_eq!((s.mean, s.n), (2.0, 3));
        assert!((s.ci95 - 4.302_653 / 3f64.sqrt()).abs() < 1e-5);
        // Undefined values are left out; one value has no interval; none has no mean.
        let s = Stat::of(&[f64::NAN, 5.0]);
        assert_eq!((s.mean, s.n), (5.0, 1));
        assert!(s.ci95.is_nan());
        assert!(Stat::of(&[]).mean.is_nan());
    }

    #[test]
    fn numbers_are_shown_with_four_significant_digits() {
        assert_eq!(fmt_num(1.23456), "1.235");
        assert_eq!(fmt_num(0.0523456), "0.05235");
        assert_eq!(fmt_num(123.456), "123.5");
        assert_eq!(fmt_num(12345.6), "12346");
        assert_eq!(fmt_num(0.0), "0");
        assert_eq!(fmt_num(f64::NAN), "–");
        assert_eq!(fmt_stat(&Stat { mean: 1.23456, ci95: 0.01234, n: 3 }, 1.0), "1.235 ± 0.012");
        assert_eq!(fmt_stat(&Stat { mean: 0.0123, ci95: f64::NAN, n: 1 }, 100.0), "1.230");
        assert_eq!(fmt_with(-0.00001, 3), "0.000");
        // Rounding noise of a telescoped sum is 0, not 1e-17 at six decimals.
        assert_eq!(fmt_stat(&Stat { mean: 3e-17, ci95: 1e-17, n: 4 }, 1.0), "0 ± 0");
    }

    #[test]
    fn the_output_folder_is_replaced_only_when_it_is_ours() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        check_output_dir(&out).unwrap();
        std::fs::create_dir(&out).unwrap();
        check_output_dir(&out).unwrap();
        std::fs::write(out.join("data.csv"), "x").unwrap();
        let e = check_output_dir(&out).unwrap_err().to_string();
        assert!(e.contains("not an evaluation output"), "{e}");
        std::fs::write(out.join("metrics.json"), "{}").unwrap();
        check_output_dir(&out).unwrap();
        let file = dir.path().join("file");
        std::fs::write(&file, "x").unwrap();
        assert!(check_output_dir(&file).unwrap_err().to_string().contains("not a folder"));
    }
}
