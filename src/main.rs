//! The `ticketsync` binary: `serve` (default), `sim`.

use clap::{Parser, Subcommand};
use secrecy::ExposeSecret;
use std::path::PathBuf;
use ticketsync::config::Settings;
use ticketsync::startup::Application;
use ticketsync::telemetry;

#[derive(Parser)]
#[command(
    name = "ticketsync",
    version,
    about = "An AI support agent on top of Freshdesk"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the service (the default).
    Serve {
        /// Configuration file.
        #[arg(long, default_value = "config.toml")]
        config: PathBuf,
    },
    /// Run the Freshdesk simulator standalone.
    Sim {
        /// Port to listen on (127.0.0.1).
        #[arg(long, default_value_t = 9000)]
        port: u16,
    },
}

fn main() -> anyhow::Result<()> {
    telemetry::init();
    match Cli::parse().command {
        None => serve(PathBuf::from("config.toml")),
        Some(Command::Serve { config }) => serve(config),
        Some(Command::Sim { port }) => {
            freshdesk_sim::run_blocking(freshdesk_sim::SimConfig {
                port,
                ..Default::default()
            })?;
            Ok(())
        }
    }
}

fn serve(config: PathBuf) -> anyhow::Result<()> {
    let settings = Settings::load(&config)?;
    actix_web::rt::System::new().block_on(async move {
        let app = Application::build(settings).await?;
        let (token, generated) = app.admin_token();
        if generated {
            // Printed once, on the start that generated it; never logged.
            println!(
                "Generated admin token (stored in the data directory, shown only now): {}",
                token.expose_secret()
            );
        }
        tracing::info!(port = app.port(), "ticketsync listening");
        let handle = app.server_handle();
        actix_web::rt::spawn(async move {
            let _ = tokio::signal::ctrl_c().await;
            tracing::info!("shutting down");
            handle.stop(true).await;
        });
        app.run_until_stopped().await?;
        anyhow::Ok(())
    })
}
