//! Model-based RL with a learned reward surrogate on ALS's environment: how many expensive
//! evaluations it needs to reach a normalised score of 0.95 — (R − R_random)/(R_PPO − R_random),
//! R_PPO the final return of model-free PPO — against model-free PPO's own count (issue 13's
//! measure), on fixed seeds.

use rand::{RngExt, SeedableRng};
use splitwise_agents::{ActionChoice, AdvantageBaseline, Annealing, Mbrl, MbrlConfig, PolicyShape, Ppo, PpoConfig};
use splitwise_agents::{SurrogateConfig, evaluate};
use splitwise_env::als::{AlsConfig, AlsEnv};
use splitwise_env::expensive::ExpensiveReward;
use splitwise_env::rng::StreamRng;
use splitwise_env::vector::VecEnv;

const EVAL_SEED: u64 = 7919;
const EVAL_EPISODES_PER_MEMBER: usize = 8;

fn venv(seed: u64) -> VecEnv<AlsEnv> {
    let mut v = VecEnv::new((0..8).map(|_| AlsEnv::new(AlsConfig::default()).unwrap()).collect::<Vec<_>>());
    v.reset(seed);
    v
}

fn mean_return(records: &[splitwise_env::vector::EpisodeRecord]) -> f64 {
    records.iter().map(|r| r.episode_return).sum::<f64>() / records.len() as f64
}

fn eval(ppo: &Ppo) -> f64 {
    mean_return(&evaluate(ppo, &mut venv(1), EVAL_EPISODES_PER_MEMBER, EVAL_SEED).unwrap())
}

/// Uniformly random splits on the evaluation episodes.
fn random_return() -> f64 {
    let mut v = venv(1);
    v.reset(EVAL_SEED);
    let mut rng = StreamRng::seed_from_u64(3);
    let mut records = Vec::new();
    while records.len() < 8 * EVAL_EPISODES_PER_MEMBER {
        let actions: Vec<usize> = (0..8).map(|_| rng.random_range(0..10)).collect();
        v.step(&actions).unwrap();
        records.extend_from_slice(v.finished());
    }
    mean_return(&records)
}

/// Model-free PPO as ALS ran it (a critic baseline, γ 0.99), 64 updates of 8 × 64 steps.
fn model_free() -> PpoConfig {
    PpoConfig {
        n_envs: 8,
        n_steps: 64,
        batch_size: 128,
        n_epochs: 10,
        total_timesteps: 64 * 512,
        gamma: 0.99,
        normalize_obs: true,
        ..PpoConfig::default()
    }
}

#[test]
fn mbrl_reaches_95_percent_of_ppo_with_a_tenth_of_its_expensive_evaluations() {
    let r_random = random_return();
    // Model-free PPO: every real step's evaluations count.
    let mut real = venv(0);
    let mut ppo = Ppo::new(model_free(), PolicyShape::of(real.spec()), 0).unwrap();
    let mut evaluations = 0u64;
    let mut curve = Vec::new();
    for _ in 0..64 {
        ppo.collect_rollout_observed(&mut real, |v| {
            evaluations += v.infos().iter().map(|i| u64::from(AlsEnv::evaluations(i))).sum::<u64>()
        })
        .unwrap();
        ppo.update();
        curve.push((evaluations, eval(&ppo)));
    }
    let r_ppo = curve.last().unwrap().1;
    let score = |r: f64| (r - r_random) / (r_ppo - r_random);
    let ppo_at = curve.iter().find(|(_, r)| score(*r) >= 0.95).map(|(e, _)| *e).unwrap();
    println!("R_random {r_random:.4}, R_PPO {r_ppo:.4}; PPO reaches 0.95 after {ppo_at} evaluations");

    // MBRL: 8 real steps per iteration (one per member), the policy trained on the surrogate.
    let config = MbrlConfig {
        ppo: PpoConfig {
            n_envs: 8,
            n_steps: 256,
            batch_size: 256,
            n_epochs: 10,
            total_timesteps: 40 * 2 * 2048,
            learning_rate: 3e-4,
            lr_annealing: Annealing::Constant,
            gamma: 0.0,
            advantage: AdvantageBaseline::SelfCritical,
            ent_coef: 0.01,
            normalize_obs: true,
            ..PpoConfig::default()
        },
        surrogate: SurrogateConfig { epochs: 50, ..SurrogateConfig::default() },
        real_steps: 1,
        model_updates: 2,
    };
    let mut real = venv(0);
    let mut mbrl = Mbrl::new(config, PolicyShape::of(real.spec()), real.members()[0].component_inputs(), 0).unwrap();
    let mut reached = None;
    for i in 0..40 {
        let stats = mbrl.iterate(&mut real).unwrap();
        let r = eval(mbrl.ppo());
        println!(
            "iteration {i}: {} evaluations, {} samples, held-out RMSE {:.4}, score {:.3}",
            stats.spent.expensive_evaluations,
            stats.samples,
            stats.fit.map_or(f64::NAN, |f| f.holdout_rmse),
            score(r)
        );
        if score(r) >= 0.95 {
            reached = Some(stats.spent.expensive_evaluations);
            break;
        }
    }
    let mbrl_at = reached.expect("MBRL reaches 0.95 within 40 iterations");
    println!(
        "MBRL reaches 0.95 after {mbrl_at} evaluations (PPO: {ppo_at}, ratio {:.3})",
        mbrl_at as f64 / ppo_at as f64
    );
    // Which split the MBRL policy picks at each table noise level of the training range, and its
    // regret against the table optimum (reported, not asserted: the issue asserts regret for the
    // trained PPO policy, tests/cli_learning.rs).
    use splitwise_env::accuracy::{ALS_ERASURE_RATES, ALS_SURROGATE};
    let score_of = |row: usize, split: usize| 10.0 * ALS_SURROGATE[row][split - 1] + (10.0 - split as f64) / 10.0;
    for (row, &noise) in ALS_ERASURE_RATES.iter().enumerate().filter(|(_, p)| (0.08..=0.22).contains(*p)) {
        let best = (1..=10).map(|s| score_of(row, s)).fold(f64::NEG_INFINITY, f64::max);
        let split = mbrl.ppo().act(&[noise as f32, 4.0], &[true; 10], ActionChoice::Deterministic).unwrap()[0] + 1;
        println!("noise {noise}: layer {split}, regret {:.4}", best - score_of(row, split));
    }
    assert!(mbrl_at * 10 <= ppo_at, "MBRL {mbrl_at} evaluations against PPO's {ppo_at}");
}
