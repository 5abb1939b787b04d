//! The recurrence job: when an occurrence of a series is completed, a write queues the job that
//! creates the next one, and [`create_next`] makes it exactly once.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use super::{AttemptInfo, Context, EnqueueError, Handled, Job, JobError, Schedule, enqueue, task_jobs};
use crate::config::WorkerSettings;
use crate::db::queue::cancel_for_task;
use crate::db::tasks::{self, Task};
use crate::domain::recurrence::StepError;
use crate::stepping::{self, SeriesAt};

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

    fn concurrency(settings: &WorkerSettings) -> usize {
        settings.recurrence_concurrency
    }

    async fn handle(&self, ctx: &Context, _attempt: AttemptInfo) -> Result<Handled, JobError> {
        create_next(&ctx.pool, self, ctx.max_tasks).await
    }
}

/// Queues the follow-up when a recurring occurrence is completed, and withdraws it when the
/// occurrence is reopened or trashed first.
pub(super) async fn sync(
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
            tasks::set_next_occurrence_queued(conn, after, false).await?;
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
    tasks::set_next_occurrence_queued(conn, after, true).await?;
    Ok(())
}

/// Inserts the next occurrence of `job`'s series, exactly once: the task row is locked, its
/// state re-checked, and the insert is idempotent on (`series_id`, `occurrence_at`), so a retry,
/// a second worker or a toggled-again occurrence finds the successor already there.
///
/// It never goes through the web process's per-user actor; the database keeps the two
/// consistent. The source row's lock orders this after any write to that task, and the new
/// row is invisible to every writer until this transaction commits it at version 1.
///
/// An account at `max_tasks` gets no new occurrence: the series pauses, which the completed
/// task shows (`series_paused`), until [`resume_paused`] finds room.
#[tracing::instrument(skip_all, fields(task_id = %job.task_id, series_id = %job.series_id))]
pub async fn create_next(pool: &PgPool, job: &NextOccurrence, max_tasks: u32) -> Result<Handled, JobError> {
    let mut tx = pool.begin().await?;
    // The user's tree lock, before any task row: the occurrence may bring a copy of its subtree,
    // and the tree's commit check must not find the lock held by a web write.
    tasks::tree::lock(&mut tx, job.user_id).await?;
    let (handled, _) = make_next(&mut tx, job, max_tasks).await?;
    tx.commit().await?;
    Ok(handled)
}

/// [`create_next`] in the caller's transaction, which holds the user's tree lock: a CalDAV
/// client that completes a recurring to-do sees the next occurrence in the answer to its write.
/// Returns the occurrence made, if one was.
pub async fn make_next(
    tx: &mut PgConnection,
    job: &NextOccurrence,
    max_tasks: u32,
) -> Result<(Handled, Option<Task>), JobError> {
    let Some(task) = tasks::lock_for_job(&mut *tx, job.user_id, job.task_id).await? else {
        return Ok((Handled::Cancelled("task_gone"), None));
    };
    if task.deleted_at.is_some() || !task.completed {
        // Reopened or trashed after this job was fetched. Completing it again must queue a
        // fresh follow-up, so the flag that stops a second one is cleared — unless this is a
        // rerun of a job that already made the successor.
        let made = match task.series_id.zip(task.occurrence_at) {
            Some((series, at)) => tasks::has_successor(&mut *tx, task.user_id, series, at).await?,
            None => false,
        };
        if !made {
            tasks::set_next_occurrence_queued(&mut *tx, &task, false).await?;
        }
        return Ok((Handled::Cancelled("not_completed"), None));
    }
    // Checked under the source's lock before inserting: a skipped insert would still take a
    // change number from the numbering trigger.
    if let Some((series, at)) = task.series_id.zip(task.occurrence_at)
        && tasks::has_successor(&mut *tx, task.user_id, series, at).await?
    {
        return Ok((Handled::Cancelled("already_created"), None));
    }
    let Some(series) = SeriesAt::of_task(&task) else {
        return Ok((Handled::Cancelled("not_recurring"), None));
    };
    // The write that completed the task stepped these same inputs within the same budget, so
    // neither step fails here unless the rule's code changed meanwhile.
    let completed_at = task.completed_at;
    let steps = stepping::off_thread(move || {
        let next = series.step(completed_at)?;
        let after = next.map(|next| series.at(next).step(None)).transpose()?.flatten();
        Ok::<_, StepError>(next.map(|next| (next, after.map(|after| after.due_at))))
    });
    let (next, next_after) = match steps.await.map_err(|e| JobError::Transient(e.to_string()))? {
        Ok(Some(next)) => next,
        Ok(None) => return Ok((Handled::Cancelled("series_ended"), None)),
        Err(err) => return Err(JobError::Permanent(format!("cannot step the series: {err}"))),
    };
    // Occurrences obey the task limit like every create. The count is locked (after the task
    // row, in the lock order) so a create in a web process cannot slip past it meanwhile.
    // The next occurrence brings a fresh copy of the live subtree; they count as tasks too.
    let below = tasks::tree::live_subtree(&mut *tx, &task).await?;
    let adding = i64::try_from(below.len()).unwrap_or(i64::MAX).saturating_add(1);
    if tasks::count_all_locked(&mut *tx, task.user_id).await?.saturating_add(adding) > i64::from(max_tasks) {
        tasks::set_series_paused(&mut *tx, &task, Some(TASK_LIMIT)).await?;
        tracing::info!(max_tasks, "series paused: the account holds its maximum of tasks");
        return Ok((Handled::Cancelled(TASK_LIMIT), None));
    }
    // The stored fields were valid when written; rules tightened since refuse them here too.
    let fields =
        task.fields().map_err(|e| JobError::Permanent(format!("the stored task no longer parses: {e}")))?;
    let row = tasks::occurrence(&task, fields, Uuid::now_v7(), next, next_after);
    let Some(created) = tasks::insert(&mut *tx, task.user_id, &[row], None).await?.pop() else {
        return Ok((Handled::Cancelled("already_created"), None));
    };
    tasks::set_series_paused(&mut *tx, &task, None).await?;
    task_jobs::sync(&mut *tx, None, &created).await?;
    for copy in copy_subtree(&mut *tx, &task, &created, &below).await? {
        task_jobs::sync(&mut *tx, None, &copy).await?;
    }
    tracing::info!(next_task_id = %created.id, due_at = ?created.due_at, "next occurrence created");
    Ok((Handled::Done, Some(created)))
}

/// Inserts a fresh, open copy of `below` (the completed occurrence's live subtree, each task after
/// its parent) under `created`, in one statement, with every time moved as the occurrence's due
/// time moved. Made in the transaction that made the occurrence, so exactly once with it.
async fn copy_subtree(
    conn: &mut sqlx::PgConnection,
    source: &tasks::Task,
    created: &tasks::Task,
    below: &[tasks::Task],
) -> Result<Vec<tasks::Task>, JobError> {
    if below.is_empty() {
        return Ok(Vec::new());
    }
    let shift = created.due_at.zip(source.due_at).map_or(chrono::TimeDelta::zero(), |(new, old)| new - old);
    let mut copied = std::collections::HashMap::from([(source.id, created.id)]);
    let mut rows = Vec::with_capacity(below.len());
    for task in below {
        let Some(parent) = task.parent_id.and_then(|p| copied.get(&p).copied()) else { continue };
        let fields = task
            .fields()
            .map_err(|e| JobError::Permanent(format!("a stored subtask no longer parses: {e}")))?;
        let id = Uuid::now_v7();
        copied.insert(task.id, id);
        rows.push(tasks::subtask_copy(task, fields, id, parent, created.project_id, shift));
    }
    Ok(tasks::insert(conn, created.user_id, &rows, None).await?)
}

/// Why a series waits: the account holds its maximum of tasks.
pub const TASK_LIMIT: &str = "task_limit_reached";

/// Series paused for the task limit whose account has room again, handled per maintenance run.
const RESUMED_PER_RUN: i64 = 500;

/// Makes the waiting occurrence of paused series whose account has room again, oldest first;
/// the maintenance job runs it. Returns how many were made.
pub async fn resume_paused(pool: &PgPool, max_tasks: u32) -> Result<u64, JobError> {
    let mut made = 0;
    let paused = tasks::paused_with_room(pool, max_tasks, RESUMED_PER_RUN).await?;
    for (user_id, task_id, series_id, occurrence_at, completed_at) in paused {
        // The handler locks and re-checks the task; the rest of the job only names it.
        let job = NextOccurrence { user_id, task_id, series_id, occurrence_at, completed_at };
        if create_next(pool, &job, max_tasks).await? == Handled::Done {
            made += 1;
        }
    }
    Ok(made)
}
