//! Workspaces and the current principal (`me`). Views leave their `url`s to http
//! ([`crate::services::unlocated`]). Creating a workspace takes a [`WorkspaceWideWrite`].

use crate::access::{WorkspaceAccess, WorkspaceWideWrite};
use pgfleet_api_types::{ts, Credential, CredentialType, List, Me, MeUser, MeWorkspace, Workspace};
use pgfleet_storage::{users, workspaces, WorkspaceRow};

use crate::{CredentialKind, DomainError, PageRequest, Principal, Result};

/// Workspaces and `/v1/me`. Obtained from [`super::Services::workspaces`].
#[derive(Debug, Clone, Copy)]
pub struct Workspaces<'a> {
    pub(super) ctx: &'a std::sync::Arc<super::Ctx>,
}

impl Workspaces<'_> {
    pub(crate) fn view(&self, w: WorkspaceRow) -> Workspace {
        Workspace {
            url: crate::services::unlocated(),
            id: w.id,
            kind: "workspace".to_string(),
            name: w.name,
            created_at: ts(&w.created_at),
        }
    }

    /// The workspace a principal acts on (it always exists while the credential does, but a
    /// concurrent delete is answered as an invalid credential).
    pub(crate) async fn principal_workspace(&self, p: &Principal) -> Result<WorkspaceRow> {
        workspaces::get(self.ctx.store().pool(), &p.workspace_id)
            .await?
            .ok_or(DomainError::Unauthenticated(crate::AuthFailure::Invalid))
    }

    pub async fn me(&self, access: &WorkspaceAccess) -> Result<Me> {
        let p = access.principal();
        let ws = self.principal_workspace(p).await?;
        let user = match &p.user_id {
            Some(id) => users::get(self.ctx.store().pool(), id)
                .await?
                .map(|u| MeUser {
                    id: u.id,
                    email: u.email,
                    name: u.name,
                }),
            None => None,
        };
        let credential = match &p.credential {
            CredentialKind::ServiceToken { id, name } => Credential {
                kind: CredentialType::ServiceToken,
                id: Some(id.clone()),
                name: Some(name.clone()),
                project_id: p.scope.project_id.clone(),
                read_only: p.scope.read_only,
            },
            CredentialKind::OAuth { grant_id, .. } => Credential {
                kind: CredentialType::Oauth,
                id: Some(grant_id.clone()),
                name: None,
                project_id: None,
                read_only: false,
            },
            CredentialKind::Session => Credential {
                kind: CredentialType::Oauth,
                id: None,
                name: Some("web console".to_string()),
                project_id: None,
                read_only: false,
            },
            // `pgfleet admin …` never asks who it is; an HTTP request cannot carry this kind.
            CredentialKind::LocalOperator => {
                return Err(DomainError::internal("the local operator has no /v1/me"))
            }
        };
        Ok(Me {
            user,
            workspace: Some(MeWorkspace {
                id: ws.id,
                name: ws.name,
            }),
            credential,
        })
    }

    /// Workspaces the credential can access: an API credential is bound to one workspace.
    pub async fn list(
        &self,
        access: &WorkspaceAccess,
        page: PageRequest,
    ) -> Result<List<Workspace>> {
        let p = access.principal();
        let ws = self.principal_workspace(p).await?;
        let rows: Vec<WorkspaceRow> = if page.after.is_some_and(|a| a >= ws.seq) {
            vec![]
        } else {
            vec![ws]
        };
        Ok(page.finish(rows, |w| w.seq, |w| self.view(w)))
    }

    pub async fn get(&self, access: &WorkspaceAccess, id: &str) -> Result<Workspace> {
        let p = access.principal();
        if id != p.workspace_id {
            return Err(DomainError::not_found("Workspace", id));
        }
        let ws = workspaces::get(self.ctx.store().pool(), id)
            .await?
            .ok_or_else(|| DomainError::not_found("Workspace", id))?;
        Ok(self.view(ws))
    }

    /// `POST /v1/workspaces`: needs a user-attributable credential.
    pub async fn create(
        &self,
        access: &WorkspaceWideWrite,
        display_name: Option<&str>,
    ) -> Result<Workspace> {
        let p = access.principal();
        let CredentialKind::OAuth { .. } = p.credential else {
            return Err(DomainError::forbidden(
                "Service tokens cannot create workspaces; a user-attributable credential is required",
                Some("Sign in as a user (OAuth) to create a workspace.".to_string()),
            ));
        };
        let Some(user_id) = p.user_id.as_deref() else {
            return Err(DomainError::forbidden(
                "A user-attributable credential is required",
                None,
            ));
        };
        let name = display_name
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .unwrap_or("My Workspace");
        crate::services::validate_name("displayName", name)?;
        let now = self.ctx.clock().now();
        let id = crate::ids::new_id(crate::ids::WORKSPACE, self.ctx.rng());
        let mut tx = self.ctx.store().begin().await?;
        let row = workspaces::insert(&mut *tx, &id, name, now).await?;
        workspaces::add_member(&mut *tx, &id, user_id, "admin", now).await?;
        tx.commit()
            .await
            .map_err(pgfleet_storage::StorageError::from)?;
        Ok(self.view(row))
    }
}
