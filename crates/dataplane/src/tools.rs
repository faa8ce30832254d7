//! `pg_dump` and `pg_restore`, run as child processes against a [`PgServer`] with its
//! superuser credentials (passed in the environment, never on the command line).
//!
//! Dumps are in the custom format (`-Fc`: compressed unless asked otherwise, restorable in
//! parallel and checkable with `pg_restore --list`). Restores give every object to the database's owner role
//! (`--no-owner --role=<owner>`) and skip privileges, so the restored data belongs to the
//! target database whatever database it came from.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use tokio::process::Command;

use crate::{DataplaneError, PgServer, Result};

/// Compression of a custom-format dump.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DumpCompression {
    /// pg_dump's default (gzip): for dumps that are kept.
    Default,
    /// None: for a dump read once right away (a point-in-time restore's hand-over from
    /// the scratch instance), where compressing only costs time.
    None,
}

#[derive(Debug, Clone)]
pub struct PgTools {
    bin_dir: PathBuf,
}

impl PgTools {
    pub fn new(bin_dir: impl Into<PathBuf>) -> Self {
        Self {
            bin_dir: bin_dir.into(),
        }
    }

    /// From `postgres.bin_dir` or the same search as the embedded cluster.
    pub fn find(configured: Option<&Path>) -> Result<Self> {
        Ok(Self::new(crate::binaries::find_bin_dir(configured)?))
    }

    fn command(&self, tool: &str, server: &PgServer) -> Command {
        let mut cmd = Command::new(self.bin_dir.join(tool));
        let cfg = &server.admin;
        if let Some(host) = cfg.get_hosts().first() {
            match host {
                tokio_postgres::config::Host::Tcp(h) => cmd.env("PGHOST", h),
                tokio_postgres::config::Host::Unix(p) => cmd.env("PGHOST", p),
            };
        }
        if let Some(port) = cfg.get_ports().first() {
            cmd.env("PGPORT", port.to_string());
        }
        if let Some(user) = cfg.get_user() {
            cmd.env("PGUSER", user);
        }
        if let Some(pw) = cfg.get_password() {
            cmd.env("PGPASSWORD", String::from_utf8_lossy(pw).to_string());
        }
        // The same sslmode and CA file as pgfleet's own sessions: libpq verifies the same way.
        for (k, v) in server.tls.libpq_env() {
            cmd.env(k, v);
        }
        cmd.env("PGAPPNAME", "pgfleet")
        // The tenant database's own limits (crate::tenant) are for the tenant: a dump or a
        // restore (index builds spill to temporary files) of a big database must not hit them.
        .env(
            "PGOPTIONS",
            "-c temp_file_limit=-1 -c statement_timeout=0 -c idle_in_transaction_session_timeout=0",
        )
        .env("PGCONNECT_TIMEOUT", "10")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
        cmd
    }

    async fn run(&self, what: &str, mut cmd: Command) -> Result<String> {
        let out = cmd
            .output()
            .await
            .map_err(|e| DataplaneError::io(self.bin_dir.join(what), e))?;
        if !out.status.success() {
            return Err(DataplaneError::Setup(format!(
                "{what} failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        Ok(String::from_utf8_lossy(&out.stdout).to_string())
    }

    /// `pg_dump -Fc` of one database into `out`.
    pub async fn dump(&self, server: &PgServer, dbname: &str, out: &Path) -> Result<()> {
        self.dump_with(server, dbname, out, DumpCompression::Default)
            .await
    }

    /// [`PgTools::dump`] with a choice of compression.
    pub async fn dump_with(
        &self,
        server: &PgServer,
        dbname: &str,
        out: &Path,
        compression: DumpCompression,
    ) -> Result<()> {
        let mut cmd = self.command("pg_dump", server);
        if compression == DumpCompression::None {
            cmd.arg("--compress=0");
        }
        cmd.arg("--format=custom")
            .arg("--no-owner")
            .arg("--no-privileges")
            .arg("--file")
            .arg(out)
            .arg("--dbname")
            .arg(dbname);
        self.run("pg_dump", cmd).await.map(|_| ())
    }

    /// `pg_restore --list`: the file is a readable archive.
    pub async fn verify(&self, file: &Path) -> Result<()> {
        let mut cmd = Command::new(self.bin_dir.join("pg_restore"));
        cmd.arg("--list")
            .arg(file)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let listing = self.run("pg_restore --list", cmd).await?;
        if !listing.contains("Archive created at") {
            return Err(DataplaneError::Setup(
                "pg_restore --list: not a pg_dump archive".to_string(),
            ));
        }
        Ok(())
    }

    /// Restores `file` into `dbname`, every object owned by `owner_role`. The objects of the
    /// storage quota's read-only mode, which a dump taken in that mode holds, are left out
    /// (they are pgfleet's, and a non-superuser cannot create them).
    pub async fn restore(
        &self,
        server: &PgServer,
        dbname: &str,
        owner_role: &str,
        file: &Path,
    ) -> Result<()> {
        let mut list = Command::new(self.bin_dir.join("pg_restore"));
        list.arg("--list")
            .arg(file)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let listing = self.run("pg_restore --list", list).await?;
        let kept: String = listing
            .lines()
            .filter(|l| !crate::quota::restore_skips(l))
            .map(|l| format!("{l}\n"))
            .collect();
        // Object names only; in the temporary directory, removed after use.
        let list_file = std::env::temp_dir().join(format!(
            "pgfleet-restore-{}-{}.list",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or_default()
        ));
        write_private(&list_file, kept.as_bytes())?;
        let mut cmd = self.command("pg_restore", server);
        cmd.arg(format!("--use-list={}", list_file.display()))
            .arg("--no-owner")
            .arg("--no-privileges")
            .arg(format!("--role={owner_role}"))
            .arg("--exit-on-error")
            .arg("--single-transaction")
            .arg("--dbname")
            .arg(dbname)
            .arg(file);
        let restored = self.run("pg_restore", cmd).await.map(|_| ());
        let _ = std::fs::remove_file(&list_file);
        restored
    }
}

/// Writes a file only its owner can read.
fn write_private(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| DataplaneError::io(path, e))?;
    f.write_all(bytes).map_err(|e| DataplaneError::io(path, e))
}
