//! The inbox's writer: appends from every caller, grouped into one multi-row insert per
//! transaction while the previous groups commit (group commit in the service, on top of
//! PostgreSQL's own).
//!
//! A webhook's event, its org's last-webhook time and the `pg_notify` that wakes the owner
//! are one statement: committed (and with `synchronous_commit = on`, durable) when it
//! returns. Transactions that notify serialise at commit in PostgreSQL (the notification
//! queue is locked from pre-commit to the end of commit, fsync included), so without
//! grouping every webhook would wait for its own fsync in turn; grouped, one fsync
//! acknowledges a whole group. Numbers: docs/decisions.md, "PostgreSQL client".

use super::engine::StoredEvent;
use super::PgError;
use chrono::{DateTime, Utc};
use deadpool_postgres::Pool;
use ticketsync_actors::{OrgId, TicketId};
use tokio::sync::{mpsc, oneshot};
use tokio_postgres::types::Json;

/// The channel a committed append notifies, with `<org uuid>:<ticket id>`.
pub const WAKE_CHANNEL: &str = "ticketsync_wake";

/// Most events in one insert.
const MAX_GROUP: usize = 512;

type Reply = oneshot::Sender<Result<i64, PgError>>;

/// The handle callers append through; the grouping task runs on the store's runtime.
#[derive(Clone)]
pub(super) struct Appends {
    queue: mpsc::UnboundedSender<(NewEvent, Reply)>,
}

impl Appends {
    /// Start the grouping task on the current runtime (the store's).
    pub(super) fn start(pool: Pool) -> Self {
        let (queue, mut incoming) = mpsc::unbounded_channel::<(NewEvent, Reply)>();
        tokio::spawn(async move {
            // One group at a time: notifying transactions serialise at commit anyway, and
            // a second group in flight only splits the next one (measured: fewer acks/s).
            while let Some(first) = incoming.recv().await {
                let mut group = vec![first];
                while group.len() < MAX_GROUP {
                    match incoming.try_recv() {
                        Ok(next) => group.push(next),
                        Err(_) => break,
                    }
                }
                let (events, replies): (Vec<NewEvent>, Vec<Reply>) = group.into_iter().unzip();
                let outcome = insert_events(&pool, &events).await;
                for (i, reply) in replies.into_iter().enumerate() {
                    let _ = reply.send(outcome.as_ref().map(|seqs| seqs[i]).map_err(Clone::clone));
                }
            }
        });
        Self { queue }
    }

    /// Append one event; its `seq` once the group holding it committed.
    pub(super) async fn append(self, event: NewEvent) -> Result<i64, PgError> {
        let (reply, answer) = oneshot::channel();
        self.queue
            .send((event, reply))
            .map_err(|_| PgError::Unavailable("the store is shutting down".into()))?;
        answer
            .await
            .map_err(|_| PgError::Unavailable("the store is shutting down".into()))?
    }
}

/// An event on its way into the inbox.
#[derive(Debug, Clone)]
pub(super) struct NewEvent {
    pub(super) org_id: OrgId,
    pub(super) ticket_id: TicketId,
    pub(super) event: StoredEvent,
    /// Whether this append also records the org's last-webhook time.
    pub(super) stamps_webhook: bool,
}

/// Insert events, stamp their orgs' webhook times and notify the owners, in one statement
/// (one transaction, durable when it returns). Returns each event's `seq`, in order: the
/// positions drawn for the group, ascending, paired with the events in their order (SQL never
/// reads inside an event).
async fn insert_events(pool: &Pool, events: &[NewEvent]) -> Result<Vec<i64>, PgError> {
    let orgs: Vec<uuid::Uuid> = events.iter().map(|e| e.org_id.0).collect();
    let tickets: Vec<i64> = events.iter().map(|e| e.ticket_id.0 as i64).collect();
    let bodies: Vec<Json<&StoredEvent>> = events.iter().map(|e| Json(&e.event)).collect();
    let (stamped_orgs, stamped_at): (Vec<uuid::Uuid>, Vec<DateTime<Utc>>) = events
        .iter()
        .filter(|e| e.stamps_webhook)
        .map(|e| (e.org_id.0, e.event.received_at))
        .unzip();
    let wakes: Vec<String> = events
        .iter()
        .map(|e| format!("{}:{}", e.org_id, e.ticket_id))
        .collect();
    let client = pool.get().await?;
    let statement = client
        .prepare_cached(
            "WITH input AS ( \
                 SELECT o, t, e, i \
                 FROM unnest($1::uuid[], $2::bigint[], $3::json[]) WITH ORDINALITY AS n(o, t, e, i) \
             ), numbered AS ( \
                 SELECT s, row_number() OVER (ORDER BY s) AS i FROM ( \
                     SELECT nextval(pg_get_serial_sequence('inbox', 'seq')) AS s FROM input \
                 ) AS drawn \
             ), event AS ( \
                 INSERT INTO inbox (seq, org_id, ticket_id, event) \
                 SELECT numbered.s, input.o, input.t, input.e \
                 FROM input JOIN numbered USING (i) ORDER BY i \
             ), webhook AS ( \
                 INSERT INTO org_webhooks (org_id, last_webhook_at) \
                 SELECT o, max(at) FROM unnest($4::uuid[], $5::timestamptz[]) AS w(o, at) \
                 GROUP BY o \
                 ON CONFLICT (org_id) DO UPDATE SET last_webhook_at = \
                     GREATEST(org_webhooks.last_webhook_at, EXCLUDED.last_webhook_at) \
             ), notified AS ( \
                 SELECT count(pg_notify($6, p)) FROM unnest($7::text[]) AS p \
             ) \
             SELECT numbered.s FROM numbered, notified ORDER BY numbered.i",
        )
        .await?;
    let rows = client
        .query(
            &statement,
            &[
                &orgs,
                &tickets,
                &bodies,
                &stamped_orgs,
                &stamped_at,
                &WAKE_CHANNEL,
                &wakes,
            ],
        )
        .await?;
    let seqs: Vec<i64> = rows.iter().map(|r| r.get(0)).collect();
    if seqs.len() != events.len() {
        return Err(PgError::Corrupt(format!(
            "{} events inserted, {} positions returned",
            events.len(),
            seqs.len()
        )));
    }
    Ok(seqs)
}
