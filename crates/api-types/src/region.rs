//! Regions.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum RegionStatus {
    Available,
    Unavailable,
}

/// An entry of `GET /v1/regions/postgres`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PostgresRegion {
    pub id: String,
    /// Always `region`.
    #[serde(rename = "type")]
    #[schema(schema_with = crate::schema::type_region)]
    pub kind: String,
    pub name: String,
    pub status: RegionStatus,
}

/// An entry of `GET /v1/regions`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Region {
    pub id: String,
    #[serde(rename = "type")]
    #[schema(schema_with = crate::schema::type_region)]
    pub kind: String,
    pub name: String,
    /// `postgres` or `accelerate`.
    #[schema(schema_with = crate::schema::region_product)]
    pub product: String,
    pub status: RegionStatus,
}

/// `{"data": [...]}` without pagination (the regions lists).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Items<T> {
    pub data: Vec<T>,
}

/// `{id, name}` of a region inside other resources.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RegionRef {
    pub id: String,
    pub name: String,
}
