//! CartPole-v1 solve benchmark for the PPO learner: for each seed, train with the RL Zoo
//! CartPole hyperparameters and evaluate 20 deterministic episodes every `--eval-every` env steps;
//! "solved" = mean evaluation return ≥ 475 within `--budget` training steps (100k). Prints
//! per-seed steps to solve, wall time, SPS and where the time went (env, acting, update, eval).
//!
//! `cargo run --release -p splitwise-agents --example cartpole_seeds -- --seeds 0,1,2,3,4`

use splitwise_agents::{PolicyShape, Ppo, PpoConfig, evaluate};
use splitwise_env::cartpole::CartPole;
use splitwise_env::rng::derive_seed;
use splitwise_env::vector::VecEnv;
use std::time::Instant;

/// Gymnasium's CartPole-v1 `reward_threshold`.
const SOLVED_RETURN: f64 = 475.0;
const EVAL_EPISODES: usize = 20;

struct Args {
    seeds: Vec<u64>,
    eval_every: u64,
    budget: u64,
    normalize: bool,
    verbose: bool,
    /// Overrides of the preset (hyperparameter sweeps).
    n_epochs: Option<usize>,
    n_steps: Option<usize>,
    batch_size: Option<usize>,
    n_envs: Option<usize>,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        seeds: vec![0, 1, 2, 3, 4],
        eval_every: 2048,
        budget: 100_000,
        normalize: false,
        verbose: false,
        n_epochs: None,
        n_steps: None,
        batch_size: None,
        n_envs: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = |name: &str| it.next().ok_or(format!("{name} needs a value"));
        match flag.as_str() {
            "--seeds" => {
                args.seeds = value("--seeds")?
                    .split(',')
                    .map(|s| s.trim().parse().map_err(|e| format!("--seeds: {s}: {e}")))
                    .collect::<Result<_, _>>()?
            }
            "--eval-every" => {
                args.eval_every = value("--eval-every")?.parse().map_err(|e| format!("--eval-every: {e}"))?
            }
            "--budget" => args.budget = value("--budget")?.parse().map_err(|e| format!("--budget: {e}"))?,
            "--normalize" => args.normalize = true,
            "--epochs" => args.n_epochs = Some(value("--epochs")?.parse().map_err(|e| format!("--epochs: {e}"))?),
            "--n-steps" => args.n_steps = Some(value("--n-steps")?.parse().map_err(|e| format!("--n-steps: {e}"))?),
            "--batch" => args.batch_size = Some(value("--batch")?.parse().map_err(|e| format!("--batch: {e}"))?),
            "--n-envs" => args.n_envs = Some(value("--n-envs")?.parse().map_err(|e| format!("--n-envs: {e}"))?),
            "--verbose" => args.verbose = true,
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(args)
}

#[derive(Default)]
struct Run {
    solved_at: Option<u64>,
    last_eval: f64,
    steps: u64,
    wall_s: f64,
    env_s: f64,
    policy_s: f64,
    update_s: f64,
    eval_s: f64,
    updates: u64,
    /// FNV-1a over the bits of every weight at the end: equal hashes = bit-identical runs.
    weights_hash: u64,
}

fn run(seed: u64, args: &Args) -> Result<Run, Box<dyn std::error::Error>> {
    let zoo = PpoConfig::cartpole_zoo();
    let config = PpoConfig {
        normalize_obs: args.normalize,
        normalize_reward: args.normalize,
        n_epochs: args.n_epochs.unwrap_or(zoo.n_epochs),
        n_steps: args.n_steps.unwrap_or(zoo.n_steps),
        batch_size: args.batch_size.unwrap_or(zoo.batch_size),
        n_envs: args.n_envs.unwrap_or(zoo.n_envs),
        ..zoo
    };
    config.validate()?;
    let start = Instant::now();
    let mut venv = VecEnv::new((0..config.n_envs).map(|_| CartPole::new()).collect());
    venv.reset(derive_seed(seed, 1));
    let mut eval_venv = VecEnv::new((0..EVAL_EPISODES).map(|_| CartPole::new()).collect());
    let mut ppo = Ppo::new(config, PolicyShape::of(venv.spec()), seed)?;
    let mut r = Run::default();
    let mut next_eval = args.eval_every;
    let mut eval_round = 0;
    while ppo.progress().global_step < args.budget {
        let rollout = ppo.collect_rollout(&mut venv)?;
        let update = ppo.update();
        r.env_s += rollout.env_time_s;
        r.policy_s += rollout.policy_time_s;
        r.update_s += update.update_time_s;
        r.updates += 1;
        let step = ppo.progress().global_step;
        if step >= next_eval || step >= args.budget {
            next_eval += args.eval_every;
            let t = Instant::now();
            eval_round += 1;
            let episodes = evaluate(&ppo, &mut eval_venv, 1, derive_seed(seed, 1_000 + eval_round))?;
            r.eval_s += t.elapsed().as_secs_f64();
            r.last_eval = episodes.iter().map(|e| e.episode_return).sum::<f64>() / episodes.len() as f64;
            if args.verbose {
                println!(
                    "  seed {seed} step {step:6}: eval {:6.1}, train {:6.1}, pl {:+.4} vl {:.4} ent {:.3} kl {:.4} cf {:.3} ev {:.3} lr {:.2e}",
                    r.last_eval,
                    rollout.mean_episode_return().unwrap_or(f64::NAN),
                    update.policy_loss,
                    update.value_loss,
                    update.entropy,
                    update.approx_kl,
                    update.clip_frac,
                    update.explained_variance,
                    update.learning_rate
                );
            }
            if r.last_eval >= SOLVED_RETURN {
                r.solved_at = Some(step);
                break;
            }
        }
    }
    r.steps = ppo.progress().global_step;
    // The clock stops here, before the diagnostic hash: the SB3 side of
    // scripts/bench_ppo_cartpole.sh stops its clock when `learn()` returns.
    r.wall_s = start.elapsed().as_secs_f64();
    r.weights_hash = weights_hash(&ppo);
    Ok(r)
}

fn weights_hash(ppo: &Ppo) -> u64 {
    use burn::module::{Module, ModuleVisitor, Param};
    use burn::tensor::Tensor;
    struct Fnv(u64);
    impl ModuleVisitor for Fnv {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            for x in param.val().into_data().iter::<f32>() {
                for byte in x.to_bits().to_le_bytes() {
                    self.0 = (self.0 ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01B3);
                }
            }
        }
    }
    let mut h = Fnv(0xcbf2_9ce4_8422_2325);
    ppo.networks().visit(&mut h);
    h.0
}

fn main() {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("cartpole_seeds: {e}");
            std::process::exit(2);
        }
    };
    println!(
        "PPO CartPole-v1 (RL Zoo hyperparameters{}), eval {EVAL_EPISODES} deterministic episodes every {} steps, budget {} steps, RAYON_NUM_THREADS={}",
        if args.normalize { " + obs/reward normalisation" } else { "" },
        args.eval_every,
        args.budget,
        std::env::var("RAYON_NUM_THREADS").unwrap_or_else(|_| "unset".into())
    );
    println!(
        "seed  solved_at  eval_return  steps   wall_s   sps    env_s  act_s  update_s  eval_s  ms/update  weights_fnv"
    );
    let mut solved = 0;
    for &seed in &args.seeds {
        match run(seed, &args) {
            Ok(r) => {
                solved += usize::from(r.solved_at.is_some());
                println!(
                    "{seed:4}  {:>9}  {:11.1}  {:6}  {:7.2}  {:6.0}  {:5.2}  {:5.2}  {:8.2}  {:6.2}  {:9.2}  {:016x}",
                    r.solved_at.map_or("no".to_string(), |s| s.to_string()),
                    r.last_eval,
                    r.steps,
                    r.wall_s,
                    r.steps as f64 / r.wall_s,
                    r.env_s,
                    r.policy_s,
                    r.update_s,
                    r.eval_s,
                    1e3 * r.update_s / r.updates.max(1) as f64,
                    r.weights_hash
                );
            }
            Err(e) => println!("{seed:4}  error: {e}"),
        }
    }
    println!("solved {solved}/{}", args.seeds.len());
}
