//! Project writes: create, change, and delete (which trashes the project's tasks).

use sqlx::PgConnection;
use uuid::Uuid;

use super::{IfMatch, Outcome, WriteError};
use crate::db::projects::{self, ProjectFields};
use crate::domain::{Color, Patch, Position, ProjectName};
use crate::jobs::task_jobs;

/// A merge patch of a project: `None`/`Absent` leaves a field, `Patch::Null` clears the color.
#[derive(Debug, Clone, Default)]
pub struct ProjectChanges {
    pub name: Option<ProjectName>,
    pub color: Patch<Color>,
    pub position: Option<Position>,
    pub archived: Option<bool>,
}

pub(super) async fn create(
    conn: &mut PgConnection,
    user: Uuid,
    id: Option<Uuid>,
    fields: &ProjectFields,
) -> Result<Outcome, WriteError> {
    // Serialises project creation per user across processes, so the count below is exact.
    if !crate::db::users::lock_for_project_create(conn, user).await? {
        return Err(WriteError::NotFound);
    }
    let created = projects::insert(conn, user, id.unwrap_or_else(Uuid::now_v7), fields).await?;
    if projects::count(conn, user).await? > projects::MAX_PER_USER {
        return Err(WriteError::ProjectLimit(projects::MAX_PER_USER));
    }
    Ok(Outcome::ProjectCreated(created))
}

pub(super) async fn update(
    conn: &mut PgConnection,
    user: Uuid,
    id: Uuid,
    changes: &ProjectChanges,
    if_match: &IfMatch,
) -> Result<Outcome, WriteError> {
    // The counter before the project, the order task writes take them: the webhook trigger
    // numbers the change from the counter after the project's row is locked.
    crate::db::changes::lock_head(conn, user).await?;
    let current = projects::lock(conn, user, id).await?.ok_or(WriteError::NotFound)?;
    if_match.check(current.version)?;
    let current_color = current.color.as_deref().map(Color::parse).transpose()?;
    let fields = ProjectFields {
        name: match &changes.name {
            Some(name) => name.clone(),
            None => ProjectName::parse(&current.name)?,
        },
        color: changes.color.clone().apply(current_color),
        position: changes.position,
        archived: changes.archived.unwrap_or(current.archived),
    };
    // `None`: nothing changed, so the version stays.
    let updated = projects::update(conn, user, id, &fields).await?;
    Ok(Outcome::ProjectUpdated(updated.unwrap_or(current)))
}

/// Locks the project's tasks (in id order) before the project, the order task writes take them,
/// then trashes the live ones with their jobs cancelled, as deleting each would.
pub(super) async fn delete(
    conn: &mut PgConnection,
    user: Uuid,
    id: Uuid,
    if_match: &IfMatch,
) -> Result<Outcome, WriteError> {
    let current = projects::find(&mut *conn, user, id).await?.ok_or(WriteError::NotFound)?;
    if_match.check(current.version)?;
    let mut emptied = projects::empty(conn, user, id).await?;
    // Trashing tasks took the counter already; an empty project's deletion takes it here, before
    // the project, for the webhook trigger's number.
    crate::db::changes::lock_head(conn, user).await?;
    let locked = projects::lock(conn, user, id).await?.ok_or(WriteError::NotFound)?;
    if_match.check(locked.version)?;
    // A task put into the project after the first pass (its writer locked the project first, so
    // none can come in now) is trashed too, rather than left to the foreign key's SET NULL, which
    // would change it with no new version or change number.
    emptied.extend(projects::empty(conn, user, id).await?);
    for (before, after) in emptied {
        task_jobs::sync(conn, Some(&before), &after).await?;
    }
    projects::delete(conn, user, id).await?;
    Ok(Outcome::Deleted)
}
