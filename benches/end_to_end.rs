//! End to end: new tickets answered per second and webhook-to-reply latency, against the
//! Freshdesk simulator at 0 ms and at 100 ms API latency.
//!
//! `cargo bench --bench end_to_end`
//!
//! The release `ticketsync` binary runs as a child process; the simulator runs in this
//! process. An org is connected with default settings (autopilot) and the simulator's
//! automation rules point at its webhook (rule 2 fires on API changes, as in Freshdesk). A
//! customer opens tickets whose question the builtin FAQ answers, so each gets one public AI
//! reply (plus the `opencx` tag update).
//!
//! For each latency two scenarios run:
//! - `burst`: `E2E_TICKETS` (200) tickets created as fast as `E2E_CREATORS` (8) concurrent
//!   customers can, then we wait until every one has its AI reply. Throughput = tickets /
//!   (last reply − first rule firing). Latencies include queueing behind the burst.
//! - `serial`: `E2E_SERIAL` (20) tickets one at a time (the next is created once the previous
//!   is answered): the latency of an unloaded pipeline.
//!
//! How latency is measured: both ends are timestamps taken by the simulator, so one clock and
//! no polling delay. Start = the delivery record's `at` (the moment rule 1 fired, inside
//! ticket creation). End = the arrival time (`at`) of the `POST /tickets/{id}/reply` in the
//! simulator's request log, plus the injected latency (the simulator sleeps that long before
//! it creates the conversation, so that is when the reply becomes visible in Freshdesk). The
//! breakdown columns use the same log: `ack` = rule fired → the 202 reached the simulator
//! (delivery `delivered_at`), `→read` = 202 → the engine's first `GET /tickets/{id}`,
//! `read→reply` = that read → reply visible.
//!
//! The simulator's account limit is raised to `E2E_RATE_LIMIT` (1000000 credits/min) so the
//! figures show the service, not Freshdesk's per-minute budget: at a real Enterprise limit
//! (700/min, 560 usable) throughput is capped at 560 / (credits per answered ticket, see the
//! credits bench) per minute. Knobs: `E2E_LATENCIES` ("0,100"), `E2E_TIMEOUT_SECS` (180).

mod common;

use chrono::{DateTime, Utc};
use common::*;
use freshdesk_sim::{
    DeliveryRecord, FaultsConfig, NewTicket, RecordedRequest, RequestFilter, SimClient,
};
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

struct Scenario {
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
    service_cpu_s: f64,
}

async fn run() {
    print_machine("end_to_end", "cargo bench --bench end_to_end");
    let tickets = env_u64("E2E_TICKETS", 200) as usize;
    let creators = env_u64("E2E_CREATORS", 8) as usize;
    let serial = env_u64("E2E_SERIAL", 20) as usize;
    let latencies = env_list("E2E_LATENCIES", &[0, 100]);
    let rate_limit = env_u64("E2E_RATE_LIMIT", 1_000_000) as u32;
    let timeout = Duration::from_secs(env_u64("E2E_TIMEOUT_SECS", 180));
    println!(
        "{tickets} tickets per burst ({creators} concurrent creators), {serial} serial tickets, latencies {latencies:?} ms, simulator limit {rate_limit} credits/min"
    );
    println!();

    let bench = connected_bench("e2e-", rate_limit, Duration::from_secs(30)).await;
    let ConnectedBench {
        sim: _sim,
        simc,
        mut service,
        admin,
        ..
    } = bench;

    let mut results = Vec::new();
    for &latency in &latencies {
        simc.set_faults(&FaultsConfig {
            latency_ms: Some(latency),
            ..FaultsConfig::default()
        })
        .await
        .expect("faults set");
        // Each scenario is analysed once the engine settled, so the API calls and CPU time
        // per ticket include the echo re-reads that follow the replies.
        let run = burst(&simc, &service, latency, tickets, creators, timeout).await;
        let r = finish("burst", &admin, &simc, &service, latency, run, timeout).await;
        print_progress(&r);
        results.push(r);
        let run = serial_run(&simc, &service, latency, serial, timeout).await;
        let r = finish("serial", &admin, &simc, &service, latency, run, timeout).await;
        print_progress(&r);
        results.push(r);
    }
    let _ = simc.clear_faults().await;

    println!();
    let rows: Vec<Vec<String>> = results
        .iter()
        .map(|r| {
            let p = |v: &Vec<f64>, q: f64| f(percentile_f64(v, q), 0);
            vec![
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
                f(r.service_cpu_s * 1e3 / r.tickets.max(1) as f64, 1),
            ]
        })
        .collect();
    print_table(
        &[
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
        ],
        &rows,
    );
    println!();
    println!("latency = rule 1 fired → AI reply visible in the simulator (see the header of benches/end_to_end.rs)");
    service.stop(Duration::from_secs(10));
}

fn print_progress(r: &Scenario) {
    println!(
        "{} @ {} ms: {}/{} answered, {:.1} tickets/s, p50 {:.0} ms, p99 {:.0} ms",
        r.name,
        r.latency_ms,
        r.answered,
        r.tickets,
        r.answered as f64 / r.span_s.max(1e-9),
        percentile_f64(&r.e2e_ms, 50.0),
        percentile_f64(&r.e2e_ms, 99.0)
    );
}

/// New reply POSTs since `since` (advanced): their ticket ids.
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

async fn burst(
    simc: &SimClient,
    service: &Service,
    latency: u64,
    n: usize,
    creators: usize,
    timeout: Duration,
) -> Run {
    let seq0 = last_request_seq(simc).await;
    let cpu0 = service.cpu_secs();
    let next = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..creators {
        let (simc, next) = (simc.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            let mut ids = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    return ids;
                }
                let t = simc
                    .create_ticket(&NewTicket::new(
                        format!("Password {latency}-{i}"),
                        FAQ_QUESTION,
                    ))
                    .await
                    .expect("ticket created");
                ids.push(t["id"].as_u64().expect("ticket id"));
            }
        }));
    }
    let mut ids = HashSet::new();
    for t in tasks {
        ids.extend(t.await.expect("creator"));
    }
    let deadline = Instant::now() + timeout;
    let mut since = seq0;
    let mut replied = HashSet::new();
    while replied.len() < ids.len() && Instant::now() < deadline {
        for id in new_replies(simc, &mut since).await {
            if ids.contains(&id) {
                replied.insert(id);
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Run { ids, seq0, cpu0 }
}

async fn serial_run(
    simc: &SimClient,
    service: &Service,
    latency: u64,
    n: usize,
    timeout: Duration,
) -> Run {
    let seq0 = last_request_seq(simc).await;
    let cpu0 = service.cpu_secs();
    let mut ids = HashSet::new();
    let mut since = seq0;
    for i in 0..n {
        let t = simc
            .create_ticket(&NewTicket::new(
                format!("Serial {latency}-{i}"),
                FAQ_QUESTION,
            ))
            .await
            .expect("ticket created");
        let id = t["id"].as_u64().expect("ticket id");
        ids.insert(id);
        let deadline = Instant::now() + timeout;
        'wait: while Instant::now() < deadline {
            for r in new_replies(simc, &mut since).await {
                if r == id {
                    break 'wait;
                }
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    Run { ids, seq0, cpu0 }
}

/// A scenario's tickets, where its API calls start in the request log, and the service's CPU
/// time at its start.
struct Run {
    ids: HashSet<u64>,
    seq0: u64,
    cpu0: f64,
}

/// Wait for the engine to settle, then analyse the scenario.
async fn finish(
    name: &str,
    admin: &Admin,
    simc: &SimClient,
    service: &Service,
    latency: u64,
    run: Run,
    timeout: Duration,
) -> Scenario {
    if !admin.settle(simc, timeout).await {
        println!("  (the engine did not settle within {timeout:?})");
    }
    let cpu = service.cpu_secs() - run.cpu0;
    analyse(name, simc, latency, &run.ids, run.seq0, cpu).await
}

fn ms(from: DateTime<Utc>, to: DateTime<Utc>) -> f64 {
    (to - from).num_microseconds().unwrap_or(0) as f64 / 1000.0
}

async fn analyse(
    name: &str,
    simc: &SimClient,
    latency: u64,
    ids: &HashSet<u64>,
    seq0: u64,
    service_cpu_s: f64,
) -> Scenario {
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
    let mut api_calls = 0;
    let lat = chrono::Duration::milliseconds(latency as i64);
    for r in &requests {
        let Some(rest) = r.path.strip_prefix("/api/v2/tickets/") else {
            continue;
        };
        let id: Option<u64> = rest.split('/').next().and_then(|s| s.parse().ok());
        let Some(id) = id.filter(|id| ids.contains(id)) else {
            continue;
        };
        api_calls += 1;
        if r.method == "GET" && !rest.contains('/') {
            first_read.entry(id).or_insert(r.at);
        }
        if r.method == "POST" && rest.ends_with("/reply") {
            reply.entry(id).or_insert(r.at + lat);
        }
    }
    let mut s = Scenario {
        name: name.to_string(),
        latency_ms: latency,
        tickets: ids.len(),
        answered: 0,
        span_s: 0.0,
        e2e_ms: Vec::new(),
        ack_ms: Vec::new(),
        to_read_ms: Vec::new(),
        read_to_reply_ms: Vec::new(),
        api_calls,
        service_cpu_s,
    };
    let mut first: Option<DateTime<Utc>> = None;
    let mut last: Option<DateTime<Utc>> = None;
    for id in ids {
        let Some(d) = fired.get(id) else { continue };
        first = Some(first.map_or(d.at, |f| f.min(d.at)));
        let Some(done) = reply.get(id) else { continue };
        s.answered += 1;
        last = Some(last.map_or(*done, |l| l.max(*done)));
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
    if let (Some(a), Some(b)) = (first, last) {
        s.span_s = ms(a, b) / 1000.0;
    }
    s
}
