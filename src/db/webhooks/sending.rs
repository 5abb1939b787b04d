//! What the worker's sender does with an endpoint's queue: hold its lease (one sender per
//! endpoint), take the oldest pending message, and go idle without missing a message that
//! commits meanwhile. Rendering and recording an attempt are in `attempts`.

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::{FromRow, PgConnection, PgPool};
use uuid::Uuid;

use super::{COLUMNS, Endpoint};

/// Queues a delivery job for the endpoint now and marks it as having one, in the caller's
/// transaction.
pub async fn wake(conn: &mut PgConnection, endpoint_id: Uuid, user_id: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE webhook_endpoints SET job_queued = true WHERE id = $1 AND user_id = $2")
        .bind(endpoint_id)
        .bind(user_id)
        .execute(&mut *conn)
        .await?;
    wake_at(conn, endpoint_id, user_id, Utc::now()).await
}

/// Queues a delivery job for the endpoint at `at`.
pub async fn wake_at(
    conn: &mut PgConnection,
    endpoint_id: Uuid,
    user_id: Uuid,
    at: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT webhook_wake($1, $2, $3)")
        .bind(endpoint_id)
        .bind(user_id)
        .bind(at)
        .execute(conn)
        .await?;
    Ok(())
}

/// Queues a job for every enabled endpoint that has pending messages but no live job and no
/// sender (its job failed for good, say, through a long database outage). Returns how many.
///
/// Two statements, so that neither joins user data to the queue: the endpoints and their
/// messages are matched on the user as well as the endpoint, as tables sharded by user need
/// (docs/scaling.md), and only the second reads the queue.
pub async fn rescue_stalled(pool: &PgPool) -> Result<u64, sqlx::Error> {
    let stalled: Vec<(Uuid, Uuid)> = sqlx::query_as(
        "SELECT e.id, e.user_id FROM webhook_endpoints e
         WHERE e.enabled AND (e.lease_until IS NULL OR e.lease_until < now())
           AND EXISTS (SELECT 1 FROM webhook_messages m
                       WHERE m.user_id = e.user_id AND m.endpoint_id = e.id AND m.status = 'pending')",
    )
    .fetch_all(pool)
    .await?;
    if stalled.is_empty() {
        return Ok(0);
    }
    let (endpoints, owners): (Vec<Uuid>, Vec<Uuid>) = stalled.into_iter().unzip();
    let woken = sqlx::query(
        "SELECT webhook_wake(s.id, s.user_id, now()) FROM unnest($1::uuid[], $2::uuid[]) AS s (id, user_id)
         WHERE NOT EXISTS (SELECT 1 FROM apalis.jobs j
                           WHERE j.job_type = 'todo.webhook' AND j.status IN ('Pending', 'Queued', 'Running')
                             AND j.metadata -> 'endpoint_id' = s.id::text)",
    )
    .bind(endpoints)
    .bind(owners)
    .execute(pool)
    .await?;
    Ok(woken.rows_affected())
}

/// The endpoint's owner, for a job queued before its payload named one: a lookup by id alone,
/// which only jobs from before that change need.
pub async fn owner(pool: &PgPool, endpoint_id: Uuid) -> Result<Option<Uuid>, sqlx::Error> {
    sqlx::query_scalar("SELECT user_id FROM webhook_endpoints WHERE id = $1")
        .bind(endpoint_id)
        .fetch_optional(pool)
        .await
}

/// Whether this sender may send to the endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lease {
    Taken,
    /// Another sender holds it until then (or held it, and died).
    Held(DateTime<Utc>),
    Gone,
}

/// Takes the endpoint's lease for `secs`, unless another sender holds an unexpired one.
pub async fn take_lease(
    pool: &PgPool,
    user_id: Uuid,
    endpoint_id: Uuid,
    secs: f64,
) -> Result<Lease, sqlx::Error> {
    let row: Option<(bool, Option<DateTime<Utc>>)> = sqlx::query_as(
        "WITH taken AS (
             UPDATE webhook_endpoints SET lease_until = now() + make_interval(secs => $2)
             WHERE id = $1 AND user_id = $3 AND (lease_until IS NULL OR lease_until < now()) RETURNING id)
         SELECT EXISTS (SELECT 1 FROM taken), lease_until FROM webhook_endpoints WHERE id = $1 AND user_id = $3",
    )
    .bind(endpoint_id)
    .bind(secs)
    .bind(user_id)
    .fetch_optional(pool)
    .await?;
    Ok(match row {
        None => Lease::Gone,
        Some((true, _)) => Lease::Taken,
        Some((false, until)) => Lease::Held(until.unwrap_or_else(Utc::now)),
    })
}

pub async fn renew_lease(
    pool: &PgPool,
    user_id: Uuid,
    endpoint_id: Uuid,
    secs: f64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE webhook_endpoints SET lease_until = now() + make_interval(secs => $2)
         WHERE id = $1 AND user_id = $3",
    )
    .bind(endpoint_id)
    .bind(secs)
    .bind(user_id)
    .execute(pool)
    .await?;
    Ok(())
}

/// Hands the endpoint on to a job due at `at`, and lets go of the lease.
pub async fn hand_on(pool: &PgPool, endpoint: &Endpoint, at: DateTime<Utc>) -> Result<(), sqlx::Error> {
    let mut tx = pool.begin().await?;
    wake_at(&mut tx, endpoint.id, endpoint.user_id, at).await?;
    sqlx::query("UPDATE webhook_endpoints SET lease_until = NULL WHERE id = $1 AND user_id = $2")
        .bind(endpoint.id)
        .bind(endpoint.user_id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await
}

/// A message waiting to be sent.
#[derive(Debug, Clone, FromRow)]
pub struct Pending {
    pub id: Uuid,
    pub event_type: String,
    pub resource: String,
    pub snapshot: Value,
    pub change_seq: i64,
    pub attempts: i32,
    pub next_attempt_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
}

/// What the endpoint's queue holds next.
#[derive(Debug)]
pub enum Next {
    Gone,
    /// Nothing to send: no pending message, or the endpoint is disabled.
    Idle,
    /// The oldest pending message is due then.
    Later(Box<Endpoint>, DateTime<Utc>),
    Due(Box<Endpoint>, Box<Pending>),
}

pub async fn next(pool: &PgPool, user_id: Uuid, endpoint_id: Uuid) -> Result<Next, sqlx::Error> {
    let endpoint: Option<Endpoint> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM webhook_endpoints WHERE id = $1 AND user_id = $2"
    )))
    .bind(endpoint_id)
    .bind(user_id)
    .fetch_optional(pool)
    .await?;
    let Some(endpoint) = endpoint else { return Ok(Next::Gone) };
    if !endpoint.enabled {
        return Ok(Next::Idle);
    }
    let head: Option<Pending> = sqlx::query_as(
        "SELECT id, event_type, resource, snapshot, change_seq, attempts, next_attempt_at, created_at
         FROM webhook_messages WHERE endpoint_id = $1 AND user_id = $2 AND status = 'pending'
         ORDER BY seq LIMIT 1",
    )
    .bind(endpoint_id)
    .bind(user_id)
    .fetch_optional(pool)
    .await?;
    Ok(match head {
        None => Next::Idle,
        Some(head) if head.next_attempt_at > Utc::now() => {
            Next::Later(Box::new(endpoint), head.next_attempt_at)
        }
        Some(head) => Next::Due(Box::new(endpoint), Box::new(head)),
    })
}

/// Marks the endpoint as having no job and lets go of its lease, unless a message is pending
/// after all. The endpoint's row is locked first: a writer adding a message holds that lock
/// until it commits, so the look for pending messages that follows sees its message, or the
/// writer sees the mark cleared and queues a job itself. True when parked.
pub async fn park(pool: &PgPool, user_id: Uuid, endpoint_id: Uuid) -> Result<bool, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let enabled: Option<bool> = sqlx::query_scalar(
        "SELECT enabled FROM webhook_endpoints WHERE id = $1 AND user_id = $2 FOR NO KEY UPDATE",
    )
    .bind(endpoint_id)
    .bind(user_id)
    .fetch_optional(&mut *tx)
    .await?;
    let Some(enabled) = enabled else { return Ok(true) };
    // A new statement, so a new snapshot: it sees what committed while the lock was awaited.
    let pending: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM webhook_messages
                        WHERE endpoint_id = $1 AND user_id = $2 AND status = 'pending')",
    )
    .bind(endpoint_id)
    .bind(user_id)
    .fetch_one(&mut *tx)
    .await?;
    if enabled && pending {
        return Ok(false);
    }
    sqlx::query(
        "UPDATE webhook_endpoints SET job_queued = false, lease_until = NULL WHERE id = $1 AND user_id = $2",
    )
    .bind(endpoint_id)
    .bind(user_id)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(true)
}
