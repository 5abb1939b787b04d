//! The maintenance job handler and the ticker that schedules it.

use std::time::Duration;

use apalis::prelude::{Attempt, BoxDynError, Data, TaskId};
use chrono::Utc;
use sqlx::PgPool;
use todo::db::maintenance::{Retention, purge_expired};
use todo::jobs::handlers::recurrence::resume_paused;
use todo::jobs::handlers::{Handled, JobError};
use todo::jobs::maintenance::Maintenance;
use todo::jobs::{EnqueueError, Job, Schedule, enqueue};

use crate::queues::{Deps, attempt_info, settle};

#[tracing::instrument(skip_all, fields(slot = %job.slot_start))]
pub async fn handle(
    job: Maintenance,
    deps: Data<Deps>,
    retention: Data<Retention>,
    id: TaskId,
    attempt: Attempt,
) -> Result<(), BoxDynError> {
    let attempt = attempt_info(&attempt, &deps.retry);
    let purged = purge_expired(&deps.pool, *retention).await.map_err(JobError::from);
    // After the purge, which may have made room: paused series continue.
    let resumed = resume_paused(&deps.pool, deps.max_tasks).await;
    let result = purged.and_then(|purged| {
        let resumed = resumed?;
        tracing::info!(
            finished_jobs = purged.finished_jobs,
            revoked_tokens = purged.revoked_tokens,
            trashed_tasks = purged.trashed_tasks,
            idempotency_keys = purged.idempotency_keys,
            tombstones = purged.tombstones,
            resumed_series = resumed,
            "maintenance done"
        );
        Ok(Handled::Done)
    });
    settle(Maintenance::QUEUE, result, &deps, &id, attempt).await
}

/// Enqueues one maintenance job per slot for as long as the process runs. Every worker process
/// runs this; the slot's idempotency key makes all but the first insert a no-op.
pub async fn schedule(pool: PgPool, interval: Duration) {
    let mut ticker = tokio::time::interval(interval.min(Duration::from_secs(60)));
    loop {
        ticker.tick().await;
        let job = Maintenance::for_slot(Utc::now(), interval.as_secs());
        let schedule = Schedule { idempotency_key: Some(job.idempotency_key()), ..Schedule::default() };
        let result = match pool.acquire().await {
            Ok(mut conn) => enqueue(&mut conn, &job, schedule).await,
            Err(err) => Err(EnqueueError::Database(err)),
        };
        match result {
            Ok(()) => tracing::debug!(slot = %job.slot_start, "maintenance scheduled"),
            Err(err) if is_duplicate(&err) => {}
            Err(err) => tracing::warn!(error = %err, "could not schedule maintenance"),
        }
    }
}

fn is_duplicate(err: &EnqueueError) -> bool {
    matches!(err, EnqueueError::Insert(apalis_postgres::Error::Database(sqlx::Error::Database(db)))
        if db.is_unique_violation())
}
