//! Batches of task operations: applied in order in one transaction, all or none. Each operation
//! does exactly what its single-task route does, jobs included; the first failure rolls back the
//! whole batch and names its index.

use std::collections::HashMap;

use serde::Serialize;
use sqlx::PgConnection;
use uuid::Uuid;

use super::tasks::{check_task_limit, default_timezone, insert_new, new_task};
use super::{Command, CommandSettings, IfMatch, Outcome, TaskChanges, WriteError};
use crate::db::tasks;
use crate::domain::{Invalid, Patch, Position, Task, TaskFields, TimeZone};

#[derive(Debug, Clone)]
pub enum BulkOp {
    /// A new task; with an id when a later operation of the batch refers to it (its `ref`), the
    /// id the web layer gave it.
    Create(TaskFields<Option<TimeZone>>, Option<Uuid>),
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
    /// The task an operation acts on; none for a create.
    fn task_id(&self) -> Option<Uuid> {
        match self {
            Self::Create(..) => None,
            Self::Update { id, .. }
            | Self::Complete { id, .. }
            | Self::Reopen { id, .. }
            | Self::Move { id, .. }
            | Self::Delete { id, .. }
            | Self::Restore { id, .. } => Some(*id),
        }
    }

    /// Whether the operation sets a task's parent.
    pub(super) fn sets_parent(&self) -> bool {
        match self {
            Self::Create(task, _) => task.parent_id.is_some(),
            Self::Update { changes, .. } => changes.parent_id != Patch::Absent,
            _ => false,
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            Self::Create(..) => "create",
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
            Self::Create(task, _) => Command::Create { task, idempotency: None },
            Self::Update { id, changes, if_match } => Command::Update { id, changes, if_match },
            Self::Complete { id, if_match } => {
                Command::SetCompleted { id, completed: true, if_match, link: None }
            }
            Self::Reopen { id, if_match } => {
                Command::SetCompleted { id, completed: false, if_match, link: None }
            }
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
    #[cfg_attr(feature = "web", schema(value_type = crate::web::routes::tasks::bulk::BulkOpName))]
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
    // Every task the batch names is locked up front, in id order, before any write takes a
    // count row: locked one operation at a time, a later one could wait on a task row while
    // holding a project's or the user's count, and deadlock with another process's write.
    let named: Vec<Uuid> = operations.iter().filter_map(BulkOp::task_id).collect();
    tasks::lock_many(conn, user, &named).await?;
    let mut index = 0;
    while index < operations.len() {
        // A run of creates is one INSERT; everything else runs as its single-task route does.
        let run = create_run_length(&operations[index..]);
        if run > 0 {
            items.extend(create_run(conn, user, &operations[index..index + run], index, &mut zone).await?);
            index += run;
            continue;
        }
        let op = &operations[index];
        let in_batch = |error: WriteError| failed(index, op.name(), error);
        let task = match super::tasks::apply(conn, settings, user, &op.command(), &mut zone)
            .await
            .map_err(in_batch)?
        {
            Outcome::Updated(task) | Outcome::Trashed(task) => task,
            other => return Err(in_batch(WriteError::Unexpected(format!("{other:?}")))),
        };
        items.push(BatchItem { index, op: op.name(), status: 200, task });
        index += 1;
    }
    // Creates count once, at the end: the limit holds for the batch as a whole.
    if items.iter().any(|item| item.status == 201) {
        check_task_limit(conn, settings, user).await?;
    }
    Ok(Outcome::Batch(items))
}

/// How many creates from the start of `operations` go into one INSERT: a run of creates, cut
/// before a create whose parent is made earlier in the same run (the parent's row must exist
/// before its subtask is checked against it).
fn create_run_length(operations: &[BulkOp]) -> usize {
    let mut made = Vec::new();
    for (length, op) in operations.iter().enumerate() {
        let BulkOp::Create(task, id) = op else { return length };
        if task.parent_id.is_some_and(|parent| made.contains(&parent)) {
            return length;
        }
        made.extend(*id);
    }
    operations.len()
}

/// Operation `index` failed. Its field errors are named as the client wrote them: a create's
/// under `task.`, an update's under `changes.`.
fn failed(index: usize, op: &str, error: WriteError) -> WriteError {
    let parent = match op {
        "create" => Some("task"),
        "update" => Some("changes"),
        _ => None,
    };
    let error = match (error, parent) {
        (WriteError::Invalid(errors), Some(parent)) => WriteError::Invalid(
            errors.into_iter().map(|e| Invalid::new(format!("{parent}.{}", e.field), e.message)).collect(),
        ),
        (error, _) => error,
    };
    WriteError::InBatch { index, error: Box::new(error) }
}

/// A create run's subtasks of one parent: how many, and the place after the last of them.
#[derive(Debug, Clone, Copy)]
struct Added {
    count: i32,
    next: i32,
}

/// Inserts consecutive creates (operations `first…`) in one statement, after checking each as
/// a single create would, then queues their jobs.
async fn create_run(
    conn: &mut PgConnection,
    user: Uuid,
    run: &[BulkOp],
    first: usize,
    zone: &mut Option<TimeZone>,
) -> Result<Vec<BatchItem>, WriteError> {
    let in_batch = |index: usize, error: WriteError| failed(index, "create", error);
    let default_zone = default_timezone(conn, user, zone).await.map_err(|e| in_batch(first, e))?;
    let mut rows = Vec::with_capacity(run.len());
    // The run's creates under each parent so far. They are inserted together at the end, so
    // neither the parent's stored count nor its subtasks' positions show them yet: a run that
    // fills a parent past its limit must be refused at the create that crosses it (the
    // commit-time check would only name the batch), and each appended create goes after the
    // one before it.
    let mut added: HashMap<Uuid, Added> = HashMap::new();
    for (offset, op) in run.iter().enumerate() {
        let BulkOp::Create(task, id) = op else { continue };
        let fields = task.clone().with_default_timezone(default_zone);
        let mut row = new_task(fields, *id).await.map_err(|e| in_batch(first + offset, e))?;
        if let Some(parent) = row.fields.parent_id {
            let keeps_project = row.fields.project_id.is_none();
            let before = added.get(&parent).copied();
            let placed = async {
                super::tree::enter(conn, user).await?;
                let ahead = before.map_or(0, |a| a.count);
                super::tree::adopt(conn, user, None, &mut row.fields, keeps_project, ahead).await?;
                let next = match before {
                    Some(a) => a.next,
                    None => tasks::tree::next_position(conn, user, parent).await?,
                };
                let position = *row.fields.position.get_or_insert(next);
                let next = next.max(position.saturating_add(1)).min(Position::MAX);
                Ok::<_, WriteError>(Added { count: ahead + 1, next })
            };
            let now = placed.await.map_err(|e| in_batch(first + offset, e))?;
            added.insert(parent, now);
        }
        rows.push(row);
    }
    // A project that is not the caller's is named by its operation, as a single create would
    // name the field (the multi-row insert could not say which row broke the foreign key).
    let wanted: Vec<Uuid> = rows.iter().filter_map(|row| row.fields.project_id).collect();
    if !wanted.is_empty() {
        // The user's counter before the projects, in the order every task write takes them.
        crate::db::changes::lock_head(conn, user).await.map_err(|e| in_batch(first, e.into()))?;
        let owned =
            tasks::owned_projects(conn, user, &wanted).await.map_err(|e| in_batch(first, e.into()))?;
        if let Some(offset) =
            rows.iter().position(|row| row.fields.project_id.is_some_and(|p| !owned.contains(&p)))
        {
            let invalid = Invalid::new("project_id", "is not one of your projects");
            return Err(in_batch(first + offset, WriteError::Invalid(vec![invalid])));
        }
    }
    let created = insert_new(conn, user, &rows).await.map_err(|e| in_batch(first, e))?;
    let items = created.into_iter().enumerate();
    Ok(items
        .map(|(offset, task)| BatchItem { index: first + offset, op: "create", status: 201, task })
        .collect())
}
