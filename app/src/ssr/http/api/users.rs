//! User management (Executives).

use axum::{
    Json,
    extract::{Path, State},
    http::StatusCode,
};

use crate::{
    domain::{
        model::{Page, User},
        views::LockedAccount,
    },
    ssr::{
        clock,
        http::{
            error::{ApiResult, ErrorBody},
            extract::{ApiJson, Authed, Params, parse_id},
        },
        services::users::{NewUser, PasswordReset, UserChanges},
        state::AppState,
    },
};

#[utoipa::path(get, path = "/api/v1/users", tag = "users",
    params(("limit" = Option<usize>, Query), ("cursor" = Option<String>, Query)),
    responses((status = 200, body = Page<User>), (status = 403, body = ErrorBody)), security(("session" = [])))]
pub async fn list(
    State(state): State<AppState>,
    Authed(actor): Authed,
    params: Params,
) -> ApiResult<Json<Page<User>>> {
    params.allow(&["limit", "cursor"])?;
    Ok(Json(state.users.list(&actor, params.limit()?, params.cursor()).await?))
}

#[utoipa::path(post, path = "/api/v1/users", tag = "users", request_body = NewUser,
    responses((status = 201, body = User), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody),
              (status = 409, body = ErrorBody)),
    security(("session" = [])))]
pub async fn create(
    State(state): State<AppState>,
    Authed(actor): Authed,
    ApiJson(body): ApiJson<NewUser>,
) -> ApiResult<(StatusCode, Json<User>)> {
    Ok((StatusCode::CREATED, Json(state.users.create(&actor, body).await?)))
}

/// Role, team (`manager_id`), name, active; `rev` must be the revision read.
#[utoipa::path(patch, path = "/api/v1/users/{id}", tag = "users", request_body = UserChanges, params(("id" = String, Path)),
    responses((status = 200, body = User), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody),
              (status = 409, body = ErrorBody)),
    security(("session" = [])))]
pub async fn update(
    State(state): State<AppState>,
    Authed(actor): Authed,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<UserChanges>,
) -> ApiResult<Json<User>> {
    Ok(Json(state.users.update(&actor, &parse_id("id", &id)?, body).await?))
}

#[utoipa::path(post, path = "/api/v1/users/{id}/password", tag = "users", request_body = PasswordReset,
    params(("id" = String, Path)),
    responses((status = 204), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)), security(("session" = [])))]
pub async fn reset_password(
    State(state): State<AppState>,
    Authed(actor): Authed,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<PasswordReset>,
) -> ApiResult<StatusCode> {
    state.users.reset_password(&actor, &parse_id("id", &id)?, body).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Clears failed sign-ins and a lock on the user's email.
#[utoipa::path(post, path = "/api/v1/users/{id}/unlock", tag = "users", params(("id" = String, Path)),
    responses((status = 204), (status = 404, body = ErrorBody)), security(("session" = [])))]
pub async fn unlock(
    State(state): State<AppState>,
    Authed(actor): Authed,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let email = state.users.email(&actor, &parse_id("id", &id)?).await?;
    state.auth.unlock(&actor, &email, clock::now()).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Emails whose password sign-in is locked now (five failed sign-ins), with the user who has
/// each (none when nobody does: someone guessed). Single sign-on stays open to a locked user.
#[utoipa::path(get, path = "/api/v1/users/locked", tag = "users",
    responses((status = 200, body = Vec<LockedAccount>), (status = 403, body = ErrorBody)), security(("session" = [])))]
pub async fn locked(
    State(state): State<AppState>,
    Authed(actor): Authed,
) -> ApiResult<Json<Vec<LockedAccount>>> {
    Ok(Json(state.auth.locked_accounts(&actor, clock::now()).await?))
}

/// Removes a user's second factors (a lost phone): they set one up again (Executives; audited).
#[utoipa::path(post, path = "/api/v1/users/{id}/mfa/reset", tag = "users", params(("id" = String, Path)),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)), security(("session" = [])))]
pub async fn reset_mfa(
    State(state): State<AppState>,
    Authed(actor): Authed,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    state.auth.reset_mfa(&actor, &parse_id("id", &id)?, clock::now()).await?;
    Ok(StatusCode::NO_CONTENT)
}
