//! `pgfleet integrations list|revoke`.

use clap::Subcommand;
use futures::TryStreamExt as _;
use pgfleet_client::types::integration::Integration;

use super::confirm::{confirm, YesArgs};
use super::output::{self, Table};
use super::Ctx;

#[derive(Debug, Subcommand)]
pub enum IntegrationsCommand {
    /// List the OAuth apps authorized on the workspace.
    List {
        /// Workspace id (default: the credential's workspace).
        #[arg(long)]
        workspace: Option<String>,
    },
    /// Revoke one integration, or every integration of an app (`--client`); asks first,
    /// `--yes` to skip.
    Revoke {
        /// Integration id.
        #[arg(required_unless_present = "client", conflicts_with = "client")]
        id: Option<String>,
        /// Revoke every integration of this app (client id) instead.
        #[arg(long)]
        client: Option<String>,
        /// Workspace id (default: the credential's workspace).
        #[arg(long)]
        workspace: Option<String>,
        #[command(flatten)]
        yes: YesArgs,
    },
}

pub async fn run(ctx: &Ctx, cmd: IntegrationsCommand) -> anyhow::Result<()> {
    match cmd {
        IntegrationsCommand::List { workspace } => {
            let ws = ctx.workspace(workspace.as_deref()).await?;
            let all: Vec<Integration> = ctx
                .client
                .integrations(&ws)
                .list_all()
                .try_collect()
                .await?;
            if ctx.json {
                return output::json(&all);
            }
            let mut t = Table::new(&["ID", "APP", "CLIENT ID", "SCOPES", "USER", "CREATED"]);
            for i in all {
                t.row(vec![
                    i.id,
                    i.client.name,
                    i.client.id,
                    i.scopes.join(" "),
                    i.created_by_user.email,
                    i.created_at,
                ]);
            }
            t.print();
        }
        IntegrationsCommand::Revoke {
            id,
            client,
            workspace,
            yes,
        } => {
            let target = match (&id, &client) {
                (_, Some(client)) => format!("every integration of app {client}"),
                (Some(id), None) => format!("integration {id}"),
                (None, None) => anyhow::bail!("pass an integration id or --client"),
            };
            confirm(yes, &format!("revoke {target} (its tokens stop working)"))?;
            let what = match (id, client) {
                (_, Some(client)) => {
                    let ws = ctx.workspace(workspace.as_deref()).await?;
                    ctx.client.integrations(&ws).revoke_client(&client).await?;
                    format!("every integration of app {client}")
                }
                (Some(id), None) => {
                    // `/v1/integrations/{id}` needs no workspace.
                    let ws = workspace.unwrap_or_default();
                    ctx.client.integrations(&ws).delete(&id).await?;
                    format!("integration {id}")
                }
                (None, None) => anyhow::bail!("pass an integration id or --client"),
            };
            if ctx.json {
                return output::json(&serde_json::json!({ "revoked": what }));
            }
            println!("Revoked {what}");
        }
    }
    Ok(())
}
