//! One tracked ticket: its stored record (`state`), the pure state machine over it
//! (`machine`), one processing pass that sequences reads, decisions and writes (`pass`, with
//! its Freshdesk reads in `read` and its writes in `outbox`), and the actor that runs one pass
//! at a time and supervises it (`actor`).

pub mod actor;
pub mod machine;
mod outbox;
pub(crate) mod pass;
mod read;
pub mod state;
