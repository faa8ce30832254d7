//! The MCP server (Model Context Protocol, official Rust SDK `rmcp`): one tool set
//! ([`tools`], their arguments in [`args`]) over the same domain services as `/v1`, served two ways:
//!
//! - Streamable HTTP at `/mcp` ([`router`]), stateless (no session is kept between
//!   requests, so any replica answers any request and nothing is process-local), JSON
//!   answers, the request body bounded like the API's. Every request needs
//!   `Authorization: Bearer` with a service token or an OAuth access token; without one it is
//!   answered 401 with `WWW-Authenticate: Bearer resource_metadata="…"` pointing at the RFC 9728
//!   protected-resource metadata this module also serves, per the MCP authorization spec.
//!   The OAuth server's RFC 7591 registration endpoint (`POST /register`) is routed here too:
//!   MCP clients are what registers dynamically.
//! - stdio, for `pgfleet mcp` ([`serve_stdio`]), as the principal of a token the binary
//!   authenticated through the same service.
//!
//! The `Host` check of rmcp (against DNS rebinding of unauthenticated local servers) is off:
//! `/mcp` never acts without a bearer token, which a rebinding page does not have, and the
//! server's public name is the operator's.

mod args;
mod tools;

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use pgfleet_domain::{AuthFailure, DomainError, WorkspaceAccess};
use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::model::{Extensions, Implementation, ServerCapabilities, ServerConfig};
use rmcp::transport::streamable_http_server::session::never::NeverSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use rmcp::{tool_handler, ServerHandler, ServiceExt};

use crate::error::ApiError;
use crate::AppState;

/// Path of the MCP endpoint.
pub const PATH: &str = "/mcp";
/// Path of its protected-resource metadata (RFC 9728, path-suffixed form).
pub const RESOURCE_METADATA_PATH: &str = "/.well-known/oauth-protected-resource/mcp";

/// Largest registration request body (a handful of short URIs and names).
const REGISTRATION_BODY_LIMIT: usize = 16 * 1024;

/// The MCP server: the tools, and whose credential they act with.
#[derive(Clone)]
pub struct McpServer {
    state: AppState,
    /// stdio: the one principal of the process; HTTP: `None`, each request carries its own.
    fixed: Option<WorkspaceAccess>,
    tool_router: ToolRouter<McpServer>,
}

impl std::fmt::Debug for McpServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("McpServer").finish_non_exhaustive()
    }
}

impl McpServer {
    fn new(state: AppState, fixed: Option<WorkspaceAccess>) -> Self {
        Self {
            state,
            fixed,
            tool_router: tools::router(),
        }
    }

    /// The caller: the fixed principal, or the one [`require_bearer`] put on the HTTP request.
    fn access_of(&self, ext: &Extensions) -> Option<WorkspaceAccess> {
        if let Some(a) = &self.fixed {
            return Some(a.clone());
        }
        ext.get::<axum::http::request::Parts>()
            .and_then(|p| p.extensions.get::<WorkspaceAccess>().cloned())
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for McpServer {
    fn get_info(&self) -> ServerConfig {
        let mut info = ServerConfig::new(ServerCapabilities::builder().enable_tools().build());
        info.server_info = Implementation::new("pgfleet", env!("CARGO_PKG_VERSION"));
        info.instructions = Some(
            "pgfleet: Postgres databases. Create a project (it comes with a default \
             database), wait for the database to be ready (list_databases), then use \
             execute_sql and introspect_schema. SQL is read-only unless allowWrites is true."
                .to_string(),
        );
        info
    }
}

mod metrics {
    pub(super) fn record(tool: &'static str, outcome: &'static str) {
        pgfleet_domain::metrics::record_mcp_tool(tool, outcome);
    }
}

/// `/mcp` and its protected-resource metadata, for [`crate::router`]. `body_limit` bounds
/// each request's body.
pub fn router(state: AppState, body_limit: usize) -> Router<AppState> {
    let server = McpServer::new(state.clone(), None);
    let config = StreamableHttpServerConfig::default()
        .with_legacy_session_mode(false)
        .with_json_response(true)
        .with_sse_keep_alive(None)
        .with_max_request_body_bytes(body_limit)
        .disable_allowed_hosts();
    let service = StreamableHttpService::new(
        move || Ok(server.clone()),
        Arc::new(NeverSessionManager::default()),
        config,
    );
    let mcp = Router::new()
        .route_service(PATH, service)
        .layer(axum::middleware::from_fn_with_state(state, require_bearer));
    Router::new()
        .route(RESOURCE_METADATA_PATH, get(resource_metadata))
        .route(
            "/.well-known/oauth-protected-resource",
            get(resource_metadata),
        )
        // Dynamic client registration, which MCP clients use to become an OAuth client.
        .route(
            "/register",
            axum::routing::post(crate::handlers::oauth::oauth_register).layer(
                axum::extract::DefaultBodyLimit::max(REGISTRATION_BODY_LIMIT),
            ),
        )
        .merge(mcp)
}

/// Authenticates the bearer token of an `/mcp` request and puts the caller's
/// [`WorkspaceAccess`] on it; 401 with the resource-metadata challenge otherwise.
async fn require_bearer(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let token = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, t)| scheme.eq_ignore_ascii_case("bearer") && !t.trim().is_empty())
        .map(|(_, t)| t.trim().to_string());
    let Some(token) = token else {
        return challenge(
            &state,
            DomainError::Unauthenticated(AuthFailure::Missing),
            false,
        );
    };
    match state.services.tokens().authenticate_bearer(&token).await {
        Ok(principal) => {
            req.extensions_mut()
                .insert(state.services.access().api(principal));
            next.run(req).await
        }
        Err(e @ DomainError::Unauthenticated(_)) => challenge(&state, e, true),
        Err(e) => ApiError::from(e).into_response(),
    }
}

/// A 401 in the API's error shape, whose `WWW-Authenticate` names the resource metadata
/// (MCP authorization, RFC 9728 §5.1).
fn challenge(state: &AppState, e: DomainError, invalid: bool) -> Response {
    let mut res = ApiError::from(e).into_response();
    *res.status_mut() = StatusCode::UNAUTHORIZED;
    let mut value = format!(
        "Bearer resource_metadata=\"{}{RESOURCE_METADATA_PATH}\"",
        state.base.as_str()
    );
    if invalid {
        value.push_str(", error=\"invalid_token\"");
    }
    if let Ok(v) = HeaderValue::from_str(&value) {
        res.headers_mut().insert(header::WWW_AUTHENTICATE, v);
    }
    res
}

/// RFC 9728 protected-resource metadata of `/mcp`: the resource's identifier and the
/// authorization server that issues tokens for it.
async fn resource_metadata(State(state): State<AppState>) -> Json<serde_json::Value> {
    Json(serde_json::json!({
        "resource": format!("{}{PATH}", state.base.as_str()),
        "authorization_servers": [state.services.config().oauth.issuer],
        "bearer_methods_supported": ["header"],
        "scopes_supported": ["workspace:admin"],
        "resource_name": "pgfleet MCP server",
    }))
}

/// Serves the tools over stdin/stdout as `access` until the client closes stdin.
pub async fn serve_stdio(state: AppState, access: WorkspaceAccess) -> Result<(), std::io::Error> {
    let server = McpServer::new(state, Some(access));
    let running = server
        .serve(rmcp::transport::stdio())
        .await
        .map_err(std::io::Error::other)?;
    running.waiting().await.map_err(std::io::Error::other)?;
    Ok(())
}
