//! One integration test binary, so the crate graph links once.

mod helpers;
mod ops;
mod worker;
