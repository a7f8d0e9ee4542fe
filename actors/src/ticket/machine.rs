//! The ticket state machine: pure functions from a stored `TicketRecord` and an input (what
//! was observed in Freshdesk, the responder's decision, an effect's outcome, an admin
//! command) to the next record, with the writes to perform appended to its outbox.
//!
//! Nothing here does I/O or reads the clock: the caller passes `now`. A pass (`pass.rs`, with
//! `read.rs` and `outbox.rs`) only sequences these calls, persists the record and executes
//! the outbox; the actor (`actor.rs`) runs one pass at a time.

use super::state::*;
use crate::freshdesk::{TicketStatus, TicketUpdate};
use crate::ids::{AgentId, ConversationId, EffectId};
use crate::org::{Channel, ChannelMode, OrgSettings, Routing};
use crate::session::*;
use crate::SessionId;
use chrono::{DateTime, SubsecRound, Utc};
use serde_json::Value;

/// Tags added once per answered ticket.
pub const TAG_BASE: &str = "opencx";
/// Tag of autopilot tickets.
pub const TAG_AUTOPILOT: &str = "opencx_autopilot";
/// Tag of assist-mode tickets.
pub const TAG_ASSIST: &str = "opencx_assist_mode";

/// The org-wide facts a decision needs (a snapshot published by the org actor).
#[derive(Debug, Clone)]
pub struct OrgView<'a> {
    pub settings: &'a OrgSettings,
    pub ai_agent: AgentId,
    pub first_connected_at: DateTime<Utc>,
    pub max_ai_answers: u32,
}

/// The ticket as re-read from Freshdesk.
#[derive(Debug, Clone, PartialEq)]
pub struct ObservedTicket {
    pub subject: String,
    pub description_text: String,
    pub status: TicketStatus,
    pub status_name: String,
    pub source: u8,
    pub tags: Vec<String>,
    pub responder_id: Option<AgentId>,
    pub group_id: Option<crate::GroupId>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A conversation with its author already resolved through the agent directory.
#[derive(Debug, Clone, PartialEq)]
pub struct ObservedConversation {
    pub id: ConversationId,
    pub author: Author,
    pub private: bool,
    pub note: bool,
    pub body_text: String,
    pub created_at: DateTime<Utc>,
}

/// One re-read: the ticket and its conversations not yet mirrored, in Freshdesk order.
#[derive(Debug, Clone, PartialEq)]
pub struct Observation {
    pub ticket: ObservedTicket,
    pub conversations: Vec<ObservedConversation>,
    /// Conversations Freshdesk holds in all (to start the next read at the right page).
    pub conversations_total: u32,
    /// When the conversations were listed, if that was before the ticket was read
    /// (`ReadPlan::ConversationsFirst`): the read is complete only up to then, so the
    /// watermark claims no later read. None: the ticket was read first.
    pub conversations_listed_first_at: Option<DateTime<Utc>>,
}

/// What a re-read fetches from Freshdesk for a run of hints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadPlan {
    /// The ticket, then the conversations not yet mirrored.
    Full,
    /// The conversations not yet mirrored; the ticket too, and a decision, only when one is
    /// found. Nothing new found: the hints were echoes of the AI's own posts or duplicates,
    /// and nothing is read or decided.
    ConversationsFirst,
}

/// Hints that say "a conversation was added" (a reply, the customer's or an agent's, or a note;
/// when the same update also changed the status, the new conversation makes the read full), or
/// "the ticket was created" (read when it was gated: only its conversations can be new).
const CONVERSATION_HINTS: [&str; 5] = [
    "{reply_sent:sent}",
    "{note_type:public}",
    "{note_type:private}",
    "{ticket_action:created}",
    "ticket_created",
];

/// How to re-read a tracked ticket for a run of hints (`None`: a hint without a
/// `triggered_event`, e.g. the sweep's). Only the conversations are listed first when every
/// hint can only mean a conversation was added, the ticket is tracked and nothing already
/// mirrored still waits for an answer (a message kept for a reopening needs the status);
/// anything else (a status change, an unknown hint, the sweep, a new ticket) reads in full.
/// Any new conversation found still leads to the ticket read and a decision on the whole
/// thread, so no customer message is decided on without it or hidden behind an echo.
pub fn read_plan<'h>(
    record: Option<&TicketRecord>,
    hints: impl IntoIterator<Item = Option<&'h str>>,
) -> ReadPlan {
    let Some(record) = record else {
        return ReadPlan::Full;
    };
    if record.session.is_none() {
        return ReadPlan::Full;
    }
    let waiting = awaits_consideration(record);
    let conversation_hints = hints
        .into_iter()
        .all(|h| h.is_some_and(|h| CONVERSATION_HINTS.contains(&h.trim())));
    if record.gate.decision == GateOutcome::Tracked && !waiting && conversation_hints {
        ReadPlan::ConversationsFirst
    } else {
        ReadPlan::Full
    }
}

/// Conversations Freshdesk lists per page.
pub const CONVERSATIONS_PER_PAGE: u32 = 100;

/// The page a conversations listing starts at, `seen` conversations mirrored: the one holding
/// the last of them, so a listing that has not shrunk starts with one already mirrored.
pub fn first_conversations_page(seen: u32) -> u32 {
    seen.saturating_sub(1) / CONVERSATIONS_PER_PAGE + 1
}

/// Whether a listing that starts at `page` must also list the page before it: it starts with a
/// conversation not mirrored, or is empty (`first_mirrored` None), so Freshdesk deleted some
/// since the last read, the later ones moved up, and a new one may sit on an earlier page.
pub fn list_page_before(page: u32, first_mirrored: Option<bool>) -> bool {
    page > 1 && first_mirrored != Some(true)
}

/// What the responder is asked.
#[derive(Debug, Clone, PartialEq)]
pub struct ResponderRequest {
    pub channel: Channel,
    pub subject: String,
    /// The public thread, oldest first.
    pub transcript: Vec<Message>,
}

/// The responder's answer (contract §5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Reply {
        text: String,
    },
    Handoff {
        reason: HandoffReason,
        summary: String,
    },
    Resolve {
        text: String,
    },
}

/// What a step asks of the caller besides executing the outbox.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Step {
    /// Ask the responder, then feed its decision to `respond`.
    pub ask: Option<ResponderRequest>,
}

/// Whether a ticket created at `created_at` predates the org's first connection: such a
/// ticket is history (only the backfill imports it), not live traffic. Freshdesk's
/// timestamps have whole seconds, so the connection time is truncated to its second.
pub fn predates_connection(created_at: DateTime<Utc>, first_connected_at: DateTime<Utc>) -> bool {
    created_at < first_connected_at.trunc_subsecs(0)
}

/// Whether a ticket in this Freshdesk status is open or pending (what the backfill imports).
pub fn open_or_pending(status: impl Into<TicketStatus>) -> bool {
    status.into().is_open_or_pending()
}

/// Whether the backfill queues an import for a listed ticket: open or pending, updated
/// within the backfill window, and created before the connection (tickets created after it
/// are live traffic, not history).
pub fn backfill_wants(
    status: impl Into<TicketStatus>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    window_start: DateTime<Utc>,
    first_connected_at: DateTime<Utc>,
) -> bool {
    open_or_pending(status)
        && updated_at >= window_start
        && predates_connection(created_at, first_connected_at)
}

/// Whether an import may (re)decide about a ticket: ticketsync never decided about it, or
/// ignored it only because it predates the connection. A ticket live traffic already
/// decided about is left alone.
pub fn import_eligible(record: Option<&TicketRecord>) -> bool {
    record.is_none_or(|r| {
        r.gate.decision == GateOutcome::Ignored && r.gate.reason == GateReason::PredatesConnection
    })
}

/// The tag of the setup self-test's test ticket: the gates ignore a ticket that carries it.
pub const SELF_TEST_TAG: &str = "ticketsync-self-test";

/// The self-test's ticket, ignored before any other rule.
fn self_test_ticket(ticket: &ObservedTicket, now: DateTime<Utc>) -> Option<GateDecision> {
    ticket
        .tags
        .iter()
        .any(|t| t == SELF_TEST_TAG)
        .then_some(GateDecision {
            decision: GateOutcome::Ignored,
            reason: GateReason::SelfTest,
            at: now,
        })
}

/// The intake gate for a ticket ticketsync has never decided about (contract §4.1).
pub fn gate(ticket: &ObservedTicket, org: &OrgView<'_>, now: DateTime<Utc>) -> GateDecision {
    if let Some(ignored) = self_test_ticket(ticket, now) {
        return ignored;
    }
    if predates_connection(ticket.created_at, org.first_connected_at) {
        return GateDecision {
            decision: GateOutcome::Ignored,
            reason: GateReason::PredatesConnection,
            at: now,
        };
    }
    let (decision, reason) = assignment_gate(ticket, org);
    GateDecision {
        decision,
        reason: GateReason::Assignment(reason),
        at: now,
    }
}

/// The gate for a backfilled ticket: the assignment rule only (it predates the connection
/// by nature).
pub fn import_gate(ticket: &ObservedTicket, org: &OrgView<'_>, now: DateTime<Utc>) -> GateDecision {
    if let Some(ignored) = self_test_ticket(ticket, now) {
        return ignored;
    }
    let (decision, reason) = assignment_gate(ticket, org);
    GateDecision {
        decision,
        reason: GateReason::Backfill(reason),
        at: now,
    }
}

fn assignment_gate(ticket: &ObservedTicket, org: &OrgView<'_>) -> (GateOutcome, AssignmentReason) {
    if org.settings.auto_handle_all {
        (GateOutcome::Tracked, AssignmentReason::AutoHandleAll)
    } else if ticket.responder_id == Some(org.ai_agent) {
        (GateOutcome::Tracked, AssignmentReason::AssignedToAi)
    } else if ticket.group_id.is_some() && ticket.group_id == org.settings.default_group_id {
        (GateOutcome::Tracked, AssignmentReason::DefaultGroup)
    } else {
        (GateOutcome::Ignored, AssignmentReason::NotAssigned)
    }
}

/// The responder failed (an error, a timeout, an unusable answer): the ticket is handed off
/// to a human with the transcript's summary and why the AI could not answer.
pub fn responder_failed(request: &ResponderRequest, error: &str) -> Decision {
    Decision::Handoff {
        reason: HandoffReason::Other,
        summary: format!(
            "{} The AI could not answer ({error}).",
            summarize(&request.transcript)
        ),
    }
}

/// Start the session of a newly tracked (or imported) ticket: its description is the first
/// customer message. Imported sessions are history: nothing in them is answered.
pub fn start_session(
    record: &mut TicketRecord,
    ticket: &ObservedTicket,
    imported: bool,
    now: DateTime<Utc>,
) {
    let session = Session {
        id: SessionId::new(),
        ticket_id: record.ticket_id,
        channel: Channel::from_source(ticket.source),
        subject: ticket.subject.clone(),
        state: SessionState::AiActive,
        freshdesk_status: StatusView {
            id: ticket.status.id(),
            name: ticket.status_name.clone(),
        },
        imported,
        created_at: now,
        updated_at: now,
        handoff: None,
        messages: vec![Message {
            conversation_id: None,
            author: Author::Contact,
            private: false,
            note: false,
            body_text: ticket.description_text.clone(),
            created_at: ticket.created_at,
        }],
    };
    if imported {
        record.ai.considered = session.messages.len();
    }
    record.session = Some(session);
}

/// Mirror a re-read into the session, then decide whether the AI answers.
pub fn observe(
    record: &mut TicketRecord,
    observation: &Observation,
    org: &OrgView<'_>,
    now: DateTime<Utc>,
) -> Step {
    mirror(record, observation, now);
    consider_answer(record, org, now)
}

/// Import a backfilled ticket's thread as history: mirrored, nothing answered.
pub fn import_history(record: &mut TicketRecord, observation: &Observation, now: DateTime<Utc>) {
    mirror(record, observation, now);
    if let Some(session) = record.session.as_ref() {
        record.ai.considered = session.messages.len();
    }
}

/// Copy what Freshdesk shows (subject, status, new conversations) into the session. A human
/// agent's public reply makes an AI-active session human-active.
fn mirror(record: &mut TicketRecord, observation: &Observation, now: DateTime<Utc>) {
    let Some(session) = record.session.as_mut() else {
        return;
    };
    let ticket = &observation.ticket;
    let mut changed =
        session.subject != ticket.subject || session.freshdesk_status.id != ticket.status.id();
    session.subject = ticket.subject.clone();
    session.freshdesk_status = StatusView {
        id: ticket.status.id(),
        name: ticket.status_name.clone(),
    };
    // Conversations mirrored before this read (the AI's own posts among them, mirrored when
    // sent): a conversation read now that Freshdesk created before one of them goes before it.
    let earlier: Vec<ConversationId> = session
        .messages
        .iter()
        .filter_map(|m| m.conversation_id)
        .collect();
    for c in &observation.conversations {
        if session
            .messages
            .iter()
            .any(|m| m.conversation_id == Some(c.id))
        {
            continue;
        }
        changed = true;
        if c.author == Author::Agent
            && !c.private
            && !c.note
            && session.state == SessionState::AiActive
        {
            session.state = SessionState::HumanActive;
        }
        place_in_order(
            &mut session.messages,
            &mut record.ai.considered,
            message_of(c),
            |id| earlier.contains(&id),
        );
        record.watermark.last_conversation_id =
            record.watermark.last_conversation_id.max(Some(c.id));
    }
    record.watermark.ticket_updated_at = Some(ticket.updated_at);
    record.watermark.read_at = Some(observation.conversations_listed_first_at.unwrap_or(now));
    record.watermark.conversations_seen = observation.conversations_total;
    record.watermark.tags = ticket.tags.clone();
    if changed {
        session.updated_at = now;
    }
}

/// Whether the AI should answer now; hands off at the turn limit.
fn consider_answer(record: &mut TicketRecord, org: &OrgView<'_>, now: DateTime<Utc>) -> Step {
    let Some(session) = record.session.as_ref() else {
        return Step::default();
    };
    let len = session.messages.len();
    let waiting = awaits_consideration(record);
    let mode = org.settings.channels.mode_for(session.channel);
    if !waiting || session.state != SessionState::AiActive || mode == ChannelMode::Off {
        record.ai.considered = len;
        return Step::default();
    }
    if is_resolved_or_closed(session.freshdesk_status.id) {
        // Kept unconsidered: answered if the ticket is reopened.
        return Step::default();
    }
    if record.ai.answers >= org.max_ai_answers {
        let summary = summarize(&session.messages);
        handoff(
            record,
            HandoffReason::TurnLimit,
            &summary,
            Some(format!(
                "the AI answered {} times on this ticket, the configured limit",
                record.ai.answers
            )),
            org,
            now,
        );
        return Step::default();
    }
    Step {
        ask: Some(ResponderRequest {
            channel: session.channel,
            subject: session.subject.clone(),
            transcript: session
                .messages
                .iter()
                .filter(|m| !m.private)
                .cloned()
                .collect(),
        }),
    }
}

/// Apply the responder's decision: queue the answer, the resolution or the handoff.
pub fn respond(
    record: &mut TicketRecord,
    decision: Decision,
    org: &OrgView<'_>,
    now: DateTime<Utc>,
) {
    let Some(session) = record.session.as_ref() else {
        return;
    };
    if session.state != SessionState::AiActive {
        return;
    }
    record.ai.considered = session.messages.len();
    match decision {
        Decision::Reply { text } => {
            let mode = org.settings.channels.mode_for(session.channel);
            let kind = match mode {
                ChannelMode::Off => return,
                ChannelMode::Assist => {
                    let body = match org.settings.assist_footer.as_deref() {
                        Some(footer) => format!("{text}\n\n{footer}"),
                        None => text,
                    };
                    EffectKind::PostNote {
                        body_html: text_to_html(&body),
                        body_text: body,
                        purpose: NotePurpose::AssistDraft,
                    }
                }
                ChannelMode::Autopilot => EffectKind::PostReply {
                    body_html: text_to_html(&text),
                    body_text: text,
                },
            };
            push_effect(record, kind, now);
            record.ai.answers += 1;
            if !record.ai.tagged {
                let mode_tag = if mode == ChannelMode::Assist {
                    TAG_ASSIST
                } else {
                    TAG_AUTOPILOT
                };
                let mut tags = record.watermark.tags.clone();
                for tag in [TAG_BASE, mode_tag] {
                    if !tags.iter().any(|t| t == tag) {
                        tags.push(tag.to_string());
                    }
                }
                push_effect(
                    record,
                    EffectKind::UpdateTicket {
                        update: TicketUpdate {
                            tags: Some(tags),
                            ..TicketUpdate::default()
                        },
                        purpose: UpdatePurpose::Tag,
                    },
                    now,
                );
                record.ai.tagged = true;
            }
        }
        Decision::Resolve { text } => {
            let body = format!("Resolved by the AI agent.\n\n{text}");
            push_effect(
                record,
                EffectKind::PostNote {
                    body_html: text_to_html(&body),
                    body_text: body,
                    purpose: NotePurpose::Resolution,
                },
                now,
            );
            push_effect(
                record,
                EffectKind::UpdateTicket {
                    update: TicketUpdate {
                        status: Some(TicketStatus::Resolved),
                        ..TicketUpdate::default()
                    },
                    purpose: UpdatePurpose::Resolve,
                },
                now,
            );
        }
        Decision::Handoff { reason, summary } => {
            handoff(record, reason, &summary, None, org, now);
        }
    }
    if let Some(session) = record.session.as_mut() {
        session.updated_at = now;
    }
}

/// Hand the ticket to humans: a private note, then one routing update (contract §4.6).
/// Does nothing when the ticket is already handed off.
pub fn handoff(
    record: &mut TicketRecord,
    reason: HandoffReason,
    summary: &str,
    detail: Option<String>,
    org: &OrgView<'_>,
    now: DateTime<Utc>,
) {
    let Some(session) = record.session.as_mut() else {
        return;
    };
    if session.state == SessionState::HandedOff {
        return;
    }
    let plan = &org.settings.handoff;
    let mut note = format!(
        "Handed off to a human agent by the AI.\nReason: {}\nSummary: {}",
        reason.as_str(),
        summary
    );
    if let Some(detail) = &detail {
        note.push_str(&format!("\nDetail: {detail}"));
    }
    let marker = plan
        .marker_field
        .as_ref()
        .map(|m| serde_json::Map::from_iter([(m.clone(), Value::Bool(true))]));
    // Reopened and assigned to `responder` (None: unassigned).
    let assign = |responder: Option<AgentId>| TicketUpdate {
        responder_id: Some(responder),
        status: Some(TicketStatus::Open),
        ..TicketUpdate::default()
    };
    let with_marker = |update: TicketUpdate| TicketUpdate {
        custom_fields: marker.clone(),
        ..update
    };
    let (update, target) = match plan.routing {
        Routing::Unassign => (assign(None), None),
        Routing::Automation => (with_marker(assign(None)), None),
        Routing::Agent => (
            with_marker(assign(plan.agent_id)),
            plan.agent_id.map(|a| a.0),
        ),
        Routing::Group => (
            with_marker(TicketUpdate {
                group_id: Some(plan.group_id),
                ..assign(None)
            }),
            plan.group_id.map(|g| g.0),
        ),
    };
    let fallback =
        matches!(plan.routing, Routing::Agent | Routing::Group).then(|| with_marker(assign(None)));
    session.state = SessionState::HandedOff;
    session.updated_at = now;
    session.handoff = Some(HandoffRecord {
        at: now,
        reason,
        routing: plan.routing,
        target,
        fallback_used: false,
        detail,
    });
    record.ai.considered = session.messages.len();
    push_effect(
        record,
        EffectKind::PostNote {
            body_html: text_to_html(&note),
            body_text: note,
            purpose: NotePurpose::Handoff,
        },
        now,
    );
    push_effect(
        record,
        EffectKind::UpdateTicket {
            update,
            purpose: UpdatePurpose::Route { fallback },
        },
        now,
    );
}

/// An admin gives the ticket back to the AI: AI-active, handoff cleared, turn count reset.
/// Messages already in the thread are not answered; the next customer message is.
pub fn resume(record: &mut TicketRecord, now: DateTime<Utc>) {
    let Some(session) = record.session.as_mut() else {
        return;
    };
    session.state = SessionState::AiActive;
    session.handoff = None;
    session.updated_at = now;
    record.ai.considered = session.messages.len();
    record.ai.answers = 0;
}

/// What Freshdesk returned for a post: the conversation it created.
#[derive(Debug, Clone, PartialEq)]
pub struct Posted {
    pub id: ConversationId,
    pub body_text: String,
    pub created_at: DateTime<Utc>,
}

/// An effect was sent: drop it from the outbox and mirror the post as an AI message.
pub fn effect_sent(record: &mut TicketRecord, id: EffectId, posted: Option<Posted>) {
    let Some(index) = record.pending_effects.iter().position(|e| e.id == id) else {
        return;
    };
    let effect = record.pending_effects.remove(index);
    record.retries = 0;
    let (Some(posted), Some(session)) = (posted, record.session.as_mut()) else {
        return;
    };
    if session
        .messages
        .iter()
        .any(|m| m.conversation_id == Some(posted.id))
    {
        return;
    }
    let private = matches!(effect.kind, EffectKind::PostNote { .. });
    let message = Message {
        conversation_id: Some(posted.id),
        author: Author::Ai,
        private,
        note: private,
        body_text: posted.body_text,
        created_at: posted.created_at,
    };
    place_in_order(
        &mut session.messages,
        &mut record.ai.considered,
        message,
        |_| true,
    );
    record.watermark.last_conversation_id =
        record.watermark.last_conversation_id.max(Some(posted.id));
}

/// Put a mirrored conversation into the session in Freshdesk's order: before the first of the
/// `earlier` conversations created after it (by Freshdesk's `created_at`, then by id, which
/// grows with creation: timestamps have one-second resolution), else at the end.
/// `considered` keeps covering the same messages: a message placed inside it that awaits an
/// answer was never considered, so the prefix ends before it; any other message placed inside
/// it or at its edge joins it.
fn place_in_order(
    messages: &mut Vec<Message>,
    considered: &mut usize,
    message: Message,
    earlier: impl Fn(ConversationId) -> bool,
) {
    let key = |m: &Message| (m.created_at, m.conversation_id);
    let at = messages
        .iter()
        .position(|m| m.conversation_id.is_some_and(&earlier) && key(m) > key(&message))
        .unwrap_or(messages.len());
    if awaits_answer(&message) {
        *considered = (*considered).min(at);
    } else if at <= *considered {
        *considered += 1;
    }
    messages.insert(at, message);
}

/// A message the AI answers: public, from the customer.
fn awaits_answer(m: &Message) -> bool {
    m.author == Author::Contact && !m.private
}

/// Whether a mirrored customer message has not been considered for an answer yet (one kept for
/// a reopening included). The answer decision and the read plan both rest on this one check.
fn awaits_consideration(record: &TicketRecord) -> bool {
    record.session.as_ref().is_some_and(|session| {
        session.messages[record.ai.considered.min(session.messages.len())..]
            .iter()
            .any(awaits_answer)
    })
}

/// Freshdesk rejected a routing target (400 `invalid_value` on `responder_id`/`group_id`):
/// queue the fallback routing and record why.
pub fn route_rejected(record: &mut TicketRecord, id: EffectId, why: &str, now: DateTime<Utc>) {
    let Some(index) = record.pending_effects.iter().position(|e| e.id == id) else {
        return;
    };
    let effect = record.pending_effects.remove(index);
    let EffectKind::UpdateTicket {
        purpose: UpdatePurpose::Route {
            fallback: Some(fallback),
        },
        ..
    } = effect.kind
    else {
        return;
    };
    if let Some(handoff) = record.session.as_mut().and_then(|s| s.handoff.as_mut()) {
        handoff.fallback_used = true;
        let note = format!("fallback to unassign: {why}");
        handoff.detail = Some(match handoff.detail.take() {
            Some(d) => format!("{d}; {note}"),
            None => note,
        });
    }
    push_effect(
        record,
        EffectKind::UpdateTicket {
            update: fallback,
            purpose: UpdatePurpose::RouteFallback,
        },
        now,
    );
}

/// Freshdesk refused the assignee of a write (400 `invalid_value` on `responder_id` or
/// `group_id`): a handoff's routing with a fallback falls back (`route_rejected`); any other
/// write is abandoned (`effect_abandoned`).
pub fn assignee_rejected(
    record: &mut TicketRecord,
    effect: &PendingEffect,
    why: &str,
    now: DateTime<Utc>,
) {
    if matches!(
        &effect.kind,
        EffectKind::UpdateTicket {
            purpose: UpdatePurpose::Route { fallback: Some(_) },
            ..
        }
    ) {
        route_rejected(record, effect.id, why, now);
    } else {
        effect_abandoned(record, effect.id, why, now);
    }
}

/// How long to wait before a post not found in Freshdesk may be sent again: an earlier
/// attempt started less than `settle` ago (request timeout plus a margin) may still land.
/// None: it may be sent now.
pub fn resend_wait(
    effect: &PendingEffect,
    settle: std::time::Duration,
    now: DateTime<Utc>,
) -> Option<std::time::Duration> {
    let started = effect.last_attempt_at?;
    let settled_at = started + chrono::Duration::from_std(settle).unwrap_or_default();
    (now < settled_at).then(|| (settled_at - now).to_std().unwrap_or_default())
}

/// The org is disconnected: nothing more is posted. Drops the whole outbox and records why;
/// returns whether there was anything to cancel (the record changed).
pub fn cancel_outbox_on_disconnect(record: &mut TicketRecord, now: DateTime<Utc>) -> bool {
    if record.pending_effects.is_empty() {
        return false;
    }
    record.pending_effects.clear();
    record.last_error = Some(ErrorNote {
        at: now,
        message: "pending writes cancelled: the organization is disconnected".into(),
    });
    true
}

/// An effect failed for good (e.g. the ticket was deleted): drop it and remember why.
pub fn effect_abandoned(record: &mut TicketRecord, id: EffectId, why: &str, now: DateTime<Utc>) {
    record.pending_effects.retain(|e| e.id != id);
    record.last_error = Some(ErrorNote {
        at: now,
        message: why.to_string(),
    });
}

/// After a crash or an ambiguous failure (timeout, 5xx) a post may have reached Freshdesk.
/// Find the AI conversation that matches a pending post: written by the AI agent after the
/// effect was recorded (a conversation id above those then known), of the same kind (public
/// reply or private note), not already mirrored, and with our text once both are normalised
/// (entities decoded, whitespace ignored; a signature Freshdesk appended is allowed).
pub fn find_sent_post<'a>(
    record: &TicketRecord,
    effect: &PendingEffect,
    ai_conversations: &'a [ObservedConversation],
) -> Option<&'a ObservedConversation> {
    let (body_text, note) = match &effect.kind {
        EffectKind::PostReply { body_text, .. } => (body_text, false),
        EffectKind::PostNote { body_text, .. } => (body_text, true),
        EffectKind::UpdateTicket { .. } => return None,
    };
    let wanted = comparable(body_text);
    // Freshdesk may append the agent's signature: what it stored starts with our text.
    let ours = |text: &str| {
        let found = comparable(text);
        found == wanted || (!wanted.is_empty() && found.starts_with(&wanted))
    };
    let known = |id: ConversationId| {
        record
            .session
            .as_ref()
            .is_some_and(|s| s.messages.iter().any(|m| m.conversation_id == Some(id)))
    };
    let after_recording = |c: &ObservedConversation| match effect.recorded_after {
        Some(known) => known.last_id.is_none_or(|last| c.id > last),
        // Stored before the ids were kept: Freshdesk's time against ours, with a margin for
        // one-second timestamps and a little skew.
        None => c.created_at >= effect.created_at.trunc_subsecs(0) - chrono::Duration::seconds(2),
    };
    // Our notes are private, our replies public.
    ai_conversations.iter().find(|c| {
        c.author == Author::Ai
            && c.note == note
            && c.private == note
            && after_recording(c)
            && !known(c.id)
            && ours(&c.body_text)
    })
}

/// Text reduced to what survives Freshdesk's handling of a post (sanitising, re-encoding,
/// re-wrapping): entities decoded, whitespace dropped.
fn comparable(text: &str) -> String {
    decode_entities(text)
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect()
}

fn push_effect(record: &mut TicketRecord, kind: EffectKind, now: DateTime<Utc>) {
    record.pending_effects.push(PendingEffect {
        id: EffectId::new(),
        kind,
        attempts: 0,
        created_at: now,
        last_attempt_at: None,
        recorded_after: Some(KnownConversations {
            last_id: record.watermark.last_conversation_id,
        }),
    });
}

fn message_of(c: &ObservedConversation) -> Message {
    Message {
        conversation_id: Some(c.id),
        author: c.author,
        private: c.private,
        note: c.note,
        body_text: c.body_text.clone(),
        created_at: c.created_at,
    }
}

/// A short summary of the thread for the handoff note.
pub fn summarize(messages: &[Message]) -> String {
    let contact: Vec<&Message> = messages
        .iter()
        .filter(|m| m.author == Author::Contact)
        .collect();
    let clip = |m: &Message| {
        let text: String = m.body_text.split_whitespace().collect::<Vec<_>>().join(" ");
        if text.chars().count() > 200 {
            format!("{}…", text.chars().take(200).collect::<String>())
        } else {
            text
        }
    };
    match (contact.first(), contact.last()) {
        (Some(first), Some(last)) if contact.len() > 1 => format!(
            "{} messages in the thread. The customer first wrote: \"{}\". Latest: \"{}\".",
            messages.len(),
            clip(first),
            clip(last)
        ),
        (Some(first), _) => format!(
            "{} messages in the thread. The customer wrote: \"{}\".",
            messages.len(),
            clip(first)
        ),
        _ => format!("{} messages in the thread.", messages.len()),
    }
}

/// Plain text as Freshdesk HTML: escaped, paragraphs on blank lines, `<br>` on single ones.
pub fn text_to_html(text: &str) -> String {
    let escape = |s: &str| {
        s.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
            .replace('"', "&quot;")
    };
    text.split("\n\n")
        .filter(|p| !p.trim().is_empty())
        .map(|p| format!("<p>{}</p>", escape(p.trim()).replace('\n', "<br>")))
        .collect()
}

/// The plain text of a Freshdesk HTML body, as Freshdesk derives `body_text`: tags dropped
/// (line-breaking ones become newlines), entities decoded, lines trimmed, blank lines
/// collapsed.
pub fn html_to_text(html: &str) -> String {
    const LINE_BREAKING: [&str; 6] = ["br", "/p", "/div", "/li", "/tr", "/blockquote"];
    let mut text = String::with_capacity(html.len());
    let mut rest = html;
    while let Some(start) = rest.find('<') {
        text.push_str(&rest[..start]);
        let Some(end) = rest[start..].find('>') else {
            // An unterminated `<` is text.
            text.push_str(&rest[start..]);
            rest = "";
            break;
        };
        let tag = rest[start + 1..start + end]
            .trim()
            .trim_end_matches('/')
            .split_whitespace()
            .next()
            .unwrap_or("")
            .to_ascii_lowercase();
        if LINE_BREAKING.contains(&tag.as_str()) {
            text.push('\n');
        }
        rest = &rest[start + end + 1..];
    }
    text.push_str(rest);
    let decoded = decode_entities(&text);
    let mut lines: Vec<&str> = Vec::new();
    for line in decoded.lines().map(str::trim) {
        if !(line.is_empty() && lines.last().is_none_or(|l| l.is_empty())) {
            lines.push(line);
        }
    }
    lines.join("\n").trim().to_string()
}

/// Decode HTML entities: the named ones Freshdesk emits, and numeric ones.
fn decode_entities(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        let after = &rest[amp + 1..];
        let decoded = after
            .find(';')
            .filter(|&semi| semi <= 10)
            .and_then(|semi| decode_entity(&after[..semi]).map(|c| (c, semi)));
        match decoded {
            Some((c, semi)) => {
                out.push(c);
                rest = &after[semi + 1..];
            }
            None => {
                out.push('&');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

fn decode_entity(name: &str) -> Option<char> {
    match name {
        "amp" => Some('&'),
        "lt" => Some('<'),
        "gt" => Some('>'),
        "quot" => Some('"'),
        "apos" => Some('\''),
        "nbsp" => Some('\u{a0}'),
        _ => {
            let number = name.strip_prefix('#')?;
            let code = match number.strip_prefix(['x', 'X']) {
                Some(hex) => u32::from_str_radix(hex, 16).ok()?,
                None => number.parse().ok()?,
            };
            char::from_u32(code)
        }
    }
}

#[cfg(test)]
#[path = "machine_tests.rs"]
mod tests;
