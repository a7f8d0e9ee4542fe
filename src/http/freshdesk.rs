//! `/api/v1/orgs/{org_id}/freshdesk`: verify credentials, save, show and disconnect the
//! org's Freshdesk connection. The decisions live in `crate::connect`; the steps around a save
//! or a disconnect in `AppState`, which the console calls too.

use super::error::{ApiError, Code};
use crate::connect::{ConnectionView, SaveRequest};
use crate::http::state::AppState;
use actix_web::{delete, get, post, put, web, HttpResponse};
use serde::{Deserialize, Serialize};
use ticketsync_actors::org::AiAgent;
use ticketsync_actors::OrgId;

/// The body of `POST …/freshdesk/verify`: the credentials to check (nothing is stored).
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VerifyRequest {
    /// The Freshdesk domain (`acme.freshdesk.com`).
    #[serde(default)]
    domain: String,
    /// The AI agent's Freshdesk API key.
    #[serde(default)]
    #[schema(value_type = String)]
    api_key: secrecy::SecretString,
}

/// The agent the key belongs to.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Verified {
    pub agent: AiAgent,
}

/// The answer of a disconnect.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Disconnected {
    /// Always false.
    pub connected: bool,
}

/// Check Freshdesk credentials without saving them.
#[utoipa::path(post, path = "/orgs/{org_id}/freshdesk/verify", context_path = "/api/v1", tag = "freshdesk", operation_id = "verify_freshdesk",
    params(("org_id" = uuid::Uuid, Path, description = "The organization's id.")), request_body = VerifyRequest, security(("bearerAuth" = [])),
    responses((status = 200, description = "The credentials work; the agent they belong to.", body = Verified)))]
#[post("/orgs/{org_id}/freshdesk/verify")]
pub(super) async fn verify(
    state: web::Data<AppState>,
    org_id: web::Path<OrgId>,
    body: super::error::JsonObject<VerifyRequest>,
) -> Result<HttpResponse, ApiError> {
    use secrecy::ExposeSecret;
    state
        .store
        .org(*org_id)
        .await?
        .ok_or_else(super::orgs::org_not_found)?;
    let agent = state
        .connect
        .verify(&body.domain, body.api_key.expose_secret())
        .await?;
    Ok(HttpResponse::Ok().json(Verified { agent }))
}

/// Save (connect or update) the organization's Freshdesk connection.
#[utoipa::path(put, path = "/orgs/{org_id}/freshdesk", context_path = "/api/v1", tag = "freshdesk", operation_id = "save_freshdesk",
    params(("org_id" = uuid::Uuid, Path, description = "The organization's id.")), request_body = SaveRequest, security(("bearerAuth" = [])),
    responses((status = 200, description = "The saved connection.", body = ConnectionView)))]
#[put("/orgs/{org_id}/freshdesk")]
pub(super) async fn save(
    state: web::Data<AppState>,
    org_id: web::Path<OrgId>,
    body: web::Json<serde_json::Value>,
) -> Result<HttpResponse, ApiError> {
    // Syntax errors are 400 `invalid_json` (JsonConfig); a well-formed body that does not
    // match the settings shape is 422 `invalid_settings`.
    let value = body.into_inner();
    if !value.is_object() {
        return Err(ApiError::new(
            Code::InvalidSettings,
            "The settings must be a JSON object.",
        ));
    }
    let request: SaveRequest = serde_json::from_value(value)
        .map_err(|e| ApiError::new(Code::InvalidSettings, format!("Invalid settings: {e}.")))?;
    Ok(HttpResponse::Ok().json(state.save_connection(*org_id, request).await?))
}

/// Read the organization's Freshdesk connection (never the API key).
#[utoipa::path(get, path = "/orgs/{org_id}/freshdesk", context_path = "/api/v1", tag = "freshdesk", operation_id = "show_freshdesk",
    params(("org_id" = uuid::Uuid, Path, description = "The organization's id.")), security(("bearerAuth" = [])),
    responses((status = 200, description = "The connection.", body = ConnectionView)))]
#[get("/orgs/{org_id}/freshdesk")]
pub(super) async fn show(
    state: web::Data<AppState>,
    org_id: web::Path<OrgId>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(state.connection(*org_id).await?))
}

/// Disconnect Freshdesk: the engine stops writing for the organization; its records stay.
#[utoipa::path(delete, path = "/orgs/{org_id}/freshdesk", context_path = "/api/v1", tag = "freshdesk", operation_id = "disconnect_freshdesk",
    params(("org_id" = uuid::Uuid, Path, description = "The organization's id.")), security(("bearerAuth" = [])),
    responses((status = 200, description = "Disconnected.", body = Disconnected)))]
#[delete("/orgs/{org_id}/freshdesk")]
pub(super) async fn disconnect(
    state: web::Data<AppState>,
    org_id: web::Path<OrgId>,
) -> Result<HttpResponse, ApiError> {
    state.disconnect(*org_id).await?;
    Ok(HttpResponse::Ok().json(Disconnected { connected: false }))
}

/// Register the connection routes (inside the admin scope).
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(verify)
        .service(save)
        .service(show)
        .service(disconnect);
}
