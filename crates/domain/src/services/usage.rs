//! Usage: a sampler that records, at an interval, each ready database's operations counter
//! and size as its server reports them, and `GET /v1/databases/{id}/usage`, which sums
//! operations over a window and reports storage at its end.
//!
//! **Operations** are statements run by the database's own (non-superuser) roles, the sum
//! of `pg_stat_statements.calls` for its `dbid`; on a server where pg_stat_statements is
//! not available they are transactions (`xact_commit + xact_rollback` of
//! `pg_stat_database`). Each sample records which (`source`).
//!
//! **Counters, not rates.** A sample stores the raw cumulative counter. Usage over a window
//! is the sum of the increases between consecutive samples ([`increase`]): a value lower
//! than the one before means the server lost its statistics (crash, stats reset, the
//! database replaced by a restore), so the new value counts from zero; a change of source
//! starts a new baseline. The baseline of a window is the last sample before it; a database
//! with no earlier sample counts from zero, as its counters did when it was created.
//!
//! To keep the table small, a sample equal to the previous one is not stored (the sums and
//! "storage at the end" are the same without it), and samples older than the retention are
//! pruned, keeping each database's newest one as the next window's baseline.

use crate::access::WorkspaceAccess;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

use chrono::{DateTime, Datelike, NaiveDate, NaiveDateTime, TimeZone, Utc};
use pgfleet_api_types::ts;
use pgfleet_api_types::usage::{
    DatabaseUsage, OperationsUsed, StorageUsed, UsageMetrics, UsagePeriod,
};
use pgfleet_storage::usage::{self as store, SampledDatabase, UsageSample};
use tokio::sync::watch;

use super::periodic::Periodic;
use crate::lease::Job;
use crate::{DomainError, Result};

/// `source` of samples whose operations are pg_stat_statements calls.
pub const SOURCE_STATEMENTS: &str = "statements";
/// `source` of samples whose operations are pg_stat_database transactions.
pub const SOURCE_TRANSACTIONS: &str = "transactions";

const GIB: f64 = 1024.0 * 1024.0 * 1024.0;
/// How long one server may take to answer a sampling query.
const SERVER_TIMEOUT: Duration = Duration::from_secs(30);
/// How often old samples are pruned.
const PRUNE_EVERY: Duration = Duration::from_secs(3600);

/// Settings of the sampler.
#[derive(Debug, Clone, Copy)]
pub struct UsageSettings {
    /// Time between two samples of every ready database.
    pub interval: Duration,
    /// Samples older than this are pruned.
    pub retention: Duration,
}

impl Default for UsageSettings {
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(60),
            retention: Duration::from_secs(400 * 86_400),
        }
    }
}

/// One reading of a cumulative counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CounterPoint<'a> {
    pub value: i64,
    pub source: &'a str,
}

/// How much a counter grew from `prev` to `cur`: the difference; all of `cur` when it went
/// down (a reset: it counted again from zero); nothing when the source changed.
pub fn step(prev: CounterPoint<'_>, cur: CounterPoint<'_>) -> i64 {
    if prev.source != cur.source {
        0
    } else if cur.value < prev.value {
        cur.value.max(0)
    } else {
        cur.value - prev.value
    }
}

/// Total growth over consecutive readings; the first one is the baseline.
pub fn increase(points: &[CounterPoint<'_>]) -> i64 {
    points
        .windows(2)
        .map(|w| step(w[0], w[1]))
        .fold(0i64, i64::saturating_add)
}

/// What the sampler remembers of a database between two rounds.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Last {
    operations: i64,
    storage_bytes: i64,
    source: String,
    /// Whether this reading is in the store (false after a failed insert: retried next round).
    stored: bool,
}

impl Last {
    fn point(&self) -> CounterPoint<'_> {
        CounterPoint {
            value: self.operations,
            source: &self.source,
        }
    }
}

/// The sampler's memory: last reading per database id.
#[derive(Debug, Default)]
struct SamplerState {
    last: HashMap<String, Last>,
    last_prune: Option<std::time::Instant>,
}

/// Usage sampling and reports. Obtained from [`super::Services::usage`].
#[derive(Debug, Clone, Copy)]
pub struct Usage<'a> {
    pub(super) ctx: &'a std::sync::Arc<super::Ctx>,
}

impl Usage<'_> {
    /// The background sampler: one round at once, then one per `settings.interval`, until
    /// `shutdown` changes (a round in progress is abandoned; it writes nothing partial).
    pub fn spawn_sampler(
        &self,
        settings: UsageSettings,
        shutdown: watch::Receiver<bool>,
    ) -> tokio::task::JoinHandle<()> {
        let ctx = std::sync::Arc::clone(self.ctx);
        tokio::spawn(async move {
            let mut state = SamplerState::default();
            let mut periodic = Periodic::new(&ctx, Job::UsageSampler, settings.interval, shutdown);
            while periodic.next().await {
                let started_at = periodic.started_at();
                if periodic
                    .run(ctx.usage().sample_round(&mut state, settings, started_at))
                    .await
                    .is_none()
                {
                    return;
                }
            }
        })
    }

    /// One round; its samples carry `now`, the time the round started (when this replica
    /// won its lease), not when a (possibly slow) server answered: rounds are an interval
    /// apart across replicas, so the samples of one database are too, however long the
    /// reads take under load.
    async fn sample_round(
        &self,
        state: &mut SamplerState,
        settings: UsageSettings,
        now: chrono::DateTime<chrono::Utc>,
    ) {
        self.ctx.capacity().refresh_slot_metrics().await;
        let pool = self.ctx.store().pool();
        let dbs = match store::ready_databases(pool).await {
            Ok(d) => d,
            Err(e) => {
                tracing::warn!(error = %e, "usage sampler cannot list databases");
                return;
            }
        };
        let mut by_server: BTreeMap<String, Vec<SampledDatabase>> = BTreeMap::new();
        for db in dbs {
            by_server.entry(db.server_id.clone()).or_default().push(db);
        }
        let mut present: HashSet<String> = HashSet::new();
        let pooled = self.ctx.pooler().counts();
        for (server_id, dbs) in by_server {
            present.extend(dbs.iter().map(|d| d.id.clone()));
            let Ok(server) = self.ctx.server(Some(&server_id)) else {
                continue;
            };
            let names: Vec<String> = dbs.iter().map(|d| d.pg_database.clone()).collect();
            let read = tokio::time::timeout(
                SERVER_TIMEOUT,
                self.ctx.driver().database_usage(server, &names),
            )
            .await;
            let usage = match read {
                Ok(Ok(u)) => u,
                Ok(Err(e)) => {
                    tracing::warn!(server = %server.key, error = %e, "usage sampler cannot read a server");
                    continue;
                }
                Err(_) => {
                    tracing::warn!(server = %server.key, "usage sampler: server did not answer in time");
                    continue;
                }
            };
            let by_name: HashMap<&str, _> =
                usage.iter().map(|u| (u.pg_database.as_str(), u)).collect();
            for db in &dbs {
                let Some(u) = by_name.get(db.pg_database.as_str()) else {
                    continue;
                };
                let pooled_here = pooled.get(&db.id);
                let pooled_source;
                let (operations, source) = match (u.statements, pooled_here) {
                    (Some(s), _) => (s, SOURCE_STATEMENTS),
                    (None, None) => (u.xacts, SOURCE_TRANSACTIONS),
                    (None, Some(p)) => {
                        // The pooler's counters restart with the process: a source of
                        // its own per process, so a restart starts a new baseline.
                        pooled_source =
                            format!("{SOURCE_TRANSACTIONS}+pooled/{}", self.ctx.boot_tag());
                        (
                            crate::services::pooler::operations_with_pooled(u.xacts, Some(p)),
                            pooled_source.as_str(),
                        )
                    }
                };
                if let Some(p) = pooled_here {
                    crate::metrics::record_pooler(&db.id, p);
                }
                let mut cur = Last {
                    operations,
                    storage_bytes: u.size_bytes,
                    source: source.to_string(),
                    stored: true,
                };
                let prev = state.last.get(&db.id);
                let grew = prev.map_or(0, |p| step(p.point(), cur.point()));
                let unchanged = prev.is_some_and(|p| {
                    p.stored
                        && p.operations == cur.operations
                        && p.storage_bytes == cur.storage_bytes
                        && p.source == cur.source
                });
                if !unchanged {
                    let sample = UsageSample {
                        database_id: db.id.clone(),
                        sampled_at: now,
                        operations,
                        storage_bytes: u.size_bytes,
                        source: source.to_string(),
                    };
                    if let Err(e) = store::insert(pool, &sample).await {
                        tracing::warn!(database = %db.id, error = %e, "usage sample not stored");
                        cur.stored = false;
                    }
                }
                crate::metrics::record_database_usage(
                    &db.id,
                    u.size_bytes,
                    u64::try_from(grew).unwrap_or(0),
                );
                let quota = self.ctx.config().tenant.storage_quota_bytes;
                crate::metrics::record_quota(
                    &db.id,
                    quota,
                    quota.is_some_and(|q| u.size_bytes > q),
                );
                state.last.insert(db.id.clone(), cur);
            }
        }
        state.last.retain(|id, _| {
            let keep = present.contains(id);
            if !keep {
                crate::metrics::forget_database(id);
            }
            keep
        });
        if state.last_prune.is_none_or(|t| t.elapsed() >= PRUNE_EVERY) {
            state.last_prune = Some(std::time::Instant::now());
            let horizon = self.ctx.clock().now()
                - chrono::Duration::from_std(settings.retention)
                    .unwrap_or(chrono::Duration::days(400));
            match store::prune(pool, horizon).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(deleted = n, "old usage samples pruned"),
                Err(e) => tracing::warn!(error = %e, "usage samples not pruned"),
            }
        }
    }

    /// `GET /v1/databases/{id}/usage`: operations in `start..=end` (default: from the start
    /// of `end`'s month, UTC, to now) and storage at `end`.
    pub async fn database(
        &self,
        access: &WorkspaceAccess,
        id: &str,
        start: Option<&str>,
        end: Option<&str>,
    ) -> Result<DatabaseUsage> {
        let p = access.principal();
        let now = self.ctx.clock().now();
        let end = match end {
            Some(s) => parse_date("endDate", s, true)?,
            None => now,
        };
        let start = match start {
            Some(s) => parse_date("startDate", s, false)?,
            None => month_start(end),
        };
        if start > end {
            return Err(DomainError::bad_request_hint(
                format!("startDate ({}) is after endDate ({})", ts(&start), ts(&end)),
                "Send a startDate at or before endDate.",
            ));
        }
        let db = self.ctx.databases().visible(p, id).await?;
        let samples = store::window(self.ctx.store().pool(), &db.id, start, end).await?;
        let mut points: Vec<CounterPoint<'_>> = Vec::with_capacity(samples.len() + 1);
        if let Some(first) = samples.first().filter(|s| s.sampled_at >= start) {
            // No sample before the window: the counters started at zero with the database.
            points.push(CounterPoint {
                value: 0,
                source: &first.source,
            });
        }
        points.extend(samples.iter().map(|s| CounterPoint {
            value: s.operations,
            source: &s.source,
        }));
        let storage_bytes = samples.last().map_or(0, |s| s.storage_bytes);
        Ok(DatabaseUsage {
            period: UsagePeriod {
                start: ts(&start),
                end: ts(&end),
            },
            metrics: UsageMetrics {
                operations: OperationsUsed {
                    used: increase(&points),
                    unit: Default::default(),
                },
                storage: StorageUsed {
                    used: storage_bytes as f64 / GIB,
                    unit: Default::default(),
                    quota: self
                        .ctx
                        .config()
                        .tenant
                        .storage_quota_bytes
                        .map(|q| q as f64 / GIB),
                    read_only: pgfleet_storage::databases::over_quota_since(
                        self.ctx.store().pool(),
                        &db.id,
                    )
                    .await?
                    .is_some(),
                },
            },
            generated_at: ts(&now),
        })
    }
}

/// Midnight UTC of the first day of `t`'s month.
fn month_start(t: DateTime<Utc>) -> DateTime<Utc> {
    NaiveDate::from_ymd_opt(t.year(), t.month(), 1)
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|d| Utc.from_utc_datetime(&d))
        .unwrap_or(t)
}

/// An ISO 8601 date-time (`2025-01-31T12:00:00Z`, any offset; without one, UTC) or date
/// (`2025-01-31`: its first instant, or with `end_of_day` its last millisecond).
pub fn parse_date(field: &str, s: &str, end_of_day: bool) -> Result<DateTime<Utc>> {
    let s = s.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&Utc));
    }
    for fmt in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%dT%H:%M"] {
        if let Ok(t) = NaiveDateTime::parse_from_str(s, fmt) {
            return Ok(Utc.from_utc_datetime(&t));
        }
    }
    if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        let t = if end_of_day {
            d.and_hms_milli_opt(23, 59, 59, 999)
        } else {
            d.and_hms_opt(0, 0, 0)
        };
        if let Some(t) = t {
            return Ok(Utc.from_utc_datetime(&t));
        }
    }
    Err(DomainError::bad_request_hint(
        format!("{field} {s:?} is not a date"),
        "Use ISO 8601: a date (2025-01-31) or a date-time (2025-01-31T12:00:00Z).",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pts(values: &[(i64, &'static str)]) -> Vec<CounterPoint<'static>> {
        values
            .iter()
            .map(|&(value, source)| CounterPoint { value, source })
            .collect()
    }

    const S: &str = SOURCE_STATEMENTS;
    const T: &str = SOURCE_TRANSACTIONS;

    #[test]
    fn increase_sums_deltas() {
        assert_eq!(increase(&pts(&[(10, S), (15, S), (15, S), (40, S)])), 30);
        assert_eq!(increase(&pts(&[(10, S)])), 0);
        assert_eq!(increase(&[]), 0);
    }

    #[test]
    fn a_drop_is_a_reset_that_counts_from_zero() {
        // 100 → 250 (+150), restart: 250 → 30 (+30), 30 → 80 (+50).
        assert_eq!(increase(&pts(&[(100, S), (250, S), (30, S), (80, S)])), 230);
        // A reset to exactly zero adds nothing, then growth counts again.
        assert_eq!(increase(&pts(&[(5, S), (0, S), (7, S)])), 7);
    }

    #[test]
    fn a_change_of_source_is_a_new_baseline() {
        // 10 statements, then the server falls back to transactions (big counter), +3.
        assert_eq!(increase(&pts(&[(0, S), (10, S), (5000, T), (5003, T)])), 13);
    }

    #[test]
    fn dates_parse_as_iso_8601() {
        let t = parse_date("startDate", "2025-03-04T05:06:07Z", false).unwrap_or_default();
        assert_eq!(ts(&t), "2025-03-04T05:06:07.000Z");
        let t = parse_date("startDate", "2025-03-04T05:06:07+02:00", false).unwrap_or_default();
        assert_eq!(ts(&t), "2025-03-04T03:06:07.000Z");
        let t = parse_date("startDate", "2025-03-04", false).unwrap_or_default();
        assert_eq!(ts(&t), "2025-03-04T00:00:00.000Z");
        let t = parse_date("endDate", "2025-03-04", true).unwrap_or_default();
        assert_eq!(ts(&t), "2025-03-04T23:59:59.999Z");
        for bad in ["", "yesterday", "2025-13-01", "2025-02-30", "1700000000"] {
            assert!(
                matches!(
                    parse_date("startDate", bad, false),
                    Err(DomainError::BadRequest { .. })
                ),
                "{bad:?}"
            );
        }
        let march = parse_date("x", "2025-03-17T10:00:00Z", false).unwrap_or_default();
        assert_eq!(ts(&month_start(march)), "2025-03-01T00:00:00.000Z");
    }
}
