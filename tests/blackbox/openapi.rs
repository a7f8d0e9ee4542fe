//! The OpenAPI document against the running service: it is served without a token, and every
//! operation it lists is served (no 404 `not_found`, no 405), answering only statuses and
//! error codes the document lists for it.

use crate::harness::*;
use reqwest::Method;
use serde_json::{json, Value};

/// `path` with its parameters filled: the org that exists, fresh ids for the rest.
fn fill(path: &str, org: &str) -> String {
    path.replace("{org_id}", org)
        .replace("{session_id}", &uuid::Uuid::new_v4().to_string())
        .replace("{token_id}", &uuid::Uuid::new_v4().to_string())
        .replace("{ticket_id}", "1")
        .replace("{token}", "not-a-webhook-token")
}

#[tokio::test]
async fn every_documented_operation_is_served_and_answers_only_what_the_document_lists() {
    let t = TestApp::spawn().await;
    let r = t
        .call_as(Method::GET, "/api/v1/openapi.json", None, None)
        .await;
    assert_eq!(r.status, 200, "the document is public: {}", r.body);
    let doc = r.body;
    assert_eq!(doc, ticketsync::http::openapi::document());
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));

    let org = t.create_org("Acme").await;
    let mut operations: Vec<(Method, String, Value)> = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            operations.push((method, path.clone(), op.clone()));
        }
    }
    assert!(operations.len() >= 25, "{} operations", operations.len());
    // Deletions last, the org's own at the very end: the others need the org.
    operations.sort_by_key(|(method, path, _)| {
        (*method == Method::DELETE, path == "/api/v1/orgs/{org_id}")
    });
    for (method, path, op) in operations {
        let url = fill(&path, &org);
        let body = op.get("requestBody").map(|_| json!({}));
        let r = t.call(method.clone(), &url, body).await;
        let status = r.status.as_u16();
        let what = format!("{method} {path} answered {status} {}", r.body);
        assert_ne!(status, 405, "{what}");
        assert!(
            !(status == 404 && r.code() == "not_found"),
            "the service does not serve a documented operation: {what}"
        );
        let documented = &op["responses"][status.to_string()];
        assert!(documented.is_object(), "status not documented: {what}");
        if status >= 400 {
            let codes = &documented["content"]["application/json"]["schema"]["allOf"][1]
                ["properties"]["error"]["properties"]["code"]["enum"];
            assert!(
                codes
                    .as_array()
                    .is_some_and(|c| c.contains(&json!(r.code()))),
                "code not documented for this status ({codes}): {what}"
            );
        }
    }
}
