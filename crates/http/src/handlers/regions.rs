//! `/v1/regions`, `/v1/regions/postgres` and `/v1/regions/accelerate`.

use axum::extract::State;
use axum::Json;
use pgfleet_api_types::region::{Items, PostgresRegion, Region};
use pgfleet_api_types::ErrorBody;
use serde::Deserialize;

use crate::error::ApiResult;
use crate::extract::{Auth, Query};
use crate::AppState;

#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RegionsQuery {
    /// `postgres` or `accelerate`.
    #[param(schema_with = pgfleet_api_types::schema::region_product)]
    pub product: Option<String>,
}

/// Every region, with the product it offers and whether it is available.
#[utoipa::path(
    get, path = "/v1/regions", tag = "Regions", operation_id = "getV1Regions",
    params(RegionsQuery),
    responses(
        (status = 200, description = "Returns all available regions.", body = Items<Region>),
        (status = 401, description = "Missing or invalid authorization token.", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn regions_list(
    State(state): State<AppState>,
    Auth(_caller): Auth,
    Query(q): Query<RegionsQuery>,
) -> ApiResult<Json<Items<Region>>> {
    Ok(Json(Items {
        data: state.services.regions().all(q.product.as_deref())?,
    }))
}

/// Regions for Postgres databases.
#[utoipa::path(
    get, path = "/v1/regions/postgres", tag = "Regions", operation_id = "getV1RegionsPostgres",
    responses(
        (status = 200, description = "Returns all available regions for Prisma Postgres.", body = Items<PostgresRegion>),
        (status = 401, description = "Missing or invalid authorization token.", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn regions_postgres_list(
    State(state): State<AppState>,
    Auth(_caller): Auth,
) -> ApiResult<Json<Items<PostgresRegion>>> {
    Ok(Json(Items {
        data: state.services.regions().postgres(),
    }))
}

/// Regions whose databases the `prisma+postgres://` endpoint serves (empty when it is off).
#[utoipa::path(
    get, path = "/v1/regions/accelerate", tag = "Regions", operation_id = "getV1RegionsAccelerate",
    responses(
        (status = 200, description = "Returns the regions served by the prisma+postgres:// endpoint.", body = Items<PostgresRegion>),
        (status = 401, description = "Missing or invalid authorization token.", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn regions_accelerate_list(
    State(state): State<AppState>,
    Auth(_caller): Auth,
) -> ApiResult<Json<Items<PostgresRegion>>> {
    Ok(Json(Items {
        data: state.services.regions().accelerate(),
    }))
}
