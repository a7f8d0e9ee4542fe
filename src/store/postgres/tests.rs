//! The PostgreSQL store against a real server (`testkit::pg`): the properties the sled
//! store's tests check, the same answers as sled where both serve the same data, and what
//! only this backend has (fencing, migrations, a shared token secret, NOTIFY, durability).

use super::*;
use crate::store::{OrgStore, SessionCursor, SessionSummaryRow, SledStore, TicketQueries};
use chrono::{DateTime, TimeZone, Utc};
use testkit::pg::{execute, PgCluster, TestDatabase};
use ticketsync_actors::ports::{EngineStore, EventKind, QueuedEvent, StoreFailure};
use ticketsync_actors::session::Session;
use ticketsync_actors::ticket::state::{GateDecision, GateOutcome, PendingEffect, TicketRecord};
use ticketsync_actors::{OrgId, SessionId, TicketId};

const SHARDS: u32 = 8;
const TTL: Duration = Duration::from_secs(30);

fn options(url: &str) -> PgOptions {
    PgOptions {
        url: url.to_string(),
        max_connections: 4,
        statement_timeout: Duration::from_secs(5),
    }
}

/// A store of node `node` on `url`, holding no lease.
async fn open(url: &str, node: &str) -> PgStore {
    PgStore::open(&options(url), Arc::new(ShardTokens::new(node, SHARDS)))
        .await
        .unwrap()
}

/// A store of node `node` on `url` that holds every shard (granted as the lease manager of
/// `src/cluster/` grants a lease it took).
async fn owner(url: &str, node: &str) -> PgStore {
    let store = open(url, node).await;
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    let taken = client
        .query(
            "UPDATE shard_leases SET owner = $1, token = token + 1, \
               expires_at = now() + make_interval(secs => $2) RETURNING shard, token",
            &[&node, &TTL.as_secs_f64()],
        )
        .await
        .unwrap();
    for row in taken {
        store
            .tokens()
            .grant(row.get::<_, i32>(0) as u32, row.get(1));
    }
    assert_eq!(store.tokens().held_shards().len(), SHARDS as usize);
    store
}

/// A new org, stored (engine writes keep only the records of orgs that exist).
async fn stored_org(store: &PgStore) -> OrgId {
    let org = ticketsync_actors::org::Org {
        id: OrgId::new(),
        name: "Test".into(),
        created_at: Utc::now(),
    };
    store.insert_org(&org).await.unwrap();
    org.id
}

fn record(org: OrgId, ticket: u64, pending: bool) -> TicketRecord {
    let mut r = TicketRecord::new(
        org,
        TicketId(ticket),
        GateDecision {
            decision: GateOutcome::Tracked,
            reason: "test".into(),
            at: Utc::now(),
        },
    );
    if pending {
        let effect: PendingEffect = serde_json::from_value(serde_json::json!({
            "id": uuid::Uuid::new_v4(),
            "kind": "post_reply",
            "body_html": "<p>hi</p>",
            "body_text": "hi",
            "attempts": 0,
            "created_at": Utc::now(),
        }))
        .unwrap();
        r.pending_effects.push(effect);
    }
    r
}

fn session(ticket: u64, updated_at: DateTime<Utc>, state: &str) -> Session {
    serde_json::from_value(serde_json::json!({
        "id": SessionId::new(),
        "ticket_id": ticket,
        "channel": "email",
        "subject": format!("ticket {ticket}"),
        "state": state,
        "freshdesk_status": {"id": 2, "name": "Open"},
        "imported": false,
        "created_at": updated_at,
        "updated_at": updated_at,
        "handoff": null,
        "messages": [],
    }))
    .unwrap()
}

fn tracked(org: OrgId, ticket: u64, updated_at: DateTime<Utc>, state: &str) -> TicketRecord {
    let mut r = record(org, ticket, false);
    r.session = Some(session(ticket, updated_at, state));
    r
}

async fn append(store: &PgStore, org: OrgId, ticket: u64) -> QueuedEvent {
    store
        .append_event(org, TicketId(ticket), EventKind::Sweep, Utc::now())
        .await
        .unwrap()
}

/// (queued events, queued per org, tickets with pending effects, tracked tickets).
async fn gauged(store: &PgStore, orgs: &[OrgId]) -> (u64, Vec<u64>, u64, u64) {
    let mut per_org = Vec::new();
    for org in orgs {
        per_org.push(store.org_backlog(*org).await.unwrap());
    }
    (
        store.inbox_depth().await.unwrap(),
        per_org,
        store.pending_effect_tickets().await.unwrap(),
        store.tracked_tickets().await.unwrap(),
    )
}

#[actix_rt::test]
async fn the_inspection_counts_follow_appends_consumes_discards_and_a_reopen() {
    let Some(db) = TestDatabase::create() else {
        return;
    };
    let (a, b) = {
        let store = open(db.url(), "node-a").await;
        (stored_org(&store).await, stored_org(&store).await)
    };
    let orgs = [a, b];
    {
        let store = owner(db.url(), "node-a").await;
        let mut a1 = Vec::new();
        for _ in 0..4 {
            a1.push(append(&store, a, 1).await);
        }
        let mut a2 = Vec::new();
        for _ in 0..3 {
            a2.push(append(&store, a, 2).await);
        }
        let mut b1 = Vec::new();
        for _ in 0..5 {
            b1.push(append(&store, b, 1).await);
        }
        assert_eq!(gauged(&store, &orgs).await, (12, vec![7, 5], 0, 0));
        store.commit(&record(a, 1, true), &a1[..2]).await.unwrap();
        store.commit(&record(a, 1, true), &a1[2..]).await.unwrap();
        assert_eq!(gauged(&store, &orgs).await, (8, vec![3, 5], 1, 0));
        store.commit(&record(a, 1, false), &[]).await.unwrap();
        // Discarded twice (the second removes nothing), consumed twice.
        store.discard_events(&b1[..3]).await.unwrap();
        store.discard_events(&b1[..4]).await.unwrap();
        store.commit(&record(a, 2, false), &a2).await.unwrap();
        store.commit(&record(a, 2, false), &a2).await.unwrap();
        store
            .put_records(&[
                record(b, 7, true),
                record(b, 8, true),
                tracked(a, 1, Utc::now(), "ai_active"),
            ])
            .await
            .unwrap();
        assert_eq!(gauged(&store, &orgs).await, (1, vec![0, 1], 2, 1));
        assert_eq!(
            store.tickets_with_work().await.unwrap(),
            sorted(vec![(b, TicketId(1)), (b, TicketId(7)), (b, TicketId(8))])
        );
    }
    let store = owner(db.url(), "node-a").await;
    assert_eq!(gauged(&store, &orgs).await, (1, vec![0, 1], 2, 1));
    let later = append(&store, a, 3).await;
    store.commit(&record(b, 7, false), &[]).await.unwrap();
    store.commit(&record(a, 3, true), &[later]).await.unwrap();
    assert_eq!(gauged(&store, &orgs).await, (1, vec![0, 1], 2, 1));
}

fn sorted(mut v: Vec<(OrgId, TicketId)>) -> Vec<(OrgId, TicketId)> {
    v.sort();
    v
}

#[actix_rt::test]
async fn queued_events_come_back_in_order_with_what_was_appended() {
    let Some(db) = TestDatabase::create() else {
        return;
    };
    let store = owner(db.url(), "node-a").await;
    let org = OrgId::new();
    let at = Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).unwrap();
    let first = store
        .append_event(
            org,
            TicketId(5),
            EventKind::Webhook {
                triggered_event: "{ticket_action:created}".into(),
            },
            at,
        )
        .await
        .unwrap();
    let second = store
        .append_event(
            org,
            TicketId(5),
            EventKind::AdminHandoff {
                detail: Some("x".into()),
            },
            at,
        )
        .await
        .unwrap();
    append(&store, org, 6).await;
    assert!(first.seq < second.seq);
    assert_eq!(
        store.queued_events(org, TicketId(5)).await.unwrap(),
        vec![first, second]
    );
    assert_eq!(store.last_webhook_at(org).await.unwrap(), Some(at));
    assert_eq!(store.last_webhook_at(OrgId::new()).await.unwrap(), None);
}

#[actix_rt::test]
async fn an_append_notifies_the_wake_channel_on_commit() {
    let Some(db) = TestDatabase::create() else {
        return;
    };
    let store = open(db.url(), "node-a").await;
    let (client, mut connection) = tokio_postgres::connect(db.url(), NoTls).await.unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let pump = actix_rt::spawn(async move {
        let mut messages = futures::stream::poll_fn(move |cx| connection.poll_message(cx));
        while let Some(Ok(message)) = futures::StreamExt::next(&mut messages).await {
            if let tokio_postgres::AsyncMessage::Notification(n) = message {
                let _ = tx.send((n.channel().to_string(), n.payload().to_string()));
            }
        }
    });
    client
        .batch_execute(&format!("LISTEN {}", WAKE_CHANNEL))
        .await
        .unwrap();
    let org = OrgId::new();
    append(&store, org, 42).await;
    let got = tokio::time::timeout(Duration::from_secs(5), rx.recv())
        .await
        .expect("a notification within 5 s");
    assert_eq!(got, Some((WAKE_CHANNEL.to_string(), format!("{org}:42"))));
    drop(client);
    pump.await.unwrap();
}

#[actix_rt::test]
async fn session_pages_match_the_sled_store_row_for_row_and_cursor_for_cursor() {
    let Some(db) = TestDatabase::create() else {
        return;
    };
    let pg = owner(db.url(), "node-a").await;
    let dir = tempfile::tempdir().unwrap();
    let sled = SledStore::open(dir.path()).unwrap();
    let (org, other) = (stored_org(&pg).await, stored_org(&pg).await);
    let t0 = Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).unwrap();
    let second = chrono::Duration::seconds(1);
    // Ties on the update time (tickets 3, 4, 9 and 5, 6), states to filter on, another org.
    let mut records = vec![
        tracked(org, 9, t0, "ai_active"),
        tracked(org, 4, t0, "handed_off"),
        tracked(org, 3, t0, "ai_active"),
        tracked(org, 1, t0 + second, "ai_active"),
        tracked(org, 6, t0 - second, "human_active"),
        tracked(org, 5, t0 - second, "ai_active"),
        tracked(org, 2, t0 + second * 5, "handed_off"),
        tracked(other, 1, t0, "ai_active"),
        record(org, 10, false),
    ];
    // A session that moves: its old position must disappear from the list.
    records.push(tracked(org, 11, t0 - second * 9, "ai_active"));
    pg.put_records(&records).await.unwrap();
    sled.put_records(&records).await.unwrap();
    let moved = tracked(org, 11, t0 + second * 2, "ai_active");
    let mut moved_same_session = records.last().unwrap().clone();
    moved_same_session.session = Some(Session {
        updated_at: moved.session.as_ref().unwrap().updated_at,
        ..moved_same_session.session.unwrap()
    });
    pg.commit(&moved_same_session, &[]).await.unwrap();
    sled.commit(&moved_same_session, &[]).await.unwrap();

    let all = |_: &SessionSummaryRow| true;
    let ai_only = |r: &SessionSummaryRow| r.session["state"] == "ai_active";
    let everything = vec![2, 11, 1, 3, 4, 9, 5, 6];
    let ai_active = vec![11, 1, 3, 9, 5];
    type Filter<'a> = &'a (dyn Fn(&SessionSummaryRow) -> bool + Send + Sync);
    let cases: [(usize, Filter, &Vec<u64>); 5] = [
        (1, &all, &everything),
        (2, &all, &everything),
        (100, &all, &everything),
        (2, &ai_only, &ai_active),
        (3, &ai_only, &ai_active),
    ];
    for (limit, filter, expected) in cases {
        let mut cursor: Option<SessionCursor> = None;
        let mut seen = Vec::new();
        loop {
            let (pg_rows, pg_next) = pg
                .session_page(org, cursor.as_ref(), filter, limit)
                .await
                .unwrap();
            let (sled_rows, sled_next) = sled
                .session_page(org, cursor.as_ref(), filter, limit)
                .await
                .unwrap();
            assert_eq!(
                serde_json::to_value(&pg_rows).unwrap(),
                serde_json::to_value(&sled_rows).unwrap(),
                "limit {limit}, after {seen:?}"
            );
            assert_eq!(pg_next, sled_next, "limit {limit}, after {seen:?}");
            assert!(pg_rows.len() <= limit);
            seen.extend(
                pg_rows
                    .iter()
                    .map(|r| r.session["ticket_id"].as_u64().unwrap()),
            );
            assert!(
                seen.len() <= expected.len(),
                "paging does not end: {seen:?}"
            );
            match pg_next {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
        assert_eq!(&seen, expected, "limit {limit}");
    }
}

#[actix_rt::test]
async fn sessions_are_found_by_id_and_records_by_ticket() {
    let Some(db) = TestDatabase::create() else {
        return;
    };
    let store = owner(db.url(), "node-a").await;
    let org = stored_org(&store).await;
    let r = tracked(org, 77, Utc::now(), "ai_active");
    store.commit(&r, &[]).await.unwrap();
    let id = r.session.as_ref().unwrap().id;
    assert_eq!(store.ticket_by_session(id).await.unwrap(), Some(r.clone()));
    assert_eq!(
        store.ticket_by_session(SessionId::new()).await.unwrap(),
        None
    );
    assert_eq!(
        store.ticket_record(org, TicketId(77)).await.unwrap(),
        Some(r.clone())
    );
    assert_eq!(store.load_ticket(org, TicketId(78)).await.unwrap(), None);
}

#[actix_rt::test]
async fn a_commit_that_fails_consumes_no_event() {
    let Some(db) = TestDatabase::create() else {
        return;
    };
    let store = owner(db.url(), "node-a").await;
    let org = stored_org(&store).await;
    let first = tracked(org, 1, Utc::now(), "ai_active");
    store.commit(&first, &[]).await.unwrap();
    let queued = vec![append(&store, org, 2).await, append(&store, org, 2).await];
    // Ticket 2 claims ticket 1's session id: the unique index refuses the record, after the
    // consumed events were deleted in the same transaction.
    let mut clash = tracked(org, 2, Utc::now(), "ai_active");
    clash.session.as_mut().unwrap().id = first.session.as_ref().unwrap().id;
    let refused = store.commit(&clash, &queued).await;
    assert!(refused.is_err(), "{refused:?}");
    assert_eq!(store.queued_events(org, TicketId(2)).await.unwrap(), queued);
    assert_eq!(store.load_ticket(org, TicketId(2)).await.unwrap(), None);
    // The same commit without the clash consumes them.
    store
        .commit(&tracked(org, 2, Utc::now(), "ai_active"), &queued)
        .await
        .unwrap();
    assert_eq!(store.queued_events(org, TicketId(2)).await.unwrap(), vec![]);
}

#[actix_rt::test]
async fn a_write_without_the_lease_fails_and_changes_nothing() {
    let Some(db) = TestDatabase::create() else {
        return;
    };
    let store = owner(db.url(), "node-a").await;
    let org = stored_org(&store).await;
    let shard = store.tokens().shard_of(org);
    let before = record(org, 1, false);
    store.commit(&before, &[]).await.unwrap();
    store
        .save_job(org, "sweep", &serde_json::json!({"n": 1}))
        .await
        .unwrap();
    let queued = append(&store, org, 1).await;
    let changed = record(org, 1, true);

    let refused_everywhere = |store: PgStore, expect: String| {
        let (changed, queued) = (changed.clone(), queued.clone());
        async move {
            let outcomes = [
                store.commit(&changed, std::slice::from_ref(&queued)).await,
                store.discard_events(std::slice::from_ref(&queued)).await,
                store
                    .save_job(org, "sweep", &serde_json::json!({"n": 2}))
                    .await,
                store
                    .put_records(std::slice::from_ref(&changed))
                    .await
                    .map_err(|e| StoreFailure(e.to_string())),
            ];
            for outcome in outcomes {
                let e = outcome.expect_err("a write without the lease succeeded");
                assert!(e.0.contains(&expect), "{e}");
            }
        }
    };
    let expect = format!("lease for shard {shard} is not held by this node");

    // Revoked here (the lease manager gave it up).
    let token = store.tokens().held(shard).unwrap();
    store.tokens().revoke(shard);
    refused_everywhere(store.clone(), expect.clone()).await;

    // Held here, but expired and taken over by another node (this node was paused).
    store.tokens().grant(shard, token);
    execute(
        db.url(),
        &format!(
            "UPDATE shard_leases SET owner = 'node-b', token = token + 1, \
             expires_at = now() + interval '30 s' WHERE shard = {shard}"
        ),
    )
    .unwrap();
    refused_everywhere(store.clone(), expect.clone()).await;

    // Held with the right token, but expired on the database clock.
    execute(
        db.url(),
        &format!(
            "UPDATE shard_leases SET owner = 'node-a', token = {token}, \
             expires_at = now() - interval '1 s' WHERE shard = {shard}"
        ),
    )
    .unwrap();
    refused_everywhere(store.clone(), expect).await;

    assert_eq!(
        store.load_ticket(org, TicketId(1)).await.unwrap(),
        Some(before)
    );
    assert_eq!(
        store.queued_events(org, TicketId(1)).await.unwrap(),
        vec![queued]
    );
    assert_eq!(
        store.load_job(org, "sweep").await.unwrap(),
        Some(serde_json::json!({"n": 1}))
    );
    // Appends are not fenced: any node accepts webhooks.
    append(&store, org, 1).await;
}

#[actix_rt::test]
async fn migrations_run_once_and_a_newer_schema_is_refused() {
    let Some(db) = TestDatabase::create() else {
        return;
    };
    // Two nodes starting together apply the schema once.
    let (a, b) = futures::join!(open(db.url(), "node-a"), open(db.url(), "node-b"));
    drop((a, b));
    execute(
        db.url(),
        &format!(
            "DO $$ BEGIN IF (SELECT count(*) FROM schema_version) <> {} \
             THEN RAISE EXCEPTION 'applied twice'; END IF; END $$",
            migrations::MIGRATIONS.len()
        ),
    )
    .unwrap();
    execute(
        db.url(),
        &format!(
            "INSERT INTO schema_version VALUES ({})",
            migrations::newest_version() + 1
        ),
    )
    .unwrap();
    let refused = PgStore::open(
        &options(db.url()),
        Arc::new(ShardTokens::new("node-a", SHARDS)),
    )
    .await
    .err()
    .expect("a newer schema was accepted");
    assert!(
        matches!(&refused, PgError::Schema(m) if m.contains("newer than this binary")),
        "{refused}"
    );
}

#[actix_rt::test]
async fn another_shard_count_than_the_database_was_set_up_with_is_refused() {
    let Some(db) = TestDatabase::create() else {
        return;
    };
    drop(open(db.url(), "node-a").await);
    let refused = PgStore::open(&options(db.url()), Arc::new(ShardTokens::new("node-b", 16)))
        .await
        .err()
        .expect("another shard count was accepted");
    assert!(
        refused.to_string().contains("cluster.shards is 16"),
        "{refused}"
    );
}

#[actix_rt::test]
async fn the_token_secret_is_the_first_writers_for_every_node() {
    let Some(db) = TestDatabase::create() else {
        return;
    };
    let (a, b) = (
        open(db.url(), "node-a").await,
        open(db.url(), "node-b").await,
    );
    let (sa, sb) = futures::join!(a.webhook_token_secret(), b.webhook_token_secret());
    let secret = sa.unwrap();
    assert_eq!(secret, sb.unwrap());
    drop((a, b));
    let again = open(db.url(), "node-c").await;
    assert_eq!(again.webhook_token_secret().await.unwrap(), secret);
}

#[actix_rt::test]
async fn orgs_and_connections_round_trip_oldest_first() {
    let Some(db) = TestDatabase::create() else {
        return;
    };
    let store = open(db.url(), "node-a").await;
    let t0 = Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).unwrap();
    let newer = ticketsync_actors::org::Org {
        id: OrgId::new(),
        name: "newer".into(),
        created_at: t0 + chrono::Duration::seconds(1),
    };
    let older = ticketsync_actors::org::Org {
        id: OrgId::new(),
        name: "older".into(),
        created_at: t0,
    };
    store.insert_org(&newer).await.unwrap();
    store.insert_org(&older).await.unwrap();
    let names: Vec<String> = store
        .orgs()
        .await
        .unwrap()
        .into_iter()
        .map(|o| o.name)
        .collect();
    assert_eq!(names, ["older", "newer"]);
    assert_eq!(store.org(older.id).await.unwrap().unwrap().name, "older");
    assert!(store.org(OrgId::new()).await.unwrap().is_none());
    assert!(store.connection(older.id).await.unwrap().is_none());
    assert!(!store.connected(older.id).await.unwrap());
    assert!(store.size_on_disk().await.unwrap() > 0);
}

#[actix_rt::test]
async fn durability_fails_while_the_server_is_down_and_recovers_after() {
    let Some(mut cluster) = PgCluster::start() else {
        return;
    };
    let db = cluster.database();
    let store = owner(db.url(), "node-a").await;
    assert_eq!(store.durability(), Ok(()));
    cluster.stop();
    let org = OrgId::new();
    assert!(store
        .append_event(org, TicketId(1), EventKind::Sweep, Utc::now())
        .await
        .is_err());
    let down = store
        .durability()
        .expect_err("durable while the server is down");
    assert!(down.contains("PostgreSQL is unavailable"), "{down}");
    cluster.start_again();
    testkit::eventually("durable again", Duration::from_secs(10), || async {
        store.durability().is_ok()
    })
    .await;
    append(&store, org, 1).await;
    drop(store);
    drop(db);
}

/// Durable appends per second at several concurrencies (a measurement, not a check):
/// `cargo test --release --lib append_throughput -- --ignored --nocapture`.
#[actix_rt::test]
#[ignore = "a measurement; run by hand"]
async fn append_throughput() {
    let Some(db) = TestDatabase::create() else {
        return;
    };
    let store = PgStore::open(
        &PgOptions {
            max_connections: 16,
            ..options(db.url())
        },
        Arc::new(ShardTokens::new("node-a", SHARDS)),
    )
    .await
    .unwrap();
    let orgs: Vec<OrgId> = (0..50).map(|_| OrgId::new()).collect();
    for concurrency in [1usize, 8, 32, 128] {
        let total = 4000.min(concurrency * 400);
        let started = std::time::Instant::now();
        let next = std::sync::atomic::AtomicUsize::new(0);
        let worker = || async {
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= total {
                    return;
                }
                store
                    .append_event(
                        orgs[i % orgs.len()],
                        TicketId(i as u64),
                        EventKind::Webhook {
                            triggered_event: "x".into(),
                        },
                        Utc::now(),
                    )
                    .await
                    .unwrap();
            }
        };
        futures::future::join_all((0..concurrency).map(|_| worker())).await;
        let secs = started.elapsed().as_secs_f64();
        println!(
            "concurrency {concurrency:>3}: {total} appends in {secs:.2} s = {:.0}/s",
            total as f64 / secs
        );
    }
}

#[actix_rt::test]
async fn text_with_nul_characters_round_trips_through_every_record() {
    let Some(db) = TestDatabase::create() else {
        return;
    };
    let store = owner(db.url(), "node-a").await;
    // Freshdesk text and admin input may hold U+0000, which PostgreSQL's jsonb refuses.
    let nul = "before\u{0}after";
    let org = ticketsync_actors::org::Org {
        id: OrgId::new(),
        name: nul.into(),
        created_at: Utc::now(),
    };
    store.insert_org(&org).await.unwrap();
    assert_eq!(store.org(org.id).await.unwrap().unwrap().name, nul);
    let event = store
        .append_event(
            org.id,
            TicketId(1),
            EventKind::AdminHandoff {
                detail: Some(nul.into()),
            },
            Utc::now(),
        )
        .await
        .unwrap();
    assert_eq!(
        store.queued_events(org.id, TicketId(1)).await.unwrap(),
        vec![event.clone()]
    );
    let mut record = tracked(org.id, 1, Utc::now(), "ai_active");
    record.session.as_mut().unwrap().subject = nul.into();
    store.commit(&record, &[event]).await.unwrap();
    assert_eq!(
        store.load_ticket(org.id, TicketId(1)).await.unwrap(),
        Some(record)
    );
    let (rows, _) = store
        .session_page(org.id, None, &|_: &SessionSummaryRow| true, 10)
        .await
        .unwrap();
    assert_eq!(rows[0].session["subject"], nul);
    store
        .save_job(org.id, "sweep", &serde_json::json!({ "cursor": nul }))
        .await
        .unwrap();
    assert_eq!(
        store.load_job(org.id, "sweep").await.unwrap(),
        Some(serde_json::json!({ "cursor": nul }))
    );
}

#[actix_rt::test]
async fn concurrent_appends_grouped_into_one_insert_each_get_their_own_position() {
    let Some(db) = TestDatabase::create() else {
        return;
    };
    let store = open(db.url(), "node-a").await;
    let org = OrgId::new();
    let appended = futures::future::join_all((0..64).map(|i| {
        store.append_event(
            org,
            TicketId(1),
            EventKind::AdminHandoff {
                detail: Some(format!("event {i}")),
            },
            Utc::now(),
        )
    }))
    .await;
    let mut appended: Vec<QueuedEvent> = appended.into_iter().map(Result::unwrap).collect();
    appended.sort_by_key(|e| e.seq);
    appended.dedup_by_key(|e| e.seq);
    assert_eq!(appended.len(), 64, "two events share a position");
    // What each caller was told is exactly what is stored at that position.
    assert_eq!(
        store.queued_events(org, TicketId(1)).await.unwrap(),
        appended
    );
}

#[actix_rt::test]
async fn a_saturated_pool_is_not_an_unavailable_server() {
    let Some(db) = TestDatabase::create() else {
        return;
    };
    let store = PgStore::open(
        &PgOptions {
            max_connections: 1,
            statement_timeout: Duration::from_secs(1),
            ..options(db.url())
        },
        Arc::new(ShardTokens::new("node-a", SHARDS)),
    )
    .await
    .unwrap();
    let only = store.pool.get().await.unwrap();
    let busy = store
        .inbox_depth()
        .await
        .expect_err("a connection was free");
    assert!(busy.to_string().contains("busy"), "{busy}");
    assert_eq!(store.durability(), Ok(()), "/readyz would fail on load");
    drop(only);
    assert_eq!(store.inbox_depth().await.unwrap(), 0);
}

#[actix_rt::test]
async fn a_running_self_test_blocks_a_second_start_from_any_node_until_it_is_stale_or_finished() {
    let Some(db) = TestDatabase::create() else {
        return;
    };
    let (a, b) = futures::join!(open(db.url(), "node-a"), open(db.url(), "node-b"));
    crate::store::self_tests::check_one_run_at_a_time(&a, &b).await;
}

#[actix_rt::test]
async fn a_pass_that_commits_after_its_org_was_erased_writes_nothing_back() {
    // The owner of an org can be another node than the one that erases it, so only the
    // database can refuse a late commit (decisions: "Access: deleting an org").
    let Some(db) = TestDatabase::create() else {
        return;
    };
    let eraser = open(db.url(), "node-a").await;
    let owner = owner(db.url(), "node-b").await;
    let org = ticketsync_actors::org::Org {
        id: OrgId::new(),
        name: "Erased".into(),
        created_at: Utc::now(),
    };
    eraser.insert_org(&org).await.unwrap();
    owner.commit(&record(org.id, 1, true), &[]).await.unwrap();
    owner
        .save_job(org.id, "sweep", &serde_json::json!({"n": 1}))
        .await
        .unwrap();

    eraser.erase_org(org.id).await.unwrap();
    owner.commit(&record(org.id, 1, true), &[]).await.unwrap();
    owner.commit(&record(org.id, 2, false), &[]).await.unwrap();
    owner
        .put_records(&[record(org.id, 3, false)])
        .await
        .unwrap();
    owner
        .save_job(org.id, "sweep", &serde_json::json!({"n": 2}))
        .await
        .unwrap();

    let left = db.contents();
    assert!(
        !left.contains(&org.id.to_string()),
        "the erased org came back:\n{left}"
    );
}
