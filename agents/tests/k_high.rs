//! H-PPO's high level holding its choice for `k_high` slots (semi-MDP options): where it is
//! refused, how a held choice is kept and when it ends, in training rollouts and when acting over
//! episodes. The options' returns are checked by hand in `gae.rs`.

use serde::{Deserialize, Serialize};
use splitwise_agents::{ActionChoice, AdvantageBaseline, HighHold, Hppo, HppoConfig, PolicyShape, PpoConfig, PpoError};
use splitwise_env::api::{Env, EnvError, EnvSpec, StepMetrics, Transition};
use splitwise_env::spaces::{ActionSpace, Feature, ObservationSpace};
use splitwise_env::vector::VecEnv;

#[derive(Clone, Debug, Default)]
struct NoInfo;

impl StepMetrics for NoInfo {
    fn visit_scalars(&self, _visit: &mut dyn FnMut(&'static str, f64)) {}
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct LogState {
    step: u64,
    /// Every action taken since the member was built.
    actions: Vec<Vec<usize>>,
}

/// Two components (4 high values, 2 low values), everything legal, reward 0, episodes of
/// `LIMIT` slots (truncated); it records the actions it is given.
struct Log {
    spec: EnvSpec,
    state: LogState,
}

const LIMIT: u64 = 5;

impl Log {
    fn new() -> Self {
        let spec = EnvSpec {
            id: "Log-v0".into(),
            observation: ObservationSpace {
                layout: "log-v0".into(),
                features: vec![Feature::new("t", 0.0, 1.0, "1", "step / time limit")],
            },
            action: ActionSpace::multi_discrete(vec![("high".into(), 4), ("low".into(), 2)]),
            max_episode_steps: Some(LIMIT),
        };
        Self { spec, state: LogState { step: 0, actions: Vec::new() } }
    }
}

impl Env for Log {
    type Info = NoInfo;
    type State = LogState;

    fn spec(&self) -> &EnvSpec {
        &self.spec
    }

    fn reset_into(&mut self, _seed: Option<u64>, obs: &mut [f32], mask: &mut [bool]) -> NoInfo {
        self.state.step = 0;
        obs[0] = 0.0;
        mask.fill(true);
        NoInfo
    }

    fn step_into(
        &mut self,
        action: &[usize],
        obs: &mut [f32],
        mask: &mut [bool],
    ) -> Result<Transition<NoInfo>, EnvError> {
        self.state.actions.push(action.to_vec());
        self.state.step += 1;
        obs[0] = self.state.step as f32 / LIMIT as f32;
        mask.fill(true);
        Ok(Transition { reward: 0.0, terminated: false, truncated: self.state.step >= LIMIT, info: NoInfo })
    }

    fn save_state(&self) -> LogState {
        self.state.clone()
    }

    fn restore_state(&mut self, state: &LogState) -> Result<(), EnvError> {
        self.state = state.clone();
        Ok(())
    }
}

fn level(n_envs: usize, n_steps: usize) -> PpoConfig {
    PpoConfig { n_envs, n_steps, batch_size: n_envs * n_steps, n_epochs: 1, gamma: 0.9, ..PpoConfig::default() }
}

fn config(k_high: usize, n_envs: usize, n_steps: usize) -> HppoConfig {
    HppoConfig { high: level(n_envs, n_steps), low: level(n_envs, n_steps), n_high: 1, low_prior: 0.0, k_high }
}

fn shape() -> PolicyShape {
    PolicyShape::of(Log::new().spec())
}

#[test]
fn k_high_is_refused_where_an_option_has_no_meaning() {
    let err = |c: HppoConfig| Hppo::new(c, shape(), 0).err().unwrap();
    let e = err(config(0, 1, 4));
    assert!(matches!(&e, PpoError::Config(f) if f.field == "k_high"), "{e}");
    // One-slot probes cannot judge a k-slot option.
    for advantage in [AdvantageBaseline::SelfCritical, AdvantageBaseline::AllActions] {
        let mut c = config(3, 1, 4);
        c.high.advantage = advantage;
        c.high.gamma = 0.0;
        let e = err(c);
        assert!(
            matches!(&e, PpoError::Config(f) if f.field == "high.advantage" && f.allowed.contains("critic")),
            "{e}"
        );
    }
    // γ = 0 would judge an option by its first slot.
    let mut c = config(3, 1, 4);
    c.high.gamma = 0.0;
    let e = err(c);
    assert!(matches!(&e, PpoError::Config(f) if f.field == "high.gamma"), "{e}");
    // An option ends with its rollout: one longer than the rollout is never held.
    let e = err(config(5, 1, 4));
    assert!(matches!(&e, PpoError::Config(f) if f.field == "k_high" && f.allowed.contains("n_steps = 4")), "{e}");
    assert!(Hppo::new(config(3, 1, 4), shape(), 0).is_ok());
}

/// Two members, 12 slots per rollout, episodes of 5 slots, k_high = 3: each member's high
/// choices are held in runs that start at the rollout's first slot, every third slot after it
/// and at every episode start, so the high value is constant over slots 0–2, 3–4 (the episode
/// ends), 5–7, 8–9 (the episode ends), 10–11 (the rollout ends); the low value is free.
#[test]
fn a_rollout_holds_each_high_choice_for_k_slots_within_an_episode() {
    let mut env = VecEnv::new(vec![Log::new(), Log::new()]);
    env.reset(7);
    let mut hppo = Hppo::new(config(3, 2, 12), shape(), 7).unwrap();
    hppo.collect_rollout_observed(&mut env, |_| {}).unwrap();
    let runs = [0..3, 3..5, 5..8, 8..10, 10..12];
    let mut changes = 0;
    for member in env.members() {
        let high: Vec<usize> = member.state.actions.iter().map(|a| a[0]).collect();
        assert_eq!(high.len(), 12);
        for run in runs.clone() {
            assert!(high[run.clone()].iter().all(|&h| h == high[run.start]), "{high:?}");
        }
        // Teeth: the untrained high level samples near-uniformly over 4 values, so some runs
        // differ from the one before.
        changes += runs.windows(2).filter(|w| high[w[0].start] != high[w[1].start]).count();
    }
    assert!(changes > 0);
    // The update trains on the decisions only and runs.
    let [high, _low] = hppo.update();
    assert!(high.policy_loss.is_finite() && high.value_loss.is_finite());
}

/// Acting over episodes (evaluation): a forced decision is held for k = 3 calls even though the
/// greedy choice is another, then the high level decides again; an episode's end, or a mask that
/// forbids the held value, ends the hold at once.
#[test]
fn acting_over_episodes_holds_the_high_choice_until_k_slots_pass_or_it_is_forbidden() {
    let hppo = Hppo::new(config(3, 1, 4), shape(), 11).unwrap();
    let obs = [0.4f32];
    let all = [true; 6];
    let mut action = [0usize; 2];
    hppo.act_into_with(&obs, &all, ActionChoice::Deterministic, None, &mut action).unwrap();
    let greedy = action[0];
    let forced = (greedy + 1) % 4;
    let mut only_forced = [false, false, false, false, true, true];
    only_forced[forced] = true;
    let mut act = |hold: &mut HighHold, mask: &[bool]| {
        hppo.act_holding_into_with(&obs, mask, ActionChoice::Deterministic, None, hold, &mut action).unwrap();
        action[0]
    };
    let mut hold = HighHold::default();
    let got: Vec<usize> = [&only_forced, &all, &all, &all].iter().map(|m| act(&mut hold, *m)).collect();
    assert_eq!(got, [forced, forced, forced, greedy]);
    // An episode's end.
    let mut hold = HighHold::default();
    assert_eq!(act(&mut hold, &only_forced), forced);
    hold.end_episode(0);
    assert_eq!(act(&mut hold, &all), greedy);
    // The held value forbidden.
    let mut hold = HighHold::default();
    assert_eq!(act(&mut hold, &only_forced), forced);
    let mut not_forced = all;
    not_forced[forced] = false;
    assert_eq!(act(&mut hold, &not_forced), greedy);
    // k_high = 1 never holds.
    let every_slot = Hppo::new(config(1, 1, 4), shape(), 11).unwrap();
    let mut hold = HighHold::default();
    let mut a = [0usize; 2];
    every_slot.act_holding_into_with(&obs, &only_forced, ActionChoice::Deterministic, None, &mut hold, &mut a).unwrap();
    every_slot.act_holding_into_with(&obs, &all, ActionChoice::Deterministic, None, &mut hold, &mut a).unwrap();
    assert_eq!(a[0], greedy);
}
