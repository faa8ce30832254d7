//! The `pgfleet` binary: the server, its operator tools and the API client (CLI).

use std::process::ExitCode;

use clap::{CommandFactory as _, Parser};
use pgfleet::cli::{AdminCommand, AppsCommand, Cli, Command, ConfigCommand, ServersCommand};
use pgfleet::server::{self, Deps};

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Config(ConfigCommand::Print(args)) => {
            let Some(cfg) = loaded(args.load()) else {
                return ExitCode::from(2);
            };
            print!("{}", effective_for_print(cfg));
            ExitCode::SUCCESS
        }
        Command::Admin(AdminCommand::Apps(AppsCommand::Create(args))) => {
            let Some(cfg) = loaded(args.common.load()) else {
                return ExitCode::from(2);
            };
            run_async(
                tokio::runtime::Builder::new_current_thread(),
                pgfleet::admin::apps_create(
                    &cfg,
                    args.workspace.as_deref(),
                    &args.name,
                    args.description.as_deref(),
                    &args.redirect_uris,
                    args.confidential,
                    cli.global.json,
                ),
            )
        }
        Command::Admin(AdminCommand::Servers(command)) => {
            let (common, id, drain) = match &command {
                ServersCommand::List(a) => (&a.common, a.id.as_deref(), None),
                ServersCommand::Drain(a) => (&a.common, Some(a.id.as_str()), Some(true)),
                ServersCommand::Undrain(a) => (&a.common, Some(a.id.as_str()), Some(false)),
            };
            let Some(cfg) = loaded(common.load()) else {
                return ExitCode::from(2);
            };
            let json = cli.global.json;
            run_async(tokio::runtime::Builder::new_current_thread(), async move {
                match (drain, id) {
                    (Some(drain), Some(id)) => {
                        pgfleet::admin::servers_set_drained(&cfg, id, drain, json).await
                    }
                    _ => pgfleet::admin::servers_list(&cfg, id, json).await,
                }
            })
        }
        Command::Admin(AdminCommand::Replicas(common)) => {
            let Some(cfg) = loaded(common.load()) else {
                return ExitCode::from(2);
            };
            let json = cli.global.json;
            run_async(tokio::runtime::Builder::new_current_thread(), async move {
                pgfleet::admin::replicas_list(&cfg, json).await
            })
        }
        Command::Client(command) => pgfleet::cmd::run(&cli.global, command),
        Command::Mcp(args) => {
            let Some(cfg) = loaded(args.common.load()) else {
                return ExitCode::from(2);
            };
            pgfleet::logging::init(cfg.log_format);
            let token =
                match pgfleet::mcp::token(cli.global.token.clone(), args.token_file.as_deref()) {
                    Ok(t) => t,
                    Err(e) => {
                        eprintln!("error: {e:#}");
                        return ExitCode::from(2);
                    }
                };
            run_async(tokio::runtime::Builder::new_multi_thread(), async move {
                pgfleet::mcp::run(cfg, token).await
            })
        }
        Command::Completions(args) => {
            pgfleet::completions::run(&args, Cli::command());
            ExitCode::SUCCESS
        }
        Command::Proxy(args) => {
            let Some(cfg) = loaded(args.load()) else {
                return ExitCode::from(2);
            };
            pgfleet::logging::init(cfg.log_format);
            raise_open_files_limit();
            run_async(
                tokio::runtime::Builder::new_multi_thread(),
                // Inside the runtime: the signal handlers need it.
                async move { pgfleet::pooler::run_standalone(cfg, wait_for_signal()).await },
            )
        }
        Command::Serve(args) => {
            let Some(cfg) = loaded(args.load()) else {
                return ExitCode::from(2);
            };
            pgfleet::logging::init(cfg.log_format);
            raise_open_files_limit();
            run_async(tokio::runtime::Builder::new_multi_thread(), serve(cfg))
        }
    }
}

/// The configuration as `config print` shows it: with the connection caps `pgfleet serve`
/// would derive from this machine's open-files limit.
fn effective_for_print(mut cfg: pgfleet::config::Config) -> String {
    let header = pgfleet::descriptors::fill_for_print(&mut cfg);
    header + &cfg.to_toml()
}

/// Raises the soft open-files limit to the hard one before anything opens descriptors (the
/// connection caps are derived from it; the embedded PostgreSQL inherits it). On failure the
/// current limit stays, and the caps are derived from that.
fn raise_open_files_limit() {
    match pgfleet::descriptors::raise_soft_limit() {
        Ok(limit) => tracing::info!(open_files_limit = limit, "open-files limit"),
        Err(e) => tracing::warn!(error = %e, "keeping the current open-files limit"),
    }
}

/// The configuration, or `None` after saying why it cannot be loaded (exit code 2).
fn loaded(
    cfg: Result<pgfleet::config::Config, pgfleet::config::ConfigError>,
) -> Option<pgfleet::config::Config> {
    cfg.map_err(|e| eprintln!("pgfleet: {e}")).ok()
}

/// Runs `work` on a runtime from `builder`: success, or the error printed and exit code 1.
fn run_async(
    mut builder: tokio::runtime::Builder,
    work: impl std::future::Future<Output = anyhow::Result<()>>,
) -> ExitCode {
    let rt = match builder.enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("pgfleet: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(work) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("pgfleet: {}", pgfleet::cmd::error_text(&e));
            ExitCode::FAILURE
        }
    }
}

async fn serve(cfg: pgfleet::config::Config) -> anyhow::Result<()> {
    let data_dir = cfg.data_dir.clone();
    let public_url = cfg.public_url.clone();
    let reload_cfg = cfg.clone();
    let stop = wait_for_signal();
    let running = server::start(cfg, Deps::default()).await?;
    let reloads = tokio::spawn(pgfleet::pooler::reload_on_hangup(
        reload_cfg,
        running.pooler.clone(),
    ));
    if let Some(s) = &running.bootstrap {
        println!(
            "\npgfleet first start: save these now, they are shown once \
             (also in {}, mode 0600)\n  admin e-mail:   {}\n  admin password: {}\n  workspace:      {}\n  service token:  {}\n",
            data_dir.join("bootstrap.txt").display(),
            s.admin_email,
            s.admin_password,
            s.workspace_id,
            s.token
        );
    }
    tracing::info!(addr = %running.addr, "pgfleet is listening");
    let listening = format!("http://{}", running.addr);
    let bootstrap_file = data_dir.join("bootstrap.txt");
    let banner = pgfleet::banner::Banner {
        public_base: public_url.unwrap_or_else(|| listening.clone()),
        listening,
        pooler: running.pooler_addr.map(|p| p.to_string()),
        accelerate: running.accelerate_addr.map(|a| a.to_string()),
        cli: std::env::current_exe().ok(),
        bootstrap_file_here: bootstrap_file.is_file(),
        bootstrap_file,
    };
    print!("{}", banner.render());
    stop.await;
    tracing::info!("shutting down");
    reloads.abort();
    running.stop().await
}

/// SIGTERM or SIGINT. The handlers are installed when this is called, not when the future is
/// first polled, so a signal that arrives while the server is still starting is not lost (nor
/// does it kill the process with the default action).
fn wait_for_signal() -> impl std::future::Future<Output = ()> {
    use tokio::signal::unix::{signal, SignalKind};
    let handlers = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    );
    async move {
        match handlers {
            (Ok(mut term), Ok(mut int)) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = int.recv() => {}
                }
            }
            _ => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
}
