//! Stored responses for `Idempotency-Key`, scoped per user and replayed for a configured time.

use sqlx::PgConnection;
use uuid::Uuid;

pub struct StoredResponse {
    pub fingerprint: String,
    pub status: u16,
    pub body: serde_json::Value,
}

/// The live (not yet expired) response stored under this key, locked until the transaction ends.
pub async fn find(
    conn: &mut PgConnection,
    user_id: Uuid,
    key: &str,
    ttl_hours: u32,
) -> Result<Option<StoredResponse>, sqlx::Error> {
    let row: Option<(String, i16, serde_json::Value)> = sqlx::query_as(
        "SELECT fingerprint, status, body FROM idempotency_keys
         WHERE user_id = $1 AND key = $2 AND created_at > now() - make_interval(hours => $3)
         FOR UPDATE",
    )
    .bind(user_id)
    .bind(key)
    .bind(i32::try_from(ttl_hours).unwrap_or(i32::MAX))
    .fetch_optional(conn)
    .await?;
    Ok(row.map(|(fingerprint, status, body)| StoredResponse {
        fingerprint,
        status: u16::try_from(status).unwrap_or(200),
        body,
    }))
}

/// Stores a response, replacing an expired one under the same key. Returns false when a live
/// one exists: another process committed the same key first.
pub async fn store(
    conn: &mut PgConnection,
    user_id: Uuid,
    key: &str,
    response: &StoredResponse,
    ttl_hours: u32,
) -> Result<bool, sqlx::Error> {
    let stored = sqlx::query(
        "INSERT INTO idempotency_keys (user_id, key, fingerprint, status, body)
         VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (user_id, key) DO UPDATE
             SET fingerprint = EXCLUDED.fingerprint, status = EXCLUDED.status,
                 body = EXCLUDED.body, created_at = now()
             WHERE idempotency_keys.created_at <= now() - make_interval(hours => $6)",
    )
    .bind(user_id)
    .bind(key)
    .bind(&response.fingerprint)
    .bind(i16::try_from(response.status).unwrap_or(200))
    .bind(&response.body)
    .bind(i32::try_from(ttl_hours).unwrap_or(i32::MAX))
    .execute(conn)
    .await?;
    Ok(stored.rows_affected() == 1)
}
