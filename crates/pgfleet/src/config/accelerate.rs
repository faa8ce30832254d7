//! `[accelerate]`: the `prisma+postgres://` endpoint's settings (listen address, public
//! host and port, TLS, per-key limits, connection cap), their defaults and their validation.

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::ConfigError;

/// `[accelerate]`: the endpoint that serves Prisma Client's HTTP query protocol
/// (`prisma+postgres://HOST:PORT/?api_key=KEY`) inside `pgfleet serve`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AccelerateConfig {
    /// Run the endpoint (connections then get `endpoints.accelerate` and an API key).
    pub enabled: bool,
    pub listen: SocketAddr,
    /// Host written into `prisma+postgres://` strings; default `postgres.host`. Prisma
    /// Client speaks plain HTTP only to hosts containing `localhost`, `127.0.0.1` or
    /// `[::1]`, HTTPS to every other.
    pub host: Option<String>,
    /// Port written into `prisma+postgres://` strings; default the listening port.
    pub public_port: Option<u16>,
    /// PEM certificate and key. Without them the endpoint speaks plain HTTP on a loopback
    /// address (as Prisma Client does for local hosts) and HTTPS with a self-signed
    /// certificate kept in `<data_dir>/accelerate-tls` on any other address.
    pub tls_cert_file: Option<PathBuf>,
    pub tls_key_file: Option<PathBuf>,
    /// A query plan (outside an interactive transaction: the whole plan) running longer
    /// is cancelled and answered `422` `Query timeout exceeded` (as the reference executor),
    /// in milliseconds.
    pub query_timeout_ms: u64,
    /// Cap on the `timeout` an interactive transaction may ask for, in milliseconds.
    pub max_transaction_timeout_ms: u64,
    /// Largest request body (a query plan with its parameters); larger: `413` `P6005`.
    pub max_request_bytes: usize,
    /// Queries one API key may have running at once across the live replicas (each admits
    /// `ceil(limit / live replicas)`, from the replica registry); more: `429` `P5011`.
    pub max_concurrent_queries: usize,
    /// Idle server connections kept per connection (login role); never more than the
    /// database's `CONNECTION LIMIT` are open.
    pub idle_connections: usize,
    /// HTTP connections open at once; past it a new connection is closed at once. Default:
    /// an eighth of the file descriptors left after the reserve, at most 1024, taken before
    /// the API's and the pooler's shares (a value that does not fit is lowered, with a
    /// warning; see `crate::descriptors`). `config print` shows the value derived for this
    /// machine.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_connections: Option<usize>,
}

impl Default for AccelerateConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            listen: SocketAddr::from(([127, 0, 0, 1], 4466)),
            host: None,
            public_port: None,
            tls_cert_file: None,
            tls_key_file: None,
            query_timeout_ms: 30_000,
            max_transaction_timeout_ms: 60_000,
            max_request_bytes: 16 * 1024 * 1024,
            max_concurrent_queries: 64,
            idle_connections: 4,
            max_connections: None,
        }
    }
}

impl AccelerateConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if self.query_timeout_ms == 0
            || self.max_transaction_timeout_ms == 0
            || self.max_concurrent_queries == 0
            || self.max_request_bytes < 1024
        {
            return Err(ConfigError::Invalid(
                "accelerate: query_timeout_ms, max_transaction_timeout_ms and \
                 max_concurrent_queries must be at least 1, max_request_bytes at least 1024"
                    .to_string(),
            ));
        }
        if self.tls_cert_file.is_some() != self.tls_key_file.is_some() {
            return Err(ConfigError::Invalid(
                "accelerate: set both tls_cert_file and tls_key_file, or neither".to_string(),
            ));
        }
        Ok(())
    }

    /// True when the endpoint speaks HTTPS (a certificate is configured, or it listens
    /// beyond loopback).
    pub fn uses_tls(&self) -> bool {
        self.tls_cert_file.is_some() || !self.listen.ip().is_loopback()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_plain_http_on_loopback() {
        let c = AccelerateConfig::default();
        assert!(c.validate().is_ok());
        assert!(!c.uses_tls());
        let wide = AccelerateConfig {
            listen: "0.0.0.0:4466".parse().unwrap_or(c.listen),
            ..c.clone()
        };
        assert!(wide.uses_tls());
    }

    #[test]
    fn limits_and_half_tls_are_refused() {
        let zero = AccelerateConfig {
            max_concurrent_queries: 0,
            ..AccelerateConfig::default()
        };
        assert!(zero.validate().is_err());
        let half = AccelerateConfig {
            tls_cert_file: Some("c.pem".into()),
            ..AccelerateConfig::default()
        };
        assert!(half.validate().is_err());
    }
}
