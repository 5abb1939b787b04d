//! Sending one message to one endpoint: the signed request, and what came of it. The client
//! follows no redirect, uses no proxy (a proxy would resolve names itself, past the guard), gives
//! the whole exchange `timeout_secs`, and reads at most 1 KiB of the answer.

use std::time::{Duration, Instant};

use reqwest::header::{CONTENT_TYPE, HeaderValue, RETRY_AFTER, USER_AGENT};

use super::secret::{SigningKey, signature_header};
use super::target::{GuardedResolver, TargetPolicy};
use crate::config::WebhookSettings;

/// The most of a response body kept for the delivery log.
pub const RESPONSE_PREFIX_BYTES: usize = 1024;

/// Sends messages; cheap to clone (the client shares its connection pool).
#[derive(Clone)]
pub struct Sender {
    client: reqwest::Client,
    policy: TargetPolicy,
}

/// One message, ready to sign.
pub struct Outgoing<'a> {
    pub url: &'a str,
    /// The `webhook-id`: the same on every attempt, so receivers can drop repeats.
    pub id: &'a str,
    pub body: &'a [u8],
    /// Newest first.
    pub keys: &'a [&'a SigningKey],
}

/// What one attempt came to.
#[derive(Debug, Clone, Default)]
pub struct Attempt {
    /// The status, when an answer came.
    pub status: Option<u16>,
    pub duration: Duration,
    /// The start of the answer's body, lossily decoded.
    pub response: Option<String>,
    /// Why no answer came, or why the target was refused.
    pub error: Option<String>,
    /// `Retry-After` in seconds, on a 429 or 503.
    pub retry_after: Option<Duration>,
}

impl Attempt {
    pub fn succeeded(&self) -> bool {
        self.status.is_some_and(|s| (200..300).contains(&s))
    }
}

impl Sender {
    pub fn new(settings: &WebhookSettings, policy: TargetPolicy) -> anyhow::Result<Self> {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(settings.timeout_secs.max(1)))
            .connect_timeout(Duration::from_secs(settings.timeout_secs.clamp(1, 5)))
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .dns_resolver(std::sync::Arc::new(GuardedResolver { policy }))
            .pool_max_idle_per_host(2)
            .pool_idle_timeout(Duration::from_secs(30))
            .build()?;
        Ok(Self { client, policy })
    }

    /// Signs and sends one message. Never fails: whatever happened is in the [`Attempt`].
    pub async fn send(&self, message: &Outgoing<'_>) -> Attempt {
        let started = Instant::now();
        // Checked again at send time: the settings may have changed since the URL was stored.
        if let Err(why) = self.policy.check(message.url) {
            return Attempt { error: Some(format!("target refused: url {why}")), ..Attempt::default() };
        }
        let timestamp = chrono::Utc::now().timestamp();
        let signature = signature_header(message.keys, message.id, timestamp, message.body);
        let request = self
            .client
            .post(message.url)
            .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
            .header(USER_AGENT, HeaderValue::from_static("todo-webhooks/1"))
            .header("webhook-id", message.id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature)
            .body(message.body.to_vec());
        let mut response = match request.send().await {
            Ok(response) => response,
            Err(err) => {
                return Attempt {
                    duration: started.elapsed(),
                    error: Some(describe(&err)),
                    ..Attempt::default()
                };
            }
        };
        let status = response.status().as_u16();
        let retry_after = matches!(status, 429 | 503)
            .then(|| response.headers().get(RETRY_AFTER).and_then(|v| parse_retry_after(v.to_str().ok()?)))
            .flatten();
        let mut prefix = Vec::with_capacity(RESPONSE_PREFIX_BYTES);
        let mut error = None;
        // Read no more than the log keeps; the rest of the body is dropped with the connection.
        while prefix.len() < RESPONSE_PREFIX_BYTES {
            match response.chunk().await {
                Ok(Some(chunk)) => {
                    let room = RESPONSE_PREFIX_BYTES - prefix.len();
                    prefix.extend_from_slice(&chunk[..chunk.len().min(room)]);
                }
                Ok(None) => break,
                Err(err) => {
                    error = Some(describe(&err));
                    break;
                }
            }
        }
        Attempt {
            status: Some(status),
            duration: started.elapsed(),
            response: Some(String::from_utf8_lossy(&prefix).into_owned()),
            error,
            retry_after,
        }
    }
}

/// `Retry-After` as seconds or as an HTTP date.
fn parse_retry_after(value: &str) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    let wait = at.with_timezone(&chrono::Utc) - chrono::Utc::now();
    Some(wait.to_std().unwrap_or(Duration::ZERO))
}

/// The error with its causes, where the resolver's refusal or a timeout shows.
fn describe(err: &reqwest::Error) -> String {
    let mut text = if err.is_timeout() { "timed out".to_owned() } else { err.to_string() };
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text.chars().take(500).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_takes_seconds_or_a_date() {
        assert_eq!(parse_retry_after("120"), Some(Duration::from_secs(120)));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("soon"), None);
    }
}
