//! Customers and their environments.

use axum::{
    Json,
    extract::{OriginalUri, Path, State},
    http::StatusCode,
    response::Response,
};

use crate::{
    domain::{
        model::{Customer, Environment, Page},
        permissions::Action,
        views::{CustomerChanges, CustomerDetail, EnvironmentChanges, NewCustomer, NewEnvironment},
    },
    ssr::{
        http::{
            error::{ApiResult, ErrorBody},
            extract::{ApiJson, Authed, JsonBody, Params, parse_id, path_and_query},
        },
        state::AppState,
    },
};

#[utoipa::path(get, path = "/api/v1/customers", tag = "customers",
    params(("limit" = Option<usize>, Query, description = "1-200, default 50"),
           ("cursor" = Option<String>, Query, description = "`next_cursor` of the previous page"),
           ("q" = Option<String>, Query, description = "only customers with every word in their name, slug or cost centre (any case)")),
    responses((status = 200, body = Page<Customer>), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)),
    security(("session" = [])))]
pub async fn list(
    State(state): State<AppState>,
    Authed(actor): Authed,
    OriginalUri(uri): OriginalUri,
    params: Params,
) -> ApiResult<Response> {
    params.allow(&["limit", "cursor", "q"])?;
    let limit = params.limit()?;
    let search = crate::domain::search::query(params.string("q"));
    state
        .read_cache
        .json(&actor, path_and_query(&uri), || async {
            Ok(state.customers.list(&actor, limit, params.cursor(), search).await?)
        })
        .await
        .map(super::json_body)
}

/// A customer with its environments and deployments.
#[utoipa::path(get, path = "/api/v1/customers/{id}", tag = "customers",
    params(("id" = String, Path)),
    responses((status = 200, body = CustomerDetail), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("session" = [])))]
pub async fn get(
    State(state): State<AppState>,
    Authed(actor): Authed,
    OriginalUri(uri): OriginalUri,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let id = parse_id("id", &id)?;
    state
        .read_cache
        .json(&actor, path_and_query(&uri), || async { Ok(state.customers.get(&actor, &id).await?) })
        .await
        .map(super::json_body)
}

#[utoipa::path(post, path = "/api/v1/customers", tag = "customers", request_body = NewCustomer,
    responses((status = 201, body = Customer), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody),
              (status = 409, body = ErrorBody), (status = 413, body = ErrorBody)),
    security(("session" = [])))]
pub async fn create(
    State(state): State<AppState>,
    Authed(actor): Authed,
    ApiJson(body): ApiJson<NewCustomer>,
) -> ApiResult<(StatusCode, Json<Customer>)> {
    Ok((StatusCode::CREATED, Json(state.customers.create(&actor, body).await?)))
}

/// Changes the given fields; `rev` must be the revision read (409 when it is stale).
#[utoipa::path(patch, path = "/api/v1/customers/{id}", tag = "customers", request_body = CustomerChanges,
    params(("id" = String, Path)),
    responses((status = 200, body = Customer), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody),
              (status = 409, body = ErrorBody)),
    security(("session" = [])))]
pub async fn update(
    State(state): State<AppState>,
    Authed(actor): Authed,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<CustomerChanges>,
) -> ApiResult<Json<Customer>> {
    Ok(Json(state.customers.update(&actor, &parse_id("id", &id)?, body).await?))
}

#[utoipa::path(get, path = "/api/v1/customers/{id}/environments", tag = "customers",
    params(("id" = String, Path)),
    responses((status = 200, body = Page<Environment>), (status = 404, body = ErrorBody)),
    security(("session" = [])))]
pub async fn environments(
    State(state): State<AppState>,
    Authed(actor): Authed,
    Path(id): Path<String>,
) -> ApiResult<Json<Page<Environment>>> {
    let items = state.customers.environments(&actor, &parse_id("id", &id)?).await?;
    Ok(Json(Page { items, next_cursor: None }))
}

#[utoipa::path(post, path = "/api/v1/customers/{id}/environments", tag = "customers", request_body = NewEnvironment,
    params(("id" = String, Path)),
    responses((status = 201, body = Environment), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody),
              (status = 409, body = ErrorBody)),
    security(("session" = [])))]
pub async fn create_environment(
    State(state): State<AppState>,
    Authed(actor): Authed,
    Path(id): Path<String>,
    body: JsonBody,
) -> ApiResult<(StatusCode, Json<Environment>)> {
    // The role before the body: a Rep or Manager is told 403 whatever the body holds.
    actor.require(Action::ManageEnvironments)?;
    let body: NewEnvironment = body.parse()?;
    let env = state.customers.create_environment(&actor, &parse_id("id", &id)?, body).await?;
    Ok((StatusCode::CREATED, Json(env)))
}

#[utoipa::path(patch, path = "/api/v1/customers/{id}/environments/{name}", tag = "customers",
    request_body = EnvironmentChanges,
    params(("id" = String, Path), ("name" = String, Path, description = "dev, staging or prod")),
    responses((status = 200, body = Environment), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody),
              (status = 409, body = ErrorBody)),
    security(("session" = [])))]
pub async fn update_environment(
    State(state): State<AppState>,
    Authed(actor): Authed,
    Path((id, name)): Path<(String, String)>,
    body: JsonBody,
) -> ApiResult<Json<Environment>> {
    actor.require(Action::ManageEnvironments)?;
    let body: EnvironmentChanges = body.parse()?;
    let id = parse_id("id", &id)?;
    if crate::domain::model::EnvironmentName::parse(&name).is_none() {
        return Err(crate::ssr::http::error::ApiError::bad_field(
            "name",
            "invalid_environment",
            "environment is one of dev, staging, prod",
        ));
    }
    Ok(Json(state.customers.update_environment(&actor, &id, &name, body).await?))
}

/// A new external id for the environment (Executives): the customer must update their role
/// stack's `ExternalId` with it; until connected again the environment is unchecked.
#[utoipa::path(post, path = "/api/v1/environments/{id}/external-id", tag = "customers", params(("id" = String, Path)),
    responses((status = 200, body = Environment), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
              (status = 409, body = ErrorBody)),
    security(("session" = [])))]
pub async fn rotate_external_id(
    State(state): State<AppState>,
    Authed(actor): Authed,
    Path(id): Path<String>,
) -> ApiResult<Json<Environment>> {
    Ok(Json(state.customers.rotate_external_id(&actor, &parse_id("id", &id)?).await?))
}
