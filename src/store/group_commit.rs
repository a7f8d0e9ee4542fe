//! Group commit: many writers wait for one flush. A caller registers its writes (a ticket
//! number) and waits until a completed flush covers it.
//!
//! The flushes run on one committer thread, detached from the callers: a caller that goes
//! away mid-wait (a client reset makes actix drop the request's future) abandons only its own
//! wait, never a flush half-way, so no later caller can be left waiting on a flush that
//! nobody runs. Writes of a caller that went away are flushed with the next group all the
//! same.
//!
//! The committer also knows whether writes can be made durable at all (`health`, shown by
//! `/readyz`): not while writes have waited for a flush, or a flush has run, longer than
//! `STUCK_AFTER`, nor after a failed flush until one succeeds again. After a failure it retries on its own, so a
//! service taken out of rotation recovers without traffic.

use super::{StoreError, StoreResult};
use parking_lot::{Condvar, Mutex};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// Writes waiting for a flush longer than this mean intake cannot make events durable.
pub const STUCK_AFTER: Duration = Duration::from_secs(5);
/// Pause between retries after a failed flush.
const RETRY_AFTER: Duration = Duration::from_secs(1);

/// Shared by every clone of the store; dropping it stops and joins the committer thread.
pub struct GroupCommit {
    shared: Arc<Shared>,
    /// Latest completed flush: (the highest ticket it covers, an error text if it failed).
    done: watch::Receiver<(u64, Option<String>)>,
    committer: Option<JoinHandle<()>>,
}

struct Shared {
    state: Mutex<State>,
    /// Signalled when a ticket is registered or the store closes.
    wake: Condvar,
    closed: AtomicBool,
    faults: Arc<FlushFaults>,
}

struct State {
    /// The last ticket handed out.
    registered: u64,
    /// Since when writes have waited for a flush to take them (None: none waits).
    waiting_since: Option<Instant>,
    /// Since when the running flush runs (None: none runs).
    flushing_since: Option<Instant>,
    /// Why the last flush failed (None: it succeeded).
    last_error: Option<String>,
}

/// Fault injection for tests of what the service does when the disk stalls or fails: while
/// set, the committer holds every flush (`stall`) or fails it (`fail`). The service never
/// sets these itself.
#[derive(Default)]
pub struct FlushFaults {
    stall: AtomicBool,
    fail: AtomicBool,
}

impl FlushFaults {
    /// Hold flushes until cleared.
    pub fn set_stall(&self, on: bool) {
        self.stall.store(on, Ordering::SeqCst);
    }

    /// Fail flushes until cleared.
    pub fn set_fail(&self, on: bool) {
        self.fail.store(on, Ordering::SeqCst);
    }
}

impl GroupCommit {
    /// Start the committer thread for `db`.
    pub fn start(db: sled::Db) -> StoreResult<Self> {
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                registered: 0,
                waiting_since: None,
                flushing_since: None,
                last_error: None,
            }),
            wake: Condvar::new(),
            closed: AtomicBool::new(false),
            faults: Arc::default(),
        });
        let (publish, done) = watch::channel((0, None));
        let committer = std::thread::Builder::new()
            .name("sled-committer".into())
            .spawn({
                let shared = shared.clone();
                move || commit_loop(&db, &shared, &publish)
            })
            .map_err(|e| StoreError::Corrupt(format!("cannot start the committer: {e}")))?;
        Ok(Self {
            shared,
            done,
            committer: Some(committer),
        })
    }

    /// Return once every write made before this call is durable. Dropping the future early
    /// abandons only the wait: the flush happens all the same.
    pub async fn flush(&self) -> StoreResult<()> {
        let mut done = self.done.clone();
        let mine = {
            let mut s = self.shared.state.lock();
            s.registered += 1;
            s.waiting_since.get_or_insert_with(Instant::now);
            s.registered
        };
        self.shared.wake.notify_one();
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
            if done.changed().await.is_err() {
                return Err(StoreError::Corrupt("the committer stopped".into()));
            }
        }
    }

    /// Whether writes can be made durable now; if not, why.
    pub fn health(&self) -> Result<(), String> {
        let s = self.shared.state.lock();
        let oldest = s.waiting_since.into_iter().chain(s.flushing_since).min();
        if let Some(since) = oldest.filter(|t| t.elapsed() > STUCK_AFTER) {
            return Err(format!(
                "writes have waited {} s for a flush to the disk",
                since.elapsed().as_secs()
            ));
        }
        match &s.last_error {
            Some(e) => Err(format!("the last flush to the disk failed: {e}")),
            None => Ok(()),
        }
    }

    /// The fault switches of this store's flushes (tests).
    pub fn faults(&self) -> Arc<FlushFaults> {
        self.shared.faults.clone()
    }
}

impl Drop for GroupCommit {
    fn drop(&mut self) {
        self.shared.closed.store(true, Ordering::SeqCst);
        {
            // Under the lock, so the committer is either waiting (and woken) or sees `closed`.
            let _s = self.shared.state.lock();
            self.shared.wake.notify_all();
        }
        if let Some(committer) = self.committer.take() {
            // The thread holds a handle on the database: joining it lets the store close.
            let _ = committer.join();
        }
    }
}

/// The committer: flush whatever is registered, publish the outcome, repeat; after a failure,
/// retry every `RETRY_AFTER` until a flush succeeds.
fn commit_loop(db: &sled::Db, shared: &Shared, publish: &watch::Sender<(u64, Option<String>)>) {
    let mut covered = 0;
    let mut s = shared.state.lock();
    loop {
        if shared.closed.load(Ordering::SeqCst) {
            return;
        }
        if s.registered == covered {
            if s.last_error.is_some() {
                shared.wake.wait_for(&mut s, RETRY_AFTER);
                if s.registered == covered && !shared.closed.load(Ordering::SeqCst) {
                    // Nobody is waiting: a probe flush, so health can recover without traffic.
                    s.last_error = flush(db, shared, &mut s).err();
                }
            } else {
                shared.wake.wait(&mut s);
            }
            continue;
        }
        let target = s.registered;
        s.waiting_since = None;
        s.last_error = flush(db, shared, &mut s).err();
        covered = target;
        publish.send_replace((covered, s.last_error.clone()));
    }
}

/// One flush of the whole database, with the state unlocked meanwhile (on the committer
/// thread: blocking is its job).
fn flush(
    db: &sled::Db,
    shared: &Shared,
    s: &mut parking_lot::MutexGuard<'_, State>,
) -> Result<(), String> {
    s.flushing_since = Some(Instant::now());
    let result = parking_lot::MutexGuard::unlocked(s, || flush_unlocked(db, shared));
    s.flushing_since = None;
    result
}

fn flush_unlocked(db: &sled::Db, shared: &Shared) -> Result<(), String> {
    let faults = &shared.faults;
    while faults.stall.load(Ordering::SeqCst) && !shared.closed.load(Ordering::SeqCst) {
        std::thread::sleep(Duration::from_millis(5));
    }
    if faults.fail.load(Ordering::SeqCst) {
        return Err("injected flush failure".into());
    }
    db.flush().map(drop).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::FutureExt;

    fn open() -> (tempfile::TempDir, sled::Db, GroupCommit) {
        let dir = tempfile::tempdir().unwrap();
        let db = sled::Config::new().path(dir.path()).open().unwrap();
        let commits = GroupCommit::start(db.clone()).unwrap();
        (dir, db, commits)
    }

    async fn until(what: &str, mut check: impl FnMut() -> bool) {
        let end = Instant::now() + Duration::from_secs(10);
        while !check() {
            assert!(Instant::now() < end, "timed out: {what}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    #[tokio::test]
    async fn a_flush_whose_caller_went_away_mid_flush_still_completes_and_later_flushes_too() {
        let (_dir, db, commits) = open();
        commits.faults().set_stall(true);
        db.insert("abandoned", "write").unwrap();
        // Registered and waiting on a stalled flush, then dropped: a client reset.
        let mut abandoned = Box::pin(commits.flush());
        assert!((&mut abandoned).now_or_never().is_none());
        drop(abandoned);
        let waiting = tokio::spawn({
            let done = commits.done.clone();
            async move {
                let mut done = done;
                done.wait_for(|(covered, _)| *covered >= 1)
                    .await
                    .map(|_| ())
            }
        });
        commits.faults().set_stall(false);
        waiting.await.unwrap().unwrap();
        db.insert("later", "write").unwrap();
        tokio::time::timeout(Duration::from_secs(10), commits.flush())
            .await
            .expect("the next flush completes")
            .unwrap();
        assert_eq!(commits.health(), Ok(()));
    }

    #[tokio::test]
    async fn a_failed_flush_is_reported_until_a_flush_succeeds_again_without_traffic() {
        let (_dir, _db, commits) = open();
        commits.flush().await.unwrap();
        commits.faults().set_fail(true);
        assert!(commits.flush().await.is_err());
        assert!(commits.health().unwrap_err().contains("failed"));
        commits.faults().set_fail(false);
        until("health recovers by itself", || commits.health().is_ok()).await;
        commits.flush().await.unwrap();
    }
}
