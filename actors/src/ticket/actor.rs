//! `TicketActor`: one per live tracked ticket, run under an actix `Supervisor` by its router
//! shard. It owns the ticket's cached record and runs processing passes strictly one at a
//! time: a `Wake` that arrives during a pass only marks the ticket dirty, and the pass is
//! re-run when the current one ends, so events never interleave.
//!
//! Failures (a store error, a panic inside a pass) stop the actor; the supervisor restarts
//! it, `restarting` drops the cached record so it is reloaded from the store, and the next
//! pass reconciles pending writes. After `restart_budget` consecutive failures the ticket is
//! parked for `park_for`, visible in inspection, and other tickets are unaffected.
//! Idle actors ask their shard to passivate them (see `router`).

use super::pass::{run_pass, PassOutcome};
use super::state::TicketRecord;
use crate::engine::deps::EngineDeps;
use crate::engine::router::{Passivate, Quiet, Shard, Stopped};
use crate::ids::{OrgId, TicketId};
use crate::metrics::EngineMetrics;
use actix::prelude::*;
use futures::FutureExt;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Notify;

/// How long a ticket waits after writing to Freshdesk before it processes new events.
const ECHO_COALESCE: Duration = Duration::from_millis(750);

/// There is work for the ticket in the store.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Wake;

/// Stop now (sent by the shard once it stopped routing to this actor).
#[derive(Message)]
#[rtype(result = "()")]
pub struct Stop;

/// What the actor can tell about itself.
#[derive(Message)]
#[rtype(result = "ActorStatus")]
pub struct Status;

/// The live actor's view of itself, for inspection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ActorStatus {
    pub restarts: u32,
    pub parked: bool,
    pub busy: bool,
}

/// One tracked ticket.
pub struct TicketActor {
    org_id: OrgId,
    ticket_id: TicketId,
    deps: Arc<EngineDeps>,
    shard: Addr<Shard>,
    record: Option<TicketRecord>,
    busy: bool,
    dirty: bool,
    /// Consecutive failed passes (survives supervisor restarts: same struct).
    restarts: u32,
    parked: bool,
    /// Pending writes must be reconciled before the next send (after a load or restart).
    reconcile: bool,
    last_active: Instant,
    retry_timer: Option<SpawnHandle>,
    /// Restarts over this actor's life, for inspection.
    total_restarts: u32,
    /// The shard asked this incarnation to stop (passivation).
    stopping: bool,
    /// A supervisor restart after a passivation stop: it must never process anything.
    zombie: bool,
    /// Counted in the live-actor gauge.
    counted: bool,
    /// Tells a running pass that more work arrived (it may be waiting for a pass slot).
    woken: Arc<Notify>,
}

impl TicketActor {
    /// A new incarnation; it loads its record on the first pass.
    pub fn new(
        org_id: OrgId,
        ticket_id: TicketId,
        deps: Arc<EngineDeps>,
        shard: Addr<Shard>,
    ) -> Self {
        Self {
            org_id,
            ticket_id,
            deps,
            shard,
            record: None,
            busy: false,
            dirty: true,
            restarts: 0,
            parked: false,
            reconcile: true,
            last_active: Instant::now(),
            retry_timer: None,
            total_restarts: 0,
            stopping: false,
            zombie: false,
            counted: false,
            woken: Arc::new(Notify::new()),
        }
    }

    /// Start a pass unless one is running (then the dirty flag re-runs it afterwards).
    fn kick(&mut self, ctx: &mut Context<Self>) {
        // A scheduled pass (retry backoff or echo coalescing) takes the new work with it.
        let scheduled = self.retry_timer.is_some();
        if self.busy || self.parked || !self.dirty || self.stopping || self.zombie || scheduled {
            return;
        }
        self.busy = true;
        self.dirty = false;
        self.last_active = Instant::now();
        let pass = run_pass(
            self.deps.clone(),
            self.org_id,
            self.ticket_id,
            self.record.take(),
            std::mem::take(&mut self.reconcile),
            self.woken.clone(),
        );
        let span =
            tracing::info_span!("ticket", org_id = %self.org_id, ticket_id = %self.ticket_id);
        let pass = tracing::Instrument::instrument(AssertUnwindSafe(pass).catch_unwind(), span);
        ctx.spawn(pass.into_actor(self).map(|result, act, ctx| {
            act.busy = false;
            act.last_active = Instant::now();
            match result {
                Ok(Ok(outcome)) => act.finish(outcome, ctx),
                Ok(Err(error)) => act.fail(&error.to_string(), ctx),
                Err(panic) => act.fail(&panic_message(&panic), ctx),
            }
        }));
    }

    fn finish(&mut self, outcome: PassOutcome, ctx: &mut Context<Self>) {
        self.restarts = 0;
        self.record = outcome.record;
        self.deps.waiters.notify(&outcome.applied);
        if self.stopping {
            // Work left for later (a retry, a post waiting to settle) goes to the next
            // incarnation: `stopped` reports it and the shard starts one.
            self.dirty |= outcome.retry_in.is_some();
            ctx.stop();
            return;
        }
        if outcome.wrote && self.dirty && outcome.retry_in.is_none() {
            // Our writes fire the automation rules back at us: wait a moment so those echoes
            // (and anything else arriving meanwhile) coalesce into one re-read.
            self.retry_timer = Some(ctx.run_later(ECHO_COALESCE, |act, ctx| {
                act.retry_timer = None;
                act.kick(ctx);
            }));
            return;
        }
        if let Some(delay) = outcome.retry_in {
            self.retry_timer = Some(ctx.run_later(delay, |act, ctx| {
                act.retry_timer = None;
                act.dirty = true;
                act.kick(ctx);
            }));
        }
        self.kick(ctx);
        let nothing_pending = self
            .record
            .as_ref()
            .is_none_or(|r| r.pending_effects.is_empty());
        if !self.busy && !self.dirty && self.retry_timer.is_none() && nothing_pending {
            self.shard.do_send(Quiet {
                org_id: self.org_id,
                ticket_id: self.ticket_id,
            });
        }
    }

    fn fail(&mut self, why: &str, ctx: &mut Context<Self>) {
        EngineMetrics::inc(&self.deps.metrics.events_failed);
        tracing::error!(org_id = %self.org_id, ticket_id = %self.ticket_id, error = why, restarts = self.restarts, "ticket pass failed; restarting the actor");
        self.deps.failures.record(self.org_id, self.ticket_id, why);
        // The pass's events stay queued: whoever runs next (the restarted actor, or a new
        // incarnation if the shard is passivating this one) must run it again.
        self.dirty = true;
        ctx.stop();
    }

    /// Queued events, a scheduled retry or pending writes: the ticket must run again.
    fn has_work(&self) -> bool {
        self.dirty
            || self.retry_timer.is_some()
            || self
                .record
                .as_ref()
                .is_some_and(|r| !r.pending_effects.is_empty())
    }
}

fn panic_message(panic: &Box<dyn std::any::Any + Send>) -> String {
    let text = panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into());
    format!("panic: {text}")
}

impl Actor for TicketActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        if self.zombie {
            // Inert: it never processes and stops by itself once nothing addresses it
            // (stopping it here would only make the supervisor restart it again).
            return;
        }
        if !self.counted {
            self.counted = true;
            self.deps
                .metrics
                .live_actors
                .fetch_add(1, Ordering::Relaxed);
        }
        let idle = self.deps.config.idle_passivate;
        let every = (idle / 4).clamp(Duration::from_millis(50), Duration::from_secs(30));
        ctx.run_interval(every, move |act, _| {
            let idle_enough = act.last_active.elapsed() >= idle;
            let quiet = !act.busy
                && !act.dirty
                && !act.parked
                && !act.stopping
                && act.retry_timer.is_none();
            let nothing_pending = act
                .record
                .as_ref()
                .is_none_or(|r| r.pending_effects.is_empty());
            if idle_enough && quiet && nothing_pending {
                act.shard.do_send(Passivate {
                    org_id: act.org_id,
                    ticket_id: act.ticket_id,
                });
                // Ask once per idle period.
                act.last_active = Instant::now();
            }
        });
        if self.parked {
            let park_for = self.deps.config.park_for;
            ctx.run_later(park_for, |act, ctx| {
                act.parked = false;
                act.restarts = 0;
                act.deps
                    .metrics
                    .parked_tickets
                    .fetch_sub(1, Ordering::Relaxed);
                act.dirty = true;
                act.kick(ctx);
            });
            return;
        }
        if self.restarts > 0 {
            // Back off a little before retrying a failing ticket.
            let delay = Duration::from_millis(100 * u64::from(self.restarts));
            ctx.run_later(delay, |act, ctx| act.kick(ctx));
        } else {
            self.kick(ctx);
        }
    }

    fn stopped(&mut self, _: &mut Self::Context) {
        if !self.stopping || self.zombie {
            // A failure: the supervisor restarts this same struct (see `restarting`).
            return;
        }
        self.zombie = true;
        if std::mem::take(&mut self.counted) {
            self.deps
                .metrics
                .live_actors
                .fetch_sub(1, Ordering::Relaxed);
        }
        if std::mem::take(&mut self.parked) {
            // The park timer dies with this incarnation; the next one starts afresh.
            self.deps
                .metrics
                .parked_tickets
                .fetch_sub(1, Ordering::Relaxed);
        }
        self.shard.do_send(Stopped {
            org_id: self.org_id,
            ticket_id: self.ticket_id,
            has_work: self.has_work(),
        });
    }
}

impl actix::Supervised for TicketActor {
    fn restarting(&mut self, _: &mut Self::Context) {
        if self.zombie {
            return;
        }
        EngineMetrics::inc(&self.deps.metrics.actor_restarts);
        self.restarts += 1;
        self.total_restarts += 1;
        self.record = None;
        self.reconcile = true;
        self.busy = false;
        self.dirty = true;
        self.retry_timer = None;
        if self.restarts > self.deps.config.restart_budget && !self.parked {
            self.parked = true;
            self.deps
                .metrics
                .parked_tickets
                .fetch_add(1, Ordering::Relaxed);
            tracing::error!(org_id = %self.org_id, ticket_id = %self.ticket_id, "ticket keeps failing; parked");
        }
    }
}

impl Handler<Wake> for TicketActor {
    type Result = ();

    fn handle(&mut self, _: Wake, ctx: &mut Self::Context) {
        self.dirty = true;
        if self.busy {
            self.woken.notify_one();
        }
        self.kick(ctx);
    }
}

impl Handler<Stop> for TicketActor {
    type Result = ();

    fn handle(&mut self, _: Stop, ctx: &mut Self::Context) {
        // A running pass finishes first (see `finish`); the shard buffers wake-ups meanwhile.
        // A scheduled retry is not waited for: `stopped` reports it as work and the next
        // incarnation runs it at once (a 429's pause is kept by the org's budget, a post of
        // unknown outcome by its stored attempt time).
        self.stopping = true;
        if !self.busy {
            ctx.stop();
        }
    }
}

impl Handler<Status> for TicketActor {
    type Result = MessageResult<Status>;

    fn handle(&mut self, _: Status, _: &mut Self::Context) -> Self::Result {
        MessageResult(ActorStatus {
            restarts: self.total_restarts,
            parked: self.parked,
            busy: self.busy,
        })
    }
}
