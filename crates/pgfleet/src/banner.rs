//! What `pgfleet serve` prints on stdout once it listens: where the console, the API docs,
//! the pooled and `prisma+postgres://` endpoints and the CLI binary are, and how to sign in.
//! The last line is always `pgfleet listening on <base URL>` (scripts and tests wait for it).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// What the banner shows.
#[derive(Debug, Clone)]
pub struct Banner {
    /// The base URL a browser uses: `public_url` when configured, else the bound address.
    pub public_base: String,
    /// The address the API is bound to, `http://host:port`.
    pub listening: String,
    /// The pooled endpoint, `host:port`, when it runs.
    pub pooler: Option<String>,
    /// The `prisma+postgres://` endpoint, `host:port`, when it runs.
    pub accelerate: Option<String>,
    /// This binary (`std::env::current_exe`), when known.
    pub cli: Option<PathBuf>,
    /// `<data_dir>/bootstrap.txt`.
    pub bootstrap_file: PathBuf,
    /// Whether that file exists here (it is written by the process that bootstrapped the
    /// metadata store: with several replicas, maybe another machine's).
    pub bootstrap_file_here: bool,
}

impl Banner {
    pub fn render(&self) -> String {
        let base = self.public_base.trim_end_matches('/');
        let mut out = String::new();
        let _ = writeln!(out, "pgfleet is ready:");
        let _ = writeln!(out, "  console:  {base}/console");
        let _ = writeln!(
            out,
            "  API docs: {base}/docs (OpenAPI document: {base}/v1/doc)"
        );
        let _ = writeln!(out, "  sign in:  {}", self.sign_in());
        if let Some(cli) = &self.cli {
            let _ = writeln!(
                out,
                "  CLI:      {} (on your PATH: export PATH=\"{}:$PATH\"; then `pgfleet --help`)",
                cli.display(),
                cli.parent().unwrap_or(Path::new(".")).display()
            );
        }
        if let Some(p) = &self.pooler {
            let _ = writeln!(out, "pgfleet pooler listening on postgresql://{p}");
        }
        if let Some(a) = &self.accelerate {
            let _ = writeln!(
                out,
                "pgfleet prisma+postgres:// endpoint listening on {a} (each connection's \
                 endpoints.accelerate; its key is shown once)"
            );
        }
        let _ = writeln!(out, "pgfleet listening on {}", self.listening);
        out
    }

    fn sign_in(&self) -> String {
        let file = self.bootstrap_file.display();
        if self.bootstrap_file_here {
            format!(
                "admin_email and admin_password in {file} (mode 0600); service_token there \
                 is for the API and the CLI (--token or PGFLEET_TOKEN)"
            )
        } else {
            format!(
                "the admin e-mail and password of the first start, in the bootstrap.txt \
                 (like {file}) of the server that first started on this metadata store"
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listening_line_comes_last_and_urls_use_the_public_base() {
        let b = Banner {
            public_base: "https://pg.example.com/".into(),
            listening: "http://127.0.0.1:8080".into(),
            pooler: Some("127.0.0.1:6432".into()),
            accelerate: Some("127.0.0.1:4466".into()),
            cli: Some(PathBuf::from("/opt/pgfleet/bin/pgfleet")),
            bootstrap_file: PathBuf::from("/var/lib/pgfleet/bootstrap.txt"),
            bootstrap_file_here: true,
        };
        let text = b.render();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines.last(),
            Some(&"pgfleet listening on http://127.0.0.1:8080")
        );
        assert!(lines.contains(&"  console:  https://pg.example.com/console"));
        assert!(text.contains("https://pg.example.com/v1/doc"));
        assert!(text.contains("export PATH=\"/opt/pgfleet/bin:$PATH\""));
        assert!(text.contains("/var/lib/pgfleet/bootstrap.txt"));
        assert!(text.contains("prisma+postgres:// endpoint listening on 127.0.0.1:4466"));
    }
}
