//! `ShardOwnership`: this node's live view of the shards it owns, written by the lease manager
//! and read by the engine (may an org's work run here, may a Freshdesk write for it start now)
//! and by inspection.
//!
//! Every answer is computed against the local monotonic clock at the moment it is asked, from
//! the shard's **write deadline** (when the statement that last took or renewed the lease was
//! sent, plus the ttl): the database's `expires_at` is at least that late, since the database
//! set it after the statement arrived. So a node whose lease manager stalled (a pause, a lost
//! database) stops by itself, without waiting for the manager to notice.
//!
//! - **runs**: the lease is held, its settle window after the take has passed and it is not
//!   being handed over, and the deadline is not reached;
//! - **may write**: runs, and more than the write margin (Freshdesk request timeout + 1 s) is
//!   left before the deadline, so a write that starts now ends before the lease can expire;
//! - **epoch**: the lease's fencing token; a ticket actor that cached state under another
//!   epoch reloads it and reconciles its pending writes (it may have lost the shard meanwhile).

use crate::store::postgres::shard_of;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use parking_lot::RwLock;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use ticketsync_actors::ports::Ownership;
use ticketsync_actors::OrgId;
use tokio::sync::watch;

/// One shard as this node holds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeldShard {
    pub token: i64,
    /// Local instant the lease may expire at (statement sent + ttl).
    pub deadline: Instant,
    /// Until then, the shard's work does not start (writes of the previous owner may land).
    pub settled_at: Instant,
    /// The lease's expiry on the database clock, as last set (inspection).
    pub expires_at: DateTime<Utc>,
    /// Being handed over: work stopped, released once writes in flight ended.
    pub handing_over: bool,
}

/// The shards this node holds; see the module doc.
pub struct ShardOwnership {
    shards: u32,
    write_margin: Duration,
    held: RwLock<BTreeMap<u32, HeldShard>>,
    /// Bumped on every change, so waiters (a write waiting for a renewal) look again.
    changed: watch::Sender<u64>,
    /// When the statement of this node's last successful heartbeat was sent.
    heartbeat: parking_lot::Mutex<Option<Instant>>,
}

impl ShardOwnership {
    /// Nothing held yet. `write_margin`: how long before the deadline writes stop.
    pub fn new(shards: u32, write_margin: Duration) -> Self {
        Self {
            shards: shards.max(1),
            write_margin,
            held: RwLock::default(),
            changed: watch::Sender::new(0),
            heartbeat: parking_lot::Mutex::new(None),
        }
    }

    /// How many shards the orgs are spread over.
    pub fn shards(&self) -> u32 {
        self.shards
    }

    /// The shard's state, if held.
    pub fn get(&self, shard: u32) -> Option<HeldShard> {
        self.held.read().get(&shard).copied()
    }

    /// Every shard held, by shard.
    pub fn held(&self) -> Vec<(u32, HeldShard)> {
        self.held.read().iter().map(|(s, h)| (*s, *h)).collect()
    }

    /// Record the shard as held (taken or renewed).
    pub fn hold(&self, shard: u32, held: HeldShard) {
        self.held.write().insert(shard, held);
        self.bump();
    }

    /// Stop the shard's work (before its hand-over).
    pub fn start_hand_over(&self, shard: u32) {
        if let Some(held) = self.held.write().get_mut(&shard) {
            held.handing_over = true;
        }
        self.bump();
    }

    /// The shard is no longer held.
    pub fn drop_shard(&self, shard: u32) {
        self.held.write().remove(&shard);
        self.bump();
    }

    /// Whether the shard's work runs here now.
    pub fn shard_runs(&self, shard: u32) -> bool {
        let now = Instant::now();
        self.get(shard)
            .is_some_and(|h| !h.handing_over && now >= h.settled_at && now < h.deadline)
    }

    /// Whether a Freshdesk write of the shard may start now.
    pub fn shard_may_write(&self, shard: u32) -> bool {
        self.shard_runs(shard)
            && self.get(shard).is_some_and(|h| {
                h.deadline.saturating_duration_since(Instant::now()) > self.write_margin
            })
    }

    /// The token of the shard's lease, if its work runs here.
    pub fn shard_epoch(&self, shard: u32) -> Option<i64> {
        self.shard_runs(shard)
            .then(|| self.get(shard).map(|h| h.token))
            .flatten()
    }

    /// Wait until a write of the shard may start (true) or its work no longer runs here
    /// (false). A write waits out the moment between "too close to the deadline" and the next
    /// renewal instead of failing.
    pub async fn shard_writable(&self, shard: u32) -> bool {
        let mut changed = self.changed.subscribe();
        loop {
            if self.shard_may_write(shard) {
                return true;
            }
            let Some(held) = self.get(shard).filter(|_| self.shard_runs(shard)) else {
                return false;
            };
            // Either a renewal moves the deadline (a change), or the deadline passes.
            let until = tokio::time::Instant::from_std(held.deadline);
            tokio::select! {
                _ = changed.changed() => {}
                () = tokio::time::sleep_until(until) => {}
            }
        }
    }

    /// A heartbeat sent at `sent` was written.
    pub fn heartbeat_sent(&self, sent: Instant) {
        *self.heartbeat.lock() = Some(sent);
    }

    /// Whether this node's last heartbeat is younger than `ttl` (other nodes count it live).
    pub fn heartbeat_fresh(&self, ttl: Duration) -> bool {
        self.heartbeat
            .lock()
            .is_some_and(|sent| sent.elapsed() < ttl)
    }

    fn bump(&self) {
        self.changed.send_modify(|n| *n = n.wrapping_add(1));
    }
}

/// The engine asks by org; an org's work runs where its shard is held.
#[async_trait]
impl Ownership for ShardOwnership {
    fn runs(&self, org: OrgId) -> bool {
        self.shard_runs(shard_of(org, self.shards))
    }
    fn epoch(&self, org: OrgId) -> Option<i64> {
        self.shard_epoch(shard_of(org, self.shards))
    }
    fn may_write(&self, org: OrgId) -> bool {
        self.shard_may_write(shard_of(org, self.shards))
    }
    async fn writable(&self, org: OrgId) -> bool {
        self.shard_writable(shard_of(org, self.shards)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn held(token: i64, settled_in: Duration, deadline_in: Duration) -> HeldShard {
        let now = Instant::now();
        HeldShard {
            token,
            deadline: now + deadline_in,
            settled_at: now + settled_in,
            expires_at: Utc::now() + deadline_in,
            handing_over: false,
        }
    }

    #[test]
    fn work_starts_after_the_settle_window_and_writes_stop_a_margin_before_the_deadline() {
        let ownership = ShardOwnership::new(4, Duration::from_secs(2));
        ownership.hold(1, held(7, Duration::from_secs(60), Duration::from_secs(90)));
        assert!(!ownership.shard_runs(1), "settling");
        assert_eq!(ownership.shard_epoch(1), None);
        ownership.hold(1, held(7, Duration::ZERO, Duration::from_secs(90)));
        assert!(ownership.shard_runs(1) && ownership.shard_may_write(1));
        assert_eq!(ownership.shard_epoch(1), Some(7));
        ownership.hold(1, held(7, Duration::ZERO, Duration::from_secs(1)));
        assert!(ownership.shard_runs(1), "still held");
        assert!(
            !ownership.shard_may_write(1),
            "a write could outlive the lease"
        );
        ownership.start_hand_over(1);
        assert!(!ownership.shard_runs(1));
        assert!(!ownership.shard_runs(2), "never held");
    }

    #[tokio::test]
    async fn a_write_waits_for_the_renewal_and_gives_up_when_the_shard_is_gone() {
        let ownership = std::sync::Arc::new(ShardOwnership::new(4, Duration::from_secs(2)));
        ownership.hold(0, held(1, Duration::ZERO, Duration::from_secs(1)));
        let waiting = tokio::spawn({
            let ownership = ownership.clone();
            async move { ownership.shard_writable(0).await }
        });
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished());
        ownership.hold(0, held(1, Duration::ZERO, Duration::from_secs(30)));
        assert!(waiting.await.unwrap(), "writable after the renewal");

        ownership.hold(0, held(1, Duration::ZERO, Duration::from_secs(1)));
        let waiting = tokio::spawn({
            let ownership = ownership.clone();
            async move { ownership.shard_writable(0).await }
        });
        tokio::task::yield_now().await;
        ownership.drop_shard(0);
        assert!(
            !waiting.await.unwrap(),
            "not writable once the shard is gone"
        );
    }
}
