//! Retention queries run by the maintenance job.

use sqlx::PgPool;
use uuid::Uuid;

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
    let finished_jobs =
        keep("apalis.jobs", super::queue::purge_finished(pool, days(FINISHED_JOB_RETENTION_DAYS)).await);
    keep("apalis.workers", super::queue::purge_gone_workers(pool, days(FINISHED_JOB_RETENTION_DAYS)).await);
    // A revoked token past its expiry is rejected for expiry alone; its row is dead weight.
    let revoked_tokens = keep(
        "revoked_tokens",
        purge_by_key(
            pool,
            "revoked_tokens",
            "token_id",
            "expires_at < now() - make_interval(secs => $1)",
            0.0,
        )
        .await,
    );
    // `least` skips nulls: a token goes once it has been revoked or expired for the whole period.
    let api_tokens = keep(
        "api_tokens",
        purge_per_user(
            pool,
            "api_tokens",
            "id",
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
        purge_per_user(
            pool,
            "idempotency_keys",
            "key",
            "created_at < now() - make_interval(secs => $1)",
            f64::from(retention.idempotency_hours) * 3600.0,
        )
        .await,
    );
    keep(
        "deleted_external_accounts",
        purge_by_key(
            pool,
            "deleted_external_accounts",
            "external_id",
            "forget_after < now() - make_interval(secs => $1)",
            0.0,
        )
        .await,
    );
    // A used link past its expiry is refused for expiry alone; its row is dead weight.
    keep(
        "used_link_tokens",
        purge_by_key(
            pool,
            "used_link_tokens",
            "token_id",
            "expires_at < now() - make_interval(secs => $1)",
            0.0,
        )
        .await,
    );
    // The per-address verification cap counts the last hour only.
    keep(
        "verification_recipients",
        purge_by_key(
            pool,
            "verification_recipients",
            "id",
            "requested_at < now() - make_interval(secs => $1)",
            super::verification::WINDOW.num_seconds() as f64,
        )
        .await,
    );
    keep(
        "agenda_sends",
        purge_per_user(
            pool,
            "agenda_sends",
            "local_date",
            "recorded_at < now() - make_interval(secs => $1)",
            days(AGENDA_RECORD_RETENTION_DAYS),
        )
        .await,
    );
    keep(
        "event_tickets",
        purge_per_user(
            pool,
            "event_tickets",
            "digest",
            "expires_at < now() - make_interval(secs => $1)",
            0.0,
        )
        .await,
    );
    // After the trash purge, whose tombstones it must not prune before their time.
    let tombstones = keep(
        "task_tombstones",
        super::changes::prune_tombstones(pool, retention.tombstone_secs as f64).await,
    );
    // The delivery log keeps settled messages this long. Pending ones are still owed while their
    // endpoint is enabled; on a disabled endpoint a message this old is too stale to send when it
    // is enabled again (the receiver would get month-old changes), so it goes like a settled one.
    let webhook_messages = keep(
        "webhook_messages",
        purge_per_user(
            pool,
            "webhook_messages",
            "id",
            "created_at < now() - make_interval(secs => $1)
             AND (status <> 'pending'
                  OR endpoint_id IN (SELECT e.id FROM webhook_endpoints e
                                     WHERE e.user_id = webhook_messages.user_id AND NOT e.enabled))",
            days(retention.webhook_log_days),
        )
        .await,
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

/// Deletes trash older than `secs`, one user at a time. Rows are locked in id order, the order
/// every other writer of several tasks takes them in, and rows another transaction holds are left
/// for the next run rather than waited for.
async fn purge_trash(pool: &PgPool, secs: f64) -> Result<u64, sqlx::Error> {
    purge_per_user(pool, "tasks", "id", "deleted_at < now() - make_interval(secs => $1)", secs).await
}

/// Users whose expired rows are deleted per pass of [`purge_per_user`].
const USERS_PER_PASS: i64 = 500;

/// Deletes the rows of a table of user data matching `expired` (which takes the age in seconds
/// as `$1`), one user at a time and a batch at a time, locking rows in `key` order and leaving
/// those another transaction holds for the next run.
///
/// No statement spans two users: sharded by user (docs/scaling.md), each delete runs on one
/// shard, and only the search for users with expired rows reads them all.
async fn purge_per_user(
    pool: &PgPool,
    table: &str,
    key: &str,
    expired: &str,
    secs: f64,
) -> Result<u64, sqlx::Error> {
    let find = format!(
        "SELECT DISTINCT user_id FROM {table} WHERE user_id > $2 AND ({expired}) ORDER BY user_id LIMIT $3"
    );
    let delete = format!(
        "DELETE FROM {table} WHERE user_id = $3 AND {key} IN (
             SELECT {key} FROM {table} WHERE user_id = $3 AND ({expired})
             ORDER BY {key} LIMIT $2 FOR UPDATE SKIP LOCKED)"
    );
    let mut total = 0;
    // Users are walked in id order, so one whose rows stay locked is not found again this run.
    let mut after = Uuid::nil();
    loop {
        let users: Vec<Uuid> = sqlx::query_scalar(sqlx::AssertSqlSafe(find.as_str()))
            .bind(secs)
            .bind(after)
            .bind(USERS_PER_PASS)
            .fetch_all(pool)
            .await?;
        for &user in &users {
            total += delete_in_batches(pool, &delete, secs, Some(user)).await?;
        }
        match users.last() {
            Some(&last) if users.len() as i64 == USERS_PER_PASS => after = last,
            _ => return Ok(total),
        }
    }
}

/// Deletes the rows of a table that belongs to no user (a small, shared table) matching
/// `expired`, by its `key`, a batch at a time.
async fn purge_by_key(
    pool: &PgPool,
    table: &str,
    key: &str,
    expired: &str,
    secs: f64,
) -> Result<u64, sqlx::Error> {
    let sql =
        format!("DELETE FROM {table} WHERE {key} IN (SELECT {key} FROM {table} WHERE {expired} LIMIT $2)");
    delete_in_batches(pool, &sql, secs, None).await
}

/// Deletes the rows of one of the queue's tables matching `expired`, a batch at a time. By
/// `ctid`, since `apalis.workers` has no key; the queue's tables live on one node however the
/// user data is spread, so a row's position names it.
pub(super) async fn purge_queue_rows(
    pool: &PgPool,
    table: &str,
    expired: &str,
    secs: f64,
) -> Result<u64, sqlx::Error> {
    let sql = format!(
        "DELETE FROM {table} WHERE ctid = ANY (ARRAY(SELECT ctid FROM {table} WHERE {expired} LIMIT $2))"
    );
    delete_in_batches(pool, &sql, secs, None).await
}

/// Runs `delete` (age in seconds as `$1`, batch size as `$2`, and the user, if any, as `$3`)
/// until a batch comes back short.
async fn delete_in_batches(
    pool: &PgPool,
    delete: &str,
    secs: f64,
    user: Option<Uuid>,
) -> Result<u64, sqlx::Error> {
    let mut total = 0;
    loop {
        let mut query = sqlx::query(sqlx::AssertSqlSafe(delete)).bind(secs).bind(BATCH);
        if let Some(user) = user {
            query = query.bind(user);
        }
        let deleted = query.execute(pool).await?.rows_affected();
        total += deleted;
        if deleted < BATCH as u64 {
            return Ok(total);
        }
    }
}
