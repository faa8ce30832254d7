//! Users and workspace members, as the web console manages them.
//!
//! Who may do what:
//! * a server administrator (`users.is_admin`; the bootstrap admin is one) creates users,
//!   with an initial password or a generated one that is returned once;
//! * a server administrator, or an admin of the workspace (`memberships.role = 'admin'`),
//!   adds existing users to the workspace (by e-mail) and removes members;
//! * every member sees the workspace's members.
//!
//! A workspace always keeps at least one admin. Passwords are hashed exactly as sign-in
//! verifies them (argon2id, through the bounded [`crate::hash_gate`]). Removing a member ends their
//! access through the console at once (each request checks the membership).

use chrono::{DateTime, Utc};
use pgfleet_api_types::List;
use pgfleet_storage::workspaces::MemberRow;
use pgfleet_storage::{users, workspaces, StorageError, UserRow};

use crate::{DomainError, PageRequest, Result};

/// Shortest initial password an administrator may choose.
pub const MIN_PASSWORD_CHARS: usize = 12;
/// Longest password accepted (argon2 hashes anything, but a limit bounds the work).
const MAX_PASSWORD_CHARS: usize = 1024;

/// A user just created, with the generated password when none was chosen (shown once).
pub struct CreatedUser {
    pub user: UserRow,
    pub generated_password: Option<String>,
}

impl std::fmt::Debug for CreatedUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CreatedUser")
            .field("user", &self.user)
            .finish_non_exhaustive()
    }
}

/// A member of a workspace as the console lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub user_id: String,
    pub email: String,
    /// `member` or `admin` of the workspace.
    pub role: String,
    /// When they joined the workspace.
    pub since: DateTime<Utc>,
    /// Whether the user administers the whole server.
    pub is_server_admin: bool,
}

impl From<MemberRow> for Member {
    fn from(m: MemberRow) -> Self {
        Self {
            user_id: m.user_id,
            email: m.email,
            role: m.role,
            since: m.created_at,
            is_server_admin: m.is_admin,
        }
    }
}

/// What a user may do with the members of a workspace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemberRights {
    /// Create users (server administrators only).
    pub create_users: bool,
    /// Add and remove members of this workspace.
    pub manage_members: bool,
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
    /// The acting user, fresh from the store (its admin flag may have changed).
    async fn actor(&self, user_id: &str) -> Result<UserRow> {
        users::get(self.ctx.store().pool(), user_id)
            .await?
            .ok_or(DomainError::Unauthenticated(crate::AuthFailure::Invalid))
    }

    /// What `user_id` may do on `workspace_id` (`NotFound` when not a member and not a server
    /// administrator).
    pub async fn rights(&self, user_id: &str, workspace_id: &str) -> Result<MemberRights> {
        let actor = self.actor(user_id).await?;
        let role = workspaces::member_role(self.ctx.store().pool(), workspace_id, user_id).await?;
        if role.is_none() && !actor.is_admin {
            return Err(not_member(workspace_id));
        }
        Ok(MemberRights {
            create_users: actor.is_admin,
            manage_members: actor.is_admin || role.as_deref() == Some("admin"),
        })
    }

    async fn require_manager(&self, user_id: &str, workspace_id: &str) -> Result<()> {
        if self.rights(user_id, workspace_id).await?.manage_members {
            Ok(())
        } else {
            Err(DomainError::forbidden(
                "Only an admin of this workspace or a server administrator can change its members",
                Some("Ask an admin of the workspace to do it.".to_string()),
            ))
        }
    }

    /// The members of a workspace, for one of its members.
    pub async fn list(
        &self,
        user_id: &str,
        workspace_id: &str,
        page: PageRequest,
    ) -> Result<List<Member>> {
        self.rights(user_id, workspace_id).await?;
        let rows = workspaces::list_members(
            self.ctx.store().pool(),
            workspace_id,
            page.after,
            page.fetch(),
        )
        .await?;
        Ok(page.finish(rows, |m| m.seq, Member::from))
    }

    /// Creates a user (server administrators only). Without `password`, one is generated and
    /// returned once. With `add_to`, the user also becomes a member of that workspace (the
    /// actor must be able to manage its members).
    pub async fn create_user(
        &self,
        actor_id: &str,
        email: &str,
        password: Option<&str>,
        add_to: Option<(&str, &str)>,
    ) -> Result<CreatedUser> {
        let actor = self.actor(actor_id).await?;
        if !actor.is_admin {
            return Err(DomainError::forbidden(
                "Only a server administrator can create users",
                Some("Ask an administrator to create the account.".to_string()),
            ));
        }
        let email = normalise_email(email)?;
        let role = match add_to {
            Some((ws, role)) => {
                self.require_manager(actor_id, ws).await?;
                Some(valid_role(role)?)
            }
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
        if let (Some((ws, _)), Some(role)) = (add_to, role) {
            workspaces::add_member(&mut *tx, ws, &id, role, now).await?;
        }
        tx.commit().await.map_err(StorageError::from)?;
        tracing::info!(user = %id, by = %actor_id, "user created");
        Ok(CreatedUser {
            user,
            generated_password: generated.then_some(password),
        })
    }

    /// Adds an existing user (by e-mail) to a workspace, or changes their role there.
    pub async fn add(
        &self,
        actor_id: &str,
        workspace_id: &str,
        email: &str,
        role: &str,
    ) -> Result<UserRow> {
        self.require_manager(actor_id, workspace_id).await?;
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
        if role != "admin"
            && workspaces::member_role(&mut *tx, workspace_id, &user.id)
                .await?
                .as_deref()
                == Some("admin")
            && workspaces::count_admins_for_update(&mut tx, workspace_id).await? <= 1
        {
            return Err(last_admin());
        }
        workspaces::add_member(
            &mut *tx,
            workspace_id,
            &user.id,
            role,
            self.ctx.clock().now(),
        )
        .await?;
        tx.commit().await.map_err(StorageError::from)?;
        tracing::info!(user = %user.id, workspace = %workspace_id, role, by = %actor_id, "member added");
        Ok(user)
    }

    /// Makes a user a server administrator or not (server administrators only; never the
    /// last one).
    pub async fn set_server_admin(&self, actor_id: &str, user_id: &str, admin: bool) -> Result<()> {
        let actor = self.actor(actor_id).await?;
        if !actor.is_admin {
            return Err(DomainError::forbidden(
                "Only a server administrator can change who administers the server",
                Some("Ask a server administrator.".to_string()),
            ));
        }
        let mut tx = self.ctx.store().begin().await?;
        let user = users::get(&mut *tx, user_id)
            .await?
            .ok_or_else(|| DomainError::not_found("User", user_id))?;
        if user.is_admin && !admin && users::count_admins_for_update(&mut tx).await? <= 1 {
            return Err(DomainError::conflict(
                "The server must keep at least one administrator",
                Some("Make another user a server administrator first.".to_string()),
            ));
        }
        users::set_admin(&mut *tx, user_id, admin).await?;
        tx.commit().await.map_err(StorageError::from)?;
        tracing::info!(user = %user_id, admin, by = %actor_id, "server administrator changed");
        Ok(())
    }

    /// Removes a member from a workspace (never its last admin), revoking the OAuth access
    /// they granted apps there: their tokens stop working at once.
    pub async fn remove(&self, actor_id: &str, workspace_id: &str, user_id: &str) -> Result<()> {
        self.require_manager(actor_id, workspace_id).await?;
        let mut tx = self.ctx.store().begin().await?;
        let role = workspaces::member_role(&mut *tx, workspace_id, user_id)
            .await?
            .ok_or_else(|| DomainError::not_found("Member", user_id))?;
        if role == "admin" && workspaces::count_admins_for_update(&mut tx, workspace_id).await? <= 1
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
        tracing::info!(user = %user_id, workspace = %workspace_id, by = %actor_id, grants_revoked = revoked.len(), "member removed");
        Ok(())
    }
}

fn valid_role(role: &str) -> Result<&'static str> {
    match role {
        "" | "member" => Ok("member"),
        "admin" => Ok("admin"),
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
        assert_eq!(valid_role("").ok(), Some("member"));
        assert_eq!(valid_role("admin").ok(), Some("admin"));
        assert!(valid_role("owner").is_err());
    }
}
