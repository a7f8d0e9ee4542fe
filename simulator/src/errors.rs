//! Freshdesk's error answers, byte for byte where it matters to a client.
//!
//! Every `/api/v2` failure is an [`ApiError`]; it knows its status code and its Freshdesk body
//! (validation errors, `{code, message}` errors, and the empty 404 body).

use actix_web::http::StatusCode;
use serde::Serialize;
use serde_json::{json, Value};

/// One entry of a 400 `Validation failed` answer.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub(crate) struct FieldError {
    pub field: String,
    pub message: String,
    pub code: &'static str,
}

impl FieldError {
    pub fn new(field: impl Into<String>, code: &'static str, message: impl Into<String>) -> Self {
        FieldError {
            field: field.into(),
            message: message.into(),
            code,
        }
    }

    /// `invalid_value`: the value has the right type but is not acceptable.
    pub fn invalid_value(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::new(field, "invalid_value", message)
    }

    /// `invalid_field`: the key is not known for this resource.
    pub fn invalid_field(field: impl Into<String>) -> Self {
        Self::new(
            field,
            "invalid_field",
            "Unexpected/invalid field in request",
        )
    }

    /// `missing_field`: a mandatory key is absent.
    pub fn missing_field(field: impl Into<String>) -> Self {
        Self::new(field, "missing_field", "It should be a/an String")
    }

    /// `datatype_mismatch`: the value has the wrong JSON type.
    pub fn datatype_mismatch(field: impl Into<String>, expected: &str, got: &Value) -> Self {
        let got = match got {
            Value::Null => "Null",
            Value::Bool(_) => "Boolean",
            Value::Number(_) => "Number",
            Value::String(_) => "String",
            Value::Array(_) => "Array",
            Value::Object(_) => "key/value pair",
        };
        Self::new(
            field,
            "datatype_mismatch",
            format!("Value set is of type {got}.It should be a/an {expected}"),
        )
    }
}

/// A failed `/api/v2` call.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum ApiError {
    /// 400 `Validation failed` with field errors.
    Validation(Vec<FieldError>),
    /// 400: the body is not a JSON object.
    InvalidJson,
    /// 401 `invalid_credentials`.
    InvalidCredentials,
    /// 403 `access_denied`.
    AccessDenied,
    /// 404 with an empty body.
    NotFound,
    /// 405 with the allowed methods.
    MethodNotAllowed {
        method: String,
        allowed: &'static str,
    },
    /// 429 with `Retry-After`.
    RateLimited { retry_after_secs: u64 },
    /// 500 or 503 injected by a fault.
    Unavailable(u16),
    /// 504 injected by the timeout fault.
    GatewayTimeout,
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Validation(_) | ApiError::InvalidJson => StatusCode::BAD_REQUEST,
            ApiError::InvalidCredentials => StatusCode::UNAUTHORIZED,
            ApiError::AccessDenied => StatusCode::FORBIDDEN,
            ApiError::NotFound => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Unavailable(code) => {
                StatusCode::from_u16(*code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
            }
            ApiError::GatewayTimeout => StatusCode::GATEWAY_TIMEOUT,
        }
    }

    /// The JSON body; `None` for the empty 404.
    pub fn body(&self) -> Option<Value> {
        match self {
            ApiError::Validation(errors) => Some(json!({
                "description": "Validation failed",
                "errors": errors,
            })),
            ApiError::InvalidJson => Some(json!({
                "description": "Validation failed",
                "errors": [{"code": "invalid_json", "message": "Request body has invalid json format"}],
            })),
            ApiError::InvalidCredentials => Some(json!({
                "code": "invalid_credentials",
                "message": "You have to be logged in to perform this action.",
            })),
            ApiError::AccessDenied => Some(json!({
                "code": "access_denied",
                "message": "You are not authorized to perform this action.",
            })),
            ApiError::NotFound => None,
            ApiError::MethodNotAllowed { method, allowed } => Some(json!({
                "message": format!("{method} method is not allowed. It should be one of these method(s): {allowed}"),
            })),
            ApiError::RateLimited { .. } => Some(json!({
                "message": "You have exceeded the limit of requests per minute",
            })),
            ApiError::Unavailable(503) => Some(json!({
                "code": "service_unavailable",
                "message": "The server is temporarily unable to handle the request. Please try again later.",
            })),
            ApiError::Unavailable(_) => Some(json!({
                "code": "internal_error",
                "message": "We're sorry, but something went wrong.",
            })),
            ApiError::GatewayTimeout => Some(json!({
                "code": "gateway_timeout",
                "message": "The request timed out.",
            })),
        }
    }
}
