//! `/healthz` (the process answers) and `/readyz` (storage open, recovery done).

use crate::startup::Readiness;
use actix_web::{get, web, HttpResponse};
use serde_json::json;

#[get("/healthz")]
async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "ok"}))
}

#[get("/readyz")]
async fn readyz(readiness: web::Data<Readiness>) -> HttpResponse {
    if readiness.is_ready() {
        HttpResponse::Ok().json(json!({"status": "ready"}))
    } else {
        HttpResponse::ServiceUnavailable().json(json!({"error": {
            "code": "not_ready",
            "message": "Storage recovery is still running."
        }}))
    }
}

/// Register the health routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(healthz).service(readyz);
}
