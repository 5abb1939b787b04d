//! Queries of the daily agenda job: the account it goes to, the record of each local day, and
//! the tasks it lists.

use chrono::{DateTime, NaiveDate, NaiveTime, Utc};
use sqlx::{PgConnection, PgExecutor};
use uuid::Uuid;

use super::reminders::Recipient;

/// The account an agenda goes to, as it is now.
#[derive(Debug, Clone)]
pub struct Account {
    pub recipient: Recipient,
    pub agenda_time: Option<NaiveTime>,
}

/// Reads the account and locks its row until the transaction ends. Every run of an agenda job
/// and every profile change that moves the agenda take this lock, so for one account they run
/// one at a time: the day's record is read and written, and the next job queued, with no other
/// run or change in between. Task writes only key-share lock the row, so they are not held up.
pub async fn lock_account(conn: &mut PgConnection, user_id: Uuid) -> Result<Option<Account>, sqlx::Error> {
    type Row = (Option<String>, Option<String>, String, bool, bool, Option<NaiveTime>);
    let row: Option<Row> = sqlx::query_as(
        "SELECT email, name, timezone, email_reminders, email_verified, agenda_time
         FROM users WHERE id = $1 FOR NO KEY UPDATE",
    )
    .bind(user_id)
    .fetch_optional(conn)
    .await?;
    Ok(row.map(|(email, name, timezone, email_reminders, email_verified, agenda_time)| Account {
        recipient: Recipient { email, name, timezone, email_reminders, email_verified },
        agenda_time,
    }))
}

/// How a day's agenda ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Sent,
    /// Nothing overdue or due that day, so no email.
    Empty,
    /// The account may not get email (see `Recipient::address_refusal`).
    Skipped,
    /// The mail server refused it for good, or every attempt failed.
    Failed,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sent => "sent",
            Self::Empty => "empty",
            Self::Skipped => "skipped",
            Self::Failed => "failed",
        }
    }
}

/// Whether the account's agenda for `date` was already handled, whatever the outcome.
pub async fn handled(conn: &mut PgConnection, user_id: Uuid, date: NaiveDate) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM agenda_sends WHERE user_id = $1 AND local_date = $2)")
        .bind(user_id)
        .bind(date)
        .fetch_one(conn)
        .await
}

/// Records the day's outcome. The primary key (user, local date) is the durable half of the
/// once-a-day guarantee; the row lock of [`lock_account`] keeps concurrent runs from even
/// trying, so a conflict here is a bug and fails the transaction rather than passing silently.
pub async fn record(
    conn: &mut PgConnection,
    user_id: Uuid,
    date: NaiveDate,
    outcome: Outcome,
    detail: Option<&str>,
) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO agenda_sends (user_id, local_date, outcome, detail) VALUES ($1, $2, $3, $4)")
        .bind(user_id)
        .bind(date)
        .bind(outcome.as_str())
        .bind(detail)
        .execute(conn)
        .await?;
    Ok(())
}

/// An open task the agenda lists.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct DueTask {
    pub id: Uuid,
    pub title: String,
    pub due_at: DateTime<Utc>,
}

/// The account's open, untrashed tasks due before `before`, in due order, at most `limit`, and
/// how many there are in all.
pub async fn due_before(
    conn: &mut PgConnection,
    user_id: Uuid,
    before: DateTime<Utc>,
    limit: i64,
) -> Result<(Vec<DueTask>, i64), sqlx::Error> {
    // The coalesce matches the expression of `tasks_user_due_asc_idx`, so this is one range scan.
    let rows: Vec<(Uuid, String, DateTime<Utc>, i64)> = sqlx::query_as(
        "SELECT id, title, due_at, count(*) OVER ()
         FROM tasks
         WHERE user_id = $1 AND deleted_at IS NULL AND NOT completed
           AND coalesce(due_at, 'infinity'::timestamptz) < $2
         ORDER BY coalesce(due_at, 'infinity'::timestamptz), id
         LIMIT $3",
    )
    .bind(user_id)
    .bind(before)
    .bind(limit)
    .fetch_all(conn)
    .await?;
    let total = rows.first().map_or(0, |row| row.3);
    Ok((rows.into_iter().map(|(id, title, due_at, _)| DueTask { id, title, due_at }).collect(), total))
}

/// Accounts with an agenda set, in id order after `after`, at most `limit`: the candidates the
/// maintenance job checks for a broken chain of agenda jobs.
pub async fn accounts_with_agenda(
    conn: impl PgExecutor<'_>,
    after: Uuid,
    limit: i64,
) -> Result<Vec<Uuid>, sqlx::Error> {
    sqlx::query_scalar("SELECT id FROM users WHERE agenda_time IS NOT NULL AND id > $1 ORDER BY id LIMIT $2")
        .bind(after)
        .bind(limit)
        .fetch_all(conn)
        .await
}

/// Those of `owners` with no job on `queue` still to run: none pending, queued, running, or
/// failed with attempts left. Reads only the queue, by owner (an hstore key, as text).
pub async fn without_live_job(
    conn: impl PgExecutor<'_>,
    queue: &str,
    owners: &[Uuid],
) -> Result<Vec<Uuid>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT o FROM unnest($2::uuid[]) AS owners (o)
         WHERE NOT EXISTS (SELECT 1 FROM apalis.jobs j
                           WHERE j.metadata -> 'user_id' = o::text AND j.job_type = $1
                             AND (j.status = 'Pending' OR (j.status = 'Failed' AND j.attempts < j.max_attempts)))
           AND NOT EXISTS (SELECT 1 FROM apalis.jobs j
                           WHERE j.status IN ('Queued', 'Running') AND j.job_type = $1
                             AND j.metadata -> 'user_id' = o::text)",
    )
    .bind(queue)
    .bind(owners)
    .fetch_all(conn)
    .await
}
