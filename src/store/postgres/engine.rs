//! The engine's records: the inbox (queued events), ticket records with their session-list
//! columns, background job states; and the counts inspection shows.
//!
//! A ticket row carries, beside its record, the columns its indexes need: `pending` (it has
//! pending effects), `session_id` (session lookup), `session_updated_micros` and `summary`
//! (the session list, newest first, without reading records). They are written with the
//! record in one statement, so they never disagree with it.
//!
//! Engine writes (commit, discard, job state, seeded records) prove this node's lease of the
//! org's shard in the same transaction (`fence`). Appends are not fenced: any node accepts a
//! webhook; it commits with a `pg_notify` that wakes the owner.

use super::appends::NewEvent;
use super::fence::prove_leases;
use super::{PgError, PgStore};
use crate::store::{SessionCursor, SessionSummaryRow, StoreResult, TicketQueries};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use deadpool_postgres::Pool;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use ticketsync_actors::ports::{EngineStore, EventKind, QueuedEvent, StoreFailure};
use ticketsync_actors::ticket::state::TicketRecord;
use ticketsync_actors::{EventId, OrgId, SessionId, TicketId};
use tokio_postgres::types::Json;

/// A queued event as its `event` column holds it (the position is the row's `seq`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct StoredEvent {
    pub(super) id: EventId,
    pub(super) kind: EventKind,
    pub(super) received_at: DateTime<Utc>,
}

impl StoredEvent {
    pub(super) fn queued(self, seq: i64, org_id: OrgId, ticket_id: TicketId) -> QueuedEvent {
        QueuedEvent {
            seq: seq as u64,
            id: self.id,
            org_id,
            ticket_id,
            kind: self.kind,
            received_at: self.received_at,
        }
    }
}

/// The columns of a ticket row, from its record.
struct TicketRow {
    org_id: uuid::Uuid,
    ticket_id: i64,
    pending: bool,
    session_id: Option<uuid::Uuid>,
    session_updated_micros: Option<i64>,
    summary: Option<Json<SessionSummaryRow>>,
}

impl TicketRow {
    fn of(record: &TicketRecord) -> Self {
        let session = record.session.as_ref();
        Self {
            org_id: record.org_id.0,
            ticket_id: record.ticket_id.0 as i64,
            pending: !record.pending_effects.is_empty(),
            session_id: session.map(|s| s.id.0),
            session_updated_micros: session.map(|s| session_micros(s.updated_at)),
            summary: session.map(|s| Json(SessionSummaryRow::of(s))),
        }
    }
}

/// A session's position in its org's list: its update time in microseconds (never negative,
/// as in the cursor).
fn session_micros(updated_at: DateTime<Utc>) -> i64 {
    updated_at.timestamp_micros().max(0)
}

/// Of `orgs`, those that still exist, each locked `FOR KEY SHARE` until the transaction ends.
/// An engine write keeps only the records of these: the org may have been erased by another
/// node while this node's pass ran, and erasing deletes the org's row first (waiting for the
/// writes holding this lock), so a write either lands before the erase, which then deletes
/// it, or finds the org gone and writes nothing.
async fn existing_orgs(
    tx: &impl tokio_postgres::GenericClient,
    orgs: impl IntoIterator<Item = OrgId>,
) -> Result<std::collections::HashSet<OrgId>, PgError> {
    let ids: Vec<uuid::Uuid> = orgs.into_iter().map(|o| o.0).collect();
    let rows = tx
        .query(
            "SELECT id FROM orgs WHERE id = ANY($1) ORDER BY id FOR KEY SHARE",
            &[&ids],
        )
        .await?;
    Ok(rows.iter().map(|r| OrgId(r.get(0))).collect())
}

/// Write records (the last of duplicates wins), with the lease proof of their orgs' shards
/// (`fence`; None only for `migrate-store`, which runs while no node does), and delete the
/// consumed inbox rows, in one transaction.
pub(super) async fn write_records(
    pool: &Pool,
    fence: Option<&super::ShardTokens>,
    records: &[TicketRecord],
    consumed: &[i64],
) -> Result<(), PgError> {
    let mut latest: HashMap<(OrgId, TicketId), &TicketRecord> = HashMap::new();
    for record in records {
        latest.insert((record.org_id, record.ticket_id), record);
    }
    let mut client = pool.get().await?;
    let tx = client.transaction().await?;
    if let Some(tokens) = fence {
        prove_leases(&*tx, tokens, records.iter().map(|r| r.org_id)).await?;
        let present = existing_orgs(&*tx, latest.keys().map(|(org, _)| *org)).await?;
        latest.retain(|(org, _), _| present.contains(org));
    }
    let rows: Vec<(&TicketRecord, TicketRow)> = latest
        .into_values()
        .map(|r| (r, TicketRow::of(r)))
        .collect();
    if !consumed.is_empty() {
        tx.execute("DELETE FROM inbox WHERE seq = ANY($1)", &[&consumed])
            .await?;
    }
    if !rows.is_empty() {
        let upsert = tx
            .prepare_cached(
                "INSERT INTO tickets (org_id, ticket_id, record, pending, session_id, \
                     session_updated_micros, summary) \
                 SELECT * FROM unnest($1::uuid[], $2::bigint[], $3::json[], $4::bool[], \
                     $5::uuid[], $6::bigint[], $7::json[]) \
                 ON CONFLICT (org_id, ticket_id) DO UPDATE SET record = EXCLUDED.record, \
                     pending = EXCLUDED.pending, session_id = EXCLUDED.session_id, \
                     session_updated_micros = EXCLUDED.session_updated_micros, \
                     summary = EXCLUDED.summary",
            )
            .await?;
        let orgs: Vec<uuid::Uuid> = rows.iter().map(|(_, r)| r.org_id).collect();
        let tickets: Vec<i64> = rows.iter().map(|(_, r)| r.ticket_id).collect();
        let bodies: Vec<Json<&TicketRecord>> = rows.iter().map(|(rec, _)| Json(*rec)).collect();
        let pending: Vec<bool> = rows.iter().map(|(_, r)| r.pending).collect();
        let sessions: Vec<Option<uuid::Uuid>> = rows.iter().map(|(_, r)| r.session_id).collect();
        let micros: Vec<Option<i64>> = rows.iter().map(|(_, r)| r.session_updated_micros).collect();
        let summaries: Vec<Option<&Json<SessionSummaryRow>>> =
            rows.iter().map(|(_, r)| r.summary.as_ref()).collect();
        tx.execute(
            &upsert,
            &[
                &orgs, &tickets, &bodies, &pending, &sessions, &micros, &summaries,
            ],
        )
        .await?;
    }
    tx.commit().await?;
    Ok(())
}

fn failure(e: impl std::fmt::Display) -> StoreFailure {
    StoreFailure(e.to_string())
}

fn seqs(events: &[QueuedEvent]) -> Vec<i64> {
    events.iter().map(|e| e.seq as i64).collect()
}

/// Rows read per round trip while paging (the filter runs here, not in SQL).
const PAGE_CHUNK: usize = 100;

type SummaryChunk = Vec<(i64, i64, SessionSummaryRow)>;

#[async_trait]
impl EngineStore for PgStore {
    /// Committed (durable) when this returns, with a notification to the owner of the
    /// org's shard (not fenced: any node accepts webhooks).
    async fn append_event(
        &self,
        org: OrgId,
        ticket: TicketId,
        kind: EventKind,
        received_at: DateTime<Utc>,
    ) -> Result<QueuedEvent, StoreFailure> {
        // The org's last-webhook time is informational: written at most once a second.
        let second = received_at.timestamp();
        let stamps_webhook = matches!(kind, EventKind::Webhook { .. })
            && self.webhook_seconds.lock().insert(org, second) != Some(second);
        let event = StoredEvent {
            id: EventId::new(),
            kind,
            received_at,
        };
        let new = NewEvent {
            org_id: org,
            ticket_id: ticket,
            event: event.clone(),
            stamps_webhook,
        };
        let appends = self.appends.clone();
        let seq = self.run(move |_| appends.append(new)).await;
        match seq {
            Ok(seq) => Ok(event.queued(seq, org, ticket)),
            Err(e) => {
                if stamps_webhook {
                    // Not written: the next webhook of this second writes it.
                    self.webhook_seconds.lock().remove(&org);
                }
                Err(failure(e))
            }
        }
    }

    /// The ticket's queued events, oldest first.
    async fn queued_events(
        &self,
        org: OrgId,
        ticket: TicketId,
    ) -> Result<Vec<QueuedEvent>, StoreFailure> {
        self.run(move |pool| async move {
            let client = pool.get().await?;
            let statement = client
                .prepare_cached(
                    "SELECT seq, event FROM inbox WHERE org_id = $1 AND ticket_id = $2 \
                     ORDER BY seq",
                )
                .await?;
            let rows = client
                .query(&statement, &[&org.0, &(ticket.0 as i64)])
                .await?;
            Ok(rows
                .iter()
                .map(|r| {
                    let Json(event): Json<StoredEvent> = r.get(1);
                    event.queued(r.get(0), org, ticket)
                })
                .collect())
        })
        .await
        .map_err(failure)
    }

    /// Drop queued events without processing them (a disconnected org). Fenced.
    async fn discard_events(&self, events: &[QueuedEvent]) -> Result<(), StoreFailure> {
        let orgs: Vec<OrgId> = events.iter().map(|e| e.org_id).collect();
        let seqs = seqs(events);
        let tokens = self.tokens.clone();
        self.run(move |pool| async move {
            let mut client = pool.get().await?;
            let tx = client.transaction().await?;
            prove_leases(&*tx, &tokens, orgs).await?;
            tx.execute("DELETE FROM inbox WHERE seq = ANY($1)", &[&seqs])
                .await?;
            tx.commit().await?;
            Ok(())
        })
        .await
        .map_err(failure)
    }

    /// The ticket's record.
    async fn load_ticket(
        &self,
        org: OrgId,
        ticket: TicketId,
    ) -> Result<Option<TicketRecord>, StoreFailure> {
        self.ticket_record(org, ticket).await.map_err(failure)
    }

    /// Write the record and remove the consumed events, atomically. Fenced.
    async fn commit(
        &self,
        record: &TicketRecord,
        consumed: &[QueuedEvent],
    ) -> Result<(), StoreFailure> {
        let record = record.clone();
        let consumed = seqs(consumed);
        let tokens = self.tokens.clone();
        self.run(move |pool| async move {
            write_records(
                &pool,
                Some(&tokens),
                std::slice::from_ref(&record),
                &consumed,
            )
            .await
        })
        .await
        .map_err(failure)
    }

    /// Tickets that have queued events or pending effects, in (org, ticket) order.
    async fn tickets_with_work(&self) -> Result<Vec<(OrgId, TicketId)>, StoreFailure> {
        let mut tickets = self
            .run(move |pool| async move {
                let rows = pool
                    .get()
                    .await?
                    .query(
                        "SELECT org_id, ticket_id FROM inbox \
                         UNION SELECT org_id, ticket_id FROM tickets WHERE pending",
                        &[],
                    )
                    .await?;
                Ok(rows
                    .iter()
                    .map(|r| (OrgId(r.get(0)), TicketId(r.get::<_, i64>(1) as u64)))
                    .collect::<Vec<_>>())
            })
            .await
            .map_err(failure)?;
        tickets.sort();
        Ok(tickets)
    }

    /// Nothing to do: every write committed (with `synchronous_commit = on`) before it
    /// returned, so it is already durable.
    async fn flush(&self) -> Result<(), StoreFailure> {
        Ok(())
    }

    /// The stored state of an org's background job.
    async fn load_job(
        &self,
        org: OrgId,
        job: &str,
    ) -> Result<Option<serde_json::Value>, StoreFailure> {
        let job = job.to_string();
        self.run(move |pool| async move {
            let row = pool
                .get()
                .await?
                .query_opt(
                    "SELECT state FROM jobs WHERE org_id = $1 AND job = $2",
                    &[&org.0, &job],
                )
                .await?;
            Ok(row.map(|r| r.get(0)))
        })
        .await
        .map_err(failure)
    }

    /// Store the state of an org's background job. Fenced.
    async fn save_job(
        &self,
        org: OrgId,
        job: &str,
        state: &serde_json::Value,
    ) -> Result<(), StoreFailure> {
        let job = job.to_string();
        let state = state.clone();
        let tokens = self.tokens.clone();
        self.run(move |pool| async move {
            let mut client = pool.get().await?;
            let tx = client.transaction().await?;
            prove_leases(&*tx, &tokens, [org]).await?;
            if existing_orgs(&*tx, [org]).await?.contains(&org) {
                tx.execute(
                    "INSERT INTO jobs (org_id, job, state) VALUES ($1, $2, $3) \
                     ON CONFLICT (org_id, job) DO UPDATE SET state = EXCLUDED.state",
                    &[&org.0, &job, &state],
                )
                .await?;
            }
            tx.commit().await?;
            Ok(())
        })
        .await
        .map_err(failure)
    }
}

#[async_trait]
impl TicketQueries for PgStore {
    /// A session by id: its ticket's record.
    async fn ticket_by_session(&self, session: SessionId) -> StoreResult<Option<TicketRecord>> {
        let record = self
            .run(move |pool| async move {
                let row = pool
                    .get()
                    .await?
                    .query_opt(
                        "SELECT record FROM tickets WHERE session_id = $1",
                        &[&session.0],
                    )
                    .await?;
                Ok(row.map(|r| r.get::<_, Json<TicketRecord>>(0).0))
            })
            .await?;
        Ok(record)
    }

    /// A ticket's record.
    async fn ticket_record(
        &self,
        org: OrgId,
        ticket: TicketId,
    ) -> StoreResult<Option<TicketRecord>> {
        let record = self
            .run(move |pool| async move {
                let client = pool.get().await?;
                let statement = client
                    .prepare_cached(
                        "SELECT record FROM tickets WHERE org_id = $1 AND ticket_id = $2",
                    )
                    .await?;
                let row = client
                    .query_opt(&statement, &[&org.0, &(ticket.0 as i64)])
                    .await?;
                Ok(row.map(|r| r.get::<_, Json<TicketRecord>>(0).0))
            })
            .await?;
        Ok(record)
    }

    /// `keep` runs here, on chunks read in list order; the cursor is set only when another
    /// kept row follows (as on sled).
    async fn session_page(
        &self,
        org: OrgId,
        after: Option<&SessionCursor>,
        keep: &(dyn for<'r> Fn(&'r SessionSummaryRow) -> bool + Send + Sync),
        limit: usize,
    ) -> StoreResult<(Vec<SessionSummaryRow>, Option<SessionCursor>)> {
        let mut position =
            after.map(|cursor| (cursor.updated_micros() as i64, cursor.ticket().0 as i64));
        let chunk = PAGE_CHUNK.max(limit + 1);
        let mut rows = Vec::new();
        let mut last = None;
        loop {
            let page = self.summaries_after(org, position, chunk).await?;
            let exhausted = page.len() < chunk;
            for (micros, ticket, row) in page {
                position = Some((micros, ticket));
                if !keep(&row) {
                    continue;
                }
                if rows.len() == limit {
                    return Ok((
                        rows,
                        last.map(|(micros, ticket): (i64, i64)| {
                            SessionCursor::new(org, micros as u64, TicketId(ticket as u64))
                        }),
                    ));
                }
                last = Some((micros, ticket));
                rows.push(row);
            }
            if exhausted {
                return Ok((rows, None));
            }
        }
    }

    /// Write a batch of records at once (bench seeding, migration). Fenced.
    async fn put_records(&self, records: &[TicketRecord]) -> StoreResult<()> {
        let records = records.to_vec();
        let tokens = self.tokens.clone();
        self.run(
            move |pool| async move { write_records(&pool, Some(&tokens), &records, &[]).await },
        )
        .await?;
        Ok(())
    }

    /// Queued events of an org (its backlog).
    async fn last_webhook_at(&self, org: OrgId) -> StoreResult<Option<DateTime<Utc>>> {
        let at = self
            .run(move |pool| async move {
                let row = pool
                    .get()
                    .await?
                    .query_opt(
                        "SELECT last_webhook_at FROM org_webhooks WHERE org_id = $1",
                        &[&org.0],
                    )
                    .await?;
                Ok(row.map(|r| r.get(0)))
            })
            .await?;
        Ok(at)
    }

    async fn org_backlog(&self, org: OrgId) -> StoreResult<u64> {
        self.count("SELECT count(*) FROM inbox WHERE org_id = $1", Some(org))
            .await
    }

    /// Queued events in all.
    async fn inbox_depth(&self) -> StoreResult<u64> {
        self.count("SELECT count(*) FROM inbox", None).await
    }

    /// Tickets with pending effects.
    async fn pending_effect_tickets(&self) -> StoreResult<u64> {
        self.count("SELECT count(*) FROM tickets WHERE pending", None)
            .await
    }

    /// Tickets with a session.
    async fn tracked_tickets(&self) -> StoreResult<u64> {
        self.count(
            "SELECT count(*) FROM tickets WHERE session_id IS NOT NULL",
            None,
        )
        .await
    }
}

impl PgStore {
    /// Up to `limit` session summaries of the org after `position`, in list order.
    async fn summaries_after(
        &self,
        org: OrgId,
        position: Option<(i64, i64)>,
        limit: usize,
    ) -> Result<SummaryChunk, PgError> {
        self.run(move |pool| async move {
            let client = pool.get().await?;
            let limit = limit as i64;
            let rows = match position {
                None => {
                    client
                        .query(
                            "SELECT session_updated_micros, ticket_id, summary FROM tickets \
                             WHERE org_id = $1 AND session_updated_micros IS NOT NULL \
                             ORDER BY session_updated_micros DESC, ticket_id LIMIT $2",
                            &[&org.0, &limit],
                        )
                        .await?
                }
                Some((micros, ticket)) => {
                    client
                        .query(
                            "SELECT session_updated_micros, ticket_id, summary FROM tickets \
                             WHERE org_id = $1 AND session_updated_micros <= $2 \
                               AND (session_updated_micros < $2 OR ticket_id > $3) \
                             ORDER BY session_updated_micros DESC, ticket_id LIMIT $4",
                            &[&org.0, &micros, &ticket, &limit],
                        )
                        .await?
                }
            };
            Ok(rows
                .iter()
                .map(|r| {
                    let Json(summary): Json<SessionSummaryRow> = r.get(2);
                    (r.get(0), r.get(1), summary)
                })
                .collect())
        })
        .await
    }

    /// A `count(*)` query, optionally of one org.
    async fn count(&self, sql: &'static str, org: Option<OrgId>) -> StoreResult<u64> {
        let n: i64 = self
            .run(move |pool| async move {
                let client = pool.get().await?;
                let row = match org {
                    Some(org) => client.query_one(sql, &[&org.0]).await?,
                    None => client.query_one(sql, &[]).await?,
                };
                Ok(row.get(0))
            })
            .await?;
        Ok(n.max(0) as u64)
    }
}
