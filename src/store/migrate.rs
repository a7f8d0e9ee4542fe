//! `ticketsync migrate-store --from-sled PATH --to-postgres URL`: copy a sled deployment (its
//! `storage.path`) into a PostgreSQL database, while no node runs on either.
//!
//! Copied: orgs, connections (API keys stay sealed: every PostgreSQL node must be configured
//! with the sled deployment's encryption key), org admin tokens (their hashes), ticket records (sessions, outbox, progress),
//! queued events, background job states, last-webhook times, the webhook token secret (the
//! webhook URLs given to Freshdesk stay valid) and a generated admin token. Idempotent: every
//! write replaces or skips what an earlier run wrote, so running it twice leaves the same rows.

use super::postgres::{PgError, PgOptions, PgStore, ShardTokens};
use super::{OrgStore, SledStore, StoreAdmin, StoreError, StoreResult, TicketQueries};
use std::path::Path;
use std::sync::Arc;

/// Records written per statement.
const CHUNK: usize = 500;

/// What a run copied.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Copied {
    pub orgs: usize,
    pub connections: usize,
    pub tokens: usize,
    pub tickets: usize,
    /// Queued events copied now (events an earlier run copied are skipped).
    pub events: usize,
    pub jobs: usize,
    pub admin_token: bool,
}

impl std::fmt::Display for Copied {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} orgs, {} connections, {} org admin tokens, {} tickets, {} queued events (new), {} job states{}",
            self.orgs,
            self.connections,
            self.tokens,
            self.tickets,
            self.events,
            self.jobs,
            if self.admin_token {
                ", the generated admin token"
            } else {
                ""
            }
        )
    }
}

/// Copy the sled deployment at `sled_dir` into the database of `postgres`, set up (if new)
/// with `shards` shards.
pub async fn sled_to_postgres(
    sled_dir: &Path,
    postgres: &PgOptions,
    shards: u32,
) -> StoreResult<Copied> {
    if !sled_dir.join("db").is_dir() {
        return Err(StoreError::Corrupt(format!(
            "no sled database at {} (expected the deployment's storage.path, holding db/)",
            sled_dir.display()
        )));
    }
    let sled = SledStore::open(sled_dir)?;
    let pg = PgStore::open(
        postgres,
        Arc::new(ShardTokens::new("migrate-store", shards)),
    )
    .await?;
    pg.ensure_no_node_runs().await?;
    let mut copied = Copied::default();

    for org in sled.orgs().await? {
        pg.insert_org(&org).await?;
        copied.orgs += 1;
        if let Some(connection) = sled.connection(org.id).await? {
            pg.put_connection(org.id, &connection).await?;
            copied.connections += 1;
        }
        for token in sled.org_tokens(org.id).await? {
            pg.insert_token(&token).await?;
            copied.tokens += 1;
        }
        if let Some(at) = sled.last_webhook_at(org.id).await? {
            pg.import_webhook_time(org.id, at).await?;
        }
    }
    let mut records = Vec::with_capacity(CHUNK);
    for record in sled.export_records() {
        records.push(record?);
        if records.len() == CHUNK {
            copied.tickets += records.len();
            pg.import_records(std::mem::take(&mut records)).await?;
        }
    }
    copied.tickets += records.len();
    pg.import_records(records).await?;
    let events = sled.export_events().collect::<StoreResult<Vec<_>>>()?;
    copied.events = pg.import_events(events).await?;
    for job in sled.export_jobs() {
        let (org, job, state) = job?;
        pg.import_job(org, job, state).await?;
        copied.jobs += 1;
    }
    pg.import_token_secret(sled.webhook_token_secret().await?)
        .await?;
    match std::fs::read_to_string(sled_dir.join("admin_token")) {
        Ok(token) => {
            pg.put_admin_token(token.trim().to_string()).await?;
            copied.admin_token = true;
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => {
            return Err(PgError::Config(format!("cannot read the admin token file: {e}")).into())
        }
    }
    Ok(copied)
}
