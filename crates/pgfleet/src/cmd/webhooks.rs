//! `pgfleet webhooks list|create|delete|deliveries`: signed webhook endpoints of a workspace.

use clap::Subcommand;
use pgfleet_client::types::webhook::{CreateWebhook, WebhookState};

use super::confirm::{confirm, YesArgs};
use super::output::{self, or_dash, s, Table};
use super::Ctx;

#[derive(Debug, Subcommand)]
pub enum WebhooksCommand {
    /// List the workspace's webhook endpoints (no secrets).
    List {
        /// Workspace id (default: the credential's workspace).
        #[arg(long)]
        workspace: Option<String>,
    },
    /// Create an endpoint; its signing secret (whsec_…) is shown once.
    Create {
        /// Where events are POSTed (https://…).
        url: String,
        /// Event type to send (repeat for several, e.g. --event database.ready); all when absent.
        #[arg(long = "event", value_name = "TYPE")]
        events: Vec<String>,
        /// Workspace id (default: the credential's workspace).
        #[arg(long)]
        workspace: Option<String>,
    },
    /// Delete an endpoint (asks first; `--yes` to skip).
    Delete {
        /// Webhook id.
        id: String,
        /// Workspace id (default: the credential's workspace).
        #[arg(long)]
        workspace: Option<String>,
        #[command(flatten)]
        yes: YesArgs,
    },
    /// The newest deliveries to an endpoint, with their attempts.
    Deliveries {
        /// Webhook id.
        id: String,
        /// Workspace id (default: the credential's workspace).
        #[arg(long)]
        workspace: Option<String>,
    },
}

pub async fn run(ctx: &Ctx, cmd: WebhooksCommand) -> anyhow::Result<()> {
    match cmd {
        WebhooksCommand::List { workspace } => {
            let ws = ctx.workspace(workspace.as_deref()).await?;
            let all = ctx.client.webhooks(&ws).list().await?.data;
            if ctx.json {
                return output::json(&all);
            }
            let mut t = Table::new(&["ID", "URL", "EVENTS", "STATE", "LAST ATTEMPT"]);
            for w in all {
                let events = w.events.map_or_else(
                    || "all".to_string(),
                    |e| e.iter().map(|t| t.as_str()).collect::<Vec<_>>().join(","),
                );
                let last = w.last_attempt.map(|a| {
                    format!(
                        "{} {}",
                        a.at,
                        a.status_code
                            .map_or_else(|| or_dash(a.error.as_deref()), |c| c.to_string())
                    )
                });
                t.row(vec![
                    w.id,
                    w.url,
                    events,
                    match w.state {
                        WebhookState::Enabled => "enabled".into(),
                        WebhookState::Disabled => "disabled".into(),
                    },
                    or_dash(last.as_deref()),
                ]);
            }
            t.print();
        }
        WebhooksCommand::Create {
            url,
            events,
            workspace,
        } => {
            let ws = ctx.workspace(workspace.as_deref()).await?;
            let created = ctx
                .client
                .webhooks(&ws)
                .create(&CreateWebhook {
                    url,
                    events: (!events.is_empty()).then_some(events),
                })
                .await?;
            if ctx.json {
                return output::json(&created);
            }
            output::kv(&[
                ("id", s(&created.webhook.id)),
                ("url", s(&created.webhook.url)),
                ("secret", s(&created.secret)),
            ]);
            eprintln!("The signing secret is shown once: store it now.");
        }
        WebhooksCommand::Delete { id, workspace, yes } => {
            confirm(
                yes,
                &format!("delete webhook {id} (its pending deliveries too)"),
            )?;
            let ws = ctx.workspace(workspace.as_deref()).await?;
            ctx.client.webhooks(&ws).delete(&id).await?;
            if ctx.json {
                return output::json(&serde_json::json!({ "deleted": id }));
            }
            println!("Deleted webhook {id}");
        }
        WebhooksCommand::Deliveries { id, workspace } => {
            let ws = ctx.workspace(workspace.as_deref()).await?;
            let all = ctx.client.webhooks(&ws).deliveries(&id).await?.data;
            if ctx.json {
                return output::json(&all);
            }
            let mut t = Table::new(&["EVENT", "TYPE", "STATUS", "ATTEMPTS", "LAST", "NEXT"]);
            for d in all {
                let last = d
                    .last_status_code
                    .map(|c| c.to_string())
                    .or(d.last_error.clone());
                t.row(vec![
                    d.event_id,
                    d.event_type,
                    serde_json::to_value(d.status)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_string))
                        .unwrap_or_default(),
                    d.attempts.to_string(),
                    or_dash(last.as_deref()),
                    or_dash(d.next_attempt_at.as_deref()),
                ]);
            }
            t.print();
        }
    }
    Ok(())
}
