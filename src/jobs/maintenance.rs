//! Periodic housekeeping: purge rows whose retention has passed.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::Job;

/// One maintenance run. Scheduled per time slot with the slot in the idempotency key, so
/// several workers scheduling at once still produce one job per slot.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Maintenance {
    pub slot_start: DateTime<Utc>,
}

impl Job for Maintenance {
    const QUEUE: &'static str = "todo.maintenance";
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
