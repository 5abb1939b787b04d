//! Queries on apalis's job table that apalis itself does not offer.

use std::time::Duration;

use sqlx::PgExecutor;

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
