//! The inbox: `/api/v1/orgs/{org_id}/sessions…` and `…/tickets/{ticket_id}/session`, plus the
//! admin handoff and resume commands, which go through the ticket's queue like any event.
//! The handlers only translate; `http::inbox` decides.

use super::error::{ApiError, Code};
use super::inbox::{self, SessionQuery};
use crate::http::state::AppState;
use actix_web::{get, post, web, HttpResponse};
use serde::Deserialize;
use ticketsync_actors::{OrgId, SessionId, TicketId};

#[derive(Deserialize)]
struct ListQuery {
    state: Option<String>,
    channel: Option<String>,
    limit: Option<String>,
    cursor: Option<String>,
}

#[get("/orgs/{org_id}/sessions")]
async fn list(
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

#[get("/orgs/{org_id}/sessions/{session_id}")]
async fn show(
    state: web::Data<AppState>,
    path: web::Path<(OrgId, SessionId)>,
) -> Result<HttpResponse, ApiError> {
    let (org, session) = path.into_inner();
    Ok(HttpResponse::Ok().json(inbox::show(&state, org, session).await?))
}

#[get("/orgs/{org_id}/tickets/{ticket_id}/session")]
async fn by_ticket(
    state: web::Data<AppState>,
    path: web::Path<(OrgId, u64)>,
) -> Result<HttpResponse, ApiError> {
    let (org, ticket) = path.into_inner();
    Ok(HttpResponse::Ok().json(inbox::of_ticket(&state, org, TicketId(ticket)).await?))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct HandoffBody {
    #[serde(default)]
    reason: Option<String>,
}

#[post("/orgs/{org_id}/sessions/{session_id}/handoff")]
async fn handoff(
    state: web::Data<AppState>,
    path: web::Path<(OrgId, SessionId)>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let (org, session) = path.into_inner();
    // The body is optional; when present it must be the documented JSON object.
    let body: HandoffBody = if body.iter().all(u8::is_ascii_whitespace) {
        HandoffBody::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| {
            ApiError::new(
                Code::InvalidJson,
                format!("The body must be {{\"reason\": \"…\"}}: {e}."),
            )
        })?
    };
    let session = inbox::handoff(&state, org, session, body.reason.as_deref()).await?;
    Ok(HttpResponse::Ok().json(session))
}

#[post("/orgs/{org_id}/sessions/{session_id}/resume")]
async fn resume(
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
