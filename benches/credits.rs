//! Credits: Freshdesk API credits spent per answered customer message, on a realistic mix,
//! broken down by endpoint and by cause.
//!
//! `cargo bench --bench credits`
//!
//! The release `ticketsync` binary runs as a child process against the simulator in this
//! process. The simulator's automation rules post to the org's webhook; rule 2 also fires on
//! changes made through the API (`fire_on_api_changes`, as real Freshdesk does), so the AI's
//! own reply, notes and ticket updates come back as webhooks ("echoes").
//!
//! The mix (`CREDITS_TICKETS`, default 100, split in these proportions):
//! - 60% `faq`: a question the builtin FAQ answers → one public reply;
//! - 10% `handoff (human)`: "I want to talk to a human" → handoff `customer_requested`;
//! - 10% `handoff (unknown)`: a question the FAQ cannot answer → handoff `missing_knowledge`;
//! - 10% `resolved after follow-up`: FAQ reply, then "Thanks, that solved it!" → resolve;
//! - 10% `two follow-ups`: FAQ reply, then two more FAQ questions, each answered.
//!
//! Phases, each run until the engine settles (nothing queued, nothing pending, every webhook
//! delivered): 1 = every ticket is created (`CREDITS_CONCURRENCY`, default 4, customers at
//! once); 2 = the first follow-ups; 3 = the second follow-ups. Every `/api/v2` request the
//! simulator logged is attributed to a phase (by sequence number) and to a ticket (by path),
//! and classified by cause: within a phase, a ticket's reads before the AI's first write are
//! the reads the customer's message triggered ("gate/first read" in phase 1, "follow-up read"
//! after), reads after the AI wrote are echo re-reads of its own writes. Org-level calls
//! (agent directory, ticket fields, the sweep's ticket listing) are shown apart.
//!
//! An "answered message" is a customer message the AI acted on: a reply, a handoff or a
//! resolution. Credits are Freshdesk's (1 per call, +2 per `include=`), as the simulator
//! charges them. The simulator's limit is raised (`CREDITS_RATE_LIMIT`, 1000000/min) so that
//! the rate budget never delays work, which would change how many echoes coalesce.
//!
//! The mix runs twice, each time on a fresh simulator and service: once with rule 2 firing on
//! the AI's own API changes (the echoes), once with rule 2 excluding them
//! (`fire_on_api_changes: false`, what an admin gets by adding "performed by: agent is not the
//! AI agent" to the rule). After each mix the bench waits for the org's first missed-webhook
//! sweep (`CREDITS_SWEEP_SECS`, default 60, is the service's sweep interval; the phases must
//! end before it) and counts what that one sweep spends on the tracked tickets; "per 1000
//! tracked tickets" is that figure scaled from `CREDITS_TICKETS`.
//!
//! Last, the backfill: `CREDITS_BACKFILL_TICKETS` (default 200) open and pending tickets, each
//! with one customer reply, exist before the org connects; the bench counts what the
//! first-connect backfill spends until it is done, per imported ticket.

mod common;

use common::*;
use freshdesk_sim::{BulkTickets, NewTicket, RecordedRequest, SimClient, SimHandle, WebhookConfig};
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(run());
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum Kind {
    Faq,
    HandoffHuman,
    HandoffUnknown,
    Resolved,
    TwoFollowUps,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Faq => "faq",
            Kind::HandoffHuman => "handoff (human)",
            Kind::HandoffUnknown => "handoff (unknown)",
            Kind::Resolved => "resolved after follow-up",
            Kind::TwoFollowUps => "two follow-ups",
        }
    }

    fn opening(self) -> &'static str {
        match self {
            Kind::HandoffHuman => "I want to talk to a human please",
            Kind::HandoffUnknown => "Where is my invoice for March?",
            _ => FAQ_QUESTION,
        }
    }

    /// The customer's messages after the opening one, by phase (2, 3).
    fn follow_up(self, phase: usize) -> Option<&'static str> {
        match (self, phase) {
            (Kind::Resolved, 2) => Some("Thanks, that solved it!"),
            (Kind::TwoFollowUps, 2) => Some("And how do I reset my password on mobile?"),
            (Kind::TwoFollowUps, 3) => {
                Some("Last one: how do I reset the password of the desktop app?")
            }
            _ => None,
        }
    }

    /// Customer messages the AI acts on, in all.
    fn messages(self) -> usize {
        match self {
            Kind::Resolved => 2,
            Kind::TwoFollowUps => 3,
            _ => 1,
        }
    }
}

/// The bench's knobs, from the environment.
struct Knobs {
    total: usize,
    concurrency: usize,
    rate_limit: u32,
    timeout: Duration,
    sweep_secs: u64,
    backfill_tickets: u32,
}

/// What one run of the mix measured.
struct MixResult {
    credits: u32,
    messages: usize,
    echo: u32,
    sweep: Option<SweepResult>,
}

/// What one sweep spent.
struct SweepResult {
    tracked: usize,
    listing: u32,
    rereads: u32,
    tickets_reread: usize,
}

impl SweepResult {
    fn per_thousand(&self) -> f64 {
        (self.listing + self.rereads) as f64 * 1000.0 / self.tracked.max(1) as f64
    }
}

async fn run() {
    print_machine("credits", "cargo bench --bench credits");
    let k = Knobs {
        total: env_u64("CREDITS_TICKETS", 100) as usize,
        concurrency: env_u64("CREDITS_CONCURRENCY", 4) as usize,
        rate_limit: env_u64("CREDITS_RATE_LIMIT", 1_000_000) as u32,
        timeout: Duration::from_secs(env_u64("CREDITS_TIMEOUT_SECS", 120)),
        sweep_secs: env_u64("CREDITS_SWEEP_SECS", 60),
        backfill_tickets: env_u64("CREDITS_BACKFILL_TICKETS", 200) as u32,
    };
    let (total, concurrency) = (k.total, k.concurrency);
    let per = |pct: usize| total * pct / 100;
    let mut plan: Vec<Kind> = Vec::new();
    for (kind, n) in [
        (Kind::Faq, total - 4 * per(10)),
        (Kind::HandoffHuman, per(10)),
        (Kind::HandoffUnknown, per(10)),
        (Kind::Resolved, per(10)),
        (Kind::TwoFollowUps, per(10)),
    ] {
        plan.extend(std::iter::repeat_n(kind, n));
    }
    // Interleave the kinds, as a real inbox would.
    let mut order: Vec<usize> = (0..plan.len()).collect();
    order.sort_by_key(|i| (i * 7919) % plan.len());
    let plan: Vec<Kind> = order.into_iter().map(|i| plan[i]).collect();
    println!(
        "{} tickets ({} faq, {} handoff human, {} handoff unknown, {} resolved after a follow-up, {} with two follow-ups), {concurrency} customers at once",
        plan.len(),
        plan.iter().filter(|k| **k == Kind::Faq).count(),
        per(10),
        per(10),
        per(10),
        per(10)
    );
    println!();

    println!("=== mix A: rule 2 fires on the AI's own writes (echoes) ===");
    let a = mix(&k, &plan, true).await;
    println!();
    println!("=== mix B: rule 2 excludes the AI agent (no echoes) ===");
    let b = mix(&k, &plan, false).await;
    println!();
    println!("=== backfill ===");
    let backfill = backfill(&k).await;

    println!();
    println!("summary:");
    for (name, r, target) in [
        ("mix A (echoes)", &a, 3.0),
        ("mix B (AI excluded from rule 2)", &b, 2.5),
    ] {
        let per_message = r.credits as f64 / r.messages as f64;
        println!(
            "  {name}: {:.2} credits per answered message (target <= {target}: {}); echo re-reads {:.2}",
            per_message,
            if per_message <= target { "met" } else { "missed" },
            r.echo as f64 / r.messages as f64
        );
        match &r.sweep {
            Some(s) => println!(
                "    first sweep after the mix: {} credits for {} tracked tickets (listing {}, re-reads {} of {} tickets) = {:.0} per 1000 tracked tickets",
                s.listing + s.rereads,
                s.tracked,
                s.listing,
                s.rereads,
                s.tickets_reread,
                s.per_thousand()
            ),
            None => println!("    first sweep after the mix: not measured (see above)"),
        }
    }
    match backfill {
        Some((credits, imported)) => println!(
            "  backfill: {credits} credits for {imported} imported tickets = {:.2} per imported ticket",
            credits as f64 / imported.max(1) as f64
        ),
        None => println!("  backfill: not measured (see above)"),
    }
}

/// Start the simulator and a service (sweep every `k.sweep_secs`), connect an org and point
/// the automation rules at it.
/// A simulator and a service with a connected org; the data directory lives as long as this.
struct World {
    _sim: SimHandle,
    simc: SimClient,
    service: Service,
    admin: Admin,
    _root: tempfile::TempDir,
}

async fn mix_world(k: &Knobs, echoes: bool) -> World {
    let (sim, simc) = spawn_sim(k.rate_limit);
    let root = temp_dir("credits-");
    let mut service = Service::new(
        root.path(),
        &sim.host(),
        &[(
            "TICKETSYNC__ENGINE__SWEEP_INTERVAL_SECS",
            k.sweep_secs.to_string(),
        )],
    );
    service.spawn();
    service
        .wait_ready(&reqwest::Client::new(), Duration::from_secs(60))
        .await;
    let admin = Admin::new(service.base());
    let org = admin.create_org("Bench").await;
    let hook = admin.connect(&org, &sim.host(), json!({})).await;
    simc.set_webhook(&WebhookConfig {
        fire_on_api_changes: Some(echoes),
        ..WebhookConfig::to(hook)
    })
    .await
    .expect("webhook set");
    admin.settle(&simc, k.timeout).await;
    World {
        _sim: sim,
        simc,
        service,
        admin,
        _root: root,
    }
}

async fn mix(k: &Knobs, plan: &[Kind], echoes: bool) -> MixResult {
    let (concurrency, timeout) = (k.concurrency, k.timeout);
    let World {
        _sim,
        simc,
        mut service,
        admin,
        _root,
    } = mix_world(k, echoes).await;

    // Phase boundaries in the request log and the delivery log.
    let mut bounds = vec![last_request_seq(&simc).await];
    let mut delivery_bounds = vec![simc.deliveries().await.expect("deliveries").len()];

    // Phase 1: every ticket is opened.
    let tickets: Vec<(u64, Kind)> = {
        let plan = Arc::new(plan.to_vec());
        let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for _ in 0..concurrency {
            let (simc, plan, next) = (simc.clone(), plan.clone(), next.clone());
            tasks.push(tokio::spawn(async move {
                let mut out = Vec::new();
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some(kind) = plan.get(i).copied() else {
                        return out;
                    };
                    let t = simc
                        .create_ticket(&NewTicket::new(format!("Ticket {i}"), kind.opening()))
                        .await
                        .expect("ticket created");
                    out.push((t["id"].as_u64().expect("id"), kind));
                }
            }));
        }
        let mut all = Vec::new();
        for t in tasks {
            all.extend(t.await.expect("creator"));
        }
        all.sort();
        all
    };
    settle_or_warn(&admin, &simc, timeout, 1).await;
    bounds.push(last_request_seq(&simc).await);
    delivery_bounds.push(simc.deliveries().await.expect("deliveries").len());

    // Phases 2 and 3: follow-ups.
    for phase in [2, 3] {
        let replies: Vec<(u64, &'static str)> = tickets
            .iter()
            .filter_map(|(id, k)| k.follow_up(phase).map(|text| (*id, text)))
            .collect();
        let chunks: Vec<Vec<(u64, &'static str)>> = replies
            .chunks(replies.len().div_ceil(concurrency).max(1))
            .map(|c| c.to_vec())
            .collect();
        let mut tasks = Vec::new();
        for chunk in chunks {
            let simc = simc.clone();
            tasks.push(tokio::spawn(async move {
                for (id, text) in chunk {
                    simc.customer_reply(id, text).await.expect("customer reply");
                }
            }));
        }
        for t in tasks {
            t.await.expect("follow-up");
        }
        settle_or_warn(&admin, &simc, timeout, phase).await;
        bounds.push(last_request_seq(&simc).await);
        delivery_bounds.push(simc.deliveries().await.expect("deliveries").len());
    }

    let requests: Vec<RecordedRequest> = simc.requests().await.expect("request log");
    let deliveries = simc.deliveries().await.expect("deliveries");
    let setup_credits: u32 = requests
        .iter()
        .filter(|r| r.seq <= bounds[0])
        .map(|r| r.credits)
        .sum();

    // Outcome check: every message got its AI action (a correctness check, not timing).
    let kinds: HashMap<u64, Kind> = tickets.iter().copied().collect();
    let mut wrong = Vec::new();
    for (id, kind) in &tickets {
        let t = simc.get_ticket(*id).await.expect("ticket");
        let ai: Vec<&Value> = t["conversations"]
            .as_array()
            .map(|c| c.iter().filter(|c| c["user_id"] == AI_AGENT_ID).collect())
            .unwrap_or_default();
        let public = ai.iter().filter(|c| c["private"] == false).count();
        let private = ai.len() - public;
        let expected = match kind {
            Kind::Faq => (1, 0),
            Kind::HandoffHuman | Kind::HandoffUnknown => (0, 1),
            Kind::Resolved => (1, 1),
            Kind::TwoFollowUps => (3, 0),
        };
        if (public, private) != expected {
            wrong.push(format!(
                "ticket {id} ({}): {public} public / {private} private AI posts, expected {expected:?}",
                kind.name()
            ));
        }
    }

    // Classify every request of phases 1–3.
    let mut by_cause: BTreeMap<String, [u32; 4]> = BTreeMap::new(); // phase 1, 2, 3, calls
    let mut by_endpoint: BTreeMap<String, (u32, u32)> = BTreeMap::new();
    let mut per_kind: BTreeMap<Kind, [u32; 3]> = BTreeMap::new();
    let mut wrote: HashMap<(usize, u64), bool> = HashMap::new();
    let mut read_seen: HashMap<(usize, u64, &'static str), bool> = HashMap::new();
    for r in requests.iter().filter(|r| r.seq > bounds[0]) {
        let phase = (1..bounds.len())
            .find(|p| r.seq <= bounds[*p])
            .unwrap_or(bounds.len());
        let p = (phase - 1).min(2);
        let template = path_template(&r.path);
        let e = by_endpoint
            .entry(format!("{} {}", r.method, template))
            .or_default();
        e.0 += 1;
        e.1 += r.credits;
        let ticket = ticket_of(&r.path).filter(|t| kinds.contains_key(t));
        let cause = match ticket {
            None => format!("org-level: {} {}", r.method, template),
            Some(t) => {
                let sub = r
                    .path
                    .trim_start_matches("/api/v2/tickets/")
                    .split_once('/')
                    .map(|(_, s)| s)
                    .unwrap_or("");
                let has_written = *wrote.get(&(phase, t)).unwrap_or(&false);
                let read = |what: &'static str, read_seen: &mut HashMap<_, bool>| {
                    if has_written {
                        format!("echo re-read after the AI's writes: {what}")
                    } else if read_seen.insert((phase, t, what), true).is_some() {
                        format!("repeated read before writing: {what}")
                    } else if phase == 1 {
                        format!("gate/first read: {what}")
                    } else {
                        format!("follow-up read: {what}")
                    }
                };
                match (r.method.as_str(), sub) {
                    ("GET", "") => read("GET ticket", &mut read_seen),
                    ("GET", "conversations") => read("GET conversations", &mut read_seen),
                    ("POST", "reply") => {
                        wrote.insert((phase, t), true);
                        "reply: POST reply".to_string()
                    }
                    ("POST", "notes") => {
                        wrote.insert((phase, t), true);
                        let body = r.body["body"].as_str().unwrap_or("");
                        if body.contains("Handed off") {
                            "handoff: POST note".to_string()
                        } else if body.contains("Resolved by") {
                            "resolve: POST note".to_string()
                        } else {
                            "note: POST note".to_string()
                        }
                    }
                    ("PUT", "") => {
                        wrote.insert((phase, t), true);
                        if r.body.get("tags").is_some() {
                            "tags: PUT ticket".to_string()
                        } else if r.body.get("responder_id").is_some() {
                            "handoff: PUT ticket (routing)".to_string()
                        } else if r.body["status"] == 4 {
                            "resolve: PUT ticket (status 4)".to_string()
                        } else {
                            "other: PUT ticket".to_string()
                        }
                    }
                    (m, s) => format!("other: {m} {s}"),
                }
            }
        };
        let c = by_cause.entry(cause).or_default();
        c[p] += r.credits;
        c[3] += 1;
        if let Some(t) = ticket {
            per_kind.entry(kinds[&t]).or_default()[p] += r.credits;
        }
    }

    // Messages acted on, per phase.
    let messages: [usize; 3] = [
        tickets.len(),
        tickets
            .iter()
            .filter(|(_, k)| k.follow_up(2).is_some())
            .count(),
        tickets
            .iter()
            .filter(|(_, k)| k.follow_up(3).is_some())
            .count(),
    ];
    let all_messages: usize = tickets.iter().map(|(_, k)| k.messages()).sum();
    assert_eq!(all_messages, messages.iter().sum::<usize>());
    let replies = tickets
        .iter()
        .map(|(_, k)| match k {
            Kind::Faq | Kind::Resolved => 1,
            Kind::TwoFollowUps => 3,
            _ => 0,
        })
        .sum::<usize>();

    println!(
        "credits by cause (phase 1 = {} new tickets, phases 2+3 = {} follow-ups):",
        messages[0],
        messages[1] + messages[2]
    );
    let mut rows = Vec::new();
    let mut totals = [0u32; 4];
    for (cause, c) in &by_cause {
        for i in 0..4 {
            totals[i] += c[i];
        }
        let all = c[0] + c[1] + c[2];
        rows.push(vec![
            cause.clone(),
            c[0].to_string(),
            f(c[0] as f64 / messages[0] as f64, 2),
            (c[1] + c[2]).to_string(),
            f(
                (c[1] + c[2]) as f64 / (messages[1] + messages[2]).max(1) as f64,
                2,
            ),
            all.to_string(),
            f(all as f64 / all_messages as f64, 2),
        ]);
    }
    let sum = totals[0] + totals[1] + totals[2];
    rows.push(vec![
        "TOTAL".into(),
        totals[0].to_string(),
        f(totals[0] as f64 / messages[0] as f64, 2),
        (totals[1] + totals[2]).to_string(),
        f(
            (totals[1] + totals[2]) as f64 / (messages[1] + messages[2]).max(1) as f64,
            2,
        ),
        sum.to_string(),
        f(sum as f64 / all_messages as f64, 2),
    ]);
    print_table(
        &[
            "cause",
            "new tickets",
            "per new ticket",
            "follow-ups",
            "per follow-up",
            "all",
            "per answered message",
        ],
        &rows,
    );

    println!();
    println!("credits by endpoint (phases 1–3):");
    let rows: Vec<Vec<String>> = by_endpoint
        .iter()
        .map(|(k, (calls, credits))| vec![k.clone(), calls.to_string(), credits.to_string()])
        .collect();
    print_table(&["endpoint", "calls", "credits"], &rows);

    println!();
    println!("credits per ticket by kind:");
    let mut rows = Vec::new();
    for (kind, c) in &per_kind {
        let n = tickets.iter().filter(|(_, k)| k == kind).count();
        let all = c[0] + c[1] + c[2];
        rows.push(vec![
            kind.name().to_string(),
            n.to_string(),
            f(c[0] as f64 / n as f64, 2),
            f((c[1] + c[2]) as f64 / n as f64, 2),
            f(all as f64 / n as f64, 2),
            f(all as f64 / (n * kind.messages()) as f64, 2),
        ]);
    }
    print_table(
        &[
            "kind",
            "tickets",
            "opening",
            "follow-ups",
            "whole ticket",
            "per answered message",
        ],
        &rows,
    );

    println!();
    println!("webhooks received per phase, by triggered_event:");
    for phase in 1..delivery_bounds.len() {
        let mut events: BTreeMap<String, usize> = BTreeMap::new();
        for d in &deliveries[delivery_bounds[phase - 1]..delivery_bounds[phase]] {
            let e = d.payload["triggered_event"]
                .as_str()
                .unwrap_or("?")
                .to_string();
            *events.entry(e).or_default() += 1;
        }
        let n: usize = events.values().sum();
        println!("  phase {phase}: {n} webhooks: {events:?}");
    }

    let echo: u32 = by_cause
        .iter()
        .filter(|(k, _)| k.starts_with("echo"))
        .map(|(_, c)| c[0] + c[1] + c[2])
        .sum();
    let org_level: u32 = by_cause
        .iter()
        .filter(|(k, _)| k.starts_with("org-level"))
        .map(|(_, c)| c[0] + c[1] + c[2])
        .sum();
    println!();
    println!("connect/setup (before phase 1, not counted above): {setup_credits} credits");
    println!(
        "answered messages: {all_messages} ({} new tickets + {} follow-ups; {replies} public replies)",
        messages[0],
        messages[1] + messages[2]
    );
    println!(
        "credits per answered message: {:.2}",
        sum as f64 / all_messages as f64
    );
    println!(
        "  of which echo re-reads: {:.2}, org-level: {:.2}; without echo re-reads: {:.2}",
        echo as f64 / all_messages as f64,
        org_level as f64 / all_messages as f64,
        (sum - echo) as f64 / all_messages as f64
    );
    println!(
        "credits per answered new ticket: {:.2}; per follow-up: {:.2}",
        totals[0] as f64 / messages[0] as f64,
        (totals[1] + totals[2]) as f64 / (messages[1] + messages[2]).max(1) as f64
    );
    if wrong.is_empty() {
        println!("outcomes: every ticket got exactly the AI posts its kind calls for");
    } else {
        println!(
            "outcomes: {} tickets differ from the expected AI posts:",
            wrong.len()
        );
        for w in wrong.iter().take(20) {
            println!("  {w}");
        }
    }
    let sweep = first_sweep(k, &admin, &simc, tickets.len()).await;
    service.stop(Duration::from_secs(10));
    MixResult {
        credits: sum,
        messages: all_messages,
        echo,
        sweep,
    }
}

/// The org's sweep progress, from the inspection view.
async fn sweep_progress(admin: &Admin) -> Value {
    admin.inspect().await["orgs"][0]["sweep"].clone()
}

/// Wait for the org's first sweep to run after the mix, and count what it spent: the listing,
/// and the re-reads of the tickets it found possibly changed.
async fn first_sweep(
    k: &Knobs,
    admin: &Admin,
    simc: &SimClient,
    tracked: usize,
) -> Option<SweepResult> {
    if sweep_progress(admin).await["runs"].as_u64().unwrap_or(0) > 0 {
        println!("sweep: one ran during the phases (its credits are in the tables above); raise CREDITS_SWEEP_SECS to measure one apart");
        return None;
    }
    let mark = last_request_seq(simc).await;
    let marked_at = chrono::Utc::now();
    let deadline = std::time::Instant::now() + Duration::from_secs(k.sweep_secs) + k.timeout;
    let progress = loop {
        let p = sweep_progress(admin).await;
        if p["runs"].as_u64().unwrap_or(0) > 0 {
            break p;
        }
        if std::time::Instant::now() > deadline {
            println!("sweep: none ran within {}s", k.sweep_secs);
            return None;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    let started: Option<chrono::DateTime<chrono::Utc>> =
        serde_json::from_value(progress["last_started_at"].clone()).ok();
    if started.is_none_or(|s| s < marked_at) {
        println!("sweep: the first one started before the mix settled; not measured");
        return None;
    }
    settle_or_warn(admin, simc, k.timeout, 4).await;
    let requests = simc.requests().await.expect("request log");
    let (mut listing, mut rereads) = (0, 0);
    let mut reread = std::collections::BTreeSet::new();
    for r in requests.iter().filter(|r| r.seq > mark) {
        match ticket_of(&r.path) {
            Some(t) => {
                rereads += r.credits;
                reread.insert(t);
            }
            None => listing += r.credits,
        }
    }
    let result = SweepResult {
        tracked,
        listing,
        rereads,
        tickets_reread: reread.len(),
    };
    println!(
        "first sweep after the mix ({} requeued by it): listing {listing} credits, re-reads {rereads} credits ({} tickets); {:.0} credits per 1000 tracked tickets",
        progress["tickets_requeued"],
        result.tickets_reread,
        result.per_thousand()
    );
    Some(result)
}

/// The first-connect backfill of `k.backfill_tickets` open and pending tickets, each with one
/// customer reply: (credits it spent, tickets it imported).
async fn backfill(k: &Knobs) -> Option<(u32, u64)> {
    let (sim, simc) = spawn_sim(k.rate_limit);
    simc.bulk_tickets(&BulkTickets {
        count: k.backfill_tickets,
        status_cycle: Some(vec![2, 3]),
        conversations_per_ticket: Some(1),
        ..BulkTickets::default()
    })
    .await
    .expect("tickets created");
    let root = temp_dir("credits-backfill-");
    let mut service = Service::new(root.path(), &sim.host(), &[]);
    service.spawn();
    service
        .wait_ready(&reqwest::Client::new(), Duration::from_secs(60))
        .await;
    let admin = Admin::new(service.base());
    let org = admin.create_org("Bench").await;
    let mark = last_request_seq(&simc).await;
    admin.connect(&org, &sim.host(), json!({})).await;
    let deadline = std::time::Instant::now() + k.timeout;
    let progress = loop {
        let b = admin.inspect().await["orgs"][0]["backfill"].clone();
        if b["state"] == "done" {
            break b;
        }
        if std::time::Instant::now() > deadline {
            println!("backfill: not done within {:?}: {b}", k.timeout);
            service.stop(Duration::from_secs(10));
            return None;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    settle_or_warn(&admin, &simc, k.timeout, 0).await;
    let requests = simc.requests().await.expect("request log");
    let mut by_endpoint: BTreeMap<String, (u32, u32)> = BTreeMap::new();
    for r in requests.iter().filter(|r| r.seq > mark) {
        let e = by_endpoint
            .entry(format!("{} {}", r.method, path_template(&r.path)))
            .or_default();
        e.0 += 1;
        e.1 += r.credits;
    }
    service.stop(Duration::from_secs(10));
    let imported = progress["tickets_queued"].as_u64().unwrap_or(0);
    // The connection's own checks (agent, ticket fields) are not the backfill's.
    let backfill_endpoints = [
        "GET /api/v2/tickets",
        "GET /api/v2/tickets/{id}",
        "GET /api/v2/tickets/{id}/conversations",
    ];
    println!(
        "{} tickets before the connection ({imported} queued for import), credits from the connect until the backfill is done:",
        k.backfill_tickets
    );
    let rows: Vec<Vec<String>> = by_endpoint
        .iter()
        .map(|(e, (calls, credits))| {
            vec![
                e.clone(),
                calls.to_string(),
                credits.to_string(),
                if backfill_endpoints.contains(&e.as_str()) {
                    f(*credits as f64 / imported.max(1) as f64, 2)
                } else {
                    "(connect)".to_string()
                },
            ]
        })
        .collect();
    print_table(
        &["endpoint", "calls", "credits", "per imported ticket"],
        &rows,
    );
    let credits: u32 = by_endpoint
        .iter()
        .filter(|(e, _)| backfill_endpoints.contains(&e.as_str()))
        .map(|(_, (_, c))| c)
        .sum();
    Some((credits, imported))
}

async fn settle_or_warn(admin: &Admin, simc: &SimClient, timeout: Duration, phase: usize) {
    if !admin.settle(simc, timeout).await {
        println!("  (phase {phase}: the engine did not settle within {timeout:?})");
    }
}

/// `/api/v2/tickets/17/conversations` → `/api/v2/tickets/{id}/conversations`.
fn path_template(path: &str) -> String {
    path.split('/')
        .map(|s| {
            if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
                "{id}"
            } else {
                s
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

fn ticket_of(path: &str) -> Option<u64> {
    path.strip_prefix("/api/v2/tickets/")?
        .split('/')
        .next()?
        .parse()
        .ok()
}
