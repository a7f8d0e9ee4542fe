//! The ports the engine needs from the outside world. The service implements them with sled,
//! reqwest and the configured responder; tests may implement them in memory.

use crate::freshdesk::FreshdeskApi;
use crate::ids::{EventId, OrgId, TicketId};
use crate::org::{AiAgent, OrgSettings};
use crate::ticket::machine::{Decision, ResponderRequest};
use crate::ticket::state::TicketRecord;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// Why a storage call failed (the adapter's error, as text: the engine only logs and retries).
#[derive(Debug, Clone, thiserror::Error)]
#[error("storage: {0}")]
pub struct StoreFailure(pub String);

/// What a queued event asks of a ticket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "type")]
pub enum EventKind {
    /// A Freshdesk webhook: "ticket N changed" (the hint is kept for tracing only).
    Webhook { triggered_event: String },
    /// The missed-webhook sweep saw the ticket change.
    Sweep,
    /// The first-connect backfill lists this ticket: import it as history.
    Import,
    /// An admin hands the ticket off.
    AdminHandoff { detail: Option<String> },
    /// An admin gives the ticket back to the AI.
    AdminResume,
}

impl EventKind {
    /// Background work (imports, sweeps), served after live work (contract §8).
    pub fn is_background(&self) -> bool {
        matches!(self, Self::Import | Self::Sweep)
    }
}

/// Whether these queued events are background work only (none: not background).
pub fn background_only(events: &[QueuedEvent]) -> bool {
    !events.is_empty() && events.iter().all(|e| e.kind.is_background())
}

/// An event waiting in the durable inbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueuedEvent {
    /// Position in the inbox (monotonic across the process's life and restarts).
    pub seq: u64,
    pub id: EventId,
    pub org_id: OrgId,
    pub ticket_id: TicketId,
    pub kind: EventKind,
    pub received_at: DateTime<Utc>,
}

/// The engine's storage.
#[async_trait]
pub trait EngineStore: Send + Sync + 'static {
    /// Append an event to the inbox (not yet durable: call `flush`).
    async fn append_event(
        &self,
        org: OrgId,
        ticket: TicketId,
        kind: EventKind,
        received_at: DateTime<Utc>,
    ) -> Result<QueuedEvent, StoreFailure>;
    /// The ticket's queued events, oldest first.
    async fn queued_events(
        &self,
        org: OrgId,
        ticket: TicketId,
    ) -> Result<Vec<QueuedEvent>, StoreFailure>;
    /// Drop queued events without processing them (a disconnected org).
    async fn discard_events(&self, events: &[QueuedEvent]) -> Result<(), StoreFailure>;
    /// The ticket's record.
    async fn load_ticket(
        &self,
        org: OrgId,
        ticket: TicketId,
    ) -> Result<Option<TicketRecord>, StoreFailure>;
    /// Write the record and remove the consumed events, atomically.
    async fn commit(
        &self,
        record: &TicketRecord,
        consumed: &[QueuedEvent],
    ) -> Result<(), StoreFailure>;
    /// Tickets that have queued events or pending effects (recovery after a restart).
    async fn tickets_with_work(&self) -> Result<Vec<(OrgId, TicketId)>, StoreFailure>;
    /// Make all writes so far durable (group-committed with concurrent callers).
    async fn flush(&self) -> Result<(), StoreFailure>;
    /// The stored state of an org's background job (`backfill`, `sweep`).
    async fn load_job(
        &self,
        org: OrgId,
        job: &str,
    ) -> Result<Option<serde_json::Value>, StoreFailure>;
    /// Store the state of an org's background job.
    async fn save_job(
        &self,
        org: OrgId,
        job: &str,
        state: &serde_json::Value,
    ) -> Result<(), StoreFailure>;
}

/// An org's connection as the engine needs it.
#[derive(Clone)]
pub struct OrgConnection {
    pub settings: OrgSettings,
    pub agent: AiAgent,
    pub first_connected_at: DateTime<Utc>,
    pub connected: bool,
    /// The org's Freshdesk API, authenticated as the AI agent.
    pub api: Arc<dyn FreshdeskApi>,
}

/// Why an org's stored connection cannot be used.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ConnectionFailure {
    #[error(transparent)]
    Store(#[from] StoreFailure),
    /// The org is connected, but the configuration no longer allows its Freshdesk domain.
    #[error("{0}")]
    DomainNotAllowed(String),
}

/// Loads org connections (decrypting the key and building the client is the service's job).
#[async_trait]
pub trait OrgProvider: Send + Sync + 'static {
    /// The org's connection, or None if it was never connected (or is disconnected and
    /// cannot be used).
    async fn connection(&self, org: OrgId) -> Result<Option<OrgConnection>, ConnectionFailure>;
}

/// Which orgs' work runs on this node. Several nodes may share one database; each org is
/// owned by one node at a time (through a lease on its shard), and only the owner runs its
/// passes, jobs and Freshdesk writes. Events for an org that does not run here stay queued
/// for its owner. With one node (sled) everything runs here: `SoleNode`.
#[async_trait]
pub trait Ownership: Send + Sync + 'static {
    /// Whether the org's work runs here now.
    fn runs(&self, org: OrgId) -> bool;
    /// Changes whenever this node gains the org again (the lease's fencing token); None while
    /// the org's work does not run here. A ticket's state cached under another epoch may be
    /// stale: it is read again, and its pending writes reconciled, as after a crash.
    fn epoch(&self, org: OrgId) -> Option<i64>;
    /// Whether a Freshdesk write for the org may be sent now: it would end before this
    /// node's hold on the org can lapse.
    fn may_write(&self, org: OrgId) -> bool;
    /// Wait until a write for the org may be sent (true) or its work no longer runs here
    /// (false).
    async fn writable(&self, org: OrgId) -> bool;
}

/// The only node: every org's work runs here.
pub struct SoleNode;

#[async_trait]
impl Ownership for SoleNode {
    fn runs(&self, _: OrgId) -> bool {
        true
    }
    fn epoch(&self, _: OrgId) -> Option<i64> {
        Some(0)
    }
    fn may_write(&self, _: OrgId) -> bool {
        true
    }
    async fn writable(&self, _: OrgId) -> bool {
        true
    }
}

/// Why the responder could not decide.
#[derive(Debug, Clone, thiserror::Error)]
#[error("responder failed: {0}")]
pub struct ResponderFailure(pub String);

/// The AI that decides what to do with a ticket (contract §5).
#[async_trait]
pub trait Responder: Send + Sync + 'static {
    /// Decide on the thread.
    async fn decide(&self, request: &ResponderRequest) -> Result<Decision, ResponderFailure>;
}

/// The wall clock, replaceable in tests.
pub trait Clock: Send + Sync + 'static {
    /// Now.
    fn now(&self) -> DateTime<Utc>;
}

/// The system clock.
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}
