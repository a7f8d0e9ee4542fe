//! `OrgActor`: one per organization. It owns the org's settings snapshot (published to ticket
//! actors as an immutable `Arc`), the status names of its Freshdesk account and its agent
//! directory (who is an agent, who is the AI). Ticket actors ask it once per batch for the
//! snapshot and for the authors of new conversations; everything else they do themselves.
//!
//! It is woken by ticket actors (`GetSnapshot`, `ResolveAuthors`) and by the service when the
//! connection is saved or disconnected (`Reload`). Messages that call Freshdesk are
//! `AtomicResponse`s, so one org never refreshes its directory twice at once. Whether the org
//! is connected or paused lives in its `OrgGate`, outside this mailbox.

use crate::freshdesk::{FreshdeskApi, FreshdeskError};
use crate::ids::{AgentId, OrgId};
use crate::org::budget::{BudgetedApi, Priority, RateBudget};
use crate::org::gate::OrgGate;
use crate::ports::{ConnectionFailure, OrgConnection, OrgProvider};
use crate::session::{builtin_status_name, Author};
use actix::prelude::*;
use std::collections::HashMap;
use std::sync::Arc;

/// An immutable view of the org's connection, shared with its ticket actors.
pub struct OrgSnapshot {
    /// The org's rate budget (the same one across reloads).
    pub budget: Arc<RateBudget>,
    pub connection: OrgConnection,
    /// The org's gate (the same one across reloads): a disconnect closes it at once, so work
    /// already holding the snapshot stops before writing.
    pub gate: Arc<OrgGate>,
    /// Status id → agent-facing name, from `GET /ticket_fields`.
    pub status_names: HashMap<u8, String>,
}

impl OrgSnapshot {
    /// Whether the org is connected right now.
    pub fn is_connected(&self) -> bool {
        self.gate.is_connected()
    }

    /// The org's Freshdesk API for calls of `priority`, inside its rate budget.
    pub fn api(&self, priority: Priority) -> BudgetedApi<'_> {
        BudgetedApi::new(
            self.connection.api.as_ref(),
            &self.budget,
            priority,
            &self.gate,
        )
    }

    /// The name of a status id (built-in names when the account did not list it).
    pub fn status_name(&self, id: u8) -> String {
        self.status_names
            .get(&id)
            .cloned()
            .or_else(|| builtin_status_name(id).map(str::to_string))
            .unwrap_or_else(|| format!("Status {id}"))
    }
}

/// Why the org actor could not answer.
#[derive(Debug, Clone, thiserror::Error)]
pub enum OrgError {
    #[error(transparent)]
    Connection(#[from] ConnectionFailure),
    #[error(transparent)]
    Freshdesk(#[from] FreshdeskError),
}

/// The org's snapshot (None: never connected).
#[derive(Message)]
#[rtype(result = "Result<Option<Arc<OrgSnapshot>>, OrgError>")]
pub struct GetSnapshot;

/// The connection changed (saved, rotated, disconnected): drop the snapshot and reload it.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Reload;

/// Decide the authors of conversation `user_ids` (contract §4.3). `requester` is the ticket's
/// requester, known to be a contact without asking Freshdesk.
#[derive(Message)]
#[rtype(result = "Result<HashMap<u64, Author>, OrgError>")]
pub struct ResolveAuthors {
    pub user_ids: Vec<u64>,
    pub requester: Option<u64>,
}

/// One organization.
pub struct OrgActor {
    org_id: OrgId,
    provider: Arc<dyn OrgProvider>,
    budget: Arc<RateBudget>,
    gate: Arc<OrgGate>,
    snapshot: Option<Arc<OrgSnapshot>>,
    /// user id → is an agent. Contacts are cached as `false`.
    directory: HashMap<u64, bool>,
    directory_loaded: bool,
}

impl OrgActor {
    /// An org actor that loads its connection lazily.
    pub fn new(
        org_id: OrgId,
        provider: Arc<dyn OrgProvider>,
        budget: Arc<RateBudget>,
        gate: Arc<OrgGate>,
    ) -> Self {
        Self {
            org_id,
            provider,
            budget,
            gate,
            snapshot: None,
            directory: HashMap::new(),
            directory_loaded: false,
        }
    }
}

impl Actor for OrgActor {
    type Context = Context<Self>;
}

impl Handler<GetSnapshot> for OrgActor {
    type Result = AtomicResponse<Self, Result<Option<Arc<OrgSnapshot>>, OrgError>>;

    fn handle(&mut self, _: GetSnapshot, _: &mut Self::Context) -> Self::Result {
        if let Some(snapshot) = &self.snapshot {
            let snapshot = snapshot.clone();
            return AtomicResponse::new(Box::pin(fut::ready(Ok(Some(snapshot)))));
        }
        let provider = self.provider.clone();
        let org_id = self.org_id;
        let budget = self.budget.clone();
        let gate = self.gate.clone();
        let load = async move {
            let Some(connection) = provider.connection(org_id).await? else {
                return Ok(None);
            };
            let status_names = if connection.connected {
                let api = BudgetedApi::new(connection.api.as_ref(), &budget, Priority::Sync, &gate);
                load_status_names(&api).await?
            } else {
                HashMap::new()
            };
            Ok(Some(Arc::new(OrgSnapshot {
                budget,
                gate,
                connection,
                status_names,
            })))
        };
        AtomicResponse::new(Box::pin(load.into_actor(self).map(
            |result: Result<Option<Arc<OrgSnapshot>>, OrgError>, act, _| {
                if let Ok(Some(snapshot)) = &result {
                    act.snapshot = Some(snapshot.clone());
                }
                result
            },
        )))
    }
}

impl Handler<Reload> for OrgActor {
    type Result = ();

    fn handle(&mut self, _: Reload, _: &mut Self::Context) {
        // The gate was already updated by `Engine::org_changed`; work in flight with the old
        // snapshot checks it before each call.
        self.snapshot = None;
        self.directory.clear();
        self.directory_loaded = false;
    }
}

impl Handler<ResolveAuthors> for OrgActor {
    type Result = AtomicResponse<Self, Result<HashMap<u64, Author>, OrgError>>;

    fn handle(&mut self, msg: ResolveAuthors, _: &mut Self::Context) -> Self::Result {
        let Some(snapshot) = self.snapshot.clone() else {
            return AtomicResponse::new(Box::pin(fut::ready(Ok(HashMap::new()))));
        };
        let ai = snapshot.connection.agent.id;
        let mut unknown: Vec<u64> = msg
            .user_ids
            .iter()
            .copied()
            .filter(|id| {
                *id != ai.0 && Some(*id) != msg.requester && !self.directory.contains_key(id)
            })
            .collect();
        unknown.sort_unstable();
        unknown.dedup();
        let load_all = !unknown.is_empty() && !self.directory_loaded;
        let lookup = async move {
            let api = snapshot.api(Priority::Sync);
            let mut found: HashMap<u64, bool> = HashMap::new();
            if load_all {
                for agent in list_agents(&api).await? {
                    found.insert(agent.0, true);
                }
            }
            for id in unknown {
                if found.contains_key(&id) {
                    continue;
                }
                if load_all {
                    // The full list did not have it: not an agent.
                    found.insert(id, false);
                    continue;
                }
                let is_agent = match api.agent(AgentId(id)).await {
                    Ok(_) => true,
                    Err(FreshdeskError::NotFound) => false,
                    Err(e) => return Err(OrgError::from(e)),
                };
                found.insert(id, is_agent);
            }
            Ok((found, load_all))
        };
        AtomicResponse::new(Box::pin(lookup.into_actor(self).map(
            move |result: Result<(HashMap<u64, bool>, bool), OrgError>, act, _| {
                let (found, loaded_all) = result?;
                act.directory.extend(found);
                act.directory_loaded |= loaded_all;
                Ok(msg
                    .user_ids
                    .iter()
                    .map(|id| {
                        let author = if *id == ai.0 {
                            Author::Ai
                        } else if act.directory.get(id).copied().unwrap_or(false) {
                            Author::Agent
                        } else {
                            Author::Contact
                        };
                        (*id, author)
                    })
                    .collect())
            },
        )))
    }
}

async fn list_agents(api: &dyn FreshdeskApi) -> Result<Vec<AgentId>, FreshdeskError> {
    let mut ids = Vec::new();
    let mut page = 1;
    loop {
        let result = api.agents(page).await?.value;
        ids.extend(result.items.iter().map(|a| a.id));
        if !result.has_next || page >= 100 {
            return Ok(ids);
        }
        page += 1;
    }
}

async fn load_status_names(api: &dyn FreshdeskApi) -> Result<HashMap<u8, String>, OrgError> {
    let fields = api.ticket_fields().await?.value;
    Ok(fields.iter().flat_map(|f| f.status_names()).collect())
}
