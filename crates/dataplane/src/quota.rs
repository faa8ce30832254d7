//! The storage quota's read-only mode of a tenant database, in a form the tenant cannot lift.
//!
//! `default_transaction_read_only` is no answer: any session can turn it off. The tenant's
//! roles own its tables, so privileges cannot hold it either (an owner can grant itself
//! back whatever is revoked). What a non-superuser cannot touch are objects a superuser
//! owns inside the database:
//!
//! - an **event trigger** (superuser-only) on `ddl_command_start` refuses every DDL command
//!   but `DROP …` (so space can be freed): no new tables, indexes or materialized views, and
//!   no `ALTER TABLE … DISABLE TRIGGER` or `DROP TRIGGER` to get rid of
//! - a **statement trigger** `BEFORE INSERT OR UPDATE` on each of the tenant's tables (also
//!   `COPY … FROM`, `MERGE`, `INSERT … ON CONFLICT`), calling a function in the
//!   superuser-owned schema [`SCHEMA`].
//!
//! Both raise SQLSTATE 53400 (configuration_limit_exceeded) with a message naming the
//! quota. `DELETE`, `TRUNCATE`, `DROP` and `VACUUM FULL` stay allowed, so the tenant can get
//! under the quota by itself; superusers are never refused. Triggers fire whatever the role
//! (SECURITY DEFINER functions included); only `session_replication_role`, a superuser
//! setting, skips them.
//!
//! Large objects live in a system catalog that no trigger sees: while the mode is on,
//! `PUBLIC` loses `EXECUTE` on the functions that create or write them ([`LARGE_OBJECT_WRITES`]).
//!
//! Dumps of a database in this mode contain the triggers; `pg_restore` leaves them out
//! ([`RESTORE_SKIP`]), and the guard sets the mode again if the restored data is still over.

use tokio_postgres::Client;

use crate::driver::{quote_ident, quote_literal};
use crate::Result;

/// The superuser-owned schema of the functions.
pub const SCHEMA: &str = "pgfleet_quota";
/// Name of the event trigger and of the trigger on each table.
pub const TRIGGER: &str = "pgfleet_storage_quota";

/// The large-object functions that add data, as `REVOKE`/`GRANT … ON FUNCTION` lists them.
pub const LARGE_OBJECT_WRITES: &str = "pg_catalog.lo_creat(integer), pg_catalog.lo_create(oid), \
     pg_catalog.lo_from_bytea(oid, bytea), pg_catalog.lowrite(integer, bytea), \
     pg_catalog.lo_put(oid, bigint, bytea)";

/// Lines of a `pg_restore --list` that are this mode's objects (matched as whole words).
pub const RESTORE_SKIP: [&str; 2] = [SCHEMA, TRIGGER];

/// The message of the refusal.
pub fn message(quota_bytes: i64) -> String {
    format!(
        "database is over its storage quota of {quota_bytes} bytes ({:.1} MiB): writes are refused until it is under again",
        quota_bytes as f64 / 1_048_576.0
    )
}

const HINT: &str = "Free space with TRUNCATE, DROP TABLE, or DELETE followed by VACUUM FULL, \
                    or ask the operator to raise the quota.";

/// Inside the tenant database, as superuser: sets up the mode (idempotent). Tables whose
/// lock is not granted within the lock timeout are left for the next call; their names are
/// returned.
pub(crate) async fn enforce(inside: &Client, quota_bytes: i64) -> Result<Vec<String>> {
    let raise = format!(
        "RAISE EXCEPTION USING ERRCODE = 'configuration_limit_exceeded', MESSAGE = {}, HINT = {};",
        quote_literal(&message(quota_bytes)),
        quote_literal(HINT)
    );
    let schema = quote_ident(SCHEMA);
    inside
        .batch_execute(&format!(
            "SET lock_timeout = '2s'; \
             BEGIN; \
             CREATE SCHEMA IF NOT EXISTS {schema}; \
             REVOKE ALL ON SCHEMA {schema} FROM PUBLIC; \
             CREATE OR REPLACE FUNCTION {schema}.refuse_write() RETURNS trigger \
               LANGUAGE plpgsql AS $pgfleet$ BEGIN {raise} END $pgfleet$; \
             CREATE OR REPLACE FUNCTION {schema}.refuse_ddl() RETURNS event_trigger \
               LANGUAGE plpgsql AS $pgfleet$ BEGIN \
                 IF (tg_tag LIKE 'DROP %' AND tg_tag <> 'DROP TRIGGER') \
                    OR (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN \
                   RETURN; \
                 END IF; \
                 {raise} \
               END $pgfleet$; \
             REVOKE EXECUTE ON FUNCTION {LARGE_OBJECT_WRITES} FROM PUBLIC; \
             COMMIT;"
        ))
        .await?;
    let has_event_trigger = inside
        .query_opt(
            "SELECT 1 FROM pg_event_trigger WHERE evtname = $1",
            &[&TRIGGER],
        )
        .await?
        .is_some();
    if !has_event_trigger {
        inside
            .batch_execute(&format!(
                "CREATE EVENT TRIGGER {TRIGGER} ON ddl_command_start \
                 EXECUTE FUNCTION {schema}.refuse_ddl()"
            ))
            .await?;
    }
    // Listed after the event trigger exists: a table created later cannot be.
    let tables = inside
        .query(
            "SELECT c.oid::regclass::text FROM pg_class c \
               JOIN pg_namespace n ON n.oid = c.relnamespace \
              WHERE c.relkind IN ('r', 'p') AND c.relpersistence <> 't' \
                AND n.nspname NOT IN ('pg_catalog', 'information_schema', $1) \
                AND n.nspname NOT LIKE 'pg\\_%' \
                AND NOT EXISTS (SELECT 1 FROM pg_trigger t \
                                 WHERE t.tgrelid = c.oid AND t.tgname = $2)",
            &[&SCHEMA, &TRIGGER],
        )
        .await?;
    let mut skipped = Vec::new();
    for row in tables {
        let table: String = row.get(0);
        let created = inside
            .batch_execute(&format!(
                "CREATE TRIGGER {TRIGGER} BEFORE INSERT OR UPDATE ON {table} \
                 FOR EACH STATEMENT EXECUTE FUNCTION {schema}.refuse_write()"
            ))
            .await;
        if let Err(e) = created {
            tracing::debug!(table, error = %e, "storage quota trigger not created yet");
            skipped.push(table);
        }
    }
    Ok(skipped)
}

/// Inside the tenant database, as superuser: ends the mode (idempotent). Dropping the
/// schema drops the functions and, with them, every table's trigger.
pub(crate) async fn lift(inside: &Client) -> Result<()> {
    inside
        .batch_execute(&format!(
            "SET lock_timeout = '5s'; \
             BEGIN; \
             DROP EVENT TRIGGER IF EXISTS {TRIGGER}; \
             DROP SCHEMA IF EXISTS {} CASCADE; \
             GRANT EXECUTE ON FUNCTION {LARGE_OBJECT_WRITES} TO PUBLIC; \
             COMMIT;",
            quote_ident(SCHEMA)
        ))
        .await?;
    Ok(())
}

/// Whether a line of `pg_restore --list` is one of this mode's objects.
pub fn restore_skips(toc_line: &str) -> bool {
    !toc_line.trim_start().starts_with(';')
        && toc_line
            .split_whitespace()
            .any(|word| RESTORE_SKIP.contains(&word))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restore_list_lines_of_the_mode_are_recognised() {
        assert!(restore_skips(
            "218; 2620 16400 TRIGGER public t pgfleet_storage_quota postgres"
        ));
        assert!(restore_skips(
            "3350; 3466 16391 EVENT TRIGGER - pgfleet_storage_quota postgres"
        ));
        assert!(restore_skips(
            "6; 2615 16388 SCHEMA - pgfleet_quota postgres"
        ));
        assert!(restore_skips(
            "217; 1255 16389 FUNCTION pgfleet_quota refuse_write() postgres"
        ));
        assert!(!restore_skips(
            "219; 1259 16401 TABLE public pgfleet_quota_notes o_123"
        ));
        assert!(!restore_skips("; Archive created at 2026-01-01"));
        assert!(message(100 * 1_048_576).contains("storage quota of 104857600 bytes (100.0 MiB)"));
    }
}
