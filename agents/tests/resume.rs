//! Exact resume: N updates without interruption must equal N/2 updates, export of the agent and
//! vector-env state, a restore into a fresh agent and fresh vector env, and N/2 more — bit for
//! bit (weights, Adam state, normaliser statistics, RNG, every statistic), on the small test env
//! and on CartPole-v1.

mod common;

use common::{GuessEnv, guess_venv};
use splitwise_agents::{Annealing, PolicyShape, Ppo, PpoConfig, PpoState, UpdateStats};
use splitwise_env::api::Env;
use splitwise_env::cartpole::CartPole;
use splitwise_env::vector::{EpisodeRecord, VecEnv};

fn guess_config() -> PpoConfig {
    PpoConfig {
        n_envs: 4,
        n_steps: 16,
        batch_size: 24, // 64 samples → minibatches of 24, 24, 16 (SB3's remainder)
        n_epochs: 3,
        total_timesteps: 64 * 8,
        learning_rate: 3e-3,
        lr_annealing: Annealing::Linear,
        clip_annealing: Annealing::Linear,
        clip_range_vf: Some(0.2),
        ent_coef: 0.01,
        target_kl: Some(0.5),
        actor_hidden: vec![16, 16],
        critic_hidden: vec![16],
        normalize_obs: true,
        normalize_reward: true,
        ..PpoConfig::default()
    }
}

/// What one iteration produced, without wall times (the only legitimately varying fields).
type Iteration = (UpdateStats, Vec<EpisodeRecord>);

fn train<E: Env>(ppo: &mut Ppo, venv: &mut VecEnv<E>, updates: usize) -> Vec<Iteration> {
    (0..updates)
        .map(|_| {
            let rollout = ppo.collect_rollout(venv).expect("rollout");
            (UpdateStats { update_time_s: 0.0, ..ppo.update() }, rollout.episodes)
        })
        .collect()
}

fn weights_of(ppo: &Ppo) -> Vec<Vec<f32>> {
    ppo.parameter_values()
}

/// Trains `n` updates straight and `n/2 + n/2` with a save/restore in between; asserts equality.
/// Returns the straight run's iterations for further checks.
fn assert_exact_resume<E: Env>(config: PpoConfig, make_venv: impl Fn(u64) -> VecEnv<E>, n: usize) -> Vec<Iteration> {
    let shape = PolicyShape::of(make_venv(0).spec());

    let mut straight = Ppo::new(config.clone(), shape.clone(), 42).unwrap();
    let mut venv = make_venv(7);
    let run_straight = train(&mut straight, &mut venv, n);

    let mut first = Ppo::new(config, shape, 42).unwrap();
    let mut venv_a = make_venv(7);
    let mut run_resumed = train(&mut first, &mut venv_a, n / 2);
    let saved: PpoState = first.export_state().unwrap();
    let saved_env = venv_a.save_state();
    drop(first);
    drop(venv_a);

    // Round-trip the serde part through JSON, as the app will write it to disk.
    let meta_json = serde_json::to_string(&saved.meta).unwrap();
    let reloaded = PpoState { meta: serde_json::from_str(&meta_json).unwrap(), ..saved.clone() };
    assert_eq!(reloaded, saved);

    let mut second = Ppo::from_state(&reloaded).unwrap();
    let mut venv_b = make_venv(999); // a different seed: restore_state must override it
    venv_b.restore_state(&saved_env).unwrap();
    run_resumed.extend(train(&mut second, &mut venv_b, n - n / 2));

    assert!(run_resumed == run_straight, "statistics or episodes differ after resume");
    assert_eq!(second.export_state().unwrap().meta, straight.export_state().unwrap().meta);
    // The burnpack blobs themselves differ (they record each parameter's random `ParamId`), so
    // the weights are compared as tensors, bit for bit.
    assert!(weights_of(&second) == weights_of(&straight), "weights differ after resume");
    // The Adam moments are compared through their use: one more update must still agree.
    assert!(train(&mut straight, &mut venv, 1) == train(&mut second, &mut venv_b, 1));
    assert!(weights_of(&second) == weights_of(&straight), "weights differ one update later");
    run_straight
}

#[test]
fn interrupted_training_continues_bit_identically() {
    let run = assert_exact_resume(guess_config(), |seed| guess_venv(4, seed), 6);
    // Training did something: the schedules moved and episodes of both kinds of end occurred.
    assert!(run[0].0.learning_rate > run[5].0.learning_rate);
    let episodes: Vec<&EpisodeRecord> = run.iter().flat_map(|(_, e)| e).collect();
    assert!(episodes.iter().any(|e| e.truncated) && episodes.iter().any(|e| !e.truncated));
}

#[test]
fn interrupted_cartpole_training_continues_bit_identically() {
    // The RL Zoo preset with both normalisers on, 8 updates of 256 steps.
    let config = PpoConfig { normalize_obs: true, normalize_reward: true, ..PpoConfig::cartpole_zoo() };
    let cartpole_venv = |seed| {
        let mut venv = VecEnv::new((0..8).map(|_| CartPole::new()).collect());
        venv.reset(seed);
        venv
    };
    assert_exact_resume(config, cartpole_venv, 8);
}

#[test]
fn restore_rejects_a_state_of_another_shape() {
    let shape = PolicyShape::of(GuessEnv::new().spec());
    let saved = Ppo::new(guess_config(), shape.clone(), 1).unwrap().export_state().unwrap();
    let other = PpoConfig { critic_hidden: vec![8], ..guess_config() };
    let mut ppo = Ppo::new(other, shape, 1).unwrap();
    let err = ppo.restore_state(&saved).unwrap_err().to_string();
    assert!(err.contains("critic_hidden"), "{err}");
}
