//! Webhook endpoints: the owner's CRUD and secret rotation. Messages to them are written by the
//! triggers of migration `20261210000001_webhooks.sql`; the delivery log and manual sends are in
//! [`messages`], and what the worker's sender does in [`sending`].

pub mod attempts;
pub mod messages;
pub mod sending;

use chrono::{DateTime, Utc};
use sqlx::{PgExecutor, PgPool};
use uuid::Uuid;

use crate::webhooks::secret::SigningKey;

/// An endpoint as stored. The secrets stay here; views show none of them.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Endpoint {
    pub id: Uuid,
    pub user_id: Uuid,
    pub url: String,
    pub description: String,
    pub events: Vec<String>,
    pub enabled: bool,
    pub disabled_reason: Option<String>,
    pub secret: Vec<u8>,
    pub previous_secret: Option<Vec<u8>>,
    pub previous_secret_until: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub version: i64,
}

impl Endpoint {
    /// The keys that sign a message sent now: the current one, and the previous one while its
    /// overlap after a rotation lasts.
    pub fn signing_keys(&self, now: DateTime<Utc>) -> Vec<SigningKey> {
        let mut keys = vec![SigningKey::from_bytes(self.secret.clone())];
        if let (Some(previous), Some(until)) = (&self.previous_secret, self.previous_secret_until)
            && until > now
        {
            keys.push(SigningKey::from_bytes(previous.clone()));
        }
        keys
    }
}

pub(crate) const COLUMNS: &str = "id, user_id, url, description, events, enabled, disabled_reason, secret, \
     previous_secret, previous_secret_until, created_at, updated_at, version";

/// The fields an owner writes.
#[derive(Debug, Clone)]
pub struct EndpointFields {
    pub url: String,
    pub description: String,
    pub events: Vec<String>,
    pub enabled: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error("the account holds its maximum of webhook endpoints")]
    Limit,
    #[error("no such endpoint")]
    NotFound,
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

fn limit_or(err: sqlx::Error) -> WriteError {
    match &err {
        sqlx::Error::Database(db) if db.constraint() == Some("webhook_endpoints_limit") => WriteError::Limit,
        // The account went while the request was on its way.
        sqlx::Error::Database(db) if db.constraint() == Some("webhook_endpoints_user_id_fkey") => {
            WriteError::NotFound
        }
        _ => WriteError::Database(err),
    }
}

pub async fn create(
    pool: &PgPool,
    user_id: Uuid,
    fields: &EndpointFields,
    key: &SigningKey,
) -> Result<Endpoint, WriteError> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "INSERT INTO webhook_endpoints (id, user_id, url, description, events, enabled, secret)
         VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING {COLUMNS}"
    )))
    .bind(Uuid::now_v7())
    .bind(user_id)
    .bind(&fields.url)
    .bind(&fields.description)
    .bind(&fields.events)
    .bind(fields.enabled)
    .bind(key.as_bytes())
    .fetch_one(pool)
    .await
    .map_err(limit_or)
}

pub async fn list(conn: impl PgExecutor<'_>, user_id: Uuid) -> Result<Vec<Endpoint>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM webhook_endpoints WHERE user_id = $1 ORDER BY created_at, id LIMIT 100"
    )))
    .bind(user_id)
    .fetch_all(conn)
    .await
}

pub async fn find(
    conn: impl PgExecutor<'_>,
    user_id: Uuid,
    id: Uuid,
) -> Result<Option<Endpoint>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM webhook_endpoints WHERE id = $1 AND user_id = $2"
    )))
    .bind(id)
    .bind(user_id)
    .fetch_optional(conn)
    .await
}

/// Writes the owner's fields. Turning an endpoint back on clears why it was off and the run of
/// failures, and wakes its sender for the messages that waited.
pub async fn update(
    pool: &PgPool,
    user_id: Uuid,
    id: Uuid,
    fields: &EndpointFields,
) -> Result<Endpoint, WriteError> {
    let mut tx = pool.begin().await?;
    let was_enabled: Option<bool> = sqlx::query_scalar(
        "SELECT enabled FROM webhook_endpoints WHERE id = $1 AND user_id = $2 FOR NO KEY UPDATE",
    )
    .bind(id)
    .bind(user_id)
    .fetch_optional(&mut *tx)
    .await?;
    let was_enabled = was_enabled.ok_or(WriteError::NotFound)?;
    let endpoint: Endpoint = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "UPDATE webhook_endpoints SET url = $3, description = $4, events = $5, enabled = $6,
                disabled_reason = CASE WHEN $6 THEN NULL ELSE disabled_reason END,
                failing_since = CASE WHEN $6 AND NOT enabled THEN NULL ELSE failing_since END,
                updated_at = now(), version = version + 1
         WHERE id = $1 AND user_id = $2 RETURNING {COLUMNS}"
    )))
    .bind(id)
    .bind(user_id)
    .bind(&fields.url)
    .bind(&fields.description)
    .bind(&fields.events)
    .bind(fields.enabled)
    .fetch_one(&mut *tx)
    .await?;
    if fields.enabled && !was_enabled {
        sending::wake(&mut tx, id, user_id).await?;
    }
    tx.commit().await?;
    Ok(endpoint)
}

/// Removes the endpoint and its messages; a sender holding it finds it gone.
pub async fn delete(pool: &PgPool, user_id: Uuid, id: Uuid) -> Result<bool, sqlx::Error> {
    let deleted = sqlx::query("DELETE FROM webhook_endpoints WHERE id = $1 AND user_id = $2")
        .bind(id)
        .bind(user_id)
        .execute(pool)
        .await?;
    Ok(deleted.rows_affected() == 1)
}

/// Puts `key` in place; the key it replaces keeps signing for `overlap_secs`.
pub async fn rotate(
    pool: &PgPool,
    user_id: Uuid,
    id: Uuid,
    key: &SigningKey,
    overlap_secs: u64,
) -> Result<Option<Endpoint>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "UPDATE webhook_endpoints SET previous_secret = secret,
                previous_secret_until = now() + make_interval(secs => $4), secret = $3,
                updated_at = now(), version = version + 1
         WHERE id = $1 AND user_id = $2 RETURNING {COLUMNS}"
    )))
    .bind(id)
    .bind(user_id)
    .bind(key.as_bytes())
    .bind(overlap_secs as f64)
    .fetch_optional(pool)
    .await
}
