//! Injected API faults: latency, 500/503 errors, timeouts (504), forced 429s and 403s, and
//! writes applied then answered 504.
//!
//! The fault plan lives in the shared state and is consulted once per `/api/v2` call, under
//! the state lock, producing a [`FaultDecision`]; the gateway then sleeps and answers outside
//! the lock. Randomness comes from a seedable RNG so a failing run can be replayed.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::types::{FaultsConfig, Force403, Force429};

/// Default seed of the fault RNG (deterministic unless reseeded).
const DEFAULT_SEED: u64 = 0x5EED_FA17;

/// What happens to one call because of faults.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct FaultDecision {
    /// Wait this long before answering.
    pub latency_ms: u64,
    /// Answer 429 with this `Retry-After` (a forced 429).
    pub forced_429: Option<u64>,
    /// Answer 500/503 (after charging the call).
    pub error_status: Option<u16>,
    /// Hold the call this long, then answer 504.
    pub timeout_ms: Option<u64>,
    /// Answer 403 `access_denied` (after charging the call).
    pub forced_403: bool,
}

/// The fault plan.
#[derive(Debug)]
pub(crate) struct Faults {
    latency_ms: u64,
    error_rate: f64,
    timeout_rate: f64,
    timeout_ms: u64,
    force_429: Force429,
    force_403: Force403,
    timeout_after_write: u32,
    seed: u64,
    rng: StdRng,
}

impl Default for Faults {
    fn default() -> Self {
        Faults {
            latency_ms: 0,
            error_rate: 0.0,
            timeout_rate: 0.0,
            timeout_ms: 30_000,
            force_429: Force429::default(),
            force_403: Force403::default(),
            timeout_after_write: 0,
            seed: DEFAULT_SEED,
            rng: StdRng::seed_from_u64(DEFAULT_SEED),
        }
    }
}

impl Faults {
    /// Applies the fields present in `update`.
    pub fn update(&mut self, update: &FaultsConfig) -> Result<(), String> {
        for (name, rate) in [
            ("error_rate", update.error_rate),
            ("timeout_rate", update.timeout_rate),
        ] {
            if let Some(rate) = rate {
                if !(0.0..=1.0).contains(&rate) {
                    return Err(format!("{name} must be between 0 and 1"));
                }
            }
        }
        if let Some(v) = update.latency_ms {
            self.latency_ms = v;
        }
        if let Some(v) = update.error_rate {
            self.error_rate = v;
        }
        if let Some(v) = update.timeout_rate {
            self.timeout_rate = v;
        }
        if let Some(v) = update.timeout_ms {
            self.timeout_ms = v;
        }
        if let Some(v) = update.force_429 {
            self.force_429 = v;
        }
        if let Some(v) = &update.force_403 {
            self.force_403 = v.clone();
        }
        if let Some(v) = update.timeout_after_write {
            self.timeout_after_write = v;
        }
        if let Some(seed) = update.seed {
            self.seed = seed;
            self.rng = StdRng::seed_from_u64(seed);
        }
        Ok(())
    }

    /// The current plan, every field set.
    pub fn snapshot(&self) -> FaultsConfig {
        FaultsConfig {
            latency_ms: Some(self.latency_ms),
            error_rate: Some(self.error_rate),
            timeout_rate: Some(self.timeout_rate),
            timeout_ms: Some(self.timeout_ms),
            force_429: Some(self.force_429),
            force_403: Some(self.force_403.clone()),
            timeout_after_write: Some(self.timeout_after_write),
            seed: Some(self.seed),
        }
    }

    /// Whether a write that was just applied is answered 504 (consumes one, if any are left).
    pub fn time_out_applied_write(&mut self) -> bool {
        let time_out = self.timeout_after_write > 0;
        self.timeout_after_write = self.timeout_after_write.saturating_sub(1);
        time_out
    }

    /// Decides the fate of one call to `path` (consumes one forced 429 or 403, if any are
    /// left).
    pub fn decide(&mut self, path: &str) -> FaultDecision {
        let mut decision = FaultDecision {
            latency_ms: self.latency_ms,
            ..FaultDecision::default()
        };
        if self.force_429.count > 0 {
            self.force_429.count -= 1;
            decision.forced_429 = Some(self.force_429.retry_after_secs.max(1));
            return decision;
        }
        let denied = self.force_403.path.as_deref().is_none_or(|p| p == path);
        if self.force_403.count > 0 && denied {
            self.force_403.count -= 1;
            decision.forced_403 = true;
            return decision;
        }
        if self.timeout_rate > 0.0 && self.rng.gen_bool(self.timeout_rate) {
            decision.timeout_ms = Some(self.timeout_ms);
        } else if self.error_rate > 0.0 && self.rng.gen_bool(self.error_rate) {
            decision.error_status = Some(if self.rng.gen_bool(0.5) { 500 } else { 503 });
        }
        decision
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forced_429s_are_counted_down() {
        let mut f = Faults::default();
        f.update(&FaultsConfig {
            force_429: Some(Force429 {
                count: 2,
                retry_after_secs: 7,
            }),
            ..FaultsConfig::default()
        })
        .unwrap();
        assert_eq!(f.decide("/api/v2/tickets").forced_429, Some(7));
        assert_eq!(f.decide("/api/v2/tickets").forced_429, Some(7));
        assert_eq!(f.decide("/api/v2/tickets"), FaultDecision::default());
    }

    #[test]
    fn forced_403s_hit_only_their_path() {
        let mut f = Faults::default();
        f.update(&FaultsConfig {
            force_403: Some(Force403 {
                count: 1,
                path: Some("/api/v2/tickets".into()),
            }),
            ..FaultsConfig::default()
        })
        .unwrap();
        assert!(!f.decide("/api/v2/tickets/1").forced_403);
        assert!(f.decide("/api/v2/tickets").forced_403);
        assert!(!f.decide("/api/v2/tickets").forced_403);
    }

    #[test]
    fn writes_timed_out_after_applying_are_counted_down() {
        let mut f = Faults::default();
        assert!(!f.time_out_applied_write());
        f.update(&FaultsConfig {
            timeout_after_write: Some(1),
            ..FaultsConfig::default()
        })
        .unwrap();
        assert!(f.time_out_applied_write());
        assert!(!f.time_out_applied_write());
    }

    #[test]
    fn certain_errors_always_fire_and_rates_are_checked() {
        let mut f = Faults::default();
        f.update(&FaultsConfig {
            error_rate: Some(1.0),
            ..FaultsConfig::default()
        })
        .unwrap();
        assert!(f.decide("/api/v2/tickets").error_status.is_some());
        assert!(f
            .update(&FaultsConfig {
                timeout_rate: Some(1.5),
                ..FaultsConfig::default()
            })
            .is_err());
    }
}
