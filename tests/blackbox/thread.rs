//! contract §4.4 and §3: the AI decides on the whole thread, once, and its posts are never
//! duplicated, whatever Freshdesk's one-second timestamps, delivery order or body rewriting.

use crate::harness::*;
use freshdesk_sim::{BodyRewrites, FaultsConfig, NewTicket};
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

/// Freshdesk alters what it stores (entities, wrapping, a signature, no `body_text`), and the
/// first write answers 504 although it was applied: the engine must recognise the post as its
/// own and not send it again.
async fn posted_once_despite_rewrites(t: &TestApp, org: &str, description: &str, private: bool) {
    t.simc
        .set_faults(&FaultsConfig {
            timeout_after_write: Some(1),
            ..FaultsConfig::default()
        })
        .await
        .unwrap();
    let id = t.new_ticket("Rewritten", description).await;
    t.wait_ai_posts(id, 1).await;
    t.settle().await;
    let posts = t.ai_posts(id).await;
    assert_eq!(
        posts.len(),
        1,
        "ticket {id}: exactly one AI post: {posts:?}"
    );
    assert_eq!(posts[0].0, private, "{posts:?}");
    let path = if private { "notes" } else { "reply" };
    let writes = t
        .sim_calls("POST", &format!("/api/v2/tickets/{id}/{path}"))
        .await;
    assert_eq!(
        writes.iter().map(|r| r.status).collect::<Vec<_>>(),
        [504],
        "one POST, applied and answered 504, never sent again"
    );
    // Mirrored once, as text (Freshdesk gave no `body_text`: the HTML body is read as text).
    let session = t.session(org, id).await.body;
    let ai: Vec<&str> = session["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["author"] == "ai")
        .map(|m| m["body_text"].as_str().unwrap())
        .collect();
    assert_eq!(ai.len(), 1, "{session}");
    assert!(
        !ai[0].contains('<') && ai[0].ends_with("-- Acme support, \"here to help\""),
        "{}",
        ai[0]
    );
}

#[tokio::test]
async fn a_post_freshdesk_rewrote_and_answered_504_is_recognised_and_not_sent_again() {
    let t = TestApp::spawn().await;
    let org = t.connected_with_webhook(json!({})).await;
    t.simc
        .set_body_rewrites(&BodyRewrites {
            reencode_entities: Some(true),
            wrap_in_div: Some(true),
            signature: Some("<p>-- Acme support, &quot;here to help&quot;</p>".into()),
            blank_body_text: Some(true),
        })
        .await
        .unwrap();
    // A public reply (the FAQ answer quotes 'Forgot password'), then a private handoff note.
    posted_once_despite_rewrites(&t, &org, FAQ_QUESTION, false).await;
    posted_once_despite_rewrites(&t, &org, "Can I talk to a \"real person\" & soon?", true).await;
    let inspect = t
        .call(reqwest::Method::GET, "/api/v1/inspect", None)
        .await
        .body;
    assert!(
        inspect["effects_reconciled"].as_u64() >= Some(2),
        "{inspect}"
    );
}
