//! Serves the executor on 127.0.0.1 for the conformance tests: one fixed API key mapped to one
//! PostgreSQL URL, a small connection pool, sessions in UTC.
//!
//! ```sh
//! ACCEL_DB_URL=postgresql://… ACCEL_API_KEY=secret ACCEL_PORT=4466 \
//!   cargo run -p pgfleet-accelerate --example serve
//! # optional: ACCEL_QUERY_TIMEOUT_MS (default 30 000), ACCEL_MAX_CONCURRENT (per key, 64)
//! ```

use std::ops::Deref;
use std::sync::{Arc, Mutex};

use pgfleet_accelerate::{router, Backend, BackendError, Limits};
use tokio_postgres::{Client, NoTls};

struct Pool {
    config: tokio_postgres::Config,
    idle: Mutex<Vec<Client>>,
}

struct Pooled {
    client: Option<Client>,
    pool: Arc<Pool>,
}

impl Deref for Pooled {
    type Target = Client;
    fn deref(&self) -> &Client {
        // Always Some until dropped.
        self.client.as_ref().unwrap_or_else(|| unreachable!())
    }
}

impl Drop for Pooled {
    fn drop(&mut self) {
        if let Some(client) = self.client.take() {
            if !client.is_closed() {
                if let Ok(mut idle) = self.pool.idle.lock() {
                    idle.push(client);
                }
            }
        }
    }
}

struct FixedKey {
    key: String,
    pool: Arc<Pool>,
}

impl Backend for FixedKey {
    type Target = ();
    type Conn = Pooled;

    async fn resolve(&self, api_key: &str) -> Result<(), BackendError> {
        if api_key == self.key {
            Ok(())
        } else {
            Err(BackendError::UnknownKey)
        }
    }

    async fn connect(&self, _target: &()) -> Result<Pooled, BackendError> {
        let idle = self.pool.idle.lock().ok().and_then(|mut idle| idle.pop());
        let client = match idle {
            Some(client) => client,
            None => {
                let (client, connection) = self
                    .pool
                    .config
                    .connect(NoTls)
                    .await
                    .map_err(|e| BackendError::Unavailable(e.to_string()))?;
                tokio::spawn(connection);
                client
            }
        };
        Ok(Pooled {
            client: Some(client),
            pool: self.pool.clone(),
        })
    }

    async fn cancel(&self, _target: &Self::Target, token: tokio_postgres::CancelToken) {
        if let Err(e) = token.cancel_query(NoTls).await {
            tracing::debug!(error = %e, "cancel failed");
        }
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .init();
    let url = std::env::var("ACCEL_DB_URL")?;
    let key = std::env::var("ACCEL_API_KEY").unwrap_or_else(|_| "<api_key>".into());
    let port: u16 = std::env::var("ACCEL_PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(4466);
    let mut config: tokio_postgres::Config = url.parse()?;
    config.options("-c TimeZone=UTC");
    let pool = Arc::new(Pool {
        config,
        idle: Mutex::new(Vec::new()),
    });
    let mut limits = Limits::default();
    if let Some(ms) = std::env::var("ACCEL_QUERY_TIMEOUT_MS")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        limits.query_timeout = std::time::Duration::from_millis(ms);
    }
    if let Some(n) = std::env::var("ACCEL_MAX_CONCURRENT")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        limits.max_concurrent_queries = n;
    }
    let app = router(FixedKey { key, pool }, limits);
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    eprintln!("accelerate executor on http://127.0.0.1:{port}");
    axum::serve(listener, app).await?;
    Ok(())
}
