//! One tracked ticket: its stored record, the pure state machine over it, and (in `actor`)
//! the actor that sequences reads, decisions and writes.

pub mod actor;
pub mod machine;
pub mod pass;
pub mod state;
