//! The HTTP surface, declared once in `configure` for startup and tests alike.

pub mod auth;
pub mod error;
mod freshdesk;
mod health;
pub mod inbox;
pub mod inspect;
pub mod openapi;
pub mod orgs;
pub mod routes;
mod selftest;
mod sessions;
pub mod state;
mod tokens;
pub mod webhook;

use actix_web::middleware::from_fn;
use actix_web::web;

/// Largest admin request body.
const ADMIN_BODY_LIMIT: usize = 64 * 1024;

/// Every route of the service, with the error handlers that keep the error shape.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.app_data(
        web::JsonConfig::default()
            .limit(ADMIN_BODY_LIMIT)
            .error_handler(error::json_error_handler),
    )
    .app_data(web::PayloadConfig::new(ADMIN_BODY_LIMIT))
    .app_data(web::PathConfig::default().error_handler(error::path_error_handler))
    .app_data(web::QueryConfig::default().error_handler(error::query_error_handler))
    .configure(health::configure)
    .configure(webhook::configure)
    .configure(inspect::configure_metrics)
    .configure(crate::console::configure)
    .configure(openapi::configure)
    .service(
        web::scope("/api/v1")
            .wrap(from_fn(auth::require_admin))
            .configure(orgs::configure)
            .configure(freshdesk::configure)
            .configure(selftest::configure)
            .configure(sessions::configure)
            .configure(tokens::configure)
            .configure(inspect::configure)
            .default_service(web::to(routes::route_not_found)),
    )
    .default_service(web::to(routes::route_not_found));
}

/// One span per request with its method and path (webhook tokens redacted; the query and the
/// headers, which may carry secrets, are never logged), then one line with status and latency.
pub async fn trace_request(
    req: actix_web::dev::ServiceRequest,
    next: actix_web::middleware::Next<impl actix_web::body::MessageBody>,
) -> Result<actix_web::dev::ServiceResponse<impl actix_web::body::MessageBody>, actix_web::Error> {
    use tracing::Instrument;
    let path = redact_path(req.path());
    let span = tracing::info_span!("http", method = %req.method(), path = %path);
    let started = std::time::Instant::now();
    async move {
        let result = next.call(req).await;
        let status = match &result {
            Ok(res) => res.status().as_u16(),
            Err(e) => e.as_response_error().status_code().as_u16(),
        };
        tracing::info!(
            status,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "request"
        );
        result
    }
    .instrument(span)
    .await
}

/// The path with the webhook token replaced, so logs cannot leak it.
fn redact_path(path: &str) -> String {
    match path.strip_prefix("/webhooks/freshdesk/") {
        Some(_) => "/webhooks/freshdesk/<token>".to_string(),
        None => path.chars().take(200).collect(),
    }
}
