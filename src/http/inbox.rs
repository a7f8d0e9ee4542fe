//! The inbox service: list an organization's sessions, show one, hand its ticket off to the
//! humans or give it back to the AI. The JSON routes (`http::sessions`) and the console pages
//! (`console::inbox`) both call these functions, so every filter, cursor check and command rule
//! exists once; the callers only translate their input and the answer.

use super::error::{ApiError, Code};
use super::orgs::org_not_found;
use crate::http::state::AppState;
use crate::store::{SessionCursor, SessionSummaryRow};
use serde::Serialize;
use serde_json::json;
use std::time::Duration;
use ticketsync_actors::org::Channel;
use ticketsync_actors::ports::EventKind;
use ticketsync_actors::session::{Session, SessionState};
use ticketsync_actors::ticket::state::TicketRecord;
use ticketsync_actors::{OrgId, SessionId, TicketId};

/// Default and largest page size of the session list.
const DEFAULT_LIMIT: usize = 50;
const MAX_LIMIT: usize = 200;
/// How long an admin command waits for its ticket to apply it.
const COMMAND_WAIT: Duration = Duration::from_secs(30);
/// Longest handoff reason kept, in characters.
const MAX_REASON_CHARS: usize = 2000;

/// A session-list request as the caller received it: each filter is its API name, unparsed.
#[derive(Debug, Default, Clone, Copy)]
pub struct SessionQuery<'a> {
    /// `ai_active`, `human_active` or `handed_off`.
    pub state: Option<&'a str>,
    /// `email`, `web`, `phone` or `other`.
    pub channel: Option<&'a str>,
    /// Page size, 1 to [`MAX_LIMIT`].
    pub limit: Option<&'a str>,
    /// A `next_cursor` an earlier page returned.
    pub cursor: Option<&'a str>,
}

/// One page of sessions, most recently updated first.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SessionPage {
    pub items: Vec<SessionSummaryRow>,
    /// Where the next page starts; None on the last page.
    pub next_cursor: Option<String>,
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

async fn require_org(state: &AppState, org: OrgId) -> Result<(), ApiError> {
    state.store.org(org).await?.ok_or_else(org_not_found)?;
    Ok(())
}

/// The org's sessions matching the query, one page of them.
pub async fn list(
    state: &AppState,
    org: OrgId,
    query: SessionQuery<'_>,
) -> Result<SessionPage, ApiError> {
    require_org(state, org).await?;
    let wanted_state: Option<SessionState> = query
        .state
        .map(|s| parse_enum("state", s, "ai_active, human_active, handed_off"))
        .transpose()?;
    let wanted_channel: Option<Channel> = query
        .channel
        .map(|c| parse_enum("channel", c, "email, web, phone, other"))
        .transpose()?;
    let limit = match query.limit {
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
        .map(|c| {
            SessionCursor::decode(c, org).ok_or_else(|| {
                ApiError::new(
                    Code::InvalidCursor,
                    "cursor is not one this endpoint returned.",
                )
            })
        })
        .transpose()?;
    let state_name = wanted_state.map(|s| s.as_str());
    let channel_name = wanted_channel.map(|c| c.as_str());
    let (items, next) = state
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
    Ok(SessionPage {
        items,
        next_cursor: next.map(|c| c.encode()),
    })
}

fn session_of(record: Option<TicketRecord>, org: OrgId) -> Result<Session, ApiError> {
    record
        .filter(|r| r.org_id == org)
        .and_then(|r| r.session)
        .ok_or_else(|| {
            ApiError::new(
                Code::SessionNotFound,
                "No session with this id in this organization.",
            )
        })
}

/// One session of the org, with its messages.
pub async fn show(state: &AppState, org: OrgId, session: SessionId) -> Result<Session, ApiError> {
    require_org(state, org).await?;
    session_of(state.store.ticket_by_session(session).await?, org)
}

/// The session of one of the org's tickets, with its messages.
pub async fn of_ticket(
    state: &AppState,
    org: OrgId,
    ticket: TicketId,
) -> Result<Session, ApiError> {
    require_org(state, org).await?;
    state
        .store
        .ticket_record(org, ticket)
        .await?
        .and_then(|r| r.session)
        .ok_or_else(|| ApiError::new(Code::SessionNotFound, "This ticket is not tracked."))
}

/// Hand the session's ticket to the humans, with the admin's reason (trimmed, at most
/// [`MAX_REASON_CHARS`] characters; blank means none). Answers the session as it is after.
pub async fn handoff(
    state: &AppState,
    org: OrgId,
    session: SessionId,
    reason: Option<&str>,
) -> Result<Session, ApiError> {
    let detail = reason
        .map(|r| r.trim().chars().take(MAX_REASON_CHARS).collect::<String>())
        .filter(|r| !r.is_empty());
    command(state, org, session, EventKind::AdminHandoff { detail }).await
}

/// Give the session's ticket back to the AI. Answers the session as it is after.
pub async fn resume(state: &AppState, org: OrgId, session: SessionId) -> Result<Session, ApiError> {
    command(state, org, session, EventKind::AdminResume).await
}

/// Queue an admin command on the session's ticket and wait until the ticket has applied it.
async fn command(
    state: &AppState,
    org: OrgId,
    session: SessionId,
    kind: EventKind,
) -> Result<Session, ApiError> {
    let ticket = show(state, org, session).await?.ticket_id;
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
        .submit(org, ticket, kind, COMMAND_WAIT)
        .await
        .map_err(|e| ApiError::internal(&e))?;
    if !applied {
        return Err(ApiError::new(Code::CommandPending, "The command is queued but the ticket has not applied it yet; check the session again shortly."));
    }
    session_of(state.store.ticket_record(org, ticket).await?, org)
}
