//! The control API: request recording, bulk seeding, lifecycle.

mod common;

use chrono::{Duration, Utc};
use common::TestSim;
use freshdesk_sim::{spawn, BulkTickets, NewTicket, RequestFilter, SimConfig, ADMIN_KEY};
use serde_json::{json, Value};

#[tokio::test]
async fn api_requests_are_recorded_in_order_and_can_be_filtered() {
    let sim = TestSim::start();
    sim.control
        .create_ticket(&NewTicket::new("Q", "q"))
        .await
        .unwrap();
    sim.control
        .create_ticket(&NewTicket::new("Q2", "q"))
        .await
        .unwrap();
    let api = sim.api(ADMIN_KEY);
    api.get("/agents/me").await;
    api.get("/tickets?per_page=5").await;
    api.post("/tickets/1/reply", &json!({"body": "hi"})).await;
    api.put("/tickets/2", &json!({"status": 4})).await;
    sim.anonymous().get("/agents/me").await;

    let all = sim.control.requests().await.unwrap();
    let seen: Vec<(u64, &str, &str, u16)> = all
        .iter()
        .map(|r| (r.seq, r.method.as_str(), r.path.as_str(), r.status))
        .collect();
    assert_eq!(
        seen,
        [
            (1, "GET", "/api/v2/agents/me", 200),
            (2, "GET", "/api/v2/tickets", 200),
            (3, "POST", "/api/v2/tickets/1/reply", 201),
            (4, "PUT", "/api/v2/tickets/2", 200),
            (5, "GET", "/api/v2/agents/me", 401),
        ]
    );
    assert_eq!(all[1].query, "per_page=5");
    assert_eq!(all[2].body, json!({"body": "hi"}));
    assert_eq!(all[0].body, Value::Null);
    assert_eq!(all[0].agent_id, Some(42));
    assert_eq!(all[4].agent_id, None);
    assert_eq!(all[0].credits, 1);

    let posts = sim
        .control
        .requests_filtered(&RequestFilter {
            method: Some("POST".into()),
            ..RequestFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(posts.len(), 1);
    let ticket2 = sim
        .control
        .requests_filtered(&RequestFilter {
            path_prefix: Some("/api/v2/tickets/2".into()),
            ..RequestFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(ticket2.iter().map(|r| r.seq).collect::<Vec<_>>(), [4]);
    let later = sim
        .control
        .requests_filtered(&RequestFilter {
            since_seq: Some(3),
            ..RequestFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(later.iter().map(|r| r.seq).collect::<Vec<_>>(), [4, 5]);

    sim.control.clear_requests().await.unwrap();
    assert!(sim.control.requests().await.unwrap().is_empty());
    api.get("/agents/me").await;
    assert_eq!(sim.control.requests().await.unwrap()[0].seq, 6);
}

#[tokio::test]
async fn forty_thousand_tickets_are_seeded_in_bulk_and_paged_like_a_backfill() {
    let sim = TestSim::start();
    let start = Utc::now() - Duration::days(170);
    let ids = sim
        .control
        .bulk_tickets(&BulkTickets {
            count: 40_000,
            status_cycle: Some(vec![2, 3, 4, 5]),
            updated_at_start: Some(start),
            step_secs: Some(300),
            conversations_per_ticket: Some(1),
            ..BulkTickets::default()
        })
        .await
        .unwrap();
    assert_eq!(ids.len(), 40_000);
    assert_eq!((ids[0], ids[39_999]), (1, 40_000));

    let api = sim.api(ADMIN_KEY);
    let since = (start - Duration::seconds(1)).format("%Y-%m-%dT%H:%M:%SZ");
    let query =
        format!("/tickets?updated_since={since}&order_by=updated_at&order_type=asc&per_page=100");
    let first = api.get(&format!("{query}&page=1")).await;
    let first_page = first.json();
    assert_eq!(first_page.as_array().unwrap().len(), 100);
    assert_eq!(first_page[0]["id"], 1);
    assert_eq!(first_page[1]["status"], 3);
    assert_eq!(
        first_page[0]["updated_at"],
        start.format("%Y-%m-%dT%H:%M:%SZ").to_string()
    );
    assert!(first.header("Link").is_some());

    let last = api.get(&format!("{query}&page=300")).await;
    assert_eq!(last.json()[99]["id"], 30_000);
    assert_eq!(
        last.header("Link"),
        None,
        "page 301 is beyond Freshdesk's limit"
    );
    assert_eq!(api.get(&format!("{query}&page=301")).await.status, 400);

    // Continue the way contract §6 says: updated_since = the last updated_at seen.
    let resume = last.json()[99]["updated_at"].as_str().unwrap().to_string();
    let next = api
        .get(&format!(
            "/tickets?updated_since={resume}&order_by=updated_at&order_type=asc&per_page=100"
        ))
        .await
        .json();
    assert_eq!(next[0]["id"], 30_000);

    let conversations = api.get("/tickets/40000/conversations").await.json();
    assert_eq!(conversations.as_array().unwrap().len(), 1);
    assert_eq!(conversations[0]["incoming"], true);
    let briefs = sim.control.tickets().await.unwrap();
    assert_eq!(briefs.len(), 40_000);
    assert_eq!(briefs[3].status, 5);
}

#[tokio::test]
async fn control_errors_are_explicit() {
    let sim = TestSim::start();
    let missing = sim.control.get_ticket(5).await.unwrap_err();
    assert!(missing.to_string().contains("404"), "{missing}");
    let bad_agent = sim.control.agent_reply(5, 42, "x").await.unwrap_err();
    assert!(bad_agent.to_string().contains("404"), "{bad_agent}");
    sim.control
        .create_ticket(&NewTicket::new("Q", "q"))
        .await
        .unwrap();
    let no_agent = sim.control.agent_reply(1, 999, "x").await.unwrap_err();
    assert!(no_agent.to_string().contains("agent 999"), "{no_agent}");
    let invalid = sim
        .control
        .create_ticket(&NewTicket {
            responder_id: Some(999),
            ..NewTicket::new("Q", "q")
        })
        .await
        .unwrap_err();
    assert!(invalid.to_string().contains("invalid_value"), "{invalid}");
}

#[test]
fn a_simulator_can_be_started_and_stopped_without_any_runtime() {
    let handle = spawn(SimConfig::default()).unwrap();
    let addr = handle.addr();
    assert_eq!(
        handle.base_url(),
        format!("http://127.0.0.1:{}", addr.port())
    );
    assert!(std::net::TcpStream::connect(addr).is_ok());
    handle.stop();
    assert!(std::net::TcpStream::connect(addr).is_err());
}

#[test]
fn two_simulators_on_the_same_port_fail_cleanly() {
    let first = spawn(SimConfig::default()).unwrap();
    let second = spawn(SimConfig {
        port: first.addr().port(),
        ..SimConfig::default()
    });
    assert!(second.is_err());
}
