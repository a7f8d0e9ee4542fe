//! The Freshdesk domain guard: the only way a Freshdesk host enters the service and the only
//! way a Freshdesk URL is built.
//!
//! An admin types a host (`acme.freshdesk.com`); [`DomainPolicy::parse`] checks it against the
//! configured suffixes (`freshdesk.allowed_domain_suffixes`) and the explicit plain-HTTP
//! allow-list (`freshdesk.insecure_hosts`) and returns a [`FreshdeskDomain`]. Because every
//! request URL comes from [`FreshdeskDomain::api_url`], and a `FreshdeskDomain` can only be
//! obtained through the policy, this is also the service's server-side-request-forgery guard:
//! no other host is ever called. The type deliberately does not implement `Deserialize`; a
//! stored host is re-parsed through the policy when it is loaded.

use serde::{Serialize, Serializer};
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use ticketsync_actors::TicketId;

/// The longest host name DNS allows (RFC 1035).
const MAX_HOST_LEN: usize = 253;
/// The longest DNS label.
const MAX_LABEL_LEN: usize = 63;

/// Which Freshdesk hosts may be called, from the `[freshdesk]` configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DomainPolicy {
    /// Lowercase suffixes, each starting with a dot (`.freshdesk.com`).
    allowed_suffixes: Vec<String>,
    /// Lowercase hosts (optionally with a port) spoken to over plain HTTP.
    insecure_hosts: Vec<String>,
}

impl Default for DomainPolicy {
    /// Production default: `*.freshdesk.com` over HTTPS, no plain-HTTP hosts.
    fn default() -> Self {
        Self::new([".freshdesk.com"], std::iter::empty::<&str>())
    }
}

impl DomainPolicy {
    /// A policy allowing hosts under `allowed_suffixes` (each like `.freshdesk.com`) over HTTPS
    /// and exactly the `insecure_hosts` (like `127.0.0.1:9000`) over plain HTTP.
    ///
    /// Entries are trimmed and lowercased. A suffix written without its leading dot
    /// (`freshdesk.com`) is read as `.freshdesk.com`, so it can never match `evilfreshdesk.com`;
    /// blank entries are ignored.
    pub fn new<S, H>(allowed_suffixes: S, insecure_hosts: H) -> Self
    where
        S: IntoIterator,
        S::Item: AsRef<str>,
        H: IntoIterator,
        H::Item: AsRef<str>,
    {
        let allowed_suffixes = allowed_suffixes
            .into_iter()
            .filter_map(|suffix| {
                let suffix = suffix
                    .as_ref()
                    .trim()
                    .trim_end_matches('.')
                    .to_ascii_lowercase();
                let bare = suffix.trim_start_matches('.');
                (!bare.is_empty()).then(|| format!(".{bare}"))
            })
            .collect();
        let insecure_hosts = insecure_hosts
            .into_iter()
            .map(|host| host.as_ref().trim().to_ascii_lowercase())
            .filter(|host| !host.is_empty())
            .collect();
        Self {
            allowed_suffixes,
            insecure_hosts,
        }
    }

    /// The normalised suffixes this policy accepts, each starting with a dot.
    pub fn allowed_suffixes(&self) -> &[String] {
        &self.allowed_suffixes
    }

    /// Check an admin-entered Freshdesk host and turn it into a [`FreshdeskDomain`].
    ///
    /// Accepts a bare host name such as `acme.freshdesk.com` (any case, surrounding whitespace
    /// ignored) that ends with an allowed suffix, or exactly one of the configured insecure
    /// hosts. Everything else — schemes, paths, ports, credentials, IP literals, malformed
    /// labels, other domains — is rejected with an error an admin can act on.
    pub fn parse(&self, input: &str) -> Result<FreshdeskDomain, DomainError> {
        let trimmed = input.trim();
        if trimmed.is_empty() {
            return Err(DomainError::Empty);
        }
        let host = trimmed.to_ascii_lowercase();
        if host.contains("://") || host.starts_with("http:") || host.starts_with("https:") {
            return Err(DomainError::Scheme);
        }
        if host.contains(['/', '?', '#']) {
            return Err(DomainError::Path);
        }
        if host.contains('@') {
            return Err(DomainError::Credentials);
        }
        if host.chars().any(char::is_whitespace) {
            return Err(DomainError::Whitespace);
        }
        if let Some(c) = host.chars().find(|c| matches!(c, '\\' | '%')) {
            return Err(DomainError::InvalidCharacter(c));
        }

        // The explicit allow-list is matched before the host-name rules so that it may carry a
        // port or an IP literal (the simulator at `127.0.0.1:9000`).
        if self.insecure_hosts.contains(&host) {
            return Ok(FreshdeskDomain {
                host,
                scheme: Scheme::Http,
            });
        }

        if host.starts_with('[')
            || host.parse::<IpAddr>().is_ok()
            || host.parse::<SocketAddr>().is_ok()
        {
            return Err(DomainError::IpAddress);
        }
        if host.contains(':') {
            return Err(DomainError::Port);
        }
        if host.ends_with('.') {
            return Err(DomainError::TrailingDot);
        }
        if host.len() > MAX_HOST_LEN {
            return Err(DomainError::TooLong);
        }
        for label in host.split('.') {
            check_label(label)?;
        }
        // A host whose last label is all digits is read as an IPv4 address by URL parsers
        // (`127.1`, `2130706433`); no allowed suffix looks like that, but say why plainly.
        if host
            .rsplit('.')
            .next()
            .is_some_and(|last| last.bytes().all(|b| b.is_ascii_digit()))
        {
            return Err(DomainError::IpAddress);
        }

        if let Some(suffix) = self
            .allowed_suffixes
            .iter()
            .find(|suffix| host.len() > suffix.len() && host.ends_with(suffix.as_str()))
        {
            // Labels are non-empty, so at least one full label precedes the suffix's dot.
            debug_assert!(!host[..host.len() - suffix.len()].is_empty());
            return Ok(FreshdeskDomain {
                host,
                scheme: Scheme::Https,
            });
        }
        if let Some(suffix) = self
            .allowed_suffixes
            .iter()
            .find(|suffix| suffix[1..] == host)
        {
            return Err(DomainError::MissingAccount {
                suffix: suffix.clone(),
            });
        }
        Err(DomainError::NotAllowed {
            allowed: self.allowed_suffixes.clone(),
        })
    }
}

/// Check one dot-separated label of a host name (already lowercased).
fn check_label(label: &str) -> Result<(), DomainError> {
    if label.is_empty() {
        return Err(DomainError::EmptyLabel);
    }
    if label.len() > MAX_LABEL_LEN {
        return Err(DomainError::LabelTooLong);
    }
    if let Some(c) = label
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-'))
    {
        return Err(DomainError::InvalidCharacter(c));
    }
    if label.starts_with('-') || label.ends_with('-') {
        return Err(DomainError::Hyphen);
    }
    // `ab--…` is reserved for encoded international names (`xn--`); an invalid encoding
    // would pass the rules above yet make no URL. Freshdesk account names are plain ASCII.
    if label.get(2..4) == Some("--") {
        return Err(DomainError::ReservedLabel);
    }
    Ok(())
}

/// Why an admin-entered Freshdesk host was refused. Messages are written for the admin.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DomainError {
    /// A label with `--` in third and fourth place (reserved for encoded names).
    #[error("The Freshdesk host has a part with \"--\" in third and fourth place, which is reserved; enter your plain account host, like acme.freshdesk.com")]
    ReservedLabel,
    /// Nothing was entered.
    #[error("Enter your Freshdesk host, like acme.freshdesk.com")]
    Empty,
    /// `https://…` or another scheme.
    #[error("Enter the Freshdesk host only, like acme.freshdesk.com, without https://")]
    Scheme,
    /// A `/`, `?` or `#`.
    #[error(
        "Enter the Freshdesk host only, like acme.freshdesk.com, without a path (no /, ? or #)"
    )]
    Path,
    /// A `user@` part.
    #[error("Enter the Freshdesk host only, like acme.freshdesk.com, without a user name or @")]
    Credentials,
    /// Spaces or other whitespace inside the host.
    #[error("The Freshdesk host must not contain spaces")]
    Whitespace,
    /// A character no host name may contain.
    #[error(
        "The Freshdesk host contains {0:?}, which is not allowed: use only letters, digits, \
         hyphens and dots"
    )]
    InvalidCharacter(char),
    /// `host:port`.
    #[error("Enter the Freshdesk host without a port, like acme.freshdesk.com")]
    Port,
    /// `acme.freshdesk.com.`
    #[error("The Freshdesk host must not end with a dot")]
    TrailingDot,
    /// `acme..freshdesk.com` or `.freshdesk.com`.
    #[error("The Freshdesk host has an empty part: check for a leading dot or two dots in a row")]
    EmptyLabel,
    /// A label starting or ending with `-`.
    #[error("Parts of the Freshdesk host cannot start or end with a hyphen")]
    Hyphen,
    /// A label longer than 63 characters.
    #[error("Each part of the Freshdesk host between dots must be at most 63 characters long")]
    LabelTooLong,
    /// A host longer than 253 characters.
    #[error("The Freshdesk host must be at most 253 characters long")]
    TooLong,
    /// `127.0.0.1`, `[::1]`, …
    #[error("Enter the Freshdesk host name, like acme.freshdesk.com, not an IP address")]
    IpAddress,
    /// The bare suffix (`freshdesk.com`) without the account's own label.
    #[error("Enter your account's own host, like acme{suffix}, not {} alone", without_dot(.suffix))]
    MissingAccount {
        /// The suffix that was entered on its own, with its leading dot.
        suffix: String,
    },
    /// A host outside every allowed suffix.
    #[error("{}", describe_allowed(allowed))]
    NotAllowed {
        /// The suffixes the policy accepts.
        allowed: Vec<String>,
    },
}

fn without_dot(suffix: &str) -> &str {
    suffix.strip_prefix('.').unwrap_or(suffix)
}

fn describe_allowed(allowed: &[String]) -> String {
    match allowed {
        [] => "This server is not configured to connect to any Freshdesk host".to_string(),
        [only] => format!("The Freshdesk host must end with {only}, like acme{only}"),
        many => format!(
            "The Freshdesk host must end with one of {}, like acme{}",
            many.join(", "),
            many[0]
        ),
    }
}

/// How the service speaks to a Freshdesk host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Scheme {
    Https,
    /// Only for hosts listed in `freshdesk.insecure_hosts`.
    Http,
}

/// A Freshdesk host that passed a [`DomainPolicy`]; the only source of Freshdesk URLs.
///
/// Displays and serialises as the bare host (`acme.freshdesk.com`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FreshdeskDomain {
    /// Lowercase host, with a port only for an insecure host.
    host: String,
    scheme: Scheme,
}

impl FreshdeskDomain {
    /// The lowercase host, e.g. `acme.freshdesk.com` (or `127.0.0.1:9000` for an insecure host).
    pub fn host(&self) -> &str {
        &self.host
    }

    /// Whether this host is spoken to over plain HTTP (listed in `freshdesk.insecure_hosts`).
    pub fn is_insecure(&self) -> bool {
        self.scheme == Scheme::Http
    }

    /// The full URL of an API v2 path: `api_url("/tickets/1")` is
    /// `https://acme.freshdesk.com/api/v2/tickets/1`. A missing leading `/` is added.
    pub fn api_url(&self, path_and_query: &str) -> String {
        let separator = if path_and_query.starts_with('/') {
            ""
        } else {
            "/"
        };
        format!("{}/api/v2{separator}{path_and_query}", self.origin())
    }

    /// Where an agent opens the ticket in Freshdesk's web app:
    /// `https://acme.freshdesk.com/a/tickets/123`.
    pub fn ticket_url(&self, ticket: TicketId) -> String {
        format!("{}/a/tickets/{ticket}", self.origin())
    }

    /// `scheme://host`.
    fn origin(&self) -> String {
        let scheme = match self.scheme {
            Scheme::Https => "https",
            Scheme::Http => "http",
        };
        format!("{scheme}://{}", self.host)
    }
}

impl fmt::Display for FreshdeskDomain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.host)
    }
}

impl Serialize for FreshdeskDomain {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.host)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> DomainPolicy {
        DomainPolicy::default()
    }

    #[test]
    fn accepts_an_account_host_over_https() {
        let domain = policy().parse("acme.freshdesk.com").unwrap();
        assert_eq!(domain.host(), "acme.freshdesk.com");
        assert!(!domain.is_insecure());
        assert_eq!(
            domain.api_url("/tickets/1"),
            "https://acme.freshdesk.com/api/v2/tickets/1"
        );
        assert_eq!(
            domain.api_url("agents/me"),
            "https://acme.freshdesk.com/api/v2/agents/me"
        );
        assert_eq!(
            domain.ticket_url(TicketId(123)),
            "https://acme.freshdesk.com/a/tickets/123"
        );
        assert_eq!(domain.to_string(), "acme.freshdesk.com");
        assert_eq!(
            serde_json::to_value(&domain).unwrap(),
            serde_json::json!("acme.freshdesk.com")
        );
    }

    #[test]
    fn lowercases_and_trims_the_host() {
        let domain = policy().parse("  ACME.Freshdesk.com\n").unwrap();
        assert_eq!(domain.host(), "acme.freshdesk.com");
    }

    #[test]
    fn accepts_hyphens_and_digits_inside_labels() {
        let domain = policy().parse("acme-2.eu.freshdesk.com").unwrap();
        assert_eq!(domain.host(), "acme-2.eu.freshdesk.com");
    }

    #[test]
    fn rejects_everything_that_is_not_a_bare_account_host() {
        let cases: &[(&str, DomainError)] = &[
            ("", DomainError::Empty),
            ("   ", DomainError::Empty),
            ("https://acme.freshdesk.com", DomainError::Scheme),
            ("HTTP://acme.freshdesk.com", DomainError::Scheme),
            ("http:acme.freshdesk.com", DomainError::Scheme),
            ("ftp://acme.freshdesk.com", DomainError::Scheme),
            ("acme.freshdesk.com/", DomainError::Path),
            ("acme.freshdesk.com/api", DomainError::Path),
            ("acme.freshdesk.com?x=1", DomainError::Path),
            ("acme.freshdesk.com#top", DomainError::Path),
            ("acme freshdesk.com", DomainError::Whitespace),
            ("acme.fresh\tdesk.com", DomainError::Whitespace),
            ("user@acme.freshdesk.com", DomainError::Credentials),
            (
                "acme.freshdesk.com\\evil.com",
                DomainError::InvalidCharacter('\\'),
            ),
            ("acme%2efreshdesk.com", DomainError::InvalidCharacter('%')),
            ("acme_1.freshdesk.com", DomainError::InvalidCharacter('_')),
            ("acmé.freshdesk.com", DomainError::InvalidCharacter('é')),
            ("acme.freshdesk.com:443", DomainError::Port),
            ("acme.freshdesk.com.", DomainError::TrailingDot),
            ("acme..freshdesk.com", DomainError::EmptyLabel),
            (".freshdesk.com", DomainError::EmptyLabel),
            ("-acme.freshdesk.com", DomainError::Hyphen),
            ("acme-.freshdesk.com", DomainError::Hyphen),
            ("127.0.0.1", DomainError::IpAddress),
            ("127.0.0.1:9000", DomainError::IpAddress),
            ("169.254.169.254", DomainError::IpAddress),
            ("[::1]", DomainError::IpAddress),
            ("::1", DomainError::IpAddress),
            ("127.1", DomainError::IpAddress),
            ("2130706433", DomainError::IpAddress),
            (
                "freshdesk.com",
                DomainError::MissingAccount {
                    suffix: ".freshdesk.com".into(),
                },
            ),
        ];
        for (input, expected) in cases {
            assert_eq!(
                policy().parse(input).as_ref(),
                Err(expected),
                "input {input:?}"
            );
        }
    }

    #[test]
    fn rejects_hosts_outside_the_allowed_suffixes() {
        let not_allowed = DomainError::NotAllowed {
            allowed: vec![".freshdesk.com".into()],
        };
        for input in [
            "localhost",
            "acme.freshdesk.com.evil.com",
            "evilfreshdesk.com",
            "acme.freshdesk.co",
            "metadata.google.internal",
        ] {
            assert_eq!(
                policy().parse(input),
                Err(not_allowed.clone()),
                "input {input:?}"
            );
        }
    }

    #[test]
    fn rejects_overlong_labels_and_hosts() {
        let label = "a".repeat(64);
        assert_eq!(
            policy().parse(&format!("{label}.freshdesk.com")),
            Err(DomainError::LabelTooLong)
        );
        let ok_label = "a".repeat(63);
        assert!(policy().parse(&format!("{ok_label}.freshdesk.com")).is_ok());
        let long = format!("{ok_label}.{ok_label}.{ok_label}.{ok_label}.freshdesk.com");
        assert_eq!(policy().parse(&long), Err(DomainError::TooLong));
    }

    #[test]
    fn speaks_plain_http_only_to_listed_insecure_hosts() {
        let with_sim =
            DomainPolicy::new([".freshdesk.com"], ["127.0.0.1:9000", " LocalHost:8081 "]);
        let sim = with_sim.parse("127.0.0.1:9000").unwrap();
        assert!(sim.is_insecure());
        assert_eq!(sim.host(), "127.0.0.1:9000");
        assert_eq!(
            sim.api_url("/agents/me"),
            "http://127.0.0.1:9000/api/v2/agents/me"
        );
        assert_eq!(
            with_sim.parse("localhost:8081").unwrap().api_url("/roles"),
            "http://localhost:8081/api/v2/roles"
        );
        assert_eq!(
            sim.ticket_url(TicketId(7)),
            "http://127.0.0.1:9000/a/tickets/7"
        );
        // Exact match only: another port, a scheme or a path is still refused.
        assert_eq!(
            with_sim.parse("127.0.0.1:9001"),
            Err(DomainError::IpAddress)
        );
        assert_eq!(
            with_sim.parse("http://127.0.0.1:9000"),
            Err(DomainError::Scheme)
        );
        assert_eq!(with_sim.parse("127.0.0.1:9000/x"), Err(DomainError::Path));
        assert_eq!(
            policy().parse("127.0.0.1:9000"),
            Err(DomainError::IpAddress)
        );
        // Regular hosts keep HTTPS under a policy with insecure hosts.
        assert!(!with_sim.parse("acme.freshdesk.com").unwrap().is_insecure());
    }

    #[test]
    fn accepts_any_configured_suffix() {
        let policy = DomainPolicy::new([".freshdesk.com", "freshservice.com "], [] as [&str; 0]);
        assert_eq!(
            policy.allowed_suffixes(),
            [
                ".freshdesk.com".to_string(),
                ".freshservice.com".to_string()
            ]
        );
        assert_eq!(
            policy.parse("acme.freshservice.com").unwrap().host(),
            "acme.freshservice.com"
        );
        assert_eq!(
            policy.parse("evilfreshservice.com"),
            Err(DomainError::NotAllowed {
                allowed: vec![".freshdesk.com".into(), ".freshservice.com".into()]
            })
        );
        assert!(policy.parse("acme.freshdesk.com").is_ok());
    }

    #[test]
    fn error_messages_speak_to_the_admin() {
        assert_eq!(
            DomainError::Scheme.to_string(),
            "Enter the Freshdesk host only, like acme.freshdesk.com, without https://"
        );
        assert_eq!(
            policy().parse("acme.example.com").unwrap_err().to_string(),
            "The Freshdesk host must end with .freshdesk.com, like acme.freshdesk.com"
        );
        assert_eq!(
            policy().parse("freshdesk.com").unwrap_err().to_string(),
            "Enter your account's own host, like acme.freshdesk.com, not freshdesk.com alone"
        );
        assert_eq!(
            policy().parse("a_b.freshdesk.com").unwrap_err().to_string(),
            "The Freshdesk host contains '_', which is not allowed: use only letters, digits, \
             hyphens and dots"
        );
        let none = DomainPolicy::new([] as [&str; 0], [] as [&str; 0]);
        assert_eq!(
            none.parse("acme.freshdesk.com").unwrap_err().to_string(),
            "This server is not configured to connect to any Freshdesk host"
        );
    }
}
