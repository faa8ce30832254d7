//! `[capacity]`: how connection slots are shared between workspaces and kept for pgfleet,
//! its defaults, and the checks that a database still fits (workspace quota, embedded
//! cluster's `max_connections`).

use serde::{Deserialize, Serialize};

use super::{Config, ConfigError, DEFAULT_METADATA_POOL};

/// `[capacity]`: how connection slots are shared, so one workspace cannot take a whole
/// server. Each database takes `database_connection_limit` slots; a create that does not fit
/// the workspace's quota or any server of its region is refused (400) and creates nothing.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CapacityConfig {
    /// Connection slots the databases of one workspace may hold together (the sum of their
    /// `CONNECTION LIMIT`s, on every server).
    pub workspace_connections: u32,
    /// Slots kept free on every server for pgfleet's own sessions (reconciler, usage
    /// sampler, backups and restores, of every replica) and your own tools. The databases
    /// placed on a server hold at most `max_connections` less this less the server's
    /// `superuser_reserved_connections` (superuser sessions take any free slot first, so both
    /// are kept out). The embedded cluster sets `superuser_reserved_connections` to 3
    /// (PostgreSQL's default) plus the metadata pool when the metadata lives there.
    pub reserved_connections: u32,
}

impl Default for CapacityConfig {
    fn default() -> Self {
        Self {
            workspace_connections: 400,
            reserved_connections: 10,
        }
    }
}

/// Superuser-only slots of the embedded cluster besides the metadata pool's.
pub const EMBEDDED_SUPERUSER_RESERVED: u32 = 3;

impl Config {
    /// `superuser_reserved_connections` of the embedded cluster: PostgreSQL's default (3, for
    /// an administrator's `psql`), plus the metadata pool when the metadata database lives
    /// there (every API request needs it, so its sessions get slots no tenant can take).
    pub fn embedded_superuser_reserved(&self) -> u32 {
        let metadata = if self.metadata.url.is_none() {
            self.metadata
                .max_connections
                .unwrap_or(DEFAULT_METADATA_POOL)
        } else {
            0
        };
        EMBEDDED_SUPERUSER_RESERVED.saturating_add(metadata)
    }

    /// At least one database fits a workspace's quota, and (when the embedded cluster runs)
    /// the cluster beside the slots kept for superusers and pgfleet.
    pub(super) fn validate_capacity(&self) -> Result<(), ConfigError> {
        if i64::from(self.capacity.workspace_connections)
            < i64::from(self.database_connection_limit)
        {
            return Err(ConfigError::Invalid(format!(
                "capacity.workspace_connections ({}) must be at least database_connection_limit \
                 ({}), or no workspace could create a database",
                self.capacity.workspace_connections, self.database_connection_limit
            )));
        }
        if self.needs_embedded() {
            // PostgreSQL refuses to start unless superuser_reserved_connections plus
            // max_wal_senders (10) is below max_connections; and at least one database must
            // fit beside what is kept for pgfleet.
            let su = u64::from(self.embedded_superuser_reserved());
            let kept = su + u64::from(self.capacity.reserved_connections);
            let max = u64::from(self.postgres.max_connections);
            let one_db = u64::try_from(self.database_connection_limit).unwrap_or(0);
            if su + 10 >= max || kept + one_db > max {
                return Err(ConfigError::Invalid(format!(
                    "postgres.max_connections ({max}) leaves no room for tenant databases: {su} \
                     slots are reserved for superusers (3, plus the metadata pool when the \
                     metadata lives in the embedded cluster) and capacity.reserved_connections \
                     ({}) for pgfleet, and one database needs database_connection_limit ({one_db})",
                    self.capacity.reserved_connections
                )));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Config, Overrides};

    #[test]
    fn capacity_section_defaults_validation_and_print() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("pgfleet.toml");
        std::fs::write(&file, "").unwrap();
        let cfg = Config::load(Some(&file), &Overrides::default()).unwrap();
        assert_eq!(cfg.capacity.workspace_connections, 400);
        assert_eq!(cfg.capacity.reserved_connections, 10);
        assert_eq!(cfg.database_connection_limit, 20);
        // Embedded metadata: its pool is reserved too.
        assert_eq!(cfg.embedded_superuser_reserved(), 19);
        let text = cfg.to_toml();
        assert!(
            text.contains("[capacity]")
                && text.contains("workspace_connections = 400")
                && text.contains("reserved_connections = 10"),
            "{text}"
        );

        std::fs::write(
            &file,
            "[capacity]\nworkspace_connections = 40\nreserved_connections = 5\n\
             [metadata]\nmax_connections = 4\n",
        )
        .unwrap();
        let cfg = Config::load(Some(&file), &Overrides::default()).unwrap();
        assert_eq!(cfg.capacity.workspace_connections, 40);
        assert_eq!(cfg.embedded_superuser_reserved(), 7);

        let refused = |toml: &str, words: &str| {
            std::fs::write(&file, toml).unwrap();
            let e = Config::load(Some(&file), &Overrides::default()).unwrap_err();
            assert!(e.to_string().contains(words), "{toml}: {e}");
        };
        refused("[capacity]\nworkspace_slots = 1\n", "unknown field");
        refused(
            "database_connection_limit = 30\n[capacity]\nworkspace_connections = 20\n",
            "capacity.workspace_connections (20) must be at least database_connection_limit (30)",
        );
        refused(
            "database_connection_limit = 5\n",
            "pooler.pool_size (10) must not exceed database_connection_limit (5)",
        );
        refused(
            "[postgres]\nmax_connections = 48\n",
            "postgres.max_connections (48) leaves no room for tenant databases: 19 slots",
        );
    }
}
