//! The inbox seen from the engine: append events durably and wake the tickets they are for.
//! `Engine::submit` and `Engine::queue`, the org jobs (backfill, sweep) and the webhook route
//! all queue work the same way: append, flush, wake (route to the ticket's shard).

use super::deps::EngineDeps;
use super::router::{Route, Shard};
use crate::ids::{OrgId, TicketId};
use crate::ports::{EventKind, QueuedEvent, StoreFailure};
use actix::prelude::*;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

/// Appends events to the durable inbox and wakes their tickets' actors.
#[derive(Clone)]
pub struct Inbox {
    deps: Arc<EngineDeps>,
    shards: Arc<Vec<Addr<Shard>>>,
}

impl Inbox {
    pub(crate) fn new(deps: Arc<EngineDeps>, shards: Arc<Vec<Addr<Shard>>>) -> Self {
        Self { deps, shards }
    }

    /// The shard that owns the ticket's actor.
    pub(crate) fn shard(&self, org: OrgId, ticket: TicketId) -> &Addr<Shard> {
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        (org, ticket).hash(&mut hasher);
        &self.shards[(hasher.finish() % self.shards.len() as u64) as usize]
    }

    /// The ticket has queued live work.
    pub fn wake(&self, org_id: OrgId, ticket_id: TicketId) {
        self.route(org_id, ticket_id, false);
    }

    /// The ticket has queued work, `background` only or not. Work of an org that does not
    /// run here is left to its owner (woken through the store).
    pub(crate) fn route(&self, org_id: OrgId, ticket_id: TicketId, background: bool) {
        if !self.deps.ownership.runs(org_id) {
            return;
        }
        self.shard(org_id, ticket_id).do_send(Route {
            org_id,
            ticket_id,
            background,
        });
    }

    /// Append one event (not yet durable: `flush` makes it so).
    pub async fn append(
        &self,
        org: OrgId,
        ticket: TicketId,
        kind: EventKind,
    ) -> Result<QueuedEvent, StoreFailure> {
        self.deps
            .store
            .append_event(org, ticket, kind, self.deps.clock.now())
            .await
    }

    /// Make every appended event durable.
    pub async fn flush(&self) -> Result<(), StoreFailure> {
        self.deps.store.flush().await
    }

    /// Append an event for each ticket, make them durable, wake the tickets.
    pub async fn enqueue(
        &self,
        org: OrgId,
        tickets: &[TicketId],
        kind: EventKind,
    ) -> Result<(), StoreFailure> {
        if tickets.is_empty() {
            return Ok(());
        }
        let now = self.deps.clock.now();
        for ticket in tickets {
            self.deps
                .store
                .append_event(org, *ticket, kind.clone(), now)
                .await?;
        }
        self.flush().await?;
        for ticket in tickets {
            self.route(org, *ticket, kind.is_background());
        }
        Ok(())
    }
}
