//! Remembers which tokens were found good, so an authenticated request need not ask the
//! database whether its token was revoked or its user deleted.
//!
//! Every process keeps its own cache, fed by the process's one listener (`web::listener`). Logout
//! and account deletion `NOTIFY` in the transaction that makes them, so every process drops the
//! token (or the user's tokens) within milliseconds of the commit. While the listener is not
//! connected, and until it has reconnected and the cache been emptied, nothing is trusted from
//! the cache: a notification missed during the gap cannot leave a revoked token working.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use uuid::Uuid;

/// The channel logout and account deletion notify on.
pub const CHANNEL: &str = "auth_changes";

/// How long a good answer is trusted without asking again. A listener connection that dies
/// silently (a NAT or firewall dropping it without a reset) looks alive until TCP gives up; this
/// bounds how long a revoked token could keep working on such a process.
const MAX_AGE: Duration = Duration::from_secs(30);

pub struct TokenCache {
    entries: Mutex<HashMap<String, Entry>>,
    /// Bumped by every invalidation: a lookup that started before one may not store its result.
    generation: AtomicU64,
    trusted: AtomicBool,
    max_entries: usize,
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    user: Uuid,
    expires_at: DateTime<Utc>,
    cached_at: Instant,
}

impl TokenCache {
    pub fn new(max_entries: usize) -> Arc<Self> {
        Arc::new(Self {
            entries: Mutex::new(HashMap::new()),
            generation: AtomicU64::new(0),
            trusted: AtomicBool::new(false),
            max_entries,
        })
    }

    /// Whether this token was found good for this user, and nothing since said otherwise.
    pub fn is_good(&self, token_id: &str, user: Uuid) -> bool {
        if !self.trusted.load(Ordering::Acquire) {
            return false;
        }
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries
            .get(token_id)
            .is_some_and(|e| e.user == user && e.expires_at > Utc::now() && e.cached_at.elapsed() < MAX_AGE)
    }

    /// Read before asking the database; pass to [`TokenCache::remember`].
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Stores a good answer, unless an invalidation happened since `generation` was read (the
    /// answer may predate it) or the cache is not trusted now.
    pub fn remember(&self, generation: u64, token_id: &str, user: Uuid, expires_at: DateTime<Utc>) {
        if self.max_entries == 0 || !self.trusted.load(Ordering::Acquire) {
            return;
        }
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        // Checked under the lock that invalidations also take, so none slips in between.
        if self.generation.load(Ordering::Acquire) != generation {
            return;
        }
        if entries.len() >= self.max_entries {
            let now = Utc::now();
            entries.retain(|_, e| e.expires_at > now && e.cached_at.elapsed() < MAX_AGE);
            if entries.len() >= self.max_entries {
                entries.clear();
            }
        }
        entries.insert(token_id.to_owned(), Entry { user, expires_at, cached_at: Instant::now() });
    }

    /// Drops a token this process just revoked, without waiting for the notification.
    pub fn forget_token(&self, token_id: &str) {
        self.invalidate(&format!("token:{token_id}"));
    }

    /// Drops every token of a user this process just deleted.
    pub fn forget_user(&self, user: Uuid) {
        self.invalidate(&format!("user:{user}"));
    }

    /// Applies one `auth_changes` notification.
    pub(crate) fn invalidate(&self, change: &str) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        self.generation.fetch_add(1, Ordering::AcqRel);
        match change.split_once(':') {
            Some(("token", token_id)) => {
                entries.remove(token_id);
            }
            Some(("user", user)) => match user.parse::<Uuid>() {
                Ok(user) => entries.retain(|_, e| e.user != user),
                Err(_) => entries.clear(),
            },
            // Something this version does not know: forget everything rather than guess.
            _ => entries.clear(),
        }
    }

    /// Stops trusting the cache and empties it: notifications may have been missed.
    pub(crate) fn distrust(&self) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        self.trusted.store(false, Ordering::Release);
        self.generation.fetch_add(1, Ordering::AcqRel);
        entries.clear();
    }

    /// Trusts the cache again, from empty, once the listener is listening.
    pub(crate) fn trust(&self) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        self.generation.fetch_add(1, Ordering::AcqRel);
        entries.clear();
        self.trusted.store(true, Ordering::Release);
    }

    pub fn len(&self) -> usize {
        self.entries.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trusted() -> Arc<TokenCache> {
        let cache = TokenCache::new(10);
        cache.trust();
        cache
    }

    fn later() -> DateTime<Utc> {
        Utc::now() + chrono::Duration::minutes(5)
    }

    #[test]
    fn a_remembered_token_is_good_until_revoked_or_its_user_deleted() {
        let cache = trusted();
        let user = Uuid::new_v4();
        cache.remember(cache.generation(), "t1", user, later());
        cache.remember(cache.generation(), "t2", user, later());
        assert!(cache.is_good("t1", user));
        assert!(!cache.is_good("t1", Uuid::new_v4()), "another user's id never matches");
        cache.invalidate("token:t1");
        assert!(!cache.is_good("t1", user));
        assert!(cache.is_good("t2", user));
        cache.invalidate(&format!("user:{user}"));
        assert!(!cache.is_good("t2", user));
    }

    #[test]
    fn an_answer_older_than_an_invalidation_is_not_stored() {
        let cache = trusted();
        let user = Uuid::new_v4();
        let before = cache.generation();
        cache.invalidate("token:t1");
        cache.remember(before, "t1", user, later());
        assert!(!cache.is_good("t1", user));
    }

    #[test]
    fn nothing_is_trusted_while_the_listener_is_away_and_the_size_is_bounded() {
        let cache = trusted();
        let user = Uuid::new_v4();
        cache.remember(cache.generation(), "t1", user, later());
        cache.distrust();
        assert!(!cache.is_good("t1", user));
        cache.remember(cache.generation(), "t1", user, later());
        cache.trust();
        assert!(!cache.is_good("t1", user), "emptied on reconnect");
        for i in 0..25 {
            cache.remember(cache.generation(), &format!("t{i}"), user, later());
        }
        assert!(cache.len() <= 10);
        cache.remember(cache.generation(), "old", user, Utc::now() - chrono::Duration::seconds(1));
        assert!(!cache.is_good("old", user), "an expired token is not good");
    }
}
