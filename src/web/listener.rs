//! The web process's one `LISTEN` connection. It hears auth changes, for the token cache and for
//! streams whose token was revoked. Payloads carry only ids; readers fetch the rest. (Task
//! changes reach streams by polling, `events/heads.rs`: writes do not notify.)

use std::sync::{Arc, Weak};
use std::time::Duration;

use sqlx::PgPool;
use sqlx::postgres::PgListener;

use super::auth::cache::{self, TokenCache};
use super::events::{AuthSignal, Hub};

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
                if let Err(err) = listener.listen(cache::CHANNEL).await {
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
            // A revocation may have happened while no one listened.
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
        cache.invalidate(payload);
        hub.auth_changed(auth_signal(payload));
    }
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
    use uuid::Uuid;

    #[test]
    fn payloads_parse_and_unknown_ones_are_safe() {
        let user = Uuid::new_v4();
        assert_eq!(auth_signal("token:abc"), AuthSignal::Token("abc".into()));
        assert_eq!(auth_signal(&format!("user:{user}")), AuthSignal::User(user));
        assert_eq!(auth_signal("user:nope"), AuthSignal::Recheck);
        assert_eq!(auth_signal("other"), AuthSignal::Recheck);
    }
}
