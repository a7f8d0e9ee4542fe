//! `POST /webhooks/freshdesk/{token}` under hostile input (contract §3): malformed, truncated and
//! mistyped bodies, invalid UTF-8, NUL bytes, deep nesting, odd content types, oversized
//! bodies and forged tokens. Every request gets an answer, never a 5xx, every refusal is in
//! the error shape, and nothing is stored for any of them.

use crate::fixture::{
    assert_intake_untouched, config, inspect, metric, runtime, token_of, wait_backfill_done,
};
use crate::harness::TestApp;
use crate::parsers::{bad_ticket_ids, nested, VALID_WEBHOOK};
use crate::wire::{assert_4xx, assert_refused, raw_exchange, send, Answer, Req};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use proptest::prelude::*;
use proptest::test_runner::TestRunner;
use reqwest::Method;
use serde_json::json;
use std::net::SocketAddr;
use ticketsync::http::webhook::{WebhookHint, MAX_WEBHOOK_BODY};

const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// A connected org on a running service, with its webhook token.
struct Intake {
    t: TestApp,
    org: String,
    token: String,
}

impl Intake {
    async fn start() -> Self {
        let t = TestApp::spawn().await;
        let (org, body) = t.connected_org(json!({})).await;
        wait_backfill_done(&t, &org).await;
        let token = token_of(body["webhook_url"].as_str().expect("webhook_url"));
        Self { t, org, token }
    }

    async fn post(&self, token: &str, content_type: Option<&str>, body: &[u8]) -> (Req, Answer) {
        let req = Req::new(Method::POST, format!("/webhooks/freshdesk/{token}"))
            .raw(content_type, body.to_vec());
        let answer = send(&self.t.http, self.t.base(), &req).await;
        (req, answer)
    }

    fn addr(&self) -> SocketAddr {
        self.t
            .base()
            .trim_start_matches("http://")
            .parse()
            .expect("the service listens on an IP address")
    }

    /// After a whole run: nothing was ever accepted, processed or read from Freshdesk.
    async fn assert_never_accepted(&self) {
        assert_intake_untouched(&self.t, &self.org, "after the run").await;
        assert_eq!(
            metric(&self.t, "ticketsync_webhooks_accepted_total").await,
            0.0,
            "no webhook was accepted"
        );
        let inspect = inspect(&self.t).await;
        assert_eq!(inspect["events_processed"], 0, "{inspect}");
        assert_eq!(inspect["tracked_tickets"], 0, "{inspect}");
        let reads: Vec<_> = self
            .t
            .sim_requests()
            .await
            .into_iter()
            .filter(|r| r.path.starts_with("/api/v2/tickets/"))
            .collect();
        assert!(reads.is_empty(), "a ticket was read: {reads:?}");
    }
}

/// Content types a webhook may arrive with; none of them makes a bad body acceptable.
const CONTENT_TYPES: &[Option<&str>] = &[
    None,
    Some("application/json"),
    Some("application/json; charset=utf-8"),
    Some("application/json; charset=utf-16"),
    Some("text/plain"),
    Some("text/html"),
    Some("application/x-www-form-urlencoded"),
    Some("application/xml"),
    Some("multipart/form-data; boundary=xyz"),
    Some("application/octet-stream"),
    Some("*/*"),
    Some(""),
    Some("garbage"),
];

/// Bodies the parser refuses, of every hostile kind, all under the size limit.
fn bad_bodies() -> impl Strategy<Value = Vec<u8>> {
    let valid = VALID_WEBHOOK.as_bytes().to_vec();
    let truncated = (0..valid.len()).prop_map({
        let valid = valid.clone();
        move |cut| valid[..cut].to_vec()
    });
    let bad_id = (
        prop::sample::select(bad_ticket_ids()),
        prop::sample::select(vec![
            "ticket_created",
            "{ticket_action:created}",
            "{status:{from:4,to:6}}",
        ]),
    )
        .prop_map(|(id, event)| {
            format!(r#"{{"ticketId": {id}, "triggered_event": "{event}"}}"#).into_bytes()
        });
    let generated_id = prop_oneof![
        (i64::MIN..=0).prop_map(|n| n.to_string()),
        any::<f64>()
            .prop_filter("not an integer", |f| f.fract() != 0.0 || !f.is_finite())
            .prop_map(|f| format!("{f:e}")),
        "[^0-9]{1,30}".prop_map(|s| serde_json::to_string(&s).unwrap()),
        "[0-9]{0,5}[^0-9 \t\n\r]{1,3}[0-9]{0,5}".prop_map(|s| serde_json::to_string(&s).unwrap()),
        "[0-9]{21,400}".prop_map(|s| format!("\"{s}\"")),
    ]
    .prop_map(|id| format!(r#"{{"ticketId": {id}}}"#).into_bytes());
    let non_object = prop::sample::select(vec![
        "null",
        "true",
        "0",
        "123",
        "\"123\"",
        "[]",
        "[123]",
        "[{\"ticketId\": \"1\"}]",
        "{}",
        "\"\"",
        " ",
    ])
    .prop_map(|s| s.as_bytes().to_vec());
    let wrong_key = prop::sample::select(vec![
        r#"{"ticketid": "1"}"#,
        r#"{"ticket_id": "1"}"#,
        r#"{"TicketId": "1"}"#,
        r#"{"ticketId ": "1"}"#,
        r#"{"ticket": {"id": 1}}"#,
        "ticketId=123&triggered_event=ticket_created",
        "<ticket><ticketId>1</ticketId></ticket>",
    ])
    .prop_map(|s| s.as_bytes().to_vec());
    let invalid_utf8 = (
        0..valid.len(),
        prop::sample::select(vec![
            vec![0xff_u8],
            vec![0xc3],
            vec![0xed, 0xa0, 0x80],
            vec![0xc0, 0x80],
            vec![0],
            vec![0xfe, 0xff],
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
    let mutated = prop::collection::vec((0..valid.len(), any::<u8>(), any::<bool>()), 1..6)
        .prop_map({
            let valid = valid.clone();
            move |edits| {
                let mut body = valid.clone();
                for (at, byte, insert) in edits {
                    let at = at.min(body.len() - 1);
                    if insert {
                        body.insert(at, byte);
                    } else {
                        body[at] = byte;
                    }
                }
                body
            }
        });
    let random = prop::collection::vec(any::<u8>(), 0..2_000);
    let deep = (
        prop::sample::select(vec![129_usize, 1_000, 10_000]),
        any::<bool>(),
    )
        .prop_map(|(depth, objects)| {
            let inner = nested(depth, objects, "1");
            if objects {
                format!(r#"{{"ticketId": {inner}}}"#).into_bytes()
            } else {
                inner.into_bytes()
            }
        });
    prop_oneof![
        3 => truncated,
        3 => bad_id,
        2 => generated_id,
        1 => non_object,
        1 => wrong_key,
        2 => invalid_utf8,
        2 => mutated,
        2 => random,
        1 => deep,
    ]
    .prop_filter("the parser refuses it", |body| {
        WebhookHint::try_from(&body[..]).is_err()
    })
}

#[test]
fn malformed_truncated_and_mistyped_webhook_bodies_are_refused_and_store_nothing() {
    let rt = runtime();
    let intake = rt.block_on(Intake::start());
    let strategy = (bad_bodies(), prop::sample::select(CONTENT_TYPES));
    let mut runner = TestRunner::new(config(400));
    let result = runner.run(&strategy, |(body, content_type)| {
        rt.block_on(async {
            let (req, answer) = intake.post(&intake.token, content_type, &body).await;
            let context = req.describe();
            assert_refused(&context, &answer, 400, "invalid_payload");
            assert_intake_untouched(&intake.t, &intake.org, &context).await;
        });
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
    rt.block_on(intake.assert_never_accepted());
}

#[test]
fn every_truncation_of_a_valid_webhook_body_is_refused() {
    let rt = runtime();
    rt.block_on(async {
        let intake = Intake::start().await;
        for valid in [
            VALID_WEBHOOK,
            r#"{"ticketId": 123, "triggered_event": "ticket_created"}"#,
        ] {
            for cut in 0..valid.len() {
                let body = &valid.as_bytes()[..cut];
                let (req, answer) = intake
                    .post(&intake.token, Some("application/json"), body)
                    .await;
                assert_refused(&req.describe(), &answer, 400, "invalid_payload");
            }
        }
        intake.assert_never_accepted().await;
    });
}

/// Forged, truncated and foreign variations of a real token.
fn forged_tokens(token: String, foreign: Vec<String>) -> impl Strategy<Value = String> {
    let raw = URL_SAFE_NO_PAD
        .decode(&token)
        .expect("the token is base64url");
    assert_eq!(raw.len(), 48, "uuid and HMAC-SHA256");
    let len = token.len();
    let flip = (0..len, 1..ALPHABET.len()).prop_map({
        let token = token.clone();
        move |(at, shift)| {
            let mut bytes = token.clone().into_bytes();
            let index = ALPHABET.iter().position(|&c| c == bytes[at]).unwrap();
            bytes[at] = ALPHABET[(index + shift) % ALPHABET.len()];
            String::from_utf8(bytes).unwrap()
        }
    });
    let truncate = (1..len).prop_map({
        let token = token.clone();
        move |cut| token[..cut].to_string()
    });
    let extend = "[A-Za-z0-9_-]{1,8}".prop_map({
        let token = token.clone();
        move |tail| format!("{token}{tail}")
    });
    let wrong_signature = prop::collection::vec(any::<u8>(), 32).prop_map({
        let raw = raw.clone();
        move |tag| {
            let mut bytes = raw[..16].to_vec();
            bytes.extend_from_slice(&tag);
            URL_SAFE_NO_PAD.encode(bytes)
        }
    });
    let bit_flip = (0..48_usize, 0..8_u32).prop_map({
        let raw = raw.clone();
        move |(at, bit)| {
            let mut bytes = raw.clone();
            bytes[at] ^= 1 << bit;
            URL_SAFE_NO_PAD.encode(bytes)
        }
    });
    let random = prop_oneof![
        prop::collection::vec(any::<u8>(), 48),
        prop::collection::vec(any::<u8>(), 0..100),
    ]
    .prop_map(|bytes| URL_SAFE_NO_PAD.encode(bytes))
    .prop_filter("not empty", |t| !t.is_empty());
    let long = "[A-Za-z0-9_-]{129,2000}";
    let mut fixed = vec![
        token.to_uppercase(),
        token.to_lowercase(),
        format!("{token}="),
        format!("{token}=="),
        STANDARD
            .encode(&raw)
            .replace('/', "%2F")
            .replace('+', "%2B"),
        URL_SAFE_NO_PAD.encode(&raw[..16]),
        URL_SAFE_NO_PAD.encode(&raw[16..]),
        URL_SAFE_NO_PAD.encode([&raw[16..], &raw[..16]].concat()),
        format!("{}{}", &token[..len / 2], &token[..len / 2]),
        "A".repeat(64),
        "-".repeat(64),
        "null".into(),
        "undefined".into(),
        "0".into(),
    ];
    fixed.extend(foreign);
    prop_oneof![
        3 => flip,
        2 => truncate,
        1 => extend,
        2 => wrong_signature,
        2 => bit_flip,
        1 => random,
        1 => long,
        2 => prop::sample::select(fixed),
    ]
    .prop_filter("not the real token", move |t| *t != token)
}

#[test]
fn forged_truncated_and_foreign_webhook_tokens_are_refused_and_store_nothing() {
    let rt = runtime();
    let intake = rt.block_on(Intake::start());
    // A real token of another ticketsync server (another secret), and one made of this
    // org's id with another org's signature.
    let foreign = rt.block_on(async {
        let other = TestApp::spawn().await;
        let (_, body) = other.connected_org(json!({})).await;
        let other_token = token_of(body["webhook_url"].as_str().unwrap());
        let (_, body) = intake.t.connected_org(json!({})).await;
        let sibling = URL_SAFE_NO_PAD
            .decode(token_of(body["webhook_url"].as_str().unwrap()))
            .unwrap();
        let mine = URL_SAFE_NO_PAD.decode(&intake.token).unwrap();
        let spliced = URL_SAFE_NO_PAD.encode([&mine[..16], &sibling[16..]].concat());
        vec![other_token, spliced]
    });
    let body = br#"{"ticketId": "123", "triggered_event": "ticket_created"}"#;
    let strategy = forged_tokens(intake.token.clone(), foreign);
    let mut runner = TestRunner::new(config(300));
    let result = runner.run(&strategy, |token| {
        rt.block_on(async {
            let (req, answer) = intake.post(&token, Some("application/json"), body).await;
            let context = req.describe();
            if token.contains('%') {
                assert_4xx(&context, &answer);
            } else {
                assert_refused(&context, &answer, 401, "invalid_token");
            }
            assert_intake_untouched(&intake.t, &intake.org, &context).await;
        });
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
    rt.block_on(async {
        // Paths that do not even carry a token segment.
        for path in [
            "/webhooks/freshdesk/".to_string(),
            "/webhooks/freshdesk".to_string(),
            format!("/webhooks/freshdesk/{}/extra", intake.token),
            format!("/webhooks/freshdesk/%FF%FE{}", intake.token),
            format!("/webhooks/freshdesk/{}%00", intake.token),
            format!("/webhooks/Freshdesk/{}", intake.token),
        ] {
            let req = Req::new(Method::POST, path).json(body.to_vec());
            let answer = send(&intake.t.http, intake.t.base(), &req).await;
            assert_4xx(&req.describe(), &answer);
        }
        intake.assert_never_accepted().await;
    });
}

#[test]
fn webhooks_for_a_disconnected_or_never_connected_org_are_refused_with_410() {
    let rt = runtime();
    rt.block_on(async {
        let intake = Intake::start().await;
        let (gone, body) = intake.t.connected_org(json!({})).await;
        wait_backfill_done(&intake.t, &gone).await;
        let gone_token = token_of(body["webhook_url"].as_str().unwrap());
        assert_eq!(intake.t.disconnect(&gone).await.status, 200);
        for body in [
            &br#"{"ticketId": "123", "triggered_event": "ticket_created"}"#[..],
            br#"{"ticketId": "x"}"#,
            b"",
        ] {
            let (req, answer) = intake
                .post(&gone_token, Some("application/json"), body)
                .await;
            assert_refused(&req.describe(), &answer, 410, "integration_disconnected");
        }
        assert_intake_untouched(&intake.t, &gone, "disconnected org").await;
        intake.assert_never_accepted().await;
    });
}

#[test]
fn a_webhook_token_files_events_only_for_its_own_org() {
    let rt = runtime();
    rt.block_on(async {
        let intake = Intake::start().await;
        let (other, body) = intake.t.connected_org(json!({})).await;
        let other_token = token_of(body["webhook_url"].as_str().unwrap());
        assert_ne!(other_token, intake.token);
        // The other org's token with a body naming a ticket: filed for the other org only.
        let (req, answer) = intake
            .post(
                &other_token,
                Some("application/json"),
                br#"{"ticketId": "123", "triggered_event": "ticket_created"}"#,
            )
            .await;
        assert_eq!(answer.status, 202, "{}", req.describe());
        assert!(intake.t.connection(&other).await.body["last_webhook_at"].is_string());
        assert!(intake.t.connection(&intake.org).await.body["last_webhook_at"].is_null());
    });
}

/// `{"ticketId": "1"` + padding + `}` of exactly `len` bytes: valid JSON, refused only for
/// its size.
fn padded_valid_body(len: usize) -> Vec<u8> {
    let head = br#"{"ticketId": "1", "triggered_event": "ticket_created""#;
    let mut body = head.to_vec();
    body.resize(len - 1, b' ');
    body.push(b'}');
    assert!(WebhookHint::try_from(&body[..]).is_ok());
    body
}

#[test]
fn oversized_webhook_bodies_are_refused_with_413_without_dropping_the_connection() {
    let rt = runtime();
    rt.block_on(async {
        let intake = Intake::start().await;
        for len in [
            MAX_WEBHOOK_BODY + 1,
            MAX_WEBHOOK_BODY + 1024,
            4 << 20,
            16 << 20,
        ] {
            let body = padded_valid_body(len);
            let (req, answer) = intake
                .post(&intake.token, Some("application/json"), &body)
                .await;
            assert_refused(&req.describe(), &answer, 413, "payload_too_large");
            assert_intake_untouched(&intake.t, &intake.org, &req.describe()).await;
        }
        // At the limit the body is read and judged on its content.
        let mut at_limit = br#"{"ticketId": "x""#.to_vec();
        at_limit.resize(MAX_WEBHOOK_BODY - 1, b' ');
        at_limit.push(b'}');
        let (req, answer) = intake
            .post(&intake.token, Some("application/json"), &at_limit)
            .await;
        assert_refused(&req.describe(), &answer, 400, "invalid_payload");
        // A forged token is refused before the size matters.
        let (req, answer) = intake
            .post(
                "forged",
                Some("application/json"),
                &padded_valid_body(4 << 20),
            )
            .await;
        assert_refused(&req.describe(), &answer, 401, "invalid_token");
        intake.assert_never_accepted().await;
    });
}

#[test]
fn oversized_webhook_bodies_sent_in_chunks_or_announced_huge_are_refused_with_413() {
    let rt = runtime();
    let intake = rt.block_on(Intake::start());
    let addr = intake.addr();
    let path = format!("/webhooks/freshdesk/{}", intake.token);
    let head = |extra: &str| {
        format!(
            "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
             Connection: close\r\n{extra}\r\n"
        )
        .into_bytes()
    };
    let chunked = |total: usize| {
        let mut request = head("Transfer-Encoding: chunked\r\n");
        let body = padded_valid_body(total);
        for chunk in body.chunks(8 * 1024) {
            request.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
            request.extend_from_slice(chunk);
            request.extend_from_slice(b"\r\n");
        }
        request.extend_from_slice(b"0\r\n\r\n");
        request
    };
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("chunked, 100 KiB", chunked(100 * 1024)),
        ("chunked, 8 MiB", chunked(8 << 20)),
        (
            "content-length of a terabyte, no body",
            head("Content-Length: 1000000000000\r\n"),
        ),
        (
            "content-length just over the limit, no body",
            head(&format!("Content-Length: {}\r\n", MAX_WEBHOOK_BODY + 1)),
        ),
    ];
    for (what, request) in cases {
        let answer = raw_exchange(addr, &request)
            .unwrap_or_else(|e| panic!("{what}: the connection was dropped: {e}"));
        assert_refused(what, &answer, 413, "payload_too_large");
    }
    // A small chunked body is read whole and judged on its content.
    let mut request = head("Transfer-Encoding: chunked\r\n");
    request.extend_from_slice(b"5\r\n{\"tic\r\n9\r\nketId\": 0\r\n1\r\n}\r\n0\r\n\r\n");
    let answer = raw_exchange(addr, &request).expect("an answer");
    assert_refused("small chunked body", &answer, 400, "invalid_payload");
    rt.block_on(intake.assert_never_accepted());
}

#[test]
fn hostile_event_texts_with_a_valid_ticket_id_are_accepted_or_refused_cleanly() {
    let rt = runtime();
    rt.block_on(async {
        let intake = Intake::start().await;
        for event in [
            "null".to_string(),
            "12".into(),
            "1e308".into(),
            "true".into(),
            "[]".into(),
            r#"{"status": {"from": 4, "to": 6}}"#.into(),
            format!("\"{}\"", "x".repeat(60_000)),
            r#""\u0000\u0001\u001f""#.into(),
            r#""\ud83d\ude00 ünïcödé""#.into(),
            nested(100, true, "1"),
            nested(1_000, false, "1"),
        ] {
            let body = format!(r#"{{"ticketId": "7", "triggered_event": {event}}}"#);
            let (req, answer) = intake
                .post(&intake.token, Some("application/json"), body.as_bytes())
                .await;
            let context = req.describe();
            crate::wire::assert_clean(&context, &answer);
            if answer.status == 202 {
                assert_eq!(answer.json()["status"], "accepted", "{context}");
                assert!(answer.json()["event_id"].is_string(), "{context}");
            }
        }
    });
}
