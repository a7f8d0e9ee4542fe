//! The embedded sled database. `SledStore` owns the one `sled::Db` of the process and its
//! trees; each submodule owns the records of one concern and their key layout.
//!
//! Records are JSON; keys are raw ids (16-byte UUIDs, big-endian ticket ids) so that prefix
//! scans per org are cheap. Writes that must survive a crash are followed by a (group-committed)
//! flush before they are acknowledged.

mod group_commit;
pub mod migrate;
mod orgs;
pub mod postgres;
pub(crate) mod self_tests;
mod tickets;

pub use group_commit::FlushFaults;
pub use orgs::{ConnectionRecord, OrgStore, TokenRecord};
pub use self_tests::SelfTestStore;
pub use tickets::{SessionCursor, SessionSummaryRow, TicketQueries};

use async_trait::async_trait;
use rand::RngCore;
use std::path::Path;
use std::sync::Arc;
use ticketsync_actors::ports::EngineStore;
use ticketsync_actors::OrgId;

/// Everything the service keeps, on one backend: the engine's port, orgs and connections,
/// ticket and session reads, self-test reports, and the store's own upkeep.
pub trait Storage: EngineStore + OrgStore + TicketQueries + SelfTestStore + StoreAdmin {}

impl<T: EngineStore + OrgStore + TicketQueries + SelfTestStore + StoreAdmin> Storage for T {}

/// The service's handle on its storage (upcasts to the engine's `Arc<dyn EngineStore>`).
pub type Store = Arc<dyn Storage>;

/// The store's own upkeep: secrets it keeps, size, health.
#[async_trait]
pub trait StoreAdmin {
    /// Bytes the database occupies on disk.
    async fn size_on_disk(&self) -> StoreResult<u64>;
    /// The secret that signs webhook tokens: generated once, then stable forever (the first
    /// writer wins if two starts race).
    async fn webhook_token_secret(&self) -> StoreResult<[u8; 32]>;
    /// Whether writes can be made durable now; if not, why (`/readyz`).
    fn durability(&self) -> Result<(), String>;
    /// The fault switches of this store's flushes, for tests of a stalled or failing disk
    /// (sled only).
    fn flush_faults(&self) -> Option<Arc<FlushFaults>>;
}

/// Why a storage operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("storage error: {0}")]
    Sled(#[from] sled::Error),
    #[error("stored record is corrupt: {0}")]
    Corrupt(String),
    #[error(transparent)]
    Engine(#[from] ticketsync_actors::ports::StoreFailure),
    #[error(transparent)]
    Postgres(#[from] postgres::PgError),
}

/// Result of a storage operation.
pub type StoreResult<T> = Result<T, StoreError>;

/// The process's database handle. Cheap to clone (sled handles are reference-counted).
#[derive(Clone)]
pub struct SledStore {
    db: sled::Db,
    meta: sled::Tree,
    orgs: sled::Tree,
    connections: sled::Tree,
    /// Org admin tokens by org then token id (`orgs.rs`).
    tokens: sled::Tree,
    /// Token hash → its key in `tokens` (authentication looks tokens up by hash).
    token_hashes: sled::Tree,
    /// The last setup self-test report per org (`self_tests.rs`).
    self_tests: sled::Tree,
    /// Inbox, ticket records and their indexes (`tickets.rs`): one tree, so a step's writes are one
    /// atomic batch. On disk the tree keeps its name, `engine`.
    engine: sled::Tree,
    /// Counts inspection reads instead of scanning the engine tree.
    gauges: std::sync::Arc<tickets::Gauges>,
    commits: std::sync::Arc<group_commit::GroupCommit>,
    /// The second each org's last-webhook time was last written in.
    webhook_seconds: std::sync::Arc<parking_lot::Mutex<std::collections::HashMap<OrgId, i64>>>,
}

const TOKEN_SECRET_KEY: &[u8] = b"webhook_token_secret";
/// How long an open waits for the database lock a previous open is releasing.
const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// Page cache used when none is configured.
pub const DEFAULT_CACHE_BYTES: u64 = 64 << 20;

impl SledStore {
    /// Open (or create) the database in `dir`.
    pub fn open(dir: &Path) -> StoreResult<Self> {
        Self::open_with_cache(dir, DEFAULT_CACHE_BYTES)
    }

    /// Open with a page cache of `cache_bytes` (sled's own default is 1 GiB, which lets the
    /// resident size grow with every ticket ever read).
    pub fn open_with_cache(dir: &Path, cache_bytes: u64) -> StoreResult<Self> {
        let config = sled::Config::new()
            .path(dir.join("db"))
            .mode(sled::Mode::HighThroughput)
            .cache_capacity(cache_bytes);
        // sled releases its file lock from its I/O threads, a moment after the last handle
        // of a previous open was dropped (a restart in the same process): wait for it.
        let deadline = std::time::Instant::now() + LOCK_WAIT;
        let db = loop {
            match config.open() {
                Err(sled::Error::Io(e))
                    if e.to_string().contains("could not acquire lock")
                        && std::time::Instant::now() < deadline =>
                {
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
                result => break result?,
            }
        };
        let engine = db.open_tree("engine")?;
        Ok(Self {
            meta: db.open_tree("meta")?,
            orgs: db.open_tree("orgs")?,
            connections: db.open_tree("connections")?,
            tokens: db.open_tree("org_tokens")?,
            token_hashes: db.open_tree("org_token_hashes")?,
            self_tests: db.open_tree("self_tests")?,
            gauges: std::sync::Arc::new(tickets::Gauges::count(&engine)?),
            engine,
            commits: std::sync::Arc::new(group_commit::GroupCommit::start(db.clone())?),
            webhook_seconds: Default::default(),
            db,
        })
    }
}

#[async_trait]
impl StoreAdmin for SledStore {
    async fn size_on_disk(&self) -> StoreResult<u64> {
        Ok(self.db.size_on_disk()?)
    }

    async fn webhook_token_secret(&self) -> StoreResult<[u8; 32]> {
        let mut fresh = [0u8; 32];
        rand::thread_rng().fill_bytes(&mut fresh);
        // compare_and_swap keeps the first writer's secret if two starts race.
        let _ = self.meta.compare_and_swap(
            TOKEN_SECRET_KEY,
            None as Option<&[u8]>,
            Some(&fresh[..]),
        )?;
        let stored = self
            .meta
            .get(TOKEN_SECRET_KEY)?
            .ok_or_else(|| StoreError::Corrupt("webhook token secret vanished".into()))?;
        stored
            .as_ref()
            .try_into()
            .map_err(|_| StoreError::Corrupt("webhook token secret has the wrong length".into()))
    }

    /// No flush stuck, the last one succeeded.
    fn durability(&self) -> Result<(), String> {
        self.commits.health()
    }

    fn flush_faults(&self) -> Option<Arc<FlushFaults>> {
        Some(self.commits.faults())
    }
}

fn decode<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> StoreResult<T> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt(e.to_string()))
}

fn encode<T: serde::Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).expect("records serialise to JSON")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_open_waits_for_the_lock_a_previous_open_is_releasing() {
        let dir = tempfile::tempdir().unwrap();
        let first = SledStore::open_with_cache(dir.path(), 1 << 20).unwrap();
        let release = std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(200));
            drop(first);
        });
        let second = SledStore::open_with_cache(dir.path(), 1 << 20);
        release.join().unwrap();
        assert!(second.is_ok(), "{:?}", second.err());
    }
}
