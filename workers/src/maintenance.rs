//! The maintenance job handler and the ticker that schedules it.

use std::time::Duration;

use apalis::prelude::{BoxDynError, Data};
use chrono::Utc;
use sqlx::PgPool;
use todo::db::maintenance::{Retention, purge_expired};
use todo::jobs::maintenance::Maintenance;
use todo::jobs::{EnqueueError, Schedule, enqueue};

#[tracing::instrument(skip_all, fields(slot = %job.slot_start))]
pub async fn handle(
    job: Maintenance,
    pool: Data<PgPool>,
    retention: Data<Retention>,
) -> Result<(), BoxDynError> {
    let purged = purge_expired(&pool, *retention).await?;
    tracing::info!(
        finished_jobs = purged.finished_jobs,
        revoked_tokens = purged.revoked_tokens,
        trashed_tasks = purged.trashed_tasks,
        idempotency_keys = purged.idempotency_keys,
        "maintenance done"
    );
    Ok(())
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
