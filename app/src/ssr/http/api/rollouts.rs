//! Rollouts (issue 22): a plan today (`dry_run`); stored rollouts come next.

use axum::{Json, extract::State};

use crate::{
    domain::rollout_plan::{Plan, RolloutRequest},
    ssr::{
        error::ServiceError,
        http::{
            error::{ApiResult, ErrorBody},
            extract::{ApiJson, Authed},
        },
        state::AppState,
    },
};

/// With `dry_run: true`: the plan (waves, and each deployment left out with the reason), from
/// stored state only (no AWS call, nothing stored).
#[utoipa::path(post, path = "/api/v1/rollouts", tag = "rollouts", request_body = RolloutRequest,
    responses((status = 200, body = Plan), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody)),
    security(("session" = [])))]
pub async fn create(
    State(state): State<AppState>,
    Authed(actor): Authed,
    ApiJson(body): ApiJson<RolloutRequest>,
) -> ApiResult<Json<Plan>> {
    if !body.dry_run {
        return Err(ServiceError::invalid(
            "dry_run",
            "not_available",
            "only plans are made so far: send `dry_run: true`",
        )
        .into());
    }
    Ok(Json(state.rollouts.plan(&actor, &body).await?))
}
