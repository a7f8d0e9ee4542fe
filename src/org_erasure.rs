//! Deleting an organization (contract §12): `AppState::delete_org` (called by the JSON route
//! `DELETE /api/v1/orgs/{id}` and the console's delete page) disconnects the org, stops its
//! engine work, then erases everything stored for it.
//!
//! An engine actor of the org may still be mid-pass when the erase runs (a pass that was
//! waiting on Freshdesk, a retry timer, a backfill page): its commit would write the ticket
//! back after the erase. So the engine does not get the store directly but through
//! `ErasureFence`, which refuses the engine's writes for orgs marked erased; marking waits for
//! the writes already in flight to end. Marked first, erased second, nothing of the org can
//! come back. The marks live in memory: after a restart no actor holds anything of an erased
//! org, and nothing is left in the store to wake one.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use std::collections::HashSet;
use std::sync::Arc;
use ticketsync_actors::ports::{EngineStore, EventKind, QueuedEvent, StoreFailure};
use ticketsync_actors::ticket::state::TicketRecord;
use ticketsync_actors::{OrgId, TicketId};
use tokio::sync::RwLock;

/// The orgs erased since this process started. Engine writes hold a read guard while they run;
/// marking an org takes the write guard, so it returns once no write that could still be for
/// the org is in flight.
#[derive(Default)]
pub struct ErasedOrgs(RwLock<HashSet<OrgId>>);

impl ErasedOrgs {
    /// Refuse every engine write for `org` from now on; returns once the writes in flight
    /// ended.
    pub async fn mark(&self, org: OrgId) {
        self.0.write().await.insert(org);
    }

    /// Let the engine write for `org` again (its erase failed, so it still exists).
    pub async fn unmark(&self, org: OrgId) {
        self.0.write().await.remove(&org);
    }
}

/// The engine's store: the service's store, with writes for erased orgs dropped.
pub struct ErasureFence {
    store: Arc<dyn EngineStore>,
    erased: Arc<ErasedOrgs>,
}

impl ErasureFence {
    /// Fence `store` with the marks of `erased`.
    pub fn new(store: Arc<dyn EngineStore>, erased: Arc<ErasedOrgs>) -> Self {
        Self { store, erased }
    }
}

#[async_trait]
impl EngineStore for ErasureFence {
    /// A webhook racing the delete is refused (503, Freshdesk retries and then hears 410).
    async fn append_event(
        &self,
        org: OrgId,
        ticket: TicketId,
        kind: EventKind,
        received_at: DateTime<Utc>,
    ) -> Result<QueuedEvent, StoreFailure> {
        let erased = self.erased.0.read().await;
        if erased.contains(&org) {
            return Err(StoreFailure(format!("organization {org} was deleted")));
        }
        self.store
            .append_event(org, ticket, kind, received_at)
            .await
    }

    async fn queued_events(
        &self,
        org: OrgId,
        ticket: TicketId,
    ) -> Result<Vec<QueuedEvent>, StoreFailure> {
        self.store.queued_events(org, ticket).await
    }

    async fn discard_events(&self, events: &[QueuedEvent]) -> Result<(), StoreFailure> {
        let erased = self.erased.0.read().await;
        let kept: Vec<QueuedEvent> = events
            .iter()
            .filter(|e| !erased.contains(&e.org_id))
            .cloned()
            .collect();
        self.store.discard_events(&kept).await
    }

    async fn load_ticket(
        &self,
        org: OrgId,
        ticket: TicketId,
    ) -> Result<Option<TicketRecord>, StoreFailure> {
        self.store.load_ticket(org, ticket).await
    }

    /// Dropped for an erased org (not an error: the actor's work ended with its org).
    async fn commit(
        &self,
        record: &TicketRecord,
        consumed: &[QueuedEvent],
    ) -> Result<(), StoreFailure> {
        let erased = self.erased.0.read().await;
        if erased.contains(&record.org_id) {
            return Ok(());
        }
        self.store.commit(record, consumed).await
    }

    async fn tickets_with_work(&self) -> Result<Vec<(OrgId, TicketId)>, StoreFailure> {
        self.store.tickets_with_work().await
    }

    async fn flush(&self) -> Result<(), StoreFailure> {
        self.store.flush().await
    }

    async fn load_job(
        &self,
        org: OrgId,
        job: &str,
    ) -> Result<Option<serde_json::Value>, StoreFailure> {
        self.store.load_job(org, job).await
    }

    /// Dropped for an erased org.
    async fn save_job(
        &self,
        org: OrgId,
        job: &str,
        state: &serde_json::Value,
    ) -> Result<(), StoreFailure> {
        let erased = self.erased.0.read().await;
        if erased.contains(&org) {
            return Ok(());
        }
        self.store.save_job(org, job, state).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::SledStore;
    use ticketsync_actors::ticket::state::{GateDecision, GateOutcome};

    #[actix_rt::test]
    async fn a_marked_orgs_writes_are_dropped_until_it_is_unmarked() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn EngineStore> = Arc::new(SledStore::open(dir.path()).unwrap());
        let erased = Arc::new(ErasedOrgs::default());
        let fence = ErasureFence::new(store.clone(), erased.clone());
        let org = OrgId::new();
        let record = |ticket| {
            TicketRecord::new(
                org,
                TicketId(ticket),
                GateDecision {
                    decision: GateOutcome::Tracked,
                    reason: "test".into(),
                    at: Utc::now(),
                },
            )
        };

        erased.mark(org).await;
        fence.commit(&record(1), &[]).await.unwrap();
        assert!(fence
            .append_event(org, TicketId(1), EventKind::Sweep, Utc::now())
            .await
            .is_err());
        assert_eq!(store.load_ticket(org, TicketId(1)).await.unwrap(), None);

        erased.unmark(org).await;
        fence.commit(&record(2), &[]).await.unwrap();
        assert!(store.load_ticket(org, TicketId(2)).await.unwrap().is_some());
        fence
            .append_event(org, TicketId(2), EventKind::Sweep, Utc::now())
            .await
            .unwrap();
    }
}
