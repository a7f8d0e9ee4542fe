//! `ticketsync demo`: the whole flow in one command, without a Freshdesk account.
//!
//! The demo starts the Freshdesk simulator (`freshdesk-sim`) and the service in-process, each
//! on its own thread with its own actix system, the service on a fresh temporary data directory
//! with a generated admin token. It then acts as an admin would, through the real admin HTTP
//! API: it creates an organization, verifies and saves the simulator's AI agent credentials and
//! points the simulator's automation rules at the returned webhook URL. As a customer it opens
//! three tickets (one the builtin FAQ answers, one asking for a human, one nobody documented)
//! and follows up on the first once the AI has answered it. It waits (polling, with deadlines)
//! until every ticket has its outcome and the engine is idle, prints each thread as Freshdesk
//! now shows it next to the session ticketsync keeps, and prints what to explore next.
//!
//! Without `--keep-running` both servers stop and the data directory is removed when the
//! transcript is printed; with it they keep running until Ctrl-C, and the demo prints the
//! admin console's URL with the admin token it generated (a throwaway token of this run, never
//! a configured one: the demo always replaces `server.admin_token`).
//!
//! `TICKETSYNC__SECTION__KEY` environment overrides apply as for `serve` (e.g. to try the
//! `openai` responder), except for the keys the demo sets itself: listen address, public URL,
//! storage path, admin token and the simulator as insecure host.

use crate::config::Settings;
use crate::startup::{BackgroundService, StartupError};
use anyhow::{anyhow, bail, Context};
use freshdesk_sim::{NewTicket, SimClient, SimConfig, WebhookConfig};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::cell::Cell;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// How long one step (an answer, a handoff, the engine going idle) may take.
const STEP_TIMEOUT: Duration = Duration::from_secs(30);
/// Pause between two polls while waiting.
const POLL_EVERY: Duration = Duration::from_millis(50);
/// Consecutive idle polls before the engine counts as settled.
const QUIET_POLLS: u32 = 4;
/// Width the message bodies of the transcript are wrapped to.
const WRAP_WIDTH: usize = 78;
/// The organization the demo connects.
const ORG_NAME: &str = "Acme (demo)";
/// Status names of the standard Freshdesk statuses.
const STATUS_NAMES: [(u64, &str); 4] =
    [(2, "Open"), (3, "Pending"), (4, "Resolved"), (5, "Closed")];

/// The customer's tickets: subject, first message and what the builtin responder will do.
const TICKETS: [(&str, &str, &str); 3] = [
    (
        "Password reset",
        "How do I reset my password?",
        "the builtin FAQ answers it",
    ),
    (
        "Talk to someone",
        "I want to talk to a human",
        "handoff: customer_requested",
    ),
    (
        "Invoice",
        "Where is my invoice from March?",
        "handoff: missing_knowledge, no FAQ entry covers it",
    ),
];
/// The customer's follow-up on the first ticket, once the AI answered it.
const FOLLOW_UP: &str = "That solved it, thanks!";

/// What `ticketsync demo` was asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DemoOptions {
    /// Port of the service on 127.0.0.1.
    pub port: u16,
    /// Port of the Freshdesk simulator on 127.0.0.1.
    pub sim_port: u16,
    /// Keep both servers running after the transcript, until Ctrl-C.
    pub keep_running: bool,
}

/// Make the demo's default log level `warn`, so stdout carries the transcript and stderr only
/// what needs attention. Does nothing when `RUST_LOG` is set. Call it before the logger is
/// installed and before any other thread starts.
pub fn quiet_logs_by_default() {
    if std::env::var_os("RUST_LOG").is_none() {
        std::env::set_var("RUST_LOG", "warn");
    }
}

/// Run the demo: start both servers, drive the flow, print the transcript, stop (or keep
/// running until Ctrl-C with `keep_running`).
pub fn run(options: DemoOptions) -> anyhow::Result<()> {
    if options.port == options.sim_port {
        bail!(
            "--port and --sim-port are both {}: the service and the simulator need two different ports",
            options.port
        );
    }
    let data_dir = DataDir::create()?;
    println!("ticketsync demo: the whole flow against an in-process Freshdesk simulator");
    println!();

    let sim = freshdesk_sim::spawn(SimConfig {
        port: options.sim_port,
        ..SimConfig::default()
    })
    .with_context(|| {
        format!(
            "cannot start the Freshdesk simulator on 127.0.0.1:{} (is the port in use? choose another with --sim-port)",
            options.sim_port
        )
    })?;
    println!("[1/5] Freshdesk simulator listening on {}", sim.base_url());

    let admin_token = format!("demo-{}", uuid::Uuid::new_v4().simple());
    let settings = demo_settings(options.port, &sim.host(), data_dir.path(), &admin_token)?;
    let listen = settings.server.listen.clone();
    let service = BackgroundService::start(settings).map_err(|e| startup_error(&listen, e))?;
    println!(
        "[2/5] ticketsync listening on {} (data in {})",
        service.base_url(),
        data_dir.path().display()
    );

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the demo's async runtime")?;
    let demo = Demo {
        http: reqwest::Client::new(),
        base: service.base_url(),
        token: admin_token,
        sim: sim.client(),
        sim_host: sim.host(),
    };
    let result = runtime.block_on(async {
        tokio::select! {
            flow = demo.run() => flow?,
            _ = tokio::signal::ctrl_c() => bail!("interrupted before the demo finished"),
        }
        if options.keep_running {
            println!();
            println!(
                "Admin console: {}/ (sign in with the admin token {})",
                demo.base, demo.token
            );
            println!("Both keep running; Ctrl-C stops them and removes the data directory.");
            tokio::signal::ctrl_c()
                .await
                .context("cannot wait for Ctrl-C")?;
            println!();
            println!("Stopping.");
        } else {
            println!();
            println!(
                "The demo has stopped both servers and removed its data; run it with --keep-running to explore them."
            );
        }
        Ok(())
    });
    // The service first, so that it makes no further calls to the simulator.
    service.stop();
    sim.stop();
    drop(data_dir);
    result
}

/// The embedded `config.toml` with the process's `TICKETSYNC__*` overrides, then the demo's.
fn demo_settings(
    port: u16,
    sim_host: &str,
    data_dir: &Path,
    admin_token: &str,
) -> anyhow::Result<Settings> {
    let text = |s: &str| toml::Value::String(s.to_string()).to_string();
    let storage_path = data_dir
        .to_str()
        .ok_or_else(|| anyhow!("the temporary directory {data_dir:?} is not valid UTF-8"))?;
    let listen = format!("127.0.0.1:{port}");
    let demo = [
        ("TICKETSYNC__SERVER__LISTEN", text(&listen)),
        (
            "TICKETSYNC__SERVER__PUBLIC_URL",
            text(&format!("http://{listen}")),
        ),
        ("TICKETSYNC__SERVER__ADMIN_TOKEN", text(admin_token)),
        ("TICKETSYNC__STORAGE__PATH", text(storage_path)),
        (
            "TICKETSYNC__FRESHDESK__INSECURE_HOSTS",
            toml::Value::Array(vec![toml::Value::String(sim_host.to_string())]).to_string(),
        ),
    ];
    let overrides = std::env::vars()
        .filter(|(name, _)| !demo.iter().any(|(key, _)| key == name))
        .chain(demo.iter().map(|(k, v)| (k.to_string(), v.clone())));
    Settings::parse_with_env(include_str!("../config.toml"), overrides).context(
        "the demo configuration (embedded config.toml plus TICKETSYNC__* overrides) is invalid",
    )
}

/// A fresh directory under the system's temporary directory, removed on drop.
struct DataDir(PathBuf);

impl DataDir {
    fn create() -> anyhow::Result<Self> {
        let path =
            std::env::temp_dir().join(format!("ticketsync-demo-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&path)
            .with_context(|| format!("cannot create the demo data directory {}", path.display()))?;
        Ok(Self(path))
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for DataDir {
    fn drop(&mut self) {
        if let Err(err) = std::fs::remove_dir_all(&self.0) {
            eprintln!(
                "warning: cannot remove the demo data directory {}: {err}",
                self.0.display()
            );
        }
    }
}

/// A startup failure as the demo's user should read it.
fn startup_error(listen: &str, err: StartupError) -> anyhow::Error {
    match err {
        StartupError::Bind { source, .. } => anyhow::Error::new(source).context(format!(
            "cannot start ticketsync on {listen} (is the port in use? choose another with --port)"
        )),
        other => anyhow!("cannot start ticketsync: {other}"),
    }
}

/// The connected organization.
struct Org {
    id: String,
}

/// The demo's view of both servers.
struct Demo {
    http: reqwest::Client,
    base: String,
    token: String,
    sim: SimClient,
    sim_host: String,
}

impl Demo {
    /// Steps 3 to 5: connect, open tickets, wait for the outcomes, print.
    async fn run(&self) -> anyhow::Result<()> {
        let started = Instant::now();
        let org = self.connect().await?;

        println!("[4/5] A customer opens three tickets:");
        let mut ids = Vec::new();
        for (subject, question, expected) in TICKETS {
            let ticket = self
                .sim
                .create_ticket(&NewTicket::new(subject, format!("<p>{question}</p>")))
                .await
                .with_context(|| format!("the simulator refused the ticket {subject:?}"))?;
            let id = ticket["id"]
                .as_u64()
                .ok_or_else(|| anyhow!("the simulator's new ticket has no id: {ticket}"))?;
            println!("      #{id} {question:?}  -> {expected}");
            ids.push(id);
        }
        let first = ids[0];
        self.wait_first_answer(first).await?;
        println!("      the AI answered #{first}; the customer follows up on it: {FOLLOW_UP:?}");
        self.sim
            .customer_reply(first, &format!("<p>{FOLLOW_UP}</p>"))
            .await
            .with_context(|| format!("the simulator refused the follow-up on ticket #{first}"))?;

        let mut sessions = Vec::new();
        for &id in &ids {
            let customer_messages = if id == first { 2 } else { 1 };
            sessions.push(self.wait_outcome(&org, id, customer_messages).await?);
        }
        self.settle().await?;
        println!(
            "[5/5] Every ticket has its outcome ({} ms in all). As Freshdesk shows them now:",
            started.elapsed().as_millis()
        );
        for (&id, session) in ids.iter().zip(&sessions) {
            // Re-read the session too: the engine is idle now, so both views are final.
            let session = self
                .session(&org, id)
                .await?
                .unwrap_or_else(|| session.clone());
            let ticket = self
                .sim
                .get_ticket(id)
                .await
                .with_context(|| format!("cannot read ticket #{id} from the simulator"))?;
            println!();
            print_ticket(&ticket, &session);
        }
        self.print_explore(&org);
        Ok(())
    }

    /// Step 3: create and connect an organization through the admin API, then point the
    /// simulator's automation rules at its webhook.
    async fn connect(&self) -> anyhow::Result<Org> {
        let org = self
            .api(
                Method::POST,
                "/api/v1/orgs",
                Some(json!({"name": ORG_NAME})),
            )
            .await?;
        let id = org["id"]
            .as_str()
            .ok_or_else(|| anyhow!("POST /api/v1/orgs answered without an id: {org}"))?
            .to_string();
        let credentials = json!({"domain": self.sim_host, "api_key": freshdesk_sim::ADMIN_KEY});
        let verified = self
            .api(
                Method::POST,
                &format!("/api/v1/orgs/{id}/freshdesk/verify"),
                Some(credentials.clone()),
            )
            .await?;
        let saved = self
            .api(
                Method::PUT,
                &format!("/api/v1/orgs/{id}/freshdesk"),
                Some(credentials),
            )
            .await?;
        let webhook_url = saved["webhook_url"]
            .as_str()
            .ok_or_else(|| anyhow!("the saved connection has no webhook_url: {saved}"))?;
        self.sim
            .set_webhook(&WebhookConfig::to(webhook_url))
            .await
            .context("cannot point the simulator's automation rules at the webhook")?;
        let agent = &verified["agent"];
        println!(
            "[3/5] Org {ORG_NAME:?} ({id}) connected to Freshdesk {} as agent {} {} <{}>",
            self.sim_host,
            agent["id"],
            agent["name"].as_str().unwrap_or("?"),
            agent["email"].as_str().unwrap_or("?"),
        );
        println!("      the simulator's automation rules now post to {webhook_url}");
        let org = Org { id };
        let backfill = self.wait_backfill(&org).await?;
        println!(
            "      first-connect backfill done: {} existing open/pending tickets imported as history",
            backfill["tickets_queued"].as_u64().unwrap_or_default()
        );
        Ok(org)
    }

    /// Wait until the first-connect backfill has finished, so that the customer's tickets are
    /// all live traffic (a refused listing is retried by the engine until it succeeds).
    async fn wait_backfill(&self, org: &Org) -> anyhow::Result<Value> {
        let path = format!("/api/v1/orgs/{}/freshdesk", org.id);
        wait_for("the first-connect backfill to finish", || async {
            let connection = self.api(Method::GET, &path, None).await?;
            let backfill = &connection["backfill"];
            match backfill["state"].as_str() {
                Some("done") => Ok(Some(backfill.clone())),
                _ => Ok(None),
            }
        })
        .await
    }

    /// Wait until the AI agent has posted on `ticket`.
    async fn wait_first_answer(&self, ticket: u64) -> anyhow::Result<()> {
        wait_for(&format!("the AI to answer ticket #{ticket}"), || async {
            let t = self.sim.get_ticket(ticket).await?;
            let answered = conversations(&t)
                .iter()
                .any(|c| c["user_id"] == freshdesk_sim::AI_AGENT_ID);
            Ok(answered.then_some(()))
        })
        .await
    }

    /// Wait until the session of `ticket` holds `customer_messages` customer messages and
    /// either a handoff or an AI message after the last of them.
    async fn wait_outcome(
        &self,
        org: &Org,
        ticket: u64,
        customer_messages: usize,
    ) -> anyhow::Result<Value> {
        wait_for(
            &format!("the outcome of ticket #{ticket} (an AI answer or a handoff)"),
            || async {
                let Some(session) = self.session(org, ticket).await? else {
                    return Ok(None);
                };
                Ok(has_outcome(&session, customer_messages).then_some(session))
            },
        )
        .await
    }

    /// Wait until every webhook was delivered and the engine has nothing queued or pending,
    /// several polls in a row.
    async fn settle(&self) -> anyhow::Result<()> {
        let quiet = Cell::new(0);
        let quiet = &quiet;
        wait_for("the engine to finish its work", || async move {
            let delivered = self
                .sim
                .deliveries()
                .await?
                .iter()
                .all(|d| d.dropped || d.status.is_some() || d.error.is_some());
            let inspect = self.api(Method::GET, "/api/v1/inspect", None).await?;
            let idle = inspect["inbox_depth"] == 0 && inspect["pending_effects"] == 0;
            quiet.set(if delivered && idle {
                quiet.get() + 1
            } else {
                0
            });
            Ok((quiet.get() >= QUIET_POLLS).then_some(()))
        })
        .await
    }

    /// `GET …/tickets/{id}/session`; `None` while the ticket has no session yet.
    async fn session(&self, org: &Org, ticket: u64) -> anyhow::Result<Option<Value>> {
        let path = format!("/api/v1/orgs/{}/tickets/{ticket}/session", org.id);
        match self.request(Method::GET, &path, None).await? {
            (StatusCode::NOT_FOUND, _) => Ok(None),
            (status, body) if status.is_success() => Ok(Some(body)),
            (status, body) => bail!("GET {path} answered {status}: {body}"),
        }
    }

    /// An admin API call that must succeed; its JSON body.
    async fn api(&self, method: Method, path: &str, body: Option<Value>) -> anyhow::Result<Value> {
        let (status, answer) = self.request(method.clone(), path, body).await?;
        if !status.is_success() {
            bail!("{method} {path} answered {status}: {answer}");
        }
        Ok(answer)
    }

    /// An admin API call: status and JSON body (`null` when empty).
    async fn request(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> anyhow::Result<(StatusCode, Value)> {
        let mut request = self
            .http
            .request(method.clone(), format!("{}{path}", self.base))
            .bearer_auth(&self.token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request
            .send()
            .await
            .with_context(|| format!("{method} {path}: the service did not answer"))?;
        let status = response.status();
        let bytes = response
            .bytes()
            .await
            .with_context(|| format!("{method} {path}: cannot read the answer"))?;
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
        };
        Ok((status, body))
    }

    /// Step 6: where to look next.
    fn print_explore(&self, org: &Org) {
        let (base, sim, org) = (&self.base, self.sim.base_url(), &org.id);
        println!();
        println!("Explore (admin token {}):", self.token);
        println!("  H='Authorization: Bearer {}'", self.token);
        let commands = [
            (
                "the inbox: every session, most recently updated first",
                format!("curl -H \"$H\" {base}/api/v1/orgs/{org}/sessions"),
            ),
            (
                "one session with its messages",
                format!("curl -H \"$H\" {base}/api/v1/orgs/{org}/tickets/1/session"),
            ),
            (
                "the engine's embedded state",
                format!("curl -H \"$H\" {base}/api/v1/inspect"),
            ),
            (
                "Prometheus metrics",
                format!("curl -H \"$H\" {base}/metrics"),
            ),
            (
                "ticket 1 as the simulated Freshdesk holds it",
                format!("curl {sim}/_sim/tickets/1"),
            ),
            (
                "a new customer ticket (with --keep-running)",
                format!(
                    "curl -H 'content-type: application/json' -d '{{\"subject\":\"Hi\",\"description\":\"I need an agent\"}}' {sim}/_sim/tickets"
                ),
            ),
        ];
        for (what, command) in commands {
            println!("  # {what}");
            println!("  {command}");
        }
    }
}

/// Poll `check` until it yields a value; fail after [`STEP_TIMEOUT`].
async fn wait_for<T, F, Fut>(what: &str, mut check: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<Option<T>>>,
{
    let deadline = Instant::now() + STEP_TIMEOUT;
    loop {
        let last_error = match check().await {
            Ok(Some(value)) => return Ok(value),
            Ok(None) => None,
            Err(err) => Some(err),
        };
        if Instant::now() >= deadline {
            let why = last_error
                .map(|e| format!(" (last error: {e:#})"))
                .unwrap_or_default();
            bail!(
                "timed out after {}s waiting for {what}{why}; run with RUST_LOG=info to see the service's log",
                STEP_TIMEOUT.as_secs()
            );
        }
        tokio::time::sleep(POLL_EVERY).await;
    }
}

/// Whether the session holds `customer_messages` contact messages and, after the last of
/// them, an AI message, or a handoff.
fn has_outcome(session: &Value, customer_messages: usize) -> bool {
    let messages = session["messages"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    let authored = |who: &str| messages.iter().rposition(|m| m["author"] == who);
    let contacts = messages.iter().filter(|m| m["author"] == "contact").count();
    if contacts < customer_messages {
        return false;
    }
    let answered = match (authored("contact"), authored("ai")) {
        (Some(contact), Some(ai)) => ai > contact,
        _ => false,
    };
    answered || !session["handoff"].is_null()
}

/// The simulator ticket's conversations.
fn conversations(ticket: &Value) -> &[Value] {
    ticket["conversations"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
}

/// One ticket: its thread as Freshdesk shows it, the session, the Freshdesk fields.
fn print_ticket(ticket: &Value, session: &Value) {
    let id = &ticket["id"];
    let subject = ticket["subject"].as_str().unwrap_or("");
    let title = format!("── Ticket #{id} {subject:?} ");
    let width = WRAP_WIDTH + 20;
    println!(
        "{title}{}",
        "─".repeat(width.saturating_sub(title.chars().count()))
    );
    let requester = &ticket["requester_id"];
    print_message(
        "Customer",
        ticket["description_text"].as_str().unwrap_or(""),
    );
    for conversation in conversations(ticket) {
        let private = conversation["private"].as_bool().unwrap_or(false);
        let author = if conversation["user_id"] == freshdesk_sim::AI_AGENT_ID {
            if private {
                "AI (private note)"
            } else {
                "AI (public)"
            }
            .to_string()
        } else if &conversation["user_id"] == requester {
            "Customer".to_string()
        } else {
            let kind = if private { "private note" } else { "public" };
            format!("Agent {} ({kind})", conversation["user_id"])
        };
        print_message(&author, conversation["body_text"].as_str().unwrap_or(""));
    }

    let state = session["state"].as_str().unwrap_or("?");
    let handoff = &session["handoff"];
    let handoff = if handoff.is_null() {
        "no handoff".to_string()
    } else {
        format!(
            "reason {}, routing {}{}",
            handoff["reason"].as_str().unwrap_or("?"),
            handoff["routing"].as_str().unwrap_or("?"),
            if handoff["fallback_used"] == true {
                ", fallback used"
            } else {
                ""
            },
        )
    };
    let mirrored = session["messages"].as_array().map_or(0, Vec::len);
    let mirrored_status = session["freshdesk_status"]["name"].as_str().unwrap_or("?");
    println!(
        "  ticketsync session:  state {state} ({handoff}); mirrors {mirrored} messages, status {mirrored_status}"
    );

    let status = ticket["status"].as_u64().unwrap_or_default();
    let status_name = if session["freshdesk_status"]["id"] == status {
        session["freshdesk_status"]["name"]
            .as_str()
            .map(str::to_string)
    } else {
        None
    }
    .or_else(|| {
        STATUS_NAMES
            .iter()
            .find(|(s, _)| *s == status)
            .map(|(_, name)| name.to_string())
    })
    .unwrap_or_else(|| "custom".to_string());
    let tags: Vec<&str> = ticket["tags"]
        .as_array()
        .map(|tags| tags.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let tags = tags.join(", ");
    let responder = match ticket["responder_id"].as_u64() {
        None => "unassigned".to_string(),
        Some(freshdesk_sim::AI_AGENT_ID) => {
            format!("{} (the AI agent)", freshdesk_sim::AI_AGENT_ID)
        }
        Some(agent) => format!("agent {agent}"),
    };
    println!(
        "  Freshdesk ticket:    status {status} ({status_name}); tags [{tags}]; responder {responder}"
    );
}

/// One message of a thread: the author, then the body wrapped and indented.
fn print_message(author: &str, body: &str) {
    const LABEL: usize = 20;
    let lines = wrap(body, WRAP_WIDTH);
    let mut lines = lines.iter();
    println!(
        "  {:<LABEL$} {}",
        format!("{author}:"),
        lines.next().map(String::as_str).unwrap_or("")
    );
    for line in lines {
        println!("  {:<LABEL$} {line}", "");
    }
}

/// Split `text` into lines of at most `width` characters, at spaces where possible, keeping
/// its own line breaks and dropping blank lines.
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut out = Vec::new();
    for paragraph in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let mut line = String::new();
        for word in paragraph.split_whitespace() {
            if !line.is_empty() && line.chars().count() + 1 + word.chars().count() > width {
                out.push(std::mem::take(&mut line));
            }
            if !line.is_empty() {
                line.push(' ');
            }
            line.push_str(word);
        }
        out.push(line);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    #[test]
    fn wrap_breaks_at_spaces_and_keeps_line_breaks() {
        assert_eq!(
            wrap("one two three\n\nfour", 7),
            vec!["one two", "three", "four"]
        );
        assert!(wrap("   ", 10).is_empty());
    }

    #[test]
    fn an_outcome_needs_every_customer_message_and_an_answer_after_the_last() {
        let session = |authors: &[&str], handoff: Value| {
            json!({
                "messages": authors.iter().map(|a| json!({"author": a})).collect::<Vec<_>>(),
                "handoff": handoff,
            })
        };
        assert!(has_outcome(&session(&["contact", "ai"], Value::Null), 1));
        assert!(!has_outcome(&session(&["contact", "ai"], Value::Null), 2));
        assert!(!has_outcome(
            &session(&["contact", "ai", "contact"], Value::Null),
            2
        ));
        assert!(has_outcome(
            &session(&["contact", "ai", "contact", "ai"], Value::Null),
            2
        ));
        assert!(has_outcome(
            &session(&["contact"], json!({"reason": "customer_requested"})),
            1
        ));
        assert!(!has_outcome(&session(&[], Value::Null), 1));
    }

    #[test]
    fn the_demo_settings_point_the_service_at_the_simulator() {
        let dir = std::env::temp_dir().join("ticketsync-demo-settings-test");
        let s = demo_settings(18080, "127.0.0.1:19000", &dir, "demo-token").unwrap();
        assert_eq!(s.server.listen, "127.0.0.1:18080");
        assert_eq!(s.server.public_url, "http://127.0.0.1:18080");
        assert_eq!(s.storage.path, dir);
        assert_eq!(s.freshdesk.insecure_hosts, vec!["127.0.0.1:19000"]);
        assert_eq!(s.server.admin_token.expose_secret(), "demo-token");
    }
}
