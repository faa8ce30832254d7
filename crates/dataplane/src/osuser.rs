//! Which OS user the PostgreSQL processes run as. `initdb` and `postgres` refuse to run as
//! root, so when pgfleet runs as root they run as the `postgres` user; otherwise as ourselves.

use std::os::unix::fs::MetadataExt;
use std::path::Path;

use crate::{DataplaneError, Result};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunAs {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    /// True when we must switch to this user (we are root).
    pub switch: bool,
}

impl RunAs {
    /// The user to run PostgreSQL as, from the current effective user.
    pub fn detect() -> Result<Self> {
        let euid = nix::unistd::geteuid();
        if euid.is_root() {
            let user = nix::unistd::User::from_name("postgres")
                .map_err(|e| DataplaneError::Setup(format!("looking up the postgres OS user: {e}")))?
                .ok_or_else(|| {
                    DataplaneError::Setup(
                        "running as root, PostgreSQL must run as the `postgres` OS user, which does not \
                         exist; install the postgresql package (it creates the user) or run pgfleet as an \
                         unprivileged user"
                            .to_string(),
                    )
                })?;
            Ok(Self {
                name: user.name,
                uid: user.uid.as_raw(),
                gid: user.gid.as_raw(),
                switch: true,
            })
        } else {
            let name = nix::unistd::User::from_uid(euid)
                .ok()
                .flatten()
                .map(|u| u.name)
                .unwrap_or_else(|| euid.to_string());
            Ok(Self {
                name,
                uid: euid.as_raw(),
                gid: nix::unistd::getegid().as_raw(),
                switch: false,
            })
        }
    }

    /// Applies the user switch to a command.
    pub fn apply(&self, cmd: &mut std::process::Command) {
        use std::os::unix::process::CommandExt;
        if self.switch {
            // std drops root's supplementary groups when uid is set as root.
            cmd.uid(self.uid).gid(self.gid);
        }
    }

    /// Gives a path we created to this user (no-op when we are that user).
    pub fn own(&self, path: &Path) -> Result<()> {
        if self.switch {
            std::os::unix::fs::chown(path, Some(self.uid), Some(self.gid))
                .map_err(|e| DataplaneError::io(path, e))?;
        }
        Ok(())
    }

    /// Lets this user pass through `dir` (ours) without reading or listing it: mode 0710 with
    /// this user's group when it is another user, else 0700. Never world bits.
    pub fn let_through(&self, dir: &Path) -> Result<()> {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = if self.switch {
            std::os::unix::fs::chown(dir, None, Some(self.gid))
                .map_err(|e| DataplaneError::io(dir, e))?;
            0o710
        } else {
            0o700
        };
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode))
            .map_err(|e| DataplaneError::io(dir, e))
    }

    /// Checks that every ancestor of `dir` lets this user through, so `postgres` can reach its
    /// data directory. root's home (0700) is the usual trap.
    pub fn check_traversable(&self, dir: &Path) -> Result<()> {
        let mut cur = dir.parent();
        while let Some(p) = cur {
            if let Ok(md) = std::fs::metadata(p) {
                let mode = md.mode();
                let ok = if md.uid() == self.uid {
                    mode & 0o100 != 0
                } else if md.gid() == self.gid {
                    mode & 0o010 != 0
                } else {
                    mode & 0o001 != 0
                };
                if !ok {
                    return Err(DataplaneError::Setup(format!(
                        "the data directory {} is not reachable by the `{}` OS user that runs PostgreSQL: \
                         {} (mode {:o}) does not let it through. Choose another --data-dir (for example \
                         /var/lib/pgfleet) or `chmod o+x {}`",
                        dir.display(),
                        self.name,
                        p.display(),
                        mode & 0o7777,
                        p.display()
                    )));
                }
            }
            cur = p.parent();
        }
        Ok(())
    }
}
