//! `GET/POST /orgs`: the organizations this admin may see, each with its Freshdesk state and
//! links to its pages; the operator creates new ones here (through the same
//! `http::orgs::create_org` as `POST /api/v1/orgs`).

use super::layout::Layout;
use super::session::ConsoleUser;
use super::{render, see_other, PageError};
use crate::http::state::AppState;
use actix_web::http::StatusCode;
use actix_web::{get, post, web, HttpResponse};
use askama::Template;
use serde::Deserialize;

/// One row of the organizations table.
struct OrgRow {
    id: String,
    name: String,
    created: String,
    /// "connected", "disconnected" or "not connected".
    freshdesk: &'static str,
}

#[derive(Template)]
#[template(path = "console/orgs.html")]
struct OrgsPage {
    layout: Layout,
    csrf: String,
    operator: bool,
    orgs: Vec<OrgRow>,
    name: String,
    error: Option<String>,
}

async fn orgs_page(
    state: &AppState,
    user: &ConsoleUser,
    name: String,
    error: Option<String>,
) -> Result<OrgsPage, PageError> {
    let mut orgs = Vec::new();
    for org in super::visible_orgs(state, user).await? {
        let connection = state
            .store
            .connection(org.id)
            .await
            .map_err(PageError::store)?;
        orgs.push(OrgRow {
            id: org.id.to_string(),
            name: org.name,
            created: org.created_at.format("%Y-%m-%d").to_string(),
            freshdesk: match connection {
                Some(c) if c.connected => "connected",
                Some(_) => "disconnected",
                None => "not connected",
            },
        });
    }
    Ok(OrgsPage {
        layout: Layout::signed_in(user, "Organizations", "orgs", None),
        csrf: user.csrf.clone(),
        operator: user.principal.is_operator(),
        orgs,
        name,
        error,
    })
}

#[get("/orgs")]
async fn list(state: web::Data<AppState>, user: ConsoleUser) -> Result<HttpResponse, PageError> {
    render(
        StatusCode::OK,
        &orgs_page(&state, &user, String::new(), None).await?,
    )
}

#[derive(Deserialize)]
struct CreateForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    name: String,
}

#[post("/orgs")]
async fn create(
    state: web::Data<AppState>,
    user: ConsoleUser,
    form: web::Form<CreateForm>,
) -> Result<HttpResponse, PageError> {
    user.check_csrf(&form.csrf)?;
    // Creating organizations is the operator's (like POST /api/v1/orgs).
    super::require_operator(&user)?;
    match crate::http::orgs::create_org(&state, &form.name).await {
        Ok(org) => Ok(see_other(&format!("/orgs/{}/settings/freshdesk", org.id))),
        Err(e) if e.status.is_client_error() => {
            let page = orgs_page(&state, &user, form.name.clone(), Some(e.message)).await?;
            render(StatusCode::UNPROCESSABLE_ENTITY, &page)
        }
        Err(_) => Err(PageError::Internal),
    }
}

/// Register the organization pages.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(list).service(create);
}
