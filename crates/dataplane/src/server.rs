//! A handle on one PostgreSQL server that holds tenant databases: how pgfleet reaches it as
//! superuser (or as a tenant role whose password it was given), with the TLS its URL asks
//! for, and what host and port it advertises to clients.

use std::time::Duration;

use crate::sslmode::SslMode;
use crate::{DataplaneError, Result};

#[derive(Clone)]
pub struct PgServer {
    /// Stable name of the server in config: `embedded` or the URL without its password.
    pub key: String,
    pub region: String,
    /// Superuser connection settings.
    pub admin: tokio_postgres::Config,
    /// TLS to the server (`sslmode` and `sslrootcert` of the URL); never used over a Unix
    /// socket (libpq ignores `sslmode` there too).
    pub tls: crate::sslmode::ClientTls,
    /// Host and port written into connection strings.
    pub public_host: String,
    pub public_port: u16,
}

/// How many sessions a server accepts, as it reports them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionSettings {
    pub max_connections: i32,
    /// Slots only superusers may take (pgfleet's own sessions are superuser ones).
    pub superuser_reserved_connections: i32,
}

impl std::fmt::Debug for PgServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // tokio_postgres::Config's Debug already redacts the password.
        f.debug_struct("PgServer")
            .field("key", &self.key)
            .field("region", &self.region)
            .field("public_host", &self.public_host)
            .field("public_port", &self.public_port)
            .finish_non_exhaustive()
    }
}

impl PgServer {
    /// A server from a superuser URL, read the way libpq reads it: `host`, `port`, `user`,
    /// `dbname`, `sslmode` and `sslrootcert` in the query string override the address part (so
    /// `postgres://postgres@localhost/postgres?host=/run/pg&port=5433` is the socket in
    /// `/run/pg` on port 5433). Clients are told the URL's host (`localhost` for a socket).
    pub fn from_url(region: &str, value: &str) -> Result<Self> {
        let bad = |why: String| DataplaneError::Setup(format!("regions.{region}.servers: {why}"));
        let url = url::Url::parse(value).map_err(|e| bad(format!("not a valid URL: {e}")))?;
        if url.scheme() != "postgres" && url.scheme() != "postgresql" {
            return Err(bad("the URL must start with postgres://".to_string()));
        }
        let q: std::collections::HashMap<String, String> = url.query_pairs().into_owned().collect();
        let decode = |s: &str| {
            url::form_urlencoded::parse(format!("x={s}").as_bytes())
                .next()
                .map(|(_, v)| v.into_owned())
        };
        let host = q
            .get("host")
            .cloned()
            .or_else(|| url.host_str().filter(|h| !h.is_empty()).map(str::to_string))
            .unwrap_or_else(|| "localhost".to_string());
        let port = match q.get("port") {
            Some(p) => p
                .parse::<u16>()
                .map_err(|_| bad(format!("port {p:?} is not a port number")))?,
            None => url.port().unwrap_or(5432),
        };
        let user = q
            .get("user")
            .cloned()
            .or_else(|| {
                Some(url.username().to_string())
                    .filter(|u| !u.is_empty())
                    .and_then(|u| decode(&u))
            })
            .unwrap_or_else(|| "postgres".to_string());
        let dbname = q
            .get("dbname")
            .cloned()
            .or_else(|| {
                Some(url.path().trim_start_matches('/').to_string()).filter(|d| !d.is_empty())
            })
            .unwrap_or_else(|| "postgres".to_string());
        let tls = crate::sslmode::ClientTls::from_query(
            q.get("sslmode").map(String::as_str),
            q.get("sslrootcert").map(String::as_str),
        )
        .map_err(|e| bad(e.to_string()))?;
        let mut admin = tokio_postgres::Config::new();
        if host.starts_with('/') {
            admin.host_path(&host);
        } else {
            admin.host(&host);
        }
        admin
            .port(port)
            .user(&user)
            .dbname(&dbname)
            .application_name("pgfleet");
        if let Some(pw) = url.password().and_then(decode) {
            admin.password(pw);
        }
        let mut key_url = url.clone();
        let _ = key_url.set_password(None);
        let public_host = if host.starts_with('/') {
            "localhost".to_string()
        } else {
            host
        };
        Ok(Self {
            key: key_url.to_string(),
            region: region.to_string(),
            admin,
            tls,
            public_host,
            public_port: port,
        })
    }

    /// Opens a superuser session (TLS as the URL's `sslmode` asks). A certificate that does
    /// not verify is refused with an error naming the host and the reason.
    pub async fn admin_client(&self, dbname: Option<&str>) -> Result<tokio_postgres::Client> {
        let mut cfg = self.admin.clone();
        if let Some(db) = dbname {
            cfg.dbname(db);
        }
        cfg.connect_timeout(Duration::from_secs(5));
        self.connect(cfg).await
    }

    /// The settings of a session as `role` (password login, SCRAM as the server asks) on
    /// `dbname`, at the address of the superuser URL.
    pub fn role_config(&self, role: &str, password: &str, dbname: &str) -> tokio_postgres::Config {
        let mut cfg = self.admin.clone();
        cfg.user(role).password(password).dbname(dbname);
        cfg
    }

    /// Opens a session with `cfg` (an address of this server), TLS as the URL's `sslmode`
    /// asks over TCP, none over a Unix socket. A certificate that does not verify is refused
    /// with an error naming the host and the reason.
    pub async fn connect(&self, mut cfg: tokio_postgres::Config) -> Result<tokio_postgres::Client> {
        let tcp_host = match cfg.get_hosts().first() {
            Some(tokio_postgres::config::Host::Tcp(h)) => Some(h.clone()),
            _ => None,
        };
        let client = match tcp_host {
            Some(host) if self.tls.mode != SslMode::Disable => {
                cfg.ssl_mode(if self.tls.mode.requires_tls() {
                    tokio_postgres::config::SslMode::Require
                } else {
                    tokio_postgres::config::SslMode::Prefer
                });
                let tls = self
                    .tls
                    .connector()
                    .map_err(|e| DataplaneError::ServerTls(e.to_string()))?;
                let (client, conn) = cfg.connect(tls).await.map_err(|e| {
                    let port = cfg.get_ports().first().copied().unwrap_or(5432);
                    match self.tls.describe_failure(&e, &host, port) {
                        Some(why) => DataplaneError::ServerTls(why),
                        None => DataplaneError::Postgres(e),
                    }
                })?;
                tokio::spawn(async move {
                    if let Err(e) = conn.await {
                        tracing::debug!(error = %e, "server connection closed");
                    }
                });
                client
            }
            _ => {
                let (client, conn) = cfg.connect(tokio_postgres::NoTls).await?;
                tokio::spawn(async move {
                    if let Err(e) = conn.await {
                        tracing::debug!(error = %e, "server connection closed");
                    }
                });
                client
            }
        };
        Ok(client)
    }

    /// Cancels the statement running on the session `token` belongs to (a session opened
    /// by [`Self::connect`]), over TLS when that session used it.
    pub async fn cancel(&self, token: &tokio_postgres::CancelToken) -> Result<()> {
        let tcp = matches!(
            self.admin.get_hosts().first(),
            Some(tokio_postgres::config::Host::Tcp(_))
        );
        if tcp && self.tls.mode != SslMode::Disable {
            let tls = self
                .tls
                .connector()
                .map_err(|e| DataplaneError::ServerTls(e.to_string()))?;
            token.cancel_query(tls).await?;
        } else {
            token.cancel_query(tokio_postgres::NoTls).await?;
        }
        Ok(())
    }

    /// The server's connection settings (`max_connections`, `superuser_reserved_connections`),
    /// read as superuser.
    pub async fn connection_settings(&self) -> Result<ConnectionSettings> {
        let c = self.admin_client(None).await?;
        let row = c
            .query_one(
                "SELECT current_setting('max_connections')::int, \
                        current_setting('superuser_reserved_connections')::int",
                &[],
            )
            .await?;
        Ok(ConnectionSettings {
            max_connections: row.get(0),
            superuser_reserved_connections: row.get(1),
        })
    }

    /// `SELECT 1` as superuser.
    pub async fn ping(&self) -> Result<()> {
        let c = self.admin_client(None).await?;
        c.simple_query("SELECT 1").await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_read_like_libpq() {
        let s = PgServer::from_url(
            "r",
            "postgres://postgres@localhost/postgres?host=/tmp/x/run&port=5433",
        )
        .unwrap();
        assert_eq!(s.admin.get_ports(), &[5433]);
        assert_eq!(
            s.admin.get_hosts(),
            &[tokio_postgres::config::Host::Unix("/tmp/x/run".into())]
        );
        assert_eq!((s.public_host.as_str(), s.public_port), ("localhost", 5433));
        assert_eq!(s.tls.mode, SslMode::Prefer);

        let s = PgServer::from_url(
            "r",
            "postgresql://admin:s%40cret@db.internal:6432/main?sslmode=require",
        )
        .unwrap();
        assert_eq!(s.admin.get_password(), Some(&b"s@cret"[..]));
        assert_eq!(s.admin.get_user(), Some("admin"));
        assert_eq!(s.admin.get_dbname(), Some("main"));
        assert_eq!(
            (s.public_host.as_str(), s.public_port),
            ("db.internal", 6432)
        );
        assert_eq!(s.tls.mode, SslMode::Require);
        assert!(!s.key.contains("cret"));

        assert!(PgServer::from_url("r", "mysql://x@y/z").is_err());
        assert!(PgServer::from_url("r", "postgres://x@y/z?port=abc").is_err());
        let e = PgServer::from_url("r", "postgres://x@y/z?sslmode=verify-full").unwrap_err();
        assert!(e.to_string().contains("sslrootcert"), "{e}");
    }
}
