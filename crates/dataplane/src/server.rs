//! A handle on one PostgreSQL server that holds tenant databases: how pgfleet reaches it as
//! superuser, and what host and port it advertises to clients.

use std::time::Duration;

use crate::Result;

#[derive(Clone)]
pub struct PgServer {
    /// Stable name of the server in config: `embedded` or the URL without its password.
    pub key: String,
    pub region: String,
    /// Superuser connection settings.
    pub admin: tokio_postgres::Config,
    /// Host and port written into connection strings.
    pub public_host: String,
    pub public_port: u16,
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
    /// Opens a superuser session (no TLS: the admin path is the Unix socket or a trusted link).
    pub async fn admin_client(&self, dbname: Option<&str>) -> Result<tokio_postgres::Client> {
        let mut cfg = self.admin.clone();
        if let Some(db) = dbname {
            cfg.dbname(db);
        }
        cfg.connect_timeout(Duration::from_secs(5));
        let (client, conn) = cfg.connect(tokio_postgres::NoTls).await?;
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "admin connection closed");
            }
        });
        Ok(client)
    }

    /// `SELECT 1` as superuser.
    pub async fn ping(&self) -> Result<()> {
        let c = self.admin_client(None).await?;
        c.simple_query("SELECT 1").await?;
        Ok(())
    }
}
