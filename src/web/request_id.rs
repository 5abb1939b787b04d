//! The outermost middleware: a request id for every request (honouring a well-formed incoming
//! `X-Request-Id`), a tracing span, and request metrics by route pattern and status.

use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::Method;
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use tracing::Instrument;

pub const REQUEST_ID_HEADER: HeaderName = HeaderName::from_static("x-request-id");

/// What an error response needs to know about the request it answers.
#[derive(Debug, Clone, Default)]
pub struct RequestContext {
    pub request_id: String,
    pub path: String,
}

tokio::task_local! {
    static CONTEXT: RequestContext;
}

impl RequestContext {
    /// The context of the request being served, or an empty one outside a request.
    pub fn current() -> Self {
        CONTEXT.try_with(Clone::clone).unwrap_or_default()
    }
}

/// Accepts ids a proxy or client might send (UUIDs, ULIDs, trace ids) and nothing that could
/// smuggle control characters or bloat logs.
fn is_well_formed(id: &str) -> bool {
    (1..=128).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b))
}

/// The method as a metrics label. actix accepts any token as a method, and each distinct label
/// is a new series kept for the life of the process, so unknown methods share one label.
fn method_label(method: &Method) -> &'static str {
    const KNOWN: &[&str] = &["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT"];
    KNOWN.iter().find(|known| **known == method.as_str()).copied().unwrap_or("other")
}

pub async fn middleware(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let request_id = req
        .headers()
        .get(&REQUEST_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|id| is_well_formed(id))
        .map_or_else(|| uuid::Uuid::now_v7().to_string(), str::to_owned);
    let route = req.match_pattern().unwrap_or_else(|| "unmatched".to_owned());
    let method = method_label(req.method());
    let span = tracing::info_span!(
        "http_request",
        %method,
        %route,
        request_id = %request_id,
        user_id = tracing::field::Empty,
        status = tracing::field::Empty,
    );
    let context = RequestContext { request_id: request_id.clone(), path: req.path().to_owned() };
    let started = Instant::now();

    // Handlers and extractors turn their errors into responses inside this scope, so problem
    // documents carry the request id. (Holding a clone of the request across `next.call` is not
    // an option: actix needs the request uniquely owned while routing.)
    let mut response = CONTEXT.scope(context, next.call(req).instrument(span.clone())).await?;

    let status = response.status().as_u16();
    let elapsed = started.elapsed().as_secs_f64();
    span.record("status", status);
    span.in_scope(|| tracing::info!(latency_ms = elapsed * 1000.0, "request finished"));
    let labels = [("method", method.to_owned()), ("route", route), ("status", status.to_string())];
    metrics::counter!("http_requests_total", &labels).increment(1);
    metrics::histogram!("http_request_duration_seconds", &labels).record(elapsed);

    if let Ok(value) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert(REQUEST_ID_HEADER, value);
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::{Method, is_well_formed, method_label};

    #[test]
    fn made_up_methods_share_one_metrics_label() {
        assert_eq!(method_label(&Method::PATCH), "PATCH");
        assert_eq!(method_label(&Method::from_bytes(b"BREW").unwrap()), "other");
        assert_eq!(method_label(&Method::from_bytes(b"get").unwrap()), "other");
    }

    #[test]
    fn accepts_common_id_formats() {
        assert!(is_well_formed("0195f3c2-7d1e-7cc0-9a7e-3f1b2a4c5d6e"));
        assert!(is_well_formed("01HZX3K9J8Q7W6E5R4T3Y2U1I0"));
        assert!(is_well_formed("trace.abc:1_2"));
    }

    #[test]
    fn rejects_empty_long_or_odd_ids() {
        assert!(!is_well_formed(""));
        assert!(!is_well_formed(&"a".repeat(129)));
        assert!(!is_well_formed("has space"));
        assert!(!is_well_formed("new\nline"));
    }
}
