//! Ticket operations: creation, bulk seeding, updates with Freshdesk's validation, replies and
//! notes, and which automation-rule events each of them fires.
//!
//! Both the Freshdesk API (`api`) and the control API (`control`) go through these functions,
//! so a change made by "a person in Freshdesk" and one made by an API client are validated and
//! notified the same way; only the [`Origin`] differs. Everything here runs under the state
//! lock and is synchronous.

use chrono::{Duration, SubsecRound};
use serde_json::{json, Map, Value};

use crate::errors::FieldError;
use crate::html;
use crate::model::{
    now, Conversation, Ticket, MARKER_FIELD, ORDER_FIELD, PRIORITIES, REOPENED_BY_CUSTOMER,
    SOURCE_NOTE, SOURCE_REPLY, STATUSES, STATUS_OPEN, SUPPORT_EMAIL, TICKET_TYPES,
};
use crate::state::SimState;
use crate::types::{BulkTickets, NewTicket};
use crate::webhooks::{Origin, Trigger};

/// Requester of tickets created without an email.
pub(crate) const DEFAULT_REQUESTER: &str = "customer@example.com";
/// Bulk seeding refuses more than this many tickets in one call.
const MAX_BULK: u32 = 1_000_000;

/// A validated partial update of a ticket (`PUT /tickets/{id}`).
#[derive(Debug, Default)]
pub(crate) struct TicketChanges {
    status: Option<u64>,
    priority: Option<u64>,
    responder_id: Option<Option<u64>>,
    group_id: Option<Option<u64>>,
    ticket_type: Option<Option<String>>,
    subject: Option<String>,
    tags: Option<Vec<String>>,
    custom_fields: Map<String, Value>,
}

/// Who posts a conversation.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Author {
    /// The ticket's requester (a customer reply).
    Requester,
    /// An agent (or, through the API's `user_id`, any known user).
    User(u64),
}

/// A conversation to add.
#[derive(Debug, Clone)]
pub(crate) struct NewConversation {
    pub author: Author,
    pub body: String,
    pub source: u64,
    pub private: bool,
    pub incoming: bool,
}

impl SimState {
    /// Validates a `PUT /tickets/{id}` body the way Freshdesk does, reporting every bad key.
    pub fn parse_changes(
        &self,
        body: &Map<String, Value>,
    ) -> Result<TicketChanges, Vec<FieldError>> {
        let mut errors = Vec::new();
        let mut changes = TicketChanges::default();
        for (key, value) in body {
            match key.as_str() {
                "status" => match value.as_u64() {
                    Some(s) if STATUSES.iter().any(|(id, _, _)| *id == s) => {
                        changes.status = Some(s)
                    }
                    Some(_) => errors.push(FieldError::invalid_value(
                        "status",
                        format!("It should be one of these values: '{}'", status_ids()),
                    )),
                    None => errors.push(FieldError::datatype_mismatch("status", "Integer", value)),
                },
                "priority" => match value.as_u64() {
                    Some(p) if PRIORITIES.iter().any(|(id, _)| *id == p) => {
                        changes.priority = Some(p)
                    }
                    Some(_) => errors.push(FieldError::invalid_value(
                        "priority",
                        "It should be one of these values: '1,2,3,4'",
                    )),
                    None => {
                        errors.push(FieldError::datatype_mismatch("priority", "Integer", value))
                    }
                },
                "responder_id" => match value {
                    Value::Null => changes.responder_id = Some(None),
                    v => match v.as_u64() {
                        Some(id) if self.live_agent(id).is_some() => {
                            changes.responder_id = Some(Some(id))
                        }
                        Some(_) => errors.push(FieldError::invalid_value(
                            "responder_id",
                            "There is no agent matching the given responder_id",
                        )),
                        None => errors.push(FieldError::datatype_mismatch(
                            "responder_id",
                            "Positive Integer",
                            v,
                        )),
                    },
                },
                "group_id" => match value {
                    Value::Null => changes.group_id = Some(None),
                    v => match v.as_u64() {
                        Some(id) if self.live_group(id).is_some() => {
                            changes.group_id = Some(Some(id))
                        }
                        Some(_) => errors.push(FieldError::invalid_value(
                            "group_id",
                            "There is no group matching the given group_id",
                        )),
                        None => errors.push(FieldError::datatype_mismatch(
                            "group_id",
                            "Positive Integer",
                            v,
                        )),
                    },
                },
                "type" => match value {
                    Value::Null => changes.ticket_type = Some(None),
                    Value::String(t) if TICKET_TYPES.contains(&t.as_str()) => {
                        changes.ticket_type = Some(Some(t.clone()))
                    }
                    Value::String(_) => errors.push(FieldError::invalid_value(
                        "type",
                        format!(
                            "It should be one of these values: '{}'",
                            TICKET_TYPES.join(",")
                        ),
                    )),
                    v => errors.push(FieldError::datatype_mismatch("type", "String", v)),
                },
                "subject" => match value {
                    Value::String(s) if !s.trim().is_empty() => changes.subject = Some(s.clone()),
                    Value::String(_) => errors.push(FieldError::new(
                        "subject",
                        "missing_field",
                        "It should not be blank as this is a mandatory field",
                    )),
                    v => errors.push(FieldError::datatype_mismatch("subject", "String", v)),
                },
                "tags" => match value.as_array() {
                    Some(items) => match items
                        .iter()
                        .map(|t| t.as_str().map(str::to_string))
                        .collect::<Option<Vec<_>>>()
                    {
                        Some(tags) => changes.tags = Some(tags),
                        None => errors.push(FieldError::new(
                            "tags",
                            "datatype_mismatch",
                            "It should be a/an Array of String",
                        )),
                    },
                    None => errors.push(FieldError::datatype_mismatch("tags", "Array", value)),
                },
                "custom_fields" => match value.as_object() {
                    Some(fields) => {
                        for (name, v) in fields {
                            match name.as_str() {
                                MARKER_FIELD => match v {
                                    Value::Bool(_) | Value::Null => {
                                        changes.custom_fields.insert(name.clone(), v.clone());
                                    }
                                    other => errors.push(FieldError::datatype_mismatch(
                                        name, "Boolean", other,
                                    )),
                                },
                                ORDER_FIELD => match v {
                                    Value::String(_) | Value::Null => {
                                        changes.custom_fields.insert(name.clone(), v.clone());
                                    }
                                    other => errors
                                        .push(FieldError::datatype_mismatch(name, "String", other)),
                                },
                                _ => errors.push(FieldError::invalid_field(name)),
                            }
                        }
                    }
                    None => errors.push(FieldError::datatype_mismatch(
                        "custom_fields",
                        "key/value pair",
                        value,
                    )),
                },
                _ => errors.push(FieldError::invalid_field(key)),
            }
        }
        if errors.is_empty() {
            Ok(changes)
        } else {
            Err(errors)
        }
    }

    /// Creates a ticket from the control API; fires rule 1 unless `webhook: false`.
    pub fn create_ticket(&mut self, new: &NewTicket) -> Result<Value, Vec<FieldError>> {
        let origin = if new.webhook.unwrap_or(true) {
            Origin::Ui
        } else {
            Origin::Silent
        };
        self.create_ticket_from(new, origin)
    }

    /// Creates a ticket as `origin` made it (rule 1 fires as the origin allows).
    pub fn create_ticket_from(
        &mut self,
        new: &NewTicket,
        origin: Origin,
    ) -> Result<Value, Vec<FieldError>> {
        let mut initial = Map::new();
        let mut put = |key: &str, value: Option<Value>| {
            if let Some(value) = value {
                initial.insert(key.to_string(), value);
            }
        };
        put("status", new.status.map(Value::from));
        put("priority", new.priority.map(Value::from));
        put("group_id", new.group_id.map(Value::from));
        put("responder_id", new.responder_id.map(Value::from));
        put("tags", new.tags.as_ref().map(|t| json!(t)));
        put(
            "custom_fields",
            new.custom_fields.clone().map(Value::Object),
        );
        let changes = self.parse_changes(&initial)?;

        let email = new.email.as_deref().unwrap_or(DEFAULT_REQUESTER);
        let requester_id = self.contact_for(email, new.name.as_deref());
        let created_at = new
            .created_at
            .or(new.updated_at)
            .map(|t| t.trunc_subsecs(0))
            .unwrap_or_else(now);
        let updated_at = new
            .updated_at
            .map(|t| t.trunc_subsecs(0))
            .unwrap_or(created_at);
        let id = self.tickets.len() as u64 + 1;
        let mut ticket = Ticket {
            id,
            subject: new.subject.clone(),
            description_text: html::to_text(&new.description),
            description: new.description.clone(),
            status: STATUS_OPEN,
            priority: 1,
            source: new.source.unwrap_or(1),
            requester_id,
            responder_id: None,
            group_id: None,
            ticket_type: None,
            tags: Vec::new(),
            custom_fields: Ticket::default_custom_fields(),
            created_at,
            updated_at,
            deleted: false,
            conversations: Vec::new(),
        };
        apply(&mut ticket, changes);
        ticket.updated_at = updated_at;
        let json = ticket.to_json(true);
        self.tickets.push(ticket);
        self.webhooks.fire(id, &Trigger::Created, origin);
        for body in new.customer_replies.iter().flatten() {
            let reply = NewConversation {
                author: Author::Requester,
                body: body.clone(),
                source: SOURCE_REPLY,
                private: false,
                incoming: true,
            };
            self.add_conversation_at(id, reply, origin, created_at);
        }
        // The replies share the creation second, so the ticket's JSON (its `updated_at`
        // included) is unchanged by them.
        Ok(json)
    }

    /// Creates many tickets quickly (no validation beyond statuses, no webhooks).
    pub fn bulk_create(&mut self, req: &BulkTickets) -> Result<Vec<u64>, String> {
        if req.count > MAX_BULK {
            return Err(format!("count must be at most {MAX_BULK}"));
        }
        let cycle = req
            .status_cycle
            .clone()
            .unwrap_or_else(|| vec![STATUS_OPEN]);
        if cycle.is_empty() {
            return Err("status_cycle must not be empty".into());
        }
        if let Some(bad) = cycle
            .iter()
            .find(|s| !STATUSES.iter().any(|(id, _, _)| id == *s))
        {
            return Err(format!("status_cycle holds unknown status {bad}"));
        }
        let step = Duration::seconds(req.step_secs.unwrap_or(1));
        let start = req
            .updated_at_start
            .map(|t| t.trunc_subsecs(0))
            .unwrap_or_else(|| now() - step * i32::try_from(req.count).unwrap_or(i32::MAX));
        let prefix = req.subject_prefix.as_deref().unwrap_or("Bulk ticket");
        let requester_id =
            self.contact_for(req.email.as_deref().unwrap_or(DEFAULT_REQUESTER), None);
        let replies = req.conversations_per_ticket.unwrap_or(0);
        let source = req.source.unwrap_or(1);

        let first = self.tickets.len() as u64 + 1;
        self.tickets.reserve(req.count as usize);
        for i in 0..req.count {
            let id = first + u64::from(i);
            let at = start + step * i as i32;
            let text = format!("Bulk seeded ticket {id}");
            let conversations = (0..replies)
                .map(|k| {
                    let conversation_id = self.next_conversation_id;
                    self.next_conversation_id += 1;
                    let body_text = format!("Follow-up {} on ticket {id}", k + 1);
                    Conversation {
                        id: conversation_id,
                        ticket_id: id,
                        body: format!("<div>{body_text}</div>"),
                        body_text,
                        incoming: true,
                        private: false,
                        user_id: requester_id,
                        source: SOURCE_REPLY,
                        from_email: None,
                        to_emails: vec![SUPPORT_EMAIL.to_string()],
                        created_at: at,
                    }
                })
                .collect();
            self.tickets.push(Ticket {
                id,
                subject: format!("{prefix} {i}"),
                description: format!("<div>{text}</div>"),
                description_text: text,
                status: cycle[i as usize % cycle.len()],
                priority: 1,
                source,
                requester_id,
                responder_id: None,
                group_id: None,
                ticket_type: None,
                tags: Vec::new(),
                custom_fields: Ticket::default_custom_fields(),
                created_at: at,
                updated_at: at,
                deleted: false,
                conversations,
            });
        }
        Ok((first..first + u64::from(req.count)).collect())
    }

    /// Applies a validated update; fires rule 2 once per changed property that Freshdesk
    /// reports as a triggered event. `None` when the ticket does not exist.
    pub fn update_ticket(
        &mut self,
        id: u64,
        changes: TicketChanges,
        origin: Origin,
    ) -> Option<Value> {
        let ticket = self.ticket_mut(id)?;
        let before = ticket.to_json(true);
        let triggers = apply(ticket, changes);
        if ticket.to_json(true) != before {
            ticket.updated_at = now().max(ticket.updated_at);
        }
        let json = ticket.to_json(true);
        for trigger in &triggers {
            self.webhooks.fire(id, trigger, origin);
        }
        Some(json)
    }

    /// Adds a reply or note; fires rule 2. A customer reply reopens a pending, resolved or
    /// closed ticket (and fires the status change too). `None` when the ticket does not exist.
    pub fn add_conversation(
        &mut self,
        ticket_id: u64,
        new: NewConversation,
        origin: Origin,
    ) -> Option<Value> {
        self.add_conversation_at(ticket_id, new, origin, now())
    }

    /// [`Self::add_conversation`], stamped `at`.
    fn add_conversation_at(
        &mut self,
        ticket_id: u64,
        new: NewConversation,
        origin: Origin,
        at: chrono::DateTime<chrono::Utc>,
    ) -> Option<Value> {
        let requester_id = self.ticket(ticket_id)?.requester_id;
        let requester_email = self.contact(requester_id).map(|c| c.email.clone());
        let user_id = match new.author {
            Author::Requester => requester_id,
            Author::User(id) => id,
        };
        let from_requester = user_id == requester_id;
        let (from_email, to_emails) = match (new.source, from_requester) {
            (SOURCE_REPLY, true) => (requester_email, vec![SUPPORT_EMAIL.to_string()]),
            (SOURCE_REPLY, false) => (
                Some(SUPPORT_EMAIL.to_string()),
                requester_email.into_iter().collect(),
            ),
            _ => (None, Vec::new()),
        };
        let id = self.next_conversation_id;
        self.next_conversation_id += 1;
        let (body, body_text) = match origin {
            Origin::Api => self.body_rewrites.apply(new.body),
            Origin::Ui | Origin::Silent => {
                let text = html::to_text(&new.body);
                (new.body, text)
            }
        };
        let conversation = Conversation {
            id,
            ticket_id,
            body_text,
            body,
            incoming: new.incoming,
            private: new.private,
            user_id,
            source: new.source,
            from_email,
            to_emails,
            created_at: at,
        };
        let json = conversation.to_json();

        let ticket = self.ticket_mut(ticket_id)?;
        ticket.conversations.push(conversation);
        ticket.updated_at = at.max(ticket.updated_at);
        let mut triggers = vec![Trigger::Updated(match (new.source, new.private) {
            (SOURCE_NOTE, true) => "{note_type:private}".to_string(),
            (SOURCE_NOTE, false) => "{note_type:public}".to_string(),
            _ => "{reply_sent:sent}".to_string(),
        })];
        if matches!(new.author, Author::Requester) && REOPENED_BY_CUSTOMER.contains(&ticket.status)
        {
            triggers.push(Trigger::changed(
                "status",
                Some(ticket.status),
                Some(STATUS_OPEN),
            ));
            ticket.status = STATUS_OPEN;
        }
        for trigger in &triggers {
            self.webhooks.fire(ticket_id, trigger, origin);
        }
        Some(json)
    }

    /// Deletes a conversation from its ticket, as an agent deleting a note or reply in the UI:
    /// the later ones move up a place in the listing; no rule fires. False when no ticket holds
    /// it.
    pub fn delete_conversation(&mut self, id: u64) -> bool {
        for ticket in &mut self.tickets {
            if let Some(at) = ticket.conversations.iter().position(|c| c.id == id) {
                ticket.conversations.remove(at);
                return true;
            }
        }
        false
    }

    /// Deletes a ticket (it disappears from the API; ids are not reused).
    pub fn delete_ticket(&mut self, id: u64) -> bool {
        match self.ticket_mut(id) {
            Some(ticket) => {
                ticket.deleted = true;
                ticket.updated_at = now().max(ticket.updated_at);
                true
            }
            None => false,
        }
    }
}

/// Writes `changes` into `ticket` and returns the rule-2 events for what actually changed, in
/// a fixed order (status, priority, type, group, responder). Tags, subject and custom fields
/// change silently: Freshdesk has no update-rule event for them.
fn apply(ticket: &mut Ticket, changes: TicketChanges) -> Vec<Trigger> {
    let mut triggers = Vec::new();
    if let Some(status) = changes.status.filter(|s| *s != ticket.status) {
        triggers.push(Trigger::changed(
            "status",
            Some(ticket.status),
            Some(status),
        ));
        ticket.status = status;
    }
    if let Some(priority) = changes.priority.filter(|p| *p != ticket.priority) {
        triggers.push(Trigger::changed(
            "priority",
            Some(ticket.priority),
            Some(priority),
        ));
        ticket.priority = priority;
    }
    if let Some(kind) = changes.ticket_type.filter(|t| *t != ticket.ticket_type) {
        triggers.push(Trigger::changed(
            "ticket_type",
            ticket.ticket_type.clone(),
            kind.clone(),
        ));
        ticket.ticket_type = kind;
    }
    if let Some(group) = changes.group_id.filter(|g| *g != ticket.group_id) {
        triggers.push(Trigger::changed("group_id", ticket.group_id, group));
        ticket.group_id = group;
    }
    if let Some(responder) = changes.responder_id.filter(|r| *r != ticket.responder_id) {
        triggers.push(Trigger::changed(
            "responder_id",
            ticket.responder_id,
            responder,
        ));
        ticket.responder_id = responder;
    }
    if let Some(subject) = changes.subject {
        ticket.subject = subject;
    }
    if let Some(tags) = changes.tags {
        ticket.tags = tags;
    }
    ticket.custom_fields.extend(changes.custom_fields);
    triggers
}

fn status_ids() -> String {
    STATUSES
        .iter()
        .map(|(id, _, _)| id.to_string())
        .collect::<Vec<_>>()
        .join(",")
}
