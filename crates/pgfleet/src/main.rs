//! The `pgfleet` binary: the server, its operator tools and the API client (CLI).

use std::process::ExitCode;

use clap::Parser;
use pgfleet::cli::{AdminCommand, AppsCommand, Cli, Command, ConfigCommand};
use pgfleet::server::{self, Deps};

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Config(ConfigCommand::Print(args)) => match args.load() {
            Ok(cfg) => {
                print!("{}", cfg.to_toml());
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("pgfleet: {e}");
                ExitCode::from(2)
            }
        },
        Command::Admin(AdminCommand::Apps(AppsCommand::Create(args))) => {
            let cfg = match args.common.load() {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("pgfleet: {e}");
                    return ExitCode::from(2);
                }
            };
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
            let run = pgfleet::admin::apps_create(
                &cfg,
                args.workspace.as_deref(),
                &args.name,
                args.description.as_deref(),
                &args.redirect_uris,
                args.confidential,
                cli.global.json,
            );
            match rt.block_on(run) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("pgfleet: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Client(command) => pgfleet::cmd::run(&cli.global, command),
        Command::Proxy(args) => {
            let cfg = match args.load() {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("pgfleet: {e}");
                    return ExitCode::from(2);
                }
            };
            pgfleet::logging::init(cfg.log_format);
            let rt = match tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    eprintln!("pgfleet: cannot start the async runtime: {e}");
                    return ExitCode::FAILURE;
                }
            };
            match rt.block_on(pgfleet::pooler::run_standalone(cfg, wait_for_signal())) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("pgfleet: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Serve(args) => {
            let cfg = match args.load() {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("pgfleet: {e}");
                    return ExitCode::from(2);
                }
            };
            pgfleet::logging::init(cfg.log_format);
            let rt = match tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    eprintln!("pgfleet: cannot start the async runtime: {e}");
                    return ExitCode::FAILURE;
                }
            };
            match rt.block_on(serve(cfg)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("pgfleet: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

async fn serve(cfg: pgfleet::config::Config) -> anyhow::Result<()> {
    let data_dir = cfg.data_dir.clone();
    let running = server::start(cfg, Deps::default()).await?;
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
    if let Some(p) = running.pooler_addr {
        println!("pgfleet pooler listening on postgresql://{p}");
    }
    println!("pgfleet listening on http://{}", running.addr);
    wait_for_signal().await;
    tracing::info!("shutting down");
    running.stop().await
}

async fn wait_for_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
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
