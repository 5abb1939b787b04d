//! One integration test binary, so the crate graph links once.

mod audit;
mod auth;
mod crashes;
mod errors;
mod external_auth;
mod hardening;
mod helpers;
mod hostile_input;
mod memory_bounds;
mod ops;
mod private_pg;
mod rate_limits;
mod recurrence;
mod reminders;
mod tasks_concurrency;
mod tasks_conditional;
mod tasks_crud;
mod tasks_isolation;
mod tasks_jobs;
mod tasks_list;
mod tasks_validation;
mod users;
mod web_outage;
mod worker;
mod worker_outage;
