//! Every query on apalis's tables that apalis itself does not offer: the one module with SQL on
//! `apalis.jobs`. Enqueueing goes through `apalis_postgres::queries::push_tasks` instead.

use std::time::Duration;

use sqlx::{PgConnection, PgExecutor, PgPool};
use uuid::Uuid;

/// The metadata key under which a job's owner is recorded; the partial index on
/// `(metadata -> 'user_id')` is built on it.
pub const OWNER_KEY: &str = "user_id";
/// The metadata key under which a job's task is recorded.
pub const SUBJECT_KEY: &str = "task_id";

/// Removes every job of `owner` that has not started, inside the caller's transaction. A job
/// already fetched cannot be recalled, which is why handlers re-check what they act on.
pub async fn cancel_for_owner(conn: &mut PgConnection, owner: Uuid) -> Result<u64, sqlx::Error> {
    let deleted = sqlx::query(
        // The key is spelled out so the partial index on (metadata -> 'user_id') applies.
        "DELETE FROM apalis.jobs WHERE metadata -> 'user_id' = $1 AND status IN ('Pending', 'Failed')",
    )
    .bind(owner.to_string())
    .execute(conn)
    .await?;
    Ok(deleted.rows_affected())
}

/// Removes `owner`'s jobs on `queue` that have not started, inside the caller's transaction.
pub async fn cancel_for_owner_on(
    conn: &mut PgConnection,
    queue: &str,
    owner: Uuid,
) -> Result<u64, sqlx::Error> {
    let deleted = sqlx::query(
        "DELETE FROM apalis.jobs
         WHERE metadata -> 'user_id' = $2 AND status IN ('Pending', 'Failed') AND job_type = $1",
    )
    .bind(queue)
    .bind(owner.to_string())
    .execute(conn)
    .await?;
    Ok(deleted.rows_affected())
}

/// Removes the jobs on `queue` about `task_id` that have not started, inside the caller's
/// transaction.
pub async fn cancel_for_task(
    conn: &mut PgConnection,
    queue: &str,
    task_id: Uuid,
) -> Result<u64, sqlx::Error> {
    let deleted = sqlx::query(
        "DELETE FROM apalis.jobs
         WHERE metadata -> 'task_id' = $2 AND status IN ('Pending', 'Failed') AND job_type = $1",
    )
    .bind(queue)
    .bind(task_id.to_string())
    .execute(conn)
    .await?;
    Ok(deleted.rows_affected())
}

/// Jobs per queue and status, for the queue-depth gauges.
pub async fn depth(conn: impl PgExecutor<'_>) -> Result<Vec<(String, String, i64)>, sqlx::Error> {
    sqlx::query_as("SELECT job_type, status, count(*) FROM apalis.jobs GROUP BY job_type, status")
        .fetch_all(conn)
        .await
}

/// Moves a failing job's next attempt `delay` from now and caps its attempts. apalis-postgres
/// retries a failed job as soon as it is polled again, so the backoff has to live in the row.
pub async fn retry_later(
    conn: impl PgExecutor<'_>,
    job_id: &str,
    delay: Duration,
    max_attempts: u32,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE apalis.jobs SET run_at = now() + make_interval(secs => $2), max_attempts = $3 WHERE id = $1",
    )
    .bind(job_id)
    .bind(delay.as_secs_f64())
    .bind(i32::try_from(max_attempts).unwrap_or(i32::MAX))
    .execute(conn)
    .await?;
    Ok(())
}

/// Returns the jobs still held by a stopping worker process (every queue worker named
/// `{process}:…`) to the queue, counting the interrupted run as an attempt.
pub async fn release_worker_jobs(conn: impl PgExecutor<'_>, process: &str) -> Result<u64, sqlx::Error> {
    release(conn, &format!("{process}:")).await
}

/// Returns the jobs held by earlier incarnations of one queue worker (`{process}:{queue}` and
/// `{process}:{queue}:{n}`), whose futures apalis dropped when it restarted that worker.
pub async fn release_queue_jobs(
    conn: impl PgExecutor<'_>,
    process: &str,
    queue: &str,
) -> Result<u64, sqlx::Error> {
    release(conn, &format!("{process}:{queue}")).await
}

async fn release(conn: impl PgExecutor<'_>, lock_prefix: &str) -> Result<u64, sqlx::Error> {
    let released = sqlx::query(
        "UPDATE apalis.jobs SET lock_by = NULL, lock_at = NULL, attempts = attempts + 1,
                status = CASE WHEN attempts + 1 >= max_attempts THEN 'Failed' ELSE 'Pending' END,
                done_at = CASE WHEN attempts + 1 >= max_attempts THEN now() END,
                last_result = '{\"Err\": \"Returned to the queue: its worker stopped\"}'::jsonb
         WHERE status IN ('Running', 'Queued') AND starts_with(lock_by, $1)",
    )
    .bind(lock_prefix)
    .execute(conn)
    .await?;
    Ok(released.rows_affected())
}

/// Deletes jobs finished more than `secs` ago, a batch at a time. Failed jobs whose attempts are
/// spent are finished too: nothing will fetch them again.
pub async fn purge_finished(pool: &PgPool, secs: f64) -> Result<u64, sqlx::Error> {
    super::maintenance::purge_queue_rows(
        pool,
        "apalis.jobs",
        "(status IN ('Done', 'Killed') OR (status = 'Failed' AND attempts >= max_attempts))
          AND done_at < now() - make_interval(secs => $1)",
        secs,
    )
    .await
}

/// Deletes worker registrations silent for `secs` with no job locked. Every worker start
/// registers one row per queue, so a name silent that long is a process that is gone.
pub async fn purge_gone_workers(pool: &PgPool, secs: f64) -> Result<u64, sqlx::Error> {
    super::maintenance::purge_queue_rows(
        pool,
        "apalis.workers w",
        "last_seen < now() - make_interval(secs => $1)
          AND NOT EXISTS (SELECT 1 FROM apalis.jobs j WHERE j.lock_by = w.id)",
        secs,
    )
    .await
}
