//! Command-line interface: `pgfleet serve`, `config print`, `admin …`, `completions`, `mcp`, and
//! the API client commands (`login`, `projects …`; see [`crate::cmd`]). The top of the
//! command line: it imports the commands' arguments, and none of them imports it.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::config::{Config, LogFormat, Overrides};

#[derive(Debug, Parser)]
#[command(
    name = "pgfleet",
    version,
    about = "Self-hosted Postgres platform with a Prisma-compatible Management API"
)]
pub struct Cli {
    #[command(flatten)]
    pub global: crate::cmd::GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server (and its embedded PostgreSQL unless configured otherwise).
    Serve(ServeArgs),
    /// Run only the pooled endpoint (PostgreSQL proxy) beside a running `pgfleet serve`.
    Proxy(ServeArgs),
    /// Inspect the configuration.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Operator commands on the metadata store (the server must be running).
    #[command(subcommand)]
    Admin(AdminCommand),
    #[command(flatten)]
    Client(crate::cmd::ClientCommand),
    /// Print a shell completion script.
    Completions(crate::completions::CompletionsArgs),
    /// Serve the MCP tools over stdin/stdout (for an agent that starts pgfleet), as the
    /// token in --token/PGFLEET_TOKEN or in the file --token-file/PGFLEET_TOKEN_FILE names.
    Mcp(McpArgs),
}

#[derive(Debug, Args, Clone)]
pub struct McpArgs {
    #[command(flatten)]
    pub common: ServeArgs,
    /// A file holding the token (instead of --token / PGFLEET_TOKEN).
    #[arg(long, env = "PGFLEET_TOKEN_FILE")]
    pub token_file: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// OAuth apps.
    #[command(subcommand)]
    Apps(AppsCommand),
    /// Postgres servers: list them, drain one (it takes no new databases) or undrain it.
    #[command(subcommand)]
    Servers(ServersCommand),
    /// The replicas (`pgfleet serve` processes) sharing the metadata store: id, version, API
    /// address, started, last seen, state (alive / gone).
    Replicas(ServeArgs),
}

#[derive(Debug, Subcommand)]
pub enum ServersCommand {
    /// Every registered server (or the one named by ID): region, key, drained, databases,
    /// connection slots assigned/capacity, disk used by its databases (last sampled).
    List(ServersListArgs),
    /// Take a server out of placement: new databases go to other servers of its region; the
    /// databases already on it keep working.
    Drain(ServerIdArgs),
    /// Put a drained server back into placement.
    Undrain(ServerIdArgs),
}

#[derive(Debug, Args, Clone)]
pub struct ServersListArgs {
    #[command(flatten)]
    pub common: ServeArgs,
    /// Only this server (its id, as `list` shows it).
    pub id: Option<String>,
}

#[derive(Debug, Args, Clone)]
pub struct ServerIdArgs {
    #[command(flatten)]
    pub common: ServeArgs,
    /// The server's id, as `pgfleet admin servers list` shows it.
    pub id: String,
}

#[derive(Debug, Subcommand)]
pub enum AppsCommand {
    /// Create an OAuth app; a confidential app's secret is printed once.
    Create(AppsCreateArgs),
}

#[derive(Debug, Args, Clone)]
pub struct AppsCreateArgs {
    #[command(flatten)]
    pub common: ServeArgs,
    /// Workspace of the app (default: the first workspace).
    #[arg(long)]
    pub workspace: Option<String>,
    #[arg(long)]
    pub name: String,
    #[arg(long)]
    pub description: Option<String>,
    /// Exact redirect URI (repeat for several).
    #[arg(long = "redirect-uri", required = true)]
    pub redirect_uris: Vec<String>,
    /// A public client (PKCE only, no secret).
    #[arg(long, conflicts_with = "confidential")]
    pub public: bool,
    /// A confidential client (with a client secret).
    #[arg(long)]
    pub confidential: bool,
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Print the effective configuration as TOML, secrets redacted.
    Print(ServeArgs),
}

#[derive(Debug, Args, Clone, Default)]
pub struct ServeArgs {
    /// TOML configuration file.
    #[arg(long, env = "PGFLEET_CONFIG")]
    pub config: Option<PathBuf>,
    /// Address for the HTTP API (default 127.0.0.1:8080).
    #[arg(long)]
    pub listen: Option<SocketAddr>,
    /// Base URL used in responses' `url` fields.
    #[arg(long)]
    pub public_url: Option<String>,
    /// Where pgfleet keeps its state (also PGFLEET_DATA_DIR).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// E-mail of the admin user created at first start (default admin@pgfleet.localhost).
    #[arg(long)]
    pub admin_email: Option<String>,
    /// Log as text or JSON lines.
    #[arg(long, value_enum)]
    pub log_format: Option<LogFormat>,
}

impl ServeArgs {
    pub fn load(&self) -> Result<Config, crate::config::ConfigError> {
        let overrides = Overrides {
            listen: self.listen,
            public_url: self.public_url.clone(),
            data_dir: self.data_dir.clone(),
            admin_email: self.admin_email.clone(),
            log_format: self.log_format,
        };
        Config::load(self.config.as_deref(), &overrides)
    }
}
