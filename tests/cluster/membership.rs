//! Nodes joining and leaving under load (SPEC §11): a fourth node takes its share of the
//! shards from the others, a node stopped with SIGTERM releases its leases at once (not at
//! expiry); no ticket is lost or answered twice, and the shards end evenly spread.

use crate::harness::*;
use std::collections::BTreeSet;
use std::time::{Duration, Instant, SystemTime};

/// How soon the others take a released shard: their lease poll runs every TTL/3 (waiting
/// for the leaving node to age out would take up to a TTL).
const TAKEOVER_AFTER_RELEASE: Duration =
    Duration::from_millis(LEASE_TTL.as_millis() as u64 * 3 / 4);

#[tokio::test]
async fn a_node_joining_and_one_leaving_gracefully_under_load_lose_and_duplicate_nothing() {
    let Some(mut c) = Cluster::start(Plan {
        nodes: 3,
        orgs: 8,
        own_server: false,
        seed: seed(0x10_0003),
    })
    .await
    else {
        return;
    };
    let load = c.start_load("Password");
    load.open_more(c.orgs.len()).await;

    // A fourth node joins; the load balancer sends it some of the webhooks.
    let joined = c.add_node();
    let join_started = Instant::now();
    c.wait_ready(joined).await;
    let four = [0, 1, 2, joined];
    // Measured: 2.5 to 27 s (graceful hand-overs under load, on two busy cores).
    let spread = c.wait_even_spread(&four, Duration::from_secs(60)).await;
    println!(
        "{} joined and holds {:?} after {:.1} s",
        c.nodes[joined].id,
        spread
            .iter()
            .filter(|(_, &n)| n == joined)
            .map(|(&s, _)| s)
            .collect::<Vec<_>>(),
        join_started.elapsed().as_secs_f64()
    );
    for org in (0..c.orgs.len()).filter(|o| o % 4 == 3) {
        c.retarget(org, joined).await;
    }
    load.open_more(c.orgs.len()).await;

    // The first node leaves: out of the load balancer, its deliveries done, then SIGTERM.
    let leaving = 0;
    let staying = [1, 2, joined];
    let held_when_leaving: BTreeSet<usize> = c.held_shards(leaving).await;
    c.retarget_away_from(leaving, &staying).await;
    c.wait_deliveries_to_node_final(leaving, Duration::from_secs(30))
        .await;
    let term_at = SystemTime::now();
    c.signal(leaving, "TERM");
    let status = c.wait_exit(leaving, Duration::from_secs(15)).await;
    let exited = Instant::now();
    assert!(
        status.success(),
        "{} exited with {status}",
        c.nodes[leaving].id
    );
    let after = c
        .wait_even_spread(&staying, LEASE_TTL + Duration::from_secs(10))
        .await;
    println!(
        "{} left (held {held_when_leaving:?}); the others held every shard {:.1} s after it \
         exited: {after:?}",
        c.nodes[leaving].id,
        exited.elapsed().as_secs_f64()
    );
    // It released its leases (owner NULL) rather than letting them expire, and the others
    // took them over without waiting for anything to expire.
    let changes = c.audit.lease_changes().await;
    let mut kept = Vec::new();
    let mut takeover = Vec::new();
    for &s in &held_when_leaving {
        let Some(released) = changes
            .iter()
            .find(|l| l.shard == s && l.at >= term_at && l.owner.is_none())
        else {
            kept.push(s);
            continue;
        };
        if let Some(taken) = changes
            .iter()
            .find(|l| l.shard == s && l.at > released.at && l.owner.is_some())
        {
            let delay = taken.at.duration_since(released.at).unwrap_or_default();
            takeover.push((s, delay));
        }
    }
    println!("released shard → taken over after: {takeover:?}");
    assert!(
        kept.is_empty(),
        "shards {kept:?} were not released by the leaving node: {changes:?}"
    );
    let slow: Vec<_> = takeover
        .iter()
        .filter(|(_, delay)| *delay >= TAKEOVER_AFTER_RELEASE)
        .collect();
    assert!(
        slow.is_empty(),
        "released shards taken over only after {slow:?} (want < {TAKEOVER_AFTER_RELEASE:?}, \
         the others' lease poll; a lease TTL suggests they waited for the leaving node's \
         heartbeat to age out)"
    );

    load.open_more(c.orgs.len()).await;
    let tickets = load.finish().await;
    c.wait_acknowledged_answered(&tickets, Duration::from_secs(60))
        .await;
    c.settle(&staying, Duration::from_secs(60)).await;
    // No loss: every ticket's webhook was acknowledged (the load balancer never sent one to
    // a node on its way out) and answered exactly once.
    c.assert_one_answer_per_message(&tickets, &BTreeSet::new(), true)
        .await;
    c.wait_even_spread(&staying, Duration::from_secs(10)).await;
    c.assert_logs_clean();
}
