//! What the resource modules share: who is asking, conditional requests, idempotency keys, how
//! write outcomes become responses, and the account as clients see it. Resource modules import
//! this module and never one another, so each can change without touching the others.

use std::pin::Pin;

use actix_web::http::header::{self, HeaderMap};
use actix_web::{FromRequest, HttpRequest, HttpResponse, dev::Payload};
use chrono::{DateTime, Utc};
use serde::Serialize;
use sha2::{Digest, Sha256};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::commands::{Idempotency, IfMatch, Outcome};
use crate::db::tasks::Task;
use crate::db::users::User;
use crate::domain::Invalid;
use crate::web::auth::AuthUser;
use crate::web::problem::ApiError;

/// The authenticated caller of a resource route. Under `/users/{user_id}/…` the path must name the
/// caller (by id, or as `me`): anyone else's id is a 403, whether or not that user exists.
pub struct Caller(pub Uuid);

impl FromRequest for Caller {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let named = req.match_info().get("user_id").map(str::to_owned);
        let auth = AuthUser::from_request(req, payload);
        Box::pin(async move {
            let user = auth.await?;
            names_caller(named.as_deref(), user.id)?;
            Ok(Self(user.id))
        })
    }
}

/// Under `/users/{user_id}/…`, the `user_id` the path names must be the caller's (or `me`). For
/// routes that need the whole [`AuthUser`] rather than a [`Caller`].
pub fn check_alias(req: &HttpRequest, user: Uuid) -> Result<(), ApiError> {
    names_caller(req.match_info().get("user_id"), user)
}

fn names_caller(named: Option<&str>, user: Uuid) -> Result<(), ApiError> {
    match named {
        Some(named) if named != "me" && named.parse::<Uuid>().ok() != Some(user) => Err(ApiError::Forbidden),
        _ => Ok(()),
    }
}

/// Parses `If-Match` against this task id. `*` and no header are unconditional; tags for other
/// tasks and weak tags never match, as RFC 9110 requires for `If-Match`.
pub fn if_match(headers: &HeaderMap, id: Uuid) -> Result<IfMatch, ApiError> {
    let Some(value) = header_text(headers, &header::IF_MATCH)? else {
        return Ok(IfMatch(None));
    };
    Ok(if_match_value(value, id))
}

/// An `If-Match` value (one or more ETags, or `*`) for this id.
pub fn if_match_value(value: &str, id: Uuid) -> IfMatch {
    if value.trim() == "*" {
        return IfMatch(None);
    }
    IfMatch(Some(value.split(',').filter_map(|tag| version_for(tag.trim(), id)).collect()))
}

/// The 304 a read answers when `If-None-Match` matches the resource's current `etag` (weak
/// comparison, as RFC 9110 asks for GET), or `None` when the full answer is due.
pub fn not_modified(headers: &HeaderMap, etag: &str) -> Result<Option<HttpResponse>, ApiError> {
    let Some(value) = header_text(headers, &header::IF_NONE_MATCH)? else {
        return Ok(None);
    };
    let matches =
        value.split(',').map(str::trim).any(|tag| tag == "*" || tag.trim_start_matches("W/") == etag);
    Ok(matches.then(|| HttpResponse::NotModified().insert_header((header::ETAG, etag.to_owned())).finish()))
}

fn version_for(tag: &str, id: Uuid) -> Option<i64> {
    let inner = tag.strip_prefix('"')?.strip_suffix('"')?;
    let (tag_id, version) = inner.rsplit_once('-')?;
    (tag_id == id.simple().to_string()).then(|| version.parse().ok()).flatten()
}

/// Reads `Idempotency-Key` and fingerprints the request it came with.
pub fn idempotency(
    headers: &HeaderMap,
    operation: &str,
    body: &serde_json::Value,
) -> Result<Option<Idempotency>, ApiError> {
    let Some(key) = header_text(headers, &header::HeaderName::from_static("idempotency-key"))? else {
        return Ok(None);
    };
    let key = key.trim();
    if key.is_empty() || key.len() > 255 {
        return Err(ApiError::BadRequest("Idempotency-Key must be 1–255 visible ASCII characters.".into()));
    }
    // serde_json sorts object keys, so the same body in any key order has one fingerprint. The
    // precondition is part of the request: a repeat under another If-Match is another request.
    let if_match = headers.get(header::IF_MATCH).map_or(&b""[..], |v| v.as_bytes());
    let digest = Sha256::new()
        .chain_update(operation.as_bytes())
        .chain_update(b"\n")
        .chain_update(body.to_string())
        .chain_update(b"\n")
        .chain_update(if_match);
    Ok(Some(Idempotency { key: key.to_owned(), fingerprint: format!("{:x}", digest.finalize()) }))
}

fn header_text<'a>(headers: &'a HeaderMap, name: &header::HeaderName) -> Result<Option<&'a str>, ApiError> {
    headers
        .get(name)
        .map(|v| {
            v.to_str().map_err(|_| ApiError::BadRequest(format!("The {name} header is not visible ASCII.")))
        })
        .transpose()
}

/// A task with its validator.
pub fn task_response(status: u16, task: &Task) -> HttpResponse {
    resource_response(status, task, task.id, &task.etag(), "tasks")
}

/// The answer to a task write (or a batch of them).
pub fn outcome_response(outcome: Outcome) -> HttpResponse {
    respond(outcome, "tasks")
}

/// The answer to a project write.
pub fn project_outcome_response(outcome: Outcome) -> HttpResponse {
    respond(outcome, "projects")
}

fn respond(outcome: Outcome, collection: &str) -> HttpResponse {
    match outcome {
        Outcome::Created(task) => task_response(201, &task),
        Outcome::Updated(task) => task_response(200, &task),
        Outcome::Trashed(_) | Outcome::Deleted => HttpResponse::NoContent().finish(),
        Outcome::ProjectCreated(project) => {
            resource_response(201, &project, project.id, &project.etag(), collection)
        }
        Outcome::ProjectUpdated(project) => {
            resource_response(200, &project, project.id, &project.etag(), collection)
        }
        Outcome::Batch(results) => HttpResponse::Ok().json(serde_json::json!({ "results": results })),
        Outcome::Replayed { status, body } => replay(status, body, collection),
    }
}

fn resource_response(
    status: u16,
    body: &impl serde::Serialize,
    id: Uuid,
    etag: &str,
    collection: &str,
) -> HttpResponse {
    let mut response = HttpResponse::build(status_code(status));
    response.insert_header((header::ETAG, etag.to_owned()));
    if status == 201 {
        response.insert_header((header::LOCATION, format!("/api/v1/{collection}/{id}")));
    }
    response.json(body)
}

/// The first response to an idempotent request, with the headers it had.
fn replay(status: u16, body: serde_json::Value, collection: &str) -> HttpResponse {
    let mut response = HttpResponse::build(status_code(status));
    response.insert_header(("idempotent-replayed", "true"));
    if let (Some(id), Some(version)) =
        (body["id"].as_str().and_then(|s| s.parse::<Uuid>().ok()), body["version"].as_i64())
    {
        response.insert_header((header::ETAG, format!("\"{}-{version}\"", id.simple())));
        if status == 201 {
            response.insert_header((header::LOCATION, format!("/api/v1/{collection}/{id}")));
        }
    }
    response.json(body)
}

fn status_code(status: u16) -> actix_web::http::StatusCode {
    actix_web::http::StatusCode::from_u16(status).unwrap_or(actix_web::http::StatusCode::OK)
}

/// Keeps a parsed value, or records why it failed so every bad field is reported at once.
pub fn keep<T>(errors: &mut Vec<Invalid>, result: Result<T, Invalid>) -> Option<T> {
    result.map_err(|e| errors.push(e)).ok()
}

/// An account as clients see it, from `/auth` and `/users/me` alike. There is no password hash
/// here, nor anywhere else.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserView {
    id: Uuid,
    email: Option<String>,
    name: Option<String>,
    timezone: String,
    email_reminders: bool,
    /// Whether `email` was confirmed through the link emailed to it. Reminders go only to a
    /// verified address.
    email_verified: bool,
    /// An address asked for through `updateCurrentUser`, waiting for its verification; it
    /// replaces `email` once its link is followed.
    pending_email: Option<String>,
    /// The local time (`HH:MM`, in `timezone`) of the daily agenda email, or `null` when it is
    /// off (the default).
    #[schema(pattern = "^([01][0-9]|2[0-3]):[0-5][0-9]$", example = "07:30")]
    agenda_time: Option<String>,
    created_at: DateTime<Utc>,
}

impl From<User> for UserView {
    fn from(u: User) -> Self {
        Self {
            id: u.id,
            email: u.email,
            name: u.name,
            timezone: u.timezone,
            email_reminders: u.email_reminders,
            email_verified: u.email_verified,
            pending_email: u.pending_email,
            agenda_time: u.agenda_time.map(|t| crate::domain::AgendaTime::from_time(t).to_hhmm()),
            created_at: u.created_at,
        }
    }
}

/// The `{id}` of a task route (`/tasks/{id}` and the routes under it).
#[derive(serde::Deserialize)]
pub(crate) struct TaskPath {
    pub(crate) id: Uuid,
}
