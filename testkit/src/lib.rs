//! What the test suites (`tests/`) and the benches (`benches/`) share:
//!
//! - [`sim`]: the simulator's seed data the tests speak of (agents, keys, groups, the marker
//!   field) and the builtin FAQ question;
//! - [`process`]: `ticketsync serve` as a child process ([`ServiceProcess`]) and a deadline
//!   for any child ([`process::wait_with_timeout`]); the binary's
//!   path is a parameter, since only the root package's tests and benches see
//!   `env!("CARGO_BIN_EXE_ticketsync")`;
//! - [`pg`]: a real PostgreSQL for the tests ([`pg::TestDatabase`], [`pg::PgCluster`]) and
//!   the backend the black-box suites run on ([`pg::TestBackend`]);
//! - [`wait`]: [`eventually`] (poll until a condition holds, with a deadline) and
//!   [`assert_quiet_for`] (a condition keeps holding for a while: "nothing more happens");
//! - [`free_port`], [`json_response`], [`ai_posts`], [`last_request_seq`],
//!   [`applied_replies`], [`seed_from_env`].
//!
//! The in-process service (`BackgroundService`) stays in `tests/blackbox/harness.rs`: it
//! needs the service crate, which this crate does not depend on.

pub mod pg;
pub mod process;
pub mod sim;
pub mod wait;

pub use process::ServiceProcess;
pub use wait::{assert_quiet_for, eventually, Polled};

use reqwest::StatusCode;
use serde_json::Value;
use std::collections::BTreeMap;
use std::net::TcpListener;

/// A port on 127.0.0.1 that was free a moment ago (bound on port 0, then released): fine on
/// loopback, and it can be reused for every start of a service so URLs stay valid.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port on 127.0.0.1")
}

/// A response's status and JSON body (`Null` when empty or not JSON).
pub async fn json_response(res: reqwest::Response) -> (StatusCode, Value) {
    let status = res.status();
    let bytes = res.bytes().await.unwrap_or_default();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

/// Conversations the AI agent ([`sim::AI_AGENT_ID`]) posted on a simulator ticket:
/// (private, body_text).
pub async fn ai_posts(simc: &freshdesk_sim::SimClient, ticket: u64) -> Vec<(bool, String)> {
    let t = simc.get_ticket(ticket).await.expect("simulator ticket");
    t["conversations"]
        .as_array()
        .expect("conversations")
        .iter()
        .filter(|c| c["user_id"] == sim::AI_AGENT_ID)
        .map(|c| {
            (
                c["private"].as_bool().expect("private is a boolean"),
                c["body_text"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

/// The sequence number of the simulator's last recorded API request (0 when none).
pub async fn last_request_seq(simc: &freshdesk_sim::SimClient) -> u64 {
    simc.requests()
        .await
        .expect("simulator requests")
        .last()
        .map(|r| r.seq)
        .unwrap_or(0)
}

/// `POST /api/v2/tickets/{id}/reply` requests the simulator applied (2xx), per ticket.
pub fn applied_replies(requests: &[freshdesk_sim::RecordedRequest]) -> BTreeMap<u64, usize> {
    let mut counts = BTreeMap::new();
    for r in requests {
        if r.method == "POST" && (200..300).contains(&r.status) {
            if let Some(id) = reply_ticket(&r.path) {
                *counts.entry(id).or_default() += 1;
            }
        }
    }
    counts
}

/// The ticket of a `/api/v2/tickets/{id}/reply` path.
fn reply_ticket(path: &str) -> Option<u64> {
    path.strip_prefix("/api/v2/tickets/")?
        .strip_suffix("/reply")?
        .parse()
        .ok()
}

/// A test's RNG seed: the environment variable `var` when set to a number (to replay a run),
/// else the test's fixed default.
pub fn seed_from_env(var: &str, default: u64) -> u64 {
    std::env::var(var)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}
