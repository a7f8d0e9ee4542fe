//! Router shards: each shard owns the ticket actors of a slice of (org, ticket) keys and runs
//! them on its own arbiter. A shard is the only place that starts ticket actors, so a ticket
//! never has two live incarnations.
//!
//! Passivation handshake (after Akka's `Passivate`): an idle actor sends `Passivate`; the
//! shard stops routing to it (entry `Stopping`), drops its address and sends `Stop`. Wake-ups
//! that arrive meanwhile are remembered; when the actor reports `Stopped` the shard starts a
//! new incarnation if any work arrived. Wake-ups carry no payload (events live in the store),
//! so remembering "there was one" is enough.
//!
//! Bounded memory under bursts: a shard keeps at most `max_live_actors_per_shard` actors.
//! A ticket that gets work while the shard is full waits in a FIFO of deferred keys (a few
//! bytes each, its events are in the store); actors that report `Quiet` (nothing queued or
//! pending) are passivated early to make room, and every `Stopped` lets a deferred ticket in.

use crate::engine::EngineDeps;
use crate::ids::{OrgId, TicketId};
use crate::metrics::EngineMetrics;
use crate::ticket::actor::{ActorStatus, Status, Stop, TicketActor, Wake};
use actix::prelude::*;
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;

type Key = (OrgId, TicketId);

/// How long inspection waits for a live actor to describe itself.
const INSPECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

enum Entry {
    Live(Addr<TicketActor>),
    Stopping { rewake: bool },
}

/// The ticket has work: start or wake its actor.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Route {
    pub org_id: OrgId,
    pub ticket_id: TicketId,
}

/// An idle actor asks to be stopped.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Passivate {
    pub org_id: OrgId,
    pub ticket_id: TicketId,
}

/// A passivated actor has stopped; `has_work` when it left work behind (unprocessed
/// wake-ups, a scheduled retry, pending writes, a failed pass).
#[derive(Message)]
#[rtype(result = "()")]
pub struct Stopped {
    pub org_id: OrgId,
    pub ticket_id: TicketId,
    pub has_work: bool,
}

/// The actor has nothing queued or pending: it may be passivated early to make room.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Quiet {
    pub org_id: OrgId,
    pub ticket_id: TicketId,
}

/// The live actor's status, if the ticket has one.
#[derive(Message)]
#[rtype(result = "Option<ActorStatus>")]
pub struct Inspect {
    pub org_id: OrgId,
    pub ticket_id: TicketId,
}

/// One shard.
pub struct Shard {
    deps: Arc<EngineDeps>,
    /// Live and stopping actors (both hold a slot).
    actors: HashMap<Key, Entry>,
    /// Tickets with work waiting for a free slot, oldest first.
    deferred: VecDeque<Key>,
    deferred_set: HashSet<Key>,
    /// Actors that reported having nothing to do, oldest first (may hold stale keys).
    quiet: VecDeque<Key>,
}

impl Shard {
    /// An empty shard.
    pub fn new(deps: Arc<EngineDeps>) -> Self {
        Self {
            deps,
            actors: HashMap::new(),
            deferred: VecDeque::new(),
            deferred_set: HashSet::new(),
            quiet: VecDeque::new(),
        }
    }

    fn full(&self) -> bool {
        self.actors.len() >= self.deps.config.max_live_actors_per_shard.max(1)
    }

    fn spawn(&mut self, key: Key, ctx: &mut Context<Self>) {
        let deps = self.deps.clone();
        let me = ctx.address();
        let addr = Supervisor::start(move |_| TicketActor::new(key.0, key.1, deps, me));
        self.actors.insert(key, Entry::Live(addr));
    }

    /// Start the actor, or defer the ticket while the shard is full.
    fn admit(&mut self, key: Key, ctx: &mut Context<Self>) {
        if !self.full() {
            self.spawn(key, ctx);
        } else if self.deferred_set.insert(key) {
            self.deferred.push_back(key);
            self.make_room();
        }
    }

    /// Passivate quiet actors while tickets wait for a slot.
    fn make_room(&mut self) {
        let mut stopping = self
            .actors
            .values()
            .filter(|e| matches!(e, Entry::Stopping { .. }))
            .count();
        while stopping < self.deferred.len() {
            let Some(key) = self.quiet.pop_front() else {
                return;
            };
            if self.passivate(key) {
                stopping += 1;
            }
        }
    }

    /// Stop routing to a live actor and ask it to stop. Returns whether it was live.
    fn passivate(&mut self, key: Key) -> bool {
        match self.actors.get_mut(&key) {
            Some(entry @ Entry::Live(_)) => {
                if let Entry::Live(addr) = entry {
                    addr.do_send(Stop);
                }
                *entry = Entry::Stopping { rewake: false };
                EngineMetrics::inc(&self.deps.metrics.passivations);
                true
            }
            _ => false,
        }
    }

    /// Let deferred tickets into free slots.
    fn admit_deferred(&mut self, ctx: &mut Context<Self>) {
        while !self.full() {
            let Some(key) = self.deferred.pop_front() else {
                return;
            };
            self.deferred_set.remove(&key);
            match self.actors.get_mut(&key) {
                Some(Entry::Live(addr)) => addr.do_send(Wake),
                Some(Entry::Stopping { rewake }) => *rewake = true,
                None => self.spawn(key, ctx),
            }
        }
    }
}

impl Actor for Shard {
    type Context = Context<Self>;
}

impl Handler<Route> for Shard {
    type Result = ();

    fn handle(&mut self, msg: Route, ctx: &mut Self::Context) {
        let key = (msg.org_id, msg.ticket_id);
        match self.actors.get_mut(&key) {
            Some(Entry::Live(addr)) => addr.do_send(Wake),
            Some(Entry::Stopping { rewake }) => *rewake = true,
            None => self.admit(key, ctx),
        }
    }
}

impl Handler<Passivate> for Shard {
    type Result = ();

    fn handle(&mut self, msg: Passivate, _: &mut Self::Context) {
        self.passivate((msg.org_id, msg.ticket_id));
    }
}

impl Handler<Quiet> for Shard {
    type Result = ();

    fn handle(&mut self, msg: Quiet, _: &mut Self::Context) {
        let key = (msg.org_id, msg.ticket_id);
        if self.deferred.is_empty() {
            self.quiet.push_back(key);
            // Stale keys are skipped when popped; keep the list from growing without bound.
            if self.quiet.len() > 2 * self.actors.len().max(16) {
                let actors = &self.actors;
                self.quiet
                    .retain(|k| matches!(actors.get(k), Some(Entry::Live(_))));
            }
        } else {
            self.passivate(key);
        }
    }
}

impl Handler<Stopped> for Shard {
    type Result = ();

    fn handle(&mut self, msg: Stopped, ctx: &mut Self::Context) {
        let key = (msg.org_id, msg.ticket_id);
        if let Some(Entry::Stopping { rewake }) = self.actors.get(&key) {
            let again = *rewake || msg.has_work;
            self.actors.remove(&key);
            if again && self.deferred_set.insert(key) {
                // Back of the line: tickets that waited for a slot go first.
                self.deferred.push_back(key);
            }
            self.admit_deferred(ctx);
        }
    }
}

impl Handler<Inspect> for Shard {
    type Result = ResponseFuture<Option<ActorStatus>>;

    fn handle(&mut self, msg: Inspect, _: &mut Self::Context) -> Self::Result {
        // Send now and keep no address across the wait: a held address would make the
        // supervisor restart an actor that is being passivated.
        let request = match self.actors.get(&(msg.org_id, msg.ticket_id)) {
            Some(Entry::Live(addr)) => Some(addr.send(Status)),
            _ => None,
        };
        Box::pin(async move {
            let request = request?;
            tokio::time::timeout(INSPECT_TIMEOUT, request)
                .await
                .ok()?
                .ok()
        })
    }
}
