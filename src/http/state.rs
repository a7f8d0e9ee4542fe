//! What every request handler shares: the application state and the readiness flag. Startup
//! builds them; the routes only read them, so routes never import startup.

use crate::access::Access;
use crate::cluster::Cluster;
use crate::connect::{ConnectService, ConnectionView, SaveRequest};
use crate::connected_orgs::ConnectedOrgs;
use crate::http::error::{ApiError, Code};
use crate::metrics::ServiceMetrics;
use crate::org_erasure::ErasedOrgs;
use crate::secrets::WebhookTokens;
use crate::selftest::SelfTests;
use crate::store::{Store, StoreError};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use ticketsync_actors::engine::Engine;
use ticketsync_actors::OrgId;

/// Whether storage is open and recovery is done (`/readyz`).
#[derive(Default)]
pub struct Readiness(AtomicBool);

impl Readiness {
    /// Mark the service ready.
    pub fn set_ready(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    /// Whether the service is ready.
    pub fn is_ready(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// What every request handler shares.
pub struct AppState {
    pub store: Store,
    pub connect: ConnectService,
    pub engine: Engine,
    pub tokens: Arc<WebhookTokens>,
    /// Which orgs are connected, for the webhook route (forgotten by `org_changed`).
    pub connected_orgs: Arc<ConnectedOrgs>,
    pub metrics: Arc<ServiceMetrics>,
    /// Who a presented token stands for (operator or org admin).
    pub access: Arc<Access>,
    /// This node's membership when several nodes share a PostgreSQL database.
    pub cluster: Option<Arc<Cluster>>,
    /// The console's session cookies and CSRF tokens.
    pub console: crate::console::Sessions,
    /// The setup self-test: runs, reports, webhook arrivals.
    pub self_tests: SelfTests,
    /// The orgs deleted since start, whose writes the engine's store refuses.
    pub erased: Arc<ErasedOrgs>,
}

impl AppState {
    /// Save the org's Freshdesk settings (`connect` validates them against Freshdesk), then
    /// start the org's work: mirror the change on every node, tell the engine (which schedules
    /// the backfill on a first connect). Answers the connection as the API shows it.
    pub async fn save_connection(
        &self,
        org: OrgId,
        request: SaveRequest,
    ) -> Result<ConnectionView, ApiError> {
        let (view, first_connect) = self.connect.save(org, request).await?;
        self.org_changed(org)
            .await
            .map_err(|e| ApiError::internal(&e))?;
        self.engine
            .org_connected(org, first_connect)
            .await
            .map_err(|e| ApiError::internal(&e))?;
        if first_connect {
            tracing::info!(org_id = %org, "first connect: backfill scheduled");
        }
        Ok(self.with_runtime(org, view).await?)
    }

    /// The org's connection as the API shows it (404 `not_connected` if never connected).
    pub async fn connection(&self, org: OrgId) -> Result<ConnectionView, ApiError> {
        let view = self.connect.show(org).await?;
        Ok(self.with_runtime(org, view).await?)
    }

    /// Disconnect the org from Freshdesk (settings and key are kept). Returns once no write
    /// to Freshdesk of this node is in flight: after this it posts nothing more. The owner,
    /// when it is another node, stops once it hears of the change.
    pub async fn disconnect(&self, org: OrgId) -> Result<(), ApiError> {
        self.connect.disconnect(org).await?;
        self.org_changed(org)
            .await
            .map_err(|e| ApiError::internal(&e))
    }

    /// Add what only the running service knows (last webhook) to a connection view.
    pub async fn with_runtime(
        &self,
        org: OrgId,
        mut view: ConnectionView,
    ) -> Result<ConnectionView, crate::store::StoreError> {
        view.last_webhook_at = self.store.last_webhook_at(org).await?;
        view.backfill = self.backfill_view(org).await;
        view.error = self.engine.org_pause(org);
        Ok(view)
    }

    /// The org's stored connection changed: mirror it here, and tell the node that owns the
    /// org (which may be another one) to mirror it too and start or stop its jobs.
    pub async fn org_changed(
        &self,
        org: OrgId,
    ) -> Result<(), ticketsync_actors::ports::StoreFailure> {
        self.connected_orgs.forget(org);
        self.engine.org_changed(org).await?;
        if let Some(cluster) = &self.cluster {
            cluster.announce_org_change(org).await;
        }
        Ok(())
    }

    /// Delete the org (contract §12; the JSON route and the console's delete page call this):
    /// disconnect it, so that once `org_changed` returns this node writes nothing more to its
    /// Freshdesk and its owner (another node) is told; refuse every further engine write for
    /// it here and stop its jobs; then erase everything stored for it and flush. Its webhook
    /// answers 410 from the moment the connection is erased. 404 `org_not_found` when no org
    /// has this id. A failure part-way leaves the org in place (it is erased last): retry.
    pub async fn delete_org(&self, org: OrgId) -> Result<(), ApiError> {
        match self.disconnect(org).await {
            // Never connected: nothing of it runs, nothing to stop.
            Err(e) if matches!(e.code, Code::NotConnected) => {}
            other => other?,
        }
        self.erased.mark(org).await;
        self.engine.stop_orgs(|o| o == org).await;
        let erased = async {
            self.store.erase_org(org).await?;
            self.store.flush().await.map_err(StoreError::from)
        };
        if let Err(e) = erased.await {
            // The org stays, disconnected: if it is connected again rather than deleted
            // again, its engine writes must count again.
            self.erased.unmark(org).await;
            return Err(e.into());
        }
        tracing::info!(org_id = %org, "organization deleted and erased");
        Ok(())
    }

    /// The org's backfill progress as the API shows it.
    pub async fn backfill_view(&self, org: OrgId) -> serde_json::Value {
        self.engine
            .backfill(org)
            .await
            .map(|b| serde_json::to_value(b).expect("progress serialises"))
            .unwrap_or_else(|| serde_json::json!({"state": "not_started"}))
    }
}
