//! The HTTP side: an axum [`Router`] with the routes of `@prisma/query-plan-executor`
//! (`/health`, `/connection-info`, `/query`, `/transaction/start`,
//! `/transaction/{id}/query|commit|rollback`), authenticated by the Bearer API key, generic
//! over the [`Backend`] that maps a key to a database and hands out connections (pgfleet
//! implements it with its per-connection keys and pool); and the [`Revoker`] through which
//! the host closes the interactive transactions of a key it no longer accepts. A plan past the
//! query timeout is answered `422` as the reference does, and its statement cancelled, also
//! inside an interactive transaction.

use std::collections::HashMap;
use std::future::Future;
use std::ops::Deref;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde::Deserialize;

use crate::error::ExecError;
use crate::generators::{Entropy, Generators, SystemEntropy};
use crate::interpret::run_plan;
use crate::key_slots::{self, KeySlot, KeySlots};
use crate::plan::plan_error;
use crate::transactions::{Operation, StartOptions, Transactions};
use crate::value::{Record, Value};

/// Why a backend could not serve a request.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    /// The API key is unknown or revoked.
    #[error("unknown API key")]
    UnknownKey,
    /// No connection could be had; the text is shown to the client.
    #[error("{0}")]
    Unavailable(String),
}

/// What the executor needs from its host. Connections must run with `TimeZone=UTC` (the
/// reference's timestamp handling is only right in a UTC session) and are returned to the
/// host's pool when dropped.
pub trait Backend: Send + Sync + 'static {
    /// What an API key resolves to (a database and role).
    type Target: Send + Sync + 'static;
    /// A pooled connection.
    type Conn: Deref<Target = tokio_postgres::Client> + Send + Sync + 'static;

    fn resolve(
        &self,
        api_key: &str,
    ) -> impl Future<Output = Result<Self::Target, BackendError>> + Send;
    fn connect(
        &self,
        target: &Self::Target,
    ) -> impl Future<Output = Result<Self::Conn, BackendError>> + Send;

    /// Counts one query plan admitted for `target` (usage), `in_transaction` when it runs
    /// inside an interactive transaction. The default counts nothing.
    fn count_query(&self, target: &Self::Target, in_transaction: bool) {
        let _ = (target, in_transaction);
    }

    /// Counts one interactive transaction of `target` ended (committed or rolled back).
    fn count_transaction(&self, target: &Self::Target) {
        let _ = target;
    }

    /// How many replicas serve the same keys (alive now, this one included): each admits
    /// `ceil(max_concurrent_queries / replicas)` queries of a key at once. Default 1.
    fn replicas(&self) -> usize {
        1
    }

    /// Cancels the statement of a plan that ran past the query timeout on a connection of
    /// `target` (outside or inside an interactive transaction). The host knows how to reach the server (TLS or not); the default does
    /// nothing.
    fn cancel(
        &self,
        target: &Self::Target,
        token: tokio_postgres::CancelToken,
    ) -> impl Future<Output = ()> + Send {
        let _ = (target, token);
        async {}
    }
}

/// How long a statement cancelled at the query timeout is given to end before its
/// transaction's connection is released anyway.
const CANCEL_GRACE: Duration = Duration::from_secs(5);

/// Limits applied to every request.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Whole-plan time limit (the reference's `queryTimeout`).
    pub query_timeout: Duration,
    /// Cap on an interactive transaction's `timeout`.
    pub max_transaction_timeout: Duration,
    /// Largest accepted request body (the reference has none; axum's default is 2 MB).
    pub max_request_bytes: usize,
    /// Queries one API key may have running at once across the replicas (each enforces its
    /// share, see [`Backend::replicas`]); more are answered P5011 (HTTP 429).
    pub max_concurrent_queries: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            query_timeout: Duration::from_secs(30),
            max_transaction_timeout: Duration::from_secs(60),
            max_request_bytes: 16 * 1024 * 1024,
            max_concurrent_queries: 64,
        }
    }
}

struct Executor<B: Backend> {
    backend: B,
    transactions: Arc<Transactions<B::Conn>>,
    generators: Generators,
    limits: Limits,
    /// Queries running per API key (for `max_concurrent_queries`).
    running: KeySlots,
}

impl<B: Backend> Executor<B> {
    /// A slot for one query of `key`, or P5011 when the key has this replica's share of
    /// its limit running ([`key_slots::share`] over the backend's live replicas).
    fn admit(&self, key: &str) -> Result<KeySlot, ExecError> {
        let limit = self.limits.max_concurrent_queries;
        let allowed = key_slots::share(limit, self.backend.replicas());
        self.running
            .try_admit(key, allowed)
            .ok_or(ExecError::TooManyRequests(limit))
    }
}

/// What a [`Revoker`] needs of the transactions (their connection type erased).
trait RevokeKeys: Send + Sync {
    fn owners(&self) -> Vec<String>;
    fn revoke<'a>(&'a self, owner: &'a str) -> Pin<Box<dyn Future<Output = ()> + Send + 'a>>;
}

impl<C> RevokeKeys for Transactions<C>
where
    C: Deref<Target = tokio_postgres::Client> + Send + Sync + 'static,
{
    fn owners(&self) -> Vec<String> {
        Transactions::owners(self)
    }

    fn revoke<'a>(&'a self, owner: &'a str) -> Pin<Box<dyn Future<Output = ()> + Send + 'a>> {
        Box::pin(Transactions::revoke(self, owner))
    }
}

/// Closes the open interactive transactions of API keys the host no longer accepts (a
/// rotated or deleted connection's): requests with such a key are refused by
/// [`Backend::resolve`] anyway, this ends what they had open at once.
#[derive(Clone)]
pub struct Revoker(Arc<dyn RevokeKeys>);

impl std::fmt::Debug for Revoker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Revoker")
    }
}

impl Revoker {
    /// The API keys that have interactive transactions open now.
    pub fn keys_with_transactions(&self) -> Vec<String> {
        self.0.owners()
    }

    /// Rolls back every open transaction of `key`.
    pub async fn revoke(&self, key: &str) {
        self.0.revoke(key).await;
    }
}

/// The router, with the system clock and randomness.
pub fn router<B: Backend>(backend: B, limits: Limits) -> Router {
    router_with_entropy(backend, limits, Arc::new(SystemEntropy))
}

/// The router and its [`Revoker`], with the system clock and randomness.
pub fn router_with_revoker<B: Backend>(backend: B, limits: Limits) -> (Router, Revoker) {
    build(backend, limits, Arc::new(SystemEntropy))
}

/// The router with injected clock and randomness (tests).
pub fn router_with_entropy<B: Backend>(
    backend: B,
    limits: Limits,
    entropy: Arc<dyn Entropy>,
) -> Router {
    build(backend, limits, entropy).0
}

fn build<B: Backend>(backend: B, limits: Limits, entropy: Arc<dyn Entropy>) -> (Router, Revoker) {
    let body_limit = DefaultBodyLimit::max(limits.max_request_bytes);
    let transactions = Arc::new(Transactions::default());
    let revoker = Revoker(transactions.clone());
    let state = Arc::new(Executor {
        backend,
        transactions,
        generators: Generators::new(entropy),
        limits,
        running: KeySlots::default(),
    });
    let router = Router::new()
        .route(
            "/health",
            get(|| async { json_response(StatusCode::OK, r#"{"status":"ok"}"#.into(), None) }),
        )
        .route("/connection-info", get(connection_info::<B>))
        .route("/query", post(query::<B>))
        .route("/transaction/start", post(start::<B>))
        .route("/transaction/{id}/query", post(tx_query::<B>))
        .route("/transaction/{id}/commit", post(commit::<B>))
        .route("/transaction/{id}/rollback", post(rollback::<B>))
        .fallback(|| async { (StatusCode::NOT_FOUND, "404 Not Found") })
        .layer(body_limit)
        .with_state(state);
    (router, revoker)
}

fn json_response(status: StatusCode, body: String, tx_id: Option<&str>) -> Response {
    let mut res = (status, body).into_response();
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if let Some(id) = tx_id.and_then(|id| HeaderValue::from_str(id).ok()) {
        res.headers_mut().insert("prisma-transaction-id", id);
    }
    res
}

fn error_response(err: ExecError) -> Response {
    if let ExecError::Internal(msg) = &err {
        tracing::warn!(error = %msg, "query plan failed");
    }
    match err.response() {
        (status, Ok(body)) => json_response(status, body.to_string(), None),
        (status, Err(text)) => (status, text).into_response(),
    }
}

fn data_response(data: Value) -> Response {
    let body = Value::Record(Record(vec![("data".into(), data)]));
    json_response(StatusCode::OK, body.to_json_string(), None)
}

fn api_key(headers: &HeaderMap) -> Result<String, ExecError> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(|k| k.trim().to_owned())
        .filter(|k| !k.is_empty())
        .ok_or(ExecError::Unauthorized)
}

async fn authenticate<B: Backend>(
    ex: &Executor<B>,
    headers: &HeaderMap,
) -> Result<(String, B::Target), ExecError> {
    let key = api_key(headers)?;
    match ex.backend.resolve(&key).await {
        Ok(target) => Ok((key, target)),
        Err(BackendError::UnknownKey) => Err(ExecError::Unauthorized),
        Err(BackendError::Unavailable(msg)) => Err(ExecError::Internal(msg)),
    }
}

async fn connect<B: Backend>(ex: &Executor<B>, target: &B::Target) -> Result<B::Conn, ExecError> {
    ex.backend.connect(target).await.map_err(|e| match e {
        BackendError::UnknownKey => ExecError::Unauthorized,
        BackendError::Unavailable(msg) => ExecError::user("P1001", msg, Default::default()),
    })
}

fn zod_error(message: String) -> ExecError {
    ExecError::BadRequest(
        serde_json::json!({"success": false, "error": {"name": "ZodError", "message": message}})
            .to_string(),
    )
}

/// The body, or the Prisma-style error for one over the size limit.
fn body_bytes(body: Result<Bytes, BytesRejection>, limit: usize) -> Result<Bytes, ExecError> {
    body.map_err(|rejection| match rejection.status() {
        StatusCode::PAYLOAD_TOO_LARGE => ExecError::TooLarge(limit),
        _ => ExecError::BadRequest(rejection.body_text()),
    })
}

/// Reads a body straight from its text (so plans keep their field order); malformed JSON
/// and a wrong shape are answered like the reference.
fn parse_body_with<T: serde::de::DeserializeOwned>(
    body: &Bytes,
    shape_error: impl FnOnce(&serde_json::Error) -> ExecError,
) -> Result<T, ExecError> {
    serde_json::from_slice(if body.is_empty() { b"{}" } else { body }).map_err(|e| {
        if e.is_syntax() || e.is_eof() {
            ExecError::BadRequest("Malformed JSON in request body".into())
        } else {
            shape_error(&e)
        }
    })
}

fn parse_body<T: serde::de::DeserializeOwned>(body: &Bytes) -> Result<T, ExecError> {
    parse_body_with(body, |e| zod_error(e.to_string()))
}

#[derive(Deserialize)]
struct QueryBody {
    operation: String,
    plan: crate::plan::Node,
    #[serde(default)]
    params: HashMap<String, Value>,
}

struct PreparedQuery {
    plan: crate::plan::Node,
    params: HashMap<String, Value>,
}

fn prepare(body: &Bytes) -> Result<PreparedQuery, ExecError> {
    let q: QueryBody = parse_body_with(body, |e| {
        if e.to_string().contains("unknown variant") {
            plan_error(e)
        } else {
            zod_error(e.to_string())
        }
    })?;
    if q.operation.is_empty() {
        return Err(zod_error("operation must not be empty".into()));
    }
    Ok(PreparedQuery {
        plan: q.plan,
        params: q.params,
    })
}

async fn joined<T>(task: tokio::task::JoinHandle<Result<T, ExecError>>) -> Result<T, ExecError> {
    task.await
        .map_err(|e| ExecError::Internal(format!("query task failed: {e}")))?
}

async fn with_timeout<T>(
    limit: Duration,
    fut: impl Future<Output = Result<T, ExecError>>,
) -> Result<T, ExecError> {
    tokio::time::timeout(limit, fut)
        .await
        .map_err(|_| ExecError::QueryTimeout)?
}

async fn connection_info<B: Backend>(
    State(ex): State<Arc<Executor<B>>>,
    headers: HeaderMap,
) -> Response {
    match authenticate(&ex, &headers).await {
        Ok(_) => json_response(
            StatusCode::OK,
            r#"{"provider":"postgres","connectionInfo":{"supportsRelationJoins":true}}"#.into(),
            None,
        ),
        Err(e) => error_response(e),
    }
}

async fn query<B: Backend>(
    State(ex): State<Arc<Executor<B>>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let result = async {
        let (key, target) = authenticate(&ex, &headers).await?;
        let q = prepare(&body_bytes(body, ex.limits.max_request_bytes)?)?;
        let permit = ex.admit(&key)?;
        ex.backend.count_query(&target, false);
        let target = Arc::new(target);
        // The plan runs on its own task so that a client going away mid-plan cannot leave
        // the pooled connection inside an internal transaction.
        let ex2 = ex.clone();
        let (token_tx, mut token_rx) = tokio::sync::oneshot::channel();
        let target2 = target.clone();
        let run = tokio::spawn(async move {
            let target = target2;
            // The slot is held for as long as the plan really runs, timeout or not.
            let _permit = permit;
            let conn = connect(&ex2, &target).await?;
            let _ = token_tx.send(conn.cancel_token());
            run_plan(&conn, &ex2.generators, &q.plan, q.params, false).await
        });
        let result = with_timeout(ex.limits.query_timeout, joined(run)).await;
        if let (Err(ExecError::QueryTimeout), Ok(token)) = (&result, token_rx.try_recv()) {
            let ex3 = ex.clone();
            tokio::spawn(async move { ex3.backend.cancel(&target, token).await });
        }
        result
    }
    .await;
    result.map(data_response).unwrap_or_else(error_response)
}

async fn start<B: Backend>(
    State(ex): State<Arc<Executor<B>>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let result = async {
        let (key, target) = authenticate(&ex, &headers).await?;
        let opts: StartOptions = parse_body(&body_bytes(body, ex.limits.max_request_bytes)?)?;
        let ex2 = ex.clone();
        let target = Arc::new(target);
        ex.transactions
            .start(
                &key,
                opts,
                ex.limits.max_transaction_timeout,
                move || async move { connect(&ex2, &target).await },
            )
            .await
    }
    .await;
    match result {
        Ok(id) => json_response(
            StatusCode::OK,
            serde_json::json!({ "id": id }).to_string(),
            Some(&id),
        ),
        Err(e) => error_response(e),
    }
}

async fn tx_query<B: Backend>(
    State(ex): State<Arc<Executor<B>>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let result = async {
        let (key, target) = authenticate(&ex, &headers).await?;
        let q = prepare(&body_bytes(body, ex.limits.max_request_bytes)?)?;
        let permit = ex.admit(&key)?;
        ex.backend.count_query(&target, true);
        let conn = ex.transactions.acquire(&id, &key).await?;
        // Own task, as for /query: the transaction's connection stays consistent. The
        // timeout is kept inside it so that the statement is cancelled while the task still
        // holds the connection: a late cancel cannot reach the transaction's next statement.
        let ex2 = ex.clone();
        let limit = ex.limits.query_timeout;
        let run = tokio::spawn(async move {
            let _permit = permit;
            let client = conn
                .client()
                .ok_or_else(|| ExecError::Internal("transaction has no connection".into()))?;
            let plan = run_plan(client, &ex2.generators, &q.plan, q.params, true);
            tokio::pin!(plan);
            match tokio::time::timeout(limit, &mut plan).await {
                Ok(result) => result,
                Err(_) => {
                    // Like any failed statement, the cancelled one leaves the transaction
                    // aborted: later statements fail and its commit rolls back; its own
                    // timeout still ends it.
                    ex2.backend.cancel(&target, client.cancel_token()).await;
                    let _ = tokio::time::timeout(CANCEL_GRACE, plan).await;
                    Err(ExecError::QueryTimeout)
                }
            }
        });
        joined(run).await
    }
    .await;
    result.map(data_response).unwrap_or_else(error_response)
}

async fn close<B: Backend>(
    ex: Arc<Executor<B>>,
    id: String,
    headers: HeaderMap,
    op: Operation,
) -> Response {
    let result = async {
        let (key, target) = authenticate(&ex, &headers).await?;
        ex.transactions.close(&id, &key, op).await?;
        ex.backend.count_transaction(&target);
        Ok(())
    }
    .await;
    match result {
        Ok(()) => json_response(StatusCode::OK, "{}".into(), None),
        Err(e) => error_response(e),
    }
}

async fn commit<B: Backend>(
    State(ex): State<Arc<Executor<B>>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    close(ex, id, headers, Operation::Commit).await
}

async fn rollback<B: Backend>(
    State(ex): State<Arc<Executor<B>>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    close(ex, id, headers, Operation::Rollback).await
}
