//! Lifecycle requests: deploy, upgrade, roll back, delete, check drift, connect an
//! environment; execute, approve, reject and cancel operations; their stack events, as a list
//! and as a live stream.

use std::convert::Infallible;

use axum::{
    Json,
    extract::{Path, State},
    http::{HeaderMap, StatusCode},
    response::sse::{Event, KeepAlive, Sse},
};
use futures::Stream;

use crate::{
    domain::{
        model::{Environment, Operation},
        stacks::StackEvent,
        views::{ChangeRequest, DecisionRequest, DeleteRequest, DeployRequest, UpgradeRequest},
    },
    ssr::{
        http::{
            error::{ApiResult, ErrorBody},
            event_stream,
            extract::{ApiJson, Authed, IdempotencyKey, OptionalJson, Params, parse_id},
        },
        state::AppState,
    },
};

type Accepted = ApiResult<(StatusCode, Json<Operation>)>;

fn accepted(op: Operation) -> (StatusCode, Json<Operation>) {
    (StatusCode::ACCEPTED, Json(op))
}

/// Deploys a capability version into an environment. 202 with the operation (awaiting
/// approval when the requester's role needs one); a repeated `Idempotency-Key` answers the
/// first request's operation.
#[utoipa::path(post, path = "/api/v1/deployments", tag = "lifecycle", request_body = DeployRequest,
    params(("Idempotency-Key" = Option<String>, Header)),
    responses((status = 202, body = Operation), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody),
              (status = 409, body = ErrorBody)),
    security(("session" = [])))]
pub async fn deploy(
    State(state): State<AppState>,
    Authed(actor): Authed,
    IdempotencyKey(key): IdempotencyKey,
    ApiJson(body): ApiJson<DeployRequest>,
) -> Accepted {
    Ok(accepted(state.operations.deploy(&actor, body, key.as_deref()).await?))
}

#[utoipa::path(post, path = "/api/v1/deployments/{id}/upgrade", tag = "lifecycle", request_body = UpgradeRequest,
    params(("id" = String, Path), ("Idempotency-Key" = Option<String>, Header)),
    responses((status = 202, body = Operation), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody),
              (status = 409, body = ErrorBody)),
    security(("session" = [])))]
pub async fn upgrade(
    State(state): State<AppState>,
    Authed(actor): Authed,
    Path(id): Path<String>,
    IdempotencyKey(key): IdempotencyKey,
    ApiJson(body): ApiJson<UpgradeRequest>,
) -> Accepted {
    Ok(accepted(state.operations.upgrade(&actor, &parse_id("id", &id)?, body, key.as_deref()).await?))
}

/// Back to the previous successful version and parameters.
#[utoipa::path(post, path = "/api/v1/deployments/{id}/rollback", tag = "lifecycle", request_body = Option<ChangeRequest>,
    params(("id" = String, Path), ("Idempotency-Key" = Option<String>, Header)),
    responses((status = 202, body = Operation), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)),
    security(("session" = [])))]
pub async fn rollback(
    State(state): State<AppState>,
    Authed(actor): Authed,
    Path(id): Path<String>,
    IdempotencyKey(key): IdempotencyKey,
    OptionalJson(body): OptionalJson<ChangeRequest>,
) -> Accepted {
    Ok(accepted(state.operations.rollback(&actor, &parse_id("id", &id)?, body, key.as_deref()).await?))
}

/// Blue-green: the other colour takes over with the previous version.
#[utoipa::path(post, path = "/api/v1/deployments/{id}/switch", tag = "lifecycle", request_body = Option<ChangeRequest>,
    params(("id" = String, Path), ("Idempotency-Key" = Option<String>, Header)),
    responses((status = 202, body = Operation), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)),
    security(("session" = [])))]
pub async fn switch(
    State(state): State<AppState>,
    Authed(actor): Authed,
    Path(id): Path<String>,
    IdempotencyKey(key): IdempotencyKey,
    OptionalJson(body): OptionalJson<ChangeRequest>,
) -> Accepted {
    Ok(accepted(state.operations.switch(&actor, &parse_id("id", &id)?, body, key.as_deref()).await?))
}

/// Deletes the stack; the deployment and its history stay. Prod needs `?confirm=<stack name>`.
#[utoipa::path(delete, path = "/api/v1/deployments/{id}", tag = "lifecycle",
    params(("id" = String, Path), ("confirm" = Option<String>, Query, description = "the stack name (prod)"),
           ("Idempotency-Key" = Option<String>, Header)),
    responses((status = 202, body = Operation), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody),
              (status = 409, body = ErrorBody)),
    security(("session" = [])))]
pub async fn delete(
    State(state): State<AppState>,
    Authed(actor): Authed,
    Path(id): Path<String>,
    IdempotencyKey(key): IdempotencyKey,
    params: Params,
) -> Accepted {
    params.allow(&["confirm"])?;
    let req = DeleteRequest { confirm: params.string("confirm").map(str::to_string) };
    Ok(accepted(state.operations.delete(&actor, &parse_id("id", &id)?, req, key.as_deref()).await?))
}

/// Starts drift detection on the deployment's stack.
#[utoipa::path(post, path = "/api/v1/deployments/{id}/drift", tag = "lifecycle", params(("id" = String, Path)),
    responses((status = 202, body = Operation), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)),
    security(("session" = [])))]
pub async fn drift(State(state): State<AppState>, Authed(actor): Authed, Path(id): Path<String>) -> Accepted {
    Ok(accepted(state.operations.drift_check(&actor, &parse_id("id", &id)?).await?))
}

/// Executes a previewed change set.
#[utoipa::path(post, path = "/api/v1/operations/{id}/execute", tag = "lifecycle", params(("id" = String, Path)),
    responses((status = 202, body = Operation), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
              (status = 409, body = ErrorBody)),
    security(("session" = [])))]
pub async fn execute(
    State(state): State<AppState>,
    Authed(actor): Authed,
    Path(id): Path<String>,
) -> Accepted {
    Ok(accepted(state.operations.execute(&actor, &parse_id("id", &id)?).await?))
}

#[utoipa::path(post, path = "/api/v1/operations/{id}/approve", tag = "lifecycle", request_body = Option<DecisionRequest>,
    params(("id" = String, Path)),
    responses((status = 202, body = Operation), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
              (status = 409, body = ErrorBody)),
    security(("session" = [])))]
pub async fn approve(
    State(state): State<AppState>,
    Authed(actor): Authed,
    Path(id): Path<String>,
    OptionalJson(body): OptionalJson<DecisionRequest>,
) -> Accepted {
    Ok(accepted(state.operations.approve(&actor, &parse_id("id", &id)?, body).await?))
}

#[utoipa::path(post, path = "/api/v1/operations/{id}/reject", tag = "lifecycle", request_body = Option<DecisionRequest>,
    params(("id" = String, Path)),
    responses((status = 200, body = Operation), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
              (status = 409, body = ErrorBody)),
    security(("session" = [])))]
pub async fn reject(
    State(state): State<AppState>,
    Authed(actor): Authed,
    Path(id): Path<String>,
    OptionalJson(body): OptionalJson<DecisionRequest>,
) -> ApiResult<Json<Operation>> {
    Ok(Json(state.operations.reject(&actor, &parse_id("id", &id)?, body).await?))
}

#[utoipa::path(post, path = "/api/v1/operations/{id}/cancel", tag = "lifecycle", params(("id" = String, Path)),
    responses((status = 200, body = Operation), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
              (status = 409, body = ErrorBody)),
    security(("session" = [])))]
pub async fn cancel(
    State(state): State<AppState>,
    Authed(actor): Authed,
    Path(id): Path<String>,
) -> ApiResult<Json<Operation>> {
    Ok(Json(state.operations.cancel(&actor, &parse_id("id", &id)?).await?))
}

/// The stack events the operation caused, oldest first.
#[utoipa::path(get, path = "/api/v1/operations/{id}/events", tag = "lifecycle", params(("id" = String, Path)),
    responses((status = 200, body = Vec<StackEvent>), (status = 404, body = ErrorBody)),
    security(("session" = [])))]
pub async fn events(
    State(state): State<AppState>,
    Authed(actor): Authed,
    Path(id): Path<String>,
) -> ApiResult<Json<Vec<StackEvent>>> {
    Ok(Json(state.operations.events(&actor, &parse_id("id", &id)?).await?))
}

/// Server-sent events while the operation runs: `stack-event` for each new stack event (its
/// SSE id is its position, so a reconnect with `Last-Event-ID` resumes after it), `operation`
/// whenever its state changes, and `end` with a `reason` as the last: `finished`, `session` (signed
/// out, deactivated or given another role since the stream opened) or `lifetime`
/// (`NEXUS_EVENT_STREAM_MAX_SECONDS`). At most ten open streams per user (429 past that).
#[utoipa::path(get, path = "/api/v1/operations/{id}/events/stream", tag = "lifecycle",
    params(("id" = String, Path), ("Last-Event-ID" = Option<String>, Header)),
    responses((status = 200, description = "text/event-stream"), (status = 404, body = ErrorBody),
              (status = 429, body = ErrorBody)),
    security(("session" = [])))]
pub async fn stream(
    State(state): State<AppState>,
    Authed(actor): Authed,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> ApiResult<Sse<impl Stream<Item = Result<Event, Infallible>>>> {
    let id = parse_id("id", &id)?;
    // Scope once, up front (404 outside it); the stream re-checks the session as it goes.
    state.deployments.operation(&actor, &id).await?;
    let permit = state.streams.open(&actor.user.id)?;
    let resume_after = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<usize>().ok())
        .unwrap_or(0);
    let events = event_stream::follow_operation(state, actor, id, resume_after, permit);
    Ok(Sse::new(events).keep_alive(KeepAlive::default()))
}

/// Checks the environment's role: AssumeRole with its external id, then the account id.
#[utoipa::path(post, path = "/api/v1/environments/{id}/connect", tag = "lifecycle", params(("id" = String, Path)),
    responses((status = 200, body = Environment), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("session" = [])))]
pub async fn connect(
    State(state): State<AppState>,
    Authed(actor): Authed,
    Path(id): Path<String>,
) -> ApiResult<Json<Environment>> {
    Ok(Json(state.customers.connect(&actor, &parse_id("id", &id)?).await?))
}
