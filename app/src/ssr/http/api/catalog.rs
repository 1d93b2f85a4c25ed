//! The capability catalog.

use axum::{
    Json,
    extract::{Path, State},
    http::StatusCode,
};

use crate::{
    domain::{
        model::{Capability, CapabilityVersion, Page},
        views::{CapabilityDetail, CapabilityUsage},
    },
    ssr::{
        http::{
            error::{ApiResult, ErrorBody},
            extract::{ApiJson, Authed, Params},
        },
        services::capabilities::NewVersion,
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

/// Which customers run which version (within what the caller may see), newest version first.
#[utoipa::path(get, path = "/api/v1/capabilities/{slug}/usage", tag = "catalog",
    params(("slug" = String, Path)),
    responses((status = 200, body = CapabilityUsage), (status = 404, body = ErrorBody)),
    security(("session" = [])))]
pub async fn usage(
    State(state): State<AppState>,
    Authed(actor): Authed,
    Path(slug): Path<String>,
    params: Params,
) -> ApiResult<Json<CapabilityUsage>> {
    params.allow(&[])?;
    Ok(Json(state.deployments.usage(&actor, &slug).await?))
}

/// Publishes a new version: the template (YAML or JSON with `Metadata.Nexus`) is validated like
/// the shipped ones and stored in the artifacts bucket (or the data directory). Executives only.
#[utoipa::path(post, path = "/api/v1/capabilities/{slug}/versions", tag = "catalog",
    request_body = NewVersion, params(("slug" = String, Path)),
    responses((status = 201, body = CapabilityVersion), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody),
              (status = 409, body = ErrorBody), (status = 413, body = ErrorBody)),
    security(("session" = [])))]
pub async fn publish(
    State(state): State<AppState>,
    Authed(actor): Authed,
    Path(slug): Path<String>,
    ApiJson(body): ApiJson<NewVersion>,
) -> ApiResult<(StatusCode, Json<CapabilityVersion>)> {
    Ok((StatusCode::CREATED, Json(state.capabilities.publish(&actor, &slug, body).await?)))
}

/// Deprecates a version: no new deployments of it; existing ones are flagged.
#[utoipa::path(post, path = "/api/v1/capabilities/{slug}/versions/{version}/deprecate", tag = "catalog",
    params(("slug" = String, Path), ("version" = String, Path)),
    responses((status = 200, body = CapabilityVersion), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("session" = [])))]
pub async fn deprecate(
    State(state): State<AppState>,
    Authed(actor): Authed,
    Path((slug, version)): Path<(String, String)>,
) -> ApiResult<Json<CapabilityVersion>> {
    Ok(Json(state.capabilities.deprecate(&actor, &slug, &version).await?))
}
