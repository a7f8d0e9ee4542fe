//! Freshdesk: the domain guard and the HTTP client.
//!
//! - [`domain`] turns an admin-entered host into a [`FreshdeskDomain`] under the configured
//!   [`DomainPolicy`]; it is the only way a Freshdesk URL is built, which makes it the
//!   service's guard against server-side request forgery.
//! - [`client`] implements the engine's `FreshdeskApi` port
//!   (`ticketsync_actors::freshdesk`) with reqwest: Basic auth with the org's API key, status
//!   codes mapped to `FreshdeskError`, rate-limit headers and pagination read from every
//!   response, and a [`CallObserver`] hook for metrics and the per-org rate budget.

pub mod client;
pub mod domain;

pub use client::{
    build_http_client, CallObserver, CallOutcome, CallRecord, FreshdeskClient, NewTicket,
};
pub use domain::{DomainError, DomainPolicy, FreshdeskDomain};
