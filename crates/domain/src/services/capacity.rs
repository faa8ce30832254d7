//! Placing a new database within the connection capacity (the rules are in
//! [`crate::capacity`]): the workspace's quota first, then a server of the region with room;
//! and each server's capacity, read from the server and recorded in the metadata store so
//! every replica places against the same figure. Drained servers take no new databases.

use pgfleet_storage::capacity as slots;

use crate::capacity::{fits_quota, place, server_capacity, Placement};
use crate::{DomainError, Result};

/// Connection slots of servers and workspaces. Obtained from [`super::Services::capacity`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct Capacity<'a> {
    pub(super) ctx: &'a std::sync::Arc<super::Ctx>,
}

impl Capacity<'_> {
    /// Reads a server's connection settings and records its capacity; why not when the server
    /// does not answer (the figure recorded before, if any, stays). The reason is for the
    /// operator (it may name the host, e.g. a certificate that does not verify).
    async fn read_capacity<'e>(
        &self,
        ex: impl sqlx::PgExecutor<'e>,
        server_id: &str,
    ) -> std::result::Result<i32, String> {
        let server = self
            .ctx
            .server(Some(server_id))
            .map_err(|_| format!("server {server_id} is not configured"))?;
        match server.connection_settings().await {
            Ok(settings) => {
                let capacity = server_capacity(settings, self.ctx.config().reserved_connections);
                if let Err(e) = slots::set_server_capacity(ex, server_id, capacity).await {
                    tracing::warn!(server = %server.key, error = %e, "could not record a server's capacity");
                }
                Ok(capacity)
            }
            Err(e) => {
                tracing::warn!(server = %server.key, error = %e, "could not read a server's connection settings");
                Err(format!("{}: {e}", server.key))
            }
        }
    }

    /// At start: records every server's capacity, and says so when the databases already on a
    /// server hold more slots than it has (its `max_connections` was lowered, or databases were
    /// placed before capacity was counted): new databases then go elsewhere.
    pub(crate) async fn record_server_capacities(&self) {
        // Databases of an older pgfleet (limit 100) or of a larger configured limit count
        // with the limit configured now, so the quota and capacity figures hold for them too.
        let max = self.ctx.config().database_connection_limit;
        match slots::lower_connection_limits(self.ctx.store().pool(), max).await {
            Ok(0) => {}
            Ok(n) => tracing::warn!(
                databases = n,
                limit = max,
                "lowered the connection limit of databases above database_connection_limit"
            ),
            Err(e) => tracing::warn!(error = %e, "could not lower databases' connection limits"),
        }
        let mut ids: Vec<String> = self
            .ctx
            .configured_regions()
            .iter()
            .flat_map(|r| self.ctx.region_server_ids(&r.id).iter().cloned())
            .collect();
        ids.sort();
        ids.dedup();
        for id in &ids {
            let _ = self.read_capacity(self.ctx.store().pool(), id).await;
        }
        match slots::servers(self.ctx.store().pool(), &ids).await {
            Ok(all) => {
                self.publish_slots(&all);
                for s in all {
                    if s.capacity.is_some_and(|c| s.used > i64::from(c)) {
                        let key = self.ctx.server(Some(&s.server_id)).map(|v| v.key.clone());
                        tracing::warn!(
                            server = %key.unwrap_or_default(),
                            capacity = s.capacity,
                            assigned = s.used,
                            "the databases on this Postgres server hold more connection slots than it has; \
                             no new database goes there until some are deleted"
                        );
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "could not read servers' connection slots"),
        }
    }

    /// Every server's capacity and assigned slots, for `/metrics` (the usage sampler calls
    /// this each round, so creates and deletes of other replicas show too).
    pub(crate) async fn refresh_slot_metrics(&self) {
        let ids: Vec<String> = self
            .ctx
            .configured_regions()
            .iter()
            .flat_map(|r| self.ctx.region_server_ids(&r.id).iter().cloned())
            .collect();
        match slots::servers(self.ctx.store().pool(), &ids).await {
            Ok(all) => self.publish_slots(&all),
            Err(e) => tracing::warn!(error = %e, "could not read servers' connection slots"),
        }
    }

    fn publish_slots(&self, all: &[slots::ServerSlots]) {
        for s in all {
            let region = self
                .ctx
                .server(Some(&s.server_id))
                .map(|v| v.region.clone());
            crate::metrics::record_server_slots(
                &region.unwrap_or_default(),
                &s.server_id,
                s.capacity,
                s.used,
            );
        }
    }

    /// Checks that the workspace may take a database of `limit` connection slots and picks a
    /// server of the region with room for it. The workspace and the region's servers stay
    /// locked until `tx` ends, so the caller must write the database in the same transaction:
    /// a concurrent create (from this process or another replica) then counts it.
    pub(crate) async fn reserve_slots(
        &self,
        tx: &mut sqlx::PgConnection,
        workspace_id: &str,
        region_id: &str,
        limit: i32,
    ) -> Result<String> {
        let needed = i64::from(limit);
        // Always the workspace first, then the servers: one order for every create.
        if !slots::lock_workspace(&mut *tx, workspace_id).await? {
            return Err(DomainError::not_found("Workspace", workspace_id));
        }
        let quota = self.ctx.config().workspace_connections;
        let used = slots::workspace_used(&mut *tx, workspace_id).await?;
        if !fits_quota(used, needed, quota) {
            return Err(DomainError::bad_request_hint(
                format!(
                    "This workspace's databases already hold {used} of its {quota} connection \
                     slots; a new database needs {needed}"
                ),
                "Delete a database you no longer need, or ask the operator to raise \
                 capacity.workspace_connections.",
            ));
        }
        let ids = self.ctx.region_server_ids(region_id).to_vec();
        let mut servers = slots::lock_servers(&mut *tx, &ids).await?;
        let mut placement = place(&servers, needed);
        let mut unreachable = Vec::new();
        if placement == Placement::Unknown {
            // A server no process has reached yet: try it now (we hold its row).
            for s in servers.iter_mut().filter(|s| s.capacity.is_none()) {
                match self.read_capacity(&mut *tx, &s.server_id).await {
                    Ok(c) => s.capacity = Some(c),
                    Err(why) => unreachable.push(why),
                }
            }
            placement = place(&servers, needed);
        }
        match placement {
            Placement::Server(id) => Ok(id),
            Placement::Full {
                most_free,
                drained,
                servers,
            } => {
                // The operator's signal that the region needs another server.
                tracing::warn!(
                    region = %region_id,
                    needed,
                    most_free,
                    drained,
                    servers,
                    "a database create was refused: no server of the region that is not drained has room"
                );
                let others: Vec<&str> = self
                    .ctx
                    .configured_regions()
                    .iter()
                    .filter(|r| r.available() && r.id != region_id)
                    .map(|r| r.id.as_str())
                    .collect();
                let hint = if others.is_empty() {
                    "Delete a database in this region, or ask the operator to add a server to it \
                     or undrain one."
                        .to_string()
                } else {
                    format!(
                        "Choose another region ({}), or delete a database in this one.",
                        others.join(", ")
                    )
                };
                Err(DomainError::bad_request_hint(
                    full_message(region_id, needed, most_free, drained, servers),
                    hint,
                ))
            }
            Placement::Unknown => Err(DomainError::Unavailable {
                message: format!(
                    "The Postgres servers of region {region_id} are not reachable right now"
                ),
                detail: format!(
                    "no recorded capacity for the servers {ids:?}; {}",
                    unreachable.join("; ")
                ),
                dependency: crate::error::Dependency::PostgresServer,
            }),
        }
    }

    /// Checks, under a lock held until `tx` ends, that a workspace can take `needed` more
    /// slots (a project moving in); 409 otherwise.
    pub(crate) async fn reserve_workspace_slots(
        &self,
        tx: &mut sqlx::PgConnection,
        workspace_id: &str,
        needed: i64,
    ) -> Result<()> {
        if !slots::lock_workspace(&mut *tx, workspace_id).await? {
            return Err(DomainError::not_found("Workspace", workspace_id));
        }
        let quota = self.ctx.config().workspace_connections;
        let used = slots::workspace_used(&mut *tx, workspace_id).await?;
        if fits_quota(used, needed, quota) {
            return Ok(());
        }
        Err(DomainError::conflict(
            format!(
                "The receiving workspace's databases already hold {used} of its {quota} \
                 connection slots; this project's databases hold {needed}"
            ),
            Some(
                "Delete databases in the receiving workspace first, or ask the operator to raise \
                 capacity.workspace_connections."
                    .to_string(),
            ),
        ))
    }
}

/// What a create refused for want of room is told: drained servers are named as such, so the
/// answer says whether the region is full or taken out of placement by its operator.
fn full_message(
    region: &str,
    needed: i64,
    most_free: i64,
    drained: usize,
    servers: usize,
) -> String {
    if servers > 0 && drained == servers {
        return format!(
            "Region {region} has no capacity left: all its Postgres servers are drained \
             (they take no new databases)"
        );
    }
    let drained_note = if drained > 0 {
        format!(" ({drained} of its {servers} servers are drained and take no new databases)")
    } else {
        String::new()
    };
    format!(
        "Region {region} has no capacity left: a new database needs {needed} connection slots \
         and its servers have at most {} free{drained_note}",
        most_free.max(0)
    )
}
