//! Creates the occurrence that follows a completed one.

use sqlx::PgPool;
use uuid::Uuid;

use super::{Handled, JobError};
use crate::db::tasks;
use crate::jobs::task_jobs::{self, NextOccurrence};

/// Inserts the next occurrence of `job`'s series, exactly once: the task row is locked, its
/// state re-checked, and the insert is idempotent on (`series_id`, `occurrence_at`), so a retry,
/// a second worker or a toggled-again occurrence finds the successor already there.
///
/// It never goes through the web process's per-user actor; the database keeps the two
/// consistent. The source row's lock orders this after any write to that task, and the new
/// row is invisible to every writer until this transaction commits it at version 1.
#[tracing::instrument(skip_all, fields(task_id = %job.task_id, series_id = %job.series_id))]
pub async fn create_next(pool: &PgPool, job: &NextOccurrence) -> Result<Handled, JobError> {
    let mut tx = pool.begin().await?;
    let Some(task) = tasks::lock_for_job(&mut tx, job.user_id, job.task_id).await? else {
        return Ok(Handled::Cancelled("task_gone"));
    };
    if task.deleted_at.is_some() || !task.completed {
        // Reopened or trashed after this job was fetched. Completing it again must queue a
        // fresh follow-up, so the flag that stops a second one is cleared — unless this is a
        // rerun of a job that already made the successor.
        let made = match task.series_id.zip(task.occurrence_at) {
            Some((series, at)) => tasks::has_successor(&mut tx, series, at).await?,
            None => false,
        };
        if !made {
            tasks::set_next_occurrence_queued(&mut tx, task.id, false).await?;
        }
        tx.commit().await?;
        return Ok(Handled::Cancelled("not_completed"));
    }
    let next = match task.next_occurrence() {
        Ok(Some(next)) => next,
        Ok(None) => {
            return Ok(Handled::Cancelled(if task.is_recurring { "series_ended" } else { "not_recurring" }));
        }
        Err(err) => return Err(JobError::Permanent(format!("cannot step the series: {err}"))),
    };
    // Checked under the source's lock before inserting: a skipped insert would still take a
    // change number from the numbering trigger.
    if let Some((series, at)) = task.series_id.zip(task.occurrence_at)
        && tasks::has_successor(&mut tx, series, at).await?
    {
        tx.commit().await?;
        return Ok(Handled::Cancelled("already_created"));
    }
    let Some(created) = tasks::insert_occurrence(&mut tx, &task, Uuid::now_v7(), next).await? else {
        tx.commit().await?;
        return Ok(Handled::Cancelled("already_created"));
    };
    task_jobs::sync(&mut tx, None, &created).await?;
    tx.commit().await?;
    tracing::info!(next_task_id = %created.id, due_at = ?created.due_at, "next occurrence created");
    Ok(Handled::Done)
}
