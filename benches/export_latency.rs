//! Batch-1 decision latency of an exported policy: the ONNX file run by tract-onnx against burn's
//! forward pass of the same graph and the learner's own acting path (flex CPU backend), for the
//! CartPole policy, the hierarchical partition policy of `configs/smoke.toml` (10 action
//! components) and the flat layer-split policy of `configs/ppo-jetson-layer-split.toml` (one
//! component of 33 values); 64×64 tanh actors, every output format. File sizes are printed
//! before the timings.
//!
//! Run on one core: `RAYON_NUM_THREADS=1 taskset -c 0 cargo bench --bench export_latency`.

use criterion::{Criterion, criterion_group, criterion_main};
use splitwise_agents::export::{OutputFormat, PolicyGraph, PolicyLevel, export_level};
use splitwise_agents::normalize::ObsNormalizer;
use splitwise_agents::{ActionChoice, PolicyShape, Ppo, PpoConfig};
use splitwise_env::api::{Env, EnvSpec};
use splitwise_env::cartpole::CartPole;
use splitwise_env::partition::PartitionEnv;
use std::hint::black_box;
use std::path::Path;
use tract_onnx::prelude::*;

/// The environment spec of a shipped partition training config.
fn partition_spec(config: &str) -> EnvSpec {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(config);
    let cfg = splitwise::config::load(&path).unwrap_or_else(|e| panic!("{config} loads: {e:#}"));
    PartitionEnv::new(cfg.scenario.expect("a partition config")).spec().clone()
}

/// A mid-range observation and an all-legal mask (latency does not depend on the values).
fn inputs(spec: &EnvSpec) -> (Vec<f32>, Vec<f32>) {
    let obs = spec.observation.features.iter().map(|f| 0.5 * (f.low + f.high)).collect();
    (obs, vec![1.0; spec.action.mask_len()])
}

fn bench_policy(c: &mut Criterion, name: &str, spec: &EnvSpec, masked: bool) {
    let d = spec.observation.dim();
    let mut level = PolicyLevel::random("policy", d, 0, &spec.action.nvec, &[64, 64], 1.0, 0);
    level.normalizer = masked.then(|| ObsNormalizer::new(d, 10.0));
    let (obs, mask) = inputs(spec);
    let host_inputs: Vec<&[f32]> = if masked { vec![&obs, &mask] } else { vec![&obs] };
    for format in OutputFormat::ALL {
        let exported = export_level(&level, format, masked, &[]).expect("exports");
        eprintln!("{name} {}: {} bytes", format.output_name(), exported.onnx.len());
        let model = tract_onnx::onnx().model_for_read(&mut &exported.onnx[..]).expect("tract reads");
        let plan = model.into_optimized().expect("optimises").into_runnable().expect("plans");
        let mut state = plan.spawn().expect("state");
        let tensors: TVec<TValue> =
            host_inputs.iter().map(|x| Tensor::from_shape(&[1, x.len()], x).expect("tensor").into_tvalue()).collect();
        let mut group = c.benchmark_group(format!("{name}/{}", format.output_name()));
        group.bench_function("tract", |b| b.iter(|| black_box(state.run(tensors.clone()).expect("runs"))));
        let graph = PolicyGraph::on_flex(&level, format, masked);
        group.bench_function("burn-graph", |b| b.iter(|| black_box(graph.run(1, &host_inputs))));
        group.finish();
    }
    // The learner's own deterministic action (normalisation, actor forward, host argmax).
    let config = PpoConfig { normalize_obs: masked, ..PpoConfig::default() };
    let ppo = Ppo::new(config, PolicyShape::of(spec), 0).expect("learner");
    let mask_bool = vec![true; spec.action.mask_len()];
    c.bench_function(&format!("{name}/ppo-act-deterministic"), |b| {
        b.iter(|| black_box(ppo.act(&obs, &mask_bool, ActionChoice::Deterministic).expect("acts")))
    });
}

fn export_latency(c: &mut Criterion) {
    bench_policy(c, "cartpole", &CartPole::new().spec().clone(), false);
    bench_policy(c, "smoke", &partition_spec("configs/smoke.toml"), true);
    bench_policy(c, "jetson-layer-split", &partition_spec("configs/ppo-jetson-layer-split.toml"), true);
}

criterion_group!(benches, export_latency);
criterion_main!(benches);
