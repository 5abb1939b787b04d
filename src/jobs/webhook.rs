//! The webhook job: sends one endpoint's pending messages, oldest first, one at a time. The
//! triggers that write a message queue this job when the endpoint has none (see `webhook_wake`
//! in the migration), so a burst of changes makes one job, not one per message.
//!
//! Order: an endpoint has one sender at a time (its lease), and a message that failed holds the
//! ones after it back until it succeeds or is given up. A slow or failing endpoint therefore
//! holds back only its own queue, and other endpoints' jobs run beside it.

use chrono::Utc;
use serde::{Deserialize, Serialize};
use serde_json::json;
use uuid::Uuid;

use super::webhook_notice::WebhookDisabled;
use super::{AttemptInfo, Context, Handled, Job, JobError, Schedule, enqueue};
use crate::config::WorkerSettings;
use crate::db::webhooks::Endpoint;
use crate::db::webhooks::attempts::{self, AttemptRecord, RenderError, Settled};
use crate::db::webhooks::messages::webhook_id;
use crate::db::webhooks::sending::{self, Lease, Next, Pending};
use crate::metrics::{WEBHOOK_DELIVERIES, WEBHOOK_ENDPOINTS_DISABLED, WEBHOOK_QUEUE_AGE};
use crate::webhooks::secret::SigningKey;
use crate::webhooks::send::{Attempt, Outgoing};

/// Send what endpoint `endpoint_id` has pending. The payload is also written by SQL
/// (`webhook_wake`), so its shape is fixed. Jobs queued before it named the owner have none.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WebhookSend {
    pub endpoint_id: Uuid,
    #[serde(default)]
    pub user_id: Option<Uuid>,
}

impl Job for WebhookSend {
    const QUEUE: &'static str = "todo.webhook";

    fn concurrency(settings: &WorkerSettings) -> usize {
        settings.webhook_concurrency
    }

    async fn handle(&self, ctx: &Context, _attempt: AttemptInfo) -> Result<Handled, JobError> {
        let owner = match self.user_id {
            Some(owner) => Some(owner),
            None => sending::owner(&ctx.pool, self.endpoint_id).await?,
        };
        match owner {
            Some(owner) => drain(ctx, owner, self.endpoint_id).await,
            None => Ok(Handled::Cancelled("endpoint_gone")),
        }
    }
}

#[tracing::instrument(skip_all, fields(endpoint_id = %endpoint_id))]
async fn drain(ctx: &Context, owner: Uuid, endpoint_id: Uuid) -> Result<Handled, JobError> {
    let lease_secs = ctx.webhooks.lease_secs();
    match sending::take_lease(&ctx.pool, owner, endpoint_id, lease_secs).await? {
        Lease::Gone => return Ok(Handled::Cancelled("endpoint_gone")),
        Lease::Held(until) => {
            // Another sender has it. Should that sender have died, a job at the end of its
            // lease takes over; if it is alive, that job finds nothing left and stops.
            if let Next::Due(endpoint, _) | Next::Later(endpoint, _) =
                sending::next(&ctx.pool, owner, endpoint_id).await?
            {
                let mut conn = ctx.pool.acquire().await?;
                let at = until + chrono::Duration::milliseconds(100);
                sending::wake_at(&mut conn, endpoint.id, endpoint.user_id, at).await?;
            }
            return Ok(Handled::Cancelled("another_sender"));
        }
        Lease::Taken => {}
    }
    let mut sent = 0;
    loop {
        match sending::next(&ctx.pool, owner, endpoint_id).await? {
            Next::Gone => return Ok(Handled::Cancelled("endpoint_gone")),
            Next::Idle => {
                if sending::park(&ctx.pool, owner, endpoint_id).await? {
                    return Ok(if sent > 0 { Handled::Done } else { Handled::Cancelled("nothing_pending") });
                }
            }
            Next::Later(endpoint, at) => {
                sending::hand_on(&ctx.pool, &endpoint, at).await?;
                return Ok(Handled::Done);
            }
            Next::Due(endpoint, message) => {
                if sent >= ctx.webhooks.settings.sends_per_job.max(1) {
                    // Take turns: a busy endpoint goes to the back of the queue.
                    sending::hand_on(&ctx.pool, &endpoint, Utc::now()).await?;
                    return Ok(Handled::Done);
                }
                deliver(ctx, &endpoint, &message).await?;
                sent += 1;
                sending::renew_lease(&ctx.pool, owner, endpoint_id, lease_secs).await?;
            }
        }
    }
}

/// One attempt at one message, recorded with what it means for the endpoint.
async fn deliver(ctx: &Context, endpoint: &Endpoint, message: &Pending) -> Result<(), JobError> {
    let body = match attempts::render_data(&ctx.pool, message).await {
        Ok(data) => serde_json::to_vec(&json!({
            "type": message.event_type,
            "timestamp": message.created_at,
            "data": data,
        }))
        .map_err(|e| JobError::Permanent(format!("encoding a webhook: {e}")))?,
        Err(RenderError::Database(err)) => return Err(err.into()),
        Err(err) => {
            // Nothing will make this message readable: give it up and move on.
            let attempt = Attempt { error: Some(err.to_string()), ..Attempt::default() };
            return settle(ctx, endpoint, message, &attempt, Settled::GaveUp).await;
        }
    };
    let now = Utc::now();
    if message.attempts == 0 {
        let age = (now - message.created_at).to_std().unwrap_or_default();
        metrics::histogram!(WEBHOOK_QUEUE_AGE).record(age.as_secs_f64());
    }
    // Renewed just before the send, so the lease outlasts it however long rendering took.
    sending::renew_lease(&ctx.pool, endpoint.user_id, endpoint.id, ctx.webhooks.lease_secs()).await?;
    let keys = endpoint.signing_keys(now);
    let keys: Vec<&SigningKey> = keys.iter().collect();
    let id = webhook_id(message.id);
    let outgoing = Outgoing { url: &endpoint.url, id: &id, body: &body, keys: &keys };
    let attempt = ctx.webhooks.sender.send(&outgoing).await;
    let failed = u32::try_from(message.attempts).unwrap_or(0).saturating_add(1);
    let settled = match attempt.status {
        _ if attempt.succeeded() => Settled::Succeeded,
        Some(410) => Settled::GaveUp,
        _ => match ctx.webhooks.schedule.wait_after(failed, attempt.retry_after) {
            Some(wait) => Settled::RetryAt(Utc::now() + wait),
            None => Settled::GaveUp,
        },
    };
    settle(ctx, endpoint, message, &attempt, settled).await
}

async fn settle(
    ctx: &Context,
    endpoint: &Endpoint,
    message: &Pending,
    attempt: &Attempt,
    settled: Settled,
) -> Result<(), JobError> {
    let gone = attempt.status == Some(410);
    let record = AttemptRecord {
        status_code: attempt.status.map(i32::from),
        duration_ms: i32::try_from(attempt.duration.as_millis()).unwrap_or(i32::MAX),
        response_body: attempt.response.clone(),
        error: attempt.error.clone(),
    };
    let disable_after = ctx.webhooks.settings.disable_after_secs as f64;
    let mut tx = ctx.pool.begin().await?;
    let disabled =
        attempts::record(&mut tx, endpoint, message.id, settled, &record, gone, disable_after).await?;
    if let Some(reason) = disabled {
        let notice =
            WebhookDisabled { endpoint_id: endpoint.id, user_id: endpoint.user_id, reason: reason.into() };
        enqueue(&mut tx, &notice, Schedule { owner: Some(endpoint.user_id), ..Schedule::default() }).await?;
    }
    tx.commit().await?;
    let outcome = match settled {
        Settled::Succeeded => "succeeded",
        Settled::RetryAt(_) => "retrying",
        Settled::GaveUp if gone => "gone",
        Settled::GaveUp => "failed",
    };
    metrics::counter!(WEBHOOK_DELIVERIES, "outcome" => outcome).increment(1);
    tracing::info!(
        message = %message.id, event = %message.event_type, outcome, status = ?attempt.status,
        error = attempt.error.as_deref().unwrap_or(""), "webhook attempt"
    );
    if let Some(reason) = disabled {
        metrics::counter!(WEBHOOK_ENDPOINTS_DISABLED, "reason" => reason).increment(1);
        tracing::warn!(reason, "webhook endpoint disabled");
    }
    Ok(())
}
