//! What every request handler shares: the application state and the readiness flag. Startup
//! builds them; the routes only read them, so routes never import startup.

use crate::access::Access;
use crate::cluster::Cluster;
use crate::connect::{ConnectService, ConnectionView};
use crate::metrics::ServiceMetrics;
use crate::secrets::WebhookTokens;
use crate::store::Store;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use ticketsync_actors::engine::Engine;

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
    pub metrics: Arc<ServiceMetrics>,
    /// Who a presented token stands for (operator or org admin).
    pub access: Arc<Access>,
    /// This node's membership when several nodes share a PostgreSQL database.
    pub cluster: Option<Arc<Cluster>>,
    /// The console's session cookies and CSRF tokens.
    pub console: crate::console::Sessions,
}

impl AppState {
    /// Add what only the running service knows (last webhook) to a connection view.
    pub async fn with_runtime(
        &self,
        org: ticketsync_actors::OrgId,
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
        org: ticketsync_actors::OrgId,
    ) -> Result<(), ticketsync_actors::ports::StoreFailure> {
        self.engine.org_changed(org).await?;
        if let Some(cluster) = &self.cluster {
            cluster.announce_org_change(org).await;
        }
        Ok(())
    }

    /// The org's backfill progress as the API shows it.
    pub async fn backfill_view(&self, org: ticketsync_actors::OrgId) -> serde_json::Value {
        self.engine
            .backfill(org)
            .await
            .map(|b| serde_json::to_value(b).expect("progress serialises"))
            .unwrap_or_else(|| serde_json::json!({"state": "not_started"}))
    }
}
