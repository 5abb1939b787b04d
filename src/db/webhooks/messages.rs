//! The delivery log, and the messages an owner asks for: a retry of one, and a ping.

use chrono::{DateTime, Utc};
use sqlx::{PgExecutor, PgPool};
use uuid::Uuid;

use super::sending;

/// One message to one endpoint, with its latest attempt.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Message {
    pub id: Uuid,
    pub seq: i64,
    pub event_type: String,
    /// `pending`, `succeeded` or `failed` (given up, or refused for good).
    pub status: String,
    pub attempts: i32,
    pub next_attempt_at: DateTime<Utc>,
    pub last_attempt_at: Option<DateTime<Utc>>,
    pub status_code: Option<i32>,
    pub duration_ms: Option<i32>,
    pub response_body: Option<String>,
    pub error: Option<String>,
    pub created_at: DateTime<Utc>,
}

impl Message {
    /// The `webhook-id` header it is sent with.
    pub fn webhook_id(&self) -> String {
        webhook_id(self.id)
    }
}

pub fn webhook_id(id: Uuid) -> String {
    format!("msg_{}", id.simple())
}

const COLUMNS: &str = "m.id, m.seq, m.event_type, m.status, m.attempts, m.next_attempt_at, m.last_attempt_at, \
     m.status_code, m.duration_ms, m.response_body, m.error, m.created_at";

/// Up to `limit` messages of the endpoint older than `before` (a `seq`), newest first.
pub async fn page(
    conn: impl PgExecutor<'_>,
    user_id: Uuid,
    endpoint_id: Uuid,
    before: Option<i64>,
    limit: i64,
) -> Result<Vec<Message>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM webhook_messages m
         WHERE m.endpoint_id = $1 AND m.user_id = $4 AND ($2::bigint IS NULL OR m.seq < $2)
         ORDER BY m.seq DESC LIMIT $3"
    )))
    .bind(endpoint_id)
    .bind(before)
    .bind(limit)
    .bind(user_id)
    .fetch_all(conn)
    .await
}

/// Makes one of the owner's messages due again now (whatever became of it before) and wakes
/// the endpoint's sender. `None` when there is no such message of the owner's.
pub async fn retry(
    pool: &PgPool,
    user_id: Uuid,
    endpoint_id: Uuid,
    message_id: Uuid,
) -> Result<Option<Message>, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let message: Option<Message> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "UPDATE webhook_messages m SET status = 'pending', next_attempt_at = now()
         FROM webhook_endpoints e
         WHERE m.id = $3 AND m.endpoint_id = $2 AND e.id = m.endpoint_id AND e.user_id = $1
         RETURNING {COLUMNS}"
    )))
    .bind(user_id)
    .bind(endpoint_id)
    .bind(message_id)
    .fetch_optional(&mut *tx)
    .await?;
    if message.is_some() {
        sending::wake(&mut tx, endpoint_id, user_id).await?;
    }
    tx.commit().await?;
    Ok(message)
}

/// Queues a `ping` to the endpoint, after whatever it already waits to receive. `None` when
/// the endpoint is not the owner's or is disabled.
pub async fn ping(pool: &PgPool, user_id: Uuid, endpoint_id: Uuid) -> Result<Option<Message>, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let seq: Option<i64> = sqlx::query_scalar(
        "UPDATE webhook_endpoints SET last_seq = last_seq + 1
         WHERE id = $1 AND user_id = $2 AND enabled RETURNING last_seq",
    )
    .bind(endpoint_id)
    .bind(user_id)
    .fetch_optional(&mut *tx)
    .await?;
    let Some(seq) = seq else { return Ok(None) };
    let message: Message = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "INSERT INTO webhook_messages AS m (id, user_id, endpoint_id, seq, event_type, resource, snapshot, change_seq)
         VALUES ($1, $4, $2, $3, 'ping', 'none', jsonb_build_object('endpoint_id', $2::text),
                 coalesce((SELECT change_seq FROM task_counts WHERE user_id = $4), 0))
         RETURNING {COLUMNS}"
    )))
    .bind(Uuid::new_v4())
    .bind(endpoint_id)
    .bind(seq)
    .bind(user_id)
    .fetch_one(&mut *tx)
    .await?;
    sending::wake(&mut tx, endpoint_id, user_id).await?;
    tx.commit().await?;
    Ok(Some(message))
}
