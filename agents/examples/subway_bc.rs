//! Can the PPO actor represent the subway's service-window rule? A capacity check, not an RL run:
//! fit the actor network (the experiment's shape: 2 × 64 tanh, observations standardised as
//! `normalize_obs` does) by cross-entropy to the rule's action (cloud while connected and the
//! service has lasted < 20 s, else the phone) on 100 episodes driven by the rule, then report,
//! on 100 other episodes, the share of request slots per service-age bucket where the fitted
//! actor's greedy choice is the cloud. Then the same network shape fitted by least squares to the
//! probed one-slot rewards of the cloud and of the phone (both probed under the same randomness in
//! every slot of 100 episodes driven by the phone, scaled by the driving run's reward sd as the
//! learners scale them): per service-age bucket of 100 other episodes, the fitted mean
//! r̂(phone) − r̂(cloud) next to the probed one. docs/agents.md, "The subway's regular station
//! dwell".
//!
//! `cargo run --release -p splitwise-agents --example subway_bc -- [EPOCHS] [WINDOW_S]`

use burn::optim::AdamConfig;
use burn::tensor::activation::log_softmax;
use burn::tensor::{Device, Int, Tensor, TensorData};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use splitwise_agents::network::Mlp;
use splitwise_env::api::Env;
use splitwise_env::observation::{decode, index};
use splitwise_env::partition::PartitionEnv;
use splitwise_env::plan::{Plan, Precision};
use splitwise_env::scenario::{ActionMode, Scenario, ScenarioConfig, TraceSource};
use std::sync::Arc;

struct ConfigTraces;

impl TraceSource for ConfigTraces {
    fn read(&self, path: &str) -> Result<String, String> {
        let full = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs").join(path);
        std::fs::read_to_string(&full).map_err(|e| format!("{}: {e}", full.display()))
    }
}

/// One slot: its features, the service age (−1 in an outage), whether the driving rule sent it to
/// the cloud, the rewards of the cloud and of the phone under the same randomness, and whether a
/// request started under the driven plan / under either plan.
struct Slot {
    features: Vec<f32>,
    age: f64,
    to_cloud: bool,
    r_cloud: f64,
    r_phone: f64,
    started: bool,
    started_either: bool,
}

/// Drives episodes `seeds` with `to_cloud(age)` (age −1 in an outage), probing the plan not taken
/// from a saved state; returns every slot and the driven rewards' sd.
fn drive(sc: &Arc<Scenario>, seeds: std::ops::Range<u64>, to_cloud: impl Fn(f64) -> bool) -> (Vec<Slot>, f64) {
    let (l, h) = (sc.n_layers(), sc.n_heads());
    let cloud = Plan::layer_split(l, h, 0, Precision::Bits16);
    let edge = Plan::edge_only(l, h, Precision::Bits16);
    let mut env = PartitionEnv::new(sc.clone());
    let (mut obs, mut mask) = env.buffers();
    let (mut out, mut driven) = (Vec::new(), Vec::new());
    for seed in seeds {
        obs.copy_from_slice(&env.reset(Some(seed)).0.features);
        loop {
            let connected = decode(&obs, index::LINK_CONNECTED) > 0.5 && decode(&obs, index::PROBE_FAILED_LAST) < 0.5;
            let age = if connected { decode(&obs, index::TIME_SINCE_FAILURE) } else { -1.0 };
            let go_cloud = to_cloud(age);
            let (taken, other) = if go_cloud { (&cloud, &edge) } else { (&edge, &cloud) };
            let saved = env.save_state();
            let (mut o, mut m) = env.buffers();
            let probe = env.step_plan_into(other, &mut o, &mut m).expect("probed plan");
            env.restore_state(&saved).expect("restore");
            let features = obs.clone();
            let t = env.step_plan_into(taken, &mut obs, &mut mask).expect("step");
            let (r_cloud, r_phone) = if go_cloud { (t.reward, probe.reward) } else { (probe.reward, t.reward) };
            out.push(Slot {
                features,
                age,
                to_cloud: go_cloud,
                r_cloud,
                r_phone,
                started: t.info.started > 0,
                started_either: t.info.started > 0 || probe.info.started > 0,
            });
            driven.push(t.reward);
            if t.terminated || t.truncated {
                break;
            }
        }
    }
    let mean = driven.iter().sum::<f64>() / driven.len() as f64;
    let sd = (driven.iter().map(|r| (r - mean).powi(2)).sum::<f64>() / driven.len() as f64).sqrt();
    (out, sd)
}

/// The service-age buckets of docs/agents.md (−1: an outage).
const BUCKETS: [(f64, f64); 9] = [
    (-1.0, 0.0),
    (0.0, 5.0),
    (5.0, 10.0),
    (10.0, 15.0),
    (15.0, 20.0),
    (20.0, 25.0),
    (25.0, 30.0),
    (30.0, 35.0),
    (35.0, f64::INFINITY),
];

fn bucket_label(lo: f64, hi: f64) -> String {
    if lo < 0.0 { "outage".to_string() } else { format!("{lo}–{hi} s") }
}

/// Standardises as `normalize_obs` does (mean and sd over `rows`, clipped at ±10).
fn standardiser<'a>(rows: impl Iterator<Item = &'a [f32]>) -> impl Fn(&[f32]) -> Vec<f32> {
    let (mut mean, mut sq, mut n) = (Vec::<f64>::new(), Vec::<f64>::new(), 0.0);
    for x in rows {
        mean.resize(x.len(), 0.0);
        sq.resize(x.len(), 0.0);
        for (j, &v) in x.iter().enumerate() {
            mean[j] += f64::from(v);
            sq[j] += f64::from(v).powi(2);
        }
        n += 1.0;
    }
    let sd: Vec<f64> = mean.iter().zip(&sq).map(|(m, s)| (s / n - (m / n).powi(2)).max(1e-8).sqrt()).collect();
    let mean: Vec<f64> = mean.iter().map(|m| m / n).collect();
    move |x: &[f32]| {
        x.iter().enumerate().map(|(j, &v)| ((f64::from(v) - mean[j]) / sd[j]).clamp(-10.0, 10.0) as f32).collect()
    }
}

/// Minibatch Adam on `loss` (a scalar over the rows at the given indices) for `epochs` passes over
/// `n` rows; prints the mean loss every 5 epochs under `name`.
fn fit(
    mut net: Mlp,
    n: usize,
    epochs: usize,
    learning_rate: f64,
    name: &str,
    rng: &mut rand_pcg::Pcg64,
    loss: impl Fn(&Mlp, &[usize]) -> Tensor<1>,
) -> Mlp {
    let mut opt = AdamConfig::new().with_epsilon(1e-5).init();
    let mut order: Vec<usize> = (0..n).collect();
    for epoch in 0..epochs {
        order.shuffle(rng);
        let mut total = 0.0;
        for chunk in order.chunks(256) {
            let l = loss(&net, chunk);
            total += f64::from(l.clone().into_data().try_into_vec::<f32>().expect("f32")[0]) * chunk.len() as f64;
            let grads = burn::optim::GradientsParams::from_grads(l.backward(), &net);
            net = opt.step(learning_rate, net, grads);
        }
        if epoch % 5 == 4 || epoch + 1 == epochs {
            println!("epoch {}: mean {name} {:.4}", epoch + 1, total / n as f64);
        }
    }
    net
}

/// Calls `row` with each age bucket's label and the indices of its request slots (skipping empty
/// buckets); `slot(i)` gives slot i's age and whether a request started in it.
fn by_bucket(n: usize, slot: impl Fn(usize) -> (f64, bool), mut row: impl FnMut(&str, &[usize])) {
    for (lo, hi) in BUCKETS {
        let sel: Vec<usize> = (0..n)
            .filter(|&i| {
                let (age, started) = slot(i);
                started && age >= lo && age < hi
            })
            .collect();
        if !sel.is_empty() {
            row(&bucket_label(lo, hi), &sel);
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let epochs: usize = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(20);
    let window_s: f64 = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(20.0);
    let text = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs/subway-commute-phone.toml"),
    )
    .expect("configs/subway-commute-phone.toml");
    let mut cfg = ScenarioConfig::from_toml(&text).expect("the subway parses");
    cfg.actions.mode = ActionMode::LayerSplit;
    cfg.serving.episode_slots = 500;
    let sc = Arc::new(Scenario::resolve(cfg, &ConfigTraces).expect("the subway resolves"));
    let n_actions = sc.n_layers() as usize + 1;
    let rule = |age: f64| age >= 0.0 && age < window_s;
    let (train, _) = drive(&sc, 0..100, rule);
    let (test, _) = drive(&sc, 100..200, rule);
    let d = train[0].features.len();
    let norm = standardiser(train.iter().map(|r| r.features.as_slice()));
    // Label index: the layer-split action is the split layer; 0 = cloud, L = the phone.
    let label = |cloud: bool| if cloud { 0i64 } else { (n_actions - 1) as i64 };
    let device = Device::flex().autodiff();
    let mut rng = rand_pcg::Pcg64::seed_from_u64(0);
    let net = Mlp::new(d, &[64, 64], n_actions, 0.01, &mut rng, &device);
    // Every slot counts in the fit, not only the request slots where the choice matters.
    let net = fit(net, train.len(), epochs, 3e-4, "cross-entropy", &mut rng, |net, chunk| {
        let xs: Vec<f32> = chunk.iter().flat_map(|&i| norm(&train[i].features)).collect();
        let ys: Vec<i64> = chunk.iter().map(|&i| label(train[i].to_cloud)).collect();
        let b = chunk.len();
        let x = Tensor::<2>::from_data(TensorData::new(xs, [b, d]), &device);
        let y = Tensor::<2, Int>::from_data(TensorData::new(ys, [b, 1]), &device);
        log_softmax(net.forward(x), 1).gather(1, y).mean().neg()
    });
    let xs: Vec<f32> = test.iter().flat_map(|r| norm(&r.features)).collect();
    let x = Tensor::<2>::from_data(TensorData::new(xs, [test.len(), d]), &device);
    let greedy: Vec<i64> = net.forward(x).argmax(1).into_data().convert::<i64>().try_into_vec::<i64>().expect("ints");
    println!("held-out request slots (episodes 100–199): share the fitted actor sends to the cloud, and the rule's");
    by_bucket(
        test.len(),
        |i| (test[i].age, test[i].started),
        |label, sel| {
            let fitted = sel.iter().filter(|&&i| greedy[i] == 0).count() as f64 / sel.len() as f64;
            let rule = sel.iter().filter(|&&i| test[i].to_cloud).count() as f64 / sel.len() as f64;
            println!("{label:>10}: {:>4} slots, fitted {fitted:.2}, rule {rule:.2}", sel.len());
        },
    );

    // The value check: (r̂(cloud), r̂(phone)) by least squares on the scaled probed rewards.
    let (train, sd) = drive(&sc, 0..100, |_| false);
    let (test, _) = drive(&sc, 100..200, |_| false);
    let norm = standardiser(train.iter().map(|r| r.features.as_slice()));
    let net = Mlp::new(d, &[64, 64], 2, 1.0, &mut rng, &device);
    let net = fit(net, train.len(), epochs, 1e-3, "squared error", &mut rng, |net, chunk| {
        let xs: Vec<f32> = chunk.iter().flat_map(|&i| norm(&train[i].features)).collect();
        let ys: Vec<f32> =
            chunk.iter().flat_map(|&i| [(train[i].r_cloud / sd) as f32, (train[i].r_phone / sd) as f32]).collect();
        let b = chunk.len();
        let x = Tensor::<2>::from_data(TensorData::new(xs, [b, d]), &device);
        let y = Tensor::<2>::from_data(TensorData::new(ys, [b, 2]), &device);
        let err = net.forward(x).sub(y);
        err.clone().mul(err).mean()
    });
    let xs: Vec<f32> = test.iter().flat_map(|r| norm(&r.features)).collect();
    let x = Tensor::<2>::from_data(TensorData::new(xs, [test.len(), d]), &device);
    let fitted: Vec<f32> = net.forward(x).into_data().try_into_vec::<f32>().expect("f32");
    println!("held-out request slots: mean r(phone) − r(cloud) in reward sd ({sd:.3}), probed and fitted");
    by_bucket(
        test.len(),
        |i| (test[i].age, test[i].started_either),
        |label, sel| {
            let n = sel.len() as f64;
            let probed = sel.iter().map(|&i| (test[i].r_phone - test[i].r_cloud) / sd).sum::<f64>() / n;
            let fit = sel.iter().map(|&i| f64::from(fitted[2 * i + 1] - fitted[2 * i])).sum::<f64>() / n;
            println!("{label:>10}: {:>4} slots, probed {probed:>8.2}, fitted {fit:>8.2}", sel.len());
        },
    );
}
