//! Hostile input and security tests: malformed, truncated, oversized and mistyped bodies,
//! forged webhook tokens, the admin token guard, the domain guard end to end, and secrets in
//! responses, storage and logs. Each HTTP property run shares one service and simulator
//! across its cases; the parsers are exercised directly with many more cases.

#[allow(dead_code, unused_imports)]
#[path = "../blackbox/harness.rs"]
mod harness;

mod fixture;
mod wire;

mod admin_input;
mod auth;
mod domain_guard;
mod parsers;
mod secrets;
mod webhook_input;
