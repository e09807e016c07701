//! Training configs: one TOML tree — the environment (CartPole, the ALS environment, or a partition scenario with a
//! few overrides), the agent, the training schedule and logging — loaded with
//! `deny_unknown_fields`, versioned, and validated once into a [`ResolvedTrainConfig`] with the
//! scenario inlined. The resolved form is what a run folder and every checkpoint store
//! (`config.toml`), so a checkpoint never depends on the files it was trained from.

use crate::scenario_file;
use anyhow::{Context, Result, anyhow, bail};
use serde::{Deserialize, Serialize};
use splitwise_agents::{ComputeDevice, HppoConfig, LearnerConfig, MbrlConfig, PpoConfig};
use splitwise_env::als::{AlsConfig, QualityTable};
use splitwise_env::policy::PolicySpec;
use splitwise_env::scenario::{Scenario, ScenarioConfig, ScenarioOverrides};
use splitwise_env::validate::{InvalidField, Validation};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The training-config format this build reads.
pub const TRAIN_CONFIG_VERSION: u32 = 1;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainConfig {
    pub version: u32,
    /// Default run name (`--run-name` overrides; otherwise `<name>-seed<S>`).
    pub name: String,
    #[serde(default)]
    pub description: String,
    pub env: EnvSection,
    pub agent: AgentSection,
    pub training: TrainingSection,
    #[serde(default)]
    pub logging: LoggingSection,
}

/// What to train on.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum EnvSection {
    /// CartPole-v1 (agent validation).
    Cartpole,
    /// The partition environment on a scenario: a file (relative to this config) or the
    /// scenario inlined (what resolved configs hold), plus overrides.
    Partition {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        scenario_file: Option<PathBuf>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        scenario: Option<Box<ScenarioConfig>>,
        #[serde(default, skip_serializing_if = "ScenarioOverrides::is_empty")]
        overrides: ScenarioOverrides,
    },
    /// Adaptive Layer Splitting's environment (`splitwise_env::als`): one split layer of
    /// LLaMA2-7B under channel noise, scored by ALS's reward with its surrogate table as the
    /// expensive inference-quality term.
    Als(AlsConfig),
}

impl EnvSection {
    /// The environment's name in messages.
    pub fn describe(&self) -> &'static str {
        match self {
            EnvSection::Cartpole => "CartPole",
            EnvSection::Partition { .. } => "a partition scenario",
            EnvSection::Als(_) => "the ALS environment",
        }
    }
}

/// The learner (the kinds of [`crate::agents::REGISTRY`]).
// One per config: the size difference between variants is moot.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum AgentSection {
    Ppo(PpoConfig),
    Hppo(HppoSection),
    /// Model-based RL with a learned reward surrogate (`splitwise_agents::mbrl`): `[agent.ppo]`
    /// is the policy's learner, `[agent.surrogate]` the surrogate's network and fit.
    Mbrl(MbrlConfig),
}

/// Hierarchical PPO: each level's PPO hyperparameters (`[agent.high]`, `[agent.low]`); the
/// levels share one rollout, so their `n_envs` and `n_steps` must agree.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HppoSection {
    /// Leading action components the high level picks (2: split layer and precision).
    #[serde(default = "default_n_high")]
    pub n_high: usize,
    /// The logit bonus a fresh low level puts on the whole-layer plan of the high choice
    /// (`splitwise_agents::hppo::completion_prior`); 0 starts it uniform.
    #[serde(default = "default_low_prior")]
    pub low_prior: f32,
    /// Slots the high level holds each choice for (semi-MDP options; 1: it decides every slot).
    /// More than 1 needs `[agent.high] advantage = "critic"` and γ > 0
    /// (`splitwise_agents::hppo`).
    #[serde(default = "default_k_high")]
    pub k_high: usize,
    pub high: PpoConfig,
    pub low: PpoConfig,
}

fn default_n_high() -> usize {
    2
}

fn default_k_high() -> usize {
    1
}

fn default_low_prior() -> f32 {
    splitwise_agents::hppo::DEFAULT_LOW_PRIOR
}

impl AgentSection {
    pub fn kind(&self) -> &'static str {
        match self {
            AgentSection::Ppo(_) => "ppo",
            AgentSection::Hppo(_) => "hppo",
            AgentSection::Mbrl(_) => "mbrl",
        }
    }

    /// The env steps each PPO learner's schedules run over, for `total_steps` of training: the
    /// training length, except for a model-based learner, whose policy trains on model steps
    /// (`model_updates` rollouts per `real_steps` vector steps on the real environment).
    pub fn policy_timesteps(&self, total_steps: u64) -> u64 {
        match self {
            AgentSection::Ppo(_) | AgentSection::Hppo(_) => total_steps,
            AgentSection::Mbrl(m) => {
                let n = m.ppo.n_envs.max(1) as u64;
                let iterations = total_steps.div_ceil((m.real_steps as u64 * n).max(1));
                iterations.saturating_mul(m.model_updates as u64).saturating_mul(m.ppo.n_steps as u64 * n)
            }
        }
    }

    /// Every PPO learner of the agent with its field path (`agent`, `agent.high`, …).
    pub fn levels(&self) -> Vec<(&'static str, &PpoConfig)> {
        match self {
            AgentSection::Ppo(p) => vec![("agent", p)],
            AgentSection::Hppo(h) => vec![("agent.high", &h.high), ("agent.low", &h.low)],
            AgentSection::Mbrl(m) => vec![("agent.ppo", &m.ppo)],
        }
    }

    fn levels_mut(&mut self) -> Vec<&mut PpoConfig> {
        match self {
            AgentSection::Ppo(p) => vec![p],
            AgentSection::Hppo(h) => vec![&mut h.high, &mut h.low],
            AgentSection::Mbrl(m) => vec![&mut m.ppo],
        }
    }

    /// The learner's hyperparameters.
    pub fn learner_config(&self) -> LearnerConfig {
        match self {
            AgentSection::Ppo(p) => LearnerConfig::Flat(Box::new(p.clone())),
            AgentSection::Hppo(h) => LearnerConfig::Hierarchical(Box::new(HppoConfig {
                high: h.high.clone(),
                low: h.low.clone(),
                n_high: h.n_high,
                low_prior: h.low_prior,
                k_high: h.k_high,
            })),
            AgentSection::Mbrl(m) => LearnerConfig::ModelBased(Box::new(m.clone())),
        }
    }
}

fn default_keep_last() -> usize {
    3
}
fn default_eval_episodes() -> usize {
    10
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainingSection {
    /// Env steps to train for, all vector-env members together.
    pub total_steps: u64,
    /// Seed of everything random in the run (`--seed` overrides).
    #[serde(default)]
    pub seed: u64,
    /// Write a checkpoint every this many env steps (at the first update boundary past it).
    pub checkpoint_every_steps: u64,
    /// Completed checkpoints to keep (0 keeps all); `best/` is kept besides.
    #[serde(default = "default_keep_last")]
    pub keep_last: usize,
    /// Run deterministic evaluation episodes every this many env steps (0: never).
    #[serde(default)]
    pub eval_every_steps: u64,
    #[serde(default = "default_eval_episodes")]
    pub eval_episodes: usize,
    /// Where the updates run: `cpu` (burn's flex backend) or `wgpu` (a GPU; a build with
    /// `--features wgpu`); `--device` overrides. Acting stays on the CPU either way
    /// (`splitwise_agents::compute_device` says why). A placement, not a hyperparameter: a run
    /// may resume on another device.
    #[serde(default, skip_serializing_if = "ComputeDevice::is_cpu")]
    pub device: ComputeDevice,
}

/// Where a run writes, and how it talks.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoggingSection {
    /// Run folders (`<dir>/<run>/`: config, TensorBoard events, `step_<N>/` checkpoints).
    #[serde(default = "default_checkpoints_dir")]
    pub checkpoints_dir: PathBuf,
    /// Progress bar: `auto` (only when stdout is a terminal), `always`, `never`.
    #[serde(default)]
    pub progress: ProgressMode,
}

fn default_checkpoints_dir() -> PathBuf {
    PathBuf::from("checkpoints")
}

impl Default for LoggingSection {
    fn default() -> Self {
        Self { checkpoints_dir: default_checkpoints_dir(), progress: ProgressMode::default() }
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ProgressMode {
    #[default]
    Auto,
    Always,
    Never,
}

/// A validated config: the scenario resolved and inlined.
#[derive(Clone, Debug)]
pub struct ResolvedTrainConfig {
    /// With `env.scenario` inlined and no file or overrides left: what checkpoints store.
    pub config: TrainConfig,
    pub scenario: Option<Arc<Scenario>>,
    /// Where it was read from (for messages).
    pub origin: PathBuf,
}

impl TrainConfig {
    /// Cross-field rules serde cannot express; field paths are relative to the file's root.
    pub fn validate(&self) -> Validation {
        if self.version != TRAIN_CONFIG_VERSION {
            return Err(InvalidField::new(
                "version",
                self.version,
                format!("this splitwise reads training config version {TRAIN_CONFIG_VERSION}"),
            ));
        }
        if self.name.trim().is_empty() || self.name.contains(['/', '\\']) {
            return Err(InvalidField::new("name", &self.name, "must be a non-empty name without path separators"));
        }
        let t = &self.training;
        if t.total_steps == 0 {
            return Err(InvalidField::new("training.total_steps", 0, "must be >= 1"));
        }
        if t.checkpoint_every_steps == 0 {
            return Err(InvalidField::new("training.checkpoint_every_steps", 0, "must be >= 1 env step"));
        }
        if t.eval_every_steps > 0 && t.eval_episodes == 0 {
            return Err(InvalidField::new(
                "training.eval_episodes",
                0,
                "must be >= 1 when training.eval_every_steps > 0",
            ));
        }
        crate::limits::check_training(t.total_steps, t.eval_episodes).map_err(|e| e.under("training"))?;
        let policy_timesteps = self.agent.policy_timesteps(t.total_steps);
        for (path, p) in self.agent.levels() {
            p.validate().map_err(|e| e.under(path))?;
            crate::limits::check_agent(p).map_err(|e| e.under(path))?;
            if let Some(i) = &p.imitation {
                let field = format!("{path}.imitation.teacher");
                if !matches!(self.agent, AgentSection::Ppo(_)) {
                    return Err(InvalidField::new(
                        field,
                        &i.teacher,
                        "imitation is implemented for kind = \"ppo\" only",
                    ));
                }
                if !matches!(self.env, EnvSection::Partition { .. }) {
                    return Err(InvalidField::new(
                        field,
                        &i.teacher,
                        format!(
                            "needs a partition scenario (the teacher is one of its policies), not {}",
                            self.env.describe()
                        ),
                    ));
                }
                PolicySpec::parse(&i.teacher, &crate::policies::extra_names())
                    .map_err(|e| InvalidField::new(&field, &i.teacher, e.to_string()))?;
            }
            if p.total_timesteps != policy_timesteps {
                return Err(InvalidField::new(
                    format!("{path}.total_timesteps"),
                    p.total_timesteps,
                    if policy_timesteps == t.total_steps {
                        format!("is set from training.total_steps ({policy_timesteps}); leave it out")
                    } else {
                        format!(
                            "is set from training.total_steps and the model-based schedule ({policy_timesteps} \
                             model steps); leave it out"
                        )
                    },
                ));
            }
        }
        if let AgentSection::Mbrl(m) = &self.agent {
            // Whether the environment has an expensive component is the learner's check
            // (`Env::expensive`), made when the run starts, before anything is written.
            m.validate().map_err(|e| e.under("agent"))?;
        }
        if let AgentSection::Hppo(h) = &self.agent {
            if h.low.n_envs != h.high.n_envs || h.low.n_steps != h.high.n_steps {
                return Err(InvalidField::new(
                    "agent.low.n_envs",
                    format!("{} (n_steps {})", h.low.n_envs, h.low.n_steps),
                    format!(
                        "must equal agent.high's n_envs {} and n_steps {} (the levels share one rollout)",
                        h.high.n_envs, h.high.n_steps
                    ),
                ));
            }
            if h.n_high == 0 {
                return Err(InvalidField::new("agent.n_high", 0, "must be >= 1 (the high level picks the split)"));
            }
            if let LearnerConfig::Hierarchical(c) = self.agent.learner_config() {
                c.validate_options().map_err(|e| e.under("agent"))?;
            }
            if !(h.low_prior.is_finite() && (0.0..=20.0).contains(&h.low_prior)) {
                return Err(InvalidField::new(
                    "agent.low_prior",
                    h.low_prior,
                    "must be a logit bonus in [0, 20] (0: a uniform start)",
                ));
            }
        }
        if let EnvSection::Als(als) = &self.env {
            als.validate().map_err(|e| e.under("env"))?;
        }
        if let EnvSection::Partition { scenario_file, scenario, .. } = &self.env
            && scenario_file.is_some() == scenario.is_some()
        {
            return Err(InvalidField::new(
                "env.scenario_file",
                if scenario.is_some() { "set together with env.scenario" } else { "missing" },
                "give exactly one of `scenario_file` (a path) or an inline `[env.scenario]` table",
            ));
        }
        Ok(())
    }
}

/// A measured inference-quality table for the ALS environment in ALS's own CSV layout
/// (`noise_level,split_1,…,split_10`, one row per noise level; the layout of the table decoded
/// from ALS's released surrogate). Errors name the line, the column and the value.
pub fn parse_quality_csv(text: &str) -> Result<QualityTable> {
    let expected: Vec<String> =
        std::iter::once("noise_level".to_string()).chain((1..=10).map(|s| format!("split_{s}"))).collect();
    let mut reader = csv::ReaderBuilder::new().trim(csv::Trim::All).from_reader(text.as_bytes());
    let header = reader.headers().context("line 1: the header")?;
    if header.iter().ne(expected.iter().map(String::as_str)) {
        bail!("line 1: header {:?}; expected {}", header.iter().collect::<Vec<_>>().join(","), expected.join(","));
    }
    let mut table = QualityTable { noise_levels: Vec::new(), values: Vec::new() };
    for record in reader.records() {
        if table.noise_levels.len() >= splitwise_env::als::MAX_QUALITY_ROWS {
            bail!("more than {} rows", splitwise_env::als::MAX_QUALITY_ROWS);
        }
        // The reader refuses a row whose width differs from the header's, naming its line.
        let record = record?;
        let line = record.position().map_or(0, csv::Position::line);
        let mut row = Vec::with_capacity(expected.len());
        for (cell, name) in record.iter().zip(&expected) {
            let v: f64 = cell.parse().map_err(|_| anyhow!("line {line}: {name} = {cell:?} is not a number"))?;
            row.push(v);
        }
        table.noise_levels.push(row[0]);
        table.values.push(row[1..].to_vec());
    }
    table.validate().map_err(|e| anyhow!("{e}"))?;
    Ok(table)
}

/// A file a config names, relative to the config's folder.
fn beside(config: &Path, name: impl AsRef<Path>) -> PathBuf {
    config.parent().unwrap_or(Path::new("")).join(name)
}

/// Reads, validates and resolves a training config file.
pub fn load(path: &Path) -> Result<ResolvedTrainConfig> {
    let text =
        crate::scenario_file::read_text(path).with_context(|| format!("cannot read config {}", path.display()))?;
    parse(&text, path)
}

/// [`load`] with `--set KEY=VALUE` changes applied before validation ([`crate::config_set`]).
pub fn load_with_sets(path: &Path, sets: &[String]) -> Result<ResolvedTrainConfig> {
    if sets.is_empty() {
        return load(path);
    }
    let text =
        crate::scenario_file::read_text(path).with_context(|| format!("cannot read config {}", path.display()))?;
    let changed = crate::config_set::apply(&text, path, sets)?;
    parse(&changed, path).with_context(|| format!("with --set {}", sets.join(" --set ")))
}

/// Validates and resolves config text read from `origin`.
pub fn parse(text: &str, origin: &Path) -> Result<ResolvedTrainConfig> {
    let mut config: TrainConfig = toml::from_str(text).map_err(|e| field_error(text, origin, e))?;
    // The learning-rate and clip schedules run over the training length.
    let policy_timesteps = config.agent.policy_timesteps(config.training.total_steps);
    for p in config.agent.levels_mut() {
        if p.total_timesteps == splitwise_agents::config::DEFAULT_TOTAL_TIMESTEPS {
            p.total_timesteps = policy_timesteps;
        }
    }
    if let EnvSection::Als(als) = &mut config.env
        && let Some(csv) = als.quality_csv.take()
    {
        if als.quality_table.is_some() {
            bail!(
                "{}: env.quality_csv: give either a CSV file or an inline env.quality_table, not both",
                origin.display()
            );
        }
        let path = beside(origin, &csv);
        let text = scenario_file::read_text(&path)
            .with_context(|| format!("{}: env.quality_csv: cannot read {}", origin.display(), path.display()))?;
        als.quality_table = Some(parse_quality_csv(&text).map_err(|e| anyhow!("{}: {e}", path.display()))?);
    }
    config.validate().map_err(|e| anyhow!("{}: {e}", origin.display()))?;
    let scenario = match &mut config.env {
        EnvSection::Cartpole | EnvSection::Als(_) => None,
        EnvSection::Partition { scenario_file, scenario, overrides } => {
            let (mut sc_config, sc_origin) = match (scenario_file.take(), scenario.take()) {
                (Some(file), None) => {
                    let full = beside(origin, &file);
                    let text = scenario_file::read_text(&full).with_context(|| {
                        format!("{}: env.scenario_file: cannot read {}", origin.display(), full.display())
                    })?;
                    let c = ScenarioConfig::from_toml(&text).map_err(|e| scenario_file::describe(&full, e))?;
                    (c, full)
                }
                (None, Some(inline)) => (*inline, origin.to_path_buf()),
                _ => unreachable!("validate() requires exactly one of scenario_file and scenario"),
            };
            let original = (!overrides.is_empty()).then(|| sc_config.clone());
            overrides.apply(&mut sc_config);
            let applied = std::mem::take(overrides);
            let resolved = match scenario_file::resolve(sc_config.clone(), &sc_origin) {
                Ok(r) => r,
                Err(e) => return Err(blame_overrides(e, &applied, original, origin, &sc_origin)),
            };
            // The inlined scenario is read back from run folders and checkpoints, away from the
            // scenario file: its trace names become absolute (they were relative to that file).
            let base = sc_origin.parent().unwrap_or(Path::new(""));
            let base = std::path::absolute(base).unwrap_or_else(|_| base.to_path_buf());
            for path in sc_config.trace_paths_mut() {
                if Path::new(path.as_str()).is_relative() {
                    *path = base.join(path.as_str()).display().to_string();
                }
            }
            *scenario = Some(Box::new(sc_config));
            Some(resolved)
        }
    };
    Ok(ResolvedTrainConfig { config, scenario, origin: origin.to_path_buf() })
}

/// The scenario field each `env.overrides` field sets.
const OVERRIDE_FIELDS: &[(&str, &str)] = &[
    ("mode", "actions.mode"),
    ("infeasible", "actions.infeasible"),
    ("episode_slots", "serving.episode_slots"),
    ("window_layers", "actions.window_layers"),
    ("head_step", "actions.head_step"),
];

/// A scenario that fails only once the overrides are applied is the config's fault: name the
/// override (and the scenario field it sets), not the scenario file.
fn blame_overrides(
    err: anyhow::Error,
    overrides: &ScenarioOverrides,
    original: Option<ScenarioConfig>,
    origin: &Path,
    scenario_origin: &Path,
) -> anyhow::Error {
    let Some(original) = original else { return err };
    if scenario_file::resolve(original, scenario_origin).is_err() {
        return err; // the scenario itself is invalid
    }
    let text = format!("{err:#}");
    let detail = text.strip_prefix(&format!("{}: ", scenario_origin.display())).unwrap_or(&text);
    let set: Vec<&str> = serde_json::to_value(overrides)
        .ok()
        .and_then(|v| v.as_object().map(|m| m.keys().cloned().collect::<Vec<_>>()))
        .unwrap_or_default()
        .iter()
        .filter_map(|k| OVERRIDE_FIELDS.iter().find(|(o, _)| o == k).map(|(o, _)| *o))
        .collect();
    match OVERRIDE_FIELDS.iter().find(|(o, field)| set.contains(o) && detail.starts_with(&format!("{field} "))) {
        Some((name, field)) => anyhow!(
            "{}: env.overrides.{name}{} (it sets {field} of the scenario {}, which is valid without the overrides)",
            origin.display(),
            detail.strip_prefix(field).unwrap_or(detail),
            scenario_origin.display()
        ),
        None => anyhow!(
            "{}: env.overrides ({}) make the scenario {} invalid: {detail}",
            origin.display(),
            set.join(", "),
            scenario_origin.display()
        ),
    }
}

/// A config error that names the field. serde reads the internally tagged `[agent]` and
/// `[env]` tables through a buffer that loses positions, so a wrong type there is reported at
/// the table; those tables are parsed again alone to find the field.
fn field_error(text: &str, origin: &Path, err: toml::de::Error) -> anyhow::Error {
    /// `[env]` with `kind = "partition"`, as its own document.
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)] // only parsed for its errors
    struct PartitionFields {
        #[serde(default)]
        scenario_file: Option<PathBuf>,
        #[serde(default)]
        scenario: Option<Box<ScenarioConfig>>,
        #[serde(default)]
        overrides: ScenarioOverrides,
    }
    fn alone<T: serde::de::DeserializeOwned>(doc: &toml::Table, key: &str, kind: &str) -> Option<String> {
        let mut table = doc.get(key)?.as_table()?.clone();
        if table.get("kind").and_then(|k| k.as_str()) != Some(kind) {
            return None;
        }
        table.remove("kind");
        let sub = toml::to_string(&table).ok()?;
        let e = toml::from_str::<T>(&sub).err()?;
        Some(locate(key, &sub, &e))
    }
    let whole = || anyhow!("{}: {}", origin.display(), err.to_string().trim_end());
    let Ok(doc) = toml::from_str::<toml::Table>(text) else { return whole() };
    let found = alone::<PpoConfig>(&doc, "agent", "ppo").or_else(|| alone::<PartitionFields>(&doc, "env", "partition"));
    match found {
        Some(detail) => anyhow!("{}: {detail}", origin.display()),
        None => whole(),
    }
}

/// `prefix.table.key = value: message` for an error at `err.span()` in `sub` (a document
/// `toml::to_string` wrote: one `key = value` per line under `[table]` headers).
fn locate(prefix: &str, sub: &str, err: &toml::de::Error) -> String {
    let message = err.message().trim_end();
    let Some(span) = err.span() else { return format!("[{prefix}]: {message}") };
    let before = &sub[..span.start.min(sub.len())];
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let line = sub[line_start..].lines().next().unwrap_or("").trim();
    let table = before[..line_start]
        .lines()
        .rev()
        .find_map(|l| l.trim().strip_prefix('[').and_then(|l| l.strip_suffix(']')))
        .map(|t| t.trim_matches(['[', ']']).to_string());
    let mut path = prefix.to_string();
    if let Some(t) = table {
        path = format!("{path}.{t}");
    }
    match line.split_once('=') {
        Some((key, value)) if !line.starts_with('[') => {
            format!("{path}.{} = {}: {message}", key.trim(), value.trim())
        }
        _ => format!("{path}: {message}"),
    }
}

impl ResolvedTrainConfig {
    /// The resolved config as TOML (scenario inlined).
    pub fn to_toml(&self) -> Result<String> {
        toml::to_string(&self.config).context("serialising the resolved training config")
    }

    /// The learner's hyperparameters.
    pub fn learner_config(&self) -> LearnerConfig {
        self.config.agent.learner_config()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repo(path: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
    }

    #[test]
    fn shipped_training_configs_resolve_and_round_trip() {
        for entry in std::fs::read_dir(repo("configs")).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_none_or(|e| e != "toml") {
                continue; // configs/traces/
            }
            let text = std::fs::read_to_string(&path).unwrap();
            if !text.contains("[agent]") {
                continue; // a scenario file
            }
            let r = load(&path).unwrap_or_else(|e| panic!("{}: {e:#}", path.display()));
            // The resolved form parses back to itself, with no file references left.
            let again = parse(&r.to_toml().unwrap(), &path).unwrap();
            assert_eq!(again.config, r.config, "{}", path.display());
            assert!(!r.to_toml().unwrap().contains("scenario_file"));
        }
    }

    /// A run folder's config inlines the scenario; the traces the scenario names (relative to
    /// the scenario file) must still load from there, e.g. for the end-of-training comparison
    /// and the printed `splitwise eval --config <run>/config.toml`.
    #[test]
    fn resolved_configs_name_trace_files_by_absolute_path_so_run_folders_load_anywhere() {
        let text = std::fs::read_to_string(repo("configs/ppo-jetson-layer-split.toml"))
            .unwrap()
            .replace("jetson-llama7b-lte.toml", "control-healthy.toml");
        let r = parse(&text, &repo("configs/x.toml")).unwrap();
        let resolved = r.to_toml().unwrap();
        let trace = repo("configs/traces/azure-conv-2023/arrival-rate-10s.csv");
        let trace = std::path::absolute(&trace).unwrap();
        assert!(resolved.contains(&trace.display().to_string()), "{resolved}");
        // Read back from another folder (a run folder elsewhere), it resolves to the same config.
        let elsewhere = std::env::temp_dir().join("splitwise-run").join("config.toml");
        let again = parse(&resolved, &elsewhere).unwrap_or_else(|e| panic!("{e:#}"));
        assert_eq!(again.config, r.config);
    }

    #[test]
    fn errors_name_the_file_and_field() {
        let base = "version = 1\nname = \"x\"\n[env]\nkind = \"cartpole\"\n[agent]\nkind = \"ppo\"\n[training]\ntotal_steps = 100\ncheckpoint_every_steps = 50\n";
        let p = Path::new("cfg.toml");
        assert!(parse(base, p).is_ok());
        let e = format!("{:#}", parse(&base.replace("version = 1", "version = 3"), p).unwrap_err());
        assert!(e.contains("cfg.toml") && e.contains("version = 3"), "{e}");
        let e = format!(
            "{:#}",
            parse(&base.replace("kind = \"ppo\"", "kind = \"ppo\"\nlearning_rate = -1"), p).unwrap_err()
        );
        assert!(e.contains("agent.learning_rate = -1"), "{e}");
        let e = format!("{:#}", parse(&base.replace("kind = \"ppo\"", "kind = \"ppo\"\nlr = 1"), p).unwrap_err());
        assert!(e.contains("lr"), "unknown agent fields are rejected: {e}");
        let e = format!("{:#}", parse(&base.replace("kind = \"cartpole\"", "kind = \"pendulum\""), p).unwrap_err());
        assert!(e.contains("pendulum") && e.contains("partition"), "{e}");
        let e = format!("{:#}", parse(&base.replace("total_steps = 100", "total_steps = 0"), p).unwrap_err());
        assert!(e.contains("training.total_steps = 0"), "{e}");
        let e = format!("{:#}", parse(&base.replace("kind = \"cartpole\"", "kind = \"partition\""), p).unwrap_err());
        assert!(e.contains("env.scenario_file"), "{e}");
    }
}
