//! Waiting without fixed sleeps: [`eventually`] polls until a condition holds, with a
//! deadline; [`assert_quiet_for`] checks that a condition keeps holding for a while.

use std::future::Future;
use std::time::{Duration, Instant};

/// How often both helpers poll.
const POLL: Duration = Duration::from_millis(50);

/// What a poll returns: done with a value, or not yet (with a description of what is still
/// missing, for the panic message).
pub trait Polled {
    type Value;
    fn into_result(self) -> Result<Self::Value, String>;
}

impl<T> Polled for Option<T> {
    type Value = T;
    fn into_result(self) -> Result<T, String> {
        self.ok_or_else(String::new)
    }
}

impl<T> Polled for Result<T, String> {
    type Value = T;
    fn into_result(self) -> Result<T, String> {
        self
    }
}

impl Polled for bool {
    type Value = ();
    fn into_result(self) -> Result<(), String> {
        if self {
            Ok(())
        } else {
            Err(String::new())
        }
    }
}

/// Poll `check` (50 ms apart) until it is done (`Some`, `Ok`, `true`) or `timeout` passes;
/// the panic names `what` and carries the last poll's description.
pub async fn eventually<P, F, Fut>(what: &str, timeout: Duration, mut check: F) -> P::Value
where
    P: Polled,
    F: FnMut() -> Fut,
    Fut: Future<Output = P>,
{
    let deadline = Instant::now() + timeout;
    loop {
        match check().await.into_result() {
            Ok(v) => return v,
            Err(last) => assert!(
                Instant::now() < deadline,
                "timed out after {timeout:?} waiting for {what}{}{last}",
                if last.is_empty() { "" } else { ": " }
            ),
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Assert that `check` holds (`Some`, `Ok`, `true`) at every poll (50 ms apart) for
/// `duration`, the first poll at once and the last at its end: for "nothing more happens"
/// checks. The panic names `what`, the time it held and the failed poll's description.
pub async fn assert_quiet_for<P, F, Fut>(duration: Duration, what: &str, mut check: F)
where
    P: Polled,
    F: FnMut() -> Fut,
    Fut: Future<Output = P>,
{
    let started = Instant::now();
    let end = started + duration;
    loop {
        if let Err(last) = check().await.into_result() {
            panic!(
                "{what} stopped holding after {:?} of {duration:?}{}{last}",
                started.elapsed(),
                if last.is_empty() { "" } else { ": " }
            );
        }
        let now = Instant::now();
        if now >= end {
            return;
        }
        tokio::time::sleep(POLL.min(end - now)).await;
    }
}
