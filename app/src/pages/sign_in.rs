//! Sign-in: email and password (and single sign-on when configured). A plain form that works
//! without JavaScript; with it, errors show in place.

use leptos::prelude::*;
use leptos_router::hooks::use_query_map;

use crate::components::json_codec::json_resource;
use crate::components::session::use_session;
use crate::server_fns::{
    AppError,
    session::{SignIn, sign_in_options},
};

#[component]
pub fn SignInPage() -> impl IntoView {
    let query = use_query_map();
    let next = move || query.with(|q| q.get("next")).unwrap_or_else(|| "/".to_string());
    let signed_out = move || query.with(|q| q.get("signed_out").is_some());
    let sso_error = move || query.with(|q| q.get("sso_error")).map(|code| sso_error_text(&code));
    let action = ServerAction::<SignIn>::new();
    let session = use_session();
    let options = json_resource(|| (), |_| sign_in_options());

    // Signed in: a full page load, so the whole app (and its session) starts afresh.
    Effect::new(move |_| {
        if let Some(Ok(())) = action.value().get() {
            #[cfg(feature = "hydrate")]
            if let Some(window) = web_sys::window() {
                let _ = window.location().set_href(&crate::server_fns::session::safe_next(Some(&next())));
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
            <p class="error" role="alert" data-testid="sso-error">
                {sso_error}
            </p>
            <Suspense fallback=|| ()>
                {move || Suspend::new(async move {
                    match options.await {
                        Ok(o) if o.sso => {
                            view! {
                                <p>
                                    // rel=external: a full navigation to the server's redirect, not
                                    // a client-side route.
                                    <a
                                        class="button"
                                        rel="external"
                                        data-testid="sso"
                                        href=move || format!("/auth/sso?next={}", crate::url::encode(&next()))
                                    >
                                        "Sign in with SSO"
                                    </a>
                                </p>
                                <p class="muted">"Or with your toolkit password:"</p>
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
                // Only for accounts with a second factor: the server asks for it when it is missing.
                <label for="otp">"Authenticator code " <span class="muted small">"(if you set one up; or a recovery code)"</span></label>
                <input id="otp" name="otp" type="text" inputmode="numeric" autocomplete="one-time-code" maxlength="16" />
                <p class="error" role="alert" data-testid="sign-in-error">
                    {error}
                </p>
                <button type="submit" class="button" disabled=move || action.pending().get()>
                    "Sign in"
                </button>
            </ActionForm>
            <Suspense fallback=|| ()>
                {move || Suspend::new(async move {
                    matches!(options.await, Ok(o) if o.passkeys).then(|| view! { <PasskeySignIn next=Signal::derive(next) /> })
                })}
            </Suspense>
        </section>
    }
}

/// "Sign in with a passkey": no email or password, the passkey says whose it is and checks its
/// user's PIN or biometrics. Needs JavaScript (WebAuthn is a browser API).
#[component]
fn PasskeySignIn(next: Signal<String>) -> impl IntoView {
    let busy = RwSignal::new(false);
    let error = RwSignal::new(None::<String>);
    let start = move |_| {
        busy.set(true);
        error.set(None);
        let next = next.get_untracked();
        leptos::task::spawn_local(async move {
            let outcome = async {
                let challenge =
                    crate::server_fns::session::passkey_challenge().await.map_err(|e| e.to_string())?;
                let credential = crate::components::webauthn::get(&challenge.options).await?;
                crate::server_fns::session::passkey_sign_in(challenge.token, credential)
                    .await
                    .map_err(|e| e.to_string())
            }
            .await;
            match outcome {
                Ok(()) => {
                    // A full page load: the whole app starts afresh with the new session.
                    #[cfg(feature = "hydrate")]
                    if let Some(window) = web_sys::window() {
                        let _ =
                            window.location().set_href(&crate::server_fns::session::safe_next(Some(&next)));
                    }
                    let _ = next;
                }
                Err(e) => {
                    error.set(Some(e));
                    busy.set(false);
                }
            }
        });
    };
    view! {
        <div class="passkey-sign-in">
            <p class="muted">"Or, without a password:"</p>
            <button type="button" class="button button-quiet" data-testid="passkey-sign-in"
                disabled=move || busy.get() on:click=start>
                "Use a passkey"
            </button>
            <p class="error" role="alert" data-testid="passkey-error">{move || error.get()}</p>
        </div>
    }
}

/// The sign-in callback's reason codes (`/auth/callback` sends only these, never provider text).
fn sso_error_text(code: &str) -> String {
    match code {
        "denied" => "Single sign-on was cancelled or refused by your organisation's sign-in.",
        "state" => "That single sign-on attempt expired or was started elsewhere. Please try again.",
        "no_role" => {
            "Your organisation's sign-in gives you no role in the toolkit (no role group, or no verified \
             email). Ask an Executive for access."
        }
        "unavailable" => "Single sign-on is unavailable right now. Please try again shortly.",
        "off" => "Single sign-on is not configured here.",
        _ => "Single sign-on did not succeed. Please try again.",
    }
    .to_string()
}
