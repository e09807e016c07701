//! Learners across compute devices (issue 15). On every build: placing a learner on the CPU
//! changes nothing, bit for bit. With `--features wgpu` (a GPU, or Mesa's software Vulkan,
//! lavapipe: `scripts/wgpu_cross_device.sh`): PPO updates on wgpu track the same updates on flex
//! from the same seed within a stated tolerance, and learner states move between the devices
//! exactly.

use splitwise_agents::compute_device::{ComputeDevice, Device};
use splitwise_agents::{PolicyShape, Ppo, PpoConfig, UpdateStats};
use splitwise_env::cartpole::CartPole;
use splitwise_env::rng::derive_seed;
use splitwise_env::vector::VecEnv;

/// CartPole with the RL Zoo hyperparameters (each update: 20 epochs of one 256-sample minibatch).
fn cartpole(seed: u64) -> (VecEnv<CartPole>, Ppo) {
    let config = PpoConfig::cartpole_zoo();
    let mut venv = VecEnv::new((0..config.n_envs).map(|_| CartPole::new()).collect());
    venv.reset(derive_seed(seed, 1));
    let ppo = Ppo::new(config, PolicyShape::of(venv.spec()), seed).unwrap();
    (venv, ppo)
}

/// `updates` PPO updates, learning on `learn` (acting on flex), from seed 0.
fn train(learn: Option<&Device>, updates: usize) -> (Vec<UpdateStats>, Vec<Vec<f32>>) {
    let (mut venv, mut ppo) = cartpole(0);
    if let Some(device) = learn {
        ppo.place(device, &Device::flex());
    }
    let mut stats = Vec::new();
    for _ in 0..updates {
        ppo.collect_rollout(&mut venv).unwrap();
        stats.push(ppo.update());
    }
    (stats, ppo.parameter_values())
}

#[test]
fn placing_a_learner_on_the_cpu_changes_nothing() {
    let cpu = ComputeDevice::Cpu.open().unwrap();
    let (plain_stats, plain) = train(None, 3);
    let (placed_stats, placed) = train(Some(&cpu), 3);
    assert_eq!(plain, placed, "parameters after 3 updates");
    let bits =
        |s: &[UpdateStats]| s.iter().map(|u| (u.policy_loss.to_bits(), u.value_loss.to_bits())).collect::<Vec<_>>();
    assert_eq!(bits(&plain_stats), bits(&placed_stats));
}

#[cfg(feature = "wgpu")]
mod wgpu {
    use super::*;
    use splitwise_agents::ActionChoice;

    /// Largest |a − b| over every parameter.
    fn max_abs_diff(a: &[Vec<f32>], b: &[Vec<f32>]) -> f32 {
        assert_eq!(a.len(), b.len());
        a.iter().zip(b).flat_map(|(x, y)| x.iter().zip(y).map(|(p, q)| (p - q).abs())).fold(0.0, f32::max)
    }

    fn relative(a: f64, b: f64) -> f64 {
        (a - b).abs() / a.abs().max(b.abs()).max(1e-12)
    }

    /// Three updates (60 Adam steps) on wgpu and on flex from the same seed. Both act on flex, so
    /// the first rollout is identical and the later ones are the same unless a sampled action
    /// flips, which a difference of 1e-6 in a probability makes rare. The devices differ only by
    /// f32 rounding (the GPU sums in another order). Tolerances: the update statistics within
    /// 1e-3 relative, every parameter within 1e-4 absolute, a tenth of one Adam step at this
    /// learning rate (1e-3), so a lost or reset optimizer state would fail it. Measured on
    /// lavapipe (scripts/wgpu_cross_device.sh prints them): statistics within 2.5e-5 relative
    /// (approx KL; losses within 2.2e-6), parameters within 1.4e-6.
    #[test]
    fn ppo_updates_on_wgpu_track_flex_from_the_same_seed() {
        let gpu = ComputeDevice::Wgpu.open().expect("a wgpu adapter (install mesa-vulkan-drivers for a software one)");
        let (cpu_stats, cpu) = train(None, 3);
        let (gpu_stats, gpu_weights) = train(Some(&gpu), 3);
        for (k, (c, g)) in cpu_stats.iter().zip(&gpu_stats).enumerate() {
            for (what, a, b) in [
                ("policy loss", c.policy_loss, g.policy_loss),
                ("value loss", c.value_loss, g.value_loss),
                ("gradient norm", c.grad_norm, g.grad_norm),
                ("approx KL", c.approx_kl, g.approx_kl),
            ] {
                println!("update {k} {what}: flex {a:.9} wgpu {b:.9} (relative {:.2e})", relative(a, b));
                assert!(relative(a, b) <= 1e-3, "update {k} {what}: flex {a} wgpu {b}");
            }
        }
        let diff = max_abs_diff(&cpu, &gpu_weights);
        println!("largest parameter difference after 3 updates: {diff:.3e}");
        assert!(diff <= 1e-4, "largest parameter difference {diff}");
    }

    /// A state written on one device restores on the other with the same parameters, and
    /// training continues there (the Adam moments follow the parameters).
    #[test]
    fn learner_states_move_between_wgpu_and_flex_exactly() {
        let gpu = ComputeDevice::Wgpu.open().unwrap();
        let (mut venv, mut on_gpu) = cartpole(1);
        on_gpu.place(&gpu, &Device::flex());
        on_gpu.collect_rollout(&mut venv).unwrap();
        on_gpu.update();
        let state = on_gpu.export_state().unwrap();

        let mut on_cpu = Ppo::from_state(&state).unwrap();
        assert_eq!(on_cpu.parameter_values(), on_gpu.parameter_values(), "wgpu → flex");
        let mut back_on_gpu = Ppo::from_state(&on_cpu.export_state().unwrap()).unwrap();
        back_on_gpu.place(&gpu, &gpu);
        assert_eq!(back_on_gpu.parameter_values(), on_gpu.parameter_values(), "flex → wgpu");

        // Acting on wgpu: the same greedy actions as on flex.
        let (obs, masks) = (venv.obs().to_vec(), venv.masks().to_vec());
        let n = PpoConfig::cartpole_zoo().n_envs;
        let (mut on_flex_actions, mut on_gpu_actions) = (vec![0; n], vec![0; n]);
        on_cpu.act_into_with(&obs, &masks, ActionChoice::Deterministic, None, &mut on_flex_actions).unwrap();
        back_on_gpu.act_into_with(&obs, &masks, ActionChoice::Deterministic, None, &mut on_gpu_actions).unwrap();
        assert_eq!(on_flex_actions, on_gpu_actions);

        // Both continue from the same rollout (acting on flex): one more update each, within
        // the tolerance above.
        back_on_gpu.place(&gpu, &Device::flex());
        let saved = venv.save_state();
        let mut venv_b = VecEnv::new((0..n).map(|_| CartPole::new()).collect());
        venv_b.restore_state(&saved).unwrap();
        on_cpu.collect_rollout(&mut venv).unwrap();
        back_on_gpu.collect_rollout(&mut venv_b).unwrap();
        let (a, b) = (on_cpu.update(), back_on_gpu.update());
        assert!(relative(a.policy_loss, b.policy_loss) <= 1e-3, "{} vs {}", a.policy_loss, b.policy_loss);
        assert!(max_abs_diff(&on_cpu.parameter_values(), &back_on_gpu.parameter_values()) <= 1e-4);
    }
}
