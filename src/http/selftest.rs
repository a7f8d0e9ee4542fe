//! `/api/v1/orgs/{org_id}/freshdesk/self-test`: start the setup self-test, read its last
//! report. The work lives in `crate::selftest`.

use super::error::{ApiError, Code};
use crate::http::state::AppState;
use crate::selftest::SelfTestReport;
use actix_web::{get, post, web, HttpResponse};
use ticketsync_actors::OrgId;

/// Start a run: 202 with the report, state `running`.
#[utoipa::path(post, path = "/orgs/{org_id}/freshdesk/self-test", context_path = "/api/v1", tag = "freshdesk", operation_id = "start_self_test",
    params(("org_id" = uuid::Uuid, Path, description = "The organization's id.")), security(("bearerAuth" = [])),
    responses((status = 202, description = "The run started; poll the GET for its progress.", body = SelfTestReport)))]
#[post("/orgs/{org_id}/freshdesk/self-test")]
pub(super) async fn start(
    state: web::Data<AppState>,
    org_id: web::Path<OrgId>,
) -> Result<HttpResponse, ApiError> {
    let report = state.self_tests.start(*org_id).await?;
    Ok(HttpResponse::Accepted().json(report))
}

/// The last report (of a run in progress, or finished).
#[utoipa::path(get, path = "/orgs/{org_id}/freshdesk/self-test", context_path = "/api/v1", tag = "freshdesk", operation_id = "last_self_test",
    params(("org_id" = uuid::Uuid, Path, description = "The organization's id.")), security(("bearerAuth" = [])),
    responses((status = 200, description = "The last report.", body = SelfTestReport)))]
#[get("/orgs/{org_id}/freshdesk/self-test")]
pub(super) async fn last(
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
