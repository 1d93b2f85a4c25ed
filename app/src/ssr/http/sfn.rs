//! What server functions (and the pages that call them during SSR) take from the request: the
//! application state, the signed-in user (resolved by the session layer), and the mapping of
//! service errors to [`AppError`] with the matching HTTP status.

use axum::http::{HeaderValue, StatusCode, request::Parts};
use leptos::prelude::{expect_context, use_context};
use leptos_axum::ResponseOptions;

use crate::{
    server_fns::AppError,
    ssr::{auth::Actor, error::ServiceError, state::AppState},
};

/// Response header the session layer turns into an `access.denied` audit event (and strips):
/// server functions cannot attach response extensions the way API handlers do.
pub const DENIED_HEADER: &str = "x-nexus-access-denied";

pub fn state() -> AppState {
    expect_context::<AppState>()
}

/// The signed-in user, or 401.
pub fn actor() -> Result<Actor, AppError> {
    use_context::<Parts>()
        .and_then(|parts| parts.extensions.get::<Actor>().cloned())
        .ok_or_else(|| fail(ServiceError::Unauthenticated))
}

/// The signed-in user, if any (pages that also serve signed-out visitors).
pub fn maybe_actor() -> Option<Actor> {
    use_context::<Parts>().and_then(|parts| parts.extensions.get::<Actor>().cloned())
}

fn set_status(status: StatusCode) {
    if let Some(response) = use_context::<ResponseOptions>() {
        response.set_status(status);
    }
}

/// Maps a service error to what the page shows, and sets the response's status from the one
/// table (`ServiceError::status`): a page for a customer the user may not see answers 404, like
/// the API.
pub fn fail(e: ServiceError) -> AppError {
    if e.is_denial()
        && let Some(response) = use_context::<ResponseOptions>()
    {
        response.insert_header(DENIED_HEADER.parse().expect("static"), HeaderValue::from_static("1"));
    }
    set_status(e.status());
    let message = e.to_string();
    match e {
        ServiceError::NotFound(what) | ServiceError::Hidden(what) => AppError::NotFound(what.to_string()),
        ServiceError::Invalid { field, message, details, .. } => {
            AppError::Invalid { field, message, details }
        }
        ServiceError::Unauthenticated => AppError::Unauthenticated,
        ServiceError::MfaRequired => AppError::MfaRequired,
        ServiceError::MfaEnrolmentRequired => AppError::MfaEnrolmentRequired,
        ServiceError::Forbidden(m) => AppError::Forbidden(m),
        ServiceError::Conflict(m) => AppError::Conflict(m),
        ServiceError::Locked { .. }
        | ServiceError::RateLimited { .. }
        | ServiceError::TooManyStreams { .. }
        | ServiceError::Unavailable => AppError::Unavailable(message),
        ServiceError::Internal => AppError::Internal(message),
    }
}

/// The browser-made key that makes a repeated request harmless (the API's `Idempotency-Key`
/// rule: 1-128 letters, digits, `-`, `_`, `.` or `:`).
pub fn idempotency_key(key: &str) -> Result<&str, AppError> {
    let key = key.trim();
    if super::extract::valid_idempotency_key(key) {
        Ok(key)
    } else {
        Err(fail(ServiceError::invalid(
            "key",
            "invalid_idempotency_key",
            "the request key is 1-128 letters, digits, `-`, `_`, `.` or `:`",
        )))
    }
}
