//! Queries on tasks. Writers pass their open transaction; readers pass the pool.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::{PgConnection, PgExecutor};
use uuid::Uuid;

use crate::domain::recurrence::{Current, Occurrence, StepError, next_occurrence};
use crate::domain::{Priority, RecurrenceAnchor, TaskFields, TimeZone};

/// A task as clients see it.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "web", derive(utoipa::ToSchema))]
pub struct Task {
    pub id: Uuid,
    #[serde(skip)]
    pub user_id: Uuid,
    pub title: String,
    pub description: Option<String>,
    pub completed: bool,
    pub completed_at: Option<DateTime<Utc>>,
    pub priority: Priority,
    pub tags: Vec<String>,
    pub due_at: Option<DateTime<Utc>>,
    /// IANA time zone the task's recurrence is expanded in.
    pub timezone: String,
    pub reminder_at: Option<DateTime<Utc>>,
    pub recurrence_rule: Option<String>,
    pub recurrence_anchor: RecurrenceAnchor,
    pub is_recurring: bool,
    pub series_id: Option<Uuid>,
    /// The due time the next occurrence will have (as if this one were completed on time, until
    /// it is completed), or `null` when the task does not recur or its series has ended.
    /// Computed when the task is written, never on a read.
    pub next_occurrence_at: Option<DateTime<Utc>>,
    /// Why this completed occurrence's successor is not made yet: `task_limit_reached` while the
    /// account holds its maximum of tasks. The series resumes by itself once there is room.
    pub series_paused: Option<String>,
    /// The series' DTSTART, whose local wall time every occurrence is meant to have.
    #[serde(skip)]
    pub series_start: Option<DateTime<Utc>>,
    #[serde(skip)]
    pub occurrence_at: Option<DateTime<Utc>>,
    /// This occurrence's place in its series, from 1.
    #[serde(skip)]
    pub series_index: Option<i32>,
    #[serde(skip)]
    pub next_occurrence_queued: bool,
    /// The task's project; `null` is the inbox.
    pub project_id: Option<Uuid>,
    /// Set only for tasks in the trash.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deleted_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub version: i64,
}

impl Task {
    /// Strong validator from identity and version: any change bumps the version.
    pub fn etag(&self) -> String {
        format!("\"{}-{}\"", self.id.simple(), self.version)
    }
}

#[derive(sqlx::FromRow)]
pub(super) struct TaskRow {
    pub(super) id: Uuid,
    pub(super) user_id: Uuid,
    pub(super) title: String,
    pub(super) description: Option<String>,
    pub(super) completed: bool,
    pub(super) completed_at: Option<DateTime<Utc>>,
    pub(super) priority: i16,
    pub(super) tags: Vec<String>,
    pub(super) due_at: Option<DateTime<Utc>>,
    pub(super) timezone: String,
    pub(super) reminder_at: Option<DateTime<Utc>>,
    pub(super) recurrence_rule: Option<String>,
    pub(super) recurrence_anchor: String,
    pub(super) series_id: Option<Uuid>,
    pub(super) occurrence_at: Option<DateTime<Utc>>,
    pub(super) series_index: Option<i32>,
    pub(super) next_occurrence_queued: bool,
    pub(super) series_start: Option<DateTime<Utc>>,
    pub(super) next_occurrence_at: Option<DateTime<Utc>>,
    pub(super) series_paused: Option<String>,
    pub(super) project_id: Option<Uuid>,
    pub(super) deleted_at: Option<DateTime<Utc>>,
    pub(super) created_at: DateTime<Utc>,
    pub(super) updated_at: DateTime<Utc>,
    pub(super) version: i64,
}

impl From<TaskRow> for Task {
    fn from(r: TaskRow) -> Self {
        Self {
            id: r.id,
            user_id: r.user_id,
            title: r.title,
            description: r.description,
            completed: r.completed,
            completed_at: r.completed_at,
            priority: Priority::from_rank(r.priority),
            tags: r.tags,
            due_at: r.due_at,
            timezone: r.timezone,
            reminder_at: r.reminder_at,
            is_recurring: r.recurrence_rule.is_some(),
            recurrence_rule: r.recurrence_rule,
            recurrence_anchor: RecurrenceAnchor::parse(&r.recurrence_anchor).unwrap_or_default(),
            series_id: r.series_id,
            next_occurrence_at: r.next_occurrence_at,
            series_paused: r.series_paused,
            series_start: r.series_start,
            occurrence_at: r.occurrence_at,
            series_index: r.series_index,
            next_occurrence_queued: r.next_occurrence_queued,
            project_id: r.project_id,
            deleted_at: r.deleted_at,
            created_at: r.created_at,
            updated_at: r.updated_at,
            version: r.version,
        }
    }
}

impl Task {
    /// The occurrence that completing this one (at `completed_at`, or on time when `None`)
    /// brings, from the stored fields alone. Bounded, but it may take milliseconds: writers run
    /// it through [`crate::commands::stepping`], off the async threads.
    pub fn next_occurrence(
        &self,
        completed_at: Option<DateTime<Utc>>,
    ) -> Result<Option<Occurrence>, StepError> {
        let (Some(rule), Some(due_at), Some(series_index)) =
            (self.recurrence_rule.as_deref(), self.due_at, self.series_index)
        else {
            return Ok(None);
        };
        let timezone = TimeZone::parse("timezone", &self.timezone)
            .map_err(|_| StepError::BadRule(format!("unknown time zone {:?}", self.timezone)))?;
        next_occurrence(Current {
            rule,
            timezone,
            anchor: self.recurrence_anchor,
            series_start: self.series_start.unwrap_or(due_at),
            due_at,
            series_index,
            completed_at,
        })
    }
}

pub(super) const COLUMNS: &str = "id, user_id, title, description, completed, completed_at, priority, tags, due_at, timezone, \
     reminder_at, recurrence_rule, recurrence_anchor, series_id, occurrence_at, series_index, next_occurrence_queued, series_start, next_occurrence_at, series_paused, \
     project_id, deleted_at, created_at, updated_at, version";

/// Where a task sits in a recurring series. `None` for a one-off task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Series {
    pub id: Uuid,
    pub occurrence_at: DateTime<Utc>,
    /// 1 for the series' first occurrence.
    pub index: i32,
    /// The series' DTSTART: the rule is expanded from here.
    pub start: DateTime<Utc>,
}

impl Series {
    /// A new task with a rule starts its own series at its due date; others are in none.
    pub fn first(id: Uuid, fields: &TaskFields) -> Option<Self> {
        fields.due_at.filter(|_| fields.recurrence_rule.is_some()).map(|due| Self {
            id,
            occurrence_at: due,
            index: 1,
            start: due,
        })
    }
}

/// What a write derives rather than takes from the client: when the task was completed, and
/// the due time its next occurrence will have.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Derived {
    pub completed_at: Option<DateTime<Utc>>,
    pub next_occurrence_at: Option<DateTime<Utc>>,
}

pub async fn insert(
    conn: &mut PgConnection,
    user_id: Uuid,
    id: Uuid,
    fields: &TaskFields,
    series: Option<Series>,
    derived: Derived,
) -> Result<Task, sqlx::Error> {
    let query = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "INSERT INTO tasks (id, title, description, completed, priority, tags, due_at, timezone,
                            reminder_at, recurrence_rule, recurrence_anchor, series_id, occurrence_at, series_index,
                            project_id, series_start, completed_at, next_occurrence_at, user_id)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19)
         RETURNING {COLUMNS}"
    )));
    let row = bind_fields(query.bind(id), fields, series, derived).bind(user_id).fetch_one(conn).await?;
    Ok(row.into())
}

/// A task to insert: its id, fields, place in a series and derived values.
pub type NewTask = (Uuid, TaskFields, Option<Series>, Derived);

/// Inserts several new tasks in one statement (a batch's run of creates), in the given order.
/// The rows travel as one array per column, so the statement is the same whatever the count and
/// is prepared once per connection (a multi-row VALUES list is a new, slow-to-plan statement for
/// every batch size).
pub async fn insert_many(
    conn: &mut PgConnection,
    user_id: Uuid,
    rows: &[NewTask],
) -> Result<Vec<Task>, sqlx::Error> {
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let column =
        |f: &dyn Fn(&NewTask) -> Option<String>| -> Vec<Option<String>> { rows.iter().map(f).collect() };
    let instants = |f: &dyn Fn(&NewTask) -> Option<DateTime<Utc>>| -> Vec<Option<DateTime<Utc>>> {
        rows.iter().map(f).collect()
    };
    let inserted: Vec<TaskRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "INSERT INTO tasks (id, title, description, completed, completed_at, priority, tags, due_at, timezone,
                            reminder_at, recurrence_rule, recurrence_anchor, series_id, occurrence_at, series_index,
                            project_id, series_start, next_occurrence_at, user_id)
         SELECT r.id, r.title, r.description, r.completed, r.completed_at, r.priority,
                ARRAY(SELECT jsonb_array_elements_text(r.tags)), r.due_at, r.timezone, r.reminder_at, r.rule,
                r.anchor, r.series_id, r.occurrence_at, r.series_index, r.project_id, r.series_start,
                r.next_occurrence_at, $16
         FROM unnest($1::uuid[], $2::text[], $3::text[], $4::boolean[], $5::smallint[], $6::jsonb[],
                     $7::timestamptz[], $8::text[], $9::timestamptz[], $10::text[], $11::text[], $12::uuid[],
                     $13::timestamptz[], $14::integer[], $15::uuid[], $17::timestamptz[], $18::timestamptz[],
                     $19::timestamptz[])
              WITH ORDINALITY AS r(id, title, description, completed, priority, tags, due_at, timezone,
                                   reminder_at, rule, anchor, series_id, occurrence_at, series_index, project_id,
                                   series_start, completed_at, next_occurrence_at, n)
         ORDER BY r.n
         RETURNING {COLUMNS}"
    )))
    .bind(rows.iter().map(|(id, ..)| *id).collect::<Vec<_>>())
    .bind(column(&|(_, f, ..)| Some(f.title.as_str().to_owned())))
    .bind(column(&|(_, f, ..)| f.description.as_ref().map(|d| d.as_str().to_owned())))
    .bind(rows.iter().map(|(_, f, ..)| f.completed).collect::<Vec<_>>())
    .bind(rows.iter().map(|(_, f, ..)| f.priority.rank()).collect::<Vec<_>>())
    .bind(rows.iter().map(|(_, f, ..)| serde_json::json!(f.tags.as_slice())).collect::<Vec<_>>())
    .bind(rows.iter().map(|(_, f, ..)| f.due_at).collect::<Vec<_>>())
    .bind(column(&|(_, f, ..)| Some(f.timezone.name().to_owned())))
    .bind(rows.iter().map(|(_, f, ..)| f.reminder_at).collect::<Vec<_>>())
    .bind(column(&|(_, f, ..)| f.recurrence_rule.as_ref().map(|r| r.as_str().to_owned())))
    .bind(column(&|(_, f, ..)| Some(f.recurrence_anchor.as_str().to_owned())))
    .bind(rows.iter().map(|(_, _, s, _)| s.map(|s| s.id)).collect::<Vec<_>>())
    .bind(rows.iter().map(|(_, _, s, _)| s.map(|s| s.occurrence_at)).collect::<Vec<_>>())
    .bind(rows.iter().map(|(_, _, s, _)| s.map(|s| s.index)).collect::<Vec<_>>())
    .bind(rows.iter().map(|(_, f, ..)| f.project_id).collect::<Vec<_>>())
    .bind(user_id)
    .bind(instants(&|(_, _, s, _)| s.map(|s| s.start)))
    .bind(instants(&|(.., d)| d.completed_at))
    .bind(instants(&|(.., d)| d.next_occurrence_at))
    .fetch_all(conn)
    .await?;
    // Keyed by id, so nothing depends on the order RETURNING gives.
    let mut by_id: std::collections::HashMap<Uuid, Task> =
        inserted.into_iter().map(|r| (r.id, Task::from(r))).collect();
    Ok(rows.iter().filter_map(|(id, ..)| by_id.remove(id)).collect())
}

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

/// What [`insert_within_limit`] did.
pub enum Inserted {
    Task(Box<Task>),
    /// The user already holds the maximum number of tasks.
    OverLimit,
    /// The account is gone.
    NoUser,
}

/// Inserts a task that needs no job, in one statement: its time zone defaults to the owner's,
/// and nothing is inserted when the owner already holds `max_tasks`.
pub async fn insert_within_limit(
    conn: &mut PgConnection,
    user_id: Uuid,
    id: Uuid,
    fields: &TaskFields<Option<crate::domain::TimeZone>>,
    max_tasks: u32,
) -> Result<Inserted, sqlx::Error> {
    let row: Option<TaskRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "INSERT INTO tasks (id, title, description, completed, completed_at, priority, tags, due_at, timezone,
                            project_id, user_id)
         SELECT $1, $2, $3, $4, CASE WHEN $4 THEN now() END, $5, $6, $7, coalesce($8, u.timezone), $9, u.id
         FROM users u
         WHERE u.id = $10
           AND coalesce((SELECT live + trashed FROM task_counts WHERE user_id = u.id), 0) < $11
         RETURNING {COLUMNS}"
    )))
    .bind(id)
    .bind(fields.title.as_str())
    .bind(fields.description.as_ref().map(|d| d.as_str()))
    .bind(fields.completed)
    .bind(fields.priority.rank())
    .bind(fields.tags.as_slice())
    .bind(fields.due_at)
    .bind(fields.timezone.map(|tz| tz.name()))
    .bind(fields.project_id)
    .bind(user_id)
    .bind(i64::from(max_tasks))
    .fetch_optional(&mut *conn)
    .await?;
    if let Some(row) = row {
        return Ok(Inserted::Task(Box::new(row.into())));
    }
    // Nothing inserted: say why (the rare path pays the second round trip).
    let exists: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM users WHERE id = $1)")
        .bind(user_id)
        .fetch_one(conn)
        .await?;
    Ok(if exists { Inserted::OverLimit } else { Inserted::NoUser })
}

type RowQuery<'q> = sqlx::query::QueryAs<'q, sqlx::Postgres, TaskRow, sqlx::postgres::PgArguments>;

/// Binds the editable fields as `$2`–`$15` and the series start and derived values as
/// `$16`–`$18`, the order `insert` and `update` share.
fn bind_fields<'q>(
    query: RowQuery<'q>,
    fields: &'q TaskFields,
    series: Option<Series>,
    derived: Derived,
) -> RowQuery<'q> {
    query
        .bind(fields.title.as_str())
        .bind(fields.description.as_ref().map(|d| d.as_str()))
        .bind(fields.completed)
        .bind(fields.priority.rank())
        .bind(fields.tags.as_slice())
        .bind(fields.due_at)
        .bind(fields.timezone.name())
        .bind(fields.reminder_at)
        .bind(fields.recurrence_rule.as_ref().map(|r| r.as_str()))
        .bind(fields.recurrence_anchor.as_str())
        .bind(series.map(|s| s.id))
        .bind(series.map(|s| s.occurrence_at))
        .bind(series.map(|s| s.index))
        .bind(fields.project_id)
        .bind(series.map(|s| s.start))
        .bind(derived.completed_at)
        .bind(derived.next_occurrence_at)
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

/// Writes every editable field and bumps the version by one.
/// Writes `fields` over the task. `None` when they equal what is stored: nothing is written, so
/// the version and `updated_at` stay and other clients' `If-Match` still holds.
pub async fn update(
    conn: &mut PgConnection,
    task_id: Uuid,
    fields: &TaskFields,
    series: Option<Series>,
    derived: Derived,
) -> Result<Option<Task>, sqlx::Error> {
    let query = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "UPDATE tasks SET
             title = $2, description = $3, completed_at = $17,
             completed = $4, priority = $5, tags = $6, due_at = $7, timezone = $8, reminder_at = $9,
             recurrence_rule = $10, recurrence_anchor = $11, series_id = $12, occurrence_at = $13,
             series_index = $14, project_id = $15, series_start = $16, next_occurrence_at = $18,
             series_paused = CASE WHEN $4 THEN series_paused END,
             updated_at = now(), version = version + 1
         WHERE id = $1
           AND (title, description, completed, priority, tags, due_at, timezone, reminder_at,
                recurrence_rule, recurrence_anchor, series_id, occurrence_at, series_index, project_id)
               IS DISTINCT FROM ($2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)
         RETURNING {COLUMNS}"
    )));
    let row: Option<TaskRow> =
        bind_fields(query.bind(task_id), fields, series, derived).fetch_optional(conn).await?;
    Ok(row.map(Task::from))
}

/// Completes or reopens a task the caller has locked. Reopening clears a paused series: the
/// next completion makes its own attempt.
pub async fn set_completed(
    conn: &mut PgConnection,
    task_id: Uuid,
    completed: bool,
    derived: Derived,
) -> Result<Task, sqlx::Error> {
    let row: TaskRow = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "UPDATE tasks SET
             completed = $2, completed_at = $3, next_occurrence_at = $4,
             series_paused = CASE WHEN $2 THEN series_paused END,
             updated_at = now(), version = version + 1
         WHERE id = $1
         RETURNING {COLUMNS}"
    )))
    .bind(task_id)
    .bind(completed)
    .bind(derived.completed_at)
    .bind(derived.next_occurrence_at)
    .fetch_one(conn)
    .await?;
    Ok(row.into())
}

/// Shows on a completed occurrence why its successor waits, or clears that (`None`). A change
/// the owner sees, so the version moves and the change feed carries it.
pub async fn set_series_paused(
    conn: &mut PgConnection,
    task_id: Uuid,
    reason: Option<&str>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE tasks SET series_paused = $2, updated_at = now(), version = version + 1
         WHERE id = $1 AND series_paused IS DISTINCT FROM $2",
    )
    .bind(task_id)
    .bind(reason)
    .execute(conn)
    .await?;
    Ok(())
}

/// Completed occurrences whose series is paused for the task limit, of accounts that now have
/// room for at least one more task: oldest first, at most `limit`.
pub async fn paused_with_room(
    conn: impl PgExecutor<'_>,
    max_tasks: u32,
    limit: i64,
) -> Result<Vec<(Uuid, Uuid)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT t.user_id, t.id FROM tasks t
         WHERE t.series_paused IS NOT NULL AND t.completed AND t.deleted_at IS NULL
           AND coalesce((SELECT live + trashed FROM task_counts c WHERE c.user_id = t.user_id), 0) < $1
         ORDER BY t.updated_at LIMIT $2",
    )
    .bind(i64::from(max_tasks))
    .bind(limit)
    .fetch_all(conn)
    .await
}

pub async fn move_to_trash(conn: &mut PgConnection, task_id: Uuid) -> Result<Task, sqlx::Error> {
    write_returning(conn, "deleted_at = now()", task_id).await
}

pub async fn restore(conn: &mut PgConnection, task_id: Uuid) -> Result<Task, sqlx::Error> {
    write_returning(conn, "deleted_at = NULL", task_id).await
}

async fn write_returning(
    conn: &mut PgConnection,
    set: &'static str,
    task_id: Uuid,
) -> Result<Task, sqlx::Error> {
    let row: TaskRow = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "UPDATE tasks SET {set}, updated_at = now(), version = version + 1 WHERE id = $1 RETURNING {COLUMNS}"
    )))
    .bind(task_id)
    .fetch_one(conn)
    .await?;
    Ok(row.into())
}

/// Records whether this occurrence's successor is queued (or made). Not a user-visible change, so
/// the version stays.
pub async fn set_next_occurrence_queued(
    conn: &mut PgConnection,
    task_id: Uuid,
    queued: bool,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE tasks SET next_occurrence_queued = $2 WHERE id = $1")
        .bind(task_id)
        .bind(queued)
        .execute(conn)
        .await?;
    Ok(())
}

/// Whether the series already has an occurrence after `occurrence_at`: its successor was made.
pub async fn has_successor(
    conn: &mut PgConnection,
    series_id: Uuid,
    occurrence_at: DateTime<Utc>,
) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM tasks WHERE series_id = $1 AND occurrence_at > $2)")
        .bind(series_id)
        .bind(occurrence_at)
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

/// Inserts the occurrence that follows `source` in its series, unless it already exists: the
/// series key makes this exactly once however often or concurrently it runs. Its reminder keeps
/// the source's offset from the due time.
pub async fn insert_occurrence(
    conn: &mut PgConnection,
    source: &Task,
    id: Uuid,
    next: Occurrence,
    next_occurrence_at: Option<DateTime<Utc>>,
) -> Result<Option<Task>, sqlx::Error> {
    let reminder_at =
        source.reminder_at.zip(source.due_at).map(|(reminder, due)| next.due_at - (due - reminder));
    // The completion anchor restarts the series at each completion; the due anchor keeps it.
    let series_start = match source.recurrence_anchor {
        RecurrenceAnchor::Due => source.series_start.or(source.due_at),
        RecurrenceAnchor::Completion => Some(next.due_at),
    };
    let row: Option<TaskRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "INSERT INTO tasks (id, user_id, title, description, priority, tags, due_at, timezone, reminder_at,
                            recurrence_rule, recurrence_anchor, series_id, occurrence_at, series_index, project_id,
                            series_start, next_occurrence_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $7, $13, $14, $15, $16)
         ON CONFLICT ON CONSTRAINT tasks_series_occurrence_key DO NOTHING
         RETURNING {COLUMNS}"
    )))
    .bind(id)
    .bind(source.user_id)
    .bind(&source.title)
    .bind(&source.description)
    .bind(source.priority.rank())
    .bind(&source.tags)
    .bind(next.due_at)
    .bind(&source.timezone)
    .bind(reminder_at)
    .bind(&source.recurrence_rule)
    .bind(source.recurrence_anchor.as_str())
    .bind(source.series_id)
    .bind(next.series_index)
    // The next occurrence stays in its series' project.
    .bind(source.project_id)
    .bind(series_start)
    .bind(next_occurrence_at)
    .fetch_optional(conn)
    .await?;
    Ok(row.map(Task::from))
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
pub async fn lock_in_project(conn: &mut PgConnection, project_id: Uuid) -> Result<Vec<Task>, sqlx::Error> {
    let rows: Vec<TaskRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM tasks WHERE project_id = $1 ORDER BY id FOR NO KEY UPDATE"
    )))
    .bind(project_id)
    .fetch_all(conn)
    .await?;
    Ok(rows.into_iter().map(Task::from).collect())
}

/// Takes every task out of a project, moving the live ones to the trash.
pub async fn trash_project_tasks(
    conn: &mut PgConnection,
    project_id: Uuid,
) -> Result<Vec<Task>, sqlx::Error> {
    let rows: Vec<TaskRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "UPDATE tasks SET project_id = NULL, deleted_at = coalesce(deleted_at, now()),
                updated_at = now(), version = version + 1
         WHERE project_id = $1
         RETURNING {COLUMNS}"
    )))
    .bind(project_id)
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
                 WHERE id = $1",
            )
            .bind(task.id)
            .bind(next)
            .execute(pool)
            .await?;
            filled += 1;
        }
    }
}
