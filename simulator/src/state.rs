//! The simulated Freshdesk account: one [`SimState`] behind one mutex.
//!
//! Owns the directory (agents, groups, contacts), the tickets (operations on them live in
//! `tickets`), the runtime configuration, the rate-limit window, the fault plan, the automation
//! rules and the request log. Every route takes the lock, does its synchronous work and lets it
//! go; nothing holds it across an `.await` (the gateway sleeps for latency and timeouts outside
//! it, webhook deliveries run in their own tasks).

use std::collections::{BTreeMap, HashMap};

use parking_lot::Mutex;
use tokio::sync::mpsc;

use crate::faults::Faults;
use crate::html::Rewrites;
use crate::model::{
    now, role_id_for, seed_time, Agent, Contact, Group, Ticket, SEED_AGENTS, SEED_GROUPS,
};
use crate::ratelimit::{RateWindow, SubLimits};
use crate::types::{NewAgent, RecordedRequest, RequestFilter};
use crate::webhooks::{Job, Webhooks};
use crate::SimConfig;

/// First id given to an implicitly created contact.
const FIRST_CONTACT_ID: u64 = 5001;
/// First conversation id (they increase globally).
pub(crate) const FIRST_CONVERSATION_ID: u64 = 9_000_000_001;

/// The shared simulator, handed to routes as `web::Data<Sim>`.
#[derive(Debug)]
pub(crate) struct Sim {
    pub state: Mutex<SimState>,
}

impl Sim {
    pub fn new(config: &SimConfig, outbox: mpsc::UnboundedSender<Job>) -> Self {
        Sim {
            state: Mutex::new(SimState::new(config, outbox)),
        }
    }
}

/// Everything the simulated account knows.
#[derive(Debug)]
pub(crate) struct SimState {
    /// Account budget (credits per minute).
    pub rate_limit_per_min: u32,
    /// Highest page number `GET /tickets` serves.
    pub max_pages: u32,
    pub rate: RateWindow,
    /// Endpoint sub-limits (off unless configured).
    pub sub_limits: SubLimits,
    pub faults: Faults,
    /// How bodies posted through the API are altered before they are stored.
    pub body_rewrites: Rewrites,
    pub webhooks: Webhooks,
    pub agents: BTreeMap<u64, Agent>,
    pub groups: BTreeMap<u64, Group>,
    /// Index `i` holds contact `FIRST_CONTACT_ID + i`.
    contacts: Vec<Contact>,
    contacts_by_email: HashMap<String, u64>,
    /// Index `i` holds ticket `i + 1`; deleted tickets stay, flagged.
    pub tickets: Vec<Ticket>,
    pub next_conversation_id: u64,
    next_agent_id: u64,
    next_group_id: u64,
    /// Kept sorted by `seq`.
    requests: Vec<RecordedRequest>,
    next_request_seq: u64,
}

impl SimState {
    fn new(config: &SimConfig, outbox: mpsc::UnboundedSender<Job>) -> Self {
        let at = seed_time();
        let agents = SEED_AGENTS
            .iter()
            .map(|&(id, name, email, key, role)| {
                let agent = Agent {
                    id,
                    name: name.to_string(),
                    email: email.to_string(),
                    api_key: key.to_string(),
                    role_ids: vec![role],
                    group_ids: Vec::new(),
                    created_at: at,
                    deleted: false,
                };
                (id, agent)
            })
            .collect::<BTreeMap<_, _>>();
        let groups = SEED_GROUPS
            .iter()
            .map(|&(id, name)| {
                let group = Group {
                    id,
                    name: name.to_string(),
                    created_at: at,
                    deleted: false,
                };
                (id, group)
            })
            .collect::<BTreeMap<_, _>>();
        let next_agent_id = agents.keys().max().map_or(1, |id| id + 1);
        let next_group_id = groups.keys().max().map_or(1, |id| id + 1);
        SimState {
            rate_limit_per_min: config.rate_limit_per_min,
            max_pages: config.max_pages,
            rate: RateWindow::default(),
            sub_limits: SubLimits::default(),
            faults: Faults::default(),
            body_rewrites: Rewrites::default(),
            webhooks: Webhooks::new(outbox),
            agents,
            groups,
            contacts: Vec::new(),
            contacts_by_email: HashMap::new(),
            tickets: Vec::new(),
            next_conversation_id: FIRST_CONVERSATION_ID,
            next_agent_id,
            next_group_id,
            requests: Vec::new(),
            next_request_seq: 1,
        }
    }

    // ----- directory -------------------------------------------------------------------------

    /// The live agent owning this API key.
    pub fn agent_by_key(&self, key: &str) -> Option<&Agent> {
        self.agents
            .values()
            .find(|a| !a.deleted && a.api_key == key)
    }

    /// A live (not deleted) agent.
    pub fn live_agent(&self, id: u64) -> Option<&Agent> {
        self.agents.get(&id).filter(|a| !a.deleted)
    }

    /// A live (not removed) group.
    pub fn live_group(&self, id: u64) -> Option<&Group> {
        self.groups.get(&id).filter(|g| !g.deleted)
    }

    pub fn live_agents(&self) -> impl Iterator<Item = &Agent> {
        self.agents.values().filter(|a| !a.deleted)
    }

    pub fn live_groups(&self) -> impl Iterator<Item = &Group> {
        self.groups.values().filter(|g| !g.deleted)
    }

    /// Adds an agent; errors name the offending input.
    pub fn create_agent(&mut self, new: &NewAgent) -> Result<&Agent, String> {
        let role_name = new.role.as_deref().unwrap_or("agent");
        let role = role_id_for(role_name).ok_or_else(|| {
            format!("unknown role {role_name:?}: use account_admin, admin, supervisor or agent")
        })?;
        if new.name.trim().is_empty() || new.email.trim().is_empty() {
            return Err("name and email are required".into());
        }
        if let Some(bad) = new
            .group_ids
            .iter()
            .flatten()
            .find(|id| self.live_group(**id).is_none())
        {
            return Err(format!("unknown group {bad}"));
        }
        let id = self.next_agent_id;
        let api_key = new
            .api_key
            .clone()
            .unwrap_or_else(|| format!("sim-key-{id}"));
        if self.agent_by_key(&api_key).is_some() {
            return Err("api_key already belongs to another agent".into());
        }
        self.next_agent_id += 1;
        let agent = Agent {
            id,
            name: new.name.clone(),
            email: new.email.clone(),
            api_key,
            role_ids: vec![role],
            group_ids: new.group_ids.clone().unwrap_or_default(),
            created_at: now(),
            deleted: false,
        };
        Ok(self.agents.entry(id).or_insert(agent))
    }

    /// Deletes an agent: its key stops working and it can no longer be assigned.
    pub fn delete_agent(&mut self, id: u64) -> bool {
        match self.agents.get_mut(&id).filter(|a| !a.deleted) {
            Some(agent) => {
                agent.deleted = true;
                true
            }
            None => false,
        }
    }

    /// Gives a live agent a new API key (Freshdesk's "reset API key"): the old one stops
    /// working at once.
    pub fn rotate_agent_key(&mut self, id: u64, new_key: &str) -> Result<(), String> {
        if new_key.trim().is_empty() {
            return Err("api_key must not be empty".into());
        }
        if self.agent_by_key(new_key).is_some_and(|a| a.id != id) {
            return Err("api_key already belongs to another agent".into());
        }
        let agent = self
            .agents
            .get_mut(&id)
            .filter(|a| !a.deleted)
            .ok_or_else(|| format!("agent {id}"))?;
        agent.api_key = new_key.to_string();
        Ok(())
    }

    pub fn create_group(&mut self, name: &str) -> &Group {
        let id = self.next_group_id;
        self.next_group_id += 1;
        let group = Group {
            id,
            name: name.to_string(),
            created_at: now(),
            deleted: false,
        };
        self.groups.entry(id).or_insert(group)
    }

    pub fn delete_group(&mut self, id: u64) -> bool {
        match self.groups.get_mut(&id).filter(|g| !g.deleted) {
            Some(group) => {
                group.deleted = true;
                for agent in self.agents.values_mut() {
                    agent.group_ids.retain(|g| *g != id);
                }
                true
            }
            None => false,
        }
    }

    /// The contact with this email, created on first use.
    pub fn contact_for(&mut self, email: &str, name: Option<&str>) -> u64 {
        let key = email.trim().to_ascii_lowercase();
        if let Some(id) = self.contacts_by_email.get(&key) {
            return *id;
        }
        let id = FIRST_CONTACT_ID + self.contacts.len() as u64;
        let name = name
            .map(str::to_string)
            .unwrap_or_else(|| key.split('@').next().unwrap_or(&key).to_string());
        self.contacts.push(Contact {
            id,
            name,
            email: key.clone(),
        });
        self.contacts_by_email.insert(key, id);
        id
    }

    pub fn contact_id_by_email(&self, email: &str) -> Option<u64> {
        self.contacts_by_email
            .get(&email.trim().to_ascii_lowercase())
            .copied()
    }

    pub fn contact(&self, id: u64) -> Option<&Contact> {
        let index = id.checked_sub(FIRST_CONTACT_ID)?;
        self.contacts.get(usize::try_from(index).ok()?)
    }

    // ----- tickets (lookup; operations live in `tickets`) ----------------------------------

    /// A ticket, deleted or not.
    pub fn any_ticket(&self, id: u64) -> Option<&Ticket> {
        let index = usize::try_from(id.checked_sub(1)?).ok()?;
        self.tickets.get(index)
    }

    pub fn any_ticket_mut(&mut self, id: u64) -> Option<&mut Ticket> {
        let index = usize::try_from(id.checked_sub(1)?).ok()?;
        self.tickets.get_mut(index)
    }

    /// A ticket the API can see (not deleted).
    pub fn ticket(&self, id: u64) -> Option<&Ticket> {
        self.any_ticket(id).filter(|t| !t.deleted)
    }

    pub fn ticket_mut(&mut self, id: u64) -> Option<&mut Ticket> {
        self.any_ticket_mut(id).filter(|t| !t.deleted)
    }

    // ----- request log -----------------------------------------------------------------------

    /// Reserves the sequence number of an arriving request.
    pub fn next_request_seq(&mut self) -> u64 {
        let seq = self.next_request_seq;
        self.next_request_seq += 1;
        seq
    }

    /// Records a finished request, keeping the log in arrival order.
    pub fn record_request(&mut self, request: RecordedRequest) {
        let at = self.requests.partition_point(|r| r.seq < request.seq);
        self.requests.insert(at, request);
    }

    pub fn requests(&self, filter: &RequestFilter) -> Vec<RecordedRequest> {
        let start = filter
            .since_seq
            .map_or(0, |since| self.requests.partition_point(|r| r.seq <= since));
        self.requests[start..]
            .iter()
            .filter(|r| {
                filter
                    .method
                    .as_deref()
                    .is_none_or(|m| r.method.eq_ignore_ascii_case(m))
            })
            .filter(|r| {
                filter
                    .path_prefix
                    .as_deref()
                    .is_none_or(|p| r.path.starts_with(p))
            })
            .cloned()
            .collect()
    }

    pub fn clear_requests(&mut self) {
        self.requests.clear();
    }
}
