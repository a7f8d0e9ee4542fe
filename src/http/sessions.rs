//! The inbox: `/api/v1/orgs/{org_id}/sessions…` and `…/tickets/{ticket_id}/session`, plus the
//! admin handoff and resume commands, which go through the ticket's queue like any event.

use super::error::{ApiError, Code};
use crate::http::state::AppState;
use crate::store::SessionSummaryRow;
use actix_web::{get, post, web, HttpResponse};
use serde::Deserialize;
use serde_json::json;
use std::time::Duration;
use ticketsync_actors::org::Channel;
use ticketsync_actors::ports::EventKind;
use ticketsync_actors::session::SessionState;
use ticketsync_actors::ticket::state::TicketRecord;
use ticketsync_actors::{OrgId, SessionId, TicketId};

/// Default and largest page size of the session list.
const DEFAULT_LIMIT: usize = 50;
const MAX_LIMIT: usize = 200;
/// How long an admin command waits for its ticket to apply it.
const COMMAND_WAIT: Duration = Duration::from_secs(30);

#[derive(Deserialize)]
struct ListQuery {
    state: Option<String>,
    channel: Option<String>,
    limit: Option<String>,
    cursor: Option<String>,
}

fn parse_enum<T: serde::de::DeserializeOwned>(
    name: &str,
    value: &str,
    allowed: &str,
) -> Result<T, ApiError> {
    serde_json::from_value(json!(value)).map_err(|_| {
        ApiError::new(
            Code::InvalidQuery,
            format!("{name} must be one of {allowed}, got \"{value}\"."),
        )
    })
}

#[get("/orgs/{org_id}/sessions")]
async fn list(
    state: web::Data<AppState>,
    org_id: web::Path<OrgId>,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    let org = *org_id;
    state
        .store
        .org(org)
        .await?
        .ok_or_else(super::orgs::org_not_found)?;
    let wanted_state: Option<SessionState> = query
        .state
        .as_deref()
        .map(|s| parse_enum("state", s, "ai_active, human_active, handed_off"))
        .transpose()?;
    let wanted_channel: Option<Channel> = query
        .channel
        .as_deref()
        .map(|c| parse_enum("channel", c, "email, web, phone, other"))
        .transpose()?;
    let limit = match query.limit.as_deref() {
        None => DEFAULT_LIMIT,
        Some(l) => l
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=MAX_LIMIT).contains(n))
            .ok_or_else(|| {
                ApiError::new(
                    Code::InvalidQuery,
                    format!("limit must be a whole number from 1 to {MAX_LIMIT}."),
                )
            })?,
    };
    let cursor = query
        .cursor
        .as_deref()
        .map(|c| {
            crate::store::SessionCursor::decode(c, org).ok_or_else(|| {
                ApiError::new(
                    Code::InvalidCursor,
                    "cursor is not one this endpoint returned.",
                )
            })
        })
        .transpose()?;
    let state_name = wanted_state.map(|s| s.as_str());
    let channel_name = wanted_channel.map(|c| c.as_str());
    let (rows, next) = state
        .store
        .session_page(
            org,
            cursor.as_ref(),
            &|row: &SessionSummaryRow| {
                state_name.is_none_or(|s| row.session["state"] == s)
                    && channel_name.is_none_or(|c| row.session["channel"] == c)
            },
            limit,
        )
        .await?;
    Ok(HttpResponse::Ok().json(json!({
        "items": rows,
        "next_cursor": next.map(|c| c.encode()),
    })))
}

fn session_of(record: Option<TicketRecord>, org: OrgId) -> Result<TicketRecord, ApiError> {
    record
        .filter(|r| r.org_id == org && r.session.is_some())
        .ok_or_else(|| {
            ApiError::new(
                Code::SessionNotFound,
                "No session with this id in this organization.",
            )
        })
}

#[get("/orgs/{org_id}/sessions/{session_id}")]
async fn show(
    state: web::Data<AppState>,
    path: web::Path<(OrgId, SessionId)>,
) -> Result<HttpResponse, ApiError> {
    let (org, session) = path.into_inner();
    state
        .store
        .org(org)
        .await?
        .ok_or_else(super::orgs::org_not_found)?;
    let record = session_of(state.store.ticket_by_session(session).await?, org)?;
    Ok(HttpResponse::Ok().json(record.session))
}

#[get("/orgs/{org_id}/tickets/{ticket_id}/session")]
async fn by_ticket(
    state: web::Data<AppState>,
    path: web::Path<(OrgId, u64)>,
) -> Result<HttpResponse, ApiError> {
    let (org, ticket) = path.into_inner();
    state
        .store
        .org(org)
        .await?
        .ok_or_else(super::orgs::org_not_found)?;
    let record = state
        .store
        .ticket_record(org, TicketId(ticket))
        .await?
        .filter(|r| r.session.is_some())
        .ok_or_else(|| ApiError::new(Code::SessionNotFound, "This ticket is not tracked."))?;
    Ok(HttpResponse::Ok().json(record.session))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct HandoffBody {
    #[serde(default)]
    reason: Option<String>,
}

async fn command(
    state: &AppState,
    org: OrgId,
    session: SessionId,
    kind: EventKind,
) -> Result<HttpResponse, ApiError> {
    state
        .store
        .org(org)
        .await?
        .ok_or_else(super::orgs::org_not_found)?;
    let record = session_of(state.store.ticket_by_session(session).await?, org)?;
    if !state
        .store
        .connection(org)
        .await?
        .is_some_and(|c| c.connected)
    {
        return Err(ApiError::new(
            Code::IntegrationDisconnected,
            "The organization is disconnected; reconnect it to hand off or resume tickets.",
        ));
    }
    let applied = state
        .engine
        .submit(org, record.ticket_id, kind, COMMAND_WAIT)
        .await
        .map_err(|e| ApiError::internal(&e))?;
    if !applied {
        return Err(ApiError::new(Code::CommandPending, "The command is queued but the ticket has not applied it yet; check the session again shortly."));
    }
    let record = session_of(state.store.ticket_record(org, record.ticket_id).await?, org)?;
    Ok(HttpResponse::Ok().json(record.session))
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
    let detail = body
        .reason
        .map(|r| r.trim().chars().take(2000).collect::<String>())
        .filter(|r| !r.is_empty());
    command(&state, org, session, EventKind::AdminHandoff { detail }).await
}

#[post("/orgs/{org_id}/sessions/{session_id}/resume")]
async fn resume(
    state: web::Data<AppState>,
    path: web::Path<(OrgId, SessionId)>,
) -> Result<HttpResponse, ApiError> {
    let (org, session) = path.into_inner();
    command(&state, org, session, EventKind::AdminResume).await
}

/// Register the inbox routes (inside the admin scope).
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(list)
        .service(show)
        .service(by_ticket)
        .service(handoff)
        .service(resume);
}
