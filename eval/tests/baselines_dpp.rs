//! The one-slot drift-plus-penalty minimiser: its prediction by hand, its choice against brute
//! force over a small plan space, and its candidate sets.

use splitwise_env::api::Env;
use splitwise_env::cost::PlanProfile;
use splitwise_env::lyapunov::{SlotOutcome, VirtualQueues, reward_terms};
use splitwise_env::model::{FfnKind, ModelArch};
use splitwise_env::partition::{PartitionEnv, obs_index};
use splitwise_env::plan::{FfnMode, LayerPlacement, Plan, Precision};
use splitwise_env::policy::{CloudOnly, DecisionContext, EdgeOnly, Policy, act_and_step};
use splitwise_env::public::{RequestEstimate, estimate_request, estimated_view, typical_request};
use splitwise_env::scenario::{NoTraces, Scenario, ScenarioConfig};
use splitwise_env::service::RequestCosts;
use splitwise_eval::baselines::common::ConditionSource;
use splitwise_eval::baselines::dpp::{
    Charging, DppOneSlot, Enumeration, ResidencyEstimate, SlotState, expected_starts, one_slot_bound,
};
use std::collections::HashSet;
use std::sync::Arc;

const JETSON: &str = include_str!("../../configs/jetson-llama7b-lte.toml");

#[test]
fn the_bound_of_a_plan_by_hand() {
    // Jetson scenario: concurrency 2, 1 s slots, queue capacity 64, 2 $/GPU-hour, 20 W active.
    // A plan serving a request in 0.8 s (0.3 s edge compute, 0.2 s cloud busy), 3 J, 0.1 GPU-s,
    // accuracy loss 0.01, edge share 0.25, a 5 % chance of failing for good; 0.25 s of weights
    // to load; Q = 1, â = 0.3. Per request b = max(0.8/2, 0.3) = 0.4 s (the batched cloud does
    // not serialise our requests); μ = 1/0.4 = 2.5 (a load shorter than the
    // slot moves starts, it does not remove them); n̄ = min(1.3, 2.5) = 1.3, so n = 1 with
    // probability 0.7 and n = 2 with probability 0.3. Each start waits 0.25²/(2·1) = 0.03125 s
    // more for the load; the switch costs 20 W × 0.25 s = 5 J.
    let sc = Scenario::from_toml(JETSON, &NoTraces).unwrap();
    let est = RequestEstimate {
        latency_s: 0.8,
        edge_energy_j: 3.0,
        cloud_gpu_s: 0.1,
        edge_compute_s: 0.3,
        cloud_busy_s: 0.2,
        crossings: 130.0,
        accuracy_loss: 0.01,
        failure_probability: 0.05,
        fallback_probability: 0.0,
    };
    let state =
        SlotState { backlog: 1.0, queues: VirtualQueues { energy_j: 5.0, accuracy: 0.01 }, expected_arrivals: 0.3 };
    assert!((expected_starts(&sc, &state, &est, 0.25) - 1.3).abs() < 1e-12);
    let price = 2.0 / 3600.0;
    // `charged` requests pay the per-request costs, `n` start, 1.3 − n stay queued (clamped
    // at 0) and `waiting` of them are charged one slot.
    let outcome = |n: usize, charged: f64, waiting: f64| {
        let nf = n as f64;
        SlotOutcome {
            slot_s: 1.0,
            backlog_before: 1.0,
            backlog_after: (1.3 - nf).max(0.0),
            n_started: n,
            latency_s: 0.8 * charged + 0.03125 * nf + waiting,
            energy_j: 3.0 * charged + 5.0,
            edge_energy_spent_j: 3.0 * nf + 5.0,
            accuracy_loss: 0.01 * charged,
            cloud_cost: 0.1 * charged * price,
            edge_load_fraction: 0.25 * charged,
            // 1.3 requests present fit the queue: nothing is dropped.
            dropped: 0.0,
            // Expected failures are charged like drops.
            failed: 0.05 * charged,
        }
    };
    let value = |o: &SlotOutcome| reward_terms(&sc.config.reward, o, &state.queues).0.drift_plus_penalty;
    // Starts: only the started requests are charged.
    let expected = 0.7 * value(&outcome(1, 1.0, 0.0)) + 0.3 * value(&outcome(2, 2.0, 0.0));
    let b = one_slot_bound(&sc, &state, &est, 0.25, 0.25, Charging::Starts);
    assert!((b.value - expected).abs() < 1e-12 * expected.abs(), "{} vs {expected}", b.value);
    assert!((b.expected_starts - 1.3).abs() < 1e-12);
    // Z_E' = max(5 + spent − 12 W × 1 s, 0): n = 1 → 1 J, n = 2 → 4 J; expectation 1.9 J.
    assert!((b.queues_after.energy_j - 1.9).abs() < 1e-12, "{:?}", b.queues_after);
    // Queue: all 1.3 present requests (2 when two start) are charged, 0.3 (0) wait a slot.
    let expected = 0.7 * value(&outcome(1, 1.3, 0.3)) + 0.3 * value(&outcome(2, 2.0, 0.0));
    let q = one_slot_bound(&sc, &state, &est, 0.25, 0.25, Charging::Queue);
    assert!((q.value - expected).abs() < 1e-12 * expected.abs(), "{} vs {expected}", q.value);
    // Same energy queue (it follows the starts); the accuracy loss of the deferred 0.3 is
    // charged now against the budget of the started one: n = 1 → max(0.01 + 1.3·0.01 − 0.02, 0)
    // = 0.003, n = 2 → 0; expectation 0.7 × 0.003 = 0.0021.
    assert_eq!(q.queues_after.energy_j, b.queues_after.energy_j);
    assert!((q.queues_after.accuracy - 0.0021).abs() < 1e-15, "{:?}", q.queues_after);
    // A load of a slot or more starts nothing: only the switch (20 W × 1.5 s = 30 J) and, under
    // Queue, the waiting of everyone present (1.3 s) and their per-request costs.
    let idle = |charged: f64, waiting: f64| SlotOutcome {
        energy_j: 3.0 * charged + 30.0,
        edge_energy_spent_j: 30.0,
        latency_s: 0.8 * charged + waiting,
        ..outcome(0, charged, waiting)
    };
    let stuck = one_slot_bound(&sc, &state, &est, 0.25, 1.5, Charging::Starts);
    assert_eq!(stuck.expected_starts, 0.0);
    assert!((stuck.value - value(&idle(0.0, 0.0))).abs() < 1e-12);
    let stuck = one_slot_bound(&sc, &state, &est, 0.25, 1.5, Charging::Queue);
    assert!((stuck.value - value(&idle(1.3, 1.3))).abs() < 1e-12);
}

/// A 4-layer, 2-head model (so the whole hierarchical action space is small) on the Jetson
/// scenario's devices and link, with a privacy floor of 1 layer and edge memory for about
/// 60 % of the model.
fn tiny() -> Arc<Scenario> {
    let mut cfg = ScenarioConfig::from_toml(JETSON).unwrap();
    cfg.model.preset = None;
    cfg.model.custom = Some(ModelArch {
        name: "tiny".into(),
        n_layers: 4,
        d_model: 512,
        n_heads: 2,
        n_kv_heads: 2,
        d_ff: 2048,
        ffn: FfnKind::SwiGlu,
        vocab_size: 8000,
        tied_embeddings: false,
        learned_positions: 0,
        biases: false,
        layernorm_bias: false,
    });
    cfg.actions.window_layers = 2;
    cfg.actions.head_step = 1;
    cfg.serving.privacy_floor_layers = 1;
    let full = Scenario::resolve(cfg.clone(), &NoTraces).unwrap();
    let all = full.memory.plan_bytes(&Plan::edge_only(4, 2, Precision::Bits16));
    cfg.edge.usable_memory_bytes = Some(0.6 * all);
    Arc::new(Scenario::resolve(cfg, &NoTraces).unwrap())
}

/// Every plan of the env's action space (by decoding every action), respecting the floor.
fn action_space_plans(env: &PartitionEnv) -> Vec<Plan> {
    let sc = env.scenario();
    let nvec = env.spec().action.nvec.clone();
    let mut seen = HashSet::new();
    let mut plans = Vec::new();
    let mut action = vec![0usize; nvec.len()];
    loop {
        let plan = env.plan_of_action(&action);
        if plan.respects_privacy_floor(sc.config.serving.privacy_floor_layers, sc.n_heads())
            && seen.insert(plan.clone())
        {
            plans.push(plan);
        }
        // Odometer increment.
        let mut k = 0;
        while k < nvec.len() {
            action[k] += 1;
            if action[k] < nvec[k] {
                break;
            }
            action[k] = 0;
            k += 1;
        }
        if k == nvec.len() {
            return plans;
        }
    }
}

#[test]
fn choice_equals_brute_force_over_the_whole_small_action_space() {
    // For 150 slots of an episode driven by the minimiser itself, its choice among every plan
    // of the tiny model's hierarchical action space equals brute force over the same plans with
    // the same predictor, computed from scratch: fresh profiles, `estimate_request`, the switch
    // load from a residency rebuilt from the executed plans, and `one_slot_bound`.
    let sc = tiny();
    let mut env = PartitionEnv::new(sc.clone());
    let plans = action_space_plans(&env);
    assert!(plans.len() > 100, "{}", plans.len());
    let (n_in, n_out) = typical_request(&sc);
    let mut scratch = RequestCosts::default();
    for charging in [Charging::Starts, Charging::Queue] {
        let mut dpp = DppOneSlot::with_plans(&sc, false, charging, plans.clone());
        assert_eq!(dpp.enumeration(), Enumeration::Given);
        let (mut obs, _) = env.reset(Some(21));
        dpp.reset(21);
        let mut residency = ResidencyEstimate::default();
        let mut predicted = VirtualQueues::default();
        let mut chosen = HashSet::new();
        for slot in 0..150 {
            let memory = env.available_edge_memory_bytes();
            let ctx = DecisionContext {
                obs: &obs.features,
                mask: &obs.mask,
                env: &env,
                oracle: None,
                edge_memory_bytes: memory,
            };
            let (i, bound) = dpp.choose(&ctx).expect("the floor plan fits");
            let plan = dpp.plans().nth(i).unwrap().clone();
            // Brute force.
            residency.add(env.current_plan());
            let state = SlotState::observe(&sc, &ctx, ConditionSource::Estimated, &predicted);
            let view = estimated_view(&sc, &obs.features);
            let mut best: Option<(f64, &Plan, VirtualQueues)> = None;
            for p in &plans {
                if sc.memory.plan_bytes(p) > memory {
                    continue;
                }
                let profile = PlanProfile::new(p, &sc.costs);
                let est = estimate_request(&sc, &profile, n_in, n_out, &view, &mut scratch);
                let load_s = if p == env.current_plan() {
                    0.0
                } else {
                    sc.edge.load_time_s(residency.missing_weight_bytes(&sc.memory, p))
                };
                let b = one_slot_bound(&sc, &state, &est, profile.edge_share, load_s, charging);
                if best.as_ref().is_none_or(|x| b.value < x.0) {
                    best = Some((b.value, p, b.queues_after));
                }
            }
            let (value, brute, queues) = best.unwrap();
            assert!(
                plan == *brute || (bound.value - value).abs() <= 1e-12 * value.abs(),
                "{charging:?} slot {slot}: minimiser {:?} ({}) vs brute force {:?} ({value})",
                plan.layers,
                bound.value,
                brute.layers
            );
            assert!((bound.value - value).abs() <= 1e-9 * value.abs().max(1e-9), "slot {slot}");
            predicted = queues;
            chosen.insert(plan.clone());
            env.step_plan_into(&plan, &mut obs.features, &mut obs.mask).unwrap();
        }
        // The conditions moved the choice around (the comparison is not about one plan).
        assert!(chosen.len() >= 2, "{charging:?}: {chosen:?}");
    }
}

#[test]
fn small_hierarchical_spaces_are_enumerated_exhaustively() {
    // Tiny model: 3 window positions × 5^2 window patterns × 3 precisions = 225 ≤ the limit, so
    // the candidate set is every action-space plan whose window layers are in the alphabet
    // {cloud, full edge, FFN split, heads only, half the heads}.
    let sc = tiny();
    let env = PartitionEnv::new(sc.clone());
    let dpp = DppOneSlot::new(&sc, false, Charging::Starts);
    assert_eq!(dpp.enumeration(), Enumeration::Exhaustive);
    let alphabet = [
        LayerPlacement::CLOUD,
        LayerPlacement::edge(2),
        LayerPlacement { edge_heads: 2, ffn: FfnMode::Split },
        LayerPlacement { edge_heads: 2, ffn: FfnMode::Cloud },
        LayerPlacement { edge_heads: 1, ffn: FfnMode::Cloud },
    ];
    let expected: HashSet<Plan> = action_space_plans(&env)
        .into_iter()
        .filter(|p| {
            let ws = (0..=2).find(|&ws| {
                p.layers[..ws].iter().all(|l| l.is_full_edge(2)) && p.layers[ws + 2..].iter().all(|l| l.is_cloud())
            });
            ws.is_some_and(|ws| p.layers[ws..ws + 2].iter().all(|l| alphabet.contains(l)))
        })
        .collect();
    let got: HashSet<Plan> = dpp.plans().cloned().collect();
    assert_eq!(got.len(), dpp.plans().count(), "no duplicates");
    assert_eq!(got, expected);
}

#[test]
fn large_spaces_keep_one_fine_grained_layer_and_every_candidate_is_an_action() {
    // LLaMA-7B, window 4, head step 8: 29 × 5^4 × 3 plans exceed the limit. One fine-grained layer:
    // per precision 33 layer splits + 32 boundary layers × 3 fine placements = 129; × 3 = 387.
    let sc = Arc::new(Scenario::from_toml(JETSON, &NoTraces).unwrap());
    let env = PartitionEnv::new(sc.clone());
    let dpp = DppOneSlot::new(&sc, false, Charging::Starts);
    assert_eq!(dpp.enumeration(), Enumeration::OneFineLayer);
    assert_eq!(dpp.plans().count(), 387);
    let (l, h, w, step) = (32usize, 32u32, 4usize, 8u32);
    for plan in dpp.plans() {
        let fine = plan.layers.iter().filter(|p| !p.is_cloud() && !p.is_full_edge(h)).count();
        assert!(fine <= 1);
        // The action that places its window over the first layer not fully on the edge.
        let first = plan.layers.iter().position(|p| !p.is_full_edge(h)).unwrap_or(l);
        let ws = first.min(l - w) as u32;
        let split = (0..=l as u32).find(|&s| env.window_start(s) == ws).unwrap();
        let mut action = vec![split as usize, plan.precision.index()];
        for p in &plan.layers[ws as usize..ws as usize + w] {
            action.push((u32::from(p.edge_heads) / step) as usize);
            action.push(p.ffn.index());
        }
        assert_eq!(env.plan_of_action(&action), *plan);
    }
}

/// The Pi 5 scenario after a few edge-only slots (every weight resident, so switching is free),
/// with the observation's features overridden.
fn pi5_context_features(overrides: &[(usize, f32)]) -> (Arc<Scenario>, PartitionEnv, Vec<f32>, Vec<bool>) {
    let sc = Arc::new(Scenario::from_toml(include_str!("../../configs/pi5-gpt2xl-wifi.toml"), &NoTraces).unwrap());
    let mut env = PartitionEnv::new(sc.clone());
    let (mut obs, _) = env.reset(Some(9));
    for _ in 0..5 {
        act_and_step(&mut env, &mut EdgeOnly, &mut obs).unwrap();
    }
    let mut features = obs.features.clone();
    for &(i, v) in overrides {
        features[i] = v;
    }
    (sc, env, features, obs.mask)
}

#[test]
fn the_boundary_precision_drops_with_the_bandwidth_estimate() {
    // Pi 5 + GPT-2 XL (privacy floor 2, accuracy budget 2 %), λ̂ at the peak rate, no backlog:
    // the minimiser keeps the floor and trades boundary bytes against quantisation loss. A
    // split plan sends the 1600-value hidden state up once per token: 3.2 kB at 16 bit, 1.6 kB
    // (+ scales) at 8 bit. At 31.6 Mbit/s that is ≈ 0.8 ms per token and full precision wins;
    // at 3.2 Mbit/s 16 bit costs ≈ 8 ms per token (0.4 s per request) and 8 bit wins; at
    // 0.8 Mbit/s 4 bit wins. Every choice is the brute-force argmin (see above); here the
    // direction: fewer bits as the estimate drops. (Not exactly 1 Mbit/s: log10 = 0 in both rate
    // features reads as "not measured yet" and the mean rate stands in.)
    let mut bits = Vec::new();
    for log_mbps in [1.5f32, 0.5, -0.1] {
        let (sc, env, features, mask) = pi5_context_features(&[
            (obs_index::BANDWIDTH_LAST, log_mbps),
            (obs_index::BANDWIDTH_EWMA, log_mbps),
            (obs_index::CLOUD_LOAD_EWMA, 0.3),
            (obs_index::ARRIVAL_RATE_EWMA, 1.0),
            (obs_index::BACKLOG_FRACTION, 0.0),
        ]);
        let memory = sc.edge.usable_memory_bytes;
        let ctx = DecisionContext { obs: &features, mask: &mask, env: &env, oracle: None, edge_memory_bytes: memory };
        let mut dpp = DppOneSlot::new(&sc, false, Charging::Starts);
        let (i, _) = dpp.choose(&ctx).unwrap();
        let plan = dpp.plans().nth(i).unwrap().clone();
        assert_eq!(plan.leading_edge_layers(25), 2, "the floor");
        bits.push(plan.precision.bits());
    }
    assert_eq!(bits, vec![16, 8, 4]);
}

#[test]
fn charging_only_starts_defers_service_under_a_backlog() {
    // Jetson after a few cloud-only slots, a busy cloud (0.9) and 8 queued requests. Charging
    // only the slot's starts (the env's accounting) makes a plan whose weight loading fills the
    // slot look cheapest (it starts nothing, so it is charged nothing but the load energy); the
    // queue charging serves (cloud-only, n̄ > 0) instead.
    let sc = Arc::new(Scenario::from_toml(JETSON, &NoTraces).unwrap());
    let mut env = PartitionEnv::new(sc.clone());
    let (mut obs, _) = env.reset(Some(9));
    for _ in 0..5 {
        act_and_step(&mut env, &mut CloudOnly, &mut obs).unwrap();
    }
    let mut features = obs.features.clone();
    features[obs_index::CLOUD_LOAD_EWMA] = 0.9;
    features[obs_index::BACKLOG_FRACTION] = 8.0 / 64.0;
    let memory = env.available_edge_memory_bytes();
    let ctx = DecisionContext { obs: &features, mask: &obs.mask, env: &env, oracle: None, edge_memory_bytes: memory };
    let mut starts = DppOneSlot::new(&sc, false, Charging::Starts);
    let (i, b) = starts.choose(&ctx).unwrap();
    let stalling = starts.plans().nth(i).unwrap().clone();
    assert_eq!(b.expected_starts, 0.0);
    // Nothing but the cloud-only plan ran, so every edge weight of the plan must be loaded.
    let mut resident = ResidencyEstimate::default();
    resident.add(env.current_plan());
    let load_s = sc.edge.load_time_s(resident.missing_weight_bytes(&sc.memory, &stalling));
    assert!(load_s >= 1.0 - 1e-9, "{load_s}");
    let mut queue = DppOneSlot::new(&sc, false, Charging::Queue);
    assert_eq!(queue.name(), "dpp-one-slot:queue");
    let (j, q) = queue.choose(&ctx).unwrap();
    assert!(queue.plans().nth(j).unwrap().is_cloud_only());
    assert!(q.expected_starts > 0.3, "{}", q.expected_starts);
}
