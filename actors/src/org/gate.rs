//! `OrgGate`: whether an org's Freshdesk work may run right now. One per org, shared by the
//! org's actor, its snapshots, its ticket passes, its jobs and the service; it lives outside
//! the org actor's mailbox so that a disconnect takes effect at once even while the actor is
//! busy (listing agents, loading status names).
//!
//! It holds three things:
//! - **connected**: the stored connection's flag, mirrored here when the gate is made and by
//!   `Engine::org_changed` (the store stays the source of truth, see `run_pass`). Every
//!   budgeted call and every write checks it.
//! - **writes**: every write to Freshdesk runs under a read guard taken after checking
//!   `connected`; a disconnect clears the flag, then takes the write guard, so once it returns
//!   no write is in flight and none can start.
//! - **pause**: why Freshdesk work is held although the org is connected (Freshdesk refuses the
//!   key, the stored domain is no longer allowed). Passes keep their events and outbox and look
//!   again shortly; a save (`Engine::org_changed`) clears it. A refused key is also retried by
//!   one probing pass every `PROBE_EVERY`, and any call Freshdesk answers again (a probe, the
//!   backfill's retry) lifts it: a key or role restored in Freshdesk needs no save.
//!
//! And it asks the node's `Ownership` whether the org's work runs here: a write starts only
//! while it does and while there is time for it to end before this node's hold on the org
//! can lapse (it waits out a renewal instead of failing), and the last check is made right
//! before the request leaves (`may_send_write`), after any wait for a budget slot.

use crate::ids::OrgId;
use crate::metrics::EngineMetrics;
use crate::ports::Ownership;
use chrono::{DateTime, Utc};
use parking_lot::Mutex;
use serde::Serialize;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{RwLock, RwLockReadGuard};

/// Why an org's Freshdesk work is paused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PauseReason {
    /// Freshdesk answered 401/403 to the AI agent's key: it was reset, revoked or demoted.
    #[serde(rename = "freshdesk_auth_failed")]
    AuthFailed,
    /// The configuration no longer allows the stored Freshdesk domain.
    DomainNotAllowed,
}

/// A paused org, as the connection endpoint, inspection and logs show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct OrgPause {
    pub code: PauseReason,
    pub message: String,
    pub at: DateTime<Utc>,
}

/// How often a pass of an org paused for a refused key calls Freshdesk anyway, to find out
/// whether the key works again.
pub const PROBE_EVERY: Duration = Duration::from_secs(30);

/// One org's gate.
pub struct OrgGate {
    org_id: OrgId,
    connected: AtomicBool,
    writes: RwLock<()>,
    pause: Mutex<Option<Paused>>,
    /// Held while the stored connection is read and mirrored here (see `syncing`).
    sync: tokio::sync::Mutex<()>,
    metrics: Arc<EngineMetrics>,
    ownership: Arc<dyn Ownership>,
}

struct Paused {
    shown: OrgPause,
    last_probe: Instant,
}

/// Held while one write to Freshdesk is in flight.
pub struct WritePermit<'a> {
    _guard: RwLockReadGuard<'a, ()>,
}

impl OrgGate {
    /// A connected or disconnected gate, not paused.
    pub fn new(
        org_id: OrgId,
        connected: bool,
        metrics: Arc<EngineMetrics>,
        ownership: Arc<dyn Ownership>,
    ) -> Self {
        Self {
            org_id,
            connected: AtomicBool::new(connected),
            writes: RwLock::new(()),
            pause: Mutex::new(None),
            sync: tokio::sync::Mutex::new(()),
            metrics,
            ownership,
        }
    }

    /// Taken by whoever reads the stored connection to mirror it here, for the read and the
    /// update together: mirrors apply in the order they read.
    pub(crate) async fn syncing(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.sync.lock().await
    }

    /// The flag budgeted calls check before they are sent.
    pub fn connected_flag(&self) -> &AtomicBool {
        &self.connected
    }

    /// Whether the org is connected.
    pub fn is_connected(&self) -> bool {
        self.connected.load(Ordering::SeqCst)
    }

    /// Mirror the stored flag.
    pub fn set_connected(&self, connected: bool) {
        self.connected.store(connected, Ordering::SeqCst);
    }

    /// Wait until no write that started before this call is in flight.
    pub async fn writes_drained(&self) {
        drop(self.writes.write().await);
    }

    /// Whether the org's work runs on this node.
    pub fn runs_here(&self) -> bool {
        self.ownership.runs(self.org_id)
    }

    /// Permission to send one write, or None when the org is disconnected or its work no
    /// longer runs here. Waits while the node's hold on the org is too short for a write
    /// (until it is renewed).
    pub async fn begin_write(&self) -> Option<WritePermit<'_>> {
        if !self.ownership.writable(self.org_id).await {
            return None;
        }
        let guard = self.writes.read().await;
        (self.is_connected() && self.runs_here()).then_some(WritePermit { _guard: guard })
    }

    /// The last check before a write's request leaves: it would still end in time.
    pub fn may_send_write(&self) -> bool {
        self.ownership.may_write(self.org_id)
    }

    /// Why work is paused, if it is.
    pub fn pause(&self) -> Option<OrgPause> {
        self.pause.lock().as_ref().map(|p| p.shown.clone())
    }

    /// Whether work is held: paused, unless this caller may probe a refused key (one caller
    /// per `PROBE_EVERY`).
    pub fn holds_work(&self) -> bool {
        let mut pause = self.pause.lock();
        let Some(paused) = pause.as_mut() else {
            return false;
        };
        let probe = paused.shown.code == PauseReason::AuthFailed
            && paused.last_probe.elapsed() >= PROBE_EVERY;
        if probe {
            paused.last_probe = Instant::now();
        }
        !probe
    }

    /// Freshdesk answered a call: a refused key works again.
    pub fn call_succeeded(&self) {
        let refused = self
            .pause
            .lock()
            .as_ref()
            .is_some_and(|p| p.shown.code == PauseReason::AuthFailed);
        if refused {
            self.resume();
        }
    }

    /// Pause the org's Freshdesk work (logged once per pause).
    pub fn set_pause(&self, code: PauseReason, message: String) {
        let mut pause = self.pause.lock();
        if let Some(paused) = pause.as_mut().filter(|p| p.shown.code == code) {
            // Still refused (a probe): look again a full period later.
            paused.last_probe = Instant::now();
            return;
        }
        if pause.is_none() {
            self.metrics.orgs_paused.fetch_add(1, Ordering::Relaxed);
        }
        tracing::warn!(org_id = %self.org_id, reason = ?code, error = %message, "freshdesk work paused for the organization");
        *pause = Some(Paused {
            shown: OrgPause {
                code,
                message,
                at: Utc::now(),
            },
            last_probe: Instant::now(),
        });
    }

    /// Lift the pause. Returns whether there was one.
    pub fn resume(&self) -> bool {
        let lifted = self.pause.lock().take().is_some();
        if lifted {
            self.metrics.orgs_paused.fetch_sub(1, Ordering::Relaxed);
            tracing::info!(org_id = %self.org_id, "freshdesk work resumed for the organization");
        }
        lifted
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::SoleNode;

    #[tokio::test]
    async fn a_disconnect_waits_for_the_write_in_flight_and_refuses_new_ones() {
        let gate = Arc::new(OrgGate::new(
            OrgId::new(),
            true,
            Arc::default(),
            Arc::new(SoleNode),
        ));
        let permit = gate.begin_write().await.expect("connected");
        let disconnect = {
            let gate = gate.clone();
            tokio::spawn(async move {
                gate.set_connected(false);
                gate.writes_drained().await
            })
        };
        while gate.is_connected() {
            tokio::task::yield_now().await;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!disconnect.is_finished(), "waits for the write in flight");
        drop(permit);
        tokio::time::timeout(Duration::from_secs(5), disconnect)
            .await
            .expect("returns once the write ended")
            .unwrap();
        assert!(gate.begin_write().await.is_none());
    }

    #[test]
    fn a_pause_is_counted_once_and_lifted_once() {
        let metrics = Arc::new(EngineMetrics::default());
        let gate = OrgGate::new(OrgId::new(), true, metrics.clone(), Arc::new(SoleNode));
        gate.set_pause(PauseReason::AuthFailed, "401".into());
        gate.set_pause(PauseReason::AuthFailed, "401 again".into());
        assert_eq!(metrics.orgs_paused.load(Ordering::Relaxed), 1);
        assert_eq!(gate.pause().unwrap().message, "401");
        assert!(gate.resume());
        assert!(!gate.resume());
        assert_eq!(metrics.orgs_paused.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn a_refused_key_is_probed_once_a_period_and_lifted_by_any_answer() {
        let metrics = Arc::new(EngineMetrics::default());
        let gate = OrgGate::new(OrgId::new(), true, metrics.clone(), Arc::new(SoleNode));
        gate.set_pause(PauseReason::AuthFailed, "401".into());
        assert!(gate.holds_work(), "no probe right after the refusal");
        gate.pause.lock().as_mut().unwrap().last_probe -= PROBE_EVERY;
        assert!(!gate.holds_work(), "one caller probes");
        assert!(gate.holds_work(), "the others keep waiting");
        gate.call_succeeded();
        assert!(gate.pause().is_none());
        assert!(!gate.holds_work());
        assert_eq!(metrics.orgs_paused.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn a_disallowed_domain_is_never_probed_nor_lifted_by_a_call() {
        let gate = OrgGate::new(OrgId::new(), true, Arc::default(), Arc::new(SoleNode));
        gate.set_pause(PauseReason::DomainNotAllowed, "not allowed".into());
        gate.pause.lock().as_mut().unwrap().last_probe -= PROBE_EVERY;
        assert!(gate.holds_work());
        gate.call_succeeded();
        assert!(gate.pause().is_some());
    }
}
