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

    #[test]
    fn the_local_operator_has_no_user() {
        let p = Principal::local_operator("wksp_1");
        assert_eq!(p.workspace_id(), "wksp_1");
        assert_eq!(p.user_id(), None);
        assert_eq!(p.credential(), &CredentialKind::LocalOperator);
    }
}
