//! Users and workspace members, as the web console manages them.
//!
//! Who may do what is decided once, by [`Members::rights`], and handed out as capabilities
//! ([`MemberRights`]); the functions that change something take the capability, so a caller
//! that did not ask for it does not compile:
//! * a server administrator (`users.is_admin`; the bootstrap admin is one) creates users,
//!   with an initial password or a generated one that is returned once, and makes users
//!   server administrators or not ([`crate::ServerAdmin`]);
//! * a server administrator, or an admin of the workspace (`memberships.role = 'admin'`),
//!   adds existing users to the workspace (by e-mail), changes their role and removes
//!   members ([`MemberAdmin`]);
//! * every member sees the workspace's members (as [`Member`] views).
//!
//! A workspace always keeps at least one admin. Passwords are hashed exactly as sign-in
//! verifies them (argon2id, through the bounded [`crate::hash_gate`]). Removing a member ends their
//! access through the console at once (each request checks the membership).

use chrono::{DateTime, Utc};
use pgfleet_api_types::List;
use pgfleet_storage::workspaces::MemberRow;
use pgfleet_storage::{users, workspaces, StorageError, UserRow};

use crate::{DomainError, PageRequest, Result, ServerAdmin, WorkspaceWide};

/// Shortest initial password an administrator may choose.
pub const MIN_PASSWORD_CHARS: usize = 12;
/// Longest password accepted (argon2 hashes anything, but a limit bounds the work).
const MAX_PASSWORD_CHARS: usize = 1024;

/// A user as the console shows one just created or added.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: String,
    pub email: String,
}

impl From<UserRow> for User {
    fn from(u: UserRow) -> Self {
        Self {
            id: u.id,
            email: u.email,
        }
    }
}

/// A user just created, with the generated password when none was chosen (shown once).
pub struct CreatedUser {
    pub user: User,
    pub generated_password: Option<String>,
}

impl std::fmt::Debug for CreatedUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CreatedUser")
            .field("user", &self.user)
            .finish_non_exhaustive()
    }
}

/// A member's role in a workspace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Member,
    /// Changes the workspace's members.
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Member => "member",
            Self::Admin => "admin",
        }
    }

    /// A stored role (anything else is an error, never a guess).
    fn stored(s: &str) -> Result<Self> {
        match s {
            "member" => Ok(Self::Member),
            "admin" => Ok(Self::Admin),
            other => Err(DomainError::internal(format!(
                "unknown stored member role {other:?}"
            ))),
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A member of a workspace as the console lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub user_id: String,
    pub email: String,
    pub role: Role,
    /// When they joined the workspace.
    pub since: DateTime<Utc>,
    /// Whether the user administers the whole server.
    pub is_server_admin: bool,
}

impl TryFrom<MemberRow> for Member {
    type Error = DomainError;

    fn try_from(m: MemberRow) -> Result<Self> {
        Ok(Self {
            role: Role::stored(&m.role)?,
            user_id: m.user_id,
            email: m.email,
            since: m.created_at,
            is_server_admin: m.is_admin,
        })
    }
}

/// The right to change the members of one workspace (add, change a role, remove): an admin
/// of the workspace or a server administrator holds it. Its fields are private and only
/// [`Members::rights`] makes one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberAdmin {
    workspace_id: String,
    actor_id: String,
}

impl MemberAdmin {
    /// The workspace whose members it may change.
    pub fn workspace_id(&self) -> &str {
        &self.workspace_id
    }

    /// Who holds it.
    pub fn actor_id(&self) -> &str {
        &self.actor_id
    }
}

/// What a user may do with the members of a workspace: the capabilities they hold, each
/// asked for by the function that needs it (a refusal is `Forbidden` with its own words).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberRights {
    server_admin: Option<ServerAdmin>,
    manager: Option<MemberAdmin>,
}

impl MemberRights {
    /// Whether the user may create users and change who administers the server.
    pub fn can_create_users(&self) -> bool {
        self.server_admin.is_some()
    }

    /// Whether the user may change this workspace's members.
    pub fn can_manage_members(&self) -> bool {
        self.manager.is_some()
    }

    /// The right to create users (server administrators only).
    pub fn create_users(&self) -> Result<&ServerAdmin> {
        self.server_admin.as_ref().ok_or_else(|| {
            DomainError::forbidden(
                "Only a server administrator can create users",
                Some("Ask an administrator to create the account.".to_string()),
            )
        })
    }

    /// The right to make users server administrators or not.
    pub fn administer_server(&self) -> Result<&ServerAdmin> {
        self.server_admin.as_ref().ok_or_else(|| {
            DomainError::forbidden(
                "Only a server administrator can change who administers the server",
                Some("Ask a server administrator.".to_string()),
            )
        })
    }

    /// The right to change this workspace's members.
    pub fn manage_members(&self) -> Result<&MemberAdmin> {
        self.manager.as_ref().ok_or_else(|| {
            DomainError::forbidden(
                "Only an admin of this workspace or a server administrator can change its members",
                Some("Ask an admin of the workspace to do it.".to_string()),
            )
        })
    }
}

fn not_member(workspace_id: &str) -> DomainError {
    DomainError::not_found("Workspace", workspace_id)
}

fn normalise_email(email: &str) -> Result<String> {
    let email = email.trim();
    let ok = email.len() <= 320
        && crate::names::is_visible(email)
        && !email.chars().any(char::is_whitespace)
        && email
            .split_once('@')
            .is_some_and(|(local, domain)| !local.is_empty() && !domain.is_empty());
    if ok {
        Ok(email.to_string())
    } else {
        Err(DomainError::bad_request_hint(
            format!("{email:?} is not an e-mail address"),
            "Enter an address like someone@example.com.",
        ))
    }
}

/// Users and the members of workspaces. Obtained from [`super::Services::members`].
#[derive(Debug, Clone, Copy)]
pub struct Members<'a> {
    pub(super) ctx: &'a std::sync::Arc<super::Ctx>,
}

impl Members<'_> {
    /// What the caller may do with the members of its workspace, fresh from the store (an
    /// admin flag or a role may have changed): `Unauthenticated` when the user is gone,
    /// `NotFound` when not a member and not a server administrator.
    pub async fn rights(&self, access: &WorkspaceWide) -> Result<MemberRights> {
        let unknown = || DomainError::Unauthenticated(crate::AuthFailure::Invalid);
        let user_id = access.principal().user_id().ok_or_else(unknown)?;
        let workspace_id = access.workspace_id();
        let pool = self.ctx.store().pool();
        let actor = users::get(pool, user_id).await?.ok_or_else(unknown)?;
        let role = workspaces::member_role(pool, workspace_id, user_id).await?;
        let server_admin = crate::access::admin_if(&actor);
        if role.is_none() && server_admin.is_none() {
            return Err(not_member(workspace_id));
        }
        // A read-only credential manages nothing, whoever stands behind it.
        let manages = (server_admin.is_some() || role.as_deref() == Some(Role::Admin.as_str()))
            && !access.principal().scope().read_only;
        Ok(MemberRights {
            server_admin,
            manager: manages.then(|| MemberAdmin {
                workspace_id: workspace_id.to_string(),
                actor_id: user_id.to_string(),
            }),
        })
    }

    /// The members of the caller's workspace.
    pub async fn list(&self, access: &WorkspaceWide, page: PageRequest) -> Result<List<Member>> {
        self.rights(access).await?;
        let rows = workspaces::list_members(
            self.ctx.store().pool(),
            access.workspace_id(),
            page.after,
            page.fetch(),
        )
        .await?;
        let rows = rows
            .into_iter()
            .map(|m| Ok((m.seq, Member::try_from(m)?)))
            .collect::<Result<Vec<_>>>()?;
        Ok(page.finish(rows, |(seq, _)| *seq, |(_, m)| m))
    }

    /// Creates a user (`admin`: server administrators only). Without `password`, one is
    /// generated and returned once. With `add_to`, the user also becomes a member of that
    /// capability's workspace, with the role named.
    pub async fn create_user(
        &self,
        admin: &ServerAdmin,
        email: &str,
        password: Option<&str>,
        add_to: Option<(&MemberAdmin, &str)>,
    ) -> Result<CreatedUser> {
        let email = normalise_email(email)?;
        let add_to = match add_to {
            Some((to, role)) => Some((to.workspace_id(), valid_role(role)?)),
            None => None,
        };
        let (password, generated) = match password.filter(|p| !p.is_empty()) {
            Some(p) => {
                let n = p.chars().count();
                if !(MIN_PASSWORD_CHARS..=MAX_PASSWORD_CHARS).contains(&n) {
                    return Err(DomainError::bad_request_hint(
                        format!(
                            "The password must be {MIN_PASSWORD_CHARS} to {MAX_PASSWORD_CHARS} characters long"
                        ),
                        "Choose a longer password, or leave it empty to have one generated.",
                    ));
                }
                (p.to_string(), false)
            }
            None => (self.ctx.rng().with(pgfleet_auth::random_password), true),
        };
        if users::get_by_email(self.ctx.store().pool(), &email)
            .await?
            .is_some()
        {
            return Err(DomainError::conflict(
                format!("A user with the e-mail {email} already exists"),
                Some("Add the existing user to the workspace instead.".to_string()),
            ));
        }
        // Bounded like sign-in: a busy hasher answers 429 (see `crate::hash_gate`).
        let hash = self
            .ctx
            .hash_gate()
            .hash_password(&password, self.ctx.rng())
            .await?;
        let now = self.ctx.clock().now();
        let id = crate::ids::new_id(crate::ids::USER, self.ctx.rng());
        let mut tx = self.ctx.store().begin().await?;
        let user = users::insert(&mut *tx, &id, &email, None, &hash, now).await?;
        if let Some((ws, role)) = add_to {
            workspaces::add_member(&mut *tx, ws, &id, role.as_str(), now).await?;
        }
        tx.commit().await.map_err(StorageError::from)?;
        tracing::info!(user = %id, by = %admin.user_id(), "user created");
        Ok(CreatedUser {
            user: user.into(),
            generated_password: generated.then_some(password),
        })
    }

    /// Adds an existing user (by e-mail) to the capability's workspace, or changes their
    /// role there.
    pub async fn add(&self, admin: &MemberAdmin, email: &str, role: &str) -> Result<User> {
        let workspace_id = admin.workspace_id();
        let role = valid_role(role)?;
        let email = normalise_email(email)?;
        let user = users::get_by_email(self.ctx.store().pool(), &email)
            .await?
            .ok_or_else(|| {
                DomainError::unprocessable(
                    format!("There is no user with the e-mail {email}"),
                    Some("A server administrator can create the user first.".to_string()),
                )
            })?;
        let mut tx = self.ctx.store().begin().await?;
        if role != Role::Admin
            && workspaces::member_role(&mut *tx, workspace_id, &user.id)
                .await?
                .as_deref()
                == Some(Role::Admin.as_str())
            && workspaces::count_admins_for_update(&mut tx, workspace_id).await? <= 1
        {
            return Err(last_admin());
        }
        workspaces::add_member(
            &mut *tx,
            workspace_id,
            &user.id,
            role.as_str(),
            self.ctx.clock().now(),
        )
        .await?;
        tx.commit().await.map_err(StorageError::from)?;
        tracing::info!(user = %user.id, workspace = %workspace_id, role = role.as_str(), by = %admin.actor_id(), "member added");
        Ok(user.into())
    }

    /// Makes a user a server administrator or not (`admin`: server administrators only;
    /// never the last one).
    pub async fn set_server_admin(
        &self,
        admin: &ServerAdmin,
        user_id: &str,
        make_admin: bool,
    ) -> Result<()> {
        let mut tx = self.ctx.store().begin().await?;
        let user = users::get(&mut *tx, user_id)
            .await?
            .ok_or_else(|| DomainError::not_found("User", user_id))?;
        if user.is_admin && !make_admin && users::count_admins_for_update(&mut tx).await? <= 1 {
            return Err(DomainError::conflict(
                "The server must keep at least one administrator",
                Some("Make another user a server administrator first.".to_string()),
            ));
        }
        users::set_admin(&mut *tx, user_id, make_admin).await?;
        tx.commit().await.map_err(StorageError::from)?;
        tracing::info!(user = %user_id, admin = make_admin, by = %admin.user_id(), "server administrator changed");
        Ok(())
    }

    /// Removes a member from the capability's workspace (never its last admin), revoking
    /// the OAuth access they granted apps there: their tokens stop working at once.
    pub async fn remove(&self, admin: &MemberAdmin, user_id: &str) -> Result<()> {
        let workspace_id = admin.workspace_id();
        let mut tx = self.ctx.store().begin().await?;
        let role = workspaces::member_role(&mut *tx, workspace_id, user_id)
            .await?
            .ok_or_else(|| DomainError::not_found("Member", user_id))?;
        if role == Role::Admin.as_str()
            && workspaces::count_admins_for_update(&mut tx, workspace_id).await? <= 1
        {
            return Err(last_admin());
        }
        workspaces::remove_member(&mut *tx, workspace_id, user_id).await?;
        let revoked = pgfleet_storage::oauth::revoke_user_grants(
            &mut *tx,
            workspace_id,
            user_id,
            self.ctx.clock().now(),
        )
        .await?;
        tx.commit().await.map_err(StorageError::from)?;
        self.ctx.auth_cache().clear();
        tracing::info!(user = %user_id, workspace = %workspace_id, by = %admin.actor_id(), grants_revoked = revoked.len(), "member removed");
        Ok(())
    }
}

fn valid_role(role: &str) -> Result<Role> {
    match role {
        "" | "member" => Ok(Role::Member),
        "admin" => Ok(Role::Admin),
        other => Err(DomainError::bad_request_hint(
            format!("Unknown role {other:?}"),
            "Choose member or admin.",
        )),
    }
}

fn last_admin() -> DomainError {
    DomainError::conflict(
        "A workspace must keep at least one admin",
        Some("Make another member an admin first.".to_string()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_and_roles_are_checked() {
        assert_eq!(
            normalise_email(" a@b.example ").ok().as_deref(),
            Some("a@b.example")
        );
        for bad in ["", "ab", "@b", "a@", "a b@c", "a@b\nc"] {
            assert!(normalise_email(bad).is_err(), "{bad:?}");
        }
        assert_eq!(valid_role("").ok(), Some(Role::Member));
        assert_eq!(valid_role("admin").ok(), Some(Role::Admin));
        assert!(valid_role("owner").is_err());
    }

    #[test]
    fn rights_hand_out_only_the_capabilities_held_and_refuse_the_rest_with_403() {
        let member = MemberRights {
            server_admin: None,
            manager: None,
        };
        assert!(!member.can_create_users() && !member.can_manage_members());
        for refused in [
            member.create_users().err(),
            member.administer_server().err(),
        ] {
            assert!(matches!(refused, Some(DomainError::Forbidden { .. })));
        }
        assert!(matches!(
            member.manage_members(),
            Err(DomainError::Forbidden { .. })
        ));

        let ws_admin = MemberRights {
            server_admin: None,
            manager: Some(MemberAdmin {
                workspace_id: "wksp_1".to_string(),
                actor_id: "user_1".to_string(),
            }),
        };
        assert!(ws_admin.can_manage_members() && !ws_admin.can_create_users());
        assert_eq!(
            ws_admin
                .manage_members()
                .ok()
                .map(MemberAdmin::workspace_id),
            Some("wksp_1")
        );
        assert!(ws_admin.create_users().is_err());
    }
}
