//! Session-level advisory locks on a resource (a database, a server, a periodic job's name):
//! the lock an operation on the resource runs under, so periodic work never races it and
//! never runs twice across replicas. (Transaction-level locks of one table live with it:
//! [`crate::backups::lock_schedule_and_latest`], [`crate::replicas::lock_registry`].)
//! Queries checked at build time (`.sqlx/`, see the crate doc).

use crate::Result;

/// Namespace of the resource locks (first key of `pg_try_advisory_lock(int, int)`).
const RESOURCE_LOCK_SPACE: i32 = 0x7066_6c74; // "pflt"

/// Takes the lock of `resource` for the session of `conn`, or returns `false` at once when
/// another session holds it.
pub async fn try_lock_resource(conn: &mut sqlx::PgConnection, resource: &str) -> Result<bool> {
    Ok(sqlx::query_scalar!(
        r#"SELECT pg_try_advisory_lock($1, hashtext($2)) AS "locked!""#,
        RESOURCE_LOCK_SPACE,
        resource,
    )
    .fetch_one(conn)
    .await?)
}

/// Releases every advisory lock the session of `conn` holds.
pub async fn unlock_all(conn: &mut sqlx::PgConnection) -> Result<()> {
    sqlx::query!("SELECT pg_advisory_unlock_all()")
        .execute(conn)
        .await?;
    Ok(())
}
