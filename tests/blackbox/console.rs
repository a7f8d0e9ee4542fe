//! The console's pages over real HTTP, as a browser without JavaScript uses them: sign-in,
//! sessions and CSRF, organizations, Settings → Integrations → Freshdesk.

use crate::console_client::{Console, SESSION_COOKIE};
use crate::harness::*;
use reqwest::{Method, StatusCode};

async fn org_count(app: &TestApp) -> usize {
    let r = app.call(Method::GET, "/api/v1/orgs", None).await;
    r.body["items"].as_array().expect("items").len()
}

#[tokio::test]
async fn the_root_sends_a_visitor_to_sign_in_and_a_signed_in_admin_to_the_organizations() {
    let app = TestApp::spawn().await;
    let visitor = Console::new(app.base());
    visitor.get("/").await.assert_see_other("/sign-in");
    let admin = Console::signed_in(app.base(), ADMIN_TOKEN).await;
    admin.get("/").await.assert_see_other("/orgs");
    let page = admin.get("/orgs").await;
    page.assert_html(200);
    assert!(
        page.body.contains("<h1>Organizations</h1>"),
        "{}",
        page.body
    );
    assert!(page.body.contains(">Sign out</button>"));
    assert!(
        page.body.contains(">Engine</a>"),
        "the operator sees the engine link"
    );
}

#[tokio::test]
async fn signing_in_sets_an_http_only_strict_session_cookie_and_keeps_the_token_out_of_it() {
    let app = TestApp::spawn().await;
    let console = Console::new(app.base());
    let page = console.sign_in(ADMIN_TOKEN, "").await;
    page.assert_see_other("/orgs");
    let session = page
        .set_cookies
        .iter()
        .find(|c| c.starts_with(&format!("{SESSION_COOKIE}=")))
        .expect("session cookie set");
    assert!(session.contains("HttpOnly"), "{session}");
    assert!(session.contains("SameSite=Strict"), "{session}");
    assert!(session.contains("Path=/"), "{session}");
    assert!(!session.contains("Secure"), "plain http: {session}");
    assert!(!session.contains(ADMIN_TOKEN), "{session}");
}

#[tokio::test]
async fn a_wrong_token_shows_the_sign_in_page_again_with_an_error_and_401() {
    let app = TestApp::spawn().await;
    let console = Console::new(app.base());
    let page = console.sign_in("not-the-token", "").await;
    page.assert_html(401);
    assert!(
        page.body.contains("This token is not valid."),
        "{}",
        page.body
    );
    assert!(page
        .body
        .contains("<label for=\"token\">Admin token</label>"));
    assert!(
        !page.body.contains("not-the-token"),
        "the typed token is not echoed"
    );
    assert!(console.cookie(SESSION_COOKIE).is_none());
    console
        .get("/orgs")
        .await
        .assert_see_other("/sign-in?next=%2Forgs");
}

#[tokio::test]
async fn a_session_ends_when_its_lifetime_has_passed() {
    let app =
        TestApp::spawn_with(&[("TICKETSYNC__CONSOLE__SESSION_TTL_MINUTES", "0".into())]).await;
    let console = Console::new(app.base());
    console
        .sign_in(ADMIN_TOKEN, "")
        .await
        .assert_see_other("/orgs");
    assert!(
        console.cookie(SESSION_COOKIE).is_some(),
        "the cookie was set"
    );
    console
        .get("/orgs")
        .await
        .assert_see_other("/sign-in?next=%2Forgs");
    console.get("/").await.assert_see_other("/sign-in");
    let refused = console
        .post("/orgs", &[("csrf", "x"), ("name", "Late")])
        .await;
    refused.assert_html(403);
    assert!(
        refused.body.contains("Your session has ended"),
        "{}",
        refused.body
    );
    assert_eq!(org_count(&app).await, 0);
}

#[tokio::test]
async fn an_htmx_request_without_a_session_reloads_the_page_instead_of_swapping_in_the_sign_in_form(
) {
    let app = TestApp::spawn().await;
    let console = Console::new(app.base());
    let page = console.get_htmx("/orgs").await;
    assert_eq!(page.status, StatusCode::UNAUTHORIZED);
    assert!(
        page.body.contains("Your session has ended"),
        "{}",
        page.body
    );
    let res = reqwest::Client::new()
        .get(format!("{}/orgs", app.base()))
        .header("hx-request", "true")
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.headers()
            .get("hx-redirect")
            .and_then(|v| v.to_str().ok()),
        Some("/sign-in?next=%2Forgs")
    );
}

#[tokio::test]
async fn a_forged_or_altered_session_cookie_is_no_session() {
    let app = TestApp::spawn().await;
    let console = Console::signed_in(app.base(), ADMIN_TOKEN).await;
    let cookie = console.cookie(SESSION_COOKIE).unwrap();
    let (payload, _) = cookie.split_once('.').unwrap();
    for forged in [
        format!("{payload}.AAAA"),
        payload.to_string(),
        "garbage".into(),
    ] {
        console.set_cookie(SESSION_COOKIE, &forged);
        console
            .get("/orgs")
            .await
            .assert_see_other("/sign-in?next=%2Forgs");
    }
}

#[tokio::test]
async fn a_form_without_the_session_csrf_token_or_with_a_wrong_one_is_refused_and_changes_nothing()
{
    let app = TestApp::spawn().await;
    let console = Console::signed_in(app.base(), ADMIN_TOKEN).await;
    let missing = console.post("/orgs", &[("name", "Acme")]).await;
    missing.assert_html(403);
    assert!(missing.body.contains("security token"), "{}", missing.body);
    let wrong = console
        .post("/orgs", &[("csrf", "forged"), ("name", "Acme")])
        .await;
    wrong.assert_html(403);
    // Another session's token is wrong too.
    let other = Console::signed_in(app.base(), ADMIN_TOKEN).await;
    let other_csrf = other.get("/orgs").await.csrf();
    let crossed = console
        .post("/orgs", &[("csrf", &other_csrf), ("name", "Acme")])
        .await;
    crossed.assert_html(403);
    assert_eq!(org_count(&app).await, 0);

    let sign_out = console.post("/sign-out", &[("csrf", "forged")]).await;
    sign_out.assert_html(403);
    console.get("/orgs").await.assert_html(200);
}

#[tokio::test]
async fn the_sign_in_form_is_refused_without_its_own_csrf_cookie() {
    let app = TestApp::spawn().await;
    let console = Console::new(app.base());
    let csrf = console.get("/sign-in").await.csrf();
    console.forget_cookies();
    let page = console
        .post("/sign-in", &[("csrf", &csrf), ("token", ADMIN_TOKEN)])
        .await;
    page.assert_html(403);
    assert!(console.cookie(SESSION_COOKIE).is_none());
}

#[tokio::test]
async fn signing_out_removes_the_session_cookie() {
    let app = TestApp::spawn().await;
    let console = Console::signed_in(app.base(), ADMIN_TOKEN).await;
    let csrf = console.get("/orgs").await.csrf();
    console
        .post("/sign-out", &[("csrf", &csrf)])
        .await
        .assert_see_other("/sign-in");
    assert!(console.cookie(SESSION_COOKIE).is_none());
    console
        .get("/orgs")
        .await
        .assert_see_other("/sign-in?next=%2Forgs");
}

#[tokio::test]
async fn the_operator_creates_an_organization_and_finds_it_listed_with_its_freshdesk_state() {
    let app = TestApp::spawn().await;
    let console = Console::signed_in(app.base(), ADMIN_TOKEN).await;
    let page = console.get("/orgs").await;
    assert!(page.body.contains("<label for=\"org-name\">Name</label>"));
    assert!(page.body.contains(">Create organization</button>"));
    let created = console
        .post(
            "/orgs",
            &[("csrf", &page.csrf()), ("name", "  Acme Support  ")],
        )
        .await;
    assert_eq!(created.status, StatusCode::SEE_OTHER);
    let orgs = app.call(Method::GET, "/api/v1/orgs", None).await.body;
    let id = orgs["items"][0]["id"].as_str().unwrap();
    assert_eq!(orgs["items"][0]["name"], "Acme Support");
    assert_eq!(
        created.location.as_deref(),
        Some(format!("/orgs/{id}/settings/freshdesk").as_str())
    );
    let list = console.get("/orgs").await;
    assert!(list.body.contains(">Acme Support</a>"), "{}", list.body);
    assert!(list.body.contains(">not connected</span>"));
}

#[tokio::test]
async fn an_invalid_organization_name_is_shown_at_the_field_and_nothing_is_created() {
    let app = TestApp::spawn().await;
    let console = Console::signed_in(app.base(), ADMIN_TOKEN).await;
    let csrf = console.get("/orgs").await.csrf();
    let long = "x".repeat(201);
    for name in ["   ", long.as_str()] {
        let page = console
            .post("/orgs", &[("csrf", &csrf), ("name", name)])
            .await;
        page.assert_html(422);
        assert!(
            page.body
                .contains("id=\"org-name-error\">name must be 1 to 200 characters."),
            "{}",
            page.body
        );
        assert!(page.body.contains("aria-invalid=\"true\""));
    }
    assert_eq!(org_count(&app).await, 0);
}

#[tokio::test]
async fn the_static_files_are_served_with_their_types_and_a_cache_header() {
    let app = TestApp::spawn().await;
    let console = Console::new(app.base());
    for (name, content_type) in [
        ("style.css", "text/css; charset=utf-8"),
        ("console.js", "text/javascript; charset=utf-8"),
        ("htmx.min.js", "text/javascript; charset=utf-8"),
    ] {
        let file = console.get(&format!("/console/static/{name}")).await;
        assert_eq!(file.status, StatusCode::OK, "{name}");
        assert_eq!(file.content_type, content_type, "{name}");
        assert!(!file.body.is_empty());
    }
    let htmx = console.get("/console/static/htmx.min.js").await;
    assert!(htmx.body.starts_with("/*! htmx 2."), "licence header kept");
    console
        .get("/console/static/nope.js")
        .await
        .assert_html(404);
}
