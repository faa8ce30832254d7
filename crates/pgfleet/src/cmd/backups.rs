//! `pgfleet backups list|create|restore`.

use std::time::{Duration, Instant};

use clap::Subcommand;
use pgfleet_client::types::backup::Backup;

use super::confirm::{confirm, YesArgs};
use super::databases::{status_str, wait_ready, WaitArgs};
use super::output::{self, or_dash, s, Table};
use super::Ctx;

#[derive(Debug, Subcommand)]
pub enum BackupsCommand {
    /// List a database's backups, newest first.
    List {
        /// Database id.
        database_id: String,
        /// At most this many.
        #[arg(long)]
        limit: Option<i64>,
    },
    /// Back a database up now.
    Create {
        /// Database id.
        database_id: String,
        #[command(flatten)]
        wait: WaitArgs,
    },
    /// Replace a database's contents with a backup (of it or of another database), or with
    /// a database as it was at a time (`--at`, point-in-time recovery: inside the source's
    /// restore window); asks first, `--yes` to skip.
    Restore {
        /// The database to restore into.
        target_database_id: String,
        /// The backup's id.
        #[arg(long, required_unless_present = "at", conflicts_with = "at")]
        backup: Option<String>,
        /// A time (RFC 3339, e.g. 2026-12-04T10:15:00Z) inside the source's restore window.
        #[arg(long, value_parser = parse_time)]
        at: Option<String>,
        /// The database the backup belongs to (default: the target).
        #[arg(long = "from-database", value_name = "DATABASE_ID")]
        from_database: Option<String>,
        #[command(flatten)]
        wait: WaitArgs,
        #[command(flatten)]
        yes: YesArgs,
    },
}

/// A time for `--at`: RFC 3339, normalised to UTC (checked here so a typo fails before
/// anything is asked or sent).
pub(crate) fn parse_time(s: &str) -> Result<String, String> {
    chrono::DateTime::parse_from_rfc3339(s)
        .map(|t| {
            t.with_timezone(&chrono::Utc)
                .to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
        })
        .map_err(|e| format!("not an RFC 3339 time (e.g. 2026-12-04T10:15:00Z): {e}"))
}

fn size(b: &Backup) -> String {
    match b.size {
        Some(n) if n >= 1 << 20 => format!("{:.1} MiB", n as f64 / (1u64 << 20) as f64),
        Some(n) if n >= 1 << 10 => format!("{:.1} KiB", n as f64 / 1024.0),
        Some(n) => format!("{n} B"),
        None => "-".to_string(),
    }
}

fn backup_pairs(b: &Backup) -> Vec<(&'static str, Option<String>)> {
    vec![
        ("id", s(&b.id)),
        ("status", s(&b.status)),
        ("type", s(&b.backup_type)),
        ("size", s(size(b))),
        ("created", s(&b.created_at)),
    ]
}

/// Polls the backup list until backup `id` is no longer `running`.
async fn wait_backup(ctx: &Ctx, db: &str, id: &str, timeout: u64) -> anyhow::Result<Backup> {
    let spinner = indicatif::ProgressBar::new_spinner();
    spinner.set_draw_target(indicatif::ProgressDrawTarget::stderr());
    spinner.enable_steady_tick(Duration::from_millis(100));
    spinner.set_message(format!("backing up {db}"));
    let deadline = Instant::now() + Duration::from_secs(timeout);
    let result = loop {
        let list = ctx.client.backups(db).list(None).await;
        match list.map(|l| l.data.into_iter().find(|b| b.id == id)) {
            Ok(Some(b)) if b.status != "running" => break Ok(b),
            Ok(_) => {}
            Err(e) => break Err(e.into()),
        }
        if Instant::now() >= deadline {
            break Err(anyhow::anyhow!(
                "backup {id} still running after {timeout} s (see `pgfleet backups list {db}`)"
            ));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    spinner.finish_and_clear();
    result
}

pub async fn run(ctx: &Ctx, cmd: BackupsCommand) -> anyhow::Result<()> {
    match cmd {
        BackupsCommand::List { database_id, limit } => {
            let list = ctx.client.backups(&database_id).list(limit).await?;
            if ctx.json {
                return output::json(&list);
            }
            let mut t = Table::new(&["ID", "STATUS", "TYPE", "SIZE", "CREATED"]);
            for b in &list.data {
                t.row(vec![
                    b.id.clone(),
                    b.status.clone(),
                    or_dash(Some(&b.backup_type)),
                    size(b),
                    b.created_at.clone(),
                ]);
            }
            t.print();
        }
        BackupsCommand::Create { database_id, wait } => {
            let mut b = ctx.client.backups(&database_id).create().await?;
            if wait.wait {
                b = wait_backup(ctx, &database_id, &b.id, wait.timeout).await?;
                if b.status != "completed" {
                    anyhow::bail!("backup {} ended {}", b.id, b.status);
                }
            }
            if ctx.json {
                return output::json(&b);
            }
            output::kv(&backup_pairs(&b));
        }
        BackupsCommand::Restore {
            target_database_id,
            backup,
            at,
            from_database,
            wait,
            yes,
        } => {
            let source = from_database.unwrap_or_else(|| target_database_id.clone());
            let what = match (&backup, &at) {
                (Some(b), _) => format!("backup {b}"),
                (None, Some(t)) => format!("database {source} as it was at {t}"),
                (None, None) => anyhow::bail!("--backup or --at is required"),
            };
            confirm(
                yes,
                &format!("replace the contents of database {target_database_id} with {what}"),
            )?;
            let dbs = ctx.client.databases();
            let mut db = match (&backup, &at) {
                (Some(b), _) => dbs.restore(&target_database_id, &source, b).await?,
                (None, Some(t)) => dbs.restore_to_time(&target_database_id, &source, t).await?,
                (None, None) => anyhow::bail!("--backup or --at is required"),
            };
            if wait.wait {
                db = wait_ready(ctx, &db.id, &wait).await?;
            }
            if ctx.json {
                return output::json(&db);
            }
            output::kv(&[
                ("database", s(&db.id)),
                ("status", s(status_str(&db.status))),
                (
                    "restored from",
                    s(match (&backup, &at) {
                        (Some(b), _) => format!("{b} of {source}"),
                        _ => format!("{source} at {}", at.as_deref().unwrap_or_default()),
                    }),
                ),
            ]);
        }
    }
    Ok(())
}
