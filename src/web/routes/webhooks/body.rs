//! The bodies of the endpoint routes: what an owner sends and what they are shown.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::db::webhooks::Endpoint;
use crate::domain::Patch;

/// The events an endpoint can subscribe to.
#[derive(Serialize, ToSchema)]
pub enum WebhookEventName {
    #[serde(rename = "task.created")]
    TaskCreated,
    #[serde(rename = "task.updated")]
    TaskUpdated,
    #[serde(rename = "task.completed")]
    TaskCompleted,
    #[serde(rename = "task.reopened")]
    TaskReopened,
    #[serde(rename = "task.deleted")]
    TaskDeleted,
    #[serde(rename = "task.restored")]
    TaskRestored,
    #[serde(rename = "project.created")]
    ProjectCreated,
    #[serde(rename = "project.updated")]
    ProjectUpdated,
    #[serde(rename = "project.deleted")]
    ProjectDeleted,
    #[serde(rename = "reminder.sent")]
    ReminderSent,
}

/// A new webhook endpoint.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookInput {
    /// Where messages are POSTed: `https` (plain `http` outside production), not a private,
    /// loopback, link-local or metadata address unless the server allows private targets.
    #[schema(max_length = 2000)]
    pub(super) url: String,
    /// The events to send; at least one.
    #[schema(value_type = Vec<WebhookEventName>, min_items = 1)]
    pub(super) events: Vec<String>,
    /// At most 500 characters.
    #[serde(default)]
    #[schema(max_length = 500)]
    pub(super) description: Option<String>,
    /// `false` registers it without sending anything yet.
    #[serde(default)]
    #[schema(nullable = false)]
    pub(super) enabled: Option<bool>,
}

/// A merge patch of an endpoint: left-out fields stay; `description: null` clears it.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookPatch {
    #[serde(default)]
    #[schema(value_type = Option<String>, nullable = false, max_length = 2000)]
    pub(super) url: Patch<String>,
    #[serde(default)]
    #[schema(value_type = Option<Vec<WebhookEventName>>, nullable = false, min_items = 1)]
    pub(super) events: Patch<Vec<String>>,
    #[serde(default)]
    #[schema(value_type = Option<String>, max_length = 500)]
    pub(super) description: Patch<String>,
    /// `true` turns a disabled endpoint back on; the messages that waited are then sent in order.
    #[serde(default)]
    #[schema(value_type = Option<bool>, nullable = false)]
    pub(super) enabled: Patch<bool>,
}

/// An endpoint as its owner sees it. The secret is never shown again after the create or a
/// rotation.
#[derive(Serialize, ToSchema)]
pub struct WebhookEndpoint {
    id: Uuid,
    pub(super) url: String,
    description: String,
    #[schema(value_type = Vec<WebhookEventName>)]
    pub(super) events: Vec<String>,
    enabled: bool,
    /// Why the service disabled it: `gone` (the receiver answered 410) or `failing` (about three
    /// days of failed deliveries). `null` when enabled or disabled by its owner.
    disabled_reason: Option<String>,
    /// Until when the secret before the last rotation still signs, beside the new one.
    previous_secret_expires_at: Option<DateTime<Utc>>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl From<Endpoint> for WebhookEndpoint {
    fn from(e: Endpoint) -> Self {
        let previous = e.previous_secret_until.filter(|until| *until > Utc::now());
        Self {
            id: e.id,
            url: e.url,
            description: e.description,
            events: e.events,
            enabled: e.enabled,
            disabled_reason: e.disabled_reason,
            previous_secret_expires_at: previous,
            created_at: e.created_at,
            updated_at: e.updated_at,
        }
    }
}

/// An endpoint with its signing secret, shown this once.
#[derive(Serialize, ToSchema)]
pub struct WebhookWithSecret {
    #[serde(flatten)]
    pub(super) endpoint: WebhookEndpoint,
    /// `whsec_` and the base64 of the signing key: give it to a Standard Webhooks library.
    pub(super) secret: String,
}

#[derive(Serialize, ToSchema)]
pub struct WebhookList {
    /// Oldest first; at most 10.
    pub(super) items: Vec<WebhookEndpoint>,
}
