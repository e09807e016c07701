//! The reward surrogate (`splitwise_agents::surrogate`): it fits a known analytic reward to a
//! stated tolerance, fits ALS's own surrogate table, reports its held-out error against the
//! no-model baseline, its ensemble disagrees more away from the data, and one seed gives one
//! model.

use rand::{RngExt, SeedableRng};
use splitwise_agents::{RewardSurrogate, SurrogateConfig};
use splitwise_env::accuracy::{ALS_ERASURE_RATES, ALS_SURROGATE};
use splitwise_env::rng::StreamRng;

/// y = sin(3·x₁) + x₂² on [−1, 1]² (std of y ≈ 0.77).
fn analytic(n: usize, seed: u64) -> (Vec<f32>, Vec<f32>) {
    let mut rng = StreamRng::seed_from_u64(seed);
    let mut x = Vec::with_capacity(2 * n);
    let mut y = Vec::with_capacity(n);
    for _ in 0..n {
        let (a, b): (f32, f32) = (rng.random_range(-1.0..1.0), rng.random_range(-1.0..1.0));
        x.extend([a, b]);
        y.push((3.0 * a).sin() + b * b);
    }
    (x, y)
}

#[test]
fn it_fits_a_known_analytic_reward_within_0_05_rmse() {
    let (x, y) = analytic(1000, 1);
    let mut s = RewardSurrogate::new(SurrogateConfig::default(), 2, 7).unwrap();
    let report = s.fit(&x, &y).unwrap();
    println!("analytic: {report:?}");
    assert_eq!((report.n_train, report.n_holdout), (800, 200));
    assert!(report.holdout_rmse < 0.05, "{report:?}");
    assert!(report.holdout_rmse_of_mean > 0.6, "{report:?}");
    // Fresh points from the same law.
    let (tx, ty) = analytic(500, 2);
    let p = s.predict(&tx).unwrap();
    let rmse = (p.mean.iter().zip(&ty).map(|(a, b)| f64::from(a - b).powi(2)).sum::<f64>() / 500.0).sqrt();
    assert!(rmse < 0.05, "test RMSE {rmse}");
}

/// ALS's predictor shape (2 → 128 → 128 → 1 ReLU) on ALS's table: 130 (noise, split) points whose
/// values spread over ±0.04; the held-out error is an order of magnitude below that spread.
#[test]
fn it_fits_als_surrogate_table() {
    let (mut x, mut y) = (Vec::new(), Vec::new());
    for (i, &p) in ALS_ERASURE_RATES.iter().enumerate() {
        for (s, &q) in ALS_SURROGATE[i].iter().enumerate() {
            x.extend([p as f32, (s + 1) as f32]);
            y.push(q as f32);
        }
    }
    let config = SurrogateConfig { epochs: 400, batch_size: 16, ..SurrogateConfig::default() };
    let mut s = RewardSurrogate::new(config, 2, 3).unwrap();
    let report = s.fit(&x, &y).unwrap();
    println!("ALS table: {report:?}");
    assert_eq!(report.n_holdout, 26);
    assert!(report.holdout_rmse < 0.1 * report.holdout_rmse_of_mean, "{report:?}");
    assert!(report.holdout_rmse < 0.003, "{report:?}");
}

#[test]
fn an_ensemble_disagrees_more_away_from_its_data_and_a_seed_fixes_the_model() {
    let (x, y) = analytic(400, 4);
    let config = SurrogateConfig { ensemble: 5, epochs: 60, ..SurrogateConfig::default() };
    let mut a = RewardSurrogate::new(config.clone(), 2, 9).unwrap();
    let report = a.fit(&x, &y).unwrap();
    assert!(report.holdout_disagreement > 0.0);
    let inside = a.predict(&[0.1, -0.2, 0.5, 0.5, -0.7, 0.3]).unwrap();
    let outside = a.predict(&[4.0, -4.0, -5.0, 5.0, 6.0, 6.0]).unwrap();
    let mean = |v: &[f32]| v.iter().sum::<f32>() / v.len() as f32;
    assert!(mean(&outside.std) > 5.0 * mean(&inside.std), "inside {:?}, outside {:?}", inside.std, outside.std);
    let mut b = RewardSurrogate::new(config, 2, 9).unwrap();
    assert_eq!(b.fit(&x, &y).unwrap(), report);
    assert_eq!(b.predict(&x[..20]).unwrap(), a.predict(&x[..20]).unwrap());
}
