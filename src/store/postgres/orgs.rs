//! Orgs, their Freshdesk connections, their admin tokens, the erasure of an org, and the deployment-wide values in `meta` (the webhook
//! token secret, the shard count). None of these writes is fenced: any node accepts admin
//! calls.

use super::{PgError, PgStore};
use crate::access::TokenId;
use crate::store::{ConnectionRecord, OrgStore, StoreResult, TokenRecord};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use ticketsync_actors::org::Org;
use ticketsync_actors::OrgId;
use tokio_postgres::types::Json;
use tokio_postgres::Client;

pub(super) const TOKEN_SECRET_KEY: &str = "webhook_token_secret";
const ADMIN_TOKEN_KEY: &str = "admin_token";
const SHARDS_KEY: &str = "shards";

/// Record the shard count at first start and insert its lease rows; refuse a count other than
/// the one the database was set up with (it would move orgs between shards under their owners).
pub(super) async fn ensure_shards(client: &Client, shards: u32) -> Result<(), PgError> {
    let stored = set_once(client, SHARDS_KEY, shards.to_string().into_bytes()).await?;
    let stored = String::from_utf8_lossy(&stored).into_owned();
    if stored != shards.to_string() {
        return Err(PgError::Config(format!(
            "cluster.shards is {shards} but the database was set up with {stored} shards: \
             every node must use {stored}"
        )));
    }
    client
        .execute(
            "INSERT INTO shard_leases (shard) SELECT generate_series(0, $1 - 1) \
             ON CONFLICT (shard) DO NOTHING",
            &[&(shards as i32)],
        )
        .await?;
    Ok(())
}

/// The value of a `meta` key: `fresh` if this call wrote it first, else the first writer's.
pub(super) async fn set_once(
    client: &Client,
    key: &str,
    fresh: Vec<u8>,
) -> Result<Vec<u8>, PgError> {
    client
        .execute(
            "INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING",
            &[&key, &fresh],
        )
        .await?;
    // A second statement: its snapshot sees a concurrent first writer's committed row.
    let row = client
        .query_one("SELECT value FROM meta WHERE key = $1", &[&key])
        .await?;
    Ok(row.get(0))
}

#[async_trait]
impl OrgStore for PgStore {
    /// Store an org (replacing a record with its id).
    async fn insert_org(&self, org: &Org) -> StoreResult<()> {
        let org = org.clone();
        self.run(move |pool| async move {
            pool.get()
                .await?
                .execute(
                    "INSERT INTO orgs (id, created_at, record) VALUES ($1, $2, $3) \
                     ON CONFLICT (id) DO UPDATE SET created_at = EXCLUDED.created_at, \
                     record = EXCLUDED.record",
                    &[&org.id.0, &org.created_at, &Json(&org)],
                )
                .await?;
            Ok(())
        })
        .await?;
        Ok(())
    }

    /// One org.
    async fn org(&self, id: OrgId) -> StoreResult<Option<Org>> {
        let org = self
            .run(move |pool| async move {
                let row = pool
                    .get()
                    .await?
                    .query_opt("SELECT record FROM orgs WHERE id = $1", &[&id.0])
                    .await?;
                Ok(row.map(|r| r.get::<_, Json<Org>>(0).0))
            })
            .await?;
        Ok(org)
    }

    /// Every org, oldest first (created_at, then id).
    async fn orgs(&self) -> StoreResult<Vec<Org>> {
        let mut orgs = self
            .run(move |pool| async move {
                let rows = pool
                    .get()
                    .await?
                    .query("SELECT record FROM orgs", &[])
                    .await?;
                Ok(rows
                    .iter()
                    .map(|r| r.get::<_, Json<Org>>(0).0)
                    .collect::<Vec<_>>())
            })
            .await?;
        // Sorted here, on the records' own times (the column keeps microseconds only).
        orgs.sort_by_key(|o| (o.created_at, o.id));
        Ok(orgs)
    }

    /// The org's connection, if it was ever connected.
    async fn connection(&self, org: OrgId) -> StoreResult<Option<ConnectionRecord>> {
        let record = self
            .run(move |pool| async move {
                let row = pool
                    .get()
                    .await?
                    .query_opt(
                        "SELECT record FROM connections WHERE org_id = $1",
                        &[&org.0],
                    )
                    .await?;
                Ok(row.map(|r| r.get::<_, Json<ConnectionRecord>>(0).0))
            })
            .await?;
        Ok(record)
    }

    async fn connected(&self, org: OrgId) -> StoreResult<bool> {
        let connected = self
            .run(move |pool| async move {
                let row = pool
                    .get()
                    .await?
                    .query_opt(
                        "SELECT (record->>'connected')::boolean FROM connections WHERE org_id = $1",
                        &[&org.0],
                    )
                    .await?;
                Ok(row
                    .and_then(|r| r.get::<_, Option<bool>>(0))
                    .unwrap_or(false))
            })
            .await?;
        Ok(connected)
    }

    /// Replace the org's connection in one write.
    async fn put_connection(&self, org: OrgId, record: &ConnectionRecord) -> StoreResult<()> {
        let record = record.clone();
        self.run(move |pool| async move {
            pool.get()
                .await?
                .execute(
                    "INSERT INTO connections (org_id, record) VALUES ($1, $2) \
                     ON CONFLICT (org_id) DO UPDATE SET record = EXCLUDED.record",
                    &[&org.0, &Json(&record)],
                )
                .await?;
            Ok(())
        })
        .await?;
        Ok(())
    }

    /// A token with this id already stored is kept (`migrate-store` may run twice).
    async fn insert_token(&self, token: &TokenRecord) -> StoreResult<()> {
        let token = token.clone();
        self.run(move |pool| async move {
            pool.get()
                .await?
                .execute(
                    "INSERT INTO org_tokens (id, org_id, name, hash, created_at, last_used_at) \
                     VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (id) DO NOTHING",
                    &[
                        &token.id.0,
                        &token.org.0,
                        &token.name,
                        &&token.hash[..],
                        &token.created_at,
                        &token.last_used_at,
                    ],
                )
                .await?;
            Ok(())
        })
        .await?;
        Ok(())
    }

    async fn org_tokens(&self, org: OrgId) -> StoreResult<Vec<TokenRecord>> {
        let tokens = self
            .run(move |pool| async move {
                let rows = pool
                    .get()
                    .await?
                    .query(
                        &format!(
                            "SELECT {TOKEN_COLUMNS} FROM org_tokens WHERE org_id = $1 \
                             ORDER BY created_at, id"
                        ),
                        &[&org.0],
                    )
                    .await?;
                rows.iter().map(token_of).collect::<Result<Vec<_>, _>>()
            })
            .await?;
        Ok(tokens)
    }

    async fn token_by_hash(&self, hash: &[u8; 32]) -> StoreResult<Option<TokenRecord>> {
        let hash = hash.to_vec();
        let token = self
            .run(move |pool| async move {
                let row = pool
                    .get()
                    .await?
                    .query_opt(
                        &format!("SELECT {TOKEN_COLUMNS} FROM org_tokens WHERE hash = $1"),
                        &[&hash],
                    )
                    .await?;
                row.as_ref().map(token_of).transpose()
            })
            .await?;
        Ok(token)
    }

    async fn touch_token(&self, org: OrgId, id: TokenId, at: DateTime<Utc>) -> StoreResult<()> {
        self.run(move |pool| async move {
            pool.get()
                .await?
                .execute(
                    "UPDATE org_tokens SET last_used_at = $3 WHERE org_id = $1 AND id = $2",
                    &[&org.0, &id.0, &at],
                )
                .await?;
            Ok(())
        })
        .await?;
        Ok(())
    }

    async fn delete_token(&self, org: OrgId, id: TokenId) -> StoreResult<bool> {
        let deleted = self
            .run(move |pool| async move {
                let n = pool
                    .get()
                    .await?
                    .execute(
                        "DELETE FROM org_tokens WHERE org_id = $1 AND id = $2",
                        &[&org.0, &id.0],
                    )
                    .await?;
                Ok(n > 0)
            })
            .await?;
        Ok(deleted)
    }

    /// One transaction: every table with an `org_id` column (found in the catalogue, so a
    /// table added by a later migration is erased too), then the org.
    async fn erase_org(&self, org: OrgId) -> StoreResult<()> {
        self.run(move |pool| async move {
            let mut client = pool.get().await?;
            let tx = client.transaction().await?;
            // The org's row first: this waits for the engine writes that hold it
            // (`existing_orgs`), and later ones find it gone and write nothing.
            tx.execute("DELETE FROM orgs WHERE id = $1", &[&org.0])
                .await?;
            let tables = tx
                .query(
                    "SELECT quote_ident(table_name::text) FROM information_schema.columns \
                     WHERE table_schema = current_schema() AND column_name = 'org_id' \
                     ORDER BY table_name",
                    &[],
                )
                .await?;
            for table in tables {
                let table: String = table.get(0);
                tx.execute(&format!("DELETE FROM {table} WHERE org_id = $1"), &[&org.0])
                    .await?;
            }
            tx.commit().await?;
            Ok(())
        })
        .await?;
        self.webhook_seconds.lock().remove(&org);
        Ok(())
    }
}

/// The columns of `org_tokens`, in the order `token_of` reads them.
const TOKEN_COLUMNS: &str = "id, org_id, name, hash, created_at, last_used_at";

fn token_of(row: &tokio_postgres::Row) -> Result<TokenRecord, PgError> {
    let hash: Vec<u8> = row.get(3);
    Ok(TokenRecord {
        id: TokenId(row.get(0)),
        org: OrgId(row.get(1)),
        name: row.get(2),
        hash: hash
            .try_into()
            .map_err(|_| PgError::Corrupt("a token hash is not 32 bytes".into()))?,
        created_at: row.get(4),
        last_used_at: row.get(5),
    })
}

/// Set a `meta` key, replacing its value.
pub(super) async fn put_meta(client: &Client, key: &str, value: Vec<u8>) -> Result<(), PgError> {
    client
        .execute(
            "INSERT INTO meta (key, value) VALUES ($1, $2) \
             ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
            &[&key, &value],
        )
        .await?;
    Ok(())
}

impl PgStore {
    /// The deployment's generated admin token, shared by every node: `fresh` if this call
    /// stored it first, else the stored one; and whether it was `fresh`.
    pub async fn generated_admin_token(&self, fresh: String) -> StoreResult<(String, bool)> {
        let stored = self
            .run(move |pool| async move {
                let client = pool.get().await?;
                let stored = set_once(&client, ADMIN_TOKEN_KEY, fresh.clone().into_bytes()).await?;
                let stored = String::from_utf8(stored)
                    .map_err(|_| PgError::Corrupt("the stored admin token is not text".into()))?;
                let generated = stored == fresh;
                Ok((stored, generated))
            })
            .await?;
        Ok(stored)
    }

    /// Replace the stored admin token (a migrated deployment keeps its token).
    pub async fn put_admin_token(&self, token: String) -> StoreResult<()> {
        self.run(move |pool| async move {
            let client = pool.get().await?;
            put_meta(&client, ADMIN_TOKEN_KEY, token.into_bytes()).await
        })
        .await?;
        Ok(())
    }
}
