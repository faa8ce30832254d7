//! The [`Driver`]: what pgfleet does to a Postgres server to place a tenant database on it.
//!
//! A tenant database is hardened: it has an opaque name, belongs to pgfleet's superuser (so
//! its limits and settings are out of the tenant's reach, see [`crate::tenant`]), and its
//! owner role, which cannot log in, gets `CONNECT`, `CREATE`, `TEMPORARY` and schema
//! `public`; `PUBLIC` gets nothing. Each connection of the API is a `LOGIN` role with no
//! special attributes, a member of the owner role, whose sessions start as the owner
//! (`ALTER ROLE … SET role`) so that what it creates belongs to the database, not to the
//! connection. Passwords reach Postgres only as SCRAM verifiers, in statements PostgreSQL
//! neither logs nor keeps in pg_stat_statements ([`crate::tenant::run_secret`]).
//!
//! Every method is idempotent (the reconciler may repeat a step after a crash) and checks the
//! catalog before acting, since `CREATE DATABASE` cannot run in a transaction and
//! `CREATE ROLE` has no `IF NOT EXISTS`.

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;

use crate::tenant::{self, Drift, ExpectedLogin, TenantLimits};
use crate::{PgServer, Result};

/// A tenant database as the server knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatabaseSpec {
    pub pg_database: String,
    pub owner_role: String,
    pub connection_limit: i32,
    /// Database-level defaults pgfleet sets (`temp_file_limit`, timeouts).
    pub limits: TenantLimits,
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

/// Activity and size of a tenant database, as read from its server's statistics. The
/// counters are cumulative: they only grow, until the server loses its statistics (a crash,
/// a stats reset, the database being replaced by a restore).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatabaseUsage {
    pub pg_database: String,
    /// Statements run by non-superuser roles (sum of `pg_stat_statements.calls`); `None` when
    /// pg_stat_statements is not available on the server.
    pub statements: Option<i64>,
    /// Committed plus rolled back transactions (`pg_stat_database`).
    pub xacts: i64,
    /// `pg_database_size`.
    pub size_bytes: i64,
}

#[async_trait]
pub trait Driver: Send + Sync + std::fmt::Debug {
    /// Closes the server's shared databases (`postgres`, `template1`) to tenants.
    async fn harden_server(&self, server: &PgServer) -> Result<()>;
    /// Creates the owner role and the database if missing, and (re)applies the hardening:
    /// ownership, connection limit, privileges, settings, the owner role's attributes.
    async fn ensure_database(&self, server: &PgServer, db: &DatabaseSpec) -> Result<()>;
    /// Drops the database (terminating its sessions) and its owner role, if present.
    async fn drop_database(&self, server: &PgServer, db: &DatabaseSpec) -> Result<()>;
    /// Creates the login role or brings it to `login` (password, limit, membership, role
    /// settings). With `terminate`, sessions opened with an older password are ended.
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
    /// Usage counters of the named databases (one read-only round trip for all; a database
    /// missing from the server is missing from the answer).
    async fn database_usage(
        &self,
        server: &PgServer,
        pg_databases: &[String],
    ) -> Result<Vec<DatabaseUsage>>;
    /// Creates an empty scratch database owned by `owner` (dropping a leftover first), closed
    /// to every non-superuser session (`CONNECTION LIMIT 0`) until `ensure_database` or
    /// `swap_database` puts the database's own limit on it.
    async fn recreate_database(&self, server: &PgServer, name: &str, owner: &str) -> Result<()>;
    /// Drops a database if it exists, ending its sessions.
    async fn drop_database_named(&self, server: &PgServer, name: &str) -> Result<()>;
    /// Puts `replacement` in place of `db.pg_database`: the current one is renamed to
    /// `retired` (its sessions are ended first), then dropped. Idempotent: it picks up
    /// wherever a crash left it.
    async fn swap_database(
        &self,
        server: &PgServer,
        db: &DatabaseSpec,
        replacement: &str,
        retired: &str,
    ) -> Result<()>;
    /// What differs on the server from what pgfleet set for `db` and its `logins` (an empty
    /// answer: nothing). Reads the server's shared catalogs only.
    async fn drift(
        &self,
        server: &PgServer,
        db: &DatabaseSpec,
        logins: &[LoginSpec],
    ) -> Result<Vec<Drift>>;
    /// Puts the database in the storage quota's read-only mode (`Some(quota_bytes)`) or
    /// takes it out (`None`); see [`crate::quota`]. Idempotent.
    async fn set_quota_mode(
        &self,
        server: &PgServer,
        pg_database: &str,
        over_quota: Option<i64>,
    ) -> Result<()>;
    /// A counter that moves when rows are written (inserted, updated or deleted), to skip
    /// backing up a database that did not change.
    async fn write_activity(&self, server: &PgServer, pg_database: &str) -> Result<i64>;
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

/// Attributes of a database's owner role: it cannot log in and has no password.
const OWNER_ATTRIBUTES: &str =
    "NOLOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS PASSWORD NULL";

const ROLE_EXISTS: &str = "SELECT 1 FROM pg_roles WHERE rolname = $1";
const DB_EXISTS: &str = "SELECT 1 FROM pg_database WHERE datname = $1";
/// Size and transactions. As superuser, `pg_database_size` of a database dropped meanwhile
/// is NULL rather than an error.
const USAGE_SQL: &str = "SELECT d.datname::text, coalesce(pg_database_size(d.oid), 0)::bigint, \
     coalesce(s.xact_commit + s.xact_rollback, 0)::bigint \
     FROM pg_database d LEFT JOIN pg_stat_database s ON s.datid = d.oid \
     WHERE d.datname = ANY($1)";
/// Statements of tenants' roles: superusers (pgfleet's own maintenance, pg_dump) are left out.
/// `pg_stat_statements(false)` skips reading the query texts.
const STATEMENTS_SQL: &str = "SELECT d.datname::text, coalesce(sum(p.calls), 0)::bigint \
     FROM pg_database d LEFT JOIN pg_stat_statements(false) p ON p.dbid = d.oid \
       AND p.userid NOT IN (SELECT oid FROM pg_roles WHERE rolsuper) \
     WHERE d.datname = ANY($1) GROUP BY d.datname";

#[async_trait]
impl Driver for PgDriver {
    async fn harden_server(&self, server: &PgServer) -> Result<()> {
        let s = self.session(server).await?;
        s.batch_execute("REVOKE ALL ON DATABASE postgres FROM PUBLIC; REVOKE ALL ON DATABASE template1 FROM PUBLIC;")
            .await?;
        // Usage sampling reads statement counts from here; without it, transactions are used.
        if let Err(e) = s
            .batch_execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
            .await
        {
            tracing::debug!(server = %server.key, error = %e, "pg_stat_statements not created");
        }
        self.release(server, s);
        Ok(())
    }

    async fn ensure_database(&self, server: &PgServer, db: &DatabaseSpec) -> Result<()> {
        let s = self.session(server).await?;
        let owner = quote_ident(&db.owner_role);
        let name = quote_ident(&db.pg_database);
        if s.query_opt(ROLE_EXISTS, &[&db.owner_role]).await?.is_none() {
            s.batch_execute(&format!("CREATE ROLE {owner} {OWNER_ATTRIBUTES}"))
                .await?;
        }
        if s.query_opt(DB_EXISTS, &[&db.pg_database]).await?.is_none() {
            s.batch_execute(&format!(
                "CREATE DATABASE {name} CONNECTION LIMIT {}",
                db.connection_limit
            ))
            .await?;
        }
        // One transaction: the tenant never sees a half-applied state.
        let reset_owner = tenant::reset_role_settings_sql(&s, &db.owner_role, None).await?;
        s.batch_execute(&format!(
            "BEGIN; \
             ALTER ROLE {owner} {OWNER_ATTRIBUTES}; {reset_owner} \
             ALTER DATABASE {name} OWNER TO CURRENT_USER; \
             ALTER DATABASE {name} CONNECTION LIMIT {limit}; \
             REVOKE ALL ON DATABASE {name} FROM PUBLIC; \
             REVOKE ALL ON DATABASE {name} FROM {owner}; \
             GRANT CONNECT, CREATE, TEMPORARY ON DATABASE {name} TO {owner}; \
             {settings} \
             COMMIT;",
            limit = db.connection_limit,
            settings = db.limits.apply_sql(&name),
        ))
        .await?;
        self.release(server, s);
        let inside = server.admin_client(Some(&db.pg_database)).await?;
        tenant::give_public_schema(&inside, &db.owner_role).await?;
        Ok(())
    }

    async fn drop_database(&self, server: &PgServer, db: &DatabaseSpec) -> Result<()> {
        let s = self.session(server).await?;
        s.batch_execute(&format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            quote_ident(&db.pg_database)
        ))
        .await?;
        crate::query::drop_agent_login(&s, &db.owner_role).await?;
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
        let secret = if s.query_opt(ROLE_EXISTS, &[&login.role]).await?.is_none() {
            format!("CREATE ROLE {role} {attrs}")
        } else {
            format!("ALTER ROLE {role} {attrs}")
        };
        // Settings the tenant gave its role (they outrank the database's) go; `role = owner`
        // is the only one.
        let settings =
            tenant::reset_role_settings_sql(&s, &login.role, Some(&db.owner_role)).await?;
        tenant::run_secret(&s, &secret, &format!("GRANT {owner} TO {role}; {settings}")).await?;
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

    async fn database_usage(
        &self,
        server: &PgServer,
        pg_databases: &[String],
    ) -> Result<Vec<DatabaseUsage>> {
        if pg_databases.is_empty() {
            return Ok(Vec::new());
        }
        let s = self.session(server).await?;
        let rows = s.query(USAGE_SQL, &[&pg_databases]).await?;
        // Absent when the library is not preloaded or the extension not created in the
        // admin database: fall back to transactions.
        let statements = match s.query(STATEMENTS_SQL, &[&pg_databases]).await {
            Ok(rows) => Some(
                rows.iter()
                    .map(|r| (r.get::<_, String>(0), r.get::<_, i64>(1)))
                    .collect::<HashMap<String, i64>>(),
            ),
            Err(e) => {
                tracing::debug!(server = %server.key, error = %e, "pg_stat_statements unavailable");
                None
            }
        };
        self.release(server, s);
        Ok(rows
            .iter()
            .map(|r| {
                let pg_database: String = r.get(0);
                DatabaseUsage {
                    statements: statements
                        .as_ref()
                        .map(|m| m.get(&pg_database).copied().unwrap_or(0)),
                    size_bytes: r.get(1),
                    xacts: r.get(2),
                    pg_database,
                }
            })
            .collect())
    }

    async fn recreate_database(&self, server: &PgServer, name: &str, owner: &str) -> Result<()> {
        let s = self.session(server).await?;
        let quoted = quote_ident(name);
        s.batch_execute(&format!("DROP DATABASE IF EXISTS {quoted} WITH (FORCE)"))
            .await?;
        // One statement per call: CREATE DATABASE cannot run in the implicit transaction of a
        // multi-statement query. Owned by pgfleet's superuser like every tenant database;
        // the owner role gets what it needs for `pg_restore --role=<owner>`.
        // `CONNECTION LIMIT 0`: the owner's login roles could otherwise open sessions on it
        // without any limit until `ensure_database` sets the real one (superusers, who fill
        // it, are exempt).
        s.batch_execute(&format!("CREATE DATABASE {quoted} CONNECTION LIMIT 0"))
            .await?;
        s.batch_execute(&format!(
            "REVOKE ALL ON DATABASE {quoted} FROM PUBLIC; \
             GRANT CONNECT, CREATE, TEMPORARY ON DATABASE {quoted} TO {};",
            quote_ident(owner)
        ))
        .await?;
        self.release(server, s);
        let inside = server.admin_client(Some(name)).await?;
        tenant::give_public_schema(&inside, owner).await?;
        Ok(())
    }

    async fn drop_database_named(&self, server: &PgServer, name: &str) -> Result<()> {
        let s = self.session(server).await?;
        s.batch_execute(&format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            quote_ident(name)
        ))
        .await?;
        self.release(server, s);
        Ok(())
    }

    async fn swap_database(
        &self,
        server: &PgServer,
        db: &DatabaseSpec,
        replacement: &str,
        retired: &str,
    ) -> Result<()> {
        let s = self.session(server).await?;
        let target = &db.pg_database;
        let has_target = self.db_exists_on(&s, target).await?;
        let has_replacement = self.db_exists_on(&s, replacement).await?;
        if has_replacement {
            if has_target {
                // Keep new sessions out while the old sessions end, then move it aside.
                s.batch_execute(&format!(
                    "ALTER DATABASE {} WITH ALLOW_CONNECTIONS false",
                    quote_ident(target)
                ))
                .await?;
                s.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
                    &[target],
                )
                .await?;
                // A just-terminated backend may linger an instant.
                let mut tries = 0;
                loop {
                    match s
                        .batch_execute(&format!(
                            "ALTER DATABASE {} RENAME TO {}",
                            quote_ident(target),
                            quote_ident(retired)
                        ))
                        .await
                    {
                        Ok(()) => break,
                        Err(e)
                            if tries < 50
                                && e.code()
                                    == Some(&tokio_postgres::error::SqlState::OBJECT_IN_USE) =>
                        {
                            tries += 1;
                            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                        }
                        Err(e) => return Err(e.into()),
                    }
                }
            }
            s.batch_execute(&format!(
                "ALTER DATABASE {} RENAME TO {}",
                quote_ident(replacement),
                quote_ident(target)
            ))
            .await?;
        }
        s.batch_execute(&format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            quote_ident(retired)
        ))
        .await?;
        s.batch_execute(&format!(
            "ALTER DATABASE {} WITH ALLOW_CONNECTIONS true",
            quote_ident(target)
        ))
        .await?;
        self.release(server, s);
        // Owner, limit and privileges of the database that is now in place.
        self.ensure_database(server, db).await
    }

    async fn drift(
        &self,
        server: &PgServer,
        db: &DatabaseSpec,
        logins: &[LoginSpec],
    ) -> Result<Vec<Drift>> {
        let s = self.session(server).await?;
        let expected: Vec<ExpectedLogin<'_>> = logins
            .iter()
            .map(|l| ExpectedLogin {
                role: &l.role,
                scram_verifier: &l.scram_verifier,
                connection_limit: l.connection_limit,
            })
            .collect();
        let found = tenant::inspect(
            &s,
            &db.pg_database,
            &db.owner_role,
            db.connection_limit,
            &db.limits,
            &expected,
        )
        .await?;
        self.release(server, s);
        Ok(found)
    }

    async fn set_quota_mode(
        &self,
        server: &PgServer,
        pg_database: &str,
        over_quota: Option<i64>,
    ) -> Result<()> {
        let inside = server.admin_client(Some(pg_database)).await?;
        match over_quota {
            Some(quota) => {
                let skipped = crate::quota::enforce(&inside, quota).await?;
                if !skipped.is_empty() {
                    tracing::warn!(database = pg_database, tables = ?skipped, "storage quota: tables busy, their writes are refused from the next pass");
                }
            }
            None => crate::quota::lift(&inside).await?,
        }
        Ok(())
    }

    async fn write_activity(&self, server: &PgServer, pg_database: &str) -> Result<i64> {
        let s = self.session(server).await?;
        let row = s
            .query_opt(
                "SELECT (tup_inserted + tup_updated + tup_deleted)::bigint FROM pg_stat_database WHERE datname = $1",
                &[&pg_database],
            )
            .await?;
        self.release(server, s);
        Ok(row.map(|r| r.get::<_, i64>(0)).unwrap_or(0))
    }
}

impl PgDriver {
    async fn db_exists_on(&self, s: &tokio_postgres::Client, name: &str) -> Result<bool> {
        Ok(s.query_opt(DB_EXISTS, &[&name]).await?.is_some())
    }
}

/// A SCRAM-SHA-256 verifier for a password (4096 iterations, random salt), as PostgreSQL
/// stores it.
pub fn scram_verifier(password: &str) -> String {
    postgres_protocol::password::scram_sha_256(password.as_bytes())
}
