//! The account's per-minute API budget.
//!
//! Freshdesk counts credits per account in a fixed one-minute window: the window starts with
//! the first call after the previous one expired. A call costs 1 credit plus 2 per `include=`
//! value. A call that does not fit in what is left is refused with 429 and `Retry-After` set to
//! the seconds until the window resets (at least 1); refused calls cost nothing.

use std::time::{Duration, Instant};

const WINDOW: Duration = Duration::from_secs(60);

/// Values of the `X-RateLimit-*` headers for one answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RateHeaders {
    pub total: u32,
    pub remaining: u32,
    pub used_current: u32,
}

/// The current window.
#[derive(Debug, Default)]
pub(crate) struct RateWindow {
    started: Option<Instant>,
    used: u32,
}

impl RateWindow {
    /// Charges `cost` credits against `limit` or says how long to wait.
    pub fn charge(&mut self, limit: u32, cost: u32, now: Instant) -> Result<RateHeaders, u64> {
        self.roll(now);
        if self.used.saturating_add(cost) > limit {
            return Err(self.retry_after(now));
        }
        if self.started.is_none() {
            self.started = Some(now);
        }
        self.used += cost;
        Ok(RateHeaders {
            total: limit,
            remaining: limit - self.used,
            used_current: cost,
        })
    }

    /// Headers for an answer that charged nothing (429s).
    pub fn peek(&mut self, limit: u32, now: Instant) -> RateHeaders {
        self.roll(now);
        RateHeaders {
            total: limit,
            remaining: limit.saturating_sub(self.used),
            used_current: 0,
        }
    }

    /// Seconds until the window resets, at least 1.
    pub fn retry_after(&self, now: Instant) -> u64 {
        let left = match self.started {
            Some(started) => WINDOW.saturating_sub(now.duration_since(started)),
            None => WINDOW,
        };
        // Round up: a client that waits this long finds a fresh window.
        let secs = left.as_secs() + u64::from(left.subsec_nanos() > 0);
        secs.max(1)
    }

    fn roll(&mut self, now: Instant) {
        if self
            .started
            .is_some_and(|started| now.duration_since(started) >= WINDOW)
        {
            self.started = None;
            self.used = 0;
        }
    }
}

/// Credits of a call: 1, plus 2 per comma-separated `include=` value.
pub(crate) fn credits(query: &[(String, String)]) -> u32 {
    let includes = query
        .iter()
        .filter(|(k, _)| k == "include")
        .flat_map(|(_, v)| v.split(','))
        .filter(|v| !v.trim().is_empty())
        .count() as u32;
    1 + 2 * includes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_refuses_once_spent_and_resets_after_a_minute() {
        let t0 = Instant::now();
        let mut w = RateWindow::default();
        assert_eq!(w.charge(3, 1, t0).unwrap().remaining, 2);
        assert_eq!(
            w.charge(3, 2, t0 + Duration::from_secs(10))
                .unwrap()
                .remaining,
            0
        );
        assert_eq!(w.charge(3, 1, t0 + Duration::from_secs(20)), Err(40));
        assert_eq!(w.charge(3, 1, t0 + Duration::from_millis(59_500)), Err(1));
        assert_eq!(
            w.charge(3, 1, t0 + Duration::from_secs(60))
                .unwrap()
                .remaining,
            2
        );
    }

    #[test]
    fn includes_cost_two_credits_each() {
        let q = vec![("include".to_string(), "conversations,requester".to_string())];
        assert_eq!(credits(&q), 5);
        assert_eq!(credits(&[]), 1);
    }
}
