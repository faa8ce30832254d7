//! The API half of the `pgfleet` command line: global options (`--api-url`, `--token`,
//! `--json`), the client commands (one file per resource), how results are printed (aligned
//! tables for people, raw JSON for scripts) and how errors are reported (the server's
//! message and hint on stderr, exit status 1).

pub mod auth;
pub mod backups;
pub mod confirm;
pub mod connections;
pub mod databases;
pub mod integrations;
pub mod output;
pub mod projects;
pub mod psql;
pub mod regions;
pub mod service_tokens;
pub mod usage;
pub mod webhooks;
pub mod workspaces;

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Args, Subcommand};
use pgfleet_client::{Client, OAuthClient};

/// Options every command accepts (they only matter to the client commands).
#[derive(Debug, Args, Clone)]
pub struct GlobalArgs {
    /// Base URL of the pgfleet server.
    #[arg(
        long,
        global = true,
        env = "PGFLEET_API_URL",
        hide_env_values = true,
        default_value = "http://127.0.0.1:8080"
    )]
    pub api_url: String,
    /// Bearer token (a service token); default: the tokens saved by `pgfleet login`.
    #[arg(long, global = true, env = "PGFLEET_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Print raw JSON instead of tables.
    #[arg(long, global = true)]
    pub json: bool,
    /// A PEM certificate to trust besides the system's roots (a private CA or the
    /// self-signed certificate of the TLS proxy in front of the server).
    #[arg(long, global = true, env = "PGFLEET_CA_CERT")]
    pub ca_cert: Option<std::path::PathBuf>,
}

/// The HTTP client of the client commands (rustls; system roots plus `--ca-cert`).
pub fn http(g: &GlobalArgs) -> anyhow::Result<reqwest::Client> {
    let mut roots = Vec::new();
    if let Some(path) = &g.ca_cert {
        let pem = std::fs::read(path)
            .with_context(|| format!("--ca-cert: cannot read {}", path.display()))?;
        roots.push(
            reqwest::Certificate::from_pem(&pem).with_context(|| {
                format!("--ca-cert: {} is not a PEM certificate", path.display())
            })?,
        );
    }
    Ok(pgfleet_client::http_client(
        Duration::from_secs(120),
        &roots,
    )?)
}

/// The commands that talk to a server's API.
#[derive(Debug, Subcommand)]
pub enum ClientCommand {
    /// Sign in through the browser (OAuth 2.0 with PKCE, loopback redirect).
    Login(auth::LoginArgs),
    /// Forget (and revoke) the tokens saved by `pgfleet login`.
    Logout,
    /// Show who the credential belongs to.
    Whoami,
    /// Workspaces.
    #[command(subcommand)]
    Workspaces(workspaces::WorkspacesCommand),
    /// Projects.
    #[command(subcommand)]
    Projects(projects::ProjectsCommand),
    /// Databases.
    #[command(subcommand)]
    Databases(databases::DatabasesCommand),
    /// Connections (credentials of databases).
    #[command(subcommand)]
    Connections(connections::ConnectionsCommand),
    /// Backups of a database, and restoring them.
    #[command(subcommand)]
    Backups(backups::BackupsCommand),
    /// Usage (operations, storage) of a database.
    Usage(usage::UsageArgs),
    /// Regions.
    #[command(subcommand)]
    Regions(regions::RegionsCommand),
    /// Service tokens of a workspace.
    #[command(subcommand, name = "service-tokens")]
    ServiceTokens(service_tokens::ServiceTokensCommand),
    /// OAuth apps authorized on a workspace.
    #[command(subcommand)]
    Integrations(integrations::IntegrationsCommand),
    /// Open psql on a fresh connection of a database (deleted when psql exits).
    Psql(psql::PsqlArgs),
    /// Signed webhook endpoints of a workspace, and their deliveries.
    #[command(subcommand)]
    Webhooks(webhooks::WebhooksCommand),
}

/// What a command needs: the API client and how to print.
#[derive(Debug)]
pub struct Ctx {
    pub client: Client,
    pub json: bool,
}

impl Ctx {
    /// A client authenticated with `--token`, else with the tokens `pgfleet login` saved.
    pub fn new(g: &GlobalArgs) -> anyhow::Result<Self> {
        let api_url = normalize_url(&g.api_url);
        let http = http(g)?;
        let builder = Client::builder(&api_url).http_client(http.clone());
        let client = if let Some(t) = g.token.as_deref().filter(|t| !t.is_empty()) {
            builder.token(t).build()?
        } else {
            let file = auth::CredentialsFile::default_path()?;
            let entry = auth::CredentialsFile::load(&file)?
                .servers
                .remove(&api_url)
                .filter(|e| e.tokens.is_some());
            let Some(entry) = entry else {
                anyhow::bail!(
                    "not signed in to {api_url}: pass --token (or set PGFLEET_TOKEN), or run \
                     `pgfleet login --client-id <app id>`"
                );
            };
            let oauth = OAuthClient::new(&entry.auth_base, &entry.client_id, &entry.redirect_uri)
                .context("saved credentials")?
                .with_http_client(http);
            let storage = Arc::new(auth::FileTokenStorage::new(file, api_url.clone()));
            builder.oauth(oauth, storage).build()?
        };
        Ok(Self {
            client,
            json: g.json,
        })
    }

    /// The workspace to work on: `explicit`, else the credential's own.
    pub async fn workspace(&self, explicit: Option<&str>) -> anyhow::Result<String> {
        if let Some(w) = explicit {
            return Ok(w.to_string());
        }
        let me = self.client.me().await?;
        me.workspace
            .map(|w| w.id)
            .context("this credential has no workspace: pass --workspace")
    }
}

/// `http://h:1/` and `http://h:1` are the same server.
pub fn normalize_url(u: &str) -> String {
    u.trim().trim_end_matches('/').to_string()
}

/// Runs a client command; errors are printed here, the exit status returned.
pub fn run(g: &GlobalArgs, command: ClientCommand) -> ExitCode {
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("pgfleet: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(dispatch(g, command)) {
        Ok(code) => code,
        Err(e) => {
            report(&e);
            if unreachable(&e) {
                eprintln!(
                    "hint: no pgfleet server answered at {}: start one (`scripts/serve`), or \
                     point the CLI at yours with --api-url URL (or PGFLEET_API_URL)",
                    normalize_url(&g.api_url)
                );
            }
            ExitCode::FAILURE
        }
    }
}

async fn dispatch(g: &GlobalArgs, command: ClientCommand) -> anyhow::Result<ExitCode> {
    match command {
        ClientCommand::Login(a) => {
            auth::login(g, &a).await?;
            return Ok(ExitCode::SUCCESS);
        }
        ClientCommand::Logout => {
            auth::logout(g).await?;
            return Ok(ExitCode::SUCCESS);
        }
        _ => {}
    }
    let ctx = Ctx::new(g)?;
    match command {
        ClientCommand::Whoami => auth::whoami(&ctx).await?,
        ClientCommand::Workspaces(c) => workspaces::run(&ctx, c).await?,
        ClientCommand::Projects(c) => projects::run(&ctx, c).await?,
        ClientCommand::Databases(c) => databases::run(&ctx, c).await?,
        ClientCommand::Connections(c) => connections::run(&ctx, c).await?,
        ClientCommand::Backups(c) => backups::run(&ctx, c).await?,
        ClientCommand::Usage(a) => usage::run(&ctx, &a).await?,
        ClientCommand::Regions(c) => regions::run(&ctx, c).await?,
        ClientCommand::ServiceTokens(c) => service_tokens::run(&ctx, c).await?,
        ClientCommand::Integrations(c) => integrations::run(&ctx, c).await?,
        ClientCommand::Psql(a) => return psql::run(&ctx, &a).await,
        ClientCommand::Webhooks(c) => webhooks::run(&ctx, c).await?,
        ClientCommand::Login(_) | ClientCommand::Logout => {}
    }
    Ok(ExitCode::SUCCESS)
}

/// Prints an error for a person: the server's message, its hint, and the ids to quote.
pub fn report(e: &anyhow::Error) {
    if let Some(pgfleet_client::Error::Api {
        status,
        code,
        message,
        hint,
        request_id,
    }) = e.downcast_ref::<pgfleet_client::Error>()
    {
        eprintln!("pgfleet: {message}");
        if let Some(h) = hint {
            eprintln!("hint: {h}");
        }
        match request_id {
            Some(id) => eprintln!("({code}, HTTP {status}, request id {id})"),
            None => eprintln!("({code}, HTTP {status})"),
        }
        if *status == 401 && hint.is_none() {
            eprintln!("hint: check --token / PGFLEET_TOKEN, or sign in again with `pgfleet login`");
        }
        return;
    }
    eprintln!("pgfleet: {}", error_text(e));
}

/// The error and its causes on one line, `outer: inner: …`, leaving out a cause whose text
/// the line already carries: `pgfleet_client::Error::Transport` prints its reqwest error,
/// which is also its source, and reqwest's own causes repeat each other the same way.
pub fn error_text(e: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if text.is_empty() || out.contains(&text) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&text);
    }
    out
}

/// True when no server answered at all (refused, unknown host, timed out): the usual cause
/// is a wrong `--api-url`.
fn unreachable(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<reqwest::Error>()
            .is_some_and(|r| r.is_connect() || r.is_timeout())
    })
}

#[cfg(test)]
mod tests {
    #[derive(Debug, thiserror::Error)]
    #[error("cannot reach the server: {0}")]
    struct Outer(#[source] Inner);

    #[derive(Debug, thiserror::Error)]
    #[error("connection refused")]
    struct Inner;

    #[test]
    fn a_cause_already_in_the_line_is_not_repeated() {
        let e = anyhow::Error::new(Outer(Inner)).context("listing projects");
        assert_eq!(
            super::error_text(&e),
            "listing projects: cannot reach the server: connection refused"
        );
    }
}
