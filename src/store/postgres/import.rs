//! Writes of `migrate-store` (`src/store/migrate.rs`): a sled deployment copied in while no
//! node runs, so without lease proofs; every write is idempotent (upserts, events skipped when
//! their id is already queued), so a second run changes nothing.

use super::appends::{insert_events, NewEvent};
use super::engine::{write_records, StoredEvent};
use super::{orgs, PgError, PgStore};
use chrono::{DateTime, Utc};
use std::collections::HashSet;
use ticketsync_actors::ports::QueuedEvent;
use ticketsync_actors::ticket::state::TicketRecord;
use ticketsync_actors::OrgId;
use tokio_postgres::types::Json;

impl PgStore {
    /// Refuse while any node holds an unexpired lease: a running node would write beside the
    /// copy (and its engine would not see what is copied under it).
    pub async fn ensure_no_node_runs(&self) -> Result<(), PgError> {
        let held: i64 = self
            .run(|pool| async move {
                let row = pool
                    .get()
                    .await?
                    .query_one(
                        "SELECT count(*) FROM shard_leases \
                         WHERE owner IS NOT NULL AND expires_at > now()",
                        &[],
                    )
                    .await?;
                Ok(row.get(0))
            })
            .await?;
        if held > 0 {
            return Err(PgError::Config(format!(
                "{held} shard leases are held: stop every ticketsync node on this database \
                 first (or wait until their leases expire)"
            )));
        }
        Ok(())
    }

    /// Write ticket records as they are (sessions, outbox, progress).
    pub async fn import_records(&self, records: Vec<TicketRecord>) -> Result<(), PgError> {
        self.run(move |pool| async move { write_records(&pool, None, &records, &[]).await })
            .await
    }

    /// Queue the events whose ids are not queued yet, in the order given (each ticket's
    /// oldest first). Returns how many were queued now.
    pub async fn import_events(&self, events: Vec<QueuedEvent>) -> Result<usize, PgError> {
        self.run(move |pool| async move {
            let queued: HashSet<_> = pool
                .get()
                .await?
                .query("SELECT event FROM inbox", &[])
                .await?
                .iter()
                .map(|r| r.get::<_, Json<StoredEvent>>(0).0.id)
                .collect();
            let fresh: Vec<NewEvent> = events
                .into_iter()
                .filter(|e| !queued.contains(&e.id))
                .map(|e| NewEvent {
                    org_id: e.org_id,
                    ticket_id: e.ticket_id,
                    event: StoredEvent {
                        id: e.id,
                        kind: e.kind,
                        received_at: e.received_at,
                    },
                    stamps_webhook: false,
                })
                .collect();
            for chunk in fresh.chunks(500) {
                insert_events(&pool, chunk).await?;
            }
            Ok(fresh.len())
        })
        .await
    }

    /// Store a background job's state.
    pub async fn import_job(
        &self,
        org: OrgId,
        job: String,
        state: serde_json::Value,
    ) -> Result<(), PgError> {
        self.run(move |pool| async move {
            pool.get()
                .await?
                .execute(
                    "INSERT INTO jobs (org_id, job, state) VALUES ($1, $2, $3) \
                     ON CONFLICT (org_id, job) DO UPDATE SET state = EXCLUDED.state",
                    &[&org.0, &job, &Json(&state)],
                )
                .await?;
            Ok(())
        })
        .await
    }

    /// Record the org's last webhook time (the later of the stored one and `at`).
    pub async fn import_webhook_time(&self, org: OrgId, at: DateTime<Utc>) -> Result<(), PgError> {
        self.run(move |pool| async move {
            pool.get()
                .await?
                .execute(
                    "INSERT INTO org_webhooks (org_id, last_webhook_at) VALUES ($1, $2) \
                     ON CONFLICT (org_id) DO UPDATE SET last_webhook_at = \
                         GREATEST(org_webhooks.last_webhook_at, EXCLUDED.last_webhook_at)",
                    &[&org.0, &at],
                )
                .await?;
            Ok(())
        })
        .await
    }

    /// Replace the webhook token secret (the copied deployment's webhook URLs stay valid).
    pub async fn import_token_secret(&self, secret: [u8; 32]) -> Result<(), PgError> {
        self.run(move |pool| async move {
            let client = pool.get().await?;
            orgs::put_meta(&client, orgs::TOKEN_SECRET_KEY, secret.to_vec()).await
        })
        .await
    }
}
