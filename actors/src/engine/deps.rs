//! What every actor shares: the engine's configuration, the org registry (each org's actor,
//! rate budget, pass pools and gate), the admin-command waiters, the crash log and the set of
//! parked tickets.

use crate::ids::{EventId, OrgId, TicketId};
use crate::metrics::EngineMetrics;
use crate::org::actor::OrgActor;
use crate::org::budget::RateBudget;
use crate::org::gate::{OrgGate, PauseReason};
use crate::ports::{
    Clock, ConnectionFailure, EngineStore, OrgProvider, Ownership, QueuedEvent, Responder,
    StoreFailure,
};
use crate::ticket::state::ErrorNote;
use actix::prelude::*;
use chrono::Utc;
use parking_lot::Mutex;
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::oneshot;

/// Engine tuning.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// AI answers per ticket before the turn-limit handoff.
    pub max_ai_answers: u32,
    /// Idle time before a ticket actor is passivated.
    pub idle_passivate: Duration,
    /// Consecutive failed passes before a ticket is parked.
    pub restart_budget: u32,
    /// How long a parked ticket waits before it is tried again.
    pub park_for: Duration,
    /// Router shards (each on its own arbiter thread).
    pub shards: usize,
    /// Share of the account's per-minute Freshdesk limit the engine may use.
    pub rate_limit_share: f64,
    /// Time between missed-webhook sweeps of a connected org.
    pub reconcile_interval: Duration,
    /// How far back the first-connect backfill imports.
    pub backfill_days: u32,
    /// Ticket actors a router shard keeps alive at most (bounds memory under bursts).
    pub max_live_actors_per_shard: usize,
    /// How long after an attempt to post started Freshdesk may still apply it (request timeout
    /// plus a margin). A post whose outcome is unknown is not sent again before then.
    pub write_settle: Duration,
}

/// Everything the actors share.
pub struct EngineDeps {
    pub store: Arc<dyn EngineStore>,
    pub orgs: OrgRegistry,
    pub responder: Arc<dyn Responder>,
    pub clock: Arc<dyn Clock>,
    pub config: EngineConfig,
    pub metrics: Arc<EngineMetrics>,
    /// Which orgs' work runs on this node.
    pub ownership: Arc<dyn Ownership>,
    pub waiters: Waiters,
    pub failures: FailureLog,
    pub parked: ParkedTickets,
}

impl EngineDeps {
    /// The ticket was parked after repeated failures: count it and remember which it is.
    pub(crate) fn ticket_parked(&self, org: OrgId, ticket: TicketId) {
        self.parked.0.lock().insert((org, ticket));
        self.metrics.ticket_parked();
    }

    /// The parked ticket is tried again, or its actor stopped.
    pub(crate) fn ticket_unparked(&self, org: OrgId, ticket: TicketId) {
        self.parked.0.lock().remove(&(org, ticket));
        self.metrics.ticket_unparked();
    }
}

/// How many ticket passes of one org may run at once, by kind of work. Per org, so that one
/// org's backlog waiting on its rate budget never holds up another org's tickets.
pub struct PassPools {
    /// Live work: webhooks, admin commands, pending writes.
    pub live: tokio::sync::Semaphore,
    /// Background work: imports and sweeps.
    pub background: tokio::sync::Semaphore,
}

impl Default for PassPools {
    fn default() -> Self {
        Self {
            live: tokio::sync::Semaphore::new(LIVE_PASSES),
            background: tokio::sync::Semaphore::new(BACKGROUND_PASSES),
        }
    }
}

/// Live passes of one org that may run at once.
const LIVE_PASSES: usize = 256;
/// Background passes of one org that may run at once.
const BACKGROUND_PASSES: usize = 32;

/// An org's actor, its rate budget, its pass pools and its gate.
type OrgEntry = (
    Addr<OrgActor>,
    Arc<RateBudget>,
    Arc<PassPools>,
    Arc<OrgGate>,
);

/// The org actors, started on demand on the engine's org arbiter.
pub struct OrgRegistry {
    provider: Arc<dyn OrgProvider>,
    pub(crate) arbiter: ArbiterHandle,
    rate_limit_share: f64,
    metrics: Arc<EngineMetrics>,
    ownership: Arc<dyn Ownership>,
    actors: Mutex<HashMap<OrgId, OrgEntry>>,
}

/// What the store says of an org's connection: connected, and why its work cannot run.
struct StoredState {
    connected: bool,
    blocked: Option<(PauseReason, String)>,
}

impl OrgRegistry {
    /// No org started yet; org actors run on `arbiter`.
    pub(crate) fn new(
        provider: Arc<dyn OrgProvider>,
        arbiter: ArbiterHandle,
        rate_limit_share: f64,
        metrics: Arc<EngineMetrics>,
        ownership: Arc<dyn Ownership>,
    ) -> Self {
        Self {
            provider,
            arbiter,
            rate_limit_share,
            metrics,
            ownership,
            actors: Mutex::new(HashMap::new()),
        }
    }

    /// The org's actor (started if needed).
    pub fn get(&self, org: OrgId) -> Addr<OrgActor> {
        self.entry(org).0
    }

    /// The org's rate budget.
    pub fn budget(&self, org: OrgId) -> Arc<RateBudget> {
        self.entry(org).1
    }

    /// The org's pass pools.
    pub fn passes(&self, org: OrgId) -> Arc<PassPools> {
        self.entry(org).2
    }

    /// The org's gate: connected, paused, writes in flight.
    pub fn gate(&self, org: OrgId) -> Arc<OrgGate> {
        self.entry(org).3
    }

    /// The gates of the orgs started so far that `which` selects.
    pub(crate) fn gates_where(&self, which: impl Fn(OrgId) -> bool) -> Vec<Arc<OrgGate>> {
        self.actors
            .lock()
            .iter()
            .filter(|(org, _)| which(**org))
            .map(|(_, entry)| entry.3.clone())
            .collect()
    }

    /// Whether the store says the org is connected (the source of truth the gate mirrors).
    pub async fn stored_connected(&self, org: OrgId) -> Result<bool, StoreFailure> {
        Ok(StoredState::read(self.provider.as_ref(), org)
            .await?
            .connected)
    }

    /// Mirror the stored connection in the org's gate. Returns whether a pause was lifted.
    pub(crate) async fn sync_gate(&self, org: OrgId, gate: &OrgGate) -> Result<bool, StoreFailure> {
        mirror_in_gate(self.provider.as_ref(), org, gate).await
    }

    fn entry(&self, org: OrgId) -> OrgEntry {
        let mut actors = self.actors.lock();
        actors
            .entry(org)
            .or_insert_with(|| {
                // Closed until the store's connection is mirrored in it (at once, on the org
                // arbiter); a pass that finds it closed asks the store itself (see run_pass).
                let gate = Arc::new(OrgGate::new(
                    org,
                    false,
                    self.metrics.clone(),
                    self.ownership.clone(),
                ));
                let (provider, first_sync) = (self.provider.clone(), gate.clone());
                self.arbiter.spawn(async move {
                    if let Err(e) = mirror_in_gate(provider.as_ref(), org, &first_sync).await {
                        tracing::error!(org_id = %org, error = %e, "cannot read the org's connection");
                    }
                });
                let provider = self.provider.clone();
                let budget = Arc::new(RateBudget::new(self.rate_limit_share));
                let (for_actor, gate_for_actor) = (budget.clone(), gate.clone());
                let addr = OrgActor::start_in_arbiter(&self.arbiter, move |_| {
                    OrgActor::new(org, provider, for_actor, gate_for_actor)
                });
                (addr, budget, Arc::new(PassPools::default()), gate)
            })
            .clone()
    }
}

impl StoredState {
    async fn read(provider: &dyn OrgProvider, org: OrgId) -> Result<Self, StoreFailure> {
        Ok(match provider.connection(org).await {
            Ok(connection) => Self {
                connected: connection.is_some_and(|c| c.connected),
                blocked: None,
            },
            Err(ConnectionFailure::DomainNotAllowed(why)) => Self {
                connected: true,
                blocked: Some((PauseReason::DomainNotAllowed, why)),
            },
            Err(ConnectionFailure::Store(e)) => return Err(e),
        })
    }
}

/// Read the stored connection and mirror it in the gate, one sync at a time per gate so a
/// slower, older read never overwrites a newer one. Returns whether a pause was lifted.
async fn mirror_in_gate(
    provider: &dyn OrgProvider,
    org: OrgId,
    gate: &OrgGate,
) -> Result<bool, StoreFailure> {
    let _one_at_a_time = gate.syncing().await;
    let stored = StoredState::read(provider, org).await?;
    gate.set_connected(stored.connected);
    Ok(match stored.blocked {
        Some((reason, why)) => {
            gate.set_pause(reason, why);
            false
        }
        None => gate.resume(),
    })
}

/// Callers waiting for queued events to be applied (admin commands answer with the result).
#[derive(Default)]
pub struct Waiters(Mutex<HashMap<EventId, oneshot::Sender<()>>>);

impl Waiters {
    pub(crate) fn register(&self, id: EventId) -> oneshot::Receiver<()> {
        let (tx, rx) = oneshot::channel();
        self.0.lock().insert(id, tx);
        rx
    }

    /// Wake whoever waits on these events.
    pub fn notify(&self, applied: &[QueuedEvent]) {
        if applied.is_empty() {
            return;
        }
        let mut waiting = self.0.lock();
        for event in applied {
            if let Some(tx) = waiting.remove(&event.id) {
                let _ = tx.send(());
            }
        }
    }

    pub(crate) fn forget(&self, id: EventId) {
        self.0.lock().remove(&id);
    }

    pub(crate) fn len(&self) -> usize {
        self.0.lock().len()
    }
}

/// The last failure of tickets whose pass crashed (a panic leaves no trace in the store).
#[derive(Default)]
pub struct FailureLog(Mutex<HashMap<(OrgId, TicketId), ErrorNote>>);

/// Failures remembered at most (the oldest are not evicted; new ones stop being recorded).
const FAILURE_LOG_CAP: usize = 10_000;

impl FailureLog {
    /// Remember a failure.
    pub fn record(&self, org: OrgId, ticket: TicketId, why: &str) {
        let mut log = self.0.lock();
        if log.len() < FAILURE_LOG_CAP || log.contains_key(&(org, ticket)) {
            log.insert(
                (org, ticket),
                ErrorNote {
                    at: Utc::now(),
                    message: why.to_string(),
                },
            );
        }
    }

    /// The ticket's last crash, if any.
    pub fn get(&self, org: OrgId, ticket: TicketId) -> Option<ErrorNote> {
        self.0.lock().get(&(org, ticket)).cloned()
    }
}

/// The tickets parked on this node (the ones the parked gauge counts).
#[derive(Default)]
pub struct ParkedTickets(Mutex<BTreeSet<(OrgId, TicketId)>>);

impl ParkedTickets {
    /// The parked tickets, ordered by org and ticket.
    pub fn list(&self) -> Vec<(OrgId, TicketId)> {
        self.0.lock().iter().copied().collect()
    }
}
