//! Sync: the change feed (`GET /changes`), live events (`GET /events`) and the tickets that let
//! a browser's `EventSource` open a stream without a header. Also served under `/users/{user_id}`.

use actix_web::http::header::{self, ContentEncoding};
use actix_web::{FromRequest, HttpRequest, HttpResponse, get, post, web};
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::db::changes::{self, Stale};
use crate::db::event_tickets::{self, NewTicket};
use crate::db::tasks::Task;
use crate::db::users::{self, TokenStanding};
use crate::web::auth::AuthUser;
use crate::web::events::{self, Position, Refused, StreamAuth};
use crate::web::problem::{ApiError, Problem};
use crate::web::query::Params;
use crate::web::state::AppState;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(changes_feed).service(create_ticket).service(events_stream);
}

const DEFAULT_LIMIT: i64 = 100;
const MAX_LIMIT: i64 = 500;
/// Unexpired tickets one user may hold; each is used within a minute, so this is plenty.
const MAX_OPEN_TICKETS: i64 = 100;

/// The feed's parameters (documentation; the handler parses the query itself so that every
/// mistake names its parameter).
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct ChangesParams {
    /// The `next_since` of the previous call; `0` (the default) gives every live task.
    since: Option<i64>,
    /// 1–500, default 100.
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

/// The caller's task changes after change number `since`: upserts carry the whole task, deletes
/// (trashed or purged tasks) the id. Follow `next_since` until `has_more` is false.
#[utoipa::path(
    context_path = "/api/v1", tag = "sync", security(("bearer" = [])), params(ChangesParams),
    responses(
        (status = 200, body = ChangesPage),
        (status = 410, description = "`since` is older than the kept tombstones (or not from this feed): start again from 0", body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/changes")]
#[tracing::instrument(skip_all)]
pub async fn changes_feed(
    state: web::Data<AppState>,
    req: HttpRequest,
    user: AuthUser,
    query: web::Query<Vec<(String, String)>>,
) -> Result<web::Json<ChangesPage>, ApiError> {
    check_alias(&req, user.id)?;
    let params = Params::new(&query, &["since", "limit"], &[])?;
    let since = number(&params, "since", 0, i64::MAX)?.unwrap_or(0);
    let limit = number(&params, "limit", 1, MAX_LIMIT)?.unwrap_or(DEFAULT_LIMIT);
    let page = changes::page(&state.pool, user.id, since, limit + 1).await.map_err(ApiError::from_db)?;
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

/// Any value that is not a whole number in range is a 422 naming the parameter.
fn number(params: &Params<'_>, name: &str, min: i64, max: i64) -> Result<Option<i64>, ApiError> {
    params
        .one(name)
        .map(|value| {
            value
                .parse::<i64>()
                .ok()
                .filter(|n| (min..=max).contains(n))
                .ok_or_else(|| ApiError::field(name, format!("must be a whole number from {min} to {max}")))
        })
        .transpose()
}

fn resync_required(stale: Stale) -> ApiError {
    let detail = match stale {
        Stale::Pruned => "Changes since then are no longer kept; start again with since=0.",
        Stale::Unknown => "That change number is not from this feed; start again with since=0.",
    };
    ApiError::Gone { code: "resync_required", detail: detail.into() }
}

fn check_alias(req: &HttpRequest, user: Uuid) -> Result<(), ApiError> {
    super::tasks::http::check_alias(req.match_info().get("user_id"), user)
}

#[derive(Serialize, ToSchema)]
pub struct EventTicket {
    /// Pass as `GET /events?ticket=…` once, within a minute.
    ticket: String,
    expires_at: DateTime<Utc>,
}

/// A single-use ticket for `GET /events?ticket=…`, for clients such as a browser's
/// `EventSource` that cannot send `Authorization`. The stream it opens ends when the token that
/// made the ticket expires or is revoked.
#[utoipa::path(
    context_path = "/api/v1", tag = "sync", security(("bearer" = [])),
    responses((status = 201, body = EventTicket))
)]
#[post("/events/tickets")]
#[tracing::instrument(skip_all)]
pub async fn create_ticket(
    state: web::Data<AppState>,
    req: HttpRequest,
    user: AuthUser,
) -> Result<HttpResponse, ApiError> {
    check_alias(&req, user.id)?;
    let (ticket, digest) = events::new_ticket();
    let ttl = chrono::Duration::seconds(i64::try_from(state.settings.sync.ticket_ttl_secs).unwrap_or(60));
    // A ticket never outlives the token it stands for.
    let expires_at = (Utc::now() + ttl).min(user.expires_at);
    let stored = event_tickets::insert(
        &state.pool,
        NewTicket {
            digest: &digest,
            user_id: user.id,
            token_id: &user.token_id,
            token_expires_at: user.expires_at,
            expires_at,
        },
        MAX_OPEN_TICKETS,
    )
    .await
    .map_err(ApiError::from_db)?;
    if !stored {
        return Err(ApiError::TooManyStreams { limit: MAX_OPEN_TICKETS as usize });
    }
    Ok(HttpResponse::Created().json(EventTicket { ticket, expires_at }))
}

/// The events stream's parameters (documentation).
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct EventsParams {
    /// A ticket from `POST /events/tickets`, instead of `Authorization`.
    ticket: Option<String>,
    /// Start after this change number, as `Last-Event-ID` does (which wins when both are sent).
    /// Without either, the stream starts with the next change.
    since: Option<i64>,
}

/// The caller's task changes, live, as server-sent events: `id` is the change number, `event` is
/// `task.upserted` (data: the task) or `task.deleted` (data: `{"id"}`), and a comment is sent
/// every 15 s. Reconnect with `Last-Event-ID` to resume with no gap. A `resync` event means the
/// client fell behind or resumed from too far back: start again from `GET /changes?since=0`.
#[utoipa::path(
    context_path = "/api/v1", tag = "sync", security(("bearer" = []), ()),
    params(EventsParams, ("Last-Event-ID" = Option<i64>, Header, description = "Resume after this change number")),
    responses(
        (status = 200, description = "The event stream", content_type = "text/event-stream", body = String),
        (status = 429, description = "The caller has the most streams one user may open", body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/events")]
#[tracing::instrument(skip_all)]
pub async fn events_stream(
    state: web::Data<AppState>,
    req: HttpRequest,
    query: web::Query<Vec<(String, String)>>,
) -> Result<HttpResponse, ApiError> {
    let params = Params::new(&query, &["ticket", "since"], &[])?;
    let ticket = params.one("ticket");
    let since = number(&params, "since", 0, i64::MAX)?;
    let auth = match ticket {
        Some(ticket) => redeem(&state, ticket).await?,
        None => {
            let user = AuthUser::extract(&req).await?;
            StreamAuth { user: user.id, token_id: user.token_id, expires_at: user.expires_at }
        }
    };
    check_alias(&req, auth.user)?;
    // An empty `Last-Event-ID` is what a browser holds before its first event: no position.
    let last_event_id = req.headers().get("last-event-id").filter(|v| !v.as_bytes().trim_ascii().is_empty());
    let resume = match last_event_id {
        Some(value) => Some(
            value
                .to_str()
                .ok()
                .and_then(|v| v.trim().parse::<i64>().ok())
                .filter(|n| *n >= 0)
                .ok_or_else(|| ApiError::BadRequest("Last-Event-ID must be a change number.".into()))?,
        ),
        None => since,
    };
    let subscription = state.events.subscribe(auth.user).map_err(|refused| match refused {
        Refused::UserLimit => ApiError::TooManyStreams { limit: state.settings.sync.max_streams_per_user },
        Refused::ProcessFull => ApiError::Unavailable { reason: "too_many_streams", retry_after_secs: 5 },
    })?;
    // Asked after subscribing: a logout that committed before the subscription notified no one.
    match users::token_standing(&state.pool, auth.user, &auth.token_id).await.map_err(ApiError::from_db)? {
        TokenStanding::Good => {}
        TokenStanding::Revoked => return Err(ApiError::Unauthorized { code: "token_revoked" }),
        TokenStanding::UnknownUser => return Err(ApiError::Unauthorized { code: "token_invalid" }),
    }
    let start = match resume {
        Some(position) => position,
        None => changes::head(&state.pool, auth.user).await.map_err(ApiError::from_db)?,
    };
    let body = events::open(subscription, auth, Position(start));
    Ok(HttpResponse::Ok()
        .content_type("text/event-stream")
        // Compression would hold events back until a block fills.
        .insert_header(ContentEncoding::Identity)
        .insert_header((header::CACHE_CONTROL, "no-store"))
        // Tells nginx-style proxies not to buffer the stream.
        .insert_header(("X-Accel-Buffering", "no"))
        .streaming(body))
}

/// Uses up a ticket. It stands for the token that made it; whether that token is still good is
/// checked once the stream is subscribed (see `events_stream`).
async fn redeem(state: &AppState, ticket: &str) -> Result<StreamAuth, ApiError> {
    let invalid = ApiError::Unauthorized { code: "ticket_invalid" };
    if ticket.is_empty() || ticket.len() > 100 {
        return Err(invalid);
    }
    let redeemed = event_tickets::redeem(&state.pool, &events::ticket_digest(ticket))
        .await
        .map_err(ApiError::from_db)?
        .ok_or(invalid)?;
    if redeemed.token_expires_at <= Utc::now() {
        return Err(ApiError::Unauthorized { code: "token_expired" });
    }
    state.rate_limits.check_user(redeemed.user_id, &actix_web::http::Method::GET)?;
    tracing::Span::current().record("user_id", tracing::field::display(redeemed.user_id));
    Ok(StreamAuth {
        user: redeemed.user_id,
        token_id: redeemed.token_id,
        expires_at: redeemed.token_expires_at,
    })
}
