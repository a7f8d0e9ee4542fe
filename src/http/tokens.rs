//! `/api/v1/orgs/{org_id}/tokens`: the operator creates, lists and revokes org admin tokens
//! (contract §12). Operator only: `auth::require_admin` answers an org admin 404 before these
//! handlers run. The token text is in the creation response and nowhere else.

use super::error::{ApiError, Code};
use super::orgs::org_not_found;
use crate::access::{TokenError, TokenId, TokenView};
use crate::http::state::AppState;
use actix_web::{delete, get, post, web, HttpResponse};
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use ticketsync_actors::OrgId;

/// The body of `POST …/tokens`.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateToken {
    /// 1 to 100 characters once trimmed.
    #[schema(schema_with = name_schema)]
    name: String,
}

fn name_schema() -> utoipa::openapi::Object {
    super::openapi::trimmed_name(crate::access::MAX_TOKEN_NAME_CHARS)
}

/// A new token: its view, and the token text, shown this once.
#[derive(Serialize, utoipa::ToSchema)]
pub struct CreatedToken {
    #[serde(flatten)]
    pub view: TokenView,
    /// The bearer token for the org admin; never shown again.
    pub token: String,
}

/// The organization's tokens (never their text).
#[derive(Serialize, utoipa::ToSchema)]
pub struct TokenList {
    pub items: Vec<TokenView>,
}

/// Create an org admin token (operator only).
#[utoipa::path(post, path = "/orgs/{org_id}/tokens", context_path = "/api/v1", tag = "tokens", operation_id = "create_token",
    params(("org_id" = uuid::Uuid, Path, description = "The organization's id.")), request_body = CreateToken, security(("bearerAuth" = [])),
    responses((status = 201, description = "The token, with its text shown this once.", body = CreatedToken)))]
#[post("/orgs/{org_id}/tokens")]
pub(super) async fn create(
    state: web::Data<AppState>,
    org_id: web::Path<OrgId>,
    body: super::error::JsonObject<CreateToken>,
) -> Result<HttpResponse, ApiError> {
    let (view, token) = state.access.create_token(*org_id, &body.name).await?;
    Ok(HttpResponse::Created().json(CreatedToken {
        view,
        token: token.expose_secret().to_string(),
    }))
}

/// List the organization's admin tokens (operator only).
#[utoipa::path(get, path = "/orgs/{org_id}/tokens", context_path = "/api/v1", tag = "tokens", operation_id = "list_tokens",
    params(("org_id" = uuid::Uuid, Path, description = "The organization's id.")), security(("bearerAuth" = [])),
    responses((status = 200, description = "The tokens.", body = TokenList)))]
#[get("/orgs/{org_id}/tokens")]
pub(super) async fn list(
    state: web::Data<AppState>,
    org_id: web::Path<OrgId>,
) -> Result<HttpResponse, ApiError> {
    state.store.org(*org_id).await?.ok_or_else(org_not_found)?;
    Ok(HttpResponse::Ok().json(TokenList {
        items: state.access.tokens(*org_id).await?,
    }))
}

/// Revoke an org admin token (operator only).
#[utoipa::path(delete, path = "/orgs/{org_id}/tokens/{token_id}", context_path = "/api/v1", tag = "tokens", operation_id = "revoke_token",
    params(("org_id" = uuid::Uuid, Path, description = "The organization's id."), ("token_id" = uuid::Uuid, Path, description = "The token's id.")), security(("bearerAuth" = [])),
    responses((status = 204, description = "Revoked.")))]
#[delete("/orgs/{org_id}/tokens/{token_id}")]
pub(super) async fn revoke(
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
