//! Headers every response carries, so a browser treats the API's answers as data and the docs
//! page as the only document, and (when configured behind TLS) never falls back to plain HTTP.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderValue};
use actix_web::middleware::Next;

/// The docs page runs Swagger UI from this origin: its own scripts and styles (the bundle sets
/// inline styles), its data-URI icons, and fetches of `/openapi.json`. Nothing else.
const DOCS_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
    img-src 'self' data:; font-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'none'; \
    frame-ancestors 'none'";

/// Pages behind links in emails (`web::pages`): plain HTML whose only active part is a form
/// posting back to this origin. No script, style, image or frame.
const PAGES_CSP: &str = "default-src 'none'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

/// Every other answer is JSON or plain text: nothing in it may run, load or be framed.
const API_CSP: &str = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

pub async fn middleware(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
    hsts: Option<HeaderValue>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let csp = if req.path() == "/docs" || req.path().starts_with("/docs/") {
        DOCS_CSP
    } else if req.path().starts_with(super::pages::PREFIX) {
        PAGES_CSP
    } else {
        API_CSP
    };
    let mut response = next.call(req).await?;
    let headers = response.headers_mut();
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(csp));
    if let Some(hsts) = hsts {
        headers.insert(header::STRICT_TRANSPORT_SECURITY, hsts);
    }
    Ok(response)
}

/// The HSTS value for a configured max-age; none when it is 0.
pub fn hsts_value(max_age_secs: u64) -> Option<HeaderValue> {
    (max_age_secs > 0)
        .then(|| format!("max-age={max_age_secs}; includeSubDomains"))
        .and_then(|value| HeaderValue::from_str(&value).ok())
}
