//! Calendar feeds: their secrets, and creating one in a transaction that locks the account,
//! counts its feeds and inserts, so the cap holds however many processes create at once. A
//! feed touches the account, never tasks, so this does not go through the per-user actor.
//!
//! A secret is `todo_cal_` and 43 characters of base64url: 32 random bytes (256 bits) from the
//! operating system's CSPRNG. Its SHA-256 digest is stored and looked up; a fast hash suits a
//! secret this random.

use argon2::password_hash::rand_core::{OsRng, RngCore};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use secrecy::SecretString;
use sha2::{Digest, Sha256};
use sqlx::PgPool;

use crate::db::calendar_feeds::{self, CalendarFeed, Created, NewFeed};

/// Feeds one account may hold.
pub const MAX_FEEDS: i64 = 20;

/// What secret scanners look for.
pub const PREFIX: &str = "todo_cal_";
const RANDOM_CHARS: usize = 43;

pub struct NewSecret {
    pub secret: SecretString,
    pub digest: Vec<u8>,
    /// The prefix and the last four characters, for lists.
    pub hint: String,
}

pub fn generate() -> NewSecret {
    let mut bytes = [0u8; 32];
    OsRng.fill_bytes(&mut bytes);
    let random = URL_SAFE_NO_PAD.encode(bytes);
    let secret = format!("{PREFIX}{random}");
    NewSecret {
        digest: digest(&secret),
        hint: format!("{PREFIX}…{}", &random[RANDOM_CHARS - 4..]),
        secret: SecretString::from(secret),
    }
}

/// The digest to look a presented secret up by; `None` when it is not shaped as one, so
/// garbage never reaches the database.
pub fn lookup_digest(presented: &str) -> Option<Vec<u8>> {
    let random = presented.strip_prefix(PREFIX)?;
    let well_formed = random.len() == RANDOM_CHARS
        && random.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    well_formed.then(|| digest(presented))
}

fn digest(secret: &str) -> Vec<u8> {
    Sha256::digest(secret.as_bytes()).to_vec()
}

#[derive(Debug, thiserror::Error)]
pub enum CreateError {
    #[error("the account has {MAX_FEEDS} feeds")]
    LimitReached,
    #[error("no such project")]
    NoSuchProject,
    #[error("the account is gone")]
    AccountGone,
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

pub async fn create(pool: &PgPool, feed: NewFeed<'_>) -> Result<CalendarFeed, CreateError> {
    let mut tx = pool.begin().await?;
    let feed = match calendar_feeds::insert(&mut tx, feed, MAX_FEEDS).await? {
        Created::Feed(feed) => feed,
        Created::LimitReached => return Err(CreateError::LimitReached),
        Created::NoSuchProject => return Err(CreateError::NoSuchProject),
        Created::AccountGone => return Err(CreateError::AccountGone),
    };
    tx.commit().await?;
    Ok(feed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    #[test]
    fn a_secret_is_prefixed_random_and_found_by_its_digest() {
        let a = generate();
        let b = generate();
        let secret = a.secret.expose_secret();
        assert_eq!(secret.len(), PREFIX.len() + RANDOM_CHARS);
        assert_ne!(secret, b.secret.expose_secret());
        assert_eq!(lookup_digest(secret), Some(a.digest.clone()));
        assert!(secret.ends_with(&a.hint[a.hint.len() - 4..]));
        assert_eq!(lookup_digest("todo_cal_short"), None);
        assert_eq!(lookup_digest(&format!("todo_pat_{}", &secret[PREFIX.len()..])), None);
    }
}
