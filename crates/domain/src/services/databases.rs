//! Databases: their intent (rows + the operation that creates them, [`crate::intent`]),
//! views (wire types whose `url`s http fills, see [`crate::services::unlocated`]), and the
//! API operations on them. A database's `restoreWindow` comes from [`super::pitr`]. A
//! caller limited to one project sees that project's databases only ([`Databases::visible`],
//! the lists and the view cache); changes take a [`WriteAccess`].

use crate::access::{WorkspaceAccess, WriteAccess};
use std::collections::HashMap;

use pgfleet_api_types::connection::DirectConnection;
use pgfleet_api_types::database::{
    CreateDatabase, CreatedDatabase, Database, DatabaseSource, DatabaseStatus, ProjectRef,
    UpdateDatabase,
};
use pgfleet_api_types::{ts, List};
use pgfleet_storage::{
    connections, databases, projects, ConnectionRow, ConnectionState, DatabaseRow, DatabaseState,
    OperationKind, ProjectRow, StorageError,
};

use crate::ids::{new_id, CONNECTION, DATABASE};
use crate::intent::{Planned, Run};
use crate::services::projects::DEFAULT_REGION;
use crate::services::{validate_logical_id, validate_name};
use crate::{DomainError, PageRequest, Principal, Result};

/// A database written to the metadata store, waiting for the reconciler; with the one-time
/// password (and `prisma+postgres://` API key, when that endpoint runs) of its default
/// connection.
pub(crate) struct DatabaseIntent {
    pub db: DatabaseRow,
    pub conn: ConnectionRow,
    pub password: String,
    pub accelerate_key: Option<String>,
    pub project: ProjectRow,
}

/// New credentials of a login role.
pub(crate) struct Credentials {
    pub password: String,
    pub verifier: String,
}

/// Databases: the resource, its views and its lifecycle. Obtained from [`super::Services::databases`].
#[derive(Debug, Clone, Copy)]
pub struct Databases<'a> {
    pub(super) ctx: &'a std::sync::Arc<super::Ctx>,
}

impl Databases<'_> {
    pub(crate) fn new_credentials(&self) -> Credentials {
        let password = self.ctx.rng().with(pgfleet_auth::random_password);
        let verifier = pgfleet_dataplane::driver::scram_verifier(&password);
        Credentials { password, verifier }
    }

    /// An opaque Postgres role name for a connection.
    pub(crate) fn new_role_name(&self) -> String {
        new_id("u_", self.ctx.rng())
    }

    /// Writes a new database and its default connection, on a server of the region with room
    /// for its connection limit (refused, with nothing written, when the workspace's quota or
    /// the region's capacity has no room for it); returns them with the operation that will
    /// create them, for [`Ctx::commit_intent`].
    #[expect(
        clippy::too_many_arguments,
        reason = "each is a column of the new database"
    )]
    pub(crate) async fn intent(
        &self,
        tx: &mut sqlx::PgConnection,
        project: &ProjectRow,
        region_id: &str,
        name: &str,
        is_default: bool,
        logical_id: Option<String>,
        source: Option<serde_json::Value>,
    ) -> Result<(DatabaseIntent, Planned)> {
        let connection_limit = self.ctx.config().database_connection_limit;
        let server_id = self
            .ctx
            .capacity()
            .reserve_slots(tx, &project.workspace_id, region_id, connection_limit)
            .await?;
        let id = new_id(DATABASE, self.ctx.rng());
        let body = id.trim_start_matches(DATABASE).to_string();
        let conn_id = new_id(CONNECTION, self.ctx.rng());
        let now = self.ctx.clock().now();
        let row = DatabaseRow {
            seq: 0,
            id: id.clone(),
            project_id: project.id.clone(),
            name: name.to_string(),
            region_id: region_id.to_string(),
            server_id: Some(server_id),
            status: DatabaseState::Provisioning,
            is_default,
            pg_database: format!("d_{body}"),
            owner_role: format!("d_{body}_owner"),
            connection_limit,
            source: Some(source.unwrap_or_else(|| serde_json::json!({ "type": "empty" }))),
            branch_id: None,
            logical_id: logical_id.clone(),
            default_connection_id: Some(conn_id.clone()),
            created_at: now,
        };
        let db = match databases::insert(&mut *tx, &row).await {
            Ok(d) => d,
            Err(e) if e.is_unique_violation() => {
                return Err(if is_default {
                    DomainError::bad_request_hint(
                        "Default database already exists",
                        "Create the database with isDefault false.",
                    )
                } else {
                    DomainError::conflict(
                        format!(
                            "A database with logicalId {:?} already exists in this project",
                            logical_id.unwrap_or_default()
                        ),
                        None,
                    )
                })
            }
            Err(e) => return Err(e.into()),
        };
        let creds = self.new_credentials();
        let conn = connections::insert(
            &mut *tx,
            &ConnectionRow {
                seq: 0,
                id: conn_id,
                database_id: db.id.clone(),
                name: "default".to_string(),
                kind: "postgres".to_string(),
                role_name: self.new_role_name(),
                scram_verifier: creds.verifier,
                status: ConnectionState::Creating,
                created_at: now,
                rotated_at: None,
            },
        )
        .await?;
        let accelerate_key = self
            .ctx
            .accelerate()
            .issue(&mut *tx, &conn.id, &creds.password)
            .await?;
        let op = Planned::new(OperationKind::DatabaseCreate, &db.id);
        let intent = DatabaseIntent {
            db,
            conn,
            password: creds.password,
            accelerate_key,
            project: project.clone(),
        };
        Ok((intent, op))
    }

    /// The API's status of a stored state. A `deleting` row is never listed; should one be
    /// shown (a create answered while a delete raced it) it reads `provisioning`.
    fn status_view(status: DatabaseState) -> DatabaseStatus {
        match status {
            DatabaseState::Ready => DatabaseStatus::Ready,
            DatabaseState::Recovering => DatabaseStatus::Recovering,
            DatabaseState::Failure => DatabaseStatus::Failure,
            DatabaseState::Provisioning | DatabaseState::Deleting => DatabaseStatus::Provisioning,
        }
    }

    pub(crate) fn view(
        &self,
        db: &DatabaseRow,
        conns: &[ConnectionRow],
        project: Option<&ProjectRow>,
        secrets: &HashMap<String, String>,
    ) -> Database {
        Database {
            id: db.id.clone(),
            kind: "database".to_string(),
            url: crate::services::unlocated(),
            name: db.name.clone(),
            status: Self::status_view(db.status),
            created_at: ts(&db.created_at),
            is_default: db.is_default,
            default_connection_id: db.default_connection_id.clone(),
            connections: conns
                .iter()
                .filter(|c| c.status != ConnectionState::Deleting)
                .map(|c| {
                    self.ctx
                        .connections()
                        .view(c, db, secrets.get(&c.id).map(String::as_str))
                })
                .collect(),
            project: project.map(|p| ProjectRef {
                id: p.id.clone(),
                url: crate::services::unlocated(),
                name: p.name.clone(),
            }),
            region: Some(self.ctx.regions().region_ref(&db.region_id)),
            source: db
                .source
                .clone()
                .and_then(|s| serde_json::from_value::<DatabaseSource>(s).ok()),
            branch_id: db.branch_id.clone(),
            logical_id: db.logical_id.clone(),
            restore_window: None,
        }
    }

    /// The create response: fresh state, the default connection's credentials shown once.
    pub(crate) async fn created_view(
        &self,
        intent: &DatabaseIntent,
        with_project: bool,
    ) -> Result<CreatedDatabase> {
        // Called after the create committed: the answer must not become an error (a client
        // told "unavailable" retries and creates a second database) because the store went
        // away since. The row as written is what the re-read would show, less progress.
        let db = databases::get(self.ctx.store().pool(), &intent.db.id)
            .await
            .ok()
            .flatten()
            .unwrap_or_else(|| intent.db.clone());
        let secrets = HashMap::from([(intent.conn.id.clone(), intent.password.clone())]);
        let conns = vec![intent.conn.clone()];
        let mut database = self.view(
            &db,
            &conns,
            with_project.then_some(&intent.project),
            &secrets,
        );
        for c in &mut database.connections {
            super::connections::with_accelerate_key(c, intent.accelerate_key.as_deref());
        }
        // Like the re-read above: a failed read leaves the window out, not the answer.
        if let Ok(windows) = self.ctx.pitr().rows().await {
            database.restore_window = self.ctx.pitr().view(&db, &windows);
        }
        let server = self.ctx.server(db.server_id.as_deref())?;
        let connection_string =
            Some(self.connection_string(server, &db, &intent.conn.role_name, &intent.password));
        Ok(CreatedDatabase {
            api_keys: database
                .connections
                .iter()
                .cloned()
                .map(Into::into)
                .collect(),
            database,
            connection_string,
            direct_connection: Some(DirectConnection {
                host: format!("{}:{}", server.public_host, server.public_port),
                pass: intent.password.clone(),
                user: intent.conn.role_name.clone(),
            }),
        })
    }

    /// A database the principal may see, or 404: one of its workspace and, for a caller
    /// limited to one project, of that project (another answers exactly like a missing one).
    /// Every service that acts on a database for a caller loads it here.
    pub(crate) async fn visible(&self, p: &Principal, id: &str) -> Result<DatabaseRow> {
        databases::get_in_workspace(self.ctx.store().pool(), &p.workspace_id, id)
            .await?
            .filter(|d| in_scope(p, &d.project_id))
            .ok_or_else(|| DomainError::not_found("Database", id))
    }

    async fn build_views(&self, rows: Vec<DatabaseRow>) -> Result<Vec<Database>> {
        let ids: Vec<String> = rows.iter().map(|d| d.id.clone()).collect();
        let mut project_ids: Vec<String> = rows.iter().map(|d| d.project_id.clone()).collect();
        project_ids.sort();
        project_ids.dedup();
        // Two independent reads: run them at once.
        let (conns, projs) = tokio::join!(
            connections::of_databases(self.ctx.store().pool(), &ids),
            projects::get_many(self.ctx.store().pool(), &project_ids)
        );
        let mut by_db: HashMap<String, Vec<ConnectionRow>> = HashMap::new();
        for c in conns? {
            by_db.entry(c.database_id.clone()).or_default().push(c);
        }
        let projects_by_id: HashMap<String, ProjectRow> =
            projs?.into_iter().map(|p| (p.id.clone(), p)).collect();
        let none = HashMap::new();
        let windows = self.ctx.pitr().rows().await?;
        Ok(rows
            .iter()
            .map(|d| {
                let conns = by_db.get(&d.id).map(Vec::as_slice).unwrap_or(&[]);
                let mut v = self.view(d, conns, projects_by_id.get(&d.project_id), &none);
                v.restore_window = self.ctx.pitr().view(d, &windows);
                v
            })
            .collect())
    }

    pub async fn list(
        &self,
        access: &WorkspaceAccess,
        project_id: Option<&str>,
        logical_id: Option<&str>,
        page: PageRequest,
    ) -> Result<List<Database>> {
        let p = access.principal();
        let project_id = match (p.scope.project_id.as_deref(), project_id) {
            // Another project's databases: none this caller can see.
            (Some(only), Some(asked)) if only != asked => {
                return Ok(page.finish(Vec::<Database>::new(), |_| 0, |d| d))
            }
            (Some(only), _) => Some(only),
            (None, asked) => asked,
        };
        let rows = databases::list(
            self.ctx.store().pool(),
            &p.workspace_id,
            project_id,
            logical_id,
            page.after,
            page.fetch(),
        )
        .await?;
        let has_more = rows.len() as i64 > page.limit;
        let mut rows = rows;
        rows.truncate(page.limit as usize);
        let last_seq = rows.last().map(|d| d.seq);
        let views = self.build_views(rows).await?;
        Ok(List {
            data: views,
            pagination: pgfleet_api_types::Pagination {
                next_cursor: if has_more {
                    last_seq.map(crate::page::encode_cursor)
                } else {
                    None
                },
                has_more,
            },
        })
    }

    /// Databases of one project (404 when the project is not visible).
    pub async fn list_in_project(
        &self,
        access: &WorkspaceAccess,
        project_id: &str,
        page: PageRequest,
    ) -> Result<List<Database>> {
        let p = access.principal();
        self.ctx.projects().visible(p, project_id).await?;
        self.list(access, Some(project_id), None, page).await
    }

    pub async fn get(&self, access: &WorkspaceAccess, id: &str) -> Result<Database> {
        let p = access.principal();
        if let Some(v) = self.ctx.view_cache().get(&p.workspace_id, id) {
            let project = v
                .project
                .as_ref()
                .map(|r| r.id.as_str())
                .unwrap_or_default();
            if !in_scope(p, project) {
                return Err(DomainError::not_found("Database", id));
            }
            return Ok(v);
        }
        let generation = self.ctx.view_cache().generation();
        let row = self.visible(p, id).await?;
        let view = self
            .build_views(vec![row])
            .await?
            .into_iter()
            .next()
            .ok_or_else(|| DomainError::not_found("Database", id))?;
        self.ctx
            .view_cache()
            .put(&p.workspace_id, view.clone(), generation);
        Ok(view)
    }

    pub async fn create(
        &self,
        access: &WriteAccess,
        project_id: &str,
        body: CreateDatabase,
    ) -> Result<CreatedDatabase> {
        let p = access.principal();
        let project = self.ctx.projects().visible(p, project_id).await?;
        if body.branch_id.is_some() || body.branch_git_name.is_some() {
            return Err(DomainError::bad_request(
                "Branches are not supported by this server; omit branchId and branchGitName",
            ));
        }
        let name = body
            .name
            .as_deref()
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .unwrap_or(&project.name)
            .to_string();
        validate_name("name", &name)?;
        if let Some(l) = body.logical_id.as_deref() {
            validate_logical_id(l)?;
        }
        let is_default = body.is_default.unwrap_or(false);
        let from = body
            .from_database
            .as_ref()
            .map(|f| (f.id.as_str(), f.backup_id.as_deref()));
        let source = self
            .ctx
            .backups()
            .resolve_source(p, body.source.as_ref(), from)
            .await?;

        let mut tx = self.ctx.store().begin().await?;
        projects::lock(&mut tx, &project.id).await?;
        let existing = databases::all_of_project(&mut *tx, &project.id).await?;
        let region_id = match body.region.as_deref() {
            Some("inherit") => project
                .default_region
                .clone()
                .or_else(|| {
                    existing
                        .iter()
                        .find(|d| d.is_default)
                        .map(|d| d.region_id.clone())
                })
                .unwrap_or_else(|| DEFAULT_REGION.to_string()),
            Some(r) => r.to_string(),
            None => DEFAULT_REGION.to_string(),
        };
        self.ctx.regions().available(&region_id)?;
        if is_default && existing.iter().any(|d| d.is_default) {
            return Err(DomainError::bad_request_hint(
                "Default database already exists",
                "A project has one default database; create this one with isDefault false.",
            ));
        }
        let (intent, op) = self
            .intent(
                &mut tx,
                &project,
                &region_id,
                &name,
                is_default,
                body.logical_id.clone(),
                source,
            )
            .await?;
        self.ctx.commit_intent(tx, [op], Run::Wait).await?;
        self.created_view(&intent, true).await
    }

    pub async fn update(
        &self,
        access: &WriteAccess,
        id: &str,
        body: UpdateDatabase,
    ) -> Result<Database> {
        let p = access.principal();
        let row = self.visible(p, id).await?;
        if body.branch_id.is_some() || body.branch_git_name.is_some() {
            return Err(DomainError::bad_request(
                "Branches are not supported by this server; omit branchId and branchGitName",
            ));
        }
        if let Some(name) = body.name.as_deref() {
            validate_name("name", name.trim())?;
        }
        if let Some(l) = body.logical_id.as_deref() {
            validate_logical_id(l)?;
        }
        let mut tx = self.ctx.store().begin().await?;
        if let Some(name) = body.name.as_deref() {
            databases::rename(&mut *tx, &row.id, name.trim()).await?;
        }
        if let Some(l) = body.logical_id.as_deref() {
            match databases::set_logical_id(&mut *tx, &row.id, l).await {
                Ok(()) => {}
                Err(e) if e.is_unique_violation() => {
                    return Err(DomainError::conflict(
                        format!("A database with logicalId {l:?} already exists in this project"),
                        None,
                    ))
                }
                Err(e) => return Err(e.into()),
            }
        }
        tx.commit().await.map_err(StorageError::from)?;
        self.ctx.note_write();
        self.get(access, id).await
    }

    pub async fn delete(&self, access: &WriteAccess, id: &str) -> Result<()> {
        let p = access.principal();
        let row = self.visible(p, id).await?;
        if row.is_default {
            return Err(DomainError::forbidden(
                "Cannot delete the default database of a project",
                Some("Delete the project instead.".to_string()),
            ));
        }
        let mut tx = self.ctx.store().begin().await?;
        let current = databases::get(&mut *tx, &row.id).await?;
        let Some(current) = current.filter(|d| d.status != DatabaseState::Deleting) else {
            return Err(DomainError::not_found("Database", id));
        };
        if current.status.is_busy() {
            return Err(DomainError::conflict(
                format!(
                    "Database {id} is {} and cannot be deleted now",
                    current.status
                ),
                Some("Retry when it is ready.".to_string()),
            ));
        }
        databases::set_status(&mut *tx, &row.id, DatabaseState::Deleting).await?;
        let op = Planned::new(OperationKind::DatabaseDelete, &row.id);
        self.ctx.commit_intent(tx, [op], Run::Wait).await
    }

    pub(crate) fn connection_string(
        &self,
        server: &pgfleet_dataplane::PgServer,
        db: &DatabaseRow,
        user: &str,
        password: &str,
    ) -> String {
        format!(
            "postgresql://{user}:{password}@{}:{}/{}?sslmode=require",
            server.public_host, server.public_port, db.pg_database
        )
    }
}

/// True when `p` may reach project `project_id` (every project, or its one).
fn in_scope(p: &Principal, project_id: &str) -> bool {
    p.scope
        .project_id
        .as_deref()
        .is_none_or(|only| only == project_id)
}
