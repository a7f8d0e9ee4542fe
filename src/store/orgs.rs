//! Organizations and their Freshdesk connection (settings, sealed API key, AI agent).

use super::{decode, encode, SledStore, StoreResult};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use ticketsync_actors::org::{AiAgent, Org, OrgSettings};
use ticketsync_actors::OrgId;

/// An org's stored Freshdesk connection. One record, so a save replaces it atomically.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ConnectionRecord {
    pub settings: OrgSettings,
    /// The API key, encrypted by the `KeyVault` (nonce || ciphertext), base64 in JSON.
    #[serde(with = "sealed_bytes")]
    pub api_key_sealed: Vec<u8>,
    /// The agent the API key belongs to.
    pub agent: AiAgent,
    /// False after a disconnect; settings and key are kept.
    pub connected: bool,
    /// The first successful save, ever (gates missed creations and starts the backfill).
    pub first_connected_at: DateTime<Utc>,
    /// The last successful save.
    pub saved_at: DateTime<Utc>,
}

mod sealed_bytes {
    use base64::engine::general_purpose::STANDARD;
    use base64::Engine;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&STANDARD.encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(d)?;
        STANDARD.decode(text).map_err(serde::de::Error::custom)
    }
}

/// Organizations and their connections.
#[async_trait]
pub trait OrgStore {
    /// Store a new org.
    async fn insert_org(&self, org: &Org) -> StoreResult<()>;
    /// One org.
    async fn org(&self, id: OrgId) -> StoreResult<Option<Org>>;
    /// Every org, oldest first.
    async fn orgs(&self) -> StoreResult<Vec<Org>>;
    /// The org's connection, if it was ever connected.
    async fn connection(&self, org: OrgId) -> StoreResult<Option<ConnectionRecord>>;
    /// Replace the org's connection in one write.
    async fn put_connection(&self, org: OrgId, record: &ConnectionRecord) -> StoreResult<()>;
}

#[async_trait]
impl OrgStore for SledStore {
    async fn insert_org(&self, org: &Org) -> StoreResult<()> {
        self.orgs.insert(org.id.0.as_bytes(), encode(org))?;
        Ok(())
    }

    async fn org(&self, id: OrgId) -> StoreResult<Option<Org>> {
        self.orgs
            .get(id.0.as_bytes())?
            .map(|v| decode(&v))
            .transpose()
    }

    async fn orgs(&self) -> StoreResult<Vec<Org>> {
        let mut orgs = self
            .orgs
            .iter()
            .values()
            .map(|v| decode::<Org>(&v?))
            .collect::<StoreResult<Vec<_>>>()?;
        orgs.sort_by_key(|o| (o.created_at, o.id));
        Ok(orgs)
    }

    async fn connection(&self, org: OrgId) -> StoreResult<Option<ConnectionRecord>> {
        self.connections
            .get(org.0.as_bytes())?
            .map(|v| decode(&v))
            .transpose()
    }

    async fn put_connection(&self, org: OrgId, record: &ConnectionRecord) -> StoreResult<()> {
        self.connections.insert(org.0.as_bytes(), encode(record))?;
        Ok(())
    }
}
