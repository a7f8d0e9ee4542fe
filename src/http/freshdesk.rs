//! `/api/v1/orgs/{org_id}/freshdesk`: verify credentials, save, show and disconnect the
//! org's Freshdesk connection. The decisions live in `crate::connect`.

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
    let (view, first_connect) = state.connect.save(*org_id, request).await?;
    state
        .org_changed(*org_id)
        .await
        .map_err(|e| ApiError::internal(&e))?;
    state
        .engine
        .org_connected(*org_id, first_connect)
        .await
        .map_err(|e| ApiError::internal(&e))?;
    if first_connect {
        tracing::info!(org_id = %org_id, "first connect: backfill scheduled");
    }
    Ok(HttpResponse::Ok().json(state.with_runtime(*org_id, view).await?))
}

#[get("/orgs/{org_id}/freshdesk")]
async fn show(
    state: web::Data<AppState>,
    org_id: web::Path<OrgId>,
) -> Result<HttpResponse, ApiError> {
    let view = state.connect.show(*org_id).await?;
    Ok(HttpResponse::Ok().json(state.with_runtime(*org_id, view).await?))
}

#[delete("/orgs/{org_id}/freshdesk")]
async fn disconnect(
    state: web::Data<AppState>,
    org_id: web::Path<OrgId>,
) -> Result<HttpResponse, ApiError> {
    state.connect.disconnect(*org_id).await?;
    // Returns once no write to Freshdesk of this node is in flight: after this answer it posts
    // nothing more. The owner, when it is another node, stops once it hears of the change.
    state
        .org_changed(*org_id)
        .await
        .map_err(|e| ApiError::internal(&e))?;
    Ok(HttpResponse::Ok().json(json!({"connected": false})))
}

/// Register the connection routes (inside the admin scope).
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(verify)
        .service(save)
        .service(show)
        .service(disconnect);
}
