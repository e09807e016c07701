//! The PPO update is one shared gradient step over a policy-model trait (issue 12, item 1): a
//! refactor, not a change. Five CartPole updates with the RL Zoo hyperparameters leave every
//! parameter bit for bit where the learner before the refactor left them (fingerprint recorded
//! from commit 7b358aa, the last before the refactor), and the update statistics equal theirs.

use splitwise_agents::{PolicyShape, Ppo, PpoConfig};
use splitwise_env::cartpole::CartPole;
use splitwise_env::rng::derive_seed;
use splitwise_env::vector::VecEnv;

/// FNV-1a over the bits of every parameter, in visiting order.
fn fingerprint(values: &[Vec<f32>]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for v in values.iter().flatten() {
        for b in v.to_bits().to_le_bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    h
}

fn five_updates(seed: u64) -> (u64, Vec<(f64, f64, f64)>) {
    let config = PpoConfig::cartpole_zoo();
    let mut venv = VecEnv::new((0..config.n_envs).map(|_| CartPole::new()).collect());
    venv.reset(derive_seed(seed, 1));
    let mut ppo = Ppo::new(config, PolicyShape::of(venv.spec()), seed).unwrap();
    let mut stats = Vec::new();
    for _ in 0..5 {
        ppo.collect_rollout(&mut venv).unwrap();
        let u = ppo.update();
        stats.push((u.policy_loss, u.value_loss, u.grad_norm));
    }
    (fingerprint(&ppo.parameter_values()), stats)
}

#[test]
fn the_shared_ppo_step_reproduces_the_pre_refactor_learner_bit_for_bit_on_cartpole() {
    let (print, stats) = five_updates(0);
    assert_eq!(print, GOLDEN_FINGERPRINT, "parameters after five updates differ from the pre-refactor learner's");
    let bits: Vec<(u64, u64, u64)> = stats.iter().map(|s| (s.0.to_bits(), s.1.to_bits(), s.2.to_bits())).collect();
    assert_eq!(bits, GOLDEN_STATS);
}

/// Recorded with this test against commit 7b358aa (before the refactor).
const GOLDEN_FINGERPRINT: u64 = 0x779f_f4e3_9d68_55d7;
/// (policy loss, value loss, gradient norm) of each update, as f64 bits.
const GOLDEN_STATS: [(u64, u64, u64); 5] = [
    (13797061001614039450, 4623605456791247258, 4619778364138436858),
    (13799265281506908570, 4622480382202635878, 4621566706070149726),
    (13803184076749799424, 4620353650400480461, 4622661777528858088),
    (13799403164345250611, 4618551845235720192, 4622586076358015566),
    (13794904016854135603, 4618502700582463078, 4621091773692784299),
];

#[test]
fn learners_built_from_one_seed_have_their_own_weights_and_streams() {
    let config = PpoConfig::cartpole_zoo();
    let venv = VecEnv::new((0..config.n_envs).map(|_| CartPole::new()).collect());
    let shape = PolicyShape::of(venv.spec());
    let first = Ppo::new(config.clone(), shape.clone(), 3).unwrap();
    let learner0 = Ppo::new_learner(config.clone(), shape.clone(), 3, 0).unwrap();
    let learner1 = Ppo::new_learner(config.clone(), shape.clone(), 3, 1).unwrap();
    let learner1_again = Ppo::new_learner(config, shape, 3, 1).unwrap();
    assert_eq!(first.parameter_values(), learner0.parameter_values(), "learner 0 is Ppo::new");
    assert_ne!(learner0.parameter_values(), learner1.parameter_values());
    assert_eq!(learner1.parameter_values(), learner1_again.parameter_values());
    let rng = |p: &Ppo| p.export_state().unwrap().meta.rng;
    assert_eq!(rng(&first), rng(&learner0));
    assert_ne!(rng(&learner0), rng(&learner1));
}

/// `grad_clip = "per-network"` clips the actor's gradient by its own norm, so the actor's step
/// does not depend on the critic's loss at all: after an update it is where a learner that gives
/// the critic no weight (`vf_coef = 0`, global clip) puts it. With the global clip (the SB3
/// default) a larger critic loss shrinks the actor's step. (The critic's error is what scales
/// the actor away under rare, large rewards: docs/agents.md.)
#[test]
fn per_network_clipping_makes_the_actors_step_independent_of_the_critics_loss() {
    use splitwise_agents::GradClip;
    let actor_after_one_update = |grad_clip: GradClip, vf_coef: f64| {
        // A small bound, so that every variant's clip is active (the actor's norm alone is ~0.14).
        let config = PpoConfig { grad_clip, vf_coef, max_grad_norm: 0.05, ..PpoConfig::cartpole_zoo() };
        let mut venv = VecEnv::new((0..config.n_envs).map(|_| CartPole::new()).collect());
        venv.reset(derive_seed(3, 1));
        let mut ppo = Ppo::new(config, PolicyShape::of(venv.spec()), 3).unwrap();
        ppo.collect_rollout(&mut venv).unwrap();
        let u = ppo.update();
        assert!(u.grad_norm > 0.05, "the clip must be active for the comparison to mean anything: {}", u.grad_norm);
        let params = ppo.parameter_values();
        // The actor's tensors come first (ActorCritic visits the actor, then the critic), as
        // many as the critic's for these equal hidden sizes.
        params[..params.len() / 2].concat()
    };
    let close = |a: &[f32], b: &[f32]| a.iter().zip(b).all(|(x, y)| (x - y).abs() <= 1e-6 * (1.0 + x.abs()));
    let per_network = actor_after_one_update(GradClip::PerNetwork, 0.5);
    let no_critic = actor_after_one_update(GradClip::Global, 0.0);
    let global = actor_after_one_update(GradClip::Global, 0.5);
    assert!(close(&per_network, &no_critic), "per-network clipping: the actor's step depends on the critic");
    assert!(!close(&global, &no_critic), "global clipping: the critic's loss should shrink the actor's step");
}
