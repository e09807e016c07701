//! End-to-end tests of `splitwise simulate`: every shipped scenario runs and prints plausible
//! numbers, and invalid scenario files are rejected with an error naming the file, the field,
//! the value and what is allowed.

use std::path::{Path, PathBuf};
use std::process::Command;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_splitwise"))
}

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

/// Runs simulate and returns the table as (metric, value) pairs.
fn simulate(config: &Path, policy: &str, steps: u32) -> Vec<(String, String)> {
    let out = bin()
        .args(["simulate", "--config"])
        .arg(config)
        .args(["--policy", policy, "--steps", &steps.to_string(), "--seed", "3"])
        .output()
        .expect("the binary runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "simulate failed: {}\n{stdout}", String::from_utf8_lossy(&out.stderr));
    stdout
        .lines()
        .skip(1)
        .filter_map(|l| {
            let (k, v) = l.split_at(l.rfind("  ")?);
            Some((k.trim().to_string(), v.trim().to_string()))
        })
        .collect()
}

fn number(table: &[(String, String)], key: &str) -> f64 {
    let v = &table.iter().find(|(k, _)| k == key).unwrap_or_else(|| panic!("no row {key}")).1;
    v.split_whitespace().next().unwrap().parse().unwrap_or_else(|_| panic!("{key} = {v} is not a number"))
}

#[test]
fn every_shipped_scenario_simulates_with_plausible_numbers() {
    for name in ["jetson-llama7b-lte", "pi5-gpt2xl-wifi", "s23-llama13b-5g-fading"] {
        let t = simulate(&repo(&format!("configs/{name}.toml")), "cloud-only", 600);
        let served = number(&t, "requests served");
        let arrivals = number(&t, "arrivals");
        assert!(served > 10.0 && served <= arrivals, "{name}: {served} of {arrivals}");
        let (p50, p95, p99) =
            (number(&t, "latency P50 (s)"), number(&t, "latency P95 (s)"), number(&t, "latency P99 (s)"));
        assert!(0.0 < p50 && p50 <= p95 && p95 <= p99, "{name}: {p50} {p95} {p99}");
        // Idle edge power alone over the mean latency bounds the energy per request from below.
        assert!(number(&t, "edge energy / request (J)") > 0.5 * number(&t, "latency mean (s)"), "{name}");
        assert_eq!(number(&t, "slots"), 600.0);
    }
}

#[test]
fn edge_only_costs_more_energy_than_cloud_only_on_the_pi() {
    let config = repo("configs/pi5-gpt2xl-wifi.toml");
    let cloud = simulate(&config, "cloud-only", 800);
    let edge = simulate(&config, "edge-only", 800);
    assert!(number(&edge, "edge energy / request (J)") > 3.0 * number(&cloud, "edge energy / request (J)"));
    assert!(number(&edge, "latency mean (s)") > number(&cloud, "latency mean (s)"));
}

/// Writes the Jetson scenario with one line replaced and returns the error simulate prints.
fn error_for(replace: &str, with: &str) -> String {
    let text = std::fs::read_to_string(repo("configs/jetson-llama7b-lte.toml")).unwrap();
    assert!(text.contains(replace), "the fixture line `{replace}` exists");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    std::fs::write(&path, text.replacen(replace, with, 1)).unwrap();
    let out = bin().args(["simulate", "--config"]).arg(&path).args(["--steps", "1"]).output().unwrap();
    assert!(!out.status.success(), "an invalid config must fail");
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(err.contains("bad.toml"), "the error names the file: {err}");
    err
}

#[test]
fn invalid_scenarios_name_file_field_value_and_rule() {
    let e = error_for("mean_bps = 20e6", "mean_bps = -20e6");
    assert!(e.contains("link.rate.process.regimes[0].mean_bps = -20000000"), "{e}");
    let e = error_for("nakagami_m = 1.5", "nakagami_m = 0.3");
    assert!(e.contains("link.snr.nakagami_m = 0.3") && e.contains("0.5"), "{e}");
    let e = error_for("preset = \"llama-7b\"", "preset = \"llama-70b\"");
    assert!(e.contains("llama-70b") && e.contains("llama-13b"), "unknown preset lists the allowed ones: {e}");
    let e = error_for("window_layers = 4", "window_layers = 40");
    assert!(e.contains("actions.window_layers = 40") && e.contains("1..=32"), "{e}");
    let e = error_for("head_step = 8", "head_step = 5");
    assert!(e.contains("actions.head_step = 5") && e.contains("divide"), "{e}");
    let e = error_for("jitter_s = 0.010", "jitter_s = 0.010\nbogus = 1");
    assert!(e.contains("bogus"), "unknown fields are rejected: {e}");
    let e = error_for("version = 1", "version = 2");
    assert!(e.contains("version = 2") && e.contains("version 1"), "{e}");
    let e = error_for("levels = [0.3, 0.9]", "levels = [0.3, 1.5]");
    assert!(e.contains("cloud_load.levels[1] = 1.5"), "{e}");
}

#[test]
fn a_missing_trace_is_reported_with_its_path() {
    let text = std::fs::read_to_string(repo("configs/jetson-llama7b-lte.toml")).unwrap();
    let start = text.find("[link.rate.process]").unwrap();
    let end = text.find("[link.snr]").unwrap();
    let traced = format!(
        "{}[link.rate.process]\nkind = \"trace\"\npath = \"traces/missing.csv\"\nformat = \"csv\"\n\n{}",
        &text[..start],
        &text[end..]
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("traced.toml");
    std::fs::write(&path, traced).unwrap();
    let out = bin().args(["simulate", "--config"]).arg(&path).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("traces/missing.csv"), "{err}");
    // With the trace present (time_s, bandwidth_bps), the scenario runs.
    std::fs::create_dir_all(dir.path().join("traces")).unwrap();
    std::fs::write(dir.path().join("traces/missing.csv"), "time_s,bandwidth_bps\n0,2e7\n30,3e6\n60,1e7\n").unwrap();
    let out = bin().args(["simulate", "--config"]).arg(&path).args(["--steps", "200"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn unknown_policy_lists_the_allowed_names() {
    let out = bin()
        .args(["simulate", "--config"])
        .arg(repo("configs/jetson-llama7b-lte.toml"))
        .args(["--policy", "clod-only"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("clod-only") && err.contains("cloud-only"), "{err}");
}
