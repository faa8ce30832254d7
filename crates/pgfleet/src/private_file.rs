//! Files that hold secrets (first-start credentials, the pooler's TLS key, the OAuth
//! key-encryption secret, the CLI's tokens): written whole or not at all (a temporary file,
//! fsync, rename) and readable by their owner only (mode 0600) from the first byte.

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
