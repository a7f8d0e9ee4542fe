//! The session: ticketsync's record of one tracked ticket, as the inbox API shows it.

use crate::freshdesk::TicketStatus;
use crate::ids::{ConversationId, SessionId, TicketId};
use crate::org::{Channel, Routing};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Who holds the ticket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SessionState {
    /// The AI answers new customer messages.
    AiActive,
    /// A human agent replied publicly; the AI stays silent.
    HumanActive,
    /// The AI handed the ticket to humans; it never posts again unless resumed.
    HandedOff,
}

impl SessionState {
    /// The API name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AiActive => "ai_active",
            Self::HumanActive => "human_active",
            Self::HandedOff => "handed_off",
        }
    }
}

/// Who wrote a message, decided by `user_id` (never by Freshdesk's `incoming` flag).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Author {
    Contact,
    Agent,
    Ai,
}

/// One message of the thread: the description (no conversation id) or a conversation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Message {
    pub conversation_id: Option<ConversationId>,
    pub author: Author,
    pub private: bool,
    /// A note (Freshdesk conversation source 2) rather than a reply.
    #[serde(default)]
    pub note: bool,
    pub body_text: String,
    pub created_at: DateTime<Utc>,
}

/// Why a ticket was handed off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum HandoffReason {
    CustomerRequested,
    MissingKnowledge,
    TurnLimit,
    Admin,
    Other,
}

impl HandoffReason {
    /// The API name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::CustomerRequested => "customer_requested",
            Self::MissingKnowledge => "missing_knowledge",
            Self::TurnLimit => "turn_limit",
            Self::Admin => "admin",
            Self::Other => "other",
        }
    }
}

/// The last handoff of a session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct HandoffRecord {
    pub at: DateTime<Utc>,
    pub reason: HandoffReason,
    pub routing: Routing,
    /// The agent or group routed to, when the routing has one.
    pub target: Option<u64>,
    pub fallback_used: bool,
    pub detail: Option<String>,
}

/// A Freshdesk status with its agent-facing name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct StatusView {
    pub id: u8,
    pub name: String,
}

/// Names of Freshdesk's built-in statuses; custom ones (6+) come from the ticket fields.
pub fn builtin_status_name(id: u8) -> Option<&'static str> {
    TicketStatus::from(id).builtin_name()
}

/// Whether a status stops AI answers.
pub fn is_resolved_or_closed(status: impl Into<TicketStatus>) -> bool {
    status.into().is_resolved_or_closed()
}

/// ticketsync's record of one tracked ticket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Session {
    pub id: SessionId,
    pub ticket_id: TicketId,
    pub channel: Channel,
    pub subject: String,
    pub state: SessionState,
    pub freshdesk_status: StatusView,
    pub imported: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub handoff: Option<HandoffRecord>,
    pub messages: Vec<Message>,
}

impl Session {
    /// When the newest message was written.
    pub fn last_message_at(&self) -> Option<DateTime<Utc>> {
        self.messages.iter().map(|m| m.created_at).max()
    }
}
