//! Failed sign-ins per client address (`login_throttle`), and the backoff rule both it and
//! the per-account lock of `users` apply in SQL, so that counting a failure and deciding a
//! block is one atomic statement however many attempts run at once.
//!
//! Queries checked at build time (`.sqlx/`, see the crate doc), except [`claim`]'s counting
//! statement, composed at run time from the shared backoff expression ([`Backoff::sql_until`]).

use chrono::{DateTime, Utc};

use crate::Result;

/// A failure count's backoff: the `free`-th failure and every later one block for
/// `first_secs × factor^(failures − free)`, at most `max_secs`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Backoff {
    pub free: i32,
    pub first_secs: f64,
    pub factor: f64,
    pub max_secs: f64,
}

impl Backoff {
    /// The block after the `failures`-th failure, in seconds (`None` below `free`). The same
    /// rule as [`Self::sql_until`], for callers that explain it.
    pub fn block_secs(&self, failures: i32) -> Option<f64> {
        if failures < self.free {
            return None;
        }
        let steps = (failures - self.free).clamp(0, 40);
        Some((self.first_secs * self.factor.powi(steps)).min(self.max_secs))
    }

    /// SQL of "blocked until" after `n` failures (an SQL expression), given `$now` = `now`.
    /// Parameters `$3`..`$6` of the statement are free, first, factor, max.
    pub(crate) fn sql_until(n: &str, now: &str) -> String {
        format!(
            "CASE WHEN ({n}) >= $3 THEN {now} + make_interval(secs => \
             LEAST($6::float8, $4::float8 * power($5::float8, LEAST(({n}) - $3, 40)))) END"
        )
    }
}

/// What claiming an attempt for an address found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// The attempt may go on; it is counted as a failure until [`release`] says otherwise.
    /// `blocked_until` is set when this very attempt reached the limit.
    Admitted {
        failures: i32,
        blocked_until: Option<DateTime<Utc>>,
    },
    /// The address is blocked until then: refuse without checking anything.
    Blocked { until: DateTime<Utc> },
}

/// Until when `addr` is blocked, if it is at `now` (a read: lets a blocked address be refused
/// before it takes any other resource; [`claim`] checks again atomically).
pub async fn blocked_until<'e>(
    ex: impl sqlx::PgExecutor<'e>,
    addr: &str,
    now: DateTime<Utc>,
) -> Result<Option<DateTime<Utc>>> {
    Ok(sqlx::query_scalar!(
        r#"SELECT blocked_until AS "blocked_until!" FROM login_throttle
            WHERE addr = $1 AND blocked_until > $2"#,
        addr,
        now,
    )
    .fetch_optional(ex)
    .await?)
}

/// Counts one sign-in attempt of `addr` as a failure (forgetting earlier failures older than
/// `forget_secs`) unless the address is blocked, and blocks it by `backoff` when this
/// attempt reaches the limit: one statement, so concurrent attempts all count.
pub async fn claim(
    conn: &mut sqlx::PgConnection,
    addr: &str,
    now: DateTime<Utc>,
    backoff: &Backoff,
    forget_secs: f64,
) -> Result<Claim> {
    let n = "CASE WHEN t.last_failure_at <= $2 - make_interval(secs => $7::float8) \
             THEN 1 ELSE t.failures + 1 END";
    // Composed at run time: the backoff rule is one SQL fragment shared with `users`.
    let sql = format!(
        "INSERT INTO login_throttle AS t (addr, failures, last_failure_at, blocked_until)
         VALUES ($1, 1, $2, {first})
         ON CONFLICT (addr) DO UPDATE SET
             failures = {n}, last_failure_at = $2, blocked_until = {until}
         WHERE t.blocked_until IS NULL OR t.blocked_until <= $2
         RETURNING failures, blocked_until",
        first = Backoff::sql_until("1", "$2"),
        until = Backoff::sql_until(n, "$2"),
    );
    let row: Option<(i32, Option<DateTime<Utc>>)> = sqlx::query_as(&sql)
        .bind(addr)
        .bind(now)
        .bind(backoff.free)
        .bind(backoff.first_secs)
        .bind(backoff.factor)
        .bind(backoff.max_secs)
        .bind(forget_secs)
        .fetch_optional(&mut *conn)
        .await?;
    if let Some((failures, blocked_until)) = row {
        return Ok(Claim::Admitted {
            failures,
            blocked_until,
        });
    }
    let until = sqlx::query_scalar!(
        "SELECT blocked_until FROM login_throttle WHERE addr = $1",
        addr
    )
    .fetch_one(&mut *conn)
    .await?;
    Ok(Claim::Blocked {
        until: until.unwrap_or(now),
    })
}

/// A claimed attempt succeeded: it is no failure after all. Lifts the block only when the
/// count falls below `free` again (the block this attempt itself may have set).
pub async fn release<'e>(ex: impl sqlx::PgExecutor<'e>, addr: &str, free: i32) -> Result<()> {
    sqlx::query!(
        "UPDATE login_throttle SET failures = GREATEST(failures - 1, 0),
             blocked_until = CASE WHEN failures - 1 < $2 THEN NULL ELSE blocked_until END
         WHERE addr = $1",
        addr,
        free,
    )
    .execute(ex)
    .await?;
    Ok(())
}

/// Deletes the rows that are forgotten (last failure older than `forget_secs`) and block
/// nothing any more.
pub async fn delete_expired<'e>(
    ex: impl sqlx::PgExecutor<'e>,
    now: DateTime<Utc>,
    forget_secs: f64,
) -> Result<u64> {
    let r = sqlx::query!(
        "DELETE FROM login_throttle
          WHERE last_failure_at <= $1::timestamptz - make_interval(secs => $2::float8)
            AND (blocked_until IS NULL OR blocked_until <= $1)",
        now,
        forget_secs,
    )
    .execute(ex)
    .await?;
    Ok(r.rows_affected())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_starts_at_free_multiplies_and_caps() {
        let b = Backoff {
            free: 5,
            first_secs: 60.0,
            factor: 2.0,
            max_secs: 300.0,
        };
        assert_eq!(b.block_secs(4), None);
        assert_eq!(b.block_secs(5), Some(60.0));
        assert_eq!(b.block_secs(6), Some(120.0));
        assert_eq!(b.block_secs(7), Some(240.0));
        assert_eq!(b.block_secs(8), Some(300.0));
        assert_eq!(b.block_secs(i32::MAX), Some(300.0));
    }
}
