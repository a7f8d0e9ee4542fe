//! `freshdesk-sim`: a contract-faithful fake of the Freshdesk v2 API subset ticketsync uses,
//! plus Freshdesk's automation rules that POST webhooks.
//!
//! It is a real actix-web HTTP server. [`spawn`] runs it on its own thread with its own actix
//! system, so tests and benches on any runtime (or none) can use it; [`run_blocking`] runs it
//! in the foreground (the `freshdesk-sim` binary). Tests drive it through [`SimClient`].
//!
//! Modules:
//! - `api`: the Freshdesk API (`/api/v2`): gateway (faults, rate limit, auth, recording) and
//!   routes;
//! - `control`: the control API (`/_sim`);
//! - `state`, `tickets`: the simulated account and the ticket operations;
//! - `model`: entity shapes and seed data; `html`: body text derivation;
//! - `webhooks`: automation rules and asynchronous delivery; `faults`, `ratelimit`;
//! - `client`: [`SimClient`]; `types`: the control API's wire types.

mod api;
mod client;
mod control;
mod errors;
mod faults;
mod html;
mod model;
mod ratelimit;
mod state;
mod tickets;
pub mod types;
mod webhooks;

use std::net::SocketAddr;
use std::sync::Arc;
use std::thread::JoinHandle;

use actix_web::dev::{Server, ServerHandle};
use actix_web::{web, App, HttpResponse, HttpServer};
use tokio::sync::mpsc;

pub use client::{SimClient, SimClientError, SimResult};
pub use types::*;
pub use webhooks::{DEFAULT_CREATED_TEMPLATE, DEFAULT_UPDATED_TEMPLATE};

use state::Sim;

/// HTTP worker threads of one simulator.
const WORKERS: usize = 2;

/// Seeded API keys (see the seed data in the README of this crate).
pub const ADMIN_KEY: &str = "sim-admin-key";
/// Key of agent 43 "Plain Agent" (role Agent only: `GET /roles` answers 403).
pub const AGENT_KEY: &str = "sim-agent-key";
/// Id of the seeded AI agent ("OpenCX AI", Account Administrator).
pub const AI_AGENT_ID: u64 = 42;

/// How to start a simulator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimConfig {
    /// Port on 127.0.0.1; 0 picks a free one.
    pub port: u16,
    /// Account budget in credits per minute (Freshdesk Enterprise: 700).
    pub rate_limit_per_min: u32,
    /// Highest page `GET /tickets` serves (Freshdesk: 300).
    pub max_pages: u32,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            port: 0,
            rate_limit_per_min: 700,
            max_pages: 300,
        }
    }
}

/// A running simulator. Dropping it (or [`SimHandle::stop`]) stops the server and joins its
/// thread.
#[derive(Debug)]
pub struct SimHandle {
    addr: SocketAddr,
    server: ServerHandle,
    thread: Option<JoinHandle<()>>,
}

impl SimHandle {
    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `127.0.0.1:PORT`: the "Freshdesk domain" to configure in the code under test.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.addr.port())
    }

    /// `http://127.0.0.1:PORT`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.host())
    }

    /// A control-API client for this simulator.
    pub fn client(&self) -> SimClient {
        SimClient::new(self.base_url())
    }

    /// Stops the server and waits for its thread.
    pub fn stop(self) {
        drop(self);
    }
}

impl Drop for SimHandle {
    fn drop(&mut self) {
        // `stop` sends the command right away; its future only waits for the acknowledgement,
        // which joining the thread waits for anyway.
        drop(self.server.stop(false));
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Starts a simulator on its own thread and actix system; returns once it is bound.
pub fn spawn(config: SimConfig) -> std::io::Result<SimHandle> {
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let thread = std::thread::Builder::new()
        .name("freshdesk-sim".into())
        .spawn(move || {
            actix_rt::System::new().block_on(async move {
                match start(&config, false) {
                    Ok((server, addr)) => {
                        let _ = ready_tx.send(Ok((server.handle(), addr)));
                        if let Err(err) = server.await {
                            tracing::error!(error = %err, "freshdesk simulator stopped with an error");
                        }
                    }
                    Err(err) => {
                        let _ = ready_tx.send(Err(err));
                    }
                }
            });
        })?;
    match ready_rx.recv() {
        Ok(Ok((server, addr))) => Ok(SimHandle {
            addr,
            server,
            thread: Some(thread),
        }),
        Ok(Err(err)) => {
            let _ = thread.join();
            Err(err)
        }
        Err(_) => {
            let _ = thread.join();
            Err(std::io::Error::other(
                "the simulator thread exited before binding",
            ))
        }
    }
}

/// Runs a simulator in the foreground until Ctrl-C (for binaries that embed it).
pub fn run_blocking(config: SimConfig) -> std::io::Result<()> {
    actix_rt::System::new().block_on(async move {
        let (server, addr) = start(&config, true)?;
        tracing::info!(%addr, "freshdesk simulator listening");
        eprintln!("freshdesk-sim listening on http://{addr} (Ctrl-C stops)");
        server.await
    })
}

/// Builds the state, starts the webhook dispatcher on the current actix system and binds the
/// server. Must run inside an actix system.
fn start(config: &SimConfig, handle_signals: bool) -> std::io::Result<(Server, SocketAddr)> {
    let (outbox, jobs) = mpsc::unbounded_channel();
    let sim = Arc::new(Sim::new(config, outbox));
    actix_rt::spawn(webhooks::dispatch(jobs, sim.clone()));
    let data = web::Data::from(sim);
    let mut server = HttpServer::new(move || {
        App::new()
            .app_data(data.clone())
            .app_data(web::PayloadConfig::new(16 * 1024 * 1024))
            .configure(control::configure)
            .configure(api::configure)
            .default_service(web::to(HttpResponse::NotFound))
    })
    .workers(WORKERS)
    .shutdown_timeout(1)
    .bind(("127.0.0.1", config.port))?;
    if !handle_signals {
        server = server.disable_signals();
    }
    let addr = server
        .addrs()
        .first()
        .copied()
        .ok_or_else(|| std::io::Error::other("the simulator bound no address"))?;
    Ok((server.run(), addr))
}
