//! The task resource, served both at `/tasks…` and at `/users/{user_id}/tasks…`.
//! Reads go straight to the pool; every write goes to the caller's actor.

pub mod bulk;
mod cursor;
mod form;
pub mod list;
pub mod reminders;

use actix_web::{HttpRequest, HttpResponse, delete, get, patch, post, put, web};
use serde::Deserialize;
use serde_json::Value;
use utoipa::ToSchema;

use form::TaskForm;
pub use form::{FIELDS, TaskInput, TaskPatch};

use crate::commands::Command;
use crate::db::tasks::{self, Task};
use crate::web::json::Json;
use crate::web::problem::{ApiError, Problem};
use crate::web::routes::shared::{self, Caller, TaskPath};
use crate::web::state::AppState;

/// Literal paths come before `{id}`, which would otherwise swallow them.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(list::list)
        .service(create)
        .service(bulk::bulk)
        .service(list::trash)
        .service(get_task)
        .service(update)
        .service(replace)
        .service(remove)
        .service(restore)
        .service(toggle)
        .service(complete)
        .service(reminders::history);
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CompleteRequest {
    completed: bool,
}

/// Creates a task. With `Idempotency-Key`, a repeat replays the first response.
#[utoipa::path(
    context_path = "/api/v1", operation_id = "create_task", tag = "tasks", security(("bearer" = [])), request_body = TaskInput,
    params(("Idempotency-Key" = Option<String>, Header, description = "Replays the first response for 24 hours")),
    responses(
        (status = 201, body = Task, headers(("Location" = String), ("ETag" = String))),
        (status = 409, description = "`task_limit_reached`: the account holds as many tasks as it may (trashed ones count); or `idempotency_key_in_use`", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A field breaks a rule, or the Idempotency-Key was used with another body", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/tasks")]
#[tracing::instrument(skip_all)]
pub async fn create(
    state: web::Data<AppState>,
    caller: Caller,
    req: HttpRequest,
    body: Json<Value>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let idempotency = shared::idempotency(req.headers(), "create", &body)?;
    let task = TaskForm::parse(body).and_then(TaskForm::into_fields).map_err(ApiError::invalid)?;
    let outcome = state.actors.execute(caller.0, Command::Create { task, idempotency }).await?;
    Ok(shared::outcome_response(outcome))
}

/// One task, with its `ETag`; `If-None-Match` gives 304 when unchanged.
#[utoipa::path(
    context_path = "/api/v1", operation_id = "get_task", tag = "tasks", security(("bearer" = [])),
    params(("id" = Uuid, Path), ("If-None-Match" = Option<String>, Header)),
    responses((status = 200, body = Task, headers(("ETag" = String))), (status = 304, description = "Not modified"),
        (status = 404, body = Problem, content_type = "application/problem+json"))
)]
#[get("/tasks/{id}")]
#[tracing::instrument(skip_all)]
pub async fn get_task(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<TaskPath>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let task = tasks::find_live(&state.pool, caller.0, path.id).await.map_err(ApiError::from_db)?;
    let task = task.ok_or(ApiError::NotFound)?;
    match shared::not_modified(req.headers(), &task.etag())? {
        Some(not_modified) => Ok(not_modified),
        None => Ok(shared::task_response(200, &task)),
    }
}

/// Changes the fields sent; left-out fields stay, `null` clears.
#[utoipa::path(
    context_path = "/api/v1", operation_id = "update_task", tag = "tasks", security(("bearer" = [])), request_body = TaskPatch,
    params(("id" = Uuid, Path), ("If-Match" = Option<String>, Header)),
    responses((status = 200, body = Task), (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 412, body = Problem, content_type = "application/problem+json"), (status = 422, body = Problem, content_type = "application/problem+json"))
)]
#[patch("/tasks/{id}")]
#[tracing::instrument(skip_all)]
pub async fn update(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<TaskPath>,
    req: HttpRequest,
    body: Json<Value>,
) -> Result<HttpResponse, ApiError> {
    let if_match = shared::if_match(req.headers(), path.id)?;
    let changes =
        TaskForm::parse(body.into_inner()).and_then(TaskForm::into_changes).map_err(ApiError::invalid)?;
    let outcome = state.actors.execute(caller.0, Command::Update { id: path.id, changes, if_match }).await?;
    Ok(shared::outcome_response(outcome))
}

/// Replaces the task: left-out fields take their defaults.
#[utoipa::path(
    context_path = "/api/v1", operation_id = "replace_task", tag = "tasks", security(("bearer" = [])), request_body = TaskInput,
    params(("id" = Uuid, Path), ("If-Match" = Option<String>, Header)),
    responses((status = 200, body = Task), (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 412, body = Problem, content_type = "application/problem+json"), (status = 422, body = Problem, content_type = "application/problem+json"))
)]
#[put("/tasks/{id}")]
#[tracing::instrument(skip_all)]
pub async fn replace(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<TaskPath>,
    req: HttpRequest,
    body: Json<Value>,
) -> Result<HttpResponse, ApiError> {
    let if_match = shared::if_match(req.headers(), path.id)?;
    let task =
        TaskForm::parse(body.into_inner()).and_then(TaskForm::into_fields).map_err(ApiError::invalid)?;
    let outcome = state.actors.execute(caller.0, Command::Replace { id: path.id, task, if_match }).await?;
    Ok(shared::outcome_response(outcome))
}

/// Moves the task to the trash; it then answers 404 until restored.
#[utoipa::path(
    context_path = "/api/v1", operation_id = "delete_task", tag = "tasks", security(("bearer" = [])),
    params(("id" = Uuid, Path), ("If-Match" = Option<String>, Header)),
    responses((status = 204, description = "Moved to the trash"), (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 412, body = Problem, content_type = "application/problem+json"))
)]
#[delete("/tasks/{id}")]
#[tracing::instrument(skip_all)]
pub async fn remove(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<TaskPath>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let if_match = shared::if_match(req.headers(), path.id)?;
    let outcome = state.actors.execute(caller.0, Command::Delete { id: path.id, if_match }).await?;
    Ok(shared::outcome_response(outcome))
}

/// Takes a task out of the trash.
#[utoipa::path(
    context_path = "/api/v1", operation_id = "restore_task", tag = "tasks", security(("bearer" = [])),
    params(("id" = Uuid, Path), ("If-Match" = Option<String>, Header), ("Idempotency-Key" = Option<String>, Header)),
    responses((status = 200, body = Task), (status = 404, description = "Not in the trash", body = Problem, content_type = "application/problem+json"))
)]
#[post("/tasks/{id}/restore")]
#[tracing::instrument(skip_all)]
pub async fn restore(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<TaskPath>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let if_match = shared::if_match(req.headers(), path.id)?;
    let idempotency = shared::idempotency(req.headers(), &format!("restore:{}", path.id), &Value::Null)?;
    let outcome =
        state.actors.execute(caller.0, Command::Restore { id: path.id, if_match, idempotency }).await?;
    Ok(shared::outcome_response(outcome))
}

/// Flips `completed`.
#[utoipa::path(
    context_path = "/api/v1", operation_id = "toggle_task", tag = "tasks", security(("bearer" = [])),
    params(("id" = Uuid, Path), ("If-Match" = Option<String>, Header), ("Idempotency-Key" = Option<String>, Header)),
    responses((status = 200, body = Task), (status = 404, body = Problem, content_type = "application/problem+json"))
)]
#[post("/tasks/{id}/toggle")]
#[tracing::instrument(skip_all)]
pub async fn toggle(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<TaskPath>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let if_match = shared::if_match(req.headers(), path.id)?;
    let idempotency = shared::idempotency(req.headers(), &format!("toggle:{}", path.id), &Value::Null)?;
    let outcome =
        state.actors.execute(caller.0, Command::Toggle { id: path.id, if_match, idempotency }).await?;
    Ok(shared::outcome_response(outcome))
}

/// Sets `completed` explicitly; repeating it changes nothing more.
#[utoipa::path(
    context_path = "/api/v1", operation_id = "complete_task", tag = "tasks", security(("bearer" = [])), request_body = CompleteRequest,
    params(("id" = Uuid, Path), ("If-Match" = Option<String>, Header)),
    responses((status = 200, body = Task), (status = 404, body = Problem, content_type = "application/problem+json"))
)]
#[patch("/tasks/{id}/complete")]
#[tracing::instrument(skip_all)]
pub async fn complete(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<TaskPath>,
    req: HttpRequest,
    body: Json<CompleteRequest>,
) -> Result<HttpResponse, ApiError> {
    let if_match = shared::if_match(req.headers(), path.id)?;
    let command = Command::SetCompleted { id: path.id, completed: body.completed, if_match };
    Ok(shared::outcome_response(state.actors.execute(caller.0, command).await?))
}
