//! The lease manager against a real PostgreSQL (a fresh database per test): nodes split the
//! shards evenly, and a node that stops renewing (a pause) loses its shards at expiry to
//! another, after which the store refuses its writes.

use super::*;
use crate::store::postgres::{shard_of, PgOptions, PgStore};
use parking_lot::Mutex;
use testkit::pg::TestDatabase;
use ticketsync_actors::ports::EngineStore;
use ticketsync_actors::OrgId;

const SHARDS: u32 = 8;
const TTL: Duration = Duration::from_secs(3);
const MARGIN: Duration = Duration::from_secs(1);
const CONVERGE: Duration = Duration::from_secs(30);

/// Records what the manager asked of the engine, and when.
#[derive(Default)]
struct Recorded {
    started: Mutex<Vec<(u32, Instant)>>,
    stopped: Mutex<Vec<u32>>,
}

#[async_trait]
impl ShardWork for Recorded {
    async fn start(&self, shard: u32) {
        self.started.lock().push((shard, Instant::now()));
    }
    async fn stop(&self, shard: u32) {
        self.stopped.lock().push(shard);
    }
}

impl Recorded {
    fn started(&self) -> Vec<u32> {
        let mut shards: Vec<u32> = self.started.lock().iter().map(|(s, _)| *s).collect();
        shards.sort_unstable();
        shards
    }
}

struct Node {
    id: &'static str,
    manager: LeaseManager,
    store: PgStore,
    tokens: Arc<ShardTokens>,
    work: Arc<Recorded>,
}

async fn node(db: &TestDatabase, id: &'static str) -> Node {
    let tokens = Arc::new(ShardTokens::new(id, SHARDS));
    let options = PgOptions {
        url: db.url().to_string(),
        max_connections: 2,
        statement_timeout: Duration::from_secs(5),
    };
    let store = PgStore::open(&options, tokens.clone())
        .await
        .expect("open the store");
    let work = Arc::new(Recorded::default());
    let manager = LeaseManager::new(
        LeaseSettings {
            node_id: id.into(),
            address: format!("{id}.test"),
            url: db.url().to_string(),
            ttl: TTL,
            shards: SHARDS,
            write_margin: MARGIN,
        },
        tokens.clone(),
        Arc::new(ShardOwnership::new(SHARDS, MARGIN)),
        work.clone(),
    );
    Node {
        id,
        manager,
        store,
        tokens,
        work,
    }
}

/// One lease row as the database has it.
#[derive(Debug, Clone, PartialEq)]
struct Row {
    shard: u32,
    owner: Option<String>,
    token: i64,
    expires_at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
}

async fn table(db: &TestDatabase) -> Vec<Row> {
    let (client, connection) = tokio_postgres::connect(db.url(), NoTls).await.unwrap();
    tokio::spawn(connection);
    client
        .query(
            "SELECT shard, owner, token, expires_at, now() FROM shard_leases ORDER BY shard",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| Row {
            shard: r.get::<_, i32>(0) as u32,
            owner: r.get(1),
            token: r.get(2),
            expires_at: r.get(3),
            now: r.get(4),
        })
        .collect()
}

/// The (shard, token) pairs the database says `node` holds unexpired.
async fn held_in_db(db: &TestDatabase, node: &str) -> Vec<(u32, i64)> {
    table(db)
        .await
        .into_iter()
        .filter(|r| r.owner.as_deref() == Some(node) && r.expires_at > Some(r.now))
        .map(|r| (r.shard, r.token))
        .collect()
}

/// An org whose shard is `shard`.
fn org_in(shard: u32) -> OrgId {
    loop {
        let org = OrgId::new();
        if shard_of(org, SHARDS) == shard {
            return org;
        }
    }
}

/// Tick both nodes until each holds half the shards (a alone first, so it holds everything
/// and must hand half over).
async fn split(db: &TestDatabase) -> (Node, Node) {
    let mut a = node(db, "node-a").await;
    let mut b = node(db, "node-b").await;
    a.manager.tick().await.unwrap();
    assert_eq!(
        held_in_db(db, a.id).await.len(),
        SHARDS as usize,
        "alone, a takes every shard"
    );
    let deadline = Instant::now() + CONVERGE;
    loop {
        b.manager.tick().await.unwrap();
        a.manager.tick().await.unwrap();
        let (on_a, on_b) = (held_in_db(db, a.id).await, held_in_db(db, b.id).await);
        if on_a.len() == SHARDS as usize / 2 && on_b.len() == SHARDS as usize / 2 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not split: a {on_a:?}, b {on_b:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    (a, b)
}

#[tokio::test]
async fn two_nodes_split_the_shards_evenly_by_hand_over_and_agree_with_the_table() {
    let Some(db) = TestDatabase::create() else {
        return;
    };
    let (a, b) = split(&db).await;
    for node in [&a, &b] {
        assert_eq!(
            node.tokens.held_shards(),
            held_in_db(&db, node.id).await,
            "{}'s tokens are the table's",
            node.id
        );
    }
    let given: Vec<u32> = held_in_db(&db, b.id)
        .await
        .iter()
        .map(|(s, _)| *s)
        .collect();
    testkit::eventually(
        "a stopped the work of the shards it handed over",
        Duration::from_secs(5),
        || {
            let mut stopped = a.work.stopped.lock().clone();
            stopped.sort_unstable();
            let done = stopped == given;
            async move { done.then_some(()) }
        },
    )
    .await;
    // Released after a hand-over, nothing of a's can be in flight: b's work runs at once
    // (a moment after the take; a settle window would hold it for a second).
    for (shard, _) in b.tokens.held_shards() {
        assert!(
            b.manager.ownership().shard_runs(shard),
            "shard {shard} runs without a settle window"
        );
    }
}

#[tokio::test]
async fn a_node_that_stops_renewing_loses_its_shards_at_expiry_and_its_writes_are_refused() {
    let Some(db) = TestDatabase::create() else {
        return;
    };
    let (mut a, mut b) = split(&db).await;
    let lost = held_in_db(&db, a.id).await;
    let org = org_in(lost[0].0);
    a.store
        .save_job(org, "sweep", &serde_json::json!({"runs": 1}))
        .await
        .expect("the owner's write is admitted");
    let expiry = table(&db)
        .await
        .iter()
        .filter(|r| r.owner.as_deref() == Some(a.id))
        .filter_map(|r| r.expires_at)
        .max()
        .unwrap();

    // a is paused: it no longer ticks. b keeps going.
    let deadline = Instant::now() + CONVERGE;
    loop {
        b.manager.tick().await.unwrap();
        let rows = table(&db).await;
        for row in rows
            .iter()
            .filter(|r| lost.iter().any(|(s, _)| *s == r.shard))
        {
            if row.now < expiry {
                assert_eq!(
                    row.owner.as_deref(),
                    Some(a.id),
                    "shard {} taken before expiry",
                    row.shard
                );
            }
        }
        if held_in_db(&db, b.id).await.len() == SHARDS as usize {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "b never took a's shards: {rows:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for (shard, old_token) in &lost {
        let held = b.manager.ownership().get(*shard).unwrap();
        assert!(held.token > *old_token, "shard {shard}: a new token");
        assert!(
            held.expires_at - chrono::Duration::from_std(TTL).unwrap() >= expiry,
            "shard {shard} taken after expiry"
        );
        assert!(
            held.settled_at + TTL >= held.deadline + MARGIN,
            "shard {shard} waits the settle window"
        );
    }
    let taken_over: Vec<u32> = lost.iter().map(|(s, _)| *s).collect();
    let deadline = Instant::now() + CONVERGE;
    while !taken_over.iter().all(|s| b.work.started().contains(s)) {
        assert!(
            Instant::now() < deadline,
            "b never started the shards it took over"
        );
        b.manager.tick().await.unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for (shard, at) in b
        .work
        .started
        .lock()
        .iter()
        .filter(|(s, _)| taken_over.contains(s))
    {
        let held = b.manager.ownership().get(*shard).unwrap();
        assert!(
            *at >= held.settled_at,
            "shard {shard} started before its settle window ended"
        );
    }

    // a still has its tokens (it never ticked), but the database refuses its write.
    assert!(a.tokens.held(lost[0].0).is_some());
    let refused = a
        .store
        .save_job(org, "sweep", &serde_json::json!({"runs": 2}))
        .await
        .expect_err("a's write after losing the lease is refused");
    assert!(
        refused
            .to_string()
            .contains(&format!("lease for shard {} is not held", lost[0].0)),
        "{refused}"
    );
    // And a stopped by itself: its deadlines passed.
    for (shard, _) in &lost {
        assert!(
            !a.manager.ownership().shard_runs(*shard)
                && !a.manager.ownership().shard_may_write(*shard)
        );
    }

    // a resumes: it drops the lost shards, revokes their tokens and stops their work, then
    // takes its share back by hand-over.
    a.manager.tick().await.unwrap();
    assert!(a
        .tokens
        .held_shards()
        .iter()
        .all(|(s, _)| !taken_over.contains(s)));
    testkit::eventually(
        "a stopped the work of the shards it lost",
        Duration::from_secs(5),
        || {
            let stopped = a.work.stopped.lock().clone();
            let all = taken_over.iter().all(|s| stopped.contains(s));
            async move { all.then_some(()) }
        },
    )
    .await;
}

#[tokio::test]
async fn a_restarted_node_takes_over_its_unreleased_leases_under_new_tokens_after_a_settle_window()
{
    let Some(db) = TestDatabase::create() else {
        return;
    };
    let mut before = node(&db, "node-a").await;
    before.manager.tick().await.unwrap();
    let held = held_in_db(&db, "node-a").await;
    assert_eq!(held.len(), SHARDS as usize);
    let org = org_in(0);
    // Crashed: nothing released. The same node starts again before the leases expire.
    let mut after = node(&db, "node-a").await;
    after.manager.tick().await.unwrap();
    let now_held = held_in_db(&db, "node-a").await;
    assert_eq!(now_held.len(), SHARDS as usize, "all still this node's");
    for ((shard, old), (_, new)) in held.iter().zip(&now_held) {
        assert!(new > old, "shard {shard}: a new token");
        let local = after.manager.ownership().get(*shard).unwrap();
        assert_eq!(local.token, *new);
        // (Renewed in the same tick, a moment after it was taken.)
        assert!(
            local.settled_at + TTL + Duration::from_millis(500) >= local.deadline + MARGIN,
            "shard {shard} waits the settle window"
        );
    }
    assert_eq!(after.tokens.held_shards(), now_held);
    after
        .store
        .save_job(org, "sweep", &serde_json::json!({"runs": 1}))
        .await
        .expect("the new run writes");
    before
        .store
        .save_job(org, "sweep", &serde_json::json!({"runs": 2}))
        .await
        .expect_err("the previous run's token no longer writes");
}
