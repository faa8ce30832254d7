//! Tracing set-up: `RUST_LOG` filters (default `info`), text or JSON lines on stderr.
//!
//! Colour (ANSI escapes) only when stderr is a terminal and `NO_COLOR` is unset: a log
//! redirected to a file or a journal must stay plain text.

use std::io::IsTerminal as _;

use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,tower_http=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(colour_stderr())
        .with_writer(std::io::stderr);
    // A second init (tests) is not an error worth failing for.
    let _ = match format {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        LogFormat::Text => builder.try_init(),
    };
}

/// True when what goes to stderr may be coloured: a terminal, and no `NO_COLOR`
/// (<https://no-color.org>, any non-empty value).
pub fn colour_stderr() -> bool {
    std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}
