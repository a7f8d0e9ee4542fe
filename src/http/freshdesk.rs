//! `/api/v1/orgs/{org_id}/freshdesk`: verify credentials, save, show and disconnect the
//! org's Freshdesk connection. The decisions live in `crate::connect`; the steps around a save
//! or a disconnect in `AppState`, which the console calls too.

use super::error::{ApiError, Code};
use crate::connect::SaveRequest;
use crate::http::state::AppState;
use actix_web::{delete, get, post, put, web, HttpResponse};
use serde::Deserialize;
use serde_json::json;
use ticketsync_actors::OrgId;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct VerifyRequest {
    #[serde(default)]
    domain: String,
    #[serde(default)]
    api_key: secrecy::SecretString,
}

#[post("/orgs/{org_id}/freshdesk/verify")]
async fn verify(
    state: web::Data<AppState>,
    org_id: web::Path<OrgId>,
    body: web::Json<VerifyRequest>,
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
    Ok(HttpResponse::Ok().json(json!({"agent": agent})))
}

#[put("/orgs/{org_id}/freshdesk")]
async fn save(
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

#[get("/orgs/{org_id}/freshdesk")]
async fn show(
    state: web::Data<AppState>,
    org_id: web::Path<OrgId>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(state.connection(*org_id).await?))
}

#[delete("/orgs/{org_id}/freshdesk")]
async fn disconnect(
    state: web::Data<AppState>,
    org_id: web::Path<OrgId>,
) -> Result<HttpResponse, ApiError> {
    state.disconnect(*org_id).await?;
    Ok(HttpResponse::Ok().json(json!({"connected": false})))
}

/// Register the connection routes (inside the admin scope).
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(verify)
        .service(save)
        .service(show)
        .service(disconnect);
}
