//! Sync: the change feed (`GET /changes`); live events are in `events`. Also served under
//! `/users/{user_id}`.

use actix_web::{HttpRequest, get, web};
use serde::Serialize;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::db::changes::{self, Stale};
use crate::db::tasks::Task;
use crate::web::auth::AuthUser;
use crate::web::problem::{ApiError, Problem, ProblemCode};
use crate::web::query::{Params, integer_in};
use crate::web::reads::ReadPool;
use crate::web::routes::shared::check_alias;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(changes_feed);
}

const DEFAULT_LIMIT: i64 = 100;
const MAX_LIMIT: i64 = 500;

/// The feed's parameters (documentation; the handler parses the query itself so that every
/// mistake names its parameter).
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct ChangesParams {
    /// The `next_since` of the previous call; `0` (the default) gives every live task.
    #[param(minimum = 0, default = 0)]
    since: Option<i64>,
    /// Changes per page.
    #[param(minimum = 1, maximum = 500, default = 100)]
    limit: Option<i64>,
}

#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ChangeType {
    Upsert,
    Delete,
}

#[derive(Serialize, ToSchema)]
pub struct ChangeEntry {
    /// The change number: strictly increasing per user.
    change: i64,
    #[serde(rename = "type")]
    kind: ChangeType,
    /// The task's id, for deletes and upserts alike.
    id: Uuid,
    /// The task as `GET /tasks/{id}` returns it; only for upserts.
    #[serde(skip_serializing_if = "Option::is_none")]
    task: Option<Task>,
}

#[derive(Serialize, ToSchema)]
pub struct ChangesPage {
    /// Oldest first; a task appears once, in its latest state.
    changes: Vec<ChangeEntry>,
    /// Pass as `since` next time.
    next_since: i64,
    /// More changes follow at once: call again with `next_since`.
    has_more: bool,
}

/// List task changes since a change number
///
/// The caller's task changes after change number `since`, oldest first, for keeping a local copy
/// in sync. An `upsert` carries the whole task; a `delete` (a trashed or purged task) carries its
/// id. A task appears once per page, in its latest state. Follow `next_since` until `has_more` is
/// false, and keep the last `next_since` for the next sync. A `since` older than the kept
/// tombstones gets `410 resync_required`: start again from 0.
#[utoipa::path(
    context_path = "/api/v1", operation_id = "listChanges", tag = "sync", security(("bearer" = []), ("apiToken" = ["tasks:read"])), params(ChangesParams),
    responses(
        (status = 200, body = ChangesPage),
        (status = 410, description = "`since` is older than the kept tombstones (or not from this feed): start again from 0", body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/changes")]
#[tracing::instrument(skip_all)]
pub async fn changes_feed(
    req: HttpRequest,
    user: AuthUser,
    query: web::Query<Vec<(String, String)>>,
    reads: ReadPool,
) -> Result<web::Json<ChangesPage>, ApiError> {
    check_alias(&req, user.id)?;
    let params = Params::new(&query, &["since", "limit"], &[])?;
    let since = integer_in(&params, "since", 0, i64::MAX)?.unwrap_or(0);
    let limit = integer_in(&params, "limit", 1, MAX_LIMIT)?.unwrap_or(DEFAULT_LIMIT);
    let page = changes::page(&reads.0, user.id, since, limit + 1).await.map_err(ApiError::from_db)?;
    page.check(since).map_err(resync_required)?;
    let has_more = page.changes.len() as i64 > limit;
    let entries: Vec<ChangeEntry> = page
        .changes
        .into_iter()
        .take(limit as usize)
        .map(|c| ChangeEntry {
            change: c.seq,
            kind: if c.task.is_some() { ChangeType::Upsert } else { ChangeType::Delete },
            id: c.task_id,
            task: c.task,
        })
        .collect();
    let next_since = match (has_more, entries.last()) {
        (true, Some(last)) => last.change,
        // The whole feed up to the head was in this snapshot.
        _ => page.head.max(since),
    };
    Ok(web::Json(ChangesPage { changes: entries, next_since, has_more }))
}

fn resync_required(stale: Stale) -> ApiError {
    let detail = match stale {
        Stale::Pruned => "Changes since then are no longer kept; start again with since=0.",
        Stale::Unknown => "That change number is not from this feed; start again with since=0.",
    };
    ApiError::Gone { code: ProblemCode::ResyncRequired, detail: detail.into() }
}
