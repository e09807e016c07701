//! Environment step throughput, reported as steps/s through criterion's `Throughput::Elements`.
//! One function per environment (`bench_cartpole`, `bench_vector_cartpole`, ...) so new
//! environments add a function and a line in `criterion_group!`. Actions are random but drawn
//! before timing, and episodes that end are reset inside the timed loop, as
//! `scripts/bench_gymnasium.py` does for Gymnasium (compare with `scripts/bench_cartpole.sh`).

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use rand::RngExt;
use splitwise_env::cartpole::CartPole;
use splitwise_env::partition::PartitionEnv;
use splitwise_env::rng::{Stream, stream_rng};
use splitwise_env::scenario::{ActionMode, InfeasibleAction, NoTraces, Scenario, ScenarioConfig};
use splitwise_env::{Env, VecEnv};
use std::hint::black_box;
use std::sync::Arc;

/// Environment steps per timed iteration (criterion divides by this for steps/s).
const STEPS_PER_ITER: usize = 1_000;
/// Precomputed actions, cycled; a power of two so the cursor wraps with a mask.
const ACTION_TABLE_LEN: usize = 1 << 14;
const N_VECTOR_ENVS: usize = 8;

fn random_binary_actions(len: usize, seed: u64) -> Vec<usize> {
    let mut rng = stream_rng(seed, Stream::Policy);
    (0..len).map(|_| usize::from(rng.random_bool(0.5))).collect()
}

fn bench_cartpole(c: &mut Criterion) {
    let actions = random_binary_actions(ACTION_TABLE_LEN, 1);
    let mut env = CartPole::new();
    let (mut obs, mut mask) = env.buffers();
    env.reset_into(Some(0), &mut obs, &mut mask);
    let mut cursor = 0usize;
    let mut group = c.benchmark_group("cartpole");
    group.throughput(Throughput::Elements(STEPS_PER_ITER as u64));
    group.bench_function("step", |b| {
        b.iter(|| {
            for _ in 0..STEPS_PER_ITER {
                let action = [actions[cursor & (ACTION_TABLE_LEN - 1)]];
                cursor = cursor.wrapping_add(1);
                let t = env.step_into(&action, &mut obs, &mut mask).expect("actions are 0 or 1");
                if t.terminated || t.truncated {
                    env.reset_into(None, &mut obs, &mut mask);
                }
            }
            black_box(&obs);
        })
    });
    group.finish();
}

fn bench_vector_cartpole(c: &mut Criterion) {
    const VECTOR_STEPS_PER_ITER: usize = STEPS_PER_ITER / N_VECTOR_ENVS;
    let actions = random_binary_actions(ACTION_TABLE_LEN * N_VECTOR_ENVS, 2);
    let mut envs = VecEnv::new((0..N_VECTOR_ENVS).map(|_| CartPole::new()).collect());
    envs.reset(0);
    let mut row = 0usize;
    let mut group = c.benchmark_group("vector_cartpole");
    group.throughput(Throughput::Elements((VECTOR_STEPS_PER_ITER * N_VECTOR_ENVS) as u64));
    group.bench_function(format!("step_{N_VECTOR_ENVS}_envs"), |b| {
        b.iter(|| {
            for _ in 0..VECTOR_STEPS_PER_ITER {
                let start = (row & (ACTION_TABLE_LEN - 1)) * N_VECTOR_ENVS;
                row = row.wrapping_add(1);
                envs.step(&actions[start..start + N_VECTOR_ENVS]).expect("actions are 0 or 1");
            }
            black_box(envs.obs());
        })
    });
    group.finish();
}

/// The Jetson + LLaMA-7B scenario in `mode`, with the documented repair switched on so that
/// precomputed random actions are always accepted (what a flattened multi-discrete agent does).
fn jetson(mode: ActionMode) -> Arc<Scenario> {
    let mut cfg = ScenarioConfig::from_toml(include_str!("../../configs/jetson-llama7b-lte.toml"))
        .expect("shipped scenario parses");
    cfg.actions.mode = mode;
    cfg.actions.infeasible = InfeasibleAction::Repair;
    Arc::new(Scenario::resolve(cfg, &NoTraces).expect("shipped scenario is valid"))
}

/// Uniform random values for every component of the env's action space, row-major.
fn random_actions(env: &PartitionEnv, rows: usize, seed: u64) -> Vec<usize> {
    let mut rng = stream_rng(seed, Stream::Policy);
    let nvec = env.spec().action.nvec.clone();
    (0..rows).flat_map(|_| nvec.iter().map(|&n| rng.random_range(0..n)).collect::<Vec<_>>()).collect()
}

fn bench_partition(c: &mut Criterion, name: &str, mode: ActionMode) {
    let mut env = PartitionEnv::new(jetson(mode));
    let k = env.spec().action.nvec.len();
    let actions = random_actions(&env, ACTION_TABLE_LEN, 3);
    let (mut obs, mut mask) = env.buffers();
    env.reset_into(Some(0), &mut obs, &mut mask);
    let mut cursor = 0usize;
    let mut group = c.benchmark_group(name);
    group.throughput(Throughput::Elements(STEPS_PER_ITER as u64));
    group.bench_function("step", |b| {
        b.iter(|| {
            for _ in 0..STEPS_PER_ITER {
                let row = cursor & (ACTION_TABLE_LEN - 1);
                cursor = cursor.wrapping_add(1);
                let t = env.step_into(&actions[row * k..(row + 1) * k], &mut obs, &mut mask).expect("repaired");
                if t.truncated {
                    env.reset_into(None, &mut obs, &mut mask);
                }
            }
            black_box(&obs);
        })
    });
    group.finish();
}

/// The partition env with LLaMA-7B in fine-grained (hierarchical: split, precision, heads and
/// FFN mode of a 4-layer window) mode.
fn bench_partition_hierarchical(c: &mut Criterion) {
    bench_partition(c, "partition_llama7b_hierarchical", ActionMode::Hierarchical);
}

fn bench_partition_layer_split(c: &mut Criterion) {
    bench_partition(c, "partition_llama7b_layer_split", ActionMode::LayerSplit);
}

fn bench_vector_partition(c: &mut Criterion) {
    const VECTOR_STEPS_PER_ITER: usize = STEPS_PER_ITER / N_VECTOR_ENVS;
    let sc = jetson(ActionMode::Hierarchical);
    let mut envs = VecEnv::new((0..N_VECTOR_ENVS).map(|_| PartitionEnv::new(sc.clone())).collect());
    let k = envs.spec().action.nvec.len();
    let actions = random_actions(&envs.members()[0], ACTION_TABLE_LEN * N_VECTOR_ENVS, 4);
    envs.reset(0);
    let mut row = 0usize;
    let mut group = c.benchmark_group("vector_partition_llama7b_hierarchical");
    group.throughput(Throughput::Elements((VECTOR_STEPS_PER_ITER * N_VECTOR_ENVS) as u64));
    group.bench_function(format!("step_{N_VECTOR_ENVS}_envs"), |b| {
        b.iter(|| {
            for _ in 0..VECTOR_STEPS_PER_ITER {
                let start = (row & (ACTION_TABLE_LEN - 1)) * N_VECTOR_ENVS * k;
                row = row.wrapping_add(1);
                envs.step(&actions[start..start + N_VECTOR_ENVS * k]).expect("repaired");
            }
            black_box(envs.obs());
        })
    });
    group.finish();
}

criterion_group!(
    benches,
    bench_cartpole,
    bench_vector_cartpole,
    bench_partition_hierarchical,
    bench_partition_layer_split,
    bench_vector_partition
);
criterion_main!(benches);
