//! `pgfleet service-tokens list|create|delete` (create takes `--project` and `--read-only`:
//! a token limited to one project and/or to reads).

use clap::Subcommand;
use futures::TryStreamExt as _;
use pgfleet_client::types::service_token::{CreateServiceToken, ServiceToken};

use super::confirm::{confirm, YesArgs};
use super::output::{self, or_dash, s, Table};
use super::Ctx;

#[derive(Debug, Subcommand)]
pub enum ServiceTokensCommand {
    /// List the workspace's service tokens (newest first).
    List {
        /// Workspace id (default: the credential's workspace).
        #[arg(long)]
        workspace: Option<String>,
    },
    /// Create a service token; its value is shown once.
    Create {
        /// Name of the token.
        name: String,
        /// When the token stops working (RFC 3339); never by default.
        #[arg(long, value_name = "RFC3339")]
        expires_at: Option<String>,
        /// Limit the token to this project of the workspace (it sees and acts on that
        /// project only); the whole workspace by default.
        #[arg(long, value_name = "PROJECT_ID")]
        project: Option<String>,
        /// A token that can read but not create, change or delete anything.
        #[arg(long)]
        read_only: bool,
        /// Workspace id (default: the credential's workspace).
        #[arg(long)]
        workspace: Option<String>,
    },
    /// Delete (revoke) a service token (asks first; `--yes` to skip).
    Delete {
        /// Service token id.
        id: String,
        /// Workspace id (default: the credential's workspace).
        #[arg(long)]
        workspace: Option<String>,
        #[command(flatten)]
        yes: YesArgs,
    },
}

pub async fn run(ctx: &Ctx, cmd: ServiceTokensCommand) -> anyhow::Result<()> {
    match cmd {
        ServiceTokensCommand::List { workspace } => {
            let ws = ctx.workspace(workspace.as_deref()).await?;
            let all: Vec<ServiceToken> = ctx
                .client
                .service_tokens(&ws)
                .list_all()
                .try_collect()
                .await?;
            if ctx.json {
                return output::json(&all);
            }
            let mut t = Table::new(&["ID", "NAME", "HINT", "SCOPE", "CREATED", "EXPIRES"]);
            for x in all {
                let scope = scope_text(&x);
                t.row(vec![
                    x.id,
                    x.name,
                    x.value_hint,
                    scope,
                    x.created_at,
                    or_dash(x.expires_at.as_deref()),
                ]);
            }
            t.print();
        }
        ServiceTokensCommand::Create {
            name,
            expires_at,
            project,
            read_only,
            workspace,
        } => {
            let ws = ctx.workspace(workspace.as_deref()).await?;
            let created = ctx
                .client
                .service_tokens(&ws)
                .create(&CreateServiceToken {
                    name,
                    expires_at,
                    project_id: project,
                    read_only: read_only.then_some(true),
                })
                .await?;
            if ctx.json {
                return output::json(&created);
            }
            output::kv(&[
                ("id", s(&created.token.id)),
                ("name", s(&created.token.name)),
                ("expires", created.token.expires_at.clone()),
                ("scope", Some(scope_text(&created.token))),
                ("token", s(&created.value)),
            ]);
            eprintln!("The token is shown once: store it now.");
        }
        ServiceTokensCommand::Delete { id, workspace, yes } => {
            confirm(
                yes,
                &format!("delete service token {id} (whatever uses it stops working)"),
            )?;
            let ws = ctx.workspace(workspace.as_deref()).await?;
            ctx.client.service_tokens(&ws).delete(&id).await?;
            if ctx.json {
                return output::json(&serde_json::json!({ "deleted": id }));
            }
            println!("Deleted service token {id}");
        }
    }
    Ok(())
}

/// "workspace" or "project <id>", with ", read-only".
fn scope_text(t: &ServiceToken) -> String {
    let reach = t
        .project_id
        .as_deref()
        .map_or_else(|| "workspace".to_string(), |p| format!("project {p}"));
    if t.read_only {
        format!("{reach}, read-only")
    } else {
        reach
    }
}
