//! A warm start by imitation (`PpoConfig::imitation`): while imitating, the teacher's actions are
//! the ones taken and the actor learns them by cross-entropy; then PPO takes over. Checked on
//! CartPole with a one-line teacher (push the cart towards the side the pole is falling to).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use splitwise_agents::{ActionChoice, AdvantageBaseline, Imitation, PolicyShape, Ppo, PpoConfig, PpoError, Teacher};
use splitwise_env::api::{Env, EnvError, EnvSpec, Transition};
use splitwise_env::cartpole::{CartPole, CartPoleInfo, CartPoleState};
use splitwise_env::vector::{EpisodeRecord, VecEnv};

/// CartPole's observation: cart position and velocity, pole angle and angular velocity.
const THETA: usize = 2;
const THETA_DOT: usize = 3;

fn rule(obs: &[f32]) -> usize {
    usize::from(obs[THETA] + obs[THETA_DOT] > 0.0)
}

/// The rule for every member; counts the episode ends it is told of. `value` overrides the
/// rule's choice (an illegal action).
#[derive(Default)]
struct RuleTeacher {
    episodes_ended: usize,
    value: Option<usize>,
}

impl<E: Env> Teacher<E> for RuleTeacher {
    fn act(&mut self, venv: &mut VecEnv<E>, out: &mut [usize]) -> Result<(), String> {
        let d = venv.spec().observation.dim();
        for (a, obs) in out.iter_mut().zip(venv.obs().chunks_exact(d)) {
            *a = self.value.unwrap_or_else(|| rule(obs));
        }
        Ok(())
    }

    fn episodes_ended(&mut self, finished: &[EpisodeRecord]) {
        self.episodes_ended += finished.len();
    }
}

fn config(updates: u64) -> PpoConfig {
    PpoConfig {
        n_envs: 2,
        n_steps: 128,
        batch_size: 64,
        n_epochs: 10,
        learning_rate: 1e-2,
        normalize_obs: true,
        imitation: Some(Imitation { teacher: "rule".into(), updates }),
        ..PpoConfig::default()
    }
}

fn setup(updates: u64) -> (Ppo, VecEnv<CartPole>) {
    let mut venv = VecEnv::new((0..2).map(|_| CartPole::new()).collect::<Vec<_>>());
    let ppo = Ppo::new(config(updates), PolicyShape::of(venv.members()[0].spec()), 3).unwrap();
    venv.reset(11);
    (ppo, venv)
}

/// The greedy policy's agreement with the rule on the states of a rollout the rule drove.
fn agreement(ppo: &Ppo, venv: &mut VecEnv<CartPole>) -> f64 {
    let d = venv.spec().observation.dim();
    let (mut same, mut total) = (0, 0);
    for _ in 0..200 {
        let obs = venv.obs().to_vec();
        let greedy = ppo.act(&obs, venv.masks(), ActionChoice::Deterministic).unwrap();
        let taught: Vec<usize> = obs.chunks_exact(d).map(rule).collect();
        same += greedy.iter().zip(&taught).filter(|(a, b)| a == b).count();
        total += taught.len();
        venv.step(&taught).unwrap();
    }
    same as f64 / total as f64
}

#[test]
fn the_learner_imitates_its_teacher_then_learns_by_ppo() {
    let (mut ppo, mut venv) = setup(12);
    let mut teacher = RuleTeacher::default();
    let before = agreement(&ppo, &mut venv);
    let mut episodes = 0;
    for n in 0..14u64 {
        assert_eq!(ppo.imitating(), n < 12);
        let rollout = ppo.collect_rollout_taught(&mut venv, Some(&mut teacher), |_| {}).unwrap();
        if n < 12 {
            episodes += rollout.episodes.len();
        }
        let stats = ppo.update();
        assert_eq!(stats.imitation, Some(n < 12), "update {n}");
        if n == 11 {
            assert_eq!(teacher.episodes_ended, episodes, "the teacher hears of every episode end while it acts");
            let after = agreement(&ppo, &mut venv);
            assert!(after > 0.95 && after > before + 0.2, "agreement with the teacher {before:.3} → {after:.3}");
        }
    }
    assert_eq!(teacher.episodes_ended, episodes, "after imitation the teacher is not asked");
    // Without a teacher configured, nothing is logged about imitation.
    let mut plain = Ppo::new(PpoConfig { imitation: None, ..config(1) }, ppo.shape().clone(), 3).unwrap();
    plain.collect_rollout(&mut venv).unwrap();
    assert_eq!(plain.update().imitation, None);
}

#[test]
fn imitating_without_a_teacher_or_with_an_illegal_action_is_an_error_naming_the_teacher() {
    let (mut ppo, mut venv) = setup(2);
    let e = ppo.collect_rollout(&mut venv).unwrap_err();
    assert!(matches!(&e, PpoError::Teacher { teacher, .. } if teacher == "rule"), "{e}");
    assert!(e.to_string().contains("none were given"), "{e}");
    let mut teacher = RuleTeacher { value: Some(5), ..RuleTeacher::default() };
    let e = ppo.collect_rollout_taught(&mut venv, Some(&mut teacher), |_| {}).unwrap_err();
    assert!(e.to_string().contains("imitation teacher `rule`: member 0: value 5 of action component 0"), "{e}");
}

/// CartPole that counts its saved states: the all-action advantage saves one per member and step
/// to probe every action from it.
struct Probed {
    env: CartPole,
    saves: Arc<AtomicUsize>,
}

impl Env for Probed {
    type Info = CartPoleInfo;
    type State = CartPoleState;

    fn spec(&self) -> &EnvSpec {
        self.env.spec()
    }

    fn reset_into(&mut self, seed: Option<u64>, obs: &mut [f32], mask: &mut [bool]) -> CartPoleInfo {
        self.env.reset_into(seed, obs, mask)
    }

    fn step_into(
        &mut self,
        action: &[usize],
        obs: &mut [f32],
        mask: &mut [bool],
    ) -> Result<Transition<CartPoleInfo>, EnvError> {
        self.env.step_into(action, obs, mask)
    }

    fn save_state(&self) -> CartPoleState {
        self.saves.fetch_add(1, Ordering::Relaxed);
        self.env.save_state()
    }

    fn restore_state(&mut self, state: &CartPoleState) -> Result<(), EnvError> {
        self.env.restore_state(state)
    }
}

/// While imitating, the all-action advantage's probes are not used (the loss is the
/// cross-entropy to the teacher), so the environment is not probed; PPO afterwards probes it.
#[test]
fn imitation_skips_the_all_action_probes_and_ppo_then_probes() {
    let saves = Arc::new(AtomicUsize::new(0));
    let mut venv =
        VecEnv::new((0..2).map(|_| Probed { env: CartPole::new(), saves: Arc::clone(&saves) }).collect::<Vec<_>>());
    venv.reset(11);
    let config = PpoConfig { advantage: AdvantageBaseline::AllActions, gamma: 0.0, ..config(1) };
    let mut ppo = Ppo::new(config, PolicyShape::of(venv.members()[0].spec()), 3).unwrap();
    let mut teacher = RuleTeacher::default();
    ppo.collect_rollout_taught(&mut venv, Some(&mut teacher), |_| {}).unwrap();
    ppo.update();
    assert_eq!(saves.load(Ordering::Relaxed), 0, "no probe while imitating");
    ppo.collect_rollout_taught(&mut venv, Some(&mut teacher), |_| {}).unwrap();
    assert_eq!(saves.load(Ordering::Relaxed), 2 * 128, "one saved state per member and step after imitating");
}
