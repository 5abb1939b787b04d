//! Request limits: per user for API calls (reads and writes counted apart), and per client
//! address for the auth routes, where a password guess costs the server an argon2 hash.
//!
//! The counters live in each web process (GCRA buckets from `governor`), so N processes behind a
//! balancer allow up to N times the configured rate; the README says how to size them. Memory is
//! bounded: each limiter tracks at most `max_tracked_keys` keys, and past that new keys share one
//! overflow bucket until idle ones are dropped.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::Method;
use actix_web::middleware::Next;
use actix_web::web;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};
use uuid::Uuid;

use super::problem::ApiError;
use super::state::AppState;
use crate::config::RateLimitSettings;

/// How often an over-full limiter may scan for idle keys; the scan is O(keys).
const CLEANUP_EVERY: Duration = Duration::from_secs(10);

pub struct RateLimits {
    enabled: bool,
    user_writes: Limiter<Uuid>,
    user_reads: Limiter<Uuid>,
    auth_by_ip: Limiter<IpKey>,
    /// Addresses refused by `auth_by_ip`, and until when: read by doors that count failures
    /// only (CalDAV), so an address over the limit is refused before its next guess is checked.
    auth_refused_until: Mutex<HashMap<IpKey, Instant>>,
    max_tracked_keys: usize,
}

impl RateLimits {
    pub fn new(settings: &RateLimitSettings) -> Self {
        let max_keys = settings.max_tracked_keys.max(1);
        Self {
            enabled: settings.enabled,
            user_writes: Limiter::new(settings.user_writes_per_minute, max_keys),
            user_reads: Limiter::new(settings.user_reads_per_minute, max_keys),
            auth_by_ip: Limiter::new(settings.auth_per_ip_per_minute, max_keys),
            auth_refused_until: Mutex::new(HashMap::new()),
            max_tracked_keys: max_keys,
        }
    }

    /// Counts one API request by `user`; reads (GET, HEAD) and writes have separate budgets.
    pub fn check_user(&self, user: Uuid, method: &Method) -> Result<(), ApiError> {
        if !self.enabled {
            return Ok(());
        }
        match *method == Method::GET || *method == Method::HEAD {
            true => self.user_reads.check(user),
            false => self.user_writes.check(user),
        }
    }

    /// Counts `n` more writes by `user`, for a request that carries several (a bulk request).
    pub fn charge_user_writes(&self, user: Uuid, n: usize) -> Result<(), ApiError> {
        // More than a whole minute's budget could never pass, however long the client waited.
        let budget = self.user_writes.per_minute as usize;
        if self.enabled && n >= budget {
            return Err(ApiError::field(
                "operations",
                format!("at most {budget} operations per request under this server's write limit"),
            ));
        }
        match (self.enabled, NonZeroU32::new(u32::try_from(n).unwrap_or(u32::MAX))) {
            (true, Some(n)) => self.user_writes.check_n(user, n),
            _ => Ok(()),
        }
    }

    pub fn check_auth_ip(&self, ip: IpAddr) -> Result<(), ApiError> {
        if !self.enabled {
            return Ok(());
        }
        let verdict = self.auth_by_ip.check(IpKey::of(ip));
        if let Err(ApiError::TooManyRequests { retry_after_secs, .. }) = &verdict {
            let until = Instant::now() + Duration::from_secs(*retry_after_secs);
            let mut refused = self.auth_refused_until.lock().unwrap_or_else(|e| e.into_inner());
            if refused.len() >= self.max_tracked_keys {
                let now = Instant::now();
                refused.retain(|_, until| *until > now);
            }
            // Past the bound the address is not noted; the failed check itself still counts it.
            if refused.len() < self.max_tracked_keys {
                refused.insert(IpKey::of(ip), until);
            }
        }
        verdict
    }

    /// Refuses an address that `check_auth_ip` refused and whose wait is not over, without
    /// counting this request: for a door where only failed sign-ins count, to call before the
    /// credentials are checked.
    pub fn auth_ip_refused(&self, ip: IpAddr) -> Result<(), ApiError> {
        if !self.enabled {
            return Ok(());
        }
        let refused = self.auth_refused_until.lock().unwrap_or_else(|e| e.into_inner());
        match refused.get(&IpKey::of(ip)) {
            Some(until) if *until > Instant::now() => Err(ApiError::TooManyRequests {
                retry_after_secs: until.saturating_duration_since(Instant::now()).as_secs().max(1),
                limit: self.auth_by_ip.per_minute,
            }),
            _ => Ok(()),
        }
    }
}

/// Wraps the auth routes: counts each request against the caller's address before the body is
/// read or a password hashed.
pub async fn auth_by_ip(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let verdict = match (req.app_data::<web::Data<AppState>>(), req.peer_addr()) {
        (Some(state), Some(peer)) => state.rate_limits.check_auth_ip(peer.ip()),
        _ => Ok(()),
    };
    match verdict {
        Ok(()) => Ok(next.call(req).await?.map_into_left_body()),
        Err(err) => Ok(req.error_response(err).map_into_right_body()),
    }
}

/// A client address as rate-limited: IPv4 as is, IPv6 by its /64, the smallest block one
/// subscriber is usually given (so a client cannot dodge the limit by rotating addresses).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct IpKey(u128);

impl IpKey {
    pub fn of(ip: IpAddr) -> Self {
        // IPv4 keys are even and IPv6 keys odd, so the two spaces never collide.
        let v4 = |v4: std::net::Ipv4Addr| Self(u128::from(v4.to_bits()) << 1);
        match ip {
            IpAddr::V4(addr) => v4(addr),
            IpAddr::V6(addr) => match addr.to_ipv4_mapped() {
                Some(addr) => v4(addr),
                None => Self((addr.to_bits() & !u128::from(u64::MAX)) | 1),
            },
        }
    }
}

/// Keys that share the overflow bucket once the limiter is full.
trait Overflow {
    const OVERFLOW: Self;
}

impl Overflow for Uuid {
    const OVERFLOW: Self = Uuid::nil();
}

impl Overflow for IpKey {
    // IPv4 keys end in 0 and IPv6 keys in 63 zero bits and a 1: none has every bit set.
    const OVERFLOW: Self = IpKey(u128::MAX);
}

struct Limiter<K: Hash + Eq + Clone> {
    buckets: DefaultKeyedRateLimiter<K>,
    per_minute: u32,
    max_keys: usize,
    last_cleanup: Mutex<Instant>,
}

impl<K: Hash + Eq + Clone + Overflow> Limiter<K> {
    fn new(per_minute: u32, max_keys: usize) -> Self {
        let per_minute_nz = NonZeroU32::new(per_minute).unwrap_or(NonZeroU32::MIN);
        Self {
            buckets: DefaultKeyedRateLimiter::keyed(Quota::per_minute(per_minute_nz)),
            per_minute: per_minute_nz.get(),
            max_keys,
            last_cleanup: Mutex::new(Instant::now()),
        }
    }

    fn check(&self, key: K) -> Result<(), ApiError> {
        self.check_n(key, NonZeroU32::MIN)
    }

    /// Counts `n` requests at once; more than the whole budget is refused like any excess.
    fn check_n(&self, key: K, n: NonZeroU32) -> Result<(), ApiError> {
        let key = match self.buckets.len() < self.max_keys || self.make_room() {
            true => key,
            false => K::OVERFLOW,
        };
        let refused = |wait: Duration| ApiError::TooManyRequests {
            retry_after_secs: wait.as_secs_f64().ceil().max(1.0) as u64,
            limit: self.per_minute,
        };
        match self.buckets.check_key_n(&key, n) {
            Ok(Ok(())) => Ok(()),
            Ok(Err(not_until)) => Err(refused(not_until.wait_time_from(DefaultClock::default().now()))),
            Err(_) => Err(refused(Duration::from_secs(60))),
        }
    }

    /// Drops keys whose buckets are full again (idle clients), at most once per `CLEANUP_EVERY`.
    fn make_room(&self) -> bool {
        let Ok(mut last) = self.last_cleanup.try_lock() else {
            return false;
        };
        if last.elapsed() >= CLEANUP_EVERY {
            *last = Instant::now();
            self.buckets.retain_recent();
            self.buckets.shrink_to_fit();
        }
        self.buckets.len() < self.max_keys
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_gets_its_quota_then_a_retry_after() {
        let limiter = Limiter::<Uuid>::new(3, 100);
        let user = Uuid::new_v4();
        for _ in 0..3 {
            assert!(limiter.check(user).is_ok());
        }
        match limiter.check(user) {
            Err(ApiError::TooManyRequests { retry_after_secs, limit }) => {
                assert_eq!(limit, 3);
                assert!((1..=20).contains(&retry_after_secs), "{retry_after_secs}");
            }
            other => panic!("expected a 429, got {other:?}"),
        }
        assert!(limiter.check(Uuid::new_v4()).is_ok(), "another user has a budget of their own");
    }

    #[test]
    fn past_the_key_bound_new_keys_share_one_bucket() {
        let limiter = Limiter::<Uuid>::new(2, 2);
        assert!(limiter.check(Uuid::new_v4()).is_ok());
        assert!(limiter.check(Uuid::new_v4()).is_ok());
        // Both tracked buckets are busy, so newcomers share the overflow bucket of 2.
        assert!(limiter.check(Uuid::new_v4()).is_ok());
        assert!(limiter.check(Uuid::new_v4()).is_ok());
        assert!(limiter.check(Uuid::new_v4()).is_err());
        assert!(limiter.buckets.len() <= 3, "two keys and the overflow bucket");
    }

    #[test]
    fn ipv6_addresses_in_one_64_share_a_key() {
        let a: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(IpKey::of(a), IpKey::of(b));
        assert_ne!(IpKey::of(a), IpKey::of(c));
        let mapped: IpAddr = "::ffff:192.0.2.1".parse().unwrap();
        let v4: IpAddr = "192.0.2.1".parse().unwrap();
        assert_eq!(IpKey::of(mapped), IpKey::of(v4));
        assert_ne!(IpKey::of(v4), IpKey::OVERFLOW);
    }
}
