//! The engine's `OrgProvider`: an org's stored connection with its key decrypted and a
//! Freshdesk client built through the domain guard.

use crate::connect::FreshdeskConnector;
use crate::secrets::KeyVault;
use crate::store::SledStore;
use std::sync::Arc;
use ticketsync_actors::ports::{OrgConnection, OrgProvider, StoreFailure};
use ticketsync_actors::OrgId;

/// Org connections read from sled.
pub struct StoredOrgs {
    pub store: SledStore,
    pub vault: Arc<KeyVault>,
    pub connector: FreshdeskConnector,
}

impl OrgProvider for StoredOrgs {
    fn connection(&self, org: OrgId) -> Result<Option<OrgConnection>, StoreFailure> {
        let Some(record) = self
            .store
            .connection(org)
            .map_err(|e| StoreFailure(e.to_string()))?
        else {
            return Ok(None);
        };
        let key = self
            .vault
            .decrypt(org, &record.api_key_sealed)
            .map_err(|e| StoreFailure(e.to_string()))?;
        // A domain the configuration no longer allows is never called: the engine treats the
        // org as unconnected until an admin saves an allowed one.
        let domain = match self.connector.domain(&record.settings.domain) {
            Ok(d) => d,
            Err(e) => {
                tracing::warn!(%org, error = %e, "stored Freshdesk domain is no longer allowed");
                return Ok(None);
            }
        };
        Ok(Some(OrgConnection {
            api: Arc::new(self.connector.client(domain, key)),
            settings: record.settings,
            agent: record.agent,
            first_connected_at: record.first_connected_at,
            connected: record.connected,
        }))
    }
}
