//! Leases of the periodic jobs (`leases`): which replica runs a job's rounds, and when the
//! last round started. Every decision is one statement on the job's row, so replicas that
//! tick at the same moment cannot both run a round. Queries checked at build time (`.sqlx/`,
//! see the crate doc).

use chrono::{DateTime, Utc};

use crate::Result;

/// What a replica's tick found, from [`claim`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// This replica holds the lease and the round is due: it runs it (its start is recorded).
    Run,
    /// This replica holds the lease (taken or renewed); the last round is too recent.
    Held,
    /// Another replica holds an unexpired lease.
    Elsewhere,
}

/// Times of one claim, all from the caller's clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClaimTimes {
    pub now: DateTime<Utc>,
    /// The lease, taken or renewed, lasts until then.
    pub expires_at: DateTime<Utc>,
    /// A round is due when the last one started at or before this.
    pub due_if_last_run_before: DateTime<Utc>,
}

/// Takes or renews `job`'s lease for `holder` — possible when the lease is free, expired or
/// already `holder`'s — and, when the last round started at or before
/// `due_if_last_run_before`, records a round starting now ([`Claim::Run`]).
pub async fn claim(
    conn: &mut sqlx::PgConnection,
    job: &str,
    holder: &str,
    t: ClaimTimes,
) -> Result<Claim> {
    // Taking the lease and recording the round is one statement: of two replicas ticking at
    // once, the second re-checks the row the first updated and finds the round not due.
    let ran = sqlx::query_scalar!(
        "INSERT INTO leases AS l (job, holder, expires_at, last_run_at) VALUES ($1, $2, $4, $3)
         ON CONFLICT (job) DO UPDATE SET
             holder = $2, expires_at = $4, last_run_at = $3
         WHERE (l.expires_at < $3 OR l.holder = $2)
           AND (l.last_run_at IS NULL OR l.last_run_at <= $5)
         RETURNING job",
        job,
        holder,
        t.now,
        t.expires_at,
        t.due_if_last_run_before,
    )
    .fetch_optional(&mut *conn)
    .await?;
    if ran.is_some() {
        return Ok(Claim::Run);
    }
    let held = sqlx::query_scalar!(
        "UPDATE leases SET holder = $2, expires_at = $4
         WHERE job = $1 AND (expires_at < $3 OR holder = $2)
         RETURNING job",
        job,
        holder,
        t.now,
        t.expires_at,
    )
    .fetch_optional(&mut *conn)
    .await?;
    Ok(if held.is_some() {
        Claim::Held
    } else {
        Claim::Elsewhere
    })
}

/// A job's lease as stored (for tests and diagnostics).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseRow {
    pub job: String,
    pub holder: String,
    pub expires_at: DateTime<Utc>,
    pub last_run_at: Option<DateTime<Utc>>,
}

/// The lease of `job`, if any replica ever took it.
pub async fn get<'e>(ex: impl sqlx::PgExecutor<'e>, job: &str) -> Result<Option<LeaseRow>> {
    Ok(sqlx::query_as!(
        LeaseRow,
        "SELECT job, holder, expires_at, last_run_at FROM leases WHERE job = $1",
        job,
    )
    .fetch_optional(ex)
    .await?)
}

/// Gives up `holder`'s lease of `job` (at shutdown), so another replica takes it at its next
/// tick instead of after the lease expires. `last_run_at` stays: the next round is still due
/// one interval after the last.
pub async fn release<'e>(
    ex: impl sqlx::PgExecutor<'e>,
    job: &str,
    holder: &str,
    now: DateTime<Utc>,
) -> Result<()> {
    sqlx::query!(
        "UPDATE leases SET expires_at = $3 WHERE job = $1 AND holder = $2 AND expires_at > $3",
        job,
        holder,
        now,
    )
    .execute(ex)
    .await?;
    Ok(())
}
