//! PROPFIND: the properties of the root, the principal, the calendar home, a calendar and a
//! task. A property this server does not have is listed under 404, never an error for the
//! whole request. `Depth: infinity` is refused (RFC 4918 `propfind-finite-depth`).

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse};
use uuid::Uuid;

use super::auth::{Caller, lacks};
use super::path::{Cal, Target, collection_href};
use super::xml::{self, APPLE, CALDAV, CALSERVER, DAV, Name, Wanted};
use super::{HOME, PRINCIPAL, ROOT, State, condition, multistatus, object, plain};
use crate::db::caldav;
use crate::db::projects::{self, Project};
use crate::domain::Scope;

/// Largest resource a client may PUT, as `max-resource-size` tells it.
pub const MAX_RESOURCE_SIZE: usize = 256 * 1024;

pub async fn propfind(
    req: &HttpRequest,
    state: &State,
    caller: &Caller,
    target: &Target,
    body: &[u8],
) -> HttpResponse {
    if !caller.can(Scope::TasksRead) {
        return lacks(Scope::TasksRead);
    }
    let wanted = match xml::propfind(body) {
        Ok(wanted) => wanted,
        Err(bad) => return plain(StatusCode::BAD_REQUEST, &bad.0),
    };
    let deep = match req.headers().get("depth").and_then(|v| v.to_str().ok()).map(str::trim) {
        None | Some("0") => false,
        Some("1") => true,
        Some(_) => {
            return condition(
                StatusCode::FORBIDDEN,
                "<d:propfind-finite-depth/>",
                "Depth must be 0 or 1: this server lists one level at a time.",
            );
        }
    };
    let result = match target {
        Target::Root => {
            let mut out = vec![respond(ROOT, &wanted, root_props())];
            if deep {
                out.push(respond(PRINCIPAL, &wanted, principal_props(caller)));
                out.push(respond(HOME, &wanted, home_props()));
            }
            Ok(out)
        }
        Target::Principal => Ok(vec![respond(PRINCIPAL, &wanted, principal_props(caller))]),
        Target::Home => home(caller, &wanted, deep).await,
        Target::Collection(cal) => {
            return collection(state, caller, *cal, &wanted, deep).await;
        }
        Target::Object(cal, name) => match caldav::find(&caller.reads, caller.id, *cal, name).await {
            Ok(Some(found)) => Ok(vec![object::response(state, caller, *cal, &found, &wanted).await]),
            Ok(None) => return plain(StatusCode::NOT_FOUND, "No such task."),
            Err(err) => Err(err),
        },
    };
    match result {
        Ok(responses) => multistatus(format!("{}{}</d:multistatus>", xml::ROOT_OPEN, responses.concat())),
        Err(err) => object::db_error(err),
    }
}

/// Properties set through PROPPATCH anywhere but a calendar: none can be.
pub fn proppatch_refused(req: &HttpRequest, body: &[u8]) -> HttpResponse {
    let setting = match xml::setting(body) {
        Ok(setting) => setting,
        Err(bad) => return plain(StatusCode::BAD_REQUEST, &bad.0),
    };
    let names: Vec<Name> = setting.set.into_iter().map(|(n, _)| n).chain(setting.remove).collect();
    multistatus(format!("{}{}</d:multistatus>", xml::ROOT_OPEN, propstat_response(req.path(), &[], &names)))
}

/// A PROPPATCH answer: the properties set, and those refused (403).
pub fn propstat_response(href: &str, done: &[Name], refused: &[Name]) -> String {
    let mut out = format!("<d:response><d:href>{}</d:href>", xml::escape(href));
    for (names, status) in [(done, "200 OK"), (refused, "403 Forbidden")] {
        if !names.is_empty() {
            out.push_str("<d:propstat><d:prop>");
            for name in names {
                out.push_str(&xml::element(name, ""));
            }
            out.push_str(&format!("</d:prop><d:status>HTTP/1.1 {status}</d:status></d:propstat>"));
        }
    }
    out.push_str("</d:response>");
    out
}

/// The properties asked for out of those `available`, and the names not found.
pub fn respond(href: &str, wanted: &Wanted, available: Vec<(Name, String)>) -> String {
    match wanted {
        Wanted::All => xml::response(href, &available, &[]),
        Wanted::Names => {
            let names: Vec<(Name, String)> = available.into_iter().map(|(n, _)| (n, String::new())).collect();
            xml::response(href, &names, &[])
        }
        Wanted::Props(names) => {
            let mut found = Vec::new();
            let mut missing = Vec::new();
            for name in names {
                match available.iter().find(|(n, _)| n == name) {
                    Some(prop) => found.push(prop.clone()),
                    None => missing.push(name.clone()),
                }
            }
            xml::response(href, &found, &missing)
        }
    }
}

fn href(path: &str) -> String {
    format!("<d:href>{}</d:href>", xml::escape(path))
}

fn p(ns: &str, local: &str, inner: impl Into<String>) -> (Name, String) {
    (Name::new(ns, local), inner.into())
}

fn root_props() -> Vec<(Name, String)> {
    vec![
        p(DAV, "resourcetype", "<d:collection/>"),
        p(DAV, "current-user-principal", href(PRINCIPAL)),
        p(DAV, "principal-URL", href(PRINCIPAL)),
        p(CALDAV, "calendar-home-set", href(HOME)),
    ]
}

fn principal_props(caller: &Caller) -> Vec<(Name, String)> {
    vec![
        p(DAV, "resourcetype", "<d:principal/>"),
        p(DAV, "displayname", xml::escape(&caller.email)),
        p(DAV, "current-user-principal", href(PRINCIPAL)),
        p(DAV, "principal-URL", href(PRINCIPAL)),
        p(DAV, "principal-collection-set", href(ROOT)),
        p(CALDAV, "calendar-home-set", href(HOME)),
        p(CALDAV, "calendar-user-address-set", href(&format!("mailto:{}", caller.email))),
        p(DAV, "supported-report-set", String::new()),
    ]
}

fn home_props() -> Vec<(Name, String)> {
    vec![
        p(DAV, "resourcetype", "<d:collection/>"),
        p(DAV, "displayname", "Calendars"),
        p(DAV, "current-user-principal", href(PRINCIPAL)),
        p(DAV, "owner", href(PRINCIPAL)),
        p(DAV, "current-user-privilege-set", privileges(true)),
        p(DAV, "supported-report-set", String::new()),
    ]
}

fn privileges(write: bool) -> String {
    let mut out = String::from(
        "<d:privilege><d:read/></d:privilege><d:privilege><d:read-current-user-privilege-set/></d:privilege>",
    );
    if write {
        for privilege in ["write", "write-content", "write-properties", "bind", "unbind"] {
            out.push_str(&format!("<d:privilege><d:{privilege}/></d:privilege>"));
        }
    }
    out
}

async fn home(caller: &Caller, wanted: &Wanted, deep: bool) -> Result<Vec<String>, sqlx::Error> {
    let mut out = vec![respond(HOME, wanted, home_props())];
    if deep {
        let head = crate::db::changes::head(&caller.reads, caller.id).await?;
        out.push(respond(&collection_href(None), wanted, collection_props(caller, None, head)));
        for project in projects::list(&caller.reads, caller.id, Some(false)).await? {
            out.push(respond(
                &collection_href(Some(project.id)),
                wanted,
                collection_props(caller, Some(&project), head),
            ));
        }
    }
    Ok(out)
}

/// A calendar's properties. Its change tag and sync token come from the user's change number,
/// which moves with every change to any of their tasks.
pub fn collection_props(caller: &Caller, project: Option<&Project>, head: i64) -> Vec<(Name, String)> {
    let cal = project.map(|p| p.id);
    let mut props = vec![
        p(DAV, "resourcetype", "<d:collection/><c:calendar/>"),
        p(DAV, "displayname", xml::escape(project.map_or("Inbox", |p| p.name.as_str()))),
        p(DAV, "current-user-principal", href(PRINCIPAL)),
        p(DAV, "owner", href(PRINCIPAL)),
        p(DAV, "current-user-privilege-set", privileges(caller.can(Scope::TasksWrite))),
        p(
            DAV,
            "supported-report-set",
            ["c:calendar-query", "c:calendar-multiget", "d:sync-collection"]
                .map(|r| format!("<d:supported-report><d:report><{r}/></d:report></d:supported-report>"))
                .concat(),
        ),
        p(CALDAV, "supported-calendar-component-set", "<c:comp name=\"VTODO\"/>"),
        p(
            CALDAV,
            "supported-calendar-data",
            "<c:calendar-data content-type=\"text/calendar\" version=\"2.0\"/>",
        ),
        p(CALDAV, "max-resource-size", MAX_RESOURCE_SIZE.to_string()),
        p(CALSERVER, "getctag", format!("\"{head}\"")),
        p(DAV, "sync-token", sync_token(cal, head)),
    ];
    if let Some(color) = project.and_then(|p| p.color.as_deref()) {
        props.push(p(APPLE, "calendar-color", color.to_owned()));
    }
    if let Some(project) = project {
        props.push(p(APPLE, "calendar-order", project.position.to_string()));
    }
    props
}

/// `urn:x-todo:sync:{calendar}:{change number}`.
pub fn sync_token(cal: Cal, seq: i64) -> String {
    format!("urn:x-todo:sync:{}:{seq}", cal.map_or_else(|| "inbox".to_owned(), |id| id.to_string()))
}

/// The change number in a token this calendar gave out.
pub fn parse_sync_token(token: &str, cal: Cal) -> Option<i64> {
    let rest = token.strip_prefix("urn:x-todo:sync:")?;
    let (name, seq) = rest.rsplit_once(':')?;
    let same = match cal {
        None => name == "inbox",
        Some(id) => name.parse::<Uuid>().ok() == Some(id),
    };
    same.then(|| seq.parse().ok()).flatten().filter(|seq: &i64| *seq >= 0)
}

/// The project behind a calendar (`None` for the inbox), or `Err` when it is not the caller's.
pub async fn project_of(caller: &Caller, cal: Cal) -> Result<Option<Project>, Option<sqlx::Error>> {
    match cal {
        None => Ok(None),
        Some(id) => match projects::find(&caller.reads, caller.id, id).await {
            Ok(Some(project)) => Ok(Some(project)),
            Ok(None) => Err(None),
            Err(err) => Err(Some(err)),
        },
    }
}

async fn collection(state: &State, caller: &Caller, cal: Cal, wanted: &Wanted, deep: bool) -> HttpResponse {
    let project = match project_of(caller, cal).await {
        Ok(project) => project,
        Err(None) => return plain(StatusCode::NOT_FOUND, "No such calendar."),
        Err(Some(err)) => return object::db_error(err),
    };
    let head = match crate::db::changes::head(&caller.reads, caller.id).await {
        Ok(head) => head,
        Err(err) => return object::db_error(err),
    };
    let first = respond(&collection_href(cal), wanted, collection_props(caller, project.as_ref(), head));
    if !deep {
        return multistatus(format!("{}{first}</d:multistatus>", xml::ROOT_OPEN));
    }
    object::stream_members(state, caller, cal, first, wanted.clone(), None)
}
