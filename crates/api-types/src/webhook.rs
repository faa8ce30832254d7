//! Webhooks of a workspace (pgfleet's extension, issue 20): endpoints signed per Standard
//! Webhooks, the event types they can subscribe to, and their delivery attempts.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// What happened. The wire name is the event's `type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
pub enum WebhookEventType {
    #[serde(rename = "database.ready")]
    DatabaseReady,
    #[serde(rename = "database.failed")]
    DatabaseFailed,
    #[serde(rename = "database.deleted")]
    DatabaseDeleted,
    #[serde(rename = "database.restored")]
    DatabaseRestored,
    #[serde(rename = "backup.completed")]
    BackupCompleted,
    #[serde(rename = "backup.failed")]
    BackupFailed,
    #[serde(rename = "project.transferred")]
    ProjectTransferred,
    #[serde(rename = "service_token.created")]
    ServiceTokenCreated,
    #[serde(rename = "service_token.deleted")]
    ServiceTokenDeleted,
    /// An endpoint of the workspace was disabled after failing for too long.
    #[serde(rename = "webhook.disabled")]
    WebhookDisabled,
}

impl WebhookEventType {
    pub const ALL: &'static [WebhookEventType] = &[
        Self::DatabaseReady,
        Self::DatabaseFailed,
        Self::DatabaseDeleted,
        Self::DatabaseRestored,
        Self::BackupCompleted,
        Self::BackupFailed,
        Self::ProjectTransferred,
        Self::ServiceTokenCreated,
        Self::ServiceTokenDeleted,
        Self::WebhookDisabled,
    ];

    /// The wire (and stored) name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::DatabaseReady => "database.ready",
            Self::DatabaseFailed => "database.failed",
            Self::DatabaseDeleted => "database.deleted",
            Self::DatabaseRestored => "database.restored",
            Self::BackupCompleted => "backup.completed",
            Self::BackupFailed => "backup.failed",
            Self::ProjectTransferred => "project.transferred",
            Self::ServiceTokenCreated => "service_token.created",
            Self::ServiceTokenDeleted => "service_token.deleted",
            Self::WebhookDisabled => "webhook.disabled",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|t| t.as_str() == s)
    }
}

/// Whether an endpoint is sent events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum WebhookState {
    Enabled,
    /// Failed continuously for `webhooks.disable_after_secs`: no longer sent anything.
    Disabled,
}

/// The last attempt to deliver to an endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LastAttempt {
    #[schema(format = DateTime)]
    pub at: String,
    /// HTTP status of the answer; absent when there was none (see `error`).
    pub status_code: Option<i32>,
    pub error: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Webhook {
    pub id: String,
    /// Always `webhook`.
    #[serde(rename = "type")]
    pub kind: String,
    pub url: String,
    /// The event types sent; every type when absent.
    pub events: Option<Vec<WebhookEventType>>,
    pub state: WebhookState,
    #[schema(format = DateTime)]
    pub created_at: String,
    pub last_attempt: Option<LastAttempt>,
}

/// A just-created endpoint: the only time `secret` is shown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreatedWebhook {
    #[serde(flatten)]
    pub webhook: Webhook,
    /// The signing secret, `whsec_` and base64 of 32 random bytes (Standard Webhooks).
    pub secret: String,
}

/// Body of `POST /v1/workspaces/{workspaceId}/webhooks`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateWebhook {
    /// Where events are POSTed: an `https://` (or `http://`) URL, at most 2048 characters.
    pub url: String,
    /// Event types to send (see `WebhookEventType`); every type when absent.
    pub events: Option<Vec<String>>,
}

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum DeliveryStatus {
    Pending,
    Delivered,
    /// Given up: the endpoint was disabled.
    Failed,
}

/// One event's delivery to one endpoint, with its attempts so far.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WebhookDelivery {
    /// The event id: the `webhook-id` header of every attempt.
    pub event_id: String,
    pub event_type: String,
    pub status: DeliveryStatus,
    pub attempts: i32,
    pub last_status_code: Option<i32>,
    pub last_error: Option<String>,
    /// When the next attempt is due (pending deliveries only).
    #[schema(format = DateTime)]
    pub next_attempt_at: Option<String>,
    #[schema(format = DateTime)]
    pub delivered_at: Option<String>,
    #[schema(format = DateTime)]
    pub created_at: String,
}
