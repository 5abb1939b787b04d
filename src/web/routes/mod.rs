//! Routes grouped by resource; each module exposes its own `configure`. Resource modules share
//! helpers through `shared` only, never by importing one another.

pub mod auth;
pub mod calendar;
pub mod calendar_feeds;
pub mod events;
pub mod ops;
pub mod password;
pub mod projects;
pub mod shared;
pub mod sync;
pub mod tasks;
pub mod tokens;
pub mod users;
pub mod webhooks;

use actix_web::web;

/// Everything under `/api/v1`.
pub fn configure_api(cfg: &mut web::ServiceConfig) {
    // `/users/me…` before the `/users/{user_id}` scope, which would otherwise claim it. One scope
    // serves every resource's alias: a request entering a scope never falls through to another.
    cfg.configure(auth::configure)
        .configure(users::configure)
        .configure(password::configure)
        .configure(tokens::configure)
        .configure(calendar_feeds::configure)
        .configure(projects::routes)
        .configure(tasks::routes)
        .configure(sync::routes)
        .configure(events::routes)
        .configure(webhooks::routes)
        .service(
            web::scope("/users/{user_id}")
                .configure(projects::routes)
                .configure(tasks::routes)
                .configure(sync::routes)
                .configure(events::routes),
        );
}
