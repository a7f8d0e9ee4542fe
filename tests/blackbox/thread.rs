//! SPEC §4.4 and §3: the AI decides on the whole thread, once, and its posts are never
//! duplicated, whatever Freshdesk's one-second timestamps, delivery order or body rewriting.

use crate::harness::*;
use freshdesk_sim::NewTicket;
use serde_json::json;

const FAQ_QUESTION: &str = "How do I reset my password?";

#[tokio::test]
async fn a_reply_in_the_creation_second_read_after_a_lost_creation_webhook_gets_one_answer_to_the_latest_message(
) {
    let t = TestApp::spawn().await;
    let org = t.connected_with_webhook(json!({})).await;
    // The customer writes again within the second the ticket was opened; the creation webhook
    // is lost, so the engine's first read comes after both messages.
    let mut ticket = NewTicket::new("Password", FAQ_QUESTION);
    ticket.customer_replies = Some(vec!["Actually, I want to talk to a human.".into()]);
    ticket.webhook = Some(false);
    let id = t.new_ticket_with(ticket).await;
    let hook = t.webhook_url(&org).await;
    let r = t
        .http
        .post(&hook)
        .json(&json!({"ticketId": id.to_string(), "triggered_event": "{reply_sent:sent}"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    t.wait_ai_posts(id, 1).await;
    t.settle().await;

    let posts = t.ai_posts(id).await;
    assert_eq!(posts.len(), 1, "exactly one AI answer: {posts:?}");
    assert!(
        posts[0].0 && posts[0].1.contains("customer_requested"),
        "the answer is to the latest message (a handoff), not the description: {posts:?}"
    );
    let session = t.session(&org, id).await.body;
    assert_eq!(session["state"], "handed_off");
    assert_eq!(session["handoff"]["reason"], "customer_requested");
    let messages = session["messages"].as_array().unwrap();
    let authors: Vec<&str> = messages
        .iter()
        .map(|m| m["author"].as_str().unwrap())
        .collect();
    assert_eq!(authors, ["contact", "contact", "ai"], "Freshdesk's order");
}
