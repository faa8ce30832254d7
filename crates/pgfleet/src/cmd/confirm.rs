//! Confirmation of the commands that destroy or replace something (delete, rotate, revoke,
//! restore, transfer): `--yes` confirms up front; otherwise a terminal is asked, and without
//! one (a script, CI) the command refuses before any request is made, saying to pass `--yes`.

use std::io::{BufRead as _, IsTerminal as _, Write as _};

use clap::Args;

/// `--yes` of a destructive command.
#[derive(Debug, Args, Clone, Copy, Default)]
pub struct YesArgs {
    /// Do not ask for confirmation (needed when stdin is not a terminal).
    #[arg(long, short = 'y')]
    pub yes: bool,
}

/// Longest answer read from the terminal; a longer line is a "no".
const MAX_ANSWER: u64 = 64;

/// Goes on when `--yes` was given or the user answers yes to "<action>?"; otherwise an
/// error saying nothing was done. `action` is lower-case, e.g. "delete project proj_1 and
/// all its databases".
pub fn confirm(yes: YesArgs, action: &str) -> anyhow::Result<()> {
    if yes.yes {
        return Ok(());
    }
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        anyhow::bail!(
            "refusing to {action} without confirmation (stdin is not a terminal to ask): \
             nothing was done; pass --yes to confirm"
        );
    }
    let mut err = std::io::stderr().lock();
    let _ = write!(err, "{}? [y/N] ", capitalized(action));
    let _ = err.flush();
    let mut answer = String::new();
    let read = std::io::Read::take(stdin.lock(), MAX_ANSWER).read_line(&mut answer);
    if read.is_ok() && is_yes(&answer) {
        return Ok(());
    }
    anyhow::bail!("not confirmed: nothing was done")
}

fn capitalized(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(first) => first.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

fn is_yes(answer: &str) -> bool {
    matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes")
}

#[cfg(test)]
mod tests {
    #[test]
    fn only_y_and_yes_confirm() {
        for a in ["y\n", "Y", " yes \n", "YES"] {
            assert!(super::is_yes(a), "{a:?}");
        }
        for a in ["", "\n", "n", "no", "yess", "y es", "ok"] {
            assert!(!super::is_yes(a), "{a:?}");
        }
    }
}
