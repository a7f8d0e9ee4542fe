//! The inbox: `/api/v1/orgs/{org_id}/sessions…` and `…/tickets/{ticket_id}/session`, plus the
//! admin handoff and resume commands, which go through the ticket's queue like any event.
//! The handlers only translate; `http::inbox` decides.

use super::error::{ApiError, Code};
use super::inbox::{self, SessionPage, SessionQuery};
use crate::http::state::AppState;
use actix_web::{get, post, web, HttpResponse};
use serde::Deserialize;
use ticketsync_actors::org::Channel;
use ticketsync_actors::session::{Session, SessionState};
use ticketsync_actors::{OrgId, SessionId};

#[derive(Deserialize)]
struct ListQuery {
    state: Option<String>,
    channel: Option<String>,
    limit: Option<String>,
    cursor: Option<String>,
}

/// List the organization's sessions, most recently updated first.
#[utoipa::path(get, path = "/orgs/{org_id}/sessions", context_path = "/api/v1", tag = "sessions", operation_id = "list_sessions",
    params(("org_id" = uuid::Uuid, Path, description = "The organization's id."),
        ("state" = Option<SessionState>, Query, description = "Only sessions in this state."),
        ("channel" = Option<Channel>, Query, description = "Only sessions of this channel."),
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 200, description = "Page size (default 50)."),
        ("cursor" = Option<String>, Query, description = "The `next_cursor` of the previous page (with the same filters).")),
    security(("bearerAuth" = [])),
    responses((status = 200, description = "One page of sessions.", body = SessionPage)))]
#[get("/orgs/{org_id}/sessions")]
pub(super) async fn list(
    state: web::Data<AppState>,
    org_id: web::Path<OrgId>,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    let query = SessionQuery {
        state: query.state.as_deref(),
        channel: query.channel.as_deref(),
        limit: query.limit.as_deref(),
        cursor: query.cursor.as_deref(),
    };
    let page = inbox::list(&state, *org_id, query).await?;
    Ok(HttpResponse::Ok().json(page))
}

/// Read a session with its messages.
#[utoipa::path(get, path = "/orgs/{org_id}/sessions/{session_id}", context_path = "/api/v1", tag = "sessions", operation_id = "show_session",
    params(("org_id" = uuid::Uuid, Path, description = "The organization's id."), ("session_id" = uuid::Uuid, Path, description = "The session's id.")), security(("bearerAuth" = [])),
    responses((status = 200, description = "The session.", body = Session)))]
#[get("/orgs/{org_id}/sessions/{session_id}")]
pub(super) async fn show(
    state: web::Data<AppState>,
    path: web::Path<(OrgId, SessionId)>,
) -> Result<HttpResponse, ApiError> {
    let (org, session) = path.into_inner();
    Ok(HttpResponse::Ok().json(inbox::show(&state, org, session).await?))
}

/// Read the session of a Freshdesk ticket.
#[utoipa::path(get, path = "/orgs/{org_id}/tickets/{ticket_id}/session", context_path = "/api/v1", tag = "sessions", operation_id = "session_of_ticket",
    params(("org_id" = uuid::Uuid, Path, description = "The organization's id."), ("ticket_id" = u64, Path, minimum = 1, description = "The Freshdesk ticket id.")), security(("bearerAuth" = [])),
    responses((status = 200, description = "The session.", body = Session)))]
#[get("/orgs/{org_id}/tickets/{ticket_id}/session")]
pub(super) async fn by_ticket(
    state: web::Data<AppState>,
    path: web::Path<(OrgId, u64)>,
) -> Result<HttpResponse, ApiError> {
    let (org, ticket) = path.into_inner();
    let ticket = super::error::ticket_in_path(ticket)?;
    Ok(HttpResponse::Ok().json(inbox::of_ticket(&state, org, ticket).await?))
}

/// The optional body of a handoff.
#[derive(Deserialize, Default, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HandoffBody {
    /// Why, for the agents (kept up to 2000 characters).
    #[serde(default)]
    reason: Option<String>,
}

/// Hand the ticket to the humans: the AI stops answering it until resumed.
#[utoipa::path(post, path = "/orgs/{org_id}/sessions/{session_id}/handoff", context_path = "/api/v1", tag = "sessions", operation_id = "handoff_session",
    params(("org_id" = uuid::Uuid, Path, description = "The organization's id."), ("session_id" = uuid::Uuid, Path, description = "The session's id.")),
    request_body(content = Option<HandoffBody>, description = "Optional; an empty body is no reason.", content_type = "application/json"),
    security(("bearerAuth" = [])),
    responses((status = 200, description = "The session, handed off.", body = Session)))]
#[post("/orgs/{org_id}/sessions/{session_id}/handoff")]
pub(super) async fn handoff(
    state: web::Data<AppState>,
    path: web::Path<(OrgId, SessionId)>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let (org, session) = path.into_inner();
    // The body is optional; when present it must be the documented JSON object.
    let body: HandoffBody = if body.iter().all(u8::is_ascii_whitespace) {
        HandoffBody::default()
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| {
                ApiError::new(
                    Code::InvalidJson,
                    format!("The body must be {{\"reason\": \"…\"}}: {e}."),
                )
            })
            .and_then(super::error::object_into)?
    };
    let session = inbox::handoff(&state, org, session, body.reason.as_deref()).await?;
    Ok(HttpResponse::Ok().json(session))
}

/// Give a handed-off ticket back to the AI.
#[utoipa::path(post, path = "/orgs/{org_id}/sessions/{session_id}/resume", context_path = "/api/v1", tag = "sessions", operation_id = "resume_session",
    params(("org_id" = uuid::Uuid, Path, description = "The organization's id."), ("session_id" = uuid::Uuid, Path, description = "The session's id.")), security(("bearerAuth" = [])),
    responses((status = 200, description = "The session, AI-active again.", body = Session)))]
#[post("/orgs/{org_id}/sessions/{session_id}/resume")]
pub(super) async fn resume(
    state: web::Data<AppState>,
    path: web::Path<(OrgId, SessionId)>,
) -> Result<HttpResponse, ApiError> {
    let (org, session) = path.into_inner();
    Ok(HttpResponse::Ok().json(inbox::resume(&state, org, session).await?))
}

/// Register the inbox routes (inside the admin scope).
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(list)
        .service(show)
        .service(by_ticket)
        .service(handoff)
        .service(resume);
}
