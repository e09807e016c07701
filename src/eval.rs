//! `splitwise eval`: compares policies on identical seeded episodes of one or more scenarios
//! and writes the report folder (`report.md`, `metrics.json`, `per_request.csv`,
//! `per_slot.csv`, `plots/`). This module owns the file and terminal side: reading scenario
//! files and training configs, resolving policy specs (trivial policies, the eval crate's
//! baselines, checkpoints) into factories for the eval crate's runner, the progress bar, and
//! refusing bad input before any episode runs.

use crate::{config, policies, scenario_file};
use anyhow::{Context, Result, anyhow, bail};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use splitwise_agents::ComputeDevice;
use splitwise_eval::policy_specs;
use splitwise_eval::report::{self, Header};
use splitwise_eval::runner::{
    self, DEFAULT_TRACE_EPISODES, EvalConfig, Evaluation, PolicyEntry, ScenarioInput, SourceKind,
};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};

/// Episodes per policy unless `--episodes` says otherwise.
pub const DEFAULT_EPISODES: u32 = 10;

#[derive(Debug, clap::Args)]
pub struct EvalArgs {
    /// Scenario file (configs/*.toml) or training config (its resolved scenario); repeat the
    /// flag for a table per scenario. A training config on ALS's environment or CartPole is
    /// evaluated on its own by whole-episode returns (random, best-fixed, fixed-split:N on ALS,
    /// ckpt:PATH of any agent kind, `mbrl` included).
    #[arg(long, required = true)]
    pub config: Vec<PathBuf>,
    /// Comma-separated policy specs `[label=]name[:arg]`: cloud-only, edge-only, random,
    /// fixed-split:N[/BITS], the baselines (neurosurgeon, static-best, splitllm-dp, greedy,
    /// dpp-one-slot, oracle-…; `--help` lists them all), ckpt:PATH. Specs sharing a label form
    /// one row (e.g. `ppo=ckpt:a,ppo=ckpt:b` for two training seeds).
    #[arg(long, long_help = policies_long_help())]
    pub policies: String,
    /// Episodes per policy (episode k of every policy uses the same seed).
    #[arg(long, default_value_t = DEFAULT_EPISODES,
          value_parser = clap::value_parser!(u32).range(1..=i64::from(crate::limits::MAX_EVAL_EPISODES_CLI)))]
    pub episodes: u32,
    /// Seed of the evaluation (episode seeds derive from it).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Slots per episode (default: the scenario's serving.episode_slots).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=crate::limits::MAX_SLOTS_CLI))]
    pub slots: Option<u64>,
    /// Episodes (the first ones) whose slot-by-slot traces are kept for per_slot.csv and plots.
    #[arg(long, default_value_t = DEFAULT_TRACE_EPISODES,
          value_parser = clap::value_parser!(u32).range(0..=1000))]
    pub trace_episodes: u32,
    /// Output folder (created; an earlier evaluation output there is replaced).
    #[arg(long)]
    pub out: PathBuf,
    /// Skip the headroom rows the report adds unless listed: `best-fixed` (the best static plan,
    /// tuned on other seeds) and `clairvoyant` (the bound; it plans each episode by simulation,
    /// the slowest row).
    #[arg(long)]
    pub no_headroom: bool,
    /// Where trained checkpoints (`ckpt:PATH`) act; a checkpoint trained on any device loads on
    /// any other.
    #[arg(long, value_parser = crate::device::parser(), default_value = "cpu")]
    pub device: ComputeDevice,
}

pub use splitwise_eval::policy_specs::{HEADROOM_SPECS, role, with_headroom};

/// `--policies`' long help: the grammar, then every baseline from the eval crate's registry (so
/// a new baseline is listed with its help text without touching this file).
fn policies_long_help() -> String {
    format!(
        "Comma-separated policy specs `[label=]name[:arg]`. Specs sharing a label form one row \
         (e.g. `ppo=ckpt:a,ppo=ckpt:b` for two training seeds).\n\n\
         ckpt:PATH: a trained checkpoint of any agent kind: a checkpoint folder (`best`, \
         `step_<N>`) or a run folder (its newest step).\n\
         fixed-split:N[/BITS]: the first N layers on the edge (fewer where the slot's edge memory \
         is short, never fewer than the privacy floor), the rest in the cloud; BITS, the \
         boundary's precision, is 16 (default), 8 or 4.\n\n\
         Baselines (\"oracle\" and \"clairvoyant\" ones read more than a device can: the true slot \
         state or the future, and reports mark them †; \"slow\" ones simulate whole episodes, \
         minutes per scenario at 100 episodes):\n{}",
        splitwise_eval::baselines::catalog()
    )
}

/// Loads `--config`: a training config (it has `[agent]`/`[training]`) contributes its resolved
/// scenario, anything else is read as a scenario file.
pub fn load_input(path: &Path) -> Result<ScenarioInput> {
    let source = path.display().to_string();
    match training_config(path)? {
        Some(resolved) => {
            let scenario = resolved.scenario.ok_or_else(|| {
                anyhow!(
                    "{source}: this training config trains on {}; `eval` needs a partition scenario",
                    resolved.config.env.describe()
                )
            })?;
            Ok(ScenarioInput { source, source_kind: SourceKind::TrainingConfig, scenario })
        }
        None => {
            Ok(ScenarioInput { source, source_kind: SourceKind::ScenarioFile, scenario: scenario_file::load(path)? })
        }
    }
}

/// The resolved training config at `path` (a file with `[agent]` or `[training]`); `None` for a
/// scenario file.
fn training_config(path: &Path) -> Result<Option<config::ResolvedTrainConfig>> {
    let text =
        crate::scenario_file::read_text(path).with_context(|| format!("cannot read config {}", path.display()))?;
    let is_training = toml::from_str::<toml::Table>(&text)
        .map(|t| t.contains_key("agent") || t.contains_key("training"))
        .unwrap_or(false);
    if !is_training {
        return Ok(None);
    }
    Ok(Some(config::parse(&text, path)?))
}

/// The resolved training config at `path` when it trains on an environment without a partition
/// scenario; `None` for scenario files and partition training configs.
fn episodic_config(path: &Path) -> Result<Option<config::ResolvedTrainConfig>> {
    Ok(training_config(path)?.filter(|resolved| resolved.scenario.is_none()))
}

/// Parses `--policies` into runner entries (the eval crate's specs, checkpoints through
/// [`policies`]).
pub fn entries(text: &str, device: ComputeDevice) -> Result<Vec<PolicyEntry>> {
    policy_specs::entries(text, Some(policies::checkpoint_loader(device)))
}

/// The command line, quoted where needed, for the report header.
fn command_line() -> String {
    std::env::args()
        .map(|a| if a.contains(char::is_whitespace) || a.is_empty() { format!("'{a}'") } else { a })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Runs the evaluation (no files written).
pub fn evaluate(args: &EvalArgs) -> Result<Evaluation> {
    let entries = entries(&with_headroom(&args.policies, args.no_headroom), args.device)?;
    let inputs = args.config.iter().map(|p| load_input(p)).collect::<Result<Vec<_>>>()?;
    let config =
        EvalConfig { episodes: args.episodes, seed: args.seed, slots: args.slots, trace_episodes: args.trace_episodes };
    let prepared = runner::prepare(inputs, entries, config)?;
    let visible = std::io::stdout().is_terminal();
    let bar = ProgressBar::with_draw_target(
        Some(prepared.total_episodes()),
        if visible { ProgressDrawTarget::stdout() } else { ProgressDrawTarget::hidden() },
    );
    bar.set_style(
        ProgressStyle::with_template("{bar:30} {pos}/{len} episodes ({elapsed} < {eta}) {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let evaluation = prepared.run(&mut |p| {
        bar.set_position(p.done);
        bar.set_message(format!("{} | {} | episode {}", p.scenario, p.label, p.episode));
    })?;
    bar.finish_and_clear();
    Ok(evaluation)
}

/// What the `cloud-only` row means on a scenario with a privacy floor (the eval crate's note,
/// also printed under the scenario in report.md).
pub fn cloud_only_note(scenario: &splitwise_env::scenario::Scenario) -> Option<String> {
    runner::cloud_only_note(scenario)
}

pub fn run(args: &EvalArgs) -> Result<()> {
    if args.config.is_empty() {
        bail!("--config needs a scenario file or a training config");
    }
    // Refused before any work: a device this build or machine cannot open.
    crate::device::open(args.device, "eval")?;
    // A training config on an environment without a partition scenario (ALS's, CartPole) is
    // evaluated by whole-episode returns instead.
    for path in &args.config {
        if let Some(resolved) = episodic_config(path)? {
            return crate::eval_episodic::run(args, &resolved, command_line());
        }
    }
    // Refused before any work: an --out that is not ours to replace.
    report::check_output_dir(&args.out)?;
    let notes: Vec<(String, Option<String>)> = args
        .config
        .iter()
        .map(|p| Ok((p.display().to_string(), cloud_only_note(&load_input(p)?.scenario))))
        .collect::<Result<_>>()?;
    let evaluation = evaluate(args)?;
    let header = Header { command: command_line(), version: env!("CARGO_PKG_VERSION").to_string() };
    let written = report::write_outputs(&evaluation, &header, &args.out)?;
    for s in &evaluation.scenarios {
        let (rows, _) = report::rows(s);
        println!(
            "scenario {} ({} episodes of {} slots, seed {})",
            s.name, args.episodes, s.slots_per_episode, args.seed
        );
        let width = rows.iter().map(|r| r.display_label().chars().count()).max().unwrap_or(6).max(6);
        println!(
            "{:<width$}  {:>16}  {:>16}  {:>16}  {:>16}",
            "policy", "latency mean (s)", "latency P95 (s)", "energy/req (J)", "time-avg DPP"
        );
        for r in &rows {
            let cell = |k: &str| report::fmt_stat(&r.stat(k), 1.0);
            println!(
                "{:<width$}  {:>16}  {:>16}  {:>16}  {:>16}",
                r.display_label(),
                cell("latency_mean_s"),
                cell("latency_p95_s"),
                cell("energy_per_request_j"),
                cell("drift_plus_penalty"),
            );
        }
        match splitwise_eval::headroom::headroom(&rows) {
            Some(h) => {
                let dpp = h.rows.iter().map(|r| r.captures[0].mean);
                println!(
                    "headroom: best static `{}`, best causal `{}`, bound `{}`: {:.1} % of Δ + V·p, {:.2}× mean latency",
                    h.best_static,
                    h.best_causal.as_deref().unwrap_or("–"),
                    h.clairvoyant,
                    100.0 * h.objective_headroom,
                    h.latency_ratio
                );
                for (r, c) in rows.iter().zip(dpp) {
                    if c.is_finite() {
                        println!("  capture of {:<width$} {c:>7.2}", r.display_label());
                    }
                }
            }
            None => println!("headroom: needs a static-plan row and a clairvoyant row (see --no-headroom)"),
        }
        if s.runs.iter().any(|r| r.role.cloud_only)
            && let Some(note) = notes.iter().find(|(src, _)| *src == s.source).and_then(|(_, n)| n.as_deref())
        {
            println!("note: {note}");
        }
        println!("throughput (wall clock, not a result):");
        for run in &s.runs {
            println!("  {:<24} {:<40} {:>10.2} episodes/s", run.label, run.spec, run.episodes_per_s());
        }
    }
    println!("report: {}", written.dir.join("report.md").display());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cloud_only_is_explained_where_a_privacy_floor_keeps_layers_local() {
        let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
        let pi5 = scenario_file::load(&repo.join("configs/pi5-gpt2xl-wifi.toml")).unwrap();
        let note = cloud_only_note(&pi5).expect("the Pi 5 scenario has a privacy floor");
        assert!(note.contains("privacy_floor_layers = 2") && note.contains("split at the privacy floor"), "{note}");
        let jetson = scenario_file::load(&repo.join("configs/jetson-llama7b-lte.toml")).unwrap();
        assert_eq!(cloud_only_note(&jetson), None);
    }
}
