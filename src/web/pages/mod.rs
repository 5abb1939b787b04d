//! Server-rendered pages behind the links in emails: no JavaScript, no styles, every value
//! HTML-escaped, and a CSP that allows nothing but posting the page's own form (see
//! `security_headers`). Mail scanners open every link, so a GET only shows what the link would
//! do, with one button; the button's POST acts. A link that does not work gets a 4xx page that
//! says why, never a problem document or a stack trace.
//!
//! **A new kind of link** is a module here with its routes, a [`Purpose`](crate::links::Purpose),
//! and a line in [`configure`].

mod task;
mod unsubscribe;
mod verify;

pub use task::PATH as TASK_PATH;
pub use unsubscribe::PATH as UNSUBSCRIBE_PATH;

use std::sync::LazyLock;

use actix_web::body::BoxBody;
use actix_web::http::StatusCode;
use actix_web::http::header::{self, ContentType, HeaderMap};
use actix_web::{HttpRequest, HttpResponse, Responder, web};
use minijinja::context;
use serde::Serialize;

use crate::links::LinkError;

/// Every path under which pages are served; the security headers key their CSP on it.
pub const PREFIX: &str = "/email/";

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.configure(verify::configure).configure(task::configure).configure(unsubscribe::configure);
}

const PAGE_TEMPLATE: &str = include_str!("../../../templates/pages/page.html");

static TEMPLATES: LazyLock<minijinja::Environment<'static>> = LazyLock::new(|| {
    crate::render::environment(&[("page.html", PAGE_TEMPLATE)]).expect("the page template compiles")
});

/// A button that POSTs the link's token back to `action`.
#[derive(Debug, Clone, Serialize)]
pub struct Form {
    pub action: &'static str,
    pub token: String,
    pub button: &'static str,
}

/// One page: a status, a heading, some paragraphs, and at most one button.
#[derive(Debug, Clone)]
pub struct Page {
    pub status: StatusCode,
    pub title: String,
    pub paragraphs: Vec<String>,
    pub form: Option<Form>,
}

impl Page {
    pub fn new(status: StatusCode, title: impl Into<String>, paragraphs: &[&str]) -> Self {
        let paragraphs = paragraphs.iter().map(|p| (*p).to_owned()).collect();
        Self { status, title: title.into(), paragraphs, form: None }
    }

    pub fn with_paragraph(mut self, paragraph: String) -> Self {
        self.paragraphs.push(paragraph);
        self
    }

    pub fn with_form(mut self, form: Form) -> Self {
        self.form = Some(form);
        self
    }

    /// The page for a link that failed its signature, expiry or purpose check.
    pub fn for_link_error(err: LinkError) -> Self {
        match err {
            LinkError::Expired => Self::new(
                StatusCode::GONE,
                "This link has expired",
                &["Links in our emails work for a limited time. Ask the app for a new email."],
            ),
            LinkError::Invalid | LinkError::WrongPurpose => Self::new(
                StatusCode::BAD_REQUEST,
                "This link is not valid",
                &[
                    "It may have been cut short by your mail program. Open the whole link from the email, or ask the app for a new one.",
                ],
            ),
        }
    }

    pub fn used() -> Self {
        Self::new(StatusCode::GONE, "This link was already used", &["Each link in our emails works once."])
    }

    /// The database could not be asked; nothing changed, and trying again may work.
    pub fn unavailable(err: sqlx::Error) -> Self {
        tracing::error!(error = %err, "email page: database unavailable");
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "Please try again in a moment",
            &["The service is busy or briefly unavailable. Nothing was changed."],
        )
    }

    fn render(&self) -> HttpResponse {
        let values = context! { title => &self.title, paragraphs => &self.paragraphs, form => &self.form };
        let html = TEMPLATES.get_template("page.html").and_then(|t| t.render(values));
        match html {
            Ok(html) => HttpResponse::build(self.status)
                .content_type(ContentType::html())
                // A page carries a single-use token: no cache may keep it.
                .insert_header((header::CACHE_CONTROL, "no-store"))
                .body(html),
            Err(err) => {
                tracing::error!(error = %err, "rendering an email page");
                HttpResponse::InternalServerError().content_type(ContentType::plaintext()).body("Error")
            }
        }
    }
}

impl Responder for Page {
    type Body = BoxBody;

    fn respond_to(self, _: &HttpRequest) -> HttpResponse {
        self.render()
    }
}

/// The `token` of a query string or form body (`application/x-www-form-urlencoded`), read
/// without serde so a malformed one becomes this module's page, not the API's problem document.
pub fn token_in(encoded: &[u8]) -> Option<String> {
    url::form_urlencoded::parse(encoded)
        .find(|(name, _)| name == "token")
        .map(|(_, value)| value.into_owned())
}

/// Any method but GET, HEAD and POST on a page.
pub async fn method_not_allowed() -> HttpResponse {
    let page =
        Page::new(StatusCode::METHOD_NOT_ALLOWED, "Method not allowed", &["Open the link from the email."]);
    let mut response = page.render();
    response.headers_mut().insert(header::ALLOW, header::HeaderValue::from_static("GET, HEAD, POST"));
    response
}

/// A POST whose body is not a form.
pub fn not_a_form() -> Page {
    Page::new(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "Not a form",
        &["Use the button on the page the link opens."],
    )
}

/// Whether the request body is an HTML form's (`application/x-www-form-urlencoded`).
pub fn is_form(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/x-www-form-urlencoded"))
}
