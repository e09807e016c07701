//! CartPole-v1 is solved: with the RL Zoo hyperparameters, the mean return of 20 deterministic
//! episodes reaches Gymnasium's threshold 475 within 100k env steps, for two seeds. Evaluation
//! runs every 2048 training steps. Runtime: ≈ 1.5–3.5 s per seed in a release build on one core of
//! the CI machine (solved at 10k–20k steps); `agents/examples/cartpole_seeds.rs` runs all five
//! seeds and reports timings.

use splitwise_agents::{PolicyShape, Ppo, PpoConfig, evaluate};
use splitwise_env::cartpole::CartPole;
use splitwise_env::rng::derive_seed;
use splitwise_env::vector::VecEnv;

const SOLVED_RETURN: f64 = 475.0;
const BUDGET_STEPS: u64 = 100_000;
const EVAL_EVERY_STEPS: u64 = 2048;

/// Env steps at which 20 greedy episodes first averaged ≥ 475, or `None`.
fn steps_to_solve(seed: u64) -> Option<u64> {
    let config = PpoConfig::cartpole_zoo();
    let mut venv = VecEnv::new((0..config.n_envs).map(|_| CartPole::new()).collect());
    venv.reset(derive_seed(seed, 1));
    let mut eval_venv = VecEnv::new((0..20).map(|_| CartPole::new()).collect());
    let mut ppo = Ppo::new(config, PolicyShape::of(venv.spec()), seed).unwrap();
    let mut next_eval = EVAL_EVERY_STEPS;
    while ppo.progress().global_step < BUDGET_STEPS {
        ppo.collect_rollout(&mut venv).unwrap();
        ppo.update();
        let step = ppo.progress().global_step;
        if step >= next_eval {
            next_eval += EVAL_EVERY_STEPS;
            let episodes = evaluate(&ppo, &mut eval_venv, 1, derive_seed(seed, step)).unwrap();
            let mean = episodes.iter().map(|e| e.episode_return).sum::<f64>() / episodes.len() as f64;
            if mean >= SOLVED_RETURN {
                return Some(step);
            }
        }
    }
    None
}

#[test]
fn cartpole_v1_solved_within_100k_steps() {
    for seed in [0, 1] {
        let solved = steps_to_solve(seed);
        assert!(solved.is_some(), "seed {seed}: not solved within {BUDGET_STEPS} steps");
    }
}
