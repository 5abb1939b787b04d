//! Routes grouped by resource; each module exposes its own `configure`.

pub mod auth;
pub mod ops;
pub mod users;

/// Everything under `/api/v1`.
pub fn configure_api(cfg: &mut actix_web::web::ServiceConfig) {
    cfg.configure(auth::configure).configure(users::configure);
}
