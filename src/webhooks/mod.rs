//! Webhooks, following the Standard Webhooks specification (<https://www.standardwebhooks.com>):
//! the events an endpoint may subscribe to, its signing secret, the SSRF guard on its URL, and
//! sending one message. Messages are written by database triggers in the transaction of each
//! change (migration `20261210000001_webhooks.sql`); the worker's `todo.webhook` job
//! (`jobs/webhook.rs`) sends them, one endpoint's in order.

pub mod retry;
pub mod secret;
pub mod send;
pub mod target;

use crate::config::{Settings, WebhookSettings};
use crate::domain::Invalid;

/// What the worker sends webhooks with: the client, the retry schedule and the settings.
#[derive(Clone)]
pub struct Outbound {
    pub sender: send::Sender,
    pub schedule: retry::RetrySchedule,
    pub settings: WebhookSettings,
}

impl Outbound {
    pub fn new(settings: &Settings) -> anyhow::Result<Self> {
        let policy = target::TargetPolicy::new(settings);
        Ok(Self {
            sender: send::Sender::new(&settings.webhooks, policy)?,
            schedule: retry::RetrySchedule::new(&settings.webhooks),
            settings: settings.webhooks.clone(),
        })
    }

    /// How long a sender holds an endpoint without renewing: one send's timeout plus room for
    /// rendering and recording it. A sender that dies is replaced after this.
    pub fn lease_secs(&self) -> f64 {
        (self.settings.timeout_secs + 20) as f64
    }
}

/// Every event an endpoint may subscribe to.
pub const EVENTS: &[&str] = &[
    "task.created",
    "task.updated",
    "task.completed",
    "task.reopened",
    "task.deleted",
    "task.restored",
    "project.created",
    "project.updated",
    "project.deleted",
    "reminder.sent",
];

/// The event `POST /webhooks/{id}/test` sends; every endpoint gets it, subscribed or not.
pub const PING: &str = "ping";

/// Endpoints one account may hold; the database enforces it (`webhook_endpoints_limit`).
pub const MAX_ENDPOINTS: usize = 10;

/// A subscription list: 1–20 known event names, de-duplicated, in the order given.
pub fn parse_events(raw: &[String]) -> Result<Vec<String>, Invalid> {
    if raw.is_empty() {
        return Err(Invalid::new("events", "must name at least one event"));
    }
    let mut events: Vec<String> = Vec::with_capacity(raw.len());
    for name in raw {
        if !EVENTS.contains(&name.as_str()) {
            let name: String = name.chars().take(50).collect();
            return Err(Invalid::new(
                "events",
                format!("{name:?} is not an event; use {}", EVENTS.join(", ")),
            ));
        }
        if !events.contains(name) {
            events.push(name.clone());
        }
    }
    Ok(events)
}

/// An endpoint's description: at most 500 characters, no control characters but newlines.
pub fn parse_description(raw: &str) -> Result<String, Invalid> {
    let raw = raw.trim();
    if raw.chars().count() > 500 {
        return Err(Invalid::new("description", "must be at most 500 characters"));
    }
    if raw.chars().any(|c| c.is_control() && c != '\n') {
        return Err(Invalid::new("description", "must not contain control characters"));
    }
    Ok(raw.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_known_and_deduplicated() {
        let raw = vec!["task.created".to_owned(), "task.created".to_owned(), "reminder.sent".to_owned()];
        assert_eq!(parse_events(&raw).unwrap(), vec!["task.created", "reminder.sent"]);
        assert_eq!(parse_events(&[]).unwrap_err().field, "events");
        assert_eq!(parse_events(&["task.exploded".to_owned()]).unwrap_err().field, "events");
        assert!(parse_events(&["ping".to_owned()]).is_err(), "ping is not subscribable");
    }
}
