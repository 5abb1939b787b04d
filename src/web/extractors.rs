//! Turns actix's own extractor failures into problem documents, so a malformed body or query
//! looks like every other error.

use actix_web::error::{JsonPayloadError, PathError, PayloadError, QueryPayloadError};
use std::time::Duration;

use actix_web::{HttpRequest, web};

use super::problem::ApiError;

pub fn json_config(limit: usize, body_timeout: Duration) -> web::JsonConfig {
    web::JsonConfig::default()
        .limit(limit)
        .error_handler(move |err, _req: &HttpRequest| json_error(err, limit, body_timeout).into())
}

pub fn query_config() -> web::QueryConfig {
    web::QueryConfig::default().error_handler(|err, _| {
        let QueryPayloadError::Deserialize(err) = err else {
            return ApiError::BadRequest("The query string is malformed.".into()).into();
        };
        ApiError::BadRequest(format!("Invalid query parameter: {err}")).into()
    })
}

pub fn path_config() -> web::PathConfig {
    web::PathConfig::default().error_handler(|err, _| {
        let PathError::Deserialize(err) = err else {
            return ApiError::NotFound.into();
        };
        tracing::debug!(%err, "path segment did not parse");
        // An id that cannot exist is simply not found; it reveals nothing.
        ApiError::NotFound.into()
    })
}

fn json_error(err: JsonPayloadError, limit: usize, body_timeout: Duration) -> ApiError {
    match err {
        JsonPayloadError::OverflowKnownLength { .. } | JsonPayloadError::Overflow { .. } => {
            ApiError::PayloadTooLarge { limit }
        }
        JsonPayloadError::Payload(PayloadError::Overflow) => ApiError::PayloadTooLarge { limit },
        JsonPayloadError::Payload(PayloadError::Io(err)) if err.kind() == std::io::ErrorKind::TimedOut => {
            ApiError::RequestTimeout { secs: body_timeout.as_secs() }
        }
        JsonPayloadError::ContentType => ApiError::UnsupportedMediaType,
        // Bodies are first read as plain JSON values (`json::Json`), so a failure here is
        // malformed JSON or a repeated key; the wrong shape is found afterwards, as a 422.
        JsonPayloadError::Deserialize(err) => ApiError::BadRequest(format!("Malformed JSON: {err}")),
        other => ApiError::BadRequest(format!("Could not read the request body: {other}")),
    }
}

/// Well-formed JSON of the wrong shape: a 422 naming the field where serde says which.
pub(crate) fn data_error(err: &serde_json::Error) -> ApiError {
    let message = err.to_string();
    let field = message
        .strip_prefix("missing field `")
        .or_else(|| message.strip_prefix("unknown field `"))
        .and_then(|rest| rest.split('`').next())
        .unwrap_or("body");
    let message = message.split(" at line ").next().unwrap_or(&message).to_owned();
    ApiError::field(field, message)
}
