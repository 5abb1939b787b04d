//! Queries on projects. Task counts are kept by triggers on `tasks` (see the migration), so no
//! read here counts tasks.
//!
//! Lock order: a task row before its project's row. Task writes take them in that order (the
//! count triggers update the project after the task), and deleting a project locks its tasks
//! before the project.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::{PgConnection, PgExecutor};
use uuid::Uuid;

use super::tasks::{self, Task};
use crate::domain::{Color, Position, ProjectName};

/// A project as clients see it.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
#[cfg_attr(feature = "web", derive(utoipa::ToSchema))]
pub struct Project {
    pub id: Uuid,
    #[serde(skip)]
    pub user_id: Uuid,
    /// 1–100 characters; unique per user, ignoring case.
    pub name: String,
    /// `#rrggbb`, or null.
    pub color: Option<String>,
    /// Projects list lowest first.
    pub position: i32,
    /// Archived projects keep their tasks, which the task list leaves out unless asked for.
    pub archived: bool,
    /// Live tasks not completed.
    pub open_tasks: i32,
    /// Live (untrashed) tasks.
    pub total_tasks: i32,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub version: i64,
}

impl Project {
    /// Strong validator from identity and version, as tasks have.
    pub fn etag(&self) -> String {
        format!("\"{}-{}\"", self.id.simple(), self.version)
    }
}

/// Every editable field of a project.
#[derive(Debug, Clone)]
pub struct ProjectFields {
    pub name: ProjectName,
    pub color: Option<Color>,
    /// `None` on create: after the user's last project.
    pub position: Option<Position>,
    pub archived: bool,
}

pub(in crate::db) const COLUMNS: &str =
    "id, user_id, name, color, position, archived, open_tasks, total_tasks, created_at, updated_at, version";

/// Projects one account may hold: the list answers all of them at once.
pub const MAX_PER_USER: i64 = 1000;

pub async fn list(
    conn: impl PgExecutor<'_>,
    user_id: Uuid,
    archived: Option<bool>,
) -> Result<Vec<Project>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM projects WHERE user_id = $1 AND ($2::boolean IS NULL OR archived = $2)
         ORDER BY position, created_at, id LIMIT {MAX_PER_USER}"
    )))
    .bind(user_id)
    .bind(archived)
    .fetch_all(conn)
    .await
}

pub async fn find(
    conn: impl PgExecutor<'_>,
    user_id: Uuid,
    id: Uuid,
) -> Result<Option<Project>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM projects WHERE id = $1 AND user_id = $2"
    )))
    .bind(id)
    .bind(user_id)
    .fetch_optional(conn)
    .await
}

/// Locks the project for a change of its own fields. NO KEY UPDATE, so tasks being added to it
/// (which key-share lock it) do not wait.
pub async fn lock(conn: &mut PgConnection, user_id: Uuid, id: Uuid) -> Result<Option<Project>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM projects WHERE id = $1 AND user_id = $2 FOR NO KEY UPDATE"
    )))
    .bind(id)
    .bind(user_id)
    .fetch_optional(conn)
    .await
}

pub async fn count(conn: &mut PgConnection, user_id: Uuid) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT count(*) FROM projects WHERE user_id = $1").bind(user_id).fetch_one(conn).await
}

pub async fn insert(
    conn: &mut PgConnection,
    user_id: Uuid,
    id: Uuid,
    fields: &ProjectFields,
) -> Result<Project, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "INSERT INTO projects (id, user_id, name, color, position, archived)
         VALUES ($1, $2, $3, $4,
                 coalesce($5, (SELECT coalesce(max(position) + 1, 0) FROM projects WHERE user_id = $2)), $6)
         RETURNING {COLUMNS}"
    )))
    .bind(id)
    .bind(user_id)
    .bind(fields.name.as_str())
    .bind(fields.color.as_ref().map(Color::as_str))
    .bind(fields.position.map(Position::get))
    .bind(fields.archived)
    .fetch_one(conn)
    .await
}

/// Writes `fields` over the project; `None` when nothing would change (the version stays).
pub async fn update(
    conn: &mut PgConnection,
    user_id: Uuid,
    id: Uuid,
    fields: &ProjectFields,
) -> Result<Option<Project>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "UPDATE projects SET name = $2, color = $3, position = coalesce($4, position), archived = $5,
                updated_at = now(), version = version + 1
         WHERE id = $1 AND user_id = $6 AND (name, color, position, archived)
               IS DISTINCT FROM ($2, $3, coalesce($4, position), $5)
         RETURNING {COLUMNS}"
    )))
    .bind(id)
    .bind(fields.name.as_str())
    .bind(fields.color.as_ref().map(Color::as_str))
    .bind(fields.position.map(Position::get))
    .bind(fields.archived)
    .bind(user_id)
    .fetch_optional(conn)
    .await
}

/// Empties the project: its live tasks go to the trash and every task, trashed ones included,
/// leaves it (so a later restore lands in the inbox). Returns each live task before and after,
/// for their jobs to be cancelled. The tasks are locked in id order before any is written.
pub async fn empty(
    conn: &mut PgConnection,
    user_id: Uuid,
    project_id: Uuid,
) -> Result<Vec<(Task, Task)>, sqlx::Error> {
    let mut live: std::collections::HashMap<Uuid, Task> = tasks::lock_in_project(conn, user_id, project_id)
        .await?
        .into_iter()
        .filter(|t| t.deleted_at.is_none())
        .map(|t| (t.id, t))
        .collect();
    let after = tasks::trash_project_tasks(conn, user_id, project_id).await?;
    Ok(after.into_iter().filter_map(|task| live.remove(&task.id).map(|before| (before, task))).collect())
}

pub async fn delete(conn: &mut PgConnection, user_id: Uuid, id: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM projects WHERE id = $1 AND user_id = $2")
        .bind(id)
        .bind(user_id)
        .execute(conn)
        .await?;
    Ok(())
}
