//! Router shards: each shard owns the ticket actors of a slice of (org, ticket) keys and runs
//! them on its own arbiter. A shard is the only place that starts ticket actors, so a ticket
//! never has two live incarnations.
//!
//! Passivation handshake (after Akka's `Passivate`): an idle actor sends `Passivate`; the
//! shard stops routing to it (entry `Stopping`), drops its address and sends `Stop`. Wake-ups
//! that arrive meanwhile are remembered; when the actor reports `Stopped` the shard starts a
//! new incarnation if any work arrived. Wake-ups carry no payload (events live in the store),
//! so remembering "there was one" is enough.

use crate::engine::EngineDeps;
use crate::ids::{OrgId, TicketId};
use crate::metrics::EngineMetrics;
use crate::ticket::actor::{ActorStatus, Status, Stop, TicketActor, Wake};
use actix::prelude::*;
use std::collections::HashMap;
use std::sync::Arc;

type Key = (OrgId, TicketId);

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

/// A passivated actor has stopped; `dirty` when it had unprocessed wake-ups.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Stopped {
    pub org_id: OrgId,
    pub ticket_id: TicketId,
    pub dirty: bool,
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
    actors: HashMap<Key, Entry>,
}

impl Shard {
    /// An empty shard.
    pub fn new(deps: Arc<EngineDeps>) -> Self {
        Self {
            deps,
            actors: HashMap::new(),
        }
    }

    fn spawn(&mut self, key: Key, ctx: &mut Context<Self>) {
        let deps = self.deps.clone();
        let me = ctx.address();
        let addr = Supervisor::start(move |_| TicketActor::new(key.0, key.1, deps, me));
        self.actors.insert(key, Entry::Live(addr));
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
            None => self.spawn(key, ctx),
        }
    }
}

impl Handler<Passivate> for Shard {
    type Result = ();

    fn handle(&mut self, msg: Passivate, _: &mut Self::Context) {
        let key = (msg.org_id, msg.ticket_id);
        if let Some(entry) = self.actors.get_mut(&key) {
            if let Entry::Live(addr) = entry {
                addr.do_send(Stop);
                *entry = Entry::Stopping { rewake: false };
                EngineMetrics::inc(&self.deps.metrics.passivations);
            }
        }
    }
}

impl Handler<Stopped> for Shard {
    type Result = ();

    fn handle(&mut self, msg: Stopped, ctx: &mut Self::Context) {
        let key = (msg.org_id, msg.ticket_id);
        if let Some(Entry::Stopping { rewake }) = self.actors.get(&key) {
            let again = *rewake || msg.dirty;
            self.actors.remove(&key);
            if again {
                self.spawn(key, ctx);
            }
        }
    }
}

impl Handler<Inspect> for Shard {
    type Result = ResponseFuture<Option<ActorStatus>>;

    fn handle(&mut self, msg: Inspect, _: &mut Self::Context) -> Self::Result {
        let addr = match self.actors.get(&(msg.org_id, msg.ticket_id)) {
            Some(Entry::Live(addr)) => Some(addr.clone()),
            _ => None,
        };
        Box::pin(async move {
            match addr {
                Some(addr) => addr.send(Status).await.ok(),
                None => None,
            }
        })
    }
}
