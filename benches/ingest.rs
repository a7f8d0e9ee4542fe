//! Ingest: durable webhook acknowledgements per second, and their latency, against a plain
//! actix-web hello-world measured in the same run with the same load generator.
//!
//! `cargo bench --bench ingest`
//!
//! Phases (each on fresh processes; the ingest phases run once per backend of
//! `INGEST_BACKENDS`, default `sled,postgres`):
//! 1. `hello-world (before)`: a minimal actix-web server (2 workers, the service's worker
//!    count on this 2-core machine) answering `POST /webhooks/freshdesk/{token}` with 200 "ok"
//!    after reading the body. It runs as a child process (this bench binary re-executed with
//!    `BENCH_ROLE=hello`), like the service.
//! 2. `ingest (Freshdesk rate-limited)`: the release `ticketsync` binary, an org connected to
//!    the simulator at its default Enterprise limit (700 credits/min, of which ticketsync uses
//!    80%). Every request is a valid webhook for a distinct ticket id; each is appended to the
//!    sled inbox, group-committed (sled's flush) and acknowledged 202, and its ticket actor is
//!    woken. The engine's re-reads of those tickets are then capped by the org's rate budget
//!    (560/min), exactly as during a real webhook burst, so the figure is the intake path
//!    itself (parse, append, group commit, wake + actor start) and not Freshdesk round trips.
//!    With `postgres`, the service stores into a fresh database on the machine's PostgreSQL
//!    server (`testkit::pg`: `TICKETSYNC_TEST_POSTGRES_URL`, default 127.0.0.1:5432, user
//!    `postgres`), created for the phase and dropped after it; a webhook is acknowledged after
//!    its transaction committed (`synchronous_commit` as the server has it, printed at the
//!    top). PostgreSQL's own cost is measured apart: the CPU time of the server processes
//!    connected to that database (`/proc/<pid>/stat` of the pids `pg_stat_activity` lists for
//!    it), its commits (`pg_stat_database.xact_commit`), and the WAL writer, checkpointer and
//!    background writer (server-wide, so other databases' work shows there too). Without a
//!    server, the postgres phases are skipped with a notice.
//! 3. `ingest (engine draining)`: the same, but the simulator's limit is raised so the
//!    engine re-reads every ticket while the load runs (each re-read is a 404: the ids do not
//!    exist in the simulator, the event is discarded). This shows intake while the engine
//!    competes for the same two cores.
//! 4. `hello-world (after)`: again, to bracket drift from other load on the machine.
//! 5. `store only`: no HTTP and no engine: `INGEST_CONCURRENCY` tasks in this process call
//!    what the webhook route calls, `append_event` then the group-committed `flush`, on a
//!    fresh sled directory, and (per backend of `INGEST_BACKENDS`) on a fresh PostgreSQL
//!    database with `PgStore` (16 connections, the service's default; its appends commit
//!    themselves and group concurrent callers into one insert), and once on sled without the
//!    flush. Its "server CPU" column is this process's CPU time. It attributes the service's
//!    cost per acknowledgement to the durable-append path versus HTTP and the engine.
//! 6. `experiment`: the same closed loop on a raw sled tree, writing the same event bytes with
//!    one `Tree::insert` (no `Batch`) and a minimal group commit around `flush_async`: the
//!    floor for a durable append on sled 0.34. (sled 0.34's `apply_batch` rolls its IO buffer
//!    before and after pinning the batch, see `PageCache::pin_log`, which costs two tiny log
//!    writes and two `sync_file_range` calls per batch. `append_event` used a batch until
//!    commit 4487d2e; it now writes plain inserts, so phase 5 should come close to this one.
//!    The engine's `commit` and `discard_events` still use batches, which phase 3 shows.)
//!    This tree uses sled's default page cache (1 GiB); the service and phase 5 use 64 MiB.
//!
//! The ratio uses the mean of the two hello-world runs. Knobs: `INGEST_SECS` (10),
//! `INGEST_WARMUP_SECS` (1), `INGEST_CONCURRENCY` (64), `INGEST_MAX_REQUESTS` (2000000),
//! `INGEST_DRAIN` (1: run phase 3), `INGEST_STORE` (1: run phases 5 and 6),
//! `INGEST_BACKENDS` (`sled,postgres`), `INGEST_TICKET_POOL` (0: every webhook names a new ticket; N: ids cycle over N tickets, so
//! events of one ticket coalesce), `INGEST_RUST_LOG`
//! (passed to the service as `RUST_LOG`; default: unset, the service logs at `info`),
//! `INGEST_PERF_RECORD` (set: `perf record` each ingest phase into
//! `target/bench-data/perf-ingest-<phase>.data`), `BENCH_NO_PERF` (set: do not count log syncs
//! with `perf stat`; for postgres phases the syscalls of the database's server processes and
//! the WAL writer, checkpointer and background writer are counted with the service's).

mod common;

use actix_web::{web, App, HttpResponse, HttpServer};
use common::*;
use std::time::Duration;

fn main() {
    if std::env::var("BENCH_ROLE").as_deref() == Ok("hello") {
        hello_server();
        return;
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(run());
}

/// The hello-world server: same route shape and body handling as the webhook, no work.
fn hello_server() {
    let port: u16 = std::env::var("BENCH_HELLO_PORT")
        .expect("BENCH_HELLO_PORT")
        .parse()
        .expect("port");
    actix_web::rt::System::new().block_on(async move {
        HttpServer::new(|| {
            App::new().route(
                "/webhooks/freshdesk/{token}",
                web::post().to(|_body: web::Bytes| async { HttpResponse::Ok().body("ok") }),
            )
        })
        .workers(2)
        .bind(("127.0.0.1", port))
        .expect("bind")
        .run()
        .await
        .expect("hello server runs");
    });
}

struct Knobs {
    secs: u64,
    warmup: u64,
    concurrency: usize,
    max_requests: u64,
    pool: u64,
}

struct Phase {
    name: String,
    load: LoadResult,
    server_cpu: f64,
    bench_cpu: f64,
    fsyncs: Option<u64>,
    /// What the PostgreSQL server spent (postgres phases).
    pg: Option<PgCost>,
    note: String,
}

/// One measured closed-loop run.
struct Measured {
    load: LoadResult,
    server_cpu: f64,
    bench_cpu: f64,
    fsyncs: Option<u64>,
    pg: Option<PgCost>,
}

async fn run() {
    print_machine("ingest", "cargo bench --bench ingest");
    let knobs = Knobs {
        secs: env_u64("INGEST_SECS", 10),
        warmup: env_u64("INGEST_WARMUP_SECS", 1),
        concurrency: env_u64("INGEST_CONCURRENCY", 64) as usize,
        max_requests: env_u64("INGEST_MAX_REQUESTS", 2_000_000),
        pool: env_u64("INGEST_TICKET_POOL", 0),
    };
    println!(
        "closed loop: {} concurrent clients (reqwest, HTTP/1.1 keep-alive), {} s warm-up + {} s measured per phase, at most {} requests",
        knobs.concurrency, knobs.warmup, knobs.secs, knobs.max_requests
    );
    match knobs.pool {
        0 => println!("every webhook names a ticket not seen before (one new ticket actor each)"),
        n => println!("webhooks cycle over {n} ticket ids"),
    }
    if let Ok(level) = std::env::var("INGEST_RUST_LOG") {
        println!("service RUST_LOG={level}");
    }
    let backends = env_backends("INGEST_BACKENDS", "sled,postgres");
    println!(
        "backends: {}",
        backends
            .iter()
            .map(|b| b.name())
            .collect::<Vec<_>>()
            .join(", ")
    );
    if backends.contains(&Backend::Postgres) {
        print_postgres_server().await;
    }
    println!();

    let mut phases = vec![hello_phase("hello-world (before)", &knobs).await];
    for &backend in &backends {
        phases.extend(
            ingest_phase(
                &format!("ingest {} (Freshdesk rate-limited)", backend.name()),
                &knobs,
                backend,
                700,
                1_000_000_000,
            )
            .await,
        );
    }
    if env_u64("INGEST_DRAIN", 1) == 1 {
        for &backend in &backends {
            phases.extend(
                ingest_phase(
                    &format!("ingest {} (engine draining)", backend.name()),
                    &knobs,
                    backend,
                    100_000_000,
                    2_000_000_000,
                )
                .await,
            );
        }
    }
    phases.push(hello_phase("hello-world (after)", &knobs).await);
    if env_u64("INGEST_STORE", 1) == 1 {
        // Where the service's CPU goes: the store path alone, in this process, no HTTP.
        for &backend in &backends {
            phases.extend(store_phase(backend, &knobs, true).await);
        }
        phases.push(
            store_phase(Backend::Sled, &knobs, false)
                .await
                .expect("sled"),
        );
        phases.push(raw_sled_phase("experiment: sled insert, no Batch, + flush", &knobs).await);
    }

    println!();
    let rows: Vec<Vec<String>> = phases
        .iter()
        .map(|p| {
            let ok = p.load.ok.max(1) as f64;
            vec![
                p.name.clone(),
                f(p.load.rate(), 0),
                f(p.load.p_ms(50.0), 2),
                f(p.load.p_ms(99.0), 2),
                f(p.load.p_ms(100.0), 1),
                p.load.ok.to_string(),
                (p.load.non_2xx() + p.load.errors).to_string(),
                f(p.server_cpu * 1e6 / ok, 0),
                p.pg.as_ref()
                    .map(|pg| f(pg.backend_cpu * 1e6 / ok, 0))
                    .unwrap_or_else(|| "-".into()),
                f(p.bench_cpu * 1e6 / ok, 0),
                p.fsyncs
                    .map(|n| f(n as f64 / p.load.elapsed.as_secs_f64(), 0))
                    .unwrap_or_else(|| "-".into()),
                p.fsyncs
                    .filter(|n| *n > 0)
                    .map(|n| f(p.load.ok as f64 / n as f64, 1))
                    .unwrap_or_else(|| "-".into()),
            ]
        })
        .collect();
    print_table(
        &[
            "phase",
            "acks/s",
            "p50 ms",
            "p99 ms",
            "max ms",
            "2xx",
            "failed",
            "server CPU us/req",
            "PostgreSQL CPU us/req",
            "loadgen CPU us/req",
            "log syncs/s",
            "acks/sync",
        ],
        &rows,
    );
    for p in &phases {
        if !p.note.is_empty() {
            println!("  {}: {}", p.name, p.note);
        }
        if let Some(pg) = &p.pg {
            let ok = p.load.ok.max(1) as f64;
            println!(
                "  {}: PostgreSQL: {} backends of the database used {:.2} s CPU ({:.0} us/ack; {} backends seen at the start had gone), {} transactions committed ({:.2} per ack; pg_stat_database.xact_commit, which counts every read outside a transaction too); server-wide: WAL writer + checkpointer + bgwriter {:.2} s CPU ({:.1} us/ack), {} WAL writes, {} WAL syncs ({:.1} acks per WAL sync)",
                p.name,
                pg.backends,
                pg.backend_cpu,
                pg.backend_cpu * 1e6 / ok,
                pg.vanished,
                pg.commits,
                pg.commits as f64 / ok,
                pg.aux_cpu,
                pg.aux_cpu * 1e6 / ok,
                pg.wal_writes,
                pg.wal_syncs,
                ok / pg.wal_syncs.max(1) as f64
            );
        }
    }
    let hello: Vec<&Phase> = phases
        .iter()
        .filter(|p| p.name.starts_with("hello"))
        .collect();
    let hello_rate = hello.iter().map(|p| p.load.rate()).sum::<f64>() / hello.len() as f64;
    println!();
    println!("hello-world mean: {:.0} req/s", hello_rate);
    for p in phases.iter().filter(|p| p.name.starts_with("ingest")) {
        let ratio = p.load.rate() / hello_rate;
        let ok = p.load.ok.max(1) as f64;
        let cpu = match &p.pg {
            Some(pg) => format!(
                "service {:.0} us + PostgreSQL {:.0} us = {:.0} us",
                p.server_cpu * 1e6 / ok,
                pg.backend_cpu * 1e6 / ok,
                (p.server_cpu + pg.backend_cpu) * 1e6 / ok
            ),
            None => format!("service {:.0} us", p.server_cpu * 1e6 / ok),
        };
        println!(
            "{}: {:.0} acks/s = {:.1}% of hello-world (target >= 50%: {}); CPU per ack: {cpu} (hello-world {:.0} us)",
            p.name,
            p.load.rate(),
            ratio * 100.0,
            if ratio >= 0.5 { "met" } else { "missed" },
            hello_cpu_per_req(&hello)
        );
    }
}

/// Mean server CPU per request of the hello-world phases, microseconds.
fn hello_cpu_per_req(hello: &[&Phase]) -> f64 {
    hello
        .iter()
        .map(|p| p.server_cpu * 1e6 / p.load.ok.max(1) as f64)
        .sum::<f64>()
        / hello.len().max(1) as f64
}

/// The PostgreSQL server's version and the settings that decide what a durable commit costs.
async fn print_postgres_server() {
    let Some(server) = testkit::pg::TestPostgres::get() else {
        return;
    };
    let (client, connection) = tokio_postgres::connect(server.url(), tokio_postgres::NoTls)
        .await
        .expect("PostgreSQL answers");
    tokio::spawn(connection);
    let version: String = client
        .query_one("SHOW server_version", &[])
        .await
        .map(|r| r.get(0))
        .unwrap_or_default();
    let settings = client
        .query(
            "SELECT name || '=' || setting || coalesce(unit, '') FROM pg_settings WHERE name IN \
             ('synchronous_commit', 'fsync', 'wal_sync_method', 'commit_delay', 'commit_siblings', \
             'shared_buffers', 'max_connections', 'full_page_writes', 'wal_level') ORDER BY name",
            &[],
        )
        .await
        .map(|rows| {
            rows.iter()
                .map(|r| r.get::<_, String>(0))
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    println!(
        "PostgreSQL {version} at {}: {}",
        server.url(),
        settings.join(", ")
    );
}

async fn hello_phase(name: &str, knobs: &Knobs) -> Phase {
    let port = free_port();
    let mut child = std::process::Command::new(std::env::current_exe().expect("bench binary"))
        .env("BENCH_ROLE", "hello")
        .env("BENCH_HELLO_PORT", port.to_string())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("hello server starts");
    let url = format!("http://127.0.0.1:{port}/webhooks/freshdesk/hello-token");
    let http = load_client(knobs.concurrency);
    let started = std::time::Instant::now();
    loop {
        if let Ok(r) = http.post(&url).body("{}").send().await {
            if r.status().is_success() {
                break;
            }
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "hello server up"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let pid = child.id();
    let m = measure(&http, knobs, pid, &url, 0, false, None, "hello").await;
    let _ = std::process::Command::new("kill")
        .args(["-INT", &pid.to_string()])
        .status();
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while std::time::Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
    report_progress(name, &m.load);
    Phase {
        name: name.to_string(),
        load: m.load,
        server_cpu: m.server_cpu,
        bench_cpu: m.bench_cpu,
        fsyncs: None,
        pg: None,
        note: String::new(),
    }
}

/// The service on `backend` under webhook load; None when the backend is not available.
async fn ingest_phase(
    name: &str,
    knobs: &Knobs,
    backend: Backend,
    rate_limit: u32,
    first_ticket: u64,
) -> Option<Phase> {
    let Some(storage) = BenchStorage::prepare(backend) else {
        println!("{name}: skipped, no PostgreSQL server (see the notice above)");
        return None;
    };
    let (sim, simc) = spawn_sim(rate_limit);
    let root = temp_dir("ingest-");
    let mut env = storage.service_env();
    if let Ok(level) = std::env::var("INGEST_RUST_LOG") {
        env.push(("RUST_LOG", level));
    }
    let mut service = Service::new(root.path(), &sim.host(), &env);
    service.spawn();
    let http = load_client(knobs.concurrency);
    service.wait_ready(&http, Duration::from_secs(60)).await;
    let admin = Admin::new(service.base());
    let org = admin.create_org("Bench").await;
    let hook = admin
        .connect(&org, &sim.host(), serde_json::json!({}))
        .await;
    println!(
        "{name}: service pid {} (for manual profiling)",
        service.pid()
    );
    let before = admin.inspect().await;
    let monitor = storage.monitor().await;
    let m = measure(
        &http,
        knobs,
        service.pid(),
        &hook,
        first_ticket,
        true,
        monitor.as_ref(),
        &format!(
            "{}-{}",
            backend.name(),
            if rate_limit > 1000 {
                "draining"
            } else {
                "rate-limited"
            }
        ),
    )
    .await;
    let after = admin.inspect().await;
    let rss = service.rss_kib();
    let threads = service.threads();
    let api_calls = simc.requests().await.map(|r| r.len()).unwrap_or(0);
    let processed = after["events_processed"].as_u64().unwrap_or(0)
        - before["events_processed"].as_u64().unwrap_or(0);
    let note = format!(
        "after the run: inbox_depth {}, live_actors {}, events_processed {processed}, Freshdesk API calls {api_calls}, RSS {} MiB, threads {threads}",
        after["inbox_depth"], after["live_actors"], mib(rss)
    );
    report_progress(name, &m.load);
    service.stop(Duration::from_secs(10));
    drop(sim);
    drop(monitor);
    drop(storage);
    Some(Phase {
        name: name.to_string(),
        load: m.load,
        server_cpu: m.server_cpu,
        bench_cpu: m.bench_cpu,
        fsyncs: m.fsyncs,
        pg: m.pg,
        note,
    })
}

/// Warm up, then measure one closed-loop run against `url`, with the server's and this
/// process's CPU time, (for the service, `count_fsyncs`) the log syncs counted during the
/// measured part, and with a `pg` monitor what PostgreSQL spent (its processes' syncs are
/// counted with the service's).
#[allow(clippy::too_many_arguments)]
async fn measure(
    http: &reqwest::Client,
    knobs: &Knobs,
    pid: u32,
    url: &str,
    first_ticket: u64,
    count_fsyncs: bool,
    pg: Option<&PgMonitor>,
    tag: &str,
) -> Measured {
    let request = {
        let url = url.to_string();
        let pool = knobs.pool;
        move |first: u64| {
            let url = url.clone();
            move |http: &reqwest::Client, n: u64| {
                let ticket = match pool {
                    0 => first + n,
                    pool => 1_000 + n % pool,
                };
                http.post(&url)
                    .header("content-type", "application/json")
                    .body(format!(
                        "{{ \"ticketId\": \"{ticket}\", \"triggered_event\": \"ticket_created\" }}"
                    ))
            }
        }
    };
    let warm = closed_loop(
        http,
        knobs.concurrency,
        Duration::from_secs(knobs.warmup),
        knobs.max_requests,
        request(first_ticket),
    )
    .await;
    let pg0 = match pg {
        Some(pg) => Some(pg.snapshot().await),
        None => None,
    };
    let mut counted = vec![pid];
    counted.extend(pg0.iter().flat_map(PgSnapshot::pids));
    let counter = count_fsyncs.then(|| {
        FsyncCounter::start(
            &counted,
            &bench_data_dir().join(format!("perf-fsync-{tag}-{pid}.txt")),
        )
    });
    let profile = (count_fsyncs && std::env::var("INGEST_PERF_RECORD").is_ok()).then(|| {
        PerfRecord::start(
            pid,
            &bench_data_dir().join(format!("perf-ingest-{tag}.data")),
        )
    });
    let cpu0 = proc_cpu_secs(pid);
    let me0 = proc_cpu_secs(std::process::id());
    let load = closed_loop(
        http,
        knobs.concurrency,
        Duration::from_secs(knobs.secs),
        knobs.max_requests,
        request(first_ticket + warm.ok + warm.non_2xx() + warm.errors + 1_000_000),
    )
    .await;
    let server_cpu = proc_cpu_secs(pid) - cpu0;
    let bench_cpu = proc_cpu_secs(std::process::id()) - me0;
    let pg = match (pg, &pg0) {
        (Some(pg), Some(start)) => Some(PgMonitor::cost(start, &pg.snapshot().await)),
        _ => None,
    };
    let fsyncs = counter.and_then(|c| c.stop());
    if let Some(p) = profile {
        p.stop();
    }
    Measured {
        load,
        server_cpu,
        bench_cpu,
        fsyncs,
        pg,
    }
}

fn report_progress(name: &str, load: &LoadResult) {
    println!(
        "{name}: {:.0} req/s, p50 {:.2} ms, p99 {:.2} ms ({} ok, {} non-2xx {:?}, {} errors)",
        load.rate(),
        load.p_ms(50.0),
        load.p_ms(99.0),
        load.ok,
        load.non_2xx(),
        load.statuses,
        load.errors
    );
}

/// The webhook route's storage calls alone, `knobs.concurrency` tasks in a closed loop, on
/// a fresh sled directory or PostgreSQL database (None: no PostgreSQL server).
async fn store_phase(backend: Backend, knobs: &Knobs, flush: bool) -> Option<Phase> {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Arc;
    use std::time::Instant;
    use ticketsync::store::postgres::{PgOptions, PgStore, ShardTokens};
    use ticketsync::store::{SledStore, Store};
    use ticketsync_actors::ports::EventKind;
    use ticketsync_actors::{OrgId, TicketId};

    let name = format!(
        "store only {}: append{}",
        backend.name(),
        if flush { " + flush" } else { ", no flush" }
    );
    let storage = BenchStorage::prepare(backend)?;
    let dir = temp_dir("ingest-store-");
    let store: Store = match storage.database() {
        None => Arc::new(SledStore::open(dir.path()).expect("store opens")),
        Some(db) => {
            let options = PgOptions {
                url: db.url().to_string(),
                // The service's default pool.
                max_connections: 16,
                statement_timeout: Duration::from_secs(5),
            };
            // Appends are not fenced: no shard lease is needed.
            let tokens = Arc::new(ShardTokens::new("bench-ingest", 64));
            Arc::new(
                PgStore::open(&options, tokens)
                    .await
                    .expect("PostgreSQL store opens"),
            )
        }
    };
    let monitor = storage.monitor().await;
    let org = OrgId::new();
    let pool = knobs.pool;
    let run = |secs: u64, first: u64| {
        let store = store.clone();
        let next = Arc::new(AtomicU64::new(0));
        let concurrency = knobs.concurrency;
        let max = knobs.max_requests;
        async move {
            let started = Instant::now();
            let deadline = started + Duration::from_secs(secs);
            let mut tasks = Vec::new();
            for _ in 0..concurrency {
                let (store, next) = (store.clone(), next.clone());
                tasks.push(tokio::spawn(async move {
                    let mut lat = Vec::new();
                    while Instant::now() < deadline {
                        let n = next.fetch_add(1, Ordering::Relaxed);
                        if n >= max {
                            break;
                        }
                        let ticket = match pool {
                            0 => first + n,
                            pool => 1_000 + n % pool,
                        };
                        let t = Instant::now();
                        store
                            .append_event(
                                org,
                                TicketId(ticket),
                                EventKind::Webhook {
                                    triggered_event: "ticket_created".into(),
                                },
                                chrono::Utc::now(),
                            )
                            .await
                            .expect("append");
                        if flush {
                            store.flush().await.expect("flush");
                        }
                        lat.push(t.elapsed().as_micros() as u64);
                    }
                    lat
                }));
            }
            collect(tasks, started).await
        }
    };
    let label = format!("store-{}-{flush}", backend.name());
    let phase = in_process_phase(&name, knobs, &label, monitor.as_ref(), run).await;
    drop(store);
    drop(monitor);
    drop(storage);
    Some(phase)
}

/// The latencies the load tasks recorded, as one result.
async fn collect(
    tasks: Vec<tokio::task::JoinHandle<Vec<u64>>>,
    started: std::time::Instant,
) -> LoadResult {
    let mut load = LoadResult::default();
    for t in tasks {
        load.latencies_us.extend(t.await.expect("task"));
    }
    load.ok = load.latencies_us.len() as u64;
    load.elapsed = started.elapsed();
    load.latencies_us.sort_unstable();
    load
}

/// Warm up, then measure `run(secs, first_ticket)` in this process with its CPU time and
/// log syncs (`label` names the perf output file), and with a `pg` monitor what PostgreSQL
/// spent (its processes' syncs counted with this process's).
async fn in_process_phase<F, Fut>(
    name: &str,
    knobs: &Knobs,
    label: &str,
    pg: Option<&PgMonitor>,
    run: F,
) -> Phase
where
    F: Fn(u64, u64) -> Fut,
    Fut: std::future::Future<Output = LoadResult>,
{
    let warm = run(knobs.warmup, 1).await;
    let me = std::process::id();
    let pg0 = match pg {
        Some(pg) => Some(pg.snapshot().await),
        None => None,
    };
    let mut counted = vec![me];
    counted.extend(pg0.iter().flat_map(PgSnapshot::pids));
    let counter = FsyncCounter::start(
        &counted,
        &bench_data_dir().join(format!("perf-fsync-{label}-{me}.txt")),
    );
    let cpu0 = proc_cpu_secs(me);
    let load = run(knobs.secs, warm.ok + 1_000_000).await;
    let cpu = proc_cpu_secs(me) - cpu0;
    let pg = match (pg, &pg0) {
        (Some(pg), Some(start)) => Some(PgMonitor::cost(start, &pg.snapshot().await)),
        _ => None,
    };
    let syncs = counter.stop();
    report_progress(name, &load);
    Phase {
        name: name.to_string(),
        load,
        server_cpu: cpu,
        bench_cpu: 0.0,
        fsyncs: syncs,
        pg,
        note: String::new(),
    }
}

/// A raw sled tree: one `insert` per event (no `Batch`), then a group-committed
/// `flush_async` (one flush at a time; a flush covers every insert registered before it).
async fn raw_sled_phase(name: &str, knobs: &Knobs) -> Phase {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Arc;
    use std::time::Instant;

    let dir = temp_dir("ingest-raw-");
    let db = sled::Config::new()
        .path(dir.path().join("db"))
        .mode(sled::Mode::HighThroughput)
        .open()
        .expect("sled opens");
    let tree = db.open_tree("engine").expect("tree");
    // A queued event as the service encodes it (about 250 bytes of JSON).
    let value = serde_json::to_vec(&serde_json::json!({
        "seq": 123456u64, "id": "4b0d1a6e-8a4e-4d53-9a49-6f8a1d2c3b4a",
        "org_id": "0f8e6a52-3c1d-4e0b-8f7a-2b9c6d5e4f3a", "ticket_id": 1000000001u64,
        "kind": {"type": "webhook", "triggered_event": "ticket_created"},
        "received_at": "2025-01-01T00:00:00.000000Z"
    }))
    .expect("json");
    let registered = Arc::new(AtomicU64::new(0));
    let flushed = Arc::new(tokio::sync::Mutex::new(0u64));
    let run = |secs: u64, first: u64| {
        let (db, tree, value) = (db.clone(), tree.clone(), value.clone());
        let (registered, flushed) = (registered.clone(), flushed.clone());
        let next = Arc::new(AtomicU64::new(0));
        let concurrency = knobs.concurrency;
        let max = knobs.max_requests;
        async move {
            let started = Instant::now();
            let deadline = started + Duration::from_secs(secs);
            let mut tasks = Vec::new();
            for _ in 0..concurrency {
                let (db, tree, value, next) =
                    (db.clone(), tree.clone(), value.clone(), next.clone());
                let (registered, flushed) = (registered.clone(), flushed.clone());
                tasks.push(tokio::spawn(async move {
                    let mut lat = Vec::new();
                    while Instant::now() < deadline {
                        let n = next.fetch_add(1, Ordering::Relaxed);
                        if n >= max {
                            break;
                        }
                        let t = Instant::now();
                        let mut key = vec![b'i'];
                        key.extend_from_slice(&(first + n).to_be_bytes());
                        tree.insert(key, value.clone()).expect("insert");
                        let mine = registered.fetch_add(1, Ordering::SeqCst) + 1;
                        let mut done = flushed.lock().await;
                        if *done < mine {
                            let target = registered.load(Ordering::SeqCst);
                            db.flush_async().await.expect("flush");
                            *done = target;
                        }
                        drop(done);
                        lat.push(t.elapsed().as_micros() as u64);
                    }
                    lat
                }));
            }
            collect(tasks, started).await
        }
    };
    in_process_phase(name, knobs, "raw", None, run).await
}
