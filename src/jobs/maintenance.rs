//! The maintenance job: periodic housekeeping. Every worker schedules one per time slot, and
//! whichever worker fetches it purges rows whose retention has passed, resumes paused series and
//! queues the agenda of accounts whose chain of daily agenda jobs broke.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::PgPool;

use super::agenda::rescue_broken_chains;
use super::recurrence::resume_paused;
use super::{AttemptInfo, Context, EnqueueError, Handled, Job, JobError, Schedule, enqueue};
use crate::db::maintenance::purge_expired;

/// One maintenance run. Scheduled per time slot with the slot in the idempotency key, so
/// several workers scheduling at once still produce one job per slot.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Maintenance {
    pub slot_start: DateTime<Utc>,
}

impl Job for Maintenance {
    const QUEUE: &'static str = "todo.maintenance";

    async fn handle(&self, ctx: &Context, _attempt: AttemptInfo) -> Result<Handled, JobError> {
        run(self, ctx).await
    }
}

impl Maintenance {
    /// The slot that contains `now`, for slots of `interval_secs`.
    pub fn for_slot(now: DateTime<Utc>, interval_secs: u64) -> Self {
        let interval = i64::try_from(interval_secs.max(1)).unwrap_or(i64::MAX);
        let start = now.timestamp().div_euclid(interval) * interval;
        Self { slot_start: DateTime::from_timestamp(start, 0).unwrap_or(now) }
    }

    pub fn idempotency_key(&self) -> String {
        format!("maintenance:{}", self.slot_start.timestamp())
    }
}

#[tracing::instrument(skip_all, fields(slot = %job.slot_start))]
async fn run(job: &Maintenance, ctx: &Context) -> Result<Handled, JobError> {
    let purged = purge_expired(&ctx.pool, ctx.retention).await.map_err(JobError::from);
    // After the purge, which may have made room: paused series continue.
    let resumed = resume_paused(&ctx.pool, ctx.max_tasks).await;
    let agendas = rescue_broken_chains(&ctx.pool).await;
    purged.and_then(|purged| {
        let resumed = resumed?;
        let agendas = agendas?;
        tracing::info!(
            finished_jobs = purged.finished_jobs,
            revoked_tokens = purged.revoked_tokens,
            trashed_tasks = purged.trashed_tasks,
            idempotency_keys = purged.idempotency_keys,
            tombstones = purged.tombstones,
            webhook_messages = purged.webhook_messages,
            resumed_series = resumed,
            rescued_agendas = agendas,
            "maintenance done"
        );
        Ok(Handled::Done)
    })
}

/// Enqueues one maintenance job per slot for as long as the process runs. Every worker process
/// runs this; the slot's idempotency key makes all but the first insert a no-op.
pub async fn schedule(pool: PgPool, interval: Duration) {
    let mut ticker = tokio::time::interval(interval.min(Duration::from_secs(60)));
    loop {
        ticker.tick().await;
        let job = Maintenance::for_slot(Utc::now(), interval.as_secs());
        let schedule = Schedule { idempotency_key: Some(job.idempotency_key()), ..Schedule::default() };
        let result = match pool.acquire().await {
            Ok(mut conn) => enqueue(&mut conn, &job, schedule).await,
            Err(err) => Err(EnqueueError::Database(err)),
        };
        match result {
            Ok(()) => tracing::debug!(slot = %job.slot_start, "maintenance scheduled"),
            Err(err) if is_duplicate(&err) => {}
            Err(err) => tracing::warn!(error = %err, "could not schedule maintenance"),
        }
    }
}

fn is_duplicate(err: &EnqueueError) -> bool {
    matches!(err, EnqueueError::Insert(apalis_postgres::Error::Database(sqlx::Error::Database(db)))
        if db.is_unique_violation())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_within_one_slot_share_a_key() {
        let a = "2026-11-23T10:00:01Z".parse().unwrap();
        let b = "2026-11-23T10:59:59Z".parse().unwrap();
        let c = "2026-11-23T11:00:00Z".parse().unwrap();
        let key = |t| Maintenance::for_slot(t, 3600).idempotency_key();
        assert_eq!(key(a), key(b));
        assert_ne!(key(b), key(c));
    }
}
