//! The routing edges the OpenAPI document states: a method a documented path does not take
//! answers 405 with `Allow` (in the one error shape), an unknown path 404, and a ticket id
//! out of its documented range (int64 from 1) is no resource and no webhook.

use crate::harness::*;
use reqwest::Method;
use serde_json::json;

#[tokio::test]
async fn a_method_a_documented_path_does_not_take_answers_405_with_allow() {
    let t = TestApp::spawn().await;
    let org = t.create_org("Acme").await;
    let cases = [
        (Method::PATCH, "/api/v1/orgs".to_string(), "GET, POST"),
        (Method::TRACE, "/api/v1/inspect".to_string(), "GET"),
        (Method::PUT, format!("/api/v1/orgs/{org}"), "DELETE, GET"),
        (
            Method::PATCH,
            format!("/api/v1/orgs/{org}/freshdesk"),
            "DELETE, GET, PUT",
        ),
        (
            Method::GET,
            format!("/api/v1/orgs/{org}/freshdesk/verify"),
            "POST",
        ),
        (
            Method::DELETE,
            format!("/api/v1/orgs/{org}/tickets/7/session"),
            "GET",
        ),
        (
            Method::OPTIONS,
            format!("/api/v1/orgs/{org}/tokens"),
            "GET, POST",
        ),
        (Method::POST, "/healthz".to_string(), "GET"),
        (Method::TRACE, "/readyz".to_string(), "GET"),
        (Method::POST, "/metrics".to_string(), "GET"),
        (Method::TRACE, "/metrics".to_string(), "GET"),
    ];
    for (method, path, allow) in cases {
        let res = t
            .http
            .request(method.clone(), format!("{}{path}", t.base()))
            .bearer_auth(ADMIN_TOKEN)
            .json(&json!({"name": "x"}))
            .send()
            .await
            .unwrap();
        let got = res
            .headers()
            .get("allow")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let status = res.status();
        let body = res.json().await.unwrap_or_default();
        Resp { status, body }.assert_error(405, "method_not_allowed");
        assert_eq!(got.as_deref(), Some(allow), "{method} {path}");
    }
    // Nothing was changed by any of them.
    assert_eq!(
        t.call(Method::GET, "/api/v1/orgs", None).await.body["items"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    // Unknown paths stay 404, and the admin surface still asks for the token first.
    t.call(Method::PATCH, "/api/v1/nowhere", None)
        .await
        .assert_error(404, "not_found");
    t.call(Method::GET, "/nowhere", None)
        .await
        .assert_error(404, "not_found");
    t.call_as(Method::PATCH, "/api/v1/orgs", None, None)
        .await
        .assert_error(401, "unauthorized");
}

#[tokio::test]
async fn a_ticket_id_out_of_the_documented_range_is_no_resource_and_no_webhook() {
    let t = TestApp::spawn().await;
    let org = t.connected_org(json!({})).await.0;
    // The document says ticket ids are int64 from 1: 0 and 2^63 are not ticket ids.
    for ticket in ["0", "9223372036854775808", "18446744073709551615"] {
        for path in [
            format!("/api/v1/orgs/{org}/tickets/{ticket}/inspect"),
            format!("/api/v1/orgs/{org}/tickets/{ticket}/session"),
        ] {
            t.call(Method::GET, &path, None)
                .await
                .assert_error(404, "not_found");
        }
    }
    let hook = t.webhook_url(&org).await;
    for body in [
        json!({"ticketId": "9223372036854775808"}),
        json!({"ticketId": 9223372036854775808u64}),
    ] {
        let res = t.http.post(&hook).json(&body).send().await.unwrap();
        let status = res.status();
        let body = res.json().await.unwrap_or_default();
        Resp { status, body }.assert_error(400, "invalid_payload");
    }
    // The largest one is one.
    let res = t
        .http
        .post(&hook)
        .json(&json!({"ticketId": "9223372036854775807"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 202);
}

#[tokio::test]
async fn a_json_array_is_not_the_documented_object_body() {
    let t = TestApp::spawn().await;
    let org = t.connected_with_webhook(json!({})).await;
    let ticket = t.new_ticket("Human", "I want to talk to a human").await;
    let session = t
        .wait_session(&org, ticket, "the session handed off", |s| {
            s["state"] == "handed_off"
        })
        .await;
    let id = session["id"].as_str().unwrap();
    // serde reads a struct from an array of its fields in order: `["Acme"]` must not be
    // `{"name": "Acme"}`, nor `[]` an empty handoff.
    for (path, body) in [
        ("/api/v1/orgs".to_string(), json!(["Acme"])),
        (format!("/api/v1/orgs/{org}/tokens"), json!(["ops"])),
        (
            format!("/api/v1/orgs/{org}/sessions/{id}/handoff"),
            json!([]),
        ),
        (
            format!("/api/v1/orgs/{org}/sessions/{id}/handoff"),
            json!(["why"]),
        ),
    ] {
        t.call(Method::POST, &path, Some(body.clone()))
            .await
            .assert_error(400, "invalid_json");
    }
    // Nothing changed.
    let orgs = t.call(Method::GET, "/api/v1/orgs", None).await.body;
    assert_eq!(orgs["items"].as_array().unwrap().len(), 1, "{orgs}");
    let tokens = t
        .call(Method::GET, &format!("/api/v1/orgs/{org}/tokens"), None)
        .await
        .body;
    assert_eq!(tokens["items"], json!([]), "{tokens}");
    assert_eq!(
        t.session(&org, ticket).await.body["state"],
        session["state"]
    );
}
