//! What the engine stores per ticket: the gate decision, the session, the AI's progress, the
//! read watermark and the outbox of effects not yet confirmed sent. One record, written
//! atomically, so a crash leaves either the state before or the state after a step.

use crate::freshdesk::TicketUpdate;
use crate::ids::{ConversationId, EffectId, OrgId, TicketId};
use crate::session::Session;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// The intake gate's decision about a ticket (contract §4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GateOutcome {
    Tracked,
    Ignored,
}

/// A gate decision with its reason, kept for inspection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GateDecision {
    pub decision: GateOutcome,
    pub reason: GateReason,
    pub at: DateTime<Utc>,
}

/// Why the gate decided as it did. Stored (and shown by inspection) as its text, exactly as
/// older versions stored the plain string; a text this version does not know is kept as is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "String", into = "String")]
pub enum GateReason {
    /// Tagged by ticketsync's setup self-test: never tracked, never answered, live or
    /// backfilled, whatever the other rules say.
    SelfTest,
    /// Created before the organization connected (the backfill may still import it).
    PredatesConnection,
    /// The assignment rule, for a ticket created after the connection.
    Assignment(AssignmentReason),
    /// The assignment rule, for a ticket imported by the backfill.
    Backfill(AssignmentReason),
    /// A text this version does not produce (kept verbatim).
    Other(String),
}

/// What the gate's assignment rule found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AssignmentReason {
    AutoHandleAll,
    AssignedToAi,
    DefaultGroup,
    NotAssigned,
}

impl AssignmentReason {
    const ALL: [Self; 4] = [
        Self::AutoHandleAll,
        Self::AssignedToAi,
        Self::DefaultGroup,
        Self::NotAssigned,
    ];

    fn text(self) -> &'static str {
        match self {
            Self::AutoHandleAll => "auto_handle_all is on",
            Self::AssignedToAi => "assigned to the AI agent",
            Self::DefaultGroup => "in the default group",
            Self::NotAssigned => "auto_handle_all is off and the ticket is neither assigned to the AI agent nor in the default group",
        }
    }

    fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.text() == text)
    }
}

impl GateReason {
    /// Stored text of `PredatesConnection`.
    const PREDATES_CONNECTION: &'static str =
        "created before the organization connected and not imported by the backfill";
    /// Prefix of `Backfill` texts.
    const BACKFILL: &'static str = "backfill: ";
    /// Stored text of `SelfTest`.
    const SELF_TEST: &'static str = "self-test ticket";
}

impl std::fmt::Display for GateReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::SelfTest => f.write_str(Self::SELF_TEST),
            Self::PredatesConnection => f.write_str(Self::PREDATES_CONNECTION),
            Self::Assignment(r) => f.write_str(r.text()),
            Self::Backfill(r) => write!(f, "{}{}", Self::BACKFILL, r.text()),
            Self::Other(text) => f.write_str(text),
        }
    }
}

impl From<&str> for GateReason {
    fn from(text: &str) -> Self {
        if text == Self::SELF_TEST {
            return Self::SelfTest;
        }
        if text == Self::PREDATES_CONNECTION {
            return Self::PredatesConnection;
        }
        if let Some(r) = AssignmentReason::parse(text) {
            return Self::Assignment(r);
        }
        if let Some(r) = text
            .strip_prefix(Self::BACKFILL)
            .and_then(AssignmentReason::parse)
        {
            return Self::Backfill(r);
        }
        Self::Other(text.to_string())
    }
}

impl From<String> for GateReason {
    fn from(text: String) -> Self {
        Self::from(text.as_str())
    }
}

impl From<GateReason> for String {
    fn from(reason: GateReason) -> Self {
        reason.to_string()
    }
}

impl PartialEq<&str> for GateReason {
    fn eq(&self, other: &&str) -> bool {
        match self {
            Self::SelfTest => *other == Self::SELF_TEST,
            Self::PredatesConnection => *other == Self::PREDATES_CONNECTION,
            Self::Assignment(r) => *other == r.text(),
            Self::Backfill(r) => other.strip_prefix(Self::BACKFILL) == Some(r.text()),
            Self::Other(text) => text == other,
        }
    }
}

/// How far the engine has read the ticket.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Watermark {
    /// The highest conversation id mirrored.
    pub last_conversation_id: Option<ConversationId>,
    /// Freshdesk's `updated_at` at the last re-read.
    pub ticket_updated_at: Option<DateTime<Utc>>,
    /// When that re-read happened (our clock).
    #[serde(default)]
    pub read_at: Option<DateTime<Utc>>,
    /// Conversations mirrored, used to start the next read at the right page.
    #[serde(default)]
    pub conversations_seen: u32,
    /// The ticket's tags at the last re-read (a tag update must send the whole list).
    #[serde(default)]
    pub tags: Vec<String>,
}

/// What the AI has done on the ticket.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AiProgress {
    /// AI answers posted (reply or assist note), for the turn limit.
    pub answers: u32,
    /// Messages (a prefix of the session's) already considered for an answer.
    pub considered: usize,
    /// Whether the ticket got its `opencx` tags.
    pub tagged: bool,
}

/// Why a note is posted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NotePurpose {
    /// The AI's answer as a private draft (assist mode).
    AssistDraft,
    /// The resolution note before the status is set to Resolved.
    Resolution,
    /// The handoff note before routing.
    Handoff,
}

/// Why a ticket update is sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "purpose")]
pub enum UpdatePurpose {
    /// Add the `opencx` tags.
    Tag,
    /// Set status Resolved.
    Resolve,
    /// Handoff routing; `fallback` is sent instead when Freshdesk rejects the target.
    Route { fallback: Option<TicketUpdate> },
    /// The fallback routing itself.
    RouteFallback,
}

/// An outbound write.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum EffectKind {
    /// `POST /tickets/{id}/reply`.
    PostReply {
        body_html: String,
        body_text: String,
    },
    /// `POST /tickets/{id}/notes` (private).
    PostNote {
        body_html: String,
        body_text: String,
        purpose: NotePurpose,
    },
    /// `PUT /tickets/{id}`.
    UpdateTicket {
        update: TicketUpdate,
        #[serde(flatten)]
        purpose: UpdatePurpose,
    },
}

impl EffectKind {
    /// A short stable name for inspection and metrics.
    pub fn name(&self) -> &'static str {
        match self {
            Self::PostReply { .. } => "post_reply",
            Self::PostNote { .. } => "post_note",
            Self::UpdateTicket { .. } => "update_ticket",
        }
    }

    /// Whether sending it twice would show the customer or agents a duplicate (posts), as
    /// opposed to an idempotent update.
    pub fn is_post(&self) -> bool {
        !matches!(self, Self::UpdateTicket { .. })
    }
}

/// An effect recorded before it is sent (the outbox).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingEffect {
    pub id: EffectId,
    #[serde(flatten)]
    pub kind: EffectKind,
    pub attempts: u32,
    pub created_at: DateTime<Utc>,
    /// When the last attempt to send a post started (stored before the request goes out).
    #[serde(default)]
    pub last_attempt_at: Option<DateTime<Utc>>,
    /// The conversations known when the effect was recorded. A post of this effect is a later
    /// conversation, so it has a greater id (Freshdesk's ids grow with creation): found without
    /// comparing our clock with Freshdesk's. `None` in effects stored before it was kept.
    #[serde(default)]
    pub recorded_after: Option<KnownConversations>,
}

/// How far a ticket's conversations were known at some point.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct KnownConversations {
    /// The highest conversation id known (None: none was).
    pub last_id: Option<ConversationId>,
}

/// The last failure seen while processing the ticket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorNote {
    pub at: DateTime<Utc>,
    pub message: String,
}

/// Everything stored about one ticket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TicketRecord {
    pub org_id: OrgId,
    pub ticket_id: TicketId,
    pub gate: GateDecision,
    pub session: Option<Session>,
    #[serde(default)]
    pub ai: AiProgress,
    #[serde(default)]
    pub watermark: Watermark,
    #[serde(default)]
    pub pending_effects: Vec<PendingEffect>,
    #[serde(default)]
    pub last_error: Option<ErrorNote>,
    /// Failed attempts since the last success.
    #[serde(default)]
    pub retries: u32,
}

/// Margin for Freshdesk's one-second timestamps and clock skew.
const FRESHNESS_MARGIN: chrono::Duration = chrono::Duration::seconds(2);

impl Watermark {
    /// Whether a ticket Freshdesk lists with `updated_at` may hold changes we have not read.
    /// Freshdesk's timestamps have one-second resolution, so an equal `updated_at` is only
    /// known to be read if our read came clearly after that second.
    pub fn may_be_stale(&self, updated_at: DateTime<Utc>) -> bool {
        match (self.ticket_updated_at, self.read_at) {
            (Some(seen), Some(read_at)) => {
                seen < updated_at || read_at < updated_at + FRESHNESS_MARGIN
            }
            _ => true,
        }
    }
}

impl TicketRecord {
    /// A record for a ticket the gate just decided about.
    pub fn new(org_id: OrgId, ticket_id: TicketId, gate: GateDecision) -> Self {
        Self {
            org_id,
            ticket_id,
            gate,
            session: None,
            ai: AiProgress::default(),
            watermark: Watermark::default(),
            pending_effects: Vec::new(),
            last_error: None,
            retries: 0,
        }
    }

    /// Whether the ticket is tracked.
    pub fn is_tracked(&self) -> bool {
        self.gate.decision == GateOutcome::Tracked && self.session.is_some()
    }
}
