//! Passkeys over REST: adding and removing one's own, signing in with one (no password), and
//! stepping up with one. Each ceremony is two calls: `…/options` answers the WebAuthn options
//! for the browser and a `token`; the second call sends the token back with the browser's
//! credential (its `toJSON()`).

use axum::{
    Json,
    extract::{Path, State},
    http::{StatusCode, header},
    response::IntoResponse,
};
use serde::Deserialize;

use crate::{
    domain::views::{PasskeyChallenge, RecoveryCodes},
    ssr::{
        auth::{ClientInfo, LoginResponse},
        clock,
        http::{
            error::{ApiResult, ErrorBody},
            extract::{ApiJson, Authed},
        },
        state::AppState,
    },
};

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewPasskey {
    /// What the user calls it ("Work laptop"), 1-60 characters.
    pub name: String,
}

/// The second call of a ceremony.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasskeyAnswer {
    /// The `token` of the first call.
    pub token: String,
    /// The browser's `PublicKeyCredential`, as its `toJSON()` gives it.
    #[schema(value_type = Object)]
    pub credential: serde_json::Value,
}

/// Starts adding a passkey: options for `navigator.credentials.create()`.
#[utoipa::path(post, path = "/api/v1/me/mfa/passkeys/options", tag = "auth", request_body = NewPasskey,
    responses((status = 200, body = PasskeyChallenge), (status = 400, body = ErrorBody),
              (status = 409, description = "passkeys are off (no public URL with a host name)", body = ErrorBody)),
    security(("session" = [])))]
pub async fn register_options(
    State(state): State<AppState>,
    Authed(actor): Authed,
    ApiJson(body): ApiJson<NewPasskey>,
) -> ApiResult<impl IntoResponse> {
    let challenge = state.auth.start_passkey(&actor, &body.name, clock::now()).await?;
    Ok(([(header::CACHE_CONTROL, "no-store")], Json(challenge)))
}

/// Adds the passkey the browser made; the first factor also answers ten recovery codes, once.
#[utoipa::path(post, path = "/api/v1/me/mfa/passkeys", tag = "auth", request_body = PasskeyAnswer,
    responses((status = 200, body = RecoveryCodes), (status = 400, body = ErrorBody)), security(("session" = [])))]
pub async fn register(
    State(state): State<AppState>,
    Authed(actor): Authed,
    ApiJson(body): ApiJson<PasskeyAnswer>,
) -> ApiResult<impl IntoResponse> {
    let codes =
        state.auth.finish_passkey(&actor, &body.token, &body.credential.to_string(), clock::now()).await?;
    Ok(([(header::CACHE_CONTROL, "no-store")], Json(codes)))
}

/// Removes one of one's passkeys (needs a recent second factor).
#[utoipa::path(delete, path = "/api/v1/me/mfa/passkeys/{id}", tag = "auth",
    params(("id" = String, Path, description = "the passkey's credential id")),
    responses((status = 204), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("session" = [])))]
pub async fn remove(
    State(state): State<AppState>,
    Authed(actor): Authed,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    state.auth.remove_passkey(&actor, &id, clock::now(), state.config.mfa_step_up_ms()).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Starts a sign-in (or a step-up) with a passkey: options for `navigator.credentials.get()`,
/// naming no user.
#[utoipa::path(post, path = "/api/v1/auth/passkey/options", tag = "auth",
    responses((status = 200, body = PasskeyChallenge), (status = 409, body = ErrorBody)))]
pub async fn challenge(State(state): State<AppState>) -> ApiResult<impl IntoResponse> {
    let challenge = state.auth.passkey_challenge(clock::now())?;
    Ok(([(header::CACHE_CONTROL, "no-store")], Json(challenge)))
}

/// Signs in with a passkey alone: the passkey names its user and proves their PIN or biometrics.
#[utoipa::path(post, path = "/api/v1/auth/passkey", tag = "auth", request_body = PasskeyAnswer,
    responses((status = 200, body = LoginResponse), (status = 400, body = ErrorBody),
              (status = 423, body = ErrorBody)))]
pub async fn login(
    State(state): State<AppState>,
    client: axum::Extension<ClientInfo>,
    ApiJson(body): ApiJson<PasskeyAnswer>,
) -> ApiResult<impl IntoResponse> {
    let now = clock::now();
    let response = state.auth.login_passkey(&body.token, &body.credential.to_string(), &client, now).await?;
    Ok(super::auth::session_response(&state, response, now))
}

/// Step-up with one of one's passkeys.
#[utoipa::path(post, path = "/api/v1/auth/step-up/passkey", tag = "auth", request_body = PasskeyAnswer,
    responses((status = 204), (status = 400, body = ErrorBody)), security(("session" = [])))]
pub async fn step_up(
    State(state): State<AppState>,
    Authed(actor): Authed,
    ApiJson(body): ApiJson<PasskeyAnswer>,
) -> ApiResult<StatusCode> {
    state.auth.step_up_passkey(&actor, &body.token, &body.credential.to_string(), clock::now()).await?;
    Ok(StatusCode::NO_CONTENT)
}
