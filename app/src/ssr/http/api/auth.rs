//! Sign-in, sign-out and who am I.

use axum::{
    Json,
    extract::State,
    http::{HeaderMap, StatusCode, header},
    response::IntoResponse,
};
use serde::{Deserialize, Serialize};

use crate::{
    domain::{
        ids::Id,
        model::User,
        views::{AccountNotice, CodeRequest, MfaStatus, RecoveryCodes, TotpEnrolment},
    },
    ssr::{
        auth::{ClientInfo, LoginResponse},
        clock,
        http::{
            error::{ApiResult, ErrorBody},
            extract::{ApiJson, Authed},
            security::{clear_session_cookie, session_cookie},
        },
        state::AppState,
    },
};

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    pub email: String,
    pub password: String,
    /// The second factor, when the account has one: a code from the authenticator app or a
    /// recovery code. Without it such an account answers 401 `mfa_required`.
    #[serde(default)]
    pub otp: Option<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct Me {
    pub user: User,
    /// A Sales Manager's Reps.
    pub team: Vec<Id>,
}

/// Signs in with email and password; answers the token (for `Authorization: Bearer`) and sets
/// the session cookie (for the browser).
#[utoipa::path(post, path = "/api/v1/auth/login", tag = "auth", request_body = LoginRequest,
    responses(
        (status = 200, body = LoginResponse),
        (status = 400, body = ErrorBody),
        (status = 401, description = "wrong credentials, or `mfa_required`: send the second factor as `otp`", body = ErrorBody),
        (status = 423, description = "locked after too many failures", body = ErrorBody),
        (status = 429, body = ErrorBody)))]
pub async fn login(
    State(state): State<AppState>,
    client: axum::Extension<ClientInfo>,
    ApiJson(body): ApiJson<LoginRequest>,
) -> ApiResult<impl IntoResponse> {
    let now = clock::now();
    let response = state.auth.login(&body.email, &body.password, body.otp.as_deref(), &client, now).await?;
    Ok(session_response(&state, response, now))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CognitoLogin {
    /// A Cognito ID or access token of the configured user pool and app client.
    pub token: String,
}

/// Single sign-on: exchanges a Cognito token (verified against the pool's JWKS) for a session.
/// The user's `cognito:groups` name their role.
#[utoipa::path(post, path = "/api/v1/auth/cognito", tag = "auth", request_body = CognitoLogin,
    responses((status = 200, body = LoginResponse), (status = 401, body = ErrorBody),
              (status = 403, description = "no role, or SSO is off", body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn cognito(
    State(state): State<AppState>,
    client: axum::Extension<ClientInfo>,
    ApiJson(body): ApiJson<CognitoLogin>,
) -> ApiResult<impl IntoResponse> {
    let now = clock::now();
    let response = state.auth.login_cognito(&body.token, &client, now).await?;
    Ok(session_response(&state, response, now))
}

/// The sign-in answer: the token in the body (API clients) and in the session cookie (browsers).
pub(super) fn session_response(
    state: &AppState,
    response: LoginResponse,
    now: crate::domain::time::Timestamp,
) -> (HeaderMap, Json<LoginResponse>) {
    // Rounded up: the token's expiry is in whole seconds, `now` is not.
    let max_age = (response.expires_at.millis() - now.millis() + 999) / 1000;
    let mut headers = HeaderMap::new();
    headers.insert(header::SET_COOKIE, session_cookie(&response.token, max_age, state.config.https()));
    headers.insert(header::CACHE_CONTROL, "no-store".parse().expect("static"));
    (headers, Json(response))
}

/// Ends the session: its token and every renewal of it stop working.
#[utoipa::path(post, path = "/api/v1/auth/logout", tag = "auth",
    responses((status = 204), (status = 401, body = ErrorBody)), security(("session" = [])))]
pub async fn logout(State(state): State<AppState>, Authed(actor): Authed) -> ApiResult<impl IntoResponse> {
    state.auth.logout(&actor, clock::now()).await?;
    Ok((StatusCode::NO_CONTENT, [(header::SET_COOKIE, clear_session_cookie(state.config.https()))]))
}

#[utoipa::path(get, path = "/api/v1/me", tag = "auth",
    responses((status = 200, body = Me), (status = 401, body = ErrorBody)), security(("session" = [])))]
pub async fn me(Authed(actor): Authed) -> Json<Me> {
    Json(Me { user: actor.user, team: actor.team })
}

/// Notices about the signed-in user's own account, newest first (a lock on their password
/// sign-in: when, until when, from where).
#[utoipa::path(get, path = "/api/v1/me/notices", tag = "auth",
    responses((status = 200, body = Vec<AccountNotice>), (status = 401, body = ErrorBody)), security(("session" = [])))]
pub async fn notices(
    State(state): State<AppState>,
    Authed(actor): Authed,
) -> ApiResult<Json<Vec<AccountNotice>>> {
    Ok(Json(state.auth.account_notices(&actor).await?))
}

/// Step-up: proves a second factor now (`{"code"}`), for actions that need a recent one (they
/// answer 401 `mfa_required` otherwise). A wrong or used code is 400 naming `code`.
#[utoipa::path(post, path = "/api/v1/auth/step-up", tag = "auth", request_body = CodeRequest,
    responses((status = 204), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)),
    security(("session" = [])))]
pub async fn step_up(
    State(state): State<AppState>,
    Authed(actor): Authed,
    ApiJson(body): ApiJson<CodeRequest>,
) -> ApiResult<StatusCode> {
    state.auth.step_up(&actor, &body.code, clock::now()).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The signed-in user's second factors.
#[utoipa::path(get, path = "/api/v1/me/mfa", tag = "auth",
    responses((status = 200, body = MfaStatus), (status = 401, body = ErrorBody)), security(("session" = [])))]
pub async fn mfa_status(State(state): State<AppState>, Authed(actor): Authed) -> ApiResult<Json<MfaStatus>> {
    Ok(Json(state.auth.mfa_status(&actor).await?))
}

/// Starts setting up an authenticator app: the secret (text, `otpauth://` URL, QR code as SVG),
/// shown once; `POST /me/mfa/totp/confirm` with one of the app's codes finishes.
#[utoipa::path(post, path = "/api/v1/me/mfa/totp", tag = "auth",
    responses((status = 200, body = TotpEnrolment), (status = 409, body = ErrorBody)), security(("session" = [])))]
pub async fn start_totp(
    State(state): State<AppState>,
    Authed(actor): Authed,
) -> ApiResult<impl IntoResponse> {
    let enrolment = state.auth.start_totp(&actor, clock::now()).await?;
    Ok(([(header::CACHE_CONTROL, "no-store")], Json(enrolment)))
}

/// Confirms the app with one of its codes; the first factor also answers ten recovery codes,
/// shown this once.
#[utoipa::path(post, path = "/api/v1/me/mfa/totp/confirm", tag = "auth", request_body = CodeRequest,
    responses((status = 200, body = RecoveryCodes), (status = 400, body = ErrorBody)), security(("session" = [])))]
pub async fn confirm_totp(
    State(state): State<AppState>,
    Authed(actor): Authed,
    ApiJson(body): ApiJson<CodeRequest>,
) -> ApiResult<impl IntoResponse> {
    let codes = state.auth.confirm_totp(&actor, &body.code, clock::now()).await?;
    Ok(([(header::CACHE_CONTROL, "no-store")], Json(codes)))
}

/// Removes the app and the recovery codes (needs a second factor used within the step-up window).
#[utoipa::path(delete, path = "/api/v1/me/mfa/totp", tag = "auth",
    responses((status = 204), (status = 401, description = "`mfa_required`: step up first", body = ErrorBody)),
    security(("session" = [])))]
pub async fn remove_totp(State(state): State<AppState>, Authed(actor): Authed) -> ApiResult<StatusCode> {
    state.auth.remove_totp(&actor, clock::now(), state.config.mfa_step_up_ms()).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Ten new recovery codes, shown this once; the old ones stop working (needs a recent factor).
#[utoipa::path(post, path = "/api/v1/me/mfa/recovery-codes", tag = "auth",
    responses((status = 200, body = RecoveryCodes), (status = 401, body = ErrorBody)), security(("session" = [])))]
pub async fn renew_recovery_codes(
    State(state): State<AppState>,
    Authed(actor): Authed,
) -> ApiResult<impl IntoResponse> {
    let codes = state.auth.renew_recovery_codes(&actor, clock::now(), state.config.mfa_step_up_ms()).await?;
    Ok(([(header::CACHE_CONTROL, "no-store")], Json(codes)))
}
