//! Rate limiting, credits and injected faults.

mod common;

use common::TestSim;
use freshdesk_sim::{ConfigUpdate, FaultsConfig, Force429, NewTicket, SimConfig, ADMIN_KEY};
use serde_json::json;

#[tokio::test]
async fn every_answer_carries_the_rate_limit_headers() {
    let sim = TestSim::start();
    let api = sim.api(ADMIN_KEY);
    let answers = [
        api.get("/agents/me").await,
        api.get("/tickets/77").await,
        api.get("/no/such/route").await,
        sim.anonymous().get("/agents/me").await,
        api.put("/tickets/77", &json!({})).await,
    ];
    for (i, answer) in answers.iter().enumerate() {
        assert_eq!(answer.header_u64("X-RateLimit-Total"), 700, "answer {i}");
        assert_eq!(
            answer.header_u64("X-RateLimit-Remaining"),
            700 - 1 - i as u64,
            "answer {i}"
        );
        assert_eq!(
            answer.header_u64("X-RateLimit-Used-CurrentRequest"),
            1,
            "answer {i}"
        );
    }
}

#[tokio::test]
async fn calls_beyond_the_budget_get_429_with_retry_after() {
    let sim = TestSim::with(SimConfig {
        rate_limit_per_min: 5,
        ..SimConfig::default()
    });
    sim.control
        .create_ticket(&NewTicket::new("Q", "q"))
        .await
        .unwrap();
    let api = sim.api(ADMIN_KEY);

    let with_include = api.get("/tickets/1?include=conversations").await;
    assert_eq!(with_include.status, 200);
    assert_eq!(
        with_include.header_u64("X-RateLimit-Used-CurrentRequest"),
        3
    );
    assert_eq!(with_include.header_u64("X-RateLimit-Remaining"), 2);
    assert_eq!(
        api.get("/tickets/1")
            .await
            .header_u64("X-RateLimit-Remaining"),
        1
    );
    let refused_include = api.get("/tickets/1?include=conversations").await;
    assert_eq!(refused_include.status, 429, "3 credits do not fit in 1");
    assert_eq!(
        api.get("/tickets/1")
            .await
            .header_u64("X-RateLimit-Remaining"),
        0
    );

    let refused = api.get("/tickets/1").await;
    assert_eq!(refused.status, 429);
    let retry_after = refused.header_u64("Retry-After");
    assert!((1..=60).contains(&retry_after), "Retry-After {retry_after}");
    assert_eq!(
        refused.json(),
        json!({"message": "You have exceeded the limit of requests per minute"})
    );
    assert_eq!(refused.header_u64("X-RateLimit-Remaining"), 0);
    assert_eq!(refused.header_u64("X-RateLimit-Used-CurrentRequest"), 0);

    let recorded = sim.control.requests().await.unwrap();
    let statuses: Vec<(u16, u32)> = recorded.iter().map(|r| (r.status, r.credits)).collect();
    assert_eq!(statuses, [(200, 3), (200, 1), (429, 0), (200, 1), (429, 0)]);

    // Raising the budget takes effect within the current window.
    sim.control
        .set_config(&ConfigUpdate {
            rate_limit_per_min: Some(10),
            ..ConfigUpdate::default()
        })
        .await
        .unwrap();
    let after = api.get("/tickets/1").await;
    assert_eq!(after.status, 200);
    assert_eq!(after.header_u64("X-RateLimit-Remaining"), 4);
}

#[tokio::test]
async fn forced_429s_answer_with_the_requested_retry_after_then_stop() {
    let sim = TestSim::start();
    sim.control
        .set_faults(&FaultsConfig {
            force_429: Some(Force429 {
                count: 2,
                retry_after_secs: 7,
            }),
            ..FaultsConfig::default()
        })
        .await
        .unwrap();
    let api = sim.api(ADMIN_KEY);
    for _ in 0..2 {
        let answer = api.get("/agents/me").await;
        assert_eq!(answer.status, 429);
        assert_eq!(answer.header_u64("Retry-After"), 7);
    }
    assert_eq!(api.get("/agents/me").await.status, 200);
}

#[tokio::test]
async fn injected_errors_and_timeouts_answer_5xx() {
    let sim = TestSim::start();
    let api = sim.api(ADMIN_KEY);
    let faults = sim
        .control
        .set_faults(&FaultsConfig {
            error_rate: Some(1.0),
            ..FaultsConfig::default()
        })
        .await
        .unwrap();
    assert_eq!(faults.error_rate, Some(1.0));
    assert_eq!(faults.timeout_ms, Some(30_000));
    for _ in 0..4 {
        let answer = api.get("/agents/me").await;
        assert!(
            [500, 503].contains(&answer.status),
            "status {}",
            answer.status
        );
        assert!(answer.json().get("code").is_some());
        assert!(answer.header("X-RateLimit-Remaining").is_some());
    }

    sim.control
        .set_faults(&FaultsConfig {
            error_rate: Some(0.0),
            timeout_rate: Some(1.0),
            timeout_ms: Some(50),
            latency_ms: Some(20),
            ..FaultsConfig::default()
        })
        .await
        .unwrap();
    let started = std::time::Instant::now();
    assert_eq!(api.get("/agents/me").await.status, 504);
    assert!(started.elapsed() >= std::time::Duration::from_millis(70));

    let cleared = sim.control.clear_faults().await.unwrap();
    assert_eq!(cleared.timeout_rate, Some(0.0));
    assert_eq!(api.get("/agents/me").await.status, 200);

    let statuses: Vec<u16> = sim
        .control
        .requests()
        .await
        .unwrap()
        .iter()
        .map(|r| r.status)
        .collect();
    assert_eq!(statuses.len(), 6);
    assert_eq!(statuses[4..], [504, 200]);
}

#[tokio::test]
async fn fault_rates_outside_zero_to_one_are_refused() {
    let sim = TestSim::start();
    let err = sim
        .control
        .set_faults(&FaultsConfig {
            error_rate: Some(2.0),
            ..FaultsConfig::default()
        })
        .await
        .unwrap_err();
    assert!(err.to_string().contains("error_rate"), "{err}");
}

#[tokio::test]
async fn the_tickets_list_sub_limit_refuses_lists_only() {
    let sim = TestSim::start();
    sim.control
        .create_ticket(&NewTicket::new("Q", "q"))
        .await
        .unwrap();
    sim.control
        .set_config(&ConfigUpdate {
            tickets_list_per_min: Some(2),
            ..ConfigUpdate::default()
        })
        .await
        .unwrap();
    let api = sim.api(ADMIN_KEY);
    assert_eq!(api.get("/tickets").await.status, 200);
    assert_eq!(api.get("/tickets?page=2").await.status, 200);
    let refused = api.get("/tickets").await;
    assert_eq!(refused.status, 429);
    assert!((1..=60).contains(&refused.header_u64("Retry-After")));
    assert_eq!(api.get("/tickets/1").await.status, 200, "other calls pass");
    assert_eq!(
        api.put("/tickets/1", &json!({"priority": 2})).await.status,
        200
    );
    let recorded = sim.control.requests().await.unwrap();
    let credits: u32 = recorded.iter().map(|r| r.credits).sum();
    assert_eq!(credits, 4, "the refused list cost nothing");
}
