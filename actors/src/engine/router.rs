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
//! A ticket that gets work while the shard is full waits among the deferred keys (a few
//! bytes each, its events are in the store); actors that report `Quiet` (nothing queued or
//! pending) are passivated early to make room, and every `Stopped` lets a deferred ticket in.
//!
//! Live work before background work (contract §8): a `Route` says whether the work is background
//! (imports, sweeps) or live (webhooks, admin commands, anything after a restart). Deferred
//! live tickets are let in before deferred background ones, and actors started for background
//! work hold at most half of the shard's slots, so a backfill never fills the shard: a live
//! ticket of any org finds a slot as soon as a live one frees, never behind the history.

use crate::engine::deps::EngineDeps;
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
    /// Being passivated; `rewake` when work arrived meanwhile (`Some(true)`: background only).
    Stopping {
        rewake: Option<bool>,
    },
}

/// The ticket has work: start or wake its actor.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Route {
    pub org_id: OrgId,
    pub ticket_id: TicketId,
    /// Only background work (imports, sweeps) was queued.
    pub background: bool,
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
    /// Actors started for background work (a subset of `actors`) until live work reaches them.
    background: HashSet<Key>,
    /// Tickets with work waiting for a free slot, each in one of the two queues below, by
    /// whether its work is background only.
    deferred: HashMap<Key, bool>,
    /// Deferred live tickets, oldest first; let in first.
    deferred_live: VecDeque<Key>,
    /// Deferred background tickets, oldest first (may hold keys promoted to live since).
    deferred_background: VecDeque<Key>,
    /// Actors that reported having nothing to do, oldest first (may hold stale keys).
    quiet: VecDeque<Key>,
}

impl Shard {
    /// An empty shard.
    pub fn new(deps: Arc<EngineDeps>) -> Self {
        Self {
            deps,
            actors: HashMap::new(),
            background: HashSet::new(),
            deferred: HashMap::new(),
            deferred_live: VecDeque::new(),
            deferred_background: VecDeque::new(),
            quiet: VecDeque::new(),
        }
    }

    fn capacity(&self) -> usize {
        self.deps.config.max_live_actors_per_shard.max(1)
    }

    /// No slot for work of this kind: the shard is full, or background work holds its half.
    fn full(&self, background: bool) -> bool {
        self.actors.len() >= self.capacity()
            || (background && self.background.len() >= (self.capacity() / 2).max(1))
    }

    fn spawn(&mut self, key: Key, background: bool, ctx: &mut Context<Self>) {
        let deps = self.deps.clone();
        let me = ctx.address();
        let addr = Supervisor::start(move |_| TicketActor::new(key.0, key.1, deps, me));
        self.actors.insert(key, Entry::Live(addr));
        // Started on a later wake-up while still deferred: its queue entry is stale now.
        self.deferred.remove(&key);
        if background {
            self.background.insert(key);
        }
    }

    /// Start the actor, or defer the ticket while there is no slot for its kind of work.
    fn admit(&mut self, key: Key, background: bool, ctx: &mut Context<Self>) {
        if !self.full(background) {
            self.spawn(key, background, ctx);
        } else {
            self.defer(key, background);
            self.make_room();
        }
    }

    /// Queue the ticket for a slot; live work promotes a deferred background ticket.
    fn defer(&mut self, key: Key, background: bool) {
        match self.deferred.get(&key) {
            None if background => self.deferred_background.push_back(key),
            None => self.deferred_live.push_back(key),
            Some(true) if !background => self.deferred_live.push_back(key),
            Some(_) => return,
        }
        self.deferred.insert(key, background);
    }

    /// The oldest deferred ticket of this kind (skipping keys promoted or let in since).
    fn next_deferred(&mut self, background: bool) -> Option<Key> {
        let queue = if background {
            &mut self.deferred_background
        } else {
            &mut self.deferred_live
        };
        while let Some(key) = queue.pop_front() {
            if self.deferred.get(&key) == Some(&background) {
                self.deferred.remove(&key);
                return Some(key);
            }
        }
        None
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
                *entry = Entry::Stopping { rewake: None };
                EngineMetrics::inc(&self.deps.metrics.passivations);
                true
            }
            _ => false,
        }
    }

    /// Let deferred tickets into free slots, live ones first.
    fn admit_deferred(&mut self, ctx: &mut Context<Self>) {
        while !self.full(false) {
            let (key, background) = match self.next_deferred(false) {
                Some(key) => (key, false),
                None if self.full(true) => return,
                None => match self.next_deferred(true) {
                    Some(key) => (key, true),
                    None => return,
                },
            };
            self.route(key, background, ctx);
        }
    }

    /// Hand work to the ticket's actor: wake it, note it while it stops, or start it.
    fn route(&mut self, key: Key, background: bool, ctx: &mut Context<Self>) {
        match self.actors.get_mut(&key) {
            Some(Entry::Live(addr)) => {
                addr.do_send(Wake);
                if !background && self.background.remove(&key) {
                    // Live work reached a background actor: its background slot is free.
                    self.admit_deferred(ctx);
                }
            }
            Some(Entry::Stopping { rewake }) => {
                *rewake = Some(rewake.unwrap_or(true) && background);
            }
            None => self.admit(key, background, ctx),
        }
    }
}

impl Actor for Shard {
    type Context = Context<Self>;
}

impl Handler<Route> for Shard {
    type Result = ();

    fn handle(&mut self, msg: Route, ctx: &mut Self::Context) {
        self.route((msg.org_id, msg.ticket_id), msg.background, ctx);
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
            // Work it left behind keeps the kind it was started for.
            let left = msg.has_work.then_some(self.background.contains(&key));
            let again = match (*rewake, left) {
                (Some(a), Some(b)) => Some(a && b),
                (a, b) => a.or(b),
            };
            self.actors.remove(&key);
            self.background.remove(&key);
            if let Some(background) = again {
                // Back of the line: tickets that waited for a slot go first.
                self.defer(key, background);
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
