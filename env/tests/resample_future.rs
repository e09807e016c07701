//! `PartitionEnv::resample_future`: a sample of the future given the present, for a look-ahead
//! that must not see the true future (`oracle-mpc`). The present is kept (the decided slot is
//! drawn afresh, except an episode's first), the same salt gives the same future, the incremental replay cache gives what a fresh replay gives, and the
//! sampled futures have the law of the future given the state: in a tunnel (the Gilbert–Elliott
//! chain's Bad state, exponential sojourns of mean 20 s) the sampled time to leave it has mean
//! 20 s whatever the true residual is.

use splitwise_env::api::Env;
use splitwise_env::failure::GeState;
use splitwise_env::partition::PartitionEnv;
use splitwise_env::plan::{Plan, Precision};
use splitwise_env::scenario::{NoTraces, Scenario};
use std::num::NonZeroU64;
use std::sync::Arc;

const MEAN_BAD_S: f64 = 20.0;

/// GPT-2 Medium, 1 s slots, a regime-switching link rate and a Gilbert–Elliott chain (Good mean
/// 30 s, Bad mean 20 s), a two-regime cloud, Poisson arrivals.
fn scenario() -> Arc<Scenario> {
    scenario_with_bad_shape(1.0)
}

/// [`scenario`] with Gamma Bad sojourns of shape `shape` (1 = exponential).
fn scenario_with_bad_shape(shape: f64) -> Arc<Scenario> {
    let text = format!(
        r#"
        version = 1
        name = "resample-test"
        [model]
        preset = "gpt2-medium"
        [edge]
        preset = "jetson-orin-nx-16gb"
        [cloud]
        preset = "a100-80gb-sxm"
        [cloud_load]
        levels = [0.1, 0.9]
        mean_dwell_s = [40.0, 15.0]
        [link.rate]
        model = "rate"
        [link.rate.process]
        kind = "regimes"
        log_ar_coefficient_per_s = 0.9
        log_sigma = 0.3
        [[link.rate.process.regimes]]
        name = "good"
        mean_bps = 20e6
        min_bps = 1e6
        max_bps = 60e6
        mean_dwell_s = 50.0
        [[link.rate.process.regimes]]
        name = "poor"
        mean_bps = 2e6
        min_bps = 0.1e6
        max_bps = 10e6
        mean_dwell_s = 25.0
        [link.snr]
        mean_db = 20.0
        ar_coefficient_per_s = 0.9
        sigma_db = 3.0
        nakagami_m = 1.0
        [link.latency]
        one_way_s = 0.02
        jitter_s = 0.005
        [link.transport]
        mode = "reliable"
        packet_loss_threshold_db = -10.0
        [failures.gilbert_elliott]
        mean_good_s = 30.0
        mean_bad_s = {MEAN_BAD_S}
        sojourn_shape_bad = {shape:?}
        failure_probability_good = 0.0
        failure_probability_bad = 1.0
        [workload]
        [workload.arrivals]
        kind = "constant"
        rate_per_s = 0.2
        [workload.prompt_tokens]
        median_tokens = 64
        sigma = 0.3
        min_tokens = 8
        max_tokens = 256
        [workload.output_tokens]
        median_tokens = 32
        sigma = 0.3
        min_tokens = 4
        max_tokens = 128
        [serving]
        episode_slots = 4000
        [actions]
        mode = "layer-split"
    "#
    );
    Arc::new(Scenario::from_toml(&text, &NoTraces).unwrap())
}

fn salt(x: u64) -> NonZeroU64 {
    NonZeroU64::new(x).unwrap()
}

fn step(env: &mut PartitionEnv, plan: &Plan) {
    let (mut obs, mut mask) = env.buffers();
    env.step_plan_into(plan, &mut obs, &mut mask).unwrap();
}

/// An env of `sc` stepped `slots` slots (edge-only plan: the GPT-2 Medium fits) on seed 11.
fn stepped(sc: &Arc<Scenario>, slots: u32) -> PartitionEnv {
    let mut env = PartitionEnv::new(sc.clone());
    env.reset(Some(11));
    let plan = Plan::layer_split(sc.n_layers(), sc.n_heads(), sc.n_layers(), Precision::Bits16);
    for _ in 0..slots {
        step(&mut env, &plan);
    }
    env
}

#[test]
fn the_present_is_kept_and_the_same_salt_gives_the_same_future() {
    let sc = scenario();
    let mut env = stepped(&sc, 150);
    let state = env.save_state();
    let queued = env.queued();
    let truth = env.oracle_conditions();
    env.resample_future(salt(7));
    assert_eq!((env.slot(), env.queued()), (150, queued), "the slot and the queue are kept");
    let a = env.save_state();
    env.restore_state(&state).unwrap();
    env.resample_future(salt(7));
    assert_eq!(env.save_state(), a, "same salt, same future");
    // The decided slot itself is drawn afresh (a device decides before it sees it): over salts
    // its conditions vary and differ from the true ones.
    let mut differ = 0;
    for i in 1..=20 {
        env.restore_state(&state).unwrap();
        env.resample_future(salt(i));
        differ += usize::from(env.oracle_conditions() != truth);
    }
    assert!(differ >= 19, "the decided slot is resampled: {differ} of 20 differ");
    // The first slot of an episode has no previous one: it is kept.
    let mut first = stepped(&sc, 0);
    let truth0 = first.oracle_conditions();
    first.resample_future(salt(3));
    assert_eq!(first.oracle_conditions(), truth0);
}

#[test]
fn the_incremental_replay_gives_what_a_fresh_replay_gives() {
    // One env resamples at slots 10, 11, …, 60 (its cache advances slot by slot); a fresh env
    // restored from the same state at each slot replays from slot 0.
    let sc = scenario();
    let mut env = stepped(&sc, 10);
    let plan = Plan::cloud_only(sc.n_layers(), Precision::Bits16);
    let mut probe = PartitionEnv::new(sc.clone());
    for _ in 0..50 {
        let state = env.save_state();
        probe.restore_state(&state).unwrap();
        probe.resample_future(salt(99));
        let mut fresh = PartitionEnv::new(sc.clone());
        fresh.restore_state(&state).unwrap();
        fresh.resample_future(salt(99));
        assert_eq!(probe.save_state(), fresh.save_state(), "slot {}", env.slot());
        step(&mut env, &plan);
    }
}

#[test]
fn sampled_futures_forget_when_the_tunnel_ends() {
    // The true time to leave the Bad state is one number, the sampled ones are exponential
    // with mean 20 s from the previous slot's end (memoryless). Counted in whole slots that end in Bad, the
    // mean is E⌊X⌋ = 1/(e^{1/20} − 1) = 19.50 for X ~ Exp(mean 20 s), plus ~0.33 from the chain
    // leaving Good again inside the slot it entered it (probability ≈ 0.5/30, another 20 s).
    // 2,000 samples: sd 20/√2000 ≈ 0.45 s; allow 5 sd.
    let sc = scenario();
    let mut env = stepped(&sc, 0);
    let plan = Plan::layer_split(sc.n_layers(), sc.n_heads(), sc.n_layers(), Precision::Bits16);
    // A slot whose previous slot ended in Bad: the state the futures are drawn from is Bad.
    let mut previous_bad = false;
    while !(previous_bad && env.oracle_conditions().ge == GeState::Bad) {
        previous_bad = env.oracle_conditions().ge == GeState::Bad;
        step(&mut env, &plan);
    }
    let state = env.save_state();
    let slots_in_bad = |e: &mut PartitionEnv| {
        let mut n = 0u32;
        while e.oracle_conditions().ge == GeState::Bad && n < 2000 {
            step(e, &plan);
            n += 1;
        }
        f64::from(n)
    };
    let mut copy = PartitionEnv::new(sc.clone());
    copy.restore_state(&state).unwrap();
    let truth = slots_in_bad(&mut copy);
    let n = 2000;
    let mut sum = 0.0;
    let mut distinct = std::collections::BTreeSet::new();
    for i in 1..=n {
        env.restore_state(&state).unwrap();
        env.resample_future(salt(i));
        let d = slots_in_bad(&mut env);
        distinct.insert(d as u32);
        sum += d;
    }
    let mean = sum / n as f64;
    let expected = 1.0 / ((1.0 / MEAN_BAD_S).exp() - 1.0) + 0.33;
    assert!((mean - expected).abs() < 5.0 * MEAN_BAD_S / (n as f64).sqrt(), "mean {mean} (truth {truth})");
    assert!(distinct.len() > 40, "the sampled residuals vary: {} values", distinct.len());
}

#[test]
fn sampled_futures_of_a_scheduled_tunnel_remember_how_long_it_has_lasted() {
    // Bad sojourns Gamma(k = 16, θ = 20/16 s) (CV 0.25). The decided slot follows n = 16 slots
    // that ended in Bad after one that ended in Good, so at the end of the slot before it the
    // tunnel had lasted a ∈ (n − 1, n] s. A sampled future's residual R then has the law of
    // T − a given T > a: E[R] = (kθ·S_{k+1}(a) − a·S_k(a)) / S_k(a), S_j the survival of
    // Gamma(j, θ) (E[(T − a)⁺] = E[T; T > a] − a·S_k(a), and E[T; T > a] = kθ·S_{k+1}(a)).
    // Counted in whole slots that end in Bad that is about E[R] − 0.5, plus ~0.33 from
    // re-entering Bad inside the slot it left (as in the exponential test above): between 5.6 and
    // 6.1 here, where an exponential tunnel gives ~19.8 whatever a. 2,000 samples, R's sd below
    // 5 s: allow 5·5/√2000 = 0.56 beyond that range.
    use statrs::distribution::{ContinuousCDF, Gamma};
    const K: f64 = 16.0;
    const N_BAD: u32 = 16;
    let theta = MEAN_BAD_S / K;
    let sc = scenario_with_bad_shape(K);
    assert!(sc.has_scheduled_outages() && !scenario().has_scheduled_outages());
    let mut env = stepped(&sc, 0);
    let plan = Plan::layer_split(sc.n_layers(), sc.n_heads(), sc.n_layers(), Precision::Bits16);
    let (mut bad_slots, mut seen_good) = (0, false);
    loop {
        let bad = env.oracle_conditions().ge == GeState::Bad;
        if bad && seen_good && bad_slots == N_BAD {
            break;
        }
        seen_good |= !bad;
        bad_slots = if bad { bad_slots + 1 } else { 0 };
        step(&mut env, &plan);
    }
    let state = env.save_state();
    let expected = |a: f64| {
        let survival = |shape: f64| 1.0 - Gamma::new(shape, 1.0 / theta).unwrap().cdf(a);
        (K * theta * survival(K + 1.0) - a * survival(K)) / survival(K) - 0.5 + 0.33
    };
    let (low, high) = (expected(f64::from(N_BAD)), expected(f64::from(N_BAD - 1)));
    let n = 2000;
    let mut sum = 0.0;
    for i in 1..=n {
        env.restore_state(&state).unwrap();
        env.resample_future(salt(i));
        let mut slots = 0u32;
        while env.oracle_conditions().ge == GeState::Bad && slots < 2000 {
            step(&mut env, &plan);
            slots += 1;
        }
        sum += f64::from(slots);
    }
    let mean = sum / n as f64;
    assert!(high < 6.2, "16 s into a 20 s tunnel leaves little: {low}..{high}");
    assert!(mean > low - 0.56 && mean < high + 0.56, "mean {mean}, want {low}..{high}");
}

/// Each slot's conditions record the regimes behind its values (what `oracle-regime` keys on):
/// the rate lies inside its recorded regime's bounds, the load near its recorded level, both
/// chains visit every regime, and they spend the share of time their dwell means give (rate
/// good 50 / (50 + 25) = 2/3, cloud quiet 40 / (40 + 15) = 0.73).
#[test]
fn slot_conditions_record_the_regimes_behind_their_values() {
    let sc = scenario();
    let mut env = stepped(&sc, 0);
    let (mut rate_good, mut cloud_quiet, n) = (0u32, 0u32, 20_000u32);
    let plan = Plan::layer_split(sc.n_layers(), sc.n_heads(), sc.n_layers(), Precision::Bits16);
    for k in 0..n {
        if k % 4000 == 0 {
            env.reset(Some(100 + u64::from(k)));
        }
        let x = env.oracle_conditions();
        let (lo, hi) = [(1e6, 60e6), (0.1e6, 10e6)][x.rate_regime];
        assert!(
            (lo..=hi).contains(&x.link.rate_bps),
            "slot {k}: rate {} outside regime {}",
            x.link.rate_bps,
            x.rate_regime
        );
        let level = [0.1, 0.9][x.cloud_level];
        assert!((x.cloud_load - level).abs() < 0.4, "slot {k}: load {} at level {level}", x.cloud_load);
        rate_good += u32::from(x.rate_regime == 0);
        cloud_quiet += u32::from(x.cloud_level == 0);
        step(&mut env, &plan);
    }
    let (good, quiet) = (f64::from(rate_good) / f64::from(n), f64::from(cloud_quiet) / f64::from(n));
    assert!((good - 2.0 / 3.0).abs() < 0.08, "rate good share {good}");
    assert!((quiet - 40.0 / 55.0).abs() < 0.08, "cloud quiet share {quiet}");
}
