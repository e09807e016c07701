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

/// The preset's scenario and PPO config, loaded once.
struct Preset {
    scenario: std::sync::Arc<splitwise_env::scenario::Scenario>,
    ppo: PpoConfig,
}

impl Preset {
    /// From the working directory (a copied binary run from a checkout), else from the checkout
    /// it was built in.
    fn load() -> Result<Self, String> {
        let path = if Path::new(CONFIG).is_file() {
            PathBuf::from(CONFIG)
        } else {
            Path::new(env!("CARGO_MANIFEST_DIR")).join(CONFIG)
        };
        let cfg = splitwise::config::load(&path).map_err(|e| format!("{e:#}"))?;
        let scenario = cfg.scenario.clone().ok_or_else(|| format!("{}: not a partition config", path.display()))?;
        match cfg.config.agent {
            splitwise::config::AgentSection::Ppo(ppo) => Ok(Self { scenario, ppo }),
            _ => Err(format!("{}: not a flat PPO config", path.display())),
        }
    }

    fn venv(&self, n: usize) -> VecEnv<PartitionEnv> {
        let mut venv = VecEnv::new((0..n).map(|_| PartitionEnv::new(self.scenario.clone())).collect());
        venv.reset(derive_seed(0, 1));
        venv
    }
}

/// Samples per second of PPO updates over batches of `batch` samples on `device`.
fn update_throughput(preset: &Preset, device: &Device, batch: usize) -> f64 {
    let mut config = preset.ppo.clone();
    config.n_envs = N_ENVS;
    config.n_steps = batch / N_ENVS;
    config.batch_size = batch;
    config.n_epochs = EPOCHS;
    config.advantage = AdvantageBaseline::default();
    config.target_kl = None;
    let mut venv = preset.venv(N_ENVS);
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
fn act_throughput(preset: &Preset, device: &Device, rows: usize) -> f64 {
    let venv = preset.venv(8);
    let mut ppo = Ppo::new(preset.ppo.clone(), PolicyShape::of(venv.spec()), 0).expect("a valid config");
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

/// One markdown table (a row per size, a column per device) and a JSON line per cell.
#[allow(clippy::too_many_arguments)]
fn table(
    title: &str,
    size_name: &str,
    kind: &str,
    size_key: &str,
    sizes: &[usize],
    devices: &[(ComputeDevice, Device)],
    json: &mut Vec<String>,
    measure: impl Fn(&Device, usize) -> f64,
) {
    let header: Vec<&str> = devices.iter().map(|(d, _)| d.name()).collect();
    println!("{title}\n");
    println!("| {size_name} | {} |", header.join(" | "));
    println!("|---|{}", "---|".repeat(header.len()));
    for &n in sizes {
        let values: Vec<f64> = devices.iter().map(|(_, dev)| measure(dev, n)).collect();
        println!("| {n} | {} |", values.iter().map(|v| format!("{v:.0}")).collect::<Vec<_>>().join(" | "));
        for ((d, _), v) in devices.iter().zip(&values) {
            json.push(serde_json::json!({"kind": kind, "device": d.name(), size_key: n, "per_s": v}).to_string());
        }
        std::io::stdout().flush().ok();
    }
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
    let preset = match Preset::load() {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    };
    let title =
        format!("PPO update throughput (samples/s, {EPOCHS} epochs of one minibatch of B samples; {CONFIG} networks)");
    let sizes = |all: &[usize]| all.iter().copied().filter(|&n| n <= args.max_batch).collect::<Vec<_>>();
    table(&title, "B", "update", "batch", &sizes(UPDATE_BATCHES), &devices, &mut json, |d, n| {
        update_throughput(&preset, d, n)
    });
    println!();
    table("Greedy acting throughput (rows/s)", "rows", "act", "rows", &sizes(ACT_ROWS), &devices, &mut json, |d, n| {
        act_throughput(&preset, d, n)
    });
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
