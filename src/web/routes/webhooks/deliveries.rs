//! An endpoint's delivery log, and the sends its owner asks for: a retry of one message, and a
//! `ping`. Both answer `202`: the worker sends, in the endpoint's order.

use actix_web::{HttpResponse, get, post, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::{WebhookPath, owned};
use crate::db::webhooks::messages::{self, Message};
use crate::web::auth::AuthUser;
use crate::web::problem::{ApiError, Problem, ProblemCode};
use crate::web::query::{Params, integer_in};
use crate::web::state::AppState;

const DEFAULT_LIMIT: i64 = 50;
const MAX_LIMIT: i64 = 100;

#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct DeliveryParams {
    /// Messages per page.
    #[param(minimum = 1, maximum = 100, default = 50)]
    limit: Option<i64>,
    /// The `next_cursor` of the previous page.
    #[param(min_length = 1)]
    cursor: Option<String>,
}

/// One message to the endpoint and its latest attempt.
#[derive(Serialize, ToSchema)]
pub struct WebhookDelivery {
    id: Uuid,
    /// The `webhook-id` header it is sent with, the same on every attempt.
    webhook_id: String,
    /// `ping`, or one of the subscribable events.
    event_type: String,
    /// `pending` (waiting, or to be tried again at `next_attempt_at`), `succeeded`, or `failed`
    /// (given up after the last attempt, or refused with 410).
    #[schema(pattern = "^(pending|succeeded|failed)$")]
    status: String,
    /// Attempts made so far.
    attempts: i32,
    /// The latest attempt's HTTP status; `null` when no answer came.
    status_code: Option<i32>,
    /// How long the latest attempt took, in milliseconds.
    duration_ms: Option<i32>,
    /// The first 1 KiB of the latest answer's body.
    response_body: Option<String>,
    /// Why the latest attempt got no answer, or why it was not made.
    error: Option<String>,
    /// When it is tried (again); `null` unless pending.
    next_attempt_at: Option<DateTime<Utc>>,
    last_attempt_at: Option<DateTime<Utc>>,
    /// When the change it reports happened.
    created_at: DateTime<Utc>,
}

impl From<Message> for WebhookDelivery {
    fn from(m: Message) -> Self {
        Self {
            webhook_id: m.webhook_id(),
            id: m.id,
            event_type: m.event_type,
            next_attempt_at: (m.status == "pending").then_some(m.next_attempt_at),
            status: m.status,
            attempts: m.attempts,
            status_code: m.status_code,
            duration_ms: m.duration_ms,
            response_body: m.response_body,
            error: m.error,
            last_attempt_at: m.last_attempt_at,
            created_at: m.created_at,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct WebhookDeliveryPage {
    /// Newest first.
    items: Vec<WebhookDelivery>,
    limit: i64,
    /// Pass as `cursor` for the next (older) page; `null` on the last page.
    next_cursor: Option<String>,
}

#[derive(Deserialize)]
pub struct MessagePath {
    id: Uuid,
    message_id: Uuid,
}

/// List a webhook endpoint's deliveries
///
/// Every message to the endpoint, newest first, kept 30 days: its event, `webhook-id`, status,
/// attempts, and the latest attempt's status code, duration and first 1 KiB of response. Page
/// with `cursor`.
#[utoipa::path(
    context_path = "/api/v1", operation_id = "listWebhookDeliveries", tag = "webhooks", security(("bearer" = []), ("apiToken" = ["webhooks"])),
    params(("id" = Uuid, Path), DeliveryParams),
    responses((status = 200, body = WebhookDeliveryPage), (status = 404, body = Problem, content_type = "application/problem+json"))
)]
#[get("/webhooks/{id}/deliveries")]
#[tracing::instrument(skip_all)]
pub async fn list(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<WebhookPath>,
    query: web::Query<Vec<(String, String)>>,
) -> Result<HttpResponse, ApiError> {
    let params = Params::new(&query, &["limit", "cursor"], &[])?;
    let limit = integer_in(&params, "limit", 1, MAX_LIMIT)?.unwrap_or(DEFAULT_LIMIT);
    let before = params
        .one("cursor")
        .map(|raw| {
            raw.parse::<i64>()
                .ok()
                .filter(|seq| *seq > 0)
                .ok_or_else(|| ApiError::BadRequest("`cursor` is not one this API gave out.".into()))
        })
        .transpose()?;
    let endpoint = owned(&state, user.id, path.id).await?;
    let mut rows = messages::page(&state.pool, endpoint.user_id, endpoint.id, before, limit + 1)
        .await
        .map_err(ApiError::from_db)?;
    let more = rows.len() as i64 > limit;
    rows.truncate(limit as usize);
    let next_cursor = more.then(|| rows.last().map(|m| m.seq.to_string())).flatten();
    let items = rows.into_iter().map(Into::into).collect();
    Ok(HttpResponse::Ok().json(WebhookDeliveryPage { items, limit, next_cursor }))
}

/// Send a webhook delivery again
///
/// Makes one message due again now, whatever became of it, and answers at once; the worker
/// sends it before the endpoint's other waiting messages. The log shows the outcome.
#[utoipa::path(
    context_path = "/api/v1", operation_id = "retryWebhookDelivery", tag = "webhooks", security(("bearer" = []), ("apiToken" = ["webhooks"])),
    params(("id" = Uuid, Path), ("message_id" = Uuid, Path)),
    responses((status = 202, description = "Queued to be sent again", body = WebhookDelivery), (status = 404, body = Problem, content_type = "application/problem+json"))
)]
#[post("/webhooks/{id}/deliveries/{message_id}/retry")]
#[tracing::instrument(skip_all)]
pub async fn retry(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<MessagePath>,
) -> Result<HttpResponse, ApiError> {
    let message =
        messages::retry(&state.pool, user.id, path.id, path.message_id).await.map_err(ApiError::from_db)?;
    Ok(HttpResponse::Accepted().json(WebhookDelivery::from(message.ok_or(ApiError::NotFound)?)))
}

/// Send a test ping to a webhook endpoint
///
/// Queues a `ping` message to the endpoint, whatever events it subscribes to, after the messages
/// already waiting for it. A disabled endpoint gets `409 webhook_disabled`: enable it first.
#[utoipa::path(
    context_path = "/api/v1", operation_id = "testWebhook", tag = "webhooks", security(("bearer" = []), ("apiToken" = ["webhooks"])), params(("id" = Uuid, Path)),
    responses(
        (status = 202, description = "The ping, queued", body = WebhookDelivery),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The endpoint is disabled (`webhook_disabled`)", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/webhooks/{id}/test")]
#[tracing::instrument(skip_all)]
pub async fn test(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<WebhookPath>,
) -> Result<HttpResponse, ApiError> {
    let endpoint = owned(&state, user.id, path.id).await?;
    match messages::ping(&state.pool, user.id, endpoint.id).await.map_err(ApiError::from_db)? {
        Some(message) => Ok(HttpResponse::Accepted().json(WebhookDelivery::from(message))),
        None => Err(ApiError::Conflict {
            code: ProblemCode::WebhookDisabled,
            detail: "The endpoint is disabled; enable it with PATCH {\"enabled\": true} first.".into(),
        }),
    }
}
