//! Sends a reminder email if, on a fresh look, it is still wanted and not yet sent.

use chrono::Utc;
use lettre::Address;
use lettre::message::Mailbox;
use sqlx::PgPool;

use super::{AttemptInfo, Handled, JobError};
use crate::db::reminders::{self, Attempted};
use crate::db::{tasks, users};
use crate::domain::TimeZone;
use crate::email::reminder::{self as message, Reminder as Content};
use crate::email::{Mailer, SendError};
use crate::jobs::task_jobs::{Reminder, unwanted_reminder};

/// Delivers `job` once. The delivery record is created, then claimed (row-locked) before anything
/// is sent, and stays locked until the outcome is committed, so two workers holding the same
/// reminder never both send it. Only a crash between the server accepting the message and that
/// commit can lead to a second copy, which then carries the same Message-ID.
#[tracing::instrument(skip_all, fields(task_id = %job.task_id, reminder_at = %job.reminder_at, attempt = attempt.number))]
pub async fn deliver(
    pool: &PgPool,
    mailer: &Mailer,
    job: &Reminder,
    attempt: AttemptInfo,
) -> Result<Handled, JobError> {
    let mut tx = pool.begin().await?;
    let exists = reminders::ensure(&mut tx, job.user_id, job.task_id, job.reminder_at).await?;
    tx.commit().await?;
    if !exists {
        return Ok(Handled::Cancelled("task_gone"));
    }

    // Under the claim, read what is true now: a write that committed while another worker held
    // the claim is seen.
    let mut tx = pool.begin().await?;
    let Some(delivery) = reminders::claim(&mut tx, job.task_id, job.reminder_at).await? else {
        return Ok(Handled::Cancelled("task_gone"));
    };
    if delivery.status == "sent" {
        return Ok(Handled::Cancelled("already_sent"));
    }
    let Some(task) = tasks::find_any(&mut *tx, job.user_id, job.task_id).await? else {
        return Ok(Handled::Cancelled("task_gone"));
    };
    let Some(user) = users::find(&mut *tx, job.user_id).await? else {
        return Ok(Handled::Cancelled("account_gone"));
    };

    let skip = if let Some(reason) = unwanted_reminder(&task, job.reminder_at) {
        Some(reason)
    } else if !user.email_reminders {
        Some("reminders_off")
    } else if user.email.as_deref().is_none_or(|e| e.trim().is_empty()) {
        Some("no_email_address")
    } else {
        None
    };
    if let Some(reason) = skip {
        reminders::record(&mut tx, task.id, job.reminder_at, Attempted::Skipped { reason }).await?;
        tx.commit().await?;
        tracing::info!(reason, "reminder skipped");
        return Ok(Handled::Cancelled(reason));
    }

    let address = user.email.as_deref().unwrap_or_default();
    let to = match address.parse::<Address>() {
        Ok(address) => Mailbox::new(user.name.clone(), address),
        Err(err) => {
            let error = format!("the account's address {address:?} cannot receive mail: {err}");
            reminders::record(&mut tx, task.id, job.reminder_at, Attempted::Failed { error: &error }).await?;
            tx.commit().await?;
            return Err(JobError::Permanent(error));
        }
    };
    let content = Content {
        task_id: task.id,
        reminder_at: job.reminder_at,
        title: &task.title,
        description: task.description.as_deref(),
        due_at: task.due_at,
        timezone: TimeZone::parse("timezone", &user.timezone).unwrap_or(TimeZone::UTC),
        recipient_name: user.name.as_deref(),
    };
    let email = match message::build(mailer.from_address(), to, &content) {
        Ok(email) => email,
        Err(err) => {
            let error = format!("building the email: {err}");
            reminders::record(&mut tx, task.id, job.reminder_at, Attempted::Failed { error: &error }).await?;
            tx.commit().await?;
            return Err(JobError::Permanent(error));
        }
    };

    match mailer.send(email).await {
        Ok(()) => {
            let message_id = message::message_id(task.id, job.reminder_at, mailer.from_address());
            let sent = Attempted::Sent { message_id: &message_id };
            reminders::record(&mut tx, task.id, job.reminder_at, sent).await?;
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
            reminders::record(&mut tx, task.id, job.reminder_at, attempted).await?;
            tx.commit().await?;
            Err(JobError::Transient(error))
        }
        Err(SendError::Permanent(error)) => {
            reminders::record(&mut tx, task.id, job.reminder_at, Attempted::Failed { error: &error }).await?;
            tx.commit().await?;
            Err(JobError::Permanent(error))
        }
    }
}
