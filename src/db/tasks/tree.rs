//! Queries on subtask trees: the user's tree lock, a task's level and subtree, and the writes
//! that carry a subtree along with its root. Callers hold the tree lock and have locked every
//! row these writes touch (see `commands/tree.rs`).

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgExecutor};
use uuid::Uuid;

use super::Task;
use super::row::{COLUMNS, TaskRow};

/// Waits for the user's tree lock, held until the transaction ends. Taken at the user's step of
/// the lock order: before any task row.
pub async fn lock(conn: &mut PgConnection, user_id: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT pg_advisory_xact_lock(task_tree_lock_key($1))").bind(user_id).execute(conn).await?;
    Ok(())
}

/// Takes the user's tree lock if nobody else holds it (or this transaction does already).
pub async fn try_lock(conn: &mut PgConnection, user_id: Uuid) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar("SELECT pg_try_advisory_xact_lock(task_tree_lock_key($1))")
        .bind(user_id)
        .fetch_one(conn)
        .await
}

/// Every task below `root`, trashed ones included, nearest first. Bounded by the depth limit;
/// the level cap keeps a damaged tree from looping.
pub async fn descendants(
    conn: &mut PgConnection,
    user_id: Uuid,
    root: Uuid,
) -> Result<Vec<Uuid>, sqlx::Error> {
    sqlx::query_scalar(
        "WITH RECURSIVE below (id, level) AS (
             SELECT id, 1 FROM tasks WHERE user_id = $2 AND parent_id = $1
             UNION ALL
             SELECT t.id, b.level + 1 FROM tasks t JOIN below b ON t.parent_id = b.id
             WHERE t.user_id = $2 AND b.level < 5
         ) SELECT id FROM below ORDER BY level, id",
    )
    .bind(root)
    .bind(user_id)
    .fetch_all(conn)
    .await
}

/// The live tasks below `root`, each after its parent (for copying the subtree in order).
pub async fn live_subtree(conn: &mut PgConnection, root: &Task) -> Result<Vec<Task>, sqlx::Error> {
    let rows: Vec<TaskRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "WITH RECURSIVE below (id, level) AS (
             SELECT id, 1 FROM tasks WHERE user_id = $2 AND parent_id = $1 AND deleted_at IS NULL
             UNION ALL
             SELECT t.id, b.level + 1 FROM tasks t JOIN below b ON t.parent_id = b.id
             WHERE t.user_id = $2 AND t.deleted_at IS NULL AND b.level < 5
         )
         SELECT {COLUMNS} FROM tasks JOIN below USING (id) WHERE tasks.user_id = $2
         ORDER BY below.level, position, created_at, id"
    )))
    .bind(root.id)
    .bind(root.user_id)
    .fetch_all(conn)
    .await?;
    Ok(rows.into_iter().map(Task::from).collect())
}

/// The place after the last live subtask of `parent` (0 for its first), or the last place when
/// that is taken. The caller holds the parent's row lock, so appends to one parent take turns.
pub async fn next_position(conn: &mut PgConnection, user_id: Uuid, parent: Uuid) -> Result<i32, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT least(coalesce(max(position) + 1, 0), 1000000) FROM tasks
         WHERE user_id = $1 AND parent_id = $2 AND deleted_at IS NULL",
    )
    .bind(user_id)
    .bind(parent)
    .fetch_one(conn)
    .await
}

/// How many levels `id` and its subtree span (1 for a task with no subtasks).
pub async fn height(conn: &mut PgConnection, task: &Task) -> Result<i32, sqlx::Error> {
    sqlx::query_scalar(
        "WITH RECURSIVE below (id, level) AS (
             SELECT $1::uuid, 1
             UNION ALL
             SELECT t.id, b.level + 1 FROM tasks t JOIN below b ON t.parent_id = b.id
             WHERE t.user_id = $2 AND b.level < 6
         ) SELECT max(level) FROM below",
    )
    .bind(task.id)
    .bind(task.user_id)
    .fetch_one(conn)
    .await
}

/// `id` and its ancestors, nearest first (at most a few: the depth is bounded).
pub async fn ancestry(conn: &mut PgConnection, user_id: Uuid, id: Uuid) -> Result<Vec<Uuid>, sqlx::Error> {
    sqlx::query_scalar(
        "WITH RECURSIVE up (id, parent_id, level) AS (
             SELECT id, parent_id, 1 FROM tasks WHERE id = $1 AND user_id = $2
             UNION ALL
             SELECT t.id, t.parent_id, u.level + 1 FROM tasks t JOIN up u ON t.id = u.parent_id
             WHERE t.user_id = $2 AND u.level < 6
         ) SELECT id FROM up ORDER BY level",
    )
    .bind(id)
    .bind(user_id)
    .fetch_all(conn)
    .await
}

/// These tasks, locked (the caller holds the tree lock), in id order.
pub async fn lock_rows(
    conn: &mut PgConnection,
    user_id: Uuid,
    ids: &[Uuid],
) -> Result<Vec<Task>, sqlx::Error> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let rows: Vec<TaskRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM tasks WHERE user_id = $1 AND id = ANY($2) ORDER BY id FOR NO KEY UPDATE"
    )))
    .bind(user_id)
    .bind(ids)
    .fetch_all(conn)
    .await?;
    Ok(rows.into_iter().map(Task::from).collect())
}

/// Runs one `UPDATE tasks SET {set}` over these ids of the user's (and `extra` bound as `$2`),
/// bumping each row's version, and returns the rows as written.
async fn update_many<T>(
    conn: &mut PgConnection,
    user_id: Uuid,
    set: &'static str,
    ids: &[Uuid],
    extra: T,
) -> Result<Vec<Task>, sqlx::Error>
where
    T: for<'q> sqlx::Encode<'q, sqlx::Postgres> + sqlx::Type<sqlx::Postgres> + Send,
{
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let rows: Vec<TaskRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "UPDATE tasks SET {set}, updated_at = now(), version = version + 1
         WHERE user_id = $3 AND id = ANY($1) RETURNING {COLUMNS}"
    )))
    .bind(ids)
    .bind(extra)
    .bind(user_id)
    .fetch_all(conn)
    .await?;
    Ok(rows.into_iter().map(Task::from).collect())
}

/// Completes these open tasks at `at` (subtasks never recur: no next occurrence to work out).
pub async fn complete(
    conn: &mut PgConnection,
    user_id: Uuid,
    ids: &[Uuid],
    at: DateTime<Utc>,
) -> Result<Vec<Task>, sqlx::Error> {
    update_many(conn, user_id, "completed = true, completed_at = $2, next_occurrence_at = NULL", ids, at)
        .await
}

/// Moves these tasks to the trash along with `root`, which a restore of `root` brings back.
pub async fn trash_with(
    conn: &mut PgConnection,
    user_id: Uuid,
    ids: &[Uuid],
    root: Uuid,
) -> Result<Vec<Task>, sqlx::Error> {
    update_many(conn, user_id, "deleted_at = now(), trashed_with = $2", ids, root).await
}

/// Takes these tasks out of the trash (they went there with their root, which comes back too).
pub async fn restore(conn: &mut PgConnection, user_id: Uuid, ids: &[Uuid]) -> Result<Vec<Task>, sqlx::Error> {
    update_many(conn, user_id, "deleted_at = NULL, trashed_with = $2", ids, None::<Uuid>).await
}

/// Takes a task out of the trash; `detach` puts it at the top level.
pub async fn restore_root(conn: &mut PgConnection, task: &Task, detach: bool) -> Result<Task, sqlx::Error> {
    let row: TaskRow = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "UPDATE tasks SET deleted_at = NULL, trashed_with = NULL,
                parent_id = CASE WHEN $2 THEN NULL ELSE parent_id END,
                updated_at = now(), version = version + 1
         WHERE id = $1 AND user_id = $3 RETURNING {COLUMNS}"
    )))
    .bind(task.id)
    .bind(detach)
    .bind(task.user_id)
    .fetch_one(conn)
    .await?;
    Ok(row.into())
}

/// Moves these tasks to `project`, as their root moved.
pub async fn move_to(
    conn: &mut PgConnection,
    user_id: Uuid,
    ids: &[Uuid],
    project: Option<Uuid>,
) -> Result<Vec<Task>, sqlx::Error> {
    update_many(conn, user_id, "project_id = $2", ids, project).await
}

/// The trashed tasks below `task` that went to the trash in the same deletion as it (`with`:
/// the task that deletion named), in id order. Subtasks trashed on their own before are not.
pub async fn trashed_with(
    conn: &mut PgConnection,
    task: &Task,
    with: Uuid,
) -> Result<Vec<Uuid>, sqlx::Error> {
    sqlx::query_scalar(
        "WITH RECURSIVE below (id, level) AS (
             SELECT id, 1 FROM tasks WHERE user_id = $3 AND parent_id = $1
             UNION ALL
             SELECT t.id, b.level + 1 FROM tasks t JOIN below b ON t.parent_id = b.id
             WHERE t.user_id = $3 AND b.level < 5
         )
         SELECT t.id FROM below JOIN tasks t USING (id)
         WHERE t.user_id = $3 AND t.deleted_at IS NOT NULL AND t.trashed_with = $2 ORDER BY t.id",
    )
    .bind(task.id)
    .bind(with)
    .bind(task.user_id)
    .fetch_all(conn)
    .await
}

/// A live task's live subtasks, in their manual order (at most 200).
pub async fn children(
    conn: impl PgExecutor<'_>,
    user_id: Uuid,
    parent: Uuid,
) -> Result<Vec<Task>, sqlx::Error> {
    let rows: Vec<TaskRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM tasks WHERE parent_id = $1 AND user_id = $2 AND deleted_at IS NULL
         ORDER BY position, created_at, id"
    )))
    .bind(parent)
    .bind(user_id)
    .fetch_all(conn)
    .await?;
    Ok(rows.into_iter().map(Task::from).collect())
}
