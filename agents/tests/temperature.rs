//! Splitwise's softmax temperature schedule (`PpoConfig::temperature`): its values by hand, and
//! the update scores actions under the same tempered distribution they were drawn from.

use splitwise_agents::{PolicyShape, Ppo, PpoConfig, Temperature};
use splitwise_env::api::Env;
use splitwise_env::cartpole::CartPole;
use splitwise_env::vector::VecEnv;

#[test]
fn the_schedule_decays_by_its_factor_per_update_down_to_its_floor() {
    let t = Temperature::default();
    assert_eq!((t.start, t.decay, t.floor), (1.0, 0.995, 0.1), "Splitwise's values");
    assert_eq!(t.value(0), 1.0);
    assert!((t.value(1) - 0.995).abs() < 1e-15);
    assert!((t.value(100) - 0.995f64.powi(100)).abs() < 1e-15); // 0.6058
    // 0.995^459 = 0.10020 > 0.1 > 0.995^460 = 0.09970: the floor takes over at update 460.
    assert!(t.value(459) > 0.1);
    assert_eq!(t.value(460), 0.1);
    assert_eq!(t.value(u64::MAX), 0.1);
    let bad = PpoConfig { temperature: Some(Temperature { decay: 1.5, ..t }), ..PpoConfig::default() };
    assert!(bad.validate().unwrap_err().to_string().contains("temperature.decay"));
}

/// One epoch over one minibatch: before its only gradient step the new policy is the old one,
/// so if acting and scoring use the same τ the ratio is exactly 1 (no KL, nothing clipped), at
/// every update while τ decays. Scoring at τ = 1 what was drawn at τ = 0.3 would not be, once
/// the logits are no longer near zero (a fresh policy head is near-uniform at any τ).
#[test]
fn the_update_scores_actions_under_the_tempered_distribution_they_were_drawn_from() {
    for start in [1.0, 0.3] {
        let config = PpoConfig {
            n_envs: 2,
            n_steps: 64,
            batch_size: 128,
            n_epochs: 1,
            learning_rate: 1e-2,
            temperature: Some(Temperature { start, ..Temperature::default() }),
            ..PpoConfig::default()
        };
        let mut venv = VecEnv::new((0..2).map(|_| CartPole::new()).collect::<Vec<_>>());
        let mut ppo = Ppo::new(config, PolicyShape::of(venv.members()[0].spec()), 5).unwrap();
        venv.reset(9);
        let mut entropies = Vec::new();
        for n in 0..30 {
            let tau = ppo.temperature();
            assert!((f64::from(tau) - start * 0.995f64.powi(n)).abs() < 1e-6, "τ at update {n}: {tau}");
            ppo.collect_rollout(&mut venv).unwrap();
            let stats = ppo.update();
            assert_eq!(stats.temperature, f64::from(tau));
            assert!(stats.approx_kl.abs() < 1e-6 && stats.clip_frac == 0.0, "τ {start}, update {n}: {stats:?}");
            entropies.push(stats.entropy);
        }
        // The policy moved away from uniform (ln 2), so the check above had teeth.
        assert!(entropies.last().unwrap() < &0.6, "τ {start}: entropies {entropies:?}");
    }
}
