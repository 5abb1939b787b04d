//! Calendar feeds: create (the secret URL is shown once), list, revoke. The feed itself is
//! served by `routes::calendar`, outside `/api/v1`. A feed publishes tasks to whoever holds its
//! URL, so managing feeds takes a login or an API token with the `account` scope.

use actix_web::http::header;
use actix_web::{HttpResponse, delete, get, post, web};
use chrono::{DateTime, Utc};
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::commands::calendar_feeds::{self as command, CreateError, MAX_FEEDS};
use crate::db::calendar_feeds::{self, CalendarFeed, NewFeed};
use crate::domain::{FeedName, Invalid};
use crate::web::auth::{AuthUser, ClientIp};
use crate::web::json::Json;
use crate::web::problem::{ApiError, Problem, ProblemCode};
use crate::web::request_id::RequestContext;
use crate::web::state::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(create_feed).service(list_feeds).service(delete_feed);
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FeedRequest {
    /// The calendar's name in the subscribing app, 1–100 characters. Defaults to the
    /// project's name, or `Tasks` for a feed of every project.
    #[serde(default)]
    #[schema(min_length = 1, max_length = 100)]
    name: Option<String>,
    /// One of the caller's projects, to publish only its tasks; left out or null, the feed
    /// covers every project and the inbox.
    #[serde(default)]
    #[schema(value_type = Option<Uuid>)]
    project_id: Option<String>,
}

/// A new feed, with its secret URL: the only answer that ever carries it.
#[derive(Serialize, ToSchema)]
pub struct CreatedFeed {
    /// The address to subscribe to, `{origin}/calendar/todo_cal_….ics`. Anyone holding it can
    /// read the feed's tasks; it is never shown again. Add `?component=vtodo` for to-dos.
    url: String,
    id: Uuid,
    name: String,
    project_id: Option<Uuid>,
    /// The secret's prefix and last four characters, as `listCalendarFeeds` shows them.
    hint: String,
    created_at: DateTime<Utc>,
}

#[derive(Serialize, ToSchema)]
pub struct FeedList {
    /// The caller's feeds, oldest first.
    items: Vec<CalendarFeed>,
}

#[derive(Deserialize)]
struct FeedPath {
    id: Uuid,
}

/// Create a calendar feed
///
/// Makes a secret address that calendar apps (Google Calendar, Outlook, Apple Calendar) can
/// subscribe to without any other credential: a VEVENT for each open task with a due time, or
/// with `?component=vtodo` a VTODO for each open task. It covers every project or the one
/// `project_id` names; deleting that project deletes the feed. The address is in this answer
/// only: the service stores a digest of its secret. An account holds at most 20 feeds (`409
/// calendar_feed_limit_reached`).
#[utoipa::path(
    context_path = "/api/v1", operation_id = "createCalendarFeed", tag = "calendar",
    security(("bearer" = []), ("apiToken" = ["account"])),
    request_body = FeedRequest,
    responses(
        (status = 201, description = "The feed, with its secret address shown this once", body = CreatedFeed),
        (status = 409, description = "`calendar_feed_limit_reached`: the account has 20 feeds; revoke one first", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`validation_failed`: a bad `name`, or a `project_id` that is not one of the caller's projects", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/calendar-feeds")]
#[tracing::instrument(skip_all)]
pub async fn create_feed(
    state: web::Data<AppState>,
    ip: ClientIp,
    user: AuthUser,
    body: Json<FeedRequest>,
) -> Result<HttpResponse, ApiError> {
    let FeedRequest { name, project_id } = body.into_inner();
    let mut errors = Vec::new();
    let name = match name.as_deref().map(FeedName::parse) {
        Some(Ok(name)) => Some(name),
        Some(Err(invalid)) => {
            errors.push(invalid);
            None
        }
        None => None,
    };
    let project_id = match project_id.as_deref().map(Uuid::parse_str) {
        Some(Ok(id)) => Some(id),
        Some(Err(_)) => {
            errors.push(Invalid::new("project_id", "must be a project id"));
            None
        }
        None => None,
    };
    if !errors.is_empty() {
        return Err(ApiError::invalid(errors));
    }
    // Before the feed exists: without an origin to show, no feed is made.
    let public_url = state.settings.public_url().map_err(ApiError::Internal)?;
    let secret = command::generate();
    let new = NewFeed {
        user_id: user.id,
        name: name.as_ref().map(FeedName::as_str),
        project_id,
        digest: &secret.digest,
        hint: &secret.hint,
    };
    let feed = command::create(&state.pool, new).await.map_err(|err| match err {
        CreateError::LimitReached => ApiError::Conflict {
            code: ProblemCode::CalendarFeedLimitReached,
            detail: format!("An account holds at most {MAX_FEEDS} calendar feeds; revoke one first."),
        },
        CreateError::NoSuchProject => {
            ApiError::invalid(vec![Invalid::new("project_id", "is not one of your projects")])
        }
        CreateError::AccountGone => ApiError::Unauthorized { code: ProblemCode::TokenInvalid },
        CreateError::Database(err) => ApiError::from_db(err),
    })?;
    let request_id = RequestContext::current().request_id;
    tracing::info!(target: "audit", event = "calendar_feed_created", user_id = %user.id, feed_id = %feed.id, ip = %ip.0, %request_id);
    let created = CreatedFeed {
        url: public_url.join(&format!("/calendar/{}.ics", secret.secret.expose_secret())),
        id: feed.id,
        name: feed.name,
        project_id: feed.project_id,
        hint: feed.hint,
        created_at: feed.created_at,
    };
    // The secret must not linger in a cache between here and the client.
    Ok(HttpResponse::Created().insert_header((header::CACHE_CONTROL, "no-store")).json(created))
}

/// List the caller's calendar feeds
///
/// Every feed of the caller, oldest first: its name, the project it covers (null for all),
/// a hint (the secret's prefix and last four characters) and when it was made. Addresses are
/// never listed: a lost one is replaced by revoking the feed and creating another.
#[utoipa::path(
    context_path = "/api/v1", operation_id = "listCalendarFeeds", tag = "calendar",
    security(("bearer" = []), ("apiToken" = ["account"])),
    responses((status = 200, body = FeedList))
)]
#[get("/calendar-feeds")]
#[tracing::instrument(skip_all)]
pub async fn list_feeds(state: web::Data<AppState>, user: AuthUser) -> Result<HttpResponse, ApiError> {
    let items = calendar_feeds::list(&state.pool, user.id).await.map_err(ApiError::from_db)?;
    Ok(HttpResponse::Ok().json(FeedList { items }))
}

/// Revoke a calendar feed
///
/// Deletes the feed: its address answers 404 from then on (calendar apps that cached it may
/// show the old copy until their next refresh). Another user's feed is a 404.
#[utoipa::path(
    context_path = "/api/v1", operation_id = "deleteCalendarFeed", tag = "calendar",
    security(("bearer" = []), ("apiToken" = ["account"])),
    params(("id" = Uuid, Path)),
    responses(
        (status = 204, description = "Revoked"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    )
)]
#[delete("/calendar-feeds/{id}")]
#[tracing::instrument(skip_all)]
pub async fn delete_feed(
    state: web::Data<AppState>,
    ip: ClientIp,
    user: AuthUser,
    path: web::Path<FeedPath>,
) -> Result<HttpResponse, ApiError> {
    if !calendar_feeds::delete(&state.pool, user.id, path.id).await.map_err(ApiError::from_db)? {
        return Err(ApiError::NotFound);
    }
    let request_id = RequestContext::current().request_id;
    tracing::info!(target: "audit", event = "calendar_feed_revoked", user_id = %user.id, feed_id = %path.id, ip = %ip.0, %request_id);
    Ok(HttpResponse::NoContent().finish())
}
