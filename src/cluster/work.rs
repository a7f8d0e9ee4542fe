//! `EngineWork`: what the lease manager starts and stops on a shard — the engine's work for
//! the shard's orgs. Starting a shard first mirrors each of its orgs' stored connection (it
//! may have been saved or disconnected on another node), starts the jobs of connected orgs
//! (scheduling the first-connect backfill if the save happened on another node), then wakes
//! its tickets with work; pending writes they inherited are reconciled as after a crash.

use super::lease::ShardWork;
use crate::store::postgres::shard_of;
use crate::store::{Store, StoreError};
use async_trait::async_trait;
use ticketsync_actors::engine::Engine;
use ticketsync_actors::OrgId;

/// The engine's work on the shards this node owns.
pub struct EngineWork {
    pub engine: Engine,
    pub store: Store,
    pub shards: u32,
}

impl EngineWork {
    /// Mirror the stored connection of the orgs `which` selects and start the jobs of the
    /// connected ones (those whose work runs here: the engine ignores the others).
    pub async fn sync_orgs(&self, which: impl Fn(OrgId) -> bool) -> Result<(), StoreError> {
        for org in self.store.orgs().await? {
            if !which(org.id) {
                continue;
            }
            self.engine.org_changed(org.id).await?;
            let connected = self
                .store
                .connection(org.id)
                .await?
                .is_some_and(|c| c.connected);
            if connected {
                // "First connect" when no backfill was ever scheduled: a save on a node that
                // did not own the org could not schedule it (its job writes are fenced).
                self.engine.org_connected(org.id, true).await?;
            }
        }
        Ok(())
    }

    fn in_shard(&self, shard: u32) -> impl Fn(OrgId) -> bool {
        let shards = self.shards;
        move |org| shard_of(org, shards) == shard
    }
}

#[async_trait]
impl ShardWork for EngineWork {
    async fn start(&self, shard: u32) {
        if let Err(e) = self.sync_orgs(self.in_shard(shard)).await {
            tracing::error!(shard, error = %e, "cannot start the shard's org jobs; its tickets still run");
        }
        match self.engine.recover_where(self.in_shard(shard)).await {
            Ok(0) => {}
            Ok(tickets) => tracing::info!(shard, tickets, "woke the shard's tickets with work"),
            Err(e) => {
                tracing::error!(shard, error = %e, "cannot look for the shard's work; the periodic look retries")
            }
        }
    }

    async fn stop(&self, shard: u32) {
        self.engine.stop_orgs(self.in_shard(shard)).await;
    }
}
