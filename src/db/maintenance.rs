//! Retention queries run by the maintenance job.

use sqlx::PgPool;

/// Finished jobs are kept this long for inspection, then removed so the queue table stays small.
const FINISHED_JOB_RETENTION_DAYS: i32 = 7;

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Purged {
    pub finished_jobs: u64,
    pub revoked_tokens: u64,
    pub trashed_tasks: u64,
    pub idempotency_keys: u64,
}

/// How long rows are kept, from the settings.
#[derive(Debug, Clone, Copy)]
pub struct Retention {
    pub trash_days: u32,
    pub idempotency_hours: u32,
}

pub async fn purge_expired(pool: &PgPool, retention: Retention) -> Result<Purged, sqlx::Error> {
    // Failed jobs whose attempts are spent are finished too: nothing will fetch them again.
    let finished_jobs = sqlx::query(
        "DELETE FROM apalis.jobs
         WHERE (status IN ('Done', 'Killed') OR (status = 'Failed' AND attempts >= max_attempts))
           AND done_at < now() - make_interval(days => $1)",
    )
    .bind(FINISHED_JOB_RETENTION_DAYS)
    .execute(pool)
    .await?
    .rows_affected();
    // Every worker start registers one row per queue; a name silent for a week with no job
    // locked is a process that is gone.
    sqlx::query(
        "DELETE FROM apalis.workers w WHERE last_seen < now() - make_interval(days => $1)
           AND NOT EXISTS (SELECT 1 FROM apalis.jobs j WHERE j.lock_by = w.id)",
    )
    .bind(FINISHED_JOB_RETENTION_DAYS)
    .execute(pool)
    .await?;
    // A revoked token past its expiry is rejected for expiry alone; its row is dead weight.
    let revoked_tokens = sqlx::query("DELETE FROM revoked_tokens WHERE expires_at < now()")
        .execute(pool)
        .await?
        .rows_affected();
    // Moving a task to the trash cancelled its pending reminder and follow-up jobs; one already
    // running re-checks and finds the task gone. Its delivery history goes with it (cascade).
    let trashed_tasks = sqlx::query("DELETE FROM tasks WHERE deleted_at < now() - make_interval(days => $1)")
        .bind(i32::try_from(retention.trash_days).unwrap_or(i32::MAX))
        .execute(pool)
        .await?
        .rows_affected();
    let idempotency_keys =
        sqlx::query("DELETE FROM idempotency_keys WHERE created_at < now() - make_interval(hours => $1)")
            .bind(i32::try_from(retention.idempotency_hours).unwrap_or(i32::MAX))
            .execute(pool)
            .await?
            .rows_affected();
    Ok(Purged { finished_jobs, revoked_tokens, trashed_tasks, idempotency_keys })
}
