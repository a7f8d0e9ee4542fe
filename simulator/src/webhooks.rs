//! Freshdesk's automation rules, played as webhooks.
//!
//! Owns the two rules (ticket created / ticket updated, their URL and templates), the delivery
//! knobs (drop, duplicate, delay, reorder, retry) and the delivery log. Ticket operations call
//! [`Webhooks::fire`] under the state lock; it renders the payload, decides drops and
//! duplicates with its seeded RNG, records each delivery and hands a [`Job`] to the dispatcher
//! through an unbounded channel (so the API call that caused it never waits). The dispatcher
//! runs on the simulator's own actix system and sends every job from its own task, so
//! deliveries are concurrent and, like Freshdesk's, not ordered.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::Value;
use tokio::sync::{mpsc, Semaphore};

use crate::state::Sim;
use crate::types::{DeliveryKnobs, DeliveryRecord, WebhookConfig};

/// Rule 1's default payload (contract §2).
pub const DEFAULT_CREATED_TEMPLATE: &str =
    r#"{ "ticketId": "{{ticket.id}}", "triggered_event": "ticket_created" }"#;
/// Rule 2's default payload (contract §2).
pub const DEFAULT_UPDATED_TEMPLATE: &str =
    r#"{ "ticketId": "{{ticket.id}}", "triggered_event": "{{Triggered event}}" }"#;

const DEFAULT_SEED: u64 = 0x005E_ED0F_B00C;
/// Per-attempt timeout of a delivery.
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(10);
/// Deliveries in flight at once (bounds sockets under load).
const MAX_IN_FLIGHT: usize = 256;

/// Why a rule fires.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Trigger {
    /// Rule 1: the ticket was created.
    Created,
    /// Rule 2 with this `{{Triggered event}}`, e.g. `{status:{from:2,to:4}}`.
    Updated(String),
}

impl Trigger {
    /// `{field:{from:X,to:Y}}`, with `null` for a missing value.
    pub fn changed(field: &str, from: Option<impl ToString>, to: Option<impl ToString>) -> Self {
        let text = |v: Option<String>| v.unwrap_or_else(|| "null".to_string());
        Trigger::Updated(format!(
            "{{{field}:{{from:{},to:{}}}}}",
            text(from.map(|v| v.to_string())),
            text(to.map(|v| v.to_string()))
        ))
    }
}

/// Who made the change that fires a rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Origin {
    /// Through `/api/v2`: fires only when `fire_on_api_changes` is set.
    Api,
    /// Through the control API (a person in the Freshdesk UI, an email arriving).
    Ui,
    /// Through the control API with `webhook: false`: fires nothing.
    Silent,
}

/// A delivery handed to the dispatcher.
#[derive(Debug)]
pub(crate) struct Job {
    seq: u64,
    url: String,
    payload: String,
    hold_ms: u64,
    retry_delays_ms: Vec<u64>,
}

#[derive(Debug, Clone)]
struct Rules {
    url: Option<String>,
    created_template: String,
    updated_template: String,
    fire_on_api_changes: bool,
    /// Rule 1 is active.
    created_enabled: bool,
    /// Rule 2 is active.
    updated_enabled: bool,
}

#[derive(Debug, Clone)]
struct Knobs {
    duplicate_rate: f64,
    drop_rate: f64,
    reorder_window_ms: u64,
    delay_ms: u64,
    retry_delays_ms: Vec<u64>,
    seed: u64,
}

/// Rules, knobs and the delivery log.
#[derive(Debug)]
pub(crate) struct Webhooks {
    rules: Rules,
    knobs: Knobs,
    rng: StdRng,
    records: Vec<DeliveryRecord>,
    next_seq: u64,
    outbox: mpsc::UnboundedSender<Job>,
}

impl Webhooks {
    pub fn new(outbox: mpsc::UnboundedSender<Job>) -> Self {
        Webhooks {
            rules: Rules {
                url: None,
                created_template: DEFAULT_CREATED_TEMPLATE.to_string(),
                updated_template: DEFAULT_UPDATED_TEMPLATE.to_string(),
                fire_on_api_changes: true,
                created_enabled: true,
                updated_enabled: true,
            },
            knobs: Knobs {
                duplicate_rate: 0.0,
                drop_rate: 0.0,
                reorder_window_ms: 0,
                delay_ms: 0,
                retry_delays_ms: Vec::new(),
                seed: DEFAULT_SEED,
            },
            rng: StdRng::seed_from_u64(DEFAULT_SEED),
            records: Vec::new(),
            next_seq: 1,
            outbox,
        }
    }

    /// Replaces the rules.
    pub fn configure(&mut self, config: &WebhookConfig) {
        self.rules = Rules {
            url: config.url.clone(),
            created_template: config
                .created_template
                .clone()
                .unwrap_or_else(|| DEFAULT_CREATED_TEMPLATE.to_string()),
            updated_template: config
                .updated_template
                .clone()
                .unwrap_or_else(|| DEFAULT_UPDATED_TEMPLATE.to_string()),
            fire_on_api_changes: config.fire_on_api_changes.unwrap_or(true),
            created_enabled: config.created_enabled.unwrap_or(true),
            updated_enabled: config.updated_enabled.unwrap_or(true),
        };
    }

    pub fn config(&self) -> WebhookConfig {
        WebhookConfig {
            url: self.rules.url.clone(),
            created_template: Some(self.rules.created_template.clone()),
            updated_template: Some(self.rules.updated_template.clone()),
            fire_on_api_changes: Some(self.rules.fire_on_api_changes),
            created_enabled: Some(self.rules.created_enabled),
            updated_enabled: Some(self.rules.updated_enabled),
        }
    }

    /// Applies the knobs present in `update`.
    pub fn tune(&mut self, update: &DeliveryKnobs) -> Result<(), String> {
        for (name, rate) in [
            ("duplicate_rate", update.duplicate_rate),
            ("drop_rate", update.drop_rate),
        ] {
            if rate.is_some_and(|r| !(0.0..=1.0).contains(&r)) {
                return Err(format!("{name} must be between 0 and 1"));
            }
        }
        let k = &mut self.knobs;
        if let Some(v) = update.duplicate_rate {
            k.duplicate_rate = v;
        }
        if let Some(v) = update.drop_rate {
            k.drop_rate = v;
        }
        if let Some(v) = update.reorder_window_ms {
            k.reorder_window_ms = v;
        }
        if let Some(v) = update.delay_ms {
            k.delay_ms = v;
        }
        if let Some(v) = &update.retry_delays_ms {
            k.retry_delays_ms = v.clone();
        }
        if let Some(seed) = update.seed {
            k.seed = seed;
            self.rng = StdRng::seed_from_u64(seed);
        }
        Ok(())
    }

    pub fn knobs(&self) -> DeliveryKnobs {
        let k = &self.knobs;
        DeliveryKnobs {
            duplicate_rate: Some(k.duplicate_rate),
            drop_rate: Some(k.drop_rate),
            reorder_window_ms: Some(k.reorder_window_ms),
            delay_ms: Some(k.delay_ms),
            retry_delays_ms: Some(k.retry_delays_ms.clone()),
            seed: Some(k.seed),
        }
    }

    /// Runs the rule matching `trigger` for `ticket_id`, if that rule is active and applies
    /// to `origin`.
    pub fn fire(&mut self, ticket_id: u64, trigger: &Trigger, origin: Origin) {
        let active = match trigger {
            Trigger::Created => self.rules.created_enabled,
            Trigger::Updated(_) => self.rules.updated_enabled,
        };
        let applies = active
            && match origin {
                Origin::Api => self.rules.fire_on_api_changes,
                Origin::Ui => true,
                Origin::Silent => false,
            };
        let Some(url) = self.rules.url.clone().filter(|_| applies) else {
            return;
        };
        let (template, event) = match trigger {
            Trigger::Created => (&self.rules.created_template, "{ticket_action:created}"),
            Trigger::Updated(event) => (&self.rules.updated_template, event.as_str()),
        };
        let payload = render(template, ticket_id, event);
        let parsed = serde_json::from_str::<Value>(&payload)
            .unwrap_or_else(|_| Value::String(payload.clone()));

        if self.knobs.drop_rate > 0.0 && self.rng.gen_bool(self.knobs.drop_rate) {
            self.record(ticket_id, &url, parsed, true, false);
            return;
        }
        let copies =
            if self.knobs.duplicate_rate > 0.0 && self.rng.gen_bool(self.knobs.duplicate_rate) {
                2
            } else {
                1
            };
        for copy in 0..copies {
            let seq = self.record(ticket_id, &url, parsed.clone(), false, copy == 1);
            let jitter = match self.knobs.reorder_window_ms {
                0 => 0,
                window => self.rng.gen_range(0..=window),
            };
            // The receiver lives as long as the simulator's system; a send error only happens
            // while the simulator shuts down, when nothing is delivered anyway.
            let _ = self.outbox.send(Job {
                seq,
                url: url.clone(),
                payload: payload.clone(),
                hold_ms: self.knobs.delay_ms + jitter,
                retry_delays_ms: self.knobs.retry_delays_ms.clone(),
            });
        }
    }

    fn record(
        &mut self,
        ticket_id: u64,
        url: &str,
        payload: Value,
        dropped: bool,
        duplicate: bool,
    ) -> u64 {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.records.push(DeliveryRecord {
            seq,
            ticket_id,
            url: url.to_string(),
            payload,
            status: None,
            attempts: 0,
            dropped,
            duplicate,
            error: None,
            at: Utc::now(),
            delivered_at: None,
        });
        seq
    }

    /// Notes the outcome of one attempt of delivery `seq`.
    fn attempted(&mut self, seq: u64, status: Option<u16>, error: Option<String>) {
        if let Ok(i) = self.records.binary_search_by_key(&seq, |r| r.seq) {
            let record = &mut self.records[i];
            record.attempts += 1;
            record.status = status;
            record.error = error;
            record.delivered_at = Some(Utc::now());
        }
    }

    pub fn deliveries(&self) -> Vec<DeliveryRecord> {
        self.records.clone()
    }

    pub fn clear_deliveries(&mut self) {
        self.records.clear();
    }
}

/// Textual substitution of Freshdesk's placeholders.
fn render(template: &str, ticket_id: u64, event: &str) -> String {
    template
        .replace("{{ticket.id}}", &ticket_id.to_string())
        .replace("{{Triggered event}}", event)
}

/// Sends jobs until the simulator stops. Runs on the simulator's actix system.
pub(crate) async fn dispatch(mut jobs: mpsc::UnboundedReceiver<Job>, sim: Arc<Sim>) {
    let client = match reqwest::Client::builder().timeout(DELIVERY_TIMEOUT).build() {
        Ok(client) => client,
        Err(err) => {
            tracing::error!(error = %err, "webhook client could not be built; deliveries disabled");
            return;
        }
    };
    let permits = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
    while let Some(job) = jobs.recv().await {
        actix_rt::spawn(deliver(job, client.clone(), sim.clone(), permits.clone()));
    }
}

async fn deliver(job: Job, client: reqwest::Client, sim: Arc<Sim>, permits: Arc<Semaphore>) {
    if job.hold_ms > 0 {
        tokio::time::sleep(Duration::from_millis(job.hold_ms)).await;
    }
    let mut retries = job.retry_delays_ms.iter();
    loop {
        let outcome = {
            let Ok(_permit) = permits.acquire().await else {
                return;
            };
            client
                .post(&job.url)
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(job.payload.clone())
                .send()
                .await
        };
        let (status, error) = match outcome {
            Ok(response) => (Some(response.status().as_u16()), None),
            Err(err) => (None, Some(err.to_string())),
        };
        let delivered = status.is_some_and(|s| (200..300).contains(&s));
        if !delivered {
            tracing::debug!(seq = job.seq, ?status, ?error, "webhook delivery failed");
        }
        sim.state.lock().webhooks.attempted(job.seq, status, error);
        if delivered {
            return;
        }
        match retries.next() {
            Some(&delay) => tokio::time::sleep(Duration::from_millis(delay)).await,
            None => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_templates_render_the_spec_payloads() {
        let created = render(DEFAULT_CREATED_TEMPLATE, 12, "{ticket_action:created}");
        assert_eq!(
            serde_json::from_str::<Value>(&created).unwrap(),
            serde_json::json!({"ticketId": "12", "triggered_event": "ticket_created"})
        );
        let Trigger::Updated(event) = Trigger::changed("status", Some(2), Some(4)) else {
            unreachable!()
        };
        let updated = render(DEFAULT_UPDATED_TEMPLATE, 12, &event);
        assert_eq!(
            serde_json::from_str::<Value>(&updated).unwrap(),
            serde_json::json!({"ticketId": "12", "triggered_event": "{status:{from:2,to:4}}"})
        );
    }

    #[test]
    fn missing_values_render_as_null() {
        assert_eq!(
            Trigger::changed("responder_id", None::<u64>, Some(44)),
            Trigger::Updated("{responder_id:{from:null,to:44}}".into())
        );
    }
}
