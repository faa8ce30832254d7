//! Where the metadata store is: one URL that may list several hosts, libpq style
//! (`postgres://u:p@h1:5432,h2:5433/db?target_session_attrs=read-write`), so that after a
//! failover the promoted standby is found without a restart.
//!
//! sqlx's `PgConnectOptions` takes one host, so the URL is split here into one set of options
//! per host (in the order given). [`MetadataTarget::resolve`] tries them in order and takes the
//! first that answers and, with `read-write`, is writable (not in recovery, not read-only);
//! the pool then connects there, rejects any new connection that turns out read-only, and a
//! watcher re-resolves when the current host stops answering or becomes a standby.
//! Its one query is checked at build time (`.sqlx/`, see the crate doc).

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::Connection as _;

/// What a session must be for the store to use it (`target_session_attrs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionAttrs {
    /// Any host that answers (libpq's default, `any`).
    Any,
    /// A writable primary (`read-write` or `primary`).
    ReadWrite,
}

/// A metadata URL that cannot be used; the message never contains the URL (it holds a password).
#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    #[error("metadata.url must start with postgres:// or postgresql://")]
    Scheme,
    #[error("metadata.url lists an empty host")]
    EmptyHost,
    #[error("metadata.url has a port that is not a number")]
    Port,
    #[error("metadata.url's target_session_attrs must be any, read-write or primary")]
    SessionAttrs,
    #[error("metadata.url is not a valid postgres:// URL")]
    Invalid,
}

/// The metadata store's candidate hosts, in order, and what a session must be.
#[derive(Debug, Clone)]
pub struct MetadataTarget {
    hosts: Vec<PgConnectOptions>,
    attrs: SessionAttrs,
}

impl MetadataTarget {
    /// One fixed host (the embedded cluster), any session.
    pub fn single(options: PgConnectOptions) -> Self {
        Self {
            hosts: vec![options],
            attrs: SessionAttrs::Any,
        }
    }

    pub fn attrs(&self) -> SessionAttrs {
        self.attrs
    }

    /// True when there is a choice to make again after a failure (several hosts, or a host
    /// that must be writable).
    pub fn needs_watching(&self) -> bool {
        self.hosts.len() > 1 || self.attrs == SessionAttrs::ReadWrite
    }

    /// The same hosts with `f` applied to each one's options (settings read elsewhere from
    /// the URL, such as how strictly TLS is verified).
    pub fn map_hosts(mut self, f: impl Fn(PgConnectOptions) -> PgConnectOptions) -> Self {
        self.hosts = self.hosts.into_iter().map(f).collect();
        self
    }

    /// The first host's options (for a pool that is never used to connect, e.g. at start).
    pub fn first(&self) -> &PgConnectOptions {
        // `parse` never yields an empty list.
        &self.hosts[0]
    }

    /// The first host, in order, that answers within `per_host` and suits `attrs`.
    pub async fn resolve(&self, per_host: Duration) -> Result<PgConnectOptions, sqlx::Error> {
        let mut last = sqlx::Error::PoolTimedOut;
        for options in &self.hosts {
            let attempt = async {
                let mut conn = PgConnection::connect_with(options).await?;
                let ok = suits(&mut conn, self.attrs).await;
                let _ = conn.close().await;
                ok
            };
            match tokio::time::timeout(per_host, attempt).await {
                Ok(Ok(true)) => return Ok(options.clone()),
                Ok(Ok(false)) => {
                    tracing::info!(
                        host = options.get_host(),
                        port = options.get_port(),
                        "metadata host is read-only; trying the next"
                    );
                    last = read_only();
                }
                Ok(Err(e)) => {
                    tracing::debug!(host = options.get_host(), port = options.get_port(), error = %e, "metadata host not reachable; trying the next");
                    last = e;
                }
                Err(_) => last = sqlx::Error::PoolTimedOut,
            }
        }
        Err(last)
    }
}

/// The error a pool's connect hook returns for a read-only session.
pub(crate) fn read_only() -> sqlx::Error {
    sqlx::Error::Io(std::io::Error::new(
        std::io::ErrorKind::ConnectionRefused,
        "metadata host is read-only (a standby?)",
    ))
}

/// Whether the session suits `attrs`: with `ReadWrite`, libpq's test (the server is not in
/// recovery and the session is not read-only).
pub(crate) async fn suits(
    conn: &mut PgConnection,
    attrs: SessionAttrs,
) -> Result<bool, sqlx::Error> {
    if attrs == SessionAttrs::Any {
        return Ok(true);
    }
    let read_only = sqlx::query_scalar!(
        r#"SELECT pg_is_in_recovery() OR current_setting('transaction_read_only') = 'on'
             AS "read_only!""#,
    )
    .fetch_one(conn)
    .await?;
    Ok(!read_only)
}

impl FromStr for MetadataTarget {
    type Err = TargetError;

    fn from_str(url: &str) -> Result<Self, TargetError> {
        let (scheme, rest) = url.split_once("://").ok_or(TargetError::Scheme)?;
        if scheme != "postgres" && scheme != "postgresql" {
            return Err(TargetError::Scheme);
        }
        let end = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, tail) = rest.split_at(end);
        let (userinfo, hostlist) = match authority.rfind('@') {
            Some(i) => (&authority[..=i], &authority[i + 1..]),
            None => ("", authority),
        };
        let (path, query) = match tail.split_once('?') {
            Some((p, q)) => (p, q),
            None => (tail, ""),
        };
        let mut attrs = SessionAttrs::Any;
        let mut kept = Vec::new();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            match pair.split_once('=') {
                Some(("target_session_attrs", v)) => {
                    attrs = match v {
                        "any" => SessionAttrs::Any,
                        "read-write" | "primary" => SessionAttrs::ReadWrite,
                        _ => return Err(TargetError::SessionAttrs),
                    }
                }
                _ => kept.push(pair),
            }
        }
        let query = if kept.is_empty() {
            String::new()
        } else {
            format!("?{}", kept.join("&"))
        };
        let mut hosts = Vec::new();
        for host in hostlist.split(',') {
            if host.is_empty() && hostlist.contains(',') {
                return Err(TargetError::EmptyHost);
            }
            // `[::1]:5432`, `h:5432`, `h`: a port, when given, must be a number.
            let port = match host.rfind(':') {
                Some(i) if !host[i..].contains(']') => Some(&host[i + 1..]),
                _ => None,
            };
            if let Some(p) = port {
                p.parse::<u16>().map_err(|_| TargetError::Port)?;
            }
            let one = format!("{scheme}://{userinfo}{host}{path}{query}");
            hosts.push(PgConnectOptions::from_str(&one).map_err(|_| TargetError::Invalid)?);
        }
        Ok(Self { hosts, attrs })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn several_hosts_in_order_with_their_ports_and_attrs() {
        let t: MetadataTarget =
            "postgres://u:p@h1:5432,h2:5433,h3/meta?target_session_attrs=read-write&sslmode=disable"
                .parse()
                .unwrap();
        assert_eq!(t.attrs(), SessionAttrs::ReadWrite);
        let hp: Vec<_> = t
            .hosts
            .iter()
            .map(|o| {
                (
                    o.get_host().to_string(),
                    o.get_port(),
                    o.get_database().map(str::to_string),
                )
            })
            .collect();
        assert_eq!(
            hp,
            vec![
                ("h1".to_string(), 5432, Some("meta".to_string())),
                ("h2".to_string(), 5433, Some("meta".to_string())),
                ("h3".to_string(), 5432, Some("meta".to_string())),
            ]
        );
        assert_eq!(t.hosts[1].get_username(), "u");
    }

    #[test]
    fn one_host_urls_parse_as_before() {
        let t: MetadataTarget = "postgres://postgres@localhost/db?host=/tmp/x&port=5999"
            .parse()
            .unwrap();
        assert_eq!(t.attrs(), SessionAttrs::Any);
        assert!(!t.needs_watching());
        assert_eq!(t.first().get_port(), 5999);
    }

    #[test]
    fn bad_urls_are_refused() {
        assert!(matches!(
            "mysql://h/db".parse::<MetadataTarget>(),
            Err(TargetError::Scheme)
        ));
        assert!(matches!(
            "postgres://h1,,h2/db".parse::<MetadataTarget>(),
            Err(TargetError::EmptyHost)
        ));
        assert!(matches!(
            "postgres://h1:x,h2/db".parse::<MetadataTarget>(),
            Err(TargetError::Port)
        ));
        assert!(matches!(
            "postgres://h1/db?target_session_attrs=standby".parse::<MetadataTarget>(),
            Err(TargetError::SessionAttrs)
        ));
    }
}
