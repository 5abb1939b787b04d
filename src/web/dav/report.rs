//! REPORT: `calendar-query` and `calendar-multiget` (RFC 4791 §7.8, §7.9) and `sync-collection`
//! (RFC 6578) on a calendar. Any other report, or one on another address, is a 403 with
//! `supported-report`, as RFC 3253 says.
//!
//! A sync token is the user's change number with the calendar. A report gives at most
//! [`SYNC_PAGE`] changes, then a 507 for the calendar and a token to go on from (RFC 6578 §3.6).
//! A token older than the kept tombstones is refused with `valid-sync-token`: the client then
//! starts again from nothing.

use actix_web::HttpResponse;
use actix_web::http::StatusCode;

use super::auth::{Caller, lacks};
use super::path::{Cal, Target, collection_href, member_name, object_href};
use super::props::{self, parse_sync_token, sync_token};
use super::xml::{self, Report, Wanted};
use super::{State, condition, multistatus, object, plain};
use crate::db::caldav::{self, Change};
use crate::domain::Scope;

/// Changes one sync report lists at most.
const SYNC_PAGE: usize = 1000;
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
        Report::Multiget { wanted, hrefs } => multiget(state, caller, cal, &wanted, &hrefs).await,
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
    wanted: &Wanted,
    hrefs: &[String],
) -> HttpResponse {
    if hrefs.len() > MAX_HREFS {
        return condition(
            StatusCode::FORBIDDEN,
            "<d:number-of-matches-within-limits/>",
            &format!("Ask for at most {MAX_HREFS} resources at a time."),
        );
    }
    let mut out = String::from(xml::ROOT_OPEN);
    for href in hrefs {
        let found = match member_name(href, cal) {
            Some(name) => match caldav::find(&caller.reads, caller.id, cal, &name).await {
                Ok(found) => found,
                Err(err) => return object::db_error(err),
            },
            None => None,
        };
        match found {
            Some(found) => out.push_str(&object::response(state, caller, cal, &found, wanted).await),
            None => out.push_str(&xml::status_response(href, "404 Not Found", None)),
        }
    }
    out.push_str("</d:multistatus>");
    multistatus(out)
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
    let mut out = String::from(xml::ROOT_OPEN);
    let mut members = Vec::new();
    for change in changes {
        match change {
            Change::Member(found) => members.push(found),
            Change::Gone { name } => {
                out.push_str(&xml::status_response(&object_href(cal, &name), "404 Not Found", None));
            }
        }
    }
    for found in &members {
        out.push_str(&object::response(state, caller, cal, found, wanted).await);
    }
    let next = match truncated {
        true => {
            out.push_str(&xml::status_response(
                &collection_href(cal),
                "507 Insufficient Storage",
                Some("<d:number-of-matches-within-limits/>"),
            ));
            last.unwrap_or(head)
        }
        false => head,
    };
    out.push_str(&format!(
        "<d:sync-token>{}</d:sync-token></d:multistatus>",
        xml::escape(&sync_token(cal, next))
    ));
    multistatus(out)
}

fn invalid_token() -> HttpResponse {
    condition(
        StatusCode::FORBIDDEN,
        "<d:valid-sync-token/>",
        "This sync token is not from this calendar, or is older than the deletions kept: sync again from the start.",
    )
}
