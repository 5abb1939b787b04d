//! `GET /tasks` and `GET /tasks/trash`: every parameter parsed strictly (an unknown one is a 400,
//! a bad value a 422 naming it) into a list specification the query layer runs.

use actix_web::{HttpResponse, get, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::cursor::{CursorError, Cursors};
use crate::db::task_list::{
    self, Direction, Filter, ListSpec, ParentFilter, ProjectFilter, Search, Shelf, SortKey, TagMode,
};
use crate::db::tasks::Task;
use crate::domain::{Invalid, Priority, Tags};
use crate::web::problem::{ApiError, Problem};
use crate::web::query::{Params, integer};
use crate::web::reads::ReadPool;
use crate::web::routes::shared::Caller;
use crate::web::state::AppState;

const MAX_LIMIT: i64 = 100;
const DEFAULT_LIMIT: i64 = 50;
/// Deep offsets cost a scan of everything skipped; past this, page with `cursor`.
const MAX_OFFSET: i64 = 10_000;
const MAX_QUERY_CHARS: usize = 500;

const LIVE_PARAMS: &[&str] = &[
    "q",
    "completed",
    "priority",
    "tags",
    "tag_mode",
    "due_from",
    "due_to",
    "overdue",
    "has_due",
    "project_id",
    "parent_id",
    "sort",
    "order",
    "limit",
    "offset",
    "cursor",
];
const TRASH_PARAMS: &[&str] = &["limit", "offset", "cursor"];

/// The list's parameters (documentation; the handler parses the query string itself so that
/// `priority` may repeat and every mistake names its parameter).
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct ListParams {
    /// Full-text search in title and description (`"a phrase"`, `or`, `-exclude`); the last word
    /// also matches as a prefix. Ranked by relevance unless `sort` is given.
    q: Option<String>,
    completed: Option<bool>,
    /// Tasks of any of these priorities; repeat the parameter (or separate with commas) for
    /// several.
    #[param(value_type = Option<Vec<Priority>>, style = Form, explode)]
    priority: Option<String>,
    /// Comma-separated tags.
    tags: Option<String>,
    /// Whether a task needs `any` (the default) or `all` of `tags`.
    #[param(value_type = Option<TagMatch>)]
    tag_mode: Option<String>,
    /// Due at or after this instant (RFC 3339).
    due_from: Option<DateTime<Utc>>,
    /// Due at or before this instant (RFC 3339).
    due_to: Option<DateTime<Utc>>,
    /// `true`: open tasks whose due time has passed; `false`: all others.
    overdue: Option<bool>,
    has_due: Option<bool>,
    /// A project's id, or `inbox` for tasks in no project. Without it, tasks of archived
    /// projects are left out.
    project_id: Option<String>,
    /// A task's id for its subtasks, or `none` for top-level tasks only. Without it, every
    /// level is listed.
    parent_id: Option<String>,
    /// The sort key; by default `created_at`, or relevance when `q` is given.
    #[param(value_type = Option<TaskSort>)]
    sort: Option<String>,
    /// The default is `desc` for `created_at`, `updated_at` and `priority`, `asc` for `due_at`
    /// and `title`.
    #[param(value_type = Option<SortOrder>)]
    order: Option<String>,
    /// Tasks per page.
    #[param(minimum = 1, maximum = 100, default = 50)]
    limit: Option<i64>,
    /// Tasks to skip; use `cursor` to page further.
    #[param(minimum = 0, maximum = 10_000, default = 0)]
    offset: Option<i64>,
    /// `next_cursor` of the previous page, with the same other parameters.
    cursor: Option<String>,
}

/// What `GET /tasks` sorts by.
#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TaskSort {
    CreatedAt,
    UpdatedAt,
    /// Tasks without a due date come last in both directions.
    DueAt,
    /// High first when descending.
    Priority,
    /// Case-insensitive.
    Title,
}

/// A sort direction.
#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SortOrder {
    Asc,
    Desc,
}

/// Whether a task must carry any or all of the tags asked for.
#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TagMatch {
    Any,
    All,
}

/// Reads a closed-set query value by the name its documented enum gives it, ignoring case and
/// surrounding spaces.
fn closed<T: serde::de::DeserializeOwned>(raw: &str) -> Option<T> {
    serde_json::from_value(serde_json::Value::String(raw.trim().to_ascii_lowercase())).ok()
}

#[derive(Serialize, ToSchema)]
pub struct TaskPage {
    pub items: Vec<Task>,
    /// How many tasks match in all: exact when `total_is_exact`, otherwise an estimate, larger
    /// than the exact-count bound (1,000 by default).
    pub total: i64,
    /// False when more tasks match than a filtered list counts exactly; `total` is then the
    /// database's estimate. An unfiltered list's total is always exact.
    pub total_is_exact: bool,
    pub limit: i64,
    pub offset: i64,
    /// Pass as `cursor` for the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

/// List, search and filter tasks
///
/// The caller's live tasks, searched (`q`), filtered, sorted and paged. Filters combine with AND.
/// Page with `limit` and `offset`, or, for stable pages while tasks change, follow `next_cursor`
/// with the same other parameters.
#[utoipa::path(
    context_path = "/api/v1", operation_id = "listTasks", tag = "tasks", security(("bearer" = []), ("apiToken" = ["tasks:read"])), params(ListParams),
    responses((status = 200, body = TaskPage), (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"))
)]
#[get("/tasks")]
#[tracing::instrument(skip_all)]
pub async fn list(
    state: web::Data<AppState>,
    caller: Caller,
    query: web::Query<Vec<(String, String)>>,
    reads: ReadPool,
) -> Result<HttpResponse, ApiError> {
    respond(&state, &reads.0, caller.0, Shelf::Live, &query).await
}

/// List trashed tasks
///
/// The caller's trash, most recently deleted first. Trashed tasks are purged after the retention
/// period. Takes `limit`, `offset` and `cursor` only.
#[utoipa::path(
    context_path = "/api/v1", operation_id = "listTrashedTasks", tag = "tasks", security(("bearer" = []), ("apiToken" = ["tasks:read"])),
    params(
        ("limit" = Option<i64>, Query, minimum = 1, maximum = 100, description = "Tasks per page; 50 by default"),
        ("offset" = Option<i64>, Query, minimum = 0, maximum = 10_000, description = "Tasks to skip; use `cursor` to page further"),
        ("cursor" = Option<String>, Query, description = "`next_cursor` of the previous page"),
    ),
    responses((status = 200, body = TaskPage), (status = 400, body = Problem, content_type = "application/problem+json"))
)]
#[get("/tasks/trash")]
#[tracing::instrument(skip_all)]
pub async fn trash(
    state: web::Data<AppState>,
    caller: Caller,
    query: web::Query<Vec<(String, String)>>,
    reads: ReadPool,
) -> Result<HttpResponse, ApiError> {
    respond(&state, &reads.0, caller.0, Shelf::Trash, &query).await
}

async fn respond(
    state: &AppState,
    pool: &PgPool,
    user: Uuid,
    shelf: Shelf,
    pairs: &[(String, String)],
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(page(state, pool, user, shelf, pairs).await?))
}

/// One page of the list, from parameters as the query string gives them: the list's rules for
/// every door that lists tasks (MCP's `find_tasks` and `agenda` too).
pub async fn page(
    state: &AppState,
    pool: &PgPool,
    user: Uuid,
    shelf: Shelf,
    pairs: &[(String, String)],
) -> Result<TaskPage, ApiError> {
    let (mut spec, cursor) = parse(pairs, shelf)?;
    spec.exact_total_up_to = i64::from(state.settings.tasks.list_exact_total_up_to);
    spec.ranked_matches = i64::from(state.settings.tasks.search_ranked_matches).max(1);
    let cursors = Cursors::new(&state.settings.auth.jwt_secret);
    let fingerprint = Cursors::fingerprint(&format!(
        "{user}|{shelf:?}|{:?}|{:?}|{:?}",
        spec.filter, spec.sort, spec.direction
    ));
    if let Some(cursor) = cursor {
        spec.after = Some(cursors.open(&fingerprint, cursor).map_err(|err| match err {
            CursorError::Malformed => ApiError::BadRequest(format!("cursor: {err}.")),
            CursorError::OtherQuery => ApiError::BadRequest(format!("cursor: {err}.")),
        })?);
    }
    let mut conn = pool.acquire().await.map_err(ApiError::from_db)?;
    let page = task_list::list(&mut conn, user, &spec).await.map_err(ApiError::from_db)?;
    Ok(TaskPage {
        items: page.items,
        total: page.total,
        total_is_exact: page.total_is_exact,
        limit: spec.limit,
        offset: spec.offset,
        next_cursor: page.next.map(|after| cursors.seal(&fingerprint, &after)),
    })
}

fn parse(pairs: &[(String, String)], shelf: Shelf) -> Result<(ListSpec, Option<&str>), ApiError> {
    let allowed = if shelf == Shelf::Live { LIVE_PARAMS } else { TRASH_PARAMS };
    let params = Params::new(pairs, allowed, &["priority"])?;
    let limit = integer(&params, "limit")?.unwrap_or(DEFAULT_LIMIT);
    let offset = integer(&params, "offset")?.unwrap_or(0);
    let cursor = params.one("cursor");

    let mut errors = Vec::new();
    let mut keep = Keep(&mut errors);
    if !(1..=MAX_LIMIT).contains(&limit) {
        keep.error(Invalid::new("limit", format!("must be between 1 and {MAX_LIMIT}")));
    }
    if !(0..=MAX_OFFSET).contains(&offset) {
        keep.error(Invalid::new(
            "offset",
            format!("must be between 0 and {MAX_OFFSET}; page further with cursor"),
        ));
    }
    if cursor.is_some() && offset != 0 {
        keep.error(Invalid::new(
            "offset",
            "cannot be combined with cursor, which already says where to start",
        ));
    }
    let filter = Filter {
        search: keep.ok(search(params.one("q"))).flatten(),
        completed: keep.ok(boolean(&params, "completed")).flatten(),
        priorities: keep.ok(priorities(&params.all("priority"))).unwrap_or_default(),
        tags: keep.ok(tags(params.one("tags"))).unwrap_or_default(),
        tag_mode: keep.ok(tag_mode(params.one("tag_mode"))).unwrap_or_default(),
        due_from: keep.ok(instant(&params, "due_from")).flatten(),
        due_to: keep.ok(instant(&params, "due_to")).flatten(),
        overdue: keep.ok(boolean(&params, "overdue")).flatten(),
        has_due: keep.ok(boolean(&params, "has_due")).flatten(),
        project: keep.ok(project(params.one("project_id"))).unwrap_or_default(),
        parent: keep.ok(parent(params.one("parent_id"))).unwrap_or_default(),
    };
    if let (Some(from), Some(to)) = (filter.due_from, filter.due_to)
        && from > to
    {
        keep.error(Invalid::new("due_to", "must not be before due_from"));
    }
    let sort = keep.ok(sort_key(params.one("sort"), &filter, shelf)).unwrap_or(SortKey::CreatedAt);
    let direction = keep.ok(direction(params.one("order"), sort)).unwrap_or(Direction::Desc);

    if !errors.is_empty() {
        return Err(ApiError::invalid(errors));
    }
    let spec = ListSpec {
        shelf,
        filter,
        sort,
        direction,
        limit,
        offset,
        after: None,
        exact_total_up_to: 0,
        ranked_matches: 1,
    };
    Ok((spec, cursor))
}

/// Collects every parameter's mistake, so one answer names them all.
struct Keep<'e>(&'e mut Vec<Invalid>);

impl Keep<'_> {
    fn ok<T>(&mut self, result: Result<T, Invalid>) -> Option<T> {
        result.map_err(|e| self.0.push(e)).ok()
    }

    fn error(&mut self, invalid: Invalid) {
        self.0.push(invalid);
    }
}

fn boolean(params: &Params<'_>, name: &'static str) -> Result<Option<bool>, Invalid> {
    params
        .one(name)
        .map(|raw| match raw.trim().to_ascii_lowercase().as_str() {
            "true" => Ok(true),
            "false" => Ok(false),
            _ => Err(Invalid::new(name, "must be true or false")),
        })
        .transpose()
}

fn instant(params: &Params<'_>, name: &'static str) -> Result<Option<DateTime<Utc>>, Invalid> {
    params
        .one(name)
        .map(|raw| {
            DateTime::parse_from_rfc3339(raw.trim()).map(|at| at.to_utc()).map_err(|_| {
                Invalid::new(
                    name,
                    "must be an RFC 3339 time with an offset, such as 2030-03-04T09:00:00+01:00",
                )
            })
        })
        .transpose()
}

fn search(raw: Option<&str>) -> Result<Option<Search>, Invalid> {
    let Some(raw) = raw else { return Ok(None) };
    if raw.chars().count() > MAX_QUERY_CHARS {
        return Err(Invalid::new("q", format!("must be at most {MAX_QUERY_CHARS} characters")));
    }
    if raw.chars().any(char::is_control) {
        return Err(Invalid::new("q", "must not contain control characters"));
    }
    Ok(Search::parse(raw))
}

fn priorities(raw: &[&str]) -> Result<Vec<Priority>, Invalid> {
    let mut priorities = Vec::new();
    for value in raw.iter().flat_map(|v| v.split(',')) {
        let priority = Priority::parse(value)
            .map_err(|_| Invalid::new("priority", "each must be low, medium or high"))?;
        if !priorities.contains(&priority) {
            priorities.push(priority);
        }
    }
    // One order for one meaning, so equal filters share cursors.
    priorities.sort();
    Ok(priorities)
}

fn tags(raw: Option<&str>) -> Result<Vec<String>, Invalid> {
    let Some(raw) = raw else { return Ok(Vec::new()) };
    let given: Vec<String> = raw.split(',').map(str::to_owned).collect();
    let mut tags = Tags::parse(&given)?.as_slice().to_vec();
    tags.sort();
    Ok(tags)
}

fn project(raw: Option<&str>) -> Result<ProjectFilter, Invalid> {
    match raw.map(str::trim) {
        None => Ok(ProjectFilter::Active),
        Some("inbox") => Ok(ProjectFilter::Inbox),
        Some(id) => id
            .parse::<Uuid>()
            .map(ProjectFilter::Project)
            .map_err(|_| Invalid::new("project_id", "must be a project id or inbox")),
    }
}

fn parent(raw: Option<&str>) -> Result<ParentFilter, Invalid> {
    match raw.map(str::trim) {
        None => Ok(ParentFilter::Any),
        Some("none") => Ok(ParentFilter::TopLevel),
        Some(id) => id
            .parse::<Uuid>()
            .map(ParentFilter::Of)
            .map_err(|_| Invalid::new("parent_id", "must be a task id or none")),
    }
}

fn tag_mode(raw: Option<&str>) -> Result<TagMode, Invalid> {
    match raw.map(closed) {
        None | Some(Some(TagMatch::Any)) => Ok(TagMode::Any),
        Some(Some(TagMatch::All)) => Ok(TagMode::All),
        Some(None) => Err(Invalid::new("tag_mode", "must be any or all")),
    }
}

fn sort_key(raw: Option<&str>, filter: &Filter, shelf: Shelf) -> Result<SortKey, Invalid> {
    if shelf == Shelf::Trash {
        return Ok(SortKey::DeletedAt);
    }
    match raw.map(closed) {
        None if filter.search.is_some() => Ok(SortKey::Relevance),
        None | Some(Some(TaskSort::CreatedAt)) => Ok(SortKey::CreatedAt),
        Some(Some(TaskSort::UpdatedAt)) => Ok(SortKey::UpdatedAt),
        Some(Some(TaskSort::DueAt)) => Ok(SortKey::DueAt),
        Some(Some(TaskSort::Priority)) => Ok(SortKey::Priority),
        Some(Some(TaskSort::Title)) => Ok(SortKey::Title),
        Some(None) => {
            Err(Invalid::new("sort", "must be one of created_at, updated_at, due_at, priority, title"))
        }
    }
}

fn direction(raw: Option<&str>, sort: SortKey) -> Result<Direction, Invalid> {
    match raw.map(closed) {
        Some(Some(SortOrder::Asc)) => Ok(Direction::Asc),
        Some(Some(SortOrder::Desc)) => Ok(Direction::Desc),
        Some(None) => Err(Invalid::new("order", "must be asc or desc")),
        None => Ok(match sort {
            SortKey::DueAt | SortKey::Title => Direction::Asc,
            _ => Direction::Desc,
        }),
    }
}
