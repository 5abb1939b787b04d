//! A task's reminder delivery history.

use actix_web::{HttpResponse, get, web};
use serde::Serialize;
use utoipa::ToSchema;

use crate::db::reminders::{self, Delivery};
use crate::db::tasks;
use crate::web::problem::{ApiError, Problem};
use crate::web::routes::shared::Caller;
use crate::web::routes::shared::TaskPath;
use crate::web::state::AppState;

#[derive(Serialize, ToSchema)]
pub struct DeliveryHistory {
    /// One entry per reminder time, newest first.
    items: Vec<Delivery>,
}

/// List a task's reminder deliveries
///
/// What became of each of the task's reminders, newest first: `sent`, `failed` (with the error),
/// `skipped` (with why), or `pending` (with the attempts made so far).
#[utoipa::path(
    context_path = "/api/v1", operation_id = "listTaskReminders", tag = "tasks", security(("bearer" = []), ("apiToken" = ["tasks:read"])), params(("id" = uuid::Uuid, Path)),
    responses((status = 200, body = DeliveryHistory), (status = 404, body = Problem, content_type = "application/problem+json"))
)]
#[get("/tasks/{id}/reminders")]
#[tracing::instrument(skip_all)]
pub async fn history(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<TaskPath>,
) -> Result<HttpResponse, ApiError> {
    // The task must be the caller's and live, so another user's task is a 404 like everywhere.
    tasks::find_live(&state.pool, caller.0, path.id)
        .await
        .map_err(ApiError::from_db)?
        .ok_or(ApiError::NotFound)?;
    let items = reminders::history(&state.pool, caller.0, path.id).await.map_err(ApiError::from_db)?;
    Ok(HttpResponse::Ok().json(DeliveryHistory { items }))
}
