//! `splitwise train --set KEY=VALUE`: one field of the training config changed from the command
//! line (a dotted path into the TOML tree, the value in TOML syntax, a bare word as a string),
//! so a sweep (Ray Tune, a shell loop) runs one config file with different hyperparameters
//! without writing files: `--set agent.learning_rate=1e-4 --set training.total_steps=50_000`.
//! The changed config is validated like the file (unknown fields, ranges), and the run folder's
//! resolved `config.toml` records the values used.

use anyhow::{Result, anyhow, bail};
use std::path::Path;

/// Most `--set` flags one command takes (a sweep sets a handful).
pub const MAX_SETS: usize = 64;

/// A value in TOML syntax (`1e-4`, `true`, `[64, 64]`, `"x"`), or a bare word as a string
/// (`mode=layer-split`).
fn value(text: &str) -> toml::Value {
    toml::from_str::<toml::Table>(&format!("v = {text}"))
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(text.to_string()))
}

/// `text` (the config read from `origin`) with every `KEY=VALUE` of `sets` applied, as TOML.
pub fn apply(text: &str, origin: &Path, sets: &[String]) -> Result<String> {
    if sets.is_empty() {
        return Ok(text.to_string());
    }
    if sets.len() > MAX_SETS {
        bail!("{} --set flags: at most {MAX_SETS}", sets.len());
    }
    let mut doc: toml::Table =
        toml::from_str(text).map_err(|e| anyhow!("{}: {}", origin.display(), e.to_string().trim_end()))?;
    for set in sets {
        let (key, raw) = set
            .split_once('=')
            .ok_or_else(|| anyhow!("--set {set:?}: expected KEY=VALUE, e.g. agent.learning_rate=1e-4"))?;
        let path: Vec<&str> = key.trim().split('.').map(str::trim).collect();
        if path.iter().any(|p| p.is_empty()) {
            bail!("--set {set:?}: {key:?} is not a dotted field path (e.g. agent.learning_rate)");
        }
        let (last, parents) = path.split_last().expect("split yields at least one part");
        let mut table = &mut doc;
        for (depth, part) in parents.iter().enumerate() {
            let entry = table.entry(part.to_string()).or_insert_with(|| toml::Value::Table(toml::Table::new()));
            table = entry
                .as_table_mut()
                .ok_or_else(|| anyhow!("--set {set:?}: {} is a value, not a table", path[..=depth].join(".")))?;
        }
        if table.get(*last).is_some_and(toml::Value::is_table) {
            bail!("--set {set:?}: {key} is a table; set one of its fields (e.g. {key}.<field>=...)");
        }
        table.insert(last.to_string(), value(raw.trim()));
    }
    toml::to_string(&doc).map_err(|e| anyhow!("--set: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(text: &str, path: &[&str]) -> toml::Value {
        let doc: toml::Table = toml::from_str(text).unwrap();
        let mut v = toml::Value::Table(doc);
        for p in path {
            v = v.get(p).unwrap().clone();
        }
        v
    }

    #[test]
    fn values_are_typed_like_toml_and_bare_words_are_strings() {
        let base = "[agent]\nkind = \"ppo\"\nlearning_rate = 3e-4\n[env]\nkind = \"partition\"\n";
        let sets = [
            "agent.learning_rate=1e-4",
            "agent.actor_hidden=[64, 64]",
            "agent.normalize_obs = false",
            "env.overrides.mode=layer-split",
            "training.total_steps=50_000",
        ]
        .map(String::from);
        let out = apply(base, Path::new("c.toml"), &sets).unwrap();
        assert_eq!(get(&out, &["agent", "learning_rate"]).as_float(), Some(1e-4));
        assert_eq!(get(&out, &["agent", "actor_hidden"]).as_array().unwrap().len(), 2);
        assert_eq!(get(&out, &["agent", "normalize_obs"]).as_bool(), Some(false));
        assert_eq!(get(&out, &["env", "overrides", "mode"]).as_str(), Some("layer-split"));
        assert_eq!(get(&out, &["training", "total_steps"]).as_integer(), Some(50_000));
        assert_eq!(get(&out, &["agent", "kind"]).as_str(), Some("ppo"));
    }

    #[test]
    fn malformed_sets_name_the_flag() {
        let base = "[agent]\nkind = \"ppo\"\n";
        let err = |s: &str| apply(base, Path::new("c.toml"), &[s.to_string()]).unwrap_err().to_string();
        assert!(err("agent.learning_rate").contains("expected KEY=VALUE"), "{}", err("agent.learning_rate"));
        assert!(err("agent..x=1").contains("not a dotted field path"));
        assert!(err("agent=1").contains("is a table"));
        assert!(err("agent.kind.x=1").contains("agent.kind is a value"));
    }
}
