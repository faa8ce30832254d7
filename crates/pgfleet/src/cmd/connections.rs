//! `pgfleet connections list|get|create|rotate|delete`.

use std::time::{SystemTime, UNIX_EPOCH};

use clap::Subcommand;
use futures::TryStreamExt as _;
use pgfleet_client::types::connection::{Connection, CreatedConnection};

use super::output::{self, or_dash, s, Table};
use super::Ctx;

#[derive(Debug, Subcommand)]
pub enum ConnectionsCommand {
    /// List connections (of the workspace, or of one database).
    List {
        /// Only this database's connections.
        #[arg(long)]
        database: Option<String>,
    },
    /// Show one connection (without its password).
    Get {
        /// Connection id.
        id: String,
    },
    /// Create credentials for a database; the connection string is shown once.
    Create {
        /// Database id.
        #[arg(long)]
        database: String,
        /// Name of the connection (default `cli-<timestamp>`).
        #[arg(long)]
        name: Option<String>,
    },
    /// Give a connection a new password; the old one stops working at once.
    Rotate {
        /// Connection id.
        id: String,
    },
    /// Delete a connection (its sessions end).
    Delete {
        /// Connection id.
        id: String,
    },
}

/// A default connection name: `<prefix>-<unix seconds>`.
pub fn default_name(prefix: &str) -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    format!("{prefix}-{secs}")
}

fn connection_pairs(c: &Connection) -> Vec<(&'static str, Option<String>)> {
    let direct = c.endpoints.direct.as_ref();
    vec![
        ("id", s(&c.id)),
        ("name", s(&c.name)),
        ("database", s(&c.database.id)),
        ("host", direct.map(|e| e.host.clone())),
        ("port", direct.map(|e| e.port.to_string())),
        ("created", s(&c.created_at)),
    ]
}

fn print_created(ctx: &Ctx, c: &CreatedConnection) -> anyhow::Result<()> {
    if ctx.json {
        return output::json(c);
    }
    let mut pairs = connection_pairs(&c.connection);
    pairs.push(("user", c.user.clone()));
    pairs.push(("connection string", s(&c.connection_string)));
    output::kv(&pairs);
    eprintln!("The connection string is shown once: store it now.");
    Ok(())
}

pub async fn run(ctx: &Ctx, cmd: ConnectionsCommand) -> anyhow::Result<()> {
    let conns = ctx.client.connections();
    match cmd {
        ConnectionsCommand::List { database } => {
            let all: Vec<Connection> = match database.as_deref() {
                Some(d) => conns.list_all_for_database(d).try_collect().await?,
                None => conns.list_all().try_collect().await?,
            };
            if ctx.json {
                return output::json(&all);
            }
            let mut t = Table::new(&["ID", "NAME", "DATABASE", "HOST", "CREATED"]);
            for c in all {
                let host = c
                    .endpoints
                    .direct
                    .as_ref()
                    .map(|e| format!("{}:{}", e.host, e.port));
                t.row(vec![
                    c.id,
                    c.name,
                    c.database.id,
                    or_dash(host.as_deref()),
                    c.created_at,
                ]);
            }
            t.print();
        }
        ConnectionsCommand::Get { id } => {
            let c = conns.get(&id).await?;
            if ctx.json {
                return output::json(&c);
            }
            output::kv(&connection_pairs(&c));
        }
        ConnectionsCommand::Create { database, name } => {
            let name = name.unwrap_or_else(|| default_name("cli"));
            let c = conns.create(&database, &name).await?;
            print_created(ctx, &c)?;
        }
        ConnectionsCommand::Rotate { id } => {
            let c = conns.rotate(&id).await?;
            print_created(ctx, &c)?;
        }
        ConnectionsCommand::Delete { id } => {
            conns.delete(&id).await?;
            if ctx.json {
                return output::json(&serde_json::json!({ "deleted": id }));
            }
            println!("Deleted connection {id}");
        }
    }
    Ok(())
}
