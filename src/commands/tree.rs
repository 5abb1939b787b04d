//! Subtask trees in the write path. A write that meets a tree holds the user's tree lock (see
//! the migration `20261211000001_subtasks.sql`) and locks every task row it will touch (the
//! task's parents and its subtree) before its first write, so neither its own statements nor
//! the count triggers wait for a task row while holding the change counter.
//!
//! A command that sets a parent takes the tree lock before any task row (`run`); one that only
//! finds out after locking its task (completing a parent, editing a subtask) tries it, and
//! starts again from the top, waiting for it first, if another write holds it.

use chrono::{DateTime, Utc};
use sqlx::PgConnection;
use uuid::Uuid;

use super::WriteError;
use crate::db::tasks::{Task, tree};
use crate::domain::{Invalid, TaskFields};
use crate::jobs::task_jobs;

/// A top-level task is level 1; subtasks go down to this level.
pub const MAX_LEVELS: i32 = 4;
/// Live subtasks one task may have.
pub const MAX_CHILDREN: i32 = 200;

/// Whether a write to this task touches a tree: it has a parent or live subtasks. Read from the
/// locked row: a subtask cannot be added to it meanwhile (that locks this row first).
pub fn in_tree(task: &Task) -> bool {
    task.parent_id.is_some() || task.subtask_count > 0
}

/// Holds the tree lock for a write that has locked a task row already: only a try, since
/// waiting here could deadlock against a write that holds it and waits for that row.
pub async fn enter(conn: &mut PgConnection, user: Uuid) -> Result<(), WriteError> {
    match tree::try_lock(conn, user).await? {
        true => Ok(()),
        false => Err(WriteError::TreeBusy),
    }
}

fn on_parent(message: &'static str) -> WriteError {
    WriteError::Invalid(vec![Invalid::new("parent_id", message)])
}

fn on_project() -> WriteError {
    WriteError::Invalid(vec![Invalid::new(
        "project_id",
        "a subtask is in its parent's project: move the parent, or give the task another parent_id",
    )])
}

/// Checks the parent `fields` names for `task` (`None`: a new task), locks it, and puts the
/// task in the parent's project. `keeps_project`: the client did not ask for another project.
/// `pending`: subtasks the caller has checked for the same parent but not written yet (a
/// batch's earlier creates, inserted together), which the stored count does not show.
pub async fn adopt(
    conn: &mut PgConnection,
    user: Uuid,
    task: Option<&Task>,
    fields: &mut TaskFields,
    keeps_project: bool,
    pending: i32,
) -> Result<(), WriteError> {
    let Some(parent_id) = fields.parent_id else { return Ok(()) };
    // Another user's task, a trashed one and a missing one are the same answer.
    let parent = tree::lock_rows(conn, user, &[parent_id])
        .await?
        .pop()
        .filter(|p| p.deleted_at.is_none())
        .ok_or_else(|| on_parent("is not one of your tasks"))?;
    let ancestry = tree::ancestry(conn, user, parent_id).await?;
    let height = match task {
        Some(task) if ancestry.contains(&task.id) => {
            return Err(on_parent("cannot be the task itself or one of its subtasks"));
        }
        Some(task) => tree::height(conn, task).await?,
        None => 1,
    };
    if i32::try_from(ancestry.len()).unwrap_or(i32::MAX).saturating_add(height) > MAX_LEVELS {
        return Err(on_parent("subtasks nest at most four levels deep"));
    }
    if parent.subtask_count.saturating_add(pending) >= MAX_CHILDREN {
        return Err(on_parent("that task has the most subtasks a task may have (200)"));
    }
    if fields.project_id != parent.project_id {
        match keeps_project {
            true => fields.project_id = parent.project_id,
            false => return Err(on_project()),
        }
    }
    Ok(())
}

/// Places a task under `parent` that the write gave no position: after its last live sibling.
/// Called after [`adopt`], which locked the parent.
pub async fn append(
    conn: &mut PgConnection,
    user: Uuid,
    parent: Uuid,
    fields: &mut TaskFields,
) -> Result<(), WriteError> {
    if fields.position.is_none() {
        fields.position = Some(tree::next_position(conn, user, parent).await?);
    }
    Ok(())
}

/// A subtask that keeps its parent stays in its project: left out or null, `project_id` follows
/// the parent; another project is refused.
pub fn keep_parents_project(current: &Task, fields: &mut TaskFields) -> Result<(), WriteError> {
    match fields.project_id {
        _ if fields.project_id == current.project_id => Ok(()),
        None => {
            fields.project_id = current.project_id;
            Ok(())
        }
        Some(_) => Err(on_project()),
    }
}

/// Locks the rows a write to `root` touches besides `root`: the given parents and its subtree,
/// in id order. Returns the subtree as locked.
pub async fn lock_around(
    conn: &mut PgConnection,
    user: Uuid,
    root: &Task,
    parents: &[Option<Uuid>],
) -> Result<Vec<Task>, WriteError> {
    let below = tree::descendants(conn, user, root.id).await?;
    let mut ids: Vec<Uuid> = below.iter().copied().chain(parents.iter().flatten().copied()).collect();
    ids.sort();
    ids.dedup();
    ids.retain(|id| *id != root.id);
    let rows = tree::lock_rows(conn, user, &ids).await?;
    Ok(rows.into_iter().filter(|t| below.contains(&t.id)).collect())
}

fn live(subtree: &[Task]) -> impl Iterator<Item = &Task> {
    subtree.iter().filter(|t| t.deleted_at.is_none())
}

/// Completes the open live tasks of `subtree` at `at`, cancelling their reminders.
pub async fn complete_all(
    conn: &mut PgConnection,
    user: Uuid,
    subtree: &[Task],
    at: DateTime<Utc>,
) -> Result<(), WriteError> {
    let open: Vec<Uuid> = live(subtree).filter(|t| !t.completed).map(|t| t.id).collect();
    let after = tree::complete(conn, user, &open, at).await?;
    sync_jobs(conn, subtree, &after).await
}

/// Moves the live tasks of `subtree` to the trash with `root`, cancelling their reminders.
pub async fn trash_all(
    conn: &mut PgConnection,
    user: Uuid,
    subtree: &[Task],
    root: Uuid,
) -> Result<(), WriteError> {
    let ids: Vec<Uuid> = live(subtree).map(|t| t.id).collect();
    let after = tree::trash_with(conn, user, &ids, root).await?;
    sync_jobs(conn, subtree, &after).await
}

/// Brings back the tasks trashed with their root, with their jobs.
pub async fn restore_all(conn: &mut PgConnection, user: Uuid, subtree: &[Task]) -> Result<(), WriteError> {
    let ids: Vec<Uuid> = subtree.iter().map(|t| t.id).collect();
    let after = tree::restore(conn, user, &ids).await?;
    sync_jobs(conn, subtree, &after).await
}

/// Moves every task of `subtree`, trashed ones included, to `project` as its root moves.
pub async fn move_all(
    conn: &mut PgConnection,
    user: Uuid,
    subtree: &[Task],
    project: Option<Uuid>,
) -> Result<(), WriteError> {
    let ids: Vec<Uuid> = subtree.iter().filter(|t| t.project_id != project).map(|t| t.id).collect();
    tree::move_to(conn, user, &ids, project).await?;
    Ok(())
}

async fn sync_jobs(conn: &mut PgConnection, before: &[Task], after: &[Task]) -> Result<(), WriteError> {
    for task in after {
        let was = before.iter().find(|t| t.id == task.id);
        task_jobs::sync(conn, was, task).await?;
    }
    Ok(())
}
