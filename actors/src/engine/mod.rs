//! The engine handle: starts the router shards on their own arbiters, owns the shared
//! dependencies of every actor, and offers typed async methods to the service (wake a
//! ticket, submit an admin command and wait for it, inspect, recover after a restart), so
//! HTTP routes never touch mailboxes.

pub(crate) mod deps;
pub(crate) mod inbox;
pub(crate) mod router;

pub use deps::EngineConfig;
pub use inbox::Inbox;

use deps::{EngineDeps, FailureLog, OrgRegistry, Waiters};

use crate::engine::router::{Inspect, Shard};
use crate::ids::{EventId, OrgId, TicketId};
use crate::metrics::EngineMetrics;
use crate::org::actor::Reload;
use crate::org::budget::BudgetView;
use crate::org::gate::OrgPause;
use crate::org::jobs::{
    self, BackfillProgress, BackfillState, Ensure, ListCursor, OrgJobs, SweepProgress,
};
use crate::ports::{
    background_only, Clock, EngineStore, EventKind, OrgProvider, Responder, StoreFailure,
};
use crate::ticket::actor::ActorStatus;
use crate::ticket::state::ErrorNote;
use actix::prelude::*;
use chrono::{DateTime, Utc};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// A waiter registered by `Engine::submit`, forgotten when dropped.
struct Registered<'a> {
    waiters: &'a Waiters,
    id: EventId,
}

impl Drop for Registered<'_> {
    fn drop(&mut self) {
        self.waiters.forget(self.id);
    }
}

/// The running engine.
#[derive(Clone)]
pub struct Engine {
    deps: Arc<EngineDeps>,
    inbox: Inbox,
    arbiters: Arc<Mutex<Vec<Arbiter>>>,
    jobs: Arc<Mutex<HashMap<OrgId, Addr<OrgJobs>>>>,
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
        let metrics = Arc::new(EngineMetrics::default());
        let deps = Arc::new(EngineDeps {
            store: parts.store,
            orgs: OrgRegistry::new(
                parts.orgs,
                org_arbiter.handle(),
                parts.config.rate_limit_share,
                metrics.clone(),
            ),
            responder: parts.responder,
            clock: parts.clock,
            metrics,
            waiters: Waiters::default(),
            failures: FailureLog::default(),
            config: parts.config,
        });
        let mut arbiters = vec![org_arbiter];
        let shards: Vec<_> = (0..deps.config.shards.max(1))
            .map(|_| {
                let arbiter = Arbiter::new();
                let deps = deps.clone();
                let shard = Shard::start_in_arbiter(&arbiter.handle(), move |_| Shard::new(deps));
                arbiters.push(arbiter);
                shard
            })
            .collect();
        Self {
            inbox: Inbox::new(deps.clone(), Arc::new(shards)),
            deps,
            arbiters: Arc::new(Mutex::new(arbiters)),
            jobs: Arc::new(Mutex::new(HashMap::new())),
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

    /// The ticket has queued live work.
    pub fn wake(&self, org_id: OrgId, ticket_id: TicketId) {
        self.inbox.wake(org_id, ticket_id);
    }

    /// The inbox: append events, make them durable, wake their tickets.
    pub fn inbox(&self) -> &Inbox {
        &self.inbox
    }

    /// Wake every ticket with queued events or pending writes (after a restart); tickets
    /// with nothing but imports and sweeps queued wait behind the others.
    pub async fn recover(&self) -> Result<usize, StoreFailure> {
        let tickets = self.deps.store.tickets_with_work().await?;
        for (org, ticket) in &tickets {
            let events = self.deps.store.queued_events(*org, *ticket).await?;
            self.inbox.route(*org, *ticket, background_only(&events));
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
        let event = self.inbox.append(org_id, ticket_id, kind).await?;
        let done = self.deps.waiters.register(event.id);
        // Forgets the waiter on every way out: a failed flush, a timeout, the caller going
        // away mid-wait. (Once applied, `notify` has removed it already.)
        let _registered = Registered {
            waiters: &self.deps.waiters,
            id: event.id,
        };
        self.inbox.flush().await?;
        self.wake(org_id, ticket_id);
        Ok(tokio::time::timeout(wait, done).await.is_ok())
    }

    /// Admin commands whose callers are waiting for them to be applied (inspection).
    pub fn waiting_submits(&self) -> usize {
        self.deps.waiters.len()
    }

    /// The org's stored connection changed (saved, key rotated, disconnected): mirror it in
    /// the org's gate at once (not through the org actor's mailbox, which may be busy),
    /// republish the snapshot, and after a save lift a pause and wake the tickets that waited
    /// for it. When the org is now disconnected this returns only once no write to Freshdesk
    /// is in flight: after it, nothing more is posted.
    pub async fn org_changed(&self, org: OrgId) -> Result<(), StoreFailure> {
        let gate = self.deps.orgs.gate(org);
        let resumed = self.deps.orgs.sync_gate(org, &gate).await?;
        // Callers waiting for a budget slot look at the gate again.
        self.deps.orgs.budget(org).notify();
        self.deps.orgs.get(org).do_send(Reload);
        if !gate.is_connected() {
            gate.writes_drained().await;
        }
        if resumed && gate.is_connected() {
            let waiting = self.deps.store.tickets_with_work().await?;
            for (_, ticket) in waiting.iter().filter(|(o, _)| *o == org) {
                self.wake(org, *ticket);
            }
        }
        Ok(())
    }

    /// Why the org's Freshdesk work is paused, if it is.
    pub fn org_pause(&self, org: OrgId) -> Option<OrgPause> {
        self.deps.orgs.gate(org).pause()
    }

    /// The org is connected (saved now, or found connected at startup): make sure its
    /// background jobs run. On its first connect, the backfill is scheduled first.
    pub async fn org_connected(&self, org: OrgId, first_connect: bool) -> Result<(), StoreFailure> {
        if first_connect && jobs::load_backfill(&self.deps, org).await?.is_none() {
            let window_start =
                self.now() - chrono::Duration::days(i64::from(self.deps.config.backfill_days));
            self.save_backfill(
                org,
                &BackfillProgress {
                    state: BackfillState::Pending,
                    window_start,
                    cursor: ListCursor {
                        updated_since: window_start,
                        page: 1,
                    },
                    pages_fetched: 0,
                    tickets_seen: 0,
                    tickets_queued: 0,
                    started_at: None,
                    finished_at: None,
                    last_error: None,
                },
            )
            .await;
        }
        let addr = {
            let mut jobs = self.jobs.lock();
            jobs.entry(org)
                .or_insert_with(|| {
                    let (deps, inbox) = (self.deps.clone(), self.inbox.clone());
                    OrgJobs::start_in_arbiter(&self.deps.orgs.arbiter, move |_| {
                        OrgJobs::new(org, deps, inbox)
                    })
                })
                .clone()
        };
        addr.do_send(Ensure);
        Ok(())
    }

    /// Append an event for each ticket, make them durable, wake the tickets.
    pub async fn queue(
        &self,
        org: OrgId,
        tickets: &[TicketId],
        kind: EventKind,
    ) -> Result<(), StoreFailure> {
        self.inbox.enqueue(org, tickets, kind).await
    }

    /// The org's backfill progress, if it ever had one (as the API shows it: a store failure
    /// is logged and shown as none).
    pub async fn backfill(&self, org: OrgId) -> Option<BackfillProgress> {
        jobs::backfill_or_none(&self.deps, org).await
    }

    /// Store backfill progress (a failure is logged; the job redoes the page).
    pub(crate) async fn save_backfill(&self, org: OrgId, progress: &BackfillProgress) {
        jobs::save_backfill(&self.deps, org, progress).await;
    }

    /// The org's sweep state (a store failure is logged and shown as the default state).
    pub async fn sweep(&self, org: OrgId) -> SweepProgress {
        jobs::sweep_or_default(&self.deps, org).await
    }

    /// The live actor of a ticket, if any.
    pub async fn actor_status(&self, org_id: OrgId, ticket_id: TicketId) -> Option<ActorStatus> {
        self.inbox
            .shard(org_id, ticket_id)
            .send(Inspect { org_id, ticket_id })
            .await
            .ok()
            .flatten()
    }

    /// The org's rate budget as it stands.
    pub fn budget(&self, org: OrgId) -> BudgetView {
        self.deps.orgs.budget(org).view()
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
    pub(crate) fn now(&self) -> DateTime<Utc> {
        self.deps.clock.now()
    }
}
