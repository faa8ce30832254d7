//! SQL against a tenant database on behalf of an API credential (the MCP tools
//! `execute_sql` and `introspect_schema`): which database (visible to the credential, ready),
//! whether it may write (asked for, and the credential not read-only:
//! [`WorkspaceAccess::for_write`]), the statement's size,
//! and the agent login role's password. The running itself is the data plane's
//! ([`pgfleet_dataplane::query`]): one statement, bounded rows, bytes and time, as the
//! database's role, never as a superuser.
//!
//! The agent role's password is derived from the server's key-encryption secret
//! (`oauth.key_secret`) and the database id: every replica computes the same one, so nothing
//! is stored and no replica has to tell another; a login that fails (the role is new, was
//! changed, or the secret rotated) puts the role back with that password and tries once
//! more. The statement text is never logged.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use pgfleet_dataplane::query::{self, QueryError, QueryLimits, QueryOutput};
use pgfleet_storage::{DatabaseRow, DatabaseState};

use crate::access::WorkspaceAccess;
use crate::{DomainError, Result};

/// Caps of the SQL tools (`[mcp]` in the configuration).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SqlSettings {
    pub limits: QueryLimits,
    /// Bytes of statement text accepted at most.
    pub max_statement_bytes: usize,
}

impl Default for SqlSettings {
    fn default() -> Self {
        Self {
            limits: QueryLimits::default(),
            max_statement_bytes: 64 * 1024,
        }
    }
}

/// Obtained from [`super::Services::sql`].
#[derive(Debug, Clone, Copy)]
pub struct Sql<'a> {
    pub(super) ctx: &'a std::sync::Arc<super::Ctx>,
}

impl Sql<'_> {
    /// Runs one statement in database `database_id`: read-only (rolled back) unless
    /// `allow_writes`, which a read-only credential is refused.
    pub async fn execute(
        &self,
        access: &WorkspaceAccess,
        database_id: &str,
        statement: &str,
        allow_writes: bool,
    ) -> Result<QueryOutput> {
        let settings = self.ctx.config().sql;
        if statement.len() > settings.max_statement_bytes {
            return Err(DomainError::bad_request_hint(
                format!(
                    "The statement is longer than {} bytes",
                    settings.max_statement_bytes
                ),
                "Send a shorter statement.",
            ));
        }
        if statement.contains('\0') {
            return Err(DomainError::nul_parameter());
        }
        if allow_writes {
            // A read-only credential is refused here, as for every other write.
            access.for_write()?;
        }
        let db = self.ready(access, database_id).await?;
        self.run(&db, statement, allow_writes, settings.limits)
            .await
    }

    /// The tables, views and materialized views of database `database_id` the database's role
    /// sees, with their columns, primary keys and foreign keys.
    pub async fn introspect(
        &self,
        access: &WorkspaceAccess,
        database_id: &str,
    ) -> Result<QueryOutput> {
        let db = self.ready(access, database_id).await?;
        let mut limits = self.ctx.config().sql.limits;
        // A catalog query: the caps still hold, with room for a large schema.
        limits.max_rows = limits.max_rows.max(1000);
        limits.max_bytes = limits.max_bytes.max(4 * 1024 * 1024);
        self.run(&db, query::INTROSPECT_SQL, false, limits).await
    }

    async fn ready(&self, access: &WorkspaceAccess, database_id: &str) -> Result<DatabaseRow> {
        let db = self
            .ctx
            .databases()
            .visible(access.principal(), database_id)
            .await?;
        if db.status != DatabaseState::Ready {
            return Err(DomainError::conflict(
                format!("Database {} is {}; it cannot run SQL now", db.id, db.status),
                Some("Retry when the database is ready.".to_string()),
            ));
        }
        Ok(db)
    }

    fn password(&self, db: &DatabaseRow) -> Result<String> {
        let secret = self.ctx.config().oauth.key_secret.as_ref().ok_or_else(|| {
            DomainError::internal("no key-encryption secret: the SQL tools are off")
        })?;
        let bytes = secret.derive(b"pgfleet agent role password v1", db.id.as_bytes())?;
        Ok(URL_SAFE_NO_PAD.encode(bytes))
    }

    async fn run(
        &self,
        db: &DatabaseRow,
        statement: &str,
        allow_writes: bool,
        limits: QueryLimits,
    ) -> Result<QueryOutput> {
        let server = self.ctx.server(db.server_id.as_deref())?;
        let password = self.password(db)?;
        let client = match query::connect_agent(server, &db.owner_role, &password, &db.pg_database)
            .await
        {
            Ok(c) => c,
            Err(e) if query::is_login_refused(&e) => {
                let verifier = pgfleet_dataplane::driver::scram_verifier(&password);
                if let Err(e) = query::ensure_agent_login(server, &db.owner_role, &verifier).await {
                    // Another replica may be making the role at the same moment: the
                    // second login below decides.
                    tracing::debug!(database = %db.id, error = %e, "agent role not (re)made");
                }
                query::connect_agent(server, &db.owner_role, &password, &db.pg_database).await?
            }
            Err(e) => return Err(e.into()),
        };
        let out = query::run(server, &client, statement, allow_writes, limits).await;
        drop(client);
        out.map_err(|e| match e {
            QueryError::Statement { message, code } => DomainError::Unprocessable {
                message: format!("The statement failed: {message} (SQLSTATE {code})"),
                hint: hint_for(&code),
            },
            QueryError::Setup(e) => e.into(),
        })
    }
}

/// A way out for the failures an agent meets most.
fn hint_for(code: &str) -> Option<String> {
    match code {
        "25006" => {
            Some("The statement ran read-only. Pass allowWrites: true to change data.".to_string())
        }
        "57014" => Some("The statement ran out of time; make it cheaper.".to_string()),
        "42601" => Some("Send exactly one SQL statement, without parameters.".to_string()),
        _ => None,
    }
}
