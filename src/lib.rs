//! The todo service library: everything the web and worker processes share.

pub mod commands;
pub mod config;
pub mod db;
pub mod domain;
pub mod email;
pub mod ical;
pub mod jobs;
pub mod links;
pub mod metrics;
pub mod render;
pub mod stepping;
pub mod telemetry;
pub mod webhooks;

#[cfg(feature = "web")]
pub mod web;
