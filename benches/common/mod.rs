//! Shared by the benchmarks (each bench compiles this module on its own and uses only some of
//! it):
//!
//! - `backend`: sled or a fresh PostgreSQL database per phase, and what PostgreSQL's own
//!   processes spend;
//! - `world`: the simulator, the real `ticketsync` binary as a child process, the admin API
//!   and a connected org: what a bench sets up;
//! - `load`: a closed-loop HTTP load generator;
//! - `measure`: the child's resident memory and CPU time from `/proc`, durability system
//!   calls and CPU profiles with `perf`;
//! - `report`: the machine report, percentiles and tables.
//!
//! Benchmarks measure and print; they never assert on timing.

#![allow(dead_code, unused_imports)]

mod backend;
mod load;
mod measure;
mod report;
mod world;

pub use backend::*;
pub use load::*;
pub use measure::*;
pub use report::*;
pub use world::*;

use std::process::Command;

pub use testkit::{
    free_port, last_request_seq,
    sim::{AI_AGENT_ID, AI_KEY, FAQ_QUESTION},
};

/// The admin token every benchmarked service is started with.
pub const ADMIN_TOKEN: &str = "bench-admin-token";
/// The release binary cargo built for this bench (`target/release/ticketsync`).
pub const BINARY: &str = env!("CARGO_BIN_EXE_ticketsync");

/// The service binary the benches run: `TICKETSYNC_BENCH_BIN` when set (an older build kept
/// aside, to compare two builds in one run on a busy machine, or a wrapper script that runs
/// the service under a profiler), else [`BINARY`].
pub fn service_binary() -> String {
    std::env::var("TICKETSYNC_BENCH_BIN").unwrap_or_else(|_| BINARY.to_string())
}
/// The repository's configuration (the service's embedded defaults).
pub const CONFIG_TOML: &str = include_str!("../../config.toml");

/// An integer knob from the environment.
pub fn env_u64(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(v) => v
            .replace('_', "")
            .parse()
            .unwrap_or_else(|_| panic!("{name} must be a whole number, got {v:?}")),
        Err(_) => default,
    }
}

/// A list of integers from the environment (`"0,100"`).
pub fn env_list(name: &str, default: &[u64]) -> Vec<u64> {
    match std::env::var(name) {
        Ok(v) => v
            .split(',')
            .filter(|s| !s.trim().is_empty())
            .map(|s| {
                s.trim()
                    .parse()
                    .unwrap_or_else(|_| panic!("{name}: {s:?} is not a whole number"))
            })
            .collect(),
        Err(_) => default.to_vec(),
    }
}

/// The trimmed stdout of `sh -c cmd`, or the error in parentheses.
fn sh(cmd: &str) -> String {
    Command::new("sh")
        .arg("-c")
        .arg(cmd)
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim_end().to_string())
        .unwrap_or_else(|e| format!("({cmd}: {e})"))
}
