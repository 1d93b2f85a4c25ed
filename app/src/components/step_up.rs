//! Asking for a fresh second factor in place: when an action answers `MfaRequired` (approving or
//! running a prod change, publishing), this form takes a code, proves it, and runs the action
//! again, without leaving the page.

use leptos::prelude::*;

use crate::server_fns::{AppError, account::StepUp};

/// Whether an action's answer asks for a fresh second factor.
pub fn asks_for_factor<T>(value: &Option<Result<T, AppError>>) -> bool {
    matches!(value, Some(Err(AppError::MfaRequired)))
}

/// The code form. `retry` runs the interrupted action again once the code is accepted.
#[component]
pub fn StepUpPrompt(#[prop(into)] retry: Callback<()>) -> impl IntoView {
    let prove = ServerAction::<StepUp>::new();
    let code = RwSignal::new(String::new());
    Effect::new(move |_| {
        if let Some(Ok(())) = prove.value().get() {
            retry.run(());
        }
    });
    let error = move || match prove.value().get() {
        Some(Err(AppError::Offline)) => Some("No connection: nothing was sent.".to_string()),
        Some(Err(e)) => Some(e.to_string()),
        _ => None,
    };
    // A passkey instead of a code, where the server offers passkeys (read in the browser: the
    // prompt only ever appears there).
    let passkeys = LocalResource::new(crate::server_fns::session::sign_in_options);
    let passkey_error = RwSignal::new(None::<String>);
    let use_passkey = move |_| {
        passkey_error.set(None);
        leptos::task::spawn_local(async move {
            let outcome = async {
                let challenge =
                    crate::server_fns::session::passkey_challenge().await.map_err(|e| e.to_string())?;
                let credential = super::webauthn::get(&challenge.options).await?;
                crate::server_fns::account::passkey_step_up(challenge.token, credential)
                    .await
                    .map_err(|e| e.to_string())
            }
            .await;
            match outcome {
                Ok(()) => retry.run(()),
                Err(e) => passkey_error.set(Some(e)),
            }
        });
    };
    view! {
        <form class="step-up" data-testid="step-up"
            on:submit=move |ev| {
                ev.prevent_default();
                prove.dispatch(StepUp { code: code.get_untracked() });
            }>
            <label for="step-up-code">"This needs a fresh second factor: a code from your authenticator app (or a recovery code)"</label>
            <input id="step-up-code" type="text" inputmode="numeric" autocomplete="one-time-code" required
                on:input=move |ev| code.set(event_target_value(&ev)) />
            <button type="submit" class="button" disabled=move || prove.pending().get()>"Continue"</button>
            {move || matches!(passkeys.get(), Some(Ok(o)) if o.passkeys).then(|| view! {
                <button type="button" class="button button-quiet" data-testid="step-up-passkey" on:click=use_passkey>
                    "Use a passkey instead"
                </button>
            })}
            <p class="error" role="alert">{error}</p>
            <p class="error" role="alert">{move || passkey_error.get()}</p>
        </form>
    }
}
