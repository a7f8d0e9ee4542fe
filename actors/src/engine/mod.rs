//! The engine handle: starts the router shards on their own arbiters, owns the shared
//! dependencies of every actor, and offers typed async methods to the service (wake a
//! ticket, submit an admin command and wait for it, inspect, recover after a restart), so
//! HTTP routes never touch mailboxes.
//!
//! Only orgs whose work runs on this node (`Ownership`) are processed here. When the service
//! learns that orgs came to this node it starts their jobs (`org_connected`) and wakes their
//! tickets with work (`recover_where`); when they leave, `stop_orgs` stops their jobs and
//! returns once their writes in flight ended.

pub(crate) mod deps;
pub(crate) mod inbox;
pub(crate) mod router;

pub use deps::EngineConfig;
pub use inbox::Inbox;

use deps::{EngineDeps, FailureLog, OrgRegistry, ParkedTickets, Waiters};

use crate::engine::router::{Inspect, Shard};
use crate::ids::{EventId, OrgId, TicketId};
use crate::metrics::EngineMetrics;
use crate::org::actor::Reload;
use crate::org::budget::BudgetView;
use crate::org::gate::OrgPause;
use crate::org::jobs::{
    self, BackfillProgress, BackfillState, Ensure, ListCursor, OrgJobs, StopJobs, SweepProgress,
};
use crate::ports::{
    background_only, Clock, EngineStore, EventKind, OrgProvider, Ownership, Responder, StoreFailure,
};
use crate::ticket::actor::ActorStatus;
use crate::ticket::state::ErrorNote;
use actix::prelude::*;
use chrono::{DateTime, Utc};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// How often `Engine::submit` looks in the store whether another node applied its command.
const CONSUMED_POLL: Duration = Duration::from_millis(200);

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
    /// Which orgs' work runs on this node (`SoleNode`: all of them).
    pub ownership: Arc<dyn Ownership>,
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
                parts.ownership.clone(),
            ),
            responder: parts.responder,
            clock: parts.clock,
            metrics,
            ownership: parts.ownership,
            waiters: Waiters::default(),
            failures: FailureLog::default(),
            parked: ParkedTickets::default(),
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

    /// Wake every ticket with queued events or pending writes (after a restart) of the orgs
    /// whose work runs here; tickets with nothing but imports and sweeps queued wait behind
    /// the others.
    pub async fn recover(&self) -> Result<usize, StoreFailure> {
        self.recover_where(|_| true).await
    }

    /// `recover` for the orgs `which` selects (orgs that just came to this node; the periodic
    /// look for work whose wake-up was lost). Pending writes are reconciled as after a crash.
    pub async fn recover_where(
        &self,
        which: impl Fn(OrgId) -> bool,
    ) -> Result<usize, StoreFailure> {
        let ownership = &self.deps.ownership;
        let tickets: Vec<_> = self
            .deps
            .store
            .tickets_with_work()
            .await?
            .into_iter()
            .filter(|(org, _)| which(*org) && ownership.runs(*org))
            .collect();
        for (org, ticket) in &tickets {
            let events = self.deps.store.queued_events(*org, *ticket).await?;
            self.inbox.route(*org, *ticket, background_only(&events));
        }
        Ok(tickets.len())
    }

    /// The orgs `which` selects no longer run here: stop their jobs, and return once none of
    /// their writes to Freshdesk is in flight (their passes stop by themselves: see
    /// `run_pass`).
    pub async fn stop_orgs(&self, which: impl Fn(OrgId) -> bool) {
        let stopped: Vec<Addr<OrgJobs>> = {
            let mut jobs = self.jobs.lock();
            let orgs: Vec<OrgId> = jobs.keys().copied().filter(|o| which(*o)).collect();
            orgs.iter().filter_map(|org| jobs.remove(org)).collect()
        };
        for addr in stopped {
            addr.do_send(StopJobs);
        }
        for gate in self.deps.orgs.gates_where(which) {
            gate.writes_drained().await;
        }
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
        // The org's owner applies it: this node, whose pass wakes the waiter, or another one
        // (or this one loses the org meanwhile): then the event leaving the store says so.
        let applied = async {
            tokio::select! {
                _ = done => {}
                () = self.consumed(org_id, ticket_id, event.id) => {}
            }
        };
        Ok(tokio::time::timeout(wait, applied).await.is_ok())
    }

    /// Returns once the event is no longer queued (applied, or discarded for a disconnected
    /// org). A store failure is taken as "still queued" and asked again.
    async fn consumed(&self, org: OrgId, ticket: TicketId, event: crate::ids::EventId) {
        loop {
            tokio::time::sleep(CONSUMED_POLL).await;
            match self.deps.store.queued_events(org, ticket).await {
                Ok(events) if !events.iter().any(|e| e.id == event) => return,
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(org_id = %org, ticket_id = %ticket, error = %e, "cannot look whether a command was applied")
                }
            }
        }
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
    /// background jobs run, if its work runs here. On its first connect, the backfill is
    /// scheduled first.
    pub async fn org_connected(&self, org: OrgId, first_connect: bool) -> Result<(), StoreFailure> {
        if !self.deps.ownership.runs(org) {
            // The owner starts the jobs (and schedules a first backfill) when it learns of
            // the change: job state is written by the owner only.
            return Ok(());
        }
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

    /// The tickets parked on this node after repeated failures, ordered by org and ticket.
    pub fn parked_tickets(&self) -> Vec<(OrgId, TicketId)> {
        self.deps.parked.list()
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
