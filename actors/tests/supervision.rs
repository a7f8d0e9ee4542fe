//! The engine with in-memory ports: supervision of failing ticket actors, parking, and
//! isolation of a poison ticket from the others. No HTTP, no sled: the ports are the seams.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use parking_lot::Mutex;
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU32, Ordering};
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
}

#[async_trait]
impl EngineStore for MemoryStore {
    fn append_event(
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
    fn queued_events(
        &self,
        org: OrgId,
        ticket: TicketId,
    ) -> Result<Vec<QueuedEvent>, StoreFailure> {
        Ok(self
            .inbox
            .lock()
            .range((org, ticket, 0)..=(org, ticket, u64::MAX))
            .map(|(_, e)| e.clone())
            .collect())
    }
    fn discard_events(&self, events: &[QueuedEvent]) -> Result<(), StoreFailure> {
        let mut inbox = self.inbox.lock();
        for e in events {
            inbox.remove(&(e.org_id, e.ticket_id, e.seq));
        }
        Ok(())
    }
    fn load_ticket(
        &self,
        org: OrgId,
        ticket: TicketId,
    ) -> Result<Option<TicketRecord>, StoreFailure> {
        Ok(self.tickets.lock().get(&(org, ticket)).cloned())
    }
    fn commit(&self, record: &TicketRecord, consumed: &[QueuedEvent]) -> Result<(), StoreFailure> {
        self.tickets
            .lock()
            .insert((record.org_id, record.ticket_id), record.clone());
        self.discard_events(consumed)
    }
    fn tickets_with_work(&self) -> Result<Vec<(OrgId, TicketId)>, StoreFailure> {
        let mut all: Vec<_> = self.inbox.lock().keys().map(|(o, t, _)| (*o, *t)).collect();
        all.dedup();
        Ok(all)
    }
    async fn flush(&self) -> Result<(), StoreFailure> {
        Ok(())
    }
    fn load_job(&self, org: OrgId, job: &str) -> Result<Option<serde_json::Value>, StoreFailure> {
        Ok(self.jobs.lock().get(&(org, job.to_string())).cloned())
    }
    fn save_job(
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
#[derive(Default)]
struct MemoryFreshdesk {
    tickets: Mutex<HashMap<u64, (Ticket, Vec<Conversation>)>>,
    next_conversation: AtomicU32,
    /// Replies still to answer with a timeout after they landed.
    land_then_time_out: AtomicU32,
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
            status: 2,
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

    fn ai_replies(&self, id: u64) -> usize {
        self.tickets.lock().get(&id).map_or(0, |(_, c)| {
            c.iter().filter(|c| c.user_id == AI && !c.private).count()
        })
    }

    fn post(&self, id: TicketId, body: &str, private: bool) -> FreshdeskResult<Conversation> {
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
    async fn ticket_fields(&self) -> FreshdeskResult<Vec<TicketField>> {
        ok(vec![])
    }
    async fn ticket(&self, id: TicketId) -> FreshdeskResult<Ticket> {
        self.tickets
            .lock()
            .get(&id.0)
            .map(|(t, _)| t.clone())
            .map_or(Err(FreshdeskError::NotFound), ok)
    }
    async fn update_ticket(&self, id: TicketId, _: &serde_json::Value) -> FreshdeskResult<Ticket> {
        self.ticket(id).await
    }
    async fn tickets(&self, _: &TicketListQuery) -> FreshdeskResult<Page<Ticket>> {
        ok(Page {
            items: vec![],
            has_next: false,
        })
    }
    async fn conversations(&self, id: TicketId, page: u32) -> FreshdeskResult<Page<Conversation>> {
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
}

impl OrgProvider for OneOrg {
    fn connection(&self, _: OrgId) -> Result<Option<OrgConnection>, StoreFailure> {
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
            connected: true,
            api: self.api.clone(),
        }))
    }
}

/// Answers everything, but panics on any ticket whose description contains "poison".
struct PoisonResponder {
    panics: AtomicU32,
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
        Ok(Decision::Reply {
            text: format!("answer to {}", request.subject),
        })
    }
}

struct World {
    engine: Engine,
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
    let store = Arc::new(MemoryStore::default());
    let api = Arc::new(MemoryFreshdesk::default());
    let responder = Arc::new(PoisonResponder {
        panics: AtomicU32::new(0),
    });
    let engine = Engine::start(EngineParts {
        store: store.clone(),
        orgs: Arc::new(OneOrg {
            api: api.clone(),
            connected_at: Utc::now() - chrono::Duration::seconds(5),
        }),
        responder: responder.clone(),
        clock,
        config: EngineConfig {
            max_ai_answers: 10,
            idle_passivate,
            restart_budget: 3,
            park_for: Duration::from_secs(3600),
            shards: 2,
            rate_limit_share: 1.0,
            reconcile_interval: Duration::from_secs(3600),
            backfill_days: 180,
            write_settle: Duration::from_millis(500),
            max_live_actors_per_shard,
        },
    });
    World {
        engine,
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
    assert!(w
        .engine
        .last_crash(w.org, TicketId(13))
        .unwrap()
        .message
        .contains("poison"));
    // Its event is still queued (not lost), and other tickets keep flowing.
    assert_eq!(w.store.queued_events(w.org, TicketId(13)).unwrap().len(), 1);
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
    let record = w.store.load_ticket(w.org, TicketId(7)).unwrap().unwrap();
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
            .load_ticket(w.org, TicketId(50))
            .unwrap()
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
