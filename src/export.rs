//! `splitwise export`: a checkpoint's policy as ONNX graphs plus a JSON sidecar that lets a
//! device build the inputs and read the outputs without our code.
//!
//! Read it top to bottom: resolve and load the checkpoint, refuse agent kinds without an
//! exporter, rebuild the environment's spaces from the checkpoint's own resolved config (and
//! check the observation fingerprint against the one it was trained with), turn the agent into
//! its levels ([`splitwise_agents::export::PolicyLevel`]: one for PPO, one per network for a
//! hierarchy), export each level, describe everything in the sidecar, and write the files
//! atomically (temporary file, fsync, rename; graphs first, the sidecar last, so a sidecar always
//! describes complete graphs).
//!
//! Files: a one-level policy is written to `--out` itself; a policy of several levels writes
//! `<stem>.<role>.onnx` per level next to `--out`. The sidecar is `<out>.json` in both cases.
//! Its `chain` section says in which order a caller runs the levels and how each input is
//! built (observation features, the mask, upstream choices).

use crate::checkpoint::{self, CONFIG_FILE, CheckpointFiles};
use crate::config::{self, EnvSection};
use crate::device::Acting;

use anyhow::{Context, Result, bail};
use serde::Serialize;
use splitwise_agents::distribution::MASKED_LOGIT;
use splitwise_agents::export::{
    BATCH_AXIS, CONTEXT_INPUT, Dim, ExportedLevel, MASK_INPUT, OBSERVATION_INPUT, OutputFormat, PolicyLevel,
    TensorSpec, export_policy,
};
use splitwise_agents::normalize::NORMALIZE_EPSILON;
use splitwise_agents::{ComputeDevice, Learner};
use splitwise_env::api::{Env, EnvSpec};
use splitwise_env::cartpole::CartPole;
use splitwise_env::partition::PartitionEnv;
use splitwise_env::plan::Precision;
use splitwise_env::scenario::{ActionMode, Scenario};
use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Version of the sidecar's layout; bump when it changes.
pub const SIDECAR_VERSION: u32 = 1;
/// The ONNX operator set burn-onnx 0.22 writes.
pub const ONNX_OPSET: i64 = 18;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum FormatArg {
    /// Masked logits (masked values exactly −1e8).
    Logits,
    /// Probabilities: a softmax per action component (masked values exactly 0).
    Probs,
    /// The deterministic action: the most probable legal value of each component.
    Action,
}

impl From<FormatArg> for OutputFormat {
    fn from(f: FormatArg) -> Self {
        match f {
            FormatArg::Logits => OutputFormat::Logits,
            FormatArg::Probs => OutputFormat::Probs,
            FormatArg::Action => OutputFormat::Action,
        }
    }
}

#[derive(Debug, clap::Args)]
pub struct ExportArgs {
    /// Checkpoint folder, or a run folder (its newest checkpoint).
    #[arg(long)]
    pub checkpoint: PathBuf,
    /// Output ONNX file; the sidecar goes to `<out>.json`. A policy of several networks writes
    /// `<stem>.<role>.onnx` per network instead.
    #[arg(long)]
    pub out: PathBuf,
    /// What the graph returns.
    #[arg(long, value_enum, default_value_t = FormatArg::Action)]
    pub format: FormatArg,
    /// Where the checkpoint's networks are loaded before the graph is captured: a check that the
    /// checkpoint loads there. The ONNX file is the same whatever the device (the capture copies
    /// the weights to the host).
    #[arg(long, value_parser = crate::device::parser(), default_value = "cpu")]
    pub device: ComputeDevice,
}

/// What an export wrote.
#[derive(Clone, Debug)]
pub struct ExportOutcome {
    pub checkpoint: PathBuf,
    /// `(role, file, bytes)` per level, in chain order.
    pub graphs: Vec<(String, PathBuf, usize)>,
    pub sidecar: PathBuf,
}

pub fn run(args: &ExportArgs) -> Result<()> {
    let out = export(args)?;
    for (role, path, bytes) in &out.graphs {
        println!("exported {role} graph ({bytes} bytes) to {}", path.display());
    }
    println!("sidecar {} | checkpoint {}", out.sidecar.display(), out.checkpoint.display());
    Ok(())
}

/// Exports the policy of `args.checkpoint`.
pub fn export(args: &ExportArgs) -> Result<ExportOutcome> {
    let format = OutputFormat::from(args.format);
    crate::device::open(args.device, "export")?;
    let dir = checkpoint::resolve(&args.checkpoint)?;
    let files = checkpoint::load(&dir)?;
    crate::agents::find(&files.metadata.agent_kind)
        .with_context(|| format!("checkpoint {} ({})", dir.display(), checkpoint::METADATA_FILE))?;
    let env = EnvDescription::of_checkpoint(&files, &dir)?;
    let mut policy = crate::train::load_agent(&files, &dir, None)?;
    crate::device::place(&mut policy, args.device, Acting::OnDevice, &format!("checkpoint {}", dir.display()))?;
    let shape = policy.env_shape();
    if shape.obs_dim != env.spec.observation.dim() || shape.nvec != env.spec.action.nvec {
        bail!(
            "checkpoint {}: the agent's shape (obs_dim {}, nvec {:?}) does not fit {} (obs_dim {}, nvec {:?})",
            dir.display(),
            shape.obs_dim,
            shape.nvec,
            env.spec.id,
            env.spec.observation.dim(),
            env.spec.action.nvec
        );
    }
    let levels = crate::agents::levels(&policy);

    let paths = level_paths(&args.out, &levels)?;
    let sidecar_path = sidecar_path(&args.out)?;
    let sidecar_name = file_name(&sidecar_path);
    let m = &files.metadata;
    let props: Vec<(String, String)> = [
        ("splitwise_version", env!("CARGO_PKG_VERSION").to_string()),
        ("sidecar", sidecar_name),
        ("agent_kind", m.agent_kind.clone()),
        ("env_id", m.env_id.clone()),
        ("observation_layout", m.observation_layout.clone()),
        ("observation_fingerprint", m.observation_fingerprint.clone()),
        ("run_name", m.run_name.clone()),
        ("checkpoint_step", m.step.to_string()),
        ("seed", m.seed.to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let exported = export_policy(&levels, format, env.masked, &props)
        .with_context(|| format!("exporting the policy of checkpoint {}", dir.display()))?;

    let weights_crc32c = checkpoint::content_crc32c(&policy.parameter_values());
    // A hierarchy trained to hold its high choice: the stateless graphs leave the holding to the caller.
    let high_hold = match &policy {
        Learner::Hierarchical(h) if h.k_high() > 1 => Some(h.k_high()),
        _ => None,
    };
    let sidecar = Sidecar::new(&files, &dir, &env, &levels, &exported, &paths, format, weights_crc32c, high_hold)?;
    let sidecar_json = serde_json::to_vec_pretty(&sidecar).context("serialising the sidecar")?;
    let mut graphs = Vec::new();
    for (level, path) in exported.iter().zip(&paths) {
        write_atomically(path, &level.onnx)?;
        graphs.push((level.role.clone(), path.clone(), level.onnx.len()));
    }
    write_atomically(&sidecar_path, &sidecar_json)?;
    Ok(ExportOutcome { checkpoint: dir, graphs, sidecar: sidecar_path })
}

/// `--out` for one level; `<stem>.<role>.onnx` beside it for several.
fn level_paths(out: &Path, levels: &[PolicyLevel]) -> Result<Vec<PathBuf>> {
    if out.file_name().is_none() || out.is_dir() {
        bail!("--out {}: needs a file name, not a folder", out.display());
    }
    if levels.len() == 1 {
        return Ok(vec![out.to_path_buf()]);
    }
    let stem = out.file_stem().and_then(|s| s.to_str()).context("--out needs a UTF-8 file name")?;
    Ok(levels.iter().map(|l| out.with_file_name(format!("{stem}.{}.onnx", l.role))).collect())
}

/// `<out>.json`.
fn sidecar_path(out: &Path) -> Result<PathBuf> {
    let name = out.file_name().and_then(|n| n.to_str()).context("--out needs a UTF-8 file name")?;
    Ok(out.with_file_name(format!("{name}.json")))
}

fn file_name(path: &Path) -> String {
    path.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default()
}

/// Writes `bytes` to a temporary sibling, syncs it and renames it over `path`: readers see the
/// old file or the complete new one, never a partial write.
fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    fs::create_dir_all(&parent).with_context(|| format!("cannot create {}", parent.display()))?;
    let tmp = parent.join(format!(".{}.tmp-{}", file_name(path), std::process::id()));
    let written = (|| -> Result<()> {
        let mut f = fs::File::create(&tmp).with_context(|| format!("cannot create {}", tmp.display()))?;
        f.write_all(bytes).with_context(|| format!("cannot write {}", tmp.display()))?;
        f.sync_all().with_context(|| format!("cannot sync {}", tmp.display()))?;
        fs::rename(&tmp, path).with_context(|| format!("cannot move {} to {}", tmp.display(), path.display()))
    })();
    if written.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    written?;
    // A directory fsync makes the rename durable (POSIX); best effort elsewhere.
    if let Ok(d) = fs::File::open(&parent) {
        let _ = d.sync_all();
    }
    Ok(())
}

// ----- the environment the policy acts in ---------------------------------------------------

/// The spaces of the checkpoint's environment and what the sidecar says about them.
struct EnvDescription {
    spec: EnvSpec,
    /// Whether the policy reads an action mask (the partition envs; CartPole's is constant).
    masked: bool,
    scenario: Option<std::sync::Arc<Scenario>>,
    config_name: String,
}

impl EnvDescription {
    /// Rebuilt from the checkpoint's own resolved config, so the sidecar describes the
    /// environment the policy was trained in; the observation fingerprint must match.
    fn of_checkpoint(files: &CheckpointFiles, dir: &Path) -> Result<Self> {
        let cfg = config::parse(&files.config_toml, &dir.join(CONFIG_FILE))?;
        let (spec, masked) = match &cfg.config.env {
            EnvSection::Cartpole => (CartPole::new().spec().clone(), false),
            EnvSection::Als(als) => (splitwise_env::als::als_spec(als), false),
            EnvSection::Partition { .. } => {
                let scenario = cfg.scenario.clone().context("a partition config resolves its scenario")?;
                (PartitionEnv::new(scenario).spec().clone(), true)
            }
        };
        let m = &files.metadata;
        if spec.observation.fingerprint() != m.observation_fingerprint {
            bail!(
                "checkpoint {}: observation layout {} ({}) differs from this build's {} ({}); \
                 export it with the splitwise version that trained it ({})",
                dir.display(),
                m.observation_layout,
                m.observation_fingerprint,
                spec.observation.layout,
                spec.observation.fingerprint(),
                m.splitwise_version
            );
        }
        Ok(Self { spec, masked, scenario: cfg.scenario.clone(), config_name: cfg.config.name.clone() })
    }
}

// ----- the sidecar ----------------------------------------------------------------------------

/// Everything a caller needs besides the graphs (serialised as `<out>.json`).
#[derive(Debug, Serialize)]
pub struct Sidecar {
    pub sidecar_version: u32,
    pub producer: String,
    pub format: OutputFormat,
    pub onnx_opset: i64,
    pub identity: Identity,
    pub observation: ObservationDoc,
    pub action: ActionDoc,
    /// The graphs, in the order a caller runs them.
    pub levels: Vec<LevelDoc>,
    /// How to compute one decision, step by step.
    pub chain: Vec<String>,
    /// A hierarchy trained to hold its high choice for this many slots (`agent.k_high > 1`):
    /// the graphs are stateless, so the caller holds it (the `chain` says how). Absent for 1.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub high_hold_slots: Option<usize>,
}

#[derive(Debug, Serialize)]
pub struct Identity {
    pub model: ModelIdentity,
    pub scenario: ScenarioIdentity,
    pub checkpoint: CheckpointIdentity,
}

#[derive(Debug, Serialize)]
pub struct ModelIdentity {
    pub agent_kind: String,
    /// Per level: `obs (+ context) → hidden… → Σ nvec` tanh MLP.
    pub networks: Vec<NetworkDoc>,
    /// CRC-32C of the weights' tensor contents (the checkpoint's `weights_content_crc32c`):
    /// identifies the weights the graphs embed, equal for equal weights (the bytes of
    /// `agent/weights.bpk` are not: burn writes random parameter ids into them).
    pub weights_crc32c: String,
}

#[derive(Debug, Serialize)]
pub struct NetworkDoc {
    pub role: String,
    pub input_width: usize,
    pub hidden: Vec<usize>,
    pub activation: String,
    pub output_width: usize,
    pub parameters: usize,
}

#[derive(Debug, Serialize)]
pub struct ScenarioIdentity {
    pub env_id: String,
    pub training_config: String,
    /// Scenario name and presets (partition envs).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scenario: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub llm: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub edge_device: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cloud_device: Option<serde_json::Value>,
    /// CRC-32C of the checkpoint's resolved `config.toml` (scenario inlined): identifies the
    /// exact environment and training settings.
    pub config_crc32c: String,
}

#[derive(Debug, Serialize)]
pub struct CheckpointIdentity {
    pub path: String,
    pub run_name: String,
    pub seed: u64,
    pub step: u64,
    pub updates: u64,
    pub written_unix_s: u64,
    pub eval_return: Option<f64>,
    pub splitwise_version: String,
}

#[derive(Debug, Serialize)]
pub struct ObservationDoc {
    pub layout: String,
    pub fingerprint: String,
    pub fingerprint_covers: String,
    pub dim: usize,
    pub dtype: String,
    /// In graph-input order.
    pub features: Vec<FeatureDoc>,
    /// Numbers the feature formulas refer to (partition envs).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub constants: BTreeMap<String, f64>,
    /// How the moving averages and the history window are kept (partition envs).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub estimators: Vec<String>,
    pub normalization: NormalizationDoc,
}

#[derive(Debug, Serialize)]
pub struct FeatureDoc {
    pub index: usize,
    pub name: String,
    pub unit: String,
    pub low: f32,
    pub high: f32,
    pub computed_as: String,
}

#[derive(Debug, Serialize)]
pub struct NormalizationDoc {
    /// Whether the graphs normalise themselves (the caller feeds raw features either way).
    pub in_graph: bool,
    pub formula: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub clip: Option<f64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub mean: Vec<f64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub std: Vec<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub samples: Option<f64>,
}

#[derive(Debug, Serialize)]
pub struct ActionDoc {
    pub n_components: usize,
    pub mask_len: usize,
    pub components: Vec<ComponentDoc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mask: Option<MaskDoc>,
    /// Masks that depend on earlier choices (the hierarchical partition env).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub autoregressive: Option<AutoregressiveDoc>,
}

#[derive(Debug, Serialize)]
pub struct ComponentDoc {
    pub index: usize,
    pub name: String,
    pub n_values: usize,
    /// First column of this component in `logits`, `probs` and `action_mask`.
    pub offset: usize,
    pub values: String,
}

#[derive(Debug, Serialize)]
pub struct MaskDoc {
    pub input: String,
    pub dtype: String,
    pub encoding: String,
    pub layout: String,
    pub requirement: String,
    pub masked_logit: f32,
    pub masked_prob: f32,
}

#[derive(Debug, Serialize)]
pub struct AutoregressiveDoc {
    /// Components whose block of the observation's mask is exact.
    pub exact_in_observation_mask: Vec<usize>,
    /// Components whose exact mask depends on the values chosen before them.
    pub conditional: Vec<usize>,
    pub procedure: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct LevelDoc {
    pub role: String,
    pub file: String,
    pub bytes: usize,
    pub crc32c: String,
    /// The action components this graph decides.
    pub components: Vec<usize>,
    /// Roles whose chosen actions feed this level's `context` input (none for a flat policy).
    pub conditioned_on: Vec<String>,
    pub inputs: Vec<IoDoc>,
    pub outputs: Vec<IoDoc>,
}

#[derive(Debug, Serialize)]
pub struct IoDoc {
    pub position: usize,
    pub name: String,
    pub dtype: String,
    pub shape: Vec<Dim>,
    pub meaning: String,
}

fn crc_hex(bytes: &[u8]) -> String {
    format!("{:08x}", crc32c::crc32c(bytes))
}

impl Sidecar {
    // Each argument is a distinct source the sidecar describes; a struct would only rename them.
    #[allow(clippy::too_many_arguments)]
    fn new(
        files: &CheckpointFiles,
        dir: &Path,
        env: &EnvDescription,
        levels: &[PolicyLevel],
        exported: &[ExportedLevel],
        paths: &[PathBuf],
        format: OutputFormat,
        weights_crc32c: String,
        high_hold: Option<usize>,
    ) -> Result<Self> {
        let m = &files.metadata;
        let sc = env.scenario.as_deref();
        let preset = |v: Result<serde_json::Value, serde_json::Error>| v.ok();
        let identity = Identity {
            model: ModelIdentity {
                agent_kind: m.agent_kind.clone(),
                networks: levels
                    .iter()
                    .map(|l| NetworkDoc {
                        role: l.role.clone(),
                        input_width: l.obs_dim + l.context_dim,
                        hidden: l.hidden_widths(),
                        activation: "tanh".into(),
                        output_width: l.n_logits(),
                        parameters: l.n_parameters(),
                    })
                    .collect(),
                weights_crc32c,
            },
            scenario: ScenarioIdentity {
                env_id: env.spec.id.clone(),
                training_config: env.config_name.clone(),
                scenario: sc.map(|s| s.config.name.clone()),
                llm: sc.and_then(|s| preset(serde_json::to_value(s.config.model.preset))),
                edge_device: sc.and_then(|s| preset(serde_json::to_value(s.config.edge.preset))),
                cloud_device: sc.and_then(|s| preset(serde_json::to_value(s.config.cloud.preset))),
                config_crc32c: crc_hex(files.config_toml.as_bytes()),
            },
            checkpoint: CheckpointIdentity {
                path: dir.display().to_string(),
                run_name: m.run_name.clone(),
                seed: m.seed,
                step: m.step,
                updates: m.updates,
                written_unix_s: m.written_unix_s,
                eval_return: m.eval_return,
                splitwise_version: m.splitwise_version.clone(),
            },
        };
        let level_docs = exported
            .iter()
            .zip(paths)
            .map(|(e, path)| LevelDoc {
                role: e.role.clone(),
                file: file_name(path),
                bytes: e.onnx.len(),
                crc32c: crc_hex(&e.onnx),
                components: e.components.clone(),
                conditioned_on: e.context_from.clone(),
                inputs: e.inputs.iter().enumerate().map(|(i, t)| io_doc(i, t, e)).collect(),
                outputs: e.outputs.iter().enumerate().map(|(i, t)| io_doc(i, t, e)).collect(),
            })
            .collect();
        Ok(Self {
            sidecar_version: SIDECAR_VERSION,
            producer: format!("splitwise {}", env!("CARGO_PKG_VERSION")),
            format,
            onnx_opset: ONNX_OPSET,
            identity,
            observation: observation_doc(env, levels),
            action: action_doc(env, format),
            levels: level_docs,
            chain: chain(env, exported, paths, format, high_hold),
            high_hold_slots: high_hold,
        })
    }
}

fn io_doc(position: usize, t: &TensorSpec, level: &ExportedLevel) -> IoDoc {
    let width = match t.shape.get(1) {
        Some(Dim::Fixed(w)) => *w,
        _ => 0,
    };
    let components = format!("components {:?}", level.components);
    let meaning = match t.name.as_str() {
        OBSERVATION_INPUT => format!(
            "raw observation features in `observation.features` order ({width} per row), each within its \
             [low, high]; the graph applies the normalisation itself"
        ),
        MASK_INPUT => format!(
            "1.0 = legal, 0.0 = illegal, {width} columns: the blocks of {components} concatenated in \
             component order (`action.components[].offset`); at least one legal value per component"
        ),
        CONTEXT_INPUT => format!(
            "{width} columns: one-hot of the values chosen by the levels {:?} (per component, 1.0 at the \
             chosen value), concatenated in that order",
            level.context_from
        ),
        "logits" => format!(
            "unnormalised log-probabilities of {components}, blocks concatenated; masked values exactly \
             {MASKED_LOGIT:e}"
        ),
        "probs" => format!(
            "probabilities of {components}: a softmax within each component's block (each block sums to \
             1); masked values exactly 0"
        ),
        "action" => format!(
            "value index of each of {components} (`action.components`): the most probable legal value, \
             ties to the lowest index"
        ),
        other => format!("`{other}`"),
    };
    IoDoc { position, name: t.name.clone(), dtype: t.dtype.clone(), shape: t.shape.clone(), meaning }
}

fn observation_doc(env: &EnvDescription, levels: &[PolicyLevel]) -> ObservationDoc {
    let obs = &env.spec.observation;
    let features = obs
        .features
        .iter()
        .enumerate()
        .map(|(index, f)| FeatureDoc {
            index,
            name: f.name.clone(),
            unit: f.unit.clone(),
            low: f.low,
            high: f.high,
            computed_as: f.description.clone(),
        })
        .collect();
    let mut constants = BTreeMap::new();
    let mut estimators = Vec::new();
    if let Some(sc) = env.scenario.as_deref() {
        let c = &sc.config;
        for (k, v) in [
            ("queue_capacity", c.workload.queue_capacity as f64),
            ("ewma_alpha", c.observation.ewma_alpha),
            ("history_slots", f64::from(c.observation.history)),
            ("slot_s", c.serving.slot_s),
            ("reward_scale_energy_j", c.reward.scales.energy_j),
            ("reward_scale_accuracy", c.reward.scales.accuracy),
            ("reward_scale_latency_s", c.reward.scales.latency_s),
            ("arrival_peak_rate_per_s", sc.arrivals.max_rate_per_s()),
            ("n_layers", f64::from(sc.n_layers())),
            ("n_heads", f64::from(sc.n_heads())),
        ] {
            constants.insert(k.to_string(), v);
        }
        if let Some(w) = c.reward.energy_budget_w {
            constants.insert("reward_energy_budget_w".into(), w);
        }
        if let Some(a) = c.reward.accuracy_budget {
            constants.insert("reward_accuracy_budget".into(), a);
        }
        let view = splitwise_env::public::mean_view(sc);
        let mean = view.conditions;
        for (k, v) in [
            ("prior_rate_bps", mean.up_rate_bps),
            ("prior_snr_db", c.link.snr.mean_db),
            ("prior_nakagami_m", sc.link.nakagami_m()),
            ("prior_arrival_rate_per_s", sc.arrivals.mean_rate_per_s()),
            ("prior_cloud_load", mean.cloud_load),
            ("prior_rtt_s", 2.0 * mean.one_way_s),
            ("prior_cloud_ttft_s", 2.0 * mean.one_way_s + view.cloud_admission_wait_s),
            ("prior_time_since_failure_s", 9999.0),
        ] {
            constants.insert(k.to_string(), v);
        }
        estimators = vec![
            "Features are computed at the decision, after the previous slot ended; `last` means the slot \
             that just ended. At an episode's start every estimate holds its prior (`constants.prior_*`, \
             the scenario's long-run means): backlog and queues 0, rates, SNR, load and latency at their \
             means."
                .into(),
            "Moving averages (ewma): m ← (1 − ewma_alpha)·m + ewma_alpha·x once per slot, x being that \
             slot's measurement, from m = the prior."
                .into(),
            "Moving variance of the link rate r (bit/s): v ← (1 − ewma_alpha)·(v + ewma_alpha·(r − m_prev)²) \
             once per slot from v = 0, m_prev the rate ewma before this slot's update."
                .into(),
            "History window: history_*_t-k is the slot measurement k slots ago (t-1 = the slot that just \
             ended), history_slots values per quantity, oldest (t-history_slots) first in the layout; \
             slots before the episode began hold the priors (backlog 0)."
                .into(),
            "log10(Mbit/s) features: clamp(log10(rate_bps) − 6, −3, 4).".into(),
            "Probe: at the end of every slot the device sends a keep-alive probe (one small crossing \
             and a 1-token request to the cloud API, e.g. a health check); link_connected is the \
             modem's service indicator, probe_failed_last and cloud_rejected_last its outcome, and \
             cloud_ttft_last its time to first token (held while probes fail or are rejected)."
                .into(),
        ];
    }
    // One normaliser per level; a flat policy has one.
    let normalizer = levels.first().and_then(|l| l.normalizer.as_ref());
    let normalization = match normalizer {
        Some(n) => NormalizationDoc {
            in_graph: true,
            formula: format!(
                "inside the graph: z = clip((x − mean) / std, −clip, clip) per feature, std = √(var + \
                 {NORMALIZE_EPSILON:e}); the statistics below are the checkpoint's, for reference only"
            ),
            clip: Some(n.clip),
            mean: n.stats.mean.clone(),
            std: n.stats.var.iter().map(|v| (v + NORMALIZE_EPSILON).sqrt()).collect(),
            samples: Some(n.stats.count),
        },
        None => NormalizationDoc {
            in_graph: false,
            formula: "none: the policy reads raw features".into(),
            clip: None,
            mean: Vec::new(),
            std: Vec::new(),
            samples: None,
        },
    };
    ObservationDoc {
        layout: obs.layout.clone(),
        fingerprint: obs.fingerprint(),
        fingerprint_covers: "FNV-1a 64 over the layout name and every feature's name, unit and bounds".into(),
        dim: obs.dim(),
        dtype: "float32".into(),
        features,
        constants,
        estimators,
        normalization,
    }
}

/// What the values of each action component mean.
fn component_values(env: &EnvDescription, name: &str, n: usize) -> String {
    let Some(sc) = env.scenario.as_deref() else {
        return match (env.spec.id.as_str(), name) {
            ("CartPole-v1", _) => "0 = push the cart left, 1 = push it right".into(),
            (splitwise_env::als::ALS_ID, _) => "v ∈ 0..10: split after decoder layer v + 1".into(),
            _ => format!("0..{n}"),
        };
    };
    let window = sc.config.actions.window_layers.min(sc.n_layers());
    let bits = |p: &[Precision]| p.iter().map(|p| p.bits().to_string()).collect::<Vec<_>>().join(", ");
    match (sc.config.actions.mode, name) {
        (ActionMode::LayerSplit, _) => format!(
            "s ∈ 0..={}: the first s layers run on the edge, the rest in the cloud, at {} bits across the link",
            sc.n_layers(),
            sc.layer_split_precision.bits()
        ),
        (ActionMode::Hierarchical, "split_layer") => format!(
            "s ∈ 0..={}: layers before the low-level window run on the edge, layers after it in the cloud; \
             the window's {window} layers start at clamp(s − {}, 0, {})",
            sc.n_layers(),
            window / 2,
            sc.n_layers() - window
        ),
        (ActionMode::Hierarchical, "precision") => {
            format!("index into ({}) bits: precision of every tensor that crosses the link", bits(&Precision::ALL))
        }
        (ActionMode::Hierarchical, n) if n.ends_with("_edge_heads") => format!(
            "v·{} attention heads of this window layer on the edge (of {})",
            sc.config.actions.head_step,
            sc.n_heads()
        ),
        (ActionMode::Hierarchical, n) if n.ends_with("_ffn") => {
            "FFN of this window layer: 0 = cloud, 1 = split (first projection(s) on the edge, down \
             projection in the cloud), 2 = edge"
                .into()
        }
        _ => format!("0..{n}"),
    }
}

fn action_doc(env: &EnvDescription, format: OutputFormat) -> ActionDoc {
    let a = &env.spec.action;
    let components = a
        .names
        .iter()
        .zip(&a.nvec)
        .enumerate()
        .map(|(index, (name, &n))| ComponentDoc {
            index,
            name: name.clone(),
            n_values: n,
            offset: a.mask_offset(index),
            values: component_values(env, name, n),
        })
        .collect();
    let mask = env.masked.then(|| MaskDoc {
        input: MASK_INPUT.into(),
        dtype: "float32".into(),
        encoding: "1.0 = legal, 0.0 = illegal; no other values".into(),
        layout: "one column per value of every component, components in order (`components[].offset`)".into(),
        requirement: "at least one legal value per component (otherwise that component's output is \
                      meaningless: logits all masked, probabilities uniform)"
            .into(),
        masked_logit: MASKED_LOGIT,
        masked_prob: 0.0,
    });
    let hierarchical = env.scenario.as_deref().is_some_and(|s| s.config.actions.mode == ActionMode::Hierarchical);
    let autoregressive = hierarchical.then(|| {
        let k = a.n_components();
        let run = match format {
            OutputFormat::Action => {
                "With `action`: run the graph once per conditional component c, with block c of \
                 `action_mask` replaced by its conditional mask, and read component c of the output (the \
                 first run, on the observation's mask, gives components 0 and 1)."
            }
            OutputFormat::Probs => {
                "With `probs`: run the graph once per conditional component c with block c of \
                 `action_mask` replaced by its conditional mask, and read block c (a distribution over \
                 the legal values given the earlier choices)."
            }
            OutputFormat::Logits => {
                "With `logits`: one run suffices (logits do not depend on earlier choices): for each \
                 component c in order, take the legal value of block c with the largest logit under its \
                 conditional mask (ties: lowest index), or sample from the softmax over those values."
            }
        };
        AutoregressiveDoc {
            exact_in_observation_mask: vec![0, 1],
            conditional: (2..k).collect(),
            procedure: vec![
                "Edge memory couples the window layers: the observation's mask is exact for split_layer \
                 and precision but marks every window value legal. The exact mask of component c \
                 depends on the values chosen for components 0..c-1 (splitwise-env \
                 `Env::conditional_mask`, system-model §9): a value is legal when the window's weights, \
                 KV cache and workspace fit the edge memory available in the next slot."
                    .into(),
                "Pick components in order 0, 1, …, K-1: pick c under its exact mask given the picks before it. \
                 This is how the policy acted in training and evaluation."
                    .into(),
                run.into(),
                format!(
                    "Without conditional masks, a plan that does not fit is {} by the environment.",
                    match env.scenario.as_deref().map(|s| s.config.actions.infeasible) {
                        Some(splitwise_env::scenario::InfeasibleAction::Repair) =>
                            "repaired deterministically (nearest allowed values, `PartitionEnv::repair`)",
                        _ => "rejected",
                    }
                ),
            ],
        }
    });
    ActionDoc { n_components: a.n_components(), mask_len: a.mask_len(), components, mask, autoregressive }
}

/// `high_hold`: the slots a hierarchy holds its high choice for (`agent.k_high > 1`), said before
/// the step that runs the high level.
fn chain(
    env: &EnvDescription,
    exported: &[ExportedLevel],
    paths: &[PathBuf],
    format: OutputFormat,
    high_hold: Option<usize>,
) -> Vec<String> {
    let batch = BATCH_AXIS;
    let mut steps = vec![format!(
        "Build `observation` [{batch}, {}] float32 from raw measurements as `observation.features` describe \
         (order matters; the graph normalises).",
        env.spec.observation.dim()
    )];
    if env.masked {
        steps.push(format!(
            "Build `action_mask` [{batch}, {}] float32 (see `action.mask`{}).",
            env.spec.action.mask_len(),
            if env.scenario.as_deref().is_some_and(|s| s.config.actions.mode == ActionMode::Hierarchical) {
                " and `action.autoregressive`"
            } else {
                ""
            }
        ));
    }
    for (e, path) in exported.iter().zip(paths) {
        if e.context_dim > 0 {
            steps.push(format!(
                "Build the `{}` level's `context` [{batch}, {}]: the one-hot of the values chosen by {:?} \
                 (per component, 1.0 at the chosen value's column), concatenated in that order.",
                e.role, e.context_dim, e.context_from
            ));
        }
        if let Some(k) = high_hold.filter(|_| e.role == "high") {
            steps.push(format!(
                "Hold the `high` level's choice for {k} slots, as the policy was trained (agent.k_high): run its \
                 graph at an episode's first slot, {k} slots after its last decision, and whenever the masks no \
                 longer allow the held values (or leave the next level no legal value); at every other slot reuse \
                 the held values as its output. The `low` level runs every slot."
            ));
        }
        let inputs: Vec<&str> = e.inputs.iter().map(|t| t.name.as_str()).collect();
        steps.push(format!(
            "Run {} (`{}` level, inputs by name or position: {}) → `{}` for components {:?}{}.",
            file_name(path),
            e.role,
            inputs.join(", "),
            format.output_name(),
            e.components,
            if env.masked && exported.len() > 1 {
                "; its `action_mask` holds those components' columns only"
            } else {
                ""
            }
        ));
    }
    steps
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_level_writes_out_and_several_write_one_file_per_role() {
        let level = |role: &str| PolicyLevel::random(role, 3, 0, &[2], &[4], 1.0, 0);
        let out = Path::new("exports/policy.onnx");
        assert_eq!(level_paths(out, &[level("policy")]).unwrap(), vec![out.to_path_buf()]);
        assert_eq!(
            level_paths(out, &[level("high"), level("low")]).unwrap(),
            vec![PathBuf::from("exports/policy.high.onnx"), PathBuf::from("exports/policy.low.onnx")]
        );
        assert_eq!(sidecar_path(out).unwrap(), PathBuf::from("exports/policy.onnx.json"));
        let e = level_paths(Path::new("/"), &[level("policy")]).unwrap_err().to_string();
        assert!(e.contains("--out"), "{e}");
    }

    #[test]
    fn atomic_write_replaces_the_file_whole_and_leaves_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nested/policy.onnx");
        write_atomically(&path, b"first").unwrap();
        write_atomically(&path, b"second, longer").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"second, longer");
        let names: Vec<String> = fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into())
            .collect();
        assert_eq!(names, ["policy.onnx"]);
    }
}
