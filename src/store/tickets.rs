//! The engine's records in one sled tree, so every step commits in one atomic batch:
//!
//! | key                                   | value                          |
//! |---------------------------------------|--------------------------------|
//! | `i` org ticket seq                    | a queued event (the inbox)     |
//! | `t` org ticket                        | the ticket record              |
//! | `p` org ticket                        | marker: pending effects        |
//! | `u` org (MAX - updated µs) ticket     | a session summary (inbox list) |
//! | `s` session                           | org ticket (session lookup)    |
//! | `w` org                               | last webhook time              |
//! | `c` name                              | a counter (tracked tickets)    |
//! | `j` org job                           | a background job's state      |
//!
//! Org ids are 16 raw bytes, ticket ids and sequence numbers 8 big-endian bytes, so prefix
//! scans return one ticket's events in order and one org's sessions newest first.
//!
//! Inspection and `/metrics` read `Gauges` (queued events per org, tickets with pending
//! effects), counted once at open and then kept by every append, discard and commit, so a
//! scrape costs O(orgs), never a scan of the inbox.

use super::{decode, encode, SledStore, StoreError, StoreResult};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use ticketsync_actors::ports::{EngineStore, EventKind, QueuedEvent, StoreFailure};
use ticketsync_actors::session::Session;
use ticketsync_actors::ticket::state::TicketRecord;
use ticketsync_actors::{EventId, OrgId, SessionId, TicketId};

const INBOX: u8 = b'i';
const TICKET: u8 = b't';
const PENDING: u8 = b'p';
const UPDATED: u8 = b'u';
const SESSION: u8 = b's';
const WEBHOOK: u8 = b'w';
const JOB: u8 = b'j';
const TRACKED_COUNTER: &[u8] = b"ctracked";

fn ticket_key(prefix: u8, org: OrgId, ticket: TicketId) -> Vec<u8> {
    let mut key = Vec::with_capacity(25);
    key.push(prefix);
    key.extend_from_slice(org.0.as_bytes());
    key.extend_from_slice(&ticket.0.to_be_bytes());
    key
}

fn org_prefix(prefix: u8, org: OrgId) -> Vec<u8> {
    let mut key = vec![prefix];
    key.extend_from_slice(org.0.as_bytes());
    key
}

fn split_ticket_key(key: &[u8]) -> Option<(OrgId, TicketId)> {
    let org = uuid::Uuid::from_slice(key.get(1..17)?).ok()?;
    let ticket = u64::from_be_bytes(key.get(17..25)?.try_into().ok()?);
    Some((OrgId(org), TicketId(ticket)))
}

fn updated_key(org: OrgId, updated_at: DateTime<Utc>, ticket: TicketId) -> Vec<u8> {
    let micros = u64::try_from(updated_at.timestamp_micros()).unwrap_or(0);
    SessionCursor::new(org, micros, ticket).0
}

/// Counts that inspection reads instead of scanning. Each write adjusts them by what it
/// actually changed (an event removed only if it was there, a marker counted only when it
/// appears or disappears); every ticket has one actor at a time, so no two writes race on the
/// same keys.
#[derive(Debug, Default)]
pub(super) struct Gauges {
    /// Queued events per org.
    inbox: Mutex<HashMap<OrgId, i64>>,
    /// Tickets with pending effects.
    pending: AtomicI64,
}

impl Gauges {
    /// Count the engine tree once (at open).
    pub(super) fn count(engine: &sled::Tree) -> StoreResult<Self> {
        let gauges = Self::default();
        {
            let mut inbox = gauges.inbox.lock();
            for key in engine.scan_prefix([INBOX]).keys() {
                let key = key?;
                let (org, _) = split_ticket_key(&key)
                    .ok_or_else(|| StoreError::Corrupt("bad inbox key".into()))?;
                *inbox.entry(org).or_default() += 1;
            }
        }
        let pending = engine.scan_prefix([PENDING]).keys().count();
        gauges.pending.store(pending as i64, Ordering::Relaxed);
        Ok(gauges)
    }

    fn queued(&self, org: OrgId, delta: i64) {
        if delta != 0 {
            *self.inbox.lock().entry(org).or_default() += delta;
        }
    }
}

/// A row of the session list: the session without its messages.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SessionSummaryRow {
    #[serde(flatten)]
    pub session: serde_json::Value,
    pub last_message_at: Option<DateTime<Utc>>,
}

/// A row's schema is the session's without `messages`, plus `last_message_at`: derived from
/// [`Session`]'s so the two cannot drift.
impl utoipa::PartialSchema for SessionSummaryRow {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, Schema, SchemaFormat, Type};
        use utoipa::openapi::RefOr;
        let mut schema = <Session as utoipa::PartialSchema>::schema();
        if let RefOr::T(Schema::Object(object)) = &mut schema {
            object.properties.remove("messages");
            object.required.retain(|name| name != "messages");
            let at = ObjectBuilder::new()
                .schema_type(utoipa::openapi::schema::SchemaType::from_iter([
                    Type::String,
                    Type::Null,
                ]))
                .format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime)))
                .description(Some("When the newest message was written."));
            object.properties.insert(
                "last_message_at".into(),
                RefOr::T(Schema::Object(at.build())),
            );
            object.description = Some("A session without its messages.".into());
        }
        schema
    }
}

impl utoipa::ToSchema for SessionSummaryRow {
    fn schemas(
        schemas: &mut Vec<(
            String,
            utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>,
        )>,
    ) {
        <Session as utoipa::ToSchema>::schemas(schemas);
    }
}

/// Where a session listing continues: the index key of the last row returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionCursor(pub Vec<u8>);

impl SessionCursor {
    /// The cursor after the session of `ticket` last updated at `updated_micros` (µs since
    /// the epoch): the same bytes as the sled index key, so every backend shares the format.
    pub fn new(org: OrgId, updated_micros: u64, ticket: TicketId) -> Self {
        let mut key = org_prefix(UPDATED, org);
        key.extend_from_slice(&(u64::MAX - updated_micros).to_be_bytes());
        key.extend_from_slice(&ticket.0.to_be_bytes());
        Self(key)
    }

    /// The updated time (µs since the epoch) of the last row returned.
    pub fn updated_micros(&self) -> u64 {
        u64::MAX - u64::from_be_bytes(self.0[17..25].try_into().expect("33-byte cursor"))
    }

    /// The ticket of the last row returned.
    pub fn ticket(&self) -> TicketId {
        TicketId(u64::from_be_bytes(
            self.0[25..33].try_into().expect("33-byte cursor"),
        ))
    }

    /// Opaque text form for the API.
    pub fn encode(&self) -> String {
        use base64::Engine;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&self.0)
    }

    /// Parse the text form; None if it is not one of ours.
    pub fn decode(text: &str, org: OrgId) -> Option<Self> {
        use base64::Engine;
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(text)
            .ok()?;
        (bytes.len() == 33 && bytes.starts_with(&org_prefix(UPDATED, org))).then_some(Self(bytes))
    }
}

impl SessionSummaryRow {
    /// The list row of a session (every backend stores the same).
    pub(crate) fn of(session: &Session) -> Self {
        let mut value = serde_json::to_value(session).expect("sessions serialise");
        if let Some(map) = value.as_object_mut() {
            map.remove("messages");
        }
        Self {
            session: value,
            last_message_at: session.last_message_at(),
        }
    }
}

fn summary_of(session: &Session) -> Vec<u8> {
    encode(&SessionSummaryRow::of(session))
}

fn failure(e: impl std::fmt::Display) -> StoreFailure {
    StoreFailure(e.to_string())
}

impl SledStore {
    /// A ticket's record.
    fn record(&self, org: OrgId, ticket: TicketId) -> StoreResult<Option<TicketRecord>> {
        self.engine
            .get(ticket_key(TICKET, org, ticket))?
            .map(|v| decode(&v))
            .transpose()
    }

    /// Of these events, how many of each org are still queued (they are about to be removed).
    fn still_queued(&self, events: &[QueuedEvent]) -> StoreResult<HashMap<OrgId, i64>> {
        let mut present: HashMap<OrgId, i64> = HashMap::new();
        for e in events {
            if self.engine.contains_key(event_key(e))? {
                *present.entry(e.org_id).or_default() += 1;
            }
        }
        Ok(present)
    }

    fn dequeued(&self, removed: HashMap<OrgId, i64>) {
        for (org, n) in removed {
            self.gauges.queued(org, -n);
        }
    }

    /// Add a record's writes to `batch`; counts what they change in `tracked_delta` (tickets
    /// tracked) and `pending_delta` (tickets with pending effects).
    fn write_record(
        &self,
        batch: &mut sled::Batch,
        record: &TicketRecord,
        tracked_delta: &mut i64,
        pending_delta: &mut i64,
    ) -> StoreResult<()> {
        let key = ticket_key(TICKET, record.org_id, record.ticket_id);
        let previous: Option<TicketRecord> =
            self.engine.get(&key)?.map(|v| decode(&v)).transpose()?;
        let old_session = previous.as_ref().and_then(|p| p.session.as_ref());
        if let Some(old) = old_session {
            batch.remove(updated_key(record.org_id, old.updated_at, record.ticket_id));
        }
        if let Some(session) = &record.session {
            batch.insert(
                updated_key(record.org_id, session.updated_at, record.ticket_id),
                summary_of(session),
            );
            if old_session.is_none() {
                let mut skey = vec![SESSION];
                skey.extend_from_slice(session.id.0.as_bytes());
                batch.insert(
                    skey,
                    ticket_key(TICKET, record.org_id, record.ticket_id)[1..].to_vec(),
                );
                *tracked_delta += 1;
            }
        }
        let pending = ticket_key(PENDING, record.org_id, record.ticket_id);
        let had_pending = self.engine.contains_key(&pending)?;
        if record.pending_effects.is_empty() {
            batch.remove(pending);
            *pending_delta -= i64::from(had_pending);
        } else {
            batch.insert(pending, &[][..]);
            *pending_delta += i64::from(!had_pending);
        }
        batch.insert(key, encode(record));
        Ok(())
    }

    fn apply_batch(
        &self,
        batch: sled::Batch,
        tracked_delta: i64,
        pending_delta: i64,
    ) -> StoreResult<()> {
        self.engine.apply_batch(batch)?;
        self.gauges
            .pending
            .fetch_add(pending_delta, Ordering::Relaxed);
        if tracked_delta != 0 {
            self.engine.fetch_and_update(TRACKED_COUNTER, |old| {
                let n = old
                    .and_then(|v| v.try_into().ok().map(u64::from_be_bytes))
                    .unwrap_or(0);
                Some((n as i64 + tracked_delta).max(0).to_be_bytes().to_vec())
            })?;
        }
        Ok(())
    }
}

/// Reads of tickets and sessions for the API and inspection, and bulk seeding.
#[async_trait]
pub trait TicketQueries {
    /// A session by id: its org's ticket record.
    async fn ticket_by_session(&self, session: SessionId) -> StoreResult<Option<TicketRecord>>;
    /// A ticket's record.
    async fn ticket_record(
        &self,
        org: OrgId,
        ticket: TicketId,
    ) -> StoreResult<Option<TicketRecord>>;
    /// One page of an org's sessions, most recently updated first (ties: ticket id
    /// ascending), keeping only rows `keep` accepts.
    async fn session_page(
        &self,
        org: OrgId,
        after: Option<&SessionCursor>,
        keep: &(dyn for<'r> Fn(&'r SessionSummaryRow) -> bool + Send + Sync),
        limit: usize,
    ) -> StoreResult<(Vec<SessionSummaryRow>, Option<SessionCursor>)>;
    /// Write a batch of records at once (bench seeding).
    async fn put_records(&self, records: &[TicketRecord]) -> StoreResult<()>;
    /// Queued events of an org (its backlog).
    async fn org_backlog(&self, org: OrgId) -> StoreResult<u64>;
    /// Queued events in all.
    async fn inbox_depth(&self) -> StoreResult<u64>;
    /// Tickets with pending effects.
    async fn pending_effect_tickets(&self) -> StoreResult<u64>;
    /// Tickets with a session (tracked).
    async fn tracked_tickets(&self) -> StoreResult<u64>;
    /// When the org's webhook last accepted an event.
    async fn last_webhook_at(&self, org: OrgId) -> StoreResult<Option<DateTime<Utc>>>;
}

#[async_trait]
impl TicketQueries for SledStore {
    async fn ticket_by_session(&self, session: SessionId) -> StoreResult<Option<TicketRecord>> {
        let mut key = vec![SESSION];
        key.extend_from_slice(session.0.as_bytes());
        let Some(target) = self.engine.get(key)? else {
            return Ok(None);
        };
        let Some((org, ticket)) = split_ticket_key(&[&[TICKET][..], &target[..]].concat()) else {
            return Err(StoreError::Corrupt("bad session index entry".into()));
        };
        self.record(org, ticket)
    }

    async fn ticket_record(
        &self,
        org: OrgId,
        ticket: TicketId,
    ) -> StoreResult<Option<TicketRecord>> {
        self.record(org, ticket)
    }

    async fn session_page(
        &self,
        org: OrgId,
        after: Option<&SessionCursor>,
        keep: &(dyn for<'r> Fn(&'r SessionSummaryRow) -> bool + Send + Sync),
        limit: usize,
    ) -> StoreResult<(Vec<SessionSummaryRow>, Option<SessionCursor>)> {
        let prefix = org_prefix(UPDATED, org);
        let start = match after {
            Some(cursor) => {
                let mut k = cursor.0.clone();
                k.push(0);
                k
            }
            None => prefix.clone(),
        };
        let mut rows = Vec::new();
        let mut last_key = None;
        for item in self.engine.range(start..) {
            let (key, value) = item?;
            if !key.starts_with(&prefix) {
                break;
            }
            let row: SessionSummaryRow = decode(&value)?;
            if !keep(&row) {
                continue;
            }
            if rows.len() == limit {
                return Ok((rows, last_key.map(SessionCursor)));
            }
            last_key = Some(key.to_vec());
            rows.push(row);
        }
        Ok((rows, None))
    }

    async fn org_backlog(&self, org: OrgId) -> StoreResult<u64> {
        let queued = self.gauges.inbox.lock().get(&org).copied();
        Ok(queued.unwrap_or(0).max(0) as u64)
    }

    async fn inbox_depth(&self) -> StoreResult<u64> {
        let total: i64 = self.gauges.inbox.lock().values().sum();
        Ok(total.max(0) as u64)
    }

    async fn pending_effect_tickets(&self) -> StoreResult<u64> {
        Ok(self.gauges.pending.load(Ordering::Relaxed).max(0) as u64)
    }

    async fn tracked_tickets(&self) -> StoreResult<u64> {
        Ok(self
            .engine
            .get(TRACKED_COUNTER)?
            .and_then(|v| v.as_ref().try_into().ok().map(u64::from_be_bytes))
            .unwrap_or(0))
    }

    async fn last_webhook_at(&self, org: OrgId) -> StoreResult<Option<DateTime<Utc>>> {
        self.engine
            .get(org_prefix(WEBHOOK, org))?
            .map(|v| decode(&v))
            .transpose()
    }

    async fn put_records(&self, records: &[TicketRecord]) -> StoreResult<()> {
        let mut batch = sled::Batch::default();
        let (mut tracked, mut pending) = (0, 0);
        for record in records {
            self.write_record(&mut batch, record, &mut tracked, &mut pending)?;
        }
        self.apply_batch(batch, tracked, pending)
    }
}

#[async_trait]
impl EngineStore for SledStore {
    async fn append_event(
        &self,
        org: OrgId,
        ticket: TicketId,
        kind: EventKind,
        received_at: DateTime<Utc>,
    ) -> Result<QueuedEvent, StoreFailure> {
        let seq = self.db.generate_id().map_err(failure)?;
        let event = QueuedEvent {
            seq,
            id: EventId::new(),
            org_id: org,
            ticket_id: ticket,
            kind,
            received_at,
        };
        let mut key = ticket_key(INBOX, org, ticket);
        key.extend_from_slice(&seq.to_be_bytes());
        // Plain inserts, not a batch: in sled 0.34 every batch forces the log buffer out, which
        // would cost each webhook its own disk writes instead of sharing the group commit.
        // The two keys need no atomicity: the timestamp is informational.
        if self
            .engine
            .insert(key, encode(&event))
            .map_err(failure)?
            .is_none()
        {
            self.gauges.queued(org, 1);
        }
        // The org's last-webhook time is informational: written at most once a second.
        let second = received_at.timestamp();
        let fresh_second = matches!(event.kind, EventKind::Webhook { .. })
            && self.webhook_seconds.lock().insert(org, second) != Some(second);
        if fresh_second {
            self.engine
                .insert(org_prefix(WEBHOOK, org), encode(&received_at))
                .map_err(failure)?;
        }
        Ok(event)
    }

    async fn queued_events(
        &self,
        org: OrgId,
        ticket: TicketId,
    ) -> Result<Vec<QueuedEvent>, StoreFailure> {
        self.engine
            .scan_prefix(ticket_key(INBOX, org, ticket))
            .values()
            .map(|v| decode::<QueuedEvent>(&v.map_err(failure)?).map_err(failure))
            .collect()
    }

    async fn discard_events(&self, events: &[QueuedEvent]) -> Result<(), StoreFailure> {
        let removed = self.still_queued(events).map_err(failure)?;
        let mut batch = sled::Batch::default();
        for e in events {
            batch.remove(event_key(e));
        }
        self.engine.apply_batch(batch).map_err(failure)?;
        self.dequeued(removed);
        Ok(())
    }

    async fn load_ticket(
        &self,
        org: OrgId,
        ticket: TicketId,
    ) -> Result<Option<TicketRecord>, StoreFailure> {
        self.record(org, ticket).map_err(failure)
    }

    async fn commit(
        &self,
        record: &TicketRecord,
        consumed: &[QueuedEvent],
    ) -> Result<(), StoreFailure> {
        let removed = self.still_queued(consumed).map_err(failure)?;
        let mut batch = sled::Batch::default();
        let (mut tracked, mut pending) = (0, 0);
        self.write_record(&mut batch, record, &mut tracked, &mut pending)
            .map_err(failure)?;
        for e in consumed {
            batch.remove(event_key(e));
        }
        self.apply_batch(batch, tracked, pending).map_err(failure)?;
        self.dequeued(removed);
        Ok(())
    }

    async fn tickets_with_work(&self) -> Result<Vec<(OrgId, TicketId)>, StoreFailure> {
        let mut tickets: Vec<(OrgId, TicketId)> = Vec::new();
        for prefix in [INBOX, PENDING] {
            for key in self.engine.scan_prefix([prefix]).keys() {
                let key = key.map_err(failure)?;
                if let Some(t) = split_ticket_key(&key) {
                    if tickets.last() != Some(&t) {
                        tickets.push(t);
                    }
                }
            }
        }
        tickets.sort();
        tickets.dedup();
        Ok(tickets)
    }

    async fn flush(&self) -> Result<(), StoreFailure> {
        // Concurrent callers share flushes (group commit), run on the store's committer
        // thread, never on an arbiter thread; a caller that goes away mid-wait never abandons
        // a flush.
        self.commits.flush().await.map_err(failure)
    }

    async fn load_job(
        &self,
        org: OrgId,
        job: &str,
    ) -> Result<Option<serde_json::Value>, StoreFailure> {
        self.engine
            .get(job_key(org, job))
            .map_err(failure)?
            .map(|v| decode(&v).map_err(failure))
            .transpose()
    }

    async fn save_job(
        &self,
        org: OrgId,
        job: &str,
        state: &serde_json::Value,
    ) -> Result<(), StoreFailure> {
        self.engine
            .insert(job_key(org, job), encode(state))
            .map_err(failure)?;
        Ok(())
    }
}

impl SledStore {
    /// Remove every engine record of the org in one batch (its queued events, ticket records,
    /// pending markers, session list rows and session lookups, last-webhook time, job states),
    /// and take them out of the counts.
    pub(super) fn erase_engine_records(&self, org: OrgId) -> StoreResult<()> {
        let mut batch = sled::Batch::default();
        let (mut tracked, mut pending) = (0, 0);
        for prefix in [INBOX, PENDING, UPDATED, WEBHOOK, JOB] {
            for key in self.engine.scan_prefix(org_prefix(prefix, org)).keys() {
                pending -= i64::from(prefix == PENDING);
                batch.remove(key?);
            }
        }
        for item in self.engine.scan_prefix(org_prefix(TICKET, org)) {
            let (key, value) = item?;
            if let Some(session) = decode::<TicketRecord>(&value)?.session {
                let mut skey = vec![SESSION];
                skey.extend_from_slice(session.id.0.as_bytes());
                batch.remove(skey);
                tracked -= 1;
            }
            batch.remove(key);
        }
        self.apply_batch(batch, tracked, pending)?;
        self.gauges.inbox.lock().remove(&org);
        self.webhook_seconds.lock().remove(&org);
        Ok(())
    }
}

/// The engine tree in full, for `migrate-store`.
impl SledStore {
    /// Every ticket record, in (org, ticket) order.
    pub fn export_records(&self) -> impl Iterator<Item = StoreResult<TicketRecord>> + '_ {
        self.engine
            .scan_prefix([TICKET])
            .values()
            .map(|v| decode(&v?))
    }

    /// Every queued event, each ticket's oldest first.
    pub fn export_events(&self) -> impl Iterator<Item = StoreResult<QueuedEvent>> + '_ {
        self.engine
            .scan_prefix([INBOX])
            .values()
            .map(|v| decode(&v?))
    }

    /// Every background job's state: (org, job, state).
    pub fn export_jobs(
        &self,
    ) -> impl Iterator<Item = StoreResult<(OrgId, String, serde_json::Value)>> + '_ {
        self.engine.scan_prefix([JOB]).map(|item| {
            let (key, value) = item?;
            let org = key
                .get(1..17)
                .and_then(|b| uuid::Uuid::from_slice(b).ok())
                .ok_or_else(|| StoreError::Corrupt("bad job key".into()))?;
            let job = String::from_utf8(key[17..].to_vec())
                .map_err(|_| StoreError::Corrupt("bad job name".into()))?;
            Ok((OrgId(org), job, decode(&value)?))
        })
    }
}

fn job_key(org: OrgId, job: &str) -> Vec<u8> {
    let mut key = org_prefix(JOB, org);
    key.extend_from_slice(job.as_bytes());
    key
}

fn event_key(e: &QueuedEvent) -> Vec<u8> {
    let mut key = ticket_key(INBOX, e.org_id, e.ticket_id);
    key.extend_from_slice(&e.seq.to_be_bytes());
    key
}

#[cfg(test)]
mod tests {
    use super::*;
    use ticketsync_actors::ticket::state::{GateDecision, GateOutcome, PendingEffect};

    type Counts = (u64, Vec<u64>, u64);

    /// (queued events, queued per org, tickets with pending effects), counted by scanning.
    fn scanned(store: &SledStore, orgs: &[OrgId]) -> Counts {
        let count = |prefix: Vec<u8>| store.engine.scan_prefix(prefix).count() as u64;
        (
            count(vec![INBOX]),
            orgs.iter().map(|o| count(org_prefix(INBOX, *o))).collect(),
            count(vec![PENDING]),
        )
    }

    /// The same, as the gauges say.
    async fn gauged(store: &SledStore, orgs: &[OrgId]) -> Counts {
        let mut per_org = Vec::new();
        for org in orgs {
            per_org.push(store.org_backlog(*org).await.unwrap());
        }
        (
            store.inbox_depth().await.unwrap(),
            per_org,
            store.pending_effect_tickets().await.unwrap(),
        )
    }

    fn record(org: OrgId, ticket: u64, pending: bool) -> TicketRecord {
        let mut r = TicketRecord::new(
            org,
            TicketId(ticket),
            GateDecision {
                decision: GateOutcome::Tracked,
                reason: "test".into(),
                at: Utc::now(),
            },
        );
        if pending {
            // From JSON, as stored: the effect's own fields are not this test's concern.
            let effect: PendingEffect = serde_json::from_value(serde_json::json!({
                "id": uuid::Uuid::new_v4(),
                "kind": "post_reply",
                "body_html": "<p>hi</p>",
                "body_text": "hi",
                "attempts": 0,
                "created_at": Utc::now(),
            }))
            .unwrap();
            r.pending_effects.push(effect);
        }
        r
    }

    async fn append(store: &SledStore, org: OrgId, ticket: u64) -> QueuedEvent {
        store
            .append_event(org, TicketId(ticket), EventKind::Sweep, Utc::now())
            .await
            .unwrap()
    }

    async fn appended(store: &SledStore, org: OrgId, ticket: u64, n: usize) -> Vec<QueuedEvent> {
        let mut events = Vec::new();
        for _ in 0..n {
            events.push(append(store, org, ticket).await);
        }
        events
    }

    #[tokio::test]
    async fn the_inspection_gauges_equal_a_fresh_count_after_appends_consumes_discards_and_a_restart(
    ) {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (OrgId::new(), OrgId::new());
        let orgs = [a, b];
        {
            let store = SledStore::open(dir.path()).unwrap();
            let a1 = appended(&store, a, 1, 4).await;
            let a2 = appended(&store, a, 2, 3).await;
            let b1 = appended(&store, b, 1, 5).await;
            assert_eq!(gauged(&store, &orgs).await, scanned(&store, &orgs));
            // Consumed with a pending effect, then the effect done.
            store.commit(&record(a, 1, true), &a1[..2]).await.unwrap();
            store.commit(&record(a, 1, true), &a1[2..]).await.unwrap();
            assert_eq!(gauged(&store, &orgs).await, scanned(&store, &orgs));
            store.commit(&record(a, 1, false), &[]).await.unwrap();
            // Discarded, twice (the second removes nothing), and consumed after a discard.
            store.discard_events(&b1[..3]).await.unwrap();
            store.discard_events(&b1[..4]).await.unwrap();
            store.commit(&record(a, 2, false), &a2).await.unwrap();
            store.commit(&record(a, 2, false), &a2).await.unwrap();
            // Imports with pending effects.
            store
                .put_records(&[record(b, 7, true), record(b, 8, true), record(a, 1, true)])
                .await
                .unwrap();
            assert_eq!(gauged(&store, &orgs).await, scanned(&store, &orgs));
            assert_eq!(gauged(&store, &orgs).await, (1, vec![0, 1], 3));
        }
        let store = SledStore::open(dir.path()).unwrap();
        assert_eq!(gauged(&store, &orgs).await, scanned(&store, &orgs));
        assert_eq!(gauged(&store, &orgs).await, (1, vec![0, 1], 3));
        let later = append(&store, a, 3).await;
        store.commit(&record(b, 7, false), &[]).await.unwrap();
        store.commit(&record(a, 3, true), &[later]).await.unwrap();
        assert_eq!(gauged(&store, &orgs).await, scanned(&store, &orgs));
        assert_eq!(gauged(&store, &orgs).await, (1, vec![0, 1], 3));
    }

    #[tokio::test]
    async fn erasing_an_org_removes_its_records_and_its_counts_and_keeps_the_other_org_s() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (OrgId::new(), OrgId::new());
        let orgs = [a, b];
        let store = SledStore::open(dir.path()).unwrap();
        appended(&store, a, 1, 3).await;
        appended(&store, b, 1, 2).await;
        store
            .put_records(&[record(a, 1, true), record(a, 2, false), record(b, 7, true)])
            .await
            .unwrap();
        store
            .save_job(a, "sweep", &serde_json::json!({}))
            .await
            .unwrap();
        store
            .append_event(
                a,
                TicketId(9),
                EventKind::Webhook {
                    triggered_event: String::new(),
                },
                Utc::now(),
            )
            .await
            .unwrap();

        store.erase_engine_records(a).unwrap();
        assert_eq!(gauged(&store, &orgs).await, scanned(&store, &orgs));
        assert_eq!(gauged(&store, &orgs).await, (2, vec![0, 2], 1));
        let a_bytes = a.0.as_bytes();
        let left: Vec<_> = store
            .engine
            .iter()
            .map(|item| item.unwrap())
            .filter(|(k, v)| {
                k.windows(16).any(|w| w == a_bytes) || v.windows(16).any(|w| w == a_bytes)
            })
            .collect();
        assert!(left.is_empty(), "{left:?}");
        assert!(store.record(b, TicketId(7)).unwrap().is_some());
        assert_eq!(store.last_webhook_at(a).await.unwrap(), None);
    }
}
