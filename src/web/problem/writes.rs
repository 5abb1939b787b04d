//! How a failed write becomes a problem document. Writes fail in the command layer and in the
//! actor that runs them; neither knows HTTP, so their errors are mapped here, beside the one
//! HTTP error type, for every route that writes.

use super::{ApiError, ProblemCode};
use crate::commands::WriteError;
use crate::web::actors::ActorError;

impl From<ActorError> for ApiError {
    fn from(err: ActorError) -> Self {
        match err {
            ActorError::Busy => {
                Self::Unavailable { reason: ProblemCode::TooManyPendingWrites, retry_after_secs: 1 }
            }
            ActorError::TimedOut => {
                Self::Unavailable { reason: ProblemCode::WriteTimedOut, retry_after_secs: 2 }
            }
            ActorError::Stopped => {
                Self::Unavailable { reason: ProblemCode::WriteInterrupted, retry_after_secs: 1 }
            }
            ActorError::Write(err) => err.into(),
        }
    }
}

impl From<WriteError> for ApiError {
    fn from(err: WriteError) -> Self {
        match err {
            WriteError::NotFound => Self::NotFound,
            WriteError::PreconditionFailed => Self::PreconditionFailed,
            WriteError::Invalid(errors) => Self::invalid(errors),
            WriteError::IdempotencyKeyReused => Self::Unprocessable {
                code: ProblemCode::IdempotencyKeyReused,
                detail: "This Idempotency-Key was used with a different request.".into(),
            },
            WriteError::IdempotencyRace => Self::Conflict {
                code: ProblemCode::IdempotencyKeyInUse,
                detail: "A request with this Idempotency-Key is in progress; retry.".into(),
            },
            WriteError::TaskLimit(max) => Self::Conflict {
                code: ProblemCode::TaskLimitReached,
                detail: format!(
                    "An account holds at most {max} tasks, trashed ones included; delete some or empty the trash."
                ),
            },
            WriteError::ProjectLimit(max) => Self::Conflict {
                code: ProblemCode::ProjectLimitReached,
                detail: format!("An account holds at most {max} projects."),
            },
            WriteError::ProjectNameTaken => Self::Conflict {
                code: ProblemCode::ProjectNameTaken,
                detail: "You already have a project with this name (names ignore letter case).".into(),
            },
            WriteError::InBatch { index, error } => {
                Self::InOperation { index, error: Box::new((*error).into()) }
            }
            // Still busy after the command waited its turn: rare, and safe to retry.
            WriteError::TreeBusy => {
                Self::Unavailable { reason: ProblemCode::DatabaseBusy, retry_after_secs: 1 }
            }
            // CalDAV answers these itself; nothing else can meet them.
            WriteError::CalDav(conflict) => {
                Self::Conflict { code: ProblemCode::CalendarConflict, detail: conflict.to_string() }
            }
            // Only the email pages send a link with a write, and they answer this themselves.
            WriteError::LinkUsed => Self::internal(anyhow::anyhow!("an API write carried an email link")),
            WriteError::Unexpected(what) => Self::internal(anyhow::anyhow!("unexpected outcome: {what}")),
            WriteError::Database(err) => Self::from_db(err),
            WriteError::Jobs(err) => Self::internal(err),
        }
    }
}

impl From<crate::commands::accounts::AccountError> for ApiError {
    fn from(err: crate::commands::accounts::AccountError) -> Self {
        use crate::commands::accounts::AccountError as E;
        match err {
            E::EmailTaken => Self::Conflict {
                code: ProblemCode::EmailTaken,
                detail: "An account with this email already exists.".into(),
            },
            E::TooManyVerifications { until } => Self::Throttled {
                retry_after_secs: u64::try_from((until - chrono::Utc::now()).num_seconds().max(1))
                    .unwrap_or(1),
                detail: "Too many verification emails for this account or address; retry after Retry-After seconds."
                    .into(),
            },
            E::NothingToVerify => Self::Conflict {
                code: ProblemCode::NothingToVerify,
                detail: "The account's email is verified and no change of address is waiting.".into(),
            },
            // The token's account was deleted while this request ran.
            E::AccountGone => Self::Unauthorized { code: ProblemCode::TokenInvalid },
            E::Request(crate::jobs::verification::RequestError::Enqueue(
                crate::jobs::EnqueueError::Database(err),
            )) => Self::from_db(err),
            E::Request(err) => Self::internal(err),
            E::Database(err) => Self::from_db(err),
        }
    }
}
