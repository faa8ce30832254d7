//! `pgfleet completions <shell>`: a completion script for bash, zsh, fish, elvish or
//! PowerShell on stdout. The script describes the whole command line, which sits above this
//! module: the caller hands its definition in (`Cli::command()`), so nothing here imports it.

use clap::Args;
use clap_complete::Shell;

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell: bash, zsh, fish, elvish or powershell.
    pub shell: Shell,
}

/// Prints the completion script of `cli` (the whole command line's definition).
pub fn run(args: &CompletionsArgs, mut cli: clap::Command) {
    clap_complete::generate(args.shell, &mut cli, "pgfleet", &mut std::io::stdout());
}
