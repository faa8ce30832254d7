//! `GET /v1/databases/{databaseId}/usage`: operations and storage of a database over a
//! period. Not wrapped in `data`, as the contract says.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Usage metrics of one database.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DatabaseUsage {
    pub period: UsagePeriod,
    pub metrics: UsageMetrics,
    /// When this answer was computed (date-time).
    pub generated_at: String,
}

/// The window the metrics cover (date-times, both ends included).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct UsagePeriod {
    pub start: String,
    pub end: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct UsageMetrics {
    pub operations: OperationsUsed,
    pub storage: StorageUsed,
}

/// Operations run in the period.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct OperationsUsed {
    pub used: i64,
    pub unit: OpsUnit,
}

/// Size of the database at the end of the period.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StorageUsed {
    pub used: f64,
    pub unit: GibUnit,
    /// pgfleet extension: the database's storage quota, in the same unit (absent when there
    /// is none). Past it the database is read-only until it is under again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub quota: Option<f64>,
    /// pgfleet extension: true while the database is over its quota and refuses writes
    /// (now, whatever the period).
    #[serde(default)]
    pub read_only: bool,
}

/// Always `ops`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub enum OpsUnit {
    #[default]
    #[serde(rename = "ops")]
    Ops,
}

/// Always `GiB`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub enum GibUnit {
    #[default]
    #[serde(rename = "GiB")]
    GiB,
}
