//! Jobs caused by task writes: a reminder email when `reminder_at` comes, and the next
//! occurrence when a recurring task is completed. Both are kept in step with the task inside
//! the writer's transaction.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::PgConnection;
use uuid::Uuid;

use super::{EnqueueError, Job, Schedule, enqueue};
use crate::db::queue::cancel_for_task;
use crate::db::tasks::{self, Task};

/// Email the owner about a task. The handler must re-read the task and send only if it is still
/// open, not trashed, and its `reminder_at` still equals this one: a reminder moved or cancelled
/// after this job was fetched is stale. `version` is for tracing; unrelated edits bump it without
/// touching the reminder.
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

/// Create the occurrence after `task_id`, which was completed at `completed_at`. The handler
/// re-reads the task and creates nothing if it is no longer completed, or is trashed.
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
    sync_reminder(conn, before, after).await?;
    sync_next_occurrence(conn, before, after).await
}

async fn sync_reminder(
    conn: &mut PgConnection,
    before: Option<&Task>,
    after: &Task,
) -> Result<(), EnqueueError> {
    if before.is_some_and(|b| reminder_state(b) == reminder_state(after)) {
        return Ok(());
    }
    // No reminder before or after: there is no job to cancel or queue (a cleared reminder's job
    // was cancelled by the write that cleared it).
    if before.is_some_and(|b| b.reminder_at.is_none()) && after.reminder_at.is_none() {
        return Ok(());
    }
    // A task just created has no jobs to cancel: skip the round trip.
    if before.is_some() {
        cancel_for_task(conn, Reminder::QUEUE, after.id).await?;
    }
    if let Some(old) = before.and_then(|b| b.reminder_at) {
        // A retry that was waiting for this reminder will not come; say so in its history.
        if let Some(reason) = unwanted_reminder(after, old) {
            crate::db::reminders::skip_pending(conn, after.id, old, reason).await?;
        }
    }
    // A reminder just set to a past time fires at once; one that merely passed while the
    // task was closed or trashed is not sent again when it reopens.
    let newly_set = before.is_none_or(|b| b.reminder_at != after.reminder_at);
    if let Some(reminder_at) = after.reminder_at
        && after.deleted_at.is_none()
        && !after.completed
        && (newly_set || reminder_at > Utc::now())
    {
        let job = Reminder { user_id: after.user_id, task_id: after.id, version: after.version, reminder_at };
        let schedule = Schedule {
            run_at: Some(not_before(reminder_at)),
            idempotency_key: Some(format!("reminder:{}:{}", after.id, after.version)),
            owner: Some(after.user_id),
            subject: Some(after.id),
        };
        enqueue(conn, &job, schedule).await?;
    }
    Ok(())
}

async fn sync_next_occurrence(
    conn: &mut PgConnection,
    before: Option<&Task>,
    after: &Task,
) -> Result<(), EnqueueError> {
    let done = |task: &Task| task.completed && task.deleted_at.is_none();
    let was_done = before.is_some_and(done);
    if was_done && !done(after) {
        // Reopened or trashed: a successor not made yet must not be made. If its job had not
        // started, completing again queues a fresh one; a successor already made stays, and
        // the flag keeps it the only one.
        // A series paused for the task limit has no job left either: its next completion must
        // queue a fresh attempt.
        let paused = before.is_some_and(|b| b.series_paused.is_some());
        if cancel_for_task(conn, NextOccurrence::QUEUE, after.id).await? > 0 || paused {
            tasks::set_next_occurrence_queued(conn, after.id, false).await?;
        }
        return Ok(());
    }
    if was_done || !done(after) || !after.is_recurring || after.next_occurrence_queued {
        return Ok(());
    }
    let (Some(series_id), Some(occurrence_at), Some(completed_at)) =
        (after.series_id, after.occurrence_at, after.completed_at)
    else {
        return Ok(());
    };
    // The flag is set under the task's row lock in this transaction, so an occurrence has one
    // follow-up however often it is toggled and however long queue history is kept.
    let job =
        NextOccurrence { user_id: after.user_id, task_id: after.id, series_id, occurrence_at, completed_at };
    let schedule = Schedule {
        idempotency_key: Some(format!("next:{}:{}", after.id, after.version)),
        owner: Some(after.user_id),
        subject: Some(after.id),
        ..Schedule::default()
    };
    enqueue(conn, &job, schedule).await?;
    tasks::set_next_occurrence_queued(conn, after.id, true).await?;
    Ok(())
}

/// Why the task no longer wants the reminder it had at `reminder_at`, if it does not.
pub fn unwanted_reminder(task: &Task, reminder_at: DateTime<Utc>) -> Option<&'static str> {
    if task.deleted_at.is_some() {
        Some("task_deleted")
    } else if task.completed {
        Some("task_completed")
    } else if task.reminder_at.is_none() {
        Some("reminder_cleared")
    } else if task.reminder_at != Some(reminder_at) {
        Some("reminder_moved")
    } else {
        None
    }
}

/// The queue stores whole seconds; round up so a job never runs before its time.
fn not_before(at: DateTime<Utc>) -> std::time::SystemTime {
    let whole = at.timestamp() + i64::from(at.timestamp_subsec_nanos() > 0);
    std::time::UNIX_EPOCH + std::time::Duration::from_secs(u64::try_from(whole).unwrap_or(0))
}

/// What decides whether and when a reminder fires.
fn reminder_state(task: &Task) -> (Option<DateTime<Utc>>, bool, bool) {
    (task.reminder_at, task.completed, task.deleted_at.is_some())
}
