//! The capability catalog.

use axum::{
    Json,
    extract::{Path, State},
};

use crate::{
    domain::{
        model::{Capability, Page},
        views::CapabilityDetail,
    },
    ssr::{
        http::{
            error::{ApiResult, ErrorBody},
            extract::{Authed, Params},
        },
        state::AppState,
    },
};

#[utoipa::path(get, path = "/api/v1/capabilities", tag = "catalog",
    responses((status = 200, body = Page<Capability>), (status = 401, body = ErrorBody)),
    security(("session" = [])))]
pub async fn list(
    State(state): State<AppState>,
    Authed(actor): Authed,
    params: Params,
) -> ApiResult<Json<Page<Capability>>> {
    params.allow(&[])?;
    Ok(Json(Page { items: state.capabilities.list(&actor)?, next_cursor: None }))
}

/// A capability with every version's parameter schema and changelog.
#[utoipa::path(get, path = "/api/v1/capabilities/{slug}", tag = "catalog",
    params(("slug" = String, Path, description = "e.g. `lead-scoring`")),
    responses((status = 200, body = CapabilityDetail), (status = 404, body = ErrorBody)),
    security(("session" = [])))]
pub async fn get(
    State(state): State<AppState>,
    Authed(actor): Authed,
    Path(slug): Path<String>,
) -> ApiResult<Json<CapabilityDetail>> {
    Ok(Json(state.capabilities.get(&actor, &slug)?))
}
