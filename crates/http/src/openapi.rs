//! The OpenAPI 3.1 document of the `/v1` API, served at `GET /v1/doc`.
//!
//! The paths and schemas come from the handlers' `#[utoipa::path]` annotations and the
//! api-types' `ToSchema` derives ([`ApiDoc`]); [`document`] then completes it for the server
//! that serves it:
//! * `servers`: the configured public URL (`public_url`, the state's [`BaseUrl`]);
//! * security schemes `bearer` (a service token or an OAuth access token) and `oauth2` (the
//!   authorization code flow with PKCE of this server's own authorization server, at the
//!   configured issuer), offered as alternatives on every operation;
//! * the error responses every `/v1` operation can give, each with the [`ErrorBody`] schema,
//!   whose `code` is the closed list of [`crate::error::CODES`], and the bodies the server
//!   really answers as named examples ([`crate::error_examples`]); a status the operation's
//!   contract entry does not list and that [`crate::statuses::fit`] answers as another one is
//!   left out (e.g. no 400 where the contract lists 422 only);
//! * the optional `Idempotency-Key` header on every `POST`;
//! * region enums: the contract's region ids and those configured here;
//! * the server's rules for names and `logicalId`s as `minLength`/`maxLength`/`pattern`;
//! * links from the responses that create a resource to the operations on it.

use std::collections::BTreeSet;

use axum::extract::State;
use axum::http::Method;
use axum::Json;
use pgfleet_api_types::{ErrorBody, ErrorDetail};
use pgfleet_domain::services::oauth::{ADMIN_SCOPE, SCOPES};
use pgfleet_domain::ServicesConfig;
use utoipa::openapi::extensions::Extensions;
use utoipa::openapi::link::LinkBuilder;
use utoipa::openapi::path::{Operation, Parameter, ParameterBuilder, ParameterIn};
use utoipa::openapi::request_body::RequestBody;
use utoipa::openapi::schema::{Object, ObjectBuilder, Schema, Type};
use utoipa::openapi::security::{
    AuthorizationCode, Flow, HttpAuthScheme, HttpBuilder, OAuth2, Scopes, SecurityRequirement,
    SecurityScheme,
};
use utoipa::openapi::server::ServerBuilder;
use utoipa::openapi::{OpenApi as Document, RefOr, Required};
use utoipa::OpenApi;

use crate::error_examples;
use crate::handlers::usage;
use crate::handlers::{
    backups, connections, databases, integrations, me, projects, regions, service_tokens, webhooks,
    workspaces,
};
use crate::located::BaseUrl;
use crate::AppState;

/// The generated part of the document: every `/v1` operation and the schemas they use.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "pgfleet Management API",
        description = "Self-hosted Postgres platform, wire-compatible with the Prisma Postgres Management API v1.\n\n\
            Authenticate with `Authorization: Bearer <token>`: a service token (created in a workspace, \
            see the `bearer` scheme) or an OAuth 2.0 access token with scope `workspace:admin` (the `oauth2` \
            scheme). Every error answers `{\"error\":{\"code\",\"message\",\"hint?\"}}`; `code` is stable. \
            Lists are cursor-paginated (`limit` 1..=100, `cursor` from `pagination.nextCursor`). Every `POST` \
            accepts an `Idempotency-Key` header.",
        license(name = "Apache-2.0", identifier = "Apache-2.0"),
    ),
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
        regions::regions_list, regions::regions_postgres_list, regions::regions_accelerate_list,
        usage::database_usage_get,
        backups::backups_list, backups::backups_create, backups::databases_restore,
        integrations::workspace_integrations_list, integrations::workspace_integrations_delete,
        integrations::integrations_list, integrations::integrations_get, integrations::integrations_delete,
        webhooks::webhooks_list, webhooks::webhooks_create, webhooks::webhooks_delete,
        webhooks::webhook_deliveries_list,
    ),
    components(schemas(ErrorBody, ErrorDetail)),
    tags(
        (name = "Me", description = "The authenticated principal."),
        (name = "Workspaces", description = "Workspaces the credential can access."),
        (name = "Service tokens", description = "Long-lived API tokens of a workspace."),
        (name = "Projects", description = "Projects and their default database."),
        (name = "Databases", description = "PostgreSQL databases."),
        (name = "Connections", description = "Credentials (login roles) of a database."),
        (name = "Backups", description = "Backups of a database, and restoring one."),
        (name = "Regions", description = "Where databases can be created."),
        (name = "Integrations", description = "OAuth apps a workspace has authorized."),
        (name = "Webhooks", description = "pgfleet extension: signed webhooks (Standard Webhooks) of a workspace's events."),
    )
)]
pub struct ApiDoc;

/// Operations whose JSON body may be left out entirely (their handlers read an empty body as
/// `{}`).
const OPTIONAL_BODIES: &[&str] = &[
    "postV1Workspaces",
    "postV1Projects",
    "postV1ProjectsByProjectIdDatabases",
];

/// Request schemas with a `region` property, and whether `inherit` is accepted there.
const REGION_BODIES: &[(&str, bool)] = &[
    ("CreateProject", false),
    ("CreateDatabaseBody", true),
    ("CreateProjectDatabaseBody", true),
];

/// What the server accepts in a name (`pgfleet_domain::names::validate_name`): 1 to 255
/// characters, not only spaces, no control, bidirectional or invisible character (the class is
/// `HIDDEN_OR_CONTROL_CLASS` of the domain; a unit test keeps the two equal).
const NAME_PATTERN: &str = r"^[^\u0000-\u001f\u007f-\u009f\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180b-\u180f\u200b-\u200f\u2028-\u202e\u2060-\u206f\u3164\ufeff\uffa0\ufff9-\ufffb]*[^\s\u0000-\u001f\u007f-\u009f\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180b-\u180f\u200b-\u200f\u2028-\u202e\u2060-\u206f\u3164\ufeff\uffa0\ufff9-\ufffb][^\u0000-\u001f\u007f-\u009f\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180b-\u180f\u200b-\u200f\u2028-\u202e\u2060-\u206f\u3164\ufeff\uffa0\ufff9-\ufffb]*$";
/// What the server accepts in a `logicalId`: 1 to 255 characters, no spaces and nothing a name
/// refuses.
const LOGICAL_ID_PATTERN: &str = r"^[^\s\u0000-\u001f\u007f-\u009f\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180b-\u180f\u200b-\u200f\u2028-\u202e\u2060-\u206f\u3164\ufeff\uffa0\ufff9-\ufffb]+$";

/// Request properties with the server's text constraints: `(schema, property, pattern)`.
const TEXT_PROPERTIES: &[(&str, &str, &str)] = &[
    ("CreateWorkspace", "displayName", NAME_PATTERN),
    ("CreateServiceToken", "name", NAME_PATTERN),
    ("CreateProject", "name", NAME_PATTERN),
    ("CreateProject", "logicalId", LOGICAL_ID_PATTERN),
    ("UpdateProject", "name", NAME_PATTERN),
    ("CreateDatabaseBody", "name", NAME_PATTERN),
    ("CreateDatabaseBody", "logicalId", LOGICAL_ID_PATTERN),
    ("CreateProjectDatabaseBody", "name", NAME_PATTERN),
    ("UpdateDatabase", "name", NAME_PATTERN),
    ("UpdateDatabase", "logicalId", LOGICAL_ID_PATTERN),
    ("CreateConnectionBody", "name", NAME_PATTERN),
    ("CreateDatabaseConnectionBody", "name", NAME_PATTERN),
];

/// `$response.body#/data/id`: the id of the resource a response carries.
const DATA_ID: &str = "$response.body#/data/id";

/// A link's target: `(operationId, [(parameter, runtime expression)])`.
type LinkTarget = (&'static str, &'static [(&'static str, &'static str)]);

/// What a database's id opens.
const DATABASE_OPS: &[LinkTarget] = &[
    ("getV1DatabasesByDatabaseId", &[("databaseId", DATA_ID)]),
    ("patchV1DatabasesByDatabaseId", &[("databaseId", DATA_ID)]),
    ("deleteV1DatabasesByDatabaseId", &[("databaseId", DATA_ID)]),
    (
        "getV1DatabasesByDatabaseIdConnections",
        &[("databaseId", DATA_ID)],
    ),
    (
        "postV1DatabasesByDatabaseIdConnections",
        &[("databaseId", DATA_ID)],
    ),
    (
        "getV1DatabasesByDatabaseIdBackups",
        &[("databaseId", DATA_ID)],
    ),
    (
        "postV1DatabasesByDatabaseIdBackups",
        &[("databaseId", DATA_ID)],
    ),
    (
        "getV1DatabasesByDatabaseIdUsage",
        &[("databaseId", DATA_ID)],
    ),
    (
        "postV1DatabasesByTargetDatabaseIdRestore",
        &[("targetDatabaseId", DATA_ID)],
    ),
];

/// What a connection's id opens.
const CONNECTION_OPS: &[LinkTarget] = &[
    ("getV1ConnectionsById", &[("id", DATA_ID)]),
    ("postV1ConnectionsByIdRotate", &[("id", DATA_ID)]),
    ("deleteV1ConnectionsById", &[("id", DATA_ID)]),
];

/// OpenAPI links from the responses that create (or name) a resource to the operations on it:
/// `(operationId, status, targets)`. They document how ids flow, and let tools (Swagger UI,
/// schemathesis' stateful phase) follow them.
const LINKS: &[(&str, &str, &[LinkTarget])] = &[
    (
        "getV1Me",
        "200",
        &[
            (
                "getV1WorkspacesById",
                &[("id", "$response.body#/data/workspace/id")],
            ),
            (
                "getV1WorkspacesByWorkspaceIdService-tokens",
                &[("workspaceId", "$response.body#/data/workspace/id")],
            ),
            (
                "postV1WorkspacesByWorkspaceIdService-tokens",
                &[("workspaceId", "$response.body#/data/workspace/id")],
            ),
            (
                "getV1WorkspacesByWorkspaceIdIntegrations",
                &[("workspaceId", "$response.body#/data/workspace/id")],
            ),
            (
                "getV1Integrations",
                &[("workspaceId", "$response.body#/data/workspace/id")],
            ),
        ],
    ),
    (
        "postV1WorkspacesByWorkspaceIdService-tokens",
        "201",
        &[(
            "deleteV1WorkspacesByWorkspaceIdService-tokensByServiceTokenId",
            &[
                ("workspaceId", "$request.path.workspaceId"),
                ("serviceTokenId", DATA_ID),
            ],
        )],
    ),
    (
        "postV1Projects",
        "201",
        &[
            ("getV1ProjectsById", &[("id", DATA_ID)]),
            ("patchV1ProjectsById", &[("id", DATA_ID)]),
            ("deleteV1ProjectsById", &[("id", DATA_ID)]),
            (
                "getV1ProjectsByProjectIdDatabases",
                &[("projectId", DATA_ID)],
            ),
            (
                "postV1ProjectsByProjectIdDatabases",
                &[("projectId", DATA_ID)],
            ),
            (
                "getV1DatabasesByDatabaseId",
                &[("databaseId", "$response.body#/data/database/id")],
            ),
        ],
    ),
    ("postV1ProjectsByProjectIdDatabases", "201", DATABASE_OPS),
    ("postV1Databases", "201", DATABASE_OPS),
    ("postV1Connections", "201", CONNECTION_OPS),
    (
        "postV1DatabasesByDatabaseIdConnections",
        "200",
        CONNECTION_OPS,
    ),
    ("postV1ConnectionsByIdRotate", "200", CONNECTION_OPS),
];

/// The document as this server serves it (see the module documentation).
pub fn document(base: &BaseUrl, config: &ServicesConfig) -> Document {
    let mut doc = ApiDoc::openapi();
    doc.servers = Some(vec![ServerBuilder::new()
        .url(base.as_str())
        .description(Some("This pgfleet server"))
        .build()]);

    let components = doc.components.get_or_insert_with(Default::default);
    components.add_security_scheme("bearer", bearer_scheme());
    components.add_security_scheme("oauth2", oauth2_scheme(&config.oauth.issuer));
    set_enum(
        components.schemas.get_mut("ErrorDetail"),
        "code",
        crate::error::CODES.iter().copied(),
    );
    let mut regions: BTreeSet<&str> = pgfleet_domain::regions::KNOWN_REGIONS
        .iter()
        .map(|(id, _)| *id)
        .collect();
    regions.extend(config.regions.iter().map(|r| r.id.as_str()));
    for (schema, inherit) in REGION_BODIES {
        let mut values: Vec<&str> = regions.iter().copied().collect();
        if *inherit {
            values.push("inherit");
        }
        set_enum(components.schemas.get_mut(*schema), "region", values);
    }

    for (schema, property, pattern) in TEXT_PROPERTIES {
        if let Some(p) = property_mut(components.schemas.get_mut(*schema), property) {
            p.min_length = Some(1);
            p.max_length = Some(255);
            p.pattern = Some((*pattern).to_string());
        }
    }

    add_links(&mut doc);
    for (path, item) in doc.paths.paths.iter_mut() {
        let has_path_params = path.contains('{');
        let ops = [
            (Method::GET, Verb::Read, item.get.as_mut()),
            (Method::POST, Verb::Post, item.post.as_mut()),
            (Method::PUT, Verb::OtherWrite, item.put.as_mut()),
            (Method::PATCH, Verb::OtherWrite, item.patch.as_mut()),
            (Method::DELETE, Verb::OtherWrite, item.delete.as_mut()),
        ];
        for (method, verb, op) in ops {
            if let Some(op) = op {
                complete_operation(op, verb, has_path_params);
                error_examples::complete(op, &method, path);
            }
        }
    }
    doc
}

/// Every operation of the document, mutable.
fn operations_mut(doc: &mut Document) -> impl Iterator<Item = &mut Operation> {
    doc.paths.paths.values_mut().flat_map(|item| {
        [
            item.get.as_mut(),
            item.post.as_mut(),
            item.put.as_mut(),
            item.patch.as_mut(),
            item.delete.as_mut(),
        ]
        .into_iter()
        .flatten()
    })
}

/// Adds [`LINKS`] whose source response and target operation are both documented.
fn add_links(doc: &mut Document) {
    let ids: BTreeSet<String> = operations_mut(doc)
        .filter_map(|op| op.operation_id.clone())
        .collect();
    for op in operations_mut(doc) {
        let Some(id) = op.operation_id.as_deref() else {
            continue;
        };
        for (_, status, targets) in LINKS.iter().filter(|(from, _, _)| *from == id) {
            let Some(RefOr::T(response)) = op.responses.responses.get_mut(*status) else {
                continue;
            };
            for (target, params) in targets.iter().filter(|(t, _)| ids.contains(*t)) {
                // utoipa 5.5 serializes `Link::operation_id` as `operation_id` (not
                // `operationId`), which no tool reads; the key is set through the flattened
                // extensions instead (checked by `request_rules_are_in_the_schemas`).
                let mut link = LinkBuilder::new()
                    .extensions(Some(Extensions::from_iter([("operationId", *target)])));
                for (name, value) in *params {
                    link = link.parameter(*name, *value);
                }
                response
                    .links
                    .insert((*target).to_string(), RefOr::T(link.build()));
            }
        }
    }
}

/// What an operation's method means for its documented answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verb {
    Read,
    /// Takes an `Idempotency-Key` and may conflict.
    Post,
    OtherWrite,
}

/// Security alternatives, idempotency header and shared error responses of one operation.
fn complete_operation(op: &mut Operation, verb: Verb, has_path_params: bool) {
    let is_post = verb == Verb::Post;
    op.security = Some(vec![
        SecurityRequirement::new("bearer", Vec::<String>::new()),
        SecurityRequirement::new("oauth2", [ADMIN_SCOPE]),
    ]);
    let optional_body = op
        .operation_id
        .as_deref()
        .is_some_and(|id| OPTIONAL_BODIES.contains(&id));
    if let Some(body) = op.request_body.as_mut() {
        set_body_required(body, !optional_body);
    }
    if is_post {
        op.parameters
            .get_or_insert_with(Vec::new)
            .push(idempotency_key());
    }
    let params = op.parameters.as_deref().unwrap_or_default();
    let has_input = op.request_body.is_some() || has_path_params || !params.is_empty();
    // An id in the path or a filter (`?databaseId=`, `?workspaceId=`) may name nothing.
    let names_a_resource = has_path_params
        || params
            .iter()
            .any(|p| p.parameter_in == ParameterIn::Query && p.name.ends_with("Id"));
    let mut wanted: Vec<(&str, &str)> = Vec::new();
    if has_input {
        wanted.push(("400", "BadRequest"));
    }
    wanted.push(("401", "Unauthorized"));
    wanted.push(("403", "Forbidden"));
    if names_a_resource {
        wanted.push(("404", "NotFound"));
    }
    if is_post {
        wanted.push(("409", "Conflict"));
    }
    if op.request_body.is_some() {
        wanted.push(("413", "PayloadTooLarge"));
        wanted.push(("415", "UnsupportedMediaType"));
        wanted.push(("422", "ValidationError"));
    } else if verb != Verb::Read {
        // A write without a body refuses one that is not JSON all the same.
        wanted.push(("415", "UnsupportedMediaType"));
    }
    wanted.push(("500", "InternalError"));
    wanted.push(("503", "Unavailable"));
    let responses = &mut op.responses.responses;
    for (status, name) in wanted {
        responses
            .entry(status.to_string())
            .or_insert_with(|| RefOr::T(error_examples::error_response(name)));
    }
}

fn bearer_scheme() -> SecurityScheme {
    SecurityScheme::Http(
        HttpBuilder::new()
            .scheme(HttpAuthScheme::Bearer)
            .description(Some(
                "A service token (`pgfst_…`, from `POST /v1/workspaces/{workspaceId}/service-tokens` \
                 or the first start's bootstrap) or an OAuth 2.0 access token.",
            ))
            .build(),
    )
}

fn oauth2_scheme(issuer: &str) -> SecurityScheme {
    let issuer = issuer.trim_end_matches('/');
    let token_url = format!("{issuer}/token");
    let scopes = Scopes::from_iter(SCOPES.iter().map(|(s, d)| (*s, *d)));
    SecurityScheme::OAuth2(OAuth2::with_description(
        [Flow::AuthorizationCode(
            AuthorizationCode::with_refresh_url(
                format!("{issuer}/authorize"),
                token_url.clone(),
                scopes,
                token_url,
            ),
        )],
        "This server's OAuth 2.0 authorization server: the authorization code flow with PKCE \
         (`code_challenge_method=S256`, required), public or confidential clients registered \
         at `/apps`. API calls need the `workspace:admin` scope; `offline_access` adds a \
         refresh token.",
    ))
}

fn idempotency_key() -> Parameter {
    ParameterBuilder::new()
        .name("Idempotency-Key")
        .parameter_in(ParameterIn::Header)
        .required(Required::False)
        .description(Some(
            "The same key and body within 24 h replays the stored response (header \
             `idempotent-replayed: true`); the same key with another body, or while the first \
             request still runs, answers 409.",
        ))
        .schema(Some(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .min_length(Some(1))
                .max_length(Some(255)),
        ))
        .build()
}

fn set_body_required(body: &mut RequestBody, required: bool) {
    body.required = Some(if required {
        Required::True
    } else {
        Required::False
    });
}

/// The inline schema of a property of an object schema.
fn property_mut<'a>(
    schema: Option<&'a mut RefOr<Schema>>,
    property: &str,
) -> Option<&'a mut Object> {
    let Some(RefOr::T(Schema::Object(obj))) = schema else {
        return None;
    };
    match obj.properties.get_mut(property) {
        Some(RefOr::T(Schema::Object(p))) => Some(p),
        _ => None,
    }
}

/// Sets the `enum` of a string property of an object schema.
fn set_enum<'a>(
    schema: Option<&mut RefOr<Schema>>,
    property: &str,
    values: impl IntoIterator<Item = &'a str>,
) {
    if let Some(p) = property_mut(schema, property) {
        p.enum_values = Some(values.into_iter().map(Into::into).collect());
    }
}

/// `GET /v1/doc`: the document, built for this server's configuration.
pub async fn openapi_get(State(state): State<AppState>) -> Json<Document> {
    Json(document(&state.base, state.services.config()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc() -> serde_json::Value {
        let base = BaseUrl::new("https://pg.example.com/");
        let mut config = ServicesConfig::new(base.as_str(), Vec::new());
        config.oauth.issuer = "https://auth.example.com".to_string();
        serde_json::to_value(document(&base, &config)).unwrap_or_default()
    }

    #[test]
    fn servers_and_security_schemes_come_from_the_configuration() {
        let d = doc();
        if let Ok(p) = std::env::var("PGFLEET_DUMP_DOC") {
            std::fs::write(p, serde_json::to_string_pretty(&d).unwrap_or_default()).ok();
        }
        assert_eq!(d["openapi"], "3.1.0");
        assert_eq!(d["servers"][0]["url"], "https://pg.example.com");
        let schemes = &d["components"]["securitySchemes"];
        assert_eq!(schemes["bearer"]["scheme"], "bearer");
        let flow = &schemes["oauth2"]["flows"]["authorizationCode"];
        assert_eq!(
            flow["authorizationUrl"],
            "https://auth.example.com/authorize"
        );
        assert_eq!(flow["tokenUrl"], "https://auth.example.com/token");
        assert!(flow["scopes"]["workspace:admin"].is_string());
        assert!(flow["scopes"]["offline_access"].is_string());
    }

    #[test]
    fn name_patterns_refuse_what_the_domain_refuses() {
        let class = pgfleet_domain::names::HIDDEN_OR_CONTROL_CLASS;
        assert_eq!(
            NAME_PATTERN,
            format!("^[^{class}]*[^\\s{class}][^{class}]*$")
        );
        assert_eq!(LOGICAL_ID_PATTERN, format!("^[^\\s{class}]+$"));
    }

    #[test]
    fn request_rules_are_in_the_schemas() {
        let d = doc();
        let schemas = &d["components"]["schemas"];
        for (schema, property, pattern) in TEXT_PROPERTIES {
            let p = &schemas[*schema]["properties"][*property];
            assert_eq!(p["pattern"], *pattern, "{schema}.{property}: {p}");
            assert_eq!(p["maxLength"], 255, "{schema}.{property}");
        }
        for (schema, _) in REGION_BODIES {
            let regions = &schemas[*schema]["properties"]["region"]["enum"];
            assert!(
                regions
                    .as_array()
                    .is_some_and(|r| r.contains(&"us-east-1".into())),
                "{schema}: {regions}"
            );
        }
        let links = &d["paths"]["/v1/projects"]["post"]["responses"]["201"]["links"];
        assert_eq!(
            links["getV1ProjectsById"],
            serde_json::json!({"operationId": "getV1ProjectsById", "parameters": {"id": "$response.body#/data/id"}})
        );
        assert!(schemas["ErrorDetail"]["properties"]["code"]["enum"]
            .as_array()
            .is_some_and(|c| c.len() == crate::error::CODES.len()));
    }

    #[test]
    fn every_operation_has_security_and_error_responses() {
        let d = doc();
        let paths = d["paths"].as_object().into_iter().flatten();
        let mut n = 0;
        for (path, item) in paths {
            for (method, op) in item.as_object().into_iter().flatten() {
                n += 1;
                let what = format!("{method} {path}");
                assert_eq!(op["security"][0]["bearer"], serde_json::json!([]), "{what}");
                assert_eq!(
                    op["security"][1]["oauth2"],
                    serde_json::json!(["workspace:admin"]),
                    "{what}"
                );
                for status in ["401", "500", "503"] {
                    assert!(op["responses"][status].is_object(), "{what} {status}");
                }
                // A refused scope: 403 where the operation lists it, else 401 with its code.
                let answers = &op["responses"]["401"]["content"]["application/json"]["examples"];
                assert!(
                    op["responses"]["403"].is_object() || answers["insufficient_scope"].is_object(),
                    "{what} 403"
                );
                assert!(op["operationId"].is_string(), "{what}");
            }
        }
        assert!(n >= 34, "{n} operations");
    }
}
