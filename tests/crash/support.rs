//! The crash harness: the real `ticketsync` binary as a child process (SIGKILLed and started
//! again on the same data directory and the same port), the Freshdesk simulator in-process, and
//! helpers that poll with a deadline instead of sleeping.

use crate::proxy::Proxy;
use freshdesk_sim::{
    DeliveryKnobs, DeliveryRecord, NewTicket, RecordedRequest, SimClient, SimConfig, SimHandle,
    WebhookConfig,
};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;
pub use testkit::applied_replies;
use testkit::pg::TestBackend;
use testkit::{json_response, ServiceProcess};

pub use testkit::eventually;
pub use testkit::sim::{AI_KEY, FAQ_ANSWER, FAQ_QUESTION};

/// The admin token every service of these tests is started with.
pub const ADMIN_TOKEN: &str = "crash-admin-token-7c1f9e";
/// Freshdesk retries failed webhooks; the simulator does it faster.
pub const RETRY_DELAYS_MS: [u64; 4] = [500, 1000, 2000, 4000];
/// The service's timeout of one Freshdesk request.
pub const REQUEST_TIMEOUT_MS: u64 = 2000;
/// How long a start may take before the test fails.
const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// The `ticketsync serve` child process of one test: its directory (config, data, logs) and
/// port outlive the process, so it can be killed and started again. Dropping it kills the
/// child; a panicking test (or any, with `CRASH_KEEP_DIR` set) keeps the directory, and a
/// panicking one prints the end of the log.
pub struct Service {
    process: ServiceProcess,
    dir: Option<tempfile::TempDir>,
    /// The storage backend (`TICKETSYNC_TEST_BACKEND`), held for its database: it outlives
    /// the restarts.
    _backend: TestBackend,
}

impl Service {
    /// A service speaking to the Freshdesk API at `freshdesk_host`, not started yet.
    pub fn new(freshdesk_host: String) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("ticketsync-crash-")
            .tempdir()
            .expect("temp dir");
        let backend = TestBackend::from_env();
        let mut process = ServiceProcess::new(
            env!("CARGO_BIN_EXE_ticketsync"),
            dir.path(),
            include_str!("../../config.toml"),
        );
        for (key, value) in backend.overrides() {
            process = process.env(key, value);
        }
        let process = process
            .env("TICKETSYNC__SERVER__ADMIN_TOKEN", ADMIN_TOKEN)
            .env(
                "TICKETSYNC__FRESHDESK__INSECURE_HOSTS",
                format!("[\"{freshdesk_host}\"]"),
            )
            .env(
                "TICKETSYNC__FRESHDESK__REQUEST_TIMEOUT_MS",
                REQUEST_TIMEOUT_MS.to_string(),
            );
        Self {
            process,
            dir: Some(dir),
            _backend: backend,
        }
    }
}

impl std::ops::Deref for Service {
    type Target = ServiceProcess;
    fn deref(&self) -> &ServiceProcess {
        &self.process
    }
}

impl std::ops::DerefMut for Service {
    fn deref_mut(&mut self) -> &mut ServiceProcess {
        &mut self.process
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        self.process.kill();
        let panicking = std::thread::panicking();
        if panicking {
            eprintln!("{}", self.process.log_tail(80));
        }
        if panicking || std::env::var_os("CRASH_KEEP_DIR").is_some() {
            if let Some(dir) = self.dir.take() {
                eprintln!("test directory kept: {}", dir.keep().display());
            }
        }
    }
}

/// The service child process, the simulator and one connected org whose webhook the
/// simulator's automation rules call (retrying failed deliveries like Freshdesk).
pub struct World {
    /// Declared first: dropped (killed) before the simulator stops.
    pub svc: Service,
    /// Kept alive for the test's duration.
    _sim: SimHandle,
    pub simc: SimClient,
    /// The proxy the service reaches the simulator's API through, if any.
    pub proxy: Option<Proxy>,
    pub http: reqwest::Client,
    pub org: String,
    webhook_url: String,
}

impl World {
    /// Start the simulator and the service, connect an org and point the rules at it.
    pub async fn start() -> Self {
        Self::start_with(SimConfig::default()).await
    }

    /// [`World::start`] with a simulator configured as given.
    pub async fn start_with(sim_config: SimConfig) -> Self {
        Self::build(sim_config, false).await
    }

    /// [`World::start`], the service reaching the simulator's API through a [`Proxy`] that
    /// lets requests whose client went away complete, as a real Freshdesk does.
    pub async fn start_via_proxy() -> Self {
        Self::build(SimConfig::default(), true).await
    }

    async fn build(sim_config: SimConfig, via_proxy: bool) -> Self {
        let sim = freshdesk_sim::spawn(sim_config).expect("simulator starts");
        let simc = sim.client();
        let proxy = via_proxy.then(|| Proxy::start(sim.host()));
        let freshdesk_host = proxy.as_ref().map_or_else(|| sim.host(), Proxy::host);
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .expect("http client");
        let mut svc = Service::new(freshdesk_host.clone());
        svc.spawn();
        svc.wait_ready(&http, READY_TIMEOUT).await;
        let mut world = Self {
            svc,
            _sim: sim,
            simc,
            proxy,
            http,
            org: String::new(),
            webhook_url: String::new(),
        };
        let (status, org) = world
            .admin(Method::POST, "/api/v1/orgs", Some(json!({"name": "Acme"})))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{org}");
        world.org = org["id"].as_str().expect("org id").to_string();
        let (status, saved) = world
            .admin(
                Method::PUT,
                &format!("/api/v1/orgs/{}/freshdesk", world.org),
                Some(json!({"domain": freshdesk_host, "api_key": AI_KEY})),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{saved}");
        world.webhook_url = saved["webhook_url"]
            .as_str()
            .expect("webhook_url")
            .to_string();
        assert!(
            world.webhook_url.starts_with(&world.svc.base()),
            "the webhook URL uses server.public_url: {}",
            world.webhook_url
        );
        world
            .simc
            .set_webhook(&WebhookConfig::to(world.webhook_url.clone()))
            .await
            .expect("webhook rules set");
        world
            .simc
            .set_delivery(&DeliveryKnobs {
                retry_delays_ms: Some(RETRY_DELAYS_MS.to_vec()),
                ..DeliveryKnobs::default()
            })
            .await
            .expect("delivery retries set");
        world
    }

    /// The org's webhook URL (on the service's fixed port).
    pub fn webhook_url(&self) -> &str {
        &self.webhook_url
    }

    /// SIGKILL the service.
    pub fn kill(&mut self) {
        self.svc.kill();
    }

    /// Start the service (after a kill) and wait until it is ready.
    pub async fn start_service(&mut self) {
        self.svc.spawn();
        self.svc.wait_ready(&self.http, READY_TIMEOUT).await;
    }

    /// SIGKILL the service, start it again on the same data directory and port, wait ready.
    pub async fn restart(&mut self) {
        self.kill();
        self.start_service().await;
    }

    /// An admin request; the service must be running.
    pub async fn admin(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.svc.base()))
            .bearer_auth(ADMIN_TOKEN);
        if let Some(body) = body {
            req = req.json(&body);
        }
        json_response(req.send().await.expect("the service answers")).await
    }

    /// `GET /api/v1/inspect`.
    pub async fn inspect(&self) -> Value {
        let (status, body) = self.admin(Method::GET, "/api/v1/inspect", None).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body
    }

    /// `GET /metrics` (Prometheus text).
    pub async fn metrics(&self) -> String {
        let res = self
            .http
            .get(format!("{}/metrics", self.svc.base()))
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await
            .expect("the service answers");
        assert_eq!(res.status(), StatusCode::OK);
        res.text().await.expect("metrics text")
    }

    /// `GET …/tickets/{id}/session`.
    pub async fn session(&self, ticket: u64) -> (StatusCode, Value) {
        self.admin(
            Method::GET,
            &format!("/api/v1/orgs/{}/tickets/{ticket}/session", self.org),
            None,
        )
        .await
    }

    /// A customer opens a FAQ ticket (the simulator fires rule 1).
    pub async fn new_faq_ticket(&self, subject: &str) -> u64 {
        new_faq_ticket(&self.simc, subject).await
    }

    /// Conversations the AI agent posted on a ticket: (private, body_text).
    pub async fn ai_posts(&self, ticket: u64) -> Vec<(bool, String)> {
        testkit::ai_posts(&self.simc, ticket).await
    }

    /// AI posts per ticket.
    pub async fn ai_post_counts(&self, tickets: &[u64]) -> BTreeMap<u64, usize> {
        let mut counts = BTreeMap::new();
        for &id in tickets {
            counts.insert(id, self.ai_posts(id).await.len());
        }
        counts
    }

    /// Every `/api/v2` request the simulator answered so far.
    pub async fn requests(&self) -> Vec<RecordedRequest> {
        self.simc.requests().await.expect("simulator requests")
    }

    /// Every webhook delivery so far.
    pub async fn deliveries(&self) -> Vec<DeliveryRecord> {
        self.simc.deliveries().await.expect("simulator deliveries")
    }

    /// Wait until every `ticket` has at least `n` AI posts.
    pub async fn wait_ai_posts(&self, tickets: &[u64], n: usize, timeout: Duration) {
        eventually(
            &format!("{n} AI post(s) on every ticket"),
            timeout,
            || async {
                let counts = self.ai_post_counts(tickets).await;
                let short: Vec<_> = counts.iter().filter(|(_, c)| **c < n).collect();
                if short.is_empty() {
                    Ok(())
                } else {
                    Err(format!("tickets still short (id, posts): {short:?}"))
                }
            },
        )
        .await
    }

    /// Wait until every webhook delivery is final (acknowledged, or out of retries), the
    /// engine has nothing queued or pending and no API request is in flight, several polls in
    /// a row.
    pub async fn settle(&self, timeout: Duration) {
        let quiet = std::cell::Cell::new(0u32);
        let quiet = &quiet;
        eventually("the engine to settle", timeout, || async move {
            let deliveries = self.deliveries().await;
            let open: Vec<u64> = deliveries
                .iter()
                .filter(|d| !delivery_final(d))
                .map(|d| d.seq)
                .collect();
            let inspect = self.inspect().await;
            // A request the proxy forwarded may still be applied by Freshdesk.
            let in_flight = self.proxy.as_ref().map_or(0, Proxy::in_flight);
            let idle =
                inspect["inbox_depth"] == 0 && inspect["pending_effects"] == 0 && in_flight == 0;
            quiet.set(if open.is_empty() && idle {
                quiet.get() + 1
            } else {
                0
            });
            if quiet.get() >= 5 {
                Ok(())
            } else {
                Err(format!(
                    "open deliveries {open:?}; inbox_depth {}, pending_effects {}, API \
                     requests in flight {in_flight}",
                    inspect["inbox_depth"], inspect["pending_effects"]
                ))
            }
        })
        .await
    }

    /// The service's stderr never carries the admin token, the API key or the webhook token.
    pub fn assert_logs_clean(&self) {
        let log = self.svc.log();
        assert!(!log.is_empty(), "the service logged something");
        let token = self
            .webhook_url
            .rsplit('/')
            .next()
            .expect("webhook token")
            .to_string();
        for (what, secret) in [
            ("admin token", ADMIN_TOKEN),
            ("Freshdesk API key", AI_KEY),
            ("webhook token", token.as_str()),
        ] {
            assert!(
                !log.contains(secret),
                "the {what} appears in the service's stderr ({})",
                self.svc.log_path().display()
            );
        }
    }

    /// A numeric metric sample without labels from `/metrics`.
    pub async fn metric(&self, name: &str) -> Option<f64> {
        let text = self.metrics().await;
        text.lines()
            .filter(|l| !l.starts_with('#'))
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
    }
}

/// A customer opens a FAQ ticket (the simulator fires rule 1).
pub async fn new_faq_ticket(simc: &SimClient, subject: &str) -> u64 {
    let t = simc
        .create_ticket(&NewTicket::new(subject, FAQ_QUESTION))
        .await
        .expect("ticket created");
    t["id"].as_u64().expect("ticket id")
}

/// A delivery the simulator will not attempt again.
pub fn delivery_final(d: &DeliveryRecord) -> bool {
    d.dropped
        || d.status.is_some_and(|s| (200..300).contains(&s))
        || d.attempts as usize > RETRY_DELAYS_MS.len()
}

/// Tickets with at least one webhook delivery the service acknowledged (202).
pub fn acknowledged(deliveries: &[DeliveryRecord]) -> BTreeSet<u64> {
    deliveries
        .iter()
        .filter(|d| d.status == Some(202))
        .map(|d| d.ticket_id)
        .collect()
}

/// A test's RNG seed: `CRASH_SEED` when set, else the test's fixed default.
pub fn seed(default: u64) -> u64 {
    testkit::seed_from_env("CRASH_SEED", default)
}
