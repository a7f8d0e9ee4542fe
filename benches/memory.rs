//! Memory: resident memory of the service with 10k and with 1M tracked tickets, and the time
//! to ready after a restart with 1M tracked tickets and 10k queued events.
//!
//! `cargo bench --bench memory`            (1M tickets; seeding takes minutes the first time)
//! `MEMORY_TICKETS=200000 cargo bench --bench memory`   (a quick run)
//! `MEMORY_BACKEND=postgres cargo bench --bench memory` (the PostgreSQL backend)
//!
//! `MEMORY_BACKEND` (`sled`) chooses the backend. With `postgres` the bench creates a fresh
//! database on the machine's server (`testkit::pg`), seeds it (as below, but with the
//! `PgStore`: first `MEMORY_SMALL` tickets, measured, then up to `MEMORY_TICKETS`, measured),
//! runs the restart phase on it and drops it at the end: nothing is kept between runs, and
//! the seeding time is part of every run. Engine writes on PostgreSQL are fenced by the shard
//! leases, so the offline steps take every lease as node `bench-offline` (the lease SQL of
//! docs/cluster.md) and release them when done; the service (node `bench-memory`) then takes
//! them at its start.
//!
//! Seeding (only when `target/bench-data/memory-<N>/seed.json` does not already say N): the
//! release binary is started once on an empty data directory, an org is created and connected
//! to the simulator through the admin API, the binary is stopped, and then, with the process
//! NOT running, the bench opens the data directory with `SledStore::open` and writes N
//! realistic ticket records with `put_records` in batches (`MEMORY_SEED_BATCH`, 5000; up to
//! `MEMORY_SEED_PARALLEL`, 2, at once). Each
//! record is built with `machine::start_session` and has 2–5 messages (customer question, AI
//! answers, follow-ups), a watermark and AI progress; every 5th is handed off, every 7th is
//! resolved. The seeded directory is reused by later runs.
//!
//! Measurements, for `MEMORY_SMALL` (10000) and `MEMORY_TICKETS` (1000000) tracked tickets,
//! each on its own seeded directory:
//! 1. start the release binary as a child process, wait for `/readyz`, reconnect the org to
//!    this run's simulator (a reconnect: no second backfill), and read `VmRSS` from
//!    `/proc/<pid>/status`;
//! 2. touch `MEMORY_TOUCH` (1000) tickets spread over the whole id range through the API
//!    (`GET …/tickets/{id}/session`) and 5 pages of the session list, read `VmRSS` again
//!    (and `VmHWM`, the peak).
//!
//! Restart: with the big directory's process stopped, `MEMORY_EVENTS` (10000) webhook events
//! are appended with `EngineStore::append_event` for tracked tickets and flushed; then the
//! binary is started and the time from spawning it to the first `/readyz` 200 is measured.
//! RSS is read at ready and 5 s later (the woken ticket actors wait for the org's Freshdesk
//! rate budget, Enterprise limit; since commit 4487d2e at most 256 passes hold a loaded record
//! at once, the others wait before loading it). The service runs with the repository's
//! `config.toml`, so sled's page cache is `storage.cache_capacity_mb` = 64 MiB (the seeding
//! and the offline steps use `SledStore::open`, also 64 MiB). Then the org is disconnected while those calls
//! wait, and the bench checks that the disconnect stops the org's work at once: it times how
//! long until no call waits for the budget and nothing is queued (at most `MEMORY_DRAIN_SECS`,
//! 20), watches 2 s more, and counts the Freshdesk calls that reached the simulator after the
//! disconnect (before the fix, the waiting calls went out with the stored key each time the
//! budget's one-minute window rolled). Finally the process is stopped and anything still
//! queued is discarded offline so the directory can be reused.

mod common;

use chrono::{DateTime, Utc};
use common::*;
use futures::StreamExt;
use serde_json::json;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use ticketsync::store::postgres::{PgOptions, PgStore, ShardTokens};
use ticketsync::store::{SledStore, Store};
use ticketsync_actors::freshdesk::TicketStatus;
use ticketsync_actors::org::Routing;
use ticketsync_actors::ports::EventKind;
use ticketsync_actors::session::{Author, HandoffReason, HandoffRecord, Message, SessionState};
use ticketsync_actors::ticket::machine::{self, ObservedTicket};
use ticketsync_actors::ticket::state::{GateDecision, GateOutcome, TicketRecord};
use ticketsync_actors::{ConversationId, OrgId, TicketId};

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(run());
}

const FAQ_ANSWER: &str = "You can reset your password from the sign-in page: choose 'Forgot password' and follow the email link.";

/// What a seeded directory holds.
#[derive(serde::Serialize, serde::Deserialize)]
struct Seed {
    tickets: u64,
    org_id: String,
    record_bytes_avg: u64,
    seeded_in_secs: f64,
}

struct Measured {
    tickets: u64,
    ready_s: f64,
    rss_ready: u64,
    rss_touched: u64,
    hwm: u64,
    touched_ok: usize,
    touch_ms_p50: f64,
    touch_ms_p99: f64,
    tracked: u64,
    storage_bytes: u64,
    dir_bytes: u64,
    threads: u64,
}

async fn run() {
    print_machine(
        "memory",
        "cargo bench --bench memory   (quick: MEMORY_TICKETS=200000 cargo bench --bench memory)",
    );
    let big = env_u64("MEMORY_TICKETS", 1_000_000);
    let small = env_u64("MEMORY_SMALL", 10_000);
    let events = env_u64("MEMORY_EVENTS", 10_000).min(big);
    let touch = env_u64("MEMORY_TOUCH", 1000);
    println!(
        "tracked tickets: {small} and {big}; {touch} tickets touched through the API; restart with {events} queued events"
    );
    println!();

    let (sim, simc) = spawn_sim(700);
    let http = reqwest::Client::new();
    let backend = env_backends("MEMORY_BACKEND", "sled")
        .first()
        .copied()
        .unwrap_or(Backend::Sled);
    println!("backend: {}", backend.name());

    let mut results = Vec::new();
    let restart = match backend {
        Backend::Sled => {
            for n in [small, big] {
                let (target, seed) = ensure_seeded(n, &sim, &http).await;
                let m = measure(&target, &seed, &sim, &http, touch).await;
                print_measured(&m);
                results.push(m);
            }
            // Restart with queued events on the big directory.
            let (target, seed) = ensure_seeded(big, &sim, &http).await;
            restart_with_events(&target, &seed, &sim, &simc, &http, events).await
        }
        Backend::Postgres => {
            let Some(target) = Target::postgres() else {
                println!("no PostgreSQL server (see the notice above): nothing measured");
                return;
            };
            let mut seed = seed_org(&target, &sim, &http).await;
            for n in [small, big] {
                seed_records(&target, &mut seed, n, big).await;
                let m = measure(&target, &seed, &sim, &http, touch).await;
                print_measured(&m);
                results.push(m);
            }
            restart_with_events(&target, &seed, &sim, &simc, &http, events).await
        }
    };
    drop(simc);

    println!();
    let rows: Vec<Vec<String>> = results
        .iter()
        .map(|m| {
            vec![
                m.tickets.to_string(),
                m.tracked.to_string(),
                f(m.ready_s, 2),
                mib(m.rss_ready),
                mib(m.rss_touched),
                mib(m.hwm),
                format!("{}/{}", m.touched_ok, touch),
                format!("{:.1}/{:.1}", m.touch_ms_p50, m.touch_ms_p99),
                m.threads.to_string(),
                format!("{:.0}", m.storage_bytes as f64 / 1048576.0),
                format!("{:.0}", m.dir_bytes as f64 / 1048576.0),
            ]
        })
        .collect();
    print_table(
        &[
            "tickets seeded",
            "tracked (inspect)",
            "ready s",
            "RSS at ready MiB",
            "RSS after touch MiB",
            "peak (VmHWM) MiB",
            "sessions read",
            "GET p50/p99 ms",
            "threads",
            "store size MiB",
            "dir MiB",
        ],
        &rows,
    );
    let (a, b) = (&results[0], &results[1]);
    let ratio = b.rss_touched as f64 / a.rss_touched.max(1) as f64;
    println!();
    println!(
        "RSS after touch: {} MiB at {} tickets vs {} MiB at {} tickets = {:.2}x (target <= 1.5x: {})",
        mib(b.rss_touched),
        b.tickets,
        mib(a.rss_touched),
        a.tickets,
        ratio,
        if ratio <= 1.5 { "met" } else { "missed" }
    );
    println!(
        "RSS at ready (before any session is read): {} MiB vs {} MiB = {:.2}x",
        mib(b.rss_ready),
        mib(a.rss_ready),
        b.rss_ready as f64 / a.rss_ready.max(1) as f64
    );
    println!();
    println!(
        "restart with {} tracked tickets and {} queued events:",
        big, events
    );
    for line in &restart.0 {
        println!("  {line}");
    }
    println!(
        "time to ready: {:.2} s (target <= 2 s: {})",
        restart.1,
        if restart.1 <= 2.0 { "met" } else { "missed" }
    );
    drop(sim);
}

fn print_measured(m: &Measured) {
    println!(
        "{} tickets: ready in {:.2} s, RSS {} MiB at ready, {} MiB after touching {} sessions",
        m.tickets,
        m.ready_s,
        mib(m.rss_ready),
        mib(m.rss_touched),
        m.touched_ok
    );
}

/// Where the service under measurement keeps its state: its root directory (config, data
/// directory, logs) and, with PostgreSQL, the run's database.
struct Target {
    root: PathBuf,
    /// `TICKETSYNC__…` overrides of every start.
    env: Vec<(&'static str, String)>,
    /// The run's database and the temporary root (postgres only; dropped at the end).
    postgres: Option<(BenchStorage, tempfile::TempDir)>,
}

/// The node id of the service and of the offline steps (PostgreSQL).
const NODE_ID: &str = "bench-memory";

impl Target {
    /// A seeded sled directory (kept between runs).
    fn sled(root: PathBuf) -> Target {
        Target {
            root,
            env: Vec::new(),
            postgres: None,
        }
    }

    /// A fresh PostgreSQL database and a temporary root; None without a server.
    fn postgres() -> Option<Target> {
        let storage = BenchStorage::prepare(Backend::Postgres)?;
        let root = temp_dir("memory-pg-");
        let mut env = storage.service_env();
        env.push(("TICKETSYNC__CLUSTER__NODE_ID", NODE_ID.to_string()));
        Some(Target {
            root: root.path().to_path_buf(),
            env,
            postgres: Some((storage, root)),
        })
    }

    /// The service on this target, not started.
    fn service(&self, sim_host: &str) -> Service {
        Service::new(&self.root, sim_host, &self.env)
    }

    /// The store, opened by this process while the service is stopped. On PostgreSQL it
    /// takes every shard lease as node `OFFLINE_NODE` (engine writes are fenced); give it
    /// back with [`close_store`](Self::close_store).
    async fn open_store(&self) -> Store {
        match &self.postgres {
            None => {
                let data = self.root.join("data");
                let store = tokio::task::spawn_blocking(move || {
                    SledStore::open(&data).expect("store opens")
                })
                .await
                .expect("open");
                Arc::new(store)
            }
            Some((storage, _)) => {
                let url = storage.database().expect("a database").url().to_string();
                let options = PgOptions {
                    url: url.clone(),
                    max_connections: 4,
                    statement_timeout: Duration::from_secs(600),
                };
                let shards = env_u64("MEMORY_SHARDS", 64) as u32;
                let tokens = Arc::new(ShardTokens::new(OFFLINE_NODE, shards));
                let store = PgStore::open(&options, tokens.clone())
                    .await
                    .expect("PostgreSQL store opens");
                for (shard, token) in take_every_lease(&url, shards).await {
                    tokens.grant(shard, token);
                }
                Arc::new(store)
            }
        }
    }

    /// Close a store from [`open_store`](Self::open_store); on PostgreSQL release its leases,
    /// so the service takes them at once when it starts.
    async fn close_store(&self, store: Store) {
        drop(store);
        if let Some((storage, _)) = &self.postgres {
            let client = connect(storage.database().expect("a database").url()).await;
            client
                .execute(
                    "UPDATE shard_leases SET owner = NULL, expires_at = now() WHERE owner = $1",
                    &[&OFFLINE_NODE],
                )
                .await
                .expect("leases released");
        }
    }

    /// What the store occupies: the data directory, plus the database with PostgreSQL
    /// (`inspect`'s `storage_bytes`).
    fn data_dir(&self) -> PathBuf {
        self.root.join("data")
    }
}

/// The node id of the offline steps on PostgreSQL.
const OFFLINE_NODE: &str = "bench-offline";

async fn connect(url: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .expect("PostgreSQL answers");
    tokio::spawn(connection);
    client
}

/// Take every shard lease for `OFFLINE_NODE` the way a node takes a free or expired one
/// (docs/cluster.md), for an hour; waits (at most 2 min) for leases a stopped service may
/// still hold until they expire. The (shard, fencing token) pairs.
async fn take_every_lease(url: &str, shards: u32) -> Vec<(u32, i64)> {
    let client = connect(url).await;
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut held = std::collections::BTreeMap::new();
    loop {
        let rows = client
            .query(
                "UPDATE shard_leases SET owner = $1, token = token + 1, \
                     expires_at = now() + interval '1 hour' \
                 WHERE owner IS NULL OR expires_at <= now() OR owner = $1 \
                 RETURNING shard, token",
                &[&OFFLINE_NODE],
            )
            .await
            .expect("leases taken");
        for row in rows {
            held.insert(row.get::<_, i32>(0) as u32, row.get::<_, i64>(1));
        }
        if held.len() as u32 >= shards {
            return held.into_iter().collect();
        }
        assert!(
            Instant::now() < deadline,
            "only {} of {shards} shard leases could be taken",
            held.len()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

fn seed_root(n: u64) -> PathBuf {
    bench_data_dir().join(format!("memory-{n}"))
}

fn dir_size(path: &Path) -> u64 {
    let mut total = 0;
    if let Ok(entries) = std::fs::read_dir(path) {
        for e in entries.flatten() {
            let p = e.path();
            match e.metadata() {
                Ok(m) if m.is_dir() => total += dir_size(&p),
                Ok(m) => total += m.len(),
                Err(_) => {}
            }
        }
    }
    total
}

/// The seeded sled directory for `n` tickets, seeding it when missing or for another count.
async fn ensure_seeded(
    n: u64,
    sim: &freshdesk_sim::SimHandle,
    http: &reqwest::Client,
) -> (Target, Seed) {
    let target = Target::sled(seed_root(n));
    if let Some(seed) = std::fs::read(target.root.join("seed.json"))
        .ok()
        .and_then(|b| serde_json::from_slice::<Seed>(&b).ok())
        .filter(|s| s.tickets == n)
    {
        let dropped = discard_leftovers(&target).await;
        if dropped > 0 {
            println!("(discarded {dropped} events left queued by an earlier run)");
        }
        return (target, seed);
    }
    let _ = std::fs::remove_dir_all(&target.root);
    println!("seeding {n} tickets into {} ...", target.root.display());
    let mut seed = seed_org(&target, sim, http).await;
    seed_records(&target, &mut seed, n, n).await;
    std::fs::write(
        target.root.join("seed.json"),
        serde_json::to_vec_pretty(&seed).unwrap(),
    )
    .expect("seed.json written");
    (target, seed)
}

/// Create an org and connect it through the real service (then stopped): the seeded
/// tickets' org, with no ticket yet.
async fn seed_org(target: &Target, sim: &freshdesk_sim::SimHandle, http: &reqwest::Client) -> Seed {
    let started = Instant::now();
    let mut service = target.service(&sim.host());
    service.spawn();
    service.wait_ready(http, Duration::from_secs(60)).await;
    let admin = Admin::new(service.base());
    let org = admin.create_org("Memory bench").await;
    admin.connect(&org, &sim.host(), json!({})).await;
    // Let the first-connect backfill (an empty listing) finish.
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        let (_, body) = admin
            .call(
                reqwest::Method::GET,
                &format!("/api/v1/orgs/{org}/freshdesk"),
                None,
            )
            .await;
        if body["backfill"]["state"] == "done" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    service.stop(Duration::from_secs(20));
    Seed {
        tickets: 0,
        org_id: org,
        record_bytes_avg: 0,
        seeded_in_secs: started.elapsed().as_secs_f64(),
    }
}

/// With the service stopped, write the records of tickets `seed.tickets + 1 ..= n` with
/// `put_records` in batches, and check the store tracks `n`. Ticket `i` of `last` was
/// created `(last - i) * 20 s + 10 min` ago.
async fn seed_records(target: &Target, seed: &mut Seed, n: u64, last: u64) {
    let started = Instant::now();
    let store = target.open_store().await;
    let org_id: OrgId = seed.org_id.parse().expect("org id");
    let batch = env_u64("MEMORY_SEED_BATCH", 5000);
    // Batches written at once (PostgreSQL spreads them over its connections; sled's calls
    // complete synchronously, one after the other).
    let parallel = env_u64("MEMORY_SEED_PARALLEL", 2).max(1) as usize;
    let now = Utc::now();
    let first = seed.tickets + 1;
    let batches: Vec<(u64, u64)> = (first..=n)
        .step_by(batch.max(1) as usize)
        .map(|i| (i, (i + batch).min(n + 1)))
        .collect();
    let written = std::sync::atomic::AtomicU64::new(0);
    let bytes: Vec<u64> = futures::stream::iter(batches)
        .map(|(i, end)| {
            let (store, written) = (store.clone(), &written);
            async move {
                let records: Vec<TicketRecord> =
                    (i..end).map(|t| record(org_id, t, last, now)).collect();
                let bytes = records
                    .iter()
                    .map(|r| serde_json::to_vec(r).map(|v| v.len() as u64).unwrap_or(0))
                    .sum::<u64>();
                store.put_records(&records).await.expect("records written");
                let done =
                    written.fetch_add(end - i, std::sync::atomic::Ordering::Relaxed) + (end - i);
                if done / 100_000 != (done - (end - i)) / 100_000 || first + done > n {
                    println!(
                        "  {} / {n} records ({:.0} records/s)",
                        first - 1 + done,
                        done as f64 / started.elapsed().as_secs_f64()
                    );
                }
                bytes
            }
        })
        .buffer_unordered(parallel)
        .collect()
        .await;
    let bytes = seed.record_bytes_avg * seed.tickets + bytes.iter().sum::<u64>();
    store.flush().await.expect("flushed");
    let tracked = store.tracked_tickets().await.expect("tracked");
    target.close_store(store).await;
    assert_eq!(tracked, n, "every seeded record is tracked");
    seed.seeded_in_secs += started.elapsed().as_secs_f64();
    seed.record_bytes_avg = bytes / n.max(1);
    seed.tickets = n;
    println!(
        "seeded {n} tickets in {:.0} s in all (average record {} bytes of JSON)",
        seed.seeded_in_secs, seed.record_bytes_avg
    );
}

/// With the process stopped, drop every event still queued in a seeded store (an
/// interrupted run may leave some), so each run starts from the same state. Returns how
/// many were dropped.
async fn discard_leftovers(target: &Target) -> usize {
    let store = target.open_store().await;
    let mut dropped = 0;
    for (org, ticket) in store.tickets_with_work().await.expect("scan") {
        let events = store.queued_events(org, ticket).await.expect("events");
        dropped += events.len();
        store.discard_events(&events).await.expect("discard");
    }
    store.flush().await.expect("flushed");
    target.close_store(store).await;
    dropped
}

/// A realistic stored ticket: 2–5 messages, AI progress, watermark; some handed off or
/// resolved.
fn record(org: OrgId, i: u64, n: u64, now: DateTime<Utc>) -> TicketRecord {
    let created = now - chrono::Duration::seconds(((n - i) * 20 + 600) as i64);
    let resolved = i.is_multiple_of(7);
    let ticket = ObservedTicket {
        subject: format!("Cannot sign in to my account (order #{})", 100_000 + i),
        description_text: format!(
            "Hello, how do I reset my password? I tried the link from the email for order #{} but it says it expired. Thanks, customer {}",
            100_000 + i,
            i % 997
        ),
        status: if resolved {
            TicketStatus::Resolved
        } else {
            TicketStatus::Open
        },
        status_name: if resolved { "Resolved" } else { "Open" }.to_string(),
        source: [1, 2, 3, 7][(i % 4) as usize],
        tags: Vec::new(),
        responder_id: None,
        group_id: None,
        created_at: created,
        updated_at: created,
    };
    let mut r = TicketRecord::new(
        org,
        TicketId(i),
        GateDecision {
            decision: GateOutcome::Tracked,
            reason: "auto_handle_all is on".into(),
            at: created,
        },
    );
    machine::start_session(&mut r, &ticket, false, created);
    let handed_off = i.is_multiple_of(5);
    let extra = 1 + (i % 4);
    let mut at = created;
    let mut answers = 0;
    let mut last_conv = None;
    let session = r.session.as_mut().expect("session");
    for k in 0..extra {
        at += chrono::Duration::seconds(40);
        let id = ConversationId(i * 10 + k);
        last_conv = Some(id);
        let ai_turn = k % 2 == 0;
        let last = k + 1 == extra;
        let (author, private, body) = if ai_turn && last && handed_off {
            (
                Author::Ai,
                true,
                "Handed off to a human agent by the AI.\nReason: missing_knowledge\nSummary: 3 messages in the thread. The customer wrote: \"how do I reset my password?\"".to_string(),
            )
        } else if ai_turn {
            answers += 1;
            (Author::Ai, false, FAQ_ANSWER.to_string())
        } else {
            (
                Author::Contact,
                false,
                format!(
                    "Thanks. And how do I reset the password on the mobile app, version {}?",
                    i % 13
                ),
            )
        };
        session.messages.push(Message {
            conversation_id: Some(id),
            author,
            private,
            note: private,
            body_text: body,
            created_at: at,
        });
    }
    session.updated_at = at;
    if handed_off {
        session.state = SessionState::HandedOff;
        session.handoff = Some(HandoffRecord {
            at,
            reason: HandoffReason::MissingKnowledge,
            routing: Routing::Unassign,
            target: None,
            fallback_used: false,
            detail: None,
        });
    }
    let messages = session.messages.len();
    r.ai.answers = answers;
    r.ai.considered = messages;
    r.ai.tagged = true;
    r.watermark.last_conversation_id = last_conv;
    r.watermark.ticket_updated_at = Some(at);
    r.watermark.read_at = Some(at + chrono::Duration::seconds(1));
    r.watermark.conversations_seen = extra as u32;
    r.watermark.tags = vec!["opencx".into(), "opencx_autopilot".into()];
    r
}

/// Start the service on a seeded target, reconnect the org to this run's simulator.
async fn start(
    target: &Target,
    seed: &Seed,
    sim: &freshdesk_sim::SimHandle,
    http: &reqwest::Client,
) -> (Service, Admin, f64) {
    let mut service = target.service(&sim.host());
    service.spawn();
    let ready = service
        .wait_ready(http, Duration::from_secs(300))
        .await
        .as_secs_f64();
    let admin = Admin::new(service.base());
    admin.connect(&seed.org_id, &sim.host(), json!({})).await;
    (service, admin, ready)
}

async fn measure(
    target: &Target,
    seed: &Seed,
    sim: &freshdesk_sim::SimHandle,
    http: &reqwest::Client,
    touch: u64,
) -> Measured {
    let (mut service, admin, ready_s) = start(target, seed, sim, http).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let rss_ready = service.rss_kib();
    let n = seed.tickets;
    // Tickets spread over the id range (a multiplicative stride, so not sequential pages).
    let ids: Vec<u64> = (0..touch.min(n))
        .map(|k| (k * 2_654_435_761 % n) + 1)
        .collect();
    let mut latencies = Vec::new();
    let mut ok = 0;
    for chunk in ids.chunks(8) {
        let futs = chunk.iter().map(|id| {
            let admin = admin.clone();
            let org = seed.org_id.clone();
            let id = *id;
            async move {
                let t = Instant::now();
                let (status, _) = admin
                    .call(
                        reqwest::Method::GET,
                        &format!("/api/v1/orgs/{org}/tickets/{id}/session"),
                        None,
                    )
                    .await;
                (status.as_u16(), t.elapsed().as_micros() as u64)
            }
        });
        for (status, us) in futures::future::join_all(futs).await {
            ok += usize::from(status == 200);
            latencies.push(us);
        }
    }
    let mut cursor: Option<String> = None;
    for _ in 0..5 {
        let path = match &cursor {
            Some(c) => format!("/api/v1/orgs/{}/sessions?limit=200&cursor={c}", seed.org_id),
            None => format!("/api/v1/orgs/{}/sessions?limit=200", seed.org_id),
        };
        let (_, body) = admin.call(reqwest::Method::GET, &path, None).await;
        cursor = body["next_cursor"].as_str().map(str::to_string);
        if cursor.is_none() {
            break;
        }
    }
    latencies.sort_unstable();
    let rss_touched = service.rss_kib();
    let hwm = service.hwm_kib();
    let threads = service.threads();
    let inspect = admin.inspect().await;
    service.stop(Duration::from_secs(20));
    Measured {
        tickets: n,
        ready_s,
        rss_ready,
        rss_touched,
        hwm,
        touched_ok: ok,
        touch_ms_p50: percentile(&latencies, 50.0) as f64 / 1000.0,
        touch_ms_p99: percentile(&latencies, 99.0) as f64 / 1000.0,
        tracked: inspect["tracked_tickets"].as_u64().unwrap_or(0),
        storage_bytes: inspect["storage_bytes"].as_u64().unwrap_or(0),
        dir_bytes: dir_size(&target.data_dir()),
        threads,
    }
}

/// Append `events` queued webhook events with the process stopped, then time the restart.
async fn restart_with_events(
    target: &Target,
    seed: &Seed,
    sim: &freshdesk_sim::SimHandle,
    simc: &freshdesk_sim::SimClient,
    http: &reqwest::Client,
    events: u64,
) -> (Vec<String>, f64) {
    let mut lines = Vec::new();
    let org: OrgId = seed.org_id.parse().expect("org id");
    let n = seed.tickets;
    let t0 = Instant::now();
    let store = target.open_store().await;
    // 64 appends at a time, as concurrent webhooks would arrive (PostgreSQL groups them).
    let appended: Vec<_> = futures::stream::iter(0..events)
        .map(|k| {
            let store = store.clone();
            async move {
                // Tracked tickets spread over the id range.
                let ticket = TicketId((k * 7919 % n) + 1);
                store
                    .append_event(
                        org,
                        ticket,
                        EventKind::Webhook {
                            triggered_event: "{reply_sent:sent}".into(),
                        },
                        Utc::now(),
                    )
                    .await
            }
        })
        .buffer_unordered(64)
        .collect()
        .await;
    for a in appended {
        a.expect("event appended");
    }
    store.flush().await.expect("flushed");
    target.close_store(store).await;
    lines.push(format!(
        "appended and flushed {events} events with the process stopped in {:.2} s",
        t0.elapsed().as_secs_f64()
    ));

    let seq_spawn = last_request_seq(simc).await;
    let spawned_at = Utc::now();
    let mut service = target.service(&sim.host());
    service.spawn();
    let ready = service
        .wait_ready(http, Duration::from_secs(300))
        .await
        .as_secs_f64();
    let rss_ready = service.rss_kib();
    let admin = Admin::new(service.base());
    // The stored connection names the simulator of the run that seeded or last reconnected;
    // point it at this run's (a reconnect: same webhook URL, no backfill).
    admin.connect(&seed.org_id, &sim.host(), json!({})).await;
    let cpu0 = service.cpu_secs();
    tokio::time::sleep(Duration::from_secs(5)).await;
    let cpu = service.cpu_secs() - cpu0;
    let inspect = admin.inspect().await;
    // When the queued work resumed: the first ticket read after the spawn (the simulator's
    // clock, this process's).
    let first_read = simc
        .requests_filtered(&freshdesk_sim::RequestFilter {
            method: Some("GET".into()),
            path_prefix: Some("/api/v2/tickets/".into()),
            since_seq: Some(seq_spawn),
        })
        .await
        .unwrap_or_default()
        .first()
        .map(|r| (r.at - spawned_at).num_milliseconds() as f64 / 1000.0);
    lines.push(match first_read {
        Some(s) => format!("spawn → first Freshdesk ticket read (queued work resumed): {s:.2} s"),
        None => "no Freshdesk ticket read within 5 s of ready".to_string(),
    });
    lines.push(format!(
        "spawn → /readyz 200: {ready:.2} s; RSS {} MiB at ready, {} MiB 5 s later (peak {} MiB); CPU over those 5 s {:.2} s",
        mib(rss_ready),
        mib(service.rss_kib()),
        mib(service.hwm_kib()),
        cpu
    ));
    lines.push(format!(
        "5 s after ready: live_actors {}, inbox_depth {}, events_processed {}, rate budget {}",
        inspect["live_actors"],
        inspect["inbox_depth"],
        inspect["events_processed"],
        inspect["orgs"][0]["rate_budget"]
    ));
    // A disconnect must stop the org's work at once: calls waiting for the rate budget are
    // cancelled (they used to go out with the stored key when the budget's window rolled)
    // and the backlog is dropped. Watch until nothing waits and nothing is queued (then no
    // call can follow), for at most `MEMORY_DRAIN_SECS`.
    let drain = Duration::from_secs(env_u64("MEMORY_DRAIN_SECS", 20));
    let seq0 = simc
        .requests()
        .await
        .map(|r| r.last().map(|r| r.seq).unwrap_or(0))
        .unwrap_or(0);
    let before = admin.inspect().await;
    let depth0 = before["inbox_depth"].clone();
    let waiting0 = before["orgs"][0]["rate_budget"]["waiting"].clone();
    let disconnected_at = Utc::now();
    let t = Instant::now();
    let (status, _) = admin
        .call(
            reqwest::Method::DELETE,
            &format!("/api/v1/orgs/{}/freshdesk", seed.org_id),
            None,
        )
        .await;
    let answered = t.elapsed();
    let mut no_waiters: Option<Duration> = None;
    let mut drained: Option<Duration> = None;
    while t.elapsed() < drain {
        let now = admin.inspect().await;
        let waiting = now["orgs"][0]["rate_budget"]["waiting"]
            .as_u64()
            .unwrap_or(0);
        if waiting == 0 && no_waiters.is_none() {
            no_waiters = Some(t.elapsed());
        }
        if now["inbox_depth"] == 0 && drained.is_none() {
            drained = Some(t.elapsed());
        }
        if no_waiters.is_some() && drained.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // A short tail: anything still on its way would show up here.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let watched = t.elapsed();
    let tail = admin.inspect().await;
    let after: Vec<freshdesk_sim::RecordedRequest> = simc
        .requests_filtered(&freshdesk_sim::RequestFilter {
            since_seq: Some(seq0),
            ..Default::default()
        })
        .await
        .unwrap_or_default();
    // Calls that reached the simulator after the DELETE was sent; those within 100 ms were
    // already on the wire (sent before the disconnect took effect).
    let ms_after = |r: &freshdesk_sim::RecordedRequest| {
        (r.at - disconnected_at).num_microseconds().unwrap_or(0) as f64 / 1000.0
    };
    let late = after.iter().filter(|r| ms_after(r) > 100.0).count();
    let last_call = after.iter().map(ms_after).fold(f64::NAN, f64::max);
    let secs = |d: Option<Duration>| {
        d.map(|d| format!("{:.2} s", d.as_secs_f64()))
            .unwrap_or_else(|| format!("not within {:.0} s", drain.as_secs_f64()))
    };
    lines.push(format!(
        "disconnect (DELETE answered {status} in {:.0} ms) with inbox_depth {depth0} and {waiting0} calls waiting for the budget:",
        answered.as_secs_f64() * 1e3
    ));
    lines.push(format!(
        "  budget waiters 0 after {}; inbox_depth 0 after {}; watched {:.1} s: inbox_depth {}, live_actors {}, waiting {}",
        secs(no_waiters),
        secs(drained),
        watched.as_secs_f64(),
        tail["inbox_depth"],
        tail["live_actors"],
        tail["orgs"][0]["rate_budget"]["waiting"]
    ));
    lines.push(format!(
        "  Freshdesk API calls after the disconnect: {} ({} more than 100 ms after it{}); RSS {} MiB",
        after.len(),
        late,
        if after.is_empty() {
            String::new()
        } else {
            format!(", the last {last_call:.0} ms after it")
        },
        mib(service.rss_kib())
    ));
    service.stop(Duration::from_secs(20));
    let dropped = discard_leftovers(target).await;
    lines.push(format!(
        "{dropped} events still queued at shutdown were discarded offline so the directory can be reused"
    ));
    (lines, ready)
}
