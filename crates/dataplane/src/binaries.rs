//! Finding the PostgreSQL server binaries: `postgres.bin_dir` from config, else
//! `pg_config --bindir`, else the newest `/usr/lib/postgresql/*/bin`.

use std::path::{Path, PathBuf};

use crate::{DataplaneError, Result};

fn has_server(dir: &Path) -> bool {
    dir.join("postgres").is_file() && dir.join("initdb").is_file()
}

/// Where the server binaries are, or an error naming the package to install.
pub fn find_bin_dir(configured: Option<&Path>) -> Result<PathBuf> {
    let mut looked = Vec::new();
    if let Some(dir) = configured {
        if has_server(dir) {
            return Ok(dir.to_path_buf());
        }
        // An explicit setting that is wrong is an error, not a hint to look elsewhere.
        return Err(DataplaneError::BinariesNotFound {
            looked: format!("postgres.bin_dir = {}", dir.display()),
        });
    }
    if let Ok(out) = std::process::Command::new("pg_config")
        .arg("--bindir")
        .output()
    {
        if out.status.success() {
            let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
            if has_server(&dir) {
                return Ok(dir);
            }
            looked.push(format!("pg_config --bindir ({})", dir.display()));
        }
    } else {
        looked.push("pg_config (not on PATH)".to_string());
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .filter_map(|e| {
                    let v: u32 = e.file_name().to_string_lossy().parse().ok()?;
                    Some((v, e.path().join("bin")))
                })
                .collect()
        })
        .unwrap_or_default();
    versions.sort();
    looked.push("/usr/lib/postgresql/*/bin".to_string());
    versions
        .into_iter()
        .rev()
        .map(|(_, p)| p)
        .find(|p| has_server(p))
        .ok_or(DataplaneError::BinariesNotFound {
            looked: looked.join(", "),
        })
}
