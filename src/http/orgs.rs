//! `/api/v1/orgs`: create, list, read and delete organizations. An org admin lists only its
//! own org; creating and deleting are the operator's (`auth::require_admin` answers an org
//! admin 404 for them).

use super::error::{ApiError, Code};
use crate::access::Principal;
use crate::http::state::AppState;
use actix_web::{delete, get, post, web, HttpResponse};
use chrono::Utc;
use serde::{Deserialize, Serialize};
use ticketsync_actors::org::Org;
use ticketsync_actors::OrgId;

/// Longest accepted organization name, in characters.
const MAX_NAME_CHARS: usize = 200;

/// The body of `POST /api/v1/orgs`.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateOrg {
    /// 1 to 200 characters once trimmed.
    #[schema(schema_with = name_schema)]
    name: String,
}

fn name_schema() -> utoipa::openapi::Object {
    super::openapi::trimmed_name(MAX_NAME_CHARS)
}

/// The org list: every org for the operator, its own for an org admin.
#[derive(Serialize, utoipa::ToSchema)]
pub struct OrgList {
    pub items: Vec<Org>,
}

/// Create an organization (operator only).
#[utoipa::path(post, path = "/orgs", context_path = "/api/v1", tag = "orgs", operation_id = "create_org",
    request_body = CreateOrg, security(("bearerAuth" = [])),
    responses((status = 201, description = "The organization.", body = Org)))]
#[post("/orgs")]
pub(super) async fn create(
    state: web::Data<AppState>,
    body: super::error::JsonObject<CreateOrg>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Created().json(create_org(&state, &body.name).await?))
}

/// Create and store an organization named `name` (trimmed, 1 to `MAX_NAME_CHARS` characters,
/// else 422 `invalid_request`). The JSON route and the console both create orgs through this.
pub async fn create_org(state: &AppState, name: &str) -> Result<Org, ApiError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > MAX_NAME_CHARS {
        return Err(ApiError::new(
            Code::InvalidRequest,
            format!("name must be 1 to {MAX_NAME_CHARS} characters."),
        ));
    }
    let org = Org {
        id: OrgId::new(),
        name: name.to_string(),
        created_at: Utc::now(),
    };
    state.store.insert_org(&org).await?;
    state
        .store
        .flush()
        .await
        .map_err(crate::store::StoreError::from)?;
    tracing::info!(org_id = %org.id, "organization created");
    Ok(org)
}

/// List organizations (an org admin sees only its own).
#[utoipa::path(get, path = "/orgs", context_path = "/api/v1", tag = "orgs", operation_id = "list_orgs", security(("bearerAuth" = [])),
    responses((status = 200, description = "The organizations.", body = OrgList)))]
#[get("/orgs")]
pub(super) async fn list(
    state: web::Data<AppState>,
    principal: web::ReqData<Principal>,
) -> Result<HttpResponse, ApiError> {
    let mut orgs = state.store.orgs().await?;
    orgs.retain(|org| principal.may_access(org.id));
    Ok(HttpResponse::Ok().json(OrgList { items: orgs }))
}

/// Read an organization.
#[utoipa::path(get, path = "/orgs/{org_id}", context_path = "/api/v1", tag = "orgs", operation_id = "show_org",
    params(("org_id" = uuid::Uuid, Path, description = "The organization's id.")), security(("bearerAuth" = [])),
    responses((status = 200, description = "The organization.", body = Org)))]
#[get("/orgs/{org_id}")]
pub(super) async fn show(
    state: web::Data<AppState>,
    org_id: web::Path<OrgId>,
) -> Result<HttpResponse, ApiError> {
    let org = state.store.org(*org_id).await?.ok_or_else(org_not_found)?;
    Ok(HttpResponse::Ok().json(org))
}

/// Delete the org and erase everything stored for it (`AppState::delete_org`).
#[utoipa::path(delete, path = "/orgs/{org_id}", context_path = "/api/v1", tag = "orgs", operation_id = "delete_org",
    description = "Delete the organization and erase everything stored for it (operator only).",
    params(("org_id" = uuid::Uuid, Path, description = "The organization's id.")), security(("bearerAuth" = [])),
    responses((status = 204, description = "Deleted.")))]
#[delete("/orgs/{org_id}")]
pub(super) async fn remove(
    state: web::Data<AppState>,
    org_id: web::Path<OrgId>,
) -> Result<HttpResponse, ApiError> {
    state.delete_org(*org_id).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// 404 `org_not_found`.
pub fn org_not_found() -> ApiError {
    ApiError::new(Code::OrgNotFound, "No organization has this id.")
}

/// Register the org routes (inside the admin scope).
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(create)
        .service(list)
        .service(show)
        .service(remove);
}
