//! Automation rules: which events fire, their payloads, and the delivery knobs.

mod common;

use common::{events, eventually, Receiver, TestSim};
use freshdesk_sim::{AgentNote, DeliveryKnobs, NewTicket, WebhookConfig, ADMIN_KEY};
use serde_json::json;

#[tokio::test]
async fn creating_a_ticket_fires_rule_one_with_the_spec_payload() {
    let sim = TestSim::start();
    let receiver = Receiver::start();
    sim.control
        .set_webhook(&WebhookConfig::to(&receiver.url))
        .await
        .unwrap();

    sim.control
        .create_ticket(&NewTicket::new("Hi", "hello"))
        .await
        .unwrap();
    let silent = NewTicket {
        webhook: Some(false),
        ..NewTicket::new("Quiet", "shh")
    };
    sim.control.create_ticket(&silent).await.unwrap();
    sim.control
        .create_ticket(&NewTicket::new("Hi again", "hello"))
        .await
        .unwrap();

    let bodies = receiver.wait_for(2).await;
    let mut ids: Vec<&str> = bodies
        .iter()
        .map(|b| b["ticketId"].as_str().unwrap())
        .collect();
    ids.sort_unstable();
    assert_eq!(ids, ["1", "3"]);
    assert_eq!(bodies[0]["triggered_event"], "ticket_created");

    let deliveries = eventually(|| async {
        let d = sim.control.deliveries().await.unwrap();
        Some(d).filter(|d| d.iter().all(|r| r.status == Some(202)))
    })
    .await;
    assert_eq!(deliveries.len(), 2);
    assert_eq!(
        deliveries[0].payload,
        json!({"ticketId": "1", "triggered_event": "ticket_created"})
    );
    assert_eq!(deliveries[0].attempts, 1);
    assert_eq!(deliveries[0].url, receiver.url);
}

#[tokio::test]
async fn updates_fire_rule_two_with_freshdesks_triggered_events() {
    let sim = TestSim::start();
    sim.control
        .create_ticket(&NewTicket::new("Hi", "hello"))
        .await
        .unwrap();
    let receiver = Receiver::start();
    sim.control
        .set_webhook(&WebhookConfig::to(&receiver.url))
        .await
        .unwrap();

    // One step at a time so arrival order is known.
    let mut expected = Vec::new();
    let mut step = |event: &str| {
        expected.push(event.to_string());
        expected.len()
    };

    sim.control.customer_reply(1, "still broken").await.unwrap();
    receiver.wait_for(step("{reply_sent:sent}")).await;
    sim.control.agent_reply(1, 44, "looking").await.unwrap();
    receiver.wait_for(step("{reply_sent:sent}")).await;
    sim.control
        .agent_note(1, &AgentNote::private(44, "hmm"))
        .await
        .unwrap();
    receiver.wait_for(step("{note_type:private}")).await;
    sim.control
        .agent_note(1, &AgentNote::public(44, "fyi"))
        .await
        .unwrap();
    receiver.wait_for(step("{note_type:public}")).await;
    sim.control.set_status(1, 4).await.unwrap();
    receiver.wait_for(step("{status:{from:2,to:4}}")).await;
    sim.control
        .update_ticket(1, &json!({"priority": 3}))
        .await
        .unwrap();
    receiver.wait_for(step("{priority:{from:1,to:3}}")).await;
    sim.control
        .update_ticket(1, &json!({"responder_id": 44}))
        .await
        .unwrap();
    receiver
        .wait_for(step("{responder_id:{from:null,to:44}}"))
        .await;
    sim.control
        .update_ticket(1, &json!({"responder_id": null}))
        .await
        .unwrap();
    receiver
        .wait_for(step("{responder_id:{from:44,to:null}}"))
        .await;
    sim.control
        .update_ticket(1, &json!({"group_id": 8}))
        .await
        .unwrap();
    let bodies = receiver.wait_for(step("{group_id:{from:null,to:8}}")).await;

    assert_eq!(events(&bodies), expected);
    assert!(bodies.iter().all(|b| b["ticketId"] == "1"));

    // An update that changes nothing fires nothing; a silent one neither.
    sim.control
        .update_ticket(1, &json!({"priority": 3}))
        .await
        .unwrap();
    sim.control
        .update_ticket(1, &json!({"priority": 4, "webhook": false}))
        .await
        .unwrap();
    sim.control
        .update_ticket(1, &json!({"priority": 1}))
        .await
        .unwrap();
    let bodies = receiver.wait_for(expected.len() + 1).await;
    assert_eq!(events(&bodies).last().unwrap(), "{priority:{from:4,to:1}}");
}

#[tokio::test]
async fn a_customer_reply_reopens_a_resolved_ticket_and_fires_both_events() {
    let sim = TestSim::start();
    let resolved = NewTicket {
        status: Some(4),
        ..NewTicket::new("Done", "thanks")
    };
    sim.control.create_ticket(&resolved).await.unwrap();
    let receiver = Receiver::start();
    sim.control
        .set_webhook(&WebhookConfig::to(&receiver.url))
        .await
        .unwrap();

    sim.control
        .customer_reply(1, "it broke again")
        .await
        .unwrap();
    let ticket = sim.control.get_ticket(1).await.unwrap();
    assert_eq!(ticket["status"], 2);
    let mut got = events(&receiver.wait_for(2).await);
    got.sort();
    assert_eq!(got, ["{reply_sent:sent}", "{status:{from:4,to:2}}"]);
}

#[tokio::test]
async fn api_changes_fire_rule_two_unless_disabled() {
    let sim = TestSim::start();
    sim.control
        .create_ticket(&NewTicket::new("Hi", "hello"))
        .await
        .unwrap();
    let receiver = Receiver::start();
    sim.control
        .set_webhook(&WebhookConfig::to(&receiver.url))
        .await
        .unwrap();
    let api = sim.api(ADMIN_KEY);

    api.post("/tickets/1/reply", &json!({"body": "answer"}))
        .await;
    receiver.wait_for(1).await;
    api.post(
        "/tickets/1/notes",
        &json!({"body": "draft", "private": true}),
    )
    .await;
    receiver.wait_for(2).await;
    api.put("/tickets/1", &json!({"status": 4})).await;
    let bodies = receiver.wait_for(3).await;
    assert_eq!(
        events(&bodies),
        [
            "{reply_sent:sent}",
            "{note_type:private}",
            "{status:{from:2,to:4}}"
        ]
    );

    sim.control
        .set_webhook(&WebhookConfig {
            fire_on_api_changes: Some(false),
            ..WebhookConfig::to(&receiver.url)
        })
        .await
        .unwrap();
    api.post("/tickets/1/reply", &json!({"body": "quiet"}))
        .await;
    api.put("/tickets/1", &json!({"status": 2})).await;
    sim.control
        .customer_reply(1, "ui changes still fire")
        .await
        .unwrap();
    let bodies = receiver.wait_for(4).await;
    assert_eq!(events(&bodies[3..]), ["{reply_sent:sent}"]);
    assert_eq!(sim.control.deliveries().await.unwrap().len(), 4);
}

#[tokio::test]
async fn custom_templates_are_rendered_by_textual_substitution() {
    let sim = TestSim::start();
    let receiver = Receiver::start();
    sim.control
        .set_webhook(&WebhookConfig {
            created_template: Some(r#"{"id": {{ticket.id}}, "kind": "new"}"#.into()),
            updated_template: Some(
                r#"{"id": {{ticket.id}}, "what": "{{Triggered event}}"}"#.into(),
            ),
            ..WebhookConfig::to(&receiver.url)
        })
        .await
        .unwrap();
    sim.control
        .create_ticket(&NewTicket::new("Hi", "hello"))
        .await
        .unwrap();
    receiver.wait_for(1).await;
    sim.control.set_status(1, 3).await.unwrap();
    let bodies = receiver.wait_for(2).await;
    assert_eq!(bodies[0], json!({"id": 1, "kind": "new"}));
    assert_eq!(
        bodies[1],
        json!({"id": 1, "what": "{status:{from:2,to:3}}"})
    );

    sim.control
        .set_webhook(&WebhookConfig::default())
        .await
        .unwrap();
    sim.control.set_status(1, 2).await.unwrap();
    assert_eq!(
        sim.control.deliveries().await.unwrap().len(),
        2,
        "url null disables the rules"
    );
}

#[tokio::test]
async fn dropped_deliveries_are_recorded_but_never_sent() {
    let sim = TestSim::start();
    let receiver = Receiver::start();
    sim.control
        .set_webhook(&WebhookConfig::to(&receiver.url))
        .await
        .unwrap();
    sim.control
        .set_delivery(&DeliveryKnobs {
            drop_rate: Some(1.0),
            ..DeliveryKnobs::default()
        })
        .await
        .unwrap();
    sim.control
        .create_ticket(&NewTicket::new("Lost", "x"))
        .await
        .unwrap();
    sim.control
        .set_delivery(&DeliveryKnobs {
            drop_rate: Some(0.0),
            ..DeliveryKnobs::default()
        })
        .await
        .unwrap();
    sim.control
        .create_ticket(&NewTicket::new("Kept", "y"))
        .await
        .unwrap();

    let bodies = receiver.wait_for(1).await;
    assert_eq!(bodies[0]["ticketId"], "2");
    let deliveries = sim.control.deliveries().await.unwrap();
    assert_eq!(deliveries.len(), 2);
    assert!(deliveries[0].dropped);
    assert_eq!((deliveries[0].attempts, deliveries[0].status), (0, None));
    assert!(!deliveries[1].dropped);
    // The dropped delivery never reached the dispatcher, so nothing else can arrive.
    assert_eq!(receiver.bodies().len(), 1);
}

#[tokio::test]
async fn a_duplicate_rate_of_one_sends_every_delivery_twice() {
    let sim = TestSim::start();
    let receiver = Receiver::start();
    sim.control
        .set_webhook(&WebhookConfig::to(&receiver.url))
        .await
        .unwrap();
    let knobs = sim
        .control
        .set_delivery(&DeliveryKnobs {
            duplicate_rate: Some(1.0),
            seed: Some(7),
            ..DeliveryKnobs::default()
        })
        .await
        .unwrap();
    assert_eq!(knobs.duplicate_rate, Some(1.0));
    assert_eq!(knobs.retry_delays_ms, Some(vec![]));

    sim.control
        .create_ticket(&NewTicket::new("Twice", "x"))
        .await
        .unwrap();
    let bodies = receiver.wait_for(2).await;
    assert_eq!(bodies[0], bodies[1]);
    let deliveries = sim.control.deliveries().await.unwrap();
    let flags: Vec<bool> = deliveries.iter().map(|d| d.duplicate).collect();
    assert_eq!(flags, [false, true]);
}

#[tokio::test]
async fn failed_deliveries_are_retried_after_the_configured_delays() {
    let sim = TestSim::start();
    let receiver = Receiver::failing_first(2);
    sim.control
        .set_webhook(&WebhookConfig::to(&receiver.url))
        .await
        .unwrap();
    sim.control
        .set_delivery(&DeliveryKnobs {
            retry_delays_ms: Some(vec![10, 20]),
            ..DeliveryKnobs::default()
        })
        .await
        .unwrap();
    sim.control
        .create_ticket(&NewTicket::new("Retry", "x"))
        .await
        .unwrap();
    receiver.wait_for(1).await;
    let delivery = eventually(|| async {
        let d = sim.control.deliveries().await.unwrap();
        d.into_iter().next().filter(|d| d.status == Some(202))
    })
    .await;
    assert_eq!(delivery.attempts, 3);
}

#[tokio::test]
async fn without_retries_a_failed_delivery_is_recorded_once() {
    let sim = TestSim::start();
    // Nothing listens on this port (it was just released).
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    sim.control
        .set_webhook(&WebhookConfig::to(format!("http://127.0.0.1:{port}/hook")))
        .await
        .unwrap();
    sim.control
        .create_ticket(&NewTicket::new("Nobody", "x"))
        .await
        .unwrap();
    let delivery = eventually(|| async {
        let d = sim.control.deliveries().await.unwrap();
        d.into_iter().next().filter(|d| d.attempts == 1)
    })
    .await;
    assert_eq!(delivery.status, None);
    assert!(delivery.error.is_some());
}

#[tokio::test]
async fn a_reorder_window_still_delivers_every_event() {
    let sim = TestSim::start();
    let receiver = Receiver::start();
    sim.control
        .set_webhook(&WebhookConfig::to(&receiver.url))
        .await
        .unwrap();
    sim.control
        .set_delivery(&DeliveryKnobs {
            reorder_window_ms: Some(100),
            delay_ms: Some(10),
            seed: Some(42),
            ..DeliveryKnobs::default()
        })
        .await
        .unwrap();
    for i in 0..20 {
        sim.control
            .create_ticket(&NewTicket::new(format!("t{i}"), "x"))
            .await
            .unwrap();
    }
    let bodies = receiver.wait_for(20).await;
    let mut ids: Vec<u64> = bodies
        .iter()
        .map(|b| b["ticketId"].as_str().unwrap().parse().unwrap())
        .collect();
    let arrival = ids.clone();
    ids.sort_unstable();
    assert_eq!(ids, (1..=20).collect::<Vec<u64>>());
    assert_ne!(
        arrival, ids,
        "a 100 ms window shuffles 20 deliveries (seeded)"
    );
}

#[tokio::test]
async fn a_ticket_created_through_the_api_fires_rule_one_and_its_note_rule_two() {
    let sim = TestSim::start();
    let receiver = Receiver::start();
    sim.control
        .set_webhook(&WebhookConfig::to(&receiver.url))
        .await
        .unwrap();
    let api = sim.api(ADMIN_KEY);
    let created = api
        .post(
            "/tickets",
            &json!({"email": "someone@example.com", "subject": "Hi", "description": "<p>hello</p>"}),
        )
        .await;
    assert_eq!(created.status, 201);
    let bodies = receiver.wait_for(1).await;
    assert_eq!(
        bodies[0],
        json!({"ticketId": "1", "triggered_event": "ticket_created"})
    );
    api.post(
        "/tickets/1/notes",
        &json!({"body": "a note", "private": true}),
    )
    .await;
    let bodies = receiver.wait_for(2).await;
    assert_eq!(events(&bodies[1..]), ["{note_type:private}"]);
}

#[tokio::test]
async fn each_rule_can_be_switched_off_on_its_own() {
    let sim = TestSim::start();
    let receiver = Receiver::start();
    sim.control
        .set_webhook(&WebhookConfig {
            updated_enabled: Some(false),
            ..WebhookConfig::to(&receiver.url)
        })
        .await
        .unwrap();
    sim.control
        .create_ticket(&NewTicket::new("Hi", "hello"))
        .await
        .unwrap();
    receiver.wait_for(1).await;
    sim.control.set_status(1, 3).await.unwrap();
    sim.control.customer_reply(1, "still there?").await.unwrap();

    let config = sim
        .control
        .set_webhook(&WebhookConfig {
            created_enabled: Some(false),
            ..WebhookConfig::to(&receiver.url)
        })
        .await
        .unwrap();
    assert_eq!(config.created_enabled, Some(false));
    assert_eq!(config.updated_enabled, Some(true));
    sim.control
        .create_ticket(&NewTicket::new("Unheard", "hello"))
        .await
        .unwrap();
    sim.control.set_status(1, 4).await.unwrap();
    let bodies = receiver.wait_for(2).await;
    assert_eq!(bodies[0]["triggered_event"], "ticket_created");
    assert_eq!(
        bodies[1],
        json!({"ticketId": "1", "triggered_event": "{status:{from:2,to:4}}"})
    );
    // Nothing else was recorded: the switched-off rules fired nothing at all.
    assert_eq!(sim.control.deliveries().await.unwrap().len(), 2);
}
