//! Jobs caused by task writes: a reminder email when `reminder_at` comes, and the next
//! occurrence when a recurring task is completed. Both are kept in step with the task inside
//! the writer's transaction.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::PgConnection;
use uuid::Uuid;

use super::{EnqueueError, Job, Schedule, enqueue};
use crate::db::tasks::Task;

/// Email the owner about a task. `version` is the task version it was scheduled for; the
/// handler re-reads the task and skips a reminder that is no longer current.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Reminder {
    pub user_id: Uuid,
    pub task_id: Uuid,
    pub version: i64,
    pub reminder_at: DateTime<Utc>,
}

impl Job for Reminder {
    const QUEUE: &'static str = "todo.reminder";
}

/// Create the occurrence after `task_id`, which was completed at `completed_at`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NextOccurrence {
    pub user_id: Uuid,
    pub task_id: Uuid,
    pub series_id: Uuid,
    pub occurrence_at: DateTime<Utc>,
    pub completed_at: DateTime<Utc>,
}

impl Job for NextOccurrence {
    const QUEUE: &'static str = "todo.recurrence";
}

/// Brings a task's pending jobs in line with its new state. `before` is `None` for a new task.
pub async fn sync(conn: &mut PgConnection, before: Option<&Task>, after: &Task) -> Result<(), EnqueueError> {
    if before.is_none_or(|b| reminder_state(b) != reminder_state(after)) {
        cancel_for_task(conn, Reminder::QUEUE, after.id).await?;
        if let Some(reminder_at) = after.reminder_at
            && after.deleted_at.is_none()
            && !after.completed
            && reminder_at > Utc::now()
        {
            let job =
                Reminder { user_id: after.user_id, task_id: after.id, version: after.version, reminder_at };
            let schedule = Schedule {
                run_at: Some(reminder_at.into()),
                idempotency_key: Some(format!("reminder:{}:{}", after.id, after.version)),
                owner: Some(after.user_id),
                subject: Some(after.id),
                ..Schedule::default()
            };
            enqueue(conn, &job, schedule).await?;
        }
    }
    let just_completed = after.completed && before.is_none_or(|b| !b.completed);
    if let (true, Some(series_id), Some(occurrence_at), Some(completed_at)) =
        (just_completed && after.is_recurring, after.series_id, after.occurrence_at, after.completed_at)
    {
        // One follow-up per occurrence for ever, however often it is toggled: the key never
        // changes, and the task row lock serialises writers, so checking first is race-free.
        let key = format!("next:{}", after.id);
        if !job_exists(conn, NextOccurrence::QUEUE, &key).await? {
            let job = NextOccurrence {
                user_id: after.user_id,
                task_id: after.id,
                series_id,
                occurrence_at,
                completed_at,
            };
            let schedule = Schedule {
                idempotency_key: Some(key),
                owner: Some(after.user_id),
                subject: Some(after.id),
                ..Schedule::default()
            };
            enqueue(conn, &job, schedule).await?;
        }
    }
    Ok(())
}

/// What decides whether and when a reminder fires.
fn reminder_state(task: &Task) -> (Option<DateTime<Utc>>, bool, bool) {
    (task.reminder_at, task.completed, task.deleted_at.is_some())
}

async fn cancel_for_task(conn: &mut PgConnection, queue: &str, task_id: Uuid) -> Result<u64, sqlx::Error> {
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

async fn job_exists(conn: &mut PgConnection, queue: &str, key: &str) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM apalis.jobs WHERE job_type = $1 AND idempotency_key = $2)",
    )
    .bind(queue)
    .bind(key)
    .fetch_one(conn)
    .await
}
