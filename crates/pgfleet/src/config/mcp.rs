//! `[mcp]`: the caps of the MCP server's SQL tools (`execute_sql`, `introspect_schema`),
//! their defaults and validation.

use serde::{Deserialize, Serialize};

use super::ConfigError;

/// Caps of one `execute_sql` call (the same on `/mcp` and `pgfleet mcp`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct McpConfig {
    /// `statement_timeout` of the statement, in seconds.
    pub statement_timeout_secs: u64,
    /// Rows returned at most (the answer says `truncated: true` when there were more).
    pub max_rows: usize,
    /// Bytes of values returned at most.
    pub max_result_bytes: usize,
    /// Bytes of statement text accepted at most.
    pub max_statement_bytes: usize,
}

impl Default for McpConfig {
    fn default() -> Self {
        let d = pgfleet_domain::services::sql::SqlSettings::default();
        Self {
            statement_timeout_secs: d.limits.statement_timeout.as_secs(),
            max_rows: d.limits.max_rows,
            max_result_bytes: d.limits.max_bytes,
            max_statement_bytes: d.max_statement_bytes,
        }
    }
}

impl McpConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if !(1..=3600).contains(&self.statement_timeout_secs)
            || !(1..=100_000).contains(&self.max_rows)
            || !(1024..=64 << 20).contains(&self.max_result_bytes)
            || !(16..=1 << 20).contains(&self.max_statement_bytes)
        {
            return Err(ConfigError::Invalid(
                "mcp: statement_timeout_secs must be 1 to 3600, max_rows 1 to 100000, \
                 max_result_bytes 1 KiB to 64 MiB, max_statement_bytes 16 B to 1 MiB"
                    .to_string(),
            ));
        }
        Ok(())
    }

    pub fn settings(&self) -> pgfleet_domain::services::sql::SqlSettings {
        pgfleet_domain::services::sql::SqlSettings {
            limits: pgfleet_dataplane::query::QueryLimits {
                statement_timeout: std::time::Duration::from_secs(self.statement_timeout_secs),
                max_rows: self.max_rows,
                max_bytes: self.max_result_bytes,
            },
            max_statement_bytes: self.max_statement_bytes,
        }
    }
}
