//! What one PPO update needs from a policy, whatever its structure: the log-probability and
//! entropy of the stored actions under the current parameters, and the critic's values. The flat
//! [`ActorCritic`] implements it here; a hierarchical agent's levels (a high level over the split
//! and a low level conditioned on it) implement it the same way, so the clipped surrogate, the
//! value loss, the entropy bonus, gradient clipping and the Adam step exist once
//! ([`crate::ppo_step`]).

use crate::distribution::{masked_joint_log_probs, masked_joint_probs, masked_log_prob_entropy};
use crate::network::{Actor, ActorCritic, Critic};
use burn::module::Module;
use burn::tensor::{Bool, Int, Tensor};

/// One minibatch on the training device.
pub struct PolicyBatch {
    /// Normalised observations, `[len, obs_dim]`.
    pub obs: Tensor<2>,
    /// `true` where an action value is illegal, `[len, Σ nvec]`.
    pub illegal: Tensor<2, Bool>,
    /// The actions taken, `[len, n_components]`.
    pub actions: Tensor<2, Int>,
    /// log π_old(a|s) and V_old(s) as recorded when acting, `[len]`.
    pub old_log_probs: Tensor<1>,
    pub old_values: Tensor<1>,
    /// Â and the value targets R = Â + V_old, `[len]`.
    pub advantages: Tensor<1>,
    pub returns: Tensor<1>,
    pub len: usize,
    /// The softmax temperature the actions were drawn at (1: none); the logits are divided by it.
    pub temperature: f32,
    /// All-action advantages (`AdvantageBaseline::AllActions`, one or two components): the
    /// update maximises the clipped surrogate in expectation over the old policy's joint values
    /// instead of at the sampled action.
    pub all_actions: Option<AllActionBatch>,
}

/// For every joint value b (row-major over the components, `n` = Π nvec): whether it was
/// forbidden, π_old(b|s) and Â(s, b), `[len, n]` each.
pub struct AllActionBatch {
    pub illegal: Tensor<2, Bool>,
    pub old_probs: Tensor<2>,
    pub advantages: Tensor<2>,
    /// The probability floor p (`PpoConfig::prob_floor`; `None`: off): the update then also
    /// needs every joint value's log-probability ([`ActionEvaluation::log_probs_all`]).
    pub prob_floor: Option<f64>,
}

/// The current policy's view of a minibatch's actions, `[len]` each.
pub struct ActionEvaluation {
    pub log_probs: Tensor<1>,
    pub entropy: Tensor<1>,
    pub values: Tensor<1>,
    /// π(b|s) of every joint value, `[len, n]`, when the batch asks for all actions.
    pub probs: Option<Tensor<2>>,
    /// log π(b|s) of every joint value (0 where illegal), `[len, n]`, when the batch has a
    /// probability floor.
    pub log_probs_all: Option<Tensor<2>>,
}

/// A policy and its critic as one module (one optimizer, one global gradient norm), able to
/// evaluate stored actions.
pub trait PolicyModel: Module {
    /// log π(a|s), the policy's entropy at s, and V(s), for the batch's observations and actions;
    /// `nvec` gives the multi-discrete components' sizes.
    fn evaluate_actions(&self, batch: &PolicyBatch, nvec: &[usize]) -> ActionEvaluation;

    /// The actor and the critic as separate modules (they share no parameters), for clipping
    /// their gradient norms separately (`GradClip::PerNetwork`).
    fn actor_and_critic(&self) -> (&Actor, &Critic);
}

impl PolicyModel for ActorCritic {
    fn actor_and_critic(&self) -> (&Actor, &Critic) {
        (&self.actor, &self.critic)
    }

    fn evaluate_actions(&self, batch: &PolicyBatch, nvec: &[usize]) -> ActionEvaluation {
        let mut logits = self.actor.forward(batch.obs.clone());
        if batch.temperature != 1.0 {
            logits = logits.div_scalar(batch.temperature);
        }
        let probs = batch.all_actions.as_ref().map(|a| masked_joint_probs(logits.clone(), a.illegal.clone(), nvec));
        let log_probs_all = batch
            .all_actions
            .as_ref()
            .filter(|a| a.prob_floor.is_some())
            .map(|a| masked_joint_log_probs(logits.clone(), a.illegal.clone(), nvec));
        let (log_probs, entropy) = masked_log_prob_entropy(logits, batch.illegal.clone(), batch.actions.clone(), nvec);
        let values = self.critic.forward(batch.obs.clone()).reshape([batch.len]);
        ActionEvaluation { log_probs, entropy, values, probs, log_probs_all }
    }
}
