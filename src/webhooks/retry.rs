//! When a failed message is tried again: the schedule from the settings, with jitter, or the
//! receiver's own `Retry-After` (on 429 and 503), bounded.

use std::time::Duration;

use crate::config::WebhookSettings;

#[derive(Debug, Clone)]
pub struct RetrySchedule {
    waits: Vec<Duration>,
    retry_after_max: Duration,
}

impl RetrySchedule {
    pub fn new(settings: &WebhookSettings) -> Self {
        Self {
            waits: settings.retry_schedule_ms.iter().map(|ms| Duration::from_millis(*ms)).collect(),
            retry_after_max: Duration::from_secs(settings.retry_after_max_secs),
        }
    }

    /// Attempts a message gets in all: the immediate one and one per wait.
    pub fn attempts(&self) -> u32 {
        u32::try_from(self.waits.len()).unwrap_or(u32::MAX).saturating_add(1)
    }

    /// The wait after `failed` attempts (from 1), or `None` when the message is given up.
    /// Jitter of ±20 % keeps messages that failed together (an outage) from returning together.
    pub fn wait_after(&self, failed: u32, retry_after: Option<Duration>) -> Option<Duration> {
        let index = usize::try_from(failed.checked_sub(1)?).ok()?;
        let wait = *self.waits.get(index)?;
        Some(match retry_after {
            Some(asked) => asked.min(self.retry_after_max),
            None => wait.mul_f64(0.8 + fastrand::f64() * 0.4),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schedule() -> RetrySchedule {
        RetrySchedule {
            waits: [5, 300, 1800, 7200, 18000, 36000, 36000].map(Duration::from_secs).to_vec(),
            retry_after_max: Duration::from_secs(3600),
        }
    }

    #[test]
    fn follows_the_schedule_with_jitter_then_gives_up() {
        let schedule = schedule();
        assert_eq!(schedule.attempts(), 8);
        for _ in 0..100 {
            let first = schedule.wait_after(1, None).unwrap();
            assert!((Duration::from_secs(4)..=Duration::from_secs(6)).contains(&first), "{first:?}");
            let last = schedule.wait_after(7, None).unwrap();
            assert!((Duration::from_secs(28800)..=Duration::from_secs(43200)).contains(&last));
        }
        assert_eq!(schedule.wait_after(8, None), None, "eight attempts, then give up");
        assert_eq!(schedule.wait_after(0, None), None);
    }

    #[test]
    fn retry_after_is_obeyed_up_to_its_bound() {
        let schedule = schedule();
        assert_eq!(schedule.wait_after(1, Some(Duration::from_secs(90))), Some(Duration::from_secs(90)));
        assert_eq!(schedule.wait_after(1, Some(Duration::from_secs(99999))), Some(Duration::from_secs(3600)));
        assert_eq!(schedule.wait_after(8, Some(Duration::from_secs(1))), None, "still bounded by attempts");
    }
}
