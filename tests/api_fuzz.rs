//! The admin API against its own OpenAPI document, fuzzed by schemathesis: the real
//! `ticketsync` binary (storage backend of `TICKETSYNC_TEST_BACKEND`) connected to the
//! Freshdesk simulator, with an org, its connection and answered tickets in place, then
//! `schemathesis run <base>/api/v1/openapi.json` with the admin token, a fixed seed, a fixed
//! number of examples per operation, the examples, coverage and fuzzing phases, the stateful
//! phase along the document's links, and the checks below. It passes when schemathesis exits
//! 0: no 5xx, every status, content type, header and body as documented, invalid input
//! refused and valid input accepted, 401 without a token or with a wrong one, 405 with
//! `Allow` for a method a path does not take. On failure it prints
//! schemathesis's report and the service log.
//!
//! Two runs, so the fuzzer cannot break its own setup: the first covers every operation but
//! `DELETE /orgs/{org_id}` and `DELETE /orgs/{org_id}/freshdesk`, and half the time its path
//! ids are the set-up org's, tickets' and sessions' and its webhook token the org's (random
//! ones otherwise); the second covers only those two deletions (no stateful phase: no link
//! leads to them alone), aimed at a second connected org of their own, so erasure and
//! disconnect run on a real org too.
//!
//! schemathesis is found at `TICKETSYNC_SCHEMATHESIS` or in the venv `target/schemathesis`
//! (`python3 -m venv target/schemathesis && target/schemathesis/bin/pip install
//! schemathesis==4.32.5`); without it the test prints `SKIPPED (no schemathesis)` and passes,
//! unless `TICKETSYNC_TEST_SCHEMATHESIS_REQUIRED=1` (set by `.ci/run`).

use serde_json::{json, Value};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;
use testkit::process::wait_with_timeout;
use testkit::sim::AI_KEY;
use testkit::{eventually, ServiceProcess};

/// The operator token the service is started with.
const ADMIN_TOKEN: &str = "fuzz-admin-token-7d1c93";
/// The version `.ci/run` installs (for the skip notice).
const SCHEMATHESIS_VERSION: &str = "4.32.5";
/// The fixed seed (the same cases every run; `TICKETSYNC_FUZZ_SEED` picks another).
const SEED: u64 = 20_261_203;
/// Test cases per operation and phase.
const MAX_EXAMPLES: u32 = 100;
/// The hard bound on each run's process (schemathesis's `--max-time` is not one: it keeps
/// fuzzing until the budget is spent, so the example count would not be fixed).
const RUN_TIMEOUT: Duration = Duration::from_secs(240);
/// How long a start of the service may take.
const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// The checks: everything about the responses, invalid input refused and valid input
/// accepted (`positive_data_acceptance`: a body or parameter the document admits is never
/// refused 400 or 422; an unknown random id may still be a 404, a random webhook token a
/// 401), and `ignored_auth` (an operation that answers 2xx with the admin token answers 401
/// without a token and with a wrong one). Not the resource-lifecycle checks that assume REST
/// conventions the API does not follow (those are covered by the black-box suite).
const CHECKS: &str = "not_a_server_error,status_code_conformance,content_type_conformance,\
response_headers_conformance,response_schema_conformance,negative_data_rejection,\
positive_data_acceptance,missing_required_header,unsupported_method,allow_header_conformance,\
ignored_auth";
/// Where well-formed input may still be refused for what it names rather than its shape, as
/// a made-up id is a 404: `positive_data_acceptance` lets through the 422s of the operations
/// Freshdesk answers (an unknown domain, a wrong key, a group that does not exist), and the
/// 400 `invalid_cursor` of a cursor no earlier page returned.
const NOT_SHAPE_REFUSALS: &str = r#"[[operations]]
include-operation-id = ["verify_freshdesk", "save_freshdesk"]
checks.positive_data_acceptance.expected-statuses = ["2xx", "401", "404", "409", "422", "429", "5xx"]
[[operations]]
include-operation-id = "list_sessions"
checks.positive_data_acceptance.expected-statuses = ["2xx", "400", "401", "404", "409", "429", "5xx"]
"#;
/// The two operations of the second run (and excluded from the first).
const DESTRUCTIVE: &str = r"^DELETE .*/orgs/\{org_id\}(/freshdesk)?$";

#[test]
fn the_api_conforms_to_its_openapi_document_under_schemathesis() {
    let Some(schemathesis) = schemathesis() else {
        return;
    };
    // The fuzzer verifies and saves settings hundreds of times a minute: far past a Freshdesk
    // account's budget, whose refusal the service answers 502 `freshdesk_unreachable`.
    let sim = freshdesk_sim::spawn(freshdesk_sim::SimConfig {
        rate_limit_per_min: 1_000_000,
        ..freshdesk_sim::SimConfig::default()
    })
    .expect("simulator starts");
    let dir = tempfile::Builder::new()
        .prefix("ticketsync-fuzz-")
        .tempdir()
        .expect("temp dir");
    let mut service = ServiceProcess::new(
        env!("CARGO_BIN_EXE_ticketsync"),
        dir.path(),
        include_str!("../config.toml"),
    )
    .against_simulator(&sim.host(), ADMIN_TOKEN);
    service.spawn();
    let base = service.base();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime for the setup");
    let setup = runtime.block_on(async {
        let http = reqwest::Client::new();
        service.wait_ready(&http, READY_TIMEOUT).await;
        Setup::create(&http, &base, &sim).await
    });

    let seed = testkit::seed_from_env("TICKETSYNC_FUZZ_SEED", SEED);
    let runs = [
        (
            "everything but the deletions",
            setup.config(&setup.main),
            ["--exclude-name-regex", DESTRUCTIVE],
            "examples,coverage,fuzzing,stateful",
        ),
        (
            "the deletions, on their own org",
            setup.config(&setup.victim),
            ["--include-name-regex", DESTRUCTIVE],
            // No link leads to a deletion alone.
            "examples,coverage,fuzzing",
        ),
    ];
    for (i, (what, config, filter, phases)) in runs.iter().enumerate() {
        let config_path = dir.path().join(format!("schemathesis-{i}.toml"));
        std::fs::write(&config_path, config).expect("schemathesis config written");
        let report = dir.path().join(format!("schemathesis-{i}.log"));
        let out = std::fs::File::create(&report).expect("report file");
        let mut run = Command::new(&schemathesis)
            .arg("--config-file")
            .arg(&config_path)
            .arg("run")
            .arg(format!("{base}/api/v1/openapi.json"))
            .args(["--header", &format!("Authorization: Bearer {ADMIN_TOKEN}")])
            .args(["--checks", CHECKS])
            .args(["--phases", phases])
            .args(["--max-examples", &MAX_EXAMPLES.to_string()])
            .args(["--seed", &seed.to_string()])
            .args(["--workers", "1", "--request-timeout", "10"])
            .args(["--generation-database", "none", "--no-color"])
            .args(["--suppress-health-check", "all"])
            .args(filter)
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .expect("schemathesis starts");
        let status = wait_with_timeout(&mut run, RUN_TIMEOUT);
        let report = std::fs::read_to_string(&report).unwrap_or_default();
        println!("schemathesis, {what} (seed {seed}):\n{report}");
        service.assert_alive();
        match status {
            Some(status) if status.success() => {}
            Some(status) => panic!(
                "schemathesis found failures in {what} ({status}, seed {seed}); its report is \
                 above\n{}",
                service.log_tail(60)
            ),
            None => panic!("schemathesis ({what}) did not finish in {RUN_TIMEOUT:?}"),
        }
    }
    service.kill();
}

/// The ids the fuzzer aims at: an org connected to the simulator with answered tickets (the
/// first run's), and one more connected org for the deletions.
struct Setup {
    main: Ids,
    victim: Ids,
}

/// One org's ids.
struct Ids {
    org: String,
    /// The secret token of its webhook URL.
    webhook_token: String,
    tickets: Vec<u64>,
    sessions: Vec<String>,
}

impl Setup {
    /// Two connected orgs; the simulator's rules post to the first, whose three tickets get
    /// sessions.
    async fn create(http: &reqwest::Client, base: &str, sim: &freshdesk_sim::SimHandle) -> Self {
        let simc = freshdesk_sim::SimClient::new(sim.base_url());
        let victim = connect(http, base, sim, "Victim").await;
        let main = connect(http, base, sim, "Acme").await;
        simc.set_webhook(&freshdesk_sim::WebhookConfig::to(format!(
            "{base}/webhooks/freshdesk/{}",
            webhook_token(&main)
        )))
        .await
        .expect("the simulator's rules point at the service");
        let org = main["org_id"].as_str().unwrap().to_string();
        let mut tickets = Vec::new();
        for (subject, text) in [
            ("Password", "How do I reset my password?"),
            ("Human", "I want to talk to a human"),
            ("Invoice", "Where is my invoice from March?"),
        ] {
            let t = simc
                .create_ticket(&freshdesk_sim::NewTicket::new(subject, text))
                .await
                .expect("ticket created");
            tickets.push(t["id"].as_u64().unwrap());
        }
        let sessions = eventually(
            "a session for every ticket",
            Duration::from_secs(30),
            || async {
                let page = admin(
                    http,
                    reqwest::Method::GET,
                    base,
                    &format!("/orgs/{org}/sessions"),
                    None,
                )
                .await;
                let items = page["items"].as_array()?;
                (items.len() == tickets.len()).then(|| {
                    items
                        .iter()
                        .map(|s| s["id"].as_str().unwrap().to_string())
                        .collect::<Vec<_>>()
                })
            },
        )
        .await;
        Setup {
            main: Ids {
                org,
                webhook_token: webhook_token(&main),
                tickets,
                sessions,
            },
            victim: Ids {
                org: victim["org_id"].as_str().unwrap().to_string(),
                webhook_token: webhook_token(&victim),
                tickets: Vec::new(),
                sessions: Vec::new(),
            },
        }
    }

    /// A schemathesis.toml whose path ids (and webhook token) are `ids`' half the time.
    fn config(&self, ids: &Ids) -> String {
        let list = |v: Vec<String>| v.join(", ");
        let mut out = format!(
            "[dictionaries.orgs]\nvalues = [{}]\n",
            list(vec![format!("{:?}", ids.org)])
        );
        out += &format!(
            "[dictionaries.webhooks]\nvalues = [{:?}]\n",
            ids.webhook_token
        );
        let mut parameters = vec![
            r#""path.org_id" = { dictionary = "orgs", probability = 0.5 }"#,
            r#""path.token" = { dictionary = "webhooks", probability = 0.5 }"#,
        ];
        if !ids.tickets.is_empty() {
            out += &format!(
                "[dictionaries.tickets]\nvalues = [{}]\n",
                list(ids.tickets.iter().map(u64::to_string).collect())
            );
            parameters.push(r#""path.ticket_id" = { dictionary = "tickets", probability = 0.5 }"#);
        }
        if !ids.sessions.is_empty() {
            out += &format!(
                "[dictionaries.sessions]\nvalues = [{}]\n",
                list(ids.sessions.iter().map(|s| format!("{s:?}")).collect())
            );
            parameters
                .push(r#""path.session_id" = { dictionary = "sessions", probability = 0.5 }"#);
        }
        format!(
            "parameters = {{ {} }}\n{out}{NOT_SHAPE_REFUSALS}",
            parameters.join(", ")
        )
    }
}

/// The secret token at the end of a saved connection's webhook URL.
fn webhook_token(connection: &Value) -> String {
    let url = connection["webhook_url"].as_str().expect("webhook url");
    url.rsplit('/').next().unwrap().to_string()
}

/// Create an org named `name` and connect it to the simulator; the saved connection.
async fn connect(
    http: &reqwest::Client,
    base: &str,
    sim: &freshdesk_sim::SimHandle,
    name: &str,
) -> Value {
    let org = admin(
        http,
        reqwest::Method::POST,
        base,
        "/orgs",
        Some(json!({"name": name})),
    )
    .await;
    let org_id = org["id"].as_str().expect("org id").to_string();
    let mut saved = admin(
        http,
        reqwest::Method::PUT,
        base,
        &format!("/orgs/{org_id}/freshdesk"),
        Some(json!({"domain": sim.host(), "api_key": AI_KEY})),
    )
    .await;
    saved["org_id"] = json!(org_id);
    saved
}

/// An admin API call that must succeed; its JSON body.
async fn admin(
    http: &reqwest::Client,
    method: reqwest::Method,
    base: &str,
    path: &str,
    body: Option<Value>,
) -> Value {
    let mut req = http
        .request(method.clone(), format!("{base}/api/v1{path}"))
        .bearer_auth(ADMIN_TOKEN);
    if let Some(body) = body {
        req = req.json(&body);
    }
    let res = req.send().await.expect("request sent");
    let status = res.status();
    let body: Value = res.json().await.unwrap_or(Value::Null);
    assert!(status.is_success(), "{method} {path}: {status} {body}");
    body
}

/// The schemathesis binary, when installed.
fn schemathesis() -> Option<PathBuf> {
    let path = std::env::var_os("TICKETSYNC_SCHEMATHESIS")
        .map(PathBuf::from)
        .unwrap_or_else(|| target_dir().join("schemathesis/bin/schemathesis"));
    let works = Command::new(&path)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if works {
        return Some(path);
    }
    let missing = format!(
        "{} does not run: python3 -m venv target/schemathesis && \
         target/schemathesis/bin/pip install schemathesis=={SCHEMATHESIS_VERSION} \
         (or set TICKETSYNC_SCHEMATHESIS)",
        path.display()
    );
    assert!(
        std::env::var("TICKETSYNC_TEST_SCHEMATHESIS_REQUIRED").as_deref() != Ok("1"),
        "schemathesis is required (TICKETSYNC_TEST_SCHEMATHESIS_REQUIRED=1) but {missing}"
    );
    // Straight to stderr, past the test harness's capture, like the browser test's skip.
    let _ = writeln!(std::io::stderr(), "SKIPPED (no schemathesis): {missing}");
    None
}

/// `target/` (the parent of the tests' temporary directory, `target/tmp`).
fn target_dir() -> PathBuf {
    let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
    tmp.parent().unwrap_or(tmp).to_path_buf()
}
