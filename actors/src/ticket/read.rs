//! The Freshdesk reads of a pass: re-read a ticket (gate it if new, mirror it, ask the
//! responder), import a backfilled ticket, and list the conversations not yet mirrored.

use super::machine::{self, Observation, ObservedConversation, ObservedTicket, ReadPlan};
use super::pass::{Pass, Transient};
use super::state::*;
use crate::freshdesk::{Conversation, FreshdeskApi, FreshdeskError, Page, Ticket};
use crate::metrics::EngineMetrics;
use crate::org::actor::{OrgError, ResolveAuthors};
use crate::org::budget::Priority;
use crate::session::Author;
use chrono::{DateTime, Utc};

/// A conversation's text: Freshdesk's `body_text`, or the text of its HTML body when Freshdesk
/// left `body_text` empty.
pub(super) fn text_of(c: &Conversation) -> String {
    if c.body_text.is_empty() {
        machine::html_to_text(&c.body)
    } else {
        c.body_text.clone()
    }
}

impl Pass<'_> {
    /// Re-read the ticket as `plan` says; gate it if new; mirror; ask the responder when the
    /// AI answers.
    pub(super) async fn reread(
        &mut self,
        record: &mut Option<TicketRecord>,
        plan: ReadPlan,
    ) -> Result<(), Transient> {
        if record
            .as_ref()
            .is_some_and(|r| r.gate.decision == GateOutcome::Ignored)
        {
            return Ok(());
        }
        if let (ReadPlan::ConversationsFirst, Some(r)) = (plan, record.as_mut()) {
            let listed_at = self.deps.clock.now();
            let listing = self.list_new_conversations(r).await?;
            if !listing.refused && listing.fresh.is_empty() {
                // Only conversations already mirrored (the AI's own posts among them): an
                // echo or a duplicate hint. Nothing to read, nothing to decide; the call
                // succeeded, so a later failure backs off from the start again.
                r.retries = 0;
                return Ok(());
            }
            // Something new, or the listing was refused (the ticket deleted?): the ticket read
            // says why, and a readable ticket goes on with this listing, not a second one.
            let Some(ticket) = self.read_ticket(record).await? else {
                return Ok(());
            };
            let conversations = self.resolve_authors(listing.fresh, &ticket).await?;
            let observation = Observation {
                ticket: self.observed_ticket(&ticket),
                conversations,
                conversations_total: listing.total,
                conversations_listed_first_at: Some(listed_at),
            };
            let r = record
                .as_mut()
                .expect("read_ticket keeps the record it was given");
            self.decide(r, &observation, self.deps.clock.now()).await;
            return Ok(());
        }
        let Some(ticket) = self.read_ticket(record).await? else {
            return Ok(());
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
            conversations_listed_first_at: None,
        };
        self.decide(r, &observation, now).await;
        Ok(())
    }

    /// Read the ticket. None: Freshdesk refused it for good (deleted, forbidden), noted on the
    /// record.
    async fn read_ticket(
        &self,
        record: &mut Option<TicketRecord>,
    ) -> Result<Option<Ticket>, Transient> {
        match self.reader().ticket(self.ticket_id).await {
            Ok(t) => Ok(Some(t.value)),
            Err(FreshdeskError::NotFound) => {
                if let Some(r) = record.as_mut() {
                    r.last_error = Some(ErrorNote {
                        at: self.deps.clock.now(),
                        message: "the ticket no longer exists in Freshdesk".into(),
                    });
                }
                Ok(None)
            }
            Err(e) if e.is_transient() => Err(Transient::Freshdesk(e)),
            Err(e) => {
                tracing::warn!(org_id = %self.org_id, ticket_id = %self.ticket_id, error = %e, "ticket re-read refused");
                if let Some(r) = record.as_mut() {
                    r.last_error = Some(ErrorNote {
                        at: self.deps.clock.now(),
                        message: e.to_string(),
                    });
                }
                Ok(None)
            }
        }
    }

    /// Mirror the observation read at `now`, and ask the responder when the AI answers.
    async fn decide(&self, r: &mut TicketRecord, observation: &Observation, now: DateTime<Utc>) {
        let step = machine::observe(r, observation, &self.view(), now);
        if let Some(request) = step.ask {
            EngineMetrics::inc(&self.deps.metrics.responder_calls);
            let decision = match self.deps.responder.decide(&request).await {
                Ok(d) => d,
                Err(e) => {
                    tracing::warn!(org_id = %self.org_id, ticket_id = %self.ticket_id, error = %e, "responder failed; handing off");
                    machine::responder_failed(&request, &e.to_string())
                }
            };
            machine::respond(r, decision, &self.view(), self.deps.clock.now());
        }
        r.retries = 0;
    }

    /// Import a backfilled ticket as history, unless ticketsync already knows it (live traffic
    /// got there first) or it is no longer open or pending. The gate's assignment rule applies:
    /// with `auto_handle_all` off only the AI agent's and the default group's tickets are
    /// imported.
    pub(super) async fn import(
        &mut self,
        record: &mut Option<TicketRecord>,
    ) -> Result<(), Transient> {
        if !machine::import_eligible(record.as_ref()) {
            return Ok(());
        }
        let ticket = match self.reader().ticket(self.ticket_id).await {
            Ok(t) => t.value,
            Err(e) if e.is_transient() => return Err(Transient::Freshdesk(e)),
            Err(_) => return Ok(()),
        };
        if !machine::predates_connection(
            ticket.created_at,
            self.snapshot.connection.first_connected_at,
        ) {
            // Created after the connection: live traffic, gated like any new ticket.
            self.read_priority = Priority::Sync;
            return self.reread(record, ReadPlan::Full).await;
        }
        if !machine::open_or_pending(ticket.status) {
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
                conversations_listed_first_at: None,
            };
            machine::import_history(&mut fresh, &observation, now);
        }
        *record = Some(fresh);
        Ok(())
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
            status_name: self.snapshot.status_name(ticket.status.id()),
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
        let listing = self.list_new_conversations(record).await?;
        let observed = self.resolve_authors(listing.fresh, ticket).await?;
        Ok((observed, listing.total))
    }

    /// List the conversations not yet mirrored, from the page the watermark says (stepping
    /// back while conversations deleted in Freshdesk moved the new ones to earlier pages).
    async fn list_new_conversations(&self, record: &TicketRecord) -> Result<Listing, Transient> {
        // Always listed, also on the first read of a ticket whose `updated_at` equals its
        // `created_at`: with one-second timestamps a reply written in the creation second
        // leaves both equal, and the AI must decide on the whole thread (contract §4.4).
        let known = |id| {
            record
                .session
                .as_ref()
                .is_some_and(|s| s.messages.iter().any(|m| m.conversation_id == Some(id)))
        };
        let mut first_page = machine::first_conversations_page(record.watermark.conversations_seen);
        let mut page = first_page;
        let mut fetched = Vec::new();
        let mut refused = false;
        loop {
            let Some(result) = self.conversations_page(page).await? else {
                refused = true;
                break;
            };
            let last = !result.has_next;
            fetched.extend(result.items);
            if last {
                break;
            }
            page += 1;
        }
        while !refused
            && machine::list_page_before(first_page, fetched.first().map(|c| known(c.id)))
        {
            first_page -= 1;
            match self.conversations_page(first_page).await? {
                Some(result) => {
                    fetched.splice(0..0, result.items);
                }
                None => refused = true,
            }
        }
        let total = (first_page - 1) * machine::CONVERSATIONS_PER_PAGE + fetched.len() as u32;
        let fresh = fetched.into_iter().filter(|c| !known(c.id)).collect();
        Ok(Listing {
            fresh,
            total,
            refused,
        })
    }

    /// One page of the ticket's conversations. None: Freshdesk refused the listing (404, 403).
    async fn conversations_page(&self, page: u32) -> Result<Option<Page<Conversation>>, Transient> {
        match self.reader().conversations(self.ticket_id, page).await {
            Ok(p) => Ok(Some(p.value)),
            Err(FreshdeskError::NotFound) => Ok(None),
            Err(e) if e.is_transient() => Err(Transient::Freshdesk(e)),
            Err(e) => {
                tracing::warn!(org_id = %self.org_id, ticket_id = %self.ticket_id, error = %e, "conversations refused");
                Ok(None)
            }
        }
    }

    /// The conversations as observed, authors resolved through the agent directory.
    async fn resolve_authors(
        &self,
        fresh: Vec<Conversation>,
        ticket: &Ticket,
    ) -> Result<Vec<ObservedConversation>, Transient> {
        if fresh.is_empty() {
            return Ok(Vec::new());
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
            .map_err(|e| Transient::Org(e.to_string()))?
            .map_err(|e| match e {
                OrgError::Freshdesk(f) => Transient::Freshdesk(f),
                OrgError::Connection(c) => Transient::Org(c.to_string()),
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
        Ok(observed)
    }
}

/// The conversations a listing found not yet mirrored.
struct Listing {
    fresh: Vec<Conversation>,
    /// Conversations Freshdesk holds in all.
    total: u32,
    /// Freshdesk refused the listing (404, 403): what was found may not be all there is.
    refused: bool,
}
