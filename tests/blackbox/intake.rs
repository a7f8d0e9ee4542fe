//! contract §3: the webhook's answers to good and bad requests. A refused request stores nothing.
//! Clients that reset their connections mid-request never stall intake, and readiness says
//! when webhooks cannot be made durable.

use crate::harness::*;
use reqwest::Method;
use serde_json::json;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::AsyncWriteExt;

const FAQ_QUESTION: &str = "How do I reset my password?";

async fn inbox_depth(t: &TestApp) -> u64 {
    t.call(Method::GET, "/api/v1/inspect", None).await.body["inbox_depth"]
        .as_u64()
        .unwrap()
}

#[tokio::test]
async fn an_accepted_webhook_answers_202_with_an_event_id() {
    let t = TestApp::spawn().await;
    let org = t.connected_org(json!({})).await.0;
    let hook = t.webhook_url(&org).await;
    let r = t
        .http
        .post(&hook)
        .json(&json!({"ticketId": "999", "triggered_event": "{weird:event}", "extra": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["status"], "accepted");
    assert!(uuid::Uuid::parse_str(body["event_id"].as_str().unwrap()).is_ok());
    let shown = t.connection(&org).await.body;
    assert!(shown["last_webhook_at"].is_string());
}

#[tokio::test]
async fn bad_webhooks_get_the_error_shape_and_store_nothing() {
    let t = TestApp::spawn().await;
    let org = t.connected_org(json!({})).await.0;
    let hook = t.webhook_url(&org).await;
    let cases: Vec<(Vec<u8>, u16, &str)> = vec![
        (b"{not json".to_vec(), 400, "invalid_payload"),
        (b"{}".to_vec(), 400, "invalid_payload"),
        (br#"{"ticketId": "abc"}"#.to_vec(), 400, "invalid_payload"),
        (
            br#"{"ticketId": "{{ticket.id}}"}"#.to_vec(),
            400,
            "invalid_payload",
        ),
        (br#"{"ticketId": -5}"#.to_vec(), 400, "invalid_payload"),
        (b"[]".to_vec(), 400, "invalid_payload"),
        (vec![0xff, 0xfe, 0x00], 400, "invalid_payload"),
        (
            format!("{{\"ticketId\":\"1\",\"pad\":\"{}\"}}", "x".repeat(70_000)).into_bytes(),
            413,
            "payload_too_large",
        ),
    ];
    for (body, status, code) in cases {
        let r = t
            .http
            .post(&hook)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), status);
        let v: serde_json::Value = r.json().await.unwrap();
        assert_eq!(v["error"]["code"], code, "{v}");
    }
    // The token's last character swapped for another one, so the forgery is never the token.
    let (kept, last) = hook.split_at(hook.len() - 1);
    let forged = format!("{kept}{}", if last == "A" { "B" } else { "A" });
    for url in [
        forged,
        format!("{}/webhooks/freshdesk/nope", t.base()),
        hook[..hook.len() - 5].to_string(),
    ] {
        let r = t
            .http
            .post(&url)
            .json(&json!({"ticketId": "1"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401);
        let v: serde_json::Value = r.json().await.unwrap();
        assert_eq!(v["error"]["code"], "invalid_token");
    }
    assert_eq!(inbox_depth(&t).await, 0);
    assert!(t.connection(&org).await.body["last_webhook_at"].is_null());
}

#[tokio::test]
async fn a_disconnected_org_answers_410_and_keeps_its_url_on_reconnect() {
    let t = TestApp::spawn().await;
    let org = t.connected_org(json!({})).await.0;
    let hook = t.webhook_url(&org).await;
    t.disconnect(&org).await;
    let r = t
        .http
        .post(&hook)
        .json(&json!({"ticketId": "1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 410);
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], "integration_disconnected");
    assert_eq!(inbox_depth(&t).await, 0);
    t.save(&org, json!({"domain": t.sim_domain()})).await;
    assert_eq!(t.webhook_url(&org).await, hook);
    let r = t
        .http
        .post(&hook)
        .json(&json!({"ticketId": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
}

/// The route remembers which orgs are connected: a webhook accepted just before the
/// disconnect must not keep the next one accepted, nor a refused one keep refusing after the
/// reconnect, nor a deleted org's URL still take events.
#[tokio::test]
async fn an_org_accepted_then_disconnected_answers_410_at_once_and_202_again_after_reconnect() {
    let t = TestApp::spawn().await;
    let org = t.connected_org(json!({})).await.0;
    let hook = t.webhook_url(&org).await;
    let post = |ticket: u64| t.http.post(&hook).json(&json!({"ticketId": ticket})).send();
    assert_eq!(post(1).await.unwrap().status(), 202);
    t.disconnect(&org).await;
    let r = post(2).await.unwrap();
    assert_eq!(r.status(), 410);
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], "integration_disconnected");
    t.save(&org, json!({"domain": t.sim_domain()})).await;
    assert_eq!(post(3).await.unwrap().status(), 202);
    let deleted = t
        .call(Method::DELETE, &format!("/api/v1/orgs/{org}"), None)
        .await;
    assert_eq!(deleted.status, 204, "{}", deleted.body);
    assert_eq!(post(4).await.unwrap().status(), 410);
}

#[tokio::test]
async fn the_freshdesk_webhook_wrapper_body_is_the_same_event_with_the_same_checks() {
    let t = TestApp::spawn().await;
    let org = t.connected_org(json!({})).await.0;
    let hook = t.webhook_url(&org).await;
    // No webhook rule in the simulator: this test delivers the webhook itself.
    let id = t.new_ticket("Password", FAQ_QUESTION).await;
    for ticket_id in [json!(id), json!(id.to_string())] {
        let r = t
            .http
            .post(&hook)
            .json(&json!({"freshdesk_webhook": {
                "ticket_id": ticket_id,
                "triggered_event": "{ticket_action:created}"
            }}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 202);
        let body: serde_json::Value = r.json().await.unwrap();
        assert_eq!(body["status"], "accepted");
    }
    assert_eq!(t.wait_ai_posts(id, 1).await.len(), 1);
    // The same refusals, naming the field as it was sent.
    for bad in [
        json!(""),
        json!("12a"),
        json!(-1),
        json!(1.5),
        json!(0),
        json!(null),
        json!([1]),
    ] {
        let post = |body: serde_json::Value| {
            t.call_raw(
                Method::POST,
                &hook[t.base().len()..],
                body.to_string().into_bytes(),
                None,
            )
        };
        let flat = post(json!({"ticketId": bad})).await;
        let wrapped = post(json!({"freshdesk_webhook": {"ticket_id": bad}})).await;
        flat.assert_error(400, "invalid_payload");
        wrapped.assert_error(400, "invalid_payload");
        assert_eq!(
            wrapped.body["error"]["message"],
            flat.body["error"]["message"]
                .as_str()
                .unwrap()
                .replace("ticketId", "ticket_id"),
            "{bad}"
        );
    }
    for bad in [
        json!({"freshdesk_webhook": {}}),
        json!({"freshdesk_webhook": "12"}),
        json!({"freshdesk_webhook": null}),
    ] {
        t.call_raw(
            Method::POST,
            &hook[t.base().len()..],
            bad.to_string().into_bytes(),
            None,
        )
        .await
        .assert_error(400, "invalid_payload");
    }
    t.settle().await;
}

#[tokio::test]
async fn other_methods_on_the_webhook_url_answer_405_with_the_error_shape() {
    let t = TestApp::spawn().await;
    let org = t.connected_org(json!({})).await.0;
    let hook = t.webhook_url(&org).await;
    for method in [Method::GET, Method::PUT, Method::DELETE, Method::PATCH] {
        let r = t
            .http
            .request(method.clone(), &hook)
            .json(&json!({"ticketId": "1"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 405, "{method}");
        assert_eq!(
            r.headers().get("allow").and_then(|v| v.to_str().ok()),
            Some("POST"),
            "{method}"
        );
        let resp = Resp {
            status: r.status(),
            body: r.json().await.unwrap(),
        };
        resp.assert_error(405, "method_not_allowed");
    }
    assert_eq!(inbox_depth(&t).await, 0);
}

/// Where a raw webhook connection is reset (SO_LINGER 0, so the close sends RST).
#[derive(Debug, Clone, Copy)]
enum Cut {
    /// Right after the whole request is written.
    AfterRequest,
    /// Half-way through the body.
    MidBody,
    /// A moment after the request, while the service appends and flushes.
    WhileFlushing,
}

/// Send a webhook for `ticket` on a raw connection and reset it at `cut`.
async fn reset_webhook(addr: SocketAddr, path: &str, ticket: u64, cut: Cut, jitter: u64) {
    let body = format!(r#"{{"ticketId":"{ticket}"}}"#);
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n",
        body.len()
    );
    let request = match cut {
        Cut::MidBody => format!("{head}{}", &body[..body.len() / 2]),
        Cut::AfterRequest | Cut::WhileFlushing => format!("{head}{body}"),
    };
    let Ok(mut stream) = tokio::net::TcpStream::connect(addr).await else {
        return;
    };
    let _ = stream.set_nodelay(true);
    let _ = stream.write_all(request.as_bytes()).await;
    if let Cut::WhileFlushing = cut {
        // Spread the resets over the time the service takes to append and flush.
        tokio::time::sleep(Duration::from_micros(jitter * 150)).await;
    }
    // Deprecated only because a non-zero linger blocks the thread on drop; zero never does.
    #[allow(deprecated)]
    let _ = stream.set_linger(Some(Duration::ZERO));
    drop(stream);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn clients_resetting_their_connections_never_stall_intake_nor_lose_an_acknowledged_event() {
    let t = TestApp::spawn().await;
    let org = t.connected_org(json!({})).await.0;
    let hook = t.webhook_url(&org).await;
    let url = reqwest::Url::parse(&hook).unwrap();
    let addr: SocketAddr = format!("127.0.0.1:{}", url.port().unwrap())
        .parse()
        .unwrap();
    let path = url.path().to_string();
    let acknowledge = |ticket: u64| {
        let request = t
            .http
            .post(&hook)
            .json(&json!({"ticketId": ticket.to_string()}))
            .send();
        async move {
            // A deadline, not a timing assertion: a stalled intake never answers at all.
            let r = tokio::time::timeout(Duration::from_secs(20), request)
                .await
                .unwrap_or_else(|_| {
                    panic!("webhook for ticket {ticket} not answered: intake stalled")
                })
                .unwrap();
            assert_eq!(r.status(), 202, "ticket {ticket}");
        }
    };
    let cuts = [Cut::AfterRequest, Cut::MidBody, Cut::WhileFlushing];
    let mut tickets = Vec::new();
    for round in 0..6 {
        let id = t
            .new_ticket(&format!("Password {round}"), FAQ_QUESTION)
            .await;
        tickets.push(id);
        let resets = (0..40_u64).map(|i| {
            reset_webhook(
                addr,
                &path,
                id,
                cuts[(i as usize + round) % cuts.len()],
                i % 20,
            )
        });
        let ((), _) = tokio::join!(acknowledge(id), futures::future::join_all(resets));
    }
    // After the bursts, intake still answers promptly, and every acknowledged event is applied.
    let last = t
        .new_ticket("Password after the bursts", FAQ_QUESTION)
        .await;
    acknowledge(last).await;
    tickets.push(last);
    for id in tickets {
        assert_eq!(t.wait_ai_posts(id, 1).await.len(), 1, "ticket {id}");
    }
    t.settle().await;
    let ready = t
        .http
        .get(format!("{}/readyz", t.base()))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 200);
}

#[tokio::test]
async fn readiness_is_503_while_webhooks_cannot_be_made_durable_and_recovers_by_itself() {
    let t = TestApp::spawn().await;
    if t.backend.skips_sled_only_test(
        "sled's flush-fault switches; on PostgreSQL see \
         store::postgres::tests::durability_fails_while_the_server_is_down_and_recovers_after",
    ) {
        return;
    }
    let org = t.connected_org(json!({})).await.0;
    let hook = t.webhook_url(&org).await;
    let readyz = || t.call(Method::GET, "/readyz", None);
    let webhook = |ticket: u64| {
        t.http
            .post(&hook)
            .json(&json!({"ticketId": ticket.to_string()}))
            .send()
    };
    assert_eq!(readyz().await.status, 200);

    // A failing disk: the webhook is refused, readiness says why.
    let refused = t.new_ticket("Password", FAQ_QUESTION).await;
    t.flush_faults().set_fail(true);
    let r = webhook(refused).await.unwrap();
    assert_eq!(r.status(), 503);
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], "storage_unavailable");
    readyz().await.assert_error(503, "storage_unavailable");
    t.flush_faults().set_fail(false);
    eventually(
        "ready once flushes succeed",
        Duration::from_secs(10),
        || async { (readyz().await.status == 200).then_some(()) },
    )
    .await;

    // A stalled disk: the webhook waits, and readiness turns 503 once writes have waited too
    // long; when the disk comes back the webhook is acknowledged and answered.
    let stalled = t.new_ticket("Password again", FAQ_QUESTION).await;
    t.flush_faults().set_stall(true);
    let pending = webhook(stalled);
    let unready = async {
        eventually(
            "503 while the flush is stuck",
            Duration::from_secs(20),
            || async {
                let r = readyz().await;
                (r.status == 503).then_some(r)
            },
        )
        .await
        .assert_error(503, "storage_unavailable");
        t.flush_faults().set_stall(false);
    };
    let (r, ()) = tokio::join!(pending, unready);
    assert_eq!(r.unwrap().status(), 202);
    assert_eq!(readyz().await.status, 200);
    assert_eq!(t.wait_ai_posts(stalled, 1).await.len(), 1);
}
