//! The planner against a simulated lease table with the same conditions as the SQL of
//! `lease.rs`: nodes join, die, pause past their leases, leave, and race on one snapshot.

use super::*;
use proptest::prelude::*;
use std::collections::BTreeMap;

const TTL_MS: i64 = 15_000;

fn at(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(1_800_000_000_000 + ms).unwrap()
}

#[derive(Default)]
struct SimNode {
    heartbeat_ms: i64,
    leaving: bool,
    /// Not ticking: dead, paused or gone.
    stopped: bool,
    /// Shard → (token, local deadline in ms): what the node believes it holds.
    held: HashMap<u32, (i64, i64)>,
}

struct Sim {
    shards: u32,
    now_ms: i64,
    table: Vec<Lease>,
    nodes: BTreeMap<String, SimNode>,
}

impl Sim {
    fn new(shards: u32) -> Self {
        Self {
            shards,
            now_ms: 0,
            table: (0..shards)
                .map(|shard| Lease {
                    shard,
                    owner: None,
                    token: 0,
                    expires_at: None,
                })
                .collect(),
            nodes: BTreeMap::new(),
        }
    }

    fn join(&mut self, id: &str) {
        self.nodes.entry(id.to_string()).or_default();
    }

    /// The node heartbeats and reads; what it reads is its view.
    fn read(&mut self, id: &str) -> (Vec<String>, Vec<Lease>, bool) {
        let now = self.now_ms;
        let node = self.nodes.get_mut(id).unwrap();
        node.heartbeat_ms = now;
        let leaving = node.leaving;
        let live = self
            .nodes
            .iter()
            .filter(|(_, n)| !n.leaving && n.heartbeat_ms > now - TTL_MS)
            .map(|(id, _)| id.clone())
            .collect();
        (live, self.table.clone(), leaving)
    }

    fn plan_for(&mut self, id: &str) -> Plan {
        let (live, leases, leaving) = self.read(id);
        let view = View {
            me: id,
            leaving,
            live: &live,
            leases: &leases,
            shards: self.shards,
            now: at(self.now_ms),
        };
        let plan = plan(&view);
        for shard in &plan.take {
            assert_eq!(
                leases[*shard as usize].holder(view.now),
                None,
                "{id} plans to take shard {shard}, which is held and not expired"
            );
        }
        plan
    }

    /// Apply a plan with the conditions of the SQL statements.
    fn apply(&mut self, id: &str, plan: &Plan) {
        let now = self.now_ms;
        let node = self.nodes.get_mut(id).unwrap();
        node.held.retain(|_, (_, deadline)| *deadline > now);
        for (shard, token) in &plan.renew {
            let lease = &mut self.table[*shard as usize];
            if lease.owner.as_deref() == Some(id)
                && lease.token == *token
                && lease.expires_at > Some(at(now))
            {
                lease.expires_at = Some(at(now + TTL_MS));
                node.held.insert(*shard, (*token, now + TTL_MS));
            } else {
                node.held.remove(shard);
            }
        }
        for shard in &plan.take {
            let lease = &mut self.table[*shard as usize];
            if lease.holder(at(now)).is_none() {
                lease.owner = Some(id.to_string());
                lease.token += 1;
                lease.expires_at = Some(at(now + TTL_MS));
                node.held.insert(*shard, (lease.token, now + TTL_MS));
            }
        }
        for (shard, token) in &plan.hand_over {
            node.held.remove(shard);
            let lease = &mut self.table[*shard as usize];
            if lease.owner.as_deref() == Some(id) && lease.token == *token {
                lease.owner = None;
                lease.expires_at = Some(at(now));
            }
        }
        self.check_single_owners();
    }

    fn tick(&mut self, id: &str) {
        let plan = self.plan_for(id);
        self.apply(id, &plan);
    }

    /// No two nodes believe they hold one shard, and every belief is backed by the table.
    fn check_single_owners(&self) {
        let mut believers: HashMap<u32, &str> = HashMap::new();
        for (id, node) in &self.nodes {
            for (shard, (token, deadline)) in &node.held {
                if *deadline <= self.now_ms {
                    continue;
                }
                if let Some(other) = believers.insert(*shard, id) {
                    panic!("shard {shard} is held by {other} and {id}");
                }
                let lease = &self.table[*shard as usize];
                assert_eq!(lease.owner.as_deref(), Some(id.as_str()), "shard {shard}");
                assert_eq!(lease.token, *token, "shard {shard}");
            }
        }
    }

    fn running(&self) -> Vec<String> {
        self.nodes
            .iter()
            .filter(|(_, n)| !n.stopped)
            .map(|(id, _)| id.clone())
            .collect()
    }

    /// Every running node ticks once, in `order` (a permutation seed), `step_ms` apart.
    fn round(&mut self, seed: u64, step_ms: i64) {
        let mut ids = self.running();
        shuffle(&mut ids, seed);
        for id in ids {
            self.tick(&id);
        }
        self.now_ms += step_ms;
    }

    /// Every running node reads the same table, then they apply their plans in `order`.
    fn race(&mut self, seed: u64) {
        let mut ids = self.running();
        let plans: Vec<(String, Plan)> = ids
            .iter()
            .map(|id| (id.clone(), self.plan_for(id)))
            .collect();
        shuffle(&mut ids, seed);
        for id in ids {
            let plan = &plans.iter().find(|(p, _)| *p == id).unwrap().1;
            self.apply(&id, plan);
        }
        self.now_ms += TTL_MS / 3;
    }

    /// Shards held per running node, asserting every shard is held by one of them.
    fn spread(&self) -> BTreeMap<String, usize> {
        let now = at(self.now_ms);
        let running = self.running();
        let mut counts: BTreeMap<String, usize> =
            running.iter().map(|id| (id.clone(), 0)).collect();
        for lease in &self.table {
            let holder = lease
                .holder(now)
                .unwrap_or_else(|| panic!("shard {} is not held", lease.shard));
            *counts.get_mut(holder).unwrap_or_else(|| {
                panic!("shard {} is held by {holder}, which stopped", lease.shard)
            }) += 1;
        }
        counts
    }

    /// Run rounds until the spread is even (at most `rounds`), then check it is the fair one.
    fn settle(&mut self, seed: u64) {
        // Enough for stale heartbeats and expired leases to be noticed, plus hand-overs.
        for i in 0..12 {
            self.round(seed.wrapping_add(i), TTL_MS / 3);
        }
        let counts = self.spread();
        let shares = fair_shares(counts.keys().map(String::as_str), self.shards);
        for (id, count) in &counts {
            assert_eq!(*count, shares[id.as_str()], "{id}: {counts:?}");
        }
    }
}

fn shuffle(ids: &mut [String], seed: u64) {
    let mut state = seed | 1;
    for i in (1..ids.len()).rev() {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        ids.swap(i, (state % (i as u64 + 1)) as usize);
    }
}

#[derive(Debug, Clone)]
enum Step {
    Join,
    /// Stops ticking for good (kill -9).
    Die(usize),
    /// Stops ticking for this many rounds of ttl/3, then resumes with its stale beliefs.
    Pause(usize, u8),
    /// SIGTERM: hands over everything, then stops.
    Leave(usize),
    Round(u64),
    Race(u64),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        2 => Just(Step::Join),
        1 => any::<usize>().prop_map(Step::Die),
        1 => (any::<usize>(), 1u8..8).prop_map(|(n, r)| Step::Pause(n, r)),
        1 => any::<usize>().prop_map(Step::Leave),
        4 => any::<u64>().prop_map(Step::Round),
        3 => any::<u64>().prop_map(Step::Race),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn nodes_never_share_a_shard_and_end_evenly_spread(
        shards in 1u32..70,
        steps in proptest::collection::vec(step(), 1..40),
        seed in any::<u64>(),
    ) {
        let mut sim = Sim::new(shards);
        let mut joined = 0;
        sim.join("node-0");
        let mut paused: Vec<(String, u8)> = Vec::new();
        for step in steps {
            let running = sim.running();
            let pick = |n: usize| running.get(n % running.len().max(1)).cloned();
            match step {
                Step::Join => {
                    joined += 1;
                    sim.join(&format!("node-{joined}"));
                }
                // Keep one node running so that there is a spread to check.
                Step::Die(n) if running.len() > 1 => {
                    sim.nodes.get_mut(&pick(n).unwrap()).unwrap().stopped = true;
                }
                Step::Pause(n, rounds) if running.len() > 1 => {
                    let id = pick(n).unwrap();
                    sim.nodes.get_mut(&id).unwrap().stopped = true;
                    paused.push((id, rounds));
                }
                Step::Leave(n) if running.len() > 1 => {
                    let id = pick(n).unwrap();
                    sim.nodes.get_mut(&id).unwrap().leaving = true;
                    sim.tick(&id);
                    prop_assert!(sim.nodes[&id].held.is_empty());
                    sim.nodes.get_mut(&id).unwrap().stopped = true;
                }
                Step::Round(seed) => sim.round(seed, TTL_MS / 3),
                Step::Race(seed) => sim.race(seed),
                Step::Die(_) | Step::Pause(..) | Step::Leave(_) => {}
            }
            for (id, rounds) in &mut paused {
                *rounds = rounds.saturating_sub(1);
                if *rounds == 0 {
                    sim.nodes.get_mut(id.as_str()).unwrap().stopped = false;
                }
            }
            paused.retain(|(_, rounds)| *rounds > 0);
        }
        for (id, _) in paused {
            sim.nodes.get_mut(&id).unwrap().stopped = false;
        }
        sim.settle(seed);
    }
}

#[test]
fn shares_differ_by_at_most_one_and_the_lowest_ids_get_the_remainder() {
    let shares = fair_shares(["c", "a", "b"], 64);
    assert_eq!(shares["a"], 22);
    assert_eq!(shares["b"], 21);
    assert_eq!(shares["c"], 21);
}

#[test]
fn a_dead_nodes_shards_are_taken_only_after_their_leases_expire() {
    let mut sim = Sim::new(8);
    sim.join("a");
    sim.join("b");
    sim.settle(1);
    sim.nodes.get_mut("b").unwrap().stopped = true;
    let expiry = sim
        .table
        .iter()
        .filter(|l| l.owner.as_deref() == Some("b"))
        .map(|l| l.expires_at.unwrap())
        .max()
        .unwrap();
    let of_b: Vec<u32> = sim
        .table
        .iter()
        .filter(|l| l.owner.as_deref() == Some("b"))
        .map(|l| l.shard)
        .collect();
    assert_eq!(of_b.len(), 4);
    while at(sim.now_ms) < expiry {
        sim.tick("a");
        for shard in &of_b {
            assert_eq!(sim.table[*shard as usize].owner.as_deref(), Some("b"));
        }
        assert_eq!(sim.nodes["a"].held.len(), 4, "a holds only its own four");
        sim.now_ms += 1_000;
    }
    sim.settle(2);
    assert_eq!(sim.spread()["a"], 8);
}

#[test]
fn a_joining_node_gets_its_share_by_hand_over_without_extra_releases() {
    let mut sim = Sim::new(64);
    sim.join("a");
    sim.join("b");
    sim.settle(3);
    sim.join("c");
    // c's first tick: its heartbeat; nothing is free.
    sim.tick("c");
    assert!(sim.nodes["c"].held.is_empty());
    let plan_a = sim.plan_for("a");
    let plan_b = sim.plan_for("b");
    // c holds nothing yet: a and b hand over exactly what c lacks.
    assert_eq!(plan_a.hand_over.len() + plan_b.hand_over.len(), 21);
    assert!(plan_a.take.is_empty() && plan_b.take.is_empty());
    sim.settle(4);
}

#[test]
fn a_leaving_node_hands_over_everything() {
    let leases = vec![Lease {
        shard: 0,
        owner: Some("a".into()),
        token: 3,
        expires_at: Some(at(1_000)),
    }];
    let view = View {
        me: "a",
        leaving: true,
        live: &[],
        leases: &leases,
        shards: 1,
        now: at(0),
    };
    assert_eq!(
        plan(&view),
        Plan {
            hand_over: vec![(0, 3)],
            ..Plan::default()
        }
    );
}
