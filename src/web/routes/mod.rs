//! Routes grouped by resource; each module exposes its own `configure`.

pub mod auth;
pub mod ops;
pub mod tasks;
pub mod users;

/// Everything under `/api/v1`.
pub fn configure_api(cfg: &mut actix_web::web::ServiceConfig) {
    // `/users/me…` before the `/users/{user_id}` task scope, which would otherwise claim it.
    cfg.configure(auth::configure).configure(users::configure).configure(tasks::configure);
}
