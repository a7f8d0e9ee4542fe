//! The Freshdesk API subset (`/api/v2/...`).
//!
//! One gateway handler receives every `/api/v2` request and applies, in order: faults
//! (latency, forced 429), the endpoint sub-limits, the per-minute credit budget, injected
//! 500/503/504s and forced 403s, Basic-auth, and finally the route. Every answer, error or
//! not, carries the `X-RateLimit-*` headers, and every request is recorded in the request log
//! with its final status. Routing is a `match` on the path segments so the gateway keeps
//! control of the whole request/response cycle; handlers are synchronous functions over the
//! locked state.

use std::time::{Duration, Instant};

use actix_web::http::{Method, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use base64::Engine as _;
use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use serde_json::{json, Map, Value};

use crate::errors::{ApiError, FieldError};
use crate::faults::FaultDecision;
use crate::model::{
    roles_json, ticket_fields_json, Ticket, ROLE_AGENT, SOURCES, SOURCE_NOTE, SOURCE_REPLY,
};
use crate::ratelimit::{credits, Endpoint, RateHeaders};
use crate::state::{Sim, SimState};
use crate::tickets::{Author, NewConversation};
use crate::types::{NewTicket, RecordedRequest};
use crate::webhooks::Origin;

/// Default and maximum `per_page`.
const DEFAULT_PER_PAGE: usize = 30;
const MAX_PER_PAGE: usize = 100;
/// `GET /tickets` without `updated_since` lists tickets created within this many days.
const DEFAULT_LIST_DAYS: i64 = 30;
/// Conversations embedded by `include=conversations`.
const EMBEDDED_CONVERSATIONS: usize = 10;

/// Mounts the API under `/api/v2`.
pub(crate) fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::scope("/api/v2").default_service(web::to(gateway)));
}

/// A parsed incoming request.
struct Call {
    method: Method,
    path: String,
    query: Vec<(String, String)>,
    /// `Err(())` when the body is not valid JSON.
    body: Result<Option<Value>, ()>,
    /// `Host` the client used, for `Link` headers.
    host: String,
    api_key: Option<String>,
}

/// A successful answer.
struct Reply {
    status: StatusCode,
    body: Value,
    link: Option<String>,
}

impl Reply {
    fn ok(body: Value) -> Self {
        Reply {
            status: StatusCode::OK,
            body,
            link: None,
        }
    }

    fn created(body: Value) -> Self {
        Reply {
            status: StatusCode::CREATED,
            body,
            link: None,
        }
    }
}

/// What the gateway answers, with what the request log needs.
struct Outcome {
    result: Result<Reply, ApiError>,
    rate: RateHeaders,
    credits: u32,
    agent_id: Option<u64>,
}

async fn gateway(req: HttpRequest, raw_body: web::Bytes, sim: web::Data<Sim>) -> HttpResponse {
    let at = Utc::now();
    let raw_query = req.query_string().to_string();
    let call = Call {
        method: req.method().clone(),
        path: req.path().to_string(),
        query: serde_urlencoded::from_str(&raw_query).unwrap_or_default(),
        body: if raw_body.iter().all(u8::is_ascii_whitespace) {
            Ok(None)
        } else {
            serde_json::from_slice(&raw_body).map(Some).map_err(|_| ())
        },
        host: req.connection_info().host().to_string(),
        api_key: api_key(&req),
    };
    let (seq, faults) = {
        let mut st = sim.state.lock();
        (st.next_request_seq(), st.faults.decide(&call.path))
    };
    if faults.latency_ms > 0 {
        tokio::time::sleep(Duration::from_millis(faults.latency_ms)).await;
    }
    let outcome = serve(&sim, &call, faults).await;

    let (status, body, link, retry_after) = match outcome.result {
        Ok(reply) if reply.status == StatusCode::NO_CONTENT => (reply.status, None, None, None),
        Ok(reply) => (reply.status, Some(reply.body), reply.link, None),
        Err(err) => {
            let retry_after = match err {
                ApiError::RateLimited { retry_after_secs } => Some(retry_after_secs),
                _ => None,
            };
            (err.status(), err.body(), None, retry_after)
        }
    };
    sim.state.lock().record_request(RecordedRequest {
        seq,
        method: call.method.to_string(),
        path: call.path.clone(),
        query: raw_query,
        body: match &call.body {
            Ok(Some(v)) => v.clone(),
            Ok(None) => Value::Null,
            Err(()) => Value::String(String::from_utf8_lossy(&raw_body).into_owned()),
        },
        status: status.as_u16(),
        agent_id: outcome.agent_id,
        credits: outcome.credits,
        at,
    });

    let mut response = HttpResponse::build(status);
    response
        .insert_header(("X-RateLimit-Total", outcome.rate.total.to_string()))
        .insert_header(("X-RateLimit-Remaining", outcome.rate.remaining.to_string()))
        .insert_header((
            "X-RateLimit-Used-CurrentRequest",
            outcome.rate.used_current.to_string(),
        ));
    if let Some(secs) = retry_after {
        response.insert_header(("Retry-After", secs.to_string()));
    }
    if let Some(link) = link {
        response.insert_header(("Link", link));
    }
    match body {
        Some(body) => response.json(body),
        None => response.finish(),
    }
}

/// Everything after the latency fault: forced 429, endpoint sub-limit, budget, injected
/// errors, auth, route.
async fn serve(sim: &Sim, call: &Call, faults: FaultDecision) -> Outcome {
    let refused = |rate, retry_after_secs| Outcome {
        result: Err(ApiError::RateLimited { retry_after_secs }),
        rate,
        credits: 0,
        agent_id: None,
    };
    let cost = credits(&call.query);
    let endpoint = Endpoint::of(call.method.as_str(), &call.path);
    let charged = {
        let mut st = sim.state.lock();
        let limit = st.rate_limit_per_min;
        let now = Instant::now();
        let sub_limited = match endpoint {
            Some(e) => st.sub_limits.check(e, now),
            None => Ok(()),
        };
        match (faults.forced_429, sub_limited) {
            (Some(retry_after), _) | (None, Err(retry_after)) => {
                Err((st.rate.peek(limit, now), retry_after))
            }
            (None, Ok(())) => {
                let charged = st
                    .rate
                    .charge(limit, cost, now)
                    .map_err(|retry_after| (st.rate.peek(limit, now), retry_after));
                if let (Ok(_), Some(e)) = (&charged, endpoint) {
                    st.sub_limits.charge(e, now);
                }
                charged
            }
        }
    };
    let rate = match charged {
        Ok(rate) => rate,
        Err((rate, retry_after)) => return refused(rate, retry_after),
    };
    let failed = |err| Outcome {
        result: Err(err),
        rate,
        credits: cost,
        agent_id: None,
    };
    if let Some(ms) = faults.timeout_ms {
        tokio::time::sleep(Duration::from_millis(ms)).await;
        return failed(ApiError::GatewayTimeout);
    }
    if let Some(status) = faults.error_status {
        return failed(ApiError::Unavailable(status));
    }
    if faults.forced_403 {
        return failed(ApiError::AccessDenied);
    }

    let mut st = sim.state.lock();
    let Some(agent_id) = call
        .api_key
        .as_deref()
        .and_then(|key| st.agent_by_key(key))
        .map(|a| a.id)
    else {
        return failed(ApiError::InvalidCredentials);
    };
    let mut result = route(&mut st, call, agent_id);
    let write = call.method == Method::POST || call.method == Method::PUT;
    if result.is_ok() && write && st.faults.time_out_applied_write() {
        result = Err(ApiError::GatewayTimeout);
    }
    Outcome {
        result,
        rate,
        credits: cost,
        agent_id: Some(agent_id),
    }
}

/// The API key of `Authorization: Basic base64(key:password)`.
fn api_key(req: &HttpRequest) -> Option<String> {
    let header = req.headers().get("Authorization")?.to_str().ok()?;
    let (scheme, encoded) = header.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let decoded = String::from_utf8(decoded).ok()?;
    let key = decoded.split(':').next().unwrap_or_default();
    (!key.is_empty()).then(|| key.to_string())
}

fn route(st: &mut SimState, call: &Call, me: u64) -> Result<Reply, ApiError> {
    let tail = call.path.strip_prefix("/api/v2").unwrap_or(&call.path);
    let segments: Vec<&str> = tail.split('/').filter(|s| !s.is_empty()).collect();
    let get = call.method == Method::GET;
    let post = call.method == Method::POST;
    let put = call.method == Method::PUT;
    match segments.as_slice() {
        ["agents", "me"] if get => agent(st, me),
        ["agents"] if get => list_agents(st, call),
        ["agents", id] if get => agent(st, parse_id(id)?),
        ["roles"] if get => roles(st, me),
        ["groups"] if get => list_groups(st, call),
        ["groups", id] if get => group(st, parse_id(id)?),
        ["ticket_fields"] if get => Ok(Reply::ok(ticket_fields_json(
            st.live_groups(),
            st.live_agents(),
        ))),
        ["tickets"] if get => list_tickets(st, call),
        ["tickets"] if post => create_ticket(st, call),
        ["tickets", id] if get => show_ticket(st, call, parse_id(id)?),
        ["tickets", id] if put => update_ticket(st, call, parse_id(id)?),
        ["tickets", id] if call.method == Method::DELETE => delete_ticket(st, parse_id(id)?),
        ["tickets", id, "conversations"] if get => list_conversations(st, call, parse_id(id)?),
        ["tickets", id, "reply"] if post => {
            post_conversation(st, call, parse_id(id)?, me, SOURCE_REPLY)
        }
        ["tickets", id, "notes"] if post => {
            post_conversation(st, call, parse_id(id)?, me, SOURCE_NOTE)
        }
        other => Err(match allowed_methods(other) {
            Some(allowed) => ApiError::MethodNotAllowed {
                method: call.method.to_string(),
                allowed,
            },
            None => ApiError::NotFound,
        }),
    }
}

/// Methods of the known paths (for 405s).
fn allowed_methods(segments: &[&str]) -> Option<&'static str> {
    match segments {
        ["agents"]
        | ["agents", _]
        | ["roles"]
        | ["groups"]
        | ["groups", _]
        | ["ticket_fields"]
        | ["tickets", _, "conversations"] => Some("GET"),
        ["tickets"] => Some("GET, POST"),
        ["tickets", _] => Some("GET, PUT, DELETE"),
        ["tickets", _, "reply"] | ["tickets", _, "notes"] => Some("POST"),
        _ => None,
    }
}

fn parse_id(segment: &str) -> Result<u64, ApiError> {
    segment.parse().map_err(|_| ApiError::NotFound)
}

// ----- query parameters and pagination ------------------------------------------------------

fn param<'a>(call: &'a Call, name: &str) -> Option<&'a str> {
    call.query
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// Rejects query parameters a resource does not know.
fn check_params(call: &Call, known: &[&str]) -> Vec<FieldError> {
    call.query
        .iter()
        .filter(|(k, _)| !known.contains(&k.as_str()))
        .map(|(k, _)| FieldError::invalid_field(k.clone()))
        .collect()
}

/// The `include=` values, checked against what the resource offers.
fn includes<'a>(call: &'a Call, offered: &[&str], errors: &mut Vec<FieldError>) -> Vec<&'a str> {
    let values: Vec<&str> = param(call, "include")
        .map(|v| {
            v.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .collect()
        })
        .unwrap_or_default();
    if values.iter().any(|v| !offered.contains(v)) {
        errors.push(FieldError::invalid_value(
            "include",
            format!("It should be one of these values: '{}'", offered.join(",")),
        ));
    }
    values
}

/// `per_page` and `page`, validated; `max_pages` applies to ticket lists only.
fn pagination(call: &Call, max_pages: Option<u32>, errors: &mut Vec<FieldError>) -> (usize, usize) {
    let number = |name: &str, errors: &mut Vec<FieldError>| -> Option<u64> {
        let raw = param(call, name)?;
        match raw.parse::<u64>() {
            Ok(n) if n >= 1 => Some(n),
            Ok(_) => {
                errors.push(FieldError::invalid_value(
                    name,
                    "It should be a Positive Integer",
                ));
                None
            }
            Err(_) => {
                errors.push(FieldError::datatype_mismatch(
                    name,
                    "Positive Integer",
                    &Value::String(raw.to_string()),
                ));
                None
            }
        }
    };
    let per_page = match number("per_page", errors) {
        Some(n) if n > MAX_PER_PAGE as u64 => {
            errors.push(FieldError::invalid_value(
                "per_page",
                format!("It should be a Positive Integer less than or equal to {MAX_PER_PAGE}"),
            ));
            DEFAULT_PER_PAGE
        }
        Some(n) => n as usize,
        None => DEFAULT_PER_PAGE,
    };
    let page = match number("page", errors) {
        Some(n) if max_pages.is_some_and(|max| n > u64::from(max)) => {
            errors.push(FieldError::invalid_value(
                "page",
                format!(
                    "You cannot access a page number greater than {}",
                    max_pages.unwrap_or_default()
                ),
            ));
            1
        }
        Some(n) => usize::try_from(n).unwrap_or(usize::MAX),
        None => 1,
    };
    (per_page, page)
}

fn validated(errors: Vec<FieldError>) -> Result<(), ApiError> {
    if errors.is_empty() {
        Ok(())
    } else {
        Err(ApiError::Validation(errors))
    }
}

/// One page of `items` and the `Link` to the next page when there is one.
fn page_of<'a, T>(
    items: &'a [T],
    call: &Call,
    per_page: usize,
    page: usize,
    max_pages: Option<u32>,
) -> (&'a [T], Option<String>) {
    let start = per_page.saturating_mul(page - 1).min(items.len());
    let end = start.saturating_add(per_page).min(items.len());
    let next_allowed = max_pages.is_none_or(|max| page < max as usize);
    let link = (end < items.len() && next_allowed).then(|| next_link(call, per_page, page + 1));
    (&items[start..end], link)
}

/// `<http://HOST/path?other&per_page=N&page=P>; rel="next"`.
fn next_link(call: &Call, per_page: usize, page: usize) -> String {
    let mut query: Vec<(String, String)> = call
        .query
        .iter()
        .filter(|(k, _)| k != "page" && k != "per_page")
        .cloned()
        .collect();
    query.push(("per_page".into(), per_page.to_string()));
    query.push(("page".into(), page.to_string()));
    let query = serde_urlencoded::to_string(&query).unwrap_or_default();
    format!(
        "<http://{}{}?{}>; rel=\"next\"",
        call.host, call.path, query
    )
}

/// Accepts RFC 3339, `YYYY-MM-DDTHH:MM:SS` (UTC) and `YYYY-MM-DD`. A `+` decoded as a space by
/// form decoding is put back.
fn parse_time(raw: &str) -> Option<DateTime<Utc>> {
    let raw = raw.trim().replace(' ', "+");
    if let Ok(t) = DateTime::parse_from_rfc3339(&raw) {
        return Some(t.with_timezone(&Utc));
    }
    if let Ok(t) = NaiveDateTime::parse_from_str(&raw, "%Y-%m-%dT%H:%M:%S") {
        return Some(t.and_utc());
    }
    NaiveDate::parse_from_str(&raw, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc())
}

// ----- directory -----------------------------------------------------------------------------

fn agent(st: &SimState, id: u64) -> Result<Reply, ApiError> {
    st.live_agent(id)
        .map(|a| Reply::ok(a.to_json()))
        .ok_or(ApiError::NotFound)
}

fn list_agents(st: &SimState, call: &Call) -> Result<Reply, ApiError> {
    let mut errors = check_params(
        call,
        &["per_page", "page", "email", "mobile", "phone", "state"],
    );
    let (per_page, page) = pagination(call, None, &mut errors);
    validated(errors)?;
    let email = param(call, "email").map(str::to_ascii_lowercase);
    let agents: Vec<_> = st
        .live_agents()
        .filter(|a| {
            email
                .as_deref()
                .is_none_or(|e| a.email.eq_ignore_ascii_case(e))
        })
        .collect();
    let (items, link) = page_of(&agents, call, per_page, page, None);
    Ok(Reply {
        link,
        ..Reply::ok(Value::Array(items.iter().map(|a| a.to_json()).collect()))
    })
}

fn roles(st: &SimState, me: u64) -> Result<Reply, ApiError> {
    let only_agent = st
        .live_agent(me)
        .is_none_or(|a| a.role_ids.iter().all(|r| *r == ROLE_AGENT));
    if only_agent {
        return Err(ApiError::AccessDenied);
    }
    Ok(Reply::ok(roles_json()))
}

fn group(st: &SimState, id: u64) -> Result<Reply, ApiError> {
    st.live_group(id)
        .map(|g| Reply::ok(g.to_json()))
        .ok_or(ApiError::NotFound)
}

fn list_groups(st: &SimState, call: &Call) -> Result<Reply, ApiError> {
    let mut errors = check_params(call, &["per_page", "page"]);
    let (per_page, page) = pagination(call, None, &mut errors);
    validated(errors)?;
    let groups: Vec<_> = st.live_groups().collect();
    let (items, link) = page_of(&groups, call, per_page, page, None);
    Ok(Reply {
        link,
        ..Reply::ok(Value::Array(items.iter().map(|g| g.to_json()).collect()))
    })
}

// ----- tickets ---------------------------------------------------------------------------------

/// Adds the `include=` extras that lists and single tickets share.
fn decorate(st: &SimState, ticket: &Ticket, json: &mut Value, include: &[&str]) {
    let Some(obj) = json.as_object_mut() else {
        return;
    };
    if include.contains(&"requester") {
        let requester = st.contact(ticket.requester_id).map(|c| {
            json!({"id": c.id, "name": c.name, "email": c.email, "mobile": null, "phone": null})
        });
        obj.insert("requester".into(), requester.unwrap_or(Value::Null));
    }
    if include.contains(&"stats") {
        let last = |incoming: bool| {
            ticket
                .conversations
                .iter()
                .rev()
                .find(|c| c.incoming == incoming && c.source == SOURCE_REPLY)
                .map(|c| crate::model::ts(c.created_at))
        };
        let first_agent = ticket
            .conversations
            .iter()
            .find(|c| !c.incoming && c.source == SOURCE_REPLY)
            .map(|c| crate::model::ts(c.created_at));
        obj.insert(
            "stats".into(),
            json!({
                "agent_responded_at": last(false),
                "requester_responded_at": last(true),
                "first_responded_at": first_agent,
                "status_updated_at": crate::model::ts(ticket.updated_at),
                "reopened_at": null,
                "resolved_at": null,
                "closed_at": null,
                "pending_since": null,
            }),
        );
    }
    if include.contains(&"description") {
        obj.insert("description".into(), json!(ticket.description));
        obj.insert("description_text".into(), json!(ticket.description_text));
    }
}

fn list_tickets(st: &SimState, call: &Call) -> Result<Reply, ApiError> {
    let mut errors = check_params(
        call,
        &[
            "updated_since",
            "order_by",
            "order_type",
            "per_page",
            "page",
            "include",
            "filter",
            "requester_id",
            "email",
            "company_id",
        ],
    );
    let include = includes(call, &["requester", "stats", "description"], &mut errors);
    let (per_page, page) = pagination(call, Some(st.max_pages), &mut errors);
    let updated_since = match param(call, "updated_since") {
        Some(raw) => match parse_time(raw) {
            Some(t) => Some(t),
            None => {
                errors.push(FieldError::invalid_value(
                    "updated_since",
                    "It should be in the 'valid date time' format",
                ));
                None
            }
        },
        None => None,
    };
    let order_by = param(call, "order_by").unwrap_or("created_at");
    if !["created_at", "updated_at", "due_by", "status"].contains(&order_by) {
        errors.push(FieldError::invalid_value(
            "order_by",
            "It should be one of these values: 'created_at,due_by,updated_at,status'",
        ));
    }
    let descending = match param(call, "order_type").unwrap_or("desc") {
        "desc" => true,
        "asc" => false,
        _ => {
            errors.push(FieldError::invalid_value(
                "order_type",
                "It should be one of these values: 'asc,desc'",
            ));
            true
        }
    };
    let filter = param(call, "filter");
    if filter.is_some_and(|f| !["new_and_my_open", "watching", "spam", "deleted"].contains(&f)) {
        errors.push(FieldError::invalid_value(
            "filter",
            "It should be one of these values: 'new_and_my_open,watching,spam,deleted'",
        ));
    }
    let requester = match (param(call, "requester_id"), param(call, "email")) {
        (Some(id), _) => Some(id.parse::<u64>().ok()),
        (None, Some(email)) => Some(st.contact_id_by_email(email)),
        (None, None) => None,
    };
    validated(errors)?;

    let created_after = Utc::now() - chrono::Duration::days(DEFAULT_LIST_DAYS);
    let wants_deleted = filter == Some("deleted");
    let mut tickets: Vec<&Ticket> = st
        .tickets
        .iter()
        .filter(|t| t.deleted == wants_deleted)
        .filter(|t| match updated_since {
            Some(since) => t.updated_at >= since,
            None => t.created_at >= created_after,
        })
        .filter(|t| match filter {
            Some("new_and_my_open") => {
                t.status == crate::model::STATUS_OPEN && t.responder_id.is_none()
            }
            Some("watching") | Some("spam") => false,
            _ => true,
        })
        .filter(|t| requester.is_none_or(|r| Some(t.requester_id) == r))
        .filter(|_| param(call, "company_id").is_none())
        .collect();
    tickets.sort_by(|a, b| {
        let by = match order_by {
            "updated_at" => a.updated_at.cmp(&b.updated_at),
            "status" => a.status.cmp(&b.status),
            // due_by is derived from created_at.
            _ => a.created_at.cmp(&b.created_at),
        }
        .then(a.id.cmp(&b.id));
        if descending {
            by.reverse()
        } else {
            by
        }
    });
    let (items, link) = page_of(&tickets, call, per_page, page, Some(st.max_pages));
    let body = items
        .iter()
        .map(|t| {
            let mut json = t.to_json(false);
            decorate(st, t, &mut json, &include);
            json
        })
        .collect();
    Ok(Reply {
        link,
        ..Reply::ok(Value::Array(body))
    })
}

fn show_ticket(st: &SimState, call: &Call, id: u64) -> Result<Reply, ApiError> {
    let ticket = st.ticket(id).ok_or(ApiError::NotFound)?;
    let mut errors = check_params(call, &["include"]);
    let include = includes(call, &["conversations", "requester", "stats"], &mut errors);
    validated(errors)?;
    let mut json = ticket.to_json(true);
    decorate(st, ticket, &mut json, &include);
    if include.contains(&"conversations") {
        let conversations: Vec<Value> = ticket
            .conversations
            .iter()
            .take(EMBEDDED_CONVERSATIONS)
            .map(|c| c.to_json())
            .collect();
        if let Some(obj) = json.as_object_mut() {
            obj.insert("conversations".into(), Value::Array(conversations));
        }
    }
    Ok(Reply::ok(json))
}

/// The body of a write, which must be a JSON object (an empty body is an empty object).
fn object_body(call: &Call) -> Result<Map<String, Value>, ApiError> {
    match &call.body {
        Ok(None) => Ok(Map::new()),
        Ok(Some(Value::Object(map))) => Ok(map.clone()),
        Ok(Some(_)) | Err(()) => Err(ApiError::InvalidJson),
    }
}

/// Keys of `POST /tickets` beside those an update takes (status, priority, subject, …).
const CREATE_ONLY_KEYS: [&str; 5] = ["email", "name", "requester_id", "description", "source"];

/// `POST /tickets`: the requester (by `email`, created on first use, or `requester_id`),
/// `subject` and `description` are mandatory; status and priority default to Open and Low,
/// the source to Portal. Every bad key is reported at once, as Freshdesk does.
fn create_ticket(st: &mut SimState, call: &Call) -> Result<Reply, ApiError> {
    let body = object_body(call)?;
    let (create_only, common): (Map<String, Value>, Map<String, Value>) = body
        .into_iter()
        .partition(|(k, _)| CREATE_ONLY_KEYS.contains(&k.as_str()));
    let mut errors = st.parse_changes(&common).err().unwrap_or_default();
    let text = |field: &str, errors: &mut Vec<FieldError>| match create_only.get(field) {
        None => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(other) => {
            errors.push(FieldError::datatype_mismatch(field, "String", other));
            None
        }
    };
    let email = text("email", &mut errors);
    if email
        .as_deref()
        .is_some_and(|e| !e.contains('@') || e.trim().contains(' '))
    {
        errors.push(FieldError::invalid_value(
            "email",
            "It should be in the 'valid email address' format",
        ));
    }
    let name = text("name", &mut errors);
    let requester_email = match create_only.get("requester_id") {
        None => None,
        Some(v) => match v.as_u64().and_then(|id| st.contact(id)) {
            Some(contact) => Some(contact.email.clone()),
            None if v.as_u64().is_some() => {
                errors.push(FieldError::invalid_value(
                    "requester_id",
                    "There is no contact matching the given requester_id",
                ));
                None
            }
            None => {
                errors.push(FieldError::datatype_mismatch(
                    "requester_id",
                    "Positive Integer",
                    v,
                ));
                None
            }
        },
    };
    if !create_only.contains_key("email") && !create_only.contains_key("requester_id") {
        errors.push(FieldError::new(
            "requester_id",
            "missing_field",
            "Please fill at least 1 of requester_id, phone, email, twitter_id, facebook_id, unique_external_id fields",
        ));
    }
    if !common.contains_key("subject") {
        errors.push(FieldError::missing_field("subject"));
    }
    let description = text("description", &mut errors);
    if !create_only.contains_key("description") {
        errors.push(FieldError::missing_field("description"));
    }
    let source = match create_only.get("source") {
        None => Some(2),
        Some(v) => match v.as_u64() {
            Some(id) if SOURCES.iter().any(|(s, _)| *s == id) => Some(id),
            Some(_) => {
                let ids: Vec<String> = SOURCES.iter().map(|(id, _)| id.to_string()).collect();
                errors.push(FieldError::invalid_value(
                    "source",
                    format!("It should be one of these values: '{}'", ids.join(",")),
                ));
                None
            }
            None => {
                errors.push(FieldError::datatype_mismatch("source", "Integer", v));
                None
            }
        },
    };
    validated(errors)?;
    let new = NewTicket {
        subject: common
            .get("subject")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
        description: description.unwrap_or_default(),
        email: requester_email.or(email),
        name,
        source,
        status: common.get("status").and_then(Value::as_u64),
        priority: common.get("priority").and_then(Value::as_u64),
        group_id: common.get("group_id").and_then(Value::as_u64),
        responder_id: common.get("responder_id").and_then(Value::as_u64),
        tags: common
            .get("tags")
            .and_then(|t| serde_json::from_value(t.clone()).ok()),
        custom_fields: common
            .get("custom_fields")
            .and_then(Value::as_object)
            .cloned(),
        ..NewTicket::default()
    };
    st.create_ticket_from(&new, Origin::Api)
        .map(Reply::created)
        .map_err(ApiError::Validation)
}

/// `DELETE /tickets/{id}`: the ticket moves to the trash (gone from every read).
fn delete_ticket(st: &mut SimState, id: u64) -> Result<Reply, ApiError> {
    if !st.delete_ticket(id) {
        return Err(ApiError::NotFound);
    }
    Ok(Reply {
        status: StatusCode::NO_CONTENT,
        body: Value::Null,
        link: None,
    })
}

fn update_ticket(st: &mut SimState, call: &Call, id: u64) -> Result<Reply, ApiError> {
    st.ticket(id).ok_or(ApiError::NotFound)?;
    let body = object_body(call)?;
    let changes = st.parse_changes(&body).map_err(ApiError::Validation)?;
    st.update_ticket(id, changes, Origin::Api)
        .map(Reply::ok)
        .ok_or(ApiError::NotFound)
}

fn list_conversations(st: &SimState, call: &Call, id: u64) -> Result<Reply, ApiError> {
    let ticket = st.ticket(id).ok_or(ApiError::NotFound)?;
    let mut errors = check_params(call, &["per_page", "page"]);
    let (per_page, page) = pagination(call, None, &mut errors);
    validated(errors)?;
    let (items, link) = page_of(&ticket.conversations, call, per_page, page, None);
    Ok(Reply {
        link,
        ..Reply::ok(Value::Array(items.iter().map(|c| c.to_json()).collect()))
    })
}

/// `POST /tickets/{id}/reply` (source 0) and `POST /tickets/{id}/notes` (source 2).
fn post_conversation(
    st: &mut SimState,
    call: &Call,
    id: u64,
    me: u64,
    source: u64,
) -> Result<Reply, ApiError> {
    st.ticket(id).ok_or(ApiError::NotFound)?;
    let body = object_body(call)?;
    let is_note = source == SOURCE_NOTE;
    let known: &[&str] = if is_note {
        &["body", "private", "incoming", "user_id", "notify_emails"]
    } else {
        &["body", "user_id", "from_email", "cc_emails", "bcc_emails"]
    };
    let mut errors: Vec<FieldError> = body
        .keys()
        .filter(|k| !known.contains(&k.as_str()))
        .map(|k| FieldError::invalid_field(k.clone()))
        .collect();
    let text = match body.get("body") {
        None => {
            errors.push(FieldError::missing_field("body"));
            String::new()
        }
        Some(Value::String(s)) if s.trim().is_empty() => {
            errors.push(FieldError::new(
                "body",
                "missing_field",
                "It should not be blank as this is a mandatory field",
            ));
            String::new()
        }
        Some(Value::String(s)) => s.clone(),
        Some(other) => {
            errors.push(FieldError::datatype_mismatch("body", "String", other));
            String::new()
        }
    };
    let mut flag = |name: &str, default: bool| match body.get(name) {
        None => default,
        Some(Value::Bool(b)) => *b,
        Some(other) => {
            errors.push(FieldError::datatype_mismatch(name, "Boolean", other));
            default
        }
    };
    let private = is_note && flag("private", true);
    let incoming = is_note && flag("incoming", false);
    let user_id = match body.get("user_id") {
        None => me,
        Some(v) => match v.as_u64() {
            Some(user) if st.live_agent(user).is_some() || st.contact(user).is_some() => user,
            Some(_) => {
                errors.push(FieldError::invalid_value(
                    "user_id",
                    "There is no contact or agent matching the given user_id",
                ));
                me
            }
            None => {
                errors.push(FieldError::datatype_mismatch(
                    "user_id",
                    "Positive Integer",
                    v,
                ));
                me
            }
        },
    };
    validated(errors)?;
    let conversation = NewConversation {
        author: Author::User(user_id),
        body: text,
        source,
        private,
        incoming,
    };
    st.add_conversation(id, conversation, Origin::Api)
        .map(Reply::created)
        .ok_or(ApiError::NotFound)
}
