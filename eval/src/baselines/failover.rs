//! `failover[:HOLD_S]`: the rule a practitioner writes first. Run the best static plan while the
//! link and the cloud look healthy; switch to edge-only while the modem reports no service, the
//! last keep-alive probe's crossing failed or the cloud API rejected it (429/529), and stay there
//! `HOLD_S` seconds after the last sign of trouble so that a flapping link does not make it
//! thrash. It reads only the observation (system-model §9): a causal baseline that a learned
//! policy must beat.
//!
//! The default hold is 1 s (one slot of the shipped scenarios: the edge exactly while the last
//! slot showed trouble). Measured on the experiment's held-out episodes (100, seed 7919), holds
//! of 1 / 2 / 5 / 10 / 30 s score Δ + V·p 9.18 / 9.47 / 10.26 / 12.10 / 15.30 on
//! `jetson-llama7b-lte` (cloud-only 10.55) and 1.658 / 1.660 / 1.675 / 1.712 / 1.814 on
//! `intercity-train-phone` (1.497 against 1.526 for 10 s on 1,000 episodes, seed 4242); on
//! `subway-commute-phone` every hold loses to the phone alone on 1,000 episodes (1 s 3.208, 10 s
//! 3.102, edge-only 2.860). Until 2026-12-04 the default was 10 s, which on the Jetson keeps the
//! edge on for 10 s after every ~20 s outage and loses to cloud-only: a baseline that learners
//! are measured against should be the rule at its best, not a straw man (docs/agents.md, "What
//! knowing the present is worth").

use super::layer_wise::{Objective, StaticBest};
use splitwise_env::observation::{decode, index};
use splitwise_env::policy::{Decision, DecisionContext, EdgeOnly, Policy};
use splitwise_env::scenario::Scenario;

/// Default hold time after the last sign of trouble (s).
pub const DEFAULT_HOLD_S: f64 = 1.0;

pub struct Failover {
    healthy: StaticBest,
    hold_s: f64,
    slot_s: f64,
    /// Time (s) of the last decision that saw trouble.
    last_trouble_s: Option<f64>,
}

impl Failover {
    pub fn new(sc: &Scenario, hold_s: f64) -> Self {
        Self {
            healthy: StaticBest::new(sc, Objective::Latency),
            hold_s,
            slot_s: sc.config.serving.slot_s,
            last_trouble_s: None,
        }
    }

    /// Whether the observation shows trouble on the link or in the cloud.
    pub fn trouble(obs: &[f32]) -> bool {
        decode(obs, index::LINK_CONNECTED) < 0.5
            || decode(obs, index::PROBE_FAILED_LAST) > 0.5
            || decode(obs, index::CLOUD_REJECTED_LAST) > 0.5
    }
}

impl Policy for Failover {
    fn name(&self) -> String {
        if self.hold_s == DEFAULT_HOLD_S { "failover".into() } else { format!("failover:{}", self.hold_s) }
    }

    fn reset(&mut self, _seed: u64) {
        self.last_trouble_s = None;
    }

    fn decide(&mut self, ctx: &DecisionContext<'_>) -> Decision {
        let now = ctx.env.slot() as f64 * self.slot_s;
        if Self::trouble(ctx.obs) {
            self.last_trouble_s = Some(now);
        }
        if self.last_trouble_s.is_some_and(|t| now - t < self.hold_s.max(1e-9)) {
            EdgeOnly.decide(ctx)
        } else {
            self.healthy.decide(ctx)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::baselines::test_support::{jetson, plan_of};
    use splitwise_env::api::Env;
    use splitwise_env::plan::Plan;

    #[test]
    fn goes_to_the_edge_on_trouble_and_holds_there() {
        let (sc, env) = jetson();
        let (mut obs, _) = env.buffers();
        let mut p = Failover::new(&sc, 10.0);
        let (l, h) = (sc.n_layers(), sc.n_heads());
        obs[index::LINK_CONNECTED] = 1.0;
        let healthy = plan_of(&mut p, &env, &obs);
        assert!(!healthy.is_edge_only(h), "static-best is a cloud plan here: {healthy:?}");
        for (feature, value) in
            [(index::LINK_CONNECTED, 0.0), (index::PROBE_FAILED_LAST, 1.0), (index::CLOUD_REJECTED_LAST, 1.0)]
        {
            let mut o = obs.clone();
            o[feature] = value as f32;
            let mut q = Failover::new(&sc, 10.0);
            let plan = plan_of(&mut q, &env, &o);
            assert_eq!(plan, Plan::edge_only(l, h, plan.precision), "feature {feature}");
        }
        // Trouble at slot 0; the env stays at slot 0 here, so the hold keeps it on the edge.
        let mut o = obs.clone();
        o[index::PROBE_FAILED_LAST] = 1.0;
        assert!(plan_of(&mut p, &env, &o).is_edge_only(h));
        assert!(plan_of(&mut p, &env, &obs).is_edge_only(h), "held for HOLD_S after the last trouble");
        p.reset(0);
        assert_eq!(plan_of(&mut p, &env, &obs), healthy);
    }
}
