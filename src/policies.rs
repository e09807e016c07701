//! Resolving policy specs (the grammar of `splitwise_env::policy`) into policies: the trivial
//! ones of the env crate now; baselines of the eval crate and checkpoints plug in here.

use anyhow::{Result, bail};
use splitwise_env::policy::{Policy, PolicySpec};

/// Names resolved here beyond the env crate's trivial policies.
pub const EXTRA_NAMES: &[&str] = &[];

pub fn build(spec_text: &str, seed: u64) -> Result<Box<dyn Policy>> {
    let spec = PolicySpec::parse(spec_text, EXTRA_NAMES)?;
    match spec.build_trivial(seed) {
        Some(p) => Ok(p),
        None => bail!("policy `{spec_text}` cannot be built by this command yet"),
    }
}
