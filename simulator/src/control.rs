//! The control API (`/_sim/...`): how tests, benches and the demo play the people around the
//! help desk (customers writing, agents replying, admins changing agents and groups), seed
//! data, tune faults, webhook delivery and limits, and read what the simulator saw.
//!
//! No auth, no credits, never recorded in the request log. Errors are
//! `{"error":{"code","message"}}`, except ticket-field validation, which answers Freshdesk's
//! own 400 `Validation failed` shape (the same validator as `PUT /api/v2/tickets/{id}`).

use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse, ResponseError};
use serde_json::{json, Map, Value};

use crate::errors::{ApiError, FieldError};
use crate::model::{SOURCE_NOTE, SOURCE_REPLY};
use crate::state::Sim;
use crate::tickets::{Author, NewConversation};
use crate::types::{
    AgentNote, AgentReply, BodyRewrites, BulkCreated, BulkTickets, ConfigUpdate, CustomerReply,
    DeliveryKnobs, FaultsConfig, NewAgent, NewApiKey, NewGroup, NewTicket, RequestFilter,
    StatusChange, TicketBrief, WebhookConfig,
};
use crate::webhooks::Origin;

/// Mounts the control API under `/_sim`.
pub(crate) fn configure(cfg: &mut web::ServiceConfig) {
    let json_errors = web::JsonConfig::default()
        .limit(4 * 1024 * 1024)
        .error_handler(|err, _req| ControlError::BadRequest(err.to_string()).into());
    cfg.service(
        web::scope("/_sim")
            .app_data(json_errors)
            .route("/health", web::get().to(health))
            .route("/tickets", web::post().to(create_ticket))
            .route("/tickets", web::get().to(list_tickets))
            .route("/tickets/bulk", web::post().to(bulk_tickets))
            .route("/tickets/{id}", web::get().to(get_ticket))
            .route("/tickets/{id}", web::patch().to(patch_ticket))
            .route("/tickets/{id}", web::delete().to(delete_ticket))
            .route(
                "/tickets/{id}/customer_reply",
                web::post().to(customer_reply),
            )
            .route("/tickets/{id}/agent_reply", web::post().to(agent_reply))
            .route("/tickets/{id}/agent_note", web::post().to(agent_note))
            .route("/tickets/{id}/status", web::post().to(set_status))
            .route("/conversations/{id}", web::delete().to(delete_conversation))
            .route("/agents", web::get().to(list_agents))
            .route("/agents", web::post().to(create_agent))
            .route("/agents/{id}", web::delete().to(delete_agent))
            .route("/agents/{id}/api_key", web::post().to(rotate_agent_key))
            .route("/groups", web::post().to(create_group))
            .route("/groups/{id}", web::delete().to(delete_group))
            .route("/webhook", web::get().to(get_webhook))
            .route("/webhook", web::post().to(set_webhook))
            .route("/delivery", web::get().to(get_delivery))
            .route("/delivery", web::post().to(set_delivery))
            .route("/faults", web::get().to(get_faults))
            .route("/faults", web::post().to(set_faults))
            .route("/faults", web::delete().to(reset_faults))
            .route("/body_rewrites", web::get().to(get_body_rewrites))
            .route("/body_rewrites", web::post().to(set_body_rewrites))
            .route("/config", web::get().to(get_config))
            .route("/config", web::post().to(set_config))
            .route("/requests", web::get().to(requests))
            .route("/requests", web::delete().to(clear_requests))
            .route("/deliveries", web::get().to(deliveries))
            .route("/deliveries", web::delete().to(clear_deliveries)),
    );
}

/// A failed control call.
#[derive(Debug, thiserror::Error)]
enum ControlError {
    #[error("{0} not found")]
    NotFound(String),
    #[error("{0}")]
    BadRequest(String),
    #[error("Validation failed")]
    Validation(Vec<FieldError>),
}

impl ResponseError for ControlError {
    fn status_code(&self) -> StatusCode {
        match self {
            ControlError::NotFound(_) => StatusCode::NOT_FOUND,
            ControlError::BadRequest(_) | ControlError::Validation(_) => StatusCode::BAD_REQUEST,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let body = match self {
            ControlError::Validation(errors) => ApiError::Validation(errors.clone())
                .body()
                .unwrap_or(Value::Null),
            other => {
                let code = match other {
                    ControlError::NotFound(_) => "not_found",
                    _ => "bad_request",
                };
                json!({"error": {"code": code, "message": other.to_string()}})
            }
        };
        HttpResponse::build(self.status_code()).json(body)
    }
}

type SimData = web::Data<Sim>;
type Result<T> = std::result::Result<T, ControlError>;

fn origin(webhook: Option<bool>) -> Origin {
    if webhook.unwrap_or(true) {
        Origin::Ui
    } else {
        Origin::Silent
    }
}

fn ticket_not_found(id: u64) -> ControlError {
    ControlError::NotFound(format!("ticket {id}"))
}

async fn health() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "ok"}))
}

// ----- tickets ---------------------------------------------------------------------------------

async fn create_ticket(sim: SimData, new: web::Json<NewTicket>) -> Result<HttpResponse> {
    let ticket = sim
        .state
        .lock()
        .create_ticket(&new)
        .map_err(ControlError::Validation)?;
    Ok(HttpResponse::Created().json(ticket))
}

async fn list_tickets(sim: SimData) -> HttpResponse {
    let st = sim.state.lock();
    let briefs: Vec<TicketBrief> = st
        .tickets
        .iter()
        .map(|t| TicketBrief {
            id: t.id,
            subject: t.subject.clone(),
            status: t.status,
            responder_id: t.responder_id,
            group_id: t.group_id,
            deleted: t.deleted,
            conversations: t.conversations.len(),
            updated_at: t.updated_at,
        })
        .collect();
    drop(st);
    HttpResponse::Ok().json(briefs)
}

async fn bulk_tickets(sim: SimData, req: web::Json<BulkTickets>) -> Result<HttpResponse> {
    let ids = sim
        .state
        .lock()
        .bulk_create(&req)
        .map_err(ControlError::BadRequest)?;
    Ok(HttpResponse::Created().json(BulkCreated { ids }))
}

/// The ticket (deleted ones too, flagged) with every conversation.
async fn get_ticket(sim: SimData, id: web::Path<u64>) -> Result<HttpResponse> {
    let id = id.into_inner();
    let st = sim.state.lock();
    let ticket = st.any_ticket(id).ok_or_else(|| ticket_not_found(id))?;
    let mut json = ticket.to_json(true);
    if let Some(obj) = json.as_object_mut() {
        obj.insert(
            "conversations".into(),
            ticket.conversations.iter().map(|c| c.to_json()).collect(),
        );
        obj.insert("deleted".into(), Value::Bool(ticket.deleted));
    }
    Ok(HttpResponse::Ok().json(json))
}

/// Any ticket property `PUT /api/v2/tickets/{id}` accepts, plus `webhook` (default true).
async fn patch_ticket(
    sim: SimData,
    id: web::Path<u64>,
    body: web::Json<Map<String, Value>>,
) -> Result<HttpResponse> {
    let mut body = body.into_inner();
    let webhook = match body.remove("webhook") {
        None => None,
        Some(Value::Bool(b)) => Some(b),
        Some(_) => return Err(ControlError::BadRequest("webhook must be a boolean".into())),
    };
    update(&sim, id.into_inner(), &body, origin(webhook))
}

async fn set_status(
    sim: SimData,
    id: web::Path<u64>,
    req: web::Json<StatusChange>,
) -> Result<HttpResponse> {
    let mut body = Map::new();
    body.insert("status".into(), Value::from(req.status));
    update(&sim, id.into_inner(), &body, origin(req.webhook))
}

fn update(sim: &Sim, id: u64, body: &Map<String, Value>, origin: Origin) -> Result<HttpResponse> {
    let mut st = sim.state.lock();
    st.ticket(id).ok_or_else(|| ticket_not_found(id))?;
    let changes = st.parse_changes(body).map_err(ControlError::Validation)?;
    let ticket = st
        .update_ticket(id, changes, origin)
        .ok_or_else(|| ticket_not_found(id))?;
    Ok(HttpResponse::Ok().json(ticket))
}

async fn delete_ticket(sim: SimData, id: web::Path<u64>) -> Result<HttpResponse> {
    let id = id.into_inner();
    if sim.state.lock().delete_ticket(id) {
        Ok(HttpResponse::NoContent().finish())
    } else {
        Err(ticket_not_found(id))
    }
}

async fn delete_conversation(sim: SimData, id: web::Path<u64>) -> Result<HttpResponse> {
    let id = id.into_inner();
    if sim.state.lock().delete_conversation(id) {
        Ok(HttpResponse::NoContent().finish())
    } else {
        Err(ControlError::NotFound(format!("conversation {id}")))
    }
}

fn converse(sim: &Sim, id: u64, new: NewConversation, origin: Origin) -> Result<HttpResponse> {
    let mut st = sim.state.lock();
    if let Author::User(agent_id) = new.author {
        if st.live_agent(agent_id).is_none() {
            return Err(ControlError::BadRequest(format!(
                "agent {agent_id} does not exist"
            )));
        }
    }
    let conversation = st
        .add_conversation(id, new, origin)
        .ok_or_else(|| ticket_not_found(id))?;
    Ok(HttpResponse::Created().json(conversation))
}

async fn customer_reply(
    sim: SimData,
    id: web::Path<u64>,
    req: web::Json<CustomerReply>,
) -> Result<HttpResponse> {
    let req = req.into_inner();
    let new = NewConversation {
        author: Author::Requester,
        body: req.body,
        source: SOURCE_REPLY,
        private: false,
        incoming: true,
    };
    converse(&sim, id.into_inner(), new, origin(req.webhook))
}

async fn agent_reply(
    sim: SimData,
    id: web::Path<u64>,
    req: web::Json<AgentReply>,
) -> Result<HttpResponse> {
    let req = req.into_inner();
    let new = NewConversation {
        author: Author::User(req.agent_id),
        body: req.body,
        source: SOURCE_REPLY,
        private: false,
        incoming: false,
    };
    converse(&sim, id.into_inner(), new, origin(req.webhook))
}

async fn agent_note(
    sim: SimData,
    id: web::Path<u64>,
    req: web::Json<AgentNote>,
) -> Result<HttpResponse> {
    let req = req.into_inner();
    let new = NewConversation {
        author: Author::User(req.agent_id),
        body: req.body,
        source: SOURCE_NOTE,
        private: req.private.unwrap_or(true),
        incoming: req.incoming.unwrap_or(false),
    };
    converse(&sim, id.into_inner(), new, origin(req.webhook))
}

// ----- directory -------------------------------------------------------------------------------

/// Every agent ever created, with a `deleted` flag.
async fn list_agents(sim: SimData) -> HttpResponse {
    let st = sim.state.lock();
    let agents: Vec<Value> = st
        .agents
        .values()
        .map(|a| {
            let mut json = a.to_json();
            if let Some(obj) = json.as_object_mut() {
                obj.insert("deleted".into(), Value::Bool(a.deleted));
            }
            json
        })
        .collect();
    drop(st);
    HttpResponse::Ok().json(agents)
}

async fn create_agent(sim: SimData, new: web::Json<NewAgent>) -> Result<HttpResponse> {
    let mut st = sim.state.lock();
    let agent = st.create_agent(&new).map_err(ControlError::BadRequest)?;
    Ok(HttpResponse::Created().json(agent.to_json()))
}

async fn delete_agent(sim: SimData, id: web::Path<u64>) -> Result<HttpResponse> {
    let id = id.into_inner();
    if sim.state.lock().delete_agent(id) {
        Ok(HttpResponse::NoContent().finish())
    } else {
        Err(ControlError::NotFound(format!("agent {id}")))
    }
}

async fn rotate_agent_key(
    sim: SimData,
    id: web::Path<u64>,
    body: web::Json<NewApiKey>,
) -> Result<HttpResponse> {
    let id = id.into_inner();
    let mut state = sim.state.lock();
    if state.live_agent(id).is_none() {
        return Err(ControlError::NotFound(format!("agent {id}")));
    }
    state
        .rotate_agent_key(id, &body.api_key)
        .map_err(ControlError::BadRequest)?;
    Ok(HttpResponse::NoContent().finish())
}

async fn create_group(sim: SimData, new: web::Json<NewGroup>) -> Result<HttpResponse> {
    if new.name.trim().is_empty() {
        return Err(ControlError::BadRequest("name is required".into()));
    }
    let group = sim.state.lock().create_group(&new.name).to_json();
    Ok(HttpResponse::Created().json(group))
}

async fn delete_group(sim: SimData, id: web::Path<u64>) -> Result<HttpResponse> {
    let id = id.into_inner();
    if sim.state.lock().delete_group(id) {
        Ok(HttpResponse::NoContent().finish())
    } else {
        Err(ControlError::NotFound(format!("group {id}")))
    }
}

// ----- knobs -----------------------------------------------------------------------------------

async fn get_webhook(sim: SimData) -> HttpResponse {
    let config = sim.state.lock().webhooks.config();
    HttpResponse::Ok().json(config)
}

async fn set_webhook(sim: SimData, config: web::Json<WebhookConfig>) -> Result<HttpResponse> {
    if let Some(url) = &config.url {
        if reqwest::Url::parse(url).is_err() {
            return Err(ControlError::BadRequest(format!(
                "url {url:?} is not a valid URL"
            )));
        }
    }
    let mut st = sim.state.lock();
    st.webhooks.configure(&config);
    Ok(HttpResponse::Ok().json(st.webhooks.config()))
}

async fn get_delivery(sim: SimData) -> HttpResponse {
    let knobs = sim.state.lock().webhooks.knobs();
    HttpResponse::Ok().json(knobs)
}

async fn set_delivery(sim: SimData, knobs: web::Json<DeliveryKnobs>) -> Result<HttpResponse> {
    let mut st = sim.state.lock();
    st.webhooks.tune(&knobs).map_err(ControlError::BadRequest)?;
    Ok(HttpResponse::Ok().json(st.webhooks.knobs()))
}

async fn get_faults(sim: SimData) -> HttpResponse {
    let faults = sim.state.lock().faults.snapshot();
    HttpResponse::Ok().json(faults)
}

async fn set_faults(sim: SimData, update: web::Json<FaultsConfig>) -> Result<HttpResponse> {
    let mut st = sim.state.lock();
    st.faults
        .update(&update)
        .map_err(ControlError::BadRequest)?;
    Ok(HttpResponse::Ok().json(st.faults.snapshot()))
}

/// Clears every fault (the RNG seed is kept).
async fn reset_faults(sim: SimData) -> HttpResponse {
    let mut st = sim.state.lock();
    let seed = st.faults.snapshot().seed;
    st.faults = Default::default();
    // Reseeding with the previous seed cannot fail: it carries no rate.
    let _ = st.faults.update(&FaultsConfig {
        seed,
        ..FaultsConfig::default()
    });
    HttpResponse::Ok().json(st.faults.snapshot())
}

async fn get_body_rewrites(sim: SimData) -> HttpResponse {
    let rewrites = sim.state.lock().body_rewrites.snapshot();
    HttpResponse::Ok().json(rewrites)
}

async fn set_body_rewrites(sim: SimData, update: web::Json<BodyRewrites>) -> HttpResponse {
    let mut st = sim.state.lock();
    st.body_rewrites.update(&update);
    HttpResponse::Ok().json(st.body_rewrites.snapshot())
}

fn config_of(sim: &Sim) -> ConfigUpdate {
    let st = sim.state.lock();
    ConfigUpdate {
        rate_limit_per_min: Some(st.rate_limit_per_min),
        max_pages: Some(st.max_pages),
        tickets_list_per_min: Some(st.sub_limits.tickets_list_per_min),
        ticket_update_per_min: Some(st.sub_limits.ticket_update_per_min),
    }
}

async fn get_config(sim: SimData) -> HttpResponse {
    HttpResponse::Ok().json(config_of(&sim))
}

async fn set_config(sim: SimData, update: web::Json<ConfigUpdate>) -> Result<HttpResponse> {
    if update.max_pages == Some(0) {
        return Err(ControlError::BadRequest(
            "max_pages must be at least 1".into(),
        ));
    }
    {
        let mut st = sim.state.lock();
        if let Some(limit) = update.rate_limit_per_min {
            st.rate_limit_per_min = limit;
        }
        if let Some(max) = update.max_pages {
            st.max_pages = max;
        }
        if let Some(limit) = update.tickets_list_per_min {
            st.sub_limits.tickets_list_per_min = limit;
        }
        if let Some(limit) = update.ticket_update_per_min {
            st.sub_limits.ticket_update_per_min = limit;
        }
    }
    Ok(HttpResponse::Ok().json(config_of(&sim)))
}

// ----- observations ----------------------------------------------------------------------------

async fn requests(sim: SimData, filter: web::Query<RequestFilter>) -> HttpResponse {
    let requests = sim.state.lock().requests(&filter);
    HttpResponse::Ok().json(requests)
}

async fn clear_requests(sim: SimData) -> HttpResponse {
    sim.state.lock().clear_requests();
    HttpResponse::NoContent().finish()
}

async fn deliveries(sim: SimData) -> HttpResponse {
    let deliveries = sim.state.lock().webhooks.deliveries();
    HttpResponse::Ok().json(deliveries)
}

async fn clear_deliveries(sim: SimData) -> HttpResponse {
    sim.state.lock().webhooks.clear_deliveries();
    HttpResponse::NoContent().finish()
}
