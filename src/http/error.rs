//! The API's one error shape, `{"error": {"code", "message"}}`, and the extractor error
//! handlers that make malformed JSON, paths and queries answer in it too.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, ResponseError};
use serde_json::json;
use std::fmt;

/// An error as the API reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

impl ApiError {
    /// An error with a status, a snake_case code and a human sentence.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }

    /// 400 with a code.
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    /// 404 with a code.
    pub fn not_found(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, code, message)
    }

    /// 422 with a code.
    pub fn unprocessable(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, code, message)
    }

    /// 500 `internal_error`. The cause is logged here, once; the response says nothing of it.
    pub fn internal(cause: &dyn std::error::Error) -> Self {
        tracing::error!(error = %error_chain(cause), "request failed");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
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
        HttpResponse::build(self.status)
            .json(json!({"error": {"code": self.code, "message": self.message}}))
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
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "Send the body as JSON with Content-Type: application/json.",
        ),
        E::Deserialize(e) => {
            ApiError::bad_request("invalid_json", format!("The body is not valid JSON: {e}."))
        }
        other => ApiError::bad_request(
            "invalid_json",
            format!("The body could not be read: {other}."),
        ),
    };
    api.into()
}

/// 413 `payload_too_large`.
pub fn payload_too_large() -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
        "The request body is too large.",
    )
}

/// Path segments that do not parse (e.g. an org id that is not a UUID).
pub fn path_error_handler(
    err: actix_web::error::PathError,
    _req: &HttpRequest,
) -> actix_web::Error {
    ApiError::not_found("not_found", format!("No such resource: {err}.")).into()
}

/// Query strings that do not parse.
pub fn query_error_handler(
    err: actix_web::error::QueryPayloadError,
    _req: &HttpRequest,
) -> actix_web::Error {
    ApiError::bad_request(
        "invalid_query",
        format!("The query string is invalid: {err}."),
    )
    .into()
}

/// Unknown routes and methods.
pub async fn route_not_found(req: HttpRequest) -> Result<HttpResponse, ApiError> {
    Err(ApiError::not_found(
        "not_found",
        format!("There is no endpoint {} {}.", req.method(), req.path()),
    ))
}

/// The one code table of the connect flow.
impl From<crate::connect::ConnectError> for ApiError {
    fn from(err: crate::connect::ConnectError) -> Self {
        use crate::connect::ConnectError as E;
        let message = err.to_string();
        match err {
            E::InvalidDomain(_) => Self::unprocessable("invalid_domain", message),
            E::InvalidCredentials | E::MissingApiKey => {
                Self::unprocessable("invalid_credentials", message)
            }
            E::NotAdmin => Self::unprocessable("not_admin", message),
            E::Unreachable { .. } => {
                Self::new(StatusCode::BAD_GATEWAY, "freshdesk_unreachable", message)
            }
            E::InvalidSettings(_) => Self::unprocessable("invalid_settings", message),
            E::GroupNotFound(_) => Self::unprocessable("group_not_found", message),
            E::AgentNotFound(_) => Self::unprocessable("agent_not_found", message),
            E::MarkerFieldNotFound(_) => Self::unprocessable("marker_field_not_found", message),
            E::OrgNotFound => Self::not_found("org_not_found", message),
            E::NotConnected => Self::not_found("not_connected", message),
            E::Store(e) => Self::internal(&e),
        }
    }
}

impl From<crate::store::StoreError> for ApiError {
    fn from(err: crate::store::StoreError) -> Self {
        Self::internal(&err)
    }
}

/// Last line of defence for the error shape: an error response produced outside our handlers
/// (an extractor's default, actix's own 404/405/413) is rewritten into
/// `{"error": {"code", "message"}}`. Responses that are already JSON pass untouched.
pub async fn ensure_error_shape(
    req: actix_web::dev::ServiceRequest,
    next: actix_web::middleware::Next<impl actix_web::body::MessageBody + 'static>,
) -> Result<actix_web::dev::ServiceResponse<actix_web::body::BoxBody>, actix_web::Error> {
    let res = next.call(req).await?;
    let status = res.status();
    let is_json = res
        .headers()
        .get(actix_web::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return Ok(res.map_into_boxed_body());
    }
    let (code, message) = match status.as_u16() {
        400 => ("bad_request", "The request is malformed."),
        401 => ("unauthorized", "Authentication is required."),
        404 => ("not_found", "There is no such resource."),
        405 => ("method_not_allowed", "This method is not allowed here."),
        413 => ("payload_too_large", "The request body is too large."),
        415 => (
            "unsupported_media_type",
            "Send the body as JSON with Content-Type: application/json.",
        ),
        s if s >= 500 => (
            "internal_error",
            "Something went wrong on our side; the request was not applied.",
        ),
        _ => ("bad_request", "The request could not be processed."),
    };
    let (req, _) = res.into_parts();
    let body = ApiError::new(status, code, message).error_response();
    Ok(actix_web::dev::ServiceResponse::new(req, body))
}
