//! The `ticketsync` binary: `serve` (default), `sim`, `demo`.

use clap::{Parser, Subcommand};
use secrecy::ExposeSecret;
use std::path::PathBuf;
use ticketsync::config::Settings;
use ticketsync::demo::{self, DemoOptions};
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
    /// Show the whole flow without a Freshdesk account: simulator and service in-process,
    /// three customer tickets, and the transcript of what the AI did with them.
    Demo {
        /// Port of the service (127.0.0.1).
        #[arg(long, default_value_t = 8080, value_parser = clap::value_parser!(u16).range(1..))]
        port: u16,
        /// Port of the Freshdesk simulator (127.0.0.1).
        #[arg(long, default_value_t = 9000, value_parser = clap::value_parser!(u16).range(1..))]
        sim_port: u16,
        /// Keep the service and the simulator running after the transcript, until Ctrl-C.
        #[arg(long)]
        keep_running: bool,
    },
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    if matches!(cli.command, Some(Command::Demo { .. })) {
        demo::quiet_logs_by_default();
    }
    telemetry::init();
    match cli.command {
        None => serve(PathBuf::from("config.toml")),
        Some(Command::Serve { config }) => serve(config),
        Some(Command::Sim { port }) => {
            freshdesk_sim::run_blocking(freshdesk_sim::SimConfig {
                port,
                ..Default::default()
            })?;
            Ok(())
        }
        Some(Command::Demo {
            port,
            sim_port,
            keep_running,
        }) => demo::run(DemoOptions {
            port,
            sim_port,
            keep_running,
        }),
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
                "Generated admin token (stored with the data, shown only now): {}",
                token.expose_secret()
            );
        }
        tracing::info!(port = app.port(), "ticketsync listening");
        let handle = app.server_handle();
        actix_web::rt::spawn(async move {
            // SIGTERM (an orchestrator stopping the node) or Ctrl-C: stop serving, then the
            // node releases its leases so other nodes take its orgs at once.
            let mut term =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                    .expect("a SIGTERM handler");
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            tracing::info!("shutting down");
            handle.stop(true).await;
        });
        app.run_until_stopped().await?;
        anyhow::Ok(())
    })
}
