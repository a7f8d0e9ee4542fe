//! The admin console (contract §12): server-rendered pages outside `/api/v1`, signed in with a
//! session cookie instead of a bearer token. `configure` registers them; `crate::http::configure`
//! calls it before the default service.
//!
//! Pages call the same services the JSON handlers call (`crate::connect`, `AppState`), never
//! the HTTP API and never a copy of a rule. Templates are askama files under
//! `templates/console/`, checked at compile time; the stylesheet, `console.js` and the vendored
//! htmx are embedded in the binary and served under `/console/static/`.

mod access_pages;
mod engine;
mod inbox;
mod layout;
mod orgs;
pub mod session;
mod settings;

use actix_web::http::{header, StatusCode};
use actix_web::{get, web, HttpResponse, ResponseError};
use askama::Template;
use layout::Layout;

pub use session::Sessions;

/// Why a page cannot be shown; each variant renders as an HTML page (or a redirect).
#[derive(Debug, Clone, thiserror::Error)]
pub enum PageError {
    /// No valid session on a GET: to the sign-in page, then back to `next`.
    #[error("sign-in required")]
    SignIn { next: String, htmx: bool },
    /// No valid session on a form post.
    #[error("session ended")]
    SessionEnded,
    /// A form without this session's CSRF token.
    #[error("CSRF token rejected")]
    CsrfRejected,
    /// No such page, or one of an org this admin may not see (the same answer: no hint).
    #[error("not found")]
    NotFound,
    /// A form that cannot be read.
    #[error("bad form")]
    BadForm,
    /// Something failed on our side (logged where it happened).
    #[error("internal error")]
    Internal,
}

impl PageError {
    /// A storage failure, logged once here.
    pub fn store(error: crate::store::StoreError) -> Self {
        tracing::error!(error = %crate::http::error::error_chain(&error), "console page failed");
        Self::Internal
    }

    fn text(&self) -> (&'static str, &'static str) {
        match self {
            Self::SignIn { .. } | Self::SessionEnded => (
                "Signed out",
                "Your session has ended, so nothing was changed. Sign in again.",
            ),
            Self::CsrfRejected => (
                "Form refused",
                "This form was not sent from a page of your current session (its security token is missing or wrong), so nothing was changed. Reload the page and try again.",
            ),
            Self::NotFound => ("Not found", "There is no such page."),
            Self::BadForm => ("Form refused", "The form could not be read; nothing was changed."),
            Self::Internal => (
                "Something went wrong",
                "Something went wrong on our side; nothing was changed. Try again in a moment.",
            ),
        }
    }
}

#[derive(Template)]
#[template(path = "console/error.html")]
struct ErrorPage {
    layout: Layout,
    message: &'static str,
}

impl ResponseError for PageError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::SignIn { htmx: false, .. } => StatusCode::SEE_OTHER,
            Self::SignIn { htmx: true, .. } => StatusCode::UNAUTHORIZED,
            Self::SessionEnded | Self::CsrfRejected => StatusCode::FORBIDDEN,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::BadForm => StatusCode::BAD_REQUEST,
            Self::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let (title, message) = self.text();
        let page = ErrorPage {
            layout: Layout::signed_out(title),
            message,
        };
        let mut res = render(self.status_code(), &page)
            .unwrap_or_else(|_| HttpResponse::InternalServerError().finish());
        if let Self::SignIn { next, htmx } = self {
            let target = format!(
                "/sign-in?next={}",
                percent_encoding::utf8_percent_encode(next, NEXT_PARAM)
            );
            // An htmx poll must not swap the sign-in page into a fragment: it reloads instead.
            let name = if *htmx { "hx-redirect" } else { "location" };
            res.headers_mut().insert(
                header::HeaderName::from_static(name),
                header::HeaderValue::from_str(&target).expect("percent-encoded"),
            );
        }
        res
    }
}

/// What `next=` escapes: everything but the characters a path keeps as they are.
const NEXT_PARAM: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// A rendered page with its status.
fn render(status: StatusCode, page: &impl Template) -> Result<HttpResponse, PageError> {
    let html = page.render().map_err(|e| {
        tracing::error!(error = %e, "console template failed");
        PageError::Internal
    })?;
    Ok(HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(html))
}

/// How the console writes a moment: `2026-12-03 14:11 UTC`.
fn display_time(at: chrono::DateTime<chrono::Utc>) -> String {
    at.format("%Y-%m-%d %H:%M UTC").to_string()
}

/// A value's name as the JSON API spells it (`"ai_active"`, `"autopilot"`), for labels and
/// form values.
fn api_name(value: impl serde::Serialize) -> String {
    serde_json::to_value(value)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

/// A 303 to another console page (after a form post).
fn see_other(location: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, location))
        .finish()
}

/// The embedded static files: name, content type, bytes.
const STATIC_FILES: [(&str, &str, &str); 3] = [
    (
        "style.css",
        "text/css; charset=utf-8",
        include_str!("static/style.css"),
    ),
    (
        "console.js",
        "text/javascript; charset=utf-8",
        include_str!("static/console.js"),
    ),
    (
        "htmx.min.js",
        "text/javascript; charset=utf-8",
        include_str!("static/htmx.min.js"),
    ),
];

#[get("/console/static/{name}")]
async fn static_file(name: web::Path<String>) -> Result<HttpResponse, PageError> {
    let (_, content_type, body) = STATIC_FILES
        .iter()
        .find(|(file, _, _)| *file == name.as_str())
        .ok_or(PageError::NotFound)?;
    Ok(HttpResponse::Ok()
        .content_type(*content_type)
        .insert_header((header::CACHE_CONTROL, "public, max-age=86400"))
        .body(*body))
}

/// Register every console page and the static files.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.app_data(web::FormConfig::default().error_handler(|_, _| PageError::BadForm.into()))
        .service(static_file)
        .configure(session::configure)
        .configure(orgs::configure)
        .configure(settings::configure)
        .configure(inbox::configure)
        .configure(engine::configure)
        .configure(access_pages::configure);
}

/// Operator-only pages and forms (like the operator-only API routes): the 404 page for an org
/// admin, so it learns nothing of them.
pub fn require_operator(user: &session::ConsoleUser) -> Result<(), PageError> {
    if user.principal.is_operator() {
        Ok(())
    } else {
        Err(PageError::NotFound)
    }
}

/// The orgs this admin may see, by name.
pub async fn visible_orgs(
    state: &crate::http::state::AppState,
    user: &session::ConsoleUser,
) -> Result<Vec<ticketsync_actors::org::Org>, PageError> {
    let mut orgs = state.store.orgs().await.map_err(PageError::store)?;
    orgs.retain(|o| user.principal.may_access(o.id));
    orgs.sort_by_key(|o| o.name.to_lowercase());
    Ok(orgs)
}

/// The org a console URL names, when it exists and this admin may see it; any other case is
/// the same 404 page, so an org admin never learns that another org exists.
pub async fn visible_org(
    state: &crate::http::state::AppState,
    user: &session::ConsoleUser,
    org_id: &str,
) -> Result<ticketsync_actors::org::Org, PageError> {
    let id: ticketsync_actors::OrgId = org_id.parse().map_err(|_| PageError::NotFound)?;
    if !user.principal.may_access(id) {
        return Err(PageError::NotFound);
    }
    state
        .store
        .org(id)
        .await
        .map_err(PageError::store)?
        .ok_or(PageError::NotFound)
}
