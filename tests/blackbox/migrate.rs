//! `ticketsync migrate-store`: a sled deployment filled through the real service, copied into
//! PostgreSQL by the real binary (twice: the second run changes nothing), then served by the
//! service on PostgreSQL: the org, its connection and webhook URL, the sessions, and the work
//! that was still queued.

use crate::harness::*;
use freshdesk_sim::FaultsConfig;
use reqwest::Method;
use serde_json::json;
use std::time::Duration;
use testkit::pg::TestDatabase;

const FAQ_QUESTION: &str = "How do I reset my password?";

fn migrate(from: &std::path::Path, db: &TestDatabase) -> String {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ticketsync"))
        .arg("migrate-store")
        .arg("--from-sled")
        .arg(from)
        .args(["--to-postgres", db.url()])
        .output()
        .expect("the binary runs");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "migrate-store failed: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

fn token_of(url: &serde_json::Value) -> String {
    url.as_str()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .to_string()
}

#[tokio::test]
async fn a_sled_deployment_copied_to_postgres_is_served_from_there_with_its_queued_work() {
    let mut t = TestApp::spawn().await;
    if t.backend
        .skips_sled_only_test("it copies a sled deployment; runs with the sled backend")
    {
        return;
    }
    let Some(db) = TestDatabase::create() else {
        return;
    };
    let org = t.connected_with_webhook(json!({})).await;
    let answered = t.new_ticket("Password", FAQ_QUESTION).await;
    assert_eq!(t.wait_ai_posts(answered, 1).await.len(), 1);
    let session = t.session(&org, answered).await;
    assert_eq!(session.status, 200, "{}", session.body);
    let webhook_before = t.connection(&org).await.body["webhook_url"].clone();
    let org_token = t
        .call(
            Method::POST,
            &format!("/api/v1/orgs/{org}/tokens"),
            Some(json!({"name": "Org admin"})),
        )
        .await
        .body["token"]
        .as_str()
        .unwrap()
        .to_string();

    // Freshdesk fails every call: the next ticket's event stays queued.
    t.simc
        .set_faults(&FaultsConfig {
            error_rate: Some(1.0),
            ..Default::default()
        })
        .await
        .unwrap();
    let queued = t.new_ticket("Password again", FAQ_QUESTION).await;
    eventually("the event is queued", Duration::from_secs(10), || async {
        let inspect = t.call(Method::GET, "/api/v1/inspect", None).await.body;
        (inspect["inbox_depth"].as_u64() >= Some(1)).then_some(())
    })
    .await;
    t.app.take().expect("running").stop();
    // A generated admin token (this test configures one) is copied too.
    std::fs::write(t.data_path().join("admin_token"), "tsa_migrated-token\n").unwrap();

    let first = migrate(&t.data_path(), &db);
    assert!(
        first.contains("1 orgs, 1 connections, 1 org admin tokens"),
        "{first}"
    );
    let after_first = db.contents();
    let second = migrate(&t.data_path(), &db);
    assert!(second.contains("0 queued events (new)"), "{second}");
    assert_eq!(db.contents(), after_first, "a second run changed the copy");
    let admin_token = testkit::pg::query_column(
        db.url(),
        "SELECT convert_from(value, 'UTF8') FROM meta WHERE key = 'admin_token'",
    )
    .unwrap();
    assert_eq!(admin_token, ["tsa_migrated-token"]);

    let key = std::fs::read_to_string(t.data_path().join("secret.key")).unwrap();
    t.restart_with(&[
        ("TICKETSYNC__STORAGE__BACKEND", "postgres".into()),
        ("TICKETSYNC__STORAGE__POSTGRES__URL", db.url().to_string()),
        (
            "TICKETSYNC__STORAGE__ENCRYPTION_KEY",
            key.trim().to_string(),
        ),
    ]);
    t.simc.clear_faults().await.unwrap();

    let orgs = t.call(Method::GET, "/api/v1/orgs", None).await;
    assert!(orgs.body.to_string().contains(&org), "{}", orgs.body);
    // The org admin token (its hash) came along: it still opens its org.
    let r = t
        .call_as(
            Method::GET,
            &format!("/api/v1/orgs/{org}"),
            None,
            Some(&org_token),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let connection = t.connection(&org).await;
    assert_eq!(connection.status, 200, "{}", connection.body);
    assert_eq!(connection.body["connected"], true, "{}", connection.body);
    assert_eq!(
        token_of(&connection.body["webhook_url"]),
        token_of(&webhook_before),
        "the webhook URL given to Freshdesk changed"
    );
    assert_eq!(t.session(&org, answered).await.body, session.body);
    // The queued event is processed on PostgreSQL: answered once.
    assert_eq!(t.wait_ai_posts(queued, 1).await.len(), 1);
    // And the service works on: a new customer message through the webhook is answered.
    t.point_webhook_at(&org).await;
    t.simc
        .customer_reply(answered, "Thanks. How do I reset my password on mobile?")
        .await
        .unwrap();
    assert_eq!(t.wait_ai_posts(answered, 2).await.len(), 2);
    t.settle().await;
    assert_eq!(
        t.ai_posts(queued).await.len(),
        1,
        "the queued ticket answered twice"
    );
    let inspect = t.call(Method::GET, "/api/v1/inspect", None).await.body;
    assert_eq!(inspect["inbox_depth"], 0, "{inspect}");
}
