//! The engine handle: starts the router shards on their own arbiters, owns the shared
//! dependencies of every actor, and offers typed async methods to the service (wake a
//! ticket, submit an admin command and wait for it, inspect, recover after a restart), so
//! HTTP routes never touch mailboxes.

use crate::ids::{EventId, OrgId, TicketId};
use crate::metrics::EngineMetrics;
use crate::org_actor::{OrgActor, Reload};
use crate::ports::{
    Clock, EngineStore, EventKind, OrgProvider, QueuedEvent, Responder, StoreFailure,
};
use crate::router::{Inspect, Route, Shard};
use crate::ticket::actor::ActorStatus;
use crate::ticket::state::ErrorNote;
use actix::prelude::*;
use chrono::{DateTime, Utc};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
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
}

/// Everything the actors share.
pub struct EngineDeps {
    pub store: Arc<dyn EngineStore>,
    pub orgs: OrgRegistry,
    pub responder: Arc<dyn Responder>,
    pub clock: Arc<dyn Clock>,
    pub config: EngineConfig,
    pub metrics: Arc<EngineMetrics>,
    pub waiters: Waiters,
    pub failures: FailureLog,
}

/// The org actors, started on demand on the engine's org arbiter.
pub struct OrgRegistry {
    provider: Arc<dyn OrgProvider>,
    arbiter: ArbiterHandle,
    actors: Mutex<HashMap<OrgId, Addr<OrgActor>>>,
}

impl OrgRegistry {
    /// The org's actor (started if needed).
    pub fn get(&self, org: OrgId) -> Addr<OrgActor> {
        let mut actors = self.actors.lock();
        actors
            .entry(org)
            .or_insert_with(|| {
                let provider = self.provider.clone();
                OrgActor::start_in_arbiter(&self.arbiter, move |_| OrgActor::new(org, provider))
            })
            .clone()
    }
}

/// Callers waiting for queued events to be applied (admin commands answer with the result).
#[derive(Default)]
pub struct Waiters(Mutex<HashMap<EventId, oneshot::Sender<()>>>);

impl Waiters {
    fn register(&self, id: EventId) -> oneshot::Receiver<()> {
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

    fn forget(&self, id: EventId) {
        self.0.lock().remove(&id);
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

/// The running engine.
#[derive(Clone)]
pub struct Engine {
    deps: Arc<EngineDeps>,
    shards: Arc<Vec<Addr<Shard>>>,
    arbiters: Arc<Mutex<Vec<Arbiter>>>,
}

/// What the engine was built from.
pub struct EngineParts {
    pub store: Arc<dyn EngineStore>,
    pub orgs: Arc<dyn OrgProvider>,
    pub responder: Arc<dyn Responder>,
    pub clock: Arc<dyn Clock>,
    pub config: EngineConfig,
}

impl Engine {
    /// Start the shards and the org arbiter. Must run inside an actix system.
    pub fn start(parts: EngineParts) -> Self {
        let org_arbiter = Arbiter::new();
        let deps = Arc::new(EngineDeps {
            store: parts.store,
            orgs: OrgRegistry {
                provider: parts.orgs,
                arbiter: org_arbiter.handle(),
                actors: Mutex::new(HashMap::new()),
            },
            responder: parts.responder,
            clock: parts.clock,
            metrics: Arc::new(EngineMetrics::default()),
            waiters: Waiters::default(),
            failures: FailureLog::default(),
            config: parts.config,
        });
        let mut arbiters = vec![org_arbiter];
        let shards = (0..deps.config.shards.max(1))
            .map(|_| {
                let arbiter = Arbiter::new();
                let deps = deps.clone();
                let shard = Shard::start_in_arbiter(&arbiter.handle(), move |_| Shard::new(deps));
                arbiters.push(arbiter);
                shard
            })
            .collect();
        Self {
            deps,
            shards: Arc::new(shards),
            arbiters: Arc::new(Mutex::new(arbiters)),
        }
    }

    /// Stop every actor and wait for the engine's threads to end, so that storage handles
    /// held by actors are released (a restart in the same process can then reopen it).
    pub async fn shutdown(&self) {
        let arbiters: Vec<Arbiter> = std::mem::take(&mut *self.arbiters.lock());
        let _ = tokio::task::spawn_blocking(move || {
            for arbiter in arbiters {
                arbiter.stop();
                let _ = arbiter.join();
            }
        })
        .await;
    }

    fn shard(&self, org: OrgId, ticket: TicketId) -> &Addr<Shard> {
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        (org, ticket).hash(&mut hasher);
        &self.shards[(hasher.finish() % self.shards.len() as u64) as usize]
    }

    /// The ticket has queued work.
    pub fn wake(&self, org_id: OrgId, ticket_id: TicketId) {
        self.shard(org_id, ticket_id)
            .do_send(Route { org_id, ticket_id });
    }

    /// Wake every ticket with queued events or pending writes (after a restart).
    pub fn recover(&self) -> Result<usize, StoreFailure> {
        let tickets = self.deps.store.tickets_with_work()?;
        for (org, ticket) in &tickets {
            self.wake(*org, *ticket);
        }
        Ok(tickets.len())
    }

    /// Queue an admin command durably, then wait (up to `wait`) until the ticket applied it.
    /// Returns whether it was applied in time.
    pub async fn submit(
        &self,
        org_id: OrgId,
        ticket_id: TicketId,
        kind: EventKind,
        wait: Duration,
    ) -> Result<bool, StoreFailure> {
        let event = self
            .deps
            .store
            .append_event(org_id, ticket_id, kind, self.deps.clock.now())?;
        let done = self.deps.waiters.register(event.id);
        self.deps.store.flush().await?;
        self.wake(org_id, ticket_id);
        let applied = tokio::time::timeout(wait, done).await.is_ok();
        if !applied {
            self.deps.waiters.forget(event.id);
        }
        Ok(applied)
    }

    /// The org's connection changed: republish its snapshot.
    pub fn org_changed(&self, org: OrgId) {
        self.deps.orgs.get(org).do_send(Reload);
    }

    /// The live actor of a ticket, if any.
    pub async fn actor_status(&self, org_id: OrgId, ticket_id: TicketId) -> Option<ActorStatus> {
        self.shard(org_id, ticket_id)
            .send(Inspect { org_id, ticket_id })
            .await
            .ok()
            .flatten()
    }

    /// The last crash of a ticket's pass.
    pub fn last_crash(&self, org: OrgId, ticket: TicketId) -> Option<ErrorNote> {
        self.deps.failures.get(org, ticket)
    }

    /// Engine counters and gauges.
    pub fn metrics(&self) -> &Arc<EngineMetrics> {
        &self.deps.metrics
    }

    /// The engine's clock.
    pub fn now(&self) -> DateTime<Utc> {
        self.deps.clock.now()
    }
}
