//! Projects: create (with their default database), read, rename, delete, transfer. Views
//! leave their `url`s to http ([`crate::services::unlocated`]).

use crate::access::WorkspaceAccess;
use pgfleet_api_types::project::{
    CreateProject, CreatedProject, Project, UpdateProject, WorkspaceRef,
};
use pgfleet_api_types::{ts, List};
use pgfleet_storage::{
    databases, projects, workspaces, DatabaseState, OperationKind, ProjectRow, StorageError,
};

use crate::ids::{new_id, PROJECT};
use crate::intent::{Planned, Run};
use crate::reconciler::delete_project_payload;
use crate::services::{validate_logical_id, validate_name};
use crate::{DomainError, PageRequest, Principal, Result};

/// Default region of the contract.
pub const DEFAULT_REGION: &str = "us-east-1";

/// Projects of a workspace. Obtained from [`super::Services::projects`].
#[derive(Debug, Clone, Copy)]
pub struct Projects<'a> {
    pub(super) ctx: &'a std::sync::Arc<super::Ctx>,
}

impl Projects<'_> {
    pub(crate) async fn view(&self, p: ProjectRow) -> Result<Project> {
        let ws = workspaces::get(self.ctx.store().pool(), &p.workspace_id)
            .await?
            .ok_or_else(|| DomainError::internal(format!("project {} has no workspace", p.id)))?;
        Ok(self.view_with(p, &ws.name))
    }

    fn view_with(&self, p: ProjectRow, workspace_name: &str) -> Project {
        Project {
            url: crate::services::unlocated(),
            id: p.id,
            kind: "project".to_string(),
            name: p.name,
            logical_id: p.logical_id,
            created_at: ts(&p.created_at),
            default_region: p.default_region,
            workspace: WorkspaceRef {
                url: crate::services::unlocated(),
                id: p.workspace_id,
                name: workspace_name.to_string(),
            },
        }
    }

    /// A project the principal may see, or 404.
    pub(crate) async fn visible(&self, p: &Principal, id: &str) -> Result<ProjectRow> {
        projects::get(self.ctx.store().pool(), &p.workspace_id, id)
            .await?
            .ok_or_else(|| DomainError::not_found("Project", id))
    }

    pub async fn list(
        &self,
        access: &WorkspaceAccess,
        logical_id: Option<&str>,
        page: PageRequest,
    ) -> Result<List<Project>> {
        let p = access.principal();
        let ws = self.ctx.workspaces().principal_workspace(p).await?;
        let rows = projects::list(
            self.ctx.store().pool(),
            &p.workspace_id,
            logical_id,
            page.after,
            page.fetch(),
        )
        .await?;
        Ok(page.finish(rows, |r| r.seq, |r| self.view_with(r, &ws.name)))
    }

    pub async fn get(&self, access: &WorkspaceAccess, id: &str) -> Result<Project> {
        let p = access.principal();
        let row = self.visible(p, id).await?;
        self.view(row).await
    }

    pub async fn create(
        &self,
        access: &WorkspaceAccess,
        body: CreateProject,
    ) -> Result<CreatedProject> {
        let p = access.principal();
        if let Some(ws) = body.workspace_id.as_deref() {
            if ws != p.workspace_id {
                return Err(DomainError::not_found("Workspace", ws));
            }
        }
        let name = body
            .name
            .as_deref()
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .unwrap_or("My Project")
            .to_string();
        validate_name("name", &name)?;
        if let Some(l) = body.logical_id.as_deref() {
            validate_logical_id(l)?;
        }
        let region_id = body
            .region
            .clone()
            .unwrap_or_else(|| DEFAULT_REGION.to_string());
        let create_database = body.create_database.unwrap_or(true);
        self.ctx.regions().available(&region_id)?;
        let now = self.ctx.clock().now();
        let row = projects::new_row(
            new_id(PROJECT, self.ctx.rng()),
            p.workspace_id.clone(),
            name.clone(),
            body.logical_id.clone(),
            Some(region_id.clone()),
            now,
        );

        let mut tx = self.ctx.store().begin().await?;
        // Read before the commit: once committed, the answer needs nothing more from the
        // store, so a store that goes away then cannot turn a done create into an error.
        let workspace = workspaces::get(&mut *tx, &p.workspace_id)
            .await?
            .ok_or_else(|| DomainError::not_found("Workspace", &p.workspace_id))?;
        let project = match projects::insert(&mut *tx, &row).await {
            Ok(r) => r,
            Err(e) if e.is_unique_violation() => {
                return Err(DomainError::conflict(
                    format!("A project with logicalId {:?} already exists in this workspace", body.logical_id.unwrap_or_default()),
                    Some("Use another logicalId, or find the existing project with GET /v1/projects?logicalId=…".to_string()),
                ))
            }
            Err(e) => return Err(e.into()),
        };
        let (intent, op) = if create_database {
            let (intent, op) = self
                .ctx
                .databases()
                .intent(&mut tx, &project, &region_id, &name, true, None, None)
                .await?;
            (Some(intent), Some(op))
        } else {
            (None, None)
        };
        self.ctx.commit_intent(tx, op, Run::Wait).await?;

        let database = match intent {
            Some(intent) => Some(self.ctx.databases().created_view(&intent, false).await?),
            None => None,
        };
        Ok(CreatedProject {
            project: self.view_with(project, &workspace.name),
            database,
        })
    }

    pub async fn update(
        &self,
        access: &WorkspaceAccess,
        id: &str,
        body: UpdateProject,
    ) -> Result<Project> {
        let p = access.principal();
        let row = self.visible(p, id).await?;
        if let Some(name) = body.name.as_deref() {
            let name = name.trim();
            // The contract lists 422, not 400, for this operation's validation errors.
            validate_name("name", name).map_err(DomainError::as_unprocessable)?;
            projects::rename(self.ctx.store().pool(), &row.id, name).await?;
        }
        let row = self.visible(p, id).await?;
        self.view(row).await
    }

    /// Deletes a project and its default database; refused while other databases remain.
    pub async fn delete(&self, access: &WorkspaceAccess, id: &str) -> Result<()> {
        let p = access.principal();
        let row = self.visible(p, id).await?;
        let mut tx = self.ctx.store().begin().await?;
        // Lock the project row so a concurrent database create cannot slip in.
        projects::lock(&mut tx, &row.id).await?;
        let dbs = databases::all_of_project(&mut *tx, &row.id).await?;
        let others: Vec<&str> = dbs
            .iter()
            .filter(|d| !d.is_default && d.status != DatabaseState::Deleting)
            .map(|d| d.id.as_str())
            .collect();
        if !others.is_empty() {
            return Err(DomainError::bad_request_hint(
                format!(
                    "Project {} still has {} database(s) besides its default database",
                    row.id,
                    others.len()
                ),
                format!("Delete these databases first: {}.", others.join(", ")),
            ));
        }
        if dbs.iter().any(|d| d.status.is_busy()) {
            return Err(DomainError::conflict(
                "The project's database is still provisioning or recovering",
                Some("Retry when it is ready.".to_string()),
            ));
        }
        let mut ops = Vec::new();
        for d in dbs.iter().filter(|d| d.status != DatabaseState::Deleting) {
            databases::set_status(&mut *tx, &d.id, DatabaseState::Deleting).await?;
            ops.push(
                Planned::new(OperationKind::DatabaseDelete, &d.id)
                    .with_payload(delete_project_payload(&row.id)),
            );
        }
        if dbs.is_empty() {
            projects::delete(&mut *tx, &row.id).await?;
        }
        self.ctx.commit_intent(tx, ops, Run::Wait).await
    }

    /// Moves a project (with its databases) to the workspace of `recipient_token`.
    pub async fn transfer(
        &self,
        access: &WorkspaceAccess,
        id: &str,
        recipient_token: &str,
    ) -> Result<()> {
        let p = access.principal();
        let row = self.visible(p, id).await?;
        let recipient = match self.ctx.tokens().authenticate_bearer(recipient_token).await {
            Ok(r) => r,
            Err(DomainError::Unauthenticated(_)) => {
                return Err(DomainError::bad_request_hint(
                    "recipientAccessToken is not a valid access token",
                    "Pass a live service token or OAuth access token of the workspace that should receive the project.",
                ))
            }
            Err(e) => return Err(e),
        };
        let mut tx = self.ctx.store().begin().await?;
        projects::lock(&mut tx, &row.id).await?;
        let busy = databases::all_of_project(&mut *tx, &row.id)
            .await?
            .into_iter()
            .any(|d| d.status.is_busy() || d.status == DatabaseState::Deleting);
        if busy {
            return Err(DomainError::conflict(
                "The project cannot be transferred while one of its databases is provisioning, recovering or being deleted",
                Some("Retry when every database is ready.".to_string()),
            ));
        }
        if recipient.workspace_id != row.workspace_id {
            // The project's databases count against the receiving workspace's quota now.
            let needed = pgfleet_storage::capacity::project_used(&mut *tx, &row.id).await?;
            self.ctx
                .capacity()
                .reserve_workspace_slots(&mut tx, &recipient.workspace_id, needed)
                .await?;
        }
        projects::set_workspace(&mut *tx, &row.id, &recipient.workspace_id).await?;
        // Both workspaces hear of it: the one that gave the project and the one that has it.
        if let Some(moved) = projects::get_any(&mut *tx, &row.id).await? {
            let view = self.view(moved).await?;
            for ws in [&row.workspace_id, &recipient.workspace_id] {
                super::webhooks::emit(
                    self.ctx,
                    &mut tx,
                    ws,
                    pgfleet_api_types::webhook::WebhookEventType::ProjectTransferred,
                    &view,
                )
                .await?;
                if row.workspace_id == recipient.workspace_id {
                    break;
                }
            }
        }
        tx.commit().await.map_err(StorageError::from)?;
        self.ctx.note_write();
        tracing::info!(project = %row.id, from = %p.workspace_id, to = %recipient.workspace_id, "project transferred");
        Ok(())
    }
}
