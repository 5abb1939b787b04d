//! The worker process's parts, as a library so tests can run the queues in-process exactly as
//! the binary does.

pub mod maintenance;
pub mod runner;

pub use runner::{run, worker_name};
