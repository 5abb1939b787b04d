//! The worker process's parts, as a library so tests run the queues in-process exactly as the
//! binary does.

pub mod backoff;
pub mod http;
pub mod queues;
pub mod runner;

pub use runner::{Worker, connect, run, worker_name};
