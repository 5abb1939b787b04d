//! The web process's one `LISTEN` connection. It hears two channels: auth changes, for the token
//! cache and for streams whose token was revoked; and task changes, which wake the event
//! streams of the user that changed. Payloads carry only ids and numbers; readers fetch the rest.

use std::sync::{Arc, Weak};
use std::time::Duration;

use sqlx::PgPool;
use sqlx::postgres::PgListener;
use uuid::Uuid;

use super::auth::cache::{self, TokenCache};
use super::events::{AuthSignal, Hub};
use crate::db::changes;

/// Everything the listener reports to. Held weakly: the listener ends once the app is gone.
pub struct Subscribers {
    pub cache: Weak<TokenCache>,
    pub hub: Weak<Hub>,
}

impl Subscribers {
    fn upgrade(&self) -> Option<(Arc<TokenCache>, Arc<Hub>)> {
        Some((self.cache.upgrade()?, self.hub.upgrade()?))
    }
}

/// Listens for as long as the app lives, reconnecting with backoff.
pub async fn listen(pool: PgPool, subscribers: Subscribers) {
    let mut delay = Duration::from_millis(100);
    loop {
        let Some((cache, _)) = subscribers.upgrade() else { return };
        cache.distrust();
        drop(cache);
        match PgListener::connect_with(&pool).await {
            Ok(mut listener) => {
                // Report a lost connection at once rather than reconnect inside `try_recv`, so
                // the cache is distrusted for the whole gap.
                listener.eager_reconnect(false);
                if let Err(err) = listener.listen_all([cache::CHANNEL, changes::CHANNEL]).await {
                    tracing::warn!(%err, "could not LISTEN; authenticating through the database");
                } else {
                    delay = Duration::from_millis(100);
                    if !follow(&mut listener, &subscribers).await {
                        return;
                    }
                }
            }
            Err(err) => {
                tracing::warn!(%err, "the listener cannot connect; authenticating through the database")
            }
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(5));
    }
}

/// Applies notifications until the connection is lost (false once the app is gone).
async fn follow(listener: &mut PgListener, subscribers: &Subscribers) -> bool {
    match subscribers.upgrade() {
        Some((cache, hub)) => {
            cache.trust();
            // Anything may have happened while no one listened.
            hub.wake_all();
            hub.auth_changed(AuthSignal::Recheck);
        }
        None => return false,
    }
    loop {
        // `None`: the connection dropped, and notifications may have been lost with it.
        let notification = match listener.try_recv().await {
            Ok(Some(notification)) => notification,
            Ok(None) | Err(_) => {
                tracing::warn!("the listener lost its connection; reconnecting");
                return true;
            }
        };
        let Some((cache, hub)) = subscribers.upgrade() else { return false };
        let payload = notification.payload();
        match notification.channel() {
            changes::CHANNEL => match parse_change(payload) {
                Some((user, seq)) => hub.changed(user, seq),
                None => hub.wake_all(),
            },
            _ => {
                cache.invalidate(payload);
                hub.auth_changed(auth_signal(payload));
            }
        }
    }
}

/// `"<user id> <change number>"`.
fn parse_change(payload: &str) -> Option<(Uuid, i64)> {
    let (user, seq) = payload.split_once(' ')?;
    Some((user.parse().ok()?, seq.parse().ok()?))
}

/// `"token:<id>"` or `"user:<id>"`; anything else makes every stream check its token.
fn auth_signal(payload: &str) -> AuthSignal {
    match payload.split_once(':') {
        Some(("token", token)) => AuthSignal::Token(token.to_owned()),
        Some(("user", user)) => user.parse().map_or(AuthSignal::Recheck, AuthSignal::User),
        _ => AuthSignal::Recheck,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_parse_and_unknown_ones_are_safe() {
        let user = Uuid::new_v4();
        assert_eq!(parse_change(&format!("{user} 42")), Some((user, 42)));
        assert_eq!(parse_change("garbage"), None);
        assert_eq!(auth_signal("token:abc"), AuthSignal::Token("abc".into()));
        assert_eq!(auth_signal(&format!("user:{user}")), AuthSignal::User(user));
        assert_eq!(auth_signal("user:nope"), AuthSignal::Recheck);
        assert_eq!(auth_signal("other"), AuthSignal::Recheck);
    }
}
