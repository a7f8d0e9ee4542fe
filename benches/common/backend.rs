//! The storage backend a bench runs the service on, and what PostgreSQL itself costs.
//!
//! - [`Backend`]: `sled` (the service's data directory) or `postgres` (a fresh database on the
//!   machine's server, `testkit::pg`: `TICKETSYNC_TEST_POSTGRES_URL`, default
//!   `postgres://postgres@127.0.0.1:5432/postgres`), chosen per bench by a list knob;
//! - [`BenchStorage`]: what one service (or one cluster of nodes) stores into for one phase;
//!   the PostgreSQL database is created for it and dropped with it;
//! - [`PgMonitor`]: the CPU time of the server processes that serve that database (read from
//!   `/proc/<pid>/stat`, the pids from `pg_stat_activity`), its commits (`pg_stat_database`)
//!   and the server's WAL writes and syncs (`pg_stat_wal`, server-wide).

use super::measure::proc_cpu_secs;
use std::collections::HashMap;
use testkit::pg::TestDatabase;

/// `storage.encryption_key` for every benchmarked service (PostgreSQL requires one, the same
/// on every node): base64 of the 32 bytes `ticketsync bench key, 32 bytes..`.
pub const BENCH_ENCRYPTION_KEY: &str = "dGlja2V0c3luYyBiZW5jaCBrZXksIDMyIGJ5dGVzLi4=";

/// Where the service keeps its state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sled,
    Postgres,
}

impl Backend {
    /// The name used in knobs and tables.
    pub fn name(self) -> &'static str {
        match self {
            Backend::Sled => "sled",
            Backend::Postgres => "postgres",
        }
    }
}

/// A list of backends from the environment (`"sled,postgres"`).
pub fn env_backends(name: &str, default: &str) -> Vec<Backend> {
    let list = std::env::var(name).unwrap_or_else(|_| default.to_string());
    list.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| match s {
            "sled" => Backend::Sled,
            "postgres" => Backend::Postgres,
            other => panic!("{name}: {other:?} is neither sled nor postgres"),
        })
        .collect()
}

/// The storage of one phase: nothing to prepare for sled (each service has its data
/// directory), a fresh PostgreSQL database for postgres (dropped with this value).
pub struct BenchStorage {
    pub backend: Backend,
    database: Option<TestDatabase>,
}

impl BenchStorage {
    /// Prepare `backend`; None when it is postgres and no server answers (testkit prints why).
    pub fn prepare(backend: Backend) -> Option<BenchStorage> {
        let database = match backend {
            Backend::Sled => None,
            Backend::Postgres => Some(TestDatabase::create()?),
        };
        Some(BenchStorage { backend, database })
    }

    /// The PostgreSQL database (postgres only).
    pub fn database(&self) -> Option<&TestDatabase> {
        self.database.as_ref()
    }

    /// The `TICKETSYNC__…` overrides that point a service at this storage.
    pub fn service_env(&self) -> Vec<(&'static str, String)> {
        let mut env = vec![(
            "TICKETSYNC__STORAGE__ENCRYPTION_KEY",
            BENCH_ENCRYPTION_KEY.to_string(),
        )];
        if let Some(db) = &self.database {
            env.push(("TICKETSYNC__STORAGE__BACKEND", "postgres".to_string()));
            env.push(("TICKETSYNC__STORAGE__POSTGRES__URL", db.url().to_string()));
        }
        env
    }

    /// A monitor of the server processes behind the database (postgres only).
    pub async fn monitor(&self) -> Option<PgMonitor> {
        let db = self.database.as_ref()?;
        Some(PgMonitor::connect(&testkit::pg::with_database(db.url(), "postgres"), db.name()).await)
    }
}

/// Reads what the PostgreSQL server spends on one database, over an administrative
/// connection to the `postgres` database (so the monitor is not one of the backends it
/// counts).
pub struct PgMonitor {
    client: tokio_postgres::Client,
    database: String,
}

/// The counters at one moment.
#[derive(Clone, Debug, Default)]
pub struct PgSnapshot {
    /// CPU seconds used so far by each backend connected to the database.
    backends: HashMap<i32, f64>,
    /// CPU seconds used so far by the server's WAL writer, checkpointer and background writer
    /// (shared by every database of the server).
    aux: HashMap<i32, f64>,
    /// Transactions committed in the database (`xact_commit`: a statement outside a
    /// transaction, a read too, counts as one).
    commits: i64,
    /// WAL writes and syncs of the whole server (`pg_stat_wal`).
    wal_writes: i64,
    wal_syncs: i64,
}

impl PgSnapshot {
    /// The pids of the database's backends and of the WAL writer, checkpointer and
    /// background writer.
    pub fn pids(&self) -> Vec<u32> {
        self.backends
            .keys()
            .chain(self.aux.keys())
            .map(|p| *p as u32)
            .collect()
    }
}

/// What the server spent between two snapshots.
#[derive(Clone, Debug, Default)]
pub struct PgCost {
    /// CPU seconds of the database's backends (those alive at the end; a backend that came
    /// and went in between is missed, `vanished` counts those seen at the start).
    pub backend_cpu: f64,
    pub backends: usize,
    pub vanished: usize,
    /// CPU seconds of the WAL writer, checkpointer and background writer (server-wide).
    pub aux_cpu: f64,
    pub commits: i64,
    pub wal_writes: i64,
    pub wal_syncs: i64,
}

impl PgMonitor {
    /// Connect to `admin_url` to watch `database`.
    pub async fn connect(admin_url: &str, database: &str) -> PgMonitor {
        let (client, connection) = tokio_postgres::connect(admin_url, tokio_postgres::NoTls)
            .await
            .unwrap_or_else(|e| panic!("monitor connection to PostgreSQL: {e}"));
        tokio::spawn(connection);
        PgMonitor {
            client,
            database: database.to_string(),
        }
    }

    /// The counters now. CPU times are exact; commits and WAL counters are the cumulative
    /// statistics, which a backend reports when it goes idle, at most once a second, so under
    /// steady load a difference of two snapshots covers an interval as long as theirs, shifted
    /// by up to a second.
    pub async fn snapshot(&self) -> PgSnapshot {
        let rows = self
            .client
            .query(
                "SELECT pid, coalesce(datname = $1, false), backend_type FROM pg_stat_activity \
                 WHERE pid <> pg_backend_pid()",
                &[&self.database],
            )
            .await
            .expect("pg_stat_activity");
        let mut snap = PgSnapshot::default();
        for row in rows {
            let pid: i32 = row.get(0);
            let ours: bool = row.get(1);
            let kind: Option<String> = row.get(2);
            if ours {
                snap.backends.insert(pid, proc_cpu_secs(pid as u32));
            } else if matches!(
                kind.as_deref(),
                Some("walwriter" | "checkpointer" | "background writer")
            ) {
                snap.aux.insert(pid, proc_cpu_secs(pid as u32));
            }
        }
        let row = self
            .client
            .query_one(
                "SELECT (SELECT coalesce(xact_commit, 0) FROM pg_stat_database WHERE datname = $1), \
                 wal_write, wal_sync FROM pg_stat_wal",
                &[&self.database],
            )
            .await
            .expect("pg_stat_database, pg_stat_wal");
        snap.commits = row.get::<_, Option<i64>>(0).unwrap_or(0);
        snap.wal_writes = row.get(1);
        snap.wal_syncs = row.get(2);
        snap
    }

    /// What the server spent from `start` to now (`end`).
    pub fn cost(start: &PgSnapshot, end: &PgSnapshot) -> PgCost {
        let spent = |end: &HashMap<i32, f64>, start: &HashMap<i32, f64>| -> f64 {
            end.iter()
                .map(|(pid, cpu)| cpu - start.get(pid).copied().unwrap_or(0.0))
                .sum()
        };
        PgCost {
            backend_cpu: spent(&end.backends, &start.backends),
            backends: end.backends.len(),
            vanished: start
                .backends
                .keys()
                .filter(|p| !end.backends.contains_key(p))
                .count(),
            aux_cpu: spent(&end.aux, &start.aux),
            commits: end.commits - start.commits,
            wal_writes: end.wal_writes - start.wal_writes,
            wal_syncs: end.wal_syncs - start.wal_syncs,
        }
    }
}
