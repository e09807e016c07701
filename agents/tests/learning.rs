//! The learner learns, end to end, on the small "guess the sign" environment (seconds, not
//! minutes): the greedy policy must guess the sign almost always and take the +0.5 bonus when it
//! is legal; with conditional masks no illegal action is ever submitted.

mod common;

use common::{GuessEnv, TIME_LIMIT, conditional_guess_venv, guess_venv};
use splitwise_agents::{PolicyShape, Ppo, PpoConfig, evaluate};
use splitwise_env::api::Env;

fn config() -> PpoConfig {
    PpoConfig {
        n_envs: 8,
        n_steps: 32,
        batch_size: 64,
        n_epochs: 4,
        learning_rate: 3e-3,
        actor_hidden: vec![32, 32],
        critic_hidden: vec![32, 32],
        normalize_obs: true,
        normalize_reward: true,
        ..PpoConfig::default()
    }
}

#[test]
fn greedy_policy_learns_signs_and_bonus() {
    let mut ppo = Ppo::new(config(), PolicyShape::of(GuessEnv::new().spec()), 3).unwrap();
    let mut venv = guess_venv(8, 11);
    let first = ppo.collect_rollout(&mut venv).unwrap();
    assert_eq!(first.steps, 256);
    let initial = first.mean_episode_return().unwrap();
    for _ in 0..40 {
        ppo.collect_rollout(&mut venv).unwrap();
        let stats = ppo.update();
        assert!(stats.policy_loss.is_finite() && stats.value_loss.is_finite() && stats.entropy.is_finite());
    }
    // Optimum: 8 right guesses + the bonus on the 4 even steps = 8 + 4·0.5 = 10 per episode.
    // A uniformly random policy gets 3 wrong guesses in ≈ 6 steps: return ≈ 3 + 0.5·... ≈ 4.
    let mut eval_venv = guess_venv(16, 12345);
    let episodes = evaluate(&ppo, &mut eval_venv, 2, 99).unwrap();
    assert_eq!(episodes.len(), 32);
    let mean = episodes.iter().map(|e| e.episode_return).sum::<f64>() / episodes.len() as f64;
    assert!(mean >= 9.5, "greedy return {mean} (random start {initial})");
    assert!(episodes.iter().all(|e| e.length == TIME_LIMIT), "some episode terminated early");
}

#[test]
fn conditional_masks_are_respected_and_stored() {
    // The env rejects (sign = 1, bonus = 1) even on even steps, where the observation's mask
    // allows bonus = 1: any action sampled from the observation's mask alone would soon make
    // `VecEnv::step` fail with ActionMasked. 20 rollouts × 256 steps ≈ 2500 such choices.
    let mut ppo = Ppo::new(config(), PolicyShape::of(GuessEnv::new().spec()), 5).unwrap();
    let mut venv = conditional_guess_venv(8, 21);
    for _ in 0..20 {
        ppo.collect_rollout(&mut venv).expect("no illegal action is submitted");
        ppo.update();
    }
    let mut eval_venv = conditional_guess_venv(8, 77);
    let episodes = evaluate(&ppo, &mut eval_venv, 1, 5).expect("greedy actions respect conditional masks");
    // Best now: guess right (8) and take the bonus only when guessing "negative" (≈ half of the
    // 4 even steps) → ≈ 9.
    let mean = episodes.iter().map(|e| e.episode_return).sum::<f64>() / episodes.len() as f64;
    assert!(mean >= 8.0, "greedy return {mean}");
}

#[test]
fn first_minibatch_reproduces_the_acting_log_probs() {
    // One epoch, one minibatch = the whole rollout: the parameters have not moved when the
    // ratio is computed, so π/π_old = 1 up to rounding (acting computes log π in f64 on the host,
    // the update in f32 tensors, |ln ρ| ~ 1e-7). In f32, ρ − 1 near 1 carries a rounding error of
    // up to 2^-24 ≈ 6e-8, so approx_kl = E[(ρ − 1) − ln ρ] is ~1e-8 rather than (ln ρ)²/2 ~ 1e-14;
    // 1e-6 bounds that. If the rollout stored the observation's masks instead of the conditional
    // ones, rows with sign = 1 on even steps would be scored over bonus ∈ {0, 1} instead of {0}:
    // |ln ρ| ≈ ln 2 on those rows and approx_kl ≫ 1e-3.
    let cfg = PpoConfig { n_epochs: 1, batch_size: 256, ..config() };
    let mut ppo = Ppo::new(cfg, PolicyShape::of(GuessEnv::new().spec()), 9).unwrap();
    let mut venv = conditional_guess_venv(8, 3);
    for _ in 0..3 {
        ppo.collect_rollout(&mut venv).unwrap();
        let stats = ppo.update();
        assert_eq!((stats.n_minibatches, stats.epochs_run), (1, 1));
        assert!(stats.approx_kl.abs() < 1e-6, "approx_kl {}", stats.approx_kl);
        assert_eq!(stats.clip_frac, 0.0);
    }
}
