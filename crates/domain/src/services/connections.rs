//! Connections: each one a Postgres login role of a database. Passwords are generated here,
//! sent to Postgres as SCRAM verifiers and shown to the caller once; so is the connection's
//! `prisma+postgres://` API key when that endpoint runs ([`super::accelerate`]), issued,
//! replaced and removed in the same transaction as the connection's own change. Views leave
//! their `url`s to http ([`crate::services::unlocated`]). A caller limited to one project
//! sees that project's connections only ([`Connections::visible`] and the list); changes take
//! a [`WriteAccess`].

use crate::access::{WorkspaceAccess, WriteAccess};
use std::collections::HashMap;

use pgfleet_api_types::connection::{
    Connection, CreatedConnection, DatabaseRef, DirectConnection, Endpoint, Endpoints,
};
use pgfleet_api_types::{ts, List};
use pgfleet_storage::{
    connections, databases, ConnectionRow, ConnectionState, DatabaseRow, DatabaseState,
    OperationKind,
};

use crate::ids::{new_id, CONNECTION};
use crate::intent::{Planned, Run};
use crate::services::validate_name;
use crate::{DomainError, PageRequest, Principal, Result};

/// Connections (login roles) of databases. Obtained from [`super::Services::connections`].
#[derive(Debug, Clone, Copy)]
pub struct Connections<'a> {
    pub(super) ctx: &'a std::sync::Arc<super::Ctx>,
}

impl Connections<'_> {
    pub(crate) fn view(
        &self,
        c: &ConnectionRow,
        db: &DatabaseRow,
        password: Option<&str>,
    ) -> Connection {
        let server = self.ctx.server(db.server_id.as_deref()).ok();
        let direct = server.map(|s| Endpoint {
            host: s.public_host.clone(),
            port: s.public_port,
            connection_string: password.map(|p| {
                self.ctx
                    .databases()
                    .connection_string(s, db, &c.role_name, p)
            }),
        });
        let direct_connection = match (server, password) {
            (Some(s), Some(p)) => Some(DirectConnection {
                host: format!("{}:{}", s.public_host, s.public_port),
                pass: p.to_string(),
                user: c.role_name.clone(),
            }),
            _ => None,
        };
        Connection {
            id: c.id.clone(),
            kind: "connection".to_string(),
            url: crate::services::unlocated(),
            name: c.name.clone(),
            created_at: ts(&c.created_at),
            connection_kind: c.kind.clone(),
            endpoints: Endpoints {
                direct,
                pooled: self.ctx.config().pooled.as_ref().map(|e| Endpoint {
                    host: e.host.clone(),
                    port: e.port,
                    connection_string: password.map(|p| {
                        format!(
                            "postgresql://{}:{p}@{}:{}/{}?sslmode=require",
                            c.role_name, e.host, e.port, db.pg_database
                        )
                    }),
                }),
                accelerate: self.ctx.config().accelerate.as_ref().map(|e| Endpoint {
                    host: e.host.clone(),
                    port: e.port,
                    connection_string: None,
                }),
            },
            direct_connection,
            database: DatabaseRef {
                id: db.id.clone(),
                url: crate::services::unlocated(),
                name: db.name.clone(),
            },
        }
    }

    fn created_view(
        &self,
        c: &ConnectionRow,
        db: &DatabaseRow,
        password: &str,
        accelerate_key: Option<&str>,
    ) -> CreatedConnection {
        let mut connection = self.view(c, db, Some(password));
        with_accelerate_key(&mut connection, accelerate_key);
        let host = connection
            .direct_connection
            .as_ref()
            .map(|d| d.host.clone());
        let connection_string = connection
            .endpoints
            .direct
            .as_ref()
            .and_then(|e| e.connection_string.clone())
            .unwrap_or_default();
        CreatedConnection {
            connection,
            connection_string,
            host,
            pass: Some(password.to_string()),
            user: Some(c.role_name.clone()),
        }
    }

    async fn visible(&self, p: &Principal, id: &str) -> Result<(ConnectionRow, DatabaseRow)> {
        let c = connections::get_in_workspace(self.ctx.store().pool(), &p.workspace_id, id)
            .await?
            .ok_or_else(|| DomainError::not_found("Connection", id))?;
        let db = databases::get(self.ctx.store().pool(), &c.database_id)
            .await?
            .filter(|d| {
                p.scope
                    .project_id
                    .as_deref()
                    .is_none_or(|only| only == d.project_id)
            })
            .ok_or_else(|| DomainError::not_found("Connection", id))?;
        Ok((c, db))
    }

    fn require_ready(db: &DatabaseRow) -> Result<()> {
        if db.status != DatabaseState::Ready {
            return Err(DomainError::conflict(
                format!(
                    "Database {} is {}; its connections cannot change now",
                    db.id, db.status
                ),
                Some("Retry when the database is ready.".to_string()),
            ));
        }
        Ok(())
    }

    pub async fn list(
        &self,
        access: &WorkspaceAccess,
        database_id: Option<&str>,
        page: PageRequest,
    ) -> Result<List<Connection>> {
        let p = access.principal();
        if let Some(id) = database_id {
            self.ctx.databases().visible(p, id).await?;
        }
        let rows = connections::list(
            self.ctx.store().pool(),
            &p.workspace_id,
            database_id,
            p.scope.project_id.as_deref(),
            page.after,
            page.fetch(),
        )
        .await?;
        let mut db_ids: Vec<String> = rows.iter().map(|c| c.database_id.clone()).collect();
        db_ids.sort();
        db_ids.dedup();
        // One query for the page's databases, not one per connection.
        let dbs: HashMap<String, DatabaseRow> =
            databases::get_many(self.ctx.store().pool(), &db_ids)
                .await?
                .into_iter()
                .map(|d| (d.id.clone(), d))
                .collect();
        let rows: Vec<(ConnectionRow, DatabaseRow)> = rows
            .into_iter()
            .filter_map(|c| dbs.get(&c.database_id).cloned().map(|d| (c, d)))
            .collect();
        Ok(page.finish(rows, |(c, _)| c.seq, |(c, d)| self.view(&c, &d, None)))
    }

    pub async fn get(&self, access: &WorkspaceAccess, id: &str) -> Result<Connection> {
        let p = access.principal();
        let (c, db) = self.visible(p, id).await?;
        Ok(self.view(&c, &db, None))
    }

    pub async fn create(
        &self,
        access: &WriteAccess,
        database_id: &str,
        name: &str,
    ) -> Result<CreatedConnection> {
        let p = access.principal();
        let db = self.ctx.databases().visible(p, database_id).await?;
        let name = name.trim();
        validate_name("name", name)?;
        Self::require_ready(&db)?;
        let creds = self.ctx.databases().new_credentials();
        let mut tx = self.ctx.store().begin().await?;
        let row = connections::insert(
            &mut *tx,
            &ConnectionRow {
                seq: 0,
                id: new_id(CONNECTION, self.ctx.rng()),
                database_id: db.id.clone(),
                name: name.to_string(),
                kind: "postgres".to_string(),
                role_name: self.ctx.databases().new_role_name(),
                scram_verifier: creds.verifier,
                status: ConnectionState::Creating,
                created_at: self.ctx.clock().now(),
                rotated_at: None,
            },
        )
        .await?;
        let key = self
            .ctx
            .accelerate()
            .issue(&mut tx, &row.id, &creds.password)
            .await?;
        let op = Planned::new(OperationKind::ConnectionCreate, &row.id);
        self.ctx.commit_intent(tx, [op], Run::Wait).await?;
        Ok(self.created_view(&row, &db, &creds.password, key.as_deref()))
    }

    /// New password; the old one stops working and its sessions are ended.
    pub async fn rotate(&self, access: &WriteAccess, id: &str) -> Result<CreatedConnection> {
        let p = access.principal();
        let (c, db) = self.visible(p, id).await?;
        Self::require_ready(&db)?;
        let creds = self.ctx.databases().new_credentials();
        let mut tx = self.ctx.store().begin().await?;
        connections::set_verifier(&mut *tx, &c.id, &creds.verifier, self.ctx.clock().now()).await?;
        // The old key's hash is replaced in this transaction: it stops resolving at commit.
        let key = self
            .ctx
            .accelerate()
            .issue(&mut tx, &c.id, &creds.password)
            .await?;
        let op = Planned::new(OperationKind::ConnectionRotate, &c.id);
        self.ctx.commit_intent(tx, [op], Run::Wait).await?;
        Ok(self.created_view(&c, &db, &creds.password, key.as_deref()))
    }

    pub async fn delete(&self, access: &WriteAccess, id: &str) -> Result<()> {
        let p = access.principal();
        let (c, db) = self.visible(p, id).await?;
        if db.status.is_busy() {
            return Self::require_ready(&db);
        }
        let mut tx = self.ctx.store().begin().await?;
        connections::set_status(&mut *tx, &c.id, ConnectionState::Deleting).await?;
        self.ctx.accelerate().revoke(&mut tx, &c.id).await?;
        if db.default_connection_id.as_deref() == Some(c.id.as_str()) {
            databases::set_default_connection(&mut *tx, &db.id, None).await?;
        }
        let op = Planned::new(OperationKind::ConnectionDelete, &c.id);
        self.ctx.commit_intent(tx, [op], Run::Wait).await
    }
}

/// Puts the one-time `prisma+postgres://` string into a created or rotated connection's
/// `endpoints.accelerate` (the key is known only then).
pub(crate) fn with_accelerate_key(connection: &mut Connection, key: Option<&str>) {
    let (Some(endpoint), Some(key)) = (connection.endpoints.accelerate.as_mut(), key) else {
        return;
    };
    let public = super::accelerate::AccelerateEndpoint {
        host: endpoint.host.clone(),
        port: endpoint.port,
    };
    endpoint.connection_string = Some(public.connection_string(key));
}
