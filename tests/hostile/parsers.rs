//! The parsers on their own, many cases, no HTTP: the webhook body parser never panics and
//! only accepts a JSON object with a positive ticket id; the domain guard never panics and
//! never lets through a host outside `.freshdesk.com` or the plain-HTTP allow-list.

use proptest::prelude::*;
use proptest::test_runner::Config;
use serde_json::Value;
use ticketsync::connect::SaveRequest;
use ticketsync::freshdesk::{DomainPolicy, FreshdeskDomain};
use ticketsync::http::webhook::WebhookHint;

/// A valid webhook body, to truncate and mutate. (Mutated settings bodies go through HTTP:
/// `admin_input::mutated_settings_bodies_are_refused_by_kind_and_store_nothing`.)
pub const VALID_WEBHOOK: &str = r#"{"ticketId": "123", "triggered_event": "{status:{from:4,to:6}}", "extra": [1, {"a": null}]}"#;

/// The plain-HTTP hosts of the policies under test.
const INSECURE: [&str; 3] = ["127.0.0.1:9000", "localhost:9001", "[::1]:9002"];

fn config(cases: u32) -> Config {
    Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    }
}

/// What an accepted webhook body must be: a JSON object whose `ticketId` is the accepted id,
/// as a JSON integer or a string of ASCII digits (surrounding whitespace allowed), and an
/// event text of at most 200 characters.
fn check_hint(bytes: &[u8]) {
    let Ok(hint) = WebhookHint::try_from(bytes) else {
        return;
    };
    let id = hint.ticket_id.0;
    assert!(id > 0, "accepted ticket id 0 from {bytes:?}");
    assert!(hint.triggered_event.chars().count() <= 200);
    let value: Value = serde_json::from_slice(bytes).expect("an accepted body is JSON");
    let ticket = &value
        .as_object()
        .expect("an accepted body is an object")
        .get("ticketId")
        .expect("an accepted body has ticketId");
    match ticket {
        // A whole number written with a fraction or an exponent (`12.0`, `1e2`) is that number
        // (docs/decisions.md: JSON Schema's `integer` admits it).
        Value::Number(n) => {
            let whole = n.as_u64().or_else(|| {
                n.as_f64()
                    .filter(|f| f.fract() == 0.0 && *f >= 1.0 && *f <= i64::MAX as f64)
                    .map(|f| f as u64)
            });
            assert_eq!(whole, Some(id), "{bytes:?}");
        }
        Value::String(s) => {
            let digits = s.trim();
            assert!(
                !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()),
                "accepted non-digit ticketId {s:?}"
            );
            assert_eq!(digits.parse::<u64>().ok(), Some(id), "{s:?}");
        }
        other => panic!("accepted ticketId of the wrong type: {other}"),
    }
}

/// Whether the parser refuses the body, with a non-empty reason.
fn refused(bytes: &[u8]) -> bool {
    match WebhookHint::try_from(bytes) {
        Ok(_) => false,
        Err(reason) => {
            assert!(!reason.trim().is_empty(), "empty reason for {bytes:?}");
            true
        }
    }
}

/// `depth` nested arrays (`[[[…]]]`) or objects (`{"a":{"a":…}}`) around `inner`.
pub fn nested(depth: usize, objects: bool, inner: &str) -> String {
    let (open, close) = if objects {
        (r#"{"a":"#, "}")
    } else {
        ("[", "]")
    };
    let mut text = String::with_capacity(depth * (open.len() + close.len()) + inner.len());
    for _ in 0..depth {
        text.push_str(open);
    }
    text.push_str(inner);
    for _ in 0..depth {
        text.push_str(close);
    }
    text
}

/// JSON fragments that are never a valid `ticketId`.
pub fn bad_ticket_ids() -> Vec<String> {
    let mut ids: Vec<String> = [
        "null",
        "true",
        "false",
        "0",
        "-0",
        "-1",
        "1.5",
        "1e308",
        "-1e308",
        "1e-400",
        "18446744073709551616",
        "18446744073709551615",
        "9223372036854775808",
        "-9223372036854775809",
        "340282366920938463463374607431768211456",
        "[]",
        "[1]",
        "{}",
        r#"{"id": 1}"#,
        r#""""#,
        r#"" ""#,
        r#""0""#,
        r#""-1""#,
        r#""+1""#,
        r#""1.0""#,
        r#""1e3""#,
        r#""0x10""#,
        r#""12a""#,
        r#""1 2""#,
        r#""１２３""#,
        r#""{{ticket.id}}""#,
        r#""18446744073709551616""#,
        r#""18446744073709551615""#,
        r#""9223372036854775808""#,
        r#""99999999999999999999999""#,
        r#""1\u0000""#,
        r#""\u0000""#,
        r#""\ud800""#,
        r#""١٢٣""#,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    ids.push(format!("\"{}\"", "9".repeat(10_000)));
    ids.push(format!("\"{}\"", "a".repeat(40_000)));
    ids.push("1".repeat(5_000));
    ids.push(nested(10_000, false, "1"));
    ids.push(nested(10_000, true, "1"));
    ids
}

#[test]
fn the_webhook_parser_accepts_only_objects_with_a_positive_ticket_id_for_known_good_bodies() {
    for (body, id) in [
        (r#"{"ticketId": "123"}"#, 123),
        (r#"{"ticketId": 123, "triggered_event": null}"#, 123),
        (r#"{"ticketId": " 42 "}"#, 42),
        (r#"{"ticketId": "9223372036854775807"}"#, i64::MAX as u64),
        (r#"{"ticketId": 9223372036854775807}"#, i64::MAX as u64),
        (VALID_WEBHOOK, 123),
    ] {
        let hint = WebhookHint::try_from(body.as_bytes()).expect(body);
        assert_eq!(hint.ticket_id.0, id, "{body}");
    }
}

#[test]
fn the_webhook_parser_refuses_every_bad_ticket_id_and_every_non_object_body() {
    for id in bad_ticket_ids() {
        for body in [
            format!(r#"{{"ticketId": {id}}}"#),
            format!(r#"{{"ticketId": {id}, "triggered_event": "ticket_created"}}"#),
            format!(r#"[{{"ticketId": "1"}}, {id}]"#),
        ] {
            assert!(
                refused(body.as_bytes()),
                "accepted: {}",
                &body[..body.len().min(80)]
            );
        }
    }
    for body in [
        "",
        " ",
        "null",
        "true",
        "123",
        "\"123\"",
        "[]",
        "[123]",
        "{}",
        r#"{"ticketid": "1"}"#,
        r#"{"ticket_id": "1"}"#,
        r#"{"TicketId": "1"}"#,
        "ticketId=123",
        "<ticketId>1</ticketId>",
        "{\"ticketId\": \"1\"}\0",
        "\u{feff}{\"ticketId\": \"1\"}",
    ] {
        assert!(refused(body.as_bytes()), "accepted: {body:?}");
    }
}

#[test]
fn the_webhook_parser_refuses_every_truncation_of_a_valid_body() {
    for valid in [
        VALID_WEBHOOK,
        r#"{"ticketId":123}"#,
        r#"{ "ticketId": "{{ticket.id}}" }"#,
    ] {
        let bytes = valid.as_bytes();
        for cut in 0..bytes.len() {
            assert!(
                refused(&bytes[..cut]),
                "accepted truncation {:?}",
                &valid[..cut]
            );
        }
    }
}

#[test]
fn the_webhook_parser_survives_deep_nesting_at_any_depth() {
    for depth in [127, 128, 129, 1_000, 10_000, 100_000, 1_000_000] {
        for objects in [false, true] {
            let deep = nested(depth, objects, "1");
            assert!(refused(deep.as_bytes()), "depth {depth}");
            let inside = format!(r#"{{"ticketId": "1", "extra": {deep}}}"#);
            // Over serde_json's recursion limit the whole body is refused; never a crash.
            let _ = WebhookHint::try_from(inside.as_bytes());
            let event = format!(r#"{{"ticketId": "1", "triggered_event": {deep}}}"#);
            check_hint(event.as_bytes());
        }
    }
}

#[test]
fn the_webhook_parser_refuses_invalid_utf8_anywhere_in_a_string() {
    let valid = br#"{"ticketId": "123", "triggered_event": "ticket_created"}"#;
    for at in 0..valid.len() {
        for bad in [
            &[0xff_u8][..],
            &[0xc3],
            &[0xed, 0xa0, 0x80],
            &[0xf8, 0x88, 0x80, 0x80, 0x80],
            &[0],
        ] {
            let mut body = valid[..at].to_vec();
            body.extend_from_slice(bad);
            body.extend_from_slice(&valid[at..]);
            // An invalid byte (or a raw NUL) is refused wherever it lands, except in
            // insignificant places: there is none in JSON, so every case is refused.
            assert!(
                refused(&body),
                "accepted {}",
                String::from_utf8_lossy(&body)
            );
        }
    }
}

/// Mutations of a valid body: flip, insert or delete bytes.
fn mutated_webhook() -> impl Strategy<Value = Vec<u8>> {
    let base = VALID_WEBHOOK.as_bytes().to_vec();
    let len = base.len();
    prop::collection::vec((0..len, any::<u8>(), 0u8..3), 1..8).prop_map(move |edits| {
        let mut body = base.clone();
        for (at, byte, op) in edits {
            let at = at.min(body.len().saturating_sub(1));
            match op {
                0 if !body.is_empty() => body[at] = byte,
                1 => body.insert(at, byte),
                _ if !body.is_empty() => {
                    body.remove(at);
                }
                _ => body.push(byte),
            }
        }
        body
    })
}

/// JSON-shaped bodies: objects whose `ticketId` is any JSON fragment, plus junk fields.
fn json_shaped_webhook() -> impl Strategy<Value = Vec<u8>> {
    let fragment = prop_oneof![
        prop::sample::select(bad_ticket_ids()),
        any::<i64>().prop_map(|n| n.to_string()),
        any::<u64>().prop_map(|n| format!("\"{n}\"")),
        any::<f64>().prop_map(|f| format!("{f:e}")),
        "\\PC{0,40}".prop_map(|s| serde_json::to_string(&s).unwrap()),
        "[0-9]{1,25}".prop_map(|s| format!("\"{s}\"")),
        "[ \t\n]{0,2}[0-9]{1,3}[ \t\n]{0,2}".prop_map(|s| format!("\"{s}\"")),
    ];
    let event = prop_oneof![
        Just("null".to_string()),
        "\\PC{0,300}".prop_map(|s| serde_json::to_string(&s).unwrap()),
        any::<f64>().prop_map(|f| format!("{f:e}")),
        Just(nested(200, true, "1")),
        Just("[1, {\"a\": [true]}]".to_string()),
    ];
    (fragment, event, any::<bool>(), "\\PC{0,20}").prop_map(|(id, event, extra, key)| {
        let key = serde_json::to_string(&key).unwrap();
        let mut body = format!(r#"{{"ticketId": {id}, "triggered_event": {event}"#);
        if extra {
            body.push_str(&format!(r#", {key}: [{id}, {event}]"#));
        }
        body.push('}');
        body.into_bytes()
    })
}

proptest! {
    #![proptest_config(config(20_000))]

    #[test]
    fn the_webhook_parser_never_panics_on_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
        check_hint(&bytes);
        let _ = serde_json::from_slice::<SaveRequest>(&bytes);
    }

    #[test]
    fn the_webhook_parser_never_panics_on_mutations_of_a_valid_body(bytes in mutated_webhook()) {
        check_hint(&bytes);
    }

    #[test]
    fn the_webhook_parser_accepts_only_positive_ids_in_json_shaped_bodies(bytes in json_shaped_webhook()) {
        check_hint(&bytes);
    }
}

/// Where a domain may point: the policy's own answer, checked independently.
fn check_domain(policy: &DomainPolicy, input: &str) {
    let Ok(domain) = policy.parse(input) else {
        return;
    };
    check_accepted(policy, input, &domain);
}

fn check_accepted(policy: &DomainPolicy, input: &str, domain: &FreshdeskDomain) {
    let host = domain.host();
    if domain.is_insecure() {
        assert!(
            INSECURE.contains(&host),
            "{input:?} became plain-HTTP host {host:?}, which is not on the allow-list"
        );
    } else {
        let account = host.strip_suffix(".freshdesk.com").unwrap_or_else(|| {
            panic!("{input:?} was accepted as {host:?}, outside .freshdesk.com")
        });
        assert!(
            !account.is_empty()
                && account.bytes().all(|b| b.is_ascii_lowercase()
                    || b.is_ascii_digit()
                    || b == b'-'
                    || b == b'.'),
            "{input:?} was accepted as {host:?}"
        );
    }
    // What a URL parser makes of the URL the client will call must be that same host.
    let url = reqwest::Url::parse(&domain.api_url("/agents/me"))
        .unwrap_or_else(|e| panic!("{input:?}: the API URL does not parse: {e}"));
    let authority = match url.port() {
        Some(port) => format!("{}:{port}", url.host_str().unwrap_or("")),
        None => url.host_str().unwrap_or("").to_string(),
    };
    assert_eq!(
        authority, host,
        "{input:?}: the URL points elsewhere: {url}"
    );
    assert_eq!(url.path(), "/api/v2/agents/me", "{input:?}: {url}");
    assert!(
        url.username().is_empty() && url.password().is_none(),
        "{url}"
    );
    assert!(url.query().is_none() && url.fragment().is_none(), "{url}");
    assert_eq!(
        url.scheme(),
        if domain.is_insecure() {
            "http"
        } else {
            "https"
        }
    );
    // The accepted host is stable: parsing it again gives the same domain.
    assert_eq!(policy.parse(host).as_ref(), Ok(domain), "{input:?}");
}

fn policies() -> [DomainPolicy; 3] {
    [
        DomainPolicy::default(),
        DomainPolicy::new([".freshdesk.com"], INSECURE),
        // A suffix written without its dot or with odd case still means `.freshdesk.com`.
        DomainPolicy::new(["FreshDesk.com."], INSECURE),
    ]
}

/// Pieces hostile hosts are made of.
const PIECES: &[&str] = &[
    "acme",
    "a",
    "freshdesk",
    "com",
    "freshdesk.com",
    ".freshdesk.com",
    "FRESHDESK.COM",
    ".",
    "..",
    "-",
    "_",
    ":",
    "443",
    "9000",
    "9001",
    "9002",
    "@",
    "/",
    "#",
    "?",
    "\\",
    "%",
    "%2e",
    "%2f",
    "http://",
    "https://",
    "//",
    "[",
    "]",
    "::1",
    "::ffff:127.0.0.1",
    "127.0.0.1",
    "localhost",
    "169.254.169.254",
    "0x7f",
    "0177",
    "2130706433",
    "evil",
    "evil.com",
    " ",
    "\t",
    "\n",
    "\r\n",
    "\0",
    "é",
    "ａ",
    "K",
    "İ",
    "ß",
    "xn--",
    "ﬀ",
    "。",
    "．",
    "\u{200b}",
    "\u{202e}",
    "*",
    "~",
    "!",
    "$",
    "&",
    "'",
    "(",
    ")",
    ";",
    "=",
    "^",
    "|",
    "<",
    ">",
    "\"",
];

proptest! {
    #![proptest_config(config(20_000))]

    #[test]
    fn the_domain_guard_never_panics_and_never_leaves_freshdesk_for_arbitrary_text(input in "\\PC{0,80}") {
        for policy in policies() {
            check_domain(&policy, &input);
        }
    }

    #[test]
    fn the_domain_guard_never_leaves_freshdesk_for_hosts_built_from_hostile_pieces(
        pieces in prop::collection::vec(prop::sample::select(PIECES), 1..10)
    ) {
        let input: String = pieces.concat();
        for policy in policies() {
            check_domain(&policy, &input);
        }
    }

    #[test]
    fn the_domain_guard_never_leaves_freshdesk_for_arbitrary_bytes_read_as_text(
        bytes in prop::collection::vec(any::<u8>(), 0..300)
    ) {
        let input = String::from_utf8_lossy(&bytes);
        for policy in policies() {
            check_domain(&policy, &input);
        }
    }
}

#[test]
fn the_domain_guard_refuses_the_classic_server_side_request_forgery_hosts() {
    let long_label = format!("{}.freshdesk.com", "a".repeat(64));
    let long_host = format!("{}freshdesk.com", "abcdefghi.".repeat(30));
    let refused = [
        "localhost",
        "localhost:9000",
        "127.0.0.1",
        "127.0.0.1:9001",
        "127.1",
        "0x7f.0.0.1",
        "0177.0.0.1",
        "2130706433",
        "169.254.169.254",
        "169.254.169.254:80",
        "[::1]",
        "[::1]:9000",
        "::1",
        "[::ffff:127.0.0.1]",
        "freshdesk.com",
        ".freshdesk.com",
        "acme.freshdesk.com.evil.com",
        "acme.freshdesk.com.",
        "acmefreshdesk.com",
        "evil.com#.freshdesk.com",
        "evil.com?.freshdesk.com",
        "evil.com/.freshdesk.com",
        "evil.com\\.freshdesk.com",
        "acme.freshdesk.com@evil.com",
        "evil.com@acme.freshdesk.com",
        "acme.freshdesk.com:443@evil.com",
        "acme.freshdesk.com%2f@evil.com",
        "acme.freshdesk.com%00.evil.com",
        "acme.freshdesk.com\0.evil.com",
        "acme.freshdesk.com\r\nHost: evil.com",
        "http://acme.freshdesk.com",
        "https://acme.freshdesk.com",
        "//acme.freshdesk.com",
        "acme.freshdesk.com/api/v2",
        "acme.freshdesk.com:443",
        "acme。freshdesk。com",
        "acme．freshdesk．com",
        "ａcme.freshdesk.com",
        "acme.freshdesk.cоm",
        "acme\u{200b}.freshdesk.com",
        "xn--80ak6aa92e.freshdesk.com.evil.com",
        "*.freshdesk.com",
        "127.0.0.1.freshdesk.com.127.0.0.1",
        "1.2.3.4",
        "acme.freshdesk.com 127.0.0.1",
        &long_label,
        &long_host,
    ];
    for policy in policies() {
        for input in refused {
            assert!(
                policy.parse(input).is_err(),
                "accepted {input:?} as {:?}",
                policy.parse(input)
            );
        }
        // The allow-list is exact: same host, other port or other spelling is refused.
        for input in [
            "127.0.0.1:90000",
            "127.0.0.1:900",
            "127.0.0.2:9000",
            "localhost:9000",
        ] {
            assert!(policy.parse(input).is_err(), "accepted {input:?}");
        }
    }
    let with_list = DomainPolicy::new([".freshdesk.com"], INSECURE);
    for input in INSECURE {
        let domain = with_list.parse(input).expect(input);
        assert!(domain.is_insecure());
        check_accepted(&with_list, input, &domain);
    }
    assert!(DomainPolicy::default().parse("127.0.0.1:9000").is_err());
}

#[test]
fn the_domain_guard_refuses_hosts_whose_api_url_cannot_be_parsed() {
    for input in crate::domain_guard::INVALID_PUNYCODE_HOSTS {
        if let Ok(domain) = DomainPolicy::default().parse(input) {
            let url = domain.api_url("/agents/me");
            assert!(
                reqwest::Url::parse(&url).is_ok(),
                "{input:?} is accepted, but its API URL {url} does not parse"
            );
        }
    }
}
