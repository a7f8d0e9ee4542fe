//! Settings → Integrations → Freshdesk (`/orgs/{id}/settings/freshdesk`): one page in the order
//! an admin works — account and Verify, intake, handoff routing, channels, Save, then the
//! webhook URL and rules, the live status, the self-test and Disconnect.
//!
//! Every decision is `crate::connect`'s: the page calls `ConnectService::verify_with_choices` /
//! `stored_account_choices` and the `AppState` steps the JSON handlers call (`save_connection`,
//! `connection`, `disconnect`), and `SelfTests`. The form becomes a `connect::SaveRequest` in
//! one place (`SettingsForm::save_request`), through the same deserialiser as the JSON body.

use super::layout::Layout;
use super::session::{ConsoleUser, CsrfForm};
use super::{api_name, display_time, render, see_other, visible_org, PageError};
use crate::connect::{AccountChoices, ConnectionView, SaveRequest};
use crate::http::error::{ApiError, Code};
use crate::http::state::AppState;
use crate::selftest::{SelfTestReport, StepOutcome};
use actix_web::http::StatusCode;
use actix_web::{get, post, web, HttpRequest, HttpResponse};
use askama::Template;
use serde::Deserialize;
use serde_json::{json, Value};
use ticketsync_actors::org::{AiAgent, Org};
use ticketsync_actors::OrgId;

/// The settings form as posted (every field a string, as browsers send them).
#[derive(Debug, Default, Deserialize)]
struct SettingsForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    domain: String,
    #[serde(default)]
    api_key: String,
    /// Present ("on") when the checkbox is ticked.
    #[serde(default)]
    auto_handle_all: Option<String>,
    #[serde(default)]
    default_group_id: String,
    #[serde(default)]
    routing: String,
    #[serde(default)]
    agent_id: String,
    #[serde(default)]
    group_id: String,
    #[serde(default)]
    marker_field: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    web: String,
    #[serde(default)]
    phone: String,
    /// Empty: follows web.
    #[serde(default)]
    other: String,
    #[serde(default)]
    assist_footer: String,
}

impl SettingsForm {
    /// The form as the JSON API's `PUT …/freshdesk` body, read by the same deserialiser.
    /// Blank fields are absent (a blank key keeps the stored one; see `connect::save`).
    fn save_request(&self) -> Result<SaveRequest, ApiError> {
        let invalid = |m: String| ApiError::new(Code::InvalidSettings, m);
        let id = |label: &str, text: &str| -> Result<Value, ApiError> {
            match text.trim() {
                "" => Ok(Value::Null),
                t => t
                    .parse::<u64>()
                    .map(Value::from)
                    .map_err(|_| invalid(format!("{label} must be picked from the list."))),
            }
        };
        let text = |t: &str| match t.trim() {
            "" => Value::Null,
            t => Value::from(t),
        };
        let body = json!({
            "domain": self.domain.trim(),
            "api_key": text(&self.api_key),
            "auto_handle_all": self.auto_handle_all.is_some(),
            "default_group_id": id("The default group", &self.default_group_id)?,
            "handoff": {
                "routing": self.routing.trim(),
                "agent_id": id("The handoff agent", &self.agent_id)?,
                "group_id": id("The handoff group", &self.group_id)?,
                "marker_field": text(&self.marker_field),
            },
            "channels": {
                "email": self.email.trim(),
                "web": self.web.trim(),
                "phone": self.phone.trim(),
                "other": text(&self.other),
            },
            "assist_footer": text(&self.assist_footer),
        });
        serde_json::from_value(body).map_err(|e| invalid(format!("Invalid settings: {e}.")))
    }
}

/// The values the form shows (never the key).
struct Values {
    domain: String,
    api_key_set: bool,
    auto_handle_all: bool,
    default_group_id: String,
    routing: String,
    agent_id: String,
    group_id: String,
    marker_field: String,
    email: String,
    web: String,
    phone: String,
    other: String,
    assist_footer: String,
}

impl Default for Values {
    fn default() -> Self {
        Self {
            domain: String::new(),
            api_key_set: false,
            auto_handle_all: true,
            default_group_id: String::new(),
            routing: "unassign".into(),
            agent_id: String::new(),
            group_id: String::new(),
            marker_field: String::new(),
            email: "autopilot".into(),
            web: "autopilot".into(),
            phone: "autopilot".into(),
            other: String::new(),
            assist_footer: String::new(),
        }
    }
}

fn id_text<T: ToString>(id: Option<T>) -> String {
    id.map(|i| i.to_string()).unwrap_or_default()
}

impl Values {
    fn stored(view: &ConnectionView) -> Self {
        let s = &view.settings;
        Self {
            domain: s.domain.clone(),
            api_key_set: s.api_key_set,
            auto_handle_all: s.auto_handle_all,
            default_group_id: id_text(s.default_group_id),
            routing: s.handoff.routing.as_str().to_string(),
            agent_id: id_text(s.handoff.agent_id),
            group_id: id_text(s.handoff.group_id),
            marker_field: s.handoff.marker_field.clone().unwrap_or_default(),
            email: api_name(s.channels.email),
            web: api_name(s.channels.web),
            phone: api_name(s.channels.phone),
            other: api_name(s.channels.other),
            assist_footer: s.assist_footer.clone().unwrap_or_default(),
        }
    }

    fn submitted(form: &SettingsForm, api_key_set: bool) -> Self {
        Self {
            domain: form.domain.trim().to_string(),
            api_key_set,
            auto_handle_all: form.auto_handle_all.is_some(),
            default_group_id: form.default_group_id.trim().to_string(),
            routing: form.routing.trim().to_string(),
            agent_id: form.agent_id.trim().to_string(),
            group_id: form.group_id.trim().to_string(),
            marker_field: form.marker_field.trim().to_string(),
            email: form.email.trim().to_string(),
            web: form.web.trim().to_string(),
            phone: form.phone.trim().to_string(),
            other: form.other.trim().to_string(),
            assist_footer: form.assist_footer.clone(),
        }
    }
}

/// One `<option>` of a picker.
struct Choice {
    value: String,
    label: String,
    selected: bool,
}

/// The pickers' options, with the current value kept (and marked) when the account no
/// longer offers it.
struct Pickers {
    groups_default: Vec<Choice>,
    groups_handoff: Vec<Choice>,
    agents: Vec<Choice>,
    markers: Vec<Choice>,
}

fn choices(
    items: impl Iterator<Item = (String, String)>,
    current: &str,
    blank: &str,
) -> Vec<Choice> {
    let mut list = vec![Choice {
        value: String::new(),
        label: blank.to_string(),
        selected: current.is_empty(),
    }];
    let mut found = current.is_empty();
    for (value, label) in items {
        let selected = value == current;
        found |= selected;
        list.push(Choice {
            value,
            label,
            selected,
        });
    }
    if !found {
        list.push(Choice {
            value: current.to_string(),
            label: format!("{current} (not offered by the account now)"),
            selected: true,
        });
    }
    list
}

impl Pickers {
    fn new(account: &AccountChoices, v: &Values) -> Self {
        let groups = || {
            account
                .groups
                .iter()
                .map(|g| (g.id.to_string(), g.name.clone()))
        };
        Self {
            groups_default: choices(groups(), &v.default_group_id, "No default group"),
            groups_handoff: choices(groups(), &v.group_id, "Pick a group"),
            agents: choices(
                account.agents.iter().map(|a| {
                    let label = match &a.email {
                        Some(email) => format!("{} ({email})", a.name),
                        None => a.name.clone(),
                    };
                    (a.id.to_string(), label)
                }),
                &v.agent_id,
                "Pick an agent",
            ),
            markers: choices(
                account
                    .checkbox_fields
                    .iter()
                    .map(|f| (f.name.clone(), format!("{} ({})", f.label, f.name))),
                &v.marker_field,
                "No marker field",
            ),
        }
    }
}

/// Where on the page an error belongs.
#[derive(Default)]
struct SectionErrors {
    account: Option<String>,
    intake: Option<String>,
    handoff: Option<String>,
    channels: Option<String>,
}

impl SectionErrors {
    /// Put a refused save's message next to what it is about.
    fn place(error: &ApiError, form: &SettingsForm) -> Self {
        let message = Some(error.message.clone());
        let about = |field: &str| error.message.contains(field);
        let default_group = form.default_group_id.trim();
        let intake = error.code == Code::GroupNotFound
            && !default_group.is_empty()
            && error.message.contains(&format!(" {default_group}."));
        match error.code {
            Code::InvalidDomain | Code::InvalidCredentials | Code::NotAdmin => Self {
                account: message,
                ..Self::default()
            },
            _ if intake || about("default group") => Self {
                intake: message,
                ..Self::default()
            },
            Code::GroupNotFound | Code::AgentNotFound | Code::MarkerFieldNotFound => Self {
                handoff: message,
                ..Self::default()
            },
            _ if about("handoff") => Self {
                handoff: message,
                ..Self::default()
            },
            _ if about("channels") || about("assist_footer") => Self {
                channels: message,
                ..Self::default()
            },
            _ => Self {
                account: message,
                ..Self::default()
            },
        }
    }
}

/// The Status section (also served alone for htmx polling).
struct StatusView {
    org_id: String,
    backfill_state: String,
    backfill_tickets: u64,
    backfill_pages: u32,
    backfill_error: String,
    last_webhook: String,
    rate_budget: String,
    pause: Option<String>,
    /// Poll again while the backfill has work left.
    live: bool,
}

async fn status_view(state: &AppState, org: OrgId) -> Result<StatusView, PageError> {
    let backfill = state.engine.backfill(org).await;
    let budget = state.engine.budget(org);
    let backfill_state = backfill
        .as_ref()
        .map(|b| api_name(b.state))
        .unwrap_or_else(|| "not started".into());
    let rate_budget = format!(
        "{} of {} calls a minute used, {} left{}",
        budget.used,
        budget.limit_per_min,
        budget.remaining,
        budget
            .paused_until
            .map(|t| format!(" (paused until {})", display_time(t)))
            .unwrap_or_default()
    );
    Ok(StatusView {
        org_id: org.to_string(),
        live: matches!(backfill_state.as_str(), "pending" | "running"),
        backfill_tickets: backfill.as_ref().map_or(0, |b| b.tickets_queued),
        backfill_pages: backfill.as_ref().map_or(0, |b| b.pages_fetched),
        backfill_error: backfill
            .and_then(|b| b.last_error)
            .unwrap_or_else(|| "none".into()),
        backfill_state,
        last_webhook: state
            .store
            .last_webhook_at(org)
            .await
            .map_err(PageError::store)?
            .map(display_time)
            .unwrap_or_else(|| "never".into()),
        rate_budget,
        pause: state.engine.org_pause(org).map(|p| p.message),
    })
}

/// The self-test section (also served alone for htmx polling while a run goes on).
struct SelfTestView {
    org_id: String,
    report: Option<ReportView>,
    error: Option<String>,
}

struct ReportView {
    /// "running", "passed" or "failed".
    state: String,
    started: String,
    steps: Vec<(String, String)>,
}

impl ReportView {
    fn new(report: &SelfTestReport) -> Self {
        Self {
            state: api_name(report.state),
            started: display_time(report.started_at),
            steps: report
                .steps
                .iter()
                .map(|s| {
                    let outcome = match s.outcome {
                        StepOutcome::Ok => "ok",
                        StepOutcome::Failed => "failed",
                        StepOutcome::Pending => "pending",
                        StepOutcome::Skipped => "skipped",
                    };
                    (outcome.to_string(), s.detail.clone())
                })
                .collect(),
        }
    }
}

impl SelfTestView {
    fn running(&self) -> bool {
        self.report.as_ref().is_some_and(|r| r.state == "running")
    }
}

async fn self_test_view(
    state: &AppState,
    org: OrgId,
    error: Option<String>,
) -> Result<SelfTestView, PageError> {
    let report = state.self_tests.last(org).await.map_err(PageError::store)?;
    Ok(SelfTestView {
        org_id: org.to_string(),
        report: report.as_ref().map(ReportView::new),
        error,
    })
}

/// What the page knows after save: the connection as the API shows it.
struct Connected {
    connected: bool,
    agent: AiAgent,
    webhook_url: String,
    payload_created: String,
    payload_updated: String,
}

#[derive(Template)]
#[template(path = "console/settings.html")]
struct SettingsPage {
    layout: Layout,
    csrf: String,
    org_id: String,
    values: Values,
    /// "Connected as …" after a successful Verify.
    verified: Option<AiAgent>,
    pickers: Option<Pickers>,
    /// Why the pickers could not be read (shown in the account section).
    pickers_error: Option<String>,
    errors: SectionErrors,
    saved: bool,
    connection: Option<Connected>,
    status: StatusView,
    test: SelfTestView,
}

#[derive(Template)]
#[template(path = "console/settings_status.html")]
struct StatusFragment {
    status: StatusView,
}

#[derive(Template)]
#[template(path = "console/settings_self_test.html")]
struct SelfTestFragment {
    csrf: String,
    test: SelfTestView,
}

#[derive(Template)]
#[template(path = "console/disconnect.html")]
struct DisconnectPage {
    layout: Layout,
    csrf: String,
    org_id: String,
    org_name: String,
}

/// What a page render needs beyond the org: the form's state after a post.
#[derive(Default)]
struct Outcome {
    values: Option<Values>,
    verified: Option<AiAgent>,
    account: Option<Result<AccountChoices, String>>,
    errors: SectionErrors,
    saved: bool,
    test_error: Option<String>,
}

/// The org's connection, or None when it was never connected.
async fn connection(state: &AppState, org: OrgId) -> Result<Option<ConnectionView>, PageError> {
    match state.connection(org).await {
        Ok(view) => Ok(Some(view)),
        Err(e) if e.code == Code::NotConnected => Ok(None),
        Err(_) => Err(PageError::Internal),
    }
}

async fn settings_page(
    state: &AppState,
    user: &ConsoleUser,
    org: &Org,
    outcome: Outcome,
) -> Result<SettingsPage, PageError> {
    let view = connection(state, org.id).await?;
    let values = outcome
        .values
        .unwrap_or_else(|| view.as_ref().map(Values::stored).unwrap_or_default());
    // The lists come from the verified key when the admin just verified one, else from the
    // stored connection.
    let account = match (outcome.account, &view) {
        (Some(listed), _) => Some(listed),
        (None, Some(_)) => Some(
            state
                .connect
                .stored_account_choices(org.id)
                .await
                .map_err(|e| e.to_string()),
        ),
        (None, None) => None,
    };
    let (pickers, pickers_error) = match account {
        Some(Ok(account)) => (Some(Pickers::new(&account, &values)), None),
        Some(Err(message)) => (None, Some(message)),
        None => (None, None),
    };
    Ok(SettingsPage {
        layout: Layout::signed_in(user, "Freshdesk settings", "settings", Some(org)),
        csrf: user.csrf.clone(),
        org_id: org.id.to_string(),
        values,
        verified: outcome.verified,
        pickers,
        pickers_error,
        errors: outcome.errors,
        saved: outcome.saved,
        connection: view.map(|v| Connected {
            connected: v.connected,
            agent: v.agent,
            webhook_url: v.webhook_url,
            payload_created: v.payloads.ticket_created.to_string(),
            payload_updated: v.payloads.ticket_updated.to_string(),
        }),
        status: status_view(state, org.id).await?,
        test: self_test_view(state, org.id, outcome.test_error).await?,
    })
}

#[derive(Deserialize)]
struct ShowQuery {
    #[serde(default)]
    saved: Option<String>,
}

#[get("/orgs/{org_id}/settings/freshdesk")]
async fn show(
    state: web::Data<AppState>,
    user: ConsoleUser,
    org_id: web::Path<String>,
    query: web::Query<ShowQuery>,
) -> Result<HttpResponse, PageError> {
    let org = visible_org(&state, &user, &org_id).await?;
    let outcome = Outcome {
        saved: query.saved.is_some(),
        ..Outcome::default()
    };
    render(
        StatusCode::OK,
        &settings_page(&state, &user, &org, outcome).await?,
    )
}

/// Verify: check the typed domain and key and list the account's choices; store nothing.
/// The page comes back with the other fields as they were typed and the key field empty
/// (htmx swaps only the account-dependent part, so there the typed key stays).
#[post("/orgs/{org_id}/settings/freshdesk/verify")]
async fn verify(
    state: web::Data<AppState>,
    user: ConsoleUser,
    org_id: web::Path<String>,
    form: web::Form<SettingsForm>,
) -> Result<HttpResponse, PageError> {
    user.check_csrf(&form.csrf)?;
    let org = visible_org(&state, &user, &org_id).await?;
    let stored_key = connection(&state, org.id)
        .await?
        .is_some_and(|v| v.settings.api_key_set);
    let mut outcome = Outcome {
        values: Some(Values::submitted(&form, stored_key)),
        ..Outcome::default()
    };
    match state
        .connect
        .verify_with_choices(&form.domain, &form.api_key)
        .await
    {
        Ok((agent, account)) => {
            outcome.verified = Some(agent);
            outcome.account = Some(Ok(account));
        }
        Err(crate::connect::ConnectError::Store(e)) => return Err(PageError::store(e)),
        Err(e) => outcome.errors.account = Some(e.to_string()),
    }
    render(
        StatusCode::OK,
        &settings_page(&state, &user, &org, outcome).await?,
    )
}

/// Save: through the same steps as `PUT /api/v1/orgs/{id}/freshdesk`; a refusal is shown next
/// to what it is about (422) and nothing is stored.
#[post("/orgs/{org_id}/settings/freshdesk")]
async fn save(
    state: web::Data<AppState>,
    user: ConsoleUser,
    org_id: web::Path<String>,
    form: web::Form<SettingsForm>,
) -> Result<HttpResponse, PageError> {
    user.check_csrf(&form.csrf)?;
    let org = visible_org(&state, &user, &org_id).await?;
    let saved = match form.save_request() {
        Ok(request) => state.save_connection(org.id, request).await,
        Err(e) => Err(e),
    };
    match saved {
        Ok(_) => Ok(see_other(&format!(
            "/orgs/{}/settings/freshdesk?saved=1#webhook",
            org.id
        ))),
        Err(e) if e.status.is_client_error() || e.code == Code::FreshdeskUnreachable => {
            let stored_key = connection(&state, org.id)
                .await?
                .is_some_and(|v| v.settings.api_key_set);
            let outcome = Outcome {
                values: Some(Values::submitted(&form, stored_key)),
                errors: SectionErrors::place(&e, &form),
                ..Outcome::default()
            };
            render(
                StatusCode::UNPROCESSABLE_ENTITY,
                &settings_page(&state, &user, &org, outcome).await?,
            )
        }
        Err(_) => Err(PageError::Internal),
    }
}

/// The Status section alone (htmx polls it every 2 s while a backfill runs).
#[get("/orgs/{org_id}/settings/freshdesk/status")]
async fn status(
    state: web::Data<AppState>,
    user: ConsoleUser,
    org_id: web::Path<String>,
) -> Result<HttpResponse, PageError> {
    let org = visible_org(&state, &user, &org_id).await?;
    let status = status_view(&state, org.id).await?;
    render(StatusCode::OK, &StatusFragment { status })
}

/// Start the setup self-test; the page then shows the running report.
#[post("/orgs/{org_id}/settings/freshdesk/self-test")]
async fn start_self_test(
    state: web::Data<AppState>,
    user: ConsoleUser,
    org_id: web::Path<String>,
    form: web::Form<CsrfForm>,
    req: HttpRequest,
) -> Result<HttpResponse, PageError> {
    user.check_csrf(&form.csrf)?;
    let org = visible_org(&state, &user, &org_id).await?;
    let error = match state.self_tests.start(org.id).await {
        Ok(_) => None,
        Err(crate::selftest::SelfTestError::Store(e)) => return Err(PageError::store(e)),
        Err(e) => Some(e.to_string()),
    };
    if req.headers().contains_key("hx-request") {
        let test = self_test_view(&state, org.id, error).await?;
        return render(
            StatusCode::OK,
            &SelfTestFragment {
                csrf: user.csrf.clone(),
                test,
            },
        );
    }
    if error.is_none() {
        return Ok(see_other(&format!(
            "/orgs/{}/settings/freshdesk#test",
            org.id
        )));
    }
    let outcome = Outcome {
        test_error: error,
        ..Outcome::default()
    };
    render(
        StatusCode::CONFLICT,
        &settings_page(&state, &user, &org, outcome).await?,
    )
}

/// The self-test section alone (htmx polls it while a run goes on).
#[get("/orgs/{org_id}/settings/freshdesk/self-test")]
async fn self_test(
    state: web::Data<AppState>,
    user: ConsoleUser,
    org_id: web::Path<String>,
) -> Result<HttpResponse, PageError> {
    let org = visible_org(&state, &user, &org_id).await?;
    let test = self_test_view(&state, org.id, None).await?;
    render(
        StatusCode::OK,
        &SelfTestFragment {
            csrf: user.csrf.clone(),
            test,
        },
    )
}

#[get("/orgs/{org_id}/settings/freshdesk/disconnect")]
async fn confirm_disconnect(
    state: web::Data<AppState>,
    user: ConsoleUser,
    org_id: web::Path<String>,
) -> Result<HttpResponse, PageError> {
    let org = visible_org(&state, &user, &org_id).await?;
    let page = DisconnectPage {
        layout: Layout::signed_in(&user, "Disconnect Freshdesk", "settings", Some(&org)),
        csrf: user.csrf.clone(),
        org_id: org.id.to_string(),
        org_name: org.name.clone(),
    };
    render(StatusCode::OK, &page)
}

#[post("/orgs/{org_id}/settings/freshdesk/disconnect")]
async fn disconnect(
    state: web::Data<AppState>,
    user: ConsoleUser,
    org_id: web::Path<String>,
    form: web::Form<CsrfForm>,
) -> Result<HttpResponse, PageError> {
    user.check_csrf(&form.csrf)?;
    let org = visible_org(&state, &user, &org_id).await?;
    match state.disconnect(org.id).await {
        Ok(()) => Ok(see_other(&format!("/orgs/{}/settings/freshdesk", org.id))),
        Err(e) if e.code == Code::NotConnected => Err(PageError::NotFound),
        Err(_) => Err(PageError::Internal),
    }
}

/// Register the settings pages.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(show)
        .service(verify)
        .service(save)
        .service(status)
        .service(start_self_test)
        .service(self_test)
        .service(confirm_disconnect)
        .service(disconnect);
}

#[cfg(test)]
mod tests {
    use super::*;
    use ticketsync_actors::org::{ChannelMode, Routing};

    fn form(changes: &[(&str, &str)]) -> SettingsForm {
        let mut fields: std::collections::BTreeMap<&str, &str> = [
            ("domain", " acme.freshdesk.com "),
            ("routing", "unassign"),
            ("email", "autopilot"),
            ("web", "autopilot"),
            ("phone", "autopilot"),
        ]
        .into();
        fields.extend(changes.iter().copied());
        serde_json::from_value(serde_json::to_value(fields).unwrap()).unwrap()
    }

    #[test]
    fn blank_fields_are_absent_from_the_save_request() {
        let request = form(&[]).save_request().unwrap();
        assert_eq!(request.domain, "acme.freshdesk.com");
        assert!(
            request.api_key.is_none(),
            "a blank key keeps the stored one"
        );
        assert!(!request.auto_handle_all, "an unticked checkbox is not sent");
        assert_eq!(request.default_group_id, None);
        assert_eq!(request.handoff.routing, Routing::Unassign);
        assert_eq!(request.handoff.marker_field, None);
        assert_eq!(request.channels.other, None, "other follows web");
        assert_eq!(request.assist_footer, None);
    }

    #[test]
    fn picked_values_become_the_typed_settings() {
        let request = form(&[
            ("api_key", "key"),
            ("auto_handle_all", "on"),
            ("default_group_id", "7"),
            ("routing", "group"),
            ("group_id", "8"),
            ("marker_field", "cf_opencx_handed_off"),
            ("phone", "off"),
            ("other", "assist"),
        ])
        .save_request()
        .unwrap();
        assert!(request.auto_handle_all);
        assert_eq!(request.default_group_id.map(|g| g.0), Some(7));
        assert_eq!(request.handoff.group_id.map(|g| g.0), Some(8));
        assert_eq!(request.channels.phone, ChannelMode::Off);
        assert_eq!(request.channels.other, Some(ChannelMode::Assist));
    }

    #[test]
    fn values_no_list_offers_are_refused_as_invalid_settings() {
        for changes in [
            [("routing", "sideways")],
            [("email", "loud")],
            [("agent_id", "alice")],
        ] {
            let error = form(&changes).save_request().unwrap_err();
            assert_eq!(error.code, Code::InvalidSettings, "{changes:?}");
        }
    }

    #[test]
    fn a_refusal_is_placed_next_to_what_it_is_about() {
        let placed = |code: Code, message: &str, default_group: &str| {
            let form = form(&[("default_group_id", default_group)]);
            let e = SectionErrors::place(&ApiError::new(code, message), &form);
            [e.account, e.intake, e.handoff, e.channels].map(|m| m.is_some())
        };
        let no_group = "Freshdesk has no group with id 7.";
        assert_eq!(placed(Code::NotAdmin, "x", ""), [true, false, false, false]);
        assert_eq!(
            placed(Code::GroupNotFound, no_group, "7"),
            [false, true, false, false]
        );
        assert_eq!(
            placed(Code::GroupNotFound, no_group, ""),
            [false, false, true, false]
        );
        let marker = "handoff.marker_field is required with routing 'agent'.";
        assert_eq!(
            placed(Code::InvalidSettings, marker, ""),
            [false, false, true, false]
        );
        let footer = "assist_footer must be at most 2000 characters.";
        assert_eq!(
            placed(Code::InvalidSettings, footer, ""),
            [false, false, false, true]
        );
    }
}
