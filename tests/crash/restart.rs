//! A restart of the binary keeps sessions and the conversation going.

use crate::support::*;
use std::time::Duration;

#[tokio::test]
async fn restart_keeps_sessions_and_answers_follow_ups() {
    let mut w = World::start().await;
    let mut tickets = Vec::new();
    for i in 0..3 {
        tickets.push(w.new_faq_ticket(&format!("Password {i}")).await);
    }
    w.wait_ai_posts(&tickets, 1, Duration::from_secs(20)).await;
    w.settle(Duration::from_secs(30)).await;
    let mut before = Vec::new();
    for &id in &tickets {
        let (status, session) = w.session(id).await;
        assert_eq!(status, 200, "{session}");
        before.push(session);
    }

    w.restart().await;

    for (&id, old) in tickets.iter().zip(&before) {
        let (status, session) = w.session(id).await;
        assert_eq!(
            status, 200,
            "ticket {id}: session readable after restart: {session}"
        );
        assert_eq!(session["id"], old["id"], "same session id");
        assert_eq!(session["state"], "ai_active");
        assert_eq!(
            session["messages"], old["messages"],
            "ticket {id}: messages kept"
        );
        assert_eq!(authors(&session), ["contact", "ai"], "ticket {id}");
    }
    let (status, list) = w
        .admin(
            reqwest::Method::GET,
            &format!("/api/v1/orgs/{}/sessions", w.org),
            None,
        )
        .await;
    assert_eq!(status, 200, "{list}");
    assert_eq!(list["items"].as_array().map(Vec::len), Some(tickets.len()));

    for &id in &tickets {
        w.simc
            .customer_reply(id, "Thanks. How do I reset my password on the mobile app?")
            .await
            .expect("customer reply");
    }
    w.wait_ai_posts(&tickets, 2, Duration::from_secs(20)).await;
    w.settle(Duration::from_secs(30)).await;
    let posted = applied_replies(&w.requests().await);
    for &id in &tickets {
        let posts = w.ai_posts(id).await;
        assert_eq!(
            posts.len(),
            2,
            "ticket {id}: one answer per question: {posts:?}"
        );
        assert!(posts.iter().all(|(private, _)| !private), "{posts:?}");
        assert_eq!(posted.get(&id), Some(&2), "ticket {id}: {posted:?}");
        let (_, session) = w.session(id).await;
        assert_eq!(
            authors(&session),
            ["contact", "ai", "contact", "ai"],
            "ticket {id}"
        );
    }
    w.assert_logs_clean();
}

fn authors(session: &serde_json::Value) -> Vec<String> {
    session["messages"]
        .as_array()
        .map(|m| {
            m.iter()
                .map(|m| m["author"].as_str().unwrap_or("").to_string())
                .collect()
        })
        .unwrap_or_default()
}
