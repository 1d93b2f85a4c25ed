//! Rollouts (issue 22): plan (`dry_run`), create, read, and control — each a few lines over
//! `RolloutService`.

use axum::{
    Json,
    extract::{Path, State},
    http::StatusCode,
    response::{IntoResponse, Response},
};

use crate::{
    domain::{
        model::Page,
        rollout_plan::{Plan, RolloutRequest},
        rollout_record::{Control, RolloutView},
    },
    ssr::{
        http::{
            error::{ApiResult, ErrorBody},
            extract::{ApiJson, Authed, IdempotencyKey, Params, parse_id},
        },
        state::AppState,
    },
};

/// With `dry_run: true`: the plan (waves, and each deployment left out with the reason), from
/// stored state only (no AWS call, nothing stored), 200. Without: the rollout is stored and
/// starts (202); a repeated `Idempotency-Key` answers the first request's rollout.
#[utoipa::path(post, path = "/api/v1/rollouts", tag = "rollouts", request_body = RolloutRequest,
    params(("Idempotency-Key" = Option<String>, Header)),
    responses((status = 200, body = Plan, description = "the plan of a dry run"),
              (status = 202, body = RolloutView, description = "the rollout, stored"),
              (status = 400, body = ErrorBody), (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)),
    security(("session" = [])))]
pub async fn create(
    State(state): State<AppState>,
    Authed(actor): Authed,
    IdempotencyKey(key): IdempotencyKey,
    ApiJson(body): ApiJson<RolloutRequest>,
) -> ApiResult<Response> {
    if body.dry_run {
        return Ok(Json(state.rollouts.plan(&actor, &body).await?).into_response());
    }
    let rollout = state.rollouts.create(&actor, &body, key.as_deref()).await?;
    Ok((StatusCode::ACCEPTED, Json(rollout)).into_response())
}

/// The rollouts the caller may see (an Executive every one, a Sales Manager their own),
/// newest first, with progress per wave.
#[utoipa::path(get, path = "/api/v1/rollouts", tag = "rollouts",
    params(("limit" = Option<usize>, Query, description = "1-200, default 50"),
           ("cursor" = Option<String>, Query, description = "`next_cursor` of the previous page")),
    responses((status = 200, body = Page<RolloutView>), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("session" = [])))]
pub async fn list(
    State(state): State<AppState>,
    Authed(actor): Authed,
    params: Params,
) -> ApiResult<Json<Page<RolloutView>>> {
    params.allow(&["limit", "cursor"])?;
    Ok(Json(state.rollouts.list(&actor, params.limit()?, params.cursor()).await?))
}

/// One rollout: progress per wave and every deployment's state.
#[utoipa::path(get, path = "/api/v1/rollouts/{id}", tag = "rollouts", params(("id" = String, Path)),
    responses((status = 200, body = RolloutView), (status = 404, body = ErrorBody)),
    security(("session" = [])))]
pub async fn get(
    State(state): State<AppState>,
    Authed(actor): Authed,
    Path(id): Path<String>,
) -> ApiResult<Json<RolloutView>> {
    Ok(Json(state.rollouts.get(&actor, &parse_id("id", &id)?).await?))
}

async fn control(
    state: AppState,
    actor: crate::ssr::auth::Actor,
    id: &str,
    c: Control,
) -> ApiResult<Json<RolloutView>> {
    Ok(Json(state.rollouts.control(&actor, &parse_id("id", id)?, c).await?))
}

/// Nothing new starts until resumed (operations running finish).
#[utoipa::path(post, path = "/api/v1/rollouts/{id}/pause", tag = "rollouts", params(("id" = String, Path)),
    responses((status = 200, body = RolloutView), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)),
    security(("session" = [])))]
pub async fn pause(
    State(state): State<AppState>,
    Authed(actor): Authed,
    Path(id): Path<String>,
) -> ApiResult<Json<RolloutView>> {
    control(state, actor, &id, Control::Pause).await
}

#[utoipa::path(post, path = "/api/v1/rollouts/{id}/resume", tag = "rollouts", params(("id" = String, Path)),
    responses((status = 200, body = RolloutView), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)),
    security(("session" = [])))]
pub async fn resume(
    State(state): State<AppState>,
    Authed(actor): Authed,
    Path(id): Path<String>,
) -> ApiResult<Json<RolloutView>> {
    control(state, actor, &id, Control::Resume).await
}

/// Stops the rollout for good: nothing new starts; operations in flight finish.
#[utoipa::path(post, path = "/api/v1/rollouts/{id}/cancel", tag = "rollouts", params(("id" = String, Path)),
    responses((status = 200, body = RolloutView), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)),
    security(("session" = [])))]
pub async fn cancel(
    State(state): State<AppState>,
    Authed(actor): Authed,
    Path(id): Path<String>,
) -> ApiResult<Json<RolloutView>> {
    control(state, actor, &id, Control::Cancel).await
}

/// Every failed deployment gets another attempt; a rollout the failures paused resumes.
#[utoipa::path(post, path = "/api/v1/rollouts/{id}/retry", tag = "rollouts", params(("id" = String, Path)),
    responses((status = 200, body = RolloutView), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)),
    security(("session" = [])))]
pub async fn retry(
    State(state): State<AppState>,
    Authed(actor): Authed,
    Path(id): Path<String>,
) -> ApiResult<Json<RolloutView>> {
    Ok(Json(state.rollouts.retry(&actor, &parse_id("id", &id)?).await?))
}

/// An Executive other than the creator approves the prod wave the rollout waits for (with a
/// recent second factor).
#[utoipa::path(post, path = "/api/v1/rollouts/{id}/approve", tag = "rollouts", params(("id" = String, Path)),
    responses((status = 200, body = RolloutView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
              (status = 409, body = ErrorBody)),
    security(("session" = [])))]
pub async fn approve(
    State(state): State<AppState>,
    Authed(actor): Authed,
    Path(id): Path<String>,
) -> ApiResult<Json<RolloutView>> {
    Ok(Json(state.rollouts.approve(&actor, &parse_id("id", &id)?).await?))
}

/// Leaves one waiting or failed deployment out.
#[utoipa::path(post, path = "/api/v1/rollouts/{id}/deployments/{deployment}/skip", tag = "rollouts",
    params(("id" = String, Path), ("deployment" = String, Path)),
    responses((status = 200, body = RolloutView), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)),
    security(("session" = [])))]
pub async fn skip(
    State(state): State<AppState>,
    Authed(actor): Authed,
    Path((id, deployment)): Path<(String, String)>,
) -> ApiResult<Json<RolloutView>> {
    let (id, deployment) = (parse_id("id", &id)?, parse_id("deployment", &deployment)?);
    Ok(Json(state.rollouts.skip(&actor, &id, &deployment).await?))
}
