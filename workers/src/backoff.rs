//! Retry delays: exponential, capped, with jitter so jobs that failed together (a mail server
//! outage) do not all come back in the same second.

use std::time::Duration;

/// How failing jobs are retried.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    pub max_attempts: u32,
    pub base: Duration,
    pub max: Duration,
}

impl RetryPolicy {
    /// The delay after failed attempt `attempt` (from 1): `base · 2^(attempt-1)`, capped, then
    /// "equal jitter" — half of it fixed, half random — so delays never shrink from one attempt
    /// to the next and never collapse to zero.
    pub fn delay(&self, attempt: u32) -> Duration {
        let exponent = attempt.saturating_sub(1).min(30);
        let full = self.base.saturating_mul(1 << exponent).min(self.max);
        full / 2 + full.mul_f64(fastrand::f64() / 2.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_and_stop_at_the_cap() {
        let policy =
            RetryPolicy { max_attempts: 10, base: Duration::from_secs(10), max: Duration::from_secs(100) };
        for _ in 0..100 {
            let first = policy.delay(1);
            assert!((Duration::from_secs(5)..=Duration::from_secs(10)).contains(&first), "{first:?}");
            let third = policy.delay(3);
            assert!((Duration::from_secs(20)..=Duration::from_secs(40)).contains(&third), "{third:?}");
            assert!(policy.delay(2) >= first, "never shorter than the attempt before");
            let late = policy.delay(30);
            assert!((Duration::from_secs(50)..=Duration::from_secs(100)).contains(&late), "{late:?}");
        }
    }
}
