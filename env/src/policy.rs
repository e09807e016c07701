//! Non-learned policies for the partition environment: the interface every baseline (and the
//! wrapper of a learned checkpoint) implements, the trivial policies, and the one policy-spec
//! grammar every command shares.
//!
//! A policy sees the observation, the mask, and the environment's public model (presets and
//! cost evaluator through [`PartitionEnv::scenario`], plan helpers and conditional masks). An
//! oracle policy also receives the true conditions of the slot it decides for and is labelled
//! as such in every report.
//!
//! Spec grammar (`simulate --policy`, `eval --policies`):
//! ```text
//! list  := spec ("," spec)*
//! spec  := [label "="] name [":" arg]
//! ```
//! e.g. `cloud-only`, `fixed-split:12`, `fixed-split:12/8` (split 12, 8-bit boundary),
//! `random`, `ppo=ckpt:checkpoints/run/step_4096`. Names this crate does not build (baselines of
//! the eval crate, checkpoints) parse into [`PolicyKind::Named`] / [`PolicyKind::Checkpoint`]
//! for the caller to resolve.

use crate::api::{Env, EnvError, Observation, Transition};
use crate::exogenous::ExoSlot;
use crate::partition::{PartitionEnv, StepInfo};
use crate::plan::{Plan, Precision};
use crate::rng::StreamRng;
use rand::RngExt;

/// What a policy decides: indices in the env's action space, or a plan (baselines that search
/// the plan space directly, e.g. a DP with several edge↔cloud switches).
#[derive(Clone, Debug, PartialEq)]
pub enum Decision {
    Action(Vec<usize>),
    Plan(Plan),
}

/// What a policy may look at.
pub struct DecisionContext<'a> {
    pub obs: &'a [f32],
    pub mask: &'a [bool],
    pub env: &'a PartitionEnv,
    /// The true conditions of the decided slot; `Some` only for oracle policies.
    pub oracle: Option<ExoSlot>,
    /// Edge memory available in the decided slot (known locally, as in the masks).
    pub edge_memory_bytes: f64,
}

pub trait Policy: Send {
    fn name(&self) -> String;

    /// Oracle policies read the true current state (exact bandwidth, exact cloud load).
    fn is_oracle(&self) -> bool {
        false
    }

    /// Called at the start of every episode.
    fn reset(&mut self, _seed: u64) {}

    /// Called when an episode ends and the next continues without a reseed (`splitwise
    /// simulate`): drops what a policy keeps within an episode (a hierarchy's held high choice)
    /// and nothing else.
    fn end_episode(&mut self) {}

    fn decide(&mut self, ctx: &DecisionContext<'_>) -> Decision;
}

/// A parsed policy spec.
#[derive(Clone, Debug, PartialEq)]
pub struct PolicySpec {
    /// Row label in reports (defaults to the spec text).
    pub label: String,
    pub kind: PolicyKind,
}

#[derive(Clone, Debug, PartialEq)]
pub enum PolicyKind {
    CloudOnly,
    EdgeOnly,
    Random,
    FixedSplit {
        layer: u32,
        precision: Precision,
    },
    /// A policy of another crate (e.g. `neurosurgeon:latency`), resolved by the caller.
    Named {
        name: String,
        arg: Option<String>,
    },
    /// A trained checkpoint (`ckpt:PATH`), resolved by the caller.
    Checkpoint {
        path: String,
    },
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SpecError {
    #[error("empty policy spec in `{0}`")]
    Empty(String),
    #[error("policy `{spec}`: {message}")]
    Invalid { spec: String, message: String },
}

/// Names this crate builds, for error messages.
pub const TRIVIAL_POLICIES: &[&str] = &["cloud-only", "edge-only", "random", "fixed-split:N[/BITS]"];

impl PolicySpec {
    /// Parses one spec; `extra_names` are the names the caller can resolve besides the trivial
    /// ones and `ckpt:` (an unknown name is an error listing every allowed name).
    pub fn parse(text: &str, extra_names: &[&str]) -> Result<Self, SpecError> {
        let text = text.trim();
        if text.is_empty() {
            return Err(SpecError::Empty(text.to_string()));
        }
        let (label, body) = match text.split_once('=') {
            Some((l, b)) if !l.trim().is_empty() && !l.contains(':') => (l.trim().to_string(), b.trim()),
            _ => (text.to_string(), text),
        };
        let (name, arg) = match body.split_once(':') {
            Some((n, a)) => (n.trim(), Some(a.trim())),
            None => (body, None),
        };
        let invalid = |message: String| SpecError::Invalid { spec: text.to_string(), message };
        let no_arg = |kind: PolicyKind| match arg {
            None => Ok(kind),
            Some(a) => Err(invalid(format!("`{name}` takes no argument, got `{a}`"))),
        };
        let kind = match name {
            "cloud-only" => no_arg(PolicyKind::CloudOnly)?,
            "edge-only" => no_arg(PolicyKind::EdgeOnly)?,
            "random" => no_arg(PolicyKind::Random)?,
            "fixed-split" => {
                let a =
                    arg.ok_or_else(|| invalid("needs a split layer, e.g. fixed-split:12 or fixed-split:12/8".into()))?;
                let (layer, bits) = match a.split_once('/') {
                    Some((l, b)) => (l, Some(b)),
                    None => (a, None),
                };
                let layer: u32 =
                    layer.parse().map_err(|_| invalid(format!("split layer `{layer}` is not a whole number")))?;
                let precision = match bits {
                    None => Precision::Bits16,
                    Some(b) => b
                        .parse::<u8>()
                        .ok()
                        .and_then(Precision::from_bits)
                        .ok_or_else(|| invalid(format!("boundary bits `{b}` must be 16, 8 or 4")))?,
                };
                PolicyKind::FixedSplit { layer, precision }
            }
            "ckpt" => {
                let path = arg.filter(|p| !p.is_empty()).ok_or_else(|| invalid("needs a path: ckpt:PATH".into()))?;
                PolicyKind::Checkpoint { path: path.to_string() }
            }
            n if extra_names.contains(&n) => PolicyKind::Named { name: n.to_string(), arg: arg.map(str::to_string) },
            n => {
                let mut allowed: Vec<&str> = TRIVIAL_POLICIES.to_vec();
                allowed.extend_from_slice(extra_names);
                allowed.push("ckpt:PATH");
                return Err(invalid(format!("unknown policy `{n}`; allowed: {}", allowed.join(", "))));
            }
        };
        Ok(Self { label, kind })
    }

    /// Parses a comma-separated list.
    pub fn parse_list(text: &str, extra_names: &[&str]) -> Result<Vec<Self>, SpecError> {
        if text.trim().is_empty() {
            return Err(SpecError::Empty(text.to_string()));
        }
        text.split(',').map(|s| Self::parse(s, extra_names)).collect()
    }

    /// Builds a policy of this crate; `None` for [`PolicyKind::Named`] and
    /// [`PolicyKind::Checkpoint`], which the caller resolves.
    pub fn build_trivial(&self, policy_seed: u64) -> Option<Box<dyn Policy>> {
        Some(match &self.kind {
            PolicyKind::CloudOnly => Box::new(CloudOnly),
            PolicyKind::EdgeOnly => Box::new(EdgeOnly),
            PolicyKind::Random => Box::new(RandomPolicy::new(policy_seed)),
            &PolicyKind::FixedSplit { layer, precision } => Box::new(FixedSplit { layer, precision }),
            PolicyKind::Named { .. } | PolicyKind::Checkpoint { .. } => return None,
        })
    }
}

/// Asks `policy` for its decision on `obs` and executes it, writing the next observation into
/// `obs` (the one loop every command drives policies with).
pub fn act_and_step(
    env: &mut PartitionEnv,
    policy: &mut dyn Policy,
    obs: &mut Observation,
) -> Result<Transition<StepInfo>, EnvError> {
    let oracle = policy.is_oracle().then(|| env.oracle_conditions());
    let edge_memory_bytes = env.available_edge_memory_bytes();
    let decision = {
        let ctx = DecisionContext { obs: &obs.features, mask: &obs.mask, env, oracle, edge_memory_bytes };
        policy.decide(&ctx)
    };
    match decision {
        Decision::Action(a) => env.step_into(&a, &mut obs.features, &mut obs.mask),
        Decision::Plan(p) => env.step_plan_into(&p, &mut obs.features, &mut obs.mask),
    }
}

/// The largest layer split at `precision`, at most `max_split`, that fits the edge memory of the
/// decided slot and respects the privacy floor (what a static policy falls back to when its own
/// plan does not fit).
pub fn largest_feasible_split(ctx: &DecisionContext<'_>, max_split: u32, precision: Precision) -> Plan {
    let sc = ctx.env.scenario();
    let (l, h) = (sc.n_layers(), sc.n_heads());
    let floor = sc.config.serving.privacy_floor_layers;
    let mut s = max_split.min(l);
    while s > floor && sc.memory.plan_bytes(&Plan::layer_split(l, h, s, precision)) > ctx.edge_memory_bytes {
        s -= 1;
    }
    Plan::layer_split(l, h, s.max(floor), precision)
}

/// Everything in the cloud. With a privacy floor, exactly the floor stays on the edge.
pub struct CloudOnly;

impl Policy for CloudOnly {
    fn name(&self) -> String {
        "cloud-only".into()
    }

    fn decide(&mut self, ctx: &DecisionContext<'_>) -> Decision {
        Decision::Plan(largest_feasible_split(ctx, 0, Precision::Bits16))
    }
}

/// Everything on the edge; when it does not fit, the largest layer split that does.
pub struct EdgeOnly;

impl Policy for EdgeOnly {
    fn name(&self) -> String {
        "edge-only".into()
    }

    fn decide(&mut self, ctx: &DecisionContext<'_>) -> Decision {
        Decision::Plan(largest_feasible_split(ctx, u32::MAX, Precision::Bits16))
    }
}

/// A fixed layer split (clamped down to what fits the slot's edge memory).
pub struct FixedSplit {
    pub layer: u32,
    pub precision: Precision,
}

impl Policy for FixedSplit {
    fn name(&self) -> String {
        format!("fixed-split:{}/{}", self.layer, self.precision.bits())
    }

    fn decide(&mut self, ctx: &DecisionContext<'_>) -> Decision {
        Decision::Plan(largest_feasible_split(ctx, self.layer, self.precision))
    }
}

/// Uniformly random legal actions, component by component under the conditional masks.
pub struct RandomPolicy {
    rng: StreamRng,
    seed: u64,
    mask: Vec<bool>,
}

impl RandomPolicy {
    pub fn new(seed: u64) -> Self {
        Self { rng: crate::rng::stream_rng(seed, crate::rng::Stream::Policy), seed, mask: Vec::new() }
    }
}

impl Policy for RandomPolicy {
    fn name(&self) -> String {
        "random".into()
    }

    fn reset(&mut self, seed: u64) {
        self.rng = crate::rng::stream_rng(crate::rng::derive_seed(self.seed, seed), crate::rng::Stream::Policy);
    }

    fn decide(&mut self, ctx: &DecisionContext<'_>) -> Decision {
        let space = &ctx.env.spec().action;
        let mut action = Vec::with_capacity(space.nvec.len());
        for (k, &n) in space.nvec.iter().enumerate() {
            self.mask.resize(n, false);
            if !ctx.env.conditional_mask(&action, &mut self.mask) {
                let off = space.mask_offset(k);
                self.mask.copy_from_slice(&ctx.mask[off..off + n]);
            }
            let legal = self.mask.iter().filter(|&&b| b).count();
            assert!(legal > 0, "component {k} ({}) has no legal value", space.names[k]);
            let pick = self.rng.random_range(0..legal);
            let value = self.mask.iter().enumerate().filter(|(_, b)| **b).nth(pick).map_or(0, |(i, _)| i);
            action.push(value);
        }
        Decision::Action(action)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_grammar() {
        let s = PolicySpec::parse("fixed-split:12/8", &[]).unwrap();
        assert_eq!(s.kind, PolicyKind::FixedSplit { layer: 12, precision: Precision::Bits8 });
        assert_eq!(s.label, "fixed-split:12/8");
        let s = PolicySpec::parse("ppo=ckpt:runs/a/step_10", &[]).unwrap();
        assert_eq!(s.label, "ppo");
        assert_eq!(s.kind, PolicyKind::Checkpoint { path: "runs/a/step_10".into() });
        let s = PolicySpec::parse("neurosurgeon:energy", &["neurosurgeon"]).unwrap();
        assert_eq!(s.kind, PolicyKind::Named { name: "neurosurgeon".into(), arg: Some("energy".into()) });
        let list = PolicySpec::parse_list("cloud-only, edge-only,random", &[]).unwrap();
        assert_eq!(list.len(), 3);
    }

    #[test]
    fn spec_errors_say_what_is_allowed() {
        let e = PolicySpec::parse("cloud-onyl", &["neurosurgeon"]).unwrap_err().to_string();
        assert!(
            e.contains("unknown policy `cloud-onyl`") && e.contains("neurosurgeon") && e.contains("ckpt:PATH"),
            "{e}"
        );
        let e = PolicySpec::parse("fixed-split:x", &[]).unwrap_err().to_string();
        assert!(e.contains("not a whole number"), "{e}");
        let e = PolicySpec::parse("fixed-split:3/5", &[]).unwrap_err().to_string();
        assert!(e.contains("16, 8 or 4"), "{e}");
        assert!(PolicySpec::parse("random:3", &[]).is_err());
        assert!(PolicySpec::parse("ckpt:", &[]).is_err());
        assert!(PolicySpec::parse_list("cloud-only,,random", &[]).is_err());
    }
}
