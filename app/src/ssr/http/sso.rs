//! `/auth/sso` and `/auth/callback`: the browser's sign-in through Cognito's hosted UI
//! (authorization code + PKCE + state + nonce; the rules are in `auth::hosted_ui`).
//! Failures go back to the sign-in page with a short reason code, never the provider's text.

use axum::{
    Extension,
    extract::{Query, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{Html, IntoResponse, Response},
};
use serde::Deserialize;

use super::security::{cookie, session_cookie};
use crate::{
    server_fns::session::safe_next,
    ssr::{
        auth::{
            ClientInfo,
            hosted_ui::{CALLBACK_PATH, FLOW_COOKIE, FLOW_MAX_AGE_SECS, Flow, same},
        },
        clock,
        config::Config,
        error::ServiceError,
        state::AppState,
    },
};

#[derive(Deserialize)]
pub struct StartQuery {
    next: Option<String>,
}

#[derive(Deserialize)]
pub struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    /// The pool's refusal (`access_denied`, …): the user cancelled or the pool said no.
    error: Option<String>,
}

fn redirect_uri(config: &Config) -> Option<String> {
    config.public_url.as_ref().map(|u| format!("{u}{CALLBACK_PATH}"))
}

fn flow_cookie(value: &str, max_age: i64, secure: bool) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    // Path /auth: only the callback ever reads it.
    HeaderValue::from_str(&format!(
        "{FLOW_COOKIE}={value}; Path=/auth; HttpOnly; SameSite=Lax; Max-Age={max_age}{secure}"
    ))
    .expect("flow values are cookie-safe")
}

fn see_other(location: &str, cookies: Vec<HeaderValue>) -> Response {
    let mut headers = HeaderMap::new();
    headers.insert(header::LOCATION, HeaderValue::from_str(location).expect("URLs we build are header-safe"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    for c in cookies {
        headers.append(header::SET_COOKIE, c);
    }
    (StatusCode::SEE_OTHER, headers).into_response()
}

/// Back to the sign-in page with why; the flow cookie is spent either way.
fn failed(reason: &str, secure: bool) -> Response {
    see_other(&format!("/login?sso_error={reason}"), vec![flow_cookie("", 0, secure)])
}

/// Starts a sign-in at the hosted UI.
pub async fn start(State(state): State<AppState>, Query(q): Query<StartQuery>) -> Response {
    let config = &state.config;
    let (Some(cognito), Some(redirect_uri)) = (config.cognito.as_ref(), redirect_uri(config)) else {
        return failed("off", config.https());
    };
    let Some(hosted_ui) = cognito.hosted_ui.as_deref() else {
        return failed("off", config.https());
    };
    let flow = Flow::start(&safe_next(q.next.as_deref()));
    let url = flow.authorize_url(hosted_ui, &cognito.client_id, &redirect_uri);
    see_other(&url, vec![flow_cookie(&flow.to_cookie_value(), FLOW_MAX_AGE_SECS, config.https())])
}

/// The pool sends the browser back here with `code` and `state`.
pub async fn callback(
    State(state): State<AppState>,
    client: Option<Extension<ClientInfo>>,
    headers: HeaderMap,
    Query(q): Query<CallbackQuery>,
) -> Response {
    let secure = state.config.https();
    let Some(redirect_uri) = redirect_uri(&state.config) else {
        return failed("off", secure);
    };
    if let Some(error) = &q.error {
        tracing::info!(error = %error, "the hosted UI did not sign the user in");
        return failed("denied", secure);
    }
    let flow = cookie(&headers, FLOW_COOKIE).and_then(|v| Flow::from_cookie_value(&v));
    let (Some(flow), Some(returned_state), Some(code)) = (flow, q.state.as_deref(), q.code.as_deref()) else {
        tracing::info!("an SSO callback without its flow cookie, state or code");
        return failed("state", secure);
    };
    if !same(&flow.state, returned_state) {
        // Someone else's sign-in (login CSRF) or a stale tab: never exchange the code.
        tracing::warn!("an SSO callback whose state is not this browser's");
        return failed("state", secure);
    }
    let client = client.map(|Extension(c)| c).unwrap_or_default();
    let now = clock::now();
    match state.auth.login_hosted_ui(code, &flow, &redirect_uri, &client, now).await {
        Ok(login) => {
            let max_age = (login.expires_at.millis() - now.millis() + 999) / 1000;
            let next = safe_next(Some(&flow.next));
            let mut headers = HeaderMap::new();
            headers.append(header::SET_COOKIE, flow_cookie("", 0, secure));
            headers.append(header::SET_COOKIE, session_cookie(&login.token, max_age, secure));
            headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            // A page, not a redirect: this request came from the pool's site, so a redirect
            // would still be a cross-site navigation and the browser would withhold the new
            // SameSite=Strict session cookie; a navigation started by our own page carries it.
            let next_html = html_escape(&next);
            let page = format!(
                "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Signed in — NexusAI Toolkit</title>\
                 <meta http-equiv=\"refresh\" content=\"0;url={next_html}\"></head>\
                 <body><p>Signed in. <a href=\"{next_html}\">Continue</a></p></body></html>"
            );
            (StatusCode::OK, headers, Html(page)).into_response()
        }
        Err(ServiceError::Forbidden(_)) => failed("no_role", secure),
        Err(ServiceError::Unavailable) => failed("unavailable", secure),
        Err(e) => {
            tracing::info!(error = %e, "SSO sign-in refused");
            failed("refused", secure)
        }
    }
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('"', "&quot;").replace('<', "&lt;").replace('>', "&gt;")
}
