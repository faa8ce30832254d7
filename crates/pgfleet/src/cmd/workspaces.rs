//! `pgfleet workspaces list|get`.

use clap::Subcommand;
use futures::TryStreamExt as _;
use pgfleet_client::types::Workspace;

use super::output::{self, s, Table};
use super::Ctx;

#[derive(Debug, Subcommand)]
pub enum WorkspacesCommand {
    /// List the workspaces the credential can see.
    List,
    /// Show one workspace.
    Get {
        /// Workspace id (`wksp_…`).
        id: String,
    },
}

pub async fn run(ctx: &Ctx, cmd: WorkspacesCommand) -> anyhow::Result<()> {
    match cmd {
        WorkspacesCommand::List => {
            let all: Vec<Workspace> = ctx.client.workspaces().list_all().try_collect().await?;
            if ctx.json {
                return output::json(&all);
            }
            let mut t = Table::new(&["ID", "NAME", "CREATED"]);
            for w in all {
                t.row(vec![w.id, w.name, w.created_at]);
            }
            t.print();
        }
        WorkspacesCommand::Get { id } => {
            let w = ctx.client.workspaces().get(&id).await?;
            if ctx.json {
                return output::json(&w);
            }
            output::kv(&[
                ("id", s(w.id)),
                ("name", s(w.name)),
                ("created", s(w.created_at)),
            ]);
        }
    }
    Ok(())
}
