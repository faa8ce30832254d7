//! Users (people who sign in). Queries checked at build time (`.sqlx/`, see the crate doc),
//! except [`claim_attempt`], whose SQL embeds the backoff expression shared with
//! `login_throttle` ([`Backoff::sql_until`]) and so is composed at run time.

use chrono::{DateTime, Utc};

use crate::login_throttle::Backoff;
use crate::{Result, UserRow};

pub async fn insert<'e>(
    ex: impl sqlx::PgExecutor<'e>,
    id: &str,
    email: &str,
    name: Option<&str>,
    password_hash: &str,
    now: DateTime<Utc>,
) -> Result<UserRow> {
    Ok(sqlx::query_as!(
        UserRow,
        "INSERT INTO users (id, email, name, password_hash, created_at) VALUES ($1, $2, $3, $4, $5)
         RETURNING seq, id, email, name, password_hash, failed_logins, locked_until, created_at,
                   is_admin",
        id,
        email,
        name,
        password_hash,
        now,
    )
    .fetch_one(ex)
    .await?)
}

pub async fn get<'e>(ex: impl sqlx::PgExecutor<'e>, id: &str) -> Result<Option<UserRow>> {
    Ok(sqlx::query_as!(
        UserRow,
        "SELECT seq, id, email, name, password_hash, failed_logins, locked_until, created_at,
                is_admin
           FROM users WHERE id = $1",
        id,
    )
    .fetch_optional(ex)
    .await?)
}

pub async fn get_by_email<'e>(
    ex: impl sqlx::PgExecutor<'e>,
    email: &str,
) -> Result<Option<UserRow>> {
    Ok(sqlx::query_as!(
        UserRow,
        "SELECT seq, id, email, name, password_hash, failed_logins, locked_until, created_at,
                is_admin
           FROM users WHERE lower(email) = lower($1)",
        email,
    )
    .fetch_optional(ex)
    .await?)
}

/// Claims one sign-in attempt of an unlocked account: counts it as a failure (a success
/// resets the count with [`reset_failed_logins`]) and, when the new count reaches
/// `backoff.free`, locks the account for the backoff of that count, in the same statement.
/// `None` when the account is locked at `now` (nothing is counted). Because the check and
/// the count are one `UPDATE`, concurrent attempts are admitted one by one and none passes
/// a lock another one just set.
pub async fn claim_attempt<'e>(
    ex: impl sqlx::PgExecutor<'e>,
    id: &str,
    now: DateTime<Utc>,
    backoff: &Backoff,
) -> Result<Option<(i32, Option<DateTime<Utc>>)>> {
    // Composed at run time: the backoff rule is one SQL fragment shared with login_throttle.
    let sql = format!(
        "UPDATE users SET failed_logins = failed_logins + 1, locked_until = {until}
          WHERE id = $1 AND (locked_until IS NULL OR locked_until <= $2)
          RETURNING failed_logins, locked_until",
        until = Backoff::sql_until("failed_logins + 1", "$2"),
    );
    Ok(sqlx::query_as(&sql)
        .bind(id)
        .bind(now)
        .bind(backoff.free)
        .bind(backoff.first_secs)
        .bind(backoff.factor)
        .bind(backoff.max_secs)
        .fetch_optional(ex)
        .await?)
}

/// A successful sign-in: no failures, no lock.
pub async fn reset_failed_logins<'e>(ex: impl sqlx::PgExecutor<'e>, id: &str) -> Result<()> {
    sqlx::query!(
        "UPDATE users SET failed_logins = 0, locked_until = NULL WHERE id = $1",
        id
    )
    .execute(ex)
    .await?;
    Ok(())
}

/// Server administrators, locked until the transaction ends (so two demotions cannot both
/// see another administrator left).
pub async fn count_admins_for_update(tx: &mut sqlx::PgConnection) -> Result<i64> {
    let rows = sqlx::query_scalar!("SELECT id FROM users WHERE is_admin FOR UPDATE")
        .fetch_all(tx)
        .await?;
    Ok(rows.len() as i64)
}

/// Makes a user an administrator of the whole server, or not.
pub async fn set_admin<'e>(ex: impl sqlx::PgExecutor<'e>, id: &str, admin: bool) -> Result<()> {
    sqlx::query!("UPDATE users SET is_admin = $2 WHERE id = $1", id, admin)
        .execute(ex)
        .await?;
    Ok(())
}
