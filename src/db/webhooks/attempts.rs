//! What one attempt at a message needs from the database: its body's `data`, rendered from the
//! row snapshot, and the record of what came of it, with its effect on the endpoint.

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::{FromRow, PgConnection, PgPool};
use uuid::Uuid;

use super::Endpoint;
use super::sending::Pending;
use crate::db::projects::{self, Project};
use crate::db::tasks::{self, Task, TaskRow};

/// The message's `data`: the task or project as `GET` returns it, rendered by the same types
/// from the snapshot the trigger took, plus the user's change number.
pub async fn render_data(pool: &PgPool, message: &Pending) -> Result<Value, RenderError> {
    let mut data = match message.resource.as_str() {
        "task" => {
            let row = sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT {} FROM jsonb_populate_record(NULL::tasks, $1)",
                tasks::COLUMNS
            )))
            .bind(&message.snapshot)
            .fetch_one(pool)
            .await?;
            serde_json::to_value(Task::from(TaskRow::from_row(&row).map_err(RenderError::Snapshot)?))?
        }
        "project" => {
            let row = sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT {} FROM jsonb_populate_record(NULL::projects, $1)",
                projects::COLUMNS
            )))
            .bind(&message.snapshot)
            .fetch_one(pool)
            .await?;
            serde_json::to_value(Project::from_row(&row).map_err(RenderError::Snapshot)?)?
        }
        _ => message.snapshot.clone(),
    };
    if let Some(object) = data.as_object_mut() {
        object.insert("change_seq".into(), message.change_seq.into());
    }
    Ok(data)
}

#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    /// The snapshot no longer fits the row type: permanent.
    #[error("the stored snapshot cannot be read: {0}")]
    Snapshot(sqlx::Error),
    #[error("encoding: {0}")]
    Encode(#[from] serde_json::Error),
}

/// What became of a message after an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Settled {
    Succeeded,
    /// Failed; tried again at this time.
    RetryAt(DateTime<Utc>),
    /// Failed for good: out of attempts, or refused (410).
    GaveUp,
}

/// One attempt's record in the log.
#[derive(Debug, Clone, Default)]
pub struct AttemptRecord {
    pub status_code: Option<i32>,
    pub duration_ms: i32,
    pub response_body: Option<String>,
    pub error: Option<String>,
}

/// Records an attempt on `conn` (the caller's transaction) and keeps the endpoint's run of
/// failures: a success ends it; a 410 (`gone`) or a run longer than `disable_after_secs`
/// disables the endpoint. Returns the reason when this attempt disabled it (not when its owner
/// had already turned it off).
pub async fn record(
    conn: &mut PgConnection,
    endpoint: &Endpoint,
    message_id: Uuid,
    settled: Settled,
    attempt: &AttemptRecord,
    gone: bool,
    disable_after_secs: f64,
) -> Result<Option<&'static str>, sqlx::Error> {
    let (status, next_at) = match settled {
        Settled::Succeeded => ("succeeded", None),
        Settled::RetryAt(at) => ("pending", Some(at)),
        Settled::GaveUp => ("failed", None),
    };
    sqlx::query(
        "UPDATE webhook_messages SET status = $2, attempts = attempts + 1,
                next_attempt_at = coalesce($3, next_attempt_at), last_attempt_at = now(),
                status_code = $4, duration_ms = $5, response_body = $6, error = $7
         WHERE id = $1 AND user_id = $8",
    )
    .bind(message_id)
    .bind(status)
    .bind(next_at)
    .bind(attempt.status_code)
    .bind(attempt.duration_ms)
    .bind(&attempt.response_body)
    .bind(&attempt.error)
    .bind(endpoint.user_id)
    .execute(&mut *conn)
    .await?;
    if settled == Settled::Succeeded {
        sqlx::query(
            "UPDATE webhook_endpoints SET failing_since = NULL
             WHERE id = $1 AND user_id = $2 AND failing_since IS NOT NULL",
        )
        .bind(endpoint.id)
        .bind(endpoint.user_id)
        .execute(&mut *conn)
        .await?;
        return Ok(None);
    }
    // A 410 disables at once; otherwise only a run of failures longer than the limit does.
    let disabled: Option<String> = sqlx::query_scalar(
        "WITH before AS (
             SELECT enabled AS was FROM webhook_endpoints WHERE id = $1 AND user_id = $4 FOR NO KEY UPDATE)
         UPDATE webhook_endpoints e SET failing_since = coalesce(e.failing_since, now()),
                enabled = e.enabled AND NOT $2
                    AND coalesce(e.failing_since, now()) > now() - make_interval(secs => $3),
                disabled_reason = CASE
                    WHEN NOT e.enabled THEN e.disabled_reason
                    WHEN $2 THEN 'gone'
                    WHEN coalesce(e.failing_since, now()) <= now() - make_interval(secs => $3) THEN 'failing'
                    ELSE e.disabled_reason END
         FROM before
         WHERE e.id = $1 AND e.user_id = $4
         RETURNING CASE WHEN before.was AND NOT e.enabled THEN e.disabled_reason END",
    )
    .bind(endpoint.id)
    .bind(gone)
    .bind(disable_after_secs)
    .bind(endpoint.user_id)
    .fetch_optional(&mut *conn)
    .await?
    .flatten();
    Ok(match disabled.as_deref() {
        Some("gone") => Some("gone"),
        Some("failing") => Some("failing"),
        _ => None,
    })
}
