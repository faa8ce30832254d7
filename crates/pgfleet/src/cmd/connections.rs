//! `pgfleet connections list|get|create|rotate|delete`, and how a connection's endpoints
//! and its once-shown connection strings are printed (also by `projects create` and
//! `databases create`): the direct and pooled endpoints, and the `prisma+postgres://` one
//! when the server runs it; `--pooled` picks which string is the `connection string` line.

use std::time::{SystemTime, UNIX_EPOCH};

use clap::{Args, Subcommand};
use futures::TryStreamExt as _;
use pgfleet_client::types::connection::{Connection, CreatedConnection, Endpoint, Endpoints};
use pgfleet_client::types::database::CreatedDatabase;

use super::confirm::{confirm, YesArgs};
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
        #[command(flatten)]
        pooled: PooledArgs,
    },
    /// Give a connection a new password; the old one stops working at once (asks first;
    /// `--yes` to skip).
    Rotate {
        /// Connection id.
        id: String,
        #[command(flatten)]
        pooled: PooledArgs,
        #[command(flatten)]
        yes: YesArgs,
    },
    /// Delete a connection (its sessions end; asks first, `--yes` to skip).
    Delete {
        /// Connection id.
        id: String,
        #[command(flatten)]
        yes: YesArgs,
    },
}

/// `--pooled` of the commands that print a connection string.
#[derive(Debug, Args, Clone, Copy, Default)]
pub struct PooledArgs {
    /// Make the pooled endpoint's string (through pgfleet's pooler) the
    /// `connection string` line; the direct one is printed too.
    #[arg(long)]
    pub pooled: bool,
}

fn host_port(e: Option<&Endpoint>) -> Option<String> {
    e.map(|e| format!("{}:{}", e.host, e.port))
}

/// `direct endpoint` and `pooled endpoint` (`host:port`) lines, and `accelerate endpoint`
/// when the server runs the `prisma+postgres://` endpoint.
pub fn endpoint_pairs(e: &Endpoints) -> Vec<(&'static str, Option<String>)> {
    let mut pairs = vec![
        ("direct endpoint", host_port(e.direct.as_ref())),
        ("pooled endpoint", host_port(e.pooled.as_ref())),
    ];
    if e.accelerate.is_some() {
        pairs.push(("accelerate endpoint", host_port(e.accelerate.as_ref())));
    }
    pairs
}

/// The once-shown strings of a created or rotated connection: `connection string` (the
/// direct one, or with `--pooled` the pooled one) and the other under its own name, then
/// the `prisma+postgres string` (Prisma Client's `accelerateUrl`) when there is one.
/// `direct` is the direct string where the response carries it outside `endpoints`.
pub fn string_pairs(
    e: &Endpoints,
    direct: Option<&str>,
    pooled: PooledArgs,
) -> Vec<(&'static str, Option<String>)> {
    let mut pairs = direct_and_pooled(e, direct, pooled);
    if let Some(accel) = e
        .accelerate
        .as_ref()
        .and_then(|a| a.connection_string.clone())
    {
        pairs.push(("prisma+postgres string", Some(accel)));
    }
    pairs
}

fn direct_and_pooled(
    e: &Endpoints,
    direct: Option<&str>,
    pooled: PooledArgs,
) -> Vec<(&'static str, Option<String>)> {
    let direct = e
        .direct
        .as_ref()
        .and_then(|d| d.connection_string.clone())
        .or_else(|| direct.map(str::to_string));
    let pooled_string = e.pooled.as_ref().and_then(|p| p.connection_string.clone());
    match (pooled.pooled, pooled_string) {
        (true, Some(p)) => vec![("connection string", Some(p)), ("direct string", direct)],
        (true, None) => {
            eprintln!(
                "pgfleet: this server has no pooled endpoint (its pooler is off): the \
                 connection string is the direct one"
            );
            vec![("connection string", direct)]
        }
        (false, p) => vec![("connection string", direct), ("pooled string", p)],
    }
}

/// The once-shown strings of a just-created database's default connection (none when it
/// has no connection).
pub fn created_database_pairs(
    db: &CreatedDatabase,
    pooled: PooledArgs,
) -> Vec<(&'static str, Option<String>)> {
    let d = &db.database;
    let conn = d
        .connections
        .iter()
        .find(|c| d.default_connection_id.as_ref() == Some(&c.id))
        .or(d.connections.first());
    if conn.is_none() && db.connection_string.is_none() {
        return vec![];
    }
    let endpoints = conn.map(|c| c.endpoints.clone()).unwrap_or_default();
    string_pairs(&endpoints, db.connection_string.as_deref(), pooled)
}

/// Said on stderr after printing credentials.
pub const SHOWN_ONCE: &str = "The connection strings are shown once: store them now.";

/// A default connection name: `<prefix>-<unix seconds>`.
pub fn default_name(prefix: &str) -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    format!("{prefix}-{secs}")
}

fn connection_pairs(c: &Connection) -> Vec<(&'static str, Option<String>)> {
    let mut pairs = vec![
        ("id", s(&c.id)),
        ("name", s(&c.name)),
        ("database", s(&c.database.id)),
    ];
    pairs.extend(endpoint_pairs(&c.endpoints));
    pairs.push(("created", s(&c.created_at)));
    pairs
}

fn print_created(ctx: &Ctx, c: &CreatedConnection, pooled: PooledArgs) -> anyhow::Result<()> {
    if ctx.json {
        return output::json(c);
    }
    let mut pairs = connection_pairs(&c.connection);
    pairs.push(("user", c.user.clone()));
    pairs.extend(string_pairs(
        &c.connection.endpoints,
        Some(&c.connection_string),
        pooled,
    ));
    output::kv(&pairs);
    eprintln!("{SHOWN_ONCE}");
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
            let mut t = Table::new(&["ID", "NAME", "DATABASE", "DIRECT", "POOLED", "CREATED"]);
            for c in all {
                let direct = host_port(c.endpoints.direct.as_ref());
                let pooled = host_port(c.endpoints.pooled.as_ref());
                t.row(vec![
                    c.id,
                    c.name,
                    c.database.id,
                    or_dash(direct.as_deref()),
                    or_dash(pooled.as_deref()),
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
        ConnectionsCommand::Create {
            database,
            name,
            pooled,
        } => {
            let name = name.unwrap_or_else(|| default_name("cli"));
            let c = conns.create(&database, &name).await?;
            print_created(ctx, &c, pooled)?;
        }
        ConnectionsCommand::Rotate { id, pooled, yes } => {
            confirm(
                yes,
                &format!("rotate connection {id} (its current password stops working at once)"),
            )?;
            let c = conns.rotate(&id).await?;
            print_created(ctx, &c, pooled)?;
        }
        ConnectionsCommand::Delete { id, yes } => {
            confirm(yes, &format!("delete connection {id} (its sessions end)"))?;
            conns.delete(&id).await?;
            if ctx.json {
                return output::json(&serde_json::json!({ "deleted": id }));
            }
            println!("Deleted connection {id}");
        }
    }
    Ok(())
}
