//! The `ticketsync` binary: `serve` (default), `sim`, `demo`, `migrate-store`, `openapi`.

use clap::{Parser, Subcommand};
use secrecy::ExposeSecret;
use std::path::{Path, PathBuf};
use std::time::Duration;
use ticketsync::config::Settings;
use ticketsync::demo::{self, DemoOptions};
use ticketsync::startup::Application;
use ticketsync::store::migrate;
use ticketsync::store::postgres::PgOptions;
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
    /// Copy a sled deployment into PostgreSQL (stop every node first; safe to run again).
    MigrateStore {
        /// The sled deployment's data directory (its `storage.path`).
        #[arg(long)]
        from_sled: PathBuf,
        /// The PostgreSQL database, `postgres://user@host:port/database`.
        #[arg(long)]
        to_postgres: String,
        /// Shards of a database set up now (`cluster.shards` of the nodes that will use it).
        #[arg(long, default_value_t = 64)]
        shards: u32,
    },
    /// Print the OpenAPI 3.1 document of the HTTP API (the one served at
    /// /api/v1/openapi.json).
    Openapi {
        /// Print the reference in Markdown instead (docs/api.md).
        #[arg(long)]
        markdown: bool,
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
        Some(Command::MigrateStore {
            from_sled,
            to_postgres,
            shards,
        }) => migrate_store(&from_sled, to_postgres, shards),
        Some(Command::Openapi { markdown }) => {
            let doc = ticketsync::http::openapi::document();
            if markdown {
                print!("{}", ticketsync::http::openapi::markdown(&doc));
            } else {
                println!("{}", serde_json::to_string_pretty(&doc)?);
            }
            Ok(())
        }
    }
}

fn migrate_store(from_sled: &Path, url: String, shards: u32) -> anyhow::Result<()> {
    let options = PgOptions {
        url,
        max_connections: 4,
        statement_timeout: Duration::from_secs(60),
    };
    let copied = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(migrate::sled_to_postgres(from_sled, &options, shards))?;
    println!("Copied {copied} from {}.", from_sled.display());
    println!(
        "Every node on this database needs storage.encryption_key = the key this sled \
         deployment used (its configured key, or the contents of {}).",
        from_sled.join("secret.key").display()
    );
    Ok(())
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
