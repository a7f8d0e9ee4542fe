//! contract §2 and §7: verifying, saving, showing and disconnecting a Freshdesk connection.

use crate::harness::*;
use reqwest::Method;
use serde_json::{json, Value};

#[tokio::test]
async fn verify_returns_the_ai_agent_for_an_admin_key() {
    let t = TestApp::spawn().await;
    let org = t.create_org("Acme").await;
    let r = t.verify(&org, &t.sim_domain(), AI_KEY).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["agent"]["id"], AI_AGENT_ID);
    assert_eq!(r.body["agent"]["name"], "OpenCX AI");
    assert_eq!(r.body["agent"]["email"], "ai@acme.test");
}

#[tokio::test]
async fn verify_accepts_the_administrator_role_too() {
    let t = TestApp::spawn().await;
    let org = t.create_org("Acme").await;
    let r = t.verify(&org, &t.sim_domain(), "sim-bob-key").await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["agent"]["id"], 45);
}

#[tokio::test]
async fn verify_rejects_a_domain_with_a_scheme_without_calling_it() {
    let t = TestApp::spawn().await;
    let org = t.create_org("Acme").await;
    for domain in [
        format!("http://{}", t.sim_domain()),
        "https://acme.freshdesk.com".to_string(),
        "acme.freshdesk.com/api/v2".to_string(),
        "acme freshdesk.com".to_string(),
        "localhost".to_string(),
        "169.254.169.254".to_string(),
        "acme.freshdesk.com.evil.com".to_string(),
        "user@acme.freshdesk.com".to_string(),
        "".to_string(),
    ] {
        t.verify(&org, &domain, AI_KEY)
            .await
            .assert_error(422, "invalid_domain");
    }
    assert!(t.sim_requests().await.is_empty(), "no host was called");
}

#[tokio::test]
async fn verify_rejects_a_wrong_key() {
    let t = TestApp::spawn().await;
    let org = t.create_org("Acme").await;
    t.verify(&org, &t.sim_domain(), "not-a-key")
        .await
        .assert_error(422, "invalid_credentials");
    t.verify(&org, &t.sim_domain(), "   ")
        .await
        .assert_error(422, "invalid_credentials");
}

#[tokio::test]
async fn verify_rejects_agents_that_are_not_admins() {
    let t = TestApp::spawn().await;
    let org = t.create_org("Acme").await;
    // Role "Agent": the roles call itself is refused (403).
    t.verify(&org, &t.sim_domain(), PLAIN_AGENT_KEY)
        .await
        .assert_error(422, "not_admin");
    // Role "Supervisor": roles are listed but none of the agent's is an admin role.
    t.verify(&org, &t.sim_domain(), "sim-sue-key")
        .await
        .assert_error(422, "not_admin");
}

#[tokio::test]
async fn verify_reports_an_unreachable_freshdesk() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let host = closed.local_addr().unwrap().to_string();
    drop(closed);
    let t = TestApp::spawn_with(&[(
        "TICKETSYNC__FRESHDESK__INSECURE_HOSTS",
        format!("[\"{host}\"]"),
    )])
    .await;
    let org = t.create_org("Acme").await;
    t.verify(&org, &host, AI_KEY)
        .await
        .assert_error(502, "freshdesk_unreachable");
}

#[tokio::test]
async fn verify_stores_nothing() {
    let t = TestApp::spawn().await;
    let org = t.create_org("Acme").await;
    assert_eq!(t.verify(&org, &t.sim_domain(), AI_KEY).await.status, 200);
    t.connection(&org).await.assert_error(404, "not_connected");
}

#[tokio::test]
async fn save_returns_the_webhook_url_payloads_and_never_the_key() {
    let t = TestApp::spawn().await;
    let (org, body) = t.connected_org(json!({})).await;
    assert_eq!(body["connected"], true);
    assert_eq!(body["settings"]["api_key_set"], true);
    assert_eq!(body["agent"]["id"], AI_AGENT_ID);
    let url = body["webhook_url"].as_str().unwrap();
    assert!(
        url.starts_with("http://127.0.0.1:8080/webhooks/freshdesk/"),
        "{url}"
    );
    assert_eq!(
        body["payloads"]["ticket_created"],
        r#"{ "ticketId": "{{ticket.id}}", "triggered_event": "ticket_created" }"#
    );
    assert_eq!(
        body["payloads"]["ticket_updated"],
        r#"{ "ticketId": "{{ticket.id}}", "triggered_event": "{{Triggered event}}" }"#
    );
    assert_eq!(body["settings"]["channels"]["other"], "autopilot");
    assert!(!body.to_string().contains(AI_KEY));
    let shown = t.connection(&org).await;
    assert_eq!(shown.status, 200);
    assert_eq!(shown.body["webhook_url"], body["webhook_url"]);
    assert!(shown.body.get("last_webhook_at").is_some());
    assert!(!shown.body.to_string().contains(AI_KEY));
}

#[tokio::test]
async fn settings_are_stored_as_sent() {
    let t = TestApp::spawn().await;
    let (org, _) = t
        .connected_org(json!({
            "auto_handle_all": false,
            "default_group_id": SUPPORT_GROUP,
            "handoff": {"routing": "group", "group_id": BILLING_GROUP, "marker_field": MARKER_FIELD},
            "channels": {"email": "assist", "web": "off"},
            "assist_footer": "Drafted by AI"
        }))
        .await;
    let s = t.connection(&org).await.body["settings"].clone();
    assert_eq!(s["auto_handle_all"], false);
    assert_eq!(s["default_group_id"], SUPPORT_GROUP);
    assert_eq!(s["handoff"]["routing"], "group");
    assert_eq!(s["handoff"]["group_id"], BILLING_GROUP);
    assert_eq!(s["handoff"]["marker_field"], MARKER_FIELD);
    assert_eq!(s["channels"]["email"], "assist");
    assert_eq!(s["channels"]["web"], "off");
    assert_eq!(s["channels"]["phone"], "autopilot");
    assert_eq!(
        s["channels"]["other"], "off",
        "an omitted `other` follows web"
    );
    assert_eq!(s["assist_footer"], "Drafted by AI");
}

#[tokio::test]
async fn the_assist_footer_limit_counts_characters_not_bytes() {
    let t = TestApp::spawn().await;
    // 2000 two-byte characters: at the limit the document and the message state.
    let footer = "é".repeat(2000);
    let (org, body) = t.connected_org(json!({"assist_footer": footer})).await;
    assert_eq!(body["settings"]["assist_footer"], footer);
    rejected_save(
        &t,
        &org,
        json!({"assist_footer": "a".repeat(2001)}),
        422,
        "invalid_settings",
    )
    .await;
    assert_eq!(
        t.connection(&org).await.body["settings"]["assist_footer"],
        footer
    );
}

#[tokio::test]
async fn a_marker_given_without_its_numeric_suffix_resolves_to_the_checkbox() {
    let t = TestApp::spawn().await;
    let (_, body) = t
        .connected_org(
            json!({"handoff": {"routing": "automation", "marker_field": "cf_opencx_handed_off"}}),
        )
        .await;
    assert_eq!(body["settings"]["handoff"]["marker_field"], MARKER_FIELD);
}

async fn rejected_save(t: &TestApp, org: &str, extra: Value, status: u16, code: &str) {
    let mut settings = t.settings();
    merge(&mut settings, extra);
    t.save(org, settings).await.assert_error(status, code);
}

#[tokio::test]
async fn save_validates_every_referenced_freshdesk_object() {
    let t = TestApp::spawn().await;
    let org = t.create_org("Acme").await;
    rejected_save(
        &t,
        &org,
        json!({"handoff": {"routing": "automation"}}),
        422,
        "invalid_settings",
    )
    .await;
    rejected_save(
        &t,
        &org,
        json!({"handoff": {"routing": "agent", "marker_field": MARKER_FIELD}}),
        422,
        "invalid_settings",
    )
    .await;
    rejected_save(
        &t,
        &org,
        json!({"handoff": {"routing": "group", "marker_field": MARKER_FIELD}}),
        422,
        "invalid_settings",
    )
    .await;
    rejected_save(
        &t,
        &org,
        json!({"handoff": {"routing": "teleport"}}),
        422,
        "invalid_settings",
    )
    .await;
    rejected_save(
        &t,
        &org,
        json!({"channels": {"email": "loud"}}),
        422,
        "invalid_settings",
    )
    .await;
    rejected_save(
        &t,
        &org,
        json!({"default_group_id": 999}),
        422,
        "group_not_found",
    )
    .await;
    rejected_save(
        &t,
        &org,
        json!({"handoff": {"routing": "group", "group_id": 999, "marker_field": MARKER_FIELD}}),
        422,
        "group_not_found",
    )
    .await;
    rejected_save(
        &t,
        &org,
        json!({"handoff": {"routing": "agent", "agent_id": 999, "marker_field": MARKER_FIELD}}),
        422,
        "agent_not_found",
    )
    .await;
    rejected_save(
        &t,
        &org,
        json!({"handoff": {"routing": "automation", "marker_field": "cf_nope"}}),
        422,
        "marker_field_not_found",
    )
    .await;
    rejected_save(
        &t,
        &org,
        json!({"handoff": {"routing": "automation", "marker_field": "cf_order_number"}}),
        422,
        "marker_field_not_found",
    )
    .await;
    rejected_save(
        &t,
        &org,
        json!({"api_key": "wrong"}),
        422,
        "invalid_credentials",
    )
    .await;
    rejected_save(
        &t,
        &org,
        json!({"api_key": PLAIN_AGENT_KEY}),
        422,
        "not_admin",
    )
    .await;
    rejected_save(
        &t,
        &org,
        json!({"domain": "https://acme.freshdesk.com"}),
        422,
        "invalid_domain",
    )
    .await;
    rejected_save(&t, &org, json!({"api_key": null}), 422, "invalid_settings").await;
    t.connection(&org).await.assert_error(404, "not_connected");
}

#[tokio::test]
async fn a_failed_save_keeps_the_previous_settings() {
    let t = TestApp::spawn().await;
    let (org, before) = t
        .connected_org(json!({"handoff": {"routing": "agent", "agent_id": ALICE_ID, "marker_field": MARKER_FIELD}}))
        .await;
    rejected_save(
        &t,
        &org,
        json!({"handoff": {"routing": "agent", "agent_id": 999, "marker_field": MARKER_FIELD}}),
        422,
        "agent_not_found",
    )
    .await;
    rejected_save(
        &t,
        &org,
        json!({"api_key": "wrong", "auto_handle_all": false}),
        422,
        "invalid_credentials",
    )
    .await;
    let after = t.connection(&org).await.body;
    assert_eq!(after["settings"], before["settings"]);
    assert_eq!(after["agent"], before["agent"]);
}

#[tokio::test]
async fn the_webhook_url_survives_key_rotation_and_reconnect() {
    let t = TestApp::spawn().await;
    let (org, first) = t.connected_org(json!({})).await;
    let url = first["webhook_url"].clone();

    // Rotate to another admin's key: verified, replaced, same URL.
    let mut rotated = t.settings();
    rotated["api_key"] = json!("sim-bob-key");
    let r = t.save(&org, rotated).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["webhook_url"], url);
    assert_eq!(r.body["agent"]["id"], 45);

    // Key omitted or blank: the stored key is kept (and still verifies).
    for key in [Value::Null, json!("")] {
        let mut keep = json!({"domain": t.sim_domain()});
        if !key.is_null() {
            keep["api_key"] = key;
        }
        let r = t.save(&org, keep).await;
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(
            r.body["agent"]["id"], 45,
            "the rotated key is still the one in use"
        );
    }

    // Disconnect, then reconnect without the key.
    let d = t.disconnect(&org).await;
    assert_eq!(d.status, 200);
    assert_eq!(d.body, json!({"connected": false}));
    let shown = t.connection(&org).await;
    assert_eq!(shown.body["connected"], false);
    assert_eq!(shown.body["webhook_url"], url);
    let r = t.save(&org, json!({"domain": t.sim_domain()})).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["connected"], true);
    assert_eq!(r.body["webhook_url"], url);
}

#[tokio::test]
async fn different_orgs_get_different_webhook_urls() {
    let t = TestApp::spawn().await;
    let (_, a) = t.connected_org(json!({})).await;
    let (_, b) = t.connected_org(json!({})).await;
    assert_ne!(a["webhook_url"], b["webhook_url"]);
}

#[tokio::test]
async fn the_connection_survives_a_restart() {
    let mut t = TestApp::spawn().await;
    let (org, before) = t.connected_org(json!({"auto_handle_all": false})).await;
    t.restart();
    let after = t.connection(&org).await;
    assert_eq!(after.status, 200, "{}", after.body);
    assert_eq!(after.body["settings"], before["settings"]);
    assert_eq!(after.body["webhook_url"], before["webhook_url"]);
    // The stored (encrypted) key still decrypts after the restart.
    let r = t.save(&org, json!({"domain": t.sim_domain()})).await;
    assert_eq!(r.status, 200, "{}", r.body);
}

#[tokio::test]
async fn the_api_key_is_not_stored_in_plaintext() {
    let t = TestApp::spawn().await;
    t.connected_org(json!({})).await;
    let needle = AI_KEY.as_bytes();
    let mut files = vec![t.data_path()];
    while let Some(path) = files.pop() {
        if path.is_dir() {
            files.extend(std::fs::read_dir(&path).unwrap().map(|e| e.unwrap().path()));
        } else {
            let bytes = std::fs::read(&path).unwrap();
            assert!(
                !bytes.windows(needle.len()).any(|w| w == needle),
                "plaintext key found in {}",
                path.display()
            );
        }
    }
}

#[tokio::test]
async fn orgs_can_be_created_listed_and_read() {
    let t = TestApp::spawn().await;
    let r = t
        .call(
            Method::POST,
            "/api/v1/orgs",
            Some(json!({"name": "  Acme  "})),
        )
        .await;
    assert_eq!(r.status, 201);
    assert_eq!(r.body["name"], "Acme");
    assert!(r.body["created_at"].as_str().unwrap().ends_with('Z'));
    let id = r.body["id"].as_str().unwrap();
    let one = t
        .call(Method::GET, &format!("/api/v1/orgs/{id}"), None)
        .await;
    assert_eq!(one.body, r.body);
    let all = t.call(Method::GET, "/api/v1/orgs", None).await;
    assert_eq!(all.body["items"], json!([r.body]));
    t.call(Method::POST, "/api/v1/orgs", Some(json!({"name": " "})))
        .await
        .assert_error(422, "invalid_request");
}

#[tokio::test]
async fn unknown_orgs_are_404() {
    let t = TestApp::spawn().await;
    let missing = uuid::Uuid::new_v4();
    t.call(Method::GET, &format!("/api/v1/orgs/{missing}"), None)
        .await
        .assert_error(404, "org_not_found");
    t.connection(&missing.to_string())
        .await
        .assert_error(404, "org_not_found");
    t.verify(&missing.to_string(), &t.sim_domain(), AI_KEY)
        .await
        .assert_error(404, "org_not_found");
    t.save(&missing.to_string(), t.settings())
        .await
        .assert_error(404, "org_not_found");
    t.call(Method::GET, "/api/v1/orgs/not-a-uuid", None)
        .await
        .assert_error(404, "not_found");
}

#[tokio::test]
async fn the_admin_api_requires_the_bearer_token() {
    let t = TestApp::spawn().await;
    let org = t.create_org("Acme").await;
    let paths = [
        (Method::GET, "/api/v1/orgs".to_string()),
        (Method::POST, "/api/v1/orgs".to_string()),
        (Method::GET, format!("/api/v1/orgs/{org}")),
        (Method::POST, format!("/api/v1/orgs/{org}/freshdesk/verify")),
        (Method::PUT, format!("/api/v1/orgs/{org}/freshdesk")),
        (Method::GET, format!("/api/v1/orgs/{org}/freshdesk")),
        (Method::DELETE, format!("/api/v1/orgs/{org}/freshdesk")),
    ];
    for (method, path) in paths {
        for token in [None, Some("wrong"), Some("")] {
            t.call_as(method.clone(), &path, Some(json!({"name": "x"})), token)
                .await
                .assert_error(401, "unauthorized");
        }
    }
    assert_eq!(
        t.call(Method::GET, "/api/v1/orgs", None).await.body["items"]
            .as_array()
            .unwrap()
            .len(),
        1,
        "the refused POST created nothing"
    );
}

#[tokio::test]
async fn health_endpoints_need_no_token() {
    let t = TestApp::spawn().await;
    let h = t.call_as(Method::GET, "/healthz", None, None).await;
    assert_eq!(h.status, 200);
    assert_eq!(h.body, json!({"status": "ok"}));
    let r = t.call_as(Method::GET, "/readyz", None, None).await;
    assert_eq!(r.status, 200);
}

#[tokio::test]
async fn malformed_bodies_and_unknown_routes_use_the_error_shape() {
    let t = TestApp::spawn().await;
    let org = t.create_org("Acme").await;
    t.call_raw(
        Method::POST,
        "/api/v1/orgs",
        b"{\"name\":".to_vec(),
        Some(ADMIN_TOKEN),
    )
    .await
    .assert_error(400, "invalid_json");
    t.call_raw(
        Method::PUT,
        &format!("/api/v1/orgs/{org}/freshdesk"),
        b"not json".to_vec(),
        Some(ADMIN_TOKEN),
    )
    .await
    .assert_error(400, "invalid_json");
    t.call_raw(
        Method::PUT,
        &format!("/api/v1/orgs/{org}/freshdesk"),
        b"[1,2]".to_vec(),
        Some(ADMIN_TOKEN),
    )
    .await
    .assert_error(422, "invalid_settings");
    let big = format!("{{\"name\":\"{}\"}}", "a".repeat(70 * 1024));
    t.call_raw(
        Method::POST,
        "/api/v1/orgs",
        big.into_bytes(),
        Some(ADMIN_TOKEN),
    )
    .await
    .assert_error(413, "payload_too_large");
    t.call(Method::GET, "/api/v1/nope", None)
        .await
        .assert_error(404, "not_found");
    t.call_as(Method::GET, "/nope", None, None)
        .await
        .assert_error(404, "not_found");
}
