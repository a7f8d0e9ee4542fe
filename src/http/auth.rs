//! Bearer-token guard for the admin, inspection and metrics surface: the token names a
//! `Principal` (`crate::access`), which handlers read from the request's extensions.

use super::error::{ApiError, Code};
use crate::access::Principal;
use crate::http::state::AppState;
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{web, HttpMessage};

/// Refuse the request with 401 `unauthorized` unless it carries `Authorization: Bearer <token>`
/// for the operator or an org admin; otherwise put the `Principal` in the request extensions.
pub async fn require_admin(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let presented = req
        .headers()
        .get(actix_web::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    let principal = match (presented, req.app_data::<web::Data<AppState>>()) {
        (Some(presented), Some(state)) => state
            .access
            .authenticate(presented)
            .await
            .map_err(ApiError::from)?,
        _ => None,
    };
    match principal {
        Some(principal) => {
            req.extensions_mut().insert::<Principal>(principal);
            next.call(req).await
        }
        None => Err(ApiError::new(
            Code::Unauthorized,
            "Send the admin token as 'Authorization: Bearer <token>'.",
        )
        .into()),
    }
}
