//! OpenAPI schemas of fields that the derive cannot express on its own: the constant `type`
//! of each resource and the closed string sets of the contract. Used with
//! `#[schema(schema_with = …)]`; the Rust field stays a `String`.

use utoipa::openapi::schema::{Object, ObjectBuilder, Type};

/// A string with a closed set of values.
fn one_of(values: &[&str], description: &str) -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(values.iter().copied()))
        .description(Some(description))
        .build()
}

/// `type` of a workspace: always `workspace`.
pub fn type_workspace() -> Object {
    one_of(&["workspace"], "Always `workspace`.")
}

/// `type` of a project: always `project`.
pub fn type_project() -> Object {
    one_of(&["project"], "Always `project`.")
}

/// `type` of a database: always `database`.
pub fn type_database() -> Object {
    one_of(&["database"], "Always `database`.")
}

/// `type` of a connection: always `connection`.
pub fn type_connection() -> Object {
    one_of(&["connection"], "Always `connection`.")
}

/// `type` of a service token: always `serviceToken`.
pub fn type_service_token() -> Object {
    one_of(&["serviceToken"], "Always `serviceToken`.")
}

/// `type` of a region: always `region`.
pub fn type_region() -> Object {
    one_of(&["region"], "Always `region`.")
}

/// `kind` of a connection.
pub fn connection_kind() -> Object {
    one_of(
        &["postgres", "accelerate"],
        "`postgres`: direct Postgres credentials.",
    )
}

/// `product` of a region.
pub fn region_product() -> Object {
    one_of(&["postgres", "accelerate"], "What the region offers.")
}
