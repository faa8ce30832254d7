//! What keeps a tenant inside its limits on a server: the limits pgfleet sets on a tenant
//! database ([`TenantLimits`]), the ownership layout that keeps them out of the tenant's
//! reach, the drift check that finds what changed anyway ([`Drift`]), and the way role DDL
//! carrying a password verifier is run so that PostgreSQL keeps no copy of its text
//! ([`run_secret`]).
//!
//! **Layout.** pgfleet's superuser owns every tenant database, so only it can change the
//! database's connection limit and settings (`ALTER DATABASE` needs ownership). The tenant's
//! owner role (`NOLOGIN`) gets `CONNECT`, `CREATE` and `TEMPORARY` on the database and owns
//! its schema `public`, so everything a tenant creates (tables, schemas, `_prisma_migrations`)
//! still belongs to the owner role. Login roles are members of the owner role with
//! `SET role = owner` as their only role setting.
//!
//! **What a tenant can still change, and who puts it back.** PostgreSQL lets every role set
//! its own session defaults (`ALTER ROLE CURRENT_USER SET …`, role settings outrank database
//! settings) and its own password (`ALTER ROLE CURRENT_USER PASSWORD …`). Neither can be
//! refused without a server extension, so the reconciler's drift pass finds them and
//! re-applies pgfleet's values.

use tokio_postgres::Client;

use crate::driver::{quote_ident, quote_literal};
use crate::Result;

/// Limits applied as database-level defaults (`ALTER DATABASE … SET`). `None` leaves the
/// server's own setting.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TenantLimits {
    /// `temp_file_limit`, in kB. Superuser-only: a tenant cannot raise it even for a session.
    pub temp_file_limit_kb: Option<i64>,
    /// `idle_in_transaction_session_timeout`, in ms. A session may change it for itself
    /// (PostgreSQL lets every role set it); the database-level default is re-applied.
    pub idle_in_transaction_timeout_ms: Option<i64>,
    /// `statement_timeout`, in ms. Session-settable like the one above.
    pub statement_timeout_ms: Option<i64>,
}

impl TenantLimits {
    /// The `name=value` entries the database's `pg_db_role_setting` row must hold, in the
    /// order they are set.
    pub fn settings(&self) -> Vec<String> {
        [
            ("temp_file_limit", self.temp_file_limit_kb),
            (
                "idle_in_transaction_session_timeout",
                self.idle_in_transaction_timeout_ms,
            ),
            ("statement_timeout", self.statement_timeout_ms),
        ]
        .into_iter()
        .filter_map(|(name, v)| v.map(|v| format!("{name}={v}")))
        .collect()
    }

    /// Statements that make the database's settings exactly [`TenantLimits::settings`].
    pub(crate) fn apply_sql(&self, quoted_db: &str) -> String {
        let mut sql = format!("ALTER DATABASE {quoted_db} RESET ALL;");
        for entry in self.settings() {
            if let Some((name, value)) = entry.split_once('=') {
                sql.push_str(&format!(
                    " ALTER DATABASE {quoted_db} SET {name} = {value};"
                ));
            }
        }
        sql
    }
}

/// Something on the server that differs from what pgfleet set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Drift {
    /// The database is missing (the reconciler's create/restore path owns that case).
    DatabaseMissing,
    /// The database is not owned by pgfleet's superuser.
    DatabaseOwner,
    /// `datconnlimit` differs.
    ConnectionLimit { found: i32 },
    /// The database-level settings differ.
    DatabaseSettings { found: Vec<String> },
    /// The owner role can log in, has a password, an attribute or settings of its own.
    OwnerRole,
    /// A login role is missing.
    LoginMissing { role: String },
    /// A login role's attributes (login, limit, inherit…) or membership differ.
    LoginAttributes { role: String },
    /// A login role has role settings other than `role = owner`.
    LoginSettings { role: String, found: Vec<String> },
    /// A login role's password is not the verifier pgfleet issued.
    LoginPassword { role: String },
}

impl Drift {
    /// The login role concerned, for role-level drift.
    pub fn role(&self) -> Option<&str> {
        match self {
            Drift::LoginMissing { role }
            | Drift::LoginAttributes { role }
            | Drift::LoginSettings { role, .. }
            | Drift::LoginPassword { role } => Some(role),
            _ => None,
        }
    }

    /// A short name for logs and metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            Drift::DatabaseMissing => "database_missing",
            Drift::DatabaseOwner => "database_owner",
            Drift::ConnectionLimit { .. } => "connection_limit",
            Drift::DatabaseSettings { .. } => "database_settings",
            Drift::OwnerRole => "owner_role",
            Drift::LoginMissing { .. } => "login_missing",
            Drift::LoginAttributes { .. } => "login_attributes",
            Drift::LoginSettings { .. } => "login_settings",
            Drift::LoginPassword { .. } => "login_password",
        }
    }
}

/// Settings that keep a statement out of everything PostgreSQL records about statements:
/// pg_stat_statements (utility statements are tracked by default) and the server log
/// (`log_statement`, the statement logged with an error, duration and sampled logging).
/// All are superuser-settable, and `SET LOCAL` ends with the transaction.
const QUIET: &str = "SET LOCAL pg_stat_statements.track_utility = off; \
     SET LOCAL log_statement = 'none'; \
     SET LOCAL log_min_error_statement = 'panic'; \
     SET LOCAL log_min_duration_statement = -1; \
     SET LOCAL log_min_duration_sample = -1; \
     SET LOCAL log_transaction_sample_rate = 0; \
     SET LOCAL log_duration = off;";

/// Runs `secret` (a statement whose text holds a password verifier), then `rest`, in one
/// transaction whose statements PostgreSQL neither logs nor tracks.
///
/// Each is its own simple-query message: `log_statement` is decided for a whole message
/// before any of it runs, so the settings must be in effect before the secret arrives. The
/// last statement the session shows in `pg_stat_activity` is the `COMMIT`. On error the
/// session is left in a failed transaction; callers drop it rather than reuse it.
pub(crate) async fn run_secret(s: &Client, secret: &str, rest: &str) -> Result<()> {
    s.batch_execute("BEGIN").await?;
    s.batch_execute(QUIET).await?;
    s.batch_execute(secret).await?;
    if !rest.is_empty() {
        s.batch_execute(rest).await?;
    }
    s.batch_execute("COMMIT").await?;
    Ok(())
}

/// Inside the tenant database (a superuser session on it): hands schema `public` to the
/// owner role when it still belongs to the database owner (a new database, or one made
/// before pgfleet's superuser took the database over). A schema the tenant gave to one of
/// its own roles is left alone.
pub(crate) async fn give_public_schema(inside: &Client, owner_role: &str) -> Result<()> {
    inside
        .batch_execute(&format!(
            "DO $pgfleet$ BEGIN \
               IF EXISTS (SELECT 1 FROM pg_namespace n JOIN pg_roles r ON r.oid = n.nspowner \
                          WHERE n.nspname = 'public' \
                            AND (r.rolname = 'pg_database_owner' OR r.rolsuper)) THEN \
                 ALTER SCHEMA public OWNER TO {}; \
               END IF; \
             END $pgfleet$",
            quote_ident(owner_role)
        ))
        .await?;
    Ok(())
}

/// Removes every role setting of `role` (in any database), then sets `role = owner` when
/// given. One transaction with the caller's other statements.
pub(crate) async fn reset_role_settings_sql(
    s: &Client,
    role: &str,
    set_role_to: Option<&str>,
) -> Result<String> {
    let rows = s
        .query(
            "SELECT coalesce(d.datname::text, '') FROM pg_db_role_setting st \
               JOIN pg_roles r ON r.oid = st.setrole \
               LEFT JOIN pg_database d ON d.oid = st.setdatabase \
              WHERE r.rolname = $1",
            &[&role],
        )
        .await?;
    let quoted = quote_ident(role);
    let mut sql = String::new();
    for r in rows {
        let db: String = r.get(0);
        if db.is_empty() {
            sql.push_str(&format!("ALTER ROLE {quoted} RESET ALL; "));
        } else {
            sql.push_str(&format!(
                "ALTER ROLE {quoted} IN DATABASE {} RESET ALL; ",
                quote_ident(&db)
            ));
        }
    }
    if let Some(owner) = set_role_to {
        sql.push_str(&format!(
            "ALTER ROLE {quoted} SET role = {}; ",
            quote_literal(owner)
        ));
    }
    Ok(sql)
}

const DATABASE_STATE: &str =
    "SELECT d.datdba = (SELECT oid FROM pg_roles WHERE rolname = current_user), \
       d.datconnlimit, \
       coalesce((SELECT setconfig FROM pg_db_role_setting \
                  WHERE setdatabase = d.oid AND setrole = 0), '{}')::text[] \
     FROM pg_database d WHERE d.datname = $1";

const OWNER_STATE: &str = "SELECT r.rolcanlogin OR r.rolsuper OR r.rolcreatedb OR r.rolcreaterole \
       OR r.rolreplication OR r.rolbypassrls OR r.rolpassword IS NOT NULL \
       OR EXISTS (SELECT 1 FROM pg_db_role_setting s WHERE s.setrole = r.oid) \
     FROM pg_authid r WHERE r.rolname = $1";

const LOGIN_STATE: &str = "SELECT r.rolname::text, r.rolpassword, \
       r.rolcanlogin AND NOT (r.rolsuper OR r.rolcreatedb OR r.rolcreaterole OR r.rolreplication \
         OR r.rolbypassrls) AND r.rolinherit \
         AND EXISTS (SELECT 1 FROM pg_auth_members m JOIN pg_roles o ON o.oid = m.roleid \
                      WHERE m.member = r.oid AND o.rolname = $2), \
       r.rolconnlimit, \
       coalesce((SELECT array_agg(s.setdatabase::text || ':' || array_to_string(s.setconfig, ',') \
                         ORDER BY s.setdatabase) \
                   FROM pg_db_role_setting s WHERE s.setrole = r.oid), '{}')::text[] \
     FROM pg_authid r WHERE r.rolname = ANY($1)";

/// A login role as pgfleet expects it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpectedLogin<'a> {
    pub role: &'a str,
    pub scram_verifier: &'a str,
    pub connection_limit: i32,
}

/// Compares the server's catalogs with what pgfleet set for one database and its login
/// roles. Reads shared catalogs only, over the superuser session `s` (no connection to the
/// tenant database).
pub(crate) async fn inspect(
    s: &Client,
    pg_database: &str,
    owner_role: &str,
    connection_limit: i32,
    limits: &TenantLimits,
    logins: &[ExpectedLogin<'_>],
) -> Result<Vec<Drift>> {
    let mut found = Vec::new();
    match s.query_opt(DATABASE_STATE, &[&pg_database]).await? {
        None => return Ok(vec![Drift::DatabaseMissing]),
        Some(row) => {
            if !row.get::<_, bool>(0) {
                found.push(Drift::DatabaseOwner);
            }
            let limit: i32 = row.get(1);
            if limit != connection_limit {
                found.push(Drift::ConnectionLimit { found: limit });
            }
            let mut settings: Vec<String> = row.get(2);
            let mut expected = limits.settings();
            settings.sort();
            expected.sort();
            if settings != expected {
                found.push(Drift::DatabaseSettings { found: settings });
            }
        }
    }
    if s.query_opt(OWNER_STATE, &[&owner_role])
        .await?
        .is_some_and(|r| r.get::<_, bool>(0))
    {
        found.push(Drift::OwnerRole);
    }
    let names: Vec<&str> = logins.iter().map(|l| l.role).collect();
    let rows = s.query(LOGIN_STATE, &[&names, &owner_role]).await?;
    let expected_settings = vec![format!("0:role={owner_role}")];
    for login in logins {
        let Some(row) = rows.iter().find(|r| r.get::<_, String>(0) == login.role) else {
            found.push(Drift::LoginMissing {
                role: login.role.to_string(),
            });
            continue;
        };
        let role = login.role.to_string();
        let password: Option<String> = row.get(1);
        let attributes_ok: bool = row.get(2);
        let limit: i32 = row.get(3);
        let settings: Vec<String> = row.get(4);
        if !attributes_ok || limit != login.connection_limit {
            found.push(Drift::LoginAttributes { role: role.clone() });
        }
        if settings != expected_settings {
            found.push(Drift::LoginSettings {
                role: role.clone(),
                found: settings,
            });
        }
        if password.as_deref() != Some(login.scram_verifier) {
            found.push(Drift::LoginPassword { role });
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_become_database_settings() {
        let l = TenantLimits {
            temp_file_limit_kb: Some(1024),
            idle_in_transaction_timeout_ms: Some(60_000),
            statement_timeout_ms: None,
        };
        assert_eq!(
            l.settings(),
            vec![
                "temp_file_limit=1024".to_string(),
                "idle_in_transaction_session_timeout=60000".to_string()
            ]
        );
        let sql = l.apply_sql("\"db\"");
        assert!(sql.starts_with("ALTER DATABASE \"db\" RESET ALL;"), "{sql}");
        assert!(sql.contains("SET temp_file_limit = 1024;"), "{sql}");
        assert!(!sql.contains("statement_timeout ="), "{sql}");
        assert!(TenantLimits::default().settings().is_empty());
    }
}
