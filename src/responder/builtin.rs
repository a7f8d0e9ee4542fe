//! The builtin responder (contract §5): deterministic rules over the customer's latest message.
//!
//! Only the latest public contact message of the transcript is read; earlier messages (and
//! anything agents or the AI wrote) never influence the decision. In order:
//!
//! 1. it contains a handoff phrase → `handoff customer_requested`;
//! 2. it contains a resolve phrase → `resolve` with [`RESOLVE_TEXT`];
//! 3. the first FAQ entry whose keywords all occur in it → `reply` with that entry's answer;
//! 4. otherwise (or when the transcript has no contact message) → `handoff missing_knowledge`.
//!
//! All matching is case-insensitive *substring* matching: phrases and keywords are found
//! anywhere in the message, also inside longer words (`"reset"` matches `"resetting"`,
//! `"agent"` matches `"agents"`). Whole-word matching was considered and rejected: it needs a
//! notion of word boundaries that differs by language, and configured phrases like
//! `"real person"` span words anyway. Keep phrases specific enough for substring matching.

use super::ResponderConfigError;
use crate::config::ResponderSettings;
use async_trait::async_trait;
use ticketsync_actors::ports::{Responder, ResponderFailure};
use ticketsync_actors::session::{Author, HandoffReason, Message};
use ticketsync_actors::ticket::machine::{Decision, ResponderRequest};

/// The public text posted when the customer says their problem is solved.
pub const RESOLVE_TEXT: &str = "Glad that solved it. I'm marking this ticket as resolved.";

/// How many characters of the customer's message a handoff summary quotes at most.
pub const SUMMARY_MAX_CHARS: usize = 200;

/// One FAQ entry, lowercased once at construction.
#[derive(Debug, Clone)]
struct Faq {
    keywords: Vec<String>,
    answer: String,
}

/// The deterministic responder configured by `[responder]` phrases and `[[responder.faq]]`.
#[derive(Debug, Clone)]
pub struct BuiltinResponder {
    handoff_phrases: Vec<String>,
    resolve_phrases: Vec<String>,
    faq: Vec<Faq>,
}

impl BuiltinResponder {
    /// Build from the `[responder]` settings.
    ///
    /// Phrases and keywords are trimmed and lowercased. An empty phrase or keyword (which would
    /// match every message), an FAQ entry without keywords, or one with an empty answer is a
    /// configuration error.
    pub fn from_settings(settings: &ResponderSettings) -> Result<Self, ResponderConfigError> {
        let handoff_phrases = normalized(&settings.handoff_phrases, "responder.handoff_phrases")?;
        let resolve_phrases = normalized(&settings.resolve_phrases, "responder.resolve_phrases")?;
        let faq = settings
            .faq
            .iter()
            .enumerate()
            .map(|(i, entry)| {
                let key = format!("responder.faq[{i}]");
                let keywords = normalized(&entry.keywords, &format!("{key}.keywords"))?;
                if keywords.is_empty() {
                    return Err(ResponderConfigError::InvalidBuiltin(format!(
                        "{key} has no keywords, so it would answer every message"
                    )));
                }
                let answer = entry.answer.trim();
                if answer.is_empty() {
                    return Err(ResponderConfigError::InvalidBuiltin(format!(
                        "{key} has an empty answer"
                    )));
                }
                Ok(Faq {
                    keywords,
                    answer: answer.to_string(),
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(Self {
            handoff_phrases,
            resolve_phrases,
            faq,
        })
    }

    /// The decision for a transcript (pure; [`Responder::decide`] wraps it).
    pub fn decide_on(&self, transcript: &[Message]) -> Decision {
        let Some(latest) = transcript
            .iter()
            .rev()
            .find(|m| m.author == Author::Contact && !m.private)
        else {
            return Decision::Handoff {
                reason: HandoffReason::MissingKnowledge,
                summary: "There is no customer message to answer.".to_string(),
            };
        };
        let text = latest.body_text.to_lowercase();
        let contains_any = |phrases: &[String]| phrases.iter().any(|p| text.contains(p.as_str()));

        if contains_any(&self.handoff_phrases) {
            return Decision::Handoff {
                reason: HandoffReason::CustomerRequested,
                summary: format!(
                    "The customer asked for a human: \"{}\"",
                    quote(&latest.body_text)
                ),
            };
        }
        if contains_any(&self.resolve_phrases) {
            return Decision::Resolve {
                text: RESOLVE_TEXT.to_string(),
            };
        }
        if let Some(entry) = self
            .faq
            .iter()
            .find(|e| e.keywords.iter().all(|k| text.contains(k.as_str())))
        {
            return Decision::Reply {
                text: entry.answer.clone(),
            };
        }
        Decision::Handoff {
            reason: HandoffReason::MissingKnowledge,
            summary: format!(
                "No configured answer matches the customer's latest message: \"{}\"",
                quote(&latest.body_text)
            ),
        }
    }
}

#[async_trait]
impl Responder for BuiltinResponder {
    async fn decide(&self, request: &ResponderRequest) -> Result<Decision, ResponderFailure> {
        Ok(self.decide_on(&request.transcript))
    }
}

/// Trim and lowercase configured phrases; an empty one is an error naming `key`.
fn normalized(phrases: &[String], key: &str) -> Result<Vec<String>, ResponderConfigError> {
    phrases
        .iter()
        .map(|p| {
            let p = p.trim();
            if p.is_empty() {
                Err(ResponderConfigError::InvalidBuiltin(format!(
                    "{key} contains an empty entry, which would match every message"
                )))
            } else {
                Ok(p.to_lowercase())
            }
        })
        .collect()
}

/// The message on one line (whitespace collapsed), clipped to [`SUMMARY_MAX_CHARS`] characters.
fn quote(body: &str) -> String {
    let one_line = body.split_whitespace().collect::<Vec<_>>().join(" ");
    if one_line.chars().count() <= SUMMARY_MAX_CHARS {
        return one_line;
    }
    let mut clipped: String = one_line.chars().take(SUMMARY_MAX_CHARS - 1).collect();
    clipped.truncate(clipped.trim_end().len());
    clipped.push('…');
    clipped
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{FaqEntry, ResponderKind};
    use chrono::{TimeZone, Utc};

    const PASSWORD_ANSWER: &str = "Use 'Forgot password' on the sign-in page.";
    const BILLING_ANSWER: &str = "Invoices are under Settings → Billing.";

    fn responder() -> BuiltinResponder {
        BuiltinResponder::from_settings(&ResponderSettings {
            kind: ResponderKind::Builtin,
            handoff_phrases: vec![
                "human".into(),
                "agent".into(),
                "representative".into(),
                "real person".into(),
            ],
            resolve_phrases: vec![
                "that solved it".into(),
                "problem solved".into(),
                "issue resolved".into(),
            ],
            faq: vec![
                FaqEntry {
                    keywords: vec!["reset".into(), "password".into()],
                    answer: PASSWORD_ANSWER.into(),
                },
                FaqEntry {
                    keywords: vec!["Invoice".into()],
                    answer: BILLING_ANSWER.into(),
                },
                FaqEntry {
                    keywords: vec!["password".into()],
                    answer: "never chosen: the first entry matches first".into(),
                },
            ],
            openai: None,
        })
        .expect("valid settings")
    }

    fn msg(author: Author, private: bool, body: &str) -> Message {
        Message {
            conversation_id: None,
            author,
            private,
            note: private,
            body_text: body.to_string(),
            created_at: Utc.with_ymd_and_hms(2024, 5, 1, 12, 0, 0).unwrap(),
        }
    }

    fn contact(body: &str) -> Message {
        msg(Author::Contact, false, body)
    }

    fn decide(transcript: &[Message]) -> Decision {
        responder().decide_on(transcript)
    }

    fn reason(decision: &Decision) -> Option<HandoffReason> {
        match decision {
            Decision::Handoff { reason, .. } => Some(*reason),
            _ => None,
        }
    }

    #[test]
    fn a_handoff_phrase_hands_off_as_customer_requested_with_a_quoting_summary() {
        let d = decide(&[contact("Can I talk to a real person?")]);
        assert_eq!(
            d,
            Decision::Handoff {
                reason: HandoffReason::CustomerRequested,
                summary: "The customer asked for a human: \"Can I talk to a real person?\"".into(),
            }
        );
    }

    #[test]
    fn phrases_match_case_insensitively_and_inside_longer_text() {
        assert_eq!(
            reason(&decide(&[contact("HUMAN please!!")])),
            Some(HandoffReason::CustomerRequested)
        );
        assert_eq!(
            reason(&decide(&[contact("Let me speak with your Agents")])),
            Some(HandoffReason::CustomerRequested)
        );
        assert_eq!(
            decide(&[contact("Great, PROBLEM SOLVED, thanks")]),
            Decision::Resolve {
                text: RESOLVE_TEXT.into()
            }
        );
    }

    #[test]
    fn a_handoff_phrase_wins_over_a_resolve_phrase_and_an_faq_match() {
        let d = decide(&[contact(
            "Problem solved for reset password, but I still want a human",
        )]);
        assert_eq!(reason(&d), Some(HandoffReason::CustomerRequested));
    }

    #[test]
    fn a_resolve_phrase_resolves_even_when_an_faq_entry_matches() {
        let d = decide(&[contact("The password reset worked, that solved it!")]);
        assert_eq!(
            d,
            Decision::Resolve {
                text: RESOLVE_TEXT.into()
            }
        );
    }

    #[test]
    fn an_faq_entry_answers_when_all_its_keywords_occur_in_any_case() {
        let d = decide(&[contact("How do I RESET my Password?")]);
        assert_eq!(
            d,
            Decision::Reply {
                text: PASSWORD_ANSWER.into()
            }
        );
        let d = decide(&[contact("where is my invoice")]);
        assert_eq!(
            d,
            Decision::Reply {
                text: BILLING_ANSWER.into()
            }
        );
    }

    #[test]
    fn keywords_match_as_substrings() {
        let d = decide(&[contact("resetting passwords is impossible")]);
        assert_eq!(
            d,
            Decision::Reply {
                text: PASSWORD_ANSWER.into()
            }
        );
    }

    #[test]
    fn an_entry_with_only_some_keywords_present_does_not_answer() {
        // "reset" alone misses entry 0; no other entry matches.
        let d = decide(&[contact("Please reset my account")]);
        assert_eq!(reason(&d), Some(HandoffReason::MissingKnowledge));
    }

    #[test]
    fn the_first_matching_faq_entry_wins() {
        // Both entry 0 (reset + password) and entry 2 (password) match: entry 0 answers.
        let d = decide(&[contact("reset password")]);
        assert_eq!(
            d,
            Decision::Reply {
                text: PASSWORD_ANSWER.into()
            }
        );
        // Only entry 2 matches.
        let d = decide(&[contact("I forgot my password")]);
        assert_eq!(
            d,
            Decision::Reply {
                text: "never chosen: the first entry matches first".into()
            }
        );
    }

    #[test]
    fn an_unknown_question_hands_off_for_missing_knowledge() {
        let d = decide(&[contact("My parcel arrived broken")]);
        assert_eq!(
            d,
            Decision::Handoff {
                reason: HandoffReason::MissingKnowledge,
                summary: "No configured answer matches the customer's latest message: \"My parcel arrived broken\"".into(),
            }
        );
    }

    #[test]
    fn only_the_latest_contact_message_counts() {
        let transcript = [
            contact("I want a human right now"),
            msg(Author::Ai, false, "Sorry, how can I help?"),
            contact("Actually, how do I reset my password?"),
            // Agent and AI messages after it, and private notes, are not the customer's words.
            msg(Author::Agent, false, "A human agent is looking at this"),
            msg(Author::Contact, true, "human please"),
        ];
        assert_eq!(
            decide(&transcript),
            Decision::Reply {
                text: PASSWORD_ANSWER.into()
            }
        );
    }

    #[test]
    fn a_transcript_without_a_contact_message_hands_off_for_missing_knowledge() {
        assert_eq!(reason(&decide(&[])), Some(HandoffReason::MissingKnowledge));
        let only_agents = [
            msg(Author::Agent, false, "reset password"),
            msg(Author::Ai, false, "problem solved"),
        ];
        assert_eq!(
            reason(&decide(&only_agents)),
            Some(HandoffReason::MissingKnowledge)
        );
    }

    #[test]
    fn the_summary_is_one_line_and_clipped() {
        let long = format!("line one\n\n   line two {}", "x".repeat(500));
        let Decision::Handoff { summary, .. } = decide(&[contact(&long)]) else {
            panic!("expected a handoff");
        };
        assert!(!summary.contains('\n'));
        assert!(summary.contains("\"line one line two x"));
        assert!(summary.ends_with("…\""));
        let quoted = summary.split_once('"').unwrap().1.trim_end_matches('"');
        assert_eq!(quoted.chars().count(), SUMMARY_MAX_CHARS);
    }

    #[test]
    fn decisions_are_deterministic() {
        let transcript = [contact("something nobody configured")];
        assert_eq!(decide(&transcript), decide(&transcript));
    }

    #[test]
    fn empty_phrases_and_keywordless_faq_entries_are_rejected() {
        let base = ResponderSettings {
            kind: ResponderKind::Builtin,
            handoff_phrases: vec!["human".into()],
            resolve_phrases: vec![],
            faq: vec![],
            openai: None,
        };
        let mut s = base.clone();
        s.handoff_phrases.push("  ".into());
        assert!(BuiltinResponder::from_settings(&s).is_err());
        let mut s = base.clone();
        s.faq.push(FaqEntry {
            keywords: vec![],
            answer: "a".into(),
        });
        let err = BuiltinResponder::from_settings(&s).unwrap_err();
        assert!(err.to_string().contains("responder.faq[0]"), "{err}");
        let mut s = base;
        s.faq.push(FaqEntry {
            keywords: vec!["k".into()],
            answer: " ".into(),
        });
        assert!(BuiltinResponder::from_settings(&s).is_err());
    }

    #[actix_rt::test]
    async fn the_port_returns_the_same_decision() {
        let request = ResponderRequest {
            channel: ticketsync_actors::org::Channel::Email,
            subject: "Help".into(),
            transcript: vec![contact("reset password")],
        };
        assert_eq!(
            responder().decide(&request).await.unwrap(),
            Decision::Reply {
                text: PASSWORD_ANSWER.into()
            }
        );
    }
}
