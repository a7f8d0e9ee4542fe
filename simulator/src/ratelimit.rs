//! The account's per-minute API budget, and the endpoint sub-limits.
//!
//! Freshdesk counts credits per account in a fixed one-minute window: the window starts with
//! the first call after the previous one expired. A call costs 1 credit plus 2 per `include=`
//! value. A call that does not fit in what is left is refused with 429 and `Retry-After` set to
//! the seconds until the window resets (at least 1); refused calls cost nothing.
//!
//! Some endpoints also have their own per-minute limit (Growth: Tickets List 20, Ticket Update
//! 80), counted in calls, in a window of their own, and refused the same way. Freshdesk sends
//! no header for them. They are off unless configured (`POST /_sim/config`).

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
        self.check(limit, cost, now)?;
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

    /// Whether `cost` credits fit in what is left of `limit`; if not, how long to wait.
    pub fn check(&mut self, limit: u32, cost: u32, now: Instant) -> Result<(), u64> {
        self.roll(now);
        if self.used.saturating_add(cost) > limit {
            return Err(self.retry_after(now));
        }
        Ok(())
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

/// An endpoint with a sub-limit of its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Endpoint {
    /// `GET /api/v2/tickets`.
    TicketsList,
    /// `PUT /api/v2/tickets/{id}`.
    TicketUpdate,
}

impl Endpoint {
    /// The sub-limited endpoint a request goes to, if any.
    pub fn of(method: &str, path: &str) -> Option<Self> {
        let rest = path.strip_prefix("/api/v2/tickets")?;
        match (method, rest) {
            ("GET", "" | "/") => Some(Self::TicketsList),
            ("PUT", id) if id.len() > 1 && id[1..].bytes().all(|b| b.is_ascii_digit()) => {
                Some(Self::TicketUpdate)
            }
            _ => None,
        }
    }
}

/// Per-endpoint limits (calls per minute, 0 = none) and their windows.
#[derive(Debug, Default)]
pub(crate) struct SubLimits {
    pub tickets_list_per_min: u32,
    pub ticket_update_per_min: u32,
    list: RateWindow,
    update: RateWindow,
}

impl SubLimits {
    fn window(&mut self, endpoint: Endpoint) -> (u32, &mut RateWindow) {
        match endpoint {
            Endpoint::TicketsList => (self.tickets_list_per_min, &mut self.list),
            Endpoint::TicketUpdate => (self.ticket_update_per_min, &mut self.update),
        }
    }

    /// Whether one more call to `endpoint` fits; if not, the `Retry-After` seconds.
    pub fn check(&mut self, endpoint: Endpoint, now: Instant) -> Result<(), u64> {
        match self.window(endpoint) {
            (0, _) => Ok(()),
            (limit, window) => window.check(limit, 1, now),
        }
    }

    /// Count one call to `endpoint` (after `check` said it fits).
    pub fn charge(&mut self, endpoint: Endpoint, now: Instant) {
        if let (limit @ 1.., window) = self.window(endpoint) {
            // Checked just before under the same lock: it fits.
            let _ = window.charge(limit, 1, now);
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
    fn a_sub_limit_refuses_its_endpoint_only_and_is_off_by_default() {
        let t0 = Instant::now();
        let mut limits = SubLimits::default();
        assert!((0..100).all(|_| {
            let fits = limits.check(Endpoint::TicketsList, t0).is_ok();
            limits.charge(Endpoint::TicketsList, t0);
            fits
        }));
        limits.tickets_list_per_min = 2;
        for _ in 0..2 {
            limits.check(Endpoint::TicketsList, t0).unwrap();
            limits.charge(Endpoint::TicketsList, t0);
        }
        assert_eq!(
            limits.check(Endpoint::TicketsList, t0 + Duration::from_secs(15)),
            Err(45)
        );
        assert!(limits.check(Endpoint::TicketUpdate, t0).is_ok());
        assert!(limits
            .check(Endpoint::TicketsList, t0 + Duration::from_secs(60))
            .is_ok());
    }

    #[test]
    fn list_and_update_calls_are_recognised() {
        assert_eq!(
            Endpoint::of("GET", "/api/v2/tickets"),
            Some(Endpoint::TicketsList)
        );
        assert_eq!(
            Endpoint::of("PUT", "/api/v2/tickets/12"),
            Some(Endpoint::TicketUpdate)
        );
        assert_eq!(Endpoint::of("GET", "/api/v2/tickets/12"), None);
        assert_eq!(Endpoint::of("POST", "/api/v2/tickets/12/reply"), None);
    }

    #[test]
    fn includes_cost_two_credits_each() {
        let q = vec![("include".to_string(), "conversations,requester".to_string())];
        assert_eq!(credits(&q), 5);
        assert_eq!(credits(&[]), 1);
    }
}
