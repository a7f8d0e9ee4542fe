//! `/api/v1/orgs/{org_id}/tokens`: the operator creates, lists and revokes org admin tokens
//! (contract §12). Operator only: `auth::require_admin` answers an org admin 404 before these
//! handlers run. The token text is in the creation response and nowhere else.

use super::error::{ApiError, Code};
use super::orgs::org_not_found;
use crate::access::{TokenError, TokenId};
use crate::http::state::AppState;
use actix_web::{delete, get, post, web, HttpResponse};
use secrecy::ExposeSecret;
use serde::Deserialize;
use serde_json::json;
use ticketsync_actors::OrgId;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateToken {
    name: String,
}

#[post("/orgs/{org_id}/tokens")]
async fn create(
    state: web::Data<AppState>,
    org_id: web::Path<OrgId>,
    body: web::Json<CreateToken>,
) -> Result<HttpResponse, ApiError> {
    let (view, token) = state.access.create_token(*org_id, &body.name).await?;
    let mut body = serde_json::to_value(view).expect("a token view serialises");
    body["token"] = json!(token.expose_secret());
    Ok(HttpResponse::Created().json(body))
}

#[get("/orgs/{org_id}/tokens")]
async fn list(
    state: web::Data<AppState>,
    org_id: web::Path<OrgId>,
) -> Result<HttpResponse, ApiError> {
    state.store.org(*org_id).await?.ok_or_else(org_not_found)?;
    Ok(HttpResponse::Ok().json(json!({"items": state.access.tokens(*org_id).await?})))
}

#[delete("/orgs/{org_id}/tokens/{token_id}")]
async fn revoke(
    state: web::Data<AppState>,
    path: web::Path<(OrgId, uuid::Uuid)>,
) -> Result<HttpResponse, ApiError> {
    let (org, token) = path.into_inner();
    state.store.org(org).await?.ok_or_else(org_not_found)?;
    if !state.access.revoke_token(org, TokenId(token)).await? {
        return Err(ApiError::new(
            Code::TokenNotFound,
            "This organization has no admin token with this id.",
        ));
    }
    Ok(HttpResponse::NoContent().finish())
}

impl From<TokenError> for ApiError {
    fn from(err: TokenError) -> Self {
        match err {
            TokenError::InvalidName => Self::new(Code::InvalidRequest, err.to_string()),
            TokenError::OrgNotFound => org_not_found(),
            TokenError::Store(e) => e.into(),
        }
    }
}

/// Register the token routes (inside the admin scope).
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(create).service(list).service(revoke);
}
