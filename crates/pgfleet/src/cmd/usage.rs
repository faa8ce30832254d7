//! `pgfleet usage DATABASE_ID`: operations and storage of a database over a period.

use clap::Args;

use super::output::{self, s};
use super::Ctx;

#[derive(Debug, Args)]
pub struct UsageArgs {
    /// Database id.
    pub database_id: String,
    /// Start of the period (date or date-time; default: the server's).
    #[arg(long)]
    pub start: Option<String>,
    /// End of the period (date or date-time; default: now).
    #[arg(long)]
    pub end: Option<String>,
}

pub async fn run(ctx: &Ctx, args: &UsageArgs) -> anyhow::Result<()> {
    let u = ctx
        .client
        .databases()
        .usage(
            &args.database_id,
            args.start.as_deref(),
            args.end.as_deref(),
        )
        .await?;
    if ctx.json {
        return output::json(&u);
    }
    output::kv(&[
        (
            "period",
            s(format!("{} – {}", u.period.start, u.period.end)),
        ),
        (
            "operations",
            s(format!("{} ops", u.metrics.operations.used)),
        ),
        ("storage", s(format!("{:.6} GiB", u.metrics.storage.used))),
        ("generated", s(u.generated_at)),
    ]);
    Ok(())
}
