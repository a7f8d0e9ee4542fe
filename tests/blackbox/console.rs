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
async fn a_new_operator_token_ends_the_sessions_the_old_one_opened() {
    // The operator rotates a leaked token: a console session opened with it must not outlive it.
    let mut app = TestApp::spawn().await;
    let before = Console::signed_in(app.base(), ADMIN_TOKEN).await;
    let cookie = before.cookie(SESSION_COOKIE).expect("a session cookie");
    app.restart_with(&[(
        "TICKETSYNC__SERVER__ADMIN_TOKEN",
        "a-rotated-operator-token".into(),
    )]);
    let after = Console::new(app.base());
    after.set_cookie(SESSION_COOKIE, &cookie);
    after
        .get("/orgs")
        .await
        .assert_see_other("/sign-in?next=%2Forgs");
    let again = Console::signed_in(app.base(), "a-rotated-operator-token").await;
    again.get("/orgs").await.assert_html(200);
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
    // A poll goes back to the page it polled from, not to the fragment.
    let res = reqwest::Client::new()
        .get(format!("{}/orgs/x/settings/freshdesk/status", app.base()))
        .header("hx-request", "true")
        .header(
            "hx-current-url",
            format!("{}/orgs/x/settings/freshdesk", app.base()),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.headers()
            .get("hx-redirect")
            .and_then(|v| v.to_str().ok()),
        Some("/sign-in?next=%2Forgs%2Fx%2Fsettings%2Ffreshdesk")
    );
    // So does a button that posts through htmx (htmx swaps no 4xx answer: a 403 page would
    // leave the button doing nothing visible).
    let res = reqwest::Client::new()
        .post(format!(
            "{}/orgs/x/settings/freshdesk/self-test",
            app.base()
        ))
        .header("hx-request", "true")
        .header(
            "hx-current-url",
            format!("{}/orgs/x/settings/freshdesk", app.base()),
        )
        .form(&[("csrf", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.headers()
            .get("hx-redirect")
            .and_then(|v| v.to_str().ok()),
        Some("/sign-in?next=%2Forgs%2Fx%2Fsettings%2Ffreshdesk")
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

#[tokio::test]
async fn a_page_opened_without_a_session_leads_through_sign_in_back_to_itself() {
    let app = TestApp::spawn().await;
    let org = app.create_org("Acme").await;
    let console = Console::new(app.base());
    let path = format!("/orgs/{org}/settings/freshdesk");
    let page = console.get(&path).await;
    let location = page.location.clone().expect("redirect");
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    assert_eq!(
        location,
        format!("/sign-in?next=%2Forgs%2F{org}%2Fsettings%2Ffreshdesk")
    );

    let sign_in = console.get(&location).await;
    assert_eq!(sign_in.input_value("next").as_deref(), Some(path.as_str()));
    let done = console
        .post(
            "/sign-in",
            &[
                ("csrf", &sign_in.csrf()),
                ("token", ADMIN_TOKEN),
                ("next", &path),
            ],
        )
        .await;
    done.assert_see_other(&path);

    // Never to another site.
    let elsewhere = console.sign_in(ADMIN_TOKEN, "https://evil.example/").await;
    elsewhere.assert_see_other("/orgs");
}

#[tokio::test]
async fn an_org_page_of_a_missing_or_malformed_org_is_a_404_page() {
    let app = TestApp::spawn().await;
    let console = Console::signed_in(app.base(), ADMIN_TOKEN).await;
    for org in ["not-a-uuid", "3f1e2d4c-0000-4000-8000-000000000000"] {
        let page = console
            .get(&format!("/orgs/{org}/settings/freshdesk"))
            .await;
        page.assert_html(404);
        assert!(page.body.contains("There is no such page."));
    }
}

// ----- Settings → Integrations → Freshdesk ---------------------------------------------------

/// The settings page's path.
fn settings(org: &str) -> String {
    format!("/orgs/{org}/settings/freshdesk")
}

/// A signed-in operator on a fresh org's settings page: (console, org, csrf).
async fn on_settings(app: &TestApp) -> (Console, String, String) {
    let org = app.create_org("Acme").await;
    let console = Console::signed_in(app.base(), ADMIN_TOKEN).await;
    let page = console.get(&settings(&org)).await;
    page.assert_html(200);
    let csrf = page.csrf();
    (console, org, csrf)
}

/// Form fields, in order.
type Fields<'a> = Vec<(&'a str, &'a str)>;

/// A settings form as a browser sends it (auto handle on, unassign, autopilot everywhere).
fn form<'a>(csrf: &'a str, domain: &'a str, key: &'a str) -> Fields<'a> {
    vec![
        ("csrf", csrf),
        ("domain", domain),
        ("api_key", key),
        ("auto_handle_all", "on"),
        ("default_group_id", ""),
        ("routing", "unassign"),
        ("agent_id", ""),
        ("group_id", ""),
        ("marker_field", ""),
        ("email", "autopilot"),
        ("web", "autopilot"),
        ("phone", "autopilot"),
        ("other", ""),
        ("assist_footer", ""),
    ]
}

/// `fields` with `changes` replacing the fields of the same names.
fn with<'a>(mut fields: Fields<'a>, changes: &[(&'a str, &'a str)]) -> Fields<'a> {
    for (name, value) in changes {
        fields.retain(|(n, _)| n != name);
        fields.push((name, value));
    }
    fields
}

#[tokio::test]
async fn the_settings_page_shows_every_section_in_the_order_an_admin_works_with_a_label_on_every_control(
) {
    let app = TestApp::spawn().await;
    let (console, org, _) = on_settings(&app).await;
    let page = console.get(&settings(&org)).await;
    let headings = [
        "Freshdesk account",
        "Intake",
        "Handoff routing",
        "Channels",
        "Webhook and automation rules",
        "Status",
        "Test the integration",
        "Disconnect",
    ];
    let mut at = 0;
    for heading in headings {
        let found = page.body[at..]
            .find(&format!("</span>{heading}</h2>"))
            .unwrap_or_else(|| panic!("{heading} after position {at}: {}", page.body));
        at += found;
    }
    for label in [
        "Freshdesk domain",
        "API key",
        "Default group",
        "Routing",
        "Agent",
        "Group",
        "Marker field",
        "Email",
        "Web",
        "Phone",
        "Other",
        "Assist-mode footer",
    ] {
        assert!(
            page.body.contains(&format!("\">{label}</label>")),
            "{label}"
        );
    }
    assert!(page
        .body
        .contains("Auto handle all incoming tickets</label>"));
    for button in [">Verify</button>", ">Save</button>"] {
        assert!(page.body.contains(button), "{button}");
    }
    // Every control has a label pointing at it.
    for id in [
        "domain",
        "api_key",
        "default_group_id",
        "routing",
        "agent_id",
        "group_id",
        "marker_field",
        "ch-email",
        "ch-other",
        "assist_footer",
    ] {
        assert!(page.body.contains(&format!("<label for=\"{id}\">")), "{id}");
        assert!(page.body.contains(&format!("id=\"{id}\"")), "{id}");
    }
}

#[tokio::test]
async fn verify_shows_the_connected_agent_and_the_account_pickers_and_stores_nothing() {
    let app = TestApp::spawn().await;
    let (console, org, csrf) = on_settings(&app).await;
    let domain = app.sim_domain();
    let page = console
        .post(
            &format!("{}/verify", settings(&org)),
            &form(&csrf, &domain, AI_KEY),
        )
        .await;
    page.assert_html(200);
    assert_eq!(
        page.testid("verify-result")
            .as_deref()
            .map(|t| t.contains("Connected as OpenCX AI ai@acme.test")),
        Some(true),
        "{}",
        page.body
    );
    for option in [
        format!("<option value=\"{SUPPORT_GROUP}\">Support</option>"),
        format!("<option value=\"{BILLING_GROUP}\">Billing</option>"),
        format!("<option value=\"{MARKER_FIELD}\">"),
        format!("<option value=\"{ALICE_ID}\">Alice Human"),
    ] {
        assert!(page.body.contains(&option), "{option}: {}", page.body);
    }
    assert!(
        !page
            .body
            .contains(&format!("<option value=\"{AI_AGENT_ID}\">")),
        "the AI agent is no handoff target"
    );
    assert_eq!(page.input_value("domain"), Some(domain.clone()));
    assert!(!page.body.contains(AI_KEY), "the key is never rendered");
    app.connection(&org)
        .await
        .assert_error(404, "not_connected");
}

#[tokio::test]
async fn verify_shows_the_exact_error_for_a_bad_key_a_non_admin_and_a_wrong_domain() {
    let app = TestApp::spawn().await;
    let (console, org, csrf) = on_settings(&app).await;
    let domain = app.sim_domain();
    let verify = format!("{}/verify", settings(&org));
    for (domain, key, expected) in [
        (
            domain.as_str(),
            "wrong-key",
            "Freshdesk rejected the API key.",
        ),
        (
            domain.as_str(),
            PLAIN_AGENT_KEY,
            "is not an administrator in Freshdesk",
        ),
        ("evil.example.com", AI_KEY, "must end with .freshdesk.com"),
    ] {
        let page = console.post(&verify, &form(&csrf, domain, key)).await;
        page.assert_html(200);
        let result = page.testid("verify-result").unwrap_or_default();
        assert!(result.contains(expected), "{expected}: {result}");
        assert!(!result.contains("Connected as"));
        assert!(!page.body.contains(key) || key == "wrong-key" && !page.body.contains("wrong-key"));
    }
    app.connection(&org)
        .await
        .assert_error(404, "not_connected");
}

#[tokio::test]
async fn save_with_each_routing_stores_the_settings_and_shows_the_webhook_url_and_payloads() {
    let app = TestApp::spawn().await;
    let (console, org, csrf) = on_settings(&app).await;
    let domain = app.sim_domain();
    let support = SUPPORT_GROUP.to_string();
    let alice = ALICE_ID.to_string();
    let cases: Vec<(&str, Vec<(&str, &str)>)> = vec![
        ("unassign", vec![]),
        ("automation", vec![("marker_field", MARKER_FIELD)]),
        (
            "agent",
            vec![("agent_id", &alice), ("marker_field", MARKER_FIELD)],
        ),
        (
            "group",
            vec![("group_id", &support), ("marker_field", MARKER_FIELD)],
        ),
    ];
    for (routing, extra) in cases {
        let mut changes = vec![("routing", routing)];
        changes.extend(extra);
        let saved = console
            .post(
                &settings(&org),
                &with(form(&csrf, &domain, AI_KEY), &changes),
            )
            .await;
        saved.assert_see_other(&format!("{}?saved=1#webhook", settings(&org)));
        let stored = app.connection(&org).await.body;
        assert_eq!(
            stored["settings"]["handoff"]["routing"], routing,
            "{stored}"
        );
        let page = console.get(saved.location.as_deref().unwrap()).await;
        page.assert_html(200);
        assert!(page.body.contains("Saved."));
        assert_eq!(
            page.testid("webhook-url"),
            stored["webhook_url"].as_str().map(str::to_string)
        );
        assert!(!page.body.contains(AI_KEY), "the key is never rendered");
    }
    let page = console.get(&settings(&org)).await;
    assert_eq!(
        page.testid("payload-created").as_deref(),
        Some(ticketsync::connect::TICKET_CREATED_PAYLOAD)
    );
    assert_eq!(
        page.testid("payload-updated").as_deref(),
        Some(ticketsync::connect::TICKET_UPDATED_PAYLOAD)
    );
    assert_eq!(page.body.matches(">Copy</button>").count(), 3);
    assert!(page.body.contains("The webhook URL is a secret."));
    assert!(page.body.contains("Admin → Workflows → Automations"));
    assert!(page.body.contains("<strong>Trigger webhook</strong>"));
    // The stored choices are selected in the pickers.
    assert!(page.body.contains(&format!(
        "<option value=\"{SUPPORT_GROUP}\" selected>Support</option>"
    )));
}

#[tokio::test]
async fn a_refused_save_shows_the_error_in_its_section_keeps_the_typed_values_and_stores_nothing() {
    let app = TestApp::spawn().await;
    let (console, org, csrf) = on_settings(&app).await;
    let domain = app.sim_domain();
    // (changed fields, the section's heading id, the message shown there)
    let cases: Vec<(Fields, &str, &str)> = vec![
        (
            vec![("routing", "agent"), ("marker_field", MARKER_FIELD)],
            "h-handoff",
            "handoff.agent_id is required",
        ),
        (
            vec![
                ("routing", "group"),
                ("group_id", "999"),
                ("marker_field", MARKER_FIELD),
            ],
            "h-handoff",
            "no group with id 999",
        ),
        (
            vec![("auto_handle_all", "off"), ("default_group_id", "998")],
            "h-intake",
            "no group with id 998",
        ),
        (
            vec![("api_key", "wrong-key")],
            "h-account",
            "Freshdesk rejected the API key.",
        ),
        (
            vec![("api_key", "")],
            "h-account",
            "api_key is required on the first save.",
        ),
    ];
    for (changes, section, message) in cases {
        let mut fields = with(form(&csrf, &domain, AI_KEY), &changes);
        if changes.contains(&("auto_handle_all", "off")) {
            fields.retain(|(n, _)| *n != "auto_handle_all");
        }
        let page = console.post(&settings(&org), &fields).await;
        page.assert_html(422);
        let at = page
            .body
            .find(message)
            .unwrap_or_else(|| panic!("{message}: {}", page.body));
        let section_at = page.body.find(&format!("id=\"{section}\"")).unwrap();
        let next_section = page.body[section_at..]
            .find("<section")
            .map(|i| i + section_at);
        assert!(
            at > section_at.saturating_sub(1200) && next_section.is_none_or(|n| at < n),
            "{message} shown in {section}"
        );
        assert_eq!(page.input_value("domain"), Some(domain.clone()));
        assert!(!page.body.contains(AI_KEY));
        app.connection(&org)
            .await
            .assert_error(404, "not_connected");
    }
}

#[tokio::test]
async fn saving_again_with_a_blank_key_keeps_the_stored_one() {
    let app = TestApp::spawn().await;
    let (console, org, csrf) = on_settings(&app).await;
    let domain = app.sim_domain();
    console
        .post(&settings(&org), &form(&csrf, &domain, AI_KEY))
        .await
        .assert_see_other(&format!("{}?saved=1#webhook", settings(&org)));
    let page = console.get(&settings(&org)).await;
    assert!(page.body.contains("Stored — leave blank to keep it"));
    assert_eq!(page.input_value("api_key"), None, "no value attribute");
    let again = console
        .post(
            &settings(&org),
            &with(
                form(&csrf, &domain, ""),
                &[("email", "assist"), ("assist_footer", "Drafted by AI")],
            ),
        )
        .await;
    assert_eq!(again.status, StatusCode::SEE_OTHER, "{}", again.body);
    let stored = app.connection(&org).await.body;
    assert_eq!(stored["settings"]["channels"]["email"], "assist");
    assert_eq!(stored["settings"]["assist_footer"], "Drafted by AI");
    assert_eq!(stored["settings"]["api_key_set"], true);
}

#[tokio::test]
async fn the_status_section_shows_the_backfill_finishing_the_last_webhook_and_the_rate_budget() {
    let app = TestApp::spawn().await;
    let (console, org, csrf) = on_settings(&app).await;
    app.simc
        .bulk_tickets(&freshdesk_sim::BulkTickets {
            count: 3,
            status_cycle: Some(vec![2]),
            updated_at_start: Some(chrono::Utc::now() - chrono::Duration::days(3)),
            step_secs: Some(60),
            ..Default::default()
        })
        .await
        .unwrap();
    console
        .post(&settings(&org), &form(&csrf, &app.sim_domain(), AI_KEY))
        .await
        .assert_see_other(&format!("{}?saved=1#webhook", settings(&org)));
    let status = format!("{}/status", settings(&org));
    let done = eventually(
        "the backfill is done",
        std::time::Duration::from_secs(20),
        || async {
            let fragment = console.get_htmx(&status).await;
            (fragment.testid("backfill-state").as_deref() == Some("done")).then_some(fragment)
        },
    )
    .await;
    done.assert_html(200);
    assert!(
        !done.body.contains("hx-trigger"),
        "polling stops once it is done"
    );
    assert_eq!(done.testid("backfill-tickets").as_deref(), Some("3"));
    assert_eq!(done.testid("backfill-error").as_deref(), Some("none"));
    assert_eq!(done.testid("last-webhook").as_deref(), Some("never"));
    assert!(done
        .testid("rate-budget")
        .unwrap()
        .contains("calls a minute used"));
    assert!(
        done.testid("backfill-pages")
            .unwrap()
            .parse::<u32>()
            .unwrap()
            >= 1
    );

    app.point_webhook_at(&org).await;
    app.new_ticket("New question", "Hello").await;
    eventually(
        "the webhook is shown",
        std::time::Duration::from_secs(20),
        || async { console.get(&status).await.testid("last-webhook").as_deref() != Some("never") },
    )
    .await;
}

#[tokio::test]
async fn disconnect_asks_for_confirmation_then_disconnects() {
    let app = TestApp::spawn().await;
    let (console, org, csrf) = on_settings(&app).await;
    console
        .post(&settings(&org), &form(&csrf, &app.sim_domain(), AI_KEY))
        .await
        .assert_see_other(&format!("{}?saved=1#webhook", settings(&org)));
    let confirm = console.get(&format!("{}/disconnect", settings(&org))).await;
    confirm.assert_html(200);
    assert!(confirm.body.contains(">Yes, disconnect</button>"));
    assert_eq!(app.connection(&org).await.body["connected"], true);
    let refused = console
        .post(
            &format!("{}/disconnect", settings(&org)),
            &[("csrf", "forged")],
        )
        .await;
    refused.assert_html(403);
    assert_eq!(app.connection(&org).await.body["connected"], true);
    console
        .post(
            &format!("{}/disconnect", settings(&org)),
            &[("csrf", &confirm.csrf())],
        )
        .await
        .assert_see_other(&settings(&org));
    assert_eq!(app.connection(&org).await.body["connected"], false);
    let page = console.get(&settings(&org)).await;
    assert!(page.body.contains(">Disconnected</span>"));
}

#[tokio::test]
async fn the_self_test_runs_from_the_settings_page_and_reports_each_step() {
    let app = TestApp::spawn_with(&[("TICKETSYNC__SELF_TEST__WAIT_SECS", "5".into())]).await;
    let (console, org, csrf) = on_settings(&app).await;
    console
        .post(&settings(&org), &form(&csrf, &app.sim_domain(), AI_KEY))
        .await
        .assert_see_other(&format!("{}?saved=1#webhook", settings(&org)));
    app.point_webhook_at(&org).await;
    let page = console.get(&settings(&org)).await;
    assert!(page
        .testid("self-test-result")
        .unwrap()
        .contains("Not run yet."));
    console
        .post(&format!("{}/self-test", settings(&org)), &[("csrf", &csrf)])
        .await
        .assert_see_other(&format!("{}#test", settings(&org)));
    let fragment = format!("{}/self-test", settings(&org));
    let finished = eventually(
        "the self-test finishes",
        std::time::Duration::from_secs(40),
        || async {
            let page = console.get_htmx(&fragment).await;
            (page.testid("self-test-state").as_deref() != Some("running")).then_some(page)
        },
    )
    .await;
    assert_eq!(
        finished.testid("self-test-state").as_deref(),
        Some("passed"),
        "{}",
        finished.body
    );
    assert!(!finished.body.contains("hx-trigger"), "polling stops");
    let steps = finished
        .body
        .matches("data-testid=\"self-test-step\"")
        .count();
    assert!(steps >= 5, "{steps} steps");
    assert!(
        finished
            .body
            .contains("Rule 1 (ticket created): received after"),
        "{}",
        finished.body
    );
}

#[tokio::test]
async fn the_api_key_and_the_webhook_url_never_reach_a_page_they_do_not_belong_on() {
    let app = TestApp::spawn().await;
    let (console, org, csrf) = on_settings(&app).await;
    console
        .post(&settings(&org), &form(&csrf, &app.sim_domain(), AI_KEY))
        .await
        .assert_see_other(&format!("{}?saved=1#webhook", settings(&org)));
    let url = app.connection(&org).await.body["webhook_url"]
        .as_str()
        .unwrap()
        .to_string();
    let token = url.rsplit('/').next().unwrap().to_string();
    let mut pages = Vec::new();
    for path in [
        "/orgs".to_string(),
        settings(&org),
        format!("{}/status", settings(&org)),
        format!("{}/self-test", settings(&org)),
        format!("{}/disconnect", settings(&org)),
    ] {
        pages.push((path.clone(), console.get(&path).await));
    }
    pages.push((
        "verify".into(),
        console
            .post(
                &format!("{}/verify", settings(&org)),
                &form(&csrf, &app.sim_domain(), AI_KEY),
            )
            .await,
    ));
    pages.push((
        "refused save".into(),
        console
            .post(
                &settings(&org),
                &with(
                    form(&csrf, &app.sim_domain(), AI_KEY),
                    &[("routing", "agent")],
                ),
            )
            .await,
    ));
    for (path, page) in &pages {
        assert!(!page.body.contains(AI_KEY), "the key on {path}");
        assert!(
            !page.body.contains(ADMIN_TOKEN),
            "the admin token on {path}"
        );
        // The settings page, also as verify and a refused save render it.
        let settings_page = [settings(&org), "verify".into(), "refused save".into()].contains(path);
        assert_eq!(
            page.body.contains(&token),
            settings_page,
            "webhook URL on {path}"
        );
    }
    // Not to a visitor without a session.
    let visitor = Console::new(app.base());
    let page = visitor.get(&settings(&org)).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    assert!(!page.body.contains(&token));
}

/// An org admin token for `org`, through the JSON API.
async fn org_token(app: &TestApp, org: &str) -> String {
    let r = app
        .call(
            Method::POST,
            &format!("/api/v1/orgs/{org}/tokens"),
            Some(serde_json::json!({"name": "org admin"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    r.body["token"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn an_org_admin_works_on_its_own_settings_and_gets_the_not_found_page_for_another_orgs() {
    let app = TestApp::spawn().await;
    let org_a = app.create_org("Acme").await;
    let org_b = app.create_org("Beta").await;
    let admin = Console::signed_in(app.base(), &org_token(&app, &org_a).await).await;

    let list = admin.get("/orgs").await;
    list.assert_html(200);
    assert!(list.body.contains(">Acme</a>"));
    assert!(!list.body.contains("Beta"), "another org is not even named");
    assert!(
        !list.body.contains("Create organization"),
        "creating orgs is the operator's"
    );
    let csrf = list.csrf();
    admin
        .post("/orgs", &[("csrf", &csrf), ("name", "Gamma")])
        .await
        .assert_html(404);
    assert_eq!(org_count(&app).await, 2);

    let domain = app.sim_domain();
    admin
        .post(&settings(&org_a), &form(&csrf, &domain, AI_KEY))
        .await
        .assert_see_other(&format!("{}?saved=1#webhook", settings(&org_a)));
    assert_eq!(app.connection(&org_a).await.body["connected"], true);

    for path in [
        settings(&org_b),
        format!("{}/status", settings(&org_b)),
        format!("{}/self-test", settings(&org_b)),
        format!("{}/disconnect", settings(&org_b)),
    ] {
        let page = admin.get(&path).await;
        page.assert_html(404);
        assert!(!page.body.contains("Beta"), "{path}");
    }
    for path in [
        settings(&org_b),
        format!("{}/verify", settings(&org_b)),
        format!("{}/self-test", settings(&org_b)),
        format!("{}/disconnect", settings(&org_b)),
    ] {
        admin
            .post(&path, &form(&csrf, &domain, AI_KEY))
            .await
            .assert_html(404);
    }
    app.connection(&org_b)
        .await
        .assert_error(404, "not_connected");
}

#[tokio::test]
async fn deleting_the_org_of_a_signed_in_org_admin_ends_its_session() {
    let app = TestApp::spawn().await;
    let org = app.create_org("Acme").await;
    let admin = Console::signed_in(app.base(), &org_token(&app, &org).await).await;
    admin.get(&settings(&org)).await.assert_html(200);
    let r = app
        .call(Method::DELETE, &format!("/api/v1/orgs/{org}"), None)
        .await;
    assert!(r.status.is_success(), "{}", r.body);
    admin.get(&settings(&org)).await.assert_see_other(&format!(
        "/sign-in?next=%2Forgs%2F{org}%2Fsettings%2Ffreshdesk"
    ));
}
