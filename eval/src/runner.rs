//! The evaluation runner: every policy runs on the same seeded episodes of every scenario
//! (common random numbers, system-model §1: episode k of every policy uses the seed
//! [`episode_seed`]`(seed, k)`, so all policies face the same arrivals, lengths and channel),
//! and the runner keeps what the report needs — per-episode metrics (the unit of replication
//! for confidence intervals), per-request records, bounded per-slot traces for the plots, and a
//! digest of each episode's exogenous conditions that proves the policies saw the same ones.
//!
//! The runner knows nothing of checkpoints or baselines: the app hands it [`PolicyEntry`]
//! factories (the eval crate must not depend on the learners), and [`prepare`] builds every
//! policy for every scenario before any episode runs, so bad input fails before work starts.

pub mod summary;

use anyhow::{Context, Result, bail};
use serde::Serialize;
use splitwise_env::api::{Env, EnvSpec};
use splitwise_env::partition::{PartitionEnv, RequestRecord, StepInfo};
use splitwise_env::policy::{Policy, act_and_step};
use splitwise_env::rng::derive_seed;
use splitwise_env::scenario::Scenario;
use std::sync::Arc;
use std::time::Instant;
use summary::{EpisodeMetrics, RunSummary};

/// Episodes whose per-slot traces are kept for the plots by default (the first one).
pub const DEFAULT_TRACE_EPISODES: u32 = 1;

/// The seed of episode `k` of an evaluation seeded with `seed` (the same for every policy).
pub fn episode_seed(seed: u64, k: u32) -> u64 {
    derive_seed(seed, u64::from(k))
}

/// What a policy factory is given to build a policy for one scenario.
pub struct PolicyContext<'a> {
    pub scenario: &'a Arc<Scenario>,
    pub env_spec: &'a EnvSpec,
    /// The policy's own seed (random policies); episodes re-seed it through `Policy::reset`.
    pub seed: u64,
}

pub type PolicyFactory = Box<dyn Fn(&PolicyContext<'_>) -> Result<Box<dyn Policy>> + Send + Sync>;

/// One policy spec to evaluate. Entries sharing a `label` form one report row (e.g. the same
/// agent trained with several seeds), reported as their mean with the spread across them.
pub struct PolicyEntry {
    pub label: String,
    pub spec: String,
    pub role: PolicyRole,
    pub factory: PolicyFactory,
}

/// What the report needs to know about a policy beyond its numbers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct PolicyRole {
    /// Reads the true current state (§10): marked in every report.
    pub oracle: bool,
    /// A layer-wise partitioner baseline: candidate for the "best layer-wise" reference.
    pub layer_wise: bool,
    /// The cloud-only plan: the reference of the cloud-only ratios.
    pub cloud_only: bool,
    /// Holds one plan throughout: a candidate for the headroom's best static plan.
    pub static_plan: bool,
    /// The clairvoyant bound (sees the future): the headroom's upper reference.
    pub clairvoyant: bool,
    /// A trained checkpoint (not a candidate for the best causal baseline).
    pub learned: bool,
}

/// Whether a scenario came from a scenario file or from a training config's resolved scenario.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SourceKind {
    ScenarioFile,
    TrainingConfig,
}

impl SourceKind {
    pub fn describe(self) -> &'static str {
        match self {
            SourceKind::ScenarioFile => "scenario file",
            SourceKind::TrainingConfig => "training config (its resolved scenario)",
        }
    }
}

/// A scenario to evaluate on.
#[derive(Clone)]
pub struct ScenarioInput {
    pub source: String,
    pub source_kind: SourceKind,
    pub scenario: Arc<Scenario>,
}

#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct EvalConfig {
    pub episodes: u32,
    pub seed: u64,
    /// Overrides the scenario's `serving.episode_slots`.
    pub slots: Option<u64>,
    /// Episodes (the first ones) whose per-slot traces are kept.
    pub trace_episodes: u32,
}

impl EvalConfig {
    pub fn new(episodes: u32, seed: u64) -> Self {
        Self { episodes, seed, slots: None, trace_episodes: DEFAULT_TRACE_EPISODES }
    }
}

/// One slot of a traced episode (what the time-series plots draw).
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct SlotTrace {
    pub episode: u32,
    pub slot: u64,
    pub arrivals: u32,
    pub started: u32,
    pub backlog: u32,
    pub split_layer: u32,
    pub edge_share: f64,
    pub precision_bits: u8,
    pub plan_changed: bool,
    /// The slot's true link rate (what a bandwidth probe measures over the slot).
    pub rate_bps: f64,
    pub cloud_load: f64,
    /// Probability that one crossing fails in the slot (outage, Gilbert–Elliott bad state).
    pub crossing_failure_probability: f64,
    pub penalty: f64,
    pub drift_plus_penalty: f64,
}

impl SlotTrace {
    fn of(episode: u32, info: &StepInfo) -> Self {
        Self {
            episode,
            slot: info.slot,
            arrivals: info.arrivals,
            started: info.started,
            backlog: info.backlog,
            split_layer: info.plan.split_layer,
            edge_share: info.plan.edge_share,
            precision_bits: info.plan.precision_bits,
            plan_changed: info.plan_changed,
            rate_bps: info.rate_bps,
            cloud_load: info.cloud_load,
            crossing_failure_probability: info.crossing_failure_probability,
            penalty: info.reward.penalty,
            drift_plus_penalty: info.reward.drift_plus_penalty,
        }
    }
}

/// One served request of one episode.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RequestRow {
    pub episode: u32,
    pub record: RequestRecord,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct EpisodeResult {
    pub episode: u32,
    pub seed: u64,
    /// FNV-1a digest of the episode's exogenous conditions (per slot: arrivals, link rate, SNR,
    /// cloud load, crossing-failure probability, edge memory). Equal across policies under
    /// common random numbers.
    pub exogenous_digest: String,
    pub metrics: EpisodeMetrics,
}

/// Everything one policy spec produced on one scenario.
pub struct PolicyRun {
    pub label: String,
    pub spec: String,
    pub role: PolicyRole,
    pub episodes: Vec<EpisodeResult>,
    /// All episodes pooled (latency quantiles over every request).
    pub pooled: RunSummary,
    pub requests: Vec<RequestRow>,
    pub traces: Vec<SlotTrace>,
    /// Wall-clock time of its episodes (throughput, not part of any result).
    pub wall_s: f64,
}

impl PolicyRun {
    pub fn episodes_per_s(&self) -> f64 {
        if self.wall_s > 0.0 { self.episodes.len() as f64 / self.wall_s } else { f64::NAN }
    }
}

pub struct ScenarioResult {
    pub name: String,
    pub description: String,
    /// Notes the report prints under the scenario (e.g. what `cloud-only` means under a
    /// privacy floor).
    pub notes: Vec<String>,
    pub source: String,
    pub source_kind: SourceKind,
    pub slots_per_episode: u64,
    pub env_id: String,
    pub runs: Vec<PolicyRun>,
}

/// What the `cloud-only` row means on a scenario with a privacy floor: the first layers stay
/// on the edge, so the row is a split at the floor, not a pure cloud plan.
pub fn cloud_only_note(scenario: &Scenario) -> Option<String> {
    let floor = scenario.config.serving.privacy_floor_layers;
    (floor > 0).then(|| {
        format!(
            "cloud-only on {} is a split at the privacy floor: serving.privacy_floor_layers = {floor} keeps the \
             first {floor} layer(s) on the edge, so no plan sends everything to the cloud",
            scenario.config.name
        )
    })
}

pub struct Evaluation {
    pub config: EvalConfig,
    pub scenarios: Vec<ScenarioResult>,
}

/// Progress of a running evaluation (one call per finished episode).
pub struct ProgressEvent<'a> {
    pub scenario: &'a str,
    pub label: &'a str,
    pub episode: u32,
    pub done: u64,
    pub total: u64,
}

struct PreparedPolicy {
    label: String,
    spec: String,
    role: PolicyRole,
    policy: Box<dyn Policy>,
}

struct PreparedScenario {
    input: ScenarioInput,
    env_id: String,
    policies: Vec<PreparedPolicy>,
}

/// Every policy built for every scenario, ready to run.
pub struct Prepared {
    config: EvalConfig,
    scenarios: Vec<PreparedScenario>,
}

/// Validates the configuration and builds every policy for every scenario (a missing
/// checkpoint, a checkpoint of another observation layout or a baseline that cannot run on a
/// scenario fails here, before any episode).
pub fn prepare(inputs: Vec<ScenarioInput>, entries: Vec<PolicyEntry>, config: EvalConfig) -> Result<Prepared> {
    if config.episodes == 0 {
        bail!("--episodes must be at least 1");
    }
    if config.slots == Some(0) {
        bail!("--slots must be at least 1");
    }
    if inputs.is_empty() {
        bail!("no scenario to evaluate on");
    }
    if entries.is_empty() {
        bail!("no policy to evaluate");
    }
    let mut scenarios = Vec::with_capacity(inputs.len());
    for mut input in inputs {
        if let Some(slots) = config.slots {
            // Only the time limit changes; nothing derived from the scenario depends on it.
            let mut sc = (*input.scenario).clone();
            sc.config.serving.episode_slots = slots;
            input.scenario = Arc::new(sc);
        }
        let env = PartitionEnv::new(input.scenario.clone());
        let mut policies = Vec::with_capacity(entries.len());
        for e in &entries {
            let ctx = PolicyContext { scenario: &input.scenario, env_spec: env.spec(), seed: config.seed };
            let policy = (e.factory)(&ctx).with_context(|| {
                format!("policy `{}` on scenario `{}` ({})", e.spec, input.scenario.config.name, input.source)
            })?;
            let role = PolicyRole { oracle: e.role.oracle || policy.is_oracle(), ..e.role };
            policies.push(PreparedPolicy { label: e.label.clone(), spec: e.spec.clone(), role, policy });
        }
        let env_id = env.spec().id.clone();
        scenarios.push(PreparedScenario { input, env_id, policies });
    }
    Ok(Prepared { config, scenarios })
}

impl Prepared {
    /// Episodes the run will simulate (all policies, all scenarios).
    pub fn total_episodes(&self) -> u64 {
        self.scenarios.iter().map(|s| s.policies.len() as u64).sum::<u64>() * u64::from(self.config.episodes)
    }

    pub fn run(self, progress: &mut dyn FnMut(ProgressEvent<'_>)) -> Result<Evaluation> {
        let total = self.total_episodes();
        let mut done = 0u64;
        let config = self.config;
        let mut scenarios = Vec::with_capacity(self.scenarios.len());
        for prepared in self.scenarios {
            let sc = prepared.input.scenario.clone();
            let mut runs = Vec::with_capacity(prepared.policies.len());
            for mut p in prepared.policies {
                let started = Instant::now();
                let mut run = PolicyRun {
                    label: p.label,
                    spec: p.spec,
                    role: p.role,
                    episodes: Vec::with_capacity(config.episodes as usize),
                    pooled: RunSummary::new(),
                    requests: Vec::new(),
                    traces: Vec::new(),
                    wall_s: 0.0,
                };
                let mut env = PartitionEnv::new(sc.clone());
                env.set_recording(true);
                for k in 0..config.episodes {
                    let trace = k < config.trace_episodes;
                    let episode =
                        run_episode(&mut env, p.policy.as_mut(), &config, k, trace, &mut run).with_context(|| {
                            format!("policy `{}` on scenario `{}`, episode {k}", run.spec, sc.config.name)
                        })?;
                    run.episodes.push(episode);
                    done += 1;
                    progress(ProgressEvent { scenario: &sc.config.name, label: &run.label, episode: k, done, total });
                }
                run.wall_s = started.elapsed().as_secs_f64();
                runs.push(run);
            }
            scenarios.push(ScenarioResult {
                name: sc.config.name.clone(),
                description: sc.config.description.clone(),
                notes: cloud_only_note(&sc).into_iter().collect(),
                source: prepared.input.source,
                source_kind: prepared.input.source_kind,
                slots_per_episode: sc.config.serving.episode_slots,
                env_id: prepared.env_id,
                runs,
            });
        }
        Ok(Evaluation { config, scenarios })
    }
}

/// FNV-1a (64-bit) over a stream of words: a digest, not a security hash.
#[derive(Clone, Copy)]
struct Fnv1a(u64);

impl Fnv1a {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;

    fn word(&mut self, w: u64) {
        for b in w.to_le_bytes() {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(Self::PRIME);
        }
    }
}

fn run_episode(
    env: &mut PartitionEnv,
    policy: &mut dyn Policy,
    config: &EvalConfig,
    k: u32,
    trace: bool,
    run: &mut PolicyRun,
) -> Result<EpisodeResult> {
    let seed = episode_seed(config.seed, k);
    let (mut obs, _) = env.reset(Some(seed));
    env.take_records();
    policy.reset(seed);
    let mut summary = RunSummary::new();
    let mut digest = Fnv1a(Fnv1a::OFFSET);
    loop {
        let slot = env.slot();
        let t = act_and_step(env, policy, &mut obs).with_context(|| format!("slot {slot}"))?;
        let info = &t.info;
        summary.add_step(info);
        for w in [
            u64::from(info.arrivals),
            info.rate_bps.to_bits(),
            info.snr_db.to_bits(),
            info.cloud_load.to_bits(),
            info.crossing_failure_probability.to_bits(),
            info.edge_memory_available_bytes.to_bits(),
        ] {
            digest.word(w);
        }
        for record in env.take_records() {
            if !record.failed {
                summary.record_latency(record.latency_s);
            }
            run.requests.push(RequestRow { episode: k, record });
        }
        if trace {
            run.traces.push(SlotTrace::of(k, info));
        }
        if t.truncated || t.terminated {
            break;
        }
    }
    run.pooled.merge(&summary);
    Ok(EpisodeResult { episode: k, seed, exogenous_digest: format!("{:016x}", digest.0), metrics: summary.metrics() })
}
