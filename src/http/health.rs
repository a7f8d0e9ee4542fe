//! `/healthz` (the process answers) and `/readyz` (storage open, recovery done, webhooks can
//! be made durable: no flush stuck, the last one succeeded; and with several nodes, this
//! node's heartbeat in the database is fresh).

use super::error::{ApiError, Code};
use crate::http::state::{AppState, Readiness};
use actix_web::ResponseError;
use actix_web::{get, web, HttpResponse};
use serde::Serialize;

/// The answer of the health routes.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Status {
    /// `ok` (healthz) or `ready` (readyz).
    pub status: &'static str,
}

/// The process answers.
#[utoipa::path(get, path = "/healthz", tag = "health", operation_id = "healthz",
    responses((status = 200, description = "Alive.", body = Status)))]
#[get("/healthz")]
pub(super) async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(Status { status: "ok" })
}

/// Storage is open, recovery done, and webhooks can be made durable.
#[utoipa::path(get, path = "/readyz", tag = "health", operation_id = "readyz",
    responses((status = 200, description = "Ready.", body = Status)))]
#[get("/readyz")]
pub(super) async fn readyz(
    readiness: web::Data<Readiness>,
    state: web::Data<AppState>,
) -> HttpResponse {
    if !readiness.is_ready() {
        return ApiError::new(Code::NotReady, "Storage recovery is still running.")
            .error_response();
    }
    if state.cluster.as_ref().is_some_and(|c| !c.heartbeat_fresh()) {
        return ApiError::new(
            Code::NotReady,
            "This node has no fresh heartbeat in the cluster's database.",
        )
        .error_response();
    }
    match state.store.durability() {
        Ok(()) => HttpResponse::Ok().json(Status { status: "ready" }),
        // A load balancer must stop sending webhooks that could only be refused or hang.
        Err(why) => ApiError::new(
            Code::StorageUnavailable,
            format!("Webhooks cannot be stored durably: {why}."),
        )
        .error_response(),
    }
}

/// Register the health routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(healthz).service(readyz);
}
