//! `failover[:HOLD_S]`: the rule a practitioner writes first. Run the best static plan while the
//! link and the cloud look healthy; switch to edge-only while the modem reports no service, the
//! last keep-alive probe's crossing failed or the cloud API rejected it (429/529), and stay there
//! `HOLD_S` seconds after the last sign of trouble (default 10 s) so that a flapping link does not
//! make it thrash. It reads only the observation (system-model §9): a causal baseline that a
//! learned policy must beat.

use super::layer_wise::{Objective, StaticBest};
use splitwise_env::observation::{decode, index};
use splitwise_env::policy::{Decision, DecisionContext, EdgeOnly, Policy};
use splitwise_env::scenario::Scenario;

/// Default hold time after the last sign of trouble (s).
pub const DEFAULT_HOLD_S: f64 = 10.0;

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
