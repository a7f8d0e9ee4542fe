//! `POST /webhooks/freshdesk/{token}`: durable intake (contract §3). The request is answered 202
//! only after the event is in the sled inbox and a (group-committed) flush covers it, and the
//! ticket's actor is woken; then a running setup self-test hears of it. A refused request
//! stores nothing.

use super::error::{payload_too_large, ApiError, Code};
use super::routes::route_not_found;
use crate::http::state::AppState;
use crate::selftest::Seen;
use actix_web::{web, HttpRequest, HttpResponse};
use futures::StreamExt;
use serde_json::Value;
use std::sync::atomic::Ordering;
use ticketsync_actors::ports::EventKind;
use ticketsync_actors::TicketId;

/// The answer of an accepted webhook.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct WebhookAccepted {
    /// Always `accepted`.
    pub status: &'static str,
    /// The stored event's id.
    pub event_id: ticketsync_actors::EventId,
}

/// Largest accepted webhook body.
pub const MAX_WEBHOOK_BODY: usize = 64 * 1024;

/// A webhook body, parsed: which ticket changed and the rule's event text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookHint {
    pub ticket_id: TicketId,
    pub triggered_event: String,
}

impl TryFrom<&[u8]> for WebhookHint {
    type Error = String;

    /// Freshdesk's rule sends `{"ticketId", "triggered_event"}`; guides written for other
    /// integrations have admins paste `{"freshdesk_webhook": {"ticket_id", "triggered_event"}}`.
    /// Both are the same event, checked alike; a refusal names the field as it was sent.
    fn try_from(body: &[u8]) -> Result<Self, Self::Error> {
        let value: Value = serde_json::from_slice(body)
            .map_err(|e| format!("The body is not valid JSON: {e}."))?;
        let object = value
            .as_object()
            .ok_or("The body must be a JSON object like {\"ticketId\": \"123\"}.")?;
        let (fields, id_field) = match object.get(WRAPPER) {
            Some(inner) if !object.contains_key("ticketId") => (
                inner.as_object().ok_or_else(|| {
                    format!("{WRAPPER} must be a JSON object like {{\"ticket_id\": \"123\"}}.")
                })?,
                "ticket_id",
            ),
            _ => (object, "ticketId"),
        };
        let ticket = fields
            .get(id_field)
            .ok_or_else(|| format!("{id_field} is missing."))?;
        let ticket_id = match ticket {
            Value::String(s) => {
                let trimmed = s.trim();
                if trimmed.is_empty() || !trimmed.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(format!("{id_field} must be a number, got \"{}\".", clip(s)));
                }
                trimmed
                    .parse::<u64>()
                    .map_err(|_| format!("{id_field} is out of range: \"{}\".", clip(s)))?
            }
            // `1620.0` is the number 1620 (serde reads it as a float).
            Value::Number(n) => n
                .as_u64()
                .or_else(|| {
                    n.as_f64()
                        .filter(|f| f.fract() == 0.0 && (0.0..u64::MAX as f64).contains(f))
                        .map(|f| f as u64)
                })
                .ok_or_else(|| format!("{id_field} must be a positive whole number, got {n}."))?,
            other => {
                return Err(format!(
                    "{id_field} must be a number or a string of digits, got {}.",
                    type_name(other)
                ))
            }
        };
        let ticket_id = TicketId::from_number(ticket_id).ok_or_else(|| {
            format!(
                "{id_field} must be a positive number up to {}, got {ticket_id}.",
                TicketId::MAX
            )
        })?;
        let triggered_event = match fields.get("triggered_event") {
            Some(Value::String(s)) => s.chars().take(200).collect(),
            Some(Value::Null) | None => String::new(),
            Some(other) => other.to_string().chars().take(200).collect(),
        };
        Ok(Self {
            ticket_id,
            triggered_event,
        })
    }
}

/// The key of the wrapped body some admins paste from other integrations' guides.
const WRAPPER: &str = "freshdesk_webhook";

/// The JSON schema of what [`WebhookHint::try_from`] accepts: `ticketId` (a string of digits,
/// blanks around it allowed, or an integer, 1 to `TicketId::MAX`), or, without `ticketId`,
/// the `freshdesk_webhook` object with `ticket_id`. Other fields are ignored.
pub fn body_schema() -> Value {
    use super::openapi::{decimal_up_to, WHITESPACE};
    let id = |field: &str| {
        serde_json::json!({"oneOf": [
            {"type": "string", "pattern": format!(
                "^[{WHITESPACE}]*{}[{WHITESPACE}]*$", decimal_up_to(TicketId::MAX))},
            {"type": "integer", "minimum": 1, "maximum": TicketId::MAX},
        ], "description": format!("The ticket's id ({field}).")})
    };
    let event = serde_json::json!({
        "description": "The rule's event text: any JSON value, kept as text (200 characters)."
    });
    serde_json::json!({"oneOf": [
        {
            "type": "object",
            "required": ["ticketId"],
            "properties": {"ticketId": id("ticketId"), "triggered_event": event},
        },
        {
            "type": "object",
            "required": [WRAPPER],
            "properties": {WRAPPER: {
                "type": "object",
                "required": ["ticket_id"],
                "properties": {"ticket_id": id("ticket_id"), "triggered_event": event},
            }},
            "not": {"required": ["ticketId"]},
        },
    ]})
}

fn clip(s: &str) -> String {
    s.chars().take(40).collect()
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Every request under `/webhooks/freshdesk`: `POST /{token}` is a webhook, another method on it
/// is 405, any other path 404 (as a `/{token}` resource with a default service would answer).
async fn dispatch(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let token = match req.match_info().unprocessed().strip_prefix('/') {
        Some(token)
            if !token.is_empty()
                && !token.contains('/')
                && req.method() == actix_web::http::Method::POST =>
        {
            token.to_owned()
        }
        // 405 with `Allow: POST` for another method on a webhook URL, 404 for other paths.
        _ => return route_not_found(req).await,
    };
    receive(state, &token, req, payload).await
}

/// Durable intake of a Freshdesk automation rule's webhook.
#[utoipa::path(post, path = "/webhooks/freshdesk/{token}", tag = "webhook", operation_id = "receive_webhook",
    description = "Authenticated by the secret token in its path (shown once in the connection's `webhook_url`), not by a bearer token. Answered 202 only once the event is stored durably.",
    params(("token" = String, Path, description = "The org's webhook token.")),
    request_body(content = Object, description = "`{\"ticketId\": \"123\", \"triggered_event\": \"…\"}` (or, without `ticketId`, wrapped in `freshdesk_webhook` with `ticket_id`); other fields are ignored. The body is read as JSON whatever its Content-Type.", content_type = "application/json"),
    responses((status = 202, description = "Stored.", body = WebhookAccepted)))]
pub(super) async fn receive(
    state: web::Data<AppState>,
    token: &str,
    req: HttpRequest,
    mut payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let reject = |error: ApiError| {
        state.metrics.webhook_rejected(error.code.name());
        error
    };
    let Some(org) = state.tokens.verify(token) else {
        return Err(reject(ApiError::new(
            Code::InvalidToken,
            "This webhook URL is not valid. Copy it again from the Freshdesk connection settings.",
        )));
    };
    if !state.connected_orgs.connected(org).await? {
        return Err(reject(ApiError::new(
            Code::IntegrationGone,
            "This organization's Freshdesk integration is disconnected.",
        )));
    }
    let declared = req
        .headers()
        .get(actix_web::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > MAX_WEBHOOK_BODY) {
        return Err(reject(payload_too_large()));
    }
    let mut body = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| {
            ApiError::new(
                Code::InvalidPayload,
                format!("The body could not be read: {e}."),
            )
        })?;
        if body.len() + chunk.len() > MAX_WEBHOOK_BODY {
            return Err(reject(payload_too_large()));
        }
        body.extend_from_slice(&chunk);
    }
    let hint = WebhookHint::try_from(&body[..])
        .map_err(|m| reject(ApiError::new(Code::InvalidPayload, m)))?;

    let inbox = state.engine.inbox().clone();
    let event = inbox
        .append(
            org,
            hint.ticket_id,
            EventKind::Webhook {
                triggered_event: hint.triggered_event.clone(),
            },
        )
        .await
        .map_err(|e| not_durable(&e))?;
    // The event is in the inbox now: its flush and the wake run detached, so a client that
    // resets the connection (actix then drops this handler) leaves no event unwoken.
    let ticket = hint.ticket_id;
    let durable = actix_web::rt::spawn(async move {
        let flushed = inbox.flush().await;
        // Woken either way: a failed flush still left the event queued.
        inbox.wake(org, ticket);
        flushed
    });
    match durable.await {
        Ok(flushed) => flushed.map_err(|e| not_durable(&e))?,
        Err(e) => return Err(not_durable(&e)),
    }
    state
        .metrics
        .webhooks_accepted
        .fetch_add(1, Ordering::Relaxed);
    state
        .self_tests
        .observe(org, ticket, Seen::Webhook(&hint.triggered_event));
    tracing::debug!(org_id = %org, ticket_id = %hint.ticket_id, event_id = %event.id, triggered_event = %hint.triggered_event, "webhook accepted");
    Ok(HttpResponse::Accepted().json(WebhookAccepted {
        status: "accepted",
        event_id: event.id,
    }))
}

fn not_durable(e: &dyn std::error::Error) -> ApiError {
    tracing::error!(error = %super::error::error_chain(e), "webhook could not be made durable");
    ApiError::new(
        Code::StorageUnavailable,
        "The event could not be stored durably; retry later.",
    )
}

/// Register the webhook route (outside the admin scope: it is authenticated by its token).
/// A static prefix and the token cut from the rest of the path by hand: actix-router matches
/// a `{token}` segment with a regular expression (regex-lite's PikeVM), which cost more
/// instructions per acknowledgement than the durable append (BENCHMARKS.md, issue 13).
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::scope("/webhooks/freshdesk").default_service(web::to(dispatch)));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(body: &str) -> Result<WebhookHint, String> {
        WebhookHint::try_from(body.as_bytes())
    }

    #[test]
    fn ticket_ids_arrive_as_digit_strings_or_numbers() {
        let hint = parse(r#"{"ticketId": "123", "triggered_event": "{reply_sent:sent}"}"#).unwrap();
        assert_eq!(hint.ticket_id, TicketId(123));
        assert_eq!(hint.triggered_event, "{reply_sent:sent}");
        assert_eq!(parse(r#"{"ticketId": 7}"#).unwrap().ticket_id, TicketId(7));
        let wrapped =
            parse(r#"{"freshdesk_webhook": {"ticket_id": "123", "triggered_event": "{reply_sent:sent}"}}"#)
                .unwrap();
        assert_eq!(wrapped, hint);
        assert_eq!(
            parse(r#"{"ticketId": "8", "extra": [1]}"#)
                .unwrap()
                .triggered_event,
            ""
        );
    }

    /// JSON does not tell `1620` from `1620.0` (JSON Schema's `integer` admits both).
    #[test]
    fn a_whole_number_written_with_a_fraction_is_a_ticket_id() {
        assert_eq!(
            parse(r#"{"ticketId": 1620.0}"#).unwrap().ticket_id,
            TicketId(1620)
        );
        assert_eq!(
            parse(r#"{"freshdesk_webhook": {"ticket_id": 7e2}}"#)
                .unwrap()
                .ticket_id,
            TicketId(700)
        );
        for body in [
            r#"{"ticketId": 0.0}"#,
            r#"{"ticketId": -3.0}"#,
            r#"{"ticketId": 1e19}"#,
            r#"{"ticketId": 2.5}"#,
        ] {
            assert!(parse(body).is_err(), "{body}");
        }
    }

    #[test]
    fn bad_ticket_ids_are_refused_with_a_reason() {
        for body in [
            r#"{}"#,
            r#"{"ticketId": ""}"#,
            r#"{"ticketId": "12a"}"#,
            r#"{"ticketId": "{{ticket.id}}"}"#,
            r#"{"ticketId": -1}"#,
            r#"{"ticketId": 1.5}"#,
            r#"{"ticketId": 0}"#,
            r#"{"ticketId": "99999999999999999999999"}"#,
            r#"{"ticketId": null}"#,
            r#"{"ticketId": [1]}"#,
            r#"[1]"#,
            r#"{"ticketId": "1""#,
            r#"{"freshdesk_webhook": {"ticketId": "1"}}"#,
            r#"{"freshdesk_webhook": [1]}"#,
        ] {
            assert!(parse(body).is_err(), "{body}");
        }
    }
}
