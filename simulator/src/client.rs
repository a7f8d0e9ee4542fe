//! [`SimClient`]: a typed async client of the control API, one method per endpoint, used by
//! tests, benches and the `demo` command. It only speaks `/_sim`; the Freshdesk API is for the
//! code under test.

use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

use crate::types::{
    AgentNote, AgentReply, BodyRewrites, BulkCreated, BulkTickets, ConfigUpdate, CustomerReply,
    DeliveryKnobs, DeliveryRecord, FaultsConfig, NewAgent, NewApiKey, NewGroup, NewTicket,
    RecordedRequest, RequestFilter, StatusChange, TicketBrief, WebhookConfig,
};

/// A failed control call.
#[derive(Debug, thiserror::Error)]
pub enum SimClientError {
    /// The simulator could not be reached or its answer could not be read.
    #[error("simulator request failed: {0}")]
    Http(#[from] reqwest::Error),
    /// The simulator answered with an error status.
    #[error("simulator answered {status}: {body}")]
    Status { status: StatusCode, body: String },
}

/// Result of a control call.
pub type SimResult<T> = Result<T, SimClientError>;

/// How long the client keeps an idle connection to the simulator (below the server's 5 s).
const IDLE_CONNECTION_LIFETIME: std::time::Duration = std::time::Duration::from_secs(1);

/// Client of the simulator's control API.
#[derive(Debug, Clone)]
pub struct SimClient {
    http: reqwest::Client,
    base_url: String,
}

impl SimClient {
    /// A client of the simulator at `base_url` (e.g. `http://127.0.0.1:9000`).
    pub fn new(base_url: impl Into<String>) -> Self {
        // The simulator (actix-web) closes a connection idle for 5 s; a pooled connection
        // reused just as it closes fails the request (IncompleteMessage). Idle connections are
        // dropped well before that, so every reused one is fresh.
        let http = reqwest::Client::builder()
            .pool_idle_timeout(IDLE_CONNECTION_LIFETIME)
            .build()
            .expect("an HTTP client without TLS settings builds");
        SimClient {
            http,
            base_url: base_url.into().trim_end_matches('/').to_string(),
        }
    }

    /// The simulator's base URL.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&(impl Serialize + ?Sized)>,
    ) -> SimResult<T> {
        let response = self.send(method, path, body).await?;
        Ok(response.json().await?)
    }

    async fn call_empty(&self, method: Method, path: &str) -> SimResult<()> {
        self.send(method, path, None::<&Value>).await.map(drop)
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<&(impl Serialize + ?Sized)>,
    ) -> SimResult<reqwest::Response> {
        let mut request = self
            .http
            .request(method, format!("{}/_sim{path}", self.base_url));
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await?;
        let status = response.status();
        if status.is_success() {
            Ok(response)
        } else {
            let body = response.text().await.unwrap_or_default();
            Err(SimClientError::Status { status, body })
        }
    }

    /// `GET /_sim/health`.
    pub async fn health(&self) -> SimResult<()> {
        self.call_empty(Method::GET, "/health").await
    }

    /// `POST /_sim/tickets` → the ticket JSON (fires rule 1 unless `webhook: Some(false)`).
    pub async fn create_ticket(&self, ticket: &NewTicket) -> SimResult<Value> {
        self.call(Method::POST, "/tickets", Some(ticket)).await
    }

    /// `POST /_sim/tickets/bulk` → the ids created.
    pub async fn bulk_tickets(&self, bulk: &BulkTickets) -> SimResult<Vec<u64>> {
        let created: BulkCreated = self.call(Method::POST, "/tickets/bulk", Some(bulk)).await?;
        Ok(created.ids)
    }

    /// `GET /_sim/tickets` → every ticket, briefly.
    pub async fn tickets(&self) -> SimResult<Vec<TicketBrief>> {
        self.call(Method::GET, "/tickets", None::<&Value>).await
    }

    /// `GET /_sim/tickets/{id}` → the ticket with all its `conversations` (and `deleted`).
    pub async fn get_ticket(&self, ticket_id: u64) -> SimResult<Value> {
        self.call(
            Method::GET,
            &format!("/tickets/{ticket_id}"),
            None::<&Value>,
        )
        .await
    }

    /// `POST /_sim/tickets/{id}/customer_reply` → the conversation.
    pub async fn customer_reply(&self, ticket_id: u64, body: &str) -> SimResult<Value> {
        let reply = CustomerReply {
            body: body.to_string(),
            webhook: None,
        };
        self.call(
            Method::POST,
            &format!("/tickets/{ticket_id}/customer_reply"),
            Some(&reply),
        )
        .await
    }

    /// `POST /_sim/tickets/{id}/agent_reply` → the public reply by `agent_id`.
    pub async fn agent_reply(&self, ticket_id: u64, agent_id: u64, body: &str) -> SimResult<Value> {
        let reply = AgentReply {
            agent_id,
            body: body.to_string(),
            webhook: None,
        };
        self.call(
            Method::POST,
            &format!("/tickets/{ticket_id}/agent_reply"),
            Some(&reply),
        )
        .await
    }

    /// `POST /_sim/tickets/{id}/agent_note` → the note.
    pub async fn agent_note(&self, ticket_id: u64, note: &AgentNote) -> SimResult<Value> {
        self.call(
            Method::POST,
            &format!("/tickets/{ticket_id}/agent_note"),
            Some(note),
        )
        .await
    }

    /// `POST /_sim/tickets/{id}/status` → the updated ticket.
    pub async fn set_status(&self, ticket_id: u64, status: u64) -> SimResult<Value> {
        let change = StatusChange {
            status,
            webhook: None,
        };
        self.call(
            Method::POST,
            &format!("/tickets/{ticket_id}/status"),
            Some(&change),
        )
        .await
    }

    /// `PATCH /_sim/tickets/{id}` with any property `PUT /api/v2/tickets/{id}` accepts (plus
    /// `webhook`) → the updated ticket.
    pub async fn update_ticket(&self, ticket_id: u64, changes: &Value) -> SimResult<Value> {
        self.call(
            Method::PATCH,
            &format!("/tickets/{ticket_id}"),
            Some(changes),
        )
        .await
    }

    /// `DELETE /_sim/tickets/{id}`.
    pub async fn delete_ticket(&self, ticket_id: u64) -> SimResult<()> {
        self.call_empty(Method::DELETE, &format!("/tickets/{ticket_id}"))
            .await
    }

    /// `DELETE /_sim/conversations/{id}`.
    pub async fn delete_conversation(&self, conversation_id: u64) -> SimResult<()> {
        self.call_empty(Method::DELETE, &format!("/conversations/{conversation_id}"))
            .await
    }

    /// `POST /_sim/agents` → the agent JSON.
    pub async fn create_agent(&self, agent: &NewAgent) -> SimResult<Value> {
        self.call(Method::POST, "/agents", Some(agent)).await
    }

    /// `DELETE /_sim/agents/{id}`.
    pub async fn delete_agent(&self, agent_id: u64) -> SimResult<()> {
        self.call_empty(Method::DELETE, &format!("/agents/{agent_id}"))
            .await
    }

    /// `POST /_sim/agents/{id}/api_key`: the agent's key is reset; the old one stops working.
    pub async fn rotate_agent_key(&self, agent_id: u64, api_key: &str) -> SimResult<()> {
        let body = NewApiKey {
            api_key: api_key.to_string(),
        };
        self.send(
            Method::POST,
            &format!("/agents/{agent_id}/api_key"),
            Some(&body),
        )
        .await
        .map(drop)
    }

    /// `POST /_sim/groups` → the group JSON.
    pub async fn create_group(&self, name: &str) -> SimResult<Value> {
        let group = NewGroup {
            name: name.to_string(),
        };
        self.call(Method::POST, "/groups", Some(&group)).await
    }

    /// `DELETE /_sim/groups/{id}`.
    pub async fn delete_group(&self, group_id: u64) -> SimResult<()> {
        self.call_empty(Method::DELETE, &format!("/groups/{group_id}"))
            .await
    }

    /// `POST /_sim/webhook` → the effective rules.
    pub async fn set_webhook(&self, config: &WebhookConfig) -> SimResult<WebhookConfig> {
        self.call(Method::POST, "/webhook", Some(config)).await
    }

    /// `POST /_sim/delivery` (partial) → the effective knobs.
    pub async fn set_delivery(&self, knobs: &DeliveryKnobs) -> SimResult<DeliveryKnobs> {
        self.call(Method::POST, "/delivery", Some(knobs)).await
    }

    /// `POST /_sim/faults` (partial) → the effective fault plan.
    pub async fn set_faults(&self, faults: &FaultsConfig) -> SimResult<FaultsConfig> {
        self.call(Method::POST, "/faults", Some(faults)).await
    }

    /// `DELETE /_sim/faults` → no faults any more.
    pub async fn clear_faults(&self) -> SimResult<FaultsConfig> {
        self.call(Method::DELETE, "/faults", None::<&Value>).await
    }

    /// `POST /_sim/body_rewrites` (partial) → the effective rewrites.
    pub async fn set_body_rewrites(&self, rewrites: &BodyRewrites) -> SimResult<BodyRewrites> {
        self.call(Method::POST, "/body_rewrites", Some(rewrites))
            .await
    }

    /// `POST /_sim/config` (partial) → the effective configuration.
    pub async fn set_config(&self, config: &ConfigUpdate) -> SimResult<ConfigUpdate> {
        self.call(Method::POST, "/config", Some(config)).await
    }

    /// `GET /_sim/requests` → every recorded `/api/v2` request, in arrival order.
    pub async fn requests(&self) -> SimResult<Vec<RecordedRequest>> {
        self.requests_filtered(&RequestFilter::default()).await
    }

    /// `GET /_sim/requests?method=&path_prefix=&since_seq=` → the matching requests.
    pub async fn requests_filtered(
        &self,
        filter: &RequestFilter,
    ) -> SimResult<Vec<RecordedRequest>> {
        let query = serde_urlencoded::to_string(filter).unwrap_or_default();
        let path = if query.is_empty() {
            "/requests".to_string()
        } else {
            format!("/requests?{query}")
        };
        self.call(Method::GET, &path, None::<&Value>).await
    }

    /// `DELETE /_sim/requests`.
    pub async fn clear_requests(&self) -> SimResult<()> {
        self.call_empty(Method::DELETE, "/requests").await
    }

    /// `GET /_sim/deliveries` → webhook deliveries in creation order.
    pub async fn deliveries(&self) -> SimResult<Vec<DeliveryRecord>> {
        self.call(Method::GET, "/deliveries", None::<&Value>).await
    }

    /// `DELETE /_sim/deliveries`.
    pub async fn clear_deliveries(&self) -> SimResult<()> {
        self.call_empty(Method::DELETE, "/deliveries").await
    }
}
