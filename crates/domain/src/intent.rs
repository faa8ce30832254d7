//! Intent first: every change to a server is written as metadata rows together with the
//! operations that will carry it out, in one transaction, and only then executed (see
//! [`crate::reconciler`]). A service method writes its rows in a transaction and hands it,
//! with the operations it plans ([`Planned`]), to [`Ctx::commit_intent`], which records
//! them (each with the id of the request or job round that planned it, [`crate::request`]),
//! commits, notes the write for cached reads and runs them: a new operation is one call.

use pgfleet_storage::{operations, OperationKind, StorageError};

use std::sync::Arc;

use crate::services::Ctx;
use crate::Result;

/// An operation to record with an intent's rows.
#[derive(Debug, Clone)]
pub(crate) struct Planned {
    kind: OperationKind,
    resource_id: String,
    payload: serde_json::Value,
}

impl Planned {
    /// `kind` on `resource_id`, with an empty payload.
    pub(crate) fn new(kind: OperationKind, resource_id: &str) -> Self {
        Planned {
            kind,
            resource_id: resource_id.to_string(),
            payload: serde_json::json!({}),
        }
    }

    pub(crate) fn with_payload(self, payload: serde_json::Value) -> Self {
        Planned { payload, ..self }
    }
}

/// When the request that wrote an intent runs its operations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Run {
    /// Now, one after the other, waiting for each up to the provisioning deadline (past it,
    /// it goes on in the background): the answer shows the result.
    Wait,
    /// In the background at once: the answer does not wait (a backup answers `running`).
    Background,
}

impl Ctx {
    /// Records `ops` in `tx` (which holds the intent's rows), commits, notes the write and
    /// runs the operations as `run` says. Nothing is written when any step before the
    /// commit fails (the transaction is dropped, so rolled back).
    pub(crate) async fn commit_intent(
        self: &Arc<Self>,
        mut tx: sqlx::Transaction<'static, sqlx::Postgres>,
        ops: impl IntoIterator<Item = Planned>,
        run: Run,
    ) -> Result<()> {
        let mut ids = Vec::new();
        for op in ops {
            ids.push(self.record_operation(&mut tx, op).await?);
        }
        tx.commit().await.map_err(StorageError::from)?;
        self.note_write();
        for id in ids {
            match run {
                Run::Wait => {
                    self.run_now(&id).await;
                }
                Run::Background => {
                    let this = self.clone();
                    tokio::spawn(async move {
                        this.run_operation(&id).await;
                    });
                }
            }
        }
        Ok(())
    }

    /// Inserts an operation row (inside the intent's transaction), with the id of the request
    /// or job round being served ([`crate::request`]), which the reconciler's span carries.
    async fn record_operation(
        self: &Arc<Self>,
        tx: &mut sqlx::PgConnection,
        op: Planned,
    ) -> Result<String> {
        let id = crate::ids::new_id(crate::ids::OPERATION, self.rng());
        operations::insert(
            &mut *tx,
            &id,
            op.kind,
            &op.resource_id,
            &op.payload,
            crate::request::current().as_deref(),
            self.clock().now(),
        )
        .await?;
        Ok(id)
    }
}
