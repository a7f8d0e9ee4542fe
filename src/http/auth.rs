//! Bearer-token guard for the admin, inspection and metrics surface: the token names a
//! `Principal` (`crate::access`), which handlers read from the request's extensions.
//!
//! It also scopes org admins, here rather than in each handler: an org admin asking for
//! another org's `/api/v1/orgs/{id}/…` gets 404 `org_not_found`, and an operator-only route
//! (creating, deleting orgs, their tokens, engine inspection, metrics) answers it 404 as if
//! the route did not exist — never 403, which would say that there is something to refuse.

use super::error::{no_endpoint, ApiError, Code};
use crate::access::Principal;
use crate::http::state::AppState;
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::Method;
use actix_web::middleware::Next;
use actix_web::{web, HttpMessage};
use ticketsync_actors::OrgId;

/// Refuse the request with 401 `unauthorized` unless it carries `Authorization: Bearer <token>`
/// for the operator or an org admin; refuse an org admin what is not its own (404); otherwise
/// put the `Principal` in the request extensions.
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
    let Some(principal) = principal else {
        return Err(ApiError::new(
            Code::Unauthorized,
            "Send the admin token as 'Authorization: Bearer <token>'.",
        )
        .into());
    };
    // The path as the router matches it (percent-encoding of unreserved characters undone),
    // so that `/api/v1/%6Frgs/…` is scoped like `/api/v1/orgs/…`; answers echo the raw path,
    // as the unknown-route answer does.
    refuse_outside_scope(
        &principal,
        req.method(),
        req.match_info().as_str(),
        req.path(),
    )?;
    req.extensions_mut().insert::<Principal>(principal);
    next.call(req).await
}

/// What `principal` may not reach of `method routed` (the path as the router matches it;
/// `raw` as it was sent), as the 404 it answers.
fn refuse_outside_scope(
    principal: &Principal,
    method: &Method,
    routed: &str,
    raw: &str,
) -> Result<(), ApiError> {
    if principal.is_operator() {
        return Ok(());
    }
    if operator_only(method, routed) {
        return Err(no_endpoint(method, raw));
    }
    match path_org(routed) {
        Some(org) if !principal.may_access(org) => Err(super::orgs::org_not_found()),
        _ => Ok(()),
    }
}

/// The routes only the operator has: creating and deleting orgs, org admin tokens, engine
/// inspection and metrics.
fn operator_only(method: &Method, path: &str) -> bool {
    if path == "/metrics" {
        return true;
    }
    let Some(rest) = path.strip_prefix("/api/v1/") else {
        return false;
    };
    let segments: Vec<&str> = rest.split('/').collect();
    match segments.as_slice() {
        ["inspect", ..] => true,
        ["orgs"] => method == Method::POST,
        ["orgs", _] => method == Method::DELETE,
        ["orgs", _, "tokens", ..] => true,
        _ => false,
    }
}

/// The org a `/api/v1/orgs/{id}/…` path names, when its id parses (a malformed one keeps
/// the route's own answer).
fn path_org(path: &str) -> Option<OrgId> {
    let rest = path.strip_prefix("/api/v1/orgs/")?;
    let id = rest.split('/').next()?;
    uuid::Uuid::parse_str(id).ok().map(OrgId)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::access::TokenId;

    #[test]
    fn an_org_admin_reaches_only_its_own_org_and_no_operator_route() {
        let own = OrgId::new();
        let other = OrgId::new();
        let admin = Principal::OrgAdmin {
            org: own,
            token: TokenId(uuid::Uuid::new_v4()),
        };
        let allowed = [
            (Method::GET, "/api/v1/orgs".to_string()),
            (Method::GET, format!("/api/v1/orgs/{own}")),
            (Method::PUT, format!("/api/v1/orgs/{own}/freshdesk")),
            (Method::GET, format!("/api/v1/orgs/{own}/sessions")),
            (Method::GET, "/api/v1/orgs/not-a-uuid/sessions".to_string()),
        ];
        for (method, path) in &allowed {
            assert_eq!(
                refuse_outside_scope(&admin, method, path, path),
                Ok(()),
                "{path}"
            );
            assert_eq!(
                refuse_outside_scope(&Principal::Operator, method, path, path),
                Ok(())
            );
        }
        let refused = [
            (
                Method::GET,
                format!("/api/v1/orgs/{other}"),
                "org_not_found",
            ),
            (
                Method::GET,
                format!("/api/v1/orgs/{other}/sessions"),
                "org_not_found",
            ),
            (Method::POST, "/api/v1/orgs".to_string(), "not_found"),
            (Method::DELETE, format!("/api/v1/orgs/{own}"), "not_found"),
            (
                Method::GET,
                format!("/api/v1/orgs/{own}/tokens"),
                "not_found",
            ),
            (Method::GET, "/api/v1/inspect".to_string(), "not_found"),
            (Method::GET, "/metrics".to_string(), "not_found"),
        ];
        for (method, path, code) in &refused {
            let error = refuse_outside_scope(&admin, method, path, path).unwrap_err();
            assert_eq!(error.code.name(), *code, "{method} {path}");
            assert_eq!(error.status.as_u16(), 404);
            assert_eq!(
                refuse_outside_scope(&Principal::Operator, method, path, path),
                Ok(())
            );
        }
    }
}
