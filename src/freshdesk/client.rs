//! The reqwest implementation of the engine's [`FreshdeskApi`] port.
//!
//! One [`FreshdeskClient`] speaks to one Freshdesk account as that org's AI agent. The
//! underlying `reqwest::Client` (connection pool, TLS, timeouts) is shared by every org and
//! built once with [`build_http_client`]; a `FreshdeskClient` is cheap to create and clone.
//!
//! Every URL comes from [`FreshdeskDomain::api_url`], and redirects are never followed, so the
//! client cannot be steered to a host the [`DomainPolicy`](super::DomainPolicy) did not accept.
//!
//! Each HTTP attempt is reported once to an optional [`CallObserver`] (metrics, the org's rate
//! budget) with its endpoint label, outcome, rate-limit headers and duration. The client itself
//! never retries: whether and when to retry is the caller's decision
//! ([`FreshdeskError::is_transient`], `RateLimited::retry_after`).
//!
//! The API key is sent as Basic auth (`api_key:X`) and is never logged, formatted or put in an
//! error.

use super::domain::FreshdeskDomain;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use reqwest::header::{HeaderMap, ACCEPT, LINK, RETRY_AFTER};
use reqwest::{Method, StatusCode};
use secrecy::{ExposeSecret, SecretString};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::error::Error as _;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};
use ticketsync_actors::freshdesk::{
    Agent, Api, Conversation, FieldError, FreshdeskApi, FreshdeskError, FreshdeskResult, Group,
    Page, RateLimit, Role, Ticket, TicketField, TicketListQuery, TicketUpdate,
};
use ticketsync_actors::ids::{AgentId, GroupId, TicketId};

/// The wait assumed when a 429 carries no usable `Retry-After` header.
pub const DEFAULT_RETRY_AFTER: Duration = Duration::from_secs(60);
/// The longest time spent establishing a connection (DNS, TCP, TLS), whatever the request
/// timeout.
const MAX_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// The largest response body read; a bigger one is an [`FreshdeskError::InvalidResponse`]. A
/// full page of 100 tickets with long HTML descriptions stays far below it.
const MAX_BODY_BYTES: usize = 32 * 1024 * 1024;
/// Error messages copied from Freshdesk bodies or transport errors are cut to this many
/// characters, so a misbehaving server cannot flood logs and API responses.
const MAX_MESSAGE_CHARS: usize = 300;
/// `per_page` for the lists the engine reads completely (agents, conversations).
const FULL_PAGE: u32 = 100;

/// Build the `reqwest::Client` shared by every org's [`FreshdeskClient`].
///
/// rustls, a `ticketsync/<version>` user agent, `timeout` for each whole request (connect, send,
/// and reading the response), a connect timeout of at most five seconds, and no redirects: a
/// redirect would be a way around the domain guard, so a 3xx ends the call as
/// [`FreshdeskError::UnexpectedStatus`].
///
/// # Panics
///
/// If the TLS backend cannot be initialised, which is an environment failure at startup, not a
/// runtime condition.
pub fn build_http_client(timeout: Duration) -> reqwest::Client {
    reqwest::Client::builder()
        .use_rustls_tls()
        .user_agent(concat!("ticketsync/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(timeout.min(MAX_CONNECT_TIMEOUT))
        .timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("the rustls HTTP client can be built")
}

/// Receives one [`CallRecord`] per HTTP attempt, after the response (or failure) is complete.
///
/// Called on the task that made the call, so implementations must be quick and must not block
/// (update counters, a rate budget). Any `Fn(&CallRecord) + Send + Sync` closure is an observer.
pub trait CallObserver: Send + Sync {
    /// Record one finished attempt.
    fn observe(&self, call: &CallRecord);
}

impl<F> CallObserver for F
where
    F: Fn(&CallRecord) + Send + Sync,
{
    fn observe(&self, call: &CallRecord) {
        self(call)
    }
}

/// What one HTTP attempt to Freshdesk did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CallRecord {
    /// A stable label of the API operation: `tickets.get`, `tickets.create`, `tickets.update`, `tickets.list`,
    /// `conversations.list`, `tickets.reply`, `tickets.note`, `agents.me`, `agents.list`,
    /// `agents.get`, `roles.list`, `groups.get`, `groups.list`, `ticket_fields.list`.
    pub endpoint: &'static str,
    /// The HTTP method: `GET`, `PUT` or `POST`.
    pub method: &'static str,
    /// How the attempt ended.
    pub outcome: CallOutcome,
    /// The `X-RateLimit-*` headers of the response, when it had all three.
    pub rate_limit: Option<RateLimit>,
    /// For a 429, the wait it asked for (`Retry-After`, or [`DEFAULT_RETRY_AFTER`] when absent);
    /// for any other response, its `Retry-After` header if it had one.
    pub retry_after: Option<Duration>,
    /// From sending the request to the end of the response body (or the failure).
    pub elapsed: Duration,
}

/// How one HTTP attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallOutcome {
    /// A response with this status arrived (whatever the status, and even if its body was then
    /// unusable).
    Status(u16),
    /// The request timeout elapsed.
    Timeout,
    /// No response: DNS, connect or TLS failure, or the connection broke.
    Unreachable,
}

/// The Freshdesk API of one account, authenticated with the org's AI-agent API key.
#[derive(Clone)]
pub struct FreshdeskClient {
    http: reqwest::Client,
    domain: FreshdeskDomain,
    api_key: SecretString,
    observer: Option<Arc<dyn CallObserver>>,
}

impl fmt::Debug for FreshdeskClient {
    /// Shows the domain only: never the key.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FreshdeskClient")
            .field("domain", &self.domain.host())
            .finish_non_exhaustive()
    }
}

impl FreshdeskClient {
    /// A client for `domain` using the shared `http` client (see [`build_http_client`]), the
    /// AI agent's `api_key`, and an optional observer told about every attempt.
    pub fn new(
        http: reqwest::Client,
        domain: FreshdeskDomain,
        api_key: SecretString,
        observer: Option<Arc<dyn CallObserver>>,
    ) -> Self {
        Self {
            http,
            domain,
            api_key,
            observer,
        }
    }

    /// The Freshdesk host this client speaks to.
    pub fn domain(&self) -> &FreshdeskDomain {
        &self.domain
    }

    /// `POST /tickets`: create a ticket (the setup self-test's test ticket; the engine never
    /// creates tickets, so this is not part of its port).
    pub async fn create_ticket(&self, ticket: &NewTicket) -> FreshdeskResult<Ticket> {
        self.send_json("tickets.create", Verb::Post, "/tickets", ticket)
            .await
    }

    /// `GET` a single JSON value.
    async fn get<T: DeserializeOwned>(
        &self,
        endpoint: &'static str,
        path: &str,
    ) -> FreshdeskResult<T> {
        let received = self.execute(endpoint, Verb::Get, path, None::<&()>).await?;
        Ok(Api {
            value: decode(&received.body)?,
            rate_limit: received.rate_limit,
        })
    }

    /// `GET` one page of a list, with `has_next` from the `Link` header.
    async fn get_page<T: DeserializeOwned>(
        &self,
        endpoint: &'static str,
        path: &str,
    ) -> FreshdeskResult<Page<T>> {
        let received = self.execute(endpoint, Verb::Get, path, None::<&()>).await?;
        Ok(Api {
            value: Page {
                items: decode(&received.body)?,
                has_next: received.has_next,
            },
            rate_limit: received.rate_limit,
        })
    }

    /// `PUT`/`POST` a JSON body and decode the JSON answer.
    async fn send_json<T: DeserializeOwned>(
        &self,
        endpoint: &'static str,
        verb: Verb,
        path: &str,
        body: &(impl Serialize + Sync),
    ) -> FreshdeskResult<T> {
        let received = self.execute(endpoint, verb, path, Some(body)).await?;
        Ok(Api {
            value: decode(&received.body)?,
            rate_limit: received.rate_limit,
        })
    }

    /// Make one HTTP attempt, report it to the observer, and turn a non-2xx status into its
    /// [`FreshdeskError`].
    async fn execute(
        &self,
        endpoint: &'static str,
        verb: Verb,
        path: &str,
        body: Option<&(impl Serialize + Sync)>,
    ) -> Result<Received, FreshdeskError> {
        let mut request = self
            .http
            .request(verb.method(), self.domain.api_url(path))
            .basic_auth(self.api_key.expose_secret(), Some("X"))
            .header(ACCEPT, "application/json");
        if let Some(body) = body {
            request = request.json(body);
        }

        let started = Instant::now();
        let response = match request.send().await {
            Ok(response) => response,
            Err(err) => {
                let error = transport_error(&err);
                self.report(
                    endpoint,
                    verb,
                    outcome_of(&error, None),
                    None,
                    None,
                    started,
                );
                return Err(error);
            }
        };
        let status = response.status();
        let headers = response.headers();
        let rate_limit = rate_limit_from_headers(headers);
        let has_next = has_next_page(headers);
        let retry_after = headers
            .get_all(RETRY_AFTER)
            .iter()
            .find_map(|value| parse_retry_after(value.to_str().ok()?, Utc::now()));
        let retry_after = if status == StatusCode::TOO_MANY_REQUESTS {
            Some(retry_after.unwrap_or(DEFAULT_RETRY_AFTER))
        } else {
            retry_after
        };

        let body = read_body(response).await;
        let outcome = match &body {
            Ok(_) => CallOutcome::Status(status.as_u16()),
            Err(error) => outcome_of(error, Some(status)),
        };
        self.report(endpoint, verb, outcome, rate_limit, retry_after, started);

        let body = body?;
        if let Some(error) = error_for_status(status.as_u16(), &body, retry_after) {
            return Err(error);
        }
        Ok(Received {
            body,
            rate_limit,
            has_next,
        })
    }

    /// Tell the observer and the trace about one finished attempt.
    fn report(
        &self,
        endpoint: &'static str,
        verb: Verb,
        outcome: CallOutcome,
        rate_limit: Option<RateLimit>,
        retry_after: Option<Duration>,
        started: Instant,
    ) {
        let record = CallRecord {
            endpoint,
            method: verb.as_str(),
            outcome,
            rate_limit,
            retry_after,
            elapsed: started.elapsed(),
        };
        tracing::debug!(
            domain = %self.domain,
            endpoint,
            method = record.method,
            outcome = ?record.outcome,
            remaining = record.rate_limit.map(|limit| limit.remaining),
            elapsed_ms = u64::try_from(record.elapsed.as_millis()).unwrap_or(u64::MAX),
            "freshdesk call"
        );
        if let Some(observer) = &self.observer {
            observer.observe(&record);
        }
    }
}

#[async_trait]
impl FreshdeskApi for FreshdeskClient {
    async fn me(&self) -> FreshdeskResult<Agent> {
        self.get("agents.me", "/agents/me").await
    }

    async fn roles(&self) -> FreshdeskResult<Vec<Role>> {
        self.get("roles.list", "/roles").await
    }

    async fn agents(&self, page: u32) -> FreshdeskResult<Page<Agent>> {
        let path = format!("/agents?per_page={FULL_PAGE}&page={}", page.max(1));
        self.get_page("agents.list", &path).await
    }

    async fn agent(&self, id: AgentId) -> FreshdeskResult<Agent> {
        self.get("agents.get", &format!("/agents/{id}")).await
    }

    async fn group(&self, id: GroupId) -> FreshdeskResult<Group> {
        self.get("groups.get", &format!("/groups/{id}")).await
    }

    async fn groups(&self, page: u32) -> FreshdeskResult<Page<Group>> {
        let path = format!("/groups?per_page={FULL_PAGE}&page={}", page.max(1));
        self.get_page("groups.list", &path).await
    }

    async fn ticket_fields(&self) -> FreshdeskResult<Vec<TicketField>> {
        self.get("ticket_fields.list", "/ticket_fields").await
    }

    async fn ticket(&self, id: TicketId) -> FreshdeskResult<Ticket> {
        self.get("tickets.get", &format!("/tickets/{id}")).await
    }

    async fn update_ticket(&self, id: TicketId, update: &TicketUpdate) -> FreshdeskResult<Ticket> {
        self.send_json(
            "tickets.update",
            Verb::Put,
            &format!("/tickets/{id}"),
            update,
        )
        .await
    }

    async fn tickets(&self, query: &TicketListQuery) -> FreshdeskResult<Page<Ticket>> {
        self.get_page("tickets.list", &tickets_path(query)).await
    }

    async fn conversations(&self, id: TicketId, page: u32) -> FreshdeskResult<Page<Conversation>> {
        let path = format!(
            "/tickets/{id}/conversations?per_page={FULL_PAGE}&page={}",
            page.max(1)
        );
        self.get_page("conversations.list", &path).await
    }

    async fn reply(&self, id: TicketId, body_html: &str) -> FreshdeskResult<Conversation> {
        let body = serde_json::json!({ "body": body_html });
        self.send_json(
            "tickets.reply",
            Verb::Post,
            &format!("/tickets/{id}/reply"),
            &body,
        )
        .await
    }

    async fn note(
        &self,
        id: TicketId,
        body_html: &str,
        private: bool,
    ) -> FreshdeskResult<Conversation> {
        let body = serde_json::json!({ "body": body_html, "private": private });
        self.send_json(
            "tickets.note",
            Verb::Post,
            &format!("/tickets/{id}/notes"),
            &body,
        )
        .await
    }
}

/// The body of `POST /tickets`: a ticket from a requester identified by email (Freshdesk
/// creates the contact when none has that email).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NewTicket {
    pub email: String,
    pub subject: String,
    /// HTML.
    pub description: String,
    /// 2 Open.
    pub status: u8,
    /// 1 Low … 4 Urgent.
    pub priority: u8,
    pub tags: Vec<String>,
}

/// The methods the client uses, with their static labels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verb {
    Get,
    Put,
    Post,
}

impl Verb {
    fn as_str(self) -> &'static str {
        match self {
            Self::Get => "GET",
            Self::Put => "PUT",
            Self::Post => "POST",
        }
    }

    fn method(self) -> Method {
        match self {
            Self::Get => Method::GET,
            Self::Put => Method::PUT,
            Self::Post => Method::POST,
        }
    }
}

/// A 2xx response, read completely.
struct Received {
    body: Vec<u8>,
    rate_limit: Option<RateLimit>,
    has_next: bool,
}

/// `GET /tickets` path and query. Oldest change first so a sweep can resume from the last
/// `updated_at` it saw; `per_page` is kept within Freshdesk's 1..=100 and `page` at least 1.
fn tickets_path(query: &TicketListQuery) -> String {
    let mut path = String::from("/tickets?");
    if let Some(since) = query.updated_since {
        // Only unreserved characters and `:` (allowed in a query), so nothing needs escaping.
        path.push_str(&format!(
            "updated_since={}&",
            since.format("%Y-%m-%dT%H:%M:%SZ")
        ));
    }
    path.push_str(&format!(
        "order_by=updated_at&order_type=asc&per_page={}&page={}",
        query.per_page.clamp(1, 100),
        query.page.max(1)
    ));
    path
}

/// Decode a 2xx JSON body. The error carries serde's message, never the body.
fn decode<T: DeserializeOwned>(body: &[u8]) -> Result<T, FreshdeskError> {
    serde_json::from_slice(body).map_err(|err| FreshdeskError::InvalidResponse(err.to_string()))
}

/// Read the whole response body, refusing one larger than [`MAX_BODY_BYTES`].
async fn read_body(mut response: reqwest::Response) -> Result<Vec<u8>, FreshdeskError> {
    let too_large = || {
        FreshdeskError::InvalidResponse(format!(
            "response body larger than {} MiB",
            MAX_BODY_BYTES / (1024 * 1024)
        ))
    };
    if response
        .content_length()
        .is_some_and(|len| len > MAX_BODY_BYTES as u64)
    {
        return Err(too_large());
    }
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|err| transport_error(&err))?
    {
        if body.len() + chunk.len() > MAX_BODY_BYTES {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// The observer outcome of a failed attempt: `status` is set when a response head arrived.
fn outcome_of(error: &FreshdeskError, status: Option<StatusCode>) -> CallOutcome {
    match (error, status) {
        (FreshdeskError::Timeout, _) => CallOutcome::Timeout,
        (FreshdeskError::Unreachable(_), _) => CallOutcome::Unreachable,
        (_, Some(status)) => CallOutcome::Status(status.as_u16()),
        (_, None) => CallOutcome::Unreachable,
    }
}

/// Classify a reqwest failure: the request timeout, or anything else that left us without a
/// (complete) response. The message names the kind of failure and its underlying causes; it
/// never contains the URL or the request headers.
fn transport_error(err: &reqwest::Error) -> FreshdeskError {
    if err.is_timeout() || source_chain_has_timeout(err) {
        return FreshdeskError::Timeout;
    }
    let kind = if err.is_connect() {
        "could not connect"
    } else if err.is_body() || err.is_decode() {
        "the connection broke while reading the response"
    } else if err.is_builder() {
        "the request could not be built"
    } else {
        "the request failed"
    };
    // The top-level reqwest message repeats the URL; its causes (hyper, io, rustls) do not.
    // hyper-util's "client error (Connect)" wrapper adds nothing for an admin.
    let mut causes: Vec<String> = Vec::new();
    let mut source = err.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !text.starts_with("client error (") && !causes.contains(&text) {
            causes.push(text);
        }
        source = cause.source();
    }
    let message = if causes.is_empty() {
        kind.to_string()
    } else {
        format!("{kind}: {}", causes.join(": "))
    };
    FreshdeskError::Unreachable(truncate(&message))
}

/// Whether an I/O timeout hides in the cause chain (reqwest reports some timeouts that way).
fn source_chain_has_timeout(err: &reqwest::Error) -> bool {
    let mut source = err.source();
    while let Some(cause) = source {
        if cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::TimedOut)
        {
            return true;
        }
        source = cause.source();
    }
    false
}

/// The error a non-2xx response stands for, or `None` for a 2xx. `retry_after` is the wait the
/// response asked for (used for 429, [`DEFAULT_RETRY_AFTER`] when absent).
fn error_for_status(
    status: u16,
    body: &[u8],
    retry_after: Option<Duration>,
) -> Option<FreshdeskError> {
    let error = match status {
        200..=299 => return None,
        400 => FreshdeskError::Validation(validation_errors(body)),
        401 => FreshdeskError::Unauthorized,
        403 => {
            let body: ErrorBody = serde_json::from_slice(body).unwrap_or_default();
            FreshdeskError::Forbidden {
                code: non_blank(body.code).unwrap_or_else(|| "access_denied".to_string()),
                message: non_blank(body.message).unwrap_or_else(|| "no details given".to_string()),
            }
        }
        404 => FreshdeskError::NotFound,
        429 => FreshdeskError::RateLimited {
            retry_after: retry_after.unwrap_or(DEFAULT_RETRY_AFTER),
        },
        500..=599 => FreshdeskError::Server { status },
        _ => FreshdeskError::UnexpectedStatus { status },
    };
    Some(error)
}

/// The field errors of a 400 body, or none when the body is not the documented
/// `{"description": …, "errors": [{"field", "message", "code"}]}`.
fn validation_errors(body: &[u8]) -> Vec<FieldError> {
    #[derive(Deserialize)]
    struct ValidationBody {
        #[serde(default)]
        errors: Vec<FieldError>,
    }
    serde_json::from_slice::<ValidationBody>(body)
        .map(|body| {
            body.errors
                .into_iter()
                .map(|error| FieldError {
                    field: truncate(&error.field),
                    message: truncate(&error.message),
                    code: truncate(&error.code),
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Freshdesk's `{"code", "message"}` error body.
#[derive(Debug, Default, Deserialize)]
struct ErrorBody {
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    message: Option<String>,
}

fn non_blank(value: Option<String>) -> Option<String> {
    value
        .map(|value| truncate(value.trim()))
        .filter(|value| !value.is_empty())
}

/// Cut `text` to [`MAX_MESSAGE_CHARS`] characters, marking the cut.
fn truncate(text: &str) -> String {
    match text.char_indices().nth(MAX_MESSAGE_CHARS) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_string(),
    }
}

/// The three `X-RateLimit-*` headers, when all are present and numeric.
fn rate_limit_from_headers(headers: &HeaderMap) -> Option<RateLimit> {
    let number =
        |name: &str| -> Option<u32> { headers.get(name)?.to_str().ok()?.trim().parse().ok() };
    Some(RateLimit {
        total: number("x-ratelimit-total")?,
        remaining: number("x-ratelimit-remaining")?,
        used_current: number("x-ratelimit-used-currentrequest")?,
    })
}

/// Whether any `Link` header announces a next page.
fn has_next_page(headers: &HeaderMap) -> bool {
    headers
        .get_all(LINK)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .any(link_has_next)
}

/// Whether a `Link` header value (`<url>; rel="next", <url>; rel="prev"`) has a link whose
/// `rel` includes `next`. URLs are skipped as a whole, so a `rel=next` inside one is ignored.
fn link_has_next(value: &str) -> bool {
    let mut rest = value;
    while let Some(open) = rest.find('<') {
        let after_open = &rest[open + 1..];
        let Some(close) = after_open.find('>') else {
            return false;
        };
        let after_url = &after_open[close + 1..];
        let params_end = after_url.find('<').unwrap_or(after_url.len());
        let params = &after_url[..params_end];
        if params.split([';', ',']).any(is_rel_next) {
            return true;
        }
        rest = &after_url[params_end..];
    }
    false
}

/// Whether one link parameter is `rel=next` (quoted or not, possibly among other relations).
fn is_rel_next(param: &str) -> bool {
    let Some((name, value)) = param.split_once('=') else {
        return false;
    };
    name.trim().eq_ignore_ascii_case("rel")
        && value
            .trim()
            .trim_matches('"')
            .split_ascii_whitespace()
            .any(|relation| relation.eq_ignore_ascii_case("next"))
}

/// A `Retry-After` value: delay seconds (what Freshdesk sends) or an HTTP date.
fn parse_retry_after(value: &str, now: DateTime<Utc>) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = DateTime::parse_from_rfc2822(value).ok()?;
    Some(
        (at.with_timezone(&Utc) - now)
            .to_std()
            .unwrap_or(Duration::ZERO),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use reqwest::header::HeaderValue;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    #[test]
    fn link_with_rel_next_means_another_page() {
        assert!(link_has_next(
            r#"<https://acme.freshdesk.com/api/v2/tickets?page=2>; rel="next""#
        ));
        assert!(link_has_next(
            r#"<https://x/api/v2/a?page=1>; rel="prev", <https://x/api/v2/a?page=3>; rel="next""#
        ));
        assert!(link_has_next("<https://x/a?page=2>;rel=next"));
        assert!(link_has_next(
            r#"<https://x/a?page=2>; title="t"; REL="next last""#
        ));
    }

    #[test]
    fn link_without_rel_next_means_last_page() {
        assert!(!link_has_next(""));
        assert!(!link_has_next(r#"<https://x/a?page=1>; rel="prev""#));
        assert!(!link_has_next(r#"<https://x/a?rel="next">; rel="prev""#));
        assert!(!link_has_next(r#"<https://x/a?page=2>; rel="nextpage""#));
        assert!(!link_has_next(r#"<https://x/a?page=2 rel="next""#));
    }

    #[test]
    fn has_next_page_reads_every_link_header() {
        assert!(!has_next_page(&HeaderMap::new()));
        let map = headers(&[
            ("link", r#"<https://x/a?page=1>; rel="prev""#),
            ("link", r#"<https://x/a?page=3>; rel="next""#),
        ]);
        assert!(has_next_page(&map));
    }

    #[test]
    fn rate_limit_needs_all_three_headers() {
        let map = headers(&[
            ("X-RateLimit-Total", "200"),
            ("x-ratelimit-remaining", " 187 "),
            ("X-RateLimit-Used-CurrentRequest", "1"),
        ]);
        assert_eq!(
            rate_limit_from_headers(&map),
            Some(RateLimit {
                total: 200,
                remaining: 187,
                used_current: 1
            })
        );
        let partial = headers(&[
            ("X-RateLimit-Total", "200"),
            ("X-RateLimit-Remaining", "187"),
        ]);
        assert_eq!(rate_limit_from_headers(&partial), None);
        let garbled = headers(&[
            ("X-RateLimit-Total", "lots"),
            ("X-RateLimit-Remaining", "187"),
            ("X-RateLimit-Used-CurrentRequest", "1"),
        ]);
        assert_eq!(rate_limit_from_headers(&garbled), None);
    }

    #[test]
    fn retry_after_is_seconds_or_a_date() {
        let now = Utc.with_ymd_and_hms(2024, 5, 1, 12, 0, 0).unwrap();
        assert_eq!(parse_retry_after("37", now), Some(Duration::from_secs(37)));
        assert_eq!(parse_retry_after(" 0 ", now), Some(Duration::ZERO));
        assert_eq!(
            parse_retry_after("Wed, 01 May 2024 12:00:30 GMT", now),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            parse_retry_after("Wed, 01 May 2024 11:00:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("-5", now), None);
    }

    #[test]
    fn validation_body_becomes_field_errors() {
        let body = br#"{"description":"Validation failed","errors":[
            {"field":"responder_id","message":"There is no agent matching the given responder_id","code":"invalid_value"},
            {"field":"status","message":"It should be one of these values: '2,3,4,5'","code":"invalid_value","extra":1}
        ]}"#;
        let error = error_for_status(400, body, None).unwrap();
        assert!(error.is_invalid_value_on("responder_id"));
        let FreshdeskError::Validation(errors) = error else {
            panic!("expected a validation error");
        };
        assert_eq!(errors.len(), 2);
        assert_eq!(errors[1].field, "status");
        assert_eq!(errors[1].code, "invalid_value");
    }

    #[test]
    fn unreadable_validation_body_gives_no_field_errors() {
        for body in [
            &b""[..],
            b"<html>bad</html>",
            br#"{"code":"invalid_json","message":"x"}"#,
        ] {
            assert_eq!(
                error_for_status(400, body, None),
                Some(FreshdeskError::Validation(vec![]))
            );
        }
    }

    #[test]
    fn forbidden_carries_freshdesk_code_and_message() {
        let body =
            br#"{"code":"require_feature","message":"The Roles feature is not in your plan."}"#;
        assert_eq!(
            error_for_status(403, body, None),
            Some(FreshdeskError::Forbidden {
                code: "require_feature".into(),
                message: "The Roles feature is not in your plan.".into()
            })
        );
        assert_eq!(
            error_for_status(403, b"", None),
            Some(FreshdeskError::Forbidden {
                code: "access_denied".into(),
                message: "no details given".into()
            })
        );
        assert_eq!(
            error_for_status(403, br#"{"code":" ","message":null}"#, None),
            Some(FreshdeskError::Forbidden {
                code: "access_denied".into(),
                message: "no details given".into()
            })
        );
    }

    #[test]
    fn long_messages_from_freshdesk_are_cut() {
        let long = "x".repeat(5000);
        let body =
            serde_json::to_vec(&serde_json::json!({"code": "access_denied", "message": long}))
                .unwrap();
        let Some(FreshdeskError::Forbidden { message, .. }) = error_for_status(403, &body, None)
        else {
            panic!("expected forbidden");
        };
        assert_eq!(message.chars().count(), MAX_MESSAGE_CHARS + 1);
        assert!(message.ends_with('…'));
    }

    #[test]
    fn statuses_map_to_their_errors() {
        assert_eq!(error_for_status(200, b"{}", None), None);
        assert_eq!(error_for_status(201, b"{}", None), None);
        assert_eq!(
            error_for_status(401, br#"{"code":"invalid_credentials"}"#, None),
            Some(FreshdeskError::Unauthorized)
        );
        assert_eq!(
            error_for_status(404, b"", None),
            Some(FreshdeskError::NotFound)
        );
        assert_eq!(
            error_for_status(429, b"", Some(Duration::from_secs(7))),
            Some(FreshdeskError::RateLimited {
                retry_after: Duration::from_secs(7)
            })
        );
        assert_eq!(
            error_for_status(429, b"", None),
            Some(FreshdeskError::RateLimited {
                retry_after: DEFAULT_RETRY_AFTER
            })
        );
        assert_eq!(
            error_for_status(503, b"", None),
            Some(FreshdeskError::Server { status: 503 })
        );
        assert_eq!(
            error_for_status(302, b"", None),
            Some(FreshdeskError::UnexpectedStatus { status: 302 })
        );
        assert_eq!(
            error_for_status(409, b"", None),
            Some(FreshdeskError::UnexpectedStatus { status: 409 })
        );
    }

    #[test]
    fn decode_errors_carry_serde_message_not_the_body() {
        let error = decode::<Vec<u64>>(br#"{"secret":"do-not-echo"}"#).unwrap_err();
        let FreshdeskError::InvalidResponse(message) = error else {
            panic!("expected invalid response");
        };
        assert!(message.contains("expected a sequence"), "{message}");
        assert!(!message.contains("do-not-echo"));
    }

    #[test]
    fn tickets_query_orders_by_update_and_bounds_paging() {
        let query = TicketListQuery {
            updated_since: Some(Utc.with_ymd_and_hms(2024, 1, 2, 3, 4, 5).unwrap()),
            page: 2,
            per_page: 100,
        };
        assert_eq!(
            tickets_path(&query),
            "/tickets?updated_since=2024-01-02T03:04:05Z&order_by=updated_at&order_type=asc\
             &per_page=100&page=2"
        );
        let unbounded = TicketListQuery {
            updated_since: None,
            page: 0,
            per_page: 500,
        };
        assert_eq!(
            tickets_path(&unbounded),
            "/tickets?order_by=updated_at&order_type=asc&per_page=100&page=1"
        );
    }
}
