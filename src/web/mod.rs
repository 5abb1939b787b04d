//! Web-only code: routes, middleware, the HTTP error type and startup. The worker crate builds
//! the library without the `web` feature, so none of this is reachable from it.

pub mod actors;
pub mod auth;
mod body_guard;
pub mod dav;
pub mod events;
pub mod extractors;
pub mod json;
mod listener;
pub mod mcp;
mod methods;
pub mod openapi;
pub mod pages;
pub mod problem;
pub mod query;
pub mod rate_limit;
pub mod reads;
pub mod request_id;
pub mod routes;
mod security_headers;
pub mod startup;
pub mod state;
