//! Freshdesk entities as the simulator stores them, and their Freshdesk-shaped JSON.
//!
//! This module owns the *shape* of every object the API returns (agent, role, group, ticket,
//! conversation, ticket field) and the deterministic seed data. It holds no state and performs
//! no validation: `state` and `tickets` own the mutable store, this module only renders it.

use chrono::{DateTime, Duration, SubsecRound, TimeZone, Utc};
use serde_json::{json, Map, Value};

/// Freshdesk's timestamp format: RFC 3339, UTC, second resolution.
pub(crate) fn ts(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// Now, truncated to Freshdesk's one-second resolution.
pub(crate) fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(0)
}

/// When the seed data was "created": fixed, so the seed renders identically on every run.
pub(crate) fn seed_time() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 1, 2, 9, 0, 0)
        .single()
        .expect("valid seed time")
}

/// Role ids of the four default Freshdesk roles.
pub(crate) const ROLE_ACCOUNT_ADMIN: u64 = 1;
pub(crate) const ROLE_SUPERVISOR: u64 = 2;
pub(crate) const ROLE_AGENT: u64 = 3;
pub(crate) const ROLE_ADMIN: u64 = 4;

/// The default roles: (id, name, description).
pub(crate) const ROLES: [(u64, &str, &str); 4] = [
    (
        ROLE_ACCOUNT_ADMIN,
        "Account Administrator",
        "Has complete control over the help desk including access to Account or Billing related information, and receives Invoices.",
    ),
    (
        ROLE_SUPERVISOR,
        "Supervisor",
        "Can perform all agent related activities and access reports, but cannot access or change configurations in the admin tab.",
    ),
    (
        ROLE_AGENT,
        "Agent",
        "Can log, view, reply, update and resolve tickets and manage contacts.",
    ),
    (
        ROLE_ADMIN,
        "Administrator",
        "Can configure all features through the Admin tab, but is restricted from viewing Account or Billing related information.",
    ),
];

/// Maps the control API's role names to role ids.
pub(crate) fn role_id_for(name: &str) -> Option<u64> {
    match name {
        "account_admin" => Some(ROLE_ACCOUNT_ADMIN),
        "supervisor" => Some(ROLE_SUPERVISOR),
        "agent" => Some(ROLE_AGENT),
        "admin" => Some(ROLE_ADMIN),
        _ => None,
    }
}

/// The mailbox tickets are addressed to.
pub(crate) const SUPPORT_EMAIL: &str = "support@acme.test";

/// The checkbox custom field ticketsync uses as its handoff marker.
pub(crate) const MARKER_FIELD: &str = "cf_opencx_handed_off_1234";
/// A free-text custom field.
pub(crate) const ORDER_FIELD: &str = "cf_order_number";

/// Ticket statuses: (id, agent label, customer label).
pub(crate) const STATUSES: [(u64, &str, &str); 6] = [
    (2, "Open", "Being Processed"),
    (3, "Pending", "Awaiting your Reply"),
    (4, "Resolved", "This ticket has been Resolved"),
    (5, "Closed", "This ticket has been Closed"),
    (6, "Waiting on Customer", "Awaiting your Reply"),
    (7, "Waiting on Third Party", "Being Processed"),
];

/// Choices of the `ticket_type` field.
pub(crate) const TICKET_TYPES: [&str; 5] = [
    "Question",
    "Incident",
    "Problem",
    "Feature Request",
    "Refund",
];

/// Priorities: (id, label).
pub(crate) const PRIORITIES: [(u64, &str); 4] =
    [(1, "Low"), (2, "Medium"), (3, "High"), (4, "Urgent")];

/// Sources offered by the `source` field: (id, label).
pub(crate) const SOURCES: [(u64, &str); 6] = [
    (1, "Email"),
    (2, "Portal"),
    (3, "Phone"),
    (7, "Chat"),
    (9, "Feedback Widget"),
    (10, "Outbound Email"),
];

/// Statuses from which a customer reply reopens the ticket (Pending, Resolved, Closed).
pub(crate) const REOPENED_BY_CUSTOMER: [u64; 3] = [3, 4, 5];

pub(crate) const STATUS_OPEN: u64 = 2;

/// A help-desk agent (a seeded one or one added through `/_sim/agents`).
#[derive(Debug, Clone)]
pub(crate) struct Agent {
    pub id: u64,
    pub name: String,
    pub email: String,
    pub api_key: String,
    pub role_ids: Vec<u64>,
    pub group_ids: Vec<u64>,
    pub created_at: DateTime<Utc>,
    /// Deleted agents keep their record (ids are never reused) but are invisible to the API.
    pub deleted: bool,
}

impl Agent {
    pub fn to_json(&self) -> Value {
        let at = ts(self.created_at);
        json!({
            "available": false,
            "occasional": false,
            "id": self.id,
            "ticket_scope": 1,
            "signature": null,
            "group_ids": self.group_ids,
            "role_ids": self.role_ids,
            "skill_ids": [],
            "available_since": null,
            "contact": {
                "active": true,
                "email": self.email,
                "job_title": null,
                "language": "en",
                "last_login_at": null,
                "mobile": null,
                "name": self.name,
                "phone": null,
                "time_zone": "Eastern Time (US & Canada)",
                "created_at": at,
                "updated_at": at,
            },
            "created_at": at,
            "updated_at": at,
            "type": "support_agent",
            "focus_mode": true,
        })
    }
}

/// An agent group.
#[derive(Debug, Clone)]
pub(crate) struct Group {
    pub id: u64,
    pub name: String,
    pub created_at: DateTime<Utc>,
    pub deleted: bool,
}

impl Group {
    pub fn to_json(&self) -> Value {
        let at = ts(self.created_at);
        json!({
            "id": self.id,
            "name": self.name,
            "description": null,
            "escalate_to": null,
            "unassigned_for": "30m",
            "business_hour_id": null,
            "group_type": "support_agent_group",
            "created_at": at,
            "updated_at": at,
        })
    }
}

/// A customer, created implicitly from a requester email.
#[derive(Debug, Clone)]
pub(crate) struct Contact {
    pub id: u64,
    pub name: String,
    pub email: String,
}

/// Conversation `source` values.
pub(crate) const SOURCE_REPLY: u64 = 0;
pub(crate) const SOURCE_NOTE: u64 = 2;

/// One conversation (reply or note) of a ticket.
#[derive(Debug, Clone)]
pub(crate) struct Conversation {
    pub id: u64,
    pub ticket_id: u64,
    pub body: String,
    pub body_text: String,
    pub incoming: bool,
    pub private: bool,
    pub user_id: u64,
    pub source: u64,
    pub from_email: Option<String>,
    pub to_emails: Vec<String>,
    pub created_at: DateTime<Utc>,
}

impl Conversation {
    pub fn to_json(&self) -> Value {
        let at = ts(self.created_at);
        // Freshdesk's categories: 2 for messages coming from the customer, 3 for agent posts.
        let category = if self.incoming && self.source == SOURCE_REPLY {
            2
        } else {
            3
        };
        json!({
            "body": self.body,
            "body_text": self.body_text,
            "id": self.id,
            "incoming": self.incoming,
            "private": self.private,
            "user_id": self.user_id,
            "support_email": if self.source == SOURCE_REPLY { Some(SUPPORT_EMAIL) } else { None },
            "source": self.source,
            "category": category,
            "to_emails": if self.to_emails.is_empty() { Value::Null } else { json!(self.to_emails) },
            "from_email": self.from_email,
            "cc_emails": [],
            "bcc_emails": [],
            "email_failure_count": null,
            "outgoing_failures": null,
            "thread_id": null,
            "thread_message_id": null,
            "created_at": at,
            "updated_at": at,
            "attachments": [],
            "source_additional_info": null,
            "ticket_id": self.ticket_id,
            "last_edited_at": null,
            "last_edited_user_id": null,
        })
    }
}

/// A ticket with its conversations.
#[derive(Debug, Clone)]
pub(crate) struct Ticket {
    pub id: u64,
    pub subject: String,
    pub description: String,
    pub description_text: String,
    pub status: u64,
    pub priority: u64,
    pub source: u64,
    pub requester_id: u64,
    pub responder_id: Option<u64>,
    pub group_id: Option<u64>,
    pub ticket_type: Option<String>,
    pub tags: Vec<String>,
    pub custom_fields: Map<String, Value>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub deleted: bool,
    pub conversations: Vec<Conversation>,
}

impl Ticket {
    /// Custom field values of a new ticket.
    pub fn default_custom_fields() -> Map<String, Value> {
        let mut fields = Map::new();
        fields.insert(MARKER_FIELD.to_string(), Value::Bool(false));
        fields.insert(ORDER_FIELD.to_string(), Value::Null);
        fields
    }

    /// The Freshdesk ticket object. List items (`full == false`) omit `description` and
    /// `description_text`, like `GET /tickets` does.
    pub fn to_json(&self, full: bool) -> Value {
        let mut obj = json!({
            "cc_emails": [],
            "fwd_emails": [],
            "reply_cc_emails": [],
            "ticket_cc_emails": [],
            "fr_escalated": false,
            "spam": false,
            "email_config_id": null,
            "group_id": self.group_id,
            "priority": self.priority,
            "requester_id": self.requester_id,
            "responder_id": self.responder_id,
            "source": self.source,
            "company_id": null,
            "status": self.status,
            "subject": self.subject,
            "association_type": null,
            "support_email": if self.source == 1 { Some(SUPPORT_EMAIL) } else { None },
            "to_emails": null,
            "product_id": null,
            "id": self.id,
            "type": self.ticket_type,
            "due_by": ts(self.created_at + Duration::days(3)),
            "fr_due_by": ts(self.created_at + Duration::days(1)),
            "is_escalated": false,
            "custom_fields": self.custom_fields,
            "created_at": ts(self.created_at),
            "updated_at": ts(self.updated_at),
            "tags": self.tags,
            "attachments": [],
            "source_additional_info": null,
            "structured_description": null,
            "form_id": null,
            "nr_due_by": null,
            "nr_escalated": false,
        });
        if full {
            if let Some(map) = obj.as_object_mut() {
                map.insert("description".into(), json!(self.description));
                map.insert("description_text".into(), json!(self.description_text));
            }
        }
        obj
    }
}

/// The seeded agents: (id, name, email, api key, role ids).
pub(crate) const SEED_AGENTS: [(u64, &str, &str, &str, u64); 5] = [
    (
        42,
        "OpenCX AI",
        "ai@acme.test",
        "sim-admin-key",
        ROLE_ACCOUNT_ADMIN,
    ),
    (
        43,
        "Plain Agent",
        "plain@acme.test",
        "sim-agent-key",
        ROLE_AGENT,
    ),
    (
        44,
        "Alice Human",
        "alice@acme.test",
        "sim-alice-key",
        ROLE_AGENT,
    ),
    (45, "Bob Admin", "bob@acme.test", "sim-bob-key", ROLE_ADMIN),
    (
        46,
        "Sue Supervisor",
        "sue@acme.test",
        "sim-sue-key",
        ROLE_SUPERVISOR,
    ),
];

/// The seeded groups: (id, name).
pub(crate) const SEED_GROUPS: [(u64, &str); 2] = [(7, "Support"), (8, "Billing")];

/// The role objects of `GET /roles`.
pub(crate) fn roles_json() -> Value {
    let at = ts(seed_time());
    Value::Array(
        ROLES
            .iter()
            .map(|(id, name, description)| {
                json!({
                    "id": id,
                    "name": name,
                    "description": description,
                    "default": true,
                    "created_at": at,
                    "updated_at": at,
                })
            })
            .collect(),
    )
}

/// (name, label, type, default, customer label, displayed to customers, choices).
type FieldSpec = (
    &'static str,
    &'static str,
    &'static str,
    bool,
    &'static str,
    bool,
    Option<Value>,
);

/// The ticket fields of `GET /ticket_fields`. Group and agent choices reflect the live
/// directory, like Freshdesk's.
pub(crate) fn ticket_fields_json<'a>(
    groups: impl Iterator<Item = &'a Group>,
    agents: impl Iterator<Item = &'a Agent>,
) -> Value {
    let statuses: Map<String, Value> = STATUSES
        .iter()
        .map(|(id, agent_label, customer_label)| {
            (id.to_string(), json!([agent_label, customer_label]))
        })
        .collect();
    let sources: Map<String, Value> = SOURCES
        .iter()
        .map(|(id, label)| (label.to_string(), json!(id)))
        .collect();
    let priorities: Map<String, Value> = PRIORITIES
        .iter()
        .map(|(id, label)| (label.to_string(), json!(id)))
        .collect();
    let groups: Map<String, Value> = groups.map(|g| (g.name.clone(), json!(g.id))).collect();
    let agents: Map<String, Value> = agents.map(|a| (a.name.clone(), json!(a.id))).collect();

    // (name, label, type, default, customer label, displayed to customers, choices)
    let specs: Vec<FieldSpec> = vec![
        (
            "requester",
            "Search a requester",
            "default_requester",
            true,
            "Requester",
            true,
            None,
        ),
        (
            "subject",
            "Subject",
            "default_subject",
            true,
            "Subject",
            true,
            None,
        ),
        (
            "ticket_type",
            "Type",
            "default_ticket_type",
            true,
            "Type",
            true,
            Some(json!(TICKET_TYPES)),
        ),
        (
            "source",
            "Source",
            "default_source",
            true,
            "Source",
            false,
            Some(Value::Object(sources)),
        ),
        (
            "status",
            "Status",
            "default_status",
            true,
            "Status",
            true,
            Some(Value::Object(statuses)),
        ),
        (
            "priority",
            "Priority",
            "default_priority",
            true,
            "Priority",
            true,
            Some(Value::Object(priorities)),
        ),
        (
            "group",
            "Group",
            "default_group",
            true,
            "Group",
            true,
            Some(Value::Object(groups)),
        ),
        (
            "agent",
            "Agent",
            "default_agent",
            true,
            "Agent",
            true,
            Some(Value::Object(agents)),
        ),
        (
            "description",
            "Description",
            "default_description",
            true,
            "Description",
            true,
            None,
        ),
        (
            MARKER_FIELD,
            "OpenCX handed off",
            "custom_checkbox",
            false,
            "OpenCX handed off",
            false,
            None,
        ),
        (
            ORDER_FIELD,
            "Order number",
            "custom_text",
            false,
            "Order number",
            true,
            None,
        ),
    ];
    let at = ts(seed_time());
    Value::Array(
        specs
            .into_iter()
            .enumerate()
            .map(|(i, (name, label, kind, default, customer_label, displayed, choices))| {
                let mut field = json!({
                    "id": 80000000001u64 + i as u64,
                    "name": name,
                    "label": label,
                    "description": format!("Ticket {}", label.to_lowercase()),
                    "position": i + 1,
                    "required_for_closure": false,
                    "required_for_agents": name == "subject" || name == "requester",
                    "type": kind,
                    "default": default,
                    "customers_can_edit": matches!(name, "requester" | "subject" | "description" | "ticket_type"),
                    "label_for_customers": customer_label,
                    "required_for_customers": name == "subject" || name == "requester",
                    "displayed_to_customers": displayed,
                    "created_at": at,
                    "updated_at": at,
                });
                if let (Some(choices), Some(map)) = (choices, field.as_object_mut()) {
                    map.insert("choices".into(), choices);
                }
                field
            })
            .collect(),
    )
}
