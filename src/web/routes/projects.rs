//! The project resource, served both at `/projects…` and at `/users/{user_id}/projects…`. Reads
//! go straight to the pool; every write goes to the caller's actor, as task writes do.

use actix_web::{HttpRequest, HttpResponse, delete, get, patch, post, web};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::commands::{Command, ProjectChanges};
use crate::db::projects::{self, Project, ProjectFields};
use crate::domain::{Color, Invalid, Patch, Position, ProjectName};
use crate::web::extractors::data_error;
use crate::web::json::Json;
use crate::web::problem::{ApiError, Problem};
use crate::web::routes::shared::{self, Caller, keep};
use crate::web::state::AppState;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(list).service(create).service(get_project).service(update).service(remove);
}

#[derive(Deserialize)]
struct ProjectPath {
    id: Uuid,
}

/// A new project.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProjectInput {
    /// 1–100 characters after trimming; unique per user, ignoring case.
    #[schema(min_length = 1, max_length = 100)]
    name: String,
    /// `#rrggbb`.
    #[schema(pattern = "^#[0-9a-fA-F]{6}$")]
    color: Option<String>,
    /// Where it sorts; defaults to after the last project.
    #[schema(nullable = false, minimum = 0, maximum = 1_000_000)]
    position: Option<i64>,
    #[serde(default)]
    archived: bool,
}

/// A merge patch of a project: left-out fields stay; `null` clears `color`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProjectPatch {
    #[serde(default)]
    #[schema(value_type = Option<String>, nullable = false, min_length = 1, max_length = 100)]
    name: Patch<String>,
    #[serde(default)]
    #[schema(value_type = Option<String>, pattern = "^#[0-9a-fA-F]{6}$")]
    color: Patch<String>,
    #[serde(default)]
    #[schema(value_type = Option<i64>, nullable = false, minimum = 0, maximum = 1_000_000)]
    position: Patch<i64>,
    #[serde(default)]
    #[schema(value_type = Option<bool>, nullable = false)]
    archived: Patch<bool>,
}

/// A new project's body into its fields, by the rules `createProject` applies (MCP's
/// `add_project` too).
pub fn parse_input(body: Value) -> Result<ProjectFields, ApiError> {
    let input: ProjectInput = serde_json::from_value(body).map_err(|e| data_error(&e))?;
    input.parse()
}

impl ProjectInput {
    fn parse(self) -> Result<ProjectFields, ApiError> {
        let mut errors = Vec::new();
        let name = keep(&mut errors, ProjectName::parse(&self.name));
        let color = self.color.and_then(|c| keep(&mut errors, Color::parse(&c)));
        let position = self.position.and_then(|p| keep(&mut errors, Position::parse(p)));
        match name {
            Some(name) if errors.is_empty() => {
                Ok(ProjectFields { name, color, position, archived: self.archived })
            }
            _ => Err(ApiError::invalid(errors)),
        }
    }
}

impl ProjectPatch {
    fn parse(self) -> Result<ProjectChanges, ApiError> {
        let mut errors = Vec::new();
        let mut not_null = |field: &'static str| errors.push(Invalid::new(field, "cannot be null"));
        let name = match self.name {
            Patch::Null => {
                not_null("name");
                Patch::Absent
            }
            other => other,
        };
        let position = match self.position {
            Patch::Null => {
                not_null("position");
                Patch::Absent
            }
            other => other,
        };
        let archived = match self.archived {
            Patch::Null => {
                not_null("archived");
                None
            }
            other => other.apply(None),
        };
        let changes = ProjectChanges {
            name: match name {
                Patch::Value(raw) => keep(&mut errors, ProjectName::parse(&raw)),
                _ => None,
            },
            color: match self.color {
                Patch::Value(raw) => {
                    keep(&mut errors, Color::parse(&raw)).map_or(Patch::Absent, Patch::Value)
                }
                Patch::Null => Patch::Null,
                Patch::Absent => Patch::Absent,
            },
            position: match position {
                Patch::Value(raw) => keep(&mut errors, Position::parse(raw)),
                _ => None,
            },
            archived,
        };
        if errors.is_empty() { Ok(changes) } else { Err(ApiError::invalid(errors)) }
    }
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ProjectQuery {
    /// `true`: archived projects only; `false`: active ones only; absent: all.
    archived: Option<bool>,
}

#[derive(Serialize, ToSchema)]
pub struct ProjectList {
    /// The caller's projects, lowest `position` first.
    items: Vec<Project>,
}

/// List the caller's projects
///
/// The caller's projects, lowest `position` first, with counts of their open and live tasks.
/// `archived` narrows the list to archived or active projects.
#[utoipa::path(
    context_path = "/api/v1", operation_id = "listProjects", tag = "projects", security(("bearer" = []), ("apiToken" = ["projects:read"])), params(ProjectQuery),
    responses((status = 200, body = ProjectList))
)]
#[get("/projects")]
#[tracing::instrument(skip_all)]
pub async fn list(
    state: web::Data<AppState>,
    caller: Caller,
    query: web::Query<ProjectQuery>,
) -> Result<HttpResponse, ApiError> {
    let items = projects::list(&state.pool, caller.0, query.archived).await.map_err(ApiError::from_db)?;
    Ok(HttpResponse::Ok().json(ProjectList { items }))
}

/// Create a project
///
/// Creates a project; its name must be unique for the caller, ignoring case (`409
/// project_name_taken`). With `Idempotency-Key`, a retry of the same request replays the first
/// answer instead of creating a second project.
#[utoipa::path(
    context_path = "/api/v1", operation_id = "createProject", tag = "projects", security(("bearer" = []), ("apiToken" = ["projects:write"])), request_body = ProjectInput,
    params(("Idempotency-Key" = Option<String>, Header, description = "Replays the first response for 24 hours")),
    responses(
        (status = 201, description = "Created, or the first answer replayed", body = Project, headers(("Location" = String), ("ETag" = String))),
        (status = 409, description = "A project with this name exists, or the account has 1000", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/projects")]
#[tracing::instrument(skip_all)]
pub async fn create(
    state: web::Data<AppState>,
    caller: Caller,
    req: HttpRequest,
    body: Json<Value>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let idempotency = shared::idempotency(req.headers(), "create-project", &body)?;
    let project = parse_input(body)?;
    let outcome =
        state.actors.execute(caller.0, Command::CreateProject { id: None, project, idempotency }).await?;
    Ok(shared::project_outcome_response(outcome))
}

/// Get one project
///
/// One project, with its `ETag`. Send the ETag back in `If-None-Match` to get `304` while it is
/// unchanged.
#[utoipa::path(
    context_path = "/api/v1", operation_id = "getProject", tag = "projects", security(("bearer" = []), ("apiToken" = ["projects:read"])), params(("id" = Uuid, Path), ("If-None-Match" = Option<String>, Header)),
    responses((status = 200, description = "The project", body = Project, headers(("ETag" = String))),
        (status = 304, description = "Not modified since the ETag in `If-None-Match`", headers(("ETag" = String))),
        (status = 404, body = Problem, content_type = "application/problem+json"))
)]
#[get("/projects/{id}")]
#[tracing::instrument(skip_all)]
pub async fn get_project(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<ProjectPath>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let project = projects::find(&state.pool, caller.0, path.id).await.map_err(ApiError::from_db)?;
    let project = project.ok_or(ApiError::NotFound)?;
    let etag = project.etag();
    match shared::not_modified(req.headers(), &etag)? {
        Some(not_modified) => Ok(not_modified),
        None => Ok(HttpResponse::Ok().insert_header((actix_web::http::header::ETAG, etag)).json(project)),
    }
}

/// Update a project
///
/// Renames, recolors, reorders, archives or unarchives a project. Left-out fields stay; `null`
/// clears `color`. With `If-Match`, the write happens only over that version.
#[utoipa::path(
    context_path = "/api/v1", operation_id = "updateProject", tag = "projects", security(("bearer" = []), ("apiToken" = ["projects:write"])), request_body = ProjectPatch,
    params(("id" = Uuid, Path), ("If-Match" = Option<String>, Header)),
    responses((status = 200, description = "The project as it is now", body = Project, headers(("ETag" = String))), (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json"))
)]
#[patch("/projects/{id}")]
#[tracing::instrument(skip_all)]
pub async fn update(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<ProjectPath>,
    req: HttpRequest,
    body: Json<ProjectPatch>,
) -> Result<HttpResponse, ApiError> {
    let if_match = shared::if_match(req.headers(), path.id)?;
    let changes = body.into_inner().parse()?;
    let outcome =
        state.actors.execute(caller.0, Command::UpdateProject { id: path.id, changes, if_match }).await?;
    Ok(shared::project_outcome_response(outcome))
}

/// Delete a project and trash its tasks
///
/// Deletes the project and moves its tasks to the trash, in one transaction. A task restored
/// later lands in the inbox.
#[utoipa::path(
    context_path = "/api/v1", operation_id = "deleteProject", tag = "projects", security(("bearer" = []), ("apiToken" = ["projects:write"])),
    params(("id" = Uuid, Path), ("If-Match" = Option<String>, Header)),
    responses((status = 204, description = "Deleted; its tasks are in the trash"),
        (status = 404, body = Problem, content_type = "application/problem+json"))
)]
#[delete("/projects/{id}")]
#[tracing::instrument(skip_all)]
pub async fn remove(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<ProjectPath>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let if_match = shared::if_match(req.headers(), path.id)?;
    let outcome = state.actors.execute(caller.0, Command::DeleteProject { id: path.id, if_match }).await?;
    Ok(shared::project_outcome_response(outcome))
}
