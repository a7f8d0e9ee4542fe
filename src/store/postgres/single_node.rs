//! Stand-in for the lease manager: a node that runs alone on its database takes every shard
//! lease and keeps renewing it. The cluster's lease manager (`src/cluster/`) replaces this;
//! until then a PostgreSQL deployment runs as one node.

use super::{PgError, PgStore, ShardTokens};
use deadpool_postgres::Pool;
use std::time::Duration;

impl PgStore {
    /// Take every shard lease that is free or expired (and those still recorded for this
    /// node id: a restarted node retakes its own at once), with a lease of `ttl` on the
    /// database clock; then, every `ttl / 3` on the store's runtime, renew the held ones
    /// (revoking here those another node took after they expired) and take any that became
    /// free. Returns how many shards this node holds now.
    pub async fn claim_all_shards_for_single_node(&self, ttl: Duration) -> Result<usize, PgError> {
        let (pool, tokens) = (self.pool.clone(), self.tokens.clone());
        let held = self
            .run(move |pool| async move { take_shards(&pool, &tokens, ttl, true).await })
            .await?;
        // The loop holds the pool and the tokens, not the store: it ends with the store's
        // runtime when the last handle goes.
        let tokens = self.tokens.clone();
        self.runtime.handle().spawn(async move {
            loop {
                tokio::time::sleep(ttl / 3).await;
                let tick = async {
                    renew_held_shards(&pool, &tokens, ttl).await?;
                    take_shards(&pool, &tokens, ttl, false).await
                };
                if let Err(e) = tick.await {
                    tracing::warn!("renewing the shard leases failed: {e}");
                }
            }
        });
        Ok(held)
    }
}

/// Take the free and expired leases (with `own`, also those recorded for this node id) and
/// grant their new tokens; how many shards this node holds afterwards.
async fn take_shards(
    pool: &Pool,
    tokens: &ShardTokens,
    ttl: Duration,
    own: bool,
) -> Result<usize, PgError> {
    let rows = pool
        .get()
        .await?
        .query(
            "UPDATE shard_leases SET owner = $1, token = token + 1, \
                 expires_at = now() + make_interval(secs => $2) \
             WHERE owner IS NULL OR expires_at <= now() OR ($3 AND owner = $1) \
             RETURNING shard, token",
            &[&tokens.node_id(), &ttl.as_secs_f64(), &own],
        )
        .await?;
    for row in rows {
        tokens.grant(row.get::<_, i32>(0) as u32, row.get(1));
    }
    Ok(tokens.held_shards().len())
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
