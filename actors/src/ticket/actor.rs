//! `TicketActor`: one per live tracked ticket, run under an actix `Supervisor` by its router
//! shard. It owns the ticket's cached record and runs processing passes strictly one at a
//! time: a `Wake` that arrives during a pass only marks the ticket dirty, and the pass is
//! re-run when the current one ends, so events never interleave.
//!
//! Failures (a store error, a panic inside a pass) stop the actor; the supervisor restarts
//! it, `restarting` drops the cached record so it is reloaded from the store, and the next
//! pass reconciles pending writes. After `restart_budget` consecutive failures the ticket is
//! parked for `park_for`, visible in inspection, and other tickets are unaffected. A pass
//! the store failed (a database restart) does not count towards parking: it is retried with
//! a growing delay until the store answers again.
//! Idle actors ask their shard to passivate them (see `router`).

use super::pass::{run_pass, PassError, PassOutcome};
use super::state::TicketRecord;
use crate::engine::deps::EngineDeps;
use crate::engine::router::{Passivate, Quiet, Shard, Stopped};
use crate::ids::{OrgId, TicketId};
use crate::metrics::EngineMetrics;
use actix::prelude::*;
use futures::FutureExt;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Notify;

/// First wait before a pass that the store failed runs again (doubled each time).
const STORE_RETRY: Duration = Duration::from_millis(100);
/// Longest wait between passes while the store fails.
const STORE_RETRY_MAX: Duration = Duration::from_secs(5);

/// How long a ticket waits after writing to Freshdesk before it processes new events.
const ECHO_COALESCE: Duration = Duration::from_millis(750);

/// There is work for the ticket in the store.
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct Wake;

/// Stop now (sent by the shard once it stopped routing to this actor).
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct Stop;

/// What the actor can tell about itself.
#[derive(Message)]
#[rtype(result = "ActorStatus")]
pub(crate) struct Status;

/// The live actor's view of itself, for inspection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ActorStatus {
    pub restarts: u32,
    pub parked: bool,
    pub busy: bool,
}

/// Where the actor is in its life. One value, so that impossible combinations (a pass
/// running while parked, a retry scheduled while a pass runs, a zombie that processes) cannot
/// be written. Whether work waits (`dirty`) and whether pending writes must be reconciled
/// (`reconcile`) are facts about the ticket, valid in every phase, and stay beside it.
enum Phase {
    /// No pass runs and none is scheduled.
    Idle,
    /// A pass runs. `stop_after`: the shard asked this incarnation to stop (passivation);
    /// the pass finishes first.
    Running { stop_after: bool },
    /// A pass is scheduled (retry backoff, echo coalescing); it takes new work with it.
    Scheduled,
    /// Failed more than `restart_budget` times in a row: waits `park_for`, counted in the
    /// parked gauge.
    Parked,
    /// Asked to stop (passivation), no pass running; `stopped` follows. `scheduled`: a
    /// scheduled pass was left behind (work for the next incarnation); `parked`: it was
    /// parked (the parked gauge is released in `stopped`).
    Stopping { scheduled: bool, parked: bool },
    /// Stopped after a passivation: a supervisor restart of it never processes anything.
    Zombie,
}

/// One tracked ticket.
pub(crate) struct TicketActor {
    org_id: OrgId,
    ticket_id: TicketId,
    deps: Arc<EngineDeps>,
    shard: Addr<Shard>,
    record: Option<TicketRecord>,
    phase: Phase,
    /// Work waits in the store (or a failed pass must run again).
    dirty: bool,
    /// Consecutive failed passes (survives supervisor restarts: same struct).
    restarts: u32,
    /// Consecutive passes failed by the store (it cannot be reached): retried with a growing
    /// delay, never parked — the ticket is not at fault, and it must go on once the store is
    /// back. `failed_on_store`: the last failure was one.
    store_failures: u32,
    failed_on_store: bool,
    /// Pending writes must be reconciled before the next send (after a load or restart).
    reconcile: bool,
    last_active: Instant,
    /// Restarts over this actor's life, for inspection.
    total_restarts: u32,
    /// Tells a running pass that more work arrived (it may be waiting for a pass slot).
    woken: Arc<Notify>,
    /// The org's ownership epoch `record` was cached under (see `Ownership::epoch`).
    epoch: Option<i64>,
}

impl TicketActor {
    /// A new incarnation; it loads its record on the first pass.
    pub(crate) fn new(
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
            phase: Phase::Idle,
            dirty: true,
            restarts: 0,
            store_failures: 0,
            failed_on_store: false,
            reconcile: true,
            last_active: Instant::now(),
            total_restarts: 0,
            woken: Arc::new(Notify::new()),
            epoch: None,
        }
    }

    /// Start a pass unless one is running (then the dirty flag re-runs it afterwards), one is
    /// scheduled (it takes the new work with it), or the actor is parked or stopping.
    fn kick(&mut self, ctx: &mut Context<Self>) {
        if !matches!(self.phase, Phase::Idle) || !self.dirty {
            return;
        }
        self.phase = Phase::Running { stop_after: false };
        self.dirty = false;
        self.last_active = Instant::now();
        let epoch = self.deps.ownership.epoch(self.org_id);
        if epoch != self.epoch {
            // The org moved away (and maybe back) since the record was cached: another node
            // may have changed it. Read it again and reconcile pending writes as after a crash.
            self.record = None;
            self.reconcile = true;
            self.epoch = epoch;
        }
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
            let stop_after = matches!(act.phase, Phase::Running { stop_after: true });
            act.phase = Phase::Idle;
            act.last_active = Instant::now();
            match result {
                Ok(Ok(outcome)) => act.finish(outcome, stop_after, ctx),
                Ok(Err(error)) => {
                    act.failed_on_store = matches!(error, PassError::Store(_));
                    act.fail(&error.to_string(), stop_after, ctx)
                }
                Err(panic) => {
                    act.failed_on_store = false;
                    act.fail(&panic_message(&panic), stop_after, ctx)
                }
            }
        }));
    }

    /// Schedule a pass after `delay`; `dirty`: the scheduled pass runs even if no new work
    /// arrives meanwhile.
    fn schedule(&mut self, delay: Duration, dirty: bool, ctx: &mut Context<Self>) {
        ctx.run_later(delay, move |act, ctx| {
            if !matches!(act.phase, Phase::Scheduled) {
                // Stopping meanwhile: the next incarnation runs the work.
                return;
            }
            act.phase = Phase::Idle;
            act.dirty |= dirty;
            act.kick(ctx);
        });
        self.phase = Phase::Scheduled;
    }

    fn finish(&mut self, outcome: PassOutcome, stop_after: bool, ctx: &mut Context<Self>) {
        self.restarts = 0;
        self.store_failures = 0;
        self.record = outcome.record;
        self.deps.waiters.notify(&outcome.applied);
        if stop_after {
            // Work left for later (a retry, a post waiting to settle) goes to the next
            // incarnation: `stopped` reports it and the shard starts one.
            self.dirty |= outcome.retry_in.is_some();
            self.phase = Phase::Stopping {
                scheduled: false,
                parked: false,
            };
            ctx.stop();
            return;
        }
        if outcome.wrote && self.dirty && outcome.retry_in.is_none() {
            // Our writes fire the automation rules back at us: wait a moment so those echoes
            // (and anything else arriving meanwhile) coalesce into one re-read.
            self.schedule(ECHO_COALESCE, false, ctx);
            return;
        }
        if let Some(delay) = outcome.retry_in {
            self.schedule(delay, true, ctx);
        }
        self.kick(ctx);
        let nothing_pending = self
            .record
            .as_ref()
            .is_none_or(|r| r.pending_effects.is_empty());
        if matches!(self.phase, Phase::Idle) && !self.dirty && nothing_pending {
            self.shard.do_send(Quiet {
                org_id: self.org_id,
                ticket_id: self.ticket_id,
            });
        }
    }

    fn fail(&mut self, why: &str, stop_after: bool, ctx: &mut Context<Self>) {
        EngineMetrics::inc(&self.deps.metrics.events_failed);
        tracing::error!(org_id = %self.org_id, ticket_id = %self.ticket_id, error = why, restarts = self.restarts, "ticket pass failed; restarting the actor");
        self.deps.failures.record(self.org_id, self.ticket_id, why);
        // The pass's events stay queued: whoever runs next (the restarted actor, or a new
        // incarnation if the shard is passivating this one) must run it again.
        self.dirty = true;
        if stop_after {
            self.phase = Phase::Stopping {
                scheduled: false,
                parked: false,
            };
        }
        ctx.stop();
    }

    /// Queued events, a scheduled retry or pending writes: the ticket must run again.
    fn has_work(&self) -> bool {
        self.dirty
            || matches!(
                self.phase,
                Phase::Scheduled
                    | Phase::Stopping {
                        scheduled: true,
                        ..
                    }
            )
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
        if matches!(self.phase, Phase::Zombie) {
            // Inert: it never processes and stops by itself once nothing addresses it
            // (stopping it here would only make the supervisor restart it again).
            return;
        }
        if self.total_restarts == 0 {
            // The first start (a supervisor restart is the same actor, counted once).
            self.deps.metrics.actor_started();
        }
        let idle = self.deps.config.idle_passivate;
        let every = (idle / 4).clamp(Duration::from_millis(50), Duration::from_secs(30));
        ctx.run_interval(every, move |act, _| {
            let idle_enough = act.last_active.elapsed() >= idle;
            let quiet = matches!(act.phase, Phase::Idle) && !act.dirty;
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
        if matches!(self.phase, Phase::Parked) {
            let park_for = self.deps.config.park_for;
            ctx.run_later(park_for, |act, ctx| {
                if !matches!(act.phase, Phase::Parked) {
                    return;
                }
                act.phase = Phase::Idle;
                act.restarts = 0;
                act.deps.ticket_unparked(act.org_id, act.ticket_id);
                act.dirty = true;
                act.kick(ctx);
            });
            return;
        }
        if self.failed_on_store {
            // The store is failing: wait longer each time, up to STORE_RETRY_MAX.
            let delay = STORE_RETRY
                .saturating_mul(1 << self.store_failures.min(8))
                .min(STORE_RETRY_MAX);
            ctx.run_later(delay, |act, ctx| act.kick(ctx));
        } else if self.restarts > 0 {
            // Back off a little before retrying a failing ticket.
            let delay = Duration::from_millis(100 * u64::from(self.restarts));
            ctx.run_later(delay, |act, ctx| act.kick(ctx));
        } else {
            self.kick(ctx);
        }
    }

    fn stopped(&mut self, _: &mut Self::Context) {
        let parked = match self.phase {
            Phase::Stopping { parked, .. } => parked,
            Phase::Running { stop_after: true } => false,
            // A failure: the supervisor restarts this same struct (see `restarting`).
            _ => return,
        };
        let has_work = self.has_work();
        self.phase = Phase::Zombie;
        self.deps.metrics.actor_stopped();
        if parked {
            // The park timer dies with this incarnation; the next one starts afresh.
            self.deps.ticket_unparked(self.org_id, self.ticket_id);
        }
        self.shard.do_send(Stopped {
            org_id: self.org_id,
            ticket_id: self.ticket_id,
            has_work,
        });
    }
}

impl actix::Supervised for TicketActor {
    fn restarting(&mut self, _: &mut Self::Context) {
        if matches!(self.phase, Phase::Zombie) {
            return;
        }
        EngineMetrics::inc(&self.deps.metrics.actor_restarts);
        if self.failed_on_store {
            self.store_failures += 1;
        } else {
            self.restarts += 1;
        }
        self.total_restarts += 1;
        self.record = None;
        self.reconcile = true;
        self.dirty = true;
        let was_parked = matches!(self.phase, Phase::Parked);
        if was_parked || self.restarts > self.deps.config.restart_budget {
            self.phase = Phase::Parked;
        } else {
            self.phase = Phase::Idle;
        }
        if !was_parked && matches!(self.phase, Phase::Parked) {
            self.deps.ticket_parked(self.org_id, self.ticket_id);
            tracing::error!(org_id = %self.org_id, ticket_id = %self.ticket_id, "ticket keeps failing; parked");
        }
    }
}

impl Handler<Wake> for TicketActor {
    type Result = ();

    fn handle(&mut self, _: Wake, ctx: &mut Self::Context) {
        self.dirty = true;
        if matches!(self.phase, Phase::Running { .. }) {
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
        self.phase = match std::mem::replace(&mut self.phase, Phase::Idle) {
            Phase::Running { .. } => {
                self.phase = Phase::Running { stop_after: true };
                return;
            }
            Phase::Idle => Phase::Stopping {
                scheduled: false,
                parked: false,
            },
            Phase::Scheduled => Phase::Stopping {
                scheduled: true,
                parked: false,
            },
            Phase::Parked => Phase::Stopping {
                scheduled: false,
                parked: true,
            },
            stopping @ (Phase::Stopping { .. } | Phase::Zombie) => stopping,
        };
        ctx.stop();
    }
}

impl Handler<Status> for TicketActor {
    type Result = MessageResult<Status>;

    fn handle(&mut self, _: Status, _: &mut Self::Context) -> Self::Result {
        MessageResult(ActorStatus {
            restarts: self.total_restarts,
            parked: matches!(
                self.phase,
                Phase::Parked | Phase::Stopping { parked: true, .. }
            ),
            busy: matches!(self.phase, Phase::Running { .. }),
        })
    }
}
