//! The tenant guard: a periodic pass over every ready database that puts back what a tenant
//! (or anyone) changed in pgfleet's settings: the database's owner, connection limit and
//! settings (`temp_file_limit`, timeouts), the owner role's attributes, and each login
//! role's attributes, membership, role settings and password.
//!
//! **Once across replicas.** The pass runs under an advisory lock on the metadata store
//! ([`GUARD_LOCK`]): a replica that does not get it skips its turn. Each repair also holds
//! the lock of the resource it touches (the one operations take) and re-reads the row under
//! it, so a repair never races a rotation or a restore with stale data.
//!
//! **Storage quota.** The same pass reads each database's size; one over
//! `tenant.storage_quota_bytes` is put in the read-only mode of [`pgfleet_dataplane::quota`]
//! (writes fail with an error naming the quota; `DELETE`, `TRUNCATE` and `DROP` still work)
//! and taken out of it once under again. `databases.over_quota_since` records the mode for
//! every replica (the API shows it); it is set before the mode is, and cleared after it is
//! lifted, so a crash in between leaves it pointing at work still to do.
//!
//! **Passwords.** A tenant can set its own login role's password (`ALTER ROLE CURRENT_USER
//! PASSWORD …`; PostgreSQL allows it to every role). The pass sets the verifier pgfleet
//! issued again and ends the role's open sessions: which of them logged in with the changed
//! password cannot be told, and the application reconnects with the password it was given.

use std::collections::{BTreeMap, HashMap};

use pgfleet_dataplane::Drift;
use pgfleet_storage::{
    connections, databases, operations, ConnectionState, DatabaseRow, DatabaseState,
};
use tokio::sync::watch;

use super::periodic::Periodic;
use crate::lease::Job;
use crate::Result;

/// Resource name of the advisory lock that makes the pass run in one replica at a time.
pub const GUARD_LOCK: &str = "pgfleet:tenant-guard";

/// What one pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GuardReport {
    /// False when another replica held the pass's lock (nothing was checked).
    pub ran: bool,
    pub databases_checked: usize,
    /// Each repaired difference, as `database id: kind`.
    pub repaired: Vec<String>,
    /// Databases put in (or kept in) the quota's read-only mode.
    pub read_only: Vec<String>,
    /// Databases taken out of it.
    pub writable_again: Vec<String>,
}

/// The tenant guard: limits and storage quota of tenant databases. Obtained from [`super::Services::guard`].
#[derive(Debug, Clone, Copy)]
pub struct TenantGuard<'a> {
    pub(super) ctx: &'a std::sync::Arc<super::Ctx>,
}

impl TenantGuard<'_> {
    /// The background pass: one at once, then one per `tenant.check_every`, until
    /// `shutdown` changes.
    pub fn spawn(&self, shutdown: watch::Receiver<bool>) -> tokio::task::JoinHandle<()> {
        let ctx = std::sync::Arc::clone(self.ctx);
        tokio::spawn(async move {
            let mut periodic = Periodic::new(
                &ctx,
                Job::TenantGuard,
                ctx.config().tenant.check_every,
                shutdown,
            );
            while periodic.next().await {
                match periodic.run(ctx.guard().pass()).await {
                    None => return,
                    Some(Err(e)) => tracing::warn!(error = %e, "tenant guard pass failed"),
                    Some(Ok(_)) => {}
                }
            }
        })
    }

    /// One pass over every ready database (public for tests).
    pub async fn pass(&self) -> Result<GuardReport> {
        let report = self.ctx
            .with_resource_lock(GUARD_LOCK, async {
                let mut report = GuardReport {
                    ran: true,
                    ..GuardReport::default()
                };
                let ready = databases::ready(self.ctx.store().pool()).await?;
                let mut by_server: BTreeMap<String, Vec<DatabaseRow>> = BTreeMap::new();
                for db in ready {
                    report.databases_checked += 1;
                    if let Err(e) = self.guard_database(&db, &mut report).await {
                        tracing::warn!(database = %db.id, error = %e, "tenant guard: database not checked");
                    }
                    if let Some(server) = db.server_id.clone() {
                        by_server.entry(server).or_default().push(db);
                    }
                }
                for (server_id, dbs) in by_server {
                    if let Err(e) = self.guard_quota(&server_id, &dbs, &mut report).await {
                        tracing::warn!(server = %server_id, error = %e, "tenant guard: storage quota not checked");
                    }
                }
                Ok(report)
            })
            .await?;
        Ok(report.unwrap_or_default())
    }

    async fn guard_quota(
        &self,
        server_id: &str,
        dbs: &[DatabaseRow],
        report: &mut GuardReport,
    ) -> Result<()> {
        let pool = self.ctx.store().pool();
        let server = self.ctx.server(Some(server_id))?;
        let names: Vec<String> = dbs.iter().map(|d| d.pg_database.clone()).collect();
        let sizes: HashMap<String, i64> = self
            .ctx
            .driver()
            .database_usage(server, &names)
            .await?
            .into_iter()
            .map(|u| (u.pg_database, u.size_bytes))
            .collect();
        let quota = self.ctx.config().tenant.storage_quota_bytes;
        for db in dbs {
            let Some(size) = sizes.get(&db.pg_database).copied() else {
                continue;
            };
            let over = quota.filter(|q| size > *q);
            let marked = databases::over_quota_since(pool, &db.id).await?.is_some();
            if over.is_none() && !marked {
                continue;
            }
            let changed = self
                .ctx
                .with_resource_lock(&db.id, async {
                    if databases::get(pool, &db.id)
                        .await?
                        .is_none_or(|d| d.status != DatabaseState::Ready)
                    {
                        return Ok(false);
                    }
                    if over.is_some() {
                        databases::set_over_quota(pool, &db.id, Some(self.ctx.clock().now()))
                            .await?;
                        self.ctx
                            .driver()
                            .set_quota_mode(server, &db.pg_database, over)
                            .await?;
                    } else {
                        self.ctx
                            .driver()
                            .set_quota_mode(server, &db.pg_database, None)
                            .await?;
                        databases::set_over_quota(pool, &db.id, None).await?;
                    }
                    Ok(true)
                })
                .await;
            match changed {
                Ok(Some(true)) if over.is_some() => {
                    if !marked {
                        tracing::warn!(database = %db.id, size, quota = ?quota, "database over its storage quota: read-only");
                    }
                    report.read_only.push(db.id.clone());
                }
                Ok(Some(true)) => {
                    tracing::info!(database = %db.id, size, "database under its storage quota again: writable");
                    report.writable_again.push(db.id.clone());
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(database = %db.id, error = %e, "storage quota mode not changed")
                }
            }
        }
        Ok(())
    }

    async fn guard_database(&self, db: &DatabaseRow, report: &mut GuardReport) -> Result<()> {
        let pool = self.ctx.store().pool();
        let server = self.ctx.server(db.server_id.as_deref())?;
        let active: Vec<_> = connections::all_of_database(pool, &db.id)
            .await?
            .into_iter()
            .filter(|c| c.status == ConnectionState::Active)
            .collect();
        let logins: Vec<_> = active.iter().map(|c| self.ctx.login(c)).collect();
        let found = self
            .ctx
            .driver()
            .drift(server, &self.ctx.spec(db), &logins)
            .await?;
        if found.is_empty() || found.contains(&Drift::DatabaseMissing) {
            // A missing database is the reconciler's or the operator's business.
            return Ok(());
        }
        let repaired = self
            .ctx
            .with_resource_lock(&db.id, async {
                // Re-read under the lock: a restore or a delete may have started.
                let Some(fresh) = databases::get(pool, &db.id)
                    .await?
                    .filter(|d| d.status == DatabaseState::Ready)
                else {
                    return Ok(Vec::new());
                };
                let spec = self.ctx.spec(&fresh);
                let mut done = Vec::new();
                if found.iter().any(|d| d.role().is_none()) {
                    self.ctx.driver().ensure_database(server, &spec).await?;
                    done.extend(found.iter().filter(|d| d.role().is_none()).cloned());
                }
                for c in &active {
                    let mine: Vec<&Drift> = found
                        .iter()
                        .filter(|d| d.role() == Some(c.role_name.as_str()))
                        .collect();
                    if mine.is_empty() {
                        continue;
                    }
                    let password = mine
                        .iter()
                        .any(|d| matches!(d, Drift::LoginPassword { .. }));
                    let fixed = self
                        .ctx
                        .with_resource_lock(&c.id, async {
                            // The verifier may have been rotated since it was read; an open
                            // operation on the connection will apply the newest one.
                            let Some(conn) = connections::get(pool, &c.id)
                                .await?
                                .filter(|c| c.status == ConnectionState::Active)
                            else {
                                return Ok(false);
                            };
                            if !operations::open_for(pool, &conn.id).await?.is_empty() {
                                return Ok(false);
                            }
                            self.ctx
                                .driver()
                                .ensure_login(server, &spec, &self.ctx.login(&conn), password)
                                .await?;
                            Ok(true)
                        })
                        .await?;
                    if fixed == Some(true) {
                        done.extend(mine.into_iter().cloned());
                    }
                }
                Ok(done)
            })
            .await?
            .unwrap_or_default();
        for d in repaired {
            // The kind and role only: values a tenant set are its own data.
            tracing::warn!(database = %db.id, drift = d.kind(), role = d.role().unwrap_or_default(), "tenant guard: setting changed outside pgfleet put back");
            crate::metrics::record_drift_repair(d.kind());
            report.repaired.push(format!("{}: {}", db.id, d.kind()));
        }
        Ok(())
    }
}
