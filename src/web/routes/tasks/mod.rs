//! The task resource, served both at `/tasks…` and at `/users/{user_id}/tasks…`.
//! Reads go straight to the pool; every write goes to the caller's actor.

pub mod bulk;
pub mod cursor;
mod form;
pub mod list;
pub mod reminders;

use actix_web::{HttpRequest, HttpResponse, delete, get, patch, post, put, web};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use form::TaskForm;
pub use form::{FIELDS, TaskInput, TaskPatch};

use crate::commands::Command;
use crate::db::tasks::{self, Task};
use crate::web::json::Json;
use crate::web::problem::{ApiError, Problem};
use crate::web::reads::ReadPool;
use crate::web::routes::shared::{self, Caller, TaskPath};
use crate::web::state::AppState;

/// Literal paths come before `{id}`, which would otherwise swallow them.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(list::list)
        .service(create)
        .service(bulk::bulk)
        .service(list::trash)
        .service(subtasks)
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

/// Create a task
///
/// Creates a task; left-out fields take their defaults. A task with a `recurrence_rule` is one
/// occurrence of a series: completing it brings the next. With `Idempotency-Key`, a retry of the
/// same request replays the first answer instead of creating a second task. An account holds a
/// bounded number of tasks (`409 task_limit_reached`).
#[utoipa::path(
    context_path = "/api/v1", operation_id = "createTask", tag = "tasks", security(("bearer" = []), ("apiToken" = ["tasks:write"])), request_body = TaskInput,
    params(("Idempotency-Key" = Option<String>, Header, description = "Replays the first response for 24 hours")),
    responses(
        (status = 201, description = "Created, or the first answer replayed", body = Task, headers(("Location" = String), ("ETag" = String))),
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

/// Get one task
///
/// One task, with its `ETag`. Send the ETag back in `If-None-Match` to get `304` while it is
/// unchanged. `HEAD` answers the same without the body.
#[utoipa::path(
    context_path = "/api/v1", operation_id = "getTask", tag = "tasks", security(("bearer" = []), ("apiToken" = ["tasks:read"])),
    params(("id" = Uuid, Path), ("If-None-Match" = Option<String>, Header)),
    responses((status = 200, description = "The task", body = Task, headers(("ETag" = String))), (status = 304, description = "Not modified since the ETag in `If-None-Match`", headers(("ETag" = String))),
        (status = 404, body = Problem, content_type = "application/problem+json"))
)]
#[get("/tasks/{id}")]
#[tracing::instrument(skip_all)]
pub async fn get_task(
    caller: Caller,
    path: web::Path<TaskPath>,
    req: HttpRequest,
    reads: ReadPool,
) -> Result<HttpResponse, ApiError> {
    let task = tasks::find_live(&reads.0, caller.0, path.id).await.map_err(ApiError::from_db)?;
    let task = task.ok_or(ApiError::NotFound)?;
    match shared::not_modified(req.headers(), &task.etag())? {
        Some(not_modified) => Ok(not_modified),
        None => Ok(shared::task_response(200, &task)),
    }
}

/// A task's subtasks.
#[derive(Serialize, ToSchema)]
pub struct SubtaskList {
    /// The live direct subtasks, in their manual order (`position`, then creation); at most 200.
    items: Vec<Task>,
}

/// List a task's subtasks
///
/// The task's live (not trashed) direct subtasks, in `position` order and then in creation
/// order. A task has at most 200, so they come in one answer. `GET /tasks?parent_id=` filters,
/// sorts and pages them like any list.
#[utoipa::path(
    context_path = "/api/v1", operation_id = "listSubtasks", tag = "tasks", security(("bearer" = []), ("apiToken" = ["tasks:read"])),
    params(("id" = Uuid, Path)),
    responses((status = 200, description = "The subtasks", body = SubtaskList),
        (status = 404, body = Problem, content_type = "application/problem+json"))
)]
#[get("/tasks/{id}/subtasks")]
#[tracing::instrument(skip_all)]
pub async fn subtasks(
    caller: Caller,
    path: web::Path<TaskPath>,
    reads: ReadPool,
) -> Result<HttpResponse, ApiError> {
    let parent = tasks::find_live(&reads.0, caller.0, path.id).await.map_err(ApiError::from_db)?;
    let parent = parent.ok_or(ApiError::NotFound)?;
    let items = tasks::tree::children(&reads.0, caller.0, parent.id).await.map_err(ApiError::from_db)?;
    Ok(HttpResponse::Ok().json(SubtaskList { items }))
}

/// Update a task
///
/// A merge patch: the fields sent change, left-out fields stay, and `null` clears a field. With
/// `If-Match`, the write happens only over that version (`412` otherwise).
#[utoipa::path(
    context_path = "/api/v1", operation_id = "updateTask", tag = "tasks", security(("bearer" = []), ("apiToken" = ["tasks:write"])), request_body = TaskPatch,
    params(("id" = Uuid, Path), ("If-Match" = Option<String>, Header)),
    responses((status = 200, description = "The task as it is now", body = Task, headers(("ETag" = String))), (status = 404, body = Problem, content_type = "application/problem+json"),
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

/// Replace a task
///
/// Replaces every field the client can write: left-out fields take their defaults. With
/// `If-Match`, the write happens only over that version (`412` otherwise).
#[utoipa::path(
    context_path = "/api/v1", operation_id = "replaceTask", tag = "tasks", security(("bearer" = []), ("apiToken" = ["tasks:write"])), request_body = TaskInput,
    params(("id" = Uuid, Path), ("If-Match" = Option<String>, Header)),
    responses((status = 200, description = "The task as it is now", body = Task, headers(("ETag" = String))), (status = 404, body = Problem, content_type = "application/problem+json"),
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

/// Move a task to the trash
///
/// Moves the task to the trash: it then answers 404 here until `restoreTask` brings it back, and
/// is purged after the retention period. Its pending reminder is cancelled.
#[utoipa::path(
    context_path = "/api/v1", operation_id = "deleteTask", tag = "tasks", security(("bearer" = []), ("apiToken" = ["tasks:write"])),
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

/// Restore a task from the trash
///
/// Takes a task out of the trash. If its project was deleted meanwhile, it lands in the inbox.
#[utoipa::path(
    context_path = "/api/v1", operation_id = "restoreTask", tag = "tasks", security(("bearer" = []), ("apiToken" = ["tasks:write"])),
    params(("id" = Uuid, Path), ("If-Match" = Option<String>, Header), ("Idempotency-Key" = Option<String>, Header)),
    responses((status = 200, description = "The task as it is now", body = Task, headers(("ETag" = String))), (status = 404, description = "Not in the trash", body = Problem, content_type = "application/problem+json"))
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

/// Toggle a task's completion
///
/// Flips `completed`. Completing a recurring task brings its next occurrence; prefer
/// `completeTask` when a retry must not undo the first call.
#[utoipa::path(
    context_path = "/api/v1", operation_id = "toggleTask", tag = "tasks", security(("bearer" = []), ("apiToken" = ["tasks:write"])),
    params(("id" = Uuid, Path), ("If-Match" = Option<String>, Header), ("Idempotency-Key" = Option<String>, Header)),
    responses((status = 200, description = "The task as it is now", body = Task, headers(("ETag" = String))), (status = 404, body = Problem, content_type = "application/problem+json"))
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

/// Complete or reopen a task
///
/// Sets `completed` to the value sent; repeating the call changes nothing more. Completing a
/// recurring task brings its next occurrence.
#[utoipa::path(
    context_path = "/api/v1", operation_id = "completeTask", tag = "tasks", security(("bearer" = []), ("apiToken" = ["tasks:write"])), request_body = CompleteRequest,
    params(("id" = Uuid, Path), ("If-Match" = Option<String>, Header)),
    responses((status = 200, description = "The task as it is now", body = Task, headers(("ETag" = String))), (status = 404, body = Problem, content_type = "application/problem+json"))
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
    let command = Command::SetCompleted { id: path.id, completed: body.completed, if_match, link: None };
    Ok(shared::outcome_response(state.actors.execute(caller.0, command).await?))
}
