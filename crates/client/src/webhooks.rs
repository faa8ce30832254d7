//! `/v1/workspaces/{id}/webhooks`: signed webhook endpoints of a workspace and their
//! deliveries (pgfleet's extension).

use pgfleet_api_types::webhook::{CreateWebhook, CreatedWebhook, Webhook, WebhookDelivery};
use pgfleet_api_types::List;
use reqwest::Method;

use crate::client::{body, Client, Query};
use crate::error::Result;

impl Client {
    /// Webhook endpoints of workspace `workspace_id`.
    pub fn webhooks<'a>(&'a self, workspace_id: &'a str) -> Webhooks<'a> {
        Webhooks {
            c: self,
            ws: workspace_id,
        }
    }
}

/// `/v1/workspaces/{id}/webhooks`.
#[derive(Debug, Clone, Copy)]
pub struct Webhooks<'a> {
    c: &'a Client,
    ws: &'a str,
}

impl Webhooks<'_> {
    /// The workspace's endpoints, oldest first (one page: a workspace has few).
    pub async fn list(&self) -> Result<List<Webhook>> {
        self.c
            .list(&["workspaces", self.ws, "webhooks"], Query::new())
            .await
    }
    /// Creates an endpoint; its signing `secret` is in this answer only.
    pub async fn create(&self, req: &CreateWebhook) -> Result<CreatedWebhook> {
        self.c
            .request(
                Method::POST,
                &["workspaces", self.ws, "webhooks"],
                body(req)?,
            )
            .await
    }
    /// Deletes an endpoint (its pending deliveries go with it).
    pub async fn delete(&self, id: &str) -> Result<()> {
        self.c
            .request_empty(
                Method::DELETE,
                &["workspaces", self.ws, "webhooks", id],
                None,
            )
            .await
    }
    /// The newest deliveries to an endpoint, with their attempts.
    pub async fn deliveries(&self, id: &str) -> Result<List<WebhookDelivery>> {
        self.c
            .list(
                &["workspaces", self.ws, "webhooks", id, "deliveries"],
                Query::new(),
            )
            .await
    }
}
