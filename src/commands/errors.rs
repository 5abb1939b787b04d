//! Why a write failed, and the database constraints that map back to a field.

use crate::domain::Invalid;
use crate::jobs::EnqueueError;

#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error("task not found")]
    NotFound,
    #[error("If-Match does not match the current version")]
    PreconditionFailed,
    #[error("invalid task")]
    Invalid(Vec<Invalid>),
    #[error("Idempotency-Key reused with a different request")]
    IdempotencyKeyReused,
    #[error("another request stored this Idempotency-Key first")]
    IdempotencyRace,
    #[error("the account holds its maximum of {0} tasks")]
    TaskLimit(u32),
    /// Another write holds the user's task tree; the command starts again, waiting for it.
    #[error("another write is changing this task tree")]
    TreeBusy,
    #[error("the account holds its maximum of {0} projects")]
    ProjectLimit(i64),
    #[error("a project with this name exists")]
    ProjectNameTaken,
    /// The email link that asked for this write was used already; nothing was done.
    #[error("the link was already used")]
    LinkUsed,
    /// A command produced an outcome its caller cannot use: a bug, not the client's fault.
    #[error("unexpected outcome: {0}")]
    Unexpected(String),
    /// Operation `index` of a batch failed; nothing of the batch was applied.
    #[error("operation {index}: {error}")]
    InBatch { index: usize, error: Box<WriteError> },
    /// A refusal only a calendar client can meet (see `caldav::Conflict`).
    #[error(transparent)]
    CalDav(#[from] super::caldav::Conflict),
    #[error(transparent)]
    Database(sqlx::Error),
    #[error(transparent)]
    Jobs(#[from] EnqueueError),
}

impl From<Invalid> for WriteError {
    fn from(e: Invalid) -> Self {
        Self::Invalid(vec![e])
    }
}

impl From<sqlx::Error> for WriteError {
    /// The database's own checks back up the domain's; if one fires, name the field it guards.
    fn from(err: sqlx::Error) -> Self {
        let field = match &err {
            sqlx::Error::Database(db) => match db.constraint() {
                Some("tasks_title_length") => Some(("title", "must be 1–200 characters")),
                Some("tasks_description_length") => Some(("description", "must be at most 2000 characters")),
                Some("tasks_tags_count") => Some(("tags", "at most 20 tags")),
                Some("tasks_recurrence_needs_due") => Some(("recurrence_rule", "needs due_at")),
                Some("tasks_project_fkey") => Some(("project_id", "is not one of your projects")),
                Some("tasks_parent_fkey" | "tasks_parent_same_project") => {
                    Some(("parent_id", "must be one of your live tasks, in the task's project"))
                }
                Some("tasks_parent_not_self" | "tasks_parent_cycle") => {
                    Some(("parent_id", "cannot be the task itself or one of its subtasks"))
                }
                Some("tasks_parent_depth") => Some(("parent_id", "subtasks nest at most four levels deep")),
                Some("tasks_parent_children") => Some(("parent_id", "a task has at most 200 subtasks")),
                Some("tasks_subtask_not_recurring") => Some(("recurrence_rule", "a subtask cannot recur")),
                Some("tasks_position_range") => Some(("position", "must be 0–1000000")),
                Some("tasks_recurrence_rule_length") => {
                    Some(("recurrence_rule", "must be at most 500 characters"))
                }
                // The account was deleted while this write was on its way.
                Some("tasks_user_id_fkey" | "projects_user_id_fkey") => return Self::NotFound,
                Some("projects_user_name_key") => return Self::ProjectNameTaken,
                // A CalDAV name is unique per account; the PUT checked its own collection.
                Some("caldav_objects_name_key") => {
                    return Self::CalDav(super::caldav::Conflict::NameElsewhere);
                }
                Some("caldav_objects_uid_length") => Some(("UID", "must be 1–255 bytes")),
                Some("caldav_objects_name_length") => Some(("name", "must be 1–255 bytes")),
                Some("caldav_objects_extra_length") => {
                    Some(("calendar-data", "properties this service does not model: at most 256 KiB"))
                }
                // Only a CalDAV client names a new project's id.
                Some("projects_pkey") => return Self::CalDav(super::caldav::Conflict::Taken),
                _ => None,
            },
            _ => None,
        };
        match field {
            Some((field, message)) => Self::Invalid(vec![Invalid::new(field, message)]),
            None => Self::Database(err),
        }
    }
}
