//! The reqwest Freshdesk client against a tiny local HTTP server with canned answers: what it
//! sends (auth, paths, queries, bodies) and how each kind of answer becomes a result or a
//! `FreshdeskError`. Full scenarios against the Freshdesk simulator live elsewhere.

use actix_web::dev::ServerHandle;
use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use base64::Engine as _;
use chrono::{TimeZone, Utc};
use secrecy::SecretString;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use ticketsync::freshdesk::{
    build_http_client, CallObserver, CallOutcome, CallRecord, DomainPolicy, FreshdeskClient,
};
use ticketsync_actors::freshdesk::{
    FreshdeskApi, FreshdeskError, RateLimit, TicketListQuery, TicketStatus, TicketUpdate,
};
use ticketsync_actors::ids::{AgentId, GroupId, TicketId};

const API_KEY: &str = "sk_test_do_not_leak_42";

/// A request as the fake Freshdesk saw it.
#[derive(Debug, Clone)]
struct Seen {
    method: String,
    path: String,
    query: String,
    authorization: String,
    user_agent: String,
    accept: String,
    body: Option<serde_json::Value>,
}

#[derive(Default)]
struct Journal(Mutex<Vec<Seen>>);

impl Journal {
    fn all(&self) -> Vec<Seen> {
        self.0.lock().unwrap().clone()
    }

    fn last(&self) -> Seen {
        self.all().pop().expect("the fake Freshdesk saw a request")
    }
}

/// The fake Freshdesk, listening on a free local port.
struct FakeFreshdesk {
    host: String,
    journal: Arc<Journal>,
    handle: ServerHandle,
}

impl FakeFreshdesk {
    async fn start() -> Self {
        let journal = Arc::new(Journal::default());
        let data = web::Data::from(journal.clone());
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let host = format!("127.0.0.1:{}", listener.local_addr().unwrap().port());
        let server = HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                .default_service(web::to(answer))
        })
        .workers(1)
        .disable_signals()
        .listen(listener)
        .unwrap()
        .run();
        let handle = server.handle();
        actix_web::rt::spawn(server);
        Self {
            host,
            journal,
            handle,
        }
    }

    fn client(&self, timeout: Duration) -> (FreshdeskClient, Arc<Mutex<Vec<CallRecord>>>) {
        client_for(&self.host, timeout)
    }

    async fn stop(self) {
        self.handle.stop(false).await;
    }
}

/// A client for `host` (allowed as an insecure host) and the records its observer collects.
fn client_for(host: &str, timeout: Duration) -> (FreshdeskClient, Arc<Mutex<Vec<CallRecord>>>) {
    let policy = DomainPolicy::new([".freshdesk.com"], [host]);
    let domain = policy.parse(host).unwrap();
    let records = Arc::new(Mutex::new(Vec::new()));
    let sink = records.clone();
    let observer: Arc<dyn CallObserver> =
        Arc::new(move |call: &CallRecord| sink.lock().unwrap().push(*call));
    let client = FreshdeskClient::new(
        build_http_client(timeout),
        domain,
        SecretString::from(API_KEY),
        Some(observer),
    );
    (client, records)
}

fn rate_limited(mut response: actix_web::HttpResponseBuilder) -> actix_web::HttpResponseBuilder {
    response
        .insert_header(("X-RateLimit-Total", "200"))
        .insert_header(("X-RateLimit-Remaining", "150"))
        .insert_header(("X-RateLimit-Used-CurrentRequest", "1"));
    response
}

fn ticket_json(id: u64) -> serde_json::Value {
    serde_json::json!({
        "id": id, "subject": "Printer on fire", "status": 2, "priority": 1, "source": 1,
        "custom_fields": {"cf_opencx_handed_off_1234": false},
        "created_at": "2024-05-01T10:00:00Z", "updated_at": "2024-05-01T11:00:00Z",
        "unknown_key": {"ignored": true}
    })
}

fn conversation_json(id: u64, private: bool) -> serde_json::Value {
    serde_json::json!({
        "id": id, "body": "<p>hi</p>", "body_text": "hi", "incoming": false,
        "private": private, "source": if private { 2 } else { 0 }, "user_id": 7,
        "created_at": "2024-05-01T10:05:00Z"
    })
}

/// The canned answers, by method and path.
async fn answer(req: HttpRequest, body: web::Bytes, journal: web::Data<Journal>) -> HttpResponse {
    let header = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    journal.0.lock().unwrap().push(Seen {
        method: req.method().to_string(),
        path: req.path().to_string(),
        query: req.query_string().to_string(),
        authorization: header("authorization"),
        user_agent: header("user-agent"),
        accept: header("accept"),
        body: serde_json::from_slice(&body).ok(),
    });

    let Some(path) = req.path().strip_prefix("/api/v2") else {
        return HttpResponse::NotFound().finish();
    };
    match (req.method().as_str(), path) {
        ("GET", "/agents/me") => rate_limited(HttpResponse::Ok()).json(serde_json::json!({
            "id": 7, "role_ids": [1], "group_ids": [],
            "contact": {"name": "AI Agent", "email": "ai@acme.test"}
        })),
        ("GET", "/agents") => HttpResponse::Ok()
            .insert_header((
                "Link",
                format!("<http://{}/api/v2/agents?per_page=100&page=2>; rel=\"next\"", req.connection_info().host()),
            ))
            .json(serde_json::json!([{"id": 7, "contact": {"name": "AI Agent"}}])),
        ("GET", "/roles") => HttpResponse::Forbidden().json(serde_json::json!({
            "code": "access_denied", "message": "You are not authorized to perform this action."
        })),
        ("GET", "/groups/3") => HttpResponse::Ok().json(serde_json::json!({"id": 3, "name": "Billing"})),
        ("GET", "/groups") => HttpResponse::Ok().json(serde_json::json!([{"id": 3, "name": "Billing"}])),
        ("GET", "/tickets") => rate_limited(HttpResponse::Ok())
            .insert_header((
                "Link",
                "<http://x/api/v2/tickets?page=3>; rel=\"next\"",
            ))
            .json(serde_json::json!([ticket_json(1), ticket_json(2)])),
        ("GET", "/tickets/1/conversations") => {
            HttpResponse::Ok().json(serde_json::json!([conversation_json(10, false)]))
        }
        ("GET", "/tickets/1") => rate_limited(HttpResponse::Ok()).json(ticket_json(1)),
        ("PUT", "/tickets/1") => HttpResponse::Ok().json(ticket_json(1)),
        ("POST", "/tickets/1/reply") => HttpResponse::Created().json(conversation_json(11, false)),
        ("POST", "/tickets/1/notes") => HttpResponse::Created().json(conversation_json(12, true)),
        ("GET", "/tickets/2") => HttpResponse::Ok().json(serde_json::json!({"id": "not a number"})),
        ("GET", "/tickets/400") => HttpResponse::BadRequest().json(serde_json::json!({
            "description": "Validation failed",
            "errors": [{"field": "responder_id", "message": "There is no agent matching the given responder_id", "code": "invalid_value"}]
        })),
        ("GET", "/tickets/401") => HttpResponse::Unauthorized().json(serde_json::json!({
            "code": "invalid_credentials", "message": "You have to be logged in to perform this action."
        })),
        ("GET", "/tickets/403") => HttpResponse::Forbidden().json(serde_json::json!({
            "code": "require_feature", "message": "The Ticket feature is not in your plan."
        })),
        ("GET", "/tickets/404") => HttpResponse::NotFound().finish(),
        ("GET", "/tickets/429") => rate_limited(HttpResponse::TooManyRequests())
            .insert_header(("Retry-After", "7"))
            .json(serde_json::json!({"code": "rate_limited"})),
        ("GET", "/tickets/4290") => HttpResponse::TooManyRequests().finish(),
        ("GET", "/tickets/500") => HttpResponse::InternalServerError().body("<html>oops</html>"),
        ("GET", "/tickets/503") => HttpResponse::ServiceUnavailable().finish(),
        ("GET", "/tickets/418") => HttpResponse::ImATeapot().finish(),
        ("GET", "/tickets/302") => HttpResponse::Found()
            .insert_header(("Location", "/api/v2/redirected-here"))
            .finish(),
        ("GET", "/tickets/9000") => {
            actix_web::rt::time::sleep(Duration::from_secs(5)).await;
            HttpResponse::Ok().json(ticket_json(9000))
        }
        _ => HttpResponse::NotFound().finish(),
    }
}

const TIMEOUT: Duration = Duration::from_secs(5);

#[actix_web::test]
async fn a_call_sends_basic_auth_and_reports_rate_limits() {
    let fake = FakeFreshdesk::start().await;
    let (client, records) = fake.client(TIMEOUT);

    let me = client.me().await.unwrap();
    assert_eq!(me.value.id, AgentId(7));
    assert_eq!(me.value.contact.name, "AI Agent");
    assert_eq!(me.value.contact.email.as_deref(), Some("ai@acme.test"));
    let limit = RateLimit {
        total: 200,
        remaining: 150,
        used_current: 1,
    };
    assert_eq!(me.rate_limit, Some(limit));

    let seen = fake.journal.last();
    assert_eq!(
        (seen.method.as_str(), seen.path.as_str()),
        ("GET", "/api/v2/agents/me")
    );
    let expected_auth = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{API_KEY}:X"))
    );
    assert_eq!(seen.authorization, expected_auth);
    assert!(
        seen.user_agent.starts_with("ticketsync/"),
        "{}",
        seen.user_agent
    );
    assert_eq!(seen.accept, "application/json");

    let records = records.lock().unwrap().clone();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].endpoint, "agents.me");
    assert_eq!(records[0].method, "GET");
    assert_eq!(records[0].outcome, CallOutcome::Status(200));
    assert_eq!(records[0].rate_limit, Some(limit));
    assert_eq!(records[0].retry_after, None);
    fake.stop().await;
}

#[actix_web::test]
async fn lists_send_the_documented_queries_and_read_the_link_header() {
    let fake = FakeFreshdesk::start().await;
    let (client, records) = fake.client(TIMEOUT);

    let page = client
        .tickets(&TicketListQuery {
            updated_since: Some(Utc.with_ymd_and_hms(2024, 4, 1, 8, 30, 0).unwrap()),
            page: 2,
            per_page: 50,
        })
        .await
        .unwrap();
    assert_eq!(page.value.items.len(), 2);
    assert!(page.value.has_next);
    assert!(page.rate_limit.is_some());
    let seen = fake.journal.last();
    assert_eq!(seen.path, "/api/v2/tickets");
    assert_eq!(
        seen.query,
        "updated_since=2024-04-01T08:30:00Z&order_by=updated_at&order_type=asc&per_page=50&page=2"
    );

    let conversations = client.conversations(TicketId(1), 1).await.unwrap();
    assert_eq!(conversations.value.items.len(), 1);
    assert!(!conversations.value.has_next);
    assert_eq!(conversations.rate_limit, None);
    let seen = fake.journal.last();
    assert_eq!(seen.path, "/api/v2/tickets/1/conversations");
    assert_eq!(seen.query, "per_page=100&page=1");

    let agents = client.agents(1).await.unwrap();
    assert!(agents.value.has_next);
    assert_eq!(fake.journal.last().query, "per_page=100&page=1");

    let group = client.group(GroupId(3)).await.unwrap();
    assert_eq!(group.value.name, "Billing");

    let groups = client.groups(1).await.unwrap();
    assert_eq!(groups.value.items[0].name, "Billing");
    assert!(!groups.value.has_next);
    assert_eq!(fake.journal.last().query, "per_page=100&page=1");

    let labels: Vec<_> = records.lock().unwrap().iter().map(|r| r.endpoint).collect();
    assert_eq!(
        labels,
        [
            "tickets.list",
            "conversations.list",
            "agents.list",
            "groups.get",
            "groups.list"
        ]
    );
    fake.stop().await;
}

#[actix_web::test]
async fn writes_send_the_documented_methods_and_bodies() {
    let fake = FakeFreshdesk::start().await;
    let (client, records) = fake.client(TIMEOUT);

    let reply = client.reply(TicketId(1), "<p>Hello</p>").await.unwrap();
    assert!(!reply.value.private);
    let seen = fake.journal.last();
    assert_eq!(
        (seen.method.as_str(), seen.path.as_str()),
        ("POST", "/api/v2/tickets/1/reply")
    );
    assert_eq!(seen.body, Some(serde_json::json!({"body": "<p>Hello</p>"})));

    let note = client
        .note(TicketId(1), "<p>Draft</p>", true)
        .await
        .unwrap();
    assert!(note.value.private);
    let seen = fake.journal.last();
    assert_eq!(
        (seen.method.as_str(), seen.path.as_str()),
        ("POST", "/api/v2/tickets/1/notes")
    );
    assert_eq!(
        seen.body,
        Some(serde_json::json!({"body": "<p>Draft</p>", "private": true}))
    );

    let update = TicketUpdate {
        status: Some(TicketStatus::Resolved),
        custom_fields: Some(serde_json::Map::from_iter([(
            "cf_opencx_handed_off_1234".to_string(),
            serde_json::Value::Bool(true),
        )])),
        ..TicketUpdate::default()
    };
    let ticket = client.update_ticket(TicketId(1), &update).await.unwrap();
    assert_eq!(ticket.value.id, TicketId(1));
    let seen = fake.journal.last();
    assert_eq!(
        (seen.method.as_str(), seen.path.as_str()),
        ("PUT", "/api/v2/tickets/1")
    );
    assert_eq!(
        seen.body,
        Some(
            serde_json::json!({"status": 4, "custom_fields": {"cf_opencx_handed_off_1234": true}})
        )
    );

    let records = records.lock().unwrap().clone();
    let calls: Vec<_> = records
        .iter()
        .map(|r| (r.endpoint, r.method, r.outcome))
        .collect();
    assert_eq!(
        calls,
        [
            ("tickets.reply", "POST", CallOutcome::Status(201)),
            ("tickets.note", "POST", CallOutcome::Status(201)),
            ("tickets.update", "PUT", CallOutcome::Status(200)),
        ]
    );
    fake.stop().await;
}

#[actix_web::test]
async fn error_statuses_become_freshdesk_errors() {
    let fake = FakeFreshdesk::start().await;
    let (client, records) = fake.client(TIMEOUT);

    let error = client.ticket(TicketId(400)).await.unwrap_err();
    assert!(error.is_invalid_value_on("responder_id"), "{error:?}");

    assert_eq!(
        client.ticket(TicketId(401)).await.unwrap_err(),
        FreshdeskError::Unauthorized
    );
    assert_eq!(
        client.ticket(TicketId(403)).await.unwrap_err(),
        FreshdeskError::Forbidden {
            code: "require_feature".into(),
            message: "The Ticket feature is not in your plan.".into()
        }
    );
    assert_eq!(
        client.roles().await.unwrap_err(),
        FreshdeskError::Forbidden {
            code: "access_denied".into(),
            message: "You are not authorized to perform this action.".into()
        }
    );
    assert_eq!(
        client.ticket(TicketId(404)).await.unwrap_err(),
        FreshdeskError::NotFound
    );
    assert_eq!(
        client.agent(AgentId(404)).await.unwrap_err(),
        FreshdeskError::NotFound
    );
    assert_eq!(
        client.ticket(TicketId(429)).await.unwrap_err(),
        FreshdeskError::RateLimited {
            retry_after: Duration::from_secs(7)
        }
    );
    assert_eq!(
        client.ticket(TicketId(4290)).await.unwrap_err(),
        FreshdeskError::RateLimited {
            retry_after: Duration::from_secs(60)
        }
    );
    assert_eq!(
        client.ticket(TicketId(500)).await.unwrap_err(),
        FreshdeskError::Server { status: 500 }
    );
    assert_eq!(
        client.ticket(TicketId(503)).await.unwrap_err(),
        FreshdeskError::Server { status: 503 }
    );
    assert_eq!(
        client.ticket(TicketId(418)).await.unwrap_err(),
        FreshdeskError::UnexpectedStatus { status: 418 }
    );

    let records = records.lock().unwrap().clone();
    let limited = records
        .iter()
        .find(|r| r.outcome == CallOutcome::Status(429) && r.rate_limit.is_some())
        .expect("the 429 with headers was observed");
    assert_eq!(limited.retry_after, Some(Duration::from_secs(7)));
    assert_eq!(limited.endpoint, "tickets.get");
    let bare_429 = records
        .iter()
        .find(|r| r.outcome == CallOutcome::Status(429) && r.rate_limit.is_none())
        .expect("the 429 without headers was observed");
    assert_eq!(bare_429.retry_after, Some(Duration::from_secs(60)));
    fake.stop().await;
}

#[actix_web::test]
async fn a_redirect_is_not_followed() {
    let fake = FakeFreshdesk::start().await;
    let (client, _) = fake.client(TIMEOUT);

    assert_eq!(
        client.ticket(TicketId(302)).await.unwrap_err(),
        FreshdeskError::UnexpectedStatus { status: 302 }
    );
    assert!(fake
        .journal
        .all()
        .iter()
        .all(|seen| seen.path != "/api/v2/redirected-here"));
    fake.stop().await;
}

#[actix_web::test]
async fn a_body_that_is_not_the_documented_shape_is_an_invalid_response() {
    let fake = FakeFreshdesk::start().await;
    let (client, records) = fake.client(TIMEOUT);

    let error = client.ticket(TicketId(2)).await.unwrap_err();
    let FreshdeskError::InvalidResponse(message) = &error else {
        panic!("expected an invalid response, got {error:?}");
    };
    assert!(message.contains("invalid type"), "{message}");
    assert!(!error.is_transient());
    assert_eq!(records.lock().unwrap()[0].outcome, CallOutcome::Status(200));
    fake.stop().await;
}

#[actix_web::test]
async fn a_server_slower_than_the_timeout_is_a_timeout() {
    let fake = FakeFreshdesk::start().await;
    let (client, records) = fake.client(Duration::from_millis(300));

    assert_eq!(
        client.ticket(TicketId(9000)).await.unwrap_err(),
        FreshdeskError::Timeout
    );
    let records = records.lock().unwrap().clone();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].outcome, CallOutcome::Timeout);
    assert_eq!(records[0].endpoint, "tickets.get");
    fake.stop().await;
}

#[actix_web::test]
async fn a_closed_port_is_unreachable_and_the_error_hides_the_key() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let (client, records) = client_for(&format!("127.0.0.1:{port}"), TIMEOUT);

    let error = client.me().await.unwrap_err();
    let FreshdeskError::Unreachable(message) = &error else {
        panic!("expected unreachable, got {error:?}");
    };
    assert!(message.starts_with("could not connect"), "{message}");
    assert!(error.is_transient());
    for text in [error.to_string(), format!("{error:?}")] {
        assert!(!text.contains(API_KEY), "{text}");
    }
    let records = records.lock().unwrap().clone();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].outcome, CallOutcome::Unreachable);
    assert_eq!(records[0].rate_limit, None);
}

#[test]
fn debug_output_shows_the_domain_and_never_the_key() {
    let (client, _) = client_for("127.0.0.1:9", TIMEOUT);
    let debug = format!("{client:?}");
    assert!(debug.contains("127.0.0.1:9"), "{debug}");
    assert!(!debug.contains(API_KEY), "{debug}");
    assert_eq!(client.domain().host(), "127.0.0.1:9");
}
