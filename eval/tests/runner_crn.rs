//! The runner's contracts on a stochastic scenario: every policy sees the same arrivals and
//! channel in episode k (common random numbers), specs sharing a label aggregate into one row
//! with their spread, oracle baselines are marked, and bad policies fail before any episode.

use splitwise_env::policy::{CloudOnly, EdgeOnly, Policy, RandomPolicy};
use splitwise_env::scenario::{NoTraces, Scenario};
use splitwise_eval::baselines;
use splitwise_eval::report::{self, Header};
use splitwise_eval::runner::{self, EvalConfig, PolicyEntry, PolicyRole, ScenarioInput, SourceKind};
use std::collections::HashMap;
use std::sync::Arc;

fn jetson() -> ScenarioInput {
    let text = include_str!("../../configs/jetson-llama7b-lte.toml");
    ScenarioInput {
        source: "configs/jetson-llama7b-lte.toml".into(),
        source_kind: SourceKind::ScenarioFile,
        scenario: Arc::new(Scenario::from_toml(text, &NoTraces).unwrap()),
    }
}

fn entry(label: &str, make: impl Fn() -> Box<dyn Policy> + Send + Sync + 'static) -> PolicyEntry {
    PolicyEntry {
        label: label.into(),
        spec: label.into(),
        role: PolicyRole::default(),
        factory: Box::new(move |_| Ok(make())),
    }
}

fn baseline(name: &str) -> PolicyEntry {
    let n = name.to_string();
    PolicyEntry {
        label: name.into(),
        spec: name.into(),
        role: PolicyRole { layer_wise: baselines::is_layer_wise(name), ..PolicyRole::default() },
        factory: Box::new(move |ctx| Ok(baselines::build(&n, None, ctx.seed, ctx.scenario)?)),
    }
}

fn config(episodes: u32, slots: u64) -> EvalConfig {
    EvalConfig { episodes, seed: 5, slots: Some(slots), trace_episodes: episodes }
}

#[test]
fn policies_on_the_same_seed_see_the_same_arrivals_and_channel() {
    let entries = vec![
        entry("cloud-only", || Box::new(CloudOnly)),
        entry("edge-only", || Box::new(EdgeOnly)),
        entry("random", || Box::new(RandomPolicy::new(3))),
        baseline("neurosurgeon"),
    ];
    let eval = runner::prepare(vec![jetson()], entries, config(2, 300)).unwrap().run(&mut |_| {}).unwrap();
    let s = &eval.scenarios[0];
    assert_eq!(s.slots_per_episode, 300, "--slots overrides the scenario's episode length");
    assert!(report::crn_mismatch(s).is_none(), "{:?}", report::crn_mismatch(s));
    let base = &s.runs[0];
    // Different episodes are different draws (the digest is not a constant).
    assert_ne!(base.episodes[0].exogenous_digest, base.episodes[1].exogenous_digest);
    for run in &s.runs[1..] {
        for k in 0..2 {
            assert_eq!(run.episodes[k].seed, base.episodes[k].seed);
            assert_eq!(run.episodes[k].metrics.arrivals, base.episodes[k].metrics.arrivals, "{} episode {k}", run.spec);
        }
        // Slot by slot: the same arrivals and the same link rate and cloud load.
        assert_eq!(run.traces.len(), base.traces.len());
        for (a, b) in run.traces.iter().zip(&base.traces) {
            assert_eq!((a.episode, a.slot, a.arrivals), (b.episode, b.slot, b.arrivals));
            assert_eq!(a.rate_bps.to_bits(), b.rate_bps.to_bits());
            assert_eq!(a.cloud_load.to_bits(), b.cloud_load.to_bits());
        }
        // Request by request: a request id has the same arrival time and lengths whatever the
        // policy (ids count arrivals, so they name the same request).
        let index: HashMap<(u32, u64), (u64, u32, u32)> = base
            .requests
            .iter()
            .map(|r| ((r.episode, r.record.id), (r.record.arrival_s.to_bits(), r.record.n_in, r.record.n_out)))
            .collect();
        let mut common = 0;
        for r in &run.requests {
            if let Some(&v) = index.get(&(r.episode, r.record.id)) {
                assert_eq!(
                    v,
                    (r.record.arrival_s.to_bits(), r.record.n_in, r.record.n_out),
                    "{} request {}",
                    run.spec,
                    r.record.id
                );
                common += 1;
            }
        }
        assert!(common > 20, "{}: only {common} requests in common", run.spec);
    }
    // …while the policies themselves differ: the same requests take different times.
    let mean = |i: usize| s.runs[i].pooled.metrics().latency_mean_s;
    assert!((mean(0) - mean(1)).abs() > 1e-3, "cloud-only {} vs edge-only {}", mean(0), mean(1));
}

#[test]
fn specs_sharing_a_label_form_one_row_with_their_spread() {
    let entries = vec![
        entry("cloud-only", || Box::new(CloudOnly)),
        entry("rnd", || Box::new(RandomPolicy::new(1))),
        entry("rnd", || Box::new(RandomPolicy::new(2))),
        entry("rnd", || Box::new(RandomPolicy::new(3))),
    ];
    let eval = runner::prepare(vec![jetson()], entries, config(3, 120)).unwrap().run(&mut |_| {}).unwrap();
    let (rows, refs) = report::rows(&eval.scenarios[0]);
    assert_eq!(rows.len(), 2);
    assert_eq!(refs.best_layer_wise, None);
    let rnd = &rows[1];
    assert_eq!((rnd.label.as_str(), rnd.members.len()), ("rnd", 3));
    // The row's per-episode value is the members' mean, and its mean the mean over episodes.
    let key = |m: &splitwise_eval::runner::summary::EpisodeMetrics| m.energy_per_request_j;
    let per_episode: Vec<f64> =
        (0..3).map(|k| rnd.members.iter().map(|m| key(&m.episodes[k].metrics)).sum::<f64>() / 3.0).collect();
    let mean = per_episode.iter().sum::<f64>() / 3.0;
    let stat = rnd.stat("energy_per_request_j");
    assert!((stat.mean - mean).abs() < 1e-12 * mean.abs().max(1.0), "{} vs {mean}", stat.mean);
    // Student-t with 2 degrees of freedom: t(0.975) = 4.303 (tables).
    let sd = (per_episode.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / 2.0).sqrt();
    assert!((stat.ci95 - 4.302_652_7 * sd / 3f64.sqrt()).abs() < 1e-6 * stat.ci95.max(1e-9));
    // Spread across the three seeds: sd of the member means.
    let idx = report::METRICS.iter().position(|m| m.key == "energy_per_request_j").unwrap();
    let spread = rnd.spread.as_ref().unwrap()[idx];
    let member_means: Vec<f64> =
        rnd.members.iter().map(|m| m.episodes.iter().map(|e| key(&e.metrics)).sum::<f64>() / 3.0).collect();
    let mm = member_means.iter().sum::<f64>() / 3.0;
    let sd_members = (member_means.iter().map(|x| (x - mm).powi(2)).sum::<f64>() / 2.0).sqrt();
    assert_eq!(spread.n, 3);
    assert!((spread.sd - sd_members).abs() < 1e-9 * sd_members.max(1.0));
    assert!(spread.min <= mm && mm <= spread.max);
    assert!(rows[0].spread.is_none(), "a single spec has no spread");
    let md = report::markdown(&eval, &Header { command: "c".into(), version: "v".into() }, &[]);
    assert!(md.contains("Spread across the specs of one row"));
}

#[test]
fn oracle_baselines_are_marked_and_layer_wise_references_picked() {
    let entries = vec![
        entry("cloud-only", || Box::new(CloudOnly)).with_cloud_only(),
        baseline("neurosurgeon"),
        baseline("static-best"),
        // Not flagged by the entry: the policy itself says it reads the true state.
        entry("oracle-neurosurgeon", || {
            let sc = Arc::new(
                Scenario::from_toml(include_str!("../../configs/jetson-llama7b-lte.toml"), &NoTraces).unwrap(),
            );
            baselines::build("oracle-neurosurgeon", None, 0, &sc).unwrap()
        }),
    ];
    let eval = runner::prepare(vec![jetson()], entries, config(2, 150)).unwrap().run(&mut |_| {}).unwrap();
    let (rows, refs) = report::rows(&eval.scenarios[0]);
    let oracle = rows.iter().find(|r| r.label == "oracle-neurosurgeon").unwrap();
    assert!(oracle.role.oracle);
    assert_eq!(oracle.display_label(), format!("oracle-neurosurgeon{}", report::ORACLE_MARK));
    assert_eq!(refs.cloud_only.as_deref(), Some("cloud-only"));
    // The best layer-wise reference is the non-oracle layer-wise row with the lowest latency.
    let lat = |l: &str| rows.iter().find(|r| r.label == l).unwrap().stat("latency_mean_s").mean;
    let best = if lat("neurosurgeon") <= lat("static-best") { "neurosurgeon" } else { "static-best" };
    assert_eq!(refs.best_layer_wise.as_deref(), Some(best));
    let md = report::markdown(&eval, &Header { command: "c".into(), version: "v".into() }, &[]);
    assert!(md.contains(&format!("| oracle-neurosurgeon{} |", report::ORACLE_MARK)), "{md}");
    assert!(md.contains(&format!("{} oracle: reads the true current state", report::ORACLE_MARK)));
    assert!(md.contains(&format!("best layer-wise reference: `{best}`")));
}

trait CloudOnlyRole {
    fn with_cloud_only(self) -> Self;
}

impl CloudOnlyRole for PolicyEntry {
    fn with_cloud_only(mut self) -> Self {
        self.role.cloud_only = true;
        self
    }
}

#[test]
fn a_policy_that_cannot_be_built_fails_before_any_episode() {
    let entries = vec![
        entry("cloud-only", || Box::new(CloudOnly)),
        PolicyEntry {
            label: "broken".into(),
            spec: "ckpt:missing".into(),
            role: PolicyRole::default(),
            factory: Box::new(|_| anyhow::bail!("checkpoint missing: not found")),
        },
    ];
    let e = runner::prepare(vec![jetson()], entries, config(1, 10)).err().expect("prepare fails");
    let msg = format!("{e:#}");
    assert!(msg.contains("ckpt:missing") && msg.contains("jetson-llama7b-lte") && msg.contains("not found"), "{msg}");
    let e = runner::prepare(vec![jetson()], vec![entry("c", || Box::new(CloudOnly))], config(0, 10)).err().unwrap();
    assert!(e.to_string().contains("--episodes"), "{e}");
}
