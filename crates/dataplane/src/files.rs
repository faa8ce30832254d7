//! Small file helpers shared by the embedded cluster and the WAL archive: private
//! directories and files (owned by the PostgreSQL OS user where it must read them),
//! `postgresql.conf` quoting, and the tail of a log for error messages.

use std::path::Path;

use crate::osuser::RunAs;
use crate::{DataplaneError, Result};

pub(crate) fn create_dir(path: &Path, mode: u32) -> Result<()> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(mode)
        .create(path)
        .map_err(|e| DataplaneError::io(path, e))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .map_err(|e| DataplaneError::io(path, e))
}

/// Writes a new file readable by its owner only from the first byte (a leftover is replaced).
pub(crate) fn write_private(path: &Path, body: &[u8]) -> Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let _ = std::fs::remove_file(path);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| DataplaneError::io(path, e))?;
    f.write_all(body).map_err(|e| DataplaneError::io(path, e))
}

pub(crate) fn write_owned(run_as: &RunAs, path: &Path, body: &[u8], mode: u32) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let tmp = path.with_extension("pgfleet-tmp");
    write_private(&tmp, body)?;
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(mode))
        .map_err(|e| DataplaneError::io(&tmp, e))?;
    run_as.own(&tmp)?;
    std::fs::rename(&tmp, path).map_err(|e| DataplaneError::io(path, e))
}

pub(crate) fn escape_conf(s: &str) -> String {
    s.replace('\'', "''")
}

pub(crate) fn tail(path: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}
