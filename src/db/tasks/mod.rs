//! Queries on tasks. Writers pass their open transaction; readers pass the pool.

mod row;
pub mod tree;
mod write;

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgExecutor};
use uuid::Uuid;

pub use crate::domain::Task;
pub(in crate::db) use row::{COLUMNS, TaskRow};
pub use write::{Derived, NewTask, Series, insert, occurrence, set_completed, subtask_copy, update};

/// Locks these tasks of the user (live or trashed) in id order; ids that are not the user's are
/// skipped (their operations answer 404 when they run).
pub async fn lock_many(conn: &mut PgConnection, user_id: Uuid, ids: &[Uuid]) -> Result<(), sqlx::Error> {
    if ids.is_empty() {
        return Ok(());
    }
    sqlx::query("SELECT 1 FROM tasks WHERE user_id = $1 AND id = ANY($2) ORDER BY id FOR NO KEY UPDATE")
        .bind(user_id)
        .bind(ids)
        .execute(conn)
        .await?;
    Ok(())
}

/// Which of these project ids are the user's, locked (in id order) for tasks to go into them.
pub async fn owned_projects(
    conn: &mut PgConnection,
    user_id: Uuid,
    ids: &[Uuid],
) -> Result<Vec<Uuid>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT id FROM projects WHERE user_id = $1 AND id = ANY($2) ORDER BY id FOR NO KEY UPDATE",
    )
    .bind(user_id)
    .bind(ids)
    .fetch_all(conn)
    .await
}

/// A live (not trashed) task of this user.
pub async fn find_live(
    conn: impl PgExecutor<'_>,
    user_id: Uuid,
    id: Uuid,
) -> Result<Option<Task>, sqlx::Error> {
    fetch_one(conn, "WHERE id = $1 AND user_id = $2 AND deleted_at IS NULL", user_id, id).await
}

/// A task of this user whether or not it is in the trash, for jobs that re-check it.
pub async fn find_any(
    conn: impl PgExecutor<'_>,
    user_id: Uuid,
    id: Uuid,
) -> Result<Option<Task>, sqlx::Error> {
    fetch_one(conn, "WHERE id = $1 AND user_id = $2", user_id, id).await
}

/// Locks a live task for the rest of the transaction, so checks and the write see one state.
pub async fn lock_live(
    conn: &mut PgConnection,
    user_id: Uuid,
    id: Uuid,
) -> Result<Option<Task>, sqlx::Error> {
    // NO KEY UPDATE: the id never changes, and a worker's key-share lock (a reminder delivery
    // being recorded) must not make the user's writes wait.
    fetch_one(conn, "WHERE id = $1 AND user_id = $2 AND deleted_at IS NULL FOR NO KEY UPDATE", user_id, id)
        .await
}

/// Locks a trashed task, for restore.
pub async fn lock_trashed(
    conn: &mut PgConnection,
    user_id: Uuid,
    id: Uuid,
) -> Result<Option<Task>, sqlx::Error> {
    fetch_one(
        conn,
        "WHERE id = $1 AND user_id = $2 AND deleted_at IS NOT NULL FOR NO KEY UPDATE",
        user_id,
        id,
    )
    .await
}

async fn fetch_one(
    conn: impl PgExecutor<'_>,
    filter: &'static str,
    user_id: Uuid,
    id: Uuid,
) -> Result<Option<Task>, sqlx::Error> {
    let row: Option<TaskRow> =
        sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM tasks {filter}")))
            .bind(id)
            .bind(user_id)
            .fetch_optional(conn)
            .await?;
    Ok(row.map(Task::from))
}

/// Shows on a completed occurrence why its successor waits, or clears that (`None`). A change
/// the owner sees, so the version moves and the change feed carries it.
pub async fn set_series_paused(
    conn: &mut PgConnection,
    task: &Task,
    reason: Option<&str>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE tasks SET series_paused = $3, updated_at = now(), version = version + 1
         WHERE id = $1 AND user_id = $2 AND series_paused IS DISTINCT FROM $3",
    )
    .bind(task.id)
    .bind(task.user_id)
    .bind(reason)
    .execute(conn)
    .await?;
    Ok(())
}

/// A completed occurrence whose series waits: its owner, id, series, place and completion.
pub type Paused = (Uuid, Uuid, Uuid, DateTime<Utc>, DateTime<Utc>);

/// Completed occurrences whose series is paused for the task limit, of accounts that now have
/// room for at least one more task: oldest first, at most `limit`.
pub async fn paused_with_room(
    conn: impl PgExecutor<'_>,
    max_tasks: u32,
    limit: i64,
) -> Result<Vec<Paused>, sqlx::Error> {
    sqlx::query_as(
        "SELECT t.user_id, t.id, t.series_id, t.occurrence_at, t.completed_at FROM tasks t
         WHERE t.series_paused IS NOT NULL AND t.completed AND t.deleted_at IS NULL
           AND t.series_id IS NOT NULL AND t.occurrence_at IS NOT NULL AND t.completed_at IS NOT NULL
           AND coalesce((SELECT live + trashed FROM task_counts c WHERE c.user_id = t.user_id), 0) < $1
         ORDER BY t.updated_at LIMIT $2",
    )
    .bind(i64::from(max_tasks))
    .bind(limit)
    .fetch_all(conn)
    .await
}

pub async fn move_to_trash(conn: &mut PgConnection, task: &Task) -> Result<Task, sqlx::Error> {
    write_returning(conn, "deleted_at = now(), trashed_with = id", task).await
}

async fn write_returning(
    conn: &mut PgConnection,
    set: &'static str,
    task: &Task,
) -> Result<Task, sqlx::Error> {
    let row: TaskRow = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "UPDATE tasks SET {set}, updated_at = now(), version = version + 1
         WHERE id = $1 AND user_id = $2 RETURNING {COLUMNS}"
    )))
    .bind(task.id)
    .bind(task.user_id)
    .fetch_one(conn)
    .await?;
    Ok(row.into())
}

/// Records whether this occurrence's successor is queued (or made). Not a user-visible change, so
/// the version stays.
pub async fn set_next_occurrence_queued(
    conn: &mut PgConnection,
    task: &Task,
    queued: bool,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE tasks SET next_occurrence_queued = $3 WHERE id = $1 AND user_id = $2")
        .bind(task.id)
        .bind(task.user_id)
        .bind(queued)
        .execute(conn)
        .await?;
    Ok(())
}

/// Whether the series already has an occurrence after `occurrence_at`: its successor was made.
pub async fn has_successor(
    conn: &mut PgConnection,
    user_id: Uuid,
    series_id: Uuid,
    occurrence_at: DateTime<Utc>,
) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM tasks WHERE user_id = $3 AND series_id = $1 AND occurrence_at > $2)",
    )
    .bind(series_id)
    .bind(occurrence_at)
    .bind(user_id)
    .fetch_one(conn)
    .await
}

/// Locks a task of this user, trashed or not, for a job that acts on it. The user row is locked
/// first (`KEY SHARE`, which only blocks the account's deletion), the order account deletion
/// takes them in, so the two cannot deadlock.
pub async fn lock_for_job(
    conn: &mut PgConnection,
    user_id: Uuid,
    id: Uuid,
) -> Result<Option<Task>, sqlx::Error> {
    if !super::users::lock_key_share(conn, user_id).await? {
        return Ok(None);
    }
    fetch_one(conn, "WHERE id = $1 AND user_id = $2 FOR NO KEY UPDATE", user_id, id).await
}

/// Locks the account and all its tasks, in id order, before the account is removed: the same
/// order task writes take (task row, then its jobs), so the two cannot deadlock.
pub async fn lock_account(conn: &mut PgConnection, user_id: Uuid) -> Result<bool, sqlx::Error> {
    let exists: Option<i32> = sqlx::query_scalar("SELECT 1 FROM users WHERE id = $1 FOR UPDATE")
        .bind(user_id)
        .fetch_optional(&mut *conn)
        .await?;
    sqlx::query("SELECT id FROM tasks WHERE user_id = $1 ORDER BY id FOR UPDATE")
        .bind(user_id)
        .execute(conn)
        .await?;
    Ok(exists.is_some())
}

/// Locks every task of a project, trashed ones included, in id order.
pub async fn lock_in_project(
    conn: &mut PgConnection,
    user_id: Uuid,
    project_id: Uuid,
) -> Result<Vec<Task>, sqlx::Error> {
    let rows: Vec<TaskRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM tasks WHERE user_id = $2 AND project_id = $1 ORDER BY id FOR NO KEY UPDATE"
    )))
    .bind(project_id)
    .bind(user_id)
    .fetch_all(conn)
    .await?;
    Ok(rows.into_iter().map(Task::from).collect())
}

/// Takes every task out of a project, moving the live ones to the trash.
pub async fn trash_project_tasks(
    conn: &mut PgConnection,
    user_id: Uuid,
    project_id: Uuid,
) -> Result<Vec<Task>, sqlx::Error> {
    let rows: Vec<TaskRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "UPDATE tasks SET project_id = NULL, deleted_at = coalesce(deleted_at, now()),
                updated_at = now(), version = version + 1
         WHERE user_id = $2 AND project_id = $1
         RETURNING {COLUMNS}"
    )))
    .bind(project_id)
    .bind(user_id)
    .fetch_all(conn)
    .await?;
    Ok(rows.into_iter().map(Task::from).collect())
}

/// How many tasks the user holds, trashed ones included, with the count locked until commit so
/// an insert that checks it cannot race another. Taken after the task rows, in the lock order.
pub async fn count_all_locked(conn: &mut PgConnection, user_id: Uuid) -> Result<i64, sqlx::Error> {
    let count: Option<i64> =
        sqlx::query_scalar("SELECT live + trashed FROM task_counts WHERE user_id = $1 FOR NO KEY UPDATE")
            .bind(user_id)
            .fetch_optional(conn)
            .await?;
    Ok(count.unwrap_or(0))
}

/// How many tasks the user holds, trashed ones included, from the trigger-kept count.
pub async fn count_all(conn: &mut PgConnection, user_id: Uuid) -> Result<i64, sqlx::Error> {
    let count: Option<i64> = sqlx::query_scalar("SELECT live + trashed FROM task_counts WHERE user_id = $1")
        .bind(user_id)
        .fetch_optional(conn)
        .await?;
    Ok(count.unwrap_or(0))
}

/// A page of a user's tasks, trashed ones included, for the data export: in creation order, after
/// the `(created_at, id)` of the previous page's last task.
pub async fn export_page(
    conn: impl PgExecutor<'_>,
    user_id: Uuid,
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: i64,
) -> Result<Vec<Task>, sqlx::Error> {
    let rows: Vec<TaskRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM tasks
         WHERE user_id = $1 AND ($2::timestamptz IS NULL OR (created_at, id) > ($2, $3))
         ORDER BY created_at, id LIMIT $4"
    )))
    .bind(user_id)
    .bind(after.map(|(at, _)| at))
    .bind(after.map(|(_, id)| id))
    .bind(limit)
    .fetch_all(conn)
    .await?;
    Ok(rows.into_iter().map(Task::from).collect())
}

/// The time zone new tasks of this user default to.
pub async fn user_timezone(conn: &mut PgConnection, user_id: Uuid) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar("SELECT timezone FROM users WHERE id = $1").bind(user_id).fetch_optional(conn).await
}

/// Recurring tasks written before `series_start` and `next_occurrence_at` were stored get them,
/// in batches: each series starts at its current occurrence, as stepping did before. Not a
/// change the owner sees (the value is what reads computed until now), so the version stays.
pub async fn backfill_series(pool: &sqlx::PgPool) -> Result<u64, sqlx::Error> {
    let mut filled = 0;
    loop {
        let rows: Vec<TaskRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM tasks WHERE recurrence_rule IS NOT NULL AND series_start IS NULL
             ORDER BY id LIMIT 500"
        )))
        .fetch_all(pool)
        .await?;
        if rows.is_empty() {
            return Ok(filled);
        }
        for row in rows {
            let mut task = Task::from(row);
            task.series_start = task.due_at;
            let next = task.next_occurrence(task.completed_at).ok().flatten().map(|next| next.due_at);
            sqlx::query(
                "UPDATE tasks SET series_start = coalesce(due_at, created_at), next_occurrence_at = $2
                 WHERE id = $1 AND user_id = $3",
            )
            .bind(task.id)
            .bind(next)
            .bind(task.user_id)
            .execute(pool)
            .await?;
            filled += 1;
        }
    }
}
