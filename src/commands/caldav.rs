//! A CalDAV client's PUT of a calendar object: the task write it stands for, in the same
//! transaction as the rest of the command, plus what the client said that the task does not
//! hold (its UID, resource name and unmodelled lines).
//!
//! A recurring series is one resource (see `db::caldav`). Three things clients do to finish an
//! occurrence all end with the occurrence completed and exactly one next occurrence, made here
//! in the same transaction so the client reads it back at once:
//! - it sends the to-do back with STATUS:COMPLETED;
//! - it moves DUE to the next occurrence itself and sends it back open (Tasks.org);
//! - it adds a completed copy as a new resource and advances the original (Apple): the copy
//!   becomes the name of the completed occurrence rather than a second task.

use sqlx::PgConnection;
use uuid::Uuid;

use super::tasks::{self as task_commands, check_task_limit, default_timezone};
use super::{CommandSettings, IfMatch, Outcome, WriteError};
use crate::db::caldav::{self, Identity, Object};
use crate::db::tasks::{self, Task};
use crate::domain::{TaskFields, TimeZone};
use crate::ical::fields::{Placement, is_completed, same_rule_but_count, task_fields};
use crate::ical::read::Todo;
use crate::ical::task::{ALARM_AT, ALARM_LINE, SHADOW};
use crate::jobs::recurrence::{NextOccurrence, make_next};

/// What the client asked to hold, beside the to-do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Condition {
    None,
    /// `If-Match`: one of these ETags.
    Matches(Vec<String>),
    /// `If-None-Match: *`: only a new resource.
    Absent,
    /// `If-Match: *`: only an existing resource (RFC 9110 §13.1.1).
    Present,
}

#[derive(Debug, Clone)]
pub struct Put {
    /// The collection: a project, or the inbox.
    pub project: Option<Uuid>,
    pub name: String,
    pub todo: Todo,
    pub condition: Condition,
    pub uid_host: String,
}

/// Refusals that only a calendar client can meet.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Conflict {
    /// The UID is another resource's (RFC 4791 `no-uid-conflict`), named by collection and name.
    #[error("the UID is already used by another resource")]
    Uid { project: Option<Uuid>, name: String },
    /// MKCALENDAR at an address that is taken.
    #[error("a calendar with this address exists")]
    Taken,
    /// A resource name is the account's, not the collection's (as UIDs are): another
    /// collection serves a live task under it.
    #[error("another calendar has a resource with this name")]
    NameElsewhere,
}

pub(super) async fn put(
    conn: &mut PgConnection,
    settings: CommandSettings,
    user: Uuid,
    put: &Put,
) -> Result<Outcome, WriteError> {
    let existing = caldav::find(&mut *conn, user, put.project, &put.name).await?;
    match (&put.condition, &existing) {
        (Condition::Absent, Some(_)) => return Err(WriteError::PreconditionFailed),
        (Condition::Matches(_) | Condition::Present, None) => return Err(WriteError::PreconditionFailed),
        (Condition::Matches(tags), Some(object)) if !tags.contains(&object.task.etag()) => {
            return Err(WriteError::PreconditionFailed);
        }
        _ => {}
    }
    let same_uid = caldav::find_by_uid(&mut *conn, user, &put.todo.uid, &put.uid_host).await?;
    if let Some(other) = &same_uid
        && existing.as_ref().is_none_or(|e| e.task.id != other.task.id)
        && !is_copy_of(&put.todo, other)
    {
        return Err(WriteError::CalDav(Conflict::Uid {
            project: other.task.project_id,
            name: caldav::name_of(other),
        }));
    }
    let parent = match &put.todo.parent_uid {
        Some(uid) => caldav::find_by_uid(&mut *conn, user, uid, &put.uid_host).await?.map(|p| p.task.id),
        None => None,
    };
    let mut zone_cache = None;
    let zone = match &existing {
        Some(object) => TimeZone::parse("timezone", &object.task.timezone).unwrap_or(TimeZone::UTC),
        None => default_timezone(conn, user, &mut zone_cache).await?,
    };
    let place = Placement { project: put.project, parent, zone };
    let fields =
        task_fields(&put.todo, existing.as_ref().map(|o| &o.task), place).map_err(WriteError::Invalid)?;
    let mut extra = put.todo.extra.clone();
    if put.todo.parent_uid.is_some() && parent.is_none() {
        // A parent this server does not know: the link is kept as the client wrote it.
        extra.extend(put.todo.parent_uid.as_ref().map(|uid| format!("RELATED-TO;RELTYPE=PARENT:{uid}")));
    }
    extra.extend(put.todo.shadowed.iter().map(|line| format!("{SHADOW}{line}")));
    if let Some(at) = fields.reminder_at
        && !put.todo.alarm_lines.is_empty()
    {
        // The alarm as sent, with the reminder it made: written back while the task keeps it.
        extra.push(format!("{SHADOW}{ALARM_AT}:{}", at.to_rfc3339()));
        extra.extend(put.todo.alarm_lines.iter().map(|line| format!("{SHADOW}{ALARM_LINE}:{line}")));
    }
    let identity = Identity {
        uid: put.todo.uid.clone(),
        name: put.name.clone(),
        extra: extra.join("\r\n"),
        others: put.todo.others.join("\r\n"),
    };
    match existing {
        Some(object) => update(conn, settings, user, object, fields, identity).await,
        None => create(conn, settings, user, fields, identity, same_uid, &mut zone_cache).await,
    }
}

async fn update(
    conn: &mut PgConnection,
    settings: CommandSettings,
    user: Uuid,
    object: Object,
    fields: TaskFields<Option<TimeZone>>,
    identity: Identity,
) -> Result<Outcome, WriteError> {
    let current = tasks::lock_live(&mut *conn, user, object.task.id).await?.ok_or(WriteError::NotFound)?;
    let if_match = IfMatch(Some(vec![object.task.version]));
    let written = match finishes_occurrence(&current, &fields) {
        Some(mut done) => {
            // This occurrence keeps its own due time and reminder; the next one follows the rule.
            done.due_at = current.due_at;
            done.reminder_at = current.reminder_at;
            done.recurrence_rule =
                current.recurrence_rule.as_deref().map(crate::domain::RecurrenceRule::parse).transpose()?;
            done.completed = true;
            let completed = replace(conn, settings, user, current.id, done, if_match).await?;
            next_occurrence(conn, settings, &completed).await?.unwrap_or(completed)
        }
        None => replace(conn, settings, user, current.id, fields, if_match).await?,
    };
    keep_identity(conn, user, &written, &object, identity).await
}

async fn create(
    conn: &mut PgConnection,
    settings: CommandSettings,
    user: Uuid,
    fields: TaskFields<Option<TimeZone>>,
    identity: Identity,
    same_uid: Option<Object>,
    zone: &mut Option<TimeZone>,
) -> Result<Outcome, WriteError> {
    if fields.completed
        && let Some(occurrence) = copied_occurrence(conn, user, &fields, same_uid).await?
    {
        // A completed copy of an occurrence: it names the occurrence, completed, rather than
        // adding a second task for the same thing.
        let completed = match occurrence.completed {
            true => occurrence,
            false => {
                let current =
                    tasks::lock_live(&mut *conn, user, occurrence.id).await?.ok_or(WriteError::NotFound)?;
                let done = task_commands::set_completed(conn, &current, true).await?;
                next_occurrence(conn, settings, &done).await?;
                tasks::find_live(&mut *conn, user, done.id).await?.ok_or(WriteError::NotFound)?
            }
        };
        caldav::save(conn, user, completed.id, &identity).await?;
        return Ok(Outcome::Created(completed));
    }
    let created = task_commands::create(conn, user, &fields, zone).await?;
    check_task_limit(conn, settings, user).await?;
    caldav::save(conn, user, created.id, &identity).await?;
    Ok(Outcome::Created(created))
}

/// The to-do's fields as the task's next state, when they finish its current occurrence: an
/// open occurrence of a series sent back completed, or sent back open with DUE moved to the
/// next occurrence and the same rule (but for a COUNT counted down).
fn finishes_occurrence(
    current: &Task,
    fields: &TaskFields<Option<TimeZone>>,
) -> Option<TaskFields<Option<TimeZone>>> {
    let rule = current.recurrence_rule.as_deref()?;
    if current.completed || current.series_id.is_none() {
        return None;
    }
    let same_rule = fields.recurrence_rule.as_ref().is_some_and(|r| same_rule_but_count(r.as_str(), rule));
    let completed = fields.completed && same_rule;
    let advanced = !fields.completed
        && same_rule
        && fields.due_at.is_some()
        && fields.due_at != current.due_at
        && fields.due_at == current.next_occurrence_at;
    (completed || advanced).then(|| fields.clone())
}

/// A completed to-do that copies an occurrence of one of the user's series: the same title and
/// due time, in the same collection, not named by a client yet. `same_uid`: a client that
/// reuses the series' UID for the copy.
async fn copied_occurrence(
    conn: &mut PgConnection,
    user: Uuid,
    fields: &TaskFields<Option<TimeZone>>,
    same_uid: Option<Object>,
) -> Result<Option<Task>, WriteError> {
    let Some(due) = fields.due_at else { return Ok(None) };
    if let Some(object) = same_uid
        && object.task.due_at == Some(due)
        && object.task.series_id.is_some()
    {
        return Ok(Some(object.task));
    }
    Ok(caldav::unnamed_occurrence(&mut *conn, user, fields.project_id, fields.title.as_str(), due).await?)
}

/// Whether a to-do carrying an existing resource's UID is a completed copy of its occurrence.
fn is_copy_of(todo: &Todo, other: &Object) -> bool {
    is_completed(todo) && other.task.series_id.is_some() && !other.task.completed
}

/// The series' next occurrence, made now rather than by the worker (whose job then finds it
/// made). `None` when the series has ended or is paused.
async fn next_occurrence(
    conn: &mut PgConnection,
    settings: CommandSettings,
    completed: &Task,
) -> Result<Option<Task>, WriteError> {
    let (Some(series_id), Some(occurrence_at), Some(completed_at)) =
        (completed.series_id, completed.occurrence_at, completed.completed_at)
    else {
        return Ok(None);
    };
    let job = NextOccurrence {
        user_id: completed.user_id,
        task_id: completed.id,
        series_id,
        occurrence_at,
        completed_at,
    };
    let (_, made) = make_next(conn, &job, settings.max_tasks_per_user)
        .await
        .map_err(|e| WriteError::Unexpected(e.to_string()))?;
    Ok(made)
}

async fn replace(
    conn: &mut PgConnection,
    settings: CommandSettings,
    user: Uuid,
    id: Uuid,
    task: TaskFields<Option<TimeZone>>,
    if_match: IfMatch,
) -> Result<Task, WriteError> {
    let command = super::Command::Replace { id, task, if_match };
    match task_commands::apply(conn, settings, user, &command, &mut None).await? {
        Outcome::Updated(task) => Ok(task),
        other => Err(WriteError::Unexpected(format!("a replace answered {other:?}"))),
    }
}

/// Stores what the client said beyond the fields on the task now serving the resource. A change
/// there alone bumps the task's version, so the ETag and the sync token move for every device.
async fn keep_identity(
    conn: &mut PgConnection,
    user: Uuid,
    written: &Task,
    before: &Object,
    identity: Identity,
) -> Result<Outcome, WriteError> {
    let stored = caldav::identity(&mut *conn, user, written.id).await?;
    let generated =
        Identity { uid: identity.uid.clone(), name: identity.name.clone(), ..Identity::default() };
    if stored.as_ref() == Some(&identity)
        || (stored.is_none() && identity == generated && before.identity.is_none())
    {
        return Ok(Outcome::Updated(written.clone()));
    }
    caldav::save(conn, user, written.id, &identity).await?;
    let unchanged_fields = written.id == before.task.id && written.version == before.task.version;
    let lines_changed =
        stored.as_ref().is_none_or(|s| s.extra != identity.extra || s.others != identity.others);
    if unchanged_fields && lines_changed {
        return Ok(Outcome::Updated(caldav::touch(conn, written).await?));
    }
    Ok(Outcome::Updated(written.clone()))
}
