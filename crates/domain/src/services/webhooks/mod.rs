//! Signed webhooks (issue 20): endpoints of a workspace (created with their signing secret
//! shown once, listed without it, deleted), the events the domain emits where a state
//! changes ([`emit`], in the caller's metadata transaction when it has one), their delivery
//! attempts, and the delivery worker ([`deliver`]: claims, Standard Webhooks signatures,
//! retries with backoff, disabling an endpoint that fails for too long, pruning). Where a
//! destination may be is [`ssrf`]'s. Obtained from [`super::Services::webhooks`].
//!
//! The signing secret must be opened to sign, so it cannot be hashed: it is sealed
//! ([`pgfleet_auth::sealed`]) under the server's `oauth.key_encryption_key` — kept outside
//! the metadata store, the same on every replica — with the endpoint id as associated data.

pub mod deliver;
pub mod ssrf;

use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use pgfleet_api_types::webhook::{
    CreatedWebhook, DeliveryStatus, LastAttempt, Webhook, WebhookDelivery, WebhookEventType,
    WebhookState,
};
use pgfleet_api_types::{ts, List, Pagination};
use pgfleet_storage::webhooks::{self, EndpointRow};
use pgfleet_storage::{DeliveryState, StorageError};
use serde::Serialize;
use sqlx::PgConnection;

use crate::access::{WorkspaceAccess, WorkspaceWide, WorkspaceWideWrite};
use crate::ids::new_id;
use crate::{DomainError, Result};

/// Id prefixes: endpoints, and events (the `webhook-id` of each attempt).
pub const WEBHOOK: &str = "whk_";
pub const EVENT: &str = "msg_";
/// Random bytes of a signing secret.
const SECRET_BYTES: usize = 32;
/// Longest accepted endpoint URL.
pub const MAX_URL_LEN: usize = 2048;
/// Deliveries listed per endpoint.
const DELIVERIES_SHOWN: i64 = 100;

/// `[webhooks]` settings.
#[derive(Debug, Clone)]
pub struct WebhookSettings {
    /// Lets endpoints be on loopback, private, link-local and other internal addresses
    /// (off by default: server-side request forgery; tests turn it on).
    pub allow_private_destinations: bool,
    /// Endpoints per workspace.
    pub max_endpoints: i64,
    /// An endpoint failing continuously this long is disabled.
    pub disable_after: Duration,
    /// Delivered (and given up) events older than this are pruned.
    pub retention: Duration,
    /// How often each replica looks for due deliveries.
    pub poll_every: Duration,
    /// Timeout of one attempt (connect to answer).
    pub attempt_timeout: Duration,
    /// First retry delay; doubles per attempt, with jitter, up to `max_backoff`.
    pub base_backoff: Duration,
    pub max_backoff: Duration,
}

impl Default for WebhookSettings {
    fn default() -> Self {
        Self {
            allow_private_destinations: false,
            max_endpoints: 10,
            disable_after: Duration::from_secs(5 * 86_400),
            retention: Duration::from_secs(7 * 86_400),
            poll_every: Duration::from_secs(1),
            attempt_timeout: Duration::from_secs(15),
            base_backoff: Duration::from_secs(5),
            max_backoff: Duration::from_secs(3600),
        }
    }
}

/// Webhook endpoints of a workspace and their deliveries.
#[derive(Debug, Clone, Copy)]
pub struct Webhooks<'a> {
    pub(in crate::services) ctx: &'a std::sync::Arc<super::Ctx>,
}

fn view(e: EndpointRow) -> Webhook {
    Webhook {
        id: e.id,
        kind: "webhook".to_string(),
        url: e.url,
        events: e.event_types.map(|types| {
            types
                .iter()
                .filter_map(|t| WebhookEventType::parse(t))
                .collect()
        }),
        state: if e.disabled_at.is_some() {
            WebhookState::Disabled
        } else {
            WebhookState::Enabled
        },
        created_at: ts(&e.created_at),
        last_attempt: e.last_attempt_at.map(|at| LastAttempt {
            at: ts(&at),
            status_code: e.last_status,
            error: e.last_error,
        }),
    }
}

fn unpaged<T>(data: Vec<T>) -> List<T> {
    List {
        data,
        pagination: Pagination {
            next_cursor: None,
            has_more: false,
        },
    }
}

/// The sealing key derived from the server's key-encryption key.
fn seal_key(ctx: &super::Ctx) -> Result<String> {
    ctx.config()
        .oauth
        .key_secret
        .as_ref()
        .map(crate::oauth_keys::KeySecret::seal_key)
        .ok_or_else(|| DomainError::internal("no key-encryption key to seal webhook secrets"))
}

impl Webhooks<'_> {
    /// Endpoints are workspace-level: only a credential of the whole workspace (not one
    /// limited to a project) reaches them, and only a writing one changes them (the
    /// capabilities of [`crate::access`]).
    fn own(access: &WorkspaceAccess, workspace_id: &str) -> Result<()> {
        if workspace_id != access.workspace_id() {
            return Err(DomainError::not_found("Workspace", workspace_id));
        }
        Ok(())
    }

    /// Endpoints of a workspace, oldest first (at most `max_endpoints`: one page).
    pub async fn list(&self, access: &WorkspaceWide, workspace_id: &str) -> Result<List<Webhook>> {
        Self::own(access, workspace_id)?;
        let rows = webhooks::list_endpoints(self.ctx.store().pool(), workspace_id).await?;
        Ok(unpaged(rows.into_iter().map(view).collect()))
    }

    /// Creates an endpoint; its secret is in this answer only.
    pub async fn create(
        &self,
        access: &WorkspaceWideWrite,
        workspace_id: &str,
        url: &str,
        events: Option<&[String]>,
    ) -> Result<CreatedWebhook> {
        Self::own(access, workspace_id)?;
        let settings = &self.ctx.config().webhooks;
        let url = ssrf::check_url(url, settings.allow_private_destinations).await?;
        let events = match events {
            None => None,
            Some(list) => Some(parse_events(list)?),
        };
        let id = new_id(WEBHOOK, self.ctx.rng());
        let mut secret = [0u8; SECRET_BYTES];
        self.ctx.rng().with(|r| r.fill_bytes(&mut secret));
        let key = seal_key(self.ctx)?;
        let sealed = self
            .ctx
            .rng()
            .with(|r| pgfleet_auth::sealed::seal(&key, id.as_bytes(), &secret, r))
            .map_err(DomainError::internal)?;
        let mut tx = self.ctx.store().begin().await?;
        let row = webhooks::insert_endpoint(
            &mut tx,
            &webhooks::NewEndpoint {
                id: &id,
                workspace_id,
                url: url.as_str(),
                event_types: events.as_deref(),
                seal_salt: &sealed.salt,
                sealed_secret: &sealed.blob,
                created_at: self.ctx.clock().now(),
            },
            settings.max_endpoints,
        )
        .await?
        .ok_or_else(|| {
            DomainError::bad_request_hint(
                format!(
                    "the workspace has {} webhook endpoints, the most allowed",
                    settings.max_endpoints
                ),
                "Delete an endpoint first, or subscribe one endpoint to several event types.",
            )
        })?;
        tx.commit().await.map_err(StorageError::from)?;
        tracing::info!(webhook = %row.id, workspace = %workspace_id, "webhook endpoint created");
        Ok(CreatedWebhook {
            webhook: view(row),
            secret: format!("whsec_{}", STANDARD.encode(secret)),
        })
    }

    /// Deletes an endpoint and its pending deliveries.
    pub async fn delete(
        &self,
        access: &WorkspaceWideWrite,
        workspace_id: &str,
        id: &str,
    ) -> Result<()> {
        if workspace_id != access.workspace_id()
            || !webhooks::delete_endpoint(self.ctx.store().pool(), workspace_id, id).await?
        {
            return Err(DomainError::not_found("Webhook", id));
        }
        Ok(())
    }

    /// The newest deliveries of an endpoint, with their attempts.
    pub async fn deliveries(
        &self,
        access: &WorkspaceWide,
        workspace_id: &str,
        id: &str,
    ) -> Result<List<WebhookDelivery>> {
        Self::own(access, workspace_id)?;
        let pool = self.ctx.store().pool();
        if webhooks::get_endpoint(pool, workspace_id, id)
            .await?
            .is_none()
        {
            return Err(DomainError::not_found("Webhook", id));
        }
        let rows = webhooks::deliveries(pool, id, DELIVERIES_SHOWN).await?;
        Ok(unpaged(
            rows.into_iter()
                .map(|d| WebhookDelivery {
                    event_id: d.event_id,
                    event_type: d.event_type,
                    status: match d.state {
                        DeliveryState::Pending => DeliveryStatus::Pending,
                        DeliveryState::Delivered => DeliveryStatus::Delivered,
                        DeliveryState::Failed => DeliveryStatus::Failed,
                    },
                    attempts: d.attempts,
                    last_status_code: d.last_status,
                    last_error: d.last_error,
                    next_attempt_at: (d.state == DeliveryState::Pending)
                        .then(|| ts(&d.next_attempt_at)),
                    delivered_at: d.delivered_at.as_ref().map(ts),
                    created_at: ts(&d.created_at),
                })
                .collect(),
        ))
    }

    /// The delivery loop of this replica (see [`deliver`]).
    pub fn spawn_delivery(
        &self,
        shutdown: tokio::sync::watch::Receiver<bool>,
    ) -> tokio::task::JoinHandle<()> {
        deliver::spawn(std::sync::Arc::clone(self.ctx), shutdown)
    }
}

fn parse_events(list: &[String]) -> Result<Vec<String>> {
    let mut out: Vec<String> = Vec::new();
    for raw in list.iter().take(WebhookEventType::ALL.len() * 4 + 1) {
        let t = WebhookEventType::parse(raw).ok_or_else(|| {
            DomainError::bad_request_hint(
                format!("unknown event type {:?}", truncate(raw, 64)),
                format!(
                    "Use some of: {}; or leave events out for all.",
                    WebhookEventType::ALL
                        .iter()
                        .map(|t| t.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )
        })?;
        if !out.iter().any(|o| o == t.as_str()) {
            out.push(t.as_str().to_string());
        }
    }
    if list.len() > WebhookEventType::ALL.len() * 4 {
        return Err(DomainError::bad_request("too many event types listed"));
    }
    if out.is_empty() {
        return Err(DomainError::bad_request_hint(
            "events is empty",
            "List at least one event type, or leave events out for all.",
        ));
    }
    Ok(out)
}

fn truncate(s: &str, n: usize) -> String {
    s.chars().take(n).collect()
}

/// Drops the `url` members the domain leaves empty (http writes them, and an event is not
/// an HTTP answer): the payload shows the resource as the API does, less its empty `url`s.
fn strip_empty_urls(v: &mut serde_json::Value) {
    match v {
        serde_json::Value::Object(map) => {
            if map.get("url").is_some_and(|u| u.as_str() == Some("")) {
                map.remove("url");
            }
            map.values_mut().for_each(strip_empty_urls);
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(strip_empty_urls),
        _ => {}
    }
}

/// Writes an event for the workspace's subscribed endpoints in `conn` (the caller's
/// transaction, so the event commits with the state change it reports, or neither does).
/// The body is `{"type", "timestamp", "data"}`, fixed now: every attempt sends these bytes.
pub(crate) async fn emit(
    ctx: &super::Ctx,
    conn: &mut PgConnection,
    workspace_id: &str,
    event_type: WebhookEventType,
    data: &impl Serialize,
) -> Result<()> {
    let now = ctx.clock().now();
    let mut data = serde_json::to_value(data).map_err(DomainError::internal)?;
    strip_empty_urls(&mut data);
    let body = serde_json::json!({
        "type": event_type.as_str(),
        "timestamp": ts(&now),
        "data": data,
    })
    .to_string();
    let id = new_id(EVENT, ctx.rng());
    let queued = webhooks::emit(conn, &id, workspace_id, event_type.as_str(), &body, now).await?;
    if queued > 0 {
        tracing::debug!(event = %id, kind = event_type.as_str(), queued, "webhook event queued");
    }
    Ok(())
}

/// [`emit`] for a database, its data the database as the API shows it (read in `conn`).
pub(crate) async fn emit_database(
    ctx: &std::sync::Arc<super::Ctx>,
    conn: &mut PgConnection,
    db: &pgfleet_storage::DatabaseRow,
    event_type: WebhookEventType,
) -> Result<()> {
    let Some(project) = pgfleet_storage::projects::get_any(&mut *conn, &db.project_id).await?
    else {
        return Ok(());
    };
    let conns = pgfleet_storage::connections::all_of_database(&mut *conn, &db.id).await?;
    let view = ctx.databases().view(
        db,
        &conns,
        Some(&project),
        &std::collections::HashMap::new(),
    );
    emit(ctx, conn, &project.workspace_id, event_type, &view).await
}

/// [`emit`] for a backup of `database_id`: the backup as the API shows it, with its
/// `databaseId` (the API shows backups under their database; an event stands alone).
pub(crate) async fn emit_backup(
    ctx: &std::sync::Arc<super::Ctx>,
    conn: &mut PgConnection,
    backup: &pgfleet_storage::backups::BackupRow,
    event_type: WebhookEventType,
) -> Result<()> {
    let Some(db) = pgfleet_storage::databases::get(&mut *conn, &backup.database_id).await? else {
        return Ok(());
    };
    let Some(project) = pgfleet_storage::projects::get_any(&mut *conn, &db.project_id).await?
    else {
        return Ok(());
    };
    let mut data = serde_json::to_value(super::backups::Backups::view(backup))
        .map_err(DomainError::internal)?;
    if let Some(map) = data.as_object_mut() {
        map.insert("databaseId".into(), db.id.clone().into());
    }
    emit(ctx, conn, &project.workspace_id, event_type, &data).await
}
