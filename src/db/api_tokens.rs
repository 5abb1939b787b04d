//! Queries on personal API tokens. Only a digest of each secret is stored (see the migration).
//!
//! Revocation `NOTIFY`s `auth_changes` with `token:pat:<id>` in the transaction that makes it,
//! the channel logout uses, so event streams opened with the token end on every web process.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::{PgConnection, PgExecutor};
use uuid::Uuid;

/// The key under which the token cache, event tickets and `auth_changes` name an API token.
pub fn token_key(id: Uuid) -> String {
    format!("pat:{id}")
}

/// A token as its owner sees it: everything but the secret.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
#[cfg_attr(feature = "web", derive(utoipa::ToSchema))]
pub struct ApiToken {
    pub id: Uuid,
    pub name: String,
    /// The scopes it carries, as `tasks:read` and so on.
    pub scopes: Vec<String>,
    /// The token's prefix and last four characters, to tell tokens apart; not a secret.
    pub hint: String,
    pub created_at: DateTime<Utc>,
    /// Null: the token does not expire.
    pub expires_at: Option<DateTime<Utc>>,
    /// Updated at most once a minute, so it may lag by that much.
    pub last_used_at: Option<DateTime<Utc>>,
}

const COLUMNS: &str = "id, name, scopes, hint, created_at, expires_at, last_used_at";

pub struct NewToken<'a> {
    pub user_id: Uuid,
    pub name: &'a str,
    pub scopes: &'a [String],
    pub selector: &'a str,
    pub digest: &'a [u8],
    pub hint: &'a str,
    pub expires_at: Option<DateTime<Utc>>,
}

#[derive(Debug)]
pub enum Created {
    Token(ApiToken),
    /// The account already has `max_live` live tokens.
    LimitReached,
    AccountGone,
}

/// Inserts a token unless the account has `max_live` live (unrevoked, unexpired) ones. The
/// account row is locked first, so concurrent creations on any process count one at a time.
pub async fn insert(
    conn: &mut PgConnection,
    token: NewToken<'_>,
    max_live: i64,
) -> Result<Created, sqlx::Error> {
    let locked: Option<i32> = sqlx::query_scalar("SELECT 1 FROM users WHERE id = $1 FOR NO KEY UPDATE")
        .bind(token.user_id)
        .fetch_optional(&mut *conn)
        .await?;
    if locked.is_none() {
        return Ok(Created::AccountGone);
    }
    let live: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM api_tokens
          WHERE user_id = $1 AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now())",
    )
    .bind(token.user_id)
    .fetch_one(&mut *conn)
    .await?;
    if live >= max_live {
        return Ok(Created::LimitReached);
    }
    let created = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "INSERT INTO api_tokens (id, user_id, name, scopes, selector, digest, hint, expires_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
         RETURNING {COLUMNS}"
    )))
    .bind(Uuid::now_v7())
    .bind(token.user_id)
    .bind(token.name)
    .bind(token.scopes)
    .bind(token.selector)
    .bind(token.digest)
    .bind(token.hint)
    .bind(token.expires_at)
    .fetch_one(conn)
    .await?;
    Ok(Created::Token(created))
}

/// The caller's unrevoked tokens, expired ones included, oldest first.
pub async fn list(conn: impl PgExecutor<'_>, user_id: Uuid) -> Result<Vec<ApiToken>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM api_tokens WHERE user_id = $1 AND revoked_at IS NULL ORDER BY created_at, id"
    )))
    .bind(user_id)
    .fetch_all(conn)
    .await
}

/// Revokes one of the user's tokens; false when it is not theirs or already revoked.
pub async fn revoke(conn: impl PgExecutor<'_>, user_id: Uuid, id: Uuid) -> Result<bool, sqlx::Error> {
    let revoked: i64 = sqlx::query_scalar(
        "WITH revoked AS (
             UPDATE api_tokens SET revoked_at = now()
              WHERE id = $1 AND user_id = $2 AND revoked_at IS NULL
          RETURNING id)
         SELECT count(*) FROM revoked, pg_notify('auth_changes', 'token:pat:' || revoked.id::text)",
    )
    .bind(id)
    .bind(user_id)
    .fetch_one(conn)
    .await?;
    Ok(revoked == 1)
}

/// Revokes every token of the user (a password change), notifying each.
pub async fn revoke_all(conn: impl PgExecutor<'_>, user_id: Uuid) -> Result<u64, sqlx::Error> {
    let revoked: i64 = sqlx::query_scalar(
        "WITH revoked AS (
             UPDATE api_tokens SET revoked_at = now()
              WHERE user_id = $1 AND revoked_at IS NULL
          RETURNING id)
         SELECT count(*) FROM revoked, pg_notify('auth_changes', 'token:pat:' || revoked.id::text)",
    )
    .bind(user_id)
    .fetch_one(conn)
    .await?;
    Ok(revoked as u64)
}

/// What authenticating a token needs, found by its selector.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct StoredToken {
    pub id: Uuid,
    pub user_id: Uuid,
    pub scopes: Vec<String>,
    pub digest: Vec<u8>,
    pub expires_at: Option<DateTime<Utc>>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub revoked: bool,
}

pub async fn find_by_selector(
    conn: impl PgExecutor<'_>,
    selector: &str,
) -> Result<Option<StoredToken>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, user_id, scopes, digest, expires_at, last_used_at, revoked_at IS NOT NULL AS revoked
           FROM api_tokens WHERE selector = $1",
    )
    .bind(selector)
    .fetch_optional(conn)
    .await
}

/// Records a use, unless one was recorded in the last minute: the condition is in the
/// statement, so processes racing on the same token write once between them.
pub async fn touch(conn: impl PgExecutor<'_>, user_id: Uuid, id: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE api_tokens SET last_used_at = now()
          WHERE id = $1 AND user_id = $2
            AND (last_used_at IS NULL OR last_used_at < now() - interval '1 minute')",
    )
    .bind(id)
    .bind(user_id)
    .execute(conn)
    .await?;
    Ok(())
}
