//! Freshdesk misbehaving (5xx, client timeouts, forced 429s): every ticket is still answered,
//! once.

use crate::proxy::Hold;
use crate::support::*;
use freshdesk_sim::{FaultsConfig, Force429};
use std::time::{Duration, Instant};

const STORM_TICKETS: usize = 20;
const STORM_SEED: u64 = 0xFA17_5702;

#[tokio::test]
async fn a_freshdesk_fault_storm_still_answers_every_ticket_exactly_once() {
    let w = World::start().await;
    let seed = seed(STORM_SEED);
    println!("fault seed: {seed} (replay with CRASH_SEED={seed})");
    w.simc
        .set_faults(&FaultsConfig {
            error_rate: Some(0.2),
            timeout_rate: Some(0.05),
            // Longer than the service's request timeout: client-side timeouts.
            timeout_ms: Some(REQUEST_TIMEOUT_MS + 1000),
            force_429: Some(Force429 {
                count: 5,
                retry_after_secs: 1,
            }),
            seed: Some(seed),
            ..FaultsConfig::default()
        })
        .await
        .expect("faults set");
    let started = Instant::now();
    let mut tickets = Vec::new();
    for i in 0..STORM_TICKETS {
        tickets.push(w.new_faq_ticket(&format!("Stormy password {i}")).await);
    }
    w.wait_ai_posts(&tickets, 1, Duration::from_secs(90)).await;
    let answered_in = started.elapsed();
    // The storm passes: every ticket still backing off retries within the engine's longest
    // backoff (30 s) and finds Freshdesk healthy, so settling cannot depend on the dice.
    w.simc.clear_faults().await.expect("faults cleared");
    w.settle(Duration::from_secs(60)).await;

    let requests = w.requests().await;
    let status_count =
        |pred: &dyn Fn(u16) -> bool| requests.iter().filter(|r| pred(r.status)).count();
    let posted = applied_replies(&requests);
    let counts = w.ai_post_counts(&tickets).await;
    let inspect = w.inspect().await;
    println!(
        "{} tickets answered in {:.1} s (settled {:.1} s); {} API calls: {} 5xx (of which {} \
         504 timeouts), {} 429; events_failed {}, effects_reconciled {}",
        tickets.len(),
        answered_in.as_secs_f64(),
        started.elapsed().as_secs_f64(),
        requests.len(),
        status_count(&|s| s >= 500),
        status_count(&|s| s == 504),
        status_count(&|s| s == 429),
        inspect["events_failed"],
        inspect["effects_reconciled"],
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
        assert!(!private && body.contains(FAQ_ANSWER), "ticket {id}: {body}");
    }
    assert_eq!(inspect["parked_tickets"], 0, "{inspect}");
    w.assert_logs_clean();
}

#[tokio::test]
async fn a_reply_freshdesk_applies_after_the_client_timed_out_is_not_sent_again() {
    let w = World::start_via_proxy().await;
    let proxy = w.proxy.as_ref().expect("proxy");
    // The first reply of each ticket reaches Freshdesk 1.5 s after the service gave up on it.
    proxy.set_hold(Some(Hold {
        method: "POST".into(),
        path_suffix: "/reply".into(),
        hold: Duration::from_millis(REQUEST_TIMEOUT_MS + 1500),
        first_per_path_only: true,
    }));
    let mut tickets = Vec::new();
    for i in 0..2 {
        tickets.push(w.new_faq_ticket(&format!("Timed-out password {i}")).await);
    }
    w.wait_ai_posts(&tickets, 1, Duration::from_secs(30)).await;
    w.settle(Duration::from_secs(30)).await;

    let requests = w.requests().await;
    let posted = applied_replies(&requests);
    let counts = w.ai_post_counts(&tickets).await;
    let held: Vec<String> = proxy
        .seen()
        .iter()
        .filter(|r| !r.held.is_zero())
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    println!(
        "held past the client timeout: {held:?}; AI posts {counts:?}; applied replies \
         {posted:?}; reconciled {}",
        w.inspect().await["effects_reconciled"]
    );
    assert_eq!(
        held.len(),
        tickets.len(),
        "each ticket's first reply was held"
    );
    for &id in &tickets {
        assert_eq!(
            counts[&id], 1,
            "ticket {id}: exactly one AI answer; {counts:?}"
        );
        assert_eq!(posted.get(&id), Some(&1), "ticket {id}: {posted:?}");
    }
    w.assert_logs_clean();
}
