//! Several nodes on one PostgreSQL: which node owns which org (docs/cluster.md).
//!
//! Orgs hash into a fixed number of shards (`shard_of`); each shard is owned by one node at a
//! time through a lease with a fencing token in the database. `plan` decides (pure), `lease`
//! acts on the database clock, `ownership` is what the engine and inspection read, `work`
//! starts and stops the engine's work on a shard, `listener` turns other nodes' wake-ups
//! into local ones.
//!
//! `Cluster` is this node's membership: one thread with its own runtime runs the lease
//! manager, the wake-up listener and the periodic look for work (every third of the lease
//! ttl: tickets with work in the shards held here, in case a wake-up was lost). Nothing on it
//! waits for the engine or the store's pool, so a loaded node still renews its leases.
//! `stop` (SIGTERM) releases every lease before the engine stops.

pub mod lease;
pub mod listener;
pub mod ownership;
pub mod plan;
pub mod work;

use crate::store::postgres::{PgError, WAKE_CHANNEL};
use chrono::{DateTime, Utc};
use lease::{LeaseManager, LeaseSettings};
use ownership::ShardOwnership;
use parking_lot::Mutex;
use serde::Serialize;
use std::sync::Arc;
use std::time::Duration;
use ticketsync_actors::OrgId;
use tokio_postgres::{Client, NoTls};
use work::EngineWork;

/// What the cluster is built from.
pub struct ClusterParts {
    pub lease: LeaseSettings,
    pub tokens: Arc<crate::store::postgres::ShardTokens>,
    pub ownership: Arc<ShardOwnership>,
    pub work: Arc<EngineWork>,
    /// Told of every webhook committed on any node (setup self-test arrivals).
    pub self_tests: crate::selftest::SelfTests,
    /// The webhook route's memory of connected orgs: the listener forgets what changed.
    pub connected_orgs: Arc<crate::connected_orgs::ConnectedOrgs>,
}

/// This node's membership (see the module doc).
pub struct Cluster {
    node_id: String,
    url: String,
    ttl: Duration,
    ownership: Arc<ShardOwnership>,
    /// The cluster thread's runtime: database work of other callers runs there, where its
    /// connections live.
    runtime: tokio::runtime::Handle,
    /// A connection for inspection reads and org-change announcements (made on first use).
    client: Arc<tokio::sync::Mutex<Option<Arc<Client>>>>,
    stop: Mutex<Option<tokio::sync::oneshot::Sender<()>>>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

/// This node, its shards and the other nodes, as inspection shows them.
#[derive(Debug, Serialize)]
pub struct ClusterView {
    pub node: NodeView,
    pub shards: Vec<ShardView>,
    pub nodes: Vec<PeerView>,
}

/// This node.
#[derive(Debug, Serialize)]
pub struct NodeView {
    pub id: String,
    pub started_at: Option<DateTime<Utc>>,
}

/// A shard held here.
#[derive(Debug, Serialize)]
pub struct ShardView {
    pub shard: u32,
    pub expires_at: DateTime<Utc>,
}

/// A node of the cluster (this one included), with the shards it holds unexpired.
#[derive(Debug, Serialize)]
pub struct PeerView {
    pub id: String,
    pub address: String,
    pub started_at: DateTime<Utc>,
    pub heartbeat_at: DateTime<Utc>,
    pub leaving: bool,
    pub shards: Vec<u32>,
}

impl Cluster {
    /// Start the cluster thread: leases, listener, periodic look for work.
    pub fn start(parts: ClusterParts) -> std::io::Result<Self> {
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let (runtime_tx, runtime_rx) = std::sync::mpsc::channel();
        let (node_id, url, ttl) = (
            parts.lease.node_id.clone(),
            parts.lease.url.clone(),
            parts.lease.ttl,
        );
        let ownership = parts.ownership.clone();
        let thread = std::thread::Builder::new()
            .name("cluster".into())
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("a current-thread runtime");
                let _ = runtime_tx.send(runtime.handle().clone());
                runtime.block_on(run(parts, stop_rx));
            })?;
        let runtime = runtime_rx
            .recv()
            .map_err(|_| std::io::Error::other("the cluster thread ended at start"))?;
        Ok(Self {
            node_id,
            url,
            ttl,
            ownership,
            runtime,
            client: Arc::default(),
            stop: Mutex::new(Some(stop_tx)),
            thread: Mutex::new(Some(thread)),
        })
    }

    /// Release every lease (after stopping this node's work on them) and end the thread.
    pub async fn stop(&self) {
        if let Some(stop) = self.stop.lock().take() {
            let _ = stop.send(());
        }
        let thread = self.thread.lock().take();
        if let Some(thread) = thread {
            let _ = tokio::task::spawn_blocking(move || thread.join()).await;
        }
    }

    /// Whether this node's last heartbeat is younger than the lease ttl (`/readyz`).
    pub fn heartbeat_fresh(&self) -> bool {
        self.ownership.heartbeat_fresh(self.ttl)
    }

    /// Wait (at most one lease ttl) until this node's first heartbeat is written, so that a
    /// node reports ready once it is a member. Returns whether it was.
    pub async fn joined(&self) -> bool {
        let deadline = tokio::time::Instant::now() + self.ttl;
        while !self.heartbeat_fresh() {
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        true
    }

    /// Tell the other nodes that the org's connection changed (saved, disconnected), so its
    /// owner mirrors it. A failure is logged: the owner also re-mirrors after reconnecting.
    pub async fn announce_org_change(&self, org: OrgId) {
        let payload = listener::Wake::Org(org).payload();
        let result = self
            .on_cluster_runtime(move |client| async move {
                client
                    .execute("SELECT pg_notify($1, $2)", &[&WAKE_CHANNEL, &payload])
                    .await?;
                Ok(())
            })
            .await;
        if let Err(e) = result {
            tracing::warn!(org_id = %org, error = %e, "cannot tell the other nodes the org changed");
        }
    }

    /// This node, its shards and every node's shards.
    pub async fn view(&self) -> Result<ClusterView, PgError> {
        let id = self.node_id.clone();
        let peers = self
            .on_cluster_runtime(move |client| async move {
                let rows = client
                    .query(
                        "SELECT n.node_id, n.address, n.started_at, n.heartbeat_at, n.leaving, \
                           coalesce(array_agg(l.shard ORDER BY l.shard) \
                             FILTER (WHERE l.shard IS NOT NULL), '{}') \
                         FROM nodes n LEFT JOIN shard_leases l \
                           ON l.owner = n.node_id AND l.expires_at > now() \
                         GROUP BY n.node_id ORDER BY n.node_id",
                        &[],
                    )
                    .await?;
                Ok(rows
                    .iter()
                    .map(|r| PeerView {
                        id: r.get(0),
                        address: r.get(1),
                        started_at: r.get(2),
                        heartbeat_at: r.get(3),
                        leaving: r.get(4),
                        shards: r
                            .get::<_, Vec<i32>>(5)
                            .into_iter()
                            .map(|s| s as u32)
                            .collect(),
                    })
                    .collect::<Vec<_>>())
            })
            .await?;
        let started_at = peers.iter().find(|p| p.id == id).map(|p| p.started_at);
        Ok(ClusterView {
            node: NodeView { id, started_at },
            shards: self
                .ownership
                .held()
                .into_iter()
                .map(|(shard, held)| ShardView {
                    shard,
                    expires_at: held.expires_at,
                })
                .collect(),
            nodes: peers,
        })
    }

    /// Run `work` with the helper connection on the cluster thread (where it lives); the
    /// connection is made again after a failure.
    async fn on_cluster_runtime<T, W, F>(&self, work: W) -> Result<T, PgError>
    where
        T: Send + 'static,
        W: FnOnce(Arc<Client>) -> F + Send + 'static,
        F: std::future::Future<Output = Result<T, tokio_postgres::Error>> + Send,
    {
        let (slot, url) = (self.client.clone(), self.url.clone());
        let task = self.runtime.spawn(async move {
            let client = {
                let mut slot = slot.lock().await;
                match slot.as_ref().filter(|c| !c.is_closed()) {
                    Some(client) => client.clone(),
                    None => {
                        let (client, connection) = tokio::time::timeout(
                            Duration::from_secs(5),
                            tokio_postgres::connect(&url, NoTls),
                        )
                        .await
                        .map_err(|_| PgError::Unavailable("connecting timed out".into()))??;
                        tokio::spawn(connection);
                        let client = Arc::new(client);
                        *slot = Some(client.clone());
                        client
                    }
                }
            };
            Ok::<_, PgError>(work(client).await?)
        });
        task.await
            .map_err(|e| PgError::Unavailable(format!("the cluster thread is gone: {e}")))?
    }
}

impl Drop for Cluster {
    /// A cluster dropped without `stop` (a start that failed later) still releases its
    /// leases: the thread is told to stop, not waited for.
    fn drop(&mut self) {
        if let Some(stop) = self.stop.lock().take() {
            let _ = stop.send(());
        }
    }
}

/// The cluster thread's work until `stop`.
async fn run(parts: ClusterParts, stop: tokio::sync::oneshot::Receiver<()>) {
    let listener = tokio::spawn(listener::listen(
        parts.lease.url.clone(),
        parts.work.clone(),
        parts.ownership.clone(),
        parts.self_tests.clone(),
        parts.connected_orgs.clone(),
    ));
    let look = tokio::spawn(look_for_work(parts.work.clone(), parts.lease.ttl / 3));
    let manager = LeaseManager::new(parts.lease, parts.tokens, parts.ownership, parts.work);
    manager
        .run(async {
            let _ = stop.await;
        })
        .await;
    listener.abort();
    look.abort();
}

/// Every `every`: wake the tickets with work in the shards held here (a lost wake-up costs
/// this much latency at most).
async fn look_for_work(work: Arc<EngineWork>, every: Duration) {
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        if let Err(e) = work.engine.recover().await {
            tracing::warn!(error = %e, "cannot look for work; retrying");
        }
    }
}
