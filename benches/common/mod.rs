//! Shared by the benchmarks (each bench compiles this module on its own and uses only some of
//! it).
//!
//! Benchmarks measure and print; they never assert on timing.

#![allow(dead_code)]

mod world;

pub use world::*;
