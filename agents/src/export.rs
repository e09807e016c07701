//! ONNX export of trained policies with burn-onnx 0.22 (feature `export`): one graph per network
//! of a policy (a *level*), each taking raw observations (the checkpoint's normalisation baked
//! in), the action mask where the policy is masked and, for a level of a hierarchy that
//! conditions on choices made upstream, a context input; each returns logits, per-component
//! probabilities or the deterministic action, with a dynamic batch axis. No file IO: callers get
//! bytes and descriptions.
//!
//! A flat learner (PPO) is one level (`policy`). A hierarchy is a `Vec` of levels run in order;
//! each level picks the action components it owns, and a lower level reads the levels above it
//! through its `context` input (the caller's chain, documented in the app's sidecar).
//!
//! burn-onnx 0.22 lowers a subset of burn's operations (its `export/lower/{numeric,base,direct,
//! module}.rs`): not `softmax`, `log_softmax`, `clamp`, `mask_fill`/`mask_where`, comparisons or
//! `max_dim`, and it refuses to slice a dynamic axis (so no `narrow` per action component). The
//! graph is therefore written from operations that do lower, each chosen to be exact:
//! - masking: `logits·m + (m − 1)·1e8` for a 0/1 float mask `m`: a legal logit passes unchanged
//!   (`x·1 + 0`), a masked one becomes exactly −1e8 (`x·0 − 1e8`), the training constant
//!   [`MASKED_LOGIT`];
//! - the observation normalisation `clip((x − μ)/σ, ±c)` is not captured: the only exact clamp
//!   that lowers (max/min as a top-1 over a pair axis) costs ~33 µs per decision in tract, so it
//!   is written into the ONNX graph after export as `Sub`, `Div` and `Clip` — the same f32
//!   operations as burn's forward ([`Normalization`], kept for the host path);
//! - per-component softmax and argmax: each component's columns gathered (ONNX Gather, no
//!   slice), its max by top-1 (TopK) and its ArgMax (first index on ties, as
//!   [`crate::distribution::greedy_masked`]); probabilities as `exp(x − max)` over the
//!   per-component sums (one matmul with a 0/1 component matrix) — the max/exp/sum form that
//!   lowers;
//! - tanh: burn's `tanh` op, one ONNX `Tanh` per layer ([`Actor::forward_exact`]).
//!
//! Two limits of burn-onnx 0.22 are handled after export, on the ONNX protobuf: it names graph
//! inputs and outputs after capture ids (`tensor_28`), and its shape resolver refuses a reshape
//! when two inputs carry a dynamic batch axis ("matches 2 dynamic source axes and is
//! ambiguous"). A graph is therefore captured with one packed input, split inside by Gather;
//! after export the packed input is replaced by the named inputs [`OBSERVATION_INPUT`],
//! [`MASK_INPUT`], [`CONTEXT_INPUT`] joined by one `Concat`, the output gets the format's name,
//! and caller-given identity is written into the model's `metadata_props`.

use crate::distribution::MASKED_LOGIT;
use crate::network::{Actor, Mlp};
use crate::normalize::{NORMALIZE_EPSILON, ObsNormalizer};
use crate::ppo::Ppo;
use burn::module::{Module, Param, ParamId};
use burn::tensor::{Device, Int, Tensor, TensorData};
use burn_onnx::export::{AxisSpec, InputSpec, OnnxExporter, Opset};
use onnx_ir::{AttributeProto, AttributeType, Message, ModelProto, NodeProto, TensorProto};
use serde::{Deserialize, Serialize};
use splitwise_env::rng::{Stream, item_rng};

/// Name of the dynamic batch axis in every exported graph.
pub const BATCH_AXIS: &str = "batch";
/// Graph input names after export.
pub const OBSERVATION_INPUT: &str = "observation";
pub const MASK_INPUT: &str = "action_mask";
pub const CONTEXT_INPUT: &str = "context";
/// The role of the single level of a flat policy.
pub const FLAT_ROLE: &str = "policy";
/// Batch sizes of the two captures that mark the batch axis dynamic (burn-onnx needs them to
/// differ; neither is 1, which could pass for a broadcast axis).
const SAMPLE_BATCH: usize = 2;
const VALIDATION_BATCH: usize = 3;

/// What an exported graph returns.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OutputFormat {
    /// `[batch, Σ nvec]` float32 logits, masked ones exactly [`MASKED_LOGIT`].
    Logits,
    /// `[batch, Σ nvec]` float32 probabilities, a softmax per component; masked values exactly 0.
    Probs,
    /// `[batch, n_components]` int64 value indices: the most probable legal value per component.
    Action,
}

impl OutputFormat {
    pub const ALL: [OutputFormat; 3] = [OutputFormat::Logits, OutputFormat::Probs, OutputFormat::Action];

    /// The graph output's name.
    pub fn output_name(self) -> &'static str {
        match self {
            OutputFormat::Logits => "logits",
            OutputFormat::Probs => "probs",
            OutputFormat::Action => "action",
        }
    }
}

/// One network of a policy with everything its graph needs, and nothing else (an exported module
/// embeds every parameter it holds, used or not).
#[derive(Clone, Debug)]
pub struct PolicyLevel {
    /// `policy` for a flat learner; e.g. `high` / `low` in a hierarchy (file and sidecar names).
    pub role: String,
    /// The environment's action components this level picks, ascending.
    pub components: Vec<usize>,
    /// Values per picked component (`nvec` of those components).
    pub nvec: Vec<usize>,
    pub obs_dim: usize,
    /// Width of the `context` input concatenated after the normalised observation (0: none).
    pub context_dim: usize,
    /// Roles of earlier levels whose chosen values, one-hot per component and concatenated in
    /// the order listed, form this level's `context` (`context_dim` = the sum of their
    /// `Σ nvec`); empty for a flat policy.
    pub context_from: Vec<String>,
    /// `None` when the policy reads raw observations.
    pub normalizer: Option<ObsNormalizer>,
    pub actor: Actor,
}

impl PolicyLevel {
    /// The single level of a PPO learner: its actor and observation normaliser.
    pub fn of_ppo(ppo: &Ppo) -> Self {
        let shape = ppo.shape();
        Self {
            role: FLAT_ROLE.to_string(),
            components: (0..shape.n_components()).collect(),
            nvec: shape.nvec.clone(),
            obs_dim: shape.obs_dim,
            context_dim: 0,
            context_from: Vec::new(),
            normalizer: ppo.obs_normalizer().cloned(),
            actor: ppo.actor().clone(),
        }
    }

    /// A level with freshly drawn orthogonal weights (hidden gain √2, head gain `head_gain`) and
    /// no normaliser, picking components `0..nvec.len()`: exercises the export path without a
    /// trained checkpoint (tests, benchmarks, a hierarchy's levels before it trains).
    pub fn random(
        role: &str,
        obs_dim: usize,
        context_dim: usize,
        nvec: &[usize],
        hidden: &[usize],
        head_gain: f64,
        seed: u64,
    ) -> Self {
        let mut rng = item_rng(seed, Stream::Policy, 0);
        let n_logits = nvec.iter().sum();
        let net = Mlp::new(obs_dim + context_dim, hidden, n_logits, head_gain, &mut rng, &Device::flex());
        let mut actor = Actor::new(net, context_dim, n_logits, &Device::flex());
        // A trained low level's context skip is not zero: draw it too (U(−1, 1)), after the MLP.
        if let Some(skip) = actor.context_skip.as_mut() {
            use rand::RngExt;
            let w: Vec<f32> = (0..context_dim * n_logits).map(|_| rng.random_range(-1.0f32..1.0)).collect();
            skip.weight = Param::from_data(TensorData::new(w, [context_dim, n_logits]), &Device::flex());
        }
        Self {
            role: role.to_string(),
            components: (0..nvec.len()).collect(),
            nvec: nvec.to_vec(),
            obs_dim,
            context_dim,
            context_from: Vec::new(),
            normalizer: None,
            actor,
        }
    }

    pub fn n_logits(&self) -> usize {
        self.nvec.iter().sum()
    }

    /// Widths of the actor's hidden layers.
    pub fn hidden_widths(&self) -> Vec<usize> {
        self.actor.net.hidden.iter().map(|l| l.weight.dims()[1]).collect()
    }

    /// Scalars in the actor (weights and biases).
    pub fn n_parameters(&self) -> usize {
        self.actor.num_params()
    }
}

/// `clip((x − μ)/σ, ±c)` with σ = √(var + ε), the normaliser's statistics as constants.
#[derive(Module, Debug)]
pub struct Normalization {
    /// `[1, obs_dim]`.
    pub mean: Param<Tensor<2>>,
    /// `[1, obs_dim]`.
    pub std: Param<Tensor<2>>,
    /// `[1, 1, 2]` = (1, 0): keeps a value in the first slot of a pair, zeroes the second.
    pub keep: Param<Tensor<3>>,
    /// `[1, 1, 2]` = (0, −c) and (0, c): the clip bounds in the second slot.
    pub low: Param<Tensor<3>>,
    pub high: Param<Tensor<3>>,
}

/// The normaliser as f32 constants: μ, σ = √(var + ε) (in f64, rounded once, as
/// `ObsNormalizer::normalize_into` divides by it) and the clip c.
fn normalization_constants(normalizer: &ObsNormalizer) -> (Vec<f32>, Vec<f32>, f32) {
    let mean = normalizer.stats.mean.iter().map(|&m| m as f32).collect();
    let std = normalizer.stats.var.iter().map(|&v| (v + NORMALIZE_EPSILON).sqrt() as f32).collect();
    (mean, std, normalizer.clip as f32)
}

impl Normalization {
    fn new(normalizer: &ObsNormalizer, device: &Device) -> Self {
        let dim = normalizer.stats.dim();
        let row = |values: Vec<f32>| Param::from_data(TensorData::new(values, [1, dim]), device);
        let pair = |a: f32, b: f32| Param::from_data(TensorData::new(vec![a, b], [1, 1, 2]), device);
        let (mean, std, clip) = normalization_constants(normalizer);
        Self { mean: row(mean), std: row(std), keep: pair(1.0, 0.0), low: pair(0.0, -clip), high: pair(0.0, clip) }
    }

    fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        let [batch, dim] = x.dims();
        let z = (x - self.mean.val()).div(self.std.val()).reshape([batch, dim, 1]);
        let (z, _) = (z * self.keep.val() + self.low.val()).max_dim_with_indices(2);
        let (z, _) = (z * self.keep.val() + self.high.val()).min_dim_with_indices(2);
        z.reshape([batch, dim])
    }
}

/// The `Σ nvec` logit columns grouped by action component, for per-component softmax and argmax
/// without reshapes (burn-onnx 0.22 cannot resolve a reshape that splits one axis into two under
/// a dynamic batch: "multiple element-count-derived dimensions remain").
#[derive(Module, Debug)]
pub struct ComponentLayout {
    /// Per component, its columns (empty for a single component: the whole row).
    pub columns: Vec<Param<Tensor<1, Int>>>,
    /// `[Σ nvec]` component of each column (probabilities of several components).
    pub component_of_column: Option<Param<Tensor<1, Int>>>,
    /// `[Σ nvec, K]` one-hot of each column's component: a row's per-component sums as one
    /// matmul (probabilities of several components).
    pub segment_sum: Option<Param<Tensor<2>>>,
}

impl ComponentLayout {
    fn new(nvec: &[usize], with_probs: bool, device: &Device) -> Self {
        let (k, m) = (nvec.len(), nvec.iter().sum::<usize>());
        let mut columns = Vec::new();
        let mut component_of_column = Vec::with_capacity(m);
        let mut segment_sum = vec![0.0f32; m * k];
        let mut offset = 0;
        for (c, &n) in nvec.iter().enumerate() {
            if k > 1 {
                columns.push(index_param(offset..offset + n, device));
            }
            for j in offset..offset + n {
                component_of_column.push(c as i64);
                segment_sum[j * k + c] = 1.0;
            }
            offset += n;
        }
        let several = with_probs && k > 1;
        Self {
            columns,
            component_of_column: several.then(|| {
                Param::initialized(
                    ParamId::new(),
                    Tensor::<1, Int>::from_data(TensorData::new(component_of_column, [m]), device),
                )
            }),
            segment_sum: several.then(|| Param::from_data(TensorData::new(segment_sum, [m, k]), device)),
        }
    }

    /// Softmax within each component: max (top-1), exp, per-component sum, divide.
    fn probs(&self, logits: Tensor<2>) -> Tensor<2> {
        let (Some(component), Some(segment_sum)) = (&self.component_of_column, &self.segment_sum) else {
            let (max, _) = logits.clone().max_dim_with_indices(1);
            let e = (logits - max).exp();
            return e.clone().div(e.sum_dim(1));
        };
        let maxes = self.columns.iter().map(|c| logits.clone().select(1, c.val()).max_dim_with_indices(1).0);
        let column_max = Tensor::cat(maxes.collect(), 1).select(1, component.val());
        let e = (logits - column_max).exp();
        let sums = e.clone().matmul(segment_sum.val()).select(1, component.val());
        e.div(sums)
    }

    /// The first largest value of each component (ArgMax keeps the lowest index on ties).
    fn argmax(&self, logits: Tensor<2>) -> Tensor<2, Int> {
        if self.columns.is_empty() {
            return logits.argmax(1);
        }
        Tensor::cat(self.columns.iter().map(|c| logits.clone().select(1, c.val()).argmax(1)).collect(), 1)
    }
}

/// The computation of one exported graph, runnable in burn as well (the reference the exported
/// file is checked against).
///
/// It reads one packed input `[batch, obs_dim (+ Σ nvec if masked) (+ context_dim)]` and splits
/// it with Gather: burn-onnx 0.22 resolves a reshape's batch dimension from the graph inputs and
/// refuses it as ambiguous when two inputs carry a dynamic batch axis ("dimension matches 2
/// dynamic source axes"), even under the same symbol. After export the packed input is replaced
/// by the named inputs and one `Concat` (`finish_model`), so callers see
/// `observation`, `action_mask` and `context`.
#[derive(Module, Debug)]
pub struct PolicyGraph {
    /// Columns of the packed input: observation, mask, context (`None`: that part is absent, or
    /// is the whole input and needs no gather).
    pub obs_columns: Option<Param<Tensor<1, Int>>>,
    pub mask_columns: Option<Param<Tensor<1, Int>>>,
    pub context_columns: Option<Param<Tensor<1, Int>>>,
    pub normalization: Option<Normalization>,
    pub actor: Actor,
    /// Probabilities and actions only.
    pub layout: Option<ComponentLayout>,
    pub obs_dim: usize,
    pub n_logits: usize,
    pub context_dim: usize,
    pub masked: bool,
    #[module(skip)]
    pub format: OutputFormat,
}

/// What a graph computed, on the host.
#[derive(Clone, Debug, PartialEq)]
pub enum PolicyOutput {
    /// Logits or probabilities, `[batch, Σ nvec]` row-major.
    Values(Vec<f32>),
    /// Value indices, `[batch, n_components]` row-major.
    Actions(Vec<i64>),
}

fn index_param(range: std::ops::Range<usize>, device: &Device) -> Param<Tensor<1, Int>> {
    let values: Vec<i64> = range.map(|i| i as i64).collect();
    let len = values.len();
    Param::initialized(ParamId::new(), Tensor::<1, Int>::from_data(TensorData::new(values, [len]), device))
}

impl PolicyGraph {
    pub fn new(level: &PolicyLevel, format: OutputFormat, masked: bool, device: &Device) -> Self {
        assert_eq!(level.nvec.len(), level.components.len(), "level {}: one nvec entry per component", level.role);
        let (d, m, c) = (level.obs_dim, level.n_logits(), level.context_dim);
        let packed = masked || c > 0;
        let mask_end = if masked { d + m } else { d };
        Self {
            obs_columns: packed.then(|| index_param(0..d, device)),
            mask_columns: masked.then(|| index_param(d..d + m, device)),
            context_columns: (c > 0).then(|| index_param(mask_end..mask_end + c, device)),
            normalization: level.normalizer.as_ref().map(|n| Normalization::new(n, device)),
            actor: level.actor.clone().to_device(device),
            layout: (format != OutputFormat::Logits)
                .then(|| ComponentLayout::new(&level.nvec, format == OutputFormat::Probs, device)),
            obs_dim: d,
            n_logits: m,
            context_dim: c,
            masked,
            format,
        }
    }

    /// [`PolicyGraph::new`] on burn's flex CPU backend (where the learner acts).
    pub fn on_flex(level: &PolicyLevel, format: OutputFormat, masked: bool) -> Self {
        Self::new(level, format, masked, &Device::flex())
    }

    /// Input widths in graph order: observation, then the mask if masked, then the context.
    pub fn input_widths(&self) -> Vec<usize> {
        let mut widths = vec![self.obs_dim];
        if self.masked {
            widths.push(self.n_logits);
        }
        if self.context_dim > 0 {
            widths.push(self.context_dim);
        }
        widths
    }

    /// Input names in graph order (as renamed after export).
    pub fn input_names(&self) -> Vec<&'static str> {
        let mut names = vec![OBSERVATION_INPUT];
        if self.masked {
            names.push(MASK_INPUT);
        }
        if self.context_dim > 0 {
            names.push(CONTEXT_INPUT);
        }
        names
    }

    /// Logits after masking (`[batch, Σ nvec]`) from the packed input.
    fn masked_logits(&self, packed: Tensor<2>) -> Tensor<2> {
        let columns = |index: &Option<Param<Tensor<1, Int>>>| index.as_ref().map(|i| packed.clone().select(1, i.val()));
        let (mask, context) = (columns(&self.mask_columns), columns(&self.context_columns));
        let obs = columns(&self.obs_columns).unwrap_or_else(|| packed.clone());
        let mut x = match &self.normalization {
            Some(n) => n.forward(obs),
            None => obs,
        };
        if let Some(context) = &context {
            x = Tensor::cat(vec![x, context.clone()], 1);
        }
        let logits = self.actor.forward_exact(x, context);
        match mask {
            // x·m + (m − 1)·1e8: exact for m ∈ {0, 1} (module docs).
            Some(m) => logits * m.clone() + m.sub_scalar(1.0).mul_scalar(-MASKED_LOGIT),
            None => logits,
        }
    }

    /// The `logits` or `probs` output of a packed input.
    pub fn forward_values(&self, packed: Tensor<2>) -> Tensor<2> {
        let logits = self.masked_logits(packed);
        match (&self.layout, self.format) {
            (Some(layout), OutputFormat::Probs) => layout.probs(logits),
            _ => logits,
        }
    }

    /// The `action` output of a packed input.
    pub fn forward_action(&self, packed: Tensor<2>) -> Tensor<2, Int> {
        let layout = self.layout.as_ref().expect("an action graph has a component layout");
        layout.argmax(self.masked_logits(packed))
    }

    /// Runs the graph in burn on host rows (`inputs` in [`PolicyGraph::input_names`] order, each
    /// `batch × width` row-major), packed as the exported graph's `Concat` packs them.
    pub fn run(&self, batch: usize, inputs: &[&[f32]]) -> PolicyOutput {
        let widths = self.input_widths();
        assert_eq!(inputs.len(), widths.len(), "inputs: {:?}", self.input_names());
        let total: usize = widths.iter().sum();
        let mut packed = Vec::with_capacity(batch * total);
        for (values, &w) in inputs.iter().zip(&widths) {
            assert_eq!(values.len(), batch * w, "an input of width {w} needs {} values", batch * w);
        }
        for r in 0..batch {
            for (values, &w) in inputs.iter().zip(&widths) {
                packed.extend_from_slice(&values[r * w..(r + 1) * w]);
            }
        }
        let device = self.actor.net.head.weight.val().device();
        let x = Tensor::<2>::from_data(TensorData::new(packed, [batch, total]), &device);
        match self.format {
            OutputFormat::Action => PolicyOutput::Actions(
                self.forward_action(x).into_data().convert::<i64>().try_into_vec::<i64>().expect("int output"),
            ),
            _ => PolicyOutput::Values(self.forward_values(x).into_data().try_into_vec::<f32>().expect("f32 output")),
        }
    }

    /// A packed capture input: zero observations (and context) and an all-legal mask.
    fn capture_input(&self, batch: usize, device: &Device) -> Tensor<2> {
        let widths = self.input_widths();
        let mut row = vec![0.0f32; widths.iter().sum()];
        if self.masked {
            row[self.obs_dim..self.obs_dim + self.n_logits].fill(1.0);
        }
        let len = row.len();
        Tensor::<2>::from_data(TensorData::new(row.repeat(batch), [batch, len]), device)
    }
}

/// One tensor of a graph's signature, as the exported file declares it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TensorSpec {
    pub name: String,
    /// `float32`, `int64`, ...
    pub dtype: String,
    pub shape: Vec<Dim>,
}

/// One axis of a [`TensorSpec`]: the dynamic batch symbol or a fixed size.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum Dim {
    Symbol(String),
    Fixed(usize),
}

/// One exported graph.
#[derive(Clone, Debug)]
pub struct ExportedLevel {
    pub role: String,
    pub components: Vec<usize>,
    pub context_dim: usize,
    pub context_from: Vec<String>,
    /// The ONNX model (opset 18, weights embedded).
    pub onnx: Vec<u8>,
    pub inputs: Vec<TensorSpec>,
    pub outputs: Vec<TensorSpec>,
}

#[derive(Debug, thiserror::Error)]
pub enum PolicyExportError {
    #[error("burn-onnx cannot export the `{role}` graph: {source}")]
    Export {
        role: String,
        #[source]
        source: burn_onnx::export::ExportError,
    },
    #[error("the exported `{role}` graph: {detail}")]
    Model { role: String, detail: String },
    #[error("level `{role}` cannot be chained: {detail}")]
    Chain { role: String, detail: String },
}

/// Exports every level of a policy (see the module docs); `metadata` goes into each model's
/// `metadata_props`, followed by the level's `role` and `format`.
pub fn export_policy(
    levels: &[PolicyLevel],
    format: OutputFormat,
    masked: bool,
    metadata: &[(String, String)],
) -> Result<Vec<ExportedLevel>, PolicyExportError> {
    check_chain(levels)?;
    levels.iter().map(|level| export_level(level, format, masked, metadata)).collect()
}

/// Every level's `context_from` names earlier levels whose one-hot choices fill `context_dim`,
/// and roles are unique (they name files).
pub fn check_chain(levels: &[PolicyLevel]) -> Result<(), PolicyExportError> {
    for (i, level) in levels.iter().enumerate() {
        let error = |detail: String| PolicyExportError::Chain { role: level.role.clone(), detail };
        if levels[..i].iter().any(|l| l.role == level.role) {
            return Err(error("its role is used by an earlier level".into()));
        }
        let mut width = 0;
        for role in &level.context_from {
            let upstream = levels[..i]
                .iter()
                .find(|l| &l.role == role)
                .ok_or_else(|| error(format!("its context reads `{role}`, which is not an earlier level")))?;
            width += upstream.n_logits();
        }
        if width != level.context_dim {
            return Err(error(format!(
                "context_dim {} but the one-hot choices of {:?} are {width} wide",
                level.context_dim, level.context_from
            )));
        }
    }
    Ok(())
}

/// Exports one level.
pub fn export_level(
    level: &PolicyLevel,
    format: OutputFormat,
    masked: bool,
    metadata: &[(String, String)],
) -> Result<ExportedLevel, PolicyExportError> {
    let device = Device::flex();
    // The normalisation is not captured: it is written into the ONNX graph directly
    // (`finish_model`), where `Clip` is one fast, exact op; the only exact clamp burn-onnx
    // lowers (a top-1 over a pair axis) costs ~33 µs per decision in tract.
    let mut graph = PolicyGraph::new(level, format, masked, &device);
    graph.normalization = None;
    let sample = graph.capture_input(SAMPLE_BATCH, &device);
    let validation = graph.capture_input(VALIDATION_BATCH, &device);
    let specs = [InputSpec::new([AxisSpec::dynamic(BATCH_AXIS), AxisSpec::Static])];
    let exporter = OnnxExporter::new().opset(Opset::V18);
    let model = match format {
        OutputFormat::Action => {
            exporter.export_dynamic(&graph, sample, validation, &specs, PolicyGraph::forward_action)
        }
        OutputFormat::Logits | OutputFormat::Probs => {
            exporter.export_dynamic(&graph, sample, validation, &specs, PolicyGraph::forward_values)
        }
    }
    .map_err(|source| PolicyExportError::Export { role: level.role.clone(), source })?;
    let model_error = |detail: String| PolicyExportError::Model { role: level.role.clone(), detail };
    let mut props = metadata.to_vec();
    props.push(("role".into(), level.role.clone()));
    props.push(("format".into(), format.output_name().into()));
    let inputs: Vec<(&str, usize)> = graph.input_names().into_iter().zip(graph.input_widths()).collect();
    let normalization = level.normalizer.as_ref().map(normalization_constants);
    let onnx =
        finish_model(model.as_bytes(), &inputs, normalization, format.output_name(), &props).map_err(model_error)?;
    let (inputs, outputs) = signature(&onnx).map_err(model_error)?;
    Ok(ExportedLevel {
        role: level.role.clone(),
        components: level.components.clone(),
        context_dim: level.context_dim,
        context_from: level.context_from.clone(),
        onnx,
        inputs,
        outputs,
    })
}

/// Name of the normalised observation inside a graph.
const NORMALIZED_OBSERVATION: &str = "observation_normalized";

/// An f32 initializer.
fn initializer(name: &str, dims: &[i64], values: Vec<f32>) -> TensorProto {
    let mut t = TensorProto::new();
    t.name = name.to_string();
    t.dims = dims.to_vec();
    t.data_type = 1; // FLOAT
    t.float_data = values;
    t
}

fn node(name: &str, op_type: &str, inputs: &[&str], output: &str) -> NodeProto {
    let mut n = NodeProto::new();
    n.name = name.to_string();
    n.op_type = op_type.to_string();
    n.input = inputs.iter().map(|s| s.to_string()).collect();
    n.output = vec![output.to_string()];
    n
}

/// Gives the exported model its public signature: the packed input becomes the named inputs
/// joined by one `Concat` (axis 1) — or is just renamed when there is one — and the output is
/// renamed; with a normaliser `(μ, σ, c)` the observation first passes `Sub`, `Div` and `Clip`
/// (the ops burn's forward uses, so the values are the same); `metadata` goes into
/// `metadata_props`.
fn finish_model(
    bytes: &[u8],
    inputs: &[(&str, usize)],
    normalization: Option<(Vec<f32>, Vec<f32>, f32)>,
    output_name: &str,
    metadata: &[(String, String)],
) -> Result<Vec<u8>, String> {
    let mut model = ModelProto::parse_from_bytes(bytes).map_err(|e| format!("does not parse: {e}"))?;
    let graph = model.graph.mut_or_insert_default();
    if graph.input.len() != 1 || graph.output.len() != 1 {
        return Err(format!("has {} inputs and {} outputs, expected 1 and 1", graph.input.len(), graph.output.len()));
    }
    let used = |name: &str| {
        graph.initializer.iter().any(|t| t.name == name)
            || graph.node.iter().flat_map(|n| n.input.iter().chain(&n.output)).any(|n| n == name)
    };
    let reserved = ["normalization.mean", "normalization.std", "normalization.clip_min", "normalization.clip_max"];
    if let Some(name) = inputs
        .iter()
        .map(|&(name, _)| name)
        .chain([output_name, NORMALIZED_OBSERVATION, "normalization_centered", "normalization_scaled"])
        .chain(reserved)
        .find(|name| used(name))
    {
        return Err(format!("already has a value named `{name}`"));
    }
    // Where the rest of the graph reads the observation (the normalised one if there is a
    // normaliser); the graph's first input stays `inputs[0]`, the raw observation.
    let observation_feed = if normalization.is_some() { NORMALIZED_OBSERVATION } else { inputs[0].0 };
    let old_output = std::mem::replace(&mut graph.output[0].name, output_name.to_string());
    let packed = graph.input[0].name.clone();
    let mut renames = vec![(old_output, output_name.to_string())];
    if let [(name, _)] = inputs {
        graph.input[0].name = name.to_string();
        renames.push((packed, observation_feed.to_string()));
    } else {
        let template = graph.input.remove(0);
        for &(name, width) in inputs {
            let mut info = template.clone();
            info.name = name.to_string();
            let shape = info.type_.mut_or_insert_default().mut_tensor_type().shape.mut_or_insert_default();
            match shape.dim.get_mut(1) {
                Some(dim) => dim.set_dim_value(width as i64),
                None => return Err("the packed input is not [batch, width]".into()),
            }
            graph.input.push(info);
        }
        let mut concat = NodeProto::new();
        concat.name = "pack_inputs".into();
        concat.op_type = "Concat".into();
        concat.input = inputs.iter().map(|(name, _)| name.to_string()).collect();
        concat.input[0] = observation_feed.to_string();
        concat.output = vec![packed];
        let mut axis = AttributeProto::new();
        axis.name = "axis".into();
        axis.type_ = AttributeType::INT.into();
        axis.i = 1;
        concat.attribute.push(axis);
        graph.node.insert(0, concat);
    }
    for node in &mut graph.node {
        for name in node.input.iter_mut().chain(node.output.iter_mut()) {
            if let Some((_, new)) = renames.iter().find(|(old, _)| old == name) {
                *name = new.clone();
            }
        }
    }
    if let Some((mean, std, clip)) = normalization {
        let (observation, width) = inputs[0];
        if mean.len() != width || std.len() != width {
            return Err(format!("normaliser of width {} for an observation of width {width}", mean.len()));
        }
        let row = [1, width as i64];
        graph.initializer.push(initializer(reserved[0], &row, mean));
        graph.initializer.push(initializer(reserved[1], &row, std));
        graph.initializer.push(initializer(reserved[2], &[], vec![-clip]));
        graph.initializer.push(initializer(reserved[3], &[], vec![clip]));
        let nodes = [
            node("normalization_sub", "Sub", &[observation, reserved[0]], "normalization_centered"),
            node("normalization_div", "Div", &["normalization_centered", reserved[1]], "normalization_scaled"),
            node(
                "normalization_clip",
                "Clip",
                &["normalization_scaled", reserved[2], reserved[3]],
                NORMALIZED_OBSERVATION,
            ),
        ];
        for (i, n) in nodes.into_iter().enumerate() {
            graph.node.insert(i, n);
        }
    }
    model.producer_name = "splitwise (burn-onnx 0.22 export)".into();
    for (key, value) in metadata {
        model.metadata_props.push(Default::default());
        let entry = model.metadata_props.last_mut().expect("just pushed");
        entry.key = key.clone();
        entry.value = value.clone();
    }
    model.write_to_bytes().map_err(|e| format!("does not serialise: {e}"))
}

/// The inputs and outputs an ONNX model declares.
pub fn signature(onnx: &[u8]) -> Result<(Vec<TensorSpec>, Vec<TensorSpec>), String> {
    let model = ModelProto::parse_from_bytes(onnx).map_err(|e| format!("does not parse: {e}"))?;
    let describe = |info: &onnx_ir::ValueInfoProto| {
        let tensor = info.type_.tensor_type();
        let dtype = match tensor.elem_type {
            1 => "float32".to_string(),
            6 => "int32".to_string(),
            7 => "int64".to_string(),
            9 => "bool".to_string(),
            other => format!("onnx-type-{other}"),
        };
        let shape = tensor
            .shape
            .dim
            .iter()
            .map(|d| {
                if d.has_dim_param() {
                    Dim::Symbol(d.dim_param().to_string())
                } else {
                    Dim::Fixed(d.dim_value() as usize)
                }
            })
            .collect();
        TensorSpec { name: info.name.clone(), dtype, shape }
    };
    Ok((model.graph.input.iter().map(describe).collect(), model.graph.output.iter().map(describe).collect()))
}

/// The model's `metadata_props` as pairs.
pub fn metadata(onnx: &[u8]) -> Result<Vec<(String, String)>, String> {
    let model = ModelProto::parse_from_bytes(onnx).map_err(|e| format!("does not parse: {e}"))?;
    Ok(model.metadata_props.iter().map(|e| (e.key.clone(), e.value.clone())).collect())
}

/// ONNX operator types of the model's nodes, in graph order.
pub fn operator_types(onnx: &[u8]) -> Result<Vec<String>, String> {
    let model = ModelProto::parse_from_bytes(onnx).map_err(|e| format!("does not parse: {e}"))?;
    Ok(model.graph.node.iter().map(|n| n.op_type.clone()).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::PpoConfig;
    use crate::ppo::{ActionChoice, PolicyShape};
    use rand::{RngExt, SeedableRng};
    use splitwise_env::rng::StreamRng;

    fn values(out: PolicyOutput) -> Vec<f32> {
        match out {
            PolicyOutput::Values(v) => v,
            PolicyOutput::Actions(_) => panic!("expected values"),
        }
    }

    fn actions(out: PolicyOutput) -> Vec<i64> {
        match out {
            PolicyOutput::Actions(a) => a,
            PolicyOutput::Values(_) => panic!("expected actions"),
        }
    }

    #[test]
    fn component_layout_groups_columns_by_component() {
        // nvec (2, 3): component 0 is columns (0, 1), component 1 columns (2, 3, 4); the sum
        // matrix is the one-hot of each column's component.
        let layout = ComponentLayout::new(&[2, 3], true, &Device::flex());
        let int = |p: &Param<Tensor<1, Int>>| p.val().into_data().convert::<i64>().try_into_vec::<i64>().unwrap();
        let columns: Vec<Vec<i64>> = layout.columns.iter().map(int).collect();
        assert_eq!(columns, vec![vec![0, 1], vec![2, 3, 4]]);
        assert_eq!(int(layout.component_of_column.as_ref().unwrap()), vec![0, 0, 1, 1, 1]);
        let sums = layout.segment_sum.as_ref().unwrap().val().into_data().try_into_vec::<f32>().unwrap();
        assert_eq!(sums, vec![1.0, 0.0, 1.0, 0.0, 0.0, 1.0, 0.0, 1.0, 0.0, 1.0]);
        // One component needs nothing: reductions run over the whole row.
        let single = ComponentLayout::new(&[4], true, &Device::flex());
        assert!(single.columns.is_empty() && single.component_of_column.is_none() && single.segment_sum.is_none());
        // Actions need only the columns.
        let action = ComponentLayout::new(&[2, 3], false, &Device::flex());
        assert!(action.columns.len() == 2 && action.segment_sum.is_none());
    }

    #[test]
    fn primitive_softmax_and_argmax_match_hand_values() {
        // Component 0: logits (0, ln 2) → p = (1/3, 2/3). Component 1: (0, ln 2, ln 3) →
        // p = (1/6, 2/6, 3/6). Argmax: (1, 2).
        let device = Device::flex();
        let layout = ComponentLayout::new(&[2, 3], true, &device);
        let logits = vec![0.0, 2f32.ln(), 0.0, 2f32.ln(), 3f32.ln()];
        let x = Tensor::<2>::from_data(TensorData::new(logits.clone(), [1, 5]), &device);
        let p = (layout.probs(x.clone())).into_data().try_into_vec::<f32>().unwrap();
        let expected = [1.0 / 3.0, 2.0 / 3.0, 1.0 / 6.0, 2.0 / 6.0, 3.0 / 6.0];
        for (a, b) in p.iter().zip(expected) {
            assert!((f64::from(*a) - b).abs() < 1e-6, "{p:?}");
        }
        let a = (layout.argmax(x)).into_data().convert::<i64>().try_into_vec::<i64>().unwrap();
        assert_eq!(a, vec![1, 2]);
        // Ties go to the lowest index: row (5, 1 | 0, 7, 7) → (0, 1).
        let tie = Tensor::<2>::from_data(TensorData::new(vec![5.0f32, 1.0, 0.0, 7.0, 7.0], [1, 5]), &device);
        assert_eq!((layout.argmax(tie)).into_data().convert::<i64>().try_into_vec::<i64>().unwrap(), vec![0, 1]);
    }

    #[test]
    fn in_graph_clip_is_exact_and_normalisation_matches_the_host() {
        // mean (1, −2, 0), var (4, 0.25, 1): σ = √(var + 1e-8). x = (3, 10, −0.5):
        // z = (1, 24 → clipped to 5, −0.5).
        let mut n = ObsNormalizer::new(3, 5.0);
        n.stats.mean = vec![1.0, -2.0, 0.0];
        n.stats.var = vec![4.0, 0.25, 1.0];
        let device = Device::flex();
        let norm = Normalization::new(&n, &device);
        let raw = vec![3.0f32, 10.0, -0.5, -100.0, -2.0, 0.25];
        let z = (norm.forward(Tensor::<2>::from_data(TensorData::new(raw.clone(), [2, 3]), &device)))
            .into_data()
            .try_into_vec::<f32>()
            .unwrap();
        let mut reference = vec![0.0f32; 6];
        n.normalize_into(&raw, &mut reference);
        assert_eq!(z[1], 5.0, "clipped values are exactly the clip");
        assert_eq!(z[3], -5.0);
        // Unclipped: f32 (x − μ)/σ against the host's f64 rounded once: within a few ulp.
        for (a, b) in z.iter().zip(&reference) {
            assert!((a - b).abs() <= 4.0 * f32::EPSILON * b.abs().max(1.0), "{z:?} vs {reference:?}");
        }
        assert!((z[0] - 1.0).abs() < 1e-6 && (z[2] + 0.5).abs() < 1e-6);
    }

    /// A PPO learner with a non-trivial observation normaliser (statistics set by hand).
    fn ppo_with_stats(shape: PolicyShape, seed: u64) -> Ppo {
        let config = PpoConfig { normalize_obs: true, clip_obs: 3.0, ..PpoConfig::default() };
        let ppo = Ppo::new(config, shape.clone(), seed).unwrap();
        let mut state = ppo.export_state().unwrap();
        let stats = &mut state.meta.obs_normalizer.stats;
        stats.mean = (0..shape.obs_dim).map(|j| (j as f64 * 0.7).sin()).collect();
        stats.var = (0..shape.obs_dim).map(|j| 0.05 + (j as f64 * 0.3).cos().powi(2)).collect();
        stats.count = 1000.0;
        Ppo::from_state(&state).unwrap()
    }

    #[test]
    fn graph_computes_the_training_policy() {
        // The exported computation (burn's tanh op, f32 normalisation, primitive masking and
        // softmax) against the learner's own acting path (sigmoid-form tanh, f64 normalisation,
        // host masking): within 1e-5 (tanh forms differ by ≤ 2e-7 per activation, network test).
        let shape = PolicyShape { obs_dim: 6, context_dim: 0, nvec: vec![4, 3, 2] };
        let ppo = ppo_with_stats(shape.clone(), 3);
        let level = PolicyLevel::of_ppo(&ppo);
        let device = Device::flex();
        let (batch, d, m) = (64, shape.obs_dim, shape.mask_len());
        let mut rng = StreamRng::seed_from_u64(9);
        let obs: Vec<f32> = (0..batch * d).map(|_| rng.random_range(-4.0f32..4.0)).collect();
        let mut mask: Vec<bool> = (0..batch * m).map(|_| rng.random_bool(0.6)).collect();
        for row in mask.chunks_mut(m) {
            let mut offset = 0;
            for &n in &shape.nvec {
                let pick = rng.random_range(0..n);
                row[offset + pick] = true;
                offset += n;
            }
        }
        let mask_f: Vec<f32> = mask.iter().map(|&b| if b { 1.0 } else { 0.0 }).collect();

        let mut input = vec![0.0f32; obs.len()];
        ppo.normalize_obs(&obs, &mut input);
        let x = Tensor::<2>::from_data(TensorData::new(input, [batch, d]), &device);
        let train_logits = (ppo.networks().actor.forward(x)).into_data().try_into_vec::<f32>().unwrap();

        let logits = values(PolicyGraph::new(&level, OutputFormat::Logits, true, &device).run(batch, &[&obs, &mask_f]));
        for i in 0..batch * m {
            if mask[i] {
                assert!((logits[i] - train_logits[i]).abs() < 1e-5, "{i}: {} vs {}", logits[i], train_logits[i]);
            } else {
                assert_eq!(logits[i], MASKED_LOGIT, "masked logits are exactly the training constant");
            }
        }

        let probs = values(PolicyGraph::new(&level, OutputFormat::Probs, true, &device).run(batch, &[&obs, &mask_f]));
        for (r, row) in probs.chunks(m).enumerate() {
            let mut offset = 0;
            for &n in &shape.nvec {
                let block = offset..offset + n;
                let legal: Vec<usize> = block.clone().filter(|&j| mask[r * m + j]).collect();
                let max = legal.iter().map(|&j| f64::from(train_logits[r * m + j])).fold(f64::MIN, f64::max);
                let z: f64 = legal.iter().map(|&j| (f64::from(train_logits[r * m + j]) - max).exp()).sum();
                for j in block.clone() {
                    if mask[r * m + j] {
                        let p = (f64::from(train_logits[r * m + j]) - max).exp() / z;
                        assert!((f64::from(row[j]) - p).abs() < 1e-5, "row {r} value {j}");
                    } else {
                        assert_eq!(row[j], 0.0);
                    }
                }
                offset += n;
            }
        }

        let act = actions(PolicyGraph::new(&level, OutputFormat::Action, true, &device).run(batch, &[&obs, &mask_f]));
        let reference = ppo.act(&obs, &mask, ActionChoice::Deterministic).unwrap();
        let k = shape.n_components();
        for (i, (&a, &b)) in act.iter().zip(&reference).enumerate() {
            if a as usize != b {
                // Only a near tie may differ (logits within the two forward passes' tolerance).
                let (r, c) = (i / k, i % k);
                let offset: usize = shape.nvec[..c].iter().sum();
                let gap = (train_logits[r * m + offset + a as usize] - train_logits[r * m + offset + b]).abs();
                assert!(gap < 1e-5, "row {r} component {c}: {a} vs {b}, gap {gap}");
            }
        }
    }

    #[test]
    fn exported_graphs_have_named_inputs_a_dynamic_batch_and_metadata() {
        let mut level = PolicyLevel::random("policy", 5, 0, &[3, 2, 2], &[8, 8], 1.0, 1);
        level.normalizer = Some(ObsNormalizer::new(5, 10.0));
        let meta = vec![("observation_fingerprint".to_string(), "abc".to_string())];
        for format in OutputFormat::ALL {
            let e = export_level(&level, format, true, &meta).unwrap();
            let names: Vec<&str> = e.inputs.iter().map(|t| t.name.as_str()).collect();
            assert_eq!(names, [OBSERVATION_INPUT, MASK_INPUT]);
            assert_eq!(e.inputs[0].shape, vec![Dim::Symbol(BATCH_AXIS.into()), Dim::Fixed(5)]);
            assert_eq!(e.inputs[1].shape, vec![Dim::Symbol(BATCH_AXIS.into()), Dim::Fixed(7)]);
            assert_eq!(e.outputs.len(), 1);
            assert_eq!(e.outputs[0].name, format.output_name());
            let (dtype, width) = match format {
                OutputFormat::Action => ("int64", 3),
                _ => ("float32", 7),
            };
            assert_eq!(e.outputs[0].dtype, dtype);
            assert_eq!(e.outputs[0].shape, vec![Dim::Symbol(BATCH_AXIS.into()), Dim::Fixed(width)]);
            let props = metadata(&e.onnx).unwrap();
            assert!(props.contains(&("observation_fingerprint".into(), "abc".into())));
            assert!(props.contains(&("format".into(), format.output_name().into())));
            let ops = operator_types(&e.onnx).unwrap();
            assert_eq!(ops.iter().filter(|o| *o == "Tanh").count(), 2, "{ops:?}");
            assert!(!ops.iter().any(|o| o == "Softmax" || o == "Sigmoid"), "{ops:?}");
            // The normaliser is one Sub, Div and Clip on the observation, not a top-1 clamp.
            assert_eq!(ops.iter().filter(|o| *o == "Clip").count(), 1, "{ops:?}");
            if format == OutputFormat::Logits {
                assert!(!ops.iter().any(|o| o == "TopK"), "{ops:?}");
            }
        }
    }
}
