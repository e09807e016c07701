//! Fuzzing the scenario and training-config parsers and validators with proptest: arbitrary
//! text, TOML-shaped text, and structured mutations of every shipped config (a leaf set to an
//! extreme or wrongly typed value, removed, or joined by an unknown sibling). Each input goes
//! through the same code the commands use (parse, validate, apply overrides, read traces,
//! resolve, the app's bounds); the property is that it returns, `Ok` or an error with a
//! message, and never panics or aborts.
//!
//! The CI run is small (`SPLITWISE_FUZZ_CASES`, default 3,000 per target: a few seconds). The
//! long run recorded in the closing note:
//! `SPLITWISE_FUZZ_CASES=350000 cargo test --release --test fuzz_configs -- --nocapture`
//! (three targets, so ≥ 1 M executions; the count is printed).

use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use splitwise::{config, scenario_file};
use splitwise_env::scenario::ScenarioConfig;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

static EXECUTIONS: AtomicU64 = AtomicU64::new(0);

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

fn cases() -> u32 {
    std::env::var("SPLITWISE_FUZZ_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(3000)
}

fn runner() -> TestRunner {
    TestRunner::new(Config { cases: cases(), failure_persistence: None, max_shrink_iters: 200, ..Config::default() })
}

/// One input through the scenario path (what `simulate` and `eval` do with a scenario file).
fn scenario(text: &str, origin: &Path) {
    EXECUTIONS.fetch_add(1, Ordering::Relaxed);
    if let Ok(c) = ScenarioConfig::from_toml(text) {
        let _ = scenario_file::resolve(c, origin);
    }
}

/// One input through the training-config path (what `train` does).
fn training(text: &str, origin: &Path) {
    EXECUTIONS.fetch_add(1, Ordering::Relaxed);
    if let Ok(r) = config::parse(text, origin) {
        // The resolved form must serialise and read back (run folders store it).
        let again = config::parse(&r.to_toml().expect("a resolved config serialises"), origin)
            .expect("a resolved config parses back");
        assert_eq!(again.config, r.config);
    }
}

/// Shipped configs: (path, text, is a training config).
fn shipped() -> Vec<(PathBuf, String, bool)> {
    let mut out: Vec<(PathBuf, String, bool)> = std::fs::read_dir(repo("configs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .map(|p| {
            let text = std::fs::read_to_string(&p).unwrap();
            let training = text.contains("[agent]");
            (p, text, training)
        })
        .collect();
    out.sort();
    out
}

/// A value a mutation writes.
fn value() -> impl Strategy<Value = toml::Value> {
    use toml::Value as V;
    prop_oneof![
        prop_oneof![Just(0i64), Just(-1), Just(1), Just(2), Just(i64::MAX), Just(i64::MIN), Just(1_000_000_000)]
            .prop_map(V::Integer),
        any::<i64>().prop_map(V::Integer),
        prop_oneof![
            Just(0.0f64),
            Just(-0.0),
            Just(f64::NAN),
            Just(f64::INFINITY),
            Just(f64::NEG_INFINITY),
            Just(1e308),
            Just(-1e308),
            Just(1e-308),
            Just(1e12),
            Just(0.5)
        ]
        .prop_map(V::Float),
        any::<f64>().prop_map(V::Float),
        any::<bool>().prop_map(V::Boolean),
        prop_oneof![
            Just(String::new()),
            Just("../x".to_string()),
            Just("/dev/zero".to_string()),
            Just("constant".to_string()),
            Just("trace".to_string()),
            Just("layer-split".to_string())
        ]
        .prop_map(V::String),
        "\\PC{0,12}".prop_map(V::String),
        prop::collection::vec(prop_oneof![Just(0i64), Just(-1), Just(7), Just(i64::MAX)], 0..4)
            .prop_map(|v| V::Array(v.into_iter().map(V::Integer).collect())),
        Just(V::Table(toml::Table::new())),
    ]
}

#[derive(Clone, Debug)]
enum Mutation {
    Set(prop::sample::Index, toml::Value),
    Remove(prop::sample::Index),
    AddUnknown(prop::sample::Index, toml::Value),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        4 => (any::<prop::sample::Index>(), value()).prop_map(|(i, v)| Mutation::Set(i, v)),
        1 => any::<prop::sample::Index>().prop_map(Mutation::Remove),
        1 => (any::<prop::sample::Index>(), value()).prop_map(|(i, v)| Mutation::AddUnknown(i, v)),
    ]
}

/// Paths to every value (tables and arrays included), as keys/indices.
#[derive(Clone, Debug)]
enum Step {
    Key(String),
    Item(usize),
}

fn paths(v: &toml::Value, prefix: &mut Vec<Step>, out: &mut Vec<Vec<Step>>) {
    match v {
        toml::Value::Table(t) => {
            for (k, v) in t {
                prefix.push(Step::Key(k.clone()));
                out.push(prefix.clone());
                paths(v, prefix, out);
                prefix.pop();
            }
        }
        toml::Value::Array(a) => {
            for (i, v) in a.iter().enumerate() {
                prefix.push(Step::Item(i));
                out.push(prefix.clone());
                paths(v, prefix, out);
                prefix.pop();
            }
        }
        _ => {}
    }
}

/// The parent container of `path` and the last step.
fn parent<'a>(root: &'a mut toml::Value, path: &[Step]) -> Option<&'a mut toml::Value> {
    let mut cur = root;
    for step in &path[..path.len().saturating_sub(1)] {
        cur = match (step, cur) {
            (Step::Key(k), toml::Value::Table(t)) => t.get_mut(k)?,
            (Step::Item(i), toml::Value::Array(a)) => a.get_mut(*i)?,
            _ => return None,
        };
    }
    Some(cur)
}

fn mutate(text: &str, mutations: &[Mutation]) -> String {
    let mut root = toml::Value::Table(toml::from_str(text).expect("shipped configs parse"));
    for m in mutations {
        let mut all = Vec::new();
        paths(&root, &mut Vec::new(), &mut all);
        if all.is_empty() {
            break;
        }
        let idx = match m {
            Mutation::Set(i, _) | Mutation::Remove(i) | Mutation::AddUnknown(i, _) => i.index(all.len()),
        };
        let path = &all[idx];
        let Some(container) = parent(&mut root, path) else { continue };
        match (m, path.last(), container) {
            (Mutation::Set(_, v), Some(Step::Key(k)), toml::Value::Table(t)) => {
                t.insert(k.clone(), v.clone());
            }
            (Mutation::Set(_, v), Some(Step::Item(i)), toml::Value::Array(a)) => a[*i] = v.clone(),
            (Mutation::Remove(_), Some(Step::Key(k)), toml::Value::Table(t)) => {
                t.remove(k);
            }
            (Mutation::Remove(_), Some(Step::Item(i)), toml::Value::Array(a)) => {
                a.remove(*i);
            }
            (Mutation::AddUnknown(_, v), _, toml::Value::Table(t)) => {
                t.insert("fuzz_unknown".into(), v.clone());
            }
            _ => {}
        }
    }
    // Values TOML cannot write (e.g. a table inside an inline array) make no document.
    toml::to_string(&root).unwrap_or_default()
}

#[test]
fn mutated_shipped_configs_never_crash_the_parsers() {
    let shipped = shipped();
    let mut runner = runner();
    let strategy = (0..shipped.len(), prop::collection::vec(mutation(), 1..4));
    runner
        .run(&strategy, |(which, mutations)| {
            let (path, text, is_training) = &shipped[which];
            let mutated = mutate(text, &mutations);
            if *is_training {
                training(&mutated, path);
            } else {
                scenario(&mutated, path);
            }
            Ok::<(), TestCaseError>(())
        })
        .unwrap();
    eprintln!("fuzz executions so far: {}", EXECUTIONS.load(Ordering::Relaxed));
}

#[test]
fn arbitrary_text_never_crashes_the_parsers() {
    let origin = repo("configs/fuzz.toml");
    let line = prop_oneof![
        Just("version = 1".to_string()),
        Just("[agent]\nkind = \"ppo\"".to_string()),
        Just("[env]\nkind = \"partition\"\nscenario_file = \"jetson-llama7b-lte.toml\"".to_string()),
        Just("[training]\ntotal_steps = 10\ncheckpoint_every_steps = 5".to_string()),
        Just("name = \"x\"".to_string()),
        "[a-z_.]{1,12} = [-0-9.e]{1,8}",
        "\\[[a-z_.]{1,12}\\]",
        "\\PC{0,40}",
    ];
    let text = prop::collection::vec(line, 0..12).prop_map(|l| l.join("\n"));
    let mut runner = runner();
    runner
        .run(&text, |t| {
            training(&t, &origin);
            scenario(&t, &origin);
            Ok(())
        })
        .unwrap();
    eprintln!("fuzz executions so far: {}", EXECUTIONS.load(Ordering::Relaxed));
}
