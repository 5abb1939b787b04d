//! What a handler's run ended with. Outcomes keep four meanings apart: done, cancelled (the
//! cause is gone), retry later (transient) and discard (permanent).

use super::EnqueueError;

/// A job that ended without error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handled {
    /// It did what it was queued for.
    Done,
    /// The cause is gone, so there was nothing to do. The reason is for logs and metrics.
    Cancelled(&'static str),
}

/// A job that failed.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// Worth another attempt later: a database or mail server that is down or busy.
    #[error("{0}")]
    Transient(String),
    /// Another attempt cannot help; the reason has been recorded where the user can see it.
    #[error("{0}")]
    Permanent(String),
}

impl From<sqlx::Error> for JobError {
    fn from(err: sqlx::Error) -> Self {
        Self::Transient(format!("database: {err}"))
    }
}

impl From<EnqueueError> for JobError {
    fn from(err: EnqueueError) -> Self {
        match err {
            EnqueueError::Encode(e) => Self::Permanent(format!("encoding a follow-up job: {e}")),
            other => Self::Transient(format!("queueing a follow-up job: {other}")),
        }
    }
}

/// Which attempt a job is on, counted from 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AttemptInfo {
    pub number: u32,
    pub max: u32,
}

impl AttemptInfo {
    pub fn is_last(self) -> bool {
        self.number >= self.max
    }
}
