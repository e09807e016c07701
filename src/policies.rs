//! Resolving policy specs (the grammar of `splitwise_env::policy`) into policies: the trivial
//! ones of the env crate, the baselines of the eval crate (`neurosurgeon`, `splitllm-dp`, …,
//! system-model §10), and trained checkpoints (`ckpt:PATH`), which act deterministically
//! (greedy legal value per component, under the env's conditional masks). A checkpoint trained
//! on another observation layout or action space is refused before any work.

use crate::checkpoint;
use crate::device::Acting;
use crate::train::load_agent;
use anyhow::{Result, bail};
use splitwise_agents::{ActionChoice, Acts, ComputeDevice, HighHold, Learner, PolicyShape};
use splitwise_env::api::{Env, EnvSpec};
use splitwise_env::policy::{Decision, DecisionContext, Policy, PolicyKind, PolicySpec};
use splitwise_env::scenario::Scenario;
use splitwise_eval::{baselines, policy_specs};
use std::path::Path;
use std::sync::Arc;

/// Names resolved here beyond the env crate's trivial policies: the eval crate's baselines.
pub fn extra_names() -> Vec<&'static str> {
    baselines::extra_names()
}

/// Parses and builds one policy for `scenario`, whose environment has `env_spec`.
pub fn build(spec_text: &str, seed: u64, scenario: &Arc<Scenario>, env_spec: &EnvSpec) -> Result<Box<dyn Policy>> {
    let spec = PolicySpec::parse(spec_text, &extra_names())?;
    build_spec(&spec, seed, scenario, env_spec)
}

pub fn build_spec(
    spec: &PolicySpec,
    seed: u64,
    scenario: &Arc<Scenario>,
    env_spec: &EnvSpec,
) -> Result<Box<dyn Policy>> {
    if let Some(p) = policy_specs::build(spec, seed, scenario)? {
        return Ok(p);
    }
    match &spec.kind {
        PolicyKind::Checkpoint { path } => {
            Ok(Box::new(CheckpointPolicy::load(Path::new(path), &spec.label, env_spec, ComputeDevice::Cpu)?))
        }
        other => bail!("policy {other:?} cannot be built by this command"),
    }
}

/// The eval crate's checkpoint loader: `ckpt:PATH` through [`CheckpointPolicy::load`], acting
/// on `device`.
pub fn checkpoint_loader(device: ComputeDevice) -> policy_specs::CheckpointLoader {
    std::sync::Arc::new(move |path: &str, label: &str, env_spec: &EnvSpec| -> Result<Box<dyn Policy>> {
        Ok(Box::new(CheckpointPolicy::load(Path::new(path), label, env_spec, device)?))
    })
}

/// A trained checkpoint (any registered agent kind) acting deterministically.
pub struct CheckpointPolicy {
    label: String,
    agent: Learner,
    actions: Vec<usize>,
    /// A hierarchy's held high choice (`k_high > 1`), cleared at every episode start.
    hold: HighHold,
}

impl CheckpointPolicy {
    /// A learner already in memory (the policy a run is training), acting deterministically.
    pub fn from_learner(label: &str, agent: Learner) -> Self {
        let n = agent.env_shape().n_components();
        Self { label: label.to_string(), agent, actions: vec![0; n], hold: HighHold::default() }
    }

    pub fn load(path: &Path, label: &str, env_spec: &EnvSpec, device: ComputeDevice) -> Result<Self> {
        let agent = load_learner(path, env_spec, device)?;
        let n = agent.env_shape().n_components();
        Ok(Self { label: label.to_string(), agent, actions: vec![0; n], hold: HighHold::default() })
    }
}

/// Loads a checkpoint's learner (any registered agent kind) for an environment with `env_spec`,
/// refusing one trained on another observation layout or action space before any work; its
/// networks act on `device`.
pub fn load_learner(path: &Path, env_spec: &EnvSpec, device: ComputeDevice) -> Result<Learner> {
    let dir = checkpoint::resolve(path)?;
    let files = checkpoint::load(&dir)?;
    let m = &files.metadata;
    if m.observation_fingerprint != env_spec.observation.fingerprint() {
        bail!(
            "checkpoint {} was trained on observation layout {} ({}), this environment has {} ({}); \
             policies of another layout cannot be evaluated here: retrain with this build",
            dir.display(),
            m.observation_layout,
            m.observation_fingerprint,
            env_spec.observation.layout,
            env_spec.observation.fingerprint()
        );
    }
    let mut agent = load_agent(&files, &dir, None)?;
    crate::device::place(&mut agent, device, Acting::OnDevice, &format!("checkpoint {}", dir.display()))?;
    let shape = PolicyShape::of(env_spec);
    if agent.env_shape() != shape {
        bail!(
            "checkpoint {} acts in {} with action components {:?}; this environment is {} with {:?} \
             (evaluate it on the scenario and action mode it was trained on)",
            dir.display(),
            m.env_id,
            agent.env_shape().nvec,
            env_spec.id,
            shape.nvec
        );
    }
    Ok(agent)
}

impl Policy for CheckpointPolicy {
    fn name(&self) -> String {
        self.label.clone()
    }

    fn reset(&mut self, _seed: u64) {
        self.hold.clear();
    }

    fn end_episode(&mut self) {
        self.hold.clear();
    }

    fn decide(&mut self, ctx: &DecisionContext<'_>) -> Decision {
        let env = ctx.env;
        let mut conditional = |_: usize, prefix: &[usize], out: &mut [bool]| env.conditional_mask(prefix, out);
        // The observation and mask come from the env itself, so shapes match (checked at load).
        self.agent
            .act_holding_into_with(
                ctx.obs,
                ctx.mask,
                ActionChoice::Deterministic,
                Some(&mut conditional),
                &mut self.hold,
                &mut self.actions,
            )
            .expect("observation and mask shapes were checked when the checkpoint was loaded");
        Decision::Action(self.actions.clone())
    }
}
