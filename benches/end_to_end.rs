//! End to end: new tickets answered per second and webhook-to-reply latency, against the
//! Freshdesk simulator at 0 ms and at 100 ms API latency, on sled or on PostgreSQL with one
//! or several nodes; and the failover time of a cluster.
//!
//! `cargo bench --bench end_to_end`
//! `E2E_BACKENDS=sled,postgres E2E_NODES=1,3 E2E_ORGS=6 cargo bench --bench end_to_end`
//!
//! The release `ticketsync` binary runs as child processes (the nodes); the simulators run in
//! this process, one per org (a simulator is one Freshdesk account with one webhook URL). Each
//! org is connected with default settings (autopilot) and its simulator's automation rules
//! point at a node's webhook URL, org `i` at node `i % nodes`, so webhooks arrive at every
//! node (rule 2 fires on API changes, as in Freshdesk). A customer opens tickets whose
//! question the builtin FAQ answers, so each gets one public AI reply (plus the `opencx` tag
//! update).
//!
//! Setups: every backend of `E2E_BACKENDS` (`sled`) with every node count of `E2E_NODES` (`1`);
//! more than one node needs `postgres` (all nodes on one fresh database, created for the setup
//! and dropped after it; each node has its own `[cluster] node_id` and data directory). A
//! setup with several nodes waits until the shards are spread evenly (`/api/v1/inspect`'s
//! `shards` on each node) before it measures. On a
//! 2-core machine several nodes cannot be faster than one: the figure shows what the cluster
//! costs, so CPU per answered ticket is reported per node as well as in all.
//!
//! For each latency two scenarios run:
//! - `burst`: `E2E_TICKETS` (200) tickets created as fast as `E2E_CREATORS` (8) concurrent
//!   customers can (ticket `i` in org `i % orgs`), then we wait until every one has its AI
//!   reply. Throughput = tickets / (last reply − first rule firing). Latencies include
//!   queueing behind the burst.
//! - `serial`: `E2E_SERIAL` (20) tickets one at a time (the next is created once the previous
//!   is answered): the latency of an unloaded pipeline.
//!
//! How latency is measured: both ends are timestamps taken by the simulators (all in this
//! process, one clock), so no polling delay. Start = the delivery record's `at` (the moment
//! rule 1 fired, inside ticket creation). End = the arrival time (`at`) of the
//! `POST /tickets/{id}/reply` in the simulator's request log, plus the injected latency (the
//! simulator sleeps that long before it creates the conversation, so that is when the reply
//! becomes visible in Freshdesk). The breakdown columns use the same log: `ack` = rule fired →
//! the 202 reached the simulator (delivery `delivered_at`), `→read` = 202 → the engine's first
//! `GET /tickets/{id}`, `read→reply` = that read → reply visible. CPU: each node's from
//! `/proc/<pid>/stat`; with postgres, also the database's server processes (`PgMonitor`).
//!
//! Failover (`E2E_FAILOVER`, 1; setups with several nodes): an org owned by a node other than
//! node 0 gets its webhook pointed at node 0, its owner is killed with SIGKILL, and at once a
//! ticket is opened in that org; the figure is the time from the kill to the AI reply on that
//! ticket (expected: the lease TTL plus the settle window, see docs/cluster.md).
//!
//! The simulators' account limit is raised to `E2E_RATE_LIMIT` (1000000 credits/min) so the
//! figures show the service, not Freshdesk's per-minute budget: at a real Enterprise limit
//! (700/min, 560 usable) throughput is capped at 560 / (credits per answered ticket, see the
//! credits bench) per minute per org. Knobs: `E2E_LATENCIES` ("0,100"), `E2E_TIMEOUT_SECS`
//! (180), `E2E_ORGS` (1), `E2E_SHARDS` (64), `E2E_LEASE_TTL_SECS` (the service's default when
//! unset), `E2E_FAILOVER` (1).

mod common;

use chrono::{DateTime, Utc};
use common::*;
use freshdesk_sim::{
    DeliveryRecord, FaultsConfig, NewTicket, RecordedRequest, RequestFilter, SimClient, SimHandle,
};
use serde_json::{json, Value};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(run());
}

/// A ticket of one org: (org index, simulator ticket id).
type Key = (usize, u64);

struct Scenario {
    setup: String,
    name: String,
    latency_ms: u64,
    tickets: usize,
    answered: usize,
    /// From the first rule firing to the last reply, seconds.
    span_s: f64,
    e2e_ms: Vec<f64>,
    ack_ms: Vec<f64>,
    to_read_ms: Vec<f64>,
    read_to_reply_ms: Vec<f64>,
    api_calls: usize,
    /// CPU seconds of each node over the scenario.
    node_cpu_s: Vec<f64>,
    /// CPU seconds of the database's PostgreSQL backends (postgres only).
    pg_cpu_s: Option<f64>,
}

impl Scenario {
    fn per_ticket_ms(&self, secs: f64) -> f64 {
        secs * 1e3 / self.answered.max(1) as f64
    }
}

/// Everything one setup runs: the storage, one simulator per org, the nodes.
struct Deployment {
    label: String,
    monitor: Option<PgMonitor>,
    sims: Vec<(SimHandle, SimClient)>,
    nodes: Vec<Service>,
    /// The admin API of each node.
    admins: Vec<Admin>,
    orgs: Vec<String>,
    /// Each org's webhook path (`/webhooks/freshdesk/<token>`, the same on every node).
    hook_paths: Vec<String>,
    _roots: Vec<tempfile::TempDir>,
    /// Dropped last: the PostgreSQL database goes once the nodes are gone.
    _storage: BenchStorage,
}

async fn run() {
    print_machine(
        "end_to_end",
        "cargo bench --bench end_to_end   (backends and nodes: E2E_BACKENDS=sled,postgres E2E_NODES=1,3 E2E_ORGS=6)",
    );
    let tickets = env_u64("E2E_TICKETS", 200) as usize;
    let creators = env_u64("E2E_CREATORS", 8) as usize;
    let serial = env_u64("E2E_SERIAL", 20) as usize;
    let latencies = env_list("E2E_LATENCIES", &[0, 100]);
    let rate_limit = env_u64("E2E_RATE_LIMIT", 1_000_000) as u32;
    let timeout = Duration::from_secs(env_u64("E2E_TIMEOUT_SECS", 180));
    let backends = env_backends("E2E_BACKENDS", "sled");
    let node_counts = env_list("E2E_NODES", &[1]);
    let orgs = env_u64("E2E_ORGS", 1).max(1) as usize;
    let failover = env_u64("E2E_FAILOVER", 1) == 1;
    println!(
        "{tickets} tickets per burst ({creators} concurrent creators), {serial} serial tickets, latencies {latencies:?} ms, {orgs} org(s) (one simulator each, limit {rate_limit} credits/min)"
    );
    println!();

    let mut results = Vec::new();
    let mut failovers = Vec::new();
    for &backend in &backends {
        for &nodes in &node_counts {
            let nodes = nodes.max(1) as usize;
            let label = format!("{} x{nodes}", backend.name());
            if nodes > 1 && backend != Backend::Postgres {
                println!("{label}: skipped (several nodes need the postgres backend)");
                continue;
            }
            let Some(mut d) = deploy(&label, backend, nodes, orgs, rate_limit).await else {
                println!("{label}: skipped, no PostgreSQL server (see the notice above)");
                continue;
            };
            for &latency in &latencies {
                for (_, simc) in &d.sims {
                    simc.set_faults(&FaultsConfig {
                        latency_ms: Some(latency),
                        ..FaultsConfig::default()
                    })
                    .await
                    .expect("faults set");
                }
                // Each scenario is analysed once the engine settled, so the API calls and
                // CPU time per ticket include the echo re-reads that follow the replies.
                let run = burst(&d, latency, tickets, creators, timeout).await;
                let r = finish(&d, "burst", latency, run, timeout).await;
                print_progress(&r);
                results.push(r);
                let run = serial_run(&d, latency, serial, timeout).await;
                let r = finish(&d, "serial", latency, run, timeout).await;
                print_progress(&r);
                results.push(r);
            }
            for (_, simc) in &d.sims {
                let _ = simc.clear_faults().await;
            }
            if failover && nodes > 1 {
                failovers.push(fail_over(&mut d, timeout).await);
            }
            for node in &mut d.nodes {
                node.stop(Duration::from_secs(10));
            }
        }
    }

    println!();
    let rows: Vec<Vec<String>> = results
        .iter()
        .map(|r| {
            let p = |v: &Vec<f64>, q: f64| f(percentile_f64(v, q), 0);
            let total: f64 = r.node_cpu_s.iter().sum();
            vec![
                r.setup.clone(),
                r.name.clone(),
                format!("{} ms", r.latency_ms),
                format!("{}/{}", r.answered, r.tickets),
                f(r.answered as f64 / r.span_s.max(1e-9), 1),
                p(&r.e2e_ms, 50.0),
                p(&r.e2e_ms, 90.0),
                p(&r.e2e_ms, 99.0),
                p(&r.e2e_ms, 100.0),
                p(&r.ack_ms, 50.0),
                p(&r.to_read_ms, 50.0),
                p(&r.read_to_reply_ms, 50.0),
                f(r.api_calls as f64 / r.tickets.max(1) as f64, 1),
                f(r.per_ticket_ms(total), 2),
                r.node_cpu_s
                    .iter()
                    .map(|c| f(r.per_ticket_ms(*c), 2))
                    .collect::<Vec<_>>()
                    .join("/"),
                r.pg_cpu_s
                    .map(|c| f(r.per_ticket_ms(c), 2))
                    .unwrap_or_else(|| "-".into()),
            ]
        })
        .collect();
    print_table(
        &[
            "setup",
            "scenario",
            "API latency",
            "answered",
            "tickets/s",
            "p50 ms",
            "p90 ms",
            "p99 ms",
            "max ms",
            "p50 ack",
            "p50 →read",
            "p50 read→reply",
            "API calls/ticket",
            "service CPU ms/ticket",
            "per node",
            "PostgreSQL CPU ms/ticket",
        ],
        &rows,
    );
    println!();
    println!("latency = rule 1 fired → AI reply visible in the simulator (see the header of benches/end_to_end.rs)");
    println!("CPU per answered ticket: all nodes together, each node, and the database's PostgreSQL backends");
    for line in failovers {
        println!("{line}");
    }
}

fn print_progress(r: &Scenario) {
    println!(
        "{} {} @ {} ms: {}/{} answered, {:.1} tickets/s, p50 {:.0} ms, p99 {:.0} ms",
        r.setup,
        r.name,
        r.latency_ms,
        r.answered,
        r.tickets,
        r.answered as f64 / r.span_s.max(1e-9),
        percentile_f64(&r.e2e_ms, 50.0),
        percentile_f64(&r.e2e_ms, 99.0)
    );
}

/// Start `nodes` nodes on `backend`, create `orgs` orgs (each connected to its own
/// simulator, whose webhook goes to node `i % nodes`), and wait until the first-connect work
/// settled and, with several nodes, every node holds shards. None: no PostgreSQL server.
async fn deploy(
    label: &str,
    backend: Backend,
    nodes: usize,
    orgs: usize,
    rate_limit: u32,
) -> Option<Deployment> {
    let storage = BenchStorage::prepare(backend)?;
    let sims: Vec<(SimHandle, SimClient)> = (0..orgs).map(|_| spawn_sim(rate_limit)).collect();
    let hosts: Vec<String> = sims.iter().map(|(s, _)| s.host()).collect();
    let http = reqwest::Client::new();
    let mut roots = Vec::new();
    let mut services = Vec::new();
    for n in 0..nodes {
        let root = temp_dir("e2e-");
        let mut env = storage.service_env();
        // The service lets the simulators' plain-http hosts in; a node may serve any org.
        env.push((
            "TICKETSYNC__FRESHDESK__INSECURE_HOSTS",
            serde_json::to_string(&hosts).expect("json"),
        ));
        if backend == Backend::Postgres {
            env.push(("TICKETSYNC__CLUSTER__NODE_ID", format!("bench-node-{n}")));
            env.push(("TICKETSYNC__CLUSTER__SHARDS", shard_count().to_string()));
            if let Ok(ttl) = std::env::var("E2E_LEASE_TTL_SECS") {
                env.push(("TICKETSYNC__CLUSTER__LEASE_TTL_SECS", ttl));
            }
        }
        let mut service = Service::new(root.path(), &hosts[0], &env);
        service.spawn();
        service.wait_ready(&http, Duration::from_secs(60)).await;
        services.push(service);
        roots.push(root);
    }
    let admins: Vec<Admin> = services.iter().map(|s| Admin::new(s.base())).collect();
    let mut org_ids = Vec::new();
    let mut hook_paths = Vec::new();
    for (i, (sim, simc)) in sims.iter().enumerate() {
        let org = admins[0].create_org(&format!("Bench {i}")).await;
        let hook = admins[0].connect(&org, &sim.host(), json!({})).await;
        // The webhook path is the same on every node: point it at node i % nodes.
        let path = hook[hook.find("/webhooks/").expect("webhook path")..].to_string();
        simc.set_webhook(&freshdesk_sim::WebhookConfig::to(format!(
            "{}{path}",
            admins[i % nodes].base
        )))
        .await
        .expect("webhook set");
        org_ids.push(org);
        hook_paths.push(path);
    }
    if nodes > 1 {
        wait_for_shards(&admins, shard_count(), Duration::from_secs(120)).await;
        let mut owned = Vec::new();
        for a in &admins {
            owned.push(held_shards(&a.inspect().await));
        }
        let orgs_per_node: Vec<usize> = owned
            .iter()
            .map(|held| {
                org_ids
                    .iter()
                    .filter(|o| held.contains(&shard_of(o, shard_count())))
                    .count()
            })
            .collect();
        println!(
            "orgs owned per node: {orgs_per_node:?}; webhooks of org i go to node i % {nodes}"
        );
    }
    for (_, simc) in &sims {
        admins[0].settle(simc, Duration::from_secs(30)).await;
    }
    let monitor = storage.monitor().await;
    println!(
        "{label}: {nodes} node(s) ready, pids {:?}",
        services.iter().map(|s| s.pid()).collect::<Vec<_>>()
    );
    Some(Deployment {
        label: label.to_string(),
        monitor,
        sims,
        nodes: services,
        admins,
        orgs: org_ids,
        hook_paths,
        _roots: roots,
        _storage: storage,
    })
}

/// The shards a node says it holds (`/api/v1/inspect`: `shards[].shard`, docs/contract.md).
fn held_shards(inspect: &Value) -> Vec<u64> {
    inspect["shards"]
        .as_array()
        .map(|a| a.iter().filter_map(|s| s["shard"].as_u64()).collect())
        .unwrap_or_default()
}

/// Wait until the nodes hold all `shards` shards between them, evenly (the hand-over after
/// the later nodes joined is done), at most `timeout`; prints the spread.
async fn wait_for_shards(admins: &[Admin], shards: u64, timeout: Duration) {
    let started = Instant::now();
    loop {
        let mut counts = Vec::new();
        for a in admins {
            counts.push(held_shards(&a.inspect().await).len() as u64);
        }
        let (min, max) = (counts.iter().min(), counts.iter().max());
        let even = counts.iter().sum::<u64>() == shards
            && matches!((min, max), (Some(a), Some(b)) if b - a <= 1);
        if even || started.elapsed() > timeout {
            println!(
                "shards held per node: {counts:?} of {shards}{} ({:.1} s after the last node was ready)",
                if even { "" } else { ", NOT evenly spread" },
                started.elapsed().as_secs_f64()
            );
            return;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The CPU seconds used so far by each node and by the database's backends.
async fn cpu_now(d: &Deployment) -> (Vec<f64>, Option<PgSnapshot>) {
    let nodes = d.nodes.iter().map(|n| n.cpu_secs()).collect();
    let pg = match &d.monitor {
        Some(m) => Some(m.snapshot().await),
        None => None,
    };
    (nodes, pg)
}

/// New reply POSTs in one simulator since `since` (advanced): their ticket ids.
async fn new_replies(simc: &SimClient, since: &mut u64) -> Vec<u64> {
    let reqs = simc
        .requests_filtered(&RequestFilter {
            method: Some("POST".into()),
            path_prefix: Some("/api/v2/tickets/".into()),
            since_seq: Some(*since),
        })
        .await
        .unwrap_or_default();
    if let Some(last) = reqs.last() {
        *since = last.seq;
    }
    reqs.iter().filter_map(reply_ticket).collect()
}

fn reply_ticket(r: &RecordedRequest) -> Option<u64> {
    r.path
        .strip_prefix("/api/v2/tickets/")?
        .strip_suffix("/reply")?
        .parse()
        .ok()
}

/// A scenario's tickets, where each simulator's request log stood at its start, and the CPU
/// counters then.
struct Run {
    ids: HashSet<Key>,
    seq0: Vec<u64>,
    cpu0: (Vec<f64>, Option<PgSnapshot>),
}

async fn start_run(d: &Deployment) -> Run {
    let mut seq0 = Vec::new();
    for (_, simc) in &d.sims {
        seq0.push(last_request_seq(simc).await);
    }
    Run {
        ids: HashSet::new(),
        seq0,
        cpu0: cpu_now(d).await,
    }
}

/// Wait until every ticket of `ids` has its reply (or `deadline`), following each
/// simulator's log from `since`.
async fn wait_replies(d: &Deployment, ids: &HashSet<Key>, since: &mut [u64], deadline: Instant) {
    let mut replied = HashSet::new();
    while replied.len() < ids.len() && Instant::now() < deadline {
        for (org, (_, simc)) in d.sims.iter().enumerate() {
            for id in new_replies(simc, &mut since[org]).await {
                if ids.contains(&(org, id)) {
                    replied.insert((org, id));
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn burst(d: &Deployment, latency: u64, n: usize, creators: usize, timeout: Duration) -> Run {
    let mut run = start_run(d).await;
    let sims: Arc<Vec<SimClient>> = Arc::new(d.sims.iter().map(|(_, c)| c.clone()).collect());
    let next = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..creators {
        let (sims, next) = (sims.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            let mut ids = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    return ids;
                }
                let org = i % sims.len();
                let t = sims[org]
                    .create_ticket(&NewTicket::new(
                        format!("Password {latency}-{i}"),
                        FAQ_QUESTION,
                    ))
                    .await
                    .expect("ticket created");
                ids.push((org, t["id"].as_u64().expect("ticket id")));
            }
        }));
    }
    for t in tasks {
        run.ids.extend(t.await.expect("creator"));
    }
    let mut since = run.seq0.clone();
    wait_replies(d, &run.ids, &mut since, Instant::now() + timeout).await;
    run
}

async fn serial_run(d: &Deployment, latency: u64, n: usize, timeout: Duration) -> Run {
    let mut run = start_run(d).await;
    let mut since = run.seq0.clone();
    for i in 0..n {
        let org = i % d.sims.len();
        let t = d.sims[org]
            .1
            .create_ticket(&NewTicket::new(
                format!("Serial {latency}-{i}"),
                FAQ_QUESTION,
            ))
            .await
            .expect("ticket created");
        let key = (org, t["id"].as_u64().expect("ticket id"));
        run.ids.insert(key);
        wait_replies(
            d,
            &HashSet::from([key]),
            &mut since,
            Instant::now() + timeout,
        )
        .await;
    }
    run
}

/// Wait for the engine to settle on every org, then analyse the scenario.
async fn finish(d: &Deployment, name: &str, latency: u64, run: Run, timeout: Duration) -> Scenario {
    for (_, simc) in &d.sims {
        if !d.admins[0].settle(simc, timeout).await {
            println!("  (the engine did not settle within {timeout:?})");
        }
    }
    let (nodes1, pg1) = cpu_now(d).await;
    let (nodes0, pg0) = &run.cpu0;
    let node_cpu_s = nodes1.iter().zip(nodes0).map(|(b, a)| b - a).collect();
    let pg_cpu_s = match (pg0, &pg1) {
        (Some(a), Some(b)) => Some(PgMonitor::cost(a, b).backend_cpu),
        _ => None,
    };
    let mut s = Scenario {
        setup: d.label.clone(),
        name: name.to_string(),
        latency_ms: latency,
        tickets: run.ids.len(),
        answered: 0,
        span_s: 0.0,
        e2e_ms: Vec::new(),
        ack_ms: Vec::new(),
        to_read_ms: Vec::new(),
        read_to_reply_ms: Vec::new(),
        api_calls: 0,
        node_cpu_s,
        pg_cpu_s,
    };
    let mut span: (Option<DateTime<Utc>>, Option<DateTime<Utc>>) = (None, None);
    for (org, (_, simc)) in d.sims.iter().enumerate() {
        let ids: HashSet<u64> = run
            .ids
            .iter()
            .filter(|(o, _)| *o == org)
            .map(|(_, id)| *id)
            .collect();
        analyse(&mut s, &mut span, simc, latency, &ids, run.seq0[org]).await;
    }
    if let (Some(a), Some(b)) = span {
        s.span_s = ms(a, b) / 1000.0;
    }
    s
}

fn ms(from: DateTime<Utc>, to: DateTime<Utc>) -> f64 {
    (to - from).num_microseconds().unwrap_or(0) as f64 / 1000.0
}

/// Add one simulator's tickets `ids` to `s`; widen `span` (first rule firing, last reply).
async fn analyse(
    s: &mut Scenario,
    span: &mut (Option<DateTime<Utc>>, Option<DateTime<Utc>>),
    simc: &SimClient,
    latency: u64,
    ids: &HashSet<u64>,
    seq0: u64,
) {
    let requests: Vec<RecordedRequest> = simc
        .requests_filtered(&RequestFilter {
            since_seq: Some(seq0),
            ..RequestFilter::default()
        })
        .await
        .expect("request log");
    let deliveries: Vec<DeliveryRecord> = simc.deliveries().await.expect("deliveries");
    let fired: HashMap<u64, &DeliveryRecord> = deliveries
        .iter()
        .filter(|d| ids.contains(&d.ticket_id) && d.payload["triggered_event"] == "ticket_created")
        .map(|d| (d.ticket_id, d))
        .collect();
    let mut first_read: HashMap<u64, DateTime<Utc>> = HashMap::new();
    let mut reply: HashMap<u64, DateTime<Utc>> = HashMap::new();
    let lat = chrono::Duration::milliseconds(latency as i64);
    for r in &requests {
        let Some(rest) = r.path.strip_prefix("/api/v2/tickets/") else {
            continue;
        };
        let id: Option<u64> = rest.split('/').next().and_then(|s| s.parse().ok());
        let Some(id) = id.filter(|id| ids.contains(id)) else {
            continue;
        };
        s.api_calls += 1;
        if r.method == "GET" && !rest.contains('/') {
            first_read.entry(id).or_insert(r.at);
        }
        if r.method == "POST" && rest.ends_with("/reply") {
            reply.entry(id).or_insert(r.at + lat);
        }
    }
    for id in ids {
        let Some(d) = fired.get(id) else { continue };
        span.0 = Some(span.0.map_or(d.at, |f| f.min(d.at)));
        let Some(done) = reply.get(id) else { continue };
        s.answered += 1;
        span.1 = Some(span.1.map_or(*done, |l| l.max(*done)));
        s.e2e_ms.push(ms(d.at, *done));
        if let Some(acked) = d.delivered_at {
            s.ack_ms.push(ms(d.at, acked));
            if let Some(read) = first_read.get(id) {
                s.to_read_ms.push(ms(acked, *read));
            }
        }
        if let Some(read) = first_read.get(id) {
            s.read_to_reply_ms.push(ms(*read, *done));
        }
    }
}

/// `[cluster] shards` of the nodes: `E2E_SHARDS` (64, the service's default), passed on.
fn shard_count() -> u64 {
    env_u64("E2E_SHARDS", 64)
}

/// The shard of `org` (an org id as the API returns it), as the service computes it.
fn shard_of(org: &str, shards: u64) -> u64 {
    let org: ticketsync_actors::OrgId = org.parse().expect("org id is a UUID");
    ticketsync::store::postgres::shard_of(org, shards as u32) as u64
}

/// Kill (SIGKILL) the owner of an org that node 0 does not own, open a ticket in that org at
/// once (its webhook now goes to node 0), and time the kill → the AI reply on it.
async fn fail_over(d: &mut Deployment, timeout: Duration) -> String {
    let shards = shard_count();
    let mut owned = Vec::new();
    for a in &d.admins {
        owned.push(held_shards(&a.inspect().await));
    }
    let Some((org, victim)) = d.orgs.iter().enumerate().find_map(|(i, org)| {
        let shard = shard_of(org, shards);
        let owner = owned.iter().position(|s| s.contains(&shard))?;
        (owner != 0).then_some((i, owner))
    }) else {
        return format!(
            "{}: failover not measured: no org is owned by a node other than node 0 (shards held: {:?})",
            d.label,
            owned.iter().map(Vec::len).collect::<Vec<_>>()
        );
    };
    let simc = d.sims[org].1.clone();
    simc.set_webhook(&freshdesk_sim::WebhookConfig::to(format!(
        "{}{}",
        d.admins[0].base, d.hook_paths[org]
    )))
    .await
    .expect("webhook set");
    let seq0 = last_request_seq(&simc).await;
    let killed_at = Utc::now();
    let t0 = Instant::now();
    d.nodes[victim].kill();
    let ticket = simc
        .create_ticket(&NewTicket::new("Failover", FAQ_QUESTION))
        .await
        .expect("ticket created");
    let id = ticket["id"].as_u64().expect("ticket id");
    let mut since = seq0;
    let mut replied_at = None;
    while replied_at.is_none() && t0.elapsed() < timeout {
        let reqs = simc
            .requests_filtered(&RequestFilter {
                method: Some("POST".into()),
                path_prefix: Some(format!("/api/v2/tickets/{id}/reply")),
                since_seq: Some(since),
            })
            .await
            .unwrap_or_default();
        if let Some(r) = reqs.first() {
            replied_at = Some(r.at);
        }
        if let Some(last) = reqs.last() {
            since = last.seq;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut new_owner = None;
    for (n, a) in d.admins.iter().enumerate() {
        if n != victim && held_shards(&a.inspect().await).contains(&shard_of(&d.orgs[org], shards))
        {
            new_owner = Some(n);
        }
    }
    match replied_at {
        Some(at) => format!(
            "{}: failover: SIGKILL of node {victim} (owner of org {org}) → AI reply on a new ticket of that org: {:.2} s (taken over by node {})",
            d.label,
            ms(killed_at, at) / 1000.0,
            new_owner.map_or("?".to_string(), |n| n.to_string())
        ),
        None => format!(
            "{}: failover: no reply within {timeout:?} after the SIGKILL of node {victim}",
            d.label
        ),
    }
}
