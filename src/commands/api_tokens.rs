//! Creating a personal API token: one transaction that locks the account, counts its live
//! tokens and inserts, so the cap holds however many processes create at once. Tokens touch the
//! account, never tasks, so this does not go through the per-user actor.

use sqlx::PgPool;

use crate::db::api_tokens::{self, ApiToken, Created, NewToken};

/// Live (unrevoked, unexpired) tokens one account may hold.
pub const MAX_LIVE_TOKENS: i64 = 50;

#[derive(Debug, thiserror::Error)]
pub enum CreateError {
    #[error("the account has {MAX_LIVE_TOKENS} live tokens")]
    LimitReached,
    #[error("the account is gone")]
    AccountGone,
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

pub async fn create(pool: &PgPool, token: NewToken<'_>) -> Result<ApiToken, CreateError> {
    let mut tx = pool.begin().await?;
    let created = api_tokens::insert(&mut tx, token, MAX_LIVE_TOKENS).await?;
    let token = match created {
        Created::Token(token) => token,
        Created::LimitReached => return Err(CreateError::LimitReached),
        Created::AccountGone => return Err(CreateError::AccountGone),
    };
    tx.commit().await?;
    Ok(token)
}
