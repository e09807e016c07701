//! Compiles the repository's shipped scenarios (`configs/*.toml` that are not training configs)
//! and the trace data under `configs/traces` into the module, so `make("jetson-llama7b-lte")`
//! works from an installed wheel with no checkout. Generated from the folder, not listed by
//! hand, so a new shipped scenario is picked up by the next build. The traces' README and
//! license travel with them (the Azure trace is CC-BY 4.0: a shipped slice keeps its
//! attribution): `splitwise_gym.NOTICES`.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            files(&p, out);
        } else {
            out.push(p);
        }
    }
}

fn main() {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let configs = manifest.join("..").join("configs");
    let configs = configs.canonicalize().unwrap_or(configs);
    println!("cargo:rerun-if-changed={}", configs.display());
    let mut all = Vec::new();
    files(&configs, &mut all);
    all.sort();
    let (mut scenarios, mut traces, mut notices) = (String::new(), String::new(), String::new());
    for path in &all {
        println!("cargo:rerun-if-changed={}", path.display());
        let rel = path.strip_prefix(&configs).expect("under configs").to_string_lossy().replace('\\', "/");
        let include = format!("include_str!({:?})", path.display().to_string());
        let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
        if !rel.contains('/') && ext == "toml" {
            let text = std::fs::read_to_string(path).unwrap_or_default();
            let training = text.lines().any(|l| matches!(l.trim(), "[agent]" | "[training]"));
            if !training {
                let stem = path.file_stem().and_then(|s| s.to_str()).expect("a file name");
                writeln!(scenarios, "    ({stem:?}, {include}),").unwrap();
            }
        } else if rel.starts_with("traces/") && ext == "csv" {
            writeln!(traces, "    ({rel:?}, {include}),").unwrap();
        } else if rel.starts_with("traces/") && (ext == "md" || ext == "txt") {
            writeln!(notices, "    ({rel:?}, {include}),").unwrap();
        }
    }
    let code = format!(
        "/// Shipped scenarios: (file stem, TOML text).\npub const SCENARIOS: &[(&str, &str)] = &[\n{scenarios}];\n\
         /// Trace files the shipped scenarios name: (path relative to configs/, text).\n\
         pub const TRACES: &[(&str, &str)] = &[\n{traces}];\n\
         /// The traces' READMEs and licenses: (path relative to configs/, text).\n\
         pub const NOTICES: &[(&str, &str)] = &[\n{notices}];\n"
    );
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("shipped.rs");
    std::fs::write(out, code).expect("write shipped.rs");
}
