//! The fencing test (SPEC §11): a node paused (SIGSTOP) past its lease while it had work in
//! flight, its shards taken over, then resumed (SIGCONT), writes nothing — neither to the
//! database nor to Freshdesk — for the shards it lost, until it holds one of them again
//! under a new lease. Its Freshdesk requests are told apart by its own proxy; its database
//! writes by its connections' application name (see `audit`).

use crate::audit::application_name;
use crate::harness::*;
use freshdesk_sim::FaultsConfig;
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, SystemTime};
use testkit::eventually;

/// Freshdesk's answer time for the paused node's orgs: its work is in flight when it stops.
const SLOW_API_MS: u64 = 300;
/// Freshdesk writes the node has made for its orgs when it is paused: it is in full swing.
const WRITES_BEFORE_PAUSE: usize = 4;

#[tokio::test]
async fn a_node_paused_past_its_lease_writes_nothing_for_the_shards_it_lost() {
    let Some(mut c) = Cluster::start(Plan {
        nodes: 3,
        orgs: 8,
        own_server: false,
        seed: seed(0xF3_0002),
    })
    .await
    else {
        return;
    };
    let all = [0, 1, 2];
    let spread = c.wait_even_spread(&all, Duration::from_secs(10)).await;
    let victim = c.busiest(&spread, &all);
    let victim_id = c.nodes[victim].id.clone();
    let lost_orgs = c.orgs_of(&spread, victim);
    let lost_shards: BTreeSet<usize> = spread
        .iter()
        .filter(|(_, &n)| n == victim)
        .map(|(&s, _)| s)
        .collect();
    let survivors: Vec<usize> = all.into_iter().filter(|&n| n != victim).collect();
    println!("pausing {victim_id}: shards {lost_shards:?}, orgs {lost_orgs:?}");
    for &o in &lost_orgs {
        c.orgs[o]
            .simc
            .set_faults(&FaultsConfig {
                latency_ms: Some(SLOW_API_MS),
                ..FaultsConfig::default()
            })
            .await
            .expect("latency set");
    }

    let load = c.start_load("Password");
    let lost_hosts: BTreeMap<String, usize> = lost_orgs
        .iter()
        .map(|&o| (c.orgs[o].host.clone(), c.orgs[o].shard))
        .collect();
    eventually(
        "the node to be writing to Freshdesk",
        Duration::from_secs(30),
        || async {
            let writes = c.nodes[victim]
                .proxy
                .requests()
                .iter()
                .filter(|r| r.is_write() && lost_hosts.contains_key(&r.host))
                .count();
            writes >= WRITES_BEFORE_PAUSE
        },
    )
    .await;
    c.signal(victim, "STOP");
    c.wait_paused(victim).await;
    let paused_at = SystemTime::now();
    let leases_at_pause = c.audit.current_leases().await;
    c.retarget_away_from(victim, &survivors).await;

    // The survivors take the paused node's shards once its lease has expired, and answer its
    // orgs' customers.
    c.wait_even_spread(&survivors, LEASE_TTL + Duration::from_secs(15))
        .await;
    let mut probes = Vec::new();
    for &o in &lost_orgs {
        probes.push(c.new_ticket(o, "Password while paused").await);
    }
    c.wait_answered(&probes, 1, Duration::from_secs(30)).await;
    let resumed_at = SystemTime::now();
    c.signal(victim, "CONT");
    println!(
        "{victim_id} paused for {:.1} s",
        secs_after(resumed_at, paused_at)
    );

    // The load goes on while it wakes up, finds its leases gone and rejoins.
    load.open_more(c.orgs.len() * 3).await;
    c.wait_even_spread(&all, Duration::from_secs(30)).await;
    let mut tickets = load.finish().await;
    tickets.extend(probes);
    c.wait_acknowledged_answered(&tickets, Duration::from_secs(60))
        .await;
    c.settle(&all, Duration::from_secs(60)).await;
    c.assert_one_answer_per_message(&tickets, &BTreeSet::new(), false)
        .await;

    // When (if at all) it held each lost shard again, with a new token.
    let changes = c.audit.lease_changes().await;
    let regained: BTreeMap<usize, SystemTime> = lost_shards
        .iter()
        .filter_map(|&s| {
            changes
                .iter()
                .find(|l| {
                    l.shard == s && l.owner.as_deref() == Some(&victim_id) && l.at > resumed_at
                })
                .map(|l| (s, l.at))
        })
        .collect();
    let fenced_until = |shard: usize| regained.get(&shard).copied();
    let in_fenced_window = |shard: usize, at: SystemTime| {
        at >= resumed_at && !matches!(fenced_until(shard), Some(until) if at >= until)
    };
    for &s in &lost_shards {
        let (owner, token) = &leases_at_pause[&s];
        assert_eq!(
            owner.as_deref(),
            Some(victim_id.as_str()),
            "shard {s} at the pause"
        );
        let taken = changes.iter().any(|l| {
            l.shard == s
                && l.at > paused_at
                && l.token > *token
                && l.owner.as_ref().is_some_and(|o| *o != victim_id)
        });
        assert!(
            taken,
            "shard {s} (token {token} at the pause) was taken over by another node with a \
             newer token: {changes:?}"
        );
    }

    // Freshdesk: no write from the resumed node for a lost org while it did not hold it.
    let requests = c.nodes[victim].proxy.requests();
    let before_pause = requests
        .iter()
        .filter(|r| r.is_write() && r.at < paused_at)
        .count();
    let after_resume: Vec<_> = requests.iter().filter(|r| r.at >= resumed_at).collect();
    let forbidden: Vec<String> = after_resume
        .iter()
        .filter(|r| r.is_write())
        .filter_map(|r| {
            let shard = *lost_hosts.get(&r.host)?;
            in_fenced_window(shard, r.at).then(|| {
                format!(
                    "{} {} (shard {shard}) {:.3} s after resuming",
                    r.method,
                    r.path,
                    secs_after(r.at, resumed_at)
                )
            })
        })
        .collect();

    // The database: no committed engine write from its connections for a lost org meanwhile.
    let app = application_name(&victim_id);
    let writes = c.audit.writes().await;
    let org_shard: BTreeMap<&str, usize> = lost_orgs
        .iter()
        .map(|&o| (c.orgs[o].id.as_str(), c.orgs[o].shard))
        .collect();
    let written_before_pause = writes
        .iter()
        .filter(|w| w.app == app && w.at < paused_at)
        .count();
    let forbidden_rows: Vec<String> = writes
        .iter()
        .filter(|w| w.app == app)
        .filter_map(|w| {
            let shard = *org_shard.get(w.org_id.as_str())?;
            in_fenced_window(shard, w.at).then(|| {
                format!(
                    "{} on {} for org {} (shard {shard}) {:.3} s after resuming",
                    w.op,
                    w.table,
                    w.org_id,
                    secs_after(w.at, resumed_at)
                )
            })
        })
        .collect();
    let regained_after: BTreeMap<usize, String> = regained
        .iter()
        .map(|(&s, &at)| (s, format!("{:.1} s", secs_after(at, resumed_at))))
        .collect();
    println!(
        "{victim_id}: {before_pause} Freshdesk writes and {written_before_pause} database \
         writes before the pause; after resuming: {} Freshdesk requests ({} writes); lost \
         shards held again after resuming: {regained_after:?}",
        after_resume.len(),
        after_resume.iter().filter(|r| r.is_write()).count(),
    );
    // The observations can tell the nodes apart at all.
    assert!(
        before_pause > 0,
        "the node's proxy saw its Freshdesk writes"
    );
    assert!(
        written_before_pause > 0,
        "the audit attributes database writes to the node by application_name ({app})"
    );
    assert!(
        forbidden.is_empty(),
        "{victim_id} wrote to Freshdesk for shards it had lost:\n{}",
        forbidden.join("\n")
    );
    assert!(
        forbidden_rows.is_empty(),
        "{victim_id} wrote to the database for shards it had lost:\n{}",
        forbidden_rows.join("\n")
    );
    c.assert_logs_clean();
}
