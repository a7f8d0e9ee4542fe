//! Organizations, their Freshdesk connection (settings, sealed API key, AI agent) and their
//! admin tokens (stored as SHA-256 hashes only), and the erasure of an org with everything
//! stored for it.

use super::{decode, encode, SledStore, StoreResult};
use crate::access::TokenId;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sled::Transactional;
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

/// An org admin token as stored: its SHA-256, never the token itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenRecord {
    pub id: TokenId,
    pub org: OrgId,
    /// What the operator called it (1–100 characters).
    pub name: String,
    /// SHA-256 of the token text.
    pub hash: [u8; 32],
    pub created_at: DateTime<Utc>,
    /// When it last authenticated a request (updated at most once a minute).
    pub last_used_at: Option<DateTime<Utc>>,
}

/// Organizations, their connections and their admin tokens.
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
    /// Whether the org has a connection and it is connected: the webhook route's check on
    /// every request, without decoding the rest of the record.
    async fn connected(&self, org: OrgId) -> StoreResult<bool>;
    /// Replace the org's connection in one write.
    async fn put_connection(&self, org: OrgId, record: &ConnectionRecord) -> StoreResult<()>;
    /// Store a new org admin token.
    async fn insert_token(&self, token: &TokenRecord) -> StoreResult<()>;
    /// The org's admin tokens, oldest first.
    async fn org_tokens(&self, org: OrgId) -> StoreResult<Vec<TokenRecord>>;
    /// The token whose SHA-256 is `hash`, if one is stored.
    async fn token_by_hash(&self, hash: &[u8; 32]) -> StoreResult<Option<TokenRecord>>;
    /// Record that the token authenticated a request at `at` (nothing if it is gone).
    async fn touch_token(&self, org: OrgId, id: TokenId, at: DateTime<Utc>) -> StoreResult<()>;
    /// Remove one of the org's tokens; whether it was there.
    async fn delete_token(&self, org: OrgId, id: TokenId) -> StoreResult<bool>;
    /// Erase the org and everything stored for it: connection and key, tokens, queued events,
    /// ticket records and sessions with their indexes, job states, last-webhook time, the last
    /// self-test report, and last the org itself (so a failed erase can be retried through the org). Not durable until
    /// the next flush.
    async fn erase_org(&self, org: OrgId) -> StoreResult<()>;
}

/// The sled key of an org's token: org id then token id (an org's tokens are one prefix).
fn token_key(org: OrgId, id: TokenId) -> Vec<u8> {
    [org.0.as_bytes().as_slice(), id.0.as_bytes().as_slice()].concat()
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

    async fn connected(&self, org: OrgId) -> StoreResult<bool> {
        #[derive(Deserialize)]
        struct Connected {
            connected: bool,
        }
        Ok(self
            .connections
            .get(org.0.as_bytes())?
            .map(|v| decode::<Connected>(&v))
            .transpose()?
            .is_some_and(|c| c.connected))
    }

    async fn put_connection(&self, org: OrgId, record: &ConnectionRecord) -> StoreResult<()> {
        self.connections.insert(org.0.as_bytes(), encode(record))?;
        Ok(())
    }

    async fn insert_token(&self, token: &TokenRecord) -> StoreResult<()> {
        let key = token_key(token.org, token.id);
        let value = encode(token);
        (&self.tokens, &self.token_hashes)
            .transaction(|(tokens, hashes)| {
                tokens.insert(key.as_slice(), value.as_slice())?;
                hashes.insert(&token.hash[..], key.as_slice())?;
                Ok(())
            })
            .map_err(transaction_error)
    }

    async fn org_tokens(&self, org: OrgId) -> StoreResult<Vec<TokenRecord>> {
        let mut tokens = self
            .tokens
            .scan_prefix(org.0.as_bytes())
            .values()
            .map(|v| decode::<TokenRecord>(&v?))
            .collect::<StoreResult<Vec<_>>>()?;
        tokens.sort_by_key(|t| (t.created_at, t.id.0));
        Ok(tokens)
    }

    async fn token_by_hash(&self, hash: &[u8; 32]) -> StoreResult<Option<TokenRecord>> {
        let Some(key) = self.token_hashes.get(hash)? else {
            return Ok(None);
        };
        self.tokens.get(key)?.map(|v| decode(&v)).transpose()
    }

    async fn touch_token(&self, org: OrgId, id: TokenId, at: DateTime<Utc>) -> StoreResult<()> {
        let key = token_key(org, id);
        let mut corrupt = None;
        self.tokens.fetch_and_update(&key, |old| {
            let mut token: TokenRecord = match decode(old?) {
                Ok(t) => t,
                Err(e) => {
                    corrupt = Some(e);
                    return old.map(<[u8]>::to_vec);
                }
            };
            token.last_used_at = Some(at);
            Some(encode(&token))
        })?;
        corrupt.map_or(Ok(()), Err)
    }

    async fn delete_token(&self, org: OrgId, id: TokenId) -> StoreResult<bool> {
        let key = token_key(org, id);
        (&self.tokens, &self.token_hashes)
            .transaction(|(tokens, hashes)| {
                let Some(old) = tokens.remove(key.as_slice())? else {
                    return Ok(false);
                };
                let token: TokenRecord =
                    decode(&old).map_err(sled::transaction::ConflictableTransactionError::Abort)?;
                hashes.remove(&token.hash[..])?;
                Ok(true)
            })
            .map_err(transaction_error)
    }

    async fn erase_org(&self, org: OrgId) -> StoreResult<()> {
        // The connection first: the webhook answers 410 from here on.
        self.connections.remove(org.0.as_bytes())?;
        for token in self.org_tokens(org).await? {
            self.delete_token(org, token.id).await?;
        }
        self.erase_engine_records(org)?;
        self.self_tests.remove(org.0.as_bytes())?;
        self.orgs.remove(org.0.as_bytes())?;
        Ok(())
    }
}

fn transaction_error(
    e: sled::transaction::TransactionError<super::StoreError>,
) -> super::StoreError {
    match e {
        sled::transaction::TransactionError::Abort(e) => e,
        sled::transaction::TransactionError::Storage(e) => e.into(),
    }
}
