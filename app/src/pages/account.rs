//! One's own account: set up an authenticator app (QR code or the secret typed by hand,
//! confirmed by one of its codes), keep the recovery codes shown once, renew them, remove the
//! app; passkeys (`components::passkeys`). Nothing of this page is kept for offline use: its data is read in the browser by POST.

use leptos::prelude::*;

use crate::components::passkeys::PasskeysPanel;
use crate::domain::views::{MfaStatus, RecoveryCodes};
use crate::server_fns::{
    AppError,
    account::{ChangeMfa, ConfirmTotp, MfaChange, StartTotp, get_mfa_status},
};

fn error_text<T>(value: Option<Result<T, AppError>>) -> Option<String> {
    match value {
        Some(Err(AppError::Offline)) => Some("No connection: nothing was sent.".into()),
        Some(Err(AppError::MfaRequired)) => {
            Some("Enter a current code from your app (or a recovery code) to do this.".into())
        }
        Some(Err(e)) => Some(e.to_string()),
        _ => None,
    }
}

#[component]
pub fn AccountPage() -> impl IntoView {
    let start = ServerAction::<StartTotp>::new();
    let confirm = ServerAction::<ConfirmTotp>::new();
    let change = ServerAction::<ChangeMfa>::new();
    // Read in the browser only (a POST): the server's HTML carries nothing of it.
    let status = LocalResource::new(move || {
        // Read again after each change.
        confirm.version().track();
        change.version().track();
        get_mfa_status()
    });
    let session = crate::components::session::use_session();
    let code = RwSignal::new(String::new());
    let step_up = RwSignal::new(String::new());
    let errors = move || {
        error_text(start.value().get())
            .or_else(|| error_text(confirm.value().get()))
            .or_else(|| error_text(change.value().get()))
    };
    let shown_codes = move || match (confirm.value().get(), change.value().get()) {
        (_, Some(Ok(RecoveryCodes { codes }))) if !codes.is_empty() => Some(codes),
        (Some(Ok(RecoveryCodes { codes })), _) if !codes.is_empty() => Some(codes),
        _ => None,
    };
    view! {
        <section class="panel narrow" aria-labelledby="account-heading">
            <h1 id="account-heading">"Your account"</h1>
            <Suspense fallback=|| ()>
                {move || Suspend::new(async move {
                    let must_enrol = matches!(session.await, Ok(Some(info)) if info.must_enrol);
                    must_enrol.then(|| view! {
                        <p class="notice" role="status" data-testid="must-enrol">
                            "Your role needs a second factor. Set up an authenticator app or a passkey below: the rest of the toolkit opens once it is confirmed."
                        </p>
                    })
                })}
            </Suspense>
            <h2>"Second factor"</h2>
            <p class="error" role="alert" data-testid="account-error">{errors}</p>
            <Suspense fallback=|| view! { <p class="muted">"Loading…"</p> }>
                {move || Suspend::new(async move {
                    let Ok(MfaStatus { totp, recovery_codes_left, passkeys, .. }) = status.await else {
                        return view! { <p class="muted">"Your second factors cannot be read offline."</p> }.into_any();
                    };
                    if totp {
                        view! {
                            <p data-testid="mfa-on">"An authenticator app is set up. " {recovery_codes_left} " recovery codes left."</p>
                            <label for="step-up">"Current code (needed to change this)"</label>
                            <input id="step-up" type="text" inputmode="numeric" autocomplete="one-time-code"
                                on:input=move |ev| step_up.set(event_target_value(&ev)) />
                            <div class="actions">
                                <button type="button" class="button button-quiet" data-testid="renew-codes"
                                    on:click=move |_| { change.dispatch(ChangeMfa { change: MfaChange::RenewRecoveryCodes, code: Some(step_up.get_untracked()) }); }>
                                    "New recovery codes"
                                </button>
                                <button type="button" class="button button-quiet" data-testid="remove-app"
                                    on:click=move |_| { change.dispatch(ChangeMfa { change: MfaChange::RemoveApp, code: Some(step_up.get_untracked()) }); }>
                                    "Remove the app"
                                </button>
                            </div>
                        }.into_any()
                    } else {
                        view! {
                            <p data-testid="mfa-off">{if passkeys.is_empty() { "No second factor yet: your password alone signs you in." } else { "No authenticator app (your passkeys are your second factor)." }}</p>
                            <button type="button" class="button" data-testid="start-totp"
                                on:click=move |_| { start.dispatch(StartTotp {}); }>
                                "Set up an authenticator app"
                            </button>
                        }.into_any()
                    }
                })}
            </Suspense>
            {move || start.value().get().and_then(Result::ok).filter(|_| confirm.value().get().is_none_or(|r| r.is_err())).map(|e| view! {
                <div class="enrolment" data-testid="enrolment">
                    <p>"Scan this code with your authenticator app, or type the key by hand:"</p>
                    // The SVG is drawn on the server from the otpauth URL (rectangles only).
                    <div class="qr" inner_html=e.qr_svg></div>
                    <p class="mono" data-testid="totp-secret">{e.secret}</p>
                    <label for="totp-code">"Code shown by the app"</label>
                    <input id="totp-code" type="text" inputmode="numeric" autocomplete="one-time-code"
                        on:input=move |ev| code.set(event_target_value(&ev)) />
                    <button type="button" class="button" data-testid="confirm-totp"
                        on:click=move |_| { confirm.dispatch(ConfirmTotp { code: code.get_untracked() }); }>
                        "Confirm"
                    </button>
                </div>
            })}
            {move || shown_codes().map(|codes| view! {
                <div class="recovery" data-testid="recovery-codes">
                    <p><strong>"Recovery codes, shown this once."</strong> " Each signs you in once in place of the app's code. Keep them somewhere safe."</p>
                    <ul class="mono">{codes.into_iter().map(|c| view! { <li>{c}</li> }).collect_view()}</ul>
                    // A full load: the whole app starts afresh with the session as it is now.
                    <a class="button" rel="external" href="/" data-testid="continue">"I have kept them: continue"</a>
                </div>
            })}
            <PasskeysPanel />
        </section>
    }
}
