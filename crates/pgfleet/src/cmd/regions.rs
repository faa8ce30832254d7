//! `pgfleet regions list`.

use clap::Subcommand;
use pgfleet_client::types::region::RegionStatus;

use super::output::{self, Table};
use super::Ctx;

#[derive(Debug, Subcommand)]
pub enum RegionsCommand {
    /// List the regions (every product; `--postgres` for where databases can go).
    List {
        /// Only the regions of `GET /v1/regions/postgres`.
        #[arg(long)]
        postgres: bool,
    },
}

fn status(s: RegionStatus) -> String {
    match s {
        RegionStatus::Available => "available",
        RegionStatus::Unavailable => "unavailable",
    }
    .to_string()
}

pub async fn run(ctx: &Ctx, cmd: RegionsCommand) -> anyhow::Result<()> {
    let RegionsCommand::List { postgres } = cmd;
    if postgres {
        let all = ctx.client.regions_postgres().await?;
        if ctx.json {
            return output::json(&all);
        }
        let mut t = Table::new(&["ID", "NAME", "STATUS"]);
        for r in all {
            t.row(vec![r.id, r.name, status(r.status)]);
        }
        t.print();
    } else {
        let all = ctx.client.regions().await?;
        if ctx.json {
            return output::json(&all);
        }
        let mut t = Table::new(&["ID", "NAME", "PRODUCT", "STATUS"]);
        for r in all {
            t.row(vec![r.id, r.name, r.product, status(r.status)]);
        }
        t.print();
    }
    Ok(())
}
