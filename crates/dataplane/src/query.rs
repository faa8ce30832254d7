//! SQL an agent runs against a tenant database (the MCP tools `execute_sql` and
//! `introspect_schema`): the dedicated login role it runs as, and the bounded, single-statement
//! execution.
//!
//! **Who runs it.** Never pgfleet's superuser: each database has one agent login role
//! ([`agent_role`]), made like a connection's role (`LOGIN`, no special attributes, a member of
//! the owner role, `SET role = owner` as its only setting, so what it creates belongs to the
//! database), with a small `CONNECTION LIMIT`. It is created, or its password put back, on
//! first use and whenever a login with the expected password fails ([`ensure_agent_login`]);
//! the password's verifier reaches PostgreSQL through [`crate::tenant::run_secret`]. Its role
//! settings keep its statements out of the server log (they may hold secrets). The driver
//! drops it with the database.
//!
//! **How it runs** ([`run`]): one session per call, `BEGIN READ ONLY` (or `READ WRITE` when
//! the caller allows writes), a first query that sets the transaction's `statement_timeout`
//! and takes its snapshot (after which `SET TRANSACTION READ WRITE` is refused), then the
//! statement: parsed first with the extended protocol's Parse message, which refuses more
//! than one command, then run as that same single statement with the simple protocol so the
//! values come back as PostgreSQL's text (rendered to JSON by column type), read as a stream
//! and cut at the row and byte caps. A read-only call always ends in `ROLLBACK`; a write is
//! committed. The statement text is never logged here.

use std::time::Duration;

use futures::{pin_mut, TryStreamExt};
use tokio_postgres::types::Type;
use tokio_postgres::{Client, SimpleQueryMessage};

use crate::driver::{quote_ident, quote_literal};
use crate::{tenant, DataplaneError, PgServer};

/// Sessions the agent role may hold at once on its database.
pub const AGENT_CONNECTION_LIMIT: i32 = 3;

/// Role settings of the agent role that keep its statements out of the server log.
const QUIET_LOGGING: [(&str, &str); 4] = [
    ("log_statement", "'none'"),
    ("log_min_error_statement", "'panic'"),
    ("log_min_duration_statement", "-1"),
    ("log_min_duration_sample", "-1"),
];

/// The caps of one statement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueryLimits {
    pub statement_timeout: Duration,
    /// Rows returned at most (more are cut, `truncated`).
    pub max_rows: usize,
    /// Bytes of values returned at most (text form; more are cut, `truncated`).
    pub max_bytes: usize,
}

impl Default for QueryLimits {
    fn default() -> Self {
        Self {
            statement_timeout: Duration::from_secs(10),
            max_rows: 500,
            max_bytes: 1024 * 1024,
        }
    }
}

/// A column of a result.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Column {
    pub name: String,
    /// The PostgreSQL type name (`int4`, `text`, …).
    #[serde(rename = "type")]
    pub type_name: String,
}

/// What one statement returned.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct QueryOutput {
    pub columns: Vec<Column>,
    /// Each row as an object keyed by column name (a repeated name keeps its last value).
    pub rows: Vec<serde_json::Map<String, serde_json::Value>>,
    /// Rows returned, or rows affected by an `INSERT`/`UPDATE`/`DELETE` (the command tag's
    /// count); `None` for a statement that has none.
    pub row_count: Option<u64>,
    /// Whether rows were left out (the row or byte cap).
    pub truncated: bool,
    /// Whether the statement's changes were committed.
    pub committed: bool,
}

/// Why a statement gave no output.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    /// PostgreSQL refused or failed the statement (the tenant's own error: syntax, missing
    /// table, read-only transaction, timeout…): its message and SQLSTATE.
    #[error("{message} (SQLSTATE {code})")]
    Statement { message: String, code: String },
    /// Reaching the database failed (pgfleet's problem, not the statement's).
    #[error(transparent)]
    Setup(#[from] DataplaneError),
}

impl From<tokio_postgres::Error> for QueryError {
    fn from(e: tokio_postgres::Error) -> Self {
        match e.as_db_error() {
            Some(db) => QueryError::Statement {
                message: db.message().to_string(),
                code: db.code().code().to_string(),
            },
            None => QueryError::Setup(DataplaneError::Postgres(e)),
        }
    }
}

/// The agent login role of the database whose owner role is `owner_role`.
pub fn agent_role(owner_role: &str) -> String {
    let base = owner_role.strip_suffix("_owner").unwrap_or(owner_role);
    format!("{base}_agent")
}

/// Creates the agent role of a database (or puts back its attributes, membership, setting
/// and password), over a superuser session. `verifier` is a SCRAM verifier.
pub async fn ensure_agent_login(
    server: &PgServer,
    owner_role: &str,
    verifier: &str,
) -> crate::Result<()> {
    let s = server.admin_client(None).await?;
    let role = agent_role(owner_role);
    let quoted = quote_ident(&role);
    let attrs = format!(
        "LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS INHERIT \
         CONNECTION LIMIT {AGENT_CONNECTION_LIMIT} PASSWORD {}",
        quote_literal(verifier)
    );
    let exists = s
        .query_opt("SELECT 1 FROM pg_roles WHERE rolname = $1", &[&role])
        .await?
        .is_some();
    let secret = if exists {
        format!("ALTER ROLE {quoted} {attrs}")
    } else {
        format!("CREATE ROLE {quoted} {attrs}")
    };
    let mut settings = tenant::reset_role_settings_sql(&s, &role, Some(owner_role)).await?;
    // The agent's statements may hold secrets: the server logs none of them, not even with
    // an error (superuser-only settings, so its sessions cannot turn them back on).
    for (name, value) in QUIET_LOGGING {
        settings.push_str(&format!("ALTER ROLE {quoted} SET {name} = {value}; "));
    }
    tenant::run_secret(
        &s,
        &secret,
        &format!("GRANT {} TO {quoted}; {settings}", quote_ident(owner_role)),
    )
    .await
}

/// Drops the agent role of a database, if any (its sessions are gone with the database).
pub(crate) async fn drop_agent_login(s: &Client, owner_role: &str) -> crate::Result<()> {
    s.batch_execute(&format!(
        "DROP ROLE IF EXISTS {}",
        quote_ident(&agent_role(owner_role))
    ))
    .await?;
    Ok(())
}

/// Opens a session as the agent role on `pg_database`.
pub async fn connect_agent(
    server: &PgServer,
    owner_role: &str,
    password: &str,
    pg_database: &str,
) -> crate::Result<Client> {
    let mut cfg = server.role_config(&agent_role(owner_role), password, pg_database);
    cfg.connect_timeout(Duration::from_secs(5))
        .application_name("pgfleet-mcp");
    server.connect(cfg).await
}

/// Whether a failed login means the role is missing or its password is not the expected
/// one (then [`ensure_agent_login`] and try again).
pub fn is_login_refused(e: &DataplaneError) -> bool {
    match e {
        DataplaneError::Postgres(pg) => pg.as_db_error().is_some_and(|db| {
            let code = db.code().code();
            code == "28P01" || code == "28000"
        }),
        _ => false,
    }
}

/// Runs one statement on `client` (a fresh agent session, dropped by the caller afterwards)
/// under `limits`; writes are possible and committed only when `allow_writes`.
pub async fn run(
    server: &PgServer,
    client: &Client,
    statement: &str,
    allow_writes: bool,
    limits: QueryLimits,
) -> Result<QueryOutput, QueryError> {
    // The server's timer ends the statement; this one, a little later, covers a statement
    // that moved its own timer, and a server that does not answer.
    let grace = limits.statement_timeout + Duration::from_secs(5);
    match tokio::time::timeout(grace, run_inner(client, statement, allow_writes, limits)).await {
        Ok(r) => r,
        Err(_) => {
            let _ = server.cancel(&client.cancel_token()).await;
            Err(QueryError::Statement {
                message: "canceling statement due to statement timeout".to_string(),
                code: "57014".to_string(),
            })
        }
    }
}

async fn run_inner(
    client: &Client,
    statement: &str,
    allow_writes: bool,
    limits: QueryLimits,
) -> Result<QueryOutput, QueryError> {
    client
        .batch_execute(if allow_writes {
            "BEGIN READ WRITE"
        } else {
            "BEGIN READ ONLY"
        })
        .await?;
    let timeout_ms = limits.statement_timeout.as_millis().max(1).to_string();
    client
        .execute(
            "SELECT set_config('statement_timeout', $1, true)",
            &[&timeout_ms],
        )
        .await?;
    // Parse refuses more than one command ("cannot insert multiple commands into a prepared
    // statement"), and gives the result's column types.
    let prepared = client.prepare(statement).await?;
    let columns: Vec<Column> = prepared
        .columns()
        .iter()
        .map(|c| Column {
            name: c.name().to_string(),
            type_name: c.type_().name().to_string(),
        })
        .collect();
    let types: Vec<Type> = prepared
        .columns()
        .iter()
        .map(|c| c.type_().clone())
        .collect();
    drop(prepared);

    let mut out = QueryOutput {
        columns,
        rows: Vec::new(),
        row_count: None,
        truncated: false,
        committed: false,
    };
    let mut bytes = 0usize;
    let stream = client.simple_query_raw(statement).await?;
    pin_mut!(stream);
    while let Some(message) = stream.try_next().await? {
        match message {
            SimpleQueryMessage::Row(row) => {
                if out.rows.len() >= limits.max_rows {
                    out.truncated = true;
                    break;
                }
                let mut obj = serde_json::Map::new();
                for (i, col) in row.columns().iter().enumerate() {
                    let text = row.try_get(i).ok().flatten();
                    bytes += text.map_or(4, str::len) + col.name().len();
                    let ty = types.get(i);
                    obj.insert(col.name().to_string(), to_json(text, ty));
                }
                if bytes > limits.max_bytes {
                    out.truncated = true;
                    break;
                }
                out.rows.push(obj);
            }
            SimpleQueryMessage::CommandComplete(n) => out.row_count = Some(n),
            _ => {}
        }
    }
    if out.truncated {
        // The rest of the result is not read: the caller drops the session, which ends the
        // statement and rolls the transaction back.
        out.row_count = Some(out.rows.len() as u64);
        return Ok(out);
    }
    if allow_writes {
        client.batch_execute("COMMIT").await?;
        out.committed = true;
    } else {
        client.batch_execute("ROLLBACK").await?;
    }
    Ok(out)
}

/// A value in PostgreSQL's text form as JSON: numbers and booleans as such (numbers that
/// JSON cannot hold exactly stay strings), `json`/`jsonb` parsed, everything else a string.
fn to_json(text: Option<&str>, ty: Option<&Type>) -> serde_json::Value {
    use serde_json::Value;
    let Some(text) = text else {
        return Value::Null;
    };
    let Some(ty) = ty else {
        return Value::String(text.to_string());
    };
    match *ty {
        Type::BOOL => Value::Bool(text == "t"),
        Type::INT2 | Type::INT4 | Type::INT8 | Type::OID => text
            .parse::<i64>()
            .map(Value::from)
            .unwrap_or_else(|_| Value::String(text.to_string())),
        Type::FLOAT4 | Type::FLOAT8 => text
            .parse::<f64>()
            .ok()
            .and_then(serde_json::Number::from_f64)
            .map(Value::Number)
            .unwrap_or_else(|| Value::String(text.to_string())),
        Type::JSON | Type::JSONB => {
            serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.to_string()))
        }
        _ => Value::String(text.to_string()),
    }
}

/// The catalog query of `introspect_schema`: every table, view and materialized view the
/// role can see outside the system schemas, with columns, primary key and foreign keys.
pub const INTROSPECT_SQL: &str = "\
SELECT n.nspname AS schema, c.relname AS name, \
  CASE c.relkind WHEN 'r' THEN 'table' WHEN 'p' THEN 'table' WHEN 'v' THEN 'view' \
                 WHEN 'm' THEN 'materialized_view' WHEN 'f' THEN 'foreign_table' END AS kind, \
  (SELECT coalesce(json_agg(json_build_object( \
       'name', a.attname, 'type', format_type(a.atttypid, a.atttypmod), \
       'nullable', NOT a.attnotnull, \
       'default', pg_get_expr(d.adbin, d.adrelid)) ORDER BY a.attnum), '[]'::json) \
     FROM pg_attribute a LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum \
    WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped) AS columns, \
  (SELECT json_agg(a.attname ORDER BY k.ord) FROM pg_constraint p \
     CROSS JOIN LATERAL unnest(p.conkey) WITH ORDINALITY AS k(attnum, ord) \
     JOIN pg_attribute a ON a.attrelid = p.conrelid AND a.attnum = k.attnum \
    WHERE p.conrelid = c.oid AND p.contype = 'p') AS primary_key, \
  (SELECT coalesce(json_agg(json_build_object('name', f.conname, \
       'definition', pg_get_constraintdef(f.oid))), '[]'::json) \
     FROM pg_constraint f WHERE f.conrelid = c.oid AND f.contype = 'f') AS foreign_keys \
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f') \
  AND n.nspname NOT IN ('pg_catalog', 'information_schema') \
  AND n.nspname NOT LIKE 'pg_toast%' AND n.nspname NOT LIKE 'pg_temp%' \
  AND has_table_privilege(c.oid, 'SELECT, INSERT, UPDATE, DELETE') \
ORDER BY 1, 2";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_agent_role_is_named_after_the_owner() {
        assert_eq!(agent_role("d_abc_owner"), "d_abc_agent");
        assert_eq!(agent_role("other"), "other_agent");
    }

    #[test]
    fn text_values_become_json_by_type() {
        assert_eq!(
            to_json(Some("t"), Some(&Type::BOOL)),
            serde_json::json!(true)
        );
        assert_eq!(
            to_json(Some("42"), Some(&Type::INT8)),
            serde_json::json!(42)
        );
        assert_eq!(
            to_json(Some("1.5"), Some(&Type::FLOAT8)),
            serde_json::json!(1.5)
        );
        assert_eq!(
            to_json(Some("NaN"), Some(&Type::FLOAT8)),
            serde_json::json!("NaN")
        );
        assert_eq!(
            to_json(Some("{\"a\":1}"), Some(&Type::JSONB)),
            serde_json::json!({"a": 1})
        );
        assert_eq!(
            to_json(Some("12.30"), Some(&Type::NUMERIC)),
            serde_json::json!("12.30")
        );
        assert_eq!(to_json(None, Some(&Type::TEXT)), serde_json::Value::Null);
    }
}
