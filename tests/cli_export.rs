//! Exported policies checked in an independent runtime: every graph `splitwise export` writes is
//! loaded with tract-onnx and compared with burn's forward pass of the same policy on 1,000
//! random observations (within the features' bounds) and random masks (at least one legal value
//! per component), at batch 1 and in larger batches through the dynamic batch axis:
//! logits and probabilities agree within 1e-5 on legal values, masked values stay exactly masked
//! (−1e8 / 0), actions are identical (a difference would only be allowed at a tie of the burn
//! logits within 1e-6, and is counted). Cases: a CartPole-shaped unmasked policy, the
//! hierarchical partition space of `configs/smoke.toml` (components of unequal sizes: the padded
//! path), the layer-split space, and a two-level hierarchy chained through its `context` input.
//! End to end: train `configs/smoke.toml` (and a CartPole run) with the binary, export every
//! format, verify the files and the sidecar, and check that bad input gets clear errors while
//! `--out` is never left half-written.

use rand::{RngExt, SeedableRng};
use splitwise::checkpoint;
use splitwise::train::read_agent_state;
use splitwise_agents::distribution::MASKED_LOGIT;
use splitwise_agents::export::{
    OutputFormat, PolicyGraph, PolicyLevel, PolicyOutput, export_level, export_policy, signature,
};
use splitwise_agents::normalize::{ObsNormalizer, RunningMeanStd};
use splitwise_agents::{ActionChoice, Ppo};
use splitwise_env::api::{Env, EnvSpec};
use splitwise_env::partition::PartitionEnv;
use splitwise_env::rng::StreamRng;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use tract_onnx::prelude::*;

/// Observations per comparison (the minimum).
const N_OBS: usize = 1000;
/// Rows compared one at a time (batch 1); the rest go through in batches of `BATCH`.
const N_SINGLE: usize = 100;
const BATCH: usize = 300;
/// Tolerance on legal logits and probabilities (the bound).
const TOLERANCE: f32 = 1e-5;

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

type Plan = Arc<TypedRunnableModel>;

/// tract's optimised plan of an ONNX file, batch axis left symbolic.
fn tract_plan(onnx: &[u8]) -> Plan {
    tract_onnx::onnx()
        .model_for_read(&mut &onnx[..])
        .expect("tract reads the model")
        .into_optimized()
        .expect("tract optimises the model")
        .into_runnable()
        .expect("tract plans the model")
}

fn tract_run(plan: &Plan, batch: usize, inputs: &[&[f32]]) -> PolicyOutput {
    let values: TVec<TValue> = inputs
        .iter()
        .map(|x| {
            let width = x.len() / batch;
            Tensor::from_shape(&[batch, width], x).expect("input tensor").into_tvalue()
        })
        .collect();
    let out = plan.run(values).expect("tract runs the model");
    let t = &out[0];
    match t.datum_type() {
        DatumType::F32 => {
            PolicyOutput::Values(t.try_as_plain_ram().expect("plain").as_slice::<f32>().expect("f32").to_vec())
        }
        DatumType::I64 => {
            PolicyOutput::Actions(t.try_as_plain_ram().expect("plain").as_slice::<i64>().expect("i64").to_vec())
        }
        other => panic!("unexpected output type {other:?}"),
    }
}

/// Random observations inside the space's bounds and masks with ≥ 1 legal value per component.
struct Inputs {
    obs: Vec<f32>,
    mask: Vec<f32>,
}

fn random_inputs(spec: &EnvSpec, n: usize, masked: bool, rng: &mut StreamRng) -> Inputs {
    let mut obs = Vec::with_capacity(n * spec.observation.dim());
    for _ in 0..n {
        for f in &spec.observation.features {
            obs.push(rng.random_range(f.low..=f.high));
        }
    }
    let m = spec.action.mask_len();
    let mut mask = Vec::new();
    if masked {
        mask = (0..n * m).map(|_| if rng.random_bool(0.5) { 1.0 } else { 0.0 }).collect();
        for row in mask.chunks_mut(m) {
            let mut offset = 0;
            for &k in &spec.action.nvec {
                let legal = rng.random_range(0..k);
                row[offset + legal] = 1.0;
                offset += k;
            }
        }
    }
    Inputs { obs, mask }
}

/// What a comparison found (for messages and for the tie count).
#[derive(Debug, Default)]
struct Agreement {
    max_abs_diff: f32,
    rows: usize,
    action_ties: usize,
}

/// Exports `level` and compares the file in tract with burn (see [`compare_onnx`]).
fn compare(level: &PolicyLevel, spec: &EnvSpec, masked: bool, format: OutputFormat, seed: u64) -> Agreement {
    let exported = export_level(level, format, masked, &[]).expect("exports");
    compare_onnx(&exported.onnx, level, spec, masked, format, seed)
}

/// Compares an exported file in tract with burn's forward pass of `level` on `N_OBS` rows:
/// `N_SINGLE` at batch 1, the rest in batches of `BATCH` (the dynamic axis).
fn compare_onnx(
    onnx: &[u8],
    level: &PolicyLevel,
    spec: &EnvSpec,
    masked: bool,
    format: OutputFormat,
    seed: u64,
) -> Agreement {
    let plan = tract_plan(onnx);
    let burn = PolicyGraph::on_flex(level, format, masked);
    let logits_graph = PolicyGraph::on_flex(level, OutputFormat::Logits, masked);
    let mut rng = StreamRng::seed_from_u64(seed);
    let all = random_inputs(spec, N_OBS, masked, &mut rng);
    let (d, m) = (spec.observation.dim(), spec.action.mask_len());
    let mut agreement = Agreement::default();
    let mut start = 0;
    while start < N_OBS {
        let batch = if start < N_SINGLE { 1 } else { BATCH.min(N_OBS - start) };
        let obs = &all.obs[start * d..(start + batch) * d];
        let mask = if masked { &all.mask[start * m..(start + batch) * m] } else { &all.mask[..0] };
        let inputs: Vec<&[f32]> = if masked { vec![obs, mask] } else { vec![obs] };
        let got = tract_run(&plan, batch, &inputs);
        let want = burn.run(batch, &inputs);
        match (got, want) {
            (PolicyOutput::Values(got), PolicyOutput::Values(want)) => {
                assert_eq!(got.len(), batch * m);
                for (i, (&g, &w)) in got.iter().zip(&want).enumerate() {
                    let legal = !masked || mask[i] == 1.0;
                    if legal {
                        let diff = (g - w).abs();
                        assert!(
                            diff <= TOLERANCE,
                            "{format:?} row {} value {}: tract {g} burn {w}",
                            start + i / m,
                            i % m
                        );
                        agreement.max_abs_diff = agreement.max_abs_diff.max(diff);
                    } else {
                        let masked_value = if format == OutputFormat::Logits { MASKED_LOGIT } else { 0.0 };
                        assert_eq!((g, w), (masked_value, masked_value), "{format:?}: masked entries stay masked");
                    }
                }
                if format == OutputFormat::Probs {
                    // Each component's block sums to 1.
                    for row in got.chunks(m) {
                        let mut offset = 0;
                        for &k in &spec.action.nvec {
                            let s: f32 = row[offset..offset + k].iter().sum();
                            assert!((s - 1.0).abs() < 1e-5, "block sums to {s}");
                            offset += k;
                        }
                    }
                }
            }
            (PolicyOutput::Actions(got), PolicyOutput::Actions(want)) => {
                let k = spec.action.n_components();
                assert_eq!(got.len(), batch * k);
                let PolicyOutput::Values(logits) = logits_graph.run(batch, &inputs) else { panic!("logits") };
                for (i, (&g, &w)) in got.iter().zip(&want).enumerate() {
                    let (r, c) = (i / k, i % k);
                    let offset = spec.action.mask_offset(c);
                    assert!(g >= 0 && (g as usize) < spec.action.nvec[c], "action in range");
                    if masked {
                        assert_eq!(mask[r * m + offset + g as usize], 1.0, "the action is legal");
                    }
                    if g != w {
                        let row = &logits[r * m..(r + 1) * m];
                        let gap = (row[offset + g as usize] - row[offset + w as usize]).abs();
                        assert!(gap <= 1e-6, "row {} component {c}: tract {g}, burn {w}, logit gap {gap}", start + r);
                        agreement.action_ties += 1;
                    }
                }
            }
            _ => panic!("tract and burn returned different kinds of output"),
        }
        agreement.rows += batch;
        start += batch;
    }
    agreement
}

/// Normaliser statistics that put the mean somewhere in each feature's range and the std at
/// 5–50 % of its width, with clip 3: random in-bounds observations exercise both the linear part
/// and the clip.
fn normalizer_for(spec: &EnvSpec, seed: u64) -> ObsNormalizer {
    let mut rng = StreamRng::seed_from_u64(seed);
    let (mut mean, mut var) = (Vec::new(), Vec::new());
    for f in &spec.observation.features {
        let width = f64::from(f.high - f.low);
        mean.push(f64::from(f.low) + width * rng.random::<f64>());
        let std = width * rng.random_range(0.05..0.5);
        var.push(std * std);
    }
    ObsNormalizer { stats: RunningMeanStd { mean, var, count: 1000.0 }, clip: 3.0 }
}

fn cartpole_spec() -> EnvSpec {
    splitwise_env::cartpole::CartPole::new().spec().clone()
}

fn partition_spec(config: &str) -> EnvSpec {
    let cfg = splitwise::config::load(&repo(config)).expect("config loads");
    PartitionEnv::new(cfg.scenario.expect("a partition config")).spec().clone()
}

/// A 64×64 tanh policy with head gain 1 (logits of order 1, so probabilities are far from
/// uniform and argmax ties are rare) and a normaliser.
fn level_for(spec: &EnvSpec, seed: u64) -> PolicyLevel {
    let mut level = PolicyLevel::random("policy", spec.observation.dim(), 0, &spec.action.nvec, &[64, 64], 1.0, seed);
    level.normalizer = Some(normalizer_for(spec, seed));
    level
}

fn check_all_formats(spec: &EnvSpec, masked: bool, seed: u64) {
    let level = level_for(spec, seed);
    for format in OutputFormat::ALL {
        let a = compare(&level, spec, masked, format, seed + 1);
        assert_eq!(a.rows, N_OBS);
        // 1000 rows × K components of order-1 logits: a burn tie within 1e-6 has probability
        // ~1e-6 per pair of values; more than one would mean a real disagreement.
        assert!(a.action_ties <= 1, "{format:?}: {} action differences", a.action_ties);
        eprintln!("{} {format:?}: max |tract − burn| = {:e}, ties {}", spec.id, a.max_abs_diff, a.action_ties);
    }
}

#[test]
fn cartpole_policy_agrees_in_tract_without_a_mask() {
    check_all_formats(&cartpole_spec(), false, 11);
}

#[test]
fn hierarchical_partition_policy_agrees_in_tract() {
    let spec = partition_spec("configs/smoke.toml");
    // Components of unequal sizes: the gathered, padded per-component path.
    assert!(spec.action.nvec.iter().any(|&n| n != spec.action.nvec[0]), "{:?}", spec.action.nvec);
    check_all_formats(&spec, true, 21);
}

#[test]
fn layer_split_partition_policy_agrees_in_tract() {
    let spec = partition_spec("configs/ppo-jetson-layer-split.toml");
    assert_eq!(spec.action.n_components(), 1);
    check_all_formats(&spec, true, 31);
}

/// Rows `rows` of a row-major matrix of width `width`, columns `cols`.
fn columns(values: &[f32], width: usize, cols: std::ops::Range<usize>) -> Vec<f32> {
    values.chunks(width).flat_map(|row| row[cols.clone()].to_vec()).collect()
}

fn one_hot(actions: &[i64], nvec: &[usize]) -> Vec<f32> {
    let width: usize = nvec.iter().sum();
    let mut out = Vec::new();
    for row in actions.chunks(nvec.len()) {
        let mut v = vec![0.0f32; width];
        let mut offset = 0;
        for (&a, &n) in row.iter().zip(nvec) {
            v[offset + a as usize] = 1.0;
            offset += n;
        }
        out.extend(v);
    }
    out
}

/// Runs level `i` of a chain on `batch` rows of inputs, returning its actions.
type RunLevel<'a> = &'a dyn Fn(usize, usize, &[&[f32]]) -> Vec<i64>;

#[test]
fn a_two_level_hierarchy_exports_a_graph_per_level_that_chain_through_context() {
    // The design for hierarchical agents: `high` picks (split_layer, precision) from the
    // observation; `low` picks the window components from the observation and the one-hot of
    // the high level's choice (`context`). Chained in tract and in burn, the actions agree.
    let spec = partition_spec("configs/smoke.toml");
    let (d, m, nvec) = (spec.observation.dim(), spec.action.mask_len(), spec.action.nvec.clone());
    let (high_nvec, low_nvec) = (nvec[..2].to_vec(), nvec[2..].to_vec());
    let split: usize = high_nvec.iter().sum();
    let mut high = PolicyLevel::random("high", d, 0, &high_nvec, &[64, 64], 1.0, 41);
    high.normalizer = Some(normalizer_for(&spec, 41));
    let mut low = PolicyLevel::random("low", d, split, &low_nvec, &[64, 64], 1.0, 42);
    low.components = (2..nvec.len()).collect();
    low.context_from = vec!["high".to_string()];
    // The chain is checked: a context that does not match its upstream levels is refused.
    let mut wrong = low.clone();
    wrong.context_from = vec!["nope".to_string()];
    let e = export_policy(&[high.clone(), wrong], OutputFormat::Action, true, &[]).unwrap_err().to_string();
    assert!(e.contains("`low`") && e.contains("nope"), "{e}");
    let levels = [high, low];
    let exported = export_policy(&levels, OutputFormat::Action, true, &[]).expect("exports");
    let names = |i: usize| exported[i].inputs.iter().map(|t| t.name.clone()).collect::<Vec<_>>();
    assert_eq!(names(0), ["observation", "action_mask"]);
    assert_eq!(names(1), ["observation", "action_mask", "context"]);
    assert_eq!(exported[1].components, (2..nvec.len()).collect::<Vec<_>>());
    assert_eq!(exported[1].context_from, ["high"]);
    let plans: Vec<Plan> = exported.iter().map(|e| tract_plan(&e.onnx)).collect();
    let burn: Vec<PolicyGraph> = levels.iter().map(|l| PolicyGraph::on_flex(l, OutputFormat::Action, true)).collect();

    let all = random_inputs(&spec, N_OBS, true, &mut StreamRng::seed_from_u64(43));
    let actions = |r: RunLevel<'_>, obs: &[f32], mask: &[f32], batch: usize| {
        let high_mask = columns(mask, m, 0..split);
        let low_mask = columns(mask, m, split..m);
        let a_high = r(0, batch, &[obs, &high_mask]);
        let context = one_hot(&a_high, &high_nvec);
        let a_low = r(1, batch, &[obs, &low_mask, &context]);
        (a_high, a_low)
    };
    let run_tract = |level: usize, batch: usize, inputs: &[&[f32]]| match tract_run(&plans[level], batch, inputs) {
        PolicyOutput::Actions(a) => a,
        PolicyOutput::Values(_) => panic!("action graph"),
    };
    let run_burn = |level: usize, batch: usize, inputs: &[&[f32]]| match burn[level].run(batch, inputs) {
        PolicyOutput::Actions(a) => a,
        PolicyOutput::Values(_) => panic!("action graph"),
    };
    let mut start = 0;
    while start < N_OBS {
        let batch = if start < N_SINGLE { 1 } else { BATCH.min(N_OBS - start) };
        let obs = &all.obs[start * d..(start + batch) * d];
        let mask = &all.mask[start * m..(start + batch) * m];
        let got = actions(&run_tract, obs, mask, batch);
        let want = actions(&run_burn, obs, mask, batch);
        assert_eq!(got, want, "rows {start}..{}", start + batch);
        start += batch;
    }
}

// ----- end to end through the binary ----------------------------------------------------------

fn splitwise(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_splitwise")).current_dir(dir).args(args).output().expect("runs")
}

fn ok(out: Output) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(out.status.success(), "command failed: {stderr}");
    String::from_utf8_lossy(&out.stdout).to_string()
}

fn err(out: Output) -> String {
    assert!(!out.status.success(), "command must fail; stdout: {}", String::from_utf8_lossy(&out.stdout));
    String::from_utf8_lossy(&out.stderr).to_string()
}

fn path_str(p: &Path) -> &str {
    p.to_str().expect("UTF-8 temp path")
}

/// Trains a CartPole run for one rollout (256 steps) in `dir`; returns the run folder.
fn train_cartpole(dir: &Path) -> PathBuf {
    let config = repo("configs/cartpole-ppo.toml");
    ok(splitwise(dir, &["train", "--config", path_str(&config), "--stop-at-step", "256"]));
    dir.join("checkpoints/cartpole-ppo-seed0")
}

/// The policy a checkpoint holds, as the level the exporter builds.
fn checkpoint_policy(run: &Path) -> (Ppo, PolicyLevel, checkpoint::CheckpointFiles) {
    let dir = checkpoint::resolve(run).expect("resolves");
    let files = checkpoint::load(&dir).expect("loads");
    let ppo = Ppo::from_state(&read_agent_state(&files, &dir).expect("agent files")).expect("agent state");
    let level = PolicyLevel::of_ppo(&ppo);
    (ppo, level, files)
}

fn names_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("lists")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into())
        .collect();
    names.sort();
    names
}

#[test]
fn train_smoke_then_export_every_format_and_verify_in_tract() {
    let dir = tempfile::tempdir().expect("tempdir");
    ok(splitwise(dir.path(), &["train", "--config", path_str(&repo("configs/smoke.toml"))]));
    let run = dir.path().join("checkpoints/smoke-seed0");
    let (ppo, level, files) = checkpoint_policy(&run);
    let spec = partition_spec("configs/smoke.toml");
    assert_eq!(files.metadata.observation_fingerprint, spec.observation.fingerprint());
    assert!(level.normalizer.is_some(), "smoke.toml normalises observations: the graph must too");

    for format in OutputFormat::ALL {
        let name = format.output_name();
        let out_dir = dir.path().join("export").join(name);
        let out = out_dir.join("policy.onnx");
        let stdout = ok(splitwise(
            dir.path(),
            &["export", "--checkpoint", path_str(&run), "--out", path_str(&out), "--format", name],
        ));
        assert!(stdout.contains("policy.onnx"), "{stdout}");
        // Exactly the graph and its sidecar: no temporary file left behind.
        assert_eq!(names_in(&out_dir), ["policy.onnx", "policy.onnx.json"]);
        let onnx = std::fs::read(&out).expect("graph written");
        let a = compare_onnx(&onnx, &level, &spec, true, format, 7);
        assert!(a.action_ties <= 1, "{format:?}: {a:?}");
        eprintln!("smoke checkpoint {format:?}: {} bytes, max |tract − burn| = {:e}", onnx.len(), a.max_abs_diff);

        // The sidecar describes this file, this checkpoint and this environment.
        let sidecar: serde_json::Value =
            serde_json::from_slice(&std::fs::read(out_dir.join("policy.onnx.json")).expect("sidecar")).expect("JSON");
        assert_eq!(sidecar["format"], name);
        let m = &files.metadata;
        assert_eq!(sidecar["identity"]["checkpoint"]["step"], m.step);
        assert_eq!(sidecar["identity"]["checkpoint"]["run_name"], m.run_name.as_str());
        assert_eq!(sidecar["identity"]["model"]["agent_kind"], "ppo");
        assert_eq!(sidecar["identity"]["scenario"]["env_id"], spec.id.as_str());
        let obs = &sidecar["observation"];
        assert_eq!(obs["fingerprint"], m.observation_fingerprint.as_str());
        assert_eq!(obs["layout"], "partition-v2");
        let features = obs["features"].as_array().expect("features");
        assert_eq!(features.len(), spec.observation.dim());
        for (f, want) in features.iter().zip(&spec.observation.features) {
            assert_eq!(f["name"], want.name.as_str());
            assert_eq!(f["unit"], want.unit.as_str());
            assert!(!f["computed_as"].as_str().expect("text").is_empty());
        }
        let scenario = splitwise::config::load(&repo("configs/smoke.toml")).expect("loads").scenario.expect("scenario");
        assert_eq!(obs["constants"]["ewma_alpha"].as_f64(), Some(scenario.config.observation.ewma_alpha));
        assert_eq!(obs["constants"]["queue_capacity"].as_f64(), Some(scenario.config.workload.queue_capacity as f64));
        assert_eq!(obs["normalization"]["in_graph"], true);
        assert_eq!(obs["normalization"]["mean"].as_array().expect("mean").len(), spec.observation.dim());
        let components = sidecar["action"]["components"].as_array().expect("components");
        assert_eq!(components.len(), spec.action.n_components());
        for (c, (n, name)) in components.iter().zip(spec.action.nvec.iter().zip(&spec.action.names)) {
            assert_eq!((c["n_values"].as_u64(), c["name"].as_str()), (Some(*n as u64), Some(name.as_str())));
        }
        let conditional: Vec<u64> = sidecar["action"]["autoregressive"]["conditional"]
            .as_array()
            .expect("conditional components")
            .iter()
            .filter_map(|v| v.as_u64())
            .collect();
        assert_eq!(conditional, (2..spec.action.n_components() as u64).collect::<Vec<_>>());
        assert_eq!(sidecar["action"]["mask"]["masked_logit"].as_f64(), Some(f64::from(MASKED_LOGIT)));
        let level_doc = &sidecar["levels"][0];
        assert_eq!(level_doc["file"], "policy.onnx");
        assert_eq!(level_doc["bytes"].as_u64(), Some(onnx.len() as u64));
        assert_eq!(level_doc["crc32c"], format!("{:08x}", crc32c::crc32c(&onnx)).as_str());
        assert_eq!(level_doc["inputs"][0]["name"], "observation");
        assert_eq!(level_doc["inputs"][0]["shape"], serde_json::json!(["batch", spec.observation.dim()]));
        assert_eq!(level_doc["inputs"][1]["name"], "action_mask");
        assert_eq!(level_doc["outputs"][0]["name"], name);
        // The file itself carries the identity too.
        let props = splitwise_agents::export::metadata(&onnx).expect("metadata");
        assert!(props.contains(&("observation_fingerprint".into(), m.observation_fingerprint.clone())));
        assert!(props.contains(&("checkpoint_step".into(), m.step.to_string())));
        let (inputs, _) = signature(&onnx).expect("signature");
        assert_eq!(inputs.len(), 2);

        if format == OutputFormat::Action {
            // The exported action is the learner's own deterministic action.
            let all = random_inputs(&spec, N_OBS, true, &mut StreamRng::seed_from_u64(8));
            let mask_bool: Vec<bool> = all.mask.iter().map(|&x| x == 1.0).collect();
            let want = ppo.act(&all.obs, &mask_bool, ActionChoice::Deterministic).expect("acts");
            let PolicyOutput::Actions(got) = tract_run(&tract_plan(&onnx), N_OBS, &[&all.obs, &all.mask]) else {
                panic!("actions")
            };
            let differ = got.iter().zip(&want).filter(|&(&g, &w)| g as usize != w).count();
            // The learner's forward uses the sigmoid form of tanh (≤ 1e-6 off); a trained policy
            // on 1000 random states may meet a handful of near ties, never systematic differences.
            assert!(differ <= 5, "{differ} of {} components differ from Ppo::act", got.len());
        }
    }
}

#[test]
fn cartpole_checkpoint_exports_without_mask_or_normaliser() {
    let dir = tempfile::tempdir().expect("tempdir");
    let run = train_cartpole(dir.path());
    let (_, level, _) = checkpoint_policy(&run);
    assert!(level.normalizer.is_none(), "cartpole-ppo.toml reads raw observations");
    let out = dir.path().join("cartpole.onnx");
    ok(splitwise(
        dir.path(),
        &["export", "--checkpoint", path_str(&run), "--out", path_str(&out), "--format", "probs"],
    ));
    let onnx = std::fs::read(&out).expect("graph");
    let a = compare_onnx(&onnx, &level, &cartpole_spec(), false, OutputFormat::Probs, 3);
    assert_eq!(a.rows, N_OBS);
    let sidecar: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("cartpole.onnx.json")).expect("sidecar")).expect("JSON");
    assert_eq!(sidecar["observation"]["normalization"]["in_graph"], false);
    assert!(sidecar["action"].get("mask").is_none(), "CartPole's policy takes no mask");
    assert_eq!(sidecar["levels"][0]["inputs"].as_array().map(Vec::len), Some(1));
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("lists") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copies");
        }
    }
}

#[test]
fn bad_checkpoints_get_clear_errors_and_out_is_never_half_written() {
    let dir = tempfile::tempdir().expect("tempdir");
    let run = train_cartpole(dir.path());
    let good = checkpoint::resolve(&run).expect("resolves");
    let out_dir = dir.path().join("out");
    std::fs::create_dir_all(&out_dir).expect("mkdir");
    let out = out_dir.join("policy.onnx");
    std::fs::write(&out, b"previous export").expect("writes");
    let export =
        |ckpt: &Path| splitwise(dir.path(), &["export", "--checkpoint", path_str(ckpt), "--out", path_str(&out)]);

    let missing = dir.path().join("no-such-run");
    let e = err(export(&missing));
    assert!(e.contains("no-such-run") && e.contains("does not exist"), "{e}");

    let unknown = dir.path().join("unknown_kind");
    copy_dir(&good, &unknown);
    let meta_path = unknown.join("metadata.json");
    let mut meta: serde_json::Value = serde_json::from_slice(&std::fs::read(&meta_path).expect("reads")).expect("JSON");
    meta["agent_kind"] = "dreamer".into();
    std::fs::write(&meta_path, serde_json::to_vec(&meta).expect("JSON")).expect("writes");
    let e = err(export(&unknown));
    assert!(e.contains("dreamer") && e.contains("not one this splitwise knows") && e.contains("ppo, hppo"), "{e}");
    assert!(e.contains("metadata.json"), "names the file: {e}");
    assert!(e.contains("unknown_kind"), "names the checkpoint: {e}");

    let corrupt = dir.path().join("corrupt_weights");
    copy_dir(&good, &corrupt);
    std::fs::write(corrupt.join("agent/weights.bpk"), b"not a burnpack record").expect("writes");
    let e = err(export(&corrupt));
    assert!(e.contains("weights.bpk") && e.contains("corrupt_weights"), "{e}");

    let bad_meta = dir.path().join("corrupt_metadata");
    copy_dir(&good, &bad_meta);
    std::fs::write(bad_meta.join("metadata.json"), b"{ truncated").expect("writes");
    let e = err(export(&bad_meta));
    assert!(e.contains("metadata.json") && e.contains("corrupt"), "{e}");

    let e = err(splitwise(dir.path(), &["export", "--checkpoint", path_str(&good), "--out", path_str(&out_dir)]));
    assert!(e.contains("--out"), "{e}");

    // Every failure left the previous file alone and no temporary file behind.
    assert_eq!(std::fs::read(&out).expect("reads"), b"previous export");
    assert_eq!(names_in(&out_dir), ["policy.onnx"]);
    // A successful export replaces it whole.
    ok(export(&good));
    let onnx = std::fs::read(&out).expect("reads");
    assert!(signature(&onnx).is_ok(), "a complete ONNX model replaced the old file");
    assert_eq!(names_in(&out_dir), ["policy.onnx", "policy.onnx.json"]);
}
