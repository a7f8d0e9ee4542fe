//! Group commit: many writers wait for one flush. A caller registers its writes (a ticket
//! number), then either becomes the leader and flushes everything registered so far, or
//! waits for a leader's flush that started after its registration.

use super::{StoreError, StoreResult};
use parking_lot::Mutex;
use tokio::sync::watch;

/// Shared by every clone of the store.
pub struct GroupCommit {
    state: Mutex<State>,
    /// Latest completed flush: (the highest ticket it covers, an error text if it failed).
    done: watch::Sender<(u64, Option<String>)>,
}

struct State {
    registered: u64,
    leader: bool,
}

impl Default for GroupCommit {
    fn default() -> Self {
        Self {
            state: Mutex::new(State {
                registered: 0,
                leader: false,
            }),
            done: watch::channel((0, None)).0,
        }
    }
}

impl GroupCommit {
    /// Return once every write made before this call is durable.
    pub async fn flush(&self, db: &sled::Db) -> StoreResult<()> {
        let mut done = self.done.subscribe();
        let mine = {
            let mut s = self.state.lock();
            s.registered += 1;
            s.registered
        };
        loop {
            {
                let (covered, error) = &*done.borrow_and_update();
                if *covered >= mine {
                    return match error {
                        None => Ok(()),
                        Some(e) => Err(StoreError::Corrupt(format!("flush failed: {e}"))),
                    };
                }
            }
            let lead = {
                let mut s = self.state.lock();
                if s.leader {
                    None
                } else {
                    s.leader = true;
                    Some(s.registered)
                }
            };
            match lead {
                Some(target) => {
                    let result = db.flush_async().await;
                    self.state.lock().leader = false;
                    let error = result.as_ref().err().map(|e| e.to_string());
                    self.done.send_replace((target, error));
                    result?;
                    if target >= mine {
                        return Ok(());
                    }
                }
                None => {
                    if done.changed().await.is_err() {
                        return Err(StoreError::Corrupt("group commit closed".into()));
                    }
                }
            }
        }
    }
}
