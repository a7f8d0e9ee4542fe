//! `freshdesk-sim`: runs the Freshdesk simulator in the foreground.
//!
//! `freshdesk-sim --port 9000` serves the Freshdesk API at `http://127.0.0.1:9000/api/v2` and
//! the control API at `/_sim` until Ctrl-C.

use clap::Parser;
use freshdesk_sim::{run_blocking, SimConfig};

/// A contract-faithful Freshdesk API simulator that also plays the automation rules.
#[derive(Debug, Parser)]
#[command(name = "freshdesk-sim", version)]
struct Args {
    /// Port on 127.0.0.1 (0 picks a free one).
    #[arg(long, default_value_t = 9000)]
    port: u16,
    /// Account budget in credits per minute.
    #[arg(long, default_value_t = SimConfig::default().rate_limit_per_min)]
    rate_limit_per_min: u32,
    /// Highest page number `GET /api/v2/tickets` serves.
    #[arg(long, default_value_t = SimConfig::default().max_pages)]
    max_pages: u32,
}

fn main() -> std::io::Result<()> {
    let args = Args::parse();
    run_blocking(SimConfig {
        port: args.port,
        rate_limit_per_min: args.rate_limit_per_min,
        max_pages: args.max_pages,
    })
}
