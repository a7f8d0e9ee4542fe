//! The per-org Freshdesk rate budget (contract §8). Freshdesk limits each account per minute
//! (`X-RateLimit-Total`); ticketsync may use `rate_limit_share` of it. The budget counts this
//! process's calls in a sliding minute, learns the account's total from response headers,
//! pauses the org after a 429 for its `Retry-After`, and serves waiting callers by priority:
//! live replies before status sync before backfill and sweeps. Background calls may use only
//! three quarters of the window, so that live work arriving after a burst of background calls
//! finds slots at once instead of waiting for the minute to slide.
//!
//! Endpoint sub-limits (contract §10: Tickets List and Ticket Update have their own per-minute
//! limits) are counted the same way, with the same share, in windows of their own. Freshdesk
//! sends no header for them, so they follow its published plan table, picked by the learned
//! account total (`sub_limits`). A 429 on a sub-limited call pauses that endpoint only: had
//! the account limit been reached instead, the next call of another kind gets its own 429
//! (refused calls cost nothing) and pauses the whole org. So a backfill's list refused by the
//! Tickets List limit never holds up a live reply.
//!
//! Owned by the org (one `Arc` per org, kept across settings reloads); every Freshdesk call of
//! the engine goes through `BudgetedApi`, which waits for a slot first.

use crate::freshdesk::*;
use crate::ids::{AgentId, GroupId, TicketId};
use crate::org::gate::{OrgGate, PauseReason};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use parking_lot::Mutex;
use serde::Serialize;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};

use std::time::{Duration, Instant};
use tokio::sync::Notify;

/// Who is asking: lower values are served first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Priority {
    /// Writing an answer, a note, a handoff.
    Live = 0,
    /// Re-reading a ticket after an event.
    Sync = 1,
    /// Backfill and missed-webhook sweeps.
    Background = 2,
}

/// A Freshdesk endpoint with a per-minute sub-limit of its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    /// `GET /tickets`.
    TicketsList = 0,
    /// `PUT /tickets/{id}`.
    TicketUpdate = 1,
}

/// The minute Freshdesk counts in.
const WINDOW: Duration = Duration::from_secs(60);
/// Assumed account limit until a response tells the real one (Freshdesk's smallest plan).
const UNKNOWN_TOTAL: u32 = 50;

/// Freshdesk's sub-limits (Tickets List, Ticket Update) by account limit: Growth (200 a
/// minute, and the trial) 20 and 80, Pro (400) 100 and 160, Enterprise (700) 200 and 280.
fn sub_limits(total: u32) -> [u32; 2] {
    match total {
        0..=200 => [20, 80],
        201..=400 => [100, 160],
        _ => [200, 280],
    }
}

/// Calls in the sliding minute, and a 429's pause.
#[derive(Default)]
struct Window {
    sent: VecDeque<Instant>,
    paused_until: Option<Instant>,
}

impl Window {
    fn prune(&mut self, now: Instant) {
        while self
            .sent
            .front()
            .is_some_and(|t| now.duration_since(*t) >= WINDOW)
        {
            self.sent.pop_front();
        }
        if self.paused_until.is_some_and(|until| until <= now) {
            self.paused_until = None;
        }
    }

    /// How long until a call fits under `limit` (None: now).
    fn wait(&self, limit: u32, now: Instant) -> Option<Duration> {
        if let Some(until) = self.paused_until {
            return Some(until - now);
        }
        if (self.sent.len() as u32) < limit {
            return None;
        }
        self.sent
            .front()
            .map(|t| WINDOW.saturating_sub(now.duration_since(*t)))
    }

    fn pause(&mut self, retry_after: Duration) {
        let until = Instant::now() + retry_after;
        if self.paused_until.is_none_or(|p| p < until) {
            self.paused_until = Some(until);
        }
    }
}

struct State {
    share: f64,
    total: u32,
    account: Window,
    paused_until_wall: Option<DateTime<Utc>>,
    endpoints: [Window; 2],
    /// Callers waiting for an account slot, by priority.
    waiting: [u32; 3],
    /// Callers held by an endpoint's sub-limit (they do not hold up the others).
    held: u32,
}

impl State {
    fn share_of(&self, limit: u32) -> u32 {
        ((f64::from(limit) * self.share).floor() as u32).max(1)
    }

    fn limit(&self) -> u32 {
        self.share_of(self.total)
    }

    /// The calls of the window a caller of `priority` may use.
    fn limit_for(&self, priority: Priority) -> u32 {
        let limit = self.limit();
        match priority {
            Priority::Background => limit - limit / 4,
            Priority::Live | Priority::Sync => limit,
        }
    }

    fn endpoint_limit(&self, endpoint: Endpoint) -> u32 {
        self.share_of(sub_limits(self.total)[endpoint as usize])
    }

    fn prune(&mut self, now: Instant) {
        self.account.prune(now);
        if self.account.paused_until.is_none() {
            self.paused_until_wall = None;
        }
        for w in &mut self.endpoints {
            w.prune(now);
        }
    }
}

/// One org's budget.
pub struct RateBudget {
    state: Mutex<State>,
    changed: Notify,
}

/// The budget as inspection shows it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct BudgetView {
    pub limit_per_min: u32,
    pub account_limit_per_min: u32,
    pub used: u32,
    pub remaining: u32,
    pub paused_until: Option<DateTime<Utc>>,
    pub waiting: u32,
}

impl RateBudget {
    /// A budget using `share` (0–1] of the account's limit.
    pub fn new(share: f64) -> Self {
        Self {
            state: Mutex::new(State {
                share,
                total: UNKNOWN_TOTAL,
                account: Window::default(),
                paused_until_wall: None,
                endpoints: Default::default(),
                waiting: [0; 3],
                held: 0,
            }),
            changed: Notify::new(),
        }
    }

    /// Wait for a slot (of the account and, for a sub-limited call, of its endpoint), then
    /// count the call. Returns false, without a slot, when `open` is cleared while waiting
    /// (the org was disconnected).
    pub async fn acquire(
        &self,
        priority: Priority,
        endpoint: Option<Endpoint>,
        open: &AtomicBool,
    ) -> bool {
        let p = priority as usize;
        // Whether this caller is counted in `waiting` (contending for an account slot) or in
        // `held` (waiting for its endpoint).
        let mut contending = true;
        self.state.lock().waiting[p] += 1;
        loop {
            let wait = {
                let mut s = self.state.lock();
                let s = &mut *s;
                if !open.load(Ordering::SeqCst) {
                    if contending {
                        s.waiting[p] -= 1;
                    } else {
                        s.held -= 1;
                    }
                    return false;
                }
                let now = Instant::now();
                s.prune(now);
                let endpoint_wait =
                    endpoint.and_then(|e| s.endpoints[e as usize].wait(s.endpoint_limit(e), now));
                let should_contend = endpoint_wait.is_none();
                if should_contend != contending {
                    // Moving between "held by the endpoint" and "contending".
                    if should_contend {
                        s.held -= 1;
                        s.waiting[p] += 1;
                    } else {
                        s.waiting[p] -= 1;
                        s.held += 1;
                    }
                    contending = should_contend;
                }
                match endpoint_wait {
                    Some(wait) => Some(wait),
                    None => {
                        let higher_waiting = s.waiting[..p].iter().any(|n| *n > 0);
                        match s.account.wait(s.limit_for(priority), now) {
                            None if !higher_waiting => {
                                s.account.sent.push_back(now);
                                if let Some(e) = endpoint {
                                    s.endpoints[e as usize].sent.push_back(now);
                                }
                                s.waiting[p] -= 1;
                                return true;
                            }
                            // A more urgent caller is waiting for this slot.
                            None => Some(Duration::from_millis(20)),
                            Some(wait) => Some(wait),
                        }
                    }
                }
            };
            let wait = wait
                .unwrap_or(Duration::from_millis(20))
                .max(Duration::from_millis(5));
            let _ = tokio::time::timeout(wait, self.changed.notified()).await;
        }
    }

    /// Make every waiting caller look again (e.g. the org was disconnected).
    pub fn notify(&self) {
        self.changed.notify_waiters();
    }

    /// Learn from a response's headers.
    pub fn observe(&self, rate: Option<RateLimit>) {
        if let Some(rate) = rate.filter(|r| r.total > 0) {
            let mut s = self.state.lock();
            if s.total != rate.total {
                s.total = rate.total;
                drop(s);
                self.changed.notify_waiters();
            }
        }
    }

    /// Freshdesk answered 429 to a call to `endpoint` (None: not sub-limited): stop calling
    /// it (None: the whole org) for `retry_after`.
    pub fn pause(&self, endpoint: Option<Endpoint>, retry_after: Duration) {
        let mut s = self.state.lock();
        match endpoint {
            Some(e) => s.endpoints[e as usize].pause(retry_after),
            None => {
                s.account.pause(retry_after);
                let wall = Utc::now() + chrono::Duration::from_std(retry_after).unwrap_or_default();
                if s.paused_until_wall.is_none_or(|p| p < wall) {
                    s.paused_until_wall = Some(wall);
                }
            }
        }
    }

    /// The budget now.
    pub fn view(&self) -> BudgetView {
        let mut s = self.state.lock();
        s.prune(Instant::now());
        let used = s.account.sent.len() as u32;
        BudgetView {
            limit_per_min: s.limit(),
            account_limit_per_min: s.total,
            used,
            remaining: s.limit().saturating_sub(used),
            paused_until: s.paused_until_wall,
            waiting: s.waiting.iter().sum::<u32>() + s.held,
        }
    }
}

/// A `FreshdeskApi` whose every call first takes a slot of the org's budget.
pub struct BudgetedApi<'a> {
    inner: &'a dyn FreshdeskApi,
    budget: &'a RateBudget,
    priority: Priority,
    /// Closed when the org is disconnected: calls not yet sent are cancelled. A refused key
    /// pauses it.
    gate: &'a OrgGate,
}

impl<'a> BudgetedApi<'a> {
    /// Wrap `inner` for calls of `priority`, made only while `gate` is connected.
    pub fn new(
        inner: &'a dyn FreshdeskApi,
        budget: &'a RateBudget,
        priority: Priority,
        gate: &'a OrgGate,
    ) -> Self {
        Self {
            inner,
            budget,
            priority,
            gate,
        }
    }

    async fn call<T>(
        &self,
        endpoint: Option<Endpoint>,
        result: impl std::future::Future<Output = FreshdeskResult<T>>,
    ) -> FreshdeskResult<T> {
        let result = result.await;
        match &result {
            Ok(api) => {
                self.budget.observe(api.rate_limit);
                self.gate.call_succeeded();
            }
            // Freshdesk took the key: only the ticket is gone.
            Err(FreshdeskError::NotFound) => self.gate.call_succeeded(),
            Err(FreshdeskError::RateLimited { retry_after }) => {
                self.budget.pause(endpoint, *retry_after)
            }
            Err(e) if e.is_auth_failure() => self.gate.set_pause(
                PauseReason::AuthFailed,
                format!("{e}. Save the AI agent's current API key in the Freshdesk connection settings."),
            ),
            Err(_) => {}
        }
        result
    }
}

macro_rules! budgeted {
    ($self:ident, $call:expr) => {
        budgeted!($self, None, $call)
    };
    ($self:ident, $endpoint:expr, $call:expr) => {{
        if !$self
            .budget
            .acquire($self.priority, $endpoint, $self.gate.connected_flag())
            .await
        {
            return Err(FreshdeskError::Cancelled);
        }
        $self.call($endpoint, $call).await
    }};
}

/// A write: budgeted, and sent only if it would still end before this node's hold on the org
/// can lapse (the wait for a slot may have been long).
macro_rules! budgeted_write {
    ($self:ident, $endpoint:expr, $call:expr) => {{
        if !$self
            .budget
            .acquire($self.priority, $endpoint, $self.gate.connected_flag())
            .await
            || !$self.gate.may_send_write()
        {
            return Err(FreshdeskError::Cancelled);
        }
        $self.call($endpoint, $call).await
    }};
}

#[async_trait]
impl FreshdeskApi for BudgetedApi<'_> {
    async fn me(&self) -> FreshdeskResult<Agent> {
        budgeted!(self, self.inner.me())
    }
    async fn roles(&self) -> FreshdeskResult<Vec<Role>> {
        budgeted!(self, self.inner.roles())
    }
    async fn agents(&self, page: u32) -> FreshdeskResult<Page<Agent>> {
        budgeted!(self, self.inner.agents(page))
    }
    async fn agent(&self, id: AgentId) -> FreshdeskResult<Agent> {
        budgeted!(self, self.inner.agent(id))
    }
    async fn group(&self, id: GroupId) -> FreshdeskResult<Group> {
        budgeted!(self, self.inner.group(id))
    }
    async fn groups(&self, page: u32) -> FreshdeskResult<Page<Group>> {
        budgeted!(self, self.inner.groups(page))
    }
    async fn ticket_fields(&self) -> FreshdeskResult<Vec<TicketField>> {
        budgeted!(self, self.inner.ticket_fields())
    }
    async fn ticket(&self, id: TicketId) -> FreshdeskResult<Ticket> {
        budgeted!(self, self.inner.ticket(id))
    }
    async fn update_ticket(&self, id: TicketId, update: &TicketUpdate) -> FreshdeskResult<Ticket> {
        budgeted_write!(
            self,
            Some(Endpoint::TicketUpdate),
            self.inner.update_ticket(id, update)
        )
    }
    async fn tickets(&self, query: &TicketListQuery) -> FreshdeskResult<Page<Ticket>> {
        budgeted!(self, Some(Endpoint::TicketsList), self.inner.tickets(query))
    }
    async fn conversations(&self, id: TicketId, page: u32) -> FreshdeskResult<Page<Conversation>> {
        budgeted!(self, self.inner.conversations(id, page))
    }
    async fn reply(&self, id: TicketId, body_html: &str) -> FreshdeskResult<Conversation> {
        budgeted_write!(self, None, self.inner.reply(id, body_html))
    }
    async fn note(
        &self,
        id: TicketId,
        body_html: &str,
        private: bool,
    ) -> FreshdeskResult<Conversation> {
        budgeted_write!(self, None, self.inner.note(id, body_html, private))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    static OPEN: AtomicBool = AtomicBool::new(true);

    fn open_gate() -> crate::org::gate::OrgGate {
        crate::org::gate::OrgGate::new(
            crate::ids::OrgId::new(),
            true,
            Arc::default(),
            Arc::new(crate::ports::SoleNode),
        )
    }

    #[tokio::test]
    async fn a_disconnect_cancels_callers_waiting_for_a_slot() {
        let budget = Arc::new(RateBudget::new(1.0));
        budget.observe(Some(RateLimit {
            total: 1,
            remaining: 0,
            used_current: 1,
        }));
        let open = Arc::new(AtomicBool::new(true));
        assert!(budget.acquire(Priority::Live, None, &open).await);
        let waiter = {
            let (b, o) = (budget.clone(), open.clone());
            tokio::spawn(async move { b.acquire(Priority::Sync, None, &o).await })
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        open.store(false, Ordering::SeqCst);
        budget.notify();
        let got = tokio::time::timeout(Duration::from_millis(500), waiter)
            .await
            .expect("the waiter returns promptly")
            .unwrap();
        assert!(!got, "no slot for a disconnected org");
        assert_eq!(budget.view().waiting, 0);
    }

    #[tokio::test]
    async fn calls_beyond_the_share_of_the_learned_limit_wait() {
        let budget = RateBudget::new(0.5);
        budget.observe(Some(RateLimit {
            total: 10,
            remaining: 9,
            used_current: 1,
        }));
        for _ in 0..5 {
            tokio::time::timeout(
                Duration::from_millis(100),
                budget.acquire(Priority::Sync, None, &OPEN),
            )
            .await
            .expect("within the budget");
        }
        assert!(
            tokio::time::timeout(
                Duration::from_millis(200),
                budget.acquire(Priority::Sync, None, &OPEN)
            )
            .await
            .is_err(),
            "the sixth call in the minute waits"
        );
        let view = budget.view();
        assert_eq!(view.limit_per_min, 5);
        assert_eq!(view.used, 5);
        assert_eq!(view.remaining, 0);
    }

    #[tokio::test]
    async fn a_429_pauses_every_caller() {
        let budget = RateBudget::new(1.0);
        budget.pause(None, Duration::from_millis(300));
        assert!(budget.view().paused_until.is_some());
        let started = Instant::now();
        budget.acquire(Priority::Live, None, &OPEN).await;
        assert!(started.elapsed() >= Duration::from_millis(250));
    }

    #[tokio::test]
    async fn live_calls_go_before_background_ones() {
        let budget = Arc::new(RateBudget::new(1.0));
        budget.observe(Some(RateLimit {
            total: 1,
            remaining: 0,
            used_current: 1,
        }));
        budget.acquire(Priority::Background, None, &OPEN).await;
        // The window is full: both wait; when we free it, live must win.
        let order = Arc::new(Mutex::new(Vec::new()));
        let spawn = |p: Priority, name: &'static str| {
            let (b, o) = (budget.clone(), order.clone());
            tokio::spawn(async move {
                b.acquire(p, None, &OPEN).await;
                o.lock().push(name);
            })
        };
        let background = spawn(Priority::Background, "background");
        tokio::time::sleep(Duration::from_millis(30)).await;
        let live = spawn(Priority::Live, "live");
        tokio::time::sleep(Duration::from_millis(30)).await;
        budget.observe(Some(RateLimit {
            total: 2,
            remaining: 1,
            used_current: 1,
        }));
        live.await.unwrap();
        assert_eq!(*order.lock(), vec!["live"]);
        budget.observe(Some(RateLimit {
            total: 3,
            remaining: 1,
            used_current: 1,
        }));
        background.await.unwrap();
        assert_eq!(*order.lock(), vec!["live", "background"]);
    }

    /// Freshdesk answering lists from `list` and refusing every other call with 404.
    struct Stub {
        list_refused: bool,
    }

    #[async_trait]
    impl FreshdeskApi for Stub {
        async fn me(&self) -> FreshdeskResult<Agent> {
            Err(FreshdeskError::NotFound)
        }
        async fn roles(&self) -> FreshdeskResult<Vec<Role>> {
            Err(FreshdeskError::NotFound)
        }
        async fn agents(&self, _: u32) -> FreshdeskResult<Page<Agent>> {
            Err(FreshdeskError::NotFound)
        }
        async fn agent(&self, _: AgentId) -> FreshdeskResult<Agent> {
            Err(FreshdeskError::NotFound)
        }
        async fn group(&self, _: GroupId) -> FreshdeskResult<Group> {
            Err(FreshdeskError::NotFound)
        }
        async fn groups(&self, _: u32) -> FreshdeskResult<Page<Group>> {
            Err(FreshdeskError::NotFound)
        }
        async fn ticket_fields(&self) -> FreshdeskResult<Vec<TicketField>> {
            Err(FreshdeskError::NotFound)
        }
        async fn ticket(&self, _: TicketId) -> FreshdeskResult<Ticket> {
            Err(FreshdeskError::NotFound)
        }
        async fn update_ticket(&self, _: TicketId, _: &TicketUpdate) -> FreshdeskResult<Ticket> {
            Err(FreshdeskError::NotFound)
        }
        async fn tickets(&self, _: &TicketListQuery) -> FreshdeskResult<Page<Ticket>> {
            if self.list_refused {
                return Err(FreshdeskError::RateLimited {
                    retry_after: Duration::from_secs(60),
                });
            }
            Ok(Api {
                value: Page {
                    items: vec![],
                    has_next: false,
                },
                rate_limit: None,
            })
        }
        async fn conversations(&self, _: TicketId, _: u32) -> FreshdeskResult<Page<Conversation>> {
            Err(FreshdeskError::NotFound)
        }
        async fn reply(&self, _: TicketId, _: &str) -> FreshdeskResult<Conversation> {
            Err(FreshdeskError::NotFound)
        }
        async fn note(&self, _: TicketId, _: &str, _: bool) -> FreshdeskResult<Conversation> {
            Err(FreshdeskError::NotFound)
        }
    }

    fn list_query() -> TicketListQuery {
        TicketListQuery {
            updated_since: None,
            page: 1,
            per_page: 100,
        }
    }

    #[tokio::test]
    async fn a_429_on_a_list_call_pauses_list_calls_only() {
        let budget = RateBudget::new(1.0);
        let api = Stub { list_refused: true };
        let gate = open_gate();
        let backfill = BudgetedApi::new(&api, &budget, Priority::Background, &gate);
        assert!(matches!(
            backfill.tickets(&list_query()).await,
            Err(FreshdeskError::RateLimited { .. })
        ));
        let live = BudgetedApi::new(&api, &budget, Priority::Live, &gate);
        let reply = tokio::time::timeout(Duration::from_secs(1), live.ticket(TicketId(1))).await;
        assert!(
            reply.is_ok(),
            "a live call is not held by the list sub-limit"
        );
        assert!(
            tokio::time::timeout(Duration::from_millis(200), backfill.tickets(&list_query()))
                .await
                .is_err(),
            "the next list call waits for Retry-After"
        );
    }

    #[tokio::test]
    async fn list_calls_beyond_the_tickets_list_sub_limit_wait_while_other_calls_pass() {
        let budget = RateBudget::new(1.0);
        // A Growth account: 200 calls a minute, of which 20 may list tickets.
        budget.observe(Some(RateLimit {
            total: 200,
            remaining: 199,
            used_current: 1,
        }));
        let api = Stub {
            list_refused: false,
        };
        let gate = open_gate();
        let backfill = BudgetedApi::new(&api, &budget, Priority::Background, &gate);
        for _ in 0..20 {
            tokio::time::timeout(Duration::from_millis(200), backfill.tickets(&list_query()))
                .await
                .expect("within the sub-limit")
                .unwrap();
        }
        assert!(
            tokio::time::timeout(Duration::from_millis(200), backfill.tickets(&list_query()))
                .await
                .is_err(),
            "the 21st list call in the minute waits"
        );
        let live = BudgetedApi::new(&api, &budget, Priority::Live, &gate);
        let read = tokio::time::timeout(Duration::from_millis(200), live.ticket(TicketId(1))).await;
        assert!(read.is_ok(), "other calls still pass");
    }

    #[tokio::test]
    async fn background_calls_leave_a_quarter_of_the_window_to_live_work() {
        let budget = RateBudget::new(1.0);
        budget.observe(Some(RateLimit {
            total: 8,
            remaining: 7,
            used_current: 1,
        }));
        for _ in 0..6 {
            budget.acquire(Priority::Background, None, &OPEN).await;
        }
        assert!(
            tokio::time::timeout(
                Duration::from_millis(200),
                budget.acquire(Priority::Background, None, &OPEN)
            )
            .await
            .is_err(),
            "background work stops at 6 of 8"
        );
        for _ in 0..2 {
            tokio::time::timeout(
                Duration::from_millis(200),
                budget.acquire(Priority::Live, None, &OPEN),
            )
            .await
            .expect("live work finds the reserve");
        }
    }
}
