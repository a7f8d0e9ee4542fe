//! Several nodes on one PostgreSQL: which node owns which org. Orgs hash into a fixed number of
//! shards; each shard is owned through a lease with a fencing token in the database. `plan`
//! decides (pure), the lease manager acts.

pub mod lease;
pub mod ownership;
pub mod plan;
