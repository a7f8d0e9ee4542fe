//! `OrgJobs`: one per connected organization, on the org arbiter. It owns the org's two
//! background jobs, both of which only *queue* work for ticket actors (durable inbox events)
//! and never write to Freshdesk:
//!
//! - the **backfill** (contract §6): once, on first connect, list open and pending tickets updated
//!   within `backfill_days` and queue an `Import` for each, one page at a time (the next page
//!   is listed once the previous page's imports are done); progress is stored after every
//!   page so a restart resumes where it stopped; Freshdesk's 300-page cap is passed by
//!   re-listing from the last `updated_at` seen;
//! - the **sweep** (missed-webhook recovery): every `reconcile_interval`, list tickets updated
//!   since the last sweep and queue a `Sweep` re-read for tracked tickets Freshdesk changed
//!   after our last read, and for new tickets created after the connection.
//!
//! Both run at `Background` priority in the org's rate budget, behind live traffic, and stop
//! as soon as the org is disconnected, or its work no longer runs on this node (another node
//! owns it now: its jobs resume there from the stored progress). `StopJobs` stops the actor.
//!
//! The backfill never gives up: any failure (a 5xx, a timeout, but also a 401/403 after the
//! agent lost a permission, or a store error) is shown as `last_error` and retried with a
//! backoff capped at `MAX_BACKOFF`, from its stored cursor. No refusal is final: a
//! permission or key can be restored, and the listing call itself is one Freshdesk always
//! serves to an admin agent. A re-save of the connection (`Ensure`) retries at once.

use crate::engine::deps::{EngineConfig, EngineDeps};
use crate::engine::inbox::Inbox;
use crate::freshdesk::{FreshdeskApi, FreshdeskError, Ticket, TicketListQuery};
use crate::ids::{OrgId, TicketId};
use crate::org::actor::{GetSnapshot, OrgSnapshot};
use crate::org::budget::Priority;
use crate::ports::{EventKind, StoreFailure};
use crate::ticket::machine;
use crate::ticket::state::{GateOutcome, TicketRecord};
use actix::prelude::*;
use chrono::{DateTime, SubsecRound, Utc};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;

/// Tickets per listed page (Freshdesk's maximum).
const PER_PAGE: u32 = 100;
/// Freshdesk refuses pages past this one.
const MAX_PAGE: u32 = 300;
/// A sweep re-lists this much before its last run, for clock skew and same-second updates.
const SWEEP_OVERLAP: chrono::Duration = chrono::Duration::seconds(60);
/// How often the backfill looks whether its previous page's imports are done.
const IMPORTS_POLL: Duration = Duration::from_millis(100);
/// Longest wait between two attempts of a failing backfill.
const MAX_BACKOFF: Duration = Duration::from_secs(300);

/// Where the backfill stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BackfillState {
    Pending,
    Running,
    Done,
    /// Interrupted by a disconnect; resumed on reconnect. (Older versions gave up for good
    /// on a refused listing and stored `failed`: such a backfill is resumed too.)
    #[serde(alias = "failed")]
    Stopped,
}

/// Backfill progress, stored after every page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackfillProgress {
    pub state: BackfillState,
    /// Oldest `updated_at` imported (now − backfill_days at the start).
    pub window_start: DateTime<Utc>,
    /// The listing position: `updated_since` and page.
    pub cursor: ListCursor,
    pub pages_fetched: u32,
    pub tickets_seen: u64,
    pub tickets_queued: u64,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
}

/// Sweep state, stored after every run.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SweepProgress {
    pub last_run_at: Option<DateTime<Utc>>,
    /// When the last completed run started (the next one lists from here).
    pub last_started_at: Option<DateTime<Utc>>,
    pub runs: u64,
    pub tickets_requeued: u64,
    pub last_error: Option<String>,
}

/// A position in `GET /tickets?updated_since=…&order_by=updated_at&order_type=asc`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListCursor {
    pub updated_since: DateTime<Utc>,
    pub page: u32,
}

impl ListCursor {
    /// Fetch the page at the cursor and advance. Returns None when the listing is exhausted.
    /// Past Freshdesk's page cap (or when it refuses a page number) the listing continues
    /// from the last `updated_at` seen, page 1; tickets seen twice are harmless (imports and
    /// sweeps are idempotent).
    async fn next(
        &mut self,
        api: &dyn FreshdeskApi,
    ) -> Result<Option<Vec<Ticket>>, FreshdeskError> {
        let query = TicketListQuery {
            updated_since: Some(self.updated_since),
            page: self.page,
            per_page: PER_PAGE,
        };
        let page = match api.tickets(&query).await {
            Ok(p) => p.value,
            Err(e) if e.is_invalid_value_on("page") && self.page > 1 => {
                // Freshdesk's page cap is lower than we assumed: hop from where we are.
                self.hop(None);
                return Ok(Some(Vec::new()));
            }
            Err(e) => return Err(e),
        };
        let full = page.items.len() as u32 == PER_PAGE;
        let last_seen = page.items.last().map(|t| t.updated_at);
        if page.has_next && self.page < MAX_PAGE {
            self.page += 1;
        } else if full {
            self.hop(last_seen);
        } else if page.items.is_empty() {
            self.page = 0;
            return Ok(None);
        } else {
            self.page = 0;
        }
        Ok(Some(page.items))
    }

    /// Continue from `last_seen` (page 1). The cursor always moves forward, so a second full
    /// of same-second updates cannot loop forever.
    fn hop(&mut self, last_seen: Option<DateTime<Utc>>) {
        let next = last_seen.unwrap_or(self.updated_since).trunc_subsecs(0);
        self.updated_since = if next > self.updated_since {
            next
        } else {
            self.updated_since + chrono::Duration::seconds(1)
        };
        self.page = 1;
    }

    /// Whether `next` already returned the last page.
    pub fn exhausted(&self) -> bool {
        self.page == 0
    }
}

/// Start the org's jobs (no-op if they run): the service calls this on save and on startup.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Ensure;

/// The org's work no longer runs here: stop (the running job ends at its next step).
#[derive(Message)]
#[rtype(result = "()")]
pub struct StopJobs;

/// What the jobs use of the engine: the shared dependencies, and the inbox to queue work.
/// (Not the `Engine` handle: the handle holds the jobs' addresses.)
#[derive(Clone)]
struct JobDeps {
    deps: Arc<EngineDeps>,
    inbox: Inbox,
}

impl JobDeps {
    async fn backfill(&self, org: OrgId) -> Option<BackfillProgress> {
        backfill_or_none(&self.deps, org).await
    }

    async fn save_backfill(&self, org: OrgId, progress: &BackfillProgress) {
        save_backfill(&self.deps, org, progress).await;
    }

    async fn sweep(&self, org: OrgId) -> SweepProgress {
        sweep_or_default(&self.deps, org).await
    }

    async fn save_sweep(&self, org: OrgId, progress: &SweepProgress) {
        save_sweep(&self.deps, org, progress).await;
    }

    /// Whether the ticket still has an import queued.
    async fn import_queued(&self, org: OrgId, ticket: TicketId) -> Result<bool, StoreFailure> {
        Ok(self
            .deps
            .store
            .queued_events(org, ticket)
            .await?
            .iter()
            .any(|e| e.kind == EventKind::Import))
    }

    async fn ticket_record(
        &self,
        org: OrgId,
        ticket: TicketId,
    ) -> Result<Option<TicketRecord>, StoreFailure> {
        self.deps.store.load_ticket(org, ticket).await
    }

    fn config(&self) -> &EngineConfig {
        &self.deps.config
    }

    fn now(&self) -> DateTime<Utc> {
        self.deps.clock.now()
    }
}

/// The org's backfill progress, if it ever had one.
pub(crate) async fn load_backfill(
    deps: &EngineDeps,
    org: OrgId,
) -> Result<Option<BackfillProgress>, StoreFailure> {
    load_job(deps, org, "backfill").await
}

/// A job's stored state. A store failure is returned; a state this version cannot read is
/// logged and taken as none (the job starts afresh, as it always did).
async fn load_job<T: serde::de::DeserializeOwned>(
    deps: &EngineDeps,
    org: OrgId,
    job: &str,
) -> Result<Option<T>, StoreFailure> {
    let Some(value) = deps.store.load_job(org, job).await? else {
        return Ok(None);
    };
    match serde_json::from_value(value) {
        Ok(state) => Ok(Some(state)),
        Err(e) => {
            tracing::error!(org_id = %org, job, error = %e, "stored job state unreadable; starting afresh");
            Ok(None)
        }
    }
}

/// The backfill's progress; a store failure is logged and taken as none (the backfill does
/// not run now: the next `Ensure` or restart looks again; the API shows none).
pub(crate) async fn backfill_or_none(deps: &EngineDeps, org: OrgId) -> Option<BackfillProgress> {
    load_backfill(deps, org).await.unwrap_or_else(|e| {
        tracing::error!(org_id = %org, error = %e, "cannot read the backfill's progress");
        None
    })
}

/// Store backfill progress (a failure is logged; the job redoes the page).
pub(crate) async fn save_backfill(deps: &EngineDeps, org: OrgId, progress: &BackfillProgress) {
    save_job(deps, org, "backfill", progress).await;
}

/// The org's sweep state (the default before its first run).
pub(crate) async fn load_sweep(
    deps: &EngineDeps,
    org: OrgId,
) -> Result<SweepProgress, StoreFailure> {
    Ok(load_job(deps, org, "sweep").await?.unwrap_or_default())
}

/// The sweep's state; a store failure is logged and taken as the default (the sweep then
/// runs from the connection, and inspection shows the default, as they always did).
pub(crate) async fn sweep_or_default(deps: &EngineDeps, org: OrgId) -> SweepProgress {
    load_sweep(deps, org).await.unwrap_or_else(|e| {
        tracing::error!(org_id = %org, error = %e, "cannot read the sweep's state");
        SweepProgress::default()
    })
}

/// Store sweep state.
pub(crate) async fn save_sweep(deps: &EngineDeps, org: OrgId, progress: &SweepProgress) {
    save_job(deps, org, "sweep", progress).await;
}

async fn save_job(
    deps: &EngineDeps,
    org: OrgId,
    job: &str,
    state: &(impl serde::Serialize + Sync),
) {
    let value = serde_json::to_value(state).expect("job state serialises");
    if let Err(e) = deps.store.save_job(org, job, &value).await {
        tracing::error!(org_id = %org, job, error = %e, "cannot store job progress");
    }
}

/// The org's background jobs.
pub struct OrgJobs {
    org_id: OrgId,
    jobs: JobDeps,
    backfill_running: bool,
    sweep_running: bool,
    /// Ends a failing backfill's backoff early (the connection was saved again).
    retry_now: Arc<Notify>,
}

impl OrgJobs {
    /// Jobs of one org.
    pub fn new(org_id: OrgId, deps: Arc<EngineDeps>, inbox: Inbox) -> Self {
        Self {
            org_id,
            jobs: JobDeps { deps, inbox },
            backfill_running: false,
            sweep_running: false,
            retry_now: Arc::new(Notify::new()),
        }
    }

    fn start_backfill(&mut self, ctx: &mut Context<Self>) {
        if !self.jobs.deps.orgs.gate(self.org_id).runs_here() {
            return;
        }
        if self.backfill_running {
            self.retry_now.notify_one();
            return;
        }
        self.backfill_running = true;
        let run = run_backfill(self.jobs.clone(), self.org_id, self.retry_now.clone());
        ctx.spawn(
            run.into_actor(self)
                .map(|_, act, _| act.backfill_running = false),
        );
    }

    fn start_sweep(&mut self, ctx: &mut Context<Self>) {
        if self.sweep_running || !self.jobs.deps.orgs.gate(self.org_id).runs_here() {
            return;
        }
        self.sweep_running = true;
        let run = run_sweep(self.jobs.clone(), self.org_id);
        ctx.spawn(
            run.into_actor(self)
                .map(|_, act, _| act.sweep_running = false),
        );
    }
}

impl Actor for OrgJobs {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        let every = self.jobs.config().reconcile_interval;
        ctx.run_interval(every, |act, ctx| act.start_sweep(ctx));
        self.start_backfill(ctx);
    }
}

impl Handler<Ensure> for OrgJobs {
    type Result = ();

    fn handle(&mut self, _: Ensure, ctx: &mut Self::Context) {
        self.start_backfill(ctx);
    }
}

impl Handler<StopJobs> for OrgJobs {
    type Result = ();

    fn handle(&mut self, _: StopJobs, ctx: &mut Self::Context) {
        ctx.stop();
    }
}

/// The snapshot, if the org is connected now.
async fn connected_snapshot(jobs: &JobDeps, org: OrgId) -> Option<Arc<OrgSnapshot>> {
    jobs.deps
        .orgs
        .get(org)
        .send(GetSnapshot)
        .await
        .ok()?
        .ok()?
        .filter(|s| s.is_connected())
}

fn backoff(failures: u32) -> Duration {
    Duration::from_millis(500u64 << failures.min(10)).min(MAX_BACKOFF)
}

async fn run_backfill(jobs: JobDeps, org: OrgId, retry_now: Arc<Notify>) {
    let Some(mut progress) = jobs.backfill(org).await else {
        return;
    };
    if progress.state == BackfillState::Done {
        return;
    }
    let mut failures = 0;
    // The previous page's tickets whose import may still be queued.
    let mut importing = Vec::new();
    loop {
        imports_done(&jobs, org, &mut importing).await;
        if !jobs.deps.orgs.gate(org).runs_here() {
            // Another node owns the org now: it resumes from the stored progress.
            return;
        }
        let Some(snapshot) = connected_snapshot(&jobs, org).await else {
            if progress.state != BackfillState::Done {
                progress.state = BackfillState::Stopped;
                jobs.save_backfill(org, &progress).await;
            }
            return;
        };
        if progress.state != BackfillState::Running {
            progress.state = BackfillState::Running;
            progress.started_at.get_or_insert(jobs.now());
            jobs.save_backfill(org, &progress).await;
            tracing::info!(org_id = %org, "backfill started");
        }
        let api = snapshot.api(Priority::Background);
        match progress.cursor.next(&api).await {
            Ok(Some(tickets)) => {
                failures = 0;
                progress.pages_fetched += 1;
                progress.tickets_seen += tickets.len() as u64;
                let connected_at = snapshot.connection.first_connected_at;
                let wanted: Vec<_> = tickets
                    .iter()
                    .filter(|t| {
                        machine::backfill_wants(
                            t.status,
                            t.created_at,
                            t.updated_at,
                            progress.window_start,
                            connected_at,
                        )
                    })
                    .map(|t| t.id)
                    .collect();
                if let Err(e) = jobs.inbox.enqueue(org, &wanted, EventKind::Import).await {
                    failures += 1;
                    progress.last_error = Some(e.to_string());
                    jobs.save_backfill(org, &progress).await;
                    wait_to_retry(failures, &retry_now).await;
                    continue;
                }
                progress.tickets_queued += wanted.len() as u64;
                progress.last_error = None;
                importing = wanted;
                if progress.cursor.exhausted() {
                    progress.state = BackfillState::Done;
                    progress.finished_at = Some(jobs.now());
                    tracing::info!(org_id = %org, pages = progress.pages_fetched, tickets = progress.tickets_queued, "backfill done");
                }
                jobs.save_backfill(org, &progress).await;
                if progress.state == BackfillState::Done {
                    return;
                }
            }
            Ok(None) => {
                progress.state = BackfillState::Done;
                progress.finished_at = Some(jobs.now());
                jobs.save_backfill(org, &progress).await;
                return;
            }
            Err(e) => {
                failures += 1;
                if e.is_transient() {
                    tracing::warn!(org_id = %org, error = %e, failures, "backfill listing failed; retrying");
                } else {
                    tracing::error!(org_id = %org, error = %e, failures, "backfill listing refused; retrying");
                }
                progress.last_error = Some(e.to_string());
                jobs.save_backfill(org, &progress).await;
                wait_to_retry(failures, &retry_now).await;
            }
        }
    }
}

/// Wait until the imports of the previous page are done: one page of imports is queued at a
/// time, so the backfill goes at the pace its imports get Freshdesk calls (behind live work
/// in the budget) and never floods the shards and the inbox with thousands of imports.
async fn imports_done(jobs: &JobDeps, org: OrgId, importing: &mut Vec<TicketId>) {
    loop {
        // A store error counts as done: the pacing is only a courtesy.
        let mut still = Vec::with_capacity(importing.len());
        for t in importing.iter() {
            if jobs.import_queued(org, *t).await.unwrap_or(false) {
                still.push(*t);
            }
        }
        *importing = still;
        if importing.is_empty() {
            return;
        }
        tokio::time::sleep(IMPORTS_POLL).await;
    }
}

/// Back off after the backfill's `failures`-th failure in a row, or until told to retry now.
async fn wait_to_retry(failures: u32, retry_now: &Notify) {
    let _ = tokio::time::timeout(backoff(failures), retry_now.notified()).await;
}

async fn run_sweep(jobs: JobDeps, org: OrgId) {
    let Some(snapshot) = connected_snapshot(&jobs, org).await else {
        return;
    };
    let mut progress = jobs.sweep(org).await;
    let started = jobs.now();
    let first_connected = snapshot.connection.first_connected_at.trunc_subsecs(0);
    let since = progress
        .last_started_at
        .map(|t| t - SWEEP_OVERLAP)
        .unwrap_or(first_connected)
        .max(first_connected - SWEEP_OVERLAP);
    let mut cursor = ListCursor {
        updated_since: since,
        page: 1,
    };
    let mut requeued = 0;
    let api = snapshot.api(Priority::Background);
    loop {
        if !snapshot.is_connected() || !snapshot.gate.runs_here() {
            return;
        }
        let tickets = match cursor.next(&api).await {
            Ok(Some(t)) => t,
            Ok(None) => break,
            Err(e) => {
                tracing::warn!(org_id = %org, error = %e, "sweep stopped; next run retries");
                progress.last_error = Some(e.to_string());
                jobs.save_sweep(org, &progress).await;
                return;
            }
        };
        let mut stale = Vec::new();
        for t in &tickets {
            let needs = match jobs.ticket_record(org, t.id).await {
                Ok(None) => !machine::predates_connection(t.created_at, first_connected),
                Ok(Some(r)) => {
                    r.gate.decision == GateOutcome::Tracked
                        && r.watermark.may_be_stale(t.updated_at)
                }
                Err(_) => false,
            };
            if needs {
                stale.push(t.id);
            }
        }
        if jobs
            .inbox
            .enqueue(org, &stale, EventKind::Sweep)
            .await
            .is_err()
        {
            return;
        }
        requeued += stale.len() as u64;
        if cursor.exhausted() {
            break;
        }
    }
    progress.runs += 1;
    progress.last_run_at = Some(jobs.now());
    progress.last_started_at = Some(started);
    progress.tickets_requeued += requeued;
    progress.last_error = None;
    if requeued > 0 {
        tracing::info!(org_id = %org, requeued, "sweep found tickets changed without a webhook");
    }
    jobs.save_sweep(org, &progress).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_backfill_an_older_version_marked_failed_is_resumed() {
        let state: BackfillState = serde_json::from_str("\"failed\"").unwrap();
        assert_eq!(state, BackfillState::Stopped);
    }

    #[test]
    fn the_backoff_of_a_failing_backfill_is_capped_at_five_minutes() {
        assert_eq!(backoff(1), Duration::from_secs(1));
        assert_eq!(backoff(30), MAX_BACKOFF);
    }
}
