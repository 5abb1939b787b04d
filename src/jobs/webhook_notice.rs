//! The email that tells an owner the service disabled one of their webhook endpoints, why, and
//! how to turn it back on. Queued in the transaction that disabled it; like every email, sent
//! only to a verified address.

use lettre::Address;
use lettre::message::Mailbox;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{AttemptInfo, Context, Handled, Job, JobError};
use crate::db::{users, webhooks};
use crate::email::SendError;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WebhookDisabled {
    pub endpoint_id: Uuid,
    pub user_id: Uuid,
    /// `gone` (the receiver answered 410) or `failing` (days of failed attempts).
    pub reason: String,
}

impl Job for WebhookDisabled {
    const QUEUE: &'static str = "todo.webhook_disabled";

    async fn handle(&self, ctx: &Context, _attempt: AttemptInfo) -> Result<Handled, JobError> {
        notify(ctx, self).await
    }
}

#[tracing::instrument(skip_all, fields(endpoint_id = %job.endpoint_id))]
async fn notify(ctx: &Context, job: &WebhookDisabled) -> Result<Handled, JobError> {
    let Some(endpoint) = webhooks::find(&ctx.pool, job.user_id, job.endpoint_id).await? else {
        return Ok(Handled::Cancelled("endpoint_gone"));
    };
    if endpoint.enabled {
        return Ok(Handled::Cancelled("enabled_again"));
    }
    let Some(user) = users::find(&ctx.pool, job.user_id).await? else {
        return Ok(Handled::Cancelled("account_gone"));
    };
    let Some(address) = user.email.as_deref().filter(|_| user.email_verified) else {
        return Ok(Handled::Cancelled("address_unverified"));
    };
    let to = match address.parse::<Address>() {
        Ok(address) => Mailbox::new(user.name.clone(), address),
        Err(err) => return Err(JobError::Permanent(format!("the address cannot receive mail: {err}"))),
    };
    let api = ctx.public_url.join(&format!("/api/v1/webhooks/{}", endpoint.id));
    let email = crate::email::webhook_disabled::build(
        ctx.mailer.from_address(),
        to,
        &endpoint.url,
        &job.reason,
        &api,
    )
    .map_err(|e| JobError::Permanent(format!("building the email: {e}")))?;
    match ctx.mailer.send(email).await {
        Ok(()) => Ok(Handled::Done),
        Err(SendError::Transient(error)) => Err(JobError::Transient(error)),
        Err(SendError::Permanent(error)) => Err(JobError::Permanent(error)),
    }
}
