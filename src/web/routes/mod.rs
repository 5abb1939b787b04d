//! Routes grouped by resource; each module exposes its own `configure`.

pub mod ops;

/// Everything under `/api/v1`.
pub fn configure_api(_cfg: &mut actix_web::web::ServiceConfig) {}
