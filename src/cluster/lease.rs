//! The lease manager: this node's membership and shard leases in PostgreSQL.
//!
//! Every tick (every ttl/3, and sooner when a settle window or a hand-over ends) it
//! heartbeats into `nodes`, reads the live nodes and the lease table, asks the planner
//! (`plan.rs`) what to do and does it with the statements of the shared design, all on the
//! database clock: renew what it keeps, take free or expired shards, hand over shards above
//! its fair share. It runs on its own thread and connection, so neither the engine's load nor
//! a busy pool delays a renewal.
//!
//! Per shard it keeps a **write deadline** on the local monotonic clock: the instant the
//! statement that took or renewed the lease was sent, plus the ttl. The database set
//! `expires_at = now() + ttl` after that instant, so the lease cannot expire before the
//! deadline (given the clock rates agree within the margin, see docs/cluster.md).
//! `ShardOwnership` derives from it whether work runs and whether a Freshdesk write may start.
//! A shard whose deadline passes without a renewal is dropped locally, whatever the database
//! says: the node stops by itself.
//!
//! - **Take**: the fencing token is granted at once (in `ShardTokens`, read by the store for
//!   every engine write). The shard's work starts after a **settle window** (Freshdesk request
//!   timeout + margin) when the lease was taken over from a node whose lease expired: its
//!   writes still in flight have landed by then. A shard that was free (never owned, or
//!   released after a hand-over, which waits for writes in flight) starts at once. Pending
//!   effects the new owner inherits are reconciled by the engine as after a crash.
//! - **Hand over**: the shard's work stops (no new passes or writes), and once the writes in
//!   flight ended (`ShardWork::stop`) the lease is released (`owner = NULL`). The shard keeps
//!   being renewed meanwhile.
//! - **Lost** (a renewal matched no row, or the deadline passed): the token is revoked and the
//!   work stopped.
//! - **Shutdown** (SIGTERM): the node marks itself leaving, stops all work, waits (bounded) for
//!   writes in flight and releases every lease, so others take them at once.

use super::ownership::{HeldShard, ShardOwnership};
use super::plan::{plan, Lease, View};
use crate::store::postgres::{PgError, ShardTokens};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use std::collections::{BTreeSet, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::task::JoinSet;
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, NoTls, Row};

/// What the lease manager needs to know.
#[derive(Debug, Clone)]
pub struct LeaseSettings {
    /// This node's id (`nodes.node_id`, `shard_leases.owner`).
    pub node_id: String,
    /// Where this node can be reached (shown in inspection).
    pub address: String,
    /// `postgres://…` of the shared database.
    pub url: String,
    /// Lease lifetime; renewed every third of it.
    pub ttl: Duration,
    /// Shards the orgs are spread over.
    pub shards: u32,
    /// Freshdesk request timeout + margin: writes stop this long before a lease can expire,
    /// and a shard taken over from an expired lease waits this long before its work starts.
    pub write_margin: Duration,
}

/// The work that runs on a shard this node owns (the engine). Called from the lease
/// manager's thread.
#[async_trait]
pub trait ShardWork: Send + Sync + 'static {
    /// The shard's work may run here now: start its orgs' jobs, wake its tickets with work.
    async fn start(&self, shard: u32);
    /// The shard's work no longer runs here: stop its orgs' jobs. Returns once no Freshdesk
    /// write of its orgs is in flight.
    async fn stop(&self, shard: u32);
}

/// Longest a single statement of the manager may take before the connection is dropped and
/// made again (a hung server must not hold renewals).
fn statement_deadline(ttl: Duration) -> Duration {
    (ttl / 3).max(Duration::from_millis(500))
}

/// The manager of one node's leases. Drive it with `tick` (tests) or `spawn` (the service).
pub struct LeaseManager {
    settings: LeaseSettings,
    client: Option<Client>,
    tokens: Arc<ShardTokens>,
    ownership: Arc<ShardOwnership>,
    work: Arc<dyn ShardWork>,
    /// The first heartbeat of this process was written (`started_at` set).
    registered: bool,
    /// Shards whose work was started (and must be stopped when they go).
    started: HashSet<u32>,
    /// Hand-overs waiting for their shard's writes in flight to end.
    draining: JoinSet<u32>,
    /// Shards whose work stopped, to release at the next tick.
    drained: BTreeSet<u32>,
}

impl LeaseManager {
    /// A manager that holds nothing yet. `ownership` and `tokens` are shared with the engine
    /// and the store.
    pub fn new(
        settings: LeaseSettings,
        tokens: Arc<ShardTokens>,
        ownership: Arc<ShardOwnership>,
        work: Arc<dyn ShardWork>,
    ) -> Self {
        Self {
            settings,
            client: None,
            tokens,
            ownership,
            work,
            registered: false,
            started: HashSet::new(),
            draining: JoinSet::new(),
            drained: BTreeSet::new(),
        }
    }

    /// The shared view of the shards this node holds.
    pub fn ownership(&self) -> &Arc<ShardOwnership> {
        &self.ownership
    }

    /// One round: heartbeat, read, plan, renew, take, hand over, release drained shards,
    /// start settled shards. A database failure ends the round early (the connection is made
    /// again next time); shards whose deadline passes meanwhile are dropped all the same.
    pub async fn tick(&mut self) -> Result<(), PgError> {
        self.drop_expired();
        while let Some(done) = self.draining.try_join_next() {
            self.note_drained(done);
        }
        let result = self.tick_db().await;
        if result.is_err() {
            // The connection may be broken; make a new one next time.
            self.client = None;
        }
        self.start_settled();
        result
    }

    async fn tick_db(&mut self) -> Result<(), PgError> {
        self.release_drained().await?;
        let sent = Instant::now();
        self.heartbeat().await?;
        self.ownership.heartbeat_sent(sent);
        let (live, mut leases, now) = self.read().await?;
        self.adopt(&mut leases, now).await?;
        let view = View {
            me: &self.settings.node_id,
            leaving: false,
            live: &live,
            leases: &leases,
            shards: self.settings.shards,
            now,
        };
        let plan = plan(&view);
        // Shards being handed over are still ours until released: keep them alive.
        let mut renew = plan.renew.clone();
        for (shard, held) in self.ownership.held() {
            if held.handing_over && !renew.iter().any(|(s, _)| *s == shard) {
                renew.push((shard, held.token));
            }
        }
        self.renew(&renew).await?;
        self.take(&plan.take).await?;
        for (shard, token) in plan.hand_over {
            self.hand_over(shard, token);
        }
        Ok(())
    }

    /// When the manager should tick again: a third of the ttl after this tick, or sooner
    /// when a shard's settle window ends.
    pub fn next_tick(&self, ticked_at: Instant) -> Instant {
        let renew_at = ticked_at + self.settings.ttl / 3;
        self.ownership
            .held()
            .into_iter()
            .filter(|(shard, h)| !self.started.contains(shard) && !h.handing_over)
            .map(|(_, h)| h.settled_at)
            .filter(|at| *at > ticked_at)
            .fold(renew_at, Instant::min)
    }

    /// Release every lease at once (SIGTERM): mark this node leaving, stop all work, wait (at
    /// most the write margin) for writes in flight, release.
    pub async fn shutdown(&mut self) {
        let held = self.ownership.held();
        for (shard, _) in &held {
            self.ownership.start_hand_over(*shard);
        }
        let stops = held
            .iter()
            .filter(|(shard, _)| self.started.contains(shard))
            .map(|(shard, _)| self.work.stop(*shard));
        let drained =
            tokio::time::timeout(self.settings.write_margin, futures::future::join_all(stops))
                .await;
        if drained.is_err() {
            tracing::warn!("writes to Freshdesk still in flight at shutdown; releasing the leases anyway after the margin");
        }
        let node = self.settings.node_id.clone();
        let result = async {
            self.query(
                "UPDATE nodes SET leaving = true WHERE node_id = $1",
                &[&node],
            )
            .await?;
            let released = self
                .query(
                    "UPDATE shard_leases SET owner = NULL, expires_at = now() \
                     WHERE owner = $1 RETURNING shard",
                    &[&node],
                )
                .await?;
            Ok::<_, PgError>(released.len())
        }
        .await;
        for (shard, _) in held {
            self.tokens.revoke(shard);
            self.ownership.drop_shard(shard);
        }
        match result {
            Ok(released) => tracing::info!(shards = released, "leases released"),
            Err(e) => {
                tracing::error!(error = %e, "cannot release the leases; they expire by themselves")
            }
        }
    }

    async fn client(&mut self) -> Result<&Client, PgError> {
        if self.client.is_none() {
            let connect = tokio_postgres::connect(&self.settings.url, NoTls);
            let (client, connection) =
                tokio::time::timeout(statement_deadline(self.settings.ttl), connect)
                    .await
                    .map_err(|_| PgError::Unavailable("connecting timed out".into()))??;
            tokio::spawn(async move {
                if let Err(e) = connection.await {
                    tracing::warn!(error = %e, "lease connection closed");
                }
            });
            self.client = Some(client);
        }
        Ok(self.client.as_ref().expect("connected above"))
    }

    /// Run one statement with the manager's deadline.
    async fn query(
        &mut self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<Row>, PgError> {
        let limit = statement_deadline(self.settings.ttl);
        let client = self.client().await?;
        tokio::time::timeout(limit, client.query(sql, params))
            .await
            .map_err(|_| PgError::Unavailable("a lease statement timed out".into()))?
            .map_err(PgError::from)
    }

    async fn heartbeat(&mut self) -> Result<(), PgError> {
        let first = !self.registered;
        let (node, address) = (self.settings.node_id.clone(), self.settings.address.clone());
        self.query(
            "INSERT INTO nodes (node_id, address, started_at, heartbeat_at, leaving) \
             VALUES ($1, $2, now(), now(), false) \
             ON CONFLICT (node_id) DO UPDATE SET heartbeat_at = now(), leaving = false, \
               address = EXCLUDED.address, \
               started_at = CASE WHEN $3 THEN now() ELSE nodes.started_at END",
            &[&node, &address, &first],
        )
        .await?;
        self.registered = true;
        Ok(())
    }

    /// The live nodes, the lease table and the database clock.
    async fn read(&mut self) -> Result<(Vec<String>, Vec<Lease>, DateTime<Utc>), PgError> {
        let ttl_secs = self.settings.ttl.as_secs_f64();
        let live = self
            .query(
                "SELECT node_id FROM nodes \
                 WHERE NOT leaving AND heartbeat_at > now() - make_interval(secs => $1)",
                &[&ttl_secs],
            )
            .await?
            .iter()
            .map(|r| r.get(0))
            .collect();
        let rows = self
            .query(
                "SELECT shard, owner, token, expires_at, now() FROM shard_leases ORDER BY shard",
                &[],
            )
            .await?;
        let now = rows
            .first()
            .map(|r| r.get::<_, DateTime<Utc>>(4))
            .unwrap_or_else(Utc::now);
        let leases = rows
            .iter()
            .map(|r| Lease {
                shard: r.get::<_, i32>(0) as u32,
                owner: r.get(1),
                token: r.get(2),
                expires_at: r.get(3),
            })
            .collect();
        Ok((live, leases, now))
    }

    async fn renew(&mut self, renew: &[(u32, i64)]) -> Result<(), PgError> {
        if renew.is_empty() {
            return Ok(());
        }
        let shards: Vec<i32> = renew.iter().map(|(s, _)| *s as i32).collect();
        let tokens: Vec<i64> = renew.iter().map(|(_, t)| *t).collect();
        let (node, ttl_secs) = (
            self.settings.node_id.clone(),
            self.settings.ttl.as_secs_f64(),
        );
        let sent = Instant::now();
        let rows = self
            .query(
                "UPDATE shard_leases l SET expires_at = now() + make_interval(secs => $4) \
             FROM unnest($2::int[], $3::bigint[]) AS mine(shard, token) \
             WHERE l.shard = mine.shard AND l.owner = $1 AND l.token = mine.token \
               AND l.expires_at > now() \
             RETURNING l.shard, l.expires_at",
                &[&node, &shards, &tokens, &ttl_secs],
            )
            .await?;
        let mut kept = HashSet::new();
        for row in rows {
            let shard = row.get::<_, i32>(0) as u32;
            kept.insert(shard);
            if let Some(mut held) = self.ownership.get(shard) {
                held.deadline = sent + self.settings.ttl;
                held.expires_at = row.get(1);
                self.ownership.hold(shard, held);
            }
        }
        for (shard, _) in renew {
            if !kept.contains(shard) {
                tracing::warn!(shard, "lease lost: another node holds it or it expired");
                self.lose(*shard);
            }
        }
        Ok(())
    }

    /// Leases the table gives this node that it does not know of: a previous run of this node
    /// (same id) held them and stopped without releasing them. Take them over under a new
    /// token (whatever that run still has in flight is fenced) with a settle window, as from
    /// an expired lease; `leases` is updated to match.
    async fn adopt(&mut self, leases: &mut [Lease], now: DateTime<Utc>) -> Result<(), PgError> {
        let me = self.settings.node_id.clone();
        let unknown: Vec<i32> = leases
            .iter()
            .filter(|l| l.holder(now) == Some(me.as_str()))
            .filter(|l| {
                self.ownership
                    .get(l.shard)
                    .is_none_or(|h| h.token != l.token)
            })
            .map(|l| l.shard as i32)
            .collect();
        if unknown.is_empty() {
            return Ok(());
        }
        let ttl_secs = self.settings.ttl.as_secs_f64();
        let sent = Instant::now();
        let rows = self
            .query(
                "UPDATE shard_leases SET token = token + 1, \
                   expires_at = now() + make_interval(secs => $3) \
                 WHERE shard = ANY($2) AND owner = $1 AND expires_at > now() \
                 RETURNING shard, token, expires_at",
                &[&me, &unknown, &ttl_secs],
            )
            .await?;
        for row in rows {
            let shard = row.get::<_, i32>(0) as u32;
            let (token, expires_at) = (row.get(1), row.get(2));
            if self.ownership.get(shard).is_some() {
                self.lose(shard);
            }
            self.hold_taken(shard, token, expires_at, sent, self.settings.write_margin);
            if let Some(lease) = leases.iter_mut().find(|l| l.shard == shard) {
                lease.token = token;
                lease.expires_at = Some(expires_at);
            }
            tracing::info!(
                shard,
                token,
                "lease of a previous run of this node taken over"
            );
        }
        Ok(())
    }

    /// Record a lease just taken: its token for the store, its deadline and settle window.
    fn hold_taken(
        &mut self,
        shard: u32,
        token: i64,
        expires_at: DateTime<Utc>,
        sent: Instant,
        settle: Duration,
    ) {
        self.tokens.grant(shard, token);
        self.ownership.hold(
            shard,
            HeldShard {
                token,
                deadline: sent + self.settings.ttl,
                settled_at: sent + settle,
                expires_at,
                handing_over: false,
            },
        );
    }

    async fn take(&mut self, take: &[u32]) -> Result<(), PgError> {
        if take.is_empty() {
            return Ok(());
        }
        let shards: Vec<i32> = take.iter().map(|s| *s as i32).collect();
        let (node, ttl_secs) = (
            self.settings.node_id.clone(),
            self.settings.ttl.as_secs_f64(),
        );
        let sent = Instant::now();
        // `free` says whether the lease had no owner (never owned, or released after a
        // hand-over) rather than an expired one.
        let rows = self
            .query(
                "WITH old AS ( \
               SELECT shard, owner IS NULL AS free FROM shard_leases \
               WHERE shard = ANY($2) AND (owner IS NULL OR expires_at <= now()) FOR UPDATE) \
             UPDATE shard_leases l SET owner = $1, token = l.token + 1, \
               expires_at = now() + make_interval(secs => $3) \
             FROM old WHERE l.shard = old.shard \
             RETURNING l.shard, l.token, l.expires_at, old.free",
                &[&node, &shards, &ttl_secs],
            )
            .await?;
        for row in rows {
            let shard = row.get::<_, i32>(0) as u32;
            let token: i64 = row.get(1);
            let free: bool = row.get(3);
            if self.ownership.get(shard).is_some() {
                // Our own lease had expired: whatever ran under it is stale.
                self.lose(shard);
            }
            let settle = if free {
                Duration::ZERO
            } else {
                self.settings.write_margin
            };
            self.hold_taken(shard, token, row.get(2), sent, settle);
            tracing::info!(
                shard,
                token,
                settle_ms = settle.as_millis() as u64,
                "lease taken"
            );
        }
        Ok(())
    }

    /// Stop the shard's work; it is released once its writes in flight ended.
    fn hand_over(&mut self, shard: u32, token: i64) {
        let Some(held) = self.ownership.get(shard).filter(|h| h.token == token) else {
            return;
        };
        if held.handing_over {
            return;
        }
        tracing::info!(shard, "handing the shard over");
        self.ownership.start_hand_over(shard);
        let work = self.work.clone();
        let started = self.started.remove(&shard);
        self.draining.spawn(async move {
            if started {
                work.stop(shard).await;
            }
            shard
        });
    }

    fn note_drained(&mut self, done: Result<u32, tokio::task::JoinError>) {
        match done {
            Ok(shard) => {
                self.drained.insert(shard);
            }
            Err(e) => {
                tracing::error!(error = %e, "a hand-over failed; its lease expires by itself")
            }
        }
    }

    /// Release the shards whose work stopped.
    async fn release_drained(&mut self) -> Result<(), PgError> {
        while let Some(shard) = self.drained.pop_first() {
            let Some(held) = self.ownership.get(shard) else {
                continue;
            };
            let node = self.settings.node_id.clone();
            let released = self
                .query(
                    "UPDATE shard_leases SET owner = NULL, expires_at = now() \
                     WHERE shard = $1 AND owner = $2 AND token = $3 RETURNING shard",
                    &[&(shard as i32), &node, &held.token],
                )
                .await;
            if let Err(e) = released {
                self.drained.insert(shard);
                return Err(e);
            }
            self.tokens.revoke(shard);
            self.ownership.drop_shard(shard);
            tracing::info!(shard, "lease released");
        }
        Ok(())
    }

    /// The shard is no longer ours: revoke its token and stop its work.
    fn lose(&mut self, shard: u32) {
        self.tokens.revoke(shard);
        self.ownership.drop_shard(shard);
        if self.started.remove(&shard) {
            let work = self.work.clone();
            tokio::spawn(async move { work.stop(shard).await });
        }
    }

    /// Drop the shards whose deadline passed without a renewal.
    fn drop_expired(&mut self) {
        let now = Instant::now();
        for (shard, held) in self.ownership.held() {
            if held.deadline <= now {
                tracing::warn!(
                    shard,
                    "lease deadline passed without a renewal; the shard is dropped"
                );
                self.lose(shard);
            }
        }
    }

    /// Start the work of shards whose settle window passed.
    fn start_settled(&mut self) {
        for (shard, _) in self.ownership.held() {
            if self.ownership.shard_runs(shard) && self.started.insert(shard) {
                let work = self.work.clone();
                tokio::spawn(async move { work.start(shard).await });
            }
        }
    }

    /// Tick until `stop` resolves, then release every lease (`shutdown`).
    pub async fn run(mut self, stop: impl std::future::Future<Output = ()>) {
        let mut stop = std::pin::pin!(stop);
        loop {
            let ticked_at = Instant::now();
            if let Err(e) = self.tick().await {
                tracing::warn!(error = %e, "lease round failed; retrying");
            }
            let next = tokio::time::Instant::from_std(self.next_tick(ticked_at));
            tokio::select! {
                () = tokio::time::sleep_until(next) => {}
                Some(done) = self.draining.join_next(), if !self.draining.is_empty() => {
                    self.note_drained(done);
                }
                () = &mut stop => break,
            }
        }
        self.shutdown().await;
    }
}

#[cfg(test)]
#[path = "lease_tests.rs"]
mod tests;
