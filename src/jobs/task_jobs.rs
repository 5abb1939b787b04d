//! The jobs a task write keeps in step with the task, inside the writer's transaction: its
//! reminder and the follow-up that makes its next occurrence. Writers call [`sync`]; each kind's
//! own file decides what its job needs.

use sqlx::PgConnection;

pub use super::recurrence::NextOccurrence;
pub use super::reminder::Reminder;
use super::{EnqueueError, recurrence, reminder};
use crate::db::tasks::Task;

/// Brings a task's pending jobs in line with its new state. `before` is `None` for a new task.
pub async fn sync(conn: &mut PgConnection, before: Option<&Task>, after: &Task) -> Result<(), EnqueueError> {
    reminder::sync(conn, before, after).await?;
    recurrence::sync(conn, before, after).await
}
