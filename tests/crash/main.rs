//! Crash and fault tests (contract §3, §8): the real `ticketsync` binary as a child process,
//! SIGKILLed at random points and started again on the same data directory, against the
//! in-process Freshdesk simulator with retried webhook deliveries and injected API faults.
//!
//! Every test names its guarantee; waits poll with a deadline, never a fixed sleep. The RNG
//! seed of the kill schedule is printed and can be replayed with `CRASH_SEED=<n>`. Run with
//! `cargo test --test crash -- --nocapture` to see the numbers of each run.

mod proxy;
mod support;

mod faults;
mod kills;
mod restart;
