//! The Inbox pages: `GET /orgs/{org_id}/inbox` (an org's sessions, newest first, filtered by
//! state and channel, a page at a time) and `GET /orgs/{org_id}/inbox/{session_id}` (one
//! session: its thread as Freshdesk shows it, its status and handoff, and the Hand off / Resume
//! AI forms). They call `http::inbox`, the same functions as `/api/v1/orgs/{id}/sessions…`.

use super::layout::Layout;
use super::session::{ConsoleUser, CsrfForm};
use super::{api_name, display_time as when, render, see_other, visible_org, PageError};
use crate::http::error::{ApiError, Code};
use crate::http::inbox::{self, SessionQuery};
use crate::http::state::AppState;
use actix_web::http::StatusCode;
use actix_web::{get, post, web, HttpResponse};
use askama::Template;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use ticketsync_actors::org::{Channel, Org};
use ticketsync_actors::session::{Author, Session, SessionState};
use ticketsync_actors::SessionId;

/// Sessions per inbox page.
const PAGE_SIZE: &str = "25";

/// The state filter's choices: API name and label.
const STATES: [(&str, &str); 3] = [
    ("ai_active", "AI active"),
    ("human_active", "Human active"),
    ("handed_off", "Handed off"),
];

/// The channel filter's choices: API name and label.
const CHANNELS: [(&str, &str); 4] = [
    ("email", "Email"),
    ("web", "Web"),
    ("phone", "Phone"),
    ("other", "Other"),
];

fn state_label(state: SessionState) -> &'static str {
    label_of(&STATES, state.as_str())
}

fn channel_label(channel: Channel) -> &'static str {
    label_of(&CHANNELS, channel.as_str())
}

fn label_of(choices: &[(&'static str, &'static str)], name: &str) -> &'static str {
    choices
        .iter()
        .find(|(n, _)| *n == name)
        .map_or("Unknown", |(_, label)| label)
}

/// The part of a session-list row the inbox shows.
#[derive(Deserialize)]
struct SummaryFields {
    id: SessionId,
    ticket_id: u64,
    channel: Channel,
    subject: String,
    state: SessionState,
    freshdesk_status: StatusName,
    updated_at: DateTime<Utc>,
}

#[derive(Deserialize)]
struct StatusName {
    name: String,
}

/// One row of the inbox table.
struct InboxRow {
    href: String,
    ticket_id: u64,
    subject: String,
    state: &'static str,
    state_name: &'static str,
    channel: &'static str,
    status: String,
    updated: String,
    last_message: String,
}

/// A filter's `<option>`.
struct Choice {
    value: &'static str,
    label: &'static str,
    selected: bool,
}

fn choices(all: &[(&'static str, &'static str)], selected: Option<&str>) -> Vec<Choice> {
    all.iter()
        .map(|(value, label)| Choice {
            value,
            label,
            selected: selected == Some(*value),
        })
        .collect()
}

#[derive(Template)]
#[template(path = "console/inbox.html")]
struct InboxPage {
    layout: Layout,
    org_id: String,
    states: Vec<Choice>,
    channels: Vec<Choice>,
    filtered: bool,
    rows: Vec<InboxRow>,
    next_page: Option<String>,
    error: Option<String>,
}

#[derive(Deserialize)]
struct InboxQuery {
    state: Option<String>,
    channel: Option<String>,
    cursor: Option<String>,
}

/// A query value as a filter: a blank one means "any".
fn filter(value: &Option<String>) -> Option<&str> {
    value.as_deref().map(str::trim).filter(|v| !v.is_empty())
}

fn query_string(pairs: &[(&str, Option<&str>)]) -> String {
    use percent_encoding::{utf8_percent_encode, NON_ALPHANUMERIC};
    pairs
        .iter()
        .filter_map(|(k, v)| v.map(|v| format!("{k}={}", utf8_percent_encode(v, NON_ALPHANUMERIC))))
        .collect::<Vec<_>>()
        .join("&")
}

fn inbox_row(org: &Org, row: &crate::store::SessionSummaryRow) -> Result<InboxRow, PageError> {
    let fields: SummaryFields = serde_json::from_value(row.session.clone()).map_err(|e| {
        tracing::error!(error = %e, "a stored session summary does not have the session's shape");
        PageError::Internal
    })?;
    Ok(InboxRow {
        href: format!("/orgs/{}/inbox/{}", org.id, fields.id),
        ticket_id: fields.ticket_id,
        subject: fields.subject,
        state: fields.state.as_str(),
        state_name: state_label(fields.state),
        channel: channel_label(fields.channel),
        status: fields.freshdesk_status.name,
        updated: when(fields.updated_at),
        last_message: row.last_message_at.map(when).unwrap_or_default(),
    })
}

#[get("/orgs/{org_id}/inbox")]
async fn list(
    state: web::Data<AppState>,
    user: ConsoleUser,
    org_id: web::Path<String>,
    query: web::Query<InboxQuery>,
) -> Result<HttpResponse, PageError> {
    let org = visible_org(&state, &user, &org_id).await?;
    let wanted_state = filter(&query.state);
    let wanted_channel = filter(&query.channel);
    let request = SessionQuery {
        state: wanted_state,
        channel: wanted_channel,
        limit: Some(PAGE_SIZE),
        cursor: filter(&query.cursor),
    };
    let (status, rows, next_page, error) = match inbox::list(&state, org.id, request).await {
        Ok(page) => {
            let rows = page
                .items
                .iter()
                .map(|row| inbox_row(&org, row))
                .collect::<Result<Vec<_>, _>>()?;
            let next_page = page.next_cursor.map(|cursor| {
                format!(
                    "/orgs/{}/inbox?{}",
                    org.id,
                    query_string(&[
                        ("state", wanted_state),
                        ("channel", wanted_channel),
                        ("cursor", Some(&cursor)),
                    ])
                )
            });
            (StatusCode::OK, rows, next_page, None)
        }
        // A hand-edited URL: say what is wrong, keep the filters to correct.
        Err(e) if e.status.is_client_error() => (e.status, Vec::new(), None, Some(e.message)),
        Err(_) => return Err(PageError::Internal),
    };
    let page = InboxPage {
        layout: Layout::signed_in(&user, &format!("Inbox · {}", org.name), "inbox", Some(&org)),
        org_id: org.id.to_string(),
        states: choices(&STATES, wanted_state),
        channels: choices(&CHANNELS, wanted_channel),
        filtered: wanted_state.is_some() || wanted_channel.is_some() || query.cursor.is_some(),
        rows,
        next_page,
        error,
    };
    render(status, &page)
}

/// One message of the thread.
struct MessageView {
    author: &'static str,
    /// `customer`, `agent` or `ai`: the message's style.
    author_class: &'static str,
    /// "Private note", "Public note" or "Public reply".
    kind: &'static str,
    private: bool,
    body: String,
    at: String,
}

/// What the page shows of the last handoff.
struct HandoffView {
    at: String,
    reason: String,
    routing: String,
    target: Option<u64>,
    fallback_used: bool,
    detail: Option<String>,
}

#[derive(Template)]
#[template(path = "console/inbox_session.html")]
struct SessionPage {
    layout: Layout,
    csrf: String,
    base: String,
    inbox: String,
    ticket_id: u64,
    subject: String,
    state: &'static str,
    state_name: &'static str,
    channel: &'static str,
    freshdesk_status: String,
    imported: bool,
    created: String,
    updated: String,
    handoff: Option<HandoffView>,
    freshdesk_url: Option<String>,
    messages: Vec<MessageView>,
    /// What the last command did ("handed_off", "resumed"), from the redirect after it.
    done: Option<&'static str>,
    error: Option<String>,
    reason: String,
}

fn message_view(message: &ticketsync_actors::session::Message) -> MessageView {
    let (author, author_class) = match message.author {
        Author::Contact => ("Customer", "customer"),
        Author::Agent => ("Agent", "agent"),
        Author::Ai => ("AI", "ai"),
    };
    let kind = match (message.private, message.note) {
        (true, _) => "Private note",
        (false, true) => "Public note",
        (false, false) => "Public reply",
    };
    MessageView {
        author,
        author_class,
        kind,
        private: message.private,
        body: message.body_text.clone(),
        at: when(message.created_at),
    }
}

async fn session_page(
    state: &AppState,
    user: &ConsoleUser,
    org: &Org,
    session: Session,
    done: Option<&'static str>,
    error: Option<String>,
    reason: String,
) -> Result<SessionPage, PageError> {
    let freshdesk_url = state
        .store
        .connection(org.id)
        .await
        .map_err(PageError::store)?
        .and_then(|c| {
            state
                .connect
                .ticket_url(&c.settings.domain, session.ticket_id)
        });
    let base = format!("/orgs/{}/inbox/{}", org.id, session.id);
    Ok(SessionPage {
        layout: Layout::signed_in(
            user,
            &format!("Ticket {} · {}", session.ticket_id, org.name),
            "inbox",
            Some(org),
        ),
        csrf: user.csrf.clone(),
        inbox: format!("/orgs/{}/inbox", org.id),
        base,
        ticket_id: session.ticket_id.0,
        subject: session.subject.clone(),
        state: session.state.as_str(),
        state_name: state_label(session.state),
        channel: channel_label(session.channel),
        freshdesk_status: session.freshdesk_status.name.clone(),
        imported: session.imported,
        created: when(session.created_at),
        updated: when(session.updated_at),
        handoff: session.handoff.as_ref().map(|h| HandoffView {
            at: when(h.at),
            reason: h.reason.as_str().replace('_', " "),
            routing: api_name(h.routing),
            target: h.target,
            fallback_used: h.fallback_used,
            detail: h.detail.clone(),
        }),
        freshdesk_url,
        messages: session.messages.iter().map(message_view).collect(),
        done,
        error,
        reason,
    })
}

/// The session id a console URL names; anything else is the 404 page.
fn session_id(text: &str) -> Result<SessionId, PageError> {
    text.parse().map_err(|_| PageError::NotFound)
}

/// An inbox error as a page: an unknown session (or org) is the 404 page, anything else the
/// error page (the cause was logged where it happened).
fn page_error(error: ApiError) -> PageError {
    if error.status == StatusCode::NOT_FOUND {
        PageError::NotFound
    } else {
        PageError::Internal
    }
}

#[derive(Deserialize)]
struct SessionQueryParams {
    done: Option<String>,
}

#[get("/orgs/{org_id}/inbox/{session_id}")]
async fn show(
    state: web::Data<AppState>,
    user: ConsoleUser,
    path: web::Path<(String, String)>,
    query: web::Query<SessionQueryParams>,
) -> Result<HttpResponse, PageError> {
    let org = visible_org(&state, &user, &path.0).await?;
    let id = session_id(&path.1)?;
    let session = inbox::show(&state, org.id, id).await.map_err(page_error)?;
    let done = match query.done.as_deref() {
        Some("handoff") => Some("The ticket is handed off to your team."),
        Some("resume") => Some("The AI answers this ticket again."),
        _ => None,
    };
    let page = session_page(&state, &user, &org, session, done, None, String::new()).await?;
    render(StatusCode::OK, &page)
}

#[derive(Deserialize)]
struct HandoffForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    reason: String,
}

/// After a command: back to the session page (303), or the page with what went wrong.
async fn after_command(
    state: &AppState,
    user: &ConsoleUser,
    org: &Org,
    id: SessionId,
    outcome: Result<Session, ApiError>,
    done: &str,
    reason: String,
) -> Result<HttpResponse, PageError> {
    match outcome {
        Ok(_) => Ok(see_other(&format!(
            "/orgs/{}/inbox/{id}?done={done}",
            org.id
        ))),
        // What the admin can act on is shown on the session page: a disconnected org, a
        // command the ticket has not applied yet.
        Err(e) if matches!(e.code, Code::IntegrationDisconnected | Code::CommandPending) => {
            let session = inbox::show(state, org.id, id).await.map_err(page_error)?;
            let page =
                session_page(state, user, org, session, None, Some(e.message), reason).await?;
            render(e.status, &page)
        }
        Err(e) => Err(page_error(e)),
    }
}

#[post("/orgs/{org_id}/inbox/{session_id}/handoff")]
async fn handoff(
    state: web::Data<AppState>,
    user: ConsoleUser,
    path: web::Path<(String, String)>,
    form: web::Form<HandoffForm>,
) -> Result<HttpResponse, PageError> {
    user.check_csrf(&form.csrf)?;
    let org = visible_org(&state, &user, &path.0).await?;
    let id = session_id(&path.1)?;
    let outcome = inbox::handoff(&state, org.id, id, Some(&form.reason)).await;
    after_command(
        &state,
        &user,
        &org,
        id,
        outcome,
        "handoff",
        form.reason.clone(),
    )
    .await
}

#[post("/orgs/{org_id}/inbox/{session_id}/resume")]
async fn resume(
    state: web::Data<AppState>,
    user: ConsoleUser,
    path: web::Path<(String, String)>,
    form: web::Form<CsrfForm>,
) -> Result<HttpResponse, PageError> {
    user.check_csrf(&form.csrf)?;
    let org = visible_org(&state, &user, &path.0).await?;
    let id = session_id(&path.1)?;
    let outcome = inbox::resume(&state, org.id, id).await;
    after_command(&state, &user, &org, id, outcome, "resume", String::new()).await
}

/// Register the inbox pages.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(list)
        .service(show)
        .service(handoff)
        .service(resume);
}
