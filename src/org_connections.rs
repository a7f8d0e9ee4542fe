//! The engine's `OrgProvider`: an org's stored connection with its key decrypted and a
//! Freshdesk client built through the domain guard.

use crate::connect::FreshdeskConnector;
use crate::secrets::KeyVault;
use crate::store::Store;
use std::sync::Arc;
use ticketsync_actors::ports::{ConnectionFailure, OrgConnection, OrgProvider, StoreFailure};
use ticketsync_actors::OrgId;

/// Org connections read from sled.
pub struct StoredOrgs {
    pub store: Store,
    pub vault: Arc<KeyVault>,
    pub connector: FreshdeskConnector,
}

#[async_trait::async_trait]
impl OrgProvider for StoredOrgs {
    async fn connection(&self, org: OrgId) -> Result<Option<OrgConnection>, ConnectionFailure> {
        let Some(record) = self
            .store
            .connection(org)
            .await
            .map_err(|e| StoreFailure(e.to_string()))?
        else {
            return Ok(None);
        };
        let key = self
            .vault
            .decrypt(org, &record.api_key_sealed)
            .map_err(|e| StoreFailure(e.to_string()))?;
        // A domain the configuration no longer allows is never called. A connected org keeps
        // its queued work, paused with this reason, until the operator allows the domain again
        // or an admin saves an allowed one.
        let domain = match self.connector.domain(&record.settings.domain) {
            Ok(d) => d,
            Err(_) if !record.connected => return Ok(None),
            Err(e) => {
                return Err(ConnectionFailure::DomainNotAllowed(format!(
                    "The stored Freshdesk domain {} is not allowed by this server's configuration ({e}). Allow it again (freshdesk.allowed_domain_suffixes or freshdesk.insecure_hosts), or save the connection with an allowed domain.",
                    record.settings.domain
                )))
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
