//! Queries on accounts and revoked tokens.

use chrono::{DateTime, NaiveTime, Utc};
use serde::Serialize;
use sqlx::{PgConnection, PgExecutor};
use uuid::Uuid;

/// An account as stored, minus the password hash.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct User {
    pub id: Uuid,
    pub email: Option<String>,
    pub name: Option<String>,
    pub timezone: String,
    pub email_reminders: bool,
    /// Whether `email` was confirmed through a link sent to it; no reminder goes out until then.
    pub email_verified: bool,
    /// An address the user asked to change to, waiting for its verification.
    pub pending_email: Option<String>,
    /// The local wall time of the daily agenda email; `None` when it is off.
    pub agenda_time: Option<NaiveTime>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

const USER_COLUMNS: &str = "id, email, name, timezone, email_reminders, email_verified, pending_email, agenda_time, created_at, updated_at";

#[derive(Debug, thiserror::Error)]
pub enum CreateUserError {
    #[error("email already registered")]
    EmailTaken,
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

pub struct NewUser<'a> {
    pub email: &'a str,
    pub password_hash: &'a str,
    pub name: Option<&'a str>,
    pub timezone: &'a str,
}

pub async fn insert(conn: impl PgExecutor<'_>, user: NewUser<'_>) -> Result<User, CreateUserError> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "INSERT INTO users (id, email, password_hash, name, timezone) VALUES ($1, $2, $3, $4, $5)
         RETURNING {USER_COLUMNS}"
    )))
    .bind(Uuid::now_v7())
    .bind(user.email)
    .bind(user.password_hash)
    .bind(user.name)
    .bind(user.timezone)
    .fetch_one(conn)
    .await
    .map_err(|e| match &e {
        sqlx::Error::Database(db) if db.constraint() == Some("users_email_key") => {
            CreateUserError::EmailTaken
        }
        _ => CreateUserError::Database(e),
    })
}

/// The user with this email (case-insensitive) and their password hash, for login.
pub async fn find_credentials(
    conn: impl PgExecutor<'_>,
    email: &str,
) -> Result<Option<(Uuid, Option<String>)>, sqlx::Error> {
    sqlx::query_as("SELECT id, password_hash FROM users WHERE lower(email) = lower($1)")
        .bind(email)
        .fetch_optional(conn)
        .await
}

/// Key-share locks the account for the rest of the transaction: it blocks only the account's
/// deletion. Jobs take it before any task row, the order account deletion locks them in, so the
/// two cannot deadlock. False when the account is gone.
pub async fn lock_key_share(conn: &mut PgConnection, id: Uuid) -> Result<bool, sqlx::Error> {
    let found: Option<i32> = sqlx::query_scalar("SELECT 1 FROM users WHERE id = $1 FOR KEY SHARE")
        .bind(id)
        .fetch_optional(conn)
        .await?;
    Ok(found.is_some())
}

/// Locks the account against other project creations (and profile changes) until the
/// transaction ends; false when it is gone.
pub async fn lock_for_project_create(conn: &mut PgConnection, id: Uuid) -> Result<bool, sqlx::Error> {
    let found: Option<i32> = sqlx::query_scalar("SELECT 1 FROM users WHERE id = $1 FOR NO KEY UPDATE")
        .bind(id)
        .fetch_optional(conn)
        .await?;
    Ok(found.is_some())
}

pub async fn find(conn: impl PgExecutor<'_>, id: Uuid) -> Result<Option<User>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1")))
        .bind(id)
        .fetch_optional(conn)
        .await
}

/// The user behind an external issuer's `sub`, if the row exists.
pub async fn find_external(
    conn: impl PgExecutor<'_>,
    external_id: &str,
) -> Result<Option<Uuid>, sqlx::Error> {
    sqlx::query_scalar("SELECT id FROM users WHERE external_id = $1")
        .bind(external_id)
        .fetch_optional(conn)
        .await
}

/// Finds the user behind an external issuer's `sub`, creating the row on first sight. The email
/// is kept only when no other account has it, so a token can never take over a local account.
///
/// `None` when the account was deleted after this token was issued (or the token does not say
/// when it was issued): the deletion sticks until the issuer's older tokens have expired.
pub async fn find_or_create_external(
    conn: &mut PgConnection,
    external: ExternalIdentity<'_>,
) -> Result<Option<ExternalAccount>, sqlx::Error> {
    let ExternalIdentity { external_id, email, email_verified, issued_at } = external;
    // The common case, a known user, is one read and no write.
    let (id, deleted_at): (Option<Uuid>, Option<DateTime<Utc>>) = sqlx::query_as(
        "SELECT (SELECT id FROM users WHERE external_id = $1),
                (SELECT deleted_at FROM deleted_external_accounts
                  WHERE external_id = $1 AND forget_after > now())",
    )
    .bind(external_id)
    .fetch_one(&mut *conn)
    .await?;
    if let Some(id) = id {
        return Ok(Some(ExternalAccount { id, unverified_email: None }));
    }
    if deleted_at.is_some_and(|deleted| issued_at.is_none_or(|issued| issued <= deleted)) {
        return Ok(None);
    }
    let created = match insert_external(conn, external_id, email, email_verified).await {
        // A registration took the email between our check and insert: keep the account, drop the email.
        Err(sqlx::Error::Database(db)) if db.constraint() == Some("users_email_key") => {
            insert_external(conn, external_id, None, false).await
        }
        other => other,
    }?;
    match created {
        Some((id, kept_email, verified)) => {
            Ok(Some(ExternalAccount { id, unverified_email: kept_email.filter(|_| !verified) }))
        }
        // A concurrent first request created the row (and asked for any verification): use it.
        None => {
            let id = sqlx::query_scalar("SELECT id FROM users WHERE external_id = $1")
                .bind(external_id)
                .fetch_optional(conn)
                .await?;
            Ok(id.map(|id| ExternalAccount { id, unverified_email: None }))
        }
    }
}

/// Who an external issuer's token says the caller is.
#[derive(Debug, Clone, Copy)]
pub struct ExternalIdentity<'a> {
    pub external_id: &'a str,
    pub email: Option<&'a str>,
    /// The issuer's `email_verified` claim: such an address is trusted as verified.
    pub email_verified: bool,
    /// The `iat` claim, when the issuer sets one.
    pub issued_at: Option<DateTime<Utc>>,
}

/// The local account behind an external identity.
#[derive(Debug, Clone)]
pub struct ExternalAccount {
    pub id: Uuid,
    /// Set when this call created the account with an address the issuer did not vouch for:
    /// the caller asks for its verification in the same transaction.
    pub unverified_email: Option<String>,
}

async fn insert_external(
    conn: &mut PgConnection,
    external_id: &str,
    email: Option<&str>,
    email_verified: bool,
) -> Result<Option<(Uuid, Option<String>, bool)>, sqlx::Error> {
    sqlx::query_as(
        "INSERT INTO users (id, external_id, email, email_verified)
         VALUES ($1, $2, CASE WHEN EXISTS (SELECT 1 FROM users WHERE lower(email) = lower($3))
                              THEN NULL ELSE $3 END, $4)
         ON CONFLICT (external_id) DO NOTHING
         RETURNING id, email, email_verified",
    )
    .bind(Uuid::now_v7())
    .bind(external_id)
    .bind(email)
    .bind(email_verified)
    .fetch_optional(conn)
    .await
}

/// Whether the token's user still exists and the token has not been revoked, in one round trip.
/// An API token (`pat:<id>`) is revoked when its row says so, or it expired.
pub async fn token_standing(
    conn: impl PgExecutor<'_>,
    user_id: Uuid,
    token_id: &str,
) -> Result<TokenStanding, sqlx::Error> {
    let api_token = token_id.strip_prefix("pat:").map(|id| id.parse::<Uuid>().unwrap_or_default());
    let row: Option<(bool,)> = sqlx::query_as(
        "SELECT CASE WHEN $3::uuid IS NULL
                     THEN EXISTS (SELECT 1 FROM revoked_tokens WHERE token_id = $2)
                     ELSE NOT EXISTS (SELECT 1 FROM api_tokens
                                       WHERE id = $3 AND user_id = $1 AND revoked_at IS NULL
                                         AND (expires_at IS NULL OR expires_at > now()))
                END
           FROM users WHERE id = $1",
    )
    .bind(user_id)
    .bind(token_id)
    .bind(api_token)
    .fetch_optional(conn)
    .await?;
    Ok(match row {
        None => TokenStanding::UnknownUser,
        Some((true,)) => TokenStanding::Revoked,
        Some((false,)) => TokenStanding::Good,
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenStanding {
    Good,
    Revoked,
    UnknownUser,
}

pub async fn revoke_token(
    conn: impl PgExecutor<'_>,
    token_id: &str,
    expires_at: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    // Every web process's token cache drops the token when this commits.
    sqlx::query(
        "WITH revoked AS (INSERT INTO revoked_tokens (token_id, expires_at) VALUES ($1, $2) ON CONFLICT DO NOTHING)
         SELECT pg_notify('auth_changes', 'token:' || $1)",
    )
    .bind(token_id)
    .bind(expires_at)
    .execute(conn)
    .await?;
    Ok(())
}

/// The account's password hash: `None` when the account is gone, `Some(None)` when it signs in
/// only through an external issuer.
pub async fn password_hash(
    conn: impl PgExecutor<'_>,
    id: Uuid,
) -> Result<Option<Option<String>>, sqlx::Error> {
    sqlx::query_scalar("SELECT password_hash FROM users WHERE id = $1").bind(id).fetch_optional(conn).await
}

/// Replaces the password hash; false when the account is gone.
pub async fn set_password_hash(conn: impl PgExecutor<'_>, id: Uuid, hash: &str) -> Result<bool, sqlx::Error> {
    let updated = sqlx::query("UPDATE users SET password_hash = $2, updated_at = now() WHERE id = $1")
        .bind(id)
        .bind(hash)
        .execute(conn)
        .await?;
    Ok(updated.rows_affected() == 1)
}

/// A profile change: `None` leaves a column as it is; `Some(None)` clears `name`.
#[derive(Debug, Default)]
pub struct ProfileChange {
    pub name: Option<Option<String>>,
    pub timezone: Option<String>,
    pub email_reminders: Option<bool>,
    /// `Some(None)` turns the agenda off.
    pub agenda_time: Option<Option<NaiveTime>>,
}

impl ProfileChange {
    /// Whether the change moves the daily agenda: its time or the zone that time is read in.
    pub fn moves_agenda(&self) -> bool {
        self.agenda_time.is_some() || self.timezone.is_some()
    }
}

pub async fn update_profile(
    conn: impl PgExecutor<'_>,
    id: Uuid,
    change: ProfileChange,
) -> Result<Option<User>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "UPDATE users SET
             name = CASE WHEN $2 THEN $3 ELSE name END,
             timezone = COALESCE($4, timezone),
             email_reminders = COALESCE($5, email_reminders),
             agenda_time = CASE WHEN $6 THEN $7 ELSE agenda_time END,
             updated_at = now()
         WHERE id = $1
         RETURNING {USER_COLUMNS}"
    )))
    .bind(id)
    .bind(change.name.is_some())
    .bind(change.name.flatten())
    .bind(change.timezone)
    .bind(change.email_reminders)
    .bind(change.agenda_time.is_some())
    .bind(change.agenda_time.flatten())
    .fetch_optional(conn)
    .await
}

/// Deletes the account; its tasks go with it through `ON DELETE CASCADE`. An external account
/// is remembered for `remember_external_secs`, so its issuer's older tokens cannot recreate it.
pub async fn delete(
    conn: &mut PgConnection,
    id: Uuid,
    remember_external_secs: u64,
) -> Result<bool, sqlx::Error> {
    let deleted: i64 = sqlx::query_scalar(
        "WITH gone AS (DELETE FROM users WHERE id = $1 RETURNING external_id),
              -- None of these has a foreign key to cascade from (see the sync migration).
              counts AS (DELETE FROM task_counts WHERE user_id = $1),
              tombstones AS (DELETE FROM task_tombstones WHERE user_id = $1),
              departures AS (DELETE FROM caldav_departures WHERE user_id = $1),
              remembered AS (
                INSERT INTO deleted_external_accounts (external_id, deleted_at, forget_after)
                SELECT external_id, now(), now() + make_interval(secs => $2) FROM gone
                 WHERE external_id IS NOT NULL
                ON CONFLICT (external_id) DO UPDATE
                    SET deleted_at = EXCLUDED.deleted_at, forget_after = EXCLUDED.forget_after)
         -- Every web process's token cache forgets the user's tokens when this commits.
         SELECT count(*) FROM gone, pg_notify('auth_changes', 'user:' || $1::text)",
    )
    .bind(id)
    .bind(remember_external_secs as f64)
    .fetch_one(conn)
    .await?;
    Ok(deleted == 1)
}
