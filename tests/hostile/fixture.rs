//! Shared set-up of the HTTP property runs: one runtime and one service per run, proptest
//! configured for a bounded number of cases and no regression files, and the "nothing was
//! stored" checks.

use crate::harness::TestApp;
use proptest::test_runner::Config;
use reqwest::Method;
use serde_json::Value;
use std::time::Duration;
use testkit::eventually;

/// A runtime that drives one service through a whole property run.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

/// Proptest with `cases` cases, shrinking bounded, and no regression files written next to
/// the sources (the suites print the failing input instead).
pub fn config(cases: u32) -> Config {
    Config {
        cases,
        failure_persistence: None,
        max_shrink_iters: 200,
        ..Config::default()
    }
}

/// The token of a webhook URL (its last path segment).
pub fn token_of(webhook_url: &str) -> String {
    webhook_url
        .rsplit('/')
        .next()
        .expect("a webhook URL has a token")
        .to_string()
}

/// Wait until the org's first-connect backfill is over, so that the simulator's request log
/// and the connection view only change because of what a test sends.
pub async fn wait_backfill_done(t: &TestApp, org: &str) {
    eventually("the backfill is done", Duration::from_secs(20), || async {
        let body = t.connection(org).await.body;
        (body["backfill"]["state"] == "done").then_some(())
    })
    .await;
}

/// `GET /api/v1/inspect`.
pub async fn inspect(t: &TestApp) -> Value {
    let r = t.call(Method::GET, "/api/v1/inspect", None).await;
    assert_eq!(r.status, 200, "{}", r.body);
    r.body
}

/// Nothing of a refused webhook reached storage: the inbox is empty and the org never saw a
/// webhook.
pub async fn assert_intake_untouched(t: &TestApp, org: &str, context: &str) {
    let inspect = inspect(t).await;
    assert_eq!(
        inspect["inbox_depth"], 0,
        "{context}: the inbox holds an event: {inspect}"
    );
    let connection = t.connection(org).await;
    assert!(
        connection.body["last_webhook_at"].is_null(),
        "{context}: last_webhook_at was set: {}",
        connection.body
    );
}

/// The connection view without what moves on its own (backfill progress).
pub async fn connection_snapshot(t: &TestApp, org: &str) -> (u16, Value) {
    let r = t.connection(org).await;
    let mut body = r.body;
    if let Some(object) = body.as_object_mut() {
        object.remove("backfill");
    }
    (r.status.as_u16(), body)
}

/// A counter of `/metrics`, by its full sample name (labels included).
pub async fn metric(t: &TestApp, sample: &str) -> f64 {
    let text = t
        .http
        .get(format!("{}/metrics", t.base()))
        .bearer_auth(crate::harness::ADMIN_TOKEN)
        .send()
        .await
        .expect("metrics answer")
        .text()
        .await
        .expect("metrics text");
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .find_map(|line| {
            let (name, value) = line.rsplit_once(' ')?;
            (name == sample).then(|| value.parse().ok())?
        })
        .unwrap_or(0.0)
}
