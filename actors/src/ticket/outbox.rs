//! The outbox of a pass: send the pending writes in order, and before resending a post that
//! may already have reached Freshdesk, look for it among the ticket's conversations.

use super::machine::{self, ObservedConversation, Posted};
use super::pass::{OutboxStop, Pass, Transient};
use super::read::text_of;
use super::state::*;
use crate::freshdesk::{Conversation, FreshdeskApi, FreshdeskError};
use crate::metrics::EngineMetrics;
use crate::session::Author;
use std::time::Duration;

impl Pass<'_> {
    /// Send the outbox in order. Posts that may already have reached Freshdesk (after a
    /// crash, a timeout or a 5xx) are first looked for in the ticket's conversations.
    pub(super) async fn execute_outbox(
        &self,
        record: &mut TicketRecord,
        reconcile: bool,
    ) -> Result<(), OutboxStop> {
        let mut reconcile = reconcile;
        while let Some(effect) = record.pending_effects.first().cloned() {
            if !self.snapshot.is_connected() {
                machine::cancel_outbox_on_disconnect(record, self.deps.clock.now());
                self.commit(record).await;
                return Ok(());
            }
            if effect.kind.is_post() && (reconcile || effect.attempts > 0) {
                if let Some(found) = self.find_sent(record, &effect).await? {
                    EngineMetrics::inc(&self.deps.metrics.effects_reconciled);
                    tracing::info!(org_id = %self.org_id, ticket_id = %self.ticket_id, effect = %effect.id, "effect was already sent; not sending it again");
                    machine::effect_sent(record, effect.id, Some(found));
                    self.commit(record).await;
                    continue;
                }
                // Not there (yet). An attempt still in flight, or held by Freshdesk past our
                // timeout, may land later: only once it cannot is the post sent again.
                if let Some(wait) = machine::resend_wait(
                    &effect,
                    self.deps.config.write_settle,
                    self.deps.clock.now(),
                ) {
                    tracing::info!(org_id = %self.org_id, ticket_id = %self.ticket_id, effect = %effect.id, wait_ms = wait.as_millis() as u64, "an earlier attempt may still land; checking again before resending");
                    return Err(OutboxStop::Settle(wait + Duration::from_millis(50)));
                }
            }
            reconcile = false;
            if let Some(e) = record.pending_effects.first_mut() {
                e.attempts += 1;
                if e.kind.is_post() {
                    // Durable before the request leaves: after a crash, the next incarnation
                    // knows an attempt may be in flight.
                    e.last_attempt_at = Some(self.deps.clock.now());
                    self.commit(record).await;
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
                    machine::assignee_rejected(
                        record,
                        &effect,
                        &e.to_string(),
                        self.deps.clock.now(),
                    );
                }
                Err(e) if e.is_transient() => {
                    self.commit(record).await;
                    return Err(OutboxStop::Transient(Transient::Freshdesk(e)));
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
            self.commit(record).await;
        }
        Ok(())
    }

    async fn commit(&self, record: &TicketRecord) {
        if let Err(e) = self.deps.store.commit(record, &[]).await {
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
                Err(e) => return Err(Transient::Freshdesk(e)),
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
