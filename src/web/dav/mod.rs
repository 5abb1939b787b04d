//! CalDAV (RFC 4791, with RFC 4918 WebDAV and RFC 6578 sync): calendar clients read and write
//! tasks as VTODOs. Like every door it only translates: a PUT becomes one command for the
//! user's actor (`commands::caldav`), a DELETE a trash, MKCALENDAR a project; reads go through
//! `db::caldav`.
//!
//! Layout: `/.well-known/caldav` redirects to `/dav/`; the principal is `/dav/principal/`, the
//! calendar home `/dav/calendars/`, a calendar `/dav/calendars/{inbox|project id}/`, a task
//! `/dav/calendars/{calendar}/{name}`. Clients sign in with HTTP Basic (the account's email and
//! an API token as the password) or a Bearer token.

mod auth;
mod collection;
mod filter;
mod object;
mod path;
mod props;
mod report;
pub mod xml;

use actix_web::http::header::{self, HeaderValue};
use actix_web::http::{Method, StatusCode};
use actix_web::{HttpRequest, HttpResponse, web};

use crate::web::state::AppState;
pub use auth::Caller;

/// The shared state, as handlers hold it (cheap to clone into a streamed body).
pub type State = web::Data<AppState>;
use path::Target;

pub const ROOT: &str = "/dav/";
pub const PRINCIPAL: &str = "/dav/principal/";
pub const HOME: &str = "/dav/calendars/";

/// The `DAV` header: WebDAV classes 1 and 3, CalDAV, and MKCOL with a body (RFC 5689).
const DAV_CLASSES: &str = "1, 3, calendar-access, extended-mkcol";
const ALLOW: &str = "OPTIONS, GET, HEAD, PUT, DELETE, PROPFIND, PROPPATCH, REPORT, MKCALENDAR, MKCOL";

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/.well-known/caldav", web::to(well_known)).route("/dav", web::to(well_known)).service(
        web::scope("/dav")
            // Its own bound, not the API's: a calendar object may be as large as
            // `max-resource-size` says, and a PUT of that size must get through.
            .app_data(web::PayloadConfig::new(props::MAX_RESOURCE_SIZE))
            .default_service(web::to(dispatch)),
    );
}

/// RFC 6764: the well-known address points at the DAV root, for every method.
async fn well_known() -> HttpResponse {
    HttpResponse::MovedPermanently().insert_header((header::LOCATION, ROOT)).finish()
}

#[tracing::instrument(skip_all, fields(method = %req.method(), user_id = tracing::field::Empty))]
async fn dispatch(req: HttpRequest, state: State, body: web::Bytes) -> HttpResponse {
    let Some(target) = path::parse(req.path()) else {
        return plain(StatusCode::NOT_FOUND, "No such resource.");
    };
    if req.method() == Method::OPTIONS {
        return options();
    }
    let mut caller = match auth::authenticate(&req, &state).await {
        Ok(caller) => caller,
        Err(refusal) => return refusal,
    };
    let method = req.method().as_str();
    if matches!(method, "PROPFIND" | "REPORT" | "GET" | "HEAD") {
        caller.reads = state.reads.pool(crate::web::reads::presented(&req)).await.clone();
    }
    let answer = match (method, &target) {
        ("PROPFIND", _) => props::propfind(&req, &state, &caller, &target, &body).await,
        ("PROPPATCH", Target::Collection(cal)) => collection::proppatch(&state, &caller, *cal, &body).await,
        ("PROPPATCH", _) => props::proppatch_refused(&req, &body),
        ("REPORT", _) => report::report(&state, &caller, &target, &body).await,
        ("MKCALENDAR" | "MKCOL", Target::Collection(_)) => {
            collection::make(&state, &caller, &target, method == "MKCOL", &body).await
        }
        ("DELETE", Target::Collection(cal)) => collection::delete(&state, &caller, *cal).await,
        ("GET" | "HEAD", Target::Object(cal, name)) => object::get(&req, &state, &caller, *cal, name).await,
        ("PUT", Target::Object(cal, name)) => object::put(&req, &state, &caller, *cal, name, &body).await,
        ("DELETE", Target::Object(cal, name)) => object::delete(&req, &state, &caller, *cal, name).await,
        ("GET" | "HEAD", _) => plain(StatusCode::OK, "CalDAV: point a calendar client at this address."),
        _ => not_allowed(),
    };
    with_dav(answer)
}

fn options() -> HttpResponse {
    with_dav(HttpResponse::Ok().insert_header((header::ALLOW, ALLOW)).finish())
}

fn not_allowed() -> HttpResponse {
    HttpResponse::MethodNotAllowed().insert_header((header::ALLOW, ALLOW)).finish()
}

fn with_dav(mut response: HttpResponse) -> HttpResponse {
    let headers = response.headers_mut();
    headers.insert(header::HeaderName::from_static("dav"), HeaderValue::from_static(DAV_CLASSES));
    // Task data and tokens: no shared cache may keep it.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("private, no-cache"));
    response
}

/// A short text answer, for statuses that carry no DAV condition.
pub fn plain(status: StatusCode, text: &str) -> HttpResponse {
    HttpResponse::build(status).content_type("text/plain; charset=utf-8").body(format!("{text}\n"))
}

/// A 207 with a multistatus body.
pub fn multistatus(body: String) -> HttpResponse {
    HttpResponse::build(StatusCode::MULTI_STATUS).content_type("application/xml; charset=utf-8").body(body)
}

/// A refused precondition (RFC 4918 §16), with its condition element and a human message.
pub fn condition(status: StatusCode, element: &str, message: &str) -> HttpResponse {
    let inner = format!("{element}<d:responsedescription>{}</d:responsedescription>", xml::escape(message));
    HttpResponse::build(status).content_type("application/xml; charset=utf-8").body(xml::error_body(&inner))
}
