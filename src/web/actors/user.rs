use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use actix::prelude::*;
use sqlx::PgPool;
use tokio::sync::oneshot;
use uuid::Uuid;

use super::registry::ActorRegistry;
use crate::commands::{self, Command, CommandSettings, Outcome, WriteError};
use crate::web::events::Hub;

/// One command and where to send its result. The caller waits on the oneshot rather than on
/// actix's reply channel, so it can fail fast when the mailbox is full (see `ActorRegistry`).
pub struct Execute {
    pub command: Box<Command>,
    pub reply: oneshot::Sender<Result<Outcome, WriteError>>,
}

impl Message for Execute {
    type Result = ();
}

pub struct UserActor {
    pub user_id: Uuid,
    pub pool: PgPool,
    pub settings: CommandSettings,
    pub idle_timeout: Duration,
    /// Commands sent but not yet finished, shared with the registry entry.
    pub pending: Arc<AtomicUsize>,
    pub events: Arc<Hub>,
    pub registry: Arc<ActorRegistry>,
    pub last_active: Instant,
}

impl Actor for UserActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        metrics::gauge!("user_actors").increment(1.0);
        let every = (self.idle_timeout / 4).clamp(Duration::from_millis(20), Duration::from_secs(5));
        ctx.run_interval(every, |actor, ctx| {
            if actor.last_active.elapsed() >= actor.idle_timeout
                && actor.registry.retire(actor.user_id, &actor.pending)
            {
                ctx.stop();
            }
        });
    }

    fn stopped(&mut self, _: &mut Self::Context) {
        metrics::gauge!("user_actors").decrement(1.0);
    }
}

impl Handler<Execute> for UserActor {
    // Atomic: the actor takes no other message until this future, and so the commit, is done.
    type Result = AtomicResponse<Self, ()>;

    fn handle(&mut self, msg: Execute, _: &mut Self::Context) -> Self::Result {
        let (pool, events) = (self.pool.clone(), self.events.clone());
        let (user, settings) = (self.user_id, self.settings);
        let span = tracing::info_span!("user_actor", user_id = %user);
        let work = async move {
            // A caller that already gave up (send timeout or disconnect) was told the write
            // failed; applying it now would surprise a client that retries.
            if msg.reply.is_closed() {
                tracing::info!("skipping a command whose caller has gone");
                return;
            }
            let result = commands::execute(&pool, settings, user, &msg.command).await;
            // Committed: this process's streams of the user read their feed now rather than at
            // the next poll. A write that changed nothing costs them one empty read.
            if result.is_ok() {
                events.wake(user);
            }
            // Once started, a write stands even if the caller leaves before the answer.
            let _ = msg.reply.send(result);
        };
        AtomicResponse::new(Box::pin(tracing::Instrument::instrument(work, span).into_actor(self).map(
            |(), actor, _| {
                actor.last_active = Instant::now();
                actor.pending.fetch_sub(1, Ordering::SeqCst);
            },
        )))
    }
}
