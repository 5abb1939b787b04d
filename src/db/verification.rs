//! Queries behind address verification: the per-account send window, the per-address count
//! across accounts, the address waiting for verification, and applying a verified link.

use chrono::{DateTime, Duration, Utc};
use sqlx::{PgConnection, PgExecutor};
use uuid::Uuid;

/// The window the verification-email limit counts in.
pub const WINDOW: Duration = Duration::hours(1);

/// A verification email counted against the account's allowance, or not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Allowance {
    Granted,
    /// The window is used up until this instant.
    Exhausted {
        until: DateTime<Utc>,
    },
}

/// Counts one more verification email in the account's fixed window, unless `limit` are already
/// counted there. The row stays locked until the caller's transaction ends, so requests in
/// several web processes take turns. `None` when the account is gone.
pub async fn count_send(
    conn: &mut PgConnection,
    user_id: Uuid,
    limit: u32,
) -> Result<Option<Allowance>, sqlx::Error> {
    let row: Option<(Option<DateTime<Utc>>, i32, DateTime<Utc>)> = sqlx::query_as(
        "SELECT verification_window_start, verification_window_sends, now()
         FROM users WHERE id = $1 FOR NO KEY UPDATE",
    )
    .bind(user_id)
    .fetch_optional(&mut *conn)
    .await?;
    let Some((start, sends, now)) = row else { return Ok(None) };
    let (start, sends) = match start {
        Some(start) if start + WINDOW > now => (start, sends),
        _ => (now, 0),
    };
    if i64::from(sends) >= i64::from(limit) {
        return Ok(Some(Allowance::Exhausted { until: start + WINDOW }));
    }
    sqlx::query(
        "UPDATE users SET verification_window_start = $2, verification_window_sends = $3 WHERE id = $1",
    )
    .bind(user_id)
    .bind(start)
    .bind(sends + 1)
    .execute(conn)
    .await?;
    Ok(Some(Allowance::Granted))
}

/// Counts one more verification email to the address with this digest, from any account, unless
/// `limit` were already counted in the last [`WINDOW`]. A transaction-scoped advisory lock on
/// the address makes requests in several web processes take turns until the caller commits, so
/// together they cannot overshoot. A `limit` of 0 counts nothing and always grants.
pub async fn count_recipient(
    conn: &mut PgConnection,
    address_digest: &[u8],
    limit: u32,
) -> Result<Allowance, sqlx::Error> {
    if limit == 0 {
        return Ok(Allowance::Granted);
    }
    sqlx::query(
        "SELECT pg_advisory_xact_lock(hashtextextended('verification-cap:' || encode($1, 'hex'), 0))",
    )
    .bind(address_digest)
    .execute(&mut *conn)
    .await?;
    let (sends, oldest, now): (i64, Option<DateTime<Utc>>, DateTime<Utc>) = sqlx::query_as(
        "SELECT count(*), min(requested_at), now() FROM verification_recipients
         WHERE address_digest = $1 AND requested_at > now() - make_interval(secs => $2)",
    )
    .bind(address_digest)
    .bind(WINDOW.num_seconds() as f64)
    .fetch_one(&mut *conn)
    .await?;
    if sends >= i64::from(limit) {
        // A sliding window: room comes back as the oldest request leaves it.
        return Ok(Allowance::Exhausted { until: oldest.unwrap_or(now) + WINDOW });
    }
    sqlx::query("INSERT INTO verification_recipients (address_digest) VALUES ($1)")
        .bind(address_digest)
        .execute(conn)
        .await?;
    Ok(Allowance::Granted)
}

/// What an account's addresses look like to verification.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AddressState {
    pub email: Option<String>,
    pub email_verified: bool,
    pub pending_email: Option<String>,
    pub name: Option<String>,
}

impl AddressState {
    /// The address a verification email would go to now: the pending change, else an
    /// unverified current address. `None` when there is nothing to verify.
    pub fn awaiting(&self) -> Option<&str> {
        self.pending_email.as_deref().or(self.email.as_deref().filter(|_| !self.email_verified))
    }
}

/// Reads the account's addresses; `lock` holds the row until the transaction ends.
pub async fn state(
    conn: impl PgExecutor<'_>,
    user_id: Uuid,
    lock: bool,
) -> Result<Option<AddressState>, sqlx::Error> {
    let lock = if lock { " FOR NO KEY UPDATE" } else { "" };
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT email, email_verified, pending_email, name FROM users WHERE id = $1{lock}"
    )))
    .bind(user_id)
    .fetch_optional(conn)
    .await
}

/// Whether another account already has `email` (case-insensitively).
pub async fn email_taken(conn: impl PgExecutor<'_>, user_id: Uuid, email: &str) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM users WHERE lower(email) = lower($1) AND id <> $2)")
        .bind(email)
        .bind(user_id)
        .fetch_one(conn)
        .await
}

/// Sets (or with `None` clears) the address waiting for verification.
pub async fn set_pending(
    conn: &mut PgConnection,
    user_id: Uuid,
    pending: Option<&str>,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE users SET pending_email = $2, updated_at = now() WHERE id = $1")
        .bind(user_id)
        .bind(pending)
        .execute(conn)
        .await?;
    Ok(())
}

/// Why a verified address could not be applied.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// Another account took the address between the request and the click.
    #[error("the address belongs to another account now")]
    Taken,
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// Makes `address` the account's verified email: the pending change takes effect, or the
/// current address is marked verified.
pub async fn apply(conn: &mut PgConnection, user_id: Uuid, address: &str) -> Result<(), ApplyError> {
    sqlx::query(
        "UPDATE users SET email = $2, email_verified = true, pending_email = NULL, updated_at = now()
         WHERE id = $1",
    )
    .bind(user_id)
    .bind(address)
    .execute(conn)
    .await
    .map_err(|e| match &e {
        sqlx::Error::Database(db) if db.constraint() == Some("users_email_key") => ApplyError::Taken,
        _ => ApplyError::Database(e),
    })?;
    Ok(())
}
