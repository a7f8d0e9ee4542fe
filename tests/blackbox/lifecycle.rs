//! contract §2.4–§2.6, §4.6, §6 and the rate budget of §8: handoff routing and fallback,
//! backfill, disconnect, missed-webhook recovery, staying inside Freshdesk's limits.

use crate::harness::*;
use chrono::{Duration as Days, Utc};
use freshdesk_sim::{BulkTickets, ConfigUpdate, DeliveryKnobs, FaultsConfig, Force403, NewTicket};
use reqwest::Method;
use serde_json::{json, Value};
use std::time::Duration;
use testkit::assert_quiet_for;

const HUMAN_PLEASE: &str = "Can I talk to a human?";

async fn handed_off(t: &TestApp, org: &str, id: u64) -> Value {
    let s = t
        .wait_session(org, id, "handed off", |s| s["state"] == "handed_off")
        .await;
    t.settle().await;
    s
}

async fn routing_puts(t: &TestApp, id: u64) -> Vec<freshdesk_sim::RecordedRequest> {
    t.sim_calls("PUT", &format!("/api/v2/tickets/{id}")).await
}

#[tokio::test]
async fn each_routing_sends_exactly_its_update_in_one_put() {
    let cases = [
        (
            json!({"routing": "automation", "marker_field": MARKER_FIELD}),
            json!({"responder_id": null, "status": 2, "custom_fields": {MARKER_FIELD: true}}),
            Value::Null,
        ),
        (
            json!({"routing": "agent", "agent_id": ALICE_ID, "marker_field": MARKER_FIELD}),
            json!({"responder_id": ALICE_ID, "status": 2, "custom_fields": {MARKER_FIELD: true}}),
            json!(ALICE_ID),
        ),
        (
            json!({"routing": "group", "group_id": BILLING_GROUP, "marker_field": MARKER_FIELD}),
            json!({"group_id": BILLING_GROUP, "responder_id": null, "status": 2, "custom_fields": {MARKER_FIELD: true}}),
            json!(BILLING_GROUP),
        ),
    ];
    for (handoff, expected, target) in cases {
        let t = TestApp::spawn().await;
        let org = t.connected_with_webhook(json!({"handoff": handoff})).await;
        let mut ticket = NewTicket::new("Help", HUMAN_PLEASE);
        ticket.responder_id = Some(AI_AGENT_ID);
        ticket.status = Some(3);
        let id = t.new_ticket_with(ticket).await;
        let s = handed_off(&t, &org, id).await;
        assert_eq!(s["handoff"]["routing"], handoff["routing"]);
        assert_eq!(s["handoff"]["target"], target);
        assert_eq!(s["handoff"]["fallback_used"], false);
        let puts = routing_puts(&t, id).await;
        assert_eq!(puts.len(), 1, "one routing PUT");
        assert_eq!(puts[0].body, expected);
        let after = t.sim_ticket(id).await;
        assert_ne!(after["responder_id"], AI_AGENT_ID, "never left with the AI");
        assert_eq!(after["status"], 2);
        assert_eq!(after["custom_fields"][MARKER_FIELD], true);
    }
}

#[tokio::test]
async fn unassign_routing_takes_the_ticket_away_from_the_ai_agent() {
    let t = TestApp::spawn().await;
    let org = t.connected_with_webhook(json!({})).await;
    let mut ticket = NewTicket::new("Help", HUMAN_PLEASE);
    ticket.responder_id = Some(AI_AGENT_ID);
    let id = t.new_ticket_with(ticket).await;
    handed_off(&t, &org, id).await;
    assert_eq!(t.sim_ticket(id).await["responder_id"], Value::Null);
}

#[tokio::test]
async fn a_deleted_handoff_agent_falls_back_to_unassign_with_the_marker() {
    let t = TestApp::spawn().await;
    let org = t
        .connected_with_webhook(json!({"handoff": {"routing": "agent", "agent_id": ALICE_ID, "marker_field": MARKER_FIELD}}))
        .await;
    t.simc.delete_agent(ALICE_ID).await.unwrap();
    let id = t.new_ticket("Help", HUMAN_PLEASE).await;
    let s = handed_off(&t, &org, id).await;
    let s = if s["handoff"]["fallback_used"] == true {
        s
    } else {
        t.session(&org, id).await.body
    };
    assert_eq!(s["handoff"]["fallback_used"], true);
    assert!(
        s["handoff"]["detail"]
            .as_str()
            .unwrap()
            .contains("responder_id"),
        "{}",
        s["handoff"]
    );
    let puts = routing_puts(&t, id).await;
    assert_eq!(puts.len(), 2);
    assert_eq!(puts[0].status, 400);
    assert_eq!(
        puts[1].body,
        json!({"responder_id": null, "status": 2, "custom_fields": {MARKER_FIELD: true}})
    );
    assert_eq!(puts[1].status, 200);
    let after = t.sim_ticket(id).await;
    assert_eq!(after["responder_id"], Value::Null);
    assert_eq!(after["custom_fields"][MARKER_FIELD], true);
}

#[tokio::test]
async fn a_removed_handoff_group_falls_back_to_unassign_with_the_marker() {
    let t = TestApp::spawn().await;
    let org = t
        .connected_with_webhook(json!({"handoff": {"routing": "group", "group_id": BILLING_GROUP, "marker_field": MARKER_FIELD}}))
        .await;
    t.simc.delete_group(BILLING_GROUP).await.unwrap();
    let id = t.new_ticket("Help", HUMAN_PLEASE).await;
    handed_off(&t, &org, id).await;
    let s = t.session(&org, id).await.body;
    assert_eq!(s["handoff"]["fallback_used"], true);
    assert!(
        s["handoff"]["detail"]
            .as_str()
            .unwrap()
            .contains("group_id"),
        "{}",
        s["handoff"]
    );
    let puts = routing_puts(&t, id).await;
    assert_eq!(
        puts.last().unwrap().body,
        json!({"responder_id": null, "status": 2, "custom_fields": {MARKER_FIELD: true}})
    );
}

#[tokio::test]
async fn after_a_handoff_the_thread_and_status_sync_but_the_ai_is_silent() {
    let t = TestApp::spawn().await;
    let org = t.connected_with_webhook(json!({})).await;
    let id = t.new_ticket("Help", HUMAN_PLEASE).await;
    handed_off(&t, &org, id).await;
    t.simc
        .customer_reply(id, "How do I reset my password?")
        .await
        .unwrap();
    t.simc.set_status(id, 3).await.unwrap();
    let s = t
        .wait_session(&org, id, "synced", |s| {
            s["freshdesk_status"]["id"] == 3 && s["messages"].as_array().unwrap().len() == 3
        })
        .await;
    assert_eq!(s["state"], "handed_off");
    t.settle().await;
    assert_eq!(t.ai_posts(id).await.len(), 1, "only the handoff note");
}

async fn wait_backfill_done(t: &TestApp, org: &str) -> Value {
    eventually("backfill done", Duration::from_secs(60), || async {
        let b = t.connection(org).await.body["backfill"].clone();
        (b["state"] == "done").then_some(b)
    })
    .await
}

async fn sessions(t: &TestApp, org: &str) -> Vec<Value> {
    let mut all = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let q = cursor
            .as_ref()
            .map(|c| format!("&cursor={c}"))
            .unwrap_or_default();
        let page = t
            .call(
                Method::GET,
                &format!("/api/v1/orgs/{org}/sessions?limit=200{q}"),
                None,
            )
            .await
            .body;
        all.extend(page["items"].as_array().unwrap().iter().cloned());
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => return all,
        }
    }
}

#[tokio::test]
async fn the_first_connect_imports_open_and_pending_tickets_of_the_window_as_history() {
    let t = TestApp::spawn().await;
    let recent = t
        .simc
        .bulk_tickets(&BulkTickets {
            count: 8,
            status_cycle: Some(vec![2, 3, 4, 5]),
            updated_at_start: Some(Utc::now() - Days::days(100)),
            step_secs: Some(86_400),
            conversations_per_ticket: Some(1),
            ..Default::default()
        })
        .await
        .unwrap();
    let too_old = t
        .simc
        .bulk_tickets(&BulkTickets {
            count: 2,
            status_cycle: Some(vec![2]),
            updated_at_start: Some(Utc::now() - Days::days(200)),
            step_secs: Some(60),
            ..Default::default()
        })
        .await
        .unwrap();
    t.simc.clear_requests().await.unwrap();
    let org = t.connected_with_webhook(json!({})).await;
    let progress = wait_backfill_done(&t, &org).await;
    t.settle().await;
    let imported: Vec<u64> = sessions(&t, &org)
        .await
        .iter()
        .map(|s| s["ticket_id"].as_u64().unwrap())
        .collect();
    let mut expected: Vec<u64> = recent
        .iter()
        .enumerate()
        .filter(|(i, _)| i % 4 < 2)
        .map(|(_, id)| *id)
        .collect();
    let mut got = imported.clone();
    got.sort();
    expected.sort();
    assert_eq!(got, expected, "open and pending of the last 180 days only");
    assert!(too_old.iter().all(|id| !imported.contains(id)));
    for id in &expected {
        let s = t.session(&org, *id).await.body;
        assert_eq!(s["imported"], true);
        assert_eq!(
            s["messages"].as_array().unwrap().len(),
            2,
            "description + its conversation"
        );
    }
    let writes: Vec<_> = t
        .sim_requests()
        .await
        .into_iter()
        .filter(|r| r.method != "GET")
        .collect();
    assert!(
        writes.is_empty(),
        "the backfill never writes to Freshdesk: {writes:?}"
    );
    assert!(progress["pages_fetched"].as_u64().unwrap() >= 1);
    assert_eq!(progress["tickets_queued"], expected.len() as u64);
    let inspect = t.call(Method::GET, "/api/v1/inspect", None).await.body;
    assert_eq!(inspect["orgs"][0]["backfill"]["state"], "done");
}

#[tokio::test]
async fn an_imported_ticket_is_answered_when_the_customer_writes_again() {
    let t = TestApp::spawn().await;
    let ids = t
        .simc
        .bulk_tickets(&BulkTickets {
            count: 1,
            status_cycle: Some(vec![2]),
            updated_at_start: Some(Utc::now() - Days::days(2)),
            ..Default::default()
        })
        .await
        .unwrap();
    let org = t.connected_with_webhook(json!({})).await;
    wait_backfill_done(&t, &org).await;
    t.settle().await;
    assert!(t.ai_posts(ids[0]).await.is_empty());
    t.simc
        .customer_reply(ids[0], "How do I reset my password?")
        .await
        .unwrap();
    t.wait_ai_posts(ids[0], 1).await;
}

#[tokio::test]
async fn the_backfill_passes_freshdesks_page_cap() {
    let t = TestApp::spawn().await;
    t.simc
        .set_config(&ConfigUpdate {
            max_pages: Some(2),
            rate_limit_per_min: Some(100_000),
            ..Default::default()
        })
        .await
        .unwrap();
    t.simc
        .bulk_tickets(&BulkTickets {
            count: 450,
            status_cycle: Some(vec![2]),
            updated_at_start: Some(Utc::now() - Days::days(20)),
            step_secs: Some(60),
            ..Default::default()
        })
        .await
        .unwrap();
    let org = t.connected_with_webhook(json!({})).await;
    let progress = wait_backfill_done(&t, &org).await;
    t.settle().await;
    assert_eq!(sessions(&t, &org).await.len(), 450);
    assert!(progress["pages_fetched"].as_u64().unwrap() >= 5);
    let page3 = t
        .sim_requests()
        .await
        .into_iter()
        .filter(|r| r.path == "/api/v2/tickets" && r.query.contains("page=3"))
        .count();
    assert!(page3 <= 1, "the engine hops instead of paging past the cap");
}

#[tokio::test]
async fn the_backfill_resumes_after_a_restart_and_is_not_repeated_on_reconnect() {
    let mut t = TestApp::spawn().await;
    t.simc
        .bulk_tickets(&BulkTickets {
            count: 1000,
            status_cycle: Some(vec![5, 5, 5, 5, 5, 5, 5, 5, 5, 2]),
            updated_at_start: Some(Utc::now() - Days::days(20)),
            step_secs: Some(60),
            ..Default::default()
        })
        .await
        .unwrap();
    t.simc
        .set_faults(&FaultsConfig {
            latency_ms: Some(150),
            ..Default::default()
        })
        .await
        .unwrap();
    let org = t.connected_with_webhook(json!({})).await;
    eventually("a few pages", Duration::from_secs(30), || async {
        let b = t.connection(&org).await.body["backfill"].clone();
        (b["pages_fetched"].as_u64().unwrap_or(0) >= 3 && b["state"] == "running").then_some(())
    })
    .await;
    t.restart();
    t.simc.clear_faults().await.unwrap();
    let progress = wait_backfill_done(&t, &org).await;
    t.settle().await;
    assert_eq!(sessions(&t, &org).await.len(), 100);
    let lists = t
        .sim_calls("GET", "/api/v2/tickets")
        .await
        .into_iter()
        .filter(|r| r.path == "/api/v2/tickets")
        .count();
    assert!(
        lists <= 10 + 2,
        "resumed, not restarted from page 1: {lists} list calls"
    );
    assert!(progress["pages_fetched"].as_u64().unwrap() >= 10);

    t.disconnect(&org).await;
    let r = t.save(&org, json!({"domain": t.sim_domain()})).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["backfill"]["state"], "done");
    t.settle().await;
    let lists_after = t
        .sim_calls("GET", "/api/v2/tickets")
        .await
        .into_iter()
        .filter(|r| r.path == "/api/v2/tickets")
        .count();
    assert_eq!(lists_after, lists, "no second backfill");
}

#[tokio::test]
async fn a_disconnect_cancels_queued_work_and_nothing_is_posted_afterwards() {
    let t = TestApp::spawn().await;
    let org = t.connected_with_webhook(json!({})).await;
    t.simc
        .set_faults(&FaultsConfig {
            latency_ms: Some(700),
            ..Default::default()
        })
        .await
        .unwrap();
    let mut ids = Vec::new();
    for i in 0..3 {
        ids.push(
            t.new_ticket(&format!("P{i}"), "How do I reset my password?")
                .await,
        );
    }
    // Wait until the webhooks are in (the engine is now busy re-reading slowly).
    eventually("webhooks acknowledged", Duration::from_secs(10), || async {
        let d = t.simc.deliveries().await.unwrap();
        (d.iter().filter(|d| d.status == Some(202)).count() >= 3).then_some(())
    })
    .await;
    assert_eq!(t.disconnect(&org).await.status, 200);
    let marker = t.last_sim_seq().await;
    t.simc.clear_faults().await.unwrap();
    let writes_after = || async {
        let mut writes = t.sim_requests_after(marker).await;
        writes.retain(|r| r.method != "GET");
        writes
    };
    assert_quiet_for(
        Duration::from_secs(3),
        "nothing posted after the disconnect",
        || async {
            let writes = writes_after().await;
            writes.is_empty().then_some(()).ok_or(format!("{writes:?}"))
        },
    )
    .await;
    t.settle().await;
    let writes_after = writes_after().await;
    assert!(
        writes_after.is_empty(),
        "nothing posted after the disconnect: {writes_after:?}"
    );
    let hook = t.webhook_url(&org).await;
    let r = t
        .http
        .post(&hook)
        .json(&json!({"ticketId": ids[0]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 410);
}

/// A 20 credits/min account of which ticketsync may use half, a connected org, and `tickets`
/// new tickets; also the last simulator request before those tickets.
async fn small_rate_limit_world(tickets: usize) -> (TestApp, String, u64) {
    let t = TestApp::spawn_with(&[("TICKETSYNC__FRESHDESK__RATE_LIMIT_SHARE", "0.5".into())]).await;
    t.simc
        .set_config(&ConfigUpdate {
            rate_limit_per_min: Some(20),
            ..Default::default()
        })
        .await
        .unwrap();
    let org = t.connected_with_webhook(json!({})).await;
    let marker = t.last_sim_seq().await;
    for i in 0..tickets {
        t.new_ticket(&format!("P{i}"), "How do I reset my password?")
            .await;
    }
    (t, org, marker)
}

#[tokio::test]
async fn a_disconnect_stops_reads_waiting_for_the_rate_budget() {
    let (t, org, marker) = small_rate_limit_world(15).await;
    eventually(
        "the budget to be used up",
        Duration::from_secs(20),
        || async {
            let budget = t.call(Method::GET, "/api/v1/inspect", None).await.body["orgs"][0]
                ["rate_budget"]
                .clone();
            (budget["remaining"] == 0 && budget["waiting"].as_u64().unwrap_or(0) > 0).then_some(())
        },
    )
    .await;
    assert_eq!(t.disconnect(&org).await.status, 200);
    let at_disconnect = t.last_sim_seq().await;
    assert!(
        at_disconnect > marker,
        "the engine was calling Freshdesk before the disconnect"
    );
    t.settle().await;
    assert_quiet_for(
        Duration::from_secs(2),
        "no call after the disconnect but one in flight",
        || async {
            let after = t.sim_requests_after(at_disconnect).await;
            (after.len() <= 1).then_some(()).ok_or(format!("{after:?}"))
        },
    )
    .await;
    let after = t.sim_requests_after(at_disconnect).await;
    assert!(
        after.len() <= 1,
        "no call after the disconnect but one in flight: {after:?}"
    );
    let budget =
        t.call(Method::GET, "/api/v1/inspect", None).await.body["orgs"][0]["rate_budget"].clone();
    assert_eq!(
        budget["waiting"], 0,
        "nobody waits for a disconnected org: {budget}"
    );
}

#[tokio::test]
async fn the_sweep_recovers_dropped_webhooks() {
    let t =
        TestApp::spawn_with(&[("TICKETSYNC__ENGINE__RECONCILE_INTERVAL_SECS", "1".into())]).await;
    let org = t.connected_with_webhook(json!({})).await;
    let answered = t.new_ticket("Before", "How do I reset my password?").await;
    t.wait_ai_posts(answered, 1).await;
    t.simc
        .set_delivery(&DeliveryKnobs {
            drop_rate: Some(1.0),
            ..Default::default()
        })
        .await
        .unwrap();
    let missed = t.new_ticket("Missed", "How do I reset my password?").await;
    t.simc
        .customer_reply(answered, "and on mobile, how do I reset my password?")
        .await
        .unwrap();
    t.wait_ai_posts(missed, 1).await;
    t.wait_ai_posts(answered, 2).await;
    let inspect = t.call(Method::GET, "/api/v1/inspect", None).await.body;
    let sweep = &inspect["orgs"][0]["sweep"];
    assert!(sweep["tickets_requeued"].as_u64().unwrap() >= 2, "{sweep}");
    assert!(sweep["last_run_at"].is_string());
    let _ = org;
}

#[tokio::test]
async fn the_engine_stays_inside_its_share_of_a_small_rate_limit() {
    let (t, org, marker) = small_rate_limit_world(8).await;
    let engine_calls = || t.sim_requests_after(marker);
    eventually(
        "the budget to be used up",
        Duration::from_secs(20),
        || async { (engine_calls().await.len() >= 8).then_some(()) },
    )
    .await;
    assert_quiet_for(
        Duration::from_secs(4),
        "at most 50% of 20 per minute, never rate limited",
        || async {
            let calls = engine_calls().await;
            calls.len() <= 10 && calls.iter().all(|r| r.status != 429)
        },
    )
    .await;
    let calls = engine_calls().await;
    assert!(
        calls.len() <= 10,
        "at most 50% of 20 per minute: {} calls",
        calls.len()
    );
    assert!(calls.iter().all(|r| r.status != 429), "never rate limited");
    let inspect = t.call(Method::GET, "/api/v1/inspect", None).await.body;
    let budget = &inspect["orgs"][0]["rate_budget"];
    assert_eq!(budget["limit_per_min"], 10, "{budget}");
    assert_eq!(budget["remaining"], 0, "{budget}");
    let _ = org;
}

/// How much closer two arrival stamps of the simulator's request log may seem than the
/// service's pause between them: the stamps are wall-clock, the pause is monotonic (and starts
/// when the service reads the 429, after the simulator stamped it).
const CLOCK_GRANULARITY: Duration = Duration::from_millis(20);

#[tokio::test]
async fn a_429_pauses_the_org_and_the_work_completes_after_retry_after() {
    const RETRY_AFTER_SECS: u64 = 1;
    let t = TestApp::spawn().await;
    let org = t.connected_with_webhook(json!({})).await;
    // Only the ticket's own calls meet the 429s (not the backfill's list, which would pause
    // that endpoint only).
    wait_backfill_done(&t, &org).await;
    t.settle().await;
    let before = t.last_sim_seq().await;
    t.simc
        .set_faults(&FaultsConfig {
            force_429: Some(freshdesk_sim::Force429 {
                count: 3,
                retry_after_secs: RETRY_AFTER_SECS,
            }),
            ..Default::default()
        })
        .await
        .unwrap();
    let id = t.new_ticket("P", "How do I reset my password?").await;
    t.wait_ai_posts(id, 1).await;
    t.settle().await;
    assert_eq!(t.ai_posts(id).await.len(), 1);

    // The simulator's log: the three 429s were answered, and after each the next call to
    // Freshdesk came no earlier than Retry-After.
    let mut calls = t.sim_requests_after(before).await;
    calls.sort_by_key(|r| r.seq);
    let log: Vec<String> = calls
        .iter()
        .map(|r| {
            format!(
                "#{} {} {} {} at {}",
                r.seq, r.status, r.method, r.path, r.at
            )
        })
        .collect();
    let limited: Vec<usize> = (0..calls.len())
        .filter(|&i| calls[i].status == 429)
        .collect();
    assert_eq!(limited.len(), 3, "three 429s answered: {log:#?}");
    let retry_after = Duration::from_secs(RETRY_AFTER_SECS);
    for i in limited {
        let next = calls
            .get(i + 1)
            .unwrap_or_else(|| panic!("a call after the 429 #{}: {log:#?}", calls[i].seq));
        let gap = (next.at - calls[i].at).to_std().unwrap_or_default();
        assert!(
            gap + CLOCK_GRANULARITY >= retry_after,
            "#{} came {gap:?} after the 429 #{}, before its Retry-After of {retry_after:?}: \
             {log:#?}",
            next.seq,
            calls[i].seq
        );
    }
}

#[tokio::test]
async fn a_backfill_refused_by_freshdesk_shows_its_error_retries_and_finishes() {
    let t = TestApp::spawn().await;
    let ids = t
        .simc
        .bulk_tickets(&BulkTickets {
            count: 3,
            status_cycle: Some(vec![2]),
            updated_at_start: Some(Utc::now() - Days::days(2)),
            ..Default::default()
        })
        .await
        .unwrap();
    // The agent lost the permission to list tickets, for a while.
    t.simc
        .set_faults(&FaultsConfig {
            force_403: Some(Force403 {
                count: 2,
                path: Some("/api/v2/tickets".into()),
            }),
            ..Default::default()
        })
        .await
        .unwrap();
    let org = t.connected_with_webhook(json!({})).await;
    let refused = eventually("the refusal shown", Duration::from_secs(20), || async {
        let b = t.connection(&org).await.body["backfill"].clone();
        b["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("access_denied"))
            .then_some(b)
    })
    .await;
    assert_ne!(refused["state"], "done", "{refused}");
    let progress = wait_backfill_done(&t, &org).await;
    assert_eq!(progress["last_error"], Value::Null, "{progress}");
    t.settle().await;
    let mut imported: Vec<u64> = sessions(&t, &org)
        .await
        .iter()
        .map(|s| s["ticket_id"].as_u64().unwrap())
        .collect();
    imported.sort();
    assert_eq!(imported, ids);
}

#[tokio::test]
async fn a_backfill_held_by_the_tickets_list_sub_limit_does_not_delay_live_replies() {
    let t = TestApp::spawn().await;
    t.simc
        .bulk_tickets(&BulkTickets {
            count: 250,
            status_cycle: Some(vec![2]),
            updated_at_start: Some(Utc::now() - Days::days(2)),
            step_secs: Some(60),
            ..Default::default()
        })
        .await
        .unwrap();
    // One list call a minute: the backfill's second page is refused for up to a minute.
    t.simc
        .set_config(&ConfigUpdate {
            tickets_list_per_min: Some(1),
            ..Default::default()
        })
        .await
        .unwrap();
    let org = t.connected_with_webhook(json!({})).await;
    eventually(
        "a list call refused by the sub-limit",
        Duration::from_secs(30),
        || async {
            t.sim_calls("GET", "/api/v2/tickets")
                .await
                .iter()
                .any(|r| r.path == "/api/v2/tickets" && r.status == 429)
                .then_some(())
        },
    )
    .await;
    let id = t.new_ticket("Live", "How do I reset my password?").await;
    t.wait_ai_posts(id, 1).await;
    let backfill = t.connection(&org).await.body["backfill"].clone();
    assert_ne!(
        backfill["state"], "done",
        "answered while the backfill waits: {backfill}"
    );
}

#[tokio::test]
async fn live_tickets_are_answered_promptly_while_a_large_backfill_uses_the_budget() {
    let t = TestApp::spawn().await;
    t.simc
        .bulk_tickets(&BulkTickets {
            count: 1000,
            status_cycle: Some(vec![2]),
            updated_at_start: Some(Utc::now() - Days::days(20)),
            step_secs: Some(60),
            ..Default::default()
        })
        .await
        .unwrap();
    let org = t.connected_with_webhook(json!({})).await;
    // 1000 imports need 2000 calls: far more than a minute of the budget (560 of 700).
    eventually(
        "the backfill to use most of the budget",
        Duration::from_secs(30),
        || async {
            let budget = t.call(Method::GET, "/api/v1/inspect", None).await.body["orgs"][0]
                ["rate_budget"]
                .clone();
            (budget["used"].as_u64().unwrap_or(0) >= 400).then_some(())
        },
    )
    .await;
    let mut live = Vec::new();
    for i in 0..3 {
        live.push(
            t.new_ticket(&format!("Live {i}"), "How do I reset my password?")
                .await,
        );
    }
    for id in live {
        t.wait_ai_posts(id, 1).await;
    }
    let imported = sessions(&t, &org)
        .await
        .iter()
        .filter(|s| s["imported"] == true)
        .count();
    assert!(imported < 1000, "answered while the backfill runs");
}

#[tokio::test]
async fn a_service_stopped_in_process_can_be_started_again_on_its_storage_at_once() {
    // HTTP worker threads drop their copy of the store after the service thread ended; a
    // restart must not find the database still locked.
    let mut t = TestApp::spawn().await;
    let org = t.connected_with_webhook(json!({})).await;
    for round in 0..10 {
        let hook = t.webhook_url(&org).await;
        let accepted = t
            .http
            .post(&hook)
            .json(&json!({"ticketId": format!("{}", 9000 + round)}))
            .send()
            .await
            .unwrap();
        assert_eq!(accepted.status(), 202, "round {round}");
        t.restart();
    }
    assert_eq!(t.connection(&org).await.status, 200);
}
