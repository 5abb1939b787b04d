//! Single-use tickets that open an event stream without a header. Stored as a digest, so the
//! table never holds a usable ticket.

use chrono::{DateTime, Utc};
use sqlx::PgExecutor;
use uuid::Uuid;

/// What a ticket stands for: the user and the token it was made with.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct TicketHolder {
    pub user_id: Uuid,
    pub token_id: String,
    pub token_expires_at: DateTime<Utc>,
}

pub struct NewTicket<'a> {
    pub digest: &'a [u8],
    pub user_id: Uuid,
    pub token_id: &'a str,
    pub token_expires_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

/// Stores a ticket unless the user already holds `max_open` unexpired ones. False when over.
pub async fn insert(
    conn: impl PgExecutor<'_>,
    ticket: NewTicket<'_>,
    max_open: i64,
) -> Result<bool, sqlx::Error> {
    let inserted = sqlx::query(
        "INSERT INTO event_tickets (digest, user_id, token_id, token_expires_at, expires_at)
         SELECT $1, $2, $3, $4, $5
         WHERE (SELECT count(*) FROM event_tickets WHERE user_id = $2 AND expires_at > now()) < $6",
    )
    .bind(ticket.digest)
    .bind(ticket.user_id)
    .bind(ticket.token_id)
    .bind(ticket.token_expires_at)
    .bind(ticket.expires_at)
    .bind(max_open)
    .execute(conn)
    .await?
    .rows_affected();
    Ok(inserted == 1)
}

/// What an unexpired ticket stands for, leaving it usable.
pub async fn find(conn: impl PgExecutor<'_>, digest: &[u8]) -> Result<Option<TicketHolder>, sqlx::Error> {
    sqlx::query_as(
        "SELECT user_id, token_id, token_expires_at FROM event_tickets
         WHERE digest = $1 AND expires_at > now()",
    )
    .bind(digest)
    .fetch_optional(conn)
    .await
}

/// Uses a ticket up: the first caller gets it, every later one (and any after expiry) gets `None`.
pub async fn redeem(conn: impl PgExecutor<'_>, digest: &[u8]) -> Result<Option<TicketHolder>, sqlx::Error> {
    sqlx::query_as(
        "DELETE FROM event_tickets WHERE digest = $1
         RETURNING user_id, token_id, token_expires_at, expires_at > now() AS fresh",
    )
    .bind(digest)
    .fetch_optional(conn)
    .await
    .map(|row: Option<RedeemedRow>| row.filter(|r| r.fresh).map(|r| r.redeemed))
}

#[derive(sqlx::FromRow)]
struct RedeemedRow {
    #[sqlx(flatten)]
    redeemed: TicketHolder,
    fresh: bool,
}
