//! End-to-end tests of `splitwise eval`: a shipped scenario with trivial policies and baselines
//! gives a complete, self-consistent output folder (report, JSON, CSVs, PNG and SVG plots) in
//! which every policy saw the same arrivals and channel; a training config's checkpoints of
//! several seeds aggregate into one row; and bad input (unknown policy, missing checkpoint,
//! checkpoint of another observation layout, a foreign output folder, a CartPole config) is
//! refused with a clear error before any work.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

fn splitwise(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_splitwise")).current_dir(dir).args(args).output().expect("the binary runs")
}

fn ok(out: Output) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(out.status.success(), "command failed: {stderr}\n{}", String::from_utf8_lossy(&out.stdout));
    String::from_utf8_lossy(&out.stdout).to_string()
}

fn err(out: Output) -> String {
    assert!(!out.status.success(), "command must fail; stdout: {}", String::from_utf8_lossy(&out.stdout));
    String::from_utf8_lossy(&out.stderr).to_string()
}

fn json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())))
        .expect("valid JSON")
}

/// Rows of a CSV file as header → value maps (the files here have no quoted fields: labels
/// and specs in these tests contain no commas).
fn csv_rows(path: &Path) -> Vec<HashMap<String, String>> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut lines = text.lines();
    let headers: Vec<String> = lines.next().expect("a header line").split(',').map(String::from).collect();
    lines
        .map(|l| {
            let cells: Vec<&str> = l.split(',').collect();
            assert_eq!(cells.len(), headers.len(), "{l}");
            headers.iter().cloned().zip(cells.into_iter().map(String::from)).collect()
        })
        .collect()
}

#[test]
fn eval_writes_a_consistent_report_on_a_shipped_scenario() {
    let dir = tempfile::tempdir().unwrap();
    let config = repo("configs/jetson-llama7b-lte.toml");
    let policies = "cloud-only,edge-only,random,neurosurgeon,oracle-neurosurgeon,splitllm-dp";
    let stdout = ok(splitwise(
        dir.path(),
        &[
            "eval",
            "--config",
            config.to_str().unwrap(),
            "--policies",
            policies,
            "--episodes",
            "3",
            "--slots",
            "200",
            "--seed",
            "7",
            "--out",
            "out",
            "--no-headroom",
        ],
    ));
    let out = dir.path().join("out");
    assert!(stdout.contains("report: out/report.md"), "{stdout}");
    assert!(!stdout.contains("episodes ("), "no progress bar when stdout is not a terminal: {stdout}");
    for f in ["report.md", "metrics.json", "per_request.csv", "per_slot.csv"] {
        assert!(out.join(f).is_file(), "missing {f}");
    }
    for p in ["latency_cdf", "backlog", "split_vs_bandwidth", "energy_latency"] {
        for ext in ["png", "svg"] {
            let f = out.join(format!("plots/jetson-llama7b-lte/{p}.{ext}"));
            assert!(f.is_file() && std::fs::metadata(&f).unwrap().len() > 2000, "{} missing or empty", f.display());
        }
    }
    let png = std::fs::read(out.join("plots/jetson-llama7b-lte/latency_cdf.png")).unwrap();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    let svg = std::fs::read_to_string(out.join("plots/jetson-llama7b-lte/backlog.svg")).unwrap();
    assert!(svg.starts_with("<svg") && svg.contains("Backlog over time"), "SVG with its text");

    let m = json(&out.join("metrics.json"));
    assert_eq!(m["episodes"], 3);
    assert_eq!(m["seed"], 7);
    let sc = &m["scenarios"][0];
    assert_eq!(sc["source_kind"], "scenario-file");
    assert_eq!(sc["slots_per_episode"], 200);
    assert_eq!(sc["common_random_numbers_verified"], true);
    assert_eq!(sc["references"]["cloud_only"], "cloud-only");
    assert!(sc["references"]["best_layer_wise"] == "neurosurgeon", "{}", sc["references"]);
    let rows = sc["rows"].as_array().unwrap();
    let labels: Vec<&str> = rows.iter().map(|r| r["label"].as_str().unwrap()).collect();
    assert_eq!(labels, policies.split(',').collect::<Vec<_>>());
    let oracle: Vec<bool> = rows.iter().map(|r| r["oracle"].as_bool().unwrap()).collect();
    assert_eq!(oracle, [false, false, false, false, true, false]);

    // per_request.csv: one row per served request (failed ones flagged), as metrics.json counts.
    let requests = csv_rows(&out.join("per_request.csv"));
    for row in rows {
        let label = row["label"].as_str().unwrap();
        let member = &row["members"][0];
        let episodes = member["episodes"].as_array().unwrap();
        assert_eq!(episodes.len(), 3);
        let served: u64 = episodes.iter().map(|e| e["metrics"]["served"].as_u64().unwrap()).sum();
        let in_csv = requests.iter().filter(|r| r["policy"] == label).count() as u64;
        assert_eq!(in_csv, served, "{label}");
        assert_eq!(member["pooled"]["served"].as_u64().unwrap(), served, "{label}");
        // The row mean is the mean of the episodes.
        let lat: Vec<f64> = episodes.iter().map(|e| e["metrics"]["latency_mean_s"].as_f64().unwrap()).collect();
        let mean = row["metrics"]["latency_mean_s"]["mean"].as_f64().unwrap();
        assert!((mean - lat.iter().sum::<f64>() / 3.0).abs() < 1e-9, "{label}");
        // P50 ≤ P95 ≤ P99 and latencies positive.
        let q = |k: &str| row["metrics"][k]["mean"].as_f64().unwrap();
        assert!(0.0 < q("latency_p50_s") && q("latency_p50_s") <= q("latency_p95_s") + 1e-9, "{label}");
        assert!(q("latency_p95_s") <= q("latency_p99_s") + 1e-9, "{label}");
    }
    // Common random numbers: request k of episode e arrived at the same time with the same
    // lengths under every policy, and every slot had the same link rate and arrivals.
    let mut seen: HashMap<(String, String), (String, String, String)> = HashMap::new();
    for r in &requests {
        let key = (r["episode"].clone(), r["id"].clone());
        let value = (r["arrival_s"].clone(), r["n_in"].clone(), r["n_out"].clone());
        if let Some(v) = seen.get(&key) {
            assert_eq!(v, &value, "request {key:?} under {}", r["policy"]);
        } else {
            seen.insert(key, value);
        }
    }
    let slots = csv_rows(&out.join("per_slot.csv"));
    assert_eq!(slots.len(), 6 * 200, "episode 0 of every policy, slot by slot");
    let cloud: Vec<&HashMap<String, String>> = slots.iter().filter(|r| r["policy"] == "cloud-only").collect();
    for r in &slots {
        let c = cloud[r["slot"].parse::<usize>().unwrap()];
        assert_eq!((&r["rate_bps"], &r["arrivals"]), (&c["rate_bps"], &c["arrivals"]), "slot {}", r["slot"]);
    }
    // The policies did differ: edge-only keeps every layer on the edge, cloud-only none.
    let split = |p: &str| slots.iter().find(|r| r["policy"] == p).unwrap()["split_layer"].clone();
    assert_eq!((split("cloud-only").as_str(), split("edge-only").as_str()), ("0", "32"));

    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(md.contains("| oracle-neurosurgeon† |"), "oracle marked");
    assert!(md.contains("from the scenario file"));
    assert!(md.contains("mean latency ÷ cloud-only") && md.contains("mean latency ÷ best layer-wise"));
    assert!(md.contains("![plots/jetson-llama7b-lte/latency_cdf.png](plots/jetson-llama7b-lte/latency_cdf.png)"));

    // A second run replaces the earlier output folder.
    ok(splitwise(
        dir.path(),
        &[
            "eval",
            "--config",
            config.to_str().unwrap(),
            "--policies",
            "cloud-only",
            "--episodes",
            "1",
            "--slots",
            "20",
            "--out",
            "out",
        ],
    ));
    assert_eq!(json(&out.join("metrics.json"))["episodes"], 1);
    let leftovers: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(leftovers.is_empty(), "no temporary folders left: {leftovers:?}");
}

/// Two one-update smoke trainings (seeds 0 and 1) in a shared folder: (folder, run 0, run 1).
fn trained() -> &'static (tempfile::TempDir, PathBuf, PathBuf) {
    static RUNS: OnceLock<(tempfile::TempDir, PathBuf, PathBuf)> = OnceLock::new();
    RUNS.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let config = repo("configs/smoke.toml");
        for (seed, name) in [("0", "a"), ("1", "b")] {
            ok(Command::new(env!("CARGO_BIN_EXE_splitwise"))
                .current_dir(dir.path())
                .args(["train", "--config", config.to_str().unwrap(), "--stop-at-step", "64", "--seed", seed])
                .args(["--run-name", name])
                .output()
                .unwrap());
        }
        let (a, b) = (dir.path().join("checkpoints/a"), dir.path().join("checkpoints/b"));
        (dir, a, b)
    })
}

#[test]
fn checkpoints_of_several_seeds_aggregate_into_one_row() {
    let (_keep, a, b) = trained();
    let dir = tempfile::tempdir().unwrap();
    let policies = format!("cloud-only,ppo=ckpt:{},ppo=ckpt:{}", a.display(), b.display());
    ok(splitwise(
        dir.path(),
        &[
            "eval",
            "--config",
            repo("configs/smoke.toml").to_str().unwrap(),
            "--policies",
            &policies,
            "--episodes",
            "2",
            "--out",
            "out",
            "--no-headroom",
        ],
    ));
    let m = json(&dir.path().join("out/metrics.json"));
    let sc = &m["scenarios"][0];
    assert_eq!(sc["source_kind"], "training-config");
    assert_eq!(sc["slots_per_episode"], 64, "the training config's override of episode_slots");
    let rows = sc["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 2);
    let ppo = &rows[1];
    assert_eq!(ppo["label"], "ppo");
    assert_eq!(ppo["members"].as_array().unwrap().len(), 2);
    let across = &ppo["metrics"]["latency_mean_s"]["across_specs"];
    assert_eq!(across["n"], 2);
    let (lo, hi) = (across["min"].as_f64().unwrap(), across["max"].as_f64().unwrap());
    let mean = ppo["metrics"]["latency_mean_s"]["mean"].as_f64().unwrap();
    assert!(lo <= mean + 1e-9 && mean <= hi + 1e-9, "{lo} ≤ {mean} ≤ {hi}");
    let md = std::fs::read_to_string(dir.path().join("out/report.md")).unwrap();
    assert!(md.contains("training config (its resolved scenario)"));
    assert!(md.contains("Spread across the specs of one row"));
}

/// Runs eval expecting failure; checks that no output folder was created.
fn refused(dir: &Path, config: &Path, policies: &str) -> String {
    let e = err(splitwise(
        dir,
        &["eval", "--config", config.to_str().unwrap(), "--policies", policies, "--episodes", "1", "--out", "refused"],
    ));
    assert!(!dir.join("refused").exists(), "nothing written before the error: {e}");
    e
}

#[test]
fn bad_input_is_refused_before_any_work() {
    let dir = tempfile::tempdir().unwrap();
    let jetson = repo("configs/jetson-llama7b-lte.toml");
    // Unknown policy: the error lists what is allowed.
    let e = refused(dir.path(), &jetson, "cloud-only,neurosurgen");
    assert!(e.contains("unknown policy `neurosurgen`") && e.contains("neurosurgeon") && e.contains("ckpt:PATH"), "{e}");
    // Bad baseline argument.
    let e = refused(dir.path(), &jetson, "neurosurgeon:fast");
    assert!(e.contains("neurosurgeon") && e.contains("fast"), "{e}");
    // Missing checkpoint.
    let e = refused(dir.path(), &jetson, "cloud-only,ckpt:no/such/run");
    assert!(e.contains("no/such/run") && e.contains("does not exist"), "{e}");
    // A CartPole training config has no scenario.
    let e = refused(dir.path(), &repo("configs/cartpole-ppo.toml"), "cloud-only");
    assert!(e.contains("CartPole"), "{e}");
    // An output folder that is not an earlier evaluation is never replaced.
    std::fs::create_dir_all(dir.path().join("precious")).unwrap();
    std::fs::write(dir.path().join("precious/notes.txt"), "keep me").unwrap();
    let e = err(splitwise(
        dir.path(),
        &["eval", "--config", jetson.to_str().unwrap(), "--policies", "cloud-only", "--out", "precious"],
    ));
    assert!(e.contains("precious") && e.contains("not an evaluation output"), "{e}");
    assert_eq!(std::fs::read_to_string(dir.path().join("precious/notes.txt")).unwrap(), "keep me");
}

#[test]
fn eval_help_lists_every_baseline_with_what_it_knows() {
    // `--help` (not `-h`) carries the long help, which the baseline registry writes.
    let help = ok(splitwise(Path::new("."), &["eval", "--help"]));
    for name in splitwise_eval::baselines::names() {
        let line = help.lines().find(|l| {
            l.trim_start().starts_with(&format!("{name}:")) || {
                let l = l.trim_start();
                l.starts_with(&format!("{name}[")) || l.starts_with(&format!("{name} ["))
            }
        });
        let line = line.unwrap_or_else(|| panic!("`{name}` is not listed:\n{help}"));
        assert_eq!(line.contains("oracle: the true slot state"), name.starts_with("oracle-"), "{line}");
    }
    for spec in
        ["ckpt:PATH", "fixed-split:N[/BITS]", "oracle-regime-aged[:EPISODES] [oracle: the true slot state; slow"]
    {
        assert!(help.contains(spec), "{spec}:\n{help}");
    }
    // The short help stays short.
    let short = ok(splitwise(Path::new("."), &["eval", "-h"]));
    assert!(!short.contains("oracle-regime-aged") && short.contains("--policies"), "{short}");
}

#[test]
fn a_checkpoint_of_another_observation_layout_is_refused() {
    let (_keep, a, _) = trained();
    let dir = tempfile::tempdir().unwrap();
    // The smoke agent observes 10 history slots; this scenario gives 4.
    let text = std::fs::read_to_string(repo("configs/jetson-llama7b-lte.toml")).unwrap();
    let path = dir.path().join("short-history.toml");
    std::fs::write(&path, format!("{text}\n[observation]\nhistory = 4\n")).unwrap();
    let e = refused(dir.path(), &path, &format!("cloud-only,ckpt:{}", a.display()));
    assert!(e.contains("observation layout") && e.contains(a.to_str().unwrap()), "{e}");
}

#[test]
fn every_report_states_the_headroom_and_each_policys_capture() {
    // The smoke scenario (64-slot episodes): the report adds the best static plan (`best-fixed`)
    // and the clairvoyant bound, and states every row's capture of the headroom between them.
    let dir = tempfile::tempdir().unwrap();
    let stdout = ok(splitwise(
        dir.path(),
        &[
            "eval",
            "--config",
            repo("configs/smoke.toml").to_str().unwrap(),
            "--policies",
            "cloud-only,edge-only",
            "--episodes",
            "2",
            "--out",
            "out",
        ],
    ));
    assert!(stdout.contains("headroom: best static"), "{stdout}");
    let m = json(&dir.path().join("out/metrics.json"));
    let sc = &m["scenarios"][0];
    let labels: Vec<&str> = sc["rows"].as_array().unwrap().iter().map(|r| r["label"].as_str().unwrap()).collect();
    assert_eq!(labels, ["cloud-only", "edge-only", "best-fixed", "clairvoyant"]);
    let h = &sc["headroom"];
    assert_eq!(h["clairvoyant"], "clairvoyant");
    let dpp = |label: &str| {
        sc["rows"].as_array().unwrap().iter().find(|r| r["label"] == label).unwrap()["metrics"]["drift_plus_penalty"]
            ["mean"]
            .as_f64()
            .unwrap()
    };
    // The best static plan is the static row with the lowest Δ + V·p.
    let best = h["best_static"].as_str().unwrap();
    for s in ["cloud-only", "edge-only", "best-fixed"] {
        assert!(dpp(best) <= dpp(s), "{best} vs {s}");
    }
    let capture = |label: &str| {
        let rows = h["rows"].as_array().unwrap();
        rows.iter().find(|r| r["label"] == label).unwrap()["captures"][0]["mean"].as_f64()
    };
    if dpp(best) > dpp("clairvoyant") {
        assert!((capture("clairvoyant").unwrap() - 1.0).abs() < 1e-9);
        assert!(capture(best).unwrap().abs() < 1e-9);
    }
    let md = std::fs::read_to_string(dir.path().join("out/report.md")).unwrap();
    assert!(md.contains("### Headroom") && md.contains("capture Δ + V·p"), "headroom section");
}

#[test]
fn cloud_only_under_a_privacy_floor_is_explained_on_stdout_and_in_the_report() {
    let dir = tempfile::tempdir().unwrap();
    let stdout = ok(splitwise(
        dir.path(),
        &[
            "eval",
            "--config",
            repo("configs/pi5-gpt2xl-wifi.toml").to_str().unwrap(),
            "--policies",
            "cloud-only",
            "--episodes",
            "1",
            "--slots",
            "20",
            "--out",
            "out",
            "--no-headroom",
        ],
    ));
    assert!(stdout.contains("is a split at the privacy floor"), "{stdout}");
    let md = std::fs::read_to_string(dir.path().join("out/report.md")).unwrap();
    assert!(md.contains("- note: cloud-only on pi5-gpt2xl-wifi is a split at the privacy floor"), "{md}");
}

/// `splitwise eval` of cloud-only and edge-only (the headroom rows come with them) on a shipped
/// scenario, 2 episodes, seed 0: the scenario's metrics.json entry and the time-averaged Δ + V·p
/// and mean latency of a row by label.
struct TwoEpisodes {
    scenario: serde_json::Value,
}

impl TwoEpisodes {
    fn run(config: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let config = repo(config);
        let args = ["eval", "--config", config.to_str().unwrap(), "--policies", "cloud-only,edge-only"];
        ok(splitwise(dir.path(), &[&args[..], &["--episodes", "2", "--seed", "0", "--out", "out"]].concat()));
        let m = json(&dir.path().join("out/metrics.json"));
        Self { scenario: m["scenarios"][0].clone() }
    }

    fn mean(&self, label: &str, key: &str) -> f64 {
        let rows = self.scenario["rows"].as_array().unwrap();
        let row = rows.iter().find(|r| r["label"] == label).unwrap_or_else(|| panic!("no row {label}"));
        row["metrics"][key]["mean"].as_f64().unwrap()
    }

    fn dpp(&self, label: &str) -> f64 {
        self.mean(label, "drift_plus_penalty")
    }

    fn latency(&self, label: &str) -> f64 {
        self.mean(label, "latency_mean_s")
    }

    /// (best static − clairvoyant)/best static on Δ + V·p, with edge-only the best static plan.
    fn headroom_over_edge_only(&self) -> f64 {
        assert_eq!(self.scenario["headroom"]["best_static"], "edge-only");
        (self.dpp("edge-only") - self.dpp("clairvoyant")) / self.dpp("edge-only")
    }

    /// A scenario with minutes-long coverage gaps: cloud-only stalls through them (more than 3x the
    /// edge alone on Δ + V·p) and the bound clears issue 10's 30 % bar over the edge alone.
    fn assert_gaps_stall_the_cloud_and_clear_the_bar(&self) {
        let (cloud, edge) = (self.dpp("cloud-only"), self.dpp("edge-only"));
        assert!(cloud > 3.0 * edge, "{cloud} vs {edge}");
        let headroom = self.headroom_over_edge_only();
        assert!(headroom > 0.3, "headroom {headroom}");
    }
}

#[test]
fn the_subway_scenario_stalls_the_cloud_in_tunnels_and_leaves_headroom_over_the_phone_alone() {
    // configs/subway-commute-phone.toml (docs/scenario-sources.md §1a): service only in stations.
    // Cloud-bound requests that meet a tunnel stall under TCP backoff, so the best static plan is
    // the phone alone; the clairvoyant bound sends requests to the cloud when the train dwells
    // long enough, a real gap (24 % on 2 episodes, seed 0; 27 % on RESULTS.md's 10).
    let e = TwoEpisodes::run("configs/subway-commute-phone.toml");
    let (cloud, edge) = (e.latency("cloud-only"), e.latency("edge-only"));
    assert!(cloud > 5.0 * edge, "{cloud} vs {edge}");
    let headroom = e.headroom_over_edge_only();
    assert!(headroom > 0.15, "headroom {headroom}");
}

#[test]
fn the_intercity_train_scenario_leaves_adaptation_more_than_the_30_percent_bar() {
    // configs/intercity-train-phone.toml (docs/scenario-sources.md §1b): ~43 % of the trip in
    // minutes-long coverage gaps. Cloud-bound requests that meet a gap stall, so the best static
    // plan is the phone alone; the clairvoyant bound uses the cloud while covered. Measured: 58 %
    // on these 2 episodes (seed 0), 56.5 % on 40 and 51.6 % on RESULTS.md's 10; the bar for an
    // adaptation scenario is 30 % (issue 10).
    TwoEpisodes::run("configs/intercity-train-phone.toml").assert_gaps_stall_the_cloud_and_clear_the_bar();
}

#[test]
fn the_rural_highway_scenario_leaves_adaptation_more_than_the_30_percent_bar() {
    // configs/rural-highway-vehicle.toml (docs/scenario-sources.md §1c): the vehicle of
    // vehicle-dead-spots.toml (a control: its dead spots last seconds) on a road without service
    // for 35 % of its length, in gaps of ~6 min. Cloud-bound requests that meet a gap stall, so the
    // best static plan is the Jetson alone; the bound uses the cloud while covered. Measured: 35.0 %
    // on these 2 episodes (seed 0), 61.2 % on RESULTS.md's 10; the bar is 30 % (issue 10).
    TwoEpisodes::run("configs/rural-highway-vehicle.toml").assert_gaps_stall_the_cloud_and_clear_the_bar();
}
