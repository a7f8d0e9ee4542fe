//! Secrets stay secret (contract §2.5, §8): Freshdesk API keys never appear in a response body
//! or header of any admin endpoint, nor in plaintext in the data directory; and the real
//! binary, logging at debug (and trace) level, never writes an API key, the admin token or a
//! webhook token. A generated admin token is printed once, on the start that made it, and
//! never logged.

use crate::harness::TestApp;
use crate::wire::{send, Answer, Req};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use freshdesk_sim::{NewAgent, NewTicket, SimClient, WebhookConfig};
use reqwest::Method;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::time::Duration;
use testkit::pg::TestBackend;
use testkit::{eventually, ServiceProcess};

/// Distinctive API keys of two admin agents the tests add to the simulator, and a wrong one.
const KEY_ONE: &str = "fdkey-ONE-7c1e5b2a9d";
const KEY_TWO: &str = "fdkey-TWO-3f8a0c6e4b";
const WRONG_KEY: &str = "fdkey-WRONG-9b2d7e1f0a";
/// The admin token of the binary runs.
const BINARY_ADMIN_TOKEN: &str = "adm-token-Q4v9Xw2LpZ";

/// What must never show up: each secret as is, and as the Basic credentials it is sent in.
fn needles(secrets: &[&str]) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for secret in secrets {
        out.push((secret.to_string(), secret.to_string()));
        out.push((
            format!("{secret} as Basic credentials"),
            STANDARD.encode(format!("{secret}:X")),
        ));
    }
    out
}

/// Where `needle` occurs in `haystack`, with some context, for failure messages.
fn find(haystack: &[u8], needle: &str) -> Option<String> {
    let at = haystack
        .windows(needle.len())
        .position(|w| w == needle.as_bytes())?;
    let from = at.saturating_sub(200);
    let to = (at + needle.len() + 200).min(haystack.len());
    Some(String::from_utf8_lossy(&haystack[from..to]).into_owned())
}

fn assert_absent(what: &str, haystack: &[u8], needles: &[(String, String)]) {
    for (name, needle) in needles {
        if let Some(context) = find(haystack, needle) {
            panic!("{name} leaked into {what}: …{context}…");
        }
    }
}

/// Add an Account Administrator with this key to the simulator; returns its agent id.
async fn add_admin(sim: &SimClient, name: &str, key: &str) -> u64 {
    let agent = sim
        .create_agent(&NewAgent {
            name: name.into(),
            email: format!("{}@acme.test", name.to_lowercase()),
            role: Some("account_admin".into()),
            api_key: Some(key.into()),
            group_ids: None,
        })
        .await
        .expect("agent created");
    agent["id"].as_u64().expect("agent id")
}

/// A client of one service (in-process or the binary) that keeps every answer.
struct Recorder {
    http: reqwest::Client,
    base: String,
    token: String,
    answers: Vec<(String, Answer)>,
}

impl Recorder {
    fn new(base: &str, token: &str) -> Self {
        Self {
            http: reqwest::Client::new(),
            base: base.to_string(),
            token: token.to_string(),
            answers: Vec::new(),
        }
    }

    async fn call(&mut self, method: Method, path: &str, body: Option<Value>) -> Value {
        let mut req = Req::new(method, path).bearer(&self.token);
        if let Some(body) = body {
            req = req.json(serde_json::to_vec(&body).unwrap());
        }
        let answer = send(&self.http, &self.base, &req).await;
        let json = answer.json();
        self.answers.push((req.describe(), answer));
        json
    }

    async fn expect(
        &mut self,
        status: u16,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Value {
        let json = self.call(method, path, body).await;
        let last = &self.answers.last().unwrap().1;
        assert_eq!(last.status, status, "{path}: {json}");
        json
    }

    async fn post_webhook(&mut self, token: &str, body: &str) -> u16 {
        let req = Req::new(Method::POST, format!("/webhooks/freshdesk/{token}"))
            .json(body.as_bytes().to_vec());
        let answer = send(&self.http, &self.base, &req).await;
        let status = answer.status;
        self.answers.push((req.describe(), answer));
        status
    }

    /// Wait until the ticket's session satisfies `check`.
    async fn wait_session(
        &self,
        org: &str,
        ticket: u64,
        what: &str,
        check: impl Fn(&Value) -> bool,
    ) -> Value {
        eventually(what, Duration::from_secs(30), || async {
            let res = self
                .http
                .get(format!(
                    "{}/api/v1/orgs/{org}/tickets/{ticket}/session",
                    self.base
                ))
                .bearer_auth(&self.token)
                .send()
                .await
                .ok()?;
            let body: Value = res.json().await.ok()?;
            check(&body).then_some(body)
        })
        .await
    }

    /// Every answer's status line, headers and body must be free of the needles.
    fn assert_clean(&self, needles: &[(String, String)]) {
        for (what, answer) in &self.answers {
            let mut text = format!("{}\n", answer.status).into_bytes();
            for (name, value) in &answer.headers {
                text.extend_from_slice(name.as_str().as_bytes());
                text.extend_from_slice(b": ");
                text.extend_from_slice(value.as_bytes());
                text.push(b'\n');
            }
            text.extend_from_slice(&answer.bytes);
            assert_absent(&format!("the answer to {what}"), &text, needles);
        }
    }
}

fn has_ai_message(session: &Value) -> bool {
    session["messages"]
        .as_array()
        .is_some_and(|m| m.iter().any(|m| m["author"] == "ai"))
}

/// The whole admin life of an org, every endpoint, through `r`: wrong keys, connect, tickets,
/// a handoff and a resume, a key rotation, a disconnect and a reconnect without the key.
/// Returns the org's webhook token.
async fn drive(r: &mut Recorder, sim: &SimClient, sim_host: &str, webhook_base: &str) -> String {
    let org = r
        .expect(
            201,
            Method::POST,
            "/api/v1/orgs",
            Some(json!({"name": "Acme"})),
        )
        .await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let o = format!("/api/v1/orgs/{org}");
    let verify = format!("{o}/freshdesk/verify");
    let save = format!("{o}/freshdesk");
    r.expect(
        422,
        Method::POST,
        &verify,
        Some(json!({"domain": sim_host, "api_key": WRONG_KEY})),
    )
    .await;
    r.expect(
        422,
        Method::PUT,
        &save,
        Some(json!({"domain": sim_host, "api_key": WRONG_KEY})),
    )
    .await;
    r.expect(
        200,
        Method::POST,
        &verify,
        Some(json!({"domain": sim_host, "api_key": KEY_ONE})),
    )
    .await;
    let saved = r
        .expect(
            200,
            Method::PUT,
            &save,
            Some(json!({"domain": sim_host, "api_key": KEY_ONE})),
        )
        .await;
    assert_eq!(saved["settings"]["api_key_set"], true);
    let url = saved["webhook_url"].as_str().unwrap().to_string();
    let token = url.rsplit('/').next().unwrap().to_string();
    sim.set_webhook(&WebhookConfig::to(format!(
        "{webhook_base}/webhooks/freshdesk/{token}"
    )))
    .await
    .unwrap();

    let faq = sim
        .create_ticket(&NewTicket::new("Password", "How do I reset my password?"))
        .await
        .unwrap()["id"]
        .as_u64()
        .unwrap();
    let human = sim
        .create_ticket(&NewTicket::new("Help", "I want to talk to a human"))
        .await
        .unwrap()["id"]
        .as_u64()
        .unwrap();
    let session = r
        .wait_session(&org, faq, "the FAQ answer", has_ai_message)
        .await;
    r.wait_session(&org, human, "the customer handoff", |s| {
        s["state"] == "handed_off"
    })
    .await;
    let session_id = session["id"].as_str().unwrap().to_string();

    // Key rotation: a wrong key is refused, a new admin key replaces the stored one.
    r.expect(
        422,
        Method::PUT,
        &save,
        Some(json!({"domain": sim_host, "api_key": WRONG_KEY})),
    )
    .await;
    r.expect(
        200,
        Method::PUT,
        &save,
        Some(json!({"domain": sim_host, "api_key": KEY_TWO})),
    )
    .await;
    let after_rotation = sim
        .create_ticket(&NewTicket::new(
            "Password again",
            "How do I reset my password?",
        ))
        .await
        .unwrap()["id"]
        .as_u64()
        .unwrap();
    r.wait_session(
        &org,
        after_rotation,
        "an answer with the rotated key",
        has_ai_message,
    )
    .await;
    assert_eq!(
        r.post_webhook(
            &token,
            &format!(r#"{{"ticketId": "{faq}", "triggered_event": "{{note_type:private}}"}}"#)
        )
        .await,
        202
    );
    assert_eq!(
        r.post_webhook("forged-token", r#"{"ticketId": "1"}"#).await,
        401
    );

    for path in [
        "/api/v1/orgs".to_string(),
        o.clone(),
        save.clone(),
        format!("{o}/sessions"),
        format!("{o}/sessions?state=handed_off"),
        format!("{o}/sessions/{session_id}"),
        format!("{o}/tickets/{faq}/session"),
        format!("{o}/tickets/{faq}/inspect"),
        format!("{o}/tickets/{human}/inspect"),
        "/api/v1/inspect".to_string(),
        "/metrics".to_string(),
    ] {
        r.expect(200, Method::GET, &path, None).await;
    }
    r.expect(
        200,
        Method::POST,
        &format!("{o}/sessions/{session_id}/handoff"),
        Some(json!({"reason": "checking secrets"})),
    )
    .await;
    r.expect(
        200,
        Method::POST,
        &format!("{o}/sessions/{session_id}/resume"),
        None,
    )
    .await;
    r.expect(
        200,
        Method::POST,
        &verify,
        Some(json!({"domain": sim_host, "api_key": KEY_TWO})),
    )
    .await;
    r.expect(200, Method::DELETE, &save, None).await;
    assert_eq!(r.post_webhook(&token, r#"{"ticketId": "1"}"#).await, 410);
    r.expect(200, Method::GET, &save, None).await;
    r.expect(200, Method::PUT, &save, Some(json!({"domain": sim_host})))
        .await;
    r.expect(200, Method::GET, &save, None).await;
    r.expect(200, Method::GET, "/metrics", None).await;
    token
}

/// Every file under `dir`, recursively.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("read the data directory") {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.push(path);
            }
        }
    }
    out
}

#[tokio::test]
async fn api_keys_never_appear_in_any_admin_response_or_in_the_data_directory() {
    let mut t = TestApp::spawn().await;
    add_admin(&t.simc, "One", KEY_ONE).await;
    add_admin(&t.simc, "Two", KEY_TWO).await;
    let mut r = Recorder::new(t.base(), crate::harness::ADMIN_TOKEN);
    let base = t.base().to_string();
    drive(&mut r, &t.simc, &t.sim_domain(), &base).await;
    assert!(r.answers.len() > 25, "{} answers", r.answers.len());
    let keys = needles(&[KEY_ONE, KEY_TWO, WRONG_KEY]);
    r.assert_clean(&keys);

    // Stop the service so that everything it keeps is on disk, then read every file.
    t.app.take().expect("running").stop();
    let files = files_under(&t.data_path());
    assert!(!files.is_empty());
    for file in files {
        let bytes = std::fs::read(&file).expect("read a data file");
        assert_absent(&format!("the data file {}", file.display()), &bytes, &keys);
    }
    // On PostgreSQL the data is in the database: every row of every table.
    if let TestBackend::Postgres(db) = &t.backend {
        let contents = db.contents();
        assert!(
            contents.contains("api_key_sealed"),
            "the database holds no connection: {contents}"
        );
        assert_absent("the database", contents.as_bytes(), &keys);
    }
}

/// The real `ticketsync serve` rooted at `dir` (data in `<dir>/data`) on a free port, on
/// `backend`, with `env` on top of the listen address, public URL and storage path, and its stdout/stderr
/// appended to `stdout`/`stderr` (the same file is fine); returned once it is ready.
async fn start_binary(
    dir: &Path,
    backend: &TestBackend,
    env: &[(&str, String)],
    stdout: &Path,
    stderr: &Path,
) -> ServiceProcess {
    let mut binary = ServiceProcess::new(
        env!("CARGO_BIN_EXE_ticketsync"),
        dir,
        include_str!("../../config.toml"),
    )
    .output_to(stdout, stderr);
    for (key, value) in backend.overrides() {
        binary = binary.env(key, value);
    }
    for (key, value) in env {
        binary = binary.env(key, value.clone());
    }
    binary.spawn();
    binary
        .wait_ready(&reqwest::Client::new(), Duration::from_secs(60))
        .await;
    binary
}

/// Ctrl-C (SIGINT) and wait for a clean exit; kill it if it does not stop in time.
async fn stop_binary(mut binary: ServiceProcess) {
    tokio::task::spawn_blocking(move || binary.stop(Duration::from_secs(20)))
        .await
        .unwrap();
}

/// Run the binary with `RUST_LOG=level` (and JSON logs when asked), drive an org's whole
/// admin life through it, and check its captured stdout and stderr.
async fn binary_keeps_secrets_out_of_its_output(level: &str, json_logs: bool) {
    let sim = freshdesk_sim::spawn(freshdesk_sim::SimConfig::default()).expect("simulator");
    let simc = SimClient::new(sim.base_url());
    add_admin(&simc, "One", KEY_ONE).await;
    add_admin(&simc, "Two", KEY_TWO).await;
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("output.log");
    let backend = TestBackend::from_env();
    let binary = start_binary(
        dir.path(),
        &backend,
        &[
            ("TICKETSYNC__SERVER__ADMIN_TOKEN", BINARY_ADMIN_TOKEN.into()),
            (
                "TICKETSYNC__FRESHDESK__INSECURE_HOSTS",
                format!("[\"{}\"]", sim.host()),
            ),
            ("TICKETSYNC__FRESHDESK__REQUEST_TIMEOUT_MS", "3000".into()),
            ("RUST_LOG", level.to_string()),
            (
                "TICKETSYNC_LOG_FORMAT",
                if json_logs { "json" } else { "text" }.into(),
            ),
        ],
        &log,
        &log,
    )
    .await;
    let base = binary.base();
    let mut r = Recorder::new(&base, BINARY_ADMIN_TOKEN);
    let webhook_token = drive(&mut r, &simc, &sim.host(), &base).await;
    // A few refused admin calls too.
    let upper = BINARY_ADMIN_TOKEN.to_uppercase();
    for token in ["wrong", upper.as_str()] {
        let req = Req::new(Method::GET, "/api/v1/orgs").bearer(token);
        assert_eq!(send(&r.http, &r.base, &req).await.status, 401);
    }
    stop_binary(binary).await;

    let output = std::fs::read(&log).unwrap();
    let text = String::from_utf8_lossy(&output);
    // The capture works at the asked level: the intake and the connect flow are in it.
    let level_marker = if json_logs {
        format!("\"level\":\"{}\"", level.to_uppercase())
    } else {
        level.to_uppercase()
    };
    for expected in [
        "webhook accepted",
        "freshdesk connection saved",
        level_marker.as_str(),
    ] {
        assert!(
            text.contains(expected),
            "the captured output has no {expected:?}; it was:\n{}",
            &text[..text.len().min(4000)]
        );
    }
    let mut secrets = needles(&[KEY_ONE, KEY_TWO, WRONG_KEY, BINARY_ADMIN_TOKEN]);
    secrets.push(("the webhook token".into(), webhook_token.clone()));
    assert_absent(
        &format!("the binary's output (RUST_LOG={level}, json {json_logs})"),
        &output,
        &secrets,
    );
    // The responses of the binary are clean too.
    r.assert_clean(&needles(&[KEY_ONE, KEY_TWO, WRONG_KEY]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_real_binary_never_logs_api_keys_the_admin_token_or_the_webhook_token() {
    binary_keeps_secrets_out_of_its_output("debug", false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_real_binary_keeps_every_secret_out_of_json_logs_even_at_trace_level() {
    binary_keeps_secrets_out_of_its_output("trace", true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_generated_admin_token_is_printed_once_and_never_logged_at_any_level() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let backend = TestBackend::from_env();
    let run = |n: u32| {
        let dir = dir.path().to_path_buf();
        let stdout = dir.join(format!("stdout-{n}.txt"));
        let stderr = dir.join(format!("stderr-{n}.txt"));
        let backend = &backend;
        async move {
            let binary = start_binary(
                &dir,
                backend,
                &[
                    ("TICKETSYNC__SERVER__ADMIN_TOKEN", String::new()),
                    ("RUST_LOG", "trace".into()),
                ],
                &stdout,
                &stderr,
            )
            .await;
            (binary, stdout, stderr)
        }
    };

    let (first, stdout1, stderr1) = run(1).await;
    let printed = std::fs::read_to_string(&stdout1).unwrap();
    let token = printed
        .split_whitespace()
        .find(|w| w.starts_with("tsa_"))
        .unwrap_or_else(|| panic!("no generated token on stdout: {printed:?}"))
        .to_string();
    assert_eq!(
        printed.matches(&token).count(),
        1,
        "the token is printed exactly once: {printed:?}"
    );
    // Stored with the data: sled's directory, or PostgreSQL's meta table (every node's).
    let stored = match &backend {
        TestBackend::Sled => std::fs::read_to_string(data.join("admin_token")).unwrap(),
        TestBackend::Postgres(db) => testkit::pg::query_column(
            db.url(),
            "SELECT convert_from(value, 'UTF8') FROM meta WHERE key = 'admin_token'",
        )
        .unwrap()
        .concat(),
    };
    assert_eq!(stored.trim(), token);
    // Use it, and fail with a wrong one, so that request logging runs at every level.
    let http = reqwest::Client::new();
    let exercise = |base: String| {
        let (http, token) = (http.clone(), token.clone());
        async move {
            let upper = token.to_uppercase();
            for (bearer, status) in [(token.as_str(), 200), ("wrong", 401), (upper.as_str(), 401)] {
                let res = http
                    .get(format!("{base}/api/v1/orgs"))
                    .bearer_auth(bearer)
                    .send()
                    .await
                    .unwrap();
                assert_eq!(res.status(), status);
            }
            let res = http
                .post(format!("{base}/api/v1/orgs"))
                .bearer_auth(&token)
                .json(&json!({"name": "Acme"}))
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), 201);
        }
    };
    exercise(first.base()).await;
    stop_binary(first).await;

    let (second, stdout2, stderr2) = run(2).await;
    exercise(second.base()).await;
    stop_binary(second).await;

    let secret = needles(&[&token]);
    let logs1 = std::fs::read(&stderr1).unwrap();
    assert!(
        String::from_utf8_lossy(&logs1).contains("TRACE"),
        "the first run logged at trace level"
    );
    assert_absent(
        "the log of the first start (RUST_LOG=trace)",
        &logs1,
        &secret,
    );
    assert_absent(
        "the log of the second start (RUST_LOG=trace)",
        &std::fs::read(&stderr2).unwrap(),
        &secret,
    );
    assert_absent(
        "stdout of the second start",
        &std::fs::read(&stdout2).unwrap(),
        &secret,
    );
    // Stdout of the first start holds the token only on its one line.
    let lines: Vec<&str> = printed.lines().filter(|l| l.contains(&token)).collect();
    assert_eq!(lines.len(), 1);
    assert!(
        lines[0].starts_with("Generated admin token"),
        "{}",
        lines[0]
    );
}
