//! One's own account: the second factor (an authenticator app and recovery codes). Every call
//! is a POST, so the service worker never keeps any of it (see `public/sw.js`).

use leptos::prelude::*;

use super::AppError;
use crate::domain::views::{MfaStatus, PasskeyChallenge, RecoveryCodes, TotpEnrolment};

#[server(prefix = "/sfn", endpoint = "mfa-status")]
pub async fn get_mfa_status() -> Result<MfaStatus, AppError> {
    use crate::ssr::http::sfn;
    let (state, actor) = (sfn::state(), sfn::actor()?);
    state.auth.mfa_status(&actor).await.map_err(sfn::fail)
}

/// A new secret for the app, shown once.
#[server(prefix = "/sfn", endpoint = "mfa-totp-start")]
pub async fn start_totp() -> Result<TotpEnrolment, AppError> {
    use crate::ssr::{clock, http::sfn};
    let (state, actor) = (sfn::state(), sfn::actor()?);
    state.auth.start_totp(&actor, clock::now()).await.map_err(sfn::fail)
}

/// Confirms the app with one of its codes; the first time, answers the recovery codes.
#[server(prefix = "/sfn", endpoint = "mfa-totp-confirm")]
pub async fn confirm_totp(code: String) -> Result<RecoveryCodes, AppError> {
    use crate::ssr::{clock, http::sfn};
    let (state, actor) = (sfn::state(), sfn::actor()?);
    state.auth.confirm_totp(&actor, &code, clock::now()).await.map_err(sfn::fail)
}

/// Proves a second factor now (step-up), for an action that asked for a fresh one.
#[server(prefix = "/sfn", endpoint = "mfa-step-up")]
pub async fn step_up(code: String) -> Result<(), AppError> {
    use crate::ssr::{clock, http::sfn};
    let (state, actor) = (sfn::state(), sfn::actor()?);
    state.auth.step_up(&actor, &code, clock::now()).await.map_err(sfn::fail)
}

/// Starts adding a passkey named `name`: the options for the browser.
#[server(prefix = "/sfn", endpoint = "mfa-passkey-options")]
pub async fn passkey_options(name: String) -> Result<PasskeyChallenge, AppError> {
    use crate::ssr::{clock, http::sfn};
    let (state, actor) = (sfn::state(), sfn::actor()?);
    state.auth.start_passkey(&actor, &name, clock::now()).await.map_err(sfn::fail)
}

/// Adds the passkey the browser made (`credential`: its `toJSON()` as text); the first factor
/// also answers the recovery codes.
#[server(prefix = "/sfn", endpoint = "mfa-passkey-add")]
pub async fn add_passkey(token: String, credential: String) -> Result<RecoveryCodes, AppError> {
    use crate::ssr::{clock, http::sfn};
    let (state, actor) = (sfn::state(), sfn::actor()?);
    state.auth.finish_passkey(&actor, &token, &credential, clock::now()).await.map_err(sfn::fail)
}

/// Removes one of one's passkeys (needs a recent second factor).
#[server(prefix = "/sfn", endpoint = "mfa-passkey-remove")]
pub async fn remove_passkey(id: String) -> Result<(), AppError> {
    use crate::ssr::{clock, http::sfn};
    let (state, actor) = (sfn::state(), sfn::actor()?);
    let window = state.config.mfa_step_up_ms();
    state.auth.remove_passkey(&actor, &id, clock::now(), window).await.map_err(sfn::fail)
}

/// Step-up with one of one's passkeys (the challenge from `passkey_challenge`).
#[server(prefix = "/sfn", endpoint = "mfa-passkey-step-up")]
pub async fn passkey_step_up(token: String, credential: String) -> Result<(), AppError> {
    use crate::ssr::{clock, http::sfn};
    let (state, actor) = (sfn::state(), sfn::actor()?);
    state.auth.step_up_passkey(&actor, &token, &credential, clock::now()).await.map_err(sfn::fail)
}

/// Renews the recovery codes or removes the app. Both need a recent second factor: `code`, when
/// given, proves one first (step-up).
#[server(prefix = "/sfn", endpoint = "mfa-change")]
pub async fn change_mfa(change: MfaChange, code: Option<String>) -> Result<RecoveryCodes, AppError> {
    use crate::ssr::{clock, http::sfn};
    let (state, actor) = (sfn::state(), sfn::actor()?);
    let now = clock::now();
    if let Some(code) = code.filter(|c| !c.trim().is_empty()) {
        state.auth.step_up(&actor, &code, now).await.map_err(sfn::fail)?;
    }
    let window = state.config.mfa_step_up_ms();
    match change {
        MfaChange::RenewRecoveryCodes => {
            state.auth.renew_recovery_codes(&actor, now, window).await.map_err(sfn::fail)
        }
        MfaChange::RemoveApp => {
            state.auth.remove_totp(&actor, now, window).await.map_err(sfn::fail)?;
            Ok(RecoveryCodes { codes: Vec::new() })
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum MfaChange {
    RenewRecoveryCodes,
    RemoveApp,
}
