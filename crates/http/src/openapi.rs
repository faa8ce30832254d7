//! The OpenAPI 3.1 document, generated from the handlers' annotations and served at
//! `/v1/doc`.

use axum::Json;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::handlers::{me, service_tokens, workspaces};

#[derive(OpenApi)]
#[openapi(
    info(title = "pgfleet Management API", description = "Self-hosted Postgres platform, wire-compatible with the Prisma Postgres Management API v1."),
    paths(
        me::me_get,
        workspaces::workspaces_list, workspaces::workspaces_get, workspaces::workspaces_create,
        service_tokens::service_tokens_list, service_tokens::service_tokens_create, service_tokens::service_tokens_delete,
    ),
    modifiers(&Security)
)]
pub struct ApiDoc;

struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("A service token or an OAuth 2.0 access token"))
                    .build(),
            ),
        );
    }
}

/// `GET /v1/doc`.
pub async fn openapi_get() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}
