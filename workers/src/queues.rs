//! The one apalis handler, for every job kind: it runs the library's handler for the payload
//! and turns the outcome into what the queue needs — a retry later with backoff, a failure that
//! stays failed, or a discard — and counts it.

use apalis::prelude::{AbortError, Attempt, BoxDynError, Data, TaskId};
use todo::jobs::{AttemptInfo, Context, Handled, Job, JobError};

use crate::backoff::RetryPolicy;

/// What every job gets; cloned per job, so everything in it is a cheap handle.
#[derive(Clone)]
pub struct Deps {
    pub context: Context,
    pub retry: RetryPolicy,
}

/// Outcomes as counted in `worker_jobs_total`.
pub const OUTCOMES: &[&str] = &["done", "cancelled", "retried", "failed", "discarded"];

/// Runs one job of kind `J` and settles its outcome with the queue.
pub async fn run<J: Job>(job: J, deps: Data<Deps>, id: TaskId, attempt: Attempt) -> Result<(), BoxDynError> {
    let attempt = attempt_info(&attempt, &deps.retry);
    let result = job.handle(&deps.context, attempt).await;
    settle(J::QUEUE, result, &deps, &id, attempt).await
}

fn attempt_info(attempt: &Attempt, retry: &RetryPolicy) -> AttemptInfo {
    let number = u32::try_from(attempt.current()).unwrap_or(u32::MAX).max(1);
    AttemptInfo { number, max: retry.max_attempts }
}

/// Maps a handler's outcome to the queue's four meanings.
pub async fn settle(
    queue: &'static str,
    result: Result<Handled, JobError>,
    deps: &Deps,
    id: &TaskId,
    attempt: AttemptInfo,
) -> Result<(), BoxDynError> {
    let count = |outcome: &'static str| {
        metrics::counter!("worker_jobs_total", "queue" => queue, "outcome" => outcome).increment(1)
    };
    match result {
        Ok(Handled::Done) => {
            count("done");
            Ok(())
        }
        Ok(Handled::Cancelled(reason)) => {
            count("cancelled");
            tracing::debug!(queue, job = %id, reason, "job cancelled: its cause is gone");
            Ok(())
        }
        Err(JobError::Permanent(error)) => {
            count("discarded");
            tracing::error!(queue, job = %id, %error, "job discarded: retrying cannot help");
            Err(AbortError::new(error).into())
        }
        Err(JobError::Transient(error)) if attempt.is_last() => {
            count("failed");
            tracing::error!(queue, job = %id, attempts = attempt.number, %error, "job failed for good after its last attempt");
            // Capping max_attempts at this attempt keeps the job Failed instead of fetched again.
            reschedule(deps, id, std::time::Duration::ZERO, attempt.number).await;
            Err(error.into())
        }
        Err(JobError::Transient(error)) => {
            count("retried");
            let delay = deps.retry.delay(attempt.number);
            tracing::warn!(queue, job = %id, attempt = attempt.number, retry_in_ms = delay.as_millis() as u64, %error, "job failed; will retry");
            reschedule(deps, id, delay, deps.retry.max_attempts).await;
            Err(error.into())
        }
    }
}

async fn reschedule(deps: &Deps, id: &TaskId, delay: std::time::Duration, max_attempts: u32) {
    if let Err(err) =
        todo::db::queue::retry_later(&deps.context.pool, &id.to_string(), delay, max_attempts).await
    {
        // The database is what failed, most likely: apalis retries at once, which is the
        // best that can be done without it.
        tracing::warn!(job = %id, %err, "could not move the job's next attempt");
    }
}

/// Registers every series at zero, so dashboards see 0 rather than "no data" on a fresh worker.
pub fn register_metrics(queues: &[&'static str]) {
    for queue in queues {
        for outcome in OUTCOMES {
            metrics::counter!("worker_jobs_total", "queue" => *queue, "outcome" => *outcome).increment(0);
        }
    }
    let _ = metrics::histogram!(todo::metrics::REMINDER_LATENESS);
    todo::metrics::register_webhook_series();
    for cap in todo::config::Cap::ALL {
        metrics::counter!(todo::metrics::REMINDERS_RATE_LIMITED, "cap" => cap.as_str()).increment(0);
    }
}
