//! The MCP tools: each one a thin call to the same domain service the matching `/v1` handler
//! calls, with the caller's [`WorkspaceAccess`], its answer located like the API's and given
//! as structured content (plus its JSON as text). A domain error is a tool error
//! (`isError: true`) carrying the API's `{"error": {code, message, hint}}`.

use pgfleet_api_types::database::CreateDatabase;
use pgfleet_api_types::project::CreateProject;
use pgfleet_domain::{DomainError, PageRequest, WorkspaceAccess};
use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{CallToolResult, Extensions};
use rmcp::{tool, tool_router, ErrorData};
use serde::Serialize;

use super::args::*;
use super::McpServer;
use crate::error::ApiError;
use crate::located::Located;

type ToolResult = Result<CallToolResult, ErrorData>;

/// `{"error": {...}}` as the API answers it.
#[derive(Debug, Serialize)]
struct ToolError {
    error: ToolErrorBody,
}

#[derive(Debug, Serialize)]
struct ToolErrorBody {
    code: &'static str,
    message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    hint: Option<String>,
}

fn page(cursor: Option<String>, limit: Option<u32>) -> Result<PageRequest, DomainError> {
    let limit = limit.map(|l| l.to_string());
    PageRequest::parse(cursor.as_deref(), limit.as_deref(), 100)
}

impl McpServer {
    /// The answer of a tool: `value` located, as structured content; or the error as the API
    /// shows it, as a tool error.
    fn answer<T: Located + Serialize>(
        &self,
        tool: &'static str,
        value: Result<T, DomainError>,
    ) -> ToolResult {
        let out = value.and_then(|v| {
            serde_json::to_value(self.state.located(v)).map_err(DomainError::internal)
        });
        self.finish(tool, out)
    }

    fn finish(
        &self,
        tool: &'static str,
        value: Result<serde_json::Value, DomainError>,
    ) -> ToolResult {
        match value {
            Ok(v) => {
                super::metrics::record(tool, "ok");
                // Structured content must be an object.
                let v = if v.is_object() {
                    v
                } else {
                    serde_json::json!({ "result": v })
                };
                Ok(CallToolResult::structured(v))
            }
            Err(e) => {
                super::metrics::record(tool, "error");
                let e = ApiError::from(e);
                let body = ToolError {
                    error: ToolErrorBody {
                        code: e.code,
                        message: e.message,
                        hint: e.hint,
                    },
                };
                Ok(CallToolResult::structured_error(
                    serde_json::to_value(body).unwrap_or_default(),
                ))
            }
        }
    }

    fn access(&self, ext: &Extensions) -> Result<WorkspaceAccess, ErrorData> {
        self.access_of(ext)
            .ok_or_else(|| ErrorData::invalid_request("not authenticated", None))
    }

    fn wrote(&self) {
        self.state.services.note_write();
    }
}

#[tool_router(router = tool_router, vis = "pub(super)")]
impl McpServer {
    #[tool(
        description = "List the projects of the workspace (newest first is not \
        guaranteed; page with `cursor`). Each project has its id, name and default database."
    )]
    async fn list_projects(&self, Parameters(a): Parameters<Page>, ext: Extensions) -> ToolResult {
        let access = self.access(&ext)?;
        let r = async {
            let page = page(a.cursor, a.limit)?;
            self.state
                .services
                .projects()
                .list(&access, None, page)
                .await
        }
        .await;
        self.answer("list_projects", r)
    }

    #[tool(
        description = "Create a project and (unless createDatabase is false) its default \
        database, with a connection string shown only in this answer."
    )]
    async fn create_project(
        &self,
        Parameters(a): Parameters<CreateProjectArgs>,
        ext: Extensions,
    ) -> ToolResult {
        let access = self.access(&ext)?;
        let body = CreateProject {
            create_database: a.create_database,
            name: a.name,
            region: a.region,
            ..Default::default()
        };
        let r = async {
            let w = access.workspace_wide_write()?;
            self.state.services.projects().create(&w, body).await
        }
        .await;
        self.wrote();
        self.answer("create_project", r)
    }

    #[tool(
        description = "Delete a project with all its databases, connection strings and \
        backups. Cannot be undone."
    )]
    async fn delete_project(
        &self,
        Parameters(a): Parameters<ProjectId>,
        ext: Extensions,
    ) -> ToolResult {
        let access = self.access(&ext)?;
        let access = match access.workspace_wide_write() {
            Ok(w) => w,
            Err(e) => return self.finish("delete_project", Err(e)),
        };
        let r = self
            .state
            .services
            .projects()
            .delete(&access, &a.project_id)
            .await;
        self.wrote();
        self.finish(
            "delete_project",
            r.map(|()| serde_json::json!({ "deleted": a.project_id })),
        )
    }

    #[tool(
        description = "List the databases of the workspace, or of one project, with their \
        status (provisioning, ready, recovering, failure) and region."
    )]
    async fn list_databases(
        &self,
        Parameters(a): Parameters<ListDatabasesArgs>,
        ext: Extensions,
    ) -> ToolResult {
        let access = self.access(&ext)?;
        let r = async {
            let page = page(a.cursor, a.limit)?;
            let dbs = self.state.services.databases();
            match a.project_id.as_deref() {
                Some(p) => dbs.list_in_project(&access, p, page).await,
                None => dbs.list(&access, None, None, page).await,
            }
        }
        .await;
        self.answer("list_databases", r)
    }

    #[tool(
        description = "Create a database in a project. The answer holds its first \
        connection string (shown only once). A new database may still be `provisioning`: \
        list_databases shows when it is `ready`."
    )]
    async fn create_database(
        &self,
        Parameters(a): Parameters<CreateDatabaseArgs>,
        ext: Extensions,
    ) -> ToolResult {
        let access = self.access(&ext)?;
        let access = match access.for_write() {
            Ok(w) => w,
            Err(e) => return self.finish("create_database", Err(e)),
        };
        let body = CreateDatabase {
            name: a.name,
            region: a.region,
            ..Default::default()
        };
        let r = self
            .state
            .services
            .databases()
            .create(&access, &a.project_id, body)
            .await;
        self.wrote();
        self.answer("create_database", r)
    }

    #[tool(
        description = "Delete a database (not a project's default one: delete the project \
        instead) with its connection strings and backups. Cannot be undone."
    )]
    async fn delete_database(
        &self,
        Parameters(a): Parameters<DatabaseId>,
        ext: Extensions,
    ) -> ToolResult {
        let access = self.access(&ext)?;
        let access = match access.for_write() {
            Ok(w) => w,
            Err(e) => return self.finish("delete_database", Err(e)),
        };
        let r = self
            .state
            .services
            .databases()
            .delete(&access, &a.database_id)
            .await;
        self.wrote();
        self.finish(
            "delete_database",
            r.map(|()| serde_json::json!({ "deleted": a.database_id })),
        )
    }

    #[tool(
        description = "List connection strings (login roles) of the workspace or of one \
        database. Passwords are never shown again after creation."
    )]
    async fn list_connection_strings(
        &self,
        Parameters(a): Parameters<ListConnectionsArgs>,
        ext: Extensions,
    ) -> ToolResult {
        let access = self.access(&ext)?;
        let r = async {
            let page = page(a.cursor, a.limit)?;
            self.state
                .services
                .connections()
                .list(&access, a.database_id.as_deref(), page)
                .await
        }
        .await;
        self.answer("list_connection_strings", r)
    }

    #[tool(
        description = "Create a connection string (a new login role) for a database. The \
        answer's connectionString holds the password; it is shown only this once."
    )]
    async fn create_connection_string(
        &self,
        Parameters(a): Parameters<CreateConnectionArgs>,
        ext: Extensions,
    ) -> ToolResult {
        let access = self.access(&ext)?;
        let access = match access.for_write() {
            Ok(w) => w,
            Err(e) => return self.finish("create_connection_string", Err(e)),
        };
        let r = self
            .state
            .services
            .connections()
            .create(&access, &a.database_id, &a.name)
            .await;
        self.wrote();
        self.answer("create_connection_string", r)
    }

    #[tool(
        description = "Delete a connection string: its login role stops working and its \
        sessions end."
    )]
    async fn delete_connection_string(
        &self,
        Parameters(a): Parameters<ConnectionId>,
        ext: Extensions,
    ) -> ToolResult {
        let access = self.access(&ext)?;
        let access = match access.for_write() {
            Ok(w) => w,
            Err(e) => return self.finish("delete_connection_string", Err(e)),
        };
        let r = self
            .state
            .services
            .connections()
            .delete(&access, &a.connection_id)
            .await;
        self.wrote();
        self.finish(
            "delete_connection_string",
            r.map(|()| serde_json::json!({ "deleted": a.connection_id })),
        )
    }

    #[tool(
        description = "List the backups of a database, newest first, with their status and \
        size."
    )]
    async fn list_backups(
        &self,
        Parameters(a): Parameters<ListBackupsArgs>,
        ext: Extensions,
    ) -> ToolResult {
        let access = self.access(&ext)?;
        let limit = a.limit.map(|l| l.to_string());
        let r = self
            .state
            .services
            .backups()
            .list(&access, &a.database_id, limit.as_deref())
            .await
            .and_then(|v| serde_json::to_value(v).map_err(DomainError::internal));
        self.finish("list_backups", r)
    }

    #[tool(
        description = "Start a backup of a ready database; list_backups shows when it is \
        completed."
    )]
    async fn create_backup(
        &self,
        Parameters(a): Parameters<DatabaseId>,
        ext: Extensions,
    ) -> ToolResult {
        let access = self.access(&ext)?;
        let access = match access.for_write() {
            Ok(w) => w,
            Err(e) => return self.finish("create_backup", Err(e)),
        };
        let r = self
            .state
            .services
            .backups()
            .create(&access, &a.database_id)
            .await
            .and_then(|v| serde_json::to_value(v).map_err(DomainError::internal));
        self.wrote();
        self.finish("create_backup", r)
    }

    #[tool(
        description = "Replace a database's contents: from a backup (source.type = backup), \
        or from a database of the project as it was at a time (source.type = database, \
        point-in-time recovery). The database is `recovering` until done."
    )]
    async fn restore_database(
        &self,
        Parameters(a): Parameters<RestoreArgs>,
        ext: Extensions,
    ) -> ToolResult {
        let access = self.access(&ext)?;
        let access = match access.for_write() {
            Ok(w) => w,
            Err(e) => return self.finish("restore_database", Err(e)),
        };
        let backups = self.state.services.backups();
        let r = match a.source {
            RestoreFrom::Backup {
                database_id,
                backup_id,
            } => {
                backups
                    .restore(&access, &a.target_database_id, &database_id, &backup_id)
                    .await
            }
            RestoreFrom::Database {
                database_id,
                timestamp,
            } => {
                backups
                    .restore_as_of(
                        &access,
                        &a.target_database_id,
                        &database_id,
                        Some(&timestamp),
                    )
                    .await
            }
        };
        self.wrote();
        self.answer("restore_database", r)
    }

    #[tool(description = "Usage of a database over a period: operations and storage.")]
    async fn get_usage(&self, Parameters(a): Parameters<UsageArgs>, ext: Extensions) -> ToolResult {
        let access = self.access(&ext)?;
        let r = self
            .state
            .services
            .usage()
            .database(
                &access,
                &a.database_id,
                a.start_date.as_deref(),
                a.end_date.as_deref(),
            )
            .await
            .and_then(|v| serde_json::to_value(v).map_err(DomainError::internal));
        self.finish("get_usage", r)
    }

    #[tool(
        description = "Run ONE SQL statement in a database, as the database's own role \
        (never a superuser). Read-only by default: the statement runs in a READ ONLY \
        transaction that is rolled back; set allowWrites to change data or schema (refused for \
        a read-only credential). Rows come back as objects keyed by column name, at most the \
        server's row cap (`truncated: true` when more), within its statement timeout."
    )]
    async fn execute_sql(
        &self,
        Parameters(a): Parameters<ExecuteSqlArgs>,
        ext: Extensions,
    ) -> ToolResult {
        let access = self.access(&ext)?;
        let r = self
            .state
            .services
            .sql()
            .execute(&access, &a.database_id, &a.sql, a.allow_writes)
            .await
            .and_then(|v| serde_json::to_value(v).map_err(DomainError::internal));
        if a.allow_writes {
            self.wrote();
        }
        self.finish("execute_sql", r)
    }

    #[tool(
        description = "Describe a database's schema: every table, view and materialized \
        view outside the system schemas with its columns (name, type, nullable, default), \
        primary key and foreign keys."
    )]
    async fn introspect_schema(
        &self,
        Parameters(a): Parameters<DatabaseId>,
        ext: Extensions,
    ) -> ToolResult {
        let access = self.access(&ext)?;
        let r = self
            .state
            .services
            .sql()
            .introspect(&access, &a.database_id)
            .await
            .map(|out| serde_json::json!({ "tables": out.rows, "truncated": out.truncated }));
        self.finish("introspect_schema", r)
    }
}

/// The tool set, for [`McpServer::new`].
pub(super) fn router() -> ToolRouter<McpServer> {
    McpServer::tool_router()
}
