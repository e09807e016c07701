//! The exogenous conditions of every slot: link (rate, SNR, fading, latency, packet loss),
//! Gilbert–Elliott link state, shared-cloud load, edge availability and the arrival rate.
//!
//! None of them depends on actions: each process draws from its own stream of the episode seed
//! (system-model §1), so two policies on the same seed face identical conditions. Slots are
//! generated lazily *ahead* of the current one because a request started now may run for many
//! slots and must see the conditions of each slot it spans; slots before the current one are
//! discarded, so the buffer stays as long as the longest request in flight.

use crate::background::EdgeAvailability;
use crate::failure::GeState;
use crate::link::{LinkSlot, LinkState, LinkStreams, RateState};
use crate::regime::RegimeState;
use crate::rng::{Stream, StreamRng, derive_seed, stream_rng};
use crate::scenario::Scenario;
use crate::workload::ArrivalState;
use rand::RngExt;
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;

/// One slot's exogenous conditions (the oracle state of that slot).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct ExoSlot {
    pub link: LinkSlot,
    pub ge: GeState,
    /// Probability that one crossing fails in this slot (outage and Gilbert–Elliott).
    pub crossing_failure_probability: f64,
    pub cloud_load: f64,
    /// Probability that the cloud API rejects an admission attempt in this slot (HTTP 429/529).
    pub cloud_reject_probability: f64,
    pub edge: EdgeAvailability,
    pub arrival_rate_per_s: f64,
    /// The device's keep-alive probe at the end of the slot (one small crossing and a 1-token
    /// request to the cloud API, e.g. a health check): whether its crossing failed (drawn with
    /// the slot's crossing failure probability) and whether the API rejected it (drawn with the
    /// slot's rejection probability). What a device measures about its link and the cloud when
    /// it sends no work there; action-independent.
    pub probe_failed: bool,
    pub probe_rejected: bool,
    /// The hidden regimes behind the slot's values: the index of the cloud-load level (into
    /// `cloud_load.levels`) and of the link-rate regime (into the rate process's `regimes`; 0
    /// for a rate without regimes). What an oracle keys on: a jittered load or rate can sit
    /// nearer another regime's value than its own. Absent from states saved before they were
    /// recorded (read as 0).
    #[serde(default)]
    pub cloud_level: usize,
    #[serde(default)]
    pub rate_regime: usize,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct ExoStreams {
    link: LinkStreams,
    ge: StreamRng,
    cloud: StreamRng,
    edge: StreamRng,
    arrival_rate: StreamRng,
    probe: StreamRng,
}

impl ExoStreams {
    fn new(seed: u64) -> Self {
        Self {
            link: LinkStreams::new(seed),
            ge: stream_rng(seed, Stream::GilbertElliott),
            cloud: stream_rng(seed, Stream::CloudLoad),
            edge: stream_rng(seed, Stream::EdgeLoad),
            arrival_rate: stream_rng(seed, Stream::ArrivalRate),
            probe: stream_rng(seed, Stream::Probe),
        }
    }
}

/// Process states plus the generated-but-not-yet-discarded slots.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ExoState {
    streams: ExoStreams,
    link: LinkState,
    ge: RegimeState,
    cloud: RegimeState,
    edge: RegimeState,
    arrival: ArrivalState,
    /// Absolute slot index of `buffer[0]`.
    first: u64,
    buffer: VecDeque<ExoSlot>,
    /// The episode seed of a replay ([`Self::replayed`]); 0 otherwise. Not serialised.
    #[serde(skip)]
    seed_check: u64,
}

impl ExoState {
    /// Slot 0 of episode `seed`: every process from its stationary law.
    pub fn new(s: &Scenario, seed: u64) -> Self {
        let slot_s = s.config.serving.slot_s;
        let mut streams = ExoStreams::new(seed);
        let link = s.link.initial_state(slot_s, &mut streams.link.rngs());
        let ge = s.ge.as_ref().map_or_else(RegimeState::default, |g| g.initial_state(&mut streams.ge));
        let mut cloud = s.cloud_load.initial_state(&mut streams.cloud);
        let mut edge = s.edge_load.initial_state(&mut streams.edge);
        let arrival = s.arrivals.initial_state(&mut streams.arrival_rate);
        // The background processes report a slot's level when advanced; advancing by 0 s reads
        // the initial level without moving the chains.
        let cloud_load = s.cloud_load.advance(&mut cloud, 0.0, &mut streams.cloud);
        let edge_avail = s.edge_load.advance(&mut edge, 0.0, &mut streams.edge);
        let mut state = Self {
            streams,
            link,
            ge,
            cloud,
            edge,
            arrival,
            first: 0,
            buffer: VecDeque::with_capacity(64),
            seed_check: 0,
        };
        let slot0 = state.realise(s, cloud_load, edge_avail, 0.0);
        state.buffer.push_back(slot0);
        state
    }

    fn realise(&mut self, s: &Scenario, cloud_load: f64, edge: EdgeAvailability, t_s: f64) -> ExoSlot {
        let ge = s.ge.as_ref().map_or(GeState::Good, |g| g.state(&self.ge));
        let crossing_failure_probability =
            s.config.failures.crossing_failure_probability(self.link.slot.snr_db, s.link.nakagami_m(), ge);
        let cloud_reject_probability = s.cloud_load.reject_probability(&self.cloud);
        let u: f64 = self.streams.probe.random();
        let v: f64 = self.streams.probe.random();
        ExoSlot {
            link: self.link.slot,
            ge,
            crossing_failure_probability,
            cloud_load,
            cloud_reject_probability,
            edge,
            arrival_rate_per_s: s.arrivals.rate_per_s(&self.arrival, t_s),
            probe_failed: u < crossing_failure_probability,
            probe_rejected: v < cloud_reject_probability,
            cloud_level: self.cloud.regime,
            rate_regime: match self.link.rate {
                RateState::Regimes { regime, .. } => regime.regime,
                RateState::Stateless | RateState::Trace { .. } => 0,
            },
        }
    }

    /// The conditions of absolute slot `index` (generating slots up to it if needed).
    pub fn get(&mut self, s: &Scenario, index: u64) -> ExoSlot {
        assert!(index >= self.first, "slot {index} was discarded (first kept: {})", self.first);
        let slot_s = s.config.serving.slot_s;
        while self.first + self.buffer.len() as u64 <= index {
            let next = self.first + self.buffer.len() as u64;
            s.link.advance(&mut self.link, slot_s, &mut self.streams.link.rngs());
            if let Some(g) = &s.ge {
                g.advance(&mut self.ge, slot_s, &mut self.streams.ge);
            }
            let cloud_load = s.cloud_load.advance(&mut self.cloud, slot_s, &mut self.streams.cloud);
            let edge = s.edge_load.advance(&mut self.edge, slot_s, &mut self.streams.edge);
            s.arrivals.advance(&mut self.arrival, slot_s, &mut self.streams.arrival_rate);
            let slot = self.realise(s, cloud_load, edge, next as f64 * slot_s);
            self.buffer.push_back(slot);
        }
        self.buffer[(index - self.first) as usize]
    }

    /// The episode's own process replayed to the end of slot `through`, for
    /// [`Self::resampled`]. The process states at a slot are not kept per slot (that would cost
    /// every step), so they are rebuilt by replaying the episode's streams: `replay` is a
    /// previous result for the same episode (`seed`) at or before `through`, advanced from where
    /// it is (O(1) per slot when called slot after slot), or a fresh replay from slot 0.
    pub fn replayed(s: &Scenario, seed: u64, through: u64, replay: Option<ExoState>) -> ExoState {
        let mut r = match replay {
            Some(r) if r.seed_check == seed && r.last_generated() <= through => r,
            _ => {
                let mut r = ExoState::new(s, seed);
                r.seed_check = seed;
                r
            }
        };
        r.get(s, through);
        r.discard_before(through);
        r
    }

    /// Index of the last generated slot.
    fn last_generated(&self) -> u64 {
        (self.first + self.buffer.len() as u64).saturating_sub(1)
    }

    /// Another future after slot `through` of episode `seed`: the same slots up to `through`
    /// (those this state still holds, and `through` itself), the same process states at the end of slot `through`
    /// (taken from `replay`, [`Self::replayed`] at `through`), and from then on fresh draws from
    /// streams of `derive_seed(seed, salt)`, with every regime's residual dwell redrawn
    /// (exponential dwells: the redrawn residual has the law of the true one, so the result is a
    /// sample of the future *given the state at `through`*). Trace-driven rates stay the
    /// trace's. What a model-predictive look-ahead samples from.
    pub fn resampled(&self, s: &Scenario, seed: u64, replay: &ExoState, salt: u64) -> ExoState {
        let through = replay.last_generated();
        let mut fresh = replay.clone();
        // The slots this state keeps before `through` (the replay kept only `through`).
        let mut buffer: VecDeque<ExoSlot> = (self.first..through).filter_map(|i| self.peek(i)).collect();
        let first = through - buffer.len() as u64;
        buffer.extend(fresh.buffer.iter().copied());
        debug_assert!(
            self.peek(through).is_none_or(|x| Some(x) == fresh.peek(through)),
            "the replay must reproduce the episode's slots"
        );
        fresh.buffer = buffer;
        fresh.first = first;
        let mut streams = ExoStreams::new(derive_seed(seed, salt));
        s.link.redraw_residual(&mut fresh.link, &mut streams.link.rngs());
        if let Some(g) = &s.ge {
            g.redraw_residual(&mut fresh.ge, &mut streams.ge);
        }
        s.cloud_load.redraw_residual(&mut fresh.cloud, &mut streams.cloud);
        s.edge_load.redraw_residual(&mut fresh.edge, &mut streams.edge);
        s.arrivals.redraw_residual(&mut fresh.arrival, &mut streams.arrival_rate);
        fresh.streams = streams;
        fresh.seed_check = 0;
        fresh
    }

    /// The conditions of slot `index` if it has been generated and not discarded.
    pub fn peek(&self, index: u64) -> Option<ExoSlot> {
        index.checked_sub(self.first).and_then(|i| self.buffer.get(i as usize)).copied()
    }

    /// Drops slots before `index` (they can no longer be asked for).
    pub fn discard_before(&mut self, index: u64) {
        while self.first < index && !self.buffer.is_empty() {
            self.buffer.pop_front();
            self.first += 1;
        }
    }
}
