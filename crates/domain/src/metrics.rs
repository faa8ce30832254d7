//! Prometheus metrics of this process, rendered by [`render`] in the text exposition format
//! (`GET /metrics`).
//!
//! Built on the `prometheus` crate (tikv/rust-prometheus) without its default `protobuf`
//! feature: a few small dependencies, the text format only. One registry per process; the
//! recording functions are free functions so any layer can call them in one line, and they
//! never fail (a metric that could not be registered is simply not recorded).
//!
//! | metric | type | labels |
//! |---|---|---|
//! | `pgfleet_http_requests_total` | counter | `method`, `route` (matched route template, `unmatched` otherwise), `status` |
//! | `pgfleet_http_request_duration_seconds` | histogram | `method`, `route` |
//! | `pgfleet_provisioning_operations_total` | counter | `kind` (`database.create`, …), `outcome` (`succeeded`, `retrying`, `failed`, `error`) |
//! | `pgfleet_provisioning_duration_seconds` | histogram | `kind`, `outcome` |
//! | `pgfleet_backups_total` | counter | `outcome` |
//! | `pgfleet_backup_duration_seconds` | histogram | `outcome` |
//! | `pgfleet_database_storage_bytes` | gauge | `database_id` |
//! | `pgfleet_database_operations_total` | counter | `database_id`: operations counted by the usage sampler since this process started (reset-safe deltas) |
//! | `pgfleet_database_storage_quota_bytes` | gauge | `database_id`: the storage quota (absent without one) |
//! | `pgfleet_database_over_quota` | gauge | `database_id`: 1 while the database is over its quota (read-only), else 0 |
//! | `pgfleet_tenant_drift_repairs_total` | counter | `kind`: settings changed outside pgfleet that the tenant guard put back |
//! | `pgfleet_server_connection_slots` | gauge | `region`, `server` (its id), `kind`: `capacity` (slots its databases may hold) or `assigned` (the sum of their limits) |
//! | `pgfleet_replicas` | gauge | `state`: `alive` or `gone` — replicas in the registry, as this replica last counted them (every heartbeat) |
//! | `pgfleet_wal_archive_last_age_seconds` | gauge | `region`, `server`: seconds since the server's last WAL segment reached the archive (the recovery point; rendered per request from `pitr_windows`, `services::pitr::render_metrics`, like the three below) |
//! | `pgfleet_wal_bytes` | gauge | `region`, `server`: bytes in the server's `pg_wal` (alert threshold `[pitr] wal_alert_bytes`) |
//! | `pgfleet_wal_archive_failures_total` | counter | `region`, `server`: failed `archive_command` runs (`pg_stat_archiver.failed_count`) |
//! | `pgfleet_wal_archive_ok` | gauge | `region`, `server`: 1 while archiving is healthy, 0 while `/readyz` reports a problem |
//! | `pgfleet_mcp_tool_calls_total` | counter | `tool`, `outcome` (`ok`, `error`): calls of the MCP tools |
//! | `pgfleet_webhook_attempts_total` | counter | `outcome`: `delivered` (2xx) or `failed` — webhook delivery attempts by this replica |
//! | `pgfleet_webhook_backlog` | gauge | none: pending webhook deliveries of enabled endpoints (the shared outbox, as this replica last counted it, every 15 s) |
//! | `pgfleet_webhook_oldest_due_seconds` | gauge | none: how long the oldest due webhook delivery has waited |
//! | `pgfleet_metadata_available` | gauge | none: 1 while requests reach the metadata store, 0 while the metadata circuit breaker answers them 503 at once (rendered by the HTTP layer from this server's state, `pgfleet_http::breaker`) |

use std::sync::LazyLock;
use std::time::Duration;

use prometheus::{
    CounterVec, Encoder, HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts, Registry,
    TextEncoder,
};

use pgfleet_storage::OperationKind;

use crate::outcome::Outcome;

/// `Content-Type` of [`render`]'s output.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

struct Metrics {
    registry: Registry,
    http_requests: IntCounterVec,
    http_duration: HistogramVec,
    operations: IntCounterVec,
    operation_duration: HistogramVec,
    backups: IntCounterVec,
    backup_duration: HistogramVec,
    db_storage: IntGaugeVec,
    db_operations: IntCounterVec,
    db_quota: IntGaugeVec,
    db_over_quota: IntGaugeVec,
    drift_repairs: IntCounterVec,
    pooler_statements: IntCounterVec,
    pooler_transactions: IntCounterVec,
    pooler_resets: IntCounterVec,
    pooler_clients: IntGaugeVec,
    pooler_server_connections: IntGaugeVec,
    pooler_waiting: IntGaugeVec,
    pooler_wait_seconds: CounterVec,
    server_slots: IntGaugeVec,
    replicas: IntGaugeVec,
    mcp_tool_calls: IntCounterVec,
    webhook_attempts: IntCounterVec,
    webhook_backlog: prometheus::IntGauge,
    webhook_oldest_due: prometheus::Gauge,
    /// Last pooler counter values seen per database (counters advance by the difference).
    pooler_seen: std::sync::Mutex<std::collections::HashMap<String, crate::pooled::PooledCounts>>,
}

impl Metrics {
    fn new() -> prometheus::Result<Self> {
        let registry = Registry::new();
        let counter = |name: &str, help: &str, labels: &[&str]| -> prometheus::Result<_> {
            let c = IntCounterVec::new(Opts::new(name, help), labels)?;
            registry.register(Box::new(c.clone()))?;
            Ok(c)
        };
        let histogram = |name: &str, help: &str, labels: &[&str], buckets: Vec<f64>| {
            let h = HistogramVec::new(HistogramOpts::new(name, help).buckets(buckets), labels)?;
            registry.register(Box::new(h.clone()))?;
            prometheus::Result::Ok(h)
        };
        let http_requests = counter(
            "pgfleet_http_requests_total",
            "HTTP requests answered, by method, matched route and status.",
            &["method", "route", "status"],
        )?;
        let http_duration = histogram(
            "pgfleet_http_request_duration_seconds",
            "Time to answer HTTP requests, by method and matched route.",
            &["method", "route"],
            prometheus::DEFAULT_BUCKETS.to_vec(),
        )?;
        let operations = counter(
            "pgfleet_provisioning_operations_total",
            "Reconciler operation attempts (database and connection create, rotate, delete), by kind and outcome.",
            &["kind", "outcome"],
        )?;
        let operation_duration = histogram(
            "pgfleet_provisioning_duration_seconds",
            "Duration of reconciler operation attempts, by kind and outcome.",
            &["kind", "outcome"],
            vec![
                0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0,
            ],
        )?;
        let backups = counter(
            "pgfleet_backups_total",
            "Backups finished, by outcome.",
            &["outcome"],
        )?;
        let backup_duration = histogram(
            "pgfleet_backup_duration_seconds",
            "Duration of backups, by outcome.",
            &["outcome"],
            vec![
                0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 1800.0, 3600.0, 7200.0,
            ],
        )?;
        let db_storage = IntGaugeVec::new(
            Opts::new(
                "pgfleet_database_storage_bytes",
                "Size of each tenant database (pg_database_size) at its last usage sample.",
            ),
            &["database_id"],
        )?;
        registry.register(Box::new(db_storage.clone()))?;
        let db_operations = counter(
            "pgfleet_database_operations_total",
            "Operations of each tenant database counted by the usage sampler since this process started.",
            &["database_id"],
        )?;
        let drift_repairs = counter(
            "pgfleet_tenant_drift_repairs_total",
            "Settings of tenant databases and roles changed outside pgfleet and put back by the tenant guard, by kind.",
            &["kind"],
        )?;
        let pooler_statements = counter(
            "pgfleet_pooler_statements_total",
            "Statements completed through the pooled endpoint (and query plans through the prisma+postgres:// endpoint), by database.",
            &["database_id"],
        )?;
        let pooler_transactions = counter(
            "pgfleet_pooler_transactions_total",
            "Transactions completed through the pooled endpoint (and the prisma+postgres:// endpoint), by database.",
            &["database_id"],
        )?;
        let pooler_resets = counter(
            "pgfleet_pooler_server_resets_total",
            "Server connections of the pooled endpoint reset (DISCARD ALL) or closed because a client left session state on them, by database.",
            &["database_id"],
        )?;
        let gauge = |name: &str, help: &str| -> prometheus::Result<IntGaugeVec> {
            let g = IntGaugeVec::new(Opts::new(name, help), &["database_id"])?;
            registry.register(Box::new(g.clone()))?;
            Ok(g)
        };
        let pooler_clients = gauge(
            "pgfleet_pooler_clients",
            "Clients connected to the pooled endpoint, by database (at the last usage sample).",
        )?;
        let pooler_server_connections = gauge(
            "pgfleet_pooler_server_connections",
            "Server connections the pooler holds, by database (at the last usage sample).",
        )?;
        let pooler_waiting = gauge(
            "pgfleet_pooler_waiting_clients",
            "Clients waiting for a server connection of the pooled endpoint, by database (at the last usage sample).",
        )?;
        let db_quota = gauge(
            "pgfleet_database_storage_quota_bytes",
            "Storage quota of each tenant database, in bytes (absent when there is none).",
        )?;
        let db_over_quota = gauge(
            "pgfleet_database_over_quota",
            "1 while a tenant database is over its storage quota (read-only), else 0 (at its last usage sample).",
        )?;
        let pooler_wait_seconds = CounterVec::new(
            Opts::new(
                "pgfleet_pooler_wait_seconds_total",
                "Time clients of the pooled endpoint have waited for a server connection, by database.",
            ),
            &["database_id"],
        )?;
        registry.register(Box::new(pooler_wait_seconds.clone()))?;
        let server_slots = IntGaugeVec::new(
            Opts::new(
                "pgfleet_server_connection_slots",
                "Connection slots of each Postgres server: its capacity for tenant databases, and \
                 the sum of the connection limits of the databases placed on it.",
            ),
            &["region", "server", "kind"],
        )?;
        registry.register(Box::new(server_slots.clone()))?;
        let replicas = IntGaugeVec::new(
            Opts::new(
                "pgfleet_replicas",
                "Replicas registered on the metadata store, by state (alive or gone).",
            ),
            &["state"],
        )?;
        registry.register(Box::new(replicas.clone()))?;
        let mcp_tool_calls = counter(
            "pgfleet_mcp_tool_calls_total",
            "MCP tool calls, by tool and outcome (ok, error).",
            &["tool", "outcome"],
        )?;
        let webhook_attempts = counter(
            "pgfleet_webhook_attempts_total",
            "Webhook delivery attempts by this replica, by outcome (delivered: a 2xx answer).",
            &["outcome"],
        )?;
        let webhook_backlog = prometheus::IntGauge::new(
            "pgfleet_webhook_backlog",
            "Pending webhook deliveries of enabled endpoints in the shared outbox.",
        )?;
        registry.register(Box::new(webhook_backlog.clone()))?;
        let webhook_oldest_due = prometheus::Gauge::new(
            "pgfleet_webhook_oldest_due_seconds",
            "Seconds the oldest due webhook delivery has waited.",
        )?;
        registry.register(Box::new(webhook_oldest_due.clone()))?;
        Ok(Self {
            replicas,
            mcp_tool_calls,
            webhook_attempts,
            webhook_backlog,
            webhook_oldest_due,
            server_slots,
            pooler_waiting,
            pooler_wait_seconds,
            pooler_statements,
            pooler_transactions,
            pooler_resets,
            pooler_clients,
            pooler_server_connections,
            pooler_seen: std::sync::Mutex::new(std::collections::HashMap::new()),
            registry,
            http_requests,
            http_duration,
            operations,
            operation_duration,
            backups,
            backup_duration,
            db_storage,
            db_operations,
            db_quota,
            db_over_quota,
            drift_repairs,
        })
    }
}

static METRICS: LazyLock<Option<Metrics>> = LazyLock::new(|| match Metrics::new() {
    Ok(m) => Some(m),
    Err(e) => {
        tracing::error!(error = %e, "metrics could not be registered");
        None
    }
});

fn metrics() -> Option<&'static Metrics> {
    METRICS.as_ref()
}

/// One HTTP request answered. `route` must be a route template (bounded cardinality).
pub fn record_http(method: &str, route: &str, status: u16, elapsed: Duration) {
    if let Some(m) = metrics() {
        m.http_requests
            .with_label_values(&[method, route, &status.to_string()])
            .inc();
        m.http_duration
            .with_label_values(&[method, route])
            .observe(elapsed.as_secs_f64());
    }
}

/// One MCP tool call answered (`outcome`: `ok` or `error`, a tool error).
pub fn record_mcp_tool(tool: &str, outcome: &str) {
    if let Some(m) = metrics() {
        m.mcp_tool_calls.with_label_values(&[tool, outcome]).inc();
    }
}

/// One attempt of a reconciler operation finished (`NotRun` is not recorded).
pub fn record_operation(kind: OperationKind, result: &crate::Result<Outcome>, elapsed: Duration) {
    let outcome = match result {
        Ok(Outcome::Done) => "succeeded",
        Ok(Outcome::Retrying) => "retrying",
        Ok(Outcome::Failed) => "failed",
        Ok(Outcome::NotRun) => return,
        Err(_) => "error",
    };
    if let Some(m) = metrics() {
        m.operations
            .with_label_values(&[kind.as_str(), outcome])
            .inc();
        m.operation_duration
            .with_label_values(&[kind.as_str(), outcome])
            .observe(elapsed.as_secs_f64());
    }
}

/// One webhook delivery attempt: `delivered` or `failed`.
pub fn record_webhook_attempt(outcome: &'static str) {
    if let Some(m) = metrics() {
        m.webhook_attempts.with_label_values(&[outcome]).inc();
    }
}

/// The webhook outbox as last counted: pending deliveries, and the oldest due one's wait.
pub fn record_webhook_backlog(pending: i64, oldest_due_seconds: f64) {
    if let Some(m) = metrics() {
        m.webhook_backlog.set(pending);
        m.webhook_oldest_due.set(oldest_due_seconds.max(0.0));
    }
}

/// One backup finished: `outcome` is e.g. `succeeded` or `failed`; `seconds` its duration.
pub fn record_backup(outcome: &str, seconds: f64) {
    if let Some(m) = metrics() {
        m.backups.with_label_values(&[outcome]).inc();
        m.backup_duration
            .with_label_values(&[outcome])
            .observe(seconds.max(0.0));
    }
}

/// A usage sample of a database: its size now, and the operations since its previous sample.
pub fn record_database_usage(database_id: &str, storage_bytes: i64, operations: u64) {
    if let Some(m) = metrics() {
        m.db_storage
            .with_label_values(&[database_id])
            .set(storage_bytes);
        m.db_operations
            .with_label_values(&[database_id])
            .inc_by(operations);
    }
}

/// The storage quota of a database (`None`: none) and whether its size is over it.
pub fn record_quota(database_id: &str, quota_bytes: Option<i64>, over: bool) {
    if let Some(m) = metrics() {
        match quota_bytes {
            Some(q) => m.db_quota.with_label_values(&[database_id]).set(q),
            None => {
                let _ = m.db_quota.remove_label_values(&[database_id]);
            }
        }
        m.db_over_quota
            .with_label_values(&[database_id])
            .set(i64::from(over));
    }
}

/// A difference the tenant guard put back (`kind` is one of [`pgfleet_dataplane::Drift::kind`]).
pub fn record_drift_repair(kind: &str) {
    if let Some(m) = metrics() {
        m.drift_repairs.with_label_values(&[kind]).inc();
    }
}

/// The pooled endpoint's counters of a database (cumulative since the process started).
pub fn record_pooler(database_id: &str, c: &crate::pooled::PooledCounts) {
    let Some(m) = metrics() else { return };
    let prev = m
        .pooler_seen
        .lock()
        .ok()
        .and_then(|mut seen| seen.insert(database_id.to_string(), *c))
        .unwrap_or_default();
    m.pooler_statements
        .with_label_values(&[database_id])
        .inc_by(c.statements.saturating_sub(prev.statements));
    m.pooler_transactions
        .with_label_values(&[database_id])
        .inc_by(c.transactions.saturating_sub(prev.transactions));
    m.pooler_resets
        .with_label_values(&[database_id])
        .inc_by(c.resets.saturating_sub(prev.resets));
    m.pooler_wait_seconds
        .with_label_values(&[database_id])
        .inc_by(c.wait_micros.saturating_sub(prev.wait_micros) as f64 / 1e6);
    m.pooler_waiting
        .with_label_values(&[database_id])
        .set(i64::try_from(c.waiting).unwrap_or(i64::MAX));
    m.pooler_clients
        .with_label_values(&[database_id])
        .set(i64::try_from(c.clients).unwrap_or(i64::MAX));
    m.pooler_server_connections
        .with_label_values(&[database_id])
        .set(i64::try_from(c.server_connections).unwrap_or(i64::MAX));
}

/// A server's capacity (when known) and the slots its databases hold.
pub fn record_server_slots(region: &str, server_id: &str, capacity: Option<i32>, assigned: i64) {
    if let Some(m) = metrics() {
        if let Some(c) = capacity {
            m.server_slots
                .with_label_values(&[region, server_id, "capacity"])
                .set(i64::from(c));
        }
        m.server_slots
            .with_label_values(&[region, server_id, "assigned"])
            .set(assigned);
    }
}

/// Replicas in the registry: alive and gone.
pub fn record_replicas(alive: usize, gone: usize) {
    if let Some(m) = metrics() {
        let n = |v: usize| i64::try_from(v).unwrap_or(i64::MAX);
        m.replicas.with_label_values(&["alive"]).set(n(alive));
        m.replicas.with_label_values(&["gone"]).set(n(gone));
    }
}

/// Drops the series of a database that is no longer sampled (deleted, being restored).
pub fn forget_database(database_id: &str) {
    if let Some(m) = metrics() {
        let _ = m.db_storage.remove_label_values(&[database_id]);
        let _ = m.db_operations.remove_label_values(&[database_id]);
        let _ = m.db_quota.remove_label_values(&[database_id]);
        let _ = m.db_over_quota.remove_label_values(&[database_id]);
        let _ = m.pooler_clients.remove_label_values(&[database_id]);
        let _ = m.pooler_waiting.remove_label_values(&[database_id]);
        let _ = m
            .pooler_server_connections
            .remove_label_values(&[database_id]);
    }
}

/// Every metric in the Prometheus text exposition format ([`CONTENT_TYPE`]).
pub fn render() -> String {
    let Some(m) = metrics() else {
        return String::new();
    };
    let mut buf = Vec::new();
    if let Err(e) = TextEncoder::new().encode(&m.registry.gather(), &mut buf) {
        tracing::error!(error = %e, "metrics could not be encoded");
    }
    String::from_utf8(buf).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recorded_metrics_are_rendered() {
        record_http("GET", "/v1/databases/{id}", 200, Duration::from_millis(3));
        record_backup("succeeded", 1.5);
        record_operation(
            OperationKind::DatabaseCreate,
            &Ok(Outcome::Done),
            Duration::from_millis(40),
        );
        record_database_usage("db_test_metrics", 1234, 7);
        let text = render();
        assert!(text.contains(
            r#"pgfleet_http_requests_total{method="GET",route="/v1/databases/{id}",status="200"} "#
        ));
        assert!(text.contains(r#"pgfleet_backups_total{outcome="succeeded"} 1"#));
        assert!(text.contains(
            r#"pgfleet_provisioning_operations_total{kind="database.create",outcome="succeeded"} 1"#
        ));
        assert!(
            text.contains(r#"pgfleet_database_storage_bytes{database_id="db_test_metrics"} 1234"#)
        );
        assert!(
            text.contains(r#"pgfleet_database_operations_total{database_id="db_test_metrics"} 7"#)
        );
        record_quota("db_test_metrics", Some(4096), true);
        record_drift_repair("login_password");
        let text = render();
        assert!(text.contains(
            r#"pgfleet_database_storage_quota_bytes{database_id="db_test_metrics"} 4096"#
        ));
        assert!(text.contains(r#"pgfleet_database_over_quota{database_id="db_test_metrics"} 1"#));
        assert!(text.contains(r#"pgfleet_tenant_drift_repairs_total{kind="login_password"} 1"#));
        forget_database("db_test_metrics");
        assert!(!render().contains("db_test_metrics"));
    }
}
