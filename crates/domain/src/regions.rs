//! Regions and the Postgres servers that serve them. Regions come from configuration; the
//! contract's region ids that have no server are listed as `unavailable`.

use pgfleet_dataplane::PgServer;

/// The region ids and names of the contract.
pub const KNOWN_REGIONS: &[(&str, &str)] = &[
    ("us-east-1", "US East (N. Virginia)"),
    ("us-west-1", "US West (N. California)"),
    ("eu-west-3", "Europe (Paris)"),
    ("eu-central-1", "Europe (Frankfurt)"),
    ("ap-northeast-1", "Asia Pacific (Tokyo)"),
    ("ap-southeast-1", "Asia Pacific (Singapore)"),
];

#[derive(Debug, Clone)]
pub struct Region {
    pub id: String,
    pub name: String,
    pub servers: Vec<PgServer>,
}

impl Region {
    pub fn available(&self) -> bool {
        !self.servers.is_empty()
    }
}

/// The display name of a known region id, else the id itself.
pub fn default_name(id: &str) -> String {
    KNOWN_REGIONS
        .iter()
        .find(|(k, _)| *k == id)
        .map(|(_, n)| n.to_string())
        .unwrap_or_else(|| id.to_string())
}
