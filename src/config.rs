//! Typed configuration: `config.toml` (or `--config PATH`) overlaid with
//! `TICKETSYNC__SECTION__KEY` environment variables, deserialised into one `Settings` tree.
//!
//! Secrets (`server.admin_token`, `storage.encryption_key`) are wrapped in `SecretString` so
//! they cannot reach a log line through `Debug`.

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The prefix of environment overrides; sections and keys are separated by `__`.
pub const ENV_PREFIX: &str = "TICKETSYNC__";

/// The whole configuration. Every key has a default (contract §9): each section's `Default` impl
/// is the one place that states it, `#[serde(default)]` fills in what a file omits, and
/// `config.toml` documents the same values.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// HTTP listener and admin access.
    pub server: ServerSettings,
    /// The embedded database.
    pub storage: StorageSettings,
    /// Ticket engine tuning.
    pub engine: EngineSettings,
    /// How Freshdesk is spoken to.
    pub freshdesk: FreshdeskSettings,
    /// Which AI responder answers, and how.
    pub responder: ResponderSettings,
    /// Several nodes on one PostgreSQL: this node's id, the shard leases.
    pub cluster: ClusterSettings,
    /// The admin console's sign-in sessions.
    pub console: ConsoleSettings,
    /// The setup self-test (`POST …/freshdesk/self-test`).
    pub self_test: SelfTestSettings,
    /// What the configuration should change (deprecated keys), logged once at start.
    #[serde(skip)]
    pub warnings: Vec<String>,
}

/// Keys renamed, `(old, new)`: the old name is still read, with a warning; the new one wins
/// when both are set. (`reconcile` names the outbox check, not the missed-webhook sweep.)
const RENAMED_KEYS: [(&str, &str); 1] = [(
    "engine.reconcile_interval_secs",
    "engine.sweep_interval_secs",
)];

/// `[server]`
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerSettings {
    /// Address the HTTP server binds (`127.0.0.1:0` picks a free port).
    pub listen: String,
    /// Base of the webhook URLs shown to admins, without a trailing slash.
    pub public_url: String,
    /// Bearer token for the admin and inspection API; empty: generated on first start.
    pub admin_token: SecretString,
}

impl Default for ServerSettings {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8080".into(),
            public_url: "http://127.0.0.1:8080".into(),
            admin_token: empty_secret(),
        }
    }
}

/// `[storage]`
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StorageSettings {
    /// Where the state lives: the embedded sled database or a PostgreSQL shared by the nodes.
    pub backend: StorageBackend,
    /// Directory of the sled database and the generated key files (with PostgreSQL: the
    /// node's own files only, e.g. its generated node id).
    pub path: PathBuf,
    /// Base64 of the 32-byte key that encrypts API keys at rest; empty: `<path>/secret.key`
    /// (sled only: every PostgreSQL node must be given the same key).
    pub encryption_key: SecretString,
    /// Size of sled's page cache in MiB (bounds resident memory however many tickets exist).
    pub cache_capacity_mb: u64,
    /// `[storage.postgres]`, used with `backend = "postgres"`.
    pub postgres: PostgresSettings,
}

impl Default for StorageSettings {
    fn default() -> Self {
        Self {
            backend: StorageBackend::Sled,
            path: PathBuf::from("./data"),
            encryption_key: empty_secret(),
            cache_capacity_mb: 64,
            postgres: PostgresSettings::default(),
        }
    }
}

/// Which database keeps the state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StorageBackend {
    /// Embedded, one node (the default: no database to run).
    Sled,
    /// PostgreSQL, shared by any number of nodes.
    Postgres,
}

/// `[storage.postgres]`
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PostgresSettings {
    /// `postgres://user:password@host:port/database` (secret: it may carry a password).
    pub url: SecretString,
    /// Connections in this node's pool.
    pub max_connections: usize,
    /// Longest a statement may run before the server cancels it, in milliseconds.
    pub statement_timeout_ms: u64,
}

impl PostgresSettings {
    /// The store's connection options.
    pub fn options(&self) -> crate::store::postgres::PgOptions {
        crate::store::postgres::PgOptions {
            url: self.url.expose_secret().to_string(),
            max_connections: self.max_connections,
            statement_timeout: Duration::from_millis(self.statement_timeout_ms),
        }
    }
}

impl Default for PostgresSettings {
    fn default() -> Self {
        Self {
            url: SecretString::from("postgres://127.0.0.1:5432/ticketsync"),
            max_connections: 16,
            statement_timeout_ms: 5000,
        }
    }
}

/// `[engine]`
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EngineSettings {
    /// AI answers on one ticket before the next contact message hands it off (`turn_limit`).
    pub max_ai_replies_per_ticket: u32,
    /// Seconds without an event before a ticket actor is passivated.
    pub idle_passivate_secs: u64,
    /// Seconds between missed-webhook recovery sweeps of a connected org (formerly
    /// `reconcile_interval_secs`, still read: see `RENAMED_KEYS`).
    pub sweep_interval_secs: u64,
    /// Ticket actors alive at most; tickets beyond wait (in the store) for a free slot.
    pub max_live_actors: usize,
}

impl Default for EngineSettings {
    fn default() -> Self {
        Self {
            max_ai_replies_per_ticket: 10,
            idle_passivate_secs: 300,
            sweep_interval_secs: 300,
            max_live_actors: 20_000,
        }
    }
}

/// `[freshdesk]`
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FreshdeskSettings {
    /// Host suffixes an org's Freshdesk domain may end with.
    pub allowed_domain_suffixes: Vec<String>,
    /// Hosts (with port) spoken to over plain http: simulator, tests and demos only.
    pub insecure_hosts: Vec<String>,
    /// Timeout of one Freshdesk request, in milliseconds.
    pub request_timeout_ms: u64,
    /// Share of the account's per-minute rate limit ticketsync may use.
    pub rate_limit_share: f64,
    /// How far back the first-connect backfill imports, in days.
    pub backfill_days: u32,
}

impl Default for FreshdeskSettings {
    fn default() -> Self {
        Self {
            allowed_domain_suffixes: vec![".freshdesk.com".into()],
            insecure_hosts: Vec::new(),
            request_timeout_ms: 10_000,
            rate_limit_share: 0.8,
            backfill_days: 180,
        }
    }
}

/// `[cluster]` (used with the PostgreSQL backend: see docs/cluster.md)
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClusterSettings {
    /// This node's id among the nodes sharing the database; empty: generated on first start
    /// and stored in `<storage.path>/node_id`.
    pub node_id: String,
    /// Lifetime of a shard lease in seconds; renewed every third of it. A dead node's orgs
    /// move after at most this (plus the settle window).
    pub lease_ttl_secs: u64,
    /// Shards the orgs are hashed into (the unit of ownership); the same on every node.
    pub shards: u32,
}

impl Default for ClusterSettings {
    fn default() -> Self {
        Self {
            node_id: String::new(),
            lease_ttl_secs: 15,
            shards: 64,
        }
    }
}

/// `[console]`
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ConsoleSettings {
    /// Minutes a console sign-in lasts; then the admin signs in again (0: a session ends at
    /// once, which only tests want).
    pub session_ttl_minutes: u64,
}

impl Default for ConsoleSettings {
    fn default() -> Self {
        Self {
            session_ttl_minutes: 480,
        }
    }
}

/// `[self_test]`
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SelfTestSettings {
    /// Seconds the self-test waits for each automation rule's webhook before it reports the
    /// rule as not received.
    pub wait_secs: u64,
}

impl Default for SelfTestSettings {
    fn default() -> Self {
        Self { wait_secs: 30 }
    }
}

/// What a node keeps between the end of its Freshdesk request timeout and its lease's expiry
/// (a bounded pause, clock rate drift): see docs/cluster.md.
pub const LEASE_WRITE_MARGIN: Duration = Duration::from_secs(1);

/// Longest accepted node id.
const MAX_NODE_ID: usize = 64;

/// `[responder]`
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ResponderSettings {
    /// `builtin` or `openai`.
    pub kind: ResponderKind,
    /// Phrases of the builtin responder that hand off (`customer_requested`).
    pub handoff_phrases: Vec<String>,
    /// Phrases of the builtin responder that resolve the ticket.
    pub resolve_phrases: Vec<String>,
    /// The builtin responder's answers, first match wins. None by default: an answer is about
    /// one's own product, so config.toml's entry is an example.
    pub faq: Vec<FaqEntry>,
    /// The OpenAI-compatible responder: always present when `kind = "openai"` (with its
    /// defaults when the file has no `[responder.openai]`), otherwise only when configured.
    pub openai: Option<OpenAiSettings>,
}

impl Default for ResponderSettings {
    fn default() -> Self {
        Self {
            kind: ResponderKind::Builtin,
            handoff_phrases: ["human", "agent", "representative", "real person"]
                .map(String::from)
                .to_vec(),
            resolve_phrases: ["that solved it", "problem solved", "issue resolved"]
                .map(String::from)
                .to_vec(),
            faq: Vec::new(),
            openai: None,
        }
    }
}

/// Which responder answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ResponderKind {
    /// Deterministic, configured by phrases and FAQ entries.
    Builtin,
    /// Any OpenAI-compatible chat-completions endpoint.
    Openai,
}

/// `[[responder.faq]]`: both keys are required (an entry is data, not a setting).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaqEntry {
    /// Words that must all occur in the customer's latest message.
    pub keywords: Vec<String>,
    /// The reply sent when they do.
    pub answer: String,
}

/// `[responder.openai]`
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OpenAiSettings {
    /// Base URL of the API, e.g. `https://api.openai.com/v1`.
    pub base_url: String,
    /// Model name sent with each request.
    pub model: String,
    /// Name of the environment variable that holds the API key.
    pub api_key_env: String,
    /// Timeout of one completion request, in milliseconds.
    pub timeout_ms: u64,
    /// Attempts before the ticket is handed off.
    pub max_attempts: u32,
}

impl Default for OpenAiSettings {
    fn default() -> Self {
        Self {
            base_url: "https://api.openai.com/v1".into(),
            model: "gpt-4o-mini".into(),
            api_key_env: "OPENAI_API_KEY".into(),
            timeout_ms: 20_000,
            max_attempts: 3,
        }
    }
}

fn empty_secret() -> SecretString {
    SecretString::from(String::new())
}

/// Where a configuration value came from, to tell the operator what to fix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// The configuration file at this path.
    File(PathBuf),
    /// TOML text given to [`Settings::parse_with_env`], not read from a file.
    Text,
    /// A `TICKETSYNC__SECTION__KEY` environment variable.
    Env(String),
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::File(path) => write!(f, "file {}", path.display()),
            Self::Text => f.write_str("configuration text"),
            Self::Env(name) => write!(f, "environment variable {name}"),
        }
    }
}

/// Why the configuration could not be loaded. The messages are complete on their own (the
/// underlying errors are not also chained as `source`, which `anyhow` would print twice).
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read configuration file {}: {error}", path.display())]
    Read {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("{origin} is not valid TOML: {error}")]
    Parse {
        origin: Origin,
        /// Boxed: the error carries the offending text and would make every `Result` large.
        error: Box<toml::de::Error>,
    },
    #[error("environment variable {name} names no configuration key")]
    EnvKey { name: String },
    /// A value of the wrong type or out of range, or an unknown key; `key` is its full dotted
    /// name (`engine.max_ai_replies_per_ticket`, `responder.faq[0].answer`).
    #[error("invalid configuration: {origin}: {key}: {message}")]
    Invalid {
        key: String,
        origin: Origin,
        message: String,
    },
}

impl Settings {
    /// Load `path`, then apply the process environment's overrides.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        Self::load_with_env(path, std::env::vars())
    }

    /// Load `path`, then apply the given `(name, value)` overrides (those with the prefix).
    pub fn load_with_env(
        path: &Path,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|error| ConfigError::Read {
            path: path.to_owned(),
            error,
        })?;
        Self::parse(&text, Origin::File(path.to_owned()), env)
    }

    /// Parse TOML text, then apply the overrides.
    pub fn parse_with_env(
        text: &str,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        Self::parse(text, Origin::Text, env)
    }

    /// Parse `text` (from `file`), lay the overrides over it, and deserialise the result once,
    /// tracking the path so that a rejected value is named by its dotted key and its origin.
    fn parse(
        text: &str,
        file: Origin,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let mut root: toml::Table = toml::from_str(text).map_err(|error| ConfigError::Parse {
            origin: file.clone(),
            error: Box::new(error),
        })?;
        let mut sources = Sources {
            file,
            overrides: Vec::new(),
        };
        for (name, value) in env {
            if let Some(key) = name.strip_prefix(ENV_PREFIX) {
                let key = apply_override(&mut root, key, &value)
                    .ok_or_else(|| ConfigError::EnvKey { name: name.clone() })?;
                sources.overrides.push((key, name));
            }
        }
        let warnings = sources.rename_deprecated_keys(&mut root)?;
        let mut settings: Settings = serde_path_to_error::deserialize(toml::Value::Table(root))
            .map_err(|e| {
                let key = e.path().to_string();
                sources.invalid(key, e.into_inner().message())
            })?;
        // `kind = "openai"` alone is enough: the section's keys have defaults like every other.
        if settings.responder.kind == ResponderKind::Openai {
            settings
                .responder
                .openai
                .get_or_insert_with(OpenAiSettings::default);
        }
        settings.validate(&sources)?;
        settings.warnings = warnings;
        Ok(settings)
    }

    fn validate(&self, sources: &Sources) -> Result<(), ConfigError> {
        let invalid = |key: &str, message: &str| Err(sources.invalid(key.into(), message));
        if self.listen_addr().is_err() {
            return invalid("server.listen", "must be an address like 127.0.0.1:8080");
        }
        if !(self.freshdesk.rate_limit_share > 0.0 && self.freshdesk.rate_limit_share <= 1.0) {
            return invalid("freshdesk.rate_limit_share", "must be in (0, 1]");
        }
        if self.freshdesk.request_timeout_ms == 0 {
            return invalid("freshdesk.request_timeout_ms", "must be positive");
        }
        if self.self_test.wait_secs == 0 {
            return invalid("self_test.wait_secs", "must be positive");
        }
        if self.storage.backend == StorageBackend::Postgres {
            if self.storage.encryption_key.expose_secret().is_empty() {
                return invalid(
                    "storage.encryption_key",
                    "must be set with backend = \"postgres\": every node needs the same key \
                     (a generated key file would differ per node)",
                );
            }
            if self.storage.postgres.max_connections == 0 {
                return invalid("storage.postgres.max_connections", "must be positive");
            }
            if self.storage.postgres.statement_timeout_ms == 0 {
                return invalid("storage.postgres.statement_timeout_ms", "must be positive");
            }
        }
        let node_id = &self.cluster.node_id;
        if node_id.len() > MAX_NODE_ID
            || !node_id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.:".contains(c))
        {
            return invalid(
                "cluster.node_id",
                "must be at most 64 letters, digits or -_.: (empty: generated)",
            );
        }
        if !(1..=65_536).contains(&self.cluster.shards) {
            return invalid("cluster.shards", "must be between 1 and 65536");
        }
        if Duration::from_secs(self.cluster.lease_ttl_secs) <= self.lease_write_margin() {
            return invalid(
                "cluster.lease_ttl_secs",
                &format!(
                    "must be longer than freshdesk.request_timeout_ms + 1 s ({} ms): a node \
                     stops writing to Freshdesk that long before its lease can expire",
                    self.lease_write_margin().as_millis()
                ),
            );
        }
        Ok(())
    }

    /// How long before its lease can expire a node stops writing to Freshdesk, and how long
    /// a node waits before working on a shard taken over from an expired lease: the
    /// Freshdesk request timeout plus `LEASE_WRITE_MARGIN`.
    pub fn lease_write_margin(&self) -> Duration {
        Duration::from_millis(self.freshdesk.request_timeout_ms) + LEASE_WRITE_MARGIN
    }

    /// The parsed listen address.
    pub fn listen_addr(&self) -> Result<SocketAddr, std::net::AddrParseError> {
        self.server.listen.parse()
    }
}

/// The file and the overrides applied to it, to name where a rejected value came from.
struct Sources {
    file: Origin,
    /// `(dotted key, variable name)` in the order applied.
    overrides: Vec<(String, String)>,
}

impl Sources {
    /// Move each deprecated key of `root` to its new name and return one warning per
    /// deprecated key found, naming both keys and where the old one came from. When both are
    /// set the new one wins, except that an environment variable still overrides the file
    /// under either name (the layers keep their order).
    fn rename_deprecated_keys(&self, root: &mut toml::Table) -> Result<Vec<String>, ConfigError> {
        let mut warnings = Vec::new();
        for (old, new) in RENAMED_KEYS {
            let (section, old_key) = old.split_once('.').expect("a dotted key");
            let new_key = new.split_once('.').map_or(new, |(_, key)| key);
            let Some(table) = root.get_mut(section).and_then(toml::Value::as_table_mut) else {
                continue;
            };
            let Some(value) = table.remove(old_key) else {
                continue;
            };
            if value.as_integer().is_none_or(|n| n < 0) {
                return Err(self.invalid(old.into(), "must be a whole number of seconds"));
            }
            let origin = self.origin(old);
            let new_origin = self.origin(new);
            let env_over_file =
                matches!(origin, Origin::Env(_)) && !matches!(new_origin, Origin::Env(_));
            if table.contains_key(new_key) && !env_over_file {
                warnings.push(format!(
                    "configuration key {old} ({origin}) is deprecated and ignored: {new} is \
                     also set and wins; remove {old}"
                ));
            } else if table.contains_key(new_key) {
                table.insert(new_key.to_string(), value);
                warnings.push(format!(
                    "configuration key {old} ({origin}) is deprecated: rename it to {new}; as \
                     an environment override it still wins over {new} of the {new_origin}"
                ));
            } else {
                table.insert(new_key.to_string(), value);
                warnings.push(format!(
                    "configuration key {old} ({origin}) is deprecated: rename it to {new} (its \
                     value is used as {new})"
                ));
            }
        }
        Ok(warnings)
    }

    /// Where `key` was set: the last variable that set it, else the file.
    fn origin(&self, key: &str) -> Origin {
        self.overrides
            .iter()
            .rev()
            .find(|(set, _)| set == key)
            .map_or_else(|| self.file.clone(), |(_, name)| Origin::Env(name.clone()))
    }

    /// The error for `key`, blamed on the variable that set it, a table holding it, or a key
    /// inside it (an override can create an unknown section); otherwise on the file. The last
    /// such variable is named, as the last one applied is the one that took effect.
    fn invalid(&self, key: String, message: &str) -> ConfigError {
        let within = |inner: &str, outer: &str| {
            inner
                .strip_prefix(outer)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with(['.', '[']))
        };
        let origin = self
            .overrides
            .iter()
            .rev()
            .find(|(set, _)| within(&key, set) || within(set, &key))
            .map_or_else(|| self.file.clone(), |(_, name)| Origin::Env(name.clone()));
        ConfigError::Invalid {
            key,
            origin,
            message: message.to_string(),
        }
    }
}

/// Set `SECTION__KEY` (case-insensitive) inside `root`, creating the tables on the way (a
/// file may omit any section), and return its dotted name; `None` when a part of the name is
/// empty or a value that is not a table is in the way. The value is read as TOML when it
/// parses as a TOML value (numbers, booleans, arrays), otherwise taken as a string.
fn apply_override(root: &mut toml::Table, key: &str, raw: &str) -> Option<String> {
    let path: Vec<String> = key.split("__").map(|s| s.to_ascii_lowercase()).collect();
    if path.iter().any(String::is_empty) {
        return None;
    }
    let (last, parents) = path.split_last()?;
    let mut table = root;
    for part in parents {
        table = table
            .entry(part.clone())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()))
            .as_table_mut()?;
    }
    let value = toml::from_str::<toml::Table>(&format!("v = {raw}"))
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(raw.to_string()));
    table.insert(last.clone(), value);
    Some(path.join("."))
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    const EMBEDDED: &str = include_str!("../config.toml");

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn the_embedded_default_configuration_parses() {
        let s = Settings::parse_with_env(EMBEDDED, env(&[])).unwrap();
        assert_eq!(s.server.listen, "127.0.0.1:8080");
        assert_eq!(s.engine.max_ai_replies_per_ticket, 10);
        assert_eq!(s.freshdesk.allowed_domain_suffixes, vec![".freshdesk.com"]);
        assert_eq!(s.responder.faq.len(), 1);
        assert!(s.server.admin_token.expose_secret().is_empty());
        assert_eq!(s.console.session_ttl_minutes, 480);
    }

    #[test]
    fn the_console_session_lifetime_is_overridden_like_any_key() {
        let s = Settings::parse_with_env(
            EMBEDDED,
            env(&[("TICKETSYNC__CONSOLE__SESSION_TTL_MINUTES", "15")]),
        )
        .unwrap();
        assert_eq!(s.console.session_ttl_minutes, 15);
    }

    #[test]
    fn the_cluster_section_has_its_defaults_and_refuses_a_lease_shorter_than_the_write_margin() {
        let s = Settings::parse_with_env(EMBEDDED, env(&[])).unwrap();
        assert_eq!(s.cluster.node_id, "");
        assert_eq!(s.cluster.lease_ttl_secs, 15);
        assert_eq!(s.cluster.shards, 64);
        assert_eq!(s.lease_write_margin(), Duration::from_secs(11));
        let err = Settings::parse_with_env(
            EMBEDDED,
            env(&[("TICKETSYNC__CLUSTER__LEASE_TTL_SECS", "11")]),
        )
        .unwrap_err();
        let ConfigError::Invalid { key, message, .. } = &err else {
            panic!("{err}");
        };
        assert_eq!(key, "cluster.lease_ttl_secs");
        assert!(message.contains("11000 ms"), "{message}");
        let short = Settings::parse_with_env(
            EMBEDDED,
            env(&[
                ("TICKETSYNC__CLUSTER__LEASE_TTL_SECS", "3"),
                ("TICKETSYNC__FRESHDESK__REQUEST_TIMEOUT_MS", "1000"),
                ("TICKETSYNC__CLUSTER__NODE_ID", "node-a.1"),
            ]),
        )
        .unwrap();
        assert_eq!(short.cluster.lease_ttl_secs, 3);
        for (key, value) in [("NODE_ID", "two words"), ("SHARDS", "0")] {
            let name = format!("TICKETSYNC__CLUSTER__{key}");
            let err = Settings::parse_with_env(EMBEDDED, env(&[(&name, value)])).unwrap_err();
            assert!(
                err.to_string()
                    .contains(&format!("cluster.{}", key.to_lowercase())),
                "{err}"
            );
        }
    }

    #[test]
    fn the_postgres_backend_has_its_defaults_takes_overrides_and_needs_the_shared_key() {
        let s = Settings::parse_with_env(EMBEDDED, env(&[])).unwrap();
        assert_eq!(s.storage.backend, StorageBackend::Sled);
        assert_eq!(
            s.storage.postgres.url.expose_secret(),
            "postgres://127.0.0.1:5432/ticketsync"
        );
        assert_eq!(s.storage.postgres.max_connections, 16);
        assert_eq!(s.storage.postgres.statement_timeout_ms, 5000);
        let postgres = [
            ("TICKETSYNC__STORAGE__BACKEND", "postgres"),
            (
                "TICKETSYNC__STORAGE__POSTGRES__URL",
                "postgres://u:pw@db:5433/ts",
            ),
            ("TICKETSYNC__STORAGE__POSTGRES__MAX_CONNECTIONS", "4"),
        ];
        let err = Settings::parse_with_env(EMBEDDED, env(&postgres)).unwrap_err();
        let ConfigError::Invalid { key, .. } = &err else {
            panic!("{err}");
        };
        assert_eq!(key, "storage.encryption_key");
        let key = ("TICKETSYNC__STORAGE__ENCRYPTION_KEY", "AAAA");
        let s =
            Settings::parse_with_env(EMBEDDED, env(&[postgres[0], postgres[1], postgres[2], key]))
                .unwrap();
        assert_eq!(s.storage.backend, StorageBackend::Postgres);
        assert_eq!(
            s.storage.postgres.url.expose_secret(),
            "postgres://u:pw@db:5433/ts"
        );
        assert_eq!(s.storage.postgres.max_connections, 4);
        assert!(
            !format!("{s:?}").contains("pw@db"),
            "the URL's password shows in Debug"
        );
        for (var, dotted) in [
            ("TICKETSYNC__STORAGE__BACKEND", "storage.backend"),
            (
                "TICKETSYNC__STORAGE__POSTGRES__MAX_CONNECTIONS",
                "storage.postgres.max_connections",
            ),
            (
                "TICKETSYNC__STORAGE__POSTGRES__STATEMENT_TIMEOUT_MS",
                "storage.postgres.statement_timeout_ms",
            ),
        ] {
            let value = if var.ends_with("BACKEND") {
                "mysql"
            } else {
                "0"
            };
            let err = Settings::parse_with_env(EMBEDDED, env(&[postgres[0], key, (var, value)]))
                .unwrap_err();
            assert!(err.to_string().contains(dotted), "{var}: {err}");
        }
    }

    #[test]
    fn environment_variables_override_keys_with_typed_values() {
        let s = Settings::parse_with_env(
            EMBEDDED,
            env(&[
                ("TICKETSYNC__SERVER__LISTEN", "0.0.0.0:9090"),
                ("TICKETSYNC__ENGINE__MAX_AI_REPLIES_PER_TICKET", "3"),
                (
                    "TICKETSYNC__FRESHDESK__INSECURE_HOSTS",
                    "[\"127.0.0.1:9000\"]",
                ),
                ("TICKETSYNC__SERVER__ADMIN_TOKEN", "s3cret"),
                ("UNRELATED", "x"),
            ]),
        )
        .unwrap();
        assert_eq!(s.server.listen, "0.0.0.0:9090");
        assert_eq!(s.engine.max_ai_replies_per_ticket, 3);
        assert_eq!(s.freshdesk.insecure_hosts, vec!["127.0.0.1:9000"]);
        assert_eq!(s.server.admin_token.expose_secret(), "s3cret");
    }

    #[test]
    fn an_override_for_an_unknown_section_is_an_error_naming_the_variable() {
        let err =
            Settings::parse_with_env(EMBEDDED, env(&[("TICKETSYNC__NOPE__KEY", "1")])).unwrap_err();
        let ConfigError::Invalid { key, origin, .. } = &err else {
            panic!("{err}");
        };
        assert_eq!(key, "nope");
        assert_eq!(origin, &Origin::Env("TICKETSYNC__NOPE__KEY".into()));
    }

    #[test]
    fn an_override_with_an_empty_part_or_below_a_plain_value_names_no_key() {
        for name in ["TICKETSYNC__SERVER__", "TICKETSYNC__SERVER__LISTEN__PORT"] {
            let err = Settings::parse_with_env(EMBEDDED, env(&[(name, "1")])).unwrap_err();
            assert!(matches!(err, ConfigError::EnvKey { .. }), "{name}: {err}");
        }
    }

    #[test]
    fn the_old_name_of_the_sweep_interval_is_read_with_a_warning_naming_both_keys() {
        let s =
            Settings::parse_with_env("[engine]\nreconcile_interval_secs = 42\n", env(&[])).unwrap();
        assert_eq!(s.engine.sweep_interval_secs, 42);
        assert_eq!(s.warnings.len(), 1, "{:?}", s.warnings);
        assert!(s.warnings[0].contains("engine.reconcile_interval_secs"));
        assert!(s.warnings[0].contains("engine.sweep_interval_secs"));
        assert!(s.warnings[0].contains("configuration text"));

        // An environment variable still overrides the file under the old name.
        let s = Settings::parse_with_env(
            EMBEDDED,
            env(&[("TICKETSYNC__ENGINE__RECONCILE_INTERVAL_SECS", "7")]),
        )
        .unwrap();
        assert_eq!(s.engine.sweep_interval_secs, 7);
        assert!(
            s.warnings[0].contains("TICKETSYNC__ENGINE__RECONCILE_INTERVAL_SECS"),
            "{:?}",
            s.warnings
        );

        let s = Settings::parse_with_env(EMBEDDED, env(&[])).unwrap();
        assert!(s.warnings.is_empty(), "{:?}", s.warnings);
    }

    #[test]
    fn when_both_names_of_the_sweep_interval_are_set_the_new_one_wins_and_the_warning_says_so() {
        let text = "[engine]\nreconcile_interval_secs = 42\nsweep_interval_secs = 9\n";
        let s = Settings::parse_with_env(text, env(&[])).unwrap();
        assert_eq!(s.engine.sweep_interval_secs, 9);
        assert_eq!(s.warnings.len(), 1, "{:?}", s.warnings);
        assert!(s.warnings[0].contains("engine.sweep_interval_secs is also set and wins"));
        assert!(s.warnings[0].contains("engine.reconcile_interval_secs"));

        let s = Settings::parse_with_env(
            EMBEDDED,
            env(&[
                ("TICKETSYNC__ENGINE__RECONCILE_INTERVAL_SECS", "7"),
                ("TICKETSYNC__ENGINE__SWEEP_INTERVAL_SECS", "8"),
            ]),
        )
        .unwrap();
        assert_eq!(s.engine.sweep_interval_secs, 8);
        assert!(
            s.warnings[0].contains("also set and wins"),
            "{:?}",
            s.warnings
        );
    }

    #[test]
    fn a_wrong_value_under_the_old_name_is_reported_under_the_old_name() {
        let (message, path) = load_error("[engine]\nreconcile_interval_secs = \"soon\"\n", &[]);
        assert!(
            message.contains(&format!("file {path}: engine.reconcile_interval_secs:")),
            "{message}"
        );
    }

    /// `text` written to a `config.toml` in a fresh directory, and loaded with `overrides`.
    fn load(text: &str, overrides: &[(&str, &str)]) -> (Result<Settings, ConfigError>, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        std::fs::write(&path, text).unwrap();
        (Settings::load_with_env(&path, env(overrides)), path)
    }

    /// The error of loading `text` with `overrides`, as printed.
    fn load_error(text: &str, overrides: &[(&str, &str)]) -> (String, String) {
        let (result, path) = load(text, overrides);
        let err = result.expect_err("the configuration must be rejected");
        (err.to_string(), path.display().to_string())
    }

    #[test]
    fn empty_server_and_storage_sections_take_the_documented_default_of_every_key() {
        let minimal = Settings::parse_with_env("[server]\n[storage]\n", env(&[])).unwrap();
        let mut documented = Settings::parse_with_env(EMBEDDED, env(&[])).unwrap();
        // config.toml's FAQ entry is an example (no FAQ answers by default), and its
        // [responder.openai] section is used only with `kind = "openai"`.
        documented.responder.faq.clear();
        documented.responder.openai = None;
        assert_eq!(format!("{minimal:?}"), format!("{documented:?}"));
        assert_eq!(minimal.server.listen, "127.0.0.1:8080");
        assert_eq!(minimal.server.public_url, "http://127.0.0.1:8080");
        assert_eq!(minimal.storage.path, PathBuf::from("./data"));
        assert_eq!(minimal.engine.max_ai_replies_per_ticket, 10);
        assert_eq!(minimal.engine.sweep_interval_secs, 300);
        assert_eq!(minimal.freshdesk.request_timeout_ms, 10_000);
        assert_eq!(minimal.freshdesk.rate_limit_share, 0.8);
        assert_eq!(minimal.responder.kind, ResponderKind::Builtin);
    }

    #[test]
    fn an_empty_file_is_the_documented_defaults() {
        let empty = Settings::parse_with_env("", env(&[])).unwrap();
        let minimal = Settings::parse_with_env("[server]\n[storage]\n", env(&[])).unwrap();
        assert_eq!(format!("{empty:?}"), format!("{minimal:?}"));
    }

    #[test]
    fn a_section_missing_one_key_takes_that_keys_default_and_keeps_the_others() {
        let s = Settings::parse_with_env(
            "[engine]\nmax_ai_replies_per_ticket = 4\nidle_passivate_secs = 60\n",
            env(&[]),
        )
        .unwrap();
        assert_eq!(s.engine.max_ai_replies_per_ticket, 4);
        assert_eq!(s.engine.idle_passivate_secs, 60);
        assert_eq!(s.engine.sweep_interval_secs, 300);
        assert_eq!(s.engine.max_live_actors, 20_000);
    }

    #[test]
    fn kind_openai_without_an_openai_section_takes_its_documented_defaults() {
        let s = Settings::parse_with_env("[responder]\nkind = \"openai\"\n", env(&[])).unwrap();
        let documented = Settings::parse_with_env(EMBEDDED, env(&[])).unwrap();
        assert_eq!(
            format!("{:?}", s.responder.openai),
            format!("{:?}", documented.responder.openai)
        );
    }

    #[test]
    fn an_override_fills_a_section_the_file_omits() {
        let s = Settings::parse_with_env(
            "[server]\n[storage]\n",
            env(&[("TICKETSYNC__ENGINE__MAX_AI_REPLIES_PER_TICKET", "3")]),
        )
        .unwrap();
        assert_eq!(s.engine.max_ai_replies_per_ticket, 3);
        assert_eq!(s.engine.idle_passivate_secs, 300);
    }

    #[test]
    fn a_wrong_type_in_the_file_names_the_dotted_key_and_the_file() {
        // An override of another key of the same section is not blamed.
        let other = "TICKETSYNC__ENGINE__IDLE_PASSIVATE_SECS";
        let (err, file) = load_error(
            "[engine]\nmax_ai_replies_per_ticket = \"ten\"\n",
            &[(other, "5")],
        );
        assert!(err.contains("engine.max_ai_replies_per_ticket"), "{err}");
        assert!(err.contains(&file), "{err}");
        assert!(err.contains("expected u32"), "{err}");
        assert!(!err.contains(other), "{err}");
    }

    #[test]
    fn a_wrong_type_inside_an_array_names_the_element() {
        let (err, file) = load_error("[[responder.faq]]\nkeywords = [\"a\"]\nanswer = 5\n", &[]);
        assert!(err.contains("responder.faq[0].answer"), "{err}");
        assert!(err.contains(&file), "{err}");
    }

    #[test]
    fn an_out_of_range_value_in_the_file_names_the_dotted_key_and_the_file() {
        let (err, file) = load_error("[freshdesk]\nrate_limit_share = 2.0\n", &[]);
        assert!(err.contains("freshdesk.rate_limit_share"), "{err}");
        assert!(err.contains(&file), "{err}");
    }

    #[test]
    fn a_wrong_override_names_the_variable_and_the_dotted_key_not_the_file() {
        let var = "TICKETSYNC__ENGINE__MAX_AI_REPLIES_PER_TICKET";
        let (err, file) = load_error("[server]\n[storage]\n", &[(var, "ten")]);
        assert!(err.contains(var), "{err}");
        assert!(err.contains("engine.max_ai_replies_per_ticket"), "{err}");
        assert!(!err.contains(&file), "{err}");

        let var = "TICKETSYNC__FRESHDESK__RATE_LIMIT_SHARE";
        let (err, _) = load_error("", &[(var, "2")]);
        assert!(err.contains(var), "{err}");
        assert!(err.contains("freshdesk.rate_limit_share"), "{err}");
    }

    #[test]
    fn a_toml_syntax_error_names_the_file() {
        let (err, file) = load_error("[server\n", &[]);
        assert!(err.contains(&file), "{err}");
        assert!(err.contains("line 1"), "{err}");
    }

    #[test]
    fn an_unknown_key_is_rejected_with_its_full_name_and_origin() {
        let (err, file) = load_error("[server]\nlistn = \"x\"\n", &[]);
        assert!(err.contains("server.listn"), "{err}");
        assert!(err.contains(&file), "{err}");

        let (err, file) = load_error("", &[("TICKETSYNC__SERVER__LISTN", "x")]);
        assert!(err.contains("server.listn"), "{err}");
        assert!(err.contains("TICKETSYNC__SERVER__LISTN"), "{err}");
        assert!(!err.contains(&file), "{err}");

        let (err, _) = load_error("[responder.openai]\nmodle = \"x\"\n", &[]);
        assert!(err.contains("responder.openai.modle"), "{err}");
    }

    #[test]
    fn secrets_do_not_show_in_debug_output() {
        let s = Settings::parse_with_env(
            EMBEDDED,
            env(&[("TICKETSYNC__SERVER__ADMIN_TOKEN", "very-secret-token")]),
        )
        .unwrap();
        assert!(!format!("{s:?}").contains("very-secret-token"));
    }
}
