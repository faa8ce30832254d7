//! The route table and the middleware every request goes through (request id, one log line
//! per request and the request's id for the domain ([`log_request`]), body cap, panic
//! catcher), and the metadata circuit breaker ([`crate::breaker`]) on every route
//! but `/healthz`, `/metrics` and the static docs.

use std::time::Instant;

use axum::extract::{DefaultBodyLimit, Request};
use axum::http::{HeaderName, Method, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::Router;
use pgfleet_domain::Services;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tracing::Instrument as _;

use crate::error::ApiError;
use crate::handlers::{
    backups, connections, databases, health, integrations, me, oauth, projects, regions,
    service_tokens, webhooks, workspaces,
};
use crate::located::{BaseUrl, Located};

/// What every handler can reach.
#[derive(Clone, Debug)]
pub struct AppState {
    pub services: Services,
    /// This process's metadata circuit breaker (guarding the metadata store).
    pub breaker: crate::breaker::MetadataBreaker,
    /// Base of the absolute URLs of resources (see [`crate::located`]).
    pub base: BaseUrl,
}

impl AppState {
    /// The state of a process serving `services` at `base` (its public address), its
    /// breaker closed.
    pub fn new(services: Services, base: BaseUrl) -> Self {
        let breaker = crate::breaker::MetadataBreaker::new(
            pgfleet_domain::metadata_probe::MetadataProbe::new(&services),
        );
        Self {
            services,
            breaker,
            base,
        }
    }

    /// `response` with its resource URLs filled in (see [`crate::located`]).
    pub fn located<T: Located>(&self, mut response: T) -> T {
        response.locate(&self.base);
        response
    }
}

/// Options of the HTTP layer.
#[derive(Debug, Clone)]
pub struct HttpOptions {
    /// Largest request body accepted, in bytes.
    pub body_limit: usize,
}

impl Default for HttpOptions {
    fn default() -> Self {
        Self {
            body_limit: 1 << 20,
        }
    }
}

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The whole application: `/healthz`, `/readyz` and the `/v1` API.
pub fn router(state: AppState, opts: &HttpOptions) -> Router {
    let v1 = Router::new()
        .route("/me", get(me::me_get))
        .route(
            "/workspaces",
            get(workspaces::workspaces_list).post(workspaces::workspaces_create),
        )
        .route("/workspaces/{id}", get(workspaces::workspaces_get))
        .route(
            "/workspaces/{workspace_id}/service-tokens",
            get(service_tokens::service_tokens_list).post(service_tokens::service_tokens_create),
        )
        .route(
            "/workspaces/{workspace_id}/service-tokens/{service_token_id}",
            delete(service_tokens::service_tokens_delete),
        )
        .route(
            "/workspaces/{workspace_id}/webhooks",
            get(webhooks::webhooks_list).post(webhooks::webhooks_create),
        )
        .route(
            "/workspaces/{workspace_id}/webhooks/{webhook_id}",
            delete(webhooks::webhooks_delete),
        )
        .route(
            "/workspaces/{workspace_id}/webhooks/{webhook_id}/deliveries",
            get(webhooks::webhook_deliveries_list),
        )
        .route(
            "/projects",
            get(projects::projects_list).post(projects::projects_create),
        )
        .route(
            "/projects/{id}",
            get(projects::projects_get)
                .patch(projects::projects_update)
                .delete(projects::projects_delete),
        )
        .route("/projects/{id}/transfer", post(projects::projects_transfer))
        .route(
            "/projects/{id}/databases",
            get(databases::project_databases_list).post(databases::project_databases_create),
        )
        .route(
            "/databases",
            get(databases::databases_list).post(databases::databases_create),
        )
        .route(
            "/databases/{id}",
            get(databases::databases_get)
                .patch(databases::databases_update)
                .delete(databases::databases_delete),
        )
        .route(
            "/databases/{id}/connections",
            get(connections::database_connections_list)
                .post(connections::database_connections_create),
        )
        .route(
            "/databases/{id}/backups",
            get(backups::backups_list).post(backups::backups_create),
        )
        .route("/databases/{id}/restore", post(backups::databases_restore))
        .route(
            "/connections",
            get(connections::connections_list).post(connections::connections_create),
        )
        .route(
            "/connections/{id}",
            get(connections::connections_get).delete(connections::connections_delete),
        )
        .route(
            "/connections/{id}/rotate",
            post(connections::connections_rotate),
        )
        .route(
            "/workspaces/{workspace_id}/integrations",
            get(integrations::workspace_integrations_list),
        )
        .route(
            "/workspaces/{workspace_id}/integrations/{client_id}",
            delete(integrations::workspace_integrations_delete),
        )
        .route("/integrations", get(integrations::integrations_list))
        .route(
            "/integrations/{id}",
            get(integrations::integrations_get).delete(integrations::integrations_delete),
        )
        .route(
            "/databases/{id}/usage",
            get(crate::handlers::usage::database_usage_get),
        )
        .route("/regions", get(regions::regions_list))
        .route("/regions/postgres", get(regions::regions_postgres_list))
        .route("/regions/accelerate", get(regions::regions_accelerate_list))
        .route("/doc", get(crate::openapi::openapi_get));

    let pages = crate::pages::router().layer(axum::middleware::from_fn_with_state(
        state.clone(),
        crate::breaker::guard_pages,
    ));
    Router::new()
        .route("/readyz", get(health::readyz))
        .route("/token", post(oauth::oauth_token))
        .route("/revoke", post(oauth::oauth_revoke))
        .route(
            "/.well-known/oauth-authorization-server",
            get(oauth::oauth_metadata),
        )
        .route("/.well-known/jwks.json", get(oauth::oauth_jwks))
        // The `create-db` CLI's create service (claimable temporary databases).
        .nest("/create-db", crate::handlers::create_db::router())
        .nest(
            "/v1",
            v1.layer(axum::middleware::from_fn_with_state(
                state.clone(),
                crate::idempotency::idempotency,
            ))
            .layer(axum::middleware::from_fn_with_state(
                state.clone(),
                note_writes,
            ))
            .layer(axum::middleware::from_fn(
                crate::extract::require_json_bodies,
            ))
            .layer(axum::middleware::from_fn(crate::statuses::fit_to_operation)),
        )
        // The MCP server (Streamable HTTP) and its protected-resource metadata.
        .merge(crate::mcp::router(state.clone(), opts.body_limit))
        // Routes added above answer 503 at once while the metadata store is known down.
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::breaker::guard_api,
        ))
        .merge(pages)
        .merge(crate::pages::assets::router())
        .route("/healthz", get(health::healthz))
        .route("/metrics", get(crate::metrics::metrics_get))
        .merge(crate::docs::router())
        .fallback(fallback)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::middleware::from_fn(crate::metrics::track))
        .layer(DefaultBodyLimit::max(opts.body_limit))
        .layer(CatchPanicLayer::custom(panic_response))
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(axum::middleware::from_fn(log_request))
        .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
        .with_state(state)
}

/// Runs the request in a `request` span (method, path, request id) and as the current request
/// of the domain ([`pgfleet_domain::request`], so the operations it plans record its id), then
/// logs exactly one line for it, at info: method, path, status, `duration_ms`, `request_id`.
/// The path is logged without its query string, and no header: either may hold a secret (an
/// OAuth `code`, a token).
async fn log_request(req: Request, next: axum::middleware::Next) -> Response {
    let started = Instant::now();
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let id = req
        .headers()
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-")
        .to_string();
    let span = tracing::info_span!("request", method = %method, path = %path, request_id = %id);
    let res = pgfleet_domain::request::scope(&id, next.run(req))
        .instrument(span)
        .await;
    tracing::info!(
        method = %method,
        path = %path,
        status = res.status().as_u16(),
        duration_ms = started.elapsed().as_secs_f64() * 1000.0,
        request_id = %id,
        "request"
    );
    res
}

/// After a request that may have written (anything but GET/HEAD/OPTIONS) has committed and
/// answered, cached reads are invalidated (see `pgfleet_domain::services::ViewCache`).
async fn note_writes(
    axum::extract::State(state): axum::extract::State<AppState>,
    req: Request,
    next: axum::middleware::Next,
) -> Response {
    let write = !matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    let res = next.run(req).await;
    if write {
        state.services.note_write();
    }
    res
}

async fn fallback(uri: Uri) -> ApiError {
    ApiError::route_not_found(uri.path())
}

async fn method_not_allowed(method: Method, uri: Uri) -> ApiError {
    ApiError::method_not_allowed(method.as_str(), uri.path())
}

fn panic_response(_: Box<dyn std::any::Any + Send + 'static>) -> Response {
    ApiError::from(pgfleet_domain::DomainError::internal("handler panicked")).into_response()
}
