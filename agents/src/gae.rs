//! Generalised advantage estimation (Schulman et al. 2016, eq. 16) over a time-major rollout of
//! a vector env with autoreset, distinguishing the two ways an episode ends (Gymnasium):
//! - `terminated`: the MDP reached a terminal state, whose value is 0 — no bootstrap;
//! - `truncated` (time limit only): the state still has a value — bootstrap from V(final obs),
//!   which the vector env keeps because the member was already reset in the same step.
//!
//! Either way the recursion stops at the episode boundary: the next row of the buffer belongs to
//! a new episode.

/// One rollout of `n_steps × n_envs` transitions, index `t * n_envs + i`.
#[derive(Clone, Copy, Debug)]
pub struct GaeInput<'a> {
    pub n_envs: usize,
    pub rewards: &'a [f32],
    /// V(s_t) as estimated when acting.
    pub values: &'a [f32],
    pub terminated: &'a [bool],
    pub truncated: &'a [bool],
    /// V(final observation) where `truncated && !terminated`; read nowhere else.
    pub final_values: &'a [f32],
    /// V(s_T) of each member: the observation after the last step of the rollout.
    pub last_values: &'a [f32],
    /// Per-transition discount Γ_t in place of γ, for semi-MDP transitions: an option that ran
    /// k slots discounts what follows it by γ^k (Sutton, Precup & Singh 1999). `None`: γ.
    pub discounts: Option<&'a [f64]>,
    /// Per-slot: whether the agent decided at this slot (`false`: it held the choice of an earlier
    /// slot, inside an option). `None`: every slot is a decision. Rows that are not decisions get
    /// Â = 0 and R = V; a decision's advantage runs over the slots of its option.
    pub decisions: Option<&'a [bool]>,
}

/// Writes advantages Â_t and returns R_t = Â_t + V(s_t) (the value targets).
///
/// δ_t = r_t + γ·V_next,t − V(s_t), Â_t = δ_t + γλ·(1 − end_t)·Â_{t+1} (with Γ_t for γ where
/// `discounts` is given; the rewards are then the option's discounted sums), with
/// V_next,t = 0 if terminated, V(final obs) if truncated, else V(s_{t+1}); end_t = terminated or
/// truncated. Accumulated in f64.
///
/// With `decisions`, a decision at slot t whose choice is held through slot t + k − 1 (the
/// slots until the next decision, an episode end or the rollout's end) is one semi-MDP
/// transition: reward Σ_j Γ-discounted r_{t+j} (as [`option_return`]), discount the product of
/// the k slots' Γ, next value that of the slot after the last one (as above). With every slot a
/// decision this is the recursion above, operation for operation.
pub fn gae(input: &GaeInput<'_>, gamma: f64, lambda: f64, advantages: &mut [f32], returns: &mut [f32]) {
    let n = input.n_envs;
    let len = input.rewards.len();
    assert!(n > 0 && len.is_multiple_of(n), "rollout length {len} is not a multiple of n_envs {n}");
    for (name, l) in [
        ("values", input.values.len()),
        ("terminated", input.terminated.len()),
        ("truncated", input.truncated.len()),
        ("final_values", input.final_values.len()),
        ("advantages", advantages.len()),
        ("returns", returns.len()),
    ] {
        assert_eq!(l, len, "gae: {name} has {l} entries, rewards {len}");
    }
    assert_eq!(input.last_values.len(), n, "gae: last_values needs one value per member");
    if let Some(d) = input.discounts {
        assert_eq!(d.len(), len, "gae: discounts has {} entries, rewards {len}", d.len());
    }
    if let Some(d) = input.decisions {
        assert_eq!(d.len(), len, "gae: decisions has {} entries, rewards {len}", d.len());
    }
    let n_steps = len / n;
    let decision = |k: usize| input.decisions.is_none_or(|d| d[k]);
    for i in 0..n {
        let mut next_advantage = 0.0f64;
        // The option the slot belongs to, from this slot to its last: discounted reward sum,
        // product of discounts, and how it ends (next value; whether the episode ended).
        let (mut option_reward, mut option_discount) = (0.0f64, 1.0f64);
        let (mut option_next_value, mut option_ended) = (0.0f64, false);
        for t in (0..n_steps).rev() {
            let k = t * n + i;
            let (next_value, episode_ended) = if input.terminated[k] {
                (0.0, true)
            } else if input.truncated[k] {
                (f64::from(input.final_values[k]), true)
            } else if t + 1 == n_steps {
                (f64::from(input.last_values[i]), false)
            } else {
                (f64::from(input.values[k + n]), false)
            };
            let discount = input.discounts.map_or(gamma, |d| d[k]);
            let reward = f64::from(input.rewards[k]);
            // The option's last slot: the episode ends here, the rollout ends here, or the next
            // slot is a decision.
            if episode_ended || t + 1 == n_steps || decision(k + n) {
                (option_reward, option_discount, option_next_value, option_ended) =
                    (reward, discount, next_value, episode_ended);
            } else {
                option_reward = reward + discount * option_reward;
                option_discount *= discount;
            }
            let value = f64::from(input.values[k]);
            if !decision(k) {
                advantages[k] = 0.0;
                returns[k] = value as f32;
                continue;
            }
            let delta = option_reward + option_discount * option_next_value - value;
            let carry = if option_ended { 0.0 } else { option_discount * lambda * next_advantage };
            let advantage = delta + carry;
            advantages[k] = advantage as f32;
            returns[k] = (advantage + value) as f32;
            next_advantage = advantage;
        }
    }
}

/// What one semi-MDP transition (an option held for the slots whose rewards are `rewards`)
/// stores: its reward Σ_j γ^j r_j and its discount Γ = γ^k, k = the number of slots.
pub fn option_return(rewards: &[f64], gamma: f64) -> (f64, f64) {
    rewards.iter().rev().fold((0.0, 1.0), |(sum, discount), &r| (r + gamma * sum, gamma * discount))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn semi_mdp_return_of_a_two_slot_option_by_hand() {
        // γ = 0.5, λ = 1, V ≡ 1, V(s_T) = 8. Option A holds 2 slots with rewards (1, 2), option B
        // 1 slot with reward 4:
        //   A: R = 1 + 0.5·2 = 2, Γ = 0.25;  B: R = 4, Γ = 0.5.
        //   Â_B = 4 + 0.5·8 − 1 = 7;  Â_A = (2 + 0.25·1 − 1) + 0.25·1·7 = 3,
        // which is the per-slot discounted return 1 + 0.5·2 + 0.25·4 + 0.125·8 − 1 = 3.
        assert_eq!(option_return(&[1.0, 2.0], 0.5), (2.0, 0.25));
        assert_eq!(option_return(&[4.0], 0.5), (4.0, 0.5));
        assert_eq!(option_return(&[], 0.5), (0.0, 1.0));
        let input = GaeInput {
            n_envs: 1,
            rewards: &[2.0, 4.0],
            values: &[1.0, 1.0],
            terminated: &[false; 2],
            truncated: &[false; 2],
            final_values: &[0.0; 2],
            last_values: &[8.0],
            discounts: Some(&[0.25, 0.5]),
            decisions: None,
        };
        let (mut adv, mut ret) = ([0.0f32; 2], [0.0f32; 2]);
        gae(&input, 0.5, 1.0, &mut adv, &mut ret);
        assert_eq!(adv, [3.0, 7.0]);
        assert_eq!(ret, [4.0, 8.0]);

        // The same two options stored per slot, as a hierarchy holding its choice stores them:
        // slot 1 holds slot 0's choice (not a decision; V there is never read as a bootstrap
        // for A, which runs to s_2). A's advantage is 3 again, B's 7; the held row gets Â = 0,
        // R = V.
        let input = GaeInput {
            n_envs: 1,
            rewards: &[1.0, 2.0, 4.0],
            values: &[1.0, 5.0, 1.0],
            terminated: &[false; 3],
            truncated: &[false; 3],
            final_values: &[0.0; 3],
            last_values: &[8.0],
            discounts: None,
            decisions: Some(&[true, false, true]),
        };
        let (mut adv, mut ret) = ([0.0f32; 3], [0.0f32; 3]);
        gae(&input, 0.5, 1.0, &mut adv, &mut ret);
        assert_eq!(adv, [3.0, 0.0, 7.0]);
        assert_eq!(ret, [4.0, 5.0, 8.0]);
    }

    #[test]
    fn a_held_option_stops_at_the_episode_end_and_every_decision_is_plain_gae() {
        // γ = 0.5, λ = 1, V ≡ 2 but V(final) = 6. Slots 0–1 one option, the episode truncated at
        // slot 1; slot 2 a new episode's decision with V(s_3) = 4:
        //   A: R = 1 + 0.5·1 = 1.5, Γ = 0.25, next V(final) = 6, no carry: Â = 1.5 + 1.5 − 2 = 1;
        //   B: Â = 3 + 0.5·4 − 2 = 3.
        let input = GaeInput {
            n_envs: 1,
            rewards: &[1.0, 1.0, 3.0],
            values: &[2.0; 3],
            terminated: &[false; 3],
            truncated: &[false, true, false],
            final_values: &[0.0, 6.0, 0.0],
            last_values: &[4.0],
            discounts: None,
            decisions: Some(&[true, false, true]),
        };
        let (mut adv, mut ret) = ([0.0f32; 3], [0.0f32; 3]);
        gae(&input, 0.5, 1.0, &mut adv, &mut ret);
        assert_eq!(adv, [1.0, 0.0, 3.0]);
        // Every slot a decision: bit for bit the plain recursion.
        let plain = GaeInput { decisions: None, ..input };
        let all = GaeInput { decisions: Some(&[true; 3]), ..input };
        let (mut a1, mut r1, mut a2, mut r2) = ([0.0f32; 3], [0.0f32; 3], [0.0f32; 3], [0.0f32; 3]);
        gae(&plain, 0.5, 0.9, &mut a1, &mut r1);
        gae(&all, 0.5, 0.9, &mut a2, &mut r2);
        assert_eq!((a1, r1), (a2, r2));
    }

    #[test]
    fn hand_computed_truncation_bootstraps_termination_does_not() {
        // Two members, three steps, γ = 0.5, λ = 0.5 (γλ = 0.25). Index t·2 + i.
        //
        // Member 0: r = (1, 1, 1), V = (2, 2, 2); truncated at t = 1 with V(final) = 4;
        // V(s_3) = 8.
        //   t=2: δ = 1 + 0.5·8 − 2 = 3;                        Â = 3
        //   t=1: δ = 1 + 0.5·4 − 2 = 1 (bootstrap from final); Â = 1 (no carry across the end)
        //   t=0: δ = 1 + 0.5·2 − 2 = 0;                        Â = 0 + 0.25·1 = 0.25
        // Member 1: r = (0, 2, 0), V = (1, 1, 1); terminated at t = 1 (final value 100 ignored);
        // V(s_3) = 0.
        //   t=2: δ = 0 + 0.5·0 − 1 = −1;                       Â = −1
        //   t=1: δ = 2 + 0 − 1 = 1 (no bootstrap);              Â = 1
        //   t=0: δ = 0 + 0.5·1 − 1 = −0.5;                     Â = −0.5 + 0.25·1 = −0.25
        let input = GaeInput {
            n_envs: 2,
            rewards: &[1.0, 0.0, 1.0, 2.0, 1.0, 0.0],
            values: &[2.0, 1.0, 2.0, 1.0, 2.0, 1.0],
            terminated: &[false, false, false, true, false, false],
            truncated: &[false, false, true, false, false, false],
            final_values: &[0.0, 0.0, 4.0, 100.0, 0.0, 0.0],
            last_values: &[8.0, 0.0],
            discounts: None,
            decisions: None,
        };
        let mut adv = [0.0f32; 6];
        let mut ret = [0.0f32; 6];
        gae(&input, 0.5, 0.5, &mut adv, &mut ret);
        assert_eq!(adv, [0.25, -0.25, 1.0, 1.0, 3.0, -1.0]);
        // R = Â + V.
        assert_eq!(ret, [2.25, 0.75, 3.0, 2.0, 5.0, 0.0]);
    }

    #[test]
    fn terminated_and_truncated_together_counts_as_terminated() {
        // Gymnasium: a terminal state has value 0 even if the time limit hit in the same step.
        // r = 1, V = 5, γ = 0.9: δ = 1 − 5 = −4 (the final value 7 is not used).
        let input = GaeInput {
            n_envs: 1,
            rewards: &[1.0],
            values: &[5.0],
            terminated: &[true],
            truncated: &[true],
            final_values: &[7.0],
            last_values: &[3.0],
            discounts: None,
            decisions: None,
        };
        let (mut adv, mut ret) = ([0.0f32], [0.0f32]);
        gae(&input, 0.9, 0.95, &mut adv, &mut ret);
        assert_eq!(adv, [-4.0]);
        assert_eq!(ret, [1.0]);
    }

    #[test]
    fn lambda_one_gives_discounted_return_minus_value() {
        // λ = 1, no episode end: Â_t = Σ_k γ^k r_{t+k} + γ^{T−t} V(s_T) − V(s_t).
        // γ = 0.5, r = (1, 2, 4), V ≡ 1, V(s_3) = 8:
        //   Â_0 = 1 + 0.5·2 + 0.25·4 + 0.125·8 − 1 = 3; Â_1 = 2 + 2 + 2 − 1 = 5; Â_2 = 4 + 4 − 1 = 7.
        let input = GaeInput {
            n_envs: 1,
            rewards: &[1.0, 2.0, 4.0],
            values: &[1.0, 1.0, 1.0],
            terminated: &[false; 3],
            truncated: &[false; 3],
            final_values: &[0.0; 3],
            last_values: &[8.0],
            discounts: None,
            decisions: None,
        };
        let (mut adv, mut ret) = ([0.0f32; 3], [0.0f32; 3]);
        gae(&input, 0.5, 1.0, &mut adv, &mut ret);
        assert_eq!(adv, [3.0, 5.0, 7.0]);
    }
}
