//! The layer-wise partitioners on hand-checked cases: Neurosurgeon follows the bandwidth
//! estimate, the static best split is the argmin under mean conditions, the memory-proportional
//! split is llama.cpp RPC's / exo's proportional count.

use splitwise_env::api::Env;
use splitwise_env::cost::PlanProfile;
use splitwise_env::partition::{PartitionEnv, obs_index};
use splitwise_env::plan::{Plan, Precision};
use splitwise_env::policy::{CloudOnly, Decision, DecisionContext, Policy, act_and_step};
use splitwise_env::public::{estimate_request, estimated_view, slot_view, typical_request};
use splitwise_env::scenario::{NoTraces, Scenario};
use splitwise_env::service::{RequestCosts, SlotView};
use splitwise_eval::baselines::layer_wise::{
    MemoryProportional, Neurosurgeon, Objective, StaticBest, memory_proportional_layers,
};
use std::sync::Arc;

fn scenario(text: &str) -> Arc<Scenario> {
    Arc::new(Scenario::from_toml(text, &NoTraces).unwrap())
}

fn plan_of(d: Decision) -> Plan {
    match d {
        Decision::Plan(p) => p,
        Decision::Action(a) => panic!("layer-wise baselines return plans, got action {a:?}"),
    }
}

/// The cut in `floor..=L` minimising latency (or edge energy) under `view` among those fitting
/// `memory`, by brute force through the env's request estimate.
fn best_cut_by_brute_force(sc: &Scenario, view: &SlotView, memory: f64, objective: Objective) -> u32 {
    let (l, h) = (sc.n_layers(), sc.n_heads());
    let (n_in, n_out) = typical_request(sc);
    let mut scratch = RequestCosts::default();
    let floor = sc.config.serving.privacy_floor_layers;
    (floor..=l)
        .filter(|&s| sc.memory.plan_bytes(&Plan::layer_split(l, h, s, Precision::Bits16)) <= memory)
        .map(|s| {
            let plan = Plan::layer_split(l, h, s, Precision::Bits16);
            let e = estimate_request(sc, &PlanProfile::new(&plan, &sc.costs), n_in, n_out, view, &mut scratch);
            (s, objective.of(&e))
        })
        .min_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(s, _)| s)
        .unwrap()
}

#[test]
fn neurosurgeon_moves_the_cut_to_the_edge_when_the_bandwidth_estimate_drops() {
    // Pi 5 + GPT-2 XL, privacy floor 2. At 60 Mbit/s a split plan's per-token round trip is
    // ≈ 2 × 12 ms one-way + 3.2 kB / 60 Mbit/s ≈ 25 ms, plus ≈ 4.5 ms per edge layer (61 MB of
    // FP16 weights at 17.1 GB/s × 0.8) and ≈ 2.7 ms for the cloud's 46 layers, while the whole
    // model on the Pi takes ≈ 0.23 s per token: the floor (2) wins. At 20 kbit/s the hidden
    // state alone takes 3200 B × 8 / 20 kbit/s = 1.28 s per token up: edge-only (48) wins.
    let sc = scenario(include_str!("../../configs/pi5-gpt2xl-wifi.toml"));
    let mut env = PartitionEnv::new(sc.clone());
    let (mut obs, _) = env.reset(Some(4));
    for _ in 0..3 {
        act_and_step(&mut env, &mut CloudOnly, &mut obs).unwrap();
    }
    let memory = env.available_edge_memory_bytes();
    let mut ns = Neurosurgeon::new(&sc, Objective::Latency, false);
    assert!(!ns.is_oracle() && ns.name() == "neurosurgeon");
    let mut cut_at = |mbps: f64| {
        let mut features = obs.features.clone();
        let log_mbps = mbps.log10() as f32;
        features[obs_index::BANDWIDTH_LAST] = log_mbps;
        features[obs_index::BANDWIDTH_EWMA] = log_mbps;
        let ctx =
            DecisionContext { obs: &features, mask: &obs.mask, env: &env, oracle: None, edge_memory_bytes: memory };
        let plan = plan_of(ns.decide(&ctx));
        let cut = plan.leading_edge_layers(sc.n_heads());
        assert_eq!(plan, Plan::layer_split(48, 25, cut, Precision::Bits16));
        let view = estimated_view(&sc, &features);
        assert!((view.conditions.up_rate_bps / (mbps * 1e6) - 1.0).abs() < 1e-5);
        assert_eq!(cut, best_cut_by_brute_force(&sc, &view, memory, Objective::Latency), "at {mbps} Mbit/s");
        cut
    };
    assert_eq!(cut_at(60.0), 2);
    assert_eq!(cut_at(0.02), 48);
}

#[test]
fn oracle_neurosurgeon_reads_the_true_rate() {
    // Same hand numbers as above, now through the true conditions of the slot: whatever the
    // observation says, a true rate of 20 kbit/s gives edge-only and 60 Mbit/s the floor.
    let sc = scenario(include_str!("../../configs/pi5-gpt2xl-wifi.toml"));
    let mut env = PartitionEnv::new(sc.clone());
    let (obs, _) = env.reset(Some(4));
    let memory = env.available_edge_memory_bytes();
    let truth = env.oracle_conditions();
    let mut ns = Neurosurgeon::new(&sc, Objective::Latency, true);
    assert!(ns.is_oracle() && ns.name() == "oracle-neurosurgeon");
    for (rate_bps, expected) in [(60e6, 2), (20e3, 48)] {
        let mut x = truth;
        x.link.rate_bps = rate_bps;
        x.link.packet_loss_probability = 0.0;
        x.cloud_load = 0.2;
        let ctx = DecisionContext {
            obs: &obs.features,
            mask: &obs.mask,
            env: &env,
            oracle: Some(x),
            edge_memory_bytes: memory,
        };
        let cut = plan_of(ns.decide(&ctx)).leading_edge_layers(25);
        assert_eq!(cut, expected, "true rate {rate_bps}");
        assert_eq!(cut, best_cut_by_brute_force(&sc, &slot_view(&sc, &x), memory, Objective::Latency));
    }
}

#[test]
fn neurosurgeon_energy_objective_is_the_energy_argmin_and_respects_memory() {
    // S23 + LLaMA-13B: 5 layers fit the phone (env partition test); the energy objective picks
    // the argmin of the estimated edge energy among cuts 1..=5, and with memory for 3 layers
    // it never exceeds 3.
    let sc = scenario(include_str!("../../configs/s23-llama13b-5g-fading.toml"));
    let mut env = PartitionEnv::new(sc.clone());
    let (mut obs, _) = env.reset(Some(8));
    for _ in 0..5 {
        act_and_step(&mut env, &mut CloudOnly, &mut obs).unwrap();
    }
    let mut ns = Neurosurgeon::new(&sc, Objective::Energy, false);
    assert_eq!(ns.name(), "neurosurgeon:energy");
    let view = estimated_view(&sc, &obs.features);
    let (l, h) = (sc.n_layers(), sc.n_heads());
    let three = sc.memory.plan_bytes(&Plan::layer_split(l, h, 3, Precision::Bits16));
    for memory in [sc.edge.usable_memory_bytes, three] {
        let ctx =
            DecisionContext { obs: &obs.features, mask: &obs.mask, env: &env, oracle: None, edge_memory_bytes: memory };
        let cut = plan_of(ns.decide(&ctx)).leading_edge_layers(h);
        assert_eq!(cut, best_cut_by_brute_force(&sc, &view, memory, Objective::Energy));
        assert!((1..=5).contains(&cut) && (memory > three || cut <= 3), "{cut}");
    }
}

/// GPT-2 Medium on a Jetson next to an idle A100 over a constant link, privacy floor 1, fixed
/// 64/64-token requests (the env's calm test scenario with a floor).
fn calm(one_way_s: f64, bandwidth_bps: f64) -> Arc<Scenario> {
    let text = format!(
        r#"
        version = 1
        name = "calm"
        [model]
        preset = "gpt2-medium"
        [edge]
        preset = "jetson-orin-nx-16gb"
        [cloud]
        preset = "a100-80gb-sxm"
        [link.rate]
        model = "rate"
        [link.rate.process]
        kind = "constant"
        bandwidth_bps = {bandwidth_bps}
        [link.snr]
        mean_db = 60.0
        ar_coefficient_per_s = 0.5
        sigma_db = 0.0
        nakagami_m = 100.0
        [link.latency]
        one_way_s = {one_way_s}
        jitter_s = 0.0
        [link.transport]
        mode = "reliable"
        packet_loss_threshold_db = -40.0
        [workload]
        [workload.arrivals]
        kind = "constant"
        rate_per_s = 0.05
        [workload.prompt_tokens]
        median_tokens = 64
        sigma = 0.0
        min_tokens = 64
        max_tokens = 64
        [workload.output_tokens]
        median_tokens = 64
        sigma = 0.0
        min_tokens = 64
        max_tokens = 64
        [serving]
        privacy_floor_layers = 1
        [actions]
        mode = "layer-split"
    "#
    );
    scenario(&text)
}

#[test]
fn static_best_is_the_argmin_under_mean_conditions() {
    // GPT-2 Medium FP16: 24 layers of ≈ 25 MB and a 103 MB tied LM head; the Jetson reads them at
    // 102.4 GB/s × 0.8 ≈ 82 GB/s: ≈ 0.31 ms per layer, ≈ 9.7 ms per token for the whole model
    // with launch overheads. The A100 is ≈ 20× faster.
    // (a) 20 ms one-way at 10 Mbit/s: every split pays ≥ 2 × 20 ms per token (hidden state up,
    //     token down), far more than the whole model on the Jetson: edge-only (24).
    let slow = calm(0.02, 10e6);
    let best = StaticBest::new(&slow, Objective::Latency);
    assert_eq!(best.split(), 24);
    // (b) 0.1 ms one-way at 10 Gbit/s: the round trip is ≈ 0.2 ms per token and each layer moved
    //     to the cloud saves ≈ 0.28 ms; latency grows with the cut, so the floor (1) wins.
    let fast = calm(1e-4, 10e9);
    let best_fast = StaticBest::new(&fast, Objective::Latency);
    assert_eq!(best_fast.split(), 1);
    for (sc, s) in [(&slow, 24), (&fast, 1)] {
        let view = splitwise_env::public::mean_view(sc);
        assert_eq!(best_cut_by_brute_force(sc, &view, sc.edge.usable_memory_bytes, Objective::Latency), s);
    }
    // Kept all episode, whatever the observation; clamped to what fits when memory drops.
    let mut env = PartitionEnv::new(slow.clone());
    let (obs, _) = env.reset(Some(1));
    let mut policy = StaticBest::new(&slow, Objective::Latency);
    assert_eq!(policy.name(), "static-best");
    let full = DecisionContext {
        obs: &obs.features,
        mask: &obs.mask,
        env: &env,
        oracle: None,
        edge_memory_bytes: slow.edge.usable_memory_bytes,
    };
    assert_eq!(plan_of(policy.decide(&full)), Plan::layer_split(24, 16, 24, Precision::Bits16));
    let ten = slow.memory.plan_bytes(&Plan::layer_split(24, 16, 10, Precision::Bits16));
    let short = DecisionContext { edge_memory_bytes: ten, ..full };
    assert_eq!(plan_of(policy.decide(&short)), Plan::layer_split(24, 16, 10, Precision::Bits16));
}

#[test]
fn memory_proportional_counts_by_hand() {
    // Usable memories: Jetson 14 GB, Pi 5 6.5 GB, S23 4 GB; A100 80 GB − 2 GiB = 77.8525 GB.
    // Jetson:  32 × 14/(14 + 77.8525)   = 4.877 → 4
    // Pi 5:    48 × 6.5/(6.5 + 77.8525) = 3.699 → 3
    // S23:     40 × 4/(4 + 77.8525)     = 1.955 → 1
    for (text, layers) in [
        (include_str!("../../configs/jetson-llama7b-lte.toml"), 4),
        (include_str!("../../configs/pi5-gpt2xl-wifi.toml"), 3),
        (include_str!("../../configs/s23-llama13b-5g-fading.toml"), 1),
    ] {
        let sc = scenario(text);
        assert_eq!(memory_proportional_layers(&sc), layers, "{}", sc.config.name);
        let mut env = PartitionEnv::new(sc.clone());
        let (obs, _) = env.reset(Some(2));
        let mut p = MemoryProportional::new(&sc);
        assert_eq!(p.split(), layers);
        let memory = env.available_edge_memory_bytes();
        let ctx =
            DecisionContext { obs: &obs.features, mask: &obs.mask, env: &env, oracle: None, edge_memory_bytes: memory };
        let plan = plan_of(p.decide(&ctx));
        // The privacy floor (Pi 5: 2, S23: 1) is below every count, and each count fits.
        assert_eq!(plan, Plan::layer_split(sc.n_layers(), sc.n_heads(), layers, Precision::Bits16));
    }
}
