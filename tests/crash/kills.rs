//! SIGKILL at random points of the flow, then restart: acknowledged webhooks are never lost
//! and no customer ever sees a second AI answer.

use crate::support::*;
use freshdesk_sim::{DeliveryKnobs, FaultsConfig, NewTicket, SimConfig, WebhookConfig};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::json;
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

/// (inbox_depth, tickets with pending effects) of `GET /api/v1/inspect`.
fn queued_work(inspect: &serde_json::Value) -> (u64, u64) {
    (
        inspect["inbox_depth"].as_u64().unwrap_or(0),
        inspect["pending_effects"].as_u64().unwrap_or(0),
    )
}

const KILL_CYCLES: usize = 15;
const TICKETS_PER_CYCLE: usize = 8;
const KILL_SEED: u64 = 0x7E57_C4A5_0001;
/// Freshdesk answers each call this late, so a ticket's flow (re-read, answer, reply, tags)
/// spans a window a random kill can land in.
const API_LATENCY_MS: u64 = 25;

#[tokio::test]
async fn every_acknowledged_ticket_is_answered_exactly_once_across_repeated_sigkills() {
    let seed = seed(KILL_SEED);
    println!("kill schedule seed: {seed} (replay with CRASH_SEED={seed})");
    let mut rng = StdRng::seed_from_u64(seed);
    // 120 tickets in a few seconds, each read and written several times: a budget large
    // enough that the service's rate limiting (tested elsewhere) does not pause it here.
    let mut w = World::start_with(SimConfig {
        rate_limit_per_min: 10_000,
        ..SimConfig::default()
    })
    .await;
    w.simc
        .set_faults(&FaultsConfig {
            latency_ms: Some(API_LATENCY_MS),
            ..FaultsConfig::default()
        })
        .await
        .expect("latency set");
    // Freshdesk delivers at least once and in no particular order.
    w.simc
        .set_delivery(&DeliveryKnobs {
            duplicate_rate: Some(0.2),
            reorder_window_ms: Some(30),
            seed: Some(seed),
            ..DeliveryKnobs::default()
        })
        .await
        .expect("delivery knobs set");
    let started = Instant::now();
    let mut tickets: Vec<u64> = Vec::new();
    let mut found_on_restart = Vec::new();

    for cycle in 0..KILL_CYCLES {
        if !w.svc.is_running() {
            if rng.gen_bool(0.3) {
                // Killed again while opening storage and recovering the queued work.
                let after = Duration::from_millis(rng.gen_range(0..=60));
                w.svc.spawn();
                tokio::time::sleep(after).await;
                w.svc.kill();
                println!(
                    "cycle {cycle}: SIGKILL {} ms after spawning",
                    after.as_millis()
                );
            }
            w.start_service().await;
            found_on_restart.push(queued_work(&w.inspect().await));
        }
        let kill_after = Duration::from_millis(rng.gen_range(0..=300));
        let gaps: Vec<Duration> = (0..TICKETS_PER_CYCLE)
            .map(|_| Duration::from_millis(rng.gen_range(0..=40)))
            .collect();
        let simc = &w.simc;
        let svc = &mut w.svc;
        let batch_start = Instant::now();
        let batch = async {
            let mut ids = Vec::new();
            for (i, gap) in gaps.into_iter().enumerate() {
                ids.push(new_faq_ticket(simc, &format!("Password {cycle}.{i}")).await);
                tokio::time::sleep(gap).await;
            }
            ids
        };
        let killer = async {
            tokio::time::sleep(kill_after).await;
            svc.kill();
            batch_start.elapsed()
        };
        let (ids, killed_at) = tokio::join!(batch, killer);
        println!(
            "cycle {cycle}: tickets {:?}..={:?}, SIGKILL at {} ms (batch took {} ms)",
            ids.first(),
            ids.last(),
            killed_at.as_millis(),
            batch_start.elapsed().as_millis()
        );
        tickets.extend(ids);
    }

    w.start_service().await;
    found_on_restart.push(queued_work(&w.inspect().await));
    println!("right after each restart (inbox_depth, tickets with pending effects): {found_on_restart:?}");
    // Deliveries still being retried may be acknowledged later: poll until every ticket
    // acknowledged so far has its answer, then let everything settle.
    eventually(
        "every acknowledged ticket to be answered",
        Duration::from_secs(60),
        || async {
            let acked = acknowledged(&w.deliveries().await);
            let counts = w.ai_post_counts(&tickets).await;
            let missing: Vec<u64> = acked
                .iter()
                .copied()
                .filter(|id| counts.get(id).copied().unwrap_or(0) == 0)
                .collect();
            if missing.is_empty() {
                Ok(())
            } else {
                Err(format!("acknowledged but unanswered: {missing:?}"))
            }
        },
    )
    .await;
    let answered_at = started.elapsed();
    w.settle(Duration::from_secs(60)).await;
    println!(
        "all acknowledged tickets answered at {:.1} s, settled at {:.1} s",
        answered_at.as_secs_f64(),
        started.elapsed().as_secs_f64()
    );

    let deliveries = w.deliveries().await;
    let acked = acknowledged(&deliveries);
    let requests = w.requests().await;
    let posted = applied_replies(&requests);
    let counts = w.ai_post_counts(&tickets).await;
    let mut failures = Vec::new();
    for &id in &tickets {
        let posts = w.ai_posts(id).await;
        let replies = posted.get(&id).copied().unwrap_or(0);
        let expected_max = 1;
        if posts.len() > expected_max || replies > expected_max {
            failures.push(format!(
                "ticket {id}: {} AI posts, {replies} applied POST …/reply",
                posts.len()
            ));
        }
        if acked.contains(&id) && (posts.len() != 1 || replies != 1) {
            failures.push(format!(
                "acknowledged ticket {id}: {} AI posts, {replies} applied POST …/reply (want 1)",
                posts.len()
            ));
        }
        for (private, body) in &posts {
            if *private || !body.contains(FAQ_ANSWER) {
                failures.push(format!(
                    "ticket {id}: unexpected AI post (private {private}): {body}"
                ));
            }
        }
        if acked.contains(&id) {
            let tags = w.simc.get_ticket(id).await.expect("ticket")["tags"].clone();
            if tags != json!(["opencx", "opencx_autopilot"]) {
                failures.push(format!("ticket {id}: tags {tags}"));
            }
            let (status, session) = w.session(id).await;
            let ai_messages = session["messages"]
                .as_array()
                .map_or(0, |m| m.iter().filter(|m| m["author"] == "ai").count());
            if status != 200 || ai_messages != 1 {
                failures.push(format!(
                    "ticket {id}: session {status} with {ai_messages} AI messages: {session}"
                ));
            }
        }
    }
    let unacked: BTreeSet<u64> = tickets
        .iter()
        .copied()
        .filter(|id| !acked.contains(id))
        .collect();
    let retried = deliveries.iter().filter(|d| d.attempts > 1).count();
    let log = w.svc.log();
    println!(
        "{} tickets, {} acknowledged, {} unacknowledged (answered: {}), {} AI posts, {} applied \
         replies; {} deliveries ({} retried); {} service starts; writes found already sent \
         (reconciled) over all processes: {}; {:.1} s",
        tickets.len(),
        acked.len(),
        unacked.len(),
        unacked.iter().filter(|id| counts[id] > 0).count(),
        counts.values().sum::<usize>(),
        posted.values().sum::<usize>(),
        deliveries.len(),
        retried,
        w.svc.starts(),
        log.matches("effect was already sent").count(),
        started.elapsed().as_secs_f64()
    );
    assert!(failures.is_empty(), "seed {seed}:\n{}", failures.join("\n"));
    assert!(
        acked.len() * 2 >= tickets.len(),
        "most tickets should be acknowledged (retries cover the down time): {} of {}",
        acked.len(),
        tickets.len()
    );
    w.assert_logs_clean();
}

/// Freshdesk's answer time in the tests that kill around one write: long enough to aim at.
const SLOW_API_MS: u64 = 1500;

/// One cycle of the "kill right after a write landed" tests: with a slow Freshdesk, open a
/// ticket, SIGKILL the service the moment the simulator has applied a `POST …/{suffix}` on it
/// (requests are recorded once answered), then restart at full speed and settle. Only this
/// ticket has work, so no other write is in flight at the kill. Returns the ticket and the
/// writes the restarted process found already sent.
async fn kill_right_after_a_write_landed(
    w: &mut World,
    ticket: NewTicket,
    suffix: &str,
    latency_ms: u64,
) -> (u64, u64) {
    w.simc
        .set_faults(&FaultsConfig {
            latency_ms: Some(latency_ms),
            ..FaultsConfig::default()
        })
        .await
        .expect("latency set");
    let id = w.simc.create_ticket(&ticket).await.expect("ticket created")["id"]
        .as_u64()
        .expect("ticket id");
    let path = format!("/api/v2/tickets/{id}/{suffix}");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let landed = w
            .requests()
            .await
            .iter()
            .any(|r| r.method == "POST" && r.path == path && r.status < 300);
        if landed {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "ticket {id}: no POST …/{suffix} applied within 20 s"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    w.kill();
    w.simc
        .set_faults(&FaultsConfig {
            latency_ms: Some(0),
            ..FaultsConfig::default()
        })
        .await
        .expect("latency cleared");
    w.start_service().await;
    w.wait_ai_posts(&[id], 1, Duration::from_secs(20)).await;
    w.settle(Duration::from_secs(20)).await;
    let reconciled = w.inspect().await["effects_reconciled"]
        .as_u64()
        .unwrap_or(0);
    (id, reconciled)
}

/// Without the rule firing on the AI's own writes, no webhook intake flushes storage between
/// a write landing and the kill: the write is most likely still pending in the store after
/// the restart, and must be reconciled rather than sent again.
async fn no_webhooks_for_api_changes(w: &World) {
    w.simc
        .set_webhook(&WebhookConfig {
            fire_on_api_changes: Some(false),
            ..WebhookConfig::to(w.webhook_url())
        })
        .await
        .expect("rules set");
}

#[tokio::test]
async fn a_kill_between_recording_and_sending_a_reply_does_not_send_it_twice() {
    let mut w = World::start().await;
    no_webhooks_for_api_changes(&w).await;
    let mut tickets = Vec::new();
    let mut reconciled = Vec::new();
    for cycle in 0..3 {
        let ticket = NewTicket::new(format!("Slow password {cycle}"), FAQ_QUESTION);
        let (id, found) =
            kill_right_after_a_write_landed(&mut w, ticket, "reply", SLOW_API_MS).await;
        tickets.push(id);
        reconciled.push(found);
    }

    let posted = applied_replies(&w.requests().await);
    let counts = w.ai_post_counts(&tickets).await;
    println!(
        "AI posts per ticket {counts:?}; applied replies {posted:?}; writes reconciled by each \
         restarted process: {reconciled:?}; ticketsync_effects_reconciled_total now: {:?}",
        w.metric("ticketsync_effects_reconciled_total").await
    );
    for &id in &tickets {
        assert_eq!(
            counts[&id], 1,
            "ticket {id}: exactly one AI answer; {counts:?}"
        );
        assert_eq!(
            posted.get(&id).copied().unwrap_or(0),
            1,
            "ticket {id}: exactly one applied POST …/reply; {posted:?}"
        );
        let (private, body) = &w.ai_posts(id).await[0];
        assert!(!private && body.contains(FAQ_ANSWER), "{body}");
        let (_, session) = w.session(id).await;
        let ai_messages = session["messages"]
            .as_array()
            .map_or(0, |m| m.iter().filter(|m| m["author"] == "ai").count());
        assert_eq!(ai_messages, 1, "ticket {id}: {session}");
    }
    w.assert_logs_clean();
}

#[tokio::test]
async fn a_kill_right_after_the_handoff_note_landed_does_not_post_it_twice() {
    let mut w = World::start().await;
    no_webhooks_for_api_changes(&w).await;
    let mut reconciled = Vec::new();
    for cycle in 0..2 {
        // Markup and entities in the customer's text end up in the note's summary: the
        // reconciliation must still recognise the note Freshdesk stored.
        let ticket = NewTicket::new(
            format!("Escalation {cycle}"),
            "I want to talk to a <b>human</b> &amp; \"now\": my order #12 &lt;A&gt; is late!",
        );
        let (id, found) = kill_right_after_a_write_landed(&mut w, ticket, "notes", 800).await;
        reconciled.push(found);
        let posts = w.ai_posts(id).await;
        assert_eq!(posts.len(), 1, "ticket {id}: one handoff note: {posts:?}");
        assert!(posts[0].0, "ticket {id}: the handoff note is private");
        assert!(posts[0].1.contains("customer_requested"), "{}", posts[0].1);
        let (_, session) = w.session(id).await;
        assert_eq!(session["state"], "handed_off", "ticket {id}: {session}");
        let ticket = w.simc.get_ticket(id).await.expect("ticket");
        assert_eq!(ticket["responder_id"], serde_json::Value::Null);
        assert_eq!(ticket["status"], 2);
    }
    println!("handoff notes reconciled by each restarted process: {reconciled:?}");
    w.assert_logs_clean();
}

#[tokio::test]
async fn a_reply_still_in_flight_when_the_service_is_killed_is_not_sent_again() {
    let mut w = World::start_via_proxy().await;
    w.simc
        .set_faults(&FaultsConfig {
            latency_ms: Some(SLOW_API_MS),
            ..FaultsConfig::default()
        })
        .await
        .expect("latency set");
    let id = w.new_faq_ticket("Slow password").await;
    let proxy = w.proxy.as_ref().expect("proxy");
    let reply_path = format!("/api/v2/tickets/{id}/reply");
    let deadline = Instant::now() + Duration::from_secs(20);
    let sent_at = loop {
        if let Some(r) = proxy
            .seen()
            .into_iter()
            .find(|r| r.method == "POST" && r.path == reply_path)
        {
            break r.at;
        }
        assert!(Instant::now() < deadline, "no reply sent within 20 s");
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    // The reply is on its way: Freshdesk answers it (and applies it) 1.5 s after it arrived.
    w.kill();
    let killed_after = sent_at.elapsed();
    assert!(
        applied_replies(&w.requests().await).is_empty(),
        "the reply is still in flight at the kill"
    );
    w.simc
        .set_faults(&FaultsConfig {
            latency_ms: Some(0),
            ..FaultsConfig::default()
        })
        .await
        .expect("latency cleared");
    w.start_service().await;
    let restarted_after = sent_at.elapsed();
    w.wait_ai_posts(&[id], 1, Duration::from_secs(20)).await;
    w.settle(Duration::from_secs(20)).await;

    let requests = w.requests().await;
    let replies: Vec<String> = requests
        .iter()
        .filter(|r| r.method == "POST" && r.path == reply_path)
        .map(|r| {
            format!(
                "seq {} at {} → {}",
                r.seq,
                r.at.format("%H:%M:%S%.3f"),
                r.status
            )
        })
        .collect();
    let posts = w.ai_posts(id).await;
    println!(
        "reply sent, SIGKILL {} ms later, ready again {} ms after the send; POST …/reply \
         requests: {replies:?}; AI posts: {}; reconciled after restart: {}",
        killed_after.as_millis(),
        restarted_after.as_millis(),
        posts.len(),
        w.inspect().await["effects_reconciled"]
    );
    assert_eq!(posts.len(), 1, "exactly one AI answer: {posts:?}");
    assert_eq!(applied_replies(&requests).get(&id), Some(&1), "{replies:?}");
    w.assert_logs_clean();
}
