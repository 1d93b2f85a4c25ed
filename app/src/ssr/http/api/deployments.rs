//! Deployments, operations and the fleet summary.

use axum::{
    Json,
    extract::{OriginalUri, Path, State},
    response::Response,
};

use crate::{
    domain::{
        model::{Operation, Page},
        views::{DeploymentDetail, DeploymentView, FleetSummary},
    },
    ssr::{
        http::{
            error::{ApiResult, ErrorBody},
            extract::{Authed, Params, parse_id, path_and_query},
        },
        services::deployments::DeploymentFilter,
        state::AppState,
    },
};

#[utoipa::path(get, path = "/api/v1/deployments", tag = "deployments",
    params(("customer" = Option<String>, Query), ("environment" = Option<String>, Query, description = "dev, staging or prod"),
           ("capability" = Option<String>, Query), ("status" = Option<String>, Query),
           ("limit" = Option<usize>, Query, description = "1-200, default 50"), ("cursor" = Option<String>, Query)),
    responses((status = 200, body = Page<DeploymentView>), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("session" = [])))]
pub async fn list(
    State(state): State<AppState>,
    Authed(actor): Authed,
    OriginalUri(uri): OriginalUri,
    params: Params,
) -> ApiResult<Response> {
    params.allow(&["customer", "environment", "capability", "status", "limit", "cursor"])?;
    let filter = DeploymentFilter {
        customer: params.id("customer")?,
        environment: params.environment()?,
        capability: params.string("capability").map(str::to_string),
        status: params.status()?,
    };
    let limit = params.limit()?;
    state
        .read_cache
        .json(&actor, path_and_query(&uri), || async {
            Ok(state.deployments.list(&actor, &filter, limit, params.cursor()).await?)
        })
        .await
        .map(super::json_body)
}

/// A deployment with its most recent operations.
#[utoipa::path(get, path = "/api/v1/deployments/{id}", tag = "deployments", params(("id" = String, Path)),
    responses((status = 200, body = DeploymentDetail), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("session" = [])))]
pub async fn get(
    State(state): State<AppState>,
    Authed(actor): Authed,
    Path(id): Path<String>,
) -> ApiResult<Json<DeploymentDetail>> {
    Ok(Json(state.deployments.get(&actor, &parse_id("id", &id)?).await?))
}

/// A deployment's operations, newest first.
#[utoipa::path(get, path = "/api/v1/deployments/{id}/operations", tag = "deployments",
    params(("id" = String, Path), ("limit" = Option<usize>, Query), ("cursor" = Option<String>, Query)),
    responses((status = 200, body = Page<Operation>), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("session" = [])))]
pub async fn operations(
    State(state): State<AppState>,
    Authed(actor): Authed,
    Path(id): Path<String>,
    params: Params,
) -> ApiResult<Json<Page<Operation>>> {
    params.allow(&["limit", "cursor"])?;
    let id = parse_id("id", &id)?;
    Ok(Json(state.deployments.operations(&actor, &id, params.limit()?, params.cursor()).await?))
}

#[utoipa::path(get, path = "/api/v1/operations/{id}", tag = "deployments", params(("id" = String, Path)),
    responses((status = 200, body = Operation), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("session" = [])))]
pub async fn operation(
    State(state): State<AppState>,
    Authed(actor): Authed,
    Path(id): Path<String>,
) -> ApiResult<Json<Operation>> {
    Ok(Json(state.deployments.operation(&actor, &parse_id("id", &id)?).await?))
}

/// Counts by capability x environment x status, problems first.
#[utoipa::path(get, path = "/api/v1/fleet/summary", tag = "deployments",
    responses((status = 200, body = FleetSummary), (status = 401, body = ErrorBody)), security(("session" = [])))]
pub async fn fleet_summary(
    State(state): State<AppState>,
    Authed(actor): Authed,
    OriginalUri(uri): OriginalUri,
    params: Params,
) -> ApiResult<Response> {
    params.allow(&[])?;
    state
        .read_cache
        .json(&actor, path_and_query(&uri), || async { Ok(state.fleet.summary(&actor).await?) })
        .await
        .map(super::json_body)
}
