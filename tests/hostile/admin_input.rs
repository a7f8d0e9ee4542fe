//! The admin bodies under hostile input (contract §2, §7): `POST /api/v1/orgs`,
//! `POST …/freshdesk/verify`, `PUT …/freshdesk` and `POST …/sessions/{id}/handoff` with
//! truncated, mistyped, deeply nested, oversized and non-UTF-8 bodies and wrong content types.
//! Every request gets an answer, never a 5xx, every refusal is in the error shape, and a
//! refused request changes nothing.

use crate::fixture::{config, connection_snapshot, runtime, wait_backfill_done};
use crate::harness::{TestApp, ADMIN_TOKEN, AI_KEY, BILLING_GROUP, MARKER_FIELD, SUPPORT_GROUP};
use crate::parsers::nested;
use crate::wire::{assert_4xx, assert_clean, assert_refused, send, Answer, Req};
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::TestRunner;
use reqwest::Method;
use serde_json::{json, Value};
use std::time::Duration;
use ticketsync::connect::SaveRequest;
use ticketsync::freshdesk::DomainPolicy;

/// A JSON document kept as raw text per leaf, so a leaf can become anything, even bytes that
/// are not JSON.
#[derive(Debug, Clone)]
enum Raw {
    Leaf(Vec<u8>),
    Object(Vec<(String, Raw)>),
}

impl Raw {
    fn from_value(value: &Value) -> Self {
        match value {
            Value::Object(map) => Raw::Object(
                map.iter()
                    .map(|(k, v)| (k.clone(), Raw::from_value(v)))
                    .collect(),
            ),
            other => Raw::Leaf(other.to_string().into_bytes()),
        }
    }

    fn render(&self) -> Vec<u8> {
        match self {
            Raw::Leaf(bytes) => bytes.clone(),
            Raw::Object(fields) => {
                let mut out = b"{".to_vec();
                for (i, (key, value)) in fields.iter().enumerate() {
                    if i > 0 {
                        out.extend_from_slice(b", ");
                    }
                    out.extend_from_slice(serde_json::to_string(key).unwrap().as_bytes());
                    out.extend_from_slice(b": ");
                    out.extend_from_slice(&value.render());
                }
                out.push(b'}');
                out
            }
        }
    }

    /// Every node below the root, as a path of field indexes.
    fn paths(&self) -> Vec<Vec<usize>> {
        let mut out = Vec::new();
        if let Raw::Object(fields) = self {
            for (i, (_, value)) in fields.iter().enumerate() {
                out.push(vec![i]);
                for mut sub in value.paths() {
                    sub.insert(0, i);
                    out.push(sub);
                }
            }
        }
        out
    }

    fn apply(&mut self, path: &[usize], edit: &Edit) {
        let Raw::Object(fields) = self else { return };
        let (first, rest) = (path[0], &path[1..]);
        if rest.is_empty() {
            match edit {
                Edit::Replace(bytes) => fields[first].1 = Raw::Leaf(bytes.clone()),
                Edit::Remove => {
                    fields.remove(first);
                }
                Edit::Rename(name) => fields[first].0 = name.clone(),
                Edit::Duplicate(bytes) => {
                    let key = fields[first].0.clone();
                    fields.push((key, Raw::Leaf(bytes.clone())));
                }
            }
        } else {
            fields[first].1.apply(rest, edit);
        }
    }
}

/// One change to one field.
#[derive(Debug, Clone)]
enum Edit {
    Replace(Vec<u8>),
    Remove,
    Rename(String),
    Duplicate(Vec<u8>),
}

/// JSON fragments (and non-JSON bytes) to put where a field's value goes: every wrong type,
/// huge and tiny numbers, long strings, NUL, invalid UTF-8 and deep nesting.
fn hostile_fragment() -> impl Strategy<Value = Vec<u8>> {
    let fixed: Vec<Vec<u8>> = [
        "null",
        "true",
        "false",
        "0",
        "-0",
        "-1",
        "7",
        "1.5",
        "1e308",
        "-1e308",
        "1e-400",
        "18446744073709551616",
        "-9223372036854775809",
        "[]",
        "[1, \"a\"]",
        "{}",
        r#"{"a": 1}"#,
        r#""""#,
        r#""   ""#,
        r#""a\u0000b""#,
        r#""\u0000""#,
        r#""\ud800""#,
        r#""AUTOPILOT""#,
        r#""assist ""#,
        r#""group""#,
        r#""ünïcödé 🦀""#,
        "NaN",
        "Infinity",
        "undefined",
        "'single'",
        "\"unterminated",
    ]
    .iter()
    .map(|s| s.as_bytes().to_vec())
    .chain([
        b"\"raw\0nul\"".to_vec(),
        b"\"\xff\xfe\"".to_vec(),
        b"\"\xc3\"".to_vec(),
        b"\"\xed\xa0\x80\"".to_vec(),
        b"\xff".to_vec(),
        nested(10_000, false, "1").into_bytes(),
        nested(10_000, true, "1").into_bytes(),
        nested(129, false, "1").into_bytes(),
        format!("\"{}\"", "k".repeat(10_000)).into_bytes(),
        format!("\"{}\"", "é".repeat(30_000)).into_bytes(),
        format!("\"{}\"", "x".repeat(70_000)).into_bytes(),
        "9".repeat(400).into_bytes(),
    ])
    .collect();
    prop_oneof![
        4 => prop::sample::select(fixed),
        1 => any::<i64>().prop_map(|n| n.to_string().into_bytes()),
        1 => any::<f64>().prop_map(|f| format!("{f:e}").into_bytes()),
        1 => "\\PC{0,50}".prop_map(|s| serde_json::to_vec(&s).unwrap()),
        1 => prop::collection::vec(any::<u8>(), 0..40),
    ]
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        6 => hostile_fragment().prop_map(Edit::Replace),
        1 => Just(Edit::Remove),
        1 => "[a-zA-Z_]{1,12}".prop_map(Edit::Rename),
        1 => hostile_fragment().prop_map(Edit::Duplicate),
    ]
}

/// Hostile bodies derived from a valid `template`.
fn hostile_bodies(template: Value) -> impl Strategy<Value = Vec<u8>> {
    let raw = Raw::from_value(&template);
    let valid = raw.render();
    let edited = prop::collection::vec((any::<Index>(), edit()), 1..4).prop_map({
        let raw = raw.clone();
        move |edits| {
            let mut doc = raw.clone();
            for (index, edit) in edits {
                let paths = doc.paths();
                if paths.is_empty() {
                    break;
                }
                let path = index.get(&paths).clone();
                doc.apply(&path, &edit);
            }
            doc.render()
        }
    });
    let truncated = (0..valid.len()).prop_map({
        let valid = valid.clone();
        move |cut| valid[..cut].to_vec()
    });
    let bytes_in = (
        0..valid.len(),
        prop::sample::select(vec![
            vec![0xff_u8],
            vec![0],
            vec![0xc3],
            vec![b'"'],
            vec![b','],
            vec![b'}'],
            vec![b'\\'],
        ]),
    )
        .prop_map({
            let valid = valid.clone();
            move |(at, bad)| {
                let mut body = valid[..at].to_vec();
                body.extend_from_slice(&bad);
                body.extend_from_slice(&valid[at..]);
                body
            }
        });
    let whole = prop_oneof![
        prop::sample::select(vec![
            b"".to_vec(),
            b" ".to_vec(),
            b"null".to_vec(),
            b"[]".to_vec(),
            b"\"x\"".to_vec(),
            b"1e308".to_vec(),
            b"true".to_vec(),
            nested(10_000, false, "{}").into_bytes(),
            nested(10_000, true, "1").into_bytes(),
        ]),
        prop::collection::vec(any::<u8>(), 0..1_000),
    ];
    prop_oneof![
        5 => edited,
        2 => truncated,
        2 => bytes_in,
        1 => whole,
    ]
}

/// Content types the admin API must refuse for a JSON body (415), with the valid body.
const WRONG_CONTENT_TYPES: &[Option<&str>] = &[
    None,
    Some("text/plain"),
    Some("application/x-www-form-urlencoded"),
    Some("multipart/form-data; boundary=xyz"),
    Some("application/xml"),
    Some("application/octet-stream"),
    Some(""),
    Some("garbage"),
];

/// The domain guard as the test service is configured, to make sure a generated body can
/// never make the service call a real host (only the simulator is allowed).
fn never_calls_out(sim_host: &str, body: &[u8]) {
    let Ok(value) = serde_json::from_slice::<Value>(body) else {
        return;
    };
    if let Some(domain) = value.get("domain").and_then(Value::as_str) {
        let policy = DomainPolicy::new([".freshdesk.com"], [sim_host]);
        if let Ok(parsed) = policy.parse(domain) {
            assert_eq!(
                parsed.host(),
                sim_host,
                "test bug: a generated body would make the service call {domain:?}"
            );
        }
    }
}

/// One admin endpoint, its valid body and how to check that a refusal changed nothing.
struct Target {
    method: Method,
    path: String,
    template: Value,
    /// A request that undoes an accepted one, so later cases start from the same state.
    undo: Option<String>,
    /// Whether an empty (or blank) body is a valid request (the handoff's body is optional).
    empty_ok: bool,
}

impl Target {
    fn req(&self, content_type: Option<&str>, body: Vec<u8>) -> Req {
        Req::new(self.method.clone(), self.path.clone())
            .raw(content_type, body)
            .bearer(ADMIN_TOKEN)
    }
}

async fn call(t: &TestApp, req: &Req) -> Answer {
    send(&t.http, t.base(), req).await
}

/// The valid settings of the test org: group routing with a marker field and a default group,
/// so every field has a type to get wrong.
fn settings(t: &TestApp) -> Value {
    json!({
        "domain": t.sim_domain(),
        "api_key": AI_KEY,
        "auto_handle_all": false,
        "default_group_id": SUPPORT_GROUP,
        "handoff": {"routing": "group", "agent_id": null, "group_id": BILLING_GROUP,
                    "marker_field": MARKER_FIELD},
        "channels": {"email": "autopilot", "web": "assist", "phone": "off", "other": "autopilot"},
        "assist_footer": "-- drafted by the AI"
    })
}

/// Whether an endpoint refuses a body that is not declared as JSON.
#[derive(Clone, Copy, PartialEq, Eq)]
enum ContentType {
    /// 415 `unsupported_media_type` for anything but `application/json` (the JSON extractor).
    Enforced,
    /// The body is judged on its bytes whatever its declared type (the handoff command).
    Ignored,
}

/// Run `cases` hostile bodies (plus wrong content types and oversized bodies) against one
/// endpoint; `snapshot` reads what a refusal must leave alone.
fn run_endpoint<S, F>(
    rt: &tokio::runtime::Runtime,
    t: &TestApp,
    target: &Target,
    cases: u32,
    content_type: ContentType,
    snapshot: S,
) where
    S: Fn() -> F,
    F: std::future::Future<Output = Value>,
{
    let sim_host = t.sim_domain();
    let check = |req: Req, must_refuse: bool| {
        rt.block_on(async {
            never_calls_out(&sim_host, req.body.as_deref().unwrap_or_default());
            let before = snapshot().await;
            let answer = call(t, &req).await;
            let context = req.describe();
            if must_refuse {
                assert_4xx(&context, &answer);
            }
            if assert_clean(&context, &answer).is_some() {
                let after = snapshot().await;
                assert_eq!(before, after, "{context}: a refused request changed state");
            } else if let Some(undo) = &target.undo {
                let req = Req::new(Method::POST, undo.clone()).bearer(ADMIN_TOKEN);
                assert_eq!(call(t, &req).await.status, 200, "{}", req.describe());
            }
        })
    };
    let valid = serde_json::to_vec(&target.template).unwrap();
    for wrong in WRONG_CONTENT_TYPES {
        if content_type == ContentType::Enforced {
            let req = target.req(*wrong, valid.clone());
            let context = req.describe();
            rt.block_on(async {
                let before = snapshot().await;
                let answer = call(t, &req).await;
                assert_refused(&context, &answer, 415, "unsupported_media_type");
                assert_eq!(before, snapshot().await, "{context}");
            });
        }
        // Whatever the declared type, a body that is not JSON is refused.
        check(target.req(*wrong, valid[..valid.len() - 1].to_vec()), true);
        check(target.req(*wrong, b"reason=x".to_vec()), true);
    }
    for len in [64 * 1024 + 1, 3 << 20] {
        let mut body = valid.clone();
        body.pop();
        body.resize(len - 1, b' ');
        body.push(b'}');
        let req = target.req(Some("application/json"), body);
        let context = req.describe();
        rt.block_on(async {
            let before = snapshot().await;
            let answer = call(t, &req).await;
            assert_refused(&context, &answer, 413, "payload_too_large");
            assert_eq!(before, snapshot().await, "{context}");
        });
    }
    let must_refuse = |body: &[u8]| {
        serde_json::from_slice::<Value>(body).is_err()
            && !(target.empty_ok && body.iter().all(u8::is_ascii_whitespace))
    };
    for cut in 0..valid.len() {
        let body = valid[..cut].to_vec();
        check(
            target.req(Some("application/json"), body.clone()),
            must_refuse(&body),
        );
    }
    let mut runner = TestRunner::new(config(cases));
    let strategy = hostile_bodies(target.template.clone());
    let result = runner.run(&strategy, |body| {
        // A body that is still valid JSON of the right shape may be accepted; everything
        // that is not JSON must be refused.
        let refuse = must_refuse(&body);
        check(target.req(Some("application/json"), body), refuse);
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
}

async fn org_list(t: &TestApp) -> Value {
    let r = t.call(Method::GET, "/api/v1/orgs", None).await;
    assert_eq!(r.status, 200);
    r.body
}

#[test]
fn hostile_org_bodies_are_refused_and_create_nothing() {
    let rt = runtime();
    let t = rt.block_on(TestApp::spawn());
    let target = Target {
        method: Method::POST,
        path: "/api/v1/orgs".into(),
        template: json!({"name": "Acme"}),
        undo: None,
        empty_ok: false,
    };
    // Every change to the one field is refused unless it is still a short string; the
    // snapshot then changes, so only refusals are compared.
    run_endpoint(&rt, &t, &target, 300, ContentType::Enforced, || {
        org_list(&t)
    });
    rt.block_on(async {
        for name in [
            json!(""),
            json!("   "),
            json!("x".repeat(201)),
            json!("é".repeat(201)),
            json!(null),
            json!(42),
            json!(["Acme"]),
            json!({"name": "Acme"}),
        ] {
            let before = org_list(&t).await;
            let req = target.req(
                Some("application/json"),
                serde_json::to_vec(&json!({ "name": name })).unwrap(),
            );
            let answer = call(&t, &req).await;
            assert_4xx(&req.describe(), &answer);
            assert_eq!(before, org_list(&t).await);
        }
    });
}

/// An org connected with [`settings`] whose backfill is done, and one never connected.
async fn connected_and_fresh(t: &TestApp) -> (String, String) {
    let (connected, _) = t.connected_org(settings(t)).await;
    wait_backfill_done(t, &connected).await;
    (connected, t.create_org("Fresh").await)
}

/// Snapshot of both orgs' connections (a connected one and a never-connected one).
async fn connections(t: &TestApp, connected: &str, fresh: &str) -> Value {
    let (s1, b1) = connection_snapshot(t, connected).await;
    let (s2, b2) = connection_snapshot(t, fresh).await;
    json!([s1, b1, s2, b2])
}

#[test]
fn hostile_verify_bodies_get_clean_answers_and_store_nothing() {
    let rt = runtime();
    let t = rt.block_on(TestApp::spawn());
    let (connected, fresh) = rt.block_on(connected_and_fresh(&t));
    for org in [&connected, &fresh] {
        let target = Target {
            method: Method::POST,
            path: format!("/api/v1/orgs/{org}/freshdesk/verify"),
            template: json!({"domain": t.sim_domain(), "api_key": AI_KEY}),
            undo: None,
            empty_ok: false,
        };
        run_endpoint(&rt, &t, &target, 150, ContentType::Enforced, || {
            connections(&t, &connected, &fresh)
        });
    }
    rt.block_on(async {
        let (status, _) = connection_snapshot(&t, &fresh).await;
        assert_eq!(status, 404, "verify never stores anything");
    });
}

#[test]
fn hostile_settings_bodies_get_clean_answers_and_a_refused_save_changes_nothing() {
    let rt = runtime();
    let t = rt.block_on(TestApp::spawn());
    let (connected, fresh) = rt.block_on(connected_and_fresh(&t));
    for org in [&connected, &fresh] {
        let target = Target {
            method: Method::PUT,
            path: format!("/api/v1/orgs/{org}/freshdesk"),
            template: settings(&t),
            undo: None,
            empty_ok: false,
        };
        run_endpoint(&rt, &t, &target, 250, ContentType::Enforced, || {
            connections(&t, &connected, &fresh)
        });
    }
}

/// The refusal `PUT …/freshdesk` owes a body: 400 `invalid_json` when it is not JSON, 422
/// `invalid_settings` when it is JSON but not the settings shape; `None` for valid settings
/// (which may still be refused for what they say, e.g. a domain or a group).
fn settings_refusal(body: &[u8]) -> Option<(u16, &'static str)> {
    let Ok(value) = serde_json::from_slice::<Value>(body) else {
        return Some((400, "invalid_json"));
    };
    match serde_json::from_value::<SaveRequest>(value) {
        Ok(_) => None,
        Err(_) => Some((422, "invalid_settings")),
    }
}

/// Byte-level mutations (bytes replaced or inserted) of a valid settings body, sent to both
/// orgs: what is not JSON is 400 `invalid_json`, JSON that is not the settings shape is 422
/// `invalid_settings`, each in the one error shape and storing nothing; what still is
/// settings gets a clean answer, and a refusal stores nothing either.
#[test]
fn mutated_settings_bodies_are_refused_by_kind_and_store_nothing() {
    let rt = runtime();
    let t = rt.block_on(TestApp::spawn());
    let (connected, fresh) = rt.block_on(connected_and_fresh(&t));
    let valid = serde_json::to_vec(&settings(&t)).unwrap();
    let sim_host = t.sim_domain();
    // How many bodies got each refusal, so the run cannot pass without exercising both.
    let seen = std::cell::Cell::new((0u32, 0u32));
    let edits = prop::collection::vec((0..valid.len(), any::<u8>(), any::<bool>()), 1..6);
    let mut runner = TestRunner::new(config(200));
    let result = runner.run(&edits, |edits| {
        let mut body = valid.clone();
        for (at, byte, insert) in edits {
            let at = at.min(body.len() - 1);
            if insert {
                body.insert(at, byte)
            } else {
                body[at] = byte
            }
        }
        never_calls_out(&sim_host, &body);
        let refusal = settings_refusal(&body);
        let (json, shape) = seen.get();
        match refusal {
            Some((400, _)) => seen.set((json + 1, shape)),
            Some(_) => seen.set((json, shape + 1)),
            None => {}
        }
        rt.block_on(async {
            for org in [&connected, &fresh] {
                let req = Req::new(Method::PUT, format!("/api/v1/orgs/{org}/freshdesk"))
                    .raw(Some("application/json"), body.clone())
                    .bearer(ADMIN_TOKEN);
                let context = req.describe();
                let before = connections(&t, &connected, &fresh).await;
                let answer = call(&t, &req).await;
                let refused = match refusal {
                    Some((status, code)) => {
                        assert_refused(&context, &answer, status, code);
                        true
                    }
                    None => assert_clean(&context, &answer).is_some(),
                };
                if refused {
                    let after = connections(&t, &connected, &fresh).await;
                    assert_eq!(before, after, "{context}: a refused save changed state");
                }
            }
        });
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
    let (json, shape) = seen.get();
    assert!(
        json > 0 && shape > 0,
        "the run sent {json} bodies that are not JSON and {shape} that are not settings"
    );
}

async fn session_state(t: &TestApp, org: &str, ticket: u64) -> Value {
    let body = t.session(org, ticket).await.body;
    json!({"state": body["state"], "handoff": body["handoff"]})
}

/// A tracked ticket the AI answered (so it is `ai_active`): org, ticket and session ids.
async fn answered_ticket(t: &TestApp) -> (String, u64, String) {
    let org = t.connected_with_webhook(json!({})).await;
    let ticket = t
        .new_ticket("Password", "How do I reset my password?")
        .await;
    t.wait_ai_posts(ticket, 1).await;
    t.settle().await;
    let session = t
        .wait_session(&org, ticket, "the session is ai_active", |s| {
            s["state"] == "ai_active"
        })
        .await;
    (org, ticket, session["id"].as_str().unwrap().to_string())
}

#[test]
fn hostile_handoff_bodies_are_refused_and_leave_the_session_alone() {
    let rt = runtime();
    let t = rt.block_on(TestApp::spawn());
    let (org, ticket, session) = rt.block_on(answered_ticket(&t));
    let target = Target {
        method: Method::POST,
        path: format!("/api/v1/orgs/{org}/sessions/{session}/handoff"),
        template: json!({"reason": "The customer asked for a manager"}),
        undo: Some(format!("/api/v1/orgs/{org}/sessions/{session}/resume")),
        empty_ok: true,
    };
    run_endpoint(&rt, &t, &target, 150, ContentType::Ignored, || {
        session_state(&t, &org, ticket)
    });
}

#[test]
fn hostile_handoff_bodies_under_any_content_type_get_clean_answers() {
    // The handoff reads its body whatever the declared content type, so here a hostile body
    // that is still valid JSON may go through; every answer must still be clean.
    let rt = runtime();
    let t = rt.block_on(TestApp::spawn());
    let (org, _ticket, session) = rt.block_on(answered_ticket(&t));
    let path = format!("/api/v1/orgs/{org}/sessions/{session}/handoff");
    let mut runner = TestRunner::new(config(60));
    let strategy = (
        hostile_bodies(json!({"reason": "The customer asked for a manager"})),
        prop::sample::select(WRONG_CONTENT_TYPES),
    );
    let result = runner.run(&strategy, |(body, content_type)| {
        let content_type = content_type.or(Some("application/json"));
        rt.block_on(async {
            let req = Req::new(Method::POST, path.clone())
                .raw(content_type, body)
                .bearer(ADMIN_TOKEN);
            let answer = tokio::time::timeout(Duration::from_secs(45), call(&t, &req))
                .await
                .expect("the handoff answers");
            assert_clean(&req.describe(), &answer);
        });
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
}

#[tokio::test]
async fn hostile_queries_and_path_ids_get_clean_refusals() {
    let t = TestApp::spawn().await;
    let (org, _) = t.connected_org(json!({})).await;
    let o = format!("/api/v1/orgs/{org}");
    let deep = "%5B".repeat(5_000);
    let long = "a".repeat(20_000);
    let paths = [
        format!("{o}/sessions?limit=0"),
        format!("{o}/sessions?limit=-1"),
        format!("{o}/sessions?limit=1e308"),
        format!("{o}/sessions?limit=18446744073709551616"),
        format!("{o}/sessions?limit=201"),
        format!("{o}/sessions?limit=%00"),
        format!("{o}/sessions?state=%FF%FE"),
        format!("{o}/sessions?state=AI_ACTIVE"),
        format!("{o}/sessions?state[]=ai_active"),
        format!("{o}/sessions?channel=fax"),
        format!("{o}/sessions?channel={deep}"),
        format!("{o}/sessions?cursor=%FF"),
        format!("{o}/sessions?cursor={long}"),
        format!("{o}/sessions?cursor=eyJ0IjoxfQ"),
        format!("{o}/sessions?cursor="),
        format!("{o}/sessions?limit=1&limit=2"),
        format!("{o}/sessions?%FF=1"),
        format!("{o}/tickets/18446744073709551616/session"),
        format!("{o}/tickets/-1/session"),
        format!("{o}/tickets/1e3/inspect"),
        format!("{o}/tickets/%FF/inspect"),
        format!("{o}/tickets/0/inspect"),
        format!("{o}/sessions/not-a-uuid"),
        format!("{o}/sessions/%00"),
        format!("{o}/sessions/{}", uuid_like()),
        "/api/v1/orgs/%FF%FE".to_string(),
        format!("/api/v1/orgs/{}", "0".repeat(5_000)),
        "/api/v1/orgs/00000000-0000-0000-0000-000000000000/freshdesk".to_string(),
        format!("/api/v1/orgs/{org}%00"),
        format!("/api/v1/orgs/{}", org.to_uppercase()),
    ];
    for path in paths {
        for method in [Method::GET, Method::POST, Method::PUT, Method::DELETE] {
            let req = Req::new(method, path.clone()).bearer(ADMIN_TOKEN);
            let answer = call(&t, &req).await;
            assert_clean(&req.describe(), &answer);
        }
    }
}

/// A well-formed id that names nothing.
fn uuid_like() -> String {
    "1b4e28ba-2fa1-11d2-883f-0016d3cca427".to_string()
}
