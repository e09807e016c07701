//! The masked multi-discrete categorical policy head (a discrete space is the one-component case).
//!
//! Logits of illegal values are replaced by a large negative *finite* number (as SB3-contrib's
//! `MaskableCategorical`, −1e8), so probabilities of illegal values are exactly 0 in f32 and no
//! NaN appears in log-probabilities, entropies or their gradients. Components are independent
//! given the state: the log-probability of an action vector is the sum over components, and so is
//! the entropy. Entropy and log-probability therefore run over legal values only, and a component
//! with a single legal value contributes exactly 0 entropy.
//!
//! Two implementations of the same maths: tensor functions for the update (autodiff) and host
//! functions for acting (one host transfer of the logits per step, sampling with our own seeded
//! RNG, never burn's global RNG).

use burn::tensor::{
    Bool, Device, Int, Tensor, TensorData,
    activation::{log_softmax, softmax},
};
use rand::{Rng, RngExt};

/// Logit given to masked-out values (SB3-contrib `MaskableCategorical`: −1e8).
pub const MASKED_LOGIT: f32 = -1e8;

/// A component of a state's mask allows no value: the environment broke its contract.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("action component {component} has no legal value in this state")]
pub struct EmptyMask {
    pub component: usize,
}

/// Log-probability of `actions` and entropy of the masked distribution, per row.
///
/// `logits`: `[batch, Σ nvec]`; `illegal`: same shape, `true` where the mask forbids the value;
/// `actions`: `[batch, n_components]` value indices. Returns `([batch], [batch])`.
pub fn masked_log_prob_entropy(
    logits: Tensor<2>,
    illegal: Tensor<2, Bool>,
    actions: Tensor<2, Int>,
    nvec: &[usize],
) -> (Tensor<1>, Tensor<1>) {
    let [batch, width] = logits.dims();
    assert_eq!(width, nvec.iter().sum::<usize>(), "logits width must be Σ nvec");
    let masked = logits.mask_fill(illegal, MASKED_LOGIT);
    let component = |block: Tensor<2>, action: Tensor<2, Int>| {
        let log_p = log_softmax(block, 1);
        let log_prob = log_p.clone().gather(1, action);
        // −Σ p·log p; illegal values have p = 0 exactly and a finite log p, so they add 0.
        let entropy = log_p.clone().exp().mul(log_p).sum_dim(1).neg();
        (log_prob, entropy)
    };
    let (log_prob, entropy) = if nvec.len() == 1 {
        component(masked, actions)
    } else if masked.device() != Device::flex() {
        return padded_log_prob_entropy(masked, actions, nvec);
    } else {
        let mut offset = 0;
        let mut total: Option<(Tensor<2>, Tensor<2>)> = None;
        for (k, &n) in nvec.iter().enumerate() {
            let block = masked.clone().narrow(1, offset, n);
            let (lp, ent) = component(block, actions.clone().narrow(1, k, 1));
            total = Some(match total {
                None => (lp, ent),
                Some((a, b)) => (a + lp, b + ent),
            });
            offset += n;
        }
        total.expect("an action space has at least one component")
    };
    (log_prob.reshape([batch]), entropy.reshape([batch]))
}

/// The multi-component case of [`masked_log_prob_entropy`] in one reduction instead of one per
/// component: the masked logits are gathered into `[batch, components, max nvec]`, short
/// components padded with [`MASKED_LOGIT`] (probability exactly 0, so neither sum changes). Used
/// off the CPU: burn 0.22.1's kernel fusion (wgpu) panics on the per-component slices
/// (`burn-cubecl-fusion` `TraceFuser::block_local_input`, measured on the hierarchical action).
/// The CPU keeps the per-component form, whose results checkpoints and RESULTS.md were made with;
/// the two agree within f32 rounding (tested).
pub fn padded_log_prob_entropy(masked: Tensor<2>, actions: Tensor<2, Int>, nvec: &[usize]) -> (Tensor<1>, Tensor<1>) {
    let [batch, width] = masked.dims();
    let (k, widest) = (nvec.len(), nvec.iter().copied().max().unwrap_or(1));
    let device = masked.device();
    // Column `width` is the padding.
    let padded = Tensor::cat(vec![masked, Tensor::full([batch, 1], MASKED_LOGIT, &device)], 1);
    let mut index = Vec::with_capacity(k * widest);
    let mut offset = 0;
    for &n in nvec {
        index.extend((0..widest).map(|j| if j < n { (offset + j) as i64 } else { width as i64 }));
        offset += n;
    }
    let index = Tensor::<1, Int>::from_data(TensorData::new(index, [k * widest]), &device)
        .reshape([1, k * widest])
        .expand([batch, k * widest]);
    let blocks = padded.gather(1, index).reshape([batch, k, widest]);
    let log_p = log_softmax(blocks, 2);
    let log_prob = log_p.clone().gather(2, actions.reshape([batch, k, 1])).sum_dim(1);
    let entropy = log_p.clone().exp().mul(log_p).sum_dim(2).sum_dim(1).neg();
    (log_prob.reshape([batch]), entropy.reshape([batch]))
}

/// Probabilities of every joint value of a masked distribution of one or two components,
/// `[batch, Π nvec]` row-major (for two: `(a₀, a₁)` at `a₀ · nvec[1] + a₁`), forbidden joint
/// values exactly 0. `joint_illegal`: `[batch, Π nvec]`, `true` where a joint value is forbidden.
///
/// The policy is a product of per-component categoricals under autoregressive masks
/// ([`masked_log_prob_entropy`]): π(a₀, a₁) = π₀(a₀)·π₁(a₁ | a₀), with π₀ masked to the values
/// that have at least one legal continuation and π₁'s softmax over the values legal after a₀ (the
/// logits do not depend on a₀; the mask does). One component: the masked softmax.
/// The blocks are taken with `gather`, not per-component slices (see
/// [`padded_log_prob_entropy`] for why slices are avoided off the CPU).
pub fn masked_joint_probs(logits: Tensor<2>, joint_illegal: Tensor<2, Bool>, nvec: &[usize]) -> Tensor<2> {
    match *nvec {
        [_] => softmax(logits.mask_fill(joint_illegal, MASKED_LOGIT), 1),
        [n0, n1] => {
            let (first, second, illegal) = joint_blocks(logits, joint_illegal, n0, n1);
            let batch = first.dims()[0];
            let p0 = softmax(first, 1).reshape([batch, n0, 1]);
            p0.mul(softmax(second, 2)).mask_fill(illegal, 0.0).reshape([batch, n0 * n1])
        }
        _ => panic!("joint probabilities are for one or two components, got {}", nvec.len()),
    }
}

/// log π(b|s) of every joint value, as [`masked_joint_probs`] but from log-softmaxes, so a value
/// whose probability underflows f32 still has a finite log-probability and a gradient (the
/// probability floor, [`crate::loss::probability_floor_penalty`], needs both). Illegal values get
/// 0 (they must be masked by the caller).
pub fn masked_joint_log_probs(logits: Tensor<2>, joint_illegal: Tensor<2, Bool>, nvec: &[usize]) -> Tensor<2> {
    match *nvec {
        [_] => log_softmax(logits.mask_fill(joint_illegal.clone(), MASKED_LOGIT), 1).mask_fill(joint_illegal, 0.0),
        [n0, n1] => {
            let (first, second, illegal) = joint_blocks(logits, joint_illegal, n0, n1);
            let batch = first.dims()[0];
            let log_p0 = log_softmax(first, 1).reshape([batch, n0, 1]);
            log_p0.add(log_softmax(second, 2)).mask_fill(illegal, 0.0).reshape([batch, n0 * n1])
        }
        _ => panic!("joint probabilities are for one or two components, got {}", nvec.len()),
    }
}

/// The masked logits of two components for [`masked_joint_probs`] and
/// [`masked_joint_log_probs`]: the first component's `[batch, n0]` with the values that have no
/// legal continuation masked, the second's `[batch, n0, n1]` masked given each first value, and
/// the joint mask `[batch, n0, n1]`.
fn joint_blocks(
    logits: Tensor<2>,
    joint_illegal: Tensor<2, Bool>,
    n0: usize,
    n1: usize,
) -> (Tensor<2>, Tensor<3>, Tensor<3, Bool>) {
    let [batch, width] = logits.dims();
    assert_eq!(width, n0 + n1, "logits width must be Σ nvec");
    let device = logits.device();
    let columns = |start: usize, n: usize| {
        let index: Vec<i64> = (start..start + n).map(|j| j as i64).collect();
        let index = Tensor::<1, Int>::from_data(TensorData::new(index, [n]), &device);
        logits.clone().gather(1, index.reshape([1, n]).expand([batch, n]))
    };
    let (first, second) = (columns(0, n0), columns(n0, n1));
    let illegal = joint_illegal.reshape([batch, n0, n1]);
    // a₀ is forbidden when no a₁ may follow it.
    let dead_end = illegal.clone().float().sum_dim(2).reshape([batch, n0]).equal_elem(n1 as f32);
    let second = second.reshape([batch, 1, n1]).expand([batch, n0, n1]).mask_fill(illegal.clone(), MASKED_LOGIT);
    (first.mask_fill(dead_end, MASKED_LOGIT), second, illegal)
}

/// [`masked_joint_probs`] for one row on the host: `first_mask` is the first component's mask,
/// `continuation(a₀, out)` writes the second component's mask given a₀ (unused for one
/// component). Writes each joint value's legality into `legal` and its probability into `probs`.
pub fn masked_joint_probs_host(
    logits: &[f32],
    first_mask: &[bool],
    nvec: &[usize],
    mut continuation: impl FnMut(usize, &mut [bool]),
    legal: &mut [bool],
    probs: &mut [f32],
) {
    match *nvec {
        [_] => {
            legal.copy_from_slice(first_mask);
            masked_probs_host(logits, first_mask, probs);
        }
        [n0, n1] => {
            let mut alive = first_mask.to_vec();
            for (a0, live) in alive.iter_mut().enumerate() {
                let row = &mut legal[a0 * n1..(a0 + 1) * n1];
                row.fill(false);
                if *live {
                    continuation(a0, row);
                    *live = row.iter().any(|&l| l);
                }
            }
            let mut p0 = vec![0.0f32; n0];
            masked_probs_host(&logits[..n0], &alive, &mut p0);
            for (a0, &p) in p0.iter().enumerate() {
                let (row, out) = (&legal[a0 * n1..(a0 + 1) * n1], &mut probs[a0 * n1..(a0 + 1) * n1]);
                masked_probs_host(&logits[n0..n0 + n1], row, out);
                for o in out.iter_mut() {
                    *o = (f64::from(*o) * f64::from(p)) as f32;
                }
            }
        }
        _ => panic!("joint probabilities are for one or two components, got {}", nvec.len()),
    }
}

/// How the host picks a value within one component.
pub enum Pick<'a, R: Rng> {
    /// The most probable legal value; ties go to the lowest index.
    Greedy,
    /// Inverse-CDF sampling with one uniform draw.
    Sample(&'a mut R),
}

/// Picks one value of one component under its mask; returns it with its log-probability
/// (f64 maths), or `None` when no value is legal.
pub fn pick_component<R: Rng>(logits: &[f32], mask: &[bool], pick: &mut Pick<'_, R>) -> Option<(usize, f64)> {
    let (max, sum) = max_and_sum_exp(logits, mask)?;
    let legal = || (0..logits.len()).filter(|&j| mask[j]);
    let chosen = match pick {
        Pick::Greedy => legal().fold(None, |best: Option<usize>, j| match best {
            Some(b) if logits[b] >= logits[j] => Some(b),
            _ => Some(j),
        })?,
        Pick::Sample(rng) => {
            let u = rng.random::<f64>() * sum;
            let mut cumulative = 0.0;
            let mut chosen = None;
            for j in legal() {
                cumulative += (f64::from(logits[j]) - max).exp();
                chosen = Some(j);
                if u < cumulative {
                    break;
                }
            }
            // The last legal value if rounding left u ≥ the final cumulative sum.
            chosen?
        }
    };
    Some((chosen, f64::from(logits[chosen]) - max - sum.ln()))
}

/// The log-probability of `value` within one component under its mask (f64 maths, as
/// [`pick_component`] gives it), or `None` when `value` is not legal there.
pub fn value_log_prob(logits: &[f32], mask: &[bool], value: usize) -> Option<f64> {
    if !mask.get(value).copied().unwrap_or(false) {
        return None;
    }
    let (max, sum) = max_and_sum_exp(logits, mask)?;
    Some(f64::from(logits[value]) - max - sum.ln())
}

/// Picks one action vector from one row of logits under its mask (components independently),
/// writing the value indices into `action`; returns the log-probability.
pub fn pick_masked<R: Rng>(
    logits: &[f32],
    mask: &[bool],
    nvec: &[usize],
    mut pick: Pick<'_, R>,
    action: &mut [usize],
) -> Result<f64, EmptyMask> {
    let mut offset = 0;
    let mut log_prob = 0.0;
    for (k, &n) in nvec.iter().enumerate() {
        let (a, lp) = pick_component(&logits[offset..offset + n], &mask[offset..offset + n], &mut pick)
            .ok_or(EmptyMask { component: k })?;
        action[k] = a;
        log_prob += lp;
        offset += n;
    }
    Ok(log_prob)
}

/// A sample of one action vector (see [`pick_masked`]).
pub fn sample_masked(
    logits: &[f32],
    mask: &[bool],
    nvec: &[usize],
    rng: &mut impl Rng,
    action: &mut [usize],
) -> Result<f64, EmptyMask> {
    pick_masked(logits, mask, nvec, Pick::Sample(rng), action)
}

/// The most probable legal value of each component (the deterministic / evaluation action).
pub fn greedy_masked(logits: &[f32], mask: &[bool], nvec: &[usize], action: &mut [usize]) -> Result<(), EmptyMask> {
    pick_masked::<rand_pcg::Pcg64Mcg>(logits, mask, nvec, Pick::Greedy, action).map(|_| ())
}

/// Host reference of [`masked_log_prob_entropy`] for one row (f64).
pub fn masked_log_prob_entropy_host(
    logits: &[f32],
    mask: &[bool],
    nvec: &[usize],
    action: &[usize],
) -> Result<(f64, f64), EmptyMask> {
    let mut offset = 0;
    let (mut log_prob, mut entropy) = (0.0, 0.0);
    for (k, &n) in nvec.iter().enumerate() {
        let (l, m) = (&logits[offset..offset + n], &mask[offset..offset + n]);
        let (max, sum) = max_and_sum_exp(l, m).ok_or(EmptyMask { component: k })?;
        let log_z = max + sum.ln();
        log_prob += f64::from(l[action[k]]) - log_z;
        for j in (0..n).filter(|&j| m[j]) {
            let lp = f64::from(l[j]) - log_z;
            entropy -= lp.exp() * lp;
        }
        offset += n;
    }
    Ok((log_prob, entropy))
}

/// Host reference of [`masked_joint_probs`] for one row of one component: writes π(b) into `out`
/// (0 where the mask forbids b; all 0 when nothing is legal, which acting has refused already).
pub fn masked_probs_host(logits: &[f32], mask: &[bool], out: &mut [f32]) {
    let Some((max, sum)) = max_and_sum_exp(logits, mask) else {
        out.fill(0.0);
        return;
    };
    for ((o, &l), &legal) in out.iter_mut().zip(logits).zip(mask) {
        *o = if legal { ((f64::from(l) - max).exp() / sum) as f32 } else { 0.0 };
    }
}

/// Max legal logit and Σ exp(l − max) over legal values; `None` when nothing is legal.
fn max_and_sum_exp(logits: &[f32], mask: &[bool]) -> Option<(f64, f64)> {
    let max = logits
        .iter()
        .zip(mask)
        .filter(|(_, m)| **m)
        .map(|(&l, _)| f64::from(l))
        .fold(None, |acc: Option<f64>, l| Some(acc.map_or(l, |a| a.max(l))))?;
    let sum = logits.iter().zip(mask).filter(|(_, m)| **m).map(|(&l, _)| (f64::from(l) - max).exp()).sum();
    Some((max, sum))
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{Device, TensorData};
    use rand::SeedableRng;
    use splitwise_env::rng::StreamRng;

    /// Two components of sizes 2 and 3. Row 0: π₀ = (1/4, 3/4); after a₀ = 0 the values (0, 1)
    /// are legal, π₁ = (1/3, 2/3, 0); after a₀ = 1 the values (1, 2), π₁ = (0, 2/7, 5/7). Row 1:
    /// a₀ = 0 has no legal continuation (so π₀ = (0, 1)) and after a₀ = 1 all are legal,
    /// π₁ = (1/8, 2/8, 5/8).
    #[test]
    fn joint_probabilities_of_two_components_follow_the_autoregressive_masks_by_hand() {
        let (l3, l2, l5) = (3f32.ln(), 2f32.ln(), 5f32.ln());
        let logits = [0.0, l3, 0.0, l2, l5, 0.0, l3, 0.0, l2, l5];
        let legal = [[true, true, false, false, true, true], [false, false, false, true, true, true]];
        let want = [[1.0 / 12.0, 2.0 / 12.0, 0.0, 0.0, 6.0 / 28.0, 15.0 / 28.0], [0.0, 0.0, 0.0, 0.125, 0.25, 0.625]];
        let device = Device::flex();
        let illegal: Vec<bool> = legal.iter().flatten().map(|l| !l).collect();
        let probs = masked_joint_probs(
            Tensor::from_data(TensorData::new(logits.to_vec(), [2, 5]), &device),
            Tensor::from_data(TensorData::new(illegal, [2, 6]), &device),
            &[2, 3],
        );
        let got: Vec<f32> = probs.into_data().try_into_vec().unwrap();
        for (g, w) in got.iter().zip(want.iter().flatten()) {
            assert!((g - w).abs() < 1e-6, "{got:?}");
        }
        let illegal: Vec<bool> = legal.iter().flatten().map(|l| !l).collect();
        let log_probs = masked_joint_log_probs(
            Tensor::from_data(TensorData::new(logits.to_vec(), [2, 5]), &device),
            Tensor::from_data(TensorData::new(illegal, [2, 6]), &device),
            &[2, 3],
        );
        let got: Vec<f32> = log_probs.into_data().try_into_vec().unwrap();
        for (g, w) in got.iter().zip(want.iter().flatten()) {
            let w = if *w > 0.0 { w.ln() } else { 0.0 };
            assert!((g - w).abs() < 1e-5, "{got:?}");
        }
        for r in 0..2 {
            let (mut legal_out, mut probs_out) = ([false; 6], [0f32; 6]);
            let first = [legal[r][..3].iter().any(|&l| l), legal[r][3..].iter().any(|&l| l)];
            let continuation = |a0: usize, out: &mut [bool]| out.copy_from_slice(&legal[r][a0 * 3..(a0 + 1) * 3]);
            masked_joint_probs_host(
                &logits[r * 5..(r + 1) * 5],
                &first,
                &[2, 3],
                continuation,
                &mut legal_out,
                &mut probs_out,
            );
            assert_eq!(legal_out, legal[r]);
            for (g, w) in probs_out.iter().zip(want[r]) {
                assert!((g - w).abs() < 1e-6, "row {r}: {probs_out:?}");
            }
        }
    }

    fn tensors(
        logits: &[f32],
        mask: &[bool],
        actions: &[i64],
        batch: usize,
        nvec: &[usize],
    ) -> (Tensor<2>, Tensor<2, Bool>, Tensor<2, Int>) {
        let device = Device::flex();
        let width: usize = nvec.iter().sum();
        let illegal: Vec<bool> = mask.iter().map(|m| !m).collect();
        (
            Tensor::from_data(TensorData::new(logits.to_vec(), [batch, width]), &device),
            Tensor::from_data(TensorData::new(illegal, [batch, width]), &device),
            Tensor::from_data(TensorData::new(actions.to_vec(), [batch, nvec.len()]), &device),
        )
    }

    fn to_vec(t: Tensor<1>) -> Vec<f32> {
        t.into_data().try_into_vec::<f32>().expect("f32 tensor")
    }

    #[test]
    fn discrete_masked_log_prob_and_entropy_match_hand_values() {
        // Logits (0, ln 2, ln 3, 5) with the last value masked: legal probabilities are
        // (1, 2, 3)/6. Action 2: log p = ln(3/6) = −ln 2 = −0.693147.
        // Entropy = −Σ p ln p = −(1/6 ln 1/6 + 2/6 ln 2/6 + 3/6 ln 3/6) = 1.011404.
        let logits = [0.0, 2f32.ln(), 3f32.ln(), 5.0];
        let mask = [true, true, true, false];
        let expected_ent =
            -(1.0 / 6.0 * (1.0f64 / 6.0).ln() + 2.0 / 6.0 * (2.0f64 / 6.0).ln() + 3.0 / 6.0 * (3.0f64 / 6.0).ln());
        assert!((expected_ent - 1.011404).abs() < 1e-6);
        let (l, m, a) = tensors(&logits, &mask, &[2], 1, &[4]);
        let (lp, ent) = masked_log_prob_entropy(l, m, a, &[4]);
        let (lp, ent) = (to_vec(lp), to_vec(ent));
        assert!((f64::from(lp[0]) + 2f64.ln()).abs() < 1e-6, "{lp:?}");
        assert!((f64::from(ent[0]) - expected_ent).abs() < 1e-6, "{ent:?}");
        let (hlp, hent) = masked_log_prob_entropy_host(&logits, &mask, &[4], &[2]).unwrap();
        assert!((hlp + 2f64.ln()).abs() < 1e-7 && (hent - expected_ent).abs() < 1e-7);
    }

    #[test]
    fn the_padded_multi_component_form_agrees_with_the_per_component_one() {
        // nvec (2, 3, 1, 4) over 3 rows with assorted masks; the padded form is what runs off
        // the CPU, here on flex against the per-component form.
        let nvec = [2, 3, 1, 4];
        let logits: Vec<f32> = (0..30).map(|i| ((i * 7 % 11) as f32 - 5.0) * 0.37).collect();
        let mask: Vec<bool> = (0..30).map(|i| i % 10 == 5 || i % 3 != 0).collect();
        let actions = [1, 0, 0, 1, 0, 2, 0, 3, 0, 1, 0, 2];
        let (l, m, a) = tensors(&logits, &mask, &actions, 3, &nvec);
        let (lp, ent) = masked_log_prob_entropy(l.clone(), m.clone(), a.clone(), &nvec);
        let (plp, pent) = padded_log_prob_entropy(l.mask_fill(m, MASKED_LOGIT), a, &nvec);
        for (x, y) in to_vec(lp).iter().zip(to_vec(plp)).chain(to_vec(ent).iter().zip(to_vec(pent))) {
            assert!((x - y).abs() <= 1e-6 * x.abs().max(1.0), "{x} vs {y}");
        }
    }

    #[test]
    fn multi_discrete_sums_components_and_single_legal_value_has_zero_entropy() {
        // nvec = (2, 3). Row 0: component 0 logits (0, 0) both legal → p = ½ each,
        // log p = −ln 2, entropy ln 2; component 1 logits (1, 7, −3) with only value 1 legal →
        // p = 1, log p = 0, entropy 0. Action (1, 1): log p = −ln 2, entropy = ln 2.
        // Row 1: component 0 (0, ln 3) → p = (¼, ¾); component 1 (0, 0, 0) all legal →
        // p = ⅓. Action (0, 2): log p = ln ¼ + ln ⅓ = −ln 12 = −2.484907;
        // entropy = −(¼ ln ¼ + ¾ ln ¾) + ln 3 = 0.562335 + 1.098612 = 1.660947.
        let logits = [0.0, 0.0, 1.0, 7.0, -3.0, 0.0, 3f32.ln(), 0.0, 0.0, 0.0];
        let mask = [true, true, false, true, false, true, true, true, true, true];
        let nvec = [2, 3];
        let (l, m, a) = tensors(&logits, &mask, &[1, 1, 0, 2], 2, &nvec);
        let (lp, ent) = masked_log_prob_entropy(l, m, a, &nvec);
        let (lp, ent) = (to_vec(lp), to_vec(ent));
        let ln2 = 2f64.ln();
        let ent1 = -(0.25 * 0.25f64.ln() + 0.75 * 0.75f64.ln()) + 3f64.ln();
        assert!((f64::from(lp[0]) + ln2).abs() < 1e-6, "{lp:?}");
        assert!((f64::from(ent[0]) - ln2).abs() < 1e-6, "{ent:?}");
        assert!((f64::from(lp[1]) + 12f64.ln()).abs() < 1e-6, "{lp:?}");
        assert!((f64::from(ent[1]) - ent1).abs() < 1e-6, "{ent:?}");

        // The single-legal component alone: entropy exactly 0, log p exactly 0.
        let (l, m, a) = tensors(&[1.0, 7.0, -3.0], &[false, true, false], &[1], 1, &[3]);
        let (lp, ent) = masked_log_prob_entropy(l, m, a, &[3]);
        assert_eq!((to_vec(lp)[0], to_vec(ent)[0].abs()), (0.0, 0.0));

        let (hlp, hent) = masked_log_prob_entropy_host(&logits[5..], &mask[5..], &nvec, &[0, 2]).unwrap();
        assert!((hlp + 12f64.ln()).abs() < 1e-7 && (hent - ent1).abs() < 1e-7);
    }

    #[test]
    fn masked_gradients_are_finite() {
        let device = Device::flex().autodiff();
        let logits = Tensor::<2>::from_data(TensorData::new(vec![0.5f32, 2.0, -1.0], [1, 3]), &device).require_grad();
        let illegal = Tensor::<2, Bool>::from_data(TensorData::new(vec![false, true, false], [1, 3]), &device);
        let actions = Tensor::<2, Int>::from_data(TensorData::new(vec![0i64], [1, 1]), &device);
        let (lp, ent) = masked_log_prob_entropy(logits.clone(), illegal, actions, &[3]);
        let grads = (lp + ent).sum().backward();
        let g = logits.grad(&grads).expect("logits get a gradient").into_data().try_into_vec::<f32>().unwrap();
        assert!(g.iter().all(|x| x.is_finite()), "{g:?}");
        // The masked logit does not influence anything: its gradient is exactly 0.
        assert_eq!(g[1], 0.0);
    }

    #[test]
    fn sampling_respects_masks_and_matches_probabilities() {
        // Legal probabilities (1, 2, 3)/6 on values 0, 1, 3; value 2 is masked. With N = 60 000
        // draws the count of each value is Binomial(N, p): std ≤ √(N·p(1−p)) ≤ 116, so a
        // 5-sigma band is ±0.01 in frequency.
        let logits = [0.0, 2f32.ln(), 9.0, 3f32.ln()];
        let mask = [true, true, false, true];
        let mut rng = StreamRng::seed_from_u64(7);
        let mut counts = [0usize; 4];
        let mut action = [0usize];
        let n = 60_000;
        for _ in 0..n {
            let lp = sample_masked(&logits, &mask, &[4], &mut rng, &mut action).unwrap();
            counts[action[0]] += 1;
            let (expected, _) = masked_log_prob_entropy_host(&logits, &mask, &[4], &action).unwrap();
            assert!((lp - expected).abs() < 1e-12);
        }
        assert_eq!(counts[2], 0);
        for (v, p) in [(0, 1.0 / 6.0), (1, 2.0 / 6.0), (3, 3.0 / 6.0)] {
            let freq = counts[v] as f64 / n as f64;
            assert!((freq - p).abs() < 0.01, "value {v}: {freq} vs {p}");
        }
    }

    #[test]
    fn greedy_takes_best_legal_value_per_component() {
        // Component 0: best overall (index 1) is masked → index 0; component 1: index 2.
        let logits = [0.1, 5.0, 0.0, -1.0, 3.0];
        let mask = [true, false, true, true, true];
        let mut action = [9, 9];
        greedy_masked(&logits, &mask, &[2, 3], &mut action).unwrap();
        assert_eq!(action, [0, 2]);
        let err = greedy_masked(&logits, &[true, true, false, false, false], &[2, 3], &mut action);
        assert_eq!(err, Err(EmptyMask { component: 1 }));
    }
}
