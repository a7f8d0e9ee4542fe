//! The schema, as embedded migrations (`migrations/NNNN_name.sql`), applied at start.
//!
//! All of them run in one transaction under a transaction-level advisory lock, so nodes that
//! start together apply each migration once; `schema_version` holds the versions applied. A
//! database whose newest version is newer than this binary's newest migration was written by
//! a newer release: the store refuses to open it rather than guess.

use super::PgError;
use tokio_postgres::Client;

/// One embedded migration.
pub(super) struct Migration {
    version: i32,
    name: &'static str,
    sql: &'static str,
}

/// Every migration, in order. Append only: a released migration never changes.
pub(super) const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "initial",
        sql: include_str!("migrations/0001_initial.sql"),
    },
    Migration {
        version: 2,
        name: "org_tokens",
        sql: include_str!("migrations/0002_org_tokens.sql"),
    },
    Migration {
        version: 3,
        name: "self_tests",
        sql: include_str!("migrations/0003_self_tests.sql"),
    },
];

/// Key of the advisory lock that serialises migrations (any constant the service owns).
const MIGRATION_LOCK: i64 = 0x7469_636b_6574_7379; // "ticketsy"

/// The newest schema version this binary knows.
pub fn newest_version() -> i32 {
    MIGRATIONS.last().map_or(0, |m| m.version)
}

/// Apply the migrations the database lacks; refuse a database newer than this binary.
/// Returns the versions applied now.
pub async fn migrate(client: &mut Client) -> Result<Vec<i32>, PgError> {
    let tx = client.transaction().await?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await?;
    tx.batch_execute("CREATE TABLE IF NOT EXISTS schema_version (version int PRIMARY KEY)")
        .await?;
    let current: i32 = tx
        .query_one("SELECT coalesce(max(version), 0) FROM schema_version", &[])
        .await?
        .get(0);
    if current > newest_version() {
        return Err(PgError::Schema(format!(
            "the database's schema version {current} is newer than this binary's newest ({}); \
             run a ticketsync release that knows it",
            newest_version()
        )));
    }
    let mut applied = Vec::new();
    for migration in MIGRATIONS.iter().filter(|m| m.version > current) {
        tx.batch_execute(migration.sql).await.map_err(|e| {
            PgError::Schema(format!(
                "migration {:04}_{} failed: {}",
                migration.version,
                migration.name,
                PgError::from(e)
            ))
        })?;
        tx.execute(
            "INSERT INTO schema_version (version) VALUES ($1)",
            &[&migration.version],
        )
        .await?;
        applied.push(migration.version);
    }
    tx.commit().await?;
    Ok(applied)
}
