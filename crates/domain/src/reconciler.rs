//! The reconciler: brings the real Postgres servers to the state the metadata says, one
//! operation row at a time.
//!
//! Every change to a server is recorded first as an `operations` row in the same transaction
//! as the metadata it concerns (intent first, [`crate::intent`]). An operation is then executed right away by
//! the request that created it and, if that does not finish it (crash, deadline, failure),
//! by the background loop, which also runs at start. Each step is idempotent, so running an
//! operation again after a crash at any point finishes it. Two executors never run the same
//! operation at once: each holds a session-level advisory lock on the operation's resource
//! for the duration, and a crashed process's locks vanish with its sessions.
//!
//! Each attempt comes to an [`Outcome`] (`crate::outcome`), which `crate::metrics` counts,
//! and runs in an `operation` span (id, kind, resource, database, and the `request_id` of the
//! request or job round that planned it, [`crate::request`]), so its log lines name their
//! cause in whichever task or process runs it.

use crate::services::webhooks;
use pgfleet_api_types::webhook::WebhookEventType;
use std::sync::Arc;
use std::time::Duration;

use pgfleet_dataplane::{DatabaseSpec, LoginSpec};
use pgfleet_storage::{
    connections, databases, locks, operations, projects, ConnectionRow, ConnectionState,
    DatabaseRow, DatabaseState, OperationKind, OperationRow, OperationState, StorageError,
};
use serde_json::json;
use tokio::sync::watch;
use tracing::Instrument as _;

use crate::failpoint::hit;
use crate::outcome::Outcome;
use crate::services::Ctx;
use crate::{DomainError, Result};

/// Attempts before an operation is marked failed.
const MAX_ATTEMPTS: i32 = 8;

/// The span every attempt at `op` runs in: its log lines carry the operation, its database
/// and the request (or job round) that planned it.
/// (A connection's or backup's database is recorded when the attempt reads it,
/// [`note_database`].)
fn operation_span(op: &OperationRow) -> tracing::Span {
    let span = tracing::info_span!(
        "operation",
        id = %op.id,
        kind = %op.kind,
        resource_id = %op.resource_id,
        database_id = tracing::field::Empty,
        request_id = op.request_id.as_deref().unwrap_or("-"),
    );
    match op.kind {
        OperationKind::DatabaseCreate
        | OperationKind::DatabaseDelete
        | OperationKind::DatabaseRestore => {
            span.record("database_id", op.resource_id.as_str());
        }
        OperationKind::ConnectionCreate
        | OperationKind::ConnectionRotate
        | OperationKind::ConnectionDelete
        | OperationKind::BackupCreate => {}
    }
    span
}

/// Records the database of the operation being run on its span.
pub(crate) fn note_database(database_id: &str) {
    tracing::Span::current().record("database_id", database_id);
}

/// Pause between the reconciler's rounds.
const PAUSE: Duration = Duration::from_millis(500);
/// Longest pause after failed rounds (the metadata store is down).
const MAX_PAUSE: Duration = Duration::from_secs(8);

impl Ctx {
    /// Runs an operation now in its own task and waits for it up to the provisioning
    /// deadline; past that it goes on in the background.
    pub(crate) async fn run_now(self: &Arc<Self>, op_id: &str) -> Outcome {
        let this = self.clone();
        let id = op_id.to_string();
        let task = tokio::spawn(async move { this.run_operation(&id).await });
        match tokio::time::timeout(self.config().provision_wait, task).await {
            Ok(Ok(o)) => o,
            Ok(Err(e)) => {
                tracing::error!(error = %e, "operation task failed");
                Outcome::Retrying
            }
            Err(_) => {
                self.kick().notify_one();
                Outcome::Retrying
            }
        }
    }

    /// Waits until no operation runs in this process (at most `limit`), so a shutdown does
    /// not cut one off between its steps and its bookkeeping.
    pub async fn wait_idle(self: &Arc<Self>, limit: Duration) {
        let deadline = std::time::Instant::now() + limit;
        while self
            .inflight()
            .lock()
            .map(|s| !s.is_empty())
            .unwrap_or(false)
        {
            if std::time::Instant::now() > deadline {
                tracing::warn!(
                    "operations still running at shutdown; the next start finishes them"
                );
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The background loop: runs due operations until `shutdown` turns true.
    pub fn spawn_reconciler(
        self: &Arc<Self>,
        mut shutdown: watch::Receiver<bool>,
    ) -> tokio::task::JoinHandle<()> {
        let this = self.clone();
        tokio::spawn(async move {
            // While the metadata store is down, each round fails after the pool's acquire
            // timeout; the pause between rounds doubles (to `MAX_PAUSE`) so the loop does not
            // keep a connection attempt open all the time, and is back to normal on success.
            let mut pause = PAUSE;
            loop {
                match operations::due(this.store().pool(), this.clock().now(), 32).await {
                    Ok(ops) => {
                        pause = PAUSE;
                        for op in ops {
                            let busy = this
                                .inflight()
                                .lock()
                                .map(|s| s.contains(&op.id))
                                .unwrap_or(true);
                            if !busy {
                                let t = this.clone();
                                tokio::spawn(async move {
                                    t.run_operation(&op.id).await;
                                });
                            }
                        }
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, retry_in = ?pause, "reconciler cannot read operations");
                        pause = (pause * 2).min(MAX_PAUSE);
                    }
                }
                tokio::select! {
                    _ = this.kick().notified() => {}
                    _ = tokio::time::sleep(pause) => {}
                    _ = shutdown.changed() => {}
                }
                if *shutdown.borrow() {
                    return;
                }
            }
        }
        .instrument(tracing::info_span!("job", job = "reconciler")))
    }

    /// Executes one operation under its resource's advisory lock.
    pub async fn run_operation(self: &Arc<Self>, op_id: &str) -> Outcome {
        match self.run_operation_inner(op_id).await {
            Ok(o) => o,
            Err(e) => {
                tracing::warn!(op = op_id, error = %e, "operation could not be run");
                Outcome::Retrying
            }
        }
    }

    async fn run_operation_inner(self: &Arc<Self>, op_id: &str) -> Result<Outcome> {
        {
            let mut inflight = self
                .inflight()
                .lock()
                .map_err(|_| DomainError::internal("inflight lock poisoned"))?;
            if !inflight.insert(op_id.to_string()) {
                return Ok(Outcome::NotRun);
            }
        }
        // Marked in flight first, so the reconciler does not start it again while it waits.
        let result = match self.op_slots().acquire().await {
            Ok(_slot) => self.run_locked(op_id).await,
            Err(_) => Err(DomainError::internal("operation slots closed")),
        };
        if let Ok(mut inflight) = self.inflight().lock() {
            inflight.remove(op_id);
        }
        result
    }

    async fn run_locked(self: &Arc<Self>, op_id: &str) -> Result<Outcome> {
        let Some(op) = operations::get(self.store().pool(), op_id).await? else {
            return Ok(Outcome::NotRun);
        };
        if !op.state.is_open() {
            return Ok(Outcome::NotRun);
        }
        let resource = op.resource_id.clone();
        let span = operation_span(&op);
        Ok(self
            .with_resource_lock(&resource, self.execute_with_bookkeeping(op))
            .instrument(span)
            .await?
            .unwrap_or(Outcome::NotRun))
    }

    /// Runs `work` while holding the advisory lock of `resource` (the lock operations on it
    /// take), or returns `None` at once when another session holds it. Used by periodic
    /// work that must not race an operation, or run twice across replicas.
    pub(crate) async fn with_resource_lock<T>(
        self: &Arc<Self>,
        resource: &str,
        work: impl std::future::Future<Output = Result<T>>,
    ) -> Result<Option<T>> {
        let mut lock_conn = self
            .store()
            .pool()
            .acquire()
            .await
            .map_err(StorageError::from)?;
        let locked = locks::try_lock_resource(&mut lock_conn, resource).await?;
        if !locked {
            return Ok(None);
        }
        let result = work.await;
        // The session is this function's alone, so releasing all it holds releases just this
        // lock, and leaves nothing behind whatever happened.
        let unlocked = locks::unlock_all(&mut lock_conn).await;
        if unlocked.is_err() {
            // Never give a session that may still hold a lock back to the pool.
            let _ = lock_conn.detach();
        }
        result.map(Some)
    }

    async fn execute_with_bookkeeping(self: &Arc<Self>, op: OperationRow) -> Result<Outcome> {
        // Re-read under the lock: another executor may have finished it meanwhile.
        let Some(op) = operations::get(self.store().pool(), &op.id).await? else {
            return Ok(Outcome::NotRun);
        };
        if !op.state.is_open() {
            return Ok(Outcome::NotRun);
        }
        operations::start(self.store().pool(), &op.id, self.clock().now()).await?;
        let started = std::time::Instant::now();
        let result = self.execute_and_account(&op, started).await;
        crate::metrics::record_operation(op.kind, &result, started.elapsed());
        // Whatever happened changed rows that cached reads may hold.
        self.note_write();
        result
    }

    async fn execute_and_account(
        self: &Arc<Self>,
        op: &OperationRow,
        started: std::time::Instant,
    ) -> Result<Outcome> {
        match self.execute(op).await {
            Ok(()) => {
                tracing::info!(op = %op.id, kind = %op.kind, resource = %op.resource_id, ms = started.elapsed().as_millis() as u64, "operation done");
                Ok(Outcome::Done)
            }
            Err(e) => {
                let attempts = op.attempts + 1;
                let now = self.clock().now();
                let message = e.to_string();
                if attempts >= MAX_ATTEMPTS {
                    tracing::error!(op = %op.id, kind = %op.kind, error = %message, "operation failed for good");
                    let mut tx = self.store().begin().await?;
                    operations::finish(
                        &mut *tx,
                        &op.id,
                        OperationState::Failed,
                        Some(&message),
                        now,
                    )
                    .await?;
                    if op.kind == OperationKind::DatabaseCreate {
                        databases::set_status(&mut *tx, &op.resource_id, DatabaseState::Failure)
                            .await?;
                        if let Some(db) = databases::get(&mut *tx, &op.resource_id).await? {
                            webhooks::emit_database(
                                self,
                                &mut tx,
                                &db,
                                WebhookEventType::DatabaseFailed,
                            )
                            .await?;
                        }
                    }
                    tx.commit().await.map_err(StorageError::from)?;
                    match op.kind {
                        OperationKind::BackupCreate => {
                            self.backups().backup_failed(op, &message).await?
                        }
                        OperationKind::DatabaseRestore => self.backups().restore_failed(op).await?,
                        OperationKind::DatabaseCreate
                        | OperationKind::DatabaseDelete
                        | OperationKind::ConnectionCreate
                        | OperationKind::ConnectionRotate
                        | OperationKind::ConnectionDelete => {}
                    }
                    Ok(Outcome::Failed)
                } else {
                    let backoff = Duration::from_millis(250u64 << attempts.clamp(0, 8) as u32)
                        .min(Duration::from_secs(60));
                    let next = now
                        + chrono::Duration::from_std(backoff)
                            .unwrap_or(chrono::Duration::seconds(60));
                    tracing::warn!(op = %op.id, kind = %op.kind, attempts, error = %message, "operation failed; will retry");
                    operations::retry_at(self.store().pool(), &op.id, &message, next, now).await?;
                    Ok(Outcome::Retrying)
                }
            }
        }
    }

    async fn execute(self: &Arc<Self>, op: &OperationRow) -> Result<()> {
        match op.kind {
            OperationKind::DatabaseCreate => self.exec_database_create(op).await,
            OperationKind::DatabaseDelete => self.exec_database_delete(op).await,
            OperationKind::ConnectionCreate | OperationKind::ConnectionRotate => {
                self.exec_connection_login(op).await
            }
            OperationKind::ConnectionDelete => self.exec_connection_delete(op).await,
            OperationKind::BackupCreate => self.backups().exec_create(op).await,
            OperationKind::DatabaseRestore => self.backups().exec_restore(op).await,
        }
    }

    pub(crate) fn spec(self: &Arc<Self>, db: &DatabaseRow) -> DatabaseSpec {
        DatabaseSpec {
            pg_database: db.pg_database.clone(),
            owner_role: db.owner_role.clone(),
            connection_limit: db.connection_limit,
            limits: self.config().tenant.limits,
        }
    }

    pub(crate) fn login(self: &Arc<Self>, c: &ConnectionRow) -> LoginSpec {
        LoginSpec {
            role: c.role_name.clone(),
            scram_verifier: c.scram_verifier.clone(),
            connection_limit: self.config().role_connection_limit,
        }
    }

    /// Marks `op` succeeded now (in `ex`: the pool, or the transaction that did its work).
    pub(crate) async fn succeed_op<'e>(
        self: &Arc<Self>,
        ex: impl sqlx::PgExecutor<'e>,
        op: &OperationRow,
    ) -> Result<()> {
        operations::finish(
            ex,
            &op.id,
            OperationState::Succeeded,
            None,
            self.clock().now(),
        )
        .await?;
        Ok(())
    }

    async fn exec_database_create(self: &Arc<Self>, op: &OperationRow) -> Result<()> {
        let pool = self.store().pool();
        let db = databases::get(pool, &op.resource_id).await?;
        let Some(db) = db.filter(|d| d.status == DatabaseState::Provisioning) else {
            // Deleted or already done meanwhile: nothing left to do.
            self.succeed_op(pool, op).await?;
            return Ok(());
        };
        let server = self.server(db.server_id.as_deref())?;
        let spec = self.spec(&db);
        operations::step(pool, &op.id, "database", self.clock().now()).await?;
        self.driver().ensure_database(server, &spec).await?;
        hit("database.create.after_database");
        operations::step(pool, &op.id, "roles", self.clock().now()).await?;
        for c in connections::all_of_database(pool, &db.id).await? {
            if c.status != ConnectionState::Deleting {
                self.driver()
                    .ensure_login(server, &spec, &self.login(&c), false)
                    .await?;
            }
        }
        hit("database.create.after_role");
        operations::step(pool, &op.id, "data", self.clock().now()).await?;
        self.backups().fill_from_source(&db, op).await?;
        hit("database.create.before_ready");
        let mut tx = self.store().begin().await?;
        databases::set_status(&mut *tx, &db.id, DatabaseState::Ready).await?;
        connections::activate_all(&mut *tx, &db.id).await?;
        self.succeed_op(&mut *tx, op).await?;
        if let Some(ready) = databases::get(&mut *tx, &db.id).await? {
            webhooks::emit_database(self, &mut tx, &ready, WebhookEventType::DatabaseReady).await?;
        }
        tx.commit().await.map_err(StorageError::from)?;
        Ok(())
    }

    async fn exec_database_delete(self: &Arc<Self>, op: &OperationRow) -> Result<()> {
        let pool = self.store().pool();
        let Some(db) = databases::get(pool, &op.resource_id).await? else {
            self.succeed_op(pool, op).await?;
            return Ok(());
        };
        if let Some(server_id) = db.server_id.as_deref() {
            let server = self.server(Some(server_id))?;
            let spec = self.spec(&db);
            operations::step(pool, &op.id, "roles", self.clock().now()).await?;
            for c in connections::all_of_database(pool, &db.id).await? {
                self.driver()
                    .drop_login(server, &spec, &c.role_name)
                    .await?;
            }
            operations::step(pool, &op.id, "database", self.clock().now()).await?;
            self.driver().drop_database(server, &spec).await?;
        }
        hit("database.delete.after_drop");
        let mut tx = self.store().begin().await?;
        webhooks::emit_database(self, &mut tx, &db, WebhookEventType::DatabaseDeleted).await?;
        connections::delete_of_database(&mut *tx, &db.id).await?;
        databases::delete(&mut *tx, &db.id).await?;
        if let Some(project_id) = op.payload.get("deleteProject").and_then(|v| v.as_str()) {
            if databases::all_of_project(&mut *tx, project_id)
                .await?
                .is_empty()
            {
                projects::delete(&mut *tx, project_id).await?;
            }
        }
        self.succeed_op(&mut *tx, op).await?;
        tx.commit().await.map_err(StorageError::from)?;
        Ok(())
    }

    async fn exec_connection_login(self: &Arc<Self>, op: &OperationRow) -> Result<()> {
        let pool = self.store().pool();
        let conn = connections::get(pool, &op.resource_id).await?;
        if let Some(c) = &conn {
            note_database(&c.database_id);
        }
        let db = match &conn {
            Some(c) => databases::get(pool, &c.database_id).await?,
            None => None,
        };
        let (Some(conn), Some(db)) = (
            conn.filter(|c| c.status != ConnectionState::Deleting),
            db.filter(|d| d.status != DatabaseState::Deleting),
        ) else {
            self.succeed_op(pool, op).await?;
            return Ok(());
        };
        let server = self.server(db.server_id.as_deref())?;
        let rotate = op.kind == OperationKind::ConnectionRotate;
        self.driver()
            .ensure_login(server, &self.spec(&db), &self.login(&conn), rotate)
            .await?;
        hit(if rotate {
            "connection.rotate.after_password"
        } else {
            "connection.create.after_role"
        });
        let mut tx = self.store().begin().await?;
        if conn.status == ConnectionState::Creating {
            connections::set_status(&mut *tx, &conn.id, ConnectionState::Active).await?;
        }
        self.succeed_op(&mut *tx, op).await?;
        tx.commit().await.map_err(StorageError::from)?;
        Ok(())
    }

    async fn exec_connection_delete(self: &Arc<Self>, op: &OperationRow) -> Result<()> {
        let pool = self.store().pool();
        let Some(conn) = connections::get(pool, &op.resource_id).await? else {
            self.succeed_op(pool, op).await?;
            return Ok(());
        };
        note_database(&conn.database_id);
        if let Some(db) = databases::get(pool, &conn.database_id).await? {
            let server = self.server(db.server_id.as_deref())?;
            self.driver()
                .drop_login(server, &self.spec(&db), &conn.role_name)
                .await?;
        }
        hit("connection.delete.after_drop");
        let mut tx = self.store().begin().await?;
        connections::delete(&mut *tx, &conn.id).await?;
        self.succeed_op(&mut *tx, op).await?;
        tx.commit().await.map_err(StorageError::from)?;
        Ok(())
    }
}

/// Payload helper for delete operations that also remove their project.
pub(crate) fn delete_project_payload(project_id: &str) -> serde_json::Value {
    json!({ "deleteProject": project_id })
}
