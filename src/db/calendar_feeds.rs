//! Queries on calendar subscription feeds. Only a digest of each secret is stored (see the
//! migration), and a feed is found by that digest.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::{PgConnection, PgExecutor};
use uuid::Uuid;

use super::tasks::{COLUMNS as TASK_COLUMNS, TaskRow};
use crate::domain::Task;

/// A feed as its owner sees it: everything but the secret.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
#[cfg_attr(feature = "web", derive(utoipa::ToSchema))]
pub struct CalendarFeed {
    pub id: Uuid,
    /// The calendar's name in the subscribing app.
    pub name: String,
    /// The one project it covers; null: every project and the inbox.
    pub project_id: Option<Uuid>,
    /// The secret's prefix and last four characters, to tell feeds apart; not a secret.
    pub hint: String,
    pub created_at: DateTime<Utc>,
}

const COLUMNS: &str = "id, name, project_id, hint, created_at";

pub struct NewFeed<'a> {
    pub user_id: Uuid,
    /// `None`: the project's name, or `Tasks` for a feed of everything.
    pub name: Option<&'a str>,
    pub project_id: Option<Uuid>,
    pub digest: &'a [u8],
    pub hint: &'a str,
}

#[derive(Debug)]
pub enum Created {
    Feed(CalendarFeed),
    /// The account already has `max` feeds.
    LimitReached,
    /// `project_id` is not one of the account's projects.
    NoSuchProject,
    AccountGone,
}

/// Inserts a feed unless the account has `max` of them. The account row is locked first, so
/// concurrent creations on any process count one at a time; the project is key-share locked
/// (as the foreign key would), so it cannot go between the check and the insert.
pub async fn insert(conn: &mut PgConnection, feed: NewFeed<'_>, max: i64) -> Result<Created, sqlx::Error> {
    let locked: Option<i32> = sqlx::query_scalar("SELECT 1 FROM users WHERE id = $1 FOR NO KEY UPDATE")
        .bind(feed.user_id)
        .fetch_optional(&mut *conn)
        .await?;
    if locked.is_none() {
        return Ok(Created::AccountGone);
    }
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM calendar_feeds WHERE user_id = $1")
        .bind(feed.user_id)
        .fetch_one(&mut *conn)
        .await?;
    if count >= max {
        return Ok(Created::LimitReached);
    }
    let project_name = match feed.project_id {
        None => None,
        Some(project_id) => {
            let name: Option<String> =
                sqlx::query_scalar("SELECT name FROM projects WHERE id = $1 AND user_id = $2 FOR KEY SHARE")
                    .bind(project_id)
                    .bind(feed.user_id)
                    .fetch_optional(&mut *conn)
                    .await?;
            match name {
                Some(name) => Some(name),
                None => return Ok(Created::NoSuchProject),
            }
        }
    };
    let name = feed.name.map(str::to_owned).or(project_name).unwrap_or_else(|| "Tasks".to_owned());
    let created = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "INSERT INTO calendar_feeds (id, user_id, name, project_id, digest, hint)
         VALUES ($1, $2, $3, $4, $5, $6)
         RETURNING {COLUMNS}"
    )))
    .bind(Uuid::now_v7())
    .bind(feed.user_id)
    .bind(name)
    .bind(feed.project_id)
    .bind(feed.digest)
    .bind(feed.hint)
    .fetch_one(conn)
    .await?;
    Ok(Created::Feed(created))
}

/// The caller's feeds, oldest first.
pub async fn list(conn: impl PgExecutor<'_>, user_id: Uuid) -> Result<Vec<CalendarFeed>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM calendar_feeds WHERE user_id = $1 ORDER BY created_at, id"
    )))
    .bind(user_id)
    .fetch_all(conn)
    .await
}

/// Deletes one of the user's feeds; false when it is not theirs.
pub async fn delete(conn: impl PgExecutor<'_>, user_id: Uuid, id: Uuid) -> Result<bool, sqlx::Error> {
    let done = sqlx::query("DELETE FROM calendar_feeds WHERE id = $1 AND user_id = $2")
        .bind(id)
        .bind(user_id)
        .execute(conn)
        .await?;
    Ok(done.rows_affected() == 1)
}

/// What serving a feed needs, found by the digest of its secret.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct StoredFeed {
    pub id: Uuid,
    pub user_id: Uuid,
    pub name: String,
    pub project_id: Option<Uuid>,
}

pub async fn find_by_digest(
    conn: impl PgExecutor<'_>,
    digest: &[u8],
) -> Result<Option<StoredFeed>, sqlx::Error> {
    sqlx::query_as("SELECT id, user_id, name, project_id FROM calendar_feeds WHERE digest = $1")
        .bind(digest)
        .fetch_optional(conn)
        .await
}

/// The user's latest change number: any change to any of their tasks moves it.
pub async fn change_number(conn: impl PgExecutor<'_>, user_id: Uuid) -> Result<i64, sqlx::Error> {
    let seq: Option<i64> = sqlx::query_scalar("SELECT change_seq FROM task_counts WHERE user_id = $1")
        .bind(user_id)
        .fetch_optional(conn)
        .await?;
    Ok(seq.unwrap_or(0))
}

/// Which tasks a feed shows.
#[derive(Debug, Clone, Copy)]
pub struct FeedScope {
    pub user_id: Uuid,
    pub project_id: Option<Uuid>,
    /// Only tasks with a due time (events), or every open task (to-dos).
    pub due_only: bool,
}

/// Where the previous page ended: its last task's due time (`None`: it had none) and id.
pub type After = (Option<DateTime<Utc>>, Uuid);

/// A page of the open, untrashed tasks a feed shows, in the feed's order: the earliest due time
/// first (overdue ones first), then, for to-dos, those without one; ties by id, so the same data
/// reads the same. Read the pages in one REPEATABLE READ transaction to see one snapshot.
pub async fn tasks_page(
    conn: impl PgExecutor<'_>,
    scope: FeedScope,
    after: Option<After>,
    limit: i64,
) -> Result<Vec<Task>, sqlx::Error> {
    let (after_due, after_id) = after.map_or((None, None), |(due, id)| (due, Some(id)));
    let rows: Vec<TaskRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {TASK_COLUMNS} FROM tasks
          WHERE user_id = $1 AND deleted_at IS NULL AND NOT completed
            AND ($2::uuid IS NULL OR project_id = $2)
            AND (NOT $3 OR due_at IS NOT NULL)
            AND ($5::uuid IS NULL
                 OR ($4::timestamptz IS NOT NULL
                     AND (due_at > $4 OR (due_at = $4 AND id > $5) OR due_at IS NULL))
                 OR ($4::timestamptz IS NULL AND due_at IS NULL AND id > $5))
          ORDER BY due_at ASC NULLS LAST, id
          LIMIT $6"
    )))
    .bind(scope.user_id)
    .bind(scope.project_id)
    .bind(scope.due_only)
    .bind(after_due)
    .bind(after_id)
    .bind(limit)
    .fetch_all(conn)
    .await?;
    Ok(rows.into_iter().map(Task::from).collect())
}
