//! Signing in and out, and who is signed in.

use leptos::prelude::*;
use leptos::server_fn::codec::GetUrl;
use serde::{Deserialize, Serialize};

use super::AppError;
use crate::domain::{model::User, time::Timestamp};

/// The signed-in user, and when the server answered (the "status as of" of a cached page).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionInfo {
    pub user: User,
    pub as_of: Timestamp,
    /// The role requires a second factor the user has not set up: only the account page opens.
    #[serde(default)]
    pub must_enrol: bool,
}

/// What the sign-in page offers besides email and password.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignInMethods {
    /// Cognito's hosted UI is configured: "Sign in with SSO" (`/auth/sso`).
    pub sso: bool,
    /// Passkeys are on (a public URL with a host name): "Sign in with a passkey".
    #[serde(default)]
    pub passkeys: bool,
}

/// `None` when nobody is signed in (the page then offers the sign-in form).
#[server(input = GetUrl, prefix = "/sfn", endpoint = "session")]
pub async fn get_session() -> Result<Option<SessionInfo>, AppError> {
    use crate::ssr::{clock, http::sfn};
    Ok(sfn::maybe_actor().map(|actor| SessionInfo {
        must_enrol: actor.factor.must_enrol,
        user: actor.user,
        as_of: clock::now(),
    }))
}

#[server(input = GetUrl, prefix = "/sfn", endpoint = "sign-in-options")]
pub async fn sign_in_options() -> Result<SignInMethods, AppError> {
    let state = crate::ssr::http::sfn::state();
    Ok(SignInMethods {
        sso: state.config.cognito.as_ref().is_some_and(|c| c.hosted_ui.is_some()),
        passkeys: state.auth.passkeys_available(),
    })
}

/// Signs in with email and password: sets the session cookie and goes to `next` (a path on this
/// site), or back to the sign-in form with the reason. Works as a plain form post without
/// JavaScript too.
#[server(prefix = "/sfn", endpoint = "sign-in")]
pub async fn sign_in(
    email: String,
    password: String,
    otp: Option<String>,
    next: Option<String>,
) -> Result<(), AppError> {
    use crate::ssr::{
        auth::ClientInfo,
        clock,
        http::{security::session_cookie, sfn},
    };
    use axum::http::{HeaderValue, header, request::Parts};
    let state = sfn::state();
    let client =
        use_context::<Parts>().and_then(|p| p.extensions.get::<ClientInfo>().cloned()).unwrap_or_default();
    let now = clock::now();
    let otp = otp.filter(|o| !o.trim().is_empty());
    let login = state.auth.login(&email, &password, otp.as_deref(), &client, now).await.map_err(sfn::fail)?;
    let response = expect_context::<leptos_axum::ResponseOptions>();
    let max_age = (login.expires_at.millis() - now.millis() + 999) / 1000;
    response.insert_header(header::SET_COOKIE, session_cookie(&login.token, max_age, state.config.https()));
    response.insert_header(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    leptos_axum::redirect(&safe_next(next.as_deref()));
    Ok(())
}

/// Starts a passkey ceremony (a sign-in, or a step-up): options for the browser, naming no user.
#[server(prefix = "/sfn", endpoint = "passkey-challenge")]
pub async fn passkey_challenge() -> Result<crate::domain::views::PasskeyChallenge, AppError> {
    use crate::ssr::{clock, http::sfn};
    sfn::state().auth.passkey_challenge(clock::now()).map_err(sfn::fail)
}

/// Signs in with a passkey (`credential`: the browser's answer, its `toJSON()` as text): sets
/// the session cookie; the page then goes to `next` itself.
#[server(prefix = "/sfn", endpoint = "passkey-sign-in")]
pub async fn passkey_sign_in(token: String, credential: String) -> Result<(), AppError> {
    use crate::ssr::{
        auth::ClientInfo,
        clock,
        http::{security::session_cookie, sfn},
    };
    use axum::http::{HeaderValue, header, request::Parts};
    let state = sfn::state();
    let client =
        use_context::<Parts>().and_then(|p| p.extensions.get::<ClientInfo>().cloned()).unwrap_or_default();
    let now = clock::now();
    let login = state.auth.login_passkey(&token, &credential, &client, now).await.map_err(sfn::fail)?;
    let response = expect_context::<leptos_axum::ResponseOptions>();
    let max_age = (login.expires_at.millis() - now.millis() + 999) / 1000;
    response.insert_header(header::SET_COOKIE, session_cookie(&login.token, max_age, state.config.https()));
    response.insert_header(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(())
}

/// Ends the session; the page then clears what the browser kept (caches, last-known state).
#[server(prefix = "/sfn", endpoint = "sign-out")]
pub async fn sign_out() -> Result<(), AppError> {
    use crate::ssr::{
        clock,
        http::{security::clear_session_cookie, sfn},
    };
    use axum::http::header;
    let state = sfn::state();
    if let Some(actor) = sfn::maybe_actor() {
        state.auth.logout(&actor, clock::now()).await.map_err(sfn::fail)?;
    }
    let response = expect_context::<leptos_axum::ResponseOptions>();
    response.insert_header(header::SET_COOKIE, clear_session_cookie(state.config.https()));
    leptos_axum::redirect("/login?signed_out=1");
    Ok(())
}

/// Only a path on this site, never `//elsewhere` or `https://…` (an open redirect): one `/`, then
/// not `/`, no `\\` anywhere (browsers read it as `/`), and no control character anywhere: browsers
/// drop tabs and newlines, so `/\t/evil.example` would become `//evil.example`, and CR/LF cannot
/// go into a `Location` header at all.
pub fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n)
            if n.starts_with('/')
                && n.as_bytes().get(1) != Some(&b'/')
                && !n.contains('\\')
                && !n.chars().any(char::is_control) =>
        {
            n.to_string()
        }
        _ => "/".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::safe_next;

    #[test]
    fn only_local_paths_are_followed_after_sign_in() {
        assert_eq!(safe_next(Some("/customers/01J")), "/customers/01J");
        assert_eq!(safe_next(Some("//evil.example")), "/");
        assert_eq!(safe_next(Some("https://evil.example")), "/");
        assert_eq!(safe_next(Some("/\\evil.example")), "/");
        assert_eq!(safe_next(None), "/");
    }

    #[test]
    fn control_characters_never_reach_the_redirect() {
        for bad in [
            "/\t/evil.example",
            "/\n/evil.example",
            "/\r\nSet-Cookie: x=1",
            "/ok\u{0}",
            "/a\u{7f}",
            "/\u{85}x",
        ] {
            assert_eq!(safe_next(Some(bad)), "/", "{bad:?}");
        }
        assert_eq!(safe_next(Some("/\\")), "/");
        assert_eq!(safe_next(Some("")), "/");
        assert_eq!(safe_next(Some("/")), "/");
        assert_eq!(safe_next(Some("/approvals?x=1#y")), "/approvals?x=1#y");
    }
}
