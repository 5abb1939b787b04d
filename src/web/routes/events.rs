//! Live events (`GET /events`) and the tickets that let a browser's `EventSource` open a stream
//! without a header. Also served under `/users/{user_id}`.

use actix_web::http::header::{self, ContentEncoding};
use actix_web::{FromRequest, HttpRequest, HttpResponse, get, post, web};
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::{IntoParams, ToSchema};

use crate::db::changes;
use crate::db::event_tickets::{self, NewTicket};
use crate::db::users::{self, TokenStanding};
use crate::web::auth::AuthUser;
use crate::web::events::{self, Position, Refused, StreamAuth};
use crate::web::problem::{ApiError, Problem, ProblemCode};
use crate::web::query::{Params, integer_in};
use crate::web::routes::shared::check_alias;
use crate::web::state::AppState;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(create_ticket).service(events_stream);
}

/// Unexpired tickets one user may hold; each is used within a minute, so this is plenty.
const MAX_OPEN_TICKETS: i64 = 100;

#[derive(Serialize, ToSchema)]
pub struct EventTicket {
    /// Pass as `GET /events?ticket=…` once, within a minute.
    ticket: String,
    expires_at: DateTime<Utc>,
}

/// Create a single-use ticket for the event stream
///
/// A ticket for `streamEvents` (`GET /events?ticket=…`), for clients such as a browser's
/// `EventSource` that cannot send `Authorization`. It is good once, within a minute. The stream it
/// opens ends when the token that made the ticket expires or is revoked.
#[utoipa::path(
    context_path = "/api/v1", operation_id = "createEventTicket", tag = "sync", security(("bearer" = []), ("apiToken" = ["tasks:read"])),
    responses((status = 201, description = "A ticket, good once within a minute", body = EventTicket))
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
    #[param(minimum = 0)]
    since: Option<i64>,
}

/// Stream task changes as server-sent events
///
/// The caller's task changes, live, as a `text/event-stream` that stays open. Each event has:
///
/// - `id`: the change number, as in `listChanges`;
/// - `event`: `task.upserted` (`data` is the task as JSON) or `task.deleted` (`data` is
///   `{"id": "…"}`), or `resync`;
/// - a comment line (`: keep-alive`) every 15 s, so proxies keep the connection.
///
/// Reconnect with `Last-Event-ID` (or `since`) to resume with no gap. A `resync` event means the
/// client fell behind or resumed from too far back: fetch `listChanges` from 0 and reconnect.
/// Authenticate with the bearer token, or with a `ticket` from `createEventTicket`.
#[utoipa::path(
    context_path = "/api/v1", operation_id = "streamEvents", tag = "sync", security(("bearer" = []), ("apiToken" = ["tasks:read"]), ("ticket" = [])),
    params(EventsParams, ("Last-Event-ID" = Option<i64>, Header, minimum = 0, description = "Resume after this change number")),
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
    let since = integer_in(&params, "since", 0, i64::MAX)?;
    // A ticket is only looked at here and used up once the stream is sure to open: a request
    // refused below (another user's alias, a rate or stream limit) leaves it usable.
    let auth = match ticket {
        Some(ticket) => ticket_holder(&state, ticket).await?,
        None => {
            let user = AuthUser::extract(&req).await?;
            StreamAuth { user: user.id, token_id: user.token_id, expires_at: user.expires_at }
        }
    };
    check_alias(&req, auth.user)?;
    let resume = last_event_id(&req)?.or(since);
    let subscription = state.events.subscribe(auth.user).map_err(|refused| match refused {
        Refused::UserLimit => ApiError::TooManyStreams { limit: state.settings.sync.max_streams_per_user },
        Refused::ProcessFull => {
            ApiError::Unavailable { reason: ProblemCode::TooManyStreams, retry_after_secs: 5 }
        }
    })?;
    if let Some(ticket) = ticket {
        use_up(&state, ticket).await?;
    }
    // Asked after subscribing: a logout that committed before the subscription notified no one.
    match users::token_standing(&state.pool, auth.user, &auth.token_id).await.map_err(ApiError::from_db)? {
        TokenStanding::Good => {}
        TokenStanding::Revoked => return Err(ApiError::Unauthorized { code: ProblemCode::TokenRevoked }),
        TokenStanding::UnknownUser => return Err(ApiError::Unauthorized { code: ProblemCode::TokenInvalid }),
    }
    let start = match resume {
        Some(position) => position,
        None => changes::head(&state.pool, auth.user).await.map_err(ApiError::from_db)?,
    };
    // Only a resumed stream has a backlog worth a replica; a new one starts at the head.
    let backlog = match resume {
        Some(_) => state.reads.any_replica().await,
        None => None,
    };
    let body = events::open(subscription, auth, Position(start), backlog);
    Ok(HttpResponse::Ok()
        .content_type("text/event-stream")
        // Compression would hold events back until a block fills.
        .insert_header(ContentEncoding::Identity)
        .insert_header((header::CACHE_CONTROL, "no-store"))
        // Tells nginx-style proxies not to buffer the stream.
        .insert_header(("X-Accel-Buffering", "no"))
        .streaming(body))
}

/// The change number in `Last-Event-ID`, if one is sent. An empty header is what a browser holds
/// before its first event: no position.
fn last_event_id(req: &HttpRequest) -> Result<Option<i64>, ApiError> {
    let Some(value) = req.headers().get("last-event-id").filter(|v| !v.as_bytes().trim_ascii().is_empty())
    else {
        return Ok(None);
    };
    value
        .to_str()
        .ok()
        .and_then(|v| v.trim().parse::<i64>().ok())
        .filter(|n| *n >= 0)
        .map(Some)
        .ok_or_else(|| ApiError::BadRequest("Last-Event-ID must be a change number.".into()))
}

/// Who a ticket stands for: the user and the token that made it, without using it up. Whether
/// that token is still good is checked once the stream is subscribed (see `events_stream`).
async fn ticket_holder(state: &AppState, ticket: &str) -> Result<StreamAuth, ApiError> {
    let invalid = ApiError::Unauthorized { code: ProblemCode::TicketInvalid };
    if ticket.is_empty() || ticket.len() > 100 {
        return Err(invalid);
    }
    let holder = event_tickets::find(&state.pool, &events::ticket_digest(ticket))
        .await
        .map_err(ApiError::from_db)?
        .ok_or(invalid)?;
    if holder.token_expires_at <= Utc::now() {
        return Err(ApiError::Unauthorized { code: ProblemCode::TokenExpired });
    }
    state.rate_limits.check_user(holder.user_id, &actix_web::http::Method::GET)?;
    tracing::Span::current().record("user_id", tracing::field::display(holder.user_id));
    Ok(StreamAuth { user: holder.user_id, token_id: holder.token_id, expires_at: holder.token_expires_at })
}

/// Uses a ticket up. Two requests may have looked at the same ticket; only the first to get here
/// opens a stream, and the other is refused as for any used ticket.
async fn use_up(state: &AppState, ticket: &str) -> Result<(), ApiError> {
    let redeemed = event_tickets::redeem(&state.pool, &events::ticket_digest(ticket))
        .await
        .map_err(ApiError::from_db)?;
    redeemed.map(drop).ok_or(ApiError::Unauthorized { code: ProblemCode::TicketInvalid })
}
