//! Bearer-token guard for the admin, inspection and metrics surface.

use super::error::{ApiError, Code};
use crate::secrets::token_matches;
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::web;
use secrecy::SecretString;

/// The admin token, shared with the middleware through app data.
#[derive(Clone)]
pub struct AdminToken(pub SecretString);

/// Refuse the request with 401 `unauthorized` unless it carries `Authorization: Bearer <admin token>`.
pub async fn require_admin(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let expected = req.app_data::<web::Data<AdminToken>>().map(|t| t.0.clone());
    let presented = req
        .headers()
        .get(actix_web::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    match (presented, expected) {
        (Some(presented), Some(expected)) if token_matches(presented, &expected) => {
            next.call(req).await
        }
        _ => Err(ApiError::new(
            Code::Unauthorized,
            "Send the admin token as 'Authorization: Bearer <token>'.",
        )
        .into()),
    }
}
