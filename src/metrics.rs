//! Service-level counters (webhook intake, Freshdesk calls) and the Prometheus rendering of
//! them together with the engine's counters.

use crate::freshdesk::{CallObserver, CallOutcome, CallRecord};
use parking_lot::Mutex;
use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use ticketsync_actors::metrics::EngineMetrics;

/// Counters owned by the service.
#[derive(Default)]
pub struct ServiceMetrics {
    /// Webhooks acknowledged with 202.
    pub webhooks_accepted: AtomicU64,
    /// Webhooks refused, by error code.
    webhooks_rejected: Mutex<BTreeMap<&'static str, u64>>,
    /// Freshdesk calls by endpoint and outcome.
    freshdesk_calls: Mutex<BTreeMap<(&'static str, String), u64>>,
}

impl ServiceMetrics {
    /// Count a refused webhook.
    pub fn webhook_rejected(&self, code: &'static str) {
        *self.webhooks_rejected.lock().entry(code).or_default() += 1;
    }

    /// Freshdesk calls so far by (endpoint, outcome).
    pub fn freshdesk_calls(&self) -> BTreeMap<(&'static str, String), u64> {
        self.freshdesk_calls.lock().clone()
    }
}

impl CallObserver for ServiceMetrics {
    fn observe(&self, call: &CallRecord) {
        let outcome = match call.outcome {
            CallOutcome::Status(s) => s.to_string(),
            CallOutcome::Timeout => "timeout".into(),
            CallOutcome::Unreachable => "unreachable".into(),
        };
        *self
            .freshdesk_calls
            .lock()
            .entry((call.endpoint, outcome))
            .or_default() += 1;
    }
}

/// Gauges read from storage at scrape time (kept counts, not scans).
pub struct StorageGauges {
    pub inbox_depth: u64,
    pub tracked_tickets: u64,
    pub pending_effect_tickets: u64,
    pub storage_bytes: u64,
}

/// The Prometheus text exposition of every metric.
pub fn render(service: &ServiceMetrics, engine: &EngineMetrics, storage: &StorageGauges) -> String {
    let mut out = String::new();
    let mut metric = |name: &str, kind: &str, help: &str, samples: Vec<(String, u64)>| {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} {kind}");
        for (labels, value) in samples {
            let _ = writeln!(out, "{name}{labels} {value}");
        }
    };
    let plain = |v: u64| vec![(String::new(), v)];
    let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
    metric(
        "ticketsync_webhooks_accepted_total",
        "counter",
        "Webhooks acknowledged durably (202).",
        plain(load(&service.webhooks_accepted)),
    );
    metric(
        "ticketsync_webhooks_rejected_total",
        "counter",
        "Webhooks refused, by error code.",
        service
            .webhooks_rejected
            .lock()
            .iter()
            .map(|(code, n)| (format!("{{code=\"{code}\"}}"), *n))
            .collect(),
    );
    metric(
        "ticketsync_events_processed_total",
        "counter",
        "Queued events applied by ticket actors.",
        plain(load(&engine.events_processed)),
    );
    metric(
        "ticketsync_events_failed_total",
        "counter",
        "Ticket passes that failed and were retried.",
        plain(load(&engine.events_failed)),
    );
    metric(
        "ticketsync_effects_sent_total",
        "counter",
        "Writes to Freshdesk confirmed sent, by kind.",
        engine
            .effects_sent()
            .iter()
            .map(|(kind, n)| (format!("{{kind=\"{kind}\"}}"), *n))
            .collect(),
    );
    metric(
        "ticketsync_effects_reconciled_total",
        "counter",
        "Pending writes found already sent (not sent again).",
        plain(load(&engine.effects_reconciled)),
    );
    metric(
        "ticketsync_responder_calls_total",
        "counter",
        "Decisions asked of the responder.",
        plain(load(&engine.responder_calls)),
    );
    metric(
        "ticketsync_actor_restarts_total",
        "counter",
        "Ticket actor restarts after a failure.",
        plain(load(&engine.actor_restarts)),
    );
    metric(
        "ticketsync_passivations_total",
        "counter",
        "Idle ticket actors passivated.",
        plain(load(&engine.passivations)),
    );
    metric(
        "ticketsync_freshdesk_calls_total",
        "counter",
        "Freshdesk API calls by endpoint and status.",
        service
            .freshdesk_calls()
            .iter()
            .map(|((endpoint, status), n)| {
                (
                    format!("{{endpoint=\"{endpoint}\",status=\"{status}\"}}"),
                    *n,
                )
            })
            .collect(),
    );
    let gauge = |v: i64| plain(v.max(0) as u64);
    metric(
        "ticketsync_live_actors",
        "gauge",
        "Ticket actors alive.",
        gauge(engine.live_actors.load(Ordering::Relaxed)),
    );
    metric(
        "ticketsync_parked_tickets",
        "gauge",
        "Tickets parked after repeated failures.",
        gauge(engine.parked_tickets.load(Ordering::Relaxed)),
    );
    metric(
        "ticketsync_orgs_paused",
        "gauge",
        "Organizations whose Freshdesk work is paused (API key refused, domain not allowed).",
        gauge(engine.orgs_paused.load(Ordering::Relaxed)),
    );
    metric(
        "ticketsync_inbox_depth",
        "gauge",
        "Events queued in the durable inbox.",
        plain(storage.inbox_depth),
    );
    metric(
        "ticketsync_tracked_tickets",
        "gauge",
        "Tickets with a session.",
        plain(storage.tracked_tickets),
    );
    metric(
        "ticketsync_pending_effect_tickets",
        "gauge",
        "Tickets with writes not yet confirmed.",
        plain(storage.pending_effect_tickets),
    );
    metric(
        "ticketsync_storage_bytes",
        "gauge",
        "Size of the sled database on disk.",
        plain(storage.storage_bytes),
    );
    out
}
