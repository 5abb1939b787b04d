//! Batches of task operations: applied in order in one transaction, all or none. Each operation
//! does exactly what its single-task route does, jobs included; the first failure rolls back the
//! whole batch and names its index.

use serde::Serialize;
use sqlx::PgConnection;
use uuid::Uuid;

use super::{
    Command, CommandSettings, IfMatch, Outcome, TaskChanges, WriteError, apply_task, check_task_limit, create,
};
use crate::db::tasks::Task;
use crate::domain::{Patch, TaskFields, TimeZone};

#[derive(Debug, Clone)]
pub enum BulkOp {
    Create(TaskFields<Option<TimeZone>>),
    Update {
        id: Uuid,
        changes: TaskChanges,
        if_match: IfMatch,
    },
    Complete {
        id: Uuid,
        if_match: IfMatch,
    },
    Reopen {
        id: Uuid,
        if_match: IfMatch,
    },
    /// To a project, or to the inbox with `None`.
    Move {
        id: Uuid,
        project_id: Option<Uuid>,
        if_match: IfMatch,
    },
    Delete {
        id: Uuid,
        if_match: IfMatch,
    },
    Restore {
        id: Uuid,
        if_match: IfMatch,
    },
}

impl BulkOp {
    pub fn name(&self) -> &'static str {
        match self {
            Self::Create(_) => "create",
            Self::Update { .. } => "update",
            Self::Complete { .. } => "complete",
            Self::Reopen { .. } => "reopen",
            Self::Move { .. } => "move",
            Self::Delete { .. } => "delete",
            Self::Restore { .. } => "restore",
        }
    }

    /// The single-task command this operation is.
    fn command(&self) -> Command {
        match self.clone() {
            Self::Create(task) => Command::Create { task, idempotency: None },
            Self::Update { id, changes, if_match } => Command::Update { id, changes, if_match },
            Self::Complete { id, if_match } => Command::SetCompleted { id, completed: true, if_match },
            Self::Reopen { id, if_match } => Command::SetCompleted { id, completed: false, if_match },
            Self::Move { id, project_id, if_match } => {
                let project_id = project_id.map_or(Patch::Null, Patch::Value);
                Command::Update {
                    id,
                    changes: TaskChanges { project_id, ..TaskChanges::default() },
                    if_match,
                }
            }
            Self::Delete { id, if_match } => Command::Delete { id, if_match },
            Self::Restore { id, if_match } => Command::Restore { id, if_match, idempotency: None },
        }
    }
}

/// One operation's result.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "web", derive(utoipa::ToSchema))]
pub struct BatchItem {
    pub index: usize,
    pub op: &'static str,
    /// The status the single-task route would have answered (201 for a create, 200 otherwise).
    pub status: u16,
    /// The task after the operation (for `delete`, as it is in the trash).
    pub task: Task,
}

pub(super) async fn apply(
    conn: &mut PgConnection,
    settings: CommandSettings,
    user: Uuid,
    operations: &[BulkOp],
) -> Result<Outcome, WriteError> {
    let mut zone = None;
    let mut items = Vec::with_capacity(operations.len());
    let mut created = false;
    for (index, op) in operations.iter().enumerate() {
        let in_batch = |error: WriteError| WriteError::InBatch { index, error: Box::new(error) };
        // Creates skip the per-task limit check; the batch is checked once at the end.
        let outcome = match op {
            BulkOp::Create(task) => create(conn, user, task, &mut zone).await.map(Outcome::Created),
            other => apply_task(conn, settings, user, &other.command(), &mut zone).await,
        };
        let (status, task) = match outcome.map_err(in_batch)? {
            Outcome::Created(task) => (201, task),
            Outcome::Updated(task) | Outcome::Trashed(task) => (200, task),
            other => return Err(in_batch(WriteError::Unexpected(format!("{other:?}")))),
        };
        created |= status == 201;
        items.push(BatchItem { index, op: op.name(), status, task });
    }
    // Creates count once, at the end: the limit holds for the batch as a whole.
    if created {
        check_task_limit(conn, settings, user).await?;
    }
    Ok(Outcome::Batch(items))
}
