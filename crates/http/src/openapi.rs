//! The OpenAPI 3.1 document, generated from the handlers' annotations and served at
//! `/v1/doc`.

use axum::Json;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::handlers::{
    connections, databases, integrations, me, projects, regions, service_tokens, workspaces,
};

#[derive(OpenApi)]
#[openapi(
    info(title = "pgfleet Management API", description = "Self-hosted Postgres platform, wire-compatible with the Prisma Postgres Management API v1."),
    paths(
        me::me_get,
        workspaces::workspaces_list, workspaces::workspaces_get, workspaces::workspaces_create,
        service_tokens::service_tokens_list, service_tokens::service_tokens_create, service_tokens::service_tokens_delete,
        projects::projects_list, projects::projects_create, projects::projects_get, projects::projects_update,
        projects::projects_delete, projects::projects_transfer,
        databases::databases_list, databases::databases_create, databases::project_databases_list,
        databases::project_databases_create, databases::databases_get, databases::databases_update,
        databases::databases_delete,
        connections::connections_list, connections::connections_create, connections::database_connections_list,
        connections::database_connections_create, connections::connections_get, connections::connections_delete,
        connections::connections_rotate,
        regions::regions_list, regions::regions_postgres_list,
        integrations::workspace_integrations_list, integrations::workspace_integrations_delete,
        integrations::integrations_list, integrations::integrations_get, integrations::integrations_delete,
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
