//! Unit tests of the pure ticket state machine (contract §4).

use super::*;
use crate::ids::{GroupId, OrgId, TicketId};
use crate::org::{ChannelModes, HandoffSettings};
use chrono::{Duration, TimeZone};
use serde_json::json;

// ---------------------------------------------------------------------------------------------
// Builders
// ---------------------------------------------------------------------------------------------

const AI_AGENT: AgentId = AgentId(900);
const HUMAN_AGENT: AgentId = AgentId(901);
const DEFAULT_GROUP: GroupId = GroupId(77);
const HANDOFF_AGENT: AgentId = AgentId(555);
const HANDOFF_GROUP: GroupId = GroupId(66);
const MARKER: &str = "cf_opencx_handed_off_1234";
const FOOTER: &str = "-- Draft by the AI agent, review before sending.";

/// 2024-05-01 at the given time, UTC.
fn at(h: u32, m: u32, s: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 5, 1, h, m, s).unwrap()
}

fn at_ms(h: u32, m: u32, s: u32, ms: i64) -> DateTime<Utc> {
    at(h, m, s) + Duration::milliseconds(ms)
}

/// Default org settings: auto_handle_all on, every channel autopilot, unassign routing.
fn settings() -> OrgSettings {
    OrgSettings {
        domain: "acme.freshdesk.com".into(),
        auto_handle_all: true,
        default_group_id: Some(DEFAULT_GROUP),
        handoff: HandoffSettings::default(),
        channels: ChannelModes::default(),
        assist_footer: None,
    }
}

fn settings_with_routing(routing: Routing, marker: Option<&str>) -> OrgSettings {
    OrgSettings {
        handoff: HandoffSettings {
            routing,
            agent_id: Some(HANDOFF_AGENT),
            group_id: Some(HANDOFF_GROUP),
            marker_field: marker.map(str::to_string),
        },
        ..settings()
    }
}

/// The org view: first connection at 09:00:00, at most 5 AI answers.
fn view(settings: &OrgSettings) -> OrgView<'_> {
    OrgView {
        settings,
        ai_agent: AI_AGENT,
        first_connected_at: at(9, 0, 0),
        max_ai_answers: 5,
    }
}

/// An open email ticket created at 10:00:00, unassigned, tagged `vip`.
fn ticket() -> ObservedTicket {
    ObservedTicket {
        subject: "Cannot log in".into(),
        description_text: "I cannot log in to my account.".into(),
        status: TicketStatus::Open,
        status_name: "Open".into(),
        source: 1,
        tags: vec!["vip".into()],
        responder_id: None,
        group_id: None,
        created_at: at(10, 0, 0),
        updated_at: at(10, 0, 0),
    }
}

fn with_status(status: u8, name: &str) -> ObservedTicket {
    ObservedTicket {
        status: status.into(),
        status_name: name.into(),
        ..ticket()
    }
}

/// A public reply (not a note) by `author`, created `id` seconds after 10:01:00.
fn conv(id: u64, author: Author, body: &str) -> ObservedConversation {
    ObservedConversation {
        id: ConversationId(id),
        author,
        private: false,
        note: false,
        body_text: body.into(),
        created_at: at(10, 1, 0) + Duration::seconds(id as i64),
    }
}

fn contact(id: u64, body: &str) -> ObservedConversation {
    conv(id, Author::Contact, body)
}

fn private_note(id: u64, author: Author, body: &str) -> ObservedConversation {
    ObservedConversation {
        private: true,
        note: true,
        ..conv(id, author, body)
    }
}

fn public_note(id: u64, author: Author, body: &str) -> ObservedConversation {
    ObservedConversation {
        private: false,
        note: true,
        ..conv(id, author, body)
    }
}

fn observation(ticket: ObservedTicket, conversations: Vec<ObservedConversation>) -> Observation {
    let total = conversations.len() as u32;
    Observation {
        ticket,
        conversations,
        conversations_total: total,
        conversations_listed_first_at: None,
    }
}

fn gate_tracked() -> GateDecision {
    GateDecision {
        decision: GateOutcome::Tracked,
        reason: "auto_handle_all is on".into(),
        at: at(10, 0, 1),
    }
}

/// A freshly tracked ticket with its session started (nothing observed yet).
fn tracked(ticket: &ObservedTicket) -> TicketRecord {
    let mut record = TicketRecord::new(OrgId::new(), TicketId(42), gate_tracked());
    start_session(&mut record, ticket, false, at(10, 0, 1));
    record
}

/// A tracked open ticket whose description the AI answered (reply sent and mirrored as
/// conversation 100); the outbox is empty.
fn answered(settings: &OrgSettings) -> TicketRecord {
    let org = view(settings);
    let mut record = tracked(&ticket());
    let step = observe(
        &mut record,
        &observation(ticket(), vec![]),
        &org,
        at(10, 0, 2),
    );
    assert!(step.ask.is_some(), "the description is answered");
    respond(
        &mut record,
        Decision::Reply {
            text: "Try resetting your password.".into(),
        },
        &org,
        at(10, 0, 3),
    );
    send_all(&mut record, 100);
    record
}

/// Mark every pending effect sent; posts come back as conversations `first_id`, `first_id + 1`…
fn send_all(record: &mut TicketRecord, first_id: u64) {
    let mut next = first_id;
    while let Some(effect) = record.pending_effects.first().cloned() {
        let posted = match &effect.kind {
            EffectKind::PostReply { body_text, .. } | EffectKind::PostNote { body_text, .. } => {
                next += 1;
                Some(Posted {
                    id: ConversationId(next - 1),
                    body_text: body_text.clone(),
                    created_at: effect.created_at,
                })
            }
            EffectKind::UpdateTicket { .. } => None,
        };
        effect_sent(record, effect.id, posted);
    }
}

fn session(record: &TicketRecord) -> &Session {
    record.session.as_ref().expect("a session")
}

fn kinds(record: &TicketRecord) -> Vec<EffectKind> {
    record
        .pending_effects
        .iter()
        .map(|e| e.kind.clone())
        .collect()
}

fn message_ids(record: &TicketRecord) -> Vec<Option<u64>> {
    session(record)
        .messages
        .iter()
        .map(|m| m.conversation_id.map(|c| c.0))
        .collect()
}

fn bodies(messages: &[Message]) -> Vec<&str> {
    messages.iter().map(|m| m.body_text.as_str()).collect()
}

/// The update whose JSON is `expected` (which it writes back unchanged, so comparing with it
/// compares the JSON sent).
fn update(expected: Value) -> TicketUpdate {
    let update: TicketUpdate = serde_json::from_value(expected.clone()).unwrap();
    assert_eq!(serde_json::to_value(&update).unwrap(), expected);
    update
}

/// The effects of a handoff: (note body text, routing update JSON, fallback JSON).
fn handoff_effects(record: &TicketRecord) -> (String, Value, Option<Value>) {
    match kinds(record).as_slice() {
        [EffectKind::PostNote {
            body_text,
            purpose: NotePurpose::Handoff,
            ..
        }, EffectKind::UpdateTicket {
            update,
            purpose: UpdatePurpose::Route { fallback },
        }] => (
            body_text.clone(),
            serde_json::to_value(update).unwrap(),
            fallback.as_ref().map(|f| serde_json::to_value(f).unwrap()),
        ),
        other => panic!("expected a handoff note then a routing update, got {other:?}"),
    }
}

fn hand_off_with(settings: &OrgSettings) -> TicketRecord {
    let mut record = answered(settings);
    handoff(
        &mut record,
        HandoffReason::CustomerRequested,
        "The customer asked for a human.",
        None,
        &view(settings),
        at(10, 5, 0),
    );
    record
}

// ---------------------------------------------------------------------------------------------
// Intake gate (§4.1)
// ---------------------------------------------------------------------------------------------

#[test]
fn auto_handle_all_tracks_any_new_ticket() {
    let settings = settings();
    let ticket = ObservedTicket {
        responder_id: Some(HUMAN_AGENT),
        group_id: Some(GroupId(1)),
        ..ticket()
    };
    let decision = gate(&ticket, &view(&settings), at(10, 0, 5));
    assert_eq!(
        decision,
        GateDecision {
            decision: GateOutcome::Tracked,
            reason: "auto_handle_all is on".into(),
            at: at(10, 0, 5),
        }
    );
}

/// The setup self-test's ticket, assigned to the AI agent, in the default group.
fn self_test_ticket() -> ObservedTicket {
    ObservedTicket {
        tags: vec!["vip".into(), SELF_TEST_TAG.into()],
        responder_id: Some(AI_AGENT),
        group_id: Some(DEFAULT_GROUP),
        ..ticket()
    }
}

#[test]
fn the_self_test_ticket_is_ignored_before_any_other_rule() {
    let settings = settings();
    let decision = gate(&self_test_ticket(), &view(&settings), at(10, 0, 5));
    assert_eq!(
        decision,
        GateDecision {
            decision: GateOutcome::Ignored,
            reason: GateReason::SelfTest,
            at: at(10, 0, 5),
        }
    );
    assert_eq!(decision.reason.to_string(), "self-test ticket");
    let old = ObservedTicket {
        created_at: at(8, 0, 0),
        ..self_test_ticket()
    };
    assert_eq!(
        gate(&old, &view(&settings), at(10, 0, 5)).reason,
        GateReason::SelfTest
    );
}

#[test]
fn the_backfill_ignores_the_self_test_ticket_too() {
    let settings = settings();
    let old = ObservedTicket {
        created_at: at(8, 0, 0),
        ..self_test_ticket()
    };
    let decision = import_gate(&old, &view(&settings), at(10, 0, 5));
    assert_eq!(decision.decision, GateOutcome::Ignored);
    assert_eq!(decision.reason, GateReason::SelfTest);
}

#[test]
fn a_ticket_whose_tag_only_resembles_the_self_test_tag_is_gated_as_usual() {
    let settings = settings();
    let ticket = ObservedTicket {
        tags: vec!["ticketsync-self-test-2".into()],
        ..ticket()
    };
    assert_eq!(
        gate(&ticket, &view(&settings), at(10, 0, 5)).decision,
        GateOutcome::Tracked
    );
}

#[test]
fn with_auto_handle_all_off_a_ticket_assigned_to_the_ai_agent_is_tracked() {
    let settings = OrgSettings {
        auto_handle_all: false,
        ..settings()
    };
    let ticket = ObservedTicket {
        responder_id: Some(AI_AGENT),
        ..ticket()
    };
    let decision = gate(&ticket, &view(&settings), at(10, 0, 5));
    assert_eq!(decision.decision, GateOutcome::Tracked);
    assert_eq!(decision.reason, "assigned to the AI agent");
}

#[test]
fn with_auto_handle_all_off_a_ticket_in_the_default_group_is_tracked() {
    let settings = OrgSettings {
        auto_handle_all: false,
        ..settings()
    };
    let ticket = ObservedTicket {
        group_id: Some(DEFAULT_GROUP),
        responder_id: Some(HUMAN_AGENT),
        ..ticket()
    };
    let decision = gate(&ticket, &view(&settings), at(10, 0, 5));
    assert_eq!(decision.decision, GateOutcome::Tracked);
    assert_eq!(decision.reason, "in the default group");
}

#[test]
fn with_auto_handle_all_off_any_other_ticket_is_ignored_with_a_reason() {
    let settings = OrgSettings {
        auto_handle_all: false,
        ..settings()
    };
    let ticket = ObservedTicket {
        responder_id: Some(HUMAN_AGENT),
        group_id: Some(GroupId(1)),
        ..ticket()
    };
    let decision = gate(&ticket, &view(&settings), at(10, 0, 5));
    assert_eq!(
        decision,
        GateDecision {
            decision: GateOutcome::Ignored,
            reason: "auto_handle_all is off and the ticket is neither assigned to the AI agent nor in the default group".into(),
            at: at(10, 0, 5),
        }
    );
}

#[test]
fn with_no_default_group_an_ungrouped_ticket_is_not_taken_for_the_default_group() {
    let settings = OrgSettings {
        auto_handle_all: false,
        default_group_id: None,
        ..settings()
    };
    let decision = gate(&ticket(), &view(&settings), at(10, 0, 5));
    assert_eq!(decision.decision, GateOutcome::Ignored);
}

#[test]
fn a_ticket_created_before_the_first_connection_is_ignored_even_with_auto_handle_all() {
    let settings = settings();
    let ticket = ObservedTicket {
        created_at: at(8, 59, 59),
        ..ticket()
    };
    let decision = gate(&ticket, &view(&settings), at(10, 0, 5));
    assert_eq!(decision.decision, GateOutcome::Ignored);
    assert_eq!(
        decision.reason,
        "created before the organization connected and not imported by the backfill"
    );
}

#[test]
fn a_ticket_created_in_the_same_second_as_the_first_connection_is_tracked() {
    let settings = settings();
    let org = OrgView {
        first_connected_at: at_ms(10, 0, 0, 700),
        ..view(&settings)
    };
    let ticket = ObservedTicket {
        created_at: at(10, 0, 0),
        ..ticket()
    };
    assert_eq!(
        gate(&ticket, &org, at(10, 0, 5)).decision,
        GateOutcome::Tracked
    );
}

#[test]
fn a_ticket_created_one_second_before_a_sub_second_first_connection_is_ignored() {
    let settings = settings();
    let org = OrgView {
        first_connected_at: at_ms(10, 0, 0, 700),
        ..view(&settings)
    };
    let ticket = ObservedTicket {
        created_at: at(9, 59, 59),
        ..ticket()
    };
    assert_eq!(
        gate(&ticket, &org, at(10, 0, 5)).decision,
        GateOutcome::Ignored
    );
}

#[test]
fn a_ticket_created_exactly_at_the_first_connection_is_tracked() {
    let settings = settings();
    let org = OrgView {
        first_connected_at: at(10, 0, 0),
        ..view(&settings)
    };
    assert_eq!(
        gate(&ticket(), &org, at(10, 0, 5)).decision,
        GateOutcome::Tracked
    );
}

// ---------------------------------------------------------------------------------------------
// start_session
// ---------------------------------------------------------------------------------------------

#[test]
fn starting_a_session_makes_the_description_the_first_contact_message() {
    let record = tracked(&ticket());
    let s = session(&record);
    assert_eq!(
        s.messages,
        vec![Message {
            conversation_id: None,
            author: Author::Contact,
            private: false,
            note: false,
            body_text: "I cannot log in to my account.".into(),
            created_at: at(10, 0, 0),
        }]
    );
    assert_eq!(s.ticket_id, TicketId(42));
    assert_eq!(s.subject, "Cannot log in");
    assert_eq!(s.state, SessionState::AiActive);
    assert_eq!(
        s.freshdesk_status,
        StatusView {
            id: 2,
            name: "Open".into()
        }
    );
    assert!(!s.imported);
    assert_eq!(s.handoff, None);
    assert_eq!(s.created_at, at(10, 0, 1));
    assert_eq!(s.updated_at, at(10, 0, 1));
    assert!(record.is_tracked());
    assert!(record.pending_effects.is_empty());
}

#[test]
fn starting_a_session_takes_the_channel_from_the_ticket_source() {
    for (source, channel) in [
        (1, Channel::Email),
        (10, Channel::Email),
        (2, Channel::Web),
        (7, Channel::Web),
        (9, Channel::Web),
        (3, Channel::Phone),
        (5, Channel::Other),
        (13, Channel::Other),
    ] {
        let record = tracked(&ObservedTicket { source, ..ticket() });
        assert_eq!(session(&record).channel, channel, "source {source}");
    }
}

#[test]
fn starting_an_imported_session_records_the_imported_flag() {
    let mut record = TicketRecord::new(OrgId::new(), TicketId(42), gate_tracked());
    start_session(&mut record, &ticket(), true, at(10, 0, 1));
    assert!(session(&record).imported);
    assert_eq!(session(&record).messages.len(), 1);
}

// ---------------------------------------------------------------------------------------------
// observe: mirroring
// ---------------------------------------------------------------------------------------------

#[test]
fn observing_mirrors_the_subject_and_the_status_with_its_name() {
    let settings = settings();
    let mut record = answered(&settings);
    let changed = ObservedTicket {
        subject: "Cannot log in (urgent)".into(),
        status: TicketStatus::Custom(7),
        status_name: "Waiting on Customer".into(),
        tags: vec!["vip".into(), "opencx".into()],
        updated_at: at(10, 2, 0),
        ..ticket()
    };
    let step = observe(
        &mut record,
        &observation(changed, vec![]),
        &view(&settings),
        at(10, 2, 1),
    );
    assert_eq!(step, Step::default());
    let s = session(&record);
    assert_eq!(s.subject, "Cannot log in (urgent)");
    assert_eq!(
        s.freshdesk_status,
        StatusView {
            id: 7,
            name: "Waiting on Customer".into()
        }
    );
    assert_eq!(s.updated_at, at(10, 2, 1));
    assert_eq!(record.watermark.ticket_updated_at, Some(at(10, 2, 0)));
    assert_eq!(
        record.watermark.tags,
        vec!["vip".to_string(), "opencx".to_string()]
    );
}

#[test]
fn observing_appends_only_conversations_not_already_mirrored() {
    let settings = settings();
    let org = view(&settings);
    let mut record = tracked(&ticket());
    observe(
        &mut record,
        &observation(
            ticket(),
            vec![
                private_note(1, Author::Agent, "a"),
                private_note(2, Author::Agent, "b"),
            ],
        ),
        &org,
        at(10, 2, 0),
    );
    observe(
        &mut record,
        &observation(
            ticket(),
            vec![
                private_note(1, Author::Agent, "a"),
                private_note(2, Author::Agent, "b"),
                private_note(3, Author::Agent, "c"),
            ],
        ),
        &org,
        at(10, 3, 0),
    );
    assert_eq!(message_ids(&record), vec![None, Some(1), Some(2), Some(3)]);
    assert_eq!(
        record.watermark.last_conversation_id,
        Some(ConversationId(3))
    );
    assert_eq!(record.watermark.conversations_seen, 3);
}

#[test]
fn a_conversation_repeated_within_one_observation_is_mirrored_once() {
    let settings = settings();
    let mut record = tracked(&ticket());
    observe(
        &mut record,
        &observation(
            ticket(),
            vec![
                private_note(1, Author::Agent, "a"),
                private_note(1, Author::Agent, "a"),
            ],
        ),
        &view(&settings),
        at(10, 2, 0),
    );
    assert_eq!(message_ids(&record), vec![None, Some(1)]);
}

#[test]
fn conversations_keep_freshdesk_order_not_id_order() {
    let settings = settings();
    let mut record = tracked(&ticket());
    observe(
        &mut record,
        &observation(
            ticket(),
            vec![
                private_note(5, Author::Agent, "five"),
                private_note(3, Author::Agent, "three"),
                private_note(4, Author::Agent, "four"),
            ],
        ),
        &view(&settings),
        at(10, 2, 0),
    );
    assert_eq!(message_ids(&record), vec![None, Some(5), Some(3), Some(4)]);
    assert_eq!(
        record.watermark.last_conversation_id,
        Some(ConversationId(5))
    );
}

#[test]
fn a_mirrored_conversation_keeps_its_author_flags_text_and_time() {
    let settings = settings();
    let mut record = tracked(&ticket());
    let note = public_note(8, Author::Agent, "Checking with billing.");
    observe(
        &mut record,
        &observation(ticket(), vec![note.clone()]),
        &view(&settings),
        at(10, 2, 0),
    );
    assert_eq!(
        session(&record).messages[1],
        Message {
            conversation_id: Some(ConversationId(8)),
            author: Author::Agent,
            private: false,
            note: true,
            body_text: "Checking with billing.".into(),
            created_at: note.created_at,
        }
    );
}

#[test]
fn observing_an_untracked_record_does_nothing() {
    let settings = settings();
    let gate = GateDecision {
        decision: GateOutcome::Ignored,
        reason: "x".into(),
        at: at(10, 0, 0),
    };
    let mut record = TicketRecord::new(OrgId::new(), TicketId(42), gate);
    let before = record.clone();
    let step = observe(
        &mut record,
        &observation(ticket(), vec![contact(1, "hi")]),
        &view(&settings),
        at(10, 2, 0),
    );
    assert_eq!(step, Step::default());
    assert_eq!(record, before);
}

// ---------------------------------------------------------------------------------------------
// observe: when the AI answers (§4.4)
// ---------------------------------------------------------------------------------------------

#[test]
fn a_newly_tracked_ticket_asks_the_responder_about_its_description() {
    let settings = settings();
    let mut record = tracked(&ticket());
    let step = observe(
        &mut record,
        &observation(ticket(), vec![]),
        &view(&settings),
        at(10, 0, 2),
    );
    let ask = step.ask.expect("an ask");
    assert_eq!(ask.channel, Channel::Email);
    assert_eq!(ask.subject, "Cannot log in");
    assert_eq!(ask.transcript, session(&record).messages);
    assert_eq!(ask.transcript.len(), 1);
}

#[test]
fn a_new_contact_message_on_an_ai_active_open_ticket_asks_with_the_public_transcript() {
    let settings = settings();
    let mut record = answered(&settings);
    let step = observe(
        &mut record,
        &observation(
            ticket(),
            vec![
                private_note(1, Author::Agent, "internal: VIP customer"),
                contact(2, "It still does not work."),
            ],
        ),
        &view(&settings),
        at(10, 2, 0),
    );
    let ask = step.ask.expect("an ask");
    assert_eq!(
        bodies(&ask.transcript),
        vec![
            "I cannot log in to my account.",
            "Try resetting your password.",
            "It still does not work.",
        ]
    );
    assert!(ask.transcript.iter().all(|m| !m.private));
    assert_eq!(ask.transcript[1].author, Author::Ai);
    assert_eq!(ask.transcript[2].conversation_id, Some(ConversationId(2)));
}

#[test]
fn several_new_contact_messages_together_produce_one_ask_with_the_latest_state() {
    let settings = settings();
    let mut record = answered(&settings);
    let step = observe(
        &mut record,
        &observation(
            ticket(),
            vec![
                contact(1, "Hello?"),
                contact(2, "Anyone there?"),
                contact(3, "Please!"),
            ],
        ),
        &view(&settings),
        at(10, 2, 0),
    );
    let ask = step.ask.expect("one ask");
    assert_eq!(ask.transcript.len(), 5);
    assert_eq!(ask.transcript.last().unwrap().body_text, "Please!");
    // Answering once covers all of them.
    respond(
        &mut record,
        Decision::Reply {
            text: "Yes.".into(),
        },
        &view(&settings),
        at(10, 2, 1),
    );
    send_all(&mut record, 200);
    let again = observe(
        &mut record,
        &observation(ticket(), vec![]),
        &view(&settings),
        at(10, 2, 2),
    );
    assert_eq!(again.ask, None);
}

#[test]
fn an_unanswered_message_is_asked_about_again_until_the_responder_decides() {
    // The ask does not consume the message: a crash before `respond` answers it next time.
    let settings = settings();
    let mut record = answered(&settings);
    let first = observe(
        &mut record,
        &observation(ticket(), vec![contact(1, "Hi")]),
        &view(&settings),
        at(10, 2, 0),
    );
    assert!(first.ask.is_some());
    let second = observe(
        &mut record,
        &observation(ticket(), vec![]),
        &view(&settings),
        at(10, 2, 5),
    );
    assert_eq!(second.ask, first.ask);
}

#[test]
fn no_ask_when_the_session_is_human_active_and_the_message_is_considered() {
    let settings = settings();
    let mut record = answered(&settings);
    observe(
        &mut record,
        &observation(
            ticket(),
            vec![conv(1, Author::Agent, "I'll take it from here.")],
        ),
        &view(&settings),
        at(10, 2, 0),
    );
    assert_eq!(session(&record).state, SessionState::HumanActive);
    let step = observe(
        &mut record,
        &observation(ticket(), vec![contact(2, "Thanks!")]),
        &view(&settings),
        at(10, 3, 0),
    );
    assert_eq!(step.ask, None);
    assert_eq!(record.ai.considered, session(&record).messages.len());
    assert!(record.pending_effects.is_empty());
}

#[test]
fn no_ask_when_the_session_is_handed_off_and_the_message_is_considered() {
    let settings = settings();
    let mut record = hand_off_with(&settings);
    send_all(&mut record, 300);
    let step = observe(
        &mut record,
        &observation(ticket(), vec![contact(1, "Hello?")]),
        &view(&settings),
        at(10, 6, 0),
    );
    assert_eq!(step.ask, None);
    assert_eq!(record.ai.considered, session(&record).messages.len());
    assert_eq!(session(&record).state, SessionState::HandedOff);
    assert!(record.pending_effects.is_empty());
}

#[test]
fn no_ask_when_the_channel_mode_is_off_and_the_message_is_not_answered_later() {
    let off = OrgSettings {
        channels: ChannelModes {
            email: ChannelMode::Off,
            ..ChannelModes::default()
        },
        ..settings()
    };
    let mut record = tracked(&ticket());
    let step = observe(
        &mut record,
        &observation(ticket(), vec![contact(1, "Hello?")]),
        &view(&off),
        at(10, 2, 0),
    );
    assert_eq!(step.ask, None);
    assert_eq!(record.ai.considered, 2);
    // Turning the channel on later does not answer the old messages.
    let on = settings();
    let later = observe(
        &mut record,
        &observation(ticket(), vec![]),
        &view(&on),
        at(10, 3, 0),
    );
    assert_eq!(later.ask, None);
    // A new message is answered.
    let next = observe(
        &mut record,
        &observation(ticket(), vec![contact(2, "Again")]),
        &view(&on),
        at(10, 4, 0),
    );
    assert!(next.ask.is_some());
}

#[test]
fn the_other_channel_is_off_when_web_is_off_and_other_is_unset() {
    let settings = OrgSettings {
        channels: ChannelModes {
            web: ChannelMode::Off,
            ..ChannelModes::default()
        },
        ..settings()
    };
    let twitter = ObservedTicket {
        source: 5,
        ..ticket()
    };
    let mut record = tracked(&twitter);
    let step = observe(
        &mut record,
        &observation(twitter, vec![]),
        &view(&settings),
        at(10, 0, 2),
    );
    assert_eq!(step.ask, None);
}

#[test]
fn no_ask_on_a_resolved_ticket_but_the_message_is_answered_once_it_is_open_again() {
    let settings = settings();
    let mut record = answered(&settings);
    let resolved = with_status(4, "Resolved");
    let step = observe(
        &mut record,
        &observation(resolved, vec![contact(1, "One more thing.")]),
        &view(&settings),
        at(10, 2, 0),
    );
    assert_eq!(step.ask, None);
    assert!(record.pending_effects.is_empty());
    assert!(record.ai.considered < session(&record).messages.len());
    let reopened = observe(
        &mut record,
        &observation(with_status(2, "Open"), vec![]),
        &view(&settings),
        at(10, 3, 0),
    );
    let ask = reopened.ask.expect("answered after reopening");
    assert_eq!(ask.transcript.last().unwrap().body_text, "One more thing.");
}

#[test]
fn no_ask_on_a_closed_ticket_but_the_message_is_answered_once_it_is_pending_again() {
    let settings = settings();
    let mut record = answered(&settings);
    let step = observe(
        &mut record,
        &observation(with_status(5, "Closed"), vec![contact(1, "Reopen please.")]),
        &view(&settings),
        at(10, 2, 0),
    );
    assert_eq!(step.ask, None);
    let still_closed = observe(
        &mut record,
        &observation(with_status(5, "Closed"), vec![]),
        &view(&settings),
        at(10, 2, 30),
    );
    assert_eq!(still_closed.ask, None);
    let pending = observe(
        &mut record,
        &observation(with_status(3, "Pending"), vec![]),
        &view(&settings),
        at(10, 3, 0),
    );
    assert_eq!(
        pending
            .ask
            .expect("answered when pending")
            .transcript
            .last()
            .unwrap()
            .body_text,
        "Reopen please."
    );
}

#[test]
fn a_contact_message_on_a_ticket_in_a_custom_status_is_answered() {
    let settings = settings();
    let mut record = answered(&settings);
    let step = observe(
        &mut record,
        &observation(
            with_status(6, "Waiting on Customer"),
            vec![contact(1, "Here is the info.")],
        ),
        &view(&settings),
        at(10, 2, 0),
    );
    assert!(step.ask.is_some());
}

#[test]
fn a_human_public_reply_makes_the_session_human_active() {
    let settings = settings();
    let mut record = answered(&settings);
    let step = observe(
        &mut record,
        &observation(ticket(), vec![conv(1, Author::Agent, "Hi, Sam here.")]),
        &view(&settings),
        at(10, 2, 0),
    );
    assert_eq!(step.ask, None);
    assert_eq!(session(&record).state, SessionState::HumanActive);
    assert_eq!(session(&record).updated_at, at(10, 2, 0));
}

#[test]
fn a_human_public_reply_after_a_contact_message_in_the_same_batch_prevents_the_ask() {
    let settings = settings();
    let mut record = answered(&settings);
    let step = observe(
        &mut record,
        &observation(
            ticket(),
            vec![
                contact(1, "Still broken."),
                conv(2, Author::Agent, "Looking into it."),
            ],
        ),
        &view(&settings),
        at(10, 2, 0),
    );
    assert_eq!(step.ask, None);
    assert_eq!(session(&record).state, SessionState::HumanActive);
    assert!(record.pending_effects.is_empty());
}

#[test]
fn a_human_public_reply_on_a_new_ticket_prevents_answering_the_description() {
    let settings = settings();
    let mut record = tracked(&ticket());
    let step = observe(
        &mut record,
        &observation(ticket(), vec![conv(1, Author::Agent, "On it.")]),
        &view(&settings),
        at(10, 0, 2),
    );
    assert_eq!(step.ask, None);
    assert_eq!(session(&record).state, SessionState::HumanActive);
}

#[test]
fn a_human_private_note_changes_nothing() {
    let settings = settings();
    let mut record = answered(&settings);
    let step = observe(
        &mut record,
        &observation(ticket(), vec![private_note(1, Author::Agent, "internal")]),
        &view(&settings),
        at(10, 2, 0),
    );
    assert_eq!(step.ask, None);
    assert_eq!(session(&record).state, SessionState::AiActive);
    assert_eq!(message_ids(&record).last(), Some(&Some(1)));
    assert!(record.pending_effects.is_empty());
}

#[test]
fn a_human_public_note_changes_nothing() {
    let settings = settings();
    let mut record = answered(&settings);
    let step = observe(
        &mut record,
        &observation(ticket(), vec![public_note(1, Author::Agent, "FYI")]),
        &view(&settings),
        at(10, 2, 0),
    );
    assert_eq!(step.ask, None);
    assert_eq!(session(&record).state, SessionState::AiActive);
}

#[test]
fn a_contact_message_after_a_human_note_is_still_answered() {
    let settings = settings();
    let mut record = answered(&settings);
    let step = observe(
        &mut record,
        &observation(
            ticket(),
            vec![
                private_note(1, Author::Agent, "internal"),
                public_note(2, Author::Agent, "FYI"),
                contact(3, "Hello"),
            ],
        ),
        &view(&settings),
        at(10, 2, 0),
    );
    assert_eq!(session(&record).state, SessionState::AiActive);
    assert_eq!(
        step.ask
            .expect("an ask")
            .transcript
            .last()
            .unwrap()
            .body_text,
        "Hello"
    );
}

#[test]
fn a_human_public_reply_does_not_undo_a_handoff() {
    let settings = settings();
    let mut record = hand_off_with(&settings);
    observe(
        &mut record,
        &observation(ticket(), vec![conv(1, Author::Agent, "Hi")]),
        &view(&settings),
        at(10, 6, 0),
    );
    assert_eq!(session(&record).state, SessionState::HandedOff);
}

#[test]
fn the_ais_own_messages_never_trigger_an_ask() {
    let settings = settings();
    let mut record = answered(&settings);
    let step = observe(
        &mut record,
        &observation(
            ticket(),
            vec![
                conv(1, Author::Ai, "Anything else?"),
                private_note(2, Author::Ai, "draft"),
            ],
        ),
        &view(&settings),
        at(10, 2, 0),
    );
    assert_eq!(step.ask, None);
    assert_eq!(session(&record).state, SessionState::AiActive);
    assert_eq!(record.ai.considered, session(&record).messages.len());
}

#[test]
fn a_handed_off_ticket_keeps_syncing_status_and_messages() {
    let settings = settings();
    let mut record = hand_off_with(&settings);
    send_all(&mut record, 300);
    observe(
        &mut record,
        &observation(
            with_status(4, "Resolved"),
            vec![conv(301, Author::Agent, "Fixed."), contact(302, "Thanks")],
        ),
        &view(&settings),
        at(10, 7, 0),
    );
    let s = session(&record);
    assert_eq!(s.freshdesk_status.id, 4);
    assert_eq!(s.freshdesk_status.name, "Resolved");
    assert_eq!(
        bodies(&s.messages[s.messages.len() - 2..]),
        vec!["Fixed.", "Thanks"]
    );
}

// ---------------------------------------------------------------------------------------------
// Turn limit
// ---------------------------------------------------------------------------------------------

#[test]
fn the_contact_message_after_the_turn_limit_hands_off_with_reason_turn_limit() {
    let settings = settings();
    let org = OrgView {
        max_ai_answers: 2,
        ..view(&settings)
    };
    let mut record = tracked(&ticket());
    // Two answers.
    assert!(observe(
        &mut record,
        &observation(ticket(), vec![]),
        &org,
        at(10, 0, 2)
    )
    .ask
    .is_some());
    respond(
        &mut record,
        Decision::Reply { text: "One".into() },
        &org,
        at(10, 0, 3),
    );
    send_all(&mut record, 100);
    assert!(observe(
        &mut record,
        &observation(ticket(), vec![contact(1, "Hm")]),
        &org,
        at(10, 1, 0)
    )
    .ask
    .is_some());
    respond(
        &mut record,
        Decision::Reply { text: "Two".into() },
        &org,
        at(10, 1, 1),
    );
    send_all(&mut record, 200);
    assert_eq!(record.ai.answers, 2);

    let step = observe(
        &mut record,
        &observation(ticket(), vec![contact(2, "Still no")]),
        &org,
        at(10, 2, 0),
    );
    assert_eq!(step.ask, None);
    let s = session(&record);
    assert_eq!(s.state, SessionState::HandedOff);
    let h = s.handoff.clone().expect("a handoff record");
    assert_eq!(h.reason, HandoffReason::TurnLimit);
    assert_eq!(h.routing, Routing::Unassign);
    assert_eq!(h.at, at(10, 2, 0));
    assert_eq!(
        h.detail.as_deref(),
        Some("the AI answered 2 times on this ticket, the configured limit")
    );
    let (note, update, fallback) = handoff_effects(&record);
    assert!(note.contains("Reason: turn_limit"), "{note}");
    assert!(
        note.contains("Still no"),
        "the summary names the latest message: {note}"
    );
    assert_eq!(update, json!({"responder_id": null, "status": 2}));
    assert_eq!(fallback, None);
}

#[test]
fn below_the_turn_limit_the_contact_message_is_answered() {
    let settings = settings();
    let org = OrgView {
        max_ai_answers: 2,
        ..view(&settings)
    };
    let mut record = answered(&settings);
    assert_eq!(record.ai.answers, 1);
    let step = observe(
        &mut record,
        &observation(ticket(), vec![contact(1, "Hm")]),
        &org,
        at(10, 2, 0),
    );
    assert!(step.ask.is_some());
    assert_eq!(session(&record).state, SessionState::AiActive);
}

#[test]
fn reaching_the_turn_limit_without_a_new_contact_message_does_not_hand_off() {
    let settings = settings();
    let org = OrgView {
        max_ai_answers: 1,
        ..view(&settings)
    };
    let mut record = answered(&settings);
    let step = observe(
        &mut record,
        &observation(ticket(), vec![conv(1, Author::Ai, "Anything else?")]),
        &org,
        at(10, 2, 0),
    );
    assert_eq!(step.ask, None);
    assert_eq!(session(&record).state, SessionState::AiActive);
    assert!(record.pending_effects.is_empty());
}

// ---------------------------------------------------------------------------------------------
// respond
// ---------------------------------------------------------------------------------------------

fn asked(settings: &OrgSettings, ticket: ObservedTicket) -> TicketRecord {
    let mut record = tracked(&ticket);
    let step = observe(
        &mut record,
        &observation(ticket, vec![]),
        &view(settings),
        at(10, 0, 2),
    );
    assert!(step.ask.is_some());
    record
}

#[test]
fn a_reply_in_autopilot_queues_a_public_reply_and_the_tags_merged_with_the_existing_ones() {
    let settings = settings();
    let mut record = asked(&settings, ticket());
    respond(
        &mut record,
        Decision::Reply {
            text: "Reset your password.\n\nThen log in.".into(),
        },
        &view(&settings),
        at(10, 0, 3),
    );
    assert_eq!(
        kinds(&record),
        vec![
            EffectKind::PostReply {
                body_html: "<p>Reset your password.</p><p>Then log in.</p>".into(),
                body_text: "Reset your password.\n\nThen log in.".into(),
            },
            EffectKind::UpdateTicket {
                update: update(json!({"tags": ["vip", "opencx", "opencx_autopilot"]})),
                purpose: UpdatePurpose::Tag,
            },
        ]
    );
    assert!(record
        .pending_effects
        .iter()
        .all(|e| e.created_at == at(10, 0, 3) && e.attempts == 0));
    assert_ne!(record.pending_effects[0].id, record.pending_effects[1].id);
    assert_eq!(record.ai.answers, 1);
    assert!(record.ai.tagged);
    assert_eq!(record.ai.considered, 1);
    assert_eq!(session(&record).updated_at, at(10, 0, 3));
}

#[test]
fn the_tag_update_does_not_duplicate_tags_the_ticket_already_has() {
    let settings = settings();
    let tagged = ObservedTicket {
        tags: vec!["opencx".into(), "billing".into(), "opencx_autopilot".into()],
        ..ticket()
    };
    let mut record = asked(&settings, tagged);
    respond(
        &mut record,
        Decision::Reply { text: "Hi".into() },
        &view(&settings),
        at(10, 0, 3),
    );
    assert_eq!(
        kinds(&record)[1],
        EffectKind::UpdateTicket {
            update: update(json!({"tags": ["opencx", "billing", "opencx_autopilot"]})),
            purpose: UpdatePurpose::Tag,
        }
    );
}

#[test]
fn a_reply_in_assist_mode_queues_a_private_draft_ending_with_the_footer() {
    let settings = OrgSettings {
        channels: ChannelModes {
            email: ChannelMode::Assist,
            ..ChannelModes::default()
        },
        assist_footer: Some(FOOTER.into()),
        ..settings()
    };
    let mut record = asked(&settings, ticket());
    respond(
        &mut record,
        Decision::Reply {
            text: "Reset <it> & retry.".into(),
        },
        &view(&settings),
        at(10, 0, 3),
    );
    let expected_text = format!("Reset <it> & retry.\n\n{FOOTER}");
    assert_eq!(
        kinds(&record),
        vec![
            EffectKind::PostNote {
                body_html: format!("<p>Reset &lt;it&gt; &amp; retry.</p><p>{FOOTER}</p>"),
                body_text: expected_text.clone(),
                purpose: NotePurpose::AssistDraft,
            },
            EffectKind::UpdateTicket {
                update: update(json!({"tags": ["vip", "opencx", "opencx_assist_mode"]})),
                purpose: UpdatePurpose::Tag,
            },
        ]
    );
    assert!(expected_text.ends_with(FOOTER));
    assert_eq!(record.ai.answers, 1);
}

#[test]
fn a_reply_in_assist_mode_without_a_footer_is_the_bare_text() {
    let settings = OrgSettings {
        channels: ChannelModes {
            email: ChannelMode::Assist,
            ..ChannelModes::default()
        },
        ..settings()
    };
    let mut record = asked(&settings, ticket());
    respond(
        &mut record,
        Decision::Reply {
            text: "Draft".into(),
        },
        &view(&settings),
        at(10, 0, 3),
    );
    assert_eq!(
        kinds(&record)[0],
        EffectKind::PostNote {
            body_html: "<p>Draft</p>".into(),
            body_text: "Draft".into(),
            purpose: NotePurpose::AssistDraft,
        }
    );
}

#[test]
fn the_other_channel_follows_the_web_mode_unless_set() {
    let twitter = ObservedTicket {
        source: 5,
        ..ticket()
    };
    let follows_web = OrgSettings {
        channels: ChannelModes {
            web: ChannelMode::Assist,
            other: None,
            ..ChannelModes::default()
        },
        ..settings()
    };
    let mut record = asked(&follows_web, twitter.clone());
    respond(
        &mut record,
        Decision::Reply { text: "Hi".into() },
        &view(&follows_web),
        at(10, 0, 3),
    );
    assert!(matches!(
        kinds(&record)[0],
        EffectKind::PostNote {
            purpose: NotePurpose::AssistDraft,
            ..
        }
    ));

    let own_mode = OrgSettings {
        channels: ChannelModes {
            web: ChannelMode::Assist,
            other: Some(ChannelMode::Autopilot),
            ..ChannelModes::default()
        },
        ..settings()
    };
    let mut record = asked(&own_mode, twitter);
    respond(
        &mut record,
        Decision::Reply { text: "Hi".into() },
        &view(&own_mode),
        at(10, 0, 3),
    );
    assert!(matches!(kinds(&record)[0], EffectKind::PostReply { .. }));
    assert_eq!(
        kinds(&record)[1],
        EffectKind::UpdateTicket {
            update: update(json!({"tags": ["vip", "opencx", "opencx_autopilot"]})),
            purpose: UpdatePurpose::Tag,
        }
    );
}

#[test]
fn tags_are_sent_only_once_per_ticket() {
    let settings = settings();
    let mut record = answered(&settings);
    assert!(observe(
        &mut record,
        &observation(ticket(), vec![contact(1, "More?")]),
        &view(&settings),
        at(10, 2, 0)
    )
    .ask
    .is_some());
    respond(
        &mut record,
        Decision::Reply {
            text: "Sure.".into(),
        },
        &view(&settings),
        at(10, 2, 1),
    );
    assert_eq!(
        kinds(&record),
        vec![EffectKind::PostReply {
            body_html: "<p>Sure.</p>".into(),
            body_text: "Sure.".into(),
        }]
    );
}

#[test]
fn each_reply_increments_the_answers_counter() {
    let settings = settings();
    let mut record = asked(&settings, ticket());
    assert_eq!(record.ai.answers, 0);
    respond(
        &mut record,
        Decision::Reply { text: "1".into() },
        &view(&settings),
        at(10, 0, 3),
    );
    assert_eq!(record.ai.answers, 1);
    send_all(&mut record, 100);
    observe(
        &mut record,
        &observation(ticket(), vec![contact(1, "?")]),
        &view(&settings),
        at(10, 1, 0),
    );
    respond(
        &mut record,
        Decision::Reply { text: "2".into() },
        &view(&settings),
        at(10, 1, 1),
    );
    assert_eq!(record.ai.answers, 2);
}

#[test]
fn resolve_queues_a_private_resolution_note_then_sets_status_resolved() {
    let settings = settings();
    let mut record = asked(&settings, ticket());
    respond(
        &mut record,
        Decision::Resolve {
            text: "Password reset worked.".into(),
        },
        &view(&settings),
        at(10, 0, 3),
    );
    assert_eq!(
        kinds(&record),
        vec![
            EffectKind::PostNote {
                body_html: "<p>Resolved by the AI agent.</p><p>Password reset worked.</p>".into(),
                body_text: "Resolved by the AI agent.\n\nPassword reset worked.".into(),
                purpose: NotePurpose::Resolution,
            },
            EffectKind::UpdateTicket {
                update: update(json!({"status": 4})),
                purpose: UpdatePurpose::Resolve,
            },
        ]
    );
    assert_eq!(record.ai.answers, 0);
    assert!(!record.ai.tagged);
    assert_eq!(session(&record).state, SessionState::AiActive);
    assert_eq!(record.ai.considered, 1);
}

#[test]
fn a_handoff_decision_hands_the_ticket_off() {
    let settings = settings();
    let mut record = asked(&settings, ticket());
    respond(
        &mut record,
        Decision::Handoff {
            reason: HandoffReason::MissingKnowledge,
            summary: "No article covers SSO.".into(),
        },
        &view(&settings),
        at(10, 0, 3),
    );
    let s = session(&record);
    assert_eq!(s.state, SessionState::HandedOff);
    let h = s.handoff.clone().unwrap();
    assert_eq!(h.reason, HandoffReason::MissingKnowledge);
    assert_eq!(h.detail, None);
    let (note, update, _) = handoff_effects(&record);
    assert_eq!(
        note,
        "Handed off to a human agent by the AI.\nReason: missing_knowledge\nSummary: No article covers SSO."
    );
    assert_eq!(update, json!({"responder_id": null, "status": 2}));
    assert_eq!(record.ai.answers, 0);
}

#[test]
fn a_decision_arriving_after_a_human_took_over_is_dropped() {
    let settings = settings();
    let mut record = asked(&settings, ticket());
    observe(
        &mut record,
        &observation(ticket(), vec![conv(1, Author::Agent, "Mine.")]),
        &view(&settings),
        at(10, 0, 3),
    );
    let before = record.clone();
    respond(
        &mut record,
        Decision::Reply { text: "Hi".into() },
        &view(&settings),
        at(10, 0, 4),
    );
    assert_eq!(record, before);
}

#[test]
fn after_a_reply_the_answered_messages_are_not_asked_about_again() {
    let settings = settings();
    let mut record = asked(&settings, ticket());
    respond(
        &mut record,
        Decision::Reply { text: "Hi".into() },
        &view(&settings),
        at(10, 0, 3),
    );
    let step = observe(
        &mut record,
        &observation(ticket(), vec![]),
        &view(&settings),
        at(10, 0, 4),
    );
    assert_eq!(step.ask, None);
}

// ---------------------------------------------------------------------------------------------
// handoff (§4.6)
// ---------------------------------------------------------------------------------------------

#[test]
fn unassign_routing_sends_responder_null_and_reopens() {
    let settings = settings_with_routing(Routing::Unassign, None);
    let record = hand_off_with(&settings);
    let (_, update, fallback) = handoff_effects(&record);
    assert_eq!(update, json!({"responder_id": null, "status": 2}));
    assert_eq!(fallback, None);
    let h = session(&record).handoff.clone().unwrap();
    assert_eq!(h.routing, Routing::Unassign);
    assert_eq!(h.target, None);
}

#[test]
fn unassign_routing_does_not_set_the_marker_even_when_one_is_configured() {
    let settings = settings_with_routing(Routing::Unassign, Some(MARKER));
    let record = hand_off_with(&settings);
    let (_, update, _) = handoff_effects(&record);
    assert_eq!(update, json!({"responder_id": null, "status": 2}));
}

#[test]
fn automation_routing_unassigns_reopens_and_sets_the_marker() {
    let settings = settings_with_routing(Routing::Automation, Some(MARKER));
    let record = hand_off_with(&settings);
    let (_, update, fallback) = handoff_effects(&record);
    assert_eq!(
        update,
        json!({"responder_id": null, "status": 2, "custom_fields": {"cf_opencx_handed_off_1234": true}})
    );
    assert_eq!(fallback, None);
    let h = session(&record).handoff.clone().unwrap();
    assert_eq!(h.routing, Routing::Automation);
    assert_eq!(h.target, None);
}

#[test]
fn automation_routing_without_a_marker_sends_no_custom_fields() {
    let settings = settings_with_routing(Routing::Automation, None);
    let record = hand_off_with(&settings);
    let (_, update, _) = handoff_effects(&record);
    assert_eq!(update, json!({"responder_id": null, "status": 2}));
}

#[test]
fn agent_routing_assigns_the_handoff_agent_with_the_marker_and_an_unassign_fallback() {
    let settings = settings_with_routing(Routing::Agent, Some(MARKER));
    let record = hand_off_with(&settings);
    let (_, update, fallback) = handoff_effects(&record);
    assert_eq!(
        update,
        json!({"responder_id": 555, "status": 2, "custom_fields": {"cf_opencx_handed_off_1234": true}})
    );
    assert_eq!(
        fallback,
        Some(
            json!({"responder_id": null, "status": 2, "custom_fields": {"cf_opencx_handed_off_1234": true}})
        )
    );
    let h = session(&record).handoff.clone().unwrap();
    assert_eq!(h.routing, Routing::Agent);
    assert_eq!(h.target, Some(555));
}

#[test]
fn group_routing_assigns_the_handoff_group_unassigns_the_agent_with_the_marker_and_a_fallback() {
    let settings = settings_with_routing(Routing::Group, Some(MARKER));
    let record = hand_off_with(&settings);
    let (_, update, fallback) = handoff_effects(&record);
    assert_eq!(
        update,
        json!({"group_id": 66, "responder_id": null, "status": 2, "custom_fields": {"cf_opencx_handed_off_1234": true}})
    );
    assert_eq!(
        fallback,
        Some(
            json!({"responder_id": null, "status": 2, "custom_fields": {"cf_opencx_handed_off_1234": true}})
        )
    );
    let h = session(&record).handoff.clone().unwrap();
    assert_eq!(h.routing, Routing::Group);
    assert_eq!(h.target, Some(66));
}

#[test]
fn agent_routing_without_a_marker_has_a_fallback_without_custom_fields() {
    let settings = settings_with_routing(Routing::Agent, None);
    let record = hand_off_with(&settings);
    let (_, update, fallback) = handoff_effects(&record);
    assert_eq!(update, json!({"responder_id": 555, "status": 2}));
    assert_eq!(fallback, Some(json!({"responder_id": null, "status": 2})));
}

#[test]
fn a_handoff_records_reason_routing_target_and_detail_and_hands_the_session_off() {
    let settings = settings_with_routing(Routing::Agent, Some(MARKER));
    let mut record = answered(&settings);
    handoff(
        &mut record,
        HandoffReason::Admin,
        "summary",
        Some("escalated by the team lead".into()),
        &view(&settings),
        at(10, 5, 0),
    );
    let s = session(&record);
    assert_eq!(s.state, SessionState::HandedOff);
    assert_eq!(s.updated_at, at(10, 5, 0));
    assert_eq!(
        s.handoff,
        Some(HandoffRecord {
            at: at(10, 5, 0),
            reason: HandoffReason::Admin,
            routing: Routing::Agent,
            target: Some(555),
            fallback_used: false,
            detail: Some("escalated by the team lead".into()),
        })
    );
    let (note, _, _) = handoff_effects(&record);
    assert_eq!(
        note,
        "Handed off to a human agent by the AI.\nReason: admin\nSummary: summary\nDetail: escalated by the team lead"
    );
}

#[test]
fn the_private_handoff_note_with_reason_and_summary_is_queued_before_the_routing_update() {
    let settings = settings_with_routing(Routing::Group, Some(MARKER));
    let record = hand_off_with(&settings);
    assert_eq!(record.pending_effects.len(), 2);
    match &record.pending_effects[0].kind {
        EffectKind::PostNote {
            body_text,
            body_html,
            purpose,
        } => {
            assert_eq!(*purpose, NotePurpose::Handoff);
            assert_eq!(
                body_text,
                "Handed off to a human agent by the AI.\nReason: customer_requested\nSummary: The customer asked for a human."
            );
            assert_eq!(
                body_html,
                "<p>Handed off to a human agent by the AI.<br>Reason: customer_requested<br>Summary: The customer asked for a human.</p>"
            );
        }
        other => panic!("expected the handoff note first, got {other:?}"),
    }
    assert!(matches!(
        record.pending_effects[1].kind,
        EffectKind::UpdateTicket {
            purpose: UpdatePurpose::Route { .. },
            ..
        }
    ));
    assert!(record
        .pending_effects
        .iter()
        .all(|e| e.created_at == at(10, 5, 0)));
}

#[test]
fn a_second_handoff_does_nothing() {
    let settings = settings_with_routing(Routing::Agent, Some(MARKER));
    let mut record = hand_off_with(&settings);
    let before = record.clone();
    handoff(
        &mut record,
        HandoffReason::Admin,
        "again",
        Some("x".into()),
        &view(&settings),
        at(10, 9, 0),
    );
    assert_eq!(record, before);
    // Also once the first handoff's effects are sent.
    send_all(&mut record, 300);
    let sent = record.clone();
    handoff(
        &mut record,
        HandoffReason::TurnLimit,
        "again",
        None,
        &view(&settings),
        at(10, 9, 0),
    );
    assert_eq!(record, sent);
}

#[test]
fn an_admin_can_hand_off_a_human_active_session() {
    let settings = settings();
    let mut record = answered(&settings);
    observe(
        &mut record,
        &observation(ticket(), vec![conv(1, Author::Agent, "Mine")]),
        &view(&settings),
        at(10, 2, 0),
    );
    handoff(
        &mut record,
        HandoffReason::Admin,
        "s",
        None,
        &view(&settings),
        at(10, 3, 0),
    );
    assert_eq!(session(&record).state, SessionState::HandedOff);
    assert_eq!(record.pending_effects.len(), 2);
}

#[test]
fn a_handoff_marks_every_message_considered() {
    let settings = settings();
    let mut record = asked(&settings, ticket());
    handoff(
        &mut record,
        HandoffReason::Admin,
        "s",
        None,
        &view(&settings),
        at(10, 3, 0),
    );
    assert_eq!(record.ai.considered, session(&record).messages.len());
}

// ---------------------------------------------------------------------------------------------
// route_rejected
// ---------------------------------------------------------------------------------------------

fn route_effect_id(record: &TicketRecord) -> EffectId {
    record
        .pending_effects
        .iter()
        .find(|e| {
            matches!(
                e.kind,
                EffectKind::UpdateTicket {
                    purpose: UpdatePurpose::Route { .. },
                    ..
                }
            )
        })
        .expect("a routing update")
        .id
}

#[test]
fn a_rejected_agent_route_queues_the_fallback_and_records_why() {
    let settings = settings_with_routing(Routing::Agent, Some(MARKER));
    let mut record = hand_off_with(&settings);
    let note = record.pending_effects[0].clone();
    effect_sent(&mut record, note.id, None);
    let route = route_effect_id(&record);
    route_rejected(
        &mut record,
        route,
        "responder_id invalid_value",
        at(10, 5, 1),
    );
    assert_eq!(
        kinds(&record),
        vec![EffectKind::UpdateTicket {
            update: update(
                json!({"responder_id": null, "status": 2, "custom_fields": {"cf_opencx_handed_off_1234": true}})
            ),
            purpose: UpdatePurpose::RouteFallback,
        }]
    );
    assert_eq!(record.pending_effects[0].created_at, at(10, 5, 1));
    let h = session(&record).handoff.clone().unwrap();
    assert!(h.fallback_used);
    assert_eq!(
        h.detail.as_deref(),
        Some("fallback to unassign: responder_id invalid_value")
    );
    assert_eq!(h.routing, Routing::Agent);
}

#[test]
fn a_rejected_group_route_appends_why_to_an_existing_detail() {
    let settings = settings_with_routing(Routing::Group, Some(MARKER));
    let mut record = answered(&settings);
    handoff(
        &mut record,
        HandoffReason::Admin,
        "s",
        Some("by admin".into()),
        &view(&settings),
        at(10, 5, 0),
    );
    let route = route_effect_id(&record);
    route_rejected(&mut record, route, "group deleted", at(10, 5, 1));
    let h = session(&record).handoff.clone().unwrap();
    assert!(h.fallback_used);
    assert_eq!(
        h.detail.as_deref(),
        Some("by admin; fallback to unassign: group deleted")
    );
    // The note is still pending, then the fallback.
    assert_eq!(record.pending_effects.len(), 2);
    assert!(matches!(
        record.pending_effects[0].kind,
        EffectKind::PostNote {
            purpose: NotePurpose::Handoff,
            ..
        }
    ));
    assert_eq!(
        record.pending_effects[1].kind,
        EffectKind::UpdateTicket {
            update: update(
                json!({"responder_id": null, "status": 2, "custom_fields": {"cf_opencx_handed_off_1234": true}})
            ),
            purpose: UpdatePurpose::RouteFallback,
        }
    );
}

#[test]
fn a_rejected_route_without_a_fallback_queues_nothing() {
    let settings = settings_with_routing(Routing::Automation, Some(MARKER));
    let mut record = hand_off_with(&settings);
    let note = record.pending_effects[0].clone();
    effect_sent(&mut record, note.id, None);
    let route = route_effect_id(&record);
    route_rejected(&mut record, route, "whatever", at(10, 5, 1));
    assert!(record.pending_effects.is_empty());
    let h = session(&record).handoff.clone().unwrap();
    assert!(!h.fallback_used);
    assert_eq!(h.detail, None);
}

#[test]
fn rejecting_an_unknown_effect_changes_nothing() {
    let settings = settings_with_routing(Routing::Agent, Some(MARKER));
    let mut record = hand_off_with(&settings);
    let before = record.clone();
    route_rejected(&mut record, EffectId::new(), "x", at(10, 5, 1));
    assert_eq!(record, before);
}

// ---------------------------------------------------------------------------------------------
// effect_sent / effect_abandoned
// ---------------------------------------------------------------------------------------------

#[test]
fn a_sent_reply_is_removed_from_the_outbox_and_mirrored_once_as_an_ai_message() {
    let settings = settings();
    let mut record = asked(&settings, ticket());
    respond(
        &mut record,
        Decision::Reply {
            text: "Hi there".into(),
        },
        &view(&settings),
        at(10, 0, 3),
    );
    record.retries = 3;
    let reply = record.pending_effects[0].clone();
    let posted = Posted {
        id: ConversationId(100),
        body_text: "Hi there".into(),
        created_at: at(10, 0, 4),
    };
    effect_sent(&mut record, reply.id, Some(posted.clone()));
    assert_eq!(
        record.pending_effects.len(),
        1,
        "only the tag update is left"
    );
    assert!(matches!(
        record.pending_effects[0].kind,
        EffectKind::UpdateTicket { .. }
    ));
    assert_eq!(record.retries, 0);
    assert_eq!(
        session(&record).messages.last(),
        Some(&Message {
            conversation_id: Some(ConversationId(100)),
            author: Author::Ai,
            private: false,
            note: false,
            body_text: "Hi there".into(),
            created_at: at(10, 0, 4),
        })
    );
    assert_eq!(
        record.watermark.last_conversation_id,
        Some(ConversationId(100))
    );
    assert_eq!(record.ai.considered, 2);
    // A repeated confirmation changes nothing.
    effect_sent(&mut record, reply.id, Some(posted));
    assert_eq!(session(&record).messages.len(), 2);
    assert_eq!(record.pending_effects.len(), 1);
}

#[test]
fn a_sent_note_is_mirrored_as_a_private_ai_note() {
    let settings = OrgSettings {
        channels: ChannelModes {
            email: ChannelMode::Assist,
            ..ChannelModes::default()
        },
        ..settings()
    };
    let mut record = asked(&settings, ticket());
    respond(
        &mut record,
        Decision::Reply {
            text: "Draft".into(),
        },
        &view(&settings),
        at(10, 0, 3),
    );
    let id = record.pending_effects[0].id;
    effect_sent(
        &mut record,
        id,
        Some(Posted {
            id: ConversationId(100),
            body_text: "Draft".into(),
            created_at: at(10, 0, 4),
        }),
    );
    let last = session(&record).messages.last().unwrap().clone();
    assert_eq!(last.author, Author::Ai);
    assert!(last.private);
    assert!(last.note);
}

#[test]
fn a_sent_update_is_removed_without_a_message() {
    let settings = settings();
    let mut record = asked(&settings, ticket());
    respond(
        &mut record,
        Decision::Reply { text: "Hi".into() },
        &view(&settings),
        at(10, 0, 3),
    );
    let tag = record.pending_effects[1].id;
    effect_sent(&mut record, tag, None);
    assert_eq!(record.pending_effects.len(), 1);
    assert!(matches!(
        record.pending_effects[0].kind,
        EffectKind::PostReply { .. }
    ));
    assert_eq!(session(&record).messages.len(), 1);
}

#[test]
fn a_post_already_mirrored_by_a_reread_is_not_mirrored_again() {
    let settings = settings();
    let mut record = asked(&settings, ticket());
    respond(
        &mut record,
        Decision::Reply { text: "Hi".into() },
        &view(&settings),
        at(10, 0, 3),
    );
    observe(
        &mut record,
        &observation(ticket(), vec![conv(100, Author::Ai, "Hi")]),
        &view(&settings),
        at(10, 0, 5),
    );
    let id = record.pending_effects[0].id;
    effect_sent(
        &mut record,
        id,
        Some(Posted {
            id: ConversationId(100),
            body_text: "Hi".into(),
            created_at: at(10, 0, 4),
        }),
    );
    assert_eq!(message_ids(&record), vec![None, Some(100)]);
    assert_eq!(record.pending_effects.len(), 1);
}

#[test]
fn a_later_reread_of_a_mirrored_post_neither_duplicates_it_nor_asks() {
    let settings = settings();
    let mut record = answered(&settings);
    assert_eq!(message_ids(&record), vec![None, Some(100)]);
    let step = observe(
        &mut record,
        &observation(
            ticket(),
            vec![conv(100, Author::Ai, "Try resetting your password.")],
        ),
        &view(&settings),
        at(10, 2, 0),
    );
    assert_eq!(step.ask, None);
    assert_eq!(message_ids(&record), vec![None, Some(100)]);
}

#[test]
fn a_customer_message_read_after_an_ai_post_it_preceded_is_mirrored_before_the_post_and_answered() {
    let settings = settings();
    // The AI's reply (conversation 100, at 10:00:03) was mirrored when it was sent; the
    // customer had written conversation 99 in the same second, just before it, unread until now.
    let mut record = answered(&settings);
    let step = observe(
        &mut record,
        &observation(
            ticket(),
            vec![
                ObservedConversation {
                    created_at: at(10, 0, 3),
                    ..contact(99, "And on mobile?")
                },
                conv(100, Author::Ai, "Try resetting your password."),
            ],
        ),
        &view(&settings),
        at(10, 2, 0),
    );
    assert_eq!(
        message_ids(&record),
        vec![None, Some(99), Some(100)],
        "Freshdesk's order"
    );
    let ask = step.ask.expect("the unanswered message is answered");
    assert_eq!(
        bodies(&ask.transcript),
        vec![
            "I cannot log in to my account.",
            "And on mobile?",
            "Try resetting your password."
        ]
    );
}

#[test]
fn a_post_confirmed_after_a_later_conversation_was_read_is_mirrored_before_it() {
    let settings = settings();
    let mut record = asked(&settings, ticket());
    respond(
        &mut record,
        Decision::Reply { text: "Hi".into() },
        &view(&settings),
        at(10, 0, 3),
    );
    observe(
        &mut record,
        &observation(ticket(), vec![contact(101, "Still there?")]),
        &view(&settings),
        at(10, 0, 5),
    );
    let id = record.pending_effects[0].id;
    effect_sent(
        &mut record,
        id,
        Some(Posted {
            id: ConversationId(100),
            body_text: "Hi".into(),
            created_at: at(10, 0, 4),
        }),
    );
    assert_eq!(message_ids(&record), vec![None, Some(100), Some(101)]);
    let step = observe(
        &mut record,
        &observation(ticket(), vec![]),
        &view(&settings),
        at(10, 0, 6),
    );
    assert!(
        step.ask.is_some(),
        "the later message is still to be answered"
    );
}

#[test]
fn a_confirmation_of_an_unknown_effect_changes_nothing() {
    let settings = settings();
    let mut record = answered(&settings);
    record.retries = 2;
    let before = record.clone();
    effect_sent(
        &mut record,
        EffectId::new(),
        Some(Posted {
            id: ConversationId(999),
            body_text: "x".into(),
            created_at: at(10, 0, 4),
        }),
    );
    assert_eq!(record, before);
}

#[test]
fn an_abandoned_effect_is_dropped_and_its_reason_remembered() {
    let settings = settings();
    let mut record = asked(&settings, ticket());
    respond(
        &mut record,
        Decision::Reply { text: "Hi".into() },
        &view(&settings),
        at(10, 0, 3),
    );
    let reply = record.pending_effects[0].id;
    effect_abandoned(&mut record, reply, "ticket deleted", at(10, 0, 9));
    assert_eq!(record.pending_effects.len(), 1);
    assert_eq!(
        record.last_error,
        Some(ErrorNote {
            at: at(10, 0, 9),
            message: "ticket deleted".into()
        })
    );
}

// ---------------------------------------------------------------------------------------------
// find_sent_post
// ---------------------------------------------------------------------------------------------

/// A record with one pending reply "Hello there, friend." recorded at 10:00:05.500.
fn pending_reply() -> (TicketRecord, PendingEffect) {
    let settings = settings();
    let mut record = asked(&settings, ticket());
    respond(
        &mut record,
        Decision::Reply {
            text: "Hello there,\n\nfriend.".into(),
        },
        &view(&settings),
        at_ms(10, 0, 5, 500),
    );
    let effect = record.pending_effects[0].clone();
    (record, effect)
}

fn ai_conv(id: u64, body: &str, created_at: DateTime<Utc>) -> ObservedConversation {
    ObservedConversation {
        created_at,
        ..conv(id, Author::Ai, body)
    }
}

#[test]
fn find_sent_post_finds_the_ai_conversation_with_the_same_text_ignoring_whitespace() {
    let (record, effect) = pending_reply();
    let candidates = vec![
        ai_conv(7, "Something else", at(10, 0, 6)),
        ai_conv(8, "  Hello there,   friend. ", at(10, 0, 6)),
    ];
    let found = find_sent_post(&record, &effect, &candidates).expect("found");
    assert_eq!(found.id, ConversationId(8));
}

/// `pending_reply`, as stored before effects kept the conversations known when recorded.
fn pending_reply_stored_without_known_conversations() -> (TicketRecord, PendingEffect) {
    let (record, effect) = pending_reply();
    let mut stored = serde_json::to_value(&effect).unwrap();
    stored.as_object_mut().unwrap().remove("recorded_after");
    let effect: PendingEffect = serde_json::from_value(stored).expect("an old effect loads");
    assert_eq!(effect.recorded_after, None);
    (record, effect)
}

#[test]
fn an_effect_stored_without_known_conversations_accepts_a_post_up_to_two_seconds_before_its_second()
{
    let (record, effect) = pending_reply_stored_without_known_conversations();
    let candidates = vec![ai_conv(8, "Hello there, friend.", at(10, 0, 3))];
    assert_eq!(
        find_sent_post(&record, &effect, &candidates).map(|c| c.id),
        Some(ConversationId(8))
    );
}

#[test]
fn an_effect_stored_without_known_conversations_ignores_posts_older_than_itself() {
    let (record, effect) = pending_reply_stored_without_known_conversations();
    let candidates = vec![ai_conv(8, "Hello there, friend.", at(10, 0, 2))];
    assert_eq!(find_sent_post(&record, &effect, &candidates), None);
}

#[test]
fn an_effect_records_the_highest_conversation_id_known() {
    let (_, effect) = pending_reply_after_conversation_50();
    assert_eq!(
        effect.recorded_after,
        Some(KnownConversations {
            last_id: Some(ConversationId(50))
        })
    );
}

#[test]
fn find_sent_post_ignores_conversations_already_mirrored() {
    let (mut record, effect) = pending_reply();
    observe(
        &mut record,
        &observation(
            ticket(),
            vec![ai_conv(8, "Hello there, friend.", at(10, 0, 6))],
        ),
        &view(&settings()),
        at(10, 0, 7),
    );
    let candidates = vec![
        ai_conv(8, "Hello there, friend.", at(10, 0, 6)),
        ai_conv(9, "Hello there, friend.", at(10, 0, 7)),
    ];
    assert_eq!(
        find_sent_post(&record, &effect, &candidates).map(|c| c.id),
        Some(ConversationId(9))
    );
    assert_eq!(find_sent_post(&record, &effect, &candidates[..1]), None);
}

#[test]
fn find_sent_post_ignores_conversations_by_others() {
    let (record, effect) = pending_reply();
    let candidates = vec![
        ObservedConversation {
            author: Author::Agent,
            ..ai_conv(8, "Hello there, friend.", at(10, 0, 6))
        },
        ObservedConversation {
            author: Author::Contact,
            ..ai_conv(9, "Hello there, friend.", at(10, 0, 6))
        },
    ];
    assert_eq!(find_sent_post(&record, &effect, &candidates), None);
}

#[test]
fn find_sent_post_ignores_a_different_text() {
    let (record, effect) = pending_reply();
    let candidates = vec![ai_conv(8, "Hello there, friend!", at(10, 0, 6))];
    assert_eq!(find_sent_post(&record, &effect, &candidates), None);
}

#[test]
fn find_sent_post_never_matches_an_update() {
    let (record, _) = pending_reply();
    let tag = record.pending_effects[1].clone();
    assert!(matches!(tag.kind, EffectKind::UpdateTicket { .. }));
    let candidates = vec![ai_conv(8, "", at(10, 0, 6))];
    assert_eq!(find_sent_post(&record, &tag, &candidates), None);
}

/// A record that mirrored conversation 50 (a customer message), then a pending reply
/// "Hello there, friend." recorded at 10:00:05.500 of our clock.
fn pending_reply_after_conversation_50() -> (TicketRecord, PendingEffect) {
    let settings = settings();
    let mut record = tracked(&ticket());
    observe(
        &mut record,
        &observation(ticket(), vec![contact(50, "Hello?")]),
        &view(&settings),
        at(10, 0, 5),
    );
    respond(
        &mut record,
        Decision::Reply {
            text: "Hello there,\n\nfriend.".into(),
        },
        &view(&settings),
        at_ms(10, 0, 5, 500),
    );
    let effect = record.pending_effects[0].clone();
    (record, effect)
}

#[test]
fn find_sent_post_finds_a_post_above_the_known_conversations_even_when_our_clock_is_ahead() {
    let (record, effect) = pending_reply_after_conversation_50();
    // Freshdesk's clock is 10 s behind ours: the post is stamped before the effect was recorded.
    let candidates = vec![ai_conv(
        51,
        "Hello there, friend.",
        at(10, 0, 5) - Duration::seconds(10),
    )];
    assert_eq!(
        find_sent_post(&record, &effect, &candidates).map(|c| c.id),
        Some(ConversationId(51))
    );
}

#[test]
fn find_sent_post_ignores_a_conversation_that_existed_when_the_effect_was_recorded() {
    let (record, effect) = pending_reply_after_conversation_50();
    // Same text, stamped later, but its id shows Freshdesk held it before the effect existed.
    let candidates = vec![ai_conv(49, "Hello there, friend.", at(10, 0, 6))];
    assert_eq!(find_sent_post(&record, &effect, &candidates), None);
}

#[test]
fn find_sent_post_matches_a_post_freshdesk_appended_a_signature_to() {
    let (record, effect) = pending_reply();
    let candidates = vec![ai_conv(
        8,
        "Hello there,\nfriend.\n\n-- Acme support\nhere to help",
        at(10, 0, 6),
    )];
    assert_eq!(
        find_sent_post(&record, &effect, &candidates).map(|c| c.id),
        Some(ConversationId(8))
    );
}

#[test]
fn find_sent_post_matches_a_post_whose_text_spells_entities_another_way() {
    let settings = settings();
    let mut record = asked(&settings, ticket());
    respond(
        &mut record,
        Decision::Reply {
            text: "Don't & \"won't\"".into(),
        },
        &view(&settings),
        at(10, 0, 5),
    );
    let effect = record.pending_effects[0].clone();
    let candidates = vec![ai_conv(
        8,
        "Don&#39;t&nbsp;&#38; &#34;won&#x27;t&quot;",
        at(10, 0, 6),
    )];
    assert_eq!(
        find_sent_post(&record, &effect, &candidates).map(|c| c.id),
        Some(ConversationId(8))
    );
}

#[test]
fn find_sent_post_ignores_a_post_of_the_other_kind() {
    let (record, effect) = pending_reply();
    let candidates = vec![ObservedConversation {
        private: true,
        note: true,
        ..ai_conv(8, "Hello there, friend.", at(10, 0, 6))
    }];
    assert_eq!(
        find_sent_post(&record, &effect, &candidates),
        None,
        "a private note is not the reply"
    );
}

#[test]
fn find_sent_post_matches_an_assist_draft_with_its_footer() {
    let settings = OrgSettings {
        channels: ChannelModes {
            email: ChannelMode::Assist,
            ..ChannelModes::default()
        },
        assist_footer: Some(FOOTER.into()),
        ..settings()
    };
    let mut record = asked(&settings, ticket());
    respond(
        &mut record,
        Decision::Reply {
            text: "Draft".into(),
        },
        &view(&settings),
        at(10, 0, 5),
    );
    let effect = record.pending_effects[0].clone();
    let note = |id, body: &str| ObservedConversation {
        private: true,
        note: true,
        ..ai_conv(id, body, at(10, 0, 6))
    };
    let with_footer = note(8, &format!("Draft {FOOTER}"));
    let without = note(9, "Draft");
    assert_eq!(
        find_sent_post(&record, &effect, &[without, with_footer]).map(|c| c.id),
        Some(ConversationId(8))
    );
}

// ---------------------------------------------------------------------------------------------
// resume
// ---------------------------------------------------------------------------------------------

#[test]
fn resume_gives_the_ticket_back_to_the_ai_without_answering_old_messages() {
    let settings = settings();
    let org = OrgView {
        max_ai_answers: 1,
        ..view(&settings)
    };
    let mut record = answered(&settings);
    // The limit is reached: the next message hands off.
    observe(
        &mut record,
        &observation(ticket(), vec![contact(1, "Hello?")]),
        &org,
        at(10, 2, 0),
    );
    assert_eq!(session(&record).state, SessionState::HandedOff);
    send_all(&mut record, 300);
    // A message while handed off.
    observe(
        &mut record,
        &observation(ticket(), vec![contact(2, "Anyone?")]),
        &org,
        at(10, 3, 0),
    );

    resume(&mut record, at(10, 4, 0));
    let s = session(&record);
    assert_eq!(s.state, SessionState::AiActive);
    assert_eq!(s.handoff, None);
    assert_eq!(s.updated_at, at(10, 4, 0));
    assert_eq!(record.ai.answers, 0);
    assert_eq!(record.ai.considered, s.messages.len());
    assert!(record.pending_effects.is_empty());

    let nothing = observe(
        &mut record,
        &observation(ticket(), vec![]),
        &org,
        at(10, 5, 0),
    );
    assert_eq!(nothing.ask, None);
    let next = observe(
        &mut record,
        &observation(ticket(), vec![contact(3, "Back?")]),
        &org,
        at(10, 6, 0),
    );
    let ask = next.ask.expect("the next contact message is answered");
    assert_eq!(ask.transcript.last().unwrap().body_text, "Back?");
}

#[test]
fn resume_of_a_human_active_session_makes_it_ai_active() {
    let settings = settings();
    let mut record = answered(&settings);
    observe(
        &mut record,
        &observation(ticket(), vec![conv(1, Author::Agent, "Mine")]),
        &view(&settings),
        at(10, 2, 0),
    );
    resume(&mut record, at(10, 3, 0));
    assert_eq!(session(&record).state, SessionState::AiActive);
    assert!(record.ai.tagged, "tags stay once per ticket");
}

// ---------------------------------------------------------------------------------------------
// text_to_html and summarize
// ---------------------------------------------------------------------------------------------

#[test]
fn html_to_text_reads_freshdesk_markup_as_plain_text() {
    assert_eq!(
        html_to_text(
            "<div dir=\"ltr\"><p>Don&#39;t &#38; &quot;won&#x27;t&quot;</p>\
             <p>a<br/>b &lt;c&gt;</p><div class=\"signature\"><br>-- Acme</div></div>"
        ),
        "Don't & \"won't\"\na\nb <c>\n\n-- Acme"
    );
    assert_eq!(html_to_text("a < b &unknown; c"), "a < b &unknown; c");
    assert_eq!(
        html_to_text(&text_to_html("One\n\nTwo & three")),
        "One\nTwo & three"
    );
}

#[test]
fn text_to_html_escapes_markup() {
    assert_eq!(
        text_to_html("a < b & \"c\" > d"),
        "<p>a &lt; b &amp; &quot;c&quot; &gt; d</p>"
    );
    assert_eq!(text_to_html("&lt;"), "<p>&amp;lt;</p>");
}

#[test]
fn text_to_html_builds_paragraphs_and_line_breaks() {
    assert_eq!(
        text_to_html("Hello\nworld\n\nBye"),
        "<p>Hello<br>world</p><p>Bye</p>"
    );
    assert_eq!(
        text_to_html("\n\n\n\n  One  \n\n   \n\nTwo\n\n"),
        "<p>One</p><p>Two</p>"
    );
    assert_eq!(text_to_html(""), "");
}

fn msg(author: Author, body: &str) -> Message {
    Message {
        conversation_id: None,
        author,
        private: false,
        note: false,
        body_text: body.into(),
        created_at: at(10, 0, 0),
    }
}

#[test]
fn summarize_clips_long_messages_to_200_characters() {
    let long = "é".repeat(250);
    let summary = summarize(&[msg(Author::Contact, &long)]);
    assert_eq!(
        summary,
        format!(
            "1 messages in the thread. The customer wrote: \"{}…\".",
            "é".repeat(200)
        )
    );
    let exact = "x".repeat(200);
    assert_eq!(
        summarize(&[msg(Author::Contact, &exact)]),
        format!("1 messages in the thread. The customer wrote: \"{exact}\".")
    );
}

#[test]
fn summarize_names_the_first_and_latest_customer_messages_with_whitespace_collapsed() {
    let summary = summarize(&[
        msg(Author::Contact, "I   cannot\n\nlog in"),
        msg(Author::Ai, "Reset it"),
        msg(Author::Agent, "note"),
        msg(Author::Contact, "Still\tbroken"),
    ]);
    assert_eq!(
        summary,
        "4 messages in the thread. The customer first wrote: \"I cannot log in\". Latest: \"Still broken\"."
    );
}

#[test]
fn summarize_without_customer_messages_counts_the_thread() {
    assert_eq!(
        summarize(&[msg(Author::Ai, "x")]),
        "1 messages in the thread."
    );
    assert_eq!(summarize(&[]), "0 messages in the thread.");
}

// ---------------------------------------------------------------------------------------------
// Gate reasons, import eligibility and the "predates the connection" rule
// ---------------------------------------------------------------------------------------------

#[test]
fn gate_reasons_are_stored_as_the_same_text_as_before() {
    let texts = [
        (GateReason::SelfTest, "self-test ticket"),
        (
            GateReason::PredatesConnection,
            "created before the organization connected and not imported by the backfill",
        ),
        (
            GateReason::Assignment(AssignmentReason::AutoHandleAll),
            "auto_handle_all is on",
        ),
        (
            GateReason::Assignment(AssignmentReason::AssignedToAi),
            "assigned to the AI agent",
        ),
        (
            GateReason::Assignment(AssignmentReason::DefaultGroup),
            "in the default group",
        ),
        (
            GateReason::Assignment(AssignmentReason::NotAssigned),
            "auto_handle_all is off and the ticket is neither assigned to the AI agent nor in the default group",
        ),
        (
            GateReason::Backfill(AssignmentReason::AssignedToAi),
            "backfill: assigned to the AI agent",
        ),
        (
            GateReason::Other("written by another version".into()),
            "written by another version",
        ),
    ];
    for (reason, text) in texts {
        assert_eq!(reason.to_string(), text);
        assert_eq!(serde_json::to_value(&reason).unwrap(), json!(text));
        let read: GateReason = serde_json::from_value(json!(text)).unwrap();
        assert_eq!(read, reason, "{text}");
    }
}

#[test]
fn an_unknown_backfill_reason_is_kept_verbatim() {
    let read: GateReason = serde_json::from_value(json!("backfill: something else")).unwrap();
    assert_eq!(read, GateReason::Other("backfill: something else".into()));
    assert_eq!(read.to_string(), "backfill: something else");
}

#[test]
fn the_gate_and_the_import_gate_give_typed_reasons() {
    let settings = settings();
    let old = ObservedTicket {
        created_at: at(8, 0, 0),
        ..ticket()
    };
    assert_eq!(
        gate(&old, &view(&settings), at(10, 0, 5)).reason,
        GateReason::PredatesConnection
    );
    assert_eq!(
        gate(&ticket(), &view(&settings), at(10, 0, 5)).reason,
        GateReason::Assignment(AssignmentReason::AutoHandleAll)
    );
    assert_eq!(
        import_gate(&old, &view(&settings), at(10, 0, 5)).reason,
        GateReason::Backfill(AssignmentReason::AutoHandleAll)
    );
}

#[test]
fn predating_the_connection_compares_whole_seconds() {
    let connected = at_ms(10, 0, 0, 700);
    assert!(predates_connection(at(9, 59, 59), connected));
    assert!(!predates_connection(at(10, 0, 0), connected));
    assert!(!predates_connection(at(10, 0, 1), connected));
}

fn ignored_because(reason: GateReason) -> TicketRecord {
    TicketRecord::new(
        OrgId::new(),
        TicketId(7),
        GateDecision {
            decision: GateOutcome::Ignored,
            reason,
            at: at(10, 0, 0),
        },
    )
}

#[test]
fn an_unknown_ticket_or_one_ignored_for_predating_the_connection_may_be_imported() {
    assert!(import_eligible(None));
    let predates = ignored_because(GateReason::PredatesConnection);
    assert!(import_eligible(Some(&predates)));
    // A record stored by an older version (plain text) reads back as the same reason.
    let stored = serde_json::to_value(&predates).unwrap();
    let read: TicketRecord = serde_json::from_value(stored).unwrap();
    assert!(import_eligible(Some(&read)));
}

#[test]
fn a_ticket_live_traffic_decided_about_is_not_imported() {
    assert!(!import_eligible(Some(&tracked(&ticket()))));
    let not_assigned = ignored_because(GateReason::Assignment(AssignmentReason::NotAssigned));
    assert!(!import_eligible(Some(&not_assigned)));
    let backfill = ignored_because(GateReason::Backfill(AssignmentReason::NotAssigned));
    assert!(!import_eligible(Some(&backfill)));
}

#[test]
fn the_backfill_wants_open_or_pending_tickets_of_its_window_created_before_the_connection() {
    let window = at(8, 0, 0);
    let connected = at_ms(10, 0, 0, 700);
    let wants =
        |status: u8, created, updated| backfill_wants(status, created, updated, window, connected);
    assert!(wants(2, at(7, 0, 0), at(9, 0, 0)));
    assert!(wants(3, at(7, 0, 0), at(8, 0, 0)));
    assert!(!wants(4, at(7, 0, 0), at(9, 0, 0)), "resolved");
    assert!(!wants(5, at(7, 0, 0), at(9, 0, 0)), "closed");
    assert!(!wants(2, at(7, 0, 0), at(7, 59, 59)), "outside the window");
    assert!(!wants(2, at(10, 0, 0), at(10, 0, 0)), "live traffic");
    assert!(wants(2, at(9, 59, 59), at(10, 0, 0)));
}

// ---------------------------------------------------------------------------------------------
// Responder failure, refused assignee, disconnect
// ---------------------------------------------------------------------------------------------

#[test]
fn a_failed_responder_hands_off_with_the_summary_and_the_error() {
    let settings = settings();
    let mut record = tracked(&ticket());
    let request = observe(
        &mut record,
        &observation(ticket(), vec![]),
        &view(&settings),
        at(10, 0, 2),
    )
    .ask
    .expect("the description is answered");
    assert_eq!(
        responder_failed(&request, "timed out"),
        Decision::Handoff {
            reason: HandoffReason::Other,
            summary: format!(
                "{} The AI could not answer (timed out).",
                summarize(&request.transcript)
            ),
        }
    );
}

#[test]
fn a_refused_assignee_on_a_route_with_a_fallback_falls_back() {
    let settings = settings_with_routing(Routing::Agent, Some(MARKER));
    let mut record = hand_off_with(&settings);
    let note = record.pending_effects[0].clone();
    effect_sent(&mut record, note.id, None);
    let route_id = route_effect_id(&record);
    let route = record
        .pending_effects
        .iter()
        .find(|e| e.id == route_id)
        .cloned()
        .unwrap();
    let mut expected = record.clone();
    route_rejected(&mut expected, route.id, "invalid", at(10, 5, 1));
    assignee_rejected(&mut record, &route, "invalid", at(10, 5, 1));
    // Same outcome except for the fallback's fresh effect id.
    assert_eq!(kinds(&record), kinds(&expected));
    assert_eq!(session(&record).handoff, session(&expected).handoff);
    assert_eq!(record.last_error, None);
}

#[test]
fn a_refused_assignee_on_any_other_write_abandons_it() {
    let settings = settings_with_routing(Routing::Automation, Some(MARKER));
    let mut record = hand_off_with(&settings);
    let note = record.pending_effects[0].clone();
    let mut expected = record.clone();
    effect_abandoned(&mut expected, note.id, "invalid", at(10, 5, 1));
    assignee_rejected(&mut record, &note, "invalid", at(10, 5, 1));
    assert_eq!(record, expected);
    assert!(record.pending_effects.iter().all(|e| e.id != note.id));
    assert_eq!(record.last_error.as_ref().unwrap().message, "invalid");
}

#[test]
fn a_disconnect_cancels_the_whole_outbox_and_says_why() {
    let settings = settings_with_routing(Routing::Agent, Some(MARKER));
    let mut record = hand_off_with(&settings);
    assert!(!record.pending_effects.is_empty());
    assert!(cancel_outbox_on_disconnect(&mut record, at(10, 6, 0)));
    assert!(record.pending_effects.is_empty());
    assert_eq!(
        record.last_error,
        Some(ErrorNote {
            at: at(10, 6, 0),
            message: "pending writes cancelled: the organization is disconnected".into(),
        })
    );
}

#[test]
fn a_disconnect_with_an_empty_outbox_changes_nothing() {
    let settings = settings();
    let mut record = answered(&settings);
    let before = record.clone();
    assert!(!cancel_outbox_on_disconnect(&mut record, at(10, 6, 0)));
    assert_eq!(record, before);
}

// ---------------------------------------------------------------------------------------------
// Stored ticket updates
// ---------------------------------------------------------------------------------------------

#[test]
fn ticket_updates_stored_as_plain_json_objects_read_back_and_are_written_the_same() {
    // Outbox records as the version that kept the update as an untyped JSON object stored
    // them: a handoff routing to a group with its fallback, a tag update and a resolve.
    let stored = [
        r#"{"id":"6f1c1f0e-2a55-4f5e-9a43-0d1f7a3b9c21","kind":"update_ticket","update":{"custom_fields":{"cf_opencx_handed_off_1234":true},"group_id":66,"responder_id":null,"status":2},"purpose":"route","fallback":{"custom_fields":{"cf_opencx_handed_off_1234":true},"responder_id":null,"status":2},"attempts":1,"created_at":"2024-05-01T10:05:00Z","last_attempt_at":null,"recorded_after":{"last_id":7}}"#,
        r#"{"id":"0b8a4c6e-7d2f-4a1b-8e3c-5f6d7e8f9a0b","kind":"update_ticket","update":{"tags":["vip","opencx","opencx_autopilot"]},"purpose":"tag","attempts":0,"created_at":"2024-05-01T10:00:03Z","last_attempt_at":null,"recorded_after":null}"#,
        r#"{"id":"1c2d3e4f-5a6b-4c7d-8e9f-a0b1c2d3e4f5","kind":"update_ticket","update":{"status":4},"purpose":"resolve","attempts":0,"created_at":"2024-05-01T10:00:03Z","last_attempt_at":null,"recorded_after":null}"#,
        r#"{"id":"2d3e4f5a-6b7c-4d8e-9fa0-b1c2d3e4f5a6","kind":"update_ticket","update":{"responder_id":555,"status":2},"purpose":"route","fallback":{"responder_id":null,"status":2},"attempts":0,"created_at":"2024-05-01T10:05:00Z"}"#,
    ];
    let read: Vec<PendingEffect> = stored
        .iter()
        .map(|json| serde_json::from_str(json).unwrap())
        .collect();
    let marker = || {
        Some(serde_json::Map::from_iter([(
            MARKER.to_string(),
            Value::Bool(true),
        )]))
    };
    let unassign = TicketUpdate {
        custom_fields: marker(),
        responder_id: Some(None),
        status: Some(TicketStatus::Open),
        ..TicketUpdate::default()
    };
    assert_eq!(
        read[0].kind,
        EffectKind::UpdateTicket {
            update: TicketUpdate {
                group_id: Some(Some(GroupId(66))),
                ..unassign.clone()
            },
            purpose: UpdatePurpose::Route {
                fallback: Some(unassign),
            },
        }
    );
    assert_eq!(read[0].attempts, 1);
    assert_eq!(read[0].created_at, at(10, 5, 0));
    assert_eq!(
        read[1].kind,
        EffectKind::UpdateTicket {
            update: TicketUpdate {
                tags: Some(vec![
                    "vip".into(),
                    "opencx".into(),
                    "opencx_autopilot".into()
                ]),
                ..TicketUpdate::default()
            },
            purpose: UpdatePurpose::Tag,
        }
    );
    assert_eq!(
        read[2].kind,
        EffectKind::UpdateTicket {
            update: TicketUpdate {
                status: Some(TicketStatus::Resolved),
                ..TicketUpdate::default()
            },
            purpose: UpdatePurpose::Resolve,
        }
    );
    assert_eq!(
        read[3].kind,
        EffectKind::UpdateTicket {
            update: TicketUpdate {
                responder_id: Some(Some(AgentId(555))),
                status: Some(TicketStatus::Open),
                ..TicketUpdate::default()
            },
            purpose: UpdatePurpose::Route {
                fallback: Some(TicketUpdate {
                    responder_id: Some(None),
                    status: Some(TicketStatus::Open),
                    ..TicketUpdate::default()
                }),
            },
        }
    );
    // Written back, the updates are the bytes stored (and sent to Freshdesk) before.
    for (json, effect) in stored.iter().zip(&read) {
        let EffectKind::UpdateTicket { update, .. } = &effect.kind else {
            unreachable!()
        };
        let old: Value = serde_json::from_str(json).unwrap();
        assert_eq!(
            serde_json::to_string(update).unwrap(),
            serde_json::to_string(&old["update"]).unwrap()
        );
    }
}

#[test]
fn a_ticket_update_leaves_out_the_fields_it_does_not_change_and_nulls_the_ones_it_clears() {
    assert_eq!(
        serde_json::to_string(&TicketUpdate::default()).unwrap(),
        "{}"
    );
    let clear = TicketUpdate {
        group_id: Some(None),
        responder_id: Some(None),
        ..TicketUpdate::default()
    };
    assert_eq!(
        serde_json::to_string(&clear).unwrap(),
        r#"{"group_id":null,"responder_id":null}"#
    );
    assert_eq!(
        serde_json::from_str::<TicketUpdate>(r#"{"group_id":null,"responder_id":null}"#).unwrap(),
        clear
    );
    assert_eq!(
        serde_json::from_str::<TicketUpdate>("{}").unwrap(),
        TicketUpdate::default()
    );
}

// ---------------------------------------------------------------------------------------------
// Resend window
// ---------------------------------------------------------------------------------------------

#[test]
fn a_post_never_attempted_may_be_sent_at_once() {
    let settings = settings_with_routing(Routing::Agent, Some(MARKER));
    let record = hand_off_with(&settings);
    let effect = record.pending_effects[0].clone();
    assert_eq!(effect.last_attempt_at, None);
    assert_eq!(
        resend_wait(&effect, std::time::Duration::from_secs(40), at(10, 6, 0)),
        None
    );
}

#[test]
fn a_post_attempted_within_the_settle_time_waits_for_the_rest_of_it() {
    let settings = settings_with_routing(Routing::Agent, Some(MARKER));
    let record = hand_off_with(&settings);
    let effect = PendingEffect {
        last_attempt_at: Some(at(10, 6, 0)),
        ..record.pending_effects[0].clone()
    };
    let settle = std::time::Duration::from_secs(40);
    assert_eq!(
        resend_wait(&effect, settle, at(10, 6, 30)),
        Some(std::time::Duration::from_secs(10))
    );
    assert_eq!(resend_wait(&effect, settle, at(10, 6, 40)), None);
    assert_eq!(resend_wait(&effect, settle, at(10, 7, 0)), None);
}

// ---------------------------------------------------------------------------------------------
// Ticket statuses
// ---------------------------------------------------------------------------------------------

#[test]
fn built_in_statuses_keep_their_freshdesk_ids_and_names() {
    use crate::freshdesk::TicketStatus;
    for (status, id, name) in [
        (TicketStatus::Open, 2, "Open"),
        (TicketStatus::Pending, 3, "Pending"),
        (TicketStatus::Resolved, 4, "Resolved"),
        (TicketStatus::Closed, 5, "Closed"),
    ] {
        assert_eq!(status.id(), id);
        assert_eq!(TicketStatus::from_id(id), Some(status));
        assert_eq!(status.builtin_name(), Some(name));
        assert_eq!(serde_json::to_value(status).unwrap(), json!(id));
    }
    assert_eq!(TicketStatus::from_id(6), None);
    assert!(open_or_pending(2) && open_or_pending(3));
    assert!(!open_or_pending(4) && !open_or_pending(5) && !open_or_pending(6));
    assert!(is_resolved_or_closed(4) && is_resolved_or_closed(5));
    assert!(!is_resolved_or_closed(2) && !is_resolved_or_closed(7));
}

#[test]
fn any_other_status_id_is_a_custom_status_kept_as_its_plain_number() {
    for id in [0, 1, 6, 7, 255] {
        let status = TicketStatus::from(id);
        assert_eq!(status, TicketStatus::Custom(id));
        assert_eq!(status.id(), id);
        assert_eq!(status.builtin_name(), None);
        assert_eq!(serde_json::to_value(status).unwrap(), json!(id));
        assert_eq!(
            serde_json::from_value::<TicketStatus>(json!(id)).unwrap(),
            status
        );
    }
    assert_eq!(TicketStatus::from(4), TicketStatus::Resolved);
    assert_eq!(
        serde_json::from_value::<TicketStatus>(json!(3)).unwrap(),
        TicketStatus::Pending
    );
    // Compared by id, whichever way it was built.
    assert_eq!(TicketStatus::Custom(2), TicketStatus::Open);
    assert!(TicketStatus::Custom(5).is_resolved_or_closed());
    assert!(serde_json::from_value::<TicketStatus>(json!(256)).is_err());
}

// ---------------------------------------------------------------------------------------------
// What a re-read fetches (read_plan)
// ---------------------------------------------------------------------------------------------

const REPLY_HINT: Option<&str> = Some("{reply_sent:sent}");

#[test]
fn conversation_hints_on_an_answered_ticket_list_the_conversations_first() {
    let s = settings();
    let record = answered(&s);
    for hints in [
        vec![REPLY_HINT],
        vec![REPLY_HINT, REPLY_HINT],
        vec![Some("{note_type:private}"), Some(" {note_type:public} ")],
        vec![Some("ticket_created"), REPLY_HINT],
        vec![Some("{ticket_action:created}")],
    ] {
        assert_eq!(
            read_plan(Some(&record), hints.clone()),
            ReadPlan::ConversationsFirst,
            "{hints:?}"
        );
    }
}

#[test]
fn any_other_hint_a_sweep_or_a_new_ticket_reads_the_ticket_in_full() {
    let s = settings();
    let record = answered(&s);
    for hints in [
        vec![Some("{status:{from:2,to:4}}")],
        vec![REPLY_HINT, Some("{status:{from:4,to:2}}")],
        vec![Some("{priority:{from:1,to:3}}")],
        vec![Some("")],
        vec![REPLY_HINT, None],
    ] {
        assert_eq!(
            read_plan(Some(&record), hints.clone()),
            ReadPlan::Full,
            "{hints:?}"
        );
    }
    assert_eq!(read_plan(None, [REPLY_HINT]), ReadPlan::Full);
    let ignored = TicketRecord::new(
        OrgId::new(),
        TicketId(42),
        GateDecision {
            decision: GateOutcome::Ignored,
            reason: GateReason::PredatesConnection,
            at: at(10, 0, 1),
        },
    );
    assert_eq!(read_plan(Some(&ignored), [REPLY_HINT]), ReadPlan::Full);
}

#[test]
fn a_customer_message_kept_for_a_reopening_makes_every_hint_a_full_read() {
    // Resolved while the customer's message was new: it stays unconsidered, and only the
    // ticket's status says when it may be answered.
    let s = settings();
    let org = view(&s);
    let mut record = answered(&s);
    let step = observe(
        &mut record,
        &observation(
            with_status(4, "Resolved"),
            vec![contact(101, "Still broken.")],
        ),
        &org,
        at(10, 2, 0),
    );
    assert!(step.ask.is_none());
    assert_eq!(read_plan(Some(&record), [REPLY_HINT]), ReadPlan::Full);
}

#[test]
fn a_read_that_listed_the_conversations_first_claims_no_later_read_in_the_watermark() {
    let s = settings();
    let org = view(&s);
    let mut record = answered(&s);
    // Conversations listed at 10:02:00.100; the ticket, read after, was updated at 10:02:00
    // (perhaps by a message written after the listing); the pass ends at 10:02:05.
    let listed = at_ms(10, 2, 0, 100);
    let read = ObservedTicket {
        updated_at: at(10, 2, 0),
        ..ticket()
    };
    let mut obs = observation(read, vec![contact(101, "And on mobile?")]);
    obs.conversations_listed_first_at = Some(listed);
    observe(&mut record, &obs, &org, at(10, 2, 5));
    assert_eq!(record.watermark.read_at, Some(listed));
    // The sweep, listing the ticket with that `updated_at`, still looks at it.
    assert!(record.watermark.may_be_stale(at(10, 2, 0)));
}

// ---------------------------------------------------------------------------------------------
// Which conversation pages a re-read lists
// ---------------------------------------------------------------------------------------------

#[test]
fn a_listing_starts_at_the_page_holding_the_last_conversation_mirrored() {
    assert_eq!(first_conversations_page(0), 1);
    assert_eq!(first_conversations_page(1), 1);
    assert_eq!(first_conversations_page(99), 1);
    // A full first page: the new ones may be on page 2, or on page 1 once one was deleted.
    assert_eq!(first_conversations_page(100), 1);
    assert_eq!(first_conversations_page(101), 2);
    assert_eq!(first_conversations_page(200), 2);
    assert_eq!(first_conversations_page(201), 3);
}

#[test]
fn a_listing_steps_back_a_page_only_when_it_does_not_start_with_a_mirrored_conversation() {
    // Starts with a mirrored one: nothing before it can be new.
    assert!(!list_page_before(2, Some(true)));
    // Starts with a new one, or finds nothing: conversations were deleted, the later ones
    // moved up, and a new one may be on the page before.
    assert!(list_page_before(2, Some(false)));
    assert!(list_page_before(3, None));
    // Page 1 has nothing before it.
    assert!(!list_page_before(1, Some(false)));
    assert!(!list_page_before(1, None));
}
