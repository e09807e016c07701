//! The baselines' public API (names, oracle labels, arguments, errors) and a run of every
//! baseline on every shipped scenario in both action modes through `act_and_step`: every
//! decision must be executable (the env rejects any infeasible plan with an error).

use splitwise_env::api::Env;
use splitwise_env::partition::PartitionEnv;
use splitwise_env::plan::Plan;
use splitwise_env::policy::{
    Decision, DecisionContext, Policy, PolicyKind, PolicySpec, TRIVIAL_POLICIES, act_and_step,
};
use splitwise_env::scenario::{ActionMode, NoTraces, Scenario, ScenarioConfig};
use splitwise_env::workload::DeadlineConfig;
use splitwise_eval::baselines::{
    BaselineError, build, catalog, extra_names, is_clairvoyant, is_layer_wise, is_oracle, names, simulates,
};
use std::sync::Arc;
use std::time::{Duration, Instant};

const SCENARIOS: [&str; 3] = [
    include_str!("../../configs/jetson-llama7b-lte.toml"),
    include_str!("../../configs/pi5-gpt2xl-wifi.toml"),
    include_str!("../../configs/s23-llama13b-5g-fading.toml"),
];

fn scenario(text: &str, mode: ActionMode) -> Arc<Scenario> {
    let mut cfg = ScenarioConfig::from_toml(text).unwrap();
    cfg.actions.mode = mode;
    Arc::new(Scenario::resolve(cfg, &NoTraces).unwrap())
}

#[test]
fn names_labels_and_arguments() {
    // Short episodes: `best-fixed` tunes on whole episodes when it is built.
    let mut cfg = ScenarioConfig::from_toml(SCENARIOS[0]).unwrap();
    cfg.serving.episode_slots = 40;
    let sc = Arc::new(Scenario::resolve(cfg, &NoTraces).unwrap());
    let (names, extra) = (names(), extra_names());
    for &name in &names {
        let p = build(name, None, 1, &sc).unwrap();
        assert_eq!(p.name(), name, "names are stable");
        assert_eq!(p.is_oracle(), is_oracle(name), "{name}");
        assert_eq!(is_oracle(name), name.starts_with("oracle-") || name.starts_with("clairvoyant"), "{name}");
        // The spec grammar resolves every name (trivial ones itself, the rest as named).
        let spec = PolicySpec::parse(name, &extra).unwrap();
        assert_eq!(matches!(spec.kind, PolicyKind::Named { .. }), extra.contains(&name), "{name}");
    }
    for &name in &extra {
        assert!(names.contains(&name) && !TRIVIAL_POLICIES.contains(&name));
    }
    assert!(is_clairvoyant("clairvoyant:5") && !is_clairvoyant("failover"));
    let layer_wise: Vec<&str> = names.iter().copied().filter(|n| is_layer_wise(n)).collect();
    assert_eq!(layer_wise, ["neurosurgeon", "oracle-neurosurgeon", "static-best", "best-fixed", "memory-proportional"]);
    assert!(is_oracle("oracle-splitllm-dp:3.5") && is_layer_wise("neurosurgeon:energy"));
    // The ones that tune or plan on whole simulated episodes (the slow ones `eval --help` marks).
    let slow: Vec<&str> = names.iter().copied().filter(|n| simulates(n)).collect();
    let expected = ["best-fixed", "clairvoyant", "clairvoyant-layers", "oracle-regime", "oracle-regime-late"];
    assert_eq!(slow, [&expected[..], &["oracle-regime-aged", "oracle-mpc"]].concat());
    assert!(simulates("oracle-mpc:4") && !simulates("failover:30") && !simulates("ckpt:x"));
    // The catalog has a line per baseline, with its argument's grammar and what it knows.
    let catalog = catalog();
    assert_eq!(catalog.lines().count(), names.len());
    assert!(catalog.lines().any(|l| l.starts_with("  cloud-only: everything in the cloud")), "{catalog}");
    let mpc = catalog.lines().find(|l| l.contains("oracle-mpc[:N]")).unwrap();
    assert!(mpc.contains("[oracle: the true slot state; slow: simulates episodes]: "), "{mpc}");
    assert!(catalog.contains("clairvoyant[:H] [clairvoyant: the future; slow: simulates episodes]"), "{catalog}");
    // Arguments round-trip through the name.
    for (name, arg, full) in [
        ("neurosurgeon", "energy", "neurosurgeon:energy"),
        ("neurosurgeon", "latency", "neurosurgeon"),
        ("oracle-neurosurgeon", "energy", "oracle-neurosurgeon:energy"),
        ("static-best", "energy", "static-best:energy"),
        ("splitllm-dp", "2.5", "splitllm-dp:2.5"),
        ("oracle-greedy", "4", "oracle-greedy:4"),
        ("dpp-one-slot", "queue", "dpp-one-slot:queue"),
        ("oracle-dpp-one-slot", "starts", "oracle-dpp-one-slot"),
        ("failover", "30", "failover:30"),
        ("clairvoyant", "5", "clairvoyant:5"),
        ("clairvoyant", "4", "clairvoyant"),
        ("clairvoyant-layers", "8", "clairvoyant-layers:8"),
    ] {
        assert_eq!(build(name, Some(arg), 1, &sc).unwrap().name(), full);
    }
}

#[test]
fn errors_name_the_policy_and_what_is_allowed() {
    let sc = scenario(SCENARIOS[0], ActionMode::Hierarchical);
    let err = |name: &str, arg: Option<&str>| build(name, arg, 1, &sc).err().unwrap();
    let e = err("neurosurgen", None);
    assert!(matches!(e, BaselineError::Unknown { .. }));
    let text = e.to_string();
    assert!(
        text.contains("`neurosurgen`")
            && text.contains("splitllm-dp[:SLA_S]")
            && text.contains("neurosurgeon[:latency|energy]"),
        "{text}"
    );
    let text = err("neurosurgeon", Some("speed")).to_string();
    assert!(
        text.contains("`neurosurgeon`") && text.contains("`speed`") && text.contains("neurosurgeon:latency|energy"),
        "{text}"
    );
    for bad in ["fast", "-1", "0", "inf", "NaN"] {
        let text = err("splitllm-dp", Some(bad)).to_string();
        assert!(text.contains(&format!("`{bad}`")) && text.contains("splitllm-dp:SLA_S"), "{text}");
    }
    let text = err("memory-proportional", Some("3")).to_string();
    assert!(text.contains("no argument"), "{text}");
    let text = err("dpp-one-slot", Some("all")).to_string();
    assert!(text.contains("dpp-one-slot:starts|queue"), "{text}");
    // A scenario without a deadline needs an explicit SLA.
    let mut cfg = ScenarioConfig::from_toml(SCENARIOS[0]).unwrap();
    cfg.workload.deadline = DeadlineConfig::None;
    let no_deadline = Arc::new(Scenario::resolve(cfg, &NoTraces).unwrap());
    let e = build("greedy", None, 1, &no_deadline).err().unwrap();
    assert!(matches!(e, BaselineError::Scenario { .. }));
    assert!(e.to_string().contains("workload.deadline") && e.to_string().contains("greedy:SLA_S"), "{e}");
    assert_eq!(build("greedy", Some("6"), 1, &no_deadline).unwrap().name(), "greedy:6");
}

/// Times `decide` of the wrapped policy.
struct Timed<'a> {
    inner: &'a mut dyn Policy,
    spent: Duration,
    decisions: u32,
    last: Option<Decision>,
}

impl Policy for Timed<'_> {
    fn name(&self) -> String {
        self.inner.name()
    }

    fn is_oracle(&self) -> bool {
        self.inner.is_oracle()
    }

    fn decide(&mut self, ctx: &DecisionContext<'_>) -> Decision {
        let t = Instant::now();
        let d = self.inner.decide(ctx);
        self.spent += t.elapsed();
        self.decisions += 1;
        self.last = Some(d.clone());
        d
    }
}

#[test]
fn every_baseline_runs_feasibly_on_every_shipped_scenario() {
    // 200 slots per baseline, scenario and action mode; `act_and_step` returns an error for any
    // infeasible plan (memory, privacy floor, head step), so `unwrap` is the assertion. The
    // layer-wise baselines must return layer splits. Decision times are printed (run with
    // --release --nocapture for meaningful numbers; no timing is asserted).
    const SLOTS: u32 = 200;
    let mut report = Vec::new();
    for text in SCENARIOS {
        for mode in [ActionMode::Hierarchical, ActionMode::LayerSplit] {
            let sc = scenario(text, mode);
            let (l, h) = (sc.n_layers(), sc.n_heads());
            for name in names() {
                if simulates(name) {
                    // They simulate whole episodes (to plan, to tune): their own tests run them
                    // on short ones.
                    continue;
                }
                let mut policy = build(name, None, 5, &sc).unwrap();
                let mut env = PartitionEnv::new(sc.clone());
                let (mut obs, _) = env.reset(Some(17));
                policy.reset(17);
                let mut timed = Timed { inner: policy.as_mut(), spent: Duration::ZERO, decisions: 0, last: None };
                let mut cuts = std::collections::BTreeSet::new();
                for slot in 0..SLOTS {
                    let t = act_and_step(&mut env, &mut timed, &mut obs)
                        .unwrap_or_else(|e| panic!("{name} on {} {mode:?}, slot {slot}: {e}", sc.config.name));
                    assert!(t.info.plan.edge_memory_bytes <= t.info.edge_memory_available_bytes);
                    if is_layer_wise(name) {
                        let Some(Decision::Plan(p)) = &timed.last else { panic!("{name} returns plans") };
                        let cut = p.leading_edge_layers(h);
                        assert_eq!(*p, Plan::layer_split(l, h, cut, p.precision), "{name}: a single cut");
                        cuts.insert(cut);
                    }
                }
                assert_eq!(timed.decisions, SLOTS);
                if matches!(name, "static-best" | "memory-proportional") {
                    assert!(cuts.len() <= 2, "{name}: one cut, lowered only when memory drops: {cuts:?}");
                }
                let per_slot_us = timed.spent.as_secs_f64() * 1e6 / f64::from(SLOTS);
                report.push(format!(
                    "{:<24} {:<14} {:<22} {per_slot_us:>9.1} µs/decision",
                    sc.config.name,
                    format!("{mode:?}"),
                    name
                ));
            }
        }
    }
    eprintln!("{}", report.join("\n"));
}
