//! A task as a calendar object resource: GET, PUT and DELETE with ETags, and its properties in
//! listings. Listings stream a page of members at a time, so a large calendar is never held in
//! memory at once.

use std::sync::Arc;

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::web::Bytes;
use actix_web::{HttpRequest, HttpResponse, ResponseError};
use uuid::Uuid;

use super::auth::{Caller, lacks};
use super::filter;
use super::path::{Cal, object_href};
use super::props::{self, respond};
use super::xml::{self, CALDAV, CompFilter, DAV, Name, Wanted};
use super::{State, condition, plain};
use crate::commands::caldav::{Condition, Conflict, Put};
use crate::commands::{Command, IfMatch, Outcome, WriteError};
use crate::db::caldav::{self, Object};
use crate::domain::Scope;
use crate::ical::read::{self, ReadError};
use crate::ical::task::Kept;
use crate::ical::{Context, object as ical_object};
use crate::web::actors::ActorError;
use crate::web::problem::ApiError;
use crate::web::state::AppState;

/// Members read (and written out) at a time.
const PAGE: i64 = 200;
/// The longest UID or resource name kept (`caldav_objects_uid_length`, `…_name_length`).
const MAX_NAME_BYTES: usize = 255;
const CONTENT_TYPE: &str = "text/calendar; charset=utf-8; component=VTODO";

/// The host every generated UID ends with: the service's public host.
pub fn uid_host(state: &AppState) -> String {
    state
        .settings
        .public_url()
        .ok()
        .and_then(|url| url::Url::parse(url.as_str()).ok())
        .and_then(|url| url.host_str().map(str::to_owned))
        .unwrap_or_else(|| "localhost".to_owned())
}

pub fn uid(object: &Object, host: &str) -> String {
    match &object.identity {
        Some(identity) => identity.uid.clone(),
        None => format!("{}@{host}", caldav::generated_key(&object.task)),
    }
}

/// The object's iCalendar text.
pub fn render(object: &Object, parent_uid: Option<&str>, host: &str) -> String {
    let uid = uid(object, host);
    let (extra, others) =
        object.identity.as_ref().map_or(("", ""), |i| (i.extra.as_str(), i.others.as_str()));
    let kept = Kept { uid: Some(&uid), parent_uid, extra };
    ical_object(&object.task, &Context { uid_host: host }, &kept, others)
}

pub fn db_error(err: sqlx::Error) -> HttpResponse {
    ApiError::from_db(err).error_response()
}

fn object_props(object: &Object, data: Option<String>) -> Vec<(Name, String)> {
    let mut props = vec![
        (Name::new(DAV, "getetag"), xml::escape(&object.task.etag())),
        (Name::new(DAV, "getcontenttype"), CONTENT_TYPE.to_owned()),
        (Name::new(DAV, "resourcetype"), String::new()),
        (
            Name::new(DAV, "getlastmodified"),
            object.task.updated_at.format("%a, %d %b %Y %H:%M:%S GMT").to_string(),
        ),
    ];
    if let Some(data) = data {
        props.push((Name::new(CALDAV, "calendar-data"), xml::escape(&data)));
    }
    props
}

fn wants_data(wanted: &Wanted) -> bool {
    matches!(wanted, Wanted::Props(names) if names.iter().any(|n| n.is(CALDAV, "calendar-data")))
}

/// One member's `<d:response>`.
pub async fn response(state: &State, caller: &Caller, cal: Cal, object: &Object, wanted: &Wanted) -> String {
    let host = uid_host(state);
    let data = match wants_data(wanted) {
        true => {
            let parent = parent_uids(caller, std::slice::from_ref(object), &host).await;
            Some(render(
                object,
                object.task.parent_id.and_then(|p| parent.get(&p)).map(String::as_str),
                &host,
            ))
        }
        false => None,
    };
    respond(&object_href(cal, &caldav::name_of(object)), wanted, object_props(object, data))
}

async fn parent_uids(
    caller: &Caller,
    objects: &[Object],
    host: &str,
) -> std::collections::HashMap<Uuid, String> {
    let parents: Vec<Uuid> = objects.iter().filter_map(|o| o.task.parent_id).collect();
    if parents.is_empty() {
        return Default::default();
    }
    caldav::uids(&caller.reads, caller.id, &parents, host).await.unwrap_or_default()
}

/// A 207 listing `first`, then every member of the calendar that passes `filter`, read and
/// written a page at a time.
pub fn stream_members(
    state: &State,
    caller: &Caller,
    cal: Cal,
    first: String,
    wanted: Wanted,
    filter: Option<CompFilter>,
) -> HttpResponse {
    struct Cursor {
        after: Option<Uuid>,
        first: Option<String>,
        done: bool,
    }
    let caller = caller.clone();
    let host = uid_host(state);
    let shared = Arc::new((wanted, filter));
    let start = Cursor { after: Some(Uuid::nil()), first: Some(first), done: false };
    let stream = futures_util::stream::unfold(start, move |mut cursor| {
        let (caller, host, shared) = (caller.clone(), host.clone(), shared.clone());
        async move {
            if cursor.done {
                return None;
            }
            if let Some(first) = cursor.first.take() {
                return Some((
                    Ok::<_, std::io::Error>(Bytes::from(format!("{}{first}", xml::ROOT_OPEN))),
                    cursor,
                ));
            }
            let Some(after) = cursor.after else {
                cursor.done = true;
                return Some((Ok(Bytes::from_static(b"</d:multistatus>")), cursor));
            };
            let page = match caldav::members(&caller.reads, caller.id, cal, after, PAGE).await {
                Ok(page) => page,
                Err(err) => {
                    tracing::error!(%err, "a CalDAV listing failed part way");
                    return Some((
                        Err(std::io::Error::other("listing failed")),
                        Cursor { done: true, ..cursor },
                    ));
                }
            };
            cursor.after = (page.len() as i64 == PAGE).then(|| page.last().map(|o| o.task.id)).flatten();
            let (wanted, filter) = (&shared.0, &shared.1);
            let needs_text = wants_data(wanted) || filter.is_some();
            let parents = match needs_text {
                true => parent_uids(&caller, &page, &host).await,
                false => Default::default(),
            };
            let mut out = String::new();
            for object in &page {
                let text = needs_text.then(|| {
                    render(
                        object,
                        object.task.parent_id.and_then(|p| parents.get(&p)).map(String::as_str),
                        &host,
                    )
                });
                if let (Some(filter), Some(text)) = (filter, &text)
                    && !filter::matches(filter, &object.task, text)
                {
                    continue;
                }
                let data = text.filter(|_| wants_data(wanted));
                out.push_str(&respond(
                    &object_href(cal, &caldav::name_of(object)),
                    wanted,
                    object_props(object, data),
                ));
            }
            Some((Ok(Bytes::from(out)), cursor))
        }
    });
    HttpResponse::build(StatusCode::MULTI_STATUS)
        .content_type("application/xml; charset=utf-8")
        .streaming(stream)
}

pub async fn get(req: &HttpRequest, state: &State, caller: &Caller, cal: Cal, name: &str) -> HttpResponse {
    if !caller.can(Scope::TasksRead) {
        return lacks(Scope::TasksRead);
    }
    let object = match caldav::find(&caller.reads, caller.id, cal, name).await {
        Ok(Some(object)) => object,
        Ok(None) => return plain(StatusCode::NOT_FOUND, "No such task."),
        Err(err) => return db_error(err),
    };
    let etag = object.task.etag();
    let matched = req
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
    if matched {
        return HttpResponse::NotModified().insert_header((header::ETAG, etag)).finish();
    }
    let host = uid_host(state);
    let parents = parent_uids(caller, std::slice::from_ref(&object), &host).await;
    let text =
        render(&object, object.task.parent_id.and_then(|p| parents.get(&p)).map(String::as_str), &host);
    HttpResponse::Ok()
        .insert_header((header::ETAG, etag))
        .insert_header((header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE)))
        .body(text)
}

fn etags(req: &HttpRequest, name: header::HeaderName) -> Option<Vec<String>> {
    let values: Vec<String> = req
        .headers()
        .get_all(name)
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().trim_start_matches("W/").to_owned())
        .filter(|t| !t.is_empty())
        .collect();
    (!values.is_empty()).then_some(values)
}

pub async fn put(
    req: &HttpRequest,
    state: &State,
    caller: &Caller,
    cal: Cal,
    name: &str,
    body: &[u8],
) -> HttpResponse {
    if !caller.can(Scope::TasksWrite) {
        return lacks(Scope::TasksWrite);
    }
    match props::project_of(caller, cal).await {
        Ok(_) => {}
        Err(None) => return plain(StatusCode::CONFLICT, "No such calendar: create it first."),
        Err(Some(err)) => return db_error(err),
    }
    if body.len() > props::MAX_RESOURCE_SIZE {
        return condition(
            StatusCode::FORBIDDEN,
            "<c:max-resource-size/>",
            "The calendar object is too large.",
        );
    }
    let content_type = req.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    if !content_type.is_empty() && !content_type.to_ascii_lowercase().starts_with("text/calendar") {
        return condition(StatusCode::FORBIDDEN, "<c:supported-calendar-data/>", "Send text/calendar.");
    }
    let todo = match read::parse_bytes(body).and_then(|cal| read::todo(&cal)) {
        Ok(todo) => todo,
        Err(ReadError::Invalid(why)) => {
            return condition(StatusCode::FORBIDDEN, "<c:valid-calendar-data/>", &why);
        }
        Err(ReadError::Unsupported(why)) => {
            return condition(StatusCode::FORBIDDEN, "<c:supported-calendar-component/>", &why);
        }
        Err(ReadError::NotOneObject(why)) => {
            return condition(StatusCode::FORBIDDEN, "<c:valid-calendar-object-resource/>", &why);
        }
    };
    // The store keeps UIDs and names of at most 255 bytes (as most servers bound them); longer
    // is the client's data to fix, said before any write is tried.
    if todo.uid.len() > MAX_NAME_BYTES {
        return condition(
            StatusCode::FORBIDDEN,
            "<c:valid-calendar-object-resource/>",
            &format!("The UID is longer than {MAX_NAME_BYTES} bytes."),
        );
    }
    if name.len() > MAX_NAME_BYTES {
        return plain(
            StatusCode::BAD_REQUEST,
            &format!("Resource names are at most {MAX_NAME_BYTES} bytes."),
        );
    }
    let condition_sent = match (etags(req, header::IF_MATCH), etags(req, header::IF_NONE_MATCH)) {
        (Some(tags), _) if tags.iter().any(|t| t == "*") => Condition::Present,
        (Some(tags), _) => Condition::Matches(tags),
        (None, Some(tags)) if tags.iter().any(|t| t == "*") => Condition::Absent,
        _ => Condition::None,
    };
    let command = Command::PutObject(Box::new(Put {
        project: cal,
        name: name.to_owned(),
        todo,
        condition: condition_sent,
        uid_host: uid_host(state),
    }));
    match state.actors.execute(caller.id, command).await {
        // The stored object is this server's rendering of what was sent, so no ETag: the client
        // reads it back (RFC 4791 §5.3.4).
        Ok(Outcome::Created(_)) => HttpResponse::Created().finish(),
        Ok(_) => HttpResponse::NoContent().finish(),
        Err(err) => write_refused(err),
    }
}

pub async fn delete(req: &HttpRequest, state: &State, caller: &Caller, cal: Cal, name: &str) -> HttpResponse {
    if !caller.can(Scope::TasksWrite) {
        return lacks(Scope::TasksWrite);
    }
    let object = match caldav::find(&state.pool, caller.id, cal, name).await {
        Ok(Some(object)) => object,
        Ok(None) => return plain(StatusCode::NOT_FOUND, "No such task."),
        Err(err) => return db_error(err),
    };
    if let Some(tags) = etags(req, header::IF_MATCH)
        && !tags.iter().any(|t| *t == object.task.etag() || t == "*")
    {
        return plain(StatusCode::PRECONDITION_FAILED, "The task changed since you read it.");
    }
    // Into the trash, as a REST delete: restorable, and the name answers 404 from now on.
    let command = Command::Delete { id: object.task.id, if_match: IfMatch(Some(vec![object.task.version])) };
    match state.actors.execute(caller.id, command).await {
        Ok(_) => HttpResponse::NoContent().finish(),
        Err(err) => write_refused(err),
    }
}

/// A refused write, as a calendar client understands it.
pub fn write_refused(err: ActorError) -> HttpResponse {
    match err {
        ActorError::Write(WriteError::PreconditionFailed) => {
            plain(StatusCode::PRECONDITION_FAILED, "The task changed since you read it.")
        }
        ActorError::Write(WriteError::NotFound) => plain(StatusCode::NOT_FOUND, "No such task."),
        ActorError::Write(WriteError::Invalid(errors)) => {
            let text: Vec<String> = errors.iter().map(|e| format!("{}: {}", e.field, e.message)).collect();
            condition(StatusCode::FORBIDDEN, "<c:valid-calendar-object-resource/>", &text.join("; "))
        }
        ActorError::Write(WriteError::CalDav(Conflict::Uid { project, name })) => condition(
            StatusCode::CONFLICT,
            &format!(
                "<c:no-uid-conflict><d:href>{}</d:href></c:no-uid-conflict>",
                xml::escape(&object_href(project, &name))
            ),
            "Another task in your calendars has this UID.",
        ),
        ActorError::Write(WriteError::CalDav(Conflict::NameElsewhere)) => condition(
            StatusCode::CONFLICT,
            "<d:resource-must-be-null/>",
            "Another of your calendars has a task at this name: names, like UIDs, are unique per account.",
        ),
        ActorError::Write(WriteError::CalDav(Conflict::Taken)) => {
            condition(StatusCode::CONFLICT, "<d:resource-must-be-null/>", "This address is taken.")
        }
        ActorError::Write(WriteError::TaskLimit(max)) => condition(
            StatusCode::INSUFFICIENT_STORAGE,
            "<d:quota-not-exceeded/>",
            &format!("An account holds at most {max} tasks, trashed ones included."),
        ),
        other => ApiError::from(other).error_response(),
    }
}
