//! Interactive transactions (`TransactionManager` of the runtime): start with `maxWait` and an
//! isolation level, a timer that rolls back at `timeout`, operations serialised per
//! transaction, and the memory of the last 100 closed transactions so late calls get the
//! reference's P2028 answers (committed, rolled back, expired, not found); nested starts
//! (`newTxId`) are savepoints `prisma_sp_N` on the open transaction; and the revocation of
//! every open transaction of an API key the host no longer accepts.

use std::collections::{HashMap, VecDeque};
use std::ops::Deref;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Map};
use tokio_postgres::Client;

use crate::error::ExecError;
use crate::pg::driver_error;

const CLOSED_MEMORY: usize = 100;

/// The isolation levels the protocol accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
pub enum IsolationLevel {
    #[serde(rename = "READ UNCOMMITTED")]
    ReadUncommitted,
    #[serde(rename = "READ COMMITTED")]
    ReadCommitted,
    #[serde(rename = "REPEATABLE READ")]
    RepeatableRead,
    #[serde(rename = "SNAPSHOT")]
    Snapshot,
    #[serde(rename = "SERIALIZABLE")]
    Serializable,
}

impl IsolationLevel {
    fn sql(self) -> &'static str {
        match self {
            IsolationLevel::ReadUncommitted => "READ UNCOMMITTED",
            IsolationLevel::ReadCommitted => "READ COMMITTED",
            IsolationLevel::RepeatableRead => "REPEATABLE READ",
            IsolationLevel::Snapshot => "SNAPSHOT",
            IsolationLevel::Serializable => "SERIALIZABLE",
        }
    }
}

/// The body of `/transaction/start`.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StartOptions {
    pub timeout: Option<f64>,
    pub max_wait: Option<f64>,
    pub isolation_level: Option<IsolationLevel>,
    pub new_tx_id: Option<String>,
}

#[derive(Debug, Clone, Copy)]
enum ClosedAs {
    Committed,
    RolledBack,
    TimedOut { timeout_ms: u64, started: Instant },
}

/// An open transaction's connection and its savepoints (nested starts with `newTxId`).
struct Open<C> {
    conn: C,
    savepoints: Vec<String>,
    counter: u32,
}

struct Active<C> {
    owner: String,
    conn: Arc<tokio::sync::Mutex<Option<Open<C>>>>,
    timer: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

/// Open and recently closed transactions.
pub struct Transactions<C> {
    active: Mutex<HashMap<String, Arc<Active<C>>>>,
    closed: Mutex<VecDeque<(String, ClosedAs)>>,
}

impl<C> Default for Transactions<C> {
    fn default() -> Self {
        Self {
            active: Mutex::new(HashMap::new()),
            closed: Mutex::new(VecDeque::new()),
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn not_found() -> ExecError {
    ExecError::tx(
        "Transaction not found. Transaction ID is invalid, refers to an old closed transaction Prisma doesn't have information about anymore, or was obtained before disconnecting.",
    )
}

/// What a query, commit or rollback is called (in messages).
#[derive(Debug, Clone, Copy)]
pub enum Operation {
    Start,
    Query,
    Commit,
    Rollback,
}

impl Operation {
    fn name(self) -> &'static str {
        match self {
            Operation::Start => "start",
            Operation::Query => "query",
            Operation::Commit => "commit",
            Operation::Rollback => "rollback",
        }
    }
}

impl<C> Transactions<C>
where
    C: Deref<Target = Client> + Send + Sync + 'static,
{
    fn remember(&self, id: &str, how: ClosedAs) {
        let mut closed = lock(&self.closed);
        closed.push_back((id.to_owned(), how));
        while closed.len() > CLOSED_MEMORY {
            closed.pop_front();
        }
    }

    fn closed_error(&self, id: &str, op: Operation) -> ExecError {
        let how = lock(&self.closed)
            .iter()
            .rev()
            .find(|(i, _)| i == id)
            .map(|(_, h)| *h);
        match how {
            Some(ClosedAs::Committed) => ExecError::tx(format!(
                "Transaction already closed: A {} cannot be executed on a committed transaction.",
                op.name()
            )),
            Some(ClosedAs::RolledBack) => ExecError::tx(format!(
                "Transaction already closed: A {} cannot be executed on a transaction that was rolled back.",
                op.name()
            )),
            Some(ClosedAs::TimedOut { timeout_ms, started }) => {
                let taken = started.elapsed().as_millis() as u64;
                let mut meta = Map::new();
                meta.insert("operation".into(), json!(op.name()));
                meta.insert("timeout".into(), json!(timeout_ms));
                meta.insert("timeTaken".into(), json!(taken));
                ExecError::Transaction {
                    message: format!(
                        "A {} cannot be executed on an expired transaction. The timeout for this transaction was {timeout_ms} ms, however {taken} ms passed since the start of the transaction. Consider increasing the interactive transaction timeout or doing less work in the transaction.",
                        op.name()
                    ),
                    meta,
                }
            }
            None => not_found(),
        }
    }

    fn get(&self, id: &str, owner: &str, op: Operation) -> Result<Arc<Active<C>>, ExecError> {
        match lock(&self.active).get(id) {
            Some(tx) if tx.owner == owner => Ok(tx.clone()),
            Some(_) => Err(not_found()),
            None => Err(self.closed_error(id, op)),
        }
    }

    /// Validates the options, takes a connection within `maxWait`, opens the transaction and
    /// arms its timeout; returns the new id.
    pub async fn start<F, Fut>(
        self: &Arc<Self>,
        owner: &str,
        opts: StartOptions,
        max_timeout: Duration,
        connect: F,
    ) -> Result<String, ExecError>
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: std::future::Future<Output = Result<C, ExecError>> + Send + 'static,
    {
        let requested = opts.timeout.unwrap_or(f64::INFINITY);
        let timeout_ms = requested.min(max_timeout.as_millis() as f64);
        if timeout_ms.is_nan() || timeout_ms <= 0.0 {
            return Err(ExecError::tx("timeout is required"));
        }
        let max_wait = match opts.max_wait {
            Some(w) if w > 0.0 => w,
            _ => return Err(ExecError::tx("maxWait is required")),
        };
        if opts.isolation_level == Some(IsolationLevel::Snapshot) {
            let mut meta = Map::new();
            meta.insert("isolationLevel".into(), json!("SNAPSHOT"));
            return Err(ExecError::Transaction {
                message: "Invalid isolation level: SNAPSHOT".into(),
                meta,
            });
        }
        if let Some(parent) = opts.new_tx_id {
            return self.start_nested(&parent, owner).await;
        }
        let wait = Duration::from_millis(max_wait as u64);
        let level = opts.isolation_level;
        let open = async move {
            let conn = connect().await?;
            let sql = match level {
                Some(l) => format!("BEGIN; SET TRANSACTION ISOLATION LEVEL {}", l.sql()),
                None => "BEGIN".to_owned(),
            };
            conn.batch_execute(&sql)
                .await
                .map_err(|e| driver_error(&e).user_facing())?;
            Ok::<C, ExecError>(conn)
        };
        // The start runs on its own task: one that misses maxWait is rolled back and its
        // connection released when it does finish, as the reference does.
        let mut opening = tokio::spawn(open);
        let conn = match tokio::time::timeout(wait, &mut opening).await {
            Ok(joined) => joined
                .map_err(|e| ExecError::Internal(format!("transaction start failed: {e}")))??,
            Err(_) => {
                tokio::spawn(async move {
                    if let Ok(Ok(late)) = opening.await {
                        if let Err(e) = late.batch_execute("ROLLBACK").await {
                            tracing::debug!(error = %e, "rollback of a late transaction failed");
                        }
                    }
                });
                return Err(ExecError::tx(
                    "Unable to start a transaction in the given time.",
                ));
            }
        };
        let id = uuid::Uuid::new_v4().to_string();
        let tx = Arc::new(Active {
            owner: owner.to_owned(),
            conn: Arc::new(tokio::sync::Mutex::new(Some(Open {
                conn,
                savepoints: Vec::new(),
                counter: 0,
            }))),
            timer: Mutex::new(None),
        });
        lock(&self.active).insert(id.clone(), tx.clone());
        let started = Instant::now();
        let me = Arc::clone(self);
        let timer_id = id.clone();
        let timeout = Duration::from_millis(timeout_ms as u64);
        let handle = tokio::spawn(async move {
            tokio::time::sleep(timeout).await;
            me.expire(&timer_id, timeout_ms as u64, started).await;
        });
        *lock(&tx.timer) = Some(handle);
        Ok(id)
    }

    async fn expire(&self, id: &str, timeout_ms: u64, started: Instant) {
        let Some(tx) = lock(&self.active).remove(id) else {
            return;
        };
        self.remember(
            id,
            ClosedAs::TimedOut {
                timeout_ms,
                started,
            },
        );
        let mut guard = tx.conn.lock().await;
        if let Some(open) = guard.take() {
            if let Err(e) = open.conn.batch_execute("ROLLBACK").await {
                tracing::debug!(error = %e, "rollback of an expired transaction failed");
            }
        }
    }

    /// Waits for the transaction's connection (operations on one transaction never overlap)
    /// and holds it until the returned guard is dropped.
    pub async fn acquire(&self, id: &str, owner: &str) -> Result<TxConn<C>, ExecError> {
        let tx = self.get(id, owner, Operation::Query)?;
        let guard = tx.conn.clone().lock_owned().await;
        if guard.is_none() {
            return Err(self.closed_error(id, Operation::Query));
        }
        Ok(TxConn(guard))
    }

    /// A nested start: a savepoint on the open transaction, which keeps its id.
    async fn start_nested(&self, id: &str, owner: &str) -> Result<String, ExecError> {
        let tx = self.get(id, owner, Operation::Start)?;
        let mut guard = tx.conn.lock().await;
        let Some(open) = guard.as_mut() else {
            return Err(self.closed_error(id, Operation::Start));
        };
        let name = format!("prisma_sp_{}", open.counter);
        open.counter += 1;
        open.conn
            .batch_execute(&format!("SAVEPOINT {name}"))
            .await
            .map_err(|e| driver_error(&e).user_facing())?;
        open.savepoints.push(name);
        Ok(id.to_owned())
    }

    /// Commits or rolls back: the innermost savepoint of a nested transaction, else the
    /// transaction itself, which is then forgotten.
    pub async fn close(&self, id: &str, owner: &str, op: Operation) -> Result<(), ExecError> {
        let tx = self.get(id, owner, op)?;
        let mut guard = tx.conn.lock().await;
        if let Some(open) = guard.as_mut() {
            if let Some(name) = open.savepoints.pop() {
                let sql = match op {
                    Operation::Commit => format!("RELEASE SAVEPOINT {name}"),
                    _ => format!("ROLLBACK TO SAVEPOINT {name}; RELEASE SAVEPOINT {name}"),
                };
                return open
                    .conn
                    .batch_execute(&sql)
                    .await
                    .map_err(|e| driver_error(&e).user_facing());
            }
        }
        let Some(open) = guard.take() else {
            return Err(self.closed_error(id, op));
        };
        lock(&self.active).remove(id);
        if let Some(timer) = lock(&tx.timer).take() {
            timer.abort();
        }
        let (sql, how) = match op {
            Operation::Commit => ("COMMIT", ClosedAs::Committed),
            _ => ("ROLLBACK", ClosedAs::RolledBack),
        };
        self.remember(id, how);
        open.conn
            .batch_execute(sql)
            .await
            .map_err(|e| driver_error(&e).user_facing())
    }
}

impl<C> Transactions<C>
where
    C: Deref<Target = Client> + Send + Sync + 'static,
{
    /// The API keys that have open transactions.
    pub fn owners(&self) -> Vec<String> {
        let mut owners: Vec<String> = lock(&self.active)
            .values()
            .map(|t| t.owner.clone())
            .collect();
        owners.sort();
        owners.dedup();
        owners
    }

    /// Rolls back and forgets every open transaction of `owner` (its key was rotated or
    /// deleted): later calls on them get the rolled-back answer. One running a query is
    /// rolled back when that query ends.
    pub async fn revoke(&self, owner: &str) {
        let gone: Vec<(String, Arc<Active<C>>)> = {
            let mut active = lock(&self.active);
            let ids: Vec<String> = active
                .iter()
                .filter(|(_, t)| t.owner == owner)
                .map(|(id, _)| id.clone())
                .collect();
            ids.into_iter()
                .filter_map(|id| active.remove(&id).map(|t| (id, t)))
                .collect()
        };
        for (id, tx) in gone {
            let timer = lock(&tx.timer).take();
            if let Some(timer) = timer {
                timer.abort();
            }
            self.remember(&id, ClosedAs::RolledBack);
            let mut guard = tx.conn.lock().await;
            if let Some(open) = guard.take() {
                if let Err(e) = open.conn.batch_execute("ROLLBACK").await {
                    tracing::debug!(error = %e, "rollback of a revoked transaction failed");
                }
            }
        }
    }
}

/// The connection of an interactive transaction, held for one operation.
pub struct TxConn<C>(tokio::sync::OwnedMutexGuard<Option<Open<C>>>);

impl<C: Deref<Target = Client>> TxConn<C> {
    /// The connection (always present: [`Transactions::acquire`] checks it).
    pub fn client(&self) -> Option<&Client> {
        self.0.as_ref().map(|open| &*open.conn)
    }
}
