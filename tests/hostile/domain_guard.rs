//! The domain guard end to end (contract §2.1): verify and save with loopback hosts and ports,
//! the metadata address, IPv6 loopback, look-alike and smuggled hosts, schemes and paths are
//! refused with 422 `invalid_domain` before anything is called: a listener the test owns sees
//! no connection and the simulator records no request.

use crate::fixture::wait_backfill_done;
use crate::harness::{TestApp, AI_KEY};
use crate::wire::{assert_refused, send, Req};
use reqwest::Method;
use serde_json::{json, Value};
use std::net::TcpListener;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use testkit::assert_quiet_for;
use ticketsync::freshdesk::DomainPolicy;

/// A TCP listener that counts every connection it receives, until dropped.
struct Trap {
    port: u16,
    connections: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Trap {
    /// Listen on 127.0.0.1 and, when the machine has IPv6, on [::1] with the same port.
    fn start() -> Self {
        let v4 = TcpListener::bind("127.0.0.1:0").expect("bind a trap listener");
        let port = v4.local_addr().unwrap().port();
        let listeners: Vec<TcpListener> = std::iter::once(v4)
            .chain(TcpListener::bind(("::1", port)).ok())
            .collect();
        let connections = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let threads = listeners
            .into_iter()
            .map(|listener| {
                listener.set_nonblocking(true).unwrap();
                let connections = connections.clone();
                let stop = stop.clone();
                std::thread::spawn(move || {
                    while !stop.load(Ordering::SeqCst) {
                        match listener.accept() {
                            Ok(_) => {
                                connections.fetch_add(1, Ordering::SeqCst);
                            }
                            Err(_) => std::thread::sleep(Duration::from_millis(5)),
                        }
                    }
                })
            })
            .collect();
        Self {
            port,
            connections,
            stop,
            threads,
        }
    }

    fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

impl Drop for Trap {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

/// Hosts an admin might be tricked into typing, pointing at the trap, the simulator (with a
/// twist that the allow-list must not match) or outside Freshdesk.
fn hostile_domains(trap: u16, sim: &str) -> Vec<String> {
    let sim_port = sim.rsplit(':').next().unwrap();
    vec![
        format!("localhost:{trap}"),
        format!("127.0.0.1:{trap}"),
        format!("127.1:{trap}"),
        format!("[::1]:{trap}"),
        format!("0.0.0.0:{trap}"),
        format!("2130706433:{trap}"),
        "localhost".into(),
        "127.0.0.1".into(),
        "169.254.169.254".into(),
        "169.254.169.254:80".into(),
        "[::1]".into(),
        "[::ffff:127.0.0.1]".into(),
        "metadata.google.internal".into(),
        "acme.freshdesk.com.evil.com".into(),
        "evil.com#.freshdesk.com".into(),
        "evil.com?.freshdesk.com".into(),
        "evil.com\\.freshdesk.com".into(),
        "acme.freshdesk.com@evil.com".into(),
        format!("acme.freshdesk.com@127.0.0.1:{trap}"),
        format!("acme.freshdesk.com:x@127.0.0.1:{trap}"),
        format!("http://127.0.0.1:{trap}"),
        format!("http://{sim}"),
        "http://acme.freshdesk.com".into(),
        "https://acme.freshdesk.com".into(),
        "//acme.freshdesk.com".into(),
        format!("{sim}/api/v2"),
        format!("{sim}/"),
        format!("{sim}?x=1"),
        format!("{sim}#x"),
        format!("localhost:{sim_port}"),
        format!("127.0.0.1:{sim_port}@127.0.0.1:{trap}"),
        format!("127.0.0.1:{trap}#{sim}"),
        "acme.freshdesk.com/path".into(),
        "acme.freshdesk.com/../../evil".into(),
        "acme.freshdesk.com:443".into(),
        "acme.freshdesk.com.".into(),
        "acme freshdesk.com".into(),
        "acme.freshdesk.com\r\nHost: evil.com".into(),
        "acme.freshdesk.com\0.evil.com".into(),
        "acme。freshdesk。com".into(),
        "ａcme.freshdesk.com".into(),
        "freshdesk.com".into(),
        "".into(),
    ]
}

/// The service's own policy must refuse the host before we ever send it: if it did not, the
/// service would call out of this machine.
fn assert_guard_refuses(policy: &DomainPolicy, domain: &str) {
    assert!(
        policy.parse(domain).is_err(),
        "the guard accepts {domain:?}: not sending it, since the service would call it"
    );
}

#[tokio::test]
async fn verify_and_save_refuse_hostile_domains_before_calling_anything() {
    let trap = Trap::start();
    let t = TestApp::spawn().await;
    let policy = DomainPolicy::new([".freshdesk.com"], [t.sim_domain()]);
    let fresh = t.create_org("Fresh").await;
    let domains = hostile_domains(trap.port, &t.sim_domain());
    for domain in &domains {
        assert_guard_refuses(&policy, domain);
        let verify = Req::new(
            Method::POST,
            format!("/api/v1/orgs/{fresh}/freshdesk/verify"),
        )
        .json(serde_json::to_vec(&json!({"domain": domain, "api_key": AI_KEY})).unwrap())
        .bearer(crate::harness::ADMIN_TOKEN);
        let answer = send(&t.http, t.base(), &verify).await;
        assert_refused(&verify.describe(), &answer, 422, "invalid_domain");
        for settings in [
            json!({"domain": domain, "api_key": AI_KEY}),
            json!({"domain": domain}),
            json!({"domain": domain, "api_key": AI_KEY, "auto_handle_all": false,
                   "handoff": {"routing": "unassign"}}),
        ] {
            let save = Req::new(Method::PUT, format!("/api/v1/orgs/{fresh}/freshdesk"))
                .json(serde_json::to_vec(&settings).unwrap())
                .bearer(crate::harness::ADMIN_TOKEN);
            let answer = send(&t.http, t.base(), &save).await;
            assert_refused(&save.describe(), &answer, 422, "invalid_domain");
        }
    }
    t.connection(&fresh)
        .await
        .assert_error(404, "not_connected");
    // Give a stray connection attempt time to land before counting.
    assert_quiet_for(
        Duration::from_millis(200),
        "the trap listener is never called",
        || async { trap.connections() == 0 },
    )
    .await;
    assert_eq!(trap.connections(), 0, "the trap listener was called");
    let requests = t.sim_requests().await;
    assert!(
        requests.is_empty(),
        "the simulator was called: {:?}",
        requests
            .iter()
            .map(|r| format!("{} {}", r.method, r.path))
            .collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn a_connected_org_never_sends_its_stored_key_to_a_hostile_domain() {
    let trap = Trap::start();
    let t = TestApp::spawn().await;
    let policy = DomainPolicy::new([".freshdesk.com"], [t.sim_domain()]);
    let (org, _) = t.connected_org(json!({})).await;
    wait_backfill_done(&t, &org).await;
    let before = t.connection(&org).await.body;
    let seen = t.sim_requests().await.len();
    for domain in hostile_domains(trap.port, &t.sim_domain()) {
        assert_guard_refuses(&policy, &domain);
        // Without a key (the stored one would be used) and with one.
        for settings in [
            json!({"domain": domain}),
            json!({"domain": domain, "api_key": AI_KEY}),
        ] {
            t.save(&org, settings)
                .await
                .assert_error(422, "invalid_domain");
        }
        t.verify(&org, &domain, AI_KEY)
            .await
            .assert_error(422, "invalid_domain");
    }
    assert_quiet_for(
        Duration::from_millis(200),
        "the trap listener is never called",
        || async { trap.connections() == 0 },
    )
    .await;
    assert_eq!(trap.connections(), 0, "the trap listener was called");
    let connect_calls: Vec<String> = t.sim_requests().await[seen..]
        .iter()
        .filter(|r| !(r.method == "GET" && r.path == "/api/v2/tickets"))
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    assert!(
        connect_calls.is_empty(),
        "the simulator was called: {connect_calls:?}"
    );
    let after: Value = t.connection(&org).await.body;
    assert_eq!(before["settings"], after["settings"]);
    assert_eq!(before["agent"], after["agent"]);
    assert_eq!(after["connected"], true);
}

/// Hosts the guard accepts (plain `.freshdesk.com` names) whose `xn--` label is not valid
/// punycode, so no URL can be built for them.
pub const INVALID_PUNYCODE_HOSTS: [&str; 3] = [
    "xn--127.freshdesk.com",
    "acme.xn--a.freshdesk.com",
    "xn--0.freshdesk.com",
];

#[tokio::test]
async fn a_host_with_an_invalid_punycode_label_is_refused_as_an_invalid_domain() {
    let t = TestApp::spawn().await;
    let org = t.create_org("Fresh").await;
    // Safe to send: no request can be built for these hosts, so nothing leaves the machine.
    for domain in INVALID_PUNYCODE_HOSTS {
        if let Ok(parsed) = DomainPolicy::default().parse(domain) {
            let url = parsed.api_url("/agents/me");
            assert!(reqwest::Url::parse(&url).is_err(), "{url} would be called");
        }
    }
    for domain in INVALID_PUNYCODE_HOSTS {
        t.verify(&org, domain, AI_KEY)
            .await
            .assert_error(422, "invalid_domain");
        t.save(&org, json!({"domain": domain, "api_key": AI_KEY}))
            .await
            .assert_error(422, "invalid_domain");
    }
    assert!(t.sim_requests().await.is_empty());
}
