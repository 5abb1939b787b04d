//! The reminder delivery record: one row per (task, reminder time), which both keeps a
//! reminder from being sent twice and is the history clients read.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::{PgConnection, PgExecutor};
use uuid::Uuid;

/// One reminder of a task and what became of it.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
#[cfg_attr(feature = "web", derive(utoipa::ToSchema))]
pub struct Delivery {
    #[serde(skip)]
    pub task_id: Uuid,
    pub reminder_at: DateTime<Utc>,
    #[cfg_attr(feature = "web", schema(value_type = DeliveryStatus))]
    pub status: String,
    /// Sending attempts made so far.
    pub attempts: i32,
    pub last_error: Option<String>,
    /// Why nothing was sent, when `status` is `skipped`.
    #[cfg_attr(feature = "web", schema(value_type = Option<SkipReason>))]
    pub skip_reason: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub sent_at: Option<DateTime<Utc>>,
}

/// What became of a reminder; stored in `reminder_deliveries.status` under these names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "web", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    /// Not sent yet, or a retry is due.
    Pending,
    Sent,
    /// Every attempt failed, or the mail server refused it for good; `last_error` says why.
    Failed,
    /// Not sent, on purpose; `skip_reason` says why.
    Skipped,
}

impl DeliveryStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Sent => "sent",
            Self::Failed => "failed",
            Self::Skipped => "skipped",
        }
    }
}

/// Why a reminder was not sent; stored in `reminder_deliveries.skip_reason` under these names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "web", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum SkipReason {
    TaskCompleted,
    TaskDeleted,
    /// The task's reminder was moved to another time, which has a record of its own.
    ReminderMoved,
    ReminderCleared,
    /// The account turned `email_reminders` off.
    RemindersOff,
    NoEmailAddress,
    /// The account's address is not verified yet: nothing goes to an address nobody confirmed.
    Unverified,
    /// The account or its address already got as many reminders in the last hour as the caps
    /// allow (`email.caps`).
    RateLimited,
}

impl SkipReason {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::TaskCompleted => "task_completed",
            Self::TaskDeleted => "task_deleted",
            Self::ReminderMoved => "reminder_moved",
            Self::ReminderCleared => "reminder_cleared",
            Self::RemindersOff => "reminders_off",
            Self::NoEmailAddress => "no_email_address",
            Self::Unverified => "unverified",
            Self::RateLimited => "rate_limited",
        }
    }
}

const COLUMNS: &str =
    "task_id, reminder_at, status, attempts, last_error, skip_reason, created_at, updated_at, sent_at";

/// Creates the record if it does not exist yet, in the caller's short transaction. The account
/// and then the task are key-share locked first, the order account deletion locks them in, so
/// the foreign-key checks cannot deadlock with it. Returns false when the task is gone.
pub async fn ensure(
    conn: &mut PgConnection,
    user_id: Uuid,
    task_id: Uuid,
    reminder_at: DateTime<Utc>,
) -> Result<bool, sqlx::Error> {
    let user = super::users::lock_key_share(conn, user_id).await?;
    let task: Option<i32> =
        sqlx::query_scalar("SELECT 1 FROM tasks WHERE id = $1 AND user_id = $2 FOR KEY SHARE")
            .bind(task_id)
            .bind(user_id)
            .fetch_optional(&mut *conn)
            .await?;
    if !user || task.is_none() {
        return Ok(false);
    }
    sqlx::query(
        "INSERT INTO reminder_deliveries (task_id, reminder_at, user_id) VALUES ($1, $2, $3)
         ON CONFLICT ON CONSTRAINT reminder_deliveries_pkey DO NOTHING",
    )
    .bind(task_id)
    .bind(reminder_at)
    .bind(user_id)
    .execute(conn)
    .await?;
    Ok(true)
}

/// Locks an existing record for the rest of the transaction, so two workers holding the same
/// reminder take turns and the second sees what the first did. Locking this row takes no lock
/// on the task, so the user's own writes to the task never wait for a send.
pub async fn claim(
    conn: &mut PgConnection,
    user_id: Uuid,
    task_id: Uuid,
    reminder_at: DateTime<Utc>,
) -> Result<Option<Delivery>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM reminder_deliveries
         WHERE task_id = $1 AND reminder_at = $2 AND user_id = $3 FOR UPDATE"
    )))
    .bind(task_id)
    .bind(reminder_at)
    .bind(user_id)
    .fetch_optional(conn)
    .await
}

/// What a reminder's email and its last check need, read fresh in one statement.
#[derive(Debug, Clone)]
pub struct Subject {
    pub title: String,
    pub description: Option<String>,
    pub due_at: Option<DateTime<Utc>>,
    pub reminder_at: Option<DateTime<Utc>>,
    pub completed: bool,
    /// In the trash.
    pub deleted: bool,
    /// `None` when the account is gone.
    pub recipient: Option<Recipient>,
}

/// The account a reminder goes to.
#[derive(Debug, Clone)]
pub struct Recipient {
    pub email: Option<String>,
    pub name: Option<String>,
    pub timezone: String,
    pub email_reminders: bool,
    pub email_verified: bool,
}

impl Recipient {
    /// Why no reminder email may go to this account, if none may: reminders on, and an address
    /// that may receive mail.
    pub fn refusal(&self) -> Option<SkipReason> {
        if !self.email_reminders { Some(SkipReason::RemindersOff) } else { self.address_refusal() }
    }

    /// Why no email of any kind may go to this account's address, if none may: an address, and
    /// verified. Each kind of email checks its own switch besides (`email_reminders` for
    /// reminders, `agenda_time` for the agenda), so unsubscribing from one leaves the other.
    pub fn address_refusal(&self) -> Option<SkipReason> {
        if self.email.as_deref().is_none_or(|e| e.trim().is_empty()) {
            Some(SkipReason::NoEmailAddress)
        } else if !self.email_verified {
            Some(SkipReason::Unverified)
        } else {
            None
        }
    }
}

#[derive(sqlx::FromRow)]
struct SubjectRow {
    title: String,
    description: Option<String>,
    due_at: Option<DateTime<Utc>>,
    reminder_at: Option<DateTime<Utc>>,
    completed: bool,
    deleted: bool,
    account: bool,
    email: Option<String>,
    name: Option<String>,
    timezone: Option<String>,
    email_reminders: Option<bool>,
    email_verified: Option<bool>,
}

/// The task of this user, trashed or not, and its account; `None` when the task is gone.
pub async fn subject(
    conn: impl PgExecutor<'_>,
    user_id: Uuid,
    task_id: Uuid,
) -> Result<Option<Subject>, sqlx::Error> {
    let row: Option<SubjectRow> = sqlx::query_as(
        "SELECT t.title, t.description, t.due_at, t.reminder_at, t.completed,
                t.deleted_at IS NOT NULL AS deleted, u.id IS NOT NULL AS account,
                u.email, u.name, u.timezone, u.email_reminders, u.email_verified
         FROM tasks t LEFT JOIN users u ON u.id = t.user_id
         WHERE t.id = $1 AND t.user_id = $2",
    )
    .bind(task_id)
    .bind(user_id)
    .fetch_optional(conn)
    .await?;
    Ok(row.map(|row| Subject {
        title: row.title,
        description: row.description,
        due_at: row.due_at,
        reminder_at: row.reminder_at,
        completed: row.completed,
        deleted: row.deleted,
        recipient: row.account.then(|| Recipient {
            email: row.email,
            name: row.name,
            timezone: row.timezone.unwrap_or_default(),
            email_reminders: row.email_reminders.unwrap_or_default(),
            email_verified: row.email_verified.unwrap_or_default(),
        }),
    }))
}

/// A reminder that will not be sent after all, because its job was cancelled by a write (the
/// task was completed, trashed, or its reminder moved) while a retry was pending.
pub async fn skip_pending(
    conn: &mut PgConnection,
    user_id: Uuid,
    task_id: Uuid,
    reminder_at: DateTime<Utc>,
    reason: SkipReason,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE reminder_deliveries SET status = 'skipped', skip_reason = $3, updated_at = now()
         WHERE task_id = $1 AND reminder_at = $2 AND user_id = $4 AND status = 'pending'",
    )
    .bind(task_id)
    .bind(reminder_at)
    .bind(reason.as_str())
    .bind(user_id)
    .execute(conn)
    .await?;
    Ok(())
}

/// What one look at a claimed reminder ended with.
#[derive(Debug, Clone)]
pub enum Attempted<'a> {
    Sent {
        message_id: &'a str,
        /// The address, lowercased, which the per-recipient cap counts by.
        recipient: &'a str,
    },
    Skipped {
        reason: SkipReason,
    },
    /// A failure that will be retried: the record stays `pending`.
    Retrying {
        error: &'a str,
    },
    /// A permanent failure, or the last attempt failed.
    Failed {
        error: &'a str,
    },
}

pub async fn record(
    conn: &mut PgConnection,
    user_id: Uuid,
    task_id: Uuid,
    reminder_at: DateTime<Utc>,
    attempted: Attempted<'_>,
) -> Result<(), sqlx::Error> {
    let (status, attempts, error, reason, sent) = match attempted {
        Attempted::Sent { message_id, recipient } => {
            (DeliveryStatus::Sent, 1, None, None, Some((message_id, recipient)))
        }
        Attempted::Skipped { reason } => (DeliveryStatus::Skipped, 0, None, Some(reason.as_str()), None),
        Attempted::Retrying { error } => (DeliveryStatus::Pending, 1, Some(error), None, None),
        Attempted::Failed { error } => (DeliveryStatus::Failed, 1, Some(error), None, None),
    };
    let (message_id, recipient) = sent.unzip();
    sqlx::query(
        "UPDATE reminder_deliveries SET
             status = $3, attempts = attempts + $4, last_error = COALESCE($5, last_error),
             skip_reason = $6, message_id = COALESCE($7, message_id),
             recipient = COALESCE($8, recipient),
             sent_at = CASE WHEN $3 = 'sent' THEN now() END, updated_at = now()
         WHERE task_id = $1 AND reminder_at = $2 AND user_id = $9",
    )
    .bind(task_id)
    .bind(reminder_at)
    .bind(status.as_str())
    .bind(attempts)
    .bind(error)
    .bind(reason)
    .bind(message_id)
    .bind(recipient)
    .bind(user_id)
    .execute(&mut *conn)
    .await?;
    if status == DeliveryStatus::Sent {
        // `reminder.sent` for the owner's webhooks, in the transaction that records the send. It
        // takes a change number of its own: with the task's, a receiver keeping only messages
        // newer than the last for the task would drop it. The counter is this transaction's last
        // lock, after any task row, the order every writer keeps.
        sqlx::query(
            "SELECT webhook_emit(t.user_id, 'reminder.sent', 'task', to_jsonb(t) - 'search',
                                 next_task_change(t.user_id))
             FROM tasks t WHERE t.id = $1 AND t.user_id = $2 AND webhook_has_endpoints(t.user_id)",
        )
        .bind(task_id)
        .bind(user_id)
        .execute(conn)
        .await?;
    }
    Ok(())
}

/// Reminders sent in the last hour to one account and to one address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecentSends {
    pub account: i64,
    pub recipient: i64,
}

/// Counts [`RecentSends`] after taking transaction-scoped advisory locks on the account and on
/// the address (in that order, so two workers cannot deadlock on them). The caller holds them
/// until its transaction records the send, so workers sending for the same account or address
/// take turns, and each counts the sends committed before it: together they cannot overshoot.
pub async fn lock_and_count_recent_sends(
    conn: &mut PgConnection,
    user_id: Uuid,
    recipient: &str,
) -> Result<RecentSends, sqlx::Error> {
    for key in [format!("reminder-cap:account:{user_id}"), format!("reminder-cap:recipient:{recipient}")] {
        sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))")
            .bind(key)
            .execute(&mut *conn)
            .await?;
    }
    let (account, recipient) = sqlx::query_as(
        "SELECT count(*) FILTER (WHERE user_id = $1), count(*) FILTER (WHERE recipient = $2)
         FROM reminder_deliveries
         WHERE sent_at > now() - interval '1 hour' AND (user_id = $1 OR recipient = $2)",
    )
    .bind(user_id)
    .bind(recipient)
    .fetch_one(conn)
    .await?;
    Ok(RecentSends { account, recipient })
}

/// A live task's delivery history, newest reminder first. Empty for another user's task: the
/// caller checks the task is theirs before showing it.
pub async fn history(
    conn: impl PgExecutor<'_>,
    user_id: Uuid,
    task_id: Uuid,
) -> Result<Vec<Delivery>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM reminder_deliveries
         WHERE task_id = $1 AND user_id = $2
         ORDER BY reminder_at DESC
         LIMIT 1000"
    )))
    .bind(task_id)
    .bind(user_id)
    .fetch_all(conn)
    .await
}

/// One page of a task's deliveries, newest first: at most `limit`, those scheduled before
/// `before` (the last `reminder_at` of the previous page; a task has one delivery per reminder
/// time, so the time alone is the position). Returns the page, whether more follow, and how many
/// deliveries the task has in all, counted exactly: one task's history is small enough to count.
pub async fn history_page(
    conn: &mut PgConnection,
    user_id: Uuid,
    task_id: Uuid,
    before: Option<DateTime<Utc>>,
    limit: i64,
) -> Result<(Vec<Delivery>, bool, i64), sqlx::Error> {
    let mut items: Vec<Delivery> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM reminder_deliveries
         WHERE task_id = $1 AND user_id = $2 AND ($3::timestamptz IS NULL OR reminder_at < $3)
         ORDER BY reminder_at DESC
         LIMIT $4"
    )))
    .bind(task_id)
    .bind(user_id)
    .bind(before)
    .bind(limit + 1)
    .fetch_all(&mut *conn)
    .await?;
    let more = items.len() as i64 > limit;
    items.truncate(usize::try_from(limit).unwrap_or(0));
    let (total,): (i64,) =
        sqlx::query_as("SELECT count(*) FROM reminder_deliveries WHERE task_id = $1 AND user_id = $2")
            .bind(task_id)
            .bind(user_id)
            .fetch_one(&mut *conn)
            .await?;
    Ok((items, more, total))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The stored names are the documented ones, which serde spells.
    #[test]
    fn stored_names_match_the_serialized_ones() {
        use DeliveryStatus as D;
        use SkipReason as S;
        for status in [D::Pending, D::Sent, D::Failed, D::Skipped] {
            assert_eq!(serde_json::to_value(status).unwrap(), status.as_str());
        }
        for reason in [
            S::TaskCompleted,
            S::TaskDeleted,
            S::ReminderMoved,
            S::ReminderCleared,
            S::RemindersOff,
            S::NoEmailAddress,
            S::Unverified,
            S::RateLimited,
        ] {
            assert_eq!(serde_json::to_value(reason).unwrap(), reason.as_str());
        }
    }
}
