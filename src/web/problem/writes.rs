//! How a failed write becomes a problem document. Writes fail in the command layer and in the
//! actor that runs them; neither knows HTTP, so their errors are mapped here, beside the one
//! HTTP error type, for every route that writes.

use super::ApiError;
use crate::commands::WriteError;
use crate::web::actors::ActorError;

impl From<ActorError> for ApiError {
    fn from(err: ActorError) -> Self {
        match err {
            ActorError::Busy => Self::Unavailable { reason: "too_many_pending_writes", retry_after_secs: 1 },
            ActorError::TimedOut => Self::Unavailable { reason: "write_timed_out", retry_after_secs: 2 },
            ActorError::Stopped => Self::Unavailable { reason: "write_interrupted", retry_after_secs: 1 },
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
                code: "idempotency_key_reused",
                detail: "This Idempotency-Key was used with a different request.".into(),
            },
            WriteError::IdempotencyRace => Self::Conflict {
                code: "idempotency_key_in_use",
                detail: "A request with this Idempotency-Key is in progress; retry.".into(),
            },
            WriteError::TaskLimit(max) => Self::Conflict {
                code: "task_limit_reached",
                detail: format!(
                    "An account holds at most {max} tasks, trashed ones included; delete some or empty the trash."
                ),
            },
            WriteError::ProjectLimit(max) => Self::Conflict {
                code: "project_limit_reached",
                detail: format!("An account holds at most {max} projects."),
            },
            WriteError::ProjectNameTaken => Self::Conflict {
                code: "project_name_taken",
                detail: "You already have a project with this name (names ignore letter case).".into(),
            },
            WriteError::InBatch { index, error } => {
                Self::InOperation { index, error: Box::new((*error).into()) }
            }
            WriteError::Unexpected(what) => Self::internal(anyhow::anyhow!("unexpected outcome: {what}")),
            WriteError::Database(err) => Self::from_db(err),
            WriteError::Jobs(err) => Self::internal(err),
        }
    }
}
