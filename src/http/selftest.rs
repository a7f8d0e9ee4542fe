//! `/api/v1/orgs/{org_id}/freshdesk/self-test`: start the setup self-test, read its last
//! report. The work lives in `crate::selftest`.

use super::error::{ApiError, Code};
use crate::http::state::AppState;
use actix_web::{get, post, web, HttpResponse};
use ticketsync_actors::OrgId;

/// Start a run: 202 with the report, state `running`.
#[post("/orgs/{org_id}/freshdesk/self-test")]
async fn start(
    state: web::Data<AppState>,
    org_id: web::Path<OrgId>,
) -> Result<HttpResponse, ApiError> {
    let report = state.self_tests.start(*org_id).await?;
    Ok(HttpResponse::Accepted().json(report))
}

/// The last report (of a run in progress, or finished).
#[get("/orgs/{org_id}/freshdesk/self-test")]
async fn last(
    state: web::Data<AppState>,
    org_id: web::Path<OrgId>,
) -> Result<HttpResponse, ApiError> {
    state
        .store
        .org(*org_id)
        .await?
        .ok_or_else(super::orgs::org_not_found)?;
    let report = state.self_tests.last(*org_id).await?.ok_or_else(|| {
        ApiError::new(
            Code::SelfTestNotRun,
            "No self-test has run for this organization yet; start one with POST.",
        )
    })?;
    Ok(HttpResponse::Ok().json(report))
}

/// Register the self-test routes (inside the admin scope).
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(start).service(last);
}
