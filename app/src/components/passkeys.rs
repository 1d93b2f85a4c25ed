//! The account page's passkeys: the list (name, when added, last used), removing one (needs a
//! recent second factor), and adding one through the browser's WebAuthn. Read in the browser
//! only (POSTs): nothing of it is in the server's HTML or the service worker's caches.

use leptos::prelude::*;

use crate::server_fns::{
    AppError,
    account::{RemovePasskey, add_passkey, get_mfa_status, passkey_options},
};

#[component]
pub fn PasskeysPanel() -> impl IntoView {
    let remove = ServerAction::<RemovePasskey>::new();
    let added = RwSignal::new(0u32);
    let status = LocalResource::new(move || {
        remove.version().track();
        added.track();
        get_mfa_status()
    });
    let name = RwSignal::new(String::new());
    let busy = RwSignal::new(false);
    let error = RwSignal::new(None::<String>);
    let codes = RwSignal::new(Vec::<String>::new());
    let add = move |_| {
        busy.set(true);
        error.set(None);
        let name = name.get_untracked();
        leptos::task::spawn_local(async move {
            let outcome = async {
                let challenge = passkey_options(name).await.map_err(|e| e.to_string())?;
                let credential = super::webauthn::create(&challenge.options).await?;
                add_passkey(challenge.token, credential).await.map_err(|e| e.to_string())
            }
            .await;
            match outcome {
                Ok(shown) => {
                    codes.set(shown.codes);
                    added.update(|n| *n += 1);
                }
                Err(e) => error.set(Some(e)),
            }
            busy.set(false);
        });
    };
    let remove_error = move || match remove.value().get() {
        Some(Err(AppError::MfaRequired)) => {
            Some("Prove a second factor first: a current code above, or sign in again.".to_string())
        }
        Some(Err(e)) => Some(e.to_string()),
        _ => None,
    };
    view! {
        <h2>"Passkeys"</h2>
        <p class="error" role="alert" data-testid="passkey-error">{move || error.get().or_else(remove_error)}</p>
        <Suspense fallback=|| ()>
            {move || Suspend::new(async move {
                let Ok(s) = status.await else { return ().into_any() };
                if !s.passkeys_available {
                    return view! {
                        <p class="muted" data-testid="passkeys-off">"This toolkit does not offer passkeys: it needs its public address with a host name (NEXUS_PUBLIC_URL)."</p>
                    }.into_any();
                }
                view! {
                    <p class="muted">"A passkey signs you in without a password (your device checks your PIN, face or fingerprint) and counts as a second factor."</p>
                    <ul class="passkeys" data-testid="passkeys">
                        {s.passkeys.into_iter().map(|p| {
                            let id = p.id.clone();
                            view! {
                                <li data-testid="passkey">
                                    <strong>{p.name}</strong> " · added " {p.added_at.to_string()}
                                    {p.last_used_at.map(|t| format!(" · last used {t}"))}
                                    " "
                                    <button type="button" class="button button-quiet"
                                        on:click=move |_| { remove.dispatch(RemovePasskey { id: id.clone() }); }>
                                        "Remove"
                                    </button>
                                </li>
                            }
                        }).collect_view()}
                    </ul>
                    <label for="passkey-name">"Name of a new passkey (the device)"</label>
                    <input id="passkey-name" type="text" maxlength="60" on:input=move |ev| name.set(event_target_value(&ev)) />
                    <button type="button" class="button" data-testid="add-passkey" disabled=move || busy.get() on:click=add>
                        "Add a passkey"
                    </button>
                }.into_any()
            })}
        </Suspense>
        {move || (!codes.get().is_empty()).then(|| view! {
            <div class="recovery" data-testid="passkey-recovery-codes">
                <p><strong>"Recovery codes, shown this once."</strong> " Each signs you in once in place of your second factor. Keep them somewhere safe."</p>
                <ul class="mono">{codes.get().into_iter().map(|c| view! { <li>{c}</li> }).collect_view()}</ul>
            </div>
        })}
    }
}
