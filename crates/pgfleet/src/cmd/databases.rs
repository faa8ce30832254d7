//! `pgfleet databases list|get|create|rename|delete`, and waiting for a database to be ready.

use std::time::{Duration, Instant};

use clap::{Args, Subcommand};
use futures::TryStreamExt as _;
use pgfleet_client::types::database::{
    CreateDatabase, Database, DatabaseSource, DatabaseStatus, UpdateDatabase,
};

use super::confirm::{confirm, YesArgs};
use super::connections::{created_database_pairs, endpoint_pairs, PooledArgs, SHOWN_ONCE};
use super::output::{self, or_dash, s, Table};
use super::Ctx;

/// `--wait` and its time limit.
#[derive(Debug, Args, Clone)]
pub struct WaitArgs {
    /// Wait (with a spinner) until the database is ready.
    #[arg(long)]
    pub wait: bool,
    /// Give up waiting after this many seconds.
    #[arg(long, default_value_t = 300, value_name = "SECS", requires = "wait")]
    pub timeout: u64,
}

#[derive(Debug, Subcommand)]
pub enum DatabasesCommand {
    /// List databases (of the workspace, or of one project).
    List {
        /// Only this project's databases.
        #[arg(long)]
        project: Option<String>,
    },
    /// Show one database.
    Get {
        /// Database id (`db_…`).
        id: String,
    },
    /// Create a database in a project (its credentials are shown once).
    Create {
        /// Project id.
        #[arg(long)]
        project: String,
        /// Name of the database.
        #[arg(long)]
        name: Option<String>,
        /// Region (default: us-east-1; `inherit` for the project's).
        #[arg(long)]
        region: Option<String>,
        /// Make it the project's default database.
        #[arg(long)]
        default: bool,
        /// A copy of another database of the workspace (as it is now, or at `--at`).
        #[arg(long = "from-database", value_name = "DATABASE_ID")]
        from_database: Option<String>,
        /// With `--from-database`: the copy is that database as it was at this time (RFC
        /// 3339, inside its restore window: point-in-time recovery).
        #[arg(long, requires = "from_database", value_parser = super::backups::parse_time)]
        at: Option<String>,
        #[command(flatten)]
        wait: WaitArgs,
        #[command(flatten)]
        pooled: PooledArgs,
    },
    /// Rename a database.
    Rename {
        /// Database id.
        id: String,
        /// The new name.
        name: String,
    },
    /// Delete a database and its connections (asks first; `--yes` to skip).
    Delete {
        /// Database id.
        id: String,
        #[command(flatten)]
        yes: YesArgs,
    },
}

/// The status as the API spells it.
pub fn status_str(s: &DatabaseStatus) -> &'static str {
    match s {
        DatabaseStatus::Provisioning => "provisioning",
        DatabaseStatus::Ready => "ready",
        DatabaseStatus::Recovering => "recovering",
        DatabaseStatus::Failure => "failure",
    }
}

/// Polls the database until it is ready, showing a spinner on a terminal.
pub async fn wait_ready(ctx: &Ctx, id: &str, wait: &WaitArgs) -> anyhow::Result<Database> {
    let spinner = indicatif::ProgressBar::new_spinner();
    spinner.set_draw_target(indicatif::ProgressDrawTarget::stderr());
    spinner.enable_steady_tick(Duration::from_millis(100));
    spinner.set_message(format!("waiting for database {id}"));
    let deadline = Instant::now() + Duration::from_secs(wait.timeout);
    let result = loop {
        match ctx.client.databases().get(id).await {
            Ok(db) => match db.status {
                DatabaseStatus::Ready => break Ok(db),
                DatabaseStatus::Failure => {
                    break Err(anyhow::anyhow!("database {id} failed to provision"))
                }
                ref other => spinner
                    .set_message(format!("waiting for database {id} ({})", status_str(other))),
            },
            Err(e) => break Err(e.into()),
        }
        if Instant::now() >= deadline {
            break Err(anyhow::anyhow!(
                "database {id} is not ready after {} s (see `pgfleet databases get {id}`)",
                wait.timeout
            ));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    match &result {
        Ok(_) => spinner.finish_with_message(format!("database {id} is ready")),
        Err(_) => spinner.abandon(),
    }
    result
}

fn database_pairs(d: &Database) -> Vec<(&'static str, Option<String>)> {
    let mut pairs = vec![
        ("id", s(&d.id)),
        ("name", s(&d.name)),
        ("status", s(status_str(&d.status))),
        ("project", d.project.as_ref().map(|p| p.id.clone())),
        ("region", d.region.as_ref().map(|r| r.id.clone())),
        ("default", s(d.is_default.to_string())),
        ("default connection", d.default_connection_id.clone()),
    ];
    // Where to connect: the default connection's endpoints (every connection has the same).
    if let Some(c) = d
        .connections
        .iter()
        .find(|c| d.default_connection_id.as_ref() == Some(&c.id))
    {
        pairs.extend(endpoint_pairs(&c.endpoints));
    }
    pairs.push(("created", s(&d.created_at)));
    pairs
}

pub async fn run(ctx: &Ctx, cmd: DatabasesCommand) -> anyhow::Result<()> {
    let dbs = ctx.client.databases();
    match cmd {
        DatabasesCommand::List { project } => {
            let all: Vec<Database> = match project.as_deref() {
                Some(p) => dbs.list_all_for_project(p).try_collect().await?,
                None => dbs.list_all().try_collect().await?,
            };
            if ctx.json {
                return output::json(&all);
            }
            let mut t = Table::new(&["ID", "NAME", "PROJECT", "REGION", "STATUS", "DEFAULT"]);
            for d in all {
                t.row(vec![
                    d.id,
                    d.name,
                    or_dash(d.project.as_ref().map(|p| p.id.as_str())),
                    or_dash(d.region.as_ref().map(|r| r.id.as_str())),
                    status_str(&d.status).to_string(),
                    if d.is_default { "yes" } else { "" }.to_string(),
                ]);
            }
            t.print();
        }
        DatabasesCommand::Get { id } => {
            let d = dbs.get(&id).await?;
            if ctx.json {
                return output::json(&d);
            }
            output::kv(&database_pairs(&d));
        }
        DatabasesCommand::Create {
            project,
            name,
            region,
            default,
            from_database,
            at,
            wait,
            pooled,
        } => {
            let source = from_database.map(|database_id| DatabaseSource::Database {
                database_id,
                timestamp: at,
            });
            let mut created = dbs
                .create_in_project(
                    &project,
                    &CreateDatabase {
                        name,
                        region,
                        is_default: default.then_some(true),
                        source,
                        ..Default::default()
                    },
                )
                .await?;
            if wait.wait && created.database.status != DatabaseStatus::Ready {
                let ready = wait_ready(ctx, &created.database.id, &wait).await?;
                created.database.status = ready.status;
            }
            if ctx.json {
                return output::json(&created);
            }
            let mut pairs = database_pairs(&created.database);
            let strings = created_database_pairs(&created, pooled);
            let shown = !strings.is_empty();
            pairs.extend(strings);
            output::kv(&pairs);
            if shown {
                eprintln!("{SHOWN_ONCE}");
            }
        }
        DatabasesCommand::Rename { id, name } => {
            let d = dbs
                .update(
                    &id,
                    &UpdateDatabase {
                        name: Some(name),
                        ..Default::default()
                    },
                )
                .await?;
            if ctx.json {
                return output::json(&d);
            }
            output::kv(&database_pairs(&d));
        }
        DatabasesCommand::Delete { id, yes } => {
            confirm(yes, &format!("delete database {id} and its connections"))?;
            dbs.delete(&id).await?;
            if ctx.json {
                return output::json(&serde_json::json!({ "deleted": id }));
            }
            println!("Deleted database {id}");
        }
    }
    Ok(())
}
