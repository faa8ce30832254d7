//! The [`Driver`]: what pgfleet does to a Postgres server to place a tenant database on it.
//!
//! A tenant database is hardened: it has an opaque name, an owner role that cannot log in,
//! `CONNECT`/`TEMP` revoked from `PUBLIC`, and a connection limit. Each connection of the API
//! is a `LOGIN` role with no special attributes, a member of the owner role, whose sessions
//! start as the owner (`ALTER ROLE … SET role`) so that what it creates belongs to the
//! database, not to the connection. Passwords reach Postgres only as SCRAM verifiers.
//!
//! Every method is idempotent (the reconciler may repeat a step after a crash) and checks the
//! catalog before acting, since `CREATE DATABASE` cannot run in a transaction and
//! `CREATE ROLE` has no `IF NOT EXISTS`.

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;

use crate::{PgServer, Result};

/// A tenant database as the server knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatabaseSpec {
    pub pg_database: String,
    pub owner_role: String,
    pub connection_limit: i32,
}

/// A login role (one API connection).
#[derive(Clone, PartialEq, Eq)]
pub struct LoginSpec {
    pub role: String,
    /// `SCRAM-SHA-256$…` verifier; the plaintext never leaves the API response.
    pub scram_verifier: String,
    pub connection_limit: i32,
}

impl std::fmt::Debug for LoginSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginSpec")
            .field("role", &self.role)
            .finish_non_exhaustive()
    }
}

#[async_trait]
pub trait Driver: Send + Sync + std::fmt::Debug {
    /// Closes the server's shared databases (`postgres`, `template1`) to tenants.
    async fn harden_server(&self, server: &PgServer) -> Result<()>;
    /// Creates the owner role and the database if missing, and (re)applies the hardening.
    async fn ensure_database(&self, server: &PgServer, db: &DatabaseSpec) -> Result<()>;
    /// Drops the database (terminating its sessions) and its owner role, if present.
    async fn drop_database(&self, server: &PgServer, db: &DatabaseSpec) -> Result<()>;
    /// Creates the login role or brings it to `login` (password, limit, membership). With
    /// `terminate`, sessions opened with an older password are ended.
    async fn ensure_login(
        &self,
        server: &PgServer,
        db: &DatabaseSpec,
        login: &LoginSpec,
        terminate: bool,
    ) -> Result<()>;
    /// Ends the role's sessions and drops it, if present.
    async fn drop_login(&self, server: &PgServer, db: &DatabaseSpec, role: &str) -> Result<()>;
    /// Whether the database exists on the server.
    async fn database_exists(&self, server: &PgServer, pg_database: &str) -> Result<bool>;
    /// Whether the role exists on the server.
    async fn role_exists(&self, server: &PgServer, role: &str) -> Result<bool>;
}

/// The driver for real PostgreSQL servers, over superuser sessions kept in a small pool.
#[derive(Debug, Default)]
pub struct PgDriver {
    idle: Mutex<HashMap<String, Vec<tokio_postgres::Client>>>,
}

/// Superuser sessions kept open per server.
const IDLE_PER_SERVER: usize = 4;

impl PgDriver {
    pub fn new() -> Self {
        Self::default()
    }

    /// A superuser session: an idle one if there is, else a new one.
    async fn session(&self, server: &PgServer) -> Result<tokio_postgres::Client> {
        loop {
            let cached = self
                .idle
                .lock()
                .ok()
                .and_then(|mut m| m.get_mut(&server.key).and_then(Vec::pop));
            match cached {
                Some(c) if !c.is_closed() => return Ok(c),
                Some(_) => continue,
                None => return server.admin_client(None).await,
            }
        }
    }

    /// Gives a session back after a successful step (a failed one is dropped and closed).
    fn release(&self, server: &PgServer, client: tokio_postgres::Client) {
        if client.is_closed() {
            return;
        }
        if let Ok(mut idle) = self.idle.lock() {
            let v = idle.entry(server.key.clone()).or_default();
            if v.len() < IDLE_PER_SERVER {
                v.push(client);
            }
        }
    }

    async fn exists(&self, server: &PgServer, sql: &str, name: &str) -> Result<bool> {
        let s = self.session(server).await?;
        let found = s.query_opt(sql, &[&name]).await?.is_some();
        self.release(server, s);
        Ok(found)
    }
}

/// `"ident"` with embedded quotes doubled.
pub fn quote_ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

/// `'literal'` with embedded quotes doubled (standard_conforming_strings is on).
pub fn quote_literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

const ROLE_EXISTS: &str = "SELECT 1 FROM pg_roles WHERE rolname = $1";
const DB_EXISTS: &str = "SELECT 1 FROM pg_database WHERE datname = $1";

#[async_trait]
impl Driver for PgDriver {
    async fn harden_server(&self, server: &PgServer) -> Result<()> {
        let s = self.session(server).await?;
        s.batch_execute("REVOKE ALL ON DATABASE postgres FROM PUBLIC; REVOKE ALL ON DATABASE template1 FROM PUBLIC;")
            .await?;
        self.release(server, s);
        Ok(())
    }

    async fn ensure_database(&self, server: &PgServer, db: &DatabaseSpec) -> Result<()> {
        let s = self.session(server).await?;
        let owner = quote_ident(&db.owner_role);
        let name = quote_ident(&db.pg_database);
        if s.query_opt(ROLE_EXISTS, &[&db.owner_role]).await?.is_none() {
            s.batch_execute(&format!(
                "CREATE ROLE {owner} NOLOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS"
            ))
            .await?;
        }
        if s.query_opt(DB_EXISTS, &[&db.pg_database]).await?.is_none() {
            s.batch_execute(&format!(
                "CREATE DATABASE {name} OWNER {owner} CONNECTION LIMIT {}",
                db.connection_limit
            ))
            .await?;
        }
        s.batch_execute(&format!(
            "ALTER DATABASE {name} OWNER TO {owner}; \
             ALTER DATABASE {name} CONNECTION LIMIT {limit}; \
             REVOKE ALL ON DATABASE {name} FROM PUBLIC; \
             GRANT CONNECT, TEMPORARY ON DATABASE {name} TO {owner};",
            limit = db.connection_limit
        ))
        .await?;
        self.release(server, s);
        Ok(())
    }

    async fn drop_database(&self, server: &PgServer, db: &DatabaseSpec) -> Result<()> {
        let s = self.session(server).await?;
        s.batch_execute(&format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            quote_ident(&db.pg_database)
        ))
        .await?;
        s.batch_execute(&format!(
            "DROP ROLE IF EXISTS {}",
            quote_ident(&db.owner_role)
        ))
        .await?;
        self.release(server, s);
        Ok(())
    }

    async fn ensure_login(
        &self,
        server: &PgServer,
        db: &DatabaseSpec,
        login: &LoginSpec,
        terminate: bool,
    ) -> Result<()> {
        let s = self.session(server).await?;
        let role = quote_ident(&login.role);
        let owner = quote_ident(&db.owner_role);
        let verifier = quote_literal(&login.scram_verifier);
        let attrs = format!(
            "LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS INHERIT CONNECTION LIMIT {} PASSWORD {verifier}",
            login.connection_limit
        );
        if s.query_opt(ROLE_EXISTS, &[&login.role]).await?.is_none() {
            s.batch_execute(&format!("CREATE ROLE {role} {attrs}"))
                .await?;
        } else {
            s.batch_execute(&format!("ALTER ROLE {role} {attrs}"))
                .await?;
        }
        s.batch_execute(&format!(
            "GRANT {owner} TO {role}; ALTER ROLE {role} SET role = {}",
            quote_literal(&db.owner_role)
        ))
        .await?;
        if terminate {
            s.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1 AND pid <> pg_backend_pid()",
                &[&login.role],
            )
            .await?;
        }
        self.release(server, s);
        Ok(())
    }

    async fn drop_login(&self, server: &PgServer, db: &DatabaseSpec, role: &str) -> Result<()> {
        let s = self.session(server).await?;
        if s.query_opt(ROLE_EXISTS, &[&role]).await?.is_none() {
            self.release(server, s);
            return Ok(());
        }
        // No new sessions, then end the open ones.
        s.batch_execute(&format!("ALTER ROLE {} NOLOGIN", quote_ident(role)))
            .await?;
        s.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1",
            &[&role],
        )
        .await?;
        match s
            .batch_execute(&format!("DROP ROLE IF EXISTS {}", quote_ident(role)))
            .await
        {
            Ok(()) => {
                self.release(server, s);
                Ok(())
            }
            Err(e)
                if e.code()
                    == Some(&tokio_postgres::error::SqlState::DEPENDENT_OBJECTS_STILL_EXIST) =>
            {
                // The role created objects as itself (after RESET ROLE): hand them to the
                // database's owner, then drop it.
                let exists = s.query_opt(DB_EXISTS, &[&db.pg_database]).await?.is_some();
                if exists {
                    let inside = server.admin_client(Some(&db.pg_database)).await?;
                    inside
                        .batch_execute(&format!(
                            "REASSIGN OWNED BY {r} TO {o}; DROP OWNED BY {r};",
                            r = quote_ident(role),
                            o = quote_ident(&db.owner_role)
                        ))
                        .await?;
                }
                s.batch_execute(&format!("DROP ROLE IF EXISTS {}", quote_ident(role)))
                    .await?;
                self.release(server, s);
                Ok(())
            }
            Err(e) => Err(e.into()),
        }
    }

    async fn database_exists(&self, server: &PgServer, pg_database: &str) -> Result<bool> {
        self.exists(server, DB_EXISTS, pg_database).await
    }

    async fn role_exists(&self, server: &PgServer, role: &str) -> Result<bool> {
        self.exists(server, ROLE_EXISTS, role).await
    }
}

/// A SCRAM-SHA-256 verifier for a password (4096 iterations, random salt), as PostgreSQL
/// stores it.
pub fn scram_verifier(password: &str) -> String {
    postgres_protocol::password::scram_sha_256(password.as_bytes())
}
