//! `ConnectedOrgs`: the webhook route's memory of which orgs are connected, so that a webhook
//! costs no store read to learn it. The store stays the source of truth; an entry is read from
//! it on first use and forgotten whenever the org's connection may have changed:
//!
//! - on this node, by `AppState::org_changed` (save, disconnect, delete), right after the
//!   store was written and before the call returns: a disconnected org's next webhook here
//!   reads the store again and gets 410 at once;
//! - with several nodes, by the cluster's wake-up listener when it hears another node's
//!   `Wake::Org` notification (the same one that makes the org's owner re-mirror its gate).
//!   Notifications are lost while the listener is not listening, so with a cluster nothing is
//!   remembered until the listener has run `LISTEN`, and everything is forgotten (and nothing
//!   remembered) again from the moment its connection ends until it listens anew.
//!
//! A read that raced with a forget is not remembered (each forget bumps an epoch the read
//! compares), so a stale flag can never be stored after the change that made it stale.

use crate::store::{Store, StoreError};
use parking_lot::Mutex;
use std::collections::HashMap;
use ticketsync_actors::OrgId;

/// Which orgs are connected, as last read from the store.
pub struct ConnectedOrgs {
    store: Store,
    memory: Mutex<Memory>,
}

struct Memory {
    /// Bumped by every forget: a read that started before it is not remembered.
    epoch: u64,
    /// Whether entries may be remembered at all (false while a cluster node does not listen).
    trusted: bool,
    orgs: HashMap<OrgId, bool>,
}

impl ConnectedOrgs {
    /// `trusted` false when changes from other nodes can only be heard once a listener runs
    /// (see `listening`).
    pub fn new(store: Store, trusted: bool) -> Self {
        Self {
            store,
            memory: Mutex::new(Memory {
                epoch: 0,
                trusted,
                orgs: HashMap::new(),
            }),
        }
    }

    /// Whether the org has a connection and it is connected.
    pub async fn connected(&self, org: OrgId) -> Result<bool, StoreError> {
        let epoch = {
            let memory = self.memory.lock();
            if let Some(connected) = memory.orgs.get(&org).filter(|_| memory.trusted) {
                return Ok(*connected);
            }
            memory.epoch
        };
        let connected = self.store.connected(org).await?;
        let mut memory = self.memory.lock();
        if memory.trusted && memory.epoch == epoch {
            memory.orgs.insert(org, connected);
        }
        Ok(connected)
    }

    /// The org's connection may have changed: read it from the store next time.
    pub fn forget(&self, org: OrgId) {
        let mut memory = self.memory.lock();
        memory.epoch += 1;
        memory.orgs.remove(&org);
    }

    /// Changes made on other nodes are heard (`true`, once `LISTEN` ran) or may be missed
    /// (`false`, the listener's connection ended): either way forget everything, and remember
    /// only while they are heard.
    pub fn listening(&self, heard: bool) {
        let mut memory = self.memory.lock();
        memory.epoch += 1;
        memory.trusted = heard;
        memory.orgs.clear();
    }
}
