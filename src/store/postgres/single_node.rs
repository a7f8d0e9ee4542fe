//! Stand-in for the lease manager: a node that runs alone on its database takes every shard
//! lease and keeps renewing it. The cluster's lease manager (`src/cluster/`) replaces this;
//! until then a PostgreSQL deployment runs as one node.

use super::{PgError, PgStore, ShardTokens};
use deadpool_postgres::Pool;
use std::time::Duration;

impl PgStore {
    /// Take every shard lease that is free or expired, with a lease of `ttl` on the database
    /// clock, and renew the held ones every `ttl / 3` on the store's runtime; a lease that
    /// cannot be renewed (taken by another node after it expired) is revoked here.
    /// Returns how many shards this node holds.
    pub async fn claim_all_shards_for_single_node(&self, ttl: Duration) -> Result<usize, PgError> {
        let held = self.take_free_shards(ttl).await?;
        // The loop holds the pool and the tokens, not the store: it ends with the store's
        // runtime when the last handle goes.
        let (pool, tokens) = (self.pool.clone(), self.tokens.clone());
        self.runtime.handle().spawn(async move {
            loop {
                tokio::time::sleep(ttl / 3).await;
                if let Err(e) = renew_held_shards(&pool, &tokens, ttl).await {
                    tracing::warn!("renewing the shard leases failed: {e}");
                }
            }
        });
        Ok(held)
    }

    async fn take_free_shards(&self, ttl: Duration) -> Result<usize, PgError> {
        let tokens = self.tokens.clone();
        let taken: Vec<(i32, i64)> = self
            .run(move |pool| async move {
                let rows = pool
                    .get()
                    .await?
                    .query(
                        "UPDATE shard_leases SET owner = $1, token = token + 1, \
                             expires_at = now() + make_interval(secs => $2) \
                         WHERE owner IS NULL OR expires_at <= now() OR owner = $1 \
                         RETURNING shard, token",
                        &[&tokens.node_id(), &ttl.as_secs_f64()],
                    )
                    .await?;
                Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
            })
            .await?;
        for (shard, token) in &taken {
            self.tokens.grant(*shard as u32, *token);
        }
        Ok(taken.len())
    }
}

/// Renew every lease `tokens` holds; revoke those that are no longer this node's.
async fn renew_held_shards(
    pool: &Pool,
    tokens: &ShardTokens,
    ttl: Duration,
) -> Result<(), PgError> {
    let held = tokens.held_shards();
    let (shards, values): (Vec<i32>, Vec<i64>) = held.iter().map(|(s, t)| (*s as i32, *t)).unzip();
    let rows = pool
        .get()
        .await?
        .query(
            "UPDATE shard_leases l SET expires_at = now() + make_interval(secs => $4) \
             FROM unnest($2::int[], $3::bigint[]) AS h(shard, token) \
             WHERE l.shard = h.shard AND l.token = h.token AND l.owner = $1 \
               AND l.expires_at > now() \
             RETURNING l.shard",
            &[&tokens.node_id(), &shards, &values, &ttl.as_secs_f64()],
        )
        .await?;
    let renewed: Vec<i32> = rows.iter().map(|r| r.get(0)).collect();
    for (shard, _) in held {
        if !renewed.contains(&(shard as i32)) {
            tracing::warn!("shard {shard}: lease lost");
            tokens.revoke(shard);
        }
    }
    Ok(())
}
