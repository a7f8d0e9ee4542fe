//! Black-box tests: the real service over HTTP against the Freshdesk simulator.

mod harness;

mod access;
mod connect;
mod console;
mod console_client;
mod console_pages;
mod echoes;
mod flow;
mod intake;
mod lifecycle;
mod metrics_format;
mod migrate;
mod openapi;
mod org_health;
mod routing;
mod selftest;
mod thread;
