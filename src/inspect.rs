//! Deterministic state dumps: one function renders a ticket's state for the inspection
//! endpoint and for tests alike.

use serde_json::{json, Value};
use ticketsync_actors::ticket::actor::ActorStatus;
use ticketsync_actors::ticket::state::{ErrorNote, TicketRecord};
use ticketsync_actors::{OrgId, TicketId};

/// Everything known about one ticket, as `GET …/tickets/{id}/inspect` shows it.
pub fn ticket_state(
    org: OrgId,
    ticket: TicketId,
    record: Option<&TicketRecord>,
    actor: Option<ActorStatus>,
    queued_events: usize,
    last_crash: Option<ErrorNote>,
) -> Value {
    let last_error = match (record.and_then(|r| r.last_error.clone()), last_crash) {
        (Some(a), Some(b)) => Some(if a.at >= b.at { a } else { b }),
        (a, b) => a.or(b),
    };
    json!({
        "org_id": org,
        "ticket_id": ticket,
        "session_id": record.and_then(|r| r.session.as_ref()).map(|s| s.id),
        "gate": record.map(|r| json!({"decision": r.gate.decision, "reason": r.gate.reason, "at": r.gate.at})),
        "actor": {
            "live": actor.is_some(),
            "restarts": actor.map_or(0, |a| a.restarts),
            "parked": actor.is_some_and(|a| a.parked),
            "busy": actor.is_some_and(|a| a.busy),
        },
        "queue": {"pending_events": queued_events},
        "watermark": {
            "last_conversation_id": record.and_then(|r| r.watermark.last_conversation_id),
            "ticket_updated_at": record.and_then(|r| r.watermark.ticket_updated_at),
        },
        "ai": record.map(|r| json!({"answers": r.ai.answers, "tagged": r.ai.tagged})),
        "pending_effects": record.map_or_else(Vec::new, |r| r.pending_effects.iter().map(|e| json!({
            "id": e.id,
            "kind": e.kind.name(),
            "attempts": e.attempts,
            "created_at": e.created_at,
        })).collect()),
        "last_error": last_error.map(|e| json!({"at": e.at, "message": e.message})),
        "retries": record.map_or(0, |r| r.retries),
    })
}
