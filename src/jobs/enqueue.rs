//! Putting a job on its queue, inside the caller's transaction.

use std::time::SystemTime;

use apalis::prelude::TaskBuilder;
use apalis_core::task::metadata::MetadataStore;
use apalis_postgres::PgTask;
use sqlx::PgConnection;
use uuid::Uuid;

pub use crate::db::queue::cancel_for_owner;
use crate::db::queue::{OWNER_KEY, SUBJECT_KEY};

use super::Job;

/// When and how a job should run.
#[derive(Debug, Clone, Default)]
pub struct Schedule {
    pub run_at: Option<SystemTime>,
    /// Unique per queue for ever, so include whatever version makes the job distinct.
    pub idempotency_key: Option<String>,
    /// The user the job acts for; their pending jobs are cancelled when the account goes.
    pub owner: Option<Uuid>,
    /// The task the job is about; its pending jobs are rescheduled or cancelled with it.
    pub subject: Option<Uuid>,
}

#[derive(Debug, thiserror::Error)]
pub enum EnqueueError {
    #[error("encoding the job payload")]
    Encode(#[from] serde_json::Error),
    #[error("inserting the job row")]
    Insert(#[from] apalis_postgres::Error),
    #[error("updating the job table")]
    Database(#[from] sqlx::Error),
}

/// Inserts one job on `conn`, which is normally the caller's open transaction.
pub async fn enqueue<J: Job>(
    conn: &mut PgConnection,
    job: &J,
    schedule: Schedule,
) -> Result<(), EnqueueError> {
    let mut builder = TaskBuilder::new(serde_json::to_vec(job)?);
    if let Some(run_at) = schedule.run_at {
        builder = builder.run_at_time(run_at);
    }
    if let Some(key) = schedule.idempotency_key {
        builder = builder.idempotency_key(key);
    }
    let mut metadata = MetadataStore::new();
    // A fresh store has distinct keys, so these inserts cannot collide.
    if let Some(owner) = schedule.owner {
        let _ = metadata.insert(OWNER_KEY, owner.to_string());
    }
    if let Some(subject) = schedule.subject {
        let _ = metadata.insert(SUBJECT_KEY, subject.to_string());
    }
    builder = builder.with_metadata(metadata);
    let task: PgTask = builder.build();
    apalis_postgres::queries::push_tasks(conn, J::QUEUE, vec![task]).await?;
    Ok(())
}
