//! Inspection of the embedded state (`/api/v1/inspect`, per-ticket inspect) and `/metrics`.
//! The views are built by [`engine_view`] and [`ticket_view`], which the console's engine
//! pages call too.

use super::error::{ApiError, Code};
use crate::http::state::AppState;
use crate::metrics::{render, StorageGauges};
use crate::store::StoreError;
use actix_web::{get, web, HttpResponse};
use serde_json::json;
use std::sync::atomic::Ordering;
use ticketsync_actors::metrics::EngineMetrics;
use ticketsync_actors::{OrgId, TicketId};

/// Parked tickets listed at most in the engine view (the `parked_tickets` gauge counts all).
const PARKED_LISTED: usize = 100;

/// The engine's state (operator only).
#[utoipa::path(get, path = "/inspect", context_path = "/api/v1", tag = "inspect", operation_id = "inspect_engine", security(("bearerAuth" = [])),
    responses((status = 200, description = "Gauges and counters (`tracked_tickets`, `live_actors`, `inbox_depth`, `pending_effects`, `events_processed`, `events_failed`, `parked_tickets`, `storage_bytes`, `actor_restarts`, `passivations`, `effects_reconciled`), `orgs` (each connected org's backlog, budget, backfill, sweep), `parked` (up to 100 parked tickets with their last error) and, with several nodes, the cluster membership.", body = Object)))]
#[get("/inspect")]
pub(super) async fn engine(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(engine_view(&state).await?))
}

/// What `GET /api/v1/inspect` shows: the engine's gauges and counters, each connected org's
/// backlog, budget, backfill and sweep, the parked tickets with their last error, and the
/// cluster membership when several nodes share the store.
pub async fn engine_view(state: &AppState) -> Result<serde_json::Value, ApiError> {
    let m = state.engine.metrics();
    let mut orgs = Vec::new();
    for org in state.store.orgs().await? {
        let Some(connection) = state.store.connection(org.id).await? else {
            continue;
        };
        orgs.push(json!({
            "org_id": org.id,
            "connected": connection.connected,
            "error": state.engine.org_pause(org.id),
            "backlog": state.store.org_backlog(org.id).await?,
            "last_webhook_at": state.store.last_webhook_at(org.id).await?,
            "rate_budget": state.engine.budget(org.id),
            "backfill": state.backfill_view(org.id).await,
            "sweep": state.engine.sweep(org.id).await,
        }));
    }
    let mut parked = Vec::new();
    for (org, ticket) in state
        .engine
        .parked_tickets()
        .into_iter()
        .take(PARKED_LISTED)
    {
        let view = match ticket_view(state, org, ticket).await {
            Ok(view) => view,
            // Its org was deleted; the parked actor goes with it and is no longer listed.
            Err(e) if matches!(e.code, Code::OrgNotFound) => continue,
            Err(e) => return Err(e),
        };
        parked.push(json!({
            "org_id": org,
            "ticket_id": ticket,
            "last_error": view["last_error"],
        }));
    }
    let mut view = json!({
        "tracked_tickets": state.store.tracked_tickets().await?,
        "live_actors": m.live_actors.load(Ordering::Relaxed).max(0),
        "inbox_depth": state.store.inbox_depth().await?,
        "pending_effects": state.store.pending_effect_tickets().await?,
        "events_processed": EngineMetrics::get(&m.events_processed),
        "events_failed": EngineMetrics::get(&m.events_failed),
        "parked_tickets": m.parked_tickets.load(Ordering::Relaxed).max(0),
        "storage_bytes": state.store.size_on_disk().await?,
        "actor_restarts": EngineMetrics::get(&m.actor_restarts),
        "passivations": EngineMetrics::get(&m.passivations),
        "effects_reconciled": EngineMetrics::get(&m.effects_reconciled),
        "orgs": orgs,
        "parked": parked,
    });
    if let Some(cluster) = &state.cluster {
        let cluster = cluster.view().await.map_err(StoreError::from)?;
        let fields = serde_json::to_value(cluster).expect("the cluster view serialises");
        if let (Some(view), serde_json::Value::Object(fields)) = (view.as_object_mut(), fields) {
            view.extend(fields);
        }
    }
    Ok(view)
}

/// One ticket's stored state, live actor, queue and last error.
#[utoipa::path(get, path = "/orgs/{org_id}/tickets/{ticket_id}/inspect", context_path = "/api/v1", tag = "inspect", operation_id = "inspect_ticket",
    params(("org_id" = uuid::Uuid, Path, description = "The organization's id."), ("ticket_id" = u64, Path, minimum = 1, description = "The Freshdesk ticket id.")), security(("bearerAuth" = [])),
    responses((status = 200, description = "The ticket's state as the engine holds it.", body = Object)))]
#[get("/orgs/{org_id}/tickets/{ticket_id}/inspect")]
pub(super) async fn ticket_inspect(
    state: web::Data<AppState>,
    path: web::Path<(OrgId, u64)>,
) -> Result<HttpResponse, ApiError> {
    let (org, ticket) = path.into_inner();
    let ticket = super::error::ticket_in_path(ticket)?;
    Ok(HttpResponse::Ok().json(ticket_view(&state, org, ticket).await?))
}

/// What `GET …/tickets/{ticket_id}/inspect` shows: the ticket's stored state, its live actor,
/// its queue and its last error (404 `org_not_found` for an unknown org).
pub async fn ticket_view(
    state: &AppState,
    org: OrgId,
    ticket: TicketId,
) -> Result<serde_json::Value, ApiError> {
    state
        .store
        .org(org)
        .await?
        .ok_or_else(super::orgs::org_not_found)?;
    let record = state.store.ticket_record(org, ticket).await?;
    let queued = state
        .store
        .queued_events(org, ticket)
        .await
        .map_err(|e| ApiError::internal(&e))?
        .len();
    let actor = state.engine.actor_status(org, ticket).await;
    Ok(crate::inspect::ticket_state(
        org,
        ticket,
        record.as_ref(),
        actor,
        queued,
        state.engine.last_crash(org, ticket),
    ))
}

/// `GET /metrics`: Prometheus text.
#[utoipa::path(get, path = "/metrics", tag = "inspect", operation_id = "metrics",
    description = "Prometheus metrics (operator only).", security(("bearerAuth" = [])),
    responses((status = 200, description = "Prometheus text exposition format 0.0.4.", body = String, content_type = "text/plain")))]
pub(super) async fn metrics(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let gauges = StorageGauges {
        inbox_depth: state.store.inbox_depth().await?,
        tracked_tickets: state.store.tracked_tickets().await?,
        pending_effect_tickets: state.store.pending_effect_tickets().await?,
        storage_bytes: state.store.size_on_disk().await?,
    };
    Ok(HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(render(&state.metrics, state.engine.metrics(), &gauges)))
}

/// Register the inspection routes (inside the admin scope).
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(engine).service(ticket_inspect);
}

/// Register `/metrics`, behind the admin token like the rest of the admin surface.
pub fn configure_metrics(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/metrics")
            .wrap(actix_web::middleware::from_fn(super::auth::require_admin))
            .route(web::get().to(metrics))
            .default_service(web::to(super::routes::route_not_found)),
    );
}
