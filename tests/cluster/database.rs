//! PostgreSQL restarted under load (SPEC §11, §8), on a throwaway server the test owns: while
//! it is down every node answers webhooks 503 (never a 202 it could lose) and is not ready;
//! once it is back everything acknowledged is answered, exactly once.

use crate::harness::*;
use reqwest::StatusCode;
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

/// How long the database stays down.
const DOWN_FOR: Duration = Duration::from_secs(3);
/// Between two rounds of webhooks to every node while it is down.
const POST_EVERY: Duration = Duration::from_millis(50);

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
    // From the moment it is down: every webhook, on every node, is refused with a 503. (A
    // wrong answer is reported at the end, after what happens once it is back.)
    let mut posted = 0;
    let mut wrong = Vec::new();
    while down.elapsed() < DOWN_FOR {
        for (&org, body) in &bodies {
            for node in all {
                let answer = c
                    .http
                    .post(c.webhook_url(org, node))
                    .json(body)
                    .send()
                    .await;
                posted += 1;
                match answer.map(|r| r.status()) {
                    Ok(StatusCode::SERVICE_UNAVAILABLE) => {}
                    other => wrong.push(format!(
                        "{} answered org {org}'s webhook {other:?} {:.1} s after the database \
                         went down",
                        c.nodes[node].id,
                        down.elapsed().as_secs_f64()
                    )),
                }
            }
        }
        tokio::time::sleep(POST_EVERY).await;
    }
    // Nor is any node ready.
    for node in all {
        let url = format!("{}/readyz", c.nodes[node].process.base());
        let status = c.http.get(&url).send().await.map(|r| r.status());
        assert!(
            matches!(status, Ok(StatusCode::SERVICE_UNAVAILABLE)),
            "{} /readyz while the database is down: {status:?}",
            c.nodes[node].id
        );
    }
    c.server().start_again();
    println!(
        "database down for {:.1} s; {posted} webhooks posted meanwhile, {} not answered 503",
        down.elapsed().as_secs_f64(),
        wrong.len()
    );

    for node in all {
        c.wait_ready(node).await;
    }
    load.open_more(c.orgs.len() * 2).await;
    let tickets = load.finish().await;
    c.wait_acknowledged_answered(&tickets, Duration::from_secs(60))
        .await;
    c.settle(&all, Duration::from_secs(60)).await;
    c.assert_one_answer_per_message(&tickets, &BTreeSet::new(), false)
        .await;
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
    assert!(
        wrong.is_empty(),
        "webhooks posted while the database was down, not answered 503 ({} of {posted}):\n{}",
        wrong.len(),
        wrong[..wrong.len().min(10)].join("\n")
    );
}
