//! `pgfleet projects list|get|create|rename|delete|transfer`.

use clap::Subcommand;
use futures::TryStreamExt as _;
use pgfleet_client::types::database::DatabaseStatus;
use pgfleet_client::types::project::{CreateProject, Project, UpdateProject};

use super::confirm::{confirm, YesArgs};
use super::connections::{created_database_pairs, PooledArgs, SHOWN_ONCE};
use super::databases::{status_str, wait_ready, WaitArgs};
use super::output::{self, or_dash, s, Table};
use super::Ctx;

#[derive(Debug, Subcommand)]
pub enum ProjectsCommand {
    /// List the workspace's projects.
    List,
    /// Show one project.
    Get {
        /// Project id (`proj_…`).
        id: String,
    },
    /// Create a project and its default database (credentials are shown once).
    Create {
        /// Name of the project.
        #[arg(long)]
        name: Option<String>,
        /// Region of the default database.
        #[arg(long)]
        region: Option<String>,
        /// Create no default database.
        #[arg(long)]
        no_database: bool,
        #[command(flatten)]
        wait: WaitArgs,
        #[command(flatten)]
        pooled: PooledArgs,
    },
    /// Rename a project.
    Rename {
        /// Project id.
        id: String,
        /// The new name.
        name: String,
    },
    /// Delete a project with all its databases (asks first; `--yes` to skip).
    Delete {
        /// Project id.
        id: String,
        #[command(flatten)]
        yes: YesArgs,
    },
    /// Move a project to another workspace (asks first; `--yes` to skip).
    Transfer {
        /// Project id.
        id: String,
        /// An access token (service token) of the workspace that receives the project.
        #[arg(long = "to-token", value_name = "TOKEN")]
        recipient_token: String,
        #[command(flatten)]
        yes: YesArgs,
    },
}

fn project_pairs(p: &Project) -> Vec<(&'static str, Option<String>)> {
    vec![
        ("id", s(&p.id)),
        ("name", s(&p.name)),
        ("workspace", s(&p.workspace.id)),
        ("region", p.default_region.clone()),
        ("created", s(&p.created_at)),
    ]
}

pub async fn run(ctx: &Ctx, cmd: ProjectsCommand) -> anyhow::Result<()> {
    let projects = ctx.client.projects();
    match cmd {
        ProjectsCommand::List => {
            let all: Vec<Project> = projects.list_all().try_collect().await?;
            if ctx.json {
                return output::json(&all);
            }
            let mut t = Table::new(&["ID", "NAME", "REGION", "CREATED"]);
            for p in all {
                t.row(vec![
                    p.id,
                    p.name,
                    or_dash(p.default_region.as_deref()),
                    p.created_at,
                ]);
            }
            t.print();
        }
        ProjectsCommand::Get { id } => {
            let p = projects.get(&id).await?;
            if ctx.json {
                return output::json(&p);
            }
            output::kv(&project_pairs(&p));
        }
        ProjectsCommand::Create {
            name,
            region,
            no_database,
            wait,
            pooled,
        } => {
            let mut created = projects
                .create(&CreateProject {
                    name,
                    region,
                    create_database: no_database.then_some(false),
                    ..Default::default()
                })
                .await?;
            if let Some(db) = created.database.as_mut() {
                if wait.wait && db.database.status != DatabaseStatus::Ready {
                    let ready = wait_ready(ctx, &db.database.id, &wait).await?;
                    db.database.status = ready.status;
                }
            }
            if ctx.json {
                return output::json(&created);
            }
            let mut pairs = project_pairs(&created.project);
            if let Some(db) = &created.database {
                pairs.extend([
                    ("database", s(&db.database.id)),
                    ("status", s(status_str(&db.database.status))),
                ]);
                pairs.extend(created_database_pairs(db, pooled));
            }
            output::kv(&pairs);
            if created.database.is_some() {
                eprintln!("{SHOWN_ONCE}");
            }
        }
        ProjectsCommand::Rename { id, name } => {
            let p = projects
                .update(
                    &id,
                    &UpdateProject {
                        name: Some(name),
                        settings: None,
                    },
                )
                .await?;
            if ctx.json {
                return output::json(&p);
            }
            output::kv(&project_pairs(&p));
        }
        ProjectsCommand::Delete { id, yes } => {
            confirm(yes, &format!("delete project {id} and all its databases"))?;
            projects.delete(&id).await?;
            if ctx.json {
                return output::json(&serde_json::json!({ "deleted": id }));
            }
            println!("Deleted project {id}");
        }
        ProjectsCommand::Transfer {
            id,
            recipient_token,
            yes,
        } => {
            confirm(
                yes,
                &format!("move project {id} and its databases to another workspace"),
            )?;
            projects.transfer(&id, &recipient_token).await?;
            if ctx.json {
                return output::json(&serde_json::json!({ "transferred": id }));
            }
            println!("Transferred project {id}");
        }
    }
    Ok(())
}
