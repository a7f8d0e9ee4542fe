//! Arbitrary text as an admin-entered Freshdesk host (`DomainPolicy::parse`): it may not
//! panic, and whatever it accepts is either exactly one of the plain-HTTP hosts or a host
//! under `.freshdesk.com`, which a URL parser reads as that same host.

#![no_main]

use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;
use ticketsync::freshdesk::DomainPolicy;

const INSECURE: [&str; 3] = ["127.0.0.1:9000", "localhost:9001", "[::1]:9002"];

fn policies() -> &'static [DomainPolicy; 3] {
    static POLICIES: OnceLock<[DomainPolicy; 3]> = OnceLock::new();
    POLICIES.get_or_init(|| {
        [
            DomainPolicy::default(),
            DomainPolicy::new([".freshdesk.com"], INSECURE),
            DomainPolicy::new(["FreshDesk.com."], INSECURE),
        ]
    })
}

fuzz_target!(|data: &[u8]| {
    let input = String::from_utf8_lossy(data);
    for policy in policies() {
        let Ok(domain) = policy.parse(&input) else {
            continue;
        };
        let host = domain.host();
        if domain.is_insecure() {
            assert!(
                INSECURE.contains(&host),
                "{input:?} became plain-HTTP {host:?}"
            );
            continue;
        }
        let account = host
            .strip_suffix(".freshdesk.com")
            .unwrap_or_else(|| panic!("{input:?} accepted as {host:?}, outside .freshdesk.com"));
        assert!(!account.is_empty(), "{input:?}: no account label");
        let url = url::Url::parse(&domain.api_url("/agents/me"))
            .unwrap_or_else(|e| panic!("{input:?}: the API URL does not parse: {e}"));
        assert_eq!(
            url.host_str(),
            Some(host),
            "{input:?}: the URL points elsewhere"
        );
        assert_eq!(url.scheme(), "https");
        assert_eq!(url.port(), None);
        assert_eq!(url.path(), "/api/v2/agents/me");
        assert!(url.username().is_empty() && url.password().is_none());
        assert_eq!(
            policy.parse(host).as_ref(),
            Ok(&domain),
            "{input:?}: not stable"
        );
    }
});
