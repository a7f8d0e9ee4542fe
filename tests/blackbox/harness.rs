//! The black-box harness: the real application on port 0 with a temporary data directory on
//! the backend `TICKETSYNC_TEST_BACKEND` names (sled by default; postgres: a fresh database
//! per test app), the Freshdesk simulator on its own port, and one helper method per endpoint.

use freshdesk_sim::{SimClient, SimConfig, SimHandle};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use testkit::json_response;
use testkit::process::toml_string;
use ticketsync::config::Settings;
use ticketsync::startup::BackgroundService;

pub use testkit::eventually;
pub use testkit::sim::{
    AI_AGENT_ID, AI_KEY, ALICE_ID, BILLING_GROUP, MARKER_FIELD, PLAIN_AGENT_KEY, SUPPORT_GROUP,
};

/// The admin token every test app is configured with.
pub const ADMIN_TOKEN: &str = "test-admin-token";

/// A running service in its own thread (own actix system), so it can be stopped and started
/// again on the same data directory inside one test.
pub struct RunningApp {
    pub base: String,
    service: BackgroundService,
}

impl RunningApp {
    /// Start the service with the embedded config plus overrides.
    pub fn start(data_dir: &Path, overrides: &[(&str, String)]) -> Self {
        let mut env: Vec<(String, String)> = vec![
            ("TICKETSYNC__SERVER__LISTEN".into(), "127.0.0.1:0".into()),
            ("TICKETSYNC__SERVER__ADMIN_TOKEN".into(), ADMIN_TOKEN.into()),
            (
                "TICKETSYNC__STORAGE__PATH".into(),
                toml_string(&data_dir.display().to_string()),
            ),
            (
                "TICKETSYNC__FRESHDESK__REQUEST_TIMEOUT_MS".into(),
                "3000".into(),
            ),
        ];
        env.extend(overrides.iter().map(|(k, v)| (k.to_string(), v.clone())));
        let settings = Settings::parse_with_env(include_str!("../../config.toml"), env)
            .expect("test configuration is valid");
        let service = BackgroundService::start(settings).expect("app started");
        Self {
            base: service.base_url(),
            service,
        }
    }

    /// Stop the service and wait until its storage is closed.
    pub fn stop(self) {
        self.service.stop();
    }
}

/// The service, the simulator and an HTTP client to drive both.
pub struct TestApp {
    pub app: Option<RunningApp>,
    pub sim: SimHandle,
    pub simc: SimClient,
    pub http: reqwest::Client,
    pub data_dir: tempfile::TempDir,
    /// The storage backend (its database lives as long as the app's data).
    pub backend: testkit::pg::TestBackend,
    overrides: Vec<(&'static str, String)>,
}

/// A response: status and JSON body (Null when empty or not JSON).
#[derive(Debug)]
pub struct Resp {
    pub status: StatusCode,
    pub body: Value,
}

impl Resp {
    /// The error code of an error body.
    pub fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("")
    }

    /// Assert the single error shape with the given status and code.
    #[track_caller]
    pub fn assert_error(&self, status: u16, code: &str) {
        assert_eq!(self.status.as_u16(), status, "body: {}", self.body);
        assert_eq!(self.code(), code, "body: {}", self.body);
        assert!(
            self.body["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "error message present: {}",
            self.body
        );
        assert_eq!(
            self.body.as_object().map(|o| o.len()),
            Some(1),
            "only `error`"
        );
    }
}

impl TestApp {
    /// Simulator plus service with default settings.
    pub async fn spawn() -> Self {
        Self::spawn_with(&[]).await
    }

    /// Simulator plus service with config overrides. Logs go to the test output when
    /// RUST_LOG is set.
    pub async fn spawn_with(overrides_given: &[(&'static str, String)]) -> Self {
        if std::env::var_os("RUST_LOG").is_some() {
            ticketsync::telemetry::init();
        }
        let sim = freshdesk_sim::spawn(SimConfig::default()).expect("simulator starts");
        let simc = SimClient::new(sim.base_url());
        let data_dir = tempfile::tempdir().unwrap();
        let backend = testkit::pg::TestBackend::from_env();
        let mut overrides = backend.overrides();
        overrides.extend_from_slice(overrides_given);
        if !overrides
            .iter()
            .any(|(k, _)| *k == "TICKETSYNC__FRESHDESK__INSECURE_HOSTS")
        {
            overrides.push((
                "TICKETSYNC__FRESHDESK__INSECURE_HOSTS",
                format!("[\"{}\"]", sim.host()),
            ));
        }
        let app = RunningApp::start(data_dir.path(), &overrides);
        Self {
            app: Some(app),
            sim,
            simc,
            http: reqwest::Client::new(),
            data_dir,
            backend,
            overrides,
        }
    }

    /// The service's base URL.
    pub fn base(&self) -> &str {
        &self.app.as_ref().expect("app running").base
    }

    /// Stop the service and start it again on the same data directory.
    pub fn restart(&mut self) {
        if let Some(app) = self.app.take() {
            app.stop();
        }
        self.app = Some(RunningApp::start(self.data_dir.path(), &self.overrides));
    }

    /// Stop the service and start it again on the same data directory with `overrides`
    /// replacing the ones of the same keys (e.g. a configuration the operator changed).
    pub fn restart_with(&mut self, overrides: &[(&'static str, String)]) {
        for (key, value) in overrides {
            self.overrides.retain(|(k, _)| k != key);
            self.overrides.push((key, value.clone()));
        }
        self.restart();
    }

    /// Point the simulator's automation rules at the org's webhook on the running service
    /// (after a restart the service listens on a new port).
    pub async fn point_webhook_at(&self, org: &str) {
        let url = self.webhook_url(org).await;
        self.simc
            .set_webhook(&freshdesk_sim::WebhookConfig::to(url))
            .await
            .unwrap();
    }

    /// The running service's switches to stall or fail its storage flushes.
    pub fn flush_faults(&self) -> &ticketsync::store::FlushFaults {
        self.app
            .as_ref()
            .expect("app running")
            .service
            .flush_faults()
    }

    /// Path of the data directory.
    pub fn data_path(&self) -> PathBuf {
        self.data_dir.path().to_path_buf()
    }

    /// The simulator's host, as an admin would type it.
    pub fn sim_domain(&self) -> String {
        self.sim.host()
    }

    /// Any request with the admin token.
    pub async fn call(&self, method: Method, path: &str, body: Option<Value>) -> Resp {
        self.call_as(method, path, body, Some(ADMIN_TOKEN)).await
    }

    /// Any request with the given bearer token (or none).
    pub async fn call_as(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
        token: Option<&str>,
    ) -> Resp {
        let mut req = self
            .http
            .request(method, format!("{}{}", self.base(), path));
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        if let Some(body) = body {
            req = req.json(&body);
        }
        let res = req.send().await.expect("request sent");
        read(res).await
    }

    /// A raw body with a content type.
    pub async fn call_raw(
        &self,
        method: Method,
        path: &str,
        body: Vec<u8>,
        token: Option<&str>,
    ) -> Resp {
        let mut req = self
            .http
            .request(method, format!("{}{}", self.base(), path))
            .header("content-type", "application/json")
            .body(body);
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        read(req.send().await.expect("request sent")).await
    }

    /// `POST /api/v1/orgs`.
    pub async fn create_org(&self, name: &str) -> String {
        let r = self
            .call(Method::POST, "/api/v1/orgs", Some(json!({"name": name})))
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        r.body["id"].as_str().unwrap().to_string()
    }

    /// `POST …/freshdesk/verify`.
    pub async fn verify(&self, org: &str, domain: &str, key: &str) -> Resp {
        self.call(
            Method::POST,
            &format!("/api/v1/orgs/{org}/freshdesk/verify"),
            Some(json!({"domain": domain, "api_key": key})),
        )
        .await
    }

    /// `PUT …/freshdesk`.
    pub async fn save(&self, org: &str, settings: Value) -> Resp {
        self.call(
            Method::PUT,
            &format!("/api/v1/orgs/{org}/freshdesk"),
            Some(settings),
        )
        .await
    }

    /// `GET …/freshdesk`.
    pub async fn connection(&self, org: &str) -> Resp {
        self.call(Method::GET, &format!("/api/v1/orgs/{org}/freshdesk"), None)
            .await
    }

    /// `DELETE …/freshdesk`.
    pub async fn disconnect(&self, org: &str) -> Resp {
        self.call(
            Method::DELETE,
            &format!("/api/v1/orgs/{org}/freshdesk"),
            None,
        )
        .await
    }

    /// Minimal valid settings for the simulator with the admin key.
    pub fn settings(&self) -> Value {
        json!({"domain": self.sim_domain(), "api_key": AI_KEY})
    }

    /// Create an org and connect it with `settings` (merged over the minimal ones).
    pub async fn connected_org(&self, extra: Value) -> (String, Value) {
        let org = self.create_org("Acme").await;
        let mut settings = self.settings();
        merge(&mut settings, extra);
        let r = self.save(&org, settings).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        (org, r.body)
    }

    /// Simulator requests received so far.
    pub async fn sim_requests(&self) -> Vec<freshdesk_sim::RecordedRequest> {
        self.simc.requests().await.expect("simulator requests")
    }

    /// The sequence number of the simulator's last recorded request (0 when none).
    pub async fn last_sim_seq(&self) -> u64 {
        testkit::last_request_seq(&self.simc).await
    }

    /// Simulator requests recorded after the one numbered `seq`.
    pub async fn sim_requests_after(&self, seq: u64) -> Vec<freshdesk_sim::RecordedRequest> {
        let mut requests = self.sim_requests().await;
        requests.retain(|r| r.seq > seq);
        requests
    }
}

async fn read(res: reqwest::Response) -> Resp {
    let (status, body) = json_response(res).await;
    Resp { status, body }
}

/// Shallow-merge `extra`'s keys into `base`.
pub fn merge(base: &mut Value, extra: Value) {
    if let (Some(b), Value::Object(e)) = (base.as_object_mut(), extra) {
        for (k, v) in e {
            b.insert(k, v);
        }
    }
}

impl TestApp {
    /// Connect an org with `extra` settings and point the simulator's automation rules at
    /// its webhook (on this test's port).
    pub async fn connected_with_webhook(&self, extra: Value) -> String {
        let (org, body) = self.connected_org(extra).await;
        let url = body["webhook_url"].as_str().unwrap();
        let path = &url[url.find("/webhooks/").unwrap()..];
        self.simc
            .set_webhook(&freshdesk_sim::WebhookConfig::to(format!(
                "{}{}",
                self.base(),
                path
            )))
            .await
            .unwrap();
        org
    }

    /// The org's webhook URL on this test's port.
    pub async fn webhook_url(&self, org: &str) -> String {
        let body = self.connection(org).await.body;
        let url = body["webhook_url"].as_str().unwrap();
        format!("{}{}", self.base(), &url[url.find("/webhooks/").unwrap()..])
    }

    /// A customer opens a ticket (the simulator fires rule 1).
    pub async fn new_ticket(&self, subject: &str, description: &str) -> u64 {
        self.new_ticket_with(freshdesk_sim::NewTicket::new(subject, description))
            .await
    }

    /// A ticket with explicit fields.
    pub async fn new_ticket_with(&self, ticket: freshdesk_sim::NewTicket) -> u64 {
        let t = self.simc.create_ticket(&ticket).await.unwrap();
        t["id"].as_u64().unwrap()
    }

    /// The simulator's full view of a ticket (conversations included).
    pub async fn sim_ticket(&self, id: u64) -> Value {
        self.simc.get_ticket(id).await.unwrap()
    }

    /// Conversations the AI agent posted on a ticket: (private, body_text).
    pub async fn ai_posts(&self, id: u64) -> Vec<(bool, String)> {
        testkit::ai_posts(&self.simc, id).await
    }

    /// Wait until the ticket has `n` AI posts.
    pub async fn wait_ai_posts(&self, id: u64, n: usize) -> Vec<(bool, String)> {
        eventually(
            &format!("{n} AI posts on ticket {id}"),
            Duration::from_secs(20),
            || async {
                let posts = self.ai_posts(id).await;
                (posts.len() >= n).then_some(posts)
            },
        )
        .await
    }

    /// Wait until every webhook was delivered and the engine has nothing queued or pending,
    /// several polls in a row.
    pub async fn settle(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut quiet = 0;
        while quiet < 4 {
            assert!(
                Instant::now() < deadline,
                "timed out waiting for the engine to settle"
            );
            let deliveries = self.simc.deliveries().await.unwrap();
            let delivered = deliveries
                .iter()
                .all(|d| d.dropped || d.status.is_some() || d.error.is_some());
            let inspect = self.call(Method::GET, "/api/v1/inspect", None).await.body;
            let idle = inspect["inbox_depth"] == 0 && inspect["pending_effects"] == 0;
            quiet = if delivered && idle { quiet + 1 } else { 0 };
            tokio::time::sleep(Duration::from_millis(60)).await;
        }
    }

    /// `GET …/tickets/{id}/session`.
    pub async fn session(&self, org: &str, ticket: u64) -> Resp {
        self.call(
            Method::GET,
            &format!("/api/v1/orgs/{org}/tickets/{ticket}/session"),
            None,
        )
        .await
    }

    /// `GET …/tickets/{id}/inspect`.
    pub async fn inspect_ticket(&self, org: &str, ticket: u64) -> Value {
        self.call(
            Method::GET,
            &format!("/api/v1/orgs/{org}/tickets/{ticket}/inspect"),
            None,
        )
        .await
        .body
    }

    /// Wait until the ticket's session satisfies `check`.
    pub async fn wait_session(
        &self,
        org: &str,
        ticket: u64,
        what: &str,
        check: impl Fn(&Value) -> bool,
    ) -> Value {
        eventually(what, Duration::from_secs(20), || async {
            let r = self.session(org, ticket).await;
            (r.status == 200 && check(&r.body)).then_some(r.body)
        })
        .await
    }

    /// Simulator API requests matching a method and path prefix.
    pub async fn sim_calls(
        &self,
        method: &str,
        path_prefix: &str,
    ) -> Vec<freshdesk_sim::RecordedRequest> {
        self.sim_requests()
            .await
            .into_iter()
            .filter(|r| r.method == method && r.path.starts_with(path_prefix))
            .collect()
    }
}
