//! The OpenAPI 3.1 document of the HTTP API, generated from the handlers' `#[utoipa::path]`
//! annotations and the types they answer, served at `GET /api/v1/openapi.json` and rendered
//! into `docs/api.md` by [`markdown`]. The console's HTML pages are not part of it.
//!
//! What the annotations cannot say is added here from one table each: the error codes every
//! operation can answer ([`ROUTE_ERRORS`]) and the links between operations ([`LINKS`]).

use super::error::Code;
use actix_web::{web, HttpResponse};
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::sync::OnceLock;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::OpenApi;

/// Where the document is served.
pub const PATH: &str = "/api/v1/openapi.json";

#[derive(OpenApi)]
#[openapi(
    info(
        title = "ticketsync",
        description = "An AI support agent on top of Freshdesk. Every error answers `{\"error\": {\"code\", \"message\"}}`; each operation lists the codes it can answer per status. `/api/v1` and `/metrics` take `Authorization: Bearer <token>`: the operator's admin token, or an org admin token, which reaches only its own organization (another org's routes answer 404 `org_not_found`, operator-only routes 404 `not_found`)."
    ),
    paths(
        super::health::healthz,
        super::health::readyz,
        super::webhook::receive,
        super::inspect::metrics,
        serve,
        super::orgs::create,
        super::orgs::list,
        super::orgs::show,
        super::orgs::remove,
        super::freshdesk::verify,
        super::freshdesk::save,
        super::freshdesk::show,
        super::freshdesk::disconnect,
        super::selftest::start,
        super::selftest::last,
        super::sessions::list,
        super::sessions::show,
        super::sessions::by_ticket,
        super::sessions::handoff,
        super::sessions::resume,
        super::tokens::create,
        super::tokens::list,
        super::tokens::revoke,
        super::inspect::engine,
        super::inspect::ticket_inspect,
    ),
    components(schemas(super::error::ErrorBody, super::error::ErrorDetail)),
    modifiers(&BearerAuth),
    tags(
        (name = "health", description = "Liveness and readiness, no authentication."),
        (name = "webhook", description = "Freshdesk automation rules call this; the secret token in the path authenticates."),
        (name = "orgs", description = "Organizations."),
        (name = "freshdesk", description = "An organization's Freshdesk connection and its setup self-test."),
        (name = "sessions", description = "The inbox: sessions, handoff and resume."),
        (name = "tokens", description = "Org admin tokens (operator only)."),
        (name = "inspect", description = "Engine inspection and metrics."),
        (name = "meta", description = "This document."),
    )
)]
struct ApiDoc;

/// Declares `bearerAuth`, which the `/api/v1` operations and `/metrics` require.
struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearerAuth",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
    }
}

/// The errors one operation can answer, beyond those every operation of its kind answers
/// (see [`error_codes`]).
pub struct RouteErrors {
    pub method: &'static str,
    pub path: &'static str,
    /// It reads a JSON body through `web::Json`: 400 `invalid_json`, 413, 415.
    pub json_body: bool,
    pub codes: &'static [Code],
}

const fn route(
    method: &'static str,
    path: &'static str,
    json_body: bool,
    codes: &'static [Code],
) -> RouteErrors {
    RouteErrors {
        method,
        path,
        json_body,
        codes,
    }
}

/// The one table of which error codes each operation answers. A test checks that it names
/// exactly the documented operations.
pub const ROUTE_ERRORS: &[RouteErrors] = &[
    route("get", "/healthz", false, &[]),
    route(
        "get",
        "/readyz",
        false,
        &[Code::NotReady, Code::StorageUnavailable],
    ),
    route(
        "post",
        "/webhooks/freshdesk/{token}",
        false,
        &[
            Code::InvalidPayload,
            Code::InvalidToken,
            Code::IntegrationGone,
            Code::PayloadTooLarge,
            Code::StorageUnavailable,
        ],
    ),
    // Operator only: an org admin gets 404 `not_found`.
    route("get", "/metrics", false, &[Code::NotFound]),
    route("get", PATH, false, &[]),
    route(
        "post",
        "/api/v1/orgs",
        true,
        &[Code::NotFound, Code::InvalidRequest],
    ),
    route("get", "/api/v1/orgs", false, &[]),
    route("get", "/api/v1/orgs/{org_id}", false, &[]),
    route("delete", "/api/v1/orgs/{org_id}", false, &[]),
    route(
        "post",
        "/api/v1/orgs/{org_id}/freshdesk/verify",
        true,
        &[
            Code::InvalidDomain,
            Code::InvalidCredentials,
            Code::NotAdmin,
            Code::FreshdeskUnreachable,
        ],
    ),
    route(
        "put",
        "/api/v1/orgs/{org_id}/freshdesk",
        true,
        &[
            Code::InvalidSettings,
            Code::InvalidDomain,
            Code::InvalidCredentials,
            Code::NotAdmin,
            Code::GroupNotFound,
            Code::AgentNotFound,
            Code::MarkerFieldNotFound,
            Code::FreshdeskUnreachable,
        ],
    ),
    route(
        "get",
        "/api/v1/orgs/{org_id}/freshdesk",
        false,
        &[Code::NotConnected],
    ),
    route(
        "delete",
        "/api/v1/orgs/{org_id}/freshdesk",
        false,
        &[Code::NotConnected],
    ),
    route(
        "post",
        "/api/v1/orgs/{org_id}/freshdesk/self-test",
        false,
        &[
            Code::NotConnected,
            Code::IntegrationDisconnected,
            Code::SelfTestRunning,
            Code::InvalidDomain,
        ],
    ),
    route(
        "get",
        "/api/v1/orgs/{org_id}/freshdesk/self-test",
        false,
        &[Code::SelfTestNotRun],
    ),
    route(
        "get",
        "/api/v1/orgs/{org_id}/sessions",
        false,
        &[Code::InvalidQuery, Code::InvalidCursor],
    ),
    route(
        "get",
        "/api/v1/orgs/{org_id}/sessions/{session_id}",
        false,
        &[Code::SessionNotFound],
    ),
    route(
        "get",
        "/api/v1/orgs/{org_id}/tickets/{ticket_id}/session",
        false,
        &[Code::SessionNotFound],
    ),
    // The body is optional and read as bytes: no 415.
    route(
        "post",
        "/api/v1/orgs/{org_id}/sessions/{session_id}/handoff",
        false,
        &[
            Code::InvalidJson,
            Code::SessionNotFound,
            Code::IntegrationDisconnected,
            Code::PayloadTooLarge,
            Code::CommandPending,
        ],
    ),
    route(
        "post",
        "/api/v1/orgs/{org_id}/sessions/{session_id}/resume",
        false,
        &[
            Code::SessionNotFound,
            Code::IntegrationDisconnected,
            Code::CommandPending,
        ],
    ),
    route(
        "post",
        "/api/v1/orgs/{org_id}/tokens",
        true,
        &[Code::InvalidRequest],
    ),
    route("get", "/api/v1/orgs/{org_id}/tokens", false, &[]),
    route(
        "delete",
        "/api/v1/orgs/{org_id}/tokens/{token_id}",
        false,
        &[Code::TokenNotFound],
    ),
    route("get", "/api/v1/inspect", false, &[Code::NotFound]),
    route(
        "get",
        "/api/v1/orgs/{org_id}/tickets/{ticket_id}/inspect",
        false,
        &[],
    ),
];

/// Every error code `method path` can answer: those of its [`ROUTE_ERRORS`] row, plus 500
/// `internal_error` (anywhere), 401 `unauthorized` and 503 `storage_unavailable` (the bearer
/// routes: authenticating an org admin token reads the store), 404 `not_found` (a bearer
/// route's path segment that does not parse), 404 `org_not_found` (under `/api/v1/orgs/{org_id}`), and
/// the JSON body errors.
pub fn error_codes(method: &str, path: &str, bearer: bool) -> Option<Vec<Code>> {
    let row = ROUTE_ERRORS
        .iter()
        .find(|r| r.method == method && r.path == path)?;
    let mut codes = row.codes.to_vec();
    codes.push(Code::InternalError);
    if bearer {
        codes.extend([Code::Unauthorized, Code::StorageUnavailable]);
    }
    if bearer && path.contains('{') {
        codes.push(Code::NotFound);
    }
    if path.starts_with("/api/v1/orgs/{org_id}") {
        codes.push(Code::OrgNotFound);
    }
    if row.json_body {
        codes.extend([
            Code::InvalidJson,
            Code::PayloadTooLarge,
            Code::UnsupportedMediaType,
        ]);
    }
    codes.sort();
    codes.dedup();
    Some(codes)
}

/// A link: after `from`'s `status` answer, `to` with these parameters (runtime expressions).
struct Link {
    from: &'static str,
    status: &'static str,
    to: &'static str,
    parameters: &'static [(&'static str, &'static str)],
}

const NEW_ORG: &[(&str, &str)] = &[("org_id", "$response.body#/id")];
const SAME_ORG: &[(&str, &str)] = &[("org_id", "$request.path.org_id")];
const FIRST_SESSION: &[(&str, &str)] = &[
    ("org_id", "$request.path.org_id"),
    ("session_id", "$response.body#/items/0/id"),
];
const THIS_SESSION: &[(&str, &str)] = &[
    ("org_id", "$request.path.org_id"),
    ("session_id", "$response.body#/id"),
];

/// The links between operations, so that a stateful client (or a fuzzer) can go from a new
/// org to its connection, sessions and tokens.
const LINKS: &[Link] = &[
    link("create_org", "201", "show_org", NEW_ORG),
    link("create_org", "201", "verify_freshdesk", NEW_ORG),
    link("create_org", "201", "save_freshdesk", NEW_ORG),
    link("create_org", "201", "show_freshdesk", NEW_ORG),
    link("create_org", "201", "list_sessions", NEW_ORG),
    link("create_org", "201", "create_token", NEW_ORG),
    link("create_org", "201", "list_tokens", NEW_ORG),
    link("create_org", "201", "delete_org", NEW_ORG),
    link(
        "list_orgs",
        "200",
        "show_org",
        &[("org_id", "$response.body#/items/0/id")],
    ),
    link("save_freshdesk", "200", "show_freshdesk", SAME_ORG),
    link("save_freshdesk", "200", "start_self_test", SAME_ORG),
    link("save_freshdesk", "200", "list_sessions", SAME_ORG),
    link("save_freshdesk", "200", "disconnect_freshdesk", SAME_ORG),
    link("start_self_test", "202", "last_self_test", SAME_ORG),
    link("list_sessions", "200", "show_session", FIRST_SESSION),
    link("list_sessions", "200", "handoff_session", FIRST_SESSION),
    link("list_sessions", "200", "resume_session", FIRST_SESSION),
    link("show_session", "200", "handoff_session", THIS_SESSION),
    link("show_session", "200", "resume_session", THIS_SESSION),
    link(
        "show_session",
        "200",
        "session_of_ticket",
        &[
            ("org_id", "$request.path.org_id"),
            ("ticket_id", "$response.body#/ticket_id"),
        ],
    ),
    link(
        "create_token",
        "201",
        "revoke_token",
        &[
            ("org_id", "$request.path.org_id"),
            ("token_id", "$response.body#/id"),
        ],
    ),
];

const fn link(
    from: &'static str,
    status: &'static str,
    to: &'static str,
    parameters: &'static [(&'static str, &'static str)],
) -> Link {
    Link {
        from,
        status,
        to,
        parameters,
    }
}

/// The document as served: the annotations, the error responses of [`ROUTE_ERRORS`], the
/// [`LINKS`], and a relative server (no host, no org, no token in it).
pub fn document() -> Value {
    let mut doc = serde_json::to_value(ApiDoc::openapi()).expect("the document serialises");
    doc["servers"] = json!([{"url": "/"}]);
    let operations = operations_mut(&mut doc);
    for (method, path, op) in operations {
        let bearer = op.get("security").is_some();
        let codes = error_codes(&method, &path, bearer)
            .unwrap_or_else(|| panic!("ROUTE_ERRORS has no row for {method} {path}"));
        add_errors(op, &codes);
    }
    add_links(&mut doc);
    doc
}

/// `(method, path, operation)` of every operation of `doc`.
fn operations_mut(doc: &mut Value) -> Vec<(String, String, &mut Map<String, Value>)> {
    let mut found = Vec::new();
    if let Some(paths) = doc["paths"].as_object_mut() {
        for (path, item) in paths.iter_mut() {
            if let Some(item) = item.as_object_mut() {
                for (method, op) in item.iter_mut() {
                    if let Some(op) = op.as_object_mut() {
                        found.push((method.clone(), path.clone(), op));
                    }
                }
            }
        }
    }
    found
}

/// One response per error status, listing its codes in the description and as an `enum` on
/// `error.code`.
fn add_errors(op: &mut Map<String, Value>, codes: &[Code]) {
    let mut by_status: BTreeMap<u16, Vec<&'static str>> = BTreeMap::new();
    for code in codes {
        let names = by_status.entry(code.status().as_u16()).or_default();
        if !names.contains(&code.name()) {
            names.push(code.name());
        }
    }
    let responses = op
        .entry("responses")
        .or_insert_with(|| json!({}))
        .as_object_mut()
        .expect("responses is an object");
    for (status, names) in by_status {
        let listed: Vec<String> = names.iter().map(|n| format!("`{n}`")).collect();
        responses.insert(
            status.to_string(),
            json!({
                "description": format!("Error: {}.", listed.join(", ")),
                "content": {"application/json": {"schema": {
                    "allOf": [
                        {"$ref": "#/components/schemas/ErrorBody"},
                        {"type": "object", "properties": {"error": {
                            "type": "object",
                            "properties": {"code": {"type": "string", "enum": names}}
                        }}}
                    ]
                }}}
            }),
        );
    }
}

fn add_links(doc: &mut Value) {
    let operations = operations_mut(doc);
    let mut by_id: BTreeMap<String, &mut Map<String, Value>> = operations
        .into_iter()
        .filter_map(|(_, _, op)| Some((op.get("operationId")?.as_str()?.to_string(), op)))
        .collect();
    let ids: Vec<String> = by_id.keys().cloned().collect();
    for link in LINKS {
        assert!(
            ids.iter().any(|id| id == link.to),
            "link to unknown {}",
            link.to
        );
        let op = by_id
            .get_mut(link.from)
            .unwrap_or_else(|| panic!("link from unknown {}", link.from));
        let response = op["responses"]
            .get_mut(link.status)
            .unwrap_or_else(|| panic!("{} has no {} response", link.from, link.status));
        let parameters: Map<String, Value> = link
            .parameters
            .iter()
            .map(|(name, expr)| (name.to_string(), json!(expr)))
            .collect();
        response["links"][link.to] = json!({"operationId": link.to, "parameters": parameters});
    }
}

/// The served document, rendered once.
fn served() -> &'static str {
    static DOC: OnceLock<String> = OnceLock::new();
    DOC.get_or_init(|| serde_json::to_string(&document()).expect("the document serialises"))
}

/// This document.
#[utoipa::path(get, path = "/api/v1/openapi.json", tag = "meta", operation_id = "openapi",
    description = "The OpenAPI 3.1 document of this API. Public: it holds no secrets.",
    responses((status = 200, description = "The document.", body = Object)))]
pub(super) async fn serve() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(served())
}

/// Register `GET /api/v1/openapi.json`, public (register it before the admin scope, which
/// would otherwise claim the path).
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/api/v1/openapi.json").route(web::get().to(serve)));
}
