//! Access (contract §12): org admin tokens, org admins scoped to their own org on every
//! route, and deleting an org with everything stored for it.

use crate::harness::*;
use freshdesk_sim::FaultsConfig;
use reqwest::Method;
use serde_json::{json, Value};
use sha2::Digest;
use std::time::Duration;
use testkit::pg::TestBackend;

/// `POST …/tokens` as the operator: (token id, token text).
async fn create_token(t: &TestApp, org: &str, name: &str) -> (String, String) {
    let r = t
        .call(
            Method::POST,
            &format!("/api/v1/orgs/{org}/tokens"),
            Some(json!({"name": name})),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    (
        r.body["id"].as_str().unwrap().to_string(),
        r.body["token"].as_str().unwrap().to_string(),
    )
}

/// A connected org whose simulator rules point at it, with one answered session:
/// (org id, ticket id, session id).
async fn org_with_session(t: &TestApp, subject: &str) -> (String, u64, String) {
    let org = t.connected_with_webhook(json!({})).await;
    let ticket = t.new_ticket(subject, "How do I reset my password?").await;
    let session = t
        .wait_session(&org, ticket, "the session of the new ticket", |s| {
            s["messages"].as_array().is_some_and(|m| m.len() >= 2)
        })
        .await;
    (org, ticket, session["id"].as_str().unwrap().to_string())
}

#[tokio::test]
async fn an_org_admin_token_is_shown_once_listed_without_its_text_and_dead_once_revoked() {
    let t = TestApp::spawn().await;
    let org = t.create_org("Acme").await;

    let r = t
        .call(
            Method::POST,
            &format!("/api/v1/orgs/{org}/tokens"),
            Some(json!({"name": "  Support lead  "})),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let token = r.body["token"].as_str().unwrap().to_string();
    let id = r.body["id"].as_str().unwrap().to_string();
    assert_eq!(r.body["name"], "Support lead");
    assert_eq!(r.body["last_used_at"], Value::Null);
    assert!(r.body["created_at"].is_string());
    assert!(token.starts_with("tso_") && token.len() == 47, "{token}");

    let r = t
        .call_as(
            Method::GET,
            &format!("/api/v1/orgs/{org}"),
            None,
            Some(&token),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);

    let list = t
        .call(Method::GET, &format!("/api/v1/orgs/{org}/tokens"), None)
        .await;
    assert_eq!(list.status, 200);
    let items = list.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["id"], id.as_str());
    assert!(items[0]["last_used_at"].is_string(), "{}", list.body);
    assert_eq!(
        items[0].as_object().unwrap().len(),
        4,
        "id, name, created_at, last_used_at only: {}",
        list.body
    );
    assert!(!list.body.to_string().contains(&token));

    let r = t
        .call(
            Method::DELETE,
            &format!("/api/v1/orgs/{org}/tokens/{id}"),
            None,
        )
        .await;
    assert_eq!(r.status, 204, "{}", r.body);
    t.call_as(
        Method::GET,
        &format!("/api/v1/orgs/{org}"),
        None,
        Some(&token),
    )
    .await
    .assert_error(401, "unauthorized");
    t.call(
        Method::DELETE,
        &format!("/api/v1/orgs/{org}/tokens/{id}"),
        None,
    )
    .await
    .assert_error(404, "token_not_found");
    let list = t
        .call(Method::GET, &format!("/api/v1/orgs/{org}/tokens"), None)
        .await;
    assert_eq!(list.body["items"], json!([]));
}

#[tokio::test]
async fn storage_keeps_an_org_admin_token_s_hash_and_never_the_token() {
    let mut t = TestApp::spawn().await;
    let org = t.create_org("Acme").await;
    let (_, token) = create_token(&t, &org, "kept").await;
    let r = t
        .call_as(
            Method::GET,
            &format!("/api/v1/orgs/{org}"),
            None,
            Some(&token),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    t.app.take().expect("running").stop();

    let secret = token.strip_prefix("tso_").unwrap();
    let text = stored_where(&t, |bytes| contains(bytes, secret.as_bytes()));
    assert!(text.is_empty(), "the token is stored:\n{}", text.join("\n"));
    let hash: [u8; 32] = sha2::Sha256::digest(token.as_bytes()).into();
    let hex: String = hash.iter().map(|b| format!("{b:02x}")).collect();
    let hashed = stored_where(&t, |bytes| {
        contains(bytes, &hash) || contains(bytes, hex.as_bytes())
    });
    assert!(!hashed.is_empty(), "the token's hash is not stored either");
}

#[tokio::test]
async fn token_requests_with_a_bad_name_or_an_unknown_org_are_refused_and_create_nothing() {
    let t = TestApp::spawn().await;
    let org = t.create_org("Acme").await;
    for body in [json!({"name": "  "}), json!({"name": "x".repeat(101)})] {
        t.call(
            Method::POST,
            &format!("/api/v1/orgs/{org}/tokens"),
            Some(body),
        )
        .await
        .assert_error(422, "invalid_request");
    }
    t.call(
        Method::POST,
        &format!("/api/v1/orgs/{org}/tokens"),
        Some(json!({"nom": "x"})),
    )
    .await
    .assert_error(400, "invalid_json");
    let unknown = uuid_text();
    t.call(
        Method::POST,
        &format!("/api/v1/orgs/{unknown}/tokens"),
        Some(json!({"name": "x"})),
    )
    .await
    .assert_error(404, "org_not_found");
    t.call(Method::GET, &format!("/api/v1/orgs/{unknown}/tokens"), None)
        .await
        .assert_error(404, "org_not_found");
    let list = t
        .call(Method::GET, &format!("/api/v1/orgs/{org}/tokens"), None)
        .await;
    assert_eq!(list.body["items"], json!([]));
}

fn uuid_text() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// Everything the operator can see of an org, to compare before and after.
async fn operator_view(t: &TestApp, org: &str, ticket: u64) -> Value {
    let mut view = json!({});
    for (name, path) in [
        ("org", format!("/api/v1/orgs/{org}")),
        ("freshdesk", format!("/api/v1/orgs/{org}/freshdesk")),
        ("sessions", format!("/api/v1/orgs/{org}/sessions")),
        (
            "session",
            format!("/api/v1/orgs/{org}/tickets/{ticket}/session"),
        ),
        ("tokens", format!("/api/v1/orgs/{org}/tokens")),
    ] {
        let r = t.call(Method::GET, &path, None).await;
        assert_eq!(r.status, 200, "{path}: {}", r.body);
        view[name] = r.body;
    }
    // Changes with every webhook of any org and with the clock, not with org B's state.
    view["freshdesk"]
        .as_object_mut()
        .unwrap()
        .retain(|k, _| !["rate_budget", "backfill", "error"].contains(&k.as_str()));
    view
}

#[tokio::test]
async fn a_black_box_test_walks_every_route_with_org_a_s_token_against_org_b_s_ids() {
    let t = TestApp::spawn().await;
    let (b, b_ticket, b_session) = org_with_session(&t, "Org B's ticket").await;
    let (b_token_id, b_token) = create_token(&t, &b, "B's admin").await;
    let (a, a_ticket, a_session) = org_with_session(&t, "Org A's ticket").await;
    let (_, a_token) = create_token(&t, &a, "A's admin").await;
    t.settle().await;
    let before = operator_view(&t, &b, b_ticket).await;
    let orgs_before = t.call(Method::GET, "/api/v1/orgs", None).await.body;

    let settings = json!({"domain": t.sim_domain(), "api_key": AI_KEY});
    let verify = json!({"domain": t.sim_domain(), "api_key": AI_KEY});
    // Every /api/v1 route (and /metrics), with org B's ids: (method, path, body, code).
    let walk: Vec<(Method, String, Option<Value>, &str)> = vec![
        (
            Method::POST,
            "/api/v1/orgs".into(),
            Some(json!({"name": "Evil"})),
            "not_found",
        ),
        (
            Method::GET,
            format!("/api/v1/orgs/{b}"),
            None,
            "org_not_found",
        ),
        (
            Method::DELETE,
            format!("/api/v1/orgs/{b}"),
            None,
            "not_found",
        ),
        (
            Method::POST,
            format!("/api/v1/orgs/{b}/freshdesk/verify"),
            Some(verify.clone()),
            "org_not_found",
        ),
        (
            Method::PUT,
            format!("/api/v1/orgs/{b}/freshdesk"),
            Some(settings.clone()),
            "org_not_found",
        ),
        (
            Method::GET,
            format!("/api/v1/orgs/{b}/freshdesk"),
            None,
            "org_not_found",
        ),
        (
            Method::DELETE,
            format!("/api/v1/orgs/{b}/freshdesk"),
            None,
            "org_not_found",
        ),
        (
            Method::POST,
            format!("/api/v1/orgs/{b}/freshdesk/self-test"),
            None,
            "org_not_found",
        ),
        (
            Method::GET,
            format!("/api/v1/orgs/{b}/freshdesk/self-test"),
            None,
            "org_not_found",
        ),
        (
            Method::GET,
            format!("/api/v1/orgs/{b}/sessions"),
            None,
            "org_not_found",
        ),
        (
            Method::GET,
            format!("/api/v1/orgs/{b}/sessions/{b_session}"),
            None,
            "org_not_found",
        ),
        (
            Method::GET,
            format!("/api/v1/orgs/{b}/tickets/{b_ticket}/session"),
            None,
            "org_not_found",
        ),
        (
            Method::POST,
            format!("/api/v1/orgs/{b}/sessions/{b_session}/handoff"),
            Some(json!({"reason": "hijack"})),
            "org_not_found",
        ),
        (
            Method::POST,
            format!("/api/v1/orgs/{b}/sessions/{b_session}/resume"),
            None,
            "org_not_found",
        ),
        (
            Method::GET,
            format!("/api/v1/orgs/{b}/tickets/{b_ticket}/inspect"),
            None,
            "org_not_found",
        ),
        (
            Method::POST,
            format!("/api/v1/orgs/{b}/tokens"),
            Some(json!({"name": "mine now"})),
            "not_found",
        ),
        (
            Method::GET,
            format!("/api/v1/orgs/{b}/tokens"),
            None,
            "not_found",
        ),
        (
            Method::DELETE,
            format!("/api/v1/orgs/{b}/tokens/{b_token_id}"),
            None,
            "not_found",
        ),
        (Method::GET, "/api/v1/inspect".into(), None, "not_found"),
        (Method::GET, "/metrics".into(), None, "not_found"),
        // Percent-encoded the way the router decodes it: scoped all the same.
        (
            Method::GET,
            format!("/api/v1/orgs/{}/sessions", b.replacen('-', "%2D", 1)),
            None,
            "org_not_found",
        ),
        (
            Method::GET,
            format!("/api/v1/%6Frgs/{b}"),
            None,
            "org_not_found",
        ),
        (
            Method::GET,
            format!("/api/v1/orgs/{}", b.replace('-', "")),
            None,
            "org_not_found",
        ),
        (Method::GET, "/api/v1/%69nspect".into(), None, "not_found"),
        // Org A's own paths with org B's session: not B's session through A's org either.
        (
            Method::GET,
            format!("/api/v1/orgs/{a}/sessions/{b_session}"),
            None,
            "session_not_found",
        ),
        (
            Method::POST,
            format!("/api/v1/orgs/{a}/sessions/{b_session}/handoff"),
            Some(json!({"reason": "hijack"})),
            "session_not_found",
        ),
        // Org A's own operator-only routes are absent for its admin too.
        (
            Method::GET,
            format!("/api/v1/orgs/{a}/tokens"),
            None,
            "not_found",
        ),
        (
            Method::DELETE,
            format!("/api/v1/orgs/{a}"),
            None,
            "not_found",
        ),
    ];
    // The same walk with ids that exist nowhere answers the same: nothing hints that org B,
    // its session or its token exist.
    let ghosts = [
        (b.clone(), uuid_text()),
        (b_session.clone(), uuid_text()),
        (b_token_id.clone(), uuid_text()),
    ];
    for (method, path, body, code) in walk {
        let r = t
            .call_as(method.clone(), &path, body.clone(), Some(&a_token))
            .await;
        assert_eq!(r.status, 404, "{method} {path}: {}", r.body);
        assert_eq!(r.code(), code, "{method} {path}: {}", r.body);
        let ghost_path = ghosts
            .iter()
            .fold(path.clone(), |p, (real, ghost)| p.replace(real, ghost));
        let ghost = t
            .call_as(method.clone(), &ghost_path, body, Some(&a_token))
            .await;
        let ghost_body = ghosts
            .iter()
            .fold(ghost.body.to_string(), |b, (real, ghost)| {
                b.replace(ghost, real)
            });
        assert_eq!(
            (ghost.status, ghost_body),
            (r.status, r.body.to_string()),
            "{method} {path} answers otherwise than for ids that do not exist"
        );
    }

    t.settle().await;
    assert_eq!(
        operator_view(&t, &b, b_ticket).await,
        before,
        "org B changed"
    );
    assert_eq!(
        t.call(Method::GET, "/api/v1/orgs", None).await.body,
        orgs_before,
        "an org was created or deleted"
    );
    // B's admin token still works.
    let r = t
        .call_as(
            Method::GET,
            &format!("/api/v1/orgs/{b}"),
            None,
            Some(&b_token),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);

    // Org A's own routes answer its admin.
    let as_a = |method: Method, path: String, body: Option<Value>| {
        let t = &t;
        let token = a_token.clone();
        async move { t.call_as(method, &path, body, Some(&token)).await }
    };
    let list = as_a(Method::GET, "/api/v1/orgs".into(), None).await;
    assert_eq!(list.status, 200);
    let ids: Vec<&str> = list.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec![a.as_str()]);
    for (method, path, body) in [
        (Method::GET, format!("/api/v1/orgs/{a}"), None),
        (
            Method::POST,
            format!("/api/v1/orgs/{a}/freshdesk/verify"),
            Some(verify.clone()),
        ),
        (Method::GET, format!("/api/v1/orgs/{a}/freshdesk"), None),
        (Method::GET, format!("/api/v1/orgs/{a}/sessions"), None),
        (
            Method::GET,
            format!("/api/v1/orgs/{a}/sessions/{a_session}"),
            None,
        ),
        (
            Method::GET,
            format!("/api/v1/orgs/{a}/tickets/{a_ticket}/session"),
            None,
        ),
        (
            Method::GET,
            format!("/api/v1/orgs/{a}/tickets/{a_ticket}/inspect"),
            None,
        ),
        (
            Method::POST,
            format!("/api/v1/orgs/{a}/sessions/{a_session}/handoff"),
            Some(json!({"reason": "the admin takes it"})),
        ),
        (
            Method::POST,
            format!("/api/v1/orgs/{a}/sessions/{a_session}/resume"),
            None,
        ),
        (
            Method::PUT,
            format!("/api/v1/orgs/{a}/freshdesk"),
            Some(settings.clone()),
        ),
        (Method::DELETE, format!("/api/v1/orgs/{a}/freshdesk"), None),
    ] {
        let r = as_a(method.clone(), path.clone(), body).await;
        assert_eq!(r.status, 200, "{method} {path}: {}", r.body);
    }
}

/// Every key and value of every sled tree under the data directory (the service stopped).
fn sled_contents(data_dir: &std::path::Path) -> Vec<(String, Vec<u8>, Vec<u8>)> {
    // sled releases its lock from its own threads a moment after the service stopped.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let db = loop {
        match sled::open(data_dir.join("db")) {
            Ok(db) => break db,
            Err(e) if std::time::Instant::now() < deadline => {
                assert!(e.to_string().contains("could not acquire lock"), "{e}");
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => panic!("open the stopped service's sled database: {e}"),
        }
    };
    let mut out = Vec::new();
    for name in db.tree_names() {
        let tree = db.open_tree(&name).unwrap();
        let tree_name = String::from_utf8_lossy(&name).into_owned();
        for item in tree.iter() {
            let (k, v) = item.unwrap();
            out.push((tree_name.clone(), k.to_vec(), v.to_vec()));
        }
    }
    out
}

/// The stored entries (sled: tree, key and value; PostgreSQL: table and row) that `holds`
/// accepts, as readable lines. Call with the service stopped.
fn stored_where(t: &TestApp, holds: impl Fn(&[u8]) -> bool) -> Vec<String> {
    match &t.backend {
        TestBackend::Postgres(db) => db
            .contents()
            .lines()
            .filter(|line| holds(line.as_bytes()))
            .map(str::to_string)
            .collect(),
        TestBackend::Sled => sled_contents(&t.data_path())
            .into_iter()
            .filter(|(_, k, v)| holds(k) || holds(v))
            .map(|(tree, k, v)| {
                format!(
                    "{tree}: {} = {}",
                    String::from_utf8_lossy(&k),
                    String::from_utf8_lossy(&v)
                )
            })
            .collect(),
    }
}

fn contains(bytes: &[u8], needle: &[u8]) -> bool {
    bytes.windows(needle.len()).any(|w| w == needle)
}

/// Where storage mentions the org (its 16 raw bytes or its text forms).
fn traces_of(t: &TestApp, org: &str) -> Vec<String> {
    let id = uuid::Uuid::parse_str(org).unwrap();
    let texts = [id.hyphenated().to_string(), id.simple().to_string()];
    stored_where(t, |bytes| {
        contains(bytes, id.as_bytes()) || texts.iter().any(|text| contains(bytes, text.as_bytes()))
    })
}

#[tokio::test]
async fn a_deleted_org_leaves_nothing_in_storage_even_while_its_tickets_were_mid_pass() {
    let mut t =
        TestApp::spawn_with(&[("TICKETSYNC__ENGINE__IDLE_PASSIVATE_SECS", "1".into())]).await;
    // Org B stays: it proves the storage scan finds an org that is there.
    let (b, _, _) = org_with_session(&t, "Org B's ticket").await;
    let (a, a_ticket, _) = org_with_session(&t, "Org A's ticket").await;
    let (_, a_token) = create_token(&t, &a, "A's admin").await;
    let webhook = t.webhook_url(&a).await;
    let mut tickets = vec![a_ticket];
    for subject in ["Another of A", "A third of A"] {
        let ticket = t.new_ticket(subject, "How do I reset my password?").await;
        t.wait_session(&a, ticket, "the session", |_| true).await;
        tickets.push(ticket);
    }
    // Org A's self-test report is stored too (and its test ticket's ignored record).
    let self_test = format!("/api/v1/orgs/{a}/freshdesk/self-test");
    let started = t.call(Method::POST, &self_test, None).await;
    assert_eq!(started.status, 202, "{}", started.body);
    eventually(
        "org A's self-test finishes",
        Duration::from_secs(60),
        || async {
            let r = t.call(Method::GET, &self_test, None).await;
            (r.body["state"] == "passed").then_some(())
        },
    )
    .await;
    t.settle().await;

    // From now on every Freshdesk call is slow, then fails: the customer replies below wake
    // org A's tickets, whose passes are still waiting on their re-read when the delete runs,
    // and then write the ticket back with the failure (unless the engine is fenced off).
    t.simc
        .set_faults(&FaultsConfig {
            latency_ms: Some(2000),
            error_rate: Some(1.0),
            ..Default::default()
        })
        .await
        .unwrap();
    for &ticket in &tickets {
        t.simc
            .customer_reply(ticket, "Are you there? I need a real person")
            .await
            .unwrap();
    }
    eventually(
        "org A's tickets woken with their reply queued",
        Duration::from_secs(10),
        || async {
            let mut woken = true;
            for &ticket in &tickets {
                let inspect = t.inspect_ticket(&a, ticket).await;
                woken &= inspect["queue"]["pending_events"].as_u64() > Some(0)
                    && inspect["actor"]["live"] == true;
            }
            woken.then_some(())
        },
    )
    .await;
    let r = t
        .call(Method::DELETE, &format!("/api/v1/orgs/{a}"), None)
        .await;
    assert_eq!(r.status, 204, "{}", r.body);
    t.call(Method::GET, &format!("/api/v1/orgs/{a}"), None)
        .await
        .assert_error(404, "org_not_found");
    t.call(Method::DELETE, &format!("/api/v1/orgs/{a}"), None)
        .await
        .assert_error(404, "org_not_found");
    t.call_as(
        Method::GET,
        &format!("/api/v1/orgs/{a}"),
        None,
        Some(&a_token),
    )
    .await
    .assert_error(401, "unauthorized");
    let r = t
        .http
        .post(&webhook)
        .json(&json!({"ticketId": a_ticket.to_string(), "triggered_event": "ticket_created"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 410);
    let listed = t.call(Method::GET, "/api/v1/orgs", None).await.body;
    assert_eq!(listed["items"].as_array().unwrap().len(), 1, "{listed}");

    // The passes in flight end and every actor of the org passivates: nothing of it can be
    // written after this.
    t.simc.clear_faults().await.unwrap();
    eventually(
        "every ticket actor stopped",
        Duration::from_secs(30),
        || async {
            let inspect = t.call(Method::GET, "/api/v1/inspect", None).await.body;
            (inspect["live_actors"] == 0 && inspect["inbox_depth"] == 0).then_some(())
        },
    )
    .await;

    t.app.take().expect("running").stop();
    let left = traces_of(&t, &a);
    assert!(
        left.is_empty(),
        "org A left in storage:\n{}",
        left.join("\n")
    );
    assert!(
        !traces_of(&t, &b).is_empty(),
        "the scan finds nothing of org B, which is there"
    );
}
