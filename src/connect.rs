//! The admin connect flow (contract §2): verify credentials, validate and save settings, show the
//! connection, disconnect. This module decides; the HTTP routes only translate.
//!
//! Every Freshdesk call here goes through the domain guard (`DomainPolicy`), so an admin can
//! never make the service call a host outside the allowed suffixes.

use crate::freshdesk::{DomainError, DomainPolicy, FreshdeskClient, FreshdeskDomain};
use crate::secrets::{KeyVault, WebhookTokens};
use crate::store::{ConnectionRecord, Store, StoreError};
use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use ticketsync_actors::freshdesk::{FreshdeskApi, FreshdeskError, Group, Role, TicketField};
use ticketsync_actors::org::{AiAgent, ChannelModes, HandoffSettings, OrgSettings, Routing};
use ticketsync_actors::OrgPause;
use ticketsync_actors::{AgentId, GroupId, OrgId, TicketId};

/// Payload of Freshdesk rule 1 (ticket created).
pub const TICKET_CREATED_PAYLOAD: &str =
    r#"{ "ticketId": "{{ticket.id}}", "triggered_event": "ticket_created" }"#;
/// Payload of Freshdesk rule 2 (ticket updated).
pub const TICKET_UPDATED_PAYLOAD: &str =
    r#"{ "ticketId": "{{ticket.id}}", "triggered_event": "{{Triggered event}}" }"#;

/// Why a connect step failed. Each variant maps to one API error code.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("{0}")]
    InvalidDomain(#[from] DomainError),
    #[error("Freshdesk rejected the API key. Copy it again from the AI agent's profile settings.")]
    InvalidCredentials,
    #[error("The agent this API key belongs to is not an administrator in Freshdesk. Give it the Account Administrator or Administrator role.")]
    NotAdmin,
    #[error("Freshdesk at {domain} could not be reached: {cause}")]
    Unreachable { domain: String, cause: String },
    #[error("{0}")]
    InvalidSettings(String),
    #[error("Freshdesk has no group with id {0}.")]
    GroupNotFound(GroupId),
    #[error("Freshdesk has no agent with id {0}.")]
    AgentNotFound(AgentId),
    #[error("{0}")]
    MarkerFieldNotFound(String),
    #[error("No organization has this id.")]
    OrgNotFound,
    #[error("This organization has never been connected to Freshdesk.")]
    NotConnected,
    #[error("api_key is required: paste the AI agent's Freshdesk API key.")]
    MissingApiKey,
    #[error("storage failed")]
    Store(#[from] StoreError),
}

/// The body of `PUT …/freshdesk` (contract §7).
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SaveRequest {
    pub domain: String,
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub api_key: Option<SecretString>,
    #[serde(default = "default_true")]
    pub auto_handle_all: bool,
    #[serde(default)]
    pub default_group_id: Option<GroupId>,
    #[serde(default)]
    pub handoff: HandoffSettings,
    #[serde(default)]
    pub channels: ChannelModes,
    /// Added at the end of replies in assist mode; at most 2000 characters.
    #[serde(default)]
    #[schema(max_length = 2000)]
    pub assist_footer: Option<String>,
    /// Accepted (and ignored) so that a GET's `settings` can be sent back as they are.
    #[serde(default, rename = "api_key_set")]
    pub _api_key_set: Option<bool>,
}

fn default_true() -> bool {
    true
}

/// What the save and read endpoints show about a connection.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ConnectionView {
    pub connected: bool,
    pub settings: SettingsView,
    pub agent: AiAgent,
    pub webhook_url: String,
    pub payloads: Payloads,
    pub first_connected_at: DateTime<Utc>,
    /// The first-connect import: `state` and its progress.
    #[schema(value_type = Object)]
    pub backfill: serde_json::Value,
    pub last_webhook_at: Option<DateTime<Utc>>,
    /// Why the engine cannot work for this org now (Freshdesk refuses the key, the domain is
    /// no longer allowed), with what to do about it.
    pub error: Option<OrgPause>,
}

/// The stored settings as shown: never the key, only whether one is set.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct SettingsView {
    pub domain: String,
    pub api_key_set: bool,
    pub auto_handle_all: bool,
    pub default_group_id: Option<GroupId>,
    pub handoff: HandoffSettings,
    pub channels: EffectiveChannels,
    pub assist_footer: Option<String>,
}

/// Channel modes with `other` resolved (it follows `web` when not set).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct EffectiveChannels {
    pub email: ticketsync_actors::org::ChannelMode,
    pub web: ticketsync_actors::org::ChannelMode,
    pub phone: ticketsync_actors::org::ChannelMode,
    pub other: ticketsync_actors::org::ChannelMode,
}

/// The two automation-rule payloads to paste into Freshdesk.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Payloads {
    pub ticket_created: &'static str,
    pub ticket_updated: &'static str,
}

/// Builds Freshdesk clients through the domain guard. Shared by the connect flow and the
/// engine, so there is one place where a Freshdesk URL can come from.
#[derive(Clone)]
pub struct FreshdeskConnector {
    pub policy: Arc<DomainPolicy>,
    pub http: reqwest::Client,
    pub observer: Option<Arc<dyn crate::freshdesk::CallObserver>>,
}

impl FreshdeskConnector {
    /// A client for `domain` authenticated with `api_key`.
    pub fn client(&self, domain: FreshdeskDomain, api_key: SecretString) -> FreshdeskClient {
        FreshdeskClient::new(self.http.clone(), domain, api_key, self.observer.clone())
    }

    /// Parse a stored or submitted domain through the guard.
    pub fn domain(&self, input: &str) -> Result<FreshdeskDomain, DomainError> {
        self.policy.parse(input)
    }
}

/// The connect flow.
#[derive(Clone)]
pub struct ConnectService {
    store: Store,
    vault: Arc<KeyVault>,
    tokens: Arc<WebhookTokens>,
    connector: FreshdeskConnector,
    public_url: String,
}

impl ConnectService {
    /// Wire the flow.
    pub fn new(
        store: Store,
        vault: Arc<KeyVault>,
        tokens: Arc<WebhookTokens>,
        connector: FreshdeskConnector,
        public_url: &str,
    ) -> Self {
        Self {
            store,
            vault,
            tokens,
            connector,
            public_url: public_url.trim_end_matches('/').to_string(),
        }
    }

    /// contract §2.1: check the domain, the key and the admin role. Stores nothing.
    pub async fn verify(&self, domain: &str, api_key: &str) -> Result<AiAgent, ConnectError> {
        let (client, host) = self.submitted_client(domain, api_key)?;
        verify_agent(&client, &host).await
    }

    /// `verify`, then what the account offers to pick from (groups, human agents, checkbox
    /// fields), read through the submitted key. Stores nothing.
    pub async fn verify_with_choices(
        &self,
        domain: &str,
        api_key: &str,
    ) -> Result<(AiAgent, AccountChoices), ConnectError> {
        let (client, host) = self.submitted_client(domain, api_key)?;
        let agent = verify_agent(&client, &host).await?;
        let choices = account_choices(&client, &host, &agent).await?;
        Ok((agent, choices))
    }

    /// What the org's connected account offers to pick from, through the stored key.
    pub async fn stored_account_choices(&self, org: OrgId) -> Result<AccountChoices, ConnectError> {
        let (record, client) = self.stored_client(org).await?;
        account_choices(&client, &record.settings.domain, &record.agent).await
    }

    /// A client for a submitted domain (through the guard) and key.
    fn submitted_client(
        &self,
        domain: &str,
        api_key: &str,
    ) -> Result<(FreshdeskClient, String), ConnectError> {
        let domain = self.connector.domain(domain)?;
        if api_key.trim().is_empty() {
            return Err(ConnectError::MissingApiKey);
        }
        let host = domain.host().to_string();
        let client = self
            .connector
            .client(domain, SecretString::from(api_key.trim().to_string()));
        Ok((client, host))
    }

    /// contract §2.2: verify again, validate every referenced object, then store atomically.
    pub async fn save(
        &self,
        org: OrgId,
        request: SaveRequest,
    ) -> Result<(ConnectionView, bool), ConnectError> {
        self.store
            .org(org)
            .await?
            .ok_or(ConnectError::OrgNotFound)?;
        let previous = self.store.connection(org).await?;
        let domain = self.connector.domain(&request.domain)?;
        validate_shape(&request)?;

        let submitted_key = request
            .api_key
            .as_ref()
            .map(|k| k.expose_secret().trim().to_string())
            .filter(|k| !k.is_empty());
        let api_key = match (&submitted_key, &previous) {
            (Some(key), _) => SecretString::from(key.clone()),
            (None, Some(prev)) if prev.settings.domain == domain.host() => {
                self.stored_key(org, prev)?
            }
            (None, Some(_)) => {
                return Err(ConnectError::InvalidSettings(
                    "api_key is required when the domain changes.".into(),
                ))
            }
            (None, None) => {
                return Err(ConnectError::InvalidSettings(
                    "api_key is required on the first save.".into(),
                ))
            }
        };

        let client = self.connector.client(domain.clone(), api_key.clone());
        let agent = verify_agent(&client, domain.host()).await?;
        let handoff = validate_references(&client, domain.host(), &request, &agent).await?;

        let now = Utc::now();
        let first_connect = previous.is_none();
        let record = ConnectionRecord {
            settings: OrgSettings {
                domain: domain.host().to_string(),
                auto_handle_all: request.auto_handle_all,
                default_group_id: request.default_group_id,
                handoff,
                channels: request.channels,
                assist_footer: request.assist_footer.filter(|f| !f.trim().is_empty()),
            },
            api_key_sealed: self.vault.encrypt(org, api_key.expose_secret()),
            agent,
            connected: true,
            first_connected_at: previous
                .as_ref()
                .map(|p| p.first_connected_at)
                .unwrap_or(now),
            saved_at: now,
        };
        self.store.put_connection(org, &record).await?;
        self.store.flush().await.map_err(StoreError::from)?;
        tracing::info!(%org, domain = %record.settings.domain, first_connect, "freshdesk connection saved");
        Ok((self.view(org, &record), first_connect))
    }

    /// The connection as shown by `GET …/freshdesk`.
    pub async fn show(&self, org: OrgId) -> Result<ConnectionView, ConnectError> {
        self.store
            .org(org)
            .await?
            .ok_or(ConnectError::OrgNotFound)?;
        let record = self
            .store
            .connection(org)
            .await?
            .ok_or(ConnectError::NotConnected)?;
        Ok(self.view(org, &record))
    }

    /// The org's stored connection (connected or not) and a client that speaks to its
    /// Freshdesk with the stored key, through the domain guard (the setup self-test).
    pub async fn stored_client(
        &self,
        org: OrgId,
    ) -> Result<(ConnectionRecord, FreshdeskClient), ConnectError> {
        self.store
            .org(org)
            .await?
            .ok_or(ConnectError::OrgNotFound)?;
        let record = self
            .store
            .connection(org)
            .await?
            .ok_or(ConnectError::NotConnected)?;
        let domain = self.connector.domain(&record.settings.domain)?;
        let key = self.stored_key(org, &record)?;
        Ok((record, self.connector.client(domain, key)))
    }

    /// The stored API key, decrypted.
    fn stored_key(
        &self,
        org: OrgId,
        record: &ConnectionRecord,
    ) -> Result<SecretString, ConnectError> {
        self.vault
            .decrypt(org, &record.api_key_sealed)
            .map_err(|e| {
                tracing::error!(%org, error = %e, "stored API key cannot be decrypted");
                ConnectError::InvalidSettings(
                    "The stored API key cannot be read; send api_key again.".into(),
                )
            })
    }

    /// contract §2.6: stop processing; keep settings and key.
    pub async fn disconnect(&self, org: OrgId) -> Result<(), ConnectError> {
        self.store
            .org(org)
            .await?
            .ok_or(ConnectError::OrgNotFound)?;
        let Some(mut record) = self.store.connection(org).await? else {
            return Err(ConnectError::NotConnected);
        };
        if record.connected {
            record.connected = false;
            self.store.put_connection(org, &record).await?;
            self.store.flush().await.map_err(StoreError::from)?;
            tracing::info!(%org, "freshdesk connection disconnected");
        }
        Ok(())
    }

    /// Where an agent opens `ticket` in the Freshdesk of `domain` (a stored domain); None
    /// when the domain no longer passes the guard.
    pub fn ticket_url(&self, domain: &str, ticket: TicketId) -> Option<String> {
        self.connector
            .domain(domain)
            .ok()
            .map(|d| d.ticket_url(ticket))
    }

    /// The org's webhook URL.
    pub fn webhook_url(&self, org: OrgId) -> String {
        format!(
            "{}/webhooks/freshdesk/{}",
            self.public_url,
            self.tokens.sign(org)
        )
    }

    fn view(&self, org: OrgId, record: &ConnectionRecord) -> ConnectionView {
        let s = &record.settings;
        let channels = ChannelsResolved::from(&s.channels);
        ConnectionView {
            connected: record.connected,
            settings: SettingsView {
                domain: s.domain.clone(),
                api_key_set: !record.api_key_sealed.is_empty(),
                auto_handle_all: s.auto_handle_all,
                default_group_id: s.default_group_id,
                handoff: s.handoff.clone(),
                channels: channels.0,
                assist_footer: s.assist_footer.clone(),
            },
            agent: record.agent.clone(),
            webhook_url: self.webhook_url(org),
            payloads: Payloads {
                ticket_created: TICKET_CREATED_PAYLOAD,
                ticket_updated: TICKET_UPDATED_PAYLOAD,
            },
            first_connected_at: record.first_connected_at,
            backfill: serde_json::json!({"state": "not_started"}),
            last_webhook_at: None,
            error: None,
        }
    }
}

struct ChannelsResolved(EffectiveChannels);

impl From<&ChannelModes> for ChannelsResolved {
    fn from(m: &ChannelModes) -> Self {
        use ticketsync_actors::org::Channel;
        Self(EffectiveChannels {
            email: m.mode_for(Channel::Email),
            web: m.mode_for(Channel::Web),
            phone: m.mode_for(Channel::Phone),
            other: m.mode_for(Channel::Other),
        })
    }
}

/// What an account offers the settings page's pickers.
#[derive(Debug, Clone, Default)]
pub struct AccountChoices {
    /// Every group (default group, handoff group).
    pub groups: Vec<Group>,
    /// Every agent but the AI agent itself (handoff agent).
    pub agents: Vec<AiAgent>,
    /// The custom checkbox ticket fields (handoff marker).
    pub checkbox_fields: Vec<TicketField>,
}

/// Pages read at most per list: 100 items each, far beyond a support team's groups and agents.
const MAX_CHOICE_PAGES: u32 = 20;

/// Read the account's groups, agents and checkbox fields (each list paged).
async fn account_choices(
    client: &dyn FreshdeskApi,
    domain: &str,
    ai: &AiAgent,
) -> Result<AccountChoices, ConnectError> {
    let fail = |e: FreshdeskError| unreachable(domain, e);
    let mut choices = AccountChoices::default();
    for page in 1..=MAX_CHOICE_PAGES {
        let listed = client.groups(page).await.map_err(fail)?.value;
        choices.groups.extend(listed.items);
        if !listed.has_next {
            break;
        }
    }
    for page in 1..=MAX_CHOICE_PAGES {
        let listed = client.agents(page).await.map_err(fail)?.value;
        choices
            .agents
            .extend(
                listed
                    .items
                    .into_iter()
                    .filter(|a| a.id != ai.id)
                    .map(|a| AiAgent {
                        id: a.id,
                        name: a.contact.name,
                        email: a.contact.email,
                    }),
            );
        if !listed.has_next {
            break;
        }
    }
    choices.checkbox_fields = client
        .ticket_fields()
        .await
        .map_err(fail)?
        .value
        .into_iter()
        .filter(|f| f.field_type == "custom_checkbox")
        .collect();
    choices.groups.sort_by_key(|g| g.name.to_lowercase());
    choices.agents.sort_by_key(|a| a.name.to_lowercase());
    Ok(choices)
}

/// `GET /agents/me` then the admin check through `GET /roles` (verify, save, and the
/// self-test's check of the stored key).
pub async fn verify_agent(
    client: &dyn FreshdeskApi,
    domain: &str,
) -> Result<AiAgent, ConnectError> {
    let me = client.me().await.map_err(|e| match e {
        FreshdeskError::Unauthorized => ConnectError::InvalidCredentials,
        other => unreachable(domain, other),
    })?;
    let roles = match client.roles().await {
        Ok(roles) => roles.value,
        Err(FreshdeskError::Forbidden { .. }) => return Err(ConnectError::NotAdmin),
        Err(FreshdeskError::Unauthorized) => return Err(ConnectError::InvalidCredentials),
        Err(other) => return Err(unreachable(domain, other)),
    };
    let admin_roles: Vec<u64> = roles
        .iter()
        .filter(|r| r.is_admin())
        .map(|r: &Role| r.id)
        .collect();
    if !me.value.role_ids.iter().any(|id| admin_roles.contains(id)) {
        return Err(ConnectError::NotAdmin);
    }
    Ok(AiAgent {
        id: me.value.id,
        name: me.value.contact.name,
        email: me.value.contact.email,
    })
}

/// A failure that leaves us unable to talk to this Freshdesk as an admin: transport errors,
/// 404s (not a Freshdesk), 5xx, 429, or a refusal (403) of a call an admin may make.
fn unreachable(domain: &str, error: FreshdeskError) -> ConnectError {
    match error {
        FreshdeskError::Forbidden { .. } => ConnectError::NotAdmin,
        FreshdeskError::Unauthorized => ConnectError::InvalidCredentials,
        other => ConnectError::Unreachable {
            domain: domain.to_string(),
            cause: other.to_string(),
        },
    }
}

/// Rules that need no Freshdesk call.
fn validate_shape(request: &SaveRequest) -> Result<(), ConnectError> {
    let h = &request.handoff;
    let invalid = |m: &str| Err(ConnectError::InvalidSettings(m.to_string()));
    let marker_missing = h
        .marker_field
        .as_deref()
        .is_none_or(|m| m.trim().is_empty());
    if h.routing != Routing::Unassign && marker_missing {
        return invalid(&format!(
            "handoff.marker_field is required with routing '{}'.",
            h.routing.as_str()
        ));
    }
    if h.routing == Routing::Agent && h.agent_id.is_none() {
        return invalid("handoff.agent_id is required with routing 'agent'.");
    }
    if h.routing == Routing::Group && h.group_id.is_none() {
        return invalid("handoff.group_id is required with routing 'group'.");
    }
    if request
        .assist_footer
        .as_ref()
        .is_some_and(|f| f.chars().count() > 2000)
    {
        return invalid("assist_footer must be at most 2000 characters.");
    }
    Ok(())
}

/// Check default group, handoff agent and group, and the marker field against Freshdesk.
/// Returns the handoff settings to store (the marker resolved to its full API name).
async fn validate_references(
    client: &dyn FreshdeskApi,
    domain: &str,
    request: &SaveRequest,
    ai: &AiAgent,
) -> Result<HandoffSettings, ConnectError> {
    let fail = |e: FreshdeskError| unreachable(domain, e);
    let mut groups: Vec<GroupId> = request.default_group_id.into_iter().collect();
    if request.handoff.routing == Routing::Group {
        groups.extend(request.handoff.group_id);
    }
    for group in groups {
        match client.group(group).await {
            Ok(_) => {}
            Err(FreshdeskError::NotFound) => return Err(ConnectError::GroupNotFound(group)),
            Err(e) => return Err(fail(e)),
        }
    }
    let mut handoff = request.handoff.clone();
    if handoff.routing != Routing::Agent {
        handoff.agent_id = None;
    }
    if handoff.routing != Routing::Group {
        handoff.group_id = None;
    }
    if let Some(agent) = handoff.agent_id {
        if agent == ai.id {
            return Err(ConnectError::InvalidSettings(
                "handoff.agent_id is the AI agent itself; hand off to a human agent.".into(),
            ));
        }
        match client.agent(agent).await {
            Ok(_) => {}
            Err(FreshdeskError::NotFound) => return Err(ConnectError::AgentNotFound(agent)),
            Err(e) => return Err(fail(e)),
        }
    }
    if let Some(marker) = handoff
        .marker_field
        .as_deref()
        .map(str::trim)
        .filter(|m| !m.is_empty())
    {
        let fields = client.ticket_fields().await.map_err(fail)?.value;
        handoff.marker_field = Some(resolve_marker(marker, &fields)?);
    } else {
        handoff.marker_field = None;
    }
    Ok(handoff)
}

/// The marker must be a `custom_checkbox`. An exact API name wins; a name given without
/// Freshdesk's numeric suffix resolves to the one checkbox that carries it.
pub fn resolve_marker(
    name: &str,
    fields: &[ticketsync_actors::freshdesk::TicketField],
) -> Result<String, ConnectError> {
    let checkboxes: Vec<&str> = fields
        .iter()
        .filter(|f| f.field_type == "custom_checkbox")
        .map(|f| f.name.as_str())
        .collect();
    if checkboxes.contains(&name) {
        return Ok(name.to_string());
    }
    let suffixed: Vec<&str> = checkboxes
        .iter()
        .copied()
        .filter(|c| {
            c.strip_prefix(name)
                .and_then(|rest| rest.strip_prefix('_'))
                .is_some_and(|digits| {
                    !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
                })
        })
        .collect();
    match suffixed.as_slice() {
        [one] => Ok(one.to_string()),
        _ if fields.iter().any(|f| f.name == name) => Err(ConnectError::MarkerFieldNotFound(
            format!("The ticket field '{name}' is not a checkbox; the handoff marker must be a custom checkbox field."),
        )),
        _ => Err(ConnectError::MarkerFieldNotFound(format!(
            "Freshdesk has no custom checkbox ticket field named '{name}'."
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ticketsync_actors::freshdesk::TicketField;

    fn field(name: &str, field_type: &str) -> TicketField {
        TicketField {
            id: 1,
            name: name.into(),
            label: name.into(),
            field_type: field_type.into(),
            choices: serde_json::Value::Null,
        }
    }

    #[test]
    fn the_marker_resolves_exactly_or_by_its_numeric_suffix() {
        let fields = [
            field("cf_opencx_handed_off_1234", "custom_checkbox"),
            field("cf_order_number", "custom_text"),
        ];
        assert_eq!(
            resolve_marker("cf_opencx_handed_off_1234", &fields).unwrap(),
            "cf_opencx_handed_off_1234"
        );
        assert_eq!(
            resolve_marker("cf_opencx_handed_off", &fields).unwrap(),
            "cf_opencx_handed_off_1234"
        );
        assert!(resolve_marker("cf_order_number", &fields).is_err());
        assert!(resolve_marker("cf_opencx", &fields).is_err());
        assert!(resolve_marker("cf_missing", &fields).is_err());
    }
}
