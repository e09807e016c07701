//! Scenarios: one TOML file describes an experiment's system (model, devices, link, failures,
//! shared cloud, workload, reward, serving and action space). Loaded with `deny_unknown_fields`,
//! versioned, and validated into a [`Scenario`] with every derived number computed once; an
//! invalid value yields an error naming the field, the value and what is allowed (the binary
//! adds the file name).
//!
//! Traces named in a scenario are read by the caller through [`TraceSource`]: this crate does
//! no file IO.

use crate::accuracy::{AccuracyConfig, AccuracyModel};
use crate::background::{CloudLoad, CloudLoadConfig, EdgeLoad, EdgeLoadConfig};
use crate::device::{DeviceConfig, DeviceProfile};
use crate::failure::{FailureConfig, GilbertElliott, RecoveryConfig};
use crate::link::{Link, LinkConfig};
use crate::lyapunov::RewardConfig;
use crate::model::{ModelArch, ModelCosts, ModelPreset, Precisions};
use crate::plan::{MemoryModel, Precision};
use crate::trace::{TraceError, parse_time_series_csv};
use crate::validate::{InvalidField, Validation, positive};
use crate::workload::{ArrivalConfig, ArrivalProcess, LengthSampler, WorkloadConfig};
use serde::{Deserialize, Serialize};

/// The scenario file format this build reads.
pub const SCENARIO_VERSION: u32 = 1;

/// The model section: a preset or a custom architecture, and the deployment precisions.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    pub preset: Option<ModelPreset>,
    pub custom: Option<ModelArch>,
    #[serde(default = "default_bits")]
    pub weight_bits: u8,
    #[serde(default = "default_bits")]
    pub kv_bits: u8,
}

fn default_bits() -> u8 {
    16
}

impl ModelConfig {
    pub fn arch(&self) -> Result<ModelArch, InvalidField> {
        match (&self.preset, &self.custom) {
            (Some(p), None) => Ok(p.arch()),
            (None, Some(a)) => {
                a.validate().map_err(|e| e.under("custom"))?;
                Ok(a.clone())
            }
            _ => Err(InvalidField::new(
                "preset",
                if self.preset.is_some() { "set together with custom" } else { "missing" },
                "give exactly one of `preset` (gpt2-medium, gpt2-xl, llama-7b, llama2-7b, llama-13b) or a \
                 `[model.custom]` architecture",
            )),
        }
    }
}

/// How requests are served.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServingConfig {
    /// Decision slot length (one env step).
    #[serde(default = "default_slot_s")]
    pub slot_s: f64,
    /// Requests in service at once (edge, link and cloud are pipelined across them).
    #[serde(default = "default_concurrency")]
    pub concurrency: u32,
    /// The first `privacy_floor_layers` layers must run on the edge (0 = no floor).
    #[serde(default)]
    pub privacy_floor_layers: u32,
    /// Episode length in slots (the time limit: reaching it truncates).
    #[serde(default = "default_episode_slots")]
    pub episode_slots: u64,
}

fn default_slot_s() -> f64 {
    1.0
}
fn default_concurrency() -> u32 {
    1
}
fn default_episode_slots() -> u64 {
    1000
}

impl Default for ServingConfig {
    fn default() -> Self {
        Self {
            slot_s: default_slot_s(),
            concurrency: default_concurrency(),
            privacy_floor_layers: 0,
            episode_slots: default_episode_slots(),
        }
    }
}

/// The action space of the partition environment.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ActionMode {
    /// High level: split layer + precision; low level: heads on the edge and FFN mode for a
    /// window of layers around the split (Splitwise).
    Hierarchical,
    /// One split layer at a fixed precision (ALS).
    LayerSplit,
}

/// What the environment does with an action outside the feasible set.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum InfeasibleAction {
    /// Return an error (the default: callers must respect masks).
    Error,
    /// Apply the documented deterministic repair and flag it in the step info.
    Repair,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActionsConfig {
    pub mode: ActionMode,
    /// Layers the low level places (hierarchical mode).
    #[serde(default = "default_window")]
    pub window_layers: u32,
    /// Head counts are multiples of this (must divide the head count).
    #[serde(default = "default_head_step")]
    pub head_step: u32,
    /// Boundary precisions the policy may choose (hierarchical) ...
    #[serde(default = "default_precisions")]
    pub precisions: Vec<u8>,
    /// ... and the one a layer-split policy uses.
    #[serde(default = "default_layer_split_precision")]
    pub layer_split_precision: u8,
    #[serde(default = "default_infeasible")]
    pub infeasible: InfeasibleAction,
}

fn default_window() -> u32 {
    4
}
fn default_head_step() -> u32 {
    1
}
fn default_precisions() -> Vec<u8> {
    vec![16, 8, 4]
}
fn default_layer_split_precision() -> u8 {
    16
}
fn default_infeasible() -> InfeasibleAction {
    InfeasibleAction::Error
}

/// Observation settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ObservationConfig {
    /// Slots of (backlog, bandwidth, arrival rate) history in the observation.
    #[serde(default = "default_history")]
    pub history: u32,
    /// Weight of the newest sample in the moving averages.
    #[serde(default = "default_ewma")]
    pub ewma_alpha: f64,
    /// Append `service_age` (the time since the last failed probe, linear up to 2 minutes) after
    /// the history window ([`crate::observation::SERVICE_AGE`]). Off by default: it changes the
    /// observation's size, so a policy trained with it acts only on environments that have it.
    #[serde(default)]
    pub service_age: bool,
}

fn default_history() -> u32 {
    10
}
fn default_ewma() -> f64 {
    0.2
}

impl Default for ObservationConfig {
    fn default() -> Self {
        Self { history: default_history(), ewma_alpha: default_ewma(), service_age: false }
    }
}

/// Scenario fields a training config commonly changes (`[env.overrides]`; the Python
/// bindings take the same names as keyword arguments).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScenarioOverrides {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<ActionMode>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub infeasible: Option<InfeasibleAction>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub episode_slots: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window_layers: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub head_step: Option<u32>,
    /// `[observation] service_age`: an agent config's choice of observation, whatever the scenario.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_age: Option<bool>,
}

impl ScenarioOverrides {
    /// Every field with what it takes: the one list the Python bindings' error message, their
    /// `PARTITION_OPTIONS` and their README check derive from (a test holds it to the struct).
    pub const FIELDS: &'static [(&'static str, &'static str)] = &[
        ("mode", "\"layer-split\" | \"hierarchical\""),
        ("infeasible", "\"error\" | \"repair\""),
        ("episode_slots", "slots per episode, ≥ 1"),
        ("window_layers", "layers the low level places (hierarchical mode)"),
        ("head_step", "head counts are multiples of it (it divides the head count)"),
        ("service_age", "true appends the linear service age to the observation"),
    ];

    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    pub fn apply(&self, c: &mut ScenarioConfig) {
        if let Some(v) = self.mode {
            c.actions.mode = v;
        }
        if let Some(v) = self.infeasible {
            c.actions.infeasible = v;
        }
        if let Some(v) = self.episode_slots {
            c.serving.episode_slots = v;
        }
        if let Some(v) = self.window_layers {
            c.actions.window_layers = v;
        }
        if let Some(v) = self.head_step {
            c.actions.head_step = v;
        }
        if let Some(v) = self.service_age {
            c.observation.service_age = v;
        }
    }
}

/// The whole scenario file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScenarioConfig {
    /// File format version ([`SCENARIO_VERSION`]).
    pub version: u32,
    pub name: String,
    /// Why this scenario exists (system-model §0: each scenario states its motivation).
    #[serde(default)]
    pub description: String,
    pub model: ModelConfig,
    pub edge: DeviceConfig,
    pub cloud: DeviceConfig,
    #[serde(default)]
    pub cloud_load: CloudLoadConfig,
    #[serde(default)]
    pub edge_load: EdgeLoadConfig,
    pub link: LinkConfig,
    #[serde(default)]
    pub failures: FailureConfig,
    #[serde(default)]
    pub recovery: RecoveryConfig,
    pub workload: WorkloadConfig,
    #[serde(default)]
    pub accuracy: AccuracyConfig,
    #[serde(default)]
    pub reward: RewardConfig,
    #[serde(default)]
    pub serving: ServingConfig,
    pub actions: ActionsConfig,
    #[serde(default)]
    pub observation: ObservationConfig,
}

/// Supplies the text of trace files named in a scenario (the binary reads them from disk,
/// relative to the scenario file; tests serve them from memory).
pub trait TraceSource {
    fn read(&self, path: &str) -> Result<String, String>;
}

/// A source for scenarios that name no trace.
pub struct NoTraces;

impl TraceSource for NoTraces {
    fn read(&self, path: &str) -> Result<String, String> {
        Err(format!("no trace source was given, cannot read {path}"))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    #[error("{0}")]
    Parse(String),
    #[error("{0}")]
    Invalid(#[from] InvalidField),
    #[error("{0}")]
    Trace(#[from] TraceError),
    #[error("trace {path}: {message}")]
    TraceRead { path: String, message: String },
}

/// A validated scenario with every derived number (immutable; environments share it).
#[derive(Clone, Debug)]
pub struct Scenario {
    pub config: ScenarioConfig,
    pub arch: ModelArch,
    pub costs: ModelCosts,
    pub memory: MemoryModel,
    pub edge: DeviceProfile,
    pub cloud: DeviceProfile,
    pub link: Link,
    pub ge: Option<GilbertElliott>,
    pub cloud_load: CloudLoad,
    pub edge_load: EdgeLoad,
    pub arrivals: ArrivalProcess,
    pub prompt_lengths: LengthSampler,
    pub output_lengths: LengthSampler,
    pub accuracy: AccuracyModel,
    /// Allowed boundary precisions (hierarchical mode), in action-index order of
    /// [`Precision::ALL`].
    pub allowed_precisions: [bool; 3],
    pub layer_split_precision: Precision,
    /// The longest context a request can reach (for KV-cache memory).
    pub max_context_tokens: u32,
}

impl ScenarioConfig {
    /// Parses TOML text (syntax, unknown fields, wrong types and unknown preset names are
    /// reported with their line and the allowed values by the TOML/serde layer).
    pub fn from_toml(text: &str) -> Result<Self, ScenarioError> {
        toml::from_str(text).map_err(|e| ScenarioError::Parse(e.to_string()))
    }

    /// Every trace file name the scenario reads (link rate, arrivals), for the app to rewrite
    /// (e.g. relative to the scenario file → absolute, when the scenario is inlined elsewhere).
    pub fn trace_paths_mut(&mut self) -> Vec<&mut String> {
        let mut paths = Vec::new();
        if let crate::link::RateModelConfig::Rate { process: crate::link::RateProcessConfig::Trace(t) } =
            &mut self.link.rate
        {
            paths.push(&mut t.path);
        }
        if let crate::workload::ArrivalConfig::Trace { path, .. } = &mut self.workload.arrivals {
            paths.push(path);
        }
        paths
    }

    /// Checks the cross-field rules that serde cannot.
    pub fn validate(&self) -> Validation {
        if self.version != SCENARIO_VERSION {
            return Err(InvalidField::new(
                "version",
                self.version,
                format!("this splitwise reads scenario version {SCENARIO_VERSION}"),
            ));
        }
        if self.name.trim().is_empty() {
            return Err(InvalidField::new("name", "\"\"", "must be a non-empty scenario name"));
        }
        let arch = self.model.arch().map_err(|e| e.under("model"))?;
        for (field, bits) in [("weight_bits", self.model.weight_bits), ("kv_bits", self.model.kv_bits)] {
            if ![4, 8, 16, 32].contains(&bits) {
                return Err(InvalidField::new(field, bits, "must be 4, 8, 16 or 32").under("model"));
            }
        }
        self.edge.resolve().map_err(|e| e.under("edge"))?;
        self.cloud.resolve().map_err(|e| e.under("cloud"))?;
        self.cloud_load.validate().map_err(|e| e.under("cloud_load"))?;
        self.edge_load.validate().map_err(|e| e.under("edge_load"))?;
        self.link.validate().map_err(|e| e.under("link"))?;
        self.failures.validate().map_err(|e| e.under("failures"))?;
        self.recovery.validate().map_err(|e| e.under("recovery"))?;
        self.workload.validate().map_err(|e| e.under("workload"))?;
        self.accuracy.validate().map_err(|e| e.under("accuracy"))?;
        self.reward.validate().map_err(|e| e.under("reward"))?;
        self.observation_validate().map_err(|e| e.under("observation"))?;
        let s = &self.serving;
        positive("slot_s", s.slot_s, "decision slot length in seconds").map_err(|e| e.under("serving"))?;
        if s.concurrency == 0 || s.concurrency > 256 {
            return Err(InvalidField::new("concurrency", s.concurrency, "must be in 1..=256").under("serving"));
        }
        if s.episode_slots == 0 {
            return Err(InvalidField::new("episode_slots", 0, "must be >= 1").under("serving"));
        }
        if s.privacy_floor_layers > arch.n_layers {
            return Err(InvalidField::new(
                "privacy_floor_layers",
                s.privacy_floor_layers,
                format!("must be <= the model's {} layers", arch.n_layers),
            )
            .under("serving"));
        }
        let a = &self.actions;
        if a.mode == ActionMode::Hierarchical && (a.window_layers == 0 || a.window_layers > arch.n_layers) {
            return Err(InvalidField::new(
                "window_layers",
                a.window_layers,
                format!("must be in 1..={} (the model's layers)", arch.n_layers),
            )
            .under("actions"));
        }
        if a.head_step == 0 || arch.n_heads % a.head_step != 0 {
            return Err(InvalidField::new(
                "head_step",
                a.head_step,
                format!("must divide the model's {} heads", arch.n_heads),
            )
            .under("actions"));
        }
        if a.precisions.is_empty() {
            return Err(InvalidField::new("precisions", "[]", "must list at least one of 16, 8, 4").under("actions"));
        }
        for (k, &b) in a.precisions.iter().enumerate() {
            if Precision::from_bits(b).is_none() {
                return Err(InvalidField::new(format!("precisions[{k}]"), b, "must be 16, 8 or 4").under("actions"));
            }
        }
        if Precision::from_bits(a.layer_split_precision).is_none() {
            return Err(InvalidField::new("layer_split_precision", a.layer_split_precision, "must be 16, 8 or 4")
                .under("actions"));
        }
        Ok(())
    }

    fn observation_validate(&self) -> Validation {
        let o = &self.observation;
        if o.history == 0 || o.history > 64 {
            return Err(InvalidField::new("history", o.history, "must be in 1..=64 slots"));
        }
        crate::validate::in_range("ewma_alpha", o.ewma_alpha, 1e-3, 1.0, "weight of the newest sample")
    }
}

impl Scenario {
    /// Parses, validates and resolves a scenario; traces are read through `traces`.
    pub fn from_toml(text: &str, traces: &dyn TraceSource) -> Result<Self, ScenarioError> {
        Self::resolve(ScenarioConfig::from_toml(text)?, traces)
    }

    pub fn resolve(config: ScenarioConfig, traces: &dyn TraceSource) -> Result<Self, ScenarioError> {
        config.validate()?;
        let arch = config.model.arch()?;
        let costs =
            ModelCosts::new(&arch, Precisions { weight_bits: config.model.weight_bits, kv_bits: config.model.kv_bits });
        let read = |path: &str| {
            traces.read(path).map_err(|message| ScenarioError::TraceRead { path: path.to_string(), message })
        };
        let rate_trace = match config.link.rate.trace() {
            Some(t) => Some(t.parse(&read(&t.path)?)?),
            None => None,
        };
        let link = Link::new(&config.link, rate_trace).map_err(|e| e.under("link"))?;
        let arrival_series = match &config.workload.arrivals {
            ArrivalConfig::Trace { path, .. } => Some(parse_time_series_csv(&read(path)?, path, "rate_per_s")?),
            _ => None,
        };
        let arrivals = ArrivalProcess::from_config(&config.workload.arrivals, arrival_series)
            .map_err(|e| e.under("workload.arrivals"))?;
        let w = &config.workload;
        let max_context_tokens = w.prompt_tokens.max_tokens + w.output_tokens.max_tokens;
        let memory = MemoryModel::new(
            &costs,
            f64::from(max_context_tokens),
            f64::from(w.prompt_tokens.max_tokens),
            config.serving.concurrency,
        );
        let mut allowed_precisions = [false; 3];
        for &b in &config.actions.precisions {
            if let Some(p) = Precision::from_bits(b) {
                allowed_precisions[p.index()] = true;
            }
        }
        let ge = match &config.failures.gilbert_elliott {
            Some(g) => Some(GilbertElliott::new(g).map_err(|e| e.under("failures.gilbert_elliott"))?),
            None => None,
        };
        Ok(Self {
            edge: config.edge.resolve()?,
            cloud: config.cloud.resolve()?,
            cloud_load: CloudLoad::new(&config.cloud_load).map_err(|e| e.under("cloud_load"))?,
            edge_load: EdgeLoad::new(&config.edge_load).map_err(|e| e.under("edge_load"))?,
            prompt_lengths: w.prompt_tokens.sampler(),
            output_lengths: w.output_tokens.sampler(),
            accuracy: AccuracyModel::new(&config.accuracy).map_err(|e| e.under("accuracy"))?,
            layer_split_precision: Precision::from_bits(config.actions.layer_split_precision)
                .unwrap_or(Precision::Bits16),
            arch,
            costs,
            memory,
            link,
            ge,
            arrivals,
            allowed_precisions,
            max_context_tokens,
            config,
        })
    }

    /// Whether the link's outages follow a schedule: a Gilbert–Elliott state with Gamma sojourns
    /// (shape ≠ 1), where the time already spent in a state tells when it ends.
    pub fn has_scheduled_outages(&self) -> bool {
        self.ge.as_ref().is_some_and(GilbertElliott::is_scheduled)
    }

    pub fn n_layers(&self) -> u32 {
        self.arch.n_layers
    }

    pub fn n_heads(&self) -> u32 {
        self.arch.n_heads
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_overrides_field_list_names_every_field_of_the_struct_in_order() {
        // Every field set: serde writes them all, in declaration order.
        let all = ScenarioOverrides {
            mode: Some(ActionMode::LayerSplit),
            infeasible: Some(InfeasibleAction::Repair),
            episode_slots: Some(1),
            window_layers: Some(1),
            head_step: Some(1),
            service_age: Some(true),
        };
        let text = toml::to_string(&all).unwrap();
        let keys: Vec<&str> = text.lines().filter_map(|l| l.split(" = ").next()).collect();
        let listed: Vec<&str> = ScenarioOverrides::FIELDS.iter().map(|(name, _)| *name).collect();
        assert_eq!(keys, listed);
    }
}
