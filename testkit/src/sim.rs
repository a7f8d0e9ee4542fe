//! The Freshdesk simulator's seed data the tests speak of, and the builtin FAQ of the
//! repository's `config.toml`.

/// The simulator's admin AI agent ("OpenCX AI", Account Administrator).
pub const AI_AGENT_ID: u64 = freshdesk_sim::AI_AGENT_ID;
/// The AI agent's API key.
pub const AI_KEY: &str = freshdesk_sim::ADMIN_KEY;
/// A non-admin agent's key (agent 43: `GET /roles` answers 403).
pub const PLAIN_AGENT_KEY: &str = freshdesk_sim::AGENT_KEY;
/// A human agent, Alice.
pub const ALICE_ID: u64 = 44;
/// The simulator's groups.
pub const SUPPORT_GROUP: u64 = 7;
pub const BILLING_GROUP: u64 = 8;
/// The simulator's suffixed checkbox field (the handoff marker).
pub const MARKER_FIELD: &str = "cf_opencx_handed_off_1234";

/// A question the builtin FAQ answers, and the start of its answer.
pub const FAQ_QUESTION: &str = "How do I reset my password?";
pub const FAQ_ANSWER: &str = "You can reset your password from the sign-in page";
