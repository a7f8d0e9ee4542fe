//! The admin token guard (contract §7): every route under `/api/v1` and `/metrics` refuses a
//! missing token, a wrong one, one in another case, Basic auth and a token in the query, with
//! 401 `unauthorized` in the error shape, and such a request changes nothing.

use crate::fixture::{connection_snapshot, wait_backfill_done};
use crate::harness::{TestApp, ADMIN_TOKEN, AI_KEY};
use crate::wire::{assert_refused, send, Auth, Req};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use reqwest::Method;
use serde_json::json;

/// Every admin and inspection route, with a body where it takes one.
fn routes(org: &str, session: &str, sim_domain: &str) -> Vec<(Method, String, Option<Vec<u8>>)> {
    let settings = serde_json::to_vec(&json!({"domain": sim_domain, "api_key": AI_KEY})).unwrap();
    let o = format!("/api/v1/orgs/{org}");
    vec![
        (Method::GET, "/api/v1/orgs".into(), None),
        (
            Method::POST,
            "/api/v1/orgs".into(),
            Some(br#"{"name": "Intruder"}"#.to_vec()),
        ),
        (Method::GET, o.clone(), None),
        (
            Method::POST,
            format!("{o}/freshdesk/verify"),
            Some(settings.clone()),
        ),
        (Method::PUT, format!("{o}/freshdesk"), Some(settings)),
        (Method::GET, format!("{o}/freshdesk"), None),
        (Method::DELETE, format!("{o}/freshdesk"), None),
        (Method::POST, format!("{o}/freshdesk/self-test"), None),
        (Method::GET, format!("{o}/freshdesk/self-test"), None),
        (Method::GET, format!("{o}/sessions"), None),
        (
            Method::GET,
            format!("{o}/sessions?state=ai_active&limit=5"),
            None,
        ),
        (Method::GET, format!("{o}/sessions/{session}"), None),
        (Method::GET, format!("{o}/tickets/1/session"), None),
        (
            Method::POST,
            format!("{o}/sessions/{session}/handoff"),
            Some(br#"{"reason": "x"}"#.to_vec()),
        ),
        (Method::POST, format!("{o}/sessions/{session}/resume"), None),
        (
            Method::POST,
            format!("{o}/tokens"),
            Some(br#"{"name": "Intruder"}"#.to_vec()),
        ),
        (Method::GET, format!("{o}/tokens"), None),
        (
            Method::DELETE,
            format!("{o}/tokens/{}", uuid::Uuid::new_v4()),
            None,
        ),
        (Method::DELETE, o.clone(), None),
        (Method::GET, "/api/v1/inspect".into(), None),
        (Method::GET, format!("{o}/tickets/1/inspect"), None),
        (Method::GET, "/metrics".into(), None),
        (Method::GET, "/api/v1/no-such-route".into(), None),
        (Method::GET, "/api/v1".into(), None),
        (Method::GET, "/api/v1/orgs/not-a-uuid".into(), None),
    ]
}

/// Everything but the one right way to present the admin token.
fn wrong_credentials() -> Vec<(String, Auth, &'static str)> {
    let basic = |user_pass: &str| Auth::Header(format!("Basic {}", STANDARD.encode(user_pass)));
    let mut swapped_case: String = ADMIN_TOKEN.to_uppercase();
    if swapped_case == ADMIN_TOKEN {
        swapped_case = ADMIN_TOKEN.to_lowercase();
    }
    let mut first_upper = ADMIN_TOKEN.to_string();
    first_upper[..1].make_ascii_uppercase();
    vec![
        ("no authorization".into(), Auth::None, ""),
        ("wrong token".into(), Auth::Bearer("wrong-token".into()), ""),
        ("empty bearer".into(), Auth::Header("Bearer ".into()), ""),
        ("bare scheme".into(), Auth::Header("Bearer".into()), ""),
        ("token in upper case".into(), Auth::Bearer(swapped_case), ""),
        (
            "token with its first letter upper case".into(),
            Auth::Bearer(first_upper),
            "",
        ),
        (
            "token prefix".into(),
            Auth::Bearer(ADMIN_TOKEN[..ADMIN_TOKEN.len() - 1].into()),
            "",
        ),
        (
            "token with a suffix".into(),
            Auth::Bearer(format!("{ADMIN_TOKEN}x")),
            "",
        ),
        (
            "token without a scheme".into(),
            Auth::Header(ADMIN_TOKEN.into()),
            "",
        ),
        (
            "Basic user:token".into(),
            basic(&format!("admin:{ADMIN_TOKEN}")),
            "",
        ),
        ("Basic token:".into(), basic(&format!("{ADMIN_TOKEN}:")), ""),
        (
            "Basic token:X".into(),
            basic(&format!("{ADMIN_TOKEN}:X")),
            "",
        ),
        (
            "Basic with the raw token".into(),
            Auth::Header(format!("Basic {ADMIN_TOKEN}")),
            "",
        ),
        (
            "Token scheme".into(),
            Auth::Header(format!("Token {ADMIN_TOKEN}")),
            "",
        ),
        (
            "an org admin token never issued".into(),
            Auth::Bearer(format!("tso_{}", "A".repeat(43))),
            "",
        ),
        ("query token".into(), Auth::None, "token"),
        ("query access_token".into(), Auth::None, "access_token"),
        ("query admin_token".into(), Auth::None, "admin_token"),
        ("query api_key".into(), Auth::None, "api_key"),
        ("query authorization".into(), Auth::None, "authorization"),
    ]
}

#[tokio::test]
async fn every_admin_route_refuses_every_wrong_way_of_presenting_the_token() {
    let t = TestApp::spawn().await;
    let org = t.connected_with_webhook(json!({})).await;
    let ticket = t
        .new_ticket("Password", "How do I reset my password?")
        .await;
    t.wait_ai_posts(ticket, 1).await;
    t.settle().await;
    wait_backfill_done(&t, &org).await;
    let session = t.session(&org, ticket).await.body["id"]
        .as_str()
        .unwrap()
        .to_string();
    let orgs_before = t.call(Method::GET, "/api/v1/orgs", None).await.body;
    let connection_before = connection_snapshot(&t, &org).await;
    let session_before = t.session(&org, ticket).await.body;
    let sim_requests_before = t.sim_requests().await.len();

    let mut checked = 0;
    for (method, path, body) in routes(&org, &session, &t.sim_domain()) {
        for (what, auth, query_name) in wrong_credentials() {
            let mut path = path.clone();
            if !query_name.is_empty() {
                let separator = if path.contains('?') { '&' } else { '?' };
                let value = if query_name == "authorization" {
                    format!("Bearer%20{ADMIN_TOKEN}")
                } else {
                    ADMIN_TOKEN.to_string()
                };
                path = format!("{path}{separator}{query_name}={value}");
            }
            let mut req = Req::new(method.clone(), path).auth(auth);
            if let Some(body) = &body {
                req = req.json(body.clone());
            }
            let answer = send(&t.http, t.base(), &req).await;
            assert_refused(
                &format!("{what}: {}", req.describe()),
                &answer,
                401,
                "unauthorized",
            );
            checked += 1;
        }
    }
    assert!(checked > 300, "{checked} requests");

    // Nothing the refused requests asked for happened.
    assert_eq!(
        t.call(Method::GET, "/api/v1/orgs", None).await.body,
        orgs_before,
        "no org was created"
    );
    assert_eq!(
        connection_snapshot(&t, &org).await,
        connection_before,
        "the connection was neither saved nor disconnected"
    );
    assert_eq!(
        t.session(&org, ticket).await.body["state"],
        session_before["state"],
        "the session was not handed off"
    );
    let calls: Vec<_> = t.sim_requests().await[sim_requests_before..]
        .iter()
        .filter(|r| !(r.method == "GET" && r.path == "/api/v2/tickets"))
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    assert!(calls.is_empty(), "Freshdesk was called: {calls:?}");

    // The right token still works on every read route.
    for path in [
        "/api/v1/orgs".to_string(),
        format!("/api/v1/orgs/{org}"),
        format!("/api/v1/orgs/{org}/freshdesk"),
        format!("/api/v1/orgs/{org}/sessions"),
        format!("/api/v1/orgs/{org}/sessions/{session}"),
        format!("/api/v1/orgs/{org}/tickets/{ticket}/session"),
        format!("/api/v1/orgs/{org}/tickets/{ticket}/inspect"),
        "/api/v1/inspect".to_string(),
        "/metrics".to_string(),
    ] {
        let req = Req::new(Method::GET, path).bearer(ADMIN_TOKEN);
        let answer = send(&t.http, t.base(), &req).await;
        assert_eq!(answer.status, 200, "{}", req.describe());
    }
}
