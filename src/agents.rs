//! The agent registry: every learner kind the app trains, evaluates and exports, with its
//! checkpoint files and its loader; [`levels`] gives the networks an export writes (derived from
//! the learner a checkpoint holds). `train`, `eval` and `export`
//! look a kind up here (by a checkpoint's `agent_kind` or the config's `agent.kind`) and never
//! branch on the name themselves; `splitwise train --help` and the docs list [`REGISTRY`].

use crate::checkpoint::CheckpointFiles;
use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use splitwise_agents::export::PolicyLevel;
use splitwise_agents::{
    Hppo, HppoState, Learner, LearnerState, MbrlMeta, MbrlState, PpoMeta, PpoState, SurrogateMeta, SurrogateState,
};
use std::path::Path;

/// The flat learner's files inside `agent/` (names kept from the first checkpoint format).
pub const AGENT_WEIGHTS: &str = "weights.bpk";
pub const AGENT_OPTIMIZER: &str = "optimizer.bpk";
pub const AGENT_META: &str = "ppo_meta.json";
/// A hierarchy's own file: how its levels split the action components.
pub const HIERARCHY_FILE: &str = "hierarchy.json";

/// A checkpoint's `agent/` files: (name, contents).
pub type AgentFiles = Vec<(String, Vec<u8>)>;

/// One kind of agent.
pub struct AgentKind {
    /// `agent.kind` in a config, `agent_kind` in a checkpoint's metadata.
    pub name: &'static str,
    pub help: &'static str,
    /// The `agent/` files of a learner's state.
    pub files: fn(&LearnerState) -> Result<AgentFiles>,
    /// The state back from a checkpoint's files (`dir` names it in errors).
    pub read: fn(&CheckpointFiles, &Path) -> Result<LearnerState>,
}

pub const REGISTRY: &[AgentKind] = &[
    AgentKind {
        name: "ppo",
        help: "PPO over the whole (masked multi-discrete) action: one actor, one critic",
        files: ppo_files,
        read: ppo_read,
    },
    AgentKind {
        name: "hppo",
        help: "hierarchical PPO: a high level picks the split and precision, a low level the window's heads and \
               FFN modes given that choice; two actors, two critics",
        files: hppo_files,
        read: hppo_read,
    },
    AgentKind {
        name: "mbrl",
        help: "model-based RL with a learned reward surrogate (Adaptive Layer Splitting's agent): real steps feed an \
               MLP surrogate of the environment's expensive reward component, the policy (PPO) trains on the \
               environment with the surrogate in its place; for environments with such a component (als)",
        files: mbrl_files,
        read: mbrl_read,
    },
];

/// The kind called `name`, or an error listing the kinds.
pub fn find(name: &str) -> Result<&'static AgentKind> {
    REGISTRY
        .iter()
        .find(|k| k.name == name)
        .with_context(|| format!("agent kind `{name}` is not one this splitwise knows ({})", names().join(", ")))
}

pub fn names() -> Vec<&'static str> {
    REGISTRY.iter().map(|k| k.name).collect()
}

/// The kind of a learner.
pub fn kind_of(learner: &Learner) -> &'static AgentKind {
    let name = match learner {
        Learner::Flat(_) => "ppo",
        Learner::Hierarchical(_) => "hppo",
        Learner::ModelBased(_) => "mbrl",
    };
    find(name).expect("every learner variant has a registry entry (tested)")
}

/// A checkpoint's learner state, read by the kind its metadata names.
pub fn read_state(files: &CheckpointFiles, dir: &Path) -> Result<LearnerState> {
    let kind = find(&files.metadata.agent_kind)
        .with_context(|| format!("checkpoint {} ({})", dir.display(), crate::checkpoint::METADATA_FILE))?;
    (kind.read)(files, dir)
}

fn level_files(prefix: &str, state: &PpoState) -> Result<Vec<(String, Vec<u8>)>> {
    Ok(vec![
        (format!("{prefix}{AGENT_WEIGHTS}"), state.weights.clone()),
        (format!("{prefix}{AGENT_OPTIMIZER}"), state.optimizer.clone()),
        (format!("{prefix}{AGENT_META}"), serde_json::to_vec_pretty(&state.meta).context("serialising agent meta")?),
    ])
}

fn level_read(files: &CheckpointFiles, dir: &Path, prefix: &str) -> Result<PpoState> {
    let meta_file = format!("{prefix}{AGENT_META}");
    let meta: PpoMeta = serde_json::from_slice(files.agent_file(&meta_file, dir)?)
        .with_context(|| format!("checkpoint {}: agent/{meta_file} is corrupt", dir.display()))?;
    Ok(PpoState {
        weights: files.agent_file(&format!("{prefix}{AGENT_WEIGHTS}"), dir)?.to_vec(),
        optimizer: files.agent_file(&format!("{prefix}{AGENT_OPTIMIZER}"), dir)?.to_vec(),
        meta,
    })
}

fn ppo_files(state: &LearnerState) -> Result<Vec<(String, Vec<u8>)>> {
    match state {
        LearnerState::Flat(s) => level_files("", s),
        _ => bail!("a {} state is not a ppo agent's", state_kind(state)),
    }
}

fn state_kind(state: &LearnerState) -> &'static str {
    match state {
        LearnerState::Flat(_) => "ppo",
        LearnerState::Hierarchical(_) => "hppo",
        LearnerState::ModelBased(_) => "mbrl",
    }
}

fn ppo_read(files: &CheckpointFiles, dir: &Path) -> Result<LearnerState> {
    Ok(LearnerState::Flat(level_read(files, dir, "")?))
}

/// The networks an ONNX export writes, in chain order, by the learner a checkpoint holds.
pub fn levels(learner: &Learner) -> Vec<PolicyLevel> {
    match learner {
        Learner::Flat(p) => vec![PolicyLevel::of_ppo(p)],
        Learner::Hierarchical(h) => hppo_levels_of(h),
        // The policy alone: the surrogate is a training device, not part of the deployed policy.
        Learner::ModelBased(m) => vec![PolicyLevel::of_ppo(m.ppo())],
    }
}

/// `hierarchy.json`.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Hierarchy {
    /// Leading action components the high level picks.
    n_high: usize,
    /// Slots the high level holds a choice for (absent in checkpoints from before the option: 1).
    #[serde(default = "one", skip_serializing_if = "is_one")]
    k_high: usize,
}

fn one() -> usize {
    1
}

fn is_one(k: &usize) -> bool {
    *k == 1
}

const HIGH: &str = "high.";
const LOW: &str = "low.";

fn hppo_files(state: &LearnerState) -> Result<Vec<(String, Vec<u8>)>> {
    let LearnerState::Hierarchical(s) = state else { bail!("a {} state is not an hppo agent's", state_kind(state)) };
    let mut files = level_files(HIGH, &s.high)?;
    files.extend(level_files(LOW, &s.low)?);
    files.push((
        HIERARCHY_FILE.to_string(),
        serde_json::to_vec_pretty(&Hierarchy { n_high: s.n_high, k_high: s.k_high })?,
    ));
    Ok(files)
}

fn hppo_read(files: &CheckpointFiles, dir: &Path) -> Result<LearnerState> {
    let h: Hierarchy = serde_json::from_slice(files.agent_file(HIERARCHY_FILE, dir)?)
        .with_context(|| format!("checkpoint {}: agent/{HIERARCHY_FILE} is corrupt", dir.display()))?;
    if h.k_high == 0 {
        bail!("checkpoint {}: agent/{HIERARCHY_FILE} has k_high = 0; it must be >= 1", dir.display());
    }
    Ok(LearnerState::Hierarchical(Box::new(HppoState {
        high: level_read(files, dir, HIGH)?,
        low: level_read(files, dir, LOW)?,
        n_high: h.n_high,
        k_high: h.k_high,
    })))
}

/// A model-based learner's own files beside its policy's (`weights.bpk`, `optimizer.bpk`,
/// `ppo_meta.json`, as a flat learner's): its measurements and counters, the surrogate's
/// standardisation and RNG, and each surrogate member's weights and Adam moments.
pub const MBRL_FILE: &str = "mbrl.json";
pub const SURROGATE_FILE: &str = "surrogate.json";

fn surrogate_member_file(k: usize, file: &str) -> String {
    format!("surrogate.{k}.{file}")
}

fn mbrl_files(state: &LearnerState) -> Result<Vec<(String, Vec<u8>)>> {
    let LearnerState::ModelBased(s) = state else { bail!("a {} state is not an mbrl agent's", state_kind(state)) };
    let mut files = level_files("", &s.ppo)?;
    files.push((MBRL_FILE.to_string(), serde_json::to_vec(&s.meta).context("serialising the MBRL state")?));
    files.push((
        SURROGATE_FILE.to_string(),
        serde_json::to_vec_pretty(&s.surrogate.meta).context("serialising the surrogate state")?,
    ));
    for (k, (weights, optimizer)) in s.surrogate.members.iter().zip(&s.surrogate.optimizers).enumerate() {
        files.push((surrogate_member_file(k, AGENT_WEIGHTS), weights.clone()));
        files.push((surrogate_member_file(k, AGENT_OPTIMIZER), optimizer.clone()));
    }
    Ok(files)
}

fn mbrl_read(files: &CheckpointFiles, dir: &Path) -> Result<LearnerState> {
    let json = |name: &str| -> Result<&[u8]> { files.agent_file(name, dir) };
    let meta: MbrlMeta = serde_json::from_slice(json(MBRL_FILE)?)
        .with_context(|| format!("checkpoint {}: agent/{MBRL_FILE} is corrupt", dir.display()))?;
    let surrogate: SurrogateMeta = serde_json::from_slice(json(SURROGATE_FILE)?)
        .with_context(|| format!("checkpoint {}: agent/{SURROGATE_FILE} is corrupt", dir.display()))?;
    let ensemble = surrogate.config.ensemble;
    let member = |k: usize, file: &str| files.agent_file(&surrogate_member_file(k, file), dir).map(<[u8]>::to_vec);
    Ok(LearnerState::ModelBased(Box::new(MbrlState {
        ppo: level_read(files, dir, "")?,
        surrogate: SurrogateState {
            members: (0..ensemble).map(|k| member(k, AGENT_WEIGHTS)).collect::<Result<_>>()?,
            optimizers: (0..ensemble).map(|k| member(k, AGENT_OPTIMIZER)).collect::<Result<_>>()?,
            meta: surrogate,
        },
        meta,
    })))
}

/// The high level's network, then the low level's, which reads the high choice one-hot as its
/// context.
fn hppo_levels_of(h: &Hppo) -> Vec<PolicyLevel> {
    let n_high = h.n_high();
    let n = h.env_shape().n_components();
    let mut high = PolicyLevel::of_ppo(h.high());
    high.role = "high".into();
    high.components = (0..n_high).collect();
    let mut low = PolicyLevel::of_ppo(h.low());
    low.role = "low".into();
    low.components = (n_high..n).collect();
    low.obs_dim = h.low().shape().obs_dim;
    low.context_dim = h.low().shape().context_dim;
    low.context_from = vec!["high".into()];
    vec![high, low]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_registered_kind_has_a_unique_name_and_help() {
        let mut names = names();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), REGISTRY.len());
        assert!(REGISTRY.iter().all(|k| !k.help.is_empty()));
        assert!(find("nope").err().is_some_and(|e| e.to_string().contains("ppo, hppo, mbrl")));
    }
}
