//! The operator's Access pages of one org: `GET /orgs/{org_id}/access` lists the org admin
//! tokens (name, created, last used), creates one (shown once, on the page that answers the
//! form) and revokes them; `GET /orgs/{org_id}/delete` asks to confirm deleting the org, and
//! its form deletes it. They call `crate::access::Access` and `AppState::delete_org`, the same
//! as `/api/v1/orgs/{id}/tokens…` and `DELETE /api/v1/orgs/{id}`. Org admins get the 404 page
//! here, like every operator-only route.

use super::layout::Layout;
use super::session::{ConsoleUser, CsrfForm};
use super::{display_time as when, render, require_operator, see_other, visible_org, PageError};
use crate::access::{TokenError, TokenId};
use crate::http::state::AppState;
use actix_web::http::StatusCode;
use actix_web::{get, post, web, HttpResponse};
use askama::Template;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use ticketsync_actors::org::Org;

/// The org a page of the operator names; the 404 page for anyone else.
async fn operator_org(
    state: &AppState,
    user: &ConsoleUser,
    org_id: &str,
) -> Result<Org, PageError> {
    require_operator(user)?;
    visible_org(state, user, org_id).await
}

/// One row of the token table.
struct TokenRow {
    id: String,
    name: String,
    created: String,
    last_used: String,
}

/// A token just created: the only time its text is on a page.
struct NewToken {
    name: String,
    text: SecretString,
}

#[derive(Template)]
#[template(path = "console/access.html")]
struct AccessPage {
    layout: Layout,
    csrf: String,
    org_id: String,
    org_name: String,
    tokens: Vec<TokenRow>,
    new_token: Option<NewToken>,
    revoked: bool,
    name: String,
    error: Option<String>,
}

async fn access_page(
    state: &AppState,
    user: &ConsoleUser,
    org: &Org,
    new_token: Option<NewToken>,
    name: String,
    error: Option<String>,
) -> Result<AccessPage, PageError> {
    let tokens = state
        .access
        .tokens(org.id)
        .await
        .map_err(PageError::store)?
        .into_iter()
        .map(|t| TokenRow {
            id: t.id.to_string(),
            name: t.name,
            created: when(t.created_at),
            last_used: t.last_used_at.map_or_else(|| "never".to_string(), when),
        })
        .collect();
    Ok(AccessPage {
        layout: Layout::signed_in(user, &format!("Access · {}", org.name), "access", Some(org)),
        csrf: user.csrf.clone(),
        org_id: org.id.to_string(),
        org_name: org.name.clone(),
        tokens,
        new_token,
        revoked: false,
        name,
        error,
    })
}

#[derive(Deserialize)]
struct AccessQuery {
    revoked: Option<String>,
}

#[get("/orgs/{org_id}/access")]
async fn show(
    state: web::Data<AppState>,
    user: ConsoleUser,
    org_id: web::Path<String>,
    query: web::Query<AccessQuery>,
) -> Result<HttpResponse, PageError> {
    let org = operator_org(&state, &user, &org_id).await?;
    let mut page = access_page(&state, &user, &org, None, String::new(), None).await?;
    page.revoked = query.revoked.is_some();
    render(StatusCode::OK, &page)
}

#[derive(Deserialize)]
struct CreateTokenForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    name: String,
}

#[post("/orgs/{org_id}/access/tokens")]
async fn create_token(
    state: web::Data<AppState>,
    user: ConsoleUser,
    org_id: web::Path<String>,
    form: web::Form<CreateTokenForm>,
) -> Result<HttpResponse, PageError> {
    user.check_csrf(&form.csrf)?;
    let org = operator_org(&state, &user, &org_id).await?;
    match state.access.create_token(org.id, &form.name).await {
        // Answered here, not redirected: the token is on this one page and nowhere else.
        Ok((view, text)) => {
            let new_token = NewToken {
                name: view.name,
                text,
            };
            let page =
                access_page(&state, &user, &org, Some(new_token), String::new(), None).await?;
            render(StatusCode::OK, &page)
        }
        Err(TokenError::InvalidName) => {
            let message = TokenError::InvalidName.to_string();
            let page = access_page(
                &state,
                &user,
                &org,
                None,
                form.name.clone(),
                Some(format!("Token name: {message}")),
            )
            .await?;
            render(StatusCode::UNPROCESSABLE_ENTITY, &page)
        }
        Err(TokenError::OrgNotFound) => Err(PageError::NotFound),
        Err(TokenError::Store(e)) => Err(PageError::store(e)),
    }
}

#[post("/orgs/{org_id}/access/tokens/{token_id}/revoke")]
async fn revoke_token(
    state: web::Data<AppState>,
    user: ConsoleUser,
    path: web::Path<(String, String)>,
    form: web::Form<CsrfForm>,
) -> Result<HttpResponse, PageError> {
    user.check_csrf(&form.csrf)?;
    let org = operator_org(&state, &user, &path.0).await?;
    let token = path
        .1
        .parse()
        .map(TokenId)
        .map_err(|_| PageError::NotFound)?;
    if !state
        .access
        .revoke_token(org.id, token)
        .await
        .map_err(PageError::store)?
    {
        return Err(PageError::NotFound);
    }
    Ok(see_other(&format!("/orgs/{}/access?revoked=1", org.id)))
}

#[derive(Template)]
#[template(path = "console/delete_org.html")]
struct DeleteOrgPage {
    layout: Layout,
    csrf: String,
    org_id: String,
    org_name: String,
}

#[get("/orgs/{org_id}/delete")]
async fn confirm_delete(
    state: web::Data<AppState>,
    user: ConsoleUser,
    org_id: web::Path<String>,
) -> Result<HttpResponse, PageError> {
    let org = operator_org(&state, &user, &org_id).await?;
    let page = DeleteOrgPage {
        layout: Layout::signed_in(&user, &format!("Delete {}", org.name), "access", Some(&org)),
        csrf: user.csrf.clone(),
        org_id: org.id.to_string(),
        org_name: org.name,
    };
    render(StatusCode::OK, &page)
}

#[post("/orgs/{org_id}/delete")]
async fn delete(
    state: web::Data<AppState>,
    user: ConsoleUser,
    org_id: web::Path<String>,
    form: web::Form<CsrfForm>,
) -> Result<HttpResponse, PageError> {
    user.check_csrf(&form.csrf)?;
    let org = operator_org(&state, &user, &org_id).await?;
    // The same function as `DELETE /api/v1/orgs/{id}`.
    state.delete_org(org.id).await.map_err(|e| {
        if e.status == StatusCode::NOT_FOUND {
            PageError::NotFound
        } else {
            PageError::Internal
        }
    })?;
    Ok(see_other("/orgs"))
}

/// Register the access pages.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(show)
        .service(create_token)
        .service(revoke_token)
        .service(confirm_delete)
        .service(delete);
}
