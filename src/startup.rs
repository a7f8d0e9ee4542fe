//! Wiring: open storage, load secrets, build the services, bind the listener (port 0 works,
//! for tests) and run the HTTP server.

use crate::access::Access;
use crate::cluster::lease::LeaseSettings;
use crate::cluster::ownership::ShardOwnership;
use crate::cluster::work::EngineWork;
use crate::cluster::{Cluster, ClusterParts};
use crate::config::{Settings, StorageBackend};
use crate::connect::{ConnectService, FreshdeskConnector};
use crate::connected_orgs::ConnectedOrgs;
use crate::freshdesk::{build_http_client, DomainPolicy};
use crate::http;
use crate::http::state::{AppState, Readiness};
use crate::metrics::ServiceMetrics;
use crate::org_connections::StoredOrgs;
use crate::org_erasure::{ErasedOrgs, ErasureFence};
use crate::secrets::{
    generate_admin_token, load_admin_token, load_node_id, KeyVault, WebhookTokens,
};
use crate::selftest::{ArrivalSource, SelfTestParts, SelfTests};
use crate::store::postgres::{PgStore, ShardTokens};
use crate::store::{FlushFaults, SledStore, Store, StoreError};
use actix_web::dev::Server;
use actix_web::{web, App, HttpServer};
use secrecy::{ExposeSecret, SecretString};
use std::net::TcpListener;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use ticketsync_actors::engine::{Engine, EngineConfig, EngineParts};
use ticketsync_actors::ports::{Ownership, SoleNode, SystemClock};

/// Router shards of the engine, each on its own arbiter thread.
const ENGINE_SHARDS: usize = 2;

/// The built application: a bound listener and a server ready to run.
pub struct Application {
    port: u16,
    engine: Engine,
    /// This node's membership (PostgreSQL backend).
    cluster: Option<Arc<Cluster>>,
    server: Server,
    admin_token: SecretString,
    admin_token_generated: bool,
    flush_faults: Arc<FlushFaults>,
}

/// Why the application could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("cannot create the data directory {path}: {source}")]
    DataDir {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot open storage: {0}")]
    Store(#[from] crate::store::StoreError),
    #[error(transparent)]
    Secret(#[from] crate::secrets::SecretError),
    #[error("cannot recover queued work: {0}")]
    Recover(#[from] ticketsync_actors::ports::StoreFailure),
    #[error("responder configuration: {0}")]
    Responder(#[from] crate::responder::ResponderConfigError),
    #[error("cannot run the service thread: {0}")]
    Thread(String),
    #[error("cannot bind {addr}: {source}")]
    Bind {
        addr: String,
        source: std::io::Error,
    },
}

/// The opened backend.
struct Opened {
    store: Store,
    /// The admin token in force, and whether it was generated on this start.
    admin_token: (SecretString, bool),
    /// On PostgreSQL: this node's id and lease tokens (the node joins the cluster).
    leases: Option<Arc<ShardTokens>>,
}

/// Open the configured backend, with the admin token in force (sled keeps a generated token
/// in `<dir>/admin_token`, PostgreSQL in its `meta` table, shared by every node).
async fn open_storage(settings: &Settings, dir: &Path) -> Result<Opened, StartupError> {
    match settings.storage.backend {
        StorageBackend::Sled => {
            let store = SledStore::open_with_cache(dir, settings.storage.cache_capacity_mb << 20)?;
            Ok(Opened {
                store: Arc::new(store),
                admin_token: load_admin_token(&settings.server.admin_token, dir)?,
                leases: None,
            })
        }
        StorageBackend::Postgres => {
            let node_id = load_node_id(&settings.cluster.node_id, dir)?;
            let shards = Arc::new(ShardTokens::new(node_id, settings.cluster.shards));
            let store = PgStore::open(&settings.storage.postgres.options(), shards.clone())
                .await
                .map_err(StoreError::from)?;
            let (token, generated) = if settings.server.admin_token.expose_secret().is_empty() {
                let (token, generated) =
                    store.generated_admin_token(generate_admin_token()).await?;
                (SecretString::from(token), generated)
            } else {
                (settings.server.admin_token.clone(), false)
            };
            Ok(Opened {
                store: Arc::new(store),
                admin_token: (token, generated),
                leases: Some(shards),
            })
        }
    }
}

/// Join the cluster: the lease manager, the wake-up listener and the look for work, on the
/// shards this node gets (docs/cluster.md).
fn join_cluster(
    settings: &Settings,
    tokens: Arc<ShardTokens>,
    ownership: Arc<ShardOwnership>,
    engine: &Engine,
    store: &Store,
    self_tests: SelfTests,
    connected_orgs: Arc<ConnectedOrgs>,
) -> Result<Cluster, StartupError> {
    let lease = LeaseSettings {
        node_id: tokens.node_id().to_string(),
        address: settings.server.public_url.clone(),
        url: settings.storage.postgres.options().url,
        ttl: Duration::from_secs(settings.cluster.lease_ttl_secs),
        shards: settings.cluster.shards,
        write_margin: settings.lease_write_margin(),
    };
    let work = Arc::new(EngineWork {
        engine: engine.clone(),
        store: store.clone(),
        shards: settings.cluster.shards,
    });
    Cluster::start(ClusterParts {
        lease,
        tokens,
        ownership,
        work,
        self_tests,
        connected_orgs,
    })
    .map_err(|e| StartupError::Thread(e.to_string()))
}

impl Application {
    /// Open storage, load secrets, bind the listener.
    pub async fn build(settings: Settings) -> Result<Self, StartupError> {
        for warning in &settings.warnings {
            tracing::warn!("{warning}");
        }
        let dir = settings.storage.path.clone();
        std::fs::create_dir_all(&dir).map_err(|source| StartupError::DataDir {
            path: dir.display().to_string(),
            source,
        })?;
        let Opened {
            store,
            admin_token: (admin_token, admin_token_generated),
            leases,
        } = open_storage(&settings, &dir).await?;
        // With several nodes, an org's work runs where its shard's lease is held.
        let shard_ownership = leases.as_ref().map(|_| {
            Arc::new(ShardOwnership::new(
                settings.cluster.shards,
                settings.lease_write_margin(),
            ))
        });
        let ownership: Arc<dyn Ownership> = match &shard_ownership {
            Some(shards) => shards.clone(),
            None => Arc::new(SoleNode),
        };
        let vault = Arc::new(KeyVault::load(&settings.storage.encryption_key, &dir)?);
        let token_secret = store.webhook_token_secret().await?;
        let tokens = Arc::new(WebhookTokens::new(token_secret));

        let metrics = Arc::new(ServiceMetrics::default());
        let connector = FreshdeskConnector {
            policy: Arc::new(DomainPolicy::new(
                settings.freshdesk.allowed_domain_suffixes.clone(),
                settings.freshdesk.insecure_hosts.clone(),
            )),
            http: build_http_client(Duration::from_millis(settings.freshdesk.request_timeout_ms)),
            observer: Some(metrics.clone()),
        };
        let responder = crate::responder::build(&settings.responder, reqwest::Client::new())?;
        let erased = Arc::new(ErasedOrgs::default());
        let engine = Engine::start(EngineParts {
            store: Arc::new(ErasureFence::new(store.clone(), erased.clone())),
            orgs: Arc::new(StoredOrgs {
                store: store.clone(),
                vault: vault.clone(),
                connector: connector.clone(),
            }),
            responder,
            clock: Arc::new(SystemClock),
            config: EngineConfig {
                max_ai_answers: settings.engine.max_ai_replies_per_ticket,
                idle_passivate: Duration::from_secs(settings.engine.idle_passivate_secs),
                restart_budget: 5,
                park_for: Duration::from_secs(300),
                shards: ENGINE_SHARDS,
                max_live_actors_per_shard: (settings.engine.max_live_actors / ENGINE_SHARDS).max(1),
                rate_limit_share: settings.freshdesk.rate_limit_share,
                // The engine's name for the missed-webhook sweep interval.
                reconcile_interval: Duration::from_secs(settings.engine.sweep_interval_secs.max(1)),
                backfill_days: settings.freshdesk.backfill_days,
                write_settle: Duration::from_millis(
                    settings.freshdesk.request_timeout_ms * 2 + 1000,
                ),
            },
            ownership,
        });
        let connect = ConnectService::new(
            store.clone(),
            vault,
            tokens.clone(),
            connector,
            &settings.server.public_url,
        );
        let self_tests = SelfTests::new(SelfTestParts {
            store: store.clone(),
            connect: connect.clone(),
            engine: engine.clone(),
            wait: Duration::from_secs(settings.self_test.wait_secs),
            request_timeout: Duration::from_millis(settings.freshdesk.request_timeout_ms),
            // With several nodes a webhook may reach another node: every node hears of it
            // through the cluster's wake-ups.
            arrivals: if leases.is_some() {
                ArrivalSource::ClusterWakes
            } else {
                ArrivalSource::Webhooks
            },
        });
        let listener =
            TcpListener::bind(&settings.server.listen).map_err(|source| StartupError::Bind {
                addr: settings.server.listen.clone(),
                source,
            })?;
        // With several nodes, changes made elsewhere are heard only once the listener runs.
        let connected_orgs = Arc::new(ConnectedOrgs::new(store.clone(), leases.is_none()));
        let cluster = match (leases, shard_ownership) {
            (Some(tokens), Some(ownership)) => Some(Arc::new(join_cluster(
                &settings,
                tokens,
                ownership,
                &engine,
                &store,
                self_tests.clone(),
                connected_orgs.clone(),
            )?)),
            _ => None,
        };
        let state = web::Data::new(AppState {
            store: store.clone(),
            connect,
            engine: engine.clone(),
            tokens,
            connected_orgs,
            metrics,
            access: Arc::new(Access::new(admin_token.clone(), store.clone())),
            cluster: cluster.clone(),
            console: crate::console::Sessions::new(
                &token_secret,
                &admin_token,
                settings.console.session_ttl_minutes,
                &settings.server.public_url,
            ),
            self_tests,
            erased,
        });
        let readiness = web::Data::new(Readiness::default());

        let port = listener.local_addr().map(|a| a.port()).unwrap_or_default();
        let server = HttpServer::new({
            let readiness = readiness.clone();
            move || {
                App::new()
                    .wrap(actix_web::middleware::from_fn(
                        http::error::ensure_error_shape,
                    ))
                    .wrap(actix_web::middleware::from_fn(http::trace_request))
                    .app_data(state.clone())
                    .app_data(readiness.clone())
                    .configure(http::configure)
            }
        })
        .listen(listener)
        .map_err(|source| StartupError::Bind {
            addr: settings.server.listen.clone(),
            source,
        })?
        .disable_signals()
        .shutdown_timeout(5)
        .run();
        for org in store.orgs().await? {
            if store.connection(org.id).await?.is_some_and(|c| c.connected) {
                engine.org_connected(org.id, false).await?;
            }
        }
        let recovered = engine.recover().await?;
        if recovered > 0 {
            tracing::info!(
                tickets = recovered,
                "recovered tickets with queued or pending work"
            );
        }
        if let Some(cluster) = &cluster {
            if !cluster.joined().await {
                tracing::warn!("no heartbeat written yet; /readyz says 503 until one is");
            }
        }
        readiness.set_ready();
        Ok(Self {
            port,
            engine,
            cluster,
            server,
            admin_token,
            admin_token_generated,
            flush_faults: store.flush_faults().unwrap_or_default(),
        })
    }

    /// The bound port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The admin token in force, and whether it was generated on this start.
    pub fn admin_token(&self) -> (&SecretString, bool) {
        (&self.admin_token, self.admin_token_generated)
    }

    /// Serve until the server stops, then release this node's leases (its writes in flight
    /// end first) and stop the engine.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let result = self.server.await;
        if let Some(cluster) = &self.cluster {
            cluster.stop().await;
        }
        self.engine.shutdown().await;
        result
    }

    /// A handle to stop the server gracefully.
    pub fn server_handle(&self) -> actix_web::dev::ServerHandle {
        self.server.handle()
    }

    /// The fault switches of the store's flushes (tests of a stalled or failing disk).
    pub fn flush_faults(&self) -> Arc<FlushFaults> {
        self.flush_faults.clone()
    }
}

/// The service on its own thread with its own actix system, for the demo and the tests:
/// `start` returns once it listens; `stop` (or dropping it) stops the server gracefully,
/// stops the engine and joins the thread, so its storage can be opened again.
pub struct BackgroundService {
    port: u16,
    flush_faults: Arc<FlushFaults>,
    stop: Option<std::sync::mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl BackgroundService {
    /// Build and start the application.
    pub fn start(settings: Settings) -> Result<Self, StartupError> {
        type Started = Result<(u16, Arc<FlushFaults>), StartupError>;
        let (ready_tx, ready_rx) = std::sync::mpsc::channel::<Started>();
        let (stop_tx, stop_rx) = std::sync::mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("ticketsync".into())
            .spawn(move || {
                actix_web::rt::System::new().block_on(async move {
                    let app = match Application::build(settings).await {
                        Ok(app) => app,
                        Err(err) => {
                            let _ = ready_tx.send(Err(err));
                            return;
                        }
                    };
                    let handle = app.server_handle();
                    let _ = ready_tx.send(Ok((app.port(), app.flush_faults())));
                    actix_web::rt::spawn(async move {
                        // A message or a dropped sender both mean: stop.
                        let _ = actix_web::rt::task::spawn_blocking(move || stop_rx.recv()).await;
                        handle.stop(true).await;
                    });
                    if let Err(err) = app.run_until_stopped().await {
                        tracing::error!(error = %err, "ticketsync stopped with an error");
                    }
                });
            })
            .map_err(|e| StartupError::Thread(e.to_string()))?;
        let mut service = Self {
            port: 0,
            flush_faults: Arc::default(),
            stop: Some(stop_tx),
            thread: Some(thread),
        };
        match ready_rx.recv() {
            Ok(Ok((port, flush_faults))) => {
                service.port = port;
                service.flush_faults = flush_faults;
                Ok(service)
            }
            Ok(Err(err)) => Err(err),
            Err(_) => Err(StartupError::Thread(
                "the service thread exited before it started listening".into(),
            )),
        }
    }

    /// The bound port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The fault switches of the service's storage flushes (tests of a stalled or failing
    /// disk).
    pub fn flush_faults(&self) -> &FlushFaults {
        &self.flush_faults
    }

    /// `http://127.0.0.1:<port>`.
    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Stop and wait until everything is closed.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for BackgroundService {
    fn drop(&mut self) {
        self.shutdown();
    }
}
