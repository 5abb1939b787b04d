//! The reminder delivery record: one row per (task, reminder time), which both keeps a
//! reminder from being sent twice and is the history clients read.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::{PgConnection, PgExecutor};
use uuid::Uuid;

/// One reminder of a task and what became of it.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
#[cfg_attr(feature = "web", derive(utoipa::ToSchema))]
pub struct Delivery {
    #[serde(skip)]
    pub task_id: Uuid,
    pub reminder_at: DateTime<Utc>,
    /// `pending` (not sent yet, or a retry is due), `sent`, `failed` or `skipped`.
    pub status: String,
    /// Sending attempts made so far.
    pub attempts: i32,
    pub last_error: Option<String>,
    /// Why nothing was sent: `task_completed`, `task_deleted`, `reminder_moved`, `reminder_cleared`,
    /// `reminders_off` or `no_email_address`.
    pub skip_reason: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub sent_at: Option<DateTime<Utc>>,
}

const COLUMNS: &str =
    "task_id, reminder_at, status, attempts, last_error, skip_reason, created_at, updated_at, sent_at";

/// Creates the record if needed and locks it for the rest of the transaction, so two workers
/// holding the same reminder take turns and the second sees what the first did.
pub async fn claim(
    conn: &mut PgConnection,
    user_id: Uuid,
    task_id: Uuid,
    reminder_at: DateTime<Utc>,
) -> Result<Delivery, sqlx::Error> {
    sqlx::query(
        "INSERT INTO reminder_deliveries (task_id, reminder_at, user_id) VALUES ($1, $2, $3)
         ON CONFLICT ON CONSTRAINT reminder_deliveries_pkey DO NOTHING",
    )
    .bind(task_id)
    .bind(reminder_at)
    .bind(user_id)
    .execute(&mut *conn)
    .await?;
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM reminder_deliveries WHERE task_id = $1 AND reminder_at = $2 FOR UPDATE"
    )))
    .bind(task_id)
    .bind(reminder_at)
    .fetch_one(conn)
    .await
}

/// What one look at a claimed reminder ended with.
#[derive(Debug, Clone)]
pub enum Attempted<'a> {
    Sent {
        message_id: &'a str,
    },
    Skipped {
        reason: &'a str,
    },
    /// A failure that will be retried: the record stays `pending`.
    Retrying {
        error: &'a str,
    },
    /// A permanent failure, or the last attempt failed.
    Failed {
        error: &'a str,
    },
}

pub async fn record(
    conn: &mut PgConnection,
    task_id: Uuid,
    reminder_at: DateTime<Utc>,
    attempted: Attempted<'_>,
) -> Result<(), sqlx::Error> {
    let (status, attempts, error, reason, message_id) = match attempted {
        Attempted::Sent { message_id } => ("sent", 1, None, None, Some(message_id)),
        Attempted::Skipped { reason } => ("skipped", 0, None, Some(reason), None),
        Attempted::Retrying { error } => ("pending", 1, Some(error), None, None),
        Attempted::Failed { error } => ("failed", 1, Some(error), None, None),
    };
    sqlx::query(
        "UPDATE reminder_deliveries SET
             status = $3, attempts = attempts + $4, last_error = COALESCE($5, last_error),
             skip_reason = $6, message_id = COALESCE($7, message_id),
             sent_at = CASE WHEN $3 = 'sent' THEN now() END, updated_at = now()
         WHERE task_id = $1 AND reminder_at = $2",
    )
    .bind(task_id)
    .bind(reminder_at)
    .bind(status)
    .bind(attempts)
    .bind(error)
    .bind(reason)
    .bind(message_id)
    .execute(conn)
    .await?;
    Ok(())
}

/// A live task's delivery history, newest reminder first. Empty for another user's task: the
/// caller checks the task is theirs before showing it.
pub async fn history(
    conn: impl PgExecutor<'_>,
    user_id: Uuid,
    task_id: Uuid,
) -> Result<Vec<Delivery>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM reminder_deliveries
         WHERE task_id = $1 AND user_id = $2
         ORDER BY reminder_at DESC
         LIMIT 1000"
    )))
    .bind(task_id)
    .bind(user_id)
    .fetch_all(conn)
    .await
}
