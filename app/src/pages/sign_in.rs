//! Sign-in: email and password (and single sign-on when configured). A plain form that works
//! without JavaScript; with it, errors show in place.

use leptos::prelude::*;
use leptos_router::hooks::use_query_map;

use crate::api::{AppError, session::SignIn};
use crate::components::session::use_session;

#[component]
pub fn SignInPage() -> impl IntoView {
    let query = use_query_map();
    let next = move || query.with(|q| q.get("next")).unwrap_or_else(|| "/".to_string());
    let signed_out = move || query.with(|q| q.get("signed_out").is_some());
    let action = ServerAction::<SignIn>::new();
    let session = use_session();

    // Signed in: a full page load, so the whole app (and its session) starts afresh.
    Effect::new(move |_| {
        if let Some(Ok(())) = action.value().get() {
            #[cfg(feature = "hydrate")]
            if let Some(window) = web_sys::window() {
                let _ = window.location().set_href(&crate::api::session::safe_next(Some(&next())));
            }
        }
    });

    let error = move || match action.value().get() {
        Some(Err(AppError::Unauthenticated)) => Some("Wrong email or password.".to_string()),
        Some(Err(e)) => Some(e.to_string()),
        _ => None,
    };

    view! {
        <section class="panel narrow" aria-labelledby="sign-in-heading">
            <h1 id="sign-in-heading">"Sign in"</h1>
            <Show when=signed_out>
                <p class="muted" role="status" data-testid="signed-out">
                    "You are signed out. Nothing of your data stays on this device."
                </p>
            </Show>
            <Suspense fallback=|| ()>
                {move || Suspend::new(async move {
                    match session.await {
                        Ok(Some(info)) => {
                            view! {
                                <p>
                                    "Signed in as " {info.user.name} ". " <a href="/">"Go to the dashboard"</a>
                                </p>
                            }
                                .into_any()
                        }
                        _ => ().into_any(),
                    }
                })}
            </Suspense>
            <ActionForm action=action attr:class="form" attr:data-testid="sign-in-form">
                <input type="hidden" name="next" value=next />
                <label for="email">"Email"</label>
                <input id="email" name="email" type="email" autocomplete="username" required />
                <label for="password">"Password"</label>
                <input id="password" name="password" type="password" autocomplete="current-password" required />
                <p class="error" role="alert" data-testid="sign-in-error">
                    {error}
                </p>
                <button type="submit" class="button" disabled=move || action.pending().get()>
                    "Sign in"
                </button>
            </ActionForm>
        </section>
    }
}
