//! The PostgreSQL backend: the same records as the sled store (JSON), in tables
//! (`migrations/`), shared by every node of a deployment.
//!
//! `PgStore` owns a dedicated multi-thread tokio runtime on which the connection pool's
//! connections live and every operation runs (`runtime.spawn(..).await`): the callers are
//! actix arbiters, current-thread runtimes that stop with their arbiter, and a connection
//! task spawned there would die with it. An operation whose caller goes away still runs to
//! its end on the store's runtime, so a transaction is never abandoned half-sent.
//!
//! Every session runs with `synchronous_commit = on`, the configured `statement_timeout`, and
//! twice that as `idle_in_transaction_session_timeout` (a paused node releases its locks).
//! A write is durable once its transaction committed: `flush` has nothing left to do.
//! `durability()` reports the last failure to reach the server (from operations and from a
//! probe every second) until the server answers again, so `/readyz` says 503 while
//! PostgreSQL is down.
//!
//! Submodules: `migrations` (the schema), `fence` (shard ownership and the lease proof of
//! engine writes), `orgs` (orgs, connections, meta), `engine` (inbox, tickets, jobs, the
//! session list and the inspection counts), `self_tests` (setup self-test reports).

mod appends;
mod engine;
mod fence;
mod import;
mod migrations;
mod orgs;
mod self_tests;

pub use appends::WAKE_CHANNEL;
pub use fence::{shard_of, ShardTokens};

use crate::store::{FlushFaults, StoreAdmin, StoreResult};
use async_trait::async_trait;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use parking_lot::Mutex;
use rand::RngCore;
use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use ticketsync_actors::OrgId;
use tokio_postgres::NoTls;

/// How to reach the database (`[storage.postgres]`).
#[derive(Debug, Clone)]
pub struct PgOptions {
    /// `postgres://user@host:port/database` (a password in it never reaches a log line).
    pub url: String,
    /// Connections in the pool.
    pub max_connections: usize,
    /// Longest a statement may run before the server cancels it.
    pub statement_timeout: Duration,
}

/// Why a PostgreSQL operation failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum PgError {
    /// The server cannot be reached or is shutting down: the operation may succeed later.
    #[error("PostgreSQL is unavailable: {0}")]
    Unavailable(String),
    /// Every pooled connection stayed busy for the wait timeout (not a reason for `/readyz`
    /// to fail: the server is there).
    #[error("PostgreSQL connections are all busy: {0}")]
    Busy(String),
    /// The server refused the statement.
    #[error("PostgreSQL refused a statement: {0}")]
    Query(String),
    /// This node does not hold the lease of the shard it tried to write.
    #[error("lease for shard {0} is not held by this node")]
    Fenced(u32),
    /// The database's schema cannot be used by this binary.
    #[error("PostgreSQL schema: {0}")]
    Schema(String),
    /// A stored value does not decode.
    #[error("stored record is corrupt: {0}")]
    Corrupt(String),
    /// The configuration cannot describe a connection.
    #[error("{0}")]
    Config(String),
}

impl From<tokio_postgres::Error> for PgError {
    fn from(e: tokio_postgres::Error) -> Self {
        if let Some(db) = e.as_db_error() {
            let code = db.code().code();
            let text = format!("{} ({code})", db.message());
            // Class 08: connection exception; 57: operator intervention (shutdown, restart);
            // 53: insufficient resources (too many connections, disk full).
            return if ["08", "57", "53"]
                .iter()
                .any(|class| code.starts_with(class))
            {
                Self::Unavailable(text)
            } else {
                Self::Query(text)
            };
        }
        let io = std::error::Error::source(&e).is_some_and(|s| s.is::<std::io::Error>());
        let text = e.to_string();
        if e.is_closed() || io || text.starts_with("error connecting") || text.contains("timeout") {
            Self::Unavailable(text)
        } else {
            Self::Query(text)
        }
    }
}

impl From<deadpool_postgres::PoolError> for PgError {
    fn from(e: deadpool_postgres::PoolError) -> Self {
        use deadpool_postgres::{PoolError, TimeoutType};
        match e {
            PoolError::Backend(e) => e.into(),
            // Every connection busy: the server answers, this node is saturated.
            PoolError::Timeout(TimeoutType::Wait) => Self::Busy(e.to_string()),
            other => Self::Unavailable(other.to_string()),
        }
    }
}

/// Pool and connection timeouts: a server that does not answer fails an operation quickly
/// (a webhook then gets 503 and Freshdesk retries it), it does not hang it.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// How often the background probe asks the server whether it is there.
const PROBE_INTERVAL: Duration = Duration::from_secs(1);

/// The PostgreSQL store. Cheap to clone (one shared pool and runtime).
#[derive(Clone)]
pub struct PgStore {
    pool: Pool,
    tokens: Arc<ShardTokens>,
    health: Arc<Health>,
    /// The second each org's last-webhook time was last written in (at most one write of the
    /// org's row a second, so concurrent webhooks of one org do not queue on its row lock).
    webhook_seconds: Arc<Mutex<HashMap<OrgId, i64>>>,
    appends: appends::Appends,
    runtime: Arc<StoreRuntime>,
}

/// The store's own runtime; shut down without blocking when the last handle goes (the last
/// handle may be dropped on an async thread, where a blocking shutdown would panic).
struct StoreRuntime(Option<tokio::runtime::Runtime>);

impl StoreRuntime {
    fn handle(&self) -> &tokio::runtime::Handle {
        self.0.as_ref().expect("runtime lives until drop").handle()
    }
}

impl Drop for StoreRuntime {
    fn drop(&mut self) {
        if let Some(runtime) = self.0.take() {
            runtime.shutdown_background();
        }
    }
}

/// The last word on whether the server is reachable.
#[derive(Debug, Default)]
struct Health {
    problem: Mutex<Option<String>>,
}

impl Health {
    fn observe<T>(&self, result: &Result<T, PgError>) {
        match result {
            Ok(_) => *self.problem.lock() = None,
            Err(PgError::Unavailable(why)) => *self.problem.lock() = Some(why.clone()),
            Err(_) => {}
        }
    }
}

impl PgStore {
    /// Connect, apply the migrations the database lacks (refusing a newer schema), and make
    /// sure the lease rows of `tokens.shards()` shards exist.
    pub async fn open(options: &PgOptions, tokens: Arc<ShardTokens>) -> Result<Self, PgError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("postgres-store")
            .enable_all()
            .build()
            .map_err(|e| PgError::Config(format!("cannot start the store's runtime: {e}")))?;
        let pool = build_pool(options)?;
        let appends = {
            let _entered = runtime.enter();
            appends::Appends::start(pool.clone())
        };
        let store = Self {
            pool,
            appends,
            tokens,
            health: Arc::default(),
            webhook_seconds: Arc::default(),
            runtime: Arc::new(StoreRuntime(Some(runtime))),
        };
        let shards = store.tokens.shards();
        store
            .run(move |pool| async move {
                let mut client = pool.get().await?;
                migrations::migrate(&mut client).await?;
                orgs::ensure_shards(&client, shards).await
            })
            .await?;
        store.start_probe();
        Ok(store)
    }

    /// This node's id and leases.
    pub fn tokens(&self) -> &Arc<ShardTokens> {
        &self.tokens
    }

    /// Run `work` on the store's runtime with the pool; note whether the server was reachable.
    async fn run<T, W, F>(&self, work: W) -> Result<T, PgError>
    where
        T: Send + 'static,
        W: FnOnce(Pool) -> F,
        F: Future<Output = Result<T, PgError>> + Send + 'static,
    {
        let task = self.runtime.handle().spawn(work(self.pool.clone()));
        let result = match task.await {
            Ok(result) => result,
            Err(e) => Err(PgError::Query(format!("store task failed: {e}"))),
        };
        self.health.observe(&result);
        result
    }

    /// Ask the server every second whether it is there (for `durability` while idle).
    fn start_probe(&self) {
        let pool = self.pool.clone();
        let health = Arc::downgrade(&self.health);
        self.runtime.handle().spawn(async move {
            let mut tick = tokio::time::interval(PROBE_INTERVAL);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let Some(health) = health.upgrade() else {
                    return;
                };
                let answer: Result<(), PgError> = async {
                    let client = pool.get().await?;
                    client.simple_query("SELECT 1").await?;
                    Ok(())
                }
                .await;
                health.observe(&answer);
            }
        });
    }
}

#[async_trait]
impl StoreAdmin for PgStore {
    /// `pg_database_size` of the database.
    async fn size_on_disk(&self) -> StoreResult<u64> {
        let bytes: i64 = self
            .run(move |pool| async move {
                let row = pool
                    .get()
                    .await?
                    .query_one("SELECT pg_database_size(current_database())", &[])
                    .await?;
                Ok(row.get(0))
            })
            .await?;
        Ok(bytes.max(0) as u64)
    }

    /// The secret that signs webhook tokens: generated once (the first node to start wins),
    /// then stable forever.
    async fn webhook_token_secret(&self) -> StoreResult<[u8; 32]> {
        let mut fresh = [0u8; 32];
        rand::thread_rng().fill_bytes(&mut fresh);
        let stored = self
            .run(move |pool| async move {
                let client = pool.get().await?;
                orgs::set_once(&client, orgs::TOKEN_SECRET_KEY, fresh.to_vec()).await
            })
            .await?;
        stored.as_slice().try_into().map_err(|_| {
            PgError::Corrupt("webhook token secret has the wrong length".into()).into()
        })
    }

    /// The last failure to reach the server, until it answers again.
    fn durability(&self) -> Result<(), String> {
        match self.health.problem.lock().as_ref() {
            None => Ok(()),
            Some(why) => Err(format!("PostgreSQL is unavailable: {why}")),
        }
    }

    /// None: the fault switches are sled's.
    fn flush_faults(&self) -> Option<Arc<FlushFaults>> {
        None
    }
}

fn build_pool(options: &PgOptions) -> Result<Pool, PgError> {
    let mut config: tokio_postgres::Config = options.url.parse().map_err(|e| {
        PgError::Config(format!("storage.postgres.url is not a PostgreSQL URL: {e}"))
    })?;
    // A node paused inside a transaction holds its row locks (among them its lease row, which
    // a new owner's take skips) until the server ends the session: bound that as well.
    let session = format!(
        "-c synchronous_commit=on -c statement_timeout={} -c idle_in_transaction_session_timeout={}",
        options.statement_timeout.as_millis(),
        options.statement_timeout.as_millis() * 2
    );
    let combined = match config.get_options() {
        Some(given) if !given.is_empty() => format!("{given} {session}"),
        _ => session,
    };
    config.options(&combined);
    if config.get_application_name().is_none() {
        config.application_name("ticketsync");
    }
    config
        .connect_timeout(CONNECT_TIMEOUT)
        .keepalives(true)
        .keepalives_idle(Duration::from_secs(10));
    let manager = Manager::from_config(
        config,
        NoTls,
        ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        },
    );
    Pool::builder(manager)
        .max_size(options.max_connections.max(1))
        .runtime(Runtime::Tokio1)
        .create_timeout(Some(CONNECT_TIMEOUT))
        .wait_timeout(Some(options.statement_timeout.max(CONNECT_TIMEOUT)))
        .recycle_timeout(Some(CONNECT_TIMEOUT))
        .build()
        .map_err(|e| PgError::Config(format!("cannot build the connection pool: {e}")))
}

#[cfg(test)]
mod tests;
