//! What the database saw, by node: triggers the test installs (in a schema of its own,
//! `cluster_audit`) record every committed engine write — ticket rows, consumed inbox events,
//! job state — and every change of a shard lease's owner or token, each stamped with the
//! database clock and the writing connection's `application_name`, which each node's
//! connection URL sets to its node id. A fenced (rolled back) write leaves no row, as it
//! leaves nothing else.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio_postgres::NoTls;

const INSTALL: &str = r#"
CREATE SCHEMA cluster_audit;
CREATE TABLE cluster_audit.writes (
    seq bigserial PRIMARY KEY,
    at timestamptz NOT NULL DEFAULT clock_timestamp(),
    app text NOT NULL DEFAULT current_setting('application_name'),
    tbl text NOT NULL,
    op text NOT NULL,
    org_id uuid
);
CREATE TABLE cluster_audit.leases (
    seq bigserial PRIMARY KEY,
    at timestamptz NOT NULL DEFAULT clock_timestamp(),
    shard int NOT NULL,
    owner text,
    token bigint NOT NULL
);
CREATE FUNCTION cluster_audit.record_write() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        INSERT INTO cluster_audit.writes (tbl, op, org_id) VALUES (TG_TABLE_NAME, TG_OP, OLD.org_id);
    ELSE
        INSERT INTO cluster_audit.writes (tbl, op, org_id) VALUES (TG_TABLE_NAME, TG_OP, NEW.org_id);
    END IF;
    RETURN NULL;
END $$;
CREATE FUNCTION cluster_audit.record_lease() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO cluster_audit.leases (shard, owner, token) VALUES (NEW.shard, NEW.owner, NEW.token);
    RETURN NULL;
END $$;
CREATE TRIGGER cluster_audit_tickets AFTER INSERT OR UPDATE OR DELETE ON tickets
    FOR EACH ROW EXECUTE FUNCTION cluster_audit.record_write();
CREATE TRIGGER cluster_audit_inbox AFTER DELETE ON inbox
    FOR EACH ROW EXECUTE FUNCTION cluster_audit.record_write();
CREATE TRIGGER cluster_audit_jobs AFTER INSERT OR UPDATE OR DELETE ON jobs
    FOR EACH ROW EXECUTE FUNCTION cluster_audit.record_write();
CREATE TRIGGER cluster_audit_leases AFTER UPDATE ON shard_leases
    FOR EACH ROW WHEN (OLD.owner IS DISTINCT FROM NEW.owner OR OLD.token IS DISTINCT FROM NEW.token)
    EXECUTE FUNCTION cluster_audit.record_lease();
"#;

/// A committed engine write.
#[derive(Debug, Clone)]
pub struct Write {
    /// The writing connection's `application_name` (see [`application_name`]).
    pub app: String,
    pub table: String,
    pub op: String,
    pub org_id: String,
    pub at: SystemTime,
}

/// A lease that changed hands (or token).
#[derive(Debug, Clone)]
pub struct LeaseChange {
    pub shard: usize,
    pub owner: Option<String>,
    pub token: i64,
    pub at: SystemTime,
}

/// The `application_name` a node's connections carry.
pub fn application_name(node_id: &str) -> String {
    format!("ticketsync-{node_id}")
}

/// `url` with `application_name` set to the node's.
pub fn node_url(url: &str, node_id: &str) -> String {
    let separator = if url.contains('?') { '&' } else { '?' };
    format!(
        "{url}{separator}application_name={}",
        application_name(node_id)
    )
}

/// A client of the test's database (a new connection per call: it survives restarts).
pub struct Audit {
    url: String,
}

impl Audit {
    /// The audit of the database at `url` (nothing installed yet).
    pub fn new(url: &str) -> Self {
        Self {
            url: url.to_string(),
        }
    }

    /// Install the triggers; the schema must exist (a node has started on the database).
    pub async fn install(&self) {
        self.client()
            .await
            .batch_execute(INSTALL)
            .await
            .expect("the audit triggers are installed (did the nodes create the schema?)");
    }

    /// The lease table as it is now: shard → (owner, token).
    pub async fn current_leases(&self) -> BTreeMap<usize, (Option<String>, i64)> {
        self.client()
            .await
            .query("SELECT shard, owner, token FROM shard_leases", &[])
            .await
            .expect("the lease table")
            .iter()
            .map(|row| {
                (
                    usize::try_from(row.get::<_, i32>(0)).expect("a shard number"),
                    (row.get(1), row.get(2)),
                )
            })
            .collect()
    }

    async fn client(&self) -> tokio_postgres::Client {
        let (client, connection) = tokio_postgres::connect(&self.url, NoTls)
            .await
            .expect("the test connects to its database");
        tokio::spawn(connection);
        client
    }

    /// Every committed engine write so far.
    pub async fn writes(&self) -> Vec<Write> {
        self.client()
            .await
            .query(
                "SELECT app, tbl, op, org_id::text, extract(epoch FROM at)::float8 \
                 FROM cluster_audit.writes ORDER BY seq",
                &[],
            )
            .await
            .expect("audit writes")
            .iter()
            .map(|row| Write {
                app: row.get(0),
                table: row.get(1),
                op: row.get(2),
                org_id: row.get::<_, Option<String>>(3).unwrap_or_default(),
                at: epoch(row.get(4)),
            })
            .collect()
    }

    /// Every change of a lease's owner or token so far.
    pub async fn lease_changes(&self) -> Vec<LeaseChange> {
        self.client()
            .await
            .query(
                "SELECT shard, owner, token, extract(epoch FROM at)::float8 \
                 FROM cluster_audit.leases ORDER BY seq",
                &[],
            )
            .await
            .expect("audit leases")
            .iter()
            .map(|row| LeaseChange {
                shard: usize::try_from(row.get::<_, i32>(0)).expect("a shard number"),
                owner: row.get(1),
                token: row.get(2),
                at: epoch(row.get(3)),
            })
            .collect()
    }
}

fn epoch(seconds: f64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs_f64(seconds)
}
