//! PostgreSQL restarted under load (SPEC §11, §8), on a throwaway server the test owns: while
//! it is down every node answers webhooks 503 (never a 202 it could lose) and is not ready;
//! once it is back everything acknowledged is answered, exactly once.

use crate::harness::*;
use reqwest::StatusCode;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use testkit::eventually;

/// How long the database stays down once every node has noticed.
const DOWN_FOR: Duration = Duration::from_secs(3);

#[tokio::test]
async fn a_database_restart_under_load_answers_503_meanwhile_and_loses_nothing() {
    let Some(mut c) = Cluster::start(Plan {
        nodes: 3,
        orgs: 6,
        own_server: true,
        seed: seed(0xDB_0004),
    })
    .await
    else {
        return;
    };
    let all = [0, 1, 2];
    let load = c.start_load("Password");
    load.open_more(c.orgs.len() * 2).await;
    // A webhook body Freshdesk sent for each org, to post to every node while it is down.
    let mut bodies = BTreeMap::new();
    for (org, d) in c.deliveries().await {
        if d.status == Some(202) {
            bodies.entry(org).or_insert(d.payload);
        }
    }
    assert!(!bodies.is_empty(), "some webhook was acknowledged before");

    c.server().stop();
    let down = Instant::now();
    // Webhooks right away, while the nodes find out, and for a while after.
    let mut answers: BTreeMap<String, usize> = BTreeMap::new();
    post_everywhere(&c, &bodies, &mut answers).await;
    eventually(
        "every node to be not ready",
        LEASE_TTL + Duration::from_secs(5),
        || async {
            let mut ready = Vec::new();
            for node in all {
                let url = format!("{}/readyz", c.nodes[node].process.base());
                let status = c.http.get(&url).send().await.map(|r| r.status());
                if !matches!(status, Ok(StatusCode::SERVICE_UNAVAILABLE)) {
                    ready.push(format!("{}: {status:?}", c.nodes[node].id));
                }
            }
            if ready.is_empty() {
                Ok(())
            } else {
                Err(format!("/readyz: {ready:?}"))
            }
        },
    )
    .await;
    let noticed = down.elapsed();
    let until = Instant::now() + DOWN_FOR;
    while Instant::now() < until {
        post_everywhere(&c, &bodies, &mut answers).await;
    }
    c.server().start_again();
    println!(
        "database down for {:.1} s (every node not ready after {:.1} s); webhook answers \
         meanwhile (answer → count): {answers:?}",
        down.elapsed().as_secs_f64(),
        noticed.as_secs_f64()
    );
    assert!(
        answers.keys().all(|a| a == "503"),
        "every webhook posted while the database was down is answered 503: {answers:?}"
    );

    for node in all {
        c.wait_ready(node).await;
    }
    load.open_more(c.orgs.len() * 2).await;
    let tickets = load.finish().await;
    c.wait_acknowledged_answered(&tickets, Duration::from_secs(60))
        .await;
    c.settle(&all, Duration::from_secs(60)).await;
    c.assert_exactly_one_answer_each(&tickets, false).await;
    let retried = c
        .deliveries()
        .await
        .iter()
        .filter(|(_, d)| d.attempts > 1 && d.status == Some(202))
        .count();
    assert!(
        retried > 0,
        "some of Freshdesk's deliveries met the outage and were acknowledged on a retry"
    );
    c.wait_even_spread(&all, Duration::from_secs(15)).await;
    c.assert_logs_clean();
}

/// Post each org's webhook body to every node; count the answers ("503", or the error).
async fn post_everywhere(
    c: &Cluster,
    bodies: &BTreeMap<usize, serde_json::Value>,
    answers: &mut BTreeMap<String, usize>,
) {
    for (&org, body) in bodies {
        for node in 0..c.nodes.len() {
            let answer = match c
                .http
                .post(c.webhook_url(org, node))
                .json(body)
                .send()
                .await
            {
                Ok(res) => res.status().as_u16().to_string(),
                Err(e) => format!("no answer from {}: {e}", c.nodes[node].id),
            };
            *answers.entry(answer).or_default() += 1;
        }
    }
}
