//! Webhook endpoints: `POST|GET /webhooks`, `GET|PATCH|DELETE /webhooks/{id}`, and
//! `POST /webhooks/{id}/rotate`. The secret is shown twice only: in the answers to the create and
//! to a rotation. Endpoints are account settings, not tasks, so they are written straight to the
//! database; the limit of 10 holds there (`webhook_endpoints_limit`).

mod body;
pub mod deliveries;

use actix_web::http::header;
use actix_web::{HttpResponse, delete, get, patch, post, web};
use serde::Deserialize;
use uuid::Uuid;

pub use body::{
    WebhookEndpoint, WebhookEventName, WebhookInput, WebhookList, WebhookPatch, WebhookWithSecret,
};

use crate::db::webhooks::{self as db, Endpoint, EndpointFields, WriteError};
use crate::domain::{Invalid, Patch};
use crate::web::auth::AuthUser;
use crate::web::json::Json;
use crate::web::problem::{ApiError, Problem, ProblemCode};
use crate::web::routes::shared::keep;
use crate::web::state::AppState;
use crate::webhooks::secret::SigningKey;
use crate::webhooks::target::TargetPolicy;
use crate::webhooks::{MAX_ENDPOINTS, parse_description, parse_events};

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(list)
        .service(create)
        .service(get_webhook)
        .service(update)
        .service(remove)
        .service(rotate)
        .service(deliveries::list)
        .service(deliveries::retry)
        .service(deliveries::test);
}

#[derive(Deserialize)]
pub struct WebhookPath {
    id: Uuid,
}

fn url_field(state: &AppState, errors: &mut Vec<Invalid>, raw: &str) -> Option<String> {
    let checked =
        TargetPolicy::new(&state.settings).check(raw.trim()).map_err(|why| Invalid::new("url", why));
    keep(errors, checked).map(|url| url.to_string())
}

fn events_field(errors: &mut Vec<Invalid>, raw: &[String]) -> Option<Vec<String>> {
    keep(errors, parse_events(raw))
}

fn write_error(err: WriteError) -> ApiError {
    match err {
        WriteError::Limit => ApiError::Conflict {
            code: ProblemCode::WebhookLimitReached,
            detail: format!("An account holds at most {MAX_ENDPOINTS} webhook endpoints; delete one first."),
        },
        WriteError::NotFound => ApiError::NotFound,
        WriteError::Database(err) => ApiError::from_db(err),
    }
}

fn created(endpoint: Endpoint, key: &SigningKey, status: actix_web::http::StatusCode) -> HttpResponse {
    let location = format!("/api/v1/webhooks/{}", endpoint.id);
    let body = WebhookWithSecret { endpoint: endpoint.into(), secret: key.to_secret() };
    let mut response = HttpResponse::build(status);
    if status == actix_web::http::StatusCode::CREATED {
        response.insert_header((header::LOCATION, location));
    }
    response.insert_header((header::CACHE_CONTROL, "no-store")).json(body)
}

/// Register a webhook endpoint
///
/// Registers an endpoint that receives the chosen events as signed POSTs (Standard Webhooks).
/// The answer carries the signing `secret`, shown only this once. An account holds at most 10
/// endpoints (`409 webhook_limit_reached`).
#[utoipa::path(
    context_path = "/api/v1", operation_id = "createWebhook", tag = "webhooks", security(("bearer" = []), ("apiToken" = ["webhooks"])), request_body = WebhookInput,
    responses(
        (status = 201, description = "Registered; the secret is shown only here", body = WebhookWithSecret, headers(("Location" = String))),
        (status = 409, description = "The account holds 10 endpoints (`webhook_limit_reached`)", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/webhooks")]
#[tracing::instrument(skip_all)]
pub async fn create(
    state: web::Data<AppState>,
    user: AuthUser,
    body: Json<WebhookInput>,
) -> Result<HttpResponse, ApiError> {
    let input = body.into_inner();
    let mut errors = Vec::new();
    let url = url_field(&state, &mut errors, &input.url);
    let events = events_field(&mut errors, &input.events);
    let description = keep(&mut errors, parse_description(input.description.as_deref().unwrap_or("")));
    let (Some(url), Some(events), Some(description)) = (url, events, description) else {
        return Err(ApiError::invalid(errors));
    };
    let fields = EndpointFields { url, description, events, enabled: input.enabled.unwrap_or(true) };
    let key = SigningKey::generate();
    let endpoint = db::create(&state.pool, user.id, &fields, &key).await.map_err(write_error)?;
    Ok(created(endpoint, &key, actix_web::http::StatusCode::CREATED))
}

/// List webhook endpoints
///
/// The caller's webhook endpoints, oldest first, without their secrets.
#[utoipa::path(
    context_path = "/api/v1", operation_id = "listWebhooks", tag = "webhooks", security(("bearer" = []), ("apiToken" = ["webhooks"])),
    responses((status = 200, body = WebhookList))
)]
#[get("/webhooks")]
#[tracing::instrument(skip_all)]
pub async fn list(state: web::Data<AppState>, user: AuthUser) -> Result<HttpResponse, ApiError> {
    let items = db::list(&state.pool, user.id).await.map_err(ApiError::from_db)?;
    Ok(HttpResponse::Ok().json(WebhookList { items: items.into_iter().map(Into::into).collect() }))
}

pub(super) async fn owned(state: &AppState, user: Uuid, id: Uuid) -> Result<Endpoint, ApiError> {
    db::find(&state.pool, user, id).await.map_err(ApiError::from_db)?.ok_or(ApiError::NotFound)
}

/// Get one webhook endpoint
///
/// One of the caller's endpoints, without its secret. `disabled_reason` says why the service
/// turned it off, if it did.
#[utoipa::path(
    context_path = "/api/v1", operation_id = "getWebhook", tag = "webhooks", security(("bearer" = []), ("apiToken" = ["webhooks"])), params(("id" = Uuid, Path)),
    responses((status = 200, body = WebhookEndpoint), (status = 404, body = Problem, content_type = "application/problem+json"))
)]
#[get("/webhooks/{id}")]
#[tracing::instrument(skip_all)]
pub async fn get_webhook(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<WebhookPath>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(WebhookEndpoint::from(owned(&state, user.id, path.id).await?)))
}

/// Update a webhook endpoint
///
/// Changes the URL, events, description or `enabled`. Left-out fields stay. Setting `enabled`
/// to `true` turns a disabled endpoint back on, and the messages that waited are sent in order.
#[utoipa::path(
    context_path = "/api/v1", operation_id = "updateWebhook", tag = "webhooks", security(("bearer" = []), ("apiToken" = ["webhooks"])), request_body = WebhookPatch,
    params(("id" = Uuid, Path)),
    responses((status = 200, description = "The endpoint as it is now", body = WebhookEndpoint), (status = 404, body = Problem, content_type = "application/problem+json"))
)]
#[patch("/webhooks/{id}")]
#[tracing::instrument(skip_all)]
pub async fn update(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<WebhookPath>,
    body: Json<WebhookPatch>,
) -> Result<HttpResponse, ApiError> {
    let patch = body.into_inner();
    let current = owned(&state, user.id, path.id).await?;
    let mut errors = Vec::new();
    let not_null =
        |errors: &mut Vec<Invalid>, field: &'static str| errors.push(Invalid::new(field, "cannot be null"));
    let url = match &patch.url {
        Patch::Value(raw) => url_field(&state, &mut errors, raw),
        Patch::Null => {
            not_null(&mut errors, "url");
            None
        }
        Patch::Absent => Some(current.url.clone()),
    };
    let events = match &patch.events {
        Patch::Value(raw) => events_field(&mut errors, raw),
        Patch::Null => {
            not_null(&mut errors, "events");
            None
        }
        Patch::Absent => Some(current.events.clone()),
    };
    let description = match &patch.description {
        Patch::Value(raw) => keep(&mut errors, parse_description(raw)),
        Patch::Null => Some(String::new()),
        Patch::Absent => Some(current.description.clone()),
    };
    let enabled = match patch.enabled {
        Patch::Value(enabled) => Some(enabled),
        Patch::Null => {
            not_null(&mut errors, "enabled");
            None
        }
        Patch::Absent => Some(current.enabled),
    };
    let (Some(url), Some(events), Some(description), Some(enabled), true) =
        (url, events, description, enabled, errors.is_empty())
    else {
        return Err(ApiError::invalid(errors));
    };
    let fields = EndpointFields { url, description, events, enabled };
    let endpoint = db::update(&state.pool, user.id, path.id, &fields).await.map_err(write_error)?;
    Ok(HttpResponse::Ok().json(WebhookEndpoint::from(endpoint)))
}

/// Delete a webhook endpoint
///
/// Removes the endpoint with its delivery log; nothing more is sent to it.
#[utoipa::path(
    context_path = "/api/v1", operation_id = "deleteWebhook", tag = "webhooks", security(("bearer" = []), ("apiToken" = ["webhooks"])), params(("id" = Uuid, Path)),
    responses((status = 204, description = "Deleted"), (status = 404, body = Problem, content_type = "application/problem+json"))
)]
#[delete("/webhooks/{id}")]
#[tracing::instrument(skip_all)]
pub async fn remove(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<WebhookPath>,
) -> Result<HttpResponse, ApiError> {
    match db::delete(&state.pool, user.id, path.id).await.map_err(ApiError::from_db)? {
        true => Ok(HttpResponse::NoContent().finish()),
        false => Err(ApiError::NotFound),
    }
}

/// Rotate a webhook endpoint's secret
///
/// Makes a new signing secret and shows it this once. For 24 hours the old secret signs too:
/// each message carries two `v1,` signatures, so receivers can switch without losing any.
#[utoipa::path(
    context_path = "/api/v1", operation_id = "rotateWebhookSecret", tag = "webhooks", security(("bearer" = []), ("apiToken" = ["webhooks"])), params(("id" = Uuid, Path)),
    responses((status = 200, description = "The new secret, shown only here", body = WebhookWithSecret), (status = 404, body = Problem, content_type = "application/problem+json"))
)]
#[post("/webhooks/{id}/rotate")]
#[tracing::instrument(skip_all)]
pub async fn rotate(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<WebhookPath>,
) -> Result<HttpResponse, ApiError> {
    let key = SigningKey::generate();
    let overlap = state.settings.webhooks.rotation_overlap_secs;
    let endpoint =
        db::rotate(&state.pool, user.id, path.id, &key, overlap).await.map_err(ApiError::from_db)?;
    Ok(created(endpoint.ok_or(ApiError::NotFound)?, &key, actix_web::http::StatusCode::OK))
}
