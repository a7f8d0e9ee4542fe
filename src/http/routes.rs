//! The one table of the API's routes (every documented operation, with the error codes it can
//! answer): the OpenAPI document is completed from it, unknown methods on a documented path
//! answer 405 from it, and the route-coverage test keeps it equal to the document.

use super::error::{no_endpoint, ApiError, Code};
use actix_web::{HttpRequest, HttpResponse, ResponseError};

/// Where the OpenAPI document is served.
pub const OPENAPI_PATH: &str = "/api/v1/openapi.json";

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
    route("get", OPENAPI_PATH, false, &[]),
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

/// Unknown routes and methods: a path the API documents, asked with a method it does not
/// take, answers 405 `method_not_allowed` with `Allow` listing the methods it takes; any
/// other path 404 `not_found`.
pub async fn route_not_found(req: HttpRequest) -> Result<HttpResponse, ApiError> {
    let allowed = allowed_methods(req.path());
    if allowed.is_empty() {
        return Err(no_endpoint(req.method(), req.path()));
    }
    let allow = allowed.join(", ");
    // The path is not echoed: the webhook's carries its secret token.
    let mut res = ApiError::new(
        Code::MethodNotAllowed,
        format!("This path takes {allow}, not {}.", req.method()),
    )
    .error_response();
    res.headers_mut().insert(
        actix_web::http::header::ALLOW,
        actix_web::http::header::HeaderValue::from_str(&allow).expect("method names are ASCII"),
    );
    Ok(res)
}

/// The methods (upper case, sorted) the documented routes take on `path`: the operations of
/// [`ROUTE_ERRORS`] whose path template matches it segment by segment (a
/// `{parameter}` matches any non-empty segment).
fn allowed_methods(path: &str) -> Vec<String> {
    let segments: Vec<&str> = path.split('/').collect();
    let matches = |template: &str| {
        let parts: Vec<&str> = template.split('/').collect();
        parts.len() == segments.len()
            && parts.iter().zip(&segments).all(|(part, segment)| {
                part == segment || (part.starts_with('{') && !segment.is_empty())
            })
    };
    let mut methods: Vec<String> = ROUTE_ERRORS
        .iter()
        .filter(|route| matches(route.path))
        .map(|route| route.method.to_ascii_uppercase())
        .collect();
    methods.sort();
    methods.dedup();
    methods
}
