//! The PPO objective's pieces as small pure functions (Schulman et al. 2017, "Proximal Policy
//! Optimization Algorithms", eq. 7 and 9), plus the diagnostics SB3/CleanRL log.

use burn::tensor::{Bool, Tensor};

/// L^CLIP per sample (to be maximised): min(ρ·Â, clip(ρ, 1 − ε, 1 + ε)·Â), ρ = π/π_old.
pub fn clipped_surrogate(ratio: Tensor<1>, advantages: Tensor<1>, clip_range: f64) -> Tensor<1> {
    let unclipped = ratio.clone().mul(advantages.clone());
    let clipped = ratio.clamp(1.0 - clip_range, 1.0 + clip_range).mul(advantages);
    unclipped.min_pair(clipped)
}

/// The clipped surrogate in expectation over the old policy, per state (to be maximised):
/// Σ_b π_old(b)·min(ρ_b·Â_b, clip(ρ_b, 1 − ε, 1 + ε)·Â_b) with ρ_b = π(b)/π_old(b), written as
/// Σ_b min(π(b)·Â_b, clip(π(b), (1 − ε)·π_old(b), (1 + ε)·π_old(b))·Â_b) so that values with
/// π_old(b) = 0 (forbidden) add exactly 0 and no ratio divides by 0. `probs`, `old_probs`,
/// `advantages`: `[batch, n]`; returns `[batch]`. The all-action advantage's objective
/// (`AdvantageBaseline::AllActions`); [`clipped_surrogate`] at the sampled action is its
/// one-sample estimate.
pub fn expected_clipped_surrogate(
    probs: Tensor<2>,
    old_probs: Tensor<2>,
    advantages: Tensor<2>,
    clip_range: f64,
) -> Tensor<1> {
    let [batch, _] = probs.dims();
    let unclipped = probs.clone().mul(advantages.clone());
    let low = old_probs.clone().mul_scalar(1.0 - clip_range);
    let high = old_probs.mul_scalar(1.0 + clip_range);
    let clipped = probs.max_pair(low).min_pair(high).mul(advantages);
    unclipped.min_pair(clipped).sum_dim(1).reshape([batch])
}

/// The probability floor's penalty per state (to be minimised): Σ_b max(0, ln p − log π(b|s)) over
/// the legal joint values b, `log_probs` and `illegal` `[batch, n]`; returns `[batch]`.
///
/// Why: the softmax policy gradient of a value whose probability has collapsed vanishes with that
/// probability (∂/∂z_b of Σ_c π(c)·Â_c is π(b)·Â_b), and so does the entropy bonus's
/// (−π(b)·(log π(b) + H)); an early commitment to the wrong value in some states is then never
/// undone (Mei et al., "On the Global Convergence Rates of Softmax Policy Gradient Methods",
/// ICML 2020). The log-barrier regulariser of Agarwal et al. ("On the Theory of Policy Gradient
/// Methods", JMLR 2021, §5.2), whose gradient on z_b does not vanish, fixes that but pulls every
/// state towards uniform, the entropy bonus's fault on the gap scenarios. Hinged at ln p, the
/// barrier only acts on values below the floor: each legal value keeps a probability of about p
/// (an ε-soft policy, Sutton & Barto 2018 §5.4) and the greedy choice is unchanged.
pub fn probability_floor_penalty(log_probs: Tensor<2>, illegal: Tensor<2, Bool>, floor: f64) -> Tensor<1> {
    let [batch, _] = log_probs.dims();
    log_probs.neg().add_scalar(floor.ln()).clamp_min(0.0).mask_fill(illegal, 0.0).sum_dim(1).reshape([batch])
}

/// Mean squared error of the value head against the GAE returns (SB3 scaling: no ½), or, with a
/// value clip c, the PPO2/CleanRL pessimistic form
/// mean(max((V − R)², (V_old + clip(V − V_old, ±c) − R)²)). Returns a one-element tensor.
pub fn value_loss(
    values: Tensor<1>,
    old_values: Tensor<1>,
    returns: Tensor<1>,
    clip_range_vf: Option<f64>,
) -> Tensor<1> {
    let unclipped = values.clone().sub(returns.clone()).square();
    match clip_range_vf {
        None => unclipped.mean(),
        Some(c) => {
            let clipped_values = old_values.clone() + values.sub(old_values).clamp(-c, c);
            let clipped = clipped_values.sub(returns).square();
            unclipped.max_pair(clipped).mean()
        }
    }
}

/// CleanRL's `approx_kl = ((ratio − 1) − log ratio).mean()` (Schulman's k3 estimator of
/// KL(π_old‖π): unbiased and non-negative). Returns a one-element tensor.
pub fn approx_kl(log_ratio: Tensor<1>) -> Tensor<1> {
    log_ratio.clone().exp().sub_scalar(1.0).sub(log_ratio).mean()
}

/// Fraction of samples whose ratio left [1 − ε, 1 + ε] (one-element tensor).
pub fn clip_fraction(ratio: Tensor<1>, clip_range: f64) -> Tensor<1> {
    ratio.sub_scalar(1.0).abs().greater_elem(clip_range).float().mean()
}

/// 1 − Var[R − V]/Var[R] (SB3 `explained_variance`): 1 is a perfect value function, 0 is no
/// better than a constant, negative is worse. NaN when the returns have zero variance, as in SB3.
pub fn explained_variance(values: &[f32], returns: &[f32]) -> f64 {
    assert_eq!(values.len(), returns.len(), "explained_variance: lengths differ");
    let var_returns = variance(returns.iter().map(|&r| f64::from(r)));
    if var_returns == 0.0 {
        return f64::NAN;
    }
    let var_residual = variance(returns.iter().zip(values).map(|(&r, &v)| f64::from(r) - f64::from(v)));
    1.0 - var_residual / var_returns
}

/// Population variance (numpy `var`, ddof 0), two-pass in f64.
fn variance(xs: impl Iterator<Item = f64> + Clone) -> f64 {
    let n = xs.clone().count() as f64;
    if n == 0.0 {
        return 0.0;
    }
    let mean = xs.clone().sum::<f64>() / n;
    xs.map(|x| (x - mean) * (x - mean)).sum::<f64>() / n
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{Device, TensorData};

    fn t(v: &[f32]) -> Tensor<1> {
        Tensor::from_data(TensorData::new(v.to_vec(), [v.len()]), &Device::flex())
    }

    fn host(x: Tensor<1>) -> Vec<f32> {
        x.into_data().try_into_vec::<f32>().unwrap()
    }

    /// Floor p = 10⁻³. Row 0: log π = (ln ½, ln 10⁻⁴, ln 0.4999, illegal) → ln 10⁻³ − ln 10⁻⁴ =
    /// ln 10 (the illegal value's 0 must not count); row 1: every legal value above the floor → 0.
    #[test]
    fn probability_floor_penalty_hand_values() {
        let device = Device::flex();
        let log_probs = [0.5f32.ln(), 1e-4f32.ln(), 0.4999f32.ln(), 0.0, 0.25f32.ln(), 0.25f32.ln(), 0.5f32.ln(), 0.0];
        let illegal = [false, false, false, true, false, false, false, true];
        let got = host(probability_floor_penalty(
            Tensor::from_data(TensorData::new(log_probs.to_vec(), [2, 4]), &device),
            Tensor::from_data(TensorData::new(illegal.to_vec(), [2, 4]), &device),
            1e-3,
        ));
        assert!((got[0] - 10f32.ln()).abs() < 1e-5 && got[1] == 0.0, "{got:?}");
    }

    /// The floor's gradient does not vanish with the probability: logits (0, −30, 0), so
    /// π(1) ≈ 5·10⁻¹⁴ and the penalty is ln 10⁻³ − log π(1), whose gradient on z_b is
    /// π(b) − 1[b = 1] = (½, −1, ½) to f32 precision (the entropy's on z₁ is ~10⁻¹²).
    #[test]
    fn probability_floor_gradient_does_not_vanish_for_a_collapsed_value() {
        let device = Device::flex().autodiff();
        let logits = Tensor::<2>::from_data(TensorData::new(vec![0.0f32, -30.0, 0.0], [1, 3]), &device).require_grad();
        let illegal = Tensor::<2, Bool>::from_data(TensorData::new(vec![false; 3], [1, 3]), &device);
        let log_probs = crate::distribution::masked_joint_log_probs(logits.clone(), illegal.clone(), &[3]);
        let grads = probability_floor_penalty(log_probs, illegal, 1e-3).sum().backward();
        let g: Vec<f32> = logits.grad(&grads).expect("logits get a gradient").into_data().try_into_vec().unwrap();
        for (g, w) in g.iter().zip([0.5, -1.0, 0.5]) {
            assert!((g - w).abs() < 1e-6, "{g:?}");
        }
    }

    #[test]
    fn clipped_surrogate_hand_values() {
        // ε = 0.2, so clip(ρ) ∈ [0.8, 1.2].
        // Â = +2: ρ = 1.1 (inside)  → min(2.2, 2.2) = 2.2
        //         ρ = 1.5 (outside) → min(3.0, 2.4) = 2.4   (gain capped)
        //         ρ = 0.5 (outside) → min(1.0, 1.6) = 1.0   (loss not capped)
        // Â = −1: ρ = 0.9 (inside)  → min(−0.9, −0.9) = −0.9
        //         ρ = 0.5 (outside) → min(−0.5, −0.8) = −0.8 (gain capped)
        //         ρ = 1.5 (outside) → min(−1.5, −1.2) = −1.5 (loss not capped)
        let ratio = t(&[1.1, 1.5, 0.5, 0.9, 0.5, 1.5]);
        let adv = t(&[2.0, 2.0, 2.0, -1.0, -1.0, -1.0]);
        let got = host(clipped_surrogate(ratio.clone(), adv, 0.2));
        let want = [2.2, 2.4, 1.0, -0.9, -0.8, -1.5];
        for (g, w) in got.iter().zip(want) {
            assert!((g - w).abs() < 1e-6, "{got:?}");
        }
        // Four of the six ratios are outside [0.8, 1.2].
        assert!((host(clip_fraction(ratio, 0.2))[0] - 4.0 / 6.0).abs() < 1e-6);
    }

    #[test]
    fn expected_clipped_surrogate_hand_values() {
        // Two states, three values, ε = 0.2.
        // State 0: π_old = (0.5, 0.5, 0), π = (0.7, 0.3, 0), Â = (+1, −1, 0):
        //   value 0: ρ = 1.4, min(0.7·1, clip(0.7, 0.4, 0.6)·1 = 0.6) = 0.6 (gain capped)
        //   value 1: ρ = 0.6, min(0.3·(−1), clip(0.3, 0.4, 0.6)·(−1) = −0.4) = −0.4 (gain capped)
        //   value 2: forbidden, 0 → 0.6 − 0.4 = 0.2.
        // State 1: π_old = (0.2, 0.3, 0.5), π = (0.21, 0.29, 0.5), Â = (2, 0, −0.8):
        //   inside the clip everywhere: 0.42 + 0 − 0.4 = 0.02.
        let m = |v: &[f32]| Tensor::<2>::from_data(TensorData::new(v.to_vec(), [2, 3]), &Device::flex());
        let got = host(expected_clipped_surrogate(
            m(&[0.7, 0.3, 0.0, 0.21, 0.29, 0.5]),
            m(&[0.5, 0.5, 0.0, 0.2, 0.3, 0.5]),
            m(&[1.0, -1.0, 0.0, 2.0, 0.0, -0.8]),
            0.2,
        ));
        assert!((got[0] - 0.2).abs() < 1e-6 && (got[1] - 0.02).abs() < 1e-6, "{got:?}");
        // Its expectation form agrees with clipped_surrogate at each value weighted by π_old:
        // state 1 value 0: π_old·min(ρ·Â, clip(ρ)·Â) = 0.2·(1.05·2) = 0.42.
        let one = host(clipped_surrogate(t(&[1.05]), t(&[2.0]), 0.2))[0];
        assert!((0.2 * one - 0.42).abs() < 1e-6);
    }

    #[test]
    fn value_loss_plain_and_clipped() {
        // V = (3, 0), V_old = (1, 1), R = (2, 2).
        // Plain: ((3−2)² + (0−2)²)/2 = (1 + 4)/2 = 2.5.
        // Clip c = 0.5: V_clip = (1 + 0.5, 1 − 0.5) = (1.5, 0.5); (V_clip − R)² = (0.25, 2.25);
        // max with the plain terms (1, 4) → (1, 4): mean 2.5.
        // V = (1.2, 1), R = (3, 3): V − V_old = (0.2, 0) is inside the clip, so both terms are
        // (3.24, 4) → 3.62.
        let l = |v: &[f32], r: &[f32], c| host(value_loss(t(v), t(&[1.0, 1.0]), t(r), c))[0];
        assert!((l(&[3.0, 0.0], &[2.0, 2.0], None) - 2.5).abs() < 1e-6);
        assert!((l(&[3.0, 0.0], &[2.0, 2.0], Some(0.5)) - 2.5).abs() < 1e-6);
        assert!((l(&[1.2, 1.0], &[3.0, 3.0], Some(0.5)) - 3.62).abs() < 1e-5);
        // A case where the clipped term wins: V = 3, V_old = 1, R = 4, c = 0.5:
        // plain (3−4)² = 1, clipped (1.5 − 4)² = 6.25 → 6.25 (and the second sample
        // V = 1 = V_old, R = 1 → 0): mean 3.125.
        assert!((l(&[3.0, 1.0], &[4.0, 1.0], Some(0.5)) - 3.125).abs() < 1e-5);
    }

    #[test]
    fn approx_kl_hand_value() {
        // log ρ = (0, ln 2): (ρ − 1) − log ρ = (0, 1 − ln 2 = 0.306853) → mean 0.153426.
        let kl = host(approx_kl(t(&[0.0, 2f32.ln()])))[0];
        assert!((f64::from(kl) - (1.0 - 2f64.ln()) / 2.0).abs() < 1e-6);
    }

    #[test]
    fn explained_variance_hand_values() {
        // R = (1, 2, 3, 4): Var = 1.25. V = R − (0.5, −0.5, 0.5, −0.5): residual variance 0.25
        // → 1 − 0.25/1.25 = 0.8. V = R exactly → 1. Constant returns → NaN (SB3).
        let r = [1.0, 2.0, 3.0, 4.0];
        assert!((explained_variance(&[0.5, 2.5, 2.5, 4.5], &r) - 0.8).abs() < 1e-12);
        assert_eq!(explained_variance(&r, &r), 1.0);
        assert!(explained_variance(&[1.0, 2.0], &[3.0, 3.0]).is_nan());
    }
}
