//! The daily agenda job. Each account with an `agenda_time` has at most one pending job, for its
//! next local day: a profile change that sets or moves the agenda queues it ([`reschedule`], in
//! the transaction of that change), and each run queues the following day's before it sends.
//! Nothing scans every account on a timer.
//!
//! **Once per local day.** A run locks the account row, checks `agenda_sends` for (account, local
//! date), and records the day's outcome in the transaction that sends, with the next day's job.
//! A second worker holding the same job, a retry, a restart, or the job a time-zone change
//! queued for the same date therefore finds the day recorded and sends nothing. A DST change
//! cannot make a day's time happen twice or never: see [`AgendaTime::on`].

use chrono::{DateTime, Days, NaiveDate, NaiveTime, Utc};
use lettre::Address;
use lettre::message::Mailbox;
use serde::{Deserialize, Serialize};
use sqlx::{PgConnection, Postgres, Transaction};
use uuid::Uuid;

use super::reminder::not_before;
use super::{AttemptInfo, Context, EnqueueError, Handled, Job, JobError, Schedule, enqueue};
use crate::db::agenda::{self, DueTask, Outcome};
use crate::db::queue::cancel_for_owner_on;
use crate::domain::{AgendaTime, TimeZone};
use crate::email::SendError;
use crate::email::agenda::{self as message, Agenda as Content, Item};
use crate::links::{Anchor, EmailKind};

/// Tasks one agenda lists at most; the rest are counted in an "and N more" line. Bounds the
/// query, the memory and the size of the message.
pub const MAX_LISTED: usize = 50;

/// Send the account's agenda for `date`, its local day, if the account still wants it at
/// `agenda_time` in `timezone`. Those two are in the payload so that a run fetched before a
/// profile change can tell it is stale: the change queued a job of its own.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Agenda {
    pub user_id: Uuid,
    pub date: NaiveDate,
    pub agenda_time: NaiveTime,
    pub timezone: String,
}

impl Job for Agenda {
    const QUEUE: &'static str = "todo.agenda";

    async fn handle(&self, ctx: &Context, attempt: AttemptInfo) -> Result<Handled, JobError> {
        run(ctx, self, attempt).await
    }
}

/// Replaces the account's pending agenda job after a change to its `agenda_time` or time zone,
/// in the caller's transaction, which holds the account row: the first day on or after `from`
/// whose agenda time is still ahead. `None` turns the agenda off. A day already handled stays
/// handled: a job queued for it (a zone change the same day) finds the record and sends nothing.
pub async fn reschedule(
    conn: &mut PgConnection,
    user_id: Uuid,
    agenda_time: Option<NaiveTime>,
    timezone: &str,
    from: Option<NaiveDate>,
) -> Result<(), EnqueueError> {
    cancel_for_owner_on(conn, Agenda::QUEUE, user_id).await?;
    let Some(agenda_time) = agenda_time else { return Ok(()) };
    let zone = TimeZone::parse("timezone", timezone).unwrap_or(TimeZone::UTC);
    let (date, at) = AgendaTime::from_time(agenda_time).next(zone, from, Utc::now());
    let job = Agenda { user_id, date, agenda_time, timezone: zone.name().to_owned() };
    // No idempotency key: keys are unique for ever, and the same (account, day, time) can be
    // asked for again after being turned off and on. The cancel above keeps one job pending.
    let schedule = Schedule { run_at: Some(not_before(at)), owner: Some(user_id), ..Schedule::default() };
    enqueue(conn, &job, schedule).await
}

/// Accounts looked at per query of [`rescue_broken_chains`].
const RESCUE_BATCH: i64 = 500;

/// Queues the next agenda of every account that has `agenda_time` set but no agenda job left to
/// run, and returns how many. Each run queues the next day's job in the transaction that records
/// its day, so a day whose last attempt fails takes its follow-up down with it, and nothing else
/// would ever queue one again. The maintenance job runs this.
pub async fn rescue_broken_chains(pool: &sqlx::PgPool) -> Result<u64, EnqueueError> {
    let mut rescued = 0;
    let mut after = Uuid::nil();
    loop {
        let accounts = agenda::accounts_with_agenda(pool, after, RESCUE_BATCH).await?;
        for user_id in agenda::without_live_job(pool, Agenda::QUEUE, &accounts).await? {
            // Checked again under the account's row lock, which runs and profile changes take:
            // one that queued a job since the read above is seen, and nothing is added to it.
            let mut tx = pool.begin().await?;
            let Some(account) = agenda::lock_account(&mut tx, user_id).await? else { continue };
            let Some(time) = account.agenda_time else { continue };
            if agenda::without_live_job(&mut *tx, Agenda::QUEUE, &[user_id]).await?.is_empty() {
                continue;
            }
            reschedule(&mut tx, user_id, Some(time), &account.recipient.timezone, None).await?;
            tx.commit().await?;
            tracing::warn!(%user_id, "agenda: the chain of daily jobs was broken; queued the next one");
            rescued += 1;
        }
        match accounts.last() {
            Some(&last) if accounts.len() as i64 == RESCUE_BATCH => after = last,
            _ => return Ok(rescued),
        }
    }
}

/// One listed task, with links bound to its due time: once the task is rescheduled, the links of
/// an older agenda stop working.
fn item<'a>(ctx: &Context, user_id: Uuid, task: &'a DueTask, now: DateTime<Utc>) -> Item<'a> {
    Item {
        title: &task.title,
        due_at: task.due_at,
        actions: ctx.action_links(user_id, task.id, Anchor::Due(task.due_at), now),
    }
}

/// The bounds of `date` in `zone`: its first instant and the next day's.
fn day_bounds(date: NaiveDate, zone: TimeZone) -> (DateTime<Utc>, DateTime<Utc>) {
    let midnight = AgendaTime::from_time(NaiveTime::MIN);
    let next = date.checked_add_days(Days::new(1)).unwrap_or(date);
    (midnight.on(date, zone), midnight.on(next, zone))
}

#[tracing::instrument(skip_all, fields(user_id = %job.user_id, date = %job.date, attempt = attempt.number))]
async fn run(ctx: &Context, job: &Agenda, attempt: AttemptInfo) -> Result<Handled, JobError> {
    let mut tx = ctx.pool.begin().await?;
    let Some(account) = agenda::lock_account(&mut tx, job.user_id).await? else {
        return Ok(Handled::Cancelled("account_gone"));
    };
    if account.agenda_time != Some(job.agenda_time) || account.recipient.timezone != job.timezone {
        return Ok(Handled::Cancelled("agenda_moved"));
    }
    // The next day's job, committed with this day's outcome: the chain never breaks, and a run
    // that rolls back (to retry) takes its follow-up with it. Replacing the pending job keeps it
    // one, however many runs this day gets.
    let tomorrow = job.date.checked_add_days(Days::new(1));
    reschedule(&mut tx, job.user_id, Some(job.agenda_time), &job.timezone, tomorrow).await?;
    if agenda::handled(&mut tx, job.user_id, job.date).await? {
        // A second worker, a retry after a crash, or the job a time-zone change queued for a
        // day already handled: nothing more to send.
        tx.commit().await?;
        return Ok(Handled::Cancelled("already_handled"));
    }

    let recipient = &account.recipient;
    // `agenda_time`, checked above, is the agenda's own switch: `email_reminders` is the
    // reminders', and unsubscribing from a reminder email must not stop the agenda.
    if let Some(reason) = recipient.address_refusal() {
        return finish(tx, job, Outcome::Skipped, Some(reason.as_str()), Handled::Cancelled(reason.as_str()))
            .await;
    }
    let zone = TimeZone::parse("timezone", &recipient.timezone).unwrap_or(TimeZone::UTC);
    let (start, end) = day_bounds(job.date, zone);
    let limit = i64::try_from(MAX_LISTED).unwrap_or(i64::MAX);
    let (tasks, total) = agenda::due_before(&mut tx, job.user_id, end, limit).await?;
    if tasks.is_empty() {
        return finish(tx, job, Outcome::Empty, None, Handled::Cancelled("nothing_due")).await;
    }

    let address = recipient.email.as_deref().unwrap_or_default();
    let to = match address.parse::<Address>() {
        Ok(address) => Mailbox::new(recipient.name.clone(), address),
        Err(err) => {
            let error = format!("the account's address {address:?} cannot receive mail: {err}");
            return fail(tx, job, error).await;
        }
    };
    let (overdue, due_today): (Vec<_>, Vec<_>) = tasks.iter().partition(|task| task.due_at < start);
    let app_url = ctx.public_url.join("/");
    // Its own kind: the link turns off the agenda only, not the reminders.
    let now = Utc::now();
    let unsubscribe = ctx.unsubscribe_url(job.user_id, EmailKind::Agenda, now);
    let item = |task| item(ctx, job.user_id, task, now);
    let content = Content {
        user_id: job.user_id,
        date: job.date,
        timezone: zone,
        recipient_name: recipient.name.as_deref(),
        overdue: overdue.into_iter().map(item).collect(),
        due_today: due_today.into_iter().map(item).collect(),
        more: u64::try_from(total).unwrap_or(0).saturating_sub(tasks.len() as u64),
        app_url: &app_url,
        unsubscribe_url: Some(&unsubscribe),
    };
    let email = match message::build(ctx.mailer.from_address(), to, &content) {
        Ok(email) => email,
        Err(err) => return fail(tx, job, format!("building the email: {err}")).await,
    };
    // The account row stays locked while the server answers (bounded by the SMTP timeout), so
    // a concurrent run of this day waits and then finds it recorded.
    match ctx.mailer.send(email).await {
        Ok(()) => {
            tracing::info!(listed = tasks.len(), total, "agenda sent");
            finish(tx, job, Outcome::Sent, None, Handled::Done).await
        }
        Err(SendError::Transient(error)) if attempt.is_last() => fail(tx, job, error).await,
        // Rolled back, the day is unclaimed and the follow-up unqueued: the retry does both.
        Err(SendError::Transient(error)) => Err(JobError::Transient(error)),
        Err(SendError::Permanent(error)) => fail(tx, job, error).await,
    }
}

async fn finish(
    mut tx: Transaction<'static, Postgres>,
    job: &Agenda,
    outcome: Outcome,
    detail: Option<&str>,
    handled: Handled,
) -> Result<Handled, JobError> {
    agenda::record(&mut tx, job.user_id, job.date, outcome, detail).await?;
    tx.commit().await?;
    if outcome != Outcome::Sent {
        tracing::info!(outcome = outcome.as_str(), detail, "no agenda sent");
    }
    Ok(handled)
}

/// Records the day as failed for good, so the chain goes on to the next day.
async fn fail(tx: Transaction<'static, Postgres>, job: &Agenda, error: String) -> Result<Handled, JobError> {
    finish(tx, job, Outcome::Failed, Some(&error), Handled::Done).await?;
    Err(JobError::Permanent(error))
}
