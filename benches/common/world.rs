//! What a bench sets up: data directories, the simulator, `ticketsync serve` as a child
//! process, the admin API of a running service, and a connected org.

use super::{measure, service_binary, ADMIN_TOKEN, AI_KEY, CONFIG_TOML};
use freshdesk_sim::{SimClient, SimConfig, SimHandle};
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use testkit::{json_response, ServiceProcess};

/// Where benches keep their data directories (reused across runs where it saves time).
pub fn bench_data_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/bench-data");
    std::fs::create_dir_all(&dir).expect("target/bench-data is writable");
    dir
}

/// A fresh temporary directory under `target/bench-data` (removed on drop).
pub fn temp_dir(prefix: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(prefix)
        .tempdir_in(bench_data_dir())
        .expect("temp dir")
}

/// The simulator on its own thread, with `rate_limit_per_min` credits per minute.
pub fn spawn_sim(rate_limit_per_min: u32) -> (SimHandle, SimClient) {
    let sim = freshdesk_sim::spawn(SimConfig {
        rate_limit_per_min,
        ..SimConfig::default()
    })
    .expect("simulator starts");
    let client = sim.client();
    (sim, client)
}

/// `ticketsync serve` as a child process: its root directory holds `config.toml`, the data
/// directory `data/` and `stderr.log` (logs at the default level, `info`, unless `RUST_LOG`
/// is set for the bench); its resident memory and CPU time read from `/proc`.
pub struct Service(ServiceProcess);

impl Service {
    /// A service rooted at `root` (created if needed) that may call the simulator at
    /// `sim_host`; not started yet.
    pub fn new(root: &Path, sim_host: &str, extra_env: &[(&str, String)]) -> Self {
        let mut process = ServiceProcess::new(service_binary(), root, CONFIG_TOML)
            .env("TICKETSYNC__SERVER__ADMIN_TOKEN", ADMIN_TOKEN)
            .env(
                "TICKETSYNC__FRESHDESK__INSECURE_HOSTS",
                format!("[\"{sim_host}\"]"),
            );
        for (k, v) in extra_env {
            process = process.env(k, v.clone());
        }
        Self(process)
    }

    /// Point the service at another simulator (applies at the next `spawn`).
    pub fn set_sim_host(&mut self, sim_host: &str) {
        self.0.set_env(
            "TICKETSYNC__FRESHDESK__INSECURE_HOSTS",
            format!("[\"{sim_host}\"]"),
        );
    }

    /// Resident memory of the child, KiB.
    pub fn rss_kib(&self) -> u64 {
        measure::proc_status_field(self.pid(), "VmRSS").unwrap_or(0)
    }

    /// Peak resident memory of the child, KiB.
    pub fn hwm_kib(&self) -> u64 {
        measure::proc_status_field(self.pid(), "VmHWM").unwrap_or(0)
    }

    /// Threads of the child.
    pub fn threads(&self) -> u64 {
        measure::proc_status_field(self.pid(), "Threads").unwrap_or(0)
    }

    /// CPU seconds the child used so far.
    pub fn cpu_secs(&self) -> f64 {
        measure::proc_cpu_secs(self.pid())
    }
}

impl std::ops::Deref for Service {
    type Target = ServiceProcess;
    fn deref(&self) -> &ServiceProcess {
        &self.0
    }
}

impl std::ops::DerefMut for Service {
    fn deref_mut(&mut self) -> &mut ServiceProcess {
        &mut self.0
    }
}

/// The admin API of a running service.
#[derive(Clone)]
pub struct Admin {
    pub http: reqwest::Client,
    pub base: String,
}

impl Admin {
    pub fn new(base: String) -> Self {
        Self {
            http: reqwest::Client::new(),
            base,
        }
    }

    /// Any admin request; (status, JSON body or Null).
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(ADMIN_TOKEN);
        if let Some(body) = body {
            req = req.json(&body);
        }
        json_response(req.send().await.expect("admin request sent")).await
    }

    /// `POST /api/v1/orgs` → the org id.
    pub async fn create_org(&self, name: &str) -> String {
        let (status, body) = self
            .call(
                reqwest::Method::POST,
                "/api/v1/orgs",
                Some(json!({"name": name})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body["id"].as_str().expect("org id").to_string()
    }

    /// `PUT …/freshdesk` for the simulator at `sim_host` with `extra` settings; the webhook
    /// URL (on this service's base URL).
    pub async fn connect(&self, org: &str, sim_host: &str, extra: Value) -> String {
        let mut settings = json!({"domain": sim_host, "api_key": AI_KEY});
        if let (Some(s), Value::Object(e)) = (settings.as_object_mut(), extra) {
            s.extend(e);
        }
        let (status, body) = self
            .call(
                reqwest::Method::PUT,
                &format!("/api/v1/orgs/{org}/freshdesk"),
                Some(settings),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let url = body["webhook_url"].as_str().expect("webhook_url");
        format!("{}{}", self.base, &url[url.find("/webhooks/").unwrap()..])
    }

    /// `GET /api/v1/inspect`.
    pub async fn inspect(&self) -> Value {
        self.call(reqwest::Method::GET, "/api/v1/inspect", None)
            .await
            .1
    }

    /// Wait until every webhook was delivered and the engine has nothing queued or pending,
    /// four polls in a row (bounded by `timeout`; returns whether it settled).
    pub async fn settle(&self, sim: &SimClient, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut quiet = 0;
        while quiet < 4 {
            if Instant::now() > deadline {
                return false;
            }
            let delivered = sim
                .deliveries()
                .await
                .map(|d| {
                    d.iter()
                        .all(|d| d.dropped || d.status.is_some() || d.error.is_some())
                })
                .unwrap_or(false);
            let inspect = self.inspect().await;
            let idle = inspect["inbox_depth"] == 0 && inspect["pending_effects"] == 0;
            quiet = if delivered && idle { quiet + 1 } else { 0 };
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        true
    }
}

/// The simulator, the release service and one org connected to it, with the simulator's
/// automation rules pointed at the service's webhook: the setup the end-to-end and credits
/// benches share. The data directory lives as long as this value.
pub struct ConnectedBench {
    pub sim: SimHandle,
    pub simc: SimClient,
    pub service: Service,
    pub admin: Admin,
    pub org: String,
    _root: tempfile::TempDir,
}

/// Start everything and connect; waits until the first-connect work has settled.
pub async fn connected_bench(prefix: &str, rate_limit: u32, settle: Duration) -> ConnectedBench {
    let (sim, simc) = spawn_sim(rate_limit);
    let root = temp_dir(prefix);
    let mut service = Service::new(root.path(), &sim.host(), &[]);
    service.spawn();
    let http = reqwest::Client::new();
    service.wait_ready(&http, Duration::from_secs(60)).await;
    let admin = Admin::new(service.base());
    let org = admin.create_org("Bench").await;
    let hook = admin.connect(&org, &sim.host(), json!({})).await;
    simc.set_webhook(&freshdesk_sim::WebhookConfig::to(hook))
        .await
        .expect("webhook set");
    admin.settle(&simc, settle).await;
    ConnectedBench {
        sim,
        simc,
        service,
        admin,
        org,
        _root: root,
    }
}
