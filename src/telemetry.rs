//! Logging setup: `tracing` to stderr, filtered by `RUST_LOG` (default `info`), plain text or
//! JSON (`TICKETSYNC_LOG_FORMAT=json`). Plain text is coloured only when stderr is a terminal:
//! escape codes in a log file or a collector are noise, and styling every field of every line
//! was a measurable part of each request's CPU (BENCHMARKS.md, issue 13).

use std::io::IsTerminal;
use tracing_subscriber::{fmt, EnvFilter};

/// Install the global subscriber. Safe to call more than once (later calls do nothing).
pub fn init() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let json = std::env::var("TICKETSYNC_LOG_FORMAT").is_ok_and(|f| f == "json");
    let builder = fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    let _ = if json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}
