//! Access decisions as values: what a caller may do to a workspace is decided here, once,
//! and handed on as a capability ([`WorkspaceAccess`]) that nobody outside this crate can
//! build. The console gets one only through [`Access::console`], which checks the
//! membership, so a page that forgets the check does not compile; API credentials are
//! scoped to one workspace when they are authenticated ([`Access::api`]). Every service
//! that acts on a workspace takes a `&WorkspaceAccess`, not a bare [`Principal`]; the
//! admin-only ones take a [`ServerAdmin`], which the console asks for once per page
//! ([`Access::server_admin_of`]: its nav links the administrator pages only with one).
//! Finer rights inside a workspace are capabilities too, issued from a `WorkspaceAccess`:
//! changing its members takes a [`crate::services::members::MemberAdmin`] from
//! [`crate::services::Members::rights`].
//!
//! A credential's [`crate::TokenScope`] (a service token limited to one project, or to
//! reads) is enforced here too, as capabilities, so that a service cannot forget it:
//! * every service method that changes something takes a [`WriteAccess`] (or a
//!   [`WorkspaceWideWrite`]), made only by [`WorkspaceAccess::for_write`], which refuses a
//!   read-only credential with 403 `forbidden`;
//! * workspace-level things (service tokens, integrations and OAuth apps, members, creating,
//!   deleting and transferring projects) take a [`WorkspaceWide`] or [`WorkspaceWideWrite`],
//!   made only by [`WorkspaceAccess::workspace_wide`] / [`WorkspaceAccess::workspace_wide_write`],
//!   which refuse a project-scoped credential with 403 `forbidden`;
//! * the project limit of reads and writes inside the project is applied where a service
//!   loads a project, database or connection for a caller (`visible` in
//!   [`crate::services::projects`], [`crate::services::databases`],
//!   [`crate::services::connections`]) and in the lists: another project answers 404
//!   exactly like a missing one, and lists leave it out.
//!
//! The capabilities dereference to the [`WorkspaceAccess`] they were made from, so a read
//! accepts any of them.
//!
//! One capability has no principal behind it: [`Access::local_operator_with_data_dir`], for
//! the `pgfleet admin …` commands run on the server machine. They open the metadata store
//! with the configuration and data directory, so whoever runs them already has everything
//! a capability would guard; only the binary's admin path calls it (http's clippy
//! configuration disallows it there).

use std::sync::Arc;

use pgfleet_storage::{users, workspaces, UserRow};

use crate::services::Ctx;
#[cfg(test)]
use crate::CredentialKind;
use crate::{DomainError, Principal, Result};

/// Proof that `principal` may act on its workspace. Its field is private and it has no
/// public constructor: it comes from [`Access`] only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkspaceAccess {
    principal: Principal,
}

impl WorkspaceAccess {
    /// The caller, to hand to the services.
    pub fn principal(&self) -> &Principal {
        &self.principal
    }

    /// The workspace the caller may act on.
    pub fn workspace_id(&self) -> &str {
        &self.principal.workspace_id
    }

    /// The one project the caller is limited to, if any.
    pub fn project_scope(&self) -> Option<&str> {
        self.principal.scope.project_id.as_deref()
    }

    /// The right to change things: refused (403 `forbidden`) to a read-only credential.
    pub fn for_write(&self) -> Result<WriteAccess> {
        self.refuse_read_only()?;
        Ok(WriteAccess {
            access: self.clone(),
        })
    }

    /// The right to see workspace-level things: refused (403 `forbidden`) to a credential
    /// limited to one project.
    pub fn workspace_wide(&self) -> Result<WorkspaceWide> {
        self.refuse_project_scope()?;
        Ok(WorkspaceWide {
            access: self.clone(),
        })
    }

    /// The right to change workspace-level things: refused (403 `forbidden`) to a
    /// read-only credential and to one limited to a project.
    pub fn workspace_wide_write(&self) -> Result<WorkspaceWideWrite> {
        self.refuse_read_only()?;
        self.refuse_project_scope()?;
        Ok(WorkspaceWideWrite {
            access: self.clone(),
        })
    }

    fn refuse_read_only(&self) -> Result<()> {
        if self.principal.scope.read_only {
            return Err(read_only_refused());
        }
        Ok(())
    }

    fn refuse_project_scope(&self) -> Result<()> {
        if let Some(project) = &self.principal.scope.project_id {
            return Err(project_scope_refused(project));
        }
        Ok(())
    }
}

/// What a read-only credential is answered on a write (403 `forbidden`).
pub fn read_only_refused() -> DomainError {
    DomainError::forbidden(
        "This token is read-only: it can look at things but not create, change or delete anything",
        Some("Use a service token created without readOnly for this.".to_string()),
    )
}

/// What a credential limited to `project_id` is answered on a workspace-level action (403
/// `forbidden`).
pub fn project_scope_refused(project_id: &str) -> DomainError {
    DomainError::forbidden(
        format!(
            "This token is limited to project {project_id}: it cannot manage the workspace (service tokens, integrations, members, or creating, deleting and transferring projects)"
        ),
        Some("Use a service token of the whole workspace for this.".to_string()),
    )
}

macro_rules! capability {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub struct $name {
            access: WorkspaceAccess,
        }

        impl std::ops::Deref for $name {
            type Target = WorkspaceAccess;
            fn deref(&self) -> &WorkspaceAccess {
                &self.access
            }
        }
    };
}

capability!(
    /// Proof that the caller may change things in its workspace (its credential is not
    /// read-only). Made only by [`WorkspaceAccess::for_write`]; the project limit still
    /// applies to what it reaches.
    WriteAccess
);
capability!(
    /// Proof that the caller reaches its whole workspace (it is not limited to one
    /// project). Made only by [`WorkspaceAccess::workspace_wide`].
    WorkspaceWide
);
capability!(
    /// Proof that the caller may change workspace-level things: neither read-only nor
    /// limited to a project. Made only by [`WorkspaceAccess::workspace_wide_write`].
    WorkspaceWideWrite
);

impl WorkspaceWideWrite {
    /// The reading half of this capability.
    pub fn wide(&self) -> WorkspaceWide {
        WorkspaceWide {
            access: self.access.clone(),
        }
    }
}

/// Proof that a user is a server administrator (`users.is_admin`, read fresh when it was
/// issued). Admin-only services require one; it comes from [`Access::server_admin_of`] (or
/// [`crate::services::members::MemberRights`], which holds one) only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerAdmin {
    user_id: String,
}

impl ServerAdmin {
    /// The administrator.
    pub fn user_id(&self) -> &str {
        &self.user_id
    }
}

/// The access decisions. Obtained from [`crate::Services::access`].
#[derive(Debug, Clone, Copy)]
pub struct Access<'a> {
    pub(crate) ctx: &'a Arc<Ctx>,
}

impl Access<'_> {
    /// An authenticated API credential: already scoped to one workspace by its
    /// authentication.
    /// Its [`crate::TokenScope`] travels with it and is enforced by the capabilities
    /// issued from it.
    pub fn api(&self, principal: Principal) -> WorkspaceAccess {
        WorkspaceAccess { principal }
    }

    /// A signed-in console user on `workspace_id`: `None` when the user is not a member (or
    /// the workspace does not exist).
    pub async fn console(
        &self,
        user_id: &str,
        workspace_id: &str,
    ) -> Result<Option<WorkspaceAccess>> {
        let member = workspaces::is_member(self.ctx.store().pool(), workspace_id, user_id).await?;
        Ok(member.then(|| WorkspaceAccess {
            principal: Principal::session(user_id, workspace_id),
        }))
    }

    /// The local operator: whoever runs `pgfleet admin …` on the server machine, acting on
    /// `workspace_id` with no user behind it. Safe because that command does not go through
    /// any credential: it connects to the metadata store with the server's configuration
    /// and data directory (the embedded cluster's socket and address, the OAuth key
    /// secret), so its caller can already read and change every row a capability guards.
    /// Only the binary's admin commands call this; the http crate is not allowed to (its
    /// `clippy.toml` disallows the method), and its callers get theirs from [`Self::api`]
    /// and [`Self::console`].
    pub fn local_operator_with_data_dir(&self, workspace_id: &str) -> WorkspaceAccess {
        WorkspaceAccess {
            principal: Principal::local_operator(workspace_id),
        }
    }

    /// The caller as a server administrator, when it is one (`users.is_admin`, read
    /// fresh): the console shows its administrator pages only with one, and those pages
    /// require it. `None` for anyone else, and for API credentials.
    pub async fn server_admin_of(&self, who: &WorkspaceAccess) -> Result<Option<ServerAdmin>> {
        match who.principal.user_id.as_deref() {
            Some(user_id) => admin_of(self.ctx, user_id).await,
            None => Ok(None),
        }
    }
}

/// `user_id` as a server administrator, or `None` (also for a user that is gone).
async fn admin_of(ctx: &Ctx, user_id: &str) -> Result<Option<ServerAdmin>> {
    Ok(users::get(ctx.store().pool(), user_id)
        .await?
        .as_ref()
        .and_then(admin_if))
}

/// A user read fresh from the store as a server administrator, or `None`: the one place a
/// [`ServerAdmin`] is made.
pub(crate) fn admin_if(user: &UserRow) -> Option<ServerAdmin> {
    user.is_admin.then(|| ServerAdmin {
        user_id: user.id.clone(),
    })
}

/// What a server-administrator page answers anyone else.
pub fn not_server_admin() -> DomainError {
    DomainError::forbidden(
        "Only a server administrator can see the replicas of this server",
        Some("Ask a server administrator.".to_string()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_access_carries_its_principal_and_workspace() {
        let a = WorkspaceAccess {
            principal: Principal::session("user_1", "wksp_1"),
        };
        assert_eq!(a.workspace_id(), "wksp_1");
        assert_eq!(a.principal().user_id.as_deref(), Some("user_1"));
    }

    fn scoped(project_id: Option<&str>, read_only: bool) -> WorkspaceAccess {
        let mut principal = Principal::session("user_1", "wksp_1");
        principal.scope = crate::TokenScope {
            project_id: project_id.map(str::to_string),
            read_only,
        };
        WorkspaceAccess { principal }
    }

    #[test]
    fn read_only_refuses_every_write_capability() {
        let a = scoped(None, true);
        assert!(matches!(a.for_write(), Err(DomainError::Forbidden { .. })));
        assert!(matches!(
            a.workspace_wide_write(),
            Err(DomainError::Forbidden { .. })
        ));
        assert!(a.workspace_wide().is_ok());
    }

    #[test]
    fn a_project_scope_refuses_workspace_capabilities() {
        let a = scoped(Some("proj_1"), false);
        assert!(a.for_write().is_ok());
        assert_eq!(a.project_scope(), Some("proj_1"));
        assert!(matches!(
            a.workspace_wide(),
            Err(DomainError::Forbidden { .. })
        ));
        assert!(matches!(
            a.workspace_wide_write(),
            Err(DomainError::Forbidden { .. })
        ));
        let full = scoped(None, false);
        assert!(full.workspace_wide_write().is_ok());
        assert_eq!(
            full.for_write()
                .map(|w| w.workspace_id().to_string())
                .ok()
                .as_deref(),
            Some("wksp_1")
        );
    }

    #[test]
    fn the_local_operator_has_no_user() {
        let p = Principal::local_operator("wksp_1");
        assert_eq!(p.workspace_id(), "wksp_1");
        assert_eq!(p.user_id(), None);
        assert_eq!(p.credential(), &CredentialKind::LocalOperator);
    }
}
