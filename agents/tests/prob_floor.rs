//! The probability floor (`PpoConfig::prob_floor`): with the all-action advantage, a value the
//! policy dropped while another was better comes back once it is the better one. Without the
//! floor its probability, and with it the expected gradient that would raise it, has collapsed.

use burn::tensor::{Device, Tensor, TensorData};
use serde::{Deserialize, Serialize};
use splitwise_agents::{ActionChoice, AdvantageBaseline, PolicyShape, Ppo, PpoConfig};
use splitwise_env::api::{Env, EnvError, EnvSpec, StepMetrics, Transition};
use splitwise_env::spaces::{ActionSpace, Feature, ObservationSpace};
use splitwise_env::vector::VecEnv;

#[derive(Clone, Debug, Default)]
struct NoInfo;

impl StepMetrics for NoInfo {
    fn visit_scalars(&self, _visit: &mut dyn FnMut(&'static str, f64)) {}
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct SwitchState {
    /// Steps taken by this member since it was built (a reset does not clear it).
    total: u64,
    step: u64,
}

/// `ARMS` arms and a constant observation. For the first `SWITCH` steps of a member arm 0 pays 1
/// and the others 0; from then on arm 1 pays 1 and the others 0. Nothing in the observation says
/// which phase it is, so the policy must move its mass from arm 0 to arm 1.
struct Switch {
    spec: EnvSpec,
    state: SwitchState,
}

const ARMS: usize = 8;
const LIMIT: u64 = 16;
const STEPS_PER_UPDATE: u64 = 64;
/// Phase 1 lasts 10 updates (64 steps per member per rollout).
const SWITCH: u64 = 10 * STEPS_PER_UPDATE;
/// Phase 2 lasts 6 updates: measured, the floored policy (p = 0.01) puts more mass on arm 1 than on
/// arm 0 after 4–5 of them (seeds 0–2), the unfloored one after 12 (seed 0).
const UPDATES: usize = 16;

impl Switch {
    fn new() -> Self {
        let spec = EnvSpec {
            id: "Switch-v0".into(),
            observation: ObservationSpace {
                layout: "switch-v0".into(),
                features: vec![Feature::new("c", 0.0, 1.0, "1", "a constant")],
            },
            action: ActionSpace::discrete(ARMS, "arm"),
            max_episode_steps: Some(LIMIT),
        };
        Self { spec, state: SwitchState { total: 0, step: 0 } }
    }
}

impl Env for Switch {
    type Info = NoInfo;
    type State = SwitchState;

    fn spec(&self) -> &EnvSpec {
        &self.spec
    }

    fn reset_into(&mut self, _seed: Option<u64>, obs: &mut [f32], mask: &mut [bool]) -> NoInfo {
        self.state.step = 0;
        obs[0] = 0.5;
        mask.fill(true);
        NoInfo
    }

    fn step_into(
        &mut self,
        action: &[usize],
        obs: &mut [f32],
        mask: &mut [bool],
    ) -> Result<Transition<NoInfo>, EnvError> {
        let best = if self.state.total < SWITCH { 0 } else { 1 };
        let reward = if action[0] == best { 1.0 } else { 0.0 };
        self.state.total += 1;
        self.state.step += 1;
        obs[0] = 0.5;
        mask.fill(true);
        Ok(Transition { reward, terminated: false, truncated: self.state.step >= LIMIT, info: NoInfo })
    }

    fn save_state(&self) -> SwitchState {
        self.state.clone()
    }

    fn restore_state(&mut self, state: &SwitchState) -> Result<(), EnvError> {
        self.state = state.clone();
        Ok(())
    }
}

fn config(prob_floor: f64) -> PpoConfig {
    PpoConfig {
        n_envs: 4,
        n_steps: STEPS_PER_UPDATE as usize,
        batch_size: 128,
        n_epochs: 4,
        learning_rate: 3e-3,
        gamma: 0.0,
        advantage: AdvantageBaseline::AllActions,
        prob_floor,
        ..PpoConfig::default()
    }
}

/// The policy's probabilities at the constant observation.
fn probs(ppo: &Ppo) -> Vec<f64> {
    let obs = Tensor::<2>::from_data(TensorData::new(vec![0.5f32], [1, 1]), &Device::flex());
    let logits: Vec<f32> = ppo.actor().forward(obs).into_data().try_into_vec().unwrap();
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let e: Vec<f64> = logits.iter().map(|&l| f64::from(l - max).exp()).collect();
    let z: f64 = e.iter().sum();
    e.iter().map(|x| x / z).collect()
}

/// The greedy arm after `UPDATES` updates, and the smallest probability at the switch.
fn train(prob_floor: f64, seed: u64) -> (usize, f64) {
    let mut env = VecEnv::new((0..4).map(|_| Switch::new()).collect::<Vec<_>>());
    env.reset(seed);
    let mut ppo = Ppo::new(config(prob_floor), PolicyShape::of(env.spec()), seed).unwrap();
    let mut at_switch = f64::NAN;
    for u in 0..UPDATES {
        ppo.collect_rollout(&mut env).unwrap();
        ppo.update();
        if (u + 1) as u64 * STEPS_PER_UPDATE == SWITCH {
            at_switch = probs(&ppo).into_iter().fold(f64::INFINITY, f64::min);
        }
    }
    (ppo.act(&[0.5], &[true; ARMS], ActionChoice::Deterministic).unwrap()[0], at_switch)
}

#[test]
fn a_floored_policy_takes_back_an_arm_it_had_dropped() {
    let floor = 0.01;
    for seed in 0..3u64 {
        let (arm, lowest) = train(floor, seed);
        // The floor held through phase 1 (a hinge: the probabilities hover around it) ...
        assert!(lowest > floor / 2.0, "seed {seed}: smallest probability {lowest}");
        // ... and the policy moved to the arm that pays now.
        assert_eq!(arm, 1, "seed {seed}");
    }
    // Teeth: without the floor phase 1 drives the other arms' probabilities far below it (seed 0:
    // 2.6·10⁻⁶ at the switch) and the policy is still on arm 0 after the same budget.
    for seed in 0..3u64 {
        let (arm, lowest) = train(0.0, seed);
        assert!(lowest < floor / 100.0, "seed {seed}: smallest probability without the floor {lowest}");
        assert_eq!(arm, 0, "seed {seed}");
    }
}
