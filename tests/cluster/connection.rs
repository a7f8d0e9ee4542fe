//! An org disconnected on one node (SPEC §11 with the webhook's 410): the node that
//! disconnected it refuses its next webhook at once, the other node as soon as it hears the
//! change (the cluster's org notification), even though both had just accepted one; and both
//! accept again after the org is connected again elsewhere.

use crate::harness::*;
use reqwest::Method;
use serde_json::json;
use std::time::Duration;
use testkit::sim::AI_KEY;

/// How soon another node hears of a change: a notification, well under a second; generous
/// for two busy cores.
const HEARD_WITHIN: Duration = Duration::from_secs(10);

#[tokio::test]
async fn a_disconnect_on_one_node_refuses_webhooks_on_every_node_and_a_reconnect_accepts_them() {
    let Some(c) = Cluster::start(Plan {
        nodes: 2,
        orgs: 1,
        own_server: false,
        seed: seed(0x10_0007),
    })
    .await
    else {
        return;
    };
    let post = |node: usize, ticket: u64| {
        let request = c
            .http
            .post(c.webhook_url(0, node))
            .json(&json!({"ticketId": ticket}));
        async move { request.send().await.map(|r| r.status().as_u16()) }
    };
    // Both nodes accept (and so have looked at the org's connection).
    for node in 0..2 {
        assert_eq!(post(node, 900_001).await.unwrap(), 202, "node {node}");
    }
    let org = c.orgs[0].id.clone();
    let freshdesk = format!("/api/v1/orgs/{org}/freshdesk");
    let (status, body) = c.admin(0, Method::DELETE, &freshdesk, None).await;
    assert_eq!(status, 200, "disconnect: {body}");
    assert_eq!(
        post(0, 900_002).await.unwrap(),
        410,
        "the disconnecting node"
    );
    testkit::wait::eventually(
        "the other node refuses the webhook",
        HEARD_WITHIN,
        || async {
            let status = post(1, 900_003).await;
            (matches!(status, Ok(410)))
                .then_some(())
                .ok_or(format!("{status:?}"))
        },
    )
    .await;

    let (status, body) = c
        .admin(
            1,
            Method::PUT,
            &freshdesk,
            Some(json!({"domain": c.orgs[0].host, "api_key": AI_KEY})),
        )
        .await;
    assert_eq!(status, 200, "reconnect: {body}");
    assert_eq!(
        post(1, 900_004).await.unwrap(),
        202,
        "the reconnecting node"
    );
    testkit::wait::eventually("the first node accepts again", HEARD_WITHIN, || async {
        let status = post(0, 900_005).await;
        (matches!(status, Ok(202)))
            .then_some(())
            .ok_or(format!("{status:?}"))
    })
    .await;
}
