//! The process's register of open event streams. A write committed by this process's actors
//! wakes its user's streams here at once; the heads poller (`heads.rs`) reports each user's newest
//! change number, for changes made by other processes; the `LISTEN` connection reports auth
//! changes. Each stream waits on its user's head and on auth changes, and reads the feed itself.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use sqlx::PgPool;
use tokio::sync::{broadcast, watch};
use uuid::Uuid;

use crate::config::SyncSettings;

/// An auth change that may end streams.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthSignal {
    /// This token was revoked.
    Token(String),
    /// This user was deleted.
    User(Uuid),
    /// Notifications may have been missed: every stream checks its token again.
    Recheck,
}

/// Why a stream was not opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// The user has the most streams this process allows one user.
    UserLimit,
    /// This process has all the streams it allows, or is shutting down.
    ProcessFull,
}

pub struct Hub {
    state: Mutex<State>,
    auth: broadcast::Sender<AuthSignal>,
    shutdown: watch::Sender<bool>,
    /// Streams read the feed over this pool, apart from the request pool: a burst of changes
    /// neither queues behind requests nor takes their connections.
    pub pool: PgPool,
    /// The heads poll's one connection: it never waits behind the feed reads its wake-ups cause.
    pub poll_pool: PgPool,
    pub settings: SyncSettings,
}

#[derive(Default)]
struct State {
    users: HashMap<Uuid, UserStreams>,
    open: usize,
}

struct UserStreams {
    /// The newest change number heard of for this user.
    head: watch::Sender<i64>,
    open: usize,
}

impl Hub {
    pub fn new(settings: SyncSettings, pool: PgPool, poll_pool: PgPool) -> Arc<Self> {
        Arc::new(Self {
            state: Mutex::new(State::default()),
            auth: broadcast::channel(1024).0,
            shutdown: watch::channel(false).0,
            pool,
            poll_pool,
            settings,
        })
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Registers a stream for `user`, within the per-user and per-process limits.
    pub fn subscribe(self: &Arc<Self>, user: Uuid) -> Result<Subscription, Refused> {
        if *self.shutdown.borrow() {
            return Err(Refused::ProcessFull);
        }
        let mut state = self.state();
        if state.open >= self.settings.max_streams_per_process {
            return Err(Refused::ProcessFull);
        }
        let entry =
            state.users.entry(user).or_insert_with(|| UserStreams { head: watch::channel(0).0, open: 0 });
        if entry.open >= self.settings.max_streams_per_user {
            return Err(Refused::UserLimit);
        }
        entry.open += 1;
        let heads = entry.head.subscribe();
        state.open += 1;
        drop(state);
        metrics::gauge!("event_streams").increment(1.0);
        Ok(Subscription {
            hub: self.clone(),
            user,
            heads,
            auth: self.auth.subscribe(),
            shutdown: self.shutdown.subscribe(),
        })
    }

    /// A change for `user` committed with number `seq`.
    pub fn changed(&self, user: Uuid, seq: i64) {
        if let Some(entry) = self.state().users.get(&user) {
            entry.head.send_if_modified(|head| {
                let newer = seq > *head;
                *head = (*head).max(seq);
                newer
            });
        }
    }

    /// The users with a stream open here and the newest change number heard for each: what the
    /// heads poller asks the database about.
    pub fn watched(&self) -> (Vec<Uuid>, Vec<i64>) {
        self.state().users.iter().map(|(user, entry)| (*user, *entry.head.borrow())).unzip()
    }

    /// Wakes `user`'s streams to read their feed: this process just committed a write for them.
    pub fn wake(&self, user: Uuid) {
        if let Some(entry) = self.state().users.get(&user) {
            entry.head.send_modify(|_| {});
        }
    }

    /// Wakes every stream to read its feed: changes may have been missed.
    pub fn wake_all(&self) {
        for entry in self.state().users.values() {
            entry.head.send_modify(|_| {});
        }
    }

    pub fn auth_changed(&self, signal: AuthSignal) {
        // No receiver means no stream is open: nothing to tell.
        let _ = self.auth.send(signal);
    }

    /// Ends every stream and refuses new ones.
    pub fn shut_down(&self) {
        self.shutdown.send_replace(true);
    }

    pub fn open_streams(&self) -> usize {
        self.state().open
    }
}

/// One open stream's place in the hub; dropping it frees the place.
pub struct Subscription {
    hub: Arc<Hub>,
    user: Uuid,
    pub heads: watch::Receiver<i64>,
    pub auth: broadcast::Receiver<AuthSignal>,
    pub shutdown: watch::Receiver<bool>,
}

impl Subscription {
    pub fn hub(&self) -> &Arc<Hub> {
        &self.hub
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        metrics::gauge!("event_streams").decrement(1.0);
        let mut state = self.hub.state();
        state.open -= 1;
        if let Some(entry) = state.users.get_mut(&self.user) {
            entry.open -= 1;
            if entry.open == 0 {
                state.users.remove(&self.user);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Tests that make one run on a runtime: a lazy pool needs one, though it is never used here.
    fn hub(per_user: usize, per_process: usize) -> Arc<Hub> {
        let lazy =
            || sqlx::postgres::PgPoolOptions::new().connect_lazy("postgres://localhost/unused").unwrap();
        Hub::new(
            SyncSettings {
                tombstone_retention_secs: 60,
                max_streams_per_user: per_user,
                max_streams_per_process: per_process,
                stream_buffer_bytes: 1024,
                slow_client_secs: 1,
                heartbeat_secs: 15,
                ticket_ttl_secs: 60,
                read_connections: 1,
                poll_interval_ms: 25,
            },
            lazy(),
            lazy(),
        )
    }

    #[tokio::test]
    async fn limits_hold_per_user_and_per_process_and_free_on_drop() {
        let hub = hub(2, 3);
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        let a1 = hub.subscribe(a).unwrap();
        let _a2 = hub.subscribe(a).unwrap();
        assert_eq!(hub.subscribe(a).err(), Some(Refused::UserLimit));
        let _b1 = hub.subscribe(b).unwrap();
        assert_eq!(hub.subscribe(b).err(), Some(Refused::ProcessFull));
        drop(a1);
        assert_eq!(hub.open_streams(), 2);
        assert!(hub.subscribe(b).is_ok());
    }

    #[tokio::test]
    async fn a_change_wakes_only_its_users_streams_and_never_goes_back() {
        let hub = hub(5, 5);
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        let mut sa = hub.subscribe(a).unwrap();
        let sb = hub.subscribe(b).unwrap();
        hub.changed(a, 7);
        hub.changed(a, 3);
        assert!(sa.heads.has_changed().unwrap());
        assert_eq!(*sa.heads.borrow_and_update(), 7);
        assert!(!sb.heads.has_changed().unwrap());
        hub.wake_all();
        assert!(sb.heads.has_changed().unwrap());
    }

    #[tokio::test]
    async fn a_local_write_wakes_only_its_users_streams() {
        let hub = hub(5, 5);
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        let (mut sa, mut sb) = (hub.subscribe(a).unwrap(), hub.subscribe(b).unwrap());
        sa.heads.mark_unchanged();
        sb.heads.mark_unchanged();
        hub.wake(a);
        hub.wake(Uuid::new_v4());
        assert!(sa.heads.has_changed().unwrap());
        assert!(!sb.heads.has_changed().unwrap());
    }

    #[tokio::test]
    async fn watched_lists_each_user_with_a_stream_once_with_its_head() {
        let hub = hub(5, 5);
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        let (_a1, _a2, b1) =
            (hub.subscribe(a).unwrap(), hub.subscribe(a).unwrap(), hub.subscribe(b).unwrap());
        hub.changed(a, 9);
        let (users, heads) = hub.watched();
        let mut watched: Vec<(Uuid, i64)> = users.into_iter().zip(heads).collect();
        watched.sort();
        let mut expected = vec![(a, 9), (b, 0)];
        expected.sort();
        assert_eq!(watched, expected);
        drop(b1);
        assert_eq!(hub.watched(), (vec![a], vec![9]), "a user whose last stream closed is not watched");
    }

    #[tokio::test]
    async fn shutting_down_refuses_new_streams() {
        let hub = hub(5, 5);
        let s = hub.subscribe(Uuid::new_v4()).unwrap();
        hub.shut_down();
        assert!(*s.shutdown.borrow());
        assert_eq!(hub.subscribe(Uuid::new_v4()).err(), Some(Refused::ProcessFull));
    }
}
