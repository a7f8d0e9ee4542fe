//! `kill -9` of a node mid-load (SPEC §11, §8): nothing acknowledged is lost or answered twice,
//! and the dead node's orgs are answered again within the lease TTL plus the settle window.

use crate::harness::*;
use std::time::{Duration, Instant, SystemTime};
use testkit::eventually;

/// Beyond the lease TTL and the settle window, what a first answer on a moved org may take:
/// the survivors' lease poll (TTL/3), the reconciliation of inherited effects, the answer
/// itself through an occasionally failing Freshdesk (a retried 5xx or a client timeout).
const ANSWER_SLACK: Duration = Duration::from_secs(6);

#[tokio::test]
async fn a_killed_node_loses_nothing_and_its_orgs_are_answered_again_after_ttl_and_settle() {
    let Some(mut c) = Cluster::start(Plan {
        nodes: 3,
        orgs: 8,
        own_server: false,
        seed: seed(0xC1_0001),
    })
    .await
    else {
        return;
    };
    let all = [0, 1, 2];
    let spread = c.wait_even_spread(&all, Duration::from_secs(10)).await;
    let victim = c.busiest(&spread, &all);
    let victim_orgs = c.orgs_of(&spread, victim);
    let survivors: Vec<usize> = all.into_iter().filter(|&n| n != victim).collect();
    println!(
        "victim {} owns orgs {victim_orgs:?} (shards {:?})",
        c.nodes[victim].id,
        victim_orgs
            .iter()
            .map(|&o| c.orgs[o].shard)
            .collect::<Vec<_>>()
    );

    let load = c.start_load("Password");
    // Kill it in the middle of its work: once it has written an answer for one of its orgs.
    let hosts: Vec<String> = victim_orgs
        .iter()
        .map(|&o| c.orgs[o].host.clone())
        .collect();
    eventually("the victim to answer", Duration::from_secs(30), || async {
        c.nodes[victim]
            .proxy
            .requests()
            .iter()
            .any(|r| r.is_write() && hosts.contains(&r.host))
    })
    .await;
    c.nodes[victim].process.kill();
    let killed = Instant::now();
    let killed_at = SystemTime::now();
    c.retarget_away_from(victim, &survivors).await;

    // A customer of each of the dead node's orgs writes right after the kill.
    let mut probes = Vec::new();
    for &o in &victim_orgs {
        probes.push(c.new_ticket(o, "Password after the kill").await);
    }
    let budget = LEASE_TTL + SETTLE_WINDOW + ANSWER_SLACK;
    c.wait_answered(&probes, budget.saturating_sub(killed.elapsed()))
        .await;
    let answered_after = killed.elapsed();
    let victim_shards: Vec<usize> = victim_orgs.iter().map(|&o| c.orgs[o].shard).collect();
    let taken_after: Vec<String> = c
        .audit
        .lease_changes()
        .await
        .iter()
        .filter(|l| victim_shards.contains(&l.shard) && l.at > killed_at && l.owner.is_some())
        .map(|l| format!("{} {:.1} s", l.shard, secs_after(l.at, killed_at)))
        .collect();
    println!(
        "the dead node's shards taken after the kill: {taken_after:?}; its orgs answered again \
         {:.1} s after the kill (lease TTL {} s + settle window {} s + slack {} s)",
        answered_after.as_secs_f64(),
        LEASE_TTL.as_secs(),
        SETTLE_WINDOW.as_secs(),
        ANSWER_SLACK.as_secs()
    );
    // More load on the two survivors, then everything must come out exactly once.
    load.open_more(c.orgs.len() * 2).await;
    let mut tickets = load.finish().await;
    tickets.extend(probes);
    c.wait_acknowledged_answered(&tickets, Duration::from_secs(60))
        .await;
    c.settle(&survivors, Duration::from_secs(60)).await;
    c.assert_exactly_one_answer_each(&tickets, false).await;
    let after = c
        .wait_even_spread(&survivors, Duration::from_secs(10))
        .await;
    println!("shards after the kill: {after:?}");
    c.assert_logs_clean();
}
