//! The signed-in user, fetched once per page load and shared through context; pages that need a
//! user send visitors without one to the sign-in page.

use leptos::prelude::*;
use leptos_router::{components::Redirect, hooks::use_location};

use super::json_codec::{JsonBytes, json_resource};
use crate::server_fns::{
    AppError,
    session::{SessionInfo, get_session},
};

/// The session resource every page reads (provided by the app).
#[derive(Clone, Copy)]
pub struct SessionResource(pub Resource<Result<Option<SessionInfo>, AppError>, JsonBytes>);

pub fn provide_session() {
    provide_context(SessionResource(json_resource(|| (), |_| get_session())));
}

pub fn use_session() -> Resource<Result<Option<SessionInfo>, AppError>, JsonBytes> {
    expect_context::<SessionResource>().0
}

/// Sends the visitor to the sign-in page, coming back here afterwards.
#[component]
pub fn SignInRedirect() -> impl IntoView {
    let location = use_location();
    let here = location.pathname.get_untracked();
    let path = if here == "/" { "/login".to_string() } else { format!("/login?next={here}") };
    view! { <Redirect path /> }
}

/// Renders a page's result: the content, a redirect to sign in, or the error in words.
pub fn show<T, V>(result: Result<T, AppError>, content: impl FnOnce(T) -> V) -> AnyView
where
    V: IntoView + 'static,
{
    match result {
        Ok(value) => content(value).into_any(),
        Err(AppError::Unauthenticated) => view! { <SignInRedirect /> }.into_any(),
        // The role requires a second factor the user has not set up yet.
        Err(AppError::MfaEnrolmentRequired) => view! { <Redirect path="/account" /> }.into_any(),
        Err(error) => view! { <ErrorPanel error /> }.into_any(),
    }
}

#[component]
pub fn ErrorPanel(error: AppError) -> impl IntoView {
    let (title, text) = match &error {
        AppError::NotFound(what) => (
            format!("This {what} was not found"),
            "It does not exist, or it is not yours to see.".to_string(),
        ),
        AppError::Offline => (
            "You are offline".to_string(),
            "This page was not saved on this device. It will load when the connection returns.".to_string(),
        ),
        AppError::Forbidden(m) => ("Not allowed".to_string(), m.clone()),
        other => ("Something went wrong".to_string(), other.to_string()),
    };
    view! {
        <section class="panel" role="alert" data-testid="error-panel">
            <h1>{title}</h1>
            <p>{text}</p>
            <p>
                <a href="/">"Back to the dashboard"</a>
            </p>
        </section>
    }
}

/// Shown while a page's data loads (client-side navigation only: SSR waits for the data).
#[component]
pub fn Loading() -> impl IntoView {
    view! {
        <p class="muted" role="status" aria-live="polite">
            "Loading…"
        </p>
    }
}
