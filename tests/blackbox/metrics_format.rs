//! `GET /metrics` passes `promtool check metrics` (Debian's `prometheus` package) after real
//! traffic: an org connected to the simulator, a refused and an accepted webhook, an answered
//! ticket. Without `promtool` on the PATH the test prints `SKIPPED (no promtool)` and passes,
//! unless `TICKETSYNC_TEST_PROMTOOL_REQUIRED=1` (set by `.ci/run`).

use crate::harness::*;
use serde_json::json;
use std::io::Write;
use std::process::{Command, Stdio};

/// `promtool`, when it is installed.
fn promtool() -> Option<&'static str> {
    let found = Command::new("promtool")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !found {
        assert!(
            std::env::var("TICKETSYNC_TEST_PROMTOOL_REQUIRED").as_deref() != Ok("1"),
            "promtool is required (TICKETSYNC_TEST_PROMTOOL_REQUIRED=1) but not on the PATH"
        );
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED (no promtool): install Debian's `prometheus` package"
        );
        return None;
    }
    Some("promtool")
}

#[tokio::test]
async fn the_metrics_exposition_passes_promtool_check_after_traffic() {
    let Some(promtool) = promtool() else {
        return;
    };
    let t = TestApp::spawn().await;
    let org = t.connected_with_webhook(json!({})).await;
    // A refused webhook, so the labelled rejection counter has a sample.
    let hook = t.webhook_url(&org).await;
    let refused = t.http.post(&hook).body("{not json").send().await.unwrap();
    assert_eq!(refused.status(), 400);
    // An answered ticket: the accepted webhook, Freshdesk calls, effects sent.
    let ticket = t
        .new_ticket("Password", "How do I reset my password?")
        .await;
    t.wait_ai_posts(ticket, 1).await;
    t.settle().await;

    let res = t
        .http
        .get(format!("{}/metrics", t.base()))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let text = res.text().await.unwrap();
    for sample in [
        "ticketsync_webhooks_rejected_total{",
        "ticketsync_freshdesk_calls_total{",
        "ticketsync_effects_sent_total{",
    ] {
        assert!(text.contains(sample), "{sample} has a sample:\n{text}");
    }

    let mut child = Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool starts");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success() && out.stdout.is_empty() && out.stderr.is_empty(),
        "promtool check metrics: {}\nstdout:\n{}\nstderr:\n{}\nexposition:\n{text}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
}
