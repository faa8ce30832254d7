//! [`PooledCounts`]: what the embedded pooler counted for one database. It sits below both
//! the pooler's services ([`crate::services::pooler`], which read it from the pooler) and the
//! metrics ([`crate::metrics`], which publish it), so neither imports the other for it.

/// What the pooled endpoint counted for one database since this process started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PooledCounts {
    /// Statements completed through the pooler.
    pub statements: u64,
    /// Transactions (ReadyForQuery back to idle) through the pooler.
    pub transactions: u64,
    pub clients: u64,
    pub server_connections: u64,
    /// Clients waiting now for a server connection.
    pub waiting: u64,
    /// Time clients have waited for a server connection, in µs.
    pub wait_micros: u64,
    /// Server connections reset or closed because a client left session state on them.
    pub resets: u64,
}
