//! `GET /v1/me`.

use axum::extract::State;
use axum::Json;
use pgfleet_api_types::{Data, ErrorBody, Me};

use crate::error::ApiResult;
use crate::extract::Auth;
use crate::AppState;

/// The authenticated principal: user, workspace and credential.
#[utoipa::path(
    get, path = "/v1/me", tag = "Me", operation_id = "getV1Me",
    responses(
        (status = 200, description = "Current authenticated principal retrieved.", body = Data<Me>),
        (status = 401, description = "Missing or invalid authorization token.", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn me_get(State(state): State<AppState>, Auth(p): Auth) -> ApiResult<Json<Data<Me>>> {
    Ok(Json(Data::new(state.services.workspaces().me(&p).await?)))
}
