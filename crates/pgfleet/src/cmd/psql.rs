//! `pgfleet psql DATABASE_ID`: creates a fresh connection through the API, runs `psql` on
//! it (the password passed in the environment, not on the command line), and deletes the
//! connection when psql exits, whatever way it exits.

use std::process::ExitCode;

use anyhow::Context as _;
use clap::Args;

use super::connections::default_name;
use super::Ctx;

#[derive(Debug, Args)]
pub struct PsqlArgs {
    /// Database id (`db_…`).
    pub database_id: String,
    /// Connect through the pooled endpoint (pgfleet's pooler) instead of directly.
    #[arg(long)]
    pub pooled: bool,
    /// The psql program to run.
    #[arg(long, default_value = "psql", value_name = "PATH")]
    pub psql_bin: String,
    /// Arguments passed on to psql (after `--`), e.g. `-- -c 'select 1'`.
    #[arg(last = true)]
    pub psql_args: Vec<String>,
}

/// The connection string without its password, and the password.
fn split_password(conn: &str) -> anyhow::Result<(String, Option<String>)> {
    let mut url =
        url::Url::parse(conn).context("the API returned an unreadable connection string")?;
    let password = url.password().map(percent_decode);
    if url.set_password(None).is_err() {
        return Ok((conn.to_string(), None));
    }
    Ok((url.to_string(), password))
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (
            bytes[i],
            bytes.get(i + 1).copied(),
            bytes.get(i + 2).copied(),
        ) {
            (b'%', Some(h), Some(l)) if hex(h).is_some() && hex(l).is_some() => {
                out.push((hex(h).unwrap_or(0) * 16 + hex(l).unwrap_or(0)) as u8);
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

pub async fn run(ctx: &Ctx, args: &PsqlArgs) -> anyhow::Result<ExitCode> {
    let conn = ctx
        .client
        .connections()
        .create(&args.database_id, &default_name("psql"))
        .await?;
    let id = conn.connection.id.clone();
    // From here on the connection must be deleted whatever happens. Ctrl-C belongs to psql
    // (it cancels the running query): with a handler installed we are not killed by it.
    let _sigint = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt());
    let status = async {
        let pooled = conn
            .connection
            .endpoints
            .pooled
            .as_ref()
            .filter(|_| args.pooled)
            .and_then(|e| e.connection_string.as_deref());
        if args.pooled && pooled.is_none() {
            anyhow::bail!("this server has no pooled endpoint (its pooler is off)");
        }
        let (url, password) = split_password(pooled.unwrap_or(&conn.connection_string))?;
        let mut cmd = tokio::process::Command::new(&args.psql_bin);
        cmd.arg("-d").arg(url).args(&args.psql_args);
        if let Some(p) = password.or_else(|| conn.pass.clone()) {
            cmd.env("PGPASSWORD", p);
        }
        cmd.status()
            .await
            .with_context(|| format!("cannot run {}", args.psql_bin))
    }
    .await;
    let deleted = ctx.client.connections().delete(&id).await;
    let status = status?;
    if let Err(e) = deleted {
        eprintln!("pgfleet: could not delete connection {id}: {e}; delete it with `pgfleet connections delete {id}`");
        return Ok(ExitCode::FAILURE);
    }
    Ok(match status.code() {
        Some(0) => ExitCode::SUCCESS,
        Some(c) => ExitCode::from(u8::try_from(c).unwrap_or(1)),
        None => ExitCode::FAILURE,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_leaves_the_url() {
        let (u, p) =
            split_password("postgresql://u_1:s3cr%40t@localhost:5432/db?sslmode=require").unwrap();
        assert_eq!(u, "postgresql://u_1@localhost:5432/db?sslmode=require");
        assert_eq!(p.as_deref(), Some("s3cr@t"));
    }
}
