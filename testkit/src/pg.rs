//! PostgreSQL for tests, always a real server:
//!
//! - [`TestPostgres::get`]: the server of this test process. The one at
//!   `TICKETSYNC_TEST_POSTGRES_URL` (default `postgres://postgres@127.0.0.1:5432/postgres`) if
//!   it answers; else a throwaway cluster started once from `initdb`/`postgres` on `PATH`;
//!   else none: with `TICKETSYNC_TEST_POSTGRES_REQUIRED=1` that panics, otherwise it prints
//!   `SKIPPED (no PostgreSQL): <why>` to stderr and the test returns early.
//! - [`TestDatabase`]: a fresh database `ts_<random>` on that server, dropped `WITH (FORCE)`
//!   when the value is dropped.
//! - [`TestBackend`]: the backend a black-box suite runs the service on, from
//!   `TICKETSYNC_TEST_BACKEND=sled|postgres` (default sled): with postgres, each service
//!   instance gets a [`TestDatabase`] of its own.
//! - [`PgCluster`]: a throwaway cluster a test owns and may stop and start again (a database
//!   restart under load). Its data lives in a temp dir; a watchdog process shuts the server
//!   down and removes the dir if the test process dies without dropping it.
//!
//! Administrative statements run on a short-lived thread with its own runtime, so every
//! helper works from sync code, async tests and `Drop` alike.

use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The server URL tests use when it answers.
pub const URL_ENV: &str = "TICKETSYNC_TEST_POSTGRES_URL";
/// `1`: a missing server fails the test instead of skipping it (CI).
pub const REQUIRED_ENV: &str = "TICKETSYNC_TEST_POSTGRES_REQUIRED";
const DEFAULT_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";
/// How long a connection attempt or a cluster start may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// The PostgreSQL server of this test process.
pub struct TestPostgres {
    /// An administrative URL (database `postgres`).
    url: String,
    /// The throwaway cluster, when no configured server answered (lives as long as the process).
    _cluster: Option<PgCluster>,
}

impl TestPostgres {
    /// The server, found (or started) once per process; None when there is none and it is not
    /// required (the notice is printed, so the caller just returns).
    pub fn get() -> Option<&'static TestPostgres> {
        match Self::find_once() {
            Ok(server) => Some(server),
            Err(why) => {
                unavailable(why);
                None
            }
        }
    }

    fn find_once() -> Result<&'static TestPostgres, &'static str> {
        static SERVER: OnceLock<Result<TestPostgres, String>> = OnceLock::new();
        SERVER
            .get_or_init(Self::find)
            .as_ref()
            .map_err(String::as_str)
    }

    fn find() -> Result<TestPostgres, String> {
        let url = std::env::var(URL_ENV).unwrap_or_else(|_| DEFAULT_URL.to_string());
        let configured = match execute(&url, "SELECT 1") {
            Ok(()) => {
                return Ok(TestPostgres {
                    url,
                    _cluster: None,
                })
            }
            Err(e) => format!("{} does not answer ({e})", redact(&url)),
        };
        match PgCluster::launch() {
            Ok(cluster) => Ok(TestPostgres {
                url: cluster.url("postgres"),
                _cluster: Some(cluster),
            }),
            Err(e) => Err(format!("{configured}; no throwaway cluster either: {e}")),
        }
    }

    /// A fresh database on this server.
    pub fn database(&self) -> TestDatabase {
        TestDatabase::create_on(&self.url)
    }

    /// The administrative URL (database `postgres`).
    pub fn url(&self) -> &str {
        &self.url
    }
}

/// A database of its own for one test (or one service instance), dropped with the value.
pub struct TestDatabase {
    name: String,
    url: String,
    admin_url: String,
}

impl TestDatabase {
    /// A fresh database on the test server; None (notice printed) when there is no server.
    pub fn create() -> Option<TestDatabase> {
        TestPostgres::get().map(TestPostgres::database)
    }

    fn create_on(admin_url: &str) -> TestDatabase {
        let name = format!("ts_{:016x}", random_u64());
        execute(admin_url, &format!("CREATE DATABASE {name}"))
            .unwrap_or_else(|e| panic!("CREATE DATABASE {name}: {e}"));
        TestDatabase {
            url: with_database(admin_url, &name),
            admin_url: admin_url.to_string(),
            name,
        }
    }

    /// Its URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Its name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Every row of every table, as text, one per line (for "this never reaches storage").
    pub fn contents(&self) -> String {
        let tables = query_column(
            &self.url,
            "SELECT quote_ident(tablename) FROM pg_tables WHERE schemaname = 'public'",
        )
        .unwrap_or_else(|e| panic!("listing the tables of {}: {e}", self.name));
        let mut text = String::new();
        for table in tables {
            let rows = query_column(&self.url, &format!("SELECT t::text FROM {table} t"))
                .unwrap_or_else(|e| panic!("reading {table}: {e}"));
            for row in rows {
                text.push_str(&format!("{table}: {row}\n"));
            }
        }
        text
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let sql = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
        if let Err(e) = execute(&self.admin_url, &sql) {
            let _ = writeln!(std::io::stderr(), "test database {}: {e}", self.name);
        }
    }
}

/// Chooses the storage backend of the black-box suites.
pub const BACKEND_ENV: &str = "TICKETSYNC_TEST_BACKEND";
/// The encryption key of services on PostgreSQL (the backend needs one configured).
const TEST_ENCRYPTION_KEY: &str = "dGlja2V0c3luYy10ZXN0LWtleS0zMi1ieXRlcyEhISE=";

/// The storage backend a suite runs the service on; with PostgreSQL, the service's database
/// (keep the value as long as the service's data: across its restarts).
pub enum TestBackend {
    Sled,
    Postgres(TestDatabase),
}

impl TestBackend {
    /// `TICKETSYNC_TEST_BACKEND` (`sled` when unset). `postgres` without a server panics: the
    /// run asked for it explicitly.
    pub fn from_env() -> Self {
        match std::env::var(BACKEND_ENV).as_deref() {
            Err(_) | Ok("") | Ok("sled") => Self::Sled,
            Ok("postgres") => match TestPostgres::find_once() {
                Ok(server) => Self::Postgres(server.database()),
                Err(why) => panic!("{BACKEND_ENV}=postgres, but there is no PostgreSQL: {why}"),
            },
            Ok(other) => panic!("{BACKEND_ENV}={other}: expected sled or postgres"),
        }
    }

    /// Whether the service runs on PostgreSQL.
    pub fn is_postgres(&self) -> bool {
        matches!(self, Self::Postgres(_))
    }

    /// The configuration overrides (`TICKETSYNC__…`) that put a service on this backend.
    pub fn overrides(&self) -> Vec<(&'static str, String)> {
        match self {
            Self::Sled => Vec::new(),
            Self::Postgres(db) => vec![
                ("TICKETSYNC__STORAGE__BACKEND", "postgres".into()),
                ("TICKETSYNC__STORAGE__POSTGRES__URL", db.url().to_string()),
                ("TICKETSYNC__STORAGE__POSTGRES__MAX_CONNECTIONS", "4".into()),
                (
                    "TICKETSYNC__STORAGE__ENCRYPTION_KEY",
                    TEST_ENCRYPTION_KEY.into(),
                ),
            ],
        }
    }

    /// For a test about the sled backend itself: true on PostgreSQL, with the reason printed
    /// (the caller returns).
    pub fn skips_sled_only_test(&self, why: &str) -> bool {
        if self.is_postgres() {
            let _ = writeln!(std::io::stderr(), "SKIPPED on PostgreSQL: {why}");
        }
        self.is_postgres()
    }
}

/// A throwaway PostgreSQL cluster in a temp dir, on a free port of 127.0.0.1, owned by the
/// test: it may stop it and start it again (same data, same port).
pub struct PgCluster {
    dir: tempfile::TempDir,
    port: u16,
    server: Option<Child>,
    watchdog: Child,
    /// Set when running as root (initdb and postgres refuse root): the `postgres` user.
    run_as: Option<(u32, u32)>,
}

impl PgCluster {
    /// A new cluster, running; None (notice printed) when the binaries are missing and the
    /// server is not required.
    pub fn start() -> Option<PgCluster> {
        match Self::launch() {
            Ok(cluster) => Some(cluster),
            Err(why) => {
                unavailable(&format!("no throwaway cluster: {why}"));
                None
            }
        }
    }

    fn launch() -> Result<PgCluster, String> {
        for binary in ["initdb", "postgres"] {
            if find_on_path(binary).is_none() {
                return Err(format!("`{binary}` is not on PATH"));
            }
        }
        let dir = tempfile::Builder::new()
            .prefix("ticketsync-pg-")
            .tempdir()
            .map_err(|e| format!("temp dir: {e}"))?;
        let run_as = if unsafe { libc::geteuid() } == 0 {
            let ids = postgres_user()
                .ok_or("running as root, and there is no `postgres` user to run initdb as")?;
            std::os::unix::fs::chown(dir.path(), Some(ids.0), Some(ids.1))
                .map_err(|e| format!("chown of the temp dir: {e}"))?;
            Some(ids)
        } else {
            None
        };
        let mut initdb = Command::new("initdb");
        initdb
            .arg("-D")
            .arg(dir.path().join("data"))
            .args([
                "-U",
                "postgres",
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        if let Some((uid, gid)) = run_as {
            initdb.uid(uid).gid(gid);
        }
        let out = initdb.output().map_err(|e| format!("initdb: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "initdb failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        let watchdog = spawn_watchdog(dir.path())?;
        let mut cluster = PgCluster {
            port: crate::free_port(),
            dir,
            server: None,
            watchdog,
            run_as,
        };
        cluster.run_server()?;
        Ok(cluster)
    }

    /// Start the server on the cluster's data and port, and wait until it answers.
    fn run_server(&mut self) -> Result<(), String> {
        let mut postgres = Command::new("postgres");
        postgres
            .arg("-D")
            .arg(self.dir.path().join("data"))
            .arg("-k")
            .arg(self.dir.path())
            .args(["-p", &self.port.to_string()])
            .args(["-c", "listen_addresses=127.0.0.1"])
            .args(["-c", "max_connections=200", "-c", "shared_buffers=32MB"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            // Its own process group: a Ctrl-C of the test run reaches the watchdog, not it.
            .process_group(0);
        if let Some((uid, gid)) = self.run_as {
            postgres.uid(uid).gid(gid);
        }
        let mut server = postgres.spawn().map_err(|e| format!("postgres: {e}"))?;
        let url = self.url("postgres");
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Ok(Some(status)) = server.try_wait() {
                return Err(format!("postgres exited at start: {status}"));
            }
            match execute(&url, "SELECT 1") {
                Ok(()) => break,
                Err(e) if Instant::now() > deadline => {
                    let _ = server.kill();
                    return Err(format!(
                        "postgres did not answer within {START_TIMEOUT:?}: {e}"
                    ));
                }
                Err(_) => std::thread::sleep(Duration::from_millis(50)),
            }
        }
        self.server = Some(server);
        Ok(())
    }

    /// Stop the server (fast shutdown: sessions are cut, committed data stays).
    pub fn stop(&mut self) {
        if let Some(mut server) = self.server.take() {
            unsafe { libc::kill(server.id() as i32, libc::SIGINT) };
            let _ = server.wait();
        }
    }

    /// Start the stopped server again, with the same data on the same port.
    pub fn start_again(&mut self) {
        assert!(self.server.is_none(), "the cluster is already running");
        self.run_server()
            .unwrap_or_else(|e| panic!("restarting the throwaway cluster: {e}"));
    }

    /// The URL of a database of this cluster.
    pub fn url(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port)
    }

    /// A fresh database on this cluster (dropped with the value, while the cluster runs).
    pub fn database(&self) -> TestDatabase {
        TestDatabase::create_on(&self.url("postgres"))
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        self.stop();
        let _ = self.watchdog.kill();
        let _ = self.watchdog.wait();
    }
}

/// A process that waits for this test process to end, then stops the cluster in `dir` (if it
/// still runs) and removes the dir: the cleanup of a process that died without dropping.
fn spawn_watchdog(dir: &Path) -> Result<Child, String> {
    let script = r#"
        while kill -0 "$1" 2>/dev/null; do sleep 1; done
        pidfile="$2/data/postmaster.pid"
        if [ -f "$pidfile" ]; then
            kill -QUIT "$(head -n 1 "$pidfile")" 2>/dev/null
            for _ in $(seq 1 100); do [ -f "$pidfile" ] || break; sleep 0.1; done
        fi
        rm -rf "$2"
    "#;
    Command::new("sh")
        .args(["-c", script, "watchdog"])
        .arg(std::process::id().to_string())
        .arg(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .map_err(|e| format!("watchdog: {e}"))
}

/// Panic when a server is required, else print the skip notice (past the test harness's
/// output capture, so it shows in a normal run).
fn unavailable(why: &str) {
    if std::env::var(REQUIRED_ENV).is_ok_and(|v| v == "1") {
        panic!("PostgreSQL is required ({REQUIRED_ENV}=1) but unavailable: {why}");
    }
    let _ = writeln!(std::io::stderr(), "SKIPPED (no PostgreSQL): {why}");
}

/// Run SQL on `url` from a thread of its own (usable from sync code, async tests and `Drop`).
pub fn execute(url: &str, sql: &str) -> Result<(), String> {
    query_column(url, sql).map(|_| ())
}

/// The first column of every row `sql` returns on `url`, as text (NULL as empty), from a
/// thread of its own.
pub fn query_column(url: &str, sql: &str) -> Result<Vec<String>, String> {
    let (url, sql) = (url.to_string(), sql.to_string());
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        runtime.block_on(async {
            let mut config: tokio_postgres::Config = url.parse().map_err(|e| format!("{e}"))?;
            config.connect_timeout(CONNECT_TIMEOUT);
            let (client, connection) = config
                .connect(tokio_postgres::NoTls)
                .await
                .map_err(|e| describe(&e))?;
            let connection = tokio::spawn(connection);
            let result = client
                .simple_query(&sql)
                .await
                .map_err(|e| describe(&e))
                .map(|messages| {
                    messages
                        .iter()
                        .filter_map(|m| match m {
                            tokio_postgres::SimpleQueryMessage::Row(row) => {
                                Some(row.get(0).unwrap_or("").to_string())
                            }
                            _ => None,
                        })
                        .collect()
                });
            drop(client);
            let _ = connection.await;
            result
        })
    })
    .join()
    .map_err(|_| "the SQL thread panicked".to_string())?
}

/// An error with its causes.
fn describe(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// `url` with its database replaced.
pub fn with_database(url: &str, database: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let authority_start = base.find("://").map_or(0, |i| i + 3);
    let host_end = base[authority_start..]
        .find('/')
        .map_or(base.len(), |i| authority_start + i);
    let mut out = format!("{}/{database}", &base[..host_end]);
    if let Some(query) = query {
        out.push('?');
        out.push_str(query);
    }
    out
}

/// A URL without its password, for messages.
fn redact(url: &str) -> String {
    let Some(start) = url.find("://").map(|i| i + 3) else {
        return url.to_string();
    };
    let host_end = url[start..].find('/').map_or(url.len(), |i| start + i);
    match url[start..host_end].rfind('@') {
        Some(at) => match url[start..start + at].split_once(':') {
            Some((user, _)) => format!("{}{user}:***{}", &url[..start], &url[start + at..]),
            None => url.to_string(),
        },
        None => url.to_string(),
    }
}

fn find_on_path(binary: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(binary))
        .find(|path| path.is_file())
}

/// The uid and gid of the `postgres` user, from /etc/passwd.
fn postgres_user() -> Option<(u32, u32)> {
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|line| {
        let fields: Vec<&str> = line.split(':').collect();
        (fields.first() == Some(&"postgres") && fields.len() > 3)
            .then(|| Some((fields[2].parse().ok()?, fields[3].parse().ok()?)))
            .flatten()
    })
}

fn random_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    hasher.write_u32(std::process::id());
    hasher.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_url_gets_another_database_and_keeps_its_parameters() {
        assert_eq!(
            with_database("postgres://postgres@127.0.0.1:5432/postgres", "ts_1"),
            "postgres://postgres@127.0.0.1:5432/ts_1"
        );
        assert_eq!(
            with_database("postgres://u:p@h:1/db?sslmode=disable", "x"),
            "postgres://u:p@h:1/x?sslmode=disable"
        );
        assert_eq!(with_database("postgres://h", "x"), "postgres://h/x");
    }

    #[test]
    fn the_test_encryption_key_is_32_bytes_of_base64() {
        let decoded: Vec<u8> = {
            let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
            let bits: String = TEST_ENCRYPTION_KEY
                .trim_end_matches('=')
                .bytes()
                .map(|c| format!("{:06b}", alphabet.iter().position(|a| *a == c).unwrap()))
                .collect();
            bits.as_bytes()
                .chunks_exact(8)
                .map(|byte| u8::from_str_radix(std::str::from_utf8(byte).unwrap(), 2).unwrap())
                .collect()
        };
        assert_eq!(decoded.len(), 32);
    }

    #[test]
    fn a_redacted_url_hides_the_password_only() {
        assert_eq!(
            redact("postgres://u:secret@h:1/db"),
            "postgres://u:***@h:1/db"
        );
        assert_eq!(redact("postgres://u@h:1/db"), "postgres://u@h:1/db");
    }

    #[test]
    fn a_test_database_exists_until_dropped() {
        let Some(server) = TestPostgres::get() else {
            return;
        };
        let db = server.database();
        let exists = |name: &str| {
            execute(
                server.url(),
                &format!(
                    "DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = '{name}') \
                     THEN RAISE EXCEPTION 'absent'; END IF; END $$"
                ),
            )
            .is_ok()
        };
        execute(db.url(), "CREATE TABLE t (x int); INSERT INTO t VALUES (1)").unwrap();
        let name = db.name().to_string();
        assert!(exists(&name));
        drop(db);
        assert!(!exists(&name));
    }

    #[test]
    fn a_cluster_keeps_its_data_across_a_stop_and_start() {
        let Some(mut cluster) = PgCluster::start() else {
            return;
        };
        let db = cluster.database();
        execute(
            db.url(),
            "CREATE TABLE t (x int); INSERT INTO t VALUES (41)",
        )
        .unwrap();
        cluster.stop();
        assert!(
            execute(db.url(), "SELECT 1").is_err(),
            "stopped, yet it answers"
        );
        cluster.start_again();
        execute(
            db.url(),
            "DO $$ BEGIN IF (SELECT x FROM t) <> 41 THEN RAISE EXCEPTION 'lost'; END IF; END $$",
        )
        .unwrap();
        let dir = cluster.dir.path().to_path_buf();
        drop(db);
        drop(cluster);
        assert!(!dir.exists(), "the cluster's dir outlived it");
    }
}
