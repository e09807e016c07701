//! The report's numbers against a hand computation: a tiny deterministic scenario (periodic
//! arrivals, fixed 64/64-token requests, a constant 10 Mbit/s link with 20 ms one-way latency,
//! no loss, failures or background load), on which cloud-only and edge-only latencies, edge
//! energies and every time-average drift-plus-penalty term follow from the presets alone.

use splitwise_env::policy::{CloudOnly, EdgeOnly, Policy};
use splitwise_env::scenario::{NoTraces, Scenario};
use splitwise_eval::report::{self, Header};
use splitwise_eval::runner::{self, EvalConfig, PolicyEntry, PolicyRole, ScenarioInput, SourceKind};
use std::sync::Arc;

/// GPT-2 Medium on a Jetson Orin NX next to an idle A100 (the env's hand-checked calm scenario)
/// with one request every 10 s from t = 0.5 s: 4 requests per 40-slot episode, each served
/// alone (no queueing: the slowest plan takes < 1 s).
const TINY: &str = r#"
    version = 1
    name = "tiny"
    description = "hand-computable: periodic arrivals, fixed lengths, constant link"
    [model]
    preset = "gpt2-medium"
    [edge]
    preset = "jetson-orin-nx-16gb"
    [cloud]
    preset = "a100-80gb-sxm"
    [link.rate]
    model = "rate"
    [link.rate.process]
    kind = "constant"
    bandwidth_bps = 10e6
    [link.snr]
    mean_db = 60.0
    ar_coefficient_per_s = 0.5
    sigma_db = 0.0
    nakagami_m = 100.0
    [link.latency]
    one_way_s = 0.02
    jitter_s = 0.0
    [link.transport]
    mode = "reliable"
    packet_loss_threshold_db = -40.0
    [workload]
    [workload.arrivals]
    kind = "periodic"
    interval_s = 10.0
    offset_s = 0.5
    [workload.prompt_tokens]
    median_tokens = 64
    sigma = 0.0
    min_tokens = 64
    max_tokens = 64
    [workload.output_tokens]
    median_tokens = 64
    sigma = 0.0
    min_tokens = 64
    max_tokens = 64
    [serving]
    episode_slots = 40
    [actions]
    mode = "layer-split"
"#;

const EPISODES: u32 = 3;
const REQUESTS_PER_EPISODE: f64 = 4.0;
const SLOTS: f64 = 40.0;

fn roofline(flops: f64, bytes: f64, peak: f64, eta_c: f64, bw: f64, eta_m: f64, launch: f64) -> f64 {
    (flops / (eta_c * peak)).max(bytes / (eta_m * bw)) + launch
}

/// GPT-2 Medium: d = 1024, 16 heads of 64, d_ff = 4096, 24 layers, vocab 50257 (tied), FP16.
const D: f64 = 1024.0;
const ATTN_PARAMS: f64 = 4.0 * D * D + 4.0 * D + 2.0 * D; // Q, K, V, O + biases + LN
const FFN_PARAMS: f64 = 8.0 * D * D + 5.0 * D + 2.0 * D; // up, down + biases + LN
const LM_PARAMS: f64 = 50257.0 * D + 2.0 * D; // tied LM head + final LN

/// One forward pass over `n` tokens with `ctx` cached tokens on a device with the given
/// roofline (the env's partition test spells out each term): attention FLOPs 4·64 per
/// (query, key) pair per head, K/V reads of (ctx + n) tokens, activation traffic per head,
/// FFN and LM head.
fn pass(device: &dyn Fn(f64, f64) -> f64, n: f64, ctx: f64) -> f64 {
    let pairs = n * ctx + n * (n + 1.0) / 2.0;
    let keys = ctx + n;
    let heads = device(
        2.0 * ATTN_PARAMS * n + 4.0 * 64.0 * 16.0 * pairs,
        2.0 * ATTN_PARAMS + 2.0 * 2.0 * D * keys + 16.0 * 2.0 * (64.0 + D) * n,
    );
    let ffn = device(2.0 * FFN_PARAMS * n, 2.0 * FFN_PARAMS + 4.0 * (D + 4096.0) * n);
    24.0 * (heads + ffn) + device(2.0 * LM_PARAMS, 2.0 * LM_PARAMS + 2.0 * (D + 50257.0))
}

/// A100: 312 TFLOP/s × 0.5, 2039 GB/s × 0.8, 10 µs per launch.
fn a100(flops: f64, bytes: f64) -> f64 {
    roofline(flops, bytes, 312e12, 0.5, 2039e9, 0.8, 10e-6)
}

/// Jetson Orin NX: 15 TFLOP/s FP16 × 0.5, 102.4 GB/s × 0.8, 20 µs per launch.
fn jetson(flops: f64, bytes: f64) -> f64 {
    roofline(flops, bytes, 15e12, 0.5, 102.4e9, 0.8, 20e-6)
}

/// Cloud-only: prompt ids up (64 × 4 B), prefill, 63 decode steps at the mean context
/// 64 + 32 = 96, the stream's last token down (4 B); each transfer 20 ms + bytes/10 Mbit/s.
fn cloud_only_latency_s() -> f64 {
    let link = |bytes: f64| 0.02 + bytes * 8.0 / 10e6;
    link(256.0) + pass(&a100, 64.0, 0.0) + 63.0 * pass(&a100, 1.0, 96.0) + link(4.0)
}

/// Cloud-only edge energy: radio sends the prompt at 2 W, receives the last token at 1 W, the
/// Jetson idles at 5 W the rest of the request.
fn cloud_only_energy_j(latency_s: f64) -> f64 {
    let (tx, rx) = (256.0 * 8.0 / 10e6, 32.0 / 10e6);
    2.0 * tx + 1.0 * rx + 5.0 * (latency_s - tx - rx)
}

/// Edge-only: the same passes on the Jetson, nothing crosses the link.
fn edge_only_latency_s() -> f64 {
    pass(&jetson, 64.0, 0.0) + 63.0 * pass(&jetson, 1.0, 96.0)
}

/// Loading all weights once (the episode starts cloud-only-resident): 354.8 M parameters
/// (embedding 50257·1024 + 1024·1024 positions, 24 layers, final LN) × 2 B at 2 GB/s, at the
/// Jetson's active 20 W.
fn edge_only_switch_energy_j() -> f64 {
    let params = 50257.0 * D + 1024.0 * D + 24.0 * (ATTN_PARAMS + FFN_PARAMS) + 2.0 * D;
    20.0 * params * 2.0 / 2e9
}

fn tiny() -> ScenarioInput {
    ScenarioInput {
        source: "tiny.toml".into(),
        source_kind: SourceKind::ScenarioFile,
        scenario: Arc::new(Scenario::from_toml(TINY, &NoTraces).unwrap()),
    }
}

fn entry(label: &str, role: PolicyRole, make: fn() -> Box<dyn Policy>) -> PolicyEntry {
    PolicyEntry { label: label.into(), spec: label.into(), role, factory: Box::new(move |_| Ok(make())) }
}

fn evaluate() -> runner::Evaluation {
    let entries = vec![
        entry("cloud-only", PolicyRole { cloud_only: true, ..PolicyRole::default() }, || Box::new(CloudOnly)),
        entry("edge-only", PolicyRole::default(), || Box::new(EdgeOnly)),
    ];
    let prepared = runner::prepare(vec![tiny()], entries, EvalConfig::new(EPISODES, 11)).unwrap();
    assert_eq!(prepared.total_episodes(), 2 * u64::from(EPISODES));
    let mut calls = 0;
    let eval = prepared.run(&mut |_| calls += 1).unwrap();
    assert_eq!(calls, 2 * EPISODES, "one progress call per episode");
    eval
}

fn close(a: f64, b: f64, rel: f64) -> bool {
    (a - b).abs() <= rel * b.abs().max(1e-12)
}

#[test]
fn report_numbers_match_the_hand_computation() {
    let eval = evaluate();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("tiny-eval");
    let header = Header { command: "splitwise eval (test)".into(), version: "test".into() };
    let written = report::write_outputs(&eval, &header, &out).unwrap();
    assert_eq!(written.dir, out);

    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("metrics.json")).unwrap()).unwrap();
    let sc = &json["scenarios"][0];
    assert_eq!(sc["name"], "tiny");
    assert_eq!(sc["source_kind"], "scenario-file");
    assert_eq!(sc["common_random_numbers_verified"], true);
    assert_eq!(sc["references"]["cloud_only"], "cloud-only");
    let row = |label: &str| sc["rows"].as_array().unwrap().iter().find(|r| r["label"] == label).unwrap().clone();
    let metric = |r: &serde_json::Value, k: &str| r["metrics"][k]["mean"].as_f64().unwrap_or(f64::NAN);
    let ci = |r: &serde_json::Value, k: &str| r["metrics"][k]["ci95"].as_f64().unwrap_or(f64::NAN);

    let (cloud, edge) = (row("cloud-only"), row("edge-only"));
    let lat_c = cloud_only_latency_s();
    let lat_e = edge_only_latency_s();
    // Sanity of the hand numbers themselves: ≈ 41 ms of link + ≈ 0.9 ms per decode step in the
    // cloud; ≈ 10 ms per decode step on the Jetson (25 MB of weights per layer at 82 GB/s).
    assert!(lat_c > 0.04 && lat_c < 0.11, "{lat_c}");
    assert!(lat_e > 0.5 && lat_e < 1.0, "{lat_e}");

    for (r, lat) in [(&cloud, lat_c), (&edge, lat_e)] {
        assert_eq!(metric(r, "served"), REQUESTS_PER_EPISODE);
        assert_eq!(metric(r, "arrivals"), REQUESTS_PER_EPISODE);
        // Every request sees the same conditions: the mean is exact, the HdrHistogram
        // quantiles are within its 3 significant digits (10⁻³ relative).
        assert!(close(metric(r, "latency_mean_s"), lat, 1e-9), "{} vs hand {lat}", metric(r, "latency_mean_s"));
        for q in ["latency_p50_s", "latency_p95_s", "latency_p99_s"] {
            assert!(close(metric(r, q), lat, 1e-3), "{q}: {} vs hand {lat}", metric(r, q));
        }
        // Identical episodes: the interval over episodes has zero width.
        assert!(ci(r, "latency_mean_s").abs() < 1e-12);
        assert_eq!(metric(r, "backlog_mean"), 0.0, "requests never wait for a slot boundary");
        assert_eq!(metric(r, "dropped"), 0.0);
        assert_eq!(metric(r, "recoveries"), 0.0);
        assert_eq!(metric(r, "accuracy_loss_mean"), 0.0, "no boundary tensor crosses the link");
    }

    // Edge energy per request.
    let e_c = cloud_only_energy_j(lat_c);
    assert!(
        close(metric(&cloud, "energy_per_request_j"), e_c, 1e-9),
        "{} vs {e_c}",
        metric(&cloud, "energy_per_request_j")
    );
    // Edge-only: 20 W for the whole request, plus the one-off weight load shared by 4 requests.
    let e_e = 20.0 * lat_e + edge_only_switch_energy_j() / REQUESTS_PER_EPISODE;
    assert!(
        close(metric(&edge, "energy_per_request_j"), e_e, 1e-9),
        "{} vs {e_e}",
        metric(&edge, "energy_per_request_j")
    );

    // Time averages per slot (scenario defaults: w_L 1, w_E 0.5, scales 1 s and 10 J; no
    // budgets, so Z_E = Z_A = 0; the queue is empty at every slot end, so the drift is 0 and
    // V = V_max = 10): latency term = 4·lat/40, energy term = 0.5·(Σ energy)/10/40,
    // drift-plus-penalty = 0 + 10·p.
    for (r, lat, energy_sum) in [
        (&cloud, lat_c, REQUESTS_PER_EPISODE * e_c),
        (&edge, lat_e, REQUESTS_PER_EPISODE * 20.0 * lat_e + edge_only_switch_energy_j()),
    ] {
        let latency_term = REQUESTS_PER_EPISODE * lat / SLOTS;
        let energy_term = 0.5 * energy_sum / 10.0 / SLOTS;
        let penalty = latency_term + energy_term;
        assert!(close(metric(r, "latency_term"), latency_term, 1e-9), "{}", metric(r, "latency_term"));
        assert!(close(metric(r, "energy_term"), energy_term, 1e-9), "{}", metric(r, "energy_term"));
        assert_eq!(metric(r, "accuracy_term"), 0.0);
        assert_eq!(metric(r, "cloud_cost_term"), 0.0);
        assert_eq!(metric(r, "drop_term"), 0.0);
        assert!(close(metric(r, "penalty"), penalty, 1e-9));
        assert_eq!(metric(r, "drift"), 0.0);
        assert_eq!(metric(r, "lyapunov_v"), 10.0);
        assert!(close(metric(r, "drift_plus_penalty"), 10.0 * penalty, 1e-9));
    }

    // Ratios against cloud-only, paired per episode (identical episodes: exact ratios).
    let ratio = |r: &serde_json::Value, m: &str| {
        r["ratios"].as_array().unwrap().iter().find(|x| x["metric"] == m && x["reference"] == "cloud-only").unwrap()["stat"]["mean"]
            .as_f64()
            .unwrap()
    };
    assert!(close(ratio(&edge, "latency_mean_s"), lat_e / lat_c, 1e-9));
    assert!(close(ratio(&edge, "energy_per_request_j"), e_e / e_c, 1e-9));
    assert!(close(ratio(&cloud, "latency_mean_s"), 1.0, 1e-12));

    // per_request.csv: one row per served request with the hand latency.
    let mut rd = csv::Reader::from_path(out.join("per_request.csv")).unwrap();
    let headers = rd.headers().unwrap().clone();
    let col = |name: &str| headers.iter().position(|h| h == name).unwrap();
    let rows: Vec<csv::StringRecord> = rd.records().map(|r| r.unwrap()).collect();
    assert_eq!(rows.len(), 2 * EPISODES as usize * 4);
    for r in &rows {
        let lat: f64 = r[col("latency_s")].parse().unwrap();
        let hand = if &r[col("policy")] == "cloud-only" { lat_c } else { lat_e };
        assert!(close(lat, hand, 1e-9), "{lat} vs {hand}");
        let arrival: f64 = r[col("arrival_s")].parse().unwrap();
        assert!(((arrival - 0.5) / 10.0 - ((arrival - 0.5) / 10.0).round()).abs() < 1e-9, "periodic: {arrival}");
    }

    // report.md states the same numbers, and each Lyapunov quantity separately.
    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    let stat =
        |r: &serde_json::Value, k: &str| report::Stat { mean: metric(r, k), ci95: ci(r, k), n: EPISODES as usize };
    for k in ["latency_mean_s", "energy_per_request_j", "drift_plus_penalty", "latency_term", "energy_term"] {
        let cell = report::fmt_stat(&stat(&edge, k), 1.0);
        assert!(md.contains(&cell), "report.md lacks {k} = {cell}");
    }
    for heading in [
        "latency term",
        "energy term",
        "accuracy term",
        "cloud-cost term",
        "drop term",
        "penalty p",
        "Δ + V·p",
        "mean backlog",
    ] {
        assert!(md.contains(heading), "report.md lacks the column `{heading}`");
    }
    assert!(md.contains("common random numbers verified"));
    assert!(md.contains("Note on discounting"));
    for f in ["latency_cdf", "backlog", "split_vs_bandwidth", "energy_latency"] {
        for ext in ["png", "svg"] {
            let p = out.join("plots/tiny").join(format!("{f}.{ext}"));
            assert!(std::fs::metadata(&p).map(|m| m.len() > 1000).unwrap_or(false), "{} missing or empty", p.display());
        }
    }
}

#[test]
fn identical_seeds_give_identical_reports() {
    let a = report::metrics_json(&evaluate(), &Header { command: "x".into(), version: "v".into() }).unwrap();
    let b = report::metrics_json(&evaluate(), &Header { command: "x".into(), version: "v".into() }).unwrap();
    // Wall-clock fields differ run to run; everything else is the same.
    let strip = |s: &str| {
        let mut v: serde_json::Value = serde_json::from_str(s).unwrap();
        for row in v["scenarios"][0]["rows"].as_array_mut().unwrap() {
            for m in row["members"].as_array_mut().unwrap() {
                m["wall_s"] = serde_json::Value::Null;
                m["episodes_per_s"] = serde_json::Value::Null;
            }
        }
        v
    };
    assert_eq!(strip(&a), strip(&b));
}
