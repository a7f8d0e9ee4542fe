//! ticketsync, the service: configuration, startup and wiring, the HTTP surface, the Freshdesk
//! client, the sled store and the responders. The engine itself lives in `ticketsync_actors`.

pub mod access;
pub mod cluster;
pub mod config;
pub mod connect;
pub mod connected_orgs;
pub mod console;
pub mod demo;
pub mod freshdesk;
pub mod http;
pub mod inspect;
pub mod metrics;
pub mod org_connections;
pub mod org_erasure;
pub mod responder;
pub mod secrets;
pub mod selftest;
pub mod startup;
pub mod store;
pub mod telemetry;
