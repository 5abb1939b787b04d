//! Retention queries run by the maintenance job.

use sqlx::PgPool;

/// Finished jobs are kept this long for inspection, then removed so the queue table stays small.
const FINISHED_JOB_RETENTION_DAYS: u32 = 7;

/// A day's agenda record is needed only while a job may still ask for that day: its own job and
/// retries within hours, one queued after a time-zone change within a day. A week is ample.
const AGENDA_RECORD_RETENTION_DAYS: u32 = 7;

/// How long an API token is remembered after it was revoked or expired: a script still using it
/// is told `token_revoked` or `token_expired` rather than `token_invalid` for that long, and an
/// expired one stays in `GET /tokens` for its owner to see.
const ENDED_API_TOKEN_RETENTION_DAYS: u32 = 30;

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Purged {
    pub finished_jobs: u64,
    pub revoked_tokens: u64,
    pub trashed_tasks: u64,
    pub idempotency_keys: u64,
    pub tombstones: u64,
    pub webhook_messages: u64,
    pub api_tokens: u64,
}

/// How long rows are kept, from the settings.
#[derive(Debug, Clone, Copy)]
pub struct Retention {
    pub trash_days: u32,
    pub idempotency_hours: u32,
    pub tombstone_secs: u64,
    pub webhook_log_days: u32,
}

impl Retention {
    pub fn new(settings: &crate::config::Settings) -> Self {
        Self {
            trash_days: settings.tasks.trash_retention_days,
            idempotency_hours: settings.tasks.idempotency_ttl_hours,
            tombstone_secs: settings.sync.tombstone_retention_secs,
            webhook_log_days: settings.webhooks.log_retention_days,
        }
    }
}

/// Rows deleted per statement: each batch is a short transaction well inside the statement
/// timeout, however large the backlog.
const BATCH: i64 = 1000;

pub async fn purge_expired(pool: &PgPool, retention: Retention) -> Result<Purged, sqlx::Error> {
    let days = |d: u32| f64::from(d) * 86_400.0;
    let mut first_error = None;
    // One failing purge must not keep the others from running.
    let mut keep = |table: &str, result: Result<u64, sqlx::Error>| -> u64 {
        result.unwrap_or_else(|err| {
            tracing::warn!(table, %err, "purge failed");
            first_error.get_or_insert(err);
            0
        })
    };
    let batches =
        |table: &'static str, expired: &'static str, secs: f64| purge_in_batches(pool, table, expired, secs);
    let finished_jobs =
        keep("apalis.jobs", super::queue::purge_finished(pool, days(FINISHED_JOB_RETENTION_DAYS)).await);
    keep("apalis.workers", super::queue::purge_gone_workers(pool, days(FINISHED_JOB_RETENTION_DAYS)).await);
    // A revoked token past its expiry is rejected for expiry alone; its row is dead weight.
    let revoked_tokens = keep(
        "revoked_tokens",
        batches("revoked_tokens", "expires_at < now() - make_interval(secs => $1)", 0.0).await,
    );
    // `least` skips nulls: a token goes once it has been revoked or expired for the whole period.
    let api_tokens = keep(
        "api_tokens",
        batches(
            "api_tokens",
            "least(revoked_at, expires_at) < now() - make_interval(secs => $1)",
            days(ENDED_API_TOKEN_RETENTION_DAYS),
        )
        .await,
    );
    // Moving a task to the trash cancelled its pending reminder and follow-up jobs; one already
    // running re-checks and finds the task gone. Its delivery history goes with it (cascade).
    let trashed_tasks = keep("tasks", purge_trash(pool, days(retention.trash_days)).await);
    let idempotency_keys = keep(
        "idempotency_keys",
        batches(
            "idempotency_keys",
            "created_at < now() - make_interval(secs => $1)",
            f64::from(retention.idempotency_hours) * 3600.0,
        )
        .await,
    );
    keep(
        "deleted_external_accounts",
        batches("deleted_external_accounts", "forget_after < now() - make_interval(secs => $1)", 0.0).await,
    );
    // A used link past its expiry is refused for expiry alone; its row is dead weight.
    keep(
        "used_link_tokens",
        batches("used_link_tokens", "expires_at < now() - make_interval(secs => $1)", 0.0).await,
    );
    keep(
        "agenda_sends",
        batches(
            "agenda_sends",
            "recorded_at < now() - make_interval(secs => $1)",
            days(AGENDA_RECORD_RETENTION_DAYS),
        )
        .await,
    );
    keep(
        "event_tickets",
        batches("event_tickets", "expires_at < now() - make_interval(secs => $1)", 0.0).await,
    );
    // After the trash purge, whose tombstones it must not prune before their time.
    let tombstones = keep(
        "task_tombstones",
        super::changes::prune_tombstones(pool, retention.tombstone_secs as f64).await,
    );
    // The delivery log keeps settled messages this long; pending ones are still owed.
    let webhook_messages = keep(
        "webhook_messages",
        super::webhooks::messages::purge(pool, days(retention.webhook_log_days), BATCH).await,
    );
    // A webhook job is a hint: should one have been lost (failed for good through a long
    // outage), the endpoint's queue would wait for ever. Queue a fresh one.
    keep("webhook_endpoints", super::webhooks::sending::rescue_stalled(pool).await);
    match first_error {
        Some(err) => Err(err),
        None => Ok(Purged {
            finished_jobs,
            revoked_tokens,
            trashed_tasks,
            idempotency_keys,
            tombstones,
            webhook_messages,
            api_tokens,
        }),
    }
}

/// Deletes trash older than `secs`, a batch at a time. Rows are locked in id order, the order
/// every other writer of several tasks takes them in, and rows another transaction holds are left
/// for the next run rather than waited for.
async fn purge_trash(pool: &PgPool, secs: f64) -> Result<u64, sqlx::Error> {
    delete_in_batches(
        pool,
        "DELETE FROM tasks WHERE id IN (
             SELECT id FROM tasks WHERE deleted_at < now() - make_interval(secs => $1)
             ORDER BY id LIMIT $2 FOR UPDATE SKIP LOCKED)",
        secs,
    )
    .await
}

/// Deletes the rows of `table` matching `expired` (which takes the age in seconds as `$1`), a
/// batch at a time.
pub(super) async fn purge_in_batches(
    pool: &PgPool,
    table: &str,
    expired: &str,
    secs: f64,
) -> Result<u64, sqlx::Error> {
    let sql = format!(
        "DELETE FROM {table} WHERE ctid = ANY (ARRAY(SELECT ctid FROM {table} WHERE {expired} LIMIT $2))"
    );
    delete_in_batches(pool, &sql, secs).await
}

/// Runs `delete` (age in seconds as `$1`, batch size as `$2`) until a batch comes back short.
async fn delete_in_batches(pool: &PgPool, delete: &str, secs: f64) -> Result<u64, sqlx::Error> {
    let mut total = 0;
    loop {
        let deleted = sqlx::query(sqlx::AssertSqlSafe(delete))
            .bind(secs)
            .bind(BATCH)
            .execute(pool)
            .await?
            .rows_affected();
        total += deleted;
        if deleted < BATCH as u64 {
            return Ok(total);
        }
    }
}
