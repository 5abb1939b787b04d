//! The verification job, end to end: a registration, an email change or a resend asks for it
//! ([`request`], in the transaction of that write), and the worker runs [`send`], which re-reads
//! the account, mints a link token and emails the link.

use chrono::Utc;
use lettre::Address;
use lettre::message::Mailbox;
use serde::{Deserialize, Serialize};
use sqlx::PgConnection;
use uuid::Uuid;

use super::{AttemptInfo, Context, EnqueueError, Handled, Job, JobError, Schedule, enqueue};
use crate::config::VerificationLimits;
use crate::db::queue::cancel_for_owner_on;
use crate::db::verification::{self, Allowance};
use crate::email::SendError;
use crate::email::verification as message;
use crate::links::{Claims, Purpose, address_digest};

/// Email a verification link for `address` to `address`. A hint, like every job: the handler
/// sends only if the account still waits for this address to be verified.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Verification {
    pub user_id: Uuid,
    pub address: String,
}

impl Job for Verification {
    const QUEUE: &'static str = "todo.verification";

    async fn handle(&self, ctx: &Context, _attempt: AttemptInfo) -> Result<Handled, JobError> {
        send(ctx, self).await
    }
}

/// Why no verification email was queued.
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    /// The account's allowance of verification emails is spent for now.
    #[error("too many verification emails")]
    Exhausted { until: chrono::DateTime<Utc> },
    /// The address has had its allowance of verification emails, from any accounts, for now.
    #[error("too many verification emails to this address")]
    RecipientExhausted { until: chrono::DateTime<Utc> },
    #[error("the account is gone")]
    AccountGone,
    #[error(transparent)]
    Enqueue(#[from] EnqueueError),
}

impl From<sqlx::Error> for RequestError {
    fn from(err: sqlx::Error) -> Self {
        Self::Enqueue(EnqueueError::Database(err))
    }
}

/// Queues one verification email for `address` in the caller's transaction, counted against the
/// account's hourly allowance and the address's (from every account). Any earlier one still
/// waiting is dropped: only the newest request's address gets mail.
pub async fn request(
    conn: &mut PgConnection,
    user_id: Uuid,
    address: &str,
    limits: VerificationLimits,
) -> Result<(), RequestError> {
    match verification::count_send(conn, user_id, limits.per_account).await? {
        None => return Err(RequestError::AccountGone),
        Some(Allowance::Exhausted { until }) => return Err(RequestError::Exhausted { until }),
        Some(Allowance::Granted) => {}
    }
    let digest = address_digest(address);
    if let Allowance::Exhausted { until } =
        verification::count_recipient(conn, &digest, limits.per_recipient).await?
    {
        return Err(RequestError::RecipientExhausted { until });
    }
    cancel_for_owner_on(conn, Verification::QUEUE, user_id).await?;
    let job = Verification { user_id, address: address.to_owned() };
    enqueue(conn, &job, Schedule { owner: Some(user_id), ..Schedule::default() }).await?;
    Ok(())
}

/// Drops the account's waiting verification emails, once its address is verified.
pub async fn settled(conn: &mut PgConnection, user_id: Uuid) -> Result<(), sqlx::Error> {
    cancel_for_owner_on(conn, Verification::QUEUE, user_id).await.map(drop)
}

#[tracing::instrument(skip_all, fields(user_id = %job.user_id))]
async fn send(ctx: &Context, job: &Verification) -> Result<Handled, JobError> {
    let Some(state) = verification::state(&ctx.pool, job.user_id, false).await? else {
        return Ok(Handled::Cancelled("account_gone"));
    };
    // The account moved on: verified meanwhile, or asked for another address since.
    if !state.awaiting().is_some_and(|a| a.eq_ignore_ascii_case(&job.address)) {
        return Ok(Handled::Cancelled("not_awaiting"));
    }
    let to = match job.address.parse::<Address>() {
        // No display name: the name is the registrant's own text, and this email goes to an
        // address nobody has proved is theirs, so it carries nothing a stranger wrote.
        Ok(address) => Mailbox::new(None, address),
        Err(err) => return Err(JobError::Permanent(format!("the address cannot receive mail: {err}"))),
    };
    let claims = Claims::new(Purpose::VerifyEmail, job.user_id, address_digest(&job.address), Utc::now());
    let link =
        ctx.public_url.join(&format!("{}?token={}", crate::links::paths::VERIFY, ctx.links.sign(&claims)));
    let email = message::build(ctx.mailer.from_address(), to, &link)
        .map_err(|e| JobError::Permanent(format!("building the email: {e}")))?;
    match ctx.mailer.send(email).await {
        Ok(()) => {
            tracing::info!("verification email sent");
            Ok(Handled::Done)
        }
        Err(SendError::Transient(error)) => Err(JobError::Transient(error)),
        Err(SendError::Permanent(error)) => Err(JobError::Permanent(error)),
    }
}
