//! The Freshdesk data the engine reads and writes, the errors a call can end in, and the
//! `FreshdeskApi` port the service implements with reqwest.
//!
//! Models keep only the keys the engine uses; every other key Freshdesk sends is ignored.

use crate::ids::{AgentId, ConversationId, GroupId, TicketId};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// `GET /agents/me`, `GET /agents`, `GET /agents/{id}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Agent {
    pub id: AgentId,
    #[serde(default)]
    pub contact: AgentContact,
    #[serde(default)]
    pub role_ids: Vec<u64>,
    #[serde(default)]
    pub group_ids: Vec<u64>,
}

/// The contact card embedded in an agent.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AgentContact {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub email: Option<String>,
}

/// `GET /roles`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Role {
    pub id: u64,
    pub name: String,
}

/// Role names that make an agent an administrator (contract §2.1).
pub const ADMIN_ROLE_NAMES: [&str; 2] = ["Account Administrator", "Administrator"];

impl Role {
    /// Whether holding this role makes an agent an admin.
    pub fn is_admin(&self) -> bool {
        ADMIN_ROLE_NAMES.contains(&self.name.as_str())
    }
}

/// `GET /groups/{id}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Group {
    pub id: GroupId,
    pub name: String,
}

/// `GET /ticket_fields`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TicketField {
    pub id: u64,
    /// The API name (`status`, `cf_opencx_handed_off_1234`, …).
    pub name: String,
    #[serde(default)]
    pub label: String,
    /// `default_status`, `custom_checkbox`, `custom_text`, …
    #[serde(rename = "type")]
    pub field_type: String,
    /// Field-specific; for `default_status` an object keyed by status id whose values are
    /// `[agent label, customer label]`.
    #[serde(default)]
    pub choices: serde_json::Value,
}

impl TicketField {
    /// Status id → agent-facing name, when this is the status field.
    pub fn status_names(&self) -> Vec<(u8, String)> {
        if self.name != "status" {
            return Vec::new();
        }
        let Some(map) = self.choices.as_object() else {
            return Vec::new();
        };
        let mut names: Vec<(u8, String)> = map
            .iter()
            .filter_map(|(id, labels)| {
                let id: u8 = id.parse().ok()?;
                let name = match labels {
                    serde_json::Value::Array(a) => a.first()?.as_str()?.to_string(),
                    serde_json::Value::String(s) => s.clone(),
                    _ => return None,
                };
                Some((id, name))
            })
            .collect();
        names.sort();
        names
    }
}

/// A Freshdesk ticket status: one of the four built-in statuses, or any other id (accounts
/// may add custom statuses, ids 6 and up). Its JSON is the plain status id.
///
/// Make one from an id with `TicketStatus::from(id)`, which gives the built-in variant for a
/// built-in id; statuses compare (and hash) by id, so `Custom(2)` equals `Open` anyway.
#[derive(Debug, Clone, Copy)]
pub enum TicketStatus {
    Open,
    Pending,
    Resolved,
    Closed,
    /// Any other status id (custom statuses).
    Custom(u8),
}

impl TicketStatus {
    /// Freshdesk's id of the status.
    pub const fn id(self) -> u8 {
        match self {
            Self::Open => 2,
            Self::Pending => 3,
            Self::Resolved => 4,
            Self::Closed => 5,
            Self::Custom(id) => id,
        }
    }

    /// The built-in status with this id (None for custom statuses).
    pub fn from_id(id: u8) -> Option<Self> {
        [Self::Open, Self::Pending, Self::Resolved, Self::Closed]
            .into_iter()
            .find(|s| s.id() == id)
    }

    /// Its agent-facing name in an account that did not rename it (None for custom statuses).
    pub fn builtin_name(self) -> Option<&'static str> {
        match Self::from(self.id()) {
            Self::Open => Some("Open"),
            Self::Pending => Some("Pending"),
            Self::Resolved => Some("Resolved"),
            Self::Closed => Some("Closed"),
            Self::Custom(_) => None,
        }
    }

    /// Open or pending: a ticket the backfill imports.
    pub fn is_open_or_pending(self) -> bool {
        matches!(Self::from(self.id()), Self::Open | Self::Pending)
    }

    /// Resolved or closed: the AI no longer answers.
    pub fn is_resolved_or_closed(self) -> bool {
        matches!(Self::from(self.id()), Self::Resolved | Self::Closed)
    }
}

impl From<u8> for TicketStatus {
    fn from(id: u8) -> Self {
        Self::from_id(id).unwrap_or(Self::Custom(id))
    }
}

impl PartialEq for TicketStatus {
    fn eq(&self, other: &Self) -> bool {
        self.id() == other.id()
    }
}

impl Eq for TicketStatus {}

impl std::hash::Hash for TicketStatus {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.id().hash(state);
    }
}

impl serde::Serialize for TicketStatus {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_u8(self.id())
    }
}

impl<'de> serde::Deserialize<'de> for TicketStatus {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        u8::deserialize(deserializer).map(Self::from)
    }
}

/// `GET /tickets/{id}`, `PUT /tickets/{id}`, `GET /tickets`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ticket {
    pub id: TicketId,
    #[serde(default)]
    pub subject: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub description_text: String,
    pub status: TicketStatus,
    #[serde(default)]
    pub priority: u8,
    #[serde(default)]
    pub source: u8,
    #[serde(default)]
    pub requester_id: Option<u64>,
    #[serde(default)]
    pub responder_id: Option<AgentId>,
    #[serde(default)]
    pub group_id: Option<GroupId>,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub custom_fields: serde_json::Map<String, serde_json::Value>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// The body of `PUT /tickets/{id}`: the fields to change; a field left `None` is not sent.
///
/// Its JSON keeps the keys in alphabetical order (the order the untyped update it replaces
/// was written in), and outbox records stored with that untyped update read back as this.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TicketUpdate {
    /// Custom fields to set (`{"cf_…": true}`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custom_fields: Option<serde_json::Map<String, serde_json::Value>>,
    /// `Some(None)` sends `"group_id": null` (clear); `None` leaves the group alone.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present_or_null"
    )]
    pub group_id: Option<Option<GroupId>>,
    /// `Some(None)` sends `"responder_id": null` (unassign); `None` leaves the agent alone.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present_or_null"
    )]
    pub responder_id: Option<Option<AgentId>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<TicketStatus>,
    /// The whole tag list (Freshdesk replaces the ticket's tags with it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<String>>,
}

/// A key that is present reads as `Some`, even when its value is `null` (`Some(None)`); an
/// absent key falls back to the field's default (`None`).
fn present_or_null<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

/// `GET /tickets/{id}/conversations`, and the result of a reply or note.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Conversation {
    pub id: ConversationId,
    #[serde(default)]
    pub body: String,
    #[serde(default)]
    pub body_text: String,
    #[serde(default)]
    pub incoming: bool,
    #[serde(default)]
    pub private: bool,
    #[serde(default)]
    pub source: u8,
    pub user_id: u64,
    pub created_at: DateTime<Utc>,
    #[serde(default)]
    pub updated_at: Option<DateTime<Utc>>,
}

/// Freshdesk's rate-limit headers, carried by every response.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RateLimit {
    /// `X-RateLimit-Total`: the account's credits per minute.
    pub total: u32,
    /// `X-RateLimit-Remaining`.
    pub remaining: u32,
    /// `X-RateLimit-Used-CurrentRequest`.
    pub used_current: u32,
}

/// A successful response: its value plus the rate-limit headers it carried.
#[derive(Debug, Clone, PartialEq)]
pub struct Api<T> {
    pub value: T,
    pub rate_limit: Option<RateLimit>,
}

/// One page of a paginated list, with whether Freshdesk announced a next page (`Link` header).
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub has_next: bool,
}

/// Query for `GET /tickets`.
#[derive(Debug, Clone, PartialEq)]
pub struct TicketListQuery {
    pub updated_since: Option<DateTime<Utc>>,
    /// 1-based; Freshdesk refuses pages past 300.
    pub page: u32,
    /// At most 100.
    pub per_page: u32,
}

/// One field error of a 400 `Validation failed` body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldError {
    #[serde(default)]
    pub field: String,
    #[serde(default)]
    pub message: String,
    #[serde(default)]
    pub code: String,
}

/// How a Freshdesk call failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FreshdeskError {
    /// 400 with field errors.
    #[error("Freshdesk rejected the request: {}", describe_field_errors(.0))]
    Validation(Vec<FieldError>),
    /// 401.
    #[error("Freshdesk rejected the API key (401)")]
    Unauthorized,
    /// 403 (`access_denied`, `require_feature`).
    #[error("Freshdesk denied access ({code}): {message}")]
    Forbidden { code: String, message: String },
    /// 404.
    #[error("not found in Freshdesk (404)")]
    NotFound,
    /// 429, with the `Retry-After` it carried.
    #[error("Freshdesk rate limit reached; retry after {}s", .retry_after.as_secs())]
    RateLimited { retry_after: Duration },
    /// 5xx.
    #[error("Freshdesk server error ({status})")]
    Server { status: u16 },
    /// No response within the request timeout.
    #[error("Freshdesk did not answer in time")]
    Timeout,
    /// DNS, connect or TLS failure.
    #[error("Freshdesk is unreachable: {0}")]
    Unreachable(String),
    /// Any other status.
    #[error("unexpected Freshdesk response status {status}")]
    UnexpectedStatus { status: u16 },
    /// A 2xx whose body is not what the API documents.
    #[error("unexpected Freshdesk response body: {0}")]
    InvalidResponse(String),
    /// Not sent: the organization was disconnected while the call waited for its turn.
    #[error("not sent: the organization is disconnected")]
    Cancelled,
}

fn describe_field_errors(errors: &[FieldError]) -> String {
    errors
        .iter()
        .map(|e| format!("{} {} ({})", e.field, e.message, e.code))
        .collect::<Vec<_>>()
        .join("; ")
}

impl FreshdeskError {
    /// Whether the work should be retried later rather than given up. (A cancelled call is
    /// retried too: the next pass finds the org disconnected and drops the work cleanly. A
    /// refused key is retried once the org's pause is lifted: the work waits for a new key.)
    pub fn is_transient(&self) -> bool {
        self.is_auth_failure()
            || matches!(
                self,
                Self::RateLimited { .. }
                    | Self::Server { .. }
                    | Self::Timeout
                    | Self::Unreachable(_)
                    | Self::Cancelled
            )
    }

    /// Whether Freshdesk refused the AI agent's key (401) or its rights (403): nothing this
    /// org does can succeed until an admin fixes the key or the role.
    pub fn is_auth_failure(&self) -> bool {
        matches!(self, Self::Unauthorized | Self::Forbidden { .. })
    }

    /// Whether this is a 400 `invalid_value` on the given field (a deleted handoff target).
    pub fn is_invalid_value_on(&self, field: &str) -> bool {
        match self {
            Self::Validation(errors) => errors
                .iter()
                .any(|e| e.field == field && e.code == "invalid_value"),
            _ => false,
        }
    }
}

/// Result of a Freshdesk call.
pub type FreshdeskResult<T> = Result<Api<T>, FreshdeskError>;

/// The Freshdesk API of one account, authenticated as the org's AI agent.
#[async_trait]
pub trait FreshdeskApi: Send + Sync {
    /// `GET /agents/me`.
    async fn me(&self) -> FreshdeskResult<Agent>;
    /// `GET /roles`.
    async fn roles(&self) -> FreshdeskResult<Vec<Role>>;
    /// `GET /agents?per_page=100&page=N`.
    async fn agents(&self, page: u32) -> FreshdeskResult<Page<Agent>>;
    /// `GET /agents/{id}`.
    async fn agent(&self, id: AgentId) -> FreshdeskResult<Agent>;
    /// `GET /groups/{id}`.
    async fn group(&self, id: GroupId) -> FreshdeskResult<Group>;
    /// `GET /groups?per_page=100&page=N`.
    async fn groups(&self, page: u32) -> FreshdeskResult<Page<Group>>;
    /// `GET /ticket_fields`.
    async fn ticket_fields(&self) -> FreshdeskResult<Vec<TicketField>>;
    /// `GET /tickets/{id}`.
    async fn ticket(&self, id: TicketId) -> FreshdeskResult<Ticket>;
    /// `PUT /tickets/{id}` with a partial ticket; returns the updated ticket.
    async fn update_ticket(&self, id: TicketId, update: &TicketUpdate) -> FreshdeskResult<Ticket>;
    /// `GET /tickets?updated_since=…&order_by=updated_at&order_type=asc&per_page=…&page=…`.
    async fn tickets(&self, query: &TicketListQuery) -> FreshdeskResult<Page<Ticket>>;
    /// `GET /tickets/{id}/conversations?per_page=100&page=N` (oldest first).
    async fn conversations(&self, id: TicketId, page: u32) -> FreshdeskResult<Page<Conversation>>;
    /// `POST /tickets/{id}/reply`: a public reply.
    async fn reply(&self, id: TicketId, body_html: &str) -> FreshdeskResult<Conversation>;
    /// `POST /tickets/{id}/notes`.
    async fn note(
        &self,
        id: TicketId,
        body_html: &str,
        private: bool,
    ) -> FreshdeskResult<Conversation>;
}
