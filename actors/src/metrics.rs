//! Engine counters and gauges, shared by every actor and rendered by the service's
//! `/metrics` and inspection endpoints.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

/// Counters are monotonic; gauges go up and down.
#[derive(Default)]
pub struct EngineMetrics {
    /// Events read from the inbox and applied.
    pub events_processed: AtomicU64,
    /// Processing attempts that failed (the ticket was retried or restarted).
    pub events_failed: AtomicU64,
    /// Ticket actors alive now.
    pub live_actors: AtomicI64,
    /// Ticket actors parked after repeated failures.
    pub parked_tickets: AtomicI64,
    /// Organizations whose Freshdesk work is paused (key refused, domain not allowed).
    pub orgs_paused: AtomicI64,
    /// Ticket actor restarts.
    pub actor_restarts: AtomicU64,
    /// Passivations of idle actors.
    pub passivations: AtomicU64,
    /// Effects confirmed sent, by kind.
    effects_sent: parking_lot::Mutex<BTreeMap<&'static str, u64>>,
    /// Effects found already sent when reconciling after a crash or an ambiguous failure.
    pub effects_reconciled: AtomicU64,
    /// Responder decisions asked.
    pub responder_calls: AtomicU64,
}

impl EngineMetrics {
    /// Count one confirmed effect of `kind`.
    pub fn effect_sent(&self, kind: &'static str) {
        *self.effects_sent.lock().entry(kind).or_default() += 1;
    }

    /// Effects confirmed sent, by kind.
    pub fn effects_sent(&self) -> BTreeMap<&'static str, u64> {
        self.effects_sent.lock().clone()
    }

    /// A ticket actor started (the live-actor gauge).
    pub fn actor_started(&self) {
        self.live_actors.fetch_add(1, Ordering::Relaxed);
    }

    /// A ticket actor stopped for good.
    pub fn actor_stopped(&self) {
        self.live_actors.fetch_sub(1, Ordering::Relaxed);
    }

    /// A ticket was parked after repeated failures (the parked gauge).
    pub fn ticket_parked(&self) {
        self.parked_tickets.fetch_add(1, Ordering::Relaxed);
    }

    /// A parked ticket is tried again, or its actor stopped.
    pub fn ticket_unparked(&self) {
        self.parked_tickets.fetch_sub(1, Ordering::Relaxed);
    }

    /// Add one to a counter.
    pub fn inc(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Read a counter.
    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}
