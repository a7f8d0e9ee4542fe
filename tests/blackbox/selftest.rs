//! The setup self-test (contract §12): `POST …/freshdesk/self-test` runs the checks in the
//! background against the simulator's real automation rules; `GET` shows the last report.

use crate::harness::{eventually, TestApp, AI_AGENT_ID, MARKER_FIELD};
use reqwest::Method;
use serde_json::{json, Value};
use std::time::Duration;

/// Seconds each rule's webhook is waited for in these tests.
const WAIT_SECS: u64 = 3;

async fn app() -> TestApp {
    TestApp::spawn_with(&[("TICKETSYNC__SELF_TEST__WAIT_SECS", WAIT_SECS.to_string())]).await
}

fn path(org: &str) -> String {
    format!("/api/v1/orgs/{org}/freshdesk/self-test")
}

/// Start a self-test and wait for its finished report.
async fn run_self_test(app: &TestApp, org: &str) -> Value {
    let started = app.call(Method::POST, &path(org), None).await;
    assert_eq!(started.status, 202, "{}", started.body);
    assert_eq!(started.body["state"], "running");
    assert!(started.body["steps"]
        .as_array()
        .unwrap()
        .iter()
        .all(|s| s["outcome"] == "pending"));
    finished(app, org).await
}

/// Poll `GET …/self-test` until the report is no longer running.
async fn finished(app: &TestApp, org: &str) -> Value {
    eventually(
        "the self-test finishes",
        Duration::from_secs(4 * WAIT_SECS + 20),
        || async {
            let r = app.call(Method::GET, &path(org), None).await;
            assert_eq!(r.status, 200, "{}", r.body);
            (r.body["state"] != "running").then_some(r.body)
        },
    )
    .await
}

/// The report's steps as (key, outcome, detail).
fn steps(report: &Value) -> Vec<(String, String, String)> {
    report["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["key"].as_str().unwrap().to_string(),
                s["outcome"].as_str().unwrap().to_string(),
                s["detail"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn step<'a>(report: &'a [(String, String, String)], key: &str) -> &'a (String, String, String) {
    report
        .iter()
        .find(|(k, _, _)| k == key)
        .unwrap_or_else(|| panic!("step {key} in {report:?}"))
}

/// "…: received after 1.4 s…"
fn received_in_time(detail: &str) -> bool {
    detail
        .split_once("received after ")
        .and_then(|(_, rest)| rest.split_once(" s"))
        .and_then(|(secs, _)| secs.parse::<f64>().ok())
        .is_some_and(|secs| secs <= WAIT_SECS as f64)
}

/// Check the test ticket in the simulator: closed, tagged, labelled, and never answered: the
/// only thing the AI agent posted is the self-test's own private note, no AI tags.
async fn assert_test_ticket_closed_and_unanswered(app: &TestApp, org: &str, ticket: u64) {
    let t = app.sim_ticket(ticket).await;
    assert_eq!(t["status"], 5, "closed: {t}");
    assert_eq!(t["deleted"], false);
    assert_eq!(t["tags"], json!(["ticketsync-self-test"]));
    assert!(t["subject"].as_str().unwrap().contains("self-test"));
    let posts = app.ai_posts(ticket).await;
    assert_eq!(posts.len(), 1, "{posts:?}");
    assert!(posts[0].0, "the note is private");
    assert!(posts[0].1.starts_with("ticketsync self-test"), "{posts:?}");
    let conversations = t["conversations"].as_array().unwrap();
    assert_eq!(conversations.len(), 1, "{conversations:?}");
    assert_eq!(conversations[0]["user_id"], AI_AGENT_ID);

    app.settle().await;
    let inspected = app.inspect_ticket(org, ticket).await;
    assert_eq!(inspected["gate"]["decision"], "ignored", "{inspected}");
    assert_eq!(inspected["gate"]["reason"], "self-test ticket");
    app.session(org, ticket)
        .await
        .assert_error(404, "session_not_found");
    // Nothing was written to the ticket after the self-test closed it.
    let writes: Vec<_> = app
        .sim_requests()
        .await
        .into_iter()
        .filter(|r| r.path.starts_with(&format!("/api/v2/tickets/{ticket}")) && r.method != "GET")
        .map(|r| (r.method, r.body))
        .collect();
    assert_eq!(
        writes.iter().map(|(m, _)| m.as_str()).collect::<Vec<_>>(),
        ["POST", "PUT", "PUT"],
        "{writes:?}"
    );
    assert_eq!(writes[1].1, json!({"status": 3}));
    assert_eq!(writes[2].1, json!({"status": 5}));
}

#[tokio::test]
async fn with_both_rules_on_the_self_test_passes_every_step_and_closes_its_unanswered_ticket() {
    let app = app().await;
    let org = app.connected_with_webhook(json!({})).await;
    let report = run_self_test(&app, &org).await;
    assert_eq!(report["state"], "passed", "{report}");
    assert!(report["finished_at"].is_string());
    let steps = steps(&report);
    assert_eq!(
        steps.iter().map(|(k, _, _)| k.as_str()).collect::<Vec<_>>(),
        [
            "agent_admin",
            "marker_field",
            "create_ticket",
            "rule1_created",
            "add_note",
            "rule2_note",
            "set_pending",
            "rule2_status",
            "close_ticket",
            "rate_budget"
        ]
    );
    assert!(
        steps.iter().all(|(_, outcome, _)| outcome == "ok"),
        "{steps:?}"
    );
    for (key, name) in [
        ("rule1_created", "Rule 1 (ticket created): received after "),
        ("rule2_note", "Rule 2 (note added): received after "),
        ("rule2_status", "Rule 2 (status changed): received after "),
    ] {
        let detail = &step(&steps, key).2;
        assert!(detail.starts_with(name), "{detail}");
        assert!(received_in_time(detail), "{detail}");
    }
    assert!(step(&steps, "agent_admin").2.contains("OpenCX AI"));
    assert!(step(&steps, "marker_field").2.contains("not needed"));

    let ticket = report["ticket_id"].as_u64().expect("a test ticket");
    assert_test_ticket_closed_and_unanswered(&app, &org, ticket).await;
    let again = app.call(Method::GET, &path(&org), None).await;
    assert_eq!(again.body, report, "GET shows the last report");
}

#[tokio::test]
async fn with_rule_2_switched_off_the_rule_2_steps_fail_and_the_ticket_is_still_closed() {
    let app = app().await;
    let org = app
        .connected_with_webhook(
            json!({"handoff": {"routing": "automation", "marker_field": MARKER_FIELD}}),
        )
        .await;
    let url = app.webhook_url(&org).await;
    app.simc
        .set_webhook(&freshdesk_sim::WebhookConfig {
            updated_enabled: Some(false),
            ..freshdesk_sim::WebhookConfig::to(url)
        })
        .await
        .unwrap();

    let report = run_self_test(&app, &org).await;
    assert_eq!(report["state"], "failed", "{report}");
    let steps = steps(&report);
    let rule1 = step(&steps, "rule1_created");
    assert_eq!(rule1.1, "ok");
    assert!(received_in_time(&rule1.2), "{}", rule1.2);
    for (key, event) in [
        ("rule2_note", "Note is added"),
        ("rule2_status", "Status is changed"),
    ] {
        let (_, outcome, detail) = step(&steps, key);
        assert_eq!(outcome, "failed");
        assert!(
            detail.contains(&format!("not received in {WAIT_SECS} s")),
            "{detail}"
        );
        assert!(detail.contains(event), "says what to check: {detail}");
    }
    let marker = step(&steps, "marker_field");
    assert_eq!(marker.1, "ok");
    assert!(marker.2.contains(MARKER_FIELD), "{}", marker.2);
    for key in [
        "agent_admin",
        "create_ticket",
        "add_note",
        "set_pending",
        "close_ticket",
        "rate_budget",
    ] {
        assert_eq!(step(&steps, key).1, "ok", "{key}: {steps:?}");
    }
    let ticket = report["ticket_id"].as_u64().expect("a test ticket");
    assert_test_ticket_closed_and_unanswered(&app, &org, ticket).await;
}

#[tokio::test]
async fn a_second_self_test_while_one_runs_is_refused_and_a_later_one_starts() {
    let app = app().await;
    let org = app.connected_with_webhook(json!({})).await;
    app.call(Method::GET, &path(&org), None)
        .await
        .assert_error(404, "self_test_not_run");
    // Rule 1 off: the run waits its whole deadline for it.
    let url = app.webhook_url(&org).await;
    app.simc
        .set_webhook(&freshdesk_sim::WebhookConfig {
            created_enabled: Some(false),
            ..freshdesk_sim::WebhookConfig::to(url)
        })
        .await
        .unwrap();
    let first = app.call(Method::POST, &path(&org), None).await;
    assert_eq!(first.status, 202, "{}", first.body);
    app.call(Method::POST, &path(&org), None)
        .await
        .assert_error(409, "self_test_running");
    let report = finished(&app, &org).await;
    assert_eq!(
        report["id"], first.body["id"],
        "the refused start changed nothing"
    );
    let (_, outcome, detail) = step(&steps(&report), "rule1_created").clone();
    assert_eq!(outcome, "failed");
    assert!(detail.contains("Ticket Creation"), "{detail}");

    app.point_webhook_at(&org).await;
    let next = run_self_test(&app, &org).await;
    assert_ne!(next["id"], report["id"]);
    assert_eq!(next["state"], "passed", "{next}");
}

#[tokio::test]
async fn a_self_test_needs_a_known_connected_org() {
    let app = app().await;
    let unknown = uuid::Uuid::new_v4().to_string();
    app.call(Method::POST, &path(&unknown), None)
        .await
        .assert_error(404, "org_not_found");
    app.call(Method::GET, &path(&unknown), None)
        .await
        .assert_error(404, "org_not_found");
    let never = app.create_org("Never connected").await;
    app.call(Method::POST, &path(&never), None)
        .await
        .assert_error(404, "not_connected");

    let org = app.connected_with_webhook(json!({})).await;
    app.disconnect(&org).await;
    app.call(Method::POST, &path(&org), None)
        .await
        .assert_error(409, "integration_disconnected");
    app.call(Method::GET, &path(&org), None)
        .await
        .assert_error(404, "self_test_not_run");
    assert!(app.sim_calls("POST", "/api/v2/tickets").await.is_empty());
}

#[tokio::test]
async fn a_run_writes_nothing_more_to_freshdesk_once_the_org_is_disconnected() {
    let app = app().await;
    let org = app.connected_with_webhook(json!({})).await;
    // Rule 1 off: the run waits its whole deadline for it, and the admin disconnects meanwhile.
    let url = app.webhook_url(&org).await;
    app.simc
        .set_webhook(&freshdesk_sim::WebhookConfig {
            created_enabled: Some(false),
            ..freshdesk_sim::WebhookConfig::to(url)
        })
        .await
        .unwrap();
    let started = app.call(Method::POST, &path(&org), None).await;
    assert_eq!(started.status, 202, "{}", started.body);
    let ticket = eventually(
        "the test ticket is created",
        Duration::from_secs(10),
        || async {
            let r = app.call(Method::GET, &path(&org), None).await;
            r.body["ticket_id"].as_u64()
        },
    )
    .await;
    assert_eq!(app.disconnect(&org).await.status, 200);
    let seq = app.last_sim_seq().await;

    let report = finished(&app, &org).await;
    assert_eq!(report["state"], "failed");
    let steps = steps(&report);
    for key in [
        "add_note",
        "rule2_note",
        "set_pending",
        "rule2_status",
        "close_ticket",
    ] {
        let (_, outcome, detail) = step(&steps, key);
        assert_eq!(outcome, "skipped", "{key}: {detail}");
        assert!(detail.contains("disconnected"), "{detail}");
    }
    assert!(step(&steps, "close_ticket").2.contains("by hand"));
    let writes: Vec<_> = app
        .sim_requests_after(seq)
        .await
        .into_iter()
        .filter(|r| r.method != "GET")
        .collect();
    assert!(writes.is_empty(), "{writes:?}");
    assert_eq!(app.sim_ticket(ticket).await["status"], 2, "left open");
}
