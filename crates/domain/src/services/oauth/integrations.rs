//! The integrations API: what the authorization server granted, seen (and revoked) by
//! the workspace. Views leave their `url`s to http ([`crate::services::unlocated`]).
//! Workspace-level: reads take a [`WorkspaceWide`], revoking a [`WorkspaceWideWrite`].

use super::*;
use crate::access::{WorkspaceWide, WorkspaceWideWrite};

impl OAuth<'_> {
    fn integration_view(&self, r: IntegrationRow) -> pgfleet_api_types::integration::Integration {
        use pgfleet_api_types::integration::{Integration, IntegrationClient, IntegrationUser};
        Integration {
            url: crate::services::unlocated(),
            id: r.id,
            created_at: ts(&r.created_at),
            scopes: r.scopes,
            client: IntegrationClient {
                id: r.client_id,
                name: r.client_name,
                created_at: ts(&r.client_created_at),
            },
            created_by_user: IntegrationUser {
                id: r.user_id,
                email: r.user_email,
                display_name: r.user_name,
            },
        }
    }

    pub async fn integrations_list(
        &self,
        access: &WorkspaceWide,
        workspace_id: &str,
        page: PageRequest,
    ) -> Result<List<pgfleet_api_types::integration::Integration>> {
        let p = access.principal();
        if workspace_id != p.workspace_id {
            return Err(DomainError::not_found("Workspace", workspace_id));
        }
        let rows = store::list_integrations(
            self.ctx.store().pool(),
            workspace_id,
            page.after,
            page.fetch(),
        )
        .await?;
        Ok(page.finish(rows, |r| r.seq, |r| self.integration_view(r)))
    }

    pub async fn integration_get(
        &self,
        access: &WorkspaceWide,
        id: &str,
    ) -> Result<pgfleet_api_types::integration::Integration> {
        let p = access.principal();
        let row = store::get_integration(self.ctx.store().pool(), &p.workspace_id, id)
            .await?
            .ok_or_else(|| DomainError::not_found("Integration", id))?;
        Ok(self.integration_view(row))
    }

    /// Revokes one integration, or every integration of an app in a workspace.
    pub async fn integration_revoke(
        &self,
        access: &WorkspaceWideWrite,
        workspace_id: &str,
        client_id: Option<&str>,
        id: Option<&str>,
    ) -> Result<()> {
        let p = access.principal();
        if workspace_id != p.workspace_id {
            return Err(DomainError::not_found("Workspace", workspace_id));
        }
        let revoked = store::revoke_grants(
            self.ctx.store().pool(),
            workspace_id,
            client_id,
            id,
            self.ctx.clock().now(),
        )
        .await?;
        if revoked.is_empty() {
            return Err(DomainError::not_found(
                "Integration",
                client_id.or(id).unwrap_or_default(),
            ));
        }
        self.ctx.auth_cache().clear();
        Ok(())
    }
}
