//! Single-task commands and the one create path that single creates, batches and the
//! one-statement create share.

use chrono::{DateTime, SubsecRound, Utc};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use super::{Command, CommandSettings, IfMatch, Outcome, WriteError, tree};
use crate::db::tasks::{self, Derived, NewTask, Series};
use crate::db::users;
use crate::domain::{Invalid, LateReminder, Patch, Task, TaskChanges, TaskFields, TimeZone};
use crate::jobs::{self, task_jobs};
use crate::stepping;

/// One task command. `zone` caches the owner's default time zone across a batch.
pub(super) async fn apply(
    conn: &mut PgConnection,
    settings: CommandSettings,
    user: Uuid,
    command: &Command,
    zone: &mut Option<TimeZone>,
) -> Result<Outcome, WriteError> {
    match command {
        Command::Create { task, .. } => {
            let created = create(conn, user, task, zone).await?;
            check_task_limit(conn, settings, user).await?;
            Ok(Outcome::Created(created))
        }
        Command::Update { id, changes, if_match } => {
            let current = locked_live(conn, user, *id, if_match).await?;
            let fields = changes.clone().apply(&current)?;
            let late = late_reminder(&current, &fields);
            rewrite(conn, &current, fields, late).await
        }
        Command::Replace { id, task, if_match } => {
            let current = locked_live(conn, user, *id, if_match).await?;
            let fields = task.clone().with_default_timezone(default_timezone(conn, user, zone).await?);
            let late = late_reminder(&current, &fields);
            rewrite(conn, &current, fields, late).await
        }
        Command::Snooze { id, reminder_at, if_match, .. } => {
            let current = locked_live(conn, user, *id, if_match).await?;
            if current.completed {
                return Err(WriteError::Invalid(vec![Invalid::new(
                    "completed",
                    "a completed task has no reminder to snooze",
                )]));
            }
            let changes = TaskChanges { reminder_at: Patch::Value(*reminder_at), ..TaskChanges::default() };
            let fields = changes.apply(&current)?;
            rewrite(conn, &current, fields, LateReminder::Allowed).await
        }
        Command::Delete { id, if_match } => {
            let current = locked_live(conn, user, *id, if_match).await?;
            // Its live subtree goes first (so the count triggers have written this row before
            // the statement that returns it), marked as trashed with it.
            if tree::in_tree(&current) {
                tree::enter(conn, user).await?;
                let subtree = tree::lock_around(conn, user, &current, &[current.parent_id]).await?;
                tree::trash_all(conn, user, &subtree, current.id).await?;
            }
            let trashed = tasks::move_to_trash(conn, &current).await?;
            task_jobs::sync(conn, Some(&current), &trashed).await?;
            Ok(Outcome::Trashed(trashed))
        }
        Command::Restore { id, if_match, .. } => {
            let current = tasks::lock_trashed(conn, user, *id).await?.ok_or(WriteError::NotFound)?;
            if_match.check(current.version)?;
            let restored = restore(conn, user, &current).await?;
            task_jobs::sync(conn, Some(&current), &restored).await?;
            Ok(Outcome::Updated(restored))
        }
        Command::Toggle { id, if_match, .. } => {
            let current = locked_live(conn, user, *id, if_match).await?;
            Ok(Outcome::Updated(set_completed(conn, &current, !current.completed).await?))
        }
        Command::SetCompleted { id, completed, if_match, .. } => {
            let current = locked_live(conn, user, *id, if_match).await?;
            // Completing a completed task changes nothing: the version (and other clients'
            // If-Match) stays, and no job is touched.
            if current.completed == *completed {
                return Ok(Outcome::Updated(current));
            }
            Ok(Outcome::Updated(set_completed(conn, &current, *completed).await?))
        }
        Command::DeleteAccount => {
            if !tasks::lock_account(conn, user).await? {
                return Err(WriteError::NotFound);
            }
            jobs::cancel_for_owner(conn, user).await?;
            users::delete(conn, user, settings.remember_deleted_external_secs).await?;
            Ok(Outcome::Deleted)
        }
        Command::Bulk { .. }
        | Command::PutObject(_)
        | Command::CreateProject { .. }
        | Command::UpdateProject { .. }
        | Command::DeleteProject { .. } => {
            Err(WriteError::Invalid(vec![Invalid::new("operations", "is not a task operation")]))
        }
    }
}

/// A create that queues no job and needs no time zone to be checked (no reminder, no rule), and
/// carries no idempotency key: it can be one statement, with no transaction around it.
pub(super) fn simple_create(task: &TaskFields<Option<TimeZone>>) -> Option<&TaskFields<Option<TimeZone>>> {
    // A project must be locked before the insert (see `lock_target_project`): not one statement.
    (task.reminder_at.is_none()
        && task.recurrence_rule.is_none()
        && task.project_id.is_none()
        && task.parent_id.is_none())
    .then_some(task)
}

/// Locks the project a task is being put into, after the user's change counter and before the
/// task's write: the order a project's deletion takes them in (task rows, counter, project), so
/// the two cannot deadlock across processes. A project that is not the caller's (or was just
/// deleted) is a 422 on `project_id`.
pub(super) async fn lock_target_project(
    conn: &mut PgConnection,
    user: Uuid,
    project: Option<Uuid>,
) -> Result<(), WriteError> {
    let Some(project) = project else { return Ok(()) };
    crate::db::changes::lock_head(conn, user).await?;
    match crate::db::projects::lock(conn, user, project).await? {
        Some(_) => Ok(()),
        None => Err(WriteError::Invalid(vec![Invalid::new("project_id", "is not one of your projects")])),
    }
}

/// One round trip: the insert fills in the owner's time zone and refuses to pass the task limit
/// itself. (Several web processes creating for one user at the limit at once may overshoot it
/// by one task each: the count it reads is the last committed one.)
pub(super) async fn create_in_one_statement(
    pool: &PgPool,
    settings: CommandSettings,
    user: Uuid,
    task: &TaskFields<Option<TimeZone>>,
) -> Result<Outcome, WriteError> {
    // Without a rule the zone plays no part in the checks, so any stands in for the owner's,
    // which the statement itself reads when the request named none.
    let owner_zone = task.timezone.is_none();
    let row =
        NewTask { owner_zone, ..new_task(task.clone().with_default_timezone(TimeZone::UTC), None).await? };
    let mut conn = pool.acquire().await?;
    let max = settings.max_tasks_per_user;
    if let Some(created) = tasks::insert(&mut conn, user, &[row], Some(max)).await?.pop() {
        return Ok(Outcome::Created(created));
    }
    // Nothing inserted: say why (the rare path pays the second round trip).
    match tasks::user_timezone(&mut conn, user).await? {
        Some(_) => Err(WriteError::TaskLimit(max)),
        None => Err(WriteError::NotFound),
    }
}

/// The one create path: checks a new task and works out everything it stores. Single creates,
/// a batch's creates and the one-statement create all start here.
pub(super) async fn new_task(fields: TaskFields, id: Option<Uuid>) -> Result<NewTask, WriteError> {
    fields.check().map_err(WriteError::Invalid)?;
    let id = id.unwrap_or_else(Uuid::now_v7);
    let series = Series::first(id, &fields);
    let derived = derive(&fields, series, fields.completed.then(now), true).await?;
    Ok(NewTask::new(id, fields, series, derived))
}

/// Inserts new tasks (checked by [`new_task`]) and queues their jobs, in order.
pub(super) async fn insert_new(
    conn: &mut PgConnection,
    user: Uuid,
    rows: &[NewTask],
) -> Result<Vec<Task>, WriteError> {
    let created = tasks::insert(conn, user, rows, None).await?;
    // Fewer rows than asked for: the account is gone.
    if created.len() != rows.len() {
        return Err(WriteError::NotFound);
    }
    for task in &created {
        task_jobs::sync(conn, None, task).await?;
    }
    Ok(created)
}

/// Inserts a new task and queues its jobs.
pub(super) async fn create(
    conn: &mut PgConnection,
    user: Uuid,
    task: &TaskFields<Option<TimeZone>>,
    zone: &mut Option<TimeZone>,
) -> Result<Task, WriteError> {
    let mut row =
        new_task(task.clone().with_default_timezone(default_timezone(conn, user, zone).await?), None).await?;
    if let Some(parent) = row.fields.parent_id {
        tree::enter(conn, user).await?;
        let keeps_project = row.fields.project_id.is_none();
        tree::adopt(conn, user, None, &mut row.fields, keeps_project, 0).await?;
        tree::append(conn, user, parent, &mut row.fields).await?;
    }
    lock_target_project(conn, user, row.fields.project_id).await?;
    let mut created = insert_new(conn, user, std::slice::from_ref(&row)).await?;
    created.pop().ok_or(WriteError::NotFound)
}

/// Completes or reopens a locked task, with what its series does next.
pub(super) async fn set_completed(
    conn: &mut PgConnection,
    current: &Task,
    completed: bool,
) -> Result<Task, WriteError> {
    let completed_at = completed.then(now);
    // Completing a parent completes its open subtree first, in this transaction; reopening it
    // leaves the subtree as it is.
    if tree::in_tree(current) {
        tree::enter(conn, current.user_id).await?;
        let subtree = tree::lock_around(conn, current.user_id, current, &[current.parent_id]).await?;
        if let Some(at) = completed_at {
            tree::complete_all(conn, current.user_id, &subtree, at).await?;
        }
    }
    let next = stepping::next_due(stepping::SeriesAt::of_task(current), completed_at, false)
        .await
        .map_err(|e| WriteError::Unexpected(e.to_string()))??;
    let derived = Derived { completed_at, next_occurrence_at: next };
    let updated = tasks::set_completed(conn, current, completed, derived).await?;
    task_jobs::sync(conn, Some(current), &updated).await?;
    Ok(updated)
}

/// What a write of `fields` derives: its completion time as given, and the due time of the
/// series' next occurrence, stepped off the async threads. `check_rule`: the series (re)starts
/// here, so it must be shown to go on.
async fn derive(
    fields: &TaskFields,
    series: Option<Series>,
    completed_at: Option<DateTime<Utc>>,
    check_rule: bool,
) -> Result<Derived, WriteError> {
    let next = stepping::next_due(stepping::SeriesAt::of_fields(fields, series), completed_at, check_rule)
        .await
        .map_err(|e| WriteError::Unexpected(e.to_string()))??;
    Ok(Derived { completed_at, next_occurrence_at: next })
}

/// The time a write stamps, in the database's precision (microseconds) so what is stored is
/// what the step saw.
fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}

/// Checked after inserting: the count row is then locked by this transaction, so concurrent
/// creates from several processes cannot all pass the check.
pub(super) async fn check_task_limit(
    conn: &mut PgConnection,
    settings: CommandSettings,
    user: Uuid,
) -> Result<(), WriteError> {
    match tasks::count_all(conn, user).await? > i64::from(settings.max_tasks_per_user) {
        true => Err(WriteError::TaskLimit(settings.max_tasks_per_user)),
        false => Ok(()),
    }
}

async fn locked_live(
    conn: &mut PgConnection,
    user: Uuid,
    id: Uuid,
    if_match: &IfMatch,
) -> Result<Task, WriteError> {
    let current = tasks::lock_live(conn, user, id).await?.ok_or(WriteError::NotFound)?;
    if_match.check(current.version)?;
    Ok(current)
}

/// A client may not set a reminder after the due time, but may leave one a snooze put there: a
/// write that keeps both times as they are (a snoozed task's title edited) passes.
fn late_reminder(current: &Task, fields: &TaskFields) -> LateReminder {
    match fields.reminder_at == current.reminder_at && fields.due_at == current.due_at {
        true => LateReminder::Allowed,
        false => LateReminder::Refused,
    }
}

/// Writes a full new state over `current`, keeping its place in a series.
async fn rewrite(
    conn: &mut PgConnection,
    current: &Task,
    mut fields: TaskFields,
    late: LateReminder,
) -> Result<Outcome, WriteError> {
    fields.check_with(late).map_err(WriteError::Invalid)?;
    let user = current.user_id;
    let mut subtree = Vec::new();
    if tree::in_tree(current) || fields.parent_id.is_some() {
        tree::enter(conn, user).await?;
        if fields.parent_id != current.parent_id {
            let keeps_project = fields.project_id.is_none() || fields.project_id == current.project_id;
            tree::adopt(conn, user, Some(current), &mut fields, keeps_project, 0).await?;
            if let Some(parent) = fields.parent_id {
                tree::append(conn, user, parent, &mut fields).await?;
            }
        } else if fields.parent_id.is_some() {
            tree::keep_parents_project(current, &mut fields)?;
        }
        subtree = tree::lock_around(conn, user, current, &[current.parent_id, fields.parent_id]).await?;
    }
    // A write that names no position and keeps its parent keeps its place.
    fields.position = fields.position.or(Some(current.position));
    if fields.project_id != current.project_id {
        lock_target_project(conn, current.user_id, fields.project_id).await?;
    }
    // A new rule, zone, anchor or due time restarts the series' expansion at this occurrence:
    // moving one occurrence moves the rest with it.
    let restarts = current.recurrence_rule.as_deref() != fields.recurrence_rule.as_ref().map(|r| r.as_str())
        || current.due_at != fields.due_at
        || current.timezone != fields.timezone.name()
        || current.recurrence_anchor != fields.recurrence_anchor;
    let start = if restarts { fields.due_at } else { current.series_start.or(fields.due_at) };
    let series =
        match (current.series_id.zip(current.occurrence_at), fields.recurrence_rule.is_some(), fields.due_at)
        {
            (Some((id, occurrence_at)), _, _) => Some(Series {
                id,
                occurrence_at,
                index: current.series_index.unwrap_or(1),
                start: start.unwrap_or(occurrence_at),
            }),
            // Becoming recurring starts a series at the current due date.
            (None, true, Some(due)) => {
                Some(Series { id: current.id, occurrence_at: due, index: 1, start: due })
            }
            (None, _, _) => None,
        };
    let completed_at = match (fields.completed, current.completed) {
        (false, _) => None,
        (true, true) => current.completed_at,
        (true, false) => Some(now()),
    };
    let check_rule = restarts && fields.recurrence_rule.is_some();
    let derived = derive(&fields, series, completed_at, check_rule).await?;
    // The subtree moves and completes with its root, before the root's own write.
    if fields.project_id != current.project_id {
        tree::move_all(conn, current.user_id, &subtree, fields.project_id).await?;
    }
    if let (Some(at), false) = (completed_at.filter(|_| fields.completed), current.completed) {
        tree::complete_all(conn, current.user_id, &subtree, at).await?;
    }
    // `None`: the new state equals the stored one, so nothing is written and the version stays.
    let Some(updated) =
        tasks::update(conn, current.user_id, &NewTask::new(current.id, fields, series, derived)).await?
    else {
        return Ok(Outcome::Updated(current.clone()));
    };
    task_jobs::sync(conn, Some(current), &updated).await?;
    Ok(Outcome::Updated(updated))
}

/// The owner's time zone, read once per command (or batch).
pub(super) async fn default_timezone(
    conn: &mut PgConnection,
    user: Uuid,
    cached: &mut Option<TimeZone>,
) -> Result<TimeZone, WriteError> {
    if let Some(zone) = cached {
        return Ok(*zone);
    }
    let name = tasks::user_timezone(conn, user).await?.ok_or(WriteError::NotFound)?;
    let zone = TimeZone::parse("timezone", &name).unwrap_or(TimeZone::UTC);
    *cached = Some(zone);
    Ok(zone)
}

/// Takes a task out of the trash with the subtree that went there with it (not subtasks trashed
/// on their own before). A subtask whose parent is no longer live (or is full, or elsewhere)
/// comes back at the top level.
async fn restore(conn: &mut PgConnection, user: Uuid, current: &Task) -> Result<Task, WriteError> {
    let with = tasks::tree::trashed_with(conn, current, current.trashed_with.unwrap_or(current.id)).await?;
    let mut detach = false;
    if current.parent_id.is_some() || !with.is_empty() {
        tree::enter(conn, user).await?;
        let mut ids = with.clone();
        ids.extend(current.parent_id);
        let rows = tasks::tree::lock_rows(conn, user, &ids).await?;
        if let Some(parent) = current.parent_id {
            detach = !rows.iter().any(|p| {
                p.id == parent
                    && p.deleted_at.is_none()
                    && p.project_id == current.project_id
                    && p.subtask_count < tree::MAX_CHILDREN
            });
        }
        let subtree: Vec<Task> = rows.into_iter().filter(|t| with.contains(&t.id)).collect();
        tree::restore_all(conn, user, &subtree).await?;
    }
    Ok(tasks::tree::restore_root(conn, current, detach).await?)
}
