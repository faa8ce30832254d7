//! Browser sessions of the sign-in pages. A session is stored only as the SHA-256 of its
//! cookie value, with its user, its CSRF token and its expiry. Queries checked at build time
//! (`.sqlx/`, see the crate doc).

use chrono::{DateTime, Utc};

use crate::{Result, UserRow};

/// A session joined with its user.
#[derive(Clone)]
pub struct SessionRow {
    pub user: UserRow,
    pub csrf_token: String,
    pub session_expires_at: DateTime<Utc>,
}

impl std::fmt::Debug for SessionRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionRow")
            .field("user", &self.user)
            .field("session_expires_at", &self.session_expires_at)
            .finish_non_exhaustive()
    }
}

pub async fn insert<'e>(
    ex: impl sqlx::PgExecutor<'e>,
    id_hash: &[u8],
    user_id: &str,
    csrf_token: &str,
    now: DateTime<Utc>,
    expires_at: DateTime<Utc>,
) -> Result<()> {
    sqlx::query!(
        "INSERT INTO sessions (id_hash, user_id, csrf_token, created_at, expires_at)
         VALUES ($1, $2, $3, $4, $5)",
        id_hash,
        user_id,
        csrf_token,
        now,
        expires_at,
    )
    .execute(ex)
    .await?;
    Ok(())
}

/// The session with this hash and its user, expired or not.
pub async fn get<'e>(ex: impl sqlx::PgExecutor<'e>, id_hash: &[u8]) -> Result<Option<SessionRow>> {
    let row = sqlx::query!(
        "SELECT u.seq, u.id, u.email, u.name, u.password_hash, u.failed_logins, u.locked_until,
                u.created_at, u.is_admin, s.csrf_token, s.expires_at AS session_expires_at
           FROM sessions s JOIN users u ON u.id = s.user_id
          WHERE s.id_hash = $1",
        id_hash,
    )
    .fetch_optional(ex)
    .await?;
    Ok(row.map(|r| SessionRow {
        user: UserRow {
            seq: r.seq,
            id: r.id,
            email: r.email,
            name: r.name,
            password_hash: r.password_hash,
            failed_logins: r.failed_logins,
            locked_until: r.locked_until,
            created_at: r.created_at,
            is_admin: r.is_admin,
        },
        csrf_token: r.csrf_token,
        session_expires_at: r.session_expires_at,
    }))
}

pub async fn delete<'e>(ex: impl sqlx::PgExecutor<'e>, id_hash: &[u8]) -> Result<()> {
    sqlx::query!("DELETE FROM sessions WHERE id_hash = $1", id_hash)
        .execute(ex)
        .await?;
    Ok(())
}

/// Forgets the expired sessions of one user (run at each sign-in, so they do not pile up).
pub async fn delete_expired_for_user<'e>(
    ex: impl sqlx::PgExecutor<'e>,
    user_id: &str,
    now: DateTime<Utc>,
) -> Result<u64> {
    let r = sqlx::query!(
        "DELETE FROM sessions WHERE user_id = $1 AND expires_at <= $2",
        user_id,
        now
    )
    .execute(ex)
    .await?;
    Ok(r.rows_affected())
}

/// Forgets every expired session (the periodic sweep); returns how many.
pub async fn delete_expired<'e>(ex: impl sqlx::PgExecutor<'e>, now: DateTime<Utc>) -> Result<u64> {
    let r = sqlx::query!("DELETE FROM sessions WHERE expires_at <= $1", now)
        .execute(ex)
        .await?;
    Ok(r.rows_affected())
}
