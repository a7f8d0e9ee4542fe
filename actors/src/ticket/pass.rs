//! One processing pass of a ticket, as an async function over plain data: read the queued
//! events, re-read the ticket from Freshdesk, run the state machine, persist, execute the
//! outbox. The actor runs one pass at a time per ticket; nothing here touches actor state.

use super::machine::{
    self, Decision, Observation, ObservedConversation, ObservedTicket, OrgView, Posted,
};
use super::state::*;
use crate::engine::{EngineDeps, PassPools};
use crate::freshdesk::{Conversation, FreshdeskApi, FreshdeskError, Ticket};
use crate::ids::{OrgId, TicketId};
use crate::metrics::EngineMetrics;
use crate::org::actor::{GetSnapshot, OrgError, OrgSnapshot, ResolveAuthors};
use crate::org::budget::{BudgetedApi, Priority};
use crate::ports::{background_only, EventKind, QueuedEvent, StoreFailure};
use crate::session::{Author, HandoffReason};
use chrono::SubsecRound;
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

/// A transient Freshdesk failure stops the pass; it is retried later.
struct Transient(FreshdeskError);

/// Why the outbox stopped before it was empty.
enum OutboxStop {
    /// Freshdesk failed transiently.
    Transient(FreshdeskError),
    /// An earlier attempt of the next post may still land in Freshdesk: look again after this.
    Settle(Duration),
    /// The attempt could not be recorded durably.
    Store(StoreFailure),
}

impl From<Transient> for OutboxStop {
    fn from(t: Transient) -> Self {
        Self::Transient(t.0)
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
    let mut events = deps.store.queued_events(org_id, ticket_id)?;
    // Bound how many passes of this org hold a ticket's state and wait on Freshdesk at once,
    // so a large backlog costs idle actors, not loaded records; background work has its own,
    // smaller pool so it never holds up live tickets.
    let pools = deps.orgs.passes(org_id);
    let _permit = pass_permit(&deps, &pools, org_id, ticket_id, &mut events, &woken).await?;
    let mut record = match cached {
        Some(r) => Some(r),
        None => deps.store.load_ticket(org_id, ticket_id)?,
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
        if deps.orgs.stored_connected(org_id)? {
            // The store is the source of truth: a save stored the connection and is about to
            // tell the engine (`Engine::org_changed`). Keep the work; never drop what the
            // webhook acknowledged against a stale view.
            return Ok(wait(RECONNECT_RECHECK, record));
        }
        // Disconnected: queued work is dropped and nothing is posted.
        deps.store.discard_events(&events)?;
        if let Some(r) = record.as_mut().filter(|r| !r.pending_effects.is_empty()) {
            r.pending_effects.clear();
            r.last_error = Some(ErrorNote {
                at: deps.clock.now(),
                message: "pending writes cancelled: the organization is disconnected".into(),
            });
            deps.store.commit(r, &[])?;
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
            return pass.outbox_stopped(record, stop, Vec::new());
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
            EventKind::Webhook { .. } | EventKind::Sweep => pass.reread(&mut record).await,
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
        if let Err(Transient(e)) = result {
            return pass.retry_later(record, e, applied);
        }
        match record.as_ref() {
            Some(r) => deps.store.commit(r, segment)?,
            None => deps.store.discard_events(segment)?,
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
                return pass.outbox_stopped(record, stop, applied);
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
            () = woken.notified() => *events = deps.store.queued_events(org_id, ticket_id)?,
        }
    }
    Ok(pools
        .live
        .acquire()
        .await
        .expect("pass pools are never closed"))
}

/// A conversation's text: Freshdesk's `body_text`, or the text of its HTML body when Freshdesk
/// left `body_text` empty.
fn text_of(c: &Conversation) -> String {
    if c.body_text.is_empty() {
        machine::html_to_text(&c.body)
    } else {
        c.body_text.clone()
    }
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

struct Pass<'a> {
    deps: &'a EngineDeps,
    snapshot: &'a OrgSnapshot,
    org_id: OrgId,
    ticket_id: TicketId,
    /// Re-reads after a webhook are status sync; after a sweep or import, background work.
    read_priority: Priority,
    /// Something was written to Freshdesk in this pass.
    wrote: std::cell::Cell<bool>,
}

impl Pass<'_> {
    fn view(&self) -> OrgView<'_> {
        OrgView {
            settings: &self.snapshot.connection.settings,
            ai_agent: self.snapshot.connection.agent.id,
            first_connected_at: self.snapshot.connection.first_connected_at,
            max_ai_answers: self.deps.config.max_ai_answers,
        }
    }

    /// Freshdesk for reads of the current segment.
    fn reader(&self) -> BudgetedApi<'_> {
        self.snapshot.api(self.read_priority)
    }

    /// Freshdesk for writes (and the reads that decide whether a write happened): live.
    fn writer(&self) -> BudgetedApi<'_> {
        self.snapshot.api(Priority::Live)
    }

    /// End the pass early because the outbox could not be emptied.
    fn outbox_stopped(
        &self,
        record: Option<TicketRecord>,
        stop: OutboxStop,
        applied: Vec<QueuedEvent>,
    ) -> Result<PassOutcome, PassError> {
        match stop {
            OutboxStop::Transient(e) => self.retry_later(record, e, applied),
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
    fn retry_later(
        &self,
        mut record: Option<TicketRecord>,
        error: FreshdeskError,
        applied: Vec<QueuedEvent>,
    ) -> Result<PassOutcome, PassError> {
        EngineMetrics::inc(&self.deps.metrics.events_failed);
        let retry_after = match &error {
            FreshdeskError::RateLimited { retry_after } => Some(*retry_after),
            _ => None,
        };
        let retries = match record.as_mut() {
            Some(r) => {
                r.retries += 1;
                r.last_error = Some(ErrorNote {
                    at: self.deps.clock.now(),
                    message: error.to_string(),
                });
                self.deps.store.commit(r, &[])?;
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

    /// Re-read the ticket; gate it if new; mirror; ask the responder when the AI answers.
    async fn reread(&mut self, record: &mut Option<TicketRecord>) -> Result<(), Transient> {
        if record
            .as_ref()
            .is_some_and(|r| r.gate.decision == GateOutcome::Ignored)
        {
            return Ok(());
        }
        let ticket = match self.reader().ticket(self.ticket_id).await {
            Ok(t) => t.value,
            Err(FreshdeskError::NotFound) => {
                if let Some(r) = record.as_mut() {
                    r.last_error = Some(ErrorNote {
                        at: self.deps.clock.now(),
                        message: "the ticket no longer exists in Freshdesk".into(),
                    });
                }
                return Ok(());
            }
            Err(e) if e.is_transient() => return Err(Transient(e)),
            Err(e) => {
                tracing::warn!(org_id = %self.org_id, ticket_id = %self.ticket_id, error = %e, "ticket re-read refused");
                if let Some(r) = record.as_mut() {
                    r.last_error = Some(ErrorNote {
                        at: self.deps.clock.now(),
                        message: e.to_string(),
                    });
                }
                return Ok(());
            }
        };
        let observed_ticket = self.observed_ticket(&ticket);
        let now = self.deps.clock.now();
        let r = match record {
            Some(r) => r,
            None => {
                let decision = machine::gate(&observed_ticket, &self.view(), now);
                let mut fresh = TicketRecord::new(self.org_id, self.ticket_id, decision);
                if fresh.gate.decision == GateOutcome::Ignored {
                    tracing::info!(org_id = %self.org_id, ticket_id = %self.ticket_id, reason = %fresh.gate.reason, "ticket not tracked");
                    *record = Some(fresh);
                    return Ok(());
                }
                machine::start_session(&mut fresh, &observed_ticket, false, now);
                tracing::info!(org_id = %self.org_id, ticket_id = %self.ticket_id, reason = %fresh.gate.reason, "ticket tracked");
                record.insert(fresh)
            }
        };
        let (conversations, total) = self.new_conversations(r, &ticket).await?;
        let observation = Observation {
            ticket: observed_ticket,
            conversations,
            conversations_total: total,
        };
        let step = machine::observe(r, &observation, &self.view(), now);
        if let Some(request) = step.ask {
            EngineMetrics::inc(&self.deps.metrics.responder_calls);
            let decision = match self.deps.responder.decide(&request).await {
                Ok(d) => d,
                Err(e) => {
                    tracing::warn!(org_id = %self.org_id, ticket_id = %self.ticket_id, error = %e, "responder failed; handing off");
                    Decision::Handoff {
                        reason: HandoffReason::Other,
                        summary: format!(
                            "{} The AI could not answer ({e}).",
                            machine::summarize(&request.transcript)
                        ),
                    }
                }
            };
            machine::respond(r, decision, &self.view(), self.deps.clock.now());
        }
        r.retries = 0;
        Ok(())
    }

    /// Import a backfilled ticket as history, unless ticketsync already knows it (live traffic
    /// got there first) or it is no longer open or pending. The gate's assignment rule applies:
    /// with `auto_handle_all` off only the AI agent's and the default group's tickets are
    /// imported.
    async fn import(&mut self, record: &mut Option<TicketRecord>) -> Result<(), Transient> {
        let predates = |r: &TicketRecord| {
            r.gate.decision == GateOutcome::Ignored
                && r.gate.reason.contains(machine::PREDATES_CONNECTION)
        };
        if record.as_ref().is_some_and(|r| !predates(r)) {
            return Ok(());
        }
        let ticket = match self.reader().ticket(self.ticket_id).await {
            Ok(t) => t.value,
            Err(e) if e.is_transient() => return Err(Transient(e)),
            Err(_) => return Ok(()),
        };
        if ticket.created_at >= self.snapshot.connection.first_connected_at.trunc_subsecs(0) {
            // Created after the connection: live traffic, gated like any new ticket.
            self.read_priority = Priority::Sync;
            return self.reread(record).await;
        }
        if !matches!(ticket.status, 2 | 3) {
            return Ok(());
        }
        let observed = self.observed_ticket(&ticket);
        let now = self.deps.clock.now();
        let mut fresh = TicketRecord::new(
            self.org_id,
            self.ticket_id,
            machine::import_gate(&observed, &self.view(), now),
        );
        if fresh.gate.decision == GateOutcome::Tracked {
            machine::start_session(&mut fresh, &observed, true, now);
            let (conversations, total) = self.new_conversations(&fresh, &ticket).await?;
            let observation = Observation {
                ticket: observed,
                conversations,
                conversations_total: total,
            };
            machine::import_history(&mut fresh, &observation, now);
        }
        *record = Some(fresh);
        Ok(())
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

    fn observed_ticket(&self, ticket: &Ticket) -> ObservedTicket {
        ObservedTicket {
            subject: ticket.subject.clone(),
            description_text: if ticket.description_text.is_empty() {
                machine::html_to_text(&ticket.description)
            } else {
                ticket.description_text.clone()
            },
            status: ticket.status,
            status_name: self.snapshot.status_name(ticket.status),
            source: ticket.source,
            tags: ticket.tags.clone(),
            responder_id: ticket.responder_id,
            group_id: ticket.group_id,
            created_at: ticket.created_at,
            updated_at: ticket.updated_at,
        }
    }

    /// Conversations not yet mirrored, authors resolved; and how many Freshdesk holds.
    async fn new_conversations(
        &self,
        record: &TicketRecord,
        ticket: &Ticket,
    ) -> Result<(Vec<ObservedConversation>, u32), Transient> {
        const PER_PAGE: u32 = 100;
        // Always listed, also on the first read of a ticket whose `updated_at` equals its
        // `created_at`: with one-second timestamps a reply written in the creation second
        // leaves both equal, and the AI must decide on the whole thread (SPEC §4.4).
        let first_page = record.watermark.conversations_seen / PER_PAGE + 1;
        let mut page = first_page;
        let mut fetched = Vec::new();
        loop {
            let result = match self.reader().conversations(self.ticket_id, page).await {
                Ok(p) => p.value,
                Err(FreshdeskError::NotFound) => break,
                Err(e) if e.is_transient() => return Err(Transient(e)),
                Err(e) => {
                    tracing::warn!(org_id = %self.org_id, ticket_id = %self.ticket_id, error = %e, "conversations refused");
                    break;
                }
            };
            let last = !result.has_next;
            fetched.extend(result.items);
            if last {
                break;
            }
            page += 1;
        }
        let total = (first_page - 1) * PER_PAGE + fetched.len() as u32;
        let known = |id| {
            record
                .session
                .as_ref()
                .is_some_and(|s| s.messages.iter().any(|m| m.conversation_id == Some(id)))
        };
        let fresh: Vec<_> = fetched.into_iter().filter(|c| !known(c.id)).collect();
        if fresh.is_empty() {
            return Ok((Vec::new(), total));
        }
        let authors = self
            .deps
            .orgs
            .get(self.org_id)
            .send(ResolveAuthors {
                user_ids: fresh.iter().map(|c| c.user_id).collect(),
                requester: ticket.requester_id,
            })
            .await
            .map_err(|e| Transient(FreshdeskError::Unreachable(e.to_string())))?
            .map_err(|e| match e {
                OrgError::Freshdesk(f) => Transient(f),
                OrgError::Connection(c) => Transient(FreshdeskError::Unreachable(c.to_string())),
            })?;
        let observed = fresh
            .into_iter()
            .map(|c| ObservedConversation {
                author: authors.get(&c.user_id).copied().unwrap_or(Author::Contact),
                id: c.id,
                private: c.private,
                note: c.source == 2,
                body_text: text_of(&c),
                created_at: c.created_at,
            })
            .collect();
        Ok((observed, total))
    }

    /// Send the outbox in order. Posts that may already have reached Freshdesk (after a
    /// crash, a timeout or a 5xx) are first looked for in the ticket's conversations.
    async fn execute_outbox(
        &self,
        record: &mut TicketRecord,
        reconcile: bool,
    ) -> Result<(), OutboxStop> {
        let mut reconcile = reconcile;
        while let Some(effect) = record.pending_effects.first().cloned() {
            if !self.snapshot.is_connected() {
                record.pending_effects.clear();
                record.last_error = Some(ErrorNote {
                    at: self.deps.clock.now(),
                    message: "pending writes cancelled: the organization is disconnected".into(),
                });
                self.commit(record);
                return Ok(());
            }
            if effect.kind.is_post() && (reconcile || effect.attempts > 0) {
                if let Some(found) = self.find_sent(record, &effect).await? {
                    EngineMetrics::inc(&self.deps.metrics.effects_reconciled);
                    tracing::info!(org_id = %self.org_id, ticket_id = %self.ticket_id, effect = %effect.id, "effect was already sent; not sending it again");
                    machine::effect_sent(record, effect.id, Some(found));
                    self.commit(record);
                    continue;
                }
                // Not there (yet). An attempt still in flight, or held by Freshdesk past our
                // timeout, may land later: only once it cannot is the post sent again.
                if let Some(started) = effect.last_attempt_at {
                    let settled_at = started
                        + chrono::Duration::from_std(self.deps.config.write_settle)
                            .unwrap_or_default();
                    let now = self.deps.clock.now();
                    if now < settled_at {
                        let wait = (settled_at - now).to_std().unwrap_or_default();
                        tracing::info!(org_id = %self.org_id, ticket_id = %self.ticket_id, effect = %effect.id, wait_ms = wait.as_millis() as u64, "an earlier attempt may still land; checking again before resending");
                        return Err(OutboxStop::Settle(wait + Duration::from_millis(50)));
                    }
                }
            }
            reconcile = false;
            if let Some(e) = record.pending_effects.first_mut() {
                e.attempts += 1;
                if e.kind.is_post() {
                    // Durable before the request leaves: after a crash, the next incarnation
                    // knows an attempt may be in flight.
                    e.last_attempt_at = Some(self.deps.clock.now());
                    self.commit(record);
                    self.deps.store.flush().await.map_err(OutboxStop::Store)?;
                }
            }
            match self.send(&effect.kind).await {
                Ok(posted) => {
                    self.wrote.set(true);
                    self.deps.metrics.effect_sent(effect.kind.name());
                    machine::effect_sent(record, effect.id, posted);
                }
                Err(e)
                    if e.is_invalid_value_on("responder_id")
                        || e.is_invalid_value_on("group_id") =>
                {
                    if matches!(
                        &effect.kind,
                        EffectKind::UpdateTicket {
                            purpose: UpdatePurpose::Route { fallback: Some(_) },
                            ..
                        }
                    ) {
                        machine::route_rejected(
                            record,
                            effect.id,
                            &e.to_string(),
                            self.deps.clock.now(),
                        );
                    } else {
                        machine::effect_abandoned(
                            record,
                            effect.id,
                            &e.to_string(),
                            self.deps.clock.now(),
                        );
                    }
                }
                Err(e) if e.is_transient() => {
                    self.commit(record);
                    return Err(OutboxStop::Transient(e));
                }
                Err(e) => {
                    tracing::error!(org_id = %self.org_id, ticket_id = %self.ticket_id, effect = effect.kind.name(), error = %e, "write refused by Freshdesk; dropped");
                    machine::effect_abandoned(
                        record,
                        effect.id,
                        &e.to_string(),
                        self.deps.clock.now(),
                    );
                }
            }
            self.commit(record);
        }
        Ok(())
    }

    fn commit(&self, record: &TicketRecord) {
        if let Err(e) = self.deps.store.commit(record, &[]) {
            // The effect's outcome is lost only from memory of the store; reconciliation
            // finds posts again, updates are idempotent.
            tracing::error!(org_id = %self.org_id, ticket_id = %self.ticket_id, error = %e, "cannot store effect progress");
        }
    }

    /// Send one write; returns the post it created, if any. (Its `updated_at` change is not
    /// taken as read: a customer message in the same second must still look new to a sweep.)
    async fn send(&self, kind: &EffectKind) -> Result<Option<Posted>, FreshdeskError> {
        // Held until the write is answered: a disconnect waits for it, and none starts after.
        let Some(_write) = self.snapshot.gate.begin_write().await else {
            return Err(FreshdeskError::Cancelled);
        };
        let posted = |c: Conversation| {
            Some(Posted {
                id: c.id,
                body_text: text_of(&c),
                created_at: c.created_at,
            })
        };
        match kind {
            EffectKind::PostReply { body_html, .. } => Ok(posted(
                self.writer().reply(self.ticket_id, body_html).await?.value,
            )),
            EffectKind::PostNote { body_html, .. } => Ok(posted(
                self.writer()
                    .note(self.ticket_id, body_html, true)
                    .await?
                    .value,
            )),
            EffectKind::UpdateTicket { update, .. } => {
                self.writer().update_ticket(self.ticket_id, update).await?;
                Ok(None)
            }
        }
    }

    /// Look for a post of this effect among the ticket's AI conversations.
    async fn find_sent(
        &self,
        record: &TicketRecord,
        effect: &PendingEffect,
    ) -> Result<Option<Posted>, Transient> {
        let ai = self.snapshot.connection.agent.id.0;
        let mut page = 1;
        let mut candidates = Vec::new();
        loop {
            let result = match self.writer().conversations(self.ticket_id, page).await {
                Ok(p) => p.value,
                Err(FreshdeskError::NotFound) => return Ok(None),
                Err(e) => return Err(Transient(e)),
            };
            candidates.extend(
                result
                    .items
                    .into_iter()
                    .filter(|c| c.user_id == ai)
                    .map(|c| ObservedConversation {
                        id: c.id,
                        author: Author::Ai,
                        private: c.private,
                        note: c.source == 2,
                        body_text: text_of(&c),
                        created_at: c.created_at,
                    }),
            );
            if !result.has_next {
                break;
            }
            page += 1;
        }
        Ok(
            machine::find_sent_post(record, effect, &candidates).map(|c| Posted {
                id: c.id,
                body_text: c.body_text.clone(),
                created_at: c.created_at,
            }),
        )
    }
}
