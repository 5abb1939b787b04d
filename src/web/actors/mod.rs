//! Per-user actors: every task write of a user goes through that user's actor in this process,
//! which runs one command at a time until its transaction commits.

mod registry;
mod user;

pub use registry::{ActorError, ActorRegistry};
