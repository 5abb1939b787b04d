//! The reminder job, from end to end: a write queues it, the worker runs [`deliver`], which
//! re-checks the task, builds the email, sends it and records the delivery.

use chrono::{DateTime, Utc};
use lettre::Address;
use lettre::message::Mailbox;
use serde::{Deserialize, Serialize};
use sqlx::PgConnection;
use uuid::Uuid;

use super::{AttemptInfo, Context, EnqueueError, Handled, Job, JobError, Schedule, enqueue};
use crate::config::{Cap, ReminderCaps, WorkerSettings};
use crate::db::queue::cancel_for_task;
use crate::db::reminders::{self, Attempted, SkipReason};
use crate::db::tasks::Task;
use crate::domain::TimeZone;
use crate::email::SendError;
use crate::email::reminder::{self as message, ActionLink, Reminder as Content};
use crate::links::{Anchor, EmailKind};

/// Email the owner about a task. The handler must re-read the task and send only if it is still
/// open, not trashed, and its `reminder_at` still equals this one: a reminder moved or cancelled
/// after this job was fetched is stale. `version` is for tracing; unrelated edits bump it without
/// touching the reminder.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Reminder {
    pub user_id: Uuid,
    pub task_id: Uuid,
    pub version: i64,
    pub reminder_at: DateTime<Utc>,
}

impl Job for Reminder {
    const QUEUE: &'static str = "todo.reminder";

    fn concurrency(settings: &WorkerSettings) -> usize {
        settings.reminder_concurrency
    }

    async fn handle(&self, ctx: &Context, attempt: AttemptInfo) -> Result<Handled, JobError> {
        deliver(ctx, self, attempt).await
    }
}

/// What decides whether a task still wants a reminder, and when it fires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Wanted {
    pub reminder_at: Option<DateTime<Utc>>,
    pub completed: bool,
    pub deleted: bool,
}

impl Wanted {
    fn of(task: &Task) -> Self {
        Self { reminder_at: task.reminder_at, completed: task.completed, deleted: task.deleted_at.is_some() }
    }

    /// Why the task no longer wants the reminder it had at `reminder_at`, if it does not.
    pub fn refusal(self, reminder_at: DateTime<Utc>) -> Option<SkipReason> {
        if self.deleted {
            Some(SkipReason::TaskDeleted)
        } else if self.completed {
            Some(SkipReason::TaskCompleted)
        } else if self.reminder_at.is_none() {
            Some(SkipReason::ReminderCleared)
        } else if self.reminder_at != Some(reminder_at) {
            Some(SkipReason::ReminderMoved)
        } else {
            None
        }
    }
}

/// Queues, moves or cancels the task's reminder job after a write.
pub(super) async fn sync(
    conn: &mut PgConnection,
    before: Option<&Task>,
    after: &Task,
) -> Result<(), EnqueueError> {
    if before.is_some_and(|b| Wanted::of(b) == Wanted::of(after)) {
        return Ok(());
    }
    // No reminder before or after: there is no job to cancel or queue (a cleared reminder's job
    // was cancelled by the write that cleared it).
    if before.is_some_and(|b| b.reminder_at.is_none()) && after.reminder_at.is_none() {
        return Ok(());
    }
    // A task just created has no jobs to cancel: skip the round trip.
    if before.is_some() {
        cancel_for_task(conn, Reminder::QUEUE, after.id).await?;
    }
    if let Some(old) = before.and_then(|b| b.reminder_at) {
        // A retry that was waiting for this reminder will not come; say so in its history.
        if let Some(reason) = Wanted::of(after).refusal(old) {
            reminders::skip_pending(conn, after.user_id, after.id, old, reason).await?;
        }
    }
    // A reminder just set to a past time fires at once; one that merely passed while the
    // task was closed or trashed is not sent again when it reopens.
    let newly_set = before.is_none_or(|b| b.reminder_at != after.reminder_at);
    if let Some(reminder_at) = after.reminder_at
        && after.deleted_at.is_none()
        && !after.completed
        && (newly_set || reminder_at > Utc::now())
    {
        let job = Reminder { user_id: after.user_id, task_id: after.id, version: after.version, reminder_at };
        let schedule = Schedule {
            run_at: Some(not_before(reminder_at)),
            idempotency_key: Some(format!("reminder:{}:{}", after.id, after.version)),
            owner: Some(after.user_id),
            subject: Some(after.id),
        };
        enqueue(conn, &job, schedule).await?;
    }
    Ok(())
}

/// The queue stores whole seconds; round up so a job never runs before its time.
pub(super) fn not_before(at: DateTime<Utc>) -> std::time::SystemTime {
    let whole = at.timestamp() + i64::from(at.timestamp_subsec_nanos() > 0);
    std::time::UNIX_EPOCH + std::time::Duration::from_secs(u64::try_from(whole).unwrap_or(0))
}

/// Delivers `job` once. The delivery record is created, then claimed (row-locked) before anything
/// is sent, and stays locked until the outcome is committed, so two workers holding the same
/// reminder never both send it. Only a crash between the server accepting the message and that
/// commit can lead to a second copy, which then carries the same Message-ID.
#[tracing::instrument(skip_all, fields(task_id = %job.task_id, reminder_at = %job.reminder_at, attempt = attempt.number))]
pub async fn deliver(ctx: &Context, job: &Reminder, attempt: AttemptInfo) -> Result<Handled, JobError> {
    let (pool, mailer, caps) = (&ctx.pool, &*ctx.mailer, ctx.reminder_caps);
    let mut tx = pool.begin().await?;
    let exists = reminders::ensure(&mut tx, job.user_id, job.task_id, job.reminder_at).await?;
    tx.commit().await?;
    if !exists {
        return Ok(Handled::Cancelled("task_gone"));
    }

    // Under the claim, read what is true now: a write that committed while another worker held
    // the claim is seen.
    let mut tx = pool.begin().await?;
    let Some(delivery) = reminders::claim(&mut tx, job.user_id, job.task_id, job.reminder_at).await? else {
        return Ok(Handled::Cancelled("task_gone"));
    };
    if delivery.status == "sent" {
        return Ok(Handled::Cancelled("already_sent"));
    }
    let Some(task) = reminders::subject(&mut *tx, job.user_id, job.task_id).await? else {
        return Ok(Handled::Cancelled("task_gone"));
    };
    let Some(user) = &task.recipient else {
        return Ok(Handled::Cancelled("account_gone"));
    };

    let wanted = Wanted { reminder_at: task.reminder_at, completed: task.completed, deleted: task.deleted };
    let skip = wanted.refusal(job.reminder_at).or_else(|| user.refusal());
    if let Some(reason) = skip {
        record(&mut tx, job, Attempted::Skipped { reason }).await?;
        tx.commit().await?;
        tracing::info!(reason = reason.as_str(), "reminder skipped");
        return Ok(Handled::Cancelled(reason.as_str()));
    }

    let address = user.email.as_deref().unwrap_or_default();
    let to = match address.parse::<Address>() {
        Ok(address) => Mailbox::new(user.name.clone(), address),
        Err(err) => {
            let error = format!("the account's address {address:?} cannot receive mail: {err}");
            record(&mut tx, job, Attempted::Failed { error: &error }).await?;
            tx.commit().await?;
            return Err(JobError::Permanent(error));
        }
    };
    let recipient = to.email.to_string().to_lowercase();
    if let Some(cap) = over_cap(&mut tx, caps, job.user_id, &recipient).await? {
        let reason = SkipReason::RateLimited;
        record(&mut tx, job, Attempted::Skipped { reason }).await?;
        tx.commit().await?;
        metrics::counter!(crate::metrics::REMINDERS_RATE_LIMITED, "cap" => cap.as_str()).increment(1);
        tracing::warn!(cap = cap.as_str(), "reminder skipped: the hourly cap is reached");
        return Ok(Handled::Cancelled(reason.as_str()));
    }
    let links = Links::mint(ctx, job, Utc::now());
    let content = Content {
        task_id: job.task_id,
        reminder_at: job.reminder_at,
        title: &task.title,
        description: task.description.as_deref(),
        due_at: task.due_at,
        timezone: TimeZone::parse("timezone", &user.timezone).unwrap_or(TimeZone::UTC),
        recipient_name: user.name.as_deref(),
        actions: &links.actions,
        unsubscribe_url: Some(&links.unsubscribe),
    };
    let email = match message::build(mailer.from_address(), to, &content) {
        Ok(email) => email,
        Err(err) => {
            let error = format!("building the email: {err}");
            record(&mut tx, job, Attempted::Failed { error: &error }).await?;
            tx.commit().await?;
            return Err(JobError::Permanent(error));
        }
    };

    match mailer.send(email).await {
        Ok(()) => {
            let message_id = message::message_id(job.task_id, job.reminder_at, mailer.from_address());
            let sent = Attempted::Sent { message_id: &message_id, recipient: &recipient };
            record(&mut tx, job, sent).await?;
            tx.commit().await?;
            let lateness = (Utc::now() - job.reminder_at).num_milliseconds() as f64 / 1000.0;
            metrics::histogram!(crate::metrics::REMINDER_LATENESS).record(lateness.max(0.0));
            tracing::info!(lateness_secs = lateness, "reminder sent");
            Ok(Handled::Done)
        }
        Err(SendError::Transient(error)) => {
            let attempted = match attempt.is_last() {
                true => Attempted::Failed { error: &error },
                false => Attempted::Retrying { error: &error },
            };
            record(&mut tx, job, attempted).await?;
            tx.commit().await?;
            Err(JobError::Transient(error))
        }
        Err(SendError::Permanent(error)) => {
            record(&mut tx, job, Attempted::Failed { error: &error }).await?;
            tx.commit().await?;
            Err(JobError::Permanent(error))
        }
    }
}

/// The links one reminder email carries, each with its own signed token.
struct Links {
    actions: Vec<ActionLink>,
    unsubscribe: String,
}

impl Links {
    /// Action tokens name this reminder (`job.reminder_at`), so they stop working once it moves.
    fn mint(ctx: &Context, job: &Reminder, now: DateTime<Utc>) -> Self {
        let actions = ctx.action_links(job.user_id, job.task_id, Anchor::Reminder(job.reminder_at), now);
        let unsubscribe = ctx.unsubscribe_url(job.user_id, EmailKind::Reminders, now);
        Self { actions, unsubscribe }
    }
}

/// Records what became of `job`'s reminder.
async fn record(
    conn: &mut PgConnection,
    job: &Reminder,
    attempted: Attempted<'_>,
) -> Result<(), sqlx::Error> {
    reminders::record(conn, job.user_id, job.task_id, job.reminder_at, attempted).await
}

/// The cap this reminder would break, if any. The count runs under locks held until the outcome
/// commits, so concurrent workers cannot overshoot (see `reminders::lock_and_count_recent_sends`);
/// with both caps off nothing is locked and sends for one account run in parallel.
async fn over_cap(
    conn: &mut PgConnection,
    caps: ReminderCaps,
    user_id: Uuid,
    recipient: &str,
) -> Result<Option<Cap>, sqlx::Error> {
    if !caps.enabled() {
        return Ok(None);
    }
    let sent = reminders::lock_and_count_recent_sends(conn, user_id, recipient).await?;
    Ok(caps.exceeded(sent.account, sent.recipient))
}
