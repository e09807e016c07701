//! What an environment is built from: a kind (`partition`, `cartpole`, `als`), a scenario (a TOML
//! path or a shipped name) with the training config's `[env.overrides]` fields, or ALS's
//! parameters. Errors read like the CLI's: the file (or shipped name), the field, the value and
//! what is allowed.

use crate::erased::{DynEnv, DynVecEnv};
use anyhow::{Context, Result, anyhow, bail};
use splitwise_env::als::{AlsConfig, AlsEnv};
use splitwise_env::cartpole::CartPole;
use splitwise_env::partition::PartitionEnv;
use splitwise_env::scenario::{Scenario, ScenarioConfig, ScenarioOverrides, TraceSource};
use splitwise_env::vector::{Autoreset, MAX_MEMBERS, VecEnv};
use splitwise_eval::scenario_file;
use std::path::Path;
use std::sync::Arc;

pub mod shipped {
    include!(concat!(env!("OUT_DIR"), "/shipped.rs"));
}

/// The environment kinds the bindings build (`kind=` in Python).
pub const KINDS: &[(&str, &str)] = &[
    ("partition", "a partition scenario: a TOML file or a shipped name (splitwise_gym.SCENARIOS)"),
    ("cartpole", "CartPole-v1, identical to Gymnasium's"),
    ("als", "Adaptive Layer Splitting's environment (its script's parameters, overridable)"),
];

/// A resolved environment description: building members from it cannot fail.
#[derive(Clone)]
pub enum EnvDesc {
    Partition(Arc<Scenario>),
    CartPole,
    Als(AlsConfig),
}

/// Traces of the shipped scenarios, compiled in.
struct ShippedTraces;

impl TraceSource for ShippedTraces {
    fn read(&self, path: &str) -> Result<String, String> {
        shipped::TRACES
            .iter()
            .find(|(p, _)| *p == path)
            .map(|(_, text)| (*text).to_string())
            .ok_or_else(|| format!("no shipped trace {path}"))
    }
}

pub fn shipped_names() -> Vec<&'static str> {
    shipped::SCENARIOS.iter().map(|(n, _)| *n).collect()
}

fn overrides(json: Option<&str>) -> Result<ScenarioOverrides> {
    let Some(json) = json else { return Ok(ScenarioOverrides::default()) };
    serde_json::from_str(json).map_err(|e| {
        let allowed: Vec<String> =
            ScenarioOverrides::FIELDS.iter().map(|(name, takes)| format!("{name}: {takes}")).collect();
        anyhow!("overrides: {e} (allowed, the fields of a training config's [env.overrides]: {})", allowed.join("; "))
    })
}

/// A scenario file (a path that exists, or one ending in `.toml`) or a shipped name, with
/// `overrides` applied before validation.
pub fn scenario(name_or_path: &str, overrides_json: Option<&str>) -> Result<Arc<Scenario>> {
    let ov = overrides(overrides_json)?;
    let path = Path::new(name_or_path);
    if path.exists() || name_or_path.ends_with(".toml") {
        let text = scenario_file::read_text(path).with_context(|| format!("cannot read scenario {name_or_path}"))?;
        let mut config = ScenarioConfig::from_toml(&text).map_err(|e| scenario_file::describe(path, e))?;
        ov.apply(&mut config);
        return scenario_file::resolve(config, path);
    }
    let Some((_, text)) = shipped::SCENARIOS.iter().find(|(n, _)| *n == name_or_path) else {
        bail!(
            "scenario {name_or_path:?} is neither a file nor a shipped scenario; shipped: {}",
            shipped_names().join(", ")
        );
    };
    let origin = format!("configs/{name_or_path}.toml");
    let mut config = ScenarioConfig::from_toml(text).map_err(|e| scenario_file::describe(Path::new(&origin), e))?;
    ov.apply(&mut config);
    scenario_file::resolve_from(config, Path::new(&origin), &ShippedTraces)
}

/// Parses a kind and its arguments into a description.
pub fn describe(kind: &str, scenario_arg: Option<&str>, options_json: Option<&str>) -> Result<EnvDesc> {
    match kind {
        "partition" => {
            let name = scenario_arg.ok_or_else(|| {
                anyhow!("kind \"partition\" needs scenario= (a TOML path or one of: {})", shipped_names().join(", "))
            })?;
            Ok(EnvDesc::Partition(scenario(name, options_json)?))
        }
        "cartpole" => {
            if scenario_arg.is_some() || options_json.is_some() {
                bail!("kind \"cartpole\" takes no scenario and no options");
            }
            Ok(EnvDesc::CartPole)
        }
        "als" => {
            if scenario_arg.is_some() {
                bail!("kind \"als\" takes no scenario (its parameters are keyword options)");
            }
            let config: AlsConfig = match options_json {
                Some(json) => serde_json::from_str(json).map_err(|e| anyhow!("ALS options: {e}"))?,
                None => AlsConfig::default(),
            };
            if config.quality_csv.is_some() {
                bail!("ALS options: quality_csv = a file is read by the CLI; pass quality_table = {{...}} instead");
            }
            AlsEnv::new(config.clone()).map_err(|e| anyhow!("ALS options: {e}"))?;
            Ok(EnvDesc::Als(config))
        }
        other => bail!(
            "unknown environment kind {other:?}; allowed: {}",
            KINDS.iter().map(|(k, _)| *k).collect::<Vec<_>>().join(", ")
        ),
    }
}

fn als(config: &AlsConfig) -> AlsEnv {
    AlsEnv::new(config.clone()).expect("validated in describe")
}

pub fn single(desc: &EnvDesc) -> Box<dyn DynEnv> {
    match desc {
        EnvDesc::Partition(s) => Box::new(PartitionEnv::new(s.clone())),
        EnvDesc::CartPole => Box::new(CartPole::new()),
        EnvDesc::Als(c) => Box::new(als(c)),
    }
}

pub fn vector(desc: &EnvDesc, n: usize, autoreset: Autoreset) -> Result<Box<dyn DynVecEnv>> {
    if n == 0 || n > MAX_MEMBERS {
        bail!("num_envs = {n}: must be 1 to {MAX_MEMBERS} (each member is a full simulator)");
    }
    Ok(match desc {
        EnvDesc::Partition(s) => {
            Box::new(VecEnv::new((0..n).map(|_| PartitionEnv::new(s.clone())).collect()).with_autoreset(autoreset))
        }
        EnvDesc::CartPole => Box::new(VecEnv::new((0..n).map(|_| CartPole::new()).collect()).with_autoreset(autoreset)),
        EnvDesc::Als(c) => Box::new(VecEnv::new((0..n).map(|_| als(c)).collect()).with_autoreset(autoreset)),
    })
}
