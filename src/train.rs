//! `splitwise train`: the outer training loop. Read it top to bottom: resolve the config (or
//! the checkpoint to resume), build the vector env and the learner, then repeat collect →
//! update → log → evaluate → checkpoint until the step budget is spent.
//!
//! A run lives in one folder, `<logging.checkpoints_dir>/<run>/`: the resolved `config.toml`,
//! TensorBoard event files under `tensorboard/`, checkpoints `step_<N>/` and `best/`.
//!
//! Exact resume: a checkpoint holds the learner (weights, Adam state, normalisers, host RNG,
//! schedule position), the vector env (every member's state, RNG streams included, and the
//! current observations) and this loop's bookkeeping, so stopping at a checkpoint and resuming
//! gives bit-identical weights and logged values to an uninterrupted run on the same backend
//! and thread count (tested; the agents crate measured no dependence on the rayon thread
//! count at our sizes). Wall-clock metrics (`charts/sps`) naturally differ.

use crate::checkpoint::{self, CHECKPOINT_FORMAT_VERSION, CONFIG_FILE, CheckpointFiles, Metadata};
use crate::config::{self, EnvSection, ResolvedTrainConfig};
use crate::logging::{EnvMetrics, Progress, log_scalars};
use crate::tensorboard::EventWriter;
use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use splitwise_agents::{Ppo, PpoMeta, PpoState, UpdateStats, evaluate};
use splitwise_env::api::Env;
use splitwise_env::cartpole::CartPole;
use splitwise_env::partition::PartitionEnv;
use splitwise_env::rng::derive_seed;
use splitwise_env::vector::{VecEnv, VecEnvState};
use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Sub-seeds of a run's seed (frozen: changing them changes every run).
const ENV_SEED_INDEX: u64 = 0xE0;
const EVAL_SEED_INDEX: u64 = 0xE7A1;
/// Episodes in the progress bar's running mean return.
const RECENT_EPISODES: usize = 100;

pub const AGENT_WEIGHTS: &str = "weights.bpk";
pub const AGENT_OPTIMIZER: &str = "optimizer.bpk";
pub const AGENT_META: &str = "ppo_meta.json";

#[derive(Debug, clap::Args)]
pub struct TrainArgs {
    /// Training config (configs/*-ppo*.toml, configs/smoke.toml).
    #[arg(long)]
    pub config: PathBuf,
    /// Seed of the run (default: the config's training.seed).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Run folder name under logging.checkpoints_dir (default: <config name>-seed<S>).
    #[arg(long)]
    pub run_name: Option<String>,
    /// Continue a run from a checkpoint folder, or from a run folder's newest checkpoint.
    #[arg(long)]
    pub resume: Option<PathBuf>,
    /// Stop once this many env steps are done (at an update boundary), writing a checkpoint;
    /// the schedules still run over training.total_steps, so --resume continues exactly.
    #[arg(long)]
    pub stop_at_step: Option<u64>,
}

/// This loop's bookkeeping, saved with every checkpoint.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct TrainerState {
    run_name: String,
    seed: u64,
    next_checkpoint_step: u64,
    next_eval_step: u64,
    best_eval_return: Option<f64>,
    wall_time_s: f64,
    recent_returns: VecDeque<f64>,
}

/// What a finished (or stopped) run left behind.
#[derive(Clone, Debug)]
pub struct TrainOutcome {
    pub run_dir: PathBuf,
    pub final_step: u64,
    pub last_checkpoint: PathBuf,
    pub best_eval_return: Option<f64>,
}

/// What the trainer needs of an environment beyond [`Env`]: an optional per-request latency
/// log for `env/latency_p95_s`.
pub trait TrainEnv: Env {
    fn log_requests(&mut self) {}
    fn drain_latencies(&mut self, _out: &mut Vec<f64>) {}
}

impl TrainEnv for CartPole {}

impl TrainEnv for PartitionEnv {
    fn log_requests(&mut self) {
        self.set_recording(true);
    }

    fn drain_latencies(&mut self, out: &mut Vec<f64>) {
        out.extend(self.take_records().iter().filter(|r| !r.failed).map(|r| r.latency_s));
    }
}

pub fn run(args: &TrainArgs) -> Result<()> {
    let out = train(args)?;
    println!(
        "trained to step {} | run {} | last checkpoint {} | best eval return {}",
        out.final_step,
        out.run_dir.display(),
        out.last_checkpoint.display(),
        out.best_eval_return.map_or_else(|| "-".to_string(), |r| format!("{r:.3}"))
    );
    Ok(())
}

/// A checkpoint to resume from, with its files read and checked against the config.
struct Resume {
    dir: PathBuf,
    files: CheckpointFiles,
    trainer: TrainerState,
}

/// Runs (or resumes) a training run.
pub fn train(args: &TrainArgs) -> Result<TrainOutcome> {
    let cfg = config::load(&args.config)?;
    let resume = args.resume.as_deref().map(|p| open_resume(p, &cfg, args)).transpose()?;
    match &cfg.config.env {
        EnvSection::Cartpole => train_on(&cfg, args, resume, CartPole::new),
        EnvSection::Partition { .. } => {
            let scenario = cfg.scenario.clone().context("a partition config resolves its scenario")?;
            train_on(&cfg, args, resume, move || PartitionEnv::new(scenario.clone()))
        }
    }
}

fn open_resume(path: &Path, cfg: &ResolvedTrainConfig, args: &TrainArgs) -> Result<Resume> {
    let dir = checkpoint::resolve(path)?;
    let files = checkpoint::load(&dir)?;
    let saved = config::parse(&files.config_toml, &dir.join(CONFIG_FILE))?;
    if saved.config != cfg.config {
        bail!(
            "--resume {}: it was trained with a different config than {} (its resolved config is {}); \
             resume with the same config",
            dir.display(),
            args.config.display(),
            dir.join(CONFIG_FILE).display()
        );
    }
    let trainer: TrainerState = serde_json::from_slice(&files.trainer_state_json)
        .with_context(|| format!("checkpoint {}: {} is corrupt", dir.display(), checkpoint::TRAINER_STATE_FILE))?;
    if let Some(seed) = args.seed.filter(|&s| s != trainer.seed) {
        bail!("--seed {seed} differs from the seed {} of the checkpoint being resumed", trainer.seed);
    }
    if let Some(name) = args.run_name.as_ref().filter(|n| **n != trainer.run_name) {
        bail!("--run-name {name} differs from the run {} of the checkpoint being resumed", trainer.run_name);
    }
    Ok(Resume { dir, files, trainer })
}

fn train_on<E: TrainEnv>(
    cfg: &ResolvedTrainConfig,
    args: &TrainArgs,
    resume: Option<Resume>,
    make_env: impl Fn() -> E,
) -> Result<TrainOutcome> {
    let ppo_config = cfg.ppo().clone();
    let training = &cfg.config.training;
    let mut venv = VecEnv::new((0..ppo_config.n_envs).map(|_| make_env()).collect());
    venv.members_mut().iter_mut().for_each(TrainEnv::log_requests);
    let spec = venv.spec().clone();

    // The learner, the env and the bookkeeping: fresh, or exactly as checkpointed.
    let (mut agent, mut state, run_dir) = match resume {
        Some(r) => {
            let m = &r.files.metadata;
            if m.observation_fingerprint != spec.observation.fingerprint() {
                bail!(
                    "checkpoint {}: observation layout {} ({}) differs from this build's {} ({}); \
                     checkpoints of another layout cannot be resumed: train a new run",
                    r.dir.display(),
                    m.observation_layout,
                    m.observation_fingerprint,
                    spec.observation.layout,
                    spec.observation.fingerprint()
                );
            }
            let agent = Ppo::from_state(&read_agent_state(&r.files, &r.dir)?)
                .with_context(|| format!("checkpoint {}: the agent state does not load", r.dir.display()))?;
            let env_state: VecEnvState<E::State> = serde_json::from_slice(&r.files.env_state_json)
                .with_context(|| format!("checkpoint {}: env_state.json does not fit this env", r.dir.display()))?;
            venv.restore_state(&env_state).with_context(|| format!("checkpoint {}", r.dir.display()))?;
            let run_dir = r.dir.parent().context("a checkpoint folder sits in its run folder")?.to_path_buf();
            (agent, r.trainer, run_dir)
        }
        None => {
            let seed = args.seed.unwrap_or(training.seed);
            let run_name = args.run_name.clone().unwrap_or_else(|| format!("{}-seed{seed}", cfg.config.name));
            let run_dir = cfg.config.logging.checkpoints_dir.join(&run_name);
            if run_dir.exists() {
                bail!(
                    "run folder {} already exists: resume it with --resume {0}, or pick another --run-name",
                    run_dir.display()
                );
            }
            std::fs::create_dir_all(&run_dir).with_context(|| format!("cannot create {}", run_dir.display()))?;
            std::fs::write(run_dir.join(CONFIG_FILE), cfg.to_toml()?)
                .with_context(|| format!("cannot write {}", run_dir.join(CONFIG_FILE).display()))?;
            venv.reset(derive_seed(seed, ENV_SEED_INDEX));
            let agent = Ppo::new(ppo_config.clone(), splitwise_agents::PolicyShape::of(&spec), seed)?;
            let state = TrainerState {
                run_name,
                seed,
                next_checkpoint_step: training.checkpoint_every_steps,
                next_eval_step: if training.eval_every_steps > 0 { training.eval_every_steps } else { u64::MAX },
                best_eval_return: None,
                wall_time_s: 0.0,
                recent_returns: VecDeque::with_capacity(RECENT_EPISODES),
            };
            (agent, state, run_dir)
        }
    };

    // A fresh run starts with its initial state saved, so even a run that diverges on its first
    // update leaves a good checkpoint.
    let mut last_checkpoint = None;
    if agent.progress().global_step == 0 {
        let files = checkpoint_files(cfg, &agent, &venv, &state, None)?;
        last_checkpoint = Some(checkpoint::save(&run_dir, &files, training.keep_last)?);
    }
    let mut tb = EventWriter::create(&run_dir.join("tensorboard"))?;
    let mut eval_venv = VecEnv::new((0..training.eval_episodes.max(1)).map(|_| make_env()).collect());
    let stop_at = args.stop_at_step.unwrap_or(training.total_steps).min(training.total_steps);
    let start_step = agent.progress().global_step;
    let progress = Progress::new(training.total_steps, start_step, cfg.config.logging.progress);
    let started = Instant::now();
    let wall_before = state.wall_time_s;
    let mut metrics = EnvMetrics::default();

    while agent.progress().global_step < stop_at {
        // Collect and learn.
        metrics.clear();
        let rollout = agent.collect_rollout_observed(&mut venv, |v| {
            for info in v.infos() {
                metrics.add(info);
            }
            for m in v.members_mut() {
                m.drain_latencies(&mut metrics.latencies_s);
            }
        })?;
        let update = agent.update();
        let step = agent.progress().global_step;
        check_finite(&update, step, last_checkpoint.as_deref())?;
        state.wall_time_s = wall_before + started.elapsed().as_secs_f64();
        for e in &rollout.episodes {
            if state.recent_returns.len() == RECENT_EPISODES {
                state.recent_returns.pop_front();
            }
            state.recent_returns.push_back(e.episode_return);
        }

        // Log (x-axis: global env step).
        let sps = (step - start_step) as f64 / started.elapsed().as_secs_f64().max(1e-9);
        let mut scalars: Vec<(String, f64)> = Vec::new();
        if let Some(r) = rollout.mean_episode_return() {
            scalars.push(("charts/episodic_return".into(), r));
        }
        if let Some(l) = rollout.mean_episode_length() {
            scalars.push(("charts/episodic_length".into(), l));
        }
        scalars.push(("charts/sps".into(), sps));
        update.visit_scalars(&mut |k, v| scalars.push((k.to_string(), v)));
        scalars.extend(metrics.scalars());
        log_scalars(&mut tb, step, scalars.iter().map(|(k, v)| (k.as_str(), *v)))?;
        progress.update(step, sps, mean(state.recent_returns.iter().copied()));

        // Evaluate with deterministic actions on fixed seeds (comparable across evaluations).
        let mut eval_return = None;
        if step >= state.next_eval_step {
            let records = evaluate(&agent, &mut eval_venv, 1, derive_seed(state.seed, EVAL_SEED_INDEX))?;
            let r = mean(records.iter().map(|e| e.episode_return)).unwrap_or(f64::NAN);
            log_scalars(&mut tb, step, [("charts/eval_return", r)])?;
            eval_return = Some(r);
            while state.next_eval_step <= step {
                state.next_eval_step += training.eval_every_steps;
            }
        }

        // Checkpoint: on schedule, at a new best evaluation, and when stopping.
        let improved = eval_return.is_some_and(|r| state.best_eval_return.is_none_or(|b| r > b));
        let due = step >= state.next_checkpoint_step || step >= stop_at;
        if due || improved {
            while state.next_checkpoint_step <= step {
                state.next_checkpoint_step += training.checkpoint_every_steps;
            }
            if improved {
                state.best_eval_return = eval_return;
            }
            let files = checkpoint_files(cfg, &agent, &venv, &state, eval_return)?;
            if improved {
                checkpoint::save_best(&run_dir, &files)?;
            }
            if due {
                last_checkpoint = Some(checkpoint::save(&run_dir, &files, training.keep_last)?);
            }
        }
        tb.flush()?;
    }
    progress.finish();
    let final_step = agent.progress().global_step;
    let last_checkpoint = match last_checkpoint {
        Some(p) => p,
        None => checkpoint::resolve(&run_dir)?,
    };
    Ok(TrainOutcome { run_dir, final_step, last_checkpoint, best_eval_return: state.best_eval_return })
}

/// Stops training on a non-finite loss, naming the loss and the last good checkpoint (which is
/// left intact: nothing is written after a non-finite update).
fn check_finite(u: &UpdateStats, step: u64, last_good: Option<&Path>) -> Result<()> {
    let mut bad = None;
    u.visit_scalars(&mut |k, v| {
        if !v.is_finite() && bad.is_none() {
            bad = Some((k, v));
        }
    });
    if let Some((k, v)) = bad {
        let last = last_good.map_or_else(|| "none was written yet".to_string(), |p| p.display().to_string());
        bail!(
            "training diverged at step {step} (update {}): {k} = {v}; stopped without saving. \
             Last good checkpoint: {last}. Lower agent.learning_rate or agent.max_grad_norm.",
            u.n_updates
        );
    }
    Ok(())
}

fn mean(values: impl Iterator<Item = f64>) -> Option<f64> {
    let (n, sum) = values.fold((0usize, 0.0), |(n, s), v| (n + 1, s + v));
    (n > 0).then(|| sum / n as f64)
}

/// Everything a checkpoint holds.
fn checkpoint_files<E: Env>(
    cfg: &ResolvedTrainConfig,
    agent: &Ppo,
    venv: &VecEnv<E>,
    state: &TrainerState,
    eval_return: Option<f64>,
) -> Result<CheckpointFiles> {
    let agent_state = agent.export_state()?;
    let spec = venv.spec();
    let progress = agent.progress();
    Ok(CheckpointFiles {
        metadata: Metadata {
            format_version: CHECKPOINT_FORMAT_VERSION,
            splitwise_version: env!("CARGO_PKG_VERSION").to_string(),
            run_name: state.run_name.clone(),
            seed: state.seed,
            step: progress.global_step,
            updates: progress.n_updates,
            wall_time_s: state.wall_time_s,
            written_unix_s: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
            env_id: spec.id.clone(),
            observation_layout: spec.observation.layout.clone(),
            observation_fingerprint: spec.observation.fingerprint(),
            agent_kind: cfg.config.agent.kind().to_string(),
            eval_return,
        },
        config_toml: cfg.to_toml()?,
        agent: vec![
            (AGENT_WEIGHTS.to_string(), agent_state.weights),
            (AGENT_OPTIMIZER.to_string(), agent_state.optimizer),
            (AGENT_META.to_string(), serde_json::to_vec_pretty(&agent_state.meta).context("serialising agent meta")?),
        ],
        env_state_json: serde_json::to_vec(&venv.save_state()).context("serialising the env state")?,
        trainer_state_json: serde_json::to_vec_pretty(state).context("serialising the trainer state")?,
    })
}

/// The learner's state from a checkpoint's `agent/` files.
pub fn read_agent_state(files: &CheckpointFiles, dir: &Path) -> Result<PpoState> {
    if files.metadata.agent_kind != "ppo" {
        bail!(
            "checkpoint {}: agent kind `{}` is not one this splitwise loads (ppo)",
            dir.display(),
            files.metadata.agent_kind
        );
    }
    let meta: PpoMeta = serde_json::from_slice(files.agent_file(AGENT_META, dir)?)
        .with_context(|| format!("checkpoint {}: agent/{AGENT_META} is corrupt", dir.display()))?;
    Ok(PpoState {
        weights: files.agent_file(AGENT_WEIGHTS, dir)?.to_vec(),
        optimizer: files.agent_file(AGENT_OPTIMIZER, dir)?.to_vec(),
        meta,
    })
}
