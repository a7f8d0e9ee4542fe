//! One processing pass of a ticket, as an async function over plain data: read the queued
//! events, re-read the ticket from Freshdesk, run the state machine, persist, execute the
//! outbox. The actor runs one pass at a time per ticket; nothing here touches actor state.

use super::machine::{self, OrgView};
use super::state::*;
use crate::engine::deps::{EngineDeps, PassPools};
use crate::freshdesk::FreshdeskError;
use crate::ids::{OrgId, TicketId};
use crate::metrics::EngineMetrics;
use crate::org::actor::{GetSnapshot, OrgSnapshot};
use crate::org::budget::{BudgetedApi, Priority};
use crate::ports::{background_only, EventKind, QueuedEvent, StoreFailure};
use crate::session::HandoffReason;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Notify, SemaphorePermit};

/// Why a pass failed. The actor turns this into a restart (with a budget, then parking).
#[derive(Debug, thiserror::Error)]
pub enum PassError {
    #[error(transparent)]
    Store(#[from] StoreFailure),
    #[error("org actor unavailable: {0}")]
    Mailbox(#[from] actix::MailboxError),
}

/// How a pass ended.
pub struct PassOutcome {
    /// The record as stored after the pass (None: the ticket has no record).
    pub record: Option<TicketRecord>,
    /// Work remains that should be retried after this delay (Freshdesk failed transiently).
    pub retry_in: Option<Duration>,
    /// Events the pass applied, for admin commands waiting on them.
    pub applied: Vec<QueuedEvent>,
    /// The pass wrote to Freshdesk (its webhooks will echo back shortly).
    pub wrote: bool,
}

/// Longest wait between retries of a failing Freshdesk call: a ticket is answered within half
/// a minute of Freshdesk recovering. (A longer `Retry-After` still holds: the org's rate
/// budget pauses every call until it has passed.)
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// How often a ticket of a paused org looks again (a save also wakes it at once).
const PAUSED_RECHECK: Duration = Duration::from_secs(2);
/// How soon a ticket looks again when the store says connected but the engine has not yet
/// been told (a save in progress).
const RECONNECT_RECHECK: Duration = Duration::from_millis(200);

fn backoff(retries: u32, hint: Option<Duration>) -> Duration {
    let exp = Duration::from_millis(250u64.saturating_mul(1u64 << retries.min(12)));
    hint.unwrap_or(exp).min(MAX_BACKOFF)
}

/// A transient failure stops the pass; it is retried later.
#[derive(Debug, thiserror::Error)]
pub(super) enum Transient {
    /// Freshdesk failed transiently.
    #[error(transparent)]
    Freshdesk(#[from] FreshdeskError),
    /// The org actor could not answer (its mailbox is closed, or it could not read the org's
    /// connection from the store): not Freshdesk's failure, retried the same way.
    #[error("the org actor could not answer: {0}")]
    Org(String),
}

/// Why the outbox stopped before it was empty.
pub(super) enum OutboxStop {
    /// Freshdesk (or the org actor) failed transiently.
    Transient(Transient),
    /// An earlier attempt of the next post may still land in Freshdesk: look again after this.
    Settle(Duration),
    /// The attempt could not be recorded durably.
    Store(StoreFailure),
}

impl From<Transient> for OutboxStop {
    fn from(t: Transient) -> Self {
        Self::Transient(t)
    }
}

/// Run one pass for the ticket. `woken` is notified when more work arrives for the ticket
/// while the pass runs.
pub async fn run_pass(
    deps: Arc<EngineDeps>,
    org_id: OrgId,
    ticket_id: TicketId,
    cached: Option<TicketRecord>,
    reconcile: bool,
    woken: Arc<Notify>,
) -> Result<PassOutcome, PassError> {
    if !deps.orgs.gate(org_id).runs_here() {
        // Another node owns the org now (or this one has not settled in yet): the events stay
        // queued for the owner, and nothing is cached here.
        return Ok(PassOutcome {
            record: None,
            retry_in: None,
            applied: Vec::new(),
            wrote: false,
        });
    }
    let mut events = deps.store.queued_events(org_id, ticket_id).await?;
    // Bound how many passes of this org hold a ticket's state and wait on Freshdesk at once,
    // so a large backlog costs idle actors, not loaded records; background work has its own,
    // smaller pool so it never holds up live tickets.
    let pools = deps.orgs.passes(org_id);
    let _permit = pass_permit(&deps, &pools, org_id, ticket_id, &mut events, &woken).await?;
    let mut record = match cached {
        Some(r) => Some(r),
        None => deps.store.load_ticket(org_id, ticket_id).await?,
    };
    let has_effects = record
        .as_ref()
        .is_some_and(|r| !r.pending_effects.is_empty());
    if events.is_empty() && !has_effects {
        return Ok(PassOutcome {
            record,
            retry_in: None,
            applied: Vec::new(),
            wrote: false,
        });
    }
    let wait = |retry_in: Duration, record: Option<TicketRecord>| PassOutcome {
        record,
        retry_in: Some(retry_in),
        applied: Vec::new(),
        wrote: false,
    };
    if deps.orgs.gate(org_id).holds_work() {
        // Freshdesk refuses the org's key (or config its domain): keep everything and look
        // again; a save, or a probing pass that Freshdesk answers, lifts the pause.
        return Ok(wait(PAUSED_RECHECK, record));
    }
    let org = deps.orgs.get(org_id);
    let snapshot = match org.send(GetSnapshot).await? {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(%org_id, %ticket_id, error = %e, "org snapshot unavailable; retrying");
            return Ok(wait(backoff(3, None), record));
        }
    };
    let Some(snapshot) = snapshot.filter(|s| s.is_connected()) else {
        if deps.orgs.stored_connected(org_id).await? {
            // The store is the source of truth: a save stored the connection and is about to
            // tell the engine (`Engine::org_changed`). Keep the work; never drop what the
            // webhook acknowledged against a stale view.
            return Ok(wait(RECONNECT_RECHECK, record));
        }
        // Disconnected: queued work is dropped and nothing is posted.
        deps.store.discard_events(&events).await?;
        if let Some(r) = record.as_mut() {
            if machine::cancel_outbox_on_disconnect(r, deps.clock.now()) {
                deps.store.commit(r, &[]).await?;
            }
        }
        return Ok(PassOutcome {
            record,
            retry_in: None,
            applied: events,
            wrote: false,
        });
    };
    let mut pass = Pass {
        deps: &deps,
        snapshot: &snapshot,
        org_id,
        ticket_id,
        read_priority: Priority::Sync,
        wrote: std::cell::Cell::new(false),
    };

    // Writes decided before these events go first.
    if let Some(r) = record.as_mut() {
        if let Err(stop) = pass.execute_outbox(r, reconcile).await {
            return pass.outbox_stopped(record, stop, Vec::new()).await;
        }
    }

    let mut applied = Vec::new();
    for segment in segments(&events) {
        let only_sweeps = segment.iter().all(|e| e.kind == EventKind::Sweep);
        pass.read_priority = if only_sweeps {
            Priority::Background
        } else {
            Priority::Sync
        };
        let result = match &segment[0].kind {
            EventKind::Webhook { .. } | EventKind::Sweep => {
                let plan = machine::read_plan(
                    record.as_ref(),
                    segment.iter().map(|e| match &e.kind {
                        EventKind::Webhook { triggered_event } => Some(triggered_event.as_str()),
                        _ => None,
                    }),
                );
                pass.reread(&mut record, plan).await
            }
            EventKind::Import => {
                pass.read_priority = Priority::Background;
                pass.import(&mut record).await
            }
            EventKind::AdminHandoff { detail } => {
                pass.admin_handoff(&mut record, detail.clone());
                Ok(())
            }
            EventKind::AdminResume => {
                if let Some(r) = record.as_mut() {
                    machine::resume(r, deps.clock.now());
                }
                Ok(())
            }
        };
        if let Err(e) = result {
            return pass.retry_later(record, e, applied).await;
        }
        match record.as_ref() {
            Some(r) => deps.store.commit(r, segment).await?,
            None => deps.store.discard_events(segment).await?,
        }
        let new_effects = record
            .as_ref()
            .is_some_and(|r| !r.pending_effects.is_empty());
        if new_effects {
            // The outbox must be durable before anything in it is sent.
            deps.store.flush().await?;
        }
        for _ in segment {
            EngineMetrics::inc(&deps.metrics.events_processed);
        }
        applied.extend(segment.iter().cloned());
        if let Some(r) = record.as_mut() {
            if let Err(stop) = pass.execute_outbox(r, false).await {
                return pass.outbox_stopped(record, stop, applied).await;
            }
        }
    }
    Ok(PassOutcome {
        record,
        retry_in: None,
        applied,
        wrote: pass.wrote.get(),
    })
}

/// A pass slot: from the live pool, or for background-only work from the background pool,
/// unless live work for the ticket arrives while it waits there (`woken`): the events are
/// read again and the pass takes a live slot, so a webhook never waits behind a backlog.
async fn pass_permit<'a>(
    deps: &EngineDeps,
    pools: &'a PassPools,
    org_id: OrgId,
    ticket_id: TicketId,
    events: &mut Vec<QueuedEvent>,
    woken: &Notify,
) -> Result<SemaphorePermit<'a>, PassError> {
    while background_only(events) {
        tokio::select! {
            permit = pools.background.acquire() => {
                return Ok(permit.expect("pass pools are never closed"));
            }
            () = woken.notified() => *events = deps.store.queued_events(org_id, ticket_id).await?,
        }
    }
    Ok(pools
        .live
        .acquire()
        .await
        .expect("pass pools are never closed"))
}

/// Consecutive events of one class coalesce into one segment (one re-read for many hints,
/// one import for repeated listings); each admin command is its own segment.
fn segments(events: &[QueuedEvent]) -> Vec<&[QueuedEvent]> {
    #[derive(PartialEq)]
    enum Class {
        Hint,
        Import,
        Command,
    }
    let class = |e: &QueuedEvent| match e.kind {
        EventKind::Webhook { .. } | EventKind::Sweep => Class::Hint,
        EventKind::Import => Class::Import,
        EventKind::AdminHandoff { .. } | EventKind::AdminResume => Class::Command,
    };
    let mut out = Vec::new();
    let mut start = 0;
    for i in 1..=events.len() {
        let boundary = i == events.len()
            || class(&events[i]) != class(&events[i - 1])
            || class(&events[i]) == Class::Command;
        if boundary {
            out.push(&events[start..i]);
            start = i;
        }
    }
    out
}

pub(super) struct Pass<'a> {
    pub(super) deps: &'a EngineDeps,
    pub(super) snapshot: &'a OrgSnapshot,
    pub(super) org_id: OrgId,
    pub(super) ticket_id: TicketId,
    /// Re-reads after a webhook are status sync; after a sweep or import, background work.
    pub(super) read_priority: Priority,
    /// Something was written to Freshdesk in this pass.
    pub(super) wrote: std::cell::Cell<bool>,
}

impl Pass<'_> {
    pub(super) fn view(&self) -> OrgView<'_> {
        OrgView {
            settings: &self.snapshot.connection.settings,
            ai_agent: self.snapshot.connection.agent.id,
            first_connected_at: self.snapshot.connection.first_connected_at,
            max_ai_answers: self.deps.config.max_ai_answers,
        }
    }

    /// Freshdesk for reads of the current segment.
    pub(super) fn reader(&self) -> BudgetedApi<'_> {
        self.snapshot.api(self.read_priority)
    }

    /// Freshdesk for writes (and the reads that decide whether a write happened): live.
    pub(super) fn writer(&self) -> BudgetedApi<'_> {
        self.snapshot.api(Priority::Live)
    }

    /// End the pass early because the outbox could not be emptied.
    async fn outbox_stopped(
        &self,
        record: Option<TicketRecord>,
        stop: OutboxStop,
        applied: Vec<QueuedEvent>,
    ) -> Result<PassOutcome, PassError> {
        match stop {
            OutboxStop::Transient(e) => self.retry_later(record, e, applied).await,
            OutboxStop::Store(e) => Err(PassError::Store(e)),
            OutboxStop::Settle(wait) => Ok(PassOutcome {
                record,
                retry_in: Some(wait),
                applied,
                wrote: self.wrote.get(),
            }),
        }
    }

    /// Record the failure on the ticket and ask to be retried.
    async fn retry_later(
        &self,
        mut record: Option<TicketRecord>,
        error: Transient,
        applied: Vec<QueuedEvent>,
    ) -> Result<PassOutcome, PassError> {
        EngineMetrics::inc(&self.deps.metrics.events_failed);
        let retry_after = match &error {
            Transient::Freshdesk(FreshdeskError::RateLimited { retry_after }) => Some(*retry_after),
            _ => None,
        };
        let retries = match record.as_mut() {
            Some(r) => {
                r.retries += 1;
                r.last_error = Some(ErrorNote {
                    at: self.deps.clock.now(),
                    message: error.to_string(),
                });
                self.deps.store.commit(r, &[]).await?;
                r.retries
            }
            None => 1,
        };
        tracing::warn!(org_id = %self.org_id, ticket_id = %self.ticket_id, error = %error, retries, "freshdesk call failed; will retry");
        let retry_in = if self.snapshot.gate.pause().is_some() {
            PAUSED_RECHECK
        } else {
            backoff(retries, retry_after)
        };
        Ok(PassOutcome {
            record,
            retry_in: Some(retry_in),
            applied,
            wrote: false,
        })
    }

    fn admin_handoff(&self, record: &mut Option<TicketRecord>, detail: Option<String>) {
        let Some(r) = record.as_mut() else { return };
        let Some(session) = r.session.as_ref() else {
            return;
        };
        let summary = machine::summarize(&session.messages);
        machine::handoff(
            r,
            HandoffReason::Admin,
            &summary,
            detail,
            &self.view(),
            self.deps.clock.now(),
        );
    }
}
