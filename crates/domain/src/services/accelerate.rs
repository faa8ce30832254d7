//! What the `prisma+postgres://` endpoint asks of the services, and the per-connection API
//! keys it authenticates with: a key is issued when a connection is created or rotated
//! (shown once, stored as its SHA-256 only, like service tokens), with the role's new
//! password sealed under it ([`pgfleet_auth::sealed`]: only a request presenting the key
//! can open it, which is how the endpoint logs in as the role on a server reached over TCP),
//! replaced on rotation and removed on deletion in the same transaction as the rest of the
//! change; a presented key resolves to the connection's login role on its database and
//! server, and the password opened with it; and the endpoint's usage counters, which count
//! like the pooler's ([`super::pooler::operations_with_pooled`]).

use std::collections::HashMap;

use pgfleet_auth::sealed::{self, Sealed};
use pgfleet_dataplane::PgServer;
use pgfleet_storage::{accelerate_keys, ConnectionState, DatabaseState};

use crate::Result;

/// Prefix of every key (so a leaked one is recognisable in logs and scanners).
pub const KEY_PREFIX: &str = "pgfa_";

/// `host:port` written into `endpoints.accelerate` when the endpoint runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccelerateEndpoint {
    pub host: String,
    pub port: u16,
}

impl AccelerateEndpoint {
    /// The `prisma+postgres://` URL Prisma Client takes (`accelerateUrl`).
    pub fn connection_string(&self, key: &str) -> String {
        let host = if self.host.contains(':') && !self.host.starts_with('[') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        format!("prisma+postgres://{host}:{}/?api_key={key}", self.port)
    }
}

/// Where the endpoint sends the queries of a key.
#[derive(Debug, Clone)]
pub struct AccelerateRoute {
    pub connection_id: String,
    pub database_id: String,
    pub pg_database: String,
    pub role: String,
    pub server: PgServer,
    /// The database's `CONNECTION LIMIT` (bounds the endpoint's idle pool).
    pub connection_limit: i32,
    /// `None` when the database accepts queries, else its status.
    pub unavailable: Option<String>,
    /// The role's password, opened with the presented key; `None` for a key issued before
    /// passwords were sealed (it serves the embedded cluster's Unix socket only).
    pub password: Option<RolePassword>,
}

/// A role's login password, kept out of `Debug` output.
#[derive(Clone, PartialEq, Eq)]
pub struct RolePassword(String);

impl RolePassword {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for RolePassword {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RolePassword(<redacted>)")
    }
}

/// What the endpoint counted for one database since this process started. A query plan
/// outside an interactive transaction counts as one query in one transaction (the database
/// counts its own transaction too); a query inside one counts as a query, and the
/// transaction once when it ends: like the pooler's statements and transactions, so without
/// pg_stat_statements each query of an interactive transaction is an operation.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AccelerateCounts {
    pub queries: u64,
    pub transactions: u64,
}

/// Reads the endpoint's counters (database id → counts).
pub(crate) struct AccelerateStats(
    pub(crate) Box<dyn Fn() -> HashMap<String, AccelerateCounts> + Send + Sync>,
);

impl std::fmt::Debug for AccelerateStats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AccelerateStats")
    }
}

/// A new key and the hash stored for it.
pub(crate) struct NewKey {
    pub key: String,
    pub hash: Vec<u8>,
}

/// What the endpoint asks of the services. Obtained from [`super::Services::accelerate`].
#[derive(Debug, Clone, Copy)]
pub struct Accelerate<'a> {
    pub(super) ctx: &'a std::sync::Arc<super::Ctx>,
}

impl Accelerate<'_> {
    /// A fresh key from the injected randomness (32 bytes, base64url).
    pub(crate) fn new_key(&self) -> NewKey {
        let secret = self
            .ctx
            .rng()
            .with(|rng| pgfleet_auth::generate_token(KEY_PREFIX, rng));
        NewKey {
            key: secret.plaintext,
            hash: secret.hash,
        }
    }

    /// Issues (or replaces) the key of a connection inside the caller's transaction, with
    /// the role's `password` (the one just set) sealed under it; the key is returned for the
    /// one answer that shows it. `None` when the endpoint is off.
    pub(crate) async fn issue(
        &self,
        tx: &mut sqlx::PgConnection,
        connection_id: &str,
        password: &str,
    ) -> Result<Option<String>> {
        if self.ctx.config().accelerate.is_none() {
            // Off: a rotation still kills the old key.
            accelerate_keys::delete(&mut *tx, connection_id).await?;
            return Ok(None);
        }
        let new = self.new_key();
        let sealed = self
            .ctx
            .rng()
            .with(|rng| sealed::seal(&new.key, connection_id.as_bytes(), password.as_bytes(), rng))
            .map_err(|e| crate::DomainError::internal(e.to_string()))?;
        accelerate_keys::put(
            &mut *tx,
            &accelerate_keys::NewAccelerateKey {
                connection_id,
                key_hash: &new.hash,
                seal_salt: &sealed.salt,
                sealed_password: &sealed.blob,
                now: self.ctx.clock().now(),
            },
        )
        .await?;
        Ok(Some(new.key))
    }

    /// Removes a connection's key inside the caller's transaction.
    pub(crate) async fn revoke(
        &self,
        tx: &mut sqlx::PgConnection,
        connection_id: &str,
    ) -> Result<()> {
        accelerate_keys::delete(&mut *tx, connection_id).await?;
        Ok(())
    }

    /// The route of a presented key: `None` for an unknown, rotated or deleted key (or one
    /// whose connection or database is being deleted). Looked up in the metadata store
    /// every time, so a rotation on any replica is seen by every replica at once.
    pub async fn resolve(&self, key: &str) -> Result<Option<AccelerateRoute>> {
        if !key.starts_with(KEY_PREFIX) {
            return Ok(None);
        }
        let hash = pgfleet_auth::hash_token(key);
        let Some(t) = accelerate_keys::lookup(self.ctx.store().pool(), &hash).await? else {
            return Ok(None);
        };
        if t.connection_status != ConnectionState::Active
            || t.database_status == DatabaseState::Deleting
        {
            return Ok(None);
        }
        let Ok(server) = self.ctx.server(t.server_id.as_deref()) else {
            return Ok(None);
        };
        let password = match (t.seal_salt, t.sealed_password) {
            (Some(salt), Some(blob)) => {
                let opened =
                    sealed::unseal(key, t.connection_id.as_bytes(), &Sealed { salt, blob })
                        .ok()
                        .and_then(|p| String::from_utf8(p).ok());
                // The key's hash matched, so a blob that does not open was damaged or
                // written for another key: the key cannot be served.
                let Some(p) = opened else {
                    tracing::warn!(connection = %t.connection_id, "accelerate: the sealed password does not open with its key");
                    return Ok(None);
                };
                Some(RolePassword(p))
            }
            _ => None,
        };
        Ok(Some(AccelerateRoute {
            connection_id: t.connection_id,
            database_id: t.database_id,
            pg_database: t.pg_database,
            role: t.role_name,
            server: server.clone(),
            connection_limit: t.connection_limit,
            unavailable: (t.database_status != DatabaseState::Ready)
                .then(|| t.database_status.to_string()),
            password,
        }))
    }

    /// Registers the endpoint's counters: the usage sampler adds them to the pooler's (see
    /// [`AccelerateCounts`]). Only the first registration counts.
    pub fn set_stats(
        &self,
        stats: impl Fn() -> HashMap<String, AccelerateCounts> + Send + Sync + 'static,
    ) {
        let _ = self
            .ctx
            .accelerate_stats()
            .set(AccelerateStats(Box::new(stats)));
    }

    pub(crate) fn counts(&self) -> HashMap<String, AccelerateCounts> {
        self.ctx
            .accelerate_stats()
            .get()
            .map(|s| (s.0)())
            .unwrap_or_default()
    }

    /// Registers a function called after every write this process makes (the endpoint
    /// closes the interactive transactions of keys that no longer resolve).
    pub fn on_write(&self, hook: impl Fn() + Send + Sync + 'static) {
        self.ctx.add_write_hook(Box::new(hook));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_string_is_the_prisma_postgres_url() {
        let e = AccelerateEndpoint {
            host: "127.0.0.1".into(),
            port: 4466,
        };
        assert_eq!(
            e.connection_string("pgfa_abc"),
            "prisma+postgres://127.0.0.1:4466/?api_key=pgfa_abc"
        );
        let v6 = AccelerateEndpoint {
            host: "::1".into(),
            port: 1,
        };
        assert_eq!(
            v6.connection_string("k"),
            "prisma+postgres://[::1]:1/?api_key=k"
        );
    }

    #[test]
    fn keys_are_prefixed_and_url_safe() {
        let rng = crate::Randomness::seeded(7);
        let secret = rng.with(|r| pgfleet_auth::generate_token(KEY_PREFIX, r));
        assert!(secret.plaintext.starts_with(KEY_PREFIX));
        assert_eq!(secret.plaintext.len(), KEY_PREFIX.len() + 43);
        assert!(secret.plaintext[KEY_PREFIX.len()..]
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'));
        assert_eq!(secret.hash, pgfleet_auth::hash_token(&secret.plaintext));
    }
}
