//! The ticketsync engine.
//!
//! This crate holds the domain model, the Freshdesk data model the engine reads, and the ports
//! (traits) the engine needs from the outside world. It knows nothing of actix-web, reqwest or
//! sled: the service crate implements the ports.

pub mod engine;
pub mod freshdesk;
pub mod ids;
pub mod metrics;
pub mod org;
pub mod ports;
pub mod session;
pub mod ticket;

pub use engine::{Engine, EngineConfig, EngineParts};
pub use ids::*;
pub use org::OrgPause;
