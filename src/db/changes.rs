//! The change feed: each user's task changes in change-number order, read for `GET /changes` and
//! for event streams. The numbers and tombstones are made by the triggers of migration
//! `20261130000005_sync.sql`, so every writer (web, worker, maintenance) is covered; streams learn
//! of new numbers by polling (`web/events/heads.rs`).

use sqlx::postgres::PgRow;
use sqlx::{FromRow, PgConnection, PgExecutor, PgPool, Row};
use uuid::Uuid;

use super::tasks::{COLUMNS, Task, TaskRow};

/// One change: the task as it now is, or `None` when it was deleted (trashed or purged).
#[derive(Debug, Clone)]
pub struct Change {
    pub seq: i64,
    pub task_id: Uuid,
    pub task: Option<Task>,
}

/// A page of the feed and where the user's feed stands, all read in one snapshot.
#[derive(Debug, Clone)]
pub struct FeedPage {
    pub changes: Vec<Change>,
    /// The newest change number.
    pub head: i64,
    /// Changes up to this number may have lost their tombstone.
    pub pruned_through: i64,
}

/// Why a position cannot be followed from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stale {
    /// Older than the pruned tombstones: a delete may be missing.
    Pruned,
    /// Newer than any change this user ever had: not from this feed.
    Unknown,
}

impl FeedPage {
    /// Whether a client at `since` can continue from this feed. `0` always can: it asks for the
    /// live tasks, not for what was deleted.
    pub fn check(&self, since: i64) -> Result<(), Stale> {
        match since {
            0 => Ok(()),
            s if s < self.pruned_through => Err(Stale::Pruned),
            s if s > self.head => Err(Stale::Unknown),
            _ => Ok(()),
        }
    }
}

/// Up to `limit` changes after `since`, oldest first; a task appears once, at its latest change.
/// `since = 0` gives the live tasks only: a client starting from nothing needs no deletes.
pub async fn page(
    conn: impl PgExecutor<'_>,
    user: Uuid,
    since: i64,
    limit: i64,
) -> Result<FeedPage, sqlx::Error> {
    // One statement, so the page and the head come from one snapshot. The aggregate always
    // yields a row, so an empty page still reports the head.
    let rows: Vec<PgRow> = sqlx::query(sqlx::AssertSqlSafe(format!(
        "WITH page AS (
             SELECT seq AS feed_seq, task_id AS feed_task_id, deleted AS feed_deleted FROM (
                 SELECT change_seq AS seq, id AS task_id, deleted_at IS NOT NULL AS deleted FROM tasks
                 WHERE user_id = $1 AND change_seq > $2 AND ($2 > 0 OR deleted_at IS NULL)
                 UNION ALL
                 SELECT change_seq, task_id, true FROM task_tombstones
                 WHERE user_id = $1 AND change_seq > $2 AND $2 > 0
             ) c
             ORDER BY seq LIMIT $3
         )
         SELECT h.feed_head, h.feed_pruned, p.feed_seq, p.feed_task_id, p.feed_deleted, {COLUMNS}
         FROM (SELECT coalesce(max(change_seq), 0) AS feed_head,
                      coalesce(max(changes_pruned_through), 0) AS feed_pruned
               FROM task_counts WHERE user_id = $1) h
         LEFT JOIN page p ON true
         LEFT JOIN tasks t ON NOT p.feed_deleted AND t.id = p.feed_task_id
         ORDER BY p.feed_seq"
    )))
    .bind(user)
    .bind(since)
    .bind(limit)
    .fetch_all(conn)
    .await?;
    let mut page = FeedPage { changes: Vec::with_capacity(rows.len()), head: 0, pruned_through: 0 };
    for row in rows {
        page.head = row.try_get("feed_head")?;
        page.pruned_through = row.try_get("feed_pruned")?;
        let Some(seq) = row.try_get::<Option<i64>, _>("feed_seq")? else { continue };
        let task_id: Uuid = row.try_get("feed_task_id")?;
        let deleted: bool = row.try_get("feed_deleted")?;
        let task = match deleted {
            true => None,
            false => Some(Task::from(TaskRow::from_row(&row)?)),
        };
        page.changes.push(Change { seq, task_id, task });
    }
    Ok(page)
}

/// The user's newest change number (0 before the first).
pub async fn head(conn: impl PgExecutor<'_>, user: Uuid) -> Result<i64, sqlx::Error> {
    let head: Option<i64> = sqlx::query_scalar("SELECT change_seq FROM task_counts WHERE user_id = $1")
        .bind(user)
        .fetch_optional(conn)
        .await?;
    Ok(head.unwrap_or(0))
}

/// Locks the user's change counter (the `task_counts` row the numbering triggers write), creating
/// it if needed. A write that will lock a project takes this first: every task write takes its
/// task rows, then this row, then a project, and a project's deletion does the same.
pub async fn lock_head(conn: &mut PgConnection, user: Uuid) -> Result<(), sqlx::Error> {
    // If the row is missing, the insert makes it, and other writers wait on the new row; if it
    // exists, the select locks it (the insert's statement snapshot cannot see its own row).
    sqlx::query(
        "WITH made AS (INSERT INTO task_counts (user_id) VALUES ($1) ON CONFLICT DO NOTHING)
         SELECT 1 FROM task_counts WHERE user_id = $1 FOR NO KEY UPDATE",
    )
    .bind(user)
    .execute(conn)
    .await?;
    Ok(())
}

/// Users pruned per pass of [`prune_tombstones`]; each is its own short transaction.
const PRUNE_USERS_PER_PASS: i64 = 500;

/// Removes tombstones older than `retention_secs` and raises each user's pruned mark past them.
///
/// A live task whose last change is older than the mark is re-announced (given a new number,
/// nothing else changes): a device starting from 0 pages through the live tasks by change
/// number, and every page must stay above the mark to be followed.
pub async fn prune_tombstones(pool: &PgPool, retention_secs: f64) -> Result<u64, sqlx::Error> {
    let mut pruned = 0;
    loop {
        let users: Vec<Uuid> = sqlx::query_scalar(
            "SELECT DISTINCT user_id FROM task_tombstones
             WHERE deleted_at < now() - make_interval(secs => $1) LIMIT $2",
        )
        .bind(retention_secs)
        .bind(PRUNE_USERS_PER_PASS)
        .fetch_all(pool)
        .await?;
        for &user in &users {
            pruned += prune_user(pool, user, retention_secs).await?;
        }
        if (users.len() as i64) < PRUNE_USERS_PER_PASS {
            return Ok(pruned);
        }
    }
}

async fn prune_user(pool: &PgPool, user: Uuid, retention_secs: f64) -> Result<u64, sqlx::Error> {
    let mut tx = pool.begin().await?;
    // Tombstones are only added, with rising numbers (their times rise too, give or take the
    // length of a transaction): the mark read here stays right.
    let mark: Option<i64> = sqlx::query_scalar(
        "SELECT max(change_seq) FROM task_tombstones
         WHERE user_id = $1 AND deleted_at < now() - make_interval(secs => $2)",
    )
    .bind(user)
    .bind(retention_secs)
    .fetch_one(&mut *tx)
    .await?;
    let Some(mark) = mark else { return Ok(0) };
    // Task rows first, in id order, then the counts row (taken by the renumbering trigger):
    // the order every task write takes them in.
    sqlx::query(
        "SELECT id FROM tasks WHERE user_id = $1 AND deleted_at IS NULL AND change_seq <= $2
         ORDER BY id FOR NO KEY UPDATE",
    )
    .bind(user)
    .bind(mark)
    .execute(&mut *tx)
    .await?;
    // Setting the number to 0 makes the trigger give the next one.
    sqlx::query(
        "UPDATE tasks SET change_seq = 0 WHERE user_id = $1 AND deleted_at IS NULL AND change_seq <= $2",
    )
    .bind(user)
    .bind(mark)
    .execute(&mut *tx)
    .await?;
    let removed = sqlx::query("DELETE FROM task_tombstones WHERE user_id = $1 AND change_seq <= $2")
        .bind(user)
        .bind(mark)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    // The names CalDAV reported those deletions under go with them.
    super::caldav::prune(&mut tx, user, mark).await?;
    sqlx::query(
        "UPDATE task_counts SET changes_pruned_through = greatest(changes_pruned_through, $2)
         WHERE user_id = $1",
    )
    .bind(user)
    .bind(mark)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(removed)
}
