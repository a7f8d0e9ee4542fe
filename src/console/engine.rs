//! The operator's Engine pages: `GET /engine` shows what `GET /api/v1/inspect` knows, readable
//! (engine gauges and counters, each connected org's backlog, rate budget, backfill and sweep,
//! the parked tickets with their last error, the cluster when there is one), and
//! `GET /engine/ticket?org_id=&ticket_id=` shows one ticket's inspection. Both render the views
//! `http::inspect` builds for the JSON routes. Org admins get the 404 page.

use super::layout::Layout;
use super::session::ConsoleUser;
use super::{display_time, render, require_operator, visible_orgs, PageError};
use crate::http::inspect::{engine_view, ticket_view};
use crate::http::state::AppState;
use actix_web::http::StatusCode;
use actix_web::{get, web, HttpResponse};
use askama::Template;
use serde::Deserialize;
use serde_json::Value;
use std::collections::HashMap;
use ticketsync_actors::org::Org;
use ticketsync_actors::{OrgId, TicketId};

/// The engine-wide numbers, in the order the page lists them: view field and label.
const ENGINE_FIGURES: [(&str, &str); 11] = [
    ("tracked_tickets", "Tracked tickets"),
    ("live_actors", "Live ticket actors"),
    ("inbox_depth", "Inbox depth (queued events)"),
    ("pending_effects", "Tickets with pending effects"),
    ("parked_tickets", "Parked tickets"),
    ("events_processed", "Events processed"),
    ("events_failed", "Events failed"),
    ("actor_restarts", "Actor restarts"),
    ("passivations", "Passivations"),
    ("effects_reconciled", "Effects reconciled"),
    ("storage_bytes", "Storage (bytes)"),
];

/// A JSON value as the page writes it: strings bare, nothing as a dash.
fn text(value: &Value) -> String {
    match value {
        Value::Null => "—".to_string(),
        Value::String(s) => s.clone(),
        Value::Bool(true) => "yes".to_string(),
        Value::Bool(false) => "no".to_string(),
        other => other.to_string(),
    }
}

/// A time of a view (RFC 3339 text) as the console writes times; `never` when there is none.
fn time(value: &Value) -> String {
    match value.as_str().map(chrono::DateTime::parse_from_rfc3339) {
        Some(Ok(at)) => display_time(at.with_timezone(&chrono::Utc)),
        Some(Err(_)) => text(value),
        None => "never".to_string(),
    }
}

/// A labelled figure; `key` names it for tests (`data-testid="engine-{key}"`).
struct Figure {
    key: &'static str,
    label: &'static str,
    value: String,
}

/// One connected org's row.
struct OrgRow {
    name: String,
    connected: bool,
    error: Option<String>,
    backlog: String,
    last_webhook: String,
    budget: String,
    budget_paused_until: Option<String>,
    backfill_state: String,
    backfill_detail: String,
    sweep: String,
}

/// A parked ticket with its last error.
struct ParkedRow {
    org: String,
    ticket_id: String,
    href: String,
    error: String,
    error_at: String,
}

/// This node and its peers, when several nodes share the store.
struct ClusterRows {
    node: String,
    shards: String,
    nodes: Vec<[String; 5]>,
}

/// An org in the lookup form's select.
struct OrgChoice {
    id: String,
    name: String,
    selected: bool,
}

#[derive(Template)]
#[template(path = "console/engine.html")]
struct EnginePage {
    layout: Layout,
    figures: Vec<Figure>,
    orgs: Vec<OrgRow>,
    parked: Vec<ParkedRow>,
    cluster: Option<ClusterRows>,
    lookup: Lookup,
}

/// The ticket lookup form, as typed.
struct Lookup {
    orgs: Vec<OrgChoice>,
    ticket_id: String,
    error: Option<String>,
}

fn lookup(orgs: &[Org], org: Option<OrgId>, ticket_id: &str, error: Option<String>) -> Lookup {
    Lookup {
        orgs: orgs
            .iter()
            .map(|o| OrgChoice {
                id: o.id.to_string(),
                name: o.name.clone(),
                selected: Some(o.id) == org,
            })
            .collect(),
        ticket_id: ticket_id.to_string(),
        error,
    }
}

fn org_row(org: &Value, names: &HashMap<String, String>) -> OrgRow {
    let id = text(&org["org_id"]);
    let budget = &org["rate_budget"];
    let backfill = &org["backfill"];
    let sweep = &org["sweep"];
    OrgRow {
        name: names.get(&id).cloned().unwrap_or(id),
        connected: org["connected"] == true,
        error: org["error"]["message"].as_str().map(str::to_string),
        backlog: text(&org["backlog"]),
        last_webhook: time(&org["last_webhook_at"]),
        budget: format!(
            "{} of {} per minute left",
            text(&budget["remaining"]),
            text(&budget["limit_per_min"])
        ),
        budget_paused_until: budget["paused_until"]
            .as_str()
            .map(|_| time(&budget["paused_until"])),
        backfill_state: text(&backfill["state"]),
        backfill_detail: if backfill["pages_fetched"].is_null() {
            String::new()
        } else {
            format!(
                "{} pages, {} tickets{}",
                text(&backfill["pages_fetched"]),
                text(&backfill["tickets_seen"]),
                backfill["last_error"]
                    .as_str()
                    .map(|e| format!("; last error: {e}"))
                    .unwrap_or_default()
            )
        },
        sweep: if sweep["last_run_at"].is_null() {
            "not run yet".to_string()
        } else {
            format!(
                "last run {}, {} tickets requeued",
                time(&sweep["last_run_at"]),
                text(&sweep["tickets_requeued"])
            )
        },
    }
}

fn cluster_rows(view: &Value) -> Option<ClusterRows> {
    let node = view.get("node")?;
    let shards = view["shards"]
        .as_array()
        .map(|s| {
            s.iter()
                .map(|lease| {
                    format!(
                        "{} (until {})",
                        text(&lease["shard"]),
                        time(&lease["expires_at"])
                    )
                })
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default();
    let nodes = view["nodes"]
        .as_array()
        .map(|nodes| {
            nodes
                .iter()
                .map(|n| {
                    [
                        text(&n["id"]),
                        text(&n["address"]),
                        time(&n["heartbeat_at"]),
                        text(&n["leaving"]),
                        n["shards"]
                            .as_array()
                            .map(|s| s.iter().map(text).collect::<Vec<_>>().join(", "))
                            .unwrap_or_default(),
                    ]
                })
                .collect()
        })
        .unwrap_or_default();
    Some(ClusterRows {
        node: format!(
            "{} (started {})",
            text(&node["id"]),
            time(&node["started_at"])
        ),
        shards,
        nodes,
    })
}

#[get("/engine")]
async fn engine(state: web::Data<AppState>, user: ConsoleUser) -> Result<HttpResponse, PageError> {
    require_operator(&user)?;
    let view = engine_view(&state).await.map_err(|_| PageError::Internal)?;
    let orgs = visible_orgs(&state, &user).await?;
    let names: HashMap<String, String> = orgs
        .iter()
        .map(|o| (o.id.to_string(), o.name.clone()))
        .collect();
    let figures = ENGINE_FIGURES
        .iter()
        .map(|(key, label)| Figure {
            key,
            label,
            value: text(&view[*key]),
        })
        .collect();
    let org_rows = view["orgs"]
        .as_array()
        .map(|orgs| orgs.iter().map(|o| org_row(o, &names)).collect())
        .unwrap_or_default();
    let parked = view["parked"]
        .as_array()
        .map(|parked| {
            parked
                .iter()
                .map(|p| {
                    let org = text(&p["org_id"]);
                    let ticket_id = text(&p["ticket_id"]);
                    ParkedRow {
                        href: format!("/engine/ticket?org_id={org}&ticket_id={ticket_id}"),
                        org: names.get(&org).cloned().unwrap_or(org),
                        ticket_id,
                        error: text(&p["last_error"]["message"]),
                        error_at: time(&p["last_error"]["at"]),
                    }
                })
                .collect()
        })
        .unwrap_or_default();
    let page = EnginePage {
        layout: Layout::signed_in(&user, "Engine", "engine", None),
        figures,
        orgs: org_rows,
        parked,
        cluster: cluster_rows(&view),
        lookup: lookup(&orgs, None, "", None),
    };
    render(StatusCode::OK, &page)
}

/// One fact of the ticket's inspection.
struct Fact {
    label: &'static str,
    value: String,
}

/// A pending effect of the ticket.
struct EffectRow {
    kind: String,
    attempts: String,
    created: String,
    id: String,
}

/// What the ticket page shows of an inspection.
struct Inspection {
    ticket_id: String,
    session_href: Option<String>,
    facts: Vec<Fact>,
    effects: Vec<EffectRow>,
    last_error: Option<(String, String)>,
    raw: String,
}

#[derive(Template)]
#[template(path = "console/engine_ticket.html")]
struct TicketPage {
    layout: Layout,
    lookup: Lookup,
    inspection: Option<Inspection>,
}

fn inspection(view: &Value) -> Inspection {
    let org = text(&view["org_id"]);
    let fact = |label, value: &Value| Fact {
        label,
        value: text(value),
    };
    let gate = &view["gate"];
    let actor = &view["actor"];
    let facts = vec![
        fact("Gate decision", &gate["decision"]),
        fact("Gate reason", &gate["reason"]),
        Fact {
            label: "Decided at",
            value: time(&gate["at"]),
        },
        fact("Actor live", &actor["live"]),
        fact("Actor busy", &actor["busy"]),
        fact("Restarts", &actor["restarts"]),
        fact("Parked", &actor["parked"]),
        fact("Queued events", &view["queue"]["pending_events"]),
        fact(
            "Last conversation seen",
            &view["watermark"]["last_conversation_id"],
        ),
        fact(
            "Ticket updated at (seen)",
            &view["watermark"]["ticket_updated_at"],
        ),
        fact("AI answers", &view["ai"]["answers"]),
        fact("Retries", &view["retries"]),
    ];
    let effects = view["pending_effects"]
        .as_array()
        .map(|effects| {
            effects
                .iter()
                .map(|e| EffectRow {
                    kind: text(&e["kind"]),
                    attempts: text(&e["attempts"]),
                    created: time(&e["created_at"]),
                    id: text(&e["id"]),
                })
                .collect()
        })
        .unwrap_or_default();
    Inspection {
        ticket_id: text(&view["ticket_id"]),
        session_href: view["session_id"]
            .as_str()
            .map(|session| format!("/orgs/{org}/inbox/{session}")),
        facts,
        effects,
        last_error: view["last_error"]["message"]
            .as_str()
            .map(|m| (m.to_string(), time(&view["last_error"]["at"]))),
        raw: serde_json::to_string_pretty(view).expect("a JSON value serialises"),
    }
}

#[derive(Deserialize)]
struct TicketQuery {
    #[serde(default)]
    org_id: String,
    #[serde(default)]
    ticket_id: String,
}

#[get("/engine/ticket")]
async fn ticket(
    state: web::Data<AppState>,
    user: ConsoleUser,
    query: web::Query<TicketQuery>,
) -> Result<HttpResponse, PageError> {
    require_operator(&user)?;
    let orgs = visible_orgs(&state, &user).await?;
    let org = query.org_id.trim().parse::<OrgId>().ok();
    let ticket_text = query.ticket_id.trim();
    let ticket = ticket_text.parse::<u64>().ok().filter(|t| *t > 0);
    let outcome = match (org, ticket) {
        (None, _) => Err((
            StatusCode::BAD_REQUEST,
            "Choose an organization.".to_string(),
        )),
        (_, None) => Err((
            StatusCode::BAD_REQUEST,
            "Ticket ID must be a Freshdesk ticket number, like 123.".to_string(),
        )),
        (Some(org), Some(ticket)) => match ticket_view(&state, org, TicketId(ticket)).await {
            Ok(view) => Ok(inspection(&view)),
            Err(e) if e.status.is_client_error() => Err((e.status, e.message)),
            Err(_) => return Err(PageError::Internal),
        },
    };
    let (status, inspection, error) = match outcome {
        Ok(inspection) => (StatusCode::OK, Some(inspection), None),
        Err((status, message)) => (status, None, Some(message)),
    };
    let page = TicketPage {
        layout: Layout::signed_in(&user, "Ticket inspection", "engine", None),
        lookup: lookup(&orgs, org, ticket_text, error),
        inspection,
    };
    render(status, &page)
}

/// Register the engine pages.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(engine).service(ticket);
}
