//! One event stream's producer: reads the user's feed from its position whenever the user's head
//! moves, and writes each change as a server-sent event into the stream's outbox.

use std::sync::Arc;
use std::time::Duration;

use actix_web::web::Bytes;
use chrono::{DateTime, Utc};
use sqlx::PgPool;
use tokio::sync::broadcast::error::RecvError;
use uuid::Uuid;

use super::hub::{AuthSignal, Subscription};
use super::outbox::{NotSent, Outbox};
use crate::db::changes::{self, Change};
use crate::db::users::{self, TokenStanding};

/// Changes read per feed query.
const PAGE: i64 = 100;
/// How soon a stream reads again after a failed read.
const RETRY_AFTER_ERROR: Duration = Duration::from_secs(1);

/// Who the stream is for, and the token that opened it.
#[derive(Debug, Clone)]
pub struct StreamAuth {
    pub user: Uuid,
    pub token_id: String,
    pub expires_at: DateTime<Utc>,
}

/// Where the stream starts: after this change number.
#[derive(Debug, Clone, Copy)]
pub struct Position(pub i64);

/// The first bytes of every stream: the reconnection delay, and a comment that sends the
/// headers at once so the client knows the stream is open.
pub fn preamble() -> Bytes {
    Bytes::from_static(b"retry: 3000\n: connected\n\n")
}

/// The last message to a client that must start again from `GET /changes?since=0`.
pub fn resync(reason: &str) -> Bytes {
    let data = serde_json::json!({ "code": "resync_required", "detail": reason });
    Bytes::from(format!("event: resync\ndata: {data}\n\n"))
}

/// The last message of a stream whose token was revoked or whose user was deleted.
const REVOKED: &str = "the token was revoked";

fn comment(text: &'static str) -> Bytes {
    Bytes::from(format!(": {text}\n\n"))
}

/// A change as an event; its `id` is the change number, which `Last-Event-ID` resumes from.
fn event(change: &Change) -> Result<Bytes, serde_json::Error> {
    let (kind, data) = match &change.task {
        Some(task) => ("task.upserted", serde_json::to_string(task)?),
        None => ("task.deleted", serde_json::json!({ "id": change.task_id }).to_string()),
    };
    Ok(Bytes::from(format!("id: {}\nevent: {kind}\ndata: {data}\n\n", change.seq)))
}

enum End {
    /// The client left, or was cut off as too slow; the outbox knows.
    Closed,
    /// The position cannot be followed; the client must start again.
    Resync(&'static str),
    /// The token was revoked or its user deleted.
    Revoked,
}

/// Runs until the client leaves, falls behind, must resync, loses its token, or the process
/// shuts down.
pub async fn run(
    pool: PgPool,
    backlog: Option<PgPool>,
    mut sub: Subscription,
    outbox: Arc<Outbox>,
    auth: StreamAuth,
    start: Position,
) {
    let settings = sub.hub().settings.clone();
    let patience = Duration::from_secs(settings.slow_client_secs.max(1));
    let slow = resync("the client fell behind; start again from GET /changes or Last-Event-ID");
    let mut heartbeat = tokio::time::interval(Duration::from_secs(settings.heartbeat_secs.max(1)));
    heartbeat.tick().await;
    let until_expiry = (auth.expires_at - Utc::now()).to_std().unwrap_or_default();
    let expiry = tokio::time::sleep(until_expiry);
    tokio::pin!(expiry);
    let mut position = start.0;
    if let Some(replica) = backlog {
        // The backlog from a replica, then the rest from the primary below: numbers commit in
        // order per user, so a replica's feed is a prefix of the primary's, and reading on from
        // where it ended leaves no gap however far behind it is.
        let read = catch_up(&replica, Source::Replica, &outbox, &auth, &mut position, patience, &slow).await;
        if let Err(Some(End::Closed)) = read {
            return;
        }
    }
    // When to read again after a failed read; `None` while reads succeed.
    let mut retry_at: Option<tokio::time::Instant> = None;
    let mut read_now = true;
    loop {
        if read_now {
            read_now = false;
            sub.heads.borrow_and_update();
            match catch_up(&pool, Source::Primary, &outbox, &auth, &mut position, patience, &slow).await {
                Ok(()) => retry_at = None,
                Err(Some(End::Closed)) => return,
                Err(Some(End::Resync(reason))) => return outbox.finish(Some(resync(reason))),
                Err(Some(End::Revoked)) => return outbox.finish(Some(comment(REVOKED))),
                Err(None) => retry_at = Some(tokio::time::Instant::now() + RETRY_AFTER_ERROR),
            }
        }
        let retry = tokio::time::sleep_until(retry_at.unwrap_or_else(tokio::time::Instant::now));
        tokio::select! {
            biased;
            _ = sub.shutdown.changed() => return outbox.finish(Some(comment("the server is restarting; reconnect"))),
            () = outbox.gone() => return,
            () = &mut expiry => return outbox.finish(Some(comment("the token expired"))),
            signal = sub.auth.recv() => {
                if !still_allowed(&pool, &auth, signal).await {
                    return outbox.finish(Some(comment(REVOKED)));
                }
            }
            // After a failed read, the retry's time decides, not a change.
            _ = sub.heads.changed(), if retry_at.is_none() => read_now = true,
            () = retry, if retry_at.is_some() => read_now = true,
            _ = heartbeat.tick() => {
                if outbox.send(comment("heartbeat"), patience, slow.clone()).await.is_err() {
                    return;
                }
            }
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Source {
    Primary,
    /// May be behind the client, and may fail: it never decides how the stream ends.
    Replica,
}

/// Sends every change after `position`. `Err(None)`: the feed could not be read this time.
/// From a replica, a failed read or a position it has not reached stops quietly, for the
/// primary to go on from.
async fn catch_up(
    pool: &PgPool,
    source: Source,
    outbox: &Outbox,
    auth: &StreamAuth,
    position: &mut i64,
    patience: Duration,
    slow: &Bytes,
) -> Result<(), Option<End>> {
    loop {
        let page = changes::page(pool, auth.user, *position, PAGE).await;
        let page = page.map_err(|err| {
            tracing::warn!(%err, "event stream could not read the change feed; retrying");
        });
        let page = page.map_err(|()| None);
        let page = match (page, source) {
            (Ok(page), _) => page,
            (Err(_), Source::Replica) => return Ok(()),
            (Err(none), Source::Primary) => return Err(none),
        };
        if page.check(*position).is_err() {
            if source == Source::Replica {
                return Ok(());
            }
            // A feed that lost its head may be an account deleted a moment ago: say so rather
            // than ask the client to start again.
            return match users::token_standing(pool, auth.user, &auth.token_id).await {
                Ok(TokenStanding::Good) => {
                    Err(Some(End::Resync("changes since Last-Event-ID are no longer kept")))
                }
                Ok(_) => Err(Some(End::Revoked)),
                Err(_) => Err(None),
            };
        }
        let full = page.changes.len() as i64 == PAGE;
        for change in &page.changes {
            let bytes = event(change).map_err(|err| {
                tracing::error!(%err, "could not encode a change");
                None
            })?;
            match outbox.send(bytes, patience, slow.clone()).await {
                Ok(()) => *position = change.seq,
                Err(NotSent::Gone) => return Err(Some(End::Closed)),
                Err(NotSent::Slow) => {
                    metrics::counter!("event_streams_dropped_slow").increment(1);
                    return Err(Some(End::Closed));
                }
            }
        }
        if !full {
            // Everything up to the head was in this snapshot.
            *position = (*position).max(page.head);
            return Ok(());
        }
    }
}

/// Whether an auth change leaves this stream's token good.
async fn still_allowed(pool: &PgPool, auth: &StreamAuth, signal: Result<AuthSignal, RecvError>) -> bool {
    match signal {
        Ok(AuthSignal::Token(token)) => token != auth.token_id,
        Ok(AuthSignal::User(user)) => user != auth.user,
        // Missed signals, or a listener that reconnected: ask the database.
        // Every stream of the process asks at once, over the streams' own small pool.
        Ok(AuthSignal::Recheck) | Err(RecvError::Lagged(_)) => {
            match users::token_standing(pool, auth.user, &auth.token_id).await {
                Ok(standing) => standing == TokenStanding::Good,
                // Cannot tell now; the next signal or the token's expiry settles it.
                Err(err) => {
                    tracing::warn!(%err, "could not check an event stream's token");
                    true
                }
            }
        }
        Err(RecvError::Closed) => true,
    }
}
