//! The echoes of the AI's own writes (contract §3, §4.4): a hint that can only mean "a
//! conversation was added" is checked by listing the conversations alone; the ticket is read,
//! and a decision taken on the whole thread, only when something new is there. These tests
//! try to make that saving hide a customer message or answer a partial thread: echoes
//! duplicated, lost or reordered, customer replies racing them or written in the same second,
//! changes whose webhooks never come.

use crate::harness::*;
use freshdesk_sim::DeliveryKnobs;
use serde_json::{json, Value};

const FAQ_QUESTION: &str = "How do I reset my password?";
const FAQ_FOLLOW_UP: &str = "And how do I reset my password on mobile?";

/// `METHOD path` of the simulator's API requests for ticket `id` after request `seq`.
async fn ticket_calls_after(t: &TestApp, id: u64, seq: u64) -> Vec<String> {
    let prefix = format!("/api/v2/tickets/{id}");
    t.sim_requests_after(seq)
        .await
        .into_iter()
        .filter(|r| r.path == prefix || r.path.starts_with(&format!("{prefix}/")))
        .map(|r| format!("{} {}", r.method, r.path))
        .collect()
}

/// The sequence number of the AI's `n`-th public reply on ticket `id` (from 1).
async fn reply_seq(t: &TestApp, id: u64, n: usize) -> u64 {
    t.sim_calls("POST", &format!("/api/v2/tickets/{id}/reply"))
        .await
        .get(n - 1)
        .map(|r| r.seq)
        .expect("the AI replied")
}

/// A customer reply that fires no webhook (its delivery is lost).
async fn silent_customer_reply(t: &TestApp, id: u64, body: &str) {
    let r = t
        .http
        .post(format!(
            "{}/_sim/tickets/{id}/customer_reply",
            t.simc.base_url()
        ))
        .json(&json!({"body": body, "webhook": false}))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.status());
}

fn authors(session: &Value) -> Vec<String> {
    session["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["author"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn the_echo_of_the_ai_reply_is_checked_by_listing_conversations_alone_even_delivered_twice() {
    let t = TestApp::spawn().await;
    let _org = t.connected_with_webhook(json!({})).await;
    // Every webhook is delivered twice: the creation's and the reply's echo.
    t.simc
        .set_delivery(&DeliveryKnobs {
            duplicate_rate: Some(1.0),
            ..DeliveryKnobs::default()
        })
        .await
        .unwrap();
    let id = t.new_ticket("Password", FAQ_QUESTION).await;
    t.wait_ai_posts(id, 1).await;
    t.settle().await;

    let echoes = t
        .simc
        .deliveries()
        .await
        .unwrap()
        .into_iter()
        .filter(|d| {
            d.ticket_id == id
                && d.payload["triggered_event"] == "{reply_sent:sent}"
                && d.status == Some(202)
        })
        .count();
    assert_eq!(echoes, 2, "the echo of the reply was delivered twice");
    let after = ticket_calls_after(&t, id, reply_seq(&t, id, 1).await).await;
    assert!(
        after.contains(&format!("GET /api/v2/tickets/{id}/conversations")),
        "the echo is checked against the conversations: {after:?}"
    );
    assert!(
        !after.contains(&format!("GET /api/v2/tickets/{id}")),
        "nothing new in the conversations: the ticket is not read again: {after:?}"
    );
    assert_eq!(t.ai_posts(id).await.len(), 1, "answered once");
}

#[tokio::test]
async fn a_customer_reply_racing_the_echo_of_the_ai_reply_is_answered_once_whatever_the_delivery_order(
) {
    let t = TestApp::spawn().await;
    let org = t.connected_with_webhook(json!({})).await;
    // Deliveries late, shuffled within 800 ms and often duplicated.
    t.simc
        .set_delivery(&DeliveryKnobs {
            duplicate_rate: Some(0.5),
            reorder_window_ms: Some(800),
            delay_ms: Some(100),
            seed: Some(13),
            ..DeliveryKnobs::default()
        })
        .await
        .unwrap();
    let mut ids = Vec::new();
    for i in 0..3 {
        ids.push(t.new_ticket(&format!("Password {i}"), FAQ_QUESTION).await);
    }
    for &id in &ids {
        // The customer writes again right after the AI's answer: usually within its second,
        // and before its echo is delivered.
        t.wait_ai_posts(id, 1).await;
        t.simc.customer_reply(id, FAQ_FOLLOW_UP).await.unwrap();
    }
    for &id in &ids {
        t.wait_ai_posts(id, 2).await;
    }
    t.settle().await;
    for &id in &ids {
        let posts = t.ai_posts(id).await;
        assert_eq!(
            posts.len(),
            2,
            "ticket {id}: one answer per message: {posts:?}"
        );
        let session = t.session(&org, id).await.body;
        assert_eq!(
            authors(&session),
            ["contact", "ai", "contact", "ai"],
            "ticket {id}"
        );
    }
}

#[tokio::test]
async fn with_every_echo_lost_a_customer_reply_is_still_answered_on_the_whole_thread() {
    let t = TestApp::spawn().await;
    let org = t.connected_with_webhook(json!({})).await;
    // Rule 2 no longer fires on API changes: every echo of the AI's writes is lost; the
    // customer's replies still fire it.
    let hook = t.webhook_url(&org).await;
    t.simc
        .set_webhook(&freshdesk_sim::WebhookConfig {
            fire_on_api_changes: Some(false),
            ..freshdesk_sim::WebhookConfig::to(hook)
        })
        .await
        .unwrap();
    let id = t.new_ticket("Password", FAQ_QUESTION).await;
    t.wait_ai_posts(id, 1).await;
    // Two customer messages in the same second; only the second one's webhook arrives.
    silent_customer_reply(&t, id, "I tried, the link never came.").await;
    t.simc.customer_reply(id, FAQ_FOLLOW_UP).await.unwrap();
    t.wait_ai_posts(id, 2).await;
    t.settle().await;

    let posts = t.ai_posts(id).await;
    assert_eq!(posts.len(), 2, "one answer to both new messages: {posts:?}");
    let session = t.session(&org, id).await.body;
    assert_eq!(
        authors(&session),
        ["contact", "ai", "contact", "contact", "ai"],
        "both messages were mirrored before the answer"
    );
    let after = ticket_calls_after(&t, id, reply_seq(&t, id, 1).await).await;
    let second = after
        .iter()
        .position(|c| c == &format!("POST /api/v2/tickets/{id}/reply"))
        .expect("the second reply");
    assert!(
        after[..second].contains(&format!("GET /api/v2/tickets/{id}")),
        "a new customer message is decided on the ticket as read: {after:?}"
    );
}

#[tokio::test]
async fn changes_without_webhooks_after_an_echo_checked_by_conversations_alone_are_found_by_the_sweep(
) {
    let t = TestApp::spawn_with(&[("TICKETSYNC__ENGINE__SWEEP_INTERVAL_SECS", "1".into())]).await;
    let org = t.connected_with_webhook(json!({})).await;
    let id = t.new_ticket("Password", FAQ_QUESTION).await;
    t.wait_ai_posts(id, 1).await;
    // An agent sets the ticket pending right after the AI's reply and its echo, and no
    // webhook tells: the sweep must still see the ticket as changed.
    t.simc
        .update_ticket(id, &json!({"status": 3, "webhook": false}))
        .await
        .unwrap();
    t.wait_session(&org, id, "the sweep mirrors the pending status", |s| {
        s["freshdesk_status"]["id"] == 3
    })
    .await;
    // Then the customer writes (reopening the ticket) and that webhook is lost too.
    silent_customer_reply(&t, id, FAQ_FOLLOW_UP).await;
    let session = t
        .wait_session(
            &org,
            id,
            "the sweep mirrors the reply and it is answered",
            |s| authors(s).len() == 4,
        )
        .await;
    assert_eq!(authors(&session), ["contact", "ai", "contact", "ai"]);
    t.settle().await;
    assert_eq!(t.ai_posts(id).await.len(), 2, "the reply was answered once");
    assert_eq!(t.session(&org, id).await.body["freshdesk_status"]["id"], 2);
}

/// Post a "reply sent" hint for `id` to the org's webhook, as Freshdesk's rule 2 would.
async fn reply_hint(t: &TestApp, org: &str, id: u64) {
    let hook = t.webhook_url(org).await;
    let r = t
        .http
        .post(&hook)
        .json(&json!({"ticketId": id.to_string(), "triggered_event": "{reply_sent:sent}"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
}

/// A thread of a full page: after the engine mirrored 100 conversations, agents delete some in
/// Freshdesk, so every later one moves up and the next customer message lands on the page the
/// engine had already read in full. It must still be found and answered.
#[tokio::test]
async fn a_customer_reply_after_conversations_were_deleted_from_a_full_first_page_is_answered() {
    let t = TestApp::spawn().await;
    let org = t.connected_with_webhook(json!({})).await;
    let mut ticket = freshdesk_sim::NewTicket::new("Long thread", FAQ_QUESTION);
    ticket.customer_replies = Some(
        (1..=100)
            .map(|i| format!("Reminder {i}: {FAQ_QUESTION}"))
            .collect(),
    );
    ticket.webhook = Some(false);
    let id = t.new_ticket_with(ticket).await;
    reply_hint(&t, &org, id).await;
    t.wait_ai_posts(id, 1).await;
    t.settle().await;
    let session = t.session(&org, id).await.body;
    assert_eq!(
        session["messages"].as_array().unwrap().len(),
        102,
        "the description, 100 replies and the AI's answer mirrored: {session}"
    );

    // Two of the customer's replies deleted: 99 conversations left, all on page 1.
    let conversations = t.sim_ticket(id).await["conversations"].clone();
    for c in &conversations.as_array().unwrap()[..2] {
        t.simc
            .delete_conversation(c["id"].as_u64().unwrap())
            .await
            .unwrap();
    }
    let reply = t
        .simc
        .customer_reply(id, "Still stuck, how do I reset my password?")
        .await
        .unwrap();
    let reply_id = reply["id"].as_u64().unwrap();

    t.wait_ai_posts(id, 2).await;
    t.settle().await;
    let session = t.session(&org, id).await.body;
    let mirrored: Vec<u64> = session["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["conversation_id"].as_u64())
        .collect();
    assert!(
        mirrored.contains(&reply_id),
        "the new reply {reply_id} is mirrored: {mirrored:?}"
    );
    assert_eq!(t.ai_posts(id).await.len(), 2, "one answer to the new reply");
}

/// A ticket deleted in Freshdesk while tracked: a "reply sent" hint costs one refused listing
/// and one refused ticket read, not a second listing.
#[tokio::test]
async fn a_reply_hint_for_a_deleted_ticket_lists_its_conversations_once() {
    let t = TestApp::spawn().await;
    let org = t.connected_with_webhook(json!({})).await;
    let id = t.new_ticket("Password", FAQ_QUESTION).await;
    t.wait_ai_posts(id, 1).await;
    t.settle().await;
    t.simc.delete_ticket(id).await.unwrap();
    let seq = t.last_sim_seq().await;

    reply_hint(&t, &org, id).await;
    let ticket_path = format!("/api/v2/tickets/{id}");
    let listing_path = format!("/api/v2/tickets/{id}/conversations");
    eventually(
        "the hint's ticket read",
        std::time::Duration::from_secs(20),
        || async {
            t.sim_requests_after(seq)
                .await
                .iter()
                .any(|r| r.method == "GET" && r.path == ticket_path)
                .then_some(())
        },
    )
    .await;
    t.settle().await;
    let calls = t.sim_requests_after(seq).await;
    let count = |path: &str| {
        calls
            .iter()
            .filter(|r| r.method == "GET" && r.path == path)
            .map(|r| r.status)
            .collect::<Vec<_>>()
    };
    assert_eq!(count(&listing_path), [404], "listed once: {calls:?}");
    assert_eq!(count(&ticket_path), [404], "read once: {calls:?}");
    let inspect = t.inspect_ticket(&org, id).await;
    assert!(
        inspect.to_string().contains("no longer exists"),
        "the record says why: {inspect}"
    );
}
