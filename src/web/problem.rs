//! The one HTTP error type. Every failure a client sees is an RFC 7807 problem document.
//!
//! Error policy for the whole crate: startup and workers use `anyhow` with `.context()`;
//! the domain and database layers return their own enums; only the web layer turns them into
//! [`ApiError`]. Internal errors are logged with their full cause chain and shown to the client
//! as an opaque 500 that carries the request id. Write failures from the commands and the actors
//! are mapped to it in `problem/writes.rs`.

mod writes;

use std::fmt;

use actix_web::http::header::{self, HeaderValue};
use actix_web::http::{Method, StatusCode};
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;

use super::request_id::RequestContext;
use crate::domain::Scope;

/// One rule a field broke, for 422 answers.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self { field: field.into(), message: message.into() }
    }
}

/// What went wrong, for programs: every problem document's `code` is one of these.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ProblemCode {
    BadRequest,
    TokenMissing,
    TokenInvalid,
    TokenExpired,
    TokenRevoked,
    TicketInvalid,
    InvalidCredentials,
    Forbidden,
    InsufficientScope,
    NotFound,
    MethodNotAllowed,
    EmailTaken,
    NothingToVerify,
    ProjectNameTaken,
    /// A CalDAV resource's UID or address is another's.
    CalendarConflict,
    TaskLimitReached,
    ProjectLimitReached,
    TokenLimitReached,
    WebhookLimitReached,
    WebhookDisabled,
    CalendarFeedLimitReached,
    IdempotencyKeyInUse,
    IdempotencyKeyReused,
    PreconditionFailed,
    PayloadTooLarge,
    UnsupportedMediaType,
    UnsupportedContentEncoding,
    RequestTimeout,
    ValidationFailed,
    ResyncRequired,
    RateLimited,
    TooManyStreams,
    Overloaded,
    TooManyPendingWrites,
    WriteTimedOut,
    WriteInterrupted,
    DatabaseUnavailable,
    DatabaseBusy,
    MigrationsPending,
    InternalError,
}

/// The wire name, for the `type` URN and logs; serde's spelling is the one source of it.
impl fmt::Display for ProblemCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match serde_json::to_value(self) {
            Ok(serde_json::Value::String(name)) => f.write_str(&name),
            _ => Err(fmt::Error),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("bad request: {0}")]
    BadRequest(String),
    /// `code` says which kind of credential failure, without saying which check failed.
    #[error("unauthorized ({code})")]
    Unauthorized { code: ProblemCode },
    #[error("forbidden")]
    Forbidden,
    /// An API token called a route outside its scopes; `None`: the route takes a login only.
    #[error("insufficient scope")]
    InsufficientScope { needs: Option<Scope> },
    #[error("not found")]
    NotFound,
    /// A known path asked with a method none of its routes serves; `allow` lists those they do.
    #[error("method {method} not allowed")]
    MethodNotAllowed { method: Method, allow: Vec<Method> },
    #[error("conflict: {detail}")]
    Conflict { code: ProblemCode, detail: String },
    #[error("precondition failed")]
    PreconditionFailed,
    #[error("payload too large")]
    PayloadTooLarge { limit: usize },
    #[error("unsupported media type")]
    UnsupportedMediaType,
    /// A compressed request body: refused before anything inflates it.
    #[error("unsupported content encoding")]
    UnsupportedEncoding,
    #[error("request body too slow")]
    RequestTimeout { secs: u64 },
    #[error("validation failed")]
    Validation(Vec<FieldError>),
    #[error("unprocessable: {detail}")]
    Unprocessable { code: ProblemCode, detail: String },
    /// A rate limit of `limit` requests a minute was reached.
    #[error("too many requests")]
    TooManyRequests { retry_after_secs: u64, limit: u32 },
    /// A limit counted in the database over a longer window than a minute, such as
    /// verification emails per hour.
    #[error("throttled: {detail}")]
    Throttled { retry_after_secs: u64, detail: String },
    /// The client's position in the change feed cannot be followed; it must start again.
    #[error("gone: {detail}")]
    Gone { code: ProblemCode, detail: String },
    /// The caller has as many event streams open as one user may.
    #[error("too many event streams")]
    TooManyStreams { limit: usize },
    #[error("service unavailable: {reason}")]
    Unavailable { reason: ProblemCode, retry_after_secs: u64 },
    /// Operation `index` of a batch failed with `error`; nothing of the batch was applied.
    #[error("operation {index}: {error}")]
    InOperation { index: usize, error: Box<ApiError> },
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl ApiError {
    pub fn field(field: &str, message: impl Into<String>) -> Self {
        Self::Validation(vec![FieldError::new(field, message)])
    }

    pub fn internal(err: impl Into<anyhow::Error>) -> Self {
        Self::Internal(err.into())
    }

    /// A database failure: an outage or exhausted pool is a 503 the client may retry; anything
    /// else is a bug and an opaque 500.
    pub fn from_db(err: sqlx::Error) -> Self {
        let code = match &err {
            sqlx::Error::Database(db) => db.code().map(|c| c.into_owned()),
            _ => None,
        };
        match (err, code.as_deref()) {
            (err @ (sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) | sqlx::Error::PoolClosed), _) => {
                tracing::warn!(error = %err, "database unavailable");
                Self::Unavailable { reason: ProblemCode::DatabaseUnavailable, retry_after_secs: 2 }
            }
            // Deadlock, serialization failure, lock or statement timeout: contention, worth a retry.
            (err, Some("40P01" | "40001" | "55P03" | "57014")) => {
                tracing::warn!(error = %err, "database contention");
                Self::Unavailable { reason: ProblemCode::DatabaseBusy, retry_after_secs: 1 }
            }
            // Text PostgreSQL cannot store (NUL): the domain parsers should catch it first.
            (_, Some("22021" | "22P05")) => {
                Self::BadRequest("The request contains characters that cannot be stored.".into())
            }
            (err, _) => Self::Internal(err.into()),
        }
    }

    /// Field errors from domain parsing.
    pub fn invalid(errors: Vec<crate::domain::Invalid>) -> Self {
        Self::Validation(errors.into_iter().map(|e| FieldError::new(e.field, e.message)).collect())
    }

    fn code(&self) -> ProblemCode {
        match self {
            Self::BadRequest(_) => ProblemCode::BadRequest,
            Self::Unauthorized { code } => *code,
            Self::Forbidden => ProblemCode::Forbidden,
            Self::InsufficientScope { .. } => ProblemCode::InsufficientScope,
            Self::NotFound => ProblemCode::NotFound,
            Self::MethodNotAllowed { .. } => ProblemCode::MethodNotAllowed,
            Self::Conflict { code, .. } | Self::Unprocessable { code, .. } | Self::Gone { code, .. } => *code,
            Self::PreconditionFailed => ProblemCode::PreconditionFailed,
            Self::PayloadTooLarge { .. } => ProblemCode::PayloadTooLarge,
            Self::UnsupportedMediaType => ProblemCode::UnsupportedMediaType,
            Self::UnsupportedEncoding => ProblemCode::UnsupportedContentEncoding,
            Self::RequestTimeout { .. } => ProblemCode::RequestTimeout,
            Self::Validation(_) => ProblemCode::ValidationFailed,
            Self::TooManyRequests { .. } | Self::Throttled { .. } => ProblemCode::RateLimited,
            Self::TooManyStreams { .. } => ProblemCode::TooManyStreams,
            Self::Unavailable { reason, .. } => *reason,
            Self::InOperation { error, .. } => error.code(),
            Self::Internal(_) => ProblemCode::InternalError,
        }
    }

    fn detail(&self) -> String {
        match self {
            Self::BadRequest(detail) => detail.clone(),
            Self::Unauthorized { .. } => "Missing, invalid, expired or revoked credentials.".into(),
            Self::Forbidden => "You may not act on another user's resources.".into(),
            Self::InsufficientScope { needs: Some(scope) } => {
                format!("This API token lacks the `{scope}` scope this route needs.")
            }
            Self::InsufficientScope { needs: None } => {
                "API tokens cannot call this route: it takes a login token, from signing in.".into()
            }
            Self::NotFound => "No such resource.".into(),
            Self::MethodNotAllowed { method, allow } => {
                format!("{method} is not served here; this path serves {}.", allow_value(allow))
            }
            Self::Conflict { detail, .. }
            | Self::Unprocessable { detail, .. }
            | Self::Gone { detail, .. }
            | Self::Throttled { detail, .. } => detail.clone(),
            Self::TooManyStreams { limit } => {
                format!("At most {limit} event streams per user are open at once; close one first.")
            }
            Self::PreconditionFailed => "The resource changed since the ETag given in If-Match.".into(),
            Self::PayloadTooLarge { limit } => format!("The request body exceeds {limit} bytes."),
            Self::UnsupportedMediaType => "Send the body as application/json.".into(),
            Self::UnsupportedEncoding => {
                "Request bodies must not be compressed: send them without Content-Encoding.".into()
            }
            Self::RequestTimeout { secs } => format!("The request body did not arrive within {secs} s."),
            Self::Validation(errors) => match errors.as_slice() {
                [one] => format!("{}: {}", one.field, one.message),
                _ => "Several fields are invalid.".into(),
            },
            Self::TooManyRequests { limit, .. } => {
                format!("Rate limit of {limit} requests a minute reached; retry after Retry-After seconds.")
            }
            Self::Unavailable { .. } => "The service is temporarily unavailable; retry later.".into(),
            Self::InOperation { index, error } => {
                format!("Operation {index} failed, so none was applied: {}", error.detail())
            }
            Self::Internal(_) => {
                "An unexpected error occurred; quote the request id when reporting it.".into()
            }
        }
    }

    /// Field errors, with a batch operation's fields named as `operations[i].field`.
    fn field_errors(&self) -> Option<Vec<FieldError>> {
        match self {
            Self::Validation(errors) => Some(errors.clone()),
            Self::InOperation { index, error } => error.field_errors().map(|errors| {
                errors
                    .into_iter()
                    .map(|e| FieldError::new(format!("operations[{index}].{}", e.field), e.message))
                    .collect()
            }),
            _ => None,
        }
    }

    fn retry_after(&self) -> Option<u64> {
        match self {
            Self::TooManyRequests { retry_after_secs, .. }
            | Self::Throttled { retry_after_secs, .. }
            | Self::Unavailable { retry_after_secs, .. } => Some(*retry_after_secs),
            Self::TooManyStreams { .. } => Some(5),
            _ => None,
        }
    }
}

/// What a problem says, for doors that answer in their own format (MCP tool errors): the
/// status, code, detail, field errors (a batch's under `operations[i].`), the failed batch
/// operation and `Retry-After`. An internal error is logged here, as a response would log it.
#[derive(Debug, Clone, Serialize)]
pub struct ProblemSummary {
    pub status: u16,
    pub code: ProblemCode,
    pub detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub errors: Option<Vec<FieldError>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub operation: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_after_secs: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub required_scope: Option<&'static str>,
}

impl ApiError {
    pub fn summary(&self) -> ProblemSummary {
        if let Self::Internal(err) = self {
            let context = RequestContext::current();
            tracing::error!(request_id = %context.request_id, error = ?ErrorChain(err), "internal error");
        }
        ProblemSummary {
            status: self.status_code().as_u16(),
            code: self.code(),
            detail: self.detail(),
            errors: self.field_errors(),
            operation: match self {
                Self::InOperation { index, .. } => Some(*index),
                _ => None,
            },
            retry_after_secs: self.retry_after(),
            required_scope: match self {
                Self::InsufficientScope { needs } => needs.map(Scope::as_str),
                _ => None,
            },
        }
    }
}

/// The wire shape, also used for the OpenAPI document.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Problem {
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    pub instance: String,
    pub code: ProblemCode,
    pub request_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub errors: Option<Vec<FieldError>>,
    /// For a failed batch: the index of the operation that failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub operation: Option<usize>,
    /// For `insufficient_scope`: the scope the route needs; absent when it takes a login only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub required_scope: Option<&'static str>,
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::Unauthorized { .. } => StatusCode::UNAUTHORIZED,
            Self::Forbidden | Self::InsufficientScope { .. } => StatusCode::FORBIDDEN,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            Self::Conflict { .. } => StatusCode::CONFLICT,
            Self::PreconditionFailed => StatusCode::PRECONDITION_FAILED,
            Self::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType | Self::UnsupportedEncoding => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::RequestTimeout { .. } => StatusCode::REQUEST_TIMEOUT,
            Self::Validation(_) | Self::Unprocessable { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            Self::TooManyRequests { .. } | Self::TooManyStreams { .. } | Self::Throttled { .. } => {
                StatusCode::TOO_MANY_REQUESTS
            }
            Self::Gone { .. } => StatusCode::GONE,
            Self::InOperation { error, .. } => error.status_code(),
            Self::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let status = self.status_code();
        let context = RequestContext::current();
        if let Self::Internal(err) = self {
            tracing::error!(request_id = %context.request_id, error = ?ErrorChain(err), "internal error");
        }
        let code = self.code();
        let problem = Problem {
            kind: format!("urn:todo:problem:{code}"),
            title: status.canonical_reason().unwrap_or("Error").to_owned(),
            status: status.as_u16(),
            detail: self.detail(),
            instance: context.path,
            code,
            request_id: context.request_id,
            errors: self.field_errors(),
            operation: match self {
                Self::InOperation { index, .. } => Some(*index),
                _ => None,
            },
            required_scope: match self {
                Self::InsufficientScope { needs } => needs.map(Scope::as_str),
                _ => None,
            },
        };
        let mut response = HttpResponse::build(status);
        response.content_type("application/problem+json");
        if let Some(secs) = self.retry_after() {
            response.insert_header((header::RETRY_AFTER, secs));
        }
        if let Self::TooManyRequests { retry_after_secs, limit } = self {
            // draft-ietf-httpapi-ratelimit-headers: the budget, what is left of it, and when it refills.
            response.insert_header(("RateLimit-Limit", *limit));
            response.insert_header(("RateLimit-Remaining", 0));
            response.insert_header(("RateLimit-Reset", *retry_after_secs));
            response.insert_header(("RateLimit-Policy", format!("{limit};w=60")));
        }
        if let Self::MethodNotAllowed { allow, .. } = self {
            response.insert_header((header::ALLOW, allow_value(allow)));
        }
        if matches!(self, Self::Unauthorized { .. }) {
            response.insert_header((header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer")));
        }
        if let Self::InsufficientScope { needs } = self {
            // RFC 6750 §3.1; `scope` is left out where no scope would do.
            let challenge = match needs {
                Some(scope) => format!(r#"Bearer error="insufficient_scope", scope="{scope}""#),
                None => r#"Bearer error="insufficient_scope", error_description="a login token is required""#
                    .to_owned(),
            };
            if let Ok(value) = HeaderValue::from_str(&challenge) {
                response.insert_header((header::WWW_AUTHENTICATE, value));
            }
        }
        response.json(problem)
    }
}

/// The `Allow` list: `GET, HEAD, PATCH`.
fn allow_value(methods: &[Method]) -> String {
    methods.iter().map(Method::as_str).collect::<Vec<_>>().join(", ")
}

/// Formats an error with every cause on its own line, for logs only.
struct ErrorChain<'a>(&'a anyhow::Error);

impl fmt::Debug for ErrorChain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)?;
        for cause in self.0.chain().skip(1) {
            write!(f, "\n  caused by: {cause}")?;
        }
        Ok(())
    }
}
