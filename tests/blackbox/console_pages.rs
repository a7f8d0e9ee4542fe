//! The console's Inbox, Engine and Access pages over real HTTP, as a browser without
//! JavaScript uses them: sessions listed, filtered and paged; a session's thread, hand off and
//! resume; the engine's numbers and a ticket's inspection; org admin tokens; and the 404 page
//! for what an org admin may not see.

use crate::console_client::{decode, Console, Page};
use crate::harness::*;
use chrono::{Duration as Days, Utc};
use freshdesk_sim::BulkTickets;
use reqwest::Method;
use serde_json::{json, Value};
use std::time::Duration;

const FAQ_QUESTION: &str = "How do I reset my password?";

/// The tickets the rows of an inbox page link to, in page order.
fn ticket_numbers(page: &Page) -> Vec<u64> {
    page.body
        .split("data-testid=\"session-row\"")
        .skip(1)
        .map(|row| {
            let at = row.find(">#").expect("a ticket link") + 2;
            row[at..at + row[at..].find('<').unwrap()].parse().unwrap()
        })
        .collect()
}

/// The href of the link labelled `label`.
fn link(page: &Page, label: &str) -> Option<String> {
    let at = page.body.find(&format!(">{label}</a>"))?;
    let start = page.body[..at].rfind("href=\"")? + 6;
    let end = start + page.body[start..].find('"')?;
    Some(page.body[start..end].replace("&amp;", "&"))
}

/// Wait until the org's backfill has imported `n` sessions.
async fn wait_sessions(t: &TestApp, org: &str, n: usize) {
    eventually("sessions imported", Duration::from_secs(60), || async {
        let r = t
            .call(
                Method::GET,
                &format!("/api/v1/orgs/{org}/sessions?limit=200"),
                None,
            )
            .await;
        (r.body["items"].as_array().map_or(0, Vec::len) == n).then_some(())
    })
    .await;
}

#[tokio::test]
async fn an_org_without_sessions_has_an_inbox_that_says_how_to_get_the_first_one() {
    let t = TestApp::spawn().await;
    let org = t.create_org("Acme").await;
    let admin = Console::signed_in(t.base(), ADMIN_TOKEN).await;
    let page = admin.get(&format!("/orgs/{org}/inbox")).await;
    page.assert_html(200);
    let empty = page.testid("inbox-empty").expect("an empty state");
    assert!(empty.contains("No sessions yet"), "{empty}");
    assert!(page.body.contains(&format!(
        "href=\"/orgs/{org}/settings/freshdesk\">Settings</a>"
    )));
    assert!(page
        .body
        .contains("<label for=\"filter-state\">State</label>"));
    assert!(page
        .body
        .contains("<label for=\"filter-channel\">Channel</label>"));
    assert!(page.body.contains(">Filter</button>"));
}

#[tokio::test]
async fn the_inbox_lists_sessions_newest_first_filters_them_by_state_and_channel_and_pages_through_them(
) {
    let t = TestApp::spawn().await;
    let bulk = |count, source, start_days| BulkTickets {
        count,
        source: Some(source),
        status_cycle: Some(vec![2]),
        updated_at_start: Some(Utc::now() - Days::days(start_days)),
        step_secs: Some(60),
        ..Default::default()
    };
    let emails = t.simc.bulk_tickets(&bulk(20, 1, 3)).await.unwrap();
    let phones = t.simc.bulk_tickets(&bulk(7, 3, 2)).await.unwrap();
    let org = t.connected_with_webhook(json!({})).await;
    wait_sessions(&t, &org, 27).await;
    let human = t
        .new_ticket("Help", "I want to talk to a HUMAN please")
        .await;
    t.wait_session(&org, human, "handed off", |s| s["state"] == "handed_off")
        .await;
    t.settle().await;
    let api: Vec<u64> = t
        .call(
            Method::GET,
            &format!("/api/v1/orgs/{org}/sessions?limit=200"),
            None,
        )
        .await
        .body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["ticket_id"].as_u64().unwrap())
        .collect();
    assert_eq!(api.len(), 28);
    let admin = Console::signed_in(t.base(), ADMIN_TOKEN).await;

    // Newest first, 25 to a page, then the rest behind "Next page".
    let first = admin.get(&format!("/orgs/{org}/inbox")).await;
    first.assert_html(200);
    assert_eq!(ticket_numbers(&first), api[..25]);
    assert_eq!(ticket_numbers(&first)[0], human);
    let next = link(&first, "Next page").expect("a next page link");
    let second = admin.get(&next).await;
    second.assert_html(200);
    assert_eq!(ticket_numbers(&second), api[25..]);
    assert!(link(&second, "Next page").is_none(), "the last page");

    // By channel: only the phone tickets, and the filter stays selected.
    let phone = admin
        .get(&format!("/orgs/{org}/inbox?state=&channel=phone"))
        .await;
    phone.assert_html(200);
    let mut got = ticket_numbers(&phone);
    got.sort();
    let mut want = phones.clone();
    want.sort();
    assert_eq!(got, want);
    assert!(phone
        .body
        .contains("<option value=\"phone\" selected>Phone</option>"));

    // By state: only the handed-off ticket; combined with a channel nothing matches.
    let handed = admin
        .get(&format!("/orgs/{org}/inbox?state=handed_off"))
        .await;
    assert_eq!(ticket_numbers(&handed), [human]);
    let none = admin
        .get(&format!("/orgs/{org}/inbox?state=handed_off&channel=phone"))
        .await;
    none.assert_html(200);
    assert!(ticket_numbers(&none).is_empty());
    let empty = none.testid("inbox-empty").expect("an empty state");
    assert!(empty.contains("No sessions match these filters"), "{empty}");
    let email = admin.get(&format!("/orgs/{org}/inbox?channel=email")).await;
    let mut got = ticket_numbers(&email);
    got.sort();
    let mut want = emails.clone();
    want.push(human);
    want.sort();
    assert_eq!(
        got, want,
        "the bulk email tickets and the one written by email"
    );

    // A filter or cursor that is not one of ours: said on the page, 400.
    let bad = admin.get(&format!("/orgs/{org}/inbox?state=bogus")).await;
    bad.assert_html(400);
    assert!(bad.body.contains("state must be one of"), "{}", bad.body);
    admin
        .get(&format!("/orgs/{org}/inbox?cursor=zzz"))
        .await
        .assert_html(400);
}

/// The session page of `ticket`, opened from the inbox.
async fn session_page(admin: &Console, org: &str, ticket: u64) -> (String, Page) {
    let inbox = admin.get(&format!("/orgs/{org}/inbox")).await;
    let href = link(&inbox, &format!("#{ticket}")).expect("the ticket's row links to it");
    let page = admin.get(&href).await;
    page.assert_html(200);
    (href, page)
}

#[tokio::test]
async fn the_session_page_shows_the_thread_with_authors_and_kinds_the_state_and_a_link_to_freshdesk(
) {
    let t = TestApp::spawn().await;
    let org = t.connected_with_webhook(json!({})).await;
    let id = t.new_ticket("Password", FAQ_QUESTION).await;
    t.wait_ai_posts(id, 1).await;
    t.settle().await;
    let admin = Console::signed_in(t.base(), ADMIN_TOKEN).await;
    let (_, page) = session_page(&admin, &org, id).await;
    assert_eq!(page.testid("session-state").as_deref(), Some("AI active"));
    assert!(page.body.contains("data-state=\"ai_active\""));
    assert!(page.body.contains("<h1>Password</h1>"), "{}", page.body);
    let messages: Vec<&str> = page.body.split("data-testid=\"message\"").skip(1).collect();
    assert_eq!(messages.len(), 2, "{}", page.body);
    assert!(messages[0].contains("<strong>Customer</strong>"));
    assert!(messages[0].contains(FAQ_QUESTION));
    assert!(messages[1].contains("<strong>AI</strong>"));
    assert!(messages[1].contains("Public reply"));
    let session = t.session(&org, id).await.body;
    let reply = session["messages"][1]["body_text"].as_str().unwrap();
    assert!(
        decode(messages[1]).contains(reply),
        "the AI's reply is in the thread: {reply}"
    );
    assert_eq!(
        link(&page, "Open in Freshdesk").as_deref(),
        Some(format!("http://{}/a/tickets/{id}", t.sim_domain()).as_str())
    );
    assert!(page
        .body
        .contains("<label for=\"handoff-reason\">Reason</label>"));
    assert!(page.body.contains(">Hand off</button>"));
    assert!(page.body.contains(">Resume AI</button>"));
    // An unknown session is the 404 page.
    admin
        .get(&format!(
            "/orgs/{org}/inbox/00000000-0000-4000-8000-000000000000"
        ))
        .await
        .assert_html(404);
}

async fn api_state(t: &TestApp, org: &str, ticket: u64) -> Value {
    t.session(org, ticket).await.body
}

#[tokio::test]
async fn hand_off_and_resume_change_the_state_and_are_refused_without_the_csrf_token() {
    let t = TestApp::spawn().await;
    let org = t.connected_with_webhook(json!({})).await;
    let id = t.new_ticket("Password", FAQ_QUESTION).await;
    t.wait_ai_posts(id, 1).await;
    t.settle().await;
    let admin = Console::signed_in(t.base(), ADMIN_TOKEN).await;
    let (href, page) = session_page(&admin, &org, id).await;
    let csrf = page.csrf();

    let refused = admin
        .post(&format!("{href}/handoff"), &[("reason", "no token")])
        .await;
    refused.assert_html(403);
    let wrong = admin
        .post(
            &format!("{href}/handoff"),
            &[("csrf", "not-the-token"), ("reason", "wrong token")],
        )
        .await;
    wrong.assert_html(403);
    assert_eq!(api_state(&t, &org, id).await["state"], "ai_active");

    let done = admin
        .post(
            &format!("{href}/handoff"),
            &[("csrf", &csrf), ("reason", "  VIP customer  ")],
        )
        .await;
    done.assert_see_other(&format!("{href}?done=handoff"));
    let session = api_state(&t, &org, id).await;
    assert_eq!(session["state"], "handed_off");
    assert_eq!(session["handoff"]["reason"], "admin");
    assert_eq!(session["handoff"]["detail"], "VIP customer");
    let after = admin.get(&format!("{href}?done=handoff")).await;
    assert_eq!(after.testid("session-state").as_deref(), Some("Handed off"));
    assert!(after
        .body
        .contains("The ticket is handed off to your team."));
    assert!(
        after.body.contains("<dt>Detail</dt><dd>VIP customer</dd>"),
        "{}",
        after.body
    );

    admin
        .post(&format!("{href}/resume"), &[])
        .await
        .assert_html(403);
    assert_eq!(api_state(&t, &org, id).await["state"], "handed_off");
    admin
        .post(&format!("{href}/resume"), &[("csrf", &csrf)])
        .await
        .assert_see_other(&format!("{href}?done=resume"));
    assert_eq!(api_state(&t, &org, id).await["state"], "ai_active");
    let resumed = admin.get(&href).await;
    assert_eq!(
        resumed.testid("session-state").as_deref(),
        Some("AI active")
    );

    // On a disconnected org the command is refused on the page, and nothing changes.
    t.disconnect(&org).await;
    let refused = admin
        .post(
            &format!("{href}/handoff"),
            &[("csrf", &csrf), ("reason", "x")],
        )
        .await;
    refused.assert_html(409);
    assert!(refused.body.contains("The organization is disconnected"));
    assert_eq!(api_state(&t, &org, id).await["state"], "ai_active");
}

/// The engine page's figure `key`.
fn figure(page: &Page, key: &str) -> String {
    page.testid(&format!("engine-{key}"))
        .unwrap_or_else(|| panic!("no figure {key}: {}", page.body))
}

#[tokio::test]
async fn the_engine_page_shows_the_numbers_of_the_inspection_api_and_looks_up_a_ticket() {
    let t = TestApp::spawn().await;
    let org = t.connected_with_webhook(json!({})).await;
    let id = t.new_ticket("Password", FAQ_QUESTION).await;
    t.wait_ai_posts(id, 1).await;
    t.settle().await;
    let admin = Console::signed_in(t.base(), ADMIN_TOKEN).await;
    let page = admin.get("/engine").await;
    page.assert_html(200);
    let inspect = t.call(Method::GET, "/api/v1/inspect", None).await.body;
    for key in [
        "tracked_tickets",
        "inbox_depth",
        "pending_effects",
        "parked_tickets",
        "events_processed",
        "events_failed",
        "actor_restarts",
        "effects_reconciled",
    ] {
        assert_eq!(figure(&page, key), inspect[key].to_string(), "{key}");
    }
    assert_eq!(figure(&page, "tracked_tickets"), "1");
    assert_eq!(page.testid("engine-org-name").as_deref(), Some("Acme"));
    assert_eq!(inspect["parked"], json!([]), "no ticket is parked");
    assert!(page.testid("engine-no-parked").is_some());

    // The lookup shows the ticket's inspection and links to its session.
    let found = admin
        .get(&format!("/engine/ticket?org_id={org}&ticket_id={id}"))
        .await;
    found.assert_html(200);
    let ticket = t.inspect_ticket(&org, id).await;
    assert!(found.body.contains("<dd>tracked</dd>"), "{}", found.body);
    let session = ticket["session_id"].as_str().unwrap();
    assert!(found
        .body
        .contains(&format!("href=\"/orgs/{org}/inbox/{session}\"")));
    let bad = admin
        .get(&format!("/engine/ticket?org_id={org}&ticket_id=abc"))
        .await;
    bad.assert_html(400);
    assert!(bad.body.contains("Ticket ID must be"));
}

/// Create an org admin token for `org` on its Access page; returns the token shown once.
async fn new_token(admin: &Console, org: &str, name: &str) -> String {
    let page = admin.get(&format!("/orgs/{org}/access")).await;
    page.assert_html(200);
    let created = admin
        .post(
            &format!("/orgs/{org}/access/tokens"),
            &[("csrf", &page.csrf()), ("name", name)],
        )
        .await;
    created.assert_html(200);
    created.testid("new-token").expect("the new token is shown")
}

#[tokio::test]
async fn the_operator_creates_an_org_admin_token_sees_it_once_and_revokes_it() {
    let t = TestApp::spawn().await;
    let org = t.create_org("Acme").await;
    let admin = Console::signed_in(t.base(), ADMIN_TOKEN).await;
    let page = admin.get(&format!("/orgs/{org}/access")).await;
    page.assert_html(200);
    assert!(page
        .body
        .contains("<label for=\"token-name\">Token name</label>"));
    let csrf = page.csrf();

    // Refused without the CSRF token, or with a blank name; nothing is created.
    admin
        .post(
            &format!("/orgs/{org}/access/tokens"),
            &[("name", "Support lead")],
        )
        .await
        .assert_html(403);
    let blank = admin
        .post(
            &format!("/orgs/{org}/access/tokens"),
            &[("csrf", &csrf), ("name", "   ")],
        )
        .await;
    blank.assert_html(422);
    assert!(blank.body.contains("name must be 1 to"), "{}", blank.body);
    assert!(!blank.body.contains("data-testid=\"token-row\""));

    let token = new_token(&admin, &org, "Support lead").await;
    assert!(token.starts_with("tso_"), "{token}");
    let listed = admin.get(&format!("/orgs/{org}/access")).await;
    let row = listed.testid("token-row").expect("the token is listed");
    assert!(row.contains("Support lead"), "{row}");
    assert!(!listed.body.contains(&token), "shown once only");

    // The token signs its admin in to this org only; its last use is then listed.
    let org_admin = Console::signed_in(t.base(), &token).await;
    org_admin
        .get(&format!("/orgs/{org}/inbox"))
        .await
        .assert_html(200);
    let listed = admin.get(&format!("/orgs/{org}/access")).await;
    assert!(!listed.body.contains("<td>never</td>"), "{}", listed.body);

    // Revoking needs the CSRF token; then the admin's session ends at its next request.
    let revoke = {
        let at = listed.body.find("/revoke\"").unwrap();
        let start = listed.body[..at].rfind("action=\"").unwrap() + 8;
        format!("{}/revoke", &listed.body[start..at])
    };
    admin.post(&revoke, &[]).await.assert_html(403);
    org_admin
        .get(&format!("/orgs/{org}/inbox"))
        .await
        .assert_html(200);
    admin
        .post(&revoke, &[("csrf", &csrf)])
        .await
        .assert_see_other(&format!("/orgs/{org}/access?revoked=1"));
    let after = admin.get(&format!("/orgs/{org}/access?revoked=1")).await;
    assert!(after.testid("token-row").is_none());
    assert!(after.body.contains("The token is revoked"));
    let ended = org_admin.get(&format!("/orgs/{org}/inbox")).await;
    assert_eq!(ended.status, reqwest::StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn an_org_admin_gets_the_not_found_page_for_the_engine_the_access_pages_and_another_orgs_inbox(
) {
    let t = TestApp::spawn().await;
    let org_a = t.connected_with_webhook(json!({})).await;
    let org_b = t.create_org("Beta").await;
    let id = t.new_ticket("Password", FAQ_QUESTION).await;
    t.wait_ai_posts(id, 1).await;
    t.settle().await;
    let operator = Console::signed_in(t.base(), ADMIN_TOKEN).await;
    let token = new_token(&operator, &org_a, "A admin").await;
    let (href, _) = session_page(&operator, &org_a, id).await;
    let session = href.rsplit('/').next().unwrap().to_string();

    let admin = Console::signed_in(t.base(), &token).await;
    let own = admin.get(&format!("/orgs/{org_a}/inbox")).await;
    own.assert_html(200);
    assert!(!own.body.contains(">Engine</a>"), "no engine link");
    assert!(!own.body.contains(">Access</a>"), "no access link");
    let csrf = admin.get(&href).await.csrf();
    for path in [
        "/engine".to_string(),
        format!("/engine/ticket?org_id={org_a}&ticket_id={id}"),
        format!("/orgs/{org_a}/access"),
        format!("/orgs/{org_b}/access"),
        format!("/orgs/{org_b}/inbox"),
        format!("/orgs/{org_b}/inbox/{session}"),
    ] {
        admin.get(&path).await.assert_html(404);
    }
    // Forms of pages it may not see: the same 404, and nothing changes.
    for path in [
        format!("/orgs/{org_a}/access/tokens"),
        format!("/orgs/{org_b}/access/tokens"),
        format!("/orgs/{org_b}/inbox/{session}/handoff"),
    ] {
        admin
            .post(&path, &[("csrf", &csrf), ("name", "x"), ("reason", "x")])
            .await
            .assert_html(404);
    }
    assert_eq!(t.session(&org_a, id).await.body["state"], "ai_active");
    let tokens = operator.get(&format!("/orgs/{org_a}/access")).await;
    assert_eq!(tokens.body.matches("data-testid=\"token-row\"").count(), 1);
}

#[tokio::test]
async fn the_operator_deletes_an_org_after_confirming_and_its_webhook_then_answers_410() {
    let t = TestApp::spawn().await;
    let org = t.connected_with_webhook(json!({})).await;
    let webhook = t.webhook_url(&org).await;
    let id = t.new_ticket("Password", FAQ_QUESTION).await;
    t.wait_ai_posts(id, 1).await;
    t.settle().await;
    let operator = Console::signed_in(t.base(), ADMIN_TOKEN).await;
    let token = new_token(&operator, &org, "A admin").await;
    let org_admin = Console::signed_in(t.base(), &token).await;

    let access = operator.get(&format!("/orgs/{org}/access")).await;
    assert_eq!(
        link(&access, "Delete organization").as_deref(),
        Some(format!("/orgs/{org}/delete").as_str())
    );
    let confirm = operator.get(&format!("/orgs/{org}/delete")).await;
    confirm.assert_html(200);
    assert!(confirm
        .body
        .contains(">Yes, delete this organization</button>"));
    let csrf = confirm.csrf();

    // Refused without the CSRF token, and to the org's own admin: nothing is deleted.
    operator
        .post(&format!("/orgs/{org}/delete"), &[])
        .await
        .assert_html(403);
    org_admin
        .get(&format!("/orgs/{org}/delete"))
        .await
        .assert_html(404);
    let admin_csrf = org_admin.get(&format!("/orgs/{org}/inbox")).await.csrf();
    org_admin
        .post(&format!("/orgs/{org}/delete"), &[("csrf", &admin_csrf)])
        .await
        .assert_html(404);
    let still = t
        .call(Method::GET, &format!("/api/v1/orgs/{org}"), None)
        .await;
    assert_eq!(still.status, 200, "{}", still.body);

    operator
        .post(&format!("/orgs/{org}/delete"), &[("csrf", &csrf)])
        .await
        .assert_see_other("/orgs");
    t.call(Method::GET, &format!("/api/v1/orgs/{org}"), None)
        .await
        .assert_error(404, "org_not_found");
    let orgs = operator.get("/orgs").await;
    assert!(!orgs.body.contains(&org), "the org is no longer listed");
    operator
        .get(&format!("/orgs/{org}/inbox"))
        .await
        .assert_html(404);
    let r = t
        .http
        .post(&webhook)
        .json(&json!({"ticketId": id.to_string(), "triggered_event": "ticket_created"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 410);
    let ended = org_admin.get(&format!("/orgs/{org}/inbox")).await;
    assert_eq!(
        ended.status,
        reqwest::StatusCode::SEE_OTHER,
        "the org admin's session ended with its org"
    );
}
