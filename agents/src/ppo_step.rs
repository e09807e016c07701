//! One PPO gradient step on one minibatch, for any [`PolicyModel`], in the paper's order
//! (Schulman et al. 2017; CleanRL `ppo.py`): probability ratio → clipped surrogate → value loss →
//! entropy bonus → backward → global gradient-norm clip → Adam step. Flat PPO and every level of
//! a hierarchical agent call this one function; so does a warm start by imitation, whose policy
//! loss is the cross-entropy to the teacher's actions.

use crate::config::GradClip;
use crate::grad_clip::{clip_factor, global_grad_sum_squares, scale_grads};
use crate::loss::{
    approx_kl, clip_fraction, clipped_surrogate, expected_clipped_surrogate, probability_floor_penalty, value_loss,
};
use crate::policy_model::{PolicyBatch, PolicyModel};
use burn::optim::{GradientsParams, ModuleOptimizer};
use burn::tensor::Tensor;

/// The coefficients of one step (the schedules' current values included).
#[derive(Clone, Copy, Debug)]
pub struct StepParams {
    pub learning_rate: f64,
    pub clip_range: f64,
    pub clip_range_vf: Option<f64>,
    pub vf_coef: f64,
    pub ent_coef: f64,
    pub max_grad_norm: f64,
    pub grad_clip: GradClip,
    /// Behaviour cloning ([`crate::config::Imitation`]): the policy loss is the cross-entropy
    /// −log π(a|s) of the batch's actions (the teacher's) instead of the clipped surrogate.
    pub imitation: bool,
}

/// What one step measured (losses before the step; the gradient norm before clipping).
#[derive(Clone, Copy, Debug, Default)]
pub struct MinibatchStats {
    pub policy_loss: f64,
    pub value_loss: f64,
    pub entropy: f64,
    pub approx_kl: f64,
    pub clip_frac: f64,
    /// The probability floor's penalty (`None`: no floor).
    pub prob_floor_penalty: Option<f64>,
    pub grad_norm: f64,
}

impl MinibatchStats {
    pub fn add(&mut self, s: &MinibatchStats) {
        self.policy_loss += s.policy_loss;
        self.value_loss += s.value_loss;
        self.entropy += s.entropy;
        self.approx_kl += s.approx_kl;
        self.clip_frac += s.clip_frac;
        if let Some(x) = s.prob_floor_penalty {
            *self.prob_floor_penalty.get_or_insert(0.0) += x;
        }
        self.grad_norm += s.grad_norm;
    }
}

/// One Adam step of `model` on `batch`; returns the updated model and the step's statistics.
pub fn ppo_gradient_step<M: PolicyModel>(
    model: M,
    optimizer: &mut ModuleOptimizer,
    batch: PolicyBatch,
    nvec: &[usize],
    p: &StepParams,
) -> (M, MinibatchStats) {
    let evaluation = model.evaluate_actions(&batch, nvec);
    // Probability ratio ρ = π(a|s)/π_old(a|s), through log-probabilities.
    let log_ratio = evaluation.log_probs.clone() - batch.old_log_probs;
    let ratio = log_ratio.clone().exp();
    // Clipped surrogate objective, negated into a loss: at the sampled action, or in expectation
    // over the old policy when the batch carries every action's advantage.
    let mut floor_penalty = None;
    let policy_loss = match (batch.all_actions, evaluation.probs) {
        _ if p.imitation => evaluation.log_probs.clone().mean().neg(),
        (Some(all), Some(probs)) => {
            if let (Some(floor), Some(log_probs)) = (all.prob_floor, evaluation.log_probs_all) {
                floor_penalty = Some(probability_floor_penalty(log_probs, all.illegal, floor).mean());
            }
            expected_clipped_surrogate(probs, all.old_probs, all.advantages, p.clip_range).mean().neg()
        }
        (None, _) => clipped_surrogate(ratio.clone(), batch.advantages, p.clip_range).mean().neg(),
        (Some(_), None) => panic!("an all-action batch needs a policy model that returns every action's probability"),
    };
    // Value loss.
    let value_loss = value_loss(evaluation.values, batch.old_values, batch.returns, p.clip_range_vf);
    // Entropy bonus.
    let entropy = evaluation.entropy.mean();
    let mut loss =
        policy_loss.clone() + value_loss.clone().mul_scalar(p.vf_coef) - entropy.clone().mul_scalar(p.ent_coef);
    // The probability floor's hinge, at weight 1: it is 0 while every legal value is above the
    // floor, so its weight only sets how firmly the floor is kept.
    if let Some(penalty) = &floor_penalty {
        loss = loss + penalty.clone();
    }
    // Backward.
    let mut grads = GradientsParams::from_grads(loss.backward(), &model);

    // Diagnostics and the gradient norm, read back in one host transfer.
    let kl = approx_kl(log_ratio.detach());
    let clipped = clip_fraction(ratio.detach(), p.clip_range);
    let device = policy_loss.device();
    let zero = || Tensor::<1>::zeros([1], &device);
    let floor = floor_penalty.as_ref().map_or_else(zero, |f| f.clone().inner());
    let mut parts = vec![policy_loss.inner(), value_loss.inner(), entropy.inner(), kl.inner(), clipped.inner(), floor];
    match p.grad_clip {
        GradClip::Global => parts.push(global_grad_sum_squares(&model, &grads).unwrap_or_else(zero)),
        GradClip::PerNetwork => {
            let (actor, critic) = model.actor_and_critic();
            parts.push(global_grad_sum_squares(actor, &grads).unwrap_or_else(zero));
            parts.push(global_grad_sum_squares(critic, &grads).unwrap_or_else(zero));
        }
    }
    let host: Vec<f32> = Tensor::cat(parts, 0).into_data().try_into_vec::<f32>().expect("losses are f32");
    let norms: Vec<f64> = host[6..].iter().map(|&s| f64::from(s).sqrt()).collect();
    let grad_norm = match p.grad_clip {
        GradClip::Global => norms[0],
        GradClip::PerNetwork => norms[0].hypot(norms[1]),
    };

    // Gradient-norm clip: of everything together, or of the actor and the critic each.
    match p.grad_clip {
        GradClip::Global => {
            if let Some(factor) = clip_factor(grad_norm, p.max_grad_norm) {
                scale_grads(&model, &mut grads, factor);
            }
        }
        GradClip::PerNetwork => {
            let (actor, critic) = model.actor_and_critic();
            if let Some(factor) = clip_factor(norms[0], p.max_grad_norm) {
                scale_grads(actor, &mut grads, factor);
            }
            if let Some(factor) = clip_factor(norms[1], p.max_grad_norm) {
                scale_grads(critic, &mut grads, factor);
            }
        }
    }
    // Adam step.
    let model = optimizer.step(p.learning_rate, model, grads);
    let stats = MinibatchStats {
        policy_loss: f64::from(host[0]),
        value_loss: f64::from(host[1]),
        entropy: f64::from(host[2]),
        approx_kl: f64::from(host[3]),
        clip_frac: f64::from(host[4]),
        prob_floor_penalty: floor_penalty.is_some().then(|| f64::from(host[5])),
        grad_norm,
    };
    (model, stats)
}
