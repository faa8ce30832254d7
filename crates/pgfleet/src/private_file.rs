//! Private files and directories. Files that hold secrets (first-start credentials, the
//! pooler's TLS key, the OAuth key-encryption secret, the CLI's tokens) are written whole or
//! not at all (a temporary file, fsync, rename) and readable by their owner only (mode 0600)
//! from the first byte. Directories pgfleet makes are 0700, and [`tighten_tree`] is the
//! start-up migration that takes group and world bits off what an older pgfleet left.

use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::Path;

/// Writes `contents` to `path` atomically with mode 0600. The temporary file is named after
/// the process, so two processes writing the same file never share one.
pub fn write(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(format!(".tmp-{}", std::process::id()));
    let tmp = std::path::PathBuf::from(tmp);
    let _ = std::fs::remove_file(&tmp);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)?;
    f.write_all(contents)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)
}

/// Creates `dir` (and missing parents) readable by its owner only (mode 0700), and makes an
/// existing one so.
pub fn create_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::{DirBuilderExt as _, PermissionsExt as _};
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
}

/// Takes the group and world bits off everything below `dir` that pgfleet wrote (a data
/// directory of an older pgfleet had world-readable logs, certificates and backups).
/// `dir` itself is left as it is (the caller decides whether another OS user must pass
/// through it), and so are the trees named in `skip` (PGDATA and the socket directory,
/// whose modes PostgreSQL and the cluster set). Returns the paths changed.
pub fn tighten_tree(dir: &Path, skip: &[&Path]) -> std::io::Result<Vec<std::path::PathBuf>> {
    let mut changed = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let entries = match std::fs::read_dir(&d) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        for entry in entries {
            let entry = entry?;
            let path = entry.path();
            if skip.iter().any(|s| *s == path) {
                continue;
            }
            // Not followed: a link's target is not ours to change.
            let kind = entry.file_type()?;
            if kind.is_symlink() {
                continue;
            }
            if tighten_one(&path)? {
                changed.push(path.clone());
            }
            if kind.is_dir() {
                stack.push(path);
            }
        }
    }
    Ok(changed)
}

/// Takes the group and world bits off one path; true when it had any.
pub fn tighten_one(path: &Path) -> std::io::Result<bool> {
    use std::os::unix::fs::PermissionsExt as _;
    let mode = std::fs::symlink_metadata(path)?.permissions().mode() & 0o7777;
    if mode & 0o077 == 0 {
        return Ok(false);
    }
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode & 0o700))?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt as _;

    use super::*;

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).unwrap().permissions().mode() & 0o7777
    }

    #[test]
    fn tighten_tree_takes_group_and_world_bits_off_all_but_the_skipped() {
        let root = tempfile::tempdir().unwrap();
        let r = root.path();
        std::fs::create_dir_all(r.join("backups/db1")).unwrap();
        std::fs::create_dir_all(r.join("postgres/base")).unwrap();
        std::fs::write(r.join("backups/db1/b.dump"), "x").unwrap();
        std::fs::write(r.join("postgres.log"), "x").unwrap();
        std::fs::write(r.join("postgres/base/f"), "x").unwrap();
        for p in ["backups", "backups/db1", "postgres", "postgres/base"] {
            std::fs::set_permissions(r.join(p), std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        for p in ["backups/db1/b.dump", "postgres.log", "postgres/base/f"] {
            std::fs::set_permissions(r.join(p), std::fs::Permissions::from_mode(0o644)).unwrap();
        }
        let changed = tighten_tree(r, &[&r.join("postgres")]).unwrap();
        assert_eq!(changed.len(), 4, "{changed:?}");
        assert_eq!(mode(&r.join("backups")), 0o700);
        assert_eq!(mode(&r.join("backups/db1")), 0o700);
        assert_eq!(mode(&r.join("backups/db1/b.dump")), 0o600);
        assert_eq!(mode(&r.join("postgres.log")), 0o600);
        assert_eq!(
            mode(&r.join("postgres/base/f")),
            0o644,
            "skipped tree untouched"
        );
        assert!(tighten_tree(r, &[&r.join("postgres")]).unwrap().is_empty());
        let d = r.join("new/deeper");
        create_dir(&d).unwrap();
        assert_eq!(mode(&d), 0o700);
    }
}
