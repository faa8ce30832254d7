//! Projects: create (with their default database), read, rename, delete, transfer. Views
//! leave their `url`s to http ([`crate::services::unlocated`]). A caller limited to one
//! project ([`crate::TokenScope`]) sees only that one ([`Projects::visible`] and the list);
//! creating, deleting and transferring projects are workspace-level
//! ([`WorkspaceWideWrite`]), renaming is a write inside the project ([`WriteAccess`]).

use crate::access::{WorkspaceAccess, WorkspaceWideWrite, WriteAccess};
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

    /// A project the principal may see, or 404: one of its workspace and, for a caller
    /// limited to one project, that one (another answers exactly like a missing one).
    pub(crate) async fn visible(&self, p: &Principal, id: &str) -> Result<ProjectRow> {
        if p.scope.project_id.as_deref().is_some_and(|s| s != id) {
            return Err(DomainError::not_found("Project", id));
        }
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
        if let Some(only) = p.scope.project_id.as_deref() {
            // The one project, if it is still in the workspace and on this page.
            let rows: Vec<ProjectRow> =
                projects::get(self.ctx.store().pool(), &p.workspace_id, only)
                    .await?
                    .filter(|r| logical_id.is_none_or(|l| r.logical_id.as_deref() == Some(l)))
                    .filter(|r| page.after.is_none_or(|a| r.seq > a))
                    .into_iter()
                    .collect();
            return Ok(page.finish(rows, |r| r.seq, |r| self.view_with(r, &ws.name)));
        }
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
        access: &WorkspaceWideWrite,
        body: CreateProject,
    ) -> Result<CreatedProject> {
        let p = access.principal();
        if let Some(ws) = body.workspace_id.as_deref() {
            if ws != p.workspace_id {
                return Err(DomainError::not_found("Workspace", ws));
            }
        }
        self.create_in(&p.workspace_id, body, None).await
    }

    /// Creates a project in `workspace_id` (the caller decided it may). A claimable
    /// database's admission (limits checked and its row written, [`super::claimable`]) goes
    /// in the same transaction as the project, so none exists without the other.
    pub(crate) async fn create_in(
        &self,
        workspace_id: &str,
        body: CreateProject,
        claimable: Option<super::claimable::Admission<'_>>,
    ) -> Result<CreatedProject> {
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
            workspace_id.to_string(),
            name.clone(),
            body.logical_id.clone(),
            Some(region_id.clone()),
            now,
        );

        let mut tx = self.ctx.store().begin().await?;
        // Read before the commit: once committed, the answer needs nothing more from the
        // store, so a store that goes away then cannot turn a done create into an error.
        let workspace = workspaces::get(&mut *tx, workspace_id)
            .await?
            .ok_or_else(|| DomainError::not_found("Workspace", workspace_id))?;
        if let Some(admission) = claimable {
            admission.admit(&mut tx, &row.id, now).await?;
        }
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
        access: &WriteAccess,
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
    pub async fn delete(&self, access: &WorkspaceWideWrite, id: &str) -> Result<()> {
        let p = access.principal();
        let row = self.visible(p, id).await?;
        let mut tx = self.ctx.store().begin().await?;
        let ops = self.plan_delete(&mut tx, &row).await?;
        self.ctx.commit_intent(tx, ops, Run::Wait).await
    }

    /// The delete of `row` written in `tx` (its databases marked deleting, or the project
    /// row gone when it has none): the operations to commit with it. The one delete path of
    /// the API and of the claimable databases' reaper.
    pub(crate) async fn plan_delete(
        &self,
        tx: &mut sqlx::Transaction<'static, sqlx::Postgres>,
        row: &ProjectRow,
    ) -> Result<Vec<Planned>> {
        // Lock the project row so a concurrent database create cannot slip in.
        projects::lock(tx, &row.id).await?;
        let dbs = databases::all_of_project(&mut **tx, &row.id).await?;
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
            databases::set_status(&mut **tx, &d.id, DatabaseState::Deleting).await?;
            ops.push(
                Planned::new(OperationKind::DatabaseDelete, &d.id)
                    .with_payload(delete_project_payload(&row.id)),
            );
        }
        if dbs.is_empty() {
            projects::delete(&mut **tx, &row.id).await?;
        }
        Ok(ops)
    }

    /// Moves a project (with its databases) to the workspace of `recipient_token`, which
    /// must be a credential that may change its whole workspace (a read-only or
    /// project-scoped one cannot accept a project). The service tokens limited to the
    /// project are deleted with the move.
    pub async fn transfer(
        &self,
        access: &WorkspaceWideWrite,
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
        if recipient.scope != crate::TokenScope::full() {
            return Err(DomainError::bad_request_hint(
                "recipientAccessToken is limited (read-only or to one project): it cannot accept a project",
                "Pass a token of the receiving workspace that is neither read-only nor limited to a project.",
            ));
        }
        let mut tx = self.ctx.store().begin().await?;
        let gone = self.move_to(&mut tx, &row, &recipient.workspace_id).await?;
        tx.commit().await.map_err(StorageError::from)?;
        for token in &gone {
            self.ctx.auth_cache().evict_service_token(token);
        }
        self.ctx.note_write();
        tracing::info!(project = %row.id, from = %p.workspace_id, to = %recipient.workspace_id, "project transferred");
        Ok(())
    }

    /// Moves `row` to `to_workspace` in `tx`: refused while one of its databases is busy;
    /// the receiving workspace's connection slots are reserved; the service tokens limited
    /// to the project are deleted (their ids returned, to evict from the auth cache after
    /// the commit). The one move of a project,
    /// for the API's transfer and the claim of a claimable database; the caller commits.
    pub(crate) async fn move_to(
        &self,
        tx: &mut sqlx::Transaction<'static, sqlx::Postgres>,
        row: &ProjectRow,
        to_workspace: &str,
    ) -> Result<Vec<String>> {
        projects::lock(tx, &row.id).await?;
        let busy = databases::all_of_project(&mut **tx, &row.id)
            .await?
            .into_iter()
            .any(|d| d.status.is_busy() || d.status == DatabaseState::Deleting);
        if busy {
            return Err(DomainError::conflict(
                "The project cannot be transferred while one of its databases is provisioning, recovering or being deleted",
                Some("Retry when every database is ready.".to_string()),
            ));
        }
        if to_workspace != row.workspace_id {
            // The project's databases count against the receiving workspace's quota now.
            let needed = pgfleet_storage::capacity::project_used(&mut **tx, &row.id).await?;
            self.ctx
                .capacity()
                .reserve_workspace_slots(tx, to_workspace, needed)
                .await?;
        }
        // The service tokens limited to the project go with the move; the caller evicts
        // them from the auth cache once it has committed.
        let gone = projects::set_workspace(&mut **tx, &row.id, to_workspace).await?;
        // Both workspaces hear of it (in the move's transaction): the one that gave the
        // project and the one that has it. A claim is a move too.
        if let Some(moved) = projects::get_any(&mut **tx, &row.id).await? {
            let view = self.view(moved).await?;
            for ws in [row.workspace_id.as_str(), to_workspace] {
                super::webhooks::emit(
                    self.ctx,
                    tx,
                    ws,
                    pgfleet_api_types::webhook::WebhookEventType::ProjectTransferred,
                    &view,
                )
                .await?;
                if row.workspace_id == to_workspace {
                    break;
                }
            }
        }
        Ok(gone)
    }
}
