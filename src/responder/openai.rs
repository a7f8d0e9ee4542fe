//! The OpenAI-compatible responder (contract §5): asks any chat-completions endpoint for a JSON
//! decision.
//!
//! One decision is one `POST {base_url}/chat/completions` with `Authorization: Bearer <key>`,
//! `response_format: {"type": "json_object"}` and `temperature: 0`. The messages are
//! [`SYSTEM_PROMPT`] (plus the ticket's subject and channel), then the public transcript:
//! contact messages as `user`, agent and AI messages as `assistant`. The model must answer with
//! one of
//!
//! ```json
//! {"action": "reply", "text": "…"}
//! {"action": "handoff", "reason": "customer_requested|missing_knowledge|other", "summary": "…"}
//! {"action": "resolve", "text": "…"}
//! ```
//!
//! optionally wrapped in a Markdown code fence. Each attempt has its own timeout
//! (`timeout_ms`). Timeouts, connection errors, 429, 5xx and unusable model output (not JSON,
//! an unknown action, an empty text, a reason other than the three above) are retried up to
//! `max_attempts` attempts in all, sleeping [`RETRY_BACKOFF_STEP`] × attempt between them;
//! any other 4xx fails at once. A failure is returned as [`ResponderFailure`] and the engine
//! hands the ticket off with reason `other`.
//!
//! The API key lives in a [`SecretString`] and is only exposed to build the header. Logs carry
//! attempt numbers, statuses, durations and sizes, never the key, the transcript or the
//! model's text.

use super::ResponderConfigError;
use crate::config::OpenAiSettings;
use async_trait::async_trait;
use reqwest::header::CONTENT_TYPE;
use reqwest::StatusCode;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::json;
use std::time::{Duration, Instant};
use ticketsync_actors::ports::{Responder, ResponderFailure};
use ticketsync_actors::session::{Author, HandoffReason};
use ticketsync_actors::ticket::machine::{Decision, ResponderRequest};

/// The instructions sent as the system message of every request.
pub const SYSTEM_PROMPT: &str = r#"You are a customer support assistant answering a support ticket on behalf of the company. Read the conversation and decide what to do about the customer's latest message.

Answer ONLY with a single JSON object, with no other text, in exactly one of these shapes:
{"action":"reply","text":"<your answer to the customer>"}
{"action":"handoff","reason":"customer_requested|missing_knowledge|other","summary":"<one sentence for the human agent who takes over>"}
{"action":"resolve","text":"<a short closing message to the customer>"}

Rules:
- Use "handoff" with reason "customer_requested" when the customer asks for a human, an agent or a representative.
- Use "handoff" with reason "missing_knowledge" when you do not know the answer for certain. Never guess or invent policies, prices, dates or facts.
- Use "handoff" with reason "other" for anything else a human must handle (complaints, refunds, legal or account-security matters).
- Use "resolve" only when the customer confirms that their problem is solved.
- Otherwise use "reply". Write in the customer's language, in plain text, briefly and politely."#;

/// The backoff unit: after failed attempt `n`, the next attempt waits `n` × this.
pub const RETRY_BACKOFF_STEP: Duration = Duration::from_millis(200);

/// The longest model token (action or reason) quoted in an error message.
const MAX_QUOTED_TOKEN: usize = 40;

/// A responder backed by an OpenAI-compatible chat-completions endpoint.
#[derive(Debug, Clone)]
pub struct OpenAiResponder {
    endpoint: reqwest::Url,
    model: String,
    api_key: SecretString,
    timeout: Duration,
    max_attempts: u32,
    http: reqwest::Client,
}

/// How one attempt went wrong.
enum AttemptError {
    /// Worth another attempt (timeout, connection, 429/5xx, unusable output).
    Retryable(String),
    /// Another attempt would fail the same way (401, 403, 404, 400 …).
    Fatal(String),
}

impl OpenAiResponder {
    /// A responder for `settings` that authenticates with `api_key` and sends through `http`
    /// (each request gets `settings.timeout_ms` as its own timeout).
    ///
    /// Fails if `base_url` is not an http(s) URL, `model` is empty, or `timeout_ms` or
    /// `max_attempts` is zero.
    pub fn new(
        settings: &OpenAiSettings,
        api_key: SecretString,
        http: reqwest::Client,
    ) -> Result<Self, ResponderConfigError> {
        let invalid = |m: String| ResponderConfigError::InvalidOpenAi(m);
        let endpoint = format!(
            "{}/chat/completions",
            settings.base_url.trim().trim_end_matches('/')
        );
        let endpoint = reqwest::Url::parse(&endpoint)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https"))
            .ok_or_else(|| {
                invalid(format!(
                    "responder.openai.base_url {:?} is not an http(s) URL",
                    settings.base_url
                ))
            })?;
        if settings.model.trim().is_empty() {
            return Err(invalid("responder.openai.model is empty".into()));
        }
        if settings.timeout_ms == 0 {
            return Err(invalid(
                "responder.openai.timeout_ms must be positive".into(),
            ));
        }
        if settings.max_attempts == 0 {
            return Err(invalid(
                "responder.openai.max_attempts must be at least 1".into(),
            ));
        }
        Ok(Self {
            endpoint,
            model: settings.model.trim().to_string(),
            api_key,
            timeout: Duration::from_millis(settings.timeout_ms),
            max_attempts: settings.max_attempts,
            http,
        })
    }

    /// The URL requests are posted to (`{base_url}/chat/completions`).
    pub fn endpoint(&self) -> &str {
        self.endpoint.as_str()
    }

    /// One request, start to parsed decision.
    async fn attempt(&self, body: &[u8]) -> Result<Decision, AttemptError> {
        let response = self
            .http
            .post(self.endpoint.clone())
            .bearer_auth(self.api_key.expose_secret())
            .header(CONTENT_TYPE, "application/json")
            .timeout(self.timeout)
            .body(body.to_vec())
            .send()
            .await
            .map_err(|e| self.transport_error(&e))?;
        let status = response.status();
        let text = response
            .text()
            .await
            .map_err(|e| self.transport_error(&e))?;
        if status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error() {
            return Err(AttemptError::Retryable(format!(
                "the endpoint answered {status}"
            )));
        }
        if !status.is_success() {
            let code = error_code(&text)
                .map(|c| format!(" ({c})"))
                .unwrap_or_default();
            return Err(AttemptError::Fatal(format!(
                "the endpoint answered {status}{code}"
            )));
        }
        let content = completion_content(&text).map_err(AttemptError::Retryable)?;
        tracing::debug!(
            status = status.as_u16(),
            content_chars = content.chars().count(),
            "OpenAI responder got a completion"
        );
        parse_decision(&content)
            .map_err(|e| AttemptError::Retryable(format!("unusable model output: {e}")))
    }

    fn transport_error(&self, e: &reqwest::Error) -> AttemptError {
        if e.is_timeout() {
            AttemptError::Retryable(format!("no answer within {} ms", self.timeout.as_millis()))
        } else if e.is_builder() {
            AttemptError::Fatal(format!("cannot build the request: {e}"))
        } else if e.is_connect() {
            AttemptError::Retryable(format!("cannot connect: {e}"))
        } else {
            AttemptError::Retryable(format!("transport error: {e}"))
        }
    }
}

#[async_trait]
impl Responder for OpenAiResponder {
    async fn decide(&self, request: &ResponderRequest) -> Result<Decision, ResponderFailure> {
        let body = request_body(&self.model, request).to_string().into_bytes();
        let mut last_error = String::new();
        for attempt in 1..=self.max_attempts {
            if attempt > 1 {
                tokio::time::sleep(RETRY_BACKOFF_STEP * (attempt - 1)).await;
            }
            let started = Instant::now();
            match self.attempt(&body).await {
                Ok(decision) => return Ok(decision),
                Err(AttemptError::Fatal(error)) => {
                    tracing::warn!(
                        attempt,
                        max_attempts = self.max_attempts,
                        transcript_messages = request.transcript.len(),
                        request_bytes = body.len(),
                        elapsed_ms = started.elapsed().as_millis() as u64,
                        %error,
                        "OpenAI responder failed; not retrying"
                    );
                    return Err(ResponderFailure(format!("openai: {error}")));
                }
                Err(AttemptError::Retryable(error)) => {
                    tracing::warn!(
                        attempt,
                        max_attempts = self.max_attempts,
                        transcript_messages = request.transcript.len(),
                        request_bytes = body.len(),
                        elapsed_ms = started.elapsed().as_millis() as u64,
                        %error,
                        "OpenAI responder attempt failed"
                    );
                    last_error = error;
                }
            }
        }
        Err(ResponderFailure(format!(
            "openai: no usable decision after {} attempt(s); last error: {last_error}",
            self.max_attempts
        )))
    }
}

/// The chat-completions request body for `request`.
fn request_body(model: &str, request: &ResponderRequest) -> serde_json::Value {
    let system = format!(
        "{SYSTEM_PROMPT}\n\nTicket subject: {}\nChannel: {}",
        request.subject.trim(),
        request.channel.as_str()
    );
    let mut messages = vec![json!({"role": "system", "content": system})];
    messages.extend(
        request
            .transcript
            .iter()
            .filter(|m| !m.private && !m.body_text.trim().is_empty())
            .map(|m| {
                let role = match m.author {
                    Author::Contact => "user",
                    Author::Agent | Author::Ai => "assistant",
                };
                json!({"role": role, "content": m.body_text.trim()})
            }),
    );
    json!({
        "model": model,
        "messages": messages,
        "response_format": {"type": "json_object"},
        "temperature": 0,
    })
}

/// `choices[0].message.content` of a chat-completions response body.
fn completion_content(body: &str) -> Result<String, String> {
    #[derive(Deserialize)]
    struct Completion {
        choices: Vec<Choice>,
    }
    #[derive(Deserialize)]
    struct Choice {
        message: ChoiceMessage,
    }
    #[derive(Deserialize)]
    struct ChoiceMessage {
        content: Option<String>,
    }
    let completion: Completion = serde_json::from_str(body).map_err(|e| {
        format!(
            "the response is not a chat completion ({} bytes): {e}",
            body.len()
        )
    })?;
    completion
        .choices
        .into_iter()
        .next()
        .and_then(|c| c.message.content)
        .ok_or_else(|| "the completion has no message content".to_string())
}

/// The `error.code` (or `error.type`) of an OpenAI-style error body, if it is a short token.
/// The error's `message` is never used: it may echo part of the key.
fn error_code(body: &str) -> Option<String> {
    let value: serde_json::Value = serde_json::from_str(body).ok()?;
    let error = value.get("error")?;
    ["code", "type"]
        .iter()
        .filter_map(|k| error.get(*k)?.as_str())
        .find(|s| {
            !s.is_empty()
                && s.len() <= MAX_QUOTED_TOKEN
                && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        })
        .map(str::to_string)
}

/// The decision in the model's answer: one JSON object, possibly inside a code fence.
fn parse_decision(content: &str) -> Result<Decision, String> {
    #[derive(Deserialize)]
    struct Raw {
        action: String,
        #[serde(default)]
        text: Option<String>,
        #[serde(default)]
        reason: Option<String>,
        #[serde(default)]
        summary: Option<String>,
    }
    let json = strip_code_fence(content);
    let raw: Raw = serde_json::from_str(json)
        .map_err(|e| format!("not a decision object ({} chars): {e}", content.len()))?;
    let non_empty = |field: Option<String>, name: &str| {
        field
            .map(|t| t.trim().to_string())
            .filter(|t| !t.is_empty())
            .ok_or_else(|| format!("{name} is missing or empty"))
    };
    match raw.action.trim().to_ascii_lowercase().as_str() {
        "reply" => Ok(Decision::Reply {
            text: non_empty(raw.text, "text")?,
        }),
        "resolve" => Ok(Decision::Resolve {
            text: non_empty(raw.text, "text")?,
        }),
        "handoff" => {
            let reason = match raw.reason.as_deref().map(str::trim) {
                Some("customer_requested") => HandoffReason::CustomerRequested,
                Some("missing_knowledge") => HandoffReason::MissingKnowledge,
                Some("other") => HandoffReason::Other,
                Some(other) => return Err(format!("unsupported reason {:?}", clip(other))),
                None => return Err("reason is missing".into()),
            };
            // A missing summary is not worth another paid attempt: the handoff itself is sound.
            let summary = non_empty(raw.summary, "summary").unwrap_or_else(|_| {
                format!(
                    "The AI handed the ticket off ({}) without a summary.",
                    reason.as_str()
                )
            });
            Ok(Decision::Handoff { reason, summary })
        }
        other => Err(format!("unknown action {:?}", clip(other))),
    }
}

/// The JSON inside a Markdown code fence (```` ```json … ``` ````), or the trimmed input.
fn strip_code_fence(content: &str) -> &str {
    let trimmed = content.trim();
    let Some(rest) = trimmed.strip_prefix("```") else {
        return trimmed;
    };
    // Skip the info string ("json") up to the end of the opening line.
    let rest = match rest.find('\n') {
        Some(newline) => &rest[newline + 1..],
        None => rest.trim_start_matches(|c: char| c.is_ascii_alphanumeric()),
    };
    let rest = rest.trim_end();
    rest.strip_suffix("```").unwrap_or(rest).trim()
}

/// A model token shortened for an error message.
fn clip(token: &str) -> String {
    token.chars().take(MAX_QUOTED_TOKEN).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;
    use ticketsync_actors::org::Channel;
    use ticketsync_actors::session::Message;

    fn msg(author: Author, private: bool, body: &str) -> Message {
        Message {
            conversation_id: None,
            author,
            private,
            note: private,
            body_text: body.into(),
            created_at: Utc::now(),
        }
    }

    #[test]
    fn the_body_has_the_model_json_mode_and_the_public_transcript_in_roles() {
        let request = ResponderRequest {
            channel: Channel::Web,
            subject: "Login trouble".into(),
            transcript: vec![
                msg(Author::Contact, false, "I cannot log in"),
                msg(Author::Ai, false, "Have you tried resetting?"),
                msg(Author::Agent, true, "internal: VIP customer"),
                msg(Author::Contact, false, "  "),
                msg(Author::Contact, false, "Yes, still broken"),
            ],
        };
        let body = request_body("gpt-test", &request);
        assert_eq!(body["model"], "gpt-test");
        assert_eq!(body["temperature"], 0);
        assert_eq!(body["response_format"]["type"], "json_object");
        let messages = body["messages"].as_array().unwrap();
        let roles: Vec<_> = messages
            .iter()
            .map(|m| m["role"].as_str().unwrap())
            .collect();
        assert_eq!(roles, ["system", "user", "assistant", "user"]);
        let system = messages[0]["content"].as_str().unwrap();
        assert!(system.starts_with(SYSTEM_PROMPT));
        assert!(system.contains("Ticket subject: Login trouble"));
        assert!(system.contains("Channel: web"));
        assert_eq!(messages[3]["content"], "Yes, still broken");
        assert!(!body.to_string().contains("VIP"));
    }

    #[test]
    fn each_action_parses() {
        assert_eq!(
            parse_decision(r#"{"action":"reply","text":" Hello "}"#),
            Ok(Decision::Reply {
                text: "Hello".into()
            })
        );
        assert_eq!(
            parse_decision(r#"{"action":"resolve","text":"Bye","extra":1}"#),
            Ok(Decision::Resolve { text: "Bye".into() })
        );
        assert_eq!(
            parse_decision(
                r#"{"action":"handoff","reason":"missing_knowledge","summary":"Asks about X"}"#
            ),
            Ok(Decision::Handoff {
                reason: HandoffReason::MissingKnowledge,
                summary: "Asks about X".into()
            })
        );
    }

    #[test]
    fn code_fences_are_tolerated() {
        let expected = Ok(Decision::Reply { text: "Hi".into() });
        for content in [
            "```json\n{\"action\":\"reply\",\"text\":\"Hi\"}\n```",
            "```\n{\"action\":\"reply\",\"text\":\"Hi\"}\n```\n",
            "```json {\"action\":\"reply\",\"text\":\"Hi\"}```",
            "  {\"action\":\"reply\",\"text\":\"Hi\"}  ",
        ] {
            assert_eq!(parse_decision(content), expected, "{content}");
        }
    }

    #[test]
    fn unusable_output_is_rejected() {
        for content in [
            "Sure! Here is my answer.",
            r#"{"action":"escalate","text":"x"}"#,
            r#"{"action":"reply","text":"  "}"#,
            r#"{"action":"reply"}"#,
            r#"{"action":"resolve","text":7}"#,
            r#"{"action":"handoff","summary":"s"}"#,
            r#"{"action":"handoff","reason":"turn_limit","summary":"s"}"#,
            r#"{"action":"handoff","reason":"admin","summary":"s"}"#,
            r#"{"action":"handoff","reason":"because","summary":"s"}"#,
            "[]",
        ] {
            assert!(parse_decision(content).is_err(), "{content}");
        }
    }

    #[test]
    fn a_handoff_without_a_summary_gets_a_generic_one() {
        let d = parse_decision(r#"{"action":"handoff","reason":"customer_requested"}"#).unwrap();
        assert_eq!(
            d,
            Decision::Handoff {
                reason: HandoffReason::CustomerRequested,
                summary: "The AI handed the ticket off (customer_requested) without a summary."
                    .into()
            }
        );
    }

    #[test]
    fn completion_content_reads_the_first_choice() {
        let body = r#"{"choices":[{"index":0,"message":{"role":"assistant","content":"x"}}]}"#;
        assert_eq!(completion_content(body), Ok("x".into()));
        assert!(completion_content(r#"{"choices":[]}"#).is_err());
        assert!(completion_content(r#"{"choices":[{"message":{"content":null}}]}"#).is_err());
        assert!(completion_content("<html>").is_err());
    }

    #[test]
    fn error_codes_are_short_tokens_and_messages_are_ignored() {
        let body = r#"{"error":{"message":"Incorrect API key provided: sk-abc***","type":"invalid_request_error","code":"invalid_api_key"}}"#;
        assert_eq!(error_code(body), Some("invalid_api_key".into()));
        assert_eq!(
            error_code(r#"{"error":{"message":"m","type":"a b c"}}"#),
            None
        );
        assert_eq!(error_code("nope"), None);
    }

    fn settings(base_url: &str) -> OpenAiSettings {
        OpenAiSettings {
            base_url: base_url.into(),
            model: "m".into(),
            api_key_env: "K".into(),
            timeout_ms: 100,
            max_attempts: 1,
        }
    }

    #[test]
    fn the_endpoint_joins_the_base_url_and_bad_settings_are_rejected() {
        let key = || SecretString::from("sk-unit-secret".to_string());
        let r = OpenAiResponder::new(
            &settings("https://api.example.com/v1/"),
            key(),
            reqwest::Client::new(),
        )
        .unwrap();
        assert_eq!(r.endpoint(), "https://api.example.com/v1/chat/completions");
        assert!(!format!("{r:?}").contains("sk-unit-secret"));

        for bad in ["not a url", "ftp://example.com"] {
            assert!(OpenAiResponder::new(&settings(bad), key(), reqwest::Client::new()).is_err());
        }
        let mut s = settings("http://x");
        s.max_attempts = 0;
        assert!(OpenAiResponder::new(&s, key(), reqwest::Client::new()).is_err());
        let mut s = settings("http://x");
        s.timeout_ms = 0;
        assert!(OpenAiResponder::new(&s, key(), reqwest::Client::new()).is_err());
        let mut s = settings("http://x");
        s.model = " ".into();
        assert!(OpenAiResponder::new(&s, key(), reqwest::Client::new()).is_err());
    }
}
