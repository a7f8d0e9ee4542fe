//! The AI responders (contract §5): implementations of the engine's [`Responder`] port.
//!
//! A responder reads a ticket's public thread and returns one decision: `reply`, `handoff` or
//! `resolve`. Two are provided:
//!
//! - [`BuiltinResponder`] (`kind = "builtin"`): deterministic, driven by the configured
//!   handoff phrases, resolve phrases and FAQ entries;
//! - [`OpenAiResponder`] (`kind = "openai"`): any OpenAI-compatible chat-completions endpoint,
//!   asked for a JSON decision, with timeouts and retries.
//!
//! [`build`] turns the `[responder]` configuration into the one responder the engine uses.
//! Responders are stateless between calls and shared by every ticket actor behind an `Arc`.
//! Adding a responder is one new file here plus one arm in [`build_with_env`].

mod builtin;
mod openai;

pub use builtin::{BuiltinResponder, RESOLVE_TEXT, SUMMARY_MAX_CHARS};
pub use openai::{OpenAiResponder, RETRY_BACKOFF_STEP, SYSTEM_PROMPT};

use crate::config::{ResponderKind, ResponderSettings};
use std::sync::Arc;
use ticketsync_actors::ports::Responder;

/// Why the `[responder]` configuration cannot produce a responder.
///
/// Messages name configuration keys and environment variables, never secret values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResponderConfigError {
    /// `kind = "openai"` without a `[responder.openai]` section.
    #[error("responder.kind = \"openai\" needs a [responder.openai] section")]
    MissingOpenAiSection,
    /// The environment variable that should hold the OpenAI API key is unset or empty.
    #[error(
        "the OpenAI API key is missing: environment variable {var} (responder.openai.api_key_env) is not set or is empty"
    )]
    MissingApiKey {
        /// The variable's name (never its value).
        var: String,
    },
    /// A builtin responder setting is unusable (an empty phrase, an FAQ entry without keywords).
    #[error("invalid builtin responder configuration: {0}")]
    InvalidBuiltin(String),
    /// An OpenAI responder setting is unusable (an empty model, zero attempts, a bad URL).
    #[error("invalid OpenAI responder configuration: {0}")]
    InvalidOpenAi(String),
}

/// Build the configured responder, reading the OpenAI API key (if any) from the process
/// environment. `http` is used by responders that call out over HTTP; per-request timeouts are
/// set by the responder itself, so a shared client is fine.
pub fn build(
    settings: &ResponderSettings,
    http: reqwest::Client,
) -> Result<Arc<dyn Responder>, ResponderConfigError> {
    build_with_env(settings, http, |name| std::env::var(name).ok())
}

/// [`build`] with an explicit environment lookup (`name → value`), for tests and embedding.
pub fn build_with_env(
    settings: &ResponderSettings,
    http: reqwest::Client,
    env: impl Fn(&str) -> Option<String>,
) -> Result<Arc<dyn Responder>, ResponderConfigError> {
    Ok(match settings.kind {
        ResponderKind::Builtin => Arc::new(BuiltinResponder::from_settings(settings)?),
        ResponderKind::Openai => {
            let openai = settings
                .openai
                .as_ref()
                .ok_or(ResponderConfigError::MissingOpenAiSection)?;
            let api_key = env(&openai.api_key_env)
                .filter(|v| !v.trim().is_empty())
                .ok_or_else(|| ResponderConfigError::MissingApiKey {
                    var: openai.api_key_env.clone(),
                })?;
            Arc::new(OpenAiResponder::new(openai, api_key.into(), http)?)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::OpenAiSettings;

    fn settings(kind: ResponderKind) -> ResponderSettings {
        ResponderSettings {
            kind,
            handoff_phrases: vec!["human".into()],
            resolve_phrases: vec!["problem solved".into()],
            faq: vec![],
            openai: Some(OpenAiSettings {
                base_url: "http://127.0.0.1:9/v1".into(),
                model: "m".into(),
                api_key_env: "TICKETSYNC_TEST_OPENAI_KEY".into(),
                timeout_ms: 1000,
                max_attempts: 2,
            }),
        }
    }

    #[test]
    fn the_builtin_kind_builds_without_any_environment() {
        let built = build_with_env(
            &settings(ResponderKind::Builtin),
            reqwest::Client::new(),
            |_| None,
        );
        assert!(built.is_ok());
    }

    #[test]
    fn the_openai_kind_reads_its_key_from_the_named_variable() {
        let built = build_with_env(
            &settings(ResponderKind::Openai),
            reqwest::Client::new(),
            |name| (name == "TICKETSYNC_TEST_OPENAI_KEY").then(|| "sk-secret-value".to_string()),
        );
        assert!(built.is_ok());
    }

    #[test]
    fn a_missing_or_empty_key_names_the_variable_but_not_a_value() {
        for value in [None, Some("".to_string()), Some("  ".to_string())] {
            let err = build_with_env(
                &settings(ResponderKind::Openai),
                reqwest::Client::new(),
                |_| value.clone(),
            )
            .err()
            .expect("no key is a configuration error");
            assert_eq!(
                err,
                ResponderConfigError::MissingApiKey {
                    var: "TICKETSYNC_TEST_OPENAI_KEY".into()
                }
            );
            assert!(err.to_string().contains("TICKETSYNC_TEST_OPENAI_KEY"));
        }
    }

    #[test]
    fn the_openai_kind_without_its_section_is_an_error() {
        let mut s = settings(ResponderKind::Openai);
        s.openai = None;
        let err = build_with_env(&s, reqwest::Client::new(), |_| Some("k".into()))
            .err()
            .expect("no section is an error");
        assert_eq!(err, ResponderConfigError::MissingOpenAiSection);
    }
}
