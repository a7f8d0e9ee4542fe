//! The OpenAI-compatible responder against a tiny local chat-completions server with scripted
//! answers: what it sends, how it reads decisions, and when it retries or gives up.

use actix_web::dev::ServerHandle;
use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use chrono::Utc;
use secrecy::SecretString;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use ticketsync::config::{OpenAiSettings, ResponderKind, ResponderSettings};
use ticketsync::responder::{build_with_env, OpenAiResponder};
use ticketsync_actors::org::Channel;
use ticketsync_actors::ports::Responder;
use ticketsync_actors::session::{Author, HandoffReason, Message};
use ticketsync_actors::ticket::machine::{Decision, ResponderRequest};

const API_KEY: &str = "sk-test-do-not-leak-7";
const TIMEOUT_MS: u64 = 200;
const MAX_ATTEMPTS: u32 = 3;

/// What the fake endpoint does with one request.
#[derive(Clone)]
enum Answer {
    /// 200 with a chat completion whose message content is this text.
    Content(&'static str),
    /// This status with an OpenAI-style error body.
    Status(u16),
    /// Answer validly, but only after this long.
    Slow(Duration),
}

/// A request as the fake endpoint saw it.
#[derive(Debug, Clone)]
struct Seen {
    path: String,
    authorization: String,
    body: serde_json::Value,
}

/// The script (request `n` gets answer `n`, the last one repeats) and the journal.
struct State {
    script: Vec<Answer>,
    seen: Mutex<Vec<Seen>>,
}

struct FakeOpenAi {
    base_url: String,
    state: Arc<State>,
    handle: ServerHandle,
}

impl FakeOpenAi {
    async fn start(script: Vec<Answer>) -> Self {
        let state = Arc::new(State {
            script,
            seen: Mutex::new(Vec::new()),
        });
        let data = web::Data::from(state.clone());
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let base_url = format!("http://{}/v1", listener.local_addr().unwrap());
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
            base_url,
            state,
            handle,
        }
    }

    fn requests(&self) -> Vec<Seen> {
        self.state.seen.lock().unwrap().clone()
    }

    fn responder(&self) -> OpenAiResponder {
        OpenAiResponder::new(
            &settings(&self.base_url),
            SecretString::from(API_KEY.to_string()),
            reqwest::Client::new(),
        )
        .unwrap()
    }

    async fn stop(self) {
        self.handle.stop(false).await;
    }
}

async fn answer(req: HttpRequest, body: web::Bytes, state: web::Data<State>) -> HttpResponse {
    let n = {
        let mut seen = state.seen.lock().unwrap();
        seen.push(Seen {
            path: req.path().to_string(),
            authorization: req
                .headers()
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_string(),
            body: serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null),
        });
        seen.len() - 1
    };
    let script = &state.script;
    match script[n.min(script.len() - 1)].clone() {
        Answer::Content(content) => completion(content),
        Answer::Status(code) => {
            HttpResponse::build(actix_web::http::StatusCode::from_u16(code).unwrap())
                .json(serde_json::json!({"error": {"message": "scripted", "type": "server_error"}}))
        }
        Answer::Slow(delay) => {
            tokio::time::sleep(delay).await;
            completion(r#"{"action":"reply","text":"too late"}"#)
        }
    }
}

fn completion(content: &str) -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({
        "id": "chatcmpl-test",
        "object": "chat.completion",
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": content},
            "finish_reason": "stop"
        }]
    }))
}

fn settings(base_url: &str) -> OpenAiSettings {
    OpenAiSettings {
        base_url: base_url.to_string(),
        model: "gpt-test-mini".to_string(),
        api_key_env: "TICKETSYNC_TEST_OPENAI_KEY".to_string(),
        timeout_ms: TIMEOUT_MS,
        max_attempts: MAX_ATTEMPTS,
    }
}

fn request() -> ResponderRequest {
    let message = |author, body: &str| Message {
        conversation_id: None,
        author,
        private: false,
        note: false,
        body_text: body.to_string(),
        created_at: Utc::now(),
    };
    ResponderRequest {
        channel: Channel::Email,
        subject: "Cannot sign in".to_string(),
        transcript: vec![
            message(Author::Contact, "I cannot sign in."),
            message(Author::Ai, "Did you try resetting your password?"),
            message(Author::Contact, "Yes, the link never arrives."),
        ],
    }
}

#[actix_web::test]
async fn a_reply_decision_is_returned_and_the_request_carries_key_model_and_messages() {
    let fake = FakeOpenAi::start(vec![Answer::Content(
        r#"{"action":"reply","text":"Please check your spam folder."}"#,
    )])
    .await;
    // Built through the public factory, the key read from the named variable.
    let responder = build_with_env(
        &ResponderSettings {
            kind: ResponderKind::Openai,
            handoff_phrases: vec![],
            resolve_phrases: vec![],
            faq: vec![],
            openai: Some(settings(&fake.base_url)),
        },
        reqwest::Client::new(),
        |name| (name == "TICKETSYNC_TEST_OPENAI_KEY").then(|| API_KEY.to_string()),
    )
    .unwrap();

    let decision = responder.decide(&request()).await.unwrap();

    assert_eq!(
        decision,
        Decision::Reply {
            text: "Please check your spam folder.".into()
        }
    );
    let seen = fake.requests();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].path, "/v1/chat/completions");
    assert_eq!(seen[0].authorization, format!("Bearer {API_KEY}"));
    let body = &seen[0].body;
    assert_eq!(body["model"], "gpt-test-mini");
    assert_eq!(body["response_format"]["type"], "json_object");
    let messages = body["messages"].as_array().unwrap();
    let roles: Vec<_> = messages
        .iter()
        .map(|m| m["role"].as_str().unwrap())
        .collect();
    assert_eq!(roles, ["system", "user", "assistant", "user"]);
    assert_eq!(messages[3]["content"], "Yes, the link never arrives.");
    fake.stop().await;
}

#[actix_web::test]
async fn handoff_and_resolve_decisions_are_returned() {
    let fake = FakeOpenAi::start(vec![
        Answer::Content(
            r#"{"action":"handoff","reason":"customer_requested","summary":"Wants a human."}"#,
        ),
        Answer::Content(r#"{"action":"resolve","text":"Glad it works now!"}"#),
    ])
    .await;
    let responder = fake.responder();

    assert_eq!(
        responder.decide(&request()).await.unwrap(),
        Decision::Handoff {
            reason: HandoffReason::CustomerRequested,
            summary: "Wants a human.".into()
        }
    );
    assert_eq!(
        responder.decide(&request()).await.unwrap(),
        Decision::Resolve {
            text: "Glad it works now!".into()
        }
    );
    fake.stop().await;
}

#[actix_web::test]
async fn json_inside_a_code_fence_is_accepted() {
    let fake = FakeOpenAi::start(vec![Answer::Content(
        "```json\n{\"action\":\"reply\",\"text\":\"Fenced.\"}\n```",
    )])
    .await;

    let decision = fake.responder().decide(&request()).await.unwrap();

    assert_eq!(
        decision,
        Decision::Reply {
            text: "Fenced.".into()
        }
    );
    fake.stop().await;
}

#[actix_web::test]
async fn invalid_output_then_a_valid_one_succeeds_on_the_retry() {
    let fake = FakeOpenAi::start(vec![
        Answer::Content("Sure! I'd be happy to help."),
        Answer::Content(r#"{"action":"reply","text":"Second time lucky."}"#),
    ])
    .await;

    let decision = fake.responder().decide(&request()).await.unwrap();

    assert_eq!(
        decision,
        Decision::Reply {
            text: "Second time lucky.".into()
        }
    );
    assert_eq!(fake.requests().len(), 2);
    fake.stop().await;
}

#[actix_web::test]
async fn always_invalid_output_fails_after_exactly_max_attempts_requests() {
    let fake = FakeOpenAi::start(vec![Answer::Content(
        r#"{"action":"handoff","reason":"turn_limit","summary":"x"}"#,
    )])
    .await;

    let failure = fake.responder().decide(&request()).await.unwrap_err();

    assert_eq!(fake.requests().len(), MAX_ATTEMPTS as usize);
    assert!(failure.0.contains("turn_limit"), "{failure}");
    assert!(!failure.0.contains(API_KEY));
    fake.stop().await;
}

#[actix_web::test]
async fn a_slow_endpoint_times_out_on_every_attempt_and_fails() {
    let fake = FakeOpenAi::start(vec![Answer::Slow(Duration::from_millis(TIMEOUT_MS * 5))]).await;

    let failure = fake.responder().decide(&request()).await.unwrap_err();

    assert_eq!(fake.requests().len(), MAX_ATTEMPTS as usize);
    assert!(failure.0.contains("no answer within"), "{failure}");
    fake.stop().await;
}

#[actix_web::test]
async fn server_errors_are_retried_but_a_client_error_fails_at_once() {
    let fake = FakeOpenAi::start(vec![
        Answer::Status(503),
        Answer::Status(429),
        Answer::Content(r#"{"action":"reply","text":"Back up."}"#),
    ])
    .await;
    let decision = fake.responder().decide(&request()).await.unwrap();
    assert_eq!(
        decision,
        Decision::Reply {
            text: "Back up.".into()
        }
    );
    assert_eq!(fake.requests().len(), 3);
    fake.stop().await;

    let fake = FakeOpenAi::start(vec![Answer::Status(401)]).await;
    let failure = fake.responder().decide(&request()).await.unwrap_err();
    assert_eq!(fake.requests().len(), 1);
    assert!(failure.0.contains("401"), "{failure}");
    fake.stop().await;
}
