//! The setup self-test (contract §7 "Setup self-test"): one click checks what an admin would otherwise check by
//! hand after connecting Freshdesk. It runs in the background, one per org at a time, and
//! walks these steps in order, storing the report after each so that `GET …/self-test` and the
//! console's settings page show its progress:
//!
//! 1. the AI agent is still an admin (through the stored key, as connect's verify checks it);
//! 2. the handoff marker field exists (when the routing needs one);
//! 3. a labelled test ticket is created through the Freshdesk API (tagged
//!    [`SELF_TEST_TAG`], which the engine's gate ignores, so the AI never answers it);
//! 4. Rule 1's webhook (ticket created) arrives;
//! 5. a private note is added, 6. Rule 2's webhook (note added) arrives;
//! 7. the status is set to Pending, 8. Rule 2's webhook (status changed) arrives;
//! 9. the test ticket is closed (not deleted: an admin can still open it);
//! 10. the remaining rate budget, as the engine knows it.
//!
//! Once the org is disconnected (or deleted) a run writes nothing more to Freshdesk.
//!
//! Arrivals: on one node the webhook route calls [`SelfTests::observe`] with the rule's
//! `triggered_event` once the webhook is accepted. With several nodes (PostgreSQL) a webhook
//! may reach any node; every node's cluster listener hears a wake-up for every webhook
//! committed anywhere, so there the wake-ups are the arrivals and the route's own call is not
//! counted (it would be the same webhook twice). Which step an arrival satisfies: it must be
//! for the test ticket, come after the action the step waits on was sent, and — when the
//! trigger text is known — name that kind of event (docs/decisions.md, "Setup self-test").
//!
//! Called by the self-test routes (`http::selftest`), the console's settings page, the
//! webhook route and the cluster listener.

use crate::connect::{resolve_marker, verify_agent, ConnectError, ConnectService};
use crate::freshdesk::{FreshdeskClient, NewTicket};
use crate::store::{ConnectionRecord, Store, StoreError};
use chrono::{DateTime, Utc};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use ticketsync_actors::engine::Engine;
use ticketsync_actors::freshdesk::{
    FreshdeskApi, FreshdeskError, RateLimit, TicketStatus, TicketUpdate,
};
use ticketsync_actors::ticket::machine::SELF_TEST_TAG;
use ticketsync_actors::{OrgId, TicketId};
use tokio::sync::mpsc;

/// The test ticket's requester (a reserved domain: no mail can reach it).
pub const TEST_REQUESTER: &str = "selftest@ticketsync.invalid";
/// The test ticket's subject.
pub const TEST_SUBJECT: &str = "ticketsync self-test — safe to ignore";

/// One self-test run and its result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SelfTestReport {
    pub id: uuid::Uuid,
    pub state: SelfTestState,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    /// The test ticket, once Freshdesk created it.
    pub ticket_id: Option<TicketId>,
    /// Every step, in order; those not reached yet are `pending`.
    pub steps: Vec<SelfTestStep>,
}

/// Where a run stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SelfTestState {
    Running,
    /// Every step is ok.
    Passed,
    /// At least one step failed or was skipped.
    Failed,
}

/// One step of a run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SelfTestStep {
    /// Stable name of the step.
    pub key: StepKey,
    /// What the step checks, for people ("Rule 1 (ticket created)").
    pub name: String,
    pub outcome: StepOutcome,
    /// One sentence that starts with the name: what was found, and on failure what to check
    /// ("Rule 1 (ticket created): received after 1.4 s").
    pub detail: String,
}

/// The steps, in the order they run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum StepKey {
    AgentAdmin,
    MarkerField,
    CreateTicket,
    Rule1Created,
    AddNote,
    Rule2Note,
    SetPending,
    Rule2Status,
    CloseTicket,
    RateBudget,
}

impl StepKey {
    /// Every step, in order.
    pub const ALL: [Self; 10] = [
        Self::AgentAdmin,
        Self::MarkerField,
        Self::CreateTicket,
        Self::Rule1Created,
        Self::AddNote,
        Self::Rule2Note,
        Self::SetPending,
        Self::Rule2Status,
        Self::CloseTicket,
        Self::RateBudget,
    ];

    /// The step's name as reports show it.
    pub fn name(self) -> &'static str {
        match self {
            Self::AgentAdmin => "AI agent is an admin",
            Self::MarkerField => "Handoff marker field",
            Self::CreateTicket => "Create the test ticket",
            Self::Rule1Created => "Rule 1 (ticket created)",
            Self::AddNote => "Add a private note",
            Self::Rule2Note => "Rule 2 (note added)",
            Self::SetPending => "Set the status to Pending",
            Self::Rule2Status => "Rule 2 (status changed)",
            Self::CloseTicket => "Close the test ticket",
            Self::RateBudget => "Rate budget",
        }
    }
}

/// How a step ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum StepOutcome {
    /// Not reached yet.
    Pending,
    Ok,
    Failed,
    /// Not run, because an earlier step made it impossible (the detail says which).
    Skipped,
}

impl SelfTestReport {
    /// A new run: every step pending.
    fn begin(now: DateTime<Utc>) -> Self {
        Self {
            id: uuid::Uuid::new_v4(),
            state: SelfTestState::Running,
            started_at: now,
            finished_at: None,
            ticket_id: None,
            steps: StepKey::ALL
                .into_iter()
                .map(|key| SelfTestStep {
                    key,
                    name: key.name().to_string(),
                    outcome: StepOutcome::Pending,
                    detail: format!("{}: not run yet", key.name()),
                })
                .collect(),
        }
    }

    fn set(&mut self, key: StepKey, outcome: StepOutcome, finding: &str) {
        if let Some(step) = self.steps.iter_mut().find(|s| s.key == key) {
            step.outcome = outcome;
            step.detail = format!("{}: {finding}", key.name());
        }
    }

    /// End the run: passed when every step is ok.
    fn finish(&mut self, now: DateTime<Utc>) {
        self.state = if self.steps.iter().all(|s| s.outcome == StepOutcome::Ok) {
            SelfTestState::Passed
        } else {
            SelfTestState::Failed
        };
        self.finished_at = Some(now);
    }

    /// A run still marked running after it must have ended: the node running it stopped.
    fn interrupted(mut self, now: DateTime<Utc>) -> Self {
        for step in &mut self.steps {
            if step.outcome == StepOutcome::Pending {
                step.outcome = StepOutcome::Skipped;
                step.detail = format!(
                    "{}: not run — the self-test was interrupted (the server running it stopped); run it again",
                    step.key.name()
                );
            }
        }
        self.finish(now);
        self
    }
}

/// Why a self-test could not start.
#[derive(Debug, thiserror::Error)]
pub enum SelfTestError {
    #[error("A self-test is already running for this organization; wait for its result.")]
    Running,
    #[error("This organization's Freshdesk integration is disconnected; save the settings again to reconnect it before testing.")]
    Disconnected,
    #[error(transparent)]
    Connect(#[from] ConnectError),
    #[error("storage failed")]
    Store(#[from] StoreError),
}

/// Where the arrivals of webhooks are heard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArrivalSource {
    /// One node: the webhook route, with the rule's trigger text.
    Webhooks,
    /// Several nodes: the cluster listener's wake-ups, one per webhook committed on any node.
    ClusterWakes,
}

/// What told the self-test that a webhook for a ticket arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seen<'a> {
    /// The webhook route accepted one, with this `triggered_event` (empty when absent).
    Webhook(&'a str),
    /// The cluster listener heard that one was committed (trigger unknown).
    Wake,
}

/// What the self-test service needs.
pub struct SelfTestParts {
    pub store: Store,
    pub connect: ConnectService,
    pub engine: Engine,
    /// How long each rule's webhook is waited for (`[self_test] wait_secs`).
    pub wait: Duration,
    /// The Freshdesk request timeout (bounds how long a run can take).
    pub request_timeout: Duration,
    pub arrivals: ArrivalSource,
}

/// The self-test service: starts runs, keeps their reports, hears webhook arrivals.
/// Cheap to clone.
#[derive(Clone)]
pub struct SelfTests {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    connect: ConnectService,
    engine: Engine,
    wait: Duration,
    /// Longer than any run can take: a report still `running` after this was interrupted.
    max_run: Duration,
    arrivals: ArrivalSource,
    /// The runs of this node that listen for arrivals: org → (run id, its channel).
    listening: Mutex<HashMap<OrgId, (uuid::Uuid, mpsc::UnboundedSender<Arrival>)>>,
}

/// A webhook arrival for an org while its self-test runs.
#[derive(Debug)]
struct Arrival {
    ticket: TicketId,
    /// The rule's trigger text, when known.
    trigger: Option<String>,
    at: Instant,
}

/// Freshdesk calls one run makes at most.
const MAX_CALLS_PER_RUN: u32 = 7;
/// Rule waits per run.
const WAITS_PER_RUN: u32 = 3;

impl SelfTests {
    /// The service.
    pub fn new(parts: SelfTestParts) -> Self {
        let max_run = parts.wait * WAITS_PER_RUN
            + parts.request_timeout * MAX_CALLS_PER_RUN
            + Duration::from_secs(60);
        Self {
            inner: Arc::new(Inner {
                store: parts.store,
                connect: parts.connect,
                engine: parts.engine,
                wait: parts.wait,
                max_run,
                arrivals: parts.arrivals,
                listening: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// Start a run for `org` in the background; returns its report (state `running`).
    pub async fn start(&self, org: OrgId) -> Result<SelfTestReport, SelfTestError> {
        let inner = &self.inner;
        let (record, client) = inner.connect.stored_client(org).await?;
        if !record.connected {
            return Err(SelfTestError::Disconnected);
        }
        let now = Utc::now();
        let report = SelfTestReport::begin(now);
        let stale_before = now - chrono::Duration::from_std(inner.max_run).unwrap_or_default();
        if !inner
            .store
            .begin_self_test(org, &report, stale_before)
            .await?
        {
            return Err(SelfTestError::Running);
        }
        let (sender, arrivals) = mpsc::unbounded_channel();
        inner.listening.lock().insert(org, (report.id, sender));
        tracing::info!(org_id = %org, self_test_id = %report.id, "self-test started");
        let run = Run {
            inner: inner.clone(),
            org,
            record,
            client,
            report: report.clone(),
            arrivals,
            last_rate: None,
            created_at: Instant::now(),
        };
        actix_web::rt::spawn(run.execute());
        Ok(report)
    }

    /// The org's last report, if a self-test ever ran (a run whose node stopped reads as
    /// failed, its unreached steps skipped).
    pub async fn last(&self, org: OrgId) -> Result<Option<SelfTestReport>, StoreError> {
        let now = Utc::now();
        let max_run = chrono::Duration::from_std(self.inner.max_run).unwrap_or_default();
        Ok(self.inner.store.self_test(org).await?.map(|report| {
            if report.state == SelfTestState::Running && report.started_at < now - max_run {
                report.interrupted(now)
            } else {
                report
            }
        }))
    }

    /// A webhook for `ticket` of `org` arrived. A no-op unless a self-test of this org runs
    /// on this node and this node counts arrivals from where `seen` comes from.
    pub fn observe(&self, org: OrgId, ticket: TicketId, seen: Seen<'_>) {
        let trigger = match (seen, self.inner.arrivals) {
            (Seen::Webhook(trigger), ArrivalSource::Webhooks) => {
                Some(trigger.trim()).filter(|t| !t.is_empty())
            }
            (Seen::Wake, ArrivalSource::ClusterWakes) => None,
            _ => return,
        };
        if let Some((_, sender)) = self.inner.listening.lock().get(&org) {
            let _ = sender.send(Arrival {
                ticket,
                trigger: trigger.map(str::to_string),
                at: Instant::now(),
            });
        }
    }
}

/// The event a wait expects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    Created,
    NoteAdded,
    StatusChanged,
}

impl Expect {
    /// Whether an arrival with this trigger text can be this event. Unknown texts (custom
    /// templates) count as any update; no text (a wake-up from another node) counts for
    /// whatever is awaited.
    fn accepts(self, trigger: Option<&str>) -> bool {
        let Some(trigger) = trigger else {
            return true;
        };
        let created = trigger == "ticket_created" || trigger.contains("ticket_action:created");
        match self {
            Self::Created => created,
            Self::NoteAdded => !created && !trigger.contains("status"),
            Self::StatusChanged => !created && !trigger.contains("note"),
        }
    }

    /// What to check when the event did not arrive, as Freshdesk names it.
    fn advice(self) -> &'static str {
        match self {
            Self::Created => "check that Rule 1 is active under Admin → Automations → Ticket Creation, that its action is 'Trigger webhook' with this organization's webhook URL, and that its conditions match any ticket",
            Self::NoteAdded => "check that Rule 2 is active under Admin → Automations → Ticket Updates, that it is performed by 'Anyone', and that its events include 'Note is added'",
            Self::StatusChanged => "check that Rule 2 is active under Admin → Automations → Ticket Updates, that it is performed by 'Anyone', and that its events include 'Status is changed'",
        }
    }
}

/// The private note the self-test adds to its ticket.
const TEST_NOTE: &str =
    "<p>ticketsync self-test: this private note checks that Rule 2 fires when a note is added.</p>";

/// What the self-test does to its ticket to make Rule 2 fire.
#[derive(Debug, Clone, Copy)]
enum Action {
    AddNote,
    SetPending,
}

impl Action {
    fn key(self) -> StepKey {
        match self {
            Self::AddNote => StepKey::AddNote,
            Self::SetPending => StepKey::SetPending,
        }
    }

    /// The step that waits for the rule this action fires, and what it waits for.
    fn awaited(self) -> (StepKey, Expect) {
        match self {
            Self::AddNote => (StepKey::Rule2Note, Expect::NoteAdded),
            Self::SetPending => (StepKey::Rule2Status, Expect::StatusChanged),
        }
    }

    fn done(self) -> &'static str {
        match self {
            Self::AddNote => "private note added",
            Self::SetPending => "status set to Pending",
        }
    }

    fn refused(self) -> &'static str {
        match self {
            Self::AddNote => "the note",
            Self::SetPending => "the status change",
        }
    }
}

/// One run, on its own task.
struct Run {
    inner: Arc<Inner>,
    org: OrgId,
    record: ConnectionRecord,
    client: FreshdeskClient,
    report: SelfTestReport,
    arrivals: mpsc::UnboundedReceiver<Arrival>,
    /// The rate-limit headers of the run's last Freshdesk answer.
    last_rate: Option<RateLimit>,
    /// When the test ticket's creation was sent (Rule 1's webhook cannot come earlier).
    created_at: Instant,
}

impl Run {
    async fn execute(mut self) {
        self.steps().await;
        self.report.finish(Utc::now());
        self.save().await;
        let mut listening = self.inner.listening.lock();
        if listening
            .get(&self.org)
            .is_some_and(|(id, _)| *id == self.report.id)
        {
            listening.remove(&self.org);
        }
        tracing::info!(org_id = %self.org, self_test_id = %self.report.id, state = ?self.report.state, "self-test finished");
    }

    async fn steps(&mut self) {
        // Why the steps that need Freshdesk cannot run, once one of them made that clear.
        let mut blocked = self.check_agent().await.err();
        let ticket = match &blocked {
            None => {
                self.check_marker().await;
                match self.disconnected().await {
                    None => self.create_ticket().await,
                    Some(reason) => {
                        self.skip(StepKey::CreateTicket, &reason);
                        blocked = Some(reason);
                        None
                    }
                }
            }
            Some(reason) => {
                self.skip(StepKey::MarkerField, reason);
                self.skip(StepKey::CreateTicket, reason);
                None
            }
        };
        match ticket {
            Some(ticket) => self.exercise_rules(ticket).await,
            None => {
                let reason = blocked.unwrap_or_else(|| "no test ticket was created".into());
                for key in [
                    StepKey::Rule1Created,
                    StepKey::AddNote,
                    StepKey::Rule2Note,
                    StepKey::SetPending,
                    StepKey::Rule2Status,
                    StepKey::CloseTicket,
                ] {
                    self.skip(key, &reason);
                }
            }
        }
        self.report_budget().await;
    }

    /// Steps 4–9 on the created test ticket; it is closed whatever happened before.
    async fn exercise_rules(&mut self, ticket: TicketId) {
        self.wait_for(
            StepKey::Rule1Created,
            ticket,
            Expect::Created,
            self.created_at,
        )
        .await;
        let mut blocked: Option<String> = None;
        for action in [Action::AddNote, Action::SetPending] {
            match &blocked {
                Some(reason) => {
                    self.skip(action.key(), reason);
                    self.skip(action.awaited().0, reason);
                }
                None => blocked = self.act_then_wait(action, ticket).await,
            }
        }
        if let Some(reason) = self.disconnected().await {
            let reason = format!("{reason}; close ticket #{ticket} by hand");
            return self.skip(StepKey::CloseTicket, &reason);
        }
        let closed = self.set_status(ticket, TicketStatus::Closed).await;
        let (outcome, finding) = match closed {
            Ok(()) => (
                StepOutcome::Ok,
                format!("ticket #{ticket} closed (it stays in Freshdesk for you to look at)"),
            ),
            Err(e) => (
                StepOutcome::Failed,
                format!("Freshdesk refused to close ticket #{ticket}: {e} — close it by hand"),
            ),
        };
        self.step(StepKey::CloseTicket, outcome, &finding).await;
    }

    /// Do `action` on the test ticket, then wait for the rule it fires. Returns why the next
    /// actions cannot run when Freshdesk refused this one.
    async fn act_then_wait(&mut self, action: Action, ticket: TicketId) -> Option<String> {
        let (awaited, expect) = action.awaited();
        if let Some(reason) = self.disconnected().await {
            self.skip(action.key(), &reason);
            self.skip(awaited, &reason);
            return Some(reason);
        }
        let sent = Instant::now();
        let done = match action {
            Action::AddNote => {
                let noted = self.client.note(ticket, TEST_NOTE, true).await;
                self.record_call(noted).map(|_| ())
            }
            Action::SetPending => self.set_status(ticket, TicketStatus::Pending).await,
        };
        match done {
            Ok(()) => {
                let finding = format!("{} on ticket #{ticket}", action.done());
                self.step(action.key(), StepOutcome::Ok, &finding).await;
                self.wait_for(awaited, ticket, expect, sent).await;
                None
            }
            Err(e) => {
                let reason = format!("Freshdesk refused {}: {e}", action.refused());
                self.step(action.key(), StepOutcome::Failed, &reason).await;
                self.skip(awaited, &reason);
                Some(reason)
            }
        }
    }

    /// Why the run must write nothing more to Freshdesk, if it must not: the org was
    /// disconnected (or deleted) since the run started, and a disconnected org's Freshdesk
    /// gets no writes (contract §2.6).
    async fn disconnected(&self) -> Option<String> {
        match self.inner.store.connection(self.org).await {
            Ok(Some(c)) if c.connected => None,
            Ok(_) => Some(
                "the organization was disconnected during the self-test, so ticketsync writes nothing more to its Freshdesk".into(),
            ),
            Err(e) => {
                tracing::error!(org_id = %self.org, error = %crate::http::error::error_chain(&e), "self-test cannot read the connection");
                Some("ticketsync could not read the organization's connection (storage failed)".into())
            }
        }
    }

    /// Step 1. Err(reason) when nothing further can work (the key is refused, Freshdesk is
    /// unreachable); a key that works but is no longer an admin's fails the step only.
    async fn check_agent(&mut self) -> Result<(), String> {
        let host = self.record.settings.domain.clone();
        match verify_agent(&self.client, &host).await {
            Ok(agent) => {
                let email = agent.email.as_deref().unwrap_or("no email");
                self.step(
                    StepKey::AgentAdmin,
                    StepOutcome::Ok,
                    &format!("{} <{email}> holds an administrator role", agent.name),
                )
                .await;
                Ok(())
            }
            Err(ConnectError::NotAdmin) => {
                self.step(
                    StepKey::AgentAdmin,
                    StepOutcome::Failed,
                    &ConnectError::NotAdmin.to_string(),
                )
                .await;
                Ok(())
            }
            Err(e) => {
                let reason = e.to_string();
                self.step(StepKey::AgentAdmin, StepOutcome::Failed, &reason)
                    .await;
                Err(reason)
            }
        }
    }

    /// Step 2: the stored marker field still exists as a checkbox, when the routing uses one.
    async fn check_marker(&mut self) {
        let handoff = &self.record.settings.handoff;
        let Some(marker) = handoff.marker_field.clone() else {
            let finding = format!(
                "not needed — routing '{}' sets no marker",
                handoff.routing.as_str()
            );
            return self
                .step(StepKey::MarkerField, StepOutcome::Ok, &finding)
                .await;
        };
        let fields = self.client.ticket_fields().await;
        let (outcome, finding) = match self.record_call(fields) {
            Ok(fields) => match resolve_marker(&marker, &fields) {
                Ok(found) if found == marker => (
                    StepOutcome::Ok,
                    format!("{marker} exists as a checkbox ticket field"),
                ),
                Ok(_) | Err(_) => (
                    StepOutcome::Failed,
                    format!("Freshdesk has no checkbox ticket field named '{marker}' any more — create it under Admin → Ticket Fields, then save the handoff settings again"),
                ),
            },
            Err(e) => (
                StepOutcome::Failed,
                format!("the ticket fields could not be read: {e}"),
            ),
        };
        self.step(StepKey::MarkerField, outcome, &finding).await;
    }

    /// Step 3. The ticket's id, or None when Freshdesk refused.
    async fn create_ticket(&mut self) -> Option<TicketId> {
        let new = NewTicket {
            email: TEST_REQUESTER.into(),
            subject: TEST_SUBJECT.into(),
            description: "<p>This ticket was created by ticketsync's setup self-test to check that Freshdesk's automation rules reach ticketsync. ticketsync adds a private note, sets it to Pending and closes it; the AI never answers it. You can ignore it.</p>".into(),
            status: TicketStatus::Open.id(),
            priority: 1,
            tags: vec![SELF_TEST_TAG.into()],
        };
        self.created_at = Instant::now();
        let created = self.client.create_ticket(&new).await;
        match self.record_call(created) {
            Ok(ticket) => {
                self.report.ticket_id = Some(ticket.id);
                let finding = format!("ticket #{} created, tagged {SELF_TEST_TAG}", ticket.id);
                self.step(StepKey::CreateTicket, StepOutcome::Ok, &finding)
                    .await;
                Some(ticket.id)
            }
            Err(e) => {
                let finding = format!("Freshdesk refused to create the test ticket: {e}");
                self.step(StepKey::CreateTicket, StepOutcome::Failed, &finding)
                    .await;
                None
            }
        }
    }

    async fn set_status(
        &mut self,
        ticket: TicketId,
        status: TicketStatus,
    ) -> Result<(), FreshdeskError> {
        let update = TicketUpdate {
            status: Some(status),
            ..TicketUpdate::default()
        };
        let updated = self.client.update_ticket(ticket, &update).await;
        self.record_call(updated).map(|_| ())
    }

    /// Wait for the rule's webhook about `ticket` that `since` (the moment the action was
    /// sent) made Freshdesk fire.
    async fn wait_for(&mut self, key: StepKey, ticket: TicketId, expect: Expect, since: Instant) {
        let wait = self.inner.wait;
        let deadline = tokio::time::Instant::from_std(since + wait);
        let arrived = loop {
            match tokio::time::timeout_at(deadline, self.arrivals.recv()).await {
                Ok(Some(a))
                    if a.ticket == ticket
                        && a.at >= since
                        && expect.accepts(a.trigger.as_deref()) =>
                {
                    break Some(a)
                }
                Ok(Some(_)) => continue,
                Ok(None) | Err(_) => break None,
            }
        };
        match arrived {
            Some(arrival) => {
                let after = arrival.at.saturating_duration_since(since).as_secs_f64();
                let trigger = arrival
                    .trigger
                    .map(|t| format!(" ({t})"))
                    .unwrap_or_default();
                self.step(
                    key,
                    StepOutcome::Ok,
                    &format!("received after {after:.1} s{trigger}"),
                )
                .await
            }
            None => {
                let finding = format!("not received in {} s — {}", wait.as_secs(), expect.advice());
                self.step(key, StepOutcome::Failed, &finding).await
            }
        }
    }

    /// Step 10: the budget as the engine knows it, and what Freshdesk said last.
    async fn report_budget(&mut self) {
        let budget = self.inner.engine.budget(self.org);
        let mut finding = format!(
            "{} of ticketsync's {} calls per minute left (the account allows {})",
            budget.remaining, budget.limit_per_min, budget.account_limit_per_min
        );
        if let Some(rate) = self.last_rate {
            finding.push_str(&format!(
                "; Freshdesk reported {} of the account's {} left after the self-test's last call",
                rate.remaining, rate.total
            ));
        }
        let outcome = match budget.paused_until {
            Some(until) => {
                finding.push_str(&format!(
                    "; Freshdesk asked to wait until {} (rate limit reached)",
                    until.to_rfc3339()
                ));
                StepOutcome::Failed
            }
            None => StepOutcome::Ok,
        };
        self.step(StepKey::RateBudget, outcome, &finding).await;
    }

    /// Keep the rate-limit headers of a call's answer; pass on its value or error.
    fn record_call<T>(
        &mut self,
        result: ticketsync_actors::freshdesk::FreshdeskResult<T>,
    ) -> Result<T, FreshdeskError> {
        result.map(|api| {
            if api.rate_limit.is_some() {
                self.last_rate = api.rate_limit;
            }
            api.value
        })
    }

    fn skip(&mut self, key: StepKey, reason: &str) {
        self.report
            .set(key, StepOutcome::Skipped, &format!("skipped — {reason}"));
    }

    /// Record a step's outcome and store the report, so readers see the progress.
    async fn step(&mut self, key: StepKey, outcome: StepOutcome, finding: &str) {
        self.report.set(key, outcome, finding);
        self.save().await;
    }

    async fn save(&self) {
        if let Err(e) = self.inner.store.put_self_test(self.org, &self.report).await {
            tracing::error!(org_id = %self.org, error = %crate::http::error::error_chain(&e), "cannot store the self-test report");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_known_trigger_text_satisfies_only_its_kind_of_event() {
        assert!(Expect::Created.accepts(Some("ticket_created")));
        assert!(!Expect::NoteAdded.accepts(Some("ticket_created")));
        assert!(!Expect::StatusChanged.accepts(Some("{ticket_action:created}")));
        assert!(Expect::NoteAdded.accepts(Some("{note_type:private}")));
        assert!(!Expect::StatusChanged.accepts(Some("{note_type:private}")));
        assert!(Expect::StatusChanged.accepts(Some("{status:{from:2,to:3}}")));
        assert!(!Expect::NoteAdded.accepts(Some("{status:{from:2,to:3}}")));
        assert!(!Expect::Created.accepts(Some("{priority:{from:1,to:3}}")));
        assert!(Expect::NoteAdded.accepts(Some("{priority:{from:1,to:3}}")));
    }

    #[test]
    fn an_unknown_trigger_satisfies_whatever_is_awaited() {
        for expect in [Expect::Created, Expect::NoteAdded, Expect::StatusChanged] {
            assert!(expect.accepts(None));
        }
    }

    #[test]
    fn a_run_passes_only_when_every_step_is_ok() {
        let mut report = SelfTestReport::begin(Utc::now());
        for key in StepKey::ALL {
            report.set(key, StepOutcome::Ok, "fine");
        }
        report.finish(Utc::now());
        assert_eq!(report.state, SelfTestState::Passed);
        report.set(StepKey::Rule2Note, StepOutcome::Failed, "not received");
        report.finish(Utc::now());
        assert_eq!(report.state, SelfTestState::Failed);
        assert_eq!(report.steps[5].detail, "Rule 2 (note added): not received");
    }

    #[test]
    fn an_interrupted_run_fails_with_its_unreached_steps_skipped() {
        let mut report = SelfTestReport::begin(Utc::now());
        report.set(StepKey::AgentAdmin, StepOutcome::Ok, "fine");
        let report = report.interrupted(Utc::now());
        assert_eq!(report.state, SelfTestState::Failed);
        assert_eq!(report.steps[0].outcome, StepOutcome::Ok);
        assert!(report.steps[1..]
            .iter()
            .all(|s| s.outcome == StepOutcome::Skipped && s.detail.contains("interrupted")));
    }
}
