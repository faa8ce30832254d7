//! One handle per API resource (`client.projects()`, `client.databases()`, …), each method
//! one operation. `list` returns one page; `list_all*` returns every item as a
//! [`Stream`] that follows `nextCursor`.

use futures::Stream;
use pgfleet_api_types::backup::{Backup, BackupList, RestoreRequest, RestoreSource};
use pgfleet_api_types::connection::{Connection, CreateConnection, CreatedConnection};
use pgfleet_api_types::database::{CreateDatabase, CreatedDatabase, Database, UpdateDatabase};
use pgfleet_api_types::integration::Integration;
use pgfleet_api_types::project::{
    CreateProject, CreatedProject, Project, TransferProject, UpdateProject,
};
use pgfleet_api_types::service_token::{CreateServiceToken, CreatedServiceToken, ServiceToken};
use pgfleet_api_types::usage::DatabaseUsage;
use pgfleet_api_types::workspace::CreateWorkspace;
use pgfleet_api_types::{List, PageParams, Workspace};
use reqwest::Method;

use crate::client::{body, page_query, Client, Query};
use crate::error::Result;

impl Client {
    /// Workspaces the credential can see.
    pub fn workspaces(&self) -> Workspaces<'_> {
        Workspaces { c: self }
    }
    /// Projects of the credential's workspace.
    pub fn projects(&self) -> Projects<'_> {
        Projects { c: self }
    }
    /// Databases.
    pub fn databases(&self) -> Databases<'_> {
        Databases { c: self }
    }
    /// Connections (credentials of databases).
    pub fn connections(&self) -> Connections<'_> {
        Connections { c: self }
    }
    /// Service tokens of workspace `workspace_id`.
    pub fn service_tokens<'a>(&'a self, workspace_id: &'a str) -> ServiceTokens<'a> {
        ServiceTokens {
            c: self,
            ws: workspace_id,
        }
    }
    /// Backups of database `database_id`.
    pub fn backups<'a>(&'a self, database_id: &'a str) -> Backups<'a> {
        Backups {
            c: self,
            db: database_id,
        }
    }
    /// OAuth apps authorized on workspace `workspace_id`.
    pub fn integrations<'a>(&'a self, workspace_id: &'a str) -> Integrations<'a> {
        Integrations {
            c: self,
            ws: workspace_id,
        }
    }
}

/// `/v1/workspaces`.
#[derive(Debug, Clone, Copy)]
pub struct Workspaces<'a> {
    c: &'a Client,
}

impl Workspaces<'_> {
    /// One page of workspaces.
    pub async fn list(&self, page: PageParams) -> Result<List<Workspace>> {
        self.c.list(&["workspaces"], page_query(&page)).await
    }
    /// Every workspace.
    pub fn list_all(&self) -> impl Stream<Item = Result<Workspace>> + Send + 'static {
        self.c.paginate(vec!["workspaces".into()], Query::new())
    }
    /// One workspace.
    pub async fn get(&self, id: &str) -> Result<Workspace> {
        self.c.get(&["workspaces", id], Query::new()).await
    }
    /// Creates a workspace (users only; a service token gets 403).
    pub async fn create(&self, display_name: Option<&str>) -> Result<Workspace> {
        let b = body(&CreateWorkspace {
            display_name: display_name.map(String::from),
        })?;
        self.c.request(Method::POST, &["workspaces"], b).await
    }
}

/// `/v1/projects`.
#[derive(Debug, Clone, Copy)]
pub struct Projects<'a> {
    c: &'a Client,
}

impl Projects<'_> {
    /// One page of projects.
    pub async fn list(&self, page: PageParams) -> Result<List<Project>> {
        self.c.list(&["projects"], page_query(&page)).await
    }
    /// Every project.
    pub fn list_all(&self) -> impl Stream<Item = Result<Project>> + Send + 'static {
        self.c.paginate(vec!["projects".into()], Query::new())
    }
    /// Projects with this `logicalId`.
    pub async fn list_by_logical_id(
        &self,
        logical_id: &str,
        page: PageParams,
    ) -> Result<List<Project>> {
        let mut q = page_query(&page);
        q.push(("logicalId", logical_id.to_string()));
        self.c.list(&["projects"], q).await
    }
    /// One project.
    pub async fn get(&self, id: &str) -> Result<Project> {
        self.c.get(&["projects", id], Query::new()).await
    }
    /// Creates a project and (unless `createDatabase: false`) its default database, whose
    /// credentials are in the answer only.
    pub async fn create(&self, req: &CreateProject) -> Result<CreatedProject> {
        self.c
            .request(Method::POST, &["projects"], body(req)?)
            .await
    }
    /// Renames a project (or changes its settings).
    pub async fn update(&self, id: &str, req: &UpdateProject) -> Result<Project> {
        self.c
            .request(Method::PATCH, &["projects", id], body(req)?)
            .await
    }
    /// Deletes a project with its databases.
    pub async fn delete(&self, id: &str) -> Result<()> {
        self.c
            .request_empty(Method::DELETE, &["projects", id], None)
            .await
    }
    /// Moves a project to the workspace that `recipient_access_token` belongs to.
    pub async fn transfer(&self, id: &str, recipient_access_token: &str) -> Result<()> {
        let b = body(&TransferProject {
            recipient_access_token: recipient_access_token.to_string(),
        })?;
        self.c
            .request_empty(Method::POST, &["projects", id, "transfer"], b)
            .await
    }
}

/// `/v1/databases` and `/v1/projects/{id}/databases`.
#[derive(Debug, Clone, Copy)]
pub struct Databases<'a> {
    c: &'a Client,
}

impl Databases<'_> {
    /// One page of the workspace's databases.
    pub async fn list(&self, page: PageParams) -> Result<List<Database>> {
        self.c.list(&["databases"], page_query(&page)).await
    }
    /// Every database of the workspace.
    pub fn list_all(&self) -> impl Stream<Item = Result<Database>> + Send + 'static {
        self.c.paginate(vec!["databases".into()], Query::new())
    }
    /// One page of a project's databases.
    pub async fn list_for_project(
        &self,
        project_id: &str,
        page: PageParams,
    ) -> Result<List<Database>> {
        self.c
            .list(&["projects", project_id, "databases"], page_query(&page))
            .await
    }
    /// Every database of a project.
    pub fn list_all_for_project(
        &self,
        project_id: &str,
    ) -> impl Stream<Item = Result<Database>> + Send + 'static {
        self.c.paginate(
            vec!["projects".into(), project_id.into(), "databases".into()],
            Query::new(),
        )
    }
    /// One database.
    pub async fn get(&self, id: &str) -> Result<Database> {
        self.c.get(&["databases", id], Query::new()).await
    }
    /// `POST /v1/databases` (`projectId` required in `req`): the database without its
    /// credentials (create a connection for those).
    pub async fn create(&self, req: &CreateDatabase) -> Result<Database> {
        self.c
            .request(Method::POST, &["databases"], body(req)?)
            .await
    }
    /// `POST /v1/projects/{id}/databases`: the database with its default connection's
    /// credentials (shown once).
    pub async fn create_in_project(
        &self,
        project_id: &str,
        req: &CreateDatabase,
    ) -> Result<CreatedDatabase> {
        self.c
            .request(
                Method::POST,
                &["projects", project_id, "databases"],
                body(req)?,
            )
            .await
    }
    /// Renames a database (or sets its branch / logical ids).
    pub async fn update(&self, id: &str, req: &UpdateDatabase) -> Result<Database> {
        self.c
            .request(Method::PATCH, &["databases", id], body(req)?)
            .await
    }
    /// Deletes a database and its connections.
    pub async fn delete(&self, id: &str) -> Result<()> {
        self.c
            .request_empty(Method::DELETE, &["databases", id], None)
            .await
    }
    /// `POST /v1/databases/{target}/restore`: replaces the contents of database `target`
    /// with backup `backup_id` of database `source_database_id` (it may be `target`
    /// itself). The answer is the target, `recovering` until the restore finishes.
    pub async fn restore(
        &self,
        target: &str,
        source_database_id: &str,
        backup_id: &str,
    ) -> Result<Database> {
        let b = body(&RestoreRequest {
            source: RestoreSource::Backup {
                database_id: source_database_id.to_string(),
                backup_id: backup_id.to_string(),
            },
        })?;
        self.c
            .request(Method::POST, &["databases", target, "restore"], b)
            .await
    }
    /// `POST /v1/databases/{target}/restore` to a point in time (pgfleet extension): replaces
    /// the contents of `target` with database `source_database_id` (`target` itself, or
    /// another database of its project: "reset from parent") as it was at `timestamp` (RFC
    /// 3339, inside the source's `restoreWindow`). The answer is the target, `recovering`
    /// until the restore finishes.
    pub async fn restore_to_time(
        &self,
        target: &str,
        source_database_id: &str,
        timestamp: &str,
    ) -> Result<Database> {
        let b = body(&RestoreRequest {
            source: RestoreSource::Database {
                database_id: source_database_id.to_string(),
                timestamp: Some(timestamp.to_string()),
            },
        })?;
        self.c
            .request(Method::POST, &["databases", target, "restore"], b)
            .await
    }
    /// `GET /v1/databases/{id}/usage`: operations and storage over a period (`start` and
    /// `end` are dates or date-times; the server's defaults when `None`).
    pub async fn usage(
        &self,
        id: &str,
        start: Option<&str>,
        end: Option<&str>,
    ) -> Result<DatabaseUsage> {
        let mut q = Query::new();
        if let Some(s) = start {
            q.push(("startDate", s.to_string()));
        }
        if let Some(e) = end {
            q.push(("endDate", e.to_string()));
        }
        self.c.get_raw(&["databases", id, "usage"], q).await
    }
}

/// `/v1/databases/{id}/backups`.
#[derive(Debug, Clone, Copy)]
pub struct Backups<'a> {
    c: &'a Client,
    db: &'a str,
}

impl Backups<'_> {
    /// The database's backups, newest first, at most `limit` of them (the list has no
    /// cursor: `pagination.hasMore` tells whether there are more).
    pub async fn list(&self, limit: Option<i64>) -> Result<BackupList> {
        let mut q = Query::new();
        if let Some(l) = limit {
            q.push(("limit", l.to_string()));
        }
        self.c.get_raw(&["databases", self.db, "backups"], q).await
    }
    /// Starts a backup now; it is `running` until it completes (poll [`Backups::list`]).
    pub async fn create(&self) -> Result<Backup> {
        self.c
            .request(Method::POST, &["databases", self.db, "backups"], None)
            .await
    }
}

/// `/v1/connections` and `/v1/databases/{id}/connections`.
#[derive(Debug, Clone, Copy)]
pub struct Connections<'a> {
    c: &'a Client,
}

impl Connections<'_> {
    /// One page of the workspace's connections.
    pub async fn list(&self, page: PageParams) -> Result<List<Connection>> {
        self.c.list(&["connections"], page_query(&page)).await
    }
    /// Every connection of the workspace.
    pub fn list_all(&self) -> impl Stream<Item = Result<Connection>> + Send + 'static {
        self.c.paginate(vec!["connections".into()], Query::new())
    }
    /// One page of a database's connections.
    pub async fn list_for_database(
        &self,
        database_id: &str,
        page: PageParams,
    ) -> Result<List<Connection>> {
        self.c
            .list(
                &["databases", database_id, "connections"],
                page_query(&page),
            )
            .await
    }
    /// Every connection of a database.
    pub fn list_all_for_database(
        &self,
        database_id: &str,
    ) -> impl Stream<Item = Result<Connection>> + Send + 'static {
        self.c.paginate(
            vec!["databases".into(), database_id.into(), "connections".into()],
            Query::new(),
        )
    }
    /// One connection (without its password).
    pub async fn get(&self, id: &str) -> Result<Connection> {
        self.c.get(&["connections", id], Query::new()).await
    }
    /// `POST /v1/connections`: new credentials for a database (shown once).
    pub async fn create(&self, database_id: &str, name: &str) -> Result<CreatedConnection> {
        let b = body(&CreateConnection {
            database_id: Some(database_id.to_string()),
            name: name.to_string(),
        })?;
        self.c.request(Method::POST, &["connections"], b).await
    }
    /// `POST /v1/databases/{id}/connections`: the same, by path.
    pub async fn create_for_database(
        &self,
        database_id: &str,
        name: &str,
    ) -> Result<CreatedConnection> {
        let b = body(&CreateConnection {
            database_id: None,
            name: name.to_string(),
        })?;
        self.c
            .request(Method::POST, &["databases", database_id, "connections"], b)
            .await
    }
    /// New password for a connection; the old one stops working.
    pub async fn rotate(&self, id: &str) -> Result<CreatedConnection> {
        self.c
            .request(Method::POST, &["connections", id, "rotate"], None)
            .await
    }
    /// Deletes a connection (its role is dropped, its sessions end).
    pub async fn delete(&self, id: &str) -> Result<()> {
        self.c
            .request_empty(Method::DELETE, &["connections", id], None)
            .await
    }
}

/// `/v1/workspaces/{id}/service-tokens`.
#[derive(Debug, Clone, Copy)]
pub struct ServiceTokens<'a> {
    c: &'a Client,
    ws: &'a str,
}

impl ServiceTokens<'_> {
    /// One page of the workspace's service tokens (newest first).
    pub async fn list(&self, page: PageParams) -> Result<List<ServiceToken>> {
        self.c
            .list(
                &["workspaces", self.ws, "service-tokens"],
                page_query(&page),
            )
            .await
    }
    /// Every service token of the workspace.
    pub fn list_all(&self) -> impl Stream<Item = Result<ServiceToken>> + Send + 'static {
        self.c.paginate(
            vec!["workspaces".into(), self.ws.into(), "service-tokens".into()],
            Query::new(),
        )
    }
    /// Creates a token; its `value` is in this answer only.
    pub async fn create(&self, req: &CreateServiceToken) -> Result<CreatedServiceToken> {
        self.c
            .request(
                Method::POST,
                &["workspaces", self.ws, "service-tokens"],
                body(req)?,
            )
            .await
    }
    /// Deletes (revokes) a token.
    pub async fn delete(&self, id: &str) -> Result<()> {
        self.c
            .request_empty(
                Method::DELETE,
                &["workspaces", self.ws, "service-tokens", id],
                None,
            )
            .await
    }
}

/// `/v1/workspaces/{id}/integrations` and `/v1/integrations`.
#[derive(Debug, Clone, Copy)]
pub struct Integrations<'a> {
    c: &'a Client,
    ws: &'a str,
}

impl Integrations<'_> {
    /// One page of the workspace's integrations.
    pub async fn list(&self, page: PageParams) -> Result<List<Integration>> {
        self.c
            .list(&["workspaces", self.ws, "integrations"], page_query(&page))
            .await
    }
    /// Every integration of the workspace.
    pub fn list_all(&self) -> impl Stream<Item = Result<Integration>> + Send + 'static {
        self.c.paginate(
            vec!["workspaces".into(), self.ws.into(), "integrations".into()],
            Query::new(),
        )
    }
    /// One integration.
    pub async fn get(&self, id: &str) -> Result<Integration> {
        self.c.get(&["integrations", id], Query::new()).await
    }
    /// Revokes one integration (its tokens stop working).
    pub async fn delete(&self, id: &str) -> Result<()> {
        self.c
            .request_empty(Method::DELETE, &["integrations", id], None)
            .await
    }
    /// Revokes every integration of app `client_id` on the workspace.
    pub async fn revoke_client(&self, client_id: &str) -> Result<()> {
        self.c
            .request_empty(
                Method::DELETE,
                &["workspaces", self.ws, "integrations", client_id],
                None,
            )
            .await
    }
}
