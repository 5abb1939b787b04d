//! One integration test binary, so the crate graph links once.

mod auth;
mod errors;
mod external_auth;
mod helpers;
mod ops;
mod users;
mod worker;
