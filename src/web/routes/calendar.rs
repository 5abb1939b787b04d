//! `GET /calendar/{secret}.ics`: the subscription feed, public and read-only. The secret in the
//! address is the only credential; an unknown or revoked one is a bare 404.
//!
//! - Default: a VEVENT per open, untrashed task with a due time (see `crate::ical::task`).
//!   `?component=vtodo`: a VTODO per open, untrashed task.
//! - At most [`MAX_TASKS`] tasks, the earliest due first, and [`MAX_BYTES`] of components, read
//!   [`PAGE`] at a time; at most [`CONCURRENT_BUILDS`] feeds are built at once on a process, so
//!   memory stays bounded (about 8 MB and a page of rows per build).
//! - Each fetch counts against the owner's read rate limit (429 with `Retry-After`).
//! - `ETag` is the owner's change number (any change to any of their tasks moves it) with the
//!   component and the output's format version; read with the tasks in one snapshot, so the tag
//!   always names the body it comes with. `If-None-Match` answers 304 before any task is read.

use std::sync::LazyLock;
use std::time::Duration;

use actix_web::http::Method;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, web};
use tokio::sync::Semaphore;

use crate::commands::calendar_feeds::lookup_digest;
use crate::db::calendar_feeds::{self, FeedScope};
use crate::ical::{Calendar, CalendarWriter, Component, Context};
use crate::stepping::off_thread;
use crate::web::problem::{ApiError, ProblemCode};
use crate::web::routes::shared::not_modified;
use crate::web::state::AppState;

/// Tasks one feed shows at most.
pub const MAX_TASKS: i64 = 5_000;
/// Octets of components one feed holds at most: past it, later tasks are left out.
pub const MAX_BYTES: usize = 8 * 1024 * 1024;
/// Tasks read at a time.
const PAGE: i64 = 500;
/// Feeds built at once on one process.
const CONCURRENT_BUILDS: usize = 4;
/// How long a request waits for a build slot before a 503.
const BUILD_WAIT: Duration = Duration::from_secs(5);
/// How long clients and caches may keep a copy.
const CACHE_CONTROL: &str = "private, max-age=300";
/// What the calendar suggests as a refresh interval.
const REFRESH: &str = "PT1H";
/// Bumped whenever the bytes written for the same data change, so old ETags stop matching.
const FORMAT: &str = "v1";

static BUILDS: LazyLock<Semaphore> = LazyLock::new(|| Semaphore::new(CONCURRENT_BUILDS));

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/calendar/{file}", web::get().to(feed));
}

#[tracing::instrument(skip_all)]
async fn feed(
    state: web::Data<AppState>,
    req: HttpRequest,
    file: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let digest = file.strip_suffix(".ics").and_then(lookup_digest).ok_or(ApiError::NotFound)?;
    let component = component(req.query_string())?;
    let feed = calendar_feeds::find_by_digest(&state.pool, &digest)
        .await
        .map_err(ApiError::from_db)?
        .ok_or(ApiError::NotFound)?;
    // A feed's reads count against its owner's read budget, as their API reads do.
    state.rate_limits.check_user(feed.user_id, &Method::GET)?;
    let _slot = tokio::time::timeout(BUILD_WAIT, BUILDS.acquire())
        .await
        .ok()
        .and_then(Result::ok)
        .ok_or(ApiError::Unavailable { reason: ProblemCode::Overloaded, retry_after_secs: 5 })?;

    // The change number and the tasks from one snapshot: the tag names the body it comes with.
    let mut tx = state.pool.begin().await.map_err(ApiError::from_db)?;
    sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        .execute(&mut *tx)
        .await
        .map_err(ApiError::from_db)?;
    let seq = calendar_feeds::change_number(&mut *tx, feed.user_id).await.map_err(ApiError::from_db)?;
    let tag = match component {
        Component::Event => "e",
        Component::Todo => "t",
    };
    let etag = format!("\"cal-{seq}-{tag}-{FORMAT}\"");
    if let Some(response) = not_modified(req.headers(), &etag)? {
        return Ok(cached(response, &etag));
    }
    let scope = FeedScope {
        user_id: feed.user_id,
        project_id: feed.project_id,
        due_only: component == Component::Event,
    };
    let host = state.settings.public_url().map_err(ApiError::Internal)?;
    let host = url::Url::parse(host.as_str()).ok().and_then(|u| u.host_str().map(str::to_owned));
    let host = host.unwrap_or_else(|| "localhost".to_owned());

    // A page of tasks at a time, each written off the async threads, so neither the rows nor
    // the CPU of a large feed weigh on the process at once.
    let mut writer = CalendarWriter::new(component);
    let (mut read, mut after) = (0, None);
    while read < MAX_TASKS && writer.len() < MAX_BYTES {
        let limit = PAGE.min(MAX_TASKS - read);
        let page =
            calendar_feeds::tasks_page(&mut *tx, scope, after, limit).await.map_err(ApiError::from_db)?;
        read += page.len() as i64;
        after = page.last().map(|t| (t.due_at, t.id));
        let full = page.len() as i64 == limit;
        let host = host.clone();
        writer = off_thread(move || {
            let ctx = Context { uid_host: &host };
            for task in &page {
                if writer.len() >= MAX_BYTES {
                    break;
                }
                writer.add(task, &ctx);
            }
            writer
        })
        .await
        .map_err(|err| ApiError::Internal(err.into()))?;
        if !full {
            break;
        }
    }
    tx.commit().await.map_err(ApiError::from_db)?;
    let body = off_thread(move || writer.finish(&Calendar { name: &feed.name, refresh: REFRESH }))
        .await
        .map_err(|err| ApiError::Internal(err.into()))?;
    let response = HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, "text/calendar; charset=utf-8"))
        .insert_header((header::CONTENT_DISPOSITION, "inline; filename=\"tasks.ics\""))
        .body(body);
    Ok(cached(response, &etag))
}

fn cached(mut response: HttpResponse, etag: &str) -> HttpResponse {
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(etag) {
        headers.insert(header::ETAG, value);
    }
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(CACHE_CONTROL));
    // The address is the credential: keep it out of other sites' Referer headers.
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    response
}

/// `component=vevent` (the default) or `vtodo`, in any case; anything else is a 400.
fn component(query: &str) -> Result<Component, ApiError> {
    let mut found = Component::Event;
    for (key, value) in url::form_urlencoded::parse(query.as_bytes()) {
        if key != "component" {
            continue;
        }
        found = match value.to_ascii_lowercase().as_str() {
            "vevent" => Component::Event,
            "vtodo" => Component::Todo,
            _ => return Err(ApiError::BadRequest("component must be vevent or vtodo".into())),
        };
    }
    Ok(found)
}
