//! The API's one error shape, `{"error": {"code", "message"}}`, and the extractor error
//! handlers that make malformed JSON, paths and queries answer in it too.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, ResponseError};
use std::fmt;

/// Every error code the API answers, each with its one HTTP status. Codes the contract
/// defines are in `docs/contract.md`; the others in the "Error codes beyond the contract" bullet of
/// `docs/decisions.md` (a test below checks both ways).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Code {
    /// 400: a request actix refused before our handlers (the error-shape fallback).
    BadRequest,
    /// 400: a malformed JSON body.
    InvalidJson,
    /// 400: a query string that does not parse or holds a value out of range.
    InvalidQuery,
    /// 400: a session-list cursor this endpoint did not return.
    InvalidCursor,
    /// 400: a webhook body that is not the documented payload.
    InvalidPayload,
    /// 401: the admin token is missing or wrong.
    Unauthorized,
    /// 401: the webhook URL's token does not verify.
    InvalidToken,
    /// 404: an unknown route or a path segment that does not parse.
    NotFound,
    /// 404: no organization has this id.
    OrgNotFound,
    /// 404: no session with this id in this organization.
    SessionNotFound,
    /// 404: the organization has no Freshdesk connection.
    NotConnected,
    /// 404: the organization has no admin token with this id.
    TokenNotFound,
    /// 405: a method the route does not accept.
    MethodNotAllowed,
    /// 409: an admin handoff/resume on a disconnected organization.
    IntegrationDisconnected,
    /// 410: a webhook for a disconnected organization; same name as
    /// [`Code::IntegrationDisconnected`], the webhook URL is gone.
    IntegrationGone,
    /// 413: a request body over the limit.
    PayloadTooLarge,
    /// 415: a body that is not sent as JSON.
    UnsupportedMediaType,
    /// 422: a well-formed request with an invalid value (e.g. an empty org name).
    InvalidRequest,
    /// 422: settings that do not match their shape or rules.
    InvalidSettings,
    /// 422: a Freshdesk domain outside the allowed suffixes.
    InvalidDomain,
    /// 422: Freshdesk refused the API key (or none was given).
    InvalidCredentials,
    /// 422: the API key's agent is not a Freshdesk admin.
    NotAdmin,
    /// 422: the configured group does not exist in Freshdesk.
    GroupNotFound,
    /// 422: the configured agent does not exist in Freshdesk.
    AgentNotFound,
    /// 422: the configured marker field does not exist in Freshdesk.
    MarkerFieldNotFound,
    /// 500: anything unexpected; the cause is logged, never answered.
    InternalError,
    /// 502: Freshdesk could not be reached.
    FreshdeskUnreachable,
    /// 503: storage recovery is still running (`/readyz`).
    NotReady,
    /// 503: the webhook (or the store) cannot be made durable.
    StorageUnavailable,
    /// 503: an admin command is queued but not applied in time.
    CommandPending,
    /// 409: a setup self-test already runs for the organization.
    SelfTestRunning,
    /// 404: no setup self-test ever ran for the organization.
    SelfTestNotRun,
}

impl Code {
    /// Every code, in the order of the enum.
    pub const ALL: [Code; 32] = [
        Code::BadRequest,
        Code::InvalidJson,
        Code::InvalidQuery,
        Code::InvalidCursor,
        Code::InvalidPayload,
        Code::Unauthorized,
        Code::InvalidToken,
        Code::NotFound,
        Code::OrgNotFound,
        Code::SessionNotFound,
        Code::NotConnected,
        Code::TokenNotFound,
        Code::MethodNotAllowed,
        Code::IntegrationDisconnected,
        Code::IntegrationGone,
        Code::PayloadTooLarge,
        Code::UnsupportedMediaType,
        Code::InvalidRequest,
        Code::InvalidSettings,
        Code::InvalidDomain,
        Code::InvalidCredentials,
        Code::NotAdmin,
        Code::GroupNotFound,
        Code::AgentNotFound,
        Code::MarkerFieldNotFound,
        Code::InternalError,
        Code::FreshdeskUnreachable,
        Code::NotReady,
        Code::StorageUnavailable,
        Code::CommandPending,
        Code::SelfTestRunning,
        Code::SelfTestNotRun,
    ];

    /// The snake_case name the API answers.
    pub const fn name(self) -> &'static str {
        match self {
            Code::BadRequest => "bad_request",
            Code::InvalidJson => "invalid_json",
            Code::InvalidQuery => "invalid_query",
            Code::InvalidCursor => "invalid_cursor",
            Code::InvalidPayload => "invalid_payload",
            Code::Unauthorized => "unauthorized",
            Code::InvalidToken => "invalid_token",
            Code::NotFound => "not_found",
            Code::OrgNotFound => "org_not_found",
            Code::SessionNotFound => "session_not_found",
            Code::NotConnected => "not_connected",
            Code::TokenNotFound => "token_not_found",
            Code::MethodNotAllowed => "method_not_allowed",
            Code::IntegrationDisconnected | Code::IntegrationGone => "integration_disconnected",
            Code::PayloadTooLarge => "payload_too_large",
            Code::UnsupportedMediaType => "unsupported_media_type",
            Code::InvalidRequest => "invalid_request",
            Code::InvalidSettings => "invalid_settings",
            Code::InvalidDomain => "invalid_domain",
            Code::InvalidCredentials => "invalid_credentials",
            Code::NotAdmin => "not_admin",
            Code::GroupNotFound => "group_not_found",
            Code::AgentNotFound => "agent_not_found",
            Code::MarkerFieldNotFound => "marker_field_not_found",
            Code::InternalError => "internal_error",
            Code::FreshdeskUnreachable => "freshdesk_unreachable",
            Code::NotReady => "not_ready",
            Code::StorageUnavailable => "storage_unavailable",
            Code::CommandPending => "command_pending",
            Code::SelfTestRunning => "self_test_running",
            Code::SelfTestNotRun => "self_test_not_run",
        }
    }

    /// The HTTP status the code answers with.
    pub fn status(self) -> StatusCode {
        match self {
            Code::BadRequest
            | Code::InvalidJson
            | Code::InvalidQuery
            | Code::InvalidCursor
            | Code::InvalidPayload => StatusCode::BAD_REQUEST,
            Code::Unauthorized | Code::InvalidToken => StatusCode::UNAUTHORIZED,
            Code::NotFound
            | Code::OrgNotFound
            | Code::SessionNotFound
            | Code::NotConnected
            | Code::TokenNotFound
            | Code::SelfTestNotRun => StatusCode::NOT_FOUND,
            Code::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Code::IntegrationDisconnected | Code::SelfTestRunning => StatusCode::CONFLICT,
            Code::IntegrationGone => StatusCode::GONE,
            Code::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Code::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Code::InvalidRequest
            | Code::InvalidSettings
            | Code::InvalidDomain
            | Code::InvalidCredentials
            | Code::NotAdmin
            | Code::GroupNotFound
            | Code::AgentNotFound
            | Code::MarkerFieldNotFound => StatusCode::UNPROCESSABLE_ENTITY,
            Code::InternalError => StatusCode::INTERNAL_SERVER_ERROR,
            Code::FreshdeskUnreachable => StatusCode::BAD_GATEWAY,
            Code::NotReady | Code::StorageUnavailable | Code::CommandPending => {
                StatusCode::SERVICE_UNAVAILABLE
            }
        }
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The one error shape every error answer has: `{"error": {"code", "message"}}`.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

/// What went wrong: a stable snake_case code (per operation, the document lists the codes it
/// can answer) and a sentence for people.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct ErrorDetail {
    pub code: &'static str,
    pub message: String,
}

/// An error as the API reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: Code,
    pub message: String,
}

impl ApiError {
    /// An error with its code (which gives the status) and a human sentence.
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        Self {
            status: code.status(),
            code,
            message: message.into(),
        }
    }

    /// 500 `internal_error`. The cause is logged here, once; the response says nothing of it.
    pub fn internal(cause: &dyn std::error::Error) -> Self {
        tracing::error!(error = %error_chain(cause), "request failed");
        Self::new(
            Code::InternalError,
            "Something went wrong on our side; the request was not applied.",
        )
    }
}

/// `cause: source: source…` on one line.
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.message, self.code)
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        HttpResponse::build(self.status).json(ErrorBody {
            error: ErrorDetail {
                code: self.code.name(),
                message: self.message.clone(),
            },
        })
    }
}

/// JSON body errors: too large → 413 `payload_too_large`, otherwise 400 `invalid_json`.
pub fn json_error_handler(
    err: actix_web::error::JsonPayloadError,
    _req: &HttpRequest,
) -> actix_web::Error {
    use actix_web::error::JsonPayloadError as E;
    let api = match &err {
        E::OverflowKnownLength { .. } | E::Overflow { .. } => payload_too_large(),
        E::ContentType => ApiError::new(
            Code::UnsupportedMediaType,
            "Send the body as JSON with Content-Type: application/json.",
        ),
        E::Deserialize(e) => ApiError::new(
            Code::InvalidJson,
            format!("The body is not valid JSON: {e}."),
        ),
        other => ApiError::new(
            Code::InvalidJson,
            format!("The body could not be read: {other}."),
        ),
    };
    api.into()
}

/// A JSON body that must be an object, read into `T`: what `web::Json<T>` reads, except that
/// serde would also read a struct from an array of its fields in order (`["Acme"]` as
/// `{"name": "Acme"}`), which the documented bodies are not. Errors as `web::Json`'s:
/// 400 `invalid_json`, 413, 415.
pub struct JsonObject<T>(pub T);

impl<T> std::ops::Deref for JsonObject<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T: serde::de::DeserializeOwned + 'static> actix_web::FromRequest for JsonObject<T> {
    type Error = actix_web::Error;
    type Future =
        std::pin::Pin<Box<dyn std::future::Future<Output = Result<Self, actix_web::Error>>>>;

    fn from_request(req: &HttpRequest, payload: &mut actix_web::dev::Payload) -> Self::Future {
        let object =
            actix_web::web::Json::<serde_json::Map<String, serde_json::Value>>::from_request(
                req, payload,
            );
        Box::pin(async move {
            let object = object.await?.into_inner();
            Ok(JsonObject(object_into(object)?))
        })
    }
}

/// A JSON object read into `T`; a mismatch is 400 `invalid_json`, worded like
/// [`json_error_handler`]'s.
pub fn object_into<T: serde::de::DeserializeOwned>(
    object: serde_json::Map<String, serde_json::Value>,
) -> Result<T, ApiError> {
    serde_json::from_value(serde_json::Value::Object(object)).map_err(|e| {
        ApiError::new(
            Code::InvalidJson,
            format!("The body is not valid JSON: {e}."),
        )
    })
}

/// 413 `payload_too_large`.
pub fn payload_too_large() -> ApiError {
    ApiError::new(Code::PayloadTooLarge, "The request body is too large.")
}

/// Path segments that do not parse (e.g. an org id that is not a UUID).
pub fn path_error_handler(
    err: actix_web::error::PathError,
    _req: &HttpRequest,
) -> actix_web::Error {
    ApiError::new(Code::NotFound, format!("No such resource: {err}.")).into()
}

/// Query strings that do not parse.
pub fn query_error_handler(
    err: actix_web::error::QueryPayloadError,
    _req: &HttpRequest,
) -> actix_web::Error {
    ApiError::new(
        Code::InvalidQuery,
        format!("The query string is invalid: {err}."),
    )
    .into()
}

/// The ticket id of a `…/tickets/{ticket_id}/…` path; out of range (see
/// [`ticketsync_actors::TicketId::from_number`]) it is no resource, like a segment that does
/// not parse: 404 `not_found`.
pub fn ticket_in_path(n: u64) -> Result<ticketsync_actors::TicketId, ApiError> {
    ticketsync_actors::TicketId::from_number(n).ok_or_else(|| {
        ApiError::new(
            Code::NotFound,
            format!(
                "No such resource: ticket ids are 1 to {}.",
                ticketsync_actors::TicketId::MAX
            ),
        )
    })
}

/// 404 `not_found` for a route that does not exist, or that the caller may not know exists
/// (an org admin asking for an operator-only route).
pub fn no_endpoint(method: &actix_web::http::Method, path: &str) -> ApiError {
    ApiError::new(
        Code::NotFound,
        format!("There is no endpoint {method} {path}."),
    )
}

/// The one code table of the connect flow.
impl From<crate::connect::ConnectError> for ApiError {
    fn from(err: crate::connect::ConnectError) -> Self {
        use crate::connect::ConnectError as E;
        let message = err.to_string();
        let code = match err {
            E::InvalidDomain(_) => Code::InvalidDomain,
            E::InvalidCredentials | E::MissingApiKey => Code::InvalidCredentials,
            E::NotAdmin => Code::NotAdmin,
            E::Unreachable { .. } => Code::FreshdeskUnreachable,
            E::InvalidSettings(_) => Code::InvalidSettings,
            E::GroupNotFound(_) => Code::GroupNotFound,
            E::AgentNotFound(_) => Code::AgentNotFound,
            E::MarkerFieldNotFound(_) => Code::MarkerFieldNotFound,
            E::OrgNotFound => Code::OrgNotFound,
            E::NotConnected => Code::NotConnected,
            E::Store(e) => return Self::internal(&e),
        };
        Self::new(code, message)
    }
}

impl From<crate::selftest::SelfTestError> for ApiError {
    fn from(err: crate::selftest::SelfTestError) -> Self {
        use crate::selftest::SelfTestError as E;
        let message = err.to_string();
        match err {
            E::Running => Self::new(Code::SelfTestRunning, message),
            E::Disconnected => Self::new(Code::IntegrationDisconnected, message),
            E::Connect(e) => e.into(),
            E::Store(e) => e.into(),
        }
    }
}

impl From<crate::store::StoreError> for ApiError {
    /// A database that cannot be reached, or whose connections are all busy, is 503 (retry
    /// later: a webhook is retried by Freshdesk), anything else 500.
    fn from(err: crate::store::StoreError) -> Self {
        use crate::store::{postgres::PgError, StoreError};
        match &err {
            StoreError::Postgres(PgError::Unavailable(_) | PgError::Busy(_)) => {
                tracing::error!(error = %error_chain(&err), "request failed: the database is unavailable");
                Self::new(
                    Code::StorageUnavailable,
                    "The database is unavailable; nothing was stored. Retry later.",
                )
            }
            _ => Self::internal(&err),
        }
    }
}

/// Last line of defence for the error shape: an error response produced outside our handlers
/// (an extractor's default, actix's own 404/405/413) is rewritten into
/// `{"error": {"code", "message"}}`. Responses that are already JSON, and the console's HTML
/// pages, pass untouched.
pub async fn ensure_error_shape(
    req: actix_web::dev::ServiceRequest,
    next: actix_web::middleware::Next<impl actix_web::body::MessageBody + 'static>,
) -> Result<actix_web::dev::ServiceResponse<actix_web::body::BoxBody>, actix_web::Error> {
    let res = next.call(req).await?;
    let status = res.status();
    let shaped = res
        .headers()
        .get(actix_web::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json") || v.starts_with("text/html"));
    if !(status.is_client_error() || status.is_server_error()) || shaped {
        return Ok(res.map_into_boxed_body());
    }
    let (code, message) = match status.as_u16() {
        400 => (Code::BadRequest, "The request is malformed."),
        401 => (Code::Unauthorized, "Authentication is required."),
        404 => (Code::NotFound, "There is no such resource."),
        405 => (Code::MethodNotAllowed, "This method is not allowed here."),
        413 => (Code::PayloadTooLarge, "The request body is too large."),
        415 => (
            Code::UnsupportedMediaType,
            "Send the body as JSON with Content-Type: application/json.",
        ),
        s if s >= 500 => (
            Code::InternalError,
            "Something went wrong on our side; the request was not applied.",
        ),
        _ => (Code::BadRequest, "The request could not be processed."),
    };
    let (req, _) = res.into_parts();
    // The status stays actix's own (e.g. a 403 or a 502); only the body is rewritten.
    let body = ApiError {
        status,
        ..ApiError::new(code, message)
    }
    .error_response();
    Ok(actix_web::dev::ServiceResponse::new(req, body))
}

#[cfg(test)]
mod tests {
    use super::*;

    const DECISIONS: &str = include_str!("../../docs/decisions.md");
    const CONTRACT: &str = include_str!("../../docs/contract.md");

    /// The backticked snake_case names of the "Error codes beyond the contract" bullet.
    fn codes_beyond_spec() -> Vec<&'static str> {
        let start = DECISIONS
            .find("- **Error codes beyond the contract:**")
            .expect("docs/decisions.md has the error-code bullet");
        let rest = &DECISIONS[start + 2..];
        let bullet = &rest[..rest.find("\n- ").unwrap_or(rest.len())];
        bullet
            .split('`')
            .skip(1)
            .step_by(2)
            .filter(|name| {
                !name.is_empty() && name.chars().all(|c| c.is_ascii_lowercase() || c == '_')
            })
            .collect()
    }

    #[test]
    fn every_code_is_documented() {
        for code in Code::ALL {
            let quoted = format!("`{}`", code.name());
            assert!(
                DECISIONS.contains(&quoted) || CONTRACT.contains(&quoted),
                "{quoted} is in neither docs/contract.md nor docs/decisions.md"
            );
        }
    }

    #[test]
    fn every_documented_code_is_a_variant() {
        let listed = codes_beyond_spec();
        assert!(listed.len() >= 10, "the bullet was not parsed: {listed:?}");
        for name in listed {
            assert!(
                Code::ALL.iter().any(|c| c.name() == name),
                "`{name}` is listed in docs/decisions.md but is no Code"
            );
        }
    }

    #[test]
    fn the_table_lists_each_variant_once_with_an_error_status() {
        for (i, code) in Code::ALL.iter().enumerate() {
            assert!(!Code::ALL[..i].contains(code), "{code:?} twice");
            assert!(
                code.status().is_client_error() || code.status().is_server_error(),
                "{code:?}"
            );
        }
        // The one name with two statuses: the webhook URL is gone, an admin command conflicts.
        assert_eq!(Code::IntegrationGone.status(), StatusCode::GONE);
        assert_eq!(Code::IntegrationDisconnected.status(), StatusCode::CONFLICT);
    }

    #[actix_web::test]
    async fn the_error_shape_is_unchanged() {
        let res = ApiError::new(Code::OrgNotFound, "No organization has this id.").error_response();
        assert_eq!(res.status(), StatusCode::NOT_FOUND);
        let body = actix_web::body::to_bytes(res.into_body()).await.unwrap();
        assert_eq!(
            &body[..],
            br#"{"error":{"code":"org_not_found","message":"No organization has this id."}}"#
        );
    }
}
