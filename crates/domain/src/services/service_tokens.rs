//! Service tokens: created with the secret shown once, listed without it, deleted at once;
//! each with its scope (one project of the workspace or all of it; read-only or not), which
//! [`crate::access`] enforces. Managing tokens is workspace-level: it takes a
//! [`WorkspaceWide`] (list) or [`WorkspaceWideWrite`] (create, delete), so a read-only or
//! project-scoped token can neither mint a wider one nor delete others.

use crate::access::{WorkspaceWide, WorkspaceWideWrite};
use chrono::{DateTime, Utc};
use pgfleet_api_types::service_token::{CreatedServiceToken, ServiceToken};
use pgfleet_api_types::{ts, List};
use pgfleet_storage::{projects, tokens, ServiceTokenRow};

use crate::ids::{new_id, SERVICE_TOKEN};
use crate::{DomainError, PageRequest, Result, TokenScope};

/// Service tokens, and the authentication of API credentials (service tokens and OAuth access tokens). Obtained from [`super::Services::tokens`].
#[derive(Debug, Clone, Copy)]
pub struct Tokens<'a> {
    pub(super) ctx: &'a std::sync::Arc<super::Ctx>,
}

impl Tokens<'_> {
    fn view(&self, t: ServiceTokenRow) -> ServiceToken {
        ServiceToken {
            id: t.id,
            kind: "serviceToken".to_string(),
            name: t.name,
            value_hint: t.value_hint,
            created_at: ts(&t.created_at),
            expires_at: t.expires_at.as_ref().map(ts),
            project_id: t.project_id,
            read_only: t.read_only,
        }
    }

    /// Tokens of a workspace. Another workspace is `NotFound`, like every other read of a
    /// workspace the credential is not in (an empty list would tell apart nothing, but a
    /// uniform answer keeps "does this workspace exist" out of every endpoint alike).
    pub async fn list(
        &self,
        access: &WorkspaceWide,
        workspace_id: &str,
        page: PageRequest,
    ) -> Result<List<ServiceToken>> {
        let p = access.principal();
        if workspace_id != p.workspace_id {
            return Err(DomainError::not_found("Workspace", workspace_id));
        }
        let rows = tokens::list(
            self.ctx.store().pool(),
            workspace_id,
            page.after,
            page.fetch(),
        )
        .await?;
        Ok(page.finish(rows, |t| t.seq, |t| self.view(t)))
    }

    /// A new token. `scope.project_id` must name a project of the workspace (else 422, as
    /// the contract lists for this operation's bad input).
    pub async fn create(
        &self,
        access: &WorkspaceWideWrite,
        workspace_id: &str,
        name: &str,
        expires_at: Option<&str>,
        scope: &TokenScope,
    ) -> Result<CreatedServiceToken> {
        let p = access.principal();
        if workspace_id != p.workspace_id {
            return Err(DomainError::not_found("Workspace", workspace_id));
        }
        let name = name.trim();
        // The contract lists 422, not 400, for this operation's validation errors.
        crate::names::validate_name("name", name).map_err(DomainError::as_unprocessable)?;
        let now = self.ctx.clock().now();
        let expires_at = match expires_at {
            None => None,
            Some(raw) => {
                let t = DateTime::parse_from_rfc3339(raw)
                    .map_err(|_| {
                        DomainError::unprocessable(
                            format!("expiresAt {raw:?} is not an RFC 3339 date-time"),
                            Some("Use a form like 2030-01-31T00:00:00Z.".to_string()),
                        )
                    })?
                    .with_timezone(&Utc);
                if t <= now {
                    return Err(DomainError::unprocessable(
                        "expiresAt must be in the future",
                        None,
                    ));
                }
                Some(t)
            }
        };
        let secret = self
            .ctx
            .rng()
            .with(|r| pgfleet_auth::generate_token(pgfleet_auth::SERVICE_TOKEN_PREFIX, r));
        let id = new_id(SERVICE_TOKEN, self.ctx.rng());
        let mut tx = self.ctx.store().begin().await?;
        if let Some(project_id) = scope.project_id.as_deref() {
            if project_id.contains('\0') {
                return Err(DomainError::nul_parameter().as_unprocessable());
            }
            // Locked until the token is in, then read: a concurrent transfer or delete of the
            // project waits, then takes the token with it (storage::projects::set_workspace,
            // and the foreign key's ON DELETE CASCADE).
            projects::lock(&mut tx, project_id).await?;
            if projects::get(&mut *tx, workspace_id, project_id)
                .await?
                .is_none()
            {
                return Err(DomainError::unprocessable(
                    format!("projectId {project_id:?} is not a project of workspace {workspace_id}"),
                    Some("Pass the id of one of this workspace's projects (GET /v1/projects), or leave projectId out for a token of the whole workspace.".to_string()),
                ));
            }
        }
        let row = tokens::insert(
            &mut *tx,
            &tokens::NewServiceToken {
                id: &id,
                workspace_id,
                name,
                token_hash: &secret.hash,
                value_hint: &pgfleet_auth::value_hint(&secret.plaintext),
                created_by_user_id: p.user_id.as_deref(),
                created_at: now,
                expires_at: expires_at.map(|t| t.duration_trunc_micros()),
                project_id: scope.project_id.as_deref(),
                read_only: scope.read_only,
            },
        )
        .await?;
        let view = self.view(row);
        let event = pgfleet_api_types::webhook::WebhookEventType::ServiceTokenCreated;
        super::webhooks::emit(self.ctx, &mut tx, workspace_id, event, &view).await?;
        tx.commit()
            .await
            .map_err(pgfleet_storage::StorageError::from)?;
        Ok(CreatedServiceToken {
            token: view,
            value: secret.plaintext,
        })
    }

    pub async fn delete(
        &self,
        access: &WorkspaceWideWrite,
        workspace_id: &str,
        id: &str,
    ) -> Result<()> {
        let p = access.principal();
        if workspace_id != p.workspace_id {
            return Err(DomainError::not_found("Service token", id));
        }
        let mut tx = self.ctx.store().begin().await?;
        if !tokens::delete(&mut *tx, workspace_id, id).await? {
            return Err(DomainError::not_found("Service token", id));
        }
        let data = serde_json::json!({ "id": id, "type": "serviceToken" });
        let event = pgfleet_api_types::webhook::WebhookEventType::ServiceTokenDeleted;
        super::webhooks::emit(self.ctx, &mut tx, workspace_id, event, &data).await?;
        tx.commit()
            .await
            .map_err(pgfleet_storage::StorageError::from)?;
        self.ctx.auth_cache().evict_service_token(id);
        Ok(())
    }
}

trait TruncMicros {
    fn duration_trunc_micros(self) -> Self;
}

impl TruncMicros for DateTime<Utc> {
    fn duration_trunc_micros(self) -> Self {
        use chrono::DurationRound;
        self.duration_trunc(chrono::Duration::microseconds(1))
            .unwrap_or(self)
    }
}
