//! The engine with in-memory ports: supervision of failing ticket actors, parking, and
//! isolation of a poison ticket from the others. No HTTP, no sled: the ports are the seams.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use parking_lot::Mutex;
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use ticketsync_actors::engine::{Engine, EngineConfig, EngineParts};
use ticketsync_actors::freshdesk::*;
use ticketsync_actors::org::{AiAgent, ChannelModes, HandoffSettings, OrgSettings};
use ticketsync_actors::ports::*;
use ticketsync_actors::ticket::machine::{Decision, ResponderRequest};
use ticketsync_actors::ticket::state::TicketRecord;
use ticketsync_actors::*;

const AI: u64 = 42;

/// Events and records in maps.
#[derive(Default)]
struct MemoryStore {
    inbox: Mutex<BTreeMap<(OrgId, TicketId, u64), QueuedEvent>>,
    tickets: Mutex<HashMap<(OrgId, TicketId), TicketRecord>>,
    jobs: Mutex<HashMap<(OrgId, String), serde_json::Value>>,
    seq: AtomicU32,
    /// A failing disk: every flush fails while set.
    flush_fails: AtomicBool,
    /// An unreachable database: reading a ticket's queued events fails while set.
    reads_fail: AtomicBool,
}

impl MemoryStore {
    /// The ticket's queued events, oldest first (what `queued_events` answers).
    fn queued(&self, org: OrgId, ticket: TicketId) -> Vec<QueuedEvent> {
        self.inbox
            .lock()
            .range((org, ticket, 0)..=(org, ticket, u64::MAX))
            .map(|(_, e)| e.clone())
            .collect()
    }

    /// The ticket's record (what `load_ticket` answers).
    fn record(&self, org: OrgId, ticket: TicketId) -> Option<TicketRecord> {
        self.tickets.lock().get(&(org, ticket)).cloned()
    }
}

#[async_trait]
impl EngineStore for MemoryStore {
    async fn append_event(
        &self,
        org: OrgId,
        ticket: TicketId,
        kind: EventKind,
        received_at: DateTime<Utc>,
    ) -> Result<QueuedEvent, StoreFailure> {
        let seq = u64::from(self.seq.fetch_add(1, Ordering::SeqCst));
        let event = QueuedEvent {
            seq,
            id: EventId::new(),
            org_id: org,
            ticket_id: ticket,
            kind,
            received_at,
        };
        self.inbox.lock().insert((org, ticket, seq), event.clone());
        Ok(event)
    }
    async fn queued_events(
        &self,
        org: OrgId,
        ticket: TicketId,
    ) -> Result<Vec<QueuedEvent>, StoreFailure> {
        if self.reads_fail.load(Ordering::SeqCst) {
            return Err(StoreFailure("the database is unreachable".into()));
        }
        Ok(self.queued(org, ticket))
    }
    async fn discard_events(&self, events: &[QueuedEvent]) -> Result<(), StoreFailure> {
        let mut inbox = self.inbox.lock();
        for e in events {
            inbox.remove(&(e.org_id, e.ticket_id, e.seq));
        }
        Ok(())
    }
    async fn load_ticket(
        &self,
        org: OrgId,
        ticket: TicketId,
    ) -> Result<Option<TicketRecord>, StoreFailure> {
        Ok(self.record(org, ticket))
    }
    async fn commit(
        &self,
        record: &TicketRecord,
        consumed: &[QueuedEvent],
    ) -> Result<(), StoreFailure> {
        self.tickets
            .lock()
            .insert((record.org_id, record.ticket_id), record.clone());
        self.discard_events(consumed).await
    }
    async fn tickets_with_work(&self) -> Result<Vec<(OrgId, TicketId)>, StoreFailure> {
        let mut all: Vec<_> = self.inbox.lock().keys().map(|(o, t, _)| (*o, *t)).collect();
        all.dedup();
        Ok(all)
    }
    async fn flush(&self) -> Result<(), StoreFailure> {
        if self.flush_fails.load(Ordering::SeqCst) {
            return Err(StoreFailure("the disk is gone".into()));
        }
        Ok(())
    }
    async fn load_job(
        &self,
        org: OrgId,
        job: &str,
    ) -> Result<Option<serde_json::Value>, StoreFailure> {
        Ok(self.jobs.lock().get(&(org, job.to_string())).cloned())
    }
    async fn save_job(
        &self,
        org: OrgId,
        job: &str,
        state: &serde_json::Value,
    ) -> Result<(), StoreFailure> {
        self.jobs
            .lock()
            .insert((org, job.to_string()), state.clone());
        Ok(())
    }
}

/// A tiny Freshdesk: tickets with their conversations; replies are recorded.
struct MemoryFreshdesk {
    tickets: Mutex<HashMap<u64, (Ticket, Vec<Conversation>)>>,
    next_conversation: AtomicU32,
    /// While set, listing agents waits for `agents_release` (it holds the org actor busy).
    hold_agents: std::sync::atomic::AtomicBool,
    agents_waiting: AtomicU32,
    agents_release: tokio::sync::Semaphore,
    /// While set, replies and notes are refused with a 401 (the key was reset).
    refuse_writes: std::sync::atomic::AtomicBool,
    /// Tickets whose reads answer 503 for now, and how many reads were refused.
    failing: Mutex<std::collections::HashSet<u64>>,
    refused_reads: AtomicU32,
    /// Added to every ticket and conversations read.
    latency_ms: std::sync::atomic::AtomicU64,
    /// Replies still to answer with a timeout after they landed.
    land_then_time_out: AtomicU32,
}

impl Default for MemoryFreshdesk {
    fn default() -> Self {
        Self {
            tickets: Mutex::default(),
            next_conversation: AtomicU32::new(0),
            hold_agents: false.into(),
            agents_waiting: AtomicU32::new(0),
            agents_release: tokio::sync::Semaphore::new(0),
            refuse_writes: false.into(),
            failing: Mutex::default(),
            refused_reads: AtomicU32::new(0),
            latency_ms: 0.into(),
            land_then_time_out: AtomicU32::new(0),
        }
    }
}

fn ok<T>(value: T) -> FreshdeskResult<T> {
    Ok(Api {
        value,
        rate_limit: Some(RateLimit {
            total: 10_000,
            remaining: 9_999,
            used_current: 1,
        }),
    })
}

impl MemoryFreshdesk {
    fn add_ticket(&self, id: u64, text: &str) {
        let now = Utc::now();
        let ticket = Ticket {
            id: TicketId(id),
            subject: format!("ticket {id}"),
            description: text.into(),
            description_text: text.into(),
            status: TicketStatus::Open,
            priority: 1,
            source: 1,
            requester_id: Some(5000 + id),
            responder_id: None,
            group_id: None,
            tags: vec![],
            custom_fields: Default::default(),
            created_at: now,
            updated_at: now,
        };
        self.tickets.lock().insert(id, (ticket, vec![]));
    }

    /// A message on the ticket from `user_id` (a contact or an agent).
    fn add_message(&self, id: u64, user_id: u64, text: &str) {
        let mut tickets = self.tickets.lock();
        let (ticket, conversations) = tickets.get_mut(&id).unwrap();
        conversations.push(Conversation {
            id: ConversationId(
                u64::from(self.next_conversation.fetch_add(1, Ordering::SeqCst)) + 1,
            ),
            body: text.into(),
            body_text: text.into(),
            incoming: true,
            private: false,
            source: 0,
            user_id,
            created_at: Utc::now(),
            updated_at: None,
        });
        ticket.updated_at = Utc::now() + chrono::Duration::seconds(1);
    }

    fn ai_replies(&self, id: u64) -> usize {
        self.tickets.lock().get(&id).map_or(0, |(_, c)| {
            c.iter().filter(|c| c.user_id == AI && !c.private).count()
        })
    }

    fn post(&self, id: TicketId, body: &str, private: bool) -> FreshdeskResult<Conversation> {
        if self.refuse_writes.load(Ordering::SeqCst) {
            return Err(FreshdeskError::Unauthorized);
        }
        let mut tickets = self.tickets.lock();
        let Some((ticket, conversations)) = tickets.get_mut(&id.0) else {
            return Err(FreshdeskError::NotFound);
        };
        let c = Conversation {
            id: ConversationId(
                u64::from(self.next_conversation.fetch_add(1, Ordering::SeqCst)) + 1,
            ),
            body: body.into(),
            body_text: text_of(body),
            incoming: false,
            private,
            source: if private { 2 } else { 0 },
            user_id: AI,
            created_at: Utc::now(),
            updated_at: None,
        };
        conversations.push(c.clone());
        ticket.updated_at = Utc::now();
        let time_out = !private
            && self
                .land_then_time_out
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok();
        if time_out {
            return Err(FreshdeskError::Timeout);
        }
        ok(c)
    }
}

/// The text of an HTML body, as Freshdesk derives `body_text` (tags dropped).
fn text_of(html: &str) -> String {
    let mut text = String::new();
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => in_tag = true,
            '>' => in_tag = false,
            c if !in_tag => text.push(c),
            _ => {}
        }
    }
    text
}

#[async_trait]
impl FreshdeskApi for MemoryFreshdesk {
    async fn me(&self) -> FreshdeskResult<Agent> {
        Err(FreshdeskError::NotFound)
    }
    async fn roles(&self) -> FreshdeskResult<Vec<Role>> {
        ok(vec![])
    }
    async fn agents(&self, _: u32) -> FreshdeskResult<Page<Agent>> {
        if self.hold_agents.load(Ordering::SeqCst) {
            self.agents_waiting.fetch_add(1, Ordering::SeqCst);
            self.agents_release.acquire().await.unwrap().forget();
        }
        ok(Page {
            items: vec![],
            has_next: false,
        })
    }
    async fn agent(&self, _: AgentId) -> FreshdeskResult<Agent> {
        Err(FreshdeskError::NotFound)
    }
    async fn group(&self, _: GroupId) -> FreshdeskResult<Group> {
        Err(FreshdeskError::NotFound)
    }
    async fn groups(&self, _: u32) -> FreshdeskResult<Page<Group>> {
        ok(Page {
            items: vec![],
            has_next: false,
        })
    }
    async fn ticket_fields(&self) -> FreshdeskResult<Vec<TicketField>> {
        ok(vec![])
    }
    async fn ticket(&self, id: TicketId) -> FreshdeskResult<Ticket> {
        self.delay().await;
        if self.failing.lock().contains(&id.0) {
            self.refused_reads.fetch_add(1, Ordering::SeqCst);
            return Err(FreshdeskError::Server { status: 503 });
        }
        self.tickets
            .lock()
            .get(&id.0)
            .map(|(t, _)| t.clone())
            .map_or(Err(FreshdeskError::NotFound), ok)
    }
    async fn update_ticket(&self, id: TicketId, _: &TicketUpdate) -> FreshdeskResult<Ticket> {
        self.ticket(id).await
    }
    async fn tickets(&self, query: &TicketListQuery) -> FreshdeskResult<Page<Ticket>> {
        let mut all: Vec<Ticket> = self
            .tickets
            .lock()
            .values()
            .map(|(t, _)| t.clone())
            .filter(|t| {
                query
                    .updated_since
                    .is_none_or(|since| t.updated_at >= since)
            })
            .collect();
        all.sort_by_key(|t| (t.updated_at, t.id.0));
        let per_page = query.per_page as usize;
        let skip = (query.page as usize - 1) * per_page;
        ok(Page {
            has_next: all.len() > skip + per_page,
            items: all.into_iter().skip(skip).take(per_page).collect(),
        })
    }
    async fn conversations(&self, id: TicketId, page: u32) -> FreshdeskResult<Page<Conversation>> {
        self.delay().await;
        let tickets = self.tickets.lock();
        let all = tickets
            .get(&id.0)
            .map(|(_, c)| c.clone())
            .unwrap_or_default();
        let items = all
            .into_iter()
            .skip((page as usize - 1) * 100)
            .take(100)
            .collect();
        ok(Page {
            items,
            has_next: false,
        })
    }
    async fn reply(&self, id: TicketId, body: &str) -> FreshdeskResult<Conversation> {
        self.post(id, body, false)
    }
    async fn note(&self, id: TicketId, body: &str, private: bool) -> FreshdeskResult<Conversation> {
        self.post(id, body, private)
    }
}

struct OneOrg {
    api: Arc<MemoryFreshdesk>,
    connected_at: DateTime<Utc>,
    /// What the store says: flipped by the tests' saves and disconnects.
    connected: std::sync::atomic::AtomicBool,
    /// Times the engine read the stored connection.
    reads: AtomicU32,
}

#[async_trait]
impl OrgProvider for OneOrg {
    async fn connection(&self, _: OrgId) -> Result<Option<OrgConnection>, ConnectionFailure> {
        self.reads.fetch_add(1, Ordering::SeqCst);
        Ok(Some(OrgConnection {
            settings: OrgSettings {
                domain: "acme.freshdesk.com".into(),
                auto_handle_all: true,
                default_group_id: None,
                handoff: HandoffSettings::default(),
                channels: ChannelModes::default(),
                assist_footer: None,
            },
            agent: AiAgent {
                id: AgentId(AI),
                name: "AI".into(),
                email: None,
            },
            first_connected_at: self.connected_at,
            connected: self.connected.load(Ordering::SeqCst),
            api: self.api.clone(),
        }))
    }
}

/// This node's hold on the org, switched by the tests (the lease manager's part).
struct Held {
    runs: AtomicBool,
    /// Bumped each time the org comes (back) to this node.
    epoch: std::sync::atomic::AtomicI64,
    /// Enough of the hold is left for a write.
    writable: AtomicBool,
}

impl Default for Held {
    fn default() -> Self {
        Self {
            runs: true.into(),
            epoch: 1.into(),
            writable: true.into(),
        }
    }
}

impl Held {
    /// The org leaves this node.
    fn lose(&self) {
        self.runs.store(false, Ordering::SeqCst);
    }

    /// The org comes (back) to this node, under a new epoch.
    fn gain(&self) {
        self.epoch.fetch_add(1, Ordering::SeqCst);
        self.runs.store(true, Ordering::SeqCst);
    }
}

#[async_trait]
impl Ownership for Held {
    fn runs(&self, _: OrgId) -> bool {
        self.runs.load(Ordering::SeqCst)
    }
    fn epoch(&self, org: OrgId) -> Option<i64> {
        self.runs(org).then(|| self.epoch.load(Ordering::SeqCst))
    }
    fn may_write(&self, org: OrgId) -> bool {
        self.runs(org) && self.writable.load(Ordering::SeqCst)
    }
    async fn writable(&self, org: OrgId) -> bool {
        loop {
            if self.may_write(org) {
                return true;
            }
            if !self.runs(org) {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

/// Answers everything, but panics on any ticket whose description contains "poison", and
/// waits for `release` on one that contains "hold".
struct PoisonResponder {
    panics: AtomicU32,
    held: AtomicU32,
    release: tokio::sync::Semaphore,
}

#[async_trait]
impl Responder for PoisonResponder {
    async fn decide(&self, request: &ResponderRequest) -> Result<Decision, ResponderFailure> {
        if request
            .transcript
            .iter()
            .any(|m| m.body_text.contains("poison"))
        {
            self.panics.fetch_add(1, Ordering::SeqCst);
            panic!("responder blew up on a poison ticket");
        }
        if request
            .transcript
            .iter()
            .any(|m| m.body_text.contains("hold"))
        {
            self.held.fetch_add(1, Ordering::SeqCst);
            self.release.acquire().await.unwrap().forget();
        }
        Ok(Decision::Reply {
            text: format!("answer to {}", request.subject),
        })
    }
}

struct World {
    engine: Engine,
    held: Arc<Held>,
    orgs: Arc<OneOrg>,
    store: Arc<MemoryStore>,
    api: Arc<MemoryFreshdesk>,
    responder: Arc<PoisonResponder>,
    org: OrgId,
}

fn world(idle_passivate: Duration) -> World {
    world_with(idle_passivate, 10_000)
}

fn world_with(idle_passivate: Duration, max_live_actors_per_shard: usize) -> World {
    world_with_clock(
        idle_passivate,
        max_live_actors_per_shard,
        Arc::new(SystemClock),
    )
}

/// Our clock, this far ahead of Freshdesk's (the system clock).
struct AheadClock(chrono::Duration);

impl Clock for AheadClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now() + self.0
    }
}

fn world_with_clock(
    idle_passivate: Duration,
    max_live_actors_per_shard: usize,
    clock: Arc<dyn Clock>,
) -> World {
    world_built(clock, |c| {
        c.idle_passivate = idle_passivate;
        c.max_live_actors_per_shard = max_live_actors_per_shard;
    })
}

/// A world whose engine configuration `tune` adjusts.
fn world_configured(tune: impl FnOnce(&mut EngineConfig)) -> World {
    world_built(Arc::new(SystemClock), tune)
}

fn world_built(clock: Arc<dyn Clock>, tune: impl FnOnce(&mut EngineConfig)) -> World {
    let mut config = EngineConfig {
        max_ai_answers: 10,
        idle_passivate: Duration::from_secs(3600),
        restart_budget: 3,
        park_for: Duration::from_secs(3600),
        shards: 2,
        rate_limit_share: 1.0,
        reconcile_interval: Duration::from_secs(3600),
        backfill_days: 180,
        write_settle: Duration::from_millis(500),
        max_live_actors_per_shard: 10_000,
    };
    tune(&mut config);
    let store = Arc::new(MemoryStore::default());
    let api = Arc::new(MemoryFreshdesk::default());
    let responder = Arc::new(PoisonResponder {
        panics: AtomicU32::new(0),
        held: AtomicU32::new(0),
        release: tokio::sync::Semaphore::new(0),
    });
    let orgs = Arc::new(OneOrg {
        api: api.clone(),
        connected_at: Utc::now() - chrono::Duration::seconds(5),
        connected: true.into(),
        reads: AtomicU32::new(0),
    });
    let held = Arc::new(Held::default());
    let engine = Engine::start(EngineParts {
        store: store.clone(),
        orgs: orgs.clone(),
        responder: responder.clone(),
        clock,
        config,
        ownership: held.clone(),
    });
    World {
        engine,
        held,
        orgs,
        store,
        api,
        responder,
        org: OrgId::new(),
    }
}

impl World {
    async fn webhook(&self, ticket: u64) {
        self.engine
            .queue(
                self.org,
                &[TicketId(ticket)],
                EventKind::Webhook {
                    triggered_event: "ticket_created".into(),
                },
            )
            .await
            .unwrap();
    }
}

async fn until(what: &str, deadline: Duration, mut check: impl FnMut() -> bool) {
    let end = Instant::now() + deadline;
    while !check() {
        assert!(Instant::now() < end, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[actix::test]
async fn a_panicking_ticket_is_restarted_then_parked_while_other_tickets_proceed() {
    let w = world(Duration::from_secs(3600));
    w.api.add_ticket(13, "this one is poison");
    for id in 20..25 {
        w.api.add_ticket(id, "a normal question");
    }
    w.webhook(13).await;
    for id in 20..25 {
        w.webhook(id).await;
    }
    until("normal tickets answered", Duration::from_secs(10), || {
        (20..25).all(|id| w.api.ai_replies(id) == 1)
    })
    .await;
    let mut parked = false;
    let end = Instant::now() + Duration::from_secs(10);
    while !parked && Instant::now() < end {
        parked = w
            .engine
            .actor_status(w.org, TicketId(13))
            .await
            .is_some_and(|s| s.parked);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(parked, "the poison ticket is parked");
    let status = w.engine.actor_status(w.org, TicketId(13)).await.unwrap();
    assert_eq!(
        status.restarts, 4,
        "restart budget of 3, then parked on the 4th failure"
    );
    assert_eq!(
        w.responder.panics.load(Ordering::SeqCst),
        4,
        "each restart retried from stored state"
    );
    assert_eq!(w.api.ai_replies(13), 0);
    assert_eq!(w.engine.metrics().parked_tickets.load(Ordering::SeqCst), 1);
    assert_eq!(w.engine.parked_tickets(), vec![(w.org, TicketId(13))]);
    assert!(w
        .engine
        .last_crash(w.org, TicketId(13))
        .unwrap()
        .message
        .contains("poison"));
    // Its event is still queued (not lost), and other tickets keep flowing.
    assert_eq!(w.store.queued(w.org, TicketId(13)).len(), 1);
    w.api.add_ticket(30, "another normal question");
    w.webhook(30).await;
    until("a later ticket answered", Duration::from_secs(10), || {
        w.api.ai_replies(30) == 1
    })
    .await;
}

#[actix::test]
async fn a_passivated_ticket_comes_back_with_its_state_and_never_has_two_actors() {
    let w = world(Duration::from_millis(200));
    w.api.add_ticket(7, "first question");
    w.webhook(7).await;
    until("answered", Duration::from_secs(10), || {
        w.api.ai_replies(7) == 1
    })
    .await;
    let end = Instant::now() + Duration::from_secs(10);
    while w.engine.actor_status(w.org, TicketId(7)).await.is_some() {
        assert!(Instant::now() < end, "passivated");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(w.engine.metrics().live_actors.load(Ordering::SeqCst), 0);
    // A burst of wake-ups around re-activation: one incarnation, one answer per message.
    w.api.post(TicketId(7), "ignored", true).unwrap();
    {
        let mut tickets = w.api.tickets.lock();
        let (ticket, conversations) = tickets.get_mut(&7).unwrap();
        conversations.push(Conversation {
            id: ConversationId(999),
            body: "follow-up".into(),
            body_text: "follow-up".into(),
            incoming: true,
            private: false,
            source: 0,
            user_id: 5007,
            created_at: Utc::now(),
            updated_at: None,
        });
        ticket.updated_at = Utc::now();
    }
    for _ in 0..20 {
        w.webhook(7).await;
    }
    until("follow-up answered", Duration::from_secs(10), || {
        w.api.ai_replies(7) == 2
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        w.api.ai_replies(7),
        2,
        "exactly one answer to the follow-up"
    );
    assert!(w.engine.metrics().live_actors.load(Ordering::SeqCst) <= 1);
    let record = w.store.record(w.org, TicketId(7)).unwrap();
    assert_eq!(record.ai.answers, 2, "state survived passivation");
}

#[actix::test]
async fn a_burst_beyond_the_live_actor_cap_waits_for_slots_and_every_ticket_is_answered() {
    let w = world_with(Duration::from_secs(3600), 2);
    for id in 100..140 {
        w.api.add_ticket(id, "a normal question");
    }
    let tickets: Vec<TicketId> = (100..140).map(TicketId).collect();
    w.engine
        .queue(
            w.org,
            &tickets,
            EventKind::Webhook {
                triggered_event: "ticket_created".into(),
            },
        )
        .await
        .unwrap();
    let mut most_live = 0;
    let end = Instant::now() + Duration::from_secs(20);
    while !(100..140).all(|id| w.api.ai_replies(id) == 1) {
        most_live = most_live.max(w.engine.metrics().live_actors.load(Ordering::SeqCst));
        assert!(Instant::now() < end, "every ticket answered");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(
        most_live <= 4,
        "2 shards x 2 actors at most, saw {most_live}"
    );
    assert!(
        w.engine.metrics().passivations.load(Ordering::SeqCst) >= 36,
        "quiet actors made room"
    );
    assert!(
        (100..140).all(|id| w.api.ai_replies(id) == 1),
        "one answer each"
    );
}

#[actix::test]
async fn a_webhook_accepted_while_the_org_reconnects_is_not_dropped() {
    let w = world(Duration::from_secs(3600));
    w.api.add_ticket(1, "asked while disconnected");
    w.api.add_ticket(2, "asked while reconnecting");
    // Disconnected: the org actor loads and keeps a disconnected snapshot.
    w.orgs.connected.store(false, Ordering::SeqCst);
    w.engine.org_changed(w.org).await.unwrap();
    w.webhook(1).await;
    until(
        "the disconnected org's event is dropped",
        Duration::from_secs(10),
        || w.store.queued(w.org, TicketId(1)).is_empty(),
    )
    .await;
    // A save stores `connected` (the webhook route now answers 202) and only then tells the
    // engine: an event accepted in between must not be judged by the old snapshot.
    w.orgs.connected.store(true, Ordering::SeqCst);
    let reads = w.orgs.reads.load(Ordering::SeqCst);
    w.webhook(2).await;
    until(
        "ticket 2's pass looked at the org",
        Duration::from_secs(10),
        || {
            w.store.queued(w.org, TicketId(2)).is_empty()
                || w.orgs.reads.load(Ordering::SeqCst) > reads
        },
    )
    .await;
    w.engine.org_changed(w.org).await.unwrap();
    until(
        "the reconnected org answers",
        Duration::from_secs(10),
        || w.api.ai_replies(2) == 1,
    )
    .await;
    assert_eq!(w.api.ai_replies(1), 0, "nothing posted while disconnected");
}

#[actix::test]
async fn once_a_disconnect_returns_nothing_more_is_posted_even_while_the_org_actor_is_busy() {
    let w = world(Duration::from_secs(3600));
    // Ticket 1's pass takes the snapshot and then waits in the responder.
    w.api.add_ticket(1, "please hold on");
    w.webhook(1).await;
    until("ticket 1 in the responder", Duration::from_secs(10), || {
        w.responder.held.load(Ordering::SeqCst) == 1
    })
    .await;
    // Ticket 2 has a message from someone the directory does not know: the org actor lists
    // the agents, which hangs, so its mailbox is busy.
    w.api.hold_agents.store(true, Ordering::SeqCst);
    w.api.add_ticket(2, "a normal question");
    w.api.add_message(2, 777, "a colleague chimes in");
    w.webhook(2).await;
    until(
        "the org actor busy listing agents",
        Duration::from_secs(10),
        || w.api.agents_waiting.load(Ordering::SeqCst) == 1,
    )
    .await;
    // The admin disconnects; once that returns, nothing may reach Freshdesk.
    w.orgs.connected.store(false, Ordering::SeqCst);
    w.engine.org_changed(w.org).await.unwrap();
    w.responder.release.add_permits(1);
    until("ticket 1's pass ended", Duration::from_secs(10), || {
        w.store
            .record(w.org, TicketId(1))
            .is_some_and(|r| r.pending_effects.is_empty())
            && w.store.queued(w.org, TicketId(1)).is_empty()
    })
    .await;
    assert_eq!(
        w.api.ai_replies(1),
        0,
        "posted after the disconnect returned"
    );
    w.api.agents_release.add_permits(1);
}

#[actix::test]
async fn a_post_refused_for_its_key_is_kept_and_sent_once_a_working_key_is_saved() {
    let w = world(Duration::from_secs(3600));
    w.api.refuse_writes.store(true, Ordering::SeqCst);
    w.api.add_ticket(1, "a normal question");
    w.webhook(1).await;
    until("the org paused", Duration::from_secs(10), || {
        w.engine.org_pause(w.org).is_some()
    })
    .await;
    let record = w.store.record(w.org, TicketId(1)).unwrap();
    assert!(
        record
            .pending_effects
            .iter()
            .any(|e| e.kind.name() == "post_reply"),
        "the answer is kept"
    );
    assert_eq!(w.api.ai_replies(1), 0);
    assert_eq!(w.engine.metrics().orgs_paused.load(Ordering::SeqCst), 1);
    // The admin saves the new key.
    w.api.refuse_writes.store(false, Ordering::SeqCst);
    w.engine.org_changed(w.org).await.unwrap();
    assert!(w.engine.org_pause(w.org).is_none());
    until("answered", Duration::from_secs(10), || {
        w.api.ai_replies(1) == 1
    })
    .await;
    until("the outbox emptied", Duration::from_secs(10), || {
        w.store
            .record(w.org, TicketId(1))
            .is_some_and(|r| r.pending_effects.is_empty())
    })
    .await;
    assert_eq!(w.api.ai_replies(1), 1, "answered once");
    assert_eq!(w.engine.metrics().orgs_paused.load(Ordering::SeqCst), 0);
}

#[actix::test]
async fn an_admin_command_whose_flush_fails_leaves_no_waiter_behind() {
    let w = world(Duration::from_secs(3600));
    w.api.add_ticket(5, "a question");
    w.store.flush_fails.store(true, Ordering::SeqCst);
    let submitted = w
        .engine
        .submit(
            w.org,
            TicketId(5),
            EventKind::AdminHandoff { detail: None },
            Duration::from_secs(5),
        )
        .await;
    assert!(submitted.is_err(), "the command is not durable");
    assert_eq!(w.engine.waiting_submits(), 0);
    // Nor does a caller that goes away while waiting (or, if the ticket was quicker, one
    // that was answered).
    w.store.flush_fails.store(false, Ordering::SeqCst);
    let _abandoned_or_applied = tokio::time::timeout(
        Duration::from_millis(1),
        w.engine.submit(
            w.org,
            TicketId(6),
            EventKind::AdminResume,
            Duration::from_secs(3600),
        ),
    )
    .await;
    assert_eq!(w.engine.waiting_submits(), 0);
}

impl MemoryFreshdesk {
    /// The customer writes again on a ticket.
    fn customer_writes(&self, id: u64, text: &str) {
        self.add_message(id, 5000 + id, text);
    }
}

/// One shard holding one actor: the next ticket's arrival passivates whatever reported quiet.
fn one_slot_world() -> World {
    world_configured(|c| {
        c.shards = 1;
        c.max_live_actors_per_shard = 1;
    })
}

#[actix::test]
async fn a_ticket_passivated_while_its_retry_is_scheduled_is_still_answered() {
    let w = one_slot_world();
    w.api.add_ticket(1, "first question");
    w.webhook(1).await;
    until("first answer", Duration::from_secs(10), || {
        w.api.ai_replies(1) == 1
    })
    .await;
    // Ticket 1 reported quiet; now its next pass fails transiently and schedules a retry.
    w.api.failing.lock().insert(1);
    w.api.customer_writes(1, "second question");
    w.webhook(1).await;
    until("the re-read failed", Duration::from_secs(10), || {
        w.api.refused_reads.load(Ordering::SeqCst) >= 1
    })
    .await;
    // Another ticket needs the only slot: the shard passivates ticket 1 (its stale quiet entry).
    w.api.add_ticket(2, "another question");
    w.webhook(2).await;
    until("the other ticket answered", Duration::from_secs(10), || {
        w.api.ai_replies(2) == 1
    })
    .await;
    w.api.failing.lock().remove(&1);
    until(
        "the retried ticket answered",
        Duration::from_secs(10),
        || w.api.ai_replies(1) == 2,
    )
    .await;
    assert_eq!(w.store.queued(w.org, TicketId(1)).len(), 0);
}

#[actix::test]
async fn passivating_a_parked_ticket_does_not_leak_the_parked_gauge() {
    let w = one_slot_world();
    w.api.add_ticket(13, "a normal question");
    w.webhook(13).await;
    until("first answer", Duration::from_secs(10), || {
        w.api.ai_replies(13) == 1
    })
    .await;
    // Ticket 13 reported quiet; its next message poisons it until it is parked.
    w.api.customer_writes(13, "now this is poison");
    w.webhook(13).await;
    until("parked", Duration::from_secs(10), || {
        w.engine.metrics().parked_tickets.load(Ordering::SeqCst) == 1
    })
    .await;
    // Another ticket needs the only slot: the shard passivates the parked ticket.
    w.api.add_ticket(2, "another question");
    w.webhook(2).await;
    until("the other ticket answered", Duration::from_secs(10), || {
        w.api.ai_replies(2) == 1
    })
    .await;
    // Its work is still queued, so a new incarnation takes it up, fails and parks it again.
    until(
        "the new incarnation failed",
        Duration::from_secs(10),
        || w.responder.panics.load(Ordering::SeqCst) == 8,
    )
    .await;
    let end = Instant::now() + Duration::from_secs(10);
    while !w
        .engine
        .actor_status(w.org, TicketId(13))
        .await
        .is_some_and(|s| s.parked)
    {
        assert!(Instant::now() < end, "parked again");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        w.engine.metrics().parked_tickets.load(Ordering::SeqCst),
        1,
        "one parked ticket"
    );
    assert_eq!(w.engine.parked_tickets(), vec![(w.org, TicketId(13))]);
}

impl MemoryFreshdesk {
    async fn delay(&self) {
        let ms = self.latency_ms.load(Ordering::SeqCst);
        if ms > 0 {
            tokio::time::sleep(Duration::from_millis(ms)).await;
        }
    }

    /// A ticket created (and last updated) `age` ago.
    fn add_old_ticket(&self, id: u64, age: chrono::Duration) {
        self.add_ticket(id, "an old question");
        let mut tickets = self.tickets.lock();
        let (ticket, _) = tickets.get_mut(&id).unwrap();
        ticket.created_at = Utc::now() - age;
        ticket.updated_at = ticket.created_at;
    }
}

#[actix::test]
async fn live_tickets_are_answered_while_a_large_backfill_is_still_importing() {
    let w = world_configured(|c| c.max_live_actors_per_shard = 4);
    let history = 1000..1600;
    for id in history.clone() {
        w.api.add_old_ticket(id, chrono::Duration::days(2));
    }
    w.api.latency_ms.store(20, Ordering::SeqCst);
    w.engine.org_connected(w.org, true).await.unwrap();
    let imported = |w: &World| {
        history
            .clone()
            .filter(|id| w.store.record(w.org, TicketId(*id)).is_some())
            .count()
    };
    until("the backfill imports", Duration::from_secs(10), || {
        imported(&w) > 0
    })
    .await;
    for id in 1..=3 {
        w.api.add_ticket(id, "a live question");
        w.webhook(id).await;
    }
    until("live tickets answered", Duration::from_secs(30), || {
        (1..=3).all(|id| w.api.ai_replies(id) == 1)
    })
    .await;
    // Live work goes first: it never queues behind the bulk of the history.
    let done = imported(&w);
    assert!(
        done < 300,
        "live tickets did not wait for the whole backfill ({done} of 600 imported)"
    );
}

#[actix::test]
async fn a_webhook_on_a_ticket_whose_sweep_waits_behind_imports_is_answered_first() {
    let w = world(Duration::from_secs(3600));
    w.api.add_ticket(1, "a live question");
    w.webhook(1).await;
    until("first answer", Duration::from_secs(10), || {
        w.api.ai_replies(1) == 1
    })
    .await;
    let history: Vec<TicketId> = (1000..1600).map(TicketId).collect();
    for id in &history {
        w.api.add_old_ticket(id.0, chrono::Duration::days(2));
    }
    w.api.latency_ms.store(20, Ordering::SeqCst);
    // Imports fill the org's background passes; the ticket's sweep queues behind them.
    w.engine
        .queue(w.org, &history, EventKind::Import)
        .await
        .unwrap();
    w.engine
        .queue(w.org, &[TicketId(1)], EventKind::Sweep)
        .await
        .unwrap();
    let end = Instant::now() + Duration::from_secs(10);
    while !w
        .engine
        .actor_status(w.org, TicketId(1))
        .await
        .is_some_and(|s| s.busy)
    {
        assert!(Instant::now() < end, "the sweep's pass started");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    w.api.customer_writes(1, "a second question");
    w.webhook(1).await;
    until("the second answer", Duration::from_secs(30), || {
        w.api.ai_replies(1) == 2
    })
    .await;
    let imported = history
        .iter()
        .filter(|id| w.store.record(w.org, **id).is_some())
        .count();
    assert!(
        imported < 300,
        "the webhook did not wait for the imports ({imported} of 600 imported)"
    );
}

#[actix::test]
async fn the_backfill_queues_one_page_of_imports_at_a_time() {
    let w = world(Duration::from_secs(3600));
    for id in 1000..1600 {
        w.api.add_old_ticket(id, chrono::Duration::days(2));
    }
    w.api.latency_ms.store(5, Ordering::SeqCst);
    w.engine.org_connected(w.org, true).await.unwrap();
    let imports_queued = || {
        w.store
            .inbox
            .lock()
            .values()
            .filter(|e| e.kind == EventKind::Import)
            .count()
    };
    let mut most = 0;
    let end = Instant::now() + Duration::from_secs(30);
    while (1000..1600).any(|id| w.store.record(w.org, TicketId(id)).is_none()) {
        most = most.max(imports_queued());
        assert!(Instant::now() < end, "every ticket imported");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    assert!(most <= 100, "at most one page in flight, saw {most}");
    let progress = w.engine.backfill(w.org).await.unwrap();
    assert_eq!(progress.tickets_queued, 600);
}

#[actix::test]
async fn a_reply_that_landed_but_timed_out_is_not_sent_again_when_our_clock_is_ten_seconds_ahead() {
    let w = world_with_clock(
        Duration::from_secs(3600),
        10_000,
        Arc::new(AheadClock(chrono::Duration::seconds(10))),
    );
    w.api.add_ticket(50, "a normal question");
    w.api.land_then_time_out.store(1, Ordering::SeqCst);
    w.webhook(50).await;
    until("the outbox is empty", Duration::from_secs(10), || {
        w.store
            .record(w.org, TicketId(50))
            .is_some_and(|r| r.ai.answers == 1 && r.pending_effects.is_empty())
    })
    .await;
    assert_eq!(
        w.api.ai_replies(50),
        1,
        "the reply that landed is not sent again"
    );
    assert_eq!(
        w.engine.metrics().effects_reconciled.load(Ordering::SeqCst),
        1,
        "found by reconciliation"
    );
}

/// Holds for `period`: the condition stays true (nothing more happens).
async fn stays(what: &str, period: Duration, mut check: impl FnMut() -> bool) {
    let end = Instant::now() + period;
    while Instant::now() < end {
        assert!(check(), "{what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[actix::test]
async fn an_org_owned_by_another_node_keeps_its_events_queued_and_is_answered_once_it_comes_here() {
    let w = world(Duration::from_secs(3600));
    w.held.lose();
    w.api.add_ticket(60, "a normal question");
    w.webhook(60).await;
    stays(
        "nothing is answered or consumed while another node owns the org",
        Duration::from_millis(500),
        || w.api.ai_replies(60) == 0 && w.store.queued(w.org, TicketId(60)).len() == 1,
    )
    .await;
    assert_eq!(
        w.engine.recover().await.unwrap(),
        0,
        "nothing of it runs here"
    );
    w.held.gain();
    assert_eq!(w.engine.recover_where(|org| org == w.org).await.unwrap(), 1);
    until(
        "answered once the org came here",
        Duration::from_secs(10),
        || w.api.ai_replies(60) == 1 && w.store.queued(w.org, TicketId(60)).is_empty(),
    )
    .await;
}

#[actix::test]
async fn a_write_waits_while_the_hold_is_too_short_and_is_never_sent_after_the_org_left() {
    let w = world(Duration::from_secs(3600));
    w.api.add_ticket(61, "a normal question");
    w.held.writable.store(false, Ordering::SeqCst);
    w.webhook(61).await;
    until(
        "the reply is decided and stored",
        Duration::from_secs(10),
        || {
            w.store
                .record(w.org, TicketId(61))
                .is_some_and(|r| !r.pending_effects.is_empty())
        },
    )
    .await;
    stays(
        "no write while the hold is too short",
        Duration::from_millis(300),
        || w.api.ai_replies(61) == 0,
    )
    .await;
    // The org leaves before the hold was renewed: the write is never sent, and once
    // `stop_orgs` returns no write of the org is in flight.
    w.held.lose();
    w.engine.stop_orgs(|org| org == w.org).await;
    w.held.writable.store(true, Ordering::SeqCst);
    stays(
        "nothing is sent for an org that left",
        Duration::from_millis(300),
        || w.api.ai_replies(61) == 0,
    )
    .await;
    // It comes back (another node may have posted meanwhile; here none did): the pending
    // reply is reconciled and sent once.
    w.held.gain();
    w.engine.recover_where(|_| true).await.unwrap();
    until("sent once back here", Duration::from_secs(10), || {
        w.api.ai_replies(61) == 1
            && w.store
                .record(w.org, TicketId(61))
                .is_some_and(|r| r.pending_effects.is_empty())
    })
    .await;
}

#[actix::test]
async fn an_admin_command_on_a_node_that_does_not_own_the_org_returns_once_the_owner_applied_it() {
    let w = world(Duration::from_secs(3600));
    w.held.lose();
    let submit = {
        let engine = w.engine.clone();
        let org = w.org;
        actix::spawn(async move {
            engine
                .submit(
                    org,
                    TicketId(62),
                    EventKind::AdminResume,
                    Duration::from_secs(10),
                )
                .await
        })
    };
    until("the command is queued", Duration::from_secs(5), || {
        w.store.queued(w.org, TicketId(62)).len() == 1
    })
    .await;
    assert!(!submit.is_finished(), "waits for the owner");
    // The owner (another node) consumes it.
    let queued = w.store.queued(w.org, TicketId(62));
    w.store.discard_events(&queued).await.unwrap();
    assert!(submit.await.unwrap().unwrap(), "reported applied");
}

#[actix::test]
async fn a_store_outage_longer_than_the_restart_budget_does_not_park_the_ticket() {
    let w = world(Duration::from_secs(3600));
    w.api.add_ticket(63, "a normal question");
    // The database goes away once the webhook is stored: every pass fails reading its events.
    w.store.reads_fail.store(true, Ordering::SeqCst);
    w.webhook(63).await;
    until(
        "more failed passes than the restart budget (3)",
        Duration::from_secs(20),
        || w.engine.metrics().actor_restarts.load(Ordering::SeqCst) >= 4,
    )
    .await;
    assert_eq!(
        w.engine.metrics().parked_tickets.load(Ordering::SeqCst),
        0,
        "a store outage is not the ticket's fault"
    );
    w.store.reads_fail.store(false, Ordering::SeqCst);
    until(
        "answered once the store is back",
        Duration::from_secs(10),
        || w.api.ai_replies(63) == 1,
    )
    .await;
}
