//! An org whose Freshdesk work cannot run (the key was reset in Freshdesk, the stored domain
//! is no longer allowed by the configuration): nothing acknowledged is lost, the reason is
//! visible to an admin, and work resumes as soon as the cause is fixed.

use crate::harness::*;
use reqwest::Method;
use serde_json::{json, Value};
use std::time::Duration;

const NEW_KEY: &str = "sim-admin-key-reset";

/// `GET /metrics` as text.
async fn metrics_text(t: &TestApp) -> String {
    t.http
        .get(format!("{}/metrics", t.base()))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// The org's entry in `GET /api/v1/inspect`.
async fn inspected_org(t: &TestApp, org: &str) -> Value {
    let inspect = t.call(Method::GET, "/api/v1/inspect", None).await.body;
    inspect["orgs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["org_id"] == org)
        .cloned()
        .unwrap()
}

#[tokio::test]
async fn a_ticket_read_with_a_reset_key_is_answered_once_the_new_key_is_saved() {
    let t = TestApp::spawn().await;
    let org = t.connected_with_webhook(json!({})).await;
    // The admin resets the AI agent's key in Freshdesk; a customer writes before the new
    // key reaches ticketsync.
    t.simc.rotate_agent_key(AI_AGENT_ID, NEW_KEY).await.unwrap();
    let ticket = t
        .new_ticket("Password", "How do I reset my password?")
        .await;
    // The webhook is acknowledged (the backfill may have hit the refusal first).
    eventually(
        "the webhook acknowledged",
        Duration::from_secs(20),
        || async {
            let deliveries = t.simc.deliveries().await.unwrap();
            deliveries
                .iter()
                .any(|d| d.ticket_id == ticket && d.status == Some(202))
                .then_some(())
        },
    )
    .await;
    eventually(
        "the refused key is shown on the connection",
        Duration::from_secs(20),
        || async {
            let c = t.connection(&org).await.body;
            (c["error"]["code"] == "freshdesk_auth_failed").then_some(())
        },
    )
    .await;
    let refused = inspected_org(&t, &org).await;
    assert_eq!(
        refused["error"]["code"], "freshdesk_auth_failed",
        "{refused}"
    );
    assert!(
        refused["backlog"].as_u64().unwrap() >= 1,
        "the event is kept: {refused}"
    );
    assert!(
        metrics_text(&t)
            .await
            .lines()
            .any(|l| l == "ticketsync_orgs_paused 1"),
        "the pause is a metric"
    );
    assert!(t.ai_posts(ticket).await.is_empty());

    let mut settings = t.settings();
    merge(&mut settings, json!({"api_key": NEW_KEY}));
    let saved = t.save(&org, settings).await;
    assert_eq!(saved.status, 200, "{}", saved.body);
    assert_eq!(saved.body["error"], Value::Null, "{}", saved.body);
    let posts = t.wait_ai_posts(ticket, 1).await;
    assert!(posts[0].1.contains("reset your password"), "{posts:?}");
    t.settle().await;
    assert_eq!(t.ai_posts(ticket).await.len(), 1, "answered once");
    assert_eq!(inspected_org(&t, &org).await["error"], Value::Null);
}

#[tokio::test]
async fn a_stored_domain_the_configuration_no_longer_allows_keeps_its_events_and_says_why() {
    let mut t = TestApp::spawn().await;
    let org = t.connected_with_webhook(json!({})).await;
    t.restart_with(&[("TICKETSYNC__FRESHDESK__INSECURE_HOSTS", "[]".into())]);
    t.point_webhook_at(&org).await;
    let ticket = t
        .new_ticket("Password", "How do I reset my password?")
        .await;
    let delivered = eventually("the webhook delivered", Duration::from_secs(20), || async {
        let deliveries = t.simc.deliveries().await.unwrap();
        deliveries
            .iter()
            .find(|d| d.ticket_id == ticket)
            .and_then(|d| d.status)
    })
    .await;
    assert_eq!(delivered, 202, "the event is acknowledged and kept");
    eventually(
        "the org error is shown",
        Duration::from_secs(20),
        || async {
            let c = t.connection(&org).await.body;
            (c["error"]["code"] == "domain_not_allowed").then_some(())
        },
    )
    .await;
    let o = inspected_org(&t, &org).await;
    assert_eq!(o["error"]["code"], "domain_not_allowed", "{o}");
    assert!(
        o["backlog"].as_u64().unwrap() >= 1,
        "the event is kept: {o}"
    );
    // The operator allows the host again: the ticket is answered.
    let host = format!("[\"{}\"]", t.sim_domain());
    t.restart_with(&[("TICKETSYNC__FRESHDESK__INSECURE_HOSTS", host)]);
    t.point_webhook_at(&org).await;
    t.wait_ai_posts(ticket, 1).await;
    assert_eq!(t.connection(&org).await.body["error"], Value::Null);
}
