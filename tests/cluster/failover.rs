//! `kill -9` of a node mid-load (SPEC §11, §8): nothing acknowledged is lost or answered twice,
//! and the dead node's orgs are answered again — new tickets, and new messages in the
//! conversations it had answered — within the lease TTL plus the settle window.

use crate::harness::*;
use std::time::{Duration, Instant, SystemTime};
use testkit::eventually;

/// Beyond the lease TTL and the settle window, what an answer on a moved org may take: the
/// survivors' lease poll and look for work (TTL/3 each), the backlog the dead node left on
/// the shard (a dozen tickets), each through an occasionally failing Freshdesk (a client
/// timeout of 1 s, then a backoff). Measured: 7.7 to 11.5 s after the kill in all.
const ANSWER_SLACK: Duration = Duration::from_secs(10);
/// A customer's second message in a conversation the dead node had answered.
const FOLLOW_UP: &str = "Thanks. How do I reset my password on the mobile app?";

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

    // A conversation on each of its orgs, answered before the load starts.
    let mut conversations = Vec::new();
    for &o in &victim_orgs {
        conversations.push(c.new_ticket(o, "Password before the kill").await);
    }
    c.wait_answered(&conversations, 1, Duration::from_secs(30))
        .await;

    let seen_before_load = c.nodes[victim].proxy.requests().len();
    let load = c.start_load("Password");
    // Kill it in the middle of its work: once it has written to Freshdesk for one of its orgs
    // under load.
    let hosts: Vec<String> = victim_orgs
        .iter()
        .map(|&o| c.orgs[o].host.clone())
        .collect();
    eventually("the victim to answer", Duration::from_secs(30), || async {
        c.nodes[victim].proxy.requests()[seen_before_load..]
            .iter()
            .any(|r| r.is_write() && hosts.contains(&r.host))
    })
    .await;
    c.nodes[victim].process.kill();
    let killed = Instant::now();
    let killed_at = SystemTime::now();
    c.retarget_away_from(victim, &survivors).await;

    // Right after the kill, a customer of each of the dead node's orgs opens a ticket, and
    // each conversation gets a second customer message.
    let mut probes = Vec::new();
    for &o in &victim_orgs {
        probes.push(c.new_ticket(o, "Password after the kill").await);
    }
    for &t in &conversations {
        c.customer_writes(t, FOLLOW_UP).await;
    }
    let budget = LEASE_TTL + SETTLE_WINDOW + ANSWER_SLACK;
    c.wait_answered(&probes, 1, budget.saturating_sub(killed.elapsed()))
        .await;
    c.wait_answered(&conversations, 2, budget.saturating_sub(killed.elapsed()))
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
    tickets.extend(conversations.iter().copied());
    c.wait_acknowledged_answered(&tickets, Duration::from_secs(60))
        .await;
    c.settle(&survivors, Duration::from_secs(60)).await;
    c.assert_one_answer_per_message(&tickets, &conversations.into_iter().collect(), false)
        .await;
    let after = c
        .wait_even_spread(&survivors, Duration::from_secs(10))
        .await;
    println!("shards after the kill: {after:?}");
    c.assert_logs_clean();
}
