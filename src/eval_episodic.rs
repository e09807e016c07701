//! `splitwise eval` on the environments without a partition scenario (ALS's environment,
//! CartPole): each policy plays whole episodes of the real environment, episode k of every
//! policy from the same seed, and the report gives its episode return (mean and 95 % Student-t
//! interval), its episode length and, where the environment has an expensive reward component
//! (ALS's perplexity term), the expensive evaluations it spent per episode.
//!
//! Two reference rows come with every evaluation unless `--no-headroom`: `random` (uniform over
//! the legal values) and `best-fixed` (the constant action with the best mean return on tuning
//! episodes whose seeds are disjoint from the evaluation's, then evaluated like the others).
//! Each row's **normalised score** is (R − R_random)/(R_best-fixed − R_random): 0 is random, 1
//! the best constant action, above 1 a policy that adapts to the state (ALS's point). A
//! partition scenario's headroom and capture need its clairvoyant bound, which these
//! environments do not have; `eval` on a partition scenario is `crate::eval`.

use crate::config::{EnvSection, ResolvedTrainConfig};
use crate::eval::EvalArgs;
use crate::policies;
use anyhow::{Context, Result, bail};
use rand::RngExt;
use serde::Serialize;
use splitwise_agents::{ActionChoice, Acts, HighHold, Learner};
use splitwise_env::als::AlsEnv;
use splitwise_env::api::Env;
use splitwise_env::cartpole::CartPole;
use splitwise_env::policy::{PolicyKind, PolicySpec};
use splitwise_env::rng::{Stream, derive_seed, item_rng};
use splitwise_eval::report::{self, Stat, fmt_stat};
use splitwise_eval::runner::episode_seed;

/// Tuning episodes of `best-fixed` unless `best-fixed:N` says otherwise (ALS's episodes are 5
/// steps, so this is cheap; its constant actions differ by ~0.005 per step on the table).
pub const DEFAULT_TUNING_EPISODES: u32 = 256;
/// Salt of `best-fixed`'s tuning seeds (disjoint from `derive_seed(eval_seed, k)`).
const TUNING_SALT: u64 = 0xB357_F1ED_0000_0002;
/// Salt of the random policy's draws in an episode.
const RANDOM_POLICY_SALT: u64 = 0x7A4D_0000_0000_0003;
/// The specs this evaluation resolves, for error messages.
const ALLOWED: &str = "random, best-fixed[:EPISODES], ckpt:PATH and (ALS) fixed-split:N with N in 1..=10";

/// A policy of this evaluation.
enum Actor {
    /// Uniform over each component's legal values; its draws come from the episode's seed.
    Random,
    /// One constant action.
    Fixed(Vec<usize>),
    /// A trained checkpoint (any agent kind), acting deterministically.
    Trained(Box<Learner>),
}

/// One row of the report.
#[derive(Debug, Serialize)]
pub struct EpisodicRow {
    pub label: String,
    pub spec: String,
    /// What `best-fixed` chose (its constant action), when this row is it.
    pub chosen: Option<String>,
    pub episode_return: Stat,
    pub episode_length: Stat,
    /// Expensive evaluations per episode (null where the environment has no expensive component).
    pub expensive_evaluations: Option<Stat>,
    /// (R − R_random)/(R_best-fixed − R_random); null without both reference rows.
    pub normalised_score: Option<f64>,
    pub returns: Vec<f64>,
}

#[derive(Debug, Serialize)]
pub struct EpisodicReport {
    pub command: String,
    pub version: String,
    pub environment: String,
    pub config: String,
    pub episodes: u32,
    pub seed: u64,
    pub rows: Vec<EpisodicRow>,
}

/// Runs the evaluation of `args` on the environment of `resolved` (not a partition scenario),
/// writes `report.md` and `metrics.json` into `--out` and prints the table.
pub fn run(args: &EvalArgs, resolved: &ResolvedTrainConfig, command: String) -> Result<()> {
    if args.config.len() != 1 {
        bail!(
            "--config: {} is not a partition scenario; evaluate it on its own (one --config)",
            resolved.origin.display()
        );
    }
    if args.slots.is_some() {
        bail!(
            "--slots applies to partition scenarios; {} runs whole episodes of {}",
            resolved.origin.display(),
            resolved.config.env.describe()
        );
    }
    report::check_output_dir(&args.out)?;
    let evaluated = match &resolved.config.env {
        EnvSection::Als(als) => {
            let make = || AlsEnv::new(als.clone()).expect("a validated ALS config builds its env");
            evaluate(args, make, true)?
        }
        EnvSection::Cartpole => evaluate(args, CartPole::new, false)?,
        EnvSection::Partition { .. } => bail!("a partition scenario is evaluated by `crate::eval`"),
    };
    let report = EpisodicReport {
        command,
        version: env!("CARGO_PKG_VERSION").to_string(),
        environment: resolved.config.env.describe().to_string(),
        config: resolved.origin.display().to_string(),
        episodes: args.episodes,
        seed: args.seed,
        rows: evaluated,
    };
    let json = serde_json::to_string_pretty(&report).context("serialising metrics.json")?;
    let markdown = markdown(&report);
    report::write_folder_atomically(&args.out, |tmp| {
        std::fs::write(tmp.join("metrics.json"), &json)
            .with_context(|| format!("writing {}", tmp.join("metrics.json").display()))?;
        std::fs::write(tmp.join("report.md"), &markdown)
            .with_context(|| format!("writing {}", tmp.join("report.md").display()))
    })?;
    print!("{}", table(&report));
    println!("report: {}", args.out.join("report.md").display());
    Ok(())
}

/// The policies of `--policies` plus the reference rows, each run on `episodes` seeded episodes.
fn evaluate<E: Env>(args: &EvalArgs, make: impl Fn() -> E, als: bool) -> Result<Vec<EpisodicRow>> {
    let mut env = make();
    let spec = env.spec().clone();
    let nvec = spec.action.nvec.clone();
    let mut text = args.policies.clone();
    if !args.no_headroom {
        let listed: Vec<PolicySpec> = PolicySpec::parse_list(&text, &policies::extra_names())?;
        for reference in ["random", "best-fixed"] {
            if !listed.iter().any(|s| spec_name(s) == Some(reference)) {
                text.push(',');
                text.push_str(reference);
            }
        }
    }
    let specs = PolicySpec::parse_list(&text, &policies::extra_names())?;
    let texts: Vec<String> = text.split(',').map(|s| s.trim().to_string()).collect();
    let mut rows = Vec::new();
    for (s, spec_text) in specs.iter().zip(texts) {
        let (actor, chosen) = match &s.kind {
            PolicyKind::Random => (Actor::Random, None),
            PolicyKind::FixedSplit { layer, precision } if als => {
                if !(1..=nvec[0] as u32).contains(layer) || precision.bits() != 16 {
                    bail!(
                        "policy {}: ALS's split layers are 1..={} without a precision (fixed-split:N); got `{spec_text}`",
                        s.label,
                        nvec[0]
                    );
                }
                (Actor::Fixed(vec![*layer as usize - 1]), None)
            }
            PolicyKind::Named { name, arg } if name == "best-fixed" => {
                let tuning = match arg.as_deref() {
                    None => DEFAULT_TUNING_EPISODES,
                    Some(a) => a.parse::<u32>().ok().filter(|n| (1..=100_000).contains(n)).with_context(|| {
                        format!("policy {}: best-fixed:EPISODES needs a whole number in 1..=100000, got `{a}`", s.label)
                    })?,
                };
                let action = best_constant_action(&mut env, &nvec, tuning)?;
                let chosen = if als { format!("fixed-split:{}", action[0] + 1) } else { format!("action {action:?}") };
                (Actor::Fixed(action), Some(chosen))
            }
            PolicyKind::Checkpoint { path } => (
                Actor::Trained(Box::new(policies::load_learner(std::path::Path::new(path), &spec, args.device)?)),
                None,
            ),
            _ => bail!(
                "policy {} (`{spec_text}`): on {} `eval` runs {ALLOWED}; the other baselines need a partition \
                 scenario",
                s.label,
                spec.id
            ),
        };
        let mut returns = Vec::new();
        let mut lengths = Vec::new();
        let mut evaluations = Vec::new();
        for k in 0..args.episodes {
            let e = play(&mut env, &actor, episode_seed(args.seed, k))?;
            returns.push(e.episode_return);
            lengths.push(e.length as f64);
            evaluations.push(e.expensive_evaluations);
        }
        rows.push(EpisodicRow {
            label: s.label.clone(),
            spec: spec_text,
            chosen,
            episode_return: Stat::of(&returns),
            episode_length: Stat::of(&lengths),
            expensive_evaluations: E::expensive().is_some().then(|| Stat::of(&evaluations)),
            normalised_score: None,
            returns,
        });
    }
    let reference = |name: &str| {
        specs.iter().zip(&rows).find(|(s, _)| spec_name(s) == Some(name)).map(|(_, r)| r.episode_return.mean)
    };
    if let (Some(random), Some(best)) = (reference("random"), reference("best-fixed"))
        && best != random
    {
        for r in &mut rows {
            r.normalised_score = Some((r.episode_return.mean - random) / (best - random));
        }
    }
    Ok(rows)
}

/// The name of a reference spec (`random`, `best-fixed`), for finding its row.
fn spec_name(s: &PolicySpec) -> Option<&str> {
    match &s.kind {
        PolicyKind::Random => Some("random"),
        PolicyKind::Named { name, .. } => Some(name.as_str()),
        _ => None,
    }
}

struct Episode {
    episode_return: f64,
    length: u64,
    expensive_evaluations: f64,
}

/// One whole episode from `seed`. The environments here end every episode (ALS after its
/// steps, CartPole at its truncation), so the loop is bounded by them.
fn play<E: Env>(env: &mut E, actor: &Actor, seed: u64) -> Result<Episode> {
    let (mut obs, mut mask) = env.buffers();
    env.reset_into(Some(seed), &mut obs, &mut mask);
    let nvec = env.spec().action.nvec.clone();
    let mut action = vec![0; nvec.len()];
    // The random policy's own stream, apart from the env's (which derive from the same seed).
    let mut rng = item_rng(derive_seed(seed, RANDOM_POLICY_SALT), Stream::Episode, 0);
    let evaluations_of = E::expensive().map(|ops| ops.evaluations);
    let mut out = Episode { episode_return: 0.0, length: 0, expensive_evaluations: 0.0 };
    // A hierarchy's held high choice (`k_high > 1`): this episode's own.
    let mut hold = HighHold::default();
    loop {
        match actor {
            Actor::Random => {
                let mut offset = 0;
                for (a, &n) in action.iter_mut().zip(&nvec) {
                    let legal: Vec<usize> = (0..n).filter(|&v| mask[offset + v]).collect();
                    if legal.is_empty() {
                        bail!("{}: no legal value for an action component", env.spec().id);
                    }
                    *a = legal[rng.random_range(0..legal.len())];
                    offset += n;
                }
            }
            Actor::Fixed(a) => action.clone_from(a),
            Actor::Trained(agent) => {
                let envs = [&*env];
                let mut conditional =
                    |i: usize, prefix: &[usize], out: &mut [bool]| envs[i].conditional_mask(prefix, out);
                agent.act_holding_into_with(
                    &obs,
                    &mask,
                    ActionChoice::Deterministic,
                    Some(&mut conditional),
                    &mut hold,
                    &mut action,
                )?;
            }
        }
        let t = env.step_into(&action, &mut obs, &mut mask).with_context(|| format!("{}: step", env.spec().id))?;
        out.episode_return += t.reward;
        out.length += 1;
        if let Some(count) = evaluations_of {
            out.expensive_evaluations += f64::from(count(&t.info));
        }
        if t.terminated || t.truncated {
            return Ok(out);
        }
    }
}

/// The constant action with the best mean return over `episodes` tuning episodes (the first
/// one on ties), among actions legal at every reset of a tuning episode.
fn best_constant_action<E: Env>(env: &mut E, nvec: &[usize], episodes: u32) -> Result<Vec<usize>> {
    if nvec.len() != 1 {
        bail!("best-fixed: {} has {} action components; it needs one", env.spec().id, nvec.len());
    }
    let mut best: Option<(f64, usize)> = None;
    for v in 0..nvec[0] {
        let (mut obs, mut mask) = env.buffers();
        let legal = (0..episodes).all(|k| {
            env.reset_into(Some(derive_seed(TUNING_SALT, u64::from(k))), &mut obs, &mut mask);
            mask[v]
        });
        if !legal {
            continue;
        }
        let mut total = 0.0;
        for k in 0..episodes {
            total += play(env, &Actor::Fixed(vec![v]), derive_seed(TUNING_SALT, u64::from(k)))?.episode_return;
        }
        let mean = total / f64::from(episodes);
        if best.is_none_or(|(b, _)| mean > b) {
            best = Some((mean, v));
        }
    }
    best.map(|(_, v)| vec![v]).with_context(|| format!("best-fixed: no action of {} is always legal", env.spec().id))
}

fn score(r: &EpisodicRow) -> String {
    r.normalised_score.map_or_else(|| "–".into(), |s| format!("{s:.3}"))
}

fn label(r: &EpisodicRow) -> String {
    match &r.chosen {
        Some(c) => format!("{} ({c})", r.label),
        None => r.label.clone(),
    }
}

/// The terminal table.
fn table(rep: &EpisodicReport) -> String {
    let width = rep.rows.iter().map(|r| label(r).chars().count()).max().unwrap_or(6).max(6);
    let mut s = format!("{} ({} episodes, seed {})\n", rep.environment, rep.episodes, rep.seed);
    s += &format!(
        "{:<width$}  {:>20}  {:>10}  {:>16}  {:>16}\n",
        "policy", "episode return", "length", "expensive/episode", "normalised score"
    );
    for r in &rep.rows {
        let expensive = r.expensive_evaluations.as_ref().map_or_else(|| "–".into(), |e| fmt_stat(e, 1.0));
        s += &format!(
            "{:<width$}  {:>20}  {:>10}  {:>16}  {:>16}\n",
            label(r),
            fmt_stat(&r.episode_return, 1.0),
            fmt_stat(&r.episode_length, 1.0),
            expensive,
            score(r)
        );
    }
    s
}

/// `report.md`.
fn markdown(rep: &EpisodicReport) -> String {
    let mut s = format!(
        "# Evaluation: {}\n\n- Command: `{}` (splitwise {})\n- Config: `{}`\n- {} episodes per policy, seed {} \
         (episode k of every policy starts from the same seed)\n- Normalised score: (R − R_random)/(R_best-fixed − \
         R_random), 0 = `random`, 1 = `best-fixed` (the best constant action on tuning episodes with other seeds); \
         above 1 the policy adapts to the state\n\n",
        rep.environment, rep.command, rep.version, rep.config, rep.episodes, rep.seed
    );
    s += "| policy | spec | episode return (95 % CI) | length | expensive evaluations / episode | normalised score |\n";
    s += "|---|---|---|---|---|---|\n";
    for r in &rep.rows {
        let expensive = r.expensive_evaluations.as_ref().map_or_else(|| "–".into(), |e| fmt_stat(e, 1.0));
        s += &format!(
            "| {} | `{}` | {} | {} | {} | {} |\n",
            label(r),
            r.spec,
            fmt_stat(&r.episode_return, 1.0),
            fmt_stat(&r.episode_length, 1.0),
            expensive,
            score(r)
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use splitwise_env::als::AlsConfig;

    fn args(policies: &str, episodes: u32) -> EvalArgs {
        EvalArgs {
            config: vec!["als.toml".into()],
            policies: policies.into(),
            episodes,
            seed: 3,
            slots: None,
            trace_episodes: 0,
            out: "unused".into(),
            no_headroom: false,
            device: splitwise_agents::ComputeDevice::Cpu,
        }
    }

    #[test]
    fn a_fixed_split_scores_what_stepping_the_env_by_hand_gives_and_references_anchor_the_score() {
        let make = || AlsEnv::new(AlsConfig::default()).unwrap();
        let rows = evaluate(&args("fixed-split:1,fixed-split:7", 6), make, true).unwrap();
        let labels: Vec<&str> = rows.iter().map(|r| r.label.as_str()).collect();
        assert_eq!(labels, ["fixed-split:1", "fixed-split:7", "random", "best-fixed"]);
        // By hand: the same episodes stepped directly with split 1 (value 0).
        let mut env = make();
        for k in 0..6 {
            let (_, _) = env.reset(Some(episode_seed(3, k)));
            let mut total = 0.0;
            let mut evaluations = 0;
            loop {
                let t = env.step(&[0]).unwrap();
                total += t.reward;
                evaluations += t.info.expensive_evaluations;
                if t.terminated || t.truncated {
                    break;
                }
            }
            assert_eq!(rows[0].returns[k as usize], total);
            // The episode's first evaluation, and one when the first step leaves the initial
            // split (3–6) for layer 1; none after.
            assert_eq!(evaluations, 2);
        }
        assert_eq!(rows[0].expensive_evaluations.unwrap().mean, 2.0);
        assert_eq!(rows[0].episode_length.mean, 5.0);
        // 0 is random, 1 the best constant action, by definition.
        assert_eq!(rows[2].normalised_score, Some(0.0));
        assert_eq!(rows[3].normalised_score, Some(1.0));
        let chosen = rows[3].chosen.as_deref().unwrap();
        assert!(chosen.starts_with("fixed-split:"), "{chosen}");
    }

    #[test]
    fn specs_that_need_a_partition_scenario_or_another_range_are_refused_by_name() {
        let make = || AlsEnv::new(AlsConfig::default()).unwrap();
        let e = evaluate(&args("cloud-only", 1), make, true).unwrap_err().to_string();
        assert!(e.contains("cloud-only") && e.contains("random, best-fixed"), "{e}");
        let e = evaluate(&args("fixed-split:11", 1), make, true).unwrap_err().to_string();
        assert!(e.contains("1..=10") && e.contains("fixed-split:11"), "{e}");
        let e = evaluate(&args("fixed-split:2", 1), CartPole::new, false).unwrap_err().to_string();
        assert!(e.contains("fixed-split:2") && e.contains("partition scenario"), "{e}");
        let e = evaluate(&args("best-fixed:0", 1), make, true).unwrap_err().to_string();
        assert!(e.contains("best-fixed:EPISODES") && e.contains("`0`"), "{e}");
    }
}
