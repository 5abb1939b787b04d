//! Writing a task's fields: every path that inserts a task (a create, a batch's creates, the
//! one-statement create and the worker's next occurrence) and the full rewrite go through the one
//! column table below, so a new field is one line here and no path can drop it.

use chrono::{DateTime, Utc};
use sqlx::PgConnection;
use sqlx::postgres::PgArguments;
use uuid::Uuid;

use super::row::{COLUMNS, TaskRow};
use crate::domain::recurrence::Occurrence;
use crate::domain::{RecurrenceAnchor, Task, TaskFields};

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

/// A task as a write stores it.
#[derive(Debug, Clone)]
pub struct NewTask {
    pub id: Uuid,
    pub fields: TaskFields,
    pub series: Option<Series>,
    pub derived: Derived,
    /// The time zone is the owner's, read by the statement itself (the one-statement create).
    pub owner_zone: bool,
}

impl NewTask {
    pub fn new(id: Uuid, fields: TaskFields, series: Option<Series>, derived: Derived) -> Self {
        Self { id, fields, series, derived, owner_zone: false }
    }
}

/// Declares the written columns once. Each is `name: "element type" = |task| value`, with
/// `=> "expression over r"` when the stored value is not the bound one as is, and `[derived]`
/// for a column computed from the others (left out of "did anything change").
macro_rules! written_columns {
    ($( $name:ident : $ty:literal $([$derived:ident])? = |$t:ident| $value:expr $(=> $select:literal)? ; )*) => {
        /// The written columns, in the order every statement lists and binds them.
        const NAMES: &[&str] = &[$(stringify!($name)),*];
        /// Each column's SQL element type, for the arrays the rows travel in.
        const TYPES: &[&str] = &[$($ty),*];
        /// How each column's value is read from the unnested row `r`.
        const SELECTS: &[&str] = &[$(written_columns!(@select $name $($select)?)),*];
        /// Whether a rewrite that keeps this column as stored counts as a change.
        const COMPARED: &[bool] = &[$(written_columns!(@compared $($derived)?)),*];

        /// Binds one array per column, each holding the rows' values in order.
        fn bind_columns(mut args: PgArguments, rows: &[NewTask]) -> Result<PgArguments, sqlx::error::BoxDynError> {
            use sqlx::Arguments as _;
            $( args.add(rows.iter().map(|$t: &NewTask| $value).collect::<Vec<_>>())?; )*
            Ok(args)
        }

        /// Binds one task's value per column, for the single-row rewrite.
        fn bind_values(mut args: PgArguments, task: &NewTask) -> Result<PgArguments, sqlx::error::BoxDynError> {
            use sqlx::Arguments as _;
            $( args.add((|$t: &NewTask| $value)(task))?; )*
            Ok(args)
        }
    };
    (@select $name:ident $select:literal) => { $select };
    (@select $name:ident) => { concat!("r.", stringify!($name)) };
    (@compared derived) => { false };
    (@compared) => { true };
}

/// The client-written columns come from the field table (`domain/fields.rs`); the server-owned
/// ones follow.
macro_rules! task_columns {
    ($( $(#[doc = $doc:literal])* $name:ident : $ty:ty [$kind:ident] $shape:literal |$raw:ident : $raw_ty:ty| $parse:expr,
        stored |$t:ident| $stored:expr, schema $schema:expr,
        column $col_ty:literal $(=> $col_select:literal)? = |$v:ident| $col_value:expr; )*) => {
        written_columns! {
            $( $name: $col_ty = |t| bound!($kind, t, $name, |$v| $col_value) $(=> $col_select)?; )*
            series_id: "uuid" = |t| t.series.map(|s| s.id);
            occurrence_at: "timestamptz" = |t| t.series.map(|s| s.occurrence_at);
            series_index: "integer" = |t| t.series.map(|s| s.index);
            series_start: "timestamptz" [derived] = |t| t.series.map(|s| s.start);
            completed_at: "timestamptz" [derived] = |t| t.derived.completed_at;
            next_occurrence_at: "timestamptz" [derived] = |t| t.derived.next_occurrence_at;
        }
    };
}

/// A field's bound value: absent ones bind null, and the one-statement create binds no zone.
macro_rules! bound {
    (nullable, $t:ident, $name:ident, $value:expr) => {
        $t.fields.$name.as_ref().map($value)
    };
    // Still unplaced, only a top-level task gets here (the commands place every subtask): its
    // position orders nothing, and 0 is what it has always been.
    (placed, $t:ident, $name:ident, $value:expr) => {
        bind(&$t.fields.$name.clone().unwrap_or_default(), $value)
    };
    (zone, $t:ident, $name:ident, $value:expr) => {
        (!$t.owner_zone).then(|| bind(&$t.fields.$name, $value))
    };
    ($kind:ident, $t:ident, $name:ident, $value:expr) => {
        bind(&$t.fields.$name, $value)
    };
}

/// Applies a column's bound-value closure; the signature tells the closure its argument's type.
fn bind<T, R>(value: &T, column: impl FnOnce(&T) -> R) -> R {
    column(value)
}

crate::task_fields!(task_columns);

/// The statements, built from the column table once per process rather than per write.
static INSERT: std::sync::LazyLock<String> = std::sync::LazyLock::new(insert_statement);
static UPDATE: std::sync::LazyLock<String> = std::sync::LazyLock::new(update_statement);

/// `unnest($1::uuid[], $2::text[], …) AS r(id, title, …)` over the id and every written column.
fn unnest() -> String {
    let arrays: Vec<String> = std::iter::once("uuid")
        .chain(TYPES.iter().copied())
        .enumerate()
        .map(|(i, ty)| format!("${}::{ty}[]", i + 1))
        .collect();
    format!("unnest({}) WITH ORDINALITY AS r(id, {}, n)", arrays.join(", "), NAMES.join(", "))
}

/// The one INSERT: rows arrive as one array per column, so the statement text is the same
/// whatever the count and is prepared once per connection (a multi-row VALUES list is a new,
/// slow-to-plan statement for every batch size). With a `max_tasks` it inserts nothing once the
/// owner holds that many; an occurrence already made is skipped by the series key.
fn insert_statement() -> String {
    let user = NAMES.len() + 2;
    format!(
        "INSERT INTO tasks (id, user_id, {names})
         SELECT r.id, u.id, {selects}
         FROM {unnest} JOIN users u ON u.id = ${user}
         WHERE (${max}::bigint IS NULL
                OR coalesce((SELECT live + trashed FROM task_counts WHERE user_id = u.id), 0) < ${max})
         ORDER BY r.n
         ON CONFLICT ON CONSTRAINT tasks_series_occurrence_key DO NOTHING
         RETURNING {COLUMNS}",
        names = NAMES.join(", "),
        selects = SELECTS.join(", "),
        unnest = unnest(),
        max = user + 1,
    )
}

/// Inserts tasks in one statement, in the given order, and returns those inserted. Nothing is
/// inserted when the account is gone, or holds `max_tasks` already when one is given.
pub async fn insert(
    conn: &mut PgConnection,
    user_id: Uuid,
    rows: &[NewTask],
    max_tasks: Option<u32>,
) -> Result<Vec<Task>, sqlx::Error> {
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let mut args = PgArguments::default();
    sqlx::Arguments::add(&mut args, rows.iter().map(|t| t.id).collect::<Vec<_>>())
        .map_err(sqlx::Error::Encode)?;
    let mut args = bind_columns(args, rows).map_err(sqlx::Error::Encode)?;
    sqlx::Arguments::add(&mut args, user_id).map_err(sqlx::Error::Encode)?;
    sqlx::Arguments::add(&mut args, max_tasks.map(i64::from)).map_err(sqlx::Error::Encode)?;
    let inserted: Vec<TaskRow> =
        sqlx::query_as_with(sqlx::AssertSqlSafe(INSERT.as_str()), args).fetch_all(conn).await?;
    // Keyed by id, so nothing depends on the order RETURNING gives.
    let mut by_id: std::collections::HashMap<Uuid, Task> =
        inserted.into_iter().map(|r| (r.id, Task::from(r))).collect();
    Ok(rows.iter().filter_map(|row| by_id.remove(&row.id)).collect())
}

/// The occurrence that follows `source` in its series, as the worker inserts it: the source's
/// fields, the next due time, the reminder at the same offset from it, the same project.
pub fn occurrence(
    source: &Task,
    fields: TaskFields,
    id: Uuid,
    next: Occurrence,
    next_occurrence_at: Option<DateTime<Utc>>,
) -> NewTask {
    // A reminder snoozed past the due time was a one-off: the next occurrence is reminded at
    // its due time, never after it.
    let reminder_at = source
        .reminder_at
        .zip(source.due_at)
        .map(|(reminder, due)| next.due_at - (due - reminder).max(chrono::TimeDelta::zero()));
    // The completion anchor restarts the series at each completion; the due anchor keeps it.
    let start = match source.recurrence_anchor {
        RecurrenceAnchor::Due => source.series_start.or(source.due_at).unwrap_or(next.due_at),
        RecurrenceAnchor::Completion => next.due_at,
    };
    let series =
        source.series_id.map(|id| Series { id, occurrence_at: next.due_at, index: next.series_index, start });
    let fields = TaskFields { completed: false, due_at: Some(next.due_at), reminder_at, ..fields };
    NewTask::new(id, fields, series, Derived { completed_at: None, next_occurrence_at })
}

/// A fresh open copy of `source` (a subtask of the occurrence just completed) for the next
/// occurrence: under `parent`, in `project`, its times moved by `shift` as the occurrence's
/// were, so reminders keep their offset.
pub fn subtask_copy(
    source: &Task,
    fields: TaskFields,
    id: Uuid,
    parent: Uuid,
    project: Option<Uuid>,
    shift: chrono::TimeDelta,
) -> NewTask {
    let fields = TaskFields {
        completed: false,
        parent_id: Some(parent),
        project_id: project,
        due_at: source.due_at.map(|at| at + shift),
        reminder_at: source.reminder_at.map(|at| at + shift),
        ..fields
    };
    NewTask::new(id, fields, None, Derived::default())
}

/// Writes `task` over the stored task of the same id and bumps the version by one. `None` when
/// it equals what is stored: nothing is written, so the version and `updated_at` stay and other
/// clients' `If-Match` still holds. Reopening clears a paused series.
pub async fn update(
    conn: &mut PgConnection,
    user_id: Uuid,
    task: &NewTask,
) -> Result<Option<Task>, sqlx::Error> {
    let mut args = PgArguments::default();
    sqlx::Arguments::add(&mut args, task.id).map_err(sqlx::Error::Encode)?;
    let mut args = bind_values(args, task).map_err(sqlx::Error::Encode)?;
    sqlx::Arguments::add(&mut args, user_id).map_err(sqlx::Error::Encode)?;
    let row: Option<TaskRow> =
        sqlx::query_as_with(sqlx::AssertSqlSafe(UPDATE.as_str()), args).fetch_optional(conn).await?;
    Ok(row.map(Task::from))
}

/// The rewrite binds plain values, `$2` on (an UPDATE over `unnest` of one-element arrays
/// planned worse and cost a fifth of PATCH's throughput). Each column's expression is its
/// INSERT expression over the bound value instead of the unnested row.
fn update_statement() -> String {
    let values: Vec<String> = NAMES
        .iter()
        .zip(TYPES)
        .zip(SELECTS)
        .enumerate()
        .map(|(i, ((name, ty), select))| {
            select
                .replace(&format!("r.{name}"), &format!("${}::{ty}", i + 2))
                .replace("u.timezone", "t.timezone")
        })
        .collect();
    let compared = |items: Vec<String>| -> String {
        let kept: Vec<String> = items
            .into_iter()
            .zip(COMPARED)
            .filter(|(_, compared)| **compared)
            .map(|(item, _)| item)
            .collect();
        kept.join(", ")
    };
    let completed = NAMES.iter().position(|name| *name == "completed").map_or(0, |i| i + 2);
    // The owner is bound after the values.
    let owner = NAMES.len() + 2;
    format!(
        "UPDATE tasks t SET ({names}, series_paused, updated_at, version)
             = ({values}, CASE WHEN ${completed}::boolean THEN t.series_paused END, now(), t.version + 1)
         WHERE t.id = $1 AND t.user_id = ${owner} AND ({stored}) IS DISTINCT FROM ({given})
         RETURNING {COLUMNS}",
        names = NAMES.join(", "),
        values = values.join(", "),
        stored = compared(NAMES.iter().map(|name| format!("t.{name}")).collect()),
        given = compared(values.clone()),
    )
}

/// Completes or reopens a task the caller has locked. Reopening clears a paused series: the
/// next completion makes its own attempt.
pub async fn set_completed(
    conn: &mut PgConnection,
    task: &Task,
    completed: bool,
    derived: Derived,
) -> Result<Task, sqlx::Error> {
    let row: TaskRow = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "UPDATE tasks SET
             completed = $2, completed_at = $3, next_occurrence_at = $4,
             series_paused = CASE WHEN $2 THEN series_paused END,
             updated_at = now(), version = version + 1
         WHERE id = $1 AND user_id = $5
         RETURNING {COLUMNS}"
    )))
    .bind(task.id)
    .bind(completed)
    .bind(derived.completed_at)
    .bind(derived.next_occurrence_at)
    .bind(task.user_id)
    .fetch_one(conn)
    .await?;
    Ok(row.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_statement_lists_every_written_column() {
        let insert = insert_statement();
        let update = update_statement();
        for name in NAMES {
            assert!(insert.contains(name) && update.contains(name), "{name}");
        }
        assert_eq!(NAMES.len(), TYPES.len());
        assert_eq!(NAMES.len(), SELECTS.len());
        assert!(update.contains("t.title") && !update.contains("t.next_occurrence_at)"));
    }
}
