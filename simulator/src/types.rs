//! Wire types of the control API (`/_sim/...`).
//!
//! Each type is defined once and used by both sides: the control routes deserialize it and
//! [`crate::SimClient`] serializes it. Request types are partial (`Option` fields that are left
//! out of the JSON when `None`); response types carry every field.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Body of `POST /_sim/tickets`: a ticket as a customer would open it.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct NewTicket {
    /// Ticket subject.
    #[serde(default)]
    pub subject: String,
    /// HTML description (the first customer message); `description_text` is derived from it.
    #[serde(default)]
    pub description: String,
    /// Requester email; the contact is created on first use. Default `customer@example.com`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// Requester display name (used only when the contact is created).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Freshdesk source id (1 Email, 2 Portal, 3 Phone, 7 Chat, ...). Default 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<u64>,
    /// Status id. Default 2 (Open).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u64>,
    /// Priority 1..=4. Default 1 (Low).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<u64>,
    /// Group the ticket starts in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_id: Option<u64>,
    /// Agent the ticket starts assigned to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub responder_id: Option<u64>,
    /// Initial tags.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<String>>,
    /// Initial custom field values (merged over the defaults).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custom_fields: Option<Map<String, Value>>,
    /// Backdated creation time (for seeding old tickets). Default: now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<DateTime<Utc>>,
    /// Backdated update time. Default: `created_at`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<DateTime<Utc>>,
    /// Customer replies (HTML bodies) already on the ticket when it is created, stamped with
    /// its creation second (as when a customer writes again within the second the ticket was
    /// opened). Each fires rule 2 like a customer reply, unless `webhook` is false.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer_replies: Option<Vec<String>>,
    /// Fire automation rule 1 (ticket created). Default true.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook: Option<bool>,
}

impl NewTicket {
    /// A ticket with this subject and HTML description and every other field defaulted.
    pub fn new(subject: impl Into<String>, description: impl Into<String>) -> Self {
        NewTicket {
            subject: subject.into(),
            description: description.into(),
            ..NewTicket::default()
        }
    }
}

/// Body of `POST /_sim/tickets/bulk`: many tickets at once, without webhooks.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct BulkTickets {
    /// How many tickets to create.
    pub count: u32,
    /// Subject of ticket `i` is `"{subject_prefix} {i}"`. Default `"Bulk ticket"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject_prefix: Option<String>,
    /// Status of ticket `i` is `status_cycle[i % len]`. Default `[2]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_cycle: Option<Vec<u64>>,
    /// Source of every ticket. Default 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<u64>,
    /// Requester email of every ticket. Default `customer@example.com`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// `updated_at` (and `created_at`) of ticket 0. Default: `now - count * step_secs`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at_start: Option<DateTime<Utc>>,
    /// Seconds between consecutive tickets' `updated_at`. Default 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step_secs: Option<i64>,
    /// Customer replies added to each ticket (stamped with the ticket's `updated_at`). Default 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conversations_per_ticket: Option<u32>,
}

/// Answer of `POST /_sim/tickets/bulk`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BulkCreated {
    /// Ids of the created tickets, in creation order.
    pub ids: Vec<u64>,
}

/// One line of `GET /_sim/tickets`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TicketBrief {
    pub id: u64,
    pub subject: String,
    pub status: u64,
    pub responder_id: Option<u64>,
    pub group_id: Option<u64>,
    pub deleted: bool,
    pub conversations: usize,
    pub updated_at: DateTime<Utc>,
}

/// Body of `POST /_sim/tickets/{id}/customer_reply`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct CustomerReply {
    pub body: String,
    /// Fire rule 2. Default true.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook: Option<bool>,
}

/// Body of `POST /_sim/tickets/{id}/agent_reply`: a public reply by a human agent.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct AgentReply {
    pub agent_id: u64,
    pub body: String,
    /// Fire rule 2. Default true.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook: Option<bool>,
}

/// Body of `POST /_sim/tickets/{id}/agent_note`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct AgentNote {
    pub agent_id: u64,
    pub body: String,
    /// Default true.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub private: Option<bool>,
    /// Stored and returned as given (Freshdesk lets API notes carry `incoming: true`). Default false.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incoming: Option<bool>,
    /// Fire rule 2. Default true.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook: Option<bool>,
}

impl AgentNote {
    /// A private note by `agent_id`.
    pub fn private(agent_id: u64, body: impl Into<String>) -> Self {
        AgentNote {
            agent_id,
            body: body.into(),
            private: Some(true),
            ..AgentNote::default()
        }
    }

    /// A public note by `agent_id`.
    pub fn public(agent_id: u64, body: impl Into<String>) -> Self {
        AgentNote {
            private: Some(false),
            ..AgentNote::private(agent_id, body)
        }
    }

    /// Marks the note `incoming`.
    pub fn incoming(mut self, incoming: bool) -> Self {
        self.incoming = Some(incoming);
        self
    }
}

/// Body of `POST /_sim/tickets/{id}/status`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct StatusChange {
    pub status: u64,
    /// Fire rule 2. Default true.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook: Option<bool>,
}

/// Body of `POST /_sim/agents`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct NewAgent {
    pub name: String,
    pub email: String,
    /// `account_admin` | `admin` | `supervisor` | `agent` (default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// API key; default `sim-key-{id}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key: Option<String>,
    /// Groups the agent belongs to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_ids: Option<Vec<u64>>,
}

/// Body of `POST /_sim/agents/{id}/api_key`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct NewApiKey {
    pub api_key: String,
}

/// Body of `POST /_sim/groups`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NewGroup {
    pub name: String,
}

/// Body and answer of `POST /_sim/webhook` (the two automation rules). The body replaces the
/// whole configuration: `url: null` disables the rules, omitted templates fall back to the
/// the contract's payloads, omitted `fire_on_api_changes`, `created_enabled` and
/// `updated_enabled` mean true.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct WebhookConfig {
    pub url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_template: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_template: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fire_on_api_changes: Option<bool>,
    /// Rule 1 (ticket created) is active. Omitted means true.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_enabled: Option<bool>,
    /// Rule 2 (ticket updated) is active. Omitted means true.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_enabled: Option<bool>,
}

impl WebhookConfig {
    /// Both rules POST to `url` with the default templates.
    pub fn to(url: impl Into<String>) -> Self {
        WebhookConfig {
            url: Some(url.into()),
            ..WebhookConfig::default()
        }
    }
}

/// Body (partial update) and answer (every field set) of `POST /_sim/delivery`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct DeliveryKnobs {
    /// Probability that a delivery is sent twice.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duplicate_rate: Option<f64>,
    /// Probability that a delivery is never sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drop_rate: Option<f64>,
    /// Each delivery is held a random 0..=N ms, so deliveries within N ms are shuffled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reorder_window_ms: Option<u64>,
    /// Fixed delay added to every delivery.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay_ms: Option<u64>,
    /// Delays before the 2nd, 3rd, ... attempt of a failed delivery. Empty: no retry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_delays_ms: Option<Vec<u64>>,
    /// Reseeds the delivery RNG.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
}

/// `force_429` fault: the next `count` API calls answer 429 with `Retry-After: retry_after_secs`.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq)]
pub struct Force429 {
    pub count: u32,
    #[serde(default = "default_retry_after")]
    pub retry_after_secs: u64,
}

fn default_retry_after() -> u64 {
    1
}

/// `force_403` fault: the next `count` API calls (to `path` only, when set) answer 403
/// `access_denied`, as Freshdesk does when the agent lost a permission.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Force403 {
    pub count: u32,
    /// Exact request path, e.g. `/api/v2/tickets` (the list); every call when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
}

/// Body (partial update) and answer (every field set) of `POST /_sim/faults`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct FaultsConfig {
    /// Added to every API call before it is answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_ms: Option<u64>,
    /// Probability of answering 500 or 503.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_rate: Option<f64>,
    /// Probability of holding the call `timeout_ms` and then answering 504.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_rate: Option<f64>,
    /// How long a timed-out call is held. Default 30000.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
    /// Forced 429s still to answer (`count: 0` clears).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub force_429: Option<Force429>,
    /// Forced 403s still to answer (`count: 0` clears).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub force_403: Option<Force403>,
    /// The next N writes (POST, PUT) are applied, then answered 504, as when Freshdesk's front
    /// end gives up on a request it went on to process (`0` clears).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_after_write: Option<u32>,
    /// Reseeds the fault RNG.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
}

/// Body (partial update) and answer (every field set) of `POST /_sim/body_rewrites`: how the
/// bodies of replies and notes posted through the API are altered before they are stored (and
/// answered), as Freshdesk's sanitiser and agent signatures do. Default: stored as sent.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct BodyRewrites {
    /// Encode entities another way: `&amp;` as `&#38;`, `&quot;` as `&#34;`, `'` as `&#39;`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reencode_entities: Option<bool>,
    /// Wrap the body in `<div dir="ltr">…</div>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wrap_in_div: Option<bool>,
    /// Append this signature (HTML) after the body; `""` appends none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<String>,
    /// Store (and answer) an empty `body_text`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blank_body_text: Option<bool>,
}

/// Body (partial update) and answer of `POST /_sim/config`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ConfigUpdate {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit_per_min: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_pages: Option<u32>,
    /// Sub-limit of `GET /tickets` in calls per minute (0: none, the default; Growth: 20).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tickets_list_per_min: Option<u32>,
    /// Sub-limit of `PUT /tickets/{id}` in calls per minute (0: none, the default; Growth: 80).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ticket_update_per_min: Option<u32>,
}

/// One `/api/v2` request as recorded by the simulator (`GET /_sim/requests`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RecordedRequest {
    /// Arrival order, from 1.
    pub seq: u64,
    pub method: String,
    /// Path including `/api/v2`.
    pub path: String,
    /// Raw query string ("" when none).
    pub query: String,
    /// JSON body, `null` when empty (a non-JSON body is kept as a string).
    pub body: Value,
    /// HTTP status answered.
    pub status: u16,
    /// Authenticated agent, when the key was valid.
    pub agent_id: Option<u64>,
    /// Rate-limit credits charged.
    pub credits: u32,
    /// Arrival time.
    pub at: DateTime<Utc>,
}

/// Filters of `GET /_sim/requests`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RequestFilter {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path_prefix: Option<String>,
    /// Only requests with `seq > since_seq`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since_seq: Option<u64>,
}

/// One webhook delivery (`GET /_sim/deliveries`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct DeliveryRecord {
    /// Creation order, from 1 (a duplicate gets its own seq).
    pub seq: u64,
    pub ticket_id: u64,
    pub url: String,
    /// The rendered template, as JSON when it parses, else as a string.
    pub payload: Value,
    /// Last HTTP status received; `null` before the first attempt or after a connection error.
    pub status: Option<u16>,
    /// Attempts made so far.
    pub attempts: u32,
    /// The delivery was dropped by the `drop_rate` knob (never sent).
    pub dropped: bool,
    /// This is the extra copy made by the `duplicate_rate` knob.
    pub duplicate: bool,
    /// Last transport error, if any.
    pub error: Option<String>,
    /// When the rule fired.
    pub at: DateTime<Utc>,
    /// When the last attempt finished.
    pub delivered_at: Option<DateTime<Utc>>,
}
