//! contract §3 and §4: webhook intake and the ticket flow, end to end against the simulator.

use crate::harness::*;
use freshdesk_sim::{AgentNote, DeliveryKnobs, NewTicket};
use reqwest::Method;
use serde_json::{json, Value};
use std::time::Duration;

const FAQ_QUESTION: &str = "How do I reset my password?";
const FAQ_ANSWER: &str = "You can reset your password from the sign-in page";

#[tokio::test]
async fn a_new_ticket_gets_one_public_ai_reply_and_the_opencx_tags() {
    let t = TestApp::spawn().await;
    let org = t.connected_with_webhook(json!({})).await;
    let id = t.new_ticket("Password", FAQ_QUESTION).await;
    let posts = t.wait_ai_posts(id, 1).await;
    assert!(!posts[0].0, "public reply");
    assert!(posts[0].1.contains(FAQ_ANSWER), "{}", posts[0].1);
    t.settle().await;
    assert_eq!(t.ai_posts(id).await.len(), 1, "exactly one answer");
    let tags = t.sim_ticket(id).await["tags"].clone();
    assert_eq!(tags, json!(["opencx", "opencx_autopilot"]));
    let session = t.session(&org, id).await.body;
    assert_eq!(session["state"], "ai_active");
    assert_eq!(session["channel"], "email");
    assert_eq!(
        session["freshdesk_status"],
        json!({"id": 2, "name": "Open"})
    );
    let authors: Vec<&str> = session["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["author"].as_str().unwrap())
        .collect();
    assert_eq!(authors, ["contact", "ai"]);
}

#[tokio::test]
async fn existing_tags_are_kept_when_the_ai_tags_a_ticket() {
    let t = TestApp::spawn().await;
    t.connected_with_webhook(json!({})).await;
    let mut ticket = NewTicket::new("Password", FAQ_QUESTION);
    ticket.tags = Some(vec!["vip".into()]);
    let id = t.new_ticket_with(ticket).await;
    t.wait_ai_posts(id, 1).await;
    t.settle().await;
    assert_eq!(
        t.sim_ticket(id).await["tags"],
        json!(["vip", "opencx", "opencx_autopilot"])
    );
}

#[tokio::test]
async fn a_customer_asking_for_a_human_is_handed_off() {
    let t = TestApp::spawn().await;
    let org = t.connected_with_webhook(json!({})).await;
    let id = t
        .new_ticket("Help", "I want to talk to a HUMAN please")
        .await;
    let session = t
        .wait_session(&org, id, "handed off", |s| s["state"] == "handed_off")
        .await;
    assert_eq!(session["handoff"]["reason"], "customer_requested");
    assert_eq!(session["handoff"]["routing"], "unassign");
    assert_eq!(session["handoff"]["fallback_used"], false);
    t.settle().await;
    let posts = t.ai_posts(id).await;
    assert_eq!(posts.len(), 1);
    assert!(posts[0].0, "the handoff note is private");
    assert!(posts[0].1.contains("customer_requested"), "{}", posts[0].1);
    let puts = t.sim_calls("PUT", &format!("/api/v2/tickets/{id}")).await;
    assert_eq!(puts.len(), 1, "one routing update");
    assert_eq!(puts[0].body, json!({"responder_id": null, "status": 2}));
}

#[tokio::test]
async fn an_unknown_question_is_handed_off_for_missing_knowledge() {
    let t = TestApp::spawn().await;
    let org = t.connected_with_webhook(json!({})).await;
    let id = t
        .new_ticket("Invoice", "Where is my invoice for March?")
        .await;
    let session = t
        .wait_session(&org, id, "handed off", |s| s["state"] == "handed_off")
        .await;
    assert_eq!(session["handoff"]["reason"], "missing_knowledge");
}

#[tokio::test]
async fn assist_mode_posts_a_private_draft_with_the_footer() {
    let t = TestApp::spawn().await;
    t.connected_with_webhook(json!({
        "channels": {"email": "assist"},
        "assist_footer": "-- drafted by OpenCX, review before sending"
    }))
    .await;
    let id = t.new_ticket("Password", FAQ_QUESTION).await;
    let posts = t.wait_ai_posts(id, 1).await;
    assert!(posts[0].0, "a private note");
    assert!(posts[0].1.contains(FAQ_ANSWER));
    assert!(posts[0].1.contains("drafted by OpenCX"), "{}", posts[0].1);
    t.settle().await;
    assert!(t
        .sim_calls("POST", &format!("/api/v2/tickets/{id}/reply"))
        .await
        .is_empty());
    assert_eq!(
        t.sim_ticket(id).await["tags"],
        json!(["opencx", "opencx_assist_mode"])
    );
}

#[tokio::test]
async fn a_channel_set_to_off_is_tracked_but_never_answered() {
    let t = TestApp::spawn().await;
    let org = t
        .connected_with_webhook(json!({"channels": {"phone": "off"}}))
        .await;
    let mut ticket = NewTicket::new("Call", FAQ_QUESTION);
    ticket.source = Some(3);
    let id = t.new_ticket_with(ticket).await;
    t.wait_session(&org, id, "tracked", |s| s["channel"] == "phone")
        .await;
    t.settle().await;
    assert!(t.ai_posts(id).await.is_empty());
    assert!(t.sim_calls("PUT", "/api/v2/tickets").await.is_empty());
}

#[tokio::test]
async fn the_other_channel_follows_web_unless_set() {
    let t = TestApp::spawn().await;
    let org = t
        .connected_with_webhook(json!({"channels": {"web": "assist"}}))
        .await;
    let mut ticket = NewTicket::new("Tweet", FAQ_QUESTION);
    ticket.source = Some(5);
    let id = t.new_ticket_with(ticket).await;
    let posts = t.wait_ai_posts(id, 1).await;
    assert!(posts[0].0, "assist (private) like web");
    assert_eq!(t.session(&org, id).await.body["channel"], "other");
}

#[tokio::test]
async fn with_auto_handle_all_off_only_the_ai_or_default_group_tickets_are_tracked() {
    let t = TestApp::spawn().await;
    let org = t
        .connected_with_webhook(
            json!({"auto_handle_all": false, "default_group_id": SUPPORT_GROUP}),
        )
        .await;
    let ignored = t.new_ticket("Other", FAQ_QUESTION).await;
    let mut grouped = NewTicket::new("Grouped", FAQ_QUESTION);
    grouped.group_id = Some(SUPPORT_GROUP);
    let grouped = t.new_ticket_with(grouped).await;
    let mut assigned = NewTicket::new("Assigned", FAQ_QUESTION);
    assigned.responder_id = Some(AI_AGENT_ID);
    let assigned = t.new_ticket_with(assigned).await;
    t.wait_ai_posts(grouped, 1).await;
    t.wait_ai_posts(assigned, 1).await;
    t.settle().await;
    assert!(t.ai_posts(ignored).await.is_empty());
    let gate = t.inspect_ticket(&org, ignored).await["gate"].clone();
    assert_eq!(gate["decision"], "ignored");
    assert!(gate["reason"].as_str().unwrap().contains("auto_handle_all"));
    t.session(&org, ignored)
        .await
        .assert_error(404, "session_not_found");
    // Later events of an ignored ticket are ignored too, even once it is in the group.
    t.simc
        .update_ticket(ignored, &json!({"group_id": SUPPORT_GROUP}))
        .await
        .unwrap();
    t.simc.customer_reply(ignored, FAQ_QUESTION).await.unwrap();
    t.settle().await;
    assert!(t.ai_posts(ignored).await.is_empty());
}

#[tokio::test]
async fn a_human_public_reply_stops_the_ai_but_notes_do_not() {
    let t = TestApp::spawn().await;
    let org = t.connected_with_webhook(json!({})).await;
    let id = t.new_ticket("Password", FAQ_QUESTION).await;
    t.wait_ai_posts(id, 1).await;
    // A private note by a human, sent through the API with incoming: true, is an agent note.
    t.simc
        .agent_note(
            id,
            &AgentNote::private(ALICE_ID, "internal: check account").incoming(true),
        )
        .await
        .unwrap();
    t.settle().await;
    let s = t.session(&org, id).await.body;
    assert_eq!(s["state"], "ai_active");
    let last = s["messages"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["author"], "agent");
    assert_eq!(last["private"], true);
    assert_eq!(t.ai_posts(id).await.len(), 1, "a note is not answered");

    t.simc
        .agent_reply(id, ALICE_ID, "I'll take it from here")
        .await
        .unwrap();
    t.wait_session(&org, id, "human active", |s| s["state"] == "human_active")
        .await;
    t.simc
        .customer_reply(id, "thanks, and how do I reset my password again?")
        .await
        .unwrap();
    t.settle().await;
    assert_eq!(
        t.ai_posts(id).await.len(),
        1,
        "the AI stays silent after a human reply"
    );
    let s = t.session(&org, id).await.body;
    assert_eq!(
        s["messages"].as_array().unwrap().len(),
        5,
        "the thread keeps syncing"
    );
}

#[tokio::test]
async fn follow_ups_are_answered_and_the_thread_is_mirrored_in_order() {
    let t = TestApp::spawn().await;
    let org = t.connected_with_webhook(json!({})).await;
    let id = t.new_ticket("Password", FAQ_QUESTION).await;
    t.wait_ai_posts(id, 1).await;
    t.simc
        .customer_reply(id, "Sorry, how do I reset the password on mobile?")
        .await
        .unwrap();
    t.wait_ai_posts(id, 2).await;
    t.settle().await;
    let s = t.session(&org, id).await.body;
    let authors: Vec<&str> = s["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["author"].as_str().unwrap())
        .collect();
    assert_eq!(authors, ["contact", "ai", "contact", "ai"]);
    let ids: Vec<u64> = s["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["conversation_id"].as_u64())
        .collect();
    let mut sorted = ids.clone();
    sorted.sort();
    assert_eq!(ids, sorted, "Freshdesk order");
    assert_eq!(
        t.sim_calls("PUT", &format!("/api/v2/tickets/{id}"))
            .await
            .len(),
        1,
        "tagged once"
    );
}

#[tokio::test]
async fn a_resolve_phrase_resolves_the_ticket_with_a_private_note() {
    let t = TestApp::spawn().await;
    let org = t.connected_with_webhook(json!({})).await;
    let id = t.new_ticket("Password", FAQ_QUESTION).await;
    t.wait_ai_posts(id, 1).await;
    t.simc
        .customer_reply(id, "Thanks, that solved it!")
        .await
        .unwrap();
    let s = t
        .wait_session(&org, id, "resolved", |s| s["freshdesk_status"]["id"] == 4)
        .await;
    assert_eq!(s["freshdesk_status"]["name"], "Resolved");
    t.settle().await;
    let posts = t.ai_posts(id).await;
    assert_eq!(posts.len(), 2);
    assert!(posts[1].0, "resolution note is private");
    assert_eq!(t.sim_ticket(id).await["status"], 4);
}

#[tokio::test]
async fn custom_statuses_are_mirrored_with_their_names() {
    let t = TestApp::spawn().await;
    let org = t
        .connected_with_webhook(json!({"channels": {"email": "off"}}))
        .await;
    let id = t.new_ticket("Order", "Where is my order?").await;
    t.wait_session(&org, id, "tracked", |_| true).await;
    t.simc.set_status(id, 6).await.unwrap();
    let s = t
        .wait_session(&org, id, "custom status", |s| {
            s["freshdesk_status"]["id"] == 6
        })
        .await;
    assert_eq!(s["freshdesk_status"]["name"], "Waiting on Customer");
}

#[tokio::test]
async fn a_resolved_ticket_is_answered_again_when_a_customer_reply_reopens_it() {
    let t = TestApp::spawn().await;
    let org = t.connected_with_webhook(json!({})).await;
    let id = t.new_ticket("Password", FAQ_QUESTION).await;
    t.wait_ai_posts(id, 1).await;
    t.simc.set_status(id, 4).await.unwrap();
    t.wait_session(&org, id, "resolved", |s| s["freshdesk_status"]["id"] == 4)
        .await;
    t.simc
        .customer_reply(id, "It came back: how do I reset my password?")
        .await
        .unwrap();
    t.wait_ai_posts(id, 2).await;
    t.settle().await;
    assert_eq!(t.ai_posts(id).await.len(), 2);
    assert_eq!(t.session(&org, id).await.body["freshdesk_status"]["id"], 2);
}

#[tokio::test]
async fn the_turn_limit_hands_the_ticket_off() {
    let t =
        TestApp::spawn_with(&[("TICKETSYNC__ENGINE__MAX_AI_REPLIES_PER_TICKET", "1".into())]).await;
    let org = t.connected_with_webhook(json!({})).await;
    let id = t.new_ticket("Password", FAQ_QUESTION).await;
    t.wait_ai_posts(id, 1).await;
    t.simc
        .customer_reply(id, "and how do I reset my password on the app?")
        .await
        .unwrap();
    let s = t
        .wait_session(&org, id, "handed off", |s| s["state"] == "handed_off")
        .await;
    assert_eq!(s["handoff"]["reason"], "turn_limit");
    t.settle().await;
    let posts = t.ai_posts(id).await;
    assert_eq!(posts.len(), 2);
    assert!(posts[1].0, "only the private handoff note after the limit");
}

#[tokio::test]
async fn duplicate_webhooks_produce_one_answer_per_customer_message() {
    let t = TestApp::spawn().await;
    t.connected_with_webhook(json!({})).await;
    t.simc
        .set_delivery(&DeliveryKnobs {
            duplicate_rate: Some(1.0),
            reorder_window_ms: Some(200),
            ..Default::default()
        })
        .await
        .unwrap();
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(t.new_ticket(&format!("P{i}"), FAQ_QUESTION).await);
    }
    for id in &ids {
        t.wait_ai_posts(*id, 1).await;
    }
    for id in &ids {
        t.simc
            .customer_reply(*id, "and how do I reset my password on mobile?")
            .await
            .unwrap();
    }
    for id in &ids {
        t.wait_ai_posts(*id, 2).await;
    }
    t.settle().await;
    for id in &ids {
        assert_eq!(t.ai_posts(*id).await.len(), 2, "ticket {id}");
    }
}

#[tokio::test]
async fn several_customer_messages_queued_together_get_one_answer() {
    let t = TestApp::spawn().await;
    let org = t.connected_with_webhook(json!({})).await;
    let id = t.new_ticket("Password", FAQ_QUESTION).await;
    t.wait_ai_posts(id, 1).await;
    t.settle().await;
    // Three messages arrive before the engine hears of any of them, then one webhook.
    for text in [
        "one more thing",
        "about the password",
        "how do I reset it on mobile?",
    ] {
        t.http
            .post(format!(
                "{}/_sim/tickets/{id}/customer_reply",
                t.sim.base_url()
            ))
            .json(&json!({"body": text, "webhook": false}))
            .send()
            .await
            .unwrap();
    }
    let hook = t.webhook_url(&org).await;
    let r = t
        .http
        .post(&hook)
        .json(&json!({"ticketId": id.to_string(), "triggered_event": "{reply_sent:sent}"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    t.wait_ai_posts(id, 2).await;
    t.settle().await;
    assert_eq!(
        t.ai_posts(id).await.len(),
        2,
        "one answer for the three messages"
    );
}

#[tokio::test]
async fn an_update_seen_first_for_a_ticket_created_after_connecting_is_gated_as_new() {
    let t = TestApp::spawn().await;
    let org = t.connected_with_webhook(json!({})).await;
    let mut ticket = NewTicket::new("Password", FAQ_QUESTION);
    ticket.webhook = Some(false);
    let id = t.new_ticket_with(ticket).await;
    let hook = t.webhook_url(&org).await;
    t.http
        .post(&hook)
        .json(&json!({"ticketId": id, "triggered_event": "{priority:{from:1,to:3}}"}))
        .send()
        .await
        .unwrap();
    t.wait_ai_posts(id, 1).await;
    // A ticket that predates the connection (and was not imported) is ignored.
    let mut old = NewTicket::new("Old", FAQ_QUESTION);
    old.webhook = Some(false);
    old.created_at = Some(chrono::Utc::now() - chrono::Duration::days(3));
    old.updated_at = old.created_at;
    let old = t.new_ticket_with(old).await;
    t.http
        .post(&hook)
        .json(&json!({"ticketId": old.to_string(), "triggered_event": "{reply_sent:sent}"}))
        .send()
        .await
        .unwrap();
    t.settle().await;
    assert!(t.ai_posts(old).await.is_empty());
    assert_eq!(
        t.inspect_ticket(&org, old).await["gate"]["decision"],
        "ignored"
    );
}

#[tokio::test]
async fn the_ai_never_answers_its_own_posts() {
    let t = TestApp::spawn().await;
    t.connected_with_webhook(json!({})).await;
    let id = t.new_ticket("Password", FAQ_QUESTION).await;
    t.wait_ai_posts(id, 1).await;
    t.settle().await;
    // Its reply and tag update fired rule 2 back at us; nothing more was posted.
    let deliveries = t.simc.deliveries().await.unwrap();
    assert!(deliveries.iter().filter(|d| d.ticket_id == id).count() >= 2);
    assert_eq!(t.ai_posts(id).await.len(), 1);
}

#[tokio::test]
async fn an_admin_can_hand_off_and_resume_a_session() {
    let t = TestApp::spawn().await;
    let org = t.connected_with_webhook(json!({})).await;
    let id = t.new_ticket("Password", FAQ_QUESTION).await;
    t.wait_ai_posts(id, 1).await;
    let session_id = t.session(&org, id).await.body["id"]
        .as_str()
        .unwrap()
        .to_string();
    let r = t
        .call(
            Method::POST,
            &format!("/api/v1/orgs/{org}/sessions/{session_id}/handoff"),
            Some(json!({"reason": "VIP customer"})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["state"], "handed_off");
    assert_eq!(r.body["handoff"]["reason"], "admin");
    assert_eq!(r.body["handoff"]["detail"], "VIP customer");
    t.simc
        .customer_reply(id, "how do I reset my password again?")
        .await
        .unwrap();
    t.settle().await;
    assert_eq!(
        t.ai_posts(id).await.len(),
        2,
        "reply + handoff note, no answer after handoff"
    );
    let r = t
        .call(
            Method::POST,
            &format!("/api/v1/orgs/{org}/sessions/{session_id}/resume"),
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["state"], "ai_active");
    assert_eq!(r.body["handoff"], Value::Null);
    t.simc
        .customer_reply(id, "so how do I reset my password?")
        .await
        .unwrap();
    t.wait_ai_posts(id, 3).await;
}

#[tokio::test]
async fn sessions_are_listed_newest_first_with_filters_and_a_cursor() {
    let t = TestApp::spawn().await;
    let org = t.connected_with_webhook(json!({})).await;
    let a = t.new_ticket("A", FAQ_QUESTION).await;
    t.wait_ai_posts(a, 1).await;
    t.settle().await;
    let b = t.new_ticket("B", "I need a human").await;
    t.wait_session(&org, b, "handed off", |s| s["state"] == "handed_off")
        .await;
    t.settle().await;
    let all = t
        .call(Method::GET, &format!("/api/v1/orgs/{org}/sessions"), None)
        .await
        .body;
    let tickets: Vec<u64> = all["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["ticket_id"].as_u64().unwrap())
        .collect();
    assert_eq!(tickets, [b, a]);
    assert!(all["items"][0].get("messages").is_none());
    assert!(all["items"][0]["last_message_at"].is_string());
    let handed = t
        .call(
            Method::GET,
            &format!("/api/v1/orgs/{org}/sessions?state=handed_off"),
            None,
        )
        .await
        .body;
    assert_eq!(handed["items"].as_array().unwrap().len(), 1);
    let page1 = t
        .call(
            Method::GET,
            &format!("/api/v1/orgs/{org}/sessions?limit=1"),
            None,
        )
        .await
        .body;
    assert_eq!(page1["items"][0]["ticket_id"], b);
    let cursor = page1["next_cursor"].as_str().unwrap();
    let page2 = t
        .call(
            Method::GET,
            &format!("/api/v1/orgs/{org}/sessions?limit=1&cursor={cursor}"),
            None,
        )
        .await
        .body;
    assert_eq!(page2["items"][0]["ticket_id"], a);
    assert_eq!(page2["next_cursor"], Value::Null);
    t.call(
        Method::GET,
        &format!("/api/v1/orgs/{org}/sessions?state=bogus"),
        None,
    )
    .await
    .assert_error(400, "invalid_query");
    t.call(
        Method::GET,
        &format!("/api/v1/orgs/{org}/sessions?cursor=zzz"),
        None,
    )
    .await
    .assert_error(400, "invalid_cursor");
    let sid = all["items"][0]["id"].as_str().unwrap();
    let one = t
        .call(
            Method::GET,
            &format!("/api/v1/orgs/{org}/sessions/{sid}"),
            None,
        )
        .await
        .body;
    assert_eq!(one["ticket_id"], b);
    assert!(one["messages"].is_array());
}

#[tokio::test]
async fn sessions_survive_a_restart_and_the_flow_goes_on() {
    let mut t = TestApp::spawn().await;
    let org = t.connected_with_webhook(json!({})).await;
    let id = t.new_ticket("Password", FAQ_QUESTION).await;
    t.wait_ai_posts(id, 1).await;
    t.settle().await;
    let before = t.session(&org, id).await.body;
    t.restart();
    // The restarted service listens on a new port: point the rules at it.
    let hook = t.webhook_url(&org).await;
    t.simc
        .set_webhook(&freshdesk_sim::WebhookConfig::to(hook))
        .await
        .unwrap();
    assert_eq!(t.session(&org, id).await.body, before);
    t.simc
        .customer_reply(id, "and how do I reset my password on mobile?")
        .await
        .unwrap();
    t.wait_ai_posts(id, 2).await;
    t.settle().await;
    assert_eq!(t.ai_posts(id).await.len(), 2);
}

#[tokio::test]
async fn idle_ticket_actors_are_passivated_and_come_back_on_the_next_event() {
    let t = TestApp::spawn_with(&[("TICKETSYNC__ENGINE__IDLE_PASSIVATE_SECS", "1".into())]).await;
    let org = t.connected_with_webhook(json!({})).await;
    let id = t.new_ticket("Password", FAQ_QUESTION).await;
    t.wait_ai_posts(id, 1).await;
    eventually(
        "the actor to passivate",
        Duration::from_secs(20),
        || async { (t.inspect_ticket(&org, id).await["actor"]["live"] == false).then_some(()) },
    )
    .await;
    t.simc
        .customer_reply(id, "and how do I reset my password on mobile?")
        .await
        .unwrap();
    t.wait_ai_posts(id, 2).await;
    t.settle().await;
    assert_eq!(t.ai_posts(id).await.len(), 2);
    let inspect = t.call(Method::GET, "/api/v1/inspect", None).await.body;
    assert!(inspect["passivations"].as_u64().unwrap() >= 1);
}
