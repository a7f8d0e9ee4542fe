//! The shard planner: pure decisions, no I/O. Given what one node read from the database (the
//! live nodes, the lease table, the database clock at the read), it says which shards this node
//! takes, which it renews and which it hands over so that shards end up spread evenly.
//!
//! **Fair share.** The live nodes, sorted by id, split the shards so that counts differ by at
//! most one; the first `shards % nodes` ids get one more. Every node computes the same quotas
//! from the same view, so they agree without talking to each other.
//!
//! **Take** only shards that are free or whose lease has expired on the database clock (a dead
//! or paused node's shards are taken only after expiry), and only up to this node's quota.
//! **Hand over** shards held above the quota, but only as many as live nodes below their share
//! cannot fill from free shards or from shards of departed nodes that will free up by
//! themselves: nothing is released that nobody needs. Summed over the nodes, what is handed over
//! never exceeds what others lack, so shards never bounce between nodes.
//!
//! Which free shard to take and which held shard to give up follows a per-node preference
//! (rendezvous hashing of node id and shard), so nodes that race for free shards mostly want
//! different ones.

use chrono::{DateTime, Utc};
use std::collections::{BTreeSet, HashMap};

/// One row of `shard_leases`, as read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub shard: u32,
    pub owner: Option<String>,
    pub token: i64,
    pub expires_at: Option<DateTime<Utc>>,
}

impl Lease {
    /// The node holding the lease at `now` (database clock), if it has not expired.
    pub fn holder(&self, now: DateTime<Utc>) -> Option<&str> {
        match (&self.owner, self.expires_at) {
            (Some(owner), Some(expires)) if expires > now => Some(owner),
            _ => None,
        }
    }
}

/// What one node read, in one go, to plan from.
#[derive(Debug, Clone)]
pub struct View<'a> {
    /// This node.
    pub me: &'a str,
    /// This node is stopping: it hands over everything.
    pub leaving: bool,
    /// Nodes whose heartbeat is within the lease ttl and that are not leaving (this node is
    /// counted whether or not it is listed, unless it is leaving).
    pub live: &'a [String],
    /// The lease table.
    pub leases: &'a [Lease],
    /// Shards configured (rows `0..shards` of the lease table).
    pub shards: u32,
    /// The database clock at the read.
    pub now: DateTime<Utc>,
}

/// What this node does with its leases after one read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// Free or expired shards to take (a new token each).
    pub take: Vec<u32>,
    /// Shards held, with their tokens, to keep.
    pub renew: Vec<(u32, i64)>,
    /// Shards held, with their tokens, to release once their work is stopped.
    pub hand_over: Vec<(u32, i64)>,
}

/// Each live node's fair share of `shards`: even counts, the remainder to the lowest ids.
pub fn fair_shares<'a>(
    live: impl IntoIterator<Item = &'a str>,
    shards: u32,
) -> HashMap<&'a str, usize> {
    let nodes: BTreeSet<&str> = live.into_iter().collect();
    if nodes.is_empty() {
        return HashMap::new();
    }
    let (base, extra) = (shards as usize / nodes.len(), shards as usize % nodes.len());
    nodes
        .into_iter()
        .enumerate()
        .map(|(rank, node)| (node, base + usize::from(rank < extra)))
        .collect()
}

/// Decide what this node does with the leases it read.
pub fn plan(view: &View<'_>) -> Plan {
    let leases: Vec<&Lease> = view
        .leases
        .iter()
        .filter(|l| l.shard < view.shards)
        .collect();
    let mut mine: Vec<(u32, i64)> = leases
        .iter()
        .filter(|l| l.holder(view.now) == Some(view.me))
        .map(|l| (l.shard, l.token))
        .collect();
    // Least wanted first: those are handed over first.
    mine.sort_by_key(|(shard, _)| preference(view.me, *shard));
    if view.leaving {
        return Plan {
            hand_over: mine,
            ..Plan::default()
        };
    }
    let live: BTreeSet<&str> = view
        .live
        .iter()
        .map(String::as_str)
        .chain([view.me])
        .collect();
    let shares = fair_shares(live.iter().copied(), view.shards);
    let my_share = shares[view.me];
    let mut held_by: HashMap<&str, usize> = HashMap::new();
    for holder in leases.iter().filter_map(|l| l.holder(view.now)) {
        *held_by.entry(holder).or_default() += 1;
    }
    let mut free: Vec<u32> = leases
        .iter()
        .filter(|l| l.holder(view.now).is_none())
        .map(|l| l.shard)
        .collect();

    let excess = mine.len().saturating_sub(my_share);
    if excess > 0 {
        let lacking: usize = shares
            .iter()
            .filter(|(node, _)| **node != view.me)
            .map(|(node, share)| share.saturating_sub(held_by.get(node).copied().unwrap_or(0)))
            .sum();
        // Shards held by nodes that are no longer live free up without our help.
        let departing: usize = held_by
            .iter()
            .filter(|(node, _)| !live.contains(*node))
            .map(|(_, count)| count)
            .sum();
        let give = excess.min(lacking.saturating_sub(free.len() + departing));
        let keep = mine.split_off(give);
        return Plan {
            take: Vec::new(),
            renew: keep,
            hand_over: mine,
        };
    }
    // Most wanted first.
    free.sort_by_key(|shard| std::cmp::Reverse(preference(view.me, *shard)));
    free.truncate(my_share - mine.len());
    Plan {
        take: free,
        renew: mine,
        hand_over: Vec::new(),
    }
}

/// How much `node` wants `shard` (rendezvous hashing; FNV-1a, stable across builds).
fn preference(node: &str, shard: u32) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in node.bytes().chain(shard.to_be_bytes()) {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash
}

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;
