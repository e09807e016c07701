//! Policy specs (the grammar of `splitwise_env::policy`) → the runner's entries: every spec this
//! crate can build (the env's trivial policies and the baselines of [`crate::baselines`]), the
//! report role of each, and the headroom rows every evaluation gets. A checkpoint (`ckpt:PATH`)
//! needs a learner, which this crate must not depend on: the caller passes a builder for it
//! (the app's burn loader; the Python bindings have none and refuse the spec).

use crate::baselines;
use crate::runner::{PolicyEntry, PolicyRole};
use anyhow::{Result, bail};
use splitwise_env::api::EnvSpec;
use splitwise_env::policy::{Policy, PolicyKind, PolicySpec};
use splitwise_env::scenario::Scenario;
use std::sync::Arc;

/// The headroom rows every evaluation gets unless told otherwise (or already listed): the best
/// static plan (tuned on other seeds) and the clairvoyant bound.
pub const HEADROOM_SPECS: [&str; 2] = ["best-fixed", "clairvoyant"];

/// `policies` with the headroom rows appended when missing.
pub fn with_headroom(policies: &str, no_headroom: bool) -> String {
    let mut text = policies.to_string();
    if no_headroom {
        return text;
    }
    let listed: Vec<&str> = policies.split(',').map(|s| s.split_once('=').map_or(s, |(_, b)| b).trim()).collect();
    for spec in HEADROOM_SPECS {
        if !listed.iter().any(|l| l.split(':').next() == Some(spec)) {
            if !text.trim().is_empty() {
                text.push(',');
            }
            text.push_str(spec);
        }
    }
    text
}

/// The report role of a parsed spec.
pub fn role(spec: &PolicySpec) -> PolicyRole {
    match &spec.kind {
        PolicyKind::CloudOnly => PolicyRole { cloud_only: true, static_plan: true, ..PolicyRole::default() },
        PolicyKind::EdgeOnly | PolicyKind::FixedSplit { .. } => {
            PolicyRole { static_plan: true, ..PolicyRole::default() }
        }
        PolicyKind::Named { name, .. } => PolicyRole {
            oracle: baselines::is_oracle(name),
            layer_wise: baselines::is_layer_wise(name),
            cloud_only: false,
            static_plan: baselines::is_static(name),
            clairvoyant: baselines::is_clairvoyant(name),
            learned: false,
        },
        PolicyKind::Checkpoint { .. } => PolicyRole { learned: true, ..PolicyRole::default() },
        PolicyKind::Random => PolicyRole::default(),
    }
}

/// Builds a spec that needs no learner: a trivial policy or a baseline. `Ok(None)` for a
/// checkpoint (the caller's to load).
pub fn build(spec: &PolicySpec, seed: u64, scenario: &Arc<Scenario>) -> Result<Option<Box<dyn Policy>>> {
    // The split is clamped at run time to what fits the edge memory, never to the model: a
    // layer beyond the model is a typo, not a plan.
    if let PolicyKind::FixedSplit { layer, .. } = spec.kind {
        let n = scenario.arch.n_layers;
        if layer > n {
            bail!(
                "policy {}: fixed-split layer {layer} is outside 0..={n} (layers on the edge; the scenario's \
                 model {} has {n})",
                spec.label,
                scenario.config.name
            );
        }
    }
    if let Some(p) = spec.build_trivial(seed) {
        return Ok(Some(p));
    }
    match &spec.kind {
        PolicyKind::Named { name, arg } => Ok(Some(baselines::build(name, arg.as_deref(), seed, scenario)?)),
        PolicyKind::Checkpoint { .. } => Ok(None),
        other => bail!("policy {other:?} cannot be built by this command"),
    }
}

/// Loads a checkpoint policy: `(path, label, env spec)` → the policy.
pub type CheckpointLoader = Arc<dyn Fn(&str, &str, &EnvSpec) -> Result<Box<dyn Policy>> + Send + Sync>;

/// Parses a comma-separated spec list into runner entries; `ckpt:` specs load through
/// `checkpoints` (an error naming the spec when `None`).
pub fn entries(text: &str, checkpoints: Option<CheckpointLoader>) -> Result<Vec<PolicyEntry>> {
    let specs = PolicySpec::parse_list(text, &baselines::extra_names())?;
    let texts: Vec<&str> = text.split(',').map(str::trim).collect();
    Ok(specs
        .into_iter()
        .zip(texts)
        .map(|(spec, spec_text)| {
            let role = role(&spec);
            let label = spec.label.clone();
            let checkpoints = checkpoints.clone();
            PolicyEntry {
                label,
                spec: spec_text.to_string(),
                role,
                factory: Box::new(move |ctx| match build(&spec, ctx.seed, ctx.scenario)? {
                    Some(policy) => Ok(policy),
                    None => match (&spec.kind, &checkpoints) {
                        (PolicyKind::Checkpoint { path }, Some(load)) => load(path, &spec.label, ctx.env_spec),
                        _ => bail!(
                            "policy `{}`: checkpoints (`ckpt:PATH`) need the splitwise CLI's learner; \
                             evaluate them with `splitwise eval`",
                            spec.label
                        ),
                    },
                }),
            }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headroom_rows_are_appended_once() {
        assert_eq!(with_headroom("cloud-only", false), "cloud-only,best-fixed,clairvoyant");
        assert_eq!(with_headroom("a=best-fixed:8,clairvoyant:4", false), "a=best-fixed:8,clairvoyant:4");
        assert_eq!(with_headroom("cloud-only", true), "cloud-only");
        assert_eq!(with_headroom("", false), "best-fixed,clairvoyant");
    }
}
