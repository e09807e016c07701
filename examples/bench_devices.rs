//! PPO update and acting throughput on the CPU (burn's flex backend) against wgpu, on the
//! networks of `configs/ppo-jetson-layer-split.toml` (64×64 tanh actor and critic over the
//! Jetson scenario's observation, one action component of 33 values), for issue 15.
//!
//! - Update: one PPO update over a rollout of B samples with `batch_size = B` (one gradient step
//!   per epoch, 4 epochs), B = 256 … 65,536; samples per second = 4·B / update time, the median
//!   of 3 timed updates after one untimed warm-up (the GPU compiles its kernels there). The
//!   update is the standard (GAE) one, not the preset's all-action advantage, which adds an
//!   expectation over all 33 values to each minibatch and 33 env probes per sample.
//! - Acting (what `eval` runs): greedy actions for R rows, R = 1 … 65,536; rows per second.
//!
//! `scripts/bench_gpu.sh` builds this with `--features wgpu` and runs it; without the feature it
//! measures the CPU only. Output: a markdown table on stdout, and JSON lines with `--json PATH`.
//!
//! Timed by hand, not with criterion: each point is one long operation (an update of up to 262k
//! samples) on two devices at a dozen sizes, printed as a throughput table; criterion's
//! statistics over many short iterations would multiply the run time on a software GPU.

use splitwise_agents::compute_device::{ComputeDevice, Device};
use splitwise_agents::{ActionChoice, AdvantageBaseline, PolicyShape, Ppo, PpoConfig};
use splitwise_env::partition::PartitionEnv;
use splitwise_env::rng::derive_seed;
use splitwise_env::vector::VecEnv;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

const CONFIG: &str = "configs/ppo-jetson-layer-split.toml";
const UPDATE_BATCHES: &[usize] = &[256, 1024, 4096, 16_384, 65_536];
const ACT_ROWS: &[usize] = &[1, 8, 64, 1024, 8192, 65_536];
const EPOCHS: usize = 4;
const N_ENVS: usize = 64;

/// CPU against wgpu: PPO update and greedy acting throughput.
#[derive(clap::Parser)]
struct Args {
    /// Devices to measure, comma-separated (default: cpu, and wgpu in a build with the feature).
    #[arg(long, value_delimiter = ',', value_parser = splitwise::device::parser())]
    devices: Vec<ComputeDevice>,
    /// Also write one JSON object per measurement to this file.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Largest update batch and acting row count to measure.
    #[arg(long, default_value_t = 65_536)]
    max_batch: usize,
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// The preset's scenario and PPO config, read from the working directory (a copied binary run
/// from a checkout) or else from the checkout it was built in.
fn preset() -> (std::sync::Arc<splitwise_env::scenario::Scenario>, PpoConfig) {
    let path = if Path::new(CONFIG).is_file() {
        PathBuf::from(CONFIG)
    } else {
        Path::new(env!("CARGO_MANIFEST_DIR")).join(CONFIG)
    };
    let cfg = splitwise::config::load(&path).unwrap_or_else(|e| panic!("{}: {e:#}", path.display()));
    let scenario = cfg.scenario.clone().expect("a partition config");
    match cfg.config.agent {
        splitwise::config::AgentSection::Ppo(p) => (scenario, p),
        _ => panic!("{CONFIG} trains flat PPO"),
    }
}

fn venv(n: usize) -> VecEnv<PartitionEnv> {
    let (scenario, _) = preset();
    let mut venv = VecEnv::new((0..n).map(|_| PartitionEnv::new(scenario.clone())).collect());
    venv.reset(derive_seed(0, 1));
    venv
}

fn preset_ppo() -> PpoConfig {
    preset().1
}

/// Samples per second of PPO updates over batches of `batch` samples on `device`.
fn update_throughput(device: &Device, batch: usize) -> f64 {
    let mut config = preset_ppo();
    config.n_envs = N_ENVS;
    config.n_steps = batch / N_ENVS;
    config.batch_size = batch;
    config.n_epochs = EPOCHS;
    config.advantage = AdvantageBaseline::default();
    config.target_kl = None;
    let mut venv = venv(N_ENVS);
    let mut ppo = Ppo::new(config, PolicyShape::of(venv.spec()), 0).expect("a valid config");
    ppo.place(device, &Device::flex());
    let mut times = Vec::new();
    for round in 0..4 {
        ppo.collect_rollout(&mut venv).expect("rollout");
        let t = Instant::now();
        std::hint::black_box(ppo.update());
        if round > 0 {
            times.push(t.elapsed().as_secs_f64());
        }
    }
    (EPOCHS * batch) as f64 / median(times)
}

/// Rows per second of greedy acting on batches of `rows` rows on `device`.
fn act_throughput(device: &Device, rows: usize) -> f64 {
    let venv = venv(8);
    let mut ppo = Ppo::new(preset_ppo(), PolicyShape::of(venv.spec()), 0).expect("a valid config");
    ppo.place(device, device);
    let (obs1, masks1) = (venv.obs()[..venv.obs().len() / 8].to_vec(), venv.masks()[..venv.masks().len() / 8].to_vec());
    let obs: Vec<f32> = obs1.iter().copied().cycle().take(obs1.len() * rows).collect();
    let masks: Vec<bool> = masks1.iter().copied().cycle().take(masks1.len() * rows).collect();
    let mut actions = vec![0; rows];
    let mut act = || {
        ppo.act_into_with(&obs, &masks, ActionChoice::Deterministic, None, &mut actions).expect("acting");
    };
    act(); // warm-up (kernel compilation)
    // At least 0.5 s or 5 calls, whichever is longer.
    let (start, mut calls) = (Instant::now(), 0u64);
    while calls < 5 || start.elapsed().as_secs_f64() < 0.5 {
        act();
        calls += 1;
    }
    (rows as u64 * calls) as f64 / start.elapsed().as_secs_f64()
}

fn main() {
    let mut args = <Args as clap::Parser>::parse();
    if args.devices.is_empty() {
        args.devices = [ComputeDevice::Cpu, ComputeDevice::Wgpu].into_iter().filter(|d| d.built()).collect();
    }
    let mut json = Vec::new();
    let mut devices = Vec::new();
    for d in &args.devices {
        match d.open() {
            Ok(device) => devices.push((*d, device)),
            Err(e) => {
                eprintln!("error: {e}");
                std::process::exit(1);
            }
        }
    }
    let header: Vec<&str> = devices.iter().map(|(d, _)| d.name()).collect();
    println!("PPO update throughput (samples/s, {EPOCHS} epochs of one minibatch of B samples; {CONFIG} networks)\n");
    println!("| B | {} |", header.join(" | "));
    println!("|---|{}", "---|".repeat(header.len()));
    for &batch in UPDATE_BATCHES.iter().filter(|&&b| b <= args.max_batch) {
        let values: Vec<f64> = devices.iter().map(|(_, dev)| update_throughput(dev, batch)).collect();
        println!("| {batch} | {} |", values.iter().map(|v| format!("{v:.0}")).collect::<Vec<_>>().join(" | "));
        for ((d, _), v) in devices.iter().zip(&values) {
            json.push(
                serde_json::json!({"kind": "update", "device": d.name(), "batch": batch, "per_s": v}).to_string(),
            );
        }
        std::io::stdout().flush().ok();
    }
    println!("\nGreedy acting throughput (rows/s)\n");
    println!("| rows | {} |", header.join(" | "));
    println!("|---|{}", "---|".repeat(header.len()));
    for &rows in ACT_ROWS.iter().filter(|&&r| r <= args.max_batch) {
        let values: Vec<f64> = devices.iter().map(|(_, dev)| act_throughput(dev, rows)).collect();
        println!("| {rows} | {} |", values.iter().map(|v| format!("{v:.0}")).collect::<Vec<_>>().join(" | "));
        for ((d, _), v) in devices.iter().zip(&values) {
            json.push(serde_json::json!({"kind": "act", "device": d.name(), "rows": rows, "per_s": v}).to_string());
        }
        std::io::stdout().flush().ok();
    }
    if let Some(path) = args.json {
        // Written aside and renamed: a reader never sees half a file.
        let name = path.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
        let tmp = path.with_file_name(format!(".{name}.{}.tmp", std::process::id()));
        if let Err(e) = std::fs::write(&tmp, json.join("\n") + "\n").and_then(|()| std::fs::rename(&tmp, &path)) {
            eprintln!("error: cannot write {}: {e}", path.display());
            std::process::exit(1);
        }
    }
}
