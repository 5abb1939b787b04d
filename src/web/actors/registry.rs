use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use actix::prelude::*;
use sqlx::PgPool;
use tokio::sync::oneshot;
use uuid::Uuid;

use super::user::{Execute, UserActor};
use crate::commands::{Command, CommandSettings, Outcome, WriteError};
use crate::config::ActorSettings;
use crate::web::events::Hub;

/// Starts actors on first use and forgets them when they retire after being idle.
pub struct ActorRegistry {
    actors: Mutex<HashMap<Uuid, Entry>>,
    pool: PgPool,
    settings: ActorSettings,
    commands: CommandSettings,
    /// This process's event streams: a write committed here wakes its user's streams at once;
    /// changes made elsewhere reach them by the hub's poll.
    events: Arc<Hub>,
}

struct Entry {
    addr: Addr<UserActor>,
    pending: Arc<AtomicUsize>,
}

#[derive(Debug, thiserror::Error)]
pub enum ActorError {
    #[error("the user's mailbox is full")]
    Busy,
    #[error("no answer within the send timeout")]
    TimedOut,
    #[error("the user's actor stopped before answering")]
    Stopped,
    #[error(transparent)]
    Write(#[from] WriteError),
}

impl ActorRegistry {
    pub fn new(
        pool: PgPool,
        settings: ActorSettings,
        commands: CommandSettings,
        events: Arc<Hub>,
    ) -> Arc<Self> {
        Arc::new(Self { actors: Mutex::new(HashMap::new()), pool, settings, commands, events })
    }

    /// Runs `command` on `user`'s actor. A full mailbox fails at once rather than queueing
    /// without bound, and a command that takes longer than the send timeout is reported as such
    /// (it may still commit; clients retry safely with `Idempotency-Key` or `If-Match`).
    pub async fn execute(self: &Arc<Self>, user: Uuid, command: Command) -> Result<Outcome, ActorError> {
        let (reply, answer) = oneshot::channel();
        let mut message = Execute { command: Box::new(command), reply };
        // A second try covers an actor that died between lookup and send.
        for _ in 0..2 {
            match self.send(user, message) {
                Ok(()) => {
                    let timeout = Duration::from_secs(self.settings.send_timeout_secs);
                    return match tokio::time::timeout(timeout, answer).await {
                        Err(_) => Err(ActorError::TimedOut),
                        Ok(Err(_)) => Err(ActorError::Stopped),
                        Ok(Ok(result)) => result.map_err(ActorError::Write),
                    };
                }
                Err(SendError::Full(_)) => {
                    metrics::counter!("user_actor_rejections_total").increment(1);
                    return Err(ActorError::Busy);
                }
                // `send` already dropped the dead entry; the next try starts a fresh actor.
                Err(SendError::Closed(returned)) => message = returned,
            }
        }
        Err(ActorError::Stopped)
    }

    /// How many actors are alive in this process.
    pub fn live(&self) -> usize {
        self.lock().len()
    }

    /// Sends to the user's actor, starting it if needed. The send goes through the one stored
    /// address: actix bounds a mailbox per sender handle, and a fresh clone is never refused, so
    /// cloning per request would make the mailbox unbounded. The pending count rises under the
    /// same lock `retire` takes, so an actor cannot retire with a message on its way.
    fn send(self: &Arc<Self>, user: Uuid, message: Execute) -> Result<(), SendError<Execute>> {
        let mut actors = self.lock();
        let entry = match actors.get(&user) {
            Some(entry) if entry.addr.connected() => entry,
            _ => {
                actors.insert(user, self.start(user));
                &actors[&user]
            }
        };
        entry.pending.fetch_add(1, Ordering::SeqCst);
        let sent = entry.addr.try_send(message);
        if sent.is_err() {
            entry.pending.fetch_sub(1, Ordering::SeqCst);
        }
        if let Err(SendError::Closed(_)) = sent {
            actors.remove(&user);
        }
        sent
    }

    fn start(self: &Arc<Self>, user: Uuid) -> Entry {
        let pending = Arc::new(AtomicUsize::new(0));
        let capacity = self.settings.mailbox_capacity.max(1);
        let actor = UserActor {
            user_id: user,
            pool: self.pool.clone(),
            settings: self.commands,
            idle_timeout: Duration::from_secs(self.settings.idle_timeout_secs),
            pending: pending.clone(),
            events: self.events.clone(),
            registry: self.clone(),
            last_active: Instant::now(),
        };
        let addr = UserActor::create(move |ctx| {
            ctx.set_mailbox_capacity(capacity);
            actor
        });
        Entry { addr, pending }
    }

    /// Called by an idle actor: removes it if nothing is in flight for it. Checked under the
    /// lock `checkout` takes, so no message can slip in between the check and the removal.
    pub(super) fn retire(&self, user: Uuid, pending: &Arc<AtomicUsize>) -> bool {
        let mut actors = self.lock();
        match actors.get(&user) {
            Some(entry) if Arc::ptr_eq(&entry.pending, pending) => {
                if pending.load(Ordering::SeqCst) > 0 {
                    return false;
                }
                actors.remove(&user);
                true
            }
            // Already replaced by a newer actor: this one just stops.
            _ => true,
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<Uuid, Entry>> {
        // A panic while holding this lock cannot leave the map half-updated; keep serving.
        self.actors.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}
