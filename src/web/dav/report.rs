//! REPORT: `calendar-query` and `calendar-multiget` (RFC 4791 §7.8, §7.9) and `sync-collection`
//! (RFC 6578) on a calendar. Any other report, or one on another address, is a 403 with
//! `supported-report`, as RFC 3253 says.
//!
//! A sync token is the user's change number with the calendar. A report gives at most
//! [`SYNC_PAGE`] changes, then a 507 for the calendar and a token to go on from (RFC 6578 §3.6).
//! A token older than the kept tombstones is refused with `valid-sync-token`: the client then
//! starts again from nothing.
//!
//! Like listings, multiget and sync answers are streamed: their members are read (multiget) and
//! rendered a chunk at a time as the body goes out.

use std::sync::Arc;

use actix_web::HttpResponse;
use actix_web::http::StatusCode;
use actix_web::web::Bytes;

use super::auth::{Caller, lacks};
use super::path::{Cal, Target, collection_href, member_name, object_href};
use super::props::{self, parse_sync_token, sync_token};
use super::xml::{self, Report, Wanted};
use super::{State, condition, object, plain};
use crate::db::caldav::{self, Change};
use crate::domain::Scope;

/// Changes one sync report lists at most.
const SYNC_PAGE: usize = 1000;
/// hrefs, or sync members, read and written out at a time.
const CHUNK: usize = 50;
/// hrefs one multiget may name.
const MAX_HREFS: usize = 1000;

pub async fn report(state: &State, caller: &Caller, target: &Target, body: &[u8]) -> HttpResponse {
    if !caller.can(Scope::TasksRead) {
        return lacks(Scope::TasksRead);
    }
    let report = match xml::report(body) {
        Ok(report) => report,
        Err(bad) => return plain(StatusCode::BAD_REQUEST, &bad.0),
    };
    let Target::Collection(cal) = target else {
        return unsupported();
    };
    let cal = *cal;
    match props::project_of(caller, cal).await {
        Ok(_) => {}
        Err(None) => return plain(StatusCode::NOT_FOUND, "No such calendar."),
        Err(Some(err)) => return object::db_error(err),
    }
    match report {
        Report::Query { wanted, filter } => {
            object::stream_members(state, caller, cal, String::new(), wanted, filter)
        }
        Report::Multiget { wanted, hrefs } => multiget(state, caller, cal, wanted, hrefs).await,
        Report::Sync { wanted, token, limit } => sync(state, caller, cal, &wanted, &token, limit).await,
        Report::Other(_) => unsupported(),
    }
}

fn unsupported() -> HttpResponse {
    condition(StatusCode::FORBIDDEN, "<d:supported-report/>", "This report is not supported here.")
}

async fn multiget(
    state: &State,
    caller: &Caller,
    cal: Cal,
    wanted: Wanted,
    hrefs: Vec<String>,
) -> HttpResponse {
    if hrefs.len() > MAX_HREFS {
        return condition(
            StatusCode::FORBIDDEN,
            "<d:number-of-matches-within-limits/>",
            &format!("Ask for at most {MAX_HREFS} resources at a time."),
        );
    }
    let (state, caller) = (state.clone(), caller.clone());
    let shared = Arc::new((wanted, hrefs));
    // Each step reads and writes out a chunk of the hrefs, so the answer is never all in memory.
    streamed(move |from| {
        let (state, caller, shared) = (state.clone(), caller.clone(), shared.clone());
        async move {
            let (wanted, hrefs) = (&shared.0, &shared.1);
            let end = (from + CHUNK).min(hrefs.len());
            let mut out = String::new();
            for href in &hrefs[from..end] {
                let found = match member_name(href, cal) {
                    Some(name) => caldav::find(&caller.reads, caller.id, cal, &name).await?,
                    None => None,
                };
                match found {
                    Some(found) => {
                        out.push_str(&object::response(&state, &caller, cal, &found, wanted).await)
                    }
                    None => out.push_str(&xml::status_response(href, "404 Not Found", None)),
                }
            }
            Ok((out, (end < hrefs.len()).then_some(end)))
        }
    })
}

/// A 207 streamed chunk by chunk: `step(from)` gives the text of the chunk starting at `from`
/// and where the next one starts, if any. A read that fails part way ends the body early (the
/// status is sent by then), so the client sees a broken answer rather than a short one.
fn streamed<F, Fut>(step: F) -> HttpResponse
where
    F: Fn(usize) -> Fut + 'static,
    Fut: std::future::Future<Output = Result<(String, Option<usize>), sqlx::Error>> + 'static,
{
    enum At {
        Start,
        Chunk(usize),
        End,
        Done,
    }
    let stream = futures_util::stream::unfold(At::Start, move |at| {
        let next = match at {
            At::Chunk(from) => Some(step(from)),
            _ => None,
        };
        async move {
            match (at, next) {
                (At::Start, _) => Some((Ok(Bytes::from_static(xml::ROOT_OPEN.as_bytes())), At::Chunk(0))),
                (At::Chunk(_), Some(next)) => match next.await {
                    Ok((text, Some(from))) => Some((Ok(Bytes::from(text)), At::Chunk(from))),
                    Ok((text, None)) => Some((Ok(Bytes::from(text)), At::End)),
                    Err(err) => {
                        tracing::error!(%err, "a CalDAV report failed part way");
                        Some((Err(std::io::Error::other("report failed")), At::Done))
                    }
                },
                (At::End, _) => Some((Ok(Bytes::from_static(b"</d:multistatus>")), At::Done)),
                _ => None,
            }
        }
    });
    HttpResponse::build(StatusCode::MULTI_STATUS)
        .content_type("application/xml; charset=utf-8")
        .streaming(stream)
}

async fn sync(
    state: &State,
    caller: &Caller,
    cal: Cal,
    wanted: &Wanted,
    token: &str,
    limit: Option<usize>,
) -> HttpResponse {
    let since = match token {
        "" => 0,
        token => match parse_sync_token(token, cal) {
            Some(since) => since,
            None => return invalid_token(),
        },
    };
    let page = limit.unwrap_or(SYNC_PAGE).clamp(1, SYNC_PAGE);
    let result = async {
        // The head, the feed's pruned mark and the changes from one snapshot.
        let mut tx = caller.reads.begin().await?;
        sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY").execute(&mut *tx).await?;
        let feed = crate::db::changes::page(&mut *tx, caller.id, since, 0).await?;
        if feed.check(since).is_err() {
            return Ok(None);
        }
        let found = caldav::changes(&mut tx, caller.id, cal, since, page as i64).await?;
        tx.commit().await?;
        Ok::<_, sqlx::Error>(Some((feed.head, found)))
    }
    .await;
    let (head, caldav::ChangePage { changes, last, more }) = match result {
        Ok(Some(found)) => found,
        Ok(None) => return invalid_token(),
        Err(err) => return object::db_error(err),
    };
    // Not `changes.len() == page`: reads skip rows this collection does not list, so a short
    // page can still have more behind it, and only the read knows.
    let truncated = more;
    let mut gone = String::new();
    let mut members = Vec::new();
    for change in changes {
        match change {
            Change::Member(found) => members.push(found),
            Change::Gone { name } => {
                gone.push_str(&xml::status_response(&object_href(cal, &name), "404 Not Found", None));
            }
        }
    }
    let mut tail = String::new();
    let next = match truncated {
        true => {
            tail.push_str(&xml::status_response(
                &collection_href(cal),
                "507 Insufficient Storage",
                Some("<d:number-of-matches-within-limits/>"),
            ));
            last.unwrap_or(head)
        }
        false => head,
    };
    tail.push_str(&format!("<d:sync-token>{}</d:sync-token>", xml::escape(&sync_token(cal, next))));
    // The members are rendered a chunk at a time as the body is sent, not all at once.
    let (state, caller) = (state.clone(), caller.clone());
    let shared = Arc::new((wanted.clone(), members, gone, tail));
    streamed(move |from| {
        let (state, caller, shared) = (state.clone(), caller.clone(), shared.clone());
        async move {
            let (wanted, members, gone, tail) = (&shared.0, &shared.1, &shared.2, &shared.3);
            let mut out = String::new();
            if from == 0 {
                out.push_str(gone);
            }
            let end = (from + CHUNK).min(members.len());
            for found in &members[from..end] {
                out.push_str(&object::response(&state, &caller, cal, found, wanted).await);
            }
            if end < members.len() {
                return Ok::<_, sqlx::Error>((out, Some(end)));
            }
            out.push_str(tail);
            Ok((out, None))
        }
    })
}

fn invalid_token() -> HttpResponse {
    condition(
        StatusCode::FORBIDDEN,
        "<d:valid-sync-token/>",
        "This sync token is not from this calendar, or is older than the deletions kept: sync again from the start.",
    )
}
