//! Ownership of orgs by shard, and the proof every engine write gives that this node still
//! owns its shard (Kleppmann's fencing token).
//!
//! `ShardTokens` is this node's view: its id and the token of each lease it holds. The lease
//! manager (`src/cluster/`) grants and revokes; the PostgreSQL store only reads. A write
//! transaction of the engine (commit, discard, job state, record seeding) first locks its
//! shard's lease row `FOR SHARE` with this node's id and token and an unexpired `expires_at`
//! (the database's clock): if another node has taken the lease since, the row does not match
//! and the transaction rolls back without writing; if a takeover is under way, it waits for
//! this transaction to end, so a new owner never sees a write of the old one land after it
//! took over.

use super::PgError;
use parking_lot::RwLock;
use std::collections::{BTreeSet, HashMap};
use ticketsync_actors::OrgId;
use tokio_postgres::GenericClient;

/// The shard an org belongs to: the org id's first 8 bytes, big-endian, modulo the shard count.
pub fn shard_of(org: OrgId, shards: u32) -> u32 {
    let bytes = org.0.as_bytes();
    let high = u64::from_be_bytes(bytes[..8].try_into().expect("a uuid has 16 bytes"));
    (high % u64::from(shards.max(1))) as u32
}

/// This node's id and the fencing token of each shard lease it holds.
#[derive(Debug)]
pub struct ShardTokens {
    node_id: String,
    shards: u32,
    held: RwLock<HashMap<u32, i64>>,
}

impl ShardTokens {
    /// A node holding no lease yet.
    pub fn new(node_id: impl Into<String>, shards: u32) -> Self {
        Self {
            node_id: node_id.into(),
            shards: shards.max(1),
            held: RwLock::default(),
        }
    }

    /// This node's id (the `owner` of its lease rows).
    pub fn node_id(&self) -> &str {
        &self.node_id
    }

    /// How many shards the orgs are spread over.
    pub fn shards(&self) -> u32 {
        self.shards
    }

    /// The shard of an org.
    pub fn shard_of(&self, org: OrgId) -> u32 {
        shard_of(org, self.shards)
    }

    /// The token of the shard's lease, if this node holds it.
    pub fn held(&self, shard: u32) -> Option<i64> {
        self.held.read().get(&shard).copied()
    }

    /// Every lease this node holds, by shard.
    pub fn held_shards(&self) -> Vec<(u32, i64)> {
        let mut held: Vec<_> = self.held.read().iter().map(|(s, t)| (*s, *t)).collect();
        held.sort_unstable();
        held
    }

    /// This node now holds the shard's lease with `token`.
    pub fn grant(&self, shard: u32, token: i64) {
        self.held.write().insert(shard, token);
    }

    /// This node no longer holds the shard's lease.
    pub fn revoke(&self, shard: u32) {
        self.held.write().remove(&shard);
    }
}

/// Inside a write transaction: prove that this node holds the lease of every org's shard (and
/// keep the lease rows locked `FOR SHARE` until the transaction ends). On failure the caller
/// must roll back (dropping the transaction does).
pub(super) async fn prove_leases(
    tx: &impl GenericClient,
    tokens: &ShardTokens,
    orgs: impl IntoIterator<Item = OrgId>,
) -> Result<(), PgError> {
    let shards: BTreeSet<u32> = orgs.into_iter().map(|o| tokens.shard_of(o)).collect();
    for shard in shards {
        let token = tokens.held(shard).ok_or(PgError::Fenced(shard))?;
        let proof = tx
            .query_opt(
                "SELECT 1 FROM shard_leases \
                 WHERE shard = $1 AND owner = $2 AND token = $3 AND expires_at > now() \
                 FOR SHARE",
                &[&(shard as i32), &tokens.node_id(), &token],
            )
            .await?;
        if proof.is_none() {
            return Err(PgError::Fenced(shard));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shard_is_the_first_eight_bytes_big_endian_modulo_the_shard_count() {
        let org = OrgId(uuid::Uuid::from_bytes([
            0, 0, 0, 0, 0, 0, 1, 2, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        ]));
        assert_eq!(shard_of(org, 64), 0x0102 % 64);
        assert_eq!(shard_of(org, 100), 0x0102 % 100);
        let top = OrgId(uuid::Uuid::from_bytes([0xff; 16]));
        assert_eq!(shard_of(top, 64), (u64::MAX % 64) as u32);
    }

    #[test]
    fn tokens_are_held_from_grant_until_revoke() {
        let tokens = ShardTokens::new("node-a", 8);
        assert_eq!(tokens.held(3), None);
        tokens.grant(3, 7);
        tokens.grant(5, 1);
        assert_eq!(tokens.held(3), Some(7));
        tokens.grant(3, 8);
        assert_eq!(tokens.held_shards(), vec![(3, 8), (5, 1)]);
        tokens.revoke(3);
        assert_eq!(tokens.held(3), None);
        assert_eq!(tokens.held_shards(), vec![(5, 1)]);
    }
}
